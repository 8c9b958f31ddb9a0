// The command line as a user meets it: `jobrt check` listing every kind of
// problem with its line, `jobrt lua` with a failing script, `jobrt help`,
// and `--listen` on the mutual-TLS example (deploy/mtls.yaml).
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BIN, assert, assertEq, freePort, run, sleep } from './lib.mjs';

const JOBRT = path.resolve(BIN);

function jobrt(args, opts = {}) {
  return spawnSync(JOBRT, args, { encoding: 'utf8', timeout: 20000, ...opts });
}

function tmp(prefix) {
  return mkdtempSync(path.join(os.tmpdir(), `jobrt-cli-${prefix}-`));
}

function curl(args) {
  return spawnSync('curl', ['-sS', '--max-time', '10', ...args], { encoding: 'utf8', timeout: 20000 });
}

// Runs `jobrt check` on text written to DIR/jobrt.yaml; returns status,
// the stderr lines and the file's path.
function check(dir, text) {
  const file = path.join(dir, 'jobrt.yaml');
  writeFileSync(file, text);
  const r = jobrt(['check', '-c', file], { cwd: dir });
  return { status: r.status, signal: r.signal, lines: r.stderr.trim().split('\n').filter(Boolean), file, stdout: r.stdout };
}

const tests = [
  ['jobrt check: every new class of problem, each with its line, all at once', async () => {
    const dir = tmp('check');
    try {
      mkdirSync(path.join(dir, 'site'));
      writeFileSync(path.join(dir, 'bad.crt'), 'not a certificate\n');
      const { status, lines, file } = check(dir, [
        `lua_path: [${path.join(dir, 'site')}]`,            // 1
        'listen:',                                          // 2
        '  - 127.0.0.1:1',                                  // 3
        '  - address: 127.0.0.1:2',                         // 4
        '    tls:',                                         // 5
        '      cert: missing.crt',                          // 6
        '      key: bad.crt',                               // 7
        'users:',                                           // 8
        '  root: {password: x, roles: [god]}',              // 9
        'plugins:',                                         // 10
        '  prices: {use: estimate.price_table, cpu_second: abc}', // 11
        '  images: {use: approve.image_allowlist, imagse: [host]}', // 12
        '  ghost: {use: approve.nothing_here}',             // 13
        '  spare: {use: approve.manual}',                   // 14
        'surfaces:',                                        // 15
        '  native: {approval: [images, ghost]}',            // 16
        '  openeo: {estimator: prices, mount: /jobrt/v1}',  // 17
        '',
      ].join('\n'));
      assertEq(status, 1, lines.join('\n'));
      const F = `${file}:`;
      const want = [
        `${F}6: listen[2].tls.cert: cannot read the cert file: missing.crt: No such file or directory`,
        `${F}7: listen[2].tls.key: "bad.crt" does not parse: expected a PEM private key ("-----BEGIN ...-----")`,
        `${F}9: users.root.roles[1]: unknown role "god" (known: admin, approver, user)`,
        `${F}11: plugins.prices.cpu_second: expected a number, got "abc"`,
        `${F}12: plugins.images: missing "images" (the image patterns allowed, e.g. ["ubuntu*", host])`,
        `${F}12: plugins.images.imagse: unknown key (did you mean "images"?)`,
        `${F}14: warning: plugins.spare: no surface names this plugin (it is never loaded)`,
        `${F}17: surfaces.openeo.mount: "/jobrt/v1" is already the mount of surfaces.native`,
      ];
      for (const w of want) assert(lines.includes(w), `missing line:\n${w}\nin:\n${lines.join('\n')}`);
      assert(lines.some((l) => l.startsWith(`${F}13: plugins.ghost.use: unknown plugin module "approve.nothing_here"`)),
        lines.join('\n'));
      // Sorted by line.
      const numbers = lines.map((l) => Number(l.slice(F.length).split(':')[0]));
      assertEq(numbers, [...numbers].sort((a, b) => a - b));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }],

  ['jobrt check: a good deployment with an unused plugin warns and exits 0', async () => {
    const dir = tmp('warn');
    try {
      const { status, lines, file, stdout } = check(dir, 'plugins:\n  review: {use: approve.manual}\n');
      assertEq(status, 0, lines.join('\n'));
      assertEq(lines, [`${file}:2: warning: plugins.review: no surface names this plugin (it is never loaded)`]);
      assertEq(stdout, `${file}: ok\n`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }],

  ['jobrt lua: a failing script prints its traceback and exits 1, never aborts', async () => {
    const dir = tmp('lua');
    try {
      const scripts = {
        plain: 'local function f() error("plain failure") end\nf()\n',
        // The core open and a timer pending: both used to keep the loop or
        // abort in uv_close at exit.
        core: 'local core = require("jobrt.core")\n'
          + `assert(core.open({ data_dir = ${JSON.stringify(path.join(dir, 'data'))} }))\n`
          + 'error("with the core open")\n',
        timer: 'local t = require("luv").new_timer()\nt:start(600000, 0, function() end)\nerror("with a timer")\n',
        waited: 'require("jobrt.async").sleep(0.01)\nerror("after a wait")\n',
        // Raised later, inside a raw luv callback rather than the main chunk.
        callback: 'local t = require("luv").new_timer()\nt:start(1, 0, function() error("in a timer callback") end)\n',
      };
      for (const [name, src] of Object.entries(scripts)) {
        const file = path.join(dir, `${name}.lua`);
        writeFileSync(file, src);
        const r = jobrt(['lua', file]);
        assertEq(r.signal, null, `${name}: killed by ${r.signal}: ${r.stderr}`);
        assertEq(r.status, 1, `${name}: ${r.stderr}`);
        assert(r.stderr.includes('stack traceback:'), `${name}: ${r.stderr}`);
        assert(r.stderr.includes(`${name}.lua:`), `${name}: ${r.stderr}`);
        assert(!/Assertion|Aborted/.test(r.stderr), `${name}: ${r.stderr}`);
      }
      // A script that ends well with the core still open exits 0.
      const ok = path.join(dir, 'ok.lua');
      writeFileSync(ok, `assert(require("jobrt.core").open({ data_dir = ${JSON.stringify(path.join(dir, 'data2'))} }))\nprint("fine")\n`);
      const r = jobrt(['lua', ok]);
      assertEq([r.status, r.signal, r.stdout], [0, null, 'fine\n'], r.stderr);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }],

  ['jobrt help lists every command; help CMD and CMD --help explain one', async () => {
    const r = jobrt(['help']);
    assertEq(r.status, 0);
    for (const c of ['serve', 'check', 'lua', 'eval', 'sandbox-check', 'certs', 'hash-password', 'version', 'help']) {
      assert(new RegExp(`^  ${c}\\b`, 'm').test(r.stdout), `${c} missing from:\n${r.stdout}`);
    }
    assert(/surface openeo/.test(r.stdout), 'eval comes from the openEO surface');
    for (const c of ['serve', 'check', 'lua', 'eval', 'sandbox-check', 'certs', 'hash-password', 'version', 'help']) {
      const a = jobrt(['help', c]);
      assertEq(a.status, 0, `help ${c}: ${a.stderr}`);
      assert(a.stdout.startsWith(`usage: jobrt ${c}`), `help ${c}: ${a.stdout}`);
      const b = jobrt([c, '--help'], { input: '' });
      assertEq(b.status, 0, `${c} --help: ${b.stderr}`);
      assert(b.stdout.startsWith(`usage: jobrt ${c}`), `${c} --help: ${b.stdout}`);
    }
    assert(/TLS\s+listeners of the file stay/.test(jobrt(['help', 'serve']).stdout), 'serve explains --listen');
    const u = jobrt(['help', 'nothing']);
    assertEq(u.status, 2);
    assert(/unknown command nothing/.test(u.stderr), u.stderr);
  }],

  ['jobrt eval comes from the openEO surface and still evaluates', async () => {
    const g = '{"process_graph": {"a": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": true}}}';
    let r = jobrt(['eval', '-'], { input: g });
    assertEq([r.status, r.stdout], [0, '3\n'], r.stderr);
    r = jobrt(['eval', '-'], { input: '{"process": {"id": "x"}}' });
    assertEq(r.status, 1);
    assertEq(JSON.parse(r.stderr).code, 'ProcessGraphMissing');
    // Without the openEO surface there is no eval.
    const dir = tmp('eval');
    try {
      const file = path.join(dir, 'jobrt.yaml');
      writeFileSync(file, 'surfaces: {openeo: false}\n');
      r = jobrt(['eval', '-c', file, '-'], { input: g });
      assertEq(r.status, 2, r.stderr);
      assert(/unknown command eval/.test(r.stderr), r.stderr);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }],

  ['--listen on deploy/mtls.yaml replaces the plain listener and keeps mutual TLS', async () => {
    const dir = tmp('mtls');
    let proc;
    try {
      assertEq(jobrt(['certs', 'certs'], { cwd: dir }).status, 0);
      // The example as shipped, on ports of its own so tests can run side by side.
      const tlsPort = await freePort();
      const plain = await freePort();
      const text = readFileSync('deploy/mtls.yaml', 'utf8');
      assert(text.includes('127.0.0.1:8443'), 'the example listens on 8443');
      writeFileSync(path.join(dir, 'mtls.yaml'), text.replaceAll('127.0.0.1:8443', `127.0.0.1:${tlsPort}`));
      const refused = jobrt(['serve', '-c', 'mtls.yaml', '--listen', `127.0.0.1:${tlsPort}`], { cwd: dir });
      assertEq(refused.status, 2, refused.stderr);
      assert(/is a TLS listener of the deployment file; --listen replaces only the plain listeners/.test(refused.stderr),
        refused.stderr);

      proc = spawn(JOBRT, ['serve', '-c', 'mtls.yaml', '--listen', `127.0.0.1:${plain}`], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
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
      const c = (f) => path.join(dir, 'certs', f);
      let r = curl(['--cacert', c('ca.crt'), '--cert', c('client.crt'), '--key', c('client.key'),
        `https://localhost:${tlsPort}/jobrt/healthz`]);
      assertEq(r.status, 0, `${r.stderr}\n${log}`);
      assertEq(JSON.parse(r.stdout), { status: 'ok' });
      r = curl(['--cacert', c('ca.crt'), `https://localhost:${tlsPort}/jobrt/healthz`]);
      assert(r.status !== 0, 'a client without a certificate is refused');
      // The file's own plain listener (8080) was replaced.
      assert(!log.includes('http://127.0.0.1:8080'), log);
      proc.kill('SIGTERM');
      assertEq(await exited, 0, log);
      proc = undefined;
    } finally {
      if (proc) proc.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  }],
];

run(tests);
