#!/usr/bin/env bash
# The README's first command: installs what is missing, builds, and runs
# lstm-server on the bundled models (models/) at 127.0.0.1:50051 in the
# foreground. Ctrl-C stops it. Extra arguments go to lstm-server
# (see build/lstm-server --help).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
tools/build.sh
cat <<'MSG'

lstm-server is starting on 127.0.0.1:50051 with the bundled models.
In another terminal, stream the sunspot series through it:

  build/lstm-client models
  build/lstm-client stream --model sunspots < models/sunspots/data.csv

MSG
exec build/lstm-server --model-repo models "$@"
