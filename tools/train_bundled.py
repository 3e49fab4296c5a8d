#!/usr/bin/env python3
"""Train the two bundled example models of lstmserve's model repository.

    /usr/bin/python3 tools/train_bundled.py            # both models, ~30 s on one core
    /usr/bin/python3 tools/train_bundled.py sunspots   # just one

Writes, for each model NAME (sunspots, elnino):

    models/NAME/1/config.json, models/NAME/1/model.safetensors   (F32)
    models/NAME/data.csv     the whole raw series, one value per line
    models/NAME/README.md    what the model does and how well
and docs/MODELS.md (the table of bundled models).

Both are one-step-ahead forecasters of a univariate series: at each step the
model reads the current raw value and outputs its prediction of the next one.
Normalization (mean/std of the training split) is stored in config.json, so
the served model takes and returns raw values.

Split: the first 80% of the series (chronologically) trains, the last 20%
validates. Validation is teacher-forced: the model runs over the whole series
from a zero state (so its state is warmed up by the training years), and each
validation value is compared with the prediction made one step before it. The
naive baseline predicts that the next value equals the current one.

Deterministic: fixed seeds, one thread, torch deterministic algorithms; the
same torch version on the same kind of CPU reproduces the same weights.
Inputs come from tools/data/ (see tools/data/README.md).
"""

import os
import sys
import time

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lstmserve_export as E  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(REPO, "tools", "data")
TRAIN_FRACTION = 0.8


def load_sunspots():
    """Yearly sunspot numbers 1700-2008 -> (values, labels)."""
    with open(os.path.join(DATA, "sunspots.csv")) as f:
        rows = [line.strip().split(",") for line in f.readlines()[1:] if line.strip()]
    return np.array([float(r[1]) for r in rows]), [r[0] for r in rows]


def load_elnino():
    """Monthly SST 1950-2010: rows are years with 12 month columns -> one monthly series."""
    with open(os.path.join(DATA, "elnino.csv")) as f:
        rows = [line.strip().split(",") for line in f.readlines()[1:] if line.strip()]
    values, labels = [], []
    for r in rows:
        year = int(float(r[0]))
        for m, v in enumerate(r[1:13]):
            values.append(float(v))
            labels.append(f"{year}-{m + 1:02d}")
    return np.array(values), labels


# Settings were picked by hand with a few runs (looking at the validation
# numbers, so the validation split is not an untouched test set).
MODELS = {
    "sunspots": dict(
        load=load_sunspots, cell="lstm", layers=2, hidden=32,
        window=60, batch=16, steps=1500, lr=3e-3, weight_decay=1e-5, seed=1,
        unit="yearly mean sunspot number", step="year",
        input_name="sunspot_number", output_name="sunspot_number_next_year",
        description=("Yearly sunspot number forecaster: input this year's sunspot number, "
                     "output the prediction for next year. LSTM 2x32, trained on 1700-1946."),
        source="yearly sunspot numbers 1700-2008 (NOAA NGDC), from statsmodels' sunspots dataset",
    ),
    "elnino": dict(
        load=load_elnino, cell="gru", layers=1, hidden=32,
        window=96, batch=16, steps=800, lr=3e-3, weight_decay=1e-5, seed=2,
        unit="degrees Celsius", step="month",
        input_name="sst_celsius", output_name="sst_celsius_next_month",
        description=("Monthly Pacific sea surface temperature (Nino 1+2 region) forecaster: "
                     "input this month's mean SST in degrees Celsius, output the prediction "
                     "for next month. GRU 1x32, trained on 1950-1998."),
        source="monthly mean SST, Nino 1+2 region, 1950-2010 (NOAA ERSST.V3B), from statsmodels' elnino dataset",
    ),
}


def make_model(s):
    if s["cell"] == "lstm":
        rnn = nn.LSTM(1, s["hidden"], s["layers"])
    else:
        rnn = nn.GRU(1, s["hidden"], s["layers"])
    return rnn, nn.Linear(s["hidden"], 1)


def train(s, z_train):
    """Fit rnn+head to predict z[t+1] from z[..t] on the normalized training series.

    Each step draws `batch` random windows of `window` consecutive values and
    starts each from a zero state: the model learns to forecast from a cold
    start too, which is how a new session begins.
    """
    torch.manual_seed(s["seed"])
    rng = np.random.default_rng(s["seed"])
    rnn, head = make_model(s)
    params = list(rnn.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=s["lr"], weight_decay=s["weight_decay"])
    # Cosine decay of the learning rate to 0 settles the weights at the end
    # instead of leaving them wherever the last noisy batch put them.
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, s["steps"])
    W, B = s["window"], s["batch"]
    z = torch.tensor(z_train, dtype=torch.float32)
    for step in range(s["steps"]):
        starts = rng.integers(0, len(z_train) - W - 1, B)
        x = torch.stack([z[i:i + W] for i in starts], dim=1).unsqueeze(-1)        # (W, B, 1)
        y = torch.stack([z[i + 1:i + W + 1] for i in starts], dim=1).unsqueeze(-1)
        out, _ = rnn(x)
        loss = torch.mean((head(out) - y) ** 2)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(params, 1.0)  # RNNs: keep a rare large gradient from derailing training
        opt.step()
        sched.step()
        if (step + 1) % 200 == 0:
            print(f"  step {step + 1:5d}  train mse (normalized) {loss.item():.4f}")
    return rnn.eval(), head.eval()


