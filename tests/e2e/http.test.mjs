// End-to-end tests of the HTTP server and the request pipeline against a
// real jobrt on a random loopback port.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BIN, RawClient, assert, assertEq, run, sleep, startServer } from './lib.mjs';

const SITE = path.resolve('tests/e2e/site');
const CONFIG = `
lua_path: [${SITE}]
surfaces:
  native: false
  probe: {module: e2e.probe, mount: /probe}
limits:
  max_body: 1KiB
  max_header: 2KiB
  read_timeout: 1s
  idle_timeout: 5s
lua:
  deadline: 500ms
  memory: 16MiB
log: {level: warn}
`;

const req = (path, extra = '') => `GET ${path} HTTP/1.1\r\nHost: x\r\n${extra}\r\n`;

const tests = [
  ['healthz and version answer', async ({ srv }) => {
    const r = await fetch(`${srv.url}/jobrt/healthz`);
    assertEq(r.status, 200);
    assertEq(await r.json(), { status: 'ok' });
    const v = await (await fetch(`${srv.url}/jobrt/version`)).json();
    assertEq(v.name, 'jobrt');
    assert(typeof v.version === 'string');
  }],

  ['1,000 sequential requests on one keep-alive connection', async ({ srv }) => {
    const c = new RawClient(srv.port);
    await c.connect();
    for (let i = 0; i < 1000; i++) {
      c.send(req(`/probe/items/${i}`));
      const r = await c.response();
      assert(r, `connection closed at request ${i}`);
      assertEq(r.status, 200);
      assertEq(JSON.parse(r.body).id, String(i));
    }
    assert(!c.closed, 'connection was closed');
    c.close();
  }],

  ['an answer with 300 headers (12 KiB of head) arrives whole', async ({ srv }) => {
    const r = await fetch(`${srv.url}/probe/headers?n=300`);
    assertEq(r.status, 200);
    assertEq(await r.json(), { n: 300 });
    for (const i of [1, 25, 150, 300]) assertEq(r.headers.get(`x-probe-${i}`), 'v'.repeat(40));
    assertEq([...r.headers.keys()].filter((k) => k.startsWith('x-probe-')).length, 300);
  }],

  ['pipelined requests are answered in order', async ({ srv }) => {
    const c = new RawClient(srv.port);
    await c.connect();
    // The first waits, so a server answering out of order would show it.
    c.send(req('/probe/wait?ms=150') + req('/probe/items/b') + req('/jobrt/healthz') + req('/probe/items/d'));
    const bodies = [];
    for (let i = 0; i < 4; i++) bodies.push((await c.response()).body);
    assertEq(JSON.parse(bodies[0]).waited, 150);
    assertEq(JSON.parse(bodies[1]).id, 'b');
    assertEq(JSON.parse(bodies[2]).status, 'ok');
    assertEq(JSON.parse(bodies[3]).id, 'd');
    c.close();
  }],

  ['chunked request body is reassembled', async ({ srv }) => {
    const c = new RawClient(srv.port);
    await c.connect();
    c.send('POST /probe/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n');
    c.send('5\r\n{"a":\r\n');
    await sleep(20);
    c.send('7\r\n [1,2]}\r\n0\r\n\r\n');
    const r = await c.response();
    assertEq(r.status, 200);
    const doc = JSON.parse(r.body);
    assertEq(doc.length, 12);
    assertEq(doc.doc, { a: [1, 2] });
    c.close();
  }],

  ['Expect: 100-continue gets an interim answer, then the real one', async ({ srv }) => {
    const c = new RawClient(srv.port);
    await c.connect();
    c.send('POST /probe/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n');
    await c.waitData(2000);
    assert(c.buf.toString().startsWith('HTTP/1.1 100 Continue\r\n\r\n'), `got ${c.buf}`);
    c.buf = c.buf.subarray('HTTP/1.1 100 Continue\r\n\r\n'.length);
    c.send('hello');
    const r = await c.response();
    assertEq(r.status, 200);
    assertEq(JSON.parse(r.body).body, 'hello');
    c.close();
  }],

  ['a body over the limit gets 413', async ({ srv }) => {
    const r = await fetch(`${srv.url}/probe/echo`, { method: 'POST', body: 'x'.repeat(2048) });
    assertEq(r.status, 413);
    // Also when the size is only known from chunks.
    const c = new RawClient(srv.port);
    await c.connect();
    c.send('POST /probe/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n');
    c.send(`800\r\n${'y'.repeat(0x800)}\r\n0\r\n\r\n`);
    const r2 = await c.response();
    assertEq(r2.status, 413);
    assertEq(r2.headers.connection, 'close');
  }],

  ['a header over the limit gets 431', async ({ srv }) => {
    const c = new RawClient(srv.port);
    await c.connect();
    c.send(req('/jobrt/healthz', `X-Big: ${'z'.repeat(4000)}\r\n`));
    const r = await c.response();
    assertEq(r.status, 431);
  }],

  ['a malformed request line gets 400 and the connection closes', async ({ srv }) => {
    const c = new RawClient(srv.port);
    await c.connect();
    c.send('GARBAGE\r\n\r\n');
    const r = await c.response();
    assertEq(r.status, 400);
    await c.waitData(1000);
    assert(c.closed, 'connection should be closed');
  }],

  ['a slow client is cut off', async ({ srv }) => {
    const c = new RawClient(srv.port);
    await c.connect();
    const t0 = Date.now();
    c.send('GET /jobrt/healthz HTTP/1.1\r\nHost: x\r\n'); // never finishes
    const r = await c.response(5000);
    assert(r === null || r.status === 408, `expected 408 or close, got ${r && r.status}`);
    const waited = Date.now() - t0;
    assert(waited >= 900 && waited < 4000, `cut after ${waited} ms`);
    await c.waitData(3000);
    assert(c.closed, 'connection should be closed');
  }],

  ['404, 405 with Allow, and OPTIONS', async ({ srv }) => {
    let r = await fetch(`${srv.url}/probe/nothing`);
    assertEq(r.status, 404);
    assertEq((await r.json()).error.code, 'NotFound');
    r = await fetch(`${srv.url}/probe/items/1`, { method: 'PUT' });
    assertEq(r.status, 405);
    assert(/DELETE/.test(r.headers.get('allow')) && /GET/.test(r.headers.get('allow')), r.headers.get('allow'));
    assertEq((await r.json()).error.code, 'MethodNotAllowed');
    r = await fetch(`${srv.url}/probe/items/1`, { method: 'OPTIONS' });
    assertEq(r.status, 204);
    assert(/GET/.test(r.headers.get('allow')));
    r = await fetch(`${srv.url}/elsewhere`);
    assertEq(r.status, 404);
    assertEq((await r.json()).code, 'NotFound');
  }],

  ['query strings and path parameters are decoded', async ({ srv }) => {
    const r = await fetch(`${srv.url}/probe/echo?a=1&b=x%20y&c=%E2%9C%93`, { method: 'POST', body: '' });
    assertEq((await r.json()).query, { a: '1', b: 'x y', c: '\u2713' });
    const r2 = await fetch(`${srv.url}/probe/items/a%2Fb`);
    assertEq((await r2.json()).id, 'a/b');
  }],

  ['malformed JSON gets a clear 400 in the surface shape', async ({ srv }) => {
    const r = await fetch(`${srv.url}/probe/echo`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"a": [1,',
    });
    assertEq(r.status, 400);
    const e = (await r.json()).error;
    assertEq(e.code, 'BadRequest');
    assert(/not valid JSON/.test(e.message), e.message);
  }],

  ['a handler that raises gets the surface error shape', async ({ srv }) => {
    let r = await fetch(`${srv.url}/probe/raise`);
    assertEq(r.status, 500);
    const e = (await r.json()).error;
    assertEq(e.code, 'InternalError');
    assert(r.headers.get('x-request-id'), 'request id header');
    assert(e.message.includes(r.headers.get('x-request-id')), 'message names the request');
    r = await fetch(`${srv.url}/probe/fail`);
    assertEq(r.status, 409);
    assertEq(await r.json(), { error: { status: 409, code: 'Conflict', message: 'the probe refuses' } });
  }],

  ['a handler that loops forever gets 500 in time; others are still served', async ({ srv }) => {
    const t0 = Date.now();
    const looping = fetch(`${srv.url}/probe/loop`);
    const others = Array.from({ length: 5 }, () => fetch(`${srv.url}/jobrt/healthz`));
    const r = await looping;
    const ms = Date.now() - t0;
    assertEq(r.status, 500);
    assertEq((await r.json()).error.code, 'Timeout');
    assert(ms < 3000, `answered after ${ms} ms`);
    for (const o of await Promise.all(others)) assertEq(o.status, 200);
    const again = await fetch(`${srv.url}/probe/items/after`);
    assertEq(again.status, 200);
  }],

  ['a handler that allocates without bound fails alone', async ({ srv }) => {
    const r = await fetch(`${srv.url}/probe/hog`);
    assertEq(r.status, 500);
    assert(['OutOfMemory', 'Timeout'].includes((await r.json()).error.code));
    assertEq((await fetch(`${srv.url}/jobrt/healthz`)).status, 200);
  }],

  ['plugin code runs in an allow-listed environment', async ({ srv }) => {
    const r = await (await fetch(`${srv.url}/probe/escape`)).json();
    assertEq(r, { io: 'nil', execute: 'nil', debug: 'nil', require_io: false, string_meta: true, loadbin: true });
  }],

  ['a streaming answer arrives chunked', async ({ srv }) => {
    const c = new RawClient(srv.port);
    await c.connect();
    c.send(req('/probe/stream?n=4'));
    const r = await c.response();
    assertEq(r.headers['transfer-encoding'], 'chunked');
    assertEq(r.body.trim().split('\n').map((l) => JSON.parse(l).seq), [1, 2, 3, 4]);
    c.close();
  }],

  ['HEAD answers without a body', async ({ srv }) => {
    const c = new RawClient(srv.port);
    await c.connect();
    c.send('HEAD /jobrt/healthz HTTP/1.1\r\nHost: x\r\n\r\n' + req('/jobrt/healthz'));
    await sleep(200);
    const text = c.buf.toString();
    const first = text.indexOf('HTTP/1.1 200');
    const second = text.indexOf('HTTP/1.1 200', first + 1);
    assert(first === 0 && second > 0, text);
    assert(text.slice(0, second).endsWith('\r\n\r\n'), 'HEAD answer has no body');
    c.close();
  }],

  ['SIGTERM during a request still answers it, then exits 0', async () => {
    const srv = await startServer({ config: CONFIG });
    try {
      const pending = fetch(`${srv.url}/probe/wait?ms=600`);
      await sleep(150);
      srv.proc.kill('SIGTERM');
      const r = await pending;
      assertEq(r.status, 200);
      assertEq((await r.json()).waited, 600);
      assertEq(r.headers.get('connection'), 'close');
      const { code } = await srv.exited;
      assertEq(code, 0, 'exit code');
      // No longer accepting.
      let refused = false;
      try { await fetch(`${srv.url}/jobrt/healthz`); } catch { refused = true; }
      assert(refused, 'should refuse after shutdown');
    } finally {
      await srv.stop('SIGKILL');
      srv.cleanup();
    }
  }],

  ['SIGHUP reloads surface code, and keeps the old code when the new is broken', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'jobrt-hup-'));
    const mod = path.join(dir, 'site', 'hup');
    const write = (src) => writeFileSync(path.join(mod, 'v.lua'), src);
    const surface = (v) => `return { auth = false, routes = function(r) r:get("/", function(_, res) res:json({ v = ${v} }) end) end }`;
    spawnSync('mkdir', ['-p', mod]);
    write(surface(1));
    const srv = await startServer({ config: `lua_path: [${path.join(dir, 'site')}]\nsurfaces:\n  native: false\n  v: {module: hup.v, mount: /v}\n` });
    const v = async () => (await (await fetch(`${srv.url}/v`)).json()).v;
    const hup = async () => {
      const before = srv.logs().length;
      srv.proc.kill('SIGHUP');
      for (let i = 0; i < 200 && !/SIGHUP/.test(srv.logs().slice(before)); i++) await sleep(10);
      return srv.logs().slice(before);
    };
    try {
      assertEq(await v(), 1);
      write(surface(2));
      assert(/reloaded/.test(await hup()));
      assertEq(await v(), 2);
      write('return { routes = ');
      assert(/reload refused/.test(await hup()));
      assertEq(await v(), 2);
    } finally {
      await srv.finish('daemon survives reloads and exits 0');
      rmSync(dir, { recursive: true, force: true });
    }
  }],

  ['jobrt check prints file:line for a broken deployment', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'jobrt-check-'));
    try {
      const file = path.join(dir, 'broken.yaml');
      writeFileSync(file, 'listen: 127.0.0.1:8080\nnode:\n  cpu: lots\n  memroy: 4GiB\nsurfaces:\n  mine: {mount: /x}\n');
      const r = spawnSync(BIN, ['check', '-c', file], { encoding: 'utf8', timeout: 10000 });
      assertEq(r.status, 1, 'exit status');
      const lines = r.stderr.trim().split('\n');
      assert(lines.some((l) => l.startsWith(`${file}:3: node.cpu:`)), r.stderr);
      assert(lines.some((l) => l.startsWith(`${file}:4: node.memroy:`)), r.stderr);
      assert(lines.some((l) => l.startsWith(`${file}:6: surfaces.mine`)), r.stderr);
      writeFileSync(file, 'listen: [127.0.0.1:8080\n');
      const r2 = spawnSync(BIN, ['check', '-c', file], { encoding: 'utf8', timeout: 10000 });
      assertEq(r2.status, 1);
      assert(r2.stderr.startsWith(`${file}:`), r2.stderr);
      writeFileSync(file, 'log: {level: warn}\n');
      const r3 = spawnSync(BIN, ['check', '-c', file], { encoding: 'utf8', timeout: 10000 });
      assertEq(r3.status, 0, r3.stderr);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }],

  ['every example deployment in deploy/ passes jobrt check', async () => {
    const files = readdirSync('deploy').filter((f) => f.endsWith('.yaml'));
    assert(files.length > 0, 'no examples found');
    // Run where the examples expect it: with `jobrt certs certs` done (check
    // reads the TLS files).
    const dir = mkdtempSync(path.join(os.tmpdir(), 'jobrt-deploy-'));
    try {
      assertEq(spawnSync(path.resolve(BIN), ['certs', 'certs'], { cwd: dir, encoding: 'utf8' }).status, 0);
      for (const f of files) {
        const r = spawnSync(path.resolve(BIN), ['check', '-c', path.resolve('deploy', f)],
          { cwd: dir, encoding: 'utf8', timeout: 10000 });
        assertEq(r.status, 0, `${f}: ${r.stderr}`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }],

  ['unknown commands and flags print usage and exit 2', async () => {
    for (const args of [['frobnicate'], ['serve', '--nope'], []]) {
      const r = spawnSync(BIN, args, { encoding: 'utf8', timeout: 10000 });
      assertEq(r.status, 2, args.join(' '));
      assert(/usage: jobrt/.test(r.stderr), r.stderr);
    }
  }],
];

run(tests, {
  before: async () => ({ srv: await startServer({ config: CONFIG }) }),
  after: async ({ srv }) => srv.finish(),
});
