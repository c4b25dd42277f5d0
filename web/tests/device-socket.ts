/**
 * A simulated device for the browser tests: a WebSocket client in a page of its own that
 * keeps every frame it receives and answers forwarded commands as firmware does.
 */
import type { Page } from '@playwright/test';

export interface Frame {
  action?: string;
  sequence?: string;
  params?: Record<string, unknown>;
  error?: number;
}

/**
 * Opens a device socket in `page`; it answers every forwarded command with error 0, as firmware
 * does, unless `window.silent` is set.
 */
export async function connectDevice(page: Page, deviceid: string, apikey: string, first: object = { switch: 'off' }): Promise<void> {
  await page.goto('/login');
  await page.evaluate(
    ([deviceid, apikey, first]) =>
      new Promise<void>((resolve, reject) => {
        const w = window as unknown as { frames_: unknown[]; device: WebSocket };
        w.frames_ = [];
        const ws = new WebSocket(`${location.origin.replace(/^http/, 'ws')}/api/ws`);
        w.device = ws;
        ws.onerror = () => reject(new Error('device socket failed'));
        ws.onmessage = (e: MessageEvent<string>) => {
          const msg = JSON.parse(e.data) as { action?: string; sequence?: string };
          w.frames_.push(msg);
          if (msg.action === 'update' && msg.sequence && (window as unknown as { silent?: boolean }).silent !== true) {
            ws.send(JSON.stringify({ error: 0, deviceid, apikey, sequence: msg.sequence }));
          }
        };
        ws.onopen = () => {
          ws.send(JSON.stringify({ action: 'update', deviceid, apikey, params: first }));
          resolve();
        };
      }),
    [deviceid, apikey, first] as const,
  );
}

export const deviceFrames = (page: Page): Promise<Frame[]> =>
  page.evaluate(() => (window as unknown as { frames_: Frame[] }).frames_);

export async function sendFromDevice(page: Page, msg: object): Promise<void> {
  await page.evaluate((m) => (window as unknown as { device: WebSocket }).device.send(JSON.stringify(m)), msg);
}
