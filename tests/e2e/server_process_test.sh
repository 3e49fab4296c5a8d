#!/usr/bin/env bash
# lstm-server as a process: --help, a one-line error for a bad repository,
# configuration errors (exit 2), --print-config read back by --config, and
# SIGTERM/SIGINT ending a serving process (configured by flags, or by a
# config file and the environment) cleanly with exit 0.
#   server_process_test.sh LSTM_SERVER MODEL_REPO
set -euo pipefail
# Tests run side by side: no server takes the default metrics port.
export LSTMSERVE_METRICS_LISTEN=127.0.0.1:0
server=$1
repo=$2
REPO_ROOT=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'kill -9 $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
# The machine's own LSTMSERVE_* variables must not change what is tested.
for var in $(compgen -e | grep '^LSTMSERVE_' || true); do unset "$var"; done

# (Through a file: grep -q quitting early would SIGPIPE a help over 4 KiB.)
"$server" --help > "$tmp/help"
grep -q -- "--max-sessions INT:INT in \[1 - 100000000\]=10000" "$tmp/help" || fail "--help does not list --max-sessions"
grep -q -- "--config" "$tmp/help" || fail "--help does not list --config"

if "$server" --model-repo "$tmp/none" --listen 127.0.0.1:0 2>"$tmp/err"; then
  fail "a missing repository did not fail"
fi
[[ $(wc -l < "$tmp/err") -eq 1 ]] || fail "error is not one line: $(cat "$tmp/err")"
grep -q "lstm-server: .*none" "$tmp/err" || fail "error does not name the path"

# Plaintext off loopback, and a broken tokens file: refused at start, one
# line (docs/SECURITY.md).
if "$server" --model-repo "$repo" --listen 0.0.0.0:0 2>"$tmp/err"; then
  fail "a plaintext non-loopback listen started"
fi
[[ $(wc -l < "$tmp/err") -eq 1 ]] || fail "error is not one line: $(cat "$tmp/err")"
grep -q "lstm-server: .*without TLS.*--allow-insecure" "$tmp/err" || fail "unexpected error: $(cat "$tmp/err")"
printf 'short alice\n' > "$tmp/tokens"
chmod 600 "$tmp/tokens"
if "$server" --model-repo "$repo" --listen 127.0.0.1:0 --auth-tokens "$tmp/tokens" 2>"$tmp/err"; then
  fail "a broken tokens file started"
fi
[[ $(wc -l < "$tmp/err") -eq 1 ]] || fail "error is not one line: $(cat "$tmp/err")"
grep -q "lstm-server: --auth-tokens .*line 1: the token has 5 characters" "$tmp/err" \
  || fail "unexpected tokens error: $(cat "$tmp/err")"

# Configuration errors: one line, exit 2 (a bad flag value: CLI11's 105).
printf 'threads = 1\nmax_sesions = 5\n' > "$tmp/bad.toml"
if "$server" --config "$tmp/bad.toml" 2>"$tmp/err"; then fail "bad config file accepted"; else code=$?; fi
[[ $code -eq 2 ]] || fail "bad config file: exit $code, not 2"
[[ $(wc -l < "$tmp/err") -eq 1 ]] || fail "config error is not one line: $(cat "$tmp/err")"
grep -qF "lstm-server: $tmp/bad.toml:2: unknown key \"max_sesions\" (did you mean \"max_sessions\"?)" "$tmp/err" \
  || fail "unexpected config error: $(cat "$tmp/err")"
if LSTMSERVE_MAX_BATCH=lots "$server" 2>"$tmp/err"; then fail "bad variable accepted"; else code=$?; fi
[[ $code -eq 2 ]] || fail "bad variable: exit $code, not 2"
grep -qF 'lstm-server: environment variable LSTMSERVE_MAX_BATCH: expected an integer from 1 to 65536, got "lots"' "$tmp/err" \
  || fail "unexpected variable error: $(cat "$tmp/err")"
if "$server" --config "$tmp/none.toml" 2>"$tmp/err"; then fail "missing config accepted"; else code=$?; fi
[[ $code -eq 2 ]] || fail "missing config file: exit $code, not 2"
if "$server" --max-batch 0 2>"$tmp/err"; then fail "--max-batch 0 accepted"; else code=$?; fi
[[ $code -eq 105 ]] || fail "bad flag value: exit $code, not CLI11's 105"

# --print-config: file, environment and flags in effect, read back the same.
printf 'threads = 2\nmax_batch = 9\n[models.sunspots]\nversions = { specific = [1] }\n' > "$tmp/first.toml"
LSTMSERVE_THREADS=3 "$server" --config "$tmp/first.toml" --max-sessions 77 \
  --version-policy all --print-config > "$tmp/printed.toml"
grep -qx 'threads = 3' "$tmp/printed.toml" || fail "environment not in --print-config"
grep -qx 'max_batch = 9' "$tmp/printed.toml" || fail "file not in --print-config"
grep -qx 'max_sessions = 77' "$tmp/printed.toml" || fail "flag not in --print-config"
grep -qx 'versions = { specific = \[1\] }' "$tmp/printed.toml" || fail "model table not in --print-config"
"$server" --config "$tmp/printed.toml" --print-config > "$tmp/again.toml"
cmp "$tmp/printed.toml" "$tmp/again.toml" || fail "--print-config does not read back the same"
"$server" --config "$REPO_ROOT/deploy/lstm-server.toml" --print-config >/dev/null \
  || fail "deploy/lstm-server.toml does not load"

printf 'model_repo = "%s"\nlisten = "127.0.0.1:0"\n' "$repo" > "$tmp/serve.toml"
for sig in TERM INT; do
  rm -f "$tmp/port"
  if [[ $sig == TERM ]]; then
    "$server" --model-repo "$repo" --listen 127.0.0.1:0 --port-file "$tmp/port" \
      >"$tmp/log" 2>&1 &
  else
    LSTMSERVE_PORT_FILE="$tmp/port" "$server" --config "$tmp/serve.toml" >"$tmp/log" 2>&1 &
  fi
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
