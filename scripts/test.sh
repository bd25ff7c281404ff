#!/usr/bin/env bash
# Runs the whole test suite: unit tests and integration tests against real redis-server
# processes on free loopback ports. Installs redis-server first when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo test --workspace --locked "$@"
