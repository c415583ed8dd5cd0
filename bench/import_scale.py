#!/usr/bin/env python3
"""How the ONNX import and the front end scale with the graph's size.

A benchmark program (run by hand, not a test; see bench/README.md). It
writes ONNX chains of n cheap nodes between a Gemm and an snn::LIF
(x [N, 4] -> Gemm 4->8 -> n nodes -> LIF), for n = 12.5k, 25k, 50k and
100k by default, and times on each:

  info     `snnc info CHAIN.onnx --timesteps 4`: the import, the parser,
           sema, the passes and the statistics of every layer
  emit-ir  `snnc compile CHAIN.onnx --timesteps 4 -o DIR --emit-ir`: the
           import, the front end and the passes (the IR is printed to
           /dev/null; no code is generated)
  compile  (with --compile) `snnc compile CHAIN.onnx --timesteps 4 -o DIR`:
           the whole compiler, C back end included

It prints the seconds of each run (the best of --rounds) and the ratio of
each time to the time at the previous n: about 2 when the cost is linear
in n (the sizes double), about 4 when it is quadratic. A run slower than
--timeout seconds is stopped and printed as such; the larger sizes of that
command are then skipped.

Chains (--kinds, comma-separated):
  identity  n Identity nodes (the case of the issue: 100k took 88 s)
  relu      n Relu nodes, each a stateless ReLU layer
  spiking   n Relu nodes with --spiking 'Relu=LIF(tau = 2.0)': n neuron
            layers, each with its state
  mixed     a cycle of Identity, Relu, Mul by a scalar Constant (a
            Constant node each), residual Add and Dropout; every third
            node has no name (its name comes from its output)
  samename  n Identity nodes that all have the same name (snnc names them
            block, block_2, block_3, ...)
  dense     n Gemm nodes 8->8, each with its weight and bias initializers
            (n dense layers, 2n weight tensors to bind)

The models are written with Debian's python3-onnx (onnx.helper) into a
temporary folder, or into --keep DIR to profile them afterwards (perf,
valgrind --tool=callgrind; a model already there is used again). The snnc binary is --snnc PATH, else $SNNC,
else the first build*/compiler/snnc of this tree, else snnc on the PATH.

Usage: /usr/bin/python3 bench/import_scale.py [--kinds identity,mixed]
       [--sizes 12500,25000,50000,100000] [--rounds 1] [--compile]
       [--timeout 300] [--keep DIR] [--snnc PATH]
"""
import argparse
import os
import sys
import tempfile

from benchutil import find_snnc, timed

KINDS = ("identity", "relu", "spiking", "mixed", "samename", "dense")
SPIKING = "Relu=LIF(tau = 2.0)"


