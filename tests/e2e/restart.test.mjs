// Restarts lose no work (issue 14): a sandboxed task outlives its daemon and
// the next daemon on the data directory reattaches to it. SIGTERM leaves it
// running (shutdown.tasks: keep) and its output reaches the logs exactly
// once; one that finished while no daemon ran gets its real exit code and
// end time; a timeout that expired meanwhile is reported; a cancel that was
// acknowledged before a kill -9 is carried out; a helper whose daemon never
// returns stops its task after sandbox.orphan_timeout; one that is really
// gone fails with the reason and is retried; a second daemon on the same
// data directory is refused; shutdown.tasks: stop stops tasks first, and
// they run again at the next start.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import {
  ADMIN, BIN, TEST_USERS, assert, assertEq, freePort, liveHelpers, nativeCall, pidStart, run, sleep,
  startServer,
} from './lib.mjs';

if (process.getuid() !== 0) {
  console.log('skip - restarts reattach to sandboxed tasks # needs root');
  process.exit(0);
}

const CONFIG = `log: {level: ${process.env.RESTART_LOG || 'error'}}\n${TEST_USERS}`;

async function submit(srv, tasks) {
  const r = await nativeCall(srv, 'POST', '/jobs', { start: true, tasks });
  assertEq(r.status, 201, `submit: ${JSON.stringify(r.body)}`);
  return r.body.id;
}

async function job(srv, id) {
  return (await nativeCall(srv, 'GET', `/jobs/${id}`)).body;
}

// Polls the job until pred holds (bounded); returns it.
async function until(srv, id, pred, what, ms = 15000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const j = await job(srv, id);
    if (pred(j)) return j;
    if (Date.now() > deadline) throw new Error(`job ${id}: ${what} not within ${ms} ms: ${JSON.stringify(j)}`);
    await sleep(50);
  }
}

const ended = (j) => ['succeeded', 'failed', 'canceled'].includes(j.state);

async function messages(srv, id) {
  const r = await nativeCall(srv, 'GET', `/jobs/${id}/logs?limit=1000`);
  assertEq(r.status, 200, 'logs');
  return r.body.logs.filter((l) => l.task).map((l) => l.message);
}

async function waitGone(data, ms) {
  const deadline = Date.now() + ms;
  while (liveHelpers(data).length && Date.now() < deadline) await sleep(50);
  return liveHelpers(data).length === 0;
}

const taskDir = (srv, id) => path.join(srv.data, 'jobs', id, 't');
const spools = (srv, id) => readdirSync(taskDir(srv, id)).filter((f) => f.endsWith('.log'));

// The outcome a helper with no daemon kept as its spool's last record.
function result(srv, id) {
  const [spool] = spools(srv, id);
  assert(spool, `no spool in ${taskDir(srv, id)}`);
  const text = readFileSync(path.join(taskDir(srv, id), spool), 'utf8');
  const line = /^R(.*)$/m.exec(text);
  assert(line, `no outcome in the spool:\n${text}`);
  return JSON.parse(line[1]);
}

// One daemon, then another on its data directory; both are stopped at the
// end, and what either left running is stopped by pid (cleanup).
async function withRestart(config, fn) {
  const first = await startServer({ config });
  const state = { first, second: null };
  try {
    await fn(state, () => startServer({ config, dataDir: first.data }).then((s) => {
      state.second = s;
      return s;
    }));
  } finally {
    if (state.second) {
      await state.second.stop();
      state.second.cleanup();
    }
    await first.stop();
    first.cleanup();
  }
}

