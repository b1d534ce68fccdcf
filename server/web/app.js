// fitd dashboard: a single page over the public /v1 API (api-docs/openapi.yaml).
// Plain JavaScript, no build step. Views are picked by the URL's hash:
//   #/             jobs (and sweeps, when the server has them), polled every 2 s
//   #/jobs/{id}    one job: live progress over SSE (or polling), learning curves,
//                  final metrics, downloads, cancel, the spec
//   #/new          submit a job
//   #/datasets     datasets and a CSV upload
//   #/sweeps/{id}  a sweep's trials, ranked, with its comparison chart
// Everything from the server is put in the page as text (textContent), never as
// markup; server-rendered SVG charts are shown through <img>, which runs nothing.
'use strict';

const POLL_MS = 2000;
const TOKEN_KEY = 'fitd.token';
const FINAL = new Set(['succeeded', 'failed', 'cancelled']);

// The classic Keras example on tests/fixtures/digits.csv (the README's quickstart).
const EXAMPLE_SPEC = {
  name: 'digits-l2-dropout',
  data: { train: '' },
  model: {
    input_shape: [64],
    layers: [
      { type: 'dense', units: 64, activation: 'relu', kernel_regularizer: { l2: 0.001 } },
      { type: 'dropout', rate: 0.2 },
      { type: 'dense', units: 10, activation: 'softmax' },
    ],
  },
  compile: {
    optimizer: { name: 'adam', learning_rate: 0.001 },
    loss: 'sparse_categorical_crossentropy',
    metrics: ['accuracy'],
  },
  fit: { epochs: 20, batch_size: 32, validation_split: 0.2, seed: 42 },
};

// ------------------------------------------------------------------ DOM helpers

