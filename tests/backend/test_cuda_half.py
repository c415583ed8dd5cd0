#!/usr/bin/env python3
"""--precision bf16 and fp16 on the CUDA target: the neuron states that the
backward reads are stored in 16 bits.

1. The conversions. The generated .cu of a trained network, built with
   -DSNNC_CUDA_EMULATE, is included by a program that calls its to16 and
   from16 on every one of the 65536 16-bit patterns and on 2^21 floats (the
   formats' edges and ties, spread bit patterns, and uniform values), and
   prints the bits. The reference is PyTorch's conversions (bfloat16 and
   float16, round to nearest even), bit for bit; a NaN must stay a NaN.

2. The backward from rounded states. `snnc grad --target cuda` (emulated)
   of a network of one LIF layer (hard reset through the spike, T = 16,
   batch 4, 64 neurons, a sequence input) gives dL/dinput for a drawn
   dL/doutput. The reference runs the forward in float32 in the order of
   the generated code (so its states are snnc's, bit for bit), rounds the
   state at the start of every step with PyTorch's conversion, and runs the
   backward in float64 with autograd, a step at a time from the rounded
   state and the input, as the generated backward recomputes it: spikes,
   surrogate derivative and reset all from the rounded state. Bound: within
   1e-5 of the largest value (the fp32 round-off of 16 reverse steps), and
   farther than 1e-4 from the same backward from the unrounded states, so
   that the rounding is seen to happen (measured: 1.9e-7 from the rounded
   reference; 1.7e-3 (bf16) and 1.7e-4 (fp16) from the unrounded one). The drawn input keeps every membrane at least 1e-3 from the
   threshold, in the forward and in the recomputation from rounded states,
   so that float32 and float64 take the same spike decisions.

   Where nvcc and a GPU are, the same `snnc grad` also runs the nvcc build
   on the GPU, against the same reference and bounds (the conversions are
   device code there, checked through it).

3. Memory: `snnc info --target cuda --train` prints the stored states at
   half their fp32 size, by the count made here (and in part 4, the
   values kept shrink by half the states and half the 16-bit output).

4. A dense layer's product in 16 bits. In Linear(64, 160) + LIF (T = 16,
   batch 12) the product that only the LIF layer reads, and its gradient
   over it, are 16-bit, and the layer's products read 16-bit operands
   (the weights and the bias rounded, the input) summed in fp32. The
   weights and the input are rounded in blocks of 4096 rows: one block
   each here, and with SNNC_CUDA_HALF_ROWS=100 two of each (outputs 100
   and 60, steps 9 and 7), which the same checks run on: there the
   forward's outer loop runs over the blocks of steps (it converts 512 x 64
   values that way, 544 x 64 the other), which the generated code must say.
   `snnc grad` gives the spikes of every step, dL/dw, dL/db and dL/dinput.
   The drawn values make every sum exact in float32, in any order: the
   input is multiples of 1/4 in [-1, 1], the weights and the bias are
   float32 values whose 16-bit roundings are at least 2^-6 in magnitude,
   and dL/doutput is multiples of 1/8; the LIF layer detaches its reset
   and has the rect surrogate, so that its backward only adds, halves and
   zeroes. So the product and dL/dproduct before their rounding are the
   float64 values, and the reference rounds them with PyTorch: the
   product (with the bias, itself rounded) to 16 bits, the LIF forward in
   float32 from it (its spikes must equal snnc's), the states stored
   rounded, the LIF backward in float64 from them, dL/dproduct rounded to
   16 bits, then dL/dw = gy^T x, dL/db and dL/dinput = gy w in float64.
   Bound: within 1e-6 of each gradient's largest value (what remains is
   fp32 round-off of dL/dinput's sums: measured 1.3e-7 (bf16), 2.3e-7
   (fp16); the others came out equal), and farther than 1e-5 from the
   same computation with nothing rounded, so that the roundings are seen
   (measured: 0.11-0.16 (bf16), 0.08 (fp16): spikes move). On a GPU,
   where cuBLAS orders the sums of the weight and input gradients, within
   1e-5. The values kept for the backward (`snnc info`) shrink by half the
   states and half the product.

   Two layers (Linear(64, 64) + LIF, Linear(64, 32) + LIF: the second
   product reads the hidden spikes kept as bits): emulated, the code with
   SNNC_CUDA_HALF_ROWS=40 (blocks of rows and of columns everywhere,
   columns of the bits starting inside a word) gives the same spikes and
   gradients, bit for bit, as the code in one block, since every element
   sums the same terms in the same order; both within 0.2 of the fp32
   code's largest gradient (a check that they are gradients of the same
   network, not of the rounding: spikes move with bf16). In blocks of 40
   the first forward's outer loop runs over the blocks of outputs (448 x 64
   conversions either way), the other order than part 4's. Batch
   normalization's output read by a LIF layer is 16-bit too (no product):
   for batchnorm + LIF (8 channels of 2 x 2, batch 12) the reference
   computes the batch's mean and deviation as the generated code does (in
   double, rounded to float32; the input is multiples of 1/16, so the
   mean's sum is exact in any order), y in float32 in the code's order,
   rounded by PyTorch, the LIF layer as above, then batch normalization's
   backward in float64 from the rounded dL/dy: the spikes equal, dL/dgamma,
   dL/dbeta and dL/dinput within 1e-6 (measured: up to 1.3e-7), and
   farther than 1e-5 from the unrounded computation. `snnc grad
   --record` is refused there (its records come from the inference code,
   whose product is fp32), leaving no file.

   A convolution's output read by a LIF layer is 16-bit too: for a 3 x 3
   convolution of CI = 2 channels to CO = 4 (6 x 6 pixels, padding 1,
   batch 12) + LIF, drawn as the dense layer's (exact sums in any order),
   the reference computes the product with PyTorch's conv2d in float64 on
   the operands rounded as cuBLAS's fast modes round them (the code's
   products read fp32 operands), adds the bias in float32, rounds y, runs
   the LIF layer as above, rounds dL/dy, and takes dL/dw, dL/db and
   dL/dinput by autograd of conv2d in float64: the spikes equal, the
   gradients within 1e-6 (measured: up to 8e-8), and farther than 1e-5
   both from the unrounded computation and from the same computation with
   y and dL/dy in fp32 (the code before its output was 16-bit), so that
   the output's rounding is seen. On a GPU, within 1e-5.

5. Where nvcc is (a GPU or not), the training code of these networks and
   of the examples fashion_mlp, fashion_conv, dalif_conv and fashion_rate
   (16-bit products of dense layers reading spikes kept as bits, or a
   rate-encoded input that needs no gradient, of batchnorm layers), in
   both formats, compiles with nvcc, warnings as errors.

Usage: test_cuda_half.py SNNC
Exit 77 (skipped) without a C compiler, NumPy or PyTorch.
"""
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile

