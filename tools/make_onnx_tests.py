#!/usr/bin/env python3
"""Write the ONNX import test data in tests/onnx/ (read by
tests/model/onnx_import_test.cc).

    /usr/bin/python3 tools/make_onnx_tests.py     # rewrites tests/onnx/*/

Needs Debian's python3-torch, python3-numpy, python3-protobuf, and the ONNX
schema of libonnx-dev (/usr/include/onnx/onnx.proto, compiled here with
protoc): the python `onnx` package is not used, and torch.onnx.export does
not need it.

Three kinds of case, one directory each:

  torch_*   a torch module (nn.LSTM / nn.GRU / nn.RNN, 1-3 layers, nn.Linear
            head, activations, batch_first, last-step outputs, explicit
            initial-state inputs) exported with torch.onnx.export; the
            expected outputs are the module's own, run in float64.
  graph_*   a graph built here node by node, one per operator attribute the
            importer supports (peepholes, clip, input_forget, layout,
            linear_before_reset, RNN activations with alpha/beta, Gemm and
            MatMul+Add heads, glue); the expected outputs come from
            tools/onnx_reference.py, the ONNX operators in numpy.
  error_*   a graph the importer must refuse; expected_error.txt holds
            substrings of the message, one per line.

Files: model.onnx; input.csv (T rows x input_size, one session's steps);
expected_output.csv (T rows x output_size: the output after each step, i.e.
what the graph returns for the sequence ending at that step).
"""

import os
import shutil
import subprocess
import sys
import tempfile
import zlib

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import onnx_reference as R  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(REPO, "tests", "onnx")
ONNX_PROTO = "/usr/include/onnx/onnx.proto"


def load_onnx_pb2():
    d = tempfile.mkdtemp(prefix="onnx_pb2_")
    subprocess.run(["protoc", f"--proto_path={os.path.dirname(ONNX_PROTO)}",
                    f"--python_out={d}", ONNX_PROTO], check=True)
    sys.path.insert(0, d)
    import onnx_pb2
    return onnx_pb2


P = load_onnx_pb2()


def write_csv(path, rows):
    with open(path, "w") as f:
        for r in np.atleast_2d(rows):
            f.write(",".join("%.9g" % v for v in r) + "\n")


def f32(a):
    return np.asarray(a, np.float32).astype(np.float64)


