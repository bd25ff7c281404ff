#!/usr/bin/env bash
# Builds the offline images, FROM scratch, for machines whose Docker engine has no registry:
# redis-harness/redis:offline from this host's redis-server and the shared libraries it
# links (the same binary serves data nodes and Sentinels, `redis-server CONF --sentinel`;
# a static busybox, when the host has one, provides sh), then the console image
# redis-harness/console:offline from this tree's harness binary
# (scripts/build-console-image.sh).
# Usage: scripts/build-offline-image.sh [redis-image-tag [console-image-tag]]
set -euo pipefail
image=${1:-redis-harness/redis:offline}
console_image=${2:-redis-harness/console:offline}
command -v docker >/dev/null || { echo "build-offline-image: docker is not installed" >&2; exit 1; }
docker info >/dev/null 2>&1 || { echo "build-offline-image: no Docker engine answers (is dockerd running?)" >&2; exit 1; }
bin=$(command -v redis-server) || { echo "build-offline-image: redis-server is not installed (scripts/setup.sh)" >&2; exit 1; }
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
root="$ctx/root"
mkdir -p "$root/usr/local/bin" "$root/data" "$root/tmp" "$root/etc"
cp -L "$bin" "$root/usr/local/bin/redis-server"
# The binary and every library the dynamic loader resolves for it, loader included.
for lib in $(ldd "$bin" | grep -o '/[^ )]*'); do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
# A static busybox, when installed (Debian: busybox-static), gives the image a POSIX sh so
# entrypoints written for the official image (docker/compose.yaml's Sentinels) work too.
if [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1; then
  mkdir -p "$root/bin"
  cp /bin/busybox "$root/bin/busybox"
  for tool in sh cat printf echo ls; do ln -s busybox "$root/bin/$tool"; done
fi
printf 'root:x:0:0:root:/data:/bin/sh\n' > "$root/etc/passwd"
printf 'root:x:0:\n' > "$root/etc/group"
cp "$(dirname "$0")/../docker/Dockerfile.offline" "$ctx/Dockerfile"
version=$("$bin" --version | grep -o 'v=[0-9.]*' | cut -d= -f2)
docker build -t "$image" --label "org.redis-harness.redis-version=$version" "$ctx" >"$ctx/build.log" 2>&1 || { cat "$ctx/build.log" >&2; exit 1; }
echo "built $image (redis-server $version from $bin, $(du -sh "$root" | cut -f1) of files)"
"$(dirname "$0")/build-console-image.sh" "$console_image"
