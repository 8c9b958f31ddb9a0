// An S3-compatible store for the tests and the benchmark: s3rver (which
// stores objects but does not check SigV4 signatures) behind a verifying
// front that recomputes every request's signature, and every presigned
// URL's, with @smithy/signature-v4 and the one secret it knows, refusing a
// mismatch as S3 does (403 SignatureDoesNotMatch), checking a signed
// payload's SHA-256 and a presigned URL's expiry, then passes the request
// on. Both listen on random loopback ports. Run as a script it starts
// them, prints the front's port and stops on SIGTERM or SIGINT.
import { SignatureV4 } from '@smithy/signature-v4';
import { createHash, createHmac } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import S3rver from 's3rver';

export const ACCESS_KEY = 'JOBRTTESTACCESSKEY01';
export const SECRET_KEY = 'jobrt/test+secret/key/0123456789abcdefABCD';
export const REGION = 'us-east-1';

class Sha256 {
  constructor(secret) { this.h = secret ? createHmac('sha256', Buffer.from(secret)) : createHash('sha256'); }
  update(d) { this.h.update(Buffer.from(d)); }
  async digest() { return new Uint8Array(this.h.digest()); }
}

const UNSIGNED = 'UNSIGNED-PAYLOAD';
const KEEP_SHA_HEADER = new Set(['x-amz-content-sha256']);