def metrics(pred, target):
    err = pred - target
    return float(np.sqrt(np.mean(err ** 2))), float(np.mean(np.abs(err)))


def evaluate(model, series, n_train):
    """Teacher-forced one-step-ahead predictions over the whole raw series."""
    with torch.no_grad():
        y, _, _ = model(torch.tensor(series[:-1, None], dtype=torch.float32))
    pred = y[:, 0].double().numpy()          # pred[t] forecasts series[t + 1]
    idx = np.arange(n_train - 1, len(series) - 1)  # forecasts of series[n_train:]
    target = series[idx + 1]
    return {"model": metrics(pred[idx], target),
            "naive": metrics(series[idx], target),
            "n_val": len(idx)}


def fmt(v):
    return f"{v:.3f}" if v < 10 else f"{v:.2f}"


def write_readme(name, s, res, labels, n_train, mean, std, path):
    (mr, ma), (nr, na) = res["model"], res["naive"]
    seasonal = ""
    if "seasonal" in res:
        sr, sa = res["seasonal"]
        seasonal = (f"| seasonal naive (same month last year) | {fmt(sr)} | {fmt(sa)} |\n")
    cell = s["cell"].upper()
    text = f"""# {name}

{s['description']}

- Cell: {cell}, {s['layers']} layer{'s' if s['layers'] > 1 else ''}, hidden size {s['hidden']}, then a linear head
  (identity activation) to 1 output.
- Input (1 value per step, one step per {s['step']}): `{s['input_name']}`, this
  {s['step']}'s raw value ({s['unit']}).
- Output (1 value per step): `{s['output_name']}`, the forecast of the next
  {s['step']}'s value ({s['unit']}).
- Normalization in `config.json`: inputs and outputs use the training split's
  mean {mean:.4f} and standard deviation {std:.4f}, so the served model takes
  and returns raw values.
- Start each series from a zero state (a new session) at its first value and
  stream one value per step; the forecast gets better once a few {s['step']}s
  have warmed the state up.

```sh
build/lstm-model run models/{name} < models/{name}/data.csv   # one forecast per line
```

## Data

`data.csv` holds the whole raw series, one value per line ({len(labels)} values,
{labels[0]} to {labels[-1]}): {s['source']}. The raw file and its provenance
and license are in `tools/data/` (see `tools/data/README.md`).

## Training

`tools/train_bundled.py` (PyTorch, deterministic: seed {s['seed']}, one thread).
Training split: the first {n_train} values ({labels[0]} to {labels[n_train - 1]});
validation: the last {len(labels) - n_train} ({labels[n_train]} to {labels[-1]}).
Adam, learning rate {s['lr']} with cosine decay to 0, weight decay {s['weight_decay']},
gradient-norm clipping at 1, {s['steps']} steps of {s['batch']} random windows of
{s['window']} {s['step']}s each, every window starting from a zero state; loss:
mean squared error of the one-step-ahead forecast in normalized units.
Training takes well under a minute on one CPU core.

## Validation

Teacher-forced one-step-ahead forecasts of the {res['n_val']} validation values: the
model runs over the whole series from a zero state and each validation value
is compared with the forecast made one {s['step']} before. Units: {s['unit']}.

| predictor | RMSE | MAE |
|---|---|---|
| this model | {fmt(mr)} | {fmt(ma)} |
| naive (next = current) | {fmt(nr)} | {fmt(na)} |
{seasonal}
The settings were chosen with these validation numbers in view, so they are
not an untouched test score.

## Retrain

```sh
/usr/bin/python3 tools/train_bundled.py {name}   # any Python with torch + numpy
/usr/bin/python3 tools/make_golden.py            # golden case bundled_{name} uses this model
```
"""
    with open(path, "w") as f:
        f.write(text)


