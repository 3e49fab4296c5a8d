#!/usr/bin/env python3
"""Train the bundled models of lstmserve's model repository and write their docs.

    /usr/bin/python3 tools/train_bundled.py                 # all three models
    /usr/bin/python3 tools/train_bundled.py sunspots elnino # just these
    /usr/bin/python3 tools/train_bundled.py --docs-only     # rewrite the docs from
                                                            # models/*/metrics.json
    /usr/bin/python3 tools/train_bundled.py --check         # exit 1 if the committed
                                                            # docs differ from that

Times on one thread (the script sets torch to one thread; CPU seconds, on a
2-core VM shared with other work the wall time was 2-4x longer): sunspots
and elnino about 3 min each, charlm about 25 min (see docs/MODELS.md for the
measured numbers).

Writes, for each model NAME:

    models/NAME/1/config.json, models/NAME/1/model.safetensors   (F32)
    models/NAME/data.csv     inputs for a demo run, one step per line
    models/NAME/metrics.json every number the docs quote, from this run
    models/NAME/README.md    what the model does and how well
and docs/MODELS.md (all the bundled models, from their metrics.json).

The forecasters (sunspots, elnino) are one-step-ahead forecasters of a
univariate series: at each step the model reads the current raw value and
outputs its prediction of the next one. Normalization is stored in
config.json, so the served model takes and returns raw values.

- Split: the first 80% of the series (chronologically) trains, the last 20%
  validates. Validation is teacher-forced: the model runs over the whole
  series from a zero state, and each validation value is compared with the
  forecast made one step before it.
- Model selection without the validation split: a few candidate networks
  (CANDIDATES) are trained on the first 80% of the training years and scored
  on the remaining 20% of them (the "inner" split); the best by RMSE is then
  retrained on all the training years with the same seed. The validation
  years are used once, for the reported numbers. The chosen network is also
  retrained with seeds 1-5 to show how much the validation error depends on
  the seed alone.
- Baselines, fitted on the training years only: naive (next = current); an
  autoregression AR(p) by least squares with p chosen by AIC (sunspots); for
  elnino the monthly means of the training years plus an AR(p) of the
  anomalies (p by AIC), the seasonal naive (same month last year) and the
  monthly means alone.
- sunspots cannot forecast a negative count: its head has a sigmoid
  activation and its output normalization is mean 0, std BOUND, so the
  served output is BOUND * sigmoid(.) in (0, BOUND), BOUND being twice the
  largest value of the training years. The script checks the exported model
  on the whole series.

charlm (tools/charlm.py) is a character-level LSTM language model of Python
source (the Python 3.11 standard library), validated in bits per character
against interpolated Kneser-Ney n-gram models on the same split.

Deterministic: fixed seeds, one thread, torch deterministic algorithms; the
same torch version on the same kind of CPU reproduces the same weights.
Inputs come from tools/data/ and the python3.11 package (see
tools/data/README.md).
"""

import json
import os
import shutil
import sys
import time

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import charlm as C  # noqa: E402
import lstmserve_export as E  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(REPO, "tools", "data")
TRAIN_FRACTION = 0.8
SEEDS = (1, 2, 3, 4, 5)


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


def net(cell, layers, hidden):
    return dict(cell=cell, layers=layers, hidden=hidden)


# The candidates and the training settings were fixed before the selection
# ran; the settings are the previous bundled models' plus `warmup`.
MODELS = {
    "sunspots": dict(
        load=load_sunspots, head="sigmoid", bound_factor=2.0, seasonal=False, ar_max=20,
        candidates=[net("lstm", 2, 32), net("lstm", 1, 16), net("gru", 1, 32), net("gru", 1, 16)],
        window=60, batch=16, steps=1500, lr=3e-3, weight_decay=1e-5, warmup=10, seed=1,
        unit="yearly mean sunspot number", step="year", decimals=2,
        input_name="sunspot_number", output_name="sunspot_number_next_year",
        what="Yearly sunspot number forecaster: input this year's sunspot number, output "
             "the prediction for next year (never negative)",
        source="yearly sunspot numbers 1700-2008 (NOAA NGDC), from statsmodels' sunspots dataset",
    ),
    "elnino": dict(
        load=load_elnino, head="identity", seasonal=True, ar_max=24,
        candidates=[net("gru", 1, 32), net("gru", 1, 16), net("lstm", 1, 32), net("lstm", 1, 16)],
        window=96, batch=16, steps=800, lr=3e-3, weight_decay=1e-5, warmup=12, seed=2,
        unit="degrees Celsius", step="month", decimals=3,
        input_name="sst_celsius", output_name="sst_celsius_next_month",
        what="Monthly Pacific sea surface temperature (Nino 1+2 region) forecaster: input "
             "this month's mean SST in degrees Celsius, output the prediction for next month",
        source="monthly mean SST, Nino 1+2 region, 1950-2010 (NOAA ERSST.V3B), "
               "from statsmodels' elnino dataset",
    ),
}
ALL = list(MODELS) + ["charlm"]


# --------------------------------------------------------------------------
# Linear baselines (numpy)
# --------------------------------------------------------------------------

