"""Helpers of the NIR tests: write NIR graphs with the nir package, run
them in snnc, and compute the references.

Nothing here trusts snnc's output as an expectation. The reference of the
default convention is a NumPy discretization written out below from
docs/nir.md's formulas (coefficients computed in float64 and rounded to
float32 once, the step in float32); the reference of the snnTorch
convention is snnTorch itself (tests/nir/test_snntorch.py).
"""
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "ref"))
from snnc_ref import RunError, require, skip, snnc_path  # noqa: E402,F401

F32 = np.float32


def snnc(args, check=True):
    p = subprocess.run([snnc_path()] + [str(a) for a in args], capture_output=True, text=True)
    if check and p.returncode != 0:
        raise RunError("snnc %s: exit %d: %s" % (" ".join(str(a) for a in args[:2]), p.returncode, p.stderr.strip()))
    return p


def run_nir(model, x, records=(), extra=()):
    """`snnc run MODEL.nir` on input x [T, B, ...]: (output, {record: array})."""
    with tempfile.TemporaryDirectory() as d:
        xin = os.path.join(d, "x.npy")
        np.save(xin, np.ascontiguousarray(x, dtype=F32))
        out = os.path.join(d, "y.npy")
        cmd = ["run", model, "--input", xin, "--output", out, "--target", "c"]
        files = {}
        for i, r in enumerate(records):
            files[r] = os.path.join(d, "r%d.npy" % i)
            cmd += ["--record", "%s=%s" % (r, files[r])]
        snnc(cmd + list(extra))
        return np.load(out), {r: np.load(f) for r, f in files.items()}


class Checker:
    """Counts comparisons; spikes must be identical, membranes within rtol."""

    def __init__(self):
        self.failed = 0
        self.passed = 0

    def spikes(self, what, got, want):
        got, want = np.asarray(got), np.asarray(want)
        if got.shape != want.shape:
            self.fail("%s: shape %s, expected %s" % (what, got.shape, want.shape))
        elif want.sum() == 0 or want.sum() == want.size:
            self.fail("%s: the reference has %d spikes in %d values: nothing is tested" % (
                what, int(want.sum()), want.size))
        elif not np.array_equal(got, want):
            self.fail("%s: %d of %d spikes differ (first at %s)" % (
                what, int((got != want).sum()), got.size, np.argwhere(got != want)[0].tolist()))
        else:
            self.ok("%s: %d values, %d spikes, identical" % (what, got.size, int(got.sum())))

    def close(self, what, got, want, rtol=1e-5, atol=1e-6):
        got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
        if got.shape != want.shape:
            self.fail("%s: shape %s, expected %s" % (what, got.shape, want.shape))
            return
        err = np.abs(got - want) / (np.abs(want) * rtol + atol)
        if not np.all(err <= 1):
            i = np.unravel_index(np.argmax(err), err.shape)
            self.fail("%s: at %s got %r, expected %r" % (what, list(i), got[i], want[i]))
        else:
            self.ok("%s: %d values within %g relative" % (what, got.size, rtol))

    def ok(self, msg):
        self.passed += 1
        print("ok   " + msg)

    def fail(self, msg):
        self.failed += 1
        print("FAIL " + msg)

    def done(self):
        print("%d passed, %d failed" % (self.passed, self.failed))
        sys.exit(1 if self.failed else 0)


# ---- the default convention, by hand (docs/nir.md, "The discretization") ----

def _c(v, shape):
    """A coefficient computed in float64, rounded to float32 once, over the neurons."""
    return np.broadcast_to(np.asarray(v, dtype=np.float64), shape).astype(F32)


class LIF:
    """h = beta v + g x + c; s = h > v_th; v = (1 - s) h + s v_reset."""

    def __init__(self, tau, r, v_leak, v_th, v_reset, dt, shape):
        tau = np.asarray(tau, np.float64)
        self.beta = _c(1 - dt / tau, shape)
        self.g = _c(np.asarray(r, np.float64) * dt / tau, shape)
        self.c = _c(np.asarray(v_leak, np.float64) * dt / tau, shape)
        self.th = _c(v_th, shape)
        self.vr = _c(v_reset, shape)
        self.v = None

    def step(self, x):
        if self.v is None:
            self.v = np.zeros_like(x, dtype=F32)
        h = self.beta * self.v + self.g * x + self.c
        s = (h > self.th).astype(F32)
        self.v = (F32(1) - s) * h + s * self.vr
        return s