from test_cuda import NVCC_FLAGS, find_nvcc, have_gpu  # beside this file

T, B, N = 16, 4, 64
NI, NO, DB = 64, 160, 12  # part 4: Linear(NI, NO) + LIF, batch DB
CI, CO = 2, 4  # part 4: a 3 x 3 convolution of CI channels to CO, 6 x 6 pixels, + LIF, batch DB

NET = """\
network Half {
  timesteps %d;
  input x : [%d] encode sequence;
  h = x |> LIF() as h;
  output h readout steps;
}
""" % (T, N)

DENSE_NET = """\
network HalfDense {
  timesteps %d;
  input x : [%d] encode sequence;
  h = x |> dense(%d) |> LIF(detach_reset = true, surrogate = rect(1.0)) as h;
  output h readout steps;
}
""" % (T, NI, NO)

DEEP_NET = """\
network HalfDeep {
  timesteps %d;
  input x : [%d] encode sequence;
  h = x |> dense(64) |> LIF() |> dense(32) |> LIF() as h;
  output h readout steps;
}
""" % (T, NI)

CONV_NET = """\
network HalfConv {
  timesteps %d;
  input x : [%d, 6, 6] encode sequence;
  h = x |> conv2d(%d, 3, padding = 1) |> LIF(detach_reset = true, surrogate = rect(1.0)) as h;
  output h readout steps;
}
""" % (T, CI, CO)

NORM_NET = """\
network HalfNorm {
  timesteps %d;
  input x : [8, 2, 2] encode sequence;
  h = x |> batchnorm() |> LIF(detach_reset = true, surrogate = rect(1.0)) as h;
  output h readout steps;
}
""" % T

# includes the emulated .cu: its static to16 and from16 are visible here
MAIN = r"""
#include "half.cu"
#include <stdio.h>

int main(int argc, char **argv)
{
    FILE *in = fopen(argv[1], "rb"), *out = fopen(argv[2], "wb");
    float x;
    uint16_t h;
    long n;
    (void)argc;
    if (!in || !out)
        return 1;
    for (n = 0; n < 65536; n++) { /* every pattern, as a float */
        float f = half_from16((uint16_t)n);
        fwrite(&f, sizeof f, 1, out);
    }
    while (fread(&x, sizeof x, 1, in) == 1) {
        h = half_to16(x);
        fwrite(&h, sizeof h, 1, out);
    }
    return fclose(out) != 0 || fclose(in) != 0;
}
"""


def floats():
    """The floats whose conversion is checked (float32): every bf16 value,
    its neighbours and the ties between (16 bits dropped); the same for
    fp16's normals (13 bits dropped) and its subnormals' ties (halves of
    2^-24); the edges of both ranges; random bit patterns, random fp16
    subnormals and uniform values."""
    import numpy as np
    rng = np.random.default_rng(11)
    bf = np.arange(1 << 16, dtype=np.uint32) << 16
    fp = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16).astype(np.float32)
    fp = fp[np.isfinite(fp)].view(np.uint32)
    q = np.arange(1024, dtype=np.float64)
    subties = np.concatenate([(q + 0.5) * 2.0 ** -24, -(q + 0.5) * 2.0 ** -24]).astype(np.float32).view(np.uint32)
    specials = np.array([0.0, -0.0, 65504.0, 65519.99, 65520.0, 65536.0, 2.0 ** -14, 2.0 ** -24, 2.0 ** -25,
                         1.5 * 2.0 ** -25, 2.0 ** -26, 3.0 * 2.0 ** -25, 1e-30, 3.4e38, np.inf, -np.inf, np.nan],
                        dtype=np.float32).view(np.uint32)
    sub = rng.integers(0x33000000, 0x38800000, 1 << 17, dtype=np.uint64).astype(np.uint32)
    bits = rng.integers(0, 1 << 32, 1 << 19, dtype=np.uint64).astype(np.uint32)
    uni = rng.uniform(-4.0, 4.0, 1 << 18).astype(np.float32).view(np.uint32)
    u = np.concatenate([bf, bf + 0x7fff, bf + 0x8000, bf + 0x8001, fp, fp + 0xfff, fp + 0x1000, fp + 0x1001,
                        fp - 1, subties, subties + 1, subties - 1, specials, sub, sub | 0x80000000, bits, uni])
    return u.astype(np.uint32).view(np.float32)


