#!/usr/bin/env python3
"""Graphs written by the nir package (1.0.4) run in snnc with the default
convention and agree with an independent NumPy discretization of NIR's
equations (nir_util.py, from docs/nir.md): spikes identical, membranes
within 1e-5 relative.

The graphs: Affine + LIF with per-neuron and with scalar parameters
(v_reset added by hand: nir 1.0.4 predates it); Linear + CubaLIF; the
remaining neurons and stateless nodes (Scale, Threshold, I, IF, LI,
CubaLI) in two branches summed at the Output; a recurrent CubaLIF in a
nested NIRGraph, as snnTorch exports RSynaptic, and a recurrent LIF at the
top level; Delay nodes, on the input and on a recurrence; a Conv1d net; a
conv net (Conv2d with padding 'same' and dilation, SumPool2d, a strided
grouped Conv2d, AvgPool2d, Flatten); Flattens of some dimensions only (a
Conv2d's output into a Conv1d; [2, 3, 4] as [6, 4]). Then the same files with
their datasets gzip-compressed (as nir 1.0.8 writes them) give the same
outputs bit for bit.
"""
import os
import tempfile

import numpy as np

import nir_util as U

nir = U.require("nir")
h5py = U.require("h5py")
torch = U.require("torch")
torch.set_num_threads(1)

rng = np.random.default_rng(13)
T, B = 24, 3
C = U.Checker()


def arr(*shape, lo=0.0, hi=1.0):
    return rng.uniform(lo, hi, size=shape).astype(np.float32)


def add_field(path, node, name, values):
    with h5py.File(path, "r+") as f:
        f["node/nodes/" + node].create_dataset(name, data=np.asarray(values))


def replace_node(path, node, type_, fields):
    """Rewrites a node's group by hand: a type nir 1.0.4 cannot write (CubaLI)."""
    with h5py.File(path, "r+") as f:
        del f["node/nodes/" + node]
        g = f["node/nodes"].create_group(node)
        g.create_dataset("type", data=type_, dtype=h5py.string_dtype())
        for k, v in fields.items():
            g.create_dataset(k, data=np.asarray(v))


def write(d, name, nodes, edges):
    path = os.path.join(d, name + ".nir")
    nir.write(path, nir.NIRGraph(nodes=nodes, edges=edges))
    return path


def inp(*shape):
    return nir.Input(input_type=np.array(shape))


def outp(*shape):
    return nir.Output(output_type=np.array(shape))


