// Shared helpers for the end-to-end tests: start a real jobrt on a random
// loopback port, talk raw HTTP over sockets, and report "ok - " lines.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';

export const BIN = process.env.JOBRT_BIN || './jobrt';

// A deployment's users for tests that are not about credentials; ADMIN is
// the matching Authorization header, USER one for an ordinary user.
export const TEST_USERS = `
users:
  tester: {password: "tester-password", roles: [admin]}
  alice: {password: "alice-password", roles: [user]}
  bob: {password: "bob-password", roles: [user]}
`;
const basic = (u, p) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;
export const ADMIN = { Authorization: basic('tester', 'tester-password') };
export const ALICE = { Authorization: basic('alice', 'alice-password') };
export const BOB = { Authorization: basic('bob', 'bob-password') };

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// /proc/PID/stat's start time (field 22) while PID is a live process (not
// a zombie), else null.
export function pidStart(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return f[0] === 'Z' || f[0] === 'X' ? null : f[19];
  } catch {
    return null;
  }
}

// The sandbox server's cgroup parent for a data directory (runtime/core.c:
// "jobrt/d-" and the FNV-1a hash of its real path).
function cgroupParent(data) {
  let real;
  try { real = realpathSync(data); } catch { real = data; }
  let h = 2166136261;
  for (const b of Buffer.from(real)) h = Math.imul(h ^ b, 16777619) >>> 0;
  return `jobrt/d-${h.toString(16).padStart(8, '0')}`;
}

// The sandbox helpers (and servers) that still run for a data directory (a
// task outlives its daemon): [{pid, start, comm}], found by the cgroup
// parent on their command line (a helper is a fork of its server).
export function liveHelpers(data, { servers = false } = {}) {
  const mark = `sandbox-server\0--cgroup-parent\0${cgroupParent(data)}\0`;
  const found = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    let cmd, comm;
    try {
      cmd = readFileSync(`/proc/${d}/cmdline`, 'latin1');
      comm = readFileSync(`/proc/${d}/comm`, 'utf8').trim();
    } catch { continue; }
    if (!cmd.includes(mark) || (!servers && comm !== 'jobrt-sandbox')) continue;
    const start = pidStart(Number(d));
    if (start) found.push({ pid: Number(d), start, comm });
  }
  return found;
}

// Stops, by pid, every helper still running a task of data, and a sandbox
// server still there: SIGTERM (a helper stops its task and removes its
// cgroups), then after 3 s SIGKILL to its process group (the helper and its
// sandbox's pid 1); waits until they are gone (bounded). Returns how many
// there were.
export function stopHelpers(data) {
  const helpers = liveHelpers(data, { servers: true });
  const nap = new Int32Array(new SharedArrayBuffer(4));
  const alive = () => helpers.filter((h) => pidStart(h.pid) === h.start);
  for (const h of helpers) {
    try { process.kill(h.pid, 'SIGTERM'); } catch { /* already gone */ }
  }
  for (let i = 0; i < 1500 && alive().length; i++) Atomics.wait(nap, 0, 0, 2);
  for (const h of alive()) {
    try { process.kill(-h.pid, 'SIGKILL'); } catch { /* already gone */ }
  }
  for (let i = 0; i < 1000 && alive().length; i++) Atomics.wait(nap, 0, 0, 2);
  return helpers.length;
}

// Start `jobrt serve` (bin: another jobrt binary) with an optional
// deployment text; resolves once /jobrt/healthz answers. The returned
// server has url, port, proc, logs(), stop() and kill().
export async function startServer({ config, args = [], env = {}, dataDir, bin = BIN } = {}) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'jobrt-e2e-'));
  const data = dataDir || path.join(dir, 'data');
  const port = await freePort();
  const argv = ['serve', '--listen', `127.0.0.1:${port}`, '--data-dir', data];
  if (config !== undefined) {
    const file = path.join(dir, 'jobrt.yaml');
    writeFileSync(file, config);
    argv.push('-c', file);
  }
  argv.push(...args);
  const proc = spawn(bin, argv, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  proc.stdout.on('data', (d) => { log += d; });
  proc.stderr.on('data', (d) => { log += d; });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  const server = {
    url: `http://127.0.0.1:${port}`, port, proc, dir, data, exited,
    logs: () => log,
    async stop(signal = 'SIGTERM', ms = 10000) {
      if (proc.exitCode !== null || proc.signalCode !== null) return exited;
      proc.kill(signal);
      const timer = setTimeout(() => proc.kill('SIGKILL'), ms);
      const r = await exited;
      clearTimeout(timer);
      return r;
    },
    // Tasks outlive the daemon (shutdown.tasks: keep): what still runs
    // here is stopped first.
    cleanup() { stopHelpers(data); rmSync(dir, { recursive: true, force: true }); },
    // Stop with SIGTERM and report a non-zero exit (a sanitizer report, a
    // crash at shutdown) as a failed test of its own.
    async finish(name = 'daemon exits 0 on SIGTERM') {
      const { code, signal } = await server.stop('SIGTERM');
      if (code === 0) console.log(`ok - ${name}`);
      else {
        console.log(`not ok - ${name}`);
        console.error(`    exit code ${code}, signal ${signal}; log tail:\n${log.slice(-4000)}`);
      }
      server.cleanup();
      return code === 0;
    },
  };
  const deadline = Date.now() + 10000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`jobrt exited early (${proc.exitCode}):\n${log}`);
    try {
      const r = await fetch(`${server.url}/jobrt/healthz`);
      if (r.status === 200) break;
    } catch { /* not up yet */ }
    if (Date.now() > deadline) {
      await server.stop('SIGKILL');
      throw new Error(`jobrt did not come up within 10 s:\n${log}`);
    }
    await sleep(25);
  }
  return server;
}

