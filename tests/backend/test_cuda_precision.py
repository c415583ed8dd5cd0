#!/usr/bin/env python3
"""--precision on the CUDA target: the products read their operands rounded.

A network of one dense layer without bias (T = 3, batch 2, 40 inputs, 24
outputs, readout steps) is compiled with --train --target cuda at each
precision, built with -DSNNC_CUDA_EMULATE, and driven by a program that
runs train_forward and train_backward for a given dL/doutput, with
weights, input and dL/doutput from files (random numbers whose mantissas
use all 23 bits, so that rounding shows). It prints the output, the weight
gradient and dL/dinput: the three products y = x W^T, dW = gy^T x and
dx = gy W.

The reference rounds the operands independently of snnc's code (bf16 and
fp16 through PyTorch's conversions, round to nearest even; tf32 by
clearing the low 13 bits of the mantissa after adding half an ulp, to
nearest even, in NumPy) and sums their products in float64. Bounds: every
value within 2e-6 of the rounded reference, relative to the largest of its
product (the emulated sums are fp32 in k order; measured: at most 3e-7);
and, for tf32, bf16 and fp16, farther than 1e-5 from the unrounded (fp32)
products, so that the rounding is seen to happen (measured: about 3e-4,
2e-3 and 3e-4 of the largest).

fp16's emulation does not model its narrower range (docs/targets.md); the
values here are within it. Also checked: the other targets refuse a
precision below fp32 (compile and run), and an unknown precision is a
usage error; nothing is written either way.

On a GPU the same program runs cuBLAS's products: `prepare SNNC DIR`
writes the .cu files, the programs and the data where snnc runs, and
`device DIR` builds them with nvcc and checks them on the GPU machine,
within 1e-5 of the rounded reference (cuBLAS chooses the order of the
sums and the matrix units' accumulation).

Usage: test_cuda_precision.py SNNC             (emulated, on this CPU)
       test_cuda_precision.py prepare SNNC DIR
       test_cuda_precision.py device DIR
Exit 77 (skipped) without a C compiler or NumPy.
"""
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile

from test_cuda import DEVICE_MEMORY, find_nvcc, have_gpu  # beside this file

NET = """\
network Prec {
  timesteps 3;
  input x : [40] encode sequence;
  y = x |> dense(24, bias = false);
  output y readout steps;
}
"""
T, B, I, O = 3, 2, 40, 24

MAIN = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "prec.h"
""" + DEVICE_MEMORY % {} + r"""
static float *load(const char *name, size_t n)
{
    float *v = (float *)calloc(n + 1, sizeof(float));
    FILE *f = fopen(name, "rb");
    if (!v || !f || fread(v, sizeof(float), n, f) != n)
        exit(2);
    fclose(f);
    return v;
}

