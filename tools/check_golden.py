#!/usr/bin/env python3
"""Re-check tests/golden/ with an independent pure-numpy LSTM/GRU/RNN implementation.

    /usr/bin/python3 tools/check_golden.py [CASE_DIR ...]   # default: every case

make_golden.py computes the expected outputs with torch modules. This script
uses neither torch nor lstmserve_export: it parses config.json and
model.safetensors from disk itself (strictly, the way the C++ engine must),
writes the cell equations out by hand in float64, and runs every case from
its initial_state.csv. Agreement with expected_output.csv / expected_state.csv
within 1e-5 (relative above magnitude 1) shows the files mean what the format
says: PyTorch gate order (LSTM i,f,g,o; GRU r,z,n), separate ih/hh biases
with GRU's b_hn inside r * (W_hn h + b_hn), projection after the output gate,
the flat state layout (per layer: h, then c for LSTM), head, activation, and
normalization order; and the ONNX cell variants (RNN nonlinearities, GRU
with gru_linear_before_reset false, LSTM peepholes and input_forget, clip),
written here in lstmserve's layout, apart from tools/onnx_reference.py which
computes those cases' expected values in ONNX's. Needs only numpy.
"""

import json
import os
import struct
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOLDEN = os.path.join(REPO, "tests", "golden")
TOL = 1e-5
SIZES = {"F32": 4, "F16": 2, "BF16": 2}


def load_safetensors(path):
    """Minimal strict safetensors reader -> {name: float64 array}."""
    with open(path, "rb") as f:
        buf = f.read()
    (n,) = struct.unpack("<Q", buf[:8])
    assert n % 8 == 0, f"{path}: header length {n} is not a multiple of 8"
    header = json.loads(buf[8:8 + n])
    assert header.pop("__metadata__") == {"format": "pt"}, f"{path}: bad __metadata__"
    data = buf[8 + n:]
    out, spans = {}, []
    for name, e in header.items():
        assert set(e) == {"dtype", "shape", "data_offsets"}, f"{path}: {name} has keys {sorted(e)}"
        b, en = e["data_offsets"]
        count = int(np.prod(e["shape"]))
        assert en - b == count * SIZES[e["dtype"]], f"{path}: {name} size mismatch"
        raw = data[b:en]
        if e["dtype"] == "F32":
            a = np.frombuffer(raw, "<f4").astype(np.float64)
        elif e["dtype"] == "F16":
            a = np.frombuffer(raw, "<f2").astype(np.float64)
        else:  # BF16: the high half of a float32
            a = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32).astype(np.float64)
        out[name] = a.reshape(e["shape"])
        spans.append((b, en))
    spans.sort()
    pos = 0
    for b, en in spans:
        assert b == pos, f"{path}: tensor data not contiguous at {b} (expected {pos})"
        pos = en
    assert pos == len(data), f"{path}: {len(data) - pos} stray bytes after the tensors"
    return out


def expected_shapes(cfg):
    """{tensor name: shape} the format requires for this config."""
    H, L, P = cfg["hidden_size"], cfg["num_layers"], cfg.get("proj_size", 0)
    G = {"lstm": 4, "gru": 3, "rnn": 1}[cfg["cell"]]
    hout = P or H
    shapes = {}
    for k in range(L):
        shapes[f"rnn.weight_ih_l{k}"] = [G * H, cfg["input_size"] if k == 0 else hout]
        shapes[f"rnn.weight_hh_l{k}"] = [G * H, hout]
        if cfg.get("bias", True):
            shapes[f"rnn.bias_ih_l{k}"] = [G * H]
            shapes[f"rnn.bias_hh_l{k}"] = [G * H]
        if P:
            shapes[f"rnn.weight_hr_l{k}"] = [P, H]
        if cfg.get("lstm_peepholes"):
            shapes[f"rnn.weight_peephole_l{k}"] = [3 * H]
    if "head" in cfg:
        shapes["head.weight"] = [cfg["head"]["output_size"], hout]
        shapes["head.bias"] = [cfg["head"]["output_size"]]
    return shapes


def sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def nonlinearity(cfg):
    """The RNN cell's f with its alpha/beta (docs/MODEL_FORMAT.md)."""
    name = cfg.get("nonlinearity", "tanh")
    a, b = cfg.get("nonlinearity_alpha"), cfg.get("nonlinearity_beta")
    return {
        "tanh": np.tanh,
        "relu": lambda v: np.maximum(v, 0),
        "sigmoid": sigmoid,
        "affine": lambda v: a * v + b,
        "leaky_relu": lambda v: np.where(v < 0, a * v, v),
        "thresholded_relu": lambda v: np.where(v > a, v, 0),
        "scaled_tanh": lambda v: a * np.tanh(b * v),
        "hard_sigmoid": lambda v: np.minimum(1, np.maximum(0, a * v + b)),
        "elu": lambda v: np.where(v < 0, a * np.expm1(v), v),
        "softsign": lambda v: v / (1 + np.abs(v)),
        "softplus": lambda v: np.log1p(np.exp(-np.abs(v))) + np.maximum(v, 0),
    }[name]


def run(cfg, w, x, state):
    """Run the model described by cfg/w over x (T, in) from flat state -> (y, final state)."""
    lstm = cfg["cell"] == "lstm"
    H, L, P = cfg["hidden_size"], cfg["num_layers"], cfg.get("proj_size", 0)
    hout = P or H
    clip = cfg.get("clip")

    def cl(v):  # clip on every gate pre-activation, before its activation
        return v if clip is None else np.minimum(clip, np.maximum(-clip, v))

    # Split the flat state: per layer h_l (hout) then, for LSTM, c_l (H).
    hs, cs, pos = [], [], 0
    for _ in range(L):
        hs.append(state[pos:pos + hout].copy())
        pos += hout
        if lstm:
            cs.append(state[pos:pos + H].copy())
            pos += H
    assert pos == len(state), f"state has {len(state)} floats; expected {pos}"

    def bias(name, k):
        return w.get(f"rnn.{name}_l{k}", np.zeros(w[f"rnn.weight_ih_l{k}"].shape[0]))

    norm = cfg.get("normalization", {})
    ys = []
    for xt in x:
        v = xt
        if "input_mean" in norm:
            v = (v - np.array(norm["input_mean"])) / np.array(norm["input_std"])
        for k in range(L):
            gi = w[f"rnn.weight_ih_l{k}"] @ v + bias("bias_ih", k)
            gh = w[f"rnn.weight_hh_l{k}"] @ hs[k] + bias("bias_hh", k)
            if lstm:
                a = gi + gh
                i, f, g, o = (a[j * H:(j + 1) * H] for j in range(4))
                p = w.get(f"rnn.weight_peephole_l{k}", np.zeros(3 * H))
                i = sigmoid(cl(i + p[:H] * cs[k]))
                if cfg.get("lstm_input_forget"):
                    f = 1 - i
                else:
                    f = sigmoid(cl(f + p[H:2 * H] * cs[k]))
                cs[k] = f * cs[k] + i * np.tanh(cl(g))
                h = sigmoid(cl(o + p[2 * H:] * cs[k])) * np.tanh(cs[k])
                if P:
                    h = w[f"rnn.weight_hr_l{k}"] @ h
            elif cfg["cell"] == "rnn":
                h = nonlinearity(cfg)(cl(gi + gh))
            else:
                r = sigmoid(cl(gi[:H] + gh[:H]))
                z = sigmoid(cl(gi[H:2 * H] + gh[H:2 * H]))
                if cfg.get("gru_linear_before_reset", True):
                    n = np.tanh(cl(gi[2 * H:] + r * gh[2 * H:]))  # gh[2H:] = W_hn h + b_hn
                else:
                    W_hn = w[f"rnn.weight_hh_l{k}"][2 * H:]
                    n = np.tanh(cl(gi[2 * H:] + W_hn @ (r * hs[k]) + bias("bias_hh", k)[2 * H:]))
                h = (1 - z) * n + z * hs[k]
            hs[k] = h
            v = h
        if "head" in cfg:
            v = w["head.weight"] @ v + w["head.bias"]
            act = cfg["head"].get("activation", "identity")
            if act == "softmax":
                e = np.exp(v - v.max())
                v = e / e.sum()
            elif act == "sigmoid":
                v = sigmoid(v)
            elif act == "tanh":
                v = np.tanh(v)
            else:
                assert act == "identity", f"unknown activation {act}"
        if "output_mean" in norm:
            v = v * np.array(norm["output_std"]) + np.array(norm["output_mean"])
        ys.append(v)
    final = []
    for k in range(L):
        final.append(hs[k])
        if lstm:
            final.append(cs[k])
    return np.array(ys), np.concatenate(final)


