#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, and runs every
# test, first in the Release build (gcc, build/), then:
#   asan   the whole suite under AddressSanitizer + UndefinedBehaviorSanitizer,
#          built with clang (build-asan/), which is also the -Wthread-safety
#          build (a violation of a lock annotation fails it) and the
#          fuzzing build;
#   fuzz   each libFuzzer target for LSTMSERVE_FUZZ_SECONDS (default 60),
#          from its seed corpus (tools/fuzz.sh);
#   tsan   the whole suite under ThreadSanitizer (clang, build-tsan/).
# docs/SECURITY.md ("Running the checks") says more.
#
# Environment switches (1 = skip):
#   LSTMSERVE_SKIP_SANITIZE   every pass after the Release one
#   LSTMSERVE_SKIP_ASAN       the asan pass's tests (its build still runs
#                             when the fuzz pass needs it)
#   LSTMSERVE_SKIP_FUZZ       the fuzz pass
#   LSTMSERVE_SKIP_TSAN       the tsan pass
#   LSTMSERVE_FUZZ_SECONDS    seconds per fuzz target (default 60)
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

# clang's sanitizers print source lines through llvm-symbolizer (llvm-14).
if [[ -x /usr/lib/llvm-14/bin/llvm-symbolizer ]]; then
  export ASAN_SYMBOLIZER_PATH=/usr/lib/llvm-14/bin/llvm-symbolizer
fi

skip() { [[ ${LSTMSERVE_SKIP_SANITIZE:-0} == 1 || ${!1:-0} == 1 ]]; }

tools/install-deps.sh
phase_done deps

echo "== Release build and tests (build/)"
tools/build.sh
phase_done build
ctest --test-dir build --output-on-failure -j "$(nproc)"
phase_done tests

if ! skip LSTMSERVE_SKIP_ASAN || ! skip LSTMSERVE_SKIP_FUZZ; then
  echo "== clang ASan + UBSan build, with -Wthread-safety and the fuzz targets (build-asan/)"
  BUILD_KIND=asan tools/build.sh
  phase_done asan-build
fi

if ! skip LSTMSERVE_SKIP_ASAN; then
  echo "== ASan + UBSan tests (build-asan/)"
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    LSAN_OPTIONS=suppressions=$PWD/tools/sanitizers/lsan.supp \
    ctest --test-dir build-asan --output-on-failure -j "$(nproc)"
  phase_done asan-tests
fi

if ! skip LSTMSERVE_SKIP_FUZZ; then
  echo "== fuzz smoke runs (build-asan/fuzz/)"
  tools/fuzz.sh "${LSTMSERVE_FUZZ_SECONDS:-60}"
  phase_done fuzz
fi

if ! skip LSTMSERVE_SKIP_TSAN; then
  echo "== ThreadSanitizer build and tests (build-tsan/)"
  BUILD_KIND=tsan tools/build.sh
  phase_done tsan-build
  TSAN_OPTIONS="suppressions=$PWD/tools/sanitizers/tsan.supp second_deadlock_stack=1" \
    ctest --test-dir build-tsan --output-on-failure -j "$(nproc)"
  phase_done tsan-tests
fi