// el('tag.class', {attr: value, onclick: fn}, children...): children are nodes or
// strings (added as text).
function el(spec, attrs, ...children) {
  const [tag, ...classes] = spec.split('.');
  const node = document.createElement(tag);
  if (classes.length) node.className = classes.join(' ');
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
    else if (k === 'text') node.textContent = v;
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

const SVG_NS = 'http://www.w3.org/2000/svg';
function svgEl(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

function fmt(v) {
  if (typeof v !== 'number' || !Number.isFinite(v)) return v === null || v === undefined ? '—' : String(v);
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(3) : v.toPrecision(4);
}

function fmtTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

function fmtDuration(s) {
  if (typeof s !== 'number' || !Number.isFinite(s) || s < 0) return '—';
  if (s < 60) return `${Math.round(s)} s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m} min ${Math.round(s % 60)} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

function badge(status) {
  return el(`span.badge.st-${status || 'unknown'}`, { 'data-status': status || '' }, status || 'unknown');
}

function toast(message) {
  const t = document.getElementById('toast');
  t.textContent = message;
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, 5000);
}

// ------------------------------------------------------------------ the API

class ApiError extends Error {
  constructor(status, problem, fallback) {
    super((problem && (problem.detail || problem.title)) || fallback || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || null;
  }
}

function token() {
  return sessionStorage.getItem(TOKEN_KEY) || '';
}

// fetch() against the API with the bearer token when one is set. Answers other
// than 2xx/304 become an ApiError (with the problem document when there is one);
// a 401 also opens the token prompt.
async function api(path, opts = {}) {
  const headers = new Headers(opts.headers || {});
  const t = token();
  if (t) headers.set('Authorization', `Bearer ${t}`);
  const resp = await fetch(path, { ...opts, headers, cache: 'no-store' });
  if (resp.ok || resp.status === 304) return resp;
  let problem = null;
  try {
    const type = resp.headers.get('Content-Type') || '';
    if (type.includes('json')) problem = await resp.json();
  } catch (e) { /* not JSON: keep the status only */ }
  if (resp.status === 401) {
    const www = resp.headers.get('WWW-Authenticate') || '';
    promptToken(www.includes('invalid_token') ? 'The token was refused. Enter another one.'
                                                : 'This fitd asks for a bearer token.');
  }
  throw new ApiError(resp.status, problem);
}

async function apiJson(path, opts) {
  const resp = await api(path, opts);
  return resp.json();
}

// A message (and the problem's field errors) for a failed call, as a node.
function errorBox(err, what) {
  const box = el('div.error', { role: 'alert' });
  if (err instanceof ApiError && err.status === 401) {
    box.append(el('p', {}, `${what}: a valid API token is needed.`));
    return box;
  }
  box.append(el('p', {}, `${what}: ${err.message}`));
  const errors = err.problem && Array.isArray(err.problem.errors) ? err.problem.errors : [];
  if (errors.length) {
    box.append(el('ul', {}, errors.map((e) => el('li', {}, el('code', {}, e.pointer || '/'), ' ', e.message))));
  }
  return box;
}

// Fetch with the auth header and hand the bytes to the browser as a download
// (a plain link cannot carry the Authorization header).
async function download(path, filename, accept) {
  try {
    const resp = await api(path, accept ? { headers: { Accept: accept } } : {});
    const url = URL.createObjectURL(await resp.blob());
    const a = el('a', { href: url, download: filename, hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  } catch (err) {
    toast(`Download failed: ${err.message}`);
  }
}

function downloadLink(label, path, filename, accept) {
  return el('a.button.secondary', {
    href: path,
    'data-download': filename,
    onclick: (ev) => { ev.preventDefault(); download(path, filename, accept); },
  }, label);
}

// ------------------------------------------------------------------ token prompt

function promptToken(reason) {
  const dlg = document.getElementById('token-dialog');
  if (dlg.open) return;
  document.getElementById('token-reason').textContent = reason || 'Enter the bearer token for this fitd.';
  const input = document.getElementById('token-input');
  input.value = '';
  dlg.showModal();
  input.focus();
}

function renderAuthStatus() {
  const has = token() !== '';
  document.getElementById('auth-label').textContent = has ? 'Token set' : 'No token';
  document.getElementById('auth-change').textContent = has ? 'Change token' : 'Enter token';
  document.getElementById('auth-forget').hidden = !has;
}

function setupAuth() {
  const dlg = document.getElementById('token-dialog');
  document.getElementById('token-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const value = document.getElementById('token-input').value.trim();
    if (!value) return;
    sessionStorage.setItem(TOKEN_KEY, value);
    dlg.close();
    renderAuthStatus();
    route();
  });
  document.getElementById('token-cancel').addEventListener('click', () => dlg.close());
  document.getElementById('auth-change').addEventListener('click', () => promptToken());
  document.getElementById('auth-forget').addEventListener('click', () => {
    sessionStorage.removeItem(TOKEN_KEY);
    renderAuthStatus();
    route();
  });
  renderAuthStatus();
}

// ------------------------------------------------------------------ views

// The current view's teardown (timers, streams), run before the next view.
let teardown = [];
function onLeave(fn) { teardown.push(fn); }

// Run fn now and every POLL_MS until the view changes; a failing poll shows its
// error in `errSlot` and keeps polling (the server may come back).
function poll(fn, errSlot, what) {
  let timer = null;
  let stopped = false;
  const tick = async () => {
    try {
      const again = await fn();
      if (errSlot) errSlot.replaceChildren();
      if (again === false) return;
    } catch (err) {
      if (errSlot) errSlot.replaceChildren(errorBox(err, what));
    }
    if (!stopped) timer = setTimeout(tick, POLL_MS);
  };
  onLeave(() => { stopped = true; clearTimeout(timer); });
  tick();
}

// The share of the training done, 0..1. While a job runs, progress.epoch is the
// epoch in progress (1-based) and batch the batches done in it; otherwise epoch
// counts the finished epochs.
function progressFraction(status, p) {
  if (status === 'succeeded') return 1;
  const epochs = p.epochs || 0;
  if (!epochs) return 0;
  let done = p.epoch || 0;
  if (status === 'running' && done > 0) done = done - 1 + (p.batches ? (p.batch || 0) / p.batches : 0);
  return Math.max(0, Math.min(1, done / epochs));
}

function progressCell(job) {
  const p = job.progress || {};
  return el('div.progress-cell', {},
    el('progress', { max: 1000, value: Math.round(progressFraction(job.status, p) * 1000),
                     'aria-label': `Progress of ${job.name || job.id}` }),
    el('span.small', {}, `epoch ${p.epoch || 0}/${p.epochs || 0}`));
}

// #/ — jobs, and sweeps where the server has them.
function viewJobs(root) {
  const errSlot = el('div');
  const tbody = el('tbody');
  const table = el('table.list', { id: 'jobs-table' },
    el('caption.visually-hidden', {}, 'Jobs, newest first'),
    el('thead', {}, el('tr', {},
      ['Job', 'Status', 'Progress', 'Loss', 'Val loss', 'Created'].map((h) => el('th', { scope: 'col' }, h)))),
    tbody);
  const empty = el('p.muted', { hidden: true }, 'No jobs yet. ', el('a', { href: '#/new' }, 'Submit one.'));
  const sweeps = el('section', { hidden: true, 'aria-labelledby': 'sweeps-h' });
  root.append(
    el('div.title-row', {}, el('h1', {}, 'Jobs'), el('a.button', { href: '#/new' }, 'New job')),
    errSlot, table, empty, sweeps);

  poll(async () => {
    const page = await apiJson('/v1/jobs?limit=100');
    const items = page.items || [];
    tbody.replaceChildren(...items.map((j) => {
      const m = j.metrics || {};
      return el('tr', { 'data-job': j.id },
        el('td', {}, el('a', { href: `#/jobs/${encodeURIComponent(j.id)}` }, j.name || j.id),
           j.name ? el('div.small.mono', {}, j.id) : null),
        el('td', {}, badge(j.status)),
        el('td', {}, progressCell(j)),
        el('td.num', {}, fmt(m.loss)),
        el('td.num', {}, fmt(m.val_loss)),
        el('td', {}, fmtTime(j.created_at)));
    }));
    table.hidden = items.length === 0;
    table.dataset.loaded = 'true';
    empty.hidden = items.length !== 0;
  }, errSlot, 'Loading jobs');

  // Sweeps: listed when GET /v1/sweeps exists; a 404 (an older fitd) hides them.
  apiJson('/v1/sweeps?limit=50').then((page) => {
    const items = Array.isArray(page) ? page : (page.items || []);
    if (!items.length) return;
    sweeps.hidden = false;
    sweeps.append(el('h2', { id: 'sweeps-h' }, 'Sweeps'),
      el('ul.plain', {}, items.map((s) => el('li', {},
        el('a', { href: `#/sweeps/${encodeURIComponent(s.id)}` }, s.name || s.id), ' ', badge(s.status)))));
  }).catch(() => {});
}

