#!/usr/bin/env python3
"""Round trip: .snn -> `snnc export` -> .onnx -> snnc.

For every example (examples/*.snn), every golden model (tests/golden/*.snn)
and a few networks written here (recurrent edges into a conv and a
batchnorm, a recurrence through flatten and dense, reshapes, the
encodings), with
the weights of --init 1 and with random weights from a safetensors file:
1. `snnc export MODEL.snn -o A.onnx` writes a model onnx.checker accepts
   (full check, with shape inference);
2. importing it gives the same IR: `snnc compile A.onnx --emit-ir` equals
   `snnc compile MODEL.snn --emit-ir` except the source-line comments
   (neuron models the file defines itself come back through --neurons, a
   file holding the file's neuron blocks);
3. `snnc run A.onnx` and `snnc run MODEL.snn` (same weights) give bitwise
   identical outputs, and the same spikes and membranes (v) of every
   neuron layer at every step;
4. exporting the imported model gives A.onnx again, byte for byte (a fixed
   point).
A model whose layer sets an argument named `model` (the attribute that
names the model of an snn::Neuron node) is refused, with no file written.
"""
import glob
import os
import re

import numpy as np

from snnc_ref import Checker, RunError, require, write_safetensors
from onnx_util import HERE, snnc, tmpdir

onnx = require("onnx")

ROOT = os.path.join(HERE, "..", "..")
C = Checker()

EXTRA = {
    "conv_recurrence.snn": """
# prev() feeding a conv, a batchnorm and a dense through flatten
network ConvRec {
  timesteps 3;
  input x : [2, 6, 6] encode sequence;
  r = x |> conv2d(4, 3, padding = 1) |> add(prev(r) |> conv2d(4, 3, padding = 1) |> batchnorm())
        |> LIF(hard = false, surrogate = atan(3.0));
  p = prev(q) |> flatten |> dense(3, bias = false);
  q = r |> avgpool(2, padding = 1) |> flatten |> dense(3) |> add(p) |> LI(tau = 3.0);
  output q readout max;
}
""",
    "all_models.snn": """
# every built-in model with non-default arguments, each granularity
network AllModels {
  timesteps 5;
  input x : [3, 4, 4] encode direct;
  a = x |> conv2d(4, 3, padding = 1, groups = 1) |> IF(v_th = 0.8, v_reset = -0.1, hard = true);
  b = a |> maxpool(3, stride = 1, padding = 1) |> PLIF(tau0 = 3.0, granularity = channel, decay_input = false);
  c = b |> ARLIF(leak = 0.75, granularity = neuron, surrogate = sigmoid(4.0), detach_reset = true);
  d = c |> dropout(0.25) |> scale(1.5) |> DALIF(granularity = channel, hard = false, alpha0 = 0.7);
  e = d |> flatten |> dense(10) |> batchnorm(eps = 0.001) |> LIF(tau = 3.0, v_reset = 0.2, decay_input = false);
  f = e |> identity |> dense(4) |> LI(tau = 4.0);
  output f readout count;
}
""",
    "reshape.snn": """
# reshape into a conv of height 1, to 2 and to 1 dimensions (-> Reshape)
network Reshape {
  timesteps 3;
  input x : [2, 4, 6] encode sequence;
  a = x |> conv2d(3, 3, padding = 1) |> LIF() |> reshape([3, 1, 24]);
  b = a |> conv2d(4, [1, 3], stride = [1, 2]) |> reshape([4, -1]) |> LIF(tau = 3.0);
  c = b |> reshape(44) |> dense(5) |> LI();
  output c readout steps;
}
""",
    "latency.snn": """
# a latency-encoded input with its threshold (metadata snn.latency_threshold)
network Latency {
  timesteps 6;
  input x : [12] encode latency(threshold = 0.15);
  h = x |> dense(8) |> LIF();
  output h readout count;
}
""",
}


def neuron_blocks(text):
    """The neuron definitions of a .snn text (for --neurons)."""
    out = []
    for m in re.finditer(r"(?m)^neuron\b", text):
        depth, i = 0, text.index("{", m.start())
        while True:
            if text[i] == "{":
                depth += 1
            elif text[i] == "}":
                depth -= 1
                if depth == 0:
                    break
            i += 1
        out.append(text[m.start():i + 1])
    return "\n".join(out)


def strip_lines(ir):
    return re.sub(r"  # line \d+", "", ir)


def ir_info(ir):
    """(timesteps, encoding, input shape, [(weight name, shape)]) from --emit-ir."""
    head = ir.splitlines()[0]
    T = int(re.search(r"timesteps=(\d+)", head).group(1))
    enc = re.search(r"encode=(\w+)", head).group(1)
    shape = [int(d) for d in re.search(r"= input -> \[([\d,]+)\]", ir).group(1).split(",")]
    weights = [(m.group(1), [int(d) for d in m.group(2).split(",")])
               for m in re.finditer(r"(?m)^\s+weight (\S+) \[([\d,]*)\]", ir)]
    return T, enc, shape, weights


def random_weights(weights, rng):
    w = {}
    for name, shape in weights:
        if name.endswith("running_var"):
            w[name] = rng.uniform(0.5, 1.5, shape)
        else:
            w[name] = rng.standard_normal(shape) * (0.5 if len(shape) < 2 else 1.0 / np.sqrt(np.prod(shape[1:])))
    return {k: v.astype(np.float32) for k, v in w.items()}


