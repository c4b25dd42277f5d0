/** Small display helpers. */

/** A time as "25 Nov 2026, 11:53" in the user's locale, or "never". */
export function when(iso: string | null | undefined): string {
  if (!iso) return 'never';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

/** A time as a `datetime-local` input's value ("2026-11-25T11:53", local time), or "". */
export function toLocal(time: string | number): string {
  const d = new Date(time);
  if (Number.isNaN(d.getTime())) return '';
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

/** A short relative time: "just now", "5 min ago", "3 h ago", else the date. */
export function ago(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return 'never';
  const s = Math.round((now - new Date(iso).getTime()) / 1000);
  if (s < 60) return 'just now';
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return when(iso);
}

/** Saves `blob` as a file named `name` through a temporary link. */
export function saveBlob(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/** A param's value as a number (devices may send numeric text), or null. */
export function num(v: unknown): number | null {
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  return Number.isFinite(n) ? n : null;
}

/** A number for display: at most `digits` decimals, no trailing zeros ("1.75", "230"). */
export function round(n: number, digits = 2): string {
  return String(Number(n.toFixed(digits)));
}

/** A span of seconds for people: "45 s", "5 min", "1.5 h". */
export function duration(seconds: number): string {
  if (seconds >= 3600) return `${round(seconds / 3600, 1)} h`;
  if (seconds >= 60) return `${round(seconds / 60, 1)} min`;
  return `${seconds} s`;
}
