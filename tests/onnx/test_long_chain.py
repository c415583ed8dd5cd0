#!/usr/bin/env python3
"""A long ONNX graph imports and runs correctly (not a timing test; the
timings are bench/import_scale.py's).

The model: x [N, 6] -> Gemm 6->5 -> Add of snn::Prev(the chain's end) ->
a chain of 5 * GROUPS nodes -> snn::LI, T = 3 steps. The chain repeats a
group whose result is relu of its input, exactly in float: Identity, Relu, Add
of the value to itself, Mul by a Constant 0.5 (a Constant node of its
own), Dropout (an identity at inference). Its nodes are named so as to
exercise the naming of layers: many share one name, some have none (the
layer is named after the output), some have characters snnc replaces, some
ask for a name snnc made already. The Prev's source is the chain's last
value, defined thousands of nodes later.

Checks:
1. `snnc run` gives, at every step, what NumPy computes from the weights:
   c_t = relu(W x + b + c_{t-1}), v_t = v_{t-1} + (c_t - v_{t-1}) / 2;
2. it is bitwise what `snnc run` gives on the same model without the
   chain (Gemm, Add of the Prev, one Relu, LI);
3. `snnc info` lists every layer of the chain but the Dropouts (removed
   at inference), under distinct names: the first ones as snnc has always
   named them (FIRST), and all of them as the rule of docs/onnx.md (1.6)
   gives (expected_names).
The generated C is built with -O0 (see run). Needs onnx and NumPy (else
skipped, 77).
"""
import os
import subprocess
import tempfile

import numpy as np

from snnc_ref import Checker, RunError, require, snnc_path

onnx = require("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

GROUPS = 700  # 5 nodes each: 3500 nodes and 700 Constants
T, B, IN, OUT = 3, 2, 6, 5
C = Checker()


def snnc(args):
    p = subprocess.run([snnc_path()] + list(args), capture_output=True, text=True)
    if p.returncode != 0:
        raise RunError("snnc %s: exit %d: %s" % (" ".join(args[:2]), p.returncode, p.stderr.strip()))
    return p


def name_of(i, kind):
    """The node name of the i-th node of the chain."""
    if kind == "Dropout":
        return "drop%d" % i
    r = i % 4
    if r == 0:
        return "block"
    if r == 1:
        return ""  # named after its output
    if r == 2:
        return "layer/%d.%s" % (i, kind)  # becomes layer_I_Kind
    return "block_%d" % (i // 8 + 2)  # a name snnc may have given to a "block" already


# The first layers of the chain as snnc names them (block_2 is taken when a
# second node asks for it, so that one is block_2_2, and the next "block"
# is block_3).
FIRST = ["block", "c2", "layer_2_Add", "block_2", "c6", "layer_6_Relu", "block_2_2", "block_3",
         "layer_10_Identity"]


def expected_names(nodes):
    """The layer names snnc gives the nodes (docs/onnx.md, 1.6 Names): the
    node's name (else its output's) with other characters made _, then _2,
    _3... until unused; "prev" is a keyword. Only what this model needs."""
    used = {"LongChain", "x"}  # the network and its input
    out = []
    for n in nodes:
        if n.op_type == "Constant":
            continue
        base = (n.name or n.output[0]).replace("/", "_").replace(".", "_")
        name = base + "_" if base == "prev" else base
        i = 2
        while name in used:
            name = "%s_%d" % (base, i)
            i += 1
        used.add(name)
        out.append((name, n.op_type))
    return out


def model(groups, w, b):
    """The model with a chain of 5 * groups nodes, or with one Relu for
    groups = 0; and the names of the chain's nodes but the Dropouts."""
    last = "c%d" % (5 * groups if groups else 1)
    nodes = [helper.make_node("Gemm", ["x", "fc.weight", "fc.bias"], ["g"], name="fc", transB=1),
             helper.make_node("Prev", [], ["p"], name="prev", domain="snn", source=last),
             helper.make_node("Add", ["g", "p"], ["c0"], name="rec")]
    if not groups:  # the reference: the chain's effect in one node
        nodes.append(helper.make_node("Relu", ["c0"], ["c1"], name="relu"))
    named = []
    k = 0
    for _ in range(groups):
        for kind in ("Identity", "Relu", "Add", "Mul", "Dropout"):
            src, out = "c%d" % k, "c%d" % (k + 1)
            name = name_of(k, kind)
            if kind == "Add":
                node = helper.make_node("Add", [src, src], [out], name=name)
            elif kind == "Mul":
                half = "half%d" % k
                nodes.append(helper.make_node("Constant", [], [half], name="",
                                              value=numpy_helper.from_array(np.array(0.5, np.float32))))
                node = helper.make_node("Mul", [src, half], [out], name=name)
            else:
                node = helper.make_node(kind, [src], [out], name=name)
            nodes.append(node)
            if kind != "Dropout":
                named.append(name)
            k += 1
    nodes.append(helper.make_node("LI", [last], ["y"], name="li", domain="snn", tau=2.0))
    g = helper.make_graph(nodes, "LongChain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", IN])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", OUT])],
                          [numpy_helper.from_array(w, "fc.weight"), numpy_helper.from_array(b, "fc.bias")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("snn", 1)])
    m.metadata_props.add(key="snn.timesteps", value=str(T))
    return m, named


