// What the Kuscia surface accepts and refuses: create's validation, each
// refusal with its code and a message naming the field; the proto JSON
// mapping on input (camelCase, enums by number, int64 and int32 as strings,
// unknown fields ignored) and on output (int64 as strings, defaults
// emitted); unknown jobs per operation; the Token check (401, empty body);
// a body that is not JSON.
import { assert, assertEq, nativeCall, run } from './lib.mjs';
import {
  ADMIN, CAROL, create, freshId, job, kpost, nativeJob, ok, query, refused, request, startKuscia, task,
  TOKEN, waitState,
} from './kuscia_lib.mjs';

const before = async () => ({ srv: await startKuscia() });
const after = ({ srv }) => srv.finish('kuscia input: the daemon exits 0 on SIGTERM');

// The job must not exist after a refused create.
async function absent(srv, id) {
  await refused(srv, 'query', { job_id: id }, 11202);
}

const tests = [
  ['kuscia: create refuses a bad job_id (11100, naming job_id)', async ({ srv }) => {
    for (const bad of ['Upper-Case', '-lead', 'trail-', 'under_score', 'x'.repeat(64), '']) {
      await refused(srv, 'create', job(bad, [task('a', 'secretflow-image')]), 11100, /job[ _]?id/i);
    }
  }],

  ['kuscia: create refuses a duplicate job_id (11201) and keeps the first job', async ({ srv }) => {
    const id = freshId('dup');
    await create(srv, job(id, [task('a', 'secretflow-image')], { custom_fields: { which: 'first' } }));
    await refused(srv, 'create', job(id, [task('b', 'secretflow-image')], { custom_fields: { which: 'second' } }), 11201, new RegExp(id));
    const q = await query(srv, id);
    assertEq([q.custom_fields, q.tasks.map((t) => t.alias)], [{ which: 'first' }, ['a']], 'the first job is untouched');
  }],

  ['kuscia: create refuses a missing dependency, a cycle, an unknown app image, a foreign domain (11100, naming the field)', async ({ srv }) => {
    const cases = [
      ['missing dependency', [task('a', 'secretflow-image'), task('b', 'secretflow-image', { deps: ['nope'] })], /dependenc/i],
      ['cycle', [task('a', 'secretflow-image', { deps: ['c'] }), task('b', 'secretflow-image', { deps: ['a'] }),
        task('c', 'secretflow-image', { deps: ['b'] })], /cycl|dependenc/i],
      ['self dependency', [task('a', 'secretflow-image', { deps: ['a'] })], /cycl|dependenc/i],
      ['unknown app image', [task('a', 'no-such-image')], /app_image/],
      ['foreign domain', [task('a', 'secretflow-image', { parties: ['alice', 'carol'] })], /domain[ _]?id|carol/i],
      ['duplicate alias', [task('a', 'secretflow-image'), task('a', 'secretflow-image')], /alias/],
      ['empty alias', [task('', 'secretflow-image')], /alias/],
      ['no parties', [task('a', 'secretflow-image', { parties: [] })], /parties/],
      ['party without domain_id', [{ ...task('a', 'secretflow-image'), parties: [{ role: 'partner' }] }], /domain[ _]?id/i],
      ['no tasks', [], /tasks/],
    ];
    for (const [what, tasks, field] of cases) {
      const id = freshId('bad');
      try {
        await refused(srv, 'create', job(id, tasks), 11100, field);
      } catch (e) { throw new Error(`${what}: ${e.message}`); }
      await absent(srv, id);
    }
    const noInitiator = job(freshId('bad'), [task('a', 'secretflow-image')]);
    delete noInitiator.initiator;
    await refused(srv, 'create', noInitiator, 11100, /initiator/);
    await absent(srv, noInitiator.job_id);
  }],

  ['kuscia: bad field types are 11100 naming the field; a body that is not JSON is 11101', async ({ srv }) => {
    const base = () => job(freshId('type'), [task('a', 'secretflow-image')]);
    await refused(srv, 'create', { ...base(), max_parallelism: 'lots' }, 11100, /max_parallelism|maxParallelism/);
    await refused(srv, 'create', { ...base(), max_parallelism: 2 ** 31 }, 11100, /max_parallelism|maxParallelism/);
    await refused(srv, 'create', { ...base(), tasks: 'a task' }, 11100, /tasks/);
    const t = task('a', 'secretflow-image', { priority: 1.5 });
    await refused(srv, 'create', { ...base(), tasks: [t] }, 11100, /priority/);
    await refused(srv, 'create', { ...base(), custom_fields: { k: 1 } }, 11100, /custom_fields|customFields/);
    for (const body of ['{"job_id": ', 'job_id=x', '[1, 2]']) {
      const r = await kpost(srv, 'create', body);
      assertEq(r.status, 200, `${body}: ${r.text}`);
      assert([11100, 11101].includes(r.body && r.body.status && r.body.status.code), `${body}: ${r.text}`);
      if (body !== '[1, 2]') assertEq(r.body.status.code, 11101, `${body} is not JSON: ${r.text}`);
    }
  }],

  ['kuscia: camelCase names, enums and int32 by string, int64 as number or string, unknown fields ignored; int64 out as strings', async ({ srv }) => {
    const id = freshId('camel');
    const body = {
      jobId: id, initiator: 'alice', maxParallelism: '2', somethingNew: { ignored: true },
      customFields: { team: 'e2e' },
      tasks: [{
        alias: 'cc', appImage: 'secretflow-image', taskInputConfig: '{"x":1}', priority: '7', dependencies: [],
        scheduleConfig: { taskTimeoutSeconds: 60 },
        parties: [
          { domainId: 'alice', role: 'host', bandwidthLimits: [{ destinationId: 'bob', limitKbps: '1000' }] },
          { domain_id: 'bob', role: 'guest', bandwidth_limits: [{ destination_id: 'alice', limit_kbps: 2048 }] },
        ],
        unknownTaskField: 'ignored',
      }],
    };
    const r = await kpost(srv, 'create', body);
    assertEq(r.status, 200, r.text);
    assertEq(r.body, { status: { code: 0, message: 'success', details: [] }, data: { job_id: id } });
    const q = await waitState(srv, id, ['Succeeded', 'Failed']);
    assertEq(q.status.state, 'Succeeded', JSON.stringify(q.status).slice(0, 800));
    assertEq([q.job_id, q.initiator, q.max_parallelism, q.custom_fields], [id, 'alice', 2, { team: 'e2e' }]);
    const t = q.tasks[0];
    assertEq([t.alias, t.app_image, t.task_input_config, t.priority, t.dependencies], ['cc', 'secretflow-image', '{"x":1}', 7, []]);
    assertEq(t.parties, [
      { domain_id: 'alice', role: 'host', resources: null, bandwidth_limits: [{ destination_id: 'bob', limit_kbps: '1000' }] },
      { domain_id: 'bob', role: 'guest', resources: null, bandwidth_limits: [{ destination_id: 'alice', limit_kbps: '2048' }] },
    ], 'parties, with limit_kbps (uint64) as strings');
    // Given schedule_config, its zero fields take Kuscia's defaults.
    assertEq(t.schedule_config, { task_timeout_seconds: 60, resource_reserved_seconds: 30, resource_reallocation_interval_seconds: 30 });
    const nj = await nativeJob(srv, id);
    assert(nj.tasks.length === 2 && nj.tasks.every((x) => x.timeout === 60), `timeout 60 s on each party task: ${JSON.stringify(nj.tasks.map((x) => x.timeout))}`);
    assert(Object.values(nj.labels || {}).includes('e2e'), `custom_fields become labels: ${JSON.stringify(nj.labels)}`);
  }],

  ['kuscia: max_parallelism 0 or below becomes 1', async ({ srv }) => {
    for (const mp of [0, -3]) {
      const id = await create(srv, job(freshId('mp'), [task('a', 'secretflow-image')], { max_parallelism: mp }));
      assertEq((await query(srv, id)).max_parallelism, 1, `max_parallelism ${mp}`);
      assertEq((await nativeJob(srv, id)).max_parallelism, 1, `native max_parallelism for ${mp}`);
    }
    const none = job(freshId('mp'), [task('a', 'secretflow-image')]);
    delete none.max_parallelism;
    await create(srv, none);
    assertEq((await query(srv, none.job_id)).max_parallelism, 1, 'max_parallelism left out');
  }],

  ['kuscia: approve takes its result by name or number; an unknown result is 11100', async ({ srv }) => {
    const id = freshId('enum');
    await create(srv, job(id, [task('a', 'secretflow-image')], { custom_fields: { gate: 'hold' } }));
    await waitState(srv, id, ['AwaitingApproval']);
    await refused(srv, 'approve', { job_id: id, result: 'APPROVE_RESULT_UNKNOWN' }, 11100);
    await refused(srv, 'approve', { job_id: id, result: 0 }, 11100);
    await refused(srv, 'approve', { job_id: id, result: 'MAYBE' }, 11100, /result/);
    await refused(srv, 'approve', { job_id: id, result: 9 }, 11100);
    await ok(srv, 'approve', { jobId: id, result: 1 });
    assertEq((await waitState(srv, id, ['Succeeded', 'Failed'])).status.state, 'Succeeded');
  }],

  ['kuscia: an unknown job answers each operation its code; an empty job_id is 11100', async ({ srv }) => {
    const codes = { query: 11202, delete: 11204, stop: 11205, approve: 11206, suspend: 11207, restart: 11208, cancel: 11209 };
    for (const [op, code] of Object.entries(codes)) {
      const body = { job_id: 'no-such-job' };
      if (op === 'approve') body.result = 'APPROVE_RESULT_ACCEPT';
      await refused(srv, op, body, code);
      await refused(srv, op, { ...body, job_id: '' }, 11100, /job[ _]?id/i);
    }
    await refused(srv, 'status/batchQuery', { job_ids: [] }, 11100);
  }],

  ['kuscia: a missing or wrong Token is 401 with an empty body; a jobrt admin token works, a user token does not', async ({ srv }) => {
    const body = { job_id: 'no-such-job' };
    for (const [what, token] of [['missing', null], ['wrong', 'nope'], ['almost', TOKEN + 'x'], ['empty', '']]) {
      for (const route of ['query', 'create', 'watch']) {
        const r = await kpost(srv, route, body, { token });
        assertEq([r.status, r.text], [401, ''], `${what} token on ${route}`);
      }
    }
    // Header names are case-insensitive.
    const lower = await kpost(srv, 'query', body, { token: null, headers: { token: TOKEN } });
    assertEq(lower.body.status.code, 11202, `lower-case header: ${lower.text}`);
    const issue = async (who) => {
      const r = await nativeCall(srv, 'POST', '/tokens', undefined, who);
      assertEq(r.status, 201, JSON.stringify(r.body));
      return r.body.token;
    };
    const admin = await kpost(srv, 'query', body, { token: await issue(ADMIN) });
    assertEq([admin.status, admin.body && admin.body.status.code], [200, 11202], `admin's token: ${admin.text}`);
    const user = await kpost(srv, 'query', body, { token: await issue(CAROL) });
    assertEq([user.status, user.text], [401, ''], "a user's jobrt token");
    // Basic credentials are not a Token.
    const basic = await kpost(srv, 'query', body, { token: null, headers: ADMIN });
    assertEq([basic.status, basic.text], [401, ''], 'HTTP Basic instead of a Token');
  }],

  ['kuscia: the routes are POST only', async ({ srv }) => {
    const r = await request(srv, 'GET', '/api/v1/job/query', undefined, { Token: TOKEN });
    assert([404, 405].includes(r.status), `GET /api/v1/job/query: ${r.status} ${r.text}`);
    const u = await kpost(srv, 'nothing-here', {});
    assertEq(u.status, 404, `POST an unknown route: ${u.text}`);
  }],
];

run(tests, { before, after });
