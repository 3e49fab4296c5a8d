"""Python client for lstmserve, the gRPC inference server for LSTM/GRU
models that keeps each session's recurrent state between calls.

    import numpy as np
    import lstmserve

    with lstmserve.Client("127.0.0.1:50051") as client:
        print([m.name for m in client.models()])
        outputs = client.predict("sunspots", np.array([[5], [11], [16]]))
        stream = client.stream_session("sunspots")
        print(stream.step(np.array([[5.0]])))
        stream.close()

See docs/CLIENT.md, "Python client".
"""
# The generated stubs (lstmserve.v1) may live in another directory on
# sys.path (build_stubs.py --out BUILD_DIR): let this package span it.
__path__ = __import__("pkgutil").extend_path(__path__, __name__)

from lstmserve._core import (LstmServeError, ModelInfo,  # noqa: E402
                             SessionInfo)
from lstmserve.client import Client, Session, Tls  # noqa: E402
from lstmserve.streaming import StreamingSession  # noqa: E402

__all__ = ["Client", "Session", "StreamingSession", "Tls", "LstmServeError",
           "ModelInfo", "SessionInfo"]
