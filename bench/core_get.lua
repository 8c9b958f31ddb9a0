-- wrk script for bench/core_store.sh: GET /jobrt/v1/jobs/{id} of seeded
-- jobs (ids "seed-00000001"...) picked at random among numbers BENCH_FROM
-- (default 1) to BENCH_JOBS: all over the store, or among the newest, as
-- clients polling the jobs they just submitted do.
wrk.headers["Authorization"] = "Basic YmVuY2g6YmVuY2g=" -- bench:bench, see core_store.sh
local n = tonumber(os.getenv("BENCH_JOBS")) or 1000
local from = tonumber(os.getenv("BENCH_FROM")) or 1

function request()
  return wrk.format("GET", string.format("/jobrt/v1/jobs/seed-%08d", math.random(from, n)))
end

function done(summary, latency, requests)
  io.write(string.format("GET %.1f %.1f %d %d\n", latency.mean, latency:percentile(99),
    summary.requests, (summary.errors.status or 0)))
end
