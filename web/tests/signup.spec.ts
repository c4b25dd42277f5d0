import { expect, test, uniqueEmail } from './fixtures';

// The captcha test fakes a server with a reCAPTCHA site key, but the real server under
// test has none, so its Content-Security-Policy (rightly) refuses Google's script: that
// test bypasses the policy. The policy with a site key is checked by the server's tests
// (tests/api/headers.rs).
test.use({ bypassCSP: true });

test('sign up shows the captcha when the server requires one and sends its token', async ({ page }) => {
  // The server's public config asks for a captcha; the reCAPTCHA script is a stand-in that
  // renders a button and hands its callback a token.
  await page.route('**/api/config', (route) =>
    route.fulfill({ json: { version: 'test', recaptchaSiteKey: 'site-key-123', captchaRequired: true } }),
  );
  await page.route('https://www.google.com/recaptcha/api.js**', (route) =>
    route.fulfill({
      contentType: 'text/javascript',
      body: `window.grecaptcha = {
        render(el, opts) {
          const b = document.createElement('button');
          b.type = 'button';
          b.textContent = 'I am not a robot (' + opts.sitekey + ')';
          b.onclick = () => opts.callback('captcha-token-1');
          el.append(b);
          return 7;
        },
        reset() {},
      };
      window.iotgoCaptchaReady();`,
    }),
  );
  let sent: unknown = null;
  page.on('request', (r) => {
    if (r.url().endsWith('/api/user/register')) sent = r.postDataJSON();
  });

  const email = uniqueEmail('captcha');
  await page.goto('/signup');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password', { exact: true }).fill('password-123');
  await page.getByLabel('Repeat password').fill('password-123');
  await page.getByRole('button', { name: 'Sign up' }).click();
  await expect(page.getByRole('alert')).toHaveText('Please confirm that you are not a robot.');
  expect(sent).toBeNull();

  await page.getByRole('button', { name: 'I am not a robot (site-key-123)' }).click();
  await page.getByRole('button', { name: 'Sign up' }).click();
  await expect(page.getByRole('heading', { name: 'Your devices' })).toBeVisible();
  expect(sent).toEqual({ email, password: 'password-123', response: 'captcha-token-1' });
});

test('sign up without a captcha checks the passwords before asking the server', async ({ page }) => {
  await page.goto('/signup');
  await expect(page.getByRole('button', { name: /robot/ })).toHaveCount(0);
  await page.getByLabel('Email').fill(uniqueEmail('mismatch'));
  await page.getByLabel('Password', { exact: true }).fill('password-123');
  await page.getByLabel('Repeat password').fill('password-124');
  await page.getByRole('button', { name: 'Sign up' }).click();
  await expect(page.getByRole('alert')).toHaveText('The two passwords are not the same.');
});

test('signing up twice with one e-mail shows the server message', async ({ page, request }) => {
  const email = uniqueEmail('twice');
  const first = await request.post('/api/user/register', { data: { email, password: 'password-123', response: '' } });
  expect(first.status()).toBe(200);
  await page.goto('/signup');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password', { exact: true }).fill('password-123');
  await page.getByLabel('Repeat password').fill('password-123');
  await page.getByRole('button', { name: 'Sign up' }).click();
  await expect(page.getByRole('alert')).toHaveText('Email address already exists, please choose another one.');
});