def case_dir(name):
    d = os.path.join(OUT, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


# --- torch.onnx.export cases ------------------------------------------------

class Net(nn.Module):
    def __init__(self, rnn, head=None, act=None, last_step=False, batch_first=False,
                 final_state=None):
        super().__init__()
        self.rnn, self.head, self.act = rnn, head, act
        self.last_step, self.batch_first = last_step, batch_first
        self.final_state = final_state

    def forward(self, x, *state):
        y, hn = self.rnn(x, *state) if state else self.rnn(x)
        if isinstance(hn, tuple):
            hn = hn[0]
        if self.final_state == "last":  # h_n[-1]: the last layer's final h
            y = hn[-1]
        elif self.final_state == "squeeze":  # one layer: h_n.squeeze(0)
            y = hn.squeeze(0)
        elif self.last_step:
            y = y[:, -1] if self.batch_first else y[-1]
        if self.head is not None:
            y = self.head(y)
        if self.act == "sigmoid":
            y = torch.sigmoid(y)
        elif self.act == "tanh":
            y = torch.tanh(y)
        elif self.act == "softmax":
            y = torch.softmax(y, dim=-1)
        return y


def visible_init(module, rng):
    """Unit-scale pre-activations, so every gate and layer matters (as
    tools/make_golden.py's init_weights)."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            fan = p.shape[1] if p.dim() == 2 else 1
            std = (1.5 if "ih" in name or name.startswith("head") else 1.0) / np.sqrt(fan) \
                if p.dim() == 2 else 0.4
            p.copy_(torch.from_numpy(rng.normal(0, std, tuple(p.shape)).astype(np.float32)))


def torch_case(name, cell, inp, hidden, layers, T, seed, head=None, act=None,
               last_step=False, batch_first=False, state_inputs=False, opset=14,
               nonlinearity="tanh", fold=True, final_state=None, dynamic=False):
    d = case_dir(name)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    kw = dict(batch_first=batch_first)
    if cell == "lstm":
        rnn = nn.LSTM(inp, hidden, layers, **kw)
    elif cell == "gru":
        rnn = nn.GRU(inp, hidden, layers, **kw)
    else:
        rnn = nn.RNN(inp, hidden, layers, nonlinearity=nonlinearity, **kw)
    net = Net(rnn, nn.Linear(hidden, head) if head else None, act, last_step, batch_first,
              final_state)
    last_step = last_step or final_state is not None  # expected: per prefix
    visible_init(net, rng)
    net.eval()
    x = f32(rng.normal(0, 1, (T, inp)))
    shape = (1, T, inp) if batch_first else (T, 1, inp)
    example = torch.tensor(x.reshape(shape), dtype=torch.float32)
    args = (example,)
    names = ["x"]
    if state_inputs:
        zeros = torch.zeros(layers, 1, hidden)
        args = (example, (zeros, zeros)) if cell == "lstm" else (example, zeros)
        names = ["x", "h0", "c0"] if cell == "lstm" else ["x", "h0"]
    torch.onnx.export(net, args, os.path.join(d, "model.onnx"), opset_version=opset,
                      input_names=names, output_names=["y"], do_constant_folding=fold,
                      dynamic_axes=({"x": {0: "time", 1: "batch"} if not batch_first else
                                     {0: "batch", 1: "time"}} if dynamic else None))
    # Expected: per step t, the module on steps 0..t (float64), last row.
    net64 = net.double()
    rows = []
    with torch.no_grad():
        if last_step:
            for t in range(T):
                xt = torch.from_numpy(x[:t + 1].reshape((1, t + 1, inp) if batch_first
                                                        else (t + 1, 1, inp)))
                rows.append(net64(xt).reshape(-1).numpy())
        else:
            y = net64(torch.from_numpy(x.reshape(shape)))
            rows = y.reshape(T, -1).numpy()
    write_csv(os.path.join(d, "input.csv"), x)
    write_csv(os.path.join(d, "expected_output.csv"), np.array(rows))


# --- hand-built graphs --------------------------------------------------------

def tensor(name, a, dtype="float"):
    t = P.TensorProto()
    t.name = name
    a = np.asarray(a)
    t.dims.extend(a.shape)
    if dtype == "float":
        t.data_type = P.TensorProto.FLOAT
        t.raw_data = a.astype("<f4").tobytes()
    else:
        t.data_type = P.TensorProto.INT64
        t.raw_data = a.astype("<i8").tobytes()
    return t


def node(op, inputs, outputs, name=None, **attrs):
    n = P.NodeProto()
    n.op_type = op
    n.name = name or f"{op.lower()}_{outputs[0]}"
    n.input.extend(inputs)
    n.output.extend(outputs)
    for k, v in attrs.items():
        a = n.attribute.add()
        a.name = k
        if isinstance(v, bool) or isinstance(v, int):
            a.type, a.i = P.AttributeProto.INT, int(v)
        elif isinstance(v, float):
            a.type, a.f = P.AttributeProto.FLOAT, v
        elif isinstance(v, str):
            a.type, a.s = P.AttributeProto.STRING, v.encode()
        elif isinstance(v, P.TensorProto):
            a.type = P.AttributeProto.TENSOR
            a.t.CopyFrom(v)
        elif all(isinstance(e, str) for e in v):
            a.type = P.AttributeProto.STRINGS
            a.strings.extend(e.encode() for e in v)
        elif all(isinstance(e, int) for e in v):
            a.type = P.AttributeProto.INTS
            a.ints.extend(v)
        else:
            a.type = P.AttributeProto.FLOATS
            a.floats.extend(v)
    return n


def model(nodes, inits, inputs, outputs, opset=14):
    m = P.ModelProto()
    m.ir_version = 7
    m.producer_name = "tools/make_onnx_tests.py"
    o = m.opset_import.add()
    o.domain, o.version = "", opset
    g = m.graph
    g.name = "test"
    g.node.extend(nodes)
    g.initializer.extend(inits)
    for name, dims in inputs:
        v = g.input.add()
        v.name = name
        v.type.tensor_type.elem_type = P.TensorProto.FLOAT
        for dim in dims:
            dd = v.type.tensor_type.shape.dim.add()
            if isinstance(dim, str):
                dd.dim_param = dim
            else:
                dd.dim_value = dim
    for name in outputs:
        v = g.output.add()
        v.name = name
        v.type.tensor_type.elem_type = P.TensorProto.FLOAT
    return m


def write_model(d, m):
    with open(os.path.join(d, "model.onnx"), "wb") as f:
        f.write(m.SerializeToString())


def weights(rng, G, H, inp, bias=True, peep=False):
    """ONNX-layout W, R, B, P of one layer, float32-exact."""
    W = f32(rng.normal(0, 1.5 / np.sqrt(inp), (1, G * H, inp)))
    Rm = f32(rng.normal(0, 0.9 / np.sqrt(H), (1, G * H, H)))
    B = f32(rng.normal(0, 0.5, (1, 2 * G * H))) if bias else None
    Pp = f32(rng.normal(0, 0.5, (1, 3 * H))) if peep else None
    return W, Rm, B, Pp


def graph_case(name, cell, inp, H, T, seed, attrs=None, layers=1, bias=True, peep=False,
               layout=0, head=None, act=None, opset=14, zero_init=False, drop_bias_layer=None):
    """X -> `layers` recurrent nodes (Squeeze between) -> optional head -> act.
    head: None, "matmul" (MatMul + Add) or "gemm" (Reshape to 2-D, Gemm with
    transB=1, alpha/beta)."""
    attrs = attrs or {}
    d = case_dir(name)
    rng = np.random.default_rng(seed)
    op = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}[cell]
    G = {"lstm": 4, "gru": 3, "rnn": 1}[cell]
    x = f32(rng.normal(0, 1, (T, inp)))
    nodes, inits = [], []
    cur = "x"
    v = x[:, None, :] if layout == 0 else x[None]  # reference value in graph layout
    width = inp
    opset_axes = opset >= 13
    for k in range(layers):
        W, Rm, B, Pp = weights(rng, G, H, width, bias and k != drop_bias_layer, peep)
        names = [cur, f"W{k}", f"R{k}"]
        inits += [tensor(f"W{k}", W), tensor(f"R{k}", Rm)]
        if B is not None:
            names.append(f"B{k}")
            inits.append(tensor(f"B{k}", B))
        else:
            names.append("")
        h0 = None
        if zero_init:  # initial_h as an explicit zero initializer
            shape0 = (1, 1, H) if layout == 0 else (1, 1, H)
            names += ["", f"h0_{k}"]
            inits.append(tensor(f"h0_{k}", np.zeros(shape0)))
            h0 = np.zeros(shape0)
        if Pp is not None:
            while len(names) < 7:
                names.append("")
            names.append(f"P{k}")
            inits.append(tensor(f"P{k}", Pp))
        a = dict(attrs, hidden_size=H)
        if layout:
            a["layout"] = 1
        nodes.append(node(op, names, [f"Y{k}", f"Yh{k}"], name=f"{cell}{k}", **a))
        ref_kw = {}
        if "clip" in attrs:
            ref_kw["clip"] = attrs["clip"]
        if cell == "lstm":
            Y, _, _ = R.lstm(v, W, Rm, B, h0, None, Pp, input_forget=attrs.get("input_forget", 0),
                             layout=layout, **ref_kw)
        elif cell == "gru":
            Y, _ = R.gru(v, W, Rm, B, h0, attrs.get("linear_before_reset", 0), layout=layout,
                         **ref_kw)
        else:
            al = attrs.get("activation_alpha", [None])[0]
            be = attrs.get("activation_beta", [None])[0]
            Y, _ = R.rnn(v, W, Rm, B, h0, attrs.get("activations", ["Tanh"]), al, be,
                         layout=layout, **ref_kw)
        # Drop num_directions: axis 1 (layout 0) or 2 (layout 1).
        ax = 1 if layout == 0 else 2
        if opset_axes:
            inits.append(tensor(f"sq{k}", np.array([ax]), "int"))
            nodes.append(node("Squeeze", [f"Y{k}", f"sq{k}"], [f"S{k}"]))
        else:
            nodes.append(node("Squeeze", [f"Y{k}"], [f"S{k}"], axes=[ax]))
        v = Y[:, 0] if layout == 0 else Y[:, :, 0]
        cur = f"S{k}"
        width = H
    flat = v.reshape(T, width)  # per step (batch 1)
    out = flat
    if head:
        O = 3
        Wh = f32(rng.normal(0, 1.5 / np.sqrt(H), (O, H)))
        bh = f32(rng.normal(0, 0.3, O))
        if head == "matmul":
            inits += [tensor("Wt", Wh.T), tensor("bh", bh)]
            nodes += [node("MatMul", [cur, "Wt"], ["mm"]), node("Add", ["bh", "mm"], ["hd"])]
            out = flat @ Wh.T + bh
        else:
            alpha, beta = 0.8, 1.5
            inits += [tensor("shape2", np.array([-1, H]), "int"), tensor("Wh", Wh),
                      tensor("bh", bh[None])]
            nodes += [node("Reshape", [cur, "shape2"], ["flat"]),
                      node("Gemm", ["flat", "Wh", "bh"], ["hd"], transB=1, alpha=alpha, beta=beta)]
            out = alpha * flat @ Wh.T + beta * bh
        cur = "hd"
    if act:
        nodes.append(node({"sigmoid": "Sigmoid", "tanh": "Tanh", "softmax": "Softmax"}[act],
                          [cur], ["out"]))
        if act == "sigmoid":
            out = 1 / (1 + np.exp(-out))
        elif act == "tanh":
            out = np.tanh(out)
        else:
            e = np.exp(out - out.max(axis=1, keepdims=True))
            out = e / e.sum(axis=1, keepdims=True)
        cur = "out"
    xshape = [T, 1, inp] if layout == 0 else [1, T, inp]
    outputs = [cur] + ["Yh0"]  # a second output (a final state) is ignored
    write_model(d, model(nodes, inits, [("x", xshape)], outputs, opset))
    write_csv(os.path.join(d, "input.csv"), x)
    write_csv(os.path.join(d, "expected_output.csv"), out)


# --- graphs that must be refused --------------------------------------------

def error_case(name, messages, cell="lstm", attrs=None, extra_nodes=(), out=None,
               inputs_override=None, extra_inits=(), opset=14, two_layers_h=None, pre_nodes=()):
    d = case_dir(name)
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    op = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}[cell]
    G = {"lstm": 4, "gru": 3, "rnn": 1}[cell]
    H, inp = 4, 3
    W, Rm, B, _ = weights(rng, G, H, inp)
    replaced = {t.name for t in extra_inits}
    inits = [t for t in (tensor("W", W), tensor("R", Rm), tensor("B", B))
             if t.name not in replaced] + list(extra_inits)
    ins = inputs_override or ["x", "W", "R", "B"]
    nodes = list(pre_nodes) + [node(op, ins, ["Y", "Yh"], name="rnn0",
                                    **dict(attrs or {}, hidden_size=H))]
    if two_layers_h:
        W2, R2, B2, _ = weights(rng, G, two_layers_h, H)
        inits += [tensor("W2", W2), tensor("R2", R2), tensor("B2", B2),
                  tensor("ax", np.array([1]), "int")]
        nodes += [node("Squeeze", ["Y", "ax"], ["S"]),
                  node(op, ["S", "W2", "R2", "B2"], ["Y2"], name="rnn1", hidden_size=two_layers_h)]
    nodes += list(extra_nodes)
    write_model(d, model(nodes, inits, [("x", [5, 1, inp])], [out or nodes[-1].output[0]], opset))
    with open(os.path.join(d, "expected_error.txt"), "w") as f:
        f.write("\n".join(messages) + "\n")


def main():
    torch.set_num_threads(1)
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    # Exported from PyTorch: LSTM and GRU, 1-3 layers, with a linear head.
    torch_case("torch_lstm_l1_head3", "lstm", 4, 16, 1, T=30, seed=1, head=3)
    torch_case("torch_lstm_l2_head2_sigmoid", "lstm", 3, 12, 2, T=25, seed=2, head=2, act="sigmoid")
    torch_case("torch_lstm_l3_head4_softmax_batchfirst", "lstm", 5, 10, 3, T=20, seed=3, head=4,
               act="softmax", batch_first=True)
    torch_case("torch_gru_l1_head2", "gru", 2, 20, 1, T=30, seed=4, head=2)
    torch_case("torch_gru_l2_head3_tanh_opset11", "gru", 4, 8, 2, T=25, seed=5, head=3, act="tanh",
               opset=11)
    torch_case("torch_gru_l3_head1_batchfirst", "gru", 3, 9, 3, T=20, seed=6, head=1,
               batch_first=True)
    torch_case("torch_lstm_l2_laststep_head2", "lstm", 3, 8, 2, T=15, seed=7, head=2,
               last_step=True)
    torch_case("torch_lstm_l2_stateinputs_head2", "lstm", 3, 8, 2, T=15, seed=8, head=2,
               state_inputs=True)
    torch_case("torch_gru_l1_nohead_opset9", "gru", 3, 6, 1, T=15, seed=9, opset=9)
    # Without constant folding the gate reordering is left to Slice/Concat
    # nodes on the weights, which the importer evaluates.
    torch_case("torch_lstm_l2_head2_nofolding", "lstm", 3, 7, 2, T=15, seed=12, head=2,
               fold=False)
    torch_case("torch_gru_l2_head2_nofolding_opset9", "gru", 3, 7, 2, T=15, seed=13, head=2,
               fold=False, opset=9)
    # The final state h_n as the output: h_n[-1] (Concat of the layers' Y_h,
    # Gather) and h_n.squeeze(0).
    torch_case("torch_lstm_l2_finalh_head2", "lstm", 3, 8, 2, T=15, seed=14, head=2,
               final_state="last")
    torch_case("torch_gru_l1_finalh_squeeze_head2_sigmoid", "gru", 3, 8, 1, T=15, seed=15,
               head=2, act="sigmoid", final_state="squeeze")
    torch_case("torch_rnn_l3_finalh_head1_batchfirst", "rnn", 2, 6, 3, T=15, seed=16, head=1,
               final_state="last", batch_first=True)
    # Time and batch left dynamic: the zero initial states come from Shape
    # arithmetic on x at run time.
    torch_case("torch_lstm_l2_head3_dynamic_axes", "lstm", 3, 8, 2, T=15, seed=17, head=3,
               dynamic=True)
    torch_case("torch_gru_l2_laststep_head2_dynamic_batchfirst", "gru", 3, 8, 2, T=15, seed=18,
               head=2, last_step=True, batch_first=True, dynamic=True)
    torch_case("torch_rnn_l2_tanh_head2", "rnn", 3, 10, 2, T=20, seed=10, head=2)
    torch_case("torch_rnn_l1_relu_head3_softmax", "rnn", 4, 12, 1, T=20, seed=11, head=3,
               act="softmax", nonlinearity="relu")

    # Hand-built: each operator attribute against the numpy reference.
    graph_case("graph_lstm_peepholes", "lstm", 3, 6, 20, 101, peep=True)
    graph_case("graph_lstm_clip", "lstm", 3, 6, 20, 102, attrs={"clip": 0.5})
    graph_case("graph_lstm_input_forget", "lstm", 3, 6, 20, 103, attrs={"input_forget": 1})
    graph_case("graph_lstm_all_layout1_l2_gemm_softmax", "lstm", 3, 6, 20, 104, layers=2,
               peep=True, attrs={"clip": 0.8, "input_forget": 1}, layout=1, head="gemm",
               act="softmax")
    graph_case("graph_lstm_nobias_zeroinit_opset12", "lstm", 2, 5, 20, 105, bias=False,
               zero_init=True, opset=12)
    graph_case("graph_gru_lbr0_l2_matmul_tanh", "gru", 3, 7, 20, 106, layers=2,
               attrs={"linear_before_reset": 0}, head="matmul", act="tanh")
    graph_case("graph_gru_lbr1_clip_layout1", "gru", 3, 7, 20, 107,
               attrs={"linear_before_reset": 1, "clip": 0.6}, layout=1)
    graph_case("graph_gru_default_lbr0_onebias", "gru", 3, 5, 20, 108, layers=2,
               drop_bias_layer=1)
    graph_case("graph_rnn_default_tanh_opset7", "rnn", 3, 6, 20, 109, opset=7)
    graph_case("graph_rnn_relu_gemm", "rnn", 3, 6, 20, 110, attrs={"activations": ["Relu"]},
               head="gemm")
    graph_case("graph_rnn_leakyrelu_alpha", "rnn", 3, 6, 20, 111,
               attrs={"activations": ["LeakyRelu"], "activation_alpha": [0.3]})
    graph_case("graph_rnn_scaledtanh_alpha_beta_clip", "rnn", 3, 6, 20, 112,
               attrs={"activations": ["ScaledTanh"], "activation_alpha": [1.4],
                      "activation_beta": [0.7], "clip": 0.9})
    graph_case("graph_rnn_softsign_l2", "rnn", 3, 6, 20, 116, layers=2,
               attrs={"activations": ["Softsign"]})
    graph_case("graph_rnn_hardsigmoid_default_alpha_beta", "rnn", 3, 6, 20, 113,
               attrs={"activations": ["HardSigmoid"]})
    graph_case("graph_rnn_affine_sigmoid_head", "rnn", 3, 6, 20, 114,
               attrs={"activations": ["Affine"], "activation_alpha": [0.5],
                      "activation_beta": [0.1]}, head="matmul", act="sigmoid")
    graph_case("graph_rnn_elu_alpha", "rnn", 3, 6, 20, 115,
               attrs={"activations": ["elu"], "activation_alpha": [0.6]})

    # Refused, with the node, the attribute and the value named.
    error_case("error_bidirectional", ["node 'rnn0' (LSTM)", 'attribute direction is "bidirectional"'],
               attrs={"direction": "bidirectional"})
    error_case("error_reverse", ["node 'rnn0' (GRU)", 'attribute direction is "reverse"'],
               cell="gru", attrs={"direction": "reverse"})
    error_case("error_lstm_activations",
               ["node 'rnn0' (LSTM)", "attribute activations is [Relu, Tanh, Tanh]"],
               attrs={"activations": ["Relu", "Tanh", "Tanh"]})
    error_case("error_rnn_activation", ["node 'rnn0' (RNN)", "attribute activations is [Gelu]"],
               cell="rnn", attrs={"activations": ["Gelu"]})
    error_case("error_unsupported_op", ["node 'relu0' (Relu)", "is not a supported operator"],
               extra_nodes=[node("Relu", ["Y"], ["r"], name="relu0")])
    error_case("error_sequence_lens", ["node 'rnn0' (LSTM)", "input sequence_lens is given"],
               inputs_override=["x", "W", "R", "B", "lens"],
               extra_inits=[tensor("lens", np.array([5]), "int")])
    error_case("error_nonzero_initial_h", ["node 'rnn0' (GRU)", "input initial_h ('h0')",
                                           "non-zero values"],
               cell="gru", inputs_override=["x", "W", "R", "B", "", "h0"],
               extra_inits=[tensor("h0", np.full((1, 1, 4), 0.5))])
    error_case("error_opset15", ["imports ONNX opset 15; expected an opset from 7 to 14"],
               opset=15)
    error_case("error_slice_features", ["(Slice)", "slices the sequence's features axis"],
               extra_inits=[tensor("s0", np.array([0]), "int"), tensor("s1", np.array([2]), "int"),
                            tensor("s3", np.array([3]), "int")],
               extra_nodes=[node("Slice", ["Y", "s0", "s1", "s3"], ["cut"], name="cut")])
    error_case("error_hidden_size_differs",
               ["node 'rnn1' (LSTM)", "hidden_size is 6 but the first recurrent layer's is 4"],
               two_layers_h=6)
    error_case("error_weights_not_constant", ["node 'rnn0' (RNN)", "input W is not a constant"],
               cell="rnn", inputs_override=["x", "x", "R", "B"])
    error_case("error_unknown_attribute",
               ["node 'rnn0' (GRU)", "attribute output_sequence is not one the GRU operator defines"],
               cell="gru", attrs={"output_sequence": 1})
    error_case("error_first_layer_final_state",
               ["node 'hd' (MatMul)", "is a recurrent node's final state Y_h/Y_c"],
               two_layers_h=4,
               extra_inits=[tensor("Wt", np.ones((4, 2))), tensor("zero", np.array(0), "int")],
               extra_nodes=[node("Gather", ["Yh", "zero"], ["h0"], name="g"),
                            node("MatMul", ["h0", "Wt"], ["mm"], name="hd")])
    error_case("error_huge_constant", ["node 'fill' (ConstantOfShape)", "fills shape [1000000000, "
                                       "1000000000, 4]", "more than 268435456 elements"],
               cell="gru", inputs_override=["x", "W", "R", "B", "", "h0"],
               extra_inits=[tensor("shape", np.array([10**9, 10**9, 4]), "int")],
               pre_nodes=[node("ConstantOfShape", ["shape"], ["h0"], name="fill")], out="Y")
    error_case("error_branch", ["node 'late' (Sigmoid)",
                                "is an earlier result than the network's latest"],
               extra_inits=[tensor("ax", np.array([1]), "int"), tensor("Wt", np.ones((4, 2)))],
               extra_nodes=[node("Squeeze", ["Y", "ax"], ["S"]),
                            node("MatMul", ["S", "Wt"], ["mm"]),
                            node("Sigmoid", ["S"], ["late"], name="late")])
    external = tensor("R", np.zeros((1, 16, 4)))
    external.ClearField("raw_data")
    external.data_location = P.TensorProto.EXTERNAL
    entry = external.external_data.add()
    entry.key, entry.value = "location", "weights.bin"
    error_case("error_external_data", ["initializer 'R' keeps its data in an external file"],
               extra_inits=[external])
    for d in sorted(os.listdir(OUT)):
        print(d)


if __name__ == "__main__":
    main()
