// Crash test of issue 14: RESTART_CRASH_ROUNDS (default 20) rounds of kill -9
// of the daemon while clients submit jobs concurrently, all on one data
// directory, each round's daemon started on what the last one left. The
// jobs' tasks run 0.2-3 s (so many span several crashes), print numbered
// lines on stdout and stderr, and append their job id to their outputs.
// Afterwards: every acknowledged job is there (0 lost), every job succeeded
// with each task at attempt 1 (0 failed because of a restart, no retry),
// each task ran once (its outputs hold its job id once), each line it
// printed is in the logs exactly once; the whole is bounded in time, and
// every process left is stopped by pid: each crashed daemon's sandbox
// server exits by itself, and no helper is left once the jobs are done.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import {
  ADMIN, TEST_USERS, assert, assertEq, liveHelpers, nativeCall, pidStart, run, sleep, startServer,
  stopHelpers,
} from './lib.mjs';

if (process.getuid() !== 0) {
  console.log('skip - restart crash rounds # needs root');
  process.exit(0);
}

const ROUNDS = Number(process.env.RESTART_CRASH_ROUNDS || 20);
const CLIENTS = 3;
const CONFIG = `node: {max_tasks: 16}\nlog: {level: error}\n${TEST_USERS}`;

// n numbered lines over about secs seconds; every third also on stderr.
function command(secs, n) {
  const step = (secs / n).toFixed(3);
  return 'echo "$JOBRT_JOB_ID" >> /outputs/ran; i=1; '
    + `while [ $i -le ${n} ]; do echo "L $i"; [ $((i % 3)) = 0 ] && echo "E $i" >&2; `
    + `sleep ${step}; i=$((i + 1)); done; true`;
}

function expectedLines(n) {
  const out = [];
  for (let i = 1; i <= n; i++) {
    out.push(`L ${i}`);
    if (i % 3 === 0) out.push(`E ${i}`);
  }
  return out.sort();
}

const state = { data: null, acked: new Map(), servers: [], first: null, rounds: 0 };

function newJob(k) {
  const task = (alias, deps) => {
    const secs = 0.2 + Math.random() * 2.8;
    const n = 3 + Math.floor(Math.random() * 8);
    return { alias, deps, command: command(secs, n), n };
  };
  const tasks = k % 3 === 0 ? [task('a', []), task('b', ['a'])] : [task('t', [])];
  return { tasks };
}

async function submitLoop(srv, stop) {
  let k = 0;
  while (!stop.done) {
    const job = newJob(k++);
    const body = { title: 'crash', start: true,
      tasks: job.tasks.map(({ alias, deps, command: c }) => ({ alias, deps, command: ['sh', '-c', c] })) };
    try {
      const r = await fetch(`${srv.url}/jobrt/v1/jobs`, {
        method: 'POST', headers: { ...ADMIN, 'Content-Type': 'application/json' }, body: JSON.stringify(body),
      });
      const text = await r.text();
      if (r.status === 201) state.acked.set(JSON.parse(text).id, job);
    } catch {
      return; // the daemon is gone
    }
    await sleep(150 + Math.random() * 250);
  }
}

// The daemon's children: its sandbox server, which must exit on its own.
function childrenOf(pid) {
  const out = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = readFileSync(`/proc/${d}/stat`, 'utf8');
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
      if (Number(f[1]) === pid) out.push({ pid: Number(d), start: f[19] });
    } catch { /* gone */ }
  }
  return out;
}

async function round(i) {
  const srv = await startServer({ config: CONFIG, dataDir: state.data || undefined });
  if (!state.data) {
    state.data = srv.data;
    state.first = srv;
  } else {
    srv.cleanup = () => {}; // the data directory is the first daemon's
  }
  const stop = { done: false };
  const loops = [];
  for (let c = 0; c < CLIENTS; c++) loops.push(submitLoop(srv, stop));
  await sleep(500 + Math.random() * 1000);
  const kids = childrenOf(srv.proc.pid);
  srv.proc.kill('SIGKILL');
  await srv.exited;
  stop.done = true;
  await Promise.all(loops);
  // Its sandbox server sees its control socket close and exits; helpers
  // run on.
  const deadline = Date.now() + 5000;
  while (kids.some((k) => pidStart(k.pid) === k.start) && Date.now() < deadline) await sleep(20);
  const left = kids.filter((k) => pidStart(k.pid) === k.start);
  for (const k of left) process.kill(k.pid, 'SIGKILL');
  assertEq(left.length, 0, `round ${i}: processes of the killed daemon still ran`);
  state.rounds++;
}

const tests = [];
for (let i = 1; i <= ROUNDS; i++) {
  tests.push([`crash round ${i}: kill -9 under concurrent submits`, () => round(i)]);
}

tests.push([`after ${ROUNDS} crashes: nothing lost, failed, run twice or logged twice`, async () => {
  assertEq(state.rounds, ROUNDS, 'every round ran');
  const srv = await startServer({ config: CONFIG, dataDir: state.data });
  srv.cleanup = () => {};
  state.servers.push(srv);
  const ids = [...state.acked.keys()];
  assert(ids.length >= ROUNDS, `only ${ids.length} submits were acknowledged`);
  const deadline = Date.now() + 50000;
  let pending = new Set(ids);
  while (pending.size && Date.now() < deadline) {
    for (const id of [...pending]) {
      const r = await nativeCall(srv, 'GET', `/jobs/${id}`);
      assertEq(r.status, 200, `acknowledged job ${id} is lost`);
      if (r.body.state === 'succeeded') pending.delete(id);
      else if (['failed', 'canceled'].includes(r.body.state)) {
        throw new Error(`job ${id} ended ${r.body.state}: ${r.body.error}`);
      }
    }
    if (pending.size) await sleep(200);
  }
  assertEq(pending.size, 0, `jobs not done within 50 s: ${[...pending].slice(0, 3)}`);
  let lines = 0;
  for (const [id, job] of state.acked) {
    const j = (await nativeCall(srv, 'GET', `/jobs/${id}`)).body;
    const logs = (await nativeCall(srv, 'GET', `/jobs/${id}/logs?limit=1000`)).body.logs;
    for (const t of job.tasks) {
      const got = j.tasks.find((x) => x.alias === t.alias);
      assertEq([got.state, got.attempt], ['succeeded', 1], `${id}/${t.alias}: no failed or retried attempt`);
      const ran = readFileSync(path.join(state.data, 'jobs', id, t.alias, 'outputs', 'ran'), 'utf8');
      assertEq(ran, `${id}\n`, `${id}/${t.alias} ran exactly once`);
      const printed = logs.filter((l) => l.task === t.alias).map((l) => l.message).sort();
      assertEq(printed, expectedLines(t.n), `${id}/${t.alias}: every line it printed, once`);
      lines += printed.length;
    }
  }
  console.error(`    ${ids.length} acknowledged jobs over ${ROUNDS} crashes, ${lines} log lines checked`);
  assertEq(liveHelpers(state.data), [], 'no helper is left');
}]);

run(tests, {
  after: async () => {
    for (const s of state.servers) await s.stop();
    // Whatever still runs is stopped by pid (none should: the jobs are done).
    const stopped = state.data ? stopHelpers(state.data) : 0;
    if (state.first) state.first.cleanup();
    assertEq(stopped, 0, 'no helper had to be stopped');
  },
});
