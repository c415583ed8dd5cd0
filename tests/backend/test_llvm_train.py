#!/usr/bin/env python3
"""Training through the llvm target (JIT-compiled in process) computes what
the portable C target computes.

- Gradients: for every network the llvm target trains (the dense and
  recurrent examples, the golden MLP without its dropout, the neuron
  parameters model, test_llvm.py's prev() chains under three readouts and
  its neuron model that uses every operation, Fashion-MNIST's MLP with its
  spikes kept as floats (--disable-pass spikebits) and with its layers
  computed at every step (--disable-pass hoist)), one `snnc grad` with
  weights from --init 1, an input that makes the layers spike and a random
  dL/doutput, `--target llvm` against `--target c --math exact`: the output
  of every step within 1e-5 relative to its largest magnitude (at least 1);
  dL/dinput and every parameter's gradient within 1e-4 relative to the
  tensor's largest magnitude, or to 1e-4 of the network's largest gradient
  where that is larger (below, a gradient is rounding noise). Every
  gradient compared must be nonzero somewhere, so that the comparison sees
  something.
- Training (when Debian's Fashion-MNIST is installed): one epoch of the MLP
  example on 2000 images with each target: the same losses and accuracies
  (1e-4 relative) and weights within 1e-3 relative; then the example's
  whole train block through the llvm target reaches the 89 % the C
  target's test asks of it (tests/train/test_fashion_mlp.py).
- What it cannot train yet is refused at the layer, with no file written:
  a convolutional network (no backward kernel of conv2d), dropout (no
  masks yet).
- `snnc compile --train --target llvm` writes the same .ll twice, with the
  training API, the C target's header and its training workspace size.
The expectations are the other target's results, never stored copies.

Skipped, saying why, when this snnc was built without LLVM.

Usage: test_llvm_train.py SNNC ROOT
"""
import csv
import os
import re
import subprocess
import sys
import tempfile

import numpy as np

from snnc_ref import Checker, RunError, grad, read_safetensors, train_example
from test_llvm import DELAYS, MIX

SKIP = 77
OUT_TOL = 1e-5
GRAD_TOL = 1e-4
FLOOR = 1e-4  # of the network's largest gradient
DATA = "/usr/share/datasets/fashion-mnist"


def sh(cmd, ok=True):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if ok and p.returncode != 0:
        print("FAIL: %s: %s" % (" ".join(cmd), p.stderr.strip()))
        sys.exit(1)
    return p


# Gradients that may be zero for these inputs: the output layer's c of
# AR-LIF reaches the loss only through a later step's rect surrogate
# window, which no output neuron enters here; the golden MLP's DA-LIF layer
# does not fire with --init 1's weights, so its reader's weights get none.
MAY_BE_ZERO = {("arlif_mlp", "out.c"), ("golden mlp without dropout", "out_dense.weight")}


def models(root):
    """(name, text, the input's range, options) of every network compared;
    the option "batch N" sets the batch (default 3), the others go to
    snnc. AR-LIF's MLP needs a larger batch: for most inputs its outputs
    never come near the threshold, and every gradient is zero."""
    def read(*path):
        with open(os.path.join(root, *path)) as f:
            return f.read()
    mlp = read("examples", "fashion_mlp.snn")
    golden = read("tests", "golden", "mlp.snn")
    nodrop = golden.replace(" |> dropout(0.2)", "")
    assert nodrop != golden
    mix = MIX.replace(" |> dropout(0.3)", "")
    assert mix != MIX
    out = [("fashion_mlp", mlp, (0.0, 2.0), []),
           ("fashion_mlp, spikes as floats", mlp, (0.0, 2.0), ["--disable-pass=spikebits"]),
           ("fashion_mlp, not hoisted", mlp, (0.0, 2.0), ["--disable-pass=hoist"]),
           ("arlif_mlp", read("examples", "arlif_mlp.snn"), (0.0, 16.0), ["batch 8"]),
           ("recurrent", read("examples", "recurrent.snn"), (0.0, 4.0), []),
           ("golden mlp without dropout", nodrop, (0.0, 8.0), []),
           ("neuron_params", read("tests", "golden", "neuron_params.snn"), (0.0, 4.0), [])]
    out += [("delays, readout %s" % h, DELAYS % h, (0.0, 4.0), []) for h in ("mean", "max", "last")]
    out += [("mix, readout %s" % h, mix % h, (0.0, 8.0), []) for h in ("steps", "count", "rate")]
    return out


def shapes(snnc, d, text):
    """T, whether the input is a sequence, the input's and the output's shapes."""
    src = os.path.join(d, "m.snn")
    with open(src, "w") as f:
        f.write(text)
    ir = sh([snnc, "compile", src, "--emit-ir"]).stdout
    T = int(re.search(r"timesteps=(\d+)", ir).group(1))
    dims = lambda s: [int(v) for v in s.split(",")]
    xin = dims(re.search(r"^  %0 \w+ = input -> \[([0-9,]+)\]", ir, re.M).group(1))
    out = re.search(r"^  output %(\d+)", ir, re.M)
    node = re.search(r"^  %%%s \w+ = [^\n]*-> \[([0-9,]+)\]" % out.group(1), ir, re.M)
    return T, "encode=sequence" in ir, xin, dims(node.group(1))


