#!/usr/bin/python3
"""Times PyTorch and the lstmserve engine on the same shapes, side by side.

Benchmark shape: LSTM, input 64, hidden 256, 2 layers, no head, random
weights. Shapes (B sessions x T steps per call): 1x1, 1x100, 8x1, 64x1,
256x1. Both sides run single-threaded and carry the recurrent state from
call to call, as a server streaming B sessions would. Rounds alternate
between PyTorch and the engine so both see the same machine load; the
table reports medians over the rounds and the ratio engine / PyTorch.

    /usr/bin/python3 bench/compare_pytorch.py --bench build/bench/engine_bench
    /usr/bin/python3 bench/compare_pytorch.py --rounds 5 --markdown

Needs Debian's python3-torch (and libopenblas0-pthread, or PyTorch falls
back to a slow reference BLAS). Do not change OPENBLAS_CORETYPE here.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

SHAPES = [(1, 1), (1, 100), (8, 1), (64, 1), (256, 1)]
INPUT, HIDDEN, LAYERS = 64, 256, 2


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def time_pytorch(torch, lstm, batch, chunk, seconds):
    """Steps/s of PyTorch for B sessions x T steps per call."""
    x = torch.randn(chunk, batch, INPUT)
    h = torch.zeros(LAYERS, batch, HIDDEN)
    c = torch.zeros(LAYERS, batch, HIDDEN)
    with torch.no_grad():
        for _ in range(3):  # warm-up
            _, (h, c) = lstm(x, (h, c))
        calls = 0
        start = time.perf_counter()
        while True:
            _, (h, c) = lstm(x, (h, c))
            calls += 1
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                break
    return calls * batch * chunk / elapsed


def time_engine(bench, seconds):
    """Steps/s of engine_bench per (B, T), from its JSON report."""
    out = subprocess.run(
        [bench, "--benchmark_filter=^Lstm/", "--benchmark_format=json",
         f"--benchmark_min_time={seconds}"],
        check=True, capture_output=True, text=True).stdout
    result = {}
    for b in json.loads(out)["benchmarks"]:
        # name: Lstm/B:64/T:1/min_time:0.500
        parts = dict(p.split(":") for p in b["name"].split("/")[1:3])
        result[(int(parts["B"]), int(parts["T"]))] = b["steps_per_s"]
    return result


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bench", default=os.path.join(here, "..", "build", "bench", "engine_bench"),
                        help="path of the built engine_bench (default: build/bench/engine_bench)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    parser.add_argument("--seconds", type=float, default=0.5,
                        help="time per shape per round and side (default 0.5)")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args()
    if not os.access(args.bench, os.X_OK):
        sys.exit(f"compare_pytorch: {args.bench} is not an executable; build first (tools/build.sh)")
    try:
        import torch
    except ImportError:
        sys.exit("compare_pytorch: PyTorch not found; run tools/install-deps.sh --python "
                 "and use /usr/bin/python3")

    torch.set_num_threads(1)
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(INPUT, HIDDEN, LAYERS).eval()

    torch_runs = {s: [] for s in SHAPES}
    engine_runs = {s: [] for s in SHAPES}
    for r in range(args.rounds):
        print(f"round {r + 1}/{args.rounds} ...", file=sys.stderr, flush=True)
        for s in SHAPES:
            torch_runs[s].append(time_pytorch(torch, lstm, s[0], s[1], args.seconds))
        eng = time_engine(args.bench, args.seconds)
        for s in SHAPES:
            engine_runs[s].append(eng[s])

    print(f"CPU: {cpu_name()}, {os.cpu_count()} cores; PyTorch {torch.__version__}, "
          f"1 thread; {args.rounds} alternating rounds, medians")
    if args.markdown:
        print("\n| B | T | PyTorch steps/s | lstmserve steps/s | ratio |")
        print("|---:|---:|---:|---:|---:|")
    else:
        print(f"{'B':>4} {'T':>4} {'PyTorch steps/s':>16} {'lstmserve steps/s':>18} {'ratio':>6}")
    for s in SHAPES:
        t = statistics.median(torch_runs[s])
        e = statistics.median(engine_runs[s])
        if args.markdown:
            print(f"| {s[0]} | {s[1]} | {t:,.0f} | {e:,.0f} | {e / t:.2f}x |")
        else:
            print(f"{s[0]:>4} {s[1]:>4} {t:>16,.0f} {e:>18,.0f} {e / t:>5.2f}x")


if __name__ == "__main__":
    main()
