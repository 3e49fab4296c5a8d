#!/usr/bin/env bash
# Soak and fault test of a real lstm-server on loopback, bounded in time:
# many sessions across several identities streaming with checkpoints on,
# and, while they run, a client killed mid-stream, a slow reader, calls
# whose deadlines expire, and a SIGKILL of the server restarted on the same
# state directory. It reports sessions held, bytes per session, errors by
# code, sessions lost, and the server's RSS over the run, and fails if a
# session is lost, the server dies on its own, an unexpected error code
# appears, or the RSS keeps growing once warmed up.
#
#   tools/soak.sh                      # long: 10000 sessions, 300 s
#   tools/soak.sh --short              # CI: 2000 sessions, 40 s
#   tools/soak.sh --sessions N --duration S [--build DIR] [--keep]
#
# Numbers from a long run are in docs/SECURITY.md ("Soak and fault tests").
set -euo pipefail
cd "$(dirname "$0")/.."

sessions=10000
duration=300
build=build
keep=0
while [[ $# -gt 0 ]]; do
  case $1 in
    --short) sessions=2000; duration=40; shift ;;
    --sessions) sessions=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --build) build=$(cd "$2" && pwd); shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "soak: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
identities=4
per_identity=$((sessions / identities))
(( per_identity >= 1 && duration >= 20 )) || {
  echo "soak: need --sessions >= $identities and --duration >= 20" >&2; exit 2; }
for bin in lstm-server lstm-client; do
  [[ -x "$build/$bin" ]] || { echo "soak: $build/$bin is not built" >&2; exit 2; }
done
command -v curl >/dev/null || { echo "soak: needs curl (tools/install-deps.sh)" >&2; exit 2; }

