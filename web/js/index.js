// blockdiff — block diffusion language models on WebGPU, in the browser.
//
// A thin wrapper over the wasm-bindgen module (blockdiff_core.js): it fetches the model files
// with streaming progress, keeps them in the Cache API so a second load works offline, and turns
// the callback-based generation (and chat) of the Rust session into an async iterator.

import init, * as core from './blockdiff_core.js';

const DEFAULT_CACHE = 'blockdiff-v1';
const FILE_NAMES = { config: 'config.json', weights: 'model.safetensors', tokenizer: 'tokenizer.json' };
/** Chat files: fetched from a `baseUrl` when the directory has them (HTTP 404 = absent). */
const CHAT_FILE_NAMES = {
  chatTemplate: 'chat_template.jinja',
  tokenizerConfig: 'tokenizer_config.json',
  generationConfig: 'generation_config.json',
};
const ALL_FILE_NAMES = { ...FILE_NAMES, ...CHAT_FILE_NAMES };
/** Marks a cached "this optional file does not exist" answer. */
const ABSENT_HEADER = 'x-blockdiff-absent';

let ready = null;

/** Makes an Error with a `code` (the Rust layer's errors carry one too). */
function fail(code, message, cause) {
  const e = new Error(message, cause ? { cause } : undefined);
  e.code = code;
  return e;
}

/** Loads and instantiates the wasm module once (`wasm`: a URL, Response, or bytes). */
async function initWasm(wasm) {
  if (!ready) {
    ready = (wasm === undefined ? init() : init({ module_or_path: wasm })).catch((e) => {
      ready = null;
      throw fail('wasm', `could not load the blockdiff wasm module: ${e && e.message ? e.message : e}`, e);
    });
  }
  return ready;
}

function baseHref() {
  if (typeof document !== 'undefined' && document.baseURI) return document.baseURI;
  if (typeof location !== 'undefined') return location.href;
  return undefined;
}

function resolveUrl(url) {
  try {
    return new URL(String(url), baseHref()).href;
  } catch (e) {
    throw fail('fetch', `not a valid URL: ${url}`, e);
  }
}

function isBytes(v) {
  return v instanceof ArrayBuffer || ArrayBuffer.isView(v) || (typeof Blob !== 'undefined' && v instanceof Blob);
}

async function toBytes(v) {
  if (v instanceof Uint8Array) return v;
  if (v instanceof ArrayBuffer) return new Uint8Array(v);
  if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  return new Uint8Array(await v.arrayBuffer());
}

async function openCache(name) {
  try {
    if (typeof caches === 'undefined') return null;
    return await caches.open(name);
  } catch {
    return null; // opaque origins, disabled storage: load without a cache
  }
}

/** Reads a response body, reporting every chunk. */
async function readBody(response, onChunk) {
  const declared = Number(response.headers.get('content-length'));
  const total = Number.isFinite(declared) && declared > 0 ? declared : null;
  if (!response.body || !response.body.getReader) {
    const bytes = new Uint8Array(await response.arrayBuffer());
    onChunk(bytes.length, bytes.length);
    return bytes;
  }
  const reader = response.body.getReader();
  let buf = new Uint8Array(total ?? 1 << 16);
  let n = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (n + value.length > buf.length) {
      // Content-Length was missing or counted compressed bytes: grow.
      const bigger = new Uint8Array(Math.max(buf.length * 2, n + value.length));
      bigger.set(buf.subarray(0, n));
      buf = bigger;
    }
    buf.set(value, n);
    n += value.length;
    onChunk(n, total);
  }
  return n === buf.length ? buf : buf.slice(0, n);
}

/** Whether an HTTP status (or a cached answer) says that an optional file does not exist. */
function isAbsent(response) {
  return response.status === 404 || response.status === 410 || response.headers.get(ABSENT_HEADER) === '1';
}