def lif_net(d):
    """Affine + LIF (per-neuron tau, r, v_leak, v_threshold, v_reset) +
    Affine + LIF (one value for all neurons)."""
    dt = 1e-3
    w1, b1 = arr(10, 8, lo=-0.5, hi=1.0), arr(10, lo=-0.1, hi=0.2)
    p1 = dict(tau=arr(10, lo=2e-3, hi=2e-2).astype(np.float64), r=arr(10, lo=0.5, hi=2.0),
              v_leak=arr(10, lo=-0.2, hi=0.2), v_threshold=arr(10, lo=0.5, hi=1.0))
    vr1 = arr(10, lo=-0.3, hi=0.1)
    w2, b2 = arr(4, 10, lo=-0.5, hi=1.0), arr(4, lo=0.0, hi=0.1)
    p2 = dict(tau=np.full(4, 5e-3), r=np.full(4, 2.0), v_leak=np.zeros(4), v_threshold=np.full(4, 0.8))
    path = write(d, "lif_net", {
        "input": inp(8), "fc1": nir.Affine(w1, b1), "lif1": nir.LIF(**p1),
        "fc2": nir.Affine(w2, b2), "lif2": nir.LIF(**p2), "output": outp(4)},
        [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"), ("lif2", "output")])
    add_field(path, "lif1", "v_reset", vr1)
    x = arr(T, B, 8, lo=0.0, hi=1.5)
    n1 = U.LIF(p1["tau"], p1["r"], p1["v_leak"], p1["v_threshold"], vr1, dt, (10,))
    n2 = U.LIF(p2["tau"], p2["r"], p2["v_leak"], p2["v_threshold"], 0.0, dt, (4,))
    ys, v1, v2 = [], [], []
    for t in range(T):
        ys.append(n2.step(U.dense(n1.step(U.dense(x[t], w1, b1)), w2, b2)))
        v1.append(n1.v)
        v2.append(n2.v)
    return path, x, ["--dt", "1e-3"], np.stack(ys), {"lif1.v": np.stack(v1), "lif2.v": np.stack(v2)}


def cuba_net(d):
    dt = 1e-4
    w = arr(8, 6, lo=-0.2, hi=1.0)
    p = dict(tau_syn=arr(8, lo=2e-4, hi=1e-3), tau_mem=arr(8, lo=3e-4, hi=2e-3), r=arr(8, lo=1.0, hi=5.0),
             v_leak=arr(8, lo=-0.1, hi=0.1), v_threshold=arr(8, lo=0.2, hi=0.6), w_in=arr(8, lo=1.0, hi=4.0))
    path = write(d, "cuba_net", {"input": inp(6), "lin": nir.Linear(w), "cuba": nir.CubaLIF(**p), "output": outp(8)},
                 [("input", "lin"), ("lin", "cuba"), ("cuba", "output")])
    x = arr(T, B, 6)
    n = U.CubaLIF(p["tau_syn"], p["tau_mem"], p["r"], p["v_leak"], p["v_threshold"], 0.0, p["w_in"], dt, (8,))
    ys, vs, cs = [], [], []
    for t in range(T):
        ys.append(n.step(U.dense(x[t], w)))
        vs.append(n.v)
        cs.append(n.i)
    return path, x, [], np.stack(ys), {"cuba.v": np.stack(vs), "cuba.i": np.stack(cs)}


def misc_net(d):
    """Input -> Scale -> Threshold -> Linear -> IF, and Input -> Affine -> I ->
    Affine -> CubaLI (written by hand: nir 1.0.4 has no CubaLI), and Input -> Affine -> LI; the three summed at the Output."""
    dt = 1e-3
    sc, th = arr(5, lo=0.5, hi=2.0), arr(5, lo=0.2, hi=0.8)
    wl = arr(4, 5, lo=0.0, hi=1.0)
    pif = dict(r=arr(4, lo=100, hi=400), v_threshold=arr(4, lo=0.5, hi=1.0))
    wa, ba = arr(3, 5, lo=-1, hi=1), arr(3, lo=-0.1, hi=0.1)
    pi = dict(r=arr(3, lo=1, hi=10))
    wb, bb = arr(4, 3, lo=-1, hi=1), arr(4, lo=-0.1, hi=0.1)
    pcl = dict(tau_syn=arr(4, lo=2e-3, hi=5e-3), tau_mem=arr(4, lo=5e-3, hi=1e-2), r=arr(4, lo=1, hi=2),
               v_leak=arr(4, lo=-0.1, hi=0.1), w_in=arr(4, lo=0.5, hi=2))
    wc, bc = arr(4, 5, lo=-1, hi=1), arr(4, lo=-0.1, hi=0.1)
    pli = dict(tau=arr(4, lo=2e-3, hi=1e-2), r=arr(4, lo=0.5, hi=2), v_leak=arr(4, lo=-0.2, hi=0.2))
    path = write(d, "misc_net", {
        "input": inp(5), "scale": nir.Scale(sc), "thr": nir.Threshold(th), "lin": nir.Linear(wl), "if": nir.IF(**pif),
        "fa": nir.Affine(wa, ba), "integ": nir.I(**pi), "fb": nir.Affine(wb, bb), "culi": nir.LI(pcl["tau_mem"], pcl["r"], pcl["v_leak"]),
        "fc": nir.Affine(wc, bc), "li": nir.LI(**pli), "output": outp(4)},
        [("input", "scale"), ("scale", "thr"), ("thr", "lin"), ("lin", "if"), ("if", "output"),
         ("input", "fa"), ("fa", "integ"), ("integ", "fb"), ("fb", "culi"), ("culi", "output"),
         ("input", "fc"), ("fc", "li"), ("li", "output")])
    replace_node(path, "culi", "CubaLI", pcl)
    x = arr(T, B, 5, lo=0, hi=1)
    nif = U.IF(pif["r"], pif["v_threshold"], 0.0, dt, (4,))
    nint = U.Integrator(pi["r"], dt, (3,))
    ncl = U.CubaLIF(pcl["tau_syn"], pcl["tau_mem"], pcl["r"], pcl["v_leak"], None, None, pcl["w_in"], dt, (4,),
                    spiking=False)
    nli = U.LI(pli["tau"], pli["r"], pli["v_leak"], dt, (4,))
    ys, vif = [], []
    for t in range(T):
        s = (x[t] * sc > th).astype(np.float32)
        a = nif.step(U.dense(s, wl))
        b = ncl.step(U.dense(nint.step(U.dense(x[t], wa, ba)), wb, bb))
        c = nli.step(U.dense(x[t], wc, bc))
        # the output sums its inputs in the file's edge order
        ys.append((a + b) + c)
        vif.append(nif.v)
    return path, x, ["--dt", "1e-3"], np.stack(ys), {"if_.v": np.stack(vif)}


def recurrent_net(d):
    """A CubaLIF with a recurrent Linear inside a nested NIRGraph (the shape of
    snnTorch's RSynaptic export; one edge names the nested graph, the other
    its node, "rsyn.input"), then a recurrent LIF at the top level."""
    dt = 1e-4
    w1, b1 = arr(6, 5, lo=-0.2, hi=1.0), arr(6, lo=0, hi=0.1)
    wr = arr(6, 6, lo=-0.6, hi=0.4)
    pc = dict(tau_syn=np.full(6, 5e-4), tau_mem=np.full(6, 1e-3), r=np.full(6, 10.0), v_leak=np.zeros(6),
              v_threshold=np.full(6, 1.0), w_in=np.full(6, 5.0))
    sub = nir.NIRGraph(nodes={"input": inp(6), "lif": nir.CubaLIF(**pc), "w_rec": nir.Linear(wr), "output": outp(6)},
                       edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")])
    w2 = arr(4, 6, lo=-0.3, hi=1.0)
    w2r = arr(4, 4, lo=-0.5, hi=0.5)
    pl = dict(tau=arr(4, lo=2e-4, hi=1e-3), r=np.full(4, 3.0), v_leak=np.zeros(4), v_threshold=np.full(4, 0.5))
    path = write(d, "recurrent_net", {
        "input": inp(5), "fc1": nir.Affine(w1, b1), "rsyn": sub, "fc2": nir.Linear(w2), "lif": nir.LIF(**pl),
        "rec": nir.Linear(w2r), "output": outp(4)},
        [("input", "fc1"), ("fc1", "rsyn.input"), ("rsyn", "fc2"), ("fc2", "lif"), ("lif", "rec"), ("rec", "lif"),
         ("lif", "output")])
    x = arr(T, B, 5, lo=0, hi=1)
    nc = U.CubaLIF(pc["tau_syn"], pc["tau_mem"], pc["r"], pc["v_leak"], pc["v_threshold"], 0.0, pc["w_in"], dt, (6,))
    nl = U.LIF(pl["tau"], pl["r"], pl["v_leak"], pl["v_threshold"], 0.0, dt, (4,))
    s1 = np.zeros((B, 6), np.float32)
    s2 = np.zeros((B, 4), np.float32)
    ys, v1, v2 = [], [], []
    for t in range(T):
        s1 = nc.step(U.dense(x[t], w1, b1) + U.dense(s1, wr))
        s2 = nl.step(U.dense(s1, w2) + U.dense(s2, w2r))
        ys.append(s2)
        v1.append(nc.v)
        v2.append(nl.v)
    return path, x, [], np.stack(ys), {"rsyn_lif.v": np.stack(v1), "lif.v": np.stack(v2)}


def delay_net(d):
    """Delay: 3 steps on the input; 1 step on a recurrence (which then needs
    no other delay)."""
    dt = 1e-3
    w, b = arr(4, 3, lo=-0.2, hi=1.0), arr(4, lo=0, hi=0.2)
    wr = arr(4, 4, lo=-0.5, hi=0.8)
    p = dict(tau=np.full(4, 4e-3), r=np.full(4, 3.0), v_leak=np.zeros(4), v_threshold=np.full(4, 0.6))
    path = write(d, "delay_net", {
        "input": inp(3), "d3": nir.Delay(np.full(3, 0.003)), "fc": nir.Affine(w, b), "lif": nir.LIF(**p),
        "rec": nir.Linear(wr), "d1": nir.Delay(np.full(4, 0.001)), "output": outp(4)},
        [("input", "d3"), ("d3", "fc"), ("fc", "lif"), ("lif", "rec"), ("rec", "d1"), ("d1", "lif"),
         ("lif", "output")])
    x = arr(T, B, 3, lo=0, hi=1)
    n = U.LIF(p["tau"], p["r"], p["v_leak"], p["v_threshold"], 0.0, dt, (4,))
    s = np.zeros((B, 4), np.float32)
    ys, vs = [], []
    for t in range(T):
        xd = x[t - 3] if t >= 3 else np.zeros((B, 3), np.float32)
        s = n.step(U.dense(xd, w, b) + U.dense(s, wr))
        ys.append(s)
        vs.append(n.v)
    return path, x, ["--dt", "1e-3"], np.stack(ys), {"lif.v": np.stack(vs)}


def conv_net(d):
    F = torch.nn.functional
    dt = 1e-3
    w1, b1 = arr(4, 2, 3, 3, lo=-0.3, hi=0.6), arr(4, lo=0, hi=0.1)
    p1 = dict(tau=np.full((4, 9, 9), 4e-3), r=np.full((4, 9, 9), 4.0), v_leak=np.zeros((4, 9, 9)),
              v_threshold=np.full((4, 9, 9), 1.0))
    w2, b2 = arr(4, 2, 3, 3, lo=-0.2, hi=0.6), arr(4, lo=-0.1, hi=0.1)
    p2 = dict(r=np.full((4, 2, 2), 300.0), v_threshold=np.full((4, 2, 2), 1.0))
    w3, b3 = arr(3, 4, lo=-1, hi=1), arr(3, lo=-0.1, hi=0.1)
    p3 = dict(tau=np.full(3, 3e-3), r=np.full(3, 1.0), v_leak=np.zeros(3))
    path = write(d, "conv_net", {
        "input": inp(2, 9, 9),
        "conv1": nir.Conv2d(input_shape=np.array([9, 9]), weight=w1, stride=1, padding="same", dilation=2, groups=1,
                            bias=b1),
        "lif1": nir.LIF(**p1),
        "pool1": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
        "conv2": nir.Conv2d(input_shape=np.array([4, 4]), weight=w2, stride=2, padding=1, dilation=1, groups=2,
                            bias=b2),
        "if2": nir.IF(**p2),
        "pool2": nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
        "flat": nir.Flatten(input_type={"input": np.array([4, 1, 1])}, start_dim=0, end_dim=-1),
        "fc": nir.Affine(w3, b3), "li": nir.LI(**p3), "output": outp(3)},
        [("input", "conv1"), ("conv1", "lif1"), ("lif1", "pool1"), ("pool1", "conv2"), ("conv2", "if2"),
         ("if2", "pool2"), ("pool2", "flat"), ("flat", "fc"), ("fc", "li"), ("li", "output")])
    x = arr(T, B, 2, 9, 9, lo=0, hi=1)
    n1 = U.LIF(p1["tau"], p1["r"], p1["v_leak"], p1["v_threshold"], 0.0, dt, (4, 9, 9))
    n2 = U.IF(p2["r"], p2["v_threshold"], 0.0, dt, (4, 2, 2))
    n3 = U.LI(p3["tau"], p3["r"], p3["v_leak"], dt, (3,))
    t32 = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))  # noqa: E731
    ys, v1, sp2 = [], [], []
    for t in range(T):
        a = F.conv2d(t32(x[t]), t32(w1), t32(b1), padding="same", dilation=2).numpy()
        s = n1.step(a)
        p = F.conv2d(t32(s), torch.ones(4, 1, 2, 2), stride=2, groups=4).numpy()
        c = F.conv2d(t32(p), t32(w2), t32(b2), stride=2, padding=1, groups=2).numpy()
        s2 = n2.step(c)
        sp2.append(s2)
        q = F.avg_pool2d(t32(s2), 2).numpy().reshape(B, 4)
        ys.append(n3.step(U.dense(q, w3, b3)))
        v1.append(n1.v)
    return path, x, ["--dt", "1e-3"], np.stack(ys), {"lif1.v": np.stack(v1), "if2": np.stack(sp2)}


def conv1d(length=12, **kw):
    """nir 1.0.4's Conv1d cannot take an input_shape (its shape inference
    fails on it), nor write None: set it after construction."""
    c = nir.Conv1d(input_shape=None, **kw)
    c.input_shape = np.array([length])
    return c


def conv1d_net(d):
    """Conv1d ('same' padding with dilation, then strided and grouped): snnc
    takes a [C, L] value as [C, 1, L], the input included (docs/nir.md)."""
    F = torch.nn.functional
    dt = 1e-3
    w1, b1 = arr(4, 2, 3, lo=-0.3, hi=0.8), arr(4, lo=0, hi=0.1)
    p1 = dict(tau=np.full((4, 12), 4e-3), r=np.full((4, 12), 4.0), v_leak=np.zeros((4, 12)),
              v_threshold=np.full((4, 12), 1.0))
    w2, b2 = arr(4, 2, 2, lo=-0.2, hi=0.8), arr(4, lo=-0.1, hi=0.1)
    p2 = dict(r=np.full((4, 6), 300.0), v_threshold=np.full((4, 6), 1.0))
    w3, b3 = arr(3, 24, lo=-0.5, hi=0.5), arr(3, lo=-0.1, hi=0.1)
    p3 = dict(tau=np.full(3, 3e-3), r=np.full(3, 1.0), v_leak=np.zeros(3))
    path = write(d, "conv1d_net", {
        "input": inp(2, 12),
        "conv1": conv1d(weight=w1, stride=1, padding="same", dilation=2, groups=1,
                            bias=b1),
        "lif1": nir.LIF(**p1),
        "conv2": conv1d(weight=w2, stride=2, padding=0, dilation=1, groups=2, bias=b2),
        "if2": nir.IF(**p2),
        "flat": nir.Flatten(input_type={"input": np.array([4, 6])}, start_dim=0, end_dim=-1),
        "fc": nir.Affine(w3, b3), "li": nir.LI(**p3), "output": outp(3)},
        [("input", "conv1"), ("conv1", "lif1"), ("lif1", "conv2"), ("conv2", "if2"), ("if2", "flat"),
         ("flat", "fc"), ("fc", "li"), ("li", "output")])
    x = arr(T, B, 2, 12, lo=0, hi=1)
    n1 = U.LIF(p1["tau"], p1["r"], p1["v_leak"], p1["v_threshold"], 0.0, dt, (4, 12))
    n2 = U.IF(p2["r"], p2["v_threshold"], 0.0, dt, (4, 6))
    n3 = U.LI(p3["tau"], p3["r"], p3["v_leak"], dt, (3,))
    t32 = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))  # noqa: E731
    ys, v1, sp2 = [], [], []
    for t in range(T):
        s1 = n1.step(F.conv1d(t32(x[t]), t32(w1), t32(b1), padding="same", dilation=2).numpy())
        s2 = n2.step(F.conv1d(t32(s1), t32(w2), t32(b2), stride=2, groups=2).numpy())
        sp2.append(s2.reshape(B, 4, 1, 6))
        ys.append(n3.step(U.dense(s2.reshape(B, 24), w3, b3)))
        v1.append(n1.v.reshape(B, 4, 1, 12))
    return (path, x.reshape(T, B, 2, 1, 12), ["--dt", "1e-3"], np.stack(ys),
            {"lif1.v": np.stack(v1), "if2": np.stack(sp2)})


