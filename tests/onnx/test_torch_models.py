#!/usr/bin/env python3
"""PyTorch models exported with scripts/snnc_onnx.py, run by snnc.

Each model is built from torch.nn layers and the helper's neurons, given
random weights (and random batchnorm statistics and neuron parameters),
exported with snnc_onnx.export(), and run by `snnc run MODEL.onnx` over T
steps with every spiking layer and every neuron state recorded. PyTorch
runs the same modules step by step; what must agree:
- spikes: identical, except where a potential lies within float round-off
  of the threshold (PyTorch's BLAS and snnc's loops sum in other orders,
  and PyTorch folds an eval batchnorm into the Conv before it at export
  while the PyTorch model computes both): such a flip is accepted and
  printed, and the reference then takes snnc's spike (the walk of
  tests/net/test_network.py);
- membranes, other states and the output: within 1e-5 relative, plus
  1e-5 times the tensor's scale (max(1, its largest value)) for values
  near zero, which carry the round-off of the sums that made them.

Models: an MLP (LIF, PLIF, LI; direct input); a conv net with batchnorm
(folded into the Conv by the exporter, and a BatchNorm1d that stays),
average and max pooling, dropout and IF/LIF variants (sequence input); one
per seed neuron: AR-LIF and DA-LIF with per-channel parameters (and
per-layer and per-neuron ones); a recurrent network (snnc_onnx.Prev ->
snn::Prev); Reshapes by constant shapes (-> reshape, and flatten); a neuron model of the test's own (snn::Neuron with --neurons).

Then, on the MLP: `snnc train` of the imported model starts from its
weights (a run with a negligible learning rate ends where it started; a
normal short run learns), and `snnc grad` gives PyTorch's gradients of
every parameter and of the input.
"""
import os
import struct

import numpy as np

from snnc_ref import Checker, RunError, read_safetensors, rel_err, spike_rate_ok
from onnx_util import Reference, close, flip_walk, layers_of, run_onnx, snnc, so, tmpdir, torch

nn = torch.nn
T, B = 8, 4
C = Checker()


def randomize(model, rng, gain=1.0):
    """Random weights (gain scales dense and conv weights), batchnorm
    statistics and neuron parameters; returns the model in eval mode."""
    g = torch.Generator().manual_seed(int(rng.integers(1 << 30)))

    def n(shape, s, m=0.0):
        return m + s * torch.randn(shape, generator=g)

    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, (nn.Linear, nn.Conv2d)):
                fan_in = mod.weight[0].numel()
                mod.weight.copy_(n(mod.weight.shape, gain * 1.7 / fan_in ** 0.5))
                if mod.bias is not None:
                    mod.bias.copy_(n(mod.bias.shape, 0.2, 0.2))
            elif isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
                c = mod.num_features
                mod.weight.copy_(0.6 + 0.8 * torch.rand(c, generator=g))
                mod.bias.copy_(n(c, 0.2, 0.3))
                mod.running_mean.copy_(n(c, 0.3))
                mod.running_var.copy_(0.4 + 1.6 * torch.rand(c, generator=g))
            elif isinstance(mod, so.PLIF):
                mod.w.copy_(n(mod.w.shape, 0.3, -0.5))
            elif isinstance(mod, so.ARLIF):
                mod.a.copy_(n(mod.a.shape, 0.5))
                mod.c.copy_(n(mod.c.shape, 0.5, 1.0))
            elif isinstance(mod, so.DALIF):
                mod.ws.copy_(n(mod.ws.shape, 0.5, 0.5))
                mod.wt.copy_(n(mod.wt.shape, 0.5))
    return model.eval()


def neurons_of(model):
    """[(snnc layer name, module)]: export() names each neuron node after
    its module's qualified name, dots made underscores."""
    return [(name.replace(".", "_"), m) for name, m in model.named_modules()
            if isinstance(m, so.SpikingNeuron)]


