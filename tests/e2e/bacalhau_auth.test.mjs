// The Bacalhau surface's signed envelopes and documents end to end:
// tampered payloads and envelopes missing a field are refused and create no
// job, approval by the configured approver only (a held job released, one
// rejected with its reason), enums as ints and names in any case, inputs.
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { assert, assertEq, run, sleep } from './lib.mjs';
import {
  ADMIN_AUTH, createPayload, envelope, get, goBytes, makeClient, post, pyBytes, shSpec, startBacalhau, states,
  submit, submitOk, waitState,
} from './bacalhau_lib.mjs';

const before = async () => {
  const alice = makeClient();
  const bob = makeClient();
  const approver = makeClient();
  const srv = await startBacalhau([approver.id]);
  return { srv, alice, bob, approver };
};

const after = async ({ srv }) => {
  rmSync(srv.hostDir, { recursive: true, force: true });
  return srv.finish('bacalhau auth: the daemon exits 0 on SIGTERM');
};

const isErrorBody = (b) => b && typeof b.Code === 'string' && typeof b.Message === 'string' && 'Details' in b;

// How many Bacalhau jobs the runtime holds, through the native API.
async function jobCount(srv) {
  const r = await get(srv, '/jobrt/v1/jobs?surface=bacalhau&limit=1000', ADMIN_AUTH);
  assertEq(r.status, 200, r.text.slice(0, 300));
  return r.body.jobs.length;
}

// A refused submit: 400 or 401 with Bacalhau's error body, a message
// matching `why`, and no job created.
async function refused(srv, body, why, what, headers) {
  const n = await jobCount(srv);
  const r = await post(srv, '/requester/submit', body, headers);
  assert(r.status === 400 || r.status === 401, `${what}: expected 400 or 401, got ${r.status} ${r.text.slice(0, 300)}`);
  assert(isErrorBody(r.body), `${what}: {"Code","Message","Details"}, got ${r.text.slice(0, 300)}`);
  assert(why.test(r.body.Message), `${what}: the Message should match ${why}, got ${JSON.stringify(r.body.Message)}`);
  assertEq(await jobCount(srv), n, `${what}: no job created`);
  return r;
}

const moderate = (who, jobId, response, claimed = who.id) =>
  envelope(who, goBytes({ ClientID: claimed, JobID: jobId, Response: response }));

async function waitQueued(srv, client, id) {
  const st = await waitState(srv, client, id, ['Queued', 'InProgress', 'Completed', 'Error'], 15000);
  assertEq(st.State, 'Queued', `a job annotated hold waits: ${JSON.stringify(st).slice(0, 400)}`);
  return st;
}

