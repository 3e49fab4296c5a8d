#!/usr/bin/env bash
# A real Prometheus (Debian package `prometheus`) scrapes lstm-server's
# /metrics on loopback; after traffic, a query through Prometheus's HTTP API
# returns the server's request counter. Exits 77 (skipped) when Prometheus
# is not installed.
#   prometheus_scrape_test.sh LSTM_SERVER LSTM_CLIENT MODEL_REPO
set -euo pipefail
server=$1 client=$2 repo=$3
if ! command -v prometheus >/dev/null || ! command -v curl >/dev/null; then
  echo "SKIP: prometheus or curl is not installed (tools/install-deps.sh installs both)"
  exit 77
fi
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$server" --model-repo "$repo" --listen 127.0.0.1:0 --port-file "$tmp/port" \
  --metrics-listen 127.0.0.1:0 >"$tmp/server.log" 2>&1 &
for _ in $(seq 100); do [[ -s "$tmp/port" ]] && break; sleep 0.1; done
[[ -s "$tmp/port" ]] || fail "lstm-server did not start: $(cat "$tmp/server.log")"
metrics_port=$(sed -n 's|.*metrics on http://127.0.0.1:\([0-9]*\)/metrics.*|\1|p' "$tmp/server.log")
[[ -n "$metrics_port" ]] || fail "no metrics port in the log: $(cat "$tmp/server.log")"

cat >"$tmp/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: lstm-server
    static_configs:
      - targets: ["127.0.0.1:$metrics_port"]
YAML
promtool check config "$tmp/prometheus.yml" >/dev/null || fail "promtool rejects the config"

# Prometheus cannot listen on port 0 and report it: try ports until one binds.
started=
for attempt in $(seq 20); do
  pport=$((20000 + (RANDOM % 20000)))
  prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/data" \
    --web.listen-address="127.0.0.1:$pport" >"$tmp/prometheus.log" 2>&1 &
  ppid=$!
  for _ in $(seq 100); do
    if curl -sf "http://127.0.0.1:$pport/-/ready" >/dev/null 2>&1; then started=1; break; fi
    kill -0 "$ppid" 2>/dev/null || break
    sleep 0.1
  done
  [[ -n "$started" ]] && break
  kill "$ppid" 2>/dev/null || true
  wait "$ppid" 2>/dev/null || true
done
[[ -n "$started" ]] || fail "prometheus did not start: $(tail -5 "$tmp/prometheus.log")"

for _ in $(seq 5); do
  "$client" --target "127.0.0.1:$(cat "$tmp/port")" predict --model sunspots \
    < "$repo/sunspots/data.csv" >/dev/null
done

query='sum(lstmserve_requests_total{method="Predict",model="sunspots",code="OK"})'
for _ in $(seq 300); do
  answer=$(curl -sfG "http://127.0.0.1:$pport/api/v1/query" --data-urlencode "query=$query" || true)
  value=$(sed -n 's/.*"value":\[[0-9.]*,"\([0-9.e+]*\)"\].*/\1/p' <<<"$answer")
  if [[ "$value" == 5 ]]; then
    echo "prometheus_scrape_test: ok (Prometheus reads $query = $value)"
    exit 0
  fi
  sleep 0.1
done
fail "Prometheus never read 5 Predict calls; last answer: $answer"