def rel(got, ref, scale):
    return float(np.max(np.abs(got.astype(np.float64) - ref))) / scale if ref.size else 0.0


def compare_grads(snnc, root, d, check):
    for name, text, (lo, hi), extra in models(root):
        T, seq, xin, yout = shapes(snnc, d, text)
        B = 3
        for o in [o for o in extra if o.startswith("batch ")]:
            B = int(o.split()[1])
            extra = [e for e in extra if e != o]
        rng = np.random.default_rng(5)  # each network's inputs whatever runs before it
        x = rng.uniform(lo, hi, [T, B] + xin if seq else [B] + xin).astype(np.float32)
        gout = rng.standard_normal([T, B] + yout).astype(np.float32)
        res = {}
        for target in ("c", "llvm"):
            opts = ["--target", target] + (["--math", "exact"] if target == "c" else []) + extra
            try:
                res[target] = grad(text, x, gout, init=1, extra=opts)
            except RunError as e:
                check(False, "%s: snnc grad --target %s: %s" % (name, target, e))
        if len(res) < 2:
            continue
        (gl, dxl, yl), (gc, dxc, yc) = res["llvm"], res["c"]
        check(rel(yl, yc, max(1.0, float(np.abs(yc).max()))) <= OUT_TOL,
              "%s: the output of every step differs from the C target's" % name)
        top = max(float(np.abs(v).max()) for v in gc.values())
        if top == 0:
            check(False, "%s: every gradient is zero: the test sees nothing" % name)
            continue
        check(sorted(gl) == sorted(gc), "%s: gradients of %s, the C target's %s" % (name, sorted(gl), sorted(gc)))
        worst = 0.0
        for k in sorted(gc):
            ref = gc[k]
            check(np.abs(ref).max() > 0 or (name, k) in MAY_BE_ZERO,
                  "%s: the gradient of %s is zero: the test sees nothing" % (name, k))
            if k not in gl or gl[k].shape != ref.shape:
                check(False, "%s: %s is missing or shaped otherwise" % (name, k))
                continue
            err = rel(gl[k], ref, max(float(np.abs(ref).max()), FLOOR * top))
            worst = max(worst, err)
            check(err <= GRAD_TOL, "%s: the gradient of %s differs by %.3g relative (bound %g)" %
                  (name, k, err, GRAD_TOL))
        err = rel(dxl, dxc, max(float(np.abs(dxc).max()), FLOOR * top))
        check(dxc.shape == dxl.shape and err <= GRAD_TOL, "%s: dL/dinput differs by %.3g relative" % (name, err))
        print("%s: %d gradients (largest %.3g), dL/dinput and %d outputs agree with --target c "
              "(worst %.2g relative)" % (name, len(gc), top, yc.size, worst))


def metrics(folder):
    with open(os.path.join(folder, "metrics.csv")) as f:
        return list(csv.DictReader(f))


def compare_training(snnc, root, d, checker):
    check = checker.check
    if not os.path.exists(os.path.join(DATA, "t10k-images-idx3-ubyte.gz")):
        print("SKIPPED (training part): Fashion-MNIST is not installed (Debian package dataset-fashion-mnist)")
        return
    model = os.path.join(root, "examples", "fashion_mlp.snn")
    rows, weights = {}, {}
    for target in ("c", "llvm"):
        out = os.path.join(d, "train-" + target)
        opts = ["--target", target] + (["--math", "exact"] if target == "c" else [])
        sh([snnc, "train", model, "-o", out, "--epochs", "1", "--train-limit", "2000", "--test-limit", "500",
            "--threads", "1"] + opts)
        rows[target] = metrics(out)[-1]
        weights[target] = read_safetensors(os.path.join(out, "weights.safetensors"))[0]
    for key in ("train_loss", "train_acc", "test_loss", "test_acc"):
        a, b = float(rows["llvm"][key]), float(rows["c"][key])
        check(abs(a - b) <= 1e-4 * max(1.0, abs(b)), "one epoch: %s %g through llvm, %g through c" % (key, a, b))
    for k in sorted(weights["c"]):
        ref = weights["c"][k]
        err = rel(weights["llvm"][k], ref, max(float(np.abs(ref).max()), 1e-30))
        check(err <= 1e-3, "one epoch: weights %s differ by %.3g relative" % (k, err))
    same = all(np.array_equal(weights["llvm"][k], weights["c"][k]) for k in weights["c"])
    print("one epoch of fashion_mlp on 2000 images: test accuracy %s (llvm) and %s (c); weights %s" %
          (rows["llvm"]["test_acc"], rows["c"]["test_acc"], "bit-identical" if same else "within 1e-3"))
    acc = train_example(checker, model, os.path.join(d, "full"), 10, 0.89,
                        args=["--target", "llvm"])
    print("fashion_mlp's train block through the llvm target: test accuracy %.4f" % acc)


