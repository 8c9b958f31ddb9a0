-- wrk script for bench/bacalhau.sh: one signed Bacalhau submit, replayed
-- (the legacy API has no nonce, so each request makes a new job). The body
-- is made by bacalhau.sh with openssl and read from $BACALHAU_BODY.
local f = assert(io.open(os.getenv("BACALHAU_BODY"), "rb"))
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = f:read("a")
f:close()

function done(summary)
  local ok = summary.requests - (summary.errors.status or 0)
  io.write(string.format("SUBMITS %d %.3f %d\n", ok, summary.duration / 1e6, summary.errors.status or 0))
end
