// publish.s3 against an S3-compatible store started here (s3rver behind a
// front that checks every SigV4 signature, s3_lib.mjs): openEO results and
// Bacalhau results uploaded once and downloaded through presigned URLs by
// independent clients (fetch, @aws-sdk/client-s3), a bundle over the
// multipart threshold sent in parts, a wrong secret refused with S3's
// SignatureDoesNotMatch, a store that is down or a bucket that is missing
// failing the publication clearly with the outputs kept, and a retry that
// leaves one object per output.
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { ADMIN, ALICE, BIN, TEST_USERS, assert, assertEq, freePort, run, sleep, startServer } from './lib.mjs';
import { makeClient, post, shSpec, submitOk, untar, waitState } from './bacalhau_lib.mjs';
import { ACCESS_KEY, REGION, SECRET_KEY, startS3 } from './s3_lib.mjs';

const ADD = { process_graph: { a: { process_id: 'add', arguments: { x: 1, y: 2 }, result: true } } };
const sha256 = (b) => createHash('sha256').update(b).digest('hex');

// A publish.s3 entry; over replaces or adds options (YAML flow values).
function plugin(name, endpoint, over = {}) {
  const o = {
    endpoint: `"${endpoint}"`, bucket: 'results', prefix: '"jobs/{job}/{task}/"', access_key: ACCESS_KEY,
    secret_key_env: 'JOBRT_TEST_S3_SECRET', url_ttl: '10m', multipart_threshold: '5MiB', part_size: '5MiB', ...over,
  };
  const fields = Object.entries(o).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}: ${v}`);
  return `  ${name}: {use: publish.s3, ${fields.join(', ')}}`;
}

async function call(srv, method, p, headers = ALICE, body) {
  const h = { ...headers };
  if (body !== undefined) h['Content-Type'] = 'application/json';
  const r = await fetch(`${srv.url}${p}`, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  let parsed = null;
  try { parsed = text ? JSON.parse(text) : null; } catch { parsed = text; }
  return { status: r.status, headers: r.headers, body: parsed };
}

async function openeoJob(srv) {
  const r = await call(srv, 'POST', '/openeo/1.2/jobs', ALICE, { title: 's3', process: ADD });
  assertEq(r.status, 201, JSON.stringify(r.body));
  const id = r.headers.get('openeo-identifier');
  assertEq((await call(srv, 'POST', `/openeo/1.2/jobs/${id}/results`)).status, 202);
  for (let i = 0; i < 400; i++) {
    const s = (await call(srv, 'GET', `/openeo/1.2/jobs/${id}`)).body.status;
    if (s === 'finished') return id;
    if (s === 'error') throw new Error(`job ${id} failed`);
    await sleep(50);
  }
  throw new Error(`job ${id} did not finish`);
}

const client = (s3) => new S3Client({ endpoint: s3.url, region: REGION, forcePathStyle: true,
  credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY } });

async function body(s3, key) {
  const r = await client(s3).send(new GetObjectCommand({ Bucket: 'results', Key: key }));
  return Buffer.from(await r.Body.transformToByteArray());
}

async function keys(s3, bucket, prefix) {
  const r = await client(s3).send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  return (r.Contents || []).map((o) => o.Key).sort();
}

// A daemon whose openEO and Bacalhau (type S3) publish through `through`.
async function withServer(s3, fn, through = 's3') {
  const port = await freePort();
  const srv = await startServer({
    env: { JOBRT_TEST_S3_SECRET: SECRET_KEY },
    config: `
log: {level: warn}
sandbox:
  images: {host: /, ubuntu: /}
plugins:
${plugin('s3', s3.url)}
${plugin('wrong', s3.url, { secret_key: '"not-the-secret"', secret_key_env: undefined })}
${plugin('down', `http://127.0.0.1:${port}`)}
surfaces:
  openeo: {publisher: ${through}}
  bacalhau: {publishers: {s3: ${through}, local: publish.local}}
