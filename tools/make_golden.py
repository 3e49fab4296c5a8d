#!/usr/bin/env python3
"""Write the golden test data in tests/golden/ with PyTorch as the reference.

Run from the repository root, with a Python that has torch (1.13) and numpy:

    /usr/bin/python3 tools/make_golden.py          # rewrites tests/golden/*/
    /usr/bin/python3 tools/make_golden.py CASE...  # rewrites only those cases
    /usr/bin/python3 tools/check_golden.py         # independent numpy re-check

The output is deterministic: every case seeds its own generators, and the
script deletes and rewrites each case directory it owns. The three
bundled_* cases read models/sunspots/1, models/elnino/1 and models/charlm/1
(with the first 120 rows of each model's data.csv), so rerun this script
after tools/train_bundled.py retrains them.

Layout of each case (see tests/golden/README.md):

    tests/golden/<case>/model/1/config.json      exported with export_model
    tests/golden/<case>/model/1/model.safetensors
    tests/golden/<case>/input.csv                T rows x input_size
    tests/golden/<case>/initial_state.csv        1 row, flat state layout
    tests/golden/<case>/expected_output.csv      T rows x output_size
    tests/golden/<case>/expected_state.csv       1 row, final state, flat layout
    (bundled_* cases: model_dir.txt instead of model/)

It also writes tests/golden/README.md, including the table of cases.

How the expected values are made: the float32 module's weights are first
rounded to the stored dtype (so F16/BF16 cases use exactly the stored
weights), the case is exported, the exported directory is loaded back, and
the reference is that loaded module converted with .double() and run in
float64 on the float32-exact inputs and initial state. A float32 run must
agree with it within 1e-5 (relative for values above 1 in magnitude), which
shows the case is well-conditioned: an engine computing in float32 can match
it with a tolerance of about 1e-5.
"""

import json
import os
import shutil
import sys

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lstmserve_export as E  # noqa: E402
import onnx_reference as R  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOLDEN = os.path.join(REPO, "tests", "golden")
TOL = 1e-5


def case(name, cell, input_size, hidden, layers, T, seed, head=None, activation="identity",
         proj=0, bias=True, state="zero", norm=None, dtype="F32", names=False):
    """One synthetic case. head = output size or None; norm = None | "both" | "input" | "output"."""
    return dict(name=name, cell=cell, input_size=input_size, hidden=hidden, layers=layers, T=T,
                seed=seed, head=head, activation=activation, proj=proj, bias=bias, state=state,
                norm=norm, dtype=dtype, names=names)


# Letters refer to the list in the task that defined these cases.
CASES = [
    # a
    case("lstm_l1_in1_h8_nohead", "lstm", 1, 8, 1, T=37, seed=101),
    # b
    case("lstm_l2_in4_h64_head3_identity_randstate", "lstm", 4, 64, 2, T=45, seed=102,
         head=3, state="random"),
    # c
    case("lstm_l3_in16_h32_head5_softmax", "lstm", 16, 32, 3, T=33, seed=103,
         head=5, activation="softmax"),
    # d
    case("lstm_l2_in8_h64_proj16_head2_sigmoid_randstate", "lstm", 8, 64, 2, T=41, seed=104,
         head=2, activation="sigmoid", proj=16, state="random"),
    # e
    case("lstm_l1_in64_h256_nobias_head4_tanh", "lstm", 64, 256, 1, T=24, seed=105,
         head=4, activation="tanh", bias=False),
    # f
    case("lstm_l2_in5_h24_proj8_nohead_randstate", "lstm", 5, 24, 2, T=52, seed=106,
         proj=8, state="random"),
    # g
    case("lstm_l1_in3_h16_head2_identity_norm", "lstm", 3, 16, 1, T=60, seed=107,
         head=2, norm="both", names=True),
    # h
    case("gru_l1_in1_h8_nohead", "gru", 1, 8, 1, T=29, seed=108),
    # i
    case("gru_l2_in64_h128_head6_softmax_randstate", "gru", 64, 128, 2, T=26, seed=109,
         head=6, activation="softmax", state="random"),
    # j: stored as F16 only to keep tests/golden small (F32 would be 3.9 MB alone).
    case("gru_l3_in3_h256_nobias_head1_identity_f16", "gru", 3, 256, 3, T=22, seed=110,
         head=1, bias=False, dtype="F16"),
    # k
    case("gru_l2_in7_h40_head3_tanh_innorm", "gru", 7, 40, 2, T=48, seed=111,
         head=3, activation="tanh", norm="input"),
    # l
    case("lstm_l2_in6_h32_head2_identity_f16", "lstm", 6, 32, 2, T=39, seed=112,
         head=2, dtype="F16"),
    # m
    case("gru_l1_in4_h48_head3_sigmoid_bf16_randstate", "gru", 4, 48, 1, T=57, seed=113,
         head=3, activation="sigmoid", dtype="BF16", state="random"),
    # extra: output normalization applied after a non-linear activation, and
    # an output pair without an input pair
    case("gru_l1_in2_h12_head2_softmax_outnorm", "gru", 2, 12, 1, T=31, seed=114,
         head=2, activation="softmax", norm="output"),
]


