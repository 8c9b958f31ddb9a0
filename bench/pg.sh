#!/usr/bin/env bash
# The PostgreSQL store, each figure against a baseline on the same
# throwaway server in the same run (tools/pg.sh):
#  - durable submits/s through the native API (64 clients, group commit in
#    one pipelined transaction per loop iteration) vs pgbench's rate of
#    one-row INSERT transactions (8 clients);
#  - claims/s of free jobs as jobrt's scheduler makes them (jr_store_jobs_claim
#    and its commit; bench/pg_claim.c, 4 processes) vs the raw
#    FOR UPDATE SKIP LOCKED claim of one row per transaction (pgbench, 4
#    clients), each over BENCH_CLAIM_ROWS (200,000) queued rows;
#  - how long the reads of a GET (the job's row, then its tasks) and of a
#    list page (100 jobs) hold the loop: the store reads synchronously, one
#    round trip each on PostgreSQL (bench/pg_read.c, 1,000 jobs of 5 tasks),
#    vs the same reads of the SQLite store.
set -u
cd "$(dirname "$0")/.." || exit 1
. bench/lib.sh
bench_init pg
ROWS=${BENCH_CLAIM_ROWS:-200000}
secs=${DUR%s}
PGBENCH=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)/pgbench
CLAIM=${BUILD:-build}/bench/pg_claim
READ=${BUILD:-build}/bench/pg_read
for b in "$CLAIM" "$READ"; do
    if [ ! -x "$b" ]; then
        echo "pg: $b not built (make bench builds it)" >&2
        exit 1
    fi
done
pgdir=$(mktemp -d)       # its own: the server's user must reach it
trap 'tools/pg.sh down "$pgdir"; rm -rf "$pgdir"; bench_cleanup' EXIT
url=$(tools/pg.sh up "$pgdir") || exit 1
db_url() { echo "${url%/*}/$1"; }
q() { PGOPTIONS='-c client_min_messages=warning' psql "$(db_url "$1")" -Atqc "$2"; }
q postgres "CREATE DATABASE base" && q postgres "CREATE DATABASE jobrt" && q postgres "CREATE DATABASE claims" &&
    q postgres "CREATE DATABASE reads" || exit 1

# 1. baseline: one-row INSERT transactions, pgbench
q base "CREATE TABLE t(seq bigserial PRIMARY KEY, id text UNIQUE, state text, attrs text,
        created_at bigint)" || exit 1
cat > "$tmp/insert.sql" <<'SQL'
INSERT INTO t(id, state, attrs, created_at) VALUES (md5(random()::text), 'created', '{"title":"bench"}', 0);
SQL
base=$("$PGBENCH" -n -M prepared -c 8 -j 2 -T "$secs" -f "$tmp/insert.sql" "$(db_url base)" 2>/dev/null |
       awk '/^tps/ { printf "%.0f", $3 }')

# 2. durable submits through jobrt on the same server
cat > "$tmp/jobrt.yaml" <<YAML
log: {level: error}
store: {backend: postgres, url: "$(db_url jobrt)"}
users:
  bench: {password: bench, roles: [admin]}
YAML
bench_start "$tmp/jobrt.yaml" "$tmp/data"
out=$(wrk -t2 -c64 -d"$DUR" -s bench/core_submit.lua "http://127.0.0.1:$port/jobrt/v1/jobs")
read -r _ n took errors <<<"$(grep '^SUBMITS' <<<"$out")"
bench_stop
rate=$(awk -v n="$n" -v s="$took" 'BEGIN { printf "%.0f", n / s }')
printf 'pg: durable submits/s (native API, 64 clients): %s  vs pgbench one-row INSERT tps (8 clients): %s  ratio %.2f  (non-2xx: %s)\n' \
    "$rate" "$base" "$(awk -v a="$rate" -v b="$base" 'BEGIN { print a / b }')" "$errors"

# 3. claims: the raw SKIP LOCKED claim vs jobrt's, on the same queue shape
seed() { # db: ROWS queued, unclaimed jobs in jobrt's schema
    "$CLAIM" "$(db_url "$1")" 0 seed >/dev/null || exit 1   # creates the schema
    q "$1" "INSERT INTO jobs(id, state, created_at, updated_at)
            SELECT 'j' || g, 'queued', 0, 0 FROM generate_series(1, $ROWS) g" &&
        q "$1" "VACUUM ANALYZE jobs" || exit 1
}
seed claims
cat > "$tmp/claim.sql" <<'SQL'
UPDATE jobs SET instance = 'raw' || :client_id WHERE seq = (SELECT seq FROM jobs WHERE instance IS NULL AND state IN ('queued', 'running') ORDER BY priority DESC, seq LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING seq;
SQL
raw=$("$PGBENCH" -n -M prepared -c 4 -j 2 -T "$secs" -f "$tmp/claim.sql" "$(db_url claims)" 2>/dev/null |
      awk '/^tps/ { printf "%.0f", $3 }')
q postgres "DROP DATABASE claims" && q postgres "CREATE DATABASE claims" || exit 1
seed claims
for i in 1 2 3 4; do "$CLAIM" "$(db_url claims)" "$secs" "bench-$i" >"$tmp/claim.$i" & done
wait
ours=$(cat "$tmp"/claim.? | awk '/^CLAIMS/ { n += $2; if ($3 > s) s = $3 } END { printf "%.0f", n / s }')
double=$(q claims "SELECT count(*) FROM jobs WHERE instance IS NOT NULL" )
printf 'pg: claims/s (jobrt store, 4 instances): %s  vs raw SKIP LOCKED claim (pgbench, 4 clients): %s  ratio %.2f  (%s rows claimed, each once)\n' \
    "$ours" "$raw" "$(awk -v a="$ours" -v b="$raw" 'BEGIN { print a / b }')" "$double"

# 4. the loop held by a GET's and a list page's reads, PostgreSQL vs SQLite
read -r _ pg_get pg_get99 pg_list pg_list99 <<<"$("$READ" "$(db_url reads)" 1000 2000 | grep '^READS')"
read -r _ sq_get sq_get99 sq_list sq_list99 <<<"$("$READ" "$tmp/reads.db" 1000 2000 | grep '^READS')"
printf 'pg: loop held by a GET'"'"'s reads (job row + tasks): median %s us, p99 %s us  vs SQLite: %s us, %s us\n' \
    "$pg_get" "$pg_get99" "$sq_get" "$sq_get99"
printf 'pg: loop held by a list page'"'"'s read (100 jobs): median %s us, p99 %s us  vs SQLite: %s us, %s us\n' \
    "$pg_list" "$pg_list99" "$sq_list" "$sq_list99"
