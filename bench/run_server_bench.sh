#!/usr/bin/env bash
# The server benchmark: starts lstm-server on loopback with the benchmark
# models (bench/make_bench_models: the benchmark shape with float32, bf16
# and int8 weights, and a 1x1 overhead probe), drives it with `lstm-client
# bench` through a sweep of models x sessions x chunk sizes in stream mode,
# runs the lone-client latency and overload experiments, and writes the
# tables into docs/PERFORMANCE.md (between the server-bench markers) and the
# plot into docs/img/server_bench.png.
#
#   tools/build.sh && bench/run_server_bench.sh [--duration S]
#
# Server and load generator share this machine's cores, as they do in the
# numbers it reports. Everything stays on 127.0.0.1 and stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}
duration=5
while [[ $# -gt 0 ]]; do
  case $1 in
    --duration) duration=$2; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "run_server_bench: unknown argument $1" >&2; exit 2 ;;
  esac
done
for bin in lstm-server lstm-client bench/make_bench_models; do
  [[ -x "$build/$bin" ]] || { echo "run_server_bench: $build/$bin missing; run tools/build.sh" >&2; exit 1; }
done

work=$build/server-bench
rm -rf "$work" && mkdir -p "$work" docs/img
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

# start_server [lstm-server flags...]: sets $target.
start_server() {
  stop_server
  rm -f "$work/port"
  "$build/lstm-server" --model-repo "$work/models" --listen 127.0.0.1:0 \
    --port-file "$work/port" --log-level warn "$@" >>"$work/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 100); do [[ -s "$work/port" ]] && break; sleep 0.1; done
  [[ -s "$work/port" ]] || { echo "run_server_bench: server did not start" >&2; exit 1; }
  target=127.0.0.1:$(cat "$work/port")
}

# bench LABEL ARGS...: one lstm-client bench run, appended as a JSON line.
bench() {
  local label=$1; shift
  echo "run_server_bench: $label $*" >&2
  "$build/lstm-client" --target "$target" bench --json --duration "$duration" "$@" 2>/dev/null |
    /usr/bin/python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); r["label"]=sys.argv[1]; print(json.dumps(r))' "$label" >>"$results"
}

# 1. The sweep, default server settings: the benchmark shape in each weight
#    format (bench_lstm_bf16 and bench_lstm_int8 are served in bf16 and int8:
#    "weights" in their config.json), then the 1x1 model.
start_server
for model in bench_lstm bench_lstm_bf16 bench_lstm_int8 tiny; do
  for chunk in 1 10; do
    for sessions in 1 16 64 256; do
      bench sweep --model "$model" --chunk "$chunk" --sessions "$sessions"
    done
  done
done

# 1b. The headline ratio, benchmark shape against the 1x1 model at 64
#     sessions and one step a message: the noisiest point of the sweep, so
#     three alternating rounds, reported as medians.
for round in 1 2 3; do
  bench ratio --model bench_lstm --sessions 64 --chunk 1
  bench ratio --model tiny --sessions 64 --chunk 1
done

# 2. A lone client pays nothing for the batcher: the defaults and
#    --max-queue-delay 0 against batching switched off (--max-batch 1), one
#    session, one step a message; three alternating rounds (the tables
#    report medians), then a server that always waits the delay
#    (--batch-peer-window -1) for comparison.
for round in 1 2 3; do
  start_server
  bench lone_default --model bench_lstm --sessions 1 --chunk 1
  start_server --max-queue-delay 0
  bench lone_delay0 --model bench_lstm --sessions 1 --chunk 1
  start_server --max-batch 1
  bench lone_nobatch --model bench_lstm --sessions 1 --chunk 1
done
start_server --batch-peer-window -1
bench lone_always --model bench_lstm --sessions 1 --chunk 1

# 3. Overload: 256 sessions against a small queue bound; meanwhile the
#    health service is asked, and timed, once a second.
start_server --max-queued-steps 64
bench overload --model bench_lstm --sessions 256 --chunk 10 &
load_pid=$!
sleep 1
health_ms=()
while kill -0 "$load_pid" 2>/dev/null; do
  t0=$(date +%s%N)
  if "$build/lstm-client" --target "$target" --timeout 5 health >/dev/null 2>&1; then
    health_ms+=($(( ($(date +%s%N) - t0) / 1000000 )))
  else
    health_ms+=(failed)
  fi
  sleep 1
done
wait "$load_pid"
echo "{\"label\": \"overload_health\", \"health_ms\": \"${health_ms[*]}\"}" >>"$results"
stop_server

/usr/bin/python3 bench/plot_server_bench.py "$results" docs/img/server_bench.png \
  docs/PERFORMANCE.md
echo "run_server_bench: results in $results; tables in docs/PERFORMANCE.md" >&2