def torch_bits(a, fmt):
    """The 16-bit patterns of PyTorch's conversion of float32 a, as uint16."""
    import numpy as np
    import torch
    t = torch.from_numpy(np.ascontiguousarray(a)).to(torch.bfloat16 if fmt == "bf16" else torch.float16)
    return t.view(torch.int16).numpy().view(np.uint16)


def torch_from(bits16, fmt):
    import numpy as np
    import torch
    t = torch.from_numpy(bits16.view(np.int16).copy()).view(torch.bfloat16 if fmt == "bf16" else torch.float16)
    return t.to(torch.float32).numpy()


def conversions(snnc, cc, tmp, fmt):
    """Part 1 for one format: (failed, line)."""
    import numpy as np
    d = os.path.join(tmp, "conv_" + fmt)
    r = subprocess.run([snnc, "compile", os.path.join(tmp, "half.snn"), "--train", "--batch", str(B), "--target",
                        "cuda", "--precision", fmt, "-o", d], capture_output=True, text=True)
    if r.returncode != 0:
        return 1, "FAIL: %s: snnc compile\n%s" % (fmt, r.stderr)
    with open(os.path.join(d, "main.c"), "w") as f:
        f.write(MAIN)
    x = floats()
    x.tofile(os.path.join(d, "x.bin"))
    r = subprocess.run([cc, "-std=c99", "-O1", "-ffp-contract=off", "-Wall", "-Wextra", "-Wpedantic", "-Werror",
                        "-DSNNC_CUDA_EMULATE", "-I", d, "-o", "prog", "main.c", "-lm"],
                       cwd=d, capture_output=True, text=True)
    if r.returncode == 0:
        r = subprocess.run([os.path.join(d, "prog"), "x.bin", "y.bin"], cwd=d, capture_output=True, text=True)
    if r.returncode != 0:
        return 1, "FAIL: %s: build or run (exit %d)\n%s" % (fmt, r.returncode, (r.stdout + r.stderr)[-2000:])
    out = np.fromfile(os.path.join(d, "y.bin"), dtype=np.uint8)
    got_from = out[:65536 * 4].view(np.float32)
    got_to = out[65536 * 4:].view(np.uint16)
    want_from = torch_from(np.arange(65536, dtype=np.uint32).astype(np.uint16), fmt)
    want_to = torch_bits(x, fmt)
    bad = []
    nan = np.isnan(want_from)
    if not np.array_equal(np.isnan(got_from), nan) or \
            not np.array_equal(got_from[~nan].view(np.uint32), want_from[~nan].view(np.uint32)):
        k = int(np.flatnonzero((got_from.view(np.uint32) != want_from.view(np.uint32)) & ~nan)[0]) \
            if (got_from.view(np.uint32) != want_from.view(np.uint32))[~nan].any() else -1
        bad.append("from16: pattern %#06x gives %r, PyTorch %r" % (k, got_from[k], want_from[k]))
    if len(got_to) != len(x):
        bad.append("to16: %d results for %d floats" % (len(got_to), len(x)))
    else:
        wnan = np.isnan(torch_from(want_to, fmt))
        gnan = np.isnan(torch_from(got_to, fmt))
        diff = (got_to != want_to) & ~wnan
        if not np.array_equal(wnan, gnan) or diff.any():
            k = int(np.flatnonzero(diff | (wnan != gnan))[0])
            bad.append("to16(%r = %#010x) gives %#06x, PyTorch %#06x" % (float(x[k]), int(x.view(np.uint32)[k]),
                                                                    int(got_to[k]), int(want_to[k])))
    line = "%s conversions: 65536 patterns to float, %d floats to %s" % (fmt, len(x), fmt)
    return (1, "FAIL: " + line + ": " + "; ".join(bad)) if bad else (0, line + ", each as PyTorch's")


def draw(rng):
    """x [T, B, N] whose membranes stay 1e-3 from the threshold in the
    float32 forward and in the float64 recomputation from every rounding."""
    import numpy as np
    for _ in range(1000):
        x = (rng.standard_normal((T, B, N)) * 1.2 + 0.9).astype(np.float32)
        f = forward32(x)
        ok = all(np.abs(h - 1).min() > 1e-3 for h in f["h"])
        for fmt in ("bf16", "fp16"):
            vr = rounded(f["v"], fmt)
            h = vr[:T] + (x.astype(np.float64) - vr[:T]) / 2.0
            ok = ok and np.abs(h - 1).min() > 1e-3
        if ok:
            return x
    raise RuntimeError("no input keeps away from the threshold")


def forward32(x):
    """The float32 forward of the generated code: v, the state at the start
    of every step [T + 1, B, N], and h of every step."""
    import numpy as np
    v = np.zeros(x.shape[1:], dtype=np.float32)
    vs, hs = [v], []
    half = np.float32(0.5)
    for t in range(T):
        h = v + (x[t] - v) * half  # (x - v) / 2: exact either way
        s = (h - np.float32(1.0) >= 0).astype(np.float32)
        v = (np.float32(1.0) - s) * h + s * np.float32(0.0)
        vs.append(v)
        hs.append(h)
    return {"v": np.stack(vs), "h": hs}


def rounded(v, fmt):
    """float32 v rounded to fmt by PyTorch, as float64."""
    import torch
    t = torch.from_numpy(v.copy()).to(torch.bfloat16 if fmt == "bf16" else torch.float16)
    return t.to(torch.float64).numpy()


