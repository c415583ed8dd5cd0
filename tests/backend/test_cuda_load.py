#!/usr/bin/env python3
"""snnc run and snnc grad with --target cuda give the portable target's results.

snnc builds the cuda target's code with nvcc and loads it through the host
API that the target adds for it (compiler/backend/cuda/cuhost.c). With
SNNC_CUDA_EMULATE=1 in its environment it builds the same .cu with the C
compiler for the CPU instead: that is how this test runs on any machine.
Where a GPU and nvcc are present, it runs the GPU build too.

For every example and golden model, with --init 1 and an input of 3
samples large enough to make the layers spike (intensities in [0, 1.5)
for an input encoded into spikes, a rate-encoded one's drawn with --seed 3,
so that the seed must reach the device's encoder):
- snnc run: the output and the record of every neuron layer's output
  against --target c: spikes the same, every other value within 1e-5 of
  the largest magnitude of its array (at least 1): the products' sums are
  cuBLAS's, or, emulated, add the bias last (docs/targets.md);
- snnc grad (trained models), for a dL/doutput drawn once: every
  parameter's gradient within 1e-4 of the largest of that parameter's
  (or 1e-4 of the network's largest, where larger), and dL/dinput within
  1e-4 of its largest.
Also: without a GPU and without SNNC_CUDA_EMULATE, snnc run says the
machine has none; and, where nvcc is installed, the .cu that snnc run and
grad write (--keep-build) compiles with nvcc with every warning an error.

Usage: test_cuda_load.py SNNC DIR...  (NumPy; exit 77 without it or a C compiler)
"""
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

from test_cuda import find_nvcc, have_gpu  # beside this file


def sh(cmd, env=None):
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    return p.returncode, p.stdout + p.stderr


def safetensors(path):
    """{name: float32 array} of a safetensors file."""
    import numpy as np
    with open(path, "rb") as f:
        b = f.read()
    n = struct.unpack("<Q", b[:8])[0]
    head = json.loads(b[8:8 + n])
    return {k: np.frombuffer(b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]], dtype=np.float32)
            for k, v in head.items() if k != "__metadata__"}


def neuron_layers(ir):
    """(layer, spiking) of every neuron layer, from the IR's text: spiking when
    what it emits is a spike."""
    out = []
    for m in re.finditer(r"^  %\d+ (\w+) = neuron %\d+ model=\w+[^\n]*\n((?:    [^\n]*\n)*)", ir, re.M):
        emit = re.search(r"^    emit %(\d+)", m.group(2), re.M)
        out.append((m.group(1), bool(emit and re.search(r"^    %%%s = spike " % emit.group(1), m.group(2), re.M))))
    return out


def compare(what, got, ref, spiking, tol):
    """'' when got is ref within the bounds (module docstring), else why not."""
    import numpy as np
    if got.shape != ref.shape:
        return "%s: shape %s against %s" % (what, got.shape, ref.shape)
    if spiking:
        bad = int(np.sum(got != ref))
        return "%s: %d spikes differ" % (what, bad) if bad else ""
    scale = max(1.0, float(np.abs(ref).max()) if ref.size else 0.0)
    err = float(np.abs(got - ref).max()) if ref.size else 0.0
    return "%s: off by %g (bound %g)" % (what, err, tol * scale) if err > tol * scale else ""


