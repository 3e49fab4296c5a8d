#!/usr/bin/python3
"""Write tests/golden/<case>/expected_explain.csv: every step's gate
activations, cell state and hidden state, computed with PyTorch in float64
from the case's own weights, for the engine's explain records to match.

    /usr/bin/python3 tools/make_explain_golden.py           # the cases below
    /usr/bin/python3 tools/make_explain_golden.py CASE...   # only those

Needs Debian's python3-torch and numpy. Reads each case's model, input.csv
and initial_state.csv (written by tools/make_golden.py) and recomputes the
cell step by step with torch operations on the float64 weights:

    LSTM  i, f, g, o (gate activations), c, h  (h projected with proj_size)
    GRU   r, z, n, h
    RNN   h

per layer, in the engine's explain layout (model/model.h). The gate
equations are PyTorch's (torch.nn.LSTM / GRU / RNN) and, for the variants
PyTorch lacks (peepholes, input_forget, clip, GRU linear_before_reset=0,
the ONNX RNN activations), the ONNX operators'. The recomputation is
checked before anything is written: against torch.nn's own modules run in
float64 on the same weights (PyTorch cells: every step's last-layer h and
the final state), and against the case's expected_output.csv and
expected_state.csv (every case). The CSV has a header naming each column
"step,l<layer>.<field>.<unit>", as `lstm-model run --explain` writes it.
"""

import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lstmserve_export as E  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOLDEN = os.path.join(REPO, "tests", "golden")

# Small enough to keep in the repository, and together every cell and
# variant: LSTM (plain, normalization, projection, peepholes, input_forget,
# clip), GRU (plain, output normalization, linear_before_reset=0, clip,
# BF16-stored weights), RNN (tanh, relu, an ONNX activation with clip).
CASES = [
    "lstm_l1_in1_h8_nohead",
    "lstm_l1_in3_h16_head2_identity_norm",
    "lstm_l2_in5_h24_proj8_nohead_randstate",
    "lstm_l2_in4_h20_peephole_head2_identity_randstate",
    "lstm_l1_in3_h16_inputforget",
    "lstm_l2_in3_h12_peephole_inputforget_clip_randstate",
    "gru_l1_in1_h8_nohead",
    "gru_l1_in2_h12_head2_softmax_outnorm",
    "gru_l2_in5_h20_resetfirst_head3_softmax_randstate",
    "gru_l1_in3_h12_resetfirst_nobias_clip",
    "gru_l1_in4_h16_clip_head2_tanh",
    "gru_l1_in4_h48_head3_sigmoid_bf16_randstate",
    "rnn_l1_in3_h16_tanh_head2_identity",
    "rnn_l2_in4_h24_relu_nohead_randstate",
    "rnn_l1_in3_h10_sigmoid_clip",
]

D = torch.float64


def nonlinearity(cfg):
    """The RNN cell's f (docs/MODEL_FORMAT.md)."""
    nl = cfg.get("nonlinearity", "tanh")
    a = cfg.get("nonlinearity_alpha")
    b = cfg.get("nonlinearity_beta")
    return {
        "tanh": torch.tanh,
        "relu": torch.relu,
        "sigmoid": torch.sigmoid,
        "affine": lambda x: a * x + b,
        "leaky_relu": lambda x: torch.where(x < 0, a * x, x),
        "thresholded_relu": lambda x: torch.where(x > a, x, torch.zeros_like(x)),
        "scaled_tanh": lambda x: a * torch.tanh(b * x),
        "hard_sigmoid": lambda x: torch.clamp(a * x + b, 0, 1),
        "elu": lambda x: torch.where(x < 0, a * (torch.exp(x) - 1), x),
        "softsign": lambda x: x / (1 + torch.abs(x)),
        "softplus": lambda x: torch.log1p(torch.exp(x)),
    }[nl]


