// End-to-end tests of the openEO surface against a real jobrt, driven by the
// official openEO JavaScript client (@openeo/js-client, pinned in
// package-lock.json): discovery, Basic login, processes, batch jobs run in
// the sandbox by `jobrt eval`, logs, estimates, results through signed URLs,
// synchronous processing. Every response the client receives is validated
// against our own minimal schemas of openEO API 1.2.0 (openeo-schemas/);
// bad input is checked with plain fetch.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { ALICE, BOB, TEST_USERS, assert, assertEq, run, sleep, startServer } from './lib.mjs';

const require = createRequire(import.meta.url);
let OpenEO, axios, Ajv;
try {
  ({ OpenEO } = require('@openeo/js-client'));
  axios = require('axios');
  Ajv = require('ajv');
} catch (e) {
  // Installable packages are never a reason to skip (make node-deps).
  console.log(`not ok - openEO end-to-end tests: npm dependencies missing (make node-deps): ${e.message}`);
  process.exit(1);
}

const MOUNT = '/openeo/1.2';
const URL_TTL = 4; // seconds: short, so that an expired link can be seen

const CONFIG = `
node: {cpu: 2, memory: 2GiB, max_tasks: 4}
log: {level: warn}
${TEST_USERS}
plugins:
  prices: {use: estimate.price_table, currency: EUR, cpu_second: 0.001}
  links: {use: publish.local, url_ttl: ${URL_TTL}s}
surfaces:
  openeo: {estimator: prices, publisher: links, job_timeout: 60s}
`;

// ---- schemas: every response the client receives is checked ----

const schemaDoc = JSON.parse(readFileSync(new URL('./openeo-schemas/openeo.json', import.meta.url)));
const ajv = new Ajv({ allErrors: true, strict: false });
ajv.addFormat('uri', { validate: (s) => { try { new URL(s); return true; } catch { return false; } } });
ajv.addFormat('date-time', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/i);
ajv.addSchema(schemaDoc);
const validators = {};
function validate(name, data, where = '') {
  validators[name] = validators[name] || ajv.getSchema(`${schemaDoc.$id}#/definitions/${name}`);
  const v = validators[name];
  if (!v(data)) {
    throw new Error(`${where} does not match ${name}: ${ajv.errorsText(v.errors)}\n${JSON.stringify(data).slice(0, 600)}`);
  }
  return data;
}

// Which schema a successful JSON response of the surface has, by path.
const ROUTES = [
  [/^\/\.well-known\/openeo$/, 'GET', 'well_known'],
  [/^\/openeo\/1\.2\/?$/, 'GET', 'capabilities'],
  [/^\/openeo\/1\.2\/conformance$/, 'GET', 'conformance'],
  [/^\/openeo\/1\.2\/file_formats$/, 'GET', 'file_formats'],
  [/^\/openeo\/1\.2\/processes$/, 'GET', 'processes'],
  [/^\/openeo\/1\.2\/collections$/, 'GET', 'collections'],
  [/^\/openeo\/1\.2\/me$/, 'GET', 'me'],
  [/^\/openeo\/1\.2\/credentials\/basic$/, 'GET', 'credentials_basic'],
  [/^\/openeo\/1\.2\/jobs$/, 'GET', 'jobs'],
  [/^\/openeo\/1\.2\/jobs\/[^/]+$/, 'GET', 'batch_job'],
  [/^\/openeo\/1\.2\/jobs\/[^/]+\/estimate$/, 'GET', 'estimate'],
  [/^\/openeo\/1\.2\/jobs\/[^/]+\/logs$/, 'GET', 'logs'],
  [/^\/openeo\/1\.2\/jobs\/[^/]+\/results$/, 'GET', 'stac_item'],
  [/^\/openeo\/1\.2\/jobs\/[^/]+\/results\/item$/, 'GET', 'stac_item'],
];
const EMPTY = { 'POST /jobs': 201, 'POST results': 202, 'DELETE results': 204, 'PATCH job': 204, 'DELETE job': 204 };
let checked = 0;

