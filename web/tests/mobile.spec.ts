import { adminLogIn, api, deviceUpdate, expect, expectNoHorizontalScroll, logIn, register, shot, test } from './fixtures';

test.use({ viewport: { width: 375, height: 812 }, isMobile: true, hasTouch: true });

test('on a 375 px phone the user pages do not scroll sideways', async ({ page, request }) => {
  const me = await register(request, 'phone');
  const plug = await api<{ deviceid: string }>(request, 'POST', '/api/user/device', me.jwt, {
    name: 'A device with a rather long name for a small screen',
    group: 'Living room',
    type: '01',
  });
  await api(request, 'POST', '/api/user/device', me.jwt, { name: 'Thermometer', group: 'Living room', type: '03' });

  await page.goto('/signup');
  await expect(page.getByRole('heading', { name: 'Create your IoTgo account' })).toBeVisible();
  await expectNoHorizontalScroll(page);
  await shot(page, 'phone-signup');

  await logIn(page, me.email, me.password);
  await expect(page.getByTestId('device-card')).toHaveCount(2);
  await expectNoHorizontalScroll(page);
  await shot(page, 'phone-devices');

  await page.getByRole('button', { name: 'Add device' }).click();
  await page.getByRole('button', { name: 'Claim a device' }).click();
  await expectNoHorizontalScroll(page);

  await page.goto(`/devices/${plug.deviceid}`);
  await page.getByRole('button', { name: 'Add timer' }).click();
  await page.getByText('Connect your device').click();
  await expect(page.getByTestId('curl-example')).toBeVisible();
  await expectNoHorizontalScroll(page);
  await shot(page, 'phone-device');

  await page.goto('/profile');
  await expect(page.getByTestId('apikey')).toHaveText(me.apikey);
  await expectNoHorizontalScroll(page);
  await shot(page, 'phone-profile');
});

test('on a 375 px phone the device pages with controls, charts and the map do not scroll sideways', async ({ page, request }) => {
  const me = await register(request, 'phone-history');
  const make = (name: string, type: string) =>
    api<{ deviceid: string; apikey: string }>(request, 'POST', '/api/user/device', me.jwt, { name, group: '', type });
  const [plug, lamp, thermo, bike] = await Promise.all([make('Plug', '01'), make('Lamp', '02'), make('Thermometer', '03'), make('Bike', '04')]);
  await deviceUpdate(request, plug, { switch: 'on', power: 1200, voltage: 230, current: 5.2, energy: 10.5 });
  await deviceUpdate(request, plug, { switch: 'on', power: 800, energy: 12.25 });
  await deviceUpdate(request, lamp, { light: 'on', brightness: 60, color: '#ff8800' });
  await deviceUpdate(request, thermo, { temperature: 21.5, humidity: 40 });
  await deviceUpdate(request, thermo, { temperature: 22, humidity: 41 });
  await deviceUpdate(request, bike, { lat: 48.8584, lng: 2.2945 });
  await deviceUpdate(request, bike, { lat: 48.8606, lng: 2.3376 });
  await page.route(/tile\.openstreetmap\.org/, (route) => route.abort('internetdisconnected'));

  await logIn(page, me.email, me.password);
  for (const [device, name] of [
    [plug, 'switch'],
    [lamp, 'light'],
    [thermo, 'sensor'],
    [bike, 'gps'],
  ] as const) {
    await page.goto(`/devices/${device.deviceid}`);
    await expect(page.getByTestId('chart').locator('canvas')).toBeVisible();
    if (name === 'gps') await expect(page.getByTestId('map').locator('path.track')).toHaveCount(1);
    await page.getByRole('button', { name: 'Custom' }).click();
    await expectNoHorizontalScroll(page);
    await shot(page, `phone-device-${name}`);
  }
});

test('on a 375 px phone the admin pages do not scroll sideways', async ({ page }) => {
  await adminLogIn(page);
  await expectNoHorizontalScroll(page);
  await shot(page, 'phone-admin-users');
  for (const name of ['Devices', 'Licenses']) {
    await page.getByRole('link', { name }).click();
    await expect(page.getByRole('heading', { name, exact: true })).toBeVisible();
    await expectNoHorizontalScroll(page);
    await shot(page, `phone-admin-${name.toLowerCase()}`);
  }
});
