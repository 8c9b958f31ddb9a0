// WebSockets end to end: a real jobrt serving a test surface (site/e2e/ws.lua)
// over plain HTTP and TLS, driven by the npm `ws` client and by raw sockets
// for what a well-behaved client never sends.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { BIN, RawClient, assert, assertEq, freePort, run, sleep, startServer } from './lib.mjs';

const SITE = path.resolve('tests/e2e/site');
const config = (tlsPort, certs) => `
lua_path: [${SITE}]
${tlsPort ? `listen:
  - address: 127.0.0.1:${tlsPort}
    tls: {cert: ${certs}/server.crt, key: ${certs}/server.key}` : ''}
surfaces:
  native: false
  ws: {module: e2e.ws, mount: /ws}
limits:
  read_timeout: 1s
  idle_timeout: 1s
lua: {deadline: 1s}
log: {level: info}
`;

// Opens a WebSocket; resolves once open with {ws, messages, closed}, where
// closed resolves to {code, reason} and messages collects what arrives.
function open(url, options = {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, options);
    const messages = [];
    const closed = new Promise((r) => ws.on('close', (code, reason) => r({ code, reason: reason.toString() })));
    ws.on('message', (data, binary) => messages.push(binary ? data : data.toString()));
    ws.on('error', (e) => { if (ws.readyState === WebSocket.CONNECTING) reject(e); });
    ws.on('unexpected-response', (_, res) => reject(new Error(`status ${res.statusCode}`)));
    ws.on('open', () => resolve({ ws, messages, closed }));
  });
}

function within(promise, ms, what) {
  let t;
  return Promise.race([promise, new Promise((_, rej) => { t = setTimeout(() => rej(new Error(`${what}: not within ${ms} ms`)), ms); })])
    .finally(() => clearTimeout(t));
}

async function until(cond, ms, what) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(10);
  }
}

const HANDSHAKE = (p, extra = '') => `GET ${p} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n` +
  `Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`;

// A client frame: masked unless mask is false.
function frame(opcode, payload, { mask = true, fin = true } = {}) {
  const data = Buffer.from(payload);
  const head = [(fin ? 0x80 : 0) | opcode];
  const m = mask ? 0x80 : 0;
  if (data.length < 126) head.push(m | data.length);
  else head.push(m | 126, data.length >> 8, data.length & 255);
  const key = Buffer.from([1, 2, 3, 4]);
  const body = Buffer.from(data.map((b, i) => (mask ? b ^ key[i % 4] : b)));
  return Buffer.concat([Buffer.from(head), mask ? key : Buffer.alloc(0), body]);
}

// Server frames after the 101's head: [{opcode, payload}].
function frames(buf) {
  const end = buf.indexOf('\r\n\r\n');
  let rest = buf.subarray(end + 4);
  const out = [];
  while (rest.length >= 2) {
    let len = rest[1] & 0x7f;
    let off = 2;
    if (len === 126) { len = rest.readUInt16BE(2); off = 4; }
    if (rest.length < off + len) break;
    out.push({ opcode: rest[0] & 0x0f, payload: rest.subarray(off, off + len) });
    rest = rest.subarray(off + len);
  }
  return out;
}

// Sends raw bytes after a handshake and waits for the server's close frame
// and the end of the connection; returns {head, frames}.
async function raw(port, bytes) {
  const c = new RawClient(port);
  await c.connect();
  c.send(bytes);
  const deadline = Date.now() + 5000;
  while (!c.closed && Date.now() < deadline) await c.waitData(deadline - Date.now());
  assert(c.closed, 'the server did not close the connection');
  return { head: c.buf.toString('latin1').split('\r\n')[0], frames: frames(c.buf) };
}

const closeCode = (f) => f.payload.readUInt16BE(0);

