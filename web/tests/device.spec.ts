import { api, expect, logIn, register, shot, test } from './fixtures';

interface Stored {
  params: Record<string, unknown>;
}

test('a custom device shows its params and sends a JSON update', async ({ page, request }) => {
  const me = await register(request, 'custom');
  const robot = await api<{ deviceid: string }>(request, 'POST', '/api/user/device', me.jwt, { name: 'Robot', group: 'Lab', type: '00' });
  await logIn(page, me.email, me.password);
  await page.getByTestId('device-card').click();
  await expect(page.getByTestId('params')).toHaveText('{}');

  await page.getByLabel('Send an update (JSON object)').fill('{"status": "ready", "level": 3}');
  await page.getByRole('button', { name: 'Send update' }).click();
  await expect(page.getByTestId('params')).toHaveText('{\n  "status": "ready",\n  "level": 3\n}');
  await expect(page.getByTestId('control-error')).toHaveCount(0);
  const stored = await api<Stored>(request, 'GET', `/api/user/device/${robot.deviceid}`, me.jwt);
  expect(stored.params).toEqual({ status: 'ready', level: 3 });
  await shot(page, 'device-custom');
});

test('timers of a switch are edited, validated, saved in params and shown again', async ({ page, request }) => {
  const me = await register(request, 'timers');
  const plug = await api<{ deviceid: string }>(request, 'POST', '/api/user/device', me.jwt, { name: 'Heater', group: '', type: '01' });
  await logIn(page, me.email, me.password);
  await page.getByTestId('device-card').click();
  await expect(page.getByText('No timers. Add one to switch this device on or off by itself.')).toBeVisible();

  await page.getByRole('button', { name: 'Add timer' }).click();
  await page.getByRole('button', { name: 'Add timer' }).click();
  const [once, repeat] = [page.getByTestId('timer').nth(0), page.getByTestId('timer').nth(1)];
  await once.getByLabel('Date and time').fill('2030-01-02T07:30');
  await repeat.getByLabel('When').selectOption('repeat');
  await repeat.getByLabel('Cron').fill('every morning');
  await repeat.getByLabel('Turn').selectOption('off');
  await repeat.getByLabel('Enabled').uncheck();
  await page.getByRole('button', { name: 'Save timers' }).click();
  await expect(page.getByRole('alert')).toHaveText('Timer 2: a repeat needs a cron expression like "0 7 * * 1-5".');

  await repeat.getByLabel('Cron').fill('0 22 * * 1-5');
  await page.getByRole('button', { name: 'Save timers' }).click();
  await expect(page.getByText('Timers saved.')).toBeVisible();
  await shot(page, 'device-timers');

  const stored = await api<Stored>(request, 'GET', `/api/user/device/${plug.deviceid}`, me.jwt);
  const at = await page.evaluate(() => new Date('2030-01-02T07:30').toISOString());
  expect(stored.params.timers).toEqual([
    { enabled: true, type: 'once', at, do: { switch: 'on' } },
    { enabled: false, type: 'repeat', at: '0 22 * * 1-5', do: { switch: 'off' } },
  ]);

  await page.reload();
  await expect(page.getByTestId('timer')).toHaveCount(2);
  await expect(once.getByLabel('Date and time')).toHaveValue('2030-01-02T07:30');
  await expect(repeat.getByLabel('Cron')).toHaveValue('0 22 * * 1-5');
  await expect(repeat.getByLabel('Enabled')).not.toBeChecked();

  await page.getByRole('button', { name: 'Remove timer 1' }).click();
  await page.getByRole('button', { name: 'Remove timer 1' }).click();
  await page.getByRole('button', { name: 'Save timers' }).click();
  await expect(page.getByText('All timers removed.')).toBeVisible();
  const cleared = await api<Stored>(request, 'GET', `/api/user/device/${plug.deviceid}`, me.jwt);
  expect(cleared.params.timers).toEqual([]);
});
