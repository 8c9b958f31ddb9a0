// Prometheus metrics at /jobrt/metrics against a real daemon: the
// exposition passes `promtool check metrics` (Debian's prometheus), who may
// scrape (an admin, the scrape token; nobody when metrics are turned off),
// and the numbers move when things happen: a submit, each task outcome, a
// refused or rejected job, answers by route template and status class, the
// store's commits, a Lua handler killed at its deadline or memory cap, the
// node's capacity held by a running task.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import {
  ADMIN, ALICE, TEST_USERS, assert, assertEq, nativeCall, run, runJob, sleep, startServer,
} from './lib.mjs';

const TOKEN = 'scrape-0123456789abcdef';
const SITE = path.resolve('tests/e2e/site');
const CONFIG = `${TEST_USERS}
lua_path: [${SITE}]
lua: {deadline: 2s, memory: 4MiB}   # the memory cap is reached long before the deadline
node: {cpu: 2, memory: 1GiB, max_tasks: 4}
metrics: {token: ${TOKEN}}
surfaces:
  native: {approval: [hold]}
  probe: {module: e2e.probe, mount: /probe}
`;

// The exposition as {"name{labels}": value}.
function parse(text) {
  const out = {};
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out[line.slice(0, i)] = Number(line.slice(i + 1));
  }
  return out;
}

async function scrape(srv, headers = { Authorization: `Bearer ${TOKEN}` }) {
  const r = await fetch(`${srv.url}/jobrt/metrics`, { headers });
  const text = await r.text();
  assertEq(r.status, 200, text.slice(0, 300));
  return { text, m: parse(text) };
}

// How much each series grew from a to b (absent = 0).
const grew = (a, b, key) => (b[key] || 0) - (a[key] || 0);

async function waitFor(srv, pred, what, ms = 10000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const { m } = await scrape(srv);
    if (pred(m)) return m;
    if (Date.now() > deadline) throw new Error(`metrics never showed ${what}`);
    await sleep(50);
  }
}

const task = (extra = {}) => ({ alias: 'a', command: ['true'], ...extra });