/**
 * Gets the model files. Each entry is `{ key, url?, bytes?, fromCache, optional, absent }`: an
 * optional file (a chat file next to a `baseUrl`) that the server answers with 404 is absent,
 * not an error, and that answer is cached too, so an offline load knows the file is not there.
 * Progress is aggregated over all files once every response has arrived.
 */
async function fetchFiles({ sources, optional }, { cache, onProgress, signal }) {
  const entries = Object.keys(sources).map((key) =>
    ({ key, name: ALL_FILE_NAMES[key], source: sources[key], optional: optional.has(key) }));
  const store = cache ? await openCache(cache) : null;
  const report = (file, extra) => {
    if (!onProgress) return;
    const loaded = entries.reduce((s, e) => s + (e.loaded || 0), 0);
    const known = entries.every((e) => e.total != null);
    const total = known ? entries.reduce((s, e) => s + e.total, 0) : null;
    try {
      onProgress({ phase: 'fetch', file: file.name, url: file.url ?? null, loaded, total,
        fileLoaded: file.loaded || 0, fileTotal: file.total ?? null, fromCache: !!file.fromCache, ...extra });
    } catch (e) {
      console.warn('blockdiff: onProgress threw', e);
    }
  };
  // Responses first (headers), so the total is known before the bodies stream.
  await Promise.all(entries.map(async (e) => {
    if (e.source == null) throw fail('input', `no ${e.key} file given (${e.name})`);
    if (isBytes(e.source)) {
      e.bytes = await toBytes(e.source);
      e.loaded = e.total = e.bytes.length;
      return;
    }
    e.url = resolveUrl(e.source);
    if (store) {
      try {
        const hit = await store.match(e.url);
        // An "absent" answer only stands for a file that may be missing.
        if (hit && (e.optional || hit.headers.get(ABSENT_HEADER) !== '1')) {
          e.response = hit;
          e.fromCache = true;
        }
      } catch { /* a broken cache entry: fetch instead */ }
    }
    if (!e.response) {
      let r;
      try {
        r = await fetch(e.url, { signal });
      } catch (err) {
        if (signal && signal.aborted) throw fail('cancelled', 'loading was cancelled', err);
        throw fail('fetch', `fetching ${e.url} failed: ${err && err.message ? err.message : err}`, err);
      }
      if (!r.ok && !(e.optional && isAbsent(r))) {
        throw fail('fetch', `fetching ${e.url} failed: HTTP ${r.status} ${r.statusText}`.trim());
      }
      e.response = r;
    }
    if (e.optional && isAbsent(e.response)) {
      e.absent = true;
      e.response = null;
      e.loaded = e.total = 0;
      return;
    }
    const len = Number(e.response.headers.get('content-length'));
    e.total = Number.isFinite(len) && len > 0 ? len : null;
    e.loaded = 0;
  }));
  await Promise.all(entries.map(async (e) => {
    if (e.absent) return;
    if (e.bytes) {
      report(e);
      return;
    }
    try {
      e.bytes = await readBody(e.response, (loaded, total) => {
        e.loaded = loaded;
        if (total != null) e.total = total;
        report(e);
      });
    } catch (err) {
      if (signal && signal.aborted) throw fail('cancelled', 'loading was cancelled', err);
      throw fail('fetch', `reading ${e.url} failed: ${err && err.message ? err.message : err}`, err);
    }
    e.total = e.loaded = e.bytes.length;
    report(e);
  }));
  return { entries, store };
}

const SOURCE_HELP = 'BlockDiff.load needs { baseUrl } or { files: { config, weights, tokenizer, '
  + 'chatTemplate?, tokenizerConfig?, generationConfig? } }';