// #/jobs/{id}
function viewJob(root, id) {
  const base = `/v1/jobs/${encodeURIComponent(id)}`;
  const errSlot = el('div');
  const title = el('h1', {}, id);
  const status = el('span');
  const cancelBtn = el('button.danger', { type: 'button', id: 'cancel-job', hidden: true }, 'Cancel job');
  const bar = el('progress', { max: 1000, value: 0, id: 'job-progress', 'aria-label': 'Training progress' });
  const progressText = el('span.small', { id: 'progress-text' }, '');
  const liveNote = el('span.small.muted', { id: 'live-mode' }, '');
  const chart = el('div.chart', { id: 'chart', 'aria-live': 'off' }, el('p.muted', {}, 'No epochs yet.'));
  const metricsBox = el('div', { id: 'final-metrics' });
  const errorText = el('div');
  const weightsLink = downloadLink('Weights (.safetensors)', `${base}/weights`, `${id}.safetensors`);
  const csvLink = downloadLink('Metrics (.csv)', `${base}/metrics`, `${id}-metrics.csv`, 'text/csv');
  const noDownloads = el('p.muted', {}, 'Nothing to download yet.');
  const downloads = el('div.buttons', { id: 'downloads' }, weightsLink, csvLink, noDownloads);
  const specPre = el('pre.spec', { id: 'job-spec' }, '');

  root.append(
    el('p.crumbs', {}, el('a', { href: '#/' }, 'Jobs'), ' / ', el('span.mono', {}, id)),
    el('div.title-row', {}, title, status, cancelBtn),
    errSlot,
    el('div.progress-row', {}, bar, progressText, liveNote),
    errorText,
    el('section', { 'aria-labelledby': 'curves-h' }, el('h2', { id: 'curves-h' }, 'Learning curves'), chart),
    el('div.columns', {},
      el('section', { 'aria-labelledby': 'metrics-h' }, el('h2', { id: 'metrics-h' }, 'Metrics'), metricsBox),
      el('section', { 'aria-labelledby': 'dl-h' }, el('h2', { id: 'dl-h' }, 'Downloads'), downloads)),
    el('section', { 'aria-labelledby': 'spec-h' }, el('h2', { id: 'spec-h' }, 'Spec'), specPre));

  let job = null;
  let etag = null;
  let lastEpoch = -1;
  let left = false;
  let eta = null;
  const chartView = makeChart(chart, base);
  onLeave(() => { left = true; chartView.dispose(); });

  cancelBtn.addEventListener('click', async () => {
    cancelBtn.disabled = true;
    try {
      await api(`${base}/cancel`, { method: 'POST' });
      toast('Cancellation requested.');
      await refresh();
    } catch (err) {
      errSlot.replaceChildren(errorBox(err, 'Cancel'));
    }
    cancelBtn.disabled = false;
  });

  function renderProgress(p) {
    const epochs = p.epochs || 0;
    bar.value = Math.round(progressFraction(job && job.status, p) * 1000);
    let text = `epoch ${p.epoch || 0}/${epochs}`;
    if (p.batches) text += `, batch ${p.batch || 0}/${p.batches}`;
    if (eta !== null && job && job.status === 'running') text += `, about ${fmtDuration(eta)} left`;
    progressText.textContent = text;
  }

  function render(j) {
    job = j;
    title.textContent = j.name || j.id;
    status.replaceChildren(badge(j.status));
    status.id = 'job-status';
    cancelBtn.hidden = FINAL.has(j.status);
    renderProgress(j.progress || {});
    if (!j.error) errorText.replaceChildren();
    else if (j.status === 'failed') errorText.replaceChildren(el('div.error', { role: 'alert' }, el('p', {}, `Failed: ${j.error}`)));
    else errorText.replaceChildren(el('p.muted', {}, j.error));
    weightsLink.hidden = j.status !== 'succeeded';
    csvLink.hidden = !j.metrics;
    noDownloads.hidden = !weightsLink.hidden || !csvLink.hidden;
    renderMetrics(metricsBox, j);
    const spec = JSON.stringify(j.spec, null, 2);
    if (specPre.textContent !== spec) specPre.textContent = spec;
    const epoch = j.metrics ? j.metrics.epoch : 0;
    if (epoch !== lastEpoch) {
      lastEpoch = epoch;
      if (epoch > 0) chartView.refresh();
    }
  }

  // GET the job (a 304 keeps what we have). One request at a time, so an older
  // answer never overwrites a newer one; calls made meanwhile coalesce into one
  // more request. Resolves to the job.
  let inflight = null;
  let pending = false;
  async function refreshOnce() {
    const resp = await api(base, etag ? { headers: { 'If-None-Match': etag } } : {});
    if (resp.status !== 304) {
      const j = await resp.json();
      etag = resp.headers.get('ETag');
      render(j);
    }
  }
  function refresh() {
    if (inflight) {
      pending = true;
      return inflight;
    }
    inflight = (async () => {
      try {
        do {
          pending = false;
          await refreshOnce();
        } while (pending && !left);
      } finally {
        inflight = null;
      }
      return job;
    })();
    return inflight;
  }

  async function start() {
    if (left) return;
    try {
      await refresh();
    } catch (err) {
      errSlot.replaceChildren(errorBox(err, 'Loading the job'));
      if (!left && !(err instanceof ApiError && err.status === 404)) setTimeout(start, POLL_MS);
      return;
    }
    if (FINAL.has(job.status)) return;
    if (!(await followEvents())) pollJob();
  }

  // Live updates over SSE. Returns false when the server has no events route
  // (404), so the caller polls instead; otherwise follows until the job ends.
  async function followEvents() {
    let lastId = null;
    const ctl = new AbortController();
    onLeave(() => ctl.abort());
    for (;;) {
      let resp;
      try {
        const headers = { Accept: 'text/event-stream' };
        if (lastId) headers['Last-Event-ID'] = lastId;
        resp = await api(`${base}/events`, { headers, signal: ctl.signal });
      } catch (err) {
        if (left) return true;
        if (err instanceof ApiError && err.status === 404) return false;
        errSlot.replaceChildren(errorBox(err, 'Live updates'));
        await sleep(POLL_MS);
        continue;
      }
      liveNote.textContent = 'live';
      liveNote.dataset.mode = 'sse';
      errSlot.replaceChildren();
      try {
        await readSse(resp.body, (ev) => {
          if (ev.id) lastId = ev.id;
          onEvent(ev);
        });
      } catch (err) {
        if (left) return true;
      }
      if (left) return true;
      // The stream ended: the job finished, or the connection dropped. Look.
      try { await refresh(); } catch (err) { /* shown by the next attempt */ }
      if (job && FINAL.has(job.status)) {
        liveNote.textContent = '';
        return true;
      }
      await sleep(1000);
    }
  }

  function onEvent(ev) {
    let data = null;
    try { data = JSON.parse(ev.data); } catch (e) { data = ev.data; }
    if (ev.event === 'progress' && data && typeof data === 'object') {
      const e = data.eta_seconds !== undefined ? data.eta_seconds : data.eta_s;
      eta = typeof e === 'number' ? e : null;
      if (job) {
        job.progress = { ...job.progress, ...data };
        renderProgress(job.progress);
      }
    } else if (ev.event === 'epoch') {
      // The job's last record changes with it: render() then re-fetches the chart.
      refresh().catch(() => {});
    } else if (ev.event === 'state') {
      refresh().catch(() => {});
    }
  }

  // Without an events route: GET the job every 2 s (cheap with If-None-Match).
  function pollJob() {
    liveNote.textContent = 'updating every 2 s';
    liveNote.dataset.mode = 'poll';
    poll(async () => {
      await refresh();
      if (FINAL.has(job.status)) {
        liveNote.textContent = '';
        return false;
      }
      return true;
    }, errSlot, 'Updating the job');
  }

  start();
}