def ar_design(z, p, t):
    """Regressors of AR(p) for the targets z[t]: 1, z[t-1], ..., z[t-p]."""
    return np.column_stack([np.ones(len(t))] + [z[t - i] for i in range(1, p + 1)])


def fit_ar_aic(z, p_max):
    """AR(p) by least squares on z, p in 1..p_max chosen by AIC.

    Every p is fitted to the same targets z[p_max:] so that their AICs
    compare; AIC = n log(RSS / n) + 2 (p + 1). The chosen order is then
    refitted on all the targets it can use, z[p:]. Returns (p, coefficients
    [c, a_1..a_p], {p: AIC}).
    """
    t = np.arange(p_max, len(z))
    aic = {}
    for p in range(1, p_max + 1):
        X = ar_design(z, p, t)
        coef, *_ = np.linalg.lstsq(X, z[t], rcond=None)
        rss = float(np.sum((z[t] - X @ coef) ** 2))
        aic[p] = len(t) * np.log(rss / len(t)) + 2 * (p + 1)
    p = min(aic, key=aic.get)
    t = np.arange(p, len(z))
    coef, *_ = np.linalg.lstsq(ar_design(z, p, t), z[t], rcond=None)
    return p, coef, aic


def metrics(pred, target):
    err = np.asarray(pred) - np.asarray(target)
    return [float(np.sqrt(np.mean(err ** 2))), float(np.mean(np.abs(err)))]


def baselines(s, series, n_fit, n_end):
    """Baseline forecasts of series[n_fit:n_end], fitted on series[:n_fit].

    Returns {name: {"rmse", "mae", ...}} (one-step-ahead, each from the true
    past values, like the teacher-forced model).
    """
    t = np.arange(n_fit, n_end)
    target = series[t]
    out = {"naive": dict(zip(("rmse", "mae"), metrics(series[t - 1], target)))}
    if not s["seasonal"]:
        p, coef, _ = fit_ar_aic(series[:n_fit], s["ar_max"])
        out["ar"] = dict(zip(("rmse", "mae"), metrics(ar_design(series, p, t) @ coef, target)), p=p)
        return out
    month = np.arange(len(series)) % 12
    clim = np.array([series[:n_fit][month[:n_fit] == m].mean() for m in range(12)])
    anomaly = series - clim[month]
    p, coef, _ = fit_ar_aic(anomaly[:n_fit], s["ar_max"])
    out["ar"] = dict(zip(("rmse", "mae"), metrics(clim[month[t]] + ar_design(anomaly, p, t) @ coef,
                                                 target)), p=p)
    out["seasonal_naive"] = dict(zip(("rmse", "mae"), metrics(series[t - 12], target)))
    out["monthly_mean"] = dict(zip(("rmse", "mae"), metrics(clim[month[t]], target)))
    return out


# --------------------------------------------------------------------------
# The recurrent forecasters
# --------------------------------------------------------------------------

def scaling(s, series, n_fit):
    """Normalization from series[:n_fit] (at float32 precision, as config.json
    stores it): inputs by mean/std; outputs the same, or for a sigmoid head
    mean 0 and std BOUND = bound_factor * max."""
    mean = float(np.float32(series[:n_fit].mean()))
    std = float(np.float32(series[:n_fit].std()))
    if s["head"] == "sigmoid":
        out_mean, out_std = 0.0, float(np.float32(s["bound_factor"] * series[:n_fit].max()))
    else:
        out_mean, out_std = mean, std
    return {"input_mean": [mean], "input_std": [std],
            "output_mean": [out_mean], "output_std": [out_std]}


