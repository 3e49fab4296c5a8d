#!/usr/bin/env bash
# Installs the Debian 12 packages lstmserve needs to build and test, skipping
# any already installed. Debian's archive is the only source: nothing is
# downloaded from anywhere else.
#
#   tools/install-deps.sh            # build + test dependencies
#   tools/install-deps.sh --python   # also PyTorch, numpy, matplotlib, protobuf for tools/ and bench/ scripts
#   tools/install-deps.sh --bench    # also oneDNN, for bench/onednn_compare
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  ninja-build  # tools/build.sh uses it when present: faster no-op rebuilds
  # The asan pass (clang ASan + UBSan, -Wthread-safety, libFuzzer): its
  # sanitizer and fuzzer runtimes are only recommended by clang-14, and
  # llvm-14 brings llvm-symbolizer, which turns report addresses into lines.
  clang-14 libclang-rt-14-dev llvm-14
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libeigen3-dev libspdlog-dev libgtest-dev libgmock-dev libbenchmark-dev
  nlohmann-json3-dev libcli11-dev libabsl-dev
  libtomlplusplus-dev  # toml++: lstm-server --config files
  libonnx-dev  # onnx/onnx.proto, compiled for lstm-model import-onnx
  libsqlite3-dev  # the session store behind --state-dir
  libcivetweb-dev  # the /metrics HTTP endpoint (server/metrics/)
  prometheus  # promtool (tests/metrics/) and a real scrape (tests/e2e/)
  curl  # the scrape test's queries to Prometheus's HTTP API
  libssl-dev  # SHA-256 and constant-time compares of --auth-tokens (server/auth/)
  openssl  # the TLS tests make their certificates with it
  python3-yaml  # tests/deploy/check_deploy.py reads deploy/'s YAML
  python3-grpcio python3-numpy  # client/python and its tests (PythonClient.Tests)
)
for extra in "$@"; do
  case $extra in
    --python)
      packages+=(python3-torch python3-numpy python3-matplotlib
                 libopenblas0-pthread python3-protobuf) ;;
    --bench)
      # oneDNN, for bench/onednn_compare only (the engine does not link it;
      # the build skips that program without it).
      packages+=(libdnnl-dev) ;;
    *) echo "install-deps: unknown option $extra (--python, --bench)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo=()
if [[ $(id -u) -ne 0 ]]; then sudo=(sudo); fi
echo "install-deps: installing ${missing[*]}"
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
