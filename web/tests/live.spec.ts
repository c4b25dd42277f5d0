/**
 * The live flow over /api/ws: a simulated device (a WebSocket client in a second browser page)
 * updates its state, the user's page shows it without reload, and the user's toggle reaches the
 * device's socket; for an indie device, the device's silence (504) and absence (503) are explained.
 */
import type { APIRequestContext, WebSocketRoute } from '@playwright/test';
import { connectDevice, deviceFrames, sendFromDevice } from './device-socket';
import { ADMIN_EMAIL, ADMIN_PASSWORD } from './env';
import { api, expect, logIn, register, shot, test } from './fixtures';

test('a device update shows without reload, and the switch toggle reaches the device', async ({ page, request, browser }) => {
  const me = await register(request, 'live');
  const plug = await api<{ deviceid: string; apikey: string }>(request, 'POST', '/api/user/device', me.jwt, {
    name: 'Live plug',
    group: '',
    type: '01',
  });
  await logIn(page, me.email, me.password);
  await page.goto(`/devices/${plug.deviceid}`);
  await expect(page.getByTestId('online')).toHaveText('Offline');

  const device = await (await browser.newContext()).newPage();
  await connectDevice(device, plug.deviceid, plug.apikey);
  await expect(page.getByTestId('online')).toHaveText('Online');
  await expect(page.getByTestId('power-state')).toHaveText('Off');

  await sendFromDevice(device, { action: 'update', deviceid: plug.deviceid, apikey: plug.apikey, params: { switch: 'on' } });
  await expect(page.getByTestId('power-state')).toHaveText('On');
  await expect(page.getByTestId('live-banner')).toHaveCount(0);
  await shot(page, 'device-live');

  await page.getByRole('button', { name: 'Turn off' }).click();
  await expect
    .poll(async () => (await deviceFrames(device)).filter((f) => f.action === 'update').map((f) => f.params))
    .toContainEqual({ switch: 'off' });
  await expect(page.getByTestId('power-state')).toHaveText('Off');
  await expect(page.getByTestId('control-error')).toHaveCount(0);

  // A DIY device's state is stored even while it is away: the app shows it, no error.
  await device.context().close();
  await expect(page.getByTestId('online')).toHaveText('Offline');
  await page.getByRole('button', { name: 'Turn on' }).click();
  await expect(page.getByTestId('power-state')).toHaveText('On');
  await expect(page.getByTestId('control-error')).toHaveCount(0);
  await page.getByRole('link', { name: '← All devices' }).click();
  await expect(page.getByTestId('device-card')).toContainText('Offline');
  await expect(page.getByTestId('summary')).toHaveText('On');
});

/** A license made by the admin and claimed by `jwt`'s user, as a factory switch. */
async function claimedSwitch(request: APIRequestContext, jwt: string): Promise<{ deviceid: string; apikey: string }> {
  const admin = await api<{ jwt: string }>(request, 'POST', '/api/admin/login', undefined, {
    email: ADMIN_EMAIL,
    password: ADMIN_PASSWORD,
  });
  const [license] = await api<{ deviceid: string; apikey: string }[]>(
    request,
    'POST',
    '/api/admin/factorydevices/create',
    admin.jwt,
    { name: 'Factory plug', type: '01', qty: 1 },
  );
  return api(request, 'POST', '/api/user/device/add', jwt, {
    name: 'Factory plug',
    group: 'Hall',
    deviceid: license?.deviceid,
    apikey: license?.apikey,
  });
}

test('commands to an indie device wait for its answer; silence and absence are explained', async ({
  page,
  request,
  browser,
}) => {
  const me = await register(request, 'indie');
  const plug = await claimedSwitch(request, me.jwt);
  await logIn(page, me.email, me.password);
  await page.goto(`/devices/${plug.deviceid}`);
  await page.getByText('Connect your device').click();
  await expect(page.getByTestId('indie-note')).toBeVisible();

  const device = await (await browser.newContext()).newPage();
  await connectDevice(device, plug.deviceid, plug.apikey);
  await expect(page.getByTestId('online')).toHaveText('Online');
  await expect(page.getByTestId('power-state')).toHaveText('Off');

  await page.getByRole('button', { name: 'Turn on' }).click();
  await expect(page.getByTestId('power-state')).toHaveText('On');
  const commands = (await deviceFrames(device)).filter((f) => f.action === 'update');
  expect(commands.map((f) => f.params)).toEqual([{ switch: 'on' }]);
  expect(commands[0]?.sequence).toBeTruthy();

  await device.evaluate(() => ((window as unknown as { silent: boolean }).silent = true));
  await page.getByRole('button', { name: 'Turn off' }).click();
  await expect(page.getByTestId('control-error')).toHaveText(
    'The device did not answer in time. Check its connection and try again.',
  );
  await expect(page.getByTestId('power-state')).toHaveText('On');

  await device.context().close();
  await expect(page.getByTestId('online')).toHaveText('Offline');
  await page.getByRole('button', { name: 'Turn off' }).click();
  await expect(page.getByTestId('control-error')).toHaveText(
    'The device is offline. Check that it is powered and connected, then try again.',
  );
});

test('a lost connection shows the banner, then reconnects and subscribes again', async ({ page, request, browser }) => {
  const me = await register(request, 'reconnect');
  const plug = await api<{ deviceid: string; apikey: string }>(request, 'POST', '/api/user/device', me.jwt, {
    name: 'Flaky plug',
    group: '',
    type: '01',
  });
  // Route the app's socket through the test: the first one is cut, the next three are refused.
  const attempts: WebSocketRoute[] = [];
  await page.routeWebSocket(/\/api\/ws$/, (ws) => {
    attempts.push(ws);
    if (attempts.length === 1 || attempts.length > 4) ws.connectToServer();
    else void ws.close();
  });
  await logIn(page, me.email, me.password);
  await page.getByTestId('device-card').click();
  await expect(page.getByTestId('power-state')).toHaveText('Unknown');
  expect(attempts).toHaveLength(1);
  await expect(page.getByTestId('live-banner')).toHaveCount(0);

  await attempts[0]?.close();
  await expect(page.getByTestId('live-banner')).toHaveText(
    'Live connection lost: reconnecting… Device states may be out of date.',
  );
  await shot(page, 'reconnecting');
  await expect(page.getByTestId('live-banner')).toHaveCount(0, { timeout: 15_000 });
  expect(attempts).toHaveLength(5);

  // Subscribed again: a device update reaches the page without reload.
  const device = await (await browser.newContext()).newPage();
  await connectDevice(device, plug.deviceid, plug.apikey);
  await expect(page.getByTestId('online')).toHaveText('Online');
  await sendFromDevice(device, { action: 'update', deviceid: plug.deviceid, apikey: plug.apikey, params: { switch: 'on' } });
  await expect(page.getByTestId('power-state')).toHaveText('On');
});
