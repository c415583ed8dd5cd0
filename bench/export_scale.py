#!/usr/bin/env python3
"""How `snnc export --format nir` scales with the number of prev() edges.

A benchmark program (run by hand, not a test; see bench/README.md). It
writes networks of the language that are chains of L layers, each with
two prev() edges, and times `snnc export CHAIN.snn --init 1 -o CHAIN.nir`
(the front end, the passes and the NIR export, the file written):

  h_i = h_{i-1} |> dense(4) |> add(prev(h_i) |> dense(4, bias = false))
                |> add(prev(h_{i-1}) |> dense(4, bias = false)) |> LIF();

prev(h_i) closes a cycle through h_i alone (written as a plain recurrent
edge), prev(h_{i-1}) does not (a Delay node). Each layer is 8 nodes of the
IR (dense, two prev, two dense, two add, LIF), so --sizes counts about 8 L
nodes; the defaults are 1k, 10k and 100k nodes.

It prints the wall and CPU seconds of each export (user + system, the best
of --rounds each), the CPU seconds per thousand nodes and the ratio of each
CPU time to the one at the previous size: about 10 when the cost is linear
(the sizes grow tenfold), about 100 when quadratic. On a shared machine
read the CPU times: the wall times follow the load. A run slower than --timeout seconds is stopped and printed
as such; the larger sizes are then skipped. The snnc binary is --snnc
PATH, else $SNNC, else the first build*/compiler/snnc of this tree, else
snnc on the PATH.

Usage: /usr/bin/python3 bench/export_scale.py [--sizes 1000,10000,100000]
       [--rounds 1] [--timeout 600] [--keep DIR] [--snnc PATH]
"""
import argparse
import os
import sys
import tempfile

from benchutil import find_snnc, timed

NODES_PER_LAYER = 8


def chain(layers):
    """The text of a chain of `layers` recurrent layers."""
    out = ["network Chain {", "  timesteps 4;", "  input x : [4] encode sequence;",
           "  h0 = x |> dense(4) |> LIF();"]
    for i in range(1, layers + 1):
        out.append("  h%d = h%d |> dense(4) |> add(prev(h%d) |> dense(4, bias = false))"
                   " |> add(prev(h%d) |> dense(4, bias = false)) |> LIF();" % (i, i - 1, i, i - 1))
    out += ["  output h%d readout steps;" % layers, "}", ""]
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--snnc", help="the snnc binary (default: $SNNC, else build*/compiler/snnc, else PATH)")
    ap.add_argument("--sizes", default="1000,10000,100000", help="about how many IR nodes each chain has")
    ap.add_argument("--rounds", type=int, default=1, help="runs per measurement (the best is printed)")
    ap.add_argument("--timeout", type=float, default=600, help="seconds after which a run is stopped")
    ap.add_argument("--keep", help="write the networks into this folder (kept) instead of a temporary one")
    a = ap.parse_args()
    snnc = find_snnc(a.snnc)
    sizes = [int(float(s)) for s in a.sizes.split(",") if s]
    tmp = None if a.keep else tempfile.TemporaryDirectory(prefix="snnc-export-scale-")
    work = a.keep or tmp.name
    os.makedirs(work, exist_ok=True)
    print("snnc: %s" % snnc)
    print("cpus: %d, load average: %s" % (os.cpu_count(), " ".join("%.2f" % v for v in os.getloadavg())))
    print("seconds: the best of %d run%s; ratio: to the previous size" % (a.rounds, "" if a.rounds == 1 else "s"))
    print()
    print("%8s %8s %8s %9s %9s %10s %7s" % ("layers", "nodes", "prev()", "wall s", "CPU s", "CPU/1k nodes",
                                           "ratio"))
    last = None
    try:
        for n in sizes:
            layers = max(1, n // NODES_PER_LAYER)
            src = os.path.join(work, "chain_%d.snn" % n)
            if not os.path.exists(src):
                with open(src, "w") as f:
                    f.write(chain(layers))
            cmd = [snnc, "export", src, "--init", "1", "-o", os.path.join(work, "chain_%d.nir" % n)]
            best = None
            for _ in range(a.rounds):
                t = timed(cmd, a.timeout)
                if t is None:
                    break
                best = t if best is None else (min(best[0], t[0]), min(best[1], t[1]))
            nodes = 1 + 2 + NODES_PER_LAYER * layers
            if best is None:
                print("%8d %8d %8d %9s" % (layers, nodes, 2 * layers, "> %g" % a.timeout), flush=True)
                break
            ratio = "%7.2f" % (best[1] / last) if last else "%7s" % "-"
            print("%8d %8d %8d %9.3f %9.3f %10.4f %s" % (layers, nodes, 2 * layers, best[0], best[1],
                                                       1000 * best[1] / nodes, ratio), flush=True)
            last = best[1]
    finally:
        if tmp:
            tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
