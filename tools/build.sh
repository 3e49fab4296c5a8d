#!/usr/bin/env bash
# Configures and builds lstmserve. Extra arguments go to cmake's configure.
#   tools/build.sh                          # Release build in build/
#   BUILD_DIR=build-asan tools/build.sh -DLSTMSERVE_SANITIZE=ON
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}
cmake -S . -B "$build_dir" "$@" >/dev/null
cmake --build "$build_dir" -j "$(nproc)"
