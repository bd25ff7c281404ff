#!/usr/bin/env bash
# Measures the web console on real components, with a release build of the console and
# a headless Chromium (the two #[ignore]d tests in tests/console.rs):
#
#  (a) role change -> Topology page: FAILOVERS x SENTINEL FAILOVER on a process topology
#      (down-after 1 s, the console's default 250 ms refresh). The test polls ROLE on the
#      replicas every ~2 ms and records when the promoted one first answers master; the
#      page records in window.consoleLog when it shows a new set of masters. Per run and
#      the median.
#  (b) the console's RSS (VmRSS) idle, and its peak (VmHWM) while browsing KEYS keys:
#      PAGES pages of 1,000 keys following "next page", then 5 key views.
#
# Usage: scripts/measure-console.sh [FAILOVERS (5)] [KEYS (1000000)] [PAGES (50)]
set -euo pipefail
cd "$(dirname "$0")/.."

failovers=${1:-5}
keys=${2:-1000000}
pages=${3:-50}
echo "command: scripts/measure-console.sh $failovers $keys $pages"

./scripts/setup.sh --browser
cargo build --release --locked --bin redis-harness
target=${CARGO_TARGET_DIR:-target}
export REDIS_HARNESS_CONSOLE_BIN
REDIS_HARNESS_CONSOLE_BIN="$(cd "$target/release" && pwd)/redis-harness"
export CONSOLE_MEASURE_FAILOVERS=$failovers CONSOLE_MEASURE_KEYS=$keys CONSOLE_MEASURE_PAGES=$pages
export REDIS_HARNESS_REQUIRE_BROWSER=1
# One at a time: each brings up its own topology and browser on this machine's cores.
cargo test --locked --test console -- --ignored --nocapture --test-threads=1 measure_
