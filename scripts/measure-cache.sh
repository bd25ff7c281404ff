#!/usr/bin/env bash
# Measures the membership API's HIT and MISS paths with wrk on this machine:
# brings up the default topology (process backend: master, 2 replicas, 3 Sentinels),
# serves the API in Sentinel mode on the seeds' data set (50,301 members, SQLite), and
# for each route runs wrk twice: plain requests (served from Redis: HIT) and requests
# with `Cache-Control: no-cache` (CACHE_HONOR_NO_CACHE=true: every request recomputes
# from SQLite and re-stores: the MISS path). The API's own X-Cache counters are read
# after each run to show that the runs really were HITs and MISSes.
# Usage: scripts/measure-cache.sh [concurrency=8] [seconds=8]
set -euo pipefail
cd "$(dirname "$0")/.."
conc=${1:-8}; secs=${2:-8}; threads=$(( conc < 2 ? 1 : 2 ))
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
cargo build --release --locked -q
bin=$PWD/target/release/redis-harness
work=$(mktemp -d)
api_pid=""
cleanup() {
  [ -n "$api_pid" ] && kill "$api_pid" 2>/dev/null && wait "$api_pid" 2>/dev/null || true
  "$bin" -c "$work/h.yaml" down >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
printf 'name: measure\nrun_dir: %s\n' "$work/run" > "$work/h.yaml"
"$bin" -c "$work/h.yaml" up >/dev/null
export CACHE_ADMIN_TOKEN=measure CACHE_HONOR_NO_CACHE=true CACHE_WARMUP=true
"$bin" -c "$work/h.yaml" serve --port 0 --database "sqlite://$work/m.db" 2>"$work/api.log" &
api_pid=$!
for _ in $(seq 300); do grep -q "serving http://" "$work/api.log" && break; sleep 0.1; done
base=$(grep -o 'serving http://[^/]*' "$work/api.log" | sed 's#serving http://##')
[ -n "$base" ] || { cat "$work/api.log"; exit 1; }
echo "API on $base; wrk -t$threads -c$conc -d${secs}s --latency; $(nproc) cores shared by wrk, the API and 6 Redis processes"
metric() {  # route field -> value from cache/metrics
  curl -s -H "Authorization: Bearer measure" "http://$base/api/v1/cache/metrics" |
    python3 -c "import sys,json; r=json.load(sys.stdin)['routes'].get(sys.argv[1],{}); print(r.get(sys.argv[2],0))" "$1" "$2"
}
pct() { awk -v p="$1" '$1==p {print $2}'; }
to_us() { awk '{v=$1; if (v ~ /us$/) {sub(/us/,"",v); print v+0} else if (v ~ /ms$/) {sub(/ms/,"",v); print v*1000} else if (v ~ /s$/) {sub(/s/,"",v); print v*1000000}}'; }
printf '\n%-34s %-5s %10s %10s %10s %12s\n' route path p50_us p99_us req/s x-cache
for spec in "/api/v1/statistics/system|/api/v1/statistics/system" \
            "/api/v1/analytics/dashboard|/api/v1/analytics/dashboard" \
            "/api/v1/members/{id}|/api/v1/members/12345"; do
  route=${spec%%|*}; path=${spec##*|}
  curl -s "http://$base$path" >/dev/null   # make sure the entry exists
  for mode in HIT MISS; do
    h0=$(metric "$route" hits); m0=$(metric "$route" misses)
    if [ $mode = HIT ]; then
      out=$(wrk -t"$threads" -c"$conc" -d"${secs}s" --latency "http://$base$path")
    else
      out=$(wrk -t"$threads" -c"$conc" -d"${secs}s" --latency -H "Cache-Control: no-cache" "http://$base$path")
    fi
    h1=$(metric "$route" hits); m1=$(metric "$route" misses)
    p50=$(echo "$out" | pct "50%" | to_us); p99=$(echo "$out" | pct "99%" | to_us)
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    printf '%-34s %-5s %10s %10s %10s %12s\n' "$route" $mode "$p50" "$p99" "$rps" "$((h1-h0))H/$((m1-m0))M"
  done
done
