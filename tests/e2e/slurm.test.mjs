// The Slurm executor against a real Slurm: tools/slurm/up.sh starts a
// throwaway one-node cluster (its own munged, slurmctld, slurmd) in a temp
// folder, jobrt runs with executor.backend slurm on it, and the tests check
// what jobrt reports against what Slurm itself says (squeue and sacct -c
// output captured by the test): a two-task DAG as two Slurm jobs in order,
// a failure's exit code, a timeout and cancels (a job of its own and steps
// of a batch) reported as such with nothing left running, a burst of 200
// tiny tasks through a few batched allocations. Needs root (slurmd) and the
// slurm-wlm and munge packages (`make slurm-deps`, which `make test` runs).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ADMIN, TEST_USERS, assert, assertEq, nativeCall, run, runJob, sleep, startServer } from './lib.mjs';

if (process.getuid() !== 0) {
  console.log('skip - slurm executor tests # need root (slurmd runs the jobs)');
  process.exit(0);
}

const call = nativeCall;
const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const UP = path.join(ROOT, 'tools/slurm/up.sh');
const DOWN = path.join(ROOT, 'tools/slurm/down.sh');
// A marker in the long tasks' commands, to find them among the processes.
const MARK = `59.${process.pid % 1000}`;

function slurm(ctx, cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 30000,
    env: { ...process.env, SLURM_CONF: ctx.conf } });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

// Slurm's view of every job: name -> {id, state, exit}, from squeue (young
// jobs) and the jobcomp file (sacct -c), printed into the test log.
function slurmJobs(ctx, label) {
  const q = slurm(ctx, 'squeue', ['-h', '-t', 'all', '-O', 'JobID:|,Name:|,State:|,exit_code:|']);
  const a = slurm(ctx, 'sacct', ['-c', '-P', '-n', '-o', 'JobID,JobName,State,ExitCode,Start,End']);
  console.log(`# ${label}: squeue\n${q.trim().split('\n').map((l) => '#   ' + l).join('\n')}`);
  const jobs = {};
  for (const line of a.trim().split('\n').filter(Boolean)) {
    const [id, name, state, exit, start, end] = line.split('|');
    jobs[name] = { id: Number(id), state: state.split(' ')[0], exit, start, end };
  }
  for (const line of q.trim().split('\n').filter(Boolean)) {
    const [id, name, state] = line.split('|').map((s) => s.trim());
    jobs[name] = { ...(jobs[name] || {}), id: Number(id), state };
  }
  return jobs;
}

// A task attempt's Slurm job is named jobrt-<task>-<job>-<attempt>-<random>.
function named(jobs, prefix) {
  const names = Object.keys(jobs).filter((n) => n.startsWith(`${prefix}-`));
  assert(names.length <= 1, `one Slurm job named ${prefix}-*: ${names}`);
  return names.length ? jobs[names[0]] : undefined;
}

function sacctLines(ctx, prefixes) {
  const a = slurm(ctx, 'sacct', ['-c', '-P', '-n', '-o', 'JobID,JobName,State,ExitCode,Start,End']);
  const lines = a.trim().split('\n').filter((l) => prefixes.some((n) => l.includes(`|${n}-`)));
  console.log(`# sacct -c\n${lines.map((l) => '#   ' + l).join('\n')}`);
  return lines;
}

function leftovers() {
  const found = [];
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cmd.includes(`sleep ${MARK}`)) found.push(`${pid}: ${cmd}`);
    } catch { /* gone */ }
  }
  return found;
}

