// The sandbox behind the daemon's executor: jobs submitted through the
// native API run under `jobrt sandbox`; outcomes (oom, timeout, setup_error),
// outputs on the host, logs, inputs (inline, task-output, allow-listed host
// paths) and the start-up refusal of sandbox.require. Needs root (cgroups and
// the id mapping); skips otherwise.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { ADMIN, BIN, TEST_USERS, assert, assertEq, nativeCall, run, runJob, sleep, startServer } from './lib.mjs';
import { spawnSync } from 'node:child_process';

if (process.getuid() !== 0) {
  console.log('skip - sandbox daemon tests # need root');
  process.exit(0);
}

const call = nativeCall;

const tests = [
  ['a task writes /outputs: the file is in the job outputs dir; usage is reported', async ({ srv }) => {
    const j = await runJob(srv, { id: 'out-1', tasks: [{ alias: 'a', command: ['sh', '-c', 'echo result > /outputs/r.txt'] }] });
    assertEq(j.state, 'succeeded', j.error);
    const t = j.tasks[0];
    assertEq(t.outcome, 'exited');
    assertEq(t.exit_code, 0);
    assert(t.usage && t.usage.wall_ms >= 0 && t.usage.cpu_ms >= 0 && t.usage.max_rss_bytes > 0,
      `usage: ${JSON.stringify(t.usage)}`);
    const file = path.join(srv.data, 'jobs', 'out-1', 'a', 'outputs', 'r.txt');
    assertEq(readFileSync(file, 'utf8'), 'result\n');
  }],
  ['stdout and stderr lines reach the job logs', async ({ srv }) => {
    const j = await runJob(srv, { id: 'log-1', tasks: [{ alias: 'a', command: ['sh', '-c', 'echo line-one; echo line-two; echo oops >&2'] }] });
    assertEq(j.state, 'succeeded', j.error);
    const logs = (await call(srv, 'GET', '/jobs/log-1/logs')).body;
    const msgs = (logs.logs || logs.entries || logs).map((l) => l.message);
    for (const m of ['line-one', 'line-two', 'oops']) assert(msgs.includes(m), `missing ${m} in ${JSON.stringify(msgs)}`);
  }],
  ['a memory hog is reported oom', async ({ srv }) => {
    const j = await runJob(srv, { id: 'oom-1', tasks: [{ alias: 'a', resources: { memory: '32MiB' },
      command: ['sh', '-c', 'x=$(head -c 200000000 /dev/zero | tr "\\0" a); echo survived'] }] });
    assertEq(j.state, 'failed');
    assertEq(j.tasks[0].outcome, 'oom', j.tasks[0].error);
  }],
  ['a timeout is reported timeout and its background child is gone', async ({ srv }) => {
    const j = await runJob(srv, { id: 'to-1', tasks: [{ alias: 'a', timeout: '1s',
      command: ['sh', '-c', 'sleep 1000 & echo started; wait'] }] });
    assertEq(j.state, 'failed');
    assertEq(j.tasks[0].outcome, 'timeout', j.tasks[0].error);
    const ps = spawnSync('ps', ['-eo', 'args']).stdout.toString();
    assert(!ps.split('\n').some((l) => l.trim() === 'sleep 1000'), 'the background sleep survived');
  }],
  ['a missing binary is setup_error naming the stage', async ({ srv }) => {
    const j = await runJob(srv, { id: 'nobin-1', tasks: [{ alias: 'a', command: ['/no/such/binary'] }] });
    assertEq(j.state, 'failed');
    const t = j.tasks[0];
    assertEq(t.outcome, 'setup_error');
    assert(/stage exec/.test(t.error) && /No such file/.test(t.error), t.error);
  }],
  ['a task-output input passes data to the dependant; inline input readable at its target', async ({ srv }) => {
    const j = await runJob(srv, { id: 'dag-1', tasks: [
      { alias: 'a', command: ['sh', '-c', 'echo from-a > /outputs/data.txt'] },
      { alias: 'b', deps: ['a'], command: ['sh', '-c', 'cat /inputs/a.txt /data/inline.txt; ! touch /inputs/a.txt 2>/dev/null'],
        inputs: [{ source: 'task-output', task: 'a', file: 'data.txt', target: '/inputs/a.txt' },
                 { source: 'inline', data: 'inline-data\n', target: '/data/inline.txt' }] },
    ] });
    assertEq(j.state, 'succeeded', j.error);
    const logs = (await call(srv, 'GET', '/jobs/dag-1/logs')).body;
    const msgs = (logs.logs || logs.entries || logs).filter((l) => l.task === 'b').map((l) => l.message);
    assertEq(msgs, ['from-a', 'inline-data']);
  }],
  ['host paths: allow-listed ones are bound read-only, others refused at submit', async ({ srv, allowed }) => {
    const j = await runJob(srv, { id: 'hp-1', tasks: [{ alias: 'a', command: ['cat', '/inputs/f.txt'],
      inputs: [{ source: 'path', path: path.join(allowed, 'f.txt') }] }] });
    assertEq(j.state, 'succeeded', j.error);
    let r = await call(srv, 'POST', '/jobs', { tasks: [{ alias: 'a', command: ['true'],
      inputs: [{ source: 'path', path: '/etc/passwd' }] }] });
    assertEq(r.status, 400);
    assert(/not under sandbox.allow_host_paths/.test(r.body.message), r.body.message);
    r = await call(srv, 'POST', '/jobs', { tasks: [{ alias: 'a', command: ['true'],
      inputs: [{ source: 'path', path: `${allowed}/../../etc/passwd` }] }] });
    assertEq(r.status, 400);
    r = await call(srv, 'POST', '/jobs', { tasks: [{ alias: 'a', command: ['true'],
      inputs: [{ source: 'inline', data: 'x', target: '/etc/passwd' }] }] });
    assertEq(r.status, 400);
    assert(/inside the image/.test(r.body.message), r.body.message);
    r = await call(srv, 'POST', '/jobs', { tasks: [{ alias: 'a', image: 'nope', command: ['true'] }] });
    assertEq(r.status, 400);
    assert(/unknown image 'nope'/.test(r.body.message), r.body.message);
  }],
  ['cancel stops a running sandboxed task', async ({ srv }) => {
    const r = await call(srv, 'POST', '/jobs', { id: 'cancel-1', start: true,
      tasks: [{ alias: 'a', command: ['sh', '-c', 'echo up; sleep 1000'] }] });
    assertEq(r.status, 201);
    for (let i = 0; i < 100; i++) {
      const j = (await call(srv, 'GET', '/jobs/cancel-1')).body;
      if (j.tasks[0].state === 'running') break;
      await sleep(50);
    }
    await sleep(200);
    assertEq((await call(srv, 'POST', '/jobs/cancel-1/cancel')).status, 200);
    const deadline = Date.now() + 15000;
    let j;
    do {
      await sleep(100);
      j = (await call(srv, 'GET', '/jobs/cancel-1')).body;
    } while (j.tasks[0].state === 'running' && Date.now() < deadline);
    assertEq(j.tasks[0].state, 'canceled');
  }],
  ['a task canceled the moment it runs stops at once, not after the kill grace', async ({ srv }) => {
    // The stop's SIGTERM can reach the sandbox's init before the task
    // exists; it must be kept and passed on, not dropped (the task then ran
    // on to the SIGKILL 7.5 s later). Ten tries, each canceled as soon as
    // the daemon says running.
    for (let n = 0; n < 10; n++) {
      const id = `quick-cancel-${n}`;
      assertEq((await call(srv, 'POST', '/jobs', { id, start: true,
        tasks: [{ alias: 'a', command: ['sleep', '1000'] }] })).status, 201);
      for (let i = 0; i < 2000; i++) {
        if ((await call(srv, 'GET', `/jobs/${id}`)).body.tasks[0].state === 'running') break;
      }
      const t0 = Date.now();
      assertEq((await call(srv, 'POST', `/jobs/${id}/cancel`)).status, 200);
      let j;
      do {
        await sleep(20);
        j = (await call(srv, 'GET', `/jobs/${id}`)).body;
      } while (!j.tasks[0].ended_at && Date.now() - t0 < 15000);
      assert(Date.now() - t0 < 4000, `try ${n}: the task ended ${Date.now() - t0} ms after its cancel`);
    }
  }],
  ['a lost sandbox server: the running task still ends with its outcome, the next one runs', async ({ srv }) => {
    const r = await call(srv, 'POST', '/jobs', { id: 'lost-1', start: true,
      tasks: [{ alias: 'a', command: ['sh', '-c', 'echo up; sleep 1; echo after'] }] });
    assertEq(r.status, 201, JSON.stringify(r.body));
    // Running (the helper has started) before the server goes.
    for (let i = 0; i < 200; i++) {
      const j = (await call(srv, 'GET', '/jobs/lost-1')).body;
      if (j.tasks[0].state === 'running') break;
      await sleep(10);
    }
    const servers = spawnSync('pgrep', ['-P', String(srv.proc.pid), '-x', 'jobrt-sbserver']).stdout.toString().trim().split('\n').filter(Boolean);
    assertEq(servers.length, 1, `sandbox servers of the daemon: ${servers}`);
    process.kill(Number(servers[0]), 'SIGKILL');
    let j;
    for (let i = 0; i < 500; i++) {
      j = (await call(srv, 'GET', '/jobs/lost-1')).body;
      if (!['created', 'queued', 'running'].includes(j.state)) break;
      await sleep(20);
    }
    assertEq(j.state, 'succeeded', j.error);
    assertEq(j.tasks[0].outcome, 'exited');
    const msgs = (await call(srv, 'GET', '/jobs/lost-1/logs')).body.logs.map((l) => l.message);
    assert(msgs.includes('after'), JSON.stringify(msgs));
    const next = await runJob(srv, { id: 'lost-2', tasks: [{ alias: 'a', command: ['true'] }] });
    assertEq(next.state, 'succeeded', next.error);
    const again = spawnSync('pgrep', ['-P', String(srv.proc.pid), '-x', 'jobrt-sbserver']).stdout.toString().trim();
    assert(again && again !== servers[0], `a new server: ${again}`);
  }],
  ['sandbox.require with a layer the probe lacks refuses to start, naming it', async () => {
    const dir = path.join(os.tmpdir(), `jobrt-sbreq-${process.pid}`);
    mkdirSync(dir, { recursive: true });
    const cfg = path.join(dir, 'c.yaml');
    writeFileSync(cfg, 'sandbox: {require: [userns, seccomp]}\n');
    const r = spawnSync(BIN, ['serve', '--listen', '127.0.0.1:0', '--data-dir', path.join(dir, 'data'), '-c', cfg], {
      env: { ...process.env, JOBRT_SANDBOX_PROBE_HIDE: 'seccomp' }, timeout: 10000,
    });
    const err = r.stderr.toString();
    assert(r.status !== 0 && r.status !== null, `exit ${r.status}: ${err}`);
    assert(/sandbox.require lists a layer that this machine does not allow: seccomp/.test(err), err);
    rmSync(dir, { recursive: true, force: true });
  }],
];

run(tests, {
  before: async () => {
    const base = path.join(os.tmpdir(), `jobrt-sbd-${process.pid}`);
    const allowed = path.join(base, 'allowed');
    mkdirSync(allowed, { recursive: true });
    writeFileSync(path.join(allowed, 'f.txt'), 'host-data\n');
    const srv = await startServer({ config: `log: {level: warn}\nsandbox: {allow_host_paths: [${allowed}]}\n${TEST_USERS}` });
    return { srv, allowed, base };
  },
  after: async ({ srv, base }) => {
    const ok = await srv.finish();
    rmSync(base, { recursive: true, force: true });
    return ok;
  },
});