def reference_dx(x, gy, fmt, rect=False):
    """dL/dx from the states stored in fmt (None: unrounded), float64. The
    LIF layer of part 2 (sigmoid(4) surrogate), or with rect that of part 4
    (rect(1) surrogate, the reset detached)."""
    import numpy as np
    import torch

    class Spike(torch.autograd.Function):
        @staticmethod
        def forward(ctx, u):
            ctx.save_for_backward(u)
            return (u >= 0).to(u.dtype)

        @staticmethod
        def backward(ctx, g):
            (u,) = ctx.saved_tensors
            if rect:  # 1/alpha where |u| <= alpha/2, alpha = 1
                return g * (u.abs() <= 0.5).to(u.dtype)
            sg = torch.sigmoid(4.0 * u)
            return g * 4.0 * sg * (1 - sg)

    v = forward32(x)["v"]
    vst = rounded(v, fmt) if fmt else v.astype(np.float64)
    dx = np.zeros(x.shape)
    dv = torch.zeros(x.shape[1:], dtype=torch.float64)
    for t in reversed(range(T)):
        vt = torch.tensor(vst[t], requires_grad=True)
        xt = torch.tensor(x[t].astype(np.float64), requires_grad=True)
        h = vt + (xt - vt) / 2.0
        s = Spike.apply(h - 1.0)
        vn = (1 - (s.detach() if rect else s)) * h + s * 0.0
        gv, gx = torch.autograd.grad([s, vn], [vt, xt], [torch.tensor(gy[t].astype(np.float64)), dv])
        dx[t] = gx.numpy()
        dv = gv
    return dx


