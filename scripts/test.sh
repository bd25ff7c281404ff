#!/usr/bin/env bash
# Runs the whole test suite: unit tests and integration tests against real redis-server
# processes on free loopback ports, and the console's tests in a headless Chromium.
# Installs redis-server, Chromium and chromedriver first when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh --browser
cargo test --workspace --locked "$@"
