// Helpers for the Kuscia end-to-end tests: a jobrt whose Kuscia surface has
// a token, the domains alice and bob, app images that print what a party
// sees, nap, sleep until stopped or fail, and a holding approval policy; a
// client that POSTs JSON with the Token header over node:http; a watch
// client that splits Kuscia's concatenated JSON objects as they arrive; the
// seed's examples (kuscia-seed/) and a field-by-field comparison with them.
import http from 'node:http';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { assert, assertEq, nativeCall, sleep, startServer } from './lib.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));

export const TOKEN = 'kuscia-e2e-token-4b1f9c0e7d2a';
export const PREFIX = '/api/v1/job';
export const ADMIN = { Authorization: `Basic ${Buffer.from('admin:admin').toString('base64')}` };
export const CAROL = { Authorization: `Basic ${Buffer.from('carol:carol').toString('base64')}` };
// The sleeper's party processes carry this in their command line, so a test
// can see from /proc whether they run.
export const SLEEP_MARK = 'kuscia-e2e-sleeper';

// The app images of the test deployment. secretflow-image (the seed's)
// prints the party's view: its domain, role, job and task ids, the task
// input config from the environment and from the file.
export const APP_IMAGES = {
  'secretflow-image': {
    image: 'host',
    command: ['sh', '-c', 'echo "party domain=$KUSCIA_DOMAIN_ID role=$KUSCIA_ROLE job=$KUSCIA_JOB_ID task=$KUSCIA_TASK_ID";'
      + ' printf "env=%s\\n" "$TASK_INPUT_CONFIG"; printf "file="; cat /inputs/task_input_config.json; echo'],
  },
  nap: { image: 'host', command: ['sh', '-c', 'echo "nap $KUSCIA_DOMAIN_ID"; sleep 0.4'] },
  sleeper: {
    image: 'host',
    command: ['sh', '-c', `echo "sleeping $KUSCIA_DOMAIN_ID"; exec sh -c "sleep 600; :" "${SLEEP_MARK}-$KUSCIA_JOB_ID-$KUSCIA_DOMAIN_ID"`],
  },
  failer: { image: 'host', command: ['sh', '-c', 'echo "failing on purpose in $KUSCIA_DOMAIN_ID" >&2; exit 3'] },
  sized: {
    image: 'host',
    command: ['sh', '-c', 'echo "sized $KUSCIA_DOMAIN_ID"'],
    resources: { cpu: '100m', memory: '64MiB' },
  },
};

export function kusciaConfig({ approval = ['kuscia_hold'], extra = '' } = {}) {
  return `
log: {level: warn}
sandbox: {images: {host: /}}
lua_path: [${JSON.stringify(HERE)}]
users:
  admin: {password: admin, roles: [admin]}
  carol: {password: carol, roles: [user]}
plugins:
  kuscia_hold: {use: site.kuscia_hold}
surfaces:
  kuscia:
    tokens: [${JSON.stringify(TOKEN)}]
    domains: [alice, bob]
    approval: ${JSON.stringify(approval)}
    app_images: ${JSON.stringify(APP_IMAGES)}
${extra}`;
}

export const startKuscia = (opts) => startServer({ config: kusciaConfig(opts) });

// One HTTP request with node:http: the body is a string sent as is or an
// object sent as JSON. {status, headers, text, body (parsed JSON or null)}.
export function request(srv, method, p, body, headers = {}) {
  const data = body === undefined ? undefined : (typeof body === 'string' ? body : JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1', port: srv.port, method, path: p, agent: false,
      headers: data === undefined ? headers : { 'Content-Length': Buffer.byteLength(data), ...headers },
    }, (res) => {
      const parts = [];
      res.on('data', (d) => parts.push(d));
      res.on('end', () => {
        const text = Buffer.concat(parts).toString('utf8');
        let json = null;
        try { json = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
        resolve({ status: res.statusCode, headers: res.headers, text, body: json });
      });
      res.on('error', reject);
    });
    req.setTimeout(30000, () => req.destroy(new Error(`${method} ${p}: no answer within 30 s`)));
    req.on('error', reject);
    req.end(data);
  });
}

