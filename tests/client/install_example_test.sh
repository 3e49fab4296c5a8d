#!/bin/bash
# The installed client package works for an outside project: install the
# "client" component to a temporary prefix, configure and build
# client/examples against it with find_package(lstmserve), and run the
# example against a freshly started lstm-server. Its output rows must match
# `lstm-client stream` for the same input.
#
# usage: install_example_test.sh CMAKE BUILD_DIR EXAMPLE_DIR LSTM_SERVER
#                                LSTM_CLIENT MODEL_REPO CXX [EXTRA_FLAGS
#                                [EXTRA_LINK_FLAGS]]
set -euo pipefail
# Tests run side by side: no server takes the default metrics port.
export LSTMSERVE_METRICS_LISTEN=127.0.0.1:0

cmake=$1 build_dir=$2 example_dir=$3 server=$4 client=$5 repo=$6 cxx=$7
flags=${8:-}
link_flags="$flags ${9:-}"

work=$(mktemp -d "${TMPDIR:-/tmp}/lstmserve-install-test.XXXXXX")
server_pid=
cleanup() {
  if [[ -n $server_pid ]]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

echo "== install to $work/prefix"
"$cmake" --install "$build_dir" --prefix "$work/prefix" --component client
header=$work/prefix/include/lstmserve/client.h
[[ -f $header ]] || fail "no installed header"
[[ -f $work/prefix/lib/cmake/lstmserve/lstmserveConfig.cmake ]] ||
  [[ -f $work/prefix/lib64/cmake/lstmserve/lstmserveConfig.cmake ]] ||
  fail "no package config"
# The public header exposes no gRPC or protobuf types.
if grep -nE '#include .*(grpc|protobuf|lstmserve/v1)' "$header"; then
  fail "the public header includes gRPC/protobuf headers"
fi

echo "== build the example against the installed package"
"$cmake" -S "$example_dir" -B "$work/build" \
  -DCMAKE_PREFIX_PATH="$work/prefix" \
  -DCMAKE_CXX_COMPILER="$cxx" \
  -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_FLAGS="$flags" \
  -DCMAKE_EXE_LINKER_FLAGS="$link_flags" >"$work/configure.log" 2>&1 ||
  { cat "$work/configure.log"; fail "configure"; }
"$cmake" --build "$work/build" -j2 >"$work/build.log" 2>&1 ||
  { cat "$work/build.log"; fail "build"; }
example=$work/build/stream_example
[[ -x $example ]] || fail "no example binary"

echo "== run it against lstm-server"
"$server" --listen 127.0.0.1:0 --port-file "$work/port" \
  --model-repo "$repo" --log-level warn &
server_pid=$!
for _ in $(seq 1 300); do
  [[ -s $work/port ]] && break
  kill -0 "$server_pid" 2>/dev/null || fail "lstm-server exited"
  sleep 0.1
done
[[ -s $work/port ]] || fail "lstm-server did not start within 30 s"
target=127.0.0.1:$(cat "$work/port")

head -n 30 "$repo/sunspots/data.csv" >"$work/in.csv"
timeout 60 "$example" "$target" sunspots <"$work/in.csv" >"$work/out.txt" ||
  fail "the example failed"
[[ $(head -n 1 "$work/out.txt") == "models: charlm elnino sunspots" ]] ||
  fail "unexpected first line: $(head -n 1 "$work/out.txt")"
tail -n +2 "$work/out.txt" >"$work/rows.csv"
timeout 60 "$client" --target "$target" stream --model sunspots \
  <"$work/in.csv" >"$work/expected.csv" || fail "lstm-client stream failed"
[[ $(wc -l <"$work/rows.csv") -eq 30 ]] ||
  fail "expected 30 rows, got $(wc -l <"$work/rows.csv")"
# The example prints 9 significant digits; compare within 1e-6 relative.
paste -d, "$work/rows.csv" "$work/expected.csv" | awk -F, '
  { d = $1 - $2; if (d < 0) d = -d; m = $2 < 0 ? -$2 : $2; if (m < 1) m = 1;
    if (d > 1e-6 * m) { print "row " NR ": " $1 " != " $2; bad = 1 } }
  END { exit bad }' || fail "the example's rows differ from lstm-client's"
# Both closed their sessions.
sessions=$("$client" --target "$target" session list | tail -n +2)
[[ -z $sessions ]] || fail "sessions left behind: $sessions"
echo "PASS"
