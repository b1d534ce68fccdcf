// The fitd dashboard end to end in headless Chromium (driven by tests/e2e/run.sh).
//
//   node dashboard.mjs --url http://127.0.0.1:PORT --csv tests/fixtures/digits.csv \
//        --artifacts DIR --name PASS [--token TOKEN]
//
// Through the page only: (with --token: answer the token prompt first) upload the
// CSV, submit the prefilled digits job, watch it reach succeeded on its page, see
// the learning-curve chart, download the weights and the metrics CSV, cancel a
// second job, check the sweep page's message for a missing sweep. Any page error,
// CSP violation or failed check fails the run (exit 1) with the reason and a
// screenshot; screenshots of each step go to DIR as PASS-*.png.
import { chromium } from 'playwright-core';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith('--') || argv[i + 1] === undefined) throw new Error(`bad argument ${argv[i]}`);
    out[argv[i].slice(2)] = argv[i + 1];
  }
  for (const k of ['url', 'csv', 'artifacts', 'name']) if (!out[k]) throw new Error(`--${k} is required`);
  return out;
}

const args = parseArgs(process.argv.slice(2));
const STEP_MS = 20000;  // one UI step
const TRAIN_MS = 90000; // one training job on a slow, shared machine
let step = 'start';
const problems = []; // page errors and CSP violations, collected as they happen

function check(cond, message) {
  if (!cond) throw new Error(message);
}

async function shot(page, what) {
  await page.screenshot({ path: join(args.artifacts, `${args.name}-${what}.png`), fullPage: true });
}

async function main() {
  mkdirSync(args.artifacts, { recursive: true });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    // Chromium's sandbox cannot start as root (CI containers).
    args: process.getuid && process.getuid() === 0 ? ['--no-sandbox'] : [],
  });
  let page = null;
  try {
    const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1200, height: 900 } });
    page = await context.newPage();
    page.setDefaultTimeout(STEP_MS);
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    page.on('console', (msg) => {
      const text = msg.text();
      if (msg.type() === 'error' && /Content Security Policy|Refused to/i.test(text)) problems.push(`CSP: ${text}`);
    });
    await run(page);
    check(problems.length === 0, `the page reported: ${problems.join('; ')}`);
  } catch (err) {
    if (page) await shot(page, `FAILED-${step.replace(/[^a-z0-9]+/gi, '-')}`).catch(() => {});
    throw err;
  } finally {
    await browser.close();
  }
}

