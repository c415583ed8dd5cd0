#!/usr/bin/env python3
"""The three ways generated code runs a network give the same results.

For every example network, the golden models and three networks written
here (a delay whose source runs in an earlier layer, prev(prev()), a
sequence input and every readout; products that two threads split by
rows), with weights from --init 1 and a random input:

- step by step: `snnc run --record OUT` records the output layer at every
  step from `<net>_step`; the readout of those steps is computed here in
  float32, in the order the generated readout uses (sum over t ascending,
  then / T; last; max), and must equal the output of `<net>_forward`, the
  whole sequence layer-major, bit for bit;
- forward in chunks: `--chunk 1` (time-major, O(1) memory in T) and
  `--chunk 2` give the same bits as all T steps at once;
- threads: `--threads 1` and `--threads 2` give the same bits;
- training forward: the outputs of every step of `snnc grad` (the training
  code, layer-major over all T) equal the recorded steps bit for bit, for
  networks without dropout and batchnorm (which behave differently in
  training mode); the gradients at 1 and at 2 threads are the same bits.

Expectations come from the definitions of the readouts and from the other
schedules, never from a stored copy of snnc's output.
"""
import glob
import os
import re
import struct
import subprocess
import sys
import json
import tempfile
import zlib

import numpy as np

from snnc_ref import Checker, snnc_path

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

DELAYS = """
network Delays {
  timesteps 7;
  input x : [6] encode sequence;
  a = x |> dense(8) |> LIF(tau = 1.5);
  p1 = prev(a);
  p2 = prev(p1);
  b = p1 |> dense(8) |> add(p2 |> dense(8, bias = false)) |> add(prev(b) |> dense(8, bias = false))
         |> scale(6.0) |> LIF(tau = 1.5);
  out = b |> dense(3) |> LI();
  output out readout %s;
}
"""

DIRECT = """
network Direct {
  timesteps 5;
  input img : [2, 6, 6] encode direct;
  c = img |> conv2d(3, 3, padding = 1) |> LIF(tau = 1.5) |> avgpool(2);
  h = c |> flatten |> dense(12) |> scale(4.0) |> PLIF();
  out = h |> dense(4) |> scale(6.0) |> LIF(tau = 1.5);
  output out readout %s;
}
"""

# Products of 200 rows (T x B), which two threads split by rows, each
# packing every panel into its own slice of the packed block.
WIDE = """
network Wide {
  timesteps 100;
  input x : [40] encode sequence;
  h = x |> dense(96) |> LIF(tau = 2.0);
  out = h |> dense(64) |> scale(4.0) |> LIF(tau = 2.0);
  output out readout mean;
}
"""


