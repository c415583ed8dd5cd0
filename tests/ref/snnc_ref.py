"""Helpers for the reference tests: run snnc on a model and compare with
independent Python implementations.

The tests here never trust snnc's own output as an expectation: every
expected value comes from PyTorch, NumPy or a peer framework. A test that
cannot run (no torch, no peer) prints why and exits with 77, which CTest
reports as skipped.
"""
import csv
import json
import os
import re
import struct
import subprocess
import sys
import tempfile

import numpy as np

SKIP = 77


def skip(reason):
    print("SKIPPED: " + reason)
    sys.exit(SKIP)


def require(module):
    """Import a module or skip the test, saying which one is missing."""
    try:
        return __import__(module)
    except ImportError as e:
        skip("%s is not installed (%s)" % (module, e))


def snnc_path():
    path = os.environ.get("SNNC")
    if not path or not os.path.exists(path):
        skip("SNNC is not set to the built snnc binary")
    return path


def write_safetensors(path, tensors):
    """Writes float32 tensors in the safetensors format, by hand."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(np.asarray(tensors[name], dtype="<f4"))
        b = a.tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


class RunError(Exception):
    pass


def run(model, x, weights=None, records=(), init=None, extra=()):
    """Runs `snnc run` on model text `model` with input x.

    Returns (output, {record: array}). Raises RunError with snnc's message
    when it fails."""
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "model.snn")
        with open(src, "w") as f:
            f.write(model)
        xin = os.path.join(d, "x.npy")
        np.save(xin, np.ascontiguousarray(x, dtype=np.float32))
        out = os.path.join(d, "y.npy")
        cmd = [snnc_path(), "run", src, "--input", xin, "--output", out]
        if weights is not None:
            wp = os.path.join(d, "w.safetensors")
            write_safetensors(wp, weights)
            cmd += ["--weights", wp]
        if init is not None:
            cmd += ["--init", str(init)]
        files = {}
        for i, r in enumerate(records):
            files[r] = os.path.join(d, "r%d.npy" % i)
            cmd += ["--record", "%s=%s" % (r, files[r])]
        cmd += list(extra)
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            raise RunError(p.stderr.strip() or "snnc exited with %d" % p.returncode)
        return np.load(out), {r: np.load(f) for r, f in files.items()}


class Checker:
    """Counts comparisons and failures; prints a summary line at the end."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, ok, what):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            print("FAIL: " + what)

    def close(self, rtol=1e-5, atol=1e-6, spikes=(), near=None, got=None, want=None, what=""):
        """Compare arrays. Spikes must match exactly; states to rtol/atol."""
        got = np.asarray(got, dtype=np.float64)
        want = np.asarray(want, dtype=np.float64)
        if got.shape != want.shape:
            self.check(False, "%s: shape %s, expected %s" % (what, got.shape, want.shape))
            return
        err = np.abs(got - want)
        bad = err > atol + rtol * np.abs(want)
        if bad.any():
            i = np.unravel_index(np.argmax(err - rtol * np.abs(want)), got.shape)
            self.check(False, "%s: %d of %d values differ; worst at %s: got %r, expected %r"
                       % (what, bad.sum(), bad.size, i, got[i], want[i]))
        else:
            self.check(True, what)

    def same(self, got, want, what):
        got = np.asarray(got)
        want = np.asarray(want)
        if got.shape != want.shape:
            self.check(False, "%s: shape %s, expected %s" % (what, got.shape, want.shape))
            return
        bad = got != want
        self.check(not bad.any(), "%s: %d of %d values differ (first at %s)"
                   % (what, bad.sum(), bad.size,
                      np.argwhere(bad)[0] if bad.any() else None))

    def status(self):
        """Prints the summary line; the exit status of the test (1 if a
        check failed)."""
        print("%d passed, %d failed" % (self.passed, self.failed))
        return 1 if self.failed else 0

    def finish(self):
        sys.exit(self.status())


def network(name, T, shape, layers, output, readout="steps", encode="sequence",
            models=""):
    """The text of a network: `layers` is a list of (name, expression) read
    in order, `models` neuron models written before the network."""
    lines = [models, "network %s {" % name, "  timesteps %d;" % T,
             "  input x : [%s] encode %s;" % (", ".join(str(d) for d in shape), encode)]
    lines += ["  %s = %s;" % (n, e) for n, e in layers]
    lines += ["  output %s readout %s;" % (output, readout), "}", ""]
    return "\n".join(lines)


def spike_rate_ok(checker, s, what, lo=0.02, hi=0.98):
    """A comparison of spikes means something only if some fire and some
    do not: checks that the rate lies in [lo, hi]."""
    r = float(np.mean(np.asarray(s)))
    checker.check(lo <= r <= hi, "%s: spike rate %.3f outside [%g, %g]" % (what, r, lo, hi))
    return r


# ---- helpers for the training tests (tests/grad) ----

