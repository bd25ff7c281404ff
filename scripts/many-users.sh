#!/usr/bin/env bash
# Many concurrent users (the seeds claim 20,000+) on one machine, honestly measured.
#
# One process holds at most 20,000 open files here, and every user holds a connection,
# so the users are spread over GENERATORS loadtest processes (each writing its own shard
# of members, so their stale-read checks stay sound) and the API over INSTANCES
# `redis-harness serve` processes on one topology (process backend, Sentinel mode) and
# one SQLite database. Think time 5-15 s (writers 10x). The generators' load.json files
# are merged exactly (HDR histograms) and gated by `redis-harness gate`: p99 of every
# request <= 50 ms, error rate <= 1%, no stale read.
#
# Usage: scripts/many-users.sh [USERS=20000] [RUN_S=60] [GENERATORS=4] [INSTANCES=4]
# Output: $OUT (default /tmp/many-users): one JSON per generator, gate.md, junit.xml.
set -euo pipefail
cd "$(dirname "$0")/.."
users=${1:-20000}; run_s=${2:-60}; gens=${3:-4}; inst=${4:-4}
out=${OUT:-/tmp/many-users}
hatch=${HATCH:-100}          # users started per second, per generator
cargo build --release --locked -q -p redis-harness -p loadtests
bin=target/release/redis-harness
work=$(mktemp -d)
pids=()
cleanup() {
  # SIGTERM, then SIGKILL after 5 s: an API holding thousands of connections may not
  # finish its graceful shutdown in time, and none may outlive the script.
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for _ in $(seq 50); do
    alive=0; for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break; sleep 0.1
  done
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  "$bin" -c "$work/h.yaml" down --all >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$out"; rm -f "$out"/gen-*.json
printf 'name: many\nrun_dir: %s\n' "$work/run" > "$work/h.yaml"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

echo "== topology (process backend, 1 master, 2 replicas, 3 Sentinels)"
"$bin" -c "$work/h.yaml" up >/dev/null
hosts=()
start_api() {
  local port; port=$(free_port)
  "$bin" -c "$work/h.yaml" serve --host 127.0.0.1 --port "$port" \
    --database "sqlite://$work/membership.db" --members 50301 2> "$work/api-$1.log" &
  pids+=($!)
  for _ in $(seq 1200); do
    curl -sf "http://127.0.0.1:$port/api/v1/statistics/system" >/dev/null 2>&1 && break
    kill -0 "${pids[-1]}" 2>/dev/null || { cat "$work/api-$1.log" >&2; exit 1; }
    sleep 0.1
  done
  hosts+=("http://127.0.0.1:$port")
}
echo "== $inst API instances (the first generates 50,301 members)"
start_api 1
for i in $(seq 2 "$inst"); do start_api "$i"; done
host_list=$(IFS=,; echo "${hosts[*]}")
echo "   $host_list"

per=$(( users / gens ))
echo "== $gens generators x $per users = $((per * gens)) users, hatch $hatch/s each, ${run_s} s after hatching, think 5-15 s"
gpids=()
for k in $(seq 0 $((gens - 1))); do
  target/release/loadtest --host "$host_list" --users "$per" --hatch-rate "$hatch" \
    --run-time "$run_s" --think-min-ms 5000 --think-max-ms 15000 --writer-percent 5 \
    --shard "$k/$gens" --json "$out/gen-$k.json" > "$out/gen-$k.txt" 2>&1 &
  gpids+=($!)
done
for p in "${gpids[@]}"; do wait "$p" || { echo "a generator failed:"; cat "$out"/gen-*.txt; exit 1; }; done
cat > "$work/targets.yaml" <<'T'
p99_max_us: 50000
error_rate_max: 0.01
max_stale_reads: 0
T
echo "== merged and gated"
set +e
"$bin" gate "$out"/gen-*.json --targets "$work/targets.yaml" --markdown "$out/gate.md" --junit "$out/junit.xml"
rc=$?
set -e
echo "exit $rc"
exit $rc