function checkResponse(method, url, status, headers, data) {
  const path = new URL(url).pathname;
  method = method.toUpperCase();
  assertEq(headers['access-control-allow-origin'] !== undefined, true, `CORS on ${method} ${path}`);
  assert(/OpenEO-Identifier/.test(headers['access-control-expose-headers'] || ''), `exposed headers on ${method} ${path}`);
  if (status >= 400) {
    if (status === 424) validate('log_entry', data, `${method} ${path} (${status})`);
    else validate('error', data, `${method} ${path} (${status})`);
    checked++;
    return;
  }
  if (status === 201 || status === 202 || status === 204) {
    assert(data === '' || data === undefined || data === null, `${method} ${path} ${status} has no body`);
    if (status === 201) assert(headers.location && headers['openeo-identifier'], 'Location and OpenEO-Identifier');
    checked++;
    return;
  }
  for (const [re, m, name] of ROUTES) {
    if (m === method && re.test(path)) {
      validate(name, data, `${method} ${path}`);
      checked++;
      return;
    }
  }
}

axios.interceptors.response.use((r) => {
  if (r.config.responseType !== 'stream') checkResponse(r.config.method, axios.getUri(r.config), r.status, r.headers, r.data);
  return r;
}, (e) => {
  const r = e.response;
  if (r && r.config.responseType !== 'stream') checkResponse(r.config.method, axios.getUri(r.config), r.status, r.headers, r.data);
  return Promise.reject(e);
});

// ---- helpers ----