def explain(cfg, t, x_rows, s0):
    """Per step, the explain record (float64 numpy), plus the outputs of
    the last layer and the final flat state, for the checks."""
    L, H = cfg["num_layers"], cfg["hidden_size"]
    P = cfg.get("proj_size", 0) or H
    cell = cfg["cell"]
    clip = cfg.get("clip")

    def W(name):
        return torch.tensor(t[name], dtype=D)

    def c(v):
        return torch.clamp(v, -clip, clip) if clip else v

    norm = cfg.get("normalization") or {}
    x = torch.tensor(x_rows, dtype=D)
    if "input_mean" in norm:
        x = (x - torch.tensor(norm["input_mean"], dtype=D)) / torch.tensor(norm["input_std"], dtype=D)
    # The flat state: per layer h (P), then c (H) for LSTM.
    s0 = torch.tensor(s0, dtype=D)
    per = P + (H if cell == "lstm" else 0)
    h = [s0[l * per:l * per + P].clone() for l in range(L)]
    cs = [s0[l * per + P:l * per + P + H].clone() for l in range(L)] if cell == "lstm" else None
    records, last_h = [], []
    for step in range(x.shape[0]):
        inp = x[step]
        rec = []
        for l in range(L):
            s = f"_l{l}"
            w_ih, w_hh = W("rnn.weight_ih" + s), W("rnn.weight_hh" + s)
            G = w_ih.shape[0]
            b_ih = W("rnn.bias_ih" + s) if cfg.get("bias", True) else torch.zeros(G, dtype=D)
            b_hh = W("rnn.bias_hh" + s) if cfg.get("bias", True) else torch.zeros(G, dtype=D)
            if cell == "lstm":
                pre = w_ih @ inp + b_ih + w_hh @ h[l] + b_hh
                pi, pf, pg, po = pre.split(H)
                if cfg.get("lstm_peepholes"):
                    p = W("rnn.weight_peephole" + s)
                    pi = pi + p[:H] * cs[l]
                    pf = pf + p[H:2 * H] * cs[l]
                i = torch.sigmoid(c(pi))
                f = 1 - i if cfg.get("lstm_input_forget") else torch.sigmoid(c(pf))
                g = torch.tanh(c(pg))
                cn = f * cs[l] + i * g
                if cfg.get("lstm_peepholes"):
                    po = po + W("rnn.weight_peephole" + s)[2 * H:] * cn
                o = torch.sigmoid(c(po))
                hn = o * torch.tanh(cn)
                if cfg.get("proj_size", 0):
                    hn = W("rnn.weight_hr" + s) @ hn
                rec += [i, f, g, o, cn, hn]
                cs[l] = cn
            elif cell == "gru":
                gi = w_ih @ inp + b_ih
                r = torch.sigmoid(c(gi[:H] + w_hh[:H] @ h[l] + b_hh[:H]))
                z = torch.sigmoid(c(gi[H:2 * H] + w_hh[H:2 * H] @ h[l] + b_hh[H:2 * H]))
                if cfg.get("gru_linear_before_reset", True):
                    n = torch.tanh(c(gi[2 * H:] + r * (w_hh[2 * H:] @ h[l] + b_hh[2 * H:])))
                else:
                    n = torch.tanh(c(gi[2 * H:] + w_hh[2 * H:] @ (r * h[l]) + b_hh[2 * H:]))
                hn = (1 - z) * n + z * h[l]
                rec += [r, z, n, hn]
            else:
                hn = nonlinearity(cfg)(c(w_ih @ inp + b_ih + w_hh @ h[l] + b_hh))
                rec += [hn]
            h[l] = hn
            inp = hn
        records.append(torch.cat(rec).numpy())
        last_h.append(inp.numpy())
    state = []
    for l in range(L):
        state.append(h[l].numpy())
        if cell == "lstm":
            state.append(cs[l].numpy())
    return np.array(records), np.array(last_h), np.concatenate(state)


def header(cfg):
    L, H = cfg["num_layers"], cfg["hidden_size"]
    P = cfg.get("proj_size", 0) or H
    fields = {"lstm": ["i", "f", "g", "o", "c"], "gru": ["r", "z", "n"], "rnn": []}[cfg["cell"]]
    cols = ["step"]
    for l in range(L):
        for name in fields + ["h"]:
            cols += [f"l{l}.{name}.{u}" for u in range(P if name == "h" else H)]
    return cols


