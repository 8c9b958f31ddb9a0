// Reload without dropping work: 20 reloads (SIGHUP, and `jobrt reload`)
// while clients keep submitting jobs through a site policy, with zero
// failed requests; each reload's policy version decides the requests that
// start after it, a request in flight finishes on the version it started
// with, and a version that no longer loads keeps the running one, the
// daemon logging FILE:LINE: message.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ALICE, BIN, TEST_USERS, assert, assertEq, run, sleep, startServer } from './lib.mjs';

const policy = (version, extra = '') => `-- version ${version}
local async = require("jobrt.async")
return function(job)
  ${extra}
  if job.title == "slow" then async.sleep(1.5) end
  return "reject", "version ${version}"
end
`;

async function submit(srv, title) {
  const r = await fetch(`${srv.url}/jobrt/v1/jobs`, {
    method: 'POST', headers: { ...ALICE, 'Content-Type': 'application/json' },
    body: JSON.stringify({ title, start: true, tasks: [{ alias: 'a', command: ['true'] }] }),
  });
  const text = await r.text();
  let body = null;
  try { body = JSON.parse(text); } catch { body = text; }
  return { status: r.status, body };
}

const tests = [
  ['20 reloads under load: no failed request, each version in effect, in-flight requests keep theirs', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'jobrt-reload-'));
    const file = path.join(dir, 'site', 'approve', 'ver.lua');
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, policy(0));
    const srv = await startServer({ config: `
log: {level: info}
lua_path: [${path.join(dir, 'site')}]
plugins:
  ver: {use: approve.ver}
surfaces:
  native: {approval: [ver]}
${TEST_USERS}` });
    try {
      assertEq((await submit(srv, 'first')).body.error, 'version 0');
      let stop = false;
      const failures = [];
      let done = 0;
      const worker = async () => {
        while (!stop) {
          const r = await submit(srv, 'load');
          done++;
          if (r.status !== 201 || r.body.state !== 'rejected' || !/^version \d+$/.test(r.body.error)) {
            failures.push(`${r.status} ${JSON.stringify(r.body).slice(0, 200)}`);
          }
        }
      };
      const workers = Array.from({ length: 6 }, worker);
      // A request that waits inside the policy while the reloads happen.
      const slow = submit(srv, 'slow');
      let last = 0;
      for (let i = 1; i <= 20; i++) {
        await sleep(120);
        if (i % 7 === 0) {
          // A version that does not load: the running one stays.
          writeFileSync(file, policy(i, 'local x = = 1'));
        } else {
          writeFileSync(file, policy(i));
          last = i;
        }
        if (i % 2 === 0) {
          const r = spawnSync(BIN, ['reload', '--data-dir', srv.data], { encoding: 'utf8', timeout: 10000 });
          assertEq(r.status, 0, r.stderr);
          assert(/^sent SIGHUP to jobrt \(pid \d+/.test(r.stdout), r.stdout);
        } else {
          srv.proc.kill('SIGHUP');
        }
      }
      await sleep(300);
      stop = true;
      await Promise.all(workers);
      const s = await slow;
      assertEq([s.status, s.body.error], [201, 'version 0'], 'the in-flight request finished on its version');
      assertEq(failures, [], `${failures.length} of ${done} requests failed`);
      assert(done >= 50, `only ${done} requests were made`);
      assertEq((await submit(srv, 'after')).body.error, `version ${last}`);
      const log = srv.logs();
      assert(/ver\.lua:\d+: /.test(log) && log.includes('reload refused'), log.slice(-2000));
      assert((log.match(/surfaces and plugins reloaded/g) || []).length >= 15, 'the good versions were loaded');
    } finally {
      await srv.finish('daemon reloaded 20 times exits 0');
      rmSync(dir, { recursive: true, force: true });
    }
  }],

  ['jobrt reload without a daemon says so', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'jobrt-reload-'));
    try {
      const r = spawnSync(BIN, ['reload', '--data-dir', dir], { encoding: 'utf8', timeout: 10000 });
      assertEq(r.status, 1);
      assert(r.stderr.includes('no daemon serves'), r.stderr);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }],
];

run(tests);
