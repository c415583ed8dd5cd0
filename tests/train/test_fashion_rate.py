"""Training through a rate encoder: examples/fashion_rate.snn (784-256-10,
LIF, T = 8, `encode rate`) trained for 1 epoch on Fashion-MNIST, then:
  - its test accuracy is at least 80% (measured: 82.2%, docs/training.md);
  - `snnc run --eval` of the weights it wrote gives the accuracy training
    reported, to the sample (evaluation draws its spikes with seed 0 in
    both, from the same generator).
Skipped, saying why, when Debian's dataset-fashion-mnist is not installed.

Usage: test_fashion_rate.py SOURCE_DIR (SNNC in the environment)
"""
import os
import sys
import tempfile

from snnc_ref import Checker, check_eval, skip, train_example

DATA = "/usr/share/datasets/fashion-mnist"
MIN_ACC = 0.80


def main():
    src = sys.argv[1]
    if not os.path.exists(os.path.join(DATA, "t10k-images-idx3-ubyte.gz")):
        skip("Fashion-MNIST is not installed (Debian package dataset-fashion-mnist)")
    model = os.path.join(src, "examples", "fashion_rate.snn")
    c = Checker()
    with tempfile.TemporaryDirectory() as d:
        run = os.path.join(d, "train")
        acc = train_example(c, model, run, 1, MIN_ACC, args=["--epochs", "1"])
        check_eval(c, model, os.path.join(run, "weights.safetensors"), acc)
    c.finish()


main()
