#!/usr/bin/python3
"""The bundled models' validation error in each weight format (f32, bf16,
int8), computed with the engine itself (`lstm-model run DIR --weights F`),
by the metrics of docs/MODELS.md:

- sunspots, elnino: teacher-forced one-step-ahead forecasts of the
  validation values, series[n_train:] with n_train from
  models/<name>/metrics.json (labels.val_first to the end), RMSE and MAE.
  The model runs from a zero state over the whole series (models/<name>/
  data.csv), as tools/train_bundled.py scores it.
- charlm: bits per character (mean -log2 p of the next character) over the
  validation stream of tools/charlm.py (the files of /usr/lib/python3.11 it
  picks, concatenated), read from a zero state, every character after the
  first predicted from those before it. The text goes in one-hot encoded,
  one CSV row per character (docs/MODEL_FORMAT.md, "Text models").
  `--charlm-chars N` uses the first N characters only (default: all).

    /usr/bin/python3 tools/eval_formats.py                 # all three models
    /usr/bin/python3 tools/eval_formats.py sunspots --markdown
    LSTMSERVE_ISA=generic /usr/bin/python3 tools/eval_formats.py   # another kernel path

Needs only Python 3 and numpy (no torch). Also reports, per format, the
max and mean absolute difference of all outputs (every step; for charlm
all 97 probabilities of every step) from float32's, what `lstm-model eval`
reports. The charlm run streams ~0.5 GB of CSV per format through numpy:
about a minute per format on one core.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tools"))
import charlm as C  # noqa: E402  (numpy only at import; torch only for training)

FORMATS = ["f32", "bf16", "int8"]
ALL = ["sunspots", "elnino", "charlm"]
BLOCK = 8192  # charlm: output rows parsed at a time


def run(binary, model, weights, inputs):
    """All output rows of `lstm-model run` for the CSV text `inputs`."""
    out = subprocess.run([binary, "run", model, "--weights", weights], input=inputs,
                         check=True, capture_output=True, text=True).stdout
    return np.array([[float(v) for v in line.split(",")] for line in out.splitlines() if line])


def kernels(binary, model, weights):
    out = subprocess.run([binary, "info", model, "--weights", weights], check=True,
                         capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line.startswith("kernels:"):
            return line.split(":", 1)[1].strip()
    return ""


def forecaster(binary, name):
    """{format: dict(err=(rmse, mae), out=all outputs)}."""
    model = os.path.join(REPO, "models", name)
    with open(os.path.join(model, "metrics.json")) as f:
        m = json.load(f)
    with open(os.path.join(model, "data.csv")) as f:
        series = np.array([float(v) for v in f.read().split()])
    if len(series) != m["n"]:
        sys.exit(f"eval_formats: {name}: data.csv has {len(series)} values, "
                 f"metrics.json n = {m['n']}")
    n_train = m["n_train"]
    inputs = "".join(f"{v!r}\n" for v in series[:-1])
    t = np.arange(n_train, len(series))  # out[t - 1] forecasts series[t]
    res = {}
    for w in FORMATS:
        pred = run(binary, model, w, inputs)[:, 0]
        err = pred[t - 1] - series[t]
        res[w] = dict(err=(float(np.sqrt(np.mean(err ** 2))), float(np.mean(np.abs(err)))),
                      out=pred)
    split = (f"{m['labels']['val_first']} to {m['labels']['last']}, "
             f"{len(t)} values")
    return res, split


def charlm(binary, chars):
    """{format: dict(err=(bpc,), max=, mean=)} over the first `chars`
    validation characters (all if None), all formats run side by side."""
    corpus = C.load_corpus()
    ids = C.encode(corpus["val"])
    if chars:
        ids = ids[:chars]
    model = os.path.join(REPO, "models", "charlm")
    n = len(ids) - 1  # predictions: of ids[1:] from out[:-1]
    one_hot = [",".join("1" if j == i else "0" for j in range(C.V)) for i in range(C.V)]
    with tempfile.NamedTemporaryFile("w", suffix=".csv") as f:
        f.write("\n".join(one_hot[i] for i in ids[:n]) + "\n")  # rows for out[0..n-1]
        f.flush()
        procs = {}
        for w in FORMATS:
            with open(f.name, "rb") as steps:  # each its own file offset
                procs[w] = subprocess.Popen([binary, "run", model, "--weights", w],
                                            stdin=steps, stdout=subprocess.PIPE)
    nll = {w: 0.0 for w in FORMATS}
    dmax = {w: 0.0 for w in FORMATS}
    dsum = {w: 0.0 for w in FORMATS}
    done = 0
    while done < n:
        k = min(BLOCK, n - done)
        out = {}
        for w, p in procs.items():
            text = b"".join(p.stdout.readline() for _ in range(k))
            y = np.array(text.replace(b"\n", b",").decode().split(",")[:-1], dtype=np.float64)
            if y.size != k * C.V:
                sys.exit(f"eval_formats: charlm {w}: {y.size} values, expected {k * C.V}")
            out[w] = y.reshape(k, C.V)
        target = ids[done + 1:done + 1 + k]
        for w in FORMATS:
            nll[w] -= float(np.sum(np.log2(out[w][np.arange(k), target])))
            d = np.abs(out[w] - out["f32"])
            dmax[w] = max(dmax[w], float(d.max()))
            dsum[w] += float(d.sum())
        done += k
    for w, p in procs.items():
        p.stdout.close()
        if p.wait() != 0:
            sys.exit(f"eval_formats: lstm-model run --weights {w} failed")
    res = {w: dict(err=(nll[w] / n,), max=dmax[w], mean=dsum[w] / (n * C.V)) for w in FORMATS}
    total = len(C.encode(corpus["val"]))
    split = (f"{len(corpus['val_files'])} files of {C.STDLIB}, "
             f"{'first ' + format(len(ids), ',') + ' of ' if len(ids) < total else ''}"
             f"{total:,} characters, {n:,} predictions")
    return res, split


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*", metavar="MODEL",
                        help="bundled models under models/ (default: all three)")
    parser.add_argument("--lstm-model", default=os.path.join(REPO, "build", "lstm-model"),
                        help="the lstm-model binary (default build/lstm-model)")
    parser.add_argument("--charlm-chars", type=int, default=0, metavar="N",
                        help="charlm: only the first N validation characters (default: all)")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args(argv)
    if not os.access(args.lstm_model, os.X_OK):
        sys.exit(f"eval_formats: {args.lstm_model} is not an executable; build first")
    for name in args.models:
        if name not in ALL:
            sys.exit(f"eval_formats: unknown model {name!r} (one of {', '.join(ALL)})")

    rows = []  # (model, split, format, errors, rel. to f32, max diff, mean diff, kernels)
    for name in args.models or ALL:
        if name == "charlm":
            res, split = charlm(args.lstm_model, args.charlm_chars)
            metric = ["val bits/char"]
        else:
            res, split = forecaster(args.lstm_model, name)
            for w in FORMATS:
                d = np.abs(res[w]["out"] - res["f32"]["out"])
                res[w].update(max=float(d.max()), mean=float(d.mean()))
            metric = ["val RMSE", "val MAE"]
        base = res["f32"]["err"]
        for w in FORMATS:
            e = res[w]["err"]
            rows.append((name, split, w, list(zip(metric, e)),
                         [v / b - 1 for v, b in zip(e, base)], res[w]["max"], res[w]["mean"],
                         kernels(args.lstm_model, os.path.join(REPO, "models", name), w)))

    if args.markdown:
        print("| model | weights | validation error | vs f32 | "
              "max / mean abs diff from f32 (all outputs) | kernels |")
        print("|---|---|---|---|---:|---|")
        for n, split, w, errs, rel, mx, mn, k in rows:
            err = ", ".join(f"{m.split(' ', 1)[1]} {v:.5f}" for m, v in errs)
            vs = "" if w == "f32" else ", ".join(f"{r:+.3%}" for r in rel)
            diff = "" if w == "f32" else f"{mx:.3g} / {mn:.3g}"
            print(f"| {n if w == 'f32' else ''} | {w} | {err} | {vs} | {diff} | {k} |")
        for n in dict.fromkeys(r[0] for r in rows):
            print(f"\n{n}: validation {next(r[1] for r in rows if r[0] == n)}")
    else:
        for n, split, w, errs, rel, mx, mn, k in rows:
            err = "  ".join(f"{m} {v:9.4f} ({r:+.3%})" for (m, v), r in zip(errs, rel))
            print(f"{n:9s} {w:5s} {err}  max|diff| {mx:.3g} mean|diff| {mn:.3g}  [{k}]")
        for n in dict.fromkeys(r[0] for r in rows):
            print(f"{n}: validation {next(r[1] for r in rows if r[0] == n)}")


if __name__ == "__main__":
    main()
