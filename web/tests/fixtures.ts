/** The test fixture (pointed at the server started by global-setup) and shared steps. */
import { test as base, expect, type APIRequestContext, type Page } from '@playwright/test';
import { ADMIN_EMAIL, ADMIN_PASSWORD, SHOTS } from './env';

export const test = base.extend({
  baseURL: async ({}, use) => use(process.env.IOTGO_BASE_URL),
});
export { expect };

let counter = 0;

/** An e-mail address no other test uses. */
export function uniqueEmail(tag: string): string {
  return `${tag}-${Date.now().toString(36)}-${process.pid}-${++counter}@example.com`;
}

export interface Account {
  email: string;
  password: string;
  jwt: string;
  apikey: string;
}

/** Calls the Web API and fails the test on any error answer. */
export async function api<T>(request: APIRequestContext, method: 'GET' | 'POST', path: string, jwt?: string, data?: unknown): Promise<T> {
  const res = await request.fetch(path, {
    method,
    data,
    headers: jwt ? { Authorization: `Bearer ${jwt}` } : {},
  });
  expect(res.status(), `${method} ${path}`).toBe(200);
  const body = (await res.json()) as T & { error?: string };
  expect(body.error, `${method} ${path}`).toBeUndefined();
  return body;
}

/** A new user, registered through the API. */
export async function register(request: APIRequestContext, tag = 'user'): Promise<Account> {
  const email = uniqueEmail(tag);
  const password = 'password-123';
  const { jwt, user } = await api<{ jwt: string; user: { apikey: string } }>(request, 'POST', '/api/user/register', undefined, {
    email,
    password,
    response: '',
  });
  return { email, password, jwt, apikey: user.apikey };
}

/** Logs in through the login form and waits for the device list. */
export async function logIn(page: Page, email: string, password: string): Promise<void> {
  await page.goto('/login');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page.getByRole('heading', { name: 'Your devices' })).toBeVisible();
}

/** Logs into the admin panel and waits for the user list. */
export async function adminLogIn(page: Page): Promise<void> {
  await page.goto('/admin');
  await page.getByLabel('Admin email').fill(ADMIN_EMAIL);
  await page.getByLabel('Password').fill(ADMIN_PASSWORD);
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page.getByRole('heading', { name: 'Users', exact: true })).toBeVisible();
}

/** Saves a full-page screenshot of the main pages to test-output/. */
export async function shot(page: Page, name: string): Promise<void> {
  // From the top, so that the sticky header is drawn where it belongs.
  await page.evaluate(() => scrollTo(0, 0));
  await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
}

/**
 * The page is no wider than the viewport (no horizontal scrolling). On a phone `innerWidth`
 * grows with wide content, so the content's width is compared with the viewport's own.
 */
export async function expectNoHorizontalScroll(page: Page): Promise<void> {
  const width = page.viewportSize()?.width ?? 0;
  const scroll = await page.evaluate(() => document.documentElement.scrollWidth);
  expect(scroll, `page ${page.url()} scrolls sideways`).toBeLessThanOrEqual(width);
}

/** A device's own update over `POST /api/http`, as firmware sends it; fails the test unless accepted. */
export async function deviceUpdate(
  request: APIRequestContext,
  device: { deviceid: string; apikey: string },
  params: Record<string, unknown>,
): Promise<void> {
  const res = await request.post('/api/http', { data: { action: 'update', deviceid: device.deviceid, apikey: device.apikey, params } });
  expect(await res.json(), JSON.stringify(params)).toMatchObject({ error: 0 });
}
