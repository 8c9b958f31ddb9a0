// End-to-end tests of the native API (/jobrt/v1) against a real jobrt: the
// job lifecycle over HTTP, refused transitions, listing with keyset cursors,
// logs, the event stream and the error shape.
import { ADMIN, TEST_USERS, assert, assertEq, run, sleep, startServer } from './lib.mjs';

const CONFIG = `
node: {cpu: 2, memory: 1GiB, max_tasks: 4}
log: {level: warn}
${TEST_USERS}`;

async function call(srv, method, path, body) {
  const r = await fetch(`${srv.url}/jobrt/v1${path}`, {
    method,
    headers: body === undefined ? { ...ADMIN } : { ...ADMIN, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

async function waitState(srv, id, want, ms = 10000) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    last = (await call(srv, 'GET', `/jobs/${id}`)).body;
    if (want.includes(last.state)) return last;
    await sleep(20);
  }
  throw new Error(`job ${id} is ${last && last.state}, wanted ${want}`);
}

const tests = [
  ['submit, run and read a DAG job', async ({ srv }) => {
    const r = await call(srv, 'POST', '/jobs', {
      title: 'dag', start: true, labels: { team: 'x' },
      tasks: [
        { alias: 'a', command: ['sh', '-c', 'echo from-a'], resources: { cpu: '500m', memory: '16MiB' } },
        { alias: 'b', deps: ['a'], command: ['sh', '-c', 'echo warn-b >&2'], timeout: '10s' },
      ],
    });
    assertEq(r.status, 201, JSON.stringify(r.body));
    assertEq(r.body.surface, 'native');
    assertEq(r.body.tasks[0].resources.cpu, 500);
    assertEq(r.body.tasks[0].resources.memory, 16 * 1024 * 1024);
    assertEq(r.body.tasks[1].timeout, 10);
    const job = await waitState(srv, r.body.id, ['succeeded', 'failed']);
    assertEq(job.state, 'succeeded');
    assertEq(job.labels, { team: 'x' });
    assertEq(job.tasks.map((t) => t.state), ['succeeded', 'succeeded']);
    const logs = await call(srv, 'GET', `/jobs/${r.body.id}/logs?level=warn`);
    assertEq(logs.body.logs.map((l) => l.message), ['warn-b']);
    const all = await call(srv, 'GET', `/jobs/${r.body.id}/logs`);
    assertEq(all.body.logs.length, 2);
  }],

  ['refused at submit: unknown dep, cycle, too large', async ({ srv }) => {
    let r = await call(srv, 'POST', '/jobs', { tasks: [{ alias: 'a', command: ['true'], deps: ['zz'] }] });
    assertEq(r.status, 400);
    assertEq(r.body.code, 'BadRequest');
    assert(r.body.message.includes("unknown task 'zz'"), r.body.message);
    r = await call(srv, 'POST', '/jobs', { tasks: [
      { alias: 'a', command: ['true'], deps: ['b'] }, { alias: 'b', command: ['true'], deps: ['a'] }] });
    assertEq(r.status, 400);
    assert(r.body.message.includes('cycle'), r.body.message);
    r = await call(srv, 'POST', '/jobs', { tasks: [{ alias: 'a', command: ['true'], resources: { memory: '64GiB' } }] });
    assertEq(r.status, 400);
    assert(r.body.message.includes('needs memory'), r.body.message);
    r = await call(srv, 'POST', '/jobs', { tasks: [{ alias: 'a', command: ['true'], resources: { cpu: 'lots' } }] });
    assertEq(r.status, 400);
    r = await fetch(`${srv.url}/jobrt/v1/jobs`, {
      method: 'POST', headers: { ...ADMIN, 'Content-Type': 'application/json' }, body: '{bad' });
    assertEq(r.status, 400);
    assertEq((await r.json()).code, 'BadRequest');
  }],

  ['transitions and refusals over HTTP', async ({ srv }) => {
    const r = await call(srv, 'POST', '/jobs', { id: 'life-1', tasks: [{ alias: 'a', command: ['sleep', '30'] }] });
    assertEq(r.status, 201);
    const again = await call(srv, 'POST', '/jobs', { id: 'life-1', tasks: [{ alias: 'a', command: ['true'] }] });
    assertEq([again.status, again.body.code], [409, 'Conflict']);
    assertEq((await call(srv, 'POST', '/jobs/life-1/restart')).body.code, 'Conflict');
    assertEq((await call(srv, 'POST', '/jobs/life-1/restart')).status, 409);
    assertEq((await call(srv, 'POST', '/jobs/life-1/suspend')).status, 409);
    assertEq((await call(srv, 'PATCH', '/jobs/life-1', { title: 'renamed', priority: 3 })).body.title, 'renamed');
    assertEq((await call(srv, 'POST', '/jobs/life-1/start')).status, 200);
    await waitState(srv, 'life-1', ['running']);
    const locked = await call(srv, 'PATCH', '/jobs/life-1', { title: 'no' });
    assertEq(locked.status, 409);
    assertEq(locked.body.code, 'Locked');
    assertEq((await call(srv, 'DELETE', '/jobs/life-1')).body.code, 'Locked');
    assertEq((await call(srv, 'POST', '/jobs/life-1/start')).status, 409);
    const s = await call(srv, 'POST', '/jobs/life-1/suspend');
    assertEq(s.body.state, 'suspended');
    // the killed task is canceled once it exited; then the job can resume
    const deadline = Date.now() + 30000;
    let st;
    do {
      st = await call(srv, 'POST', '/jobs/life-1/start');
      if (st.status === 200) break;
      await sleep(20);
    } while (Date.now() < deadline);
    assertEq(st.status, 200, JSON.stringify(st.body));
    await waitState(srv, 'life-1', ['running']);
    assertEq((await call(srv, 'POST', '/jobs/life-1/cancel')).body.state, 'canceled');
    // Deletable once its killed task has exited (seconds on a loaded machine).
    const gone = Date.now() + 30000;
    let del;
    do {
      del = await call(srv, 'DELETE', '/jobs/life-1');
      if (del.status === 204) break;
      await sleep(50);
    } while (Date.now() < gone);
    assertEq(del.status, 204, JSON.stringify(del.body));
    assertEq((await call(srv, 'GET', '/jobs/life-1')).status, 404);
  }],

  ['approval hold and release', async ({ srv }) => {
    await call(srv, 'POST', '/jobs', { id: 'ap-1', tasks: [{ alias: 'a', command: ['true'] }] });
    // the core holds a job when asked; the native surface has no policy, so
    // it is driven here through a job started with hold by jobs.lua tests;
    // over HTTP, approve on a job that does not await approval is refused
    const r = await call(srv, 'POST', '/jobs/ap-1/approve', { accept: true });
    assertEq(r.status, 409);
    const yes = await call(srv, 'POST', '/jobs/ap-1/approve', { yes: 1 });
    assertEq([yes.status, yes.body.code], [400, 'BadRequest']);
    assert(yes.body.message.startsWith('yes: unknown field'), yes.body.message);
  }],

  ['list with filters and keyset pages', async ({ srv }) => {
    for (let i = 0; i < 7; i++) {
      await call(srv, 'POST', '/jobs', { id: `page-${i}`, owner: 'pager', tasks: [{ alias: 'a', command: ['true'] }] });
    }
    const seen = [];
    let after = '';
    for (let n = 0; n < 10; n++) {
      const r = await call(srv, 'GET', `/jobs?owner=pager&limit=3${after ? `&after=${after}` : ''}`);
      assertEq(r.status, 200);
      seen.push(...r.body.jobs.map((j) => j.id));
      if (!r.body.next) break;
      after = r.body.next;
    }
    assertEq(seen, ['page-0', 'page-1', 'page-2', 'page-3', 'page-4', 'page-5', 'page-6']);
    const created = await call(srv, 'GET', '/jobs?state=created&owner=pager&limit=100');
    assertEq(created.body.jobs.length, 7);
    assertEq((await call(srv, 'GET', '/jobs?state=bogus')).status, 400);
    for (const q of ['limit=0', 'limit=-1', 'limit=1e3', 'limit=0x10', 'after=x', 'limit=99999999999999999999']) {
      const bad = await call(srv, 'GET', `/jobs?${q}`);
      assertEq([bad.status, bad.body.code], [400, 'BadRequest'], q);
      assert(bad.body.message.startsWith(q.split('=')[0] + ': must be an integer'), bad.body.message);
    }
  }],

  ['event stream from a sequence number', async ({ srv }) => {
    const r = await call(srv, 'POST', '/jobs', { id: 'ev-1', start: true, tasks: [{ alias: 'a', command: ['true'] }] });
    assertEq(r.status, 201);
    await waitState(srv, 'ev-1', ['succeeded']);
    const res = await fetch(`${srv.url}/jobrt/v1/events?after=0&follow=0`, { headers: ADMIN });
    const lines = (await res.text()).split('\n').filter(Boolean).map((l) => JSON.parse(l));
    const mine = lines.filter((e) => e.job === 'ev-1').map((e) => `${e.task || 'job'}:${e.state}`);
    assertEq(mine, ['job:created', 'job:queued', 'a:ready', 'a:running', 'job:running',
      'a:succeeded', 'job:succeeded']);
    for (let i = 1; i < lines.length; i++) assert(lines[i].seq > lines[i - 1].seq);
    // following: a new event arrives on an open stream
    const last = lines[lines.length - 1].seq;
    const ctrl = new AbortController();
    const stream = await fetch(`${srv.url}/jobrt/v1/events?after=${last}`, { headers: ADMIN, signal: ctrl.signal });
    const reader = stream.body.getReader();
    await call(srv, 'POST', '/jobs', { id: 'ev-2', tasks: [{ alias: 'a', command: ['true'] }] });
    const { value } = await reader.read();
    const ev = JSON.parse(new TextDecoder().decode(value).split('\n')[0]);
    assertEq([ev.job, ev.state], ['ev-2', 'created']);
    ctrl.abort();
  }],
  ['SIGTERM ends an open event stream instead of waiting out the shutdown grace', async () => {
    const own = await startServer({ config: `log: {level: warn}\nlimits: {shutdown_grace: 120s}\n${TEST_USERS}` });
    try {
      const res = await fetch(`${own.url}/jobrt/v1/events`, { headers: ADMIN });
      assertEq(res.status, 200);
      const reader = res.body.getReader();
      // Killed with SIGKILL if still there after 20 s (the grace is 120 s).
      const { code, signal } = await own.stop('SIGTERM', 20000);
      assertEq([code, signal], [0, null]);
      let done = false;
      for (let i = 0; i < 1000 && !done; i++) ({ done } = await reader.read());
      assert(done, 'the stream ended');
    } finally {
      await own.stop('SIGKILL');
      own.cleanup();
    }
  }],
];

run(tests, {
  before: async () => ({ srv: await startServer({ config: CONFIG }) }),
  after: async ({ srv }) => { await srv.stop(); srv.cleanup(); },
});