def run_model(snnc, model, d, envs):
    """snnc run and grad of one model on each target of envs ({"c": env, ...}):
    (passed, failed)."""
    import numpy as np
    name = os.path.basename(model)
    rc, ir = sh([snnc, "compile", model, "--emit-ir"])
    if rc != 0:
        return 0, 0
    T = int(re.search(r"timesteps=(\d+)", ir).group(1))
    seq = "encode=sequence" in ir
    encoded = re.search(r"encode=(rate|latency)\b", ir)
    seed = ["--seed", "3"] if encoded and encoded.group(1) == "rate" else []
    shape = [int(v) for v in re.search(r"^  %0 \w+ = input -> \[([0-9,]+)\]", ir, re.M).group(1).split(",")]
    rng = np.random.default_rng(5)
    x = ((1.5 if encoded else 4.0) * rng.random([T, 3] + shape if seq else [3] + shape)).astype(np.float32)
    xin = os.path.join(d, "x.npy")
    np.save(xin, x)
    layers = neuron_layers(ir)[:8]
    out = {}
    for t, env in envs.items():
        files = [os.path.join(d, "%s-%s.npy" % (t, layer)) for layer, _ in layers]
        y = os.path.join(d, "%s-y.npy" % t)
        rc, msg = sh([snnc, "run", model, "--init", "1", "--input", xin, "--target", "cuda" if t != "c" else "c",
                      "--output", y] + seed + sum([["--record", "%s=%s" % (layer, f)] for (layer, _), f in zip(layers, files)],
                                           []), env)
        if rc != 0:
            print("FAIL: %s: snnc run --target %s (exit %d)\n%s" % (name, t, rc, msg))
            return 0, 1
        out[t] = [np.load(y)] + [np.load(f) for f in files]
    spikes = sum(int(a.sum()) for (_, s), a in zip(layers, out["c"][1:]) if s)
    for t in envs:
        if t == "c":
            continue
        for what, got, ref, spiking in zip(["output"] + [layer for layer, _ in layers], out[t], out["c"],
                                           [False] + [s for _, s in layers]):
            why = compare(what, got, ref, spiking, 1e-5)
            if why:
                print("FAIL: %s: snnc run --target cuda (%s) against --target c: %s" % (name, t, why))
                return 0, 1
        print("%s: snnc run --target cuda (%s): the output and %d records as --target c's (%d spikes)" %
              (name, t, len(layers), spikes))
    if not re.search(r"\bweight\b", ir) and "param " not in ir:
        return 1, 0
    ny = out["c"][0].shape
    steps = ny if len(ny) > 2 and ny[0] == T else (T,) + ny  # dL/doutput of every step
    gy = rng.uniform(-1.0, 1.0, steps).astype(np.float32)
    gfile = os.path.join(d, "gy.npy")
    np.save(gfile, gy)
    grads = {}
    for t, env in envs.items():
        g, dx = os.path.join(d, "%s-g.safetensors" % t), os.path.join(d, "%s-dx.npy" % t)
        rc, msg = sh([snnc, "grad", model, "--init", "1", "--input", xin, "--grad-output", gfile, "--output", g,
                      "--input-grad", dx, "--target", "cuda" if t != "c" else "c"] + seed, env)
        if rc != 0:
            if t == "c" and re.search(r"grad-output|does not train|cannot train", msg):
                return 1, 0  # a model snnc grad does not take
            print("FAIL: %s: snnc grad --target %s (exit %d)\n%s" % (name, t, rc, msg))
            return 0, 1
        grads[t] = (safetensors(g), np.load(dx))
    ref, dref = grads["c"]
    floor = 1e-4 * max([float(np.abs(v).max()) for v in ref.values() if v.size] + [0.0])
    for t in envs:
        if t == "c":
            continue
        got, dgot = grads[t]
        if sorted(got) != sorted(ref):
            print("FAIL: %s: snnc grad --target cuda (%s): tensors %s against %s" % (name, t, sorted(got), sorted(ref)))
            return 0, 1
        for k in ref:
            err = float(np.abs(got[k] - ref[k]).max()) if ref[k].size else 0.0
            if err > max(1e-4 * float(np.abs(ref[k]).max()), floor, 1e-30):
                print("FAIL: %s: snnc grad --target cuda (%s): %s off by %g of %g" %
                      (name, t, k, err, float(np.abs(ref[k]).max())))
                return 0, 1
        err = float(np.abs(dgot - dref).max() / max(float(np.abs(dref).max()), 1e-30))
        if err > 1e-4:
            print("FAIL: %s: snnc grad --target cuda (%s): dL/dinput off by %g relative" % (name, t, err))
            return 0, 1
        print("%s: snnc grad --target cuda (%s): %d gradients and dL/dinput as --target c's" % (name, t, len(ref)))
    return 1, 0


