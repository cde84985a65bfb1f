// Shared set-up of the browser tests: the static server, Debian's Chromium with WebGPU
// (SwiftShader when there is no GPU), and which model to use.

import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { serve } from '../serve.mjs';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const ARTIFACTS = join(ROOT, 'web/test/artifacts');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const DEMO_MODEL = '/models/bd3lm-shakespeare-tiny/';

/**
 * The model the tests load: `BLOCKDIFF_TEST_MODEL` (a URL path under the repository root, e.g.
 * `/target/tmp-model/`) or the bundled demo model. Returns `{ url, dir }` or `null` (skip).
 */
export function testModel() {
  const url = process.env.BLOCKDIFF_TEST_MODEL || DEMO_MODEL;
  const path = url.startsWith('/') ? url : `/${url}`;
  const dir = join(ROOT, path);
  const ok = ['config.json', 'model.safetensors', 'tokenizer.json'].every((f) => existsSync(join(dir, f)));
  return ok ? { url: path.endsWith('/') ? path : `${path}/`, dir } : null;
}

export function skipReason() {
  if (!existsSync(CHROMIUM)) return `no Chromium at ${CHROMIUM} (apt-get install chromium)`;
  if (!existsSync(join(ROOT, 'web/pkg/index.js'))) return 'web/pkg is not built (run web/build.sh)';
  if (!testModel()) {
    return `the model ${process.env.BLOCKDIFF_TEST_MODEL || DEMO_MODEL} is missing (set BLOCKDIFF_TEST_MODEL=/path/under/repo/)`;
  }
  return null;
}

/** Chromium flags: WebGPU on (SwiftShader without a GPU), nothing that phones home. */
export const CHROMIUM_ARGS = [
  '--enable-unsafe-webgpu',
  '--no-sandbox',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-default-apps',
];

/** Starts the server and a fresh Chromium profile. `await env.close()` cleans up. */
export async function startBrowser() {
  mkdirSync(ARTIFACTS, { recursive: true });
  const server = await serve({ port: 0, quiet: true });
  const profile = mkdtempSync(join(tmpdir(), 'blockdiff-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1100, height: 1300 },
  });
  const logs = [];
  const watch = (page) => {
    page.on('console', (m) => logs.push(`[${m.type()}] ${m.text()}`));
    page.on('pageerror', (e) => logs.push(`[pageerror] ${e.message}`));
  };
  context.on('page', watch);
  context.pages().forEach(watch);
  return {
    url: server.url,
    context,
    logs,
    async close() {
      await context.close().catch(() => {});
      await server.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Waits until the demo leaves its loading state; returns the state. */
export async function settled(page, timeout = 240_000) {
  await page.waitForFunction(
    () => ['ready', 'error', 'no-webgpu'].includes(document.body.dataset.state),
    null,
    { timeout, polling: 100 },
  );
  return page.evaluate(() => document.body.dataset.state);
}

/** Text of an element. */
export const text = (page, selector) => page.locator(selector).innerText();
