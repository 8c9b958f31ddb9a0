// Two jobrt instances on one PostgreSQL database (a throwaway server this
// test starts in a temp dir on a free loopback port and stops by its pid):
// a job submitted to one is seen, watched and canceled on the other; 1,000
// tasks over both run once each; kill -9 of one instance mid-task: the
// other fails its tasks over and retries them, nothing acknowledged is lost
// and no task runs twice at once; PostgreSQL restarted under load: 503s
// while it is down, every acknowledged job intact after.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  TEST_USERS, ADMIN, assert, assertEq, nativeCall, run, sleep, startServer,
} from './lib.mjs';

const PG_DIR = mkdtempSync(path.join(os.tmpdir(), 'jobrt-pg-e2e-'));
let baseUrl;

function pg(cmd) {
  return execFileSync('tools/pg.sh', [cmd, PG_DIR], { encoding: 'utf8' }).trim();
}

function psql(sql, db = 'postgres') {
  const url = baseUrl.replace(/\/[^/]*$/, `/${db}`);
  return execFileSync('psql', [url, '-Atqc', sql], {
    encoding: 'utf8', env: { ...process.env, PGOPTIONS: '-c client_min_messages=warning' },
  }).trim();
}

let dbn = 0;
function freshDb() {
  const name = `e2e_${++dbn}`;
  psql(`DROP DATABASE IF EXISTS ${name}`);
  psql(`CREATE DATABASE ${name}`);
  return name;
}

function config(db, extra = '') {
  const url = baseUrl.replace(/\/[^/]*$/, `/${db}`);
  return `${TEST_USERS}
store: {backend: postgres, url: "${url}", heartbeat: 500ms, failover: 4s, timeout: 3s}
sandbox: {orphan_timeout: 1s}
node: {max_tasks: 8}
${extra}`;
}

async function pair(db, extra) {
  const a = await startServer({ config: config(db, extra) });
  const b = await startServer({ config: config(db, extra) });
  return [a, b];
}

async function waitFor(fn, ms, what) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

const job = (srv, id) => nativeCall(srv, 'GET', `/jobs/${id}`).then((r) => r.body);

// The events of the chunked stream GET /events?after= on srv, until stop().
function watch(srv, after) {
  const seen = [];
  const ctl = new AbortController();
  const done = (async () => {
    try {
      const r = await fetch(`${srv.url}/jobrt/v1/events?after=${after}`, { headers: ADMIN, signal: ctl.signal });
      const reader = r.body.getReader();
      let buf = '';
      for (;;) {
        const { value, done: end } = await reader.read();
        if (end) break;
        buf += Buffer.from(value).toString();
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (line) seen.push(JSON.parse(line));
        }
      }
    } catch { /* aborted */ }
  })();
  return { seen, stop: async () => { ctl.abort(); await done; } };
}

// Task folders an instance made: DATA/jobs/<job>/<task>
function ranHere(srv) {
  const out = new Set();
  const root = path.join(srv.data, 'jobs');
  if (!existsSync(root)) return out;
  for (const j of readdirSync(root)) for (const t of readdirSync(path.join(root, j))) out.add(`${j}/${t}`);
  return out;
}