async function run(page) {
  const base = args.url.replace(/\/$/, '');

  step = 'open the page';
  const resp = await page.goto(`${base}/`);
  check(resp && resp.status() === 200, `GET / answered ${resp && resp.status()}`);
  const csp = resp.headers()['content-security-policy'] || '';
  check(csp.includes("script-src 'self'") && !csp.includes('unsafe-inline'), `CSP header: '${csp}'`);

  if (args.token) {
    step = 'the token prompt';
    // The job list's first call answers 401: the prompt must appear by itself.
    const dialog = page.locator('#token-dialog');
    await dialog.waitFor({ state: 'visible' });
    await shot(page, 'token-prompt');
    await page.fill('#token-input', args.token);
    await page.click('#token-save');
    await dialog.waitFor({ state: 'hidden' });
    await page.locator('#auth-label', { hasText: 'Token set' }).waitFor();
    const stored = await page.evaluate(() => sessionStorage.getItem('fitd.token'));
    check(stored === args.token, 'the token is not in sessionStorage');
  }
  step = 'the job list';
  await page.locator('#jobs-table[data-loaded]').waitFor({ state: 'attached' });

  step = 'upload the dataset';
  await page.click('a[data-nav="datasets"]');
  await page.setInputFiles('#up-file', args.csv);
  await page.fill('#up-name', 'digits');
  await page.fill('#up-label', 'label');
  await page.click('#up-submit');
  const nRows = readFileSync(args.csv, 'utf8').trim().split('\n').length - 1;
  const dsRow = page.locator('#datasets-table tr[data-dataset]', { hasText: 'digits' });
  await dsRow.waitFor();
  const dsText = await dsRow.innerText();
  check(dsText.includes(String(nRows)), `dataset row '${dsText}' does not show ${nRows} samples`);
  const dsId = await dsRow.getAttribute('data-dataset');
  await shot(page, 'datasets');

  step = 'submit a job from the form';
  const spec = await openForm(page, dsId);
  check(spec.model && spec.model.input_shape[0] === 64, 'the prefilled spec is not the digits example');
  spec.name = `e2e-${args.name}`;
  spec.fit.epochs = 12;
  const jobId = await submit(page, spec, 'new-job');

  step = `watch job ${jobId} succeed`;
  await page.locator('#job-status .badge').waitFor();
  await shot(page, 'job-running');
  await page.locator('#job-status [data-status="succeeded"]').waitFor({ timeout: TRAIN_MS });
  const progress = await page.locator('#progress-text').innerText();
  check(progress.includes('epoch 12/12'), `progress text '${progress}' after success`);

  step = 'the learning-curve chart';
  await checkChart(page, base, 12);
  step = 'the final metrics';
  const metrics = await page.locator('#final-metrics').innerText();
  check(/val_loss/.test(metrics) && /accuracy/.test(metrics), `final metrics: '${metrics}'`);
  check((await page.locator('#job-spec').innerText()).includes(dsId), 'the spec shown does not name the dataset');
  await shot(page, 'job-succeeded');

  step = 'download the weights';
  const [weights] = await Promise.all([page.waitForEvent('download'), page.click('#downloads a[data-download$=".safetensors"]')]);
  const wPath = join(args.artifacts, `${args.name}-weights.safetensors`);
  await weights.saveAs(wPath);
  const wBytes = readFileSync(wPath);
  check(wBytes.length > 8, 'the weights download is empty');
  const headerLen = Number(wBytes.readBigUInt64LE(0));
  const header = JSON.parse(wBytes.subarray(8, 8 + headerLen).toString('utf8'));
  const kernels = Object.keys(header).filter((k) => k.endsWith('/kernel'));
  check(kernels.length === 2, `safetensors tensors: ${Object.keys(header).join(', ')}`);

  step = 'download the metrics CSV';
  const [csv] = await Promise.all([page.waitForEvent('download'), page.click('#downloads a[data-download$=".csv"]')]);
  const cPath = join(args.artifacts, `${args.name}-metrics.csv`);
  await csv.saveAs(cPath);
  const lines = readFileSync(cPath, 'utf8').trim().split('\n');
  check(lines[0].startsWith('epoch,loss') && lines.length === 13, `metrics CSV: ${lines.length} lines, header '${lines[0]}'`);

  step = 'the job list shows it';
  await page.click('a[data-nav="jobs"]');
  const row = page.locator(`#jobs-table tr[data-job="${jobId}"]`);
  await row.locator('[data-status="succeeded"]').waitFor();
  await shot(page, 'jobs');

  step = 'cancel a job from its page';
  await openForm(page, dsId);
  spec.name = `e2e-${args.name}-cancel`;
  spec.fit.epochs = 5000;
  const longId = await submit(page, spec);
  await page.locator('#cancel-job').waitFor({ state: 'visible' });
  // Live updates: over SSE where the server has GET /v1/jobs/{id}/events.
  const eventsStatus = await page.evaluate(async (id) => {
    const t = sessionStorage.getItem('fitd.token');
    const ctl = new AbortController();
    const r = await fetch(`/v1/jobs/${encodeURIComponent(id)}/events`, { headers: t ? { Authorization: `Bearer ${t}` } : {}, signal: ctl.signal });
    ctl.abort();
    return r.status;
  }, longId);
  await page.locator('#live-mode[data-mode]').waitFor({ state: 'attached' });
  const mode = await page.getAttribute('#live-mode', 'data-mode');
  check(mode === (eventsStatus === 200 ? 'sse' : 'poll'), `live updates by '${mode}' while GET .../events answers ${eventsStatus}`);
  await page.click('#cancel-job');
  await page.locator('#job-status [data-status="cancelled"]').waitFor({ timeout: TRAIN_MS });
  check(await page.locator('#cancel-job').isHidden(), 'the cancel button is still shown');

  if (args.fallbacks) {
    // A fitd without the events and metrics.svg routes (both answer 404): the
    // page must poll and draw the curves itself.
    step = 'fallbacks: polling and curves drawn in the page';
    const gone = /\/v1\/jobs\/[^/]+\/(events|metrics\.svg)$/;
    await page.route(gone, (r) => r.fulfill({
      status: 404,
      contentType: 'application/problem+json',
      body: JSON.stringify({ type: 'about:blank', title: 'Not Found', status: 404, detail: 'no resource at this path' }),
    }));
    await page.goto(`${base}/#/jobs/${encodeURIComponent(jobId)}`);
    await page.locator('#job-status [data-status="succeeded"]').waitFor();
    await checkChart(page, base, 12);
    check(await page.locator('#chart svg polyline').count() >= 2, 'no curves drawn in the page');
    // A running job (long enough not to end by itself): polled, curves grow.
    await openForm(page, dsId);
    spec.name = `e2e-${args.name}-fallback`;
    spec.fit.epochs = 5000;
    await submit(page, spec);
    await page.locator('#live-mode[data-mode="poll"]').waitFor({ state: 'attached' });
    await page.waitForFunction(() => {
      const pl = document.querySelector('#chart svg polyline');
      return pl && pl.getAttribute('points').trim().split(/\s+/).length >= 3;
    }, null, { timeout: TRAIN_MS });
    await shot(page, 'job-fallback');
    await page.click('#cancel-job');
    await page.locator('#job-status [data-status="cancelled"]').waitFor({ timeout: TRAIN_MS });
    await page.unroute(gone);
  }

  step = 'a sweep page';
  const sweep = await page.evaluate(async (base) => {
    const t = sessionStorage.getItem('fitd.token');
    const headers = { 'Content-Type': 'application/json' };
    if (t) headers.Authorization = `Bearer ${t}`;
    const body = { base, method: 'grid', parameters: { '/model/layers/1/rate': [0, 0.5] },
                   objective: { metric: 'val_loss', mode: 'min' } };
    const r = await fetch('/v1/sweeps', { method: 'POST', headers, body: JSON.stringify(body) });
    return { status: r.status, body: await r.text() };
  }, { ...spec, name: `e2e-${args.name}-sweep`, data: { train: dsId }, fit: { ...spec.fit, epochs: 4 } });
  if (sweep.status === 404) {
    console.log(`e2e ${args.name}: this fitd has no sweeps; sweep page not checked`);
  } else {
    check(sweep.status === 202, `POST /v1/sweeps: ${sweep.status} ${sweep.body}`);
    const sweepId = JSON.parse(sweep.body).id;
    await page.goto(`${base}/#/sweeps/${encodeURIComponent(sweepId)}`);
    const trials = page.locator('#trials-table tbody tr');
    await page.waitForFunction(() => {
      const rows = document.querySelectorAll('#trials-table tbody tr');
      return rows.length === 2 && [...rows].every((r) => r.querySelector('[data-status="succeeded"]'));
    }, null, { timeout: TRAIN_MS });
    check(await trials.count() === 2, 'the sweep page does not list 2 trials');
    check(await page.locator('#trials-table tr.best').count() === 1, 'no trial is marked best');
    // GET /v1/sweeps/{id}/chart.svg exists: the comparison chart is an image
    // that decoded (the "draws no sweep charts" fallback would be a <p>).
    await page.waitForFunction(() => {
      const img = document.querySelector('#sweep-chart img');
      return img && img.complete && img.naturalWidth > 0;
    }, null, { timeout: TRAIN_MS });
    check(await page.locator('#sweep-chart p').count() === 0, 'the sweep page shows no chart');
    await shot(page, 'sweep');
  }

  step = 'a missing sweep';
  await page.goto(`${base}/#/sweeps/sw_doesnotexist`);
  await page.locator('#view .error', { hasText: /sweep/i }).waitFor();
}