def check_model(name, model, x, seq, timesteps=T, readout="steps", neurons_file=None, spiking_min=0.02):
    print("== %s" % name)
    neurons = neurons_of(model)
    states = [("%s.%s" % (ln, s), m, s) for ln, m in neurons for s in m.states]
    spiking = [ln for ln, m in neurons if m.op != "LI"]
    with tmpdir() as d:
        path = os.path.join(d, "model.onnx")
        x1 = torch.from_numpy(np.ascontiguousarray(x[0] if seq else x))
        so.export(model, x1, path, timesteps=timesteps, encoding="sequence" if seq else "direct",
                  readout=readout)
        extra = ["--neurons", neurons_file] if neurons_file else []
        rows = dict(layers_of(path, extra))
        for ln, m in neurons:
            C.check(rows.get(ln) == m.model, "%s: layer %s is %s in snnc, expected %s"
                    % (name, ln, rows.get(ln), m.model))
        try:
            y, got = run_onnx(path, x, records=spiking + [r for r, _, _ in states], extra=extra)
        except RunError as e:
            C.check(False, "%s: %s" % (name, e))
            return None
    ref = Reference(model, neurons, states)
    want_y, want, flips, err = flip_walk(ref, x, timesteps, seq, got, spiking)
    C.check(err is None, "%s: %s" % (name, err))
    if flips:
        print("  %d spike flip(s) within round-off of the threshold accepted" % flips)
    for ln in spiking:
        spike_rate_ok(C, got[ln], "%s: %s" % (name, ln), lo=spiking_min)
        C.same(got[ln], want[ln], "%s: spikes of %s" % (name, ln))
    for r, _, _ in states:
        close(C, got[r], want[r], "%s: %s" % (name, r))
    close(C, y, want_y, "%s: output" % name)
    return y


# ---- the models ----

class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.flat = nn.Flatten()
        self.fc1 = nn.Linear(48, 32)
        self.lif1 = so.LIF(tau=2.0)
        self.fc2 = nn.Linear(32, 24)
        self.plif = so.PLIF(tau0=3.0, surrogate="atan(2.0)")
        self.fc3 = nn.Linear(24, 10)
        self.out = so.LI(tau=2.0)

    def forward(self, x):
        return self.out(self.fc3(self.plif(self.fc2(self.lif1(self.fc1(self.flat(x)))))))


class ConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(2, 8, 3, padding=1), nn.BatchNorm2d(8),
            so.LIF(tau=2.0, decay_input=False, hard=False),
            nn.AvgPool2d(2),
            nn.Conv2d(8, 12, 3, padding=1, bias=False), nn.BatchNorm2d(12),
            so.IF(v_th=0.8, v_reset=-0.1),
            nn.MaxPool2d(2),
            nn.Flatten(), nn.Dropout(0.3))
        self.fc = nn.Linear(48, 16)
        self.bn = nn.BatchNorm1d(16)
        self.lif = so.LIF(tau=3.0, v_th=0.6, v_reset=-0.2)
        self.head = nn.Linear(16, 5)
        self.out = so.LI(tau=3.0)

    def forward(self, x):
        return self.out(self.head(self.lif(self.bn(self.fc(self.features(x))))))


class ARNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 6, 3, padding=1)
        self.ar1 = so.ARLIF(granularity="channel", shape=6)
        self.pool = nn.MaxPool2d(2)
        self.flat = nn.Flatten()
        self.fc = nn.Linear(96, 20)
        self.ar2 = so.ARLIF(leak=0.75, v_th=1.2, surrogate="sigmoid(4.0)")
        self.fc2 = nn.Linear(20, 12)
        self.ar3 = so.ARLIF(granularity="neuron", shape=12, detach_reset=True)
        self.head = nn.Linear(12, 4)
        self.out = so.LI()

    def forward(self, x):
        h = self.flat(self.pool(self.ar1(self.conv(x))))
        return self.out(self.head(self.ar3(self.fc2(self.ar2(self.fc(h))))))


class DANet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 6, 3, padding=1)
        self.bn = nn.BatchNorm2d(6)
        self.da1 = so.DALIF(granularity="channel", shape=6)
        self.pool = nn.AvgPool2d(2)
        self.flat = nn.Flatten()
        self.fc = nn.Linear(96, 16)
        self.da2 = so.DALIF(granularity="neuron", shape=16, hard=False, v_th=0.7, alpha0=0.7, beta0=0.3)
        self.fc2 = nn.Linear(16, 8)
        self.da3 = so.DALIF(surrogate="triangle(1.0)")
        self.head = nn.Linear(8, 3)
        self.out = so.LI(tau=4.0)

    def forward(self, x):
        h = self.flat(self.pool(self.da1(self.bn(self.conv(x)))))
        return self.out(self.head(self.da3(self.fc2(self.da2(self.fc(h))))))


