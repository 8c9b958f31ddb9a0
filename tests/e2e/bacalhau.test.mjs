// The Bacalhau surface end to end, with clients signing like Bacalhau's Go
// client and Python SDK: submit at both prefixes, a job run to Completed,
// list, states, results (a tar at a signed URL), events, logs over a
// WebSocket, cancel, OOM and timeout reasons, the native API's view, and the
// node endpoints.
import { rmSync } from 'node:fs';
import { assert, assertEq, run, sleep } from './lib.mjs';
import {
  ADMIN_AUTH, createPayload, envelope, get, goBytes, logs, makeClient, post, pyBytes, shSpec, startBacalhau,
  states, submit, submitOk, untar, waitRunning, waitSettled, waitState,
} from './bacalhau_lib.mjs';

const HELLO = 'echo hi; echo err >&2; echo x > /outputs/a.txt';

const before = async () => {
  const alice = makeClient();
  const bob = makeClient();
  const approver = makeClient();
  const srv = await startBacalhau([approver.id]);
  return { srv, alice, bob, approver, jobs: {} };
};

const after = async ({ srv }) => {
  rmSync(srv.hostDir, { recursive: true, force: true });
  return srv.finish('bacalhau: the daemon exits 0 on SIGTERM');
};

const isErrorBody = (b) => b && typeof b.Code === 'string' && typeof b.Message === 'string' && 'Details' in b;