// A raw HTTP/1.1 connection: send bytes, read whole responses in order.
export class RawClient {
  constructor(port) {
    this.port = port;
    this.buf = Buffer.alloc(0);
    this.closed = false;
    this.waiters = [];
  }
  connect() {
    return new Promise((resolve, reject) => {
      this.sock = net.connect(this.port, '127.0.0.1', resolve);
      this.sock.on('error', (e) => { this.error = e; this.closed = true; this.wake(); reject(e); });
      this.sock.on('data', (d) => { this.buf = Buffer.concat([this.buf, d]); this.wake(); });
      this.sock.on('close', () => { this.closed = true; this.wake(); });
    });
  }
  wake() { const w = this.waiters; this.waiters = []; w.forEach((f) => f()); }
  send(data) { this.sock.write(data); }
  close() { this.sock.destroy(); }
  waitData(ms) {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.waiters.push(() => { clearTimeout(t); resolve(); });
    });
  }
  // Resolves with {status, headers, body} or null when the peer closed first.
  async response(timeoutMs = 5000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = this.tryParse();
      if (r) return r;
      if (this.closed) return null;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timed out waiting for a response');
      await this.waitData(left);
    }
  }
  tryParse() {
    const end = this.buf.indexOf('\r\n\r\n');
    if (end < 0) return null;
    const head = this.buf.subarray(0, end).toString('latin1').split('\r\n');
    const status = Number(head[0].split(' ')[1]);
    const headers = {};
    for (const line of head.slice(1)) {
      const i = line.indexOf(':');
      headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
    }
    let rest = this.buf.subarray(end + 4);
    if (status === 100) { this.buf = rest; return this.tryParse() || { status, headers, body: '', interim: true }; }
    if (headers['transfer-encoding'] === 'chunked') {
      let body = Buffer.alloc(0);
      for (;;) {
        const nl = rest.indexOf('\r\n');
        if (nl < 0) return null;
        const size = parseInt(rest.subarray(0, nl).toString(), 16);
        if (rest.length < nl + 2 + size + 2) return null;
        body = Buffer.concat([body, rest.subarray(nl + 2, nl + 2 + size)]);
        rest = rest.subarray(nl + 2 + size + 2);
        if (size === 0) { this.buf = rest; return { status, headers, body: body.toString() }; }
      }
    }
    const len = Number(headers['content-length'] || 0);
    if (rest.length < len) return null;
    this.buf = rest.subarray(len);
    return { status, headers, body: rest.subarray(0, len).toString() };
  }
}

// A native API call as the test admin: {status, body}.
export async function nativeCall(srv, method, p, body, headers = ADMIN) {
  const r = await fetch(`${srv.url}/jobrt/v1${p}`, {
    method, headers: body ? { ...headers, 'Content-Type': 'application/json' } : headers,
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

// Submit and start a job through the native API; wait (bounded) until it
// has finished and return it.
export async function runJob(srv, job, ms = 20000) {
  const r = await nativeCall(srv, 'POST', '/jobs', { ...job, start: true });
  assertEq(r.status, 201, `submit: ${JSON.stringify(r.body)}`);
  const deadline = Date.now() + ms;
  for (;;) {
    const j = (await nativeCall(srv, 'GET', `/jobs/${r.body.id}`)).body;
    if (['succeeded', 'failed', 'canceled'].includes(j.state)) return j;
    if (Date.now() > deadline) throw new Error(`job ${r.body.id} still ${j.state} after ${ms} ms`);
    await sleep(50);
  }
}

export function runCommand(cmd, args, opts = {}) {
  return spawnSync(cmd, args, { encoding: 'utf8', timeout: 30000, ...opts });
}

// Run named async tests in order ([name, fn] or [name, fn, {limit: ms}],
// 60 s by default); print one line each; exit 1 on failure.
export async function run(tests, { before, after } = {}) {
  let failed = 0;
  let ctx;
  try {
    ctx = before ? await before() : undefined;
  } catch (e) {
    console.log(`not ok - setup: ${e.stack || e}`);
    process.exit(1);
  }
  for (const [name, fn, opts] of tests) {
    const limit = (opts && opts.limit) || 60000;
    let timer;
    try {
      await Promise.race([
        fn(ctx),
        new Promise((_, rej) => { timer = setTimeout(() => rej(new Error(`timed out after ${limit} ms`)), limit); }),
      ]);
      console.log(`ok - ${name}`);
    } catch (e) {
      failed++;
      console.log(`not ok - ${name}`);
      console.error(String(e.stack || e).split('\n').map((l) => '    ' + l).join('\n'));
    } finally {
      clearTimeout(timer);
    }
  }
  try {
    if (after && (await after(ctx)) === false) failed++;
  } catch (e) {
    failed++;
    console.log(`not ok - teardown: ${e.stack || e}`);
  }
  process.exit(failed ? 1 : 0);
}

export function assert(cond, msg) {
  if (!cond) throw new Error(msg || 'assertion failed');
}

export function assertEq(a, b, msg) {
  if (!isDeepStrictEqual(a, b)) {
    throw new Error(`${msg ? msg + ': ' : ''}${JSON.stringify(a)} !== ${JSON.stringify(b)}`);
  }
}
