/**
 * The server's Content-Security-Policy (docs/security.md, "Web hardening") lets the app
 * work: the main pages, a device page with its live WebSocket and a map, the admin pages
 * and the API docs load without a single CSP violation in the console.
 */
import type { Page } from '@playwright/test';
import { adminLogIn, api, deviceUpdate, expect, logIn, register, test } from './fixtures';

/** Every CSP violation Chromium reports on `page` (it logs each as a console error). */
function violations(page: Page): string[] {
  const seen: string[] = [];
  page.on('console', (m) => {
    if (/Content Security Policy|Content-Security-Policy/i.test(m.text())) seen.push(m.text());
  });
  return seen;
}

test('the main pages load with no CSP violation', async ({ page, request }) => {
  const seen = violations(page);
  // Offline: tile requests fail, but only after the policy let them go.
  await page.route(/tile\.openstreetmap\.org/, (route) => route.abort('internetdisconnected'));
  const me = await register(request, 'csp');
  const tracker = await api<{ deviceid: string; apikey: string }>(request, 'POST', '/api/user/device', me.jwt, {
    name: 'Bike',
    group: '',
    type: '04',
  });
  await deviceUpdate(request, tracker, { lat: 48.8584, lng: 2.2945 });

  const index = await page.goto('/');
  expect(index?.headers()['content-security-policy']).toContain("script-src 'self'");
  await page.goto('/signup');
  await expect(page.getByRole('button', { name: 'Sign up' })).toBeVisible();
  await logIn(page, me.email, me.password);
  await page.goto(`/devices/${tracker.deviceid}`);
  await expect(page.getByTestId('map')).toHaveAttribute('data-track-points', '1');
  // The live socket works under connect-src 'self': a new position shows at once.
  await deviceUpdate(request, tracker, { lat: 48.8606, lng: 2.3376 });
  await expect(page.getByTestId('map')).toHaveAttribute('data-track-points', '2');

  await adminLogIn(page);
  await page.goto('/admin/devices');
  await expect(page.getByText('Bike').first()).toBeVisible();

  await page.goto('/api/docs/');
  await expect(page.locator('.swagger-ui .info .title')).toContainText('IoTgo');
  expect(seen).toEqual([]);
});