def flatten_net(d):
    """Flattens of some dimensions: a Conv2d's [3, 4, 6] flattened from
    dimension 1 feeds a Conv1d as [3, 24] ([3, 1, 24] in snnc), then all is
    flattened for the Affine."""
    F = torch.nn.functional
    dt = 1e-3
    w1, b1 = arr(3, 2, 3, 3, lo=-0.3, hi=0.7), arr(3, lo=0, hi=0.1)
    p1 = dict(tau=np.full((3, 4, 6), 4e-3), r=np.full((3, 4, 6), 4.0), v_leak=np.zeros((3, 4, 6)),
              v_threshold=np.full((3, 4, 6), 1.0))
    w2, b2 = arr(4, 3, 3, lo=-0.2, hi=0.8), arr(4, lo=-0.1, hi=0.1)
    p2 = dict(r=np.full((4, 11), 300.0), v_threshold=np.full((4, 11), 1.0))
    w3, b3 = arr(3, 44, lo=-0.5, hi=0.5), arr(3, lo=-0.1, hi=0.1)
    p3 = dict(tau=np.full(3, 3e-3), r=np.full(3, 1.0), v_leak=np.zeros(3))
    path = write(d, "flatten_net", {
        "input": inp(2, 4, 6),
        "conv1": nir.Conv2d(input_shape=np.array([4, 6]), weight=w1, stride=1, padding=1, dilation=1, groups=1,
                            bias=b1),
        "lif1": nir.LIF(**p1),
        "flat1": nir.Flatten(input_type={"input": np.array([3, 4, 6])}, start_dim=1, end_dim=2),
        "conv2": conv1d(24, weight=w2, stride=2, padding=0, dilation=1, groups=1, bias=b2),
        "if2": nir.IF(**p2),
        "flat2": nir.Flatten(input_type={"input": np.array([4, 11])}, start_dim=0, end_dim=-1),
        "fc": nir.Affine(w3, b3), "li": nir.LI(**p3), "output": outp(3)},
        [("input", "conv1"), ("conv1", "lif1"), ("lif1", "flat1"), ("flat1", "conv2"), ("conv2", "if2"),
         ("if2", "flat2"), ("flat2", "fc"), ("fc", "li"), ("li", "output")])
    x = arr(T, B, 2, 4, 6, lo=0, hi=1)
    n1 = U.LIF(p1["tau"], p1["r"], p1["v_leak"], p1["v_threshold"], 0.0, dt, (3, 4, 6))
    n2 = U.IF(p2["r"], p2["v_threshold"], 0.0, dt, (4, 11))
    n3 = U.LI(p3["tau"], p3["r"], p3["v_leak"], dt, (3,))
    t32 = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))  # noqa: E731
    ys, sp1, sp2 = [], [], []
    for t in range(T):
        s1 = n1.step(F.conv2d(t32(x[t]), t32(w1), t32(b1), padding=1).numpy())
        sp1.append(s1.reshape(B, 3, 1, 24))
        s2 = n2.step(F.conv1d(t32(s1.reshape(B, 3, 24)), t32(w2), t32(b2), stride=2).numpy())
        sp2.append(s2.reshape(B, 4, 1, 11))
        ys.append(n3.step(U.dense(s2.reshape(B, 44), w3, b3)))
    return path, x, ["--dt", "1e-3"], np.stack(ys), {"flat1": np.stack(sp1), "if2": np.stack(sp2)}


