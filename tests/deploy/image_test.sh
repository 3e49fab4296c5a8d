#!/usr/bin/env bash
# Builds the container image and runs its smoke test (docs/DEPLOY.md).
# Skipped (77), saying why, where neither a Docker engine nor buildah can
# run. Slow (it compiles the server inside the build stage): ctest label
# "image"; `ctest -LE image` leaves it out.
#   image_test.sh BUILD_DIR
set -euo pipefail
cd "$(dirname "$0")/../.."
build=$1
if ! { command -v docker >/dev/null && docker info >/dev/null 2>&1; } &&
   ! command -v buildah >/dev/null; then
  echo "SKIPPED: neither a Docker engine nor buildah is available" \
       "(apt-get install buildah debootstrap to run this test)"
  exit 77
fi
tag=lstmserve:test
deploy/build-image.sh --tag "$tag"
deploy/smoke-test.sh --tag "$tag" --build "$build"