def chain_model(n, kind):
    """The ONNX model of a chain of n nodes of the given kind."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("Gemm", ["x", "fc.weight", "fc.bias"], ["h0"], name="fc", transB=1)]
    w = (np.arange(32, dtype=np.float32).reshape(8, 4) - 16) / 32
    inits = [numpy_helper.from_array(w, "fc.weight"), numpy_helper.from_array(np.full(8, 0.5, np.float32), "fc.bias")]
    prev, before = "h0", "h0"
    for i in range(n):
        out = "h%d" % (i + 1)
        name = "block" if kind == "samename" else "n%d" % i
        if kind in ("identity", "samename"):
            nodes.append(helper.make_node("Identity", [prev], [out], name=name))
        elif kind == "dense":
            w8, b8 = "fc%d.weight" % i, "fc%d.bias" % i
            nodes.append(helper.make_node("Gemm", [prev, w8, b8], [out], name=name, transB=1))
            inits += [numpy_helper.from_array(np.eye(8, dtype=np.float32), w8),
                      numpy_helper.from_array(np.zeros(8, np.float32), b8)]
        elif kind in ("relu", "spiking"):
            nodes.append(helper.make_node("Relu", [prev], [out], name=name))
        else:
            if i % 3 == 2:
                name = ""
            step = i % 5
            if step == 0:
                nodes.append(helper.make_node("Identity", [prev], [out], name=name))
            elif step == 1:
                nodes.append(helper.make_node("Relu", [prev], [out], name=name))
            elif step == 2:
                c = "c%d" % i
                nodes.append(helper.make_node("Constant", [], [c], name=name + "_c" if name else "",
                                              value=numpy_helper.from_array(np.array(0.5, np.float32))))
                nodes.append(helper.make_node("Mul", [prev, c], [out], name=name))
            elif step == 3:
                nodes.append(helper.make_node("Add", [prev, before], [out], name=name))
            else:
                nodes.append(helper.make_node("Dropout", [prev], [out], name=name))
        before, prev = prev, out
    nodes.append(helper.make_node("LIF", [prev], ["y"], name="lif", domain="snn", tau=2.0))
    g = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 8])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("snn", 1)])


def write_chain(path, n, kind):
    import onnx
    onnx.save(chain_model(n, kind), path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--snnc", help="the snnc binary (default: $SNNC, else build*/compiler/snnc, else PATH)")
    ap.add_argument("--kinds", default="identity,mixed", help="chains to time: " + ", ".join(KINDS))
    ap.add_argument("--sizes", default="12500,25000,50000,100000", help="numbers of nodes of the chain")
    ap.add_argument("--rounds", type=int, default=1, help="runs per measurement (the best is printed)")
    ap.add_argument("--compile", action="store_true", help="also time the whole compile (C back end)")
    ap.add_argument("--timeout", type=float, default=300, help="seconds after which a run is stopped")
    ap.add_argument("--keep", help="write the models into this folder (kept) instead of a temporary one")
    a = ap.parse_args()
    snnc = find_snnc(a.snnc)
    kinds = [k for k in a.kinds.split(",") if k]
    for k in kinds:
        if k not in KINDS:
            raise SystemExit("unknown kind %s (%s)" % (k, ", ".join(KINDS)))
    sizes = [int(float(s)) for s in a.sizes.split(",") if s]
    try:
        import onnx  # noqa: F401
    except ImportError as e:
        raise SystemExit("needs the onnx package (Debian's python3-onnx): %s" % e)

    tmp = None if a.keep else tempfile.TemporaryDirectory(prefix="snnc-import-scale-")
    work = a.keep or tmp.name
    os.makedirs(work, exist_ok=True)
    out = os.path.join(work, "out")
    os.makedirs(out, exist_ok=True)
    print("snnc: %s" % snnc)
    print("cpus: %d, load average: %s" % (os.cpu_count(), " ".join("%.2f" % v for v in os.getloadavg())))
    print("seconds: the best of %d run%s; ratio: to the previous n (about 2 when linear)"
          % (a.rounds, "" if a.rounds == 1 else "s"))
    commands = [("info", ["info"]), ("emit-ir", ["compile", "-o", out, "--emit-ir"])]
    if a.compile:
        commands.append(("compile", ["compile", "-o", out]))
    try:
        for kind in kinds:
            print()
            print("%-9s %-8s %9s %9s %7s" % ("chain", "command", "n", "seconds", "ratio"))
            models = {}
            for n in sizes:
                path = os.path.join(work, "%s_%d.onnx" % (kind, n))
                if not os.path.exists(path):
                    write_chain(path, n, kind)
                models[n] = path
            for what, args in commands:
                last = None
                for n in sizes:
                    cmd = [snnc, args[0], models[n], "--timesteps", "4"] + args[1:]
                    if kind == "spiking":
                        cmd += ["--spiking", SPIKING]
                    best = None
                    for _ in range(a.rounds):
                        t = timed(cmd, a.timeout)
                        if t is None:
                            break
                        t = t[0]
                        best = t if best is None else min(best, t)
                    if best is None:
                        print("%-9s %-8s %9d %9s" % (kind, what, n, "> %g" % a.timeout), flush=True)
                        break
                    ratio = "%7.2f" % (best / last) if last else "%7s" % "-"
                    print("%-9s %-8s %9d %9.3f %s" % (kind, what, n, best, ratio), flush=True)
                    last = best
    finally:
        if tmp:
            tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
