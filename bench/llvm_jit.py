#!/usr/bin/env python3
"""The llvm target's JIT against the targets built with cc, as `snnc run` sees them.

A benchmark program (run by hand, not a test; see bench/README.md). For
each example network of --models (fashion_mlp, recurrent, fashion_conv
by default; arlif_mlp and dalif_conv call exp in their neuron programs,
for --math fast), it times the whole
`snnc run MODEL --init 1 --input X --output Y --threads 1` with each target:

- turnaround: a batch of 1, so that the run is almost all building the code
  (llvm: IR, default<O2> and ORC's code generation, in process; c, avx512,
  avx2: the generated C written and built by `cc -O3 -march=native` into a
  shared object, then dlopen);
- forward speed: a batch of N (--samples) against the batch of 1, each
  the median of --rounds runs; samples/s = (N - 1) / (t(N) - t(1)), the
  extra samples over the extra time, so that building the code cancels
  out (reading and writing the .npy files of the extra samples stays in).

The targets are run in turn within each round, so that a burst of other
load hits one round of every target. Each run is measured twice: wall
time, and CPU time (user + system of snnc and its children, cc included),
which other load on a shared machine disturbs much less. It prints the CPU
(from /proc/cpuinfo), the medians, min and max, and the ratios to
--target c.

Usage: bench/llvm_jit.py [--snnc PATH] [--rounds 5] [--samples 1024]
                         [--targets llvm,c,avx512] [--models fashion_mlp,recurrent,fashion_conv]
                         [--math exact|fast]
"""
import argparse
import os
import statistics
import sys
import tempfile

import numpy as np

from benchutil import REPO, timed

MODELS = {
    "fashion_mlp": ("examples/fashion_mlp.snn", [1, 28, 28], False, 8),
    "recurrent": ("examples/recurrent.snn", [2, 16, 16], True, 20),
    "fashion_conv": ("examples/fashion_conv.snn", [1, 28, 28], False, 4),
    "arlif_mlp": ("examples/arlif_mlp.snn", [1, 28, 28], False, 6),
    "dalif_conv": ("examples/dalif_conv.snn", [1, 28, 28], False, 4),
}


def cpu_name():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--snnc", default=str(REPO / "build" / "compiler" / "snnc"))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--samples", type=int, default=1024)
    ap.add_argument("--targets", default="llvm,c,avx512")
    ap.add_argument("--models", default="fashion_mlp,recurrent,fashion_conv")
    ap.add_argument("--math", default=None, help="passed to every target (default: each target's own)")
    a = ap.parse_args()
    targets = a.targets.split(",")
    print("CPU: %s, %d cores; snnc %s; %d rounds, batch %d for the speed" %
          (cpu_name(), os.cpu_count() or 0, a.snnc, a.rounds, a.samples))
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as d:
        for name in a.models.split(","):
            model, shape, seq, T = MODELS[name]
            inputs = {}
            for n in (1, a.samples):
                x = rng.random(([T, n] if seq else [n]) + shape).astype(np.float32) * 2.0
                inputs[n] = os.path.join(d, "%s-%d.npy" % (name, n))
                np.save(inputs[n], x)
            times = {(t, n): ([], []) for t in targets for n in inputs}
            for _ in range(a.rounds):
                for t in targets:
                    for n, path in inputs.items():
                        wall, cpu = timed([a.snnc, "run", str(REPO / model), "--init", "1", "--input", path,
                                           "--output", os.path.join(d, "y.npy"), "--target", t, "--threads", "1"] +
                                          (["--math", a.math] if a.math else []))
                        times[(t, n)][0].append(wall)
                        times[(t, n)][1].append(cpu)
            print("\n%s (T = %d)" % (name, T))
            for kind, col in (("wall", 0), ("CPU", 1)):
                med = {k: statistics.median(v[col]) for k, v in times.items()}

                def speed(t):
                    return (a.samples - 1) / max(1e-9, med[(t, a.samples)] - med[(t, 1)])

                print("  %s time: %-8s %-30s %s" % (kind, "target", "turnaround, batch 1 (s)", "forward speed (samples/s)"))
                for t in targets:
                    one = times[(t, 1)][col]
                    ratio = "" if t == "c" or "c" not in targets else "  (turnaround x%.2f, speed x%.2f of c)" % (
                        med[(t, 1)] / med[("c", 1)], speed(t) / speed("c"))
                    print("  %s       %-8s %6.3f (min %.3f, max %.3f) %10.0f%s" %
                          (" " * len(kind), t, med[(t, 1)], min(one), max(one), speed(t), ratio))
    return 0


if __name__ == "__main__":
    sys.exit(main())