const tests = [
  ['promtool check metrics accepts the exposition', async ({ srv }) => {
    await runJob(srv, { title: 'warm', tasks: [task()] });
    await fetch(`${srv.url}/probe/items/1`);
    const { text } = await scrape(srv);
    const p = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 30000 });
    assert(!p.error, `promtool could not run (make deps installs Debian's prometheus): ${p.error}`);
    assertEq([p.status, p.stdout + p.stderr], [0, ''], 'promtool findings');
  }],

  ['who may scrape: the token and an admin; others are refused', async ({ srv }) => {
    await scrape(srv);
    await scrape(srv, ADMIN);
    const statuses = [];
    for (const h of [{}, { Authorization: 'Bearer wrong-0123456789abcdef' }, ALICE]) {
      statuses.push((await fetch(`${srv.url}/jobrt/metrics`, { headers: h })).status);
    }
    assertEq(statuses, [401, 401, 403]);
  }],

  ['a submit and its task are counted: submission, transitions, outcome, times, answers', async ({ srv }) => {
    const a = (await scrape(srv)).m;
    const job = await runJob(srv, { title: 'counted', tasks: [task()] });
    assertEq(job.state, 'succeeded');
    const b = await waitFor(srv, (m) => grew(a, m, 'jobrt_task_outcomes_total{outcome="exited",result="succeeded"}') === 1,
      'the outcome');
    assertEq(grew(a, b, 'jobrt_job_submissions_total{surface="native"}'), 1);
    for (const s of ['queued', 'running', 'succeeded']) {
      assertEq(grew(a, b, `jobrt_job_transitions_total{state="${s}"}`), 1, s);
    }
    assertEq(grew(a, b, 'jobrt_jobs{surface="native",state="succeeded"}'), 1);
    assertEq(grew(a, b, 'jobrt_http_requests_total{surface="native",method="POST",route="/jobrt/v1/jobs",code="2xx"}'), 1);
    assert(grew(a, b, 'jobrt_http_requests_total{surface="native",method="GET",route="/jobrt/v1/jobs/{job_id}",code="2xx"}') >= 1,
      'the polls, under their route template');
    assertEq(grew(a, b, 'jobrt_http_request_duration_seconds_count{surface="native",method="POST",route="/jobrt/v1/jobs"}'), 1);
    for (const h of ['jobrt_task_queue_wait_seconds', 'jobrt_task_run_seconds', 'jobrt_sandbox_start_seconds']) {
      assertEq(grew(a, b, `${h}_count`), 1, h);
      assertEq(b[`${h}_bucket{le="+Inf"}`], b[`${h}_count`], `${h}: +Inf is the count`);
    }
    assert(grew(a, b, 'jobrt_store_commit_seconds_count') >= 1, 'commits');
    assert(grew(a, b, 'jobrt_store_commit_writes_sum') >= 5, 'the writes of a submit and a run');
  }],

  ['failures: an exit code, a timeout, an invalid job, a policy and an approver rejecting', async ({ srv }) => {
    const a = (await scrape(srv)).m;
    assertEq((await runJob(srv, { title: 'exit', tasks: [task({ command: ['sh', '-c', 'exit 3'] })] })).state, 'failed');
    assertEq((await runJob(srv, { title: 'slow', tasks: [task({ command: ['sleep', '30'], timeout: '1s' })] })).state, 'failed');
    const bad = await nativeCall(srv, 'POST', '/jobs', { title: 'bad', tasks: [{ alias: 'a', comand: ['true'] }] });
    assertEq(bad.status, 400);
    const refused = await nativeCall(srv, 'POST', '/jobs', { title: 'no', start: true, labels: { refuse: 'yes' }, tasks: [task()] });
    assertEq(refused.body.state, 'rejected');
    const held = await nativeCall(srv, 'POST', '/jobs', { title: 'held', start: true, labels: { hold: 'yes' }, tasks: [task()] });
    assertEq(held.body.state, 'awaiting_approval');
    assertEq((await nativeCall(srv, 'POST', `/jobs/${held.body.id}/approve`, { accept: false, reason: 'no' })).status, 200);
    const b = await waitFor(srv, (m) => grew(a, m, 'jobrt_task_outcomes_total{outcome="timeout",result="failed"}') === 1,
      'the timeout');
    assertEq(grew(a, b, 'jobrt_task_outcomes_total{outcome="exited",result="failed"}'), 1);
    assertEq(grew(a, b, 'jobrt_job_rejections_total{surface="native",reason="invalid"}'), 1);
    assertEq(grew(a, b, 'jobrt_job_rejections_total{surface="native",reason="policy"}'), 1);
    assertEq(grew(a, b, 'jobrt_job_rejections_total{surface="native",reason="approver"}'), 1);
    assertEq(grew(a, b, 'jobrt_job_transitions_total{state="failed"}'), 2);
    assertEq(grew(a, b, 'jobrt_job_transitions_total{state="rejected"}'), 2);
    assertEq(grew(a, b, 'jobrt_job_transitions_total{state="awaiting_approval"}'), 1);
    assertEq(grew(a, b, 'jobrt_http_requests_total{surface="native",method="POST",route="/jobrt/v1/jobs",code="4xx"}'), 1);
  }],

  ['Lua handlers killed at their deadline and memory cap are counted', async ({ srv }) => {
    const a = (await scrape(srv)).m;
    assertEq((await fetch(`${srv.url}/probe/loop`)).status, 500);
    assertEq((await fetch(`${srv.url}/probe/hog`)).status, 500);
    const b = (await scrape(srv)).m;
    assertEq(grew(a, b, 'jobrt_lua_kills_total{reason="deadline"}'), 1);
    assertEq(grew(a, b, 'jobrt_lua_kills_total{reason="memory"}'), 1);
    assertEq(grew(a, b, 'jobrt_http_requests_total{surface="probe",method="GET",route="/probe/loop",code="5xx"}'), 1);
    // A path no route takes counts under its surface, with an empty route.
    await fetch(`${srv.url}/probe/nowhere`);
    const c = (await scrape(srv)).m;
    assertEq(grew(b, c, 'jobrt_http_requests_total{surface="probe",method="GET",route="",code="4xx"}'), 1);
  }],

  ['the node: capacity a running task holds, running and waiting tasks', async ({ srv }) => {
    const r = await nativeCall(srv, 'POST', '/jobs', {
      title: 'hold', start: true,
      tasks: [task({ command: ['sleep', '30'], resources: { cpu: '500m', memory: '256MiB' } }),
        task({ alias: 'b', deps: ['a'] })],
    });
    assertEq(r.status, 201);
    const m = await waitFor(srv, (x) => x['jobrt_tasks{state="running"}'] === 1, 'the running task');
    assertEq([m['jobrt_node_cpu_cores{state="used"}'], m['jobrt_node_cpu_cores{state="free"}']], [0.5, 1.5]);
    assertEq([m['jobrt_node_memory_bytes{state="used"}'], m['jobrt_node_memory_bytes{state="free"}']],
      [256 * 2 ** 20, 768 * 2 ** 20]);
    assertEq([m['jobrt_node_task_slots{state="used"}'], m['jobrt_node_task_slots{state="free"}']], [1, 3]);
    assertEq(m['jobrt_tasks_waiting{reason="Dependency"}'], 1);
    assertEq(m['jobrt_jobs{surface="native",state="running"}'], 1);
    assert(m.process_resident_memory_bytes > 1e6 && m.process_open_fds > 3, 'the process');
    assert(m['jobrt_http_connections'] >= 1, 'this scrape\'s connection');
    await nativeCall(srv, 'POST', `/jobs/${r.body.id}/cancel`);
    await waitFor(srv, (x) => x['jobrt_node_cpu_cores{state="used"}'] === 0, 'the cpu given back');
  }],

  ['metrics: {enabled: false}: the route answers 404 and says why', async () => {
    const off = await startServer({ config: `${TEST_USERS}\nmetrics: {enabled: false}\n` });
    try {
      await runJob(off, { title: 'uncounted', tasks: [task()] });
      const r = await fetch(`${off.url}/jobrt/metrics`, { headers: ADMIN });
      assertEq(r.status, 404);
      assert((await r.json()).message.includes('metrics.enabled: false'), 'says why');
    } finally {
      await off.finish('daemon with metrics off exits 0');
    }
  }],
];

run(tests, {
  before: async () => ({ srv: await startServer({ config: CONFIG }) }),
  after: async ({ srv }) => srv.finish(),
});
