// A multi-user service's policies through the daemon: a quota holds an
// owner's extra job and releases it by itself when one of the owner's jobs
// ends (no approve, no polling), with the reason in the job; resource caps reject naming the task; a manual policy's
// approver role may approve what it holds; a policy that loops forever or
// allocates 1 GiB fails only its own request.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ADMIN, ALICE, BOB, TEST_USERS, assert, assertEq, run, sleep, startServer } from './lib.mjs';

const basic = (u, p) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;
const ANN = { Authorization: basic('ann', 'ann-password') };

async function call(srv, method, p, headers, body) {
  const r = await fetch(`${srv.url}/jobrt/v1${p}`, {
    method, headers: { ...headers, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

const job = (title, command = ['sleep', '30'], extra = {}) => ({
  title, start: true,
  tasks: [{ alias: 'a', command, timeout: 60, resources: { cpu: '100m', memory: '32MiB' }, ...extra }],
});

async function waitState(srv, id, want, ms = 10000) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    last = (await call(srv, 'GET', `/jobs/${id}`, ADMIN)).body;
    if (want.includes(last.state)) return last;
    await sleep(50);
  }
  throw new Error(`job ${id} is ${last && last.state}, wanted ${want}`);
}

const tests = [
  ['a quota-held job says why (job.approval, its log) and is released by itself when the owner\'s job ends', async () => {
    const srv = await startServer({ config: `
log: {level: warn}
plugins:
  quota: {use: approve.quota, max_active: 1}
surfaces:
  native: {approval: [quota]}
${TEST_USERS}` });
    try {
      const first = (await call(srv, 'POST', '/jobs', ALICE, job('first'))).body;
      assert(['queued', 'running'].includes(first.state), first.state);
      const second = (await call(srv, 'POST', '/jobs', ALICE, job('second', ['true']))).body;
      assertEq(second.state, 'awaiting_approval');
      const reason = 'alice has 1 jobs queued or running (the quota is 1)';
      assertEq(second.approval, { ...second.approval, decision: 'wait', by: 'quota', reason });
      // Bob is not held by alice's jobs.
      const bobs = (await call(srv, 'POST', '/jobs', BOB, job('bob', ['true']))).body;
      assert(bobs.state !== 'awaiting_approval', bobs.state);
      // Nothing releases it while the first runs.
      await sleep(300);
      assertEq((await call(srv, 'GET', `/jobs/${second.id}`, ALICE)).body.state, 'awaiting_approval');
      // The first ends: the second is approved by the policies and runs to the end.
      assertEq((await call(srv, 'POST', `/jobs/${first.id}/cancel`, ALICE)).status, 200);
      const done = await waitState(srv, second.id, ['succeeded']);
      assertEq([done.approval.decision, done.approval.by], ['accept', 'the approval policies']);
      const logs = (await call(srv, 'GET', `/jobs/${second.id}/logs`, ALICE)).body.logs;
      assert(logs.some((l) => l.message.includes(`awaiting approval (quota: ${reason})`)), JSON.stringify(logs));
    } finally {
      await srv.finish('daemon with a quota policy exits 0');
    }
  }],

  ['resource caps reject naming the task and the limit; the approver role approves what review holds', async () => {
    const srv = await startServer({ config: `
log: {level: warn}
plugins:
  caps: {use: approve.resource_caps, cpu: 1, memory: 256MiB, timeout: 10m}
  review: {use: approve.manual, roles: [approver]}
surfaces:
  native: {approval: [caps, review]}
${TEST_USERS}  ann: {password: "ann-password", roles: [approver]}
` });
    try {
      const big = (await call(srv, 'POST', '/jobs', ALICE, job('big', ['true'], { resources: { cpu: 2, memory: '32MiB' } }))).body;
      assertEq([big.state, big.error], ['rejected', 'task a asks for 2 cpu, more than the limit of 1 cpu']);
      const long = (await call(srv, 'POST', '/jobs', ALICE, job('long', ['true'], { timeout: '1h' }))).body;
      assertEq(long.error, 'task a has a time limit of 1h, more than the limit of 10m');
      const held = (await call(srv, 'POST', '/jobs', ALICE, job('fine', ['true']))).body;
      assertEq([held.state, held.approval.by], ['awaiting_approval', 'review']);
      assertEq(held.approval.reason, 'waiting for an administrator or a user with the role approver to approve fine');
      // Bob (a user) may not; ann (approver) may.
      assertEq((await call(srv, 'POST', `/jobs/${held.id}/approve`, BOB, { accept: true })).status, 403);
      const ok = await call(srv, 'POST', `/jobs/${held.id}/approve`, ANN, { accept: true });
      assertEq(ok.status, 200, JSON.stringify(ok.body));
      await waitState(srv, held.id, ['succeeded']);
    } finally {
      await srv.finish('daemon with caps and review exits 0');
    }
  }],

  ['a policy that loops forever or allocates 1 GiB fails only its own request', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'jobrt-policy-'));
    mkdirSync(path.join(dir, 'site', 'approve'), { recursive: true });
    writeFileSync(path.join(dir, 'site', 'approve', 'wild.lua'), `
return function(job)
  if job.title == "spin" then while true do end end
  if job.title == "grow" then
    local t = {}
    -- 1 KiB copied 1023 times a string: quick enough to reach the memory
    -- cap well inside the deadline, even under AddressSanitizer.
    local kib = string.rep("x", 1024)
    for i = 1, 1024 do t[i] = string.rep(kib, 1023) .. i end
  end
  return "accept"
end
`);
    const srv = await startServer({ config: `
log: {level: warn}
lua_path: [${path.join(dir, 'site')}]
lua: {deadline: 1s, memory: 64MiB}
plugins:
  wild: {use: approve.wild}
surfaces:
  native: {approval: [wild]}
${TEST_USERS}` });
    try {
      const started = Date.now();
      const [spin, grow, fine] = await Promise.all([
        call(srv, 'POST', '/jobs', ALICE, job('spin', ['true'])),
        call(srv, 'POST', '/jobs', ALICE, job('grow', ['true'])),
        (async () => { await sleep(100); return call(srv, 'POST', '/jobs', ALICE, job('fine', ['true'])); })(),
      ]);
      assertEq([spin.status, spin.body.code], [500, 'Timeout'], JSON.stringify(spin.body));
      assert([500].includes(grow.status) && ['OutOfMemory', 'PolicyFailed'].includes(grow.body.code),
        JSON.stringify(grow.body));
      assertEq(fine.status, 201, JSON.stringify(fine.body));
      assert(Date.now() - started < 10000, 'bounded by the deadline');
      // The daemon goes on.
      assertEq((await call(srv, 'POST', '/jobs', ALICE, job('after', ['true']))).status, 201);
      const health = await fetch(`${srv.url}/jobrt/healthz`);
      assertEq(health.status, 200);
    } finally {
      await srv.finish('daemon with a runaway policy exits 0');
      rmSync(dir, { recursive: true, force: true });
    }
  }],
];

run(tests);
