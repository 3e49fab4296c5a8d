"""Pieces shared by the unary and the streaming sessions: errors, tensors,
backoff, call metadata, result types and the resend log."""
from __future__ import annotations

import os
import random
from collections import deque
from dataclasses import dataclass
from typing import Any, Deque, List, Optional, Tuple

# gRPC Python notices that a server it lost is back only when something
# polls the channel, which between calls is gRPC's backup poller, every 5 s
# by default: a restarted server would be found up to 5 s late, and a
# stopping one would wait for this client to see its GOAWAY. Read when gRPC
# initializes, so set before any channel or server exists (a value already
# in the environment wins).
os.environ.setdefault("GRPC_CLIENT_CHANNEL_BACKUP_POLL_INTERVAL_MS", "100")

import grpc  # noqa: E402
import numpy as np  # noqa: E402

try:
    from lstmserve.v1 import lstmserve_pb2 as pb
    from lstmserve.v1 import lstmserve_pb2_grpc as pb_grpc
except ImportError as e:  # pragma: no cover - depends on the install
    raise ImportError(
        "lstmserve: the generated gRPC stubs (lstmserve.v1) are missing: run "
        "client/python/build_stubs.py, or install the package with pip "
        "(docs/CLIENT.md, 'Python client')") from e

__all__ = ["pb", "pb_grpc", "LstmServeError", "ModelInfo", "SessionInfo",
           "ResendLog", "Metadata", "as_steps", "to_tensor", "from_tensor",
           "backoff", "session_lost", "metadata"]

Metadata = Tuple[Tuple[str, str], ...]

_CODES = {code.value[0]: code for code in grpc.StatusCode}


class LstmServeError(Exception):
    """A failed call: the gRPC status code and the server's message.

    ``code`` is a ``grpc.StatusCode`` (``grpc.StatusCode.NOT_FOUND``, ...);
    ``message`` is the server's message unchanged (or the client's own,
    for errors found before anything was sent). ``str(error)`` is
    ``"NOT_FOUND: model \\"nope\\" not found; ..."``.
    """

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message

    @classmethod
    def from_rpc(cls, error: grpc.RpcError) -> "LstmServeError":
        code = error.code() if hasattr(error, "code") else None
        details = error.details() if hasattr(error, "details") else None
        return cls(code or grpc.StatusCode.UNKNOWN, details or str(error))

    @classmethod
    def from_wire(cls, code: int, message: str) -> "LstmServeError":
        return cls(_CODES.get(code, grpc.StatusCode.UNKNOWN), message)


@dataclass(frozen=True)
class ModelInfo:
    """One model version's metadata (the wire ``ModelInfo``)."""
    name: str
    version: int
    versions: List[int]
    cell: str
    input_size: int
    output_size: int
    hidden_size: int
    num_layers: int
    proj_size: int
    head_activation: str
    state_size: int
    input_names: List[str]
    output_names: List[str]
    description: str
    weights: str

    @classmethod
    def from_proto(cls, m: Any) -> "ModelInfo":
        return cls(m.name, m.version, list(m.versions), m.cell, m.input_size,
                   m.output_size, m.hidden_size, m.num_layers, m.proj_size,
                   m.head_activation, m.state_size, list(m.input_names),
                   list(m.output_names), m.description, m.weights)


@dataclass(frozen=True)
class SessionInfo:
    """A session as the server holds it (the wire ``SessionInfo``).

    ``durable_step`` is None against a server without ``--state-dir``;
    -1 until the session's first checkpoint.
    """
    session_id: str
    model: str
    version: int
    next_step: int
    created_unix_ms: int
    last_used_unix_ms: int
    state_size: int
    durable_step: Optional[int]
    owner: str

    @classmethod
    def from_proto(cls, s: Any) -> "SessionInfo":
        return cls(s.session_id, s.model, s.version, s.next_step,
                   s.created_unix_ms, s.last_used_unix_ms, s.state_size,
                   s.durable_step if s.HasField("durable_step") else None,
                   s.owner)


def as_steps(inputs: Any) -> np.ndarray:
    """``inputs`` as a C-contiguous float32 array [T, features].

    A 1-D array is one step. Raises INVALID_ARGUMENT for anything else or
    for no steps.
    """
    try:
        array = np.ascontiguousarray(inputs, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise LstmServeError(grpc.StatusCode.INVALID_ARGUMENT,
                             f"inputs are not an array of floats: {e}") from e
    if array.ndim == 1:
        array = array.reshape(1, -1)
    if array.ndim != 2 or array.shape[0] < 1 or array.shape[1] < 1:
        raise LstmServeError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"inputs has shape {list(array.shape)}; expected [T, input_size] "
            "with T >= 1 (or one step as a 1-D array)")
    return array


def to_tensor(array: np.ndarray, tensor: Any) -> None:
    tensor.shape.extend(array.shape)
    tensor.values.extend(array.ravel().tolist())


