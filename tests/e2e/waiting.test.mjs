// Why is my job waiting? Through the native API of a real daemon, one
// waiting reason for each cause, on the job and on its tasks, in answers
// and in the job list: Held (created, suspended), Approval (with the
// policy's reason), Dependency, MaxParallelism, Resources (cpu, memory,
// gpu, max_tasks), Priority (behind the job that waits first); and no
// reason once the job runs.
import path from 'node:path';
import { TEST_USERS, assert, assertEq, nativeCall, run, sleep, startServer } from './lib.mjs';

const SITE = path.resolve('tests/e2e/site');
const CONFIG = `${TEST_USERS}
lua_path: [${SITE}]
node: {cpu: 2, memory: 1GiB, gpu: 1, max_tasks: 8}
surfaces:
  native: {approval: [hold]}
`;

const sleeper = (alias, extra = {}) => ({ alias, command: ['sleep', '30'], ...extra });
const quick = (alias, extra = {}) => ({ alias, command: ['true'], ...extra });

async function submit(srv, job) {
  const r = await nativeCall(srv, 'POST', '/jobs', job);
  assertEq(r.status, 201, JSON.stringify(r.body));
  return r.body;
}

async function until(srv, id, pred, what, ms = 10000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const j = (await nativeCall(srv, 'GET', `/jobs/${id}`)).body;
    if (pred(j)) return j;
    if (Date.now() > deadline) throw new Error(`job ${id}: never ${what}: ${JSON.stringify(j)}`);
    await sleep(50);
  }
}

const taskRuns = (alias) => (j) => j.tasks.find((t) => t.alias === alias).state === 'running';
const reasonOf = (x) => x && x.waiting && x.waiting.reason;

