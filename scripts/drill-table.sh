#!/usr/bin/env bash
# Runs every drill kind of the process backend with --repeat N (default 5), with the
# sentinel-events client model only (scripts/clients-table.sh compares the models), at each given
# down-after-milliseconds (default 1000 5000), writes each report (JSON + Markdown) into
# OUT (default drill-results/), and prints one table of median [min-max] per figure.
# Usage: scripts/drill-table.sh [N] [down-after-ms ...]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-5}; shift || true
downs=("$@"); [ ${#downs[@]} -gt 0 ] || downs=(1000 5000)
out=${OUT:-drill-results}
mkdir -p "$out"
out=$(cd "$out" && pwd)
cargo build --release --locked -q
bin=target/release/redis-harness
kinds=(kill-master pause-master sentinel-failover kill-replica kill-sentinels restart-all pause-sentinel)
cfg="$out/harness.yaml"
printf 'name: table\nrun_dir: %s\nsentinel:\n  failover_timeout_ms: 10000\n' "$out/run" > "$cfg"
status=0
for d in "${downs[@]}"; do
  for k in "${kinds[@]}"; do
    echo "== $k, down-after $d ms, $n runs" >&2
    "$bin" -c "$cfg" drill "$k" --repeat "$n" --down-after-ms "$d" --seed "$d" --client sentinel-events \
      --json "$out/$k-$d.json" --markdown "$out/$k-$d.md" > "$out/$k-$d.txt" 2> "$out/$k-$d.log" || status=$?
    tail -1 "$out/$k-$d.txt" >&2
  done
done
python3 - "$out" "${downs[@]}" <<'PY'
import json, sys, os
out, downs = sys.argv[1], sys.argv[2:]
kinds = ["kill-master","pause-master","sentinel-failover","kill-replica","kill-sentinels","restart-all","pause-sentinel"]
figs = ["detection_ms","promotion_ms","write_unavailable_ms","read_unavailable_ms","lost_acked_writes","lost_acked_percent","unknown_ops","two_masters_ms","rejoin_ms","heal_ms","tilt_events"]
def cell(s):
    if s["median"] is None: return "-"
    f = lambda v: f"{v:.0f}" if abs(v) >= 10 or v == int(v) else f"{v:.1f}"
    return f"{f(s['median'])} [{f(s['min'])}-{f(s['max'])}]" if s["min"] != s["max"] else f(s["median"])
for d in downs:
    print(f"\n### down-after-milliseconds {d} (median [min-max] of the runs; ms unless a count)\n")
    print("| drill | passed | " + " | ".join(figs) + " |")
    print("|---|---|" + "---|" * len(figs))
    for k in kinds:
        p = os.path.join(out, f"{k}-{d}.json")
        if not os.path.exists(p):
            print(f"| {k} | (no report) |" + " |" * len(figs)); continue
        r = json.load(open(p))
        s = {x["name"]: x for x in r["summary"]}
        s.update({x["name"]: x for x in r["clients"][0]["summary"]})
        ok = sum(1 for run in r["runs"] if all(c["passed"] for c in run["checks"]))
        print(f"| {k} | {ok}/{len(r['runs'])} | " + " | ".join(cell(s[f]) for f in figs) + " |")
PY
exit $status
