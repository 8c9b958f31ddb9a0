// An upgrade keeps running tasks (issue 14): a second jobrt is built into a
// temporary folder from this tree with another version string (its own
// binary and slim helper beside it). The installed one runs a task and is
// stopped with SIGTERM (shutdown.tasks: keep); the new binary, started on
// the same data directory, reattaches to it (its output logged once, its
// outcome real) and runs new tasks with its own helper; then the new one is
// killed with kill -9 mid-task and the old one reattaches to the new one's
// task, so the record format holds both ways.
import { cpSync, existsSync, mkdtempSync, readlinkSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  BIN, TEST_USERS, assert, assertEq, liveHelpers, nativeCall, run, runCommand, sleep, startServer,
} from './lib.mjs';

if (process.getuid() !== 0) {
  console.log('skip - an upgraded binary reattaches # needs root');
  process.exit(0);
}
// The objects of the ordinary build are reused: only the version's file is
// compiled again.
if (!existsSync('build/libjobrt_core.a') || !existsSync('build/runtime/main.o')) {
  console.log('skip - an upgraded binary reattaches # no build/ objects to rebuild from (make jobrt)');
  process.exit(0);
}

const CONFIG = `log: {level: error}\n${TEST_USERS}`;
const VERSION = `0.0.0-upgrade-${process.pid}`;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'jobrt-upgrade-'));
const build = path.join(tmp, 'build');
const NEW = path.join(build, 'jobrt');

function rebuild() {
  cpSync('build', build, { recursive: true, preserveTimestamps: true });
  rmSync(path.join(build, 'runtime', 'lua', 'runtime.o'));
  const r = runCommand('make', ['-s', `BUILD=${build}`, `JOBRT_VERSION=${VERSION}`, NEW],
    { timeout: 300000 });
  assertEq(r.status, 0, `make: ${r.stdout}${r.stderr}`);
  assert(existsSync(path.join(build, 'jobrt-sandbox')), 'its slim helper is beside it');
}

async function waitJob(srv, id, pred, ms = 20000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const j = (await nativeCall(srv, 'GET', `/jobs/${id}`)).body;
    if (pred(j)) return j;
    if (Date.now() > deadline) throw new Error(`job ${id} not as expected: ${JSON.stringify(j)}`);
    await sleep(50);
  }
}

const done = (j) => ['succeeded', 'failed', 'canceled'].includes(j.state);

async function submit(srv, n) {
  const r = await nativeCall(srv, 'POST', '/jobs', { start: true, tasks: [{ alias: 't', command: ['sh', '-c',
    `i=1; while [ $i -le ${n} ]; do echo "line $i"; sleep 0.2; i=$((i + 1)); done`] }] });
  assertEq(r.status, 201, JSON.stringify(r.body));
  const id = r.body.id;
  await waitJob(srv, id, (j) => j.tasks[0].state === 'running');
  return id;
}

async function lines(srv, id) {
  const logs = (await nativeCall(srv, 'GET', `/jobs/${id}/logs`)).body.logs;
  return logs.filter((l) => l.task).map((l) => l.message);
}

const want = (n) => Array.from({ length: n }, (_, i) => `line ${i + 1}`);

async function version(srv) {
  return (await (await fetch(`${srv.url}/jobrt/version`)).json()).version;
}

const servers = [];
let data;

run([
  ['a second binary is built from this tree with its own version', async () => {
    rebuild();
    const r = runCommand(NEW, ['version']);
    assert(`${r.stdout}${r.stderr}`.includes(VERSION), `${NEW} version: ${r.stdout}${r.stderr}`);
  }],

  ['the new binary reattaches to the old one\'s task after SIGTERM, and runs its own', async () => {
    const old = await startServer({ config: CONFIG });
    servers.push(old);
    data = old.data;
    const id = await submit(old, 12);
    await sleep(600);
    assertEq((await old.stop('SIGTERM')).code, 0, 'the old daemon exits 0');
    assertEq(liveHelpers(data).length, 1, 'its task runs on');
    const up = await startServer({ config: CONFIG, dataDir: data, bin: NEW });
    servers.push(up);
    assertEq(await version(up), VERSION);
    const j = await waitJob(up, id, done);
    assertEq([j.state, j.tasks[0].attempt], ['succeeded', 1]);
    assertEq(await lines(up, id), want(12), 'each line once');
    const id2 = await submit(up, 3);
    const exes = liveHelpers(data).map((h) => readlinkSync(`/proc/${h.pid}/exe`));
    assert(exes.length > 0 && exes.every((exe) => exe.startsWith(build)),
      `its helper is the new build's (${exes})`);
    assertEq((await waitJob(up, id2, done)).state, 'succeeded');
  }],

  ['the old binary reattaches to the new one\'s task after kill -9', async () => {
    const up = servers[servers.length - 1];
    const id = await submit(up, 10);
    await sleep(500);
    up.proc.kill('SIGKILL');
    await up.exited;
    const back = await startServer({ config: CONFIG, dataDir: data, bin: BIN });
    servers.push(back);
    assert(await version(back) !== VERSION, 'the old version serves again');
    const j = await waitJob(back, id, done);
    assertEq([j.state, j.tasks[0].attempt], ['succeeded', 1]);
    assertEq(await lines(back, id), want(10), 'each line once');
  }],
], {
  after: async () => {
    for (const s of servers) await s.stop();
    for (const s of servers.reverse()) s.cleanup(); // the data directory is in the first one's
    rmSync(tmp, { recursive: true, force: true });
  },
});
