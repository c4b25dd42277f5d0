/**
 * The device type registry, from the server's `GET /api/types` (loaded once, then cached):
 * each type's params with their kind, unit, range, whether apps may set them and whether they
 * are kept in history. Controls, readings, charts and the map all derive from it.
 */
import type { Params } from './models';

/** One param of a type, as `GET /api/types` serialises it. */
export interface Param {
  name: string;
  kind: 'onoff' | 'number' | 'color' | 'text';
  unit?: string | null;
  min?: number | null;
  max?: number | null;
  required: boolean;
  writable: boolean;
  history: boolean;
}

export interface DeviceType {
  code: string;
  name: string;
  timers: boolean;
  params: Param[];
}

const registry = $state({ list: [] as DeviceType[], settled: false });
let loading: Promise<void> | null = null;

/** Loads the registry once; a failed load is tried again on the next call. */
export function loadTypes(): Promise<void> {
  loading ??= fetch('/api/types')
    .then((r) => {
      if (!r.ok) throw new Error(String(r.status));
      return r.json() as Promise<DeviceType[]>;
    })
    .then((list) => {
      registry.list = list;
    })
    .catch(() => {
      loading = null;
    })
    .finally(() => {
      registry.settled = true;
    });
  return loading;
}

/** Whether the first load has ended (with the registry, or without it when the server was out of reach). */
export function typesSettled(): boolean {
  return registry.settled;
}

/** Every known type (empty until the registry is loaded). */
export function deviceTypes(): DeviceType[] {
  return registry.list;
}

/** The type with `code`; an unknown code behaves as a custom device, as on the server. */
export function deviceType(code: string): DeviceType {
  const known = registry.list.find((t) => t.code === code);
  return known ?? { code, name: `Custom (type ${code})`, timers: false, params: [] };
}

const LABELS: Record<string, string> = { lat: 'Latitude', lng: 'Longitude', alt: 'Altitude' };

/** A param's name for people: "brightness" → "Brightness", "lat" → "Latitude". */
export function label(name: string): string {
  return LABELS[name] ?? name.charAt(0).toUpperCase() + name.slice(1);
}

/** The on/off param the app turns the device on and off with, or null. */
export function powerKey(t: DeviceType): string | null {
  return t.params.find((p) => p.kind === 'onoff' && p.writable)?.name ?? null;
}

/** Numbers the device reports (read-only for apps), shown with their unit. */
export function readings(t: DeviceType): Param[] {
  return t.params.filter((p) => p.kind === 'number' && !p.writable);
}

/** Settings apps may change besides on/off: numbers with a range (a slider) and colors. */
export function settings(t: DeviceType): Param[] {
  return t.params.filter((p) => p.writable && (p.kind === 'color' || (p.kind === 'number' && p.min != null && p.max != null)));
}

/** Numeric params kept in history, the ones a chart can draw. */
export function historyFields(t: DeviceType): Param[] {
  return t.params.filter((p) => p.history && p.kind === 'number');
}

/** Whether the type reports a position (a map shows it). */
export function hasPosition(t: DeviceType): boolean {
  return ['lat', 'lng'].every((n) => t.params.some((p) => p.name === n && p.history));
}

/** Whether the type reports an energy counter (the energy used over a period is shown). */
export function hasEnergy(t: DeviceType): boolean {
  return t.params.some((p) => p.name === 'energy' && p.history);
}

/** Example values for the "connect your device" panel; other numbers show their lowest value. */
const EXAMPLES: Params = { temperature: 21.5, humidity: 48, lat: 48.8584, lng: 2.2945 };

/** An example update for the "connect your device" panel: the type's required params. */
export function sample(t: DeviceType): Params {
  const required = t.params.filter((p) => p.required);
  if (!required.length) return { status: 'ready' };
  const example = (p: Param): unknown => EXAMPLES[p.name] ?? (p.kind === 'onoff' ? 'on' : p.kind === 'number' ? (p.min ?? 0) : '');
  return Object.fromEntries(required.map((p) => [p.name, example(p)]));
}
