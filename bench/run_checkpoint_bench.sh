#!/usr/bin/env bash
# What durable sessions cost: the benchmark model (bench/make_bench_models,
# float32) streamed by --sessions sessions (default 10000), one step a
# message, against a server without a store and one with --state-dir and a
# 1 s --checkpoint-interval, in alternating rounds (default 3 of each).
# Prints, per round, the steps/s the load generator saw, the server's CPU
# seconds per 1000 steps, and the checkpoint figures from /metrics; then the
# median throughput ratio (with store / without), and the ratio of each
# round's pair (memory, then state-dir) with their median.
#
#   tools/build.sh && bench/run_checkpoint_bench.sh [--sessions N]
#       [--duration S] [--rounds R] [--sync normal|full]
#
# Server and load generator share this machine's cores. Everything stays on
# 127.0.0.1; the store lives under build/checkpoint-bench/ and is removed
# before each round.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}
sessions=10000
duration=20
rounds=3
sync=normal
while [[ $# -gt 0 ]]; do
  case $1 in
    --sessions) sessions=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --sync) sync=$2; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "run_checkpoint_bench: unknown argument $1" >&2; exit 2 ;;
  esac
done
for bin in lstm-server lstm-client bench/make_bench_models; do
  [[ -x "$build/$bin" ]] || { echo "run_checkpoint_bench: $build/$bin missing; run tools/build.sh" >&2; exit 1; }
done

work=$build/checkpoint-bench
rm -rf "$work" && mkdir -p "$work"
"$build/bench/make_bench_models" "$work/models" >/dev/null
results=$work/results.jsonl
server_pid=

stop_server() {
  if [[ -n "$server_pid" ]]; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
  fi
}
trap stop_server EXIT

# The server's user+system CPU seconds so far.
server_cpu() {
  awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$server_pid/stat"
}

# CPU seconds so far of the server's store threads (lstm-store writes the
# database, lstm-checkpoint gathers each round's records).
store_cpu() {
  local hz; hz=$(getconf CLK_TCK)
  cat /proc/"$server_pid"/task/*/stat 2>/dev/null |
    awk -v hz="$hz" '/\((lstm-store|lstm-checkpoint)\)/ {
      sub(/^.*\) /, ""); t += $12 + $13 } END {print t / hz}'
}

# round LABEL [lstm-server flags...]: one measured run, one JSON line.
round() {
  local label=$1; shift
  rm -rf "$work/state" "$work/port"
  "$build/lstm-server" --model-repo "$work/models" --listen 127.0.0.1:0 \
    --port-file "$work/port" --metrics-listen 127.0.0.1:0 --log-level info \
    --max-sessions $((sessions + 100)) "$@" >>"$work/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 100); do [[ -s "$work/port" ]] && break; sleep 0.1; done
  [[ -s "$work/port" ]] || { echo "run_checkpoint_bench: server did not start" >&2; exit 1; }
  local target=127.0.0.1:$(cat "$work/port")
  echo "run_checkpoint_bench: $label: $sessions sessions, ${duration} s" >&2
  local cpu0 cpu1 store0 store1 out
  cpu0=$(server_cpu)
  store0=$(store_cpu)
  out=$("$build/lstm-client" --target "$target" --timeout 60 bench --json \
          --model bench_lstm --sessions "$sessions" --chunk 1 \
          --duration "$duration" 2>/dev/null)
  cpu1=$(server_cpu)
  store1=$(store_cpu)
  local metrics_port
  metrics_port=$(grep -o 'metrics on http://[^ ]*' "$work/server.log" | tail -1 | sed 's/.*://; s/\/metrics//')
  local metrics=""
  if [[ -n "$metrics_port" ]]; then
    metrics=$(curl -s "http://127.0.0.1:$metrics_port/metrics" || true)
  fi
  stop_server
  /usr/bin/python3 - "$label" "$cpu0" "$cpu1" "$out" "$metrics" "$store0" "$store1" >>"$results" <<'EOF'
import json, sys
label, cpu0, cpu1, out, metrics, store0, store1 = sys.argv[1:8]
r = json.loads(out)
steps = r["steps_per_s"] * r["duration_s"]
row = {"label": label, "steps_per_s": r["steps_per_s"],
       "server_cpu_s": float(cpu1) - float(cpu0),
       "errors": r["errors"], "sessions_with_no_steps": r["sessions_with_no_steps"]}
row["server_cpu_ms_per_1000_steps"] = 1e6 * row["server_cpu_s"] / max(steps, 1)
row["store_cpu_s"] = float(store1) - float(store0)
row["duration_s"] = r["duration_s"]
for line in metrics.splitlines():
    if line.startswith("#"):
        continue
    for name in ("lstmserve_checkpoints_total", "lstmserve_checkpoint_records_total",
                 "lstmserve_checkpoint_written_bytes_total", "lstmserve_checkpoint_failures_total"):
        if line.startswith(name + " ") or line.startswith(name + "{"):
            row[name] = row.get(name, 0) + float(line.split()[-1])
print(json.dumps(row))
EOF
}

for i in $(seq "$rounds"); do
  round memory
  round "state-dir" --state-dir "$work/state" --checkpoint-interval 1 --state-sync "$sync"
done

/usr/bin/python3 - "$results" "$sessions" "$sync" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(f"| round | store | steps/s | server CPU ms / 1000 steps | store threads' CPU s (µs per record) | checkpoints | records written | MB written | errors |")
print("|---|---|---|---|---|---|---|---|---|")
for i, r in enumerate(rows):
    mb = r.get("lstmserve_checkpoint_written_bytes_total", 0) / 1e6
    records = r.get("lstmserve_checkpoint_records_total", 0)
    per = f" ({1e6 * r['store_cpu_s'] / records:.0f})" if records else ""
    print(f"| {i // 2 + 1} | {r['label']} | {r['steps_per_s']:.0f} | "
          f"{r['server_cpu_ms_per_1000_steps']:.1f} | {r['store_cpu_s']:.1f}{per} | {r.get('lstmserve_checkpoints_total', 0):.0f} | "
          f"{r.get('lstmserve_checkpoint_records_total', 0):.0f} | {mb:.0f} | {r['errors'] or '-'} |")
mem = statistics.median(r["steps_per_s"] for r in rows if r["label"] == "memory")
sto = statistics.median(r["steps_per_s"] for r in rows if r["label"] == "state-dir")
print()
print(f"{sys.argv[2]} sessions, --state-sync {sys.argv[3]}: median steps/s "
      f"{sto:.0f} with --state-dir against {mem:.0f} without: {sto / mem:.2f}x")
# Each state-dir round against the memory round just before it: on a noisy
# host the ratio of medians can pair a fast round with a slow one.
pairs = [b["steps_per_s"] / a["steps_per_s"] for a, b in zip(rows[::2], rows[1::2])]
print("round by round: " + ", ".join(f"{p:.2f}" for p in pairs) +
      f"; median {statistics.median(pairs):.2f}x")
EOF
