-- wrk script for bench/core_store.sh: one page of the job list.
wrk.method = "GET"

function done(summary, latency, requests)
  io.write(string.format("LIST %.1f %.1f %d\n", latency.mean, latency:percentile(99),
    summary.requests))
end
