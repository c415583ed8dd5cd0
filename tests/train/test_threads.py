"""Training gives the same bits on any number of threads.

Two networks are trained for 200 optimizer steps on Fashion-MNIST with
snnc train, once with --threads 1 and once with --threads 2, and the
weights, the optimizer state in the checkpoint and the metrics (losses,
accuracies, spike rates) must be byte for byte the same:
  - the MLP example (its train block: Adam, cosine schedule);
  - a small convolutional network with batchnorm (statistics over the
    batch), dropout, max and average pooling, PLIF, a recurrent layer
    (prev) and a TET loss, with Adam and gradient clipping, so that every
    kernel that threads share, and the runtime's reductions, are on the
    path; its convolutions have one input channel (the first), groups
    (the second) and neither (the third, whose input gradient is needed),
    so that both ways a convolution splits its work among threads (the
    samples and channels of a whole batch, or each chunk's product) run.
Every sum is split among threads in a way that does not depend on their
number (docs/targets.md), which is what this checks: a kernel whose
result depended on the thread count would differ here.

Skipped, saying why, when Debian's dataset-fashion-mnist is not installed.

Usage: test_threads.py SOURCE_DIR (SNNC in the environment)
"""
import csv
import json
import os
import struct
import subprocess
import sys
import tempfile

from snnc_ref import Checker, skip, snnc_path

DATA = "/usr/share/datasets/fashion-mnist"

CONV = """
network SmallConv {
  timesteps 3;
  input img : [1, 28, 28] encode direct;
  c1 = img |> conv2d(4, 3, padding = 1) |> batchnorm() |> LIF() |> maxpool(2);
  c2 = c1 |> conv2d(8, 3, padding = 1, groups = 2) |> PLIF() |> conv2d(8, 3, padding = 1) |> LIF() |> avgpool(2);
  h = c2 |> flatten |> dropout(0.2) |> dense(32) |> add(prev(h) |> dense(32, bias = false)) |> LIF();
  out = h |> dense(10) |> LI();
  output out readout steps;
}

train SmallConv {
  data fashion_mnist(mean = 0.2860, std = 0.3530);
  loss tet;
  optimizer adam(lr = 0.002);
  clip 1.0;
  epochs 1; batch 32; seed 3;
}
"""


def train(snnc, model, out, threads, limit):
    p = subprocess.run([snnc, "train", model, "-o", out, "--threads", str(threads), "--epochs", "1",
                        "--train-limit", str(limit), "--test-limit", "500"], capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("snnc train --threads %d failed:\n%s" % (threads, p.stdout + p.stderr))
    with open(os.path.join(out, "metrics.csv")) as f:
        rows = list(csv.DictReader(f))
    for r in rows: # the time taken differs, of course
        r.pop("seconds", None)
        r.pop("samples_per_s", None)
        r.pop("rate", None)
    blobs = {}
    for name in ("weights.safetensors", "checkpoint.safetensors"):
        with open(os.path.join(out, name), "rb") as f:
            n = struct.unpack("<Q", f.read(8))[0]
            header = json.loads(f.read(n))
            data = f.read()
        # the tensors; the checkpoint's metadata holds the epochs' times
        for k, v in header.items():
            if k != "__metadata__":
                blobs["%s: %s" % (name, k)] = data[v["data_offsets"][0]:v["data_offsets"][1]]
    return rows, blobs


def main():
    src = sys.argv[1]
    snnc = snnc_path()
    if not os.path.exists(os.path.join(DATA, "t10k-images-idx3-ubyte.gz")):
        skip("Fashion-MNIST is not installed (Debian package dataset-fashion-mnist)")
    c = Checker()
    with tempfile.TemporaryDirectory() as d:
        conv = os.path.join(d, "conv.snn")
        with open(conv, "w") as f:
            f.write(CONV)
        for name, model, batch in (("MLP", os.path.join(src, "examples", "fashion_mlp.snn"), 128),
                                   ("conv", conv, 32)):
            runs = [train(snnc, model, os.path.join(d, "%s-%d" % (name, t)), t, 200 * batch) for t in (1, 2)]
            (m1, b1), (m2, b2) = runs
            print("%s: 200 steps; metrics at 1 thread: %s" % (name, m1))
            c.check(m1 == m2, "%s: the metrics differ between 1 and 2 threads: %s / %s" % (name, m1, m2))
            c.check(sorted(b1) == sorted(b2) and len(b1) > 0, "%s: the same tensors are saved" % name)
            for f in b1:
                c.check(b1[f] == b2.get(f), "%s: %s differs between 1 and 2 threads" % (name, f))
    c.finish()


if __name__ == "__main__":
    main()
