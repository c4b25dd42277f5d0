/** The shapes of the Web API's answers. Times are ISO 8601 strings or null. */

export type Params = Record<string, unknown>;

export interface User {
  email: string;
  apikey: string;
  createdAt: string;
}

export interface Device {
  name: string;
  group: string;
  type: string;
  deviceid: string;
  /** The owner's apikey. */
  apikey: string;
  /** The device's own key: it acts only as this device on the Device API. */
  deviceKey: string;
  createdAt: string;
  online: boolean;
  /** Left out by the admin device list. */
  params?: Params;
  lastModified: string | null;
  lastSeenAt: string | null;
  lastConnectedAt: string | null;
  lastDisconnectedAt: string | null;
}

/** A factory device made by the admin, to be claimed by a user. */
export interface License {
  name: string;
  type: string;
  deviceid: string;
  apikey: string;
  batch: string;
  createdAt: string;
}

export interface Login<U> {
  jwt: string;
  user: U;
}

export interface AdminUser {
  email: string;
  isAdmin: true;
}
