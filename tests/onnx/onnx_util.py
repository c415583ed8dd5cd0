"""Helpers of the ONNX tests: run snnc on .onnx files, and run PyTorch
models built from scripts/snnc_onnx.py over T steps as the reference, with
the spike-flip walk of tests/net/test_network.py.

Nothing here trusts snnc's output as an expectation: the reference is
PyTorch (the helper's modules, which follow the equations of
docs/neurons.md) or onnxruntime.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np

from snnc_ref import RunError, require, snnc_path

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "scripts"))

torch = require("torch")
require("onnx")
import snnc_onnx as so  # noqa: E402  (after the path is set)

torch.set_num_threads(1)


def snnc(args, check=True):
    """Runs snnc with args; returns the CompletedProcess. With check, a
    failure raises RunError with snnc's message."""
    p = subprocess.run([snnc_path()] + list(args), capture_output=True, text=True)
    if check and p.returncode != 0:
        raise RunError("snnc %s: exit %d: %s" % (" ".join(args[:2]), p.returncode, p.stderr.strip()))
    return p


def run_onnx(model, x, records=(), extra=()):
    """`snnc run MODEL.onnx` on input x: (output, {record: array})."""
    with tempfile.TemporaryDirectory() as d:
        xin = os.path.join(d, "x.npy")
        np.save(xin, np.ascontiguousarray(x, dtype=np.float32))
        out = os.path.join(d, "y.npy")
        cmd = ["run", model, "--input", xin, "--output", out]
        files = {}
        for i, r in enumerate(records):
            files[r] = os.path.join(d, "r%d.npy" % i)
            cmd += ["--record", "%s=%s" % (r, files[r])]
        snnc(cmd + list(extra))
        return np.load(out), {r: np.load(f) for r, f in files.items()}


def layers_of(model, extra=()):
    """[(layer, op)] of `snnc info MODEL` (op: the model name of a neuron layer)."""
    p = snnc(["info", model] + list(extra))
    rows, on = [], False
    for line in p.stdout.splitlines():
        if line.startswith("layer "):
            on = True
            continue
        if on and not line.strip():
            break
        if on:
            f = line.split()
            rows.append((f[0], f[1]))
    return rows


class Reference:
    """Runs a PyTorch model of snnc_onnx neurons over T steps.

    neurons: [(snnc layer name, module)] in the model's forward order;
    states: [(record name, module, attribute)] read after every step.
    forced[layer] = (mask [T, ...] bool, spikes [T, ...]) makes those
    neurons take the given spikes (the flip walk). Returns
    (output [T, B, ...], {record: [T, B, ...]}, {layer: u [T, B, ...]}),
    where u is the spike argument (potential minus threshold)."""

    def __init__(self, model, neurons, states=()):
        self.model = model
        self.neurons = neurons
        self.states = states

    def run(self, x, T, seq, forced=None):
        forced = forced or {}
        cur = [None]
        step = [0]
        us = {name: [] for name, _ in self.neurons}
        names = {id(m): name for name, m in self.neurons}
        orig = so.spike

        def spike(u, surrogate="sigmoid(4.0)"):
            s = orig(u, surrogate)
            name = cur[0]
            if name is not None:
                us[name].append(u.detach().clone())
                if name in forced:
                    mask, val = forced[name]
                    s = torch.where(torch.from_numpy(mask[step[0]]), torch.from_numpy(val[step[0]]), s)
            return s

        hooks = []
        outs = {name: [] for name, _ in self.neurons}

        def before(mod, inp):
            cur[0] = names[id(mod)]

        def after(mod, inp, out):
            outs[names[id(mod)]].append(out.detach().clone())
            cur[0] = None

        for name, m in self.neurons:
            hooks.append(m.register_forward_pre_hook(before))
            hooks.append(m.register_forward_hook(after))
        so.spike = spike
        rec = {r: [] for r, _, _ in self.states}
        ys = []
        try:
            so.reset(self.model)
            with torch.no_grad():
                for t in range(T):
                    step[0] = t
                    xt = torch.from_numpy(np.ascontiguousarray(x[t] if seq else x, dtype=np.float32))
                    ys.append(self.model(xt).clone())
                    for r, m, attr in self.states:
                        rec[r].append(getattr(m, attr).detach().clone())
        finally:
            so.spike = orig
            for h in hooks:
                h.remove()
        for name in outs:
            rec[name] = outs[name]
        st = lambda v: np.stack([a.numpy() for a in v]) if v else None
        return st(ys), {k: st(v) for k, v in rec.items()}, {k: st(v) for k, v in us.items()}


FLIP_TOL = 1e-5


def flip_walk(ref, x, T, seq, got, spiking, max_flips=6, log=print):
    """Runs the reference until its spikes agree with snnc's (got[layer]):
    at the first step where a spiking layer differs (layers in forward
    order), every differing neuron must have |u| <= FLIP_TOL (1 + |u|) in
    the reference, a potential within round-off of the threshold; those
    neurons then take snnc's spike and the reference runs again. Returns
    (output, records, flips, error): error is None or why it failed."""
    forced = {}
    flips = 0
    while True:
        y, rec, us = ref.run(x, T, seq, forced)
        first = None
        for t in range(T):
            for name in spiking:
                if (rec[name][t] != got[name][t]).any():
                    first = (t, name)
                    break
            if first:
                break
        if first is None:
            return y, rec, flips, None
        t, name = first
        diff = rec[name][t] != got[name][t]
        u = us[name][t]
        near = np.abs(u) <= FLIP_TOL * (1 + np.abs(u))
        if not near[diff].all():
            i = tuple(np.argwhere(diff & ~near)[0])
            return y, rec, flips, ("layer %s step %d: spike differs at %s with u = %.9g, not within "
                                   "round-off of the threshold" % (name, t, i, u[i]))
        n = int(diff.sum())
        flips += n
        if flips > max_flips:
            return y, rec, flips, "more than %d spike flips" % max_flips
        for i in np.argwhere(diff):
            log("  accepted flip: layer %s step %d neuron %s: u = %.3g in PyTorch, snnc spike %g"
                % (name, t, tuple(i), u[tuple(i)], got[name][t][tuple(i)]))
        mask, val = forced.get(name, (np.zeros(got[name].shape, bool), np.zeros(got[name].shape, np.float32)))
        mask = mask.copy()
        val = val.copy()
        mask[t] |= diff
        val[t] = np.where(diff, got[name][t], val[t])
        forced[name] = (mask, val.astype(np.float32))


def close(checker, got, want, what, rtol=1e-5, atol=None):
    """got within rtol of want, plus atol (default: rtol times the tensor's
    scale, max(1, max |want|): a potential near 0 carries the round-off of
    the sums that made it, which are of the order of the threshold)."""
    if atol is None:
        w = np.asarray(want, dtype=np.float64)
        atol = rtol * max(1.0, float(np.abs(w).max()) if w.size else 0.0)
    checker.close(rtol=rtol, atol=atol, got=got, want=want, what=what)


def tmpdir():
    return tempfile.TemporaryDirectory(prefix="snnc-onnx-test-")
