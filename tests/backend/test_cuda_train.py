#!/usr/bin/env python3
"""snnc train --target cuda trains on the device as --target c trains on the host.

snnc train keeps the cuda target's training workspace and optimizer state in
device memory for the whole run (compiler/driver/train.c, the host_dev_*
functions of compiler/backend/cuda/cuhost.c): a step sends its batch and gets
back its loss, its count of correct predictions and its gradients' sums of
squares. With SNNC_CUDA_EMULATE=1 snnc builds the same .cu for the CPU, which
is how this test runs on any machine; where a GPU and nvcc are present it runs
on the GPU too.

The data: a small .npy data set that the test draws (4 classes, the class
the largest of 4 fixed projections of the input), so that nothing needs
Fashion-MNIST. Three networks, which together put every loss, every
optimizer, clipping that acts, a schedule, a learnable neuron parameter
(PLIF) and a recurrent layer (prev) on the path; for each, against
`snnc train --target c --math exact` with the same seed:
  - the loss of every optimizer step (--step-log) within 1e-5 relative,
    and the epochs' losses (metrics.csv) too;
  - the epochs' train and test accuracies within one sample;
  - the weights and the optimizer's state in the checkpoint within 1e-4
    of the largest magnitude of their tensor.
The products add in another order on this target (docs/targets.md), which
is why the bounds are not zero.
And on the cuda target alone:
  - a run stopped after its first epoch and resumed (--resume) ends with
    the weights and optimizer state of one that was not, bit for bit (the
    state goes to the device and back exactly);
  - snnc info --target cuda --train states what the loop adds to the
    device's training workspace, as counted here for the first network;
  - snnc run --eval with the first network's weights: the accuracy of
    --target c and the loss within 1e-4 (printed to 4 decimals);
  - learning rates that make the second network (without clipping)
    diverge in its loss, and the third in a gradient, stop the run with
    the messages of --target c: the same epoch, batch and gradient.

Usage: test_cuda_train.py SNNC  (NumPy; exit 77 without it or a C compiler)
"""
import csv
import os
import re
import shutil
import sys
import tempfile

from test_cuda import find_nvcc, have_gpu  # beside this file
from test_cuda_load import safetensors, sh

NETS = {
    "adam": """
network Small {
  timesteps 4;
  input x : [24] encode direct;
  h = x |> dense(32) |> LIF(tau = 2.0);
  out = h |> dense(4) |> LI(tau = 2.0);
  output out readout mean;
}
train Small {
  data npy(train_x = "%(d)s/train_x.npy", train_y = "%(d)s/train_y.npy", test_x = "%(d)s/test_x.npy", test_y = "%(d)s/test_y.npy");
  loss cross_entropy;
  optimizer adam(lr = 1e-2);
  schedule cosine;
  epochs 2; batch 16; seed 3;
}
""",
    "sgd_clip_tet": """
network Rec {
  timesteps 5;
  input x : [24] encode direct;
  h = x |> dense(32) |> add(prev(h) |> dense(32, bias = false)) |> PLIF();
  out = h |> dense(4) |> LI();
  output out readout steps;
}
train Rec {
  data npy(train_x = "%(d)s/train_x.npy", train_y = "%(d)s/train_y.npy", test_x = "%(d)s/test_x.npy", test_y = "%(d)s/test_y.npy");
  loss tet(lambda = 0.05);
  optimizer sgd(lr = 0.2, momentum = 0.9, nesterov = true, weight_decay = 1e-3);
  schedule step(step_size = 1, gamma = 0.5);
  clip 0.05;
  epochs 2; batch 16; seed 5;
}
""",
    "adamw_mse": """
network Count {
  timesteps 6;
  input x : [24] encode direct;
  h = x |> dense(32) |> LIF(tau = 2.0);
  out = h |> dense(4) |> LIF(tau = 2.0);
  output out readout count;
}
train Count {
  data npy(train_x = "%(d)s/train_x.npy", train_y = "%(d)s/train_y.npy", test_x = "%(d)s/test_x.npy", test_y = "%(d)s/test_y.npy");
  loss mse_count(correct = 0.8, incorrect = 0.2);
  optimizer adamw(lr = 5e-3, weight_decay = 0.01);
  epochs 2; batch 16; seed 7;
}
""",
}


def rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def draw_data(d):
    import numpy as np
    rng = np.random.default_rng(11)
    proj = rng.standard_normal((24, 4)).astype(np.float32)
    for split, n in (("train", 96), ("test", 40)):
        x = rng.random((n, 24)).astype(np.float32) * 3.0
        np.save(os.path.join(d, split + "_x.npy"), x)
        np.save(os.path.join(d, split + "_y.npy"), np.argmax(x @ proj, axis=1).astype(np.int64))


