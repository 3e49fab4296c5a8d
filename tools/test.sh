#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, and runs every
# test, first in the Release build, then under AddressSanitizer +
# UndefinedBehaviorSanitizer. Set LSTMSERVE_SKIP_SANITIZE=1 to skip the
# second pass.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh

echo "== Release build and tests (build/)"
tools/build.sh
ctest --test-dir build --output-on-failure -j "$(nproc)"

if [[ "${LSTMSERVE_SKIP_SANITIZE:-0}" != 1 ]]; then
  echo "== ASan + UBSan build and tests (build-asan/)"
  BUILD_DIR=build-asan tools/build.sh -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DLSTMSERVE_SANITIZE=ON -DLSTMSERVE_BUILD_BENCH=OFF
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir build-asan --output-on-failure -j "$(nproc)"
fi
