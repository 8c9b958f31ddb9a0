// Kuscia's watch over HTTP end to end, read by a client that splits the
// concatenated JSON objects as they arrive: an ADDED replay of the existing
// jobs (no `type` key), MODIFIED on job and task changes, DELETED, Go-style
// omitempty encoding, the same frames for every watcher, a {"type":4}
// heartbeat 10 s after the last event, the end after timeout_seconds, and
// the refusals (Token, bad timeout_seconds).
import { assert, assertEq, run, sleep } from './lib.mjs';
import {
  create, freshId, frameOf, job, kpost, ok, startKuscia, task, waitSleepers, waitState, watch, zeroFields,
} from './kuscia_lib.mjs';

const before = async () => ({ srv: await startKuscia(), ids: [] });
const after = ({ srv }) => srv.finish('kuscia watch: the daemon exits 0 on SIGTERM');

const stateOf = (v) => v.object && v.object.status && v.object.status.state;
const taskState = (v, alias) => {
  const t = ((v.object && v.object.status && v.object.status.tasks) || []).find((x) => x.alias === alias);
  return t ? (t.state || '') : undefined;
};

// Every frame is Go encoding/json with omitempty and the stream holds the
// frames and nothing else.
function wellFormed(w) {
  assertEq(w.stray(), '', 'nothing between or after the JSON objects');
  assertEq(w.frames.map((f) => f.raw).join(''), w.raw, 'the stream is the frames concatenated');
  for (const f of w.frames) {
    assert(!f.value.unparsable, `a frame that is not JSON: ${f.raw}`);
    assertEq(zeroFields(f.value), [], `omitempty: no zero-valued field in ${f.raw.slice(0, 600)}`);
    assert(!('type' in f.value) || [1, 2, 4].includes(f.value.type), `type is a number 1, 2 or 4 when present: ${f.raw.slice(0, 200)}`);
    if (f.value.type === 4) assertEq(f.raw, '{"type":4}', 'a heartbeat');
  }
}

