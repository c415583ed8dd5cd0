#!/usr/bin/env python3
"""Data-parallel training speed on one machine: processes against threads.

A benchmark program (run by hand, not a test; see bench/README.md). It
trains examples/fashion_mlp.snn (784-512 LIF, 512-10 LI, T = 8, batch 128,
Adam) on Fashion-MNIST for a fixed number of optimizer steps in four
configurations that use one or two cores:

  1x1  one process, one thread         snnc train ... --threads 1
  1x2  one process, two threads        snnc train ... --threads 2
  2x1  two ranks, one thread each      mpirun -np 2 snnc train ... --threads 1
  2x1y the same, with --mca mpi_yield_when_idle 1: a rank that waits for
       the other (in the sum of the gradients) yields its core instead of
       polling, which matters when other work shares the cores

and prints the training samples per second of each (median over rounds,
with min and max) and its ratio to 1x1.

What is timed is snnc's own time of an epoch's training loop (shuffle,
batches, forward, loss, backward, the sum of the gradients over the ranks,
optimizer), which it writes to metrics.csv: --train-limit STEPS*128 makes
an epoch exactly STEPS optimizer steps, --epochs 2, epoch 1 is the warm-up
and epoch 2 the timed one. Under mpirun rank 0 times the loop, which ends
with the step every rank takes together, so the time is the job's. The
evaluation after each epoch (--test-limit 128 samples) and the compilation
before epoch 1 are outside the timing.

Every configuration runs once per round, in a fresh process, rounds
interleaved, so that a burst of other load hits one round of each rather
than all of one configuration. The load average is printed per round.

Usage: bench/mpi_train.py [--snnc PATH] [--data DIR] [--steps 50]
       [--rounds 3] [--mpirun mpirun] [--omp-wait-policy passive]
       [--configs 1x1,1x2,2x1,2x1y] [--json FILE]

OMP_WAIT_POLICY is PASSIVE unless told otherwise: on a machine shared with
other work, OpenMP threads that spin while they wait take the cores that
the thread they wait for needs (train_throughput.py does the same).

Needs snnc built with MPI (cmake -DSNNC_MPI=ON; docs/training.md,
"Data-parallel training"), Open MPI's mpirun, and Fashion-MNIST (Debian's
dataset-fashion-mnist, or --data DIR with the four IDX files).
"""
import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

from benchutil import REPO, find_snnc

# Debian's dataset-fashion-mnist installs the four gzipped IDX files here.
DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
BATCH = 128  # examples/fashion_mlp.snn's train block

CONFIGS = [  # (name, ranks, threads per rank, mpirun's options)
    ("1x1", 1, 1, []),
    ("1x2", 1, 2, []),
    ("2x1", 2, 1, []),
    # a rank that waits for the others yields its core instead of polling
    ("2x1y", 2, 1, ["--mca", "mpi_yield_when_idle", "1"]),
]


def mpi_env(wait_policy):
    env = dict(os.environ)
    if wait_policy != "default":
        env["OMP_WAIT_POLICY"] = wait_policy.upper()
    if os.geteuid() == 0:  # Open MPI refuses root unless told
        env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
    env.pop("OMP_NUM_THREADS", None)  # --threads decides
    return env


def run_one(args, snnc, ranks, threads, opts, out):
    cmd = [snnc, "train", str(REPO / "examples" / "fashion_mlp.snn"), "-o", out, "--data", args.data,
           "--train-limit", str(args.steps * BATCH), "--test-limit", str(BATCH), "--epochs", "2",
           "--threads", str(threads)]
    if ranks > 1:
        # one core per rank (Open MPI's default binding), more ranks than
        # cores allowed
        cmd = [args.mpirun, "--oversubscribe", "-np", str(ranks)] + opts + cmd
    p = subprocess.run(cmd, capture_output=True, text=True, env=mpi_env(args.omp_wait_policy))
    if p.returncode != 0:
        sys.exit("failed (%d): %s\n%s" % (p.returncode, " ".join(cmd), p.stdout + p.stderr))
    with open(os.path.join(out, "metrics.csv")) as f:
        rows = list(csv.DictReader(f))
    return float(rows[-1]["samples_per_s"]), float(rows[-1]["seconds"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--snnc")
    ap.add_argument("--data", default=DEBIAN_FASHION_MNIST)
    ap.add_argument("--steps", type=int, default=50, help="optimizer steps of the timed epoch")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--mpirun", default="mpirun")
    ap.add_argument("--omp-wait-policy", default="passive", choices=("passive", "active", "default"),
                    help="OMP_WAIT_POLICY of every run (default: passive; 'default' leaves it unset)")
    ap.add_argument("--configs", default="1x1,1x2,2x1,2x1y",
                    help="which of 1x1, 1x2, 2x1, 2x1y (the first is the base of the ratios)")
    ap.add_argument("--json")
    args = ap.parse_args()
    snnc = find_snnc(args.snnc)
    if not shutil.which(args.mpirun):
        sys.exit("%s not found (Debian: openmpi-bin)" % args.mpirun)
    if not os.path.isdir(args.data):
        sys.exit("no Fashion-MNIST at %s (Debian: dataset-fashion-mnist; or --data DIR)" % args.data)
    print("snnc: %s" % snnc)
    print("cores: %d; examples/fashion_mlp.snn, batch %d, %d timed steps per run, %d rounds, OMP_WAIT_POLICY %s" %
          (os.cpu_count() or 0, BATCH, args.steps, args.rounds, args.omp_wait_policy))
    configs = [c for c in CONFIGS if c[0] in args.configs.split(",")]
    got = {c[0]: [] for c in configs}
    with tempfile.TemporaryDirectory() as d:
        for r in range(args.rounds):
            print("round %d: load average %.2f %.2f %.2f" % ((r + 1,) + os.getloadavg()), flush=True)
            for name, ranks, threads, opts in configs:
                out = os.path.join(d, "%s-%d" % (name, r))
                sps, sec = run_one(args, snnc, ranks, threads, opts, out)
                got[name].append(sps)
                print("  %s: %.0f samples/s (%.2f s)" % (name, sps, sec), flush=True)
    base = statistics.median(got[configs[0][0]])
    print()
    print("%-5s %-52s %8s %8s %8s %7s" % ("", "configuration", "median", "min", "max", "/ " + configs[0][0]))
    for name, ranks, threads, opts in configs:
        v = got[name]
        what = "%d process%s x %d thread%s %s" % (ranks, "es" if ranks > 1 else "", threads,
                                                 "s" if threads > 1 else "", " ".join(opts))
        print("%-5s %-52s %8.0f %8.0f %8.0f %7.2f" % (name, what, statistics.median(v), min(v), max(v),
                                                    statistics.median(v) / base))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"steps": args.steps, "batch": BATCH, "samples_per_s": got}, f, indent=1)


if __name__ == "__main__":
    main()
