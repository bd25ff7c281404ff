#!/usr/bin/env bash
# How close our load generator (loadtest: goose users recording every request in µs)
# comes to wrk on one cached route, `/api/v1/statistics/system`, against the release
# membership API on a standalone redis-server (no persistence), both on loopback ports
# chosen free. For each concurrency (1, then 8) it alternates wrk and loadtest for ROUNDS
# rounds of SECONDS each (so both see the same machine state, including whatever else the
# machine is doing), then prints the medians and goose / wrk.
#
# wrk's threads, for fairness: loadtest runs one tokio runtime with a worker per core, so
# it may use every core; wrk may use as many threads as it has connections.
# - c=1: wrk -t1 only (a second thread would have no connection).
# - c=8: wrk -t1 and wrk -t2 are both measured; both are fair (goose may use two threads
#   too), so the ratio is taken against the better of the two medians. More than 2 threads
#   would only contend for the 2 cores shared with the API and Redis.
#
# Usage: scripts/load-vs-wrk.sh [seconds=10] [rounds=3]
# Environment:
#   LOADTEST_BIN     the loadtest binary to measure (default: the release build made here)
#   LOADTEST_BEFORE  a second loadtest binary (e.g. built from a base commit) measured in
#                    the same rounds, for a before/after comparison in one run
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}; rounds=${2:-3}
route=/api/v1/statistics/system
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
command -v redis-server >/dev/null || { echo "redis-server is needed" >&2; exit 1; }
cargo build --release --locked -q -p membership -p loadtests
rel=${CARGO_TARGET_DIR:-target}/release
bin=${LOADTEST_BIN:-$rel/loadtest}
before=${LOADTEST_BEFORE:-}
work=$(mktemp -d /tmp/load-vs-wrk.XXXXXX)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rpid=""; api_pid=""
cleanup() {
  # Only what this script started, by pid.
  [ -n "$api_pid" ] && kill "$api_pid" 2>/dev/null
  [ -n "$rpid" ] && kill "$rpid" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
rport=$(free_port)
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" \
  --daemonize no >/dev/null &
rpid=$!
for _ in $(seq 100); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.05; done
HOST=127.0.0.1 REDIS_HOST=127.0.0.1 REDIS_PORT=$rport PORT=0 DATABASE_URL="sqlite://$work/m.db" \
  RUST_LOG=membership=info "$rel/membership-api" 2> "$work/api.log" &
api_pid=$!
for _ in $(seq 300); do grep -q "listening on" "$work/api.log" && break; sleep 0.1; done
base=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$work/api.log" | head -1)
[ -n "$base" ] || { echo "the API did not start:" >&2; cat "$work/api.log" >&2; exit 1; }
echo "API $base (release), redis-server :$rport; $(nproc) cores shared by the load tool, the API and Redis"
echo "loadtest: $bin${before:+; before: $before}"
echo "${secs}s per measurement, $rounds rounds, alternating; $(date -u +%FT%TZ), $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- loadtests || echo '+changes')"

# Warm the route (fills the cache) and the API's connection pools.
wrk -t1 -c8 -d2s "$base$route" >/dev/null

wrk_rps() { # threads connections
  wrk -t"$1" -c"$2" -d"${secs}s" "$base$route" | awk '/Requests\/sec/ {printf "%.0f", $2}'
}
goose_rps() { # binary users
  local out
  out=$("$1" --host "$base" --only "$route" --users "$2" --hatch-rate 1000 --run-time "$secs" 2>&1) \
    || { echo "loadtest failed: $out" >&2; exit 1; }
  # "closed model: N requests in T s = R req/s, E errors, ..."
  local rps errs
  rps=$(sed -n 's/.* = \([0-9.]*\) req\/s, \([0-9]*\) errors.*/\1/p' <<<"$out" | head -1)
  errs=$(sed -n 's/.* = \([0-9.]*\) req\/s, \([0-9]*\) errors.*/\2/p' <<<"$out" | head -1)
  [ -n "$rps" ] || { echo "no throughput in loadtest's output: $out" >&2; exit 1; }
  [ "$errs" = 0 ] || echo "  (loadtest reported $errs errors)" >&2
  printf "%.0f" "$rps"
}
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2)}'; }

declare -A res
for c in 1 8; do
  for r in $(seq "$rounds"); do
    line="c=$c round $r:"
    v=$(wrk_rps 1 "$c"); res[$c,wrk1]+=" $v"; line+=" wrk-t1 $v"
    if [ "$c" -ge 2 ]; then
      v=$(wrk_rps 2 "$c"); res[$c,wrk2]+=" $v"; line+=" wrk-t2 $v"
    fi
    v=$(goose_rps "$bin" "$c"); res[$c,goose]+=" $v"; line+=" goose $v"
    if [ -n "$before" ]; then
      v=$(goose_rps "$before" "$c"); res[$c,before]+=" $v"; line+=" goose-before $v"
    fi
    echo "$line"
  done
done

echo
hdr="conc | wrk -t1 | wrk -t2 | wrk (best fair) | goose | goose/wrk"
[ -n "$before" ] && hdr+=" | goose before | before/wrk"
echo "medians of $rounds rounds, req/s"
echo "$hdr"
for c in 1 8; do
  w1=$(median <<<"${res[$c,wrk1]}")
  w2=-; best=$w1
  if [ "$c" -ge 2 ]; then
    w2=$(median <<<"${res[$c,wrk2]}")
    [ "$w2" -gt "$best" ] && best=$w2
  fi
  g=$(median <<<"${res[$c,goose]}")
  row="$c | $w1 | $w2 | $best | $g | $(awk -v g="$g" -v w="$best" 'BEGIN {printf "%.2f", g / w}')"
  if [ -n "$before" ]; then
    b=$(median <<<"${res[$c,before]}")
    row+=" | $b | $(awk -v g="$b" -v w="$best" 'BEGIN {printf "%.2f", g / w}')"
  fi
  echo "$row"
done