def refusals(snnc, root, d, check, rng):
    conv = os.path.join(root, "examples", "fashion_conv.snn")
    out = os.path.join(d, "refused.safetensors")
    x = os.path.join(d, "xc.npy")
    np.save(x, rng.random([2, 1, 28, 28]).astype(np.float32))
    gy = os.path.join(d, "gc.npy")
    np.save(gy, np.ones([4, 2, 10], dtype=np.float32))
    p = sh([snnc, "grad", conv, "--init", "1", "--input", x, "--grad-output", gy, "--output", out,
            "--target", "llvm"], ok=False)
    check(p.returncode != 0 and re.search(r"fashion_conv\.snn:9:\d+: error: target 'llvm' has no backward kernel for "
                                          r"op 'conv2d'", p.stderr) is not None,
          "grad of a conv net through llvm: %r" % p.stderr)
    check(not os.path.exists(out), "a refused grad left %s" % out)
    drop = os.path.join(d, "drop.snn")
    with open(drop, "w") as f:
        f.write("network Drop {\n  timesteps 3;\n  input x : [4] encode direct;\n"
                "  h = x |> dropout(0.5) |> dense(4) |> LIF();\n  output h readout count;\n}\n")
    xd = os.path.join(d, "xd.npy")
    np.save(xd, np.ones([2, 4], dtype=np.float32))
    gd = os.path.join(d, "gd.npy")
    np.save(gd, np.ones([3, 2, 4], dtype=np.float32))
    p = sh([snnc, "grad", drop, "--init", "1", "--input", xd, "--grad-output", gd, "--output", out,
            "--target", "llvm"], ok=False)
    check(p.returncode != 0 and "drop.snn:4:12: error: target 'llvm' has no backward kernel for op 'dropout' "
          "(layer 'h_dropout')" in p.stderr, "grad with dropout through llvm: %r" % p.stderr)
    check(not os.path.exists(out), "a refused grad left %s" % out)


def compile_train(snnc, root, d, check):
    mlp = os.path.join(root, "examples", "fashion_mlp.snn")
    outs = []
    for k in range(2):
        o = os.path.join(d, "ll%d" % k)
        sh([snnc, "compile", mlp, "--train", "--target", "llvm", "-o", o])
        outs.append(o)
    a, b = [open(os.path.join(o, "fashionmlp.ll")).read() for o in outs]
    check(a == b, "compile --train --target llvm: two runs wrote different .ll files")
    for fn in ("train_forward_at(ptr %workspace, i32 %batch, i64 %first, ptr %input, ptr %output, i32 %training, "
               "i64 %seed)", "train_backward(ptr %workspace, i32 %batch, ptr %doutput, ptr %dinput)",
               "train_spikes(ptr %workspace, i32 %batch, ptr %spikes, ptr %neurons)"):
        check("@fashionmlp_" + fn in a, "compile --train --target llvm: no fashionmlp_%s" % fn)
    sh([snnc, "compile", mlp, "--train", "--target", "c", "-o", os.path.join(d, "c")])
    hc = open(os.path.join(d, "c", "fashionmlp.h")).read()
    hl = open(os.path.join(outs[0], "fashionmlp.h")).read()
    strip = lambda h: re.sub(r"/\* Load the parameters.*?init_weights\(void \*workspace, unsigned long long seed\);\n",
                             "", h, flags=re.S)
    check(strip(hc) == hl, "compile --train --target llvm: the header differs from the C target's (beyond the loader)")
    want = re.search(r"#define FASHIONMLP_TRAIN_WORKSPACE_FLOATS (\d+)L", hc)
    got = re.search(r"@fashionmlp_train_workspace_floats = constant i64 (\d+)", a)
    check(want is not None and got is not None and want.group(1) == got.group(1),
          "the module's train_workspace_floats is not the header's")


def main():
    snnc, root = sys.argv[1], sys.argv[2]
    os.environ["SNNC"] = snnc
    listing = sh([snnc, "--list-targets"]).stdout
    line = [l for l in listing.splitlines() if l.split()[:1] == ["llvm"]]
    if not line or "unavailable" in line[0]:
        print("SKIPPED: this snnc was built without LLVM (%s)" % (line[0].strip() if line else "not listed"))
        return SKIP
    rng = np.random.default_rng(5)
    checker = Checker()
    check = checker.check
    with tempfile.TemporaryDirectory() as d:
        compare_grads(snnc, root, d, check)
        refusals(snnc, root, d, check, rng)
        compile_train(snnc, root, d, check)
        compare_training(snnc, root, d, checker)
    return checker.status()


if __name__ == "__main__":
    sys.exit(main())
