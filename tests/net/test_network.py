#!/usr/bin/env python3
"""End-to-end test of `snnc run` against an independent PyTorch model.

One network holds every layer type of the language: conv2d (stride,
padding, groups, a non-square kernel, with and without bias), batchnorm
(inference, over [C, H, W] and [C], with random running statistics, weight
and bias), maxpool, avgpool (zero padding counted, as PyTorch's
count_include_pad=True), flatten, dropout (identity at inference), scale, a
residual add and a recurrent edge (add(prev(r) |> dense(16, bias = false))),
and the neuron models IF, LIF (three variants), PLIF, AR-LIF, DA-LIF and LI,
with random learnable neuron parameters. It runs with random weights from a
safetensors file, a batch of 3, both encodings (direct [B, ...] and
sequence [T, B, ...]) and every readout (steps, count, rate, mean, last,
max).

The reference below is written here with torch.nn.functional (conv2d,
linear, batch_norm, max_pool2d, avg_pool2d) and the neuron equations of
DESIGN.md 2.1 in PyTorch, in SpikingJelly's conventions (fire when
H - v_th >= 0; hard reset V = H (1 - s) + v_reset s; soft reset
V = H - s v_th); it never uses snnc's results as expectations.

What must agree:
- spikes (every spiking layer, recorded over T; count and rate readouts of a
  spiking layer): identical;
- everything else (membranes, batchnorm and pooling outputs, the leaky
  readout and its mean, last, max and per-step readouts): within 1e-5
  relative (plus 1e-6 absolute for values near zero).

Spike flips. Sums run in another order in PyTorch than in the generated
code, so a potential that lands within float round-off of the threshold may
fire in one and not in the other; after that the two runs diverge. The test
therefore walks time forward: at the first step where a spiking layer
differs, every differing neuron must have |H - thr| <= 1e-5 (1 + |H|) in
the reference (otherwise the test fails); those neurons then take snnc's
spike in the reference, which is run again. At most MAX_FLIPS such flips
are accepted per encoding, each is printed, and everything else must still
agree as above. With the data here there are usually none.

Besides: the run without the optional passes (simplify, dropout, hoist)
gives the same bits; a record of prev(r) is r of the step before; a
sequence input of the wrong length is refused with the expected shape.

Last, every examples/*.snn runs with --init 1 on a random input (batch 2)
and must give a finite output of the shape its readout gives.
"""
import glob
import os
import re
import subprocess

import numpy as np

from snnc_ref import Checker, RunError, require, run, snnc_path

torch = require("torch")
F = torch.nn.functional

T = 5
B = 3
MAX_FLIPS = 4
FLIP_TOL = 1e-5
RTOL, ATOL = 1e-5, 1e-6

NET = """
network TestNet {
  timesteps %(T)d;
  input img : [3, 9, 9] encode %(enc)s;
  c1 = img |> conv2d(8, 3, padding = 1) |> batchnorm() |> LIF(tau = 2.0);
  c2 = c1 |> conv2d(8, 3, padding = 1, groups = 4, bias = false) |> batchnorm(eps = 0.001)
          |> add(c1) |> PLIF(tau0 = 3.0);
  c3 = c2 |> conv2d(12, [3, 2], stride = [2, 1], padding = [1, 0], groups = 2)
          |> ARLIF(granularity = channel);
  p1 = c3 |> maxpool(3, stride = [1, 2], padding = 1);
  p2 = p1 |> avgpool(3, stride = 2, padding = 1);
  f = p2 |> flatten |> dropout(0.3) |> dense(20) |> batchnorm() |> scale(1.5)
         |> DALIF(granularity = channel);
  r = f |> dense(16) |> add(prev(r) |> dense(16, bias = false))
        |> LIF(tau = 4.0, decay_input = false, hard = false, v_th = 0.8);
  i2 = r |> dense(10) |> IF(v_th = 0.5, v_reset = -0.1);
  l2 = r |> dense(10) |> LIF(tau = 3.0, v_th = 0.6, v_reset = -0.2);
  out = r |> dense(6) |> LI(tau = 3.0);
  output %(out)s readout %(readout)s;
}
"""

# The layers that spike, in graph order (the order of the flip walk).
SPIKING = ["c1", "c2", "c3", "f", "r", "i2", "l2"]
# Everything recorded in the per-step runs: every spiking layer, states and
# named values of neuron models, synaptic outputs, a flatten (an alias of
# its input's buffer), a dropout (removed: its input) and the prev() value.
RECORDS = SPIKING + ["img", "c1.v", "c1_batchnorm", "c2_add", "c2.h", "c2.v", "c3.m", "c3.v",
                     "c3.g", "p1", "p2", "f_flatten", "f_dropout", "f_scale", "f.v",
                     "r_prev", "r_add", "r.v", "i2.v", "l2.v", "out"]