def flatten2d_net(d):
    """A Flatten of the first two of three dimensions, with no Conv1d in the
    graph: [2, 3, 4] becomes [6, 4], a LIF layer of one time constant per
    neuron steps it; a Flatten of [6, 4] from dimension 1 leaves it as it
    is, one from dimension -2 to 1 flattens it."""
    dt = 1e-3
    p = dict(tau=arr(6, 4, lo=2e-3, hi=2e-2).astype(np.float64), r=np.full((6, 4), 3.0),
             v_leak=np.zeros((6, 4)), v_threshold=arr(6, 4, lo=0.3, hi=0.6))
    w, b = arr(5, 24, lo=-0.5, hi=1.0), arr(5, lo=0, hi=0.1)
    path = write(d, "flatten2d_net", {
        "input": inp(2, 3, 4),
        "flat1": nir.Flatten(input_type={"input": np.array([2, 3, 4])}, start_dim=0, end_dim=1),
        "lif": nir.LIF(**p),
        "flat2": nir.Flatten(input_type={"input": np.array([6, 4])}, start_dim=1, end_dim=-1),
        "flat3": nir.Flatten(input_type={"input": np.array([6, 4])}, start_dim=-2, end_dim=1),
        "fc": nir.Affine(w, b), "output": outp(5)},
        [("input", "flat1"), ("flat1", "lif"), ("lif", "flat2"), ("flat2", "flat3"), ("flat3", "fc"),
         ("fc", "output")])
    x = arr(T, B, 2, 3, 4, lo=0, hi=1.5)
    n = U.LIF(p["tau"], p["r"], p["v_leak"], p["v_threshold"], 0.0, dt, (6, 4))
    ys, vs, sp = [], [], []
    for t in range(T):
        s = n.step(x[t].reshape(B, 6, 4))
        ys.append(U.dense(s.reshape(B, 24), w, b))
        vs.append(n.v)
        sp.append(s.reshape(B, 24))
    return path, x, ["--dt", "1e-3"], np.stack(ys), {"lif.v": np.stack(vs), "flat3": np.stack(sp)}


