// The image store end to end: a two-layer image around busybox-static with
// a whiteout and an opaque folder, written by the test (oci_image.py) as an
// OCI layout archive and as a docker save archive, imported with `jobrt
// images import` while the daemon runs; tasks run in it through the native
// API (its files there, the whited-out one gone, the image's env, workdir,
// Cmd and user applied, the host's files absent); rm refused while a task
// uses it; malicious layers refused without touching the host; list, gc.
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BIN, TEST_USERS, assert, assertEq, nativeCall, run, runCommand, runJob, sleep, startServer } from './lib.mjs';

if (process.getuid() !== 0) {
  console.log('skip - image store tests # need root');
  process.exit(0);
}
if (!existsSync('/bin/busybox')) {
  console.log('skip - image store tests # busybox-static is not installed (make deps)');
  process.exit(0);
}

const PY = path.join(path.dirname(new URL(import.meta.url).pathname), 'oci_image.py');

function images(srv, ...args) {
  return runCommand(BIN, ['images', ...args, '--data-dir', srv.data]);
}

function logsOf(srv, id) {
  return nativeCall(srv, 'GET', `/jobs/${id}/logs`).then((r) => (r.body.logs || r.body.entries || r.body).map((l) => l.message));
}

const tests = [
  ['import an OCI layout archive and a docker save archive while the daemon runs', async ({ srv, dir }) => {
    runCommand('python3', [PY, 'oci', path.join(dir, 'bb.tar'), '1']);
    runCommand('python3', [PY, 'docker', path.join(dir, 'dk.tar'), 'bb:docker']);
    let r = images(srv, 'import', path.join(dir, 'bb.tar'), '--name', 'bb:1');
    assertEq(r.status, 0, r.stderr);
    assert(/^bb:1\t/.test(r.stdout), r.stdout);
    r = images(srv, 'import', path.join(dir, 'dk.tar'));
    assertEq(r.status, 0, r.stderr);
    assert(/^bb:docker\t/.test(r.stdout), r.stdout);
    r = images(srv, 'list', '--json');
    assertEq(r.status, 0, r.stderr);
    const list = JSON.parse(r.stdout);
    assertEq(list.images.map((i) => i.name), ['bb:1', 'bb:docker']);
    assertEq(list.images[0].layers, 2);
  }],
  ['a task runs in the image: its files, the whiteout, env, workdir, no host files', async ({ srv }) => {
    const j = await runJob(srv, { id: 'img-1', tasks: [{ alias: 'a', image: 'bb:1', command: ['sh', '-c',
      'cat /data/readme; test -e /etc/secret && echo SECRET-VISIBLE; ls /opt; echo "greeting=$GREETING pwd=$(pwd)";'
      + ' test -e /usr/bin/apt && echo HOST-VISIBLE; test -e /etc/hostname && echo HOST-ETC; echo ok > /outputs/o.txt'] }] });
    assertEq(j.state, 'succeeded', j.error || JSON.stringify(j.tasks[0]));
    const msgs = await logsOf(srv, 'img-1');
    assertEq(msgs, ['from layer two', 'new', 'greeting=hello pwd=/data']);
  }],
  ['the image\'s Cmd runs when the task gives no command; entrypoint replaces it', async ({ srv }) => {
    let j = await runJob(srv, { id: 'img-cmd', tasks: [{ alias: 'a', image: 'bb:docker' }] });
    assertEq(j.state, 'succeeded', j.error || JSON.stringify(j.tasks[0]));
    assertEq(await logsOf(srv, 'img-cmd'), ['default command in /data']);
    j = await runJob(srv, { id: 'img-ep', tasks: [{ alias: 'a', image: 'bb:1', entrypoint: ['echo'], command: ['from', 'args'] }] });
    assertEq(j.state, 'succeeded', j.error);
    assertEq(await logsOf(srv, 'img-ep'), ['from args']);
    const r = await nativeCall(srv, 'POST', '/jobs', { tasks: [{ alias: 'a', image: 'bb:1', entrypoint: ['echo'], command: ['x'] },
      { alias: 'b', entrypoint: ['echo'], command: ['x'] }] });
    assertEq(r.status, 400);
    assert(/entrypoint is for images of the image store/.test(r.body.message), r.body.message);
  }],
  ['a task runs as the image\'s user when it names one', async ({ srv, dir }) => {
    runCommand('python3', [PY, 'oci-user', path.join(dir, 'user.tar')]);
    const r = images(srv, 'import', path.join(dir, 'user.tar'), '--name', 'bb:user');
    assertEq(r.status, 0, r.stderr);
    let j = await runJob(srv, { id: 'img-id', tasks: [{ alias: 'a', image: 'bb:user', command: ['sh', '-c', 'id; echo x > /outputs/mine'] }] });
    assertEq(j.state, 'succeeded', j.error);
    const line = (await logsOf(srv, 'img-id'))[0];
    assert(/^uid=1234\b.*gid=4321\b/.test(line), line);
    j = await runJob(srv, { id: 'img-root', tasks: [{ alias: 'a', image: 'bb:1', command: ['id'] }] });
    assertEq(j.state, 'succeeded', j.error);
    const root = (await logsOf(srv, 'img-root'))[0];
    assert(/^uid=0\b/.test(root), `no User: root of the task's namespace: ${root}`);
    images(srv, 'rm', 'bb:user');
  }],
  ['an unknown image is refused at submit naming both places', async ({ srv }) => {
    const r = await nativeCall(srv, 'POST', '/jobs', { tasks: [{ alias: 'a', image: 'nosuch:1', command: ['true'] }] });
    assertEq(r.status, 400);
    assert(/unknown image 'nosuch:1'/.test(r.body.message) && /sandbox.images/.test(r.body.message), r.body.message);
  }],
  ['rm is refused while a task uses the image, then removes it', async ({ srv }) => {
    const sub = await nativeCall(srv, 'POST', '/jobs', { id: 'img-busy', start: true,
      tasks: [{ alias: 'a', image: 'bb:docker', command: ['sh', '-c', 'echo started; sleep 30'] }] });
    assertEq(sub.status, 201, JSON.stringify(sub.body));
    const deadline = Date.now() + 15000;
    while (!(await logsOf(srv, 'img-busy')).includes('started')) {
      assert(Date.now() < deadline, 'the task did not start');
      await sleep(50);
    }
    let r = images(srv, 'rm', 'bb:docker');
    assertEq(r.status, 1, r.stdout);
    assert(/in use by a running task/.test(r.stderr), r.stderr);
    r = images(srv, 'list');
    assert(/bb:docker\s.*\syes\s/.test(r.stdout), r.stdout);
    await nativeCall(srv, 'POST', '/jobs/img-busy/cancel', {});
    for (;;) {
      const j = (await nativeCall(srv, 'GET', '/jobs/img-busy')).body;
      if (j.state === 'canceled') break;
      assert(Date.now() < deadline + 15000, 'the job did not stop');
      await sleep(50);
    }
    // The helper lets go of the image as it ends.
    for (let i = 0; ; i++) {
      r = images(srv, 'rm', 'bb:docker');
      if (r.status === 0) break;
      assert(i < 100, r.stderr);
      await sleep(100);
    }
    r = images(srv, 'list', '--json');
    assertEq(JSON.parse(r.stdout).images.map((i) => i.name), ['bb:1']);
    const sub2 = await nativeCall(srv, 'POST', '/jobs', { tasks: [{ alias: 'a', image: 'bb:docker', command: ['true'] }] });
    assertEq(sub2.status, 400);
  }],
  ['malicious layers are refused and nothing lands on the host', async ({ srv, dir }) => {
    for (const [kind, why] of [['dotdot', /a path with ".."/], ['symlink', /symbolic link/], ['device', /device node/]]) {
      rmSync(`/tmp/jobrt-evil-${kind}`, { force: true });
      const file = path.join(dir, `evil-${kind}.tar`);
      runCommand('python3', [PY, 'evil', kind, file]);
      const r = images(srv, 'import', file, '--name', `evil:${kind}`);
      assertEq(r.status, 1, `${kind}: ${r.stdout}`);
      assert(why.test(r.stderr), `${kind}: ${r.stderr}`);
      assert(!existsSync(`/tmp/jobrt-evil-${kind}`), `${kind} wrote outside the store`);
    }
    const r = images(srv, 'list', '--json');
    assertEq(JSON.parse(r.stdout).images.map((i) => i.name), ['bb:1']);
  }],
  ['images.root: copy gives tasks a merged copy made once per image, with the same view', async ({ dir }) => {
    const srv2 = await startServer({ config: `log: {level: warn}\nimages: {root: copy}\n${TEST_USERS}` });
    try {
      const cfg = ['-c', path.join(srv2.dir, 'jobrt.yaml'), '--data-dir', srv2.data];
      const r = runCommand(BIN, ['images', 'import', path.join(dir, 'bb.tar'), '--name', 'bb:1', ...cfg]);
      assertEq(r.status, 0, r.stderr);
      assertEq(JSON.parse(runCommand(BIN, ['images', 'list', '--json', ...cfg]).stdout).root, 'copy');
      assertEq(readdirSync(path.join(srv2.data, 'images', 'roots')).length, 1);
      const j = await runJob(srv2, { id: 'copy-1', tasks: [{ alias: 'a', image: 'bb:1', command: ['sh', '-c',
        'cat /data/readme; test -e /etc/secret && echo SECRET-VISIBLE; ls /opt; pwd'] }] });
      assertEq(j.state, 'succeeded', j.error);
      assertEq(await logsOf(srv2, 'copy-1'), ['from layer two', 'new', '/data']);
    } finally {
      await srv2.finish('the copy daemon exits 0 on SIGTERM');
    }
  }],
  ['gc removes what no name keeps; the remaining image still runs', async ({ srv }) => {
    const r = images(srv, 'gc');
    assertEq(r.status, 0, r.stderr);
    assert(/^removed \d+ blobs/.test(r.stdout), r.stdout);
    const j = await runJob(srv, { id: 'img-after-gc', tasks: [{ alias: 'a', image: 'bb:1', command: ['cat', '/data/readme'] }] });
    assertEq(j.state, 'succeeded', j.error);
  }],
];

run(tests, {
  before: async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'jobrt-images-'));
    const srv = await startServer({ config: `log: {level: warn}\n${TEST_USERS}` });
    return { srv, dir };
  },
  after: async ({ srv, dir }) => {
    rmSync(dir, { recursive: true, force: true });
    return srv.finish();
  },
});
