"""The Python client against a real lstm-server (see serverutil.py for the
build directory), plus an in-process fake server that records metadata."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from concurrent import futures
from pathlib import Path
from typing import Any, Dict, List, Tuple

import grpc
import numpy as np

import lstmserve
from lstmserve.v1 import lstmserve_pb2 as pb
from lstmserve.v1 import lstmserve_pb2_grpc as pb_grpc

import serverutil

WAIT = 60  # seconds any one result may take


def bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)


class BitsMixin:
    def assertBitsEqual(self, a: np.ndarray, b: np.ndarray, what: str = ""):
        self.assertEqual(a.shape, b.shape, what)
        diff = np.nonzero(bits(a) != bits(b))
        if diff[0].size:
            i = diff[0][0]
            self.fail(f"{what}: {diff[0].size} values differ, first at row "
                      f"{i}: {a[i].tolist()} != {b[i].tolist()}")


class RealServerTest(BitsMixin, unittest.TestCase):
    """One server shared by the tests that do not restart it."""

    @classmethod
    def setUpClass(cls) -> None:
        cls.server = serverutil.Server()
        cls.client = lstmserve.Client(cls.server.target, timeout=30)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.client.close()
        cls.server.stop()

    def test_models(self) -> None:
        models = {m.name: m for m in self.client.models()}
        self.assertEqual(sorted(models), ["charlm", "elnino", "sunspots"])
        sunspots = models["sunspots"]
        self.assertEqual((sunspots.cell, sunspots.input_size,
                          sunspots.output_size, sunspots.versions),
                         ("gru", 1, 1, [1]))
        self.assertEqual(self.client.model("charlm").input_size, 97)

    def test_predict_equals_engine_reference(self) -> None:
        for model in ("sunspots", "elnino"):
            outputs = self.client.predict(model, serverutil.data(model))
            self.assertEqual(outputs.dtype, np.float32)
            self.assertBitsEqual(outputs, serverutil.engine_reference(model),
                                 model)

    def test_session_chunking_does_not_change_outputs(self) -> None:
        data = serverutil.data("elnino")
        whole = self.client.predict("elnino", data)
        for sizes in ([1] * 40, [7, 1, 30, 2], [len(data)]):
            session = self.client.session("elnino")
            outputs, at = [], 0
            while at < len(data):
                size = sizes[len(outputs) % len(sizes)]
                outputs.append(session.step(data[at:at + size]))
                at = min(at + size, len(data))
                self.assertEqual(session.next_step, at)
            self.assertBitsEqual(np.concatenate(outputs), whole, str(sizes))
            session.close()

    def test_streaming_session_equals_cpp_client(self) -> None:
        for model in ("sunspots", "elnino", "charlm"):
            data = serverutil.data(model)
            expected = serverutil.cpp_stream(self.server, model)
            stream = self.client.stream_session(model)
            pending = [stream.send(row) for row in data]  # pipelined
            outputs = np.concatenate([f.result(WAIT) for f in pending])
            self.assertEqual(stream.next_step, len(data))
            stream.close()
            self.assertBitsEqual(outputs, expected, model)

    def test_example_prints_what_lstm_client_prints(self) -> None:
        example = Path(__file__).resolve().parents[1] / "examples"
        with open(serverutil.MODELS / "sunspots" / "data.csv", "rb") as f:
            out = subprocess.run(
                [sys.executable, str(example / "stream_csv.py"), "--target",
                 self.server.target, "--model", "sunspots"], stdin=f,
                capture_output=True, timeout=WAIT,
                env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
        self.assertEqual(out.returncode, 0, out.stderr.decode())
        expected = serverutil.cpp_stream(self.server, "sunspots")
        self.assertBitsEqual(serverutil.parse_csv(out.stdout.decode()),
                             expected)

    def test_stream_session_by_id_is_created_by_the_stream_and_continued(
            self) -> None:
        data = serverutil.data("sunspots")
        stream = self.client.stream_session("sunspots", id="py-stream-by-id")
        first = stream.step(data[:10])
        stream.detach()
        self.assertEqual(self.client.get_session("py-stream-by-id").next_step,
                         10)
        again = self.client.stream_session(id="py-stream-by-id")
        self.assertEqual(again.model, "sunspots")
        rest = again.step(data[10:])
        again.close()
        self.assertBitsEqual(np.concatenate([first, rest]),
                             self.client.predict("sunspots", data))
        with self.assertRaises(lstmserve.LstmServeError) as e:
            self.client.get_session("py-stream-by-id")
        self.assertEqual(e.exception.code, grpc.StatusCode.NOT_FOUND)

    def test_info_export_import_close(self) -> None:
        data = serverutil.data("sunspots")
        session = self.client.session("sunspots", id="py-export")
        session.step(data[:20])
        info = session.info()
        self.assertEqual((info.session_id, info.model, info.next_step),
                         ("py-export", "sunspots", 20))
        self.assertIsNone(info.durable_step)  # no --state-dir
        snapshot = session.export()
        self.assertEqual((snapshot.session_id, snapshot.next_step,
                          len(snapshot.state)), ("py-export", 20,
                                                 info.state_size))
        snapshot.session_id = "py-export-copy"
        copy_info = self.client.import_session(snapshot.SerializeToString())
        self.assertEqual(copy_info.next_step, 20)
        copy = self.client.session(id="py-export-copy")
        self.assertBitsEqual(copy.step(data[20:]), session.step(data[20:]))
        for s in (session, copy):
            s.close()
            s.close()  # idempotent
            with self.assertRaises(lstmserve.LstmServeError) as e:
                s.info()
            self.assertEqual(e.exception.code, grpc.StatusCode.NOT_FOUND)
            with self.assertRaises(lstmserve.LstmServeError) as e:
                s.step(data[:1])
            self.assertEqual(e.exception.code,
                             grpc.StatusCode.FAILED_PRECONDITION)

    def test_errors_carry_code_and_message(self) -> None:
        with self.assertRaises(lstmserve.LstmServeError) as e:
            self.client.predict("nope", np.zeros((1, 1)))
        self.assertEqual(e.exception.code, grpc.StatusCode.NOT_FOUND)
        self.assertIn('"nope"', e.exception.message)
        self.assertTrue(str(e.exception).startswith("NOT_FOUND: "))
        with self.assertRaises(lstmserve.LstmServeError) as e:
            self.client.predict("sunspots", np.zeros((2, 3)))
        self.assertEqual(e.exception.code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("[2, 3]", e.exception.message)
        with self.assertRaises(lstmserve.LstmServeError) as e:
            self.client.session("sunspots", id="py-missing", create=False)
        self.assertEqual(e.exception.code, grpc.StatusCode.NOT_FOUND)
        with self.assertRaises(lstmserve.LstmServeError) as e:
            self.client.predict("sunspots", np.zeros((0, 1)))
        self.assertEqual(e.exception.code, grpc.StatusCode.INVALID_ARGUMENT)

    def test_stream_request_error_fails_that_chunk_only(self) -> None:
        data = serverutil.data("sunspots")
        stream = self.client.stream_session("sunspots")
        good1 = stream.send(data[:3])
        bad = stream.send(np.zeros((1, 2)))
        good2 = stream.send(data[3:6])
        self.assertEqual(good1.result(WAIT).shape, (3, 1))
        with self.assertRaises(lstmserve.LstmServeError) as e:
            bad.result(WAIT)
        self.assertEqual(e.exception.code, grpc.StatusCode.INVALID_ARGUMENT)
        outputs = np.concatenate([good1.result(), good2.result(WAIT)])
        self.assertEqual(stream.next_step, 6)
        stream.close()
        self.assertBitsEqual(outputs, self.client.predict("sunspots",
                                                          data[:6]))


class RestartTest(BitsMixin, unittest.TestCase):
    """Servers restarted on the same port: with --state-dir the sessions
    continue with the outputs of an uninterrupted run; without it they are
    gone, and say so."""

    def test_sessions_survive_sigterm_and_sigkill(self) -> None:
        state = tempfile.mkdtemp(prefix="lstmserve-py-state-")
        # Checkpoints only on SIGTERM within the test's time: after the
        # SIGKILL the server is certain to be behind the clients.
        with serverutil.running(["--state-dir", state,
                                 "--checkpoint-interval", "3600"]) as server:
            self._run(server)

    def test_session_lost_by_a_server_without_state(self) -> None:
        """A server restarted without --state-dir has lost the sessions:
        both kinds say NOT_FOUND naming the step they had reached, and
        neither starts the session again at step 0."""
        with serverutil.running() as server:
            data = serverutil.data("elnino")
            client = lstmserve.Client(server.target, timeout=20,
                                      max_retries=30, max_backoff=0.5)
            stream = client.stream_session("elnino", id="py-lost-stream")
            unary = client.session("elnino", id="py-lost-unary")
            stream.step(data[:40])
            unary.step(data[:40])
            self.assertIsNone(stream.durable_step)
            server.kill(signal.SIGKILL)
            server.start()
            for step in (stream.step, unary.step):
                with self.assertRaises(lstmserve.LstmServeError) as e:
                    step(data[40:])
                self.assertEqual(e.exception.code, grpc.StatusCode.NOT_FOUND)
                self.assertIn("to step 40", e.exception.message)
            self.assertEqual(client.list_sessions(), [])
            stream.detach()
            client.close()

    def test_steps_not_kept_fail_with_data_loss(self) -> None:
        """With max_resend_steps too small for what a crash lost, both
        kinds of session fail with DATA_LOSS instead of skipping steps."""
        state = tempfile.mkdtemp(prefix="lstmserve-py-state-")
        with serverutil.running(["--state-dir", state,
                                 "--checkpoint-interval", "3600"]) as server:
            data = serverutil.data("sunspots")
            client = lstmserve.Client(server.target, timeout=20,
                                      max_retries=30, max_backoff=0.5,
                                      max_resend_steps=10)
            stream = client.stream_session("sunspots", id="py-loss-stream")
            unary = client.session("sunspots", id="py-loss-unary")
            for i in range(0, 40, 5):  # durable_step 0: 40 steps to resend
                stream.step(data[i:i + 5])
                unary.step(data[i:i + 5])
            server.kill(signal.SIGKILL)
            server.start()
            for step in (stream.step, unary.step):
                with self.assertRaises(lstmserve.LstmServeError) as e:
                    step(data[40:45])
                self.assertEqual(e.exception.code, grpc.StatusCode.DATA_LOSS)
                self.assertIn("max_resend_steps", e.exception.message)
            stream.detach()
            client.close()

    def _run(self, server: serverutil.Server) -> None:
        data = serverutil.data("sunspots")
        reference = serverutil.engine_reference("sunspots")
        client = lstmserve.Client(server.target, timeout=20, max_retries=30,
                                  max_backoff=0.5)
        stream = client.stream_session("sunspots", id="py-crash-stream")
        unary = client.session("sunspots", id="py-crash-unary")
        streamed: List[Any] = [stream.send(r) for r in data[:100]]
        stepped = [unary.step(data[:50]), unary.step(data[50:100])]
        stream.flush()

        server.kill(signal.SIGTERM)  # checkpoints both at step 100
        # Sent while the server is down: the stream's call has broken; it
        # is reopened (with backoff) and the chunks go once the server is
        # back.
        streamed += [stream.send(r) for r in data[100:150]]
        time.sleep(0.5)
        server.start()
        back = time.monotonic()
        stepped.append(unary.step(data[100:150]))
        stream.flush()
        # Found promptly: not after gRPC's default 5 s backup poll (_core).
        self.assertLess(time.monotonic() - back, 4)
        self.assertEqual(stream.durable_step, 100)
        self.assertEqual(unary.durable_step, 100)

        server.kill(signal.SIGKILL)  # loses steps 100 to 149
        server.start()
        # Both sessions came back behind their clients, which resend the
        # lost steps before their next chunks.
        self.assertEqual(client.get_session("py-crash-stream").next_step, 100)
        self.assertEqual(client.get_session("py-crash-unary").next_step, 100)
        streamed += [stream.send(r) for r in data[150:]]
        stepped.append(unary.step(data[150:]))

        outputs = np.concatenate([f.result(WAIT) for f in streamed])
        self.assertBitsEqual(outputs, reference, "stream")
        self.assertBitsEqual(np.concatenate(stepped), reference, "unary")
        self.assertEqual(stream.info().next_step, len(data))
        self.assertEqual(unary.info().next_step, len(data))
        stream.close()
        unary.close()
        client.close()


ALICE = "alice-token-0123456789"  # tokens: 16 to 4096 characters
BOB = "bob-token-0123456789"


class SecurityTest(unittest.TestCase):
    """TLS (the server's certificate checked against a CA file, by name)
    and bearer tokens."""

    @classmethod
    def make_cert(cls, name: str) -> Tuple[Path, Path]:
        """A self-signed certificate for DNS name ``name`` and its key."""
        cert, key = cls.dir / f"{name}.pem", cls.dir / f"{name}.key"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
             "-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}",
             "-keyout", str(key), "-out", str(cert)], check=True,
            capture_output=True, timeout=60)
        return cert, key

    @classmethod
    def setUpClass(cls) -> None:
        cls.dir = Path(tempfile.mkdtemp(prefix="lstmserve-py-tls-"))
        cls.cert, key = cls.make_cert("lstmserve.test")
        tokens = cls.dir / "tokens"
        tokens.write_text(f"{ALICE} alice\n{BOB} bob\n")
        tokens.chmod(0o600)
        cls.server = serverutil.Server(["--tls-cert", str(cls.cert),
                                        "--tls-key", str(key),
                                        "--auth-tokens", str(tokens)])

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.stop()

    def client(self, token: Any, **tls: Any) -> lstmserve.Client:
        tls = tls or {"ca": str(self.cert), "server_name": "lstmserve.test"}
        return lstmserve.Client(self.server.target, tls=tls, token=token,
                                timeout=5, max_retries=1)

    def test_tls_and_token(self) -> None:
        alice = self.client(ALICE)
        self.assertIn("sunspots", [m.name for m in alice.models()])
        session = alice.session("sunspots", id="py-alice")
        session.step(np.ones((2, 1)))
        stream = alice.stream_session(id="py-alice")
        self.assertEqual(stream.step(np.ones((1, 1))).shape, (1, 1))
        stream.detach()
        # Another identity's session is NOT_FOUND, as a missing one.
        bob = lstmserve.Client(self.server.target, token=BOB,
                               tls=lstmserve.Tls(ca=str(self.cert),
                                                 server_name="lstmserve.test"))
        with self.assertRaises(lstmserve.LstmServeError) as e:
            bob.get_session("py-alice")
        self.assertEqual(e.exception.code, grpc.StatusCode.NOT_FOUND)
        for token in (None, "wrong"):
            with self.assertRaises(lstmserve.LstmServeError) as e:
                self.client(token).models()
            self.assertEqual(e.exception.code,
                             grpc.StatusCode.UNAUTHENTICATED)
        session.close()

    def test_mutual_tls(self) -> None:
        client_cert, client_key = self.make_cert("client.test")
        server_cert, server_key = self.cert, self.dir / "lstmserve.test.key"
        flags = ["--tls-cert", str(server_cert), "--tls-key", str(server_key),
                 "--tls-client-ca", str(client_cert)]
        with serverutil.running(flags) as server:
            tls = {"ca": str(self.cert), "server_name": "lstmserve.test"}
            with lstmserve.Client(server.target, tls={
                    **tls, "cert": str(client_cert),
                    "key": str(client_key)}) as client:
                self.assertEqual(len(client.models()), 3)
            with lstmserve.Client(server.target, tls=tls, timeout=3,
                                  max_retries=1) as client:
                with self.assertRaises(lstmserve.LstmServeError) as e:
                    client.models()  # no client certificate
                self.assertEqual(e.exception.code,
                                 grpc.StatusCode.UNAVAILABLE)
            with self.assertRaises(lstmserve.LstmServeError) as e:
                lstmserve.Client(server.target, tls={"cert": str(client_cert)})
            self.assertEqual(e.exception.code,
                             grpc.StatusCode.INVALID_ARGUMENT)

    def test_untrusted_or_plaintext_is_unavailable(self) -> None:
        plaintext = lstmserve.Client(self.server.target, token=ALICE,
                                     timeout=3, max_retries=1)
        wrong_name = self.client(ALICE, ca=str(self.cert),
                                 server_name="other.test")
        for client in (plaintext, wrong_name):
            with self.assertRaises(lstmserve.LstmServeError) as e:
                client.models()
            self.assertEqual(e.exception.code, grpc.StatusCode.UNAVAILABLE)
        with self.assertRaises(lstmserve.LstmServeError) as e:
            self.client("t", ca=str(self.dir / "missing.pem"))
        self.assertEqual(e.exception.code, grpc.StatusCode.INVALID_ARGUMENT)


class _Recorder(grpc.ServerInterceptor):
    def __init__(self) -> None:
        self.calls: List[Tuple[str, Dict[str, str]]] = []
        self.lock = threading.Lock()

    def intercept_service(self, continuation, details):
        with self.lock:
            self.calls.append((details.method.rsplit("/", 1)[-1],
                               dict(details.invocation_metadata)))
        return continuation(details)


class _Fake(pb_grpc.LstmServeServicer):
    """Answers like a server whose outputs are its inputs."""

    def CreateSession(self, request, context):
        return pb.SessionInfo(session_id=request.session_id or "made-by-fake",
                              model=request.model, version=1)

    def GetSession(self, request, context):
        if request.session_id == "absent":
            context.abort(grpc.StatusCode.NOT_FOUND, "no such session")
        return pb.SessionInfo(session_id=request.session_id, model="m",
                              version=1)

    def Predict(self, request, context):
        return pb.PredictResponse(
            outputs=request.inputs, session_id=request.session_id,
            next_step=request.first_step + request.inputs.shape[0])

    def Stream(self, request_iterator, context):
        for r in request_iterator:
            yield pb.StreamResponse(
                request_id=r.request_id, session_id=r.session_id,
                outputs=r.inputs, next_step=r.first_step + r.inputs.shape[0])

    def ExportSession(self, request, context):
        return pb.SessionSnapshot(session_id=request.session_id)

    def CloseSession(self, request, context):
        return pb.CloseSessionResponse()

    def ListModels(self, request, context):
        return pb.ListModelsResponse()


class _Silent(_Fake):
    """Takes stream messages and never answers them."""

    def Stream(self, request_iterator, context):
        for _ in request_iterator:
            pass
        return iter(())


def _fake_server(servicer: Any) -> Tuple[grpc.Server, int, _Recorder]:
    recorder = _Recorder()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8),
                         interceptors=[recorder])
    pb_grpc.add_LstmServeServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port, recorder


class FakeServerTest(unittest.TestCase):
    """Checked on in-process fake servers: the metadata the client sends,
    and a stream that gets no answers."""

    def test_session_calls_and_streams_carry_x_session_id(self) -> None:
        """Every session call and stream carries x-session-id (a proxy
        routes by it) and every call the token."""
        server, port, recorder = _fake_server(_Fake())
        try:
            client = lstmserve.Client(f"127.0.0.1:{port}", token="tok")
            client.models()
            s = client.session("m", id="unary-1")  # GetSession
            s.step(np.ones((2, 3)))
            s.info()
            s.export()
            s.close()
            made = client.session("m")  # CreateSession, server-made id
            made.step(np.ones((1, 3)))
            a = client.stream_session("m", id="stream-a")
            b = client.stream_session("m", id="absent")  # made by the stream
            self.assertEqual(a.step(np.ones((1, 3))).tolist(), [[1, 1, 1]])
            b.step(np.ones((1, 3)))
            a.close()
            b.detach()
            client.close()
        finally:
            server.stop(None)
        calls = recorder.calls
        self.assertTrue(all(md.get("authorization") == "Bearer tok"
                            for _, md in calls), calls)

        def ids(method: str) -> List[Any]:
            return [md.get("x-session-id") for m, md in calls if m == method]

        self.assertEqual(ids("ListModels"), [None])
        self.assertEqual(ids("CreateSession"), [None])  # no id yet
        self.assertEqual(ids("Predict"), ["unary-1", "made-by-fake"])
        self.assertEqual(sorted(ids("GetSession")),
                         ["absent", "stream-a", "unary-1", "unary-1"])
        self.assertEqual(ids("ExportSession"), ["unary-1"])
        self.assertEqual(sorted(ids("CloseSession")), ["stream-a", "unary-1"])
        # One Stream call per streaming session, each with its own id.
        self.assertEqual(sorted(ids("Stream")), ["absent", "stream-a"])


    def test_unanswered_stream_fails_with_deadline_exceeded(self) -> None:
        server, port, recorder = _fake_server(_Silent())
        try:
            client = lstmserve.Client(f"127.0.0.1:{port}", timeout=1,
                                      max_retries=1, initial_backoff=0.01)
            stream = client.stream_session("m", id="silent")
            started = time.monotonic()
            with self.assertRaises(lstmserve.LstmServeError) as e:
                stream.step(np.ones((1, 3)))
            self.assertEqual(e.exception.code,
                             grpc.StatusCode.DEADLINE_EXCEEDED)
            self.assertLess(time.monotonic() - started, 10)
            stream.detach()
            client.close()
        finally:
            server.stop(None)
        # The first attempt and one retry, each its own Stream call.
        self.assertEqual([m for m, _ in recorder.calls].count("Stream"), 2)

    def test_cancel_fails_unanswered_chunks_at_once(self) -> None:
        server, port, _ = _fake_server(_Silent())
        try:
            client = lstmserve.Client(f"127.0.0.1:{port}", timeout=30)
            stream = client.stream_session("m", id="silent")
            pending = [stream.send(np.ones((1, 3))) for _ in range(6)]
            time.sleep(0.2)  # some on the wire, some waiting
            stream.cancel()
            for future in pending:
                with self.assertRaises(lstmserve.LstmServeError) as e:
                    future.result(5)
                self.assertEqual(e.exception.code, grpc.StatusCode.CANCELLED)
            with self.assertRaises(lstmserve.LstmServeError) as e:
                stream.send(np.ones((1, 3)))
            self.assertEqual(e.exception.code,
                             grpc.StatusCode.FAILED_PRECONDITION)
            client.close()
        finally:
            server.stop(None)


if __name__ == "__main__":
    unittest.main()