const tests = [
  ['kuscia watch: opens with an ADDED event (no type key) for each existing job, chunked JSON', async (c) => {
    const { srv } = c;
    const a = await create(srv, job(freshId('wa'), [task('a', 'secretflow-image')]));
    const b = await create(srv, job(freshId('wb'), [task('b', 'failer')]));
    c.ids.push(a, b);
    await waitState(srv, a, ['Succeeded']);
    await waitState(srv, b, ['Failed']);
    const w = watch(srv, {});
    await w.response;
    assertEq(w.status, 200);
    assert(/^application\/json/.test(w.headers['content-type']), `Content-Type ${w.headers['content-type']}`);
    assertEq(w.headers['transfer-encoding'], 'chunked');
    const fa = await w.next(frameOf(a, 0), 5000);
    const fb = await w.next(frameOf(b, 0), 5000);
    assert(!('type' in fa.value) && !('type' in fb.value), 'ADDED has no type key');
    assert(fa.index < 2 && fb.index < 2, 'the replay comes first');
    assertEq(Object.keys(fa.value), ['object'], 'an ADDED frame is {"object": ...}');
    assertEq([fa.value.object.job_id, stateOf(fa.value)], [a, 'Succeeded']);
    assertEq([fb.value.object.job_id, stateOf(fb.value)], [b, 'Failed']);
    const st = fa.value.object.status;
    for (const k of ['create_time', 'start_time', 'end_time']) assert(typeof st[k] === 'string', `status.${k} in ${JSON.stringify(st)}`);
    assert(!('err_msg' in st), 'an empty err_msg is omitted');
    assertEq(st.tasks.map((t) => [t.alias, t.state, t.parties.map((p) => [p.domain_id, p.state])]),
      [['a', 'Succeeded', [['alice', 'Succeeded'], ['bob', 'Succeeded']]]], 'its tasks and parties');
    assert(typeof fb.value.object.status.err_msg === 'string', 'a failed job has its err_msg');
    await sleep(500);
    assertEq(w.endedAt, null, 'without timeout_seconds the stream stays open');
    wellFormed(w);
    w.close();
  }],

  ['kuscia watch: MODIFIED on every job and task change, DELETED on delete', async (c) => {
    const { srv } = c;
    const w = watch(srv, { timeout_seconds: 60 });
    await w.response;
    for (const id of c.ids) await w.next(frameOf(id, 0), 5000);
    const replayed = w.frames.length;
    const id = freshId('wm');
    await create(srv, job(id, [task('first', 'nap'), task('long', 'sleeper', { deps: ['first'] })]));
    await waitSleepers(id, ['alice', 'bob']);
    const running = await w.next((v) => frameOf(id, 1)(v) && taskState(v, 'long') === 'Running', 10000, replayed);
    // Before it, a frame with the job Running and "long" not started yet: a
    // task's change makes a MODIFIED frame though the job's state holds.
    const mine = () => w.frames.slice(replayed).filter((f) => f.value.object && f.value.object.job_id === id);
    const early = w.frames.slice(replayed, running.index).find((f) => f.value.object && f.value.object.job_id === id
      && stateOf(f.value) === 'Running' && taskState(f.value, 'long') === 'Pending');
    assert(early, `a frame while only "first" ran: ${mine().map((f) => f.raw.slice(0, 300)).join('\n')}`);
    assertEq(stateOf(running.value), 'Running');
    assertEq(taskState(running.value, 'first'), 'Succeeded');
    await ok(srv, 'suspend', { job_id: id });
    // The job's change, then its tasks' (stopped): the last shows both.
    const suspended = await w.next((v) => frameOf(id, 1)(v) && stateOf(v) === 'Suspended' && taskState(v, 'long') !== 'Running', 10000, running.index);
    await ok(srv, 'restart', { job_id: id });
    const again = await w.next((v) => frameOf(id, 1)(v) && stateOf(v) === 'Running' && taskState(v, 'long') === 'Running', 10000, suspended.index);
    await ok(srv, 'cancel', { job_id: id });
    const cancelled = await w.next((v) => frameOf(id, 1)(v) && stateOf(v) === 'Cancelled', 10000, again.index);
    await ok(srv, 'delete', { job_id: id });
    const deleted = await w.next(frameOf(id, 2), 10000, cancelled.index);
    assertEq(deleted.value.type, 2, 'DELETED is type 2');
    assertEq(deleted.value.object.job_id, id);
    const all = mine();
    // A job created while watching comes as ADDED (as a Kubernetes watch
    // reports a new object), then MODIFIED, then DELETED.
    assert(!('type' in all[0].value), `its first frame is ADDED: ${all[0].raw.slice(0, 200)}`);
    assert(all.slice(1).every((f) => f.value.type === 1 || f.value.type === 2), 'after its first frame, MODIFIED or DELETED');
    assert(all.length >= 6, `one frame per change: ${all.length} frames`);
    await sleep(300);
    assertEq(w.frames.slice(deleted.index + 1).filter((f) => f.value.object && f.value.object.job_id === id), [], 'nothing after DELETED');
    wellFormed(w);
    w.close();
  }],

  ['kuscia watch: every watcher gets the same frames', async ({ srv, ids }) => {
    const ws = [0, 1, 2].map(() => watch(srv, { timeout_seconds: 60 }));
    for (const w of ws) { await w.response; for (const id of ids) await w.next(frameOf(id, 0), 5000); }
    const id = freshId('wsame');
    await create(srv, job(id, [task('x', 'secretflow-image'), task('y', 'nap', { deps: ['x'] })]));
    await waitState(srv, id, ['Succeeded']);
    for (const w of ws) await w.next((v) => frameOf(id, 1)(v) && stateOf(v) === 'Succeeded', 5000);
    await sleep(200);
    const seen = ws.map((w) => w.frames.filter((f) => f.value.object && f.value.object.job_id === id).map((f) => f.raw));
    assert(seen[0].length >= 3, `several frames for the job: ${seen[0].length}`);
    assertEq(seen[1], seen[0], 'watcher 2 = watcher 1');
    assertEq(seen[2], seen[0], 'watcher 3 = watcher 1');
    ws.forEach((w) => { wellFormed(w); w.close(); });
    ids.push(id);
  }],

  ['kuscia watch: {"type":4} 10 s after the last event (an event resets it), the end after timeout_seconds', async ({ srv, ids }) => {
    const w = watch(srv, { timeout_seconds: 16 });
    await w.response;
    for (const id of ids) await w.next(frameOf(id, 0), 5000);
    await sleep(3000);
    const id = freshId('whb');
    await create(srv, job(id, [task('x', 'secretflow-image')]));
    await w.next((v) => frameOf(id, 1)(v) && stateOf(v) === 'Succeeded', 10000);
    await sleep(500);
    const lastEvent = Math.max(...w.frames.filter((f) => f.value.type !== 4).map((f) => f.at));
    const hb = await w.next((v) => v.type === 4, 15000);
    await w.ended;
    const beats = w.frames.filter((f) => f.value.type === 4);
    assertEq(beats.length, 1, `one heartbeat in 16 s: ${JSON.stringify(beats.map((f) => f.at))}`);
    const gap = hb.at - lastEvent;
    assert(gap >= 9500 && gap <= 11500, `the heartbeat came ${gap} ms after the last event (10 s wanted)`);
    assert(w.endedAt >= 15500 && w.endedAt <= 18500, `the stream ended ${w.endedAt} ms after it opened (timeout_seconds 16)`);
    assertEq(w.frames.slice(-1)[0].raw, '{"type":4}', 'nothing after the heartbeat');
    wellFormed(w);
    ids.push(id);
  }],

  ['kuscia watch: a short timeout_seconds ends the stream, even with nothing to send', async ({ srv }) => {
    const w = watch(srv, { timeout_seconds: 2 });
    await w.response;
    assertEq(w.status, 200);
    await Promise.race([w.ended, sleep(6000)]);
    assert(w.endedAt !== null && w.endedAt >= 1500 && w.endedAt <= 4500, `ended at ${w.endedAt} ms (timeout_seconds 2)`);
    wellFormed(w);
  }],

  ['kuscia watch: a missing Token is 401, a timeout_seconds that is not a number or out of range gets no stream', async ({ srv }) => {
    const no = await kpost(srv, 'watch', { timeout_seconds: 1 }, { token: null });
    assertEq([no.status, no.text], [401, ''], 'no Token');
    const bad = await kpost(srv, 'watch', { timeout_seconds: 'soon' });
    assertEq([bad.status, bad.text], [400, ''], 'a string');
    for (const v of [-1, 2 ** 31]) {
      const r = await kpost(srv, 'watch', { timeout_seconds: v });
      assert([200, 400].includes(r.status) && r.text === '', `timeout_seconds ${v}: ${r.status} ${r.text.slice(0, 300)}`);
    }
  }],
];

run(tests, { before, after });
