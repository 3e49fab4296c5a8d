"""Starts a real lstm-server for the tests and computes references.

The build directory (lstm-server, lstm-client, lstm-model) is
$LSTMSERVE_BUILD_DIR; the repository (models/) is $LSTMSERVE_SOURCE_DIR,
else three levels above this file.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator, Optional, Sequence

import numpy as np

SOURCE_DIR = Path(os.environ.get(
    "LSTMSERVE_SOURCE_DIR", Path(__file__).resolve().parents[3]))
MODELS = SOURCE_DIR / "models"


def build_dir() -> Path:
    value = os.environ.get("LSTMSERVE_BUILD_DIR")
    if not value:
        raise RuntimeError("set LSTMSERVE_BUILD_DIR to the C++ build "
                           "directory (lstm-server, lstm-client, lstm-model)")
    return Path(value)


def binary(name: str) -> str:
    path = build_dir() / name
    if not path.is_file():
        raise RuntimeError(f"{path} not found: build the {name} target")
    return str(path)


def data(model: str) -> np.ndarray:
    """The bundled model's data.csv as float32 [T, input_size]."""
    return np.loadtxt(MODELS / model / "data.csv", delimiter=",",
                      dtype=np.float32, ndmin=2)


def parse_csv(text: str) -> np.ndarray:
    """CSV rows of floats (shortest round-trip form) as float32 [T, n]."""
    rows = [line.split(",") for line in text.splitlines() if line.strip()]
    return np.array(rows, dtype=np.float64).astype(np.float32)


def engine_reference(model: str) -> np.ndarray:
    """`lstm-model run` on the model's version 1 with its data.csv."""
    with open(MODELS / model / "data.csv", "rb") as stdin:
        out = subprocess.run([binary("lstm-model"), "run",
                              str(MODELS / model / "1")], stdin=stdin,
                             capture_output=True, check=True, timeout=60)
    return parse_csv(out.stdout.decode())


class Server:
    """An lstm-server on 127.0.0.1 (ephemeral port unless ``port``), with
    its log in a temporary directory. ``restart()`` starts it again on the
    same port and arguments (after ``kill()``)."""

    def __init__(self, extra: Sequence[str] = (), port: int = 0) -> None:
        self.extra = list(extra)
        self.dir = Path(tempfile.mkdtemp(prefix="lstmserve-py-"))
        self.port = port
        self.process: Optional[subprocess.Popen] = None
        self.starts = 0
        self.start()

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        port_file = self.dir / "port"
        if port_file.exists():
            port_file.unlink()
        self.starts += 1
        log = open(self.dir / f"server-{self.starts}.log", "wb")
        self.process = subprocess.Popen(
            [binary("lstm-server"), "--model-repo", str(MODELS),
             "--listen", f"127.0.0.1:{self.port}", "--port-file",
             str(port_file), "--metrics-listen", "127.0.0.1:0", *self.extra],
            stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if port_file.exists() and port_file.read_text().strip():
                self.port = int(port_file.read_text().strip())
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.02)
        self.kill()
        raise RuntimeError(f"lstm-server did not start:\n{self.log()}")

    def log(self) -> str:
        return "\n".join(p.read_text(errors="replace")
                         for p in sorted(self.dir.glob("server-*.log")))

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def stop(self) -> None:
        self.kill(signal.SIGTERM)
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def running(extra: Sequence[str] = ()) -> Iterator[Server]:
    """A Server for a ``with`` block: stopped at its end, its log printed
    when the block fails."""
    server = Server(extra)
    try:
        yield server
    except BaseException:
        print(server.log())
        raise
    finally:
        server.stop()


def cpp_stream(server: Server, model: str,
               extra: Sequence[str] = ()) -> np.ndarray:
    """`lstm-client stream --model MODEL < data.csv`: the C++ client's
    outputs, one step per line."""
    with open(MODELS / model / "data.csv", "rb") as stdin:
        out = subprocess.run([binary("lstm-client"), "--target", server.target,
                              "stream", "--model", model, *extra],
                             stdin=stdin, capture_output=True, timeout=120)
    if out.returncode != 0:
        raise RuntimeError(f"lstm-client failed: {out.stderr.decode()}")
    return parse_csv(out.stdout.decode())
