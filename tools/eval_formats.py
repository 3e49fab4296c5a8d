#!/usr/bin/python3
"""The bundled models' validation error in each weight format, with the
engine itself (build/lstm-model run --weights F), by the metric of
docs/MODELS.md: teacher-forced one-step-ahead forecasts of the last 20% of
each series (tools/train_bundled.py), RMSE and MAE.

    /usr/bin/python3 tools/eval_formats.py                 # models/sunspots, models/elnino
    /usr/bin/python3 tools/eval_formats.py --markdown
    LSTMSERVE_ISA=generic /usr/bin/python3 tools/eval_formats.py   # another kernel path

Needs only Python 3 and numpy (no torch). Also reports, per format, the
max and mean absolute difference of all outputs from float32's (what
`lstm-model eval` reports).
"""

import argparse
import os
import subprocess
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN_FRACTION = 0.8  # tools/train_bundled.py
FORMATS = ["f32", "bf16", "int8"]


def run(binary, model, weights, inputs):
    out = subprocess.run([binary, "run", model, "--weights", weights], input=inputs,
                         check=True, capture_output=True, text=True).stdout
    return np.array([float(line.split(",")[0]) for line in out.splitlines() if line])


def kernels(binary, model, weights):
    out = subprocess.run([binary, "info", model, "--weights", weights], check=True,
                         capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line.startswith("kernels:"):
            return line.split(":", 1)[1].strip()
    return ""


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*", default=["sunspots", "elnino"],
                        help="bundled model names under models/ (default: sunspots elnino)")
    parser.add_argument("--lstm-model", default=os.path.join(REPO, "build", "lstm-model"),
                        help="the lstm-model binary (default build/lstm-model)")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args(argv)
    if not os.access(args.lstm_model, os.X_OK):
        sys.exit(f"eval_formats: {args.lstm_model} is not an executable; build first")

    rows = []
    for name in args.models:
        model = os.path.join(REPO, "models", name)
        with open(os.path.join(model, "data.csv")) as f:
            series = np.array([float(v) for v in f.read().split()])
        n_train = int(round(TRAIN_FRACTION * len(series)))
        inputs = "".join(f"{v!r}\n" for v in series[:-1])
        idx = np.arange(n_train - 1, len(series) - 1)  # forecasts of series[n_train:]
        target = series[idx + 1]
        preds = {w: run(args.lstm_model, model, w, inputs) for w in FORMATS}
        base = None
        for w in FORMATS:
            err = preds[w][idx] - target
            rmse, mae = float(np.sqrt(np.mean(err ** 2))), float(np.mean(np.abs(err)))
            if w == "f32":
                base = (rmse, mae)
            diff = np.abs(preds[w] - preds["f32"])
            rows.append((name, w, rmse, mae, rmse / base[0] - 1, mae / base[1] - 1,
                         float(diff.max()), float(diff.mean()), kernels(args.lstm_model, model, w)))

    if args.markdown:
        print("| model | weights | val RMSE | val MAE | RMSE vs f32 | MAE vs f32 | "
              "max / mean abs diff from f32 (all steps) | kernels |")
        print("|---|---|---:|---:|---:|---:|---:|---|")
        for n, w, r, m, dr, dm, mx, mn, k in rows:
            print(f"| {n} | {w} | {r:.4f} | {m:.4f} | {dr:+.2%} | {dm:+.2%} | "
                  f"{mx:.3g} / {mn:.3g} | {k} |")
    else:
        for n, w, r, m, dr, dm, mx, mn, k in rows:
            print(f"{n:9s} {w:5s} val RMSE {r:9.4f} ({dr:+.2%})  MAE {m:9.4f} ({dm:+.2%})  "
                  f"max|diff| {mx:.3g} mean|diff| {mn:.3g}  [{k}]")


if __name__ == "__main__":
    main()
