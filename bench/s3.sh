#!/usr/bin/env bash
# S3 upload throughput: a 256 MiB task output uploaded by publish.s3 (the
# publisher's own upload, through jobrt.publication) against `curl
# --aws-sigv4` uploading the same file to the same store in the same run.
# publish.s3 runs twice: with its default settings (multipart: parts of 16
# MiB over 64 MiB, four at a time) and as one PUT (threshold above the
# size), as curl sends it. The store is s3rver behind the verifying front
# of the tests (tests/e2e/s3_lib.mjs), on loopback; s3rver joins the parts
# of a multipart upload by copying them, which the multipart figure pays.
# Prints MiB/s of each (median of BENCH_S3_RUNS runs, default 3, taking
# turns) and the ratios to curl. BENCH_S3_MIB sets the size (default 256).
# curl 7.88 signs the x-amz-content-sha256 header it is given but does not
# add it, so it is given UNSIGNED-PAYLOAD, as publish.s3 sends file bodies.
set -u
cd "$(dirname "$0")/.." || exit 1
BIN=${JOBRT_BIN:-./jobrt}
RUNS=${BENCH_S3_RUNS:-3}
MIB=${BENCH_S3_MIB:-256}
. bench/lib.sh
bench_init s3
spid=

if [ ! -d tests/e2e/node_modules/s3rver ]; then
    echo "s3: tests/e2e/node_modules is missing (make node-deps)" >&2; exit 1
fi
stop_store() { [ -n "$spid" ] && kill "$spid" 2>/dev/null && wait "$spid" 2>/dev/null; spid=; }
trap 'stop_store; bench_cleanup' EXIT

mkdir -p "$tmp/data/jobs/bench/out/outputs"
out="$tmp/data/jobs/bench/out/outputs/big.bin"
head -c "$((MIB * 1024 * 1024))" /dev/urandom > "$out"

node tests/e2e/s3_lib.mjs > "$tmp/port" 2>"$tmp/store.log" &
spid=$!
for _ in $(seq 200); do [ -s "$tmp/port" ] && break; sleep 0.05; done
sport=$(head -1 "$tmp/port")
if [ -z "$sport" ]; then echo "s3: the store did not start" >&2; cat "$tmp/store.log" >&2; exit 1; fi
AK=$(node -e "import('./tests/e2e/s3_lib.mjs').then((m) => { console.log(m.ACCESS_KEY); process.exit(0) })")
SK=$(node -e "import('./tests/e2e/s3_lib.mjs').then((m) => { console.log(m.SECRET_KEY); process.exit(0) })")

cat > "$tmp/upload.lua" <<'LUA'
local publication = require("jobrt.publication")
local plugins = require("jobrt.plugins")
local async = require("jobrt.async")
local path, port, ak, sk, run, single = arg[1], arg[2], arg[3], arg[4], arg[5], arg[6] == "single"
local mod, opts = plugins.new({}):plugin({ s3 = { use = "publish.s3", endpoint = "http://127.0.0.1:" .. port,
  bucket = "results", prefix = "bench/jobrt-" .. run .. "/", access_key = ak, secret_key = sk,
  multipart_threshold = single and 1024 * 1024 * 1024 * 1024 or nil } }, "s3")
assert(mod, opts)
local size = require("luv").fs_stat(path).size
-- Nothing is kept between runs: every run uploads.
local core = { results = function() return {} end, add_result = function() return true end, log = function() end }
local pub = publication.new({ name = "s3", mod = mod, options = opts, core = core })
local start = async.now()
local record, f = pub:upload({ id = "bench" }, "out", { { name = "big.bin", size = size, path = path } })
if not record then error(f.code .. ": " .. f.message) end
print(string.format("%.3f", async.now() - start))
LUA

jobrt_secs=() single_secs=() curl_secs=()
for i in $(seq "$RUNS"); do
    s=$("$BIN" lua "$tmp/upload.lua" "$out" "$sport" "$AK" "$SK" "$i" multipart) || { echo "s3: jobrt's upload failed" >&2; exit 1; }
    jobrt_secs+=("$s")
    s=$("$BIN" lua "$tmp/upload.lua" "$out" "$sport" "$AK" "$SK" "s$i" single) || { echo "s3: jobrt's upload failed" >&2; exit 1; }
    single_secs+=("$s")
    s=$(curl -sS -o "$tmp/curl.out" -w '%{time_total}' --fail-with-body \
        --aws-sigv4 "aws:amz:us-east-1:s3" --user "$AK:$SK" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
        -T "$out" "http://127.0.0.1:$sport/results/bench/curl-$i/big.bin") || {
        echo "s3: curl's upload failed: $(cat "$tmp/curl.out")" >&2; exit 1; }
    curl_secs+=("$s")
done
j=$(printf '%s\n' "${jobrt_secs[@]}" | median)
o=$(printf '%s\n' "${single_secs[@]}" | median)
c=$(printf '%s\n' "${curl_secs[@]}" | median)
awk -v j="$j" -v o="$o" -v c="$c" -v m="$MIB" 'BEGIN {
    printf "s3: upload of %d MiB: curl --aws-sigv4 %.0f MiB/s (%.2f s); publish.s3 one PUT %.0f MiB/s (%.2f s), ratio %.2f;", m, m / c, c, m / o, o, c / o
    printf " publish.s3 multipart (default) %.0f MiB/s (%.2f s), ratio %.2f\n", m / j, j, c / j }'
