#!/usr/bin/env python3
"""A float64 numpy reference for the ONNX LSTM, GRU and RNN operators.

Written from the ONNX operator specification (Operators.md, opsets 7-14),
forward direction only, in the operators' own layouts:

    X  [seq, batch, input]           (layout 0; layout 1: [batch, seq, input])
    W  [1, G*H, input]   R [1, G*H, H]   B [1, 2*G*H] (Wb then Rb)
    P  [1, 3*H] (LSTM peepholes, gates i, o, f)
    initial_h / initial_c [1, batch, H] (layout 1: [batch, 1, H])

with the gate orders LSTM i, o, f, c and GRU z, r, h. Returns Y [seq, 1,
batch, H] (layout 1: [batch, seq, 1, H]), Y_h and Y_c ([1, batch, H]; layout
1: [batch, 1, H]).

Clip, where the specification leaves the exact point open ("applied to the
input of activations"), follows ONNX Runtime: every gate pre-activation is
clamped after its peephole term is added and before its activation; the
cell state c is not clamped.

Also converts between these layouts and lstmserve's (PyTorch's) tensor
names, which tools/make_golden.py uses to compute expected values for the
cell variants PyTorch lacks. Needs only numpy.
"""

import numpy as np

# The float type every operator computes in: float64 for references;
# tools/make_golden.py switches it to float32 once to check a case is
# well-conditioned.
FLOAT = np.float64


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def activation(name, alpha=None, beta=None):
    """The ONNX RNN activation `name` (case-insensitive) as a function, with
    alpha/beta defaulted as in the ONNX operators of the same name."""
    n = name.lower()
    if n == "relu":
        return lambda x: np.maximum(x, 0.0)
    if n == "tanh":
        return np.tanh
    if n == "sigmoid":
        return _sigmoid
    if n == "affine":
        return lambda x: alpha * x + beta
    if n == "leakyrelu":
        a = 0.01 if alpha is None else alpha
        return lambda x: np.where(x < 0, a * x, x)
    if n == "thresholdedrelu":
        a = 1.0 if alpha is None else alpha
        return lambda x: np.where(x > a, x, 0.0)
    if n == "scaledtanh":
        return lambda x: alpha * np.tanh(beta * x)
    if n == "hardsigmoid":
        a = 0.2 if alpha is None else alpha
        b = 0.5 if beta is None else beta
        return lambda x: np.clip(a * x + b, 0.0, 1.0)
    if n == "elu":
        a = 1.0 if alpha is None else alpha
        return lambda x: np.where(x < 0, a * (np.exp(x) - 1.0), x)
    if n == "softsign":
        return lambda x: x / (1.0 + np.abs(x))
    if n == "softplus":
        return lambda x: np.logaddexp(0.0, x)
    raise ValueError(f"unknown ONNX activation {name}")


def _clip(v, clip):
    return v if clip is None else np.clip(v, -clip, clip)


def _prepare(X, W, R, B, initial_h, layout, G):
    X = np.asarray(X, FLOAT)
    if layout == 1:
        X = X.transpose(1, 0, 2)
    T, batch, _ = X.shape
    H = R.shape[-1]
    W = np.asarray(W, FLOAT)[0]
    R = np.asarray(R, FLOAT)[0]
    if B is None:
        B = np.zeros((1, 2 * G * H), FLOAT)
    B = np.asarray(B, FLOAT)[0]
    if initial_h is None:
        h = np.zeros((batch, H), FLOAT)
    else:
        h0 = np.asarray(initial_h, FLOAT)
        h = (h0.transpose(1, 0, 2) if layout == 1 else h0)[0].copy()
    return X, T, batch, H, W, R, B[:G * H], B[G * H:], h


def _finish(ys, hs, layout):
    Y = np.stack(ys)[:, None]  # [T, 1, batch, H]
    outs = [Y] + [s[None] for s in hs]  # each [1, batch, H]
    if layout == 1:
        outs = [Y.transpose(2, 0, 1, 3)] + [s.transpose(1, 0, 2) for s in outs[1:]]
    return outs


