#!/usr/bin/env bash
# Configures and builds lstmserve. Extra arguments go to cmake's configure.
#   tools/build.sh                          # Release build in build/
#   BUILD_KIND=asan tools/build.sh          # clang ASan + UBSan, thread-safety
#                                           # checks and fuzz targets: build-asan/
#   BUILD_KIND=tsan tools/build.sh          # ThreadSanitizer: build-tsan/
#   BUILD_DIR=build-x tools/build.sh -DLSTMSERVE_SANITIZE=ON   # by hand
# Uses Ninja when it is installed and the build directory is new.
set -euo pipefail
cd "$(dirname "$0")/.."

kind_args=()
case ${BUILD_KIND:-} in
  ""|release) default_dir=build ;;
  asan)
    # clang, so that one build is the sanitizer pass, the -Wthread-safety
    # build (-Wthread-safety, and every warning an error) and the fuzzing
    # build.
    # -O1 with line tables only: half the compile time of -O2 -g, and the
    # sanitizers' reports still name file and line.
    default_dir=build-asan
    kind_args=(-DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_BUILD_TYPE=None
               "-DCMAKE_CXX_FLAGS=-O1 -g1" -DLSTMSERVE_SANITIZE=address
               -DLSTMSERVE_FUZZ=ON -DLSTMSERVE_WERROR=ON
               -DLSTMSERVE_BUILD_BENCH=OFF) ;;
  tsan)
    # clang too: it compiles this code about 10% faster than gcc; -O1 as
    # above.
    default_dir=build-tsan
    kind_args=(-DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_BUILD_TYPE=None "-DCMAKE_CXX_FLAGS=-O1 -g1"
               -DLSTMSERVE_SANITIZE=thread -DLSTMSERVE_BUILD_BENCH=OFF) ;;
  *) echo "build.sh: BUILD_KIND=$BUILD_KIND: expected release, asan or tsan" >&2
     exit 2 ;;
esac
build_dir=${BUILD_DIR:-$default_dir}

generator=()
if [[ ! -f $build_dir/CMakeCache.txt ]] && command -v ninja >/dev/null; then
  generator=(-G Ninja)
fi
cmake -S . -B "$build_dir" "${generator[@]}" "${kind_args[@]}" "$@" >/dev/null
cmake --build "$build_dir" -j "$(nproc)"