// POST to /api/v1/job/<route> with the Token header (token: null sends
// none) and Content-Type application/json.
export function kpost(srv, route, body, { token = TOKEN, headers = {} } = {}) {
  const h = { 'Content-Type': 'application/json', ...headers };
  if (token !== null) h.Token = token;
  return request(srv, 'POST', `${PREFIX}/${route}`, body, h);
}

const show = (r) => `HTTP ${r.status} ${r.text.slice(0, 700)}`;

// A call that must succeed: HTTP 200, status {code 0, message "success"};
// its data.
export async function ok(srv, route, body) {
  const r = await kpost(srv, route, body);
  assertEq(r.status, 200, `${route}: ${show(r)}`);
  assert(r.body && r.body.status, `${route}: a JSON answer with status: ${show(r)}`);
  assertEq([r.body.status.code, r.body.status.message], [0, 'success'], `${route} ${JSON.stringify(body).slice(0, 200)}: ${show(r)}`);
  return r.body.data;
}

// A call that must be refused with Kuscia's code: HTTP 200, status.code,
// a message (matching `like` when given), data null or absent.
export async function refused(srv, route, body, code, like) {
  const r = await kpost(srv, route, body);
  const what = `${route} ${typeof body === 'string' ? body.slice(0, 200) : JSON.stringify(body).slice(0, 200)}`;
  assertEq(r.status, 200, `${what}: HTTP status (errors travel in status.code): ${show(r)}`);
  assert(r.body && r.body.status, `${what}: a JSON answer with status: ${show(r)}`);
  assertEq(r.body.status.code, code, `${what}: status.code; answer ${show(r)}`);
  assert(typeof r.body.status.message === 'string' && r.body.status.message !== '' && r.body.status.message !== 'success',
    `${what}: an error message: ${show(r)}`);
  if (like) assert(like.test(r.body.status.message), `${what}: message should match ${like}: ${r.body.status.message}`);
  assert(r.body.data === null || r.body.data === undefined, `${what}: data null on error: ${show(r)}`);
  return r.body.status;
}

let counter = 0;
// A fresh job id: an RFC 1123 label, unique across runs.
export function freshId(prefix = 'job') {
  counter += 1;
  return `${prefix}-${Date.now().toString(36)}-${process.pid.toString(36)}-${counter}`;
}

// A Kuscia task with parties in the given domains (role "partner").
export function task(alias, appImage, { deps = [], parties = ['alice', 'bob'], ...rest } = {}) {
  return {
    alias, app_image: appImage, dependencies: deps,
    parties: parties.map((d) => ({ domain_id: d, role: 'partner' })),
    task_input_config: rest.task_input_config ?? `{"alias":"${alias}"}`,
    ...rest,
  };
}

export const job = (id, tasks, extra = {}) => ({ job_id: id, initiator: 'alice', max_parallelism: 1, tasks, ...extra });

export async function create(srv, req) {
  const data = await ok(srv, 'create', req);
  assertEq(data, { job_id: req.job_id ?? req.jobId }, 'create answers data {job_id}');
  return data.job_id;
}

export const query = (srv, id) => ok(srv, 'query', { job_id: id });

// Poll query until the job's state is one of `want` (and `until`, given the
// data, holds); bounded. The last query's data.
export async function waitState(srv, id, want, { ms = 30000, until } = {}) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    last = await query(srv, id);
    if (want.includes(last.status.state) && (!until || until(last))) return last;
    if (Date.now() > deadline) {
      throw new Error(`job ${id} is ${last.status.state} after ${ms} ms, wanted ${want.join('|')}: ` +
        JSON.stringify(last.status).slice(0, 1500));
    }
    await sleep(100);
  }
}

export const taskStatus = (data, alias) => {
  const t = data.status.tasks.find((x) => x.alias === alias);
  assert(t, `task ${alias} in status.tasks: ${JSON.stringify(data.status.tasks.map((x) => x.alias))}`);
  return t;
};

// The party processes of a job's task running now (from /proc): the
// domains whose sleeper has `job` in its command line.
export function sleepers(jobId) {
  const found = [];
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    let cmd;
    try { cmd = readFileSync(`/proc/${pid}/cmdline`, 'latin1'); } catch { continue; }
    const m = cmd.split('\0').find((a) => a.startsWith(`${SLEEP_MARK}-${jobId}-`));
    if (m) found.push(m.slice(`${SLEEP_MARK}-${jobId}-`.length));
  }
  return found.sort();
}

