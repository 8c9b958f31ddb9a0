// Structured logs (`log: {format: json}`) against a real daemon: every line
// it writes is one JSON object with time, level and message; a request's id
// (the client's X-Request-Id when it is a sane one, else one of the
// daemon's) comes back on every answer and is on each line written while
// that request was handled: the access line with its surface, principal,
// job, status and path, a policy's line, a failing handler's line; a
// request the server itself refuses (malformed) gets an id of the server's.
import path from 'node:path';
import { ADMIN, RawClient, TEST_USERS, assert, assertEq, run, sleep, startServer } from './lib.mjs';

const SITE = path.resolve('tests/e2e/site');
const CONFIG = `${TEST_USERS}
lua_path: [${SITE}]
log: {format: json}
plugins:
  noisy: {use: e2e.noisy}
surfaces:
  native: {approval: [noisy]}
  probe: {module: e2e.probe, mount: /probe}
`;

const TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

// Every line of the log, parsed; a line that is not one JSON object fails.
function lines(srv) {
  return srv.logs().split('\n').filter((l) => l !== '').map((l) => {
    let v;
    try { v = JSON.parse(l); } catch (e) { throw new Error(`not JSON: ${l}`); }
    assert(v && typeof v === 'object' && !Array.isArray(v), `not an object: ${l}`);
    return v;
  });
}

// The lines of request id, once its access line is there (bounded wait).
async function linesOf(srv, id) {
  for (let i = 0; i < 200; i++) {
    const mine = lines(srv).filter((l) => l.request_id === id);
    if (mine.some((l) => l.status !== undefined)) return mine;
    await sleep(20);
  }
  throw new Error(`no access line for ${id}:\n${srv.logs().slice(-3000)}`);
}

const submit = (srv, headers = {}) => fetch(`${srv.url}/jobrt/v1/jobs`, {
  method: 'POST',
  headers: { ...ADMIN, 'Content-Type': 'application/json', ...headers },
  body: JSON.stringify({ title: 'logged', tasks: [{ alias: 'a', command: ['true'] }], start: true }),
});

const tests = [
  ['every line is one JSON object with time, level and message', async ({ srv }) => {
    const all = lines(srv);
    assert(all.length >= 2, 'start-up lines');
    for (const l of all) {
      assert(TIME.test(l.time), `time: ${JSON.stringify(l)}`);
      assert(['debug', 'info', 'warn', 'error'].includes(l.level), `level: ${JSON.stringify(l)}`);
      assertEq(typeof l.message, 'string');
    }
    assert(all.some((l) => l.message.startsWith('listening on http://127.0.0.1:')), 'the listening line');
  }],

  ['the client\'s request id is echoed and on every line of its request', async ({ srv }) => {
    const r = await submit(srv, { 'X-Request-Id': 'trace-42.a' });
    assertEq(r.status, 201);
    assertEq(r.headers.get('x-request-id'), 'trace-42.a');
    const job = await r.json();
    const mine = await linesOf(srv, 'trace-42.a');
    const access = mine.find((l) => l.status !== undefined);
    assertEq([access.level, access.surface, access.principal, access.job, access.method, access.path, access.status],
      ['info', 'native', 'tester', job.id, 'POST', '/jobrt/v1/jobs', 201]);
    assertEq(access.message.startsWith('POST /jobrt/v1/jobs -> 201 ('), true, access.message);
    assertEq(typeof access.duration_ms, 'number');
    // The policy ran while the request was handled: its line carries the id too.
    const policy = mine.find((l) => l.message === 'native: noisy policy looked at logged');
    assert(policy, `the policy's line: ${JSON.stringify(mine)}`);
    assertEq([policy.surface, policy.principal], ['native', 'tester']);
    // No secret on any line.
    assert(!srv.logs().includes('tester-password') && !srv.logs().includes(ADMIN.Authorization.split(' ')[1]),
      'a credential in the log');
  }],

  ['without a sane id of the client\'s, the daemon makes one, echoed and logged', async ({ srv }) => {
    const ids = [];
    for (const h of [{}, { 'X-Request-Id': 'has spaces in it' }, { 'X-Request-Id': 'x'.repeat(65) }]) {
      const r = await fetch(`${srv.url}/jobrt/v1/jobs?limit=1`, { headers: { ...ADMIN, ...h } });
      assertEq(r.status, 200);
      const id = r.headers.get('x-request-id');
      assert(/^[0-9a-f]+-[0-9a-f]+$/.test(id), `a daemon's id: ${id}`);
      ids.push(id);
      assertEq((await linesOf(srv, id)).find((l) => l.status).path, '/jobrt/v1/jobs?limit=1');
    }
    assertEq(new Set(ids).size, 3, 'each request its own');
  }],

  ['errors too: unknown paths, refused credentials, a failing handler', async ({ srv }) => {
    const cases = [
      [`${srv.url}/jobrt/v1/nowhere`, ADMIN, 404],
      [`${srv.url}/jobrt/v1/jobs`, {}, 401],
      [`${srv.url}/probe/raise`, {}, 500],
    ];
    for (const [i, [url, headers, status]] of cases.entries()) {
      const id = `err-${i}`;
      const r = await fetch(url, { headers: { ...headers, 'X-Request-Id': id } });
      assertEq([r.status, r.headers.get('x-request-id')], [status, id]);
      const mine = await linesOf(srv, id);
      assertEq(mine.find((l) => l.status).status, status);
      if (status === 500) {
        const failed = mine.find((l) => l.level === 'error');
        assert(failed && failed.message.includes('handler failed') && failed.message.includes('boom'),
          JSON.stringify(mine));
        assertEq(failed.surface, 'probe');
      }
    }
  }],

  ['a request the server refuses before routing gets an id of its own, on its line too', async ({ srv }) => {
    const c = new RawClient(srv.port);
    await c.connect();
    c.send('GET /jobrt/healthz HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n');
    const r = await c.response();
    c.close();
    assertEq(r.status, 400);
    const id = r.headers['x-request-id'];
    assert(/^[0-9a-f]+-c[0-9a-f]+$/.test(id || ''), `an id: ${id}`);
    let line;
    for (let i = 0; i < 100 && !line; i++) {
      line = lines(srv).find((l) => l.request_id === id);
      if (!line) await sleep(20);
    }
    assert(line && line.message.includes(' 400 '), JSON.stringify(line));
  }],
];

run(tests, {
  before: async () => ({ srv: await startServer({ config: CONFIG }) }),
  after: async ({ srv }) => {
    // The shutdown lines are JSON as well.
    await srv.stop();
    let ok = true;
    try { lines(srv); } catch (e) { ok = false; console.error(e.message); }
    console.log(`${ok ? 'ok' : 'not ok'} - the lines up to the daemon's exit are JSON`);
    return srv.finish();
  },
});
