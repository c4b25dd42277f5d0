/**
 * Starts the real server for the browser tests: the `iotgo` binary (IOTGO_BIN, default
 * ../target/debug/iotgo) on port 0 with a fresh data directory and a known admin.
 *
 * The binary serves the app itself (it embeds web/dist), so the tests talk to it directly:
 * a binary that does not serve the built app fails the run.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ADMIN_EMAIL, ADMIN_PASSWORD } from './env';

function startServer(bin: string, dataDir: string): Promise<{ url: string; stop: () => void }> {
  const child = spawn(bin, ['serve'], {
    env: {
      ...process.env,
      IOTGO_LISTEN: '127.0.0.1:0',
      IOTGO_DATA_DIR: dataDir,
      IOTGO_ADMIN_EMAIL: ADMIN_EMAIL,
      IOTGO_ADMIN_PASSWORD: ADMIN_PASSWORD,
      // Every test signs up and logs in from 127.0.0.1: the throttles would refuse them.
      IOTGO_RATE_LIMITS: 'off',
      // MQTT on a free port: the connect panel shows its settings.
      IOTGO_MQTT_LISTEN: '127.0.0.1:0',
      NO_COLOR: '1',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((done, fail) => {
    let log = '';
    const timer = setTimeout(() => fail(new Error(`the server did not start in 20 s:\n${log}`)), 20_000);
    const read = (chunk: Buffer): void => {
      log += chunk.toString();
      const found = /listening on (http:\/\/\S+)/.exec(log.replace(/\x1b\[[0-9;]*m/g, ''));
      if (found?.[1]) {
        clearTimeout(timer);
        done({ url: found[1], stop: () => child.kill('SIGTERM') });
      }
    };
    child.stdout.on('data', read);
    child.stderr.on('data', read);
    child.on('error', (e) => fail(new Error(`cannot run ${bin}: ${e.message}`)));
    child.on('exit', (code) => fail(new Error(`the server exited (${code}):\n${log}`)));
  });
}

export default async function globalSetup(): Promise<() => Promise<void>> {
  const bin = resolve(process.env.IOTGO_BIN ?? '../target/debug/iotgo');
  const dataDir = mkdtempSync(join(tmpdir(), 'iotgo-web-test-'));
  const server = await startServer(bin, dataDir);
  const index = await (await fetch(server.url)).text();
  if (!index.includes('<div id="app">')) {
    server.stop();
    throw new Error(`${bin} does not serve the web app: build web/dist, then the server`);
  }
  process.env.IOTGO_BASE_URL = server.url;
  return async () => {
    server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  };
}
