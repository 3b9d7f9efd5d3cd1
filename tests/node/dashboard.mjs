// dashboard.mjs — drives Debian's Chromium (playwright-core) through the router's
// dashboard for tests/integration/test_dashboard.py.
//
//   node tests/node/dashboard.mjs URL TOKEN SCREENSHOT_PATH
//
// URL is the dashboard (http://127.0.0.1:PORT/dashboard). The script opens
// URL#token=TOKEN&refresh=500, waits until experiments and their variants are shown,
// prints `READY {json}` (what the page shows) and reads one line of JSON from stdin:
// {"expect": {EXP: {VARIANT: {"requests": N, "outcomes": M}}}, "timeout_ms": T} — the
// least each count must reach (the test sends more traffic before answering). It then
// waits until the page shows them (and a higher total than at READY), takes a
// screenshot, checks that a wrong token and no token both bring up the token form and
// that the form then works, and prints `RESULT {json}` with what it saw. Every request
// of the browser context is recorded (all must go to 127.0.0.1), and every console
// error and page error. With "down_phase": true in that JSON, it then prints `STOP {}`,
// waits for a second line (sent once the router is stopped) and checks that the page
// keeps the last data and shows the error. Exit status 0 when the run completed (the test judges the
// facts), 1 on an error of its own (RESULT then holds "fatal").
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';

const CHROMIUM = process.env.SY_CHROMIUM || '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run'];

const [url, token, shot] = process.argv.slice(2);
if (!url || !token || !shot) {
  console.error('usage: node dashboard.mjs URL TOKEN SCREENSHOT_PATH');
  process.exit(2);
}

const result = { requests: [], outside: [], console_errors: [], problems: [] };
const print = (tag, obj) => process.stdout.write(tag + ' ' + JSON.stringify(obj) + '\n');

const lines = readline.createInterface({ input: process.stdin });
const lineQueue = [];
let lineWaiter = null;
lines.on('line', (l) => { if (lineWaiter) { const w = lineWaiter; lineWaiter = null; w(l); } else lineQueue.push(l); });
lines.on('close', () => { if (lineWaiter) { const w = lineWaiter; lineWaiter = null; w(null); } });
function nextLine(ms) {
  if (lineQueue.length) return Promise.resolve(lineQueue.shift());
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => { lineWaiter = null; reject(new Error('no line on stdin within ' + ms + ' ms')); }, ms);
    lineWaiter = (l) => { clearTimeout(t); resolve(l); };
  });
}

// What the page shows: per experiment, per variant, the numbers of its table row.
function snapshot(page) {
  return page.evaluate(() => {
    const out = { state: document.body.dataset.state, updates: Number(document.body.dataset.updates), experiments: {} };
    for (const sec of document.querySelectorAll('#exps section[data-exp]')) {
      const e = { variants: {}, charts: {}, audit_rows: 0, guard_cells: {} };
      for (const tr of sec.querySelectorAll('table[data-table=variants] tbody tr[data-variant]')) {
        const v = {};
        for (const td of tr.querySelectorAll('td[data-field]')) {
          const raw = td.getAttribute('data-value');
          v[td.getAttribute('data-field')] = raw === null ? td.textContent.trim() : Number(raw);
        }
        e.variants[tr.getAttribute('data-variant')] = v;
      }
      e.status = sec.querySelector('[data-field=status]')?.textContent ?? null;
      e.charts.share_lines = sec.querySelectorAll('svg[data-chart=share] path[data-variant]').length;
      e.charts.outcome_marks = sec.querySelectorAll('svg[data-chart=outcome] g[data-variant] circle').length;
      e.charts.pbest_bars = sec.querySelectorAll('svg[data-chart=pbest] rect[data-variant]').length;
      e.audit_rows = sec.querySelectorAll('table[data-audit] tbody tr').length;
      e.audit_first = [...(sec.querySelector('table[data-audit] tbody tr')?.children ?? [])].map((td) => td.textContent);
      for (const td of sec.querySelectorAll('td[data-guard]')) {
        const k = td.closest('tr').getAttribute('data-variant') + '.' + td.getAttribute('data-guard');
        e.guard_cells[k] = td.getAttribute('data-state');
      }
      out.experiments[sec.getAttribute('data-exp')] = e;
    }
    out.redis = document.getElementById('redis').textContent;
    out.updated = document.getElementById('updated').textContent;
    out.error_banner = document.getElementById('error').hidden ? null : document.getElementById('error').textContent;
    return out;
  });
}

