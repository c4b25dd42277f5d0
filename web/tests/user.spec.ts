import { api, expect, logIn, register, shot, test, uniqueEmail } from './fixtures';

test('sign up, create a device, see it in its group, rename and regroup it, delete it', async ({ page }) => {
  const email = uniqueEmail('signup');
  await page.goto('/signup');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password', { exact: true }).fill('password-123');
  await page.getByLabel('Repeat password').fill('password-123');
  await shot(page, 'signup');
  await page.getByRole('button', { name: 'Sign up' }).click();
  await expect(page.getByRole('heading', { name: 'Your devices' })).toBeVisible();
  await expect(page.getByRole('heading', { name: 'No devices yet' })).toBeVisible();

  await page.getByRole('button', { name: 'Add device' }).click();
  await page.getByLabel('Name').fill('Desk lamp');
  await page.getByLabel('Group').fill('Kitchen');
  await page.getByLabel('Type').selectOption('02');
  await page.getByRole('button', { name: 'Create device' }).click();

  // The new device's page: a DIY light's id is type 02 and a serial in the lower half.
  await expect(page).toHaveURL(/\/devices\/02[0-7][0-9a-f]{7}$/);
  const deviceid = new URL(page.url()).pathname.split('/')[2];
  await expect(page.getByTestId('device-name')).toHaveText('Desk lamp');
  await expect(page.getByTestId('device-group')).toHaveText('Kitchen');
  await expect(page.getByTestId('online')).toHaveText('Offline');
  await expect(page.getByTestId('power-state')).toHaveText('Unknown');
  await expect(page.getByRole('button', { name: 'Turn on' })).toBeVisible();

  await page.getByRole('link', { name: '← All devices' }).click();
  const kitchen = page.getByRole('region', { name: 'Kitchen' });
  await expect(kitchen.getByTestId('device-card')).toHaveCount(1);
  await expect(kitchen.getByTestId('device-card')).toContainText('Desk lamp');
  await expect(kitchen.getByTestId('device-card')).toContainText(`Light · ${deviceid}`);
  await shot(page, 'devices');

  await kitchen.getByTestId('device-card').click();
  await page.getByLabel('Name').fill('Reading lamp');
  await page.getByLabel('Group').fill('Office');
  await page.getByRole('button', { name: 'Save name and group' }).click();
  await expect(page.getByText('Saved.')).toBeVisible();
  await expect(page.getByTestId('device-name')).toHaveText('Reading lamp');
  await expect(page.getByTestId('device-group')).toHaveText('Office');

  await page.getByRole('link', { name: '← All devices' }).click();
  await expect(page.getByRole('region', { name: 'Kitchen' })).toHaveCount(0);
  await expect(page.getByRole('region', { name: 'Office' }).getByTestId('device-card')).toContainText('Reading lamp');

  // Deleting asks first; cancelling keeps the device.
  await page.getByTestId('device-card').click();
  await page.getByRole('button', { name: 'Delete device' }).click();
  const dialog = page.getByRole('dialog', { name: 'Delete device' });
  await expect(dialog).toContainText(`Delete “Reading lamp” (${deviceid})? This cannot be undone.`);
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  await expect(dialog).toBeHidden();
  await page.getByRole('button', { name: 'Delete device' }).click();
  await dialog.getByRole('button', { name: 'Delete' }).click();
  await expect(page).toHaveURL(/\/$/);
  await expect(page.getByRole('heading', { name: 'No devices yet' })).toBeVisible();
});

test('a device page shows type-specific state and the connect panel', async ({ page, request }) => {
  const me = await register(request, 'kinds');
  const sensor = await api<{ deviceid: string; deviceKey: string }>(request, 'POST', '/api/user/device', me.jwt, { name: 'Balcony', group: '', type: '03' });
  const custom = await api<{ deviceid: string }>(request, 'POST', '/api/user/device', me.jwt, { name: 'Robot', group: 'Lab', type: '00' });
  await logIn(page, me.email, me.password);
  await expect(page.getByRole('region', { name: 'No group' }).getByTestId('device-card')).toContainText('Balcony');

  await page.goto(`/devices/${sensor.deviceid}`);
  await expect(page.getByTestId('reading-temperature')).toHaveText('– °C');
  await expect(page.getByTestId('reading-humidity')).toHaveText('– %');
  await page.getByText('Connect your device').click();
  await expect(page.getByTestId('connect-deviceid')).toHaveText(sensor.deviceid);
  await expect(page.getByTestId('connect-devicekey')).toHaveText(sensor.deviceKey);
  await expect(page.getByTestId('indie-note')).toHaveCount(0);
  const body = `{"action":"update","deviceid":"${sensor.deviceid}","apikey":"${sensor.deviceKey}","params":{"temperature":21.5,"humidity":48}}`;
  await expect(page.getByTestId('curl-example')).toContainText(`/api/http \\\n  -H 'Content-Type: application/json' \\\n  -d '${body}'`);
  await expect(page.getByTestId('ws-example')).toContainText(`/api/ws');\nws.onopen = () => ws.send('${body}');`);
  const { mqttPort } = await api<{ mqttPort: number }>(request, 'GET', '/api/config');
  await expect(page.getByTestId('mqtt-port')).toHaveText(String(mqttPort));
  await expect(page.getByTestId('mqtt-example')).toHaveText(
    `mosquitto_pub -h 127.0.0.1 -p ${mqttPort} \\\n  -u ${sensor.deviceid} -P ${sensor.deviceKey} -q 1 \\\n` +
      `  -t iotgo/${sensor.deviceid}/up -m '{"action":"update","params":{"temperature":21.5,"humidity":48}}'`,
  );
  await shot(page, 'device-sensor');
  // A new device key replaces the old one in the panel and its examples.
  page.once('dialog', (d) => void d.accept());
  await page.getByTestId('new-device-key').click();
  await expect(page.getByTestId('connect-devicekey')).not.toHaveText(sensor.deviceKey);
  const renewed = await api<{ deviceKey: string }>(request, 'GET', `/api/user/device/${sensor.deviceid}`, me.jwt);
  await expect(page.getByTestId('connect-devicekey')).toHaveText(renewed.deviceKey);
  await expect(page.getByTestId('curl-example')).toContainText(renewed.deviceKey);

  await page.goto(`/devices/${custom.deviceid}`);
  await expect(page.getByTestId('params')).toHaveText('{}');
  await page.getByLabel('Send an update (JSON object)').fill('[1, 2]');
  await page.getByRole('button', { name: 'Send update' }).click();
  await expect(page.getByTestId('control-error')).toHaveText('The update must be a JSON object, like {"status": "ready"}.');
  await page.getByLabel('Send an update (JSON object)').fill('{nope');
  await page.getByRole('button', { name: 'Send update' }).click();
  await expect(page.getByTestId('control-error')).toHaveText('That is not valid JSON.');
});