const tests = [
  ['SIGTERM leaves a task running; the next daemon reattaches and logs each line once', async () => {
    await withRestart(CONFIG, async ({ first }, restart) => {
      const id = await submit(first, [{ alias: 't', command: ['sh', '-c',
        'for i in 1 2 3 4 5 6 7 8; do echo line $i; sleep 0.2; done; echo fin >&2'] }]);
      await until(first, id, (j) => j.tasks[0].state === 'running', 'running');
      await sleep(500);
      const { code } = await first.stop('SIGTERM');
      assertEq(code, 0, 'the daemon exits 0');
      assertEq(liveHelpers(first.data).length, 1, 'the task runs on without a daemon');
      await sleep(300);
      const second = await restart();
      const j = await until(second, id, ended, 'the end');
      assertEq([j.state, j.tasks[0].state, j.tasks[0].attempt], ['succeeded', 'succeeded', 1],
        JSON.stringify(j));
      assertEq(await messages(second, id),
        ['line 1', 'line 2', 'line 3', 'line 4', 'line 5', 'line 6', 'line 7', 'line 8', 'fin'],
        'every line once, in order');
      await sleep(100);
      assertEq(spools(second, id), [], 'its spool went once its end was stored');
    });
  }],

  ['a task that ends while no daemon runs gets its real exit code and end time', async () => {
    await withRestart(CONFIG, async ({ first }, restart) => {
      const id = await submit(first, [{ alias: 't', command: ['sh', '-c',
        'echo before; sleep 0.8; echo after >&2; exit 7'] }]);
      await until(first, id, (j) => j.tasks[0].state === 'running', 'running');
      await sleep(200);
      first.proc.kill('SIGKILL');
      await first.exited;
      assert(await waitGone(first.data, 5000), 'the task ends by itself');
      const outcome = result(first, id);
      assertEq([outcome.outcome, outcome.exit_code], ['exited', 7], 'the helper recorded it');
      const before = Date.now();
      const second = await restart();
      const j = await until(second, id, ended, 'the end');
      const t = j.tasks[0];
      assertEq([j.state, t.state, t.outcome, t.exit_code, t.error], ['failed', 'failed', 'exited', 7, 'exit code 7']);
      assert(Date.parse(t.ended_at) < before, `ended_at ${t.ended_at} is when it ended, before the restart`);
      assertEq(await messages(second, id), ['before', 'after', "task 't' failed: exit code 7"]);
    });
  }],

  ['a timeout that expires while no daemon runs is reported as the timeout', async () => {
    await withRestart(CONFIG, async ({ first }, restart) => {
      const id = await submit(first, [{ alias: 't', timeout: '1s', command: ['sleep', '30'] }]);
      await until(first, id, (j) => j.tasks[0].state === 'running', 'running');
      first.proc.kill('SIGKILL');
      await first.exited;
      assert(await waitGone(first.data, 8000), 'the helper enforces the timeout by itself');
      const second = await restart();
      const j = await until(second, id, ended, 'the end');
      const t = j.tasks[0];
      assertEq([j.state, t.state, t.outcome, t.error], ['failed', 'failed', 'timeout', 'timed out after 1s']);
      assert(Date.parse(t.ended_at) - Date.parse(t.started_at) < 5000, 'it ended at its timeout');
    });
  }],

  ['a cancel acknowledged just before kill -9 is carried out', async () => {
    await withRestart(CONFIG, async ({ first }, restart) => {
      const id = await submit(first, [{ alias: 't', command: ['sh', '-c',
        'sleep 1.5; touch /outputs/late; echo late'] }]);
      await until(first, id, (j) => j.tasks[0].state === 'running', 'running');
      const c = await nativeCall(first, 'POST', `/jobs/${id}/cancel`);
      assertEq(c.status, 200, `cancel: ${JSON.stringify(c.body)}`);
      first.proc.kill('SIGKILL');
      await first.exited;
      const second = await restart();
      const j = await until(second, id, ended, 'the end');
      assertEq([j.state, j.tasks[0].state], ['canceled', 'canceled']);
      await sleep(2000);
      assertEq(existsSync(path.join(second.data, 'jobs', id, 't', 'outputs', 'late')), false,
        'the task did not go on');
      assertEq(liveHelpers(second.data), [], 'nothing of it runs');
      assert(!(await messages(second, id)).includes('late'), 'it printed nothing after the cancel');
    });
  }],

  ['a helper whose daemon never returns stops its task after sandbox.orphan_timeout', async () => {
    const config = `${CONFIG}\nsandbox: {orphan_timeout: 1s}\n`;
    await withRestart(config, async ({ first }, restart) => {
      const id = await submit(first, [{ alias: 't', command: ['sh', '-c', 'echo start; sleep 30'] }]);
      await until(first, id, (j) => j.tasks[0].state === 'running', 'running');
      const t0 = Date.now();
      first.proc.kill('SIGKILL');
      await first.exited;
      assert(await waitGone(first.data, 10000), 'the helper stopped by itself');
      const took = Date.now() - t0;
      assert(took >= 900 && took < 10000, `it waited for the orphan timeout (${took} ms)`);
      assertEq(result(first, id).outcome, 'orphaned', 'and recorded that');
      const second = await restart();
      const j = await until(second, id, ended, 'the end');
      const t = j.tasks[0];
      assertEq([j.state, t.state, t.outcome], ['failed', 'failed', 'orphaned']);
      assert(/no daemon attached \(sandbox\.orphan_timeout\)/.test(t.error), t.error);
      assertEq((await messages(second, id))[0], 'start');
    });
  }],

  ['a helper that is really gone fails with the reason and is retried', async () => {
    await withRestart(CONFIG, async ({ first }, restart) => {
      const id = await submit(first, [{ alias: 't', retries: 1, command: ['sh', '-c',
        '[ "$JOBRT_ATTEMPT" -ge 2 ] || sleep 30'] }]);
      await until(first, id, (j) => j.tasks[0].state === 'running', 'running');
      first.proc.kill('SIGKILL');
      await first.exited;
      const [h] = liveHelpers(first.data);
      assert(h, 'its helper outlived the daemon');
      process.kill(-h.pid, 'SIGKILL');
      assert(await waitGone(first.data, 5000), 'and is gone');
      const second = await restart();
      const j = await until(second, id, ended, 'the end');
      assertEq([j.state, j.tasks[0].attempt], ['succeeded', 2]);
      const r = await fetch(`${second.url}/jobrt/v1/events?after=0&follow=0`, { headers: ADMIN });
      const text = (await r.text()).split('\n').filter((l) => l.includes(id)).join('\n');
      assert(/attempt 1 failed \(its sandbox helper \(pid \d+\) (was gone|ended) without an outcome/.test(text),
        `the retry says why: ${text}`);
    });
  }],

  ['output beyond the attempt\'s log cap is dropped with a note', async () => {
    const srv = await startServer({ config: CONFIG });
    try {
      // 100 lines of 30000 bytes: 3 MB against the 1 MiB cap.
      const id = await submit(srv, [{ alias: 't', command: ['sh', '-c',
        'head -c 30000 /dev/zero | tr "\\0" x > /tmp/l; i=0; '
        + 'while [ $i -lt 100 ]; do cat /tmp/l; echo; i=$((i + 1)); done'] }]);
      const j = await until(srv, id, ended, 'the end');
      assertEq(j.state, 'succeeded');
      const got = await messages(srv, id);
      const full = got.filter((m) => m.length === 30000).length;
      assertEq(full, Math.floor((1 << 20) / 30001), 'lines up to the cap');
      assertEq(got[full], '[jobrt] output truncated: more than 1048576 bytes');
      assertEq(got.length, full + 1, 'nothing after the note');

    } finally {
      await srv.stop();
      srv.cleanup();
    }
  }],

  ['a second daemon on the same data directory is refused, naming the holder', async () => {
    const first = await startServer({ config: CONFIG });
    try {
      const port = await freePort();
      const second = spawn(BIN, ['serve', '--listen', `127.0.0.1:${port}`, '--data-dir', first.data],
        { stdio: ['ignore', 'pipe', 'pipe'] });
      let err = '';
      second.stderr.on('data', (d) => { err += d; });
      const timer = setTimeout(() => second.kill('SIGKILL'), 10000);
      const code = await new Promise((r) => second.on('exit', (c) => r(c)));
      clearTimeout(timer);
      assert(code !== 0, 'it exits with an error');
      assert(err.includes(`in use by another jobrt (pid ${first.proc.pid}`), err);
      const h = await fetch(`${first.url}/jobrt/healthz`);
      assertEq(h.status, 200, 'the first daemon goes on');
    } finally {
      await first.stop();
      first.cleanup();
    }
  }],

  ['shutdown.tasks: stop stops running tasks first; they run again at the next start', async () => {
    const config = `${CONFIG}\nshutdown: {tasks: stop}\n`;
    await withRestart(config, async ({ first }, restart) => {
      const id = await submit(first, [{ alias: 't', command: ['sh', '-c',
        'echo run >> /outputs/ran; [ "$(wc -l < /outputs/ran)" -ge 2 ] || exec sleep 30'] }]);
      const ran = path.join(first.data, 'jobs', id, 't', 'outputs', 'ran');
      for (let i = 0; i < 300 && !existsSync(ran); i++) await sleep(20);
      assert(existsSync(ran), 'the task ran');
      const h = liveHelpers(first.data);
      assertEq(h.length, 1, 'one helper');
      assertEq(liveHelpers(first.data, { servers: true }).length, 2, 'and its server');
      const { code } = await first.stop('SIGTERM', 20000);
      assertEq(code, 0, 'the daemon exits 0');
      assertEq(pidStart(h[0].pid), null, 'its helper is gone before the daemon');
      const second = await restart();
      const j = await until(second, id, ended, 'the end').catch((e) => {
        throw new Error(`${e.message}\n${first.logs()}\n${second.logs()}`);
      });
      assertEq([j.state, j.tasks[0].attempt], ['succeeded', 1], 'the stopped attempt was not counted');
      assertEq(readFileSync(ran, 'utf8'), 'run\nrun\n');
    });
  }],
];

// RESTART_ONLY=text runs the tests whose name has it (while debugging one).
run(tests.filter(([name]) => !process.env.RESTART_ONLY || name.includes(process.env.RESTART_ONLY)));