function totalRequests(snap) {
  let n = 0;
  for (const e of Object.values(snap.experiments))
    for (const v of Object.values(e.variants)) n += Number.isFinite(v.requests) ? v.requests : 0;
  return n;
}

function meets(snap, expect) {
  for (const [eid, vars] of Object.entries(expect || {})) {
    const e = snap.experiments[eid];
    if (!e) return false;
    for (const [vid, want] of Object.entries(vars)) {
      const got = e.variants[vid];
      if (!got) return false;
      for (const [k, n] of Object.entries(want)) if (!(got[k] >= n)) return false;
    }
  }
  return true;
}

async function waitFor(fn, ms, step = 100) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) return null;
    await new Promise((r) => setTimeout(r, step));
  }
}

async function loginState(page) {
  return page.evaluate(() => ({
    state: document.body.dataset.state,
    login_visible: !document.getElementById('login').hidden && document.getElementById('login').offsetParent !== null,
    message: document.getElementById('login-msg').textContent,
    experiments_visible: [...document.querySelectorAll('#exps section[data-exp]')].filter((s) => s.offsetParent !== null).length,
  }));
}

let context = null;
const userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sy-dash-chromium-'));
try {
  context = await chromium.launchPersistentContext(userDir, {
    executablePath: CHROMIUM, headless: true, args: ARGS, viewport: { width: 1400, height: 1000 },
    timeout: 30000,
  });
  context.on('request', (r) => {
    const u = r.url();
    result.requests.push(r.method() + ' ' + u);
    let host = null;
    try { host = new URL(u).hostname; } catch { /* unparsable */ }
    if (host !== '127.0.0.1') result.outside.push(u);
  });
  const watch = (page, sink) => {
    page.on('console', (m) => { if (m.type() === 'error') sink.push('console: ' + m.text()); });
    page.on('pageerror', (e) => sink.push('pageerror: ' + (e && e.stack || e)));
  };

  // 1. The right token: the experiments appear, the token leaves the address bar.
  const page = context.pages()[0] || await context.newPage();
  watch(page, result.console_errors);
  const t0 = Date.now();
  const resp = await page.goto(url + '#token=' + encodeURIComponent(token) + '&refresh=500', { waitUntil: 'load' });
  result.dashboard_status = resp ? resp.status() : null;
  const first = await waitFor(async () => {
    const s = await snapshot(page);
    const ids = Object.keys(s.experiments);
    return ids.length && ids.every((id) => Object.keys(s.experiments[id].variants).length >= 2) ? s : null;
  }, 15000);
  if (!first) {
    result.problems.push('no experiment with variants shown within 15 s: ' + JSON.stringify(await snapshot(page)));
    throw new Error('the dashboard never showed the experiments');
  }
  result.first_shown_ms = Date.now() - t0;
  result.url_after_load = page.url();
  result.token_in_url = page.url().includes(token);
  result.token_in_session = await page.evaluate((t) => sessionStorage.getItem('switchyard.admin.token') === t, token);
  result.login_visible_with_data = (await loginState(page)).login_visible;
  print('READY', first);

  // 2. The test sends more traffic, then tells what the page must reach.
  const line = await nextLine(120000);
  if (line === null) throw new Error('stdin closed before the go-ahead');
  const go = JSON.parse(line || '{}');
  const t1 = Date.now();
  const before = totalRequests(first);
  const after = await waitFor(async () => {
    const s = await snapshot(page);
    return totalRequests(s) > before && meets(s, go.expect) ? s : null;
  }, go.timeout_ms || 10000);
  result.ready = first;
  result.after = after || await snapshot(page);
  result.updated_in_time = after !== null;
  result.update_wait_ms = Date.now() - t1;

  await page.waitForTimeout(2500); // a few more samples in the share chart
  fs.mkdirSync(path.dirname(path.resolve(shot)), { recursive: true });
  await page.screenshot({ path: shot, fullPage: true });
  result.screenshot = path.resolve(shot);
  result.screenshot_bytes = fs.statSync(shot).size;

  // 3. A wrong token: the page asks for one (401), shows no data; the form then works.
  const bad = await context.newPage();
  const badErrors = [];
  watch(bad, badErrors);
  await bad.goto(url + '#token=wrong-token-' + Date.now() + '&refresh=500', { waitUntil: 'load' });
  const badSeen = await waitFor(async () => { const s = await loginState(bad); return s.login_visible ? s : null; }, 10000);
  result.wrong_token = badSeen || await loginState(bad);
  result.wrong_token.login_shown = badSeen !== null;
  await bad.fill('#token-input', token);
  await bad.click('#login button[type=submit]');
  const relog = await waitFor(async () => {
    const s = await snapshot(bad);
    return Object.keys(s.experiments).length && !(await loginState(bad)).login_visible ? s : null;
  }, 10000);
  result.relogin_shows_data = relog !== null;
  // Chromium logs each refused fetch ("... 401 (Unauthorized)"); nothing else is allowed.
  result.wrong_token.other_console_errors = badErrors.filter((m) => !/\b401\b/.test(m));
  await bad.close();

  // 4. No token at all: the form, and no API call made.
  const none = await context.newPage();
  const noneErrors = [];
  watch(none, noneErrors);
  const apiCalls = [];
  none.on('request', (r) => { if (new URL(r.url()).pathname.startsWith('/api/')) apiCalls.push(r.url()); });
  await none.goto(url, { waitUntil: 'load' });
  const noneSeen = await waitFor(async () => { const s = await loginState(none); return s.login_visible ? s : null; }, 5000);
  await none.waitForTimeout(700);
  result.no_token = Object.assign(noneSeen || await loginState(none), { login_shown: noneSeen !== null, api_calls: apiCalls.length, console_errors: noneErrors });
  await none.close();

  result.console_errors_main = result.console_errors.slice();

  // 5. Optionally, the router goes away: the page keeps its data and shows the error.
  if (go.down_phase) {
    print('STOP', {});
    const l2 = await nextLine(60000);
    if (l2 === null) throw new Error('stdin closed before the router was stopped');
    const down = await waitFor(async () => {
      const s = await snapshot(page);
      return s.state === 'error' && s.error_banner ? s : null;
    }, 8000);
    const s = down || await snapshot(page);
    const downShot = shot.replace(/(\.png)?$/, '-down.png');
    await page.screenshot({ path: downShot });
    const first = Object.keys(s.experiments)[0];
    result.down = {
      error_shown: down !== null, error_banner: s.error_banner, state: s.state,
      experiments: Object.keys(s.experiments), variants: first ? s.experiments[first].variants : null,
      screenshot: path.resolve(downShot),
      // Chromium logs each failed fetch (ERR_CONNECTION_REFUSED); nothing else is allowed.
      other_console_errors: result.console_errors.slice(result.console_errors_main.length)
        .filter((m) => !/ERR_CONNECTION_REFUSED|ERR_CONNECTION_RESET|ERR_EMPTY_RESPONSE/.test(m)),
    };
  }
  print('RESULT', result);
  await context.close();
  process.exitCode = 0;
} catch (e) {
  result.fatal = String(e && e.stack || e);
  print('RESULT', result);
  if (context) await context.close().catch(() => {});
  process.exitCode = 1;
} finally {
  lines.close();
  fs.rmSync(userDir, { recursive: true, force: true });
}
process.exit(process.exitCode);
