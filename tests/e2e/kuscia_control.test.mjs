// The Kuscia control operations end to end, with Kuscia's rules: stop ->
// Failed and restart re-running only what did not succeed; suspend while
// running -> Suspended -> restart; cancel is final; refused transitions with
// their codes; approve accept and reject; delete of a running and of a
// finished job. The seed's requests are sent verbatim (fresh job_id). Party
// processes are watched in /proc (the sleeper app image marks them).
import { assert, assertEq, nativeCall, run, sleep } from './lib.mjs';
import {
  ADMIN, create, freshId, job, kpost, nativeJob, ok, partyTasks, query, refused, seedJson, seedRequest, SEED_ID,
  sleepers, startKuscia, task, taskStatus, time, waitSleepers, waitState,
} from './kuscia_lib.mjs';

const before = async () => ({ srv: await startKuscia() });
const after = ({ srv }) => srv.finish('kuscia control: the daemon exits 0 on SIGTERM');

// Send the seed's request for `op` (the same body as query's) and check
// the answer is the seed's.
async function seedOp(srv, op, id) {
  const r = await kpost(srv, op, seedRequest('query.request.json', id));
  const want = JSON.parse(JSON.stringify(seedJson('create.response.json')).split(`"${SEED_ID}"`).join(JSON.stringify(id)));
  assertEq([r.status, r.body], [200, want], `${op} ${id}: ${r.text}`);
}

// A job of two Kuscia tasks: "quick" succeeds, then "long" sleeps in both
// parties. Resolves once both sleepers run.
async function longJob(srv, prefix, extra) {
  const id = freshId(prefix);
  await create(srv, job(id, [task('quick', 'secretflow-image'), task('long', 'sleeper', { deps: ['quick'] })], extra));
  await waitSleepers(id, ['alice', 'bob']);
  const q = await waitState(srv, id, ['Running'], { until: (d) => taskStatus(d, 'long').state === 'Running' });
  assertEq(taskStatus(q, 'quick').state, 'Succeeded');
  return id;
}