work=$(mktemp -d)
server_pid=""
cleanup() {
  kill -9 $(jobs -p) 2>/dev/null || true
  [[ -n "$server_pid" ]] && kill -9 "$server_pid" 2>/dev/null || true
  if [[ $keep == 1 ]]; then echo "soak: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
say() { echo "soak: [$(( SECONDS - t0 )) s] $*" >&2; }
t0=$SECONDS

# Identities id0..id3 and an admin, each with a random token.
: >"$work/tokens"
for i in $(seq 0 $((identities - 1))) admin; do
  token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
  echo "$token" >"$work/token-$i"
  echo "$token id$i$([[ $i == admin ]] && echo ' admin')" >>"$work/tokens"
done
chmod 600 "$work/tokens"

port=""
start_server() {
  local listen=${1:-127.0.0.1:0}
  rm -f "$work/port"
  "$build/lstm-server" --model-repo models --listen "$listen" \
    --port-file "$work/port" --metrics-listen 127.0.0.1:0 \
    --state-dir "$work/state" --checkpoint-interval 1 \
    --auth-tokens "$work/tokens" --max-sessions $((sessions + 500)) \
    --max-sessions-per-identity $((per_identity + 200)) \
    --session-idle-timeout 3600 >>"$work/server.log" 2>&1 &
  server_pid=$!
  echo "$server_pid" >"$work/server.pid"
  for _ in $(seq 600); do [[ -s "$work/port" ]] && break; sleep 0.1; done
  [[ -s "$work/port" ]] || { say "the server did not start"; tail -5 "$work/server.log" >&2; exit 1; }
  port=$(cat "$work/port")
}
metrics_port() {
  grep -o 'metrics on http://[^ ]*' "$work/server.log" | tail -1 | sed 's/.*://; s/\/metrics//'
}
# The sum of a metric's samples (all label sets).
metric() {
  curl -s "http://127.0.0.1:$(metrics_port)/metrics" |
    awk -v n="$1" '$1 == n || index($1, n "{") == 1 { s += $NF } END { printf "%d\n", s }'
}
client() {  # client IDENTITY ARGS...: lstm-client as that identity
  local who=$1; shift
  "$build/lstm-client" --target "127.0.0.1:$port" --token-file "$work/token-$who" "$@"
}

start_server
say "server on 127.0.0.1:$port; $sessions sessions over $identities identities for ${duration} s"

# The server's RSS each second (the pid changes at the restart).
(
  while true; do
    pid=$(cat "$work/server.pid" 2>/dev/null || true)
    rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
    [[ -n "$rss" ]] && echo "$(( SECONDS - t0 )) $pid $rss" >>"$work/rss"
    sleep 1
  done
) &
rss_before=$(awk '/^VmRSS/ {print $2}' "/proc/$server_pid/status")

# Traffic: every identity streams its share of the sessions, one step a
# second each, created by their first stream message.
for i in $(seq 0 $((identities - 1))); do
  client "$i" --timeout 30 bench --model sunspots --sessions "$per_identity" \
    --rate 1 --duration "$duration" --create-on-stream --drain 30 --json \
    >"$work/bench-$i.json" 2>"$work/bench-$i.err" &
  echo $! >"$work/bench-$i.pid"
done

# A slow reader: a stream whose output nobody reads for the whole run.
(yes 1.5 | head -n 5000000 |
  client 0 --timeout 60 stream --model sunspots --session slow-reader --create |
  { sleep "$duration"; cat >/dev/null; }) 2>"$work/slow.err" &

sleep $(( duration / 5 ))
sessions_peak=$(metric lstmserve_sessions)
rss_loaded=$(awk '/^VmRSS/ {print $2}' "/proc/$server_pid/status")
say "$sessions_peak sessions held, RSS ${rss_loaded} KiB"

# A client killed mid-stream, its sessions left to idle.
client 1 --timeout 30 bench --model sunspots --sessions 100 --rate 5 \
  --duration "$duration" --create-on-stream >/dev/null 2>&1 &
victim=$!
sleep 3
{ kill -9 "$victim"; wait "$victim"; } 2>/dev/null || true
say "killed a client with 100 sessions mid-stream"

# Calls whose deadline expires (in the client, or in the server's queue).
deadline_calls=0 deadline_exceeded=0 deadline_other=0
for _ in $(seq 20); do
  deadline_calls=$((deadline_calls + 1))
  if client 2 --timeout 0.001 predict --model sunspots \
       <models/sunspots/data.csv >/dev/null 2>"$work/deadline.err"; then :
  elif grep -q DEADLINE_EXCEEDED "$work/deadline.err"; then
    deadline_exceeded=$((deadline_exceeded + 1))
  else
    deadline_other=$((deadline_other + 1))
    say "a short-deadline call failed otherwise: $(cat "$work/deadline.err")"
  fi
  sleep 0.2
done
say "$deadline_calls short-deadline calls: $deadline_exceeded DEADLINE_EXCEEDED"

# SIGKILL under load, after at least two checkpoints since the sessions
# were made, then a restart on the same state directory and port.
sleep $(( duration * 2 / 5 - SECONDS + t0 > 0 ? duration * 2 / 5 - SECONDS + t0 : 0 ))
held_before_kill=$(metric lstmserve_sessions)
kill -9 "$server_pid"
wait "$server_pid" 2>/dev/null || true
say "SIGKILL with $held_before_kill sessions held"
restart_at=$(( SECONDS - t0 ))
start_server "127.0.0.1:$port"
restored=$(grep -o '[0-9]* sessions restored of [0-9]* stored' "$work/server.log" | tail -1)
restored_count=${restored%% *}
say "restarted: $restored"

# The rest of the run, then a clean stop.
for i in $(seq 0 $((identities - 1))); do
  wait "$(cat "$work/bench-$i.pid")" || say "bench of id$i exited $?"
done
held_end=$(metric lstmserve_sessions)
pkill -f -- "--session slow-reader" || true
kill -TERM "$server_pid"
if ! wait "$server_pid"; then say "the server did not exit 0 on SIGTERM"; exit 1; fi
server_pid=""

# Errors by code, over every identity's bench.
declare -A errors=()
for i in $(seq 0 $((identities - 1))); do
  for field in errors errors_after_window; do
    pairs=$(grep -o "\"$field\":{[^}]*}" "$work/bench-$i.json" | sed 's/.*{//; s/}//; s/"//g' | tr ',' '\n')
    while IFS=: read -r code n; do
      [[ -n "$code" ]] && errors[$code]=$(( ${errors[$code]:-0} + n ))
    done <<<"$pairs"
  done
done
steps=0
for i in $(seq 0 $((identities - 1))); do
  r=$(grep -o '"requests":[0-9]*' "$work/bench-$i.json" | head -1 | cut -d: -f2)
  steps=$((steps + ${r:-0}))
done

# RSS once warmed up: after the restart has restored and traffic resumed
# (10 s), the last sample against the first.
read -r rss_first rss_last rss_max < <(awk -v from=$((restart_at + 10)) \
  '$1 >= from { if (!n++) f = $3; l = $3; if ($3 > m) m = $3 } END { print f+0, l+0, m+0 }' "$work/rss")
lost=$(( held_before_kill - ${restored_count:-0} ))
bytes_per_session=$(( (rss_loaded - rss_before) * 1024 / (sessions_peak > 0 ? sessions_peak : 1) ))

echo
echo "| measure | value |"
echo "|---|---|"
echo "| sessions (identities) | $sessions ($identities), $duration s |"
echo "| sessions held at 20% of the run | $sessions_peak |"
echo "| server RSS before load / at 20% | $((rss_before / 1024)) MiB / $((rss_loaded / 1024)) MiB |"
echo "| bytes per session (RSS growth / sessions) | $bytes_per_session |"
echo "| steps answered (bench clients) | $steps |"
echo -n "| errors by code (bench clients) |"
if [[ ${#errors[@]} -eq 0 ]]; then echo " none |"; else
  for code in "${!errors[@]}"; do echo -n " $code ${errors[$code]}"; done; echo " |"; fi
echo "| short-deadline calls | $deadline_calls, DEADLINE_EXCEEDED $deadline_exceeded |"
echo "| sessions held at SIGKILL / restored | $held_before_kill / $restored_count |"
echo "| sessions lost | $lost |"
echo "| sessions held at the end | $held_end |"
echo "| RSS after restart + 10 s: first / max / last | $((rss_first / 1024)) / $((rss_max / 1024)) / $((rss_last / 1024)) MiB |"

failed=0
(( lost <= 0 )) || { say "FAIL: $lost sessions lost"; failed=1; }
(( deadline_other == 0 )) || { say "FAIL: short-deadline calls failed otherwise"; failed=1; }
for code in "${!errors[@]}"; do
  case $code in
    # UNAVAILABLE/CANCELLED: the killed server's in-flight chunks, if the
    # client's retries ran out while it restarted.
    UNAVAILABLE|CANCELLED|DEADLINE_EXCEEDED) ;;
    *) say "FAIL: unexpected errors $code: ${errors[$code]}"; failed=1 ;;
  esac
done
# Flat: the last sample within 10% (and 16 MiB) of the first.
if (( rss_last > rss_first * 110 / 100 && rss_last - rss_first > 16384 )); then
  say "FAIL: RSS grew from $rss_first to $rss_last KiB once warmed up"; failed=1
fi
exit $failed