def train_one(name):
    s = MODELS[name]
    series, labels = s["load"]()
    n_train = int(round(TRAIN_FRACTION * len(series)))
    # Statistics at float32 precision: what config.json stores and the engine uses.
    mean = float(np.float32(series[:n_train].mean()))
    std = float(np.float32(series[:n_train].std()))
    print(f"{name}: {len(series)} values, training on the first {n_train}")
    t0 = time.time()
    rnn, head = train(s, (series[:n_train] - mean) / std)
    seconds = time.time() - t0
    norm = {"input_mean": [mean], "input_std": [std], "output_mean": [mean], "output_std": [std]}

    vdir = os.path.join(REPO, "models", name, "1")
    E.export_model(vdir, rnn, head, "identity", norm, "F32", description=s["description"],
                   input_names=[s["input_name"]], output_names=[s["output_name"]])
    # Evaluate what was exported, as the server will load it.
    res = evaluate(E.load_model(vdir), series, n_train)
    if name == "elnino":
        # The monthly SST has a strong annual cycle; "same month last year" is
        # the usual baseline for seasonal series, reported for context.
        idx = np.arange(n_train, len(series))
        res["seasonal"] = metrics(series[idx - 12], series[idx])
    # The raw series as in the source, "%.9g" (e.g. 23.11 stays 23.11).
    with open(os.path.join(REPO, "models", name, "data.csv"), "w") as f:
        for v in series:
            f.write("%.9g\n" % v)
    write_readme(name, s, res, labels, n_train, mean, std,
                 os.path.join(REPO, "models", name, "README.md"))
    (mr, ma), (nr, na) = res["model"], res["naive"]
    print(f"{name}: validation RMSE {mr:.3f} (naive {nr:.3f}), MAE {ma:.3f} (naive {na:.3f}); "
          f"trained in {seconds:.1f} s")
    if "seasonal" in res:
        print(f"{name}: seasonal naive RMSE {res['seasonal'][0]:.3f}, MAE {res['seasonal'][1]:.3f}")
    if not (mr < nr or ma < na):
        print(f"WARNING: {name} does not beat the naive baseline", file=sys.stderr)
    return dict(name=name, s=s, res=res, n=len(series), n_train=n_train, labels=labels)


def write_models_md(path):
    """docs/MODELS.md, from the numbers recorded in each model's README (so a
    partial retrain keeps the other model's row)."""
    rows = []
    for name, s in MODELS.items():
        readme = os.path.join(REPO, "models", name, "README.md")
        if not os.path.exists(readme):
            continue
        with open(readme) as f:
            lines = f.read().splitlines()
        model_row = next(l for l in lines if l.startswith("| this model |")).split("|")
        naive_row = next(l for l in lines if l.startswith("| naive (next = current) |")).split("|")
        rows.append(f"| [`{name}`](../models/{name}/README.md) | {s['cell'].upper()} "
                    f"{s['layers']}x{s['hidden']} | next {s['step']}'s value ({s['unit']}) | "
                    f"{model_row[2].strip()} / {naive_row[2].strip()} | "
                    f"{model_row[3].strip()} / {naive_row[3].strip()} |")
    text = """# Bundled models

`models/` is a ready-to-serve model repository (`<repo>/<name>/<version>/` with
`config.json` and `model.safetensors`) holding two small one-step-ahead
forecasters of public-domain series. The server's default model is `sunspots`.
Each takes one raw value per step and returns its forecast of the next value;
their `data.csv` holds the whole series, one value per line:

```sh
build/lstm-model run models/sunspots < models/sunspots/data.csv
```

Validation: the last 20% of each series (the first 80% trains), teacher-forced
one-step-ahead forecasts, against the naive forecast "next = current"
(model / naive; lower is better):

| model | network | forecasts | val RMSE | val MAE |
|---|---|---|---|---|
""" + "\n".join(rows) + """

With bf16 or int8 weights (`--weights`; docs/MODEL_FORMAT.md, "Weight
formats") the validation errors stay within 0.25% of these:
`/usr/bin/python3 tools/eval_formats.py` measures them with the engine, and
docs/PERFORMANCE.md ("Accuracy") lists them.

Reproduce (under a minute on one CPU core; deterministic):

```sh
/usr/bin/python3 tools/train_bundled.py   # any Python with torch (1.13) and numpy
/usr/bin/python3 tools/make_golden.py     # refresh tests/golden/bundled_* for the new weights
```

Each model's README gives its data source, training settings and numbers.
To export your own PyTorch model, see `tools/lstmserve_export.py --help`.
"""
    with open(path, "w") as f:
        f.write(text)


def main(argv):
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    names = argv or list(MODELS)
    for n in names:
        if n not in MODELS:
            sys.exit(f"unknown model {n!r}; expected one of {list(MODELS)}")
    t0 = time.time()
    for n in names:
        train_one(n)
    os.makedirs(os.path.join(REPO, "docs"), exist_ok=True)
    write_models_md(os.path.join(REPO, "docs", "MODELS.md"))
    print(f"done in {time.time() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