${TEST_USERS}` });
  try {
    await fn(srv);
  } catch (e) {
    console.error(`    daemon log tail:\n${srv.logs().slice(-3000)}`);
    throw e;
  } finally {
    await srv.finish('daemon with publish.s3 exits 0');
  }
}

const tests = [
  ['openEO results: uploaded once, presigned URLs read by fetch and the AWS SDK', async ({ s3 }) => {
    await withServer(s3, async (srv) => {
      const id = await openeoJob(srv);
      const r = await call(srv, 'GET', `/openeo/1.2/jobs/${id}/results`);
      assertEq(r.status, 200, JSON.stringify(r.body));
      const asset = r.body.assets['result.json'];
      assert(asset && asset.href.startsWith(`${s3.url}/results/jobs/${id}/`), JSON.stringify(r.body.assets));
      assert(/X-Amz-Expires=600&/.test(asset.href) && /X-Amz-Signature=[0-9a-f]{64}$/.test(asset.href), asset.href);
      assert(Date.parse(r.body.properties.expires) > Date.now() + 590000, r.body.properties.expires);
      const dl = await fetch(asset.href);
      assertEq(dl.status, 200, asset.href);
      const got = Buffer.from(await dl.arrayBuffer());
      const key = new URL(asset.href).pathname.replace(/^\/results\//, '');
      assertEq(sha256(await body(s3, key)), sha256(got), 'the SDK reads the same object');
      assertEq(JSON.parse(got.toString()), 3);
      // A tampered presigned URL is refused by the store.
      const bad = await fetch(asset.href.replace(/X-Amz-Expires=600/, 'X-Amz-Expires=6000'));
      assertEq(bad.status, 403);
      assert((await bad.text()).includes('SignatureDoesNotMatch'));
      // Asked again, the results are not uploaded again; the URLs are fresh.
      const puts = s3.stats.put;
      assertEq((await call(srv, 'GET', `/openeo/1.2/jobs/${id}/results`)).status, 200);
      assertEq(s3.stats.put, puts, 'no second upload');
      const native = await call(srv, 'GET', `/jobrt/v1/jobs/${id}/results`, ADMIN);
      assert(JSON.stringify(native.body).includes('"publisher":"s3"'), JSON.stringify(native.body));
    });
  }],

  ['Bacalhau results over the multipart threshold go up in parts and download whole', async ({ s3 }) => {
    await withServer(s3, async (srv) => {
      const alice = makeClient();
      const parts = s3.stats.part;
      const id = await submitOk(srv, alice, shSpec(
        'head -c 7000000 /dev/urandom > /outputs/big.bin && sha256sum /outputs/big.bin | cut -d" " -f1',
        { PublisherSpec: { Type: 's3' } }));
      await waitState(srv, alice, id, ['Completed']);
      const r = await post(srv, '/requester/results', { client_id: alice.id, job_id: id });
      assertEq(r.status, 200, r.text);
      assertEq(r.body.results.length, 1, r.text);
      const url = r.body.results[0].Data.URL;
      assert(url.startsWith(`${s3.url}/results/jobs/${id}/`), url);
      assert(s3.stats.part - parts >= 2, `parts: ${s3.stats.part - parts}`);
      const dl = await fetch(url);
      assertEq(dl.status, 200);
      const files = untar(Buffer.from(await dl.arrayBuffer()));
      assertEq(files['outputs/big.bin'].length, 7000000);
      assertEq(sha256(files['outputs/big.bin']), files.stdout.toString().trim(), 'the bytes the task wrote');
      const listed = await keys(s3, 'results', `jobs/${id}/`);
      assertEq(listed.length, 1, JSON.stringify(listed));
    });
  }],

  ['a wrong secret fails the publication with S3\'s SignatureDoesNotMatch; the secret is never shown', async ({ s3 }) => {
    await withServer(s3, async (srv) => {
      const alice = makeClient();
      const refused = s3.stats.refused;
      const id = await submitOk(srv, alice, shSpec('echo hello > /outputs/a.txt', { PublisherSpec: { Type: 's3' } }));
      await waitState(srv, alice, id, ['Completed']);
      const r = await post(srv, '/requester/results', { client_id: alice.id, job_id: id });
      assertEq(r.body.results.length, 0, 'nothing published');
      assert(s3.stats.refused > refused, 'the store refused it');
      const logs = (await call(srv, 'GET', `/jobrt/v1/jobs/${id}/logs`, ADMIN)).body.logs;
      const line = logs.find((l) => l.message.includes('publishing the results with wrong failed'));
      assert(line && line.message.includes('SignatureDoesNotMatch: PutObject jobs/') &&
        line.message.includes('403 SignatureDoesNotMatch: The request signature we calculated does not match'),
      JSON.stringify(logs));
      // Polling the job's views does not try again at every poll.
      const refusedNow = s3.stats.refused;
      for (let i = 0; i < 3; i++) await post(srv, '/requester/states', { client_id: alice.id, job_id: id });
      assertEq(s3.stats.refused, refusedNow, 'no new attempt within the retry delay');
      const again = (await call(srv, 'GET', `/jobrt/v1/jobs/${id}/logs`, ADMIN)).body.logs;
      assertEq(again.filter((l) => l.message.includes('publishing the results with wrong failed')).length, 1);
      assert(!JSON.stringify(logs).includes('not-the-secret'), 'the secret is not logged');
      assert(!srv.logs().includes('not-the-secret') && !srv.logs().includes(SECRET_KEY), 'nor in the daemon log');
      // openEO says the same in its answer.
      const oid = await openeoJob(srv);
      const o = await call(srv, 'GET', `/openeo/1.2/jobs/${oid}/results`);
      assertEq(o.status, 502);
      assert(o.body.message.startsWith('Publishing the results failed: SignatureDoesNotMatch: PutObject'), o.body.message);
    }, 'wrong');
  }],

  ['a store that is down fails the publication clearly; the outputs are kept', async ({ s3 }) => {
    await withServer(s3, async (srv) => {
      const alice = makeClient();
      const down = await submitOk(srv, alice, shSpec('echo kept > /outputs/kept.txt', { PublisherSpec: { Type: 's3' } }));
      await waitState(srv, alice, down, ['Completed']);
      assertEq((await post(srv, '/requester/results', { client_id: alice.id, job_id: down })).body.results.length, 0);
      const dlogs = (await call(srv, 'GET', `/jobrt/v1/jobs/${down}/logs`, ADMIN)).body.logs;
      assert(dlogs.some((l) => /Unreachable: S3 endpoint http:\/\/127\.0\.0\.1:\d+: cannot connect .*connection refused/.test(l.message)),
        JSON.stringify(dlogs));
      const job = (await call(srv, 'GET', `/jobrt/v1/jobs/${down}`, ADMIN)).body;
      assertEq(job.state, 'succeeded');
      assert(existsSync(path.join(srv.data, 'jobs', down, job.tasks[0].alias, 'outputs', 'kept.txt')), 'outputs kept');
    }, 'down');
  }],

  ['openEO: a missing bucket fails the results with its S3 code; retried, one object per output', async ({ s3 }) => {
    const srv = await startServer({
      env: { JOBRT_TEST_S3_SECRET: SECRET_KEY },
      config: `