const tests = [
  ['bacalhau: node endpoints answer at the root and under /api/v1', async ({ srv }) => {
    for (const pre of ['', '/api/v1']) {
      const v = await post(srv, `${pre}/version`, { client_id: 'x' });
      assertEq(v.status, 200, `POST ${pre}/version: ${v.text}`);
      const bvi = v.body.build_version_info;
      for (const k of ['major', 'minor', 'gitversion', 'gitcommit', 'builddate', 'goos', 'goarch']) {
        assert(k in bvi, `${pre}/version: build_version_info.${k} missing in ${v.text}`);
      }
      const ni = await get(srv, `${pre}/node_info`);
      assertEq(ni.status, 200, `${pre}/node_info`);
      assert(ni.body.PeerInfo && typeof ni.body.NodeType === 'string' && ni.body.ComputeNodeInfo,
        `${pre}/node_info: ${ni.text.slice(0, 300)}`);
      assert(ni.body.ComputeNodeInfo.ExecutionEngines.some((e) => /^docker$/i.test(e)), 'Docker engine listed');
      const hz = await get(srv, `${pre}/healthz`);
      assertEq(hz.status, 200, `${pre}/healthz`);
      assert(hz.body && hz.body.FreeSpace, `${pre}/healthz: FreeSpace in ${hz.text}`);
      for (const p of ['/livez', '/readyz', '/id']) {
        const r = await get(srv, `${pre}${p}`);
        assertEq(r.status, 200, `${pre}${p}: ${r.text}`);
        assert(r.text.length > 0, `${pre}${p} is empty`);
      }
    }
  }],

  ['bacalhau: a Go-style signed submit at /requester/submit runs to Completed', async (c) => {
    const { srv, alice } = c;
    const r = await submit(srv, alice, shSpec(HELLO));
    assertEq(r.status, 200, `submit: ${r.text}`);
    const job = r.body.job;
    assert(job && job.Metadata && job.Metadata.ID, `submit answers {"job": Job}: ${r.text.slice(0, 300)}`);
    assertEq(r.headers.get('x-bacalhau-job-id'), job.Metadata.ID, 'X-Bacalhau-Job-ID');
    assertEq(r.headers.get('x-bacalhau-client-id'), alice.id, 'X-Bacalhau-Client-ID');
    assertEq(job.Metadata.ClientID, alice.id, 'Metadata.ClientID');
    assertEq(job.APIVersion, 'V1beta1');
    assertEq(job.Spec.Docker.Entrypoint, ['sh', '-c', HELLO], 'the Spec reads back as sent');
    assert(!Number.isNaN(Date.parse(job.Metadata.CreatedAt)), `CreatedAt ${job.Metadata.CreatedAt}`);
    const st = await waitState(srv, alice, job.Metadata.ID, ['Completed', 'Error', 'Cancelled']);
    assertEq(st.State, 'Completed', JSON.stringify(st).slice(0, 600));
    assertEq(st.JobID, job.Metadata.ID);
    assertEq(st.Executions.length, 1, 'one execution for Concurrency 1');
    const ex = st.Executions[0];
    assertEq(ex.State, 'Completed');
    assertEq(ex.JobID, job.Metadata.ID);
    assert(typeof ex.ComputeReference === 'string' && ex.ComputeReference, 'ComputeReference');
    assertEq([ex.RunOutput.stdout, ex.RunOutput.stderr, ex.RunOutput.exitCode], ['hi\n', 'err\n', 0], 'RunOutput');
    assertEq([ex.RunOutput.stdouttruncated, ex.RunOutput.stderrtruncated], [false, false], 'truncation flags');
    assert(ex.PublishedResults && ex.PublishedResults.URL, `PublishedResults: ${JSON.stringify(ex.PublishedResults)}`);
    c.jobs.hello = job.Metadata.ID;
  }],

  ['bacalhau: a Python-style signed submit at /api/v1/requester/submit runs to Completed', async (c) => {
    const { srv, alice } = c;
    const bytes = pyBytes(createPayload(alice, shSpec('echo py')));
    assert(bytes.includes('", "') && bytes.includes('": '), `Python separators in ${bytes.slice(0, 80)}`);
    const r = await post(srv, '/api/v1/requester/submit', envelope(alice, bytes));
    assertEq(r.status, 200, `submit: ${r.text}`);
    const id = r.body.job.Metadata.ID;
    assertEq(r.headers.get('x-bacalhau-job-id'), id);
    const st = await waitState(srv, alice, id, ['Completed', 'Error', 'Cancelled']);
    assertEq(st.State, 'Completed', JSON.stringify(st).slice(0, 600));
    assertEq(st.Executions[0].RunOutput.stdout, 'py\n');
    // The other prefix reads the same job.
    const v1 = await post(srv, '/api/v1/requester/states', { client_id: alice.id, job_id: id });
    assertEq([v1.status, v1.body.state.State], [200, 'Completed']);
    c.jobs.py = id;
  }],

  ['bacalhau: Deal.Concurrency 2 gives two executions, each with its results', async (c) => {
    const { srv, alice } = c;
    const id = await submitOk(srv, alice, shSpec('echo twice', { Deal: { Concurrency: 2 } }));
    const st = await waitState(srv, alice, id, ['Completed', 'Error', 'Cancelled']);
    assertEq(st.State, 'Completed');
    assertEq(st.Executions.length, 2);
    assert(st.Executions[0].ComputeReference !== st.Executions[1].ComputeReference, 'distinct executions');
    const res = await post(srv, '/requester/results', { client_id: alice.id, job_id: id });
    assertEq(res.body.results.length, 2, `one result per execution: ${res.text.slice(0, 300)}`);
  }],

  ['bacalhau: list shows a client its own jobs, not another client\'s, and all with return_all', async (c) => {
    const { srv, alice, bob } = c;
    const bobJob = await submitOk(srv, bob, shSpec('echo bob', { Annotations: ['bobs'] }));
    await waitState(srv, bob, bobJob, ['Completed']);
    const ids = (r) => r.body.jobs.map((j) => j.Job.Metadata.ID);
    const own = await post(srv, '/requester/list', { client_id: alice.id, max_jobs: 100 });
    assertEq(own.status, 200, own.text);
    assert(ids(own).includes(c.jobs.hello) && ids(own).includes(c.jobs.py), 'alice sees her jobs');
    assert(!ids(own).includes(bobJob), 'alice does not see bob\'s job');
    for (const j of own.body.jobs) {
      assertEq(j.Job.Metadata.ClientID, alice.id);
      assert(j.State && j.State.JobID === j.Job.Metadata.ID, 'each entry has its State');
    }
    const bobs = await post(srv, '/api/v1/requester/list', { client_id: bob.id, max_jobs: 100 });
    assertEq(ids(bobs), [bobJob], 'bob sees only his job');
    const all = await post(srv, '/requester/list', { client_id: bob.id, return_all: true, max_jobs: 100 });
    assert(ids(all).includes(bobJob) && ids(all).includes(c.jobs.hello), 'return_all lists every client\'s');
    const one = await post(srv, '/requester/list', { client_id: alice.id, max_jobs: 1 });
    assertEq(one.body.jobs.length, 1, 'max_jobs 1');
    const asc = await post(srv, '/requester/list', { client_id: alice.id, max_jobs: 100, sort_by: 'created_at' });
    const desc = await post(srv, '/requester/list',
      { client_id: alice.id, max_jobs: 100, sort_by: 'created_at', sort_reverse: true });
    assertEq(ids(desc), [...ids(asc)].reverse(), 'sort_reverse reverses');
    assertEq(ids(asc).indexOf(c.jobs.hello) < ids(asc).indexOf(c.jobs.py), true, 'created_at ascending');
    const inc = await post(srv, '/requester/list', { client_id: bob.id, return_all: true, include_tags: ['bobs'] });
    assertEq(ids(inc), [bobJob], 'include_tags');
    const exc = await post(srv, '/requester/list',
      { client_id: bob.id, return_all: true, max_jobs: 100, exclude_tags: ['bobs'] });
    assert(!ids(exc).includes(bobJob) && ids(exc).includes(c.jobs.hello), 'exclude_tags');
  }],

  ['bacalhau: states of an unknown job is a 404 with Bacalhau\'s error body', async ({ srv, alice }) => {
    const r = await post(srv, '/requester/states', { client_id: alice.id, job_id: 'no-such-job' });
    assertEq(r.status, 404, r.text);
    assert(isErrorBody(r.body), `{"Code","Message","Details"}: ${r.text}`);
  }],

  ['bacalhau: results give a URL that downloads a tar of stdout, stderr, exitCode and outputs', async (c) => {
    const { srv, alice } = c;
    const r = await post(srv, '/requester/results', { client_id: alice.id, job_id: c.jobs.hello });
    assertEq(r.status, 200, r.text);
    assertEq(r.body.results.length, 1, r.text);
    const { NodeID, Data } = r.body.results[0];
    assert(typeof NodeID === 'string' && NodeID, 'NodeID');
    assert(/^urldownload$/i.test(Data.StorageSource), `StorageSource ${Data.StorageSource}`);
    assert(Data.Name && Data.URL, `Data: ${JSON.stringify(Data)}`);
    const dl = await fetch(Data.URL);
    assertEq(dl.status, 200, `GET ${Data.URL}`);
    const files = untar(Buffer.from(await dl.arrayBuffer()));
    const text = (k) => files[k] && files[k].toString();
    assertEq(text('stdout'), 'hi\n', `tar entries: ${Object.keys(files)}`);
    assertEq(text('stderr'), 'err\n');
    assertEq(text('exitCode'), '0');
    assertEq(text('outputs/a.txt'), 'x\n');
    // The URL is signed: altered, it no longer downloads.
    const bad = await fetch(Data.URL.replace(/signature=[^&]+/, `signature=${'A'.repeat(43)}`));
    assert(Data.URL.includes('signature=') && bad.status === 403, `tampered URL: ${bad.status}`);
    const v1 = await post(srv, '/api/v1/requester/results', { client_id: alice.id, job_id: c.jobs.hello });
    assertEq(v1.body.results.length, 1);
  }],

  ['bacalhau: publishers by name: Noop publishes nothing, ipfs falls back to local, s3 unmapped is refused', async (c) => {
    const { srv, alice } = c;
    const results = async (id) => (await post(srv, '/requester/results', { client_id: alice.id, job_id: id })).body;
    const noop = await submitOk(srv, alice, shSpec('echo quiet', { PublisherSpec: { Type: 'Noop' } }));
    assertEq((await waitState(srv, alice, noop, ['Completed', 'Error', 'Cancelled'])).State, 'Completed');
    assertEq((await results(noop)).results, [], 'Noop: no results');
    const ipfs = await submitOk(srv, alice, { ...shSpec('echo via ipfs'), PublisherSpec: undefined, Publisher: 'Ipfs' });
    assertEq((await waitState(srv, alice, ipfs, ['Completed', 'Error', 'Cancelled'])).State, 'Completed');
    const [one] = (await results(ipfs)).results;
    const dl = await fetch(one.Data.URL);
    assertEq(untar(Buffer.from(await dl.arrayBuffer())).stdout.toString(), 'via ipfs\n',
      'the legacy Publisher field, ipfs published by the local plugin');
    const s3 = await submit(srv, alice, shSpec('echo x', { PublisherSpec: { Type: 'S3' } }), { apiVersion: 'V1beta2' });
    assertEq(s3.status, 400, `an unmapped publisher: ${s3.text}`);
    assert(/s3/.test(s3.body.Message) && /local/.test(s3.body.Message) && /surfaces\.bacalhau\.publishers/.test(s3.body.Message),
      `names the publisher and the ones there are: ${s3.body.Message}`);
  }],

  ['bacalhau: events give the job\'s history up to Completed', async (c) => {
    const { srv, alice } = c;
    const r = await post(srv, '/requester/events', { client_id: alice.id, job_id: c.jobs.hello });
    assertEq(r.status, 200, r.text);
    const ev = r.body.events;
    assert(Array.isArray(ev) && ev.length > 0, r.text.slice(0, 300));
    for (const e of ev) {
      assertEq(e.JobID, c.jobs.hello);
      assert(['JobLevel', 'ExecutionLevel'].includes(e.Type), `Type ${e.Type}`);
      assert(!Number.isNaN(Date.parse(e.Time)), `Time ${e.Time}`);
    }
    const jobLevel = ev.filter((e) => e.Type === 'JobLevel');
    assertEq(jobLevel[jobLevel.length - 1].JobState.New, 'Completed', 'the last job event');
    assert(ev.some((e) => e.Type === 'ExecutionLevel' && e.ExecutionState && e.ExecutionState.New === 'Completed'),
      'an execution event ends Completed');
    const onlyJob = await post(srv, '/api/v1/requester/events',
      { client_id: alice.id, job_id: c.jobs.hello, filters: { exclude_execution_level: true } });
    assert(onlyJob.body.events.length > 0 && onlyJob.body.events.every((e) => e.Type === 'JobLevel'),
      'exclude_execution_level');
  }],

  ['bacalhau: logs over a WebSocket give the history, then a close frame', async (c) => {
    const { srv, alice } = c;
    for (const prefix of ['/requester', '/api/v1/requester']) {
      const r = await logs(srv, alice,
        { ClientID: alice.id, JobID: c.jobs.hello, ExecutionID: '', WithHistory: true, Follow: false }, { prefix });
      assertEq(r.frames, [{ Tag: 1, Data: 'hi\n' }, { Tag: 2, Data: 'err\n' }], `${prefix}/logs frames`);
      assertEq(r.code, 1000, `${prefix}/logs close code (${r.reason})`);
    }
  }],

  ['bacalhau: logs with Follow stream a running job\'s lines until it ends', async ({ srv, alice }) => {
    const id = await submitOk(srv, alice, shSpec('for i in 1 2 3 4; do echo line$i; sleep 0.5; done; echo bye >&2'));
    await waitRunning(srv, alice, id);
    const t0 = Date.now();
    const r = await logs(srv, alice, { ClientID: alice.id, JobID: id, ExecutionID: '', WithHistory: true, Follow: true });
    assertEq(r.frames, [
      { Tag: 1, Data: 'line1\n' }, { Tag: 1, Data: 'line2\n' }, { Tag: 1, Data: 'line3\n' },
      { Tag: 1, Data: 'line4\n' }, { Tag: 2, Data: 'bye\n' },
    ], 'followed frames');
    assertEq(r.code, 1000, `close code (${r.reason})`);
    assert(Date.now() - t0 > 300, 'the stream waited for the job');
    assertEq((await states(srv, alice, id)).State, 'Completed', 'closed once the job ended');
  }],

  ['bacalhau: logs with Follow and without history give only the lines after the request', async ({ srv, alice }) => {
    const id = await submitOk(srv, alice, shSpec('echo early; sleep 2; echo late'));
    await waitRunning(srv, alice, id);
    await sleep(800);
    const r = await logs(srv, alice, { ClientID: alice.id, JobID: id, ExecutionID: '', WithHistory: false, Follow: true });
    assertEq(r.frames, [{ Tag: 1, Data: 'late\n' }], 'only the line written after the request');
    assertEq(r.code, 1000, `close code (${r.reason})`);
  }],

  ['bacalhau: logs of another client\'s job, or with a forged signature, are refused', async (c) => {
    const { srv, alice, bob } = c;
    const mine = { ClientID: bob.id, JobID: c.jobs.hello, ExecutionID: '', WithHistory: true, Follow: false };
    const r = await logs(srv, bob, mine);
    assertEq(r.frames.filter((f) => 'Tag' in f), [], 'no log lines for another client');
    assert(r.code !== 1000, `closed with an error code, got ${r.code} ${r.reason}`);
    // Bob signs a LogsPayload claiming Alice's ClientID.
    const forged = await logs(srv, alice, { ...mine, ClientID: alice.id }, { signer: bob });
    assertEq(forged.frames.filter((f) => 'Tag' in f), [], 'no log lines for a forged payload');
    assert(forged.code !== 1000, `closed with an error code, got ${forged.code} ${forged.reason}`);
  }],

  ['bacalhau: cancel by the owner, by another client, and of an unknown job', async ({ srv, alice, bob }) => {
    const id = await submitOk(srv, alice, shSpec('sleep 30'));
    await waitRunning(srv, alice, id);
    const cancel = (who, jobId, pre = '/requester') => post(srv, `${pre}/cancel`,
      envelope(who, goBytes({ ClientID: who.id, JobID: jobId, Reason: 'test says stop' })));
    const other = await cancel(bob, id);
    assertEq(other.status, 401, `another client's cancel: ${other.text}`);
    assert(isErrorBody(other.body), other.text);
    assertEq((await states(srv, alice, id)).State, 'InProgress', 'still running after a refused cancel');
    const unknown = await cancel(alice, 'no-such-job');
    assertEq(unknown.status, 404, `unknown job: ${unknown.text}`);
    assert(isErrorBody(unknown.body), unknown.text);
    const own = await cancel(alice, id, '/api/v1/requester');
    assertEq(own.status, 200, `owner's cancel: ${own.text}`);
    assertEq(own.body.state.JobID, id);
    assert(['Cancelled'].includes(own.body.state.State), `answered state ${own.body.state.State}`);
    const st = await waitSettled(srv, alice, id, ['Cancelled', 'Error', 'Completed'], 15000);
    assertEq(st.State, 'Cancelled');
    assert(/cancel/i.test(st.Executions[0].Status), `Status says cancelled: ${st.Executions[0].Status}`);
  }],

  ['bacalhau: a job over its memory is Error and says out of memory', async ({ srv, alice }) => {
    const id = await submitOk(srv, alice, shSpec('head -c 300M /dev/zero | tail; echo survived',
      { Resources: { Memory: '64Mb' } }));
    const st = await waitState(srv, alice, id, ['Completed', 'Error', 'Cancelled'], 45000);
    assertEq(st.State, 'Error', JSON.stringify(st).slice(0, 600));
    const ex = st.Executions[0];
    assert(/out of memory/i.test(ex.Status), `Status: ${ex.Status}`);
    assert(!/timed out/i.test(ex.Status), 'not reported as a timeout');
  }],

  ['bacalhau: a job past its Timeout is Error and says timed out', async ({ srv, alice }) => {
    const t0 = Date.now();
    const id = await submitOk(srv, alice, shSpec('sleep 30', { Timeout: 1 }));
    const st = await waitState(srv, alice, id, ['Completed', 'Error', 'Cancelled'], 20000);
    assertEq(st.State, 'Error', JSON.stringify(st).slice(0, 600));
    assert(Date.now() - t0 < 15000, 'ended well before the sleep would');
    const ex = st.Executions[0];
    assert(/timed out/i.test(ex.Status), `Status: ${ex.Status}`);
    assert(!/out of memory/i.test(ex.Status), 'not reported as OOM');
  }],

  ['bacalhau: the native API lists the jobs, and an admin\'s native cancel shows as Cancelled', async (c) => {
    const { srv, alice } = c;
    const list = await get(srv, '/jobrt/v1/jobs?surface=bacalhau&limit=1000', ADMIN_AUTH);
    assertEq(list.status, 200, list.text.slice(0, 300));
    const ids = list.body.jobs.map((j) => j.id);
    assert(ids.includes(c.jobs.hello) && ids.includes(c.jobs.py), 'Bacalhau jobs in the native list');
    assert(list.body.jobs.every((j) => j.surface === 'bacalhau'), 'only Bacalhau jobs');
    const one = await get(srv, `/jobrt/v1/jobs/${c.jobs.hello}`, ADMIN_AUTH);
    assertEq([one.status, one.body.state], [200, 'succeeded']);
    const id = await submitOk(srv, alice, shSpec('sleep 30'));
    await waitRunning(srv, alice, id);
    const nc = await post(srv, `/jobrt/v1/jobs/${id}/cancel`, { reason: 'the admin stops it' }, ADMIN_AUTH);
    assertEq(nc.status, 200, `native cancel: ${nc.text.slice(0, 300)}`);
    const st = await waitSettled(srv, alice, id, ['Cancelled', 'Error', 'Completed'], 15000);
    assertEq(st.State, 'Cancelled');
    assert(/cancel/i.test(st.Executions[0].Status), `Status: ${st.Executions[0].Status}`);
    // A non-admin without credentials gets nothing from the native API.
    const anon = await get(srv, '/jobrt/v1/jobs?surface=bacalhau');
    assertEq(anon.status, 401);
    await sleep(0);
  }],
];

run(tests, { before, after });
