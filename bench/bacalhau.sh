#!/usr/bin/env bash
# Signed submits through the Bacalhau surface against native submits in the
# same run, on the same daemon, alternating (BENCH_RUNS pairs, median of
# each): what the envelope, the RSA-2048 signature check and the Spec
# translation cost per job. Both submit and start one task running `true`;
# the manual approval policy holds every job on both surfaces, so what is
# measured is the submission (pipeline, policy, store), not the sandbox.
set -u
cd "$(dirname "$0")/.." || exit 1
RUNS=${BENCH_RUNS:-3}
. bench/lib.sh
bench_init bacalhau

cat > "$tmp/jobrt.yaml" <<YAML
log: {level: error}
plugins:
  review: {use: approve.manual}
surfaces:
  native: {approval: [review]}
  bacalhau: {approval: [review]}
users:
  bench: {password: bench, roles: [admin]}
YAML

# A client key, its ClientID and one signed submit, made as Bacalhau's Go
# client makes them (compact JSON, PKCS#1 public key).
openssl genrsa -traditional -out "$tmp/user_id.pem" 2048 2>/dev/null || exit 1
pub=$(openssl rsa -in "$tmp/user_id.pem" -RSAPublicKey_out -outform DER 2>/dev/null | base64 -w0)
cid=$(openssl rsa -in "$tmp/user_id.pem" -noout -modulus | sed 's/^Modulus=//' | xxd -r -p | sha256sum | cut -d' ' -f1)
printf '{"ClientID":"%s","APIVersion":"V1beta1","Spec":{"Engine":"Docker","Verifier":"Noop","PublisherSpec":{"Type":"noop"},"Docker":{"Image":"host","Entrypoint":["true"]},"Resources":{"CPU":"100m"},"Deal":{"Concurrency":1}}}' \
    "$cid" > "$tmp/payload.json"
sig=$(openssl dgst -sha256 -sign "$tmp/user_id.pem" "$tmp/payload.json" | base64 -w0)
{ printf '{"payload":'; cat "$tmp/payload.json"; printf ',"signature":"%s","client_public_key":"%s"}' "$sig" "$pub"; } \
    > "$tmp/body.json"
export BACALHAU_BODY="$tmp/body.json"

bench_start "$tmp/jobrt.yaml" "$tmp/data"
code=$(curl -s -o "$tmp/first" -w '%{http_code}' -H 'Content-Type: application/json' \
    --data-binary @"$tmp/body.json" "http://127.0.0.1:$port/requester/submit")
if [ "$code" != 200 ]; then
    echo "bacalhau: FAILED: the signed submit answered $code: $(cat "$tmp/first")" >&2
    exit 1
fi

rate() { # wrk script, url -> submits/s
    local out n secs errors
    out=$(wrk -t2 -c32 -d"$DUR" -s "$1" "$2")
    read -r _ n secs errors <<<"$(grep '^SUBMITS' <<<"$out")"
    [ "${errors:-1}" = 0 ] || { echo "bacalhau: FAILED: $errors non-2xx answers from $2" >&2; exit 1; }
    awk -v n="$n" -v s="$secs" 'BEGIN { printf "%.0f", n / s }'
}
native=() bac=()
for _ in $(seq "$RUNS"); do
    native+=("$(BENCH_START=1 rate bench/core_submit.lua "http://127.0.0.1:$port/jobrt/v1/jobs")") || exit 1
    bac+=("$(rate bench/bacalhau_submit.lua "http://127.0.0.1:$port/requester/submit")") || exit 1
done
n=$(printf '%s\n' "${native[@]}" | median)
b=$(printf '%s\n' "${bac[@]}" | median)
printf 'bacalhau: signed submits/s: %s  vs native submits/s: %s  ratio %.2fx  (%s runs of %s each, medians)\n' \
    "$b" "$n" "$(awk -v a="$b" -v b="$n" 'BEGIN { print a / b }')" "$RUNS" "$DUR"
