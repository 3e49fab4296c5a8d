#!/usr/bin/env bash
# lstm-server as a process: --help, a one-line error for a bad repository,
# and SIGTERM/SIGINT ending a serving process cleanly with exit 0.
#   server_process_test.sh LSTM_SERVER MODEL_REPO
set -euo pipefail
server=$1
repo=$2
tmp=$(mktemp -d)
trap 'kill -9 $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$server" --help | grep -q -- "--max-sessions" || fail "--help does not list --max-sessions"

if "$server" --model-repo "$tmp/none" --listen 127.0.0.1:0 2>"$tmp/err"; then
  fail "a missing repository did not fail"
fi
[[ $(wc -l < "$tmp/err") -eq 1 ]] || fail "error is not one line: $(cat "$tmp/err")"
grep -q "lstm-server: .*none" "$tmp/err" || fail "error does not name the path"

for sig in TERM INT; do
  rm -f "$tmp/port"
  "$server" --model-repo "$repo" --listen 127.0.0.1:0 --port-file "$tmp/port" \
    >"$tmp/log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do [[ -s "$tmp/port" ]] && break; sleep 0.1; done
  [[ -s "$tmp/port" ]] || fail "no port file after 10 s: $(cat "$tmp/log")"
  grep -q "listening on 127.0.0.1:$(cat "$tmp/port")" "$tmp/log" || fail "no listening log line"
  grep -q "model=sunspots version=1 loaded" "$tmp/log" || fail "no model load log line"
  kill -"$sig" "$pid"
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && fail "still running 10 s after SIG$sig"
  wait "$pid" || fail "exit code $? after SIG$sig"
  grep -q "lstm-server stopped" "$tmp/log" || fail "no stop log line after SIG$sig"
done
echo "server_process_test: ok"
