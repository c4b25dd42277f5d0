import { defineConfig } from 'vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';

// During `npm run dev`, API calls and the WebSocket go to a running `iotgo serve`
// (IOTGO_URL, default http://127.0.0.1:8080), so the app stays same-origin as in production.
const target = process.env.IOTGO_URL ?? 'http://127.0.0.1:8080';

export default defineConfig({
  plugins: [svelte()],
  build: { target: 'es2022', assetsInlineLimit: 0 },
  server: { proxy: { '/api': { target, ws: true }, '/healthz': target } },
});
