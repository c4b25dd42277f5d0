import { readFile } from 'node:fs/promises';
import { ADMIN_EMAIL, ADMIN_PASSWORD } from './env';
import { adminLogIn, api, expect, logIn, register, shot, test } from './fixtures';

test('admin generates licenses, a user claims one, admin sees the user and the device, then deletes the user', async ({
  page,
  request,
  browser,
}) => {
  await adminLogIn(page);
  await page.getByRole('link', { name: 'Licenses' }).click();
  await page.getByLabel('Product name').fill('Smart plug');
  await page.getByLabel('Type').first().selectOption('01');
  await page.getByLabel('Quantity').fill('3');
  await page.getByRole('button', { name: 'Generate' }).click();
  const made = page.getByTestId('batch-made');
  await expect(made).toHaveText(/^Batch 01[89a-f][0-9a-f]{7}: 3 licenses generated\.$/);
  const batch = /Batch (\w+)/.exec((await made.textContent()) ?? '')?.[1] ?? '';

  // Only this batch, by the batch filter.
  await page.getByLabel('Batch').fill(batch);
  await page.getByRole('button', { name: 'Search' }).click();
  const rows = page.getByTestId('license-row');
  await expect(rows).toHaveCount(3);
  await expect(page.getByTestId('page-info')).toHaveText('1–3 of 3');
  await shot(page, 'admin-licenses');

  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download CSV' }).click()]);
  expect(download.suggestedFilename()).toBe(`licenses-${batch}.csv`);
  const csv = (await readFile(await download.path(), 'utf8')).trim().split('\n');
  expect(csv[0]).toBe('deviceid,apikey,type,name,batch,createdAt');
  expect(csv).toHaveLength(4);
  const [deviceid, apikey, type, name, inBatch] = (csv[1] ?? '').split(',');
  expect([type, name, inBatch]).toEqual(['01', 'Smart plug', batch]);

  // A user claims a license with its deviceid and apikey.
  const me = await register(request, 'claim');
  const userPage = await (await browser.newContext()).newPage();
  await logIn(userPage, me.email, me.password);
  await userPage.getByRole('button', { name: 'Add device' }).click();
  await userPage.getByRole('button', { name: 'Claim a device' }).click();
  await userPage.getByLabel('Name').fill('Hall plug');
  await userPage.getByLabel('Group').fill('Hall');
  await userPage.getByLabel('Device ID').fill(deviceid ?? '');
  await userPage.getByLabel('Device API key').fill('00000000-0000-4000-8000-000000000000');
  await userPage.getByRole('button', { name: 'Claim device' }).click();
  await expect(userPage.getByRole('alert')).toHaveText('Device does not exist!');
  await userPage.getByLabel('Device API key').fill(apikey ?? '');
  await userPage.getByRole('button', { name: 'Claim device' }).click();
  await expect(userPage).toHaveURL(new RegExp(`/devices/${deviceid}$`));
  await expect(userPage.getByTestId('device-name')).toHaveText('Hall plug');
  await expect(userPage.getByTestId('power-state')).toHaveText('Unknown');
  await userPage.context().close();

  // The admin finds the user by e-mail and sees the claimed device.
  await page.getByRole('link', { name: 'Users' }).click();
  await page.getByLabel('Email contains').fill(me.email);
  await page.getByRole('button', { name: 'Search' }).click();
  await expect(page.getByTestId('user-row')).toHaveCount(1);
  await shot(page, 'admin-users');
  await page.getByRole('link', { name: me.email }).click();
  await expect(page.getByTestId('user-email')).toHaveText(me.email);
  await expect(page.getByTestId('device-row')).toHaveCount(1);
  await expect(page.getByTestId('device-row')).toContainText(`Hall plug`);
  await expect(page.getByTestId('device-row')).toContainText(deviceid ?? '');

  await page.getByRole('link', { name: 'Devices' }).click();
  await page.getByLabel('Device ID contains').fill(deviceid ?? '');
  await page.getByRole('button', { name: 'Search' }).click();
  await expect(page.getByTestId('device-row')).toHaveCount(1);
  await expect(page.getByTestId('device-row')).toContainText('Switch');
  await shot(page, 'admin-devices');

  // Delete the user, after confirming.
  await page.getByTestId('device-row').getByRole('link', { name: 'User' }).click();
  await page.getByRole('button', { name: 'Delete user' }).click();
  const dialog = page.getByRole('dialog', { name: 'Delete user' });
  await expect(dialog).toContainText(`Delete ${me.email} and all of their 1 device(s)? This cannot be undone.`);
  await dialog.getByRole('button', { name: 'Delete' }).click();
  await expect(page).toHaveURL(/\/admin\/users$/);
  await page.getByLabel('Email contains').fill(me.email);
  await page.getByRole('button', { name: 'Search' }).click();
  await expect(page.getByText('No users found.')).toBeVisible();
});

test('admin pages through users and filters devices by type', async ({ page, request }) => {
  const tag = `page${Date.now().toString(36)}`;
  const users = [];
  for (let i = 0; i < 23; i++) users.push(await register(request, tag));
  const first = users[0]!;
  await api(request, 'POST', '/api/user/device', first.jwt, { name: 'Thermo', group: '', type: '03' });
  await api(request, 'POST', '/api/user/device', first.jwt, { name: 'Bulb', group: '', type: '02' });

  await adminLogIn(page);
  await page.getByLabel('Email contains').fill(tag);
  await page.getByRole('button', { name: 'Search' }).click();
  await expect(page.getByTestId('page-info')).toHaveText('1–20 of 23');
  await expect(page.getByTestId('user-row')).toHaveCount(20);
  await expect(page.getByRole('button', { name: 'Previous' })).toBeDisabled();
  await page.getByRole('button', { name: 'Next' }).click();
  await expect(page.getByTestId('page-info')).toHaveText('21–23 of 23');
  await expect(page.getByTestId('user-row')).toHaveCount(3);
  await expect(page.getByRole('button', { name: 'Next' })).toBeDisabled();

  await page.getByRole('link', { name: 'Devices' }).click();
  await page.getByLabel('Owner API key').fill(first.apikey);
  await page.getByRole('button', { name: 'Search' }).click();
  await expect(page.getByTestId('device-row')).toHaveCount(2);
  await page.getByLabel('Type').selectOption('03');
  await page.getByRole('button', { name: 'Search' }).click();
  await expect(page.getByTestId('device-row')).toHaveCount(1);
  await expect(page.getByTestId('device-row')).toContainText('Thermo');
});

test('a wrong admin password is refused with the server message', async ({ page }) => {
  await page.goto('/admin');
  await page.getByLabel('Admin email').fill(ADMIN_EMAIL);
  await page.getByLabel('Password').fill(`${ADMIN_PASSWORD}-wrong`);
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page.getByRole('alert')).toHaveText('Email address or password is not correct!');
  await shot(page, 'admin-login');
});