const tests = [
  ['kuscia: stop -> Failed (its tasks stopped), restart re-runs only what did not succeed, stop with a reason', async ({ srv }) => {
    const id = await longJob(srv, 'stop');
    const quickBefore = partyTasks(await nativeJob(srv, id), 'quick').map((t) => [t.alias, t.started_at, t.attempt]);
    await seedOp(srv, 'stop', id);
    // The job is Failed at once; its parties' processes take a moment to end.
    const q = await waitState(srv, id, ['Failed'], { until: (d) => taskStatus(d, 'long').state === 'Failed' });
    await waitSleepers(id, []);
    time(q.status.end_time, 'end_time of a stopped job');
    assertEq([taskStatus(q, 'quick').state, taskStatus(q, 'long').state], ['Succeeded', 'Failed'], JSON.stringify(q.status.tasks));
    await seedOp(srv, 'restart', id);
    await waitSleepers(id, ['alice', 'bob']);
    const r = await waitState(srv, id, ['Running']);
    assertEq(taskStatus(r, 'quick').state, 'Succeeded', 'the succeeded task stays');
    const quickAfter = partyTasks(await nativeJob(srv, id), 'quick').map((t) => [t.alias, t.started_at, t.attempt]);
    assertEq(quickAfter, quickBefore, 'the succeeded task was not run again');
    await ok(srv, 'stop', { job_id: id, reason: 'stopped by the e2e test' });
    const f = await waitState(srv, id, ['Failed']);
    assert(f.status.err_msg.includes('stopped by the e2e test'), `err_msg gives the reason: ${JSON.stringify(f.status)}`);
    await waitSleepers(id, []);
  }],

  ['kuscia: suspend while running -> Suspended; suspend again is 11210, restart -> Running; restart while running is 11211', async ({ srv }) => {
    const id = await longJob(srv, 'susp');
    await seedOp(srv, 'suspend', id);
    await waitState(srv, id, ['Suspended']);
    await waitSleepers(id, []);
    await refused(srv, 'suspend', { job_id: id }, 11210);
    await seedOp(srv, 'restart', id);
    await waitSleepers(id, ['alice', 'bob']);
    await waitState(srv, id, ['Running']);
    await refused(srv, 'restart', { job_id: id }, 11211);
    await ok(srv, 'cancel', { job_id: id });
    await waitState(srv, id, ['Cancelled']);
    await waitSleepers(id, []);
  }],

  ['kuscia: cancel -> Cancelled is final: restart 11211, suspend 11210, approve 11206', async ({ srv }) => {
    const id = await longJob(srv, 'canc');
    await seedOp(srv, 'cancel', id);
    const q = await waitState(srv, id, ['Cancelled']);
    await waitSleepers(id, []);
    time(q.status.end_time, 'end_time of a cancelled job');
    await refused(srv, 'restart', { job_id: id }, 11211);
    await refused(srv, 'suspend', { job_id: id }, 11210);
    await refused(srv, 'approve', { job_id: id, result: 'APPROVE_RESULT_ACCEPT' }, 11206);
    await sleep(300);
    assertEq((await query(srv, id)).status.state, 'Cancelled', 'still Cancelled');
    assertEq(sleepers(id), [], 'nothing runs again');
  }],

  ['kuscia: suspend and restart of jobs that are not running or not restartable are refused', async ({ srv }) => {
    const done = await create(srv, job(freshId('done'), [task('a', 'secretflow-image')]));
    await waitState(srv, done, ['Succeeded']);
    await refused(srv, 'suspend', { job_id: done }, 11210);
    await refused(srv, 'restart', { job_id: done }, 11211);
    const held = await create(srv, job(freshId('held'), [task('a', 'secretflow-image')], { custom_fields: { gate: 'hold' } }));
    await waitState(srv, held, ['AwaitingApproval']);
    await refused(srv, 'suspend', { job_id: held }, 11210);
    await refused(srv, 'restart', { job_id: held }, 11211);
    await ok(srv, 'delete', { job_id: held });
  }],

  ['kuscia: approve ACCEPT runs a job awaiting approval; approving it again is 11206', async ({ srv }) => {
    const id = await create(srv, job(freshId('acc'), [task('a', 'secretflow-image')], { custom_fields: { gate: 'hold' } }));
    const q = await waitState(srv, id, ['AwaitingApproval']);
    assertEq(q.custom_fields, { gate: 'hold' });
    await sleep(300);
    const nj = await nativeJob(srv, id);
    assert(nj.tasks.every((t) => !t.started_at), `nothing ran while awaiting approval: ${JSON.stringify(nj.tasks)}`);
    assertEq((await query(srv, id)).status.state, 'AwaitingApproval', 'still waiting');
    const r = await kpost(srv, 'approve', { job_id: id, result: 'APPROVE_RESULT_ACCEPT', reason: 'looks fine' });
    const want = JSON.parse(JSON.stringify(seedJson('create.response.json')).split(`"${SEED_ID}"`).join(JSON.stringify(id)));
    assertEq([r.status, r.body], [200, want], `approve: ${r.text}`);
    assertEq((await waitState(srv, id, ['Succeeded', 'Failed'])).status.state, 'Succeeded');
    await refused(srv, 'approve', { job_id: id, result: 'APPROVE_RESULT_ACCEPT' }, 11206);
    await refused(srv, 'approve', { job_id: id, result: 'APPROVE_RESULT_REJECT' }, 11206);
  }],

  ['kuscia: approve REJECT ends the job ApprovalReject with the reason; a policy may reject too', async ({ srv }) => {
    const id = await create(srv, job(freshId('rej'), [task('a', 'secretflow-image')], { custom_fields: { gate: 'hold' } }));
    await waitState(srv, id, ['AwaitingApproval']);
    await ok(srv, 'approve', { job_id: id, result: 2, reason: 'not on a Sunday' });
    const q = await waitState(srv, id, ['ApprovalReject']);
    assert(q.status.err_msg.includes('not on a Sunday'), `err_msg carries the reason: ${JSON.stringify(q.status)}`);
    await refused(srv, 'approve', { job_id: id, result: 'APPROVE_RESULT_ACCEPT' }, 11206);
    await refused(srv, 'restart', { job_id: id }, 11211);
    const nj = await nativeJob(srv, id);
    assert(nj.tasks.every((t) => !t.started_at), 'nothing ran');
    const pol = await create(srv, job(freshId('pol'), [task('a', 'secretflow-image')], { custom_fields: { gate: 'refuse' } }));
    const p = await waitState(srv, pol, ['ApprovalReject']);
    assert(p.status.err_msg.includes('refuses jobs marked refuse'), `the policy's reason: ${JSON.stringify(p.status)}`);
  }],

  ['kuscia: approve of a running job is 11206; stop of a job awaiting approval ends it Failed', async ({ srv }) => {
    const id = await longJob(srv, 'runapp');
    await refused(srv, 'approve', { job_id: id, result: 'APPROVE_RESULT_ACCEPT' }, 11206);
    await ok(srv, 'cancel', { job_id: id });
    await waitSleepers(id, []);
    const held = await create(srv, job(freshId('hstop'), [task('a', 'secretflow-image')], { custom_fields: { gate: 'hold' } }));
    await waitState(srv, held, ['AwaitingApproval']);
    await ok(srv, 'stop', { job_id: held, reason: 'not wanted' });
    await waitState(srv, held, ['Failed']);
  }],

  ['kuscia: delete of a running job stops its parties and removes it; the id can be used again once it is gone', async ({ srv }) => {
    const id = await longJob(srv, 'delrun');
    await seedOp(srv, 'delete', id);
    await refused(srv, 'query', { job_id: id }, 11202);
    const n = await nativeCall(srv, 'GET', `/jobs/${id}`, undefined, ADMIN);
    assertEq(n.status, 404, `native GET after delete: ${JSON.stringify(n.body)}`);
    await waitSleepers(id, []);
    await refused(srv, 'delete', { job_id: id }, 11204);
    const deadline = Date.now() + 15000;
    for (;;) {
      const r = await kpost(srv, 'create', job(id, [task('again', 'secretflow-image')]));
      if (r.body && r.body.status && r.body.status.code === 0) break;
      assertEq(r.body && r.body.status && r.body.status.code, 11201, `create with the id of a job being deleted: ${r.text}`);
      assert(Date.now() < deadline, 'the id is free again within 15 s');
      await sleep(100);
    }
    const q = await waitState(srv, id, ['Succeeded']);
    assertEq(q.tasks.map((t) => t.alias), ['again'], 'a new job, not the old one');
  }],

  ['kuscia: delete of a finished job removes it and its tasks', async ({ srv }) => {
    const id = await create(srv, job(freshId('deldone'), [task('a', 'secretflow-image'), task('b', 'failer', { deps: ['a'] })]));
    await waitState(srv, id, ['Failed']);
    await ok(srv, 'delete', { job_id: id });
    await refused(srv, 'query', { job_id: id }, 11202);
    await refused(srv, 'status/batchQuery', { job_ids: [id] }, 11203);
    const page = await nativeCall(srv, 'GET', '/jobs?surface=kuscia&limit=1000', undefined, ADMIN);
    assert(!page.body.jobs.some((j) => j.id === id), 'gone from the native list');
  }],
];

run(tests, { before, after });
