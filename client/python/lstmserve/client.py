"""The lstmserve client: models, stateless predictions and sessions."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import (TYPE_CHECKING, Any, Callable, List, Mapping, Optional,
                    Tuple, TypeVar, Union)

import grpc
import numpy as np

from lstmserve._core import (LstmServeError, Metadata, ModelInfo, ResendLog,
                             SessionInfo, as_steps, backoff, from_tensor,
                             metadata, pb, pb_grpc, session_lost, to_tensor)

if TYPE_CHECKING:
    from lstmserve.streaming import StreamingSession

T = TypeVar("T")


@dataclass(frozen=True)
class Tls:
    """TLS settings; every field optional (paths to PEM files).

    ca: the CAs that signed the server's certificate (default: the
    system's). cert, key: a client certificate and its key, for a server
    with ``--tls-client-ca`` (mutual TLS); both or neither. server_name: the
    name the server's certificate must carry, when connecting by IP address
    or through a proxy (``grpc.ssl_target_name_override``).
    """
    ca: Optional[str] = None
    cert: Optional[str] = None
    key: Optional[str] = None
    server_name: Optional[str] = None


def _read(path: Optional[str], what: str) -> Optional[bytes]:
    if not path:
        return None
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise LstmServeError(grpc.StatusCode.INVALID_ARGUMENT,
                             f"cannot read {what} \"{path}\": {e}") from e
    if not data:
        raise LstmServeError(grpc.StatusCode.INVALID_ARGUMENT,
                             f"cannot read {what} \"{path}\": empty file")
    return data


class Client:
    """A connection to an lstmserve server.

    ``target`` is any gRPC target (``"127.0.0.1:50051"``). ``tls``: None for
    plaintext; True for TLS checked against the system's CAs; or a ``Tls``
    (or a dict with its fields: ca, cert, key, server_name). ``token`` is
    sent as ``authorization: Bearer TOKEN`` on every call and stream.

    ``timeout`` (seconds) bounds each call, retries included, and for a
    stream each chunk's answer once written. Calls that are safe to repeat
    are retried on UNAVAILABLE up to ``max_retries`` times with exponential
    backoff from ``initial_backoff`` to ``max_backoff`` seconds.
    ``max_inflight_chunks`` is how many chunks a streaming session keeps on
    the wire (at most the server's ``--max-replay-chunks``, default 8);
    ``max_resend_steps`` how many steps of inputs each session keeps to
    resend after a server crash.

    Creating a client does not contact the server: an unreachable server is
    UNAVAILABLE from the first call. Thread-safe; use it as a context
    manager or call ``close()``.
    """

    def __init__(self, target: str = "127.0.0.1:50051", *,
                 tls: Union[None, bool, Tls, Mapping[str, str]] = None,
                 token: Optional[str] = None, timeout: float = 10.0,
                 max_retries: int = 8, initial_backoff: float = 0.05,
                 max_backoff: float = 2.0, max_inflight_chunks: int = 4,
                 max_resend_steps: int = 65536,
                 max_message_bytes: int = 16 << 20) -> None:
        self.target = target
        self.token = token
        self.timeout = timeout
        self.max_retries = max_retries
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.max_inflight_chunks = max_inflight_chunks
        self.max_resend_steps = max_resend_steps
        options: List[Tuple[str, Any]] = [
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.initial_reconnect_backoff_ms", int(initial_backoff * 1000)),
            ("grpc.max_reconnect_backoff_ms", int(max_backoff * 1000)),
        ]
        if tls is None or tls is False:
            self._channel = grpc.insecure_channel(target, options=options)
        else:
            if tls is True:
                tls = Tls()
            elif isinstance(tls, Mapping):
                tls = Tls(**tls)
            if bool(tls.cert) != bool(tls.key):
                raise LstmServeError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "tls cert and key go together: set both or neither")
            credentials = grpc.ssl_channel_credentials(
                root_certificates=_read(tls.ca, "tls ca"),
                private_key=_read(tls.key, "tls key"),
                certificate_chain=_read(tls.cert, "tls cert"))
            if tls.server_name:
                options.append(("grpc.ssl_target_name_override",
                                tls.server_name))
            self._channel = grpc.secure_channel(target, credentials,
                                                options=options)
        self._stub = pb_grpc.LstmServeStub(self._channel)

    # -- plumbing --------------------------------------------------------

    def _metadata(self, session_id: Optional[str] = None) -> Metadata:
        return metadata(self.token, session_id)

    def _call(self, method: Callable[..., T], request: Any, *,
              retry: bool, session_id: Optional[str] = None,
              timeout: Optional[float] = None) -> T:
        """One unary call within one deadline, retried on UNAVAILABLE with
        backoff when ``retry`` (the call is safe to repeat)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        md = self._metadata(session_id)
        attempt = 0
        while True:
            left = deadline - time.monotonic()
            try:
                return method(request, timeout=max(left, 0.001), metadata=md)
            except grpc.RpcError as e:
                error = LstmServeError.from_rpc(e)
            attempt += 1
            if (not retry or error.code != grpc.StatusCode.UNAVAILABLE
                    or attempt > self.max_retries):
                raise error
            pause = backoff(self.initial_backoff, self.max_backoff, attempt)
            if time.monotonic() + pause >= deadline:
                raise error  # no time left for another attempt
            time.sleep(pause)

    # -- models and stateless predictions --------------------------------

    def models(self) -> List[ModelInfo]:
        """The served models, sorted by name, each its default version."""
        response = self._call(self._stub.ListModels, pb.ListModelsRequest(),
                              retry=True)
        return [ModelInfo.from_proto(m) for m in response.models]

    def model(self, name: str, version: int = 0) -> ModelInfo:
        """One model version's metadata (version 0: the highest)."""
        return ModelInfo.from_proto(self._call(
            self._stub.GetModel,
            pb.GetModelRequest(name=name, version=version),
            retry=True))

    def predict(self, model: str, inputs: Any, version: int = 0) -> np.ndarray:
        """Runs ``inputs`` [T, input_size] from the zero state, keeping
        nothing: returns float32 outputs [T, output_size]. Retried on
        UNAVAILABLE (a stateless call changes nothing on the server)."""
        array = as_steps(inputs)
        request = pb.PredictRequest(model=model, version=version)
        to_tensor(array, request.inputs)
        response = self._call(self._stub.Predict, request, retry=True)
        return from_tensor(response.outputs, array.shape[0])

    # -- sessions ----------------------------------------------------------

    def _find_or_create(self, model: Optional[str], session_id: Optional[str],
                        version: int, create: bool,
                        lazily: bool) -> Tuple[SessionInfo, bool]:
        """The session as the server holds it, created when missing (with a
        server-made id when ``session_id`` is None); with ``lazily`` a
        missing named session is left to the stream's first message to
        create (returns created_by_stream=True and next_step 0)."""

        def make() -> SessionInfo:
            if not model:
                raise LstmServeError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "model is empty; a new session needs the model to run")
            return self.create_session(model, version=version,
                                       session_id=session_id)

        if not session_id:
            return make(), False
        try:
            info = self.get_session(session_id)
        except LstmServeError as e:
            if e.code != grpc.StatusCode.NOT_FOUND or not create:
                raise
        else:
            if model and info.model != model:
                raise LstmServeError(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"session \"{session_id}\" runs model \"{info.model}\", "
                    f"not \"{model}\"")
            if version and info.version != version:
                raise LstmServeError(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"session \"{session_id}\" runs version {info.version} "
                    f"of model \"{info.model}\", not version {version}")
            return info, False
        if lazily:
            if not model:
                raise LstmServeError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "model is empty; a new session needs the model to run")
            return SessionInfo(session_id, model, version, 0, 0, 0, 0, None,
                               ""), True
        try:
            return make(), False
        except LstmServeError as e:
            if e.code != grpc.StatusCode.ALREADY_EXISTS:
                raise
            return self.get_session(session_id), False  # created concurrently

    def session(self, model: Optional[str] = None, id: Optional[str] = None,
                version: int = 0, create: bool = True) -> "Session":
        """A session stepped by unary Predict calls.

        With ``id`` None the server creates a session with a unique id;
        with an id the session is continued from its next step, or created
        if it does not exist (``create=False``: NOT_FOUND instead).
        """
        info, _ = self._find_or_create(model, id, version, create, False)
        return Session(self, info)

    def stream_session(self, model: Optional[str] = None,
                       id: Optional[str] = None, version: int = 0,
                       create: bool = True) -> "StreamingSession":
        """A session stepped over its own bidirectional Stream call, with
        pipelined chunks, reconnection and resends (see StreamingSession).
        ``model``, ``id``, ``version`` and ``create`` as in ``session()``;
        a missing named session is created by the stream's first message."""
        from lstmserve.streaming import StreamingSession
        info, by_stream = self._find_or_create(model, id, version, create,
                                               True)
        return StreamingSession(self, info, create_model=by_stream)

    def create_session(self, model: str, version: int = 0,
                       session_id: Optional[str] = None,
                       initial_state: Optional[Any] = None) -> SessionInfo:
        """Creates a session (server-made id when ``session_id`` is None),
        from the zero state or ``initial_state`` (state_size floats). Not
        retried: ALREADY_EXISTS if the id is taken."""
        request = pb.CreateSessionRequest(session_id=session_id or "",
                                          model=model, version=version)
        if initial_state is not None:
            request.initial_state.extend(
                np.asarray(initial_state, dtype=np.float32).ravel().tolist())
        return SessionInfo.from_proto(self._call(
            self._stub.CreateSession, request, retry=False,
            session_id=session_id))

    def get_session(self, session_id: str) -> SessionInfo:
        """The session as the server holds it; NOT_FOUND if missing."""
        return SessionInfo.from_proto(self._call(
            self._stub.GetSession, pb.GetSessionRequest(session_id=session_id),
            retry=True, session_id=session_id))

    def reset_session(self, session_id: str) -> SessionInfo:
        """Back to the zero state and step 0. Not retried."""
        return SessionInfo.from_proto(self._call(
            self._stub.ResetSession,
            pb.ResetSessionRequest(session_id=session_id), retry=False,
            session_id=session_id))

    def close_session(self, session_id: str) -> None:
        """Closes (deletes) the session. Not retried."""
        self._call(self._stub.CloseSession,
                   pb.CloseSessionRequest(session_id=session_id), retry=False,
                   session_id=session_id)

    def list_sessions(self) -> List[SessionInfo]:
        """Every session this caller may see, by id (all pages)."""
        out: List[SessionInfo] = []
        token = ""
        while True:
            response = self._call(
                self._stub.ListSessions,
                pb.ListSessionsRequest(page_size=1000, page_token=token),
                retry=True)
            out.extend(SessionInfo.from_proto(s) for s in response.sessions)
            token = response.next_page_token
            if not token:
                return out

    def export_session(self, session_id: str) -> Any:
        """The session's snapshot (a ``lstmserve.v1.SessionSnapshot``
        message; ``SerializeToString()`` gives bytes to store)."""
        return self._call(self._stub.ExportSession,
                          pb.ExportSessionRequest(session_id=session_id),
                          retry=True, session_id=session_id)

    def import_session(self, snapshot: Any) -> SessionInfo:
        """Creates a session from a snapshot (a SessionSnapshot message or
        its serialized bytes). ALREADY_EXISTS if the id is taken."""
        if isinstance(snapshot, (bytes, bytearray)):
            snapshot = pb.SessionSnapshot.FromString(bytes(snapshot))
        return SessionInfo.from_proto(self._call(
            self._stub.ImportSession,
            pb.ImportSessionRequest(snapshot=snapshot), retry=False,
            session_id=snapshot.session_id))

    def close(self) -> None:
        """Closes the channel; sessions on the server stay."""
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class Session:
    """A server-side session stepped by unary Predict calls.

    Every chunk carries its ``first_step``, so a retry after a lost answer
    (UNAVAILABLE) is applied at most once: the server answers an exact
    repeat from its record. Against a server with ``--state-dir`` the inputs
    from the server's ``durable_step`` on are kept (at most the client's
    ``max_resend_steps``) and resent when the server comes back from a
    crash behind this session. Every call carries ``x-session-id``.

    Dropping the object leaves the session on the server (until
    ``close()`` or the server's idle timeout). Thread-safe: concurrent
    ``step`` calls run one at a time.
    """

    _MAX_RECOVERIES = 8

    def __init__(self, client: Client, info: SessionInfo) -> None:
        self._client = client
        self.id = info.session_id
        self.model = info.model
        self.version = info.version
        self._next_step = info.next_step
        self._durable_step = info.durable_step
        self._log = ResendLog(client.max_resend_steps)
        self._lock = threading.Lock()
        self._closed = False

    @property
    def next_step(self) -> int:
        """The step index the next chunk starts at."""
        return self._next_step

    @property
    def durable_step(self) -> Optional[int]:
        """From the last answer: steps before it survive a server crash
        (None: the server keeps no state; -1: no checkpoint yet)."""
        return self._durable_step

    def _predict(self, first_step: int, inputs: np.ndarray) -> Any:
        request = pb.PredictRequest(session_id=self.id, first_step=first_step)
        to_tensor(inputs, request.inputs)
        return self._client._call(self._client._stub.Predict, request,
                                  retry=True, session_id=self.id)

    def step(self, inputs: Any) -> np.ndarray:
        """Runs ``inputs`` [T, input_size] (a 1-D array is one step) from the
        session's state; returns float32 outputs [T, output_size].

        After an error other than a request error (DEADLINE_EXCEEDED, say)
        the chunk may or may not have been applied: calling ``step`` again
        with the same inputs is safe either way.
        """
        array = as_steps(inputs)
        with self._lock:
            if self._closed:
                raise LstmServeError(grpc.StatusCode.FAILED_PRECONDITION,
                                     f"session \"{self.id}\" was closed")
            first = self._next_step
            try:
                response = self._step_recovering(first, array)
            except LstmServeError as e:
                raise session_lost(e, self.id, first) from None
            durable = (response.durable_step
                       if response.HasField("durable_step") else None)
            outputs = from_tensor(response.outputs, array.shape[0])
            self._log.answered(first, array, durable)
            self._next_step = first + array.shape[0]  # this chunk's end
            self._durable_step = durable
            return outputs

    def _step_recovering(self, first: int, array: np.ndarray) -> Any:
        try:
            return self._predict(first, array)
        except LstmServeError as e:
            error = e
        # A server that came back from its last checkpoint is behind this
        # chunk: resend the steps it lost, then the chunk again. A crash
        # during that starts over (a few times at most).
        for _ in range(self._MAX_RECOVERIES):
            if (error.code != grpc.StatusCode.FAILED_PRECONDITION
                    or not self._log.active):
                break
            try:
                server_step = self._client.get_session(self.id).next_step
            except LstmServeError:
                break
            if server_step >= first:
                break  # ahead of us: another client moved it; not a crash
            lost = self._log.between(server_step, first)  # DATA_LOSS
            try:
                for step, chunk in lost:
                    self._predict(step, chunk)
            except LstmServeError as e:
                if e.code != grpc.StatusCode.FAILED_PRECONDITION:
                    raise LstmServeError(
                        e.code, "resending the steps the server lost failed: "
                        + e.message) from None
                error = e  # it moved back again: start over
                continue
            try:
                return self._predict(first, array)
            except LstmServeError as e:
                error = e
        raise error

    def info(self) -> SessionInfo:
        """The session as the server holds it now."""
        return self._client.get_session(self.id)

    def reset(self) -> SessionInfo:
        """Back to the zero state and step 0."""
        with self._lock:
            info = self._client.reset_session(self.id)
            self._next_step = info.next_step
            self._log = ResendLog(self._client.max_resend_steps)
            return info

    def export(self) -> Any:
        """The session's snapshot (see ``Client.export_session``)."""
        return self._client.export_session(self.id)

    def close(self) -> None:
        """Closes (deletes) the session on the server. Idempotent."""
        with self._lock:
            if not self._closed:
                self._client.close_session(self.id)
                self._closed = True

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
