#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/, in the clang ASan + UBSan build
# build-asan/, as tools/test.sh makes it) if needed and runs each for
# SECONDS (default 60), two at a time, starting from its seed corpus
# tests/fuzz/<target>/. Exits non-zero if any target finds a crash, a leak,
# a timeout or an out-of-memory, and prints the reproducer's path.
#
#   tools/fuzz.sh                   # every target, 60 s each (CI's smoke run)
#   tools/fuzz.sh 3600              # an hour each
#   tools/fuzz.sh 600 safetensors   # some targets only
#   FUZZ_JOBS=1 tools/fuzz.sh       # one at a time
#
# New inputs the fuzzer finds go to build-asan/fuzz/corpus/<target>/ (kept
# between runs; the seeds in tests/fuzz/ are only read); reproducers to
# build-asan/fuzz/artifacts/. Reproduce a crash with
#   build-asan/tests/fuzz/fuzz_<target> <reproducer file>
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
shift || true
all_targets=(model_config safetensors store_record store_rows
             snapshot_proto snapshot_json validation)
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=("${all_targets[@]}")
build_dir=${BUILD_DIR:-build-asan}
jobs=${FUZZ_JOBS:-2}

# The longest input each target tries: room for its seeds and some growth,
# small enough that every run stays fast.
max_len() {
  case $1 in
    safetensors) echo 8192 ;;
    validation) echo 2048 ;;
    *) echo 4096 ;;
  esac
}

build_targets=()
for t in "${targets[@]}"; do
  [[ -d tests/fuzz/$t ]] || { echo "fuzz.sh: no target $t (${all_targets[*]})" >&2; exit 2; }
  build_targets+=("fuzz_$t")
done
if [[ ! -f $build_dir/CMakeCache.txt ]] ||
   ! grep -q '^LSTMSERVE_FUZZ:BOOL=ON' "$build_dir/CMakeCache.txt"; then
  BUILD_KIND=asan BUILD_DIR=$build_dir tools/build.sh
fi
cmake --build "$build_dir" -j "$(nproc)" --target "${build_targets[@]}"

out=$build_dir/fuzz
mkdir -p "$out/artifacts"
if [[ -x /usr/lib/llvm-14/bin/llvm-symbolizer ]]; then
  export ASAN_SYMBOLIZER_PATH=${ASAN_SYMBOLIZER_PATH:-/usr/lib/llvm-14/bin/llvm-symbolizer}
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

run() {  # runs one target; its output in $out/<target>.log
  local t=$1
  mkdir -p "$out/corpus/$t"
  "$build_dir/tests/fuzz/fuzz_$t" "$out/corpus/$t" "tests/fuzz/$t" \
    -max_total_time="$seconds" -max_len="$(max_len "$t")" \
    -rss_limit_mb=2048 -timeout=20 -print_final_stats=1 \
    -artifact_prefix="$out/artifacts/$t-" >"$out/$t.log" 2>&1
}

failed=()
pids=()
names=()
wait_one() {  # waits for the oldest running target
  local rc=0
  wait "${pids[0]}" || rc=$?
  local t=${names[0]}
  pids=("${pids[@]:1}")
  names=("${names[@]:1}")
  local execs
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$out/$t.log" |
          grep -o '[0-9]*$' || echo "?")
  if [[ $rc -eq 0 ]]; then
    echo "fuzz.sh: $t: ok, $execs inputs in ${seconds} s"
  else
    failed+=("$t")
    echo "fuzz.sh: $t: FAILED (exit $rc); the end of $out/$t.log:"
    tail -n 40 "$out/$t.log" | sed 's/^/    /'
    local repro
    repro=$(grep -o "Test unit written to [^ ]*" "$out/$t.log" |
            sed 's/Test unit written to //' | tail -n 1)
    if [[ -n $repro ]]; then
      echo "fuzz.sh: $t: reproducer $repro"
      echo "fuzz.sh: $t: reproduce with $build_dir/tests/fuzz/fuzz_$t $repro"
    fi
  fi
}

for t in "${targets[@]}"; do
  [[ ${#pids[@]} -lt $jobs ]] || wait_one
  echo "fuzz.sh: $t: fuzzing for ${seconds} s"
  run "$t" &
  pids+=($!)
  names+=("$t")
done
while [[ ${#pids[@]} -gt 0 ]]; do wait_one; done

if [[ ${#failed[@]} -gt 0 ]]; then
  echo "fuzz.sh: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz.sh: all ${#targets[@]} targets ran ${seconds} s each without a finding"