def train(s, arch, seed, z_in, z_out):
    """Fit rnn+head so that activation(head(rnn(z_in[..t]))) predicts z_out[t+1].

    Each step draws `batch` random windows of `window` consecutive values and
    starts each from a zero state; the loss (mean squared error in the
    normalized output units) skips each window's first `warmup` forecasts,
    made before the state has seen enough of the series, since the served
    model's forecasts that matter come from a warmed-up state.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    cls = nn.LSTM if arch["cell"] == "lstm" else nn.GRU
    rnn, head = cls(1, arch["hidden"], arch["layers"]), nn.Linear(arch["hidden"], 1)
    params = list(rnn.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=s["lr"], weight_decay=s["weight_decay"])
    # Cosine decay of the learning rate to 0 settles the weights at the end
    # instead of leaving them wherever the last noisy batch put them.
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, s["steps"])
    W, B, warm = s["window"], s["batch"], s["warmup"]
    zi = torch.tensor(z_in, dtype=torch.float32)
    zo = torch.tensor(z_out, dtype=torch.float32)
    for _ in range(s["steps"]):
        starts = rng.integers(0, len(z_in) - W - 1, B)
        x = torch.stack([zi[i:i + W] for i in starts], dim=1).unsqueeze(-1)        # (W, B, 1)
        y = torch.stack([zo[i + 1:i + W + 1] for i in starts], dim=1).unsqueeze(-1)
        out, _ = rnn(x)
        pred = head(out)
        if s["head"] == "sigmoid":
            pred = torch.sigmoid(pred)
        loss = torch.mean((pred[warm:] - y[warm:]) ** 2)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(params, 1.0)  # RNNs: keep a rare large gradient from derailing training
        opt.step()
        sched.step()
    return rnn.eval(), head.eval()


def served(s, rnn, head, norm):
    return E.ServedModel(rnn, head, s["head"], norm).eval()


def forecasts(model, series):
    """Teacher-forced one-step-ahead forecasts: out[t] forecasts series[t + 1]."""
    with torch.no_grad():
        y, _, _ = model(torch.tensor(series[:, None], dtype=torch.float32))
    return y[:, 0].double().numpy()


def fit_and_score(s, arch, seed, series, n_fit, n_end):
    """Train on series[:n_fit]; (model, norm, [rmse, mae] on series[n_fit:n_end])."""
    norm = scaling(s, series, n_fit)
    z_in = (series[:n_fit] - norm["input_mean"][0]) / norm["input_std"][0]
    z_out = (series[:n_fit] - norm["output_mean"][0]) / norm["output_std"][0]
    rnn, head = train(s, arch, seed, z_in, z_out)
    pred = forecasts(served(s, rnn, head, norm), series)
    t = np.arange(n_fit, n_end)
    return (rnn, head), norm, metrics(pred[t - 1], series[t])


def arch_name(a):
    return f"{a['cell'].upper()} {a['layers']}x{a['hidden']}"


def train_forecaster(name, log=print):
    s = MODELS[name]
    series, labels = s["load"]()
    n = len(series)
    n_train = int(round(TRAIN_FRACTION * n))
    n_inner = int(round(TRAIN_FRACTION * n_train))
    cpu0, wall0 = time.process_time(), time.time()

    # 1. Selection on the inner split (training years only).
    log(f"{name}: {n} values; training years {labels[0]}..{labels[n_train - 1]}, "
        f"selection on {labels[n_inner]}..{labels[n_train - 1]}")
    selection = []
    for arch in s["candidates"]:
        _, _, (rmse, mae) = fit_and_score(s, arch, s["seed"], series, n_inner, n_train)
        selection.append(dict(arch, rmse=rmse, mae=mae))
        log(f"  {arch_name(arch):10s} inner RMSE {rmse:.3f} MAE {mae:.3f}")
    best = min(selection, key=lambda r: r["rmse"])
    arch = {k: best[k] for k in ("cell", "layers", "hidden")}
    inner_baselines = baselines(s, series, n_inner, n_train)
    log(f"  chosen {arch_name(arch)}; inner AR({inner_baselines['ar']['p']}) "
        f"RMSE {inner_baselines['ar']['rmse']:.3f}")

    # 2. The chosen network on all the training years, exported.
    (rnn, head), norm, _ = fit_and_score(s, arch, s["seed"], series, n_train, n)
    vdir = os.path.join(REPO, "models", name, "1")
    shutil.rmtree(vdir, ignore_errors=True)
    description = (f"{s['what']}. {arch_name(arch)}, trained on "
                   f"{labels[0]}-{labels[n_train - 1]}.")
    E.export_model(vdir, rnn, head, s["head"], norm, "F32", description=description,
                   input_names=[s["input_name"]], output_names=[s["output_name"]])
    cpu, wall = time.process_time() - cpu0, time.time() - wall0

    # 3. The seed's share of the error.
    by_seed = {}
    for seed in SEEDS:
        _, _, (rmse, mae) = fit_and_score(s, arch, seed, series, n_train, n)
        by_seed[seed] = dict(rmse=rmse, mae=mae)
        log(f"  seed {seed}: validation RMSE {rmse:.3f}")

    with open(os.path.join(REPO, "models", name, "data.csv"), "w") as f:
        for v in series:  # the raw series as in the source ("%.9g": 23.11 stays 23.11)
            f.write("%.9g\n" % v)
    m = dict(
        name=name, arch=arch, head=s["head"], seed=s["seed"], n=n, n_train=n_train,
        n_inner=n_inner,
        labels=dict(first=labels[0], inner_last=labels[n_inner - 1], inner_first=labels[n_inner],
                    train_last=labels[n_train - 1], val_first=labels[n_train], last=labels[-1]),
        normalization=norm, selection=selection, inner_baselines=inner_baselines,
        baselines=baselines(s, series, n_train, n), seeds=by_seed,
        train_cpu_seconds=cpu, train_wall_seconds=wall, description=description,
        training_max=float(series[:n_train].max()),
        training_argmax=labels[int(np.argmax(series[:n_train]))],
        series_max=float(series.max()), series_argmax=labels[int(np.argmax(series))],
        val_above_training_max=int(np.sum(series[n_train:] > series[:n_train].max())))
    m.update(evaluate_forecaster(name, m))
    m["total_cpu_seconds"] = time.process_time() - cpu0
    m["total_wall_seconds"] = time.time() - wall0
    save_metrics(m)
    return m


def evaluate_forecaster(name, m):
    """The exported model's numbers, as the server will compute them."""
    s = MODELS[name]
    series, _ = s["load"]()
    model = E.load_model(os.path.join(REPO, "models", name, "1"))
    pred = forecasts(model, series)
    t = np.arange(m["n_train"], m["n"])
    rmse, mae = metrics(pred[t - 1], series[t])
    return dict(val=dict(rmse=rmse, mae=mae), min_output=float(pred.min()),
                max_output=float(pred.max()), last_forecast=float(pred[-1]))


