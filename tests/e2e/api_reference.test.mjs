// The native API's OpenAPI document kept true: every route is called with
// real requests against a real daemon, successes and errors, and each
// answer's status must be listed for its operation and its body valid
// against the listed schema (ajv, JSON Schema 2020-12). At the end every
// operation must have been seen answering 2xx, and with an error where it
// lists one. (tests/lua/test_openapi.lua checks routes and model fields.)
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import Ajv2020 from 'ajv/dist/2020.js';
import { ADMIN, ALICE, TEST_USERS, assert, assertEq, freePort, run, sleep, startServer } from './lib.mjs';

const doc = JSON.parse(readFileSync(new URL('../../api/native/openapi.json', import.meta.url)));
const MOUNT = doc.servers[0].url;

// The document's schemas become one JSON Schema whose $defs the answers'
// schemas point into.
const rewrite = (v) => JSON.parse(JSON.stringify(v).replaceAll('"#/components/schemas/', '"jobrt#/$defs/'));
const ajv = new Ajv2020({ strict: true, allowUnionTypes: true, allErrors: true });
ajv.addSchema({ $id: 'jobrt', $defs: rewrite(doc.components.schemas) });
const compiled = new Map();
const validator = (schema) => {
  const key = JSON.stringify(schema);
  if (!compiled.has(key)) compiled.set(key, ajv.compile(rewrite(schema)));
  return compiled.get(key);
};

const seen = new Map(); // "get /jobs" -> Set of statuses

// The operation of a documented path template, or throws.
function operation(method, template) {
  const item = doc.paths[template];
  assert(item, `path ${template} is not in the document`);
  const op = item[method.toLowerCase()];
  assert(op, `${method} ${template} is not in the document`);
  return { item, op };
}

function check(method, template, status, ctype, body) {
  const { op } = operation(method, template);
  const where = `${method} ${template} -> ${status}`;
  let r = op.responses[String(status)];
  assert(r, `${where}: status not listed (listed: ${Object.keys(op.responses)}); body ${body.slice(0, 300)}`);
  if (r.$ref) r = doc.components.responses[r.$ref.split('/').pop()];
  const key = `${method.toLowerCase()} ${template}`;
  if (!seen.has(key)) seen.set(key, new Set());
  seen.get(key).add(status);
  if (!r.content) {
    assertEq(body, '', `${where}: no body documented`);
    return;
  }
  const media = (ctype || '').split(';')[0].trim();
  const c = r.content[media];
  assert(c, `${where}: Content-Type ${ctype} not listed (${Object.keys(r.content)})`);
  const validate = validator(c.schema);
  const values = media === 'application/json' ? [JSON.parse(body)]
    : media === 'application/x-ndjson' ? body.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l))
      : [body];
  for (const v of values) {
    if (!validate(v)) {
      throw new Error(`${where}: body does not match the document: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(v).slice(0, 600)}`);
    }
  }
}

// call(srv, method, template, {params, query, body, raw, headers}) -> {status, body, headers}
async function call(srv, method, template, { params = {}, query = '', body, raw, headers = ADMIN, ctype } = {}) {
  const { item } = operation(method, template);
  const root = item.servers && item.servers[0].url === '/';
  const path = template.replace(/\{(\w+)\}/g, (_, k) => encodeURIComponent(params[k]));
  const h = { ...headers };
  let payload;
  if (raw !== undefined) {
    payload = raw;
    h['Content-Type'] = ctype || 'application/json';
  } else if (body !== undefined) {
    payload = JSON.stringify(body);
    h['Content-Type'] = 'application/json';
  }
  const res = await fetch(`${srv.url}${root ? '' : MOUNT}${path}${query}`, { method, headers: h, body: payload, redirect: 'manual' });
  const text = await res.text();
  check(method, template, res.status, res.headers.get('content-type'), text);
  let parsed = null;
  try { parsed = text ? JSON.parse(text) : null; } catch { parsed = text; }
  return { status: res.status, body: parsed, headers: res.headers };
}

const quick = (extra = {}) => ({ title: 'quick', tasks: [{ alias: 'a', command: ['sh', '-c', 'echo out; echo err >&2'], resources: { cpu: '100m', memory: '64MiB' }, timeout: '30s' }], ...extra });
const long = (extra = {}) => ({ title: 'long', tasks: [{ alias: 'a', command: ['sleep', '30'] }, { alias: 'b', deps: ['a'], command: ['true'] }], ...extra });