def main():
    snnc, dirs = sys.argv[1], sys.argv[2:]
    try:
        import numpy as np
    except ImportError:
        print("SKIPPED: no NumPy")
        return 77
    if not (shutil.which("cc") or shutil.which("gcc")):
        print("SKIPPED: no C compiler")
        return 77
    emulated = dict(os.environ, SNNC_CUDA_EMULATE="1")
    plain = {k: v for k, v in os.environ.items() if k != "SNNC_CUDA_EMULATE"}
    envs = {"c": plain, "emulated": emulated}
    gpu = have_gpu()
    if gpu and find_nvcc():
        envs["gpu"] = plain
        print("a GPU and nvcc are present: the GPU build runs too")
    else:
        print("the GPU build: skipped (%s)" % ("no nvcc" if gpu else "no GPU"))
    passed = failed = 0
    models = []
    for d in dirs:
        models += sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".snn"))
    mlp = [m for m in models if os.path.basename(m) == "fashion_mlp.snn"]
    with tempfile.TemporaryDirectory() as tmp:
        if mlp:  # without a GPU, the refusal (snnc train --target cuda: test_cuda_train.py)
            checks = []
            if not gpu:
                np.save(os.path.join(tmp, "x.npy"), np.ones((1, 1, 28, 28), np.float32))
                checks.append((plain, ["run", mlp[0], "--target", "cuda", "--init", "1", "--input",
                                       os.path.join(tmp, "x.npy"), "--output", os.path.join(tmp, "y.npy")],
                               "target 'cuda' needs an NVIDIA GPU"))
            for env, cmd, want in checks:
                rc, msg = sh([snnc] + cmd, env)
                if rc == 0 or want not in msg:
                    print("FAIL: snnc %s: expected %r, got (exit %d)\n%s" % (cmd[0], want, rc, msg))
                    failed += 1
                else:
                    print("refused: snnc %s --target cuda%s" % (cmd[0], " (emulated)" if env is emulated else ""))
                    passed += 1
        nvcc = find_nvcc()
        for model in [m for m in models if os.path.basename(m) in ("fashion_mlp.snn", "fashion_conv.snn")]:
            # the host API as nvcc builds it for the GPU: warnings are errors
            keep = os.path.join(tmp, "keep-" + os.path.basename(model)[:-4])
            x, g = os.path.join(tmp, "x2.npy"), os.path.join(tmp, "g2.npy")
            np.save(x, np.ones((2, 1, 28, 28), np.float32))
            np.save(g, np.ones((4, 2, 10), np.float32))  # the conv example: T = 4, 10 classes
            args = ["--target", "cuda", "--init", "1", "--keep-build", keep, "--input", x]
            cmd = ["grad", model] + args + ["--grad-output", g, "--output", os.path.join(tmp, "g.safetensors")] \
                if "conv" in model else ["run", model] + args + ["--record", "h1=" + os.path.join(tmp, "h1.npy")]
            rc, msg = sh([snnc] + cmd, emulated)
            cu = [f for f in os.listdir(keep) if f.endswith(".cu")] if os.path.isdir(keep) else []
            if rc != 0 or not cu:
                print("FAIL: snnc %s --target cuda --keep-build (emulated; exit %d)\n%s" % (cmd[0], rc, msg))
                failed += 1
            elif nvcc:
                rc, msg = sh([nvcc, "-arch=sm_90", "-O2", "-fmad=false", "-Xcompiler", "-Wall,-Wextra,-fPIC",
                              "-Werror", "all-warnings", "-shared", "-o", os.path.join(keep, "gpu.so"),
                              os.path.join(keep, cu[0]), "-lcublas"])
                if rc != 0:
                    print("FAIL: nvcc %s (the host API of snnc %s)\n%s" % (cu[0], cmd[0], msg[-3000:]))
                    failed += 1
                else:
                    print("%s with the host API of snnc %s: compiled by nvcc" % (cu[0], cmd[0]))
                    passed += 1
        if not nvcc:
            print("nvcc's build of the host API: skipped (no nvcc)")
        for model in models:
            d = os.path.join(tmp, os.path.basename(model)[:-4])
            os.makedirs(d)
            ok, bad = run_model(snnc, model, d, envs)
            passed += ok
            failed += bad
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