async function waitFor(what, fn, ms = 30000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

async function logsOf(srv, id) {
  const out = [];
  for (let after = '';;) {
    const page = (await call(srv, 'GET', `/jobs/${id}/logs?limit=500${after}`)).body;
    out.push(...page.logs.map((l) => `${l.task}: ${l.message}`));
    if (page.logs.length < 500) return out;
    after = `&after=${page.next}`;
  }
}

async function settled(srv, id, ms = 30000) {
  return waitFor(`${id} to settle`, async () => {
    const j = (await call(srv, 'GET', `/jobs/${id}`)).body;
    return j.tasks.every((t) => !['running', 'ready', 'pending'].includes(t.state)) &&
      ['succeeded', 'failed', 'canceled'].includes(j.state) ? j : null;
  }, ms);
}

const tests = [
  ['what only the sandbox gives is refused at submit, naming the field', async ({ srv }) => {
    let r = await call(srv, 'POST', '/jobs', { tasks: [{ alias: 'a', command: ['true'], image: 'alpine' }] });
    assertEq(r.status, 400, JSON.stringify(r.body));
    assert(/task 'a': image: the slurm executor/.test(JSON.stringify(r.body)), JSON.stringify(r.body));
    r = await call(srv, 'POST', '/jobs', { tasks: [{ alias: 'b', command: ['true'],
      inputs: [{ source: 'inline', data: 'x', target: '/inputs/x' }] }] });
    assertEq(r.status, 400);
    assert(/task 'b': inputs:/.test(JSON.stringify(r.body)), JSON.stringify(r.body));
    r = await call(srv, 'POST', '/jobs', { tasks: [{ alias: 'c', command: ['true'], network: { mode: 'none' } }] });
    assertEq(r.status, 400);
    assert(/task 'c': network:/.test(JSON.stringify(r.body)), JSON.stringify(r.body));
  }],

  ['a two-task DAG runs as two Slurm jobs, the second after the first', async (ctx) => {
    const { srv } = ctx;
    const j = await runJob(srv, { id: 'dag', tasks: [
      { alias: 'make', command: ['sh', '-c', 'echo "from $SLURM_JOB_ID" > "$JOBRT_OUTPUTS/part"; echo made'] },
      { alias: 'use', deps: ['make'], command: ['sh', '-c', 'cat ../../make/outputs/part >/dev/null && echo used; echo note >&2'] },
    ] }, 40000);
    assertEq(j.state, 'succeeded', JSON.stringify(j.tasks));
    assertEq(await logsOf(srv, 'dag'), ['make: made', 'use: used', 'use: note']);
    const jobs = slurmJobs(ctx, 'after the DAG');
    const made = named(jobs, 'jobrt-make-dag-1'), used = named(jobs, 'jobrt-use-dag-1');
    assert(made && used, `both tasks are Slurm jobs: ${JSON.stringify(Object.keys(jobs))}`);
    assertEq([made.state, used.state], ['COMPLETED', 'COMPLETED']);
    // The first task's output names its own Slurm job.
    const part = fs.readFileSync(path.join(srv.data, 'jobs/dag/make/outputs/part'), 'utf8');
    assertEq(part, `from ${made.id}\n`);
    const lines = sacctLines(ctx, ['jobrt-make-dag-1', 'jobrt-use-dag-1']);
    assertEq(lines.length, 2);
    assert(made.end <= used.start, `use started ${used.start}, after make ended ${made.end}`);
  }],

  ['a failing task reports its exit code, as Slurm does', async (ctx) => {
    const j = await runJob(ctx.srv, { id: 'fail', tasks: [
      { alias: 'bad', resources: { cpu: '1500m' }, command: ['sh', '-c', 'echo trying; exit 3'] },
    ] }, 40000);
    const t = j.tasks[0];
    assertEq([j.state, t.state, t.outcome, t.exit_code, t.error], ['failed', 'failed', 'exited', 3, 'exit code 3']);
    const s = named(slurmJobs(ctx, 'after the failure'), 'jobrt-bad-fail-1');
    assertEq([s.state, s.exit], ['FAILED', '3:0']);
  }],

  ['a timeout is reported as timeout and its Slurm job ends', async (ctx) => {
    const started = Date.now();
    const j = await runJob(ctx.srv, { id: 'slow', tasks: [
      { alias: 'nap', timeout: '2s', resources: { cpu: '1500m' },
        command: ['sh', '-c', `echo napping; exec sleep ${MARK}`] },
    ] }, 40000);
    const t = j.tasks[0];
    assertEq([t.state, t.outcome], ['failed', 'timeout'], JSON.stringify(t));
    assert(/timed out after 2s/.test(t.error), t.error);
    assert(Date.now() - started < 30000, 'ends near its timeout');
    assertEq(await logsOf(ctx.srv, 'slow'), ['nap: napping', "nap: task 'nap' failed: timed out after 2s"]);
    const s = await waitFor('the Slurm job to end', () => {
      const x = named(slurmJobs(ctx, 'after the timeout'), 'jobrt-nap-slow-1');
      return x && x.state !== 'RUNNING' && x.state !== 'COMPLETING' ? x : null;
    });
    assertEq(s.state, 'FAILED');
    assertEq(leftovers(), []);
  }],

  ['a cancel of a running task is reported as canceled and scancels its job', async (ctx) => {
    const { srv } = ctx;
    let r = await call(srv, 'POST', '/jobs', { id: 'cx', start: true, tasks: [
      { alias: 'long', resources: { cpu: '1500m' }, command: ['sh', '-c', `echo started; exec sleep ${MARK}`] },
    ] });
    assertEq(r.status, 201);
    await waitFor('the task to start in Slurm', async () => (await logsOf(srv, 'cx')).includes('long: started'));
    r = await call(srv, 'POST', '/jobs/cx/cancel');
    assertEq(r.status, 200, JSON.stringify(r.body));
    const j = await settled(srv, 'cx');
    assertEq([j.state, j.tasks[0].state, j.tasks[0].outcome], ['canceled', 'canceled', 'canceled']);
    const s = named(slurmJobs(ctx, 'after the cancel'), 'jobrt-long-cx-1');
    assertEq(s.state, 'CANCELLED');
    await waitFor('the task processes to go', () => leftovers().length === 0, 15000);
  }],

  ['a cancel reaches the steps of a batch, started or not', async (ctx) => {
    const { srv } = ctx;
    // Three small tasks released together share one allocation, two steps
    // at a time: two run, the third waits for a slot.
    const tasks = ['x', 'y', 'z'].map((a) => ({ alias: a, command: ['sh', '-c', `echo ${a}; exec sleep ${MARK}`] }));
    let r = await call(srv, 'POST', '/jobs', { id: 'bx', start: true, tasks });
    assertEq(r.status, 201);
    await waitFor('two steps to run', async () => (await logsOf(srv, 'bx')).length === 2);
    r = await call(srv, 'POST', '/jobs/bx/cancel');
    assertEq(r.status, 200);
    const j = await settled(srv, 'bx');
    assertEq(j.tasks.map((t) => [t.state, t.outcome]), [['canceled', 'canceled'], ['canceled', 'canceled'], ['canceled', 'canceled']]);
    const jobs = slurmJobs(ctx, 'after the batch cancel');
    const batches = Object.keys(jobs).filter((n) => n.startsWith('jobrt-batch-'));
    assert(batches.length >= 1, 'the three ran as one batch');
    await waitFor('the steps to go', () => leftovers().length === 0, 15000);
    // The third never started: its wrapper saw the cancel and ran nothing.
    const third = j.tasks.find((t) => !fs.existsSync(path.join(srv.data, `jobs/bx/${t.alias}/run/stdout`)));
    assert(third, 'one step never started');
  }],

  ['with executor.sandbox each task runs under the sandbox helper on its node', async (ctx) => {
    const srv = await startServer({ config: `${TEST_USERS}
executor:
  backend: slurm
  conf: ${ctx.conf}
  poll: 200ms
  sandbox: true
` });
    try {
      const j = await runJob(srv, { id: 'sbx', tasks: [
        { alias: 'make', command: ['sh', '-c', 'echo 42 > /outputs/n; id -u'] },
        { alias: 'use', deps: ['make'], command: ['sh', '-c', 'cat /inputs/n; touch /inputs/n 2>/dev/null || echo read-only'],
          inputs: [{ source: 'task-output', task: 'make', file: 'n', target: '/inputs/n' }] },
      ] }, 40000);
      assertEq(j.state, 'succeeded', JSON.stringify(j.tasks));
      // The task's uid inside is the sandbox's, not root as slurmd runs it.
      assertEq(await logsOf(srv, 'sbx'), ['make: 1000', 'use: 42', 'use: read-only']);
      const jobs = slurmJobs(ctx, 'after the sandboxed DAG');
      assertEq([named(jobs, 'jobrt-make-sbx-1').state, named(jobs, 'jobrt-use-sbx-1').state], ['COMPLETED', 'COMPLETED']);
      let r = await call(srv, 'POST', '/jobs', { tasks: [{ alias: 'u', command: ['true'],
        inputs: [{ source: 'url', url: 'http://127.0.0.1:1/x', target: '/inputs/x' }] }] });
      assertEq(r.status, 400);
      assert(/task 'u': inputs\[0\] \(url\)/.test(JSON.stringify(r.body)), JSON.stringify(r.body));
      r = await call(srv, 'POST', '/jobs', { tasks: [{ alias: 'w', command: ['true'],
        network: { mode: 'allow', domains: ['example.org'] } }] });
      assertEq(r.status, 400);
      assert(/task 'w': network: \\"allow\\"/.test(JSON.stringify(r.body)), JSON.stringify(r.body));
    } finally {
      await srv.finish('the sandboxed daemon exits 0 on SIGTERM');
    }
  }],

  ['a burst of 200 tiny tasks runs through a few batched allocations', async (ctx) => {
    const { srv } = ctx;
    const before = Object.keys(slurmJobs(ctx, 'before the burst')).length;
    const tasks = Array.from({ length: 200 }, (_, i) => ({ alias: `t${i}`, command: ['sh', '-c', `echo ${i}`] }));
    const started = Date.now();
    const j = await runJob(srv, { id: 'burst', tasks }, 170000);
    const took = Date.now() - started;
    assertEq(j.state, 'succeeded', JSON.stringify(j.tasks.filter((t) => t.state !== 'succeeded').slice(0, 3)));
    const logs = await logsOf(srv, 'burst');
    assertEq(logs.length, 200);
    assert(logs.includes('t199: 199'), 'each task logged its line');
    // A batched task ends with its step; its allocation ends a moment later.
    const jobs = await waitFor('the batches to end', () => {
      const all = slurmJobs(ctx, 'after the burst');
      return Object.entries(all).every(([n, b]) => !n.startsWith('jobrt-batch-') ||
        !['RUNNING', 'COMPLETING'].includes(b.state)) ? all : null;
    });
    const batches = Object.entries(jobs).filter(([n]) => n.startsWith('jobrt-batch-'));
    const added = Object.keys(jobs).length - before;
    console.log(`# 200 tasks in ${took} ms through ${added} Slurm jobs`);
    assert(added <= 12, `200 tasks took ${added} Slurm jobs, not a few batches`);
    assert(batches.every(([, b]) => b.state === 'COMPLETED'), JSON.stringify(batches));
  }, { limit: 180000 }],
];

run(tests, {
  async before() {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jobrt-slurm-'));
    const up = spawnSync(UP, [dir, '4'], { encoding: 'utf8', timeout: 60000 });
    if (up.status !== 0) {
      spawnSync(DOWN, [dir, '--rm']);
      throw new Error(`tools/slurm/up.sh failed: ${up.stderr}${up.stdout}`);
    }
    const conf = path.join(dir, 'slurm.conf');
    let srv;
    try {
      srv = await startServer({ config: `${TEST_USERS}
executor:
  backend: slurm
  conf: ${conf}
  poll: 200ms
  batch: {max_tasks: 50, width: 2, window: 300ms}
` });
    } catch (e) {
      spawnSync(DOWN, [dir, '--rm']);
      throw e;
    }
    return { dir, conf, srv };
  },
  async after({ dir, srv }) {
    const ok = await srv.finish();
    spawnSync(DOWN, [dir, '--rm'], { timeout: 30000 });
    return ok;
  },
});
