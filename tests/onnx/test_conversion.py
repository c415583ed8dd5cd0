#!/usr/bin/env python3
"""ANNs exported by plain torch.onnx.export (no snn nodes, no metadata),
read by snnc.

Part `spiking` (ANN-to-SNN conversion): `snnc run ANN.onnx --timesteps T
--spiking 'Relu=LIF(tau = 2.0)'` against the same conversion done in
PyTorch: a copy of the ANN with each nn.ReLU replaced by snnc_onnx.LIF(tau
= 2.0), stepped T times on the same (direct) input. Spikes identical
(flips within round-off of the threshold accepted and printed, as in
tests/net/test_network.py), membranes and the output within 1e-5. For
opsets 13, 15 and 17, a conv net (Conv, Relu, AvgPool -> Pad +
AveragePool, MaxPool, batchnorm folded into the Conv, Flatten, Gemm) and
an MLP (Gemm, MatMul without bias, a residual Add, Mul by a constant,
Dropout dropped by the exporter).

Part `ann`: the same ANNs without --spiking (Relu stays a stateless ReLU
layer) give, at every step, what onnxruntime gives on the same input,
within 1e-5 relative, and `snnc export` of the imported ANN is a model
onnxruntime runs with the same results; onnxruntime is a test peer
(scripts/install-test-peers.sh): without it this part is skipped.
"""
import copy
import os
import sys

import numpy as np

from snnc_ref import Checker, skip
from onnx_util import Reference, close, flip_walk, layers_of, run_onnx, snnc, so, tmpdir, torch

nn = torch.nn
T, B = 8, 4
OPSETS = (13, 15, 17)
C = Checker()


class ConvANN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(2, 8, 3, padding=1), nn.ReLU(),
            nn.AvgPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 16, 3, stride=2, padding=1), nn.ReLU(),
            nn.AvgPool2d(3, stride=1, padding=1))
        self.fc1 = nn.Linear(16, 32)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(32, 5)

    def forward(self, x):
        return self.fc2(self.relu(self.fc1(torch.flatten(self.features(x), 1))))


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(36, 24)
        self.r1 = nn.ReLU()
        self.drop = nn.Dropout(0.5)
        self.fc2 = nn.Linear(24, 24, bias=False)
        self.r2 = nn.ReLU()
        self.fc3 = nn.Linear(24, 6)

    def forward(self, x):
        h = self.drop(self.r1(self.fc1(x.flatten(1))))
        h = self.r2(self.fc2(h)) + h
        return self.fc3(h) * 0.5


def randomize(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * 2.0 / fan_in ** 0.5)
                if m.bias is not None:
                    m.bias.copy_(0.2 + 0.2 * torch.randn(m.bias.shape, generator=g))
            elif isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(0.6 + 0.8 * torch.rand(c, generator=g))
                m.bias.copy_(0.3 + 0.2 * torch.randn(c, generator=g))
                m.running_mean.copy_(0.3 * torch.randn(c, generator=g))
                m.running_var.copy_(0.4 + 1.6 * torch.rand(c, generator=g))
    return model.eval()


def converted(ann):
    """A copy of the ANN with every nn.ReLU replaced by snnc_onnx.LIF(tau = 2.0)."""
    snn = copy.deepcopy(ann)
    lifs = []
    # in the order of named_modules (the order of definition, here the forward order)
    relus = [name for name, m in snn.named_modules() if isinstance(m, nn.ReLU)]
    for name in relus:
        parent = snn.get_submodule(name.rpartition(".")[0]) if "." in name else snn
        lif = so.LIF(tau=2.0)
        setattr(parent, name.rpartition(".")[2], lif)
        lifs.append(lif)
    return snn.eval(), lifs


def models(rng):
    conv = randomize(ConvANN(), 11)
    with torch.no_grad():  # spikes are sparser than ReLU outputs: larger gains deeper in
        conv.features[3].weight.mul_(2.0)
        conv.features[7].weight.mul_(4.0)
        conv.fc1.weight.mul_(15.0)
    yield "conv", conv, (rng.standard_normal((B, 2, 8, 8)) * 1.5).astype(np.float32)
    yield "mlp", randomize(MLP(), 12), (rng.standard_normal((B, 4, 9)) * 1.5).astype(np.float32)