async function until(srv, id, pred, ms = 15000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const r = await fetch(`${srv.url}${MOUNT}/jobs/${id}`, { headers: ADMIN });
    const j = await r.json();
    if (pred(j)) return j;
    if (Date.now() > deadline) throw new Error(`job ${id} still ${j.state} after ${ms} ms`);
    await sleep(50);
  }
}
const running = (j) => j.state === 'running' && j.tasks.some((t) => t.state === 'running');
const final = (j) => ['succeeded', 'failed', 'canceled'].includes(j.state);

const config = (registry) => `${TEST_USERS}
lua_path: [${new URL('site', import.meta.url).pathname}]
surfaces:
  native: {approval: [hold]}
images:
  registries: [{host: "127.0.0.1:${registry}", url: "http://127.0.0.1:${registry}"}]
`;

// A read-only registry of the OCI layout in dir (the distribution API's
// manifest and blob GETs), enough for a pull.
function layoutRegistry(dir) {
  const index = JSON.parse(readFileSync(path.join(dir, 'index.json')));
  return http.createServer((req, res) => {
    const m = req.url.match(/^\/v2\/[^]+\/(manifests|blobs)\/([^/?]+)$/);
    if (req.url === '/v2/') { res.writeHead(200); res.end('{}'); return; }
    if (!m) { res.writeHead(404); res.end(); return; }
    const digest = m[1] === 'manifests' && !m[2].startsWith('sha256:') ? index.manifests[0].digest : m[2];
    let body;
    try { body = readFileSync(path.join(dir, 'blobs', 'sha256', digest.slice(7))); } catch { res.writeHead(404); res.end(); return; }
    res.writeHead(200, { 'Content-Type': m[1] === 'manifests' ? index.manifests[0].mediaType : 'application/octet-stream',
      'Content-Length': body.length, 'Docker-Content-Digest': digest });
    res.end(body);
  });
}