/** `{ sources: { key: url or bytes }, optional: Set of keys whose 404 means "absent" }`. */
function sourcesOf(source) {
  if (typeof source === 'string' || source instanceof URL) source = { baseUrl: String(source) };
  if (!source || typeof source !== 'object') throw fail('input', SOURCE_HELP);
  if (source.files) {
    const sources = {};
    for (const [key, value] of Object.entries(source.files)) {
      if (!(key in ALL_FILE_NAMES)) {
        throw fail('input', `unknown model file '${key}' (known: ${Object.keys(ALL_FILE_NAMES).join(', ')})`);
      }
      if (value != null) sources[key] = value;
    }
    for (const key of Object.keys(FILE_NAMES)) sources[key] = source.files[key];
    return { sources, optional: new Set() };
  }
  if (source.baseUrl != null) {
    let base = String(source.baseUrl);
    if (!base.endsWith('/')) base += '/';
    const sources = {};
    for (const [key, name] of Object.entries(ALL_FILE_NAMES)) sources[key] = base + name;
    return { sources, optional: new Set(Object.keys(CHAT_FILE_NAMES)) };
  }
  throw fail('input', SOURCE_HELP);
}

/** The chat files as the text the wasm layer takes. */
function chatOptions(by) {
  const out = {};
  for (const [key, name] of Object.entries(CHAT_FILE_NAMES)) {
    const e = by[key];
    if (!e || e.absent) continue;
    try {
      out[key] = new TextDecoder('utf-8', { fatal: true }).decode(e.bytes);
    } catch (err) {
      throw fail('file', `${e.url ?? name}: not UTF-8 text`, err);
    }
  }
  return out;
}

/** Splits the options of `generate` and `chat` into the wrapper's and the wasm layer's. */
function streamOptions(options, what) {
  if (options == null) options = {};
  if (typeof options !== 'object') throw fail('options', `invalid option: ${what} options must be an object`);
  const { onBlock, onStep, signal, ...rest } = options;
  if (onBlock != null && typeof onBlock !== 'function') throw fail('options', 'invalid option: onBlock must be a function');
  if (onStep != null && typeof onStep !== 'function') throw fail('options', 'invalid option: onStep must be a function');
  if (onStep && rest.streamSteps === undefined) rest.streamSteps = true;
  return { rest, handlers: { onBlock, onStep, signal } };
}

/**
 * A streamed generation: an async iterator of `step`, `block` and finally `done` events.
 * `return()` (e.g. `break` in `for await`) and `cancel()` stop it; the session is free again
 * once the returned promise settles.
 */
class GenerationStream {
  #queue = [];
  #waiters = [];
  #finished = false;
  #error = null;
  #cancelled = false;
  #settled;
  #final = null;
  #failure = null;

  constructor(start, { onBlock, onStep, signal }) {
    const onEvent = (event) => {
      if (this.#cancelled) return false;
      try {
        if (event.type === 'block' && onBlock) onBlock(event);
        if (event.type === 'step' && onStep) onStep(event);
      } catch (e) {
        this.#fail(e);
        return false;
      }
      this.#push(event);
      return !this.#cancelled;
    };
    if (signal) {
      if (signal.aborted) this.#cancelled = true;
      else signal.addEventListener('abort', () => this.cancel(), { once: true });
    }
    const promise = start(onEvent); // throws synchronously on bad options / busy / disposed
    this.#settled = promise.then(
      (result) => {
        if (this.#finished) return; // an event handler threw: that error ends the stream
        this.#final = { type: 'done', ...result };
        this.#push(this.#final);
        this.#end();
      },
      (e) => this.#fail(e),
    );
  }

  #push(event) {
    const w = this.#waiters.shift();
    if (w) w.resolve({ value: event, done: false });
    else this.#queue.push(event);
  }

  #end() {
    this.#finished = true;
    for (const w of this.#waiters.splice(0)) w.resolve({ value: undefined, done: true });
  }

