#!/usr/bin/env bash
# The server core's benchmark, side by side against another lstm-server
# binary (a build of an earlier commit), in alternating rounds on loopback:
#
#   - 64 streaming sessions, one step per message, on the tiny (1x1) model
#     and the benchmark-shape model: steps/s, and the server's CPU per step
#     read from /proc/PID/stat over the run;
#   - one session, one step per message: p50 latency;
#   - the echo server (bench/echo_server: the same messages, no compute):
#     the transport's steps/s and p50;
#   - resident memory per session at 10,000 sessions of the benchmark model,
#     after each has taken a step;
#   - a client that writes for 30 s and never reads (bench/stream_flood):
#     the server's resident memory, sampled every second.
#
#   bench/run_core_bench.sh BASE_LSTM_SERVER [--rounds N] [--duration S]
#
# Prints markdown tables; raw lines go to build/core-bench/results.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}
base=${1:?usage: run_core_bench.sh BASE_LSTM_SERVER [--rounds N] [--duration S]}
shift
rounds=3 duration=4
while [[ $# -gt 0 ]]; do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    *) echo "run_core_bench: unknown argument $1" >&2; exit 2 ;;
  esac
done
new=$build/lstm-server
work=$build/core-bench
rm -rf "$work" && mkdir -p "$work"
"$build/bench/make_bench_models" "$work/models" >/dev/null
# Only the float32 models are compared: an older server cannot read the
# bf16/int8 files (and refuses a repository it cannot read whole).
rm -rf "$work/models/bench_lstm_bf16" "$work/models/bench_lstm_int8"
results=$work/results.jsonl
pid=

stop() {
  if [[ -n "$pid" ]]; then
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=
  fi
}
trap stop EXIT

# start BINARY [flags...]: an lstm-server or the echo server; sets $pid
# and $target.
start() {
  stop
  rm -f "$work/port"
  local bin=$1; shift
  "$bin" --listen 127.0.0.1:0 --port-file "$work/port" "$@" >>"$work/server.log" 2>&1 &
  pid=$!
  for _ in $(seq 200); do [[ -s "$work/port" ]] && break; sleep 0.05; done
  target=127.0.0.1:$(cat "$work/port")
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

# run LABEL SERVER_KIND bench-args...: one bench run with the server's CPU
# and the load generator's (its whole process: setup, window and drain).
run() {
  local label=$1 kind=$2; shift 2
  local t0; t0=$(cpu_ticks "$pid")
  local out; out=$(/usr/bin/python3 -c '
import resource, subprocess, sys
p = subprocess.run(sys.argv[1:], capture_output=True, text=True)
u = resource.getrusage(resource.RUSAGE_CHILDREN)
print(p.stdout.strip()); print(u.ru_utime + u.ru_stime)' \
    "$build/lstm-client" --target "$target" bench --json --duration "$duration" "$@")
  local t1; t1=$(cpu_ticks "$pid")
  /usr/bin/python3 - "$label" "$kind" "$((t1 - t0))" "$(getconf CLK_TCK)" "$out" >>"$results" <<'PY'
import json, sys
label, kind, ticks, hz, out = sys.argv[1:6]
raw, client_cpu = out.rsplit("\n", 1)
r = json.loads(raw)
steps = r["steps_per_s"] * r["duration_s"]
r.update(label=label, kind=kind,
         server_cpu_us_per_step=(int(ticks) / int(hz) * 1e6 / steps) if steps else None,
         client_cpu_us_per_step=(float(client_cpu) * 1e6 / steps) if steps else None)
print(json.dumps(r))
PY
}

for round in $(seq "$rounds"); do
  for kind in base new; do
    bin=$base; [[ $kind == new ]] && bin=$new
    start "$bin" --model-repo "$work/models" --log-level warn
    echo "run_core_bench: round $round $kind" >&2
    run tiny64 "$kind" --model tiny --sessions 64 --chunk 1
    run bench64 "$kind" --model bench_lstm --sessions 64 --chunk 1
    run bench1 "$kind" --model bench_lstm --sessions 1 --chunk 1
  done
  # The transport alone: the same message sizes, no compute.
  start "$build/bench/echo_server" --output-size 1 --input-size 1
  run tiny64 echo --model tiny --sessions 64 --chunk 1
  start "$build/bench/echo_server" --output-size 256 --input-size 64
  run bench1 echo --model bench_lstm --sessions 1 --chunk 1
  run bench64 echo --model bench_lstm --sessions 64 --chunk 1
done

# Memory per session: 10,000 sessions, each takes about one step.
for kind in base new; do
  bin=$base; [[ $kind == new ]] && bin=$new
  start "$bin" --model-repo "$work/models" --log-level warn --max-sessions 20000
  "$build/lstm-client" --target "$target" bench --json --model bench_lstm --sessions 50 --duration 1 >/dev/null 2>&1
  before=$(rss_kb "$pid")
  "$build/lstm-client" --target "$target" bench --json --model bench_lstm --sessions 10000 \
    --rate 0.25 --duration 8 >"$work/mem_$kind.json" 2>/dev/null &
  bench_pid=$!
  sleep 6  # all sessions open, each has stepped at least once
  during=$(rss_kb "$pid")
  wait "$bench_pid"
  echo "{\"label\": \"memory\", \"kind\": \"$kind\", \"rss_before_kb\": $before, \"rss_10k_kb\": $during}" >>"$results"
done

# A client that never reads, 30 s.
for kind in new base; do
  bin=$base; [[ $kind == new ]] && bin=$new
  start "$bin" --model-repo "$work/models" --log-level warn
  "$build/bench/stream_flood" --target "$target" --model bench_lstm --input-size 64 --seconds 30 >"$work/flood_$kind.txt" &
  flood=$!
  samples=()
  for s in $(seq 30); do sleep 1; samples+=("$(rss_kb "$pid")"); done
  wait "$flood" || true
  echo "{\"label\": \"flood\", \"kind\": \"$kind\", \"rss_kb\": [$(IFS=,; echo "${samples[*]}")], \"written\": \"$(cat "$work/flood_$kind.txt")\"}" >>"$results"
done
stop

/usr/bin/python3 - "$results" <<'PY'
import json, os, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def med(label, kind, key):
    v = [r[key] for r in rows if r["label"] == label and r["kind"] == kind and r.get(key) is not None]
    return statistics.median(v) if v else float("nan")
floors = []
print("| run | base | new | new/base | echo server |")
print("|---|---:|---:|---:|---:|")
for label, what in [("tiny64", "tiny, 64 sessions"), ("bench64", "benchmark model, 64 sessions"), ("bench1", "benchmark model, 1 session")]:
    b, n, e = (med(label, k, "steps_per_s") for k in ("base", "new", "echo"))
    print(f"| {what}: steps/s | {b:,.0f} | {n:,.0f} | {n/b:.2f}x | {e:,.0f} |")
    if label != "bench1":
        b, n, e = (med(label, k, "server_cpu_us_per_step") for k in ("base", "new", "echo"))
        print(f"| {what}: server CPU µs/step | {b:.1f} | {n:.1f} | {n/b:.2f}x | {e:.1f} |")
        c = statistics.median(r["server_compute_us_per_batch"] / r["batch_size_mean"]
                              for r in rows if r["label"] == label and r["kind"] == "new"
                              and r.get("batch_size_mean"))
        k = med(label, "new", "client_cpu_us_per_step")
        floors.append((what, b, n, e, c, k, med(label, "base", "steps_per_s")))
    b, n, e = (statistics.median(r["latency_ms"]["p50"] for r in rows
                                 if r["label"] == label and r["kind"] == k)
               for k in ("base", "new", "echo"))
    print(f"| {what}: p50 ms | {b:.3f} | {n:.3f} | {n/b:.2f}x | {e:.3f} |")
# The floor under a step's server CPU: what gRPC costs the echo server for
# the same messages, plus the engine's own compute for the step (the new
# server's statistics: compute per batch over the mean batch).
# And the most steps/s these cores can give when server and load generator
# share them: all cores busy, the server at its floor.
cores = os.cpu_count()
print("\n| run | echo CPU µs/step | engine µs/step | floor | new | new/floor | base x 0.7 | load generator CPU µs/step | steps/s at the floor | / base |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for what, b, n, e, c, k, bs in floors:
    best = cores * 1e6 / (k + e + c)
    print(f"| {what} | {e:.1f} | {c:.1f} | {e + c:.1f} | {n:.1f} | {n / (e + c):.2f}x | {0.7 * b:.1f} | {k:.1f} | {best:,.0f} | {best / bs:.2f}x |")
for r in rows:
    if r["label"] == "memory":
        per = (r["rss_10k_kb"] - r["rss_before_kb"]) * 1024 / 10000
        print(f"\nmemory {r['kind']}: {per:,.0f} B per session ({per/4096:.2f}x the 4,096 B state)")
    if r["label"] == "flood":
        s = r["rss_kb"]
        print(f"\nnever-reading client, {r['kind']}: server RSS {s[0]/1024:.1f} MiB at 1 s, "
              f"{min(s[5:])/1024:.1f}-{max(s[5:])/1024:.1f} MiB from 6 s to 30 s; {r['written']}")
PY
