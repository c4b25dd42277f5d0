import { adminLogIn, api, expect, expectNoHorizontalScroll, logIn, register, shot, test } from './fixtures';

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