  #fail(e) {
    if (this.#finished) return;
    this.#error = e instanceof Error ? e : fail('error', String(e));
    this.#failure = this.#error;
    this.#finished = true;
    for (const w of this.#waiters.splice(0)) w.reject(this.#error);
  }

  [Symbol.asyncIterator]() {
    return this;
  }

  next() {
    if (this.#queue.length) return Promise.resolve({ value: this.#queue.shift(), done: false });
    if (this.#error) {
      const e = this.#error;
      this.#error = null; // report once, then end
      return Promise.reject(e);
    }
    if (this.#finished) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /** Cancels (if still running) and waits until the session is free. */
  async return(value) {
    this.cancel();
    this.#queue.length = 0;
    await this.#settled;
    this.#error = null;
    return { value, done: true };
  }

  /** Asks the generation to stop at its next event; it then ends with `stop: 'cancelled'`. */
  cancel() {
    this.#cancelled = true;
  }

  /** The final `done` event (drains nothing: events stay available to the iterator). */
  get result() {
    return this.#settled.then(() => {
      if (this.#final) return this.#final;
      throw this.#failure ?? fail('error', 'the generation failed');
    });
  }
}

/** A model loaded on the browser's WebGPU device. Create with `await BlockDiff.load(...)`. */
export class BlockDiff {
  #inner;

  /** @internal */
  constructor(inner, meta) {
    if (!(inner instanceof core.WebSession)) throw fail('input', 'use `await BlockDiff.load(...)`');
    this.#inner = inner;
    /** Whether every file came from the Cache API (no network). */
    this.fromCache = meta.fromCache;
    /** `{ bytes, ms, fromCache, files: [{ name, url, bytes, fromCache }] }` */
    this.loadStats = meta.loadStats;
  }

  /** Whether this browser exposes WebGPU (`navigator.gpu`). */
  static isSupported() {
    return typeof navigator !== 'undefined' && !!navigator.gpu;
  }

  /** Loads the wasm module ahead of time (optional; `load` does it). */
  static async init(wasm) {
    await initWasm(wasm);
  }

  /** The package version. */
  static get version() {
    return core.version();
  }

  /** Deletes the cached model files. */
  static async clearCache(name = DEFAULT_CACHE) {
    if (typeof caches === 'undefined') return false;
    return caches.delete(name);
  }

  /**
   * Fetches (or reads from the cache) `config.json`, `model.safetensors` and `tokenizer.json`,
   * and the chat files `chat_template.jinja`, `tokenizer_config.json`, `generation_config.json`
   * where the directory has them, and loads the model onto the GPU.
   */
  static async load(source, options = {}) {
    const { onProgress, cache = DEFAULT_CACHE, dtype, signal, wasm } = options ?? {};
    const cacheName = cache === true ? DEFAULT_CACHE : cache || null;
    if (!BlockDiff.isSupported()) {
      throw fail('no-webgpu',
        'WebGPU is not available in this browser: navigator.gpu is missing (use a recent Chrome/Edge, or enable WebGPU; pages must be served over https or from localhost)');
    }
    const files = sourcesOf(source);
    const t0 = performance.now();
    const [, { entries, store }] = await Promise.all([
      initWasm(wasm),
      fetchFiles(files, { cache: cacheName, onProgress, signal }),
    ]);
    if (signal && signal.aborted) throw fail('cancelled', 'loading was cancelled');
    const by = Object.fromEntries(entries.map((e) => [e.key, e]));
    const label = entries.find((e) => e.key === 'weights').url ?? 'model';
    const where = label.replace(/\/?model\.safetensors$/, '') || label;
    const coreOptions = chatOptions(by);
    if (dtype) coreOptions.dtype = dtype;
    onProgress?.({ phase: 'gpu', file: null, url: null, loaded: 0, total: null, fromCache: false });
    const inner = await core.loadSession(where, by.config.bytes, by.weights.bytes, by.tokenizer.bytes,
      coreOptions);
    // Only files that loaded cleanly are cached, so a bad download is never replayed.
    if (store) {
      await Promise.all(entries.filter((e) => e.url && !e.fromCache).map(async (e) => {
        try {
          await store.put(e.url, e.absent
            ? new Response(null, { status: 404, headers: { [ABSENT_HEADER]: '1' } })
            : new Response(e.bytes, {
              headers: { 'content-type': 'application/octet-stream', 'content-length': String(e.bytes.length) },
            }));
        } catch (err) {
          console.warn(`blockdiff: could not cache ${e.url}`, err);
        }
      }));
    }
    const fromCache = entries.every((e) => e.fromCache);
    const present = entries.filter((e) => !e.absent);
    const loadStats = {
      bytes: present.reduce((s, e) => s + e.bytes.length, 0),
      ms: performance.now() - t0,
      fromCache,
      files: present.map((e) => ({ name: e.name, url: e.url ?? null, bytes: e.bytes.length, fromCache: !!e.fromCache })),
      absent: entries.filter((e) => e.absent).map((e) => e.name),
    };
    onProgress?.({ phase: 'ready', file: null, url: null, loaded: loadStats.bytes, total: loadStats.bytes, fromCache });
    return new BlockDiff(inner, { fromCache, loadStats });
  }

  /**
   * Generates a continuation of `prompt`. Returns an async iterator of events; throws at once on
   * invalid options or when another operation is running.
   */
  generate(prompt, options = {}) {
    if (typeof prompt !== 'string') throw fail('input', 'invalid input: the prompt must be a string');
    const { rest, handlers } = streamOptions(options, 'generate');
    return new GenerationStream((onEvent) => this.#inner.generate(prompt, rest, onEvent), handlers);
  }

  /**
   * Answers the last of `messages` (`[{ role, content }, ...]`, rendered with the model's chat
   * template). The conversation's earlier turns stay in the KV cache: keep the array growing
   * (append the answer as an `assistant` message) and only the new part is computed. Options as
   * `generate`, on top of the model's `generation_config.json` defaults. Returns the same async
   * iterator of events as `generate`; throws at once on invalid messages or options, or when
   * another operation is running.
   */
  chat(messages, options = {}) {
    if (!Array.isArray(messages)) {
      throw fail('input', 'invalid input: messages must be an array of { role, content } objects');
    }
    const { rest, handlers } = streamOptions(options, 'chat');
    return new GenerationStream((onEvent) => this.#inner.chat(messages, rest, onEvent), handlers);
  }

  /** The prompt text `chat(messages)` generates after (the model's chat template applied). */
  applyChatTemplate(messages) {
    return this.#inner.applyChatTemplate(messages);
  }

  /** Runs a whole generation and resolves to its `done` event. */
  async complete(prompt, options = {}) {
    const stream = this.generate(prompt, options);
    let last;
    for await (const event of stream) last = event;
    return last;
  }

  /** The block-diffusion NLL upper bound of `text` (nats per token). */
  async score(text, options = {}) {
    if (typeof text !== 'string') throw fail('input', 'invalid input: the text must be a string');
    return this.#inner.score(text, options);
  }

  /** Top-`k` predictions (with entropy) at `n` masked positions after `prompt`. */
  async probe(prompt, n = 8, k = 5) {
    if (typeof prompt !== 'string') throw fail('input', 'invalid input: the prompt must be a string');
    return this.#inner.probe(prompt, Number(n), Number(k));
  }

  /** Token ids of `text` (without BOS). */
  encode(text) {
    return Array.from(this.#inner.encode(String(text)));
  }

  /** Text of token ids. */
  decode(ids) {
    return this.#inner.decode(Uint32Array.from(ids));
  }

  /** Model, adapter and memory facts. */
  info() {
    return { ...this.#inner.info(), fromCache: this.fromCache };
  }

  /** Whether an operation is running. */
  get busy() {
    return this.#inner.busy;
  }

  /** Whether `dispose()` was called. */
  get disposed() {
    return this.#inner.disposed;
  }

  /** Frees the GPU memory; a running generation is cancelled. Later calls throw. */
  dispose() {
    this.#inner.dispose();
  }
}

export default BlockDiff;
