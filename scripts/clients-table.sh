#!/usr/bin/env bash
# Every client model, and the redis-py example client, side by side through the same
# faults: kill-master, pause-master and sentinel-failover on the process backend
# (--repeat N, default 5) and partition on the docker backend (--repeat P, default 3) at
# each given down-after-milliseconds for the partition (default 1000 5000; the others run
# at 1000). Writes each report into OUT (default clients-results/) and prints one Markdown
# table per drill: median [min-max] per client and figure.
# `switch-master` is `sentinel-events` without the move at promotion: the pair is the
# before/after of that change, measured in the same faults.
# Usage: scripts/clients-table.sh [N] [P] [down-after-ms ...]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-5}; shift || true
p=${1:-3}; shift || true
downs=("$@"); [ ${#downs[@]} -gt 0 ] || downs=(1000 5000)
out=${OUT:-clients-results}
mkdir -p "$out"
out=$(cd "$out" && pwd)
python3 -c 'import redis' 2>/dev/null || python3 -m pip install -q -r examples/clients/python/requirements.txt
cargo build --release --locked -q
bin=target/release/redis-harness
clients=(--client sentinel-events --client switch-master --client reresolve-on-error
  --client fixed-address --client "redis-py=python3 examples/clients/python/drill_client.py")
printf 'name: clients\nrun_dir: %s\nsentinel:\n  failover_timeout_ms: 10000\n' "$out/run" > "$out/process.yaml"
printf 'name: clients-docker\nrun_dir: %s\nbackend: docker\ndocker:\n  image: redis-harness/redis:offline\n  console: false\nsentinel:\n  failover_timeout_ms: 10000\n' \
  "$out/run" > "$out/docker.yaml"
reports=()
for k in kill-master pause-master sentinel-failover; do
  echo "== $k, down-after 1000 ms, $n runs" >&2
  "$bin" -c "$out/process.yaml" drill "$k" --repeat "$n" --down-after-ms 1000 --seed 1000 "${clients[@]}" \
    --json "$out/$k-1000.json" --markdown "$out/$k-1000.md" > "$out/$k-1000.txt" 2> "$out/$k-1000.log" || true
  tail -1 "$out/$k-1000.txt" >&2
  reports+=("$out/$k-1000.json")
done
if docker info >/dev/null 2>&1; then
  docker image inspect redis-harness/redis:offline >/dev/null 2>&1 || scripts/build-offline-image.sh
  for d in "${downs[@]}"; do
    echo "== partition, down-after $d ms, $p runs" >&2
    "$bin" -c "$out/docker.yaml" drill partition --repeat "$p" --down-after-ms "$d" --seed "$d" "${clients[@]}" \
      --json "$out/partition-$d.json" --markdown "$out/partition-$d.md" > "$out/partition-$d.txt" 2> "$out/partition-$d.log" || true
    tail -1 "$out/partition-$d.txt" >&2
    reports+=("$out/partition-$d.json")
  done
else
  echo "no Docker engine: partition skipped" >&2
fi
python3 - "${reports[@]}" <<'PY'
import json, sys
figs = ["acked_writes", "lost_acked_writes", "lost_acked_percent", "write_unavailable_ms", "failed_ops", "unknown_ops"]
def cell(s):
    if s["median"] is None: return "-"
    f = lambda v: f"{v:.0f}" if abs(v) >= 10 or v == int(v) else f"{v:.1f}"
    return f"{f(s['median'])} [{f(s['min'])}-{f(s['max'])}]" if s["min"] != s["max"] else f(s["median"])
for path in sys.argv[1:]:
    try:
        r = json.load(open(path))
    except FileNotFoundError:
        print(f"\n{path}: no report (see its .log)"); continue
    passed = sum(1 for run in r["runs"] if all(c["passed"] for c in run["checks"]))
    promo = next(s for s in r["summary"] if s["name"] == "promotion_ms")
    print(f"\n### {r['kind']}, down-after {r['setup']['down_after_ms']} ms: {len(r['runs'])} runs, "
          f"{passed} passed every check; promotion_ms {cell(promo)}\n")
    print("| client | " + " | ".join(figs) + " |")
    print("|---|" + "---|" * len(figs))
    for c in r["clients"]:
        s = {x["name"]: x for x in c["summary"]}
        print(f"| {c['name']} | " + " | ".join(cell(s[f]) for f in figs) + " |")
PY