def variant(name, cell, input_size, hidden, layers, T, seed, head=None, activation="identity",
            bias=True, state="zero", **fields):
    """A case of a cell variant PyTorch's LSTM/GRU lack (or the plain RNN):
    `fields` are the config keys (nonlinearity, gru_linear_before_reset,
    lstm_peepholes, lstm_input_forget, clip, ...). Expected values come from
    tools/onnx_reference.py, the ONNX operators in numpy; RNN tanh/relu cases
    are also checked against torch.nn.RNN."""
    return dict(name=name, cell=cell, input_size=input_size, hidden=hidden, layers=layers, T=T,
                seed=seed, head=head, activation=activation, bias=bias, state=state,
                fields=fields)


VARIANTS = [
    variant("rnn_l1_in3_h16_tanh_head2_identity", "rnn", 3, 16, 1, T=40, seed=201, head=2),
    variant("rnn_l2_in4_h24_relu_nohead_randstate", "rnn", 4, 24, 2, T=36, seed=202,
            state="random", nonlinearity="relu"),
    variant("rnn_l3_in2_h12_tanh_nobias_head3_softmax", "rnn", 2, 12, 3, T=30, seed=203, head=3,
            activation="softmax", bias=False),
    variant("rnn_l1_in3_h10_sigmoid_clip", "rnn", 3, 10, 1, T=25, seed=204,
            nonlinearity="sigmoid", clip=0.7),
    variant("rnn_l1_in3_h10_affine", "rnn", 3, 10, 1, T=25, seed=205,
            nonlinearity="affine", nonlinearity_alpha=0.45, nonlinearity_beta=-0.1),
    variant("rnn_l1_in3_h10_leaky_relu", "rnn", 3, 10, 1, T=25, seed=206,
            nonlinearity="leaky_relu", nonlinearity_alpha=0.2),
    variant("rnn_l1_in3_h10_thresholded_relu", "rnn", 3, 10, 1, T=25, seed=207,
            nonlinearity="thresholded_relu", nonlinearity_alpha=0.3),
    variant("rnn_l1_in3_h10_scaled_tanh_randstate", "rnn", 3, 10, 1, T=25, seed=208,
            state="random", nonlinearity="scaled_tanh", nonlinearity_alpha=1.7,
            nonlinearity_beta=0.6),
    variant("rnn_l1_in3_h10_hard_sigmoid", "rnn", 3, 10, 1, T=25, seed=209,
            nonlinearity="hard_sigmoid", nonlinearity_alpha=0.3, nonlinearity_beta=0.4),
    variant("rnn_l1_in3_h10_elu", "rnn", 3, 10, 1, T=25, seed=210,
            nonlinearity="elu", nonlinearity_alpha=0.8),
    variant("rnn_l1_in3_h10_softsign", "rnn", 3, 10, 1, T=25, seed=211, nonlinearity="softsign"),
    variant("rnn_l1_in3_h10_softplus_clip", "rnn", 3, 10, 1, T=25, seed=212,
            nonlinearity="softplus", clip=2.0),
    variant("gru_l2_in5_h20_resetfirst_head3_softmax_randstate", "gru", 5, 20, 2, T=34, seed=213,
            head=3, activation="softmax", state="random", gru_linear_before_reset=False),
    variant("gru_l1_in3_h12_resetfirst_nobias_clip", "gru", 3, 12, 1, T=30, seed=214,
            bias=False, gru_linear_before_reset=False, clip=0.6),
    variant("gru_l1_in4_h16_clip_head2_tanh", "gru", 4, 16, 1, T=30, seed=215, head=2,
            activation="tanh", clip=0.5),
    variant("lstm_l2_in4_h20_peephole_head2_identity_randstate", "lstm", 4, 20, 2, T=38,
            seed=216, head=2, state="random", lstm_peepholes=True),
    variant("lstm_l1_in3_h16_inputforget", "lstm", 3, 16, 1, T=32, seed=217,
            lstm_input_forget=True),
    variant("lstm_l2_in3_h12_peephole_inputforget_clip_randstate", "lstm", 3, 12, 2, T=30,
            seed=218, state="random", lstm_peepholes=True, lstm_input_forget=True, clip=0.9),
]