def export_plain(model, x, path, opset):
    torch.onnx.export(model, (torch.from_numpy(x),), path, opset_version=opset, input_names=["input"],
                      output_names=["output"], dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})


def part_spiking():
    rng = np.random.default_rng(5)
    for name, ann, x in models(rng):
        for opset in OPSETS:
            what = "%s, opset %d" % (name, opset)
            print("== %s: --spiking 'Relu=LIF(tau = 2.0)'" % what)
            snn, lifs = converted(ann)
            with tmpdir() as d:
                path = os.path.join(d, "ann.onnx")
                export_plain(ann, x, path, opset)
                extra = ["--timesteps", str(T), "--spiking", "Relu=LIF(tau = 2.0)"]
                layers = [ln for ln, op in layers_of(path, extra) if op == "LIF"]
                C.check(len(layers) == len(lifs), "%s: %d LIF layers in snnc, %d ReLUs in the ANN"
                        % (what, len(layers), len(lifs)))
                if len(layers) != len(lifs):
                    continue
                records = layers + ["%s.v" % ln for ln in layers]
                y, got = run_onnx(path, x, records, extra)
            ref = Reference(snn, list(zip(layers, lifs)), [("%s.v" % ln, m, "v") for ln, m in zip(layers, lifs)])
            want_y, want, flips, err = flip_walk(ref, x, T, False, got, layers)
            C.check(err is None, "%s: %s" % (what, err))
            for ln in layers:
                rate = float(got[ln].mean())
                C.check(0.01 <= rate <= 0.99, "%s: %s fires at rate %.3f" % (what, ln, rate))
                C.same(got[ln], want[ln], "%s: spikes of %s" % (what, ln))
                close(C, got[ln + ".v"], want[ln + ".v"], "%s: %s.v" % (what, ln))
            close(C, y, want_y, "%s: output" % what)


def part_ann():
    try:
        import onnxruntime as ort
    except ImportError as e:
        skip("onnxruntime is not installed (%s); scripts/install-test-peers.sh installs it into .peers/" % e)
    print("onnxruntime %s" % ort.__version__)
    rng = np.random.default_rng(6)
    for name, ann, x in models(rng):
        for opset in OPSETS:
            what = "%s, opset %d" % (name, opset)
            print("== %s: plain ANN against onnxruntime" % what)
            with tmpdir() as d:
                path = os.path.join(d, "ann.onnx")
                export_plain(ann, x, path, opset)
                y, _ = run_onnx(path, x, extra=["--timesteps", "3"])
                sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
                want = sess.run(None, {"input": x})[0]
                # snnc's export of the imported ANN is plain ONNX again: onnxruntime runs it
                re = os.path.join(d, "re.onnx")
                snnc(["export", path, "--timesteps", "1", "-o", re])
                again = ort.InferenceSession(re, providers=["CPUExecutionProvider"])
                close(C, again.run(None, {again.get_inputs()[0].name: x})[0], want,
                      "%s: onnxruntime on snnc's export of the ANN" % what)
            with torch.no_grad():
                want_torch = ann(torch.from_numpy(x)).numpy()
            C.check(y.shape == (3,) + want.shape, "%s: output shape %s, expected %s"
                    % (what, y.shape, (3,) + want.shape))
            for t in range(min(3, y.shape[0])):
                close(C, y[t], want, "%s: step %d against onnxruntime" % (what, t))
            close(C, want, want_torch, "%s: onnxruntime against PyTorch" % what)


def main():
    part = sys.argv[1] if len(sys.argv) > 1 else "spiking"
    if part == "spiking":
        part_spiking()
    elif part == "ann":
        part_ann()
    else:
        sys.exit("usage: test_conversion.py spiking|ann")
    C.finish()


if __name__ == "__main__":
    main()
