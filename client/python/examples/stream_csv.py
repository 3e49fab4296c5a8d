#!/usr/bin/env python3
"""Streams CSV steps through an lstmserve streaming session and prints each
step's outputs as soon as they arrive (the Python twin of
``lstm-client stream``).

    python3 stream_csv.py --model sunspots < models/sunspots/data.csv
    tail -f readings.csv | python3 stream_csv.py --model sunspots --session s1

One step per input line (comma-separated floats; blank lines and lines
starting with # are skipped); one output row per step, each float in its
shortest form that reads back to the same float32.
"""
import argparse
import os
import sys

import numpy as np

import lstmserve


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default=os.environ.get(
        "LSTMSERVE_TARGET", "127.0.0.1:50051"))
    parser.add_argument("--model", required=True)
    parser.add_argument("--session", help="continue (or create) this session "
                        "id and keep it; default: a new session, closed at "
                        "the end")
    parser.add_argument("--tls-ca", help="PEM file of the server's CA (TLS)")
    parser.add_argument("--tls-server-name")
    parser.add_argument("--token-file", help="file holding a bearer token")
    args = parser.parse_args()

    tls = None
    if args.tls_ca or args.tls_server_name:
        tls = lstmserve.Tls(ca=args.tls_ca, server_name=args.tls_server_name)
    token = None
    if args.token_file:
        with open(args.token_file) as f:
            token = f.read().strip()

    failed = []  # the first failed step's error; nothing prints after it

    def show(future) -> None:
        # Runs on the session's thread, one result at a time, in send order.
        if failed:
            return
        if future.exception() is not None:
            failed.append(future.exception())
            return
        for row in future.result():
            print(",".join(str(v) for v in row), flush=True)

    with lstmserve.Client(args.target, tls=tls, token=token) as client:
        try:
            stream = client.stream_session(args.model, id=args.session)
        except lstmserve.LstmServeError as e:
            print(f"stream_csv: {e}", file=sys.stderr)
            return 1
        bad_line = None
        for number, line in enumerate(sys.stdin, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            try:
                row = np.array(line.split(","), dtype=np.float32)
            except ValueError:
                bad_line = f"stdin:{number}: not a row of floats: {line!r}"
                break
            stream.send(row).add_done_callback(show)  # pipelined
            if failed:
                break
        stream.flush()
        if args.session:
            stream.detach()  # the session stays on the server
        else:
            stream.close()
    if failed or bad_line:
        print(f"stream_csv: {failed[0] if failed else bad_line}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
