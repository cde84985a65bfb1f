// A q4 model in the browser: web/test.sh converts the bundled demo model with
// `blockdiff convert --to q4` into target/test-models/demo-q4/; the page loads it with no dtype
// option (the config's quantization block decides), checks the packed weights are what sits on
// the GPU, and generates.

import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ARTIFACTS, CHROMIUM, DEMO_MODEL, ROOT, startBrowser } from './helpers.mjs';

const Q4_URL = '/target/test-models/demo-q4/';
const T = { timeout: 300_000 };

function skipReason() {
  if (!existsSync(CHROMIUM)) return `no Chromium at ${CHROMIUM} (apt-get install chromium)`;
  if (!existsSync(join(ROOT, 'web/pkg/index.js'))) return 'web/pkg is not built (run web/build.sh)';
  if (!existsSync(join(ROOT, Q4_URL, 'model.safetensors'))) {
    return `${Q4_URL} is missing (web/test.sh writes it: blockdiff convert models/bd3lm-shakespeare-tiny ${Q4_URL.slice(1)} --to q4)`;
  }
  return null;
}

describe('quantized weights in Chromium (WebGPU)', { skip: skipReason() ?? false }, () => {
  let env;
  let page;
  const metrics = {};

  before(async () => {
    env = await startBrowser();
    page = await env.context.newPage();
    await page.goto(`${env.url}/web/test/page.html`);
  });

  after(async () => {
    writeFileSync(join(ARTIFACTS, 'quant-metrics.json'), JSON.stringify(metrics, null, 2) + '\n');
    if (env) await env.close();
  });

  test('loads a q4 model with no option and generates', T, async () => {
    const r = await page.evaluate(async ([q4, demo]) => {
      const { BlockDiff } = await import('/web/pkg/index.js');
      const load = async (url, options) => {
        const t0 = performance.now();
        const s = await BlockDiff.load({ baseUrl: url }, { cache: false, ...options });
        return { s, ms: performance.now() - t0, bytes: s.loadStats.bytes, info: s.info() };
      };
      const q = await load(q4);
      const t0 = performance.now();
      const done = await q.s.complete('ROMEO:', { maxTokens: 24, strategy: 'confidence', steps: 2, seed: 5, stopAtEos: false });
      const genMs = performance.now() - t0;
      q.s.dispose();
      const f = await load(demo, { dtype: 'f32' });
      f.s.dispose();
      let bad;
      try {
        await BlockDiff.load({ baseUrl: q4 }, { cache: false, dtype: 'q3' });
      } catch (e) {
        bad = { code: e.code, message: e.message };
      }
      return { q: { ms: q.ms, bytes: q.bytes, info: q.info }, f: { bytes: f.bytes, info: f.info }, text: done.text,
               tokens: done.tokens.length, stats: done.stats, genMs, bad };
    }, [Q4_URL, DEMO_MODEL]);
    metrics.q4 = { downloadBytes: r.q.bytes, weightBytes: r.q.info.weightBytes, loadMs: Math.round(r.q.ms),
                   generation: { tokens: r.tokens, ms: Math.round(r.genMs), tokensPerSecond: r.stats.tokensPerSecond } };
    metrics.f32 = { downloadBytes: r.f.bytes, weightBytes: r.f.info.weightBytes };
    assert.equal(r.q.info.dtype, 'q4', 'the quantization block picks q4');
    assert.equal(r.f.info.dtype, 'f32');
    assert.ok(r.q.info.weightBytes * 5 < r.f.info.weightBytes, `q4 ${r.q.info.weightBytes} vs f32 ${r.f.info.weightBytes} bytes on the GPU`);
    assert.ok(r.q.bytes * 4 < r.f.bytes, `q4 download ${r.q.bytes} vs f32 ${r.f.bytes}`);
    assert.equal(r.tokens, 24);
    assert.ok(r.text.trim().length > 10, r.text);
    assert.equal(r.bad?.code, 'options', JSON.stringify(r.bad));
    assert.match(r.bad.message, /q8|q4/);
    console.log(`q4: ${(r.q.bytes / 1e6).toFixed(2)} MB download (f32 ${(r.f.bytes / 1e6).toFixed(2)} MB), ` +
      `${(r.q.info.weightBytes / 1e6).toFixed(2)} MB on the GPU, ${r.tokens} tokens at ${r.stats.tokensPerSecond.toFixed(2)} tokens/s: ${JSON.stringify(r.text)}`);
  });
});
