// The blockdiff demo page: load a model with progress, generate with live denoising, probe.
// Plain ES module, no framework. `?model=URL` picks another model directory.

const DEFAULT_MODEL = '/models/bd3lm-shakespeare-tiny/';
const $ = (id) => document.getElementById(id);

let BlockDiff = null;
let session = null;
let stream = null;
let loading = false;

function setState(state) {
  document.body.dataset.state = state;
  const ready = !!session && !session.disposed && state !== 'loading';
  const busy = state === 'generating' || state === 'probing' || state === 'loading';
  $('generate').disabled = !ready || busy;
  $('probe').disabled = !ready || busy;
  $('stop').disabled = state !== 'generating';
  $('load').disabled = state === 'loading' || state === 'no-webgpu';
}

function showError(e) {
  const box = $('error');
  const code = e && e.code ? ` [${e.code}]` : '';
  box.textContent = `${e && e.message ? e.message : String(e)}${code}`;
  box.hidden = false;
  console.error(e);
}

function clearError() {
  $('error').hidden = true;
  $('error').textContent = '';
}

const mb = (n) => (n / 1e6).toFixed(n < 1e7 ? 2 : 1);

function onProgress(p) {
  const bar = $('progress');
  if (p.phase === 'fetch') {
    if (p.total) {
      bar.max = p.total;
      bar.value = p.loaded;
    } else {
      bar.removeAttribute('value');
    }
    const where = p.fromCache ? 'cache' : 'network';
    $('load-status').textContent = `${p.file}: ${mb(p.loaded)}${p.total ? ' / ' + mb(p.total) : ''} MB (${where})`;
  } else if (p.phase === 'gpu') {
    $('load-status').textContent = 'uploading weights to the GPU…';
  }
}

async function loadModel(url) {
  if (loading) return;
  loading = true;
  clearError();
  if (stream) stream.cancel();
  if (session) {
    session.dispose();
    session = null;
  }
  $('model-info').textContent = '';
  $('progress').value = 0;
  $('load-status').textContent = `loading ${url}…`;
  setState('loading');
  try {
    const t0 = performance.now();
    session = await BlockDiff.load({ baseUrl: url }, { onProgress });
    const s = session.loadStats;
    const secs = ((performance.now() - t0) / 1000).toFixed(2);
    $('progress').max = 1;
    $('progress').value = 1;
    $('load-status').textContent = `loaded ${mb(s.bytes)} MB ${s.fromCache ? 'from cache' : 'from the network'} in ${secs} s`;
    const i = session.info();
    const adapter = `${i.adapter.name || 'WebGPU'} (${i.adapter.deviceType === 'Cpu' ? 'software adapter' : i.adapter.deviceType})`;
    $('model-info').textContent = `${i.architecture}: ${i.layers} layers, hidden ${i.hidden}, ${i.heads} heads, ` +
      `block ${i.blockSize}, context ${i.context}, vocab ${i.vocabSize}; weights ${i.dtype} ` +
      `(${mb(i.weightBytes ?? 0)} MB on the GPU) on ${adapter}`;
    document.body.dataset.fromCache = String(s.fromCache);
    setState('ready');
  } catch (e) {
    session = null;
    $('load-status').textContent = 'loading failed';
    showError(e);
    setState('error');
  } finally {
    loading = false;
  }
}

function numberOption(id) {
  const v = $(id).value.trim();
  return v === '' ? undefined : Number(v);
}

function readOptions() {
  return {
    strategy: $('strategy').value,
    steps: numberOption('steps'),
    temperature: numberOption('temperature'),
    topP: numberOption('top-p'),
    maxTokens: numberOption('max-tokens'),
    seed: numberOption('seed'),
    streamSteps: $('stream-steps').checked,
  };
}

function visible(text) {
  return text.replace(/\n/g, '↵').replace(/ /g, '␣').replace(/\t/g, '⇥') || '∅';
}

function renderLive(ev) {
  const live = document.querySelector('#output .live');
  live.textContent = '';
  for (let i = ev.promptTokens; i < ev.tokens.length; i++) {
    const span = document.createElement('span');
    const t = ev.texts[i];
    if (t === null) {
      span.className = 'tok masked';
      span.textContent = '░';
    } else {
      span.className = 'tok';
      span.textContent = t;
    }
    live.appendChild(span);
  }
}

function setFigures(stats, stop) {
  $('fig-tps').textContent = stats ? stats.tokensPerSecond.toFixed(2) : '–';
  $('fig-nfe').textContent = stats ? String(stats.nfe) : '–';
  $('fig-tpf').textContent = stats ? stats.tokensPerForward.toFixed(2) : '–';
  $('fig-tokens').textContent = stats ? String(stats.generatedTokens) : '–';
  $('fig-blocks').textContent = stats ? String(stats.blocks) : '–';
  $('fig-stop').textContent = stop ?? '–';
}

