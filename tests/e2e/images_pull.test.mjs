// Pulling from a real registry on loopback: Debian's docker-registry with
// token authentication (a token service in this test signs the registry's
// bearer tokens with a throwaway key), the test image pushed with skopeo,
// and a proxy in front of the registry that can corrupt or cut blob
// downloads. Then: `jobrt images pull` with the token dance, wrong
// credentials refused, a digest mismatch refused, an interrupted pull
// leaving no image (and the next pull resuming it), the native API's pull,
// and a job whose image is pulled on demand waiting with the pull as its
// reason, then running.
import { spawn, spawnSync } from 'node:child_process';
import { createSign, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { BIN, TEST_USERS, assert, assertEq, freePort, nativeCall, run, runCommand, sleep, startServer } from './lib.mjs';

const need = ['/usr/bin/docker-registry', '/usr/bin/skopeo', '/bin/busybox'];
if (process.getuid() !== 0) {
  console.log('skip - image pull tests # need root');
  process.exit(0);
}
for (const f of need) {
  if (!existsSync(f)) {
    console.log(`skip - image pull tests # ${f} is missing (make deps installs it)`);
    process.exit(0);
  }
}

const PY = path.join(path.dirname(new URL(import.meta.url).pathname), 'oci_image.py');
const USER = 'puller', PASS = 'pull-secret-1';

function b64url(buf) { return Buffer.from(buf).toString('base64url'); }

// The registry's token service: Basic credentials in, a JWT out, signed
// with the key whose certificate the registry trusts (x5c header).
function tokenService(keyPem, certDer, service, issuer, log) {
  return http.createServer((req, res) => {
    const u = new URL(req.url, 'http://x');
    const auth = req.headers.authorization || '';
    const [user, pass] = auth.startsWith('Basic ') ? Buffer.from(auth.slice(6), 'base64').toString().split(':') : [];
    log.push({ scope: u.searchParams.get('scope'), user });
    if (user !== USER || pass !== PASS) {
      res.writeHead(401, { 'Content-Type': 'application/json' });
      res.end('{"errors":[{"code":"UNAUTHORIZED"}]}');
      return;
    }
    const access = [];
    for (const scope of u.searchParams.getAll('scope')) {
      const [type, name, actions] = scope.split(':');
      access.push({ type, name, actions: actions.split(',') });
    }
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'RS256', x5c: [certDer.toString('base64')] };
    const claims = { iss: issuer, sub: user, aud: service, exp: now + 300, nbf: now - 10, iat: now,
      jti: randomBytes(8).toString('hex'), access };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const sig = createSign('RSA-SHA256').update(input).sign(keyPem);
    const token = `${input}.${b64url(sig)}`;
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ token, access_token: token, expires_in: 300 }));
  });
}

// A proxy to the registry. mode: pass, corrupt (one byte of every blob body
// flipped), cut (a blob body stops half-way and the connection drops),
// slow (blob bodies trickle). ranges: the Range headers it saw.
function proxy(target, state) {
  return http.createServer((req, res) => {
    if (req.headers.range) state.ranges.push(req.headers.range);
    const isBlob = /\/blobs\/sha256:/.test(req.url) && req.method === 'GET';
    const up = http.request({ host: '127.0.0.1', port: target, path: req.url, method: req.method,
      headers: { ...req.headers, host: `127.0.0.1:${target}` } }, (ur) => {
      const chunks = [];
      ur.on('data', (c) => chunks.push(c));
      ur.on('end', async () => {
        let body = Buffer.concat(chunks);
        const headers = { ...ur.headers };
        delete headers['transfer-encoding'];
        if (ur.headers.location) headers.location = ur.headers.location.replace(`:${target}`, `:${state.port}`);
        if (isBlob && ur.statusCode < 300 && body.length > 1000) {
          if (state.mode === 'corrupt') {
            body = Buffer.from(body);
            body[body.length >> 1] ^= 0xff;
          } else if (state.mode === 'cut') {
            headers['content-length'] = String(body.length);
            res.writeHead(ur.statusCode, headers);
            res.write(body.subarray(0, body.length >> 1));
            setTimeout(() => res.destroy(), 50);
            return;
          } else if (state.mode === 'slow') {
            headers['content-length'] = String(body.length);
            res.writeHead(ur.statusCode, headers);
            for (let off = 0; off < body.length; off += 16384) {
              if (res.destroyed) return;
              res.write(body.subarray(off, off + 16384));
              await sleep(40);
            }
            res.end();
            return;
          }
        }
        headers['content-length'] = String(body.length);
        res.writeHead(ur.statusCode, headers);
        res.end(body);
      });
    });
    up.on('error', () => { res.writeHead(502); res.end(); });
    req.pipe(up);
  });
}

