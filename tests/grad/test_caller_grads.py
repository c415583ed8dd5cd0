#!/usr/bin/env python3
"""The caller's buffers in training (IrBufs.vext and gext, docs/ir.md).

The training forward and backward read the input where the caller keeps
it, the backward reads dL/doutput where the caller keeps it and adds
dL/dinput straight into the caller's buffer, so the workspace holds none
of them. Checked here:

1. By hand: for Linear(n, n) + LIF (encode sequence, readout steps), the
   only gradient of the values that `snnc info --train` counts is the LIF
   layer's carried adjoint, B x n floats: no dL/dinput, no dL/doutput, and
   dL/d(the product) is written over the product, which the LIF layer's
   backward reads a step before it sets that step's gradient (IrBufs.gover);
   for the C and CUDA targets (and the values kept, by hand, in fp32 and
   with the CUDA target's 16-bit states and product: no copy of the
   input; the C target keeps one step of the LIF layer's state, whose
   others its backward recomputes). `--emit-ir`
   marks the input's value `val=input` and its gradient `grad=dinput`, the
   product's `grad=val` and the output's `grad=doutput`.
2. The generated C of four networks, built with a program of this test:
   a dense layer alone (encode sequence and encode direct) and two that
   read the input and are added (its gradient has two writers, so the
   backward zeroes `dinput` first), whose dL/dinput and parameter
   gradients numpy computes in float64 (dL/dx_t = sum_k dL/dy_t W_k,
   summed over the steps for encode direct; dL/dW_k = sum_t dL/dy_t^T
   x_t), and dense + LIF + dense; and a LIF output layer, whose spikes
   training keeps as bits and unpacks into `output`, against numpy's
   float64 (away from the threshold). For each: the forward and the backward
   leave input and doutput as they were, the backward writes dL/dinput over whatever `dinput` held and nothing beside it
   (guards on both sides), and gives the same parameter gradients, bit for
   bit, whether or not dL/dinput is asked (dinput NULL).

Needs numpy and a C compiler; skips (77) without them.
"""
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

try:
    import numpy as np
except ImportError:
    print("SKIPPED: numpy is not installed")
    sys.exit(77)

B, T = 3, 5
LINLIF = """network LinLif {
  timesteps %d;
  input x : [%d] encode sequence;
  y = x |> dense(%d, bias = false) |> LIF(tau = 2.0);
  output y readout steps;
}
"""
NETS = {
    "seq": ("Proj", "sequence", "  y = x |> dense(7);\n"),
    "direct": ("Proj", "direct", "  y = x |> dense(7);\n"),
    "two": ("Two", "sequence", "  a = x |> dense(7);\n  y = x |> dense(7) |> add(a);\n"),
    "hidden": ("Deep", "sequence", "  h = x |> dense(16) |> LIF(tau = 2.0);\n  y = h |> dense(7);\n"),
    "spiking": ("Spiking", "sequence", "  y = x |> dense(32, bias = false) |> LIF(tau = 2.0);\n"),
}

