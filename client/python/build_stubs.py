#!/usr/bin/env python3
"""Generates the Python gRPC stubs of proto/lstmserve/v1/lstmserve.proto.

    build_stubs.py [--proto-dir DIR] [--out DIR]

writes OUT/lstmserve/v1/{__init__,lstmserve_pb2,lstmserve_pb2_grpc}.py with
Debian's ``protoc`` and ``grpc_python_plugin`` (Debian's python3-grpc-tools
is too old for proto3 ``optional``). OUT defaults to this directory, so the
stubs land in the (gitignored) ``lstmserve/v1/`` package next to the client;
with ``--out BUILD_DIR`` they land outside the source tree, and the
``lstmserve`` package finds them there when BUILD_DIR is on ``sys.path``
(PYTHONPATH) after this directory. Generated files are never committed.

The proto directory is ``--proto-dir``, else $LSTMSERVE_PROTO_DIR, else the
repository's ``proto/`` (two levels up). ``protoc`` and the plugin are
looked up on PATH, else $PROTOC / $GRPC_PYTHON_PLUGIN.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROTO = Path("lstmserve") / "v1" / "lstmserve.proto"


def default_proto_dir() -> Path:
    env = os.environ.get("LSTMSERVE_PROTO_DIR")
    return Path(env) if env else HERE.parent.parent / "proto"


def _tool(env: str, name: str, fallback: str) -> str:
    found = os.environ.get(env) or shutil.which(name) or fallback
    if not Path(found).exists():
        raise SystemExit(
            f"build_stubs: {name} not found (set ${env}); on Debian: "
            "apt-get install protobuf-compiler protobuf-compiler-grpc")
    return found


def generate(out: Path, proto_dir: Path | None = None) -> Path:
    """Generates the stubs under ``out``; returns the package directory."""
    proto_dir = (proto_dir or default_proto_dir()).resolve()
    source = proto_dir / PROTO
    if not source.is_file():
        raise SystemExit(f"build_stubs: {source} not found (pass --proto-dir)")
    protoc = _tool("PROTOC", "protoc", "/usr/bin/protoc")
    plugin = _tool("GRPC_PYTHON_PLUGIN", "grpc_python_plugin",
                   "/usr/bin/grpc_python_plugin")
    out = out.resolve()
    package = out / "lstmserve" / "v1"
    package.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [protoc, f"--plugin=protoc-gen-grpc_python={plugin}",
         f"-I{proto_dir}", f"--python_out={out}", f"--grpc_python_out={out}",
         str(source)],
        check=True)
    (package / "__init__.py").write_text(
        '"""Generated from proto/lstmserve/v1/lstmserve.proto by '
        'build_stubs.py; do not edit."""\n')
    return package


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proto-dir", type=Path, default=None,
                        help="directory holding lstmserve/v1/lstmserve.proto")
    parser.add_argument("--out", type=Path, default=HERE,
                        help="where lstmserve/v1/ is written (default: here)")
    args = parser.parse_args(argv)
    package = generate(args.out, args.proto_dir)
    print(f"build_stubs: wrote {package}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
