// The Slurm executor across daemon restarts, against a real one-node
// cluster (tools/slurm/up.sh): a Slurm job outlives its daemon, and the next
// daemon on the data directory takes it over by the attempt's record, kept
// in the store with its running row, which names the job by the names
// chosen before the submission. SIGTERM leaves the job running and its
// output reaches the logs once; after a kill -9 a job that ended while no
// daemon ran gets its real exit code and end time, and the steps of a batch
// are found by the batch's name; an attempt whose sbatch never reached
// Slurm runs again, counted once; shutdown.tasks: stop cancels the job and
// the task runs again at the next start. Needs root (slurmd) and slurm-wlm
// and munge (`make slurm-deps`).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TEST_USERS, assert, assertEq, nativeCall, run, sleep, startServer } from './lib.mjs';

if (process.getuid() !== 0) {
  console.log('skip - slurm executor restarts # need root (slurmd runs the jobs)');
  process.exit(0);
}

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
// An attempt's Slurm job is named jobrt-<task>-<job>-<attempt>-<random>.
const named = (jobs, prefix) => Object.entries(jobs)
  .filter(([n]) => n.startsWith(`${prefix}-`)).flatMap(([, v]) => v);
const UP = path.join(ROOT, 'tools/slurm/up.sh');
const DOWN = path.join(ROOT, 'tools/slurm/down.sh');
const call = nativeCall;

function squeue(ctx) {
  const r = spawnSync('squeue', ['-h', '-t', 'all', '-O', 'JobID:|,Name:|,State:|'],
    { encoding: 'utf8', timeout: 30000, env: { ...process.env, SLURM_CONF: ctx.conf } });
  const jobs = {};
  for (const line of r.stdout.trim().split('\n').filter(Boolean)) {
    const [id, name, state] = line.split('|').map((s) => s.trim());
    (jobs[name] = jobs[name] || []).push({ id: Number(id), state });
  }
  return jobs;
}