// Wait until the sleepers of a job are exactly `domains`; bounded.
export async function waitSleepers(jobId, domains, ms = 20000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const now = sleepers(jobId);
    if (JSON.stringify(now) === JSON.stringify([...domains].sort())) return now;
    if (Date.now() > deadline) throw new Error(`sleepers of ${jobId}: ${JSON.stringify(now)}, wanted ${JSON.stringify(domains)}`);
    await sleep(50);
  }
}

// The native API's view (admin): the job, its tasks of one Kuscia task
// (their group), its logs.
export async function nativeJob(srv, id) {
  const r = await nativeCall(srv, 'GET', `/jobs/${encodeURIComponent(id)}`, undefined, ADMIN);
  assertEq(r.status, 200, `native GET /jobs/${id}: ${JSON.stringify(r.body)}`);
  return r.body;
}
export const partyTasks = (nj, alias) => nj.tasks.filter((t) => t.group === alias);
export async function nativeLogs(srv, id) {
  const r = await nativeCall(srv, 'GET', `/jobs/${encodeURIComponent(id)}/logs?limit=1000`, undefined, ADMIN);
  assertEq(r.status, 200, `native logs of ${id}: ${JSON.stringify(r.body)}`);
  return r.body.logs;
}

// RFC 3339 date-time as Kuscia writes it (metav1.Time: seconds, UTC "Z").
export const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/;
export const time = (s, what) => {
  assert(RFC3339.test(s), `${what}: an RFC 3339 time, got ${JSON.stringify(s)}`);
  return Date.parse(s);
};

// ---------------------------------------------------------------------------
// The seed's examples

export const seedText = (name) => readFileSync(path.join(HERE, 'kuscia-seed', name), 'utf8');
export const seedJson = (name) => JSON.parse(seedText(name));
export const SEED_ID = 'job-alice-bob-001';
// A seed request exactly as written but for the job id.
export function seedRequest(name, id) {
  const text = seedText(name);
  assert(text.includes(`"${SEED_ID}"`), `${name} names ${SEED_ID}`);
  return text.split(`"${SEED_ID}"`).join(JSON.stringify(id));
}

const kind = (v) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);

// Compare an answer with the seed's example of it, field by field: every
// field the seed shows is there with the same JSON type (null stays null,
// arrays are compared element by element with the seed's first element),
// and every name is snake_case. Values are compared by the callers.
export function sameShape(seed, got, where = '$') {
  assertEq(kind(got), kind(seed), `${where}: JSON type (seed ${JSON.stringify(seed)?.slice(0, 80)}, got ${JSON.stringify(got)?.slice(0, 200)})`);
  if (kind(seed) === 'object') {
    for (const k of Object.keys(got)) assert(/^[a-z][a-z0-9_]*$/.test(k), `${where}: field name ${k} is not snake_case`);
    for (const k of Object.keys(seed)) {
      assert(k in got, `${where}.${k}: missing (the seed shows ${JSON.stringify(seed[k]).slice(0, 80)}); got fields ${Object.keys(got).join(', ')}`);
      sameShape(seed[k], got[k], `${where}.${k}`);
    }
  } else if (kind(seed) === 'array' && seed.length > 0) {
    got.forEach((g, i) => sameShape(seed[0], g, `${where}[${i}]`));
  }
}

// ---------------------------------------------------------------------------
// Watch: concatenated JSON objects, no separator

// Splits a stream of concatenated JSON objects into their texts as they
// complete; `rest` keeps an unfinished one, `stray` anything seen between
// objects (Kuscia sends nothing there, not even a newline).
export class JsonSplitter {
  constructor() { this.buf = ''; this.stray = ''; }
  push(text) {
    const out = [];
    let depth = 0, inStr = false, esc = false, start = -1;
    const s = this.buf + text;
    let consumed = 0;
    for (let i = 0; i < s.length; i++) {
      const ch = s[i];
      if (inStr) {
        if (esc) esc = false;
        else if (ch === '\\') esc = true;
        else if (ch === '"') inStr = false;
        continue;
      }
      if (depth === 0) {
        if (ch === '{') { start = i; depth = 1; } else { this.stray += ch; consumed = i + 1; }
        continue;
      }
      if (ch === '"') inStr = true;
      else if (ch === '{' || ch === '[') depth++;
      else if (ch === '}' || ch === ']') {
        depth--;
        if (depth === 0) { out.push(s.slice(start, i + 1)); consumed = i + 1; }
      }
    }
    this.buf = s.slice(consumed);
    return out;
  }
}

