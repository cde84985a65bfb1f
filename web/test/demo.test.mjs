// Real-browser tests of the demo page and the JS API: Debian's Chromium, headless, WebGPU on
// SwiftShader (software) when there is no GPU. Runs with `node --test web/test/` (web/test.sh).

import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ARTIFACTS, settled, skipReason, startBrowser, testModel, text } from './helpers.mjs';

const skip = skipReason();
const model = testModel();
const T = { timeout: 300_000 };
const metrics = {};

describe('demo page in Chromium (WebGPU)', { skip: skip ?? false }, () => {
  let env;
  let page;

  before(async () => {
    env = await startBrowser();
    page = await env.context.newPage();
    metrics.model = model.url;
  });

  after(async () => {
    writeFileSync(join(ARTIFACTS, 'metrics.json'), JSON.stringify(metrics, null, 2) + '\n');
    writeFileSync(join(ARTIFACTS, 'browser.log'), env ? env.logs.join('\n') + '\n' : '');
    if (env) await env.close();
  });

  test('loads the model with progress from the network', T, async () => {
    const t0 = Date.now();
    const progress = [];
    await page.exposeFunction('__progress', (v) => progress.push(v));
    await page.addInitScript(() => {
      // Record what the progress bar shows while the model downloads.
      new MutationObserver(() => {
        const bar = document.getElementById('progress');
        if (bar && bar.hasAttribute('value')) window.__progress?.(Number(bar.value) / Number(bar.max || 1));
      }).observe(document, { subtree: true, attributes: true, attributeFilter: ['value', 'max'] });
    });
    await page.goto(`${env.url}/web/demo/?model=${encodeURIComponent(model.url)}`);
    const state = await settled(page);
    assert.equal(state, 'ready', `demo did not load: ${await text(page, '#error')}\n${env.logs.join('\n')}`);
    metrics.firstLoadMs = Date.now() - t0;
    const status = await text(page, '#load-status');
    assert.match(status, /from the network/);
    assert.ok(progress.some((p) => p > 0 && p < 1), `the progress bar moved (${progress.length} updates)`);
    assert.match(await text(page, '#model-info'), /bd3lm: \d+ layers/);
    assert.equal(await page.locator('#no-webgpu').isHidden(), true);
    metrics.info = await page.evaluate(() => window.demo.session.info());
  });

  test('generates text that appears on the page, with live denoising', T, async () => {
    await page.evaluate(() => {
      window.__sawMasked = false;
      new MutationObserver(() => {
        if (document.querySelector('#output .live .masked')) window.__sawMasked = true;
      }).observe(document.getElementById('output'), { subtree: true, childList: true });
    });
    await page.fill('#max-tokens', '24');
    await page.fill('#temperature', '0.8');
    await page.selectOption('#strategy', 'confidence');
    await page.check('#stream-steps');
    await page.click('#generate');
    // A block mid-denoising: masked slots (░) beside committed ones.
    await page.waitForSelector('#output .live .masked', { timeout: 120_000 });
    await page.locator('#output').screenshot({ path: join(ARTIFACTS, 'denoising.png') });
    await page.waitForSelector('#output[data-done="true"]', { timeout: 280_000 });
    const out = await text(page, '#output .committed');
    assert.ok(out.length > 0, 'generated text is on the page');
    assert.equal(await page.evaluate(() => window.__sawMasked), true, 'masked slots (░) were shown while denoising');
    const tps = Number(await text(page, '#fig-tps'));
    const nfe = Number(await text(page, '#fig-nfe'));
    const tokens = Number(await text(page, '#fig-tokens'));
    assert.ok(tps > 0 && nfe > 0 && tokens > 0, `figures: ${tps} tokens/s, NFE ${nfe}, ${tokens} tokens`);
    assert.equal(await page.locator('#error').isHidden(), true, await text(page, '#error'));
    metrics.uiGeneration = { tokensPerSecond: tps, nfe, tokens, text: out, strategy: 'confidence', streamSteps: true };
  });

  test('probe heatmap renders', T, async () => {
    await page.fill('#probe-n', '6');
    await page.fill('#probe-k', '5');
    await page.click('#probe');
    await page.waitForSelector('#probe-view table.heatmap', { timeout: 120_000 });
    const rows = await page.locator('#probe-view tbody tr').count();
    assert.equal(rows, 6);
    const cells = await page.locator('#probe-view td.cell').count();
    assert.equal(cells, 30);
    // Top-1 cells are coloured by probability (not white unless p is ~0).
    const shade = await page.evaluate(() =>
      [...document.querySelectorAll('#probe-view tbody tr')].map((tr) => ({
        p: Number(tr.querySelector('td.cell').dataset.p),
        bg: getComputedStyle(tr.querySelector('td.cell')).backgroundColor,
      })),
    );
    for (const { p, bg } of shade) {
      assert.ok(p > 0 && p <= 1, `probability ${p}`);
      if (p > 2e-3) assert.notEqual(bg, 'rgb(255, 255, 255)', `p = ${p} is coloured`);
    }
    const shot = join(ARTIFACTS, 'demo.png');
    await page.screenshot({ path: shot, fullPage: true });
    metrics.screenshot = shot;
  });

  test('measures tokens/s through the API (no step events) and scores a text', T, async () => {
    const r = await page.evaluate(async () => {
      const s = window.demo.session;
      const done = await s.complete('ROMEO:\n', { maxTokens: 32, temperature: 0.8, seed: 1, strategy: 'first-hitting' });
      const conf = await s.complete('ROMEO:\n', { maxTokens: 32, temperature: 0.8, seed: 1, strategy: 'confidence', steps: 2 });
      const score = await s.score('But, soft! what light through yonder window breaks?', { samples: 2, seed: 3 });
      return { firstHitting: done.stats, confidence2: conf.stats, text: done.text, score };
    });
    assert.ok(r.firstHitting.generatedTokens > 0);
    assert.ok(Number.isFinite(r.score.nll) && r.score.nll > 0 && r.score.tokens > 5, JSON.stringify(r.score));
    assert.ok(r.firstHitting.tokensPerSecond > 0);
    metrics.apiGeneration = r;
    console.log(`tokens/s: first-hitting ${r.firstHitting.tokensPerSecond.toFixed(2)} (${r.firstHitting.generatedTokens} tokens, NFE ${r.firstHitting.nfe}); ` +
      `confidence 2 steps/block ${r.confidence2.tokensPerSecond.toFixed(2)} (NFE ${r.confidence2.nfe})`);
  });

  test('bad options give a JS Error and the page keeps working', T, async () => {
    const r = await page.evaluate(async () => {
      const s = window.demo.session;
      const out = [];
      const cases = [
        { temperature: -1 }, { topP: 0 }, { topP: 'x' }, { maxTokens: 0 }, { strategy: 'nope' },
        { max_tokens: 4 }, { steps: 1.5 }, { seed: -3 }, { stop: [''] }, { perStep: 999, strategy: 'confidence' },
        { onBlock: 5 }, 7,
      ];
      for (const c of cases) {
        try {
          s.generate('hi', c);
          out.push({ option: JSON.stringify(c), threw: false });
        } catch (e) {
          out.push({ option: JSON.stringify(c), threw: true, isError: e instanceof Error, code: e.code, message: e.message });
        }
      }
      const rejects = async (label, f) => {
        try {
          await f();
          out.push({ option: label, threw: false });
        } catch (e) {
          out.push({ option: label, threw: true, isError: e instanceof Error, code: e.code, message: e.message });
        }
      };
      await rejects('probe n=0', () => s.probe('hi', 0, 5));
      await rejects('probe k=99', () => s.probe('hi', 4, 99));
      await rejects('probe n=1.5', () => s.probe('hi', 1.5, 2));
      await rejects('score samples=0', () => s.score('hi there', { samples: 0 }));
      await rejects('score empty', () => s.score('', {}));
      await rejects('generate prompt=42', async () => s.generate(42));
      const ok = await s.complete('hi', { maxTokens: 4 });
      return { out, ok: ok.type === 'done' && ok.stats.generatedTokens > 0, busy: s.busy };
    });
    for (const c of r.out) {
      assert.equal(c.threw, true, `${c.option} was accepted`);
      assert.equal(c.isError, true, `${c.option} threw a non-Error`);
      assert.ok(['options', 'input'].includes(c.code), `${c.option}: code ${c.code} (${c.message})`);
    }
    const msg = (o) => r.out.find((c) => c.option === o).message;
    assert.match(msg('{"temperature":-1}'), /temperature/);
    assert.match(msg('{"topP":"x"}'), /topP/);
    assert.match(msg('{"strategy":"nope"}'), /unknown strategy 'nope'/);
    assert.match(msg('{"max_tokens":4}'), /unknown option 'max_tokens'/);
    assert.equal(r.ok, true, 'a good generation works after the bad ones');
    assert.equal(r.busy, false);

    // The same through the page's form: an error message, then a good run.
    await page.fill('#max-tokens', '8');
    await page.fill('#temperature', '-1');
    await page.click('#generate');
    await page.waitForSelector('#error:not([hidden])');
    assert.match(await text(page, '#error'), /temperature must be >= 0/);
    assert.equal(await page.evaluate(() => document.body.dataset.state), 'ready');
    await page.fill('#temperature', '0.8');
    await page.click('#generate');
    await page.waitForSelector('#output[data-done="true"]', { timeout: 200_000 });
    assert.equal(await page.locator('#error').isHidden(), true);
    metrics.badOptions = r.out.map((c) => `${c.option} -> [${c.code}] ${c.message}`);
  });

  test('one operation at a time; break, cancel() and AbortSignal stop a generation', T, async () => {
    const r = await page.evaluate(async () => {
      const s = window.demo.session;
      const it = s.generate('ROMEO:', { maxTokens: 200, streamSteps: true, entropyGuard: false, stopAtEos: false });
      let second;
      try {
        s.generate('x', {});
      } catch (e) {
        second = { isError: e instanceof Error, code: e.code, message: e.message };
      }
      let probe;
      try {
        await s.probe('x', 2, 2);
      } catch (e) {
        probe = e.code;
      }
      const first = await it.next();
      await it.return();
      const freeAfterReturn = !s.busy;

      const ac = new AbortController();
      let n = 0;
      let last;
      for await (const ev of s.generate('ROMEO:', { maxTokens: 200, streamSteps: true, signal: ac.signal, stopAtEos: false })) {
        if (++n === 1) ac.abort();
        last = ev;
      }
      const stream = s.generate('ROMEO:', { maxTokens: 200, stopAtEos: false, entropyGuard: false });
      stream.cancel();
      const cancelled = await stream.result;
      return { second, probe, first: first.value.type, freeAfterReturn, last: last.type, stop: last.stop, cancelledStop: cancelled.stop, events: n, busy: s.busy };
    });
    assert.deepEqual({ isError: r.second.isError, code: r.second.code }, { isError: true, code: 'busy' });
    assert.match(r.second.message, /another operation is running/);
    assert.equal(r.probe, 'busy');
    assert.equal(r.first, 'step');
    assert.equal(r.freeAfterReturn, true);
    assert.equal(r.last, 'done');
    assert.equal(r.stop, 'cancelled');
    assert.equal(r.cancelledStop, 'cancelled');
    assert.ok(r.events < 20, `cancelled quickly (${r.events} events)`);
    assert.equal(r.busy, false);
  });

  test('a second load comes from the Cache API, also offline', T, async () => {
    const t0 = Date.now();
    await page.reload();
    assert.equal(await settled(page), 'ready');
    metrics.cachedLoadMs = Date.now() - t0;
    assert.match(await text(page, '#load-status'), /from cache/);
    assert.equal(await page.evaluate(() => document.body.dataset.fromCache), 'true');
    await env.context.setOffline(true);
    try {
      await page.click('#load');
      assert.equal(await settled(page), 'ready');
      assert.match(await text(page, '#load-status'), /from cache/);
      const r = await page.evaluate(() => window.demo.session.complete('ROMEO:', { maxTokens: 4 }));
      assert.equal(r.type, 'done');
    } finally {
      await env.context.setOffline(false);
    }
  });

  test('a malformed model file shows an error without breaking the page', T, async () => {
    const config = readFileSync(join(model.dir, 'config.json'));
    const weights = readFileSync(join(model.dir, 'model.safetensors'));
    const tokenizer = readFileSync(join(model.dir, 'tokenizer.json'));
    const files = {
      'bad-weights': { 'config.json': config, 'model.safetensors': Buffer.from('this is not a safetensors file'), 'tokenizer.json': tokenizer },
      'cut-weights': { 'config.json': config, 'model.safetensors': weights.subarray(0, weights.length >> 1), 'tokenizer.json': tokenizer },
      'bad-config': { 'config.json': Buffer.from('{"model_type": "bd3lm", '), 'model.safetensors': weights, 'tokenizer.json': tokenizer },
      'bad-tokenizer': { 'config.json': config, 'model.safetensors': weights, 'tokenizer.json': Buffer.from('{"model": 3}') },
    };
    await page.route(/\/(bad-weights|cut-weights|bad-config|bad-tokenizer)\//, (route) => {
      const m = new URL(route.request().url()).pathname.match(/\/([a-z-]+)\/([^/]+)$/);
      const body = m && files[m[1]]?.[m[2]];
      return body ? route.fulfill({ status: 200, body, contentType: 'application/octet-stream' }) : route.fulfill({ status: 404 });
    });
    const expect = {
      'bad-weights': /checkpoint .*model\.safetensors/i,
      'cut-weights': /checkpoint .*model\.safetensors/i,
      'bad-config': /config\.json/,
      'bad-tokenizer': /tokenizer/,
      'missing': /HTTP 404/,
    };
    const errors = {};
    for (const [dir, pattern] of Object.entries(expect)) {
      await page.fill('#model-url', `/${dir}/`);
      await page.click('#load');
      assert.equal(await settled(page), 'error', dir);
      const msg = await text(page, '#error');
      assert.match(msg, pattern, dir);
      errors[dir] = msg;
    }
    metrics.malformed = errors;
    const cached = await page.evaluate(async () => {
      const c = await caches.open('blockdiff-v1');
      return (await c.keys()).map((r) => new URL(r.url).pathname);
    });
    assert.ok(cached.every((p) => !/bad|cut/.test(p)), `malformed files are not cached: ${cached}`);
    // The page still works: load the good model and generate.
    await page.fill('#model-url', model.url);
    await page.click('#load');
    assert.equal(await settled(page), 'ready');
    assert.equal(await page.locator('#error').isHidden(), true);
    await page.fill('#max-tokens', '8');
    await page.click('#generate');
    await page.waitForSelector('#output[data-done="true"]', { timeout: 200_000 });
    assert.ok((await text(page, '#output .committed')).length > 0);
  });

  test('dispose frees the session; later calls fail with a clear Error', T, async () => {
    const r = await page.evaluate(async (url) => {
      const { BlockDiff } = window.demo;
      const seen = [];
      const s = await BlockDiff.load({ baseUrl: url }, { onProgress: (p) => seen.push(p) });
      const progress = {
        phases: [...new Set(seen.map((p) => p.phase))],
        allCached: seen.filter((p) => p.phase === 'fetch').every((p) => p.fromCache),
        final: seen.at(-1),
        fromCache: s.fromCache,
        absent: s.loadStats.absent,
        chatTemplate: s.info().chatTemplate,
      };
      const before = s.info().gpuBytes;
      await s.complete('a', { maxTokens: 4 });
      s.dispose();
      s.dispose(); // harmless
      const errs = {};
      try { s.generate('x'); } catch (e) { errs.generate = [e instanceof Error, e.code, e.message]; }
      try { await s.probe('x', 2, 2); } catch (e) { errs.probe = [e instanceof Error, e.code]; }
      try { await s.score('x y'); } catch (e) { errs.score = [e instanceof Error, e.code]; }
      try { s.info(); } catch (e) { errs.info = [e instanceof Error, e.code]; }
      // Disposing during a generation cancels it.
      const s2 = await BlockDiff.load({ baseUrl: url });
      const it = s2.generate('a', { maxTokens: 200, streamSteps: true, stopAtEos: false });
      await it.next();
      s2.dispose();
      let last;
      for await (const ev of it) last = ev;
      let after;
      try { s2.generate('x'); } catch (e) { after = e.code; }
      return { progress, before, errs, last: last && last.type, stop: last && last.stop, disposed: s2.disposed, after };
    }, model.url);
    assert.deepEqual(r.progress.phases, ['fetch', 'gpu', 'ready']);
    assert.equal(r.progress.allCached, true);
    assert.equal(r.progress.fromCache, true);
    assert.equal(r.progress.final.loaded, r.progress.final.total);
    // The chat files the directory lacks are absent (a cached 404), not an error.
    const chatFiles = ['chat_template.jinja', 'tokenizer_config.json', 'generation_config.json'];
    assert.deepEqual(r.progress.absent, chatFiles.filter((f) => !existsSync(join(model.dir, f))));
    if (r.progress.absent.length === chatFiles.length) assert.equal(r.progress.chatTemplate, false);
    assert.ok(r.before > 0);
    assert.deepEqual(r.errs.generate.slice(0, 2), [true, 'disposed']);
    assert.match(r.errs.generate[2], /disposed/);
    assert.deepEqual(r.errs.probe, [true, 'disposed']);
    assert.deepEqual(r.errs.score, [true, 'disposed']);
    assert.deepEqual(r.errs.info, [true, 'disposed']);
    assert.equal(r.stop, 'cancelled');
    assert.equal(r.disposed, true);
    assert.equal(r.after, 'disposed');
    // The demo's own session is untouched.
    const ok = await page.evaluate(() => window.demo.session.complete('a', { maxTokens: 4 }).then((d) => d.type));
    assert.equal(ok, 'done');
  });

  test('an adapter lacking a needed limit gives a clear error', T, async () => {
    const p = await env.context.newPage();
    await p.addInitScript(() => {
      // Pretend the adapter binds at most 1 MiB per storage buffer (the runtime needs 16 MiB).
      const real = Object.getOwnPropertyDescriptor(GPUAdapter.prototype, 'limits').get;
      Object.defineProperty(GPUAdapter.prototype, 'limits', {
        configurable: true,
        get() {
          const limits = real.call(this);
          const copy = {};
          for (const k in limits) copy[k] = limits[k];
          copy.maxStorageBufferBindingSize = 1 << 20;
          return copy;
        },
      });
    });
    await p.goto(`${env.url}/web/demo/?model=${encodeURIComponent(model.url)}`);
    assert.equal(await settled(p), 'error');
    const msg = await text(p, '#error');
    assert.match(msg, /lacks a required limit: max_storage_buffer_binding_size needs 16777216, the device offers 1048576/);
    assert.match(msg, /\[limit\]/);
    await p.close();
  });

  test('without WebGPU the page says so clearly', T, async () => {
    const p = await env.context.newPage();
    await p.addInitScript(() => {
      delete Object.getPrototypeOf(navigator).gpu;
    });
    await p.goto(`${env.url}/web/demo/?model=${encodeURIComponent(model.url)}`);
    assert.equal(await settled(p), 'no-webgpu');
    assert.equal(await p.locator('#no-webgpu').isVisible(), true);
    assert.match(await text(p, '#no-webgpu'), /WebGPU is not available/);
    const err = await p.evaluate(() =>
      window.demo.BlockDiff.load({ baseUrl: '/x/' }).then(() => null, (e) => [e instanceof Error, e.code, e.message]),
    );
    assert.deepEqual(err.slice(0, 2), [true, 'no-webgpu']);
    await p.screenshot({ path: join(ARTIFACTS, 'no-webgpu.png') });
    await p.close();
  });
});