def make_weights(rng):
    """Random weights, scaled so that every layer fires at a moderate rate."""
    def u(shape, lo, hi):
        return rng.uniform(lo, hi, size=shape).astype(np.float32)

    def n(shape, s, m=0.0):
        return (m + s * rng.standard_normal(shape)).astype(np.float32)

    W = {}

    def bn(name, c):
        W[name + ".weight"] = u(c, 0.6, 1.4)
        W[name + ".bias"] = n(c, 0.2, 0.3)
        W[name + ".running_mean"] = n(c, 0.3)
        W[name + ".running_var"] = u(c, 0.4, 2.0)

    W["c1_conv2d.weight"] = n((8, 3, 3, 3), 0.35)
    W["c1_conv2d.bias"] = n(8, 0.2)
    bn("c1_batchnorm", 8)
    W["c2_conv2d.weight"] = n((8, 2, 3, 3), 0.5)
    bn("c2_batchnorm", 8)
    W["c2.w"] = n(1, 0.3, -0.5)
    W["c3_conv2d.weight"] = n((12, 4, 3, 2), 0.45)
    W["c3_conv2d.bias"] = n(12, 0.2, 0.2)
    W["c3.a"] = n(12, 0.5)
    W["c3.c"] = n(12, 0.5, 1.0)
    W["f_dense.weight"] = n((20, 72), 0.45)
    W["f_dense.bias"] = n(20, 0.2)
    bn("f_batchnorm", 20)
    W["f.ws"] = n(20, 0.5, 0.5)
    W["f.wt"] = n(20, 0.5)
    W["r_dense.weight"] = n((16, 20), 0.6)
    W["r_dense.bias"] = n(16, 0.2, 0.3)
    W["r_dense_2.weight"] = n((16, 16), 0.4)
    W["i2_dense.weight"] = n((10, 16), 0.5)
    W["i2_dense.bias"] = n(10, 0.2, 0.2)
    W["l2_dense.weight"] = n((10, 16), 0.5)
    W["l2_dense.bias"] = n(10, 0.2, 0.1)
    W["out_dense.weight"] = n((6, 16), 0.5)
    W["out_dense.bias"] = n(6, 0.2)
    return W


# ---- the reference ----

def spike(u):
    return (u >= 0).to(torch.float32)


