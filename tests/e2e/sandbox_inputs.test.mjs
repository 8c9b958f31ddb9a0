// URL inputs: the daemon downloads each http:// or https:// input before
// the task's gate opens and binds the file read-only at its target; a failed
// download (HTTP status, too large, certificate verification) fails the task
// as setup_error naming the URL and the reason. Local HTTP and HTTPS servers
// stand in for the outside; the HTTPS one has a certificate from `jobrt
// certs`, whose CA the daemon trusts through JOBRT_CA_FILE. Needs root (the
// sandbox's id mapping); skips otherwise.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { ADMIN, BIN, TEST_USERS, assert, assertEq, nativeCall, run, runJob, sleep, startServer } from './lib.mjs';

if (process.getuid() !== 0) {
  console.log('skip - sandbox url input tests # need root');
  process.exit(0);
}

const call = nativeCall;

async function logsOf(srv, id) {
  const logs = (await call(srv, 'GET', `/jobs/${id}/logs`)).body;
  return (logs.logs || logs.entries || logs).map((l) => l.message);
}

const BIG = 'x'.repeat(300000);

const tests = [
  ['a url input is downloaded and readable (read-only) at its target', async ({ srv, base }) => {
    const j = await runJob(srv, { id: 'url-1', tasks: [{ alias: 'a',
      command: ['sh', '-c', 'cat /data/in.txt /inputs/file.txt; ! touch /data/in.txt 2>/dev/null && echo ro'],
      inputs: [{ source: 'url', url: `${base}/file.txt`, target: '/data/in.txt' },
               { source: 'url', url: `${base}/file.txt` }] }] });
    assertEq(j.state, 'succeeded', j.error);
    assertEq(await logsOf(srv, 'url-1'), ['url-content', 'url-content', 'ro']);
  }],
  ['redirects, chunked and close-delimited bodies, a size cap that fits', async ({ srv, base }) => {
    const j = await runJob(srv, { id: 'url-2', tasks: [{ alias: 'a',
      command: ['sh', '-c', 'cat /inputs/r /inputs/c; wc -c < /inputs/e; wc -c < /inputs/big'],
      inputs: [{ source: 'url', url: `${base}/redirect`, target: '/inputs/r' },
               { source: 'url', url: `${base}/chunked`, target: '/inputs/c' },
               { source: 'url', url: `${base}/eof`, target: '/inputs/e' },
               { source: 'url', url: `${base}/big`, max_bytes: BIG.length }] }] });
    assertEq(j.state, 'succeeded', j.error);
    assertEq(await logsOf(srv, 'url-2'), ['url-content', 'chunk-one', 'chunk-two', '5000', String(BIG.length)]);
  }],
  ['a 404 fails the task as setup_error naming the URL and the status', async ({ srv, base }) => {
    const j = await runJob(srv, { id: 'url-3', tasks: [{ alias: 'a', command: ['true'],
      inputs: [{ source: 'url', url: `${base}/missing` }] }] });
    assertEq(j.state, 'failed');
    const t = j.tasks[0];
    assertEq(t.outcome, 'setup_error', t.error);
    assert(t.error.includes(`${base}/missing`) && /HTTP 404/.test(t.error), t.error);
  }],
  ['an input over max_bytes fails as too large', async ({ srv, base }) => {
    let j = await runJob(srv, { id: 'url-4', tasks: [{ alias: 'a', command: ['true'],
      inputs: [{ source: 'url', url: `${base}/big`, max_bytes: 1000 }] }] });
    assertEq(j.tasks[0].outcome, 'setup_error', j.tasks[0].error);
    assert(/too large/.test(j.tasks[0].error), j.tasks[0].error);
    j = await runJob(srv, { id: 'url-5', tasks: [{ alias: 'a', command: ['true'],
      inputs: [{ source: 'url', url: `${base}/chunked-big`, max_bytes: 1000 }] }] });
    assertEq(j.tasks[0].outcome, 'setup_error', j.tasks[0].error);
    assert(/too large/.test(j.tasks[0].error), j.tasks[0].error);
  }],
  ['an unreachable host fails as setup_error; the daemon stays up', async ({ srv, deadPort }) => {
    const j = await runJob(srv, { id: 'url-6', tasks: [{ alias: 'a', command: ['true'],
      inputs: [{ source: 'url', url: `http://127.0.0.1:${deadPort}/x` }] }] });
    assertEq(j.tasks[0].outcome, 'setup_error', j.tasks[0].error);
    assert(/cannot connect/.test(j.tasks[0].error), j.tasks[0].error);
    assertEq((await call(srv, 'GET', '/jobs/url-6')).status, 200);
  }],
  ['an https input is downloaded; redirects move between http and https', async ({ srv, base, tlsBase }) => {
    const j = await runJob(srv, { id: 'url-tls-1', tasks: [{ alias: 'a',
      command: ['sh', '-c', 'cat /inputs/s /inputs/up /inputs/down; wc -c < /inputs/big'],
      inputs: [{ source: 'url', url: `${tlsBase}/file.txt`, target: '/inputs/s' },
               { source: 'url', url: `${base}/to-https`, target: '/inputs/up' },
               { source: 'url', url: `${tlsBase}/to-http`, target: '/inputs/down' },
               { source: 'url', url: `${tlsBase}/big`, target: '/inputs/big' }] }] });
    assertEq(j.state, 'succeeded', j.error || JSON.stringify(j.tasks[0]));
    assertEq(await logsOf(srv, 'url-tls-1'), ['url-content', 'url-content', 'url-content', String(BIG.length)]);
  }],
  ['an https host name that the certificate does not carry fails verification', async ({ srv, tlsPort }) => {
    const url = `https://127.0.0.2:${tlsPort}/file.txt`;
    const j = await runJob(srv, { id: 'url-tls-2', tasks: [{ alias: 'a', command: ['true'],
      inputs: [{ source: 'url', url }] }] });
    const t = j.tasks[0];
    assertEq(t.outcome, 'setup_error', t.error);
    assert(t.error.includes(url) && /certificate verify failed: .*mismatch/.test(t.error), t.error);
  }],
  ['without the CA configured, the https server fails verification', async ({ tlsBase }) => {
    const other = await startServer({ config: `log: {level: warn}\nsurfaces: {openeo: false}\n${TEST_USERS}`,
      env: { JOBRT_CA_FILE: '' } });
    try {
      const url = `${tlsBase}/file.txt`;
      const j = await runJob(other, { id: 'url-tls-3', tasks: [{ alias: 'a', command: ['true'],
        inputs: [{ source: 'url', url }] }] });
      const t = j.tasks[0];
      assertEq(t.outcome, 'setup_error', t.error);
      assert(t.error.includes(url) && /certificate verify failed: /.test(t.error), t.error);
    } finally {
      await other.finish('the daemon without the CA exits 0 on SIGTERM');
    }
  }],
  ['other schemes and bad max_bytes are refused at submit', async ({ srv }) => {
    let r = await call(srv, 'POST', '/jobs', { tasks: [{ alias: 'a', command: ['true'],
      inputs: [{ source: 'url', url: 'ftp://example.com/x' }] }] });
    assertEq(r.status, 400);
    r = await call(srv, 'POST', '/jobs', { tasks: [{ alias: 'a', command: ['true'],
      inputs: [{ source: 'url', url: 'http://example.com/x', max_bytes: -1 }] }] });
    assertEq(r.status, 400);
    assert(/max_bytes/.test(r.body.message), r.body.message);
  }],
  ['cancel during a slow download stops it', async ({ srv, base }) => {
    const r = await call(srv, 'POST', '/jobs', { id: 'url-7', start: true, tasks: [{ alias: 'a',
      command: ['true'], inputs: [{ source: 'url', url: `${base}/slow` }] }] });
    assertEq(r.status, 201);
    await sleep(300);
    assertEq((await call(srv, 'POST', '/jobs/url-7/cancel')).status, 200);
    const deadline = Date.now() + 10000;
    let j;
    do {
      await sleep(100);
      j = (await call(srv, 'GET', '/jobs/url-7')).body;
    } while (!['canceled', 'failed', 'succeeded'].includes(j.state) && Date.now() < deadline);
    assertEq(j.tasks[0].state, 'canceled', JSON.stringify(j.tasks[0]));
  }],
];