// A plain request; the body is validated as an openEO error when status >= 400.
async function call(srv, method, path, { headers = ALICE, body, raw } = {}) {
  const h = { ...headers };
  if (body !== undefined) h['Content-Type'] = 'application/json';
  const r = await fetch(srv.url + (path.startsWith('/.') ? path : MOUNT + path), {
    method, headers: h, body: raw !== undefined ? raw : body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  let data = text;
  try { data = text ? JSON.parse(text) : ''; } catch { /* not JSON */ }
  const hdrs = Object.fromEntries(r.headers.entries());
  checkResponse(method, r.url, r.status, hdrs, data);
  return { status: r.status, headers: hdrs, body: data };
}

async function expectError(srv, method, path, status, code, opts) {
  const r = await call(srv, method, path, opts);
  assertEq(r.status, status, `${method} ${path} status (${JSON.stringify(r.body)})`);
  assertEq(r.body.code, code, `${method} ${path} code`);
  return r;
}

async function waitStatus(job, want, ms = 30000) {
  const deadline = Date.now() + ms;
  for (;;) {
    await job.describeJob();
    if (want.includes(job.status)) return job;
    if (Date.now() > deadline) throw new Error(`job ${job.id} is ${job.status}, wanted ${want}`);
    await sleep(50);
  }
}

const ADD = { process_graph: { a: { process_id: 'add', arguments: { x: 1, y: 2 }, result: true } } };

// A graph that keeps a task busy for several seconds (a million callback
// calls, about 6 s here), well past the 3 s sync_timeout of POST /result.
const SLOW = {
  process_graph: {
    c: { process_id: 'array_create', arguments: { data: [1.5], repeat: 1000000 } },
    a: {
      process_id: 'array_apply',
      arguments: {
        data: { from_node: 'c' },
        process: { process_graph: {
          s: { process_id: 'sin', arguments: { x: { from_parameter: 'x' } } },
          m: { process_id: 'multiply', arguments: { x: { from_node: 's' }, y: { from_parameter: 'index' } }, result: true },
        } },
      },
    },
    r: { process_id: 'sum', arguments: { data: { from_node: 'a' } }, result: true },
  },
};

async function readStream(data) {
  if (typeof data === 'string') return data;
  const chunks = [];
  for await (const c of data) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks).toString('utf8');
}

// ---- tests ----

const tests = [
  ['the client connects through /.well-known/openeo and logs in with Basic', async (t) => {
    t.con = await OpenEO.connect(t.srv.url);
    assertEq(t.con.getBaseUrl(), t.srv.url + MOUNT, 'base URL from the well-known document');
    const caps = t.con.capabilities();
    assertEq(caps.apiVersion(), '1.2.0');
    for (const f of ['authenticateBasic', 'listProcesses', 'listFileTypes', 'computeResult', 'createJob',
      'describeJob', 'updateJob', 'deleteJob', 'estimateJob', 'debugJob', 'startJob', 'stopJob', 'listResults']) {
      assert(caps.hasFeature(f), `feature ${f} advertised`);
    }
    assert(!caps.hasFeature('listServices'), 'nothing unimplemented is advertised');
    await t.con.authenticateBasic('alice', 'alice-password');
    assert(t.con.isAuthenticated(), 'authenticated');
    const me = await t.con.describeAccount();
    assertEq(me.user_id, 'alice');
  }],

  ['wrong credentials: CredentialsInvalid; no credentials: AuthenticationRequired', async (t) => {
    const con = await OpenEO.connect(t.srv.url);
    let err;
    try { await con.authenticateBasic('alice', 'wrong'); } catch (e) { err = e; }
    assertEq(err && err.code, 'CredentialsInvalid');
    await expectError(t.srv, 'GET', '/jobs', 401, 'AuthenticationRequired', { headers: {} });
    await expectError(t.srv, 'GET', '/jobs', 403, 'TokenInvalid', { headers: { Authorization: 'Bearer basic//nope' } });
  }],

  ['capabilities, conformance, file formats, collections, processes', async (t) => {
    const caps = await call(t.srv, 'GET', '/', { headers: {} });
    const paths = caps.body.endpoints.map((e) => e.path);
    assertEq(new Set(paths).size, paths.length, 'one entry per path');
    assert(!paths.includes('/'), 'GET / is not listed');
    assert(caps.body.conformsTo.includes('https://api.openeo.org/1.2.0'), 'conformsTo');
    await call(t.srv, 'GET', '/conformance', { headers: {} });
    const types = await t.con.listFileTypes();
    assert(types.getOutputType('json'), 'JSON output format');
    const cols = await t.con.listCollections();
    assertEq(cols.collections.length, 0, 'no collections configured');
    const procs = await t.con.listProcesses();
    const ids = procs.processes.map((p) => p.id);
    for (const id of ['add', 'array_apply', 'array_filter', 'count', 'if', 'and', 'text_concat', 'date_shift']) {
      assert(ids.includes(id), `process ${id} listed`);
    }
  }],

  ['CORS on every answer and 204 on OPTIONS', async (t) => {
    for (const path of [`${MOUNT}/jobs`, `${MOUNT}/jobs/x/results`, '/.well-known/openeo', `${MOUNT}/`]) {
      const r = await fetch(t.srv.url + path, { method: 'OPTIONS', headers: { Origin: 'http://example.org' } });
      assertEq(r.status, 204, `OPTIONS ${path}`);
      assertEq(await r.text(), '', 'no body');
      assert(r.headers.get('access-control-allow-origin'), 'allow-origin');
      assert(/Authorization/.test(r.headers.get('access-control-allow-headers')), 'allow-headers');
      assert(/GET/.test(r.headers.get('access-control-allow-methods')), 'allow-methods');
      assert(/OpenEO-Identifier/.test(r.headers.get('access-control-expose-headers')), 'expose-headers');
    }
    const r = await fetch(`${t.srv.url}${MOUNT}/nowhere`);
    assertEq(r.status, 404);
    assert(r.headers.get('access-control-allow-origin'), 'CORS on a 404');
  }],

  ['a batch job with a callback runs to finished; its result downloads through a signed URL', async (t) => {
    const b = await t.con.buildProcess();
    const data = b.array_create([2, 3, 4], 1);
    const squared = b.array_apply(data, function (x) { return this.multiply(x, x); });
    const big = b.array_filter(squared, function (x) { return this.gt(x, 5); });
    const job = await t.con.createJob(b.sum(big), 'squares', 'sum of the squares above 5');
    assertEq(job.status, 'created');
    assertEq(job.title, 'squares');
    t.job = job;
    const est = await job.estimateJob();
    assert(typeof est.costs === 'number' && /^PT/.test(est.duration) && est.size > 0, 'estimate');
    await job.startJob();
    await waitStatus(job, ['finished', 'error']);
    assertEq(job.status, 'finished');
    assertEq(job.progress, 100);
    const stac = await job.getResultsAsStac();
    assert(stac.properties.expires, 'expires');
    assert(stac.links.some((l) => l.rel === 'canonical'), 'canonical link');
    const assets = await job.listResults();
    const repro = assets.find((a) => (a.roles || []).includes('reproducibility'));
    assert(repro, 'reproducibility asset');
    const result = assets.find((a) => (a.roles || []).includes('data'));
    assert(/[?&]expires=\d+/.test(result.href) && /[?&]signature=/.test(result.href), 'signed href');
    const value = JSON.parse(await readStream(await t.con.download(result.href, false)));
    assertEq(value, 9 + 16, 'the value computed in the sandbox');
    const pg = JSON.parse(await readStream(await t.con.download(repro.href, false)));
    assert(pg.process.process_graph, 'the process graph is downloadable');
    const canonical = stac.links.find((l) => l.rel === 'canonical').href;
    const again = await fetch(canonical);
    assertEq(again.status, 200, 'the canonical link works without credentials');
    validate('stac_item', await again.json(), 'canonical item');
    t.resultHref = result.href;
    // Altered link: 403; the owner's results carry OpenEO-Costs.
    // Change the signature's first character to a different one.
    const altered = await fetch(result.href.replace(/signature=(.)/, (_, c) => `signature=${c === 'A' ? 'B' : 'A'}`));
    assertEq(altered.status, 403);
    assertEq((await altered.json()).code, 'CredentialsInvalid');
    const raw = await call(t.srv, 'GET', `/jobs/${job.id}/results`);
    assertEq(raw.headers['openeo-costs'], '0');
  }],

  ['logs: string ids, offset, level and limit with a next link', async (t) => {
    const logs = t.job.debugJob();
    const first = await logs.nextLogs();
    assert(first.every((l) => typeof l.id === 'string'), 'string ids');
    const none = await logs.nextLogs();
    assertEq(none.length, 0, 'the offset skips what was read');
    // A failing job: an error entry exists before the status is error.
    const bad = await t.con.createJob({ process_graph: {
      e: { process_id: 'array_element', arguments: { data: [1, 2], index: 7 }, result: true },
    } }, 'fails');
    await bad.startJob();
    await waitStatus(bad, ['finished', 'error']);
    assertEq(bad.status, 'error');
    const errors = await bad.debugJob('error').nextLogs();
    assert(errors.length >= 1 && errors.every((l) => l.level === 'error'), 'error entries');
    assert(errors.some((l) => l.code === 'ArrayElementNotAvailable'), 'the evaluator\'s error code');
    const page = await call(t.srv, 'GET', `/jobs/${bad.id}/logs?offset=&limit=1`);
    assertEq(page.body.logs.length, 1);
    assert(page.body.links.some((l) => l.rel === 'next'), 'next link');
    const r = await call(t.srv, 'GET', `/jobs/${bad.id}/results`);
    assertEq(r.status, 424, 'results of a failed job');
    assertEq(r.body.level, 'error');
    t.bad = bad;
  }],

  ['updateJob while running is JobLocked; stopJob; restart discards the old results; deleteJob', async (t) => {
    const job = await t.con.createJob(SLOW, 'slow');
    await job.startJob();
    await job.startJob(); // a no-op while queued or running
    await waitStatus(job, ['running']);
    let err;
    try { await job.updateJob({ title: 'renamed' }); } catch (e) { err = e; }
    assertEq(err && err.code, 'JobLocked');
    await job.stopJob();
    assertEq(job.status, 'canceled', 'stopped while running');
    await job.updateJob({ title: 'renamed', budget: 5 });
    assertEq(job.title, 'renamed');
    assertEq(job.budget, 5);
    await expectError(t.srv, 'GET', `/jobs/${job.id}/results`, 400, 'JobNotFinished');
    await job.deleteJob();
    await expectError(t.srv, 'GET', `/jobs/${job.id}`, 404, 'JobNotFound');
    // Restart of a finished job: back to queued/running, results gone until done again.
    await t.job.startJob();
    assert(['queued', 'running', 'finished'].includes(t.job.status), `restarted: ${t.job.status}`);
    await waitStatus(t.job, ['finished']);
  }],

  ['a job stopped while queued goes back to created', async (t) => {
    // Four slow jobs fill the node (max_tasks 4); a fifth waits queued.
    const busy = [];
    for (let i = 0; i < 4; i++) {
      const j = await t.con.createJob(SLOW, `busy ${i}`);
      await j.startJob();
      busy.push(j);
    }
    const q = await t.con.createJob(ADD, 'waits');
    await q.startJob();
    assertEq(q.status, 'queued');
    await q.stopJob();
    assertEq(q.status, 'created');
    for (const j of busy) { await j.stopJob(); await j.deleteJob(); }
    await q.deleteJob();
  }],

  ['budget: PaymentRequired when the estimate exceeds it', async (t) => {
    const job = await t.con.createJob(ADD, 'cheap', null, null, 0.0000001);
    let err;
    try { await job.startJob(); } catch (e) { err = e; }
    assertEq(err && err.code, 'PaymentRequired');
    assertEq((await job.describeJob()).status, 'created');
    await job.updateJob({ budget: null });
    await job.startJob();
    await waitStatus(job, ['finished']);
  }],

  ['listJobs and pagination with limit and links[rel=next]', async (t) => {
    const all = await t.con.listJobs();
    assert(all.length >= 3, 'the user\'s jobs');
    const pages = t.con.paginateJobs(1);
    const p1 = await pages.nextPage();
    assertEq(p1.length, 1);
    assert(pages.hasNextPage(), 'a next page');
    const p2 = await pages.nextPage();
    assertEq(p2.length, 1);
    assert(p1[0].id !== p2[0].id, 'pages differ');
    const bobs = await call(t.srv, 'GET', '/jobs', { headers: BOB });
    assertEq(bobs.body.jobs.length, 0, 'bob sees none of alice\'s jobs');
  }],

  ['computeResult returns the bare JSON value', async (t) => {
    const b = await t.con.buildProcess();
    const arr = b.array_apply([1, 2, 3], function (x) { return this.add(x, 10); });
    const res = await t.con.computeResult(b.count(arr, function (x) { return this.gte(x, 12); }));
    assertEq(JSON.parse(await readStream(res.data)), 2);
    assert(/application\/json/.test(res.type), 'JSON content type');
    const r = await call(t.srv, 'POST', '/result', { body: { process: { process_graph: {
      t: { process_id: 'text_concat', arguments: { data: ['a', 1, true], separator: '-' }, result: true },
    } } } });
    assertEq(r.body, 'a-1-true');
    await expectError(t.srv, 'POST', '/result', 408, 'RequestTimeout', { body: { process: SLOW } });
  }],

  ['bad input answers the spec\'s codes', async (t) => {
    const pg = (g) => ({ body: { process: { process_graph: g } } });
    await expectError(t.srv, 'POST', '/jobs', 400, 'ProcessGraphInvalid',
      pg({ a: { process_id: 'add', arguments: { x: 1, y: 2 } } }));
    await expectError(t.srv, 'POST', '/jobs', 400, 'ProcessUnsupported',
      pg({ a: { process_id: 'no_such_process', arguments: {}, result: true } }));
    await expectError(t.srv, 'POST', '/result', 400, 'ProcessParameterRequired',
      pg({ a: { process_id: 'add', arguments: { x: 1 }, result: true } }));
    await expectError(t.srv, 'POST', '/result', 400, 'ProcessParameterInvalid',
      pg({ a: { process_id: 'add', arguments: { x: 'one', y: 2 }, result: true } }));
    await expectError(t.srv, 'POST', '/jobs', 400, 'ProcessGraphMissing', { body: { title: 'no process' } });
    await expectError(t.srv, 'POST', '/jobs', 400, 'ProcessInvalid', { raw: '{"process": ' });
    await expectError(t.srv, 'POST', '/jobs', 400, 'BudgetInvalid', { body: { process: ADD, budget: -1 } });
    await expectError(t.srv, 'GET', '/jobs/no-such-job', 404, 'JobNotFound');
    await expectError(t.srv, 'GET', `/jobs/${t.job.id}`, 404, 'JobNotFound', { headers: BOB });
    await expectError(t.srv, 'DELETE', `/jobs/${t.job.id}`, 404, 'JobNotFound', { headers: BOB });
    await expectError(t.srv, 'PATCH', `/jobs/${t.job.id}`, 400, 'NoDataForUpdate', { body: {} });
    await expectError(t.srv, 'PATCH', `/jobs/${t.job.id}`, 400, 'PropertyNotEditable', { body: { status: 'finished' } });
  }],

  ['an expired result link answers ResultLinkExpired (410)', async (t) => {
    await sleep((URL_TTL + 1.2) * 1000);
    const r = await fetch(t.resultHref);
    assertEq(r.status, 410);
    const body = await r.json();
    validate('error', body, 'expired link');
    assertEq(body.code, 'ResultLinkExpired');
  }],

  ['every response seen validated against the schemas', async () => {
    assert(checked > 40, `only ${checked} responses were checked`);
  }],
];

// Client errors carry the openEO code and message; say them.
const named = tests.map(([name, fn]) => [name, async (t) => {
  try { await fn(t); } catch (e) {
    if (e && e.code && e.config) throw new Error(`${e.code}: ${e.message} (${e.config.method} ${e.config.url})`);
    throw e;
  }
}]);

await run(named, {
  before: async () => ({ srv: await startServer({ config: CONFIG }) }),
  after: async (t) => t.srv.finish(),
});
