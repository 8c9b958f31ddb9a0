// The Kuscia surface end to end: the seed's create, query and batchQuery
// sent verbatim (fresh job_id) and answered as the seed shows, field by
// field; its two-task DAG in order; priority order under max_parallelism 1
// with the parties of a task side by side; what a party process sees; a
// failing and a tolerable task; resources; the native API's view.
import { assert, assertEq, nativeCall, run } from './lib.mjs';
import {
  ADMIN, create, freshId, job, kpost, nativeJob, nativeLogs, ok, partyTasks, query, refused, sameShape,
  seedJson, seedRequest, SEED_ID, startKuscia, task, taskStatus, time, waitState,
} from './kuscia_lib.mjs';

const before = async () => ({ srv: await startKuscia(), seedId: freshId('seed') });
const after = ({ srv }) => srv.finish('kuscia: the daemon exits 0 on SIGTERM');

// The seed's answer with its job id replaced by ours.
const seedAnswer = (name, id) => JSON.parse(JSON.stringify(seedJson(name)).split(`"${SEED_ID}"`).join(JSON.stringify(id)));

const ms = (s) => Date.parse(s);
const span = (tasks) => ({
  start: Math.min(...tasks.map((t) => ms(t.started_at))),
  end: Math.max(...tasks.map((t) => ms(t.ended_at))),
});

