// Credentials end to end: HTTP Basic, bearer tokens, their expiry and
// revocation, the statuses of every kind of failure (401 missing, 403
// invalid, without saying which part was wrong), ownership in the native
// API, and the admin credential the embedded default makes on first start.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { ADMIN, ALICE, BIN, BOB, TEST_USERS, assert, assertEq, run, sleep, startServer } from './lib.mjs';

// carol's password is stored as a scrypt hash, as operators would.
const CAROL_HASH = spawnSync(BIN, ['hash-password'], { input: 'carol-password\n', encoding: 'utf8' }).stdout.trim();
const CONFIG = `
log: {level: warn}
surfaces: {openeo: false}
${TEST_USERS}  carol: {password_hash: "${CAROL_HASH}", roles: [user]}
`;

const basic = (u, p) => ({ Authorization: `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}` });

async function get(srv, p, headers = {}) {
  const r = await fetch(`${srv.url}${p}`, { headers });
  const text = await r.text();
  return { status: r.status, headers: r.headers, body: text ? JSON.parse(text) : null };
}

async function post(srv, p, headers, body) {
  const r = await fetch(`${srv.url}${p}`, {
    method: 'POST', headers: { ...headers, 'Content-Type': 'application/json' }, body: JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

const tests = [
  ['no credentials: 401 with a Basic challenge', async ({ srv }) => {
    const r = await get(srv, '/jobrt/v1/jobs');
    assertEq(r.status, 401);
    assertEq(r.body.code, 'Unauthorized');
    assert(/^Basic /.test(r.headers.get('www-authenticate') || ''), 'WWW-Authenticate');
  }],

  ['wrong password and unknown user both get the same 403', async ({ srv }) => {
    const a = await get(srv, '/jobrt/v1/jobs', basic('alice', 'nope'));
    const b = await get(srv, '/jobrt/v1/jobs', basic('mallory', 'alice-password'));
    assertEq(a.status, 403);
    assertEq(b.status, 403);
    assertEq(a.body, b.body);
    assertEq(a.body.code, 'Forbidden');
  }],

  ['a user with a scrypt password hash logs in; a wrong password does not', async ({ srv }) => {
    assert(CAROL_HASH.startsWith('scrypt$'), `jobrt hash-password printed ${CAROL_HASH}`);
    const [good, bad, other] = await Promise.all([
      get(srv, '/jobrt/v1/jobs', basic('carol', 'carol-password')),
      get(srv, '/jobrt/v1/jobs', basic('carol', 'wrong')),
      get(srv, '/jobrt/healthz'),
    ]);
    assertEq(good.status, 200);
    assertEq(bad.status, 403);
    assertEq(other.status, 200);
  }],

  ['malformed Authorization headers get 401', async ({ srv }) => {
    const nocolon = Buffer.from('nocolon').toString('base64');
    for (const h of ['Basic', 'Basic !!!notbase64', `Basic ${nocolon}`, 'Bearer', 'Digest x=1']) {
      const r = await get(srv, '/jobrt/v1/jobs', { Authorization: h });
      assertEq(r.status, 401, h);
      assertEq(r.body.code, 'Unauthorized', h);
    }
  }],

  ['a token works, expires, and can be revoked', async ({ srv }) => {
    const t = await post(srv, '/jobrt/v1/tokens', ALICE, { ttl: '1s' });
    assertEq(t.status, 201);
    const bearer = { Authorization: `Bearer ${t.body.token}` };
    assertEq((await get(srv, '/jobrt/v1/jobs', bearer)).status, 200);
    await sleep(2100);
    const expired = await get(srv, '/jobrt/v1/jobs', bearer);
    assertEq(expired.status, 403);
    const t2 = await post(srv, '/jobrt/v1/tokens', ALICE, {});
    const b2 = { Authorization: `Bearer ${t2.body.token}` };
    assertEq((await fetch(`${srv.url}/jobrt/v1/tokens/current`, { method: 'DELETE', headers: b2 })).status, 204);
    assertEq((await get(srv, '/jobrt/v1/jobs', b2)).status, 403);
    assertEq((await get(srv, '/jobrt/v1/jobs', { Authorization: 'Bearer made-up-token' })).status, 403);
  }],

  ['a principal sees and changes only its own jobs; admins see all', async ({ srv }) => {
    const job = await post(srv, '/jobrt/v1/jobs', ALICE, { title: 'mine', owner: 'bob', tasks: [{ alias: 'a', command: ['true'] }] });
    assertEq(job.status, 201);
    assertEq(job.body.owner, 'alice', 'a user cannot submit as someone else');
    const id = job.body.id;
    assertEq((await get(srv, `/jobrt/v1/jobs/${id}`, ALICE)).status, 200);
    const bobs = await get(srv, `/jobrt/v1/jobs/${id}`, BOB);
    assertEq(bobs.status, 404, 'someone else\'s job answers as a missing one');
    assertEq((await post(srv, `/jobrt/v1/jobs/${id}/cancel`, BOB, {})).status, 404);
    assertEq((await fetch(`${srv.url}/jobrt/v1/jobs/${id}`, { method: 'DELETE', headers: BOB })).status, 404);
    const list = await get(srv, '/jobrt/v1/jobs?owner=alice', BOB);
    assert(list.body.jobs.every((j) => j.owner === 'bob'), 'bob lists only his own jobs');
    assertEq((await get(srv, `/jobrt/v1/jobs/${id}`, ADMIN)).status, 200);
    assertEq((await post(srv, `/jobrt/v1/jobs/${id}/approve`, ALICE, { accept: true })).status, 403);
  }],

  ['the runtime endpoints need no credentials', async ({ srv }) => {
    assertEq((await get(srv, '/jobrt/healthz')).status, 200);
    assertEq((await get(srv, '/jobrt/healthz', { Authorization: 'Bearer junk' })).status, 200);
  }],

  ['the embedded default makes an admin credential once and keeps it private', async () => {
    const first = await startServer({ config: undefined, args: [] });
    let data;
    try {
      data = first.data;
      const file = path.join(data, 'auth', 'admin.txt');
      assert(existsSync(file), 'admin.txt written');
      assertEq(statSync(file).mode & 0o777, 0o600);
      const text = readFileSync(file, 'utf8');
      const token = text.match(/^token: (\S+)$/m)[1];
      const password = text.match(/^password: (\S+)$/m)[1];
      assert(first.logs().includes(token), 'printed on first start');
      assertEq((await get(first, '/jobrt/v1/jobs')).status, 401);
      assertEq((await get(first, '/jobrt/v1/jobs', { Authorization: `Bearer ${token}` })).status, 200);
      assertEq((await get(first, '/jobrt/v1/jobs', basic('admin', password))).status, 200);
      assertEq((await first.stop()).code, 0);
      const again = await startServer({ config: undefined, dataDir: data });
      try {
        assert(!again.logs().includes(token), 'not printed again');
        assertEq((await get(again, '/jobrt/v1/jobs', { Authorization: `Bearer ${token}` })).status, 200);
      } finally {
        await again.stop();
      }
    } finally {
      first.cleanup();
    }
  }],
];

run(tests, {
  before: async () => ({ srv: await startServer({ config: CONFIG }) }),
  after: async ({ srv }) => srv.finish(),
});