# --------------------------------------------------------------------------
# charlm
# --------------------------------------------------------------------------

def train_charlm(log=print):
    cpu0, wall0 = time.process_time(), time.time()
    mdir = os.path.join(REPO, "models", "charlm")
    vdir = os.path.join(mdir, "1")
    shutil.rmtree(vdir, ignore_errors=True)
    log("charlm: training (tools/charlm.py)")
    wall, cpu = C.train_and_export(vdir, log=log)
    m = dict(name="charlm", settings=C.SETTINGS, train_cpu_seconds=cpu, train_wall_seconds=wall)
    save_metrics(m)  # kept if what follows fails: `--docs-only charlm` redoes it
    m.update(charlm_numbers(log))
    m["total_cpu_seconds"] = time.process_time() - cpu0
    m["total_wall_seconds"] = time.time() - wall0
    save_metrics(m)
    return m


def save_metrics(m):
    with open(os.path.join(REPO, "models", m["name"], "metrics.json"), "w") as f:
        json.dump(m, f, indent=1)
        f.write("\n")


def charlm_numbers(log=print):
    """Everything about the exported charlm but its training: the demo files,
    the baselines and the model's own numbers (deterministic)."""
    mdir = os.path.join(REPO, "models", "charlm")
    C.write_sample(mdir)
    shutil.copyfile(os.path.join(C.STDLIB, "LICENSE.txt"), os.path.join(mdir, "LICENSE-PSF.txt"))
    corpus = C.load_corpus()
    tr, va = C.encode(corpus["train"]), C.encode(corpus["val"])
    log("charlm: baselines")
    sizes = {}
    m = dict(train_chars=len(tr), val_chars=len(va), train_files=corpus["train_files"],
             val_files=corpus["val_files"], train_sha256=corpus["train_sha256"],
             val_sha256=corpus["val_sha256"], unigram_bpc=C.unigram_bpc(tr, va),
             ngram_bpc={str(k): v for k, v in C.ngram_baselines(tr, va, sizes=sizes).items()},
             description=C.DESCRIPTION)
    m["ngram_grams"] = {str(k): v for k, v in sizes.items()}
    log("charlm: evaluation")
    m.update(evaluate_charlm())
    return m


def evaluate_charlm():
    corpus = C.load_corpus()
    model = E.load_model(os.path.join(REPO, "models", "charlm", "1"))
    va = C.encode(corpus["val"])
    return dict(val_bpc=C.model_bpc(model, va),
                size_bytes=os.path.getsize(os.path.join(REPO, "models", "charlm", "1",
                                                        "model.safetensors")),
                **C.examples(model))


# --------------------------------------------------------------------------
# Docs
# --------------------------------------------------------------------------

_DECIMALS = [3]


def fmt(v):
    """A metric with the current model's number of decimals."""
    return f"{v:.{_DECIMALS[0]}f}"


def use_decimals(name):
    _DECIMALS[0] = MODELS[name]["decimals"] if name in MODELS else 3


def minutes(seconds):
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def forecaster_tables(name, m):
    """The validation table and the selection table (markdown lines)."""
    s = MODELS[name]
    use_decimals(name)
    b = m["baselines"]
    ar_label = (f"AR({b['ar']['p']}), p by AIC on the training years" if not s["seasonal"] else
                f"monthly means + AR({b['ar']['p']}) of the anomalies, p by AIC")
    rows = [("**this model** (" + arch_name(m["arch"]) + ")", m["val"]),
            ("naive (next = current)", b["naive"]), (ar_label, b["ar"])]
    if s["seasonal"]:
        rows += [("seasonal naive (same month last year)", b["seasonal_naive"]),
                 ("monthly means of the training years", b["monthly_mean"])]
    val = ["| predictor | RMSE | MAE |", "|---|---|---|"]
    val += [f"| {label} | {fmt(r['rmse'])} | {fmt(r['mae'])} |" for label, r in rows]
    ib = m["inner_baselines"]
    sel = ["| candidate | inner RMSE | inner MAE |", "|---|---|---|"]
    for r in m["selection"]:
        mark = " (chosen)" if all(r[k] == m["arch"][k] for k in ("cell", "layers", "hidden")) else ""
        sel.append(f"| {arch_name(r)}{mark} | {fmt(r['rmse'])} | {fmt(r['mae'])} |")
    sel.append(f"| *AR baseline ({'anomaly ' if s['seasonal'] else ''}AR({ib['ar']['p']}))* | "
               f"{fmt(ib['ar']['rmse'])} | {fmt(ib['ar']['mae'])} |")
    sel.append(f"| *naive* | {fmt(ib['naive']['rmse'])} | {fmt(ib['naive']['mae'])} |")
    return val, sel


