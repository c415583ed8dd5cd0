#!/usr/bin/env python3
"""NIR graphs that snnc once refused (docs/nir.md, section 2), written by
the nir package (1.0.4), against references computed here (NumPy, and
PyTorch's convolutions for the padding):

1. Delay nodes whose delays differ between neurons: on the input (delays
   of 0 to 3 steps, some neurons undelayed) and on a recurrence (1 to 2
   steps, so that the cycle needs no other delay); y_j(t) = x_j(t - n_j),
   zeros before.
2. Padding "same" with even kernels, which pads the end one more than the
   start (PyTorch's rule, which nirtorch's importers follow): a Conv2d of
   2 x 4 and a Conv1d of 4 with dilation 1, against torch's
   F.conv2d / F.conv1d(padding="same").
3. Each graph exported by snnc (`snnc export`) and run again gives the same
   outputs, and the nir package reads the export.
4. Errors: an even kernel with "same" and a stride of 2; per-neuron delays
   that are not whole steps (the node and the flat index named).
"""
import os
import subprocess
import tempfile

import numpy as np

import nir_util as U

nir = U.require("nir")
torch = U.require("torch")
torch.set_num_threads(1)

rng = np.random.default_rng(31)
T, B = 20, 3
C = U.Checker()
F32 = np.float32


def arr(*shape, lo=0.0, hi=1.0):
    return rng.uniform(lo, hi, size=shape).astype(F32)


def write(d, name, nodes, edges):
    path = os.path.join(d, name + ".nir")
    nir.write(path, nir.NIRGraph(nodes=nodes, edges=edges))
    return path


def delayed(xs, steps):
    """xs [T, B, N...]: neuron j delayed by steps[j] steps, zeros before."""
    out = np.zeros_like(xs)
    flat, oflat = xs.reshape(xs.shape[0], xs.shape[1], -1), out.reshape(out.shape[0], out.shape[1], -1)
    for j, n in enumerate(np.ravel(steps).astype(int)):
        oflat[n:, :, j] = flat[:xs.shape[0] - n, :, j]
    return out


def delay_input_net(d):
    """Input [2, 3] -> Delay (0 to 3 steps per neuron) -> LIF -> Output."""
    dt = 1e-3
    steps = np.array([[0, 1, 3], [2, 0, 1]])
    p = dict(tau=np.full((2, 3), 4e-3), r=np.full((2, 3), 3.0), v_leak=np.zeros((2, 3)),
             v_threshold=np.full((2, 3), 0.5))
    path = write(d, "delay_input", {
        "input": nir.Input(input_type=np.array([2, 3])), "dl": nir.Delay(steps * dt), "lif": nir.LIF(**p),
        "output": nir.Output(output_type=np.array([2, 3]))},
        [("input", "dl"), ("dl", "lif"), ("lif", "output")])
    x = arr(T, B, 2, 3)
    xd = delayed(x, steps)
    n = U.LIF(p["tau"], p["r"], p["v_leak"], p["v_threshold"], 0.0, dt, (2, 3))
    ys, vs = [], []
    for t in range(T):
        ys.append(n.step(xd[t]))
        vs.append(n.v)
    return path, x, ["--dt", "1e-3"], np.stack(ys), {"lif.v": np.stack(vs)}


def delay_recurrent_net(d):
    """Affine + LIF with a recurrence through Linear and a Delay of 1 or 2
    steps per neuron (every neuron delayed: the cycle needs nothing else)."""
    dt = 1e-3
    w, b = arr(4, 3, lo=-0.2, hi=1.0), arr(4, lo=0, hi=0.2)
    wr = arr(4, 4, lo=-0.5, hi=0.8)
    steps = np.array([1, 2, 2, 1])
    p = dict(tau=np.full(4, 4e-3), r=np.full(4, 3.0), v_leak=np.zeros(4), v_threshold=np.full(4, 0.6))
    path = write(d, "delay_recurrent", {
        "input": nir.Input(input_type=np.array([3])), "fc": nir.Affine(w, b), "lif": nir.LIF(**p),
        "rec": nir.Linear(wr), "dl": nir.Delay(steps * dt), "output": nir.Output(output_type=np.array([4]))},
        [("input", "fc"), ("fc", "lif"), ("lif", "rec"), ("rec", "dl"), ("dl", "lif"), ("lif", "output")])
    x = arr(T, B, 3)
    n = U.LIF(p["tau"], p["r"], p["v_leak"], p["v_threshold"], 0.0, dt, (4,))
    recs = []  # rec's output at each step
    ys, vs = [], []
    for t in range(T):
        r = np.zeros((B, 4), F32)
        for j, k in enumerate(steps):
            if t - k >= 0:
                r[:, j] = recs[t - k][:, j]
        s = n.step(U.dense(x[t], w, b) + r)
        recs.append(U.dense(s, wr))
        ys.append(s)
        vs.append(n.v)
    return path, x, ["--dt", "1e-3"], np.stack(ys), {"lif.v": np.stack(vs)}


