#!/usr/bin/env python3
"""make_seeds.py: writes the valid seeds of fuzz/corpus/ that the tests do
not have (docs/fuzzing.md): small ONNX models of standard ops (an ANN for
--spiking, a convolutional one), and valid .npy, safetensors and IDX files
(the malformed ones come from tests/bad/). The models export_*.onnx are
snnc's own exports (snnc export M.snn --init 1 -o export_M.onnx) of the
golden tests' models and of the examples with their sizes cut to a few
neurons.

    python3 fuzz/make_seeds.py

needs the onnx and numpy packages (Debian: python3-onnx, python3-numpy).
"""
import gzip
import json
import os
import struct

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
rng = np.random.default_rng(1)


def init(name, *shape):
    return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)


def save(model, name):
    model.opset_import.extend([helper.make_opsetid("snn", 1)])
    helper.set_model_props(model, {"snn.timesteps": "3"})
    onnx.checker.check_model(model)
    with open(os.path.join(HERE, "onnx", name), "wb") as f:
        f.write(model.SerializeToString())


def ann():
    """Gemm, Relu, MatMul, Add, Mul, Identity, Dropout: for --spiking Relu=..."""
    nodes = [
        helper.make_node("Flatten", ["x"], ["f"], axis=1),
        helper.make_node("Gemm", ["f", "w1", "b1"], ["h1"], transB=1),
        helper.make_node("Relu", ["h1"], ["r1"]),
        helper.make_node("Dropout", ["r1"], ["d1"]),
        helper.make_node("MatMul", ["d1", "w2"], ["h2"]),
        helper.make_node("Add", ["h2", "b2"], ["a2"]),
        helper.make_node("Mul", ["a2", "s"], ["m2"]),
        helper.make_node("Identity", ["m2"], ["y"]),
    ]
    g = helper.make_graph(nodes, "Ann", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
                          [init("w1", 4, 6), init("b1", 4), init("w2", 4, 2), init("b2", 2), init("s", 1)])
    save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), "ann.onnx")


def conv():
    """Conv, BatchNormalization, snn::LIF, MaxPool, AveragePool, Add,
    Transpose, Reshape, GlobalAveragePool, snn::PLIF."""
    nodes = [
        helper.make_node("Conv", ["x", "cw", "cb"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c", "g", "be", "mu", "var"], ["bn"]),
        helper.make_node("LIF", ["bn"], ["s1"], domain="snn", tau=2.0),
        helper.make_node("MaxPool", ["s1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("AveragePool", ["s1"], ["p2"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Add", ["p1", "p2"], ["cat"]),
        helper.make_node("GlobalAveragePool", ["cat"], ["gap"]),
        helper.make_node("Reshape", ["gap", "shape"], ["r"]),
        helper.make_node("Gemm", ["r", "w", "b"], ["o"], transB=1),
        helper.make_node("PLIF", ["o"], ["y"], domain="snn"),
    ]
    shape = numpy_helper.from_array(np.array([1, 2], dtype=np.int64), "shape")
    g = helper.make_graph(nodes, "Conv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
                          [init("cw", 2, 1, 3, 3), init("cb", 2), init("g", 2), init("be", 2), init("mu", 2),
                           numpy_helper.from_array(np.ones(2, np.float32), "var"), shape, init("w", 2, 2),
                           init("b", 2)])
    save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), "conv.onnx")


def npy():
    d = os.path.join(HERE, "npy")
    os.makedirs(d, exist_ok=True)
    for name, a in [("f4.npy", rng.standard_normal((2, 3)).astype(np.float32)),
                    ("f8.npy", rng.standard_normal((3,))),
                    ("u1.npy", np.arange(6, dtype=np.uint8).reshape(1, 2, 3)),
                    ("i8.npy", np.arange(4, dtype=np.int64)),
                    ("b1.npy", np.array([True, False])),
                    ("scalar.npy", np.float32(1.5)),
                    ("fortran.npy", np.asfortranarray(np.ones((1, 3), np.float32)))]:
        np.save(os.path.join(d, name), a)


def safetensors():
    for sub in ("safetensors", "stload"):
        d = os.path.join(HERE, sub)
        os.makedirs(d, exist_ok=True)
        tensors = [("b", "F32", [3], struct.pack("<3f", 1, 2, 3)),
                   ("s", "F16", [], struct.pack("<e", 0.5)),
                   ("w", "BF16", [2, 3], b"\x80\x3f" * 6)]
        header, off, data = {"__metadata__": {"format": "pt"}}, 0, b""
        for name, dt, shape, raw in tensors:
            header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(raw)]}
            off += len(raw)
            data += raw
        text = json.dumps(header).encode()
        text += b" " * (-len(text) % 8)
        with open(os.path.join(d, "wbs.safetensors"), "wb") as f:
            f.write(struct.pack("<Q", len(text)) + text + data)


def idx():
    d = os.path.join(HERE, "idx")
    os.makedirs(d, exist_ok=True)
    images = struct.pack(">BBBB3I", 0, 0, 8, 3, 2, 3, 3) + bytes(range(18))
    labels = struct.pack(">BBBBI", 0, 0, 8, 1, 2) + b"\x01\x07"
    with open(os.path.join(d, "images.idx"), "wb") as f:
        f.write(images)
    with open(os.path.join(d, "labels.idx.gz"), "wb") as f:
        f.write(gzip.compress(labels, mtime=0))
    with open(os.path.join(d, "images.idx.gz"), "wb") as f:
        f.write(gzip.compress(images, mtime=0))


if __name__ == "__main__":
    ann()
    conv()
    npy()
    safetensors()
    idx()
