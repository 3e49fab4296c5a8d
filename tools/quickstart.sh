#!/usr/bin/env bash
# The README's first command: installs what is missing, builds, and runs
# lstm-model on each bundled model with the data it was trained on.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
tools/build.sh
for model in models/*/; do
  name=$(basename "$model")
  [[ -f "$model/data.csv" ]] || continue
  echo
  echo "== $name"
  build/lstm-model info "$model"
  echo "-- last 5 inputs (data.csv) and one-step-ahead predictions:"
  paste -d'  ' <(tail -n 5 "$model/data.csv") \
    <(build/lstm-model run "$model" < "$model/data.csv" | tail -n 5) |
    awk '{printf "   input %-10s -> predicted next %s\n", $1, $2}'
done
