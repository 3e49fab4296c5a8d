#!/usr/bin/env python3
"""Runs the Python client's tests against a C++ build's binaries.

    /usr/bin/python3 client/python/tests/run_tests.py BUILD_DIR [-k PATTERN]

Generates the stubs into BUILD_DIR/python (or $LSTMSERVE_STUBS_DIR) with
build_stubs.py, puts the package and them on sys.path, and runs every
test_*.py here with unittest against BUILD_DIR's lstm-server, lstm-client and lstm-model. Exits 77 (the
test's SKIP_RETURN_CODE in CTest) saying why when this interpreter cannot
import grpc or numpy (Debian: python3-grpcio, python3-numpy).
"""
import importlib.util
import os
import sys
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
PACKAGE = HERE.parent


def importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # a missing parent package (google)
        return False


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
        print(__doc__, file=sys.stderr)
        return 2
    missing = [m for m in ("grpc", "numpy", "google.protobuf")
               if not importable(m)]
    if missing:
        print(f"SKIP: {sys.executable} cannot import {', '.join(missing)}; "
              "install python3-grpcio and python3-numpy "
              "(tools/install-deps.sh)")
        return 77
    build = Path(sys.argv[1]).resolve()
    sys.path[:0] = [str(PACKAGE), str(HERE)]
    import build_stubs
    stubs = Path(os.environ.get("LSTMSERVE_STUBS_DIR") or build / "python")
    build_stubs.generate(stubs)
    sys.path.append(str(stubs))  # lstmserve spans it (pkgutil.extend_path)
    os.environ["LSTMSERVE_BUILD_DIR"] = str(build)
    program = unittest.main(
        module=None, exit=False,
        argv=[sys.argv[0], "discover", "-v", "-s", str(HERE), "-t",
              str(HERE), *sys.argv[2:]])
    return 0 if program.result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
