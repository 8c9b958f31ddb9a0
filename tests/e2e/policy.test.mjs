// Approval policies on the native API: an image allow-list rejects with
// its reason, a manual policy holds jobs until an admin approves, and a
// broken policy stops start-up with its file and line.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ADMIN, ALICE, BIN, TEST_USERS, assert, assertEq, run, sleep, startServer } from './lib.mjs';

const config = (policies) => `
log: {level: warn}
sandbox:
  images: {host: /, alpine: /}
plugins:
  images: {use: approve.image_allowlist, images: ["host", "ubuntu*"]}
  review: {use: approve.manual}
surfaces:
  native: {approval: [${policies}]}
${TEST_USERS}`;

async function call(srv, method, p, headers, body) {
  const r = await fetch(`${srv.url}/jobrt/v1${p}`, {
    method, headers: { ...headers, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

const job = (image) => ({ title: `on ${image}`, start: true, tasks: [{ alias: 'a', image, command: ['true'] }] });

const tests = [
  ['the image allow-list accepts allowed images and rejects others with the reason', async () => {
    const srv = await startServer({ config: config('images') });
    try {
      const ok = await call(srv, 'POST', '/jobs', ALICE, job('host'));
      assertEq(ok.status, 201);
      assert(['queued', 'running', 'succeeded'].includes(ok.body.state), ok.body.state);
      const no = await call(srv, 'POST', '/jobs', ALICE, job('alpine'));
      assertEq(no.status, 201);
      assertEq(no.body.state, 'rejected');
      assert(/image not allowed: alpine \(task a\)/.test(JSON.stringify(no.body)), JSON.stringify(no.body));
      // Starting again asks the policy again.
      const again = await call(srv, 'POST', `/jobs/${no.body.id}/start`, ALICE);
      assertEq(again.body.state, 'rejected');
    } finally {
      await srv.finish('daemon with an image policy exits 0');
    }
  }],

  ['a manual policy holds jobs until an admin approves', async () => {
    const srv = await startServer({ config: config('images, review') });
    try {
      const held = await call(srv, 'POST', '/jobs', ALICE, job('host'));
      assertEq(held.body.state, 'awaiting_approval');
      assertEq((await call(srv, 'POST', `/jobs/${held.body.id}/approve`, ALICE, { accept: true })).status, 403);
      const approved = await call(srv, 'POST', `/jobs/${held.body.id}/approve`, ADMIN, { accept: true });
      assertEq(approved.status, 200);
      assert(['queued', 'running', 'succeeded'].includes(approved.body.state), approved.body.state);
      // The allow-list still rejects before anyone is asked.
      assertEq((await call(srv, 'POST', '/jobs', ALICE, job('alpine'))).body.state, 'rejected');
    } finally {
      await srv.finish('daemon with a manual policy exits 0');
    }
  }],

  ['a policy that fails to load stops start-up with its file and line', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'jobrt-policy-'));
    try {
      mkdirSync(path.join(dir, 'site', 'approve'), { recursive: true });
      writeFileSync(path.join(dir, 'site', 'approve', 'broken.lua'), 'return function(job)\n  return "accept" +\nend\n');
      const file = path.join(dir, 'jobrt.yaml');
      writeFileSync(file, `lua_path: [${path.join(dir, 'site')}]\nplugins:\n  b: {use: approve.broken}\nsurfaces:\n  native: {approval: [b]}\n`);
      const r = spawnSync(BIN, ['check', '-c', file], { encoding: 'utf8', timeout: 10000 });
      assertEq(r.status, 1);
      assert(/broken\.lua:3:/.test(r.stderr), r.stderr);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }],

  ['a policy that raises fails that request only', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'jobrt-policy-'));
    mkdirSync(path.join(dir, 'site', 'approve'), { recursive: true });
    writeFileSync(path.join(dir, 'site', 'approve', 'moody.lua'),
      'return function(job) if job.title == "boom" then error("no mood") end return "accept" end\n');
    const srv = await startServer({ config: `${config('moody')}lua_path: [${path.join(dir, 'site')}]\nplugins:\n  moody: {use: approve.moody}\n`.replace(/plugins:\n  images[^\n]*\n  review[^\n]*\n/, '') });
    try {
      const bad = await call(srv, 'POST', '/jobs', ALICE, { ...job('host'), title: 'boom' });
      assertEq(bad.status, 500);
      assertEq(bad.body.code, 'PolicyFailed');
      const good = await call(srv, 'POST', '/jobs', ALICE, job('host'));
      assertEq(good.status, 201);
    } finally {
      await srv.finish('daemon with a failing policy exits 0');
      rmSync(dir, { recursive: true, force: true });
    }
  }],
];

run(tests);
