"""The setuptools build hook: generates the gRPC stubs (lstmserve.v1, from
the repository's proto/ with Debian's protoc and grpc_python_plugin) before
setuptools looks for the packages, so that
``pip install --no-build-isolation ./client/python`` installs them.
Everything else is in pyproject.toml."""
import sys
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import build_stubs  # noqa: E402

build_stubs.generate(HERE)
setup()
