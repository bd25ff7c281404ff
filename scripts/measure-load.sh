#!/usr/bin/env bash
# goose (our loadtest, microsecond recording) vs wrk on the same cached route in the same
# run, then the scenario mix, against the membership API (release) on a standalone
# redis-server with the seeds' data set. Shows that the load tool is not the bottleneck
# and what the mix measures.
# Usage: scripts/measure-load.sh [connections=32] [seconds=10]
set -euo pipefail
cd "$(dirname "$0")/.."
conc=${1:-32}; secs=${2:-10}
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
cargo build --release --locked -q -p membership -p loadtests
work=$(mktemp -d)
rport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" --daemonize no >/dev/null &
rpid=$!
api_pid=""
trap 'kill $api_pid $rpid 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
REDIS_HOST=127.0.0.1 REDIS_PORT=$rport PORT=0 DATABASE_URL="sqlite://$work/m.db" RUST_LOG=membership=info \
  target/release/membership-api 2> "$work/api.log" &
api_pid=$!
for _ in $(seq 300); do grep -q "listening on" "$work/api.log" && break; sleep 0.1; done
base=$(grep -o 'http://[0-9.:]*' "$work/api.log" | head -1)
route=/api/v1/statistics/system
echo "API $base, redis :$rport; $(nproc) cores shared by the load tool, the API and Redis"
echo "== wrk -t2 -c$conc -d${secs}s $route"
wrk -t2 -c"$conc" -d"${secs}s" --latency "$base$route" | grep -E "50%|99%|Requests/sec"
echo "== loadtest (goose) --only $route --users $conc --run-time $secs"
target/release/loadtest --host "$base" --only "$route" --users "$conc" --hatch-rate 1000 --run-time "$secs" | grep -v "hatched"
echo "== loadtest (goose) scenario mix: --users $conc --writer-percent 5 --run-time $secs"
target/release/loadtest --host "$base" --users "$conc" --hatch-rate 1000 --run-time "$secs" --writer-percent 5 --json "${LOAD_JSON:-/dev/null}"