run(tests, {
  before: async () => {
    const slow = new Set();
    const certs = fs.mkdtempSync(path.join(os.tmpdir(), 'jobrt-url-certs-'));
    execFileSync(BIN, ['certs', certs], { stdio: 'ignore' });
    let tlsBase;
    const handler = (req, res) => {
      if (req.url === '/to-https') { res.writeHead(302, { Location: `${tlsBase}/file.txt` }); res.end(); return; }
      if (req.url === '/to-http') { res.writeHead(301, { Location: `${base}/redirect` }); res.end(); return; }
      if (req.url === '/file.txt') { res.writeHead(200, { 'Content-Length': 12 }); res.end('url-content\n'); return; }
      if (req.url === '/redirect') { res.writeHead(302, { Location: '/file.txt' }); res.end(); return; }
      if (req.url === '/chunked') { res.writeHead(200); res.write('chunk-one\n'); setTimeout(() => res.end('chunk-two\n'), 20); return; }
      if (req.url === '/chunked-big') { res.writeHead(200); res.write(BIG.slice(0, 600)); setTimeout(() => res.end(BIG.slice(0, 600)), 20); return; }
      if (req.url === '/big') { res.writeHead(200, { 'Content-Length': BIG.length }); res.end(BIG); return; }
      if (req.url === '/eof') {
        // HTTP/1.0-style: no length, no chunking; the body ends at close
        req.socket.write('HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n' + 'e'.repeat(5000));
        req.socket.end();
        return;
      }
      if (req.url === '/slow') { res.writeHead(200); res.write('a'); slow.add(res); return; }
      res.writeHead(404); res.end('nope');
    };
    const web = http.createServer(handler);
    await new Promise((resolve) => web.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${web.address().port}`;
    const tls = https.createServer({ cert: fs.readFileSync(path.join(certs, 'server.crt')),
      key: fs.readFileSync(path.join(certs, 'server.key')) }, handler);
    // all of 127/8, so that 127.0.0.2 reaches it under a name the certificate lacks
    await new Promise((resolve) => tls.listen(0, '0.0.0.0', resolve));
    const tlsPort = tls.address().port;
    tlsBase = `https://127.0.0.1:${tlsPort}`;
    const dead = http.createServer();
    await new Promise((resolve) => dead.listen(0, '127.0.0.1', resolve));
    const deadPort = dead.address().port;
    await new Promise((resolve) => dead.close(resolve));
    const srv = await startServer({ config: `log: {level: warn}\nsurfaces: {openeo: false}\n${TEST_USERS}`,
      env: { JOBRT_CA_FILE: path.join(certs, 'ca.crt') } });
    return { srv, web, tls, certs, slow, base, tlsBase, tlsPort, deadPort };
  },
  after: async ({ srv, web, tls, certs, slow }) => {
    for (const r of slow) r.destroy();
    web.close();
    tls.close();
    fs.rmSync(certs, { recursive: true, force: true });
    return srv.finish();
  },
});