class Reference:
    """The network in PyTorch, time-major (every layer at step t, then t+1).

    forced[layer] is a bool tensor [T, B, ...] of neurons that take the
    spike in snnc_spikes[layer] instead of their own (see the flip walk)."""

    def __init__(self, W):
        self.W = {k: torch.from_numpy(v) for k, v in W.items()}

    def bn(self, name, x, eps=1e-5):
        W = self.W
        return F.batch_norm(x, W[name + ".running_mean"], W[name + ".running_var"],
                            W[name + ".weight"], W[name + ".bias"], training=False, eps=eps)

    def run(self, x, seq, forced=None, snnc_spikes=None):
        W = self.W
        forced = forced or {}
        rec = {}
        margin = {}  # layer -> (u, h) of the spike decision, [T, B, ...]

        def put(name, t, value):
            rec.setdefault(name, []).append(value.clone())

        def fire(name, t, u, h):
            s = spike(u)
            margin.setdefault(name, []).append((u.clone(), h.clone()))
            if name in forced:
                m = forced[name][t]
                s = torch.where(m, torch.from_numpy(snnc_spikes[name][t]), s)
            return s

        def chan(p, ndim):  # a per-channel parameter against [B, C, ...]
            return p.view(1, -1, *([1] * (ndim - 2)))

        st = {}
        z = lambda shape: torch.zeros((B,) + shape)
        st["c1.v"] = z((8, 9, 9))
        st["c2.v"] = z((8, 9, 9))
        st["c3.v"] = z((12, 5, 8))
        st["c3.m"] = z((12, 5, 8))
        st["f.v"] = z((20,))
        st["r.v"] = z((16,))
        st["i2.v"] = torch.full((B, 10), -0.1)
        st["l2.v"] = torch.full((B, 10), -0.2)
        st["out.v"] = z((6,))
        r_prev = z((16,))
        for t in range(T):
            xin = torch.from_numpy(x[t] if seq else x)
            put("img", t, xin)
            # c1: conv, batchnorm, LIF (tau 2, decay_input, hard, v_reset 0)
            a = F.conv2d(xin, W["c1_conv2d.weight"], W["c1_conv2d.bias"], padding=1)
            a = self.bn("c1_batchnorm", a)
            put("c1_batchnorm", t, a)
            v = st["c1.v"]
            h = v + (a - v) / 2.0
            s = fire("c1", t, h - 1.0, h)
            st["c1.v"] = (1.0 - s) * h + s * 0.0
            c1 = s
            put("c1", t, c1)
            put("c1.v", t, st["c1.v"])
            # c2: grouped conv without bias, batchnorm eps 1e-3, residual, PLIF
            a = F.conv2d(c1, W["c2_conv2d.weight"], None, padding=1, groups=4)
            a = self.bn("c2_batchnorm", a, eps=1e-3)
            a = a + c1
            put("c2_add", t, a)
            k = torch.sigmoid(W["c2.w"])  # 1/tau, learnable, per layer
            v = st["c2.v"]
            h = v + (a - v) * k
            s = fire("c2", t, h - 1.0, h)
            st["c2.v"] = (1.0 - s) * h + s * 0.0
            c2 = s
            put("c2", t, c2)
            put("c2.h", t, h)
            put("c2.v", t, st["c2.v"])
            # c3: strided grouped conv with a 3x2 kernel, AR-LIF per channel
            a = F.conv2d(c2, W["c3_conv2d.weight"], W["c3_conv2d.bias"], stride=(2, 1),
                         padding=(1, 0), groups=2)
            pa, pc = chan(W["c3.a"], 4), chan(W["c3.c"], 4)
            v, m = st["c3.v"], st["c3.m"]
            # the threshold's input term p is subtracted after v_th and added
            # after sigmoid(m) in the reset, in the order of the authors' XLIF
            h = 0.5 * v + a
            p = torch.tanh(pa) * torch.tanh(a)
            s = fire("c3", t, (h - 1.0) - p, h)
            g = torch.sigmoid(pc * a)
            m = torch.where(m > 0, m * g, m * (1.0 - g)) + (2.0 * s - 1.0) * torch.sigmoid(a)
            st["c3.m"] = m
            st["c3.v"] = h - s * ((1.0 + torch.sigmoid(m)) + p)
            c3 = s
            put("c3", t, c3)
            put("c3.m", t, m)
            put("c3.v", t, st["c3.v"])
            put("c3.g", t, g)
            # pooling, flatten, dropout (identity), dense, batchnorm, scale, DA-LIF
            p1 = F.max_pool2d(c3, 3, stride=(1, 2), padding=1)
            p2 = F.avg_pool2d(p1, 3, stride=2, padding=1, count_include_pad=True)
            put("p1", t, p1)
            put("p2", t, p2)
            fl = p2.reshape(B, -1)
            put("f_flatten", t, fl)
            dr = F.dropout(fl, p=0.3, training=False)
            put("f_dropout", t, dr)
            a = F.linear(dr, W["f_dense.weight"], W["f_dense.bias"])
            a = self.bn("f_batchnorm", a) * 1.5
            put("f_scale", t, a)
            alpha, beta = torch.sigmoid(W["f.ws"]), torch.sigmoid(W["f.wt"])
            u = beta * st["f.v"] + alpha * a
            s = fire("f", t, u - 1.0, u)
            st["f.v"] = u * (1.0 - s)
            f = s
            put("f", t, f)
            put("f.v", t, st["f.v"])
            # r: recurrent LIF without decay_input, soft reset, v_th 0.8
            put("r_prev", t, r_prev)
            a = F.linear(f, W["r_dense.weight"], W["r_dense.bias"]) + \
                F.linear(r_prev, W["r_dense_2.weight"])
            put("r_add", t, a)
            h = st["r.v"] * (1.0 - 1.0 / 4.0) + a
            s = fire("r", t, h - 0.8, h)
            st["r.v"] = h - s * 0.8
            r = s
            r_prev = r
            put("r", t, r)
            put("r.v", t, st["r.v"])
            # i2: IF with v_th 0.5, v_reset -0.1 (hard)
            a = F.linear(r, W["i2_dense.weight"], W["i2_dense.bias"])
            h = st["i2.v"] + a
            s = fire("i2", t, h - 0.5, h)
            st["i2.v"] = (1.0 - s) * h + s * -0.1
            put("i2", t, s)
            put("i2.v", t, st["i2.v"])
            # l2: LIF with v_reset -0.2 (decay_input, hard), starting at v_reset
            a = F.linear(r, W["l2_dense.weight"], W["l2_dense.bias"])
            v = st["l2.v"]
            h = v + (a - (v - -0.2)) / 3.0
            s = fire("l2", t, h - 0.6, h)
            st["l2.v"] = (1.0 - s) * h + s * -0.2
            put("l2", t, s)
            put("l2.v", t, st["l2.v"])
            # out: leaky integrator
            a = F.linear(r, W["out_dense.weight"], W["out_dense.bias"])
            v = st["out.v"]
            st["out.v"] = v + (a - v) / 3.0
            put("out", t, st["out.v"])
        rec = {k: torch.stack(v).numpy() for k, v in rec.items()}
        margin = {k: (torch.stack([u for u, _ in v]).numpy(), torch.stack([h for _, h in v]).numpy())
                  for k, v in margin.items()}
        return rec, margin