def verdict(m):
    """One plain sentence: does the recurrent model beat the linear baseline?"""
    use_decimals(m["name"])
    ar, v = m["baselines"]["ar"], m["val"]
    seeds = [r["rmse"] for r in m["seeds"].values()]
    wins = sum(r < ar["rmse"] for r in seeds)
    if v["rmse"] < ar["rmse"] and v["mae"] < ar["mae"]:
        head = (f"It beats the linear baseline on validation, narrowly (RMSE {fmt(v['rmse'])} "
                f"against {fmt(ar['rmse'])}, MAE {fmt(v['mae'])} against {fmt(ar['mae'])})")
    elif v["rmse"] < ar["rmse"] or v["mae"] < ar["mae"]:
        head = (f"It does not clearly beat the linear baseline (RMSE {fmt(v['rmse'])} against "
                f"{fmt(ar['rmse'])}, MAE {fmt(v['mae'])} against {fmt(ar['mae'])})")
    else:
        head = (f"**It does not beat the linear baseline**: RMSE {fmt(v['rmse'])} against "
                f"{fmt(ar['rmse'])}, MAE {fmt(v['mae'])} against {fmt(ar['mae'])}")
    return (f"{head}; retrained with seeds {SEEDS[0]}-{SEEDS[-1]} its validation RMSE ranges "
            f"{fmt(min(seeds))}-{fmt(max(seeds))}, below the baseline's for {wins} of "
            f"{len(seeds)} seeds.")


def forecaster_readme(name, m):
    """models/NAME/README.md of a forecaster, from its metrics.json."""
    s = MODELS[name]
    a, norm = m["arch"], m["normalization"]
    L = m["labels"]
    first, last = L["first"], L["last"]
    val, sel = forecaster_tables(name, m)
    if s["head"] == "sigmoid":
        bound = norm["output_std"][0]
        head = (f"a linear head with a **sigmoid** activation to 1 output, so that the "
                f"forecast cannot be negative")
        norm_text = (
            f"- Normalization in `config.json`: the input maps as (x - {norm['input_mean'][0]:.4f}) / "
            f"{norm['input_std'][0]:.4f} (the training years' mean and standard deviation); the "
            f"output as y * {bound:.1f} + 0, so the sigmoid's (0, 1) becomes (0, {bound:.1f}): "
            f"{bound:.1f} is twice the largest value of the training years ({m['training_max']:.1f} "
            f"in {m['training_argmax']}; the largest of the whole series is {m['series_max']:.1f} in "
            f"{m['series_argmax']}). The served model takes and returns raw values.\n"
            f"- On the whole series (`data.csv`) its forecasts range from {m['min_output']:.2f} to "
            f"{m['max_output']:.2f}; the C++ tests check that `lstm-model run` never outputs a "
            f"negative number on it. Its forecast for {int(last) + 1}, from {last}'s value, is "
            f"{m['last_forecast']:.2f}.")
    else:
        head = "a linear head (identity activation) to 1 output"
        norm_text = (
            f"- Normalization in `config.json`: inputs and outputs use the training years' "
            f"mean {norm['input_mean'][0]:.4f} and standard deviation {norm['input_std'][0]:.4f}, "
            f"so the served model takes and returns raw values.")
    text = f"""# {name}

{m['description']}

- Cell: {a['cell'].upper()}, {a['layers']} layer{'s' if a['layers'] > 1 else ''}, hidden size {a['hidden']}, then {head}.
- Input (1 value per step, one step per {s['step']}): `{s['input_name']}`, this
  {s['step']}'s raw value ({s['unit']}).
- Output (1 value per step): `{s['output_name']}`, the forecast of the next
  {s['step']}'s value ({s['unit']}).
{norm_text}
- Start each series from a zero state (a new session) at its first value and
  stream one value per step; the forecast gets better once a few {s['step']}s
  have warmed the state up.

```sh
build/lstm-model run models/{name} < models/{name}/data.csv   # one forecast per line
```

## Data

`data.csv` holds the whole raw series, one value per line ({m['n']} values,
{first} to {last}): {s['source']}. The raw file and its provenance
and license are in `tools/data/` (see `tools/data/README.md`).

## Training

`tools/train_bundled.py` (PyTorch, deterministic: seed {m['seed']}, one thread).
Training years: the first {m['n_train']} values ({first} to {L['train_last']});
validation: the last {m['n'] - m['n_train']} ({L['val_first']} to {last}).
Adam, learning rate {s['lr']} with cosine decay to 0, weight decay {s['weight_decay']},
gradient-norm clipping at 1, {s['steps']} steps of {s['batch']} random windows of
{s['window']} {s['step']}s each, every window starting from a zero state; loss:
mean squared error of the one-step-ahead forecast in normalized units, skipping
the first {s['warmup']} forecasts of each window (made from a cold state).

The network was chosen without looking at the validation years: each
candidate was trained on {first} to {L['inner_last']} (the first {m['n_inner']} values)
and scored on the rest of the training years ({L['inner_first']} to
{L['train_last']}); the best by RMSE was retrained on all the training years.

{chr(10).join(sel)}

Selection, final training and export took {minutes(m['train_cpu_seconds'])} of CPU on one
thread ({minutes(m['train_wall_seconds'])} wall clock).

## Validation

Teacher-forced one-step-ahead forecasts of the {m['n'] - m['n_train']} validation values: the
model runs over the whole series from a zero state and each validation value
is compared with the forecast made one {s['step']} before. The baselines are
fitted on the training years only and forecast from the true past values too.
Units: {s['unit']}.

{chr(10).join(val)}

{verdict(m)}

## Retrain

```sh
/usr/bin/python3 tools/train_bundled.py {name}   # any Python with torch + numpy
/usr/bin/python3 tools/make_golden.py            # golden case bundled_{name} uses this model
```
"""
    return text