def backward(snnc, tmp, fmt, x, gy, kind):
    """Part 2 for one format, emulated or on the GPU: (failed, line)."""
    import numpy as np
    d = os.path.join(tmp, "grad_%s_%s" % (fmt, kind))
    os.makedirs(d)
    np.save(os.path.join(d, "x.npy"), x)
    np.save(os.path.join(d, "g.npy"), gy)
    env = {k: v for k, v in os.environ.items() if k != "SNNC_CUDA_EMULATE"}
    env["SNNC_CACHE_DIR"] = ""
    if kind == "emulated":
        env["SNNC_CUDA_EMULATE"] = "1"
    r = subprocess.run([snnc, "grad", os.path.join(tmp, "half.snn"), "--target", "cuda", "--precision", fmt,
                        "--batch", str(B), "--input", "x.npy", "--grad-output", "g.npy", "--output", "g.safetensors",
                        "--input-grad", "dx.npy"], cwd=d, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        return 1, "FAIL: %s: snnc grad (exit %d)\n%s" % (fmt, r.returncode, r.stderr[-2000:])
    got = np.load(os.path.join(d, "dx.npy")).astype(np.float64)
    want, plain = reference_dx(x, gy, fmt), reference_dx(x, gy, None)
    scale = max(abs(want).max(), 1e-30)
    near, far = abs(got - want).max() / scale, abs(got - plain).max() / scale
    line = "%s, %s: dL/dx %.2g from the rounded-state reference, %.2g from the unrounded one" % (
        fmt, kind, near, far)
    if near > 1e-5 or far <= 1e-4:
        return 1, "FAIL: " + line
    return 0, line


def memory(snnc, tmp, fmt):
    """Part 3 for one format: (failed, line)."""
    def info(prec):
        r = subprocess.run([snnc, "info", os.path.join(tmp, "half.snn"), "--target", "cuda", "--train", "--batch",
                            str(B), "--precision", prec], capture_output=True, text=True)
        m = re.search(r"training (\d+) bytes", r.stdout + r.stderr)
        return (int(m.group(1)) if m else None), r.stdout + r.stderr
    full, out32 = info("fp32")
    half, out16 = info(fmt)
    states = (T + 1) * B * N * 4  # one state, T + 1 steps, in fp32 bytes
    if full is None or half is None or full - half != states // 2:
        return 1, "FAIL: %s: snnc info's training memory %r against %r for fp32; expected %d bytes less\n%s" % (
            fmt, half, full, states // 2, out16)
    if ("states of h stored in %s" % fmt) not in out16:
        return 1, "FAIL: %s: snnc info does not say the states are stored in %s\n%s" % (fmt, fmt, out16)
    return 0, "%s: training memory %d bytes, fp32's %d less the states' half (%d)" % (fmt, half, full, states // 2)


def dense_draw(rng):
    """Part 4's x [T, B, NI], w [NO, NI], b [NO] and dL/doutput [T, B, NO]:
    exact sums (see the docstring). The reference's forward is the
    generated code's float32 forward, bit for bit; the backward recomputes
    the membranes from the rounded states in float64, where the generated
    code does in float32: the draw is kept where both take the same
    decisions (spike, and the surrogate's window |h - 1| <= 0.5)."""
    import numpy as np

    for _ in range(1000):
        x = (rng.integers(-4, 5, (T, DB, NI)) / 4.0).astype(np.float32)
        w = away16(rng.uniform(-0.4, 0.4, (NO, NI)))
        b = away16(rng.uniform(-0.4, 0.4, NO) + 0.5)
        gy = (rng.integers(-8, 9, (T, DB, NO)) / 8.0).astype(np.float32)
        if all(same_decisions(dense_product(x, w, b, fmt), fmt) for fmt in ("bf16", "fp16")):
            return x, w, b, gy
    raise RuntimeError("no draw keeps away from the threshold")


def away16(a):
    """float32 a with no magnitude below 2^-6, where a 16-bit rounding would be subnormal."""
    import numpy as np
    return np.where(np.abs(a) < 2.0 ** -6, np.sign(a) * 2.0 ** -6 + (a == 0) * 2.0 ** -6, a).astype(np.float32)


def same_decisions(y, fmt):
    """Whether the LIF backward from the states rounded to fmt takes the
    same decisions in float32 (the generated code) and float64 (the
    reference) for the product y [T, rows, ...]."""
    import numpy as np
    y = y.reshape(T, y.shape[1], -1)
    vr = rounded(forward32(y)["v"], fmt)
    v32 = vr[:T].astype(np.float32)
    h32 = v32 + (y - v32) / np.float32(2.0)
    h64 = vr[:T] + (y.astype(np.float64) - vr[:T]) / 2.0
    return all((a == b).all() for a, b in zip(decisions(h32), decisions(h64)))


def decisions(h):
    """The LIF backward's decisions at membrane h: spike, and inside the rect surrogate's window."""
    import numpy as np
    return h - 1 >= 0, np.abs(h - 1) <= 0.5


def dense_product(x, w, b, fmt):
    """The 16-bit product as float32: exact in float64 from the rounded
    operands, then rounded (fmt None: the product of the unrounded ones)."""
    import numpy as np
    if fmt is None:
        return (x.astype(np.float64) @ w.T.astype(np.float64) + b).astype(np.float32)
    y = rounded(x, fmt) @ rounded(w, fmt).T + rounded(b, fmt)
    assert (y.astype(np.float32) == y).all(), "the draw's sums are not exact in float32"
    return rounded(y.astype(np.float32), fmt).astype(np.float32)


def dense_reference(x, w, b, gy, fmt):
    """Part 4's spikes, dL/dw, dL/db and dL/dinput (fmt None: nothing rounded)."""
    import numpy as np
    y = dense_product(x, w, b, fmt)
    spikes = (np.stack(forward32(y)["h"]) - np.float32(1.0) >= 0).astype(np.float32)
    dy = reference_dx(y, gy, fmt, rect=True)
    if fmt:
        assert (dy.astype(np.float32) == dy).all(), "the draw's backward is not exact in float32"
        dy = rounded(dy.astype(np.float32), fmt)
    w64 = rounded(w, fmt) if fmt else w.astype(np.float64)
    rows = dy.reshape(-1, NO)
    return {"spikes": spikes, "h_dense.weight": rows.T @ x.reshape(-1, NI).astype(np.float64),
            "h_dense.bias": rows.sum(0), "dinput": dy @ w64}


def compare(got, want, plain, names, near_bound, partly=None):
    """The spikes against the reference's, then each gradient within
    near_bound of it and farther than 1e-5 from the unrounded computation
    (and from partly, the computation with an output kept in fp32, where
    given), relative to its largest value: (bad, text)."""
    import numpy as np
    flips = int((got["output"] != want["spikes"]).sum())
    bad, parts = flips != 0, ["%d spikes differ" % flips]
    for name in names:
        g = got[name].astype(np.float64)
        scale = max(abs(want[name]).max(), 1e-30)
        near, far = abs(g - want[name]).max() / scale, abs(g - plain[name]).max() / scale
        bad = bad or near > near_bound or far <= 1e-5
        text = "%s %.2g from the reference, %.2g from the unrounded one" % (name, near, far)
        if partly is not None:
            fp32 = abs(g - partly[name]).max() / scale
            bad = bad or fp32 <= 1e-5
            text += ", %.2g from the fp32 output's" % fp32
        parts.append(text)
    return bad, "; ".join(parts)


def steps_outside(snnc, tmp, net, fmt, rows):
    """Whether a 16-bit forward of net's training code in blocks of rows
    loops over the blocks of steps outside those of outputs (None: no code)."""
    d = os.path.join(tmp, "order_%s_%s_%d" % (net, fmt, rows))
    env = dict(os.environ, SNNC_CUDA_HALF_ROWS=str(rows))
    r = subprocess.run([snnc, "compile", os.path.join(tmp, net), "--target", "cuda", "--train", "--precision", fmt,
                        "--batch", str(DB), "-o", d], capture_output=True, text=True, env=env)
    if r.returncode != 0:
        return None
    cu = [f for f in os.listdir(d) if f.endswith(".cu")]
    with open(os.path.join(d, cu[0])) as f:
        code = f.read()
    return "the input rounded once" in code


def dense(snnc, tmp, fmt, data, kind, rows=None):
    """Part 4 for one format, emulated or on the GPU, in blocks of rows
    (SNNC_CUDA_HALF_ROWS) or not: (failed, line)."""
    x, w, b, gy = data
    got, err = grad_run(snnc, tmp, "dense.snn", "dense_%s_%s_%s" % (fmt, kind, rows), fmt, x, gy, rows,
                        {"h_dense.weight": w, "h_dense.bias": b}, kind == "emulated")
    if err:
        return 1, "FAIL: %s: the dense layer: %s" % (fmt, err)
    bad, text = compare(got, dense_reference(x, w, b, gy, fmt), dense_reference(x, w, b, gy, None),
                        ("h_dense.weight", "h_dense.bias", "dinput"), 1e-6 if kind == "emulated" else 1e-5)
    if rows:
        outside = steps_outside(snnc, tmp, "dense.snn", fmt, rows)
        bad = bad or not outside
        text += "; the forward's outer loop over %s" % ("the steps" if outside else "the outputs (expected the steps)")
    line = "%s, %s, the product in 16 bits%s: %s" % (fmt, kind, ", blocks of %d rows" % rows if rows else "", text)
    return (1, "FAIL: " + line) if bad else (0, line)


def conv_draw(rng):
    """The convolution's x [T, DB, CI, 6, 6], w [CO, CI, 3, 3], b [CO] and
    dL/doutput [T, DB, CO, 6, 6]: exact sums, as dense_draw's."""
    import numpy as np
    for _ in range(1000):
        x = (rng.integers(-4, 5, (T, DB, CI, 6, 6)) / 4.0).astype(np.float32)
        w = away16(rng.uniform(-0.4, 0.4, (CO, CI, 3, 3)))
        b = away16(rng.uniform(-0.4, 0.4, CO) + 0.5)
        gy = (rng.integers(-8, 9, (T, DB, CO, 6, 6)) / 8.0).astype(np.float32)
        if all(same_decisions(conv_product(x, w, b, fmt), fmt) for fmt in ("bf16", "fp16")):
            return x, w, b, gy
    raise RuntimeError("no draw keeps away from the threshold")


def conv_product(x, w, b, fmt, out16=True):
    """The convolution's output as float32: the products of the operands
    rounded to fmt (cuBLAS's fast modes; fmt None: unrounded) summed
    exactly, the bias added in float32 (the code's order: the sum, then
    the bias), then rounded to fmt where out16."""
    import numpy as np
    import torch
    xr = rounded(x, fmt) if fmt else x.astype(np.float64)
    wr = rounded(w, fmt) if fmt else w.astype(np.float64)
    s = torch.nn.functional.conv2d(torch.from_numpy(xr.reshape(T * DB, CI, 6, 6)), torch.from_numpy(wr), padding=1)
    s = s.numpy().reshape(T, DB, CO, 6, 6)
    if fmt:
        assert (s.astype(np.float32) == s).all(), "the draw's sums are not exact in float32"
    y = s.astype(np.float32) + b.reshape(1, 1, CO, 1, 1)
    return rounded(y, fmt).astype(np.float32) if fmt and out16 else y


def conv_reference(x, w, b, gy, fmt, out16=True):
    """The convolution + LIF's spikes, dL/dw, dL/db and dL/dinput (fmt
    None: nothing rounded; out16 False: the output and its gradient kept
    in fp32, the states and the products' operands rounded)."""
    import numpy as np
    import torch
    y = conv_product(x, w, b, fmt, out16)
    flat = y.reshape(T, DB, -1)
    spikes = (np.stack(forward32(flat)["h"]) - np.float32(1.0) >= 0).astype(np.float32).reshape(y.shape)
    dy = reference_dx(flat, gy.reshape(flat.shape), fmt, rect=True)
    if fmt and out16:
        assert (dy.astype(np.float32) == dy).all(), "the draw's backward is not exact in float32"
        dy = rounded(dy.astype(np.float32), fmt)
    xt = torch.tensor(x.reshape(T * DB, CI, 6, 6).astype(np.float64), requires_grad=True)
    wt = torch.tensor(rounded(w, fmt) if fmt else w.astype(np.float64), requires_grad=True)
    out = torch.nn.functional.conv2d(xt, wt, padding=1)
    gx, gw = torch.autograd.grad(out, [xt, wt], torch.from_numpy(dy.reshape(out.shape)))
    return {"spikes": spikes, "h_conv2d.weight": gw.numpy(), "h_conv2d.bias": dy.reshape(-1, CO, 36).sum((0, 2)),
            "dinput": gx.numpy().reshape(x.shape)}


def conv(snnc, tmp, fmt, data, kind):
    """Part 4's convolution + LIF for one format, emulated or on the GPU: (failed, line)."""
    x, w, b, gy = data
    got, err = grad_run(snnc, tmp, "conv.snn", "conv_%s_%s" % (fmt, kind), fmt, x, gy,
                        weights={"h_conv2d.weight": w, "h_conv2d.bias": b}, emulated=kind == "emulated")
    if err:
        return 1, "FAIL: %s: the convolution: %s" % (fmt, err)
    bad, text = compare(got, conv_reference(x, w, b, gy, fmt), conv_reference(x, w, b, gy, None),
                        ("h_conv2d.weight", "h_conv2d.bias", "dinput"), 1e-6 if kind == "emulated" else 1e-5,
                        conv_reference(x, w, b, gy, fmt, out16=False))
    line = "%s, %s, a convolution's output in 16 bits: %s" % (fmt, kind, text)
    return (1, "FAIL: " + line) if bad else (0, line)


def norm_reference(x, gamma, beta, gy, fmt):
    """Batchnorm + LIF: the spikes and dL/dgamma, dL/dbeta, dL/dinput (fmt None: nothing rounded)."""
    import numpy as np
    C, cnt, eps = x.shape[2], x.shape[0] * x.shape[1] * 4, float(np.float32(1e-5))
    xc = np.moveaxis(x, 2, 0).reshape(C, -1)  # each channel's elements
    m = (xc.astype(np.float64).sum(1) / cnt).astype(np.float32)
    var = ((xc.astype(np.float64) - m[:, None].astype(np.float64)) ** 2).sum(1) / cnt
    istd = (1.0 / np.sqrt(var + eps)).astype(np.float32)
    shape = (1, 1, C, 1, 1)
    xh = (x - m.reshape(shape)) * istd.reshape(shape)  # float32, the code's order
    y = xh * gamma.reshape(shape) + beta.reshape(shape)
    if fmt:
        y = rounded(y, fmt).astype(np.float32)
    flat = y.reshape(T, x.shape[1], -1)
    spikes = (np.stack(forward32(flat)["h"]) - np.float32(1.0) >= 0).astype(np.float32)
    g = reference_dx(flat, gy.reshape(flat.shape), fmt, rect=True).reshape(x.shape)
    if fmt:
        assert (g.astype(np.float32) == g).all(), "the draw's backward is not exact in float32"
        g = rounded(g.astype(np.float32), fmt)
    xh64 = xh.astype(np.float64)
    sg, sgx = g.sum((0, 1, 3, 4)), (g * xh64).sum((0, 1, 3, 4))
    k = (gamma.astype(np.float64) * istd).reshape(shape)
    dx = k * (g - (sg / cnt).reshape(shape) - xh64 * (sgx / cnt).reshape(shape))
    return {"spikes": spikes.reshape(y.shape), "h_batchnorm.weight": sgx, "h_batchnorm.bias": sg, "dinput": dx}


def norm(snnc, tmp, fmt, rng):
    """Part 4's batchnorm + LIF for one format: (failed, line)."""
    import numpy as np
    x = (rng.integers(-24, 25, (T, DB, 8, 2, 2)) / 16.0).astype(np.float32)
    gy = (rng.integers(-8, 9, x.shape) / 8.0).astype(np.float32)
    gamma = rng.uniform(0.5, 1.5, 8).astype(np.float32)
    beta = rng.uniform(0.0, 1.0, 8).astype(np.float32)
    w = {"h_batchnorm.weight": gamma, "h_batchnorm.bias": beta,
         "h_batchnorm.running_mean": np.zeros(8, np.float32), "h_batchnorm.running_var": np.ones(8, np.float32)}
    got, err = grad_run(snnc, tmp, "norm.snn", "norm_%s" % fmt, fmt, x, gy, weights=w)
    if err:
        return 1, "FAIL: %s: batchnorm: %s" % (fmt, err)
    bad, text = compare(got, norm_reference(x, gamma, beta, gy, fmt), norm_reference(x, gamma, beta, gy, None),
                        ("h_batchnorm.weight", "h_batchnorm.bias", "dinput"), 1e-6)
    line = "%s, emulated, batchnorm's output in 16 bits: %s" % (fmt, text)
    return (1, "FAIL: " + line) if bad else (0, line)


def grad_run(snnc, tmp, net, tag, fmt, x, gy, rows=None, weights=None, emulated=True):
    """`snnc grad --target cuda` of net (emulated, or on the GPU), with the weights given or --init 1, in
    blocks of rows (SNNC_CUDA_HALF_ROWS) or not: (gradients with dinput and the output's steps, None) or
    (None, error)."""
    import numpy as np
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "ref"))
    from snnc_ref import read_safetensors, write_safetensors
    d = os.path.join(tmp, tag)
    os.makedirs(d)
    init = ["--init", "1"]
    if weights:
        write_safetensors(os.path.join(d, "w.safetensors"), weights)
        init = ["--weights", "w.safetensors"]
    np.save(os.path.join(d, "x.npy"), x)
    np.save(os.path.join(d, "g.npy"), gy)
    env = {k: v for k, v in os.environ.items() if k not in ("SNNC_CUDA_HALF_ROWS", "SNNC_CUDA_EMULATE")}
    env["SNNC_CACHE_DIR"] = ""
    if emulated:
        env["SNNC_CUDA_EMULATE"] = "1"
    if rows:
        env["SNNC_CUDA_HALF_ROWS"] = str(rows)
    r = subprocess.run([snnc, "grad", os.path.join(tmp, net), "--target", "cuda", "--precision", fmt, "--batch",
                        str(x.shape[1])] + init + ["--input", "x.npy", "--grad-output", "g.npy", "--output",
                        "g.safetensors", "--input-grad", "dx.npy", "--output-steps", "y.npy"],
                       cwd=d, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        return None, "snnc grad %s (exit %d)\n%s" % (tag, r.returncode, r.stderr[-2000:])
    got = read_safetensors(os.path.join(d, "g.safetensors"))[0]
    got["dinput"] = np.load(os.path.join(d, "dx.npy"))
    got["output"] = np.load(os.path.join(d, "y.npy"))
    return got, None


def deep(snnc, tmp, fmt, rng):
    """Part 4's two layers for one format: (failed, line)."""
    import numpy as np
    x = rng.standard_normal((T, DB, NI)).astype(np.float32)
    gy = rng.standard_normal((T, DB, 32)).astype(np.float32)
    one, err = grad_run(snnc, tmp, "deep.snn", "deep_%s" % fmt, fmt, x, gy)
    blocks, err2 = grad_run(snnc, tmp, "deep.snn", "deep_%s_40" % fmt, fmt, x, gy, 40)
    full, err3 = grad_run(snnc, tmp, "deep.snn", "deep_%s_fp32" % fmt, "fp32", x, gy)
    if err or err2 or err3:
        return 1, "FAIL: %s: two layers: %s" % (fmt, err or err2 or err3)
    same = [k for k in one if np.array_equal(one[k], blocks[k])]
    far = max(abs(one[k] - full[k]).max() / max(abs(full[k]).max(), 1e-30) for k in one if k != "output")
    outside = steps_outside(snnc, tmp, "deep.snn", fmt, 40)
    line = "%s, emulated, two layers: %d of %d arrays the same bit for bit in blocks of 40 rows (outer loops over %s)" \
        "; %.2g from fp32" % (fmt, len(same), len(one), "the outputs" if outside is False else "the steps?", far)
    bad = len(same) != len(one) or far > 0.2 or not abs(one["h_dense.weight"]).max() > 0 or outside is not False
    return (1, "FAIL: " + line) if bad else (0, line)


def refusal(snnc, tmp, fmt, data):
    """Part 4: --record with grad reads the inference code, which keeps the product in fp32: refused."""
    import numpy as np
    d = os.path.join(tmp, "record_%s" % fmt)
    os.makedirs(d)
    np.save(os.path.join(d, "x.npy"), data[0])
    np.save(os.path.join(d, "g.npy"), data[3])
    r = subprocess.run([snnc, "grad", os.path.join(tmp, "dense.snn"), "--target", "cuda", "--precision", fmt,
                        "--batch", str(DB), "--init", "1", "--input", "x.npy", "--grad-output", "g.npy", "--output",
                        "g.safetensors", "--record", "h=h.npy"], cwd=d, capture_output=True, text=True,
                       env=dict(os.environ, SNNC_CUDA_EMULATE="1", SNNC_CACHE_DIR=""))
    ok = r.returncode == 1 and "rounds the output of layer 'h_dense'" in r.stderr
    ok = ok and sorted(os.listdir(d)) == ["g.npy", "x.npy"]
    line = "%s: snnc grad --record refused (the inference code keeps the product in fp32): %s" % (
        fmt, r.stderr.strip().splitlines()[-1] if r.stderr.strip() else "exit %d" % r.returncode)
    return (0, line) if ok else (1, "FAIL: " + line)


def product_memory(snnc, tmp, fmt, net, layer, n):
    """Part 4's memory: the values kept for the backward by a product of n
    values a sample and step + LIF shrink by half the states and half the
    product."""
    def kept(prec):
        r = subprocess.run([snnc, "info", os.path.join(tmp, net), "--target", "cuda", "--train", "--batch",
                            str(DB), "--precision", prec], capture_output=True, text=True)
        m = re.search(r"values kept for the backward (\d+) bytes", r.stdout)
        return (int(m.group(1)) if m else None), r.stdout + r.stderr
    full, _ = kept("fp32")
    half, out16 = kept(fmt)
    expect = ((T + 1) * DB * n * 4 + T * DB * n * 4) // 2
    if full is None or half is None or full - half != expect:
        return 1, "FAIL: %s: %s: the values kept take %r bytes against %r for fp32; expected %d less\n%s" % (
            fmt, net, half, full, expect, out16)
    if ("output of %s and its gradient stored in %s" % (layer, fmt)) not in out16:
        return 1, "FAIL: %s: snnc info does not say the output of %s is stored in %s\n%s" % (fmt, layer, fmt, out16)
    return 0, "%s: %s: the values kept for the backward %d bytes, fp32's %d less %d" % (fmt, net, half, full, expect)


def nvcc_compiles(snnc, tmp, fmt, nvcc):
    """Part 5 for one format: (failed, line)."""
    examples = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples")
    nets = [os.path.join(tmp, n + ".snn") for n in ("half", "dense", "deep", "conv")]
    nets += [os.path.join(examples, n + ".snn") for n in ("fashion_mlp", "fashion_conv", "dalif_conv", "fashion_rate")]
    for src in nets:
        net = os.path.basename(src)[:-4]
        d = os.path.join(tmp, "nvcc_%s_%s" % (net, fmt))
        r = subprocess.run([snnc, "compile", src, "--target", "cuda", "--train", "--precision", fmt, "--batch",
                            str(DB), "-o", d], capture_output=True, text=True)
        if r.returncode == 0:
            cu = [f for f in os.listdir(d) if f.endswith(".cu")]
            r = subprocess.run([nvcc] + NVCC_FLAGS + ["-c", cu[0], "-o", "net.o"], cwd=d, capture_output=True,
                               text=True)
        if r.returncode != 0:
            return 1, "FAIL: %s: the training code of %s.snn does not build with nvcc\n%s" % (
                fmt, net, (r.stdout + r.stderr)[-3000:])
    return 0, "%s: the training code of %d networks builds with nvcc, warnings as errors" % (fmt, len(nets))


def main():
    snnc = sys.argv[1]
    for mod in ("numpy", "torch"):
        if not importlib.util.find_spec(mod):
            print("SKIPPED: no %s (the reference)" % mod)
            return 77
    cc = shutil.which("gcc") or shutil.which("cc")
    if not cc:
        print("SKIPPED: no C compiler")
        return 77
    import numpy as np
    rng = np.random.default_rng(3)
    failed = checks = 0
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "half.snn"), "w") as f:
            f.write(NET)
        with open(os.path.join(tmp, "dense.snn"), "w") as f:
            f.write(DENSE_NET)
        with open(os.path.join(tmp, "deep.snn"), "w") as f:
            f.write(DEEP_NET)
        with open(os.path.join(tmp, "norm.snn"), "w") as f:
            f.write(NORM_NET)
        with open(os.path.join(tmp, "conv.snn"), "w") as f:
            f.write(CONV_NET)
        x = draw(rng)
        gy = rng.standard_normal((T, B, N)).astype(np.float32)
        data = dense_draw(rng)
        cdata = conv_draw(rng)
        nvcc = find_nvcc()
        gpu = nvcc and have_gpu()
        if not gpu:
            print("no GPU: the backward runs emulated only")
        if not nvcc:
            print("no nvcc: part 5 (nvcc builds the code) skipped")
        for fmt in ("bf16", "fp16"):
            runs = [conversions(snnc, cc, tmp, fmt), backward(snnc, tmp, fmt, x, gy, "emulated"),
                    dense(snnc, tmp, fmt, data, "emulated"), dense(snnc, tmp, fmt, data, "emulated", 100),
                    deep(snnc, tmp, fmt, rng), norm(snnc, tmp, fmt, rng), refusal(snnc, tmp, fmt, data),
                    conv(snnc, tmp, fmt, cdata, "emulated")]
            if nvcc:
                runs.append(nvcc_compiles(snnc, tmp, fmt, nvcc))
            if gpu:
                runs += [backward(snnc, tmp, fmt, x, gy, "gpu"), dense(snnc, tmp, fmt, data, "gpu"),
                         conv(snnc, tmp, fmt, cdata, "gpu")]
            runs += [memory(snnc, tmp, fmt), product_memory(snnc, tmp, fmt, "dense.snn", "h_dense", NO),
                     product_memory(snnc, tmp, fmt, "conv.snn", "h_conv2d", CO * 36)]
            for bad, line in runs:
                failed += bad
                checks += 1
                print(line)
    print("%d checks, %d failed" % (checks, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