await run([
  ['a job submitted on one instance is seen, watched and canceled on the other', async () => {
    const [a, b] = await pair(freshDb());
    try {
      const w = watch(b, 0);
      const r = await nativeCall(a, 'POST', '/jobs', {
        start: true, title: 'across', tasks: [{ alias: 'long', command: ['sleep', '30'] }],
      });
      assertEq(r.status, 201, JSON.stringify(r.body));
      const id = r.body.id;
      const onB = await job(b, id);
      assertEq(onB.title, 'across');
      await waitFor(async () => (await job(b, id)).tasks[0].state === 'running', 10000, 'the task to run');
      const c = await nativeCall(b, 'POST', `/jobs/${id}/cancel`);
      assertEq(c.status, 200, JSON.stringify(c.body));
      // instance a stops its task: the task's end is written by a
      const done = await waitFor(async () => {
        const j = await job(a, id);
        return j.tasks[0].state === 'canceled' ? j : null;
      }, 15000, 'the task to be canceled by the instance running it');
      assertEq(done.state, 'canceled');
      await waitFor(() => w.seen.some((e) => e.job === id && e.task === 'long' && e.state === 'canceled'),
        10000, 'the task\'s canceled event on the other instance\'s stream');
      await w.stop();
      const states = w.seen.filter((e) => e.job === id).map((e) => `${e.task || 'job'}:${e.state}`);
      for (const s of ['job:created', 'job:queued', 'long:running', 'job:canceled', 'long:canceled']) {
        assert(states.includes(s), `stream on b lacks ${s}: ${states}`);
      }
      // sequence numbers grow without a gap seen twice
      const seqs = w.seen.map((e) => e.seq);
      assertEq([...seqs].sort((x, y) => x - y), seqs, 'events in order');
    } finally {
      await a.finish('instance a exits 0');
      await b.finish('instance b exits 0');
    }
  }],

  ['1,000 tasks over two instances each run exactly once', async () => {
    const [a, b] = await pair(freshDb());
    try {
      const ids = [];
      const submits = [];
      for (let i = 0; i < 200; i++) {
        const srv = i % 2 ? b : a;
        const tasks = [];
        for (let k = 0; k < 5; k++) tasks.push({ alias: `t${k}`, command: ['sh', '-c', 'echo ran $JOBRT_TASK $JOBRT_ATTEMPT'] });
        submits.push(nativeCall(srv, 'POST', '/jobs', { start: true, tasks }).then((r) => {
          assertEq(r.status, 201, JSON.stringify(r.body));
          ids.push(r.body.id);
        }));
        if (submits.length >= 20) await Promise.all(submits.splice(0));
      }
      await Promise.all(submits);
      assertEq(ids.length, 200);
      await waitFor(() => psql("SELECT count(*) FROM jobs WHERE state = 'succeeded'", `e2e_${dbn}`) === '200',
        280000, 'all 200 jobs to succeed');
      assertEq(psql('SELECT count(*) FROM tasks WHERE attempt = 1 AND state = \'succeeded\'', `e2e_${dbn}`), '1000');
      // one "ran" log line per task, never two
      assertEq(psql("SELECT count(*) FROM logs WHERE message LIKE 'ran %'", `e2e_${dbn}`), '1000');
      assertEq(psql("SELECT count(*) FROM (SELECT job_seq, task FROM logs GROUP BY 1, 2 HAVING count(*) > 1) x", `e2e_${dbn}`), '0');
      const onA = ranHere(a);
      const onB = ranHere(b);
      assertEq(onA.size + onB.size, 1000, 'task folders');
      assert(onA.size > 0 && onB.size > 0, `both instances ran tasks (${onA.size}, ${onB.size})`);
      for (const t of onA) assert(!onB.has(t), `${t} ran on both`);
    } finally {
      await a.finish('instance a exits 0 after 1,000 tasks');
      await b.finish('instance b exits 0 after 1,000 tasks');
    }
  }, { limit: 300000 }],

  ['kill -9 of an instance mid-task: its tasks fail over and run again, never twice at once', async () => {
    const db = freshDb();
    const [a, b] = await pair(db);
    try {
      const ids = [];
      for (let i = 0; i < 4; i++) {
        const r = await nativeCall(a, 'POST', '/jobs', {
          start: true,
          tasks: [{ alias: 'slow', retries: 1, command: ['sh', '-c', 'echo start $JOBRT_ATTEMPT; sleep 3; echo end $JOBRT_ATTEMPT', `marker-${i}-${process.pid}`] }],
        });
        assertEq(r.status, 201);
        ids.push(r.body.id);
      }
      await waitFor(async () => {
        const js = await Promise.all(ids.map((id) => job(b, id)));
        return js.every((j) => j.tasks[0].state === 'running');
      }, 10000, 'the tasks to run on a');
      a.proc.kill('SIGKILL');
      await a.exited;
      // sample the processes: a task's marker is never in two live shells
      let worst = 0;
      const deadline = Date.now() + 30000;
      for (;;) {
        const ps = spawnSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).stdout;
        for (let i = 0; i < 4; i++) {
          const n = ps.split('\n').filter((l) => l.startsWith('sh -c') && l.includes(`marker-${i}-${process.pid}`)).length;
          worst = Math.max(worst, n);
        }
        const js = await Promise.all(ids.map((id) => job(b, id)));
        if (js.every((j) => j.state === 'succeeded')) break;
        if (Date.now() > deadline) throw new Error(`not failed over: ${JSON.stringify(js.map((j) => [j.state, j.tasks[0].state, j.tasks[0].attempt]))}`);
        await sleep(100);
      }
      assert(worst <= 1, `a task ran twice at once (${worst} shells)`);
      for (const id of ids) {
        const j = await job(b, id);
        assertEq(j.tasks[0].attempt, 2, 'retried once');
        const logs = (await nativeCall(b, 'GET', `/jobs/${id}/logs`)).body.logs.map((l) => l.message);
        assert(logs.includes('start 2') && logs.includes('end 2') && !logs.includes('end 1'), JSON.stringify(logs));
        const ev = psql(`SELECT message FROM events WHERE job = '${id}' AND task = 'slow' AND message LIKE '%failed over%'`, db);
        assert(ev.includes('stopped heartbeating'), `no fail-over event: ${ev}`);
      }
    } finally {
      a.cleanup();
      await b.finish('the surviving instance exits 0');
    }
  }],

  ['PostgreSQL restarted under load: 503s while it is down, every acknowledged job intact', async () => {
    const db = freshDb();
    const [a, b] = await pair(db);
    const acked = [];
    const statuses = {};
    let stop = false;
    const load = (async () => {
      let i = 0;
      while (!stop && i < 20000) {
        const srv = i++ % 2 ? b : a;
        let r;
        try {
          r = await nativeCall(srv, 'POST', '/jobs', { start: true, tasks: [{ alias: 'x', command: ['true'] }] });
        } catch (e) { r = { status: 'error' }; }
        statuses[r.status] = (statuses[r.status] || 0) + 1;
        if (r.status === 201) acked.push(r.body.id);
        else assertEq(r.body && r.body.code, 'Unavailable', `a ${r.status} while the store was down: ${JSON.stringify(r.body)}`);
        await sleep(5);
      }
    })();
    try {
      await sleep(1000);
      pg('down');
      await sleep(1500);
      const during = { ...statuses };
      pg('up');
      // both instances reconnect (backoff at most 2 s) and answer 201 again
      const after = { ...statuses };
      await waitFor(() => statuses[201] >= (after[201] || 0) + 20, 30000,
        `201s after PostgreSQL came back: ${JSON.stringify(statuses)}`);
      stop = true;
      await load;
      assert((statuses[503] || 0) > 0, `no 503 while PostgreSQL was down: ${JSON.stringify(statuses)}`);
      assert(statuses[201] > (during[201] || 0), `no 201 after it came back: ${JSON.stringify(statuses)}`);
      await waitFor(async () => {
        const left = psql("SELECT count(*) FROM jobs WHERE state NOT IN ('succeeded')", db);
        return left === '0';
      }, 60000, 'every stored job to succeed');
      for (const id of acked) {
        const j = await job(a, id);
        assertEq(j.state, 'succeeded', `acknowledged job ${id}`);
      }
      // events: one sequence, no seq taken twice, each job's history whole
      assertEq(psql('SELECT count(*) - count(DISTINCT seq) FROM events', db), '0');
      assertEq(psql("SELECT count(*) FROM jobs j WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.job = j.id AND e.state = 'succeeded')", db), '0');
    } finally {
      stop = true;
      await load.catch(() => {});
      await a.finish('instance a exits 0 after the restart');
      await b.finish('instance b exits 0 after the restart');
    }
  }],
], {
  before: async () => { baseUrl = pg('up'); },
  after: async () => { pg('down'); rmSync(PG_DIR, { recursive: true, force: true }); },
});
