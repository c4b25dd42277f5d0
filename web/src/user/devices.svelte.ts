/**
 * The signed-in user's devices, kept live: loaded from the Web API, then updated by the
 * WebSocket's pushes, and controlled through it.
 */
import { message } from '../lib/api';
import type { Device, Params } from '../lib/models';
import { userApi, userSession } from '../lib/session.svelte';
import { LiveSocket, socketUrl, type Push, type Status } from '../lib/ws';

export const devices = $state({
  list: [] as Device[],
  loaded: false,
  error: '',
  live: 'connecting' as Status,
});

/** Fetches the device list again. */
export async function reload(): Promise<void> {
  try {
    devices.list = await userApi.get<Device[]>('/api/user/device');
    devices.error = '';
  } catch (e) {
    devices.error = message(e);
  } finally {
    devices.loaded = true;
  }
}

/** Puts `device` into the list (new or replacing the one with its deviceid). */
export function upsert(device: Device): void {
  const i = devices.list.findIndex((d) => d.deviceid === device.deviceid);
  if (i < 0) devices.list.push(device);
  else devices.list[i] = device;
}

export function remove(deviceid: string): void {
  devices.list = devices.list.filter((d) => d.deviceid !== deviceid);
}

export function find(deviceid: string): Device | undefined {
  return devices.list.find((d) => d.deviceid === deviceid);
}

function merge(deviceid: string, params: Params): void {
  const d = find(deviceid);
  if (d) d.params = { ...d.params, ...params };
}

/**
 * Reads a device's presence times again after it came or went. Only those: its params may be
 * older than pushes that arrived while the answer was on its way.
 */
async function refresh(deviceid: string): Promise<void> {
  try {
    const fresh = await userApi.get<Device>(`/api/user/device/${deviceid}`);
    const d = find(deviceid);
    if (d) [d.lastSeenAt, d.lastConnectedAt, d.lastDisconnectedAt] = [fresh.lastSeenAt, fresh.lastConnectedAt, fresh.lastDisconnectedAt];
  } catch {
    // The list keeps what it had; the next push or reload catches up.
  }
}

function onPush(push: Push): void {
  const d = find(push.deviceid);
  if (!d) return;
  if (push.action === 'update') {
    merge(push.deviceid, push.params);
    d.lastSeenAt = new Date().toISOString();
  } else if (push.action === 'sysmsg' && typeof push.params.online === 'boolean') {
    d.online = push.params.online;
    void refresh(push.deviceid);
  }
}

let socket: LiveSocket | null = null;

/** Opens the live connection for the signed-in user (once). */
export function connect(): LiveSocket {
  socket ??= new LiveSocket({
    url: socketUrl(),
    subscribe: () => ({ apikey: userSession.current?.user.apikey, jwt: userSession.current?.jwt }),
    onPush,
    onStatus: (s) => (devices.live = s),
    onReconnected: () => void reload(),
  });
  socket.start();
  return socket;
}

/** Closes the live connection and forgets the devices (on log out). */
export function disconnect(): void {
  socket?.stop();
  socket = null;
  devices.list = [];
  devices.loaded = false;
}

/** Sends an update to a device; on success the params are merged locally. */
export async function control(device: Device, params: Params): Promise<void> {
  await (socket ?? connect()).request({ action: 'update', deviceid: device.deviceid, apikey: device.apikey, params });
  merge(device.deviceid, params);
}
