#!/usr/bin/env bash
# Sandboxed tasks per second through the whole daemon: N jobs of one
# /bin/true task each, submitted concurrently over the native API with
# "start": true; wall time from the first submit until every job finished
# (polled every 20 ms through the unfinished states, then counted once).
# The bare fork+exec rate of /bin/true (same concurrency, same run) is
# printed beside it. BENCH_SANDBOX_JOBS=N (default 500),
# BENCH_SANDBOX_CLIENTS=N (default 16), BENCH_SANDBOX_MAX_TASKS (default 16).
set -u
cd "$(dirname "$0")/.." || exit 1
BIN=${JOBRT_BIN:-./jobrt}
JOBS=${BENCH_SANDBOX_JOBS:-500}
CLIENTS=${BENCH_SANDBOX_CLIENTS:-16}
MAX_TASKS=${BENCH_SANDBOX_MAX_TASKS:-16}

if [ "$(id -u)" != 0 ]; then
    echo "sandbox_daemon: skipped (needs root: cgroups and the id mapping)"
    exit 0
fi
command -v node >/dev/null 2>&1 || { echo "sandbox_daemon: skipped (needs node)"; exit 0; }

DIR=$(mktemp -d /tmp/jobrt-bench-sbd.XXXXXX)
PID=
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    rm -rf "$DIR"
}
trap cleanup EXIT
PORT=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
printf 'log: {level: warn}\nnode: {max_tasks: %s}\nusers: {bench: {password: bench-password, roles: [admin]}}\n' \
    "$MAX_TASKS" > "$DIR/jobrt.yaml"
"$BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$DIR/data" -c "$DIR/jobrt.yaml" \
    2> "$DIR/log" &
PID=$!

JOBS=$JOBS CLIENTS=$CLIENTS MAX_TASKS=$MAX_TASKS URL="http://127.0.0.1:$PORT" node --input-type=module -e '
import { spawn } from "node:child_process";
const { JOBS, CLIENTS, MAX_TASKS, URL } = process.env;
const n = Number(JOBS), clients = Number(CLIENTS);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const AUTH = { Authorization: `Basic ${Buffer.from("bench:bench-password").toString("base64")}` };
for (let i = 0; ; i++) {
  try { if ((await fetch(`${URL}/jobrt/healthz`)).ok) break; } catch {}
  if (i > 400) { console.log("sandbox_daemon: FAILED: the daemon did not come up"); process.exit(1); }
  await sleep(25);
}
// Bare fork+exec of /bin/true with the same parallelism as the daemon.
async function bare(count, par) {
  let next = 0;
  const t0 = process.hrtime.bigint();
  async function worker() {
    while (next < count) {
      next++;
      await new Promise((res) => spawn("/bin/true", [], { stdio: "ignore" }).on("exit", res));
    }
  }
  await Promise.all(Array.from({ length: par }, worker));
  return Number(process.hrtime.bigint() - t0) / 1e9;
}
async function daemon() {
  const ids = [];
  let next = 0;
  const t0 = process.hrtime.bigint();
  async function submitter() {
    while (next < n) {
      next++;
      const r = await fetch(`${URL}/jobrt/v1/jobs`, { method: "POST",
        headers: { ...AUTH, "Content-Type": "application/json" },
        body: JSON.stringify({ start: true, tasks: [{ alias: "t", command: ["/bin/true"] }] }) });
      const j = await r.json();
      if (r.status !== 201) throw new Error(JSON.stringify(j));
      ids.push(j.id);
    }
  }
  await Promise.all(Array.from({ length: clients }, submitter));
  // Every job finished. While some are not, only the unfinished states are
  // asked for (one job each): listing all n jobs every 20 ms would spend the
  // CPU that the tasks being measured need (2 cores here). Then the whole
  // list (keyset pages) is counted once.
  const unfinished = async () => {
    for (const st of ["created", "queued", "running"]) {
      const page = await (await fetch(`${URL}/jobrt/v1/jobs?limit=1&state=${st}`, { headers: AUTH })).json();
      if (page.jobs.length) return true;
    }
    return false;
  };
  for (;;) {
    if (await unfinished()) { await sleep(20); continue; }
    let done = 0, failed = 0, after;
    for (;;) {
      const q = after ? `&after=${after}` : "";
      const page = await (await fetch(`${URL}/jobrt/v1/jobs?limit=1000${q}`, { headers: AUTH })).json();
      for (const j of page.jobs) {
        if (j.state === "succeeded") done++;
        else if (j.state === "failed" || j.state === "canceled") { done++; failed++; }
      }
      if (!page.next || page.jobs.length === 0) break;
      after = page.next;
    }
    if (done >= n) {
      const s = Number(process.hrtime.bigint() - t0) / 1e9;
      if (failed) console.log(`sandbox_daemon: ${failed} of ${n} jobs failed`);
      return s;
    }
    await sleep(20);
  }
}
const wall = await daemon();
const bareWall = await bare(n, Number(MAX_TASKS));
const rate = n / wall, bareRate = n / bareWall;
console.log(`sandbox_daemon: ${n} jobs of /bin/true, ${clients} clients, max_tasks ${MAX_TASKS}`);
console.log(`  daemon, sandboxed, submit to finished: ${wall.toFixed(2)} s = ${rate.toFixed(0)} tasks/s`);
console.log(`  bare fork+exec /bin/true:               ${bareWall.toFixed(2)} s = ${bareRate.toFixed(0)} /s`);
console.log(`  ratio (bare / daemon): ${(bareRate / rate).toFixed(1)}x; target >= 300 tasks/s: ${rate >= 300 ? "met" : "NOT met"}`);
' || { echo "sandbox_daemon: FAILED"; tail -20 "$DIR/log"; exit 1; }
