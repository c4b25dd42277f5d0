/**
 * The light's brightness slider and color picker reach the device's socket and are stored; a
 * GPS tracker's track and position draw on the map even with no tiles (offline).
 */
import { connectDevice, deviceFrames, sendFromDevice } from './device-socket';
import { api, deviceUpdate, expect, logIn, register, shot, test } from './fixtures';

interface Made {
  deviceid: string;
  apikey: string;
}

interface Stored {
  params: Record<string, unknown>;
}

test('the brightness slider and the color picker reach the device and are stored', async ({ page, request, browser }) => {
  const me = await register(request, 'light');
  const lamp = await api<Made>(request, 'POST', '/api/user/device', me.jwt, { name: 'Desk lamp', group: '', type: '02' });
  const device = await (await browser.newContext()).newPage();
  await connectDevice(device, lamp.deviceid, lamp.apikey, { light: 'on', brightness: 20, color: '#00FF00' });

  await logIn(page, me.email, me.password);
  await page.goto(`/devices/${lamp.deviceid}`);
  await expect(page.getByTestId('power-state')).toHaveText('On');
  await expect(page.getByTestId('setting-brightness')).toHaveText('20 %');
  await expect(page.getByTestId('setting-color')).toHaveText('#00ff00');

  const updates = async (): Promise<unknown[]> =>
    (await deviceFrames(device)).filter((f) => f.action === 'update').map((f) => f.params);
  await page.getByLabel('Brightness').fill('70');
  // The original's rule: an update of a light carries `light`.
  await expect.poll(updates).toEqual([{ light: 'on', brightness: 70 }]);
  await page.getByLabel('Color').fill('#ff8800');
  await expect.poll(updates).toEqual([
    { light: 'on', brightness: 70 },
    { light: 'on', color: '#ff8800' },
  ]);
  await expect(page.getByTestId('setting-brightness')).toHaveText('70 %');
  await expect(page.getByTestId('setting-color')).toHaveText('#ff8800');
  await expect(page.getByTestId('settings-error')).toHaveCount(0);
  const stored = await api<Stored>(request, 'GET', `/api/user/device/${lamp.deviceid}`, me.jwt);
  expect(stored.params).toEqual({ light: 'on', brightness: 70, color: '#ff8800' });

  // The device's own change shows in the controls at once.
  await sendFromDevice(device, { action: 'update', deviceid: lamp.deviceid, apikey: lamp.apikey, params: { light: 'on', brightness: 35 } });
  await expect(page.getByTestId('setting-brightness')).toHaveText('35 %');
  await expect(page.getByLabel('Brightness')).toHaveValue('35');
  await shot(page, 'device-light');
});

test("a GPS tracker's track and current position draw on the map with no tiles, without errors", async ({ page, request }) => {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  // Offline: every tile request fails.
  await page.route(/tile\.openstreetmap\.org/, (route) => route.abort('internetdisconnected'));
  const me = await register(request, 'gps');
  const tracker = await api<Made>(request, 'POST', '/api/user/device', me.jwt, { name: 'Bike', group: '', type: '04' });
  await deviceUpdate(request, tracker, { lat: 48.8584, lng: 2.2945 });
  await deviceUpdate(request, tracker, { lat: 48.8606, lng: 2.3376, speed: 18 });
  await deviceUpdate(request, tracker, { lat: '48.853', lng: '2.3499', speed: '12.5' });

  await logIn(page, me.email, me.password);
  await page.goto(`/devices/${tracker.deviceid}`);
  const map = page.getByTestId('map');
  await expect(map).toHaveAttribute('data-track-points', '3');
  await expect(map.locator('path.track')).toHaveCount(1);
  await expect(map.locator('path.position')).toHaveCount(1);
  await expect(page.getByTestId('track-summary')).toHaveText('3 positions in this period; the dot is the current position.');
  await expect(page.getByTestId('reading-lat')).toHaveText('48.853 °');
  await expect(page.getByTestId('reading-speed')).toHaveText('12.5 km/h');
  await shot(page, 'device-gps-map');

  // A new position extends the track live.
  await deviceUpdate(request, tracker, { lat: 48.8462, lng: 2.3372 });
  await expect(map).toHaveAttribute('data-track-points', '4');
  await expect(page.getByTestId('reading-lat')).toHaveText('48.8462 °');
  await expect(map.locator('path.position')).toHaveCount(1);
  expect(errors).toEqual([]);
});
