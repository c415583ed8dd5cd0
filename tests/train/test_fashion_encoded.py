"""Training through an input encoder: an example (examples/fashion_rate.snn
or examples/fashion_latency.snn: 784-256-10, LIF, T = 8, `encode rate` or
`encode latency`) trained for 1 epoch on Fashion-MNIST, then:
  - its test accuracy is at least MIN_ACC (measured: rate 82.2%, latency
    81.0%; docs/training.md, 9.6);
  - `snnc run --eval` of the weights it wrote gives the accuracy training
    reported, to the sample (rate: evaluation draws its spikes with seed 0
    in both, from the same generator; latency has no randomness).
Skipped, saying why, when Debian's dataset-fashion-mnist is not installed.

Usage: test_fashion_encoded.py SOURCE_DIR EXAMPLE MIN_ACC (SNNC in the environment)
"""
import os
import sys
import tempfile

from snnc_ref import Checker, check_eval, skip, train_example

DATA = "/usr/share/datasets/fashion-mnist"


def main():
    src, example, min_acc = sys.argv[1], sys.argv[2], float(sys.argv[3])
    if not os.path.exists(os.path.join(DATA, "t10k-images-idx3-ubyte.gz")):
        skip("Fashion-MNIST is not installed (Debian package dataset-fashion-mnist)")
    model = os.path.join(src, "examples", example)
    c = Checker()
    with tempfile.TemporaryDirectory() as d:
        run = os.path.join(d, "train")
        acc = train_example(c, model, run, 1, min_acc, args=["--epochs", "1"])
        check_eval(c, model, os.path.join(run, "weights.safetensors"), acc)
    c.finish()


main()
