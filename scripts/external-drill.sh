#!/usr/bin/env bash
# Pre-production mode end to end, on this machine: `up` starts a topology (process
# backend) and the harness then reaches it only as an external one, through its
# Sentinels, with hooks that kill a node by its pid (`kill -9`, pid files this script
# writes) and restore it from its own config (`redis-server CONF --daemonize yes`).
# Runs a dry run, then each given drill (default kill-master sentinel-failover) with
# --repeat N (default 3), and the same drills on a harness-started topology of the same
# shape for comparison. Reports go to OUT (default external-results/).
# Usage: scripts/external-drill.sh [N] [drill ...]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-3}; shift || true
drills=("$@"); [ ${#drills[@]} -gt 0 ] || drills=(kill-master sentinel-failover)
out=${OUT:-external-results}
mkdir -p "$out"
out=$(cd "$out" && pwd)
bin=${BIN:-target/release/redis-harness}
[ -x "$bin" ] || cargo build --release --locked -q
command -v redis-cli >/dev/null || { echo "redis-cli is missing (apt-get install redis-tools)" >&2; exit 1; }
own="$out/own.yaml"
printf 'name: ext-target\nrun_dir: %s\nsentinel:\n  down_after_ms: 1000\n  failover_timeout_ms: 10000\n' "$out/run" > "$own"
pids="$out/pids"; confs="$out/confs"
rm -rf "$pids" "$confs"; mkdir -p "$pids" "$confs"
cleanup() {
  # Nodes the restore hook started are not in the state file: kill them by pid file.
  for f in "$pids"/*; do [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null || true; done
  "$bin" -c "$own" down >/dev/null 2>&1 || true
}
trap cleanup EXIT
"$bin" -c "$own" up --json > "$out/up.json"
# Each data node: its pid (INFO server) and its config file, by port.
python3 - "$out/up.json" "$out/run/ext-target" "$pids" "$confs" <<'PY'
import json, os, subprocess, sys
status, topo, pids, confs = sys.argv[1:]
for n in json.load(open(status))["nodes"]:
    if n["kind"] == "sentinel":
        continue
    host, port = n["address"].rsplit(":", 1)
    info = subprocess.run(["redis-cli", "-h", host, "-p", port, "info", "server"], capture_output=True, text=True).stdout
    pid = next(l.split(":")[1].strip() for l in info.splitlines() if l.startswith("process_id:"))
    open(os.path.join(pids, port), "w").write(pid)
    os.symlink(os.path.join(topo, n["name"], "redis.conf"), os.path.join(confs, port + ".conf"))
PY
sentinels=$(python3 -c 'import json,sys; print(", ".join(n["address"] for n in json.load(open(sys.argv[1]))["nodes"] if n["kind"]=="sentinel"))' "$out/up.json")
ext="$out/external.yaml"
cat > "$ext" <<YAML
name: ext-drill
run_dir: $out/run
topology:
  external:
    sentinels: [$sentinels]
    master_name: mymaster
    hooks:
      kill: kill -9 "\$(cat $pids/{port})"
      restore: redis-server $confs/{port}.conf --daemonize yes --pidfile $pids/{port}
YAML
echo "== status of the external topology" >&2
"$bin" -c "$ext" status | tail -4
for k in "${drills[@]}"; do
  echo "== $k: dry run" >&2
  "$bin" -c "$ext" drill "$k" --dry-run | tee "$out/$k-dry-run.txt"
  echo "== $k on the external topology, $n runs" >&2
  "$bin" -c "$ext" drill "$k" --repeat "$n" --seed 7 --client sentinel-events --confirm mymaster \
    --json "$out/$k-external.json" --markdown "$out/$k-external.md" --html "$out/$k-external.html" | tee "$out/$k-external.txt" || true
  echo "== $k on a harness-started topology of the same shape, $n runs" >&2
  "$bin" -c "$own" drill "$k" --repeat "$n" --seed 7 --client sentinel-events --down-after-ms 1000 \
    --json "$out/$k-own.json" --markdown "$out/$k-own.md" > "$out/$k-own.txt" || true
done
python3 - "$out" "${drills[@]}" <<'PY'
import json, sys
out, drills = sys.argv[1], sys.argv[2:]
def med(rep, name, client=False):
    src = rep["clients"][0]["summary"] if client else rep["summary"]
    s = next(x for x in src if x["name"] == name)
    f = lambda v: "-" if v is None else f"{v:.0f}"
    return f"{f(s['median'])} [{f(s['min'])}-{f(s['max'])}]"
print("| drill | topology | promotion ms | write outage ms | lost acked | keys written / removed / left |")
print("|---|---|---|---|---|---|")
for k in drills:
    for where in ("external", "own"):
        r = json.load(open(f"{out}/{k}-{where}.json"))
        c = [run.get("cleanup") or {} for run in r["runs"]]
        keys = ", ".join(f"{x.get('found')}/{x.get('removed')}/{x.get('left')}" for x in c)
        print(f"| {k} | {where} | {med(r, 'promotion_ms')} | {med(r, 'write_unavailable_ms', True)} | {med(r, 'lost_acked_writes', True)} | {keys} |")
PY
