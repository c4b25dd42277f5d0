/**
 * The Web API client: JSON over fetch with a Bearer token.
 *
 * The server answers business failures with HTTP 200 and `{"error": "message"}`; those become
 * an `ApiError` with the server's message. HTTP 401 means the token is gone: the client calls
 * its `onUnauthorized` hook (back to login) and throws.
 */

/** A failure to show to the user as is. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status = 200,
  ) {
    super(message);
  }
}

/** The answer's body and the headers (lists carry `X-Total-Count`). */
export interface Answer<T> {
  data: T;
  headers: Headers;
}

export type Query = Record<string, string | number | undefined>;

/** Builds `path?query`, leaving out empty values. */
function withQuery(path: string, query: Query = {}): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v !== undefined && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

interface ClientOptions {
  token: () => string | null;
  onUnauthorized: () => void;
}

/** A client for one area (user or admin), each with its own token. */
export function createClient({ token, onUnauthorized }: ClientOptions) {
  async function send(method: string, path: string, body?: unknown): Promise<Response> {
    const headers: Record<string, string> = { Accept: 'application/json' };
    const jwt = token();
    if (jwt) headers.Authorization = `Bearer ${jwt}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch {
      throw new ApiError('Cannot reach the server. Check your connection and try again.', 0);
    }
    if (res.status === 401 && jwt) {
      onUnauthorized();
      throw new ApiError('Your session has ended. Please log in again.', 401);
    }
    return res;
  }

  async function request<T>(method: string, path: string, body?: unknown): Promise<Answer<T>> {
    const res = await send(method, path, body);
    const data: unknown = await res.json().catch(() => null);
    const error = data && typeof data === 'object' && 'error' in data ? (data as { error: unknown }).error : null;
    if (error) throw new ApiError(String(error), res.status);
    if (!res.ok) throw new ApiError(`The server answered ${res.status} ${res.statusText}.`.trim(), res.status);
    return { data: data as T, headers: res.headers };
  }

  return {
    get: async <T>(path: string, query?: Query) => (await request<T>('GET', withQuery(path, query))).data,
    list: <T>(path: string, query?: Query) => request<T[]>('GET', withQuery(path, query)),
    post: async <T>(path: string, body: unknown) => (await request<T>('POST', path, body)).data,
    del: async <T>(path: string) => (await request<T>('DELETE', path)).data,
    /** A file download (the CSV of licenses) as a blob. */
    blob: async (path: string, query?: Query): Promise<Blob> => {
      const res = await send('GET', withQuery(path, query));
      if (!res.ok) throw new ApiError(`The download failed (${res.status}).`, res.status);
      return res.blob();
    },
  };
}

/** Public settings from `GET /api/config`. */
export interface PublicConfig {
  version: string;
  recaptchaSiteKey: string | null;
  captchaRequired: boolean;
  /** Map tile URL template (`{z}/{x}/{y}`), OpenStreetMap's by default. */
  mapTileUrl: string;
  /** Whether the server sends mail (password reset and e-mail change links). */
  mailEnabled: boolean;
  /** The port of the server's MQTT listener, `null` when MQTT is off. */
  mqttPort: number | null;
}

let config: Promise<PublicConfig> | null = null;

/** The server's public settings, fetched once. */
export function publicConfig(): Promise<PublicConfig> {
  config ??= fetch('/api/config')
    .then((r) => {
      if (!r.ok) throw new Error(String(r.status));
      return r.json() as Promise<PublicConfig>;
    })
    .catch(() => {
      config = null;
      throw new ApiError('Cannot reach the server. Check your connection and try again.', 0);
    });
  return config;
}

/** The message of any thrown value, for an alert. */
export function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
