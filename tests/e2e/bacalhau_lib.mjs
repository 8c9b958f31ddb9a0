// Helpers for the Bacalhau end-to-end tests: clients that make and sign
// requests the way Bacalhau's own do (RSA-2048 keys, a ClientID from the
// key's modulus, PKCS#1 v1.5 / SHA-256 signatures over the payload's exact
// bytes), a deployment with a holding approval policy, and bounded waits.
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { chmodSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { runCommand, sleep, startServer } from './lib.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));

// A Bacalhau client's identity: its key, the public key as the envelope
// carries it (base64 of the PKCS#1 DER) and its ClientID (hex SHA-256 of
// the modulus bytes, as Go's N.Bytes() gives them).
export function makeClient() {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pub = publicKey.export({ type: 'pkcs1', format: 'der' }).toString('base64');
  const spki = publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
  const n = Buffer.from(publicKey.export({ format: 'jwk' }).n, 'base64url');
  const id = createHash('sha256').update(n).digest('hex');
  return { publicKey, privateKey, pub, spki, id };
}

// The payload bytes as the Go client writes them (compact).
export const goBytes = (obj) => JSON.stringify(obj);

// The payload bytes as the Python SDK writes them, made by Python itself.
export function pyBytes(obj) {
  const r = runCommand('python3', ['-c',
    'import json,sys; sys.stdout.write(json.dumps(json.load(sys.stdin), separators=(", ", ": ")))'],
  { input: JSON.stringify(obj) });
  if (r.status !== 0) throw new Error(`python3 failed: ${r.stderr}`);
  return r.stdout;
}

export const signBytes = (client, bytes) =>
  sign('sha256', Buffer.from(bytes), client.privateKey).toString('base64');

// The signed envelope, byte for byte: {"payload": <bytes>, "signature", "client_public_key"}.
// opts: signer (whose key signs and is sent), signed (other bytes to sign),
// pub (another public key text), omit (a field to leave out).
export function envelope(client, bytes, opts = {}) {
  const signer = opts.signer || client;
  const fields = [
    ['payload', bytes],
    ['signature', JSON.stringify(signBytes(signer, opts.signed ?? bytes))],
    ['client_public_key', JSON.stringify(opts.pub ?? signer.pub)],
  ].filter(([k]) => k !== opts.omit);
  return '{' + fields.map(([k, v]) => `"${k}":${v}`).join(',') + '}';
}

// POST a body (a string sent as is, or an object made JSON); the answer's
// status, headers, text and parsed JSON (or null).
export async function post(srv, p, body, headers = {}) {
  const r = await fetch(`${srv.url}${p}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return answer(r);
}

export async function get(srv, p, headers = {}) {
  return answer(await fetch(`${srv.url}${p}`, { headers }));
}

async function answer(r) {
  const text = await r.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  return { status: r.status, headers: r.headers, text, body: json };
}

// A Docker spec running a shell command on the sandbox's "ubuntu" image.
export function shSpec(cmd, extra = {}) {
  return {
    Engine: 'Docker', Verifier: 'Noop',
    Docker: { Image: 'ubuntu', Entrypoint: ['sh', '-c', cmd] },
    Deal: { Concurrency: 1 },
    PublisherSpec: { Type: 'local' },
    outputs: [{ Name: 'outputs', path: '/outputs' }],
    ...extra,
  };
}

export const createPayload = (client, spec, apiVersion = 'V1beta1') =>
  ({ ClientID: client.id, APIVersion: apiVersion, Spec: spec });

// Submit a spec signed Go style (or with `bytes` to make the payload bytes);
// the whole answer.
export function submit(srv, client, spec, { prefix = '/requester', bytes = goBytes, apiVersion, headers } = {}) {
  return post(srv, `${prefix}/submit`, envelope(client, bytes(createPayload(client, spec, apiVersion))), headers);
}

// Submit and insist on success; the job's ID.
export async function submitOk(srv, client, spec, opts) {
  const r = await submit(srv, client, spec, opts);
  if (r.status !== 200 || !r.body || !r.body.job) {
    throw new Error(`submit: expected 200 {"job"}, got ${r.status} ${r.text.slice(0, 500)}`);
  }
  return r.body.job.Metadata.ID;
}

export async function states(srv, client, jobId, prefix = '/requester') {
  const r = await post(srv, `${prefix}/states`, { client_id: client.id, job_id: jobId });
  if (r.status !== 200) throw new Error(`states ${jobId}: ${r.status} ${r.text.slice(0, 300)}`);
  return r.body.state;
}

// Poll states until the job's State is one of `want`; bounded.
export async function waitState(srv, client, jobId, want, ms = 30000) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    last = await states(srv, client, jobId);
    if (want.includes(last.State)) return last;
    if (Date.now() > deadline) {
      throw new Error(`job ${jobId} is ${last.State} after ${ms} ms, wanted ${want.join('|')}: ` +
        JSON.stringify(last).slice(0, 600));
    }
    await sleep(100);
  }
}

// Poll until the job's State is one of `want` and every execution has
// ended too (Completed, Failed, Cancelled); bounded.
export async function waitSettled(srv, client, jobId, want, ms = 30000) {
  const deadline = Date.now() + ms;
  const ended = ['Completed', 'Failed', 'Cancelled'];
  for (;;) {
    const st = await waitState(srv, client, jobId, want, Math.max(1, deadline - Date.now()));
    if (st.Executions.every((e) => ended.includes(e.State))) return st;
    if (Date.now() > deadline) {
      throw new Error(`job ${jobId} is ${st.State} but its executions have not ended after ${ms} ms: ` +
        JSON.stringify(st.Executions.map((e) => [e.State, e.Status])));
    }
    await sleep(100);
  }
}

// Wait until an execution exists and is running (BidAccepted).
export async function waitRunning(srv, client, jobId, ms = 20000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const st = await states(srv, client, jobId);
    if (st.State === 'InProgress' && st.Executions.some((e) => e.State === 'BidAccepted')) return st;
    if (Date.now() > deadline) throw new Error(`job ${jobId} not running after ${ms} ms: ${JSON.stringify(st).slice(0, 400)}`);
    await sleep(100);
  }
}

// Open the logs WebSocket, send the signed LogsPayload, collect frames
// until the server closes (bounded). {frames, code, reason}.
export function logs(srv, client, payload, { prefix = '/requester', ms = 30000, signer } = {}) {
  const url = `ws://127.0.0.1:${srv.port}${prefix}/logs`;
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const frames = [];
    const timer = setTimeout(() => { ws.terminate(); reject(new Error(`logs: no close within ${ms} ms; frames ${JSON.stringify(frames)}`)); }, ms);
    ws.on('open', () => ws.send(envelope(client, goBytes(payload), { signer })));
    ws.on('message', (data, isBinary) => {
      const text = data.toString();
      let parsed;
      try { parsed = JSON.parse(text); } catch { parsed = { unparsed: text, isBinary }; }
      frames.push(parsed);
    });
    ws.on('close', (code, reason) => { clearTimeout(timer); resolve({ frames, code, reason: reason.toString() }); });
    ws.on('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

// Read a ustar archive: {name: Buffer}.
export function untar(buf) {
  const files = {};
  for (let off = 0; off + 512 <= buf.length;) {
    const h = buf.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break;
    const str = (a, b) => h.subarray(a, b).toString('latin1').replace(/\0.*$/s, '');
    const prefix = str(345, 500);
    const name = (prefix ? prefix + '/' : '') + str(0, 100);
    const size = parseInt(str(124, 136).trim() || '0', 8);
    const type = str(156, 157);
    off += 512;
    if (type === '' || type === '0') files[name] = Buffer.from(buf.subarray(off, off + size));
    off += Math.ceil(size / 512) * 512;
  }
  return files;
}

// The deployment of the brief: images host and ubuntu on /, a host path
// allowed for LocalDirectory inputs, the hold policy, the local publisher,
// `approvers` as given, and an admin for the native API.
export async function startBacalhau(approvers) {
  const hostDir = mkdtempSync(path.join(os.tmpdir(), 'jobrt-bacalhau-host-'));
  // Shared with the jobs, which run as another user in the sandbox.
  chmodSync(hostDir, 0o755);
  const config = `
log: {level: warn}
sandbox: {images: {host: /, ubuntu: /}, allow_host_paths: [${JSON.stringify(hostDir)}]}
lua_path: [${JSON.stringify(HERE)}]
surfaces:
  bacalhau: {approvers: [${approvers.map((a) => JSON.stringify(a)).join(', ')}], approval: [hold], publishers: {local: local}}
plugins:
  hold: {use: site.hold}
  local: {use: publish.local, url_ttl: 1h}
users: {admin: {password: admin, roles: [admin]}}
`;
  const srv = await startServer({ config });
  srv.hostDir = hostDir;
  return srv;
}

export const ADMIN_AUTH = { Authorization: `Basic ${Buffer.from('admin:admin').toString('base64')}` };
