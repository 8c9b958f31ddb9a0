// TLS and mutual TLS on a real jobrt, checked with curl: the server's
// certificate verifies, a client without a certificate or with one from
// another CA is refused, the right one is accepted and its subject reaches
// the handler; Kuscia takes a verified client certificate for its Token
// where the deployment says so.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BIN, assert, assertEq, freePort, run, sleep } from './lib.mjs';

const SITE = path.resolve('tests/e2e/site');

function curl(args) {
  return spawnSync('curl', ['-sS', '--max-time', '10', ...args], { encoding: 'utf8', timeout: 20000 });
}

async function start(dir) {
  const plain = await freePort();
  const mtls = await freePort();
  const tls = await freePort();
  const c = (f) => path.join(dir, 'certs', f);
  const config = `
listen:
  - 127.0.0.1:${plain}
  - address: 127.0.0.1:${mtls}
    tls: {cert: ${c('server.crt')}, key: ${c('server.key')}, client_ca: ${c('ca.crt')}, require_client_cert: true}
  - address: 127.0.0.1:${tls}
    tls: {cert: ${c('server.crt')}, key: ${c('server.key')}}
data_dir: ${path.join(dir, 'data')}
lua_path: [${SITE}]
surfaces:
  native: false
  probe: {module: e2e.probe, mount: /probe}
  kuscia: {client_cert: true, domains: [alice]}
log: {level: warn}
`;
  writeFileSync(path.join(dir, 'tls.yaml'), config);
  const proc = spawn(BIN, ['serve', '-c', path.join(dir, 'tls.yaml')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  proc.stderr.on('data', (d) => { log += d; });
  const exited = new Promise((r) => proc.on('exit', (code) => r(code)));
  const deadline = Date.now() + 10000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`jobrt exited: ${log}`);
    try { if ((await fetch(`http://127.0.0.1:${plain}/jobrt/healthz`)).ok) break; } catch { /* not yet */ }
    if (Date.now() > deadline) throw new Error(`jobrt did not start: ${log}`);
    await sleep(25);
  }
  return { proc, exited, plain, mtls, tls, c, log: () => log };
}

const tests = [
  ['the server certificate verifies with the CA, and not without it', async ({ srv }) => {
    let r = curl(['--cacert', srv.c('ca.crt'), `https://localhost:${srv.tls}/jobrt/healthz`]);
    assertEq(r.status, 0, r.stderr);
    assertEq(JSON.parse(r.stdout), { status: 'ok' });
    r = curl([`https://localhost:${srv.tls}/jobrt/healthz`]);
    assertEq(r.status, 60, `curl should reject an unknown CA: ${r.stderr}`);
  }],

  ['TLS 1.1 is refused', async ({ srv }) => {
    const r = curl(['--cacert', srv.c('ca.crt'), '--tls-max', '1.1', `https://localhost:${srv.tls}/jobrt/healthz`]);
    assert(r.status !== 0, 'TLS 1.1 handshake must fail');
  }],

  ['without a client certificate the handler sees none', async ({ srv }) => {
    const r = curl(['--cacert', srv.c('ca.crt'), `https://localhost:${srv.tls}/probe/whoami`]);
    assertEq(r.status, 0, r.stderr);
    const tls = JSON.parse(r.stdout).tls;
    assertEq(tls.subject, '');
    assertEq(tls.verified, false);
    assert(/^TLSv1\.[23]$/.test(tls.version), tls.version);
  }],

  ['mTLS refuses a client without a certificate', async ({ srv }) => {
    const r = curl(['--cacert', srv.c('ca.crt'), `https://localhost:${srv.mtls}/jobrt/healthz`]);
    assert(r.status !== 0, `expected a failed handshake, got ${r.stdout}`);
  }],

  ['mTLS refuses a certificate from another CA', async ({ srv, dir }) => {
    const other = path.join(dir, 'other');
    assertEq(spawnSync(BIN, ['certs', other]).status, 0);
    const r = curl(['--cacert', srv.c('ca.crt'), '--cert', path.join(other, 'client.crt'),
      '--key', path.join(other, 'client.key'), `https://localhost:${srv.mtls}/jobrt/healthz`]);
    assert(r.status !== 0, `expected a failed handshake, got ${r.stdout}`);
  }],

  ['mTLS accepts the right client and the handler sees its subject', async ({ srv }) => {
    const r = curl(['--cacert', srv.c('ca.crt'), '--cert', srv.c('client.crt'), '--key', srv.c('client.key'),
      `https://localhost:${srv.mtls}/probe/whoami`]);
    assertEq(r.status, 0, r.stderr);
    const tls = JSON.parse(r.stdout).tls;
    assertEq(tls.subject, 'CN=client,O=jobrt');
    assertEq(tls.issuer, 'CN=jobrt throwaway CA,O=jobrt');
    assertEq(tls.verified, true);
  }],

  ['Kuscia with client_cert: a verified client certificate stands for the Token, nothing else does', async ({ srv }) => {
    const query = (url, ...args) => curl([...args, '-w', '\n%{http_code}', '-H', 'Content-Type: application/json',
      '-d', '{"job_id":"no-such-job"}', `${url}/api/v1/job/query`]);
    const ca = ['--cacert', srv.c('ca.crt')];
    let r = query(`https://localhost:${srv.mtls}`, ...ca, '--cert', srv.c('client.crt'), '--key', srv.c('client.key'));
    assertEq(r.status, 0, r.stderr);
    const [body, code] = r.stdout.split('\n');
    assertEq(code, '200', r.stdout);
    assertEq(JSON.parse(body).status.code, 11202, `past the Token check, the job is unknown: ${body}`);
    r = query(`https://localhost:${srv.tls}`, ...ca);
    assertEq(r.stdout, '\n401', 'TLS without a client certificate: 401, empty body');
    r = query(`http://127.0.0.1:${srv.plain}`);
    assertEq(r.stdout, '\n401', 'plain HTTP without a Token: 401, empty body');
  }],

  ['keep-alive works over TLS', async ({ srv }) => {
    const url = `https://localhost:${srv.tls}/probe/items/`;
    const r = curl(['--cacert', srv.c('ca.crt'), '-w', '\\n%{num_connects}\\n', `${url}1`, `${url}2`, `${url}3`]);
    assertEq(r.status, 0, r.stderr);
    const connects = r.stdout.split('\n').filter((l) => /^\d+$/.test(l)).map(Number);
    assertEq(connects, [1, 0, 0]);
  }],
];

run(tests, {
  before: async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'jobrt-tls-'));
    const r = spawnSync(BIN, ['certs', path.join(dir, 'certs')], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`jobrt certs failed: ${r.stderr}`);
    return { dir, srv: await start(dir) };
  },
  after: async ({ dir, srv }) => {
    srv.proc.kill('SIGTERM');
    const t = setTimeout(() => srv.proc.kill('SIGKILL'), 10000);
    const code = await srv.exited;
    clearTimeout(t);
    console.log(`${code === 0 ? 'ok' : 'not ok'} - TLS daemon exits 0 on SIGTERM`);
    if (code !== 0) console.error(srv.log().slice(-4000));
    rmSync(dir, { recursive: true, force: true });
  },
});
