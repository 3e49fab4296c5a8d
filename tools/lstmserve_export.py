#!/usr/bin/env python3
"""Export a PyTorch LSTM/GRU/RNN (+ optional Linear head) as an lstmserve model version.

An lstmserve model version directory holds two files (see docs/MODELS.md and
the design notes):

  config.json        cell type, sizes, optional head / normalization / names
  model.safetensors  the weights, under PyTorch's own state_dict names with the
                     prefixes "rnn." and "head.", stored as F32, F16 or BF16

Served semantics, which lstmserve's C++ engine reproduces:

  x_n = (x - input_mean) / input_std            (if normalization has inputs)
  h   = torch.nn.LSTM / GRU / RNN (x_n)        (unidirectional, last layer's h)
  y   = activation(head(h))                     (if there is a head; softmax is
                                                 over the output vector)
  out = y * output_std + output_mean            (if normalization has outputs)

As a library (run with a Python that has torch and numpy):

  import sys; sys.path.insert(0, "tools")
  from lstmserve_export import export_model
  export_model("models/mymodel/1", my_lstm, head=my_linear, activation="softmax")

As a command line tool:

  /usr/bin/python3 tools/lstmserve_export.py MODULE.pt OUT_DIR [--dtype F16]

where MODULE.pt is a torch.save()d nn.Module with an attribute `rnn` (an
nn.LSTM, nn.GRU or nn.RNN) and optionally `head` (nn.Linear), `activation` (str) and
`normalization` (dict); or a bare nn.LSTM / nn.GRU / nn.RNN. See --help.

This module also holds small helpers shared by tools/train_bundled.py,
tools/make_golden.py and tools/check_golden.py: safetensors read/write, dtype
rounding, the session-state layout, CSV I/O and ServedModel, a reference
nn.Module with exactly the served semantics.
"""

import argparse
import json
import math
import os
import struct
import sys

import numpy as np
import torch
from torch import nn

ACTIVATIONS = ("identity", "softmax", "sigmoid", "tanh")
DTYPES = ("F32", "F16", "BF16")
_DTYPE_SIZE = {"F32": 4, "F16": 2, "BF16": 2}


# --------------------------------------------------------------------------
# dtype conversion
# --------------------------------------------------------------------------

def _f32_to_bf16_bits(a):
    """float32 array -> uint16 bfloat16 bit patterns, round to nearest even.

    bfloat16 is the top 16 bits of a float32. Rounding to nearest even: add
    0x7FFF plus the lowest kept bit (bit 16), then truncate. Done in uint64 so
    the addition cannot wrap. Callers reject NaN beforehand (the trick would
    otherwise be able to turn a NaN payload into infinity).
    """
    bits = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    return rounded.astype(np.uint16)