HARNESS = r"""
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "%(p)s.h"

#define GUARD 16
#define NIN ((%(P)s_INPUT_SEQUENCE ? %(P)s_TIMESTEPS : 1) * BATCH * %(P)s_INPUT_SIZE)
#define NOUT (%(P)s_TIMESTEPS * BATCH * %(P)s_OUTPUT_SIZE)
#define BATCH %(B)d

static float *params_of(void *ws) { return %(p)s_train_params(ws); }

static int read_all(FILE *f, void *p, size_t n) { return fread(p, 1, n, f) == n; }

int main(int argc, char **argv)
{
    static float in[NIN], in0[NIN], dout[NOUT + 2 * GUARD], keep[NOUT + 2 * GUARD], din[NIN + 2 * GUARD], y[NOUT];
    float *ws = calloc(%(P)s_TRAIN_WORKSPACE_FLOATS, sizeof(float));
    float *g0 = calloc(%(P)s_TRAIN_WORKSPACE_FLOATS, sizeof(float));
    FILE *f = fopen(argv[1], "rb");
    int np, i, bad = 0;
    long k, total = 0;
    if (argc < 3 || !ws || !g0 || !f || !read_all(f, &np, 4))
        return 2;
    for (i = 0; i < np; i++) { /* name, count, values */
        char name[256];
        int len, count, q;
        if (!read_all(f, &len, 4) || len <= 0 || len > 255 || !read_all(f, name, (size_t)len) || !read_all(f, &count, 4))
            return 2;
        name[len] = 0;
        for (q = 0; q < %(P)s_NUM_PARAMS; q++)
            if (!strcmp(%(p)s_params[q].name, name))
                break;
        if (q == %(P)s_NUM_PARAMS || %(p)s_params[q].count != count ||
            !read_all(f, params_of(ws) + %(p)s_params[q].offset, (size_t)count * 4)) {
            fprintf(stderr, "parameter %%s: not in the network or of another size\n", name);
            return 2;
        }
        total += count;
    }
    if (!read_all(f, in, sizeof in) || !read_all(f, dout + GUARD, NOUT * 4))
        return 2;
    fclose(f);
    for (k = 0; k < GUARD; k++)
        dout[k] = dout[NOUT + GUARD + k] = -7.0f;
    memcpy(keep, dout, sizeof dout);
    memcpy(in0, in, sizeof in);
    /* without dL/dinput */
    %(p)s_train_forward(ws, BATCH, in, y, 1, 0);
    %(p)s_train_backward(ws, BATCH, in, dout + GUARD, NULL);
    for (i = 0; i < %(P)s_NUM_PARAMS; i++)
        memcpy(g0 + %(p)s_params[i].offset, %(p)s_train_grads(ws) + %(p)s_params[i].offset,
               (size_t)%(p)s_params[i].count * sizeof(float));
    /* with it, over a buffer that holds garbage, between guards */
    for (k = 0; k < NIN + 2 * GUARD; k++)
        din[k] = k < GUARD || k >= NIN + GUARD ? -3.0f : 12345.0f;
    %(p)s_train_forward(ws, BATCH, in, NULL, 1, 0);
    %(p)s_train_backward(ws, BATCH, in, dout + GUARD, din + GUARD);
    if (memcmp(keep, dout, sizeof dout)) {
        fprintf(stderr, "the backward changed doutput\n");
        bad = 1;
    }
    if (memcmp(in0, in, sizeof in)) { /* read in place by the forward and the backward */
        fprintf(stderr, "the forward or the backward changed input\n");
        bad = 1;
    }
    for (k = 0; k < GUARD; k++)
        if (din[k] != -3.0f || din[NIN + GUARD + k] != -3.0f) {
            fprintf(stderr, "the backward wrote beside dinput (%%ld)\n", k);
            bad = 1;
            break;
        }
    for (i = 0; i < %(P)s_NUM_PARAMS; i++) {
        const float *g = %(p)s_train_grads(ws) + %(p)s_params[i].offset;
        if (memcmp(g, g0 + %(p)s_params[i].offset, (size_t)%(p)s_params[i].count * sizeof(float))) {
            fprintf(stderr, "%%s: its gradient differs when dL/dinput is asked\n", %(p)s_params[i].name);
            bad = 1;
        }
    }
    f = fopen(argv[2], "wb");
    for (i = 0; f && i < %(P)s_NUM_PARAMS; i++)
        fwrite(%(p)s_train_grads(ws) + %(p)s_params[i].offset, 4, (size_t)%(p)s_params[i].count, f);
    if (!f || fwrite(din + GUARD, 4, NIN, f) != NIN || fwrite(y, 4, NOUT, f) != NOUT || fclose(f))
        return 2;
    printf("%%ld parameters\n", total);
    free(ws);
    free(g0);
    return bad;
}
"""

failed = 0


def check(ok, what):
    global failed
    print(("" if ok else "FAIL: ") + what)
    failed += not ok


