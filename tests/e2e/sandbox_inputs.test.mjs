// URL inputs: the daemon downloads each http:// input before the task's
// gate opens and binds the file read-only at its target; a failed download
// (HTTP status, too large) fails the task as setup_error naming the URL and
// the reason; https is refused at submit. A local HTTP server stands in for
// the outside. Needs root (the sandbox's id mapping); skips otherwise.
import http from 'node:http';
import { ADMIN, TEST_USERS, assert, assertEq, nativeCall, run, runJob, sleep, startServer } from './lib.mjs';

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
  ['https, other schemes and bad max_bytes are refused at submit', async ({ srv }) => {
    let r = await call(srv, 'POST', '/jobs', { tasks: [{ alias: 'a', command: ['true'],
      inputs: [{ source: 'url', url: 'https://example.com/x' }] }] });
    assertEq(r.status, 400);
    assert(/https URLs are not supported/.test(r.body.message), r.body.message);
    r = await call(srv, 'POST', '/jobs', { tasks: [{ alias: 'a', command: ['true'],
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
    const web = http.createServer((req, res) => {
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
    });
    await new Promise((resolve) => web.listen(0, '127.0.0.1', resolve));
    const dead = http.createServer();
    await new Promise((resolve) => dead.listen(0, '127.0.0.1', resolve));
    const deadPort = dead.address().port;
    await new Promise((resolve) => dead.close(resolve));
    const srv = await startServer({ config: `log: {level: warn}\nsurfaces: {openeo: false}\n${TEST_USERS}` });
    return { srv, web, slow, base: `http://127.0.0.1:${web.address().port}`, deadPort };
  },
  after: async ({ srv, web, slow }) => {
    for (const r of slow) r.destroy();
    web.close();
    return srv.finish();
  },
});
