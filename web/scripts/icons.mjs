// Renders public/favicon.svg into the PNG icons of the PWA manifest with the system Chromium.
// Run after changing the logo: `npm run icons` (the PNGs are committed).
import { readFile } from 'node:fs/promises';
import { chromium } from 'playwright-core';

const svg = await readFile(new URL('../public/favicon.svg', import.meta.url), 'utf8');
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu'],
});
const page = await browser.newPage();

/** `size` px PNG; `maskable` puts the logo inside the safe zone on a full-bleed background. */
async function render(file, size, maskable = false) {
  const pad = maskable ? size * 0.1 : 0;
  const logo = svg.replace('<svg ', `<svg width="${size - 2 * pad}" height="${size - 2 * pad}" `);
  const bg = maskable ? '#0e7490' : 'transparent';
  await page.setViewportSize({ width: size, height: size });
  await page.setContent(
    `<body style="margin:0;background:${bg};display:grid;place-items:center;height:${size}px">${logo}</body>`,
  );
  await page.screenshot({ path: new URL(`../public/${file}`, import.meta.url).pathname, omitBackground: !maskable });
}

await render('icon-192.png', 192);
await render('icon-512.png', 512);
await render('icon-maskable-512.png', 512, true);
await render('apple-touch-icon.png', 180, true);
await browser.close();
