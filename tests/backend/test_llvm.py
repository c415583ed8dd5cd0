#!/usr/bin/env python3
"""The llvm target computes what the portable C target computes.

For the networks the llvm target covers (every example, the golden MLP
and convolutional models, the neuron parameters model, a network of
prev() chains and every readout, a neuron model written here that uses
every operation of the language, dense layers whose sizes fill no whole
tile of the llvm target's products, and a convolutional network written here
with strides, asymmetric padding, groups, channels that fill no whole
vector, padded pools and batchnorm), with weights from --init 1 (batchnorm's
four tensors drawn at random instead, through --weights, so that it does
more than the identity) and a random input large enough to make the
layers spike (intensities in [0, 2) for the rate and latency encoders, whose
spikes at every step must be the C target's), `snnc run --target llvm`
(JIT-compiled in process) is compared with `snnc run --target c --math
exact` (built with cc):

- step by step (`--record`: <net>_step and <net>_probe): every neuron
  layer's output and every state at every step, and an encoder's spikes;
  spikes (the outputs of spiking layers and encoders) must be identical, states and other values within 1e-5
  relative to the largest magnitude of the recording (at least 1);
- forward, all steps at once and in chunks of 2 (`--chunk 2`): the output
  within the same tolerance;
- the same with `--math fast` for both targets, for the neuron model that
  uses every operation and the DA-LIF conv example.
The expectation is the other target's output, never a stored copy.

It also checks that `snnc compile --target llvm` writes the same .ll twice
(deterministic) with the C target's header, and <net>_weights.c (its
load_weights and init_weights, which test_llvm_cross.py runs). Training through the llvm
target is test_llvm_train.py's.

Skipped, saying why, when this snnc was built without LLVM.

Usage: test_llvm.py SNNC ROOT
"""
import os
import re
import subprocess
import sys
import tempfile

import numpy as np

from snnc_ref import Checker

SKIP = 77
TOL = 1e-5

MIX = """
neuron Mix(granularity = layer) {
  param w = 0.5 per granularity;
  state v = 0.0;
  state a = 0.1;
  h = v + (x - v) / 2.0 + select(x > 3.5, 0.25, 0.0);
  g = tanh(h) * sigmoid(w) + log(1.0 + abs(x)) - sqrt(a + 1.0) + pow(a + 1.0, 0.5) / exp(a);
  q = max(min(g, 4.0), -4.0);
  s = spike(q - 1.0, sigmoid(4.0));
  o = (x >= 3.9 && a < 0.5) || !(x != x) && (h <= 100.0) && (x == x);
  v = h * (1 - s);
  a = a * 0.9 + s * 0.1 + o * 0.0 - (h < -50.0);
  emit s;
}

network MixNet {
  timesteps 6;
  input x : [3, 5] encode sequence;
  h = x |> flatten |> dense(21) |> scale(3.0) |> Mix(granularity = channel);
  k = h |> dense(13) |> Mix(granularity = neuron);
  r = k |> dense(21) |> add(h) |> dropout(0.3) |> identity |> LIF(tau = 1.5);
  out = r |> dense(4) |> LI(tau = 2.0);
  output out readout %s;
}
"""

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

# Dense layers of sizes that fill no whole tile of the llvm target's
# products (4 rows by 16 columns, blocks of 64 outputs): floats into 37
# outputs (a partial block of 5 after two tiles), spikes of 37 and 70
# neurons (rows of bits that straddle 32-bit words) into 70 and 21.
TILES = """
network Tiles {
  timesteps 5;
  input x : [23] encode sequence;
  a = x |> dense(37) |> LIF(tau = 1.5);
  b = a |> dense(70) |> LIF(tau = 1.5);
  out = b |> dense(21) |> LI(tau = 2.0);
  output out readout %s;
}
"""

CONVS = """
network Convs {
  timesteps 5;
  input x : [3, 11, 9] encode sequence;
  a = x |> conv2d(12, [3, 2], stride = [2, 1], padding = [1, 2], groups = 3) |> batchnorm() |> LIF(tau = 1.5);
  b = a |> conv2d(40, 3, padding = 1) |> maxpool(3, stride = 2, padding = 1) |> LIF(tau = 1.5);
  c = b |> conv2d(6, 1, bias = false) |> avgpool([2, 3], stride = [1, 2], padding = [1, 1]) |> batchnorm()
        |> LIF(tau = 1.5);
  out = c |> flatten |> dense(4) |> LI(tau = 2.0);
  output out readout %s;
}
"""

