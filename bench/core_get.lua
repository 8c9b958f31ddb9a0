-- wrk script for bench/core_store.sh: GET /jobrt/v1/jobs/{id} of seeded
-- jobs picked at random among BENCH_JOBS (ids "seed-00000001"...), so that
-- reads land all over the store, as a client polling its jobs does.
wrk.headers["Authorization"] = "Basic YmVuY2g6YmVuY2g=" -- bench:bench, see core_store.sh
local n = tonumber(os.getenv("BENCH_JOBS")) or 1000

function request()
  return wrk.format("GET", string.format("/jobrt/v1/jobs/seed-%08d", math.random(n)))
end

function done(summary, latency, requests)
  io.write(string.format("GET %.1f %.1f %d %d\n", latency.mean, latency:percentile(99),
    summary.requests, (summary.errors.status or 0)))
end
