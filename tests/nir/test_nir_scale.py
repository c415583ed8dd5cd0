#!/usr/bin/env python3
"""snnc export --format nir of a large recurrent network (docs/nir.md,
section "snnc export": recurrence and delays).

Not a timing test. The export checks each prev() for a cycle back to its
layer; that check once walked the whole graph, so that the export took
time quadratic in the network's size.

1. A chain of 100,000 neuron layers, each reading its own previous step
   (100,000 prev() in 300,000 nodes of the IR), with a readout NIR cannot
   express: the export checks every layer and then refuses the network
   (exit 1, the readout named, no file). Linear, this takes seconds; the
   quadratic check took hours (2 minutes at a third of the size, and
   9 times as long at three times). The test waits 600 s before calling it
   a failure, far more than a loaded machine needs.
2. The graph written for a chain of 8,000 layers, each reading its own
   previous step (a cycle through the layer alone: a plain recurrent
   edge) and the previous layer's (no cycle: a Delay node). The expected
   nodes and edges are derived here from the network's text: per layer i,
   the edges h(i-1) -> h(i), h(i) -> h(i), and h(i-1) -> Delay -> h(i)
   with a delay of one step (dt = 1e-4 s).

A small case keeps what the check decides: a prev(h) with one path back
to h through no neuron and another through a neuron layer is a Delay, not
a plain edge (the importer could not tell which edge the cycle delays).
Needs h5py (read the file directly: the nir package takes long on 16,000
nodes).
"""
import os
import subprocess
import sys
import tempfile

import numpy as np

import nir_util as U

h5py = U.require("h5py")
C = U.Checker()
LAYERS = 8000
BIG = 100000
DT = 1e-4


def chain(layers):
    out = ["network Chain {", "  timesteps 2;", "  input x : [3] encode sequence;", "  h0 = x |> LIF();"]
    for i in range(1, layers + 1):
        out.append("  h%d = h%d |> add(prev(h%d)) |> add(prev(h%d)) |> LIF();" % (i, i - 1, i, i - 1))
    out += ["  output h%d readout steps;" % layers, "}", ""]
    return "\n".join(out)


def read_graph(path):
    """{name: (type, group)} and the list of edges of the top graph."""
    f = h5py.File(path, "r")
    g = f["node"]
    nodes = {k: (v["type"][()].decode(), v) for k, v in g["nodes"].items()}
    edges = [(a.decode(), b.decode()) for a, b in g["edges"][()]]
    return f, nodes, edges


def check_chain(d):
    src = os.path.join(d, "chain.snn")
    with open(src, "w") as f:
        f.write(chain(LAYERS))
    out = os.path.join(d, "chain.nir")
    cmd = [U.snnc_path(), "export", src, "--dt", str(DT), "-o", out]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        C.fail("export of %d layers: not done after 600 s (quadratic again?)" % LAYERS)
        return
    if p.returncode != 0:
        C.fail("export of %d layers: exit %d: %s" % (LAYERS, p.returncode, p.stderr[-500:]))
        return
    C.ok("export of %d layers (%d prev())" % (LAYERS, 2 * LAYERS))
    f, nodes, edges = read_graph(out)
    types = {}
    for t, _ in nodes.values():
        types[t] = types.get(t, 0) + 1
    want = {"Input": 1, "LIF": LAYERS + 1, "Delay": LAYERS, "Output": 1}
    if types == want:
        C.ok("node types %s" % sorted(types.items()))
    else:
        C.fail("node types %s, expected %s" % (sorted(types.items()), sorted(want.items())))
    into = {}
    for a, b in edges:
        into.setdefault(b, []).append(a)
    if len(edges) != len(set(edges)):
        C.fail("%d edges listed twice" % (len(edges) - len(set(edges))))
    bad = []
    delays = set()
    for i in range(1, LAYERS + 1):
        h, last = "h%d" % i, "h%d" % (i - 1)
        srcs = into.get(h, [])
        dl = [s for s in srcs if nodes.get(s, ("",))[0] == "Delay"]
        ok = len(srcs) == 3 and last in srcs and h in srcs and len(dl) == 1
        if ok:
            delays.add(dl[0])
            t, grp = nodes[dl[0]]
            ok = into.get(dl[0]) == [last] and np.allclose(grp["delay"][()], DT, rtol=1e-12, atol=0)
        if not ok:
            bad.append(h)
    if bad:
        C.fail("%d layers read other edges than h(i-1), h(i) and a Delay of h(i-1) (first %s: %s)" % (
            len(bad), bad[0], into.get(bad[0])))
    elif len(delays) != LAYERS:
        C.fail("%d layers share %d Delay nodes" % (LAYERS, len(delays)))
    else:
        C.ok("%d layers: recurrent edge to itself, edge from the previous layer, its Delay of %g s" % (LAYERS, DT))
    if into.get("h0") == ["x"] and into.get("output") == ["h%d" % LAYERS]:
        C.ok("Input -> h0, h%d -> Output" % LAYERS)
    else:
        C.fail("into h0: %s, into output: %s" % (into.get("h0"), into.get("output")))
    f.close()


SMALL = """network Two {
  timesteps 2;
  input x : [3] encode sequence;
  p = prev(h);
  a = p |> dense(3) |> LIF();
  h = x |> dense(3) |> add(p |> dense(3)) |> add(a |> dense(3)) |> LIF();
  output h readout steps;
}
"""


def check_small(d):
    src = os.path.join(d, "two.snn")
    with open(src, "w") as f:
        f.write(SMALL)
    out = os.path.join(d, "two.nir")
    U.snnc(["export", src, "--init", "1", "-o", out])
    f, nodes, edges = read_graph(out)
    delays = [k for k, (t, _) in nodes.items() if t == "Delay"]
    if len(delays) == 1 and (("h", delays[0]) in edges) and ("h", "h") not in edges:
        C.ok("prev(h) with paths back to h through no neuron and through one: a Delay, no plain edge")
    else:
        C.fail("prev(h) read both ways: Delay nodes %s, edges from h %s" % (
            delays, [e for e in edges if e[0] == "h"]))
    f.close()


def check_refused(d):
    src = os.path.join(d, "big.snn")
    lines = ["network Big {", "  timesteps 2;", "  input x : [3] encode sequence;", "  h0 = x |> LIF();"]
    lines += ["  h%d = h%d |> add(prev(h%d)) |> LIF();" % (i, i - 1, i) for i in range(1, BIG + 1)]
    lines += ["  output h%d readout mean;" % BIG, "}", ""]
    with open(src, "w") as f:
        f.write("\n".join(lines))
    out = os.path.join(d, "big.nir")
    try:
        p = subprocess.run([U.snnc_path(), "export", src, "-o", out], capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        C.fail("export of %d layers: not done after 600 s (quadratic again?)" % BIG)
        return
    msg = "readout mean cannot be expressed in NIR"
    if p.returncode == 1 and msg in p.stderr and not os.path.exists(out):
        C.ok("export of %d layers (%d prev()): refused for its readout, no file" % (BIG, BIG))
    else:
        C.fail("export of %d layers: exit %d, %s" % (BIG, p.returncode, p.stderr[-300:]))


def main():
    with tempfile.TemporaryDirectory() as d:
        check_small(d)
        check_refused(d)
        check_chain(d)
    return C.done()


if __name__ == "__main__":
    sys.exit(main())