def reference(x, w, b):
    """[T, B, OUT] in float32, in the order of snnc's arithmetic."""
    c = np.zeros((B, OUT), np.float32)
    v = np.zeros((B, OUT), np.float32)
    ys = []
    for _ in range(T):
        z = (x @ w.T + b).astype(np.float32)
        c = np.maximum(z + c, np.float32(0))
        v = v + (c - v) / np.float32(2)
        ys.append(v.copy())
    return np.stack(ys)


def run(path, x, d):
    """`snnc run`, its C built with -O0: the generated step function of
    thousands of layers takes the C compiler a minute at -O2 (snnc run's
    level), and the values do not depend on it."""
    cc = os.path.join(d, "cc-O0")
    if not os.path.exists(cc):
        with open(cc, "w") as f:
            f.write('#!/bin/sh\nexec "${CC:-cc}" "$@" -O0\n')
        os.chmod(cc, 0o755)
    xin, out = os.path.join(d, "x.npy"), os.path.join(d, "y.npy")
    np.save(xin, x)
    snnc(["run", path, "--input", xin, "--output", out, "--cc", cc])
    return np.load(out)


def main():
    rng = np.random.default_rng(7)
    w = rng.uniform(-0.6, 0.6, (OUT, IN)).astype(np.float32)
    b = rng.uniform(-0.2, 0.3, OUT).astype(np.float32)
    x = rng.uniform(-1, 1, (B, IN)).astype(np.float32)
    with tempfile.TemporaryDirectory(prefix="snnc-onnx-test-") as d:
        chain, named = model(GROUPS, w, b)
        short, _ = model(0, w, b)
        pc, ps = os.path.join(d, "chain.onnx"), os.path.join(d, "short.onnx")
        onnx.save(chain, pc)
        onnx.save(short, ps)
        print("chain of %d nodes (and %d Constants)" % (5 * GROUPS, GROUPS))

        y = run(pc, x, d)
        want = reference(x, w, b)
        C.check(y.shape == (T, B, OUT), "the output has shape %s, expected %s" % (y.shape, (T, B, OUT)))
        if y.shape == want.shape:
            C.close(rtol=1e-5, atol=1e-6, got=y, want=want, what="the chain's output against NumPy")
            C.check(bool((want > 0).any() and (want == 0).any()), "the reference has positive and zero values")
        C.same(y, run(ps, x, d), "the chain's output against the model without the chain")

        layers = []
        on = False
        for line in snnc(["info", pc]).stdout.splitlines():
            if line.startswith("layer "):
                on = True
            elif on and not line.strip():
                break
            elif on:
                layers.append(line.split()[0])
        chain_layers = [n for n in layers if n not in ("x", "fc", "prev_", "rec", "li")]
        C.check(len(chain_layers) == len(named) and len(set(layers)) == len(layers),
                "info lists %d layers of the chain, %d distinct names in all; expected %d and %d"
                % (len(chain_layers), len(set(layers)), len(named), len(layers)))
        blocks = sum(1 for n in chain_layers if n.startswith("block"))
        want = sum(1 for n in named if n.startswith("block"))
        C.check(blocks == want, "%d layers named block..., expected %d" % (blocks, want))
        C.check(chain_layers[:len(FIRST)] == FIRST, "the chain's first layers are %s, expected %s"
                % (" ".join(chain_layers[:len(FIRST)]), " ".join(FIRST)))
        want = ["x"] + [n for n, op in expected_names(chain.graph.node) if op != "Dropout"]
        diff = next((i for i, (a, b) in enumerate(zip(layers, want)) if a != b), None)
        C.check(layers == want, "the layers are named as the nodes ask (first difference: %s)"
                % ("%s, expected %s" % (layers[diff], want[diff]) if diff is not None
                   else "%d layers, expected %d" % (len(layers), len(want))))
    C.finish()


if __name__ == "__main__":
    main()
