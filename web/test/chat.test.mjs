// Chat through the JS API in real headless Chromium (WebGPU; SwiftShader without a GPU): a tiny
// random SDAR model on Qwen3's real tokenizer and chat template (web/test.sh writes it with
// `cargo run --example make_test_sdar` into target/test-models/sdar-chat/). Three turns, of which
// the third must take turns 1-2 from the KV cache; bad messages give Errors and the page keeps
// working; the chat files are fetched, cached and work offline.

import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ARTIFACTS, CHROMIUM, ROOT, startBrowser } from './helpers.mjs';

const MODEL_URL = '/target/test-models/sdar-chat/';
const MODEL_DIR = join(ROOT, MODEL_URL);
const CHAT_FILES = ['chat_template.jinja', 'tokenizer_config.json', 'generation_config.json'];
const BLOCK = 4;
const T = { timeout: 300_000 };

function skipReason() {
  if (!existsSync(CHROMIUM)) return `no Chromium at ${CHROMIUM} (apt-get install chromium)`;
  if (!existsSync(join(ROOT, 'web/pkg/index.js'))) return 'web/pkg is not built (run web/build.sh)';
  const files = ['config.json', 'model.safetensors', 'tokenizer.json', ...CHAT_FILES];
  if (!files.every((f) => existsSync(join(MODEL_DIR, f)))) {
    return `the chat model ${MODEL_URL} is missing (web/test.sh writes it: cargo run --example make_test_sdar -- target/test-models/sdar-chat)`;
  }
  return null;
}

/** Length of the common prefix of two arrays. */
const common = (a, b) => {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return n;
};

const metrics = {};

