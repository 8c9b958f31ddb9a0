-- wrk script for bench/core_store.sh: one page of the job list.
wrk.method = "GET"
wrk.headers["Authorization"] = "Basic YmVuY2g6YmVuY2g=" -- bench:bench, see core_store.sh

function done(summary, latency, requests)
  io.write(string.format("LIST %.1f %.1f %d\n", latency.mean, latency:percentile(99),
    summary.requests))
end