def main():
    U.snnc_path()
    with tempfile.TemporaryDirectory(prefix="snnc-nir-") as d:
        for make in (lif_net, cuba_net, misc_net, recurrent_net, delay_net, conv_net, conv1d_net, flatten_net,
                     flatten2d_net):
            path, x, extra, want, recs = make(d)
            name = os.path.basename(path)
            try:
                y, got = U.run_nir(path, x, records=list(recs), extra=extra)
            except U.RunError as e:
                C.fail("%s: %s" % (name, e))
                continue
            spiking = name not in ("conv_net.nir", "conv1d_net.nir", "misc_net.nir", "flatten_net.nir",
                                   "flatten2d_net.nir")
            if spiking:
                C.spikes(name + " output", y, want)
            else:
                C.close(name + " output", y, want)
            for r, v in recs.items():
                (C.close if "." in r else C.spikes)("%s %s" % (name, r), got[r], v)
            # the same file, gzip-compressed
            gz = path[:-4] + "_gzip.nir"
            n = U.gzip_copy(path, gz)
            y2, _ = U.run_nir(gz, x, extra=extra)
            if n and np.array_equal(y2, y):
                C.ok("%s, %d datasets gzip-compressed: the same output" % (name, n))
            else:
                C.fail("%s, %d datasets gzip-compressed: the output differs" % (name, n))
    C.done()


if __name__ == "__main__":
    main()