function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }

// Read a text/event-stream body and call onEvent({event, data, id}) per event
// (the parsing rules of the HTML standard's EventSource, minus retry:).
async function readSse(body, onEvent) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  let ev = { event: 'message', data: [], id: null };
  const line = (l) => {
    if (l === '') {
      if (ev.data.length) onEvent({ event: ev.event, data: ev.data.join('\n'), id: ev.id });
      ev = { event: 'message', data: [], id: ev.id };
      return;
    }
    if (l.startsWith(':')) return;
    const colon = l.indexOf(':');
    const field = colon < 0 ? l : l.slice(0, colon);
    let value = colon < 0 ? '' : l.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') ev.event = value;
    else if (field === 'data') ev.data.push(value);
    else if (field === 'id') ev.id = value;
  };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += decoder.decode(value, { stream: true });
    let m;
    while ((m = /\r\n|\r|\n/.exec(buf)) !== null) {
      // A lone \r at the end may be the first half of \r\n: wait for more.
      if (m[0] === '\r' && m.index === buf.length - 1) break;
      line(buf.slice(0, m.index));
      buf = buf.slice(m.index + m[0].length);
    }
  }
}

function renderMetrics(box, j) {
  const m = j.metrics;
  if (!m) {
    box.replaceChildren(el('p.muted', {}, 'No completed epoch yet.'));
    return;
  }
  const rows = Object.entries(m).filter(([k]) => k !== 'epoch')
    .map(([k, v]) => el('tr', {}, el('th', { scope: 'row' }, k), el('td.num', {}, fmt(v))));
  const extra = [];
  if (j.best_epoch) extra.push(el('p', {}, `Best epoch: ${j.best_epoch}`));
  if (j.test_metrics) {
    extra.push(el('h3', {}, 'Test data'), el('table.kv', {}, el('tbody', {},
      Object.entries(j.test_metrics).map(([k, v]) => el('tr', {}, el('th', { scope: 'row' }, k), el('td.num', {}, fmt(v)))))));
  }
  box.replaceChildren(
    el('table.kv', {}, el('caption', {}, `${FINAL.has(j.status) ? 'Final' : 'Latest'} epoch (${m.epoch})`), el('tbody', {}, rows)),
    ...extra,
    el('p.small.muted', {}, `Started ${fmtTime(j.started_at)}, finished ${fmtTime(j.finished_at)}`));
}

