#!/usr/bin/env bash
# Runs the image deploy/build-image.sh built and checks it end to end: the
# server comes up (lstm-client health, from inside the image), the bundled
# sunspots data streamed through it gives exactly the outputs of
# `lstm-model run`, SIGTERM stops it cleanly, and a restart on the same
# state volume continues the session where it was.
#
#   deploy/smoke-test.sh [--tag lstmserve:latest] [--build DIR]
#
# DIR holds this machine's lstm-client and lstm-model (default build/), the
# references. Runs the image with docker or podman, else `buildah run`.
# Exits 77 when none is available.
set -euo pipefail
cd "$(dirname "$0")/.."

tag=lstmserve:latest
build=build
while [[ $# -gt 0 ]]; do
  case $1 in
    --tag) tag=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "smoke-test: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
say() { echo "smoke-test: $*" >&2; }
fail() { say "FAIL: $*"; exit 1; }
for bin in lstm-client lstm-model; do
  [[ -x "$build/$bin" ]] || { say "$build/$bin is not built"; exit 2; }
done

if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  engine=docker
elif command -v podman >/dev/null && podman info >/dev/null 2>&1; then
  engine=podman
elif command -v buildah >/dev/null; then
  engine=buildah
  export STORAGE_DRIVER=${STORAGE_DRIVER:-vfs}
else
  say "no docker, podman or buildah to run the image with"
  exit 77
fi

work=$(mktemp -d)
state="$work/state"
mkdir -p "$state"
chown 10001:10001 "$state"  # the image's lstmserve user
port=$((20000 + RANDOM % 20000))
ctr=""
cleanup() {
  stop_server KILL 2>/dev/null || true
  if [[ $engine == buildah && -n "$ctr" ]]; then buildah rm "$ctr" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

server_job=""
start_server() {
  if [[ $engine == buildah ]]; then
    # chroot isolation shares this machine's network: the server takes a
    # loopback port of ours.
    buildah run --isolation chroot -v "$state:/var/lib/lstmserve" "$ctr" -- \
      /usr/local/bin/lstm-server --config /etc/lstmserve/lstm-server.toml \
      --listen "127.0.0.1:$port" --metrics-listen 127.0.0.1:0 >>"$work/server.log" 2>&1 &
    server_job=$!
  else
    $engine run -d --name lstmserve-smoke -p "127.0.0.1:$port:50051" \
      -v "$state:/var/lib/lstmserve" "$tag" >/dev/null
  fi
  for _ in $(seq 120); do
    if in_image /usr/local/bin/lstm-client --target "127.0.0.1:$port" --timeout 1 health >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.5
  done
  tail -20 "$work/server.log" >&2 || true
  fail "the server did not become healthy"
}
in_image() {  # runs a command inside the image
  if [[ $engine == buildah ]]; then
    buildah run --isolation chroot "$ctr" -- "$@"
  else
    $engine exec lstmserve-smoke "$@"
  fi
}
stop_server() {  # SIGTERM (or the given signal) to lstm-server, waits for it
  local sig=${1:-TERM}
  if [[ $engine == buildah ]]; then
    [[ -n "$server_job" ]] || return 0
    local pid
    pid=$(pgrep -f -- "^/usr/local/bin/lstm-server --config /etc/lstmserve/lstm-server.toml --listen 127.0.0.1:$port" | head -1)
    [[ -n "$pid" ]] && kill -"$sig" "$pid"
    local rc=0
    wait "$server_job" || rc=$?
    server_job=""
    return $rc
  else
    if [[ $sig == TERM ]]; then $engine stop -t 30 lstmserve-smoke >/dev/null; else $engine kill lstmserve-smoke >/dev/null; fi
    $engine logs lstmserve-smoke >>"$work/server.log" 2>&1 || true
    local rc
    rc=$($engine inspect --format '{{.State.ExitCode}}' lstmserve-smoke)
    $engine rm lstmserve-smoke >/dev/null
    return "$rc"
  fi
}

[[ $engine == buildah ]] && ctr=$(buildah from "$tag")
say "running $tag with $engine on 127.0.0.1:$port"

# The image holds no compiler.
for compiler in gcc g++ cc c++ clang; do
  if in_image sh -c "command -v $compiler" >/dev/null 2>&1; then fail "the image holds $compiler"; fi
done

data=models/sunspots/data.csv
steps=$(grep -cv '^#' "$data")
half=$((steps / 2))
"$build/lstm-model" run models/sunspots/1 <"$data" >"$work/reference.csv"

start_server
say "healthy; streaming $half of $steps steps into session smoke"
grep -v '^#' "$data" | head -n "$half" |
  "$build/lstm-client" --target "127.0.0.1:$port" stream --model sunspots \
    --session smoke --create >"$work/out.csv"

stop_server TERM || fail "lstm-server did not exit 0 on SIGTERM"
grep -q "lstm-server stopped" "$work/server.log" || fail "no clean stop in the log"
say "stopped with SIGTERM; restarting on the same state volume"

start_server
grep -q "1 sessions restored of 1 stored" "$work/server.log" || fail "the session was not restored"
grep -v '^#' "$data" | tail -n +"$((half + 1))" |
  "$build/lstm-client" --target "127.0.0.1:$port" stream --model sunspots \
    --session smoke >>"$work/out.csv"
stop_server TERM || fail "lstm-server did not exit 0 on SIGTERM (second run)"

if ! cmp -s "$work/out.csv" "$work/reference.csv"; then
  diff "$work/out.csv" "$work/reference.csv" | head -5 >&2
  fail "the outputs through the image differ from lstm-model run"
fi
say "OK: $steps steps through the image equal lstm-model run, across a SIGTERM and restart"