const tests = [
  ['bacalhau: a payload with one byte changed after signing is refused', async ({ srv, alice }) => {
    const bytes = goBytes(createPayload(alice, shSpec('echo tamper1')));
    const sent = bytes.replace('tamper1', 'tamper2');
    assert(sent !== bytes && sent.length === bytes.length, 'one byte differs');
    await refused(srv, envelope(alice, sent, { signed: bytes }), /signature/i, 'one byte changed');
  }],

  ['bacalhau: a payload re-serialised with other whitespace after signing is refused', async ({ srv, alice }) => {
    const p = createPayload(alice, shSpec('echo reserialised'));
    const signed = goBytes(p);
    const sent = pyBytes(p);
    assertEq(JSON.parse(sent), JSON.parse(signed), 'the same document');
    await refused(srv, envelope(alice, sent, { signed }), /signature/i, 'Go-signed, Python-spaced');
    const pretty = JSON.stringify(p, null, 2);
    await refused(srv, envelope(alice, pretty, { signed }), /signature/i, 'pretty-printed');
  }],

  ['bacalhau: a payload naming another key\'s ClientID is refused', async ({ srv, alice, bob }) => {
    // Bob signs, with his own key sent, a payload claiming Alice's ClientID.
    const bytes = goBytes(createPayload(alice, shSpec('echo impostor')));
    await refused(srv, envelope(alice, bytes, { signer: bob }), /client.?id|match/i, 'another key\'s ClientID');
  }],

  ['bacalhau: an envelope missing payload, signature or client_public_key is refused, naming it', async (c) => {
    const { srv, alice } = c;
    const bytes = goBytes(createPayload(alice, shSpec('echo missing')));
    await refused(srv, envelope(alice, bytes, { omit: 'payload' }), /payload/i, 'no payload');
    await refused(srv, envelope(alice, bytes, { omit: 'signature' }), /signature/i, 'no signature');
    await refused(srv, envelope(alice, bytes, { omit: 'client_public_key' }), /public.?key/i, 'no client_public_key');
    await refused(srv, envelope(alice, bytes, { pub: '' }), /public.?key/i, 'an empty client_public_key');
    await refused(srv, envelope(alice, bytes, { pub: 'bm90IGEga2V5' }), /public.?key|key/i, 'a key that is not one');
    await refused(srv, '{"payload": ', /json|body|envelope/i, 'an envelope that is not JSON');
    const noClient = goBytes({ APIVersion: 'V1beta1', Spec: shSpec('echo anon') });
    await refused(srv, envelope(alice, noClient), /clientid|client id/i, 'a payload without ClientID');
    await refused(srv, envelope(alice, bytes), /job.?id/i, 'a submit carrying X-Bacalhau-Job-ID',
      { 'X-Bacalhau-Job-ID': 'mine' });
  }],

  ['bacalhau: a public key in SPKI form verifies too', async ({ srv, alice }) => {
    const bytes = goBytes(createPayload(alice, shSpec('echo spki')));
    const r = await post(srv, '/requester/submit', envelope(alice, bytes, { pub: alice.spki }));
    assertEq(r.status, 200, `SPKI key: ${r.text.slice(0, 300)}`);
    assertEq(r.body.job.Metadata.ClientID, alice.id);
  }],

  ['bacalhau: a held job stays Queued through non-approvers and runs once the approver approves', async (c) => {
    const { srv, alice, bob, approver } = c;
    const id = await submitOk(srv, alice, shSpec('echo released', { Annotations: ['hold'] }));
    const held = await waitQueued(srv, alice, id);
    for (const e of held.Executions) assert(e.State !== 'BidAccepted', 'nothing runs while held');
    await sleep(300);
    assertEq((await states(srv, alice, id)).State, 'Queued', 'still held');
    const yes = { shouldBid: true, shouldWait: false, reason: 'looks fine' };
    const byBob = await post(srv, '/requester/approve', moderate(bob, id, yes));
    assertEq(byBob.status, 401, `a non-approver's approve: ${byBob.text}`);
    assert(isErrorBody(byBob.body), byBob.text);
    const byOwner = await post(srv, '/requester/approve', moderate(alice, id, yes));
    assertEq(byOwner.status, 401, `the owner is no approver: ${byOwner.text}`);
    const claimed = await post(srv, '/requester/approve', moderate(bob, id, yes, approver.id));
    assert(claimed.status === 400 || claimed.status === 401,
      `a non-approver claiming the approver's ClientID: ${claimed.status} ${claimed.text}`);
    assert(isErrorBody(claimed.body), claimed.text);
    assertEq((await states(srv, alice, id)).State, 'Queued', 'still held after refused approvals');
    const ok = await post(srv, '/api/v1/requester/approve', moderate(approver, id, yes));
    assertEq(ok.status, 200, `the approver's approve: ${ok.text}`);
    assertEq(ok.text, '', 'an empty 200');
    const st = await waitState(srv, alice, id, ['Completed', 'Error', 'Cancelled']);
    assertEq(st.State, 'Completed');
    assertEq(st.Executions[0].RunOutput.stdout, 'released\n');
  }],

  ['bacalhau: an approver\'s shouldBid false rejects a held job, with the reason in its events', async (c) => {
    const { srv, alice, approver } = c;
    const id = await submitOk(srv, alice, shSpec('echo never', { Annotations: ['hold'] }));
    await waitQueued(srv, alice, id);
    const no = await post(srv, '/requester/approve',
      moderate(approver, id, { shouldBid: false, shouldWait: false, reason: 'not on a weekend' }));
    assertEq(no.status, 200, no.text);
    const st = await waitState(srv, alice, id, ['Completed', 'Error', 'Cancelled'], 15000);
    assertEq(st.State, 'Error', 'a rejected job is Error');
    for (const e of st.Executions) assert(!e.RunOutput || e.RunOutput.stdout !== 'never\n', 'it never ran');
    const ev = await post(srv, '/requester/events', { client_id: alice.id, job_id: id });
    assert(ev.body.events.some((e) => /not on a weekend/.test(e.Comment)),
      `the reason in the events: ${JSON.stringify(ev.body.events.map((e) => e.Comment))}`);
  }],

  ['bacalhau: a held job\'s Queued event carries the policy\'s reason; its owner may cancel it', async (c) => {
    const { srv, alice } = c;
    const id = await submitOk(srv, alice, shSpec('echo waiting', { Annotations: ['hold'] }));
    await waitQueued(srv, alice, id);
    const ev = await post(srv, '/requester/events', { client_id: alice.id, job_id: id });
    const queued = ev.body.events.filter((e) => e.Type === 'JobLevel' && e.JobState.New === 'Queued');
    assert(queued.some((e) => /held for a Bacalhau approver/.test(e.Comment)),
      `the hold's reason as the Queued event's Comment: ${JSON.stringify(ev.body.events.map((e) => e.Comment))}`);
    const r = await post(srv, '/requester/cancel',
      envelope(alice, goBytes({ ClientID: alice.id, JobID: id, Reason: 'no longer needed' })));
    assertEq(r.status, 200, r.text);
    assertEq((await waitState(srv, alice, id, ['Cancelled', 'Error', 'Completed'], 15000)).State, 'Cancelled');
  }],

  ['bacalhau: a job the policy rejects is Error with the policy\'s reason', async ({ srv, alice }) => {
    const id = await submitOk(srv, alice, shSpec('echo refused', { Annotations: ['refuse'] }));
    const st = await waitState(srv, alice, id, ['Completed', 'Error', 'Cancelled'], 15000);
    assertEq(st.State, 'Error');
    const ev = await post(srv, '/requester/events', { client_id: alice.id, job_id: id });
    assert(ev.body.events.some((e) => /refuses jobs annotated refuse/.test(e.Comment)),
      `the policy's reason in the events: ${JSON.stringify(ev.body.events.map((e) => e.Comment))}`);
  }],

  ['bacalhau: approving an unknown job is a 404', async ({ srv, approver }) => {
    const r = await post(srv, '/requester/approve', moderate(approver, 'no-such-job', { shouldBid: true }));
    assertEq(r.status, 404, r.text);
  }],

  ['bacalhau: enums as v1.0 ints are accepted and echoed as v1.0 names', async ({ srv, alice }) => {
    const spec = shSpec('echo ints', {
      Engine: 2, Verifier: 1, PublisherSpec: { Type: 2 }, Network: { Type: 0 },
      outputs: [{ StorageSource: 1, Name: 'outputs', path: '/outputs' }], Timeout: 600.5,
    });
    const r = await submit(srv, alice, spec);
    assertEq(r.status, 200, `ints: ${r.text.slice(0, 400)}`);
    const echoed = r.body.job.Spec;
    assertEq(echoed.Engine, 'Docker', 'Engine 2 reads back as its V1beta1 name');
    assert(typeof echoed.PublisherSpec.Type === 'string' && /^ipfs$/i.test(echoed.PublisherSpec.Type),
      `Publisher 2 reads back as ipfs: ${JSON.stringify(echoed.PublisherSpec)}`);
    assert(/^none$/i.test(echoed.Network.Type), `Network 0 reads back as None: ${JSON.stringify(echoed.Network)}`);
    const st = await waitState(srv, alice, r.body.job.Metadata.ID, ['Completed', 'Error', 'Cancelled']);
    assertEq(st.State, 'Completed');
    const listed = await post(srv, '/requester/list', { client_id: alice.id, max_jobs: 100 });
    const again = listed.body.jobs.find((j) => j.Job.Metadata.ID === r.body.job.Metadata.ID);
    assertEq(again.Job.Spec.Engine, 'Docker', 'list echoes the stored document');
  }],

  ['bacalhau: enums as lower-case names with v1.1 field spellings, echoed in V1beta2\'s spelling', async (c) => {
    const { srv, alice } = c;
    const spec = {
      Engine: 'docker', Docker: { Image: 'ubuntu', Entrypoint: ['sh', '-c', 'cat /inputs/hello.txt'] },
      Deal: { Concurrency: 1 }, PublisherSpec: { Type: 'local' }, Network: { Type: 'none' },
      Inputs: [{ StorageSource: 'inline', URL: `data:text/plain;base64,${Buffer.from('inline hello\n').toString('base64')}`,
        Path: '/inputs/hello.txt' }],
      Outputs: [{ StorageSource: 'ipfs', Name: 'outputs', Path: '/outputs' }],
      Timeout: 600,
    };
    const r = await submit(srv, alice, spec, { apiVersion: 'V1beta2', bytes: pyBytes });
    assertEq(r.status, 200, `names: ${r.text.slice(0, 400)}`);
    assertEq(r.body.job.APIVersion, 'V1beta2');
    assertEq(r.body.job.Spec.Engine, 'docker', 'V1beta2 spells the engine docker');
    const st = await waitState(srv, alice, r.body.job.Metadata.ID, ['Completed', 'Error', 'Cancelled']);
    assertEq(st.State, 'Completed', JSON.stringify(st).slice(0, 500));
    assertEq(st.Executions[0].RunOutput.stdout, 'inline hello\n', 'the Inline input');
    const mixed = await submit(srv, alice, shSpec('echo mixed', { Engine: 'DoCkEr', Verifier: 'noop' }));
    assertEq(mixed.status, 200, `mixed case: ${mixed.text.slice(0, 300)}`);
  }],

  ['bacalhau: defaults and Resources show in the echoed Spec and in the native job', async ({ srv, alice }) => {
    const task = async (id) => (await get(srv, `/jobrt/v1/jobs/${id}`, ADMIN_AUTH)).body.tasks[0];
    const plain = await submit(srv, alice, shSpec('true'));
    assertEq(plain.status, 200, plain.text.slice(0, 300));
    const spec = plain.body.job.Spec;
    assertEq([spec.Timeout, spec.Resources.CPU, spec.Resources.Memory], [1800, '500m', '1Gi'], 'defaults echoed');
    const t = await task(plain.body.job.Metadata.ID);
    assertEq([t.timeout, t.resources.cpu, t.resources.memory], [1800, 500, 1024 ** 3], 'defaults in the core job');
    const sized = await submit(srv, alice, shSpec('true', { Resources: { CPU: '250m', Memory: '2Gi' }, Timeout: 42 }));
    assertEq(sized.status, 200, sized.text.slice(0, 300));
    assertEq([sized.body.job.Spec.Resources.CPU, sized.body.job.Spec.Resources.Memory, sized.body.job.Spec.Timeout],
      ['250m', '2Gi', 42], 'Resources read back as sent');
    const t2 = await task(sized.body.job.Metadata.ID);
    assertEq([t2.timeout, t2.resources.cpu, t2.resources.memory], [42, 250, 2 * 1024 ** 3], 'Resources in the core job');
  }],

  ['bacalhau: unknown enums, images and host paths are refused, naming the field', async ({ srv, alice }) => {
    const bad = (spec) => envelope(alice, goBytes(createPayload(alice, spec)));
    await refused(srv, bad(shSpec('true', { Engine: 'podman' })), /engine/i, 'Engine podman');
    await refused(srv, bad(shSpec('true', { Engine: 99 })), /engine/i, 'Engine 99');
    await refused(srv, bad(shSpec('true', { Network: { Type: 'sideways' } })), /network/i, 'Network sideways');
    await refused(srv, bad({ ...shSpec('true'), Docker: { Image: 'no-such-image:1', Entrypoint: ['true'] } }),
      /image/i, 'an unknown image');
    await refused(srv, bad(shSpec('true', { Deal: { Concurrency: 0 } })), /concurrency/i, 'Concurrency 0');
    await refused(srv, bad(shSpec('true', { inputs: [{ StorageSource: 'LocalDirectory', SourcePath: '/etc',
      path: '/data' }] })), /\/etc|path|local/i, 'a host path the deployment does not allow');
  }],

  ['bacalhau: a LocalDirectory input from an allowed host path is mounted', async ({ srv, alice }) => {
    writeFileSync(path.join(srv.hostDir, 'f.txt'), 'from the host\n');
    const id = await submitOk(srv, alice, shSpec('cat /data/f.txt', {
      inputs: [{ StorageSource: 'LocalDirectory', SourcePath: srv.hostDir, path: '/data' }],
    }));
    const st = await waitState(srv, alice, id, ['Completed', 'Error', 'Cancelled']);
    assertEq(st.State, 'Completed', JSON.stringify(st).slice(0, 500));
    assertEq(st.Executions[0].RunOutput.stdout, 'from the host\n');
  }],
];

run(tests, { before, after });
