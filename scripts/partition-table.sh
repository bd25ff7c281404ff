#!/usr/bin/env bash
# The Jepsen reproduction on the docker backend, with the sentinel-events client model (scripts/
# clients-table.sh compares the models): the partition drill N times (default 3)
# with asynchronous replication and no min-replicas-to-write ("unsafe"), and with
# min-replicas-to-write 1 and min-replicas-max-lag 1 ("bounded"), at each given
# down-after-milliseconds (default 1000 5000). Writes each report into OUT (default
# partition-results/) and prints one table of median [min-max] per figure.
# Usage: scripts/partition-table.sh [N] [down-after-ms ...]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-3}; shift || true
downs=("$@"); [ ${#downs[@]} -gt 0 ] || downs=(1000 5000)
out=${OUT:-partition-results}
mkdir -p "$out"
out=$(cd "$out" && pwd)
cargo build --release --locked -q
bin=target/release/redis-harness
docker image inspect redis-harness/redis:offline >/dev/null 2>&1 || scripts/build-offline-image.sh
for mode in unsafe bounded; do
  repl=""
  [ "$mode" = bounded ] && repl=$'replication:\n  min_replicas_to_write: 1\n  min_replicas_max_lag: 1\n'
  printf 'name: part-%s\nrun_dir: %s\nbackend: docker\ndocker:\n  image: redis-harness/redis:offline\nsentinel:\n  failover_timeout_ms: 10000\n%s' \
    "$mode" "$out/run" "$repl" > "$out/$mode.yaml"
  for d in "${downs[@]}"; do
    echo "== partition, $mode, down-after $d ms, $n runs" >&2
    "$bin" -c "$out/$mode.yaml" drill partition --repeat "$n" --down-after-ms "$d" --seed "$d" --client sentinel-events \
      --json "$out/$mode-$d.json" --markdown "$out/$mode-$d.md" > "$out/$mode-$d.txt" 2> "$out/$mode-$d.log" || true
    tail -1 "$out/$mode-$d.txt" >&2
  done
done
python3 - "$out" "${downs[@]}" <<'PY'
import json, sys
out, downs = sys.argv[1], sys.argv[2:]
figs = ["promotion_ms", "write_unavailable_ms", "acked_writes", "lost_acked_writes",
        "lost_acked_percent", "failed_ops", "unknown_ops", "two_masters_ms"]
def cell(s):
    if s["median"] is None: return "-"
    f = lambda v: f"{v:.0f}" if abs(v) >= 10 or v == int(v) else f"{v:.1f}"
    return f"{f(s['median'])} [{f(s['min'])}-{f(s['max'])}]" if s["min"] != s["max"] else f(s["median"])
print("| config | down-after ms | passed | " + " | ".join(figs) + " |")
print("|---|---|---|" + "---|" * len(figs))
for mode in ["unsafe", "bounded"]:
    for d in downs:
        r = json.load(open(f"{out}/{mode}-{d}.json"))
        s = {x["name"]: x for x in r["summary"]}
        s.update({x["name"]: x for x in r["clients"][0]["summary"]})
        passed = sum(1 for run in r["runs"] if all(c["passed"] for c in run["checks"]))
        print(f"| {mode} | {d} | {passed}/{len(r['runs'])} | " + " | ".join(cell(s[f]) for f in figs) + " |")
PY
