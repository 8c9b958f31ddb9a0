// Helper of bench/kuscia_watch.sh: the latency of Kuscia watch events, from
// a job's state change in the core to the frame's arrival at each watcher,
// with one watcher and with many on the same daemon in the same run, while
// other jobs come and go. The state change measured is a suspend of a
// running "ticker" job; its time is the core's own event time, read from
// the native event stream (/jobrt/v1/events, ms resolution); the frame's is
// when the watcher's socket delivers it.
//
//   node bench/kuscia_watch.mjs URL TOKEN ADMIN_USER:PASSWORD SECONDS RUNS WATCHERS...
//
// Prints one line per phase ("PHASE n p50 p99 samples rounds first-p50",
// the last the median over rounds of the first watcher's latency) and exits 1
// if a watcher missed an event or the daemon refused a call.
import http from 'node:http';

const [url, token, admin, seconds, runs, ...counts] = process.argv.slice(2);
const { hostname, port } = new URL(url);
const BASIC = `Basic ${Buffer.from(admin).toString('base64')}`;
const CHURN_MS = Number(process.env.KUSCIA_BENCH_CHURN_MS || 500);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function post(route, body) {
  const data = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request({
      hostname, port, method: 'POST', path: `/api/v1/job/${route}`, agent: false,
      headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data), Token: token },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => {
        let json;
        try { json = JSON.parse(text); } catch { return reject(new Error(`${route}: HTTP ${res.statusCode} ${text.slice(0, 300)}`)); }
        if (json.status.code !== 0) return reject(new Error(`${route}: ${text.slice(0, 300)}`));
        resolve(json.data);
      });
    });
    req.setTimeout(30000, () => req.destroy(new Error(`${route}: no answer in 30 s`)));
    req.on('error', reject);
    req.end(data);
  });
}

// Concatenated JSON objects -> their texts, as Kuscia's watch sends them.
function splitter(onObject) {
  let buf = '';
  return (chunk) => {
    const s = buf + chunk;
    let depth = 0, inStr = false, esc = false, start = 0, used = 0;
    for (let i = 0; i < s.length; i++) {
      const ch = s[i];
      if (inStr) {
        if (esc) esc = false; else if (ch === '\\') esc = true; else if (ch === '"') inStr = false;
      } else if (ch === '"') inStr = true;
      else if (ch === '{' || ch === '[') { if (depth++ === 0) start = i; }
      else if (ch === '}' || ch === ']') { if (--depth === 0) { onObject(s.slice(start, i + 1)); used = i + 1; } }
    }
    buf = s.slice(used);
  };
}

// A watcher: calls onFrame(text, arrival ms) for every frame.
function openWatch(onFrame) {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify({ timeout_seconds: 0 });
    const req = http.request({
      hostname, port, method: 'POST', path: '/api/v1/job/watch', agent: false,
      headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data), Token: token },
    }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`watch: HTTP ${res.statusCode}`));
      res.setEncoding('utf8');
      const split = splitter((text) => onFrame(text, Date.now()));
      res.on('data', split);
      resolve({ close: () => req.destroy(), res });
    });
    req.on('error', (e) => { if (!e.message.includes('socket hang up') && e.code !== 'ECONNRESET') reject(e); });
    req.end(data);
  });
}

// The native event stream (admin): resolves events by a predicate.
function nativeEvents() {
  const seen = [];
  const waiters = [];
  const req = http.request({ hostname, port, path: '/jobrt/v1/events', agent: false, headers: { Authorization: BASIC } }, (res) => {
    res.setEncoding('utf8');
    let buf = '';
    res.on('data', (d) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.trim() === '') continue;
        seen.push(JSON.parse(line));
        waiters.splice(0).forEach((f) => f());
      }
    });
  });
  req.on('error', () => {});
  req.end();
  return {
    close: () => req.destroy(),
    async find(pred, ms = 10000) {
      const deadline = Date.now() + ms;
      for (;;) {
        const i = seen.findIndex(pred);
        if (i >= 0) return seen.splice(0, i + 1).pop();
        if (Date.now() > deadline) throw new Error('the native event stream did not show the change');
        await new Promise((r) => { const t = setTimeout(r, 50); waiters.push(() => { clearTimeout(t); r(); }); });
      }
    },
  };
}

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
};

let seq = 0;
const fresh = (p) => `${p}-${process.pid}-${Date.now().toString(36)}-${++seq}`;
const quickJob = (id) => ({
  job_id: id, initiator: 'alice', max_parallelism: 1,
  tasks: [{ alias: 'q', app_image: 'quick', parties: [{ domain_id: 'alice' }, { domain_id: 'bob' }], task_input_config: '{}' }],
});