def from_tensor(tensor: Any, steps: int) -> np.ndarray:
    """The [steps, output_size] float32 array of a response's outputs."""
    shape = list(tensor.shape)
    values = np.array(tensor.values, dtype=np.float32)
    if (len(shape) != 2 or shape[0] != steps or shape[1] < 0
            or shape[0] * shape[1] != values.size):
        raise LstmServeError(
            grpc.StatusCode.INTERNAL,
            f"server answered outputs of shape {shape} with {values.size} "
            f"values; expected [{steps}, output_size]")
    return values.reshape(shape)


def backoff(initial: float, cap: float, retry: int) -> float:
    """Seconds before retry ``retry`` (1, 2, ...): initial * 2^(retry-1),
    capped, with +-20% jitter (as the C++ client)."""
    delay = min(cap, initial * (2 ** min(retry - 1, 30)))
    return delay * random.uniform(0.8, 1.2)


def session_lost(error: LstmServeError, session_id: str,
                 expected_step: int) -> LstmServeError:
    """NOT_FOUND for a session this client had moved past step 0 says so."""
    if error.code != grpc.StatusCode.NOT_FOUND or expected_step == 0:
        return error
    return LstmServeError(
        error.code,
        f"{error.message}; this client had taken session \"{session_id}\" "
        f"to step {expected_step} (the server lost it: restarted without its "
        "state, or it expired), and does not start it again at step 0")


@dataclass
class _Kept:
    first_step: int
    inputs: np.ndarray  # [steps, input_size]

    @property
    def end(self) -> int:
        return self.first_step + self.inputs.shape[0]


class ResendLog:
    """The answered inputs of one session from the server's durable_step on,
    to resend after the server comes back from a crash at its last
    checkpoint. At most ``max_steps`` steps are kept (the oldest go first).
    Inactive (keeps nothing) while the server reports no durable_step.
    Not thread-safe: its session serializes access.
    """

    def __init__(self, max_steps: int) -> None:
        self.max_steps = max_steps
        self.active = False
        self._durable = -1
        self._kept: Deque[_Kept] = deque()
        self._steps = 0
        self._dropped_until = 0

    def durable(self, durable_step: Optional[int]) -> None:
        if durable_step is None:
            # A server without a store: nothing kept here could help.
            self.active = False
            self._kept.clear()
            self._steps = 0
            return
        self.active = True
        self._durable = max(self._durable, durable_step)
        self._trim()

    def answered(self, first_step: int, inputs: np.ndarray,
                 durable_step: Optional[int]) -> None:
        self.durable(durable_step)
        if not self.active:
            return
        if self._kept and self._kept[-1].end != first_step:
            # Not contiguous (someone else moved the session): what is kept
            # no longer leads here.
            self._kept.clear()
            self._steps = 0
            self._dropped_until = first_step
        self._kept.append(_Kept(first_step, inputs))
        self._steps += inputs.shape[0]
        self._trim()

    def _trim(self) -> None:
        while self._kept and self._kept[0].end <= self._durable:
            self._steps -= self._kept.popleft().inputs.shape[0]
        while self._steps > self.max_steps and self._kept:
            dropped = self._kept.popleft()
            self._steps -= dropped.inputs.shape[0]
            self._dropped_until = dropped.end

    def between(self, start: int, stop: int) -> List[Tuple[int, np.ndarray]]:
        """The kept (first_step, inputs) chunks covering steps [start, stop);
        DATA_LOSS if they were not all kept."""
        if start >= stop:
            return []
        covered = (bool(self._kept) and self._kept[0].first_step <= start
                   and self._kept[-1].end >= stop)
        if not covered:
            held = ("for none of the steps" if not self._kept else
                    f"for steps {self._kept[0].first_step} to "
                    f"{self._kept[-1].end - 1}")
            dropped = (" (older ones were dropped: max_resend_steps)"
                       if self._dropped_until > 0 else "")
            raise LstmServeError(
                grpc.StatusCode.DATA_LOSS,
                f"the server came back with the session at step {start} (its "
                f"last checkpoint) but this client holds its inputs only "
                f"{held}{dropped}; steps {start} to {stop - 1} cannot be "
                "resent")
        out = []
        for kept in self._kept:
            if kept.end <= start or kept.first_step >= stop:
                continue
            begin, end = max(kept.first_step, start), min(kept.end, stop)
            out.append((begin, kept.inputs[begin - kept.first_step:
                                           end - kept.first_step]))
        return out


def metadata(token: Optional[str], session_id: Optional[str]) -> Metadata:
    """Call metadata: the bearer token and the session id (for proxies that
    route by ``x-session-id``)."""
    md: List[Tuple[str, str]] = []
    if token:
        md.append(("authorization", f"Bearer {token}"))
    if session_id:
        md.append(("x-session-id", session_id))
    return tuple(md)