function xmlError(res, status, code, message) {
  const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`;
  res.writeHead(status, { 'Content-Type': 'application/xml', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

// "20130524T000000Z" -> Date
const amzDate = (s) => new Date(`${s.slice(0, 4)}-${s.slice(4, 6)}-${s.slice(6, 8)}T${s.slice(9, 11)}:${s.slice(11, 13)}:${s.slice(13, 15)}Z`);

// The request as @smithy/signature-v4 takes it: the raw (encoded) path,
// the query decoded (the signer encodes it again) without skip, and only
// the headers named.
function toSign(req, url, names, skip = () => false) {
  const query = {};
  for (const [k, v] of url.searchParams) if (!skip(k)) query[k] = v;
  const headers = {};
  for (const n of names) headers[n] = req.headers[n] ?? '';
  return { method: req.method, protocol: 'http:', hostname: url.hostname, port: url.port, path: url.pathname, query, headers };
}

// -> null when the request is properly signed, else [status, code, message].
async function verify(req, url, body, secret) {
  const auth = req.headers.authorization;
  if (auth) {
    const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/s3\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(auth);
    if (!m) return [400, 'AuthorizationHeaderMalformed', 'The authorization header is malformed.'];
    const [, ak, , region, signed, signature] = m;
    if (ak !== ACCESS_KEY) return [403, 'InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.'];
    const date = req.headers['x-amz-date'];
    if (!date) return [403, 'AccessDenied', 'x-amz-date is missing.'];
    const names = signed.split(';');
    for (const n of ['host', 'x-amz-date', 'x-amz-content-sha256']) {
      if (!names.includes(n)) return [403, 'AccessDenied', `${n} is not signed.`];
    }
    const signer = new SignatureV4({ service: 's3', region, sha256: Sha256, uriEscapePath: false, applyChecksum: false,
      credentials: { accessKeyId: ak, secretAccessKey: secret } });
    const out = await signer.sign(toSign(req, url, names), { signingDate: amzDate(date),
      unsignableHeaders: new Set(), signableHeaders: new Set(names) });
    const want = /Signature=([0-9a-f]{64})/.exec(out.headers.authorization)[1];
    if (want !== signature) {
      return [403, 'SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided. Check your key and signing method.'];
    }
    const sha = req.headers['x-amz-content-sha256'];
    if (sha !== UNSIGNED && !sha.startsWith('STREAMING-') && createHash('sha256').update(body).digest('hex') !== sha) {
      return [400, 'XAmzContentSHA256Mismatch', "The provided 'x-amz-content-sha256' header does not match what was computed."];
    }
    return null;
  }
  const q = url.searchParams;
  if (q.get('X-Amz-Algorithm') === 'AWS4-HMAC-SHA256') {
    const cred = (q.get('X-Amz-Credential') || '').split('/');
    if (cred[0] !== ACCESS_KEY) return [403, 'InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.'];
    const date = amzDate(q.get('X-Amz-Date') || '');
    const expires = Number(q.get('X-Amz-Expires'));
    if (!(expires > 0) || Date.now() > date.getTime() + expires * 1000) {
      return [403, 'AccessDenied', 'Request has expired'];
    }
    const names = (q.get('X-Amz-SignedHeaders') || '').split(';');
    const signer = new SignatureV4({ service: 's3', region: cred[2], sha256: Sha256, uriEscapePath: false,
      credentials: { accessKeyId: cred[0], secretAccessKey: secret } });
    const r = toSign(req, url, names, (k) => k.startsWith('X-Amz-'));
    r.headers['x-amz-content-sha256'] = UNSIGNED;
    const out = await signer.presign(r, { signingDate: date, expiresIn: expires,
      unhoistableHeaders: KEEP_SHA_HEADER, unsignableHeaders: KEEP_SHA_HEADER });
    if (out.query['X-Amz-Signature'] !== q.get('X-Amz-Signature')) {
      return [403, 'SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided. Check your key and signing method.'];
    }
    return null;
  }
  return [403, 'AccessDenied', 'Anonymous access is not allowed.'];
}

// startS3({buckets, secret, tls}) -> {url, port, stats, close()}: stats
// counts requests by kind (put, part, create, complete, abort, get,
// refused). tls = {cert, key} (PEM) makes the front speak https.
export async function startS3({ buckets = ['results'], secret = SECRET_KEY, tls } = {}) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'jobrt-s3-'));
  const store = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: dir,
    configureBuckets: buckets.map((name) => ({ name })) });
  const { port: storePort } = await store.run();
  const stats = { put: 0, part: 0, create: 0, complete: 0, abort: 0, get: 0, refused: 0, other: 0, bytes: 0 };
  const handler = (req, res) => {
    const url = new URL(req.url, `http://${req.headers.host}`);
    const sha = req.headers['x-amz-content-sha256'];
    const buffer = req.headers.authorization && sha && sha !== UNSIGNED;
    const chunks = [];
    const forward = (body) => {
      const q = url.searchParams;
      if (req.method === 'PUT') { if (q.has('partNumber')) stats.part++; else stats.put++; }
      else if (req.method === 'POST' && q.has('uploads')) stats.create++;
      else if (req.method === 'POST' && q.has('uploadId')) stats.complete++;
      else if (req.method === 'DELETE' && q.has('uploadId')) stats.abort++;
      else if (req.method === 'GET') stats.get++;
      else stats.other++;
      // Checked here: s3rver gets the request unsigned (it knows only its
      // own fixed key, and would not check a signature anyway).
      const headers = { ...req.headers, host: `127.0.0.1:${storePort}` };
      delete headers.authorization;
      const fwd = new URL(url);
      for (const k of [...fwd.searchParams.keys()]) if (k.startsWith('X-Amz-')) fwd.searchParams.delete(k);
      const up = http.request({ host: '127.0.0.1', port: storePort, method: req.method,
        path: fwd.pathname + fwd.search, headers }, (ur) => {
        res.writeHead(ur.statusCode, ur.headers);
        ur.pipe(res);
      });
      up.on('error', (e) => xmlError(res, 502, 'BadGateway', String(e)));
      if (body) up.end(body);
      else {
        req.on('data', (d) => { stats.bytes += d.length; });
        req.pipe(up);
      }
    };
    const check = async (body) => {
      let problem;
      try { problem = await verify(req, url, body || Buffer.alloc(0), secret); } catch (e) { problem = [400, 'InvalidRequest', String(e)]; }
      if (problem) {
        stats.refused++;
        req.resume();
        return xmlError(res, ...problem);
      }
      return forward(body);
    };
    if (buffer) {
      req.on('data', (d) => chunks.push(d));
      req.on('end', () => { const b = Buffer.concat(chunks); stats.bytes += b.length; check(b); });
    } else {
      req.pause();
      check(null).then(() => req.resume());
    }
  };
  const front = tls ? https.createServer({ cert: tls.cert, key: tls.key }, handler) : http.createServer(handler);
  await new Promise((r) => front.listen(0, '127.0.0.1', r));
  const port = front.address().port;
  return {
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`, port, stats, dir,
    async close() {
      await new Promise((r) => front.close(r));
      front.closeAllConnections?.();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const s3 = await startS3();
  process.stdout.write(`${s3.port}\n`);
  const stop = async () => { await s3.close(); process.exit(0); };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