int main(void)
{
    const size_t nin = (size_t)PREC_TIMESTEPS * 2 * PREC_INPUT_SIZE, nout = (size_t)PREC_TIMESTEPS * 2 * PREC_OUTPUT_SIZE;
    const size_t np = (size_t)PREC_PARAM_FLOATS;
    float *w = load("w.bin", np), *x = load("x.bin", nin), *gy = load("gy.bin", nout);
    float *y = (float *)calloc(nout, sizeof(float)), *dx = (float *)calloc(nin, sizeof(float));
    float *dw = (float *)calloc(np, sizeof(float));
    float *ws = dev(PREC_TRAIN_WORKSPACE_FLOATS), *dev_x = dev(nin), *dev_gy = dev(nout), *dev_y = dev(nout);
    float *dev_dx = dev(nin);
    size_t i;
#ifndef SNNC_CUDA_EMULATE
    if (cublasCreate(&BLAS) != CUBLAS_STATUS_SUCCESS)
        return 3;
#endif
    put(ws, w, np);
    put(dev_x, x, nin);
    put(dev_gy, gy, nout);
    check(prec_train_forward(ws, 2, dev_x, dev_y, 1, 0, STREAM, BLAS), "train_forward");
    check(prec_train_backward(ws, 2, dev_x, dev_gy, dev_dx, STREAM, BLAS), "train_backward");
    get(y, dev_y, nout);
    get(dx, dev_dx, nin);
    get(dw, prec_train_grads(ws), np);
    for (i = 0; i < nout; i++)
        printf("y %.9g\n", y[i]);
    for (i = 0; i < np; i++)
        printf("dw %.9g\n", dw[i]);
    for (i = 0; i < nin; i++)
        printf("dx %.9g\n", dx[i]);
    return 0;
}
"""


def rounded(a, prec):
    """a (float32) as the matrix units read it at prec, as float64."""
    import numpy as np
    if prec == "fp32":
        return a.astype(np.float64)
    if prec in ("bf16", "fp16"):
        import torch
        t = torch.from_numpy(a.copy())
        return (t.to(torch.bfloat16) if prec == "bf16" else t.to(torch.float16)).to(torch.float64).numpy()
    u = a.view(np.uint32).astype(np.uint64)  # tf32: 10 bits of mantissa, to nearest even
    u = (u + 0xFFF + ((u >> 13) & 1)) & 0xFFFFE000
    return u.astype(np.uint32).view(np.float32).astype(np.float64)


def products(w, x, gy, prec):
    """y = x W^T, dW = gy^T x, dx = gy W over the T * B rows, in float64."""
    X, G, W = rounded(x, prec).reshape(T * B, I), rounded(gy, prec).reshape(T * B, O), rounded(w, prec).reshape(O, I)
    return {"y": (X @ W.T).ravel(), "dw": (G.T @ X).ravel(), "dx": (G @ W).ravel()}


def worst(got, ref):
    """The largest difference of each product, relative to its largest value."""
    return {k: float(abs(got[k] - ref[k]).max() / max(abs(ref[k]).max(), 1e-30)) for k in ref}


NVCC_FLAGS = ["-arch=sm_90", "-O2", "-fmad=false", "-Xcompiler", "-Wall,-Wextra", "-Werror", "all-warnings"]


def data():
    """The weights, input and dL/doutput (float32, every mantissa bit used)."""
    import numpy as np
    rng = np.random.default_rng(7)
    return (rng.uniform(-0.5, 0.5, O * I).astype(np.float32), rng.uniform(-1.0, 1.0, T * B * I).astype(np.float32),
            rng.uniform(-1.0, 1.0, T * B * O).astype(np.float32))


def generate(snnc, out, precisions):
    """Each precision's .cu, its program and the data in out/PREC: '' or why not."""
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "prec.snn"), "w") as f:
        f.write(NET)
    for prec in precisions:
        d = os.path.join(out, prec)
        r = subprocess.run([snnc, "compile", os.path.join(out, "prec.snn"), "--train", "--batch", "2", "--target",
                            "cuda", "--precision", prec, "-o", d], capture_output=True, text=True)
        if r.returncode != 0:
            return "%s: snnc compile\n%s" % (prec, r.stderr)
        for name, v in zip(("w.bin", "x.bin", "gy.bin"), data()):
            v.tofile(os.path.join(d, name))
        for name in ("main.c", "main.cu"):
            with open(os.path.join(d, name), "w") as f:
                f.write(MAIN)
    return ""