def lstm(X, W, R, B=None, initial_h=None, initial_c=None, P=None, clip=None,
         input_forget=0, layout=0):
    """ONNX LSTM with f = sigmoid, g = h = tanh. Returns Y, Y_h, Y_c."""
    X, T, batch, H, W, R, Wb, Rb, h = _prepare(X, W, R, B, initial_h, layout, 4)
    if initial_c is None:
        c = np.zeros((batch, H), FLOAT)
    else:
        c0 = np.asarray(initial_c, FLOAT)
        c = (c0.transpose(1, 0, 2) if layout == 1 else c0)[0].copy()
    p = np.zeros(3 * H, FLOAT) if P is None else np.asarray(P, FLOAT)[0]
    pi, po, pf = p[:H], p[H:2 * H], p[2 * H:]
    ys = []
    for t in range(T):
        g = X[t] @ W.T + h @ R.T + Wb + Rb  # [batch, 4H]: i, o, f, c
        i = _sigmoid(_clip(g[:, :H] + pi * c, clip))
        if input_forget:
            f = 1.0 - i
        else:
            f = _sigmoid(_clip(g[:, 2 * H:3 * H] + pf * c, clip))
        ct = np.tanh(_clip(g[:, 3 * H:], clip))
        c = f * c + i * ct
        o = _sigmoid(_clip(g[:, H:2 * H] + po * c, clip))
        h = o * np.tanh(c)
        ys.append(h)
    return _finish(ys, [h, c], layout)


def gru(X, W, R, B=None, initial_h=None, linear_before_reset=0, clip=None, layout=0):
    """ONNX GRU with f = sigmoid, g = tanh (z, r, h gates). Returns Y, Y_h."""
    X, T, batch, H, W, R, Wb, Rb, h = _prepare(X, W, R, B, initial_h, layout, 3)
    Wz, Wr, Wh = W[:H], W[H:2 * H], W[2 * H:]
    Rz, Rr, Rh = R[:H], R[H:2 * H], R[2 * H:]
    Wbz, Wbr, Wbh = Wb[:H], Wb[H:2 * H], Wb[2 * H:]
    Rbz, Rbr, Rbh = Rb[:H], Rb[H:2 * H], Rb[2 * H:]
    ys = []
    for t in range(T):
        x = X[t]
        z = _sigmoid(_clip(x @ Wz.T + h @ Rz.T + Wbz + Rbz, clip))
        r = _sigmoid(_clip(x @ Wr.T + h @ Rr.T + Wbr + Rbr, clip))
        if linear_before_reset:
            n = np.tanh(_clip(x @ Wh.T + r * (h @ Rh.T + Rbh) + Wbh, clip))
        else:
            n = np.tanh(_clip(x @ Wh.T + (r * h) @ Rh.T + Rbh + Wbh, clip))
        h = (1.0 - z) * n + z * h
        ys.append(h)
    return _finish(ys, [h], layout)


def rnn(X, W, R, B=None, initial_h=None, activations=("Tanh",), alpha=None, beta=None,
        clip=None, layout=0):
    """ONNX RNN (one activation, forward). Returns Y, Y_h."""
    X, T, batch, H, W, R, Wb, Rb, h = _prepare(X, W, R, B, initial_h, layout, 1)
    f = activation(activations[0], alpha, beta)
    ys = []
    for t in range(T):
        h = f(_clip(X[t] @ W.T + h @ R.T + Wb + Rb, clip))
        ys.append(h)
    return _finish(ys, [h], layout)


# --- lstmserve (PyTorch) layout <-> ONNX layout -------------------------------

# PyTorch row blocks in ONNX gate order: LSTM i,o,f,c from i,f,g,o; GRU z,r,h
# from r,z,n.
TORCH_TO_ONNX = {"lstm": [0, 3, 1, 2], "gru": [1, 0, 2], "rnn": [0]}
# Peepholes: lstmserve stores p_i, p_f, p_o; ONNX P is i, o, f.
PEEPHOLE_TO_ONNX = [0, 2, 1]