BUNDLED = [("bundled_sunspots", "models/sunspots/1", "models/sunspots/data.csv"),
           ("bundled_elnino", "models/elnino/1", "models/elnino/data.csv"),
           ("bundled_charlm", "models/charlm/1", "models/charlm/data.csv")]
BUNDLED_T = 120


def f32(a):
    """Round to float32 and hand back float64: values every reader sees identically."""
    return np.asarray(a, dtype=np.float32).astype(np.float64)


def init_weights(rnn, head, rng):
    """Draw weights that make the network do visible work.

    PyTorch's default init (uniform +-1/sqrt(hidden)) leaves pre-activations
    of ~0.2 for unit inputs: outputs hardly move from step to step and the
    activations are only tested near 0. These gains give pre-activations of
    roughly unit scale, so gates swing through the non-linear range of
    sigmoid/tanh, deep layers and the recurrence matter, and a wrong gate,
    layer or state element changes the outputs far beyond the tolerance.
    """
    gain_in, gain_rec, bias_std, gain_head = 1.5, 1.2, 0.5, 1.5
    with torch.no_grad():
        for name, p in rnn.named_parameters():
            if name.startswith("weight_ih"):
                std = gain_in / np.sqrt(p.shape[1])
            elif name.startswith("weight_hh"):
                std = gain_rec / np.sqrt(p.shape[1])
            elif name.startswith("weight_hr"):  # projection: hidden -> proj
                std = 1.0 / np.sqrt(p.shape[1])
            else:
                std = bias_std
            p.copy_(torch.from_numpy(rng.normal(0.0, std, tuple(p.shape)).astype(np.float32)))
        if head is not None:
            head.weight.copy_(torch.from_numpy(
                rng.normal(0.0, gain_head / np.sqrt(head.in_features), tuple(head.weight.shape)).astype(np.float32)))
            head.bias.copy_(torch.from_numpy(rng.normal(0.0, 0.3, tuple(head.bias.shape)).astype(np.float32)))