// The learning-curve chart of a job. Primary: the server-rendered
// GET {base}/metrics.svg, fetched with the token and shown as an <img>. Only if
// that route answers 404 (a fitd without it) are the curves drawn here from
// GET {base}/metrics.
function makeChart(box, base) {
  let url = null;
  let serverSvg = true;
  let busy = false;
  let again = false;

  async function fromServer() {
    let resp;
    try {
      resp = await api(`${base}/metrics.svg`);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        serverSvg = false;
        return fromRecords();
      }
      throw err;
    }
    const next = URL.createObjectURL(await resp.blob());
    const img = el('img', { src: next, alt: 'Training and validation loss per epoch', id: 'chart-img' });
    await img.decode().catch(() => {});
    box.replaceChildren(img);
    if (url) URL.revokeObjectURL(url);
    url = next;
  }

  async function fromRecords() {
    const records = await apiJson(`${base}/metrics`);
    box.replaceChildren(drawCurves(records));
  }

  async function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    try {
      do {
        again = false;
        await (serverSvg ? fromServer() : fromRecords());
      } while (again);
    } catch (err) {
      box.replaceChildren(errorBox(err, 'Learning curves'));
    }
    busy = false;
  }

  return {
    refresh,
    dispose() { if (url) URL.revokeObjectURL(url); url = null; },
  };
}

