// The command-line client against a real daemon: jobrt login (the
// credentials file and its mode), jobs submit/list/show/logs/cancel/
// restart/approve/reject/watch in both output modes (a pty from `script`
// for the terminal, pipes otherwise, --json), the exit codes that follow
// the job, a bad token, a daemon that is down, and usage errors.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BIN, TEST_USERS, assert, assertEq, freePort, run, startServer } from './lib.mjs';

const JOBRT = path.resolve(BIN);
const home = mkdtempSync(path.join(os.tmpdir(), 'jobrt-cli-home-'));
const files = mkdtempSync(path.join(os.tmpdir(), 'jobrt-cli-files-'));
const CREDS = path.join(home, '.config', 'jobrt', 'credentials');

const quote = (s) => `'${String(s).replaceAll("'", "'\\''")}'`;
const baseEnv = () => {
  const env = { ...process.env, HOME: home };
  delete env.JOBRT_TOKEN;
  delete env.JOBRT_URL;
  delete env.XDG_CONFIG_HOME;
  return env;
};

// jobrt with pipes: {status, stdout, stderr}.
function cli(args, { env = {}, input } = {}) {
  const r = spawnSync(JOBRT, args, { encoding: 'utf8', timeout: 30000, env: { ...baseEnv(), ...env }, input });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

// jobrt on a terminal (script's pty): {status, out} with stdout and stderr mixed.
function tty(args, { env = {} } = {}) {
  const r = spawnSync('script', ['-qec', [JOBRT, ...args].map(quote).join(' '), '/dev/null'],
    { encoding: 'utf8', timeout: 30000, env: { ...baseEnv(), TERM: 'xterm', ...env } });
  return { status: r.status, out: r.stdout };
}

// A jobrt started in the background: resolves {status, stdout, stderr}.
function background(args, { env = {} } = {}) {
  const p = spawn(JOBRT, args, { env: { ...baseEnv(), ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '', stderr = '';
  p.stdout.on('data', (d) => { stdout += d; });
  p.stderr.on('data', (d) => { stderr += d; });
  const timer = setTimeout(() => p.kill('SIGKILL'), 30000);
  const done = new Promise((resolve) => p.on('exit', (status) => { clearTimeout(timer); resolve({ status, stdout, stderr }); }));
  return { proc: p, done, out: () => stdout };
}

async function until(fn, ms = 15000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

function file(name, text) {
  const p = path.join(files, name);
  writeFileSync(p, text);
  return p;
}

const YAML_JOB = file('pair.yaml', `
title: a pair
tasks:
  - alias: make
    command: [sh, -c, "echo made; sleep 0.3"]
    resources: {cpu: 100m, memory: 64MiB}
  - alias: use
    deps: [make]
    command: [sh, -c, "echo used >&2"]
`);
const FAILING = file('fail.json', JSON.stringify({ title: 'fails', tasks: [{ alias: 'x', command: ['sh', '-c', 'echo about to fail; exit 3'] }] }));
const LONG = file('long.json', JSON.stringify({ title: 'long', tasks: [{ alias: 'l', command: ['sh', '-c', 'echo tick; sleep 60'] }] }));
const HELD = file('held.json', JSON.stringify({ title: 'held', labels: { hold: 'yes' }, tasks: [{ alias: 'h', command: ['true'] }] }));
const SLOW = file('slow.json', JSON.stringify({ title: 'slow', tasks: [{ alias: 's', command: ['sh', '-c', 'for i in 1 2 3; do echo line $i; sleep 0.3; done'] }] }));

const ids = {};

const tests = [
  ['login reads user and password from standard input and keeps a token in a 0600 file', async ({ srv }) => {
    const r = cli(['login', '--url', srv.url], { input: 'tester\ntester-password\n' });
    assertEq(r.status, 0, r.stderr);
    assertEq(statSync(CREDS).mode & 0o777, 0o600);
    assertEq(statSync(path.dirname(CREDS)).mode & 0o777, 0o700);
    const text = readFileSync(CREDS, 'utf8');
    assert(text.includes(`url: ${srv.url}\n`), text);
    const token = text.match(/^token: (\S+)$/m)[1];
    const res = await fetch(`${srv.url}/jobrt/v1/jobs`, { headers: { Authorization: `Bearer ${token}` } });
    assertEq(res.status, 200);
  }],

  ['login with a wrong password or token exits 4 and keeps the file', async ({ srv }) => {
    const before = readFileSync(CREDS, 'utf8');
    const r = cli(['login', '--url', srv.url, '--user', 'tester'], { input: 'wrong\n' });
    assertEq(r.status, 4, r.stderr);
    assert(/refused/.test(r.stderr), r.stderr);
    assertEq(cli(['login', '--url', srv.url, '--token', 'not-a-token']).status, 4);
    assertEq(readFileSync(CREDS, 'utf8'), before);
  }],

  ['submit --wait off a terminal: the id first, plain progress lines, exit 0', async () => {
    const r = cli(['jobs', 'submit', YAML_JOB, '--wait']);
    assertEq(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assertEq(lines.length, 1);
    ids.pair = lines[0];
    assert(/^[0-9a-f-]{36}$/.test(ids.pair), r.stdout);
    assert(!r.stderr.includes('\r') && !r.stderr.includes('\x1b'), JSON.stringify(r.stderr));
    assert(/succeeded {2}2\/2 tasks done/.test(r.stderr), r.stderr);
  }],

  ['submit --wait on a terminal redraws its progress and ends with the job', async () => {
    const r = tty(['jobs', 'submit', YAML_JOB, '--wait']);
    assertEq(r.status, 0, r.out);
    assert(r.out.includes('\r\x1b[K'), JSON.stringify(r.out));
    assert(/2\/2 tasks done/.test(r.out), r.out);
    assert(/TASK +STATE +OUTCOME/.test(r.out), r.out);
  }],

  ['exit codes follow the job: 1 failed, 3 canceled', async ({ srv }) => {
    const f = cli(['jobs', 'submit', FAILING, '--wait', '--json']);
    assertEq(f.status, 1, f.stderr);
    const job = JSON.parse(f.stdout);
    assertEq([job.state, job.tasks[0].exit_code], ['failed', 3]);
    ids.failed = job.id;
    const w = background(['jobs', 'submit', LONG, '--wait']);
    const id = await until(() => w.out().trim());
    await until(async () => (await (await fetch(`${srv.url}/jobrt/v1/jobs/${id}`, { headers: { Authorization: 'Basic ' + Buffer.from('tester:tester-password').toString('base64') } })).json()).state === 'running');
    const c = cli(['jobs', 'cancel', id, '--reason', 'not needed']);
    assertEq([c.status, c.stdout], [0, `${id}\tcanceled\n`]);
    assertEq((await w.done).status, 3);
  }],

  ['restart, approve and reject', async () => {
    const r = cli(['jobs', 'restart', ids.failed, '--json']);
    assertEq(r.status, 0, r.stderr);
    assert(['queued', 'running', 'failed'].includes(JSON.parse(r.stdout).state), r.stdout);
    const held = cli(['jobs', 'submit', HELD]).stdout.trim();
    assertEq(cli(['jobs', 'show', held, '--json']).stdout.includes('"awaiting_approval"'), true);
    const rej = cli(['jobs', 'reject', held, '--reason', 'not today']);
    assertEq([rej.status, rej.stdout], [0, `${held}\trejected\n`]);
    const w = background(['jobs', 'submit', HELD, '--wait']);
    const again = await until(() => w.out().trim());
    await until(() => cli(['jobs', 'show', again, '--json']).stdout.includes('"awaiting_approval"'));
    // Why it waits: the policy's reason, in both forms.
    assert(/^waiting\tApproval: awaiting approval \(hold: /m.test(cli(['jobs', 'show', again]).stdout), 'show says why');
    assert(/^waiting +Approval: /m.test(tty(['jobs', 'show', again]).out), 'show on a terminal says why');
    assert(cli(['jobs', 'list', '--state', 'awaiting_approval']).stdout.includes(`${again}\tawaiting_approval\t`), 'listed');
    assert(cli(['jobs', 'list', '--state', 'awaiting_approval']).stdout.trim().split('\n')
      .every((l) => l.endsWith('\tApproval')), 'the list\'s last column');
    assertEq(cli(['jobs', 'approve', again]).status, 0);
    assertEq((await w.done).status, 0);
    assertEq(cli(['jobs', 'approve', again]).status, 1); // no longer awaiting: a refusal
  }],

  ['list: tab-separated rows off a terminal, a table on one, JSON with --json, filters', async () => {
    const plain = cli(['jobs', 'list']);
    assertEq(plain.status, 0, plain.stderr);
    const rows = plain.stdout.trim().split('\n').map((l) => l.split('\t'));
    assert(rows.length >= 5 && rows.every((r) => r.length === 7), plain.stdout);
    assert(!plain.stdout.includes('STATE'), 'no header off a terminal');
    const table = tty(['jobs', 'list']);
    assert(/^ID +STATE +OWNER +SURFACE +CREATED +TITLE +WAITING/m.test(table.out), table.out);
    const failed = JSON.parse(cli(['jobs', 'list', '--state', 'rejected', '--json']).stdout);
    assert(failed.length === 1 && failed[0].state === 'rejected', JSON.stringify(failed));
    assertEq(JSON.parse(cli(['jobs', 'list', '--owner', 'nobody', '--json']).stdout), []);
    assertEq(cli(['jobs', 'list', '--limit', '2', '--json']).stdout.trim().startsWith('['), true);
    assertEq(JSON.parse(cli(['jobs', 'list', '--limit', '2', '--json']).stdout).length, 2);
  }],

  ['show: fields and tasks in both modes', async () => {
    const plain = cli(['jobs', 'show', ids.pair]);
    assertEq(plain.status, 0);
    assert(plain.stdout.startsWith(`id\t${ids.pair}\n`), plain.stdout);
    assert(/^task\tuse\tsucceeded\texited\t0\tmake\t/m.test(plain.stdout), plain.stdout);
    const t = tty(['jobs', 'show', ids.pair]);
    assert(/^state +succeeded/m.test(t.out) && /^use +succeeded +exited +0 +make/m.test(t.out), t.out);
    assertEq(cli(['jobs', 'show', 'no-such-job']).status, 1);
  }],

  ['logs: lines, --json, --task', async () => {
    const plain = cli(['jobs', 'logs', ids.pair]);
    assertEq(plain.status, 0);
    assert(/\tmake\tinfo\tmade\n/.test(plain.stdout) && /\tuse\twarn\tused\n/.test(plain.stdout), plain.stdout);
    const json = cli(['jobs', 'logs', ids.pair, '--json']).stdout.trim().split('\n').map((l) => JSON.parse(l));
    assertEq(json.map((e) => e.message), ['made', 'used']);
    assertEq(cli(['jobs', 'logs', ids.pair, '--task', 'use', '--json']).stdout.trim().split('\n').length, 1);
    assert(tty(['jobs', 'logs', ids.pair]).out.includes('use: [warn] used'), 'terminal form');
  }],

  ['logs -f follows a running job to its end, with progress on a terminal', async () => {
    const id = cli(['jobs', 'submit', SLOW]).stdout.trim();
    const f = cli(['jobs', 'logs', id, '-f']);
    assertEq(f.status, 0, f.stderr);
    assertEq(f.stdout.split('\n').filter((l) => l.includes('\tline ')).length, 3);
    const id2 = cli(['jobs', 'submit', SLOW]).stdout.trim();
    const t = tty(['jobs', 'logs', id2, '-f']);
    assertEq(t.status, 0);
    assert(t.out.includes('s: line 3') && t.out.includes('1/1 tasks done') && t.out.includes('\x1b[K'), JSON.stringify(t.out));
    const failing = cli(['jobs', 'submit', FAILING]).stdout.trim();
    assertEq(cli(['jobs', 'logs', failing, '-f']).status, 1);
  }],

  ['watch prints the event stream; it needs an admin', async ({ srv }) => {
    const w = background(['jobs', 'watch', '--after', '0', '--json']);
    const lines = await until(() => {
      const l = w.out().split('\n').filter(Boolean);
      return l.length >= 5 ? l : null;
    });
    w.proc.kill('SIGTERM');
    await w.done;
    const ev = JSON.parse(lines[0]);
    assertEq([ev.seq, ev.type], [1, 'job']);
    const alice = await (await fetch(`${srv.url}/jobrt/v1/tokens`, { method: 'POST', headers: { Authorization: 'Basic ' + Buffer.from('alice:alice-password').toString('base64') } })).json();
    const r = cli(['jobs', 'watch'], { env: { JOBRT_TOKEN: alice.token } });
    assertEq(r.status, 4, r.stderr);
    assert(r.stderr.includes('admin'), r.stderr);
  }],

  ['a bad token, a token meant for another URL, and a daemon that is down exit 4', async ({ srv }) => {
    const bad = cli(['jobs', 'list'], { env: { JOBRT_TOKEN: 'nope' } });
    assertEq(bad.status, 4);
    assert(bad.stderr.includes('refused'), bad.stderr);
    // The kept token is not sent to a URL it was not made for.
    const other = cli(['jobs', 'list', '--url', srv.url.replace('127.0.0.1', 'localhost')]);
    assertEq(other.status, 4, other.stderr);
    assert(other.stderr.includes('Unauthorized'), other.stderr);
    const port = await freePort();
    const down = cli(['jobs', 'list', '--url', `http://127.0.0.1:${port}`]);
    assertEq(down.status, 4);
    assert(down.stderr.includes('cannot reach'), down.stderr);
  }],

  ['https: verified against JOBRT_CA_FILE; mutual TLS with a client certificate', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'jobrt-cli-tls-'));
    const c = path.join(dir, 'certs');
    assertEq(spawnSync(JOBRT, ['certs', c]).status, 0);
    const [port, mport] = [await freePort(), await freePort()];
    const tls = await startServer({
      config: `${TEST_USERS}
listen:
  - address: 127.0.0.1:${port}
    tls: {cert: ${c}/server.crt, key: ${c}/server.key}
  - address: 127.0.0.1:${mport}
    tls: {cert: ${c}/server.crt, key: ${c}/server.key, client_ca: ${c}/ca.crt, require_client_cert: true}
`,
    });
    try {
      const ca = { JOBRT_CA_FILE: path.join(c, 'ca.crt') };
      const login = cli(['login', '--url', `https://localhost:${port}`, '--user', 'tester'], { env: ca, input: 'tester-password\n' });
      assertEq(login.status, 0, login.stderr);
      const list = cli(['jobs', 'list', '--json'], { env: ca });
      assertEq([list.status, list.stdout.trim()], [0, '[]']);
      const refused = cli(['jobs', 'list']);
      assertEq(refused.status, 4);
      assert(refused.stderr.includes('certificate verify failed'), refused.stderr);
      // The listener that wants a client certificate.
      const murl = `https://127.0.0.1:${mport}`;
      const anon = cli(['login', '--url', murl, '--user', 'tester'], { env: ca, input: 'tester-password\n' });
      assertEq(anon.status, 4, anon.stderr);
      const mlogin = cli(['login', '--url', murl, '--user', 'tester', '--cert', path.join(c, 'client.crt'), '--key', path.join(c, 'client.key')],
        { env: ca, input: 'tester-password\n' });
      assertEq(mlogin.status, 0, mlogin.stderr);
      assert(readFileSync(CREDS, 'utf8').includes(`cert: ${path.join(c, 'client.crt')}`), 'the certificate is kept');
      assertEq(cli(['jobs', 'list', '--json'], { env: ca }).stdout.trim(), '[]');
      const wrong = cli(['jobs', 'list'], { env: { ...ca, JOBRT_CERT: path.join(c, 'ca.crt'), JOBRT_KEY: path.join(c, 'client.key') } });
      assertEq(wrong.status, 4);
      assert(/mismatch|does not match/.test(wrong.stderr), wrong.stderr);
    } finally {
      await tls.finish('the TLS daemon exits 0 on SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    }
  }],

  ['usage errors exit 2', async () => {
    for (const args of [['jobs'], ['jobs', 'frob'], ['jobs', 'list', '--bogus'], ['jobs', 'show'], ['jobs', 'list', '--limit', '0'], ['login', '--token', 'a', '--user', 'b']]) {
      const r = cli(args);
      assertEq(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    }
    const missing = cli(['jobs', 'submit', path.join(files, 'missing.yaml')]);
    assertEq(missing.status, 1);
    assert(missing.stderr.includes('missing.yaml'), missing.stderr);
  }],
];

const config = `${TEST_USERS}
lua_path: [${new URL('site', import.meta.url).pathname}]
surfaces:
  native: {approval: [hold]}
`;

run(tests, {
  before: async () => ({ srv: await startServer({ config }) }),
  after: async ({ srv }) => {
    const ok = await srv.finish();
    rmSync(home, { recursive: true, force: true });
    rmSync(files, { recursive: true, force: true });
    return ok;
  },
});
