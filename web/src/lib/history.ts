/**
 * A device's recorded values over a time range, from `GET /api/user/device/:id/history`:
 * raw points when they fit in one answer, else min/avg/max per time bucket (`bucket=auto`,
 * which the server keeps under its point cap).
 */
import type { createClient } from './api';

/** A time range in milliseconds since the epoch. */
export interface Range {
  from: number;
  to: number;
}

/** The periods a user can pick: the last hour, day or week up to now, or a custom range. */
export type Period = 'hour' | 'day' | 'week' | 'custom';

const SPANS: Record<Exclude<Period, 'custom'>, number> = { hour: 3600_000, day: 86400_000, week: 7 * 86400_000 };

/** The range of a period ending now; `custom` is the given range as is. */
export function rangeOf(period: Period, custom: Range, now = Date.now()): Range {
  return period === 'custom' ? custom : { from: now - SPANS[period], to: now + 1 };
}

/** One field's values, one per point (null where a point lacks it). */
export interface FieldSeries {
  avg: (number | null)[];
  /** Bucketed answers only. */
  min?: (number | null)[];
  max?: (number | null)[];
}

export interface Series {
  /** Point times in seconds (a bucket's start for bucketed answers). */
  times: number[];
  /** Bucket width in seconds, or null for raw points. */
  bucket: number | null;
  fields: Record<string, FieldSeries>;
}

interface Bucket {
  min: number;
  avg: number;
  max: number;
  count: number;
}

interface Answer {
  bucket: number | null;
  fields: string[];
  points: ({ time: string } & Record<string, number | Bucket | string>)[];
  more: boolean;
}

type Client = ReturnType<typeof createClient>;

/** The query for `range` and `fields`, shared by the JSON and the CSV. */
export function historyQuery(range: Range, fields: string[], bucket?: 'auto'): Record<string, string> {
  const q: Record<string, string> = { from: String(range.from), to: String(range.to), fields: fields.join(',') };
  if (bucket) q.bucket = bucket;
  return q;
}

/** Reads `fields` of a device over `range`: raw if the points fit in one answer, else bucketed. */
export async function loadHistory(api: Client, deviceid: string, range: Range, fields: string[]): Promise<Series> {
  const path = `/api/user/device/${encodeURIComponent(deviceid)}/history`;
  let answer = await api.get<Answer>(path, historyQuery(range, fields));
  if (answer.more) answer = await api.get<Answer>(path, historyQuery(range, fields, 'auto'));
  const bucketed = answer.bucket !== null;
  const series: Series = {
    times: answer.points.map((p) => Date.parse(p.time) / 1000),
    bucket: answer.bucket,
    fields: {},
  };
  for (const f of answer.fields) {
    const values = answer.points.map((p) => p[f]);
    const num = (v: unknown): number | null => (typeof v === 'number' ? v : null);
    const part = (k: keyof Bucket) => values.map((v) => (v && typeof v === 'object' ? v[k] : null));
    series.fields[f] = bucketed ? { min: part('min'), avg: part('avg'), max: part('max') } : { avg: values.map(num) };
  }
  return series;
}

/**
 * The energy used over the series: the counter's last reading minus its first (for buckets,
 * the last bucket's max minus the first bucket's min); null without two readings.
 */
export function energyUsed(s: Series, field = 'energy'): number | null {
  const f = s.fields[field];
  if (!f) return null;
  const lows = f.min ?? f.avg;
  const highs = f.max ?? f.avg;
  const first = lows.findIndex((v) => v !== null);
  let last = highs.length - 1;
  while (last >= 0 && highs[last] === null) last--;
  if (first < 0 || last < 0 || (first === last && !f.min)) return null;
  return (highs[last] ?? 0) - (lows[first] ?? 0);
}
