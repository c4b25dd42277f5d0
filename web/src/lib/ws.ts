/**
 * The app's one WebSocket to `/api/ws`: live pushes for all of the user's devices, and
 * requests to devices (update, query) matched to their answers by `sequence`.
 *
 * Protocol kept here (IoTgo Device API): the app subscribes once with
 * `{"action":"subscribe","apikey":<user apikey>,"jwt":<token>,"userAgent":"app"}` and is live
 * once that is answered with error 0. Pushes carry an `action` (`update` with params, `sysmsg`
 * with `{online}`); answers carry none and repeat the request's `sequence`. On a lost connection it reconnects with exponential backoff and
 * subscribes again; pending requests fail at once rather than hang.
 */
import type { Params } from './models';

export type Status = 'connecting' | 'open' | 'reconnecting' | 'stopped';

/** A message the server pushes: a device's update or its online/offline change. */
export interface Push {
  action: string;
  deviceid: string;
  apikey: string;
  params: Params;
}

/** A Device API answer. */
export interface Answer {
  error: number;
  reason?: string;
  params?: Params;
  sequence?: string;
}

/** A request the device (or the server for it) refused, with a message for people. */
export class DeviceError extends Error {
  constructor(readonly code: number, reason?: string) {
    super(explain(code, reason));
  }
}

/** Friendly text for the Device API's error codes. */
function explain(code: number, reason?: string): string {
  switch (code) {
    case 0:
      return 'Live connection is down; reconnecting. Try again in a moment.';
    case 400:
      return `The request was rejected${reason ? `: ${reason}` : '.'}`;
    case 403:
      return 'You are not allowed to control this device.';
    case 404:
      return 'This device was not found on the server.';
    case 503:
      return 'The device is offline. Check that it is powered and connected, then try again.';
    case 504:
      return 'The device did not answer in time. Check its connection and try again.';
    default:
      return `The device reported error ${code}${reason ? `: ${reason}` : '.'}`;
  }
}

/** `ws://` or `wss://` to this page's host. */
export function socketUrl(): string {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/api/ws`;
}

export interface LiveOptions {
  url: string;
  /** The subscription to send after each (re)connect. */
  subscribe: () => Record<string, unknown>;
  onPush: (push: Push) => void;
  onStatus: (status: Status) => void;
  /** Called after each reconnect, to catch up on what was missed while away. */
  onReconnected: () => void;
  /** How long to wait for an answer (the server's own device timeout is 3 s). */
  answerTimeoutMs?: number;
}

interface Pending {
  resolve: (a: Answer) => void;
  reject: (e: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

const MAX_BACKOFF_MS = 30_000;

export class LiveSocket {
  private ws: WebSocket | null = null;
  private pending = new Map<string, Pending>();
  private failures = 0;
  private wasOpen = false;
  private retry: ReturnType<typeof setTimeout> | undefined;
  private stopped = true;
  private counter = 0;

  constructor(private readonly opts: LiveOptions) {}

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    addEventListener('online', this.wake);
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    removeEventListener('online', this.wake);
    clearTimeout(this.retry);
    const ws = this.ws;
    this.ws = null;
    ws?.close(1000);
    this.failAll();
    this.opts.onStatus('stopped');
  }

  /** Sends `msg` with a fresh sequence; resolves with a successful answer, else a DeviceError. */
  request(msg: { action: string; deviceid: string; apikey: string; params: Params | string[] }): Promise<Answer> {
    return this.send(msg);
  }

  private send(msg: Record<string, unknown>): Promise<Answer> {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return Promise.reject(new DeviceError(0));
    const sequence = `${Date.now()}${++this.counter}`;
    return new Promise<Answer>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(sequence);
        reject(new DeviceError(504));
      }, this.opts.answerTimeoutMs ?? 8000);
      this.pending.set(sequence, { resolve, reject, timer });
      ws.send(JSON.stringify({ ...msg, userAgent: 'app', sequence }));
    });
  }

  /** The network is back: retry now rather than at the end of the backoff. */
  private readonly wake = (): void => {
    if (this.stopped || this.ws) return;
    clearTimeout(this.retry);
    this.connect();
  };

  private connect(): void {
    this.opts.onStatus(this.failures > 0 ? 'reconnecting' : 'connecting');
    const ws = new WebSocket(this.opts.url);
    this.ws = ws;
    // Live only once the subscription is accepted; a refused one counts as a failed attempt.
    ws.onopen = () => {
      this.send({ ...this.opts.subscribe(), action: 'subscribe' }).then(
        () => {
          this.failures = 0;
          this.opts.onStatus('open');
          if (this.wasOpen) this.opts.onReconnected();
          this.wasOpen = true;
        },
        () => ws.close(),
      );
    };
    ws.onmessage = (e: MessageEvent) => {
      if (typeof e.data === 'string') this.receive(e.data);
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.failAll();
      if (!this.stopped) this.scheduleReconnect();
    };
  }

  private scheduleReconnect(): void {
    const delay = Math.min(MAX_BACKOFF_MS, 500 * 2 ** this.failures) * (0.5 + Math.random() / 2);
    this.failures++;
    this.opts.onStatus('reconnecting');
    this.retry = setTimeout(() => this.connect(), delay);
  }

  private receive(text: string): void {
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    if (!msg || typeof msg !== 'object') return;
    const m = msg as Partial<Push & Answer>;
    if (typeof m.action === 'string') {
      if (typeof m.deviceid === 'string') {
        this.opts.onPush({ action: m.action, deviceid: m.deviceid, apikey: m.apikey ?? '', params: m.params ?? {} });
      }
      return;
    }
    const seq = m.sequence === undefined ? undefined : String(m.sequence);
    const waiting = seq === undefined ? undefined : this.pending.get(seq);
    if (!seq || !waiting) return;
    this.pending.delete(seq);
    clearTimeout(waiting.timer);
    const code = Number(m.error ?? 0);
    if (code === 0) waiting.resolve(m as Answer);
    else waiting.reject(new DeviceError(code, m.reason));
  }

  private failAll(): void {
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new DeviceError(0));
    }
    this.pending.clear();
  }
}
