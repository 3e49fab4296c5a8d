#!/usr/bin/python3
"""Find the units of a character model that track the syntax of Python source.

    /usr/bin/python3 tools/find_units.py SOURCE.py [--model models/charlm] [--chars N]

Encodes the text one-hot (one row per character over the alphabet of
tools/charlm.py, which is charlm's `input_names`: "\\n", the printable ASCII
characters, then "<unk>" for anything else, as `lstm-client stream --text`
sends it), runs it through the engine with `lstm-model run MODEL --explain`,
and correlates every cell-state and hidden-state unit with three features of
the text that Python's own tokenizer gives: whether a string literal is open,
the bracket depth, the indentation. Prints the units with the largest |r|
(Pearson correlation over the characters) for each feature; --keep FILE keeps
the explain CSV for tools/plot_gates.py. docs/INTERPRETABILITY.md, "A cell
that counts brackets", walks through it. Needs numpy.
"""

import argparse
import csv
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import charlm as C  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def explain(lstm_model, model, text, keep=None):
    """Run `text` one-hot through `lstm-model run --explain`; -> {field: steps x units}."""
    with tempfile.TemporaryDirectory() as tmp:
        rows = os.path.join(tmp, "text.csv")
        out = keep or os.path.join(tmp, "explain.csv")
        with open(rows, "w") as f:
            for i in C.encode(text):
                row = ["0"] * C.V
                row[i] = "1"
                f.write(",".join(row) + "\n")
        with open(rows) as stdin:
            subprocess.run([lstm_model, "run", model, "--explain", out], stdin=stdin,
                           stdout=subprocess.DEVNULL, check=True)
        with open(out, newline="") as f:
            header = next(csv.reader(f))
        data = np.loadtxt(out, delimiter=",", skiprows=1, ndmin=2)
    fields = {}
    for col, name in enumerate(header[1:], start=1):
        layer, field, unit = name.split(".")
        if layer == "l0":
            fields.setdefault(field, []).append((int(unit), col))
    return {k: data[:, [c for _, c in sorted(v)]] for k, v in fields.items()}


def ranked(states, feature, top):
    """[(unit, r)] of the `top` units whose value correlates most (|r|) with feature."""
    z = (states - states.mean(0)) / (states.std(0) + 1e-12)
    fz = (feature - feature.mean()) / (feature.std() + 1e-12)
    r = z.T @ fz / len(fz)
    return [(int(u), float(r[u])) for u in np.argsort(-np.abs(r))[:top]]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", help="a Python source file (UTF-8)")
    parser.add_argument("--model", default=os.path.join(REPO, "models", "charlm"),
                        help="model or version directory (default models/charlm)")
    parser.add_argument("--lstm-model", default=os.path.join(REPO, "build", "lstm-model"),
                        help="the lstm-model binary (default build/lstm-model)")
    parser.add_argument("--chars", type=int, default=20000,
                        help="use the first N characters, cut at a line end (default 20000; "
                             "the explain CSV has 6 x 256 columns per character)")
    parser.add_argument("--top", type=int, default=3, help="units to list per feature (default 3)")
    parser.add_argument("--keep", default=None, help="keep the explain CSV as FILE")
    args = parser.parse_args(argv)

    with open(args.source, encoding="utf-8") as f:
        text = f.read()
    if len(text) > args.chars:
        text = text[:text.rindex("\n", 0, args.chars) + 1]
    features = C.text_features(text)
    states = explain(args.lstm_model, args.model, text, args.keep)
    print(f"{len(text)} characters of {args.source}")
    for name, v in features.items():
        if v.std() == 0:
            print(f"{name}: constant in this text")
            continue
        for field in ("c", "h"):
            units = ", ".join(f"{field}[{u}] {r:+.2f}" for u, r in ranked(states[field], v, args.top))
            print(f"{name:14s} {units}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