def head_outputs(cfg, t, last_h):
    """The served outputs from the last layer's h, float64."""
    y = torch.tensor(last_h, dtype=D)
    if "head" in cfg:
        y = y @ torch.tensor(t["head.weight"], dtype=D).T + torch.tensor(t["head.bias"], dtype=D)
        act = cfg["head"].get("activation", "identity")
        if act == "softmax":
            y = torch.softmax(y, dim=-1)
        elif act == "sigmoid":
            y = torch.sigmoid(y)
        elif act == "tanh":
            y = torch.tanh(y)
    norm = cfg.get("normalization") or {}
    if "output_mean" in norm:
        y = y * torch.tensor(norm["output_std"], dtype=D) + torch.tensor(norm["output_mean"], dtype=D)
    return y.numpy()


def torch_module_check(name, mdir, cfg, x, s0, last_h, state):
    """For PyTorch's own cells: torch.nn's module in float64 must give the
    same last-layer h at every step and the same final state."""
    try:
        model = E.load_model(mdir).double()
    except ValueError:
        return False  # a variant torch.nn lacks
    h0, c0 = E.unflatten_state(model.rnn, s0)
    with torch.no_grad():
        xt = torch.tensor(x, dtype=D)
        n = cfg.get("normalization") or {}
        if "input_mean" in n:
            xt = (xt - torch.tensor(n["input_mean"], dtype=D)) / torch.tensor(n["input_std"], dtype=D)
        hx = torch.tensor(h0, dtype=D).unsqueeze(1)
        if c0 is not None:
            hx = (hx, torch.tensor(c0, dtype=D).unsqueeze(1))
        y, hn = model.rnn(xt.unsqueeze(1), hx)
    if c0 is not None:
        hn, cn = hn
        ref_state = E.flatten_state(model.rnn, hn.squeeze(1), cn.squeeze(1))
    else:
        ref_state = E.flatten_state(model.rnn, hn.squeeze(1))
    dev = max(np.max(np.abs(y.squeeze(1).numpy() - last_h)), np.max(np.abs(ref_state - state)))
    if dev > 1e-12:
        raise AssertionError(f"{name}: recomputed cell deviates {dev:.3g} from torch.nn's module")
    return True


def make(name):
    d = os.path.join(GOLDEN, name)
    mdir = os.path.join(d, "model", "1")
    with open(os.path.join(mdir, "config.json")) as f:
        cfg = json.load(f)
    t = E.read_safetensors(os.path.join(mdir, "model.safetensors"))
    x = E.read_csv(os.path.join(d, "input.csv"))
    s0 = E.read_csv(os.path.join(d, "initial_state.csv"))[0]
    records, last_h, state = explain(cfg, t, x, s0)
    torch_checked = torch_module_check(name, mdir, cfg, x, s0, last_h, state)
    # Every case: the served outputs and final state the golden test holds.
    y = head_outputs(cfg, t, last_h)
    want_y = E.read_csv(os.path.join(d, "expected_output.csv"))
    want_s = E.read_csv(os.path.join(d, "expected_state.csv"))[0]
    dev = max(np.max(np.abs(y - want_y) / np.maximum(1, np.abs(want_y))),
              np.max(np.abs(state - want_s) / np.maximum(1, np.abs(want_s))))
    if dev > 1e-7:
        raise AssertionError(f"{name}: recomputed outputs deviate {dev:.3g} from expected_output.csv")
    cols = header(cfg)
    assert len(cols) == records.shape[1] + 1
    with open(os.path.join(d, "expected_explain.csv"), "w") as f:
        f.write(",".join(cols) + "\n")
        for step, r in enumerate(records):
            f.write(str(step) + "," + ",".join("%.9g" % v for v in r) + "\n")
    size = os.path.getsize(os.path.join(d, "expected_explain.csv"))
    how = "torch.nn module and expected outputs" if torch_checked else "expected outputs"
    print(f"{name}: {records.shape[0]} steps x {records.shape[1]} values, {size // 1024} KiB "
          f"(checked against the {how})")


def main(argv):
    torch.set_num_threads(1)
    for name in argv or CASES:
        make(name)


if __name__ == "__main__":
    main(sys.argv[1:])