// Fallback chart: loss and val_loss per epoch as an inline SVG.
function drawCurves(records) {
  const W = 640, H = 300, L = 56, R = 16, T = 16, B = 40;
  const series = [
    { key: 'loss', label: 'training loss', cls: 'curve-train' },
    { key: 'val_loss', label: 'validation loss', cls: 'curve-val' },
  ].filter((s) => records.some((r) => typeof r[s.key] === 'number'));
  const svg = svgEl('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', class: 'curves', 'aria-labelledby': 'curves-title' },
    svgEl('title', { id: 'curves-title' }, 'Training and validation loss per epoch'));
  if (!records.length || !series.length) return svg;
  const xs = records.map((r) => r.epoch);
  const ys = series.flatMap((s) => records.map((r) => r[s.key]).filter((v) => typeof v === 'number' && Number.isFinite(v)));
  const x0 = Math.min(...xs), x1 = Math.max(...xs, x0 + 1);
  let y0 = Math.min(...ys), y1 = Math.max(...ys);
  if (y1 - y0 < 1e-12) { y0 -= 0.5; y1 += 0.5; }
  const pad = (y1 - y0) * 0.05;
  y0 = Math.max(0, y0 - pad); y1 += pad;
  const px = (x) => L + (x - x0) / (x1 - x0) * (W - L - R);
  const py = (y) => T + (1 - (y - y0) / (y1 - y0)) * (H - T - B);
  const axes = svgEl('g', { class: 'axes' },
    svgEl('line', { x1: L, y1: H - B, x2: W - R, y2: H - B }),
    svgEl('line', { x1: L, y1: T, x2: L, y2: H - B }));
  for (let i = 0; i <= 4; i++) {
    const v = y0 + (y1 - y0) * i / 4;
    axes.append(svgEl('line', { class: 'grid', x1: L, y1: py(v), x2: W - R, y2: py(v) }),
      svgEl('text', { x: L - 6, y: py(v) + 4, 'text-anchor': 'end' }, fmt(v)));
  }
  const step = Math.max(1, Math.ceil((x1 - x0) / 10));
  for (let e = x0; e <= x1; e += step) {
    axes.append(svgEl('text', { x: px(e), y: H - B + 16, 'text-anchor': 'middle' }, e));
  }
  axes.append(svgEl('text', { x: (L + W - R) / 2, y: H - 4, 'text-anchor': 'middle' }, 'epoch'));
  svg.append(axes);
  series.forEach((s, i) => {
    const pts = records.filter((r) => typeof r[s.key] === 'number').map((r) => `${px(r.epoch).toFixed(1)},${py(r[s.key]).toFixed(1)}`);
    svg.append(svgEl('polyline', { class: s.cls, points: pts.join(' '), fill: 'none' }));
    const ly = T + 8 + i * 18;
    svg.append(svgEl('line', { class: s.cls, x1: W - R - 150, y1: ly, x2: W - R - 126, y2: ly }),
      svgEl('text', { class: 'legend', x: W - R - 120, y: ly + 4 }, s.label));
  });
  return svg;
}

// #/new
function viewNew(root) {
  const errSlot = el('div');
  const select = el('select', { id: 'ds-select', name: 'train', required: true });
  const area = el('textarea', { id: 'spec-text', name: 'spec', rows: 22, spellcheck: 'false', required: true });
  area.value = JSON.stringify(EXAMPLE_SPEC, null, 2);
  const submit = el('button', { type: 'submit', id: 'submit-job' }, 'Submit job');
  const form = el('form.stack', { id: 'job-form', novalidate: true },
    el('div.field', {}, el('label', { for: 'ds-select' }, 'Training dataset'), select,
      el('p.hint', {}, 'Written into the spec as ', el('code', {}, 'data.train'), ' when you submit. ',
        el('a', { href: '#/datasets' }, 'Upload a dataset'), '.')),
    el('div.field', {}, el('label', { for: 'spec-text' }, 'Job spec (JSON)'), area,
      el('p.hint', {}, 'The classic Keras example for the digits data set; edit freely. ',
        'Every field is described in the API document (', el('code', {}, 'GET /v1/openapi.yaml'), ').')),
    errSlot,
    el('div.buttons', {}, submit));
  root.append(el('h1', {}, 'New job'), form);

  apiJson('/v1/datasets?limit=1000').then((page) => {
    const items = page.items || [];
    select.replaceChildren(...items.map((d) =>
      el('option', { value: d.id }, `${d.name} — ${d.n_samples} × ${d.x_width} (${d.id})`)));
    if (!items.length) {
      select.append(el('option', { value: '' }, 'No datasets: upload one first'));
    }
  }).catch((err) => errSlot.replaceChildren(errorBox(err, 'Loading datasets')));

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    errSlot.replaceChildren();
    let spec;
    try {
      spec = JSON.parse(area.value);
    } catch (err) {
      errSlot.replaceChildren(errorBox(err, 'The spec is not valid JSON'));
      return;
    }
    if (spec && typeof spec === 'object' && select.value) {
      spec.data = { ...(spec.data || {}), train: select.value };
    }
    submit.disabled = true;
    try {
      const job = await apiJson('/v1/jobs', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(spec),
      });
      location.hash = `#/jobs/${encodeURIComponent(job.id)}`;
    } catch (err) {
      errSlot.replaceChildren(errorBox(err, 'Submitting the job'));
    }
    submit.disabled = false;
  });
}