const tests = [
  ["kuscia: the seed's create request, sent verbatim, answers exactly as the seed shows", async ({ srv, seedId }) => {
    const r = await kpost(srv, 'create', seedRequest('create.request.json', seedId));
    assertEq(r.status, 200, r.text);
    assert(/^application\/json/.test(r.headers['content-type']), `Content-Type ${r.headers['content-type']}`);
    const want = seedAnswer('create.response.json', seedId);
    sameShape(want, r.body);
    assertEq(r.body, want, 'the create answer');
  }],

  ["kuscia: the seed's query answers field by field as the seed shows; job-split ran only after job-psi ended", async ({ srv, seedId }) => {
    await waitState(srv, seedId, ['Succeeded', 'Failed']);
    const r = await kpost(srv, 'query', seedRequest('query.request.json', seedId));
    assertEq(r.status, 200, r.text);
    const want = seedAnswer('query.response.json', seedId);
    sameShape(want, r.body);
    const { status, data } = r.body;
    assertEq(status, want.status, 'status');
    assertEq([data.job_id, data.initiator, data.max_parallelism, data.custom_fields],
      [seedId, 'alice', 2, {}], 'job_id, initiator, max_parallelism, custom_fields');
    // The task configs echo the request; the seed shows exactly these.
    assertEq(data.tasks, want.data.tasks, 'data.tasks');
    const st = data.status;
    assertEq([st.state, st.err_msg], ['Succeeded', ''], `state: ${JSON.stringify(st).slice(0, 800)}`);
    const [c, s, e] = [time(st.create_time, 'create_time'), time(st.start_time, 'start_time'), time(st.end_time, 'end_time')];
    assert(c <= s && s <= e, `create ${st.create_time} <= start ${st.start_time} <= end ${st.end_time}`);
    assertEq(st.tasks.map((t) => [t.alias, t.task_id, t.state, t.err_msg]),
      [['job-psi', 'job-psi', 'Succeeded', ''], ['job-split', 'job-split', 'Succeeded', '']], 'status.tasks');
    for (const t of st.tasks) {
      assertEq(t.parties.map((p) => [p.domain_id, p.state, p.err_msg, p.endpoints]),
        [['alice', 'Succeeded', '', []], ['bob', 'Succeeded', '', []]], `${t.alias}: parties`);
      const [tc, ts, te] = ['create_time', 'start_time', 'end_time'].map((k) => time(t[k], `${t.alias}.${k}`));
      assert(tc <= ts && ts <= te && s <= ts && te <= e, `${t.alias}: its times inside the job's: ${JSON.stringify(t)}`);
      assert(typeof t.progress === 'number' && t.progress >= 0 && t.progress <= 1, `${t.alias}.progress ${t.progress}`);
    }
    const [psi, split] = st.tasks;
    assert(time(split.start_time) >= time(psi.end_time), `job-split started ${split.start_time}, job-psi ended ${psi.end_time}`);
    for (const l of [st.stage_status_list, st.approve_status_list]) {
      for (const x of l) assert(['alice', 'bob'].includes(x.domain_id) && typeof x.state === 'string', JSON.stringify(l));
    }
    // The core's own timestamps (ms): every party of job-split started
    // after every party of job-psi ended, though max_parallelism is 2.
    const nj = await nativeJob(srv, seedId);
    const a = span(partyTasks(nj, 'job-psi'));
    const b = span(partyTasks(nj, 'job-split'));
    assert(b.start >= a.end, `native: job-split started ${b.start}, job-psi ended ${a.end}`);
  }],

  ["kuscia: batchQuery: the seed's request verbatim, several jobs in order, one unknown id fails the call", async ({ srv, seedId }) => {
    const r = await kpost(srv, 'status/batchQuery', seedRequest('batchQuery.request.json', seedId));
    assertEq(r.status, 200, r.text);
    const want = seedAnswer('batchQuery.response.json', seedId);
    sameShape(want, r.body);
    assertEq(r.body.status, want.status);
    const q = await query(srv, seedId);
    assertEq(r.body.data.jobs, [{ job_id: seedId, status: q.status }], 'batchQuery shows what query shows');
    const other = await create(srv, job(freshId('batch'), [task('one', 'secretflow-image')]));
    await waitState(srv, other, ['Succeeded']);
    const both = await ok(srv, 'status/batchQuery', { job_ids: [other, seedId, other] });
    assertEq(both.jobs.map((j) => [j.job_id, j.status.state]),
      [[other, 'Succeeded'], [seedId, 'Succeeded'], [other, 'Succeeded']], 'in the order asked');
    await refused(srv, 'status/batchQuery', { job_ids: [seedId, 'no-such-job', other] }, 11203, /no-such-job/);
  }],

  ['kuscia: each party process sees its domain, role, job and task ids and the task input config verbatim', async ({ srv }) => {
    const id = freshId('env');
    const tic = '{"a":"quote \\" backslash \\\\ dollar $HOME percent %s","ü":"ß"}';
    await create(srv, job(id, [{
      alias: 'show', app_image: 'secretflow-image', dependencies: [], task_input_config: tic,
      parties: [{ domain_id: 'alice', role: 'host' }, { domain_id: 'bob', role: 'guest' }],
    }]));
    const q = await waitState(srv, id, ['Succeeded', 'Failed']);
    assertEq(q.status.state, 'Succeeded', JSON.stringify(q.status).slice(0, 800));
    const taskId = q.tasks[0].task_id;
    assert(/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/.test(taskId), `a generated task_id: ${taskId}`);
    assertEq(taskStatus(q, 'show').task_id, taskId, 'status.tasks[].task_id');
    const logs = await nativeLogs(srv, id);
    const nj = await nativeJob(srv, id);
    const parties = partyTasks(nj, 'show');
    assertEq(parties.length, 2, `two party tasks in group "show": ${JSON.stringify(nj.tasks.map((t) => [t.alias, t.group]))}`);
    for (const [domain, role] of [['alice', 'host'], ['bob', 'guest']]) {
      const lines = (alias) => logs.filter((l) => l.task === alias).map((l) => l.message);
      const mine = parties.map((t) => lines(t.alias)).find((ls) => ls.some((m) => m.includes(`domain=${domain} `)));
      assert(mine, `a party task logged domain=${domain}: ${JSON.stringify(logs).slice(0, 1500)}`);
      assert(mine.includes(`party domain=${domain} role=${role} job=${id} task=${taskId}`), `${domain}: ${JSON.stringify(mine)}`);
      assert(mine.includes(`env=${tic}`), `${domain}: TASK_INPUT_CONFIG verbatim: ${JSON.stringify(mine)}`);
      assert(mine.includes(`file=${tic}`), `${domain}: /inputs/task_input_config.json verbatim: ${JSON.stringify(mine)}`);
    }
  }],

  ['kuscia: three ready tasks under max_parallelism 1 start in priority order, the parties of each side by side', async ({ srv }) => {
    const id = freshId('prio');
    await create(srv, job(id, [
      task('low', 'nap', { priority: 1 }), task('high', 'nap', { priority: 30 }), task('mid', 'nap', { priority: 20 }),
    ]));
    const q = await waitState(srv, id, ['Succeeded', 'Failed'], { ms: 40000 });
    assertEq(q.status.state, 'Succeeded', JSON.stringify(q.status).slice(0, 800));
    assertEq(q.tasks.map((t) => [t.alias, t.priority]), [['low', 1], ['high', 30], ['mid', 20]], 'tasks echo as sent');
    const order = ['high', 'mid', 'low'];
    const kt = order.map((a) => taskStatus(q, a));
    for (let i = 1; i < 3; i++) {
      assert(time(kt[i].start_time) >= time(kt[i - 1].end_time),
        `${order[i]} started ${kt[i].start_time} before ${order[i - 1]} ended ${kt[i - 1].end_time}`);
    }
    const nj = await nativeJob(srv, id);
    const spans = order.map((a) => {
      const ts = partyTasks(nj, a);
      assertEq(ts.length, 2, `${a}: one core task per party`);
      // Both parties ran at once: each started before the other ended.
      assert(Math.max(...ts.map((t) => ms(t.started_at))) < Math.min(...ts.map((t) => ms(t.ended_at))),
        `${a}: its parties ran side by side: ${JSON.stringify(ts.map((t) => [t.started_at, t.ended_at]))}`);
      return span(ts);
    });
    for (let i = 1; i < 3; i++) {
      assert(spans[i].start >= spans[i - 1].end, `native: ${order[i]} started ${spans[i].start}, ${order[i - 1]} ended ${spans[i - 1].end}`);
    }
  }],

  ['kuscia: a failing party fails its task and the job, each with a message', async ({ srv }) => {
    const id = freshId('fail');
    await create(srv, job(id, [task('boom', 'failer'), task('later', 'secretflow-image', { deps: ['boom'] })]));
    const q = await waitState(srv, id, ['Failed', 'Succeeded']);
    assertEq(q.status.state, 'Failed', JSON.stringify(q.status).slice(0, 800));
    assert(q.status.err_msg !== '', `the job's err_msg says why: ${JSON.stringify(q.status)}`);
    time(q.status.end_time, 'end_time');
    const boom = taskStatus(q, 'boom');
    assertEq(boom.state, 'Failed');
    assert(boom.err_msg !== '', `the task's err_msg: ${JSON.stringify(boom)}`);
    for (const p of boom.parties) {
      assertEq(p.state, 'Failed', JSON.stringify(boom.parties));
      assert(p.err_msg !== '', `party ${p.domain_id}: err_msg: ${JSON.stringify(p)}`);
    }
    const later = taskStatus(q, 'later');
    assert(!['Running', 'Succeeded'].includes(later.state) && later.start_time === '',
      `the dependant of a failed task never started: ${JSON.stringify(later)}`);
  }],

  ["kuscia: a tolerable task's failure does not fail the job and its dependant still runs", async ({ srv }) => {
    const id = freshId('tol');
    await create(srv, job(id, [
      task('maybe', 'failer', { tolerable: true }), task('after', 'secretflow-image', { deps: ['maybe'] }),
    ]));
    const q = await waitState(srv, id, ['Failed', 'Succeeded']);
    assertEq(q.status.state, 'Succeeded', JSON.stringify(q.status).slice(0, 800));
    assertEq([taskStatus(q, 'maybe').state, taskStatus(q, 'after').state], ['Failed', 'Succeeded']);
    assert(!('tolerable' in q.tasks[0]), 'TaskConfig has no tolerable field');
  }],

  ["kuscia: resources come from the party, else the app image, else none", async ({ srv }) => {
    const id = freshId('res');
    await create(srv, job(id, [
      { alias: 'sized', app_image: 'sized', dependencies: [], task_input_config: '{}',
        parties: [{ domain_id: 'alice', resources: { cpu: '250m', memory: '128Mi' } }, { domain_id: 'bob' }] },
      task('bare', 'secretflow-image'),
    ], { max_parallelism: 2 }));
    const q = await waitState(srv, id, ['Succeeded', 'Failed']);
    assertEq(q.status.state, 'Succeeded', JSON.stringify(q.status).slice(0, 800));
    const nj = await nativeJob(srv, id);
    const res = (alias) => partyTasks(nj, alias).map((t) => [t.resources.cpu, t.resources.memory]).sort((x, y) => y[0] - x[0]);
    assertEq(res('sized'), [[250, 128 * 1024 * 1024], [100, 64 * 1024 * 1024]], 'sized: alice from her party, bob from the app image');
    assertEq(res('bare'), [[0, 0], [0, 0]], 'bare: none asked');
    // Kuscia's QueryJob echoes a party's domain_id, role and bandwidth
    // limits, never its resources (they stay null).
    assertEq(q.tasks[0].parties.map((p) => p.resources), [null, null], 'query: parties[].resources');
  }],

  ['kuscia: the native API lists Kuscia jobs (surface=kuscia) with their party processes as tasks with logs', async ({ srv, seedId }) => {
    const page = await nativeCall(srv, 'GET', '/jobs?surface=kuscia&limit=1000', undefined, ADMIN);
    assertEq(page.status, 200, JSON.stringify(page.body));
    const mine = page.body.jobs.find((j) => j.id === seedId);
    assert(mine, `the seed job in GET /jobs?surface=kuscia: ${JSON.stringify(page.body.jobs.map((j) => j.id))}`);
    assert(page.body.jobs.every((j) => j.surface === 'kuscia'), 'only Kuscia jobs');
    const native = await nativeCall(srv, 'GET', '/jobs?surface=native', undefined, ADMIN);
    assert(!native.body.jobs.some((j) => j.id === seedId), 'not among the native ones');
    const nj = await nativeJob(srv, seedId);
    assertEq([nj.surface, nj.state, nj.max_parallelism], ['kuscia', 'succeeded', 2]);
    assertEq(nj.tasks.map((t) => t.group).sort(), ['job-psi', 'job-psi', 'job-split', 'job-split'], 'one task per party');
    const aliases = new Set(nj.tasks.map((t) => t.alias));
    assertEq(aliases.size, 4, 'distinct aliases');
    const logs = await nativeLogs(srv, seedId);
    for (const t of nj.tasks) {
      assertEq(t.state, 'succeeded', `${t.alias}`);
      assert(logs.some((l) => l.task === t.alias && /^party domain=(alice|bob) /.test(l.message)), `${t.alias} has logs: ${JSON.stringify(logs).slice(0, 800)}`);
      for (const d of t.deps) assert(aliases.has(d), `${t.alias}: dep ${d} is a party task`);
    }
    const split = partyTasks(nj, 'job-split');
    for (const t of split) assertEq(t.deps.slice().sort(), partyTasks(nj, 'job-psi').map((x) => x.alias).sort(), `${t.alias}: deps`);
  }],
];

run(tests, { before, after });
