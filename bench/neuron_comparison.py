"""Compares the hidden neuron model of one network on Fashion-MNIST: the
784-512-10 MLP of examples/fashion_mlp.snn (T = 8, LI readout, mean
membrane), trained by snnc with the same train block (Adam 1e-3, cosine,
batch 128, seed 1, the same number of epochs) with LIF, PLIF, AR-LIF and
DA-LIF hidden layers. Prints a Markdown table: test accuracy after the last
epoch, the mean spike rate of the hidden layer on the test set, and the
training time (sum of the epochs' seconds, evaluation excluded).

Usage: python3 bench/neuron_comparison.py [--snnc PATH] [--epochs N]
       [--train-limit N]   (a benchmark program: run by hand)
"""
import argparse
import csv
import os
import subprocess
import sys
import tempfile

MODELS = [
    ("LIF", "LIF(tau = 2.0)"),
    ("PLIF", "PLIF(tau0 = 2.0)"),
    ("AR-LIF", "ARLIF()"),
    ("DA-LIF", "DALIF()"),
]

NET = """network Compare {
  timesteps 8;
  input  img : [1, 28, 28] encode direct;
  h1  = img |> flatten |> dense(512) |> %s;
  out = h1  |> dense(10)  |> LI(tau = 2.0);
  output out readout mean;
}
train Compare {
  data fashion_mnist(mean = 0.2860, std = 0.3530);
  loss cross_entropy;
  optimizer adam(lr = 1e-3);
  schedule cosine;
  epochs %d; batch 128; seed 1;
}
"""


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--snnc", default=os.path.join(here, "..", "build", "compiler", "snnc"))
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--train-limit", type=int, default=0)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for name, layer in MODELS:
            src = os.path.join(d, "compare.snn")
            with open(src, "w") as f:
                f.write(NET % (layer, args.epochs))
            out = os.path.join(d, name)
            cmd = [args.snnc, "train", src, "-o", out]
            if args.train_limit:
                cmd += ["--train-limit", str(args.train_limit)]
            print("==", " ".join(cmd[1:3]), "with", layer, flush=True)
            p = subprocess.run(cmd, capture_output=True, text=True)
            if p.returncode != 0:
                sys.exit("snnc train failed for %s:\n%s" % (name, p.stderr))
            print(p.stdout.strip().splitlines()[-2], flush=True)
            with open(os.path.join(out, "metrics.csv")) as f:
                m = list(csv.DictReader(f))
            rows.append((name, layer, float(m[-1]["test_acc"]), float(m[-1]["spike_rate"]),
                         sum(float(r["seconds"]) for r in m)))
    print()
    print("| hidden neuron | layer | test accuracy | spike rate | training time |")
    print("|---|---|---|---|---|")
    for name, layer, acc, rate, secs in rows:
        print("| %s | `%s` | %.2f%% | %.3f | %.0f s |" % (name, layer, 100 * acc, rate, secs))


if __name__ == "__main__":
    main()