def same_even_net(d):
    """Conv2d 2 x 4 and Conv1d 4, padding 'same' (the end padded one more)."""
    Fn = torch.nn.functional
    t32 = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=F32))  # noqa: E731
    w1, b1 = arr(3, 2, 2, 4, lo=-0.5, hi=0.8), arr(3, lo=-0.1, hi=0.1)
    path = write(d, "same_even", {
        "input": nir.Input(input_type=np.array([2, 5, 7])),
        "conv": nir.Conv2d(input_shape=np.array([5, 7]), weight=w1, stride=1, padding="same", dilation=1, groups=1,
                           bias=b1),
        "output": nir.Output(output_type=np.array([3, 5, 7]))},
        [("input", "conv"), ("conv", "output")])
    x = arr(T, B, 2, 5, 7, lo=-1, hi=1)
    want = np.stack([Fn.conv2d(t32(x[t]), t32(w1), t32(b1), padding="same").numpy() for t in range(T)])
    return path, x, [], want, {}


def same_even_1d_net(d):
    Fn = torch.nn.functional
    t32 = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=F32))  # noqa: E731
    w1, b1 = arr(2, 2, 4, lo=-0.5, hi=0.8), arr(2, lo=-0.1, hi=0.1)
    c = nir.Conv1d(input_shape=None, weight=w1, stride=1, padding="same", dilation=1, groups=1, bias=b1)
    c.input_shape = np.array([9])  # nir 1.0.4 cannot take it in the constructor (see test_nir_graphs.py)
    path = write(d, "same_even_1d", {
        "input": nir.Input(input_type=np.array([2, 9])), "conv": c,
        "output": nir.Output(output_type=np.array([2, 9]))},
        [("input", "conv"), ("conv", "output")])
    x = arr(T, B, 2, 9, lo=-1, hi=1)
    want = np.stack([Fn.conv1d(t32(x[t]), t32(w1), t32(b1), padding="same").numpy() for t in range(T)])
    # snnc's values of a graph with a Conv1d are [C, 1, L] (docs/nir.md)
    return path, x.reshape(T, B, 2, 1, 9), [], want.reshape(T, B, 2, 1, 9), {}


def errors(d):
    w = arr(3, 2, 2, 2)
    path = write(d, "same_stride", {
        "input": nir.Input(input_type=np.array([2, 6, 6])),
        "conv": nir.Conv2d(input_shape=np.array([6, 6]), weight=w, stride=2, padding="same", dilation=1, groups=1,
                           bias=np.zeros(3, F32)),
        "output": nir.Output(output_type=np.array([3, 3, 3]))},
        [("input", "conv"), ("conv", "output")])
    path2 = write(d, "delay_frac", {
        "input": nir.Input(input_type=np.array([3])), "dl": nir.Delay(np.array([1e-3, 2.5e-3, 0.0])),
        "output": nir.Output(output_type=np.array([3]))},
        [("input", "dl"), ("dl", "output")])
    for p, want in ((path, "node 'conv' (Conv2d): padding 'same' with an even kernel (2 x 2) needs a stride of 1"),
                    (path2, "node 'dl' (Delay): its delay of 0.0025 s at flat index 1 is not a whole number of "
                            "steps")):
        r = U.snnc(["info", p, "--timesteps", "4", "--dt", "1e-3"], check=False)
        if r.returncode == 1 and want in r.stderr:
            C.ok("refused: %s" % want)
        else:
            C.fail("%s: exit %d, %s (expected %r)" % (os.path.basename(p), r.returncode, r.stderr.strip(), want))


def main():
    U.snnc_path()
    with tempfile.TemporaryDirectory(prefix="snnc-nir-") as d:
        for make in (delay_input_net, delay_recurrent_net, same_even_net, same_even_1d_net):
            path, x, extra, want, recs = make(d)
            name = os.path.basename(path)
            try:
                y, got = U.run_nir(path, x, records=list(recs), extra=extra)
            except U.RunError as e:
                C.fail("%s: %s" % (name, e))
                continue
            spiking = name.startswith("delay")
            (C.spikes if spiking else C.close)(name + " output", y, want)
            for r, v in recs.items():
                C.close("%s %s" % (name, r), got[r], v)
            out = path[:-4] + "_exported.nir"
            p = U.snnc(["export", path, "-o", out] + extra, check=False)
            if p.returncode:
                C.fail("%s: export: %s" % (name, p.stderr.strip()))
                continue
            try:
                g = nir.read(out)
                C.ok("%s exported: nir reads it (%s)" % (name, ", ".join(sorted(
                    {type(v).__name__ for v in g.nodes.values()}))))
            except Exception as e:  # noqa: BLE001 (whatever nir raises)
                C.fail("%s exported: nir.read: %r" % (name, e))
            y2, got2 = U.run_nir(out, x, extra=extra)
            (C.spikes if spiking else C.close)(name + " exported: the same output", y2, y)
        errors(d)
    C.done()


if __name__ == "__main__":
    main()
