/**
 * The device types the app knows, with how to show and control each.
 * For now a fixed list; later it comes from the server's `GET /api/types`.
 */
import type { Params } from './models';

export type Kind = 'custom' | 'switch' | 'light' | 'sensor' | 'gps';

/** A numeric reading shown with its unit. */
export interface Reading {
  key: string;
  label: string;
  unit: string;
}

export interface DeviceType {
  code: string;
  name: string;
  kind: Kind;
  /** An example update, used in the "connect your device" panel. */
  sample: Params;
  readings: Reading[];
}

export const deviceTypes: DeviceType[] = [
  { code: '00', name: 'Custom', kind: 'custom', sample: { status: 'ready' }, readings: [] },
  { code: '01', name: 'Switch', kind: 'switch', sample: { switch: 'on' }, readings: [] },
  { code: '02', name: 'Light', kind: 'light', sample: { light: 'on' }, readings: [] },
  {
    code: '03',
    name: 'Temperature & humidity',
    kind: 'sensor',
    sample: { temperature: 21.5, humidity: 48 },
    readings: [
      { key: 'temperature', label: 'Temperature', unit: '°C' },
      { key: 'humidity', label: 'Humidity', unit: '%' },
    ],
  },
  {
    code: '04',
    name: 'GPS tracker',
    kind: 'gps',
    sample: { lat: 48.8584, lng: 2.2945 },
    readings: [
      { key: 'lat', label: 'Latitude', unit: '°' },
      { key: 'lng', label: 'Longitude', unit: '°' },
    ],
  },
];

/** The type with `code`; an unknown code behaves as a custom device, as on the server. */
export function deviceType(code: string): DeviceType {
  const known = deviceTypes.find((t) => t.code === code);
  return known ?? { code, name: `Custom (type ${code})`, kind: 'custom', sample: { status: 'ready' }, readings: [] };
}

/** The param a switch or light is controlled by, or null for other kinds. */
export function powerKey(kind: Kind): 'switch' | 'light' | null {
  return kind === 'switch' || kind === 'light' ? kind : null;
}