function listen(server, port) {
  return new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
}

// The token service and the proxy run in this process: commands that talk
// to them must not block its loop (spawnSync would).
function runAsync(cmd, args, ms = 60000) {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => p.kill('SIGKILL'), ms);
    p.on('close', (status) => { clearTimeout(timer); resolve({ status, stdout, stderr }); });
  });
}

function images(ctx, ...args) {
  return runAsync(BIN, ['images', ...args, '-c', ctx.cfgFile, '--data-dir', ctx.srv.data]);
}

async function listNames(ctx) {
  const r = await images(ctx, 'list', '--json');
  assertEq(r.status, 0, r.stderr);
  return JSON.parse(r.stdout).images.map((i) => i.name);
}

const tests = [
  ['images pull answers the registry\'s bearer challenge with the configured credentials', async (ctx) => {
    const r = await images(ctx, 'pull', ctx.ref);
    assertEq(r.status, 0, r.stderr);
    assert(r.stdout.startsWith(`${ctx.ref}\t`), r.stdout);
    assert(ctx.tokens.some((t) => t.user === USER && /^repository:bb:pull/.test(t.scope || '')), JSON.stringify(ctx.tokens));
    assertEq(await listNames(ctx), [ctx.ref]);
    assertEq((await images(ctx, 'rm', ctx.ref)).status, 0);
  }],
  ['wrong credentials are refused with the reason', async (ctx) => {
    const bad = path.join(ctx.dir, 'bad.yaml');
    writeFileSync(bad, readFileSync(ctx.cfgFile, 'utf8').replace(PASS, 'wrong'));
    const r = await runAsync(BIN, ['images', 'pull', ctx.ref, '-c', bad, '--data-dir', ctx.srv.data]);
    assertEq(r.status, 1);
    assert(/answered 401 \(wrong credentials\?\)/.test(r.stderr), r.stderr);
    assertEq(await listNames(ctx), []);
  }],
  ['a blob that does not match its digest is refused and no image appears', async (ctx) => {
    ctx.state.mode = 'corrupt';
    const r = await images(ctx, 'pull', ctx.ref);
    ctx.state.mode = 'pass';
    assertEq(r.status, 1, r.stdout);
    assert(/digest mismatch/.test(r.stderr), r.stderr);
    assertEq(await listNames(ctx), []);
  }],
  ['an interrupted pull leaves no image; the next one resumes and completes', async (ctx) => {
    ctx.state.mode = 'cut';
    ctx.state.ranges.length = 0;
    let r = await images(ctx, 'pull', ctx.ref);
    assertEq(r.status, 1, r.stdout);
    assert(/kept for a resume/.test(r.stderr), r.stderr);
    assertEq(await listNames(ctx), []);
    const tmp = readdirSync(path.join(ctx.srv.data, 'images', 'tmp'));
    assert(tmp.some((f) => f.endsWith('.partial')), `partial files: ${tmp}`);
    ctx.state.mode = 'pass';
    r = await images(ctx, 'pull', ctx.ref);
    assertEq(r.status, 0, r.stderr);
    assert(ctx.state.ranges.some((h) => /^bytes=\d+-$/.test(h)), `no Range request: ${ctx.state.ranges}`);
    assertEq(await listNames(ctx), [ctx.ref]);
    r = await images(ctx, 'gc');
    assertEq(r.status, 0, r.stderr);
    assertEq(readdirSync(path.join(ctx.srv.data, 'images', 'tmp')).filter((f) => f.endsWith('.partial')), []);
    assertEq((await images(ctx, 'rm', ctx.ref)).status, 0);
  }],
  ['the native API pulls too (admin)', async (ctx) => {
    const r = await nativeCall(ctx.srv, 'POST', '/images/pull', { ref: ctx.ref, name: 'pulled:1' });
    assertEq(r.status, 201, JSON.stringify(r.body));
    assertEq(r.body.name, 'pulled:1');
    const list = await nativeCall(ctx.srv, 'GET', '/images');
    assertEq(list.body.images.map((i) => i.name), ['pulled:1']);
    const del = await fetch(`${ctx.srv.url}/jobrt/v1/images?name=pulled:1`, { method: 'DELETE',
      headers: { Authorization: 'Basic ' + Buffer.from('tester:tester-password').toString('base64') } });
    assertEq(del.status, 204);
  }],
  ['a job naming a registry image waits for its pull (the reason says so), then runs', async (ctx) => {
    ctx.state.mode = 'slow';
    const sub = await nativeCall(ctx.srv, 'POST', '/jobs', { id: 'ondemand-1', start: true,
      tasks: [{ alias: 'a', image: ctx.ref, command: ['cat', '/data/readme'] }] });
    assertEq(sub.status, 201, JSON.stringify(sub.body));
    assert(sub.body.waiting && sub.body.waiting.reason === 'Pulling' && /^pulling image /.test(sub.body.waiting.message), JSON.stringify(sub.body));
    let seen = null;
    const deadline = Date.now() + 45000;
    let j;
    for (;;) {
      j = (await nativeCall(ctx.srv, 'GET', '/jobs/ondemand-1')).body;
      if (j.waiting && j.waiting.reason === 'Pulling' && /\d+\/\d+ layers/.test(j.waiting.message)) seen = j.waiting.message;
      if (['succeeded', 'failed', 'canceled'].includes(j.state)) break;
      assert(Date.now() < deadline, `still ${j.state}: ${JSON.stringify(j.waiting)}`);
      await sleep(50);
    }
    ctx.state.mode = 'pass';
    assertEq(j.state, 'succeeded', j.error);
    assert(seen && /pulling image .*: \d\/2 layers/.test(seen), `waiting reason seen: ${seen}`);
    const logs = (await nativeCall(ctx.srv, 'GET', '/jobs/ondemand-1/logs')).body.logs.map((l) => l.message);
    assert(logs.includes('from layer two'), JSON.stringify(logs));
    assert(logs.some((m) => /waiting for image .* to be pulled/.test(m)), JSON.stringify(logs));
  }],
];

