#!/usr/bin/env bash
# The image store's two costs, each against its baseline in the same run:
#  1. import of a 100 MiB image (an OCI layout archive of several gzip'ed
#     layers, tests/e2e/oci_image.py) with `jobrt images import`, against
#     `tar -x` of the same layers (plain tars) into one folder;
#  2. the start of a task (the sandbox helper, start to exit of /bin/true,
#     BENCH_IMAGES_RUNS times, median) with its root stacked from that
#     image's layers with overlayfs, against the same task on `host`.
# BENCH_IMAGES_MIB (default 100), BENCH_IMAGES_RUNS (default 50).
set -u
cd "$(dirname "$0")/.." || exit 1
. bench/lib.sh
bench_init images
MIB=${BENCH_IMAGES_MIB:-100}
RUNS=${BENCH_IMAGES_RUNS:-50}
HELPER=$(dirname "$BIN")/build/jobrt-sandbox
[ -x "$HELPER" ] || HELPER=$(dirname "$BIN")/jobrt-sandbox
[ -x "$HELPER" ] || HELPER="$BIN"

if [ "$(id -u)" != 0 ]; then
    echo "images: skipped (needs root: the sandbox's id mapping)"
    exit 0
fi
[ -x /bin/busybox ] || { echo "images: skipped (needs busybox-static)"; exit 0; }

ms() { echo "$(( ($2 - $1) / 1000000 ))"; }
now() { date +%s%N; }

python3 tests/e2e/oci_image.py big "$MIB" "$tmp/big.tar" "$tmp/layers" || exit 1
nlayers=$(ls "$tmp/layers" | wc -l)
sync

# 1. import vs tar -x
t0=$(now)
mkdir "$tmp/untar"
for l in $(ls "$tmp/layers" | sort -V); do tar -xf "$tmp/layers/$l" -C "$tmp/untar" || exit 1; done
sync
t1=$(now)
"$BIN" images import "$tmp/big.tar" --name big:1 --data-dir "$tmp/data" >/dev/null || exit 1
sync
t2=$(now)
tar_ms=$(ms "$t0" "$t1")
imp_ms=$(ms "$t1" "$t2")
echo "images: import of a ${MIB} MiB image ($nlayers layers, gzip'ed): ${imp_ms} ms;" \
     "tar -x of its layers: ${tar_ms} ms; ratio $(awk -v a="$imp_ms" -v b="$tar_ms" 'BEGIN { printf "%.2f", a / (b ? b : 1) }')"

# 2. task start: overlay of the layers vs host
layer_args=()
while IFS= read -r d; do layer_args+=("--layer=$d"); done < <(
    "$BIN" lua - "$tmp/data" <<'EOF'
local image = require("jobrt.image")
local s = assert(image.open(arg[1]))
local info = assert(s:get("big:1"))
local text = assert(s:read_blob(info.manifest))
for _, l in ipairs(image.parse_manifest(text).items) do
  print(arg[1] .. "/images/layers/" .. l.digest:sub(8))
end
EOF
)
run_one() { # args...: start to exit of one helper run, in microseconds
    local a b
    a=$(now)
    "$HELPER" sandbox --status-fd=3 --uid=0 "$@" -- /bin/true 3>/dev/null >/dev/null 2>&1 || return 1
    b=$(now)
    echo $(( (b - a) / 1000 ))
}
for _ in 1 2 3; do run_one --image=host >/dev/null; run_one "${layer_args[@]}" >/dev/null; done
: > "$tmp/host"; : > "$tmp/overlay"
for _ in $(seq "$RUNS"); do
    run_one --image=host >> "$tmp/host" || { echo "images: FAILED: host run"; exit 1; }
    run_one "${layer_args[@]}" >> "$tmp/overlay" || { echo "images: FAILED: overlay run"; exit 1; }
done
h=$(median < "$tmp/host")
o=$(median < "$tmp/overlay")
echo "images: task start in the ${nlayers}-layer image (overlayfs): ${o} us median of $RUNS;" \
     "on host: ${h} us; ratio $(awk -v a="$o" -v b="$h" 'BEGIN { printf "%.2f", a / (b ? b : 1) }')"
