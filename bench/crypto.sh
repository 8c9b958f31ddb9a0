#!/usr/bin/env bash
# RSA-2048 PKCS#1 v1.5 / SHA-256 verifications per second through
# jobrt.crypto.verify (a `jobrt lua` loop handing it the DER PKCS#1 key, the
# signature and the data, as a Bacalhau request does; parsed keys are
# cached) against `openssl speed rsa2048` verify/s measured in the same run,
# printed as a ratio. Both count CPU time. BENCH_CRYPTO_SECONDS sets
# the length of each measurement (default 3).
set -u
cd "$(dirname "$0")/.." || exit 1
BIN=${JOBRT_BIN:-./jobrt}
SECS=${BENCH_CRYPTO_SECONDS:-3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

openssl genrsa -traditional -out "$tmp/k.pem" 2048 2>/dev/null &&
openssl rsa -in "$tmp/k.pem" -RSAPublicKey_out -outform DER -out "$tmp/k.der" 2>/dev/null &&
printf '{"ClientID":"x","JobID":"j","Reason":"bench"}' > "$tmp/payload" &&
openssl dgst -sha256 -sign "$tmp/k.pem" -out "$tmp/sig" "$tmp/payload" || {
    echo "crypto: cannot make the test key with openssl" >&2; exit 1; }

cat > "$tmp/bench.lua" <<'LUA'
local crypto = require("jobrt.crypto")
local dir, secs = arg[1], tonumber(arg[2])
local function rd(n) local f = assert(io.open(dir .. "/" .. n, "rb")); local s = f:read("a"); f:close(); return s end
local req = { alg = "rsa-pkcs1-sha256", key = rd("k.der"), key_format = "pkcs1", sig = rd("sig"), data = rd("payload") }
assert(crypto.verify(req) == true, "the signature does not verify")
-- CPU time, as `openssl speed` counts by default: a loaded machine slows
-- both the same way.
local n, start = 0, os.clock()
while true do
  for _ = 1, 100 do crypto.verify(req) end
  n = n + 100
  if os.clock() - start >= secs then break end
end
print(string.format("%.0f", n / (os.clock() - start)))
LUA

ours=$("$BIN" lua "$tmp/bench.lua" "$tmp" "$SECS") || { echo "crypto: jobrt loop failed" >&2; exit 1; }
# "rsa 2048 bits 0.000512s 0.000015s   1953.1  66666.7": the last column is verify/s.
base=$(openssl speed -seconds "$SECS" rsa2048 2>/dev/null | awk '/^rsa +2048 bits/ {print $NF}')
if [ -z "$base" ]; then echo "crypto: openssl speed gave no figure" >&2; exit 1; fi
awk -v o="$ours" -v b="$base" 'BEGIN {
    printf "crypto: rsa2048 verify via jobrt.crypto.verify: %.0f/s; openssl speed: %.0f/s; ratio %.2f\n", o, b, o / b }'