async function generate() {
  if (!session || session.busy) return;
  clearError();
  const prompt = $('prompt').value;
  try {
    stream = session.generate(prompt, readOptions());
  } catch (e) {
    showError(e); // invalid options: the page stays usable
    return;
  }
  const out = $('output');
  out.querySelector('.prompt-text').textContent = prompt;
  out.querySelector('.committed').textContent = '';
  out.querySelector('.live').textContent = '';
  out.dataset.done = 'false';
  setFigures(null);
  setState('generating');
  const t0 = performance.now();
  let tokens = 0;
  try {
    for await (const ev of stream) {
      if (ev.type === 'step') {
        renderLive(ev);
      } else if (ev.type === 'block') {
        tokens += ev.tokens.length;
        out.querySelector('.live').textContent = '';
        out.querySelector('.committed').textContent += ev.text;
        const secs = (performance.now() - t0) / 1000;
        $('fig-tps').textContent = (tokens / secs).toFixed(2);
        $('fig-tokens').textContent = String(tokens);
        $('fig-blocks').textContent = String(ev.block + 1);
      } else if (ev.type === 'done') {
        out.querySelector('.live').textContent = '';
        out.querySelector('.committed').textContent = ev.text;
        setFigures(ev.stats, ev.stop);
        out.dataset.done = 'true';
      }
    }
  } catch (e) {
    showError(e);
  } finally {
    stream = null;
    setState(session && !session.disposed ? 'ready' : 'error');
  }
}

function heat(p) {
  // white → accent blue on a log scale: 1e-3 (and below) is white, 1 is full blue.
  const a = Math.max(0, Math.min(1, (Math.log10(Math.max(p, 1e-9)) + 3) / 3));
  const mix = (x, y) => Math.round(x + (y - x) * a);
  return `rgb(${mix(255, 36)}, ${mix(255, 87)}, ${mix(255, 214)})`;
}

function renderProbe(rows, k, maxEntropy) {
  const view = $('probe-view');
  view.textContent = '';
  const table = document.createElement('table');
  table.className = 'heatmap';
  const head = table.createTHead().insertRow();
  for (const h of ['position', ...Array.from({ length: k }, (_, i) => `#${i + 1}`), 'entropy']) {
    const th = document.createElement('th');
    th.textContent = h;
    head.appendChild(th);
  }
  const body = table.createTBody();
  for (const row of rows) {
    const tr = body.insertRow();
    const pos = document.createElement('th');
    pos.textContent = `+${row.distance}`;
    tr.appendChild(pos);
    for (let j = 0; j < k; j++) {
      const td = tr.insertCell();
      td.className = 'cell';
      const p = row.probs[j] ?? 0;
      td.style.background = heat(p);
      td.style.color = p > 0.05 ? '#fff' : '';
      td.title = `token ${row.tokens[j]}: p = ${p.toFixed(4)}`;
      td.dataset.p = String(p);
      td.textContent = visible(row.texts[j] ?? '');
      const small = document.createElement('span');
      small.className = 'p';
      small.textContent = `${(p * 100).toFixed(1)}%`;
      td.appendChild(small);
    }
    const ent = tr.insertCell();
    ent.textContent = row.entropy.toFixed(2);
    ent.style.background = `rgba(180, 86, 15, ${Math.min(1, row.entropy / maxEntropy) * 0.6})`;
  }
  view.appendChild(table);
  const legend = document.createElement('div');
  legend.className = 'legend';
  legend.innerHTML = '<span>p ≤ 10⁻³</span><span class="bar"></span><span>p = 1 (log scale)</span>' +
    '<span>&nbsp;· entropy in nats (orange: higher)</span>';
  view.appendChild(legend);
}

async function probe() {
  if (!session || session.busy) return;
  clearError();
  const n = numberOption('probe-n') ?? 8;
  const k = numberOption('probe-k') ?? 5;
  setState('probing');
  try {
    const rows = await session.probe($('prompt').value, n, k);
    renderProbe(rows, k, Math.log(session.info().vocabSize));
    $('probe-view').dataset.rows = String(rows.length);
  } catch (e) {
    showError(e);
  } finally {
    setState(session && !session.disposed ? 'ready' : 'error');
  }
}

async function main() {
  const params = new URLSearchParams(location.search);
  const model = params.get('model') || DEFAULT_MODEL;
  $('model-url').value = model;
  $('load').addEventListener('click', () => loadModel($('model-url').value.trim() || DEFAULT_MODEL));
  $('generate').addEventListener('click', generate);
  $('stop').addEventListener('click', () => stream && stream.cancel());
  $('probe').addEventListener('click', probe);
  $('prompt').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) generate();
  });
  $('clear-cache').addEventListener('click', async () => {
    const ok = BlockDiff && (await BlockDiff.clearCache());
    $('load-status').textContent = ok ? 'cache cleared' : 'nothing cached';
  });
  try {
    ({ BlockDiff } = await import('../pkg/index.js'));
  } catch (e) {
    showError(new Error(`could not load the blockdiff package from /web/pkg (run web/build.sh): ${e.message}`));
    setState('error');
    return;
  }
  // For tests and the console.
  window.demo = { BlockDiff, get session() { return session; }, loadModel, generate, probe };
  if (!BlockDiff.isSupported()) {
    $('no-webgpu').hidden = false;
    $('load-status').textContent = 'WebGPU is not available';
    setState('no-webgpu');
    return;
  }
  await loadModel(model);
}

main();
