// Network mode allow through the daemon: a job whose task has
// network {mode: allow, domains: [localhost]} reaches a host HTTP server
// through the helper's proxy; a host not listed is refused (403, and the
// refusal is in the task's log); bad domains are refused at submit.
// Needs root (the sandbox's id mapping); skips otherwise.
import { existsSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { ADMIN, TEST_USERS, assert, assertEq, nativeCall, run, runJob, sleep, startServer } from './lib.mjs';

if (process.getuid() !== 0) {
  console.log('skip - sandbox allow daemon tests # need root');
  process.exit(0);
}

const call = nativeCall;

async function logsOf(srv, id) {
  const logs = (await call(srv, 'GET', `/jobs/${id}/logs`)).body;
  return (logs.logs || logs.entries || logs).map((l) => l.message);
}

// Inside, NO_PROXY covers localhost (the sandbox's own); clear it to reach
// the host's localhost through the proxy.
const curl = (url) => ['sh', '-c', `NO_PROXY= no_proxy= curl -sS -m 10 -w ' code=%{http_code}\\n' ${url}`];

const tests = [
  ['allow: a listed domain is reached through the proxy', async ({ srv, port }) => {
    const j = await runJob(srv, { id: 'allow-1', tasks: [{ alias: 'a',
      network: { mode: 'allow', domains: ['localhost'] }, command: curl(`http://localhost:${port}/data`) }] });
    assertEq(j.state, 'succeeded', j.error);
    const msgs = await logsOf(srv, 'allow-1');
    assert(msgs.includes('proxied-content') && msgs.includes(' code=200'), JSON.stringify(msgs));
    // usage comes from the task row; no usage.json beside the task any more
    const u = j.tasks[0].usage;
    assert(u && u.wall_ms >= 0 && u.cpu_ms >= 0 && u.max_rss_bytes > 0, JSON.stringify(u));
    assert(!existsSync(path.join(srv.data, 'jobs', 'allow-1', 'a', 'usage.json')), 'usage.json written');
  }],
  ['allow: a host not listed gets 403 and the refusal is logged', async ({ srv, port }) => {
    const j = await runJob(srv, { id: 'allow-2', tasks: [{ alias: 'a',
      network: { mode: 'allow', domains: ['localhost'] }, command: curl(`http://127.0.0.1:${port}/data`) }] });
    assertEq(j.state, 'succeeded', j.error);
    const msgs = await logsOf(srv, 'allow-2');
    assert(msgs.some((m) => /code=403/.test(m)) && !msgs.includes('proxied-content'), JSON.stringify(msgs));
    assert(msgs.some((m) => /proxy: refused GET 127\.0\.0\.1:/.test(m)), JSON.stringify(msgs));
  }],
  ['network none cannot use a proxy at all', async ({ srv, port }) => {
    const j = await runJob(srv, { id: 'allow-3', tasks: [{ alias: 'a', network: { mode: 'none' },
      command: ['sh', '-c', `curl -sS -m 5 -x http://127.0.0.1:3128 http://localhost:${port}/data; echo rc=$?`] }] });
    assertEq(j.state, 'succeeded', j.error);
    const msgs = await logsOf(srv, 'allow-3');
    assert(msgs.includes('rc=7') && !msgs.includes('proxied-content'), JSON.stringify(msgs));
  }],
  ['bad network.domains are refused at submit', async ({ srv }) => {
    let r = await call(srv, 'POST', '/jobs', { tasks: [{ alias: 'a', command: ['true'],
      network: { mode: 'allow', domains: ['not a host'] } }] });
    assertEq(r.status, 400);
    assert(/network.domains\[0\]/.test(r.body.message), r.body.message);
    r = await call(srv, 'POST', '/jobs', { tasks: [{ alias: 'a', command: ['true'],
      network: { mode: 'none', domains: ['example.com'] } }] });
    assertEq(r.status, 400);
    assert(/needs network.mode allow/.test(r.body.message), r.body.message);
  }],
];

run(tests, {
  before: async () => {
    const web = http.createServer((req, res) => {
      if (req.url === '/data') { res.writeHead(200, { 'Content-Type': 'text/plain' }); res.end('proxied-content\n'); return; }
      res.writeHead(404); res.end();
    });
    await new Promise((resolve) => web.listen(0, '127.0.0.1', resolve));
    const srv = await startServer({ config: `log: {level: warn}\nsurfaces: {openeo: false}\n${TEST_USERS}` });
    return { srv, web, port: web.address().port };
  },
  after: async ({ srv, web }) => {
    web.close();
    return srv.finish();
  },
});