def build(c):
    """Create the float32 ServedModel of a synthetic case, weights rounded to c['dtype']."""
    torch.manual_seed(c["seed"])  # constructors draw default weights; init_weights replaces them
    if c["cell"] == "lstm":
        rnn = nn.LSTM(c["input_size"], c["hidden"], c["layers"], bias=c["bias"], proj_size=c["proj"])
    else:
        rnn = nn.GRU(c["input_size"], c["hidden"], c["layers"], bias=c["bias"])
    head = nn.Linear(E.rnn_output_size(rnn), c["head"]) if c["head"] else None
    rng = np.random.default_rng(c["seed"])
    init_weights(rnn, head, rng)
    if c["dtype"] == "F16":
        # Plant a few values that are subnormal in F16 (|x| < 6.1e-5), plus an
        # exact zero, so the C++ F16 decoder's subnormal path is exercised.
        with torch.no_grad():
            w = rnn.weight_hh_l0.view(-1)
            w[:5] = torch.tensor([3.0e-5, -1.2e-6, 6.0e-8, -4.5e-5, 0.0])
    norm = None
    if c["norm"]:
        out_size = c["head"] or E.rnn_output_size(rnn)
        norm = {"input_mean": f32(rng.uniform(-5, 5, c["input_size"])),
                "input_std": f32(rng.uniform(0.5, 3, c["input_size"]))}
        if c["norm"] in ("both", "output"):
            norm["output_mean"] = f32(rng.uniform(-10, 10, out_size))
            norm["output_std"] = f32(rng.uniform(2, 5, out_size))
        if c["norm"] == "output":
            del norm["input_mean"], norm["input_std"]
    with torch.no_grad():
        for p in list(rnn.parameters()) + (list(head.parameters()) if head is not None else []):
            p.copy_(torch.from_numpy(E.round_to_dtype(p.numpy(), c["dtype"])))
    return E.ServedModel(rnn, head, c["activation"], norm).eval(), rng


def inputs_and_state(c, model, rng):
    x = rng.standard_normal((c["T"], c["input_size"]))
    n = model.normalization or {}
    if "input_mean" in n:
        # Raw inputs around the normalization's mean/std, so the network sees ~N(0, 1).
        x = np.asarray(n["input_mean"]) + np.asarray(n["input_std"]) * x
    x = f32(x)
    S = E.state_size(model.rnn)
    if c["state"] == "zero":
        s0 = np.zeros(S)
    else:
        cell, layers, hidden, proj = E._dims(model.rnn)
        h = rng.uniform(-0.9, 0.9, (layers, proj or hidden))  # h of a tanh-bounded cell
        cc = rng.normal(0, 1.0, (layers, hidden)) if cell == "lstm" else None
        s0 = E.flatten_state(model.rnn, h, cc)
    return x, f32(s0)


def run(model, x, s0, dtype):
    """Run a ServedModel in `dtype` from flat state s0 -> (outputs, flat final state), float64."""
    m = model.double() if dtype == torch.float64 else model.float()
    h0, c0 = E.unflatten_state(m.rnn, s0)
    with torch.no_grad():
        y, hn, cn = m(torch.tensor(x, dtype=dtype), torch.tensor(h0, dtype=dtype),
                      None if c0 is None else torch.tensor(c0, dtype=dtype))
    s = E.flatten_state(m.rnn, hn, cn)
    return y.numpy().astype(np.float64), s


def close(a, b, floor=1.0):
    """max over entries of |a - b| / max(floor, |b|) (with the default floor
    1: absolute near 0, relative above 1)."""
    return float(np.max(np.abs(a - b) / np.maximum(floor, np.abs(b)))) if np.size(a) else 0.0


def reference(name, model_dir, x, s0):
    """Float64 reference from the exported directory, checked against a float32 run."""
    ref = E.load_model(model_dir)
    y64, s64 = run(ref, x, s0, torch.float64)
    y32, s32 = run(ref, x, s0, torch.float32)
    dev = max(close(y32, y64), close(s32, s64))
    if not dev <= TOL:
        raise AssertionError(f"{name}: float32 run deviates {dev:.3g} from float64; ill-conditioned case")
    absdev = float(max(np.max(np.abs(y32 - y64)), np.max(np.abs(s32 - s64))))
    return y64, s64, (dev, absdev)


def write_case_files(d, x, s0, y, s):
    E.write_csv(os.path.join(d, "input.csv"), x)
    E.write_csv(os.path.join(d, "initial_state.csv"), s0)
    E.write_csv(os.path.join(d, "expected_output.csv"), y)
    E.write_csv(os.path.join(d, "expected_state.csv"), s)


