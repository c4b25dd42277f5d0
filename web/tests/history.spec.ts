/**
 * History in the device page: a chart of the readings a device sends and its CSV, averages in
 * a min–max band when the readings exceed one answer, the energy a switch used over a period.
 */
import { readFileSync } from 'node:fs';
import { connectDevice } from './device-socket';
import { api, deviceUpdate, expect, logIn, register, shot, test } from './fixtures';

interface Made {
  deviceid: string;
  apikey: string;
}

test('a chart draws each temperature reading a device sends, and the same range downloads as CSV', async ({ page, request }) => {
  const me = await register(request, 'chart');
  const thermo = await api<Made>(request, 'POST', '/api/user/device', me.jwt, { name: 'Greenhouse', group: '', type: '03' });
  await logIn(page, me.email, me.password);
  await page.goto(`/devices/${thermo.deviceid}`);
  await expect(page.getByTestId('chart-summary')).toHaveText('0 readings');

  await deviceUpdate(request, thermo, { temperature: 21.5, humidity: 40 });
  await deviceUpdate(request, thermo, { temperature: 22, humidity: 41 });
  await deviceUpdate(request, thermo, { temperature: '22.5', humidity: '42' });
  await expect(page.getByTestId('chart-summary')).toHaveText('3 readings');
  await expect(page.getByTestId('reading-temperature')).toHaveText('22.5 °C');
  await expect(page.getByTestId('chart').locator('canvas')).toBeVisible();
  await expect(page.getByTestId('chart')).toHaveAttribute('data-field', 'temperature');
  await shot(page, 'device-chart');

  await page.getByLabel('Field').selectOption('humidity');
  await expect(page.getByTestId('chart')).toHaveAttribute('data-field', 'humidity');
  await expect(page.getByTestId('chart-summary')).toHaveText('3 readings');

  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download CSV' }).click()]);
  expect(download.suggestedFilename()).toBe(`${thermo.deviceid}-history.csv`);
  const rows = readFileSync(await download.path(), 'utf8').trim().split('\n').map((line) => line.split(','));
  expect(rows[0]).toEqual(['time', 'ts', 'temperature', 'humidity']);
  expect(rows.slice(1).map((r) => r.slice(2))).toEqual([
    ['21.5', '40'],
    ['22', '41'],
    ['22.5', '42'],
  ]);

  await page.getByRole('button', { name: 'Custom' }).click();
  await page.getByLabel('From').fill('2020-01-01T00:00');
  await page.getByLabel('To').fill('2020-01-02T00:00');
  await expect(page.getByTestId('chart-summary')).toHaveText('0 readings');
  await page.getByRole('button', { name: 'Last week' }).click();
  await expect(page.getByTestId('chart-summary')).toHaveText('3 readings');
  await expect(page.getByTestId('history-error')).toHaveCount(0);
});

test("a switch shows live power beside on/off, and the energy used is the counter's last reading minus its first", async ({
  page,
  request,
}) => {
  const me = await register(request, 'energy');
  const plug = await api<Made>(request, 'POST', '/api/user/device', me.jwt, { name: 'Washer', group: '', type: '01' });
  await deviceUpdate(request, plug, { switch: 'on', power: 1200, voltage: 230, current: 5.2, energy: 10.5 });
  await deviceUpdate(request, plug, { switch: 'on', energy: 11 });
  await deviceUpdate(request, plug, { switch: 'on', power: '800', energy: '12.25' });

  await logIn(page, me.email, me.password);
  await page.goto(`/devices/${plug.deviceid}`);
  await expect(page.getByTestId('power-state')).toHaveText('On');
  await expect(page.getByTestId('reading-power')).toHaveText('800 W');
  await expect(page.getByTestId('reading-voltage')).toHaveText('230 V');
  await expect(page.getByTestId('reading-current')).toHaveText('5.2 A');
  await expect(page.getByTestId('reading-energy')).toHaveText('12.25 kWh');
  await expect(page.getByTestId('energy-used')).toHaveText('1.75 kWh');
  await expect(page.getByText("The energy counter's last reading minus its first in the period.")).toBeVisible();
  await expect(page.getByTestId('chart')).toHaveAttribute('data-field', 'power');
  await expect(page.getByTestId('chart-summary')).toHaveText('2 readings');
  await shot(page, 'device-switch-energy');

  // Live: a new reading moves the power and the energy used.
  await deviceUpdate(request, plug, { switch: 'on', power: 950.5, energy: 12.5 });
  await expect(page.getByTestId('reading-power')).toHaveText('950.5 W');
  await expect(page.getByTestId('energy-used')).toHaveText('2 kWh');
  await page.getByRole('link', { name: '← All devices' }).click();
  await expect(page.getByTestId('summary')).toHaveText('On · 950.5 W');
  await page.getByTestId('device-card').click();

  await page.getByRole('button', { name: 'Custom' }).click();
  await page.getByLabel('From').fill('2020-01-01T00:00');
  await page.getByLabel('To').fill('2020-01-02T00:00');
  await expect(page.getByTestId('energy-used')).toHaveText('No energy readings');
});

test('more readings than one answer holds draw as averages in a band from lowest to highest', async ({ page, request, browser }) => {
  const me = await register(request, 'buckets');
  const thermo = await api<Made>(request, 'POST', '/api/user/device', me.jwt, { name: 'Busy sensor', group: '', type: '03' });
  const device = await (await browser.newContext()).newPage();
  await connectDevice(device, thermo.deviceid, thermo.apikey, { temperature: 0, humidity: 50 });
  // 1,000 more over the socket, each acknowledged: 1,001 readings, over the server's cap of 1,000 points.
  await device.evaluate(
    ([deviceid, apikey]) =>
      new Promise<void>((resolve) => {
        const w = window as unknown as { frames_: { sequence?: string; error?: number }[]; device: WebSocket };
        for (let i = 1; i <= 1000; i++) {
          const params = { temperature: i % 10, humidity: 50 };
          w.device.send(JSON.stringify({ action: 'update', deviceid, apikey, params, sequence: `t${i}` }));
        }
        const timer = setInterval(() => {
          if (w.frames_.filter((f) => f.sequence?.startsWith('t') && f.error === 0).length === 1000) {
            clearInterval(timer);
            resolve();
          }
        }, 50);
      }),
    [thermo.deviceid, thermo.apikey] as const,
  );

  await logIn(page, me.email, me.password);
  const raw = page.waitForResponse((r) => r.url().includes('/history?') && !r.url().includes('bucket='));
  const bucketed = page.waitForResponse((r) => r.url().includes('/history?') && r.url().includes('bucket=auto'));
  await page.goto(`/devices/${thermo.deviceid}`);
  expect(await (await raw).json()).toMatchObject({ more: true, bucket: null });
  const answer = (await (await bucketed).json()) as { bucket: number; points: { temperature?: { count: number } }[] };
  // The last hour in at most 1,000 buckets: 3,600,001 ms → 4 s each.
  expect(answer.bucket).toBe(4);
  expect(answer.points.reduce((n, p) => n + (p.temperature?.count ?? 0), 0)).toBe(1001);
  // The device may send all of them within one bucket (its updates are pipelined).
  const n = answer.points.length;
  await expect(page.getByTestId('chart-summary')).toHaveText(
    `${n} ${n === 1 ? 'average' : 'averages'} over 4 s each, in a band from lowest to highest`,
  );
  await expect(page.getByTestId('chart').locator('canvas')).toBeVisible();
  await shot(page, 'device-chart-buckets');
});
