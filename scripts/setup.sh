#!/usr/bin/env bash
# Installs what redis-harness needs on a fresh machine: redis-server (with its Sentinel
# mode), redis-tools (redis-cli, redis-benchmark), busybox-static (the offline Docker
# image's shell), redis-py (the example drill client), nginx-light and wrk. Idempotent; uses apt-get where it exists and says what to do
# elsewhere.
#
# --browser: also chromium and chromium-driver (chromedriver) for the console's browser
# tests, when apt-get is there and they are missing; without apt-get it only says so
# (those tests then skip, unless REDIS_HARNESS_REQUIRE_BROWSER=1).
set -euo pipefail

browser=0
for arg in "$@"; do
  case "$arg" in
    --browser) browser=1 ;;
    *) echo "setup: unknown option $arg (known: --browser)" >&2; exit 2 ;;
  esac
done

need_redis() {
  ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1 \
    || ! command -v redis-benchmark >/dev/null 2>&1
}

# busybox-static is optional (only the offline image's shell); asked for where apt-get is.
need_apt() {
  command -v apt-get >/dev/null 2>&1 && { need_redis || ! [ -x /bin/busybox ]; }
}

if need_redis || need_apt; then
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    echo "setup: installing redis-server and redis-tools with apt-get"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server redis-tools busybox-static >/dev/null
  else
    echo "setup: redis-server is missing and apt-get is not available." >&2
    echo "       Install Redis >= 6.2 (e.g. 'brew install redis' on macOS) so that" >&2
    echo "       'redis-server' is on PATH, or set 'redis_server:' in harness.yaml." >&2
    exit 1
  fi
fi

# redis-py (>= 8.1, as requirements.txt pins), for the example drill client the tests run
# in a real drill. A failed install is reported, not fatal: that test then fails saying so.
redis_py_ok() {
  python3 -c 'import redis, sys; sys.exit(tuple(map(int, redis.__version__.split(".")[:2])) < (8, 1))' >/dev/null 2>&1
}
if ! redis_py_ok; then
  if command -v python3 >/dev/null 2>&1; then
    echo "setup: installing redis-py with pip (the example drill client)"
    python3 -m pip install -q -r "$(dirname "$0")/../examples/clients/python/requirements.txt" \
      || echo "setup: pip could not install redis-py; the example drill client's test will fail" >&2
  else
    echo "setup: python3 is missing; the example drill client's test will fail." >&2
  fi
fi

# nginx-light: the stale-read test puts nginx's proxy_cache in front of the API (the
# test fails, naming the package, without it); wrk: the scripts that compare the load
# generator with it.
need_nginx() {
  ! { command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; } || ! command -v wrk >/dev/null 2>&1
}
if need_nginx; then
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    echo "setup: installing nginx-light and wrk with apt-get (stale-read test, load scripts)"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nginx-light wrk >/dev/null
  else
    echo "setup: nginx or wrk is missing and apt-get is not available; the stale-read" >&2
    echo "       test through nginx will fail until nginx is on PATH." >&2
  fi
fi

need_browser() {
  [ "$browser" = 1 ] && { ! command -v chromedriver >/dev/null 2>&1 \
    || ! { command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
      || command -v google-chrome >/dev/null 2>&1; }; }
}

if need_browser; then
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    echo "setup: installing chromium and chromium-driver with apt-get (the console's browser tests)"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
  else
    echo "setup: chromium or chromedriver is missing and apt-get is not available; the" >&2
    echo "       console's browser tests will skip (install Chromium and a matching" >&2
    echo "       chromedriver on PATH to run them)." >&2
  fi
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo is missing; install a Rust toolchain (>= 1.88) first." >&2
  exit 1
fi

echo "setup: $(redis-server --version | cut -d' ' -f1-3)"
echo "setup: $(cargo --version)"
if [ "$browser" = 1 ] && command -v chromedriver >/dev/null 2>&1; then
  echo "setup: $(chromedriver --version | cut -d' ' -f1-2)"
fi
