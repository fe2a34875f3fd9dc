// End-to-end tests of the dashboard: a real `reportroot demo` (REPORTROOT_BIN) and Debian's
// Chromium driven by playwright-core. Every number the page shows is compared with the
// report's CSV fetched with a bearer token; axe-core checks each view; a screenshot of each
// view is written to e2e/screenshots/.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const BIN = process.env.REPORTROOT_BIN;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SHOTS = new URL('./screenshots/', import.meta.url).pathname;
const TENANT = 'c0ffee00-0000-4000-8000-000000000001';
const EMPTY_TENANT = 'e0e0e0e0-0000-4000-8000-000000000002';

let server;
let data;
let base;
let link;
let token;
let browser;
let context;
let page;

/** Starts `reportroot demo` and reads its sign-in link (the first line), URL and token. */
async function startDemo() {
  data = mkdtempSync(join(tmpdir(), 'reportroot-e2e-'));
  server = spawn(BIN, ['demo', '--listen', '127.0.0.1:0', '--data', join(data, 'd'), '--users', '300'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  server.stderr.on('data', (b) => {
    err += b;
  });
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`demo did not start in time:\n${out}\n${err}`)), 90_000);
    server.stdout.on('data', (b) => {
      out += b;
      if (out.includes('Press Ctrl-C')) {
        clearTimeout(timer);
        resolve();
      }
    });
    server.on('exit', (code) => reject(new Error(`demo exited (${code}):\n${out}\n${err}`)));
  });
  const lines = out.split('\n');
  assert.match(lines[0], /^Open the dashboard .*: (http:\/\/127\.0\.0\.1:\d+)\/signin#code=\S+$/, 'the sign-in link comes first');
  link = lines[0].split(': ').pop();
  base = link.slice(0, link.indexOf('/signin'));
  token = out.match(/export TOKEN='([^']+)'/)[1];
}

function cli(...args) {
  return execFileSync(BIN, args, { encoding: 'utf8' }).trim();
}

/** A report's CSV rows (header first), fetched with the bearer token and the 302 followed. */
async function csv(path) {
  const resp = await fetch(`${base}/v1.0/reports/${path}`, { headers: { Authorization: `Bearer ${token}` } });
  assert.equal(resp.status, 200, path);
  const text = (await resp.text()).replace(/^\uFEFF/, '');
  return text
    .split('\r\n')
    .filter((l) => l.length)
    .map(parseCsvLine);
}

function parseCsvLine(line) {
  const cells = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cur += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      cells.push(cur);
      cur = '';
    } else cur += c;
  }
  cells.push(cur);
  return cells;
}

/** A page table's body rows: the row header's text, then each cell's exact value. */
async function tableRows(testid) {
  return page.$$eval(`[data-testid="${testid}"] tbody tr`, (trs) =>
    trs.map((tr) => [...tr.children].map((c, i) => (i === 0 ? c.textContent : c.dataset.value ?? c.textContent))),
  );
}

/** The CSV columns named, per row, as strings. */
function columns(rows, names) {
  const header = rows[0];
  const idx = names.map((n) => {
    const i = header.indexOf(n);
    assert.ok(i >= 0, `column ${n} in ${header.join(',')}`);
    return i;
  });
  return rows.slice(1).map((r) => idx.map((i) => r[i]));
}

async function ready(state) {
  await page.waitForSelector(`body[data-ready="${state}"]`, { timeout: 15_000 });
}