const tests = [
  ['echo: text and binary messages come back; the client closes', async ({ srv }) => {
    const { ws, messages, closed } = await open(`ws://127.0.0.1:${srv.port}/ws/echo`);
    ws.send('hello');
    ws.send(Buffer.from([0, 1, 2, 255]));
    ws.send('é ü 日本');
    await until(() => messages.length === 3, 5000, 'echoes');
    assertEq(messages[0], 'hello');
    assert(Buffer.isBuffer(messages[1]) && messages[1].equals(Buffer.from([0, 1, 2, 255])), 'binary echo');
    assertEq(messages[2], 'é ü 日本');
    ws.close(4000, 'bye');
    assertEq(await within(closed, 5000, 'close'), { code: 4000, reason: 'bye' });
    await until(() => /echo ended: closed 4000/.test(srv.logs()), 5000, 'the handler saw the close code');
  }],

  ['the Lua deadline bounds each wake of a WebSocket handler, not its whole session', async ({ srv }) => {
    const c = await open(`ws://127.0.0.1:${srv.port}/ws/busy`);
    // One at a time, so that each message is a wake of its own.
    for (let i = 0; i < 40; i++) {
      c.ws.send(`m${i}`);
      await until(() => c.messages.length === i + 1, 5000, `the echo of m${i}`);
    }
    assertEq(c.messages.map(String), Array.from({ length: 40 }, (_, i) => `m${i}`));
    c.ws.close();
  }],

  ['the access log says 101 for an upgraded request', async ({ srv }) => {
    await until(() => /GET \/ws\/echo -> 101/.test(srv.logs()), 5000, 'access log line');
  }],

  ['stream: n messages in order, then the handler closes with its code', async ({ srv }) => {
    const { messages, closed } = await open(`ws://127.0.0.1:${srv.port}/ws/stream?n=500&code=4002`);
    const c = await within(closed, 10000, 'close');
    assertEq(c, { code: 4002, reason: 'done' });
    assertEq(messages.length, 500);
    assertEq(messages, Array.from({ length: 500 }, (_, i) => String(i + 1)));
  }],

  ['the handler closes with 4001 on request; returning closes with 1000', async ({ srv }) => {
    let o = await open(`ws://127.0.0.1:${srv.port}/ws/echo`);
    o.ws.send('close');
    assertEq(await within(o.closed, 5000, 'close'), { code: 4001, reason: 'asked to close' });
    o = await open(`ws://127.0.0.1:${srv.port}/ws/first?timeout=0.2`);
    assertEq((await within(o.closed, 5000, 'close')).code, 1000);
    assertEq(o.messages, ['none: timeout']);
  }],

  ['a plain HTTP request to a WebSocket endpoint is answered 400', async ({ srv }) => {
    const r = await fetch(`${srv.url}/ws/echo`);
    assertEq(r.status, 400);
    const body = await r.json();
    assertEq(body.code, 'BadRequest');
    assert(/Upgrade header must name websocket/.test(body.message), body.message);
    // the connection stays usable: it was not an upgrade request
    const c = new RawClient(srv.port);
    await c.connect();
    c.send('GET /ws/echo HTTP/1.1\r\nHost: x\r\n\r\nGET /jobrt/healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    assertEq((await c.response()).status, 400);
    assertEq((await c.response()).status, 200);
    c.close();
  }],

  ['another protocol version is answered 426 with Sec-WebSocket-Version: 13', async ({ srv }) => {
    const c = new RawClient(srv.port);
    await c.connect();
    c.send(HANDSHAKE('/ws/echo').replace('Version: 13', 'Version: 8'));
    const r = await c.response();
    assertEq(r.status, 426);
    assertEq(r.headers['sec-websocket-version'], '13');
    assertEq(r.headers.connection, 'close');
    c.close();
    const bad = await raw(srv.port, HANDSHAKE('/ws/echo').replace('dGhlIHNhbXBsZSBub25jZQ==', 'c2hvcnQ='));
    assertEq(bad.head, 'HTTP/1.1 400 Bad Request');
  }],

  ['the accept value; frames pipelined with the handshake are the session\'s', async ({ srv }) => {
    const c = new RawClient(srv.port);
    await c.connect();
    c.send(Buffer.concat([Buffer.from(HANDSHAKE('/ws/echo')), frame(1, 'early'), frame(1, 'bird')]));
    await until(() => frames(c.buf).length >= 2, 5000, 'echoes');
    const head = c.buf.toString('latin1');
    assert(head.startsWith('HTTP/1.1 101 Switching Protocols\r\n'), head);
    assert(/\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=\r\n/.test(head), head);
    assertEq(frames(c.buf).map((f) => f.payload.toString()), ['early', 'bird']);
    c.send(frame(8, Buffer.from([0x03, 0xe8])));
    await until(() => c.closed, 5000, 'close');
    const last = frames(c.buf).pop();
    assertEq(last.opcode, 8);
    assertEq(closeCode(last), 1000);
  }],

  ['an unmasked client frame closes with 1002', async ({ srv }) => {
    const r = await raw(srv.port, Buffer.concat([Buffer.from(HANDSHAKE('/ws/echo')), frame(1, 'hi', { mask: false })]));
    assertEq(r.head, 'HTTP/1.1 101 Switching Protocols');
    const last = r.frames.pop();
    assertEq([last.opcode, closeCode(last)], [8, 1002]);
  }],

  ['invalid UTF-8 in a text message closes with 1007', async ({ srv }) => {
    const r = await raw(srv.port, Buffer.concat([Buffer.from(HANDSHAKE('/ws/echo')),
      frame(1, Buffer.from([0x61, 0xc3, 0x28]))]));
    const last = r.frames.pop();
    assertEq([last.opcode, closeCode(last)], [8, 1007]);
  }],

  ['a message over max_message closes with 1009', async ({ srv }) => {
    const { ws, messages, closed } = await open(`ws://127.0.0.1:${srv.port}/ws/echo?max_message=1024`);
    ws.send('x'.repeat(1024));
    await until(() => messages.length === 1, 5000, 'echo at the bound');
    ws.send('x'.repeat(1025));
    assertEq((await within(closed, 5000, 'close')).code, 1009);
    // fragments count as one message
    const r = await raw(srv.port, Buffer.concat([Buffer.from(HANDSHAKE('/ws/echo?max_message=100')),
      frame(1, 'a'.repeat(60), { fin: false }), frame(0, 'a'.repeat(60))]));
    assertEq(closeCode(r.frames.pop()), 1009);
  }],

  ['an idle WebSocket outlives the HTTP idle and read timeouts, pinged', async ({ srv }) => {
    const { ws, messages, closed } = await open(`ws://127.0.0.1:${srv.port}/ws/echo?ping=0.3`);
    let pings = 0;
    ws.on('ping', () => { pings++; });
    await sleep(2500);
    assert(pings >= 4, `only ${pings} pings`);
    ws.send('still here');
    await until(() => messages.length === 1, 5000, 'echo');
    ws.close();
    await within(closed, 5000, 'close');
  }],

  ['a peer that does not answer pings is closed', async ({ srv }) => {
    const { closed } = await open(`ws://127.0.0.1:${srv.port}/ws/echo?ping=0.2`, { autoPong: false });
    const c = await within(closed, 5000, 'close');
    assertEq(c.code, 1006);
  }],

  ['a client that never reads: the queue stays bounded, the server answers others', async ({ srv }) => {
    const { ws, closed } = await open(`ws://127.0.0.1:${srv.port}/ws/flood?ping=0.5&max_queued=262144`);
    ws._socket.pause();
    for (let i = 0; i < 5; i++) {
      const t0 = Date.now();
      const r = await fetch(`${srv.url}/jobrt/healthz`);
      assertEq(r.status, 200);
      assert(Date.now() - t0 < 1000, 'the server was slow to answer');
      await sleep(100);
    }
    // unanswered pings end it; the handler's send then says closed
    await until(() => /flood ended after \d+ messages/.test(srv.logs()), 10000, 'flood ended');
    const n = Number(srv.logs().match(/flood ended after (\d+) messages/)[1]);
    assert(n < 200, `${n} messages of 64 KiB were queued for a peer that reads nothing`);
    assert(!/queue over its bound/.test(srv.logs()), 'queue over its bound');
    ws._socket.resume();
    await within(closed, 10000, 'close');
  }],

  ['a failure after the upgrade closes with 1008 and its message', async ({ srv }) => {
    const { ws, messages, closed } = await open(`ws://127.0.0.1:${srv.port}/ws/first?reject=1`);
    ws.send('{"payload":1}');
    const c = await within(closed, 5000, 'close');
    assertEq(messages, ['got text: {"payload":1}']);
    assertEq(c, { code: 1008, reason: 'signature does not verify: {"payload":1}' });
    const o = await open(`ws://127.0.0.1:${srv.port}/ws/boom`);
    assertEq((await within(o.closed, 5000, 'close')).code, 1011);
  }],

  ['TLS: the upgrade and messages over an HTTPS listener', async ({ tls, dir }) => {
    const ca = readFileSync(path.join(dir, 'certs', 'ca.crt'));
    const { ws, messages, closed } = await open(`wss://localhost:${tls}/ws/echo`, { ca });
    const big = 'y'.repeat(100000);
    ws.send('over tls');
    ws.send(big);
    await until(() => messages.length === 2, 5000, 'echoes');
    assertEq(messages[0], 'over tls');
    assertEq(messages[1], big);
    ws.close(1000);
    assertEq((await within(closed, 5000, 'close')).code, 1000);
    const s = await open(`wss://localhost:${tls}/ws/stream?n=50&code=4003`, { ca });
    assertEq((await within(s.closed, 5000, 'close')).code, 4003);
    assertEq(s.messages.length, 50);
  }],

  ['server shutdown closes open WebSockets with 1001 and exits', async () => {
    const srv = await startServer({ config: config() });
    try {
      const a = await open(`ws://127.0.0.1:${srv.port}/ws/echo`);
      const b = await open(`ws://127.0.0.1:${srv.port}/ws/first?timeout=60`);
      a.ws.send('x');
      await until(() => a.messages.length === 1, 5000, 'echo');
      const t0 = Date.now();
      srv.proc.kill('SIGTERM');
      assertEq(await within(a.closed, 5000, 'close a'), { code: 1001, reason: 'server is shutting down' });
      assertEq((await within(b.closed, 5000, 'close b')).code, 1001);
      const { code } = await within(srv.exited, 10000, 'exit');
      assertEq(code, 0);
      assert(Date.now() - t0 < 5000, 'shutdown waited for the WebSockets');
    } finally {
      await srv.stop('SIGKILL');
      srv.cleanup();
    }
  }],
];

run(tests, {
  before: async () => {
    const tls = await freePort();
    const dir = mkdtempSync(path.join(os.tmpdir(), 'jobrt-ws-'));
    assertEq(spawnSync(BIN, ['certs', path.join(dir, 'certs')]).status, 0);
    const srv = await startServer({ config: config(tls, path.join(dir, 'certs')) });
    return { srv, tls, dir };
  },
  after: async ({ srv, dir }) => {
    const ok = await srv.finish();
    rmSync(dir, { recursive: true, force: true });
    return ok;
  },
});