// #/datasets
function viewDatasets(root) {
  const errSlot = el('div');
  const tbody = el('tbody');
  const table = el('table.list', { id: 'datasets-table' },
    el('caption.visually-hidden', {}, 'Datasets'),
    el('thead', {}, el('tr', {},
      ['Name', 'Id', 'Samples', 'Features', 'Target', 'Created'].map((h) => el('th', { scope: 'col' }, h)))),
    tbody);

  const file = el('input', { type: 'file', id: 'up-file', accept: '.csv,text/csv', required: true });
  const name = el('input', { type: 'text', id: 'up-name', required: true });
  const label = el('input', { type: 'text', id: 'up-label', value: 'label', required: true });
  const upErr = el('div');
  const upBtn = el('button', { type: 'submit', id: 'up-submit' }, 'Upload');
  const form = el('form.stack', { id: 'upload-form', novalidate: true },
    el('div.field', {}, el('label', { for: 'up-file' }, 'CSV file (header row)'), file),
    el('div.field', {}, el('label', { for: 'up-name' }, 'Name'), name),
    el('div.field', {}, el('label', { for: 'up-label' }, 'Label column (name or index)'), label),
    upErr, el('div.buttons', {}, upBtn));
  file.addEventListener('change', () => {
    if (file.files[0] && !name.value) name.value = file.files[0].name.replace(/\.csv$/i, '');
  });

  root.append(el('h1', {}, 'Datasets'), errSlot, table,
    el('section', { 'aria-labelledby': 'up-h' }, el('h2', { id: 'up-h' }, 'Upload a CSV dataset'), form));

  async function load() {
    try {
      const page = await apiJson('/v1/datasets?limit=1000');
      const items = page.items || [];
      tbody.replaceChildren(...items.map((d) => {
        const t = d.target || {};
        return el('tr', { 'data-dataset': d.id },
          el('td', {}, d.name), el('td.mono.small', {}, d.id), el('td.num', {}, d.n_samples),
          el('td.num', {}, d.x_width),
          el('td', {}, t.kind === 'classes' ? `${t.n_classes} classes` : `regression (${t.width})`),
          el('td', {}, fmtTime(d.created_at)));
      }));
      if (!items.length) tbody.append(el('tr', {}, el('td.muted', { colspan: 6 }, 'No datasets yet.')));
      errSlot.replaceChildren();
    } catch (err) {
      errSlot.replaceChildren(errorBox(err, 'Loading datasets'));
    }
  }

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    upErr.replaceChildren();
    const f = file.files[0];
    if (!f || !name.value.trim() || !label.value.trim()) {
      upErr.replaceChildren(el('div.error', { role: 'alert' }, el('p', {}, 'Choose a file and fill in the name and the label column.')));
      return;
    }
    upBtn.disabled = true;
    try {
      const q = new URLSearchParams({ name: name.value.trim(), label: label.value.trim() });
      const d = await apiJson(`/v1/datasets?${q}`, { method: 'POST', headers: { 'Content-Type': 'text/csv' }, body: f });
      toast(`Uploaded ${d.name} (${d.n_samples} samples).`);
      form.reset();
      label.value = 'label';
      load();
    } catch (err) {
      upErr.replaceChildren(errorBox(err, 'Upload'));
    }
    upBtn.disabled = false;
  });
  load();
}