def readme(name, m):
    """models/NAME/README.md, from the model's metrics.json (charlm's: tools/charlm.py)."""
    return forecaster_readme(name, m) if name in MODELS else C.readme(m)


# Validation error in bf16 and int8 relative to float32's (RMSE for the
# forecasters, bits per character for charlm), as measured by
# tools/eval_formats.py with the engine on the weights whose sha256 is given
# (docs/PERFORMANCE.md, "Accuracy", has the full table). After retraining the
# hashes no longer match and docs/MODELS.md says to rerun the tool instead of
# quoting stale numbers: rerun it, update PERFORMANCE.md and this table.
FORMAT_ERRORS = {
    "sunspots": dict(sha256="e3e60070dba767e4ef39f4545c7ea2eb21c1dada3d5046468c0dbf237920bfde",
                     metric="RMSE", bf16="-0.09%", int8="+0.03%"),
    "elnino": dict(sha256="5dd60d19a479c494202d0c7871ee08be8c303e4a98c138a7f6bdc194c57fa0ea",
                   metric="RMSE", bf16="-0.01%", int8="-0.26%"),
    "charlm": dict(sha256="3f139d37548ab66316901001f769d1e3e9949a830c5b6efed08594fa8f7a4f74",
                   metric="bits/char", bf16="+0.003%", int8="+0.003%"),
}


def formats_paragraph(names):
    """docs/MODELS.md's paragraph on the weight formats (after the summary)."""
    import hashlib
    measured = []
    for name in names:
        e = FORMAT_ERRORS.get(name)
        path = os.path.join(REPO, "models", name, "1", "model.safetensors")
        if e is None or not os.path.exists(path):
            measured = None
            break
        with open(path, "rb") as f:
            if hashlib.sha256(f.read()).hexdigest() != e["sha256"]:
                measured = None
                break
        measured.append(f"{name} {e['metric']} {e['bf16']} (bf16), {e['int8']} (int8)")
    head = ("Served with bf16 or int8 weights (`\"weights\"` in a version's config.json or "
            "`lstm-model run --weights`, [MODEL_FORMAT.md](MODEL_FORMAT.md#weight-formats)), ")
    if measured:
        return (head + "the models' validation errors, measured with the engine by "
                "`tools/eval_formats.py`, change relative to float32's by: "
                + "; ".join(measured) + ". Each model meets the requirement of bf16 within 1% "
                "and int8 within 5% of float32's validation error. MAE, the `generic` kernel "
                "path and the output differences: [PERFORMANCE.md](PERFORMANCE.md#accuracy).")
    return (head + "each model's validation error relative to float32's is measured with the "
            "engine by `/usr/bin/python3 tools/eval_formats.py` (the requirement: bf16 within "
            "1%, int8 within 5%). It has not been measured for these weights yet: rerun it and "
            "update [PERFORMANCE.md](PERFORMANCE.md#accuracy) and FORMAT_ERRORS in "
            "tools/train_bundled.py.")


