-- wrk script for bench/core_store.sh: durable job submits to the native API.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Basic YmVuY2g6YmVuY2g=" -- bench:bench, see core_store.sh
-- BENCH_START=1 submits with "start": true (bacalhau.sh compares with its
-- submits, which always start).
wrk.body = '{"title":"bench","labels":{"kind":"bench"},' .. (os.getenv("BENCH_START") == "1" and '"start":true,' or '')
  .. '"tasks":[{"alias":"a","command":["true"],"resources":{"cpu":"100m"}}]}'

function done(summary, latency, requests)
  local ok = summary.requests - (summary.errors.status or 0)
  io.write(string.format("SUBMITS %d %.3f %d\n", ok, summary.duration / 1e6, summary.errors.status or 0))
end