log: {level: warn}
plugins:
${plugin('late', s3.url, { bucket: 'late' })}
surfaces:
  openeo: {publisher: late}
${TEST_USERS}` });
    try {
      const id = await openeoJob(srv);
      const first = await call(srv, 'GET', `/openeo/1.2/jobs/${id}/results`);
      assertEq(first.status, 502, JSON.stringify(first.body));
      assert(/^Publishing the results failed: NoSuchBucket: PutObject jobs\/.*: 404 NoSuchBucket: /.test(first.body.message),
        first.body.message);
      await client(s3).send(new CreateBucketCommand({ Bucket: 'late' }));
      const again = await call(srv, 'GET', `/openeo/1.2/jobs/${id}/results`);
      assertEq(again.status, 200, JSON.stringify(again.body));
      const third = await call(srv, 'GET', `/openeo/1.2/jobs/${id}/results`);
      assertEq(third.status, 200);
      assertEq(await keys(s3, 'late', `jobs/${id}/`), [`jobs/${id}/graph/result.json`]);
    } finally {
      await srv.finish('daemon with a late bucket exits 0');
    }
  }],
];

tests.push(['an https endpoint verified against ca_file, streamed through TLS in parts', async () => {
  const certs = mkdtempSync(path.join(os.tmpdir(), 'jobrt-s3-certs-'));
  const made = spawnSync(BIN, ['certs', certs], { encoding: 'utf8', timeout: 30000 });
  assertEq(made.status, 0, made.stderr);
  const tls = { cert: readFileSync(path.join(certs, 'server.crt')), key: readFileSync(path.join(certs, 'server.key')) };
  const s3 = await startS3({ tls });
  try {
    const srv = await startServer({
      env: { JOBRT_TEST_S3_SECRET: SECRET_KEY },
      config: `
log: {level: warn}
sandbox:
  images: {host: /, ubuntu: /}
plugins:
${plugin('tls', s3.url, { ca_file: `"${path.join(certs, 'ca.crt')}"` })}
${plugin('untrusted', s3.url)}
surfaces:
  bacalhau: {publishers: {s3: tls, ipfs: untrusted}}
${TEST_USERS}` });
    try {
      const alice = makeClient();
      const id = await submitOk(srv, alice, shSpec(
        'head -c 6000000 /dev/urandom > /outputs/r.bin && sha256sum /outputs/r.bin | cut -d" " -f1',
        { PublisherSpec: { Type: 's3' } }));
      await waitState(srv, alice, id, ['Completed']);
      const r = await post(srv, '/requester/results', { client_id: alice.id, job_id: id });
      assertEq(r.body.results.length, 1, r.text);
      const url = r.body.results[0].Data.URL;
      assert(url.startsWith(`${s3.url}/results/`), url);
      const buf = await new Promise((resolve, reject) => {
        https.get(url, { ca: readFileSync(path.join(certs, 'ca.crt')) }, (res) => {
          const chunks = [];
          res.on('data', (d) => chunks.push(d));
          res.on('end', () => (res.statusCode === 200 ? resolve(Buffer.concat(chunks)) : reject(new Error(`GET ${res.statusCode}`))));
        }).on('error', reject);
      });
      const files = untar(buf);
      assertEq(sha256(files['outputs/r.bin']), files.stdout.toString().trim());
      // Without the CA, the store's certificate is not trusted.
      const other = await submitOk(srv, alice, shSpec('echo x > /outputs/x', { PublisherSpec: { Type: 'ipfs' } }));
      await waitState(srv, alice, other, ['Completed']);
      assertEq((await post(srv, '/requester/results', { client_id: alice.id, job_id: other })).body.results.length, 0);
      const logs = (await call(srv, 'GET', `/jobrt/v1/jobs/${other}/logs`, ADMIN)).body.logs;
      assert(logs.some((l) => /Unreachable: S3 endpoint https:.*TLS/i.test(l.message)), JSON.stringify(logs));
    } finally {
      await srv.finish('daemon with an https store exits 0');
    }
  } finally {
    await s3.close();
    rmSync(certs, { recursive: true, force: true });
  }
}]);

run(tests, {
  async before() { return { s3: await startS3() }; },
  async after(c) { await c.s3.close(); },
});