def check(path, d, rng):
    name = os.path.basename(path)
    with open(path) as f:
        text = f.read()
    extra = []
    blocks = neuron_blocks(text)
    if blocks:
        nf = os.path.join(d, "neurons.snn")
        with open(nf, "w") as f:
            f.write(blocks)
        extra = ["--neurons", nf]
    ir = snnc(["compile", path, "--emit-ir"]).stdout
    T, enc, shape, weights = ir_info(ir)
    neurons = re.findall(r"(?m)^  %\d+ (\S+) = neuron ", ir)
    B = 2
    x = (3 * rng.standard_normal(([T] if enc == "sequence" else []) + [B] + shape)).astype(np.float32)
    xin = os.path.join(d, "x.npy")
    np.save(xin, x)
    wfile = os.path.join(d, "w.safetensors")
    write_safetensors(wfile, random_weights(weights, rng))
    for how, wargs in (("--init 1", ["--init", "1"]), ("random weights", ["--weights", wfile])):
        what = "%s (%s)" % (name, how)
        a = os.path.join(d, "a.onnx")
        try:
            snnc(["export", path, "-o", a] + wargs)
        except RunError as e:
            C.check(False, "%s: export: %s" % (what, e))
            continue
        m = onnx.load(a)
        try:
            onnx.checker.check_model(m, full_check=True)
            C.check(True, what)
        except Exception as e:  # onnx raises its own ValidationError
            C.check(False, "%s: onnx.checker: %s" % (what, e))
        got_ir = snnc(["compile", a, "--emit-ir"] + extra, check=False)
        C.check(got_ir.returncode == 0, "%s: import: %s" % (what, got_ir.stderr.strip()))
        if got_ir.returncode == 0:
            C.check(strip_lines(got_ir.stdout) == strip_lines(ir),
                    "%s: the imported IR differs:\n%s\n--- from .snn:\n%s"
                    % (what, strip_lines(got_ir.stdout)[:3000], strip_lines(ir)[:3000]))
        try:
            runs = []
            for src, args in ((path, wargs), (a, extra)):
                k = len(runs)
                rec = []
                for ln in neurons:
                    rec += ["--record", "%s=%s" % (ln, os.path.join(d, "s%d_%s.npy" % (k, ln))),
                            "--record", "%s.v=%s" % (ln, os.path.join(d, "v%d_%s.npy" % (k, ln)))]
                snnc(["run", src, "--input", xin, "--output", os.path.join(d, "y%d.npy" % k)] + args + rec)
                runs.append({f: np.load(os.path.join(d, "%s%d%s.npy" % (f[0], k, f[1:])))
                             for f in ["y"] + ["s_" + ln for ln in neurons] + ["v_" + ln for ln in neurons]})
            for f, r1 in runs[0].items():
                r2 = runs[1][f]
                C.check(r1.shape == r2.shape and r1.tobytes() == r2.tobytes(),
                        "%s: %s differs (shapes %s, %s; largest difference %s)"
                        % (what, f, r1.shape, r2.shape, np.abs(r1 - r2).max() if r1.shape == r2.shape else "-"))
                C.check(np.isfinite(r1).all(), "%s: %s not finite" % (what, f))
            if not np.abs(runs[0]["y"]).max() > 0:
                print("  note: %s: the output is all zeros (no spike reaches it)" % what)
        except RunError as e:
            C.check(False, "%s: run: %s" % (what, e))
        b = os.path.join(d, "b.onnx")
        try:
            snnc(["export", a, "-o", b] + extra)
            with open(a, "rb") as fa, open(b, "rb") as fb:
                C.check(fa.read() == fb.read(), "%s: export of the imported model differs from the first export"
                        % what)
        except RunError as e:
            C.check(False, "%s: export of the imported model: %s" % (what, e))
    print("%-22s T=%d %-8s input %s, %d tensors: checked" % (name, T, enc, shape, len(weights)))


def main():
    rng = np.random.default_rng(3)
    models = sorted(glob.glob(os.path.join(ROOT, "examples", "*.snn"))) + \
        sorted(glob.glob(os.path.join(ROOT, "tests", "golden", "*.snn")))
    C.check(len(models) >= 7, "found %d models" % len(models))
    with tmpdir() as d:
        for name, text in sorted(EXTRA.items()):
            p = os.path.join(d, name)
            with open(p, "w") as f:
                f.write(text)
            models.append(p)
        for path in models:
            with tmpdir() as wd:
                check(path, wd, rng)
        check_model_argument(d)
    C.finish()


MODEL_ARG = """
neuron Gain(model = 1.0, tau = 2.0) {
  state v = 0.0;
  v = v + (x * model - v) / tau;
  emit spike(v - 1.0, sigmoid(4.0));
}
network Clash {
  timesteps 2;
  input x : [4] encode direct;
  y = x |> dense(3) |> Gain(model = 2.0);
  output y readout count;
}
"""


def check_model_argument(d):
    src = os.path.join(d, "clash.snn")
    out = os.path.join(d, "clash.onnx")
    with open(src, "w") as f:
        f.write(MODEL_ARG)
    p = snnc(["export", src, "--init", "1", "-o", out], check=False)
    C.check(p.returncode == 1 and "argument 'model' of model 'Gain' cannot be exported" in p.stderr
            and not os.path.exists(out),
            "an argument named 'model' is refused by export (exit %d: %s)" % (p.returncode, p.stderr.strip()))


if __name__ == "__main__":
    main()
