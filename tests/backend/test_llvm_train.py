#!/usr/bin/env python3
"""Training through the llvm target (JIT-compiled in process) computes what
the portable C target computes.

- Gradients: for the examples (dense, recurrent, AR-LIF, convolutional,
  DA-LIF, rate- and latency-encoded input), the golden models (dropout, three neuron models,
  neuron parameters, conv with batchnorm, groups, pools, a residual add and
  a recurrent edge), test_llvm.py's prev() chains under three readouts,
  its neuron model that uses every operation (with dropout) and its
  convolutions (strides, padding, groups, batchnorm, both pools), its
  dense layers of sizes that fill no whole tile of the products (at batch
  16, spikes as bits and as floats), spiking
  layers read by pools as bits, and Fashion-MNIST's MLP with its spikes
  kept as floats (--disable-pass=spikebits) and with its layers computed at
  every step (--disable-pass=hoist): one `snnc grad` with drawn weights
  (drawn_weights), an input that makes the layers spike and a random
  dL/doutput, `--target llvm` against `--target c --math exact`: the output
  of every step within 1e-5 relative to its largest magnitude (at least 1);
  dL/dinput and every parameter's gradient within 1e-4 relative to the
  tensor's largest magnitude, or to 1e-4 of the network's largest gradient
  where that is larger (below, a gradient is rounding noise). Every
  gradient compared must be nonzero somewhere, so that the comparison sees
  something (MAY_BE_ZERO lists the few that these inputs leave zero, and
  why); the bias of a convolution read by a batchnorm, exactly zero, must
  be rounding noise (1e-6 of the largest gradient) in both.
- Threads: `snnc grad` and `snnc run` through llvm with --threads 2 give
  the bits of --threads 1 (the MLP example at batch 64, the conv example at
  batch 8, the dense layers of odd sizes and the convolutions with groups,
  strides and biases (two blocks of output channels), batchnorm and both
  pools at batch 256).
- Training (when Debian's Fashion-MNIST is installed): one epoch of the MLP
  example on 2000 images, of the conv example (batchnorm's running
  statistics, dropout, spikes as bits through pools) on 256 and of the
  rate-encoded one (its spikes drawn per sample of the batch) on 1000 with
  each target: the
  same losses and accuracies (1e-4 relative) and weights within 1e-3
  relative; then the MLP example's whole train block through the llvm
  target reaches the 89 % the C target's test asks of it
  (tests/train/test_fashion_mlp.py).
- `snnc compile --train --target llvm` writes the same .ll twice, with the
  training API, the C target's header and its training workspace size;
  with --static too, the C target's header and a zeroed static workspace of
  the inference workspace's size (test_llvm_cross.py runs it).
- With no C compiler on PATH, `snnc grad --target llvm` works, and
  `--target c` fails saying that llvm needs none.
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
from test_llvm import CONVS, DELAYS, MIX, TILES, batchnorm_weights, sh

SKIP = 77
OUT_TOL = 1e-5
GRAD_TOL = 1e-4
FLOOR = 1e-4  # of the network's largest gradient
DATA = "/usr/share/datasets/fashion-mnist"


# Spiking layers read by pools, kept as bits in training (32 and 64 wide
# per sample), max and average, padded and strided.
POOLS = """
network Pools {
  timesteps 4;
  input x : [4, 8, 8] encode sequence;
  a = x |> maxpool(2) |> LIF(tau = 1.5);
  b = a |> avgpool([2, 3], stride = [1, 2], padding = [1, 1]) |> scale(3.0) |> LIF(tau = 1.5);
  c = x |> scale(2.0) |> LIF(tau = 1.5) |> maxpool(3, stride = 2, padding = 1);
  out = b |> flatten |> dense(4) |> add(c |> flatten |> dense(4)) |> LI(tau = 2.0);
  output out readout mean;
}
"""

# Gradients that may be zero for these inputs: convrec's PLIF layer r does
# not fire in its 3 steps, so its recurrent weights and its reader's get
# none; nor does DA-LIF's fc layer of dalif_conv in its 4 steps.
MAY_BE_ZERO = {("convrec", "r_dense_2.weight"), ("convrec", "out_dense.weight"), ("dalif_conv", "out_dense.weight")}


def noise_only(ir):
    """The parameters whose exact gradient is zero: the bias of a
    convolution read by a batchnorm (the normalization removes it). Both
    targets compute rounding noise for them, in different orders."""
    names = dict(re.findall(r"^  %(\d+) (\w+) = ", ir, re.M))
    return {names[m] + ".bias" for m in re.findall(r"^  %\d+ \w+ = batchnorm %(\d+)", ir, re.M)
            if names[m].endswith("_conv2d")}


def models(root):
    """(name, text, the input's range, options) of every network compared;
    the option "batch N" sets the batch (default 3), the others go to
    snnc."""
    def read(*path):
        with open(os.path.join(root, *path)) as f:
            return f.read()
    mlp = read("examples", "fashion_mlp.snn")
    out = [("fashion_mlp", mlp, (0.0, 2.0), []),
           ("fashion_mlp, spikes as floats", mlp, (0.0, 2.0), ["--disable-pass=spikebits"]),
           ("fashion_mlp, not hoisted", mlp, (0.0, 2.0), ["--disable-pass=hoist"]),
           ("arlif_mlp", read("examples", "arlif_mlp.snn"), (0.0, 2.0), []),
           ("recurrent", read("examples", "recurrent.snn"), (0.0, 4.0), []),
           ("golden mlp", read("tests", "golden", "mlp.snn"), (0.0, 8.0), []),
           ("neuron_params", read("tests", "golden", "neuron_params.snn"), (0.0, 4.0), []),
           ("fashion_conv", read("examples", "fashion_conv.snn"), (0.0, 2.0), []),
           ("dalif_conv", read("examples", "dalif_conv.snn"), (0.0, 2.0), []),
           ("convrec", read("tests", "golden", "convrec.snn"), (0.0, 4.0), []),
           ("pools of spikes kept as bits", POOLS, (0.0, 4.0), []),
           ("fashion_rate", read("examples", "fashion_rate.snn"), (0.0, 1.0), []),
           ("fashion_latency", read("examples", "fashion_latency.snn"), (0.0, 1.0), [])]
    out += [("delays, readout %s" % h, DELAYS % h, (0.0, 4.0), []) for h in ("mean", "max", "last")]
    out += [("mix, readout %s" % h, MIX % h, (0.0, 8.0), []) for h in ("steps", "count", "rate")]
    out += [("convs, readout %s" % h, CONVS % h, (0.0, 4.0), []) for h in ("steps", "count")]
    # 80 rows (16 x 5 steps): the products' tiles, the rows they leave, and
    # two blocks of 64 rows of spikes unpacked for the weight gradient
    out += [("tiles", TILES % "mean", (0.0, 4.0), ["batch 16"]),
            ("tiles, spikes as floats", TILES % "mean", (0.0, 4.0), ["batch 16", "--disable-pass=spikebits"])]
    return out


def shapes(snnc, d, text):
    """T, whether the input is a sequence, the input's and the output's
    shapes, and the IR."""
    src = os.path.join(d, "m.snn")
    with open(src, "w") as f:
        f.write(text)
    ir = sh([snnc, "compile", src, "--emit-ir"]).stdout
    T = int(re.search(r"timesteps=(\d+)", ir).group(1))
    dims = lambda s: [int(v) for v in s.split(",")]
    xin = dims(re.search(r"^  %0 \w+ = input -> \[([0-9,]+)\]", ir, re.M).group(1))
    out = re.search(r"^  output %(\d+)", ir, re.M)
    node = re.search(r"^  %%%s \w+ = [^\n]*-> \[([0-9,]+)\]" % out.group(1), ir, re.M)
    return T, "encode=sequence" in ir, xin, dims(node.group(1)), ir


GAIN = 3.0


def drawn_weights(text, x, gout, ir, rng):
    """Weights over --init 1's: batchnorm's four tensors drawn, so that it
    does more than normalize, and every dense and conv weight uniform in
    +-GAIN / sqrt(fan in) (GAIN times --init's), so that the deeper layers
    of these small networks fire with these inputs. The tensors' shapes
    are those of a first run's gradients."""
    w = {k: v.astype(np.float32) for k, v in batchnorm_weights(ir, rng).items()}
    shapes = grad(text, x, gout, weights=w or None, init=1, extra=["--target", "c"])[0]
    for k, v in sorted(shapes.items()):
        if k.endswith(".weight") and ("_dense" in k or "_conv2d" in k):
            w[k] = (rng.uniform(-1, 1, v.shape) * GAIN / np.sqrt(np.prod(v.shape[1:]))).astype(np.float32)
    return w


def rel(got, ref, scale):
    return float(np.max(np.abs(got.astype(np.float64) - ref))) / scale if ref.size else 0.0


def compare_grads(snnc, root, d, check):
    for name, text, (lo, hi), extra in models(root):
        T, seq, xin, yout, ir = shapes(snnc, d, text)
        B = 3
        for o in [o for o in extra if o.startswith("batch ")]:
            B = int(o.split()[1])
            extra = [e for e in extra if e != o]
        rng = np.random.default_rng(5)  # each network's inputs whatever runs before it
        x = rng.uniform(lo, hi, [T, B] + xin if seq else [B] + xin).astype(np.float32)
        gout = rng.standard_normal([T, B] + yout).astype(np.float32)
        weights = drawn_weights(text, x, gout, ir, rng)
        res = {}
        for target in ("c", "llvm"):
            opts = ["--target", target] + (["--math", "exact"] if target == "c" else []) + extra
            try:
                res[target] = grad(text, x, gout, weights=weights, init=1, extra=opts)
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
        noise = noise_only(ir)
        for k in sorted(gc):
            ref = gc[k]
            if k in noise:
                small = max(float(np.abs(ref).max()), float(np.abs(gl.get(k, ref)).max()))
                check(small <= 1e-6 * top, "%s: the gradient of %s, exactly zero, is %.3g" % (name, k, small))
                continue
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


def compare_threads(snnc, root, d, check):
    """The llvm target's dense, convolution, neuron, pool and batchnorm
    kernels split their outputs between OpenMP's threads where the work is
    large enough: `snnc grad` and `snnc run` with --threads 2 must give the
    bits of --threads 1, at batches that make every layer of these networks
    split (at least 2^20 multiply-adds, 2^15 neuron steps or values a
    call)."""
    with open(os.path.join(root, "examples", "fashion_mlp.snn")) as f:
        mlp = f.read()
    with open(os.path.join(root, "examples", "fashion_conv.snn")) as f:
        conv = f.read()
    for name, text, (lo, hi), B in (("fashion_mlp", mlp, (0.0, 2.0), 64), ("fashion_conv", conv, (0.0, 2.0), 8),
                                    ("tiles", TILES % "mean", (0.0, 4.0), 256),
                                    ("convs", CONVS % "mean", (0.0, 2.0), 256)):
        T, seq, xin, yout, ir = shapes(snnc, d, text)
        rng = np.random.default_rng(7)
        x = rng.uniform(lo, hi, [T, B] + xin if seq else [B] + xin).astype(np.float32)
        gout = rng.standard_normal([T, B] + yout).astype(np.float32)
        weights = drawn_weights(text, x, gout, ir, rng)
        res = []
        for n in (1, 2):
            try:
                res.append(grad(text, x, gout, weights=weights, init=1, extra=["--target", "llvm", "--threads", str(n)]))
            except RunError as e:
                check(False, "%s: snnc grad --target llvm --threads %d: %s" % (name, n, e))
        if len(res) < 2:
            continue
        (g1, dx1, y1), (g2, dx2, y2) = res
        same = (np.array_equal(y1, y2) and np.array_equal(dx1, dx2) and sorted(g1) == sorted(g2) and
                all(np.array_equal(g1[k], g2[k]) for k in g1))
        check(same, "%s, batch %d: snnc grad --target llvm with 2 threads differs from 1" % (name, B))
        src, xin_file = os.path.join(d, "m.snn"), os.path.join(d, "x.npy")
        with open(src, "w") as f:
            f.write(text)
        np.save(xin_file, x)
        outs = []
        for n in (1, 2):
            out = os.path.join(d, "run-%d.npy" % n)
            sh([snnc, "run", src, "--init", "1", "--input", xin_file, "--output", out, "--target", "llvm",
                "--threads", str(n)])
            outs.append(np.load(out))
        check(np.array_equal(outs[0], outs[1]), "%s, batch %d: snnc run --target llvm with 2 threads differs from 1" %
              (name, B))
        print("%s, batch %d: grad (%d gradients) and run through llvm, 2 threads the bits of 1" % (name, B, len(g1)))


def metrics(folder):
    with open(os.path.join(folder, "metrics.csv")) as f:
        return list(csv.DictReader(f))


def one_epoch(snnc, root, d, check, example, samples):
    """One epoch of an example on `samples` images through both targets."""
    model = os.path.join(root, "examples", example)
    rows, weights = {}, {}
    for target in ("c", "llvm"):
        out = os.path.join(d, "%s-%s" % (example, target))
        opts = ["--target", target] + (["--math", "exact"] if target == "c" else [])
        sh([snnc, "train", model, "-o", out, "--epochs", "1", "--train-limit", str(samples), "--test-limit", "256",
            "--threads", "1"] + opts)
        rows[target] = metrics(out)[-1]
        weights[target] = read_safetensors(os.path.join(out, "weights.safetensors"))[0]
    for key in ("train_loss", "train_acc", "test_loss", "test_acc"):
        a, b = float(rows["llvm"][key]), float(rows["c"][key])
        check(abs(a - b) <= 1e-4 * max(1.0, abs(b)), "%s, one epoch: %s %g through llvm, %g through c" %
              (example, key, a, b))
    for k in sorted(weights["c"]):
        ref = weights["c"][k]
        err = rel(weights["llvm"][k], ref, max(float(np.abs(ref).max()), 1e-30))
        check(err <= 1e-3, "%s, one epoch: weights %s differ by %.3g relative" % (example, k, err))
    same = all(np.array_equal(weights["llvm"][k], weights["c"][k]) for k in weights["c"])
    print("one epoch of %s on %d images: test accuracy %s (llvm) and %s (c); weights %s" %
          (example, samples, rows["llvm"]["test_acc"], rows["c"]["test_acc"], "bit-identical" if same else
           "within 1e-3"))


def compare_training(snnc, root, d, checker):
    if not os.path.exists(os.path.join(DATA, "t10k-images-idx3-ubyte.gz")):
        print("SKIPPED (training part): Fashion-MNIST is not installed (Debian package dataset-fashion-mnist)")
        return
    one_epoch(snnc, root, d, checker.check, "fashion_mlp.snn", 2000)
    one_epoch(snnc, root, d, checker.check, "fashion_conv.snn", 256)
    one_epoch(snnc, root, d, checker.check, "fashion_rate.snn", 1000)
    model = os.path.join(root, "examples", "fashion_mlp.snn")
    acc = train_example(checker, model, os.path.join(d, "full"), 10, 0.89, args=["--target", "llvm"])
    print("fashion_mlp's train block through the llvm target: test accuracy %.4f" % acc)


def no_compiler(snnc, root, d, check):
    """Without a C compiler on PATH, grad through llvm works; through c it
    fails, saying that llvm needs none."""
    mlp = os.path.join(root, "examples", "fashion_mlp.snn")
    x = os.path.join(d, "x1.npy")
    np.save(x, np.full([1, 1, 28, 28], 0.5, dtype=np.float32))
    gy = os.path.join(d, "g1.npy")
    np.save(gy, np.ones([8, 1, 10], dtype=np.float32))
    env = {"PATH": "/nonexistent", "HOME": d}
    res = {}
    for target in ("llvm", "c"):
        out = os.path.join(d, "nocc-%s.safetensors" % target)
        p = subprocess.run([snnc, "grad", mlp, "--init", "1", "--input", x, "--grad-output", gy, "--output", out,
                            "--target", target], capture_output=True, text=True, env=env)
        res[target] = (p.returncode, p.stderr, os.path.exists(out))
    code, err, wrote = res["llvm"]
    check(code == 0 and wrote, "grad --target llvm without a C compiler: %r" % err)
    code, err, wrote = res["c"]
    check(code != 0 and not wrote and "--target llvm builds the code in process, with no C compiler" in err,
          "grad --target c without a C compiler: %r" % err)


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
               "i64 %seed)", "train_backward(ptr %workspace, i32 %batch, ptr %input, ptr %doutput, ptr %dinput)",
               "train_spikes(ptr %workspace, i32 %batch, ptr %spikes, ptr %neurons)"):
        check("@fashionmlp_" + fn in a, "compile --train --target llvm: no fashionmlp_%s" % fn)
    # the llvm target keeps every step's neuron states (the C targets' remat pass does not apply to it)
    sh([snnc, "compile", mlp, "--train", "--target", "c", "--disable-pass=remat", "-o", os.path.join(d, "c")])
    hc = open(os.path.join(d, "c", "fashionmlp.h")).read()
    hl = open(os.path.join(outs[0], "fashionmlp.h")).read()
    check(hc == hl, "compile --train --target llvm: the header differs from the C target's (--disable-pass=remat)")
    want = re.search(r"#define FASHIONMLP_TRAIN_WORKSPACE_FLOATS (\d+)L", hc)
    got = re.search(r"@fashionmlp_train_workspace_floats = constant i64 (\d+)", a)
    check(want is not None and got is not None and want.group(1) == got.group(1),
          "the module's train_workspace_floats is not the header's")
    for target in ("c", "llvm"):
        sh([snnc, "compile", mlp, "--train", "--static", "--target", target, "--disable-pass=remat",
            "-o", os.path.join(d, "static-" + target)])
    hc, hl = [open(os.path.join(d, "static-" + t, "fashionmlp.h")).read() for t in ("c", "llvm")]
    check(hc == hl and "or NULL for the static one" in hc,
          "compile --train --static --target llvm: the header differs from the C target's")
    ll = open(os.path.join(d, "static-llvm", "fashionmlp.ll")).read()
    want = re.search(r"#define FASHIONMLP_WORKSPACE_FLOATS (\d+)L", hc)
    check(want is not None and "@fashionmlp_static_workspace = global [%s x float] zeroinitializer" % want.group(1) in ll,
          "compile --train --static --target llvm: no static workspace of the inference workspace's size")


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
        compare_threads(snnc, root, d, check)
        compile_train(snnc, root, d, check)
        no_compiler(snnc, root, d, check)
        compare_training(snnc, root, d, checker)
    return checker.status()


if __name__ == "__main__":
    sys.exit(main())
