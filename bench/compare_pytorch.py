#!/usr/bin/python3
"""Times PyTorch and the lstmserve engine on the same shapes, side by side.

Benchmark shape: LSTM, input 64, hidden 256, 2 layers, no head, random
weights. Shapes (B sessions x T steps per call): 1x1, 1x100, 8x1, 64x1,
256x1. Both sides run single-threaded and carry the recurrent state from
call to call, as a server streaming B sessions would. Rounds alternate
between PyTorch (float32) and the engine, which runs each weight format
(float32, bf16, int8) back to back for every shape, so all see the same
machine load; the table reports medians over the rounds, the ratio engine /
PyTorch, and each reduced format's ratio to the engine's float32. Both sides
are timed in CPU time (engine_bench's default; process_time() for PyTorch),
so other processes on a shared machine do not count.

    /usr/bin/python3 bench/compare_pytorch.py --bench build/bench/engine_bench
    /usr/bin/python3 bench/compare_pytorch.py --rounds 5 --markdown
    /usr/bin/python3 bench/compare_pytorch.py --formats f32   # float32 only

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
        # CPU time of the whole process (every thread a BLAS might start),
        # as engine_bench reports its thread's CPU time: on a shared
        # machine, wall time would count other processes' turns too.
        calls = 0
        start = time.process_time()
        while True:
            _, (h, c) = lstm(x, (h, c))
            calls += 1
            elapsed = time.process_time() - start
            if elapsed >= seconds:
                break
    return calls * batch * chunk / elapsed


# engine_bench's benchmark name for each weight format.
BENCHMARKS = {"f32": "Lstm", "bf16": "LstmBf16", "int8": "LstmInt8"}


def time_engine(bench, seconds, formats):
    """Steps/s of engine_bench per (format, B, T), from its JSON report, and
    the kernels each format ran. The formats of one shape run back to back
    (random interleaving of one repetition each)."""
    names = "|".join(BENCHMARKS[f] for f in formats)
    out = subprocess.run(
        [bench, f"--benchmark_filter=^({names})/", "--benchmark_format=json",
         f"--benchmark_min_time={seconds}", "--benchmark_enable_random_interleaving=true"],
        check=True, capture_output=True, text=True).stdout
    result, kernels = {}, {}
    by_name = {v: k for k, v in BENCHMARKS.items()}
    for b in json.loads(out)["benchmarks"]:
        # name: LstmInt8/B:64/T:1/min_time:0.500
        fields = b["name"].split("/")
        parts = dict(p.split(":") for p in fields[1:3])
        fmt = by_name[fields[0]]
        result[(fmt, int(parts["B"]), int(parts["T"]))] = b["steps_per_s"]
        kernels[fmt] = b.get("label", "")
    return result, kernels


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
    parser.add_argument("--formats", default="f32,bf16,int8",
                        help="engine weight formats, comma-separated (default f32,bf16,int8)")
    args = parser.parse_args()
    formats = args.formats.split(",")
    if not formats or any(f not in BENCHMARKS for f in formats):
        sys.exit(f"compare_pytorch: --formats takes {', '.join(BENCHMARKS)}")
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
    engine_runs = {(f,) + s: [] for f in formats for s in SHAPES}
    kernels = {}
    for r in range(args.rounds):
        print(f"round {r + 1}/{args.rounds} ...", file=sys.stderr, flush=True)
        for s in SHAPES:
            torch_runs[s].append(time_pytorch(torch, lstm, s[0], s[1], args.seconds))
        eng, kernels = time_engine(args.bench, args.seconds, formats)
        for key in engine_runs:
            engine_runs[key].append(eng[key])

    print(f"CPU: {cpu_name()}, {os.cpu_count()} cores; PyTorch {torch.__version__}, "
          f"1 thread; {args.rounds} alternating rounds, medians")
    for f in formats:
        print(f"engine {f}: {kernels.get(f, '')}")
    med = {k: statistics.median(v) for k, v in engine_runs.items()}
    cols = ["B", "T", "PyTorch steps/s"]
    for f in formats:
        cols += [f"lstmserve {f} steps/s", f"{f} / PyTorch"]
        if f != "f32" and "f32" in formats:
            cols.append(f"{f} / f32")
    if args.markdown:
        print("\n| " + " | ".join(cols) + " |")
        print("|" + "---:|" * len(cols))
    else:
        print("  ".join(f"{c:>16}" for c in cols))
    for s in SHAPES:
        t = statistics.median(torch_runs[s])
        row = [str(s[0]), str(s[1]), f"{t:,.0f}"]
        for f in formats:
            e = med[(f,) + s]
            row += [f"{e:,.0f}", f"{e / t:.2f}x"]
            if f != "f32" and "f32" in formats:
                row.append(f"{e / med[('f32',) + s]:.2f}x")
        if args.markdown:
            print("| " + " | ".join(row) + " |")
        else:
            print("  ".join(f"{c:>16}" for c in row))


if __name__ == "__main__":
    main()