def _bf16_bits_to_f32(b):
    """uint16 bfloat16 bit patterns -> float32 (exact)."""
    return (np.asarray(b, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


def _encode(a, dtype):
    """float32 array -> raw little-endian bytes in `dtype`."""
    a = np.ascontiguousarray(a, dtype=np.float32)
    if not np.all(np.isfinite(a)):
        raise ValueError("tensor contains NaN or infinity")
    if dtype == "F32":
        return a.astype("<f4").tobytes()
    if dtype == "F16":
        with np.errstate(over="ignore"):  # overflow is reported just below
            h = a.astype("<f2")  # numpy's float32->float16 cast rounds to nearest even
        if not np.all(np.isfinite(h)):
            raise ValueError("tensor has values beyond the F16 range (|x| > 65504)")
        return h.tobytes()
    if dtype == "BF16":
        b = _f32_to_bf16_bits(a)
        if not np.all(np.isfinite(_bf16_bits_to_f32(b))):
            raise ValueError("tensor has values beyond the BF16 range")
        return b.astype("<u2").tobytes()
    raise ValueError(f"dtype {dtype!r} is not one of {DTYPES}")


def _decode(raw, dtype, shape):
    """raw little-endian bytes in `dtype` -> float32 array of `shape`."""
    if dtype == "F32":
        a = np.frombuffer(raw, dtype="<f4").astype(np.float32)
    elif dtype == "F16":
        a = np.frombuffer(raw, dtype="<f2").astype(np.float32)
    elif dtype == "BF16":
        a = _bf16_bits_to_f32(np.frombuffer(raw, dtype="<u2"))
    else:
        raise ValueError(f"dtype {dtype!r} is not one of {DTYPES}")
    return a.reshape(shape)


def round_to_dtype(a, dtype):
    """Round a float array to the values `dtype` can hold; returns float32.

    round_to_dtype(w, d) is exactly what read_safetensors returns after
    write_safetensors stored w as d.
    """
    a = np.asarray(a, dtype=np.float32)
    return _decode(_encode(a, dtype), dtype, a.shape)


# --------------------------------------------------------------------------
# safetensors
# --------------------------------------------------------------------------

def write_safetensors(path, tensors, dtype="F32"):
    """Write {name: float32 ndarray} to `path` in the safetensors format.

    Layout: u64 little-endian header length N, N bytes of JSON header (padded
    with trailing spaces to a multiple of 8 so the data starts 8-byte
    aligned), then each tensor's raw little-endian row-major data, back to
    back, in the order of `tensors`. Every tensor is stored as `dtype`.
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype {dtype!r} is not one of {DTYPES}")
    header = {"__metadata__": {"format": "pt"}}
    blobs = []
    offset = 0
    for name, value in tensors.items():
        if name == "__metadata__":
            raise ValueError("'__metadata__' is reserved")
        value = np.asarray(value, dtype=np.float32)
        raw = _encode(value, dtype)
        header[name] = {
            "dtype": dtype,
            "shape": [int(d) for d in value.shape],
            "data_offsets": [offset, offset + len(raw)],
        }
        blobs.append(raw)
        offset += len(raw)
    hjson = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hjson += b" " * (-len(hjson) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for raw in blobs:
            f.write(raw)


def read_safetensors(path, return_dtypes=False):
    """Read a safetensors file -> {name: float32 ndarray}, in file order.

    Checks the structure strictly (known dtypes, sizes match shapes, offsets
    contiguous from 0 to the end of the file with no gaps or overlap). With
    return_dtypes=True returns (tensors, {name: dtype}, metadata).
    """
    with open(path, "rb") as f:
        buf = f.read()
    if len(buf) < 8:
        raise ValueError(f"{path}: too short for a safetensors file")
    (n,) = struct.unpack("<Q", buf[:8])
    if 8 + n > len(buf):
        raise ValueError(f"{path}: header length {n} runs past the end of the file")
    header = json.loads(buf[8:8 + n].decode("utf-8"))
    data = buf[8 + n:]
    metadata = header.pop("__metadata__", {})
    entries = sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0])
    tensors, dtypes = {}, {}
    expected_begin = 0
    for name, e in entries:
        dtype, shape, (begin, end) = e["dtype"], e["shape"], e["data_offsets"]
        if dtype not in DTYPES:
            raise ValueError(f"{path}: tensor {name!r} has dtype {dtype!r}; expected one of {DTYPES}")
        if begin != expected_begin:
            raise ValueError(f"{path}: tensor {name!r} starts at {begin}; expected {expected_begin} (gap or overlap)")
        count = int(np.prod(shape)) if shape else 1
        if end - begin != count * _DTYPE_SIZE[dtype]:
            raise ValueError(f"{path}: tensor {name!r} has {end - begin} bytes; shape {shape} as {dtype} needs {count * _DTYPE_SIZE[dtype]}")
        tensors[name] = _decode(data[begin:end], dtype, shape)
        dtypes[name] = dtype
        expected_begin = end
    if expected_begin != len(data):
        raise ValueError(f"{path}: {len(data) - expected_begin} trailing bytes after the last tensor")
    # Return in the header's own order (json preserves it), not offset order.
    order = [k for k in header]
    tensors = {k: tensors[k] for k in order}
    if return_dtypes:
        return tensors, {k: dtypes[k] for k in order}, metadata
    return tensors


# --------------------------------------------------------------------------
# Model description helpers
# --------------------------------------------------------------------------

def _dims(rnn_or_config):
    """(cell, num_layers, hidden_size, proj_size) of an nn.LSTM/GRU/RNN or a config dict."""
    if isinstance(rnn_or_config, dict):
        c = rnn_or_config
        return c["cell"], int(c["num_layers"]), int(c["hidden_size"]), int(c.get("proj_size", 0) or 0)
    cell = _cell_of(rnn_or_config)
    proj = int(getattr(rnn_or_config, "proj_size", 0) or 0)
    return cell, rnn_or_config.num_layers, rnn_or_config.hidden_size, proj


def _cell_of(rnn):
    # nn.LSTM, nn.GRU and nn.RNN all derive from nn.RNNBase; check the
    # concrete classes.
    if isinstance(rnn, nn.LSTM):
        return "lstm"
    if isinstance(rnn, nn.GRU):
        return "gru"
    if isinstance(rnn, nn.RNN):
        return "rnn"
    raise ValueError(f"rnn must be a torch.nn.LSTM, nn.GRU or nn.RNN; got {type(rnn).__name__}")


def rnn_output_size(rnn_or_config):
    """Size of the last layer's h: proj_size if set, else hidden_size."""
    _, _, hidden, proj = _dims(rnn_or_config)
    return proj or hidden


def state_size(rnn_or_config):
    """Number of floats in one session's flat state (see flatten_state)."""
    cell, layers, hidden, proj = _dims(rnn_or_config)
    return layers * ((proj or hidden) + (hidden if cell == "lstm" else 0))


def flatten_state(rnn, h0, c0=None):
    """(h, c) in PyTorch's layout -> lstmserve's flat session-state layout.

    `rnn` is an nn.LSTM / nn.GRU or a config dict. h0 is (num_layers, H_out) or
    (num_layers, N, H_out) with H_out = proj_size or hidden_size; c0 (LSTM only)
    is (num_layers, [N,] hidden_size). The flat layout is, for each layer l in
    order: h_l, then (LSTM only) c_l. Returns float64 numpy, shape (S,) for
    unbatched input or (N, S) for batched input.
    """
    cell, layers, hidden, proj = _dims(rnn)
    h = _as_np(h0)
    batched = h.ndim == 3
    if not batched:
        h = h[:, None, :]
    if h.shape[0] != layers or h.shape[2] != (proj or hidden):
        raise ValueError(f"h0 has shape {list(_as_np(h0).shape)}; expected [{layers}, (N,) {proj or hidden}]")
    parts = []
    if cell == "lstm":
        if c0 is None:
            raise ValueError("an LSTM state needs c0")
        c = _as_np(c0)
        if not batched:
            c = c[:, None, :]
        if c.shape[0] != layers or c.shape[2] != hidden or c.shape[1] != h.shape[1]:
            raise ValueError(f"c0 has shape {list(_as_np(c0).shape)}; expected [{layers}, (N,) {hidden}]")
    elif c0 is not None:
        raise ValueError("a GRU state has no c0")
    for l in range(layers):
        parts.append(h[l])
        if cell == "lstm":
            parts.append(c[l])
    flat = np.concatenate(parts, axis=1)  # (N, S)
    return flat if batched else flat[0]


def unflatten_state(rnn, flat):
    """Inverse of flatten_state: flat (S,) or (N, S) -> (h0, c0) numpy float64.

    h0 is (num_layers, [N,] H_out); c0 is (num_layers, [N,] hidden_size) for an
    LSTM and None for a GRU.
    """
    cell, layers, hidden, proj = _dims(rnn)
    f = _as_np(flat)
    batched = f.ndim == 2
    if not batched:
        f = f[None, :]
    if f.shape[1] != state_size(rnn):
        raise ValueError(f"state has {f.shape[1]} floats; expected {state_size(rnn)}")
    hout = proj or hidden
    hs, cs, pos = [], [], 0
    for _ in range(layers):
        hs.append(f[:, pos:pos + hout])
        pos += hout
        if cell == "lstm":
            cs.append(f[:, pos:pos + hidden])
            pos += hidden
    h = np.stack(hs)
    c = np.stack(cs) if cell == "lstm" else None
    if not batched:
        h = h[:, 0]
        c = c[:, 0] if c is not None else None
    return h, c


def _as_np(x):
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def _f32_list(values):
    """Values as a list of Python floats that are exactly float32 numbers.

    Normalization constants are stored at float32 precision, like the weights,
    so a reader parsing them as float or as double gets the same number.
    """
    return [float(v) for v in np.asarray(values, dtype=np.float32).reshape(-1)]


def _check_normalization(norm, input_size, output_size):
    """Validate a normalization dict; return a cleaned copy (float32 values)."""
    if norm is None:
        return None
    known = {"input_mean", "input_std", "output_mean", "output_std"}
    unknown = set(norm) - known
    if unknown:
        raise ValueError(f"normalization has unknown keys {sorted(unknown)}; expected {sorted(known)}")
    out = {}
    for side, size in (("input", input_size), ("output", output_size)):
        mean, std = norm.get(f"{side}_mean"), norm.get(f"{side}_std")
        if (mean is None) != (std is None):
            raise ValueError(f"normalization needs both {side}_mean and {side}_std, or neither")
        if mean is None:
            continue
        mean, std = _f32_list(mean), _f32_list(std)
        for key, v in ((f"{side}_mean", mean), (f"{side}_std", std)):
            if len(v) != size:
                raise ValueError(f"normalization {key} has {len(v)} entries; expected {size} ({side} size)")
            if not all(math.isfinite(x) for x in v):
                raise ValueError(f"normalization {key} has NaN or infinite entries")
        if any(s <= 0 for s in std):
            raise ValueError(f"normalization {side}_std must be > 0 everywhere")
        out[f"{side}_mean"], out[f"{side}_std"] = mean, std
    return out or None


def model_tensors(rnn, head=None):
    """The exact tensors lstmserve stores: {name: float32 ndarray}, PyTorch's names.

    rnn.weight_ih_l{k}, rnn.weight_hh_l{k}, [rnn.bias_ih_l{k}, rnn.bias_hh_l{k}],
    [rnn.weight_hr_l{k}], then [head.weight, head.bias]. A head without a bias
    gets an explicit zero head.bias (the format always has one).
    """
    cell, layers, _, proj = _dims(rnn)
    sd = rnn.state_dict()
    names = []
    for k in range(layers):
        names += [f"weight_ih_l{k}", f"weight_hh_l{k}"]
        if rnn.bias:
            names += [f"bias_ih_l{k}", f"bias_hh_l{k}"]
        if proj:
            names.append(f"weight_hr_l{k}")
    extra = set(sd) - set(names)
    if extra:
        raise ValueError(f"rnn has unexpected parameters {sorted(extra)}")
    out = {"rnn." + n: sd[n].detach().cpu().float().numpy() for n in names}
    if head is not None:
        out["head.weight"] = head.weight.detach().cpu().float().numpy()
        if head.bias is not None:
            out["head.bias"] = head.bias.detach().cpu().float().numpy()
        else:
            out["head.bias"] = np.zeros(head.out_features, dtype=np.float32)
    return out


def export_model(out_dir, rnn, head=None, activation="identity", normalization=None,
                 dtype="F32", description="", input_names=None, output_names=None):
    """Write an lstmserve model version directory: out_dir/config.json + model.safetensors.

    rnn:           torch.nn.LSTM, nn.GRU or nn.RNN, unidirectional (batch_first
                   does not matter; dropout is an inference no-op).
    head:          optional torch.nn.Linear on the last layer's h
                   (in_features must be proj_size or hidden_size).
    activation:    identity | softmax | sigmoid | tanh, applied after the head
                   (needs a head unless "identity").
    normalization: optional dict with input_mean/input_std (input_size each)
                   and/or output_mean/output_std (output size each).
    dtype:         F32 | F16 | BF16 for every stored tensor.
    Returns the config dict that was written.
    """
    cell = _cell_of(rnn)
    if rnn.bidirectional:
        raise ValueError("bidirectional RNNs are not supported (a streamed session only moves forward)")
    if dtype not in DTYPES:
        raise ValueError(f"dtype {dtype!r} is not one of {DTYPES}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation {activation!r} is not one of {ACTIVATIONS}")
    if head is None and activation != "identity":
        raise ValueError(f"activation {activation!r} needs a head (it is applied to the head's output)")
    if head is not None:
        if not isinstance(head, nn.Linear):
            raise ValueError(f"head must be a torch.nn.Linear; got {type(head).__name__}")
        if head.in_features != rnn_output_size(rnn):
            raise ValueError(f"head has in_features {head.in_features}; the rnn outputs "
                             f"{rnn_output_size(rnn)} (proj_size or hidden_size)")
    proj = int(getattr(rnn, "proj_size", 0) or 0)
    output_size = head.out_features if head is not None else (proj or rnn.hidden_size)

    config = {"cell": cell, "input_size": rnn.input_size, "hidden_size": rnn.hidden_size,
              "num_layers": rnn.num_layers}
    if proj:
        config["proj_size"] = proj
    config["bias"] = bool(rnn.bias)
    if cell == "rnn":
        config["nonlinearity"] = rnn.nonlinearity  # "tanh" or "relu"
    if head is not None:
        config["head"] = {"output_size": head.out_features, "activation": activation}
    norm = _check_normalization(normalization, rnn.input_size, output_size)
    if norm:
        config["normalization"] = norm
    if description:
        config["description"] = description
    for key, names, size in (("input_names", input_names, rnn.input_size),
                             ("output_names", output_names, output_size)):
        if names is not None:
            names = [str(n) for n in names]
            if len(names) != size:
                raise ValueError(f"{key} has {len(names)} entries; expected {size}")
            config[key] = names

    tensors = model_tensors(rnn, head)
    os.makedirs(out_dir, exist_ok=True)
    # Write to temporary names and rename, so a server watching the repository
    # never sees a half-written version.
    st_tmp = os.path.join(out_dir, ".model.safetensors.tmp")
    cfg_tmp = os.path.join(out_dir, ".config.json.tmp")
    write_safetensors(st_tmp, tensors, dtype)
    with open(cfg_tmp, "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    os.replace(st_tmp, os.path.join(out_dir, "model.safetensors"))
    os.replace(cfg_tmp, os.path.join(out_dir, "config.json"))
    return config


# --------------------------------------------------------------------------
# Reference module and loading
# --------------------------------------------------------------------------

class ServedModel(nn.Module):
    """rnn + optional head + activation + normalization: the served semantics.

    forward(x, h0=None, c0=None) takes raw (un-normalized) inputs x of shape
    (T, input_size) and returns (y, h_n, c_n): y is (T, output_size), one
    output per step; h_n/c_n are (num_layers, H) like PyTorch's (c_n is None
    for a GRU). Works in whatever dtype the module has (.double() for a
    float64 reference). torch.save() an instance and the CLI can export it.
    """

    def __init__(self, rnn, head=None, activation="identity", normalization=None):
        super().__init__()
        _cell_of(rnn)
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation {activation!r} is not one of {ACTIVATIONS}")
        self.rnn = rnn
        self.head = head
        self.activation = activation
        out = head.out_features if head is not None else rnn_output_size(rnn)
        self.normalization = _check_normalization(normalization, rnn.input_size, out)

    def forward(self, x, h0=None, c0=None):
        dt = next(self.parameters()).dtype
        x = torch.as_tensor(x, dtype=dt)
        n = self.normalization or {}
        if "input_mean" in n:
            x = (x - torch.tensor(n["input_mean"], dtype=dt)) / torch.tensor(n["input_std"], dtype=dt)
        lstm = isinstance(self.rnn, nn.LSTM)
        hx = None
        if h0 is not None:
            h = torch.as_tensor(h0, dtype=dt).unsqueeze(1)  # add batch dim of 1
            hx = (h, torch.as_tensor(c0, dtype=dt).unsqueeze(1)) if lstm else h
        xb = x.unsqueeze(0 if self.rnn.batch_first else 1)
        y, hn = self.rnn(xb, hx)
        y = y.squeeze(0 if self.rnn.batch_first else 1)
        if lstm:
            hn, cn = hn[0].squeeze(1), hn[1].squeeze(1)
        else:
            hn, cn = hn.squeeze(1), None
        if self.head is not None:
            y = self.head(y)
            if self.activation == "softmax":
                y = torch.softmax(y, dim=-1)
            elif self.activation == "sigmoid":
                y = torch.sigmoid(y)
            elif self.activation == "tanh":
                y = torch.tanh(y)
        if "output_mean" in n:
            y = y * torch.tensor(n["output_std"], dtype=dt) + torch.tensor(n["output_mean"], dtype=dt)
        return y, hn, cn


def load_model(version_dir):
    """Build a float32 ServedModel from an exported version directory."""
    with open(os.path.join(version_dir, "config.json")) as f:
        cfg = json.load(f)
    tensors = read_safetensors(os.path.join(version_dir, "model.safetensors"))
    kw = dict(input_size=cfg["input_size"], hidden_size=cfg["hidden_size"],
              num_layers=cfg["num_layers"], bias=cfg.get("bias", True))
    unsupported = {"lstm_peepholes", "lstm_input_forget", "clip"} & {k for k, v in cfg.items() if v}
    if unsupported:
        raise ValueError(f"{version_dir}: {sorted(unsupported)} have no torch.nn equivalent "
                         "(tools/onnx_reference.py runs them)")
    if cfg["cell"] == "lstm":
        rnn = nn.LSTM(proj_size=cfg.get("proj_size", 0), **kw)
    elif cfg["cell"] == "gru":
        if cfg.get("gru_linear_before_reset", True) is not True:
            raise ValueError(f"{version_dir}: torch.nn.GRU has no gru_linear_before_reset=false")
        rnn = nn.GRU(**kw)
    elif cfg["cell"] == "rnn":
        nl = cfg.get("nonlinearity", "tanh")
        if nl not in ("tanh", "relu"):
            raise ValueError(f"{version_dir}: torch.nn.RNN has no nonlinearity {nl!r}")
        rnn = nn.RNN(nonlinearity=nl, **kw)
    else:
        raise ValueError(f"{version_dir}: unknown cell {cfg['cell']!r}")
    head = None
    if "head" in cfg:
        head = nn.Linear(rnn_output_size(rnn), cfg["head"]["output_size"])
    expected = set(model_tensors(rnn, head))
    if set(tensors) != expected:
        raise ValueError(f"{version_dir}: tensors {sorted(tensors)}; expected {sorted(expected)}")
    rnn.load_state_dict({k[4:]: torch.from_numpy(v) for k, v in tensors.items() if k.startswith("rnn.")})
    if head is not None:
        head.load_state_dict({"weight": torch.from_numpy(tensors["head.weight"]),
                              "bias": torch.from_numpy(tensors["head.bias"])})
    act = cfg["head"].get("activation", "identity") if head is not None else "identity"
    return ServedModel(rnn, head, act, cfg.get("normalization")).eval()


# --------------------------------------------------------------------------
# CSV (one time step per line, comma-separated, no header)
# --------------------------------------------------------------------------

def write_csv(path, rows):
    """Write a 2-D array (or a 1-D one as a single line) with "%.9g" (float32 round-trips)."""
    a = np.asarray(rows, dtype=np.float64)
    if a.ndim == 1:
        a = a[None, :]
    with open(path, "w") as f:
        for r in a:
            f.write(",".join("%.9g" % v for v in r) + "\n")


def read_csv(path):
    """Read a CSV written by write_csv -> float64 array of shape (rows, cols)."""
    with open(path) as f:
        rows = [[float(v) for v in line.split(",")] for line in f if line.strip()]
    return np.array(rows, dtype=np.float64)


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------

def main(argv=None):
    p = argparse.ArgumentParser(
        description="Export a torch.save()d PyTorch LSTM/GRU model as an lstmserve "
                    "model version directory (config.json + model.safetensors).",
        epilog="MODULE.pt must be a whole module saved with torch.save(module, path) "
               "(not a state_dict). It is either a bare nn.LSTM / nn.GRU, or an nn.Module "
               "with attribute `rnn` (nn.LSTM or nn.GRU, unidirectional) and optionally "
               "`head` (nn.Linear), `activation` (str), `normalization` (dict with "
               "input_mean/input_std and/or output_mean/output_std), `description`, "
               "`input_names`, `output_names`. Its class must be importable when loading: "
               "the current directory is put on sys.path, or pass --import. OUT_DIR is "
               "the version directory, e.g. models/mymodel/1.")
    p.add_argument("module", metavar="MODULE.pt", help="torch.save()d nn.Module")
    p.add_argument("out_dir", metavar="OUT_DIR", help="version directory to write, e.g. models/mymodel/1")
    p.add_argument("--dtype", choices=DTYPES, default="F32", help="storage type of all weights (default F32)")
    p.add_argument("--activation", choices=ACTIVATIONS, default=None,
                   help="activation after the head (default: the module's `activation` attribute, else identity)")
    p.add_argument("--description", default=None, help="free text stored in config.json")
    p.add_argument("--input-names", default=None, help="comma-separated names, one per input feature")
    p.add_argument("--output-names", default=None, help="comma-separated names, one per output")
    p.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                   help="import this Python module first (e.g. the one defining your model class); repeatable")
    args = p.parse_args(argv)

    sys.path.insert(0, os.getcwd())
    for m in args.imports:
        __import__(m)
    obj = torch.load(args.module, map_location="cpu")
    if isinstance(obj, (nn.LSTM, nn.GRU, nn.RNN)):
        rnn, head, holder = obj, None, None
    elif isinstance(obj, nn.Module) and hasattr(obj, "rnn"):
        rnn, head, holder = obj.rnn, getattr(obj, "head", None), obj
    else:
        p.error(f"{args.module}: expected an nn.LSTM/nn.GRU or an nn.Module with an `rnn` "
                f"attribute; got {type(obj).__name__}")

    def attr(name, default=None):
        return getattr(holder, name, default) if holder is not None else default

    def names(arg, name):
        return arg.split(",") if arg is not None else attr(name)

    activation = args.activation or attr("activation") or "identity"
    try:
        cfg = export_model(args.out_dir, rnn, head=head, activation=activation,
                           normalization=attr("normalization"), dtype=args.dtype,
                           description=args.description if args.description is not None else (attr("description") or ""),
                           input_names=names(args.input_names, "input_names"),
                           output_names=names(args.output_names, "output_names"))
    except ValueError as e:
        p.error(str(e))
    print(f"wrote {args.out_dir}/config.json and model.safetensors ({args.dtype}); "
          f"state size {state_size(cfg)} floats")
    print(json.dumps(cfg, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