test('the profile shows the apikey and copies it', async ({ page, request, context }) => {
  await context.grantPermissions(['clipboard-read', 'clipboard-write']);
  const me = await register(request, 'profile');
  await logIn(page, me.email, me.password);
  await page.getByRole('link', { name: 'Profile' }).click();
  await expect(page.getByTestId('profile-email')).toHaveText(me.email);
  await expect(page.getByTestId('apikey')).toHaveText(me.apikey);
  await page.getByRole('button', { name: 'Copy API key' }).click();
  await expect(page.getByRole('button', { name: 'Copied!' })).toBeVisible();
  expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(me.apikey);
  await shot(page, 'profile');
});

test('a new API key keeps the user signed in; signing out everywhere ends every session', async ({ page, request }) => {
  const me = await register(request, 'rotate');
  await logIn(page, me.email, me.password);
  await page.getByRole('link', { name: 'Profile' }).click();
  await expect(page.getByTestId('apikey')).toHaveText(me.apikey);

  page.once('dialog', (d) => void d.accept());
  await page.getByTestId('new-apikey').click();
  await expect(page.getByTestId('apikey')).not.toHaveText(me.apikey);
  // The old token is dead; the page goes on with the fresh one.
  const old = await request.get('/api/user/device', { headers: { Authorization: `Bearer ${me.jwt}` } });
  expect(old.status()).toBe(401);
  await page.reload();
  await expect(page.getByTestId('profile-email')).toHaveText(me.email);

  page.once('dialog', (d) => void d.accept());
  await page.getByTestId('logout-all').click();
  await expect(page.getByRole('button', { name: 'Log in' })).toBeVisible();
});

test('changing the password keeps the user signed in; only the new password works afterwards', async ({ page, request }) => {
  const me = await register(request, 'password');
  await logIn(page, me.email, me.password);
  await page.goto('/profile');
  const form = page.locator('section', { hasText: 'Change password' });
  await form.getByLabel('Current password').fill('not-my-password');
  await form.getByLabel('New password', { exact: true }).fill('new-password-456');
  await form.getByLabel('Repeat new password').fill('new-password-456');
  await form.getByRole('button', { name: 'Change password' }).click();
  await expect(form.getByRole('alert')).toHaveText('Old password is not correct!');

  await form.getByLabel('Current password').fill(me.password);
  await form.getByRole('button', { name: 'Change password' }).click();
  await expect(form.getByRole('status')).toHaveText('Your password has been changed.');

  // The new token works: a reload still shows the user's pages.
  await page.reload();
  await expect(page.getByTestId('profile-email')).toHaveText(me.email);

  await page.getByRole('button', { name: 'Log out' }).click();
  await page.getByLabel('Email').fill(me.email);
  await page.getByLabel('Password').fill(me.password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page.getByRole('alert')).toHaveText('Email address or password is not correct!');
  await logIn(page, me.email, 'new-password-456');
});

test('a token the server no longer accepts leads back to the login page', async ({ page, request }) => {
  const me = await register(request, 'expired');
  await page.goto('/login');
  await page.evaluate(
    ([email, apikey]) =>
      localStorage.setItem('iotgo.user', JSON.stringify({ jwt: 'not.a.token', user: { email, apikey, createdAt: '' } })),
    [me.email, me.apikey],
  );
  await page.goto('/');
  await expect(page.getByRole('heading', { name: 'Log in to IoTgo' })).toBeVisible();
  await expect(page.getByRole('status')).toHaveText('Your session has ended. Please log in again.');
});

test('a deep link redirected by the server as ?path= opens that page', async ({ page, request }) => {
  const me = await register(request, 'deeplink');
  await logIn(page, me.email, me.password);
  await page.goto('/?path=%2Fprofile');
  await expect(page).toHaveURL(/\/profile$/);
  await expect(page.getByTestId('apikey')).toHaveText(me.apikey);
});