def make_synthetic(c):
    d = os.path.join(GOLDEN, c["name"])
    shutil.rmtree(d, ignore_errors=True)
    model, rng = build(c)
    x, s0 = inputs_and_state(c, model, rng)
    out_size = c["head"] or E.rnn_output_size(model.rnn)
    names = {}
    if c["names"]:
        names = dict(input_names=[f"in{i}" for i in range(c["input_size"])],
                     output_names=[f"out{i}" for i in range(out_size)])
    mdir = os.path.join(d, "model", "1")
    E.export_model(mdir, model.rnn, model.head, c["activation"], model.normalization, c["dtype"],
                   description=f"lstmserve golden test case {c['name']} (tools/make_golden.py)",
                   **names)
    # The exported weights must be exactly the (already rounded) in-memory ones.
    loaded = E.load_model(mdir)
    for (k, a), (k2, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(a, b), f"{c['name']}: {k} changed on export"
    y, s, dev = reference(c["name"], mdir, x, s0)
    write_case_files(d, x, s0, y, s)
    return d, dev, c["dtype"]


def make_bundled(name, model_dir, data_csv):
    d = os.path.join(GOLDEN, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    with open(os.path.join(d, "model_dir.txt"), "w") as f:
        f.write(model_dir)  # no trailing newline: the file is exactly the path
    x = f32(E.read_csv(os.path.join(REPO, data_csv))[:BUNDLED_T])
    with open(os.path.join(REPO, model_dir, "config.json")) as f:
        cfg = json.load(f)
    s0 = np.zeros(E.state_size(cfg))
    y, s, dev = reference(name, os.path.join(REPO, model_dir), x, s0)
    write_case_files(d, x, s0, y, s)
    _, dtypes, _ = E.read_safetensors(os.path.join(REPO, model_dir, "model.safetensors"), True)
    return d, dev, sorted(set(dtypes.values()))[0]


def variant_tensors(c, rng):
    """Weights of a variant case in lstmserve's layout, float32-exact."""
    G = {"lstm": 4, "gru": 3, "rnn": 1}[c["cell"]]
    H = c["hidden"]
    # As init_weights, but a recurrent gain below 1 for the RNN: relu and
    # the unbounded ONNX activations would otherwise grow without limit.
    gain_rec = 0.9 if c["cell"] == "rnn" else 1.2
    t = {}
    for k in range(c["layers"]):
        inp = c["input_size"] if k == 0 else H
        t[f"rnn.weight_ih_l{k}"] = rng.normal(0, 1.5 / np.sqrt(inp), (G * H, inp))
        t[f"rnn.weight_hh_l{k}"] = rng.normal(0, gain_rec / np.sqrt(H), (G * H, H))
        if c["bias"]:
            t[f"rnn.bias_ih_l{k}"] = rng.normal(0, 0.5, G * H)
            t[f"rnn.bias_hh_l{k}"] = rng.normal(0, 0.5, G * H)
        if c["fields"].get("lstm_peepholes"):
            t[f"rnn.weight_peephole_l{k}"] = rng.normal(0, 0.5, 3 * H)
    if c["head"]:
        t["head.weight"] = rng.normal(0, 1.5 / np.sqrt(H), (c["head"], H))
        t["head.bias"] = rng.normal(0, 0.3, c["head"])
    return {k: f32(v) for k, v in t.items()}


def torch_rnn_reference(cfg, tensors, x, s0):
    """torch.nn.RNN (tanh/relu) in float64 on the same weights and state."""
    H, L = cfg["hidden_size"], cfg["num_layers"]
    rnn = nn.RNN(cfg["input_size"], H, L, nonlinearity=cfg.get("nonlinearity", "tanh"),
                 bias=cfg["bias"]).double()
    with torch.no_grad():
        for name, p in rnn.named_parameters():
            p.copy_(torch.from_numpy(tensors["rnn." + name]))
        y, hn = rnn(torch.from_numpy(x)[:, None], torch.from_numpy(s0.reshape(L, 1, H)))
    y = y[:, 0].numpy()
    if "head" in cfg:
        y = y @ tensors["head.weight"].T + tensors["head.bias"]
        if cfg["head"]["activation"] == "softmax":
            y = torch.softmax(torch.from_numpy(y), dim=1).numpy()
        elif cfg["head"]["activation"] != "identity":
            raise AssertionError("extend torch_rnn_reference for " + cfg["head"]["activation"])
    return y, hn.numpy().reshape(-1)


def make_variant(c):
    d = os.path.join(GOLDEN, c["name"])
    shutil.rmtree(d, ignore_errors=True)
    rng = np.random.default_rng(c["seed"])
    tensors = variant_tensors(c, rng)
    cfg = {"cell": c["cell"], "input_size": c["input_size"], "hidden_size": c["hidden"],
           "num_layers": c["layers"], "bias": c["bias"], **c["fields"]}
    if c["head"]:
        cfg["head"] = {"output_size": c["head"], "activation": c["activation"]}
    cfg["description"] = f"lstmserve golden test case {c['name']} (tools/make_golden.py)"
    mdir = os.path.join(d, "model", "1")
    os.makedirs(mdir)
    with open(os.path.join(mdir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    E.write_safetensors(os.path.join(mdir, "model.safetensors"), tensors)
    x = f32(rng.normal(0, 1, (c["T"], c["input_size"])))
    n_state = c["layers"] * c["hidden"] * (2 if c["cell"] == "lstm" else 1)
    s0 = f32(rng.normal(0, 0.5, n_state)) if c["state"] == "random" else np.zeros(n_state)
    y, s = R.run_config(cfg, tensors, x, s0)
    # The same in float32: a well-conditioned case agrees within the tolerance.
    R.FLOAT = np.float32
    try:
        y32, s32 = R.run_config(cfg, {k: v.astype(np.float32) for k, v in tensors.items()},
                                x.astype(np.float32), s0.astype(np.float32))
    finally:
        R.FLOAT = np.float64
    dev = max(close(y32, y), close(s32, s))
    if not dev <= TOL:
        raise AssertionError(f"{c['name']}: float32 deviates {dev:.3g}; ill-conditioned case")
    absdev = float(max(np.max(np.abs(y32 - y)), np.max(np.abs(s32 - s))))
    if c["cell"] == "rnn" and cfg.get("nonlinearity", "tanh") in ("tanh", "relu") \
            and "clip" not in cfg:
        yt, st = torch_rnn_reference(cfg, tensors, x, s0)
        gap = max(close(yt, y), close(st, s))
        assert gap < 1e-9, f"{c['name']}: torch.nn.RNN differs from the ONNX reference by {gap}"
    write_case_files(d, x, s0, y, s)
    return d, (dev, absdev), "F32"


def check_reference_against_torch():
    """The ONNX reference and its layout conversion agree with torch's LSTM
    and GRU on their common ground (no variant fields)."""
    for cell, mod in (("lstm", nn.LSTM), ("gru", nn.GRU)):
        torch.manual_seed(7)
        m = mod(3, 6, 2).double()
        x = np.random.default_rng(7).normal(0, 1, (9, 3))
        with torch.no_grad():
            yt, _ = m(torch.from_numpy(x)[:, None])
        tensors = {"rnn." + k: v.detach().numpy() for k, v in m.named_parameters()}
        cfg = {"cell": cell, "input_size": 3, "hidden_size": 6, "num_layers": 2}
        y, _ = R.run_config(cfg, tensors, x, np.zeros(2 * 6 * (2 if cell == "lstm" else 1)))
        gap = close(yt[:, 0].numpy(), y)
        assert gap < 1e-12, f"ONNX reference differs from torch {cell} by {gap}"


def dir_size(d):
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(d) for f in fs)


def describe(cfg):
    """Short human description of a config for the README table."""
    parts = [f"{cfg['cell'].upper()} {cfg['num_layers']}L in{cfg['input_size']} h{cfg['hidden_size']}"]
    if cfg.get("proj_size"):
        parts.append(f"proj{cfg['proj_size']}")
    if cfg["cell"] == "rnn":
        parts.append(cfg.get("nonlinearity", "tanh"))
    if cfg.get("gru_linear_before_reset") is False:
        parts.append("linear_before_reset=false")
    for key in ("lstm_peepholes", "lstm_input_forget"):
        if cfg.get(key):
            parts.append(key[5:])
    if "clip" in cfg:
        parts.append(f"clip {cfg['clip']}")
    if not cfg.get("bias", True):
        parts.append("no bias")
    if "head" in cfg:
        parts.append(f"head {cfg['head']['output_size']} {cfg['head']['activation']}")
    else:
        parts.append("no head")
    n = cfg.get("normalization", {})
    sides = [side for side in ("input", "output") if f"{side}_mean" in n]
    if sides:
        parts.append("norm " + "+".join(sides))
    return ", ".join(parts)


README_HEAD = """# Golden test data

Reference inputs and outputs for lstmserve's engine, computed with PyTorch
(the definition of the semantics) and re-checked by an independent numpy
implementation. Generated by `tools/make_golden.py`; do not edit by hand.

## Layout

Each directory is one case:

| file | content |
|---|---|
| `model/1/config.json`, `model/1/model.safetensors` | the model, a normal model version directory (written by `tools/lstmserve_export.py`) |
| `model_dir.txt` | instead of `model/` in the `bundled_*` cases: the model version directory relative to the repository root, one line, no trailing newline (e.g. `models/sunspots/1`) |
| `input.csv` | T rows of input_size raw inputs (before normalization), one time step per line |
| `initial_state.csv` | one line: the session state before the first step, state_size floats |
| `expected_output.csv` | T rows of output_size values: the output after every step |
| `expected_state.csv` | one line: the state after the last step |
| `expected_explain.csv` | some cases (tools/make_explain_golden.py): a header naming each column `step,l<layer>.<field>.<unit>`, then per step the explain record (model/model.h: per layer the gate activations i, f, g, o or r, z, n, then c for LSTM, then h), recomputed with torch in float64 from the case's weights and checked against torch.nn's modules and the expected outputs |

All CSV files: comma-separated, no header, floats written with `%.9g`. Inputs
and initial states are float32 numbers (read them as float). State layout:
for each layer l in order, h_l (proj_size floats if proj_size > 0, else
hidden_size), then, for LSTM, c_l (hidden_size floats); zeros is PyTorch's
default initial state.

The expected values are PyTorch's float64 results on the stored weights
(F16/BF16 cases: the rounded weights exactly as stored). A float32 PyTorch run
deviates from them by at most the "f32 dev" below, measured as
max |a - b| / max(1, |b|) over outputs and final state ("abs" = max |a - b|).
Every case passes at 1e-5 in that measure; a float32 engine should use a
tolerance of that kind (relative for large values) rather than a pure
absolute one: `bundled_sunspots` outputs sunspot numbers up to ~150 and its
float32 error is ~3e-5 in absolute terms. An engine with approximate
vectorized sigmoid/tanh may need a somewhat looser tolerance (e.g. 1e-4).

The cell variants PyTorch lacks (the `rnn_*` cases other than tanh/relu,
and every case with `resetfirst`, `clip`, `peephole` or `inputforget` in its
name) take their expected values from `tools/onnx_reference.py`, a numpy
implementation of the ONNX LSTM/GRU/RNN operators run in float64 on the
weights converted to ONNX's layout; the RNN tanh/relu cases are also checked
against `torch.nn.RNN`, and the reference itself against `torch.nn.LSTM` /
`torch.nn.GRU`, when the data is generated.

Synthetic cases use weights drawn with gains chosen so that gates swing
through the non-linear range and each layer matters (not PyTorch's default
init), random normal inputs, and a zero or random initial state (`randstate`
in the name). The `f16` cases also hold a few F16-subnormal weights.

## Regenerate

```sh
/usr/bin/python3 tools/make_golden.py    # from the repo root; needs torch (1.13) + numpy
/usr/bin/python3 tools/check_golden.py   # numpy-only re-check of every case (make_golden runs it too)
/usr/bin/python3 tools/make_explain_golden.py   # the expected_explain.csv files (make_golden runs it too)
```

The output is deterministic (fixed seeds). The `bundled_*` cases depend on the
weights in `models/`: regenerate after `tools/train_bundled.py` retrains them.

## Cases

"""


def old_readme_rows():
    """{case name: its line in the current README's table}."""
    path = os.path.join(GOLDEN, "README.md")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return {line.split("`")[1]: line.rstrip("\n") for line in f if line.startswith("| `")}


def main(argv):
    """With case names as arguments, regenerates only those (the README keeps
    the other cases' rows): a float32 torch run's rounding depends on the
    BLAS build, so a machine other than the one that made a case may fail
    its conditioning check without anything having changed."""
    torch.set_num_threads(1)
    os.makedirs(GOLDEN, exist_ok=True)
    wanted = set(argv)
    known = {c["name"] for c in CASES + VARIANTS} | {b[0] for b in BUNDLED}
    if wanted - known:
        raise SystemExit(f"unknown cases: {sorted(wanted - known)}")
    todo = (lambda name: not wanted or name in wanted)
    kept = old_readme_rows()
    rows = []
    order = []
    for c in CASES:
        order.append(c["name"])
        if todo(c["name"]):
            d, dev, dt = make_synthetic(c)
            rows.append((c["name"], c["T"], dt, dev, d, c["state"]))
    check_reference_against_torch()
    for c in VARIANTS:
        order.append(c["name"])
        if todo(c["name"]):
            d, dev, dt = make_variant(c)
            rows.append((c["name"], c["T"], dt, dev, d, c["state"]))
    for name, mdir, data in BUNDLED:
        order.append(name)
        if todo(name):
            d, dev, dt = make_bundled(name, mdir, data)
            rows.append((name, BUNDLED_T, dt, dev, d, "zero"))
    # The explain records of the cases that have them (the directories were
    # just rewritten, which deleted them).
    import make_explain_golden
    for name in make_explain_golden.CASES:
        if todo(name):
            make_explain_golden.make(name)
    lines = ["| case | model | dtype | T | initial state | f32 dev (abs) | size |",
             "|---|---|---|---|---|---|---|"]
    table = {}
    print(f"{'case':50s} {'T':>4s} {'dtype':5s} {'f32 dev':>9s} {'abs':>9s} {'bytes':>9s}")
    for name, T, dt, (dev, absdev), d, state in rows:
        size = dir_size(d)
        print(f"{name:50s} {T:4d} {dt:5s} {dev:9.2e} {absdev:9.2e} {size:9d}")
        mp = os.path.join(d, "model_dir.txt")
        if os.path.exists(mp):
            with open(mp) as f:
                mdir = os.path.join(REPO, f.read())
        else:
            mdir = os.path.join(d, "model", "1")
        with open(os.path.join(mdir, "config.json")) as f:
            cfg = json.load(f)
        table[name] = (f"| `{name}` | {describe(cfg)} | {dt} | {T} | {state} | "
                       f"{dev:.1e} ({absdev:.1e}) | {size / 1024:.0f} KiB |")
    lines += [table.get(name) or kept[name] for name in order if name in table or name in kept]
    with open(os.path.join(GOLDEN, "README.md"), "w") as f:
        f.write(README_HEAD + "\n".join(lines) + "\n")
    print(f"total tests/golden: {dir_size(GOLDEN)} bytes")

    # Re-check everything from disk with the independent numpy implementation.
    import check_golden
    return check_golden.main([])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