def readout(steps, kind):
    if kind == "steps":
        return steps
    if kind == "count":
        return steps.sum(0)
    if kind in ("rate", "mean"):
        return steps.sum(0) / np.float32(T)
    if kind == "last":
        return steps[-1]
    if kind == "max":
        return steps.max(0)
    raise ValueError(kind)


def flip_walk(ref, x, seq, got, what):
    """Runs the reference, letting neurons within round-off of their
    threshold take snnc's spike, until the spiking layers agree or a
    difference is not explained by round-off. Returns (records, flips,
    error or None)."""
    forced = {}
    flips = []
    while True:
        rec, margin = ref.run(x, seq, forced, got)
        first = None
        for t in range(T):
            for name in SPIKING:
                diff = rec[name][t] != got[name][t]
                if diff.any():
                    first = (t, name, diff)
                    break
            if first:
                break
        if not first:
            return rec, flips, None
        t, name, diff = first
        u, h = margin[name][0][t][diff], margin[name][1][t][diff]
        far = np.abs(u) > FLIP_TOL * (1 + np.abs(h))
        if far.any() or len(flips) + diff.sum() > MAX_FLIPS:
            k = int(np.argmax(np.abs(u)))
            return rec, flips, ("%s: layer %s differs at step %d in %d neurons; the reference's "
                                "H - thr there is as large as %r (H %r), not round-off"
                                % (what, name, t, diff.sum(), float(u[k]), float(h[k])))
        for idx in np.argwhere(diff):
            flips.append((name, t, tuple(int(i) for i in idx), float(margin[name][0][t][tuple(idx)])))
        if name not in forced:
            forced[name] = torch.zeros(got[name].shape, dtype=torch.bool)
        forced[name][t] |= torch.from_numpy(diff)


def compare(C, got, want, what, exact):
    if exact:
        C.same(got, want, what)
    else:
        C.close(rtol=RTOL, atol=ATOL, got=got, want=want, what=what)


def is_spiking(rec_name):
    return rec_name in SPIKING or rec_name in ("p1",)