def read_safetensors(path):
    """Reads a safetensors file by hand: ({name: float32 array}, metadata)."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n].decode())
    meta = header.pop("__metadata__", {}) or {}
    base = 8 + n
    out = {}
    for name, e in header.items():
        if e["dtype"] != "F32":
            raise ValueError("%s: tensor %s is %s, not F32" % (path, name, e["dtype"]))
        b, end = e["data_offsets"]
        out[name] = np.frombuffer(blob[base + b:base + end], dtype="<f4").reshape(e["shape"]).copy()
    return out, meta


def grad(model, x, gout, weights=None, init=None, extra=()):
    """Runs `snnc grad` on model text `model`: one training-mode forward on x
    and one backward with dL/doutput = gout ([T, B, ...]).

    Returns (gradients {name: array}, dL/dx, output of every step). Raises
    RunError with snnc's message when it fails."""
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "model.snn")
        with open(src, "w") as f:
            f.write(model)
        xin = os.path.join(d, "x.npy")
        np.save(xin, np.ascontiguousarray(x, dtype=np.float32))
        gin = os.path.join(d, "g.npy")
        np.save(gin, np.ascontiguousarray(gout, dtype=np.float32))
        out = os.path.join(d, "grads.safetensors")
        dx = os.path.join(d, "dx.npy")
        ys = os.path.join(d, "y.npy")
        cmd = [snnc_path(), "grad", src, "--input", xin, "--grad-output", gin, "--output", out,
               "--input-grad", dx, "--output-steps", ys]
        if weights is not None:
            wp = os.path.join(d, "w.safetensors")
            write_safetensors(wp, weights)
            cmd += ["--weights", wp]
        if init is not None:
            cmd += ["--init", str(init)]
        cmd += list(extra)
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            raise RunError(p.stderr.strip() or "snnc exited with %d" % p.returncode)
        return read_safetensors(out)[0], np.load(dx), np.load(ys)


def train(model, outdir, args=(), cwd=None):
    """Runs `snnc train` on model text `model` (written to outdir/model.snn)
    with output folder outdir. Returns the CompletedProcess (not raising)."""
    os.makedirs(outdir, exist_ok=True)
    src = os.path.join(outdir, "model.snn")
    with open(src, "w") as f:
        f.write(model)
    cmd = [snnc_path(), "train", src, "-o", outdir] + list(args)
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)


def train_example(checker, model, outdir, epochs, min_acc, args=(), cwd=None):
    """Trains the model file `model` with `snnc train -o outdir` (and args),
    checks that metrics.csv has `epochs` rows and that the last test
    accuracy is at least min_acc; returns that accuracy. A failed training
    ends the test (checker.finish)."""
    p = subprocess.run([snnc_path(), "train", model, "-o", outdir] + list(args),
                       cwd=cwd, capture_output=True, text=True)
    print(p.stdout)
    if p.returncode != 0:
        print(p.stderr)
        checker.check(False, "snnc train failed (exit %d)" % p.returncode)
        checker.finish()
    with open(os.path.join(outdir, "metrics.csv")) as f:
        rows = list(csv.DictReader(f))
    checker.check(len(rows) == epochs, "metrics.csv has %d rows, expected %d" % (len(rows), epochs))
    acc = float(rows[-1]["test_acc"])
    checker.check(acc >= min_acc, "test accuracy %.4f, expected at least %.2f" % (acc, min_acc))
    return acc


def check_eval(checker, model, weights, acc, cwd=None):
    """`snnc run --eval` of the weights must report the accuracy training
    reported (acc), to the sample."""
    p = subprocess.run([snnc_path(), "run", model, "--eval", "--weights", weights],
                       cwd=cwd, capture_output=True, text=True)
    print(p.stdout)
    m = re.search(r"accuracy ([0-9.]+)%", p.stdout)
    checker.check(p.returncode == 0 and m is not None, "snnc run --eval failed: " + p.stderr)
    if m:
        checker.check(abs(float(m.group(1)) / 100 - acc) < 0.5e-4,
                      "snnc run --eval: accuracy %s%%, training reported %.2f%%" % (m.group(1), 100 * acc))


def rel_err(got, want):
    """max |got - want| / max |want| (0 when both are 0): the error measured
    against the scale of the whole tensor."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    scale = np.abs(want).max() if want.size else 0.0
    err = np.abs(got - want).max() if want.size else 0.0
    if scale == 0.0:
        return 0.0 if err == 0.0 else float("inf")
    return err / scale


def quick_cc(folder, flags=(), name="cc-O0"):
    """Writes FOLDER/NAME, a C compiler wrapper for `snnc --cc` that builds
    the generated code without optimization (the last -O wins), with FLAGS
    (e.g. -DNET_EVENT_COST=0) added: the C semantics, and with them every
    float result, are the same at every -O level (snnc builds with
    -std=c99, so no contraction into FMA), and large generated files build
    ten times faster. Returns its path."""
    path = os.path.join(folder, name)
    real = os.environ.get("CC") or "cc"
    with open(path, "w") as f:
        f.write("#!/bin/sh\nexec %s \"$@\" %s -O0\n" % (real, " ".join(flags)))
    os.chmod(path, 0o755)
    return path
