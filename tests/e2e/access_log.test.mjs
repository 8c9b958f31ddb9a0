// The access log names every request but never a secret: a signed URL's
// signature, a token in the query, or the Authorization header.
import { ADMIN, TEST_USERS, assert, assertEq, run, sleep, startServer } from './lib.mjs';

const CONFIG = `
log: {level: info}
${TEST_USERS}
`;

// Wait (bounded) until the log has a line for the request id.
async function logLine(srv, id) {
  for (let i = 0; i < 100; i++) {
    const line = srv.logs().split('\n').find((l) => l.includes(id));
    if (line) return line;
    await sleep(20);
  }
  throw new Error(`no access log line for ${id}:\n${srv.logs().slice(-2000)}`);
}

const tests = [
  ['secret query parameters are redacted and Authorization is never logged', async ({ srv }) => {
    const token = (await (await fetch(`${srv.url}/jobrt/v1/tokens`, {
      method: 'POST', headers: { ...ADMIN, 'Content-Type': 'application/json' }, body: '{}',
    })).json()).token;
    assert(token, 'a token');
    const secrets = ['SIGxyz123secret', 'TOKabc456secret', 'ACCESSdef789secret', token];
    const r = await fetch(
      `${srv.url}/jobrt/v1/jobs?limit=2&signature=${secrets[0]}&expires=99&token=${secrets[1]}&Access_Token=${secrets[2]}`,
      { headers: { Authorization: `Bearer ${token}`, 'X-Request-Id': 'redact-1' } });
    assertEq(r.status, 200);
    const line = await logLine(srv, 'redact-1');
    assert(line.includes('GET /jobrt/v1/jobs?limit=2&signature=REDACTED&expires=99&token=REDACTED&Access_Token=REDACTED'),
      line);
    // A Basic credential on a failed request, too.
    await fetch(`${srv.url}/jobrt/v1/jobs?sig%6eature=${secrets[0]}`, { headers: { ...ADMIN, 'X-Request-Id': 'redact-2' } });
    assert((await logLine(srv, 'redact-2')).includes('sig%6eature=REDACTED'), 'an escaped name is still a signature');
    const all = srv.logs();
    for (const s of [...secrets, ADMIN.Authorization.split(' ')[1], 'tester-password']) {
      assert(!all.includes(s), `the log holds a secret: ${s}`);
    }
  }],
];

run(tests, {
  before: async () => ({ srv: await startServer({ config: CONFIG }) }),
  after: async ({ srv }) => srv.finish('daemon with an info access log exits 0'),
});