def sh(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("%s failed:\n%s" % (" ".join(cmd), p.stdout + p.stderr))
    return p.stdout


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        h = json.loads(f.read(n))
        data = f.read()
    return {k: data[v["data_offsets"][0]:v["data_offsets"][1]] for k, v in h.items() if k != "__metadata__"}


def readout(steps, how):
    T = steps.shape[0]
    if how == "steps":
        return steps
    if how == "last":
        return steps[T - 1]
    acc = steps[0].copy()
    for t in range(1, T):
        if how == "max":
            y = steps[t]
            acc = np.where((y > acc) | np.isnan(y), y, acc).astype(np.float32)
        else:
            acc = (acc + steps[t]).astype(np.float32)
    if how in ("mean", "rate"):
        acc = (acc / np.float32(T)).astype(np.float32)
    return acc


def main():
    snnc = snnc_path()
    models = sorted(glob.glob(os.path.join(ROOT, "examples", "*.snn")))
    models += [os.path.join(ROOT, "tests", "golden", m) for m in ("mlp.snn", "convrec.snn", "neuron_params.snn")]
    checker = Checker()
    check = checker.check

    with tempfile.TemporaryDirectory() as d:
        texts = []
        for how in ("mean", "count", "last", "max", "steps"):
            texts.append(("delays-%s" % how, DELAYS % how))
        for how in ("rate", "max"):
            texts.append(("direct-%s" % how, DIRECT % how))
        texts.append(("wide", WIDE))
        for name, text in texts:
            path = os.path.join(d, name + ".snn")
            with open(path, "w") as f:
                f.write(text)
            models.append(path)
        for model in models:
            name = os.path.basename(model)
            ir = sh([snnc, "compile", model, "--emit-ir"])
            T = int(re.search(r"timesteps=(\d+)", ir).group(1))
            seq = "encode=sequence" in ir
            how = re.search(r"^  output %\d+ readout (\w+)", ir, re.M).group(1)
            out = re.search(r"^  output %(\d+)", ir, re.M).group(1)
            layer = re.search(r"^  %%%s (\w+) =" % out, ir, re.M).group(1)
            shape = [int(v) for v in re.search(r"^  %0 \w+ = input -> \[([0-9,]+)\]", ir, re.M).group(1).split(",")]
            B = 2
            # inputs large enough that every spiking layer fires now and then,
            # drawn from the model's own name: an example added does not
            # change another model's input
            rng = np.random.default_rng(zlib.crc32(name.encode()))
            x = (4.0 * rng.random([T, B] + shape if seq else [B] + shape, dtype=np.float32)).astype(np.float32)
            xin = os.path.join(d, "x.npy")
            np.save(xin, x)
            y = os.path.join(d, "y.npy")
            rec = os.path.join(d, "steps.npy")
            base = [snnc, "run", model, "--init", "1", "--input", xin]
            spiking = [m.group(1) for m in re.finditer(r"^  %\d+ (\w+) = neuron %\d+ model=(?!LI\b)\w+", ir, re.M)]
            recs = [(l, os.path.join(d, "spikes-%s.npy" % l)) for l in spiking if name.startswith(("delays", "direct"))]
            sh(base + ["--output", y, "--record", "%s=%s" % (layer, rec)] + sum([["--record", "%s=%s" % r] for r in recs], []))
            fwd, steps = np.load(y), np.load(rec)
            for l, f in recs: # the networks written here must exercise spikes and silence
                rate = float(np.load(f).mean())
                check(0.0 < rate < 1.0, "%s: layer %s fires at rate %g: the test would not see spikes" % (name, l, rate))
            check(np.array_equal(fwd, readout(steps, how), equal_nan=True),
                  "%s: forward (layer-major) != the readout of step() by step" % name)
            for opt in (["--chunk", "1"], ["--chunk", "2"], ["--threads", "1"], ["--threads", "2"]):
                sh(base + ["--output", y] + opt)
                check(np.array_equal(np.load(y), fwd, equal_nan=True), "%s: forward with %s differs" % (name, " ".join(opt)))
            if "weight" not in ir:
                continue
            dy = os.path.join(d, "dy.npy")
            np.save(dy, np.ones([T, B] + list(steps.shape[2:]), dtype=np.float32))
            grads = []
            for threads in ("1", "2"):
                g = os.path.join(d, "g%s.safetensors" % threads)
                ys = os.path.join(d, "ys.npy")
                sh([snnc, "grad", model, "--init", "1", "--input", xin, "--grad-output", dy, "--output", g,
                    "--output-steps", ys, "--threads", threads])
                grads.append(read_safetensors(g))
                training_mode = "= dropout" in ir or "= batchnorm" in ir
                if not training_mode:
                    check(np.array_equal(np.load(ys), steps, equal_nan=True),
                          "%s: the training forward (%s threads) != step()" % (name, threads))
            check(grads[0] == grads[1], "%s: gradients differ between 1 and 2 threads" % name)
            print("%s: %d steps, readout %s: forward, step, chunks, threads%s agree" %
                  (name, T, how, "" if training_mode else ", training forward"))
    return checker.status()


if __name__ == "__main__":
    sys.exit(main())
