/**
 * The pages of the mailed links and "Forgot password?". The test server has no SMTP server,
 * so where a page needs mail to have gone out, the answer of that one route is stubbed;
 * everything else is the real server (a made-up token is refused by it).
 */
import { expect, logIn, register, test, uniqueEmail } from './fixtures';

const BAD_LINK = 'This link is not valid: it was used already, or it expired.';

test('"Forgot password?" shows only when the server sends mail, and mails a link', async ({ page }) => {
  await page.goto('/login');
  await expect(page.getByRole('heading', { name: 'Log in to IoTgo' })).toBeVisible();
  await expect(page.getByRole('link', { name: 'Forgot password?' })).toHaveCount(0);

  await page.route('**/api/config', async (route) => {
    const real = await (await route.fetch()).json();
    await route.fulfill({ json: { ...real, mailEnabled: true } });
  });
  let asked: unknown = null;
  await page.route('**/api/user/password/forgot', (route) => {
    asked = route.request().postDataJSON();
    return route.fulfill({ json: {} });
  });
  await page.goto('/login');
  await page.getByRole('link', { name: 'Forgot password?' }).click();
  await expect(page).toHaveURL(/\/forgot-password$/);
  const email = uniqueEmail('forgot');
  await page.getByLabel('Email').fill(email);
  await page.getByRole('button', { name: 'Send the link' }).click();

  await expect(page.getByRole('status')).toContainText(`If an account uses ${email}, we sent it a link`);
  expect(asked).toEqual({ email });
});

test('without mail the forgotten-password page shows the server message', async ({ page }) => {
  await page.goto('/forgot-password');
  await page.getByLabel('Email').fill(uniqueEmail('nomail'));
  await page.getByRole('button', { name: 'Send the link' }).click();
  await expect(page.getByRole('alert')).toHaveText('This server does not send e-mail.');
});

test('a reset link opens the page that sets the new password', async ({ page }) => {
  // The server redirects the link to the app with its query kept.
  await page.goto('/reset-password?token=00ff');
  await expect(page).toHaveURL(/\/reset-password\?token=00ff$/);
  await page.getByLabel('New password', { exact: true }).fill('password-456');
  await page.getByLabel('Repeat new password').fill('password-457');
  await page.getByRole('button', { name: 'Set the new password' }).click();
  await expect(page.getByRole('alert')).toHaveText('The two passwords are not the same.');

  await page.getByLabel('Repeat new password').fill('password-456');
  await page.getByRole('button', { name: 'Set the new password' }).click();
  await expect(page.getByRole('alert')).toHaveText(BAD_LINK);

  let sent: unknown = null;
  await page.route('**/api/user/password/reset', (route) => {
    sent = route.request().postDataJSON();
    return route.fulfill({ json: {} });
  });
  await page.getByRole('button', { name: 'Set the new password' }).click();
  await expect(page.getByRole('status')).toHaveText('Your password has been changed. You can log in with it now.');
  expect(sent).toEqual({ token: '00ff', newPassword: 'password-456' });
});

test('a verification link signs in, and an unverified account is asked to verify', async ({ page, request }) => {
  await page.goto('/verify-email?token=abcd');
  await page.getByRole('button', { name: 'Verify my address' }).click();
  await expect(page.getByRole('alert')).toHaveText(BAD_LINK);

  // A real account, whose token is made to say what a server with verification on says.
  const account = await register(request, 'unverified');
  const [head, payload, sig] = account.jwt.split('.');
  const claims = JSON.parse(Buffer.from(payload ?? '', 'base64url').toString());
  const unverified = `${head}.${Buffer.from(JSON.stringify({ ...claims, isActivated: false })).toString('base64url')}.${sig}`;
  await page.evaluate(
    ([jwt, email, apikey]) =>
      localStorage.setItem('iotgo.user', JSON.stringify({ jwt, user: { email, apikey, createdAt: new Date().toISOString() } })),
    [unverified, account.email, account.apikey],
  );
  await page.route('**/api/user/email/resend', (route) => route.fulfill({ json: {} }));
  await page.goto('/');
  await expect(page.getByRole('heading', { name: 'Verify your e-mail address' })).toBeVisible();
  await expect(page.getByText(account.email)).toBeVisible();
  await page.getByRole('button', { name: 'Send the link again' }).click();
  await expect(page.getByRole('status')).toContainText('We sent the link again');

  // The link's answer is a session that says activated: the devices show.
  await page.route('**/api/user/email/verify', (route) =>
    route.fulfill({ json: { jwt: account.jwt, user: { email: account.email, apikey: account.apikey, createdAt: new Date().toISOString() } } }),
  );
  await page.goto('/verify-email?token=abcd');
  await page.getByRole('button', { name: 'Verify my address' }).click();
  await expect(page.getByRole('heading', { name: 'Your devices' })).toBeVisible();
});

test('the profile asks for an e-mail change with the password', async ({ page, request }) => {
  const account = await register(request, 'mover');
  await page.route('**/api/config', async (route) => {
    const real = await (await route.fetch()).json();
    await route.fulfill({ json: { ...real, mailEnabled: true } });
  });
  await logIn(page, account.email, account.password);
  await page.getByRole('link', { name: 'Profile' }).click();
  const newEmail = uniqueEmail('moved');
  await page.getByLabel('New e-mail address').fill(newEmail);
  await page.getByLabel('Password', { exact: true }).fill(account.password);
  // The test server sends no mail: the real answer says so.
  await page.getByRole('button', { name: 'Change e-mail address' }).click();
  await expect(page.getByRole('alert')).toHaveText('This server does not send e-mail.');

  let sent: unknown = null;
  await page.route('**/api/user/email', (route) => {
    sent = route.request().postDataJSON();
    return route.fulfill({ json: {} });
  });
  await page.getByRole('button', { name: 'Change e-mail address' }).click();
  await expect(page.getByRole('status')).toHaveText(`We sent a link to ${newEmail}. Open it to use that address.`);
  expect(sent).toEqual({ email: newEmail, password: account.password });
});
