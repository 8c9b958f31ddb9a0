// The openEO surface goes through the shared submission pipeline: its
// strict check, and its `surfaces.openeo.approval` policies deciding when
// a batch job is started.
// A rejected job is openEO `error` with the reason in its logs; a held one
// is `queued` until an admin approves it through the native API. The quota
// policy counts an owner's active jobs through the policies' core view.
import { ADMIN, ALICE, TEST_USERS, assert, assertEq, run, sleep, startServer } from './lib.mjs';

const ADD = { process_graph: { a: { process_id: 'add', arguments: { x: 1, y: 2 }, result: true } } };

const config = (approval, plugins) => `
log: {level: warn}
${TEST_USERS}
plugins:
${plugins}
surfaces:
  openeo: {approval: [${approval}]}
  native: {approval: [${approval}]}
`;

async function call(srv, method, p, headers = ALICE, body) {
  const h = { ...headers };
  if (body !== undefined) h['Content-Type'] = 'application/json';
  const r = await fetch(`${srv.url}${p}`, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  return { status: r.status, headers: r.headers, body: text ? JSON.parse(text) : null };
}

async function createJob(srv, title) {
  const r = await call(srv, 'POST', '/openeo/1.2/jobs', ALICE, { title, process: ADD });
  assertEq(r.status, 201, JSON.stringify(r.body));
  return r.headers.get('openeo-identifier');
}

async function waitStatus(srv, id, want, ms = 20000) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    last = (await call(srv, 'GET', `/openeo/1.2/jobs/${id}`)).body;
    if (want.includes(last.status)) return last;
    await sleep(50);
  }
  throw new Error(`job ${id} is ${last && last.status}, wanted ${want}`);
}

const tests = [
  ['openEO: a job a policy rejects is `error`, with the reason in its logs and results', async () => {
    const srv = await startServer({ config: config('quota', '  quota: {use: approve.quota, max_active: 0, over: reject}') });
    try {
      // The pipeline's strict check holds for openEO documents too.
      const long = await call(srv, 'POST', '/openeo/1.2/jobs', ALICE, { title: 'x'.repeat(300), process: ADD });
      assertEq([long.status, long.body.code], [400, 'ProcessInvalid']);
      assertEq(long.body.message, 'title: longer than limits.title (256 bytes)');
      const id = await createJob(srv, 'refused');
      assertEq((await call(srv, 'GET', `/openeo/1.2/jobs/${id}`)).body.status, 'created', 'not asked before start');
      assertEq((await call(srv, 'POST', `/openeo/1.2/jobs/${id}/results`)).status, 202);
      const job = (await call(srv, 'GET', `/openeo/1.2/jobs/${id}`)).body;
      assertEq(job.status, 'error');
      const reason = 'alice has 0 jobs queued or running (the quota is 0)';
      const logs = (await call(srv, 'GET', `/openeo/1.2/jobs/${id}/logs`)).body.logs;
      assert(logs.some((l) => l.level === 'error' && l.message.includes(reason)), JSON.stringify(logs));
      const results = await call(srv, 'GET', `/openeo/1.2/jobs/${id}/results`);
      assertEq(results.status, 424);
      assert(results.body.message.includes(reason), JSON.stringify(results.body));
      // The core saw the same decision.
      const core = (await call(srv, 'GET', `/jobrt/v1/jobs/${id}`, ADMIN)).body;
      assertEq([core.state, core.surface, core.error], ['rejected', 'openeo', reason]);
    } finally {
      await srv.finish('daemon with an openEO rejecting policy exits 0');
    }
  }],

  ['openEO: a held job is `queued` and runs once an admin approves it (native API)', async () => {
    const srv = await startServer({ config: config('review', '  review: {use: approve.manual}') });
    try {
      const id = await createJob(srv, 'held');
      assertEq((await call(srv, 'POST', `/openeo/1.2/jobs/${id}/results`)).status, 202);
      await sleep(200);
      assertEq((await call(srv, 'GET', `/openeo/1.2/jobs/${id}`)).body.status, 'queued');
      assertEq((await call(srv, 'GET', `/jobrt/v1/jobs/${id}`, ADMIN)).body.state, 'awaiting_approval');
      const logs = (await call(srv, 'GET', `/openeo/1.2/jobs/${id}/logs`)).body.logs;
      assert(logs.some((l) => l.message.includes('awaiting approval (review')), JSON.stringify(logs));
      assertEq((await call(srv, 'POST', `/jobrt/v1/jobs/${id}/approve`, ALICE, { accept: true })).status, 403);
      const ok = await call(srv, 'POST', `/jobrt/v1/jobs/${id}/approve`, ADMIN, { accept: true });
      assertEq(ok.status, 200, JSON.stringify(ok.body));
      await waitStatus(srv, id, ['finished']);
      const results = await call(srv, 'GET', `/openeo/1.2/jobs/${id}/results`);
      assertEq(results.status, 200);
      // An admin's rejection is an openEO error too, with the admin's reason.
      const other = await createJob(srv, 'held, then refused');
      await call(srv, 'POST', `/openeo/1.2/jobs/${other}/results`);
      await call(srv, 'POST', `/jobrt/v1/jobs/${other}/approve`, ADMIN, { accept: false, reason: 'not today' });
      assertEq((await call(srv, 'GET', `/openeo/1.2/jobs/${other}`)).body.status, 'error');
      const r2 = await call(srv, 'GET', `/openeo/1.2/jobs/${other}/results`);
      assert(r2.body.message.includes('not today'), JSON.stringify(r2.body));
    } finally {
      await srv.finish('daemon with an openEO manual policy exits 0');
    }
  }],

  ['a quota policy counts the owner\'s queued and running jobs through its core view', async () => {
    const srv = await startServer({ config: config('quota', '  quota: {use: approve.quota, max_active: 1, over: wait}') });
    try {
      const slow = { title: 'slow', start: true, tasks: [{ alias: 'a', command: ['sleep', '30'] }] };
      const first = await call(srv, 'POST', '/jobrt/v1/jobs', ALICE, slow);
      assertEq(first.status, 201, JSON.stringify(first.body));
      assert(['queued', 'running'].includes(first.body.state), first.body.state);
      const second = await call(srv, 'POST', '/jobrt/v1/jobs', ALICE, slow);
      assertEq(second.body.state, 'awaiting_approval');
      const logs = (await call(srv, 'GET', `/jobrt/v1/jobs/${second.body.id}/logs`, ALICE)).body.logs;
      assert(logs.some((l) => l.message.includes('alice has 1 jobs queued or running (the quota is 1)')),
        JSON.stringify(logs));
      // Someone else's jobs do not count against alice's.
      const admins = await call(srv, 'POST', '/jobrt/v1/jobs', ADMIN, slow);
      assert(['queued', 'running'].includes(admins.body.state), admins.body.state);
      for (const j of [first, second, admins]) {
        await call(srv, 'POST', `/jobrt/v1/jobs/${j.body.id}/cancel`, ADMIN);
      }
    } finally {
      await srv.finish('daemon with a quota policy exits 0');
    }
  }],
];

run(tests);
