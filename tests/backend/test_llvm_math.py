#!/usr/bin/env python3
"""The llvm target's --math fast functions keep runtime/snnrt_math.inc's error bounds.

A neuron model written here stores exp(x), log(x), tanh(x), sigmoid(x),
min(x, 0.5) and max(x, 0.5) of its input in six states; `snnc run
--target llvm --math fast --record` gives them for a vector of inputs
(its length not a multiple of the 8 lanes, so that the vector and the
scalar versions both run) that covers exp's whole range and past it, log's
from the smallest subnormal to the largest float, tanh's and sigmoid's
saturation, and the special cases (+-0, negatives for log, results that
overflow to inf; snnc refuses inputs that are inf or NaN).
Each result is compared with numpy's double-precision function, in units
in the last place of the float result; the bounds are snnrt_math.inc's
(checked there over every float by tests/runtime/test_math.c): exp 2, log
2, tanh 4, sigmoid 3, within 2^-126 where the result is subnormal; the
special values are the C library's, and min and max return the other
operand of a NaN, as fminf and fmaxf do.

It also checks that --math fast's module calls none of the C library's
expf, logf or tanhf (so no lane-by-lane calls remain), and that --math
exact's does.

Skipped, saying why, when this snnc was built without LLVM.

Usage: test_llvm_math.py SNNC
"""
import os
import subprocess
import sys
import tempfile

import numpy as np

from snnc_ref import Checker

SKIP = 77

MODEL = """
neuron Fns(granularity = layer) {
  state e = 0.0;
  state l = 0.0;
  state t = 0.0;
  state g = 0.0;
  state mn = 0.0;
  state mx = 0.0;
  e = exp(x);
  l = log(x);
  t = tanh(x);
  g = sigmoid(x);
  mn = min(x, 0.5);
  mx = max(x, 0.5);
  emit x;
}

network FastMath {
  timesteps 1;
  input x : [%d] encode sequence;
  y = x |> Fns();
  output y readout steps;
}
"""

# state, numpy function, bound in ulps
FUNCS = [
    ("e", np.exp, 2.0),
    ("l", np.log, 2.0),
    ("t", np.tanh, 4.0),
    ("g", lambda x: 1.0 / (1.0 + np.exp(-x)), 3.0),
]
TINY = 2.0 ** -126


def sh(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        print("FAIL: %s: %s" % (" ".join(cmd), p.stderr.strip()))
        sys.exit(1)
    return p


def inputs(rng):
    f32 = np.float32
    parts = [
        np.linspace(-110.0, 100.0, 40001),                      # exp past both ends
        np.linspace(-12.0, 12.0, 20001),                        # tanh, sigmoid
        rng.uniform(-1.0, 1.0, 20000) * 10.0 ** rng.uniform(-8, 0, 20000),  # near 0
        10.0 ** rng.uniform(-45.0, 38.5, 20000),                # log over every exponent
        np.nextafter(f32(1.0), f32(0.0)) + np.arange(-500, 500) * np.spacing(f32(1.0)),  # log near 1
        [0.0, -0.0, -1.0, -1e-40, 1e-45, 1.17549435e-38, 3.40282347e38,
         88.72, 88.73, 89.0, -87.3, -103.9, -104.1, 0.3465736, -0.3465736],
    ]
    x = np.concatenate([np.asarray(p, dtype=np.float64) for p in parts]).astype(np.float32)
    return x if x.size % 8 else np.append(x, np.float32(0.7))


def ulps(got, ref):
    """Errors of float32 results against float64 references, in ulps of
    the float result (absolute errors over 2^-126 where it is subnormal);
    inf where a special value differs."""
    got64 = got.astype(np.float64)
    ref32 = ref.astype(np.float32)
    err = np.zeros(got.shape)
    special = ~np.isfinite(ref32) | ~np.isfinite(got)
    same = (np.isnan(ref32) & np.isnan(got)) | (got64 == ref32.astype(np.float64))
    err[special & ~same] = np.inf
    fin = ~special
    sub = fin & (np.abs(ref) < TINY)
    err[sub] = np.abs(got64[sub] - ref[sub]) / TINY
    nrm = fin & ~sub
    err[nrm] = np.abs(got64[nrm] - ref[nrm]) / np.spacing(np.abs(ref32[nrm])).astype(np.float64)
    return err


def main():
    snnc = sys.argv[1]
    listing = sh([snnc, "--list-targets"]).stdout
    line = [l for l in listing.splitlines() if l.split()[:1] == ["llvm"]]
    if not line or "unavailable" in line[0]:
        print("SKIPPED: this snnc was built without LLVM")
        return SKIP
    rng = np.random.default_rng(5)
    x = inputs(rng)
    checker = Checker()
    check = checker.check

    with tempfile.TemporaryDirectory() as d:
        model = os.path.join(d, "fm.snn")
        with open(model, "w") as f:
            f.write(MODEL % x.size)
        xin = os.path.join(d, "x.npy")
        np.save(xin, x.reshape(1, 1, -1))
        states = [s for s, _, _ in FUNCS] + ["mn", "mx"]
        rec = sum([["--record", "y.%s=%s" % (s, os.path.join(d, s + ".npy"))] for s in states], [])
        sh([snnc, "run", model, "--input", xin, "--target", "llvm", "--math", "fast",
            "--output", os.path.join(d, "y.npy")] + rec)
        got = {s: np.load(os.path.join(d, s + ".npy")).reshape(-1) for s in states}
        x64 = x.astype(np.float64)
        with np.errstate(all="ignore"):
            for s, fn, bound in FUNCS:
                err = ulps(got[s], fn(x64))
                worst = int(np.argmax(err))
                check(err.max() <= bound, "%s: %.3g ulps at x = %r (got %r, exact %r), bound %g" %
                      (s, err.max(), float(x[worst]), float(got[s][worst]), float(fn(x64[worst])), bound))
                print("%s: largest error %.3g ulps over %d inputs (bound %g)" % (s, err.max(), x.size, bound))
        for s, pick in (("mn", np.fmin), ("mx", np.fmax)):
            ref = pick(x, np.float32(0.5))
            check(np.array_equal(got[s], ref, equal_nan=True), "%s: differs from fminf/fmaxf semantics" % s)

        for math, calls in (("fast", False), ("exact", True)):
            out = os.path.join(d, math)
            sh([snnc, "compile", model, "--target", "llvm", "--math", math, "-o", out])
            text = open(os.path.join(out, "fastmath.ll")).read()
            for fn in ("expf", "logf", "tanhf"):
                check(("call float @%s(" % fn in text) == calls, "--math %s: the module %s @%s" %
                      (math, "does not call" if calls else "calls", fn))
    return checker.status()


if __name__ == "__main__":
    sys.exit(main())