def network_tests(C, rng):
    W = make_weights(rng)
    ref = Reference(W)
    xs = {
        "direct": rng.uniform(0, 1, size=(B, 3, 9, 9)).astype(np.float32),
        "sequence": (rng.uniform(0, 1, size=(T, B, 3, 9, 9)) *
                     (rng.uniform(size=(T, B, 3, 9, 9)) < 0.6)).astype(np.float32),
    }
    for enc, x in xs.items():
        seq = enc == "sequence"
        # 1. per-step output with everything recorded
        model = NET % {"T": T, "enc": enc, "out": "out", "readout": "steps"}
        try:
            y, got = run(model, x, weights=W, records=RECORDS)
        except RunError as e:
            C.check(False, "%s/steps: snnc run failed: %s" % (enc, e))
            continue
        want, flips, err = flip_walk(ref, x, seq, got, enc)
        for name, t, idx, u in flips:
            print("note: %s: round-off flip in layer %s at step %d, neuron %s: reference H - thr = %r"
                  % (enc, name, t, idx, u))
        if err:
            C.check(False, err)
        rates = ", ".join("%s %.2f" % (n, want[n].mean()) for n in SPIKING)
        print("%s: spike rates %s; %d round-off flips" % (enc, rates, len(flips)))
        for n in SPIKING:
            C.check(0.01 < want[n].mean() < 0.9, "%s: layer %s fires at rate %.3f: the test data "
                    "should make it fire sometimes, not always" % (enc, n, want[n].mean()))
        for r in RECORDS:
            compare(C, got[r], want[r], "%s: --record %s" % (enc, r), is_spiking(r))
        compare(C, y, want["out"], "%s: output (readout steps)" % enc, False)
        # the passes that may be switched off change no bit
        try:
            y2, got2 = run(model, x, weights=W, records=RECORDS, extra=[
                "--disable-pass=simplify", "--disable-pass=dropout", "--disable-pass=hoist"])
            C.same(y2, y, "%s: output without the optional passes" % enc)
            for r in RECORDS:
                C.same(got2[r], got[r], "%s: --record %s without the optional passes" % (enc, r))
        except RunError as e:
            C.check(False, "%s/steps without the optional passes: snnc run failed: %s" % (enc, e))
        if seq:  # a sequence of the wrong length is refused, naming the expected shape
            try:
                run(model, x[:T - 1], weights=W)
                C.check(False, "sequence: an input of %d steps was accepted" % (T - 1))
            except RunError as e:
                C.check(re.search(r"\[%d, B, ?3, ?9, ?9\]" % T, str(e)) is not None,
                        "sequence: the error for %d steps does not name [%d, B, 3, 9, 9]: %s"
                        % (T - 1, T, e))
        # r_prev must be r one step late
        C.same(got["r_prev"][1:], got["r"][:-1], "%s: prev(r) is r of the step before" % enc)
        # 2. every other readout: count and rate of a spiking layer (exact),
        # mean, last and max of the leaky readout. Some record nothing, so
        # the code without probes is checked as well.
        for ro, out, recs in [("count", "i2", ["i2"]), ("rate", "i2", []),
                              ("mean", "out", ["out.v"]), ("last", "out", []),
                              ("max", "out", ["c1"])]:
            model = NET % {"T": T, "enc": enc, "out": out, "readout": ro}
            try:
                y, g2 = run(model, x, weights=W, records=recs)
            except RunError as e:
                C.check(False, "%s/%s: snnc run failed: %s" % (enc, ro, e))
                continue
            compare(C, y, readout(want[out], ro), "%s: output (readout %s of %s)" % (enc, ro, out),
                    out == "i2")
            for r in recs:
                want_r = want["out"] if r == "out.v" else want[r]
                compare(C, g2[r], want_r, "%s/%s: --record %s" % (enc, ro, r), is_spiking(r))


# ---- the examples ----

HEAD = re.compile(r"network (\S+): (\d+) timesteps, input (\S+) \[([\d,]+)\] \((\w+)[^)]*\), "
                  r"output (\S+) readout (\w+)")


def example_tests(C, rng):
    here = os.path.dirname(os.path.abspath(__file__))
    files = sorted(glob.glob(os.path.join(here, "..", "..", "examples", "*.snn")))
    C.check(len(files) > 0, "examples/*.snn: no example found")
    for path in files:
        name = os.path.basename(path)
        p = subprocess.run([snnc_path(), "info", path], capture_output=True, text=True)
        m = HEAD.search(p.stdout)
        if p.returncode or not m:
            C.check(False, "%s: snnc info failed: %s" % (name, p.stderr.strip()))
            continue
        steps, enc, out, ro = int(m.group(2)), m.group(5), m.group(6), m.group(7)
        ishape = tuple(int(d) for d in m.group(4).split(","))
        row = re.search(r"^%s\s+\S+\s+\[([\d,]+)\]" % re.escape(out), p.stdout, re.M)
        oshape = tuple(int(d) for d in row.group(1).split(","))
        lead = (steps, 2) if enc in ("sequence", "events") else (2,)  # events: frames binned already
        x = rng.uniform(0, 1, size=lead + ishape).astype(np.float32)
        with open(path) as f:
            text = f.read()
        try:
            y, _ = run(text, x, init=1)
        except RunError as e:
            C.check(False, "%s: snnc run --init 1 failed: %s" % (name, e))
            continue
        want = ((steps,) if ro == "steps" else ()) + (2,) + oshape
        C.check(y.shape == want, "%s: output shape %s, expected %s" % (name, y.shape, want))
        C.check(bool(np.isfinite(y).all()), "%s: output is not finite" % name)
        print("%s: %s input %s -> output %s, readout %s" % (name, enc, x.shape, y.shape, ro))


def main():
    rng = np.random.default_rng(20240611)
    torch.set_num_threads(1)
    C = Checker()
    network_tests(C, rng)
    example_tests(C, rng)
    C.finish()


if __name__ == "__main__":
    main()