const tests = [
  ['submit: 201 with the job, and its errors', async ({ srv, ids }) => {
    const r = await call(srv, 'POST', '/jobs', { body: quick({ start: true }) });
    assertEq(r.status, 201);
    ids.quick = r.body.id;
    assertEq((await call(srv, 'POST', '/jobs', { body: { tasks: [{ alias: 'a', comand: ['true'] }] } })).status, 400);
    assertEq((await call(srv, 'POST', '/jobs', { raw: '{"tasks": [' })).status, 400);
    assertEq((await call(srv, 'POST', '/jobs', { raw: 'x', ctype: 'text/plain' })).status, 415);
    assertEq((await call(srv, 'POST', '/jobs', { body: quick(), headers: {} })).status, 401);
    const fixed = await call(srv, 'POST', '/jobs', { body: quick({ id: 'fixed-id' }) });
    assertEq(fixed.status, 201);
    assertEq((await call(srv, 'POST', '/jobs', { body: quick({ id: 'fixed-id' }) })).status, 409);
    const done = await until(srv, ids.quick, final);
    assertEq(done.state, 'succeeded');
    check('GET', '/jobs/{job_id}', 200, 'application/json', JSON.stringify(done));
  }],

  ['list, get: answers and errors', async ({ srv, ids }) => {
    assertEq((await call(srv, 'GET', '/jobs', { query: '?limit=1' })).status, 200);
    assertEq((await call(srv, 'GET', '/jobs', { query: '?state=succeeded&surface=native' })).status, 200);
    assertEq((await call(srv, 'GET', '/jobs', { query: '?state=no-such!' })).status, 400);
    assertEq((await call(srv, 'GET', '/jobs', { query: '?limit=0' })).status, 400);
    assertEq((await call(srv, 'GET', '/jobs', { headers: ALICE })).status, 200);
    assertEq((await call(srv, 'GET', '/jobs/{job_id}', { params: { job_id: ids.quick } })).status, 200);
    assertEq((await call(srv, 'GET', '/jobs/{job_id}', { params: { job_id: 'nope' } })).status, 404);
    assertEq((await call(srv, 'GET', '/jobs/{job_id}', { params: { job_id: ids.quick }, headers: ALICE })).status, 404);
  }],

  ['update and delete: a created job changes, a running one is locked', async ({ srv, ids }) => {
    const created = (await call(srv, 'POST', '/jobs', { body: quick() })).body;
    const p = await call(srv, 'PATCH', '/jobs/{job_id}', { params: { job_id: created.id }, body: { title: 'renamed', labels: { k: 'v' } } });
    assertEq(p.status, 200);
    assertEq(p.body.title, 'renamed');
    assertEq((await call(srv, 'PATCH', '/jobs/{job_id}', { params: { job_id: created.id }, body: { titel: 'x' } })).status, 400);
    assertEq((await call(srv, 'PATCH', '/jobs/{job_id}', { params: { job_id: 'nope' }, body: { title: 'x' } })).status, 404);
    assertEq((await call(srv, 'DELETE', '/jobs/{job_id}', { params: { job_id: created.id } })).status, 204);
    assertEq((await call(srv, 'DELETE', '/jobs/{job_id}', { params: { job_id: created.id } })).status, 404);
    const busy = (await call(srv, 'POST', '/jobs', { body: long({ start: true }) })).body;
    ids.long = busy.id;
    await until(srv, busy.id, running);
    assertEq((await call(srv, 'PATCH', '/jobs/{job_id}', { params: { job_id: busy.id }, body: { title: 'x' } })).status, 409);
    assertEq((await call(srv, 'DELETE', '/jobs/{job_id}', { params: { job_id: busy.id } })).status, 409);
  }],

  ['transitions: start, suspend, restart, stop, cancel and their conflicts', async ({ srv, ids }) => {
    const id = ids.long;
    const job = { params: { job_id: id } };
    assertEq((await call(srv, 'POST', '/jobs/{job_id}/start', job)).status, 409); // running already
    assertEq((await call(srv, 'POST', '/jobs/{job_id}/start', { ...job, body: { reason: 'x' } })).status, 400);
    assertEq((await call(srv, 'POST', '/jobs/{job_id}/restart', job)).status, 409);
    assertEq((await call(srv, 'POST', '/jobs/{job_id}/suspend', { ...job, body: { reason: 'pause' } })).status, 200);
    // Its tasks are stopped first; then it is suspended, and may be restarted.
    await until(srv, id, (j) => j.state === 'suspended');
    assertEq((await call(srv, 'POST', '/jobs/{job_id}/restart', job)).status, 200);
    await until(srv, id, running);
    assertEq((await call(srv, 'POST', '/jobs/{job_id}/stop', { ...job, body: { reason: 'enough' } })).status, 200);
    await until(srv, id, final);
    assertEq((await call(srv, 'POST', '/jobs/{job_id}/stop', job)).status, 409);
    assertEq((await call(srv, 'POST', '/jobs/{job_id}/suspend', job)).status, 409);
    assertEq((await call(srv, 'POST', '/jobs/{job_id}/cancel', { ...job, body: { reason: 7 } })).status, 400);
    assertEq((await call(srv, 'POST', '/jobs/{job_id}/cancel', job)).status, 409);
    assertEq((await call(srv, 'POST', '/jobs/{job_id}/start', job)).status, 200);
    await until(srv, id, running);
    assertEq((await call(srv, 'POST', '/jobs/{job_id}/cancel', { ...job, body: { reason: 'done' } })).status, 200);
    assertEq((await call(srv, 'POST', '/jobs/{job_id}/suspend', { params: { job_id: 'nope' } })).status, 404);
    assertEq((await call(srv, 'POST', '/jobs/{job_id}/restart', { params: { job_id: 'nope' } })).status, 404);
    await until(srv, id, final);
  }],

  ['approve: an admin decides a held job; errors', async ({ srv }) => {
    const held = (await call(srv, 'POST', '/jobs', { body: quick({ start: true, labels: { hold: 'yes' } }) })).body;
    assertEq((await until(srv, held.id, (j) => j.state === 'awaiting_approval')).state, 'awaiting_approval');
    const job = { params: { job_id: held.id } };
    // Why it waits: the policy's reason, on the job and its task.
    const waiting = (await call(srv, 'GET', '/jobs/{job_id}', job)).body;
    assertEq([waiting.waiting.reason, waiting.tasks[0].waiting.reason], ['Approval', 'Approval']);
    assert(waiting.waiting.message.includes('held for a Bacalhau approver'), waiting.waiting.message);
    const listed = (await call(srv, 'GET', '/jobs', { query: '?state=awaiting_approval' })).body.jobs;
    assertEq(listed.find((j) => j.id === held.id).waiting.reason, 'Approval');
    assertEq((await call(srv, 'POST', '/jobs/{job_id}/approve', { ...job, body: { accept: true }, headers: ALICE })).status, 403);
    assertEq((await call(srv, 'POST', '/jobs/{job_id}/approve', { ...job, body: { accept: 'yes' } })).status, 400);
    const a = await call(srv, 'POST', '/jobs/{job_id}/approve', { ...job, body: { accept: true, reason: 'fine' } });
    assertEq(a.status, 200);
    await until(srv, held.id, final);
    check('GET', '/jobs/{job_id}', 200, 'application/json', JSON.stringify(await until(srv, held.id, final)));
    assertEq((await call(srv, 'POST', '/jobs/{job_id}/approve', { ...job, body: { accept: false } })).status, 409);
    const other = (await call(srv, 'POST', '/jobs', { body: quick({ start: true, labels: { hold: 'yes' } }) })).body;
    await until(srv, other.id, (j) => j.state === 'awaiting_approval');
    const rj = await call(srv, 'POST', '/jobs/{job_id}/approve', { params: { job_id: other.id }, body: { accept: false, reason: 'no' } });
    assertEq(rj.body.state, 'rejected');
    assertEq((await call(srv, 'POST', '/jobs/{job_id}/approve', { params: { job_id: 'nope' }, body: { accept: true } })).status, 404);
  }],

  ['logs and results', async ({ srv, ids }) => {
    const job = { params: { job_id: ids.quick } };
    const l = await call(srv, 'GET', '/jobs/{job_id}/logs', job);
    assert(l.body.logs.some((e) => e.message === 'out'), JSON.stringify(l.body));
    assertEq((await call(srv, 'GET', '/jobs/{job_id}/logs', { ...job, query: '?level=warn&limit=5&after=0' })).status, 200);
    assertEq((await call(srv, 'GET', '/jobs/{job_id}/logs', { ...job, query: '?after=x' })).status, 400);
    assertEq((await call(srv, 'GET', '/jobs/{job_id}/logs', { params: { job_id: 'nope' } })).status, 404);
    assertEq((await call(srv, 'GET', '/jobs/{job_id}/results', job)).status, 200);
    assertEq((await call(srv, 'GET', '/jobs/{job_id}/results', { params: { job_id: 'nope' } })).status, 404);
  }],

  ['tokens: issue, use, revoke; errors', async ({ srv }) => {
    const t = await call(srv, 'POST', '/tokens', { body: { ttl: '1h' } });
    assertEq(t.status, 201);
    assertEq((await call(srv, 'POST', '/tokens')).status, 201);
    assertEq((await call(srv, 'POST', '/tokens', { body: { ttl: 'soon' } })).status, 400);
    const bearer = { Authorization: `Bearer ${t.body.token}` };
    assertEq((await call(srv, 'GET', '/jobs', { headers: bearer })).status, 200);
    assertEq((await call(srv, 'DELETE', '/tokens/current', { headers: ADMIN })).status, 400);
    assertEq((await call(srv, 'DELETE', '/tokens/current', { headers: bearer })).status, 204);
    assertEq((await call(srv, 'GET', '/jobs', { headers: bearer })).status, 403);
  }],

  ['events: the stream is ndjson of events; admins only', async ({ srv }) => {
    const r = await call(srv, 'GET', '/events', { query: '?after=0&follow=0' });
    assertEq(r.status, 200);
    assertEq((await call(srv, 'GET', '/events', { query: '?after=x&follow=0' })).status, 400);
    assertEq((await call(srv, 'GET', '/events', { query: '?follow=0', headers: ALICE })).status, 403);
  }],

  ['the document itself and the dashboard files', async ({ srv }) => {
    const d = await call(srv, 'GET', '/openapi.json', { headers: {} });
    assertEq(d.body.openapi, '3.1.0');
    const etag = d.headers.get('etag');
    assertEq((await call(srv, 'GET', '/openapi.json', { headers: { 'If-None-Match': etag } })).status, 304);
    const redirect = await call(srv, 'GET', '/jobrt/ui', { headers: {} });
    assertEq([redirect.status, redirect.headers.get('location')], [308, '/jobrt/ui/']);
    const page = await fetch(`${srv.url}/jobrt/ui/`);
    const html = await page.text();
    check('GET', '/jobrt/ui', page.status, page.headers.get('content-type'), html);
    assert(page.headers.get('content-security-policy').includes("script-src 'self'"), 'a CSP');
    const js = await call(srv, 'GET', '/jobrt/ui/{file}', { params: { file: 'app.js' }, headers: {} });
    assertEq(js.headers.get('content-type'), 'text/javascript; charset=utf-8');
    assertEq((await call(srv, 'GET', '/jobrt/ui/{file}', { params: { file: 'app.js' }, headers: { 'If-None-Match': js.headers.get('etag') } })).status, 304);
    assertEq((await call(srv, 'GET', '/jobrt/ui/{file}', { params: { file: 'nope.js' }, headers: {} })).status, 404);
  }],

  ['images: list, import, pull, remove, gc; errors', async ({ srv, dir, registry }) => {
    assertEq((await call(srv, 'GET', '/images')).status, 200);
    assertEq((await call(srv, 'GET', '/images', { headers: ALICE })).status, 403);
    const archive = path.join(dir, 'bb.tar');
    const i = await call(srv, 'POST', '/images/import', { body: { path: archive, name: 'ref:1' } });
    assertEq(i.status, 201, JSON.stringify(i.body));
    assertEq((await call(srv, 'POST', '/images/import', { body: { path: 'relative.tar' } })).status, 400);
    assertEq((await call(srv, 'POST', '/images/import', { body: { path: '/no/such.tar', name: 'x:1' } })).status, 404);
    const p = await call(srv, 'POST', '/images/pull', { body: { ref: `127.0.0.1:${registry}/bb:1`, name: 'pulled:1' } });
    assertEq(p.status, 201, JSON.stringify(p.body));
    assertEq((await call(srv, 'POST', '/images/pull', { body: {} })).status, 400);
    const l = await call(srv, 'GET', '/images');
    assertEq(l.body.images.map((x) => x.name), ['pulled:1', 'ref:1']);
    assertEq((await call(srv, 'DELETE', '/images', { query: '?name=pulled:1' })).status, 204);
    assertEq((await call(srv, 'DELETE', '/images', { query: '?name=nosuch:1' })).status, 404);
    assertEq((await call(srv, 'POST', '/images/gc')).status, 200);
  }],

  ['metrics: an admin reads them, others are refused', async ({ srv }) => {
    const m = await call(srv, 'GET', '/jobrt/metrics');
    assertEq(m.status, 200);
    assert(m.body.includes('jobrt_job_submissions_total{surface="native"}'), m.body.slice(0, 500));
    assertEq(m.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
    assertEq((await call(srv, 'GET', '/jobrt/metrics', { headers: {} })).status, 401);
    assertEq((await call(srv, 'GET', '/jobrt/metrics', { headers: ALICE })).status, 403);
  }],

  ['every operation was seen answering 2xx, and an error where it lists one', async () => {
    const missing = [];
    for (const [template, item] of Object.entries(doc.paths)) {
      for (const [m, op] of Object.entries(item)) {
        if (!['get', 'post', 'put', 'patch', 'delete'].includes(m)) continue;
        const got = seen.get(`${m} ${template}`) || new Set();
        if (![...got].some((s) => s >= 200 && s < 300)) missing.push(`${m} ${template}: no 2xx`);
        const errors = Object.keys(op.responses).filter((s) => /^4/.test(s) && s !== '401' && s !== '403');
        if (errors.length && ![...got].some((s) => s >= 400)) missing.push(`${m} ${template}: no error (lists ${errors})`);
      }
    }
    assertEq(missing, []);
  }],
];

run(tests, {
  before: async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'jobrt-apiref-'));
    const py = new URL('oci_image.py', import.meta.url).pathname;
    spawnSync('python3', [py, 'oci', path.join(dir, 'bb.tar'), '1']);
    spawnSync('python3', [py, 'layout', path.join(dir, 'layout')]);
    const reg = layoutRegistry(path.join(dir, 'layout'));
    const registry = await freePort();
    await new Promise((r) => reg.listen(registry, '127.0.0.1', r));
    return { srv: await startServer({ config: config(registry) }), ids: {}, dir, reg, registry };
  },
  after: async ({ srv, dir, reg }) => {
    reg.close();
    rmSync(dir, { recursive: true, force: true });
    return srv.finish();
  },
});
