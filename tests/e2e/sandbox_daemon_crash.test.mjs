// Crash test with sandboxed tasks: clients submit jobs concurrently through
// the native API, the daemon is killed with SIGKILL at a random moment
// (helpers at their gate or running are orphaned), restarted on the same data
// directory, and then every job whose submit got a 2xx must be present in a
// consistent state, run to the end, and no task may have run twice at once.
// A sandboxed task sees only its own /outputs (the same host folder for every
// attempt), so each attempt holds a flock on /outputs/.lock while it runs; a
// second concurrent copy finds it held and writes /outputs/violations.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ADMIN, TEST_USERS, assert, assertEq, run, sleep, startServer } from './lib.mjs';

if (process.getuid() !== 0) {
  console.log('skip - sandboxed crash test # needs root');
  process.exit(0);
}

const ROUNDS = Number(process.env.CRASH_ROUNDS || 3);
const CLIENTS = 6;
const CONFIG = `
node: {max_tasks: 16}
log: {level: error}
${TEST_USERS}`;
const JOB_STATES = new Set(['created', 'awaiting_approval', 'rejected', 'queued', 'running',
  'succeeded', 'failed', 'canceled', 'suspended']);
const TASK_STATES = new Set(['pending', 'ready', 'running', 'succeeded', 'failed', 'canceled', 'skipped']);

function taskCommand() {
  // sleep a little under the lock so that a kill often lands mid-task
  return `exec flock -n /outputs/.lock sh -c 'echo "$JOBRT_ATTEMPT" >> /outputs/ran; sleep 0.0$(( $$ % 3 ))5' `
    + `|| { echo "$JOBRT_JOB_ID.$JOBRT_TASK" >> /outputs/violations; exit 1; }`;
}

// Every /outputs/violations under DATA/jobs/<job>/<task>/.
function violations(data) {
  const root = path.join(data, 'jobs');
  const found = [];
  if (!existsSync(root)) return found;
  for (const job of readdirSync(root)) {
    for (const task of readdirSync(path.join(root, job))) {
      const f = path.join(root, job, task, 'outputs', 'violations');
      if (existsSync(f)) found.push(readFileSync(f, 'utf8').trim());
    }
  }
  return found;
}

async function submitLoop(url, acked, stop) {
  let n = 0;
  while (!stop.done) {
    const body = {
      title: `crash ${n++}`, start: true,
      tasks: [
        { alias: 'a', command: taskCommand(), retries: 3 },
        { alias: 'b', deps: ['a'], command: taskCommand(), retries: 3 },
      ],
    };
    try {
      const r = await fetch(`${url}/jobrt/v1/jobs`, {
        method: 'POST', headers: { ...ADMIN, 'Content-Type': 'application/json' }, body: JSON.stringify(body),
      });
      const text = await r.text();
      if (r.status >= 200 && r.status < 300) acked.push(JSON.parse(text).id);
    } catch {
      return; // the daemon is gone
    }
  }
}

function consistent(job) {
  if (!JOB_STATES.has(job.state)) return `bad job state ${job.state}`;
  for (const t of job.tasks) if (!TASK_STATES.has(t.state)) return `bad task state ${t.state}`;
  const states = job.tasks.map((t) => t.state);
  if (job.state === 'succeeded' && !states.every((s) => s === 'succeeded')) return `succeeded with ${states}`;
  if (job.state === 'created' && !states.every((s) => s === 'pending')) return `created with ${states}`;
  if (states[1] !== 'pending' && states[1] !== 'ready' && states[0] !== 'succeeded' && states[1] !== 'skipped'
      && states[1] !== 'canceled') return `b ran before a: ${states}`;
  return null;
}

async function round(i) {
  const srv = await startServer({ config: CONFIG });
  const acked = [];
  const stop = { done: false };
  const loops = [];
  for (let c = 0; c < CLIENTS; c++) loops.push(submitLoop(srv.url, acked, stop));
  await sleep(400 + Math.floor(Math.random() * 800));
  srv.proc.kill('SIGKILL');
  await srv.exited;
  stop.done = true;
  await Promise.all(loops);
  assert(acked.length > 0, 'no submit was acknowledged before the kill');

  const again = await startServer({ config: CONFIG, dataDir: srv.data });
  try {
    const deadline = Date.now() + 60000;
    let pending = new Set(acked);
    for (const id of acked) {
      const r = await fetch(`${again.url}/jobrt/v1/jobs/${id}`, { headers: ADMIN });
      assertEq(r.status, 200, `acknowledged job ${id} is missing after the crash`);
      const why = consistent(await r.json());
      assert(!why, `job ${id} inconsistent: ${why}`);
    }
    // everything acknowledged runs to the end after the restart
    while (pending.size && Date.now() < deadline) {
      for (const id of [...pending]) {
        const job = await (await fetch(`${again.url}/jobrt/v1/jobs/${id}`, { headers: ADMIN })).json();
        const why = consistent(job);
        assert(!why, `job ${id} inconsistent: ${why}`);
        if (job.state === 'succeeded') pending.delete(id);
        else if (['failed', 'canceled', 'rejected'].includes(job.state)) {
          throw new Error(`job ${id} ended ${job.state}: ${job.error}`);
        }
      }
      if (pending.size) await sleep(100);
    }
    assertEq(pending.size, 0, `jobs not finished within 60 s: ${[...pending].slice(0, 3)}`);
    assertEq(violations(srv.data), [], `tasks ran twice at once (round ${i})`);
    return acked.length;
  } finally {
    await again.stop();
    srv.cleanup();
  }
}

const tests = [];
for (let i = 1; i <= ROUNDS; i++) {
  tests.push([`sandboxed crash round ${i}: acknowledged jobs survive kill -9, nothing runs twice`, async () => {
    const n = await round(i);
    console.error(`    round ${i}: ${n} acknowledged submits checked`);
  }]);
}

run(tests);