# Models also compared under --math fast, both targets then using
# runtime/snnrt_math.inc's exp, log and tanh (the llvm target's on vectors,
# llmath.c): the same operations, so the same tolerance.
FAST = ("mix-steps.snn", "dalif_conv.snn")


def save_safetensors(path, tensors):
    """A safetensors file of float32 tensors (name -> array)."""
    import json
    header, blobs, off = {}, [], 0
    for name, a in tensors.items():
        b = np.ascontiguousarray(a, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(len(h).to_bytes(8, "little") + h + b"".join(blobs))


def batchnorm_weights(ir, rng):
    """Random values for every batchnorm's weight, bias, running mean and variance."""
    t = {}
    for m in re.finditer(r"^  %\d+ (\w+) = batchnorm [^\n]*-> \[(\d+)", ir, re.M):
        name, c = m.group(1), int(m.group(2))
        t[name + ".weight"] = rng.uniform(0.5, 1.5, c)
        t[name + ".bias"] = rng.uniform(-0.5, 0.5, c)
        t[name + ".running_mean"] = rng.uniform(-0.5, 0.5, c)
        t[name + ".running_var"] = rng.uniform(0.5, 2.0, c)
    return t


def sh(cmd, ok=True):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if ok and p.returncode != 0:
        print("FAIL: %s: %s" % (" ".join(cmd), p.stderr.strip()))
        sys.exit(1)
    return p


def rel_err(got, ref):
    scale = max(1.0, float(np.max(np.abs(ref))) if ref.size else 1.0)
    return float(np.max(np.abs(got.astype(np.float64) - ref))) / scale if ref.size else 0.0


def main():
    snnc, root = sys.argv[1], sys.argv[2]
    listing = sh([snnc, "--list-targets"]).stdout
    line = [l for l in listing.splitlines() if l.split()[:1] == ["llvm"]]
    if not line:
        print("FAIL: --list-targets does not list llvm")
        return 1
    if "unavailable" in line[0]:
        print("SKIPPED: this snnc was built without LLVM (%s)" % line[0].strip())
        return SKIP
    rng = np.random.default_rng(11)
    checker = Checker()
    check = checker.check

    with tempfile.TemporaryDirectory() as d:
        models = [os.path.join(root, "examples", m) for m in ("fashion_mlp.snn", "arlif_mlp.snn", "recurrent.snn",
                                                                "fashion_conv.snn", "dalif_conv.snn",
                                                                "fashion_rate.snn", "fashion_latency.snn")]
        models += [os.path.join(root, "tests", "golden", m) for m in ("mlp.snn", "neuron_params.snn", "convrec.snn")]
        for name, text, how in [("delays-%s" % h, DELAYS, h) for h in ("mean", "max", "last")] + \
                               [("mix-%s" % h, MIX, h) for h in ("steps", "count", "rate")] + \
                               [("convs-%s" % h, CONVS, h) for h in ("steps", "count")] + \
                               [("tiles-steps", TILES, "steps")]:
            path = os.path.join(d, name + ".snn")
            with open(path, "w") as f:
                f.write(text % how)
            models.append(path)
        for model in models:
            name = os.path.basename(model)
            ir = sh([snnc, "compile", model, "--emit-ir"]).stdout
            T = int(re.search(r"timesteps=(\d+)", ir).group(1))
            seq = "encode=sequence" in ir
            shape = [int(v) for v in re.search(r"^  %0 \w+ = input -> \[([0-9,]+)\]", ir, re.M).group(1).split(",")]
            B = 3
            # a spike encoder: half the intensities in [0, 1), drawn or timed
            # spikes, half at 1 and above, which spike at once (rate: always)
            scale = 2.0 if re.search(r"encode=(rate|latency)", ir) else 4.0
            x = (scale * rng.random([T, B] + shape if seq else [B] + shape)).astype(np.float32)
            xin = os.path.join(d, "x.npy")
            np.save(xin, x)
            bn = batchnorm_weights(ir, rng)
            wfile = []
            if bn:
                wfile = ["--weights", os.path.join(d, "bn.safetensors")]
                save_safetensors(wfile[1], bn)
            # every neuron layer's output and states
            recs = []
            for m in re.finditer(r"^  %\d+ (\w+) = neuron %\d+ model=\w+[^\n]*\n((?:    [^\n]*\n)*)", ir, re.M):
                layer, body = m.group(1), m.group(2)
                spiking = re.search(r"^    emit %(\d+)", body, re.M)
                emitted = spiking and re.search(r"^    %%%s = spike " % spiking.group(1), body, re.M)
                recs.append((layer, "spikes" if emitted else "value"))
                for s in re.finditer(r"^    state (\w+) =", body, re.M):
                    recs.append(("%s.%s" % (layer, s.group(1)), "value"))
            if re.search(r"encode=(rate|latency)", ir):  # the encoder's spikes too
                recs.insert(0, (re.search(r"^  %0 (\w+) = input", ir, re.M).group(1), "spikes"))
            for math in ("exact", "fast") if name in FAST else ("exact",):
                results = {}
                for target in ("c", "llvm"):
                    args = [snnc, "run", model, "--init", "1", "--input", xin, "--target", target] + wfile
                    if target == "c" or math == "fast":
                        args += ["--math", math]
                    files = [os.path.join(d, "%s-%d.npy" % (target, k)) for k in range(len(recs))]
                    y = os.path.join(d, "%s-y.npy" % target)
                    sh(args + ["--output", y] +
                       sum([["--record", "%s=%s" % (r[0], f)] for r, f in zip(recs, files)], []))
                    results[target] = [np.load(f) for f in files]
                    fwd = os.path.join(d, "%s-fwd.npy" % target)
                    sh(args + ["--output", fwd])
                    chunked = os.path.join(d, "%s-chunk.npy" % target)
                    sh(args + ["--output", chunked, "--chunk", "2"])
                    results[target] += [np.load(y), np.load(fwd), np.load(chunked)]
                nspikes = 0
                for k, (spec, kind) in enumerate(recs + [("output (step)", "value"), ("output (forward)", "value"),
                                                         ("output (--chunk 2)", "value")]):
                    got, ref = results["llvm"][k], results["c"][k]
                    if got.shape != ref.shape:
                        check(False, "%s: %s: shape %s, the C target's %s" % (name, spec, got.shape, ref.shape))
                        continue
                    if kind == "spikes":
                        nspikes += int(ref.sum())
                        check(np.array_equal(got, ref), "%s, --math %s: %s: %d spikes differ from the C target's" %
                              (name, math, spec, int(np.sum(got != ref))))
                    else:
                        err = rel_err(got, ref)
                        check(err <= TOL, "%s, --math %s: %s: relative error %g against the C target (tolerance %g)" %
                              (name, math, spec, err, TOL))
                check(nspikes > 0, "%s: no layer spiked: the test would not see spikes" % name)
                print("%s, --math %s: %d records over %d steps (%d spikes), forward and --chunk 2 agree with "
                      "--target c" % (name, math, len(recs), T, nspikes))

        mlp = os.path.join(root, "tests", "golden", "mlp.snn")
        # compile: deterministic text, the C target's header
        outs = []
        for k in range(2):
            o = os.path.join(d, "ll%d" % k)
            sh([snnc, "compile", mlp, "--target", "llvm", "-o", o])
            outs.append(o)
        a, b = [open(os.path.join(o, "goldenmlp.ll")).read() for o in outs]
        check(a == b, "compile --target llvm: two runs wrote different .ll files")
        check(re.search(r"define void @goldenmlp_forward\(ptr %workspace, i32 %batch, ptr %input, ptr %output\)", a)
              is not None, "compile --target llvm: no goldenmlp_forward of the API's signature")
        check('!{!"h1 = neuron LIF h1_dense -> [8]: mlp.snn line 5"}' in a,
              "compile --target llvm: no source note for node h1")
        sh([snnc, "compile", mlp, "--target", "c", "-o", os.path.join(d, "c")])
        hc = open(os.path.join(d, "c", "goldenmlp.h")).read()
        hl = open(os.path.join(outs[0], "goldenmlp.h")).read()
        check(hc == hl, "compile --target llvm: the header differs from the C target's")
        check(os.path.exists(os.path.join(outs[0], "goldenmlp_weights.c")),
              "compile --target llvm: no goldenmlp_weights.c (load_weights and init_weights)")
    return checker.status()


if __name__ == "__main__":
    sys.exit(main())