def load_metrics(name):
    path = os.path.join(REPO, "models", name, "metrics.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def models_md():
    """docs/MODELS.md, from models/*/metrics.json."""
    ms = {}
    for name in ALL:
        m = load_metrics(name)
        if m is not None:
            ms[name] = m
    sections = []
    summary = ["| model | network | does | validation: model | baselines |", "|---|---|---|---|---|"]
    for name in MODELS:
        if name not in ms:
            continue
        m, s = ms[name], MODELS[name]
        b = m["baselines"]
        ar = (f"AR({b['ar']['p']})" if not s["seasonal"] else
              f"monthly means + AR({b['ar']['p']}) anomalies")
        summary.append(
            f"| [`{name}`](../models/{name}/README.md) | {arch_name(m['arch'])}, {m['head']} head | "
            f"next {s['step']}'s value ({s['unit']}) | RMSE {fmt(m['val']['rmse'])} | "
            f"naive {fmt(b['naive']['rmse'])}, {ar} {fmt(b['ar']['rmse'])} |")
        val, sel = forecaster_tables(name, m)
        sections.append(section_forecaster(name, m, val, sel))
    if "charlm" in ms:
        m = ms["charlm"]
        ng = m["ngram_bpc"]  # {order: bpc}, the orders that were counted
        best = min(ng, key=ng.get)
        grams = [n for n in ("5", best) if n in ng]
        grams = sorted(set(grams), key=int)
        summary.append(
            f"| [`charlm`](../models/charlm/README.md) | LSTM {m['settings']['layers']}x"
            f"{m['settings']['hidden']}, softmax head | next character of Python source | "
            f"{m['val_bpc']:.3f} bits/char | "
            + ", ".join(f"{n}-gram {ng[n]:.3f}" for n in grams) + " (Kneser-Ney) |")
        sections.append(C.models_md_section(m))
    cpu = sum(m["total_cpu_seconds"] for m in ms.values())
    wall = sum(m["total_wall_seconds"] for m in ms.values())
    text = f"""# Bundled models

`models/` is a ready-to-serve model repository (`<repo>/<name>/<version>/` with
`config.json` and `model.safetensors`) holding three small models trained on
data that Debian packages ship under licences that allow redistribution. The
server's default model is `sunspots`. Every number on this page is written by
`tools/train_bundled.py` from a deterministic run (see [Reproduce](#reproduce)).

{chr(10).join(summary)}

Lower is better everywhere; the validation data was not used to choose
anything. The two forecasters are where a linear model is hard to beat (short
univariate series whose structure a handful of lags captures), and they are
kept as small, honest examples of streaming a forecaster; the character model
is what an LSTM is for: its next-character distribution depends on context far
beyond the reach of an n-gram (open quotes and brackets, indentation).

Forecasting further ahead: a session that has streamed a series can be run
ahead on its own predictions without moving it ([API.md](API.md#forecast)).
After streaming the sunspot numbers through 2008 (`lstm-client predict
--model sunspots --session S --create < years.csv`), `lstm-client forecast
--session S --horizon 11` prints the next 11 years, 2009 to 2019: the first
row is the last step's own output (the 2009 forecast), and each next one the
model's output on the row before. Errors compound along the way, and the
bundled models declare no `output_scale`, so they have no sample paths.

{formats_paragraph(ms)}

{chr(10).join(sections)}
## Reproduce

```sh
/usr/bin/python3 tools/train_bundled.py   # all three; any Python with torch (1.13) and numpy
/usr/bin/python3 tools/make_golden.py     # refresh tests/golden/bundled_* for the new weights
/usr/bin/python3 tools/train_bundled.py --docs-only   # rewrite the docs from models/*/metrics.json
```

The last run took {minutes(cpu)} of CPU in all ({minutes(wall)} wall clock), on one
thread (the script sets `torch.set_num_threads(1)`), on a 2-core VM shared
with other builds: {', '.join(f"{n} {minutes(m['total_cpu_seconds'])} ({minutes(m['total_wall_seconds'])} wall)" for n, m in ms.items())},
everything included (selection, training, the seed runs, baselines,
evaluation, pictures).
With the same torch version (Debian's python3-torch 1.13) on the same kind of
CPU the weights, and so the numbers, come out the same.

Each model's README gives its data source, training settings and numbers.
To export your own PyTorch model, see `tools/lstmserve_export.py --help`.
"""
    return text


def section_forecaster(name, m, val, sel):
    s = MODELS[name]
    L = m["labels"]
    first, last = L["first"], L["last"]
    if name == "sunspots":
        intro = (
            f"Yearly mean sunspot number, {first}-{last} (NOAA NGDC, public domain, from "
            f"Debian's python3-statsmodels). One step per year; the output is next year's "
            f"number. The head is a sigmoid scaled by {m['normalization']['output_std'][0]:.1f} "
            f"(twice the training years' maximum) through the output normalization, so the "
            f"forecast lies in (0, {m['normalization']['output_std'][0]:.1f}) and can never be "
            f"negative ([MODEL_FORMAT.md](MODEL_FORMAT.md#non-negative-and-bounded-outputs)); on "
            f"the whole series it ranges {m['min_output']:.2f}-{m['max_output']:.2f}, and its "
            f"forecast for {int(last) + 1} is {m['last_forecast']:.2f}. The validation years "
            f"hold the largest cycles on record (up to {m['series_max']:.1f} in "
            f"{m['series_argmax']}; {m['val_above_training_max']} validation years exceed the "
            f"largest value of the training years, {m['training_max']:.1f}), which a bounded "
            f"network trained on the past extrapolates less readily than a linear model.")
        good = ("Good for: a demo of a streaming forecaster with a guaranteed output range, "
                "and a starting point for a real one (more inputs, an ensemble).")
    else:
        intro = (
            f"Monthly mean sea surface temperature of the Nino 1+2 region, {first} to {last} "
            f"(NOAA ERSST.V3B, public domain, from Debian's python3-statsmodels). One step per "
            f"month; the output is next month's temperature. The baseline knows the calendar "
            f"month; the network sees only the temperatures and has to infer the season from "
            f"them.")
        good = ("Good for: a demo of a GRU/LSTM forecaster and of streaming; "
                "for forecasting ENSO itself, the anomaly AR model is at least as good.")
    return f"""## {name}

{intro}

Validation ({L['val_first']} to {last}, one-step-ahead, teacher-forced):

{chr(10).join(val)}

{verdict(m)} {good}

Selection (training years only: candidates trained on {first} to {L['inner_last']},
scored on {L['inner_first']} to {L['train_last']}):

{chr(10).join(sel)}

"""


# --------------------------------------------------------------------------

def _differences(recorded, fresh, key=""):
    """Where `fresh` differs from `recorded` (floats to 1e-9 relative): [(key, fresh, recorded)]."""
    if isinstance(fresh, dict) and isinstance(recorded, dict):
        out = []
        for k, v in fresh.items():
            out += _differences(recorded.get(k), v, f"{key}.{k}" if key else k)
        return out
    if isinstance(fresh, float) and isinstance(recorded, (int, float)):
        same = abs(fresh - recorded) <= 1e-9 * max(1.0, abs(recorded))
    else:
        same = fresh == recorded
    return [] if same else [(key, fresh, recorded)]


def verify(name, m, log=print):
    """Rerun the exported model on its validation data and compare with the
    numbers metrics.json records (the docs quote them). Forecasters: a few
    seconds; charlm: its validation bits per character, about a minute and a
    half on one thread. Returns the list of differences."""
    if name in MODELS:
        fresh = evaluate_forecaster(name, m)
    else:
        log("charlm: checking the validation bits per character (about 1.5 min)")
        corpus = C.load_corpus()
        model = E.load_model(os.path.join(REPO, "models", "charlm", "1"))
        fresh = dict(val_bpc=C.model_bpc(model, C.encode(corpus["val"])),
                     size_bytes=os.path.getsize(os.path.join(REPO, "models", "charlm", "1",
                                                             "model.safetensors")),
                     train_sha256=corpus["train_sha256"], val_sha256=corpus["val_sha256"])
    diffs = _differences(m, fresh)
    for k, v, old in diffs:
        print(f"WARNING: {name}: {k} is now {v}, metrics.json says {old}", file=sys.stderr)
    return diffs


def documents(names):
    """{path: text} of the docs written from models/*/metrics.json: the
    READMEs of `names` and docs/MODELS.md."""
    out = {}
    for n in names:
        m = load_metrics(n)
        if m is not None:
            out[os.path.join(REPO, "models", n, "README.md")] = readme(n, m)
    out[os.path.join(REPO, "docs", "MODELS.md")] = models_md()
    return out


def check(names):
    """--check: the docs as committed must be what the generator writes from
    metrics.json, and the forecasters must still give the recorded numbers."""
    import difflib
    bad = 0
    for n in names:
        if n in MODELS and verify(n, load_metrics(n)):
            bad += 1
    for path, text in documents(names).items():
        rel = os.path.relpath(path, REPO)
        with open(path) as f:
            old = f.read()
        if old != text:
            bad += 1
            sys.stdout.writelines(difflib.unified_diff(
                old.splitlines(True), text.splitlines(True), rel + " (committed)",
                rel + " (from metrics.json)"))
        else:
            print(f"{rel}: up to date")
    return 1 if bad else 0


USAGE = """usage: train_bundled.py [--docs-only | --check] [MODEL ...]   (models: %s)

  (none)       train MODEL (default: all), then write its metrics.json and the docs
  --docs-only  no training: rewrite models/MODEL/README.md and docs/MODELS.md from
               models/*/metrics.json, after checking that the exported models still
               give the recorded numbers (charlm: about 1.5 min)
  --check      write nothing; exit 1 if the READMEs or docs/MODELS.md differ from
               what --docs-only would write (a diff is printed) or if a
               forecaster no longer gives its recorded numbers (a few seconds;
               charlm's are checked by --docs-only)
"""


def main(argv):
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    if "-h" in argv or "--help" in argv:
        print(USAGE % ", ".join(ALL), end="")
        return 0
    flags = {"--docs-only", "--check"}
    docs_only = "--docs-only" in argv
    names = [a for a in argv if a not in flags] or ALL
    for n in names:
        if n not in ALL:
            sys.exit(f"unknown model {n!r}; expected one of {ALL}\n" + USAGE % ", ".join(ALL))
    if "--check" in argv:
        return check(names)
    t0 = time.time()
    for n in names:
        m = load_metrics(n) if docs_only else None
        if docs_only and n == "charlm" and m is not None and "val_bpc" not in m:
            # Training finished but the evaluation after it did not: redo that.
            m.update(charlm_numbers())
            save_metrics(m)
        elif docs_only:
            if m is None:
                sys.exit(f"{n}: no models/{n}/metrics.json; train it first")
            # The exported model must still give the numbers the docs quote.
            verify(n, m)
        else:
            m = train_forecaster(n) if n in MODELS else train_charlm()
        if n in MODELS:
            print(f"{n}: validation RMSE {m['val']['rmse']:.3f} MAE {m['val']['mae']:.3f}; "
                  f"naive {m['baselines']['naive']['rmse']:.3f}, AR({m['baselines']['ar']['p']}) "
                  f"{m['baselines']['ar']['rmse']:.3f} {m['baselines']['ar']['mae']:.3f}; "
                  f"outputs {m['min_output']:.2f}..{m['max_output']:.2f}")
            if name_is_nonneg(n) and m["min_output"] < 0:
                sys.exit(f"{n}: a negative forecast ({m['min_output']})")
        else:
            print(f"charlm: validation {m['val_bpc']:.3f} bpc; n-grams {m['ngram_bpc']}")
    for path, text in documents(names).items():
        with open(path, "w") as f:
            f.write(text)
    print(f"done in {time.time() - t0:.1f} s")
    return 0


def name_is_nonneg(name):
    return MODELS[name]["head"] == "sigmoid"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
