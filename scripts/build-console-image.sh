#!/usr/bin/env bash
# Builds the console image redis-harness/console:offline FROM scratch: this tree's
# redis-harness binary (release, built here first; a no-op when it is fresh), the shared
# libraries it links, /etc/passwd and an empty /tmp. It runs `redis-harness console ...`:
# the docker backend's commander container and docker/compose.yaml's `commander` service.
# Labelled with the harness version and the sha256 of the binary it holds.
# scripts/build-offline-image.sh calls it after the Redis image.
# Usage: scripts/build-console-image.sh [image-tag]
set -euo pipefail
image=${1:-redis-harness/console:offline}
cd "$(dirname "$0")/.."
command -v docker >/dev/null || { echo "build-console-image: docker is not installed" >&2; exit 1; }
docker info >/dev/null 2>&1 || { echo "build-console-image: no Docker engine answers (is dockerd running?)" >&2; exit 1; }
command -v cargo >/dev/null || { echo "build-console-image: cargo is not installed (scripts/setup.sh)" >&2; exit 1; }
cargo build --release --locked --bin redis-harness
target=$(cargo metadata --no-deps --format-version 1 | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
bin="${target:-target}/release/redis-harness"
[ -x "$bin" ] || { echo "build-console-image: $bin was not built" >&2; exit 1; }
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
root="$ctx/root"
mkdir -p "$root/usr/local/bin" "$root/tmp" "$root/etc"
chmod 1777 "$root/tmp"
# Without the debug info of the release profile (line tables: 95 of its 120 MB here);
# symbols stay, so a backtrace still names functions.
if command -v objcopy >/dev/null; then
  objcopy --strip-debug "$bin" "$root/usr/local/bin/redis-harness"
else
  cp -L "$bin" "$root/usr/local/bin/redis-harness"
fi
# The binary and every library the dynamic loader resolves for it, loader included.
for lib in $(ldd "$bin" | grep -o '/[^ )]*'); do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
printf 'root:x:0:0:root:/tmp:/nonexistent\nnobody:x:65534:65534:nobody:/tmp:/nonexistent\n' > "$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
# Compose's Sentinels announce service names: resolve them through the engine's DNS.
printf 'hosts: files dns\n' > "$root/etc/nsswitch.conf"
cp docker/Dockerfile.console "$ctx/Dockerfile"
version=$("$bin" --version | awk '{print $2}')
sha=$(sha256sum "$root/usr/local/bin/redis-harness" | cut -d' ' -f1)
previous=$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)
docker build -t "$image" \
  --label "org.redis-harness.version=$version" \
  --label "org.redis-harness.binary-sha256=$sha" \
  "$ctx" >"$ctx/build.log" 2>&1 || { cat "$ctx/build.log" >&2; exit 1; }
# The image this one replaces, unless a container still uses it.
now=$(docker image inspect -f '{{.Id}}' "$image")
if [ -n "$previous" ] && [ "$previous" != "$now" ]; then docker rmi "$previous" >/dev/null 2>&1 || true; fi
echo "built $image (redis-harness $version, sha256 ${sha:0:12}, $(du -sh "$root" | cut -f1) of files)"