async function axe(view) {
  await page.evaluate(AXE);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(
    bad.map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(' ')).join('; ')}`),
    [],
    `axe on ${view}`,
  );
}

async function shot(name) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

async function alertText() {
  await page.waitForSelector('#alert:not([hidden])', { timeout: 10_000 });
  return page.textContent('#alert');
}

describe('dashboard', () => {
  before(async () => {
    assert.ok(BIN, 'REPORTROOT_BIN names the reportroot binary');
    mkdirSync(SHOTS, { recursive: true });
    await startDemo();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
    page = await context.newPage();
    page.on('pageerror', (e) => console.error('page error:', e.message));
  });

  after(async () => {
    await browser?.close();
    server?.kill('SIGTERM');
    if (data) rmSync(data, { recursive: true, force: true });
  });

  test('the sign-in link opens the dashboard, drops the code from the URL, and shows the refresh date', async () => {
    const started = Date.now();
    await page.goto(link);
    await ready('activations-D7');
    const elapsed = Date.now() - started;
    assert.ok(elapsed < 3000, `first view in ${elapsed} ms`);
    assert.equal(new URL(page.url()).hash, '', 'the code is gone from the address bar');
    assert.equal(new URL(page.url()).pathname, '/');
    const cookies = await context.cookies();
    const session = cookies.find((c) => c.name === 'reportroot_session');
    assert.ok(session?.httpOnly && session.sameSite === 'Strict', 'an HttpOnly SameSite=Strict cookie');
    const rows = await csv('getOffice365ActivationsUserCounts');
    assert.equal(await page.textContent('[data-testid="refresh-date"]'), rows[1][0]);
    assert.equal(await page.isVisible('[data-testid="refresh-date"]'), true);
  });

  test('Office activations: every number equals the CSVs', async () => {
    const users = await csv('getOffice365ActivationsUserCounts');
    assert.deepEqual(
      await tableRows('table-activations-users'),
      columns(users, ['Product Type', 'Assigned', 'Activated', 'Shared Computer Activation']),
    );
    const counts = await csv('getOffice365ActivationCounts');
    assert.deepEqual(
      await tableRows('table-activations-platforms'),
      columns(counts, ['Product Type', 'Windows', 'Mac', 'Android', 'iOS', 'Windows 10 Mobile']),
    );
    assert.ok(users.length > 2 && counts.length > 2, 'the demo tenant has activations');
    await axe('activations');
    await shot('activations');
  });

  test('a chart is keyboard usable: arrow keys read its values', async () => {
    await page.focus('#chart-activations-users canvas');
    await page.keyboard.press('ArrowRight');
    const said = await page.getAttribute('#chart-activations-users canvas', 'aria-description');
    const first = (await tableRows('table-activations-users'))[0];
    assert.equal(said, `${first[0]}, Assigned: ${Number(first[1]).toLocaleString('en-US')}`);
    // The legend's buttons hide and show a series.
    const legend = page.locator('#chart-activations-users .legend button').first();
    await legend.press('Enter');
    assert.equal(await legend.getAttribute('aria-pressed'), 'false');
    await legend.press('Enter');
    assert.equal(await legend.getAttribute('aria-pressed'), 'true');
  });

  test('a CSV downloads through the 302 and equals the report', async () => {
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.click('[data-download="getOffice365ActivationCounts"]'),
    ]);
    const file = readFileSync(await download.path());
    const resp = await fetch(`${base}/v1.0/reports/getOffice365ActivationCounts`, {
      headers: { Authorization: `Bearer ${token}` },
    });
    assert.deepEqual(file, Buffer.from(await resp.arrayBuffer()));
    assert.equal(download.suggestedFilename(), 'Office365ActivationCounts.csv');
  });

  test('active users: every period and every number equals the CSVs', async () => {
    await page.click('[data-view="active"]');
    await ready('active-D7');
    for (const period of ['D7', 'D30', 'D90', 'D180']) {
      await page.click(`[data-period="${period}"]`);
      await ready(`active-${period}`);
      const services = await csv(`getOffice365ServicesUserCounts(period='${period}')`);
      const names = ['Exchange', 'OneDrive', 'SharePoint', 'Skype For Business', 'Yammer', 'Teams', 'Office 365'];
      const row = services[1];
      const want = names.map((n) => [
        n.replace('Skype For Business', 'Skype for Business'),
        row[services[0].indexOf(`${n} Active`)],
        row[services[0].indexOf(`${n} Inactive`)],
      ]);
      assert.deepEqual(await tableRows('table-services'), want, `services ${period}`);
      const daily = await csv(`getOffice365ActiveUserCounts(period='${period}')`);
      const trend = columns(daily, ['Report Date', ...names]).sort((a, b) => (a[0] < b[0] ? -1 : 1));
      assert.equal(trend.length, Number(period.slice(1)), `one row per day of ${period}`);
      assert.deepEqual(await tableRows('table-trend'), trend, `daily trend ${period}`);
      if (period === 'D30') {
        await axe('active users');
        await shot('active-users');
      }
    }
  });

  test('user details: paged JSON equals the CSV, sortable and filterable', async () => {
    await page.click('[data-period="D7"]');
    await ready('active-D7');
    await page.click('[data-view="users"]');
    await ready('users-D7');
    const detail = await csv("getOffice365ActiveUserDetail(period='D7')");
    const fields = [
      'Display Name',
      'User Principal Name',
      'Is Deleted',
      'Exchange Last Activity Date',
      'OneDrive Last Activity Date',
      'SharePoint Last Activity Date',
      'Skype For Business Last Activity Date',
      'Yammer Last Activity Date',
      'Teams Last Activity Date',
      'Assigned Products',
    ];
    const want = columns(detail, fields).map((r) =>
      r.map((v, i) => (i === 2 ? (v === 'True' ? 'Yes' : 'No') : i === 9 ? v.split('+').filter(Boolean).join(', ') : v)),
    );
    assert.deepEqual(await tableRows('table-users'), want.slice(0, 100), 'the first page');
    await page.click('[data-testid="load-more"]');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="table-users"] tbody tr').length === 200);
    await page.click('[data-testid="load-more"]');
    await page.waitForFunction(
      (n) => document.querySelectorAll('[data-testid="table-users"] tbody tr').length === n,
      want.length,
    );
    assert.deepEqual(await tableRows('table-users'), want, 'every page, in order');
    assert.match(await page.textContent('[data-testid="users-status"]'), /all users are loaded/);
    assert.equal(await page.isVisible('[data-testid="load-more"]'), false);

    // Sorting by display name, both ways.
    const sortButton = page.locator('[data-testid="table-users"] thead button', { hasText: 'Display Name' });
    await sortButton.click();
    const names = (await tableRows('table-users')).map((r) => r[0]);
    assert.deepEqual(names, [...names].sort((a, b) => a.localeCompare(b)));
    await sortButton.click();
    const desc = (await tableRows('table-users')).map((r) => r[0]);
    assert.deepEqual(desc, [...names].reverse());
    assert.equal(await page.getAttribute('[data-testid="table-users"] thead th:first-child', 'aria-sort'), 'descending');

    // Filtering by one user's principal name.
    await page.fill('#user-filter', want[5][1]);
    const filtered = await tableRows('table-users');
    assert.deepEqual(filtered, [want[5]]);
    await page.fill('#user-filter', '');
    await axe('user details');
    await shot('user-details');
  });

  test('errors are plain sentences: throttled (429)', async () => {
    await page.route('**/beta/reports/**', (route) =>
      route.fulfill({
        status: 429,
        headers: { 'content-type': 'application/json', 'retry-after': '42' },
        body: JSON.stringify({ error: { code: 'TooManyRequests', message: 'Too many requests.' } }),
      }),
    );
    await page.click('[data-view="activations"]');
    await ready('error-429');
    assert.match(await alertText(), /Wait 42 seconds, then try again\./);
    await page.unroute('**/beta/reports/**');
    await page.click('[data-view="activations"]');
    await ready('activations-D7');
    assert.equal(await page.isVisible('#alert'), false);
  });

  test('sign out clears the session', async () => {
    await page.click('#signout');
    await ready('signed-out');
    assert.equal(await page.isVisible('#signin'), true);
    assert.equal((await context.cookies()).some((c) => c.name === 'reportroot_session'), false);
    const status = await page.evaluate(async () => {
      const r = await fetch("/beta/reports/getOffice365ServicesUserCounts(period='D7')?$format=application/json", {
        headers: { 'X-Requested-With': 'reportroot' },
      });
      return r.status;
    });
    assert.equal(status, 401);
    await axe('sign-in');
  });

  test('a sign-in code works once; a reused or expired one is refused', async () => {
    await page.goto(link);
    await ready('signin-failed');
    assert.match(await alertText(), /already been used/);
    const short = cli('signin-link', '--data', join(data, 'd'), '--tenant', TENANT, '--ttl', '1s', '--url', base);
    await new Promise((r) => setTimeout(r, 2100));
    await page.goto(short);
    await ready('signin-failed');
    assert.match(await alertText(), /has expired/);
    await shot('signin-error');
  });

  test('a bad or expired session cookie, a bad token and a token without the role show what to do', async () => {
    await context.addCookies([{ name: 'reportroot_session', value: `${token}x`, url: base }]);
    await page.goto(base);
    await ready('signin-failed');
    assert.match(await alertText(), /session has expired or is not valid.*signin-link/);
    await context.clearCookies();

    await page.goto(base);
    await ready('signin');
    await page.fill('#token-input', 'not-a-token');
    await page.click('#token-form button');
    await ready('signin-failed');
    assert.match(await alertText(), /That access token was refused/);

    const writer = cli('token', '--data', join(data, 'd'), '--tenant', TENANT, '--app', '--roles', 'ReportData.ReadWrite.All');
    await page.fill('#token-input', writer);
    await page.click('#token-form button');
    await page.waitForFunction(() => /not allowed to read these reports/.test(document.getElementById('alert').textContent));
    assert.match(await alertText(), /lacks the Reports\.Read\.All permission/);
  });

  test('a pasted token signs in; a tenant with no data shows the empty state', async () => {
    const reader = cli('token', '--data', join(data, 'd'), '--tenant', EMPTY_TENANT, '--app');
    await page.goto(base);
    await ready('signin');
    await page.fill('#token-input', reader);
    await page.click('#token-form button');
    await ready('activations-D7');
    assert.equal(await page.isVisible('#empty'), true);
    assert.match(await page.textContent('#empty'), /No usage data yet/);
    assert.equal(await page.textContent('[data-testid="refresh-date"]'), 'none yet');
    assert.equal(await page.isVisible('#alert'), false);
    await axe('empty state');
    await shot('empty-tenant');
  });
});
