// The dashboard in a real browser: Debian's chromium, headless, driven by
// puppeteer-core. Sign in (a wrong password first), a job submitted through
// the API appears in the list and finishes there (live, from the event
// stream), its page draws the DAG and shows its log, and a long job is
// cancelled from its page. Screenshots go to build/test-artifacts/ui/.
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import puppeteer from 'puppeteer-core';
import { ALICE, TEST_USERS, assert, assertEq, nativeCall, run, startServer } from './lib.mjs';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ART = path.resolve(new URL('../../build/test-artifacts/ui', import.meta.url).pathname);
const T = 15000; // the longest any one wait may take

async function shot(page, name) {
  await page.screenshot({ path: path.join(ART, `${name}.png`), fullPage: true });
}

const text = (page, sel) => page.$eval(sel, (e) => e.textContent);

const tests = [
  ['chromium is installed (make deps installs it)', async () => {
    assert(existsSync(CHROMIUM), `no browser at ${CHROMIUM}; install Debian's chromium (make deps does)`);
  }],

  ['the page loads under its CSP with no script error, and asks to sign in', async ({ page, srv }) => {
    await page.goto(`${srv.url}/jobrt/ui/`, { waitUntil: 'networkidle0', timeout: T });
    await page.waitForSelector('#signin:not([hidden])', { timeout: T });
    assertEq(await page.title(), 'jobrt');
  }],

  ['a wrong password is refused with a message', async ({ page }) => {
    await page.type('#user', 'tester');
    await page.type('#password', 'wrong');
    await page.click('#signin-form button[type=submit]');
    await page.waitForFunction(() => document.querySelector('#signin-error').textContent.includes('Not signed in'), { timeout: T });
    await shot(page, '1-signin-refused');
  }],

  ['signing in as an admin shows the list, live', async ({ page }) => {
    await page.$eval('#user', (e) => { e.value = ''; });
    await page.$eval('#password', (e) => { e.value = ''; });
    await page.type('#user', 'tester');
    await page.type('#password', 'tester-password');
    await page.click('#signin-form button[type=submit]');
    await page.waitForSelector('#list:not([hidden])', { timeout: T });
    await page.waitForSelector('#live:not([hidden])', { timeout: T });
    assertEq(await text(page, '#who'), 'tester (admin)');
    // The password was traded for a token: only the token is kept.
    const kept = await page.evaluate(() => JSON.stringify(sessionStorage));
    assert(kept.includes('Bearer ') && !kept.includes('tester-password') && !kept.includes('Basic '), kept);
  }],

  ['a job submitted through the API appears and finishes in the list', async ({ page, srv, ids }) => {
    const r = await nativeCall(srv, 'POST', '/jobs', {
      title: 'dashboard demo', start: true,
      tasks: [
        { alias: 'fetch', command: ['sh', '-c', 'echo fetched 3 files; sleep 0.3'] },
        { alias: 'left', deps: ['fetch'], command: ['sh', '-c', 'echo hello from left'] },
        { alias: 'right', deps: ['fetch'], command: ['sh', '-c', 'echo warming up >&2; echo hello from right'] },
        { alias: 'merge', deps: ['left', 'right'], command: ['sh', '-c', 'echo merged'] },
      ],
    });
    assertEq(r.status, 201);
    ids.demo = r.body.id;
    await page.waitForSelector(`#jobs tr[data-id="${ids.demo}"]`, { timeout: T });
    await page.waitForSelector(`#jobs tr[data-id="${ids.demo}"][data-state="succeeded"]`, { timeout: T });
    // An ordinary user's job, so the list shows more than one owner.
    await nativeCall(srv, 'POST', '/jobs', { title: 'alice nightly report', start: true, tasks: [{ alias: 'r', command: ['false'] }] }, ALICE);
    await page.waitForSelector('#jobs tr[data-state="failed"]', { timeout: T });
    await shot(page, '2-list');
  }],

  ['the state filter keeps only jobs in that state', async ({ page }) => {
    await page.click('#filters button[data-state="failed"]');
    await page.waitForFunction(() => [...document.querySelectorAll('#jobs tbody tr')].every((tr) => tr.dataset.state === 'failed')
      && document.querySelectorAll('#jobs tbody tr').length === 1, { timeout: T });
    await page.click('#filters button[data-state=""]');
    await page.waitForFunction(() => document.querySelectorAll('#jobs tbody tr').length === 2, { timeout: T });
  }],

  ['its page draws the DAG and shows tasks and the log', async ({ page, ids }) => {
    await page.click(`#jobs tr[data-id="${ids.demo}"] a`);
    await page.waitForSelector('#job:not([hidden])', { timeout: T });
    await page.waitForSelector('#dag svg g.node[data-task="merge"]', { timeout: T });
    const nodes = await page.$$eval('#dag svg g.node', (gs) => gs.map((g) => [g.dataset.task, g.getAttribute('class')]));
    assertEq(nodes.map((n) => n[0]).sort(), ['fetch', 'left', 'merge', 'right']);
    assert(nodes.every((n) => n[1].includes('state-succeeded')), JSON.stringify(nodes));
    const edges = await page.$$eval('#dag svg path.edge', (ps) => ps.map((p) => `${p.dataset.from}->${p.dataset.to}`).sort());
    assertEq(edges, ['fetch->left', 'fetch->right', 'left->merge', 'right->merge']);
    // Layers: fetch left of left/right, which are left of merge.
    const x = await page.$$eval('#dag svg g.node', (gs) => Object.fromEntries(gs.map((g) => [g.dataset.task, Number(g.getAttribute('transform').match(/translate\(([\d.]+)/)[1])])));
    assert(x.fetch < x.left && x.left === x.right && x.right < x.merge, JSON.stringify(x));
    assertEq(await page.$$eval('#tasks tbody tr', (rs) => rs.map((r) => r.dataset.task)), ['fetch', 'left', 'right', 'merge']);
    await page.waitForFunction(() => document.querySelector('#log').textContent.includes('hello from right'), { timeout: T });
    const log = await text(page, '#log');
    assert(log.includes('fetched 3 files') && log.includes('merged'), log);
    assertEq(await text(page, '#job-state'), 'succeeded');
    await shot(page, '3-job');
    // A task's box picks its lines.
    await page.click('#dag svg g.node[data-task="right"]');
    await page.waitForFunction(() => !document.querySelector('#log').textContent.includes('merged'), { timeout: T });
    assert((await text(page, '#log')).includes('warming up'), 'the right task\'s stderr');
  }],

  ['a long job is cancelled from its page', async ({ page, srv }) => {
    const r = await nativeCall(srv, 'POST', '/jobs', {
      title: 'long simulation', start: true,
      tasks: [{ alias: 'prepare', command: ['true'] }, { alias: 'simulate', deps: ['prepare'], command: ['sh', '-c', 'echo step 1; sleep 60'] }],
    });
    assertEq(r.status, 201);
    await page.goto(`${srv.url}/jobrt/ui/#/jobs/${r.body.id}`, { waitUntil: 'networkidle2', timeout: T }).catch(() => {});
    await page.waitForSelector('#dag svg g.node.state-running[data-task="simulate"]', { timeout: T });
    await page.waitForFunction(() => document.querySelector('#log').textContent.includes('step 1'), { timeout: T });
    await shot(page, '4-running');
    await page.waitForSelector('#cancel:not([hidden])', { timeout: T });
    await page.click('#cancel');
    await page.waitForFunction(() => document.querySelector('#job-state').textContent === 'canceled', { timeout: T });
    const job = (await nativeCall(srv, 'GET', `/jobs/${r.body.id}`)).body;
    assertEq(job.state, 'canceled');
    assert(await page.$eval('#cancel', (b) => b.hidden), 'no cancel button on a canceled job');
    assert(!(await page.$eval('#restart', (b) => b.hidden)), 'a restart button');
    await shot(page, '5-canceled');
  }],

  ['a waiting job says why, in the list and on its page', async ({ page, srv }) => {
    const r = await nativeCall(srv, 'POST', '/jobs', {
      title: 'not started yet', tasks: [{ alias: 'first', command: ['true'] }, { alias: 'then', deps: ['first'], command: ['true'] }],
    });
    assertEq(r.status, 201);
    await page.goto(`${srv.url}/jobrt/ui/#/`, { waitUntil: 'networkidle2', timeout: T }).catch(() => {});
    await page.waitForSelector(`#jobs tr[data-id="${r.body.id}"] .waiting`, { timeout: T });
    assertEq(await text(page, `#jobs tr[data-id="${r.body.id}"] .waiting`), 'Held');
    // The list is redrawn every second while a job runs: go by its link's address.
    const href = await page.$eval(`#jobs tr[data-id="${r.body.id}"] a`, (a) => a.getAttribute('href'));
    await page.evaluate((h) => { location.hash = h; }, href);
    await page.waitForSelector('#job-waiting:not([hidden])', { timeout: T });
    assert((await text(page, '#job-waiting')).startsWith('Waiting: Held — not started yet'), await text(page, '#job-waiting'));
    assertEq(await page.$$eval('#tasks tbody .waiting', (ws) => ws.map((w) => w.textContent)), ['Held', 'Held']);
    await shot(page, '6-waiting');
    // Started, it runs and the reason goes.
    await nativeCall(srv, 'POST', `/jobs/${r.body.id}/start`);
    await page.waitForFunction(() => document.querySelector('#job-state').textContent === 'succeeded', { timeout: T });
    assert(await page.$eval('#job-waiting', (p) => p.hidden), 'no reason once it ran');
  }],

  ['a user signed in with a token sees only their jobs, kept fresh without the stream', async ({ browser, srv, watch }) => {
    const ctx = await browser.createBrowserContext();
    try {
      const page = await ctx.newPage();
      watch(page);
      await page.setViewport({ width: 1280, height: 800 });
      const token = (await nativeCall(srv, 'POST', '/tokens', { ttl: '10m' }, ALICE)).body.token;
      await page.goto(`${srv.url}/jobrt/ui/`, { waitUntil: 'networkidle0', timeout: T });
      await page.type('#token', token);
      await page.click('#signin-form button[type=submit]');
      await page.waitForSelector('#list:not([hidden])', { timeout: T });
      assertEq(await page.evaluate(() => sessionStorage.getItem('jobrt.auth').startsWith('Bearer ')), true);
      await page.waitForFunction(() => document.querySelectorAll('#jobs tbody tr').length === 1, { timeout: T });
      assert(await page.$eval('#live', (e) => e.hidden), 'no live stream for a user');
      const r = await nativeCall(srv, 'POST', '/jobs', { title: 'alice again', start: true, tasks: [{ alias: 'a', command: ['true'] }] }, ALICE);
      await page.waitForSelector(`#jobs tr[data-id="${r.body.id}"][data-state="succeeded"]`, { timeout: T });
      await page.click(`#jobs tr[data-id="${r.body.id}"] a`);
      await page.waitForSelector('#dag svg g.node[data-task="a"]', { timeout: T });
      assert(await page.$eval('#approve', (b) => b.hidden), 'no approve button for a user');
      await page.click('#signout');
      await page.waitForSelector('#signin:not([hidden])', { timeout: T });
      assertEq(await page.evaluate(() => sessionStorage.getItem('jobrt.auth')), null);
      // A token the user brought is not revoked by signing out.
      assertEq((await nativeCall(srv, 'GET', '/jobs', undefined, { Authorization: `Bearer ${token}` })).status, 200);
    } finally {
      await ctx.close();
    }
  }],

  ['signing out revokes the token signing in was given', async ({ page, srv }) => {
    const auth = await page.evaluate(() => sessionStorage.getItem('jobrt.auth'));
    assertEq((await nativeCall(srv, 'GET', '/jobs', undefined, { Authorization: auth })).status, 200);
    await page.click('#signout');
    await page.waitForSelector('#signin:not([hidden])', { timeout: T });
    const deadline = Date.now() + T;
    while ((await nativeCall(srv, 'GET', '/jobs', undefined, { Authorization: auth })).status !== 403) {
      assert(Date.now() < deadline, 'the token still works after signing out');
      await new Promise((r) => setTimeout(r, 50));
    }
  }],

  ['no script error and no CSP violation happened', async ({ problems }) => {
    assertEq(problems, []);
  }],
];

run(tests, {
  before: async () => {
    mkdirSync(ART, { recursive: true });
    const srv = await startServer({ config: TEST_USERS });
    const browser = await puppeteer.launch({
      executablePath: CHROMIUM, headless: true, timeout: T,
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
    });
    const page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 800 });
    page.setDefaultTimeout(T);
    const problems = [];
    // 401 and 403 are expected: a wrong password, a user's event stream.
    const watch = (p) => {
      p.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
      p.on('console', (m) => {
        if (m.type() === 'error' && !/status of 40[13]/.test(m.text())) problems.push(`console: ${m.text()}`);
      });
      p.on('dialog', (d) => d.accept());
    };
    watch(page);
    return { srv, browser, page, problems, watch, ids: {} };
  },
  after: async ({ srv, browser }) => {
    await browser.close();
    return srv.finish();
  },
});