class ReshapeNet(nn.Module):
    """A conv's [4, 8, 8] reshaped to [4, 1, 64] for a conv of height 1 (a
    Reshape by a constant shape -> reshape), then [6, 1, 31] to [6, 31]
    for LIF neurons, flattened by a Reshape to [-1, 186] (-> flatten)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1)
        self.lif1 = so.LIF(tau=2.0)
        self.conv1d = nn.Conv2d(4, 6, (1, 3), stride=(1, 2))
        self.lif2 = so.LIF(tau=3.0, v_th=0.8)
        self.fc = nn.Linear(186, 5)
        self.out = so.LI(tau=2.0)

    def forward(self, x):
        h = self.lif1(self.conv(x)).reshape(-1, 4, 1, 64)
        h = self.lif2(self.conv1d(h).reshape(-1, 6, 31))
        return self.out(self.fc(h.reshape(-1, 186)))


class Recurrent(nn.Module):
    """h = LIF(fc(x) + rec(h of the previous step)); prev through Prev."""

    def __init__(self):
        super().__init__()
        self.flat = nn.Flatten()
        self.fc = nn.Linear(32, 16)
        self.rec = nn.Linear(16, 16, bias=False)
        self.hp = so.Prev(16)
        self.lif = so.LIF(tau=4.0)
        self.head = nn.Linear(16, 4)
        self.out = so.LI(tau=2.0)

    def forward(self, x):
        h = self.lif(self.fc(self.flat(x)) + self.rec(self.hp(x)))
        h = self.hp.update(h)
        return self.out(self.head(h))


# A neuron model of the test's own: snnc reads it from a --neurons file;
# PyTorch runs the same equations in the same order.
ADAPTIVE_SNN = """
neuron AdaptiveLIF(tau = 2.0, v_th = 1.0, beta = 0.2, surrogate = atan(2.0)) {
  param decay = 0.9 per channel;
  state v = 0.0;
  state a = 0.0;
  h = v + (x - v) / tau;
  s = spike(h - (v_th + a), surrogate);
  a = decay * a + beta * s;
  v = h * (1 - s);
  emit s;
}
"""


class AdaptiveLIF(so.Neuron):
    def __init__(self, channels, tau=2.0, beta=0.2):
        super().__init__("AdaptiveLIF", dict(tau=tau, beta=beta),
                         params=dict(decay=torch.full((channels,), 0.9)), states=dict(v=0.0, a=0.0))
        self.tau, self.beta = tau, beta

    def step(self, x):
        h = self.v + (x - self.v) / self.tau
        s = so.spike(h - (1.0 + self.a), "atan(2.0)")
        self.a = self.decay * self.a + self.beta * s
        self.v = h * (1 - s)
        return s


class UserNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.flat = nn.Flatten()
        self.fc = nn.Linear(32, 12)
        self.ad = AdaptiveLIF(12, tau=3.0, beta=0.5)
        self.head = nn.Linear(12, 3)
        self.out = so.LI()

    def forward(self, x):
        return self.out(self.head(self.ad(self.fc(self.flat(x)))))


def inputs(rng, shape, seq, scale=1.0):
    x = rng.standard_normal(((T,) if seq else ()) + (B,) + shape) * scale
    return x.astype(np.float32)


# ---- training and gradients ----

def write_idx(path, arr, magic):
    with open(path, "wb") as f:
        f.write(struct.pack(">I", magic))
        for d in arr.shape:
            f.write(struct.pack(">I", d))
        f.write(arr.astype(np.uint8).tobytes())


def check_train(rng):
    print("== snnc train of an imported model")
    model = randomize(MLP(), rng)
    with tmpdir() as d:
        path = os.path.join(d, "mlp.onnx")
        so.export(model, torch.zeros(1, 3, 4, 4), path, timesteps=4, readout="mean")
        data = os.path.join(d, "data")
        os.makedirs(data)
        # a learnable toy set: the class is the brightest of 10 bands
        n_train, n_test = 512, 128
        for split, n in (("train", n_train), ("t10k", n_test)):
            y = rng.integers(0, 10, n)
            x = rng.integers(0, 60, (n, 48))
            for i in range(n):
                x[i, (y[i] * 48) // 10:((y[i] + 1) * 48) // 10] += 180
            write_idx(os.path.join(data, "%s-images-idx3-ubyte" % split), x.reshape(n, 3, 16), 0x803)
            write_idx(os.path.join(data, "%s-labels-idx1-ubyte" % split), y, 0x801)
        # a negligible learning rate: the weights stay the model's
        out = os.path.join(d, "still")
        p = snnc(["train", path, "--data", data, "--epochs", "1", "--batch", "64", "--lr", "1e-20",
                  "-o", out], check=False)
        C.check(p.returncode == 0, "train (lr 1e-20): exit %d: %s" % (p.returncode, p.stderr.strip()))
        if p.returncode == 0:
            w, _ = read_safetensors(os.path.join(out, "weights.safetensors"))
            sd = {k.replace(".", "_", k.count(".") - 1): v.numpy() for k, v in model.state_dict().items()}
            for k, v in sd.items():
                C.check(k in w, "train: no tensor %s in the trained weights (%s)" % (k, sorted(w)))
                if k in w:
                    close(C, w[k].reshape(v.shape), v, "train started from the model's %s" % k, 1e-6, 1e-9)
        # a short run learns
        out = os.path.join(d, "learn")
        p = snnc(["train", path, "--data", data, "--epochs", "10", "--batch", "32", "--lr", "1e-2",
                  "-o", out], check=False)
        C.check(p.returncode == 0, "train: exit %d: %s" % (p.returncode, p.stderr.strip()))
        acc = [float(l.split("test accuracy ")[1].split("%")[0]) for l in p.stdout.splitlines()
               if l.startswith("test accuracy")]
        print("\n".join("  " + l for l in p.stdout.strip().splitlines()))
        C.check(acc and acc[0] > 50, "train: test accuracy %s after 10 epochs (expected above 50%%)" % acc)


def check_grad(rng):
    print("== snnc grad of an imported model against PyTorch autograd")
    model = randomize(MLP(), rng)
    x = inputs(rng, (3, 4, 4), False, 1.5)
    gout = rng.standard_normal((T, B, 10)).astype(np.float32)
    with tmpdir() as d:
        path = os.path.join(d, "mlp.onnx")
        so.export(model, torch.from_numpy(x), path, timesteps=T)
        xin, gin = os.path.join(d, "x.npy"), os.path.join(d, "g.npy")
        np.save(xin, x)
        np.save(gin, gout)
        gp, dxp, ysp = (os.path.join(d, f) for f in ("g.safetensors", "dx.npy", "ys.npy"))
        p = snnc(["grad", path, "--input", xin, "--grad-output", gin, "--output", gp, "--input-grad", dxp,
                  "--output-steps", ysp], check=False)
        C.check(p.returncode == 0, "grad: exit %d: %s" % (p.returncode, p.stderr.strip()))
        if p.returncode:
            return
        grads, _ = read_safetensors(gp)
        dx, ys = np.load(dxp), np.load(ysp)
    so.reset(model)
    model.zero_grad()
    xt = torch.from_numpy(x).requires_grad_(True)
    ys_ref = torch.stack([model(xt) for _ in range(T)])
    (ys_ref * torch.from_numpy(gout)).sum().backward()
    close(C, ys, ys_ref.detach().numpy(), "grad: outputs of every step")
    for k, v in model.named_parameters():
        sk = k.replace(".", "_", k.count(".") - 1)
        C.check(sk in grads, "grad: no gradient %s (%s)" % (sk, sorted(grads)))
        if sk in grads:
            e = rel_err(grads[sk].reshape(v.shape), v.grad.numpy())
            C.check(e <= 1e-4, "grad: d/d%s differs by %.3g of its largest entry" % (k, e))
            print("  d/d%-12s max error %.2e of the largest entry" % (k, e))
    e = rel_err(dx, xt.grad.numpy())
    C.check(e <= 1e-4, "grad: dL/dx differs by %.3g of its largest entry" % e)


def main():
    rng = np.random.default_rng(7)
    torch.manual_seed(7)
    check_model("mlp", randomize(MLP(), rng), inputs(rng, (3, 4, 4), False, 1.5), False)
    check_model("convnet", randomize(ConvNet(), rng), inputs(rng, (2, 8, 8), True, 1.5), True)
    check_model("arlif", randomize(ARNet(), rng), inputs(rng, (2, 8, 8), True, 1.5), True)
    check_model("dalif", randomize(DANet(), rng, 1.5), inputs(rng, (2, 8, 8), False, 1.5), False)
    check_model("recurrent", randomize(Recurrent(), rng), inputs(rng, (2, 4, 4), True, 1.5), True)
    check_model("reshape", randomize(ReshapeNet(), rng), inputs(rng, (2, 8, 8), True, 1.5), True)
    with tmpdir() as d:
        nf = os.path.join(d, "adaptive.snn")
        with open(nf, "w") as f:
            f.write(ADAPTIVE_SNN)
        user = randomize(UserNet(), rng)
        with torch.no_grad():
            user.ad.decay.copy_(torch.from_numpy(rng.uniform(0.5, 0.95, 12).astype(np.float32)))
        check_model("user model", user, inputs(rng, (2, 4, 4), False, 1.5), False, neurons_file=nf)
    check_train(rng)
    check_grad(rng)
    C.finish()


if __name__ == "__main__":
    main()
