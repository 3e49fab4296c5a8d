#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora (tests/fuzz/<target>/) from the
repository's models and a tiny model made here: small, real, valid inputs
plus a few edge cases. Deterministic; rerun after a format changes:

    tests/fuzz/make_seeds.py

Needs python3 and protoc (for the protobuf snapshots) only.
"""
import glob
import json
import math
import os
import random
import shutil
import struct
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# The tiny model of tests/fuzz/fuzz_util.h: LSTM, 2 inputs, 3 hidden units,
# one layer, a head of 2 outputs. State: h (3) then c (3).
IN, H, OUT, STATE = 2, 3, 2, 6
TINY_CONFIG = {"cell": "lstm", "input_size": IN, "hidden_size": H,
               "num_layers": 1, "head": {"output_size": OUT,
                                         "activation": "identity"}}
rng = random.Random(11)


def out_dir(target):
    d = os.path.join(HERE, target)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def write(d, name, data):
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def f16(x):
    return struct.pack("<e", x)


def bf16(x):
    return struct.pack("<I", struct.unpack("<I", struct.pack("<f", x))[0])[2:]


def safetensors(tensors, metadata=None):
    """tensors: name -> (dtype, shape, list of values)."""
    header, data = {}, b""
    pack = {"F32": lambda v: struct.pack("<f", v), "F16": f16, "BF16": bf16,
            "I8": lambda v: struct.pack("<b", int(v))}
    for name in sorted(tensors):
        dtype, shape, values = tensors[name]
        raw = b"".join(pack[dtype](v) for v in values)
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    if metadata is not None:
        header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def tiny_tensors(dtype="F32", int8=False):
    def vals(n):
        return [round(rng.uniform(-0.5, 0.5), 3) for _ in range(n)]
    t = {}
    for name, shape in [("rnn.weight_ih_l0", [4 * H, IN]),
                        ("rnn.weight_hh_l0", [4 * H, H])]:
        n = shape[0] * shape[1]
        if int8:
            t[name] = ("I8", shape, [rng.randint(-127, 127) for _ in range(n)])
            t[name + ".scale"] = ("F32", [shape[0]],
                                  [0.004] * shape[0])
        else:
            t[name] = (dtype, shape, vals(n))
    t["rnn.bias_ih_l0"] = ("F32", [4 * H], vals(4 * H))
    t["rnn.bias_hh_l0"] = ("F32", [4 * H], vals(4 * H))
    t["head.weight"] = ("F32", [OUT, H], vals(OUT * H))
    t["head.bias"] = ("F32", [OUT], vals(OUT))
    return t


def model_config():
    d = out_dir("model_config")
    write(d, "tiny.json", json.dumps(TINY_CONFIG))
    picks = ["lstm_l1_in3_h16_head2_identity_norm",
             "lstm_l2_in3_h12_peephole_inputforget_clip_randstate",
             "lstm_l2_in5_h24_proj8_nohead_randstate",
             "gru_l1_in3_h12_resetfirst_nobias_clip",
             "gru_l1_in4_h48_head3_sigmoid_bf16_randstate",
             "rnn_l1_in3_h10_scaled_tanh_randstate",
             "rnn_l1_in3_h10_affine"]
    for p in picks:
        shutil.copy(os.path.join(ROOT, "tests/golden", p, "model/1/config.json"),
                    os.path.join(d, p + ".json"))
    for c in sorted(glob.glob(os.path.join(ROOT, "models/*/*/config.json"))):
        name = c.split(os.sep)[-3]
        with open(c, "rb") as f:
            data = f.read()
        if len(data) <= 16384:
            write(d, "bundled_" + name + ".json", data)
    write(d, "forecast.json", json.dumps(dict(TINY_CONFIG, forecast={
        "feedback": [0, 1], "output_scale": [0.1, 0.2]})))
    write(d, "edge_empty_object.json", "{}")
    write(d, "edge_not_object.json", "[1, 2, 3]")
    write(d, "edge_deep.json", "[" * 200 + "]" * 200)
    write(d, "edge_huge_sizes.json", json.dumps(
        {"cell": "lstm", "input_size": 2**31 - 1, "hidden_size": 2**40,
         "num_layers": -1}))
    write(d, "edge_bad_norm.json", json.dumps(dict(TINY_CONFIG, normalization={
        "input_mean": [0, 0], "input_std": [0, -1]})))


def safetensors_seeds():
    d = out_dir("safetensors")
    write(d, "tiny_f32.safetensors", safetensors(tiny_tensors("F32")))
    write(d, "tiny_f16.safetensors", safetensors(tiny_tensors("F16")))
    write(d, "tiny_bf16.safetensors",
          safetensors(tiny_tensors("BF16"), {"format": "pt"}))
    write(d, "tiny_int8.safetensors", safetensors(tiny_tensors(int8=True)))
    for g in ["lstm_l1_in1_h8_nohead", "gru_l1_in1_h8_nohead",
              "rnn_l1_in3_h10_affine"]:
        shutil.copy(os.path.join(ROOT, "tests/golden", g,
                                 "model/1/model.safetensors"),
                    os.path.join(d, g + ".safetensors"))
    write(d, "edge_empty.safetensors", b"")
    write(d, "edge_header_only.safetensors", struct.pack("<Q", 2) + b"{}")
    write(d, "edge_header_past_end.safetensors",
          struct.pack("<Q", 1 << 40) + b"{}")
    write(d, "edge_specials.safetensors", safetensors(
        {"x": ("F16", [4], [math.inf, -math.inf, math.nan, 6.0e-8]),
         "y": ("BF16", [0, 3], []), "z": ("F32", [], [1.5])}))
    bad = {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
           "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}
    h = json.dumps(bad).encode()
    write(d, "edge_overlap.safetensors",
          struct.pack("<Q", len(h)) + h + b"\0" * 12)


def replay_blob(chunks):
    """chunks: (first_step, steps, inputs, outputs)."""
    if not chunks:
        return b""
    out = b"LRP1" + struct.pack("<I", len(chunks))
    for first, steps, ins, outs in chunks:
        out += struct.pack("<qIII", first, steps, len(ins), len(outs))
        out += struct.pack("<%df" % len(ins), *ins)
        out += struct.pack("<%df" % len(outs), *outs)
    return out


def tiny_replay(first, chunk_steps):
    chunks, step = [], first
    for steps in chunk_steps:
        chunks.append((step, steps,
                       [rng.uniform(-1, 1) for _ in range(steps * IN)],
                       [rng.uniform(-1, 1) for _ in range(steps * OUT)]))
        step += steps
    return chunks, step


def store_record():
    d = out_dir("store_record")
    write(d, "state", b"\0" + struct.pack("<6f", *[0.1 * i for i in range(6)]))
    write(d, "state_empty", b"\0")
    write(d, "replay_empty", b"\1")
    write(d, "replay_one", b"\1" + replay_blob(tiny_replay(0, [1])[0]))
    write(d, "replay_three", b"\1" + replay_blob(tiny_replay(40, [4, 1, 3])[0]))
    write(d, "edge_count_zero", b"\1LRP1" + struct.pack("<I", 0))
    write(d, "edge_truncated", b"\1" + replay_blob(tiny_replay(0, [2])[0])[:-3])
    write(d, "edge_huge_floats", b"\1LRP1" + struct.pack("<IqIII", 1, 0, 1,
                                                        0xFFFFFFFF, 0))


def refs_blob(refs):
    """Schema 2's replay column: refs of (first_step, steps, inputs,
    outputs, segment, offset)."""
    out = b"LRR1" + struct.pack("<I", len(refs))
    for ref in refs:
        out += struct.pack("<qIIIqQ", *ref)
    return out


def store_rows():
    """tests/fuzz/store_rows_fuzzer.cc: flags, the replay column's length
    (u16), the replay column, the segment's bytes. The fuzzer's session has
    chunks (0, 1 step) and (1, 1 step) of 2 inputs and 2 outputs each."""
    d = out_dir("store_rows")

    def seed(flags, replay, segment):
        return bytes([flags]) + struct.pack("<H", len(replay)) + replay + segment

    segment = struct.pack("<8f", *[float(i) for i in range(1, 9)])
    refs = refs_blob([(0, 1, 2, 2, 1, 0), (1, 1, 2, 2, 1, 16)])
    write(d, "as_written", seed(0, refs, segment))
    write(d, "as_written_then_update", seed(2, refs, segment))
    write(d, "dangling_segment", seed(3, refs, segment))
    write(d, "past_the_end", seed(2, refs_blob([(0, 1, 2, 2, 1, 24)]), segment))
    write(d, "next_step_zero", seed(6, refs, segment))
    write(d, "inline_replay", seed(2, replay_blob(tiny_replay(0, [2])[0]), b""))
    write(d, "huge_count", seed(2, b"LRR1" + struct.pack("<I", 0xFFFFFFFF), segment))


def tensor_text(name, rows, cols, values):
    return "%s { shape: %d shape: %d %s }" % (
        name, rows, cols, " ".join("values: %r" % v for v in values))


def protoc_encode(text):
    return subprocess.run(
        ["protoc", "--proto_path=" + os.path.join(ROOT, "proto"),
         "--encode=lstmserve.v1.SessionSnapshot", "lstmserve/v1/lstmserve.proto"],
        input=text.encode(), check=True, capture_output=True).stdout


def snapshots():
    """(name, dict) for valid snapshots of the tiny model."""
    state = [round(rng.uniform(-1, 1), 4) for _ in range(STATE)]
    fresh = {"session_id": "fresh", "model": "tiny", "version": 1,
             "next_step": 0, "state": [0.0] * STATE, "replay": []}
    chunks, end = tiny_replay(10, [2, 1, 3])
    busy = {"session_id": "s-1.a:b_c", "model": "tiny", "version": 1,
            "next_step": end, "state": state, "replay": chunks}
    return [("fresh", fresh), ("replay3", busy)]


def snapshot_proto():
    d = out_dir("snapshot_proto")
    for name, s in snapshots():
        parts = ['session_id: "%s"' % s["session_id"], 'model: "tiny"',
                 "version: 1", "next_step: %d" % s["next_step"]]
        parts += ["state: %r" % v for v in s["state"]]
        for first, steps, ins, outs in s["replay"]:
            parts.append("replay { first_step: %d %s %s }" % (
                first, tensor_text("inputs", steps, IN, ins),
                tensor_text("outputs", steps, OUT, outs)))
        if s["replay"]:
            first, steps, ins, outs = s["replay"][-1]
            parts.append("last_first_step: %d" % first)
            parts.append(tensor_text("last_inputs", steps, IN, ins))
            parts.append(tensor_text("last_outputs", steps, OUT, outs))
        write(d, name + ".pb", protoc_encode("\n".join(parts)))
    # An old client's snapshot: the last chunk only, no replay.
    write(d, "last_only.pb", protoc_encode(
        'session_id: "old" model: "tiny" version: 1 next_step: 5 ' +
        " ".join("state: 0.5" for _ in range(STATE)) +
        " last_first_step: 4 " + tensor_text("last_inputs", 1, IN, [1, 2]) +
        " " + tensor_text("last_outputs", 1, OUT, [3, 4])))
    write(d, "edge_empty.pb", b"")
    write(d, "edge_bad_shape.pb", protoc_encode(
        'session_id: "x" next_step: 1 replay { first_step: 0 '
        'inputs { shape: 1 shape: 2 shape: 3 } outputs { shape: 1 } }'))


def snapshot_json():
    d = out_dir("snapshot_json")
    for name, s in snapshots():
        j = {"format": "lstmserve.snapshot/1", "session_id": s["session_id"],
             "model": "tiny", "version": 1, "next_step": s["next_step"],
             "state": s["state"]}
        if s["replay"]:
            j["replay"] = [{"first_step": f,
                            "inputs": {"shape": [n, IN], "values": i},
                            "outputs": {"shape": [n, OUT], "values": o}}
                           for f, n, i, o in s["replay"]]
            f, n, i, o = s["replay"][-1]
            j["last_first_step"] = f
            j["last_inputs"] = {"shape": [n, IN], "values": i}
            j["last_outputs"] = {"shape": [n, OUT], "values": o}
        write(d, name + ".json", json.dumps(j, indent=1))
    write(d, "edge_wrong_format.json",
          '{"format": "lstmserve.state/1", "state": [1]}')
    write(d, "edge_big_numbers.json", json.dumps(
        {"format": "lstmserve.snapshot/1", "session_id": "a", "model": "m",
         "version": 2**63 - 1, "next_step": -1, "state": [1e39, 1e-46]}))
    write(d, "edge_deep_format.json",
          '{"format": ' + "[" * 100 + "]" * 100 + "}")


def validation():
    d = out_dir("validation")
    r = random.Random(5)
    for i, n in enumerate([0, 8, 64, 256, 1024]):
        write(d, "random_%d" % i, bytes(r.randrange(256) for _ in range(n)))


if __name__ == "__main__":
    model_config()
    safetensors_seeds()
    store_record()
    store_rows()
    snapshot_proto()
    snapshot_json()
    validation()
