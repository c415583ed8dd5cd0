#!/usr/bin/env python3
"""Training on event lists: scripts/make_fashion_events.py makes the
synthetic event dataset of Fashion-MNIST (6000 training and 1000 test
samples, seed 1), then examples/fashion_events.snn (2x28x28 event counts in
T = 6 bins, 1568-256-10, LIF) trains for its 1 epoch, and:
  - its test accuracy is at least 72% (measured: 77.5%, docs/training.md);
  - `snnc run --eval` of the weights it wrote gives the accuracy training
    reported, to the sample (both bin the same events the same way).
Skipped, saying why, when Debian's dataset-fashion-mnist is not installed.

Usage: test_fashion_events.py SOURCE_DIR (SNNC in the environment)
"""
import os
import subprocess
import sys
import tempfile

from snnc_ref import Checker, check_eval, skip, train_example

DATA = "/usr/share/datasets/fashion-mnist"
MIN_ACC = 0.72


def main():
    src = sys.argv[1]
    if not os.path.exists(os.path.join(DATA, "t10k-images-idx3-ubyte.gz")):
        skip("Fashion-MNIST is not installed (Debian package dataset-fashion-mnist)")
    model = os.path.join(src, "examples", "fashion_events.snn")
    c = Checker()
    with tempfile.TemporaryDirectory() as d:
        p = subprocess.run([sys.executable, os.path.join(src, "scripts", "make_fashion_events.py"),
                            "fashion_events", "--train", "6000", "--test", "1000", "--seed", "1"],
                           cwd=d, capture_output=True, text=True)
        print(p.stdout)
        if p.returncode != 0:
            print(p.stderr)
            c.check(False, "make_fashion_events.py failed (exit %d)" % p.returncode)
            c.finish()
        run = os.path.join(d, "train")
        acc = train_example(c, model, run, 1, MIN_ACC, cwd=d)
        check_eval(c, model, os.path.join(run, "weights.safetensors"), acc, cwd=d)
    c.finish()


main()