const tests = [
  ['Held: a job never started, and a suspended one', async ({ srv }) => {
    const created = await submit(srv, { title: 'created', tasks: [quick('a')] });
    assertEq([reasonOf(created), reasonOf(created.tasks[0])], ['Held', 'Held']);
    assert(created.waiting.message.includes('not started'), created.waiting.message);
    const got = (await nativeCall(srv, 'GET', `/jobs/${created.id}`)).body;
    assertEq(reasonOf(got), 'Held');
    const job = await submit(srv, { title: 'to suspend', start: true, tasks: [sleeper('a')] });
    await until(srv, job.id, taskRuns('a'), 'running');
    await nativeCall(srv, 'POST', `/jobs/${job.id}/suspend`);
    const s = await until(srv, job.id, (j) => j.state === 'suspended', 'suspended');
    assertEq(reasonOf(s), 'Held');
    assert(s.waiting.message.includes('suspended'), s.waiting.message);
  }],

  ['Approval: the policy\'s reason, on the job, its tasks and in the list', async ({ srv }) => {
    const job = await submit(srv, { title: 'held', start: true, labels: { hold: 'yes' }, tasks: [quick('a'), quick('b', { deps: ['a'] })] });
    assertEq(job.state, 'awaiting_approval');
    assertEq([reasonOf(job), reasonOf(job.tasks[0]), reasonOf(job.tasks[1])], ['Approval', 'Approval', 'Approval']);
    assert(job.waiting.message.includes('held for a Bacalhau approver'), job.waiting.message);
    const list = (await nativeCall(srv, 'GET', '/jobs?state=awaiting_approval')).body.jobs;
    assertEq(reasonOf(list.find((j) => j.id === job.id)), 'Approval');
  }],

  ['Dependency, MaxParallelism, Resources (cpu, gpu, memory) and Priority', async ({ srv, ids }) => {
    // Holds 1 of 2 cpus, the one gpu and half the memory.
    const holder = await submit(srv, {
      title: 'holder', start: true,
      tasks: [sleeper('h', { resources: { cpu: 1, memory: '512MiB', gpu: 1 } })],
    });
    ids.holder = holder.id;
    await until(srv, holder.id, taskRuns('h'), 'running');
    const dep = await submit(srv, { title: 'dep', start: true, tasks: [sleeper('a'), quick('b', { deps: ['a'] })] });
    const par = await submit(srv, { title: 'par', start: true, max_parallelism: 1, tasks: [sleeper('x'), sleeper('y')] });
    const cpu = await submit(srv, { title: 'cpu', start: true, priority: 10, tasks: [quick('c', { resources: { cpu: '1500m' } })] });
    ids.cpu = cpu.id;
    const gpu = await submit(srv, { title: 'gpu', start: true, priority: 5, tasks: [quick('g', { resources: { gpu: 1 } })] });
    const mem = await submit(srv, { title: 'mem', start: true, priority: 5, tasks: [quick('m', { resources: { memory: '768MiB' } })] });
    const low = await submit(srv, { title: 'low', start: true, tasks: [quick('p', { resources: { cpu: '1500m' } })] });

    const d = await until(srv, dep.id, taskRuns('a'), 'running a');
    assertEq(d.waiting, undefined, 'a job with a running task does not wait as a whole');
    assertEq(d.tasks[0].waiting, undefined);
    assertEq(d.tasks[1].waiting, { reason: 'Dependency', dependencies: ['a'], message: 'waits for task a' });
    const p = await until(srv, par.id, taskRuns('x'), 'running x');
    assertEq(reasonOf(p.tasks[1]), 'MaxParallelism');
    assert(p.tasks[1].waiting.message.includes('max_parallelism (1)'), p.tasks[1].waiting.message);

    const c = (await nativeCall(srv, 'GET', `/jobs/${cpu.id}`)).body;
    assertEq([c.state, c.waiting.reason, c.waiting.resources], ['queued', 'Resources', ['cpu']]);
    assertEq(c.tasks[0].waiting.resources, ['cpu']);
    assertEq((await nativeCall(srv, 'GET', `/jobs/${gpu.id}`)).body.waiting.resources, ['gpu']);
    assertEq((await nativeCall(srv, 'GET', `/jobs/${mem.id}`)).body.waiting.resources, ['memory']);
    const l = (await nativeCall(srv, 'GET', `/jobs/${low.id}`)).body;
    assertEq([l.waiting.reason, l.waiting.behind, l.waiting.resources], ['Priority', cpu.id, ['cpu']]);
    // The list says it too.
    const queued = (await nativeCall(srv, 'GET', '/jobs?state=queued')).body.jobs;
    assertEq(reasonOf(queued.find((j) => j.id === low.id)), 'Priority');
    assertEq(reasonOf(queued.find((j) => j.id === cpu.id)), 'Resources');
  }],

  ['once the resources are free the job runs and says nothing more', async ({ srv, ids }) => {
    await nativeCall(srv, 'POST', `/jobs/${ids.holder}/cancel`);
    const c = await until(srv, ids.cpu, (j) => j.state === 'succeeded', 'succeeded');
    assertEq([c.waiting, c.tasks[0].waiting], [undefined, undefined]);
  }],

  ['Resources: max_tasks, and Priority behind it', async () => {
    const one = await startServer({ config: `${TEST_USERS}\nnode: {max_tasks: 1}\n` });
    try {
      const first = await submit(one, { title: 'first', start: true, tasks: [sleeper('a')] });
      await until(one, first.id, taskRuns('a'), 'running');
      const next = await submit(one, { title: 'next', start: true, priority: 3, tasks: [quick('a')] });
      const after = await submit(one, { title: 'after', start: true, tasks: [quick('a')] });
      const n = (await nativeCall(one, 'GET', `/jobs/${next.id}`)).body;
      assertEq([n.waiting.reason, n.waiting.resources], ['Resources', ['max_tasks']]);
      assert(n.waiting.message.includes('node.max_tasks'), n.waiting.message);
      const a = (await nativeCall(one, 'GET', `/jobs/${after.id}`)).body;
      assertEq([a.waiting.reason, a.waiting.behind], ['Priority', next.id]);
      await nativeCall(one, 'POST', `/jobs/${first.id}/cancel`);
    } finally {
      await one.finish('daemon with one task slot exits 0');
    }
  }],
];

run(tests, {
  before: async () => ({ srv: await startServer({ config: CONFIG }), ids: {} }),
  after: async ({ srv }) => srv.finish(),
});