// The new-job form with dataset `dsId` chosen; returns the prefilled spec.
async function openForm(page, dsId) {
  await page.click('a[data-nav="new"]');
  await page.locator(`#ds-select option[value="${dsId}"]`).waitFor({ state: 'attached' });
  await page.selectOption('#ds-select', dsId);
  return JSON.parse(await page.inputValue('#spec-text'));
}

// Put `spec` in the form, submit, wait for the job's page; returns the job id.
async function submit(page, spec, screenshot) {
  await page.fill('#spec-text', JSON.stringify(spec, null, 2));
  if (screenshot) await shot(page, screenshot);
  await page.click('#submit-job');
  await page.waitForURL(/#\/jobs\/job_/);
  return decodeURIComponent(page.url().split('#/jobs/')[1]);
}

// The chart: the server's SVG as an <img> (primary), or curves drawn in the page
// (fallback when GET /v1/jobs/{id}/metrics.svg is 404). Either way it must show
// curves for `epochs` epochs.
async function checkChart(page, base, epochs) {
  const chart = page.locator('#chart');
  await chart.locator('img, svg').first().waitFor();
  if (await chart.locator('img').count()) {
    await page.waitForFunction(() => {
      const img = document.querySelector('#chart img');
      return img && img.complete && img.naturalWidth > 0;
    });
    // The picture is what the API serves: an SVG with curves in it.
    const svg = await page.evaluate(async () => {
      const t = sessionStorage.getItem('fitd.token');
      const id = decodeURIComponent(location.hash.split('/')[2]);
      const r = await fetch(`/v1/jobs/${encodeURIComponent(id)}/metrics.svg`, { headers: t ? { Authorization: `Bearer ${t}` } : {} });
      return { status: r.status, type: r.headers.get('Content-Type'), text: await r.text() };
    });
    check(svg.status === 200 && /image\/svg\+xml/.test(svg.type), `metrics.svg: ${svg.status} ${svg.type}`);
    check(/<svg[\s>]/.test(svg.text) && /<(polyline|path)[\s>]/.test(svg.text), 'metrics.svg has no curves');
    writeFileSync(join(args.artifacts, `${args.name}-metrics.svg`), svg.text);
  } else {
    const lines = chart.locator('svg polyline');
    await page.waitForFunction((n) => {
      const pl = document.querySelectorAll('#chart svg polyline');
      return pl.length >= 2 && [...pl].every((p) => p.getAttribute('points').trim().split(/\s+/).length === n);
    }, epochs);
    check((await lines.count()) >= 2, 'fewer than two curves');
  }
}

const timer = setTimeout(() => {
  console.error(`e2e ${args.name}: FAIL: timed out at step '${step}'`);
  process.exit(1);
}, 240000);
main().then(() => {
  clearTimeout(timer);
  console.log(`e2e ${args.name}: ok`);
}, (err) => {
  clearTimeout(timer);
  console.error(`e2e ${args.name}: FAIL at step '${step}': ${err.message}`);
  process.exit(1);
});
