// Strict input on the native API: unknown fields anywhere in a job are
// named with the closest known name, types are checked, every size limit
// refuses with its key, a job needs a task, and bodies must be JSON (415).
import { ADMIN, TEST_USERS, assert, assertEq, nativeCall, run, runJob, startServer } from './lib.mjs';

const CONFIG = `
log: {level: warn}
${TEST_USERS}`;

async function call(srv, method, p, body, contentType = 'application/json') {
  const headers = { ...ADMIN };
  if (contentType) headers['Content-Type'] = contentType;
  const r = await fetch(`${srv.url}/jobrt/v1${p}`, {
    method, headers, body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

const task = (extra = {}) => ({ alias: 'a', command: ['true'], ...extra });
const job = (extra = {}) => ({ title: 't', tasks: [task()], ...extra });

// POST the job; it must be refused 400 BadRequest with exactly message.
async function refused(srv, body, message, method = 'POST', p = '/jobs') {
  const r = await call(srv, method, p, body);
  assertEq(r.status, 400, `${JSON.stringify(body).slice(0, 200)}: ${JSON.stringify(r.body)}`);
  assertEq(r.body.code, 'BadRequest');
  assertEq(r.body.message, message);
}

const x = (n) => 'x'.repeat(n);

const tests = [
  ['an unknown field in a job or a task is named with the closest known name', async ({ srv }) => {
    await refused(srv, job({ titel: 'x' }), 'titel: unknown field (did you mean "title"?)');
    await refused(srv, job({ tasks: [task({ comand: ['true'] })] }),
      'tasks[0].comand: unknown field (did you mean "command"?)');
    await refused(srv, job({ tasks: [task(), task({ alias: 'b', resources: { cpus: 1 } })] }),
      'tasks[1].resources.cpus: unknown field (did you mean "cpu"?)');
    await refused(srv, job({ tasks: [task({ network: { mod: 'none' } })] }),
      'tasks[0].network.mod: unknown field (did you mean "mode"?)');
    await refused(srv, job({ tasks: [task({ inputs: [{ source: 'inline', data: 'x' }, { soruce: 'inline' }] })] }),
      'tasks[0].inputs[1].soruce: unknown field (did you mean "source"?); tasks[0].inputs[1].source: missing (required)');
    await refused(srv, job({ tasks: [task({ outputs: [{ nmae: 'o' }] })] }),
      'tasks[0].outputs[0].name: missing (required); tasks[0].outputs[0].nmae: unknown field (did you mean "name"?)');
    const far = await call(srv, 'POST', '/jobs', job({ zzzzzz: 1 }));
    assertEq(far.status, 400);
    assert(far.body.message.startsWith('zzzzzz: unknown field (known: budget, description, doc, id, labels,'),
      far.body.message);
    await refused(srv, job({ state: 'succeeded' }), 'state: read-only (set by the runtime)');
    // Nothing was stored by the refusals.
    const list = await call(srv, 'GET', '/jobs?limit=1000', undefined, null);
    assertEq(list.body.jobs.length, 0);
  }],

  ['types are checked', async ({ srv }) => {
    await refused(srv, job({ title: 5 }), 'title: must be a string, got a number');
    await refused(srv, job({ labels: 'team' }), 'labels: must be an object of strings, got a string');
    await refused(srv, job({ labels: { team: 1 } }), 'labels.team: must be a string, got a number');
    await refused(srv, job({ priority: 1.5 }), 'priority: must be an integer, got a number with a fraction');
    await refused(srv, job({ priority: '3' }), 'priority: must be an integer, got a string');
    await refused(srv, job({ max_parallelism: -1 }), 'max_parallelism: must be at least 0');
    await refused(srv, job({ tasks: { a: 1 } }), 'tasks: must be a list, got an object');
    await refused(srv, job({ tasks: ['a'] }), 'tasks[0]: must be an object, got a string');
    await refused(srv, job({ tasks: [task({ tolerable: 'yes' })] }), 'tasks[0].tolerable: must be true or false, got a string');
    await refused(srv, job({ tasks: [task({ command: ['echo', 1] })] }), 'tasks[0].command[1]: must be a string, got a number');
    await refused(srv, job({ tasks: [task({ env: { 'A=B': 'x' } })] }), 'tasks[0].env["A=B"]: not a valid name');
    await refused(srv, job({ tasks: [task({ network: { mode: 'ful' } })] }),
      'tasks[0].network.mode: must be one of none, full, allow (did you mean "full"?)');
    await refused(srv, job({ tasks: [{ command: ['true'] }] }), 'tasks[0].alias: missing (required)');
    await refused(srv, job({ tasks: [task({ resources: { cpu: 'lots' } })] }),
      'tasks[0].resources.cpu: invalid cpu "lots": expected cores ("2", "0.5") or millicores ("500m")');
    await refused(srv, [1, 2], 'the body must be a JSON object');
    // Several problems are reported together.
    await refused(srv, job({ title: 5, tasks: [task({ comand: 'x' })] }),
      'tasks[0].comand: unknown field (did you mean "command"?); title: must be a string, got a number');
  }],

  ['every size limit refuses with its key (defaults)', async ({ srv }) => {
    const labels = (n) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, 'v']));
    await refused(srv, job({ title: x(257) }), 'title: longer than limits.title (256 bytes)');
    await refused(srv, job({ description: x(16 * 1024 + 1) }), 'description: longer than limits.description (16384 bytes)');
    await refused(srv, job({ labels: { [x(64)]: 'v' } }), `labels.${x(64)}: longer than limits.label_key (63 bytes)`);
    await refused(srv, job({ labels: { k: x(257) } }), 'labels.k: longer than limits.label_value (256 bytes)');
    await refused(srv, job({ labels: labels(65) }), 'labels: more than limits.labels (64 entries)');
    const env = (n) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`E${i}`, 'v']));
    await refused(srv, job({ tasks: [task({ env: env(129) })] }), 'tasks[0].env: more than limits.env (128 entries)');
    await refused(srv, job({ tasks: [task({ env: { V: x(32 * 1024 + 1) } })] }),
      'tasks[0].env.V: longer than limits.env_value (32768 bytes)');
    const tasks = Array.from({ length: 1001 }, (_, i) => task({ alias: `t${i}` }));
    await refused(srv, job({ tasks }), 'tasks: more than limits.tasks (1000 entries)');
    await refused(srv, job({ tasks: [task({ inputs: [{ source: 'inline', data: x(1024 * 1024 + 1) }] })] }),
      'tasks[0].inputs[0].data: longer than limits.inline_input (1048576 bytes)');
    await refused(srv, job({ tasks: [task({ command: Array(4097).fill('a') })] }),
      'tasks[0].command: more than limits.argv (4096 entries)');
    // At the limit is fine.
    const ok = await call(srv, 'POST', '/jobs', job({ title: x(256), labels: labels(64),
      tasks: [task({ env: { V: x(32 * 1024) }, command: Array(4096).fill('a') })] }));
    assertEq(ok.status, 201, JSON.stringify(ok.body).slice(0, 300));
    assertEq(ok.body.title.length, 256);
  }],

  ['an environment at its limits reaches the task whole', async ({ srv }) => {
    const env = Object.fromEntries(Array.from({ length: 127 }, (_, i) => [`E${i}`, `v${i}`]));
    env.BIG = x(32 * 1024);
    // A network allow-list adds the proxy variables too.
    const done = await runJob(srv, { title: 'env', tasks: [task({
      command: ['sh', '-c', 'echo "${#BIG} $E0 $E126"'], env, network: { mode: 'allow', domains: ['example.org'] } })] });
    assertEq(done.state, 'succeeded', `${done.tasks[0].error}`);
    const logs = (await nativeCall(srv, 'GET', `/jobs/${done.id}/logs`)).body.logs.map((l) => l.message);
    assertEq(logs, ['32768 v0 v126']);
  }],

  ['a job needs at least one task', async ({ srv }) => {
    await refused(srv, { title: 'empty', tasks: [] }, 'tasks: a job needs at least one task');
    await refused(srv, { title: 'none' }, 'tasks: a job needs at least one task');
  }],

  ['PATCH is as strict as POST', async ({ srv }) => {
    const r = await call(srv, 'POST', '/jobs', job({ id: 'patch-1' }));
    assertEq(r.status, 201);
    await refused(srv, { titel: 'x' }, 'titel: unknown field (did you mean "title"?)', 'PATCH', '/jobs/patch-1');
    await refused(srv, { tasks: [] }, 'tasks: a job needs at least one task', 'PATCH', '/jobs/patch-1');
    await refused(srv, { title: x(300) }, 'title: longer than limits.title (256 bytes)', 'PATCH', '/jobs/patch-1');
    await refused(srv, { id: 'other' }, 'id: cannot be changed after submit', 'PATCH', '/jobs/patch-1');
    await refused(srv, { owner: 'x' }, 'owner: read-only (set by the runtime)', 'PATCH', '/jobs/patch-1');
    const ok = await call(srv, 'PATCH', '/jobs/patch-1', { title: 'renamed', labels: { a: 'b' } });
    assertEq([ok.status, ok.body.title, ok.body.labels], [200, 'renamed', { a: 'b' }]);
  }],

  ['the small bodies (transitions, approve, tokens) are strict too', async ({ srv }) => {
    assertEq((await call(srv, 'POST', '/jobs', job({ id: 'small-1' }))).status, 201);
    await refused(srv, { why: 'x' }, 'why: unknown field (the body is {"reason": "..."})', 'POST', '/jobs/small-1/cancel');
    await refused(srv, { reason: 5 }, 'reason: must be a string', 'POST', '/jobs/small-1/cancel');
    await refused(srv, { now: true }, 'now: unknown field (the body is empty for start)', 'POST', '/jobs/small-1/start');
    await refused(srv, { accept: true, by: 'me' },
      'by: unknown field (the body is {"accept": true|false, "reason": "..."})', 'POST', '/jobs/small-1/approve');
    await refused(srv, { tll: '1h' }, 'tll: unknown field (the body is {"ttl": "1h"})', 'POST', '/tokens');
    const c = await call(srv, 'POST', '/jobs/small-1/cancel', { reason: 'not needed' });
    assertEq([c.status, c.body.state], [200, 'canceled']);
  }],

  ['a body that is not JSON is 415', async ({ srv }) => {
    const text = JSON.stringify(job());
    for (const ct of ['text/plain', 'application/x-www-form-urlencoded', 'application/jsonx', null]) {
      const r = await call(srv, 'POST', '/jobs', text, ct);
      assertEq([r.status, r.body.code], [415, 'UnsupportedMediaType'], String(ct));
      assert(r.body.message.includes('application/json'), r.body.message);
    }
    const p = await call(srv, 'POST', '/jobs', job({ id: 'ct-1' }));
    assertEq(p.status, 201);
    assertEq((await call(srv, 'PATCH', '/jobs/ct-1', '{"title":"x"}', 'text/plain')).status, 415);
    assertEq((await call(srv, 'POST', '/jobs/ct-1/cancel', '{"reason":"x"}', 'text/plain')).status, 415);
    // JSON with parameters, a +json type, and bodiless POSTs are fine.
    assertEq((await call(srv, 'PATCH', '/jobs/ct-1', '{"title":"y"}', 'application/json; charset=utf-8')).status, 200);
    assertEq((await call(srv, 'PATCH', '/jobs/ct-1', '{"title":"z"}', 'application/merge-patch+json')).status, 200);
    const start = await fetch(`${srv.url}/jobrt/v1/jobs/ct-1/start`, { method: 'POST', headers: ADMIN });
    assertEq(start.status, 200);
  }],
];

run(tests, {
  before: async () => ({ srv: await startServer({ config: CONFIG }) }),
  after: async ({ srv }) => srv.finish('daemon with strict input exits 0'),
});
