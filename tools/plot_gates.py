#!/usr/bin/python3
"""Draw an explained run as heatmaps: one panel per layer and field (the
gates, the cell state, the hidden state), units down, steps across.

    build/lstm-model run models/sunspots --explain gates.csv < data.csv > out.csv
    /usr/bin/python3 tools/plot_gates.py gates.csv -o gates.png

Reads the CSV `lstm-model run --explain` writes (a header
"step,l<layer>.<field>.<unit>,...", one row per step; docs/INTERPRETABILITY.md
says what each field means). Sigmoid gates (LSTM i, f, o; GRU r, z) are drawn
on [0, 1]; tanh candidates (g, n), c and h on a diverging scale centred on 0
(c over its own largest magnitude, the others on [-1, 1]). Needs Debian's
python3-matplotlib and numpy.
"""

import argparse
import csv
import sys

import numpy as np

SIGMOID_GATES = {"i", "f", "o", "r", "z"}
NAMES = {
    "i": "input gate i", "f": "forget gate f", "g": "candidate g", "o": "output gate o",
    "r": "reset gate r", "z": "update gate z (share of h kept)", "n": "candidate n",
    "c": "cell state c", "h": "hidden state h",
}
ORDER = ["i", "f", "g", "o", "r", "z", "n", "c", "h"]


def read(path, first=None, last=None):
    """-> steps (array), {(layer, field): array units x steps}."""
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        if not header or header[0] != "step":
            sys.exit(f"plot_gates: {path}: expected a header starting with 'step' "
                     "(written by lstm-model run --explain)")
        rows = [[float(v) for v in r] for r in reader if r]
    if not rows:
        sys.exit(f"plot_gates: {path} has no steps")
    data = np.array(rows)[first:last]
    if not len(data):
        sys.exit(f"plot_gates: {path}: no steps in the range asked for "
                 f"(it has {len(rows)} steps)")
    columns = {}
    for i, name in enumerate(header[1:], start=1):
        layer, field, unit = name.split(".")
        columns.setdefault((int(layer[1:]), field), []).append((int(unit), i))
    panels = {}
    for key, cols in columns.items():
        cols.sort()
        panels[key] = data[:, [i for _, i in cols]].T
    return data[:, 0], panels


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("csv", help="the explain CSV from lstm-model run --explain")
    parser.add_argument("-o", "--output", default="gates.png", help="PNG to write (default gates.png)")
    parser.add_argument("--fields", default=None,
                        help="comma-separated fields to draw, e.g. f,c,h (default: all)")
    parser.add_argument("--first", type=int, default=None, help="first row (step) to draw")
    parser.add_argument("--last", type=int, default=None, help="row after the last one to draw")
    parser.add_argument("--title", default=None, help="figure title")
    parser.add_argument("--dpi", type=int, default=110, help="resolution (default 110)")
    args = parser.parse_args(argv)

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    steps, panels = read(args.csv, args.first, args.last)
    wanted = set(args.fields.split(",")) if args.fields else None
    keys = sorted((k for k in panels if wanted is None or k[1] in wanted),
                  key=lambda k: (k[0], ORDER.index(k[1]) if k[1] in ORDER else 99))
    if not keys:
        sys.exit(f"plot_gates: no fields to draw (have {sorted({k[1] for k in panels})})")
    layers = sorted({k[0] for k in keys})
    per_layer = max(sum(1 for k in keys if k[0] == l) for l in layers)
    fig, axes = plt.subplots(per_layer, len(layers), squeeze=False,
                             figsize=(6.5 * len(layers), 1.9 * per_layer + 0.8),
                             sharex=True)
    for col, layer in enumerate(layers):
        mine = [k for k in keys if k[0] == layer]
        for row in range(per_layer):
            ax = axes[row][col]
            if row >= len(mine):
                ax.axis("off")
                continue
            field = mine[row][1]
            z = panels[mine[row]]
            if field in SIGMOID_GATES:
                kw = dict(cmap="viridis", vmin=0, vmax=1)
            else:
                m = max(float(np.max(np.abs(z))), 1e-6) if field == "c" else 1.0
                kw = dict(cmap="RdBu_r", vmin=-m, vmax=m)
            im = ax.imshow(z, aspect="auto", interpolation="nearest", origin="lower",
                           extent=(steps[0] - 0.5, steps[-1] + 0.5, -0.5, z.shape[0] - 0.5), **kw)
            ax.set_title(f"layer {layer}: {NAMES.get(field, field)}", fontsize=9)
            ax.set_ylabel("unit", fontsize=8)
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
            ax.tick_params(labelsize=7)
            fig.colorbar(im, ax=ax, pad=0.01, fraction=0.04)
        axes[-1][col].set_xlabel("step", fontsize=8)
    if args.title:
        fig.suptitle(args.title, fontsize=11)
    fig.tight_layout()
    fig.savefig(args.output, dpi=args.dpi)
    print(f"plot_gates: wrote {args.output} ({len(keys)} panels, {len(steps)} steps)")


if __name__ == "__main__":
    main()
