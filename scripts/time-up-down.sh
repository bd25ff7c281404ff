#!/usr/bin/env bash
# Times `redis-harness up` (to readiness) and `down` (to full teardown), N runs each
# (default 5), wall clock of the whole command, and prints every run and the median.
# Usage: scripts/time-up-down.sh [N] [extra args for `up`, e.g. --backend docker]
# The docker backend uses redis-harness/redis:offline and its commander
# redis-harness/console:offline (both built when missing); DOCKER_CONSOLE=false times it
# without the commander.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-5}; shift || true
bin=${CARGO_TARGET_DIR:-target}/release/redis-harness
cargo build --release --locked -q
work=$(mktemp -d)
trap '"$bin" -c "$work/h.yaml" down --all >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
printf 'name: timing\nrun_dir: %s\ndocker:\n  image: redis-harness/redis:offline\n  console: %s\n' \
  "$work/run" "${DOCKER_CONSOLE:-true}" > "$work/h.yaml"
if [[ " $* " == *" docker "* ]] && ! docker image inspect redis-harness/redis:offline redis-harness/console:offline >/dev/null 2>&1; then
  scripts/build-offline-image.sh
fi
ms() { date +%s%3N; }
ups=(); downs=()
for i in $(seq "$n"); do
  t0=$(ms); "$bin" -c "$work/h.yaml" up "$@" >/dev/null 2>&1; t1=$(ms)
  "$bin" -c "$work/h.yaml" down >/dev/null 2>&1; t2=$(ms)
  ups+=($((t1 - t0))); downs+=($((t2 - t1)))
  echo "run $i: up ${ups[-1]} ms, down ${downs[-1]} ms"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
echo "median of $n: up $(median "${ups[@]}") ms, down $(median "${downs[@]}") ms"