describe('chat in Chromium (WebGPU)', { skip: skipReason() ?? false }, () => {
  let env;
  let page;

  before(async () => {
    env = await startBrowser();
    page = await env.context.newPage();
    await page.goto(`${env.url}/web/test/page.html`);
    // Short generations for the checks that are not about the answer (one denoising step per
    // block: software WebGPU takes about a second per forward over Qwen3's 151680-token vocabulary).
    await page.evaluate(() => {
      window.QUICK = Object.freeze({ maxTokens: 4, strategy: 'confidence', steps: 1 });
    });
  });

  after(async () => {
    writeFileSync(join(ARTIFACTS, 'chat-metrics.json'), JSON.stringify(metrics, null, 2) + '\n');
    writeFileSync(join(ARTIFACTS, 'chat-browser.log'), env ? env.logs.join('\n') + '\n' : '');
    if (env) await env.close();
  });

  test('loads the SDAR model with its chat template and generation config', T, async () => {
    const r = await page.evaluate(async (url) => {
      const { BlockDiff } = await import('/web/pkg/index.js');
      window.BlockDiff = BlockDiff;
      const seen = [];
      const t0 = performance.now();
      const s = await BlockDiff.load({ baseUrl: url }, { onProgress: (p) => seen.push(p) });
      window.chat = s;
      return {
        ms: performance.now() - t0,
        stats: s.loadStats,
        info: s.info(),
        phases: [...new Set(seen.map((p) => p.phase))],
        fetched: [...new Set(seen.filter((p) => p.phase === 'fetch').map((p) => p.file))].sort(),
        final: seen.at(-1),
      };
    }, MODEL_URL);
    metrics.loadMs = Math.round(r.ms);
    metrics.loadBytes = r.stats.bytes;
    const names = r.stats.files.map((f) => f.name).sort();
    assert.deepEqual(names, ['config.json', 'model.safetensors', 'tokenizer.json', ...CHAT_FILES].sort());
    assert.deepEqual(r.fetched, names, 'progress reported every file');
    assert.deepEqual(r.stats.absent, []);
    assert.equal(r.stats.fromCache, false);
    assert.deepEqual(r.phases, ['fetch', 'gpu', 'ready']);
    assert.equal(r.final.loaded, r.final.total);
    assert.equal(r.info.architecture, 'sdar');
    assert.equal(r.info.blockSize, BLOCK);
    assert.equal(r.info.chatTemplate, true);
    // generation_config.json's sampling defaults (f32 on the Rust side).
    assert.ok(Math.abs(r.info.chatDefaults.temperature - 0.8) < 1e-6, JSON.stringify(r.info.chatDefaults));
    assert.ok(Math.abs(r.info.chatDefaults.topP - 0.95) < 1e-6, JSON.stringify(r.info.chatDefaults));
    assert.equal(r.info.chatDefaults.topK, 20);
    console.log(`chat model: ${(r.stats.bytes / 1e6).toFixed(1)} MB loaded in ${(r.ms / 1000).toFixed(1)} s on ${r.info.adapter.name}`);
  });

  test('three turns: turn 3 takes turns 1-2 from the KV cache', T, async () => {
    const r = await page.evaluate(async () => {
      const s = window.chat;
      const opts = { maxTokens: 8, seed: 3, strategy: 'confidence' };
      const messages = [{ role: 'system', content: 'You are a test.' }];
      const turns = [];
      for (const user of ['Hello there', 'Tell me more', 'And a third thing']) {
        messages.push({ role: 'user', content: user });
        const text = s.applyChatTemplate(messages);
        const prompt = s.encode(text);
        const t0 = performance.now();
        let blocks = 0;
        let steps = 0;
        let done;
        for await (const ev of s.chat(messages, { ...opts, streamSteps: true })) {
          if (ev.type === 'block') blocks++;
          if (ev.type === 'step') steps++;
          if (ev.type === 'done') done = ev;
        }
        turns.push({ ms: performance.now() - t0, text, prompt, blocks, steps, done });
        messages.push({ role: 'assistant', content: done.text });
      }
      const think = s.encode('<think>\n\n</think>\n\n');

      // Another conversation shares only what its prompt really shares with the cached one.
      const other = [{ role: 'system', content: 'Different.' }, { role: 'user', content: 'Hello there' }];
      const otherPrompt = s.encode(s.applyChatTemplate(other));
      const otherDone = await s.chat(other, { ...QUICK, seed: 1 }).result;
      // generate() does not reuse, and the chat after it starts over too.
      const generated = await s.complete('Hello', QUICK);
      const otherAgain = await s.chat(other, { ...QUICK, seed: 1 }).result;
      return { turns, think, otherPrompt, otherDone, generated, otherAgain, lastPrompt: turns[2].prompt, busy: s.busy };
    });
    const [t1, t2, t3] = r.turns;
    metrics.turns = r.turns.map((t, i) => ({
      turn: i + 1,
      wallMs: Math.round(t.ms),
      promptTokens: t.done.stats.promptTokens,
      reusedTokens: t.done.stats.reusedTokens,
      prefillTokens: t.done.stats.prefillTokens,
      generatedTokens: t.done.stats.generatedTokens,
      blocks: t.blocks,
      nfe: t.done.stats.nfe,
      tokensPerSecond: t.done.stats.tokensPerSecond,
      stop: t.done.stop,
      text: t.done.text,
    }));
    for (const m of metrics.turns) console.log(`turn ${m.turn}: ${m.wallMs} ms, prompt ${m.promptTokens} tokens (${m.reusedTokens} reused, ${m.prefillTokens} prefilled), ${m.generatedTokens} generated, NFE ${m.nfe}`);

    for (const [i, t] of r.turns.entries()) {
      const s = t.done.stats;
      assert.equal(t.done.type, 'done');
      assert.ok(['eos', 'max-tokens'].includes(t.done.stop), `turn ${i + 1} stopped: ${t.done.stop}`);
      assert.ok(t.blocks > 0 && t.steps > 0, `turn ${i + 1} streamed ${t.blocks} blocks, ${t.steps} steps`);
      assert.equal(s.promptTokens, t.prompt.length, `turn ${i + 1}: the prompt is the rendered template`);
      assert.equal(s.reusedTokens + s.prefillTokens, s.promptTokens, `turn ${i + 1}: ${JSON.stringify(s)}`);
      assert.equal(s.reusedTokens % BLOCK, 0);
    }
    assert.ok(t1.text.startsWith('<|im_start|>system\nYou are a test.<|im_end|>\n<|im_start|>user\nHello there<|im_end|>\n'), t1.text);
    assert.ok(t1.text.endsWith('<|im_start|>assistant\n<think>\n\n</think>\n\n'), t1.text);
    assert.equal(t1.done.stats.reusedTokens, 0);

    // Each later turn reuses exactly the block-aligned prefix its prompt shares with the last one.
    const shared12 = common(t1.prompt, t2.prompt);
    const shared23 = common(t2.prompt, t3.prompt);
    assert.equal(t2.done.stats.reusedTokens, Math.floor(shared12 / BLOCK) * BLOCK);
    assert.equal(t3.done.stats.reusedTokens, Math.floor(shared23 / BLOCK) * BLOCK);
    // Qwen3's template opens an answer with an empty think block that it leaves out of the
    // history, so everything of turns 1-2 except that block (and turn 2's answer, which follows
    // it) is shared: turn 3 reuses all of turns 1-2 up to block alignment and prefills only
    // turn 2's answer and its own question.
    assert.deepEqual(t2.prompt.slice(-r.think.length), r.think);
    const turns12 = t2.prompt.length - r.think.length;
    assert.ok(shared23 >= turns12, `turn 3 shares ${shared23} of turns 1-2's ${turns12} tokens`);
    assert.ok(t3.done.stats.reusedTokens > turns12 - BLOCK, JSON.stringify(t3.done.stats));
    assert.ok(t3.done.stats.reusedTokens > t1.prompt.length, 'all of turn 1 came from the cache');
    assert.ok(t3.done.stats.prefillTokens < t3.prompt.length - turns12 + BLOCK, JSON.stringify(t3.done.stats));

    // A different conversation: only the truly shared prefix, nothing after it.
    const sharedOther = common(r.lastPrompt, r.otherPrompt);
    assert.equal(r.otherDone.stats.reusedTokens, Math.floor(sharedOther / BLOCK) * BLOCK);
    assert.equal(r.otherDone.stats.promptTokens, r.otherPrompt.length);
    assert.equal(r.generated.stats.reusedTokens, 0, 'generate() starts from an empty cache');
    assert.equal(r.otherAgain.stats.reusedTokens, 0, 'a chat after generate() starts over');
    assert.equal(r.busy, false);
  });

  test('bad messages give an Error and the page keeps working', T, async () => {
    const r = await page.evaluate(async () => {
      const s = window.chat;
      const out = [];
      const attempt = (label, f) => {
        try {
          f();
          out.push({ label, threw: false });
        } catch (e) {
          out.push({ label, threw: true, isError: e instanceof Error, code: e.code, message: e.message });
        }
      };
      const bad = {
        'a string': 'hello',
        'null': null,
        'one message object': { role: 'user', content: 'hi' },
        'empty': [],
        'a number entry': [42],
        'a null entry': [null],
        'an array entry': [['user', 'hi']],
        'no role': [{ content: 'hi' }],
        'no content': [{ role: 'user' }],
        'empty role': [{ role: ' ', content: 'hi' }],
        'numeric role': [{ role: 7, content: 'hi' }],
        'numeric content': [{ role: 'user', content: 5 }],
        'bad second': [{ role: 'user', content: 'hi' }, { role: 'assistant', content: null }],
      };
      for (const [label, messages] of Object.entries(bad)) {
        attempt(`chat: ${label}`, () => s.chat(messages, QUICK));
        attempt(`applyChatTemplate: ${label}`, () => s.applyChatTemplate(messages));
      }
      const ok = [{ role: 'user', content: 'hi' }];
      attempt('option temperature -1', () => s.chat(ok, { temperature: -1 }));
      attempt('option max_tokens', () => s.chat(ok, { max_tokens: 4 }));
      attempt('options 7', () => s.chat(ok, 7));
      // One running operation at a time.
      const running = s.chat(ok, QUICK);
      attempt('while busy', () => s.chat(ok, QUICK));
      const during = s.applyChatTemplate(ok); // works while the session is busy
      await running.result;
      const after = await s.chat([...ok, { role: 'assistant', content: 'hello' }, { role: 'user', content: 'more' }], QUICK).result;
      return { out, during, after, busy: s.busy };
    });
    const byLabel = Object.fromEntries(r.out.map((c) => [c.label, c]));
    for (const c of r.out) {
      assert.equal(c.threw, true, `${c.label} was accepted`);
      assert.equal(c.isError, true, `${c.label} threw a non-Error`);
    }
    for (const c of r.out.filter((c) => c.label.includes(': '))) {
      assert.equal(c.code, 'input', `${c.label}: [${c.code}] ${c.message}`);
    }
    const msg = (label) => byLabel[label].message;
    // The Rust layer's own checks (applyChatTemplate passes anything through the wrapper).
    assert.match(msg('applyChatTemplate: a string'), /messages must be an array of \{ role, content \} objects, got the string "hello"/);
    assert.match(msg('applyChatTemplate: null'), /must be an array.*got null/);
    assert.match(msg('applyChatTemplate: one message object'), /must be an array.*got an object/);
    assert.match(msg('chat: a string'), /messages must be an array/);
    assert.match(msg('chat: empty'), /at least one message/);
    assert.match(msg('chat: a number entry'), /messages\[0\] must be a \{ role, content \} object, got the number 42/);
    assert.match(msg('chat: a null entry'), /messages\[0\].*got null/);
    assert.match(msg('chat: an array entry'), /messages\[0\].*got an array/);
    assert.match(msg('chat: no role'), /messages\[0\]\.role must be a non-empty string.*got undefined/);
    assert.match(msg('chat: no content'), /messages\[0\]\.content must be a string, got undefined/);
    assert.match(msg('chat: empty role'), /messages\[0\]\.role must be a non-empty string/);
    assert.match(msg('chat: numeric role'), /messages\[0\]\.role .*got the number 7/);
    assert.match(msg('chat: numeric content'), /messages\[0\]\.content must be a string, got the number 5/);
    assert.match(msg('chat: bad second'), /messages\[1\]\.content must be a string, got null/);
    assert.equal(byLabel['option temperature -1'].code, 'options');
    assert.match(msg('option temperature -1'), /temperature must be >= 0/);
    assert.match(msg('option max_tokens'), /unknown option 'max_tokens'/);
    assert.match(msg('options 7'), /chat options must be an object/);
    assert.equal(byLabel['while busy'].code, 'busy');
    assert.ok(r.during.includes('<|im_start|>user\nhi<|im_end|>'), r.during);
    assert.equal(r.after.type, 'done');
    assert.equal(r.busy, false);
    assert.ok(!env.logs.some((l) => /panicked|RuntimeError|unreachable/.test(l)), env.logs.join('\n'));
    metrics.badMessages = r.out.map((c) => `${c.label} -> [${c.code}] ${c.message}`);
  });

  test('a template that rejects a role, and malformed chat files, give clear Errors', T, async () => {
    const r = await page.evaluate(async (url) => {
      const { BlockDiff } = window;
      // A strict ChatML template that raises on roles it does not know.
      const strict = [
        "{%- for m in messages %}",
        "{%- if m.role not in ['system', 'user', 'assistant'] %}{{ raise_exception('unknown role: ' ~ m.role) }}{%- endif %}",
        "<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n",
        "{% endfor %}",
        "{%- if add_generation_prompt %}<|im_start|>assistant\n{% endif %}",
      ].join('');
      const enc = new TextEncoder();
      const files = (extra) => ({
        config: url + 'config.json',
        weights: url + 'model.safetensors',
        tokenizer: url + 'tokenizer.json',
        ...extra,
      });
      const loadError = (extra) => BlockDiff.load({ files: files(extra) })
        .then((s) => { s.dispose(); return null; }, (e) => ({ isError: e instanceof Error, code: e.code, message: e.message }));
      const errors = {
        badJson: await loadError({ tokenizerConfig: enc.encode('{"chat_template": ') }),
        notObject: await loadError({ generationConfig: enc.encode('[1, 2]') }),
        badTemplate: await loadError({ chatTemplate: enc.encode('{% for m in messages %}') }),
        badGeneration: await loadError({ generationConfig: enc.encode('{"temperature": -2}') }),
        notUtf8: await loadError({ chatTemplate: new Uint8Array([0xff, 0xfe, 0x41]) }),
        missingFile: await loadError({ chatTemplate: url + 'no-such-template.jinja' }),
        unknownFile: await loadError({ chat_template: enc.encode(strict) }),
      };
      const s = await BlockDiff.load({ files: files({ chatTemplate: enc.encode(strict), generationConfig: url + 'generation_config.json' }) });
      const info = s.info();
      let rejected;
      try {
        s.chat([{ role: 'user', content: 'hi' }, { role: 'robot', content: 'beep' }], QUICK);
      } catch (e) {
        rejected = { isError: e instanceof Error, code: e.code, message: e.message };
      }
      const rendered = s.applyChatTemplate([{ role: 'user', content: 'hi' }]);
      const done = await s.chat([{ role: 'user', content: 'hi' }], QUICK).result;
      s.dispose();
      // The first session is untouched.
      const first = await window.chat.chat([{ role: 'user', content: 'still here?' }], QUICK).result;
      return { errors, info: { chatTemplate: info.chatTemplate, chatDefaults: info.chatDefaults }, rejected, rendered, done: done.type, first: first.type };
    }, MODEL_URL);
    const e = r.errors;
    assert.deepEqual([e.badJson.isError, e.badJson.code], [true, 'config'], JSON.stringify(e.badJson));
    assert.match(e.badJson.message, /tokenizer_config\.json is not valid JSON/);
    assert.equal(e.notObject.code, 'config');
    assert.match(e.notObject.message, /generation_config\.json must hold a JSON object/);
    assert.equal(e.badTemplate.code, 'tokenizer');
    assert.match(e.badTemplate.message, /chat template/);
    assert.equal(e.badGeneration.code, 'config');
    assert.match(e.badGeneration.message, /generation_config\.json: .*temperature must be >= 0/);
    assert.equal(e.notUtf8.code, 'file');
    assert.match(e.notUtf8.message, /not UTF-8/);
    assert.equal(e.missingFile.code, 'fetch', 'an explicitly given chat file must exist');
    assert.match(e.missingFile.message, /no-such-template\.jinja failed: HTTP 404/);
    assert.equal(e.unknownFile.code, 'input');
    assert.match(e.unknownFile.message, /unknown model file 'chat_template'/);
    assert.equal(r.info.chatTemplate, true);
    assert.equal(r.info.chatDefaults.topK, 20);
    assert.deepEqual([r.rejected.isError, r.rejected.code], [true, 'input'], JSON.stringify(r.rejected));
    assert.match(r.rejected.message, /unknown role: robot/);
    assert.equal(r.rendered, '<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n');
    assert.equal(r.done, 'done');
    assert.equal(r.first, 'done');
    metrics.templateErrors = { ...Object.fromEntries(Object.entries(e).map(([k, v]) => [k, `[${v.code}] ${v.message}`])), rejectedRole: r.rejected.message };
  });

  test('the chat files come from the Cache API on a second load, also offline', T, async () => {
    await env.context.setOffline(true);
    try {
      const r = await page.evaluate(async (url) => {
        const t0 = performance.now();
        const s = await window.BlockDiff.load({ baseUrl: url });
        const ms = performance.now() - t0;
        const out = { ms, fromCache: s.fromCache, files: s.loadStats.files, absent: s.loadStats.absent, chatTemplate: s.info().chatTemplate };
        const done = await s.chat([{ role: 'user', content: 'offline?' }], QUICK).result;
        out.done = done.type;
        s.dispose();
        return out;
      }, MODEL_URL);
      metrics.cachedLoadMs = Math.round(r.ms);
      assert.equal(r.fromCache, true);
      assert.equal(r.files.length, 6);
      assert.ok(r.files.every((f) => f.fromCache), JSON.stringify(r.files));
      assert.deepEqual(r.absent, []);
      assert.equal(r.chatTemplate, true);
      assert.equal(r.done, 'done');
    } finally {
      await env.context.setOffline(false);
    }
  });
});