def check(d, prec, build, bound):
    """Builds and runs one precision's program in d: (failed, its line)."""
    import numpy as np
    r = subprocess.run(build, cwd=d, capture_output=True, text=True)
    if r.returncode == 0:
        r = subprocess.run([os.path.join(d, "prog")], cwd=d, capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        return 1, "FAIL: %s: build or run (exit %d)\n%s" % (prec, r.returncode, (r.stdout + r.stderr)[-2000:])
    vals = {"y": [], "dw": [], "dx": []}
    for line in r.stdout.splitlines():
        k, v = line.split()
        vals[k].append(float(v))
    got = {k: np.array(v) for k, v in vals.items()}
    w, x, gy = data()
    exact = products(w, x, gy, "fp32")
    if any(len(got[k]) != len(exact[k]) for k in exact):
        return 1, "FAIL: %s: %s values printed" % (prec, {k: len(v) for k, v in got.items()})
    near, far = worst(got, products(w, x, gy, prec)), worst(got, exact)
    bad = [k for k in near if near[k] > bound]
    if prec != "fp32":
        bad += [k + " (no rounding seen)" for k in far if far[k] <= 1e-5]
    line = ", ".join("%s %.2g from the rounded reference, %.2g from fp32" % (k, near[k], far[k]) for k in near)
    return (1, "FAIL: --precision %s: %s: %s" % (prec, ", ".join(bad), line)) if bad else \
        (0, "--precision %s: %s" % (prec, line))


def refusals(snnc):
    """Other targets refuse a precision below fp32, and a precision snnc does
    not know is a usage error: the number of checks that failed."""
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        net = os.path.join(tmp, "prec.snn")
        with open(net, "w") as f:
            f.write(NET)
        x = os.path.join(tmp, "x.npy")
        with open(x, "wb") as f:  # [T, 1, 40] zeros, NumPy's format 1.0
            head = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 1, 40), }"
            head += " " * (127 - 10 - len(head)) + "\n"
            f.write(b"\x93NUMPY\x01\x00" + len(head).to_bytes(2, "little") + head.encode() + bytes(4 * 120))
        for cmd, rc, want in (
                (["compile", net, "--precision", "bf16", "-o", os.path.join(tmp, "c")], 1,
                 "target 'c' computes in fp32 only: --precision bf16 is for target 'cuda'"),
                (["compile", net, "--target", "avx2", "--precision", "tf32", "-o", os.path.join(tmp, "c")], 1,
                 "target 'avx2' computes in fp32 only: --precision tf32 is for target 'cuda'"),
                (["run", net, "--init", "1", "--target", "c", "--precision", "fp16", "--input", x, "--output",
                  os.path.join(tmp, "y.npy")], 1, "target 'c' computes in fp32 only: --precision fp16"),
                (["compile", net, "--target", "cuda", "--precision", "bf8", "-o", os.path.join(tmp, "c")], 2,
                 "--precision needs fp32, tf32, bf16 or fp16, got 'bf8'")):
            r = subprocess.run([snnc] + cmd, capture_output=True, text=True)
            if r.returncode != rc or want not in r.stderr or os.path.exists(os.path.join(tmp, "c")) or \
                    os.path.exists(os.path.join(tmp, "y.npy")):
                print("FAIL: snnc %s: expected exit %d and %r, got exit %d\n%s" % (" ".join(cmd[:1] + cmd[2:]), rc, want,
                                                                                 r.returncode, r.stderr))
                failed += 1
            else:
                print("refused: snnc %s" % " ".join(os.path.basename(c) if tmp in c else c for c in cmd))
    return failed


def main():
    args = sys.argv[1:]
    mode = args.pop(0) if args and args[0] in ("prepare", "device") else "emulate"
    if not importlib.util.find_spec("numpy"):
        print("SKIPPED: no NumPy")
        return 77
    precisions = ["fp32", "tf32", "bf16", "fp16"]
    if not importlib.util.find_spec("torch"):  # the bf16 and fp16 references
        print("torch is missing: bf16 and fp16 are not checked (their reference is PyTorch's conversion)")
        precisions = ["fp32", "tf32"]
    if mode == "prepare":  # test_cuda_precision.py prepare SNNC DIR: for a GPU machine without snnc
        why = generate(args[0], args[1], ["fp32", "tf32", "bf16", "fp16"])
        print("FAIL: " + why if why else "prepared %s" % args[1])
        return 1 if why else 0
    failed = 0
    if mode == "device":  # test_cuda_precision.py device DIR: nvcc, cuBLAS on the GPU
        nvcc = find_nvcc()
        if not nvcc or not have_gpu():
            print("SKIPPED: %s" % ("no nvcc" if not nvcc else "no GPU"))
            return 77
        for prec in precisions:
            bad, line = check(os.path.join(args[0], prec), prec,
                              [nvcc] + NVCC_FLAGS + ["-o", "prog", "prec.cu", "main.cu", "-lcublas"], 1e-5)
            failed += bad
            print(line)
    else:
        cc = shutil.which("gcc") or shutil.which("cc")
        if not cc:
            print("SKIPPED: no C compiler")
            return 77
        failed += refusals(args[0])
        with tempfile.TemporaryDirectory() as tmp:
            why = generate(args[0], tmp, precisions)
            if why:
                print("FAIL: " + why)
                return 1
            for prec in precisions:
                bad, line = check(os.path.join(tmp, prec), prec,
                                  [cc, "-std=c99", "-O2", "-ffp-contract=off", "-Wall", "-Wextra", "-Wpedantic",
                                   "-Werror", "-DSNNC_CUDA_EMULATE", "-o", "prog", "-x", "c", "prec.cu", "-x", "none",
                                   "main.c", "-lm"], 2e-6)
                failed += bad
                print(line)
    print("%d precisions, %d failed" % (len(precisions), failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
