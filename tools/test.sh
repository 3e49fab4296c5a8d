#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, and runs every
# test, first in the Release build, then under AddressSanitizer +
# UndefinedBehaviorSanitizer. Set LSTMSERVE_SKIP_SANITIZE=1 to skip the
# second pass.
set -euo pipefail
cd "$(dirname "$0")/.."

timings=()
phase_start=$SECONDS
phase_done() {  # records how long the phase that just ended took
  timings+=("$1 $((SECONDS - phase_start)) s")
  phase_start=$SECONDS
}
report() { echo "== test.sh timings: ${timings[*]:-none} (total ${SECONDS} s)"; }
trap report EXIT

tools/install-deps.sh
phase_done deps

echo "== Release build and tests (build/)"
tools/build.sh
phase_done build
ctest --test-dir build --output-on-failure -j "$(nproc)"
phase_done tests

if [[ "${LSTMSERVE_SKIP_SANITIZE:-0}" != 1 ]]; then
  echo "== ASan + UBSan build and tests (build-asan/)"
  # -O1 with line tables only: half the compile time of -O2 -g, and the
  # sanitizers' reports still name file and line.
  BUILD_DIR=build-asan tools/build.sh -DCMAKE_BUILD_TYPE=None \
    "-DCMAKE_CXX_FLAGS=-O1 -g1" "-DCMAKE_C_FLAGS=-O1 -g1" \
    -DLSTMSERVE_SANITIZE=ON -DLSTMSERVE_BUILD_BENCH=OFF
  phase_done asan-build
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir build-asan --output-on-failure -j "$(nproc)"
  phase_done asan-tests
fi