// Open a watch: POST /api/v1/job/watch with `body`. The handle collects
// frames {value, raw, at (ms since the watch opened)} and the raw stream,
// and offers next(pred, ms) (the first frame at or after `from` that
// matches), ended (resolves when the server ends the answer) and close().
export function watch(srv, body = {}, { token = TOKEN } = {}) {
  const data = typeof body === 'string' ? body : JSON.stringify(body);
  const h = { frames: [], raw: '', status: null, headers: null, endedAt: null, opened: Date.now(), waiters: [] };
  const headers = { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) };
  if (token !== null) headers.Token = token;
  const splitter = new JsonSplitter();
  const wake = () => { const w = h.waiters; h.waiters = []; w.forEach((f) => f()); };
  let resolveEnded;
  h.ended = new Promise((r) => { resolveEnded = r; });
  h.response = new Promise((resolve, reject) => {
    h.req = http.request({ host: '127.0.0.1', port: srv.port, method: 'POST', path: `${PREFIX}/watch`, headers, agent: false }, (res) => {
      h.status = res.statusCode;
      h.headers = res.headers;
      res.setEncoding('utf8');
      resolve(h);
      res.on('data', (chunk) => {
        const at = Date.now() - h.opened;
        h.raw += chunk;
        for (const raw of splitter.push(chunk)) {
          let value;
          try { value = JSON.parse(raw); } catch (e) { value = { unparsable: raw, error: String(e) }; }
          h.frames.push({ value, raw, at });
        }
        wake();
      });
      const end = () => { if (h.endedAt === null) { h.endedAt = Date.now() - h.opened; wake(); resolveEnded(h); } };
      res.on('end', end);
      res.on('close', end);
      res.on('error', end);
    });
    h.req.on('error', (e) => { h.error = e; if (h.status === null) reject(e); else { h.endedAt ??= Date.now() - h.opened; wake(); resolveEnded(h); } });
    h.req.end(data);
  });
  h.stray = () => splitter.stray + splitter.buf;
  h.close = () => h.req.destroy();
  // The first frame at index >= from whose value satisfies pred; bounded.
  h.next = async (pred, ms = 15000, from = 0) => {
    const deadline = Date.now() + ms;
    for (let i = from; ; ) {
      for (; i < h.frames.length; i++) if (pred(h.frames[i].value)) return { ...h.frames[i], index: i };
      if (h.endedAt !== null) throw new Error(`watch ended after ${h.frames.length} frames without the one wanted: ${h.raw.slice(-1500)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no such watch frame within ${ms} ms; frames: ${h.raw.slice(-1500)}`);
      await new Promise((r) => { const t = setTimeout(r, left); h.waiters.push(() => { clearTimeout(t); r(); }); });
    }
  };
  return h;
}

// A watch frame for a job: {type?, object: {job_id, status}}.
export const frameOf = (id, type) => (v) => v.object && v.object.job_id === id && (v.type ?? 0) === type;

// Go encoding/json with omitempty: no field holds a zero value ("", 0,
// false, [], {} or null) anywhere in the frame. Returns the offending paths.
export function zeroFields(v, where = '$') {
  const bad = [];
  if (Array.isArray(v)) v.forEach((x, i) => bad.push(...zeroFields(x, `${where}[${i}]`)));
  else if (v && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) {
      const p = `${where}.${k}`;
      if (x === '' || x === 0 || x === false || x === null
        || (Array.isArray(x) && x.length === 0)
        || (x && typeof x === 'object' && !Array.isArray(x) && Object.keys(x).length === 0)) bad.push(p);
      else bad.push(...zeroFields(x, p));
    }
  }
  return bad;
}
