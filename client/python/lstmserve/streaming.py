"""StreamingSession: one session's pipelined chunks over its own Stream call,
with reconnection and exactly-once resends (the Python counterpart of the
C++ client's StreamingSession, client/streaming_session.cc).

Threads: a worker per session opens the call, enforces each chunk's
deadline and decides what the call's end means; a reader per call handles
the answers. All state is guarded by one condition variable's lock; results
are delivered (futures completed) outside it, one at a time, in send order.
"""
from __future__ import annotations

import itertools
import queue
import threading
import time
from collections import deque
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, Deque, Dict, Optional, Tuple

import grpc
import numpy as np

from lstmserve._core import (LstmServeError, ResendLog, SessionInfo, as_steps,
                             backoff, from_tensor, metadata, pb,
                             session_lost, to_tensor)

if TYPE_CHECKING:
    from lstmserve.client import Client

# Stream failures after which reconnecting and resending is worth it: the
# server went away or restarted, or the stream broke. Resending is always
# safe, since every chunk carries its first_step.
_RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED,
              grpc.StatusCode.ABORTED, grpc.StatusCode.UNKNOWN,
              grpc.StatusCode.INTERNAL, grpc.StatusCode.DEADLINE_EXCEEDED}
_FAILED_PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION.value[0]


class _Chunk:
    """One chunk of steps: waiting, on the wire, or answered."""
    __slots__ = ("inputs", "first_step", "resend", "future", "request_id",
                 "done", "outputs", "error")

    def __init__(self, inputs: np.ndarray, future: Optional[Future],
                 first_step: Optional[int] = None, resend: bool = False):
        self.inputs = inputs
        self.first_step = first_step  # fixed when first written
        # Steps the server lost in a crash, sent again from the ResendLog:
        # their answers were delivered before and are not delivered again.
        self.resend = resend
        self.future = future
        self.request_id = 0  # of the attempt on the wire; 0: none
        self.done = False
        self.outputs: Optional[np.ndarray] = None
        self.error: Optional[LstmServeError] = None