// #/sweeps/{id}
function viewSweep(root, id) {
  const base = `/v1/sweeps/${encodeURIComponent(id)}`;
  const errSlot = el('div');
  const title = el('h1', {}, id);
  const status = el('span');
  const counts = el('p.small', {});
  const missing = el('div');
  const chart = el('div.chart', { id: 'sweep-chart' });
  const tbody = el('tbody');
  const table = el('table.list', { id: 'trials-table' },
    el('caption.visually-hidden', {}, 'Trials, best first'),
    el('thead', {}, el('tr', {},
      ['#', 'Job', 'Parameters', 'Status', 'Objective', 'Loss', 'Val loss', 'Gap'].map((h) => el('th', { scope: 'col' }, h)))),
    tbody);
  const sections = [
    el('section', { 'aria-labelledby': 'cmp-h' }, el('h2', { id: 'cmp-h' }, 'Comparison'), chart),
    el('section', { 'aria-labelledby': 'trials-h' }, el('h2', { id: 'trials-h' }, 'Trials'), table)];
  root.append(el('p.crumbs', {}, el('a', { href: '#/' }, 'Jobs'), ' / sweep'),
    el('div.title-row', {}, title, status), counts, missing, errSlot, ...sections);

  let url = null;
  let finished = 0;
  onLeave(() => { if (url) URL.revokeObjectURL(url); });

  async function loadChart() {
    try {
      const resp = await api(`${base}/chart.svg`);
      const next = URL.createObjectURL(await resp.blob());
      chart.replaceChildren(el('img', { src: next, alt: 'Validation loss of each trial' }));
      if (url) URL.revokeObjectURL(url);
      url = next;
    } catch (err) {
      chart.replaceChildren(el('p.muted', {}, err instanceof ApiError && err.status === 404
        ? 'This fitd draws no sweep charts.' : `No chart: ${err.message}`));
    }
  }

  poll(async () => {
    let s;
    try {
      s = await apiJson(base);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        missing.replaceChildren(el('div.error', { role: 'alert' },
          el('p', {}, 'No such sweep, or this fitd has no sweeps.')));
        for (const sec of sections) sec.hidden = true;
        return false;
      }
      throw err;
    }
    title.textContent = s.name || s.id || id;
    status.replaceChildren(badge(s.status));
    const facts = [];
    if (s.objective && s.objective.metric) facts.push(`objective: ${s.objective.metric} (${s.objective.mode || 'min'})`);
    if (s.counts && typeof s.counts === 'object') {
      facts.push(...Object.entries(s.counts).filter(([, v]) => v).map(([k, v]) => `${k}: ${v}`));
    }
    counts.textContent = facts.join(' · ');
    const trials = s.trials || [];
    const bestJob = s.best && (s.best.job_id || s.best);
    tbody.replaceChildren(...trials.map((t, i) => el(`tr${t.job_id === bestJob ? '.best' : ''}`, { 'data-job': t.job_id },
      el('td.num', {}, i + 1),
      el('td', {}, el('a.mono.small', { href: `#/jobs/${encodeURIComponent(t.job_id)}` }, t.job_id),
        t.job_id === bestJob ? el('span.badge.best-badge', {}, 'best') : null),
      el('td.small', {}, Object.entries(t.params || {}).map(([k, v]) => el('div', {}, el('code', {}, k), ` = ${JSON.stringify(v)}`))),
      el('td', {}, badge(t.status)),
      el('td.num', {}, fmt(t.objective)), el('td.num', {}, fmt(t.loss)),
      el('td.num', {}, fmt(t.val_loss)), el('td.num', {}, fmt(t.gap)))));
    const done = trials.filter((t) => FINAL.has(t.status)).length;
    if (done !== finished || !url) {
      finished = done;
      await loadChart();
    }
    return !FINAL.has(s.status);
  }, errSlot, 'Loading the sweep');
}

// ------------------------------------------------------------------ router

function route() {
  for (const fn of teardown) {
    try { fn(); } catch (e) { /* keep tearing down */ }
  }
  teardown = [];
  const root = document.getElementById('view');
  root.replaceChildren();
  const hash = location.hash.replace(/^#/, '') || '/';
  const parts = hash.split('/').filter(Boolean).map(decodeURIComponent);
  let nav = 'jobs';
  if (parts[0] === 'jobs' && parts[1]) {
    viewJob(root, parts[1]);
  } else if (parts[0] === 'sweeps' && parts[1]) {
    viewSweep(root, parts[1]);
  } else if (parts[0] === 'new') {
    nav = 'new';
    viewNew(root);
  } else if (parts[0] === 'datasets') {
    nav = 'datasets';
    viewDatasets(root);
  } else {
    viewJobs(root);
  }
  for (const a of document.querySelectorAll('[data-nav]')) {
    if (a.dataset.nav === nav) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

document.addEventListener('DOMContentLoaded', () => {
  setupAuth();
  // The skip link focuses the content without touching the hash (the router's).
  document.querySelector('.skip').addEventListener('click', (ev) => {
    ev.preventDefault();
    document.getElementById('view').focus();
  });
  window.addEventListener('hashchange', route);
  route();
});