// Jobs coming and going beside the measurement: one created every
// CHURN_MS, each deleted two periods later.
function churn() {
  let on = true;
  const live = [];
  const loop = (async () => {
    while (on) {
      const id = fresh('churn');
      await post('create', quickJob(id));
      live.push(id);
      if (live.length > 2) await post('delete', { job_id: live.shift() });
      await sleep(CHURN_MS);
    }
    for (const id of live) await post('delete', { job_id: id });
  })();
  return async () => { on = false; await loop; };
}

async function phase(n, ms) {
  const ticker = fresh('ticker');
  await post('create', {
    job_id: ticker, initiator: 'alice', max_parallelism: 1,
    tasks: [{ alias: 'tick', app_image: 'tick', parties: [{ domain_id: 'alice' }], task_input_config: '{}' }],
  });
  // round: {target state, arrival time per watcher}
  let round = null;
  const frameState = (text) => {
    if (!text.includes(ticker)) return null;
    const v = JSON.parse(text);
    if (!v.object || v.object.job_id !== ticker) return null;
    const st = v.object.status || {};
    const task = (st.tasks || []).find((t) => t.alias === 'tick');
    return { job: st.state, task: task && task.state };
  };
  const watchers = [];
  let ready = 0;
  const seenTicker = new Array(n).fill(false);
  // A watcher is armed once it has seen the ticker running again, so a late
  // frame of the previous suspend is never taken for this one's.
  const armed = new Array(n).fill(false);
  let armedCount = 0;
  for (let i = 0; i < n; i++) {
    const w = await openWatch((text, at) => {
      const s = frameState(text);
      if (!s) return;
      if (!seenTicker[i]) { seenTicker[i] = true; ready++; }
      if (s.job === 'Running' && s.task === 'Running' && !armed[i]) { armed[i] = true; armedCount++; }
      if (round && armed[i] && round.arrival[i] === undefined && round.match(s)) {
        round.arrival[i] = at;
        armed[i] = false;
        armedCount--;
        if (++round.got === n) round.done();
      }
    });
    watchers.push(w);
  }
  const until = async (pred, what, limit = 20000) => {
    const deadline = Date.now() + limit;
    while (!pred()) {
      if (Date.now() > deadline) throw new Error(`${n} watchers: ${what} within ${limit} ms`);
      await sleep(10);
    }
  };
  await until(() => ready === n, 'every watcher saw the ticker');
  const events = nativeEvents();
  const stopChurn = churn();
  const samples = [];
  const firsts = []; // per round, the first watcher's latency
  let rounds = 0;
  const waitRunning = async () => {
    const deadline = Date.now() + 20000;
    for (;;) {
      const q = await post('query', { job_id: ticker });
      const t = q.status.tasks.find((x) => x.alias === 'tick');
      if (q.status.state === 'Running' && t && t.state === 'Running' && armedCount === n) return;
      if (Date.now() > deadline) throw new Error(`the ticker is ${q.status.state} after 20 s, ${armedCount} of ${n} watchers saw it run`);
      await sleep(20);
    }
  };
  const end = Date.now() + ms;
  try {
    while (Date.now() < end) {
      await waitRunning();
      let done;
      const finished = new Promise((r) => { done = r; });
      round = { match: (s) => s.job === 'Suspended', arrival: new Array(n), got: 0, done };
      await post('suspend', { job_id: ticker });
      const ev = await events.find((e) => e.job === ticker && e.type === 'job' && e.state === 'suspended');
      await Promise.race([finished, sleep(10000)]);
      if (round.got !== n) throw new Error(`${n - round.got} of ${n} watchers saw no Suspended frame within 10 s`);
      const t0 = Date.parse(ev.time);
      for (const at of round.arrival) samples.push(at - t0);
      firsts.push(Math.min(...round.arrival) - t0);
      round = null;
      rounds++;
      await post('restart', { job_id: ticker });
    }
  } finally {
    round = null;
    await stopChurn();
    events.close();
    watchers.forEach((w) => w.close());
    await post('delete', { job_id: ticker }).catch(() => {});
  }
  return { n, p50: pct(samples, 50), p99: pct(samples, 99), samples: samples.length, rounds, first50: pct(firsts, 50) };
}

const results = {};
for (let r = 0; r < Number(runs); r++) {
  for (const c of counts) {
    const res = await phase(Number(c), Number(seconds) * 1000);
    (results[c] ||= []).push(res);
    console.error(`run ${r + 1}: ${c} watchers: p50 ${res.p50} ms, p99 ${res.p99} ms, first watcher p50 ${res.first50} ms (${res.samples} samples, ${res.rounds} rounds)`);
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
for (const c of counts) {
  const rs = results[c];
  console.log(`PHASE ${c} ${median(rs.map((x) => x.p50))} ${median(rs.map((x) => x.p99))} ` +
    `${rs.reduce((a, x) => a + x.samples, 0)} ${rs.reduce((a, x) => a + x.rounds, 0)} ${median(rs.map((x) => x.first50))}`);
}