def reorder(a, order, H):
    """Row blocks of H rows of `a` (axis 0) in the given block order."""
    return np.concatenate([a[k * H:(k + 1) * H] for k in order], axis=0)


def layer_to_onnx(cell, tensors, k, H):
    """One layer's W, R, B (or None), P (or None) in ONNX layout from
    lstmserve tensors named rnn.*_l{k}."""
    order = TORCH_TO_ONNX[cell]
    W = reorder(tensors[f"rnn.weight_ih_l{k}"], order, H)[None]
    R = reorder(tensors[f"rnn.weight_hh_l{k}"], order, H)[None]
    B = None
    if f"rnn.bias_ih_l{k}" in tensors:
        B = np.concatenate([reorder(tensors[f"rnn.bias_ih_l{k}"], order, H),
                            reorder(tensors[f"rnn.bias_hh_l{k}"], order, H)])[None]
    P = None
    if f"rnn.weight_peephole_l{k}" in tensors:
        P = reorder(tensors[f"rnn.weight_peephole_l{k}"], PEEPHOLE_TO_ONNX, H)[None]
    return W, R, B, P


ONNX_ACTIVATION_NAMES = {
    "tanh": "Tanh", "relu": "Relu", "sigmoid": "Sigmoid", "affine": "Affine",
    "leaky_relu": "LeakyRelu", "thresholded_relu": "ThresholdedRelu",
    "scaled_tanh": "ScaledTanh", "hard_sigmoid": "HardSigmoid", "elu": "Elu",
    "softsign": "Softsign", "softplus": "Softplus"}


def run_config(cfg, tensors, x, state):
    """Run an lstmserve model (config dict + {name: float64 array}) over x
    (T x input_size) from a flat state, layer by layer through the ONNX
    operators above. Returns (outputs T x out, final flat state)."""
    cell, H, L = cfg["cell"], cfg["hidden_size"], cfg["num_layers"]
    assert not cfg.get("proj_size"), "ONNX has no LSTM projection"
    clip = cfg.get("clip")
    norm = cfg.get("normalization", {})
    v = np.asarray(x, FLOAT)
    if "input_mean" in norm:
        v = (v - np.array(norm["input_mean"])) / np.array(norm["input_std"])
    v = v[:, None, :]  # [T, batch 1, in]
    final, pos = [], 0
    for k in range(L):
        W, R, B, P = layer_to_onnx(cell, tensors, k, H)
        h0 = state[pos:pos + H][None, None]
        pos += H
        if cell == "lstm":
            c0 = state[pos:pos + H][None, None]
            pos += H
            Y, hT, cT = lstm(v, W, R, B, h0, c0, P, clip,
                             cfg.get("lstm_input_forget", False))
            final += [hT[0, 0], cT[0, 0]]
        elif cell == "gru":
            Y, hT = gru(v, W, R, B, h0, cfg.get("gru_linear_before_reset", True), clip)
            final += [hT[0, 0]]
        else:
            Y, hT = rnn(v, W, R, B, h0,
                        [ONNX_ACTIVATION_NAMES[cfg.get("nonlinearity", "tanh")]],
                        cfg.get("nonlinearity_alpha"), cfg.get("nonlinearity_beta"), clip)
            final += [hT[0, 0]]
        v = Y[:, 0]
    v = v[:, 0]
    if "head" in cfg:
        v = v @ tensors["head.weight"].T + tensors["head.bias"]
        act = cfg["head"].get("activation", "identity")
        if act == "softmax":
            e = np.exp(v - v.max(axis=1, keepdims=True))
            v = e / e.sum(axis=1, keepdims=True)
        elif act == "sigmoid":
            v = _sigmoid(v)
        elif act == "tanh":
            v = np.tanh(v)
    if "output_mean" in norm:
        v = v * np.array(norm["output_std"]) + np.array(norm["output_mean"])
    return v, np.concatenate(final)