class CubaLIF:
    """i = alpha i + gs x; h = beta v + gm i + c; spike and reset as LIF."""

    def __init__(self, tau_syn, tau_mem, r, v_leak, v_th, v_reset, w_in, dt, shape, spiking=True):
        ts, tm = np.asarray(tau_syn, np.float64), np.asarray(tau_mem, np.float64)
        self.alpha = _c(1 - dt / ts, shape)
        self.gs = _c(np.asarray(w_in, np.float64) * dt / ts, shape)
        self.beta = _c(1 - dt / tm, shape)
        self.gm = _c(np.asarray(r, np.float64) * dt / tm, shape)
        self.c = _c(np.asarray(v_leak, np.float64) * dt / tm, shape)
        self.spiking = spiking
        if spiking:
            self.th = _c(v_th, shape)
            self.vr = _c(v_reset, shape)
        self.v = self.i = None

    def step(self, x):
        if self.v is None:
            self.v = np.zeros_like(x, dtype=F32)
            self.i = np.zeros_like(x, dtype=F32)
        self.i = self.alpha * self.i + self.gs * x
        h = self.beta * self.v + self.gm * self.i + self.c
        if not self.spiking:
            self.v = h
            return h
        s = (h > self.th).astype(F32)
        self.v = (F32(1) - s) * h + s * self.vr
        return s


class LI(CubaLIF):
    """v = beta v + g x + c, emitted."""

    def __init__(self, tau, r, v_leak, dt, shape):
        tau = np.asarray(tau, np.float64)
        self.beta = _c(1 - dt / tau, shape)
        self.g = _c(np.asarray(r, np.float64) * dt / tau, shape)
        self.c = _c(np.asarray(v_leak, np.float64) * dt / tau, shape)
        self.v = None

    def step(self, x):
        if self.v is None:
            self.v = np.zeros_like(x, dtype=F32)
        self.v = self.beta * self.v + self.g * x + self.c
        return self.v


class IF:
    """h = v + (r dt) x; spike and reset as LIF."""

    def __init__(self, r, v_th, v_reset, dt, shape):
        self.g = _c(np.asarray(r, np.float64) * dt, shape)
        self.th = _c(v_th, shape)
        self.vr = _c(v_reset, shape)
        self.v = None

    def step(self, x):
        if self.v is None:
            self.v = np.zeros_like(x, dtype=F32)
        h = self.v + self.g * x
        s = (h > self.th).astype(F32)
        self.v = (F32(1) - s) * h + s * self.vr
        return s


class Integrator(LI):
    """v = v + (r dt) x, emitted."""

    def __init__(self, r, dt, shape):
        self.g = _c(np.asarray(r, np.float64) * dt, shape)
        self.v = None

    def step(self, x):
        if self.v is None:
            self.v = np.zeros_like(x, dtype=F32)
        self.v = self.v + self.g * x
        return self.v


def dense(x, w, b=None):
    y = x.astype(np.float64) @ np.asarray(w, np.float64).T
    if b is not None:
        y = y + np.asarray(b, np.float64)
    return y.astype(F32)


def gzip_copy(src, dst):
    """dst: src with every numeric dataset of more than one value rewritten
    chunked and gzip-compressed (as nir 1.0.8 writes)."""
    h5py = require("h5py")
    n = [0]

    def copy(gs, gd):
        for k, v in gs.items():
            if isinstance(v, h5py.Group):
                copy(v, gd.create_group(k))
            elif v.dtype.kind in "fiu" and v.size > 1:
                gd.create_dataset(k, data=v[()], compression="gzip", compression_opts=6)
                n[0] += 1
            else:
                gs.copy(v, gd, name=k)

    with h5py.File(src, "r") as fs, h5py.File(dst, "w") as fd:
        copy(fs, fd)
    return n[0]