def run(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    return p.returncode, p.stdout + p.stderr


def by_hand(snnc, tmp):
    """Part 1."""
    n = 64
    src = os.path.join(tmp, "linlif.snn")
    with open(src, "w") as f:
        f.write(LINLIF % (T, n, n))
    a16 = lambda v: (v + 15) // 16 * 16
    want = 4 * a16(B * n)  # the LIF's carried adjoint; dL/d(product) over the product
    for target, prec in (("c", "fp32"), ("cuda", "fp32"), ("cuda", "bf16")):
        rc, out = run([snnc, "info", src, "--train", "--batch", str(B), "--target", target, "--precision", prec])
        m = re.search(r"values kept for the backward (\d+) bytes; gradients of the values (\d+) bytes", out)
        # the product, the spikes as bits, the states at the start of every step (the product and the
        # states 16 bits each in bf16; the C targets keep one step of states, updated in place, and
        # recompute the others in the backward: the remat pass); the input is the caller's, read in place
        states, prod = (1 if target == "c" else T + 1) * B * n, T * B * n
        half = prec == "bf16"
        kept = 4 * (a16(prod // 2 if half else prod) + a16(T * B * n // 32) + a16(states // 2 if half else states))
        check(rc == 0 and m and int(m.group(1)) == kept and int(m.group(2)) == want,
              "--target %s --precision %s: values kept %s bytes, %d by hand; gradients of the values %s bytes, "
              "%d by hand (no dL/dinput, no dL/doutput)"
              % (target, prec, m.group(1) if m else out.strip()[-300:], kept, m.group(2) if m else "?", want))
    rc, ir = run([snnc, "compile", src, "--train", "--emit-ir", "--batch", str(B)])
    check(rc == 0 and re.search(r"^\s+%0 val=input .*grad=dinput", ir, re.M) and re.search(r"^\s+%1 .*grad=val", ir, re.M)
          and re.search(r"^\s+%2 .*grad=doutput", ir, re.M),
          "--emit-ir: the input's value is input, its gradient dinput, the product's its value's buffer, the output's doutput")


def reference(kind, vals, x, gy):
    """The parameters' gradients and dL/dinput of y = sum_k (x W_k^T + b_k)
    (dense layers that all read x), in float64."""
    x, gy = x.astype(np.float64), gy.astype(np.float64)
    xs = np.broadcast_to(x, (T,) + x.shape) if kind == "direct" else x
    grads, dx = {}, 0
    for wn, v in vals.items():
        if wn.endswith(".weight"):
            grads[wn] = np.einsum("tbo,tbi->oi", gy, xs)
            dx = dx + gy @ v.astype(np.float64)
        else:
            grads[wn] = gy.sum(axis=(0, 1))
    return grads, dx.sum(axis=0) if kind == "direct" else dx


def spikes(line, w, x, y, dx):
    """The spikes of a LIF output layer (kept as bits in training) against
    numpy's float64: h = v + (x W^T - v) / 2, a spike where h >= 1, then v =
    h without one and 0 with one. Steps whose membrane lies within 1e-4 of
    the threshold may go either way."""
    cur = x.astype(np.float64) @ w.astype(np.float64).T
    v = np.zeros(cur.shape[1:])
    want, near = np.zeros(cur.shape), np.zeros(cur.shape, dtype=bool)
    for t in range(T):
        h = v + (cur[t] - v) * 0.5
        want[t], near[t] = h >= 1.0, abs(h - 1.0) < 1e-4
        v = np.where(want[t] > 0, 0.0, h)
    differ = ((y != want) & ~near).sum()
    check(set(np.unique(y)) <= {0.0, 1.0} and differ == 0 and 0 < want.mean() < 1 and np.isfinite(dx).all(),
          line + "; the output's %d spikes of %d (kept as bits) are numpy's, %d differ"
          % (int(y.sum()), y.size, differ))


def built(snnc, tmp, cc, key):
    """Part 2 for one network: (failed, line)."""
    name, enc, body = NETS[key]
    d = os.path.join(tmp, key)
    os.makedirs(d)
    src = os.path.join(d, "net.snn")
    with open(src, "w") as f:
        f.write("network %s {\n  timesteps %d;\n  input x : [12] encode %s;\n%s  output y readout steps;\n}\n"
                % (name, T, enc, body))
    rc, out = run([snnc, "compile", src, "--train", "--batch", str(B), "--target", "c", "-o", d])
    if rc:
        return check(False, "%s: snnc compile: %s" % (key, out))
    rc, ir = run([snnc, "compile", src, "--train", "--emit-ir", "--batch", str(B)])
    weights = [(m.group(1), [int(v) for v in m.group(2).split(",")])
               for m in re.finditer(r"^\s+weight (\S+) \[([0-9,]+)\]$", ir, re.M)]
    if key == "spiking":
        check(re.search(r"^\s+%2 val=\S+ bits .*grad=doutput", ir, re.M),
              "spiking: --emit-ir keeps the output's spikes as bits, its gradient doutput")
    p = name.lower()
    with open(os.path.join(d, "main.c"), "w") as f:
        f.write(HARNESS % {"p": p, "P": name.upper(), "B": B})
    rc, out = run([cc, "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-o", "prog", "main.c", p + ".c", "-lm"], cwd=d)
    if rc:
        return check(False, "%s: %s build: %s" % (key, cc, out[-2000:]))
    rng = np.random.default_rng(7)
    vals = {wn: (rng.standard_normal(shape) * 0.4).astype(np.float32) for wn, shape in weights}
    x = rng.standard_normal(((T,) if enc == "sequence" else ()) + (B, 12)).astype(np.float32)
    nout = 32 if key == "spiking" else 7
    gy = rng.standard_normal((T, B, nout)).astype(np.float32)
    blob = struct.pack("<i", len(vals))
    for wn, v in vals.items():
        blob += struct.pack("<i", len(wn)) + wn.encode() + struct.pack("<i", v.size) + v.tobytes()
    with open(os.path.join(d, "in.bin"), "wb") as f:
        f.write(blob + x.tobytes() + gy.tobytes())
    rc, out = run([os.path.join(d, "prog"), os.path.join(d, "in.bin"), os.path.join(d, "out.bin")])
    if rc:
        return check(False, "%s: the program: %s" % (key, out.strip()))
    got = np.fromfile(os.path.join(d, "out.bin"), dtype=np.float32)
    grads, at = {}, 0
    for wn, shape in weights:
        n = int(np.prod(shape))
        grads[wn], at = got[at:at + n].reshape(shape), at + n
    dx, y = got[at:at + x.size].reshape(x.shape), got[at + x.size:].reshape(gy.shape)
    line = "%s (encode %s): input and doutput unchanged, dL/dinput written over garbage and nothing beside it, " \
           "the same parameter gradients with and without it" % (key, enc)
    if key == "hidden":
        return check(np.isfinite(dx).all() and np.abs(dx).max() > 0, line)
    if key == "spiking":
        return spikes(line, vals["y_dense.weight"], x, y, dx)
    ref, rdx = reference(enc, vals, x, gy)
    err = max([np.abs(dx - rdx).max() / np.abs(rdx).max()] +
              [np.abs(grads[wn] - ref[wn]).max() / np.abs(ref[wn]).max() for wn in ref])
    check(err < 1e-5, line + "; dL/dinput and %d parameters' gradients within %.2g of numpy's float64"
          % (len(ref), err))


def main():
    snnc = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("SNNC")
    if not snnc:
        print("usage: test_caller_grads.py SNNC (or SNNC in the environment)")
        sys.exit(2)
    cc = next((c for c in ("gcc", "clang") if shutil.which(c)), None)
    if cc is None:
        print("SKIPPED: no C compiler (gcc or clang)")
        sys.exit(77)
    with tempfile.TemporaryDirectory() as tmp:
        by_hand(snnc, tmp)
        for key in NETS:
            built(snnc, tmp, cc, key)
    sys.exit(1 if failed else 0)


main()