class StreamingSession:
    """A session stepped over its own bidirectional Stream call.

    ``send(inputs)`` queues a chunk and returns a ``concurrent.futures.
    Future`` of its float32 outputs [T, output_size]; ``step(inputs)``
    waits for them. Up to the client's ``max_inflight_chunks`` chunks are on
    the wire at once, each numbered with its ``first_step``; answers come
    back in send order.

    - A request error (INVALID_ARGUMENT for a row of the wrong width, say)
      fails that chunk only; the chunks sent behind it are renumbered and
      resent, and the session goes on.
    - A broken stream (UNAVAILABLE, a server that went away or restarted, no
      answer within the client's ``timeout``) is reopened with backoff and
      every unanswered chunk resent with the same ``first_step``: the
      server applies it or answers it from its replay record. After
      ``max_retries`` consecutive failed attempts the pending chunks fail
      with the last error.
    - Against a server with ``--state-dir``, the answered inputs from the
      server's ``durable_step`` on are kept (at most ``max_resend_steps``).
      When the server comes back from a crash behind the session
      (FAILED_PRECONDITION with the step it holds in ``next_step``), they
      are resent first; their answers are not delivered again. Steps that
      were not kept fail the pending chunks with DATA_LOSS.
    - The stream carries ``x-session-id`` (and the token) in its metadata.

    Thread-safe. Future callbacks run on the session's threads, one at a
    time and in send order; they may call ``send`` but must not block or
    call ``flush``/``close``/``detach``.
    """

    def __init__(self, client: "Client", info: SessionInfo,
                 create_model: bool = False) -> None:
        self._client = client
        self.id = info.session_id
        self.model = info.model
        self.version = info.version
        # Only a session missing when opened is created by the stream: one
        # that vanished later must not come back silently at step 0.
        self._create_model = info.model if create_model else ""
        self._create_version = info.version
        self._cond = threading.Condition()
        self._chunks: Deque[_Chunk] = deque()
        self._inflight = 0
        self._next_first_step = info.next_step  # of the next chunk to number
        self._next_step = info.next_step  # from the last answer
        self._durable_step = info.durable_step
        self._log = ResendLog(client.max_resend_steps)
        self._ids = itertools.count(1)
        self._awaiting: Dict[int, float] = {}  # request id -> deadline
        self._sent_order: Deque[int] = deque()  # request ids, oldest first
        self._queue: Optional["queue.SimpleQueue[Any]"] = None  # open call's
        self._call_done = False
        self._call_error: Optional[LstmServeError] = None
        self._failures = 0  # consecutive failed attempts
        self._reconnect_at = 0.0
        self._outbox: Deque[Tuple[Optional[Future], Optional[np.ndarray],
                                  Optional[LstmServeError]]] = deque()
        self._delivering = False
        self._sent = 0
        self._delivered = 0
        self._closing = False
        self._closed = False  # the server-side session, by close()
        self._worker: Optional[threading.Thread] = None

    # -- public API --------------------------------------------------------

    @property
    def next_step(self) -> int:
        """The session's next step, from the last answer."""
        with self._cond:
            return self._next_step

    @property
    def durable_step(self) -> Optional[int]:
        """From the last answer: steps before it survive a server crash
        (None: the server keeps no state; -1: no checkpoint yet)."""
        with self._cond:
            return self._durable_step

    def send(self, inputs: Any) -> "Future[np.ndarray]":
        """Queues ``inputs`` [T, input_size] (a 1-D array is one step);
        never waits for the network. The future's result is the outputs
        [T, output_size], or it raises LstmServeError. Raises at once for
        inputs that are not a 2-D float array or a closed stream."""
        array = as_steps(inputs)
        future: "Future[np.ndarray]" = Future()
        with self._cond:
            if self._closing:
                raise LstmServeError(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"the stream of session \"{self.id}\" is closed")
            self._chunks.append(_Chunk(array, future))
            self._sent += 1
            if self._worker is None:
                self._worker = threading.Thread(
                    target=self._run, daemon=True,
                    name=f"lstmserve-stream-{self.id}")
                self._worker.start()
            self._pump()
            self._cond.notify_all()
        self._drain()
        return future

    def step(self, inputs: Any) -> np.ndarray:
        """``send(inputs).result()``: the outputs [T, output_size]."""
        return self.send(inputs).result()

    def flush(self) -> None:
        """Waits until every chunk sent so far has its result."""
        with self._cond:
            target = self._sent
            self._cond.wait_for(lambda: self._delivered >= target)

    def detach(self) -> None:
        """Flushes, then ends the stream; the session stays on the server
        (continue it with ``client.stream_session(id=...)``). Idempotent."""
        self.flush()
        with self._cond:
            self._closing = True
            self._cond.notify_all()
            worker = self._worker
        if worker is not None and worker is not threading.current_thread():
            worker.join()

    def close(self) -> None:
        """Detaches, then closes (deletes) the session on the server.
        Idempotent."""
        self.detach()
        with self._cond:
            if self._closed:
                return
        self._client.close_session(self.id)
        with self._cond:
            self._closed = True

    def cancel(self) -> None:
        """Fails every unanswered chunk with CANCELLED at once (a chunk the
        server already applied stays applied) and detaches."""
        with self._cond:
            self._take_back(0, renumber=False)
            self._fail_all(LstmServeError(
                grpc.StatusCode.CANCELLED,
                f"session \"{self.id}\": cancelled while waiting for the "
                "server"))
            self._cond.notify_all()
        self._drain()
        self.detach()

    def info(self) -> SessionInfo:
        """The session as the server holds it now."""
        return self._client.get_session(self.id)

    def export(self) -> Any:
        """The session's snapshot (see ``Client.export_session``)."""
        return self._client.export_session(self.id)

    def __enter__(self) -> "StreamingSession":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- the worker: calls, deadlines, reconnection ------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._closing and not self._chunks:
                    return
                wait = self._reconnect_at - time.monotonic()
                if not self._chunks or wait > 0:
                    self._cond.wait(wait if self._chunks else None)
                    continue
                call, requests = self._start_call()
                deadline_hit = self._supervise(call, requests)
                requests.put(None)  # ends gRPC's reading of the queue
                self._call_ended(deadline_hit)
            self._drain()

    def _start_call(self) -> Tuple[Any, "queue.SimpleQueue[Any]"]:
        requests: "queue.SimpleQueue[Any]" = queue.SimpleQueue()
        call = self._client._stub.Stream(
            iter(requests.get, None),
            metadata=metadata(self._client.token, self.id))
        self._queue = requests
        self._call_done = False
        self._call_error = None
        threading.Thread(target=self._read, args=(call,), daemon=True,
                         name=f"lstmserve-read-{self.id}").start()
        self._pump()
        return call, requests

    def _supervise(self, call: Any,
                   requests: "queue.SimpleQueue[Any]") -> bool:
        """Waits (lock held, released while waiting) for the call to end;
        cancels it when the oldest unanswered chunk is past its deadline,
        half-closes it once the session is closing and idle. Returns whether
        it was cancelled for a deadline."""
        deadline_hit = False
        close_deadline = float("inf")
        while not self._call_done:
            now = time.monotonic()
            if self._closing and not self._chunks and close_deadline == float(
                    "inf"):
                requests.put(None)  # half-close; the server ends the call
                close_deadline = now + self._client.timeout
            while (self._sent_order
                   and self._sent_order[0] not in self._awaiting):
                self._sent_order.popleft()
            oldest = (self._awaiting[self._sent_order[0]] if self._sent_order
                      else float("inf"))
            wake = min(oldest, close_deadline)
            if not deadline_hit and now >= wake:
                deadline_hit = True
                call.cancel()
            self._cond.wait(None if deadline_hit or wake == float("inf")
                            else max(wake - now, 0.001))
        return deadline_hit

    def _read(self, call: Any) -> None:
        error: Optional[LstmServeError] = None
        try:
            for response in call:
                with self._cond:
                    self._answer(response)
                self._drain()
        except grpc.RpcError as e:
            error = LstmServeError.from_rpc(e)
        except Exception as e:  # a bug here must not hang the session
            error = LstmServeError(grpc.StatusCode.INTERNAL,
                                   f"lstmserve client: {e!r}")
            call.cancel()
        finally:
            with self._cond:
                self._call_done = True
                self._call_error = error
                self._cond.notify_all()

    def _call_ended(self, deadline_hit: bool) -> None:
        """Decides what the end of a call means for the unanswered chunks:
        resent on the next call, or failed."""
        self._queue = None
        self._take_back(0, renumber=False)  # resent as they were
        self._awaiting.clear()
        self._sent_order.clear()
        if not self._chunks:
            return  # reopened when needed
        error = self._call_error
        if deadline_hit:
            error = LstmServeError(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                f"no response from the server within {self._client.timeout} s")
        elif error is None:
            error = LstmServeError(
                grpc.StatusCode.UNAVAILABLE,
                "the server ended the stream before answering")
        if deadline_hit or error.code in _RETRYABLE:
            self._failures += 1
            if self._failures <= self._client.max_retries:
                self._reconnect_at = time.monotonic() + backoff(
                    self._client.initial_backoff, self._client.max_backoff,
                    self._failures)
                return
        self._fail_all(error)
        self._failures = 0
        self._reconnect_at = 0.0

    # -- chunks (all with the lock held) -----------------------------------

    def _pump(self) -> None:
        """Moves answered chunks at the front to the outbox (in send order)
        and puts the next chunks on the wire, up to the window."""
        while self._chunks and self._chunks[0].done:
            chunk = self._chunks.popleft()
            if chunk.resend:  # its answer was delivered before the crash
                if chunk.error is not None:
                    self._fail_all(LstmServeError(
                        chunk.error.code,
                        "resending the steps the server lost failed: "
                        + chunk.error.message))
                    return
                continue
            self._outbox.append((chunk.future, chunk.outputs, chunk.error))
        if self._queue is None or self._call_done:
            return
        window = self._client.max_inflight_chunks
        for chunk in self._chunks:
            if self._inflight >= window:
                break
            if chunk.done or chunk.request_id:
                continue
            if chunk.first_step is None:
                chunk.first_step = self._next_first_step
                self._next_first_step += chunk.inputs.shape[0]
            chunk.request_id = next(self._ids)
            request = pb.StreamRequest(request_id=chunk.request_id,
                                       session_id=self.id,
                                       first_step=chunk.first_step)
            to_tensor(chunk.inputs, request.inputs)
            if self._create_model:
                request.create_model = self._create_model
                request.create_version = self._create_version
            self._queue.put(request)
            self._awaiting[chunk.request_id] = (time.monotonic()
                                                + self._client.timeout)
            self._sent_order.append(chunk.request_id)
            self._inflight += 1

    def _answer(self, response: Any) -> None:
        """A response: completes its chunk, or starts a recovery."""
        if self._awaiting.pop(response.request_id, None) is None:
            return  # answers nothing we wait for (a chunk taken back)
        self._failures = 0
        k = next(i for i, c in enumerate(self._chunks)
                 if c.request_id == response.request_id)
        chunk = self._chunks[k]
        chunk.request_id = 0
        self._inflight -= 1
        durable = (response.durable_step
                   if response.HasField("durable_step") else None)
        code = response.error.code if response.HasField("error") else 0
        if (code == _FAILED_PRECONDITION and self._log.active
                and response.next_step < chunk.first_step):
            # The server is behind this chunk: it came back from its last
            # checkpoint and a crash lost the steps after it.
            self._recover(k, response.next_step)
        elif code:
            chunk.error = session_lost(
                LstmServeError.from_wire(code, response.error.message),
                self.id, chunk.first_step)
            chunk.done = True
            # It did not run, so the chunks behind it were numbered one
            # chunk too far: take them back and number them from its start.
            self._take_back(k + 1, renumber=True)
            self._next_first_step = chunk.first_step
        else:
            # The end of the furthest chunk answered: a replay carries
            # where the server is now, which may be past later chunks.
            self._next_step = max(self._next_step,
                                  chunk.first_step + chunk.inputs.shape[0])
            self._durable_step = durable
            # Once the session exists and is durable (or the server keeps
            # no store), a server that lost it must say NOT_FOUND, not
            # create it again at step 0. Until its first checkpoint a crash
            # may lose it whole: then the stream creates it again and the
            # kept inputs replay it from step 0.
            if durable is None or durable >= 0:
                self._create_model = ""
            if chunk.resend:
                self._log.durable(durable)
            else:
                try:
                    chunk.outputs = from_tensor(response.outputs,
                                                chunk.inputs.shape[0])
                except LstmServeError as e:
                    chunk.error = e
                self._log.answered(chunk.first_step, chunk.inputs, durable)
            chunk.done = True
        self._pump()
        self._cond.notify_all()

    def _recover(self, k: int, server_step: int) -> None:
        """Puts the steps the server lost (from the ResendLog) in front of
        chunk k, to be sent first; or fails the pending chunks with
        DATA_LOSS when they were not kept."""
        self._take_back(k, renumber=False)  # k on go out again as they were
        try:
            lost = self._log.between(server_step, self._chunks[k].first_step)
        except LstmServeError as e:
            self._fail_all(e)
            return
        for first_step, inputs in reversed(lost):
            self._chunks.insert(k, _Chunk(inputs, None, first_step,
                                          resend=True))

    def _take_back(self, start: int, renumber: bool) -> None:
        """Takes back the chunks on the wire from index ``start`` on (their
        answers, if any come, are ignored); ``renumber`` also forgets their
        first_steps and error answers (numbered as if an earlier chunk had
        run, an error may be only that numbering)."""
        for chunk in itertools.islice(self._chunks, start, None):
            if chunk.request_id:
                self._awaiting.pop(chunk.request_id, None)
                chunk.request_id = 0
                self._inflight -= 1
            if (renumber and chunk.first_step is not None
                    and not (chunk.done and chunk.error is None)):
                chunk.first_step = None
                chunk.done = False
                chunk.error = None

    def _fail_all(self, error: LstmServeError) -> None:
        self._take_back(0, renumber=False)
        for chunk in self._chunks:
            if chunk.future is not None:
                self._outbox.append(
                    (chunk.future, chunk.outputs,
                     chunk.error if chunk.done else error))
        self._chunks.clear()
        self._inflight = 0

    # -- delivery ----------------------------------------------------------

    def _drain(self) -> None:
        """Completes the outbox's futures outside the lock, one at a time
        and in order; whoever finds nobody delivering does it."""
        with self._cond:
            if self._delivering:
                return  # that thread sees our results too
            self._delivering = True
        while True:
            with self._cond:
                if not self._outbox:
                    self._delivering = False
                    self._cond.notify_all()
                    return
                future, outputs, error = self._outbox.popleft()
            if future is not None:
                if error is not None:
                    future.set_exception(error)
                else:
                    future.set_result(outputs)
            with self._cond:
                self._delivered += 1
                self._cond.notify_all()