run(tests, {
  before: async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'jobrt-pull-'));
    const key = path.join(dir, 'token.key'), cert = path.join(dir, 'token.crt');
    const ssl = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key,
      '-out', cert, '-days', '1', '-subj', '/CN=jobrt-test-token'], { encoding: 'utf8' });
    assert(ssl.status === 0, ssl.stderr);
    const der = spawnSync('openssl', ['x509', '-in', cert, '-outform', 'DER']).stdout;
    const tokens = [];
    const tokenPort = await freePort(), regPort = await freePort(), proxyPort = await freePort();
    const ts = tokenService(readFileSync(key), der, 'jobrt-test-registry', 'jobrt-test-issuer', tokens);
    await listen(ts, tokenPort);
    writeFileSync(path.join(dir, 'registry.yml'), `version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: ${dir}/registry}}
http: {addr: 127.0.0.1:${regPort}}
auth:
  token:
    realm: http://127.0.0.1:${tokenPort}/token
    service: jobrt-test-registry
    issuer: jobrt-test-issuer
    rootcertbundle: ${cert}
`);
    const reg = spawn('/usr/bin/docker-registry', ['serve', path.join(dir, 'registry.yml')], { stdio: ['ignore', 'ignore', 'pipe'] });
    let regLog = '';
    reg.stderr.on('data', (d) => { regLog += d; });
    for (let i = 0; ; i++) {
      try {
        const r = await fetch(`http://127.0.0.1:${regPort}/v2/`);
        if (r.status === 401) break;
      } catch { /* not up yet */ }
      assert(i < 200, `the registry did not start: ${regLog}`);
      await sleep(25);
    }
    const archive = path.join(dir, 'bb.tar');
    runCommand('python3', [PY, 'oci', archive, '1']);
    const push = await runAsync('/usr/bin/skopeo', ['copy', '--dest-tls-verify=false', '--dest-creds', `${USER}:${PASS}`,
      `oci-archive:${archive}`, `docker://127.0.0.1:${regPort}/bb:1`]);
    assert(push.status === 0, `skopeo: status ${push.status} ${push.stderr}`);
    const state = { mode: 'pass', ranges: [], port: proxyPort };
    const px = proxy(regPort, state);
    await listen(px, proxyPort);
    const host = `127.0.0.1:${proxyPort}`;
    const cfgText = `log: {level: warn}
images:
  pull: on_demand
  registries:
    - {host: "${host}", url: "http://${host}", username: ${USER}, password: ${PASS}}
${TEST_USERS}`;
    const srv = await startServer({ config: cfgText });
    const cfgFile = path.join(dir, 'jobrt.yaml');
    writeFileSync(cfgFile, cfgText);
    return { dir, srv, reg, ts, px, state, tokens, cfgFile, ref: `${host}/bb:1` };
  },
  after: async (ctx) => {
    ctx.ts.close();
    ctx.px.close();
    ctx.reg.kill('SIGTERM');
    const ok = await ctx.srv.finish();
    rmSync(ctx.dir, { recursive: true, force: true });
    return ok;
  },
});