async function until(what, fn, ms = 30000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

async function job(srv, id) {
  return (await call(srv, 'GET', `/jobs/${id}`)).body;
}

async function lines(srv, id) {
  return (await call(srv, 'GET', `/jobs/${id}/logs?limit=1000`)).body.logs
    .filter((l) => l.task).map((l) => l.message);
}

const ended = (j) => ['succeeded', 'failed', 'canceled'].includes(j.state);

function config(ctx, extra = 'batch: {max_tasks: 1}') {
  return `${TEST_USERS}
log: {level: error}
executor:
  backend: slurm
  conf: ${ctx.conf}
  poll: 200ms
  ${extra}
`;
}

async function daemon(ctx, data, extra) {
  return startServer({ config: config(ctx, extra), dataDir: data });
}

async function submit(srv, id, tasks) {
  const r = await call(srv, 'POST', '/jobs', { id, start: true, tasks });
  assertEq(r.status, 201, JSON.stringify(r.body));
}

const tests = [
  ['SIGTERM leaves the Slurm job running; the next daemon logs each line once', async (ctx) => {
    const data = path.join(ctx.dir, 'd1');
    let srv = await daemon(ctx, data);
    await submit(srv, 'keep', [{ alias: 'count',
      command: ['sh', '-c', 'for i in 1 2 3 4 5 6; do echo line $i; sleep 0.5; done'] }]);
    await until('two lines', async () => (await lines(srv, 'keep')).length >= 2);
    await srv.finish('the first daemon exits 0 on SIGTERM');
    const during = named(squeue(ctx), 'jobrt-count-keep-1');
    assertEq(during.length, 1);
    srv = await daemon(ctx, data);
    try {
      const j = await until('the job to end', async () => { const x = await job(srv, 'keep'); return ended(x) && x; });
      assertEq([j.state, j.tasks[0].attempt], ['succeeded', 1], JSON.stringify(j.tasks));
      assertEq(await lines(srv, 'keep'), [1, 2, 3, 4, 5, 6].map((i) => `line ${i}`));
      assertEq(named(squeue(ctx), 'jobrt-count-keep-1').map((x) => x.state), ['COMPLETED']);
    } finally {
      await srv.finish('the second daemon exits 0 on SIGTERM');
    }
  }],

  ['after kill -9, a job that ended meanwhile has its exit code and end time', async (ctx) => {
    const data = path.join(ctx.dir, 'd2');
    let srv = await daemon(ctx, data);
    await submit(srv, 'gone', [{ alias: 'x', command: ['sh', '-c', 'echo before; sleep 1.5; echo after; exit 3'] }]);
    await until('the first line', async () => (await lines(srv, 'gone')).includes('before'));
    await srv.stop('SIGKILL');
    // The job ends while no daemon runs.
    await until('the Slurm job to end', () => named(squeue(ctx), 'jobrt-x-gone-1')[0]?.state === 'FAILED');
    await sleep(1000);
    const stoppedAt = Date.now();
    srv = await daemon(ctx, data);
    try {
      const j = await until('the job to end', async () => { const x = await job(srv, 'gone'); return ended(x) && x; });
      const t = j.tasks[0];
      assertEq([t.state, t.exit_code, t.attempt], ['failed', 3, 1], JSON.stringify(t));
      assert(Date.parse(t.ended_at) < stoppedAt, `ended ${t.ended_at}, before the restart`);
      assertEq(await lines(srv, 'gone'), ['before', 'after', "task 'x' failed: exit code 3"]);
    } finally {
      await srv.finish();
    }
  }],

  ['after kill -9, the steps of a batch are found by the batch name and log once', async (ctx) => {
    const data = path.join(ctx.dir, 'd3');
    const batching = 'batch: {max_tasks: 4, width: 4, window: 300ms}';
    let srv = await daemon(ctx, data, batching);
    await submit(srv, 'steps', ['p', 'q', 'r'].map((a) => ({ alias: a,
      command: ['sh', '-c', `echo start ${a}; sleep 2; echo end ${a}`] })));
    await until('three steps to start', async () => (await lines(srv, 'steps')).length === 3);
    await srv.stop('SIGKILL');
    const batches = Object.keys(squeue(ctx)).filter((n) => n.startsWith('jobrt-batch-'));
    assertEq(batches.length, 1, 'the three run as one batch');
    srv = await daemon(ctx, data, batching);
    try {
      const j = await until('the job to end', async () => { const x = await job(srv, 'steps'); return ended(x) && x; });
      assertEq(j.tasks.map((t) => [t.state, t.attempt]), [['succeeded', 1], ['succeeded', 1], ['succeeded', 1]]);
      assertEq((await lines(srv, 'steps')).sort(),
        ['end p', 'end q', 'end r', 'start p', 'start q', 'start r']);
      assertEq(squeue(ctx)[batches[0]].length, 1, 'no new job');
      for (const a of ['p', 'q', 'r'])
        assertEq(named(squeue(ctx), `jobrt-${a}-steps-1`), [], 'no job of its own');
      // The batch's folder goes with the batch, as the first daemon's would.
      await until('the batch folder to go', () => !fs.existsSync(path.join(data, 'slurm', batches[0])));
    } finally {
      await srv.finish();
    }
  }],

  ['an attempt whose sbatch never reached Slurm runs again, once', async (ctx) => {
    const data = path.join(ctx.dir, 'd4');
    // An sbatch that hangs: the daemon dies while it runs.
    const bin = path.join(ctx.dir, 'hang-bin');
    const pidFile = path.join(ctx.dir, 'hang.pid');
    fs.mkdirSync(bin, { recursive: true });
    fs.writeFileSync(path.join(bin, 'sbatch'), `#!/bin/sh\necho $$ > ${pidFile}\nexec sleep 60\n`, { mode: 0o755 });
    for (const c of ['squeue', 'sacct', 'scancel']) {
      const real = spawnSync('sh', ['-c', `command -v ${c}`], { encoding: 'utf8' }).stdout.trim();
      fs.symlinkSync(real, path.join(bin, c));
    }
    let srv = await daemon(ctx, data, `batch: {max_tasks: 1}\n  bin: ${bin}`);
    let hung = 0;
    try {
      await submit(srv, 'again', [{ alias: 'z', command: ['sh', '-c', 'echo ran'] }]);
      hung = await until('sbatch to be called', () => fs.existsSync(pidFile) &&
        Number(fs.readFileSync(pidFile, 'utf8')));
      await srv.stop('SIGKILL');
    } finally {
      if (hung) process.kill(hung, 'SIGKILL');
    }
    srv = await daemon(ctx, data);
    try {
      const j = await until('the job to end', async () => { const x = await job(srv, 'again'); return ended(x) && x; });
      assertEq([j.state, j.tasks[0].attempt], ['succeeded', 1], JSON.stringify(j.tasks));
      assertEq(await lines(srv, 'again'), ['ran']);
      assertEq(named(squeue(ctx), 'jobrt-z-again-1').length, 1, 'one Slurm job');
    } finally {
      await srv.finish();
    }
  }],

  ['shutdown.tasks: stop cancels the Slurm job; the next daemon runs the task again', async (ctx) => {
    const data = path.join(ctx.dir, 'd5');
    const stopping = `${config(ctx)}shutdown: {tasks: stop}\n`;
    let srv = await startServer({ config: stopping, dataDir: data });
    await submit(srv, 'stop', [{ alias: 's', command: ['sh', '-c',
      'if [ -e ../mark ]; then echo second; else touch ../mark; echo first; sleep 60; fi'] }]);
    await until('the first run', async () => (await lines(srv, 'stop')).includes('first'));
    await srv.finish('the stopping daemon exits 0 on SIGTERM');
    assertEq(named(squeue(ctx), 'jobrt-s-stop-1').map((x) => x.state), ['CANCELLED']);
    srv = await daemon(ctx, data);
    try {
      const j = await until('the job to end', async () => { const x = await job(srv, 'stop'); return ended(x) && x; });
      assertEq([j.state, j.tasks[0].attempt], ['succeeded', 1], JSON.stringify(j.tasks));
      assert((await lines(srv, 'stop')).includes('second'));
    } finally {
      await srv.finish();
    }
  }],
];

run(tests, {
  async before() {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jobrt-slurm-restart-'));
    const up = spawnSync(UP, [path.join(dir, 'cluster'), '4'], { encoding: 'utf8', timeout: 60000 });
    if (up.status !== 0) {
      spawnSync(DOWN, [path.join(dir, 'cluster')]);
      fs.rmSync(dir, { recursive: true, force: true });
      throw new Error(`tools/slurm/up.sh failed: ${up.stderr}${up.stdout}`);
    }
    return { dir, conf: path.join(dir, 'cluster/slurm.conf') };
  },
  async after({ dir }) {
    spawnSync(DOWN, [path.join(dir, 'cluster')], { timeout: 30000 });
    fs.rmSync(dir, { recursive: true, force: true });
  },
});