def read_csv(path):
    with open(path) as f:
        return np.array([[float(v) for v in line.split(",")] for line in f if line.strip()])


def check_config(cfg, path):
    known = {"cell", "input_size", "hidden_size", "num_layers", "proj_size", "bias", "head",
             "normalization", "description", "input_names", "output_names",
             "nonlinearity", "nonlinearity_alpha", "nonlinearity_beta", "gru_linear_before_reset",
             "lstm_peepholes", "lstm_input_forget", "clip"}
    assert set(cfg) <= known, f"{path}: unknown keys {sorted(set(cfg) - known)}"
    assert cfg["cell"] in ("lstm", "gru", "rnn")
    assert cfg["cell"] == "lstm" or "proj_size" not in cfg, f"{path}: proj_size on a GRU"
    P = cfg.get("proj_size", 0)
    out = cfg["head"]["output_size"] if "head" in cfg else (P or cfg["hidden_size"])
    n = cfg.get("normalization", {})
    for side, size in (("input", cfg["input_size"]), ("output", out)):
        assert (f"{side}_mean" in n) == (f"{side}_std" in n), f"{path}: {side} pair incomplete"
        if f"{side}_mean" in n:
            assert len(n[f"{side}_mean"]) == size and len(n[f"{side}_std"]) == size
    for key, size in (("input_names", cfg["input_size"]), ("output_names", out)):
        if key in cfg:
            assert len(cfg[key]) == size, f"{path}: {key} has {len(cfg[key])} entries; expected {size}"
    return out


def check_case(d):
    name = os.path.basename(os.path.normpath(d))
    if os.path.exists(os.path.join(d, "model_dir.txt")):
        with open(os.path.join(d, "model_dir.txt")) as f:
            model_dir = os.path.join(REPO, f.read().strip())
    else:
        model_dir = os.path.join(d, "model", "1")
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    out_size = check_config(cfg, model_dir)
    w = load_safetensors(os.path.join(model_dir, "model.safetensors"))
    shapes = expected_shapes(cfg)
    assert set(w) == set(shapes), f"{name}: tensors {sorted(w)}; expected {sorted(shapes)}"
    for k, s in shapes.items():
        assert list(w[k].shape) == s, f"{name}: {k} has shape {list(w[k].shape)}; expected {s}"

    x = read_csv(os.path.join(d, "input.csv"))
    s0 = read_csv(os.path.join(d, "initial_state.csv"))
    y_exp = read_csv(os.path.join(d, "expected_output.csv"))
    s_exp = read_csv(os.path.join(d, "expected_state.csv"))
    assert 20 <= x.shape[0] <= 120 and x.shape[1] == cfg["input_size"], f"{name}: input shape {x.shape}"
    assert s0.shape[0] == 1 and s_exp.shape[0] == 1, f"{name}: state files must have one line"
    assert y_exp.shape == (x.shape[0], out_size), f"{name}: expected_output shape {y_exp.shape}"
    # Inputs and initial state were written with "%.9g" from float32 numbers; read
    # them as float32, as the engine does, to get exactly the numbers the
    # reference used.
    x = x.astype(np.float32).astype(np.float64)
    s0 = s0.astype(np.float32).astype(np.float64)

    y, s = run(cfg, w, x, s0[0])
    dev_y = np.max(np.abs(y - y_exp) / np.maximum(1, np.abs(y_exp)))
    dev_s = np.max(np.abs(s - s_exp[0]) / np.maximum(1, np.abs(s_exp[0])))
    ok = dev_y <= TOL and dev_s <= TOL
    print(f"{'ok  ' if ok else 'FAIL'} {name:50s} T={x.shape[0]:3d} out dev {dev_y:.2e} state dev {dev_s:.2e}")
    return ok


def main(argv):
    dirs = argv or sorted(os.path.join(GOLDEN, e) for e in os.listdir(GOLDEN)
                          if os.path.isdir(os.path.join(GOLDEN, e)))
    results = [check_case(d) for d in dirs]
    print(f"{sum(results)}/{len(results)} golden cases agree with the numpy reference")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