def train(snnc, model, out, env, target, extra=()):
    args = [snnc, "train", model, "-o", out, "--step-log", os.path.join(out + ".steps.csv"), "--target", target]
    if target == "c":
        args += ["--math", "exact"]
    return sh(args + list(extra), env)


def diverged(line):
    """snnc's divergence message without the numbers whose last digits may
    differ: where and why it stopped."""
    return re.sub(r"(loss is|times) [-+0-9.e]+", r"\1 N", line)


def close(a, b, rel):
    return abs(a - b) <= rel * max(abs(a), abs(b), 1e-30)


def compare_runs(name, got, ref, ntrain, ntest):
    """'' when the cuda run `got` trains as `ref` (module docstring), else why not."""
    import numpy as np
    for s, r in zip(rows(got + ".steps.csv"), rows(ref + ".steps.csv")):
        if not close(float(s["loss"]), float(r["loss"]), 1e-5):
            return "step %s: loss %s against %s" % (s["step"], s["loss"], r["loss"])
    for s, r in zip(rows(os.path.join(got, "metrics.csv")), rows(os.path.join(ref, "metrics.csv"))):
        for k in ("train_loss", "test_loss"):
            if not close(float(s[k]), float(r[k]), 1e-5):
                return "epoch %s: %s %s against %s" % (s["epoch"], k, s[k], r[k])
        for k, n in (("train_acc", ntrain), ("test_acc", ntest)):
            if abs(float(s[k]) - float(r[k])) * n > 1.01:
                return "epoch %s: %s %s against %s" % (s["epoch"], k, s[k], r[k])
    a, b = (safetensors(os.path.join(x, "checkpoint.safetensors")) for x in (got, ref))
    if sorted(a) != sorted(b):
        return "the checkpoints hold other tensors: %s against %s" % (sorted(a), sorted(b))
    worst = 0.0
    for k in b:
        scale = float(np.abs(b[k]).max()) if b[k].size else 0.0
        err = float(np.abs(a[k] - b[k]).max()) if b[k].size else 0.0
        if err > 1e-4 * scale:
            return "checkpoint tensor %s: off by %g (bound %g)" % (k, err, 1e-4 * scale)
        worst = max(worst, err / scale if scale else 0.0)
    return "%d steps, %d tensors, worst relative difference %.2g" % (len(rows(ref + ".steps.csv")), len(b), worst)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    snnc = sys.argv[1]
    try:
        import numpy  # noqa: F401
    except ImportError:
        print("SKIP: NumPy is not installed")
        sys.exit(77)
    if not shutil.which(os.environ.get("CC") or "cc"):
        print("SKIP: no C compiler")
        sys.exit(77)
    emulated = dict(os.environ, SNNC_CUDA_EMULATE="1")
    plain = {k: v for k, v in os.environ.items() if k != "SNNC_CUDA_EMULATE"}
    kinds = {"emulated": emulated}
    if have_gpu() and find_nvcc():
        kinds["gpu"] = plain
    else:
        print("GPU runs skipped: %s" % ("no GPU" if not have_gpu() else "no nvcc"))
    failed = passed = 0
    with tempfile.TemporaryDirectory() as d:
        draw_data(d)
        for name, text in NETS.items():
            model = os.path.join(d, name + ".snn")
            with open(model, "w") as f:
                f.write(text % {"d": d})
            ref = os.path.join(d, name + "-c")
            rc, msg = train(snnc, model, ref, plain, "c")
            if rc != 0:
                print("FAIL: %s: snnc train --target c (exit %d)\n%s" % (name, rc, msg))
                failed += 1
                continue
            for kind, env in kinds.items():
                got = os.path.join(d, "%s-%s" % (name, kind))
                rc, msg = train(snnc, model, got, env, "cuda")
                why = "exit %d\n%s" % (rc, msg) if rc != 0 else compare_runs(name, got, ref, 96, 40)
                if rc != 0 or not why[0].isdigit():
                    print("FAIL: %s: snnc train --target cuda (%s) against --target c: %s" % (name, kind, why))
                    failed += 1
                    continue
                print("%s: snnc train --target cuda (%s) as --target c: %s" % (name, kind, why))
                passed += 1
        # resumed, and diverged: the first network
        model = os.path.join(d, "adam.snn")
        for kind, env in kinds.items():
            out = os.path.join(d, "resumed-" + kind)
            rc1, m1 = train(snnc, model, out, env, "cuda", ["--epochs", "1"])
            rc2, m2 = train(snnc, model, out, env, "cuda", ["--resume"])
            a = safetensors(os.path.join(out, "checkpoint.safetensors"))
            b = safetensors(os.path.join(d, "adam-%s" % kind, "checkpoint.safetensors"))
            same = sorted(a) == sorted(b) and all(a[k].tobytes() == b[k].tobytes() for k in b)
            if rc1 or rc2 or "resumed from" not in m2 or not same:
                print("FAIL: %s: an epoch, then --resume: not the state of two epochs at once (exit %d, %d)\n%s%s" %
                      (kind, rc1, rc2, m1, m2))
                failed += 1
            else:
                print("%s: an epoch then --resume: the weights and optimizer state of two epochs, bit for bit" % kind)
                passed += 1
        # snnc info: what the loop adds to the training workspace on the device, counted here for the first
        # network (input 24, 4 classes, T = 4, batch 16; 932 learnable parameters in 4 tensors, one block of
        # 4096): two batches (2 x 16 x 24) and their labels (2 x 16), the outputs and dL/doutput (2 x 4 x 16 x 4),
        # the report (2 + 1 doubles), the ranges (4 + 1 pairs of longs), an evaluation's input and outputs
        floats = 2 * 16 * 24 + 2 * 16 + 2 * 4 * 16 * 4 + 2 * (2 + 1) + 4 * (4 + 1) + 16 * 24 + 4 * 16 * 4
        rc, msg = sh([snnc, "info", os.path.join(d, "adam.snn"), "--target", "cuda", "--train", "--batch", "16"])
        said = re.search(r"^snnc train --target cuda adds (\d+) bytes of device memory", msg, re.M)
        if rc != 0 or not said or int(said.group(1)) != 4 * floats:
            print("FAIL: snnc info --target cuda --train: expected the loop's %d bytes\n%s" % (4 * floats, msg))
            failed += 1
        else:
            print("snnc info: snnc train --target cuda adds %d bytes, as counted here" % (4 * floats))
            passed += 1
        # snnc run --eval: the test split through the same loop's evaluation, the first network's weights
        model = os.path.join(d, "adam.snn")
        weights = os.path.join(d, "adam-c", "weights.safetensors")
        ev = {}
        for kind, env in [("c", plain)] + list(kinds.items()):
            rc, msg = sh([snnc, "run", model, "--eval", "--weights", weights, "--target", "cuda" if kind != "c" else "c"]
                         + (["--math", "exact"] if kind == "c" else []), env)
            got = re.search(r"accuracy ([0-9.]+)%, loss ([0-9.]+)", msg)
            ev[kind] = (float(got.group(1)), float(got.group(2))) if rc == 0 and got else msg
        for kind in kinds:
            if not isinstance(ev[kind], tuple) or not isinstance(ev["c"], tuple) or ev[kind][0] != ev["c"][0] or \
                    not close(ev[kind][1], ev["c"][1], 1e-4):
                print("FAIL: %s: snnc run --eval --target cuda: %r against --target c's %r" % (kind, ev[kind], ev["c"]))
                failed += 1
            else:
                print("%s: snnc run --eval --target cuda: accuracy %.2f%%, loss %.4f, as --target c" %
                      ((kind,) + ev[kind]))
                passed += 1
        # diverged: the loss (the second network without clipping), and a gradient (the third)
        for name in ("sgd_clip_tet", "adamw_mse"):
            model = os.path.join(d, "div-%s.snn" % name)
            with open(model, "w") as f:
                f.write(NETS[name].replace("clip 0.05;", "") % {"d": d})
            rc, ref = train(snnc, model, os.path.join(d, "div-%s-c" % name), plain, "c", ["--lr", "1e6"])
            ref = [diverged(line) for line in ref.splitlines() if "training diverged" in line]
            for kind, env in kinds.items():
                rc2, got = train(snnc, model, os.path.join(d, "div-%s-%s" % (name, kind)), env, "cuda", ["--lr", "1e6"])
                got = [diverged(line) for line in got.splitlines() if "training diverged" in line]
                if rc == 0 or rc2 == 0 or not ref or got != ref:
                    print("FAIL: %s: %s, --lr 1e6: %r against --target c's %r" % (name, kind, got, ref))
                    failed += 1
                else:
                    print("%s: %s, --lr 1e6 stops as --target c does: %s" % (name, kind, got[0]))
                    passed += 1
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
