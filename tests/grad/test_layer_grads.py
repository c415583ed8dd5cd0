#!/usr/bin/env python3
"""test_layer_grads.py: the gradients of the synaptic layers through
`snnc grad` against PyTorch autograd (float64, on the same float32 inputs
and weights):

  conv      conv2d with a non-square kernel, stride and padding; groups
            without bias; a 1x1 grouped conv; maxpool with padding (-inf
            padding, as PyTorch); avgpool with padding (zeros counted, as
            PyTorch's count_include_pad); flatten; dense
  residual  conv2d, batchnorm over [C, H, W] and over [C], scale, add (a
            residual connection), in training mode: batchnorm normalizes
            with the statistics of the batch over all T x B rows, compared
            with F.batch_norm(training=True) on [T * B, ...]
  recurrent add(prev(h) |> dense(n, bias = false)), with LI and with
            spiking LIF neurons
  direct    direct encoding (the input the same at every step: its gradient
            is the sum over the steps) through conv2d, batchnorm, LIF and
            dense, and an MLP with a spiking hidden layer
  spiking maxpool: LIF spikes into maxpool, where windows hold ties (equal
            spikes): PyTorch and snnc both route the gradient to the first
            maximum in window order
  direct pools into a recurrent layer: with direct encoding, maxpool,
            avgpool with padding, scale and dense are computed once (the
            hoist pass) and feed a recurrent add(prev(h) |> dense)
  recurrent conv: add(prev(h) |> conv2d), a conv in a step-by-step loop
  reshape   reshape into a height-1 conv2d, and reshape(-1) (views of
            their input) before dense
  wide      dense layers of 1120 and 1040 outputs over 1100 and 1120 inputs
            and 128 rows (T x B), whose products have more columns than one group
            of packed panels holds (1024): each block of A is packed in the
            first group and read back from the cache in the others, on
            floats (the input read in place, a weight gradient's dL/dy
            transposed) and on spikes kept as bits (a LIF layer of which
            every 20th neuron fires at every step, the others never); on
            the native target and on the portable one
  spikes as bits: LIF layers 128 and 32 wide read only by max-pool,
            avgpool (through a reshape) and dense layers, whose spikes the
            training code keeps one bit each (the plan must say `bits` for
            both), on the native target and on the portable one; and a
            maxpool(2), the only reader of such a layer, whose rows of 12
            bits start inside a word

Everything else is leaky integrators (LI), which are smooth, so that the
comparison does not hinge on spikes. Where spikes or maxima decide
something, the drawn data keep every decision at least 1e-4 away from
where it changes (the spike argument from 0; between the largest and the
second largest value of a max-pool window unless they are exactly equal
spikes), else the next seed is drawn.

Tolerance, as in test_neuron_grads.py: |snnc - ref| <= 1e-4 |ref| + 1e-5
max|ref| per tensor (float32 round-off of sums over T x B x H x W terms).

Also: batchnorm's running statistics after one training-mode forward must
equal PyTorch's (momentum 0.1, unbiased variance over the T x B x H x W
values of each channel; from given, non-default running statistics). snnc
grad does not write them, so `snnc train` runs one step with sgd(lr = 0)
over one batch holding the whole data set and writes them to
weights.safetensors; tolerance 1e-5 relative. With direct encoding the
batchnorm's input is the same at every step, and the hoist pass computes
it once: the running statistics must still be those over all T x B rows,
as they are with --disable-pass=hoist (checked too): hoisting must not
change results.
"""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "ref"))
import snnc_ref as R  # noqa: E402

np = R.require("numpy")
torch = R.require("torch")
import torch.nn.functional as F  # noqa: E402

torch.set_default_dtype(torch.float64)

RTOL, ATOL_REL, MARGIN = 1e-4, 1e-5, 1e-4


class Ctx:
    """The reference's view of one network: weights as float64 leaves, and
    the smallest margin of any decision met."""

    def __init__(self, weights):
        self.w = {k: torch.tensor(v.astype(np.float64), requires_grad=True) for k, v in weights.items()}
        self.margin = float("inf")
        self.spikes = []
        self.synapses = []  # (name, input, output, how) of every conv and dense

    def li(self, cur, tau):
        v = torch.zeros_like(cur[0])
        out = []
        for t in range(cur.shape[0]):
            v = v + (cur[t] - v) / tau
            out.append(v)
        return torch.stack(out)

    def lif_step(self, v, x, tau=2.0, v_th=1.0, alpha=2.0):
        """SpikingJelly's LIF (decay_input, hard reset to 0) with the atan
        surrogate; returns (spike, next v)."""
        h = v + (x - v) / tau
        u = h - v_th
        self.margin = min(self.margin, u.detach().abs().min().item())
        s = Atan.apply(u, alpha)
        self.spikes.append(s.detach())
        return s, h * (1 - s)

    def lif(self, cur, **kw):
        v = torch.zeros_like(cur[0])
        out = []
        for t in range(cur.shape[0]):
            s, v = self.lif_step(v, cur[t], **kw)
            out.append(s)
        return torch.stack(out)

    def rows(self, fn, x, *args, **kw):
        """A stateless layer over [T, B, ...], on T * B rows."""
        y = fn(x.reshape((-1,) + tuple(x.shape[2:])), *args, **kw)
        return y.reshape(tuple(x.shape[:2]) + tuple(y.shape[1:]))

    def conv(self, x, name, stride=1, padding=0, groups=1):
        b = self.w.get(name + ".bias")
        y = self.rows(F.conv2d, x, self.w[name + ".weight"], b, stride=stride, padding=padding, groups=groups)
        self.keep(name, x, y, ("conv", stride, padding, groups))
        return y

    def dense(self, x, name):
        y = x @ self.w[name + ".weight"].t()
        if name + ".bias" in self.w:
            y = y + self.w[name + ".bias"]
        self.keep(name, x, y, ("dense",))
        return y

    def keep(self, name, x, y, how):
        if y.requires_grad:
            y.retain_grad()
            self.synapses.append((name, x, y, how))

    def term_scales(self):
        """For the weight and bias of every conv and dense layer, the sum of
        the absolute values of the terms its gradient sums (the scale of
        its round-off, and of the gradient when the terms cancel, as they do
        exactly for a bias before batchnorm)."""
        out = {}
        for name, x, y, how in self.synapses:
            if y.grad is None:
                continue
            gy = y.grad.abs()
            ax = x.detach().abs()
            if how[0] == "dense":
                out[name + ".weight"] = torch.einsum("...o,...k->ok", gy, ax).numpy()
                out[name + ".bias"] = gy.reshape(-1, gy.shape[-1]).sum(0).numpy()
            else:
                _, stride, padding, groups = how
                rows = lambda t: t.reshape((-1,) + tuple(t.shape[2:]))  # noqa: E731
                out[name + ".weight"] = torch.nn.grad.conv2d_weight(
                    rows(ax), tuple(self.w[name + ".weight"].shape), rows(gy), stride=stride,
                    padding=padding, groups=groups).numpy()
                out[name + ".bias"] = rows(gy).sum(dim=(0, 2, 3)).numpy()
        return out

    def maxpool(self, x, k, stride, padding, ties_ok=False):
        """F.max_pool2d, after checking that the top two values of every
        window are MARGIN apart (or, with ties_ok, exactly equal)."""
        flat = x.detach().reshape((-1,) + tuple(x.shape[2:]))
        p = F.pad(flat, (padding, padding, padding, padding), value=-float("inf"))
        win = F.unfold(p, k, stride=stride)  # [rows, C * k * k, L]
        n, ck, L = win.shape
        win = win.reshape(n, flat.shape[1], k * k, L)
        top = torch.topk(win, 2, dim=2).values
        gap = (top[:, :, 0] - top[:, :, 1]).abs()
        if ties_ok:
            gap = gap[gap != 0]
        if gap.numel():
            self.margin = min(self.margin, gap.min().item())
        return self.rows(F.max_pool2d, x, k, stride=stride, padding=padding)

    def batchnorm(self, x, name, stats):
        """F.batch_norm in training mode over all T x B rows; records the
        running statistics it leaves."""
        rm = torch.tensor(stats[name + ".running_mean"].astype(np.float64))
        rv = torch.tensor(stats[name + ".running_var"].astype(np.float64))
        y = self.rows(F.batch_norm, x, rm, rv, self.w[name + ".weight"], self.w[name + ".bias"],
                      training=True, momentum=0.1, eps=1e-5)
        stats[name + ".running_mean:after"] = rm.numpy()
        stats[name + ".running_var:after"] = rv.numpy()
        return y


class Atan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, alpha):
        ctx.save_for_backward(u)
        ctx.alpha = alpha
        return (u >= 0).to(u.dtype)

    @staticmethod
    def backward(ctx, g):
        (u,) = ctx.saved_tensors
        a = ctx.alpha
        return g * (a / 2) / (1 + (torch.pi / 2 * a * u) ** 2), None


# ---- the networks: snnc text, weight shapes, the reference forward ----

def n(rng, *shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def u(rng, lo, hi, *shape):
    return rng.uniform(lo, hi, shape).astype(np.float32)


CONV = dict(
    T=5, B=3, input=(2, 9, 9), encode="sequence",
    text="""
  a1 = x |> conv2d(4, [3, 2], stride = [2, 1], padding = [1, 0]) as a1_conv |> LI(tau = 2.0) as a1;
  a2 = a1 |> conv2d(6, 3, padding = 1, groups = 2, bias = false) as a2_conv |> LI(tau = 3.0) as a2;
  a3 = a2 |> maxpool(3, stride = 2, padding = 1);
  a4 = a3 |> conv2d(4, 1, groups = 2) as a4_conv |> LI(tau = 2.0) as a4;
  a5 = a4 |> avgpool(2, stride = 1, padding = 1) |> flatten;
  out = a5 |> dense(5) as fc |> LI(tau = 2.0) as out;
""",
    weights=lambda rng: {
        "a1_conv.weight": n(rng, 4, 2, 3, 2, scale=0.5), "a1_conv.bias": n(rng, 4, scale=0.2),
        "a2_conv.weight": n(rng, 6, 2, 3, 3, scale=0.4),
        "a4_conv.weight": n(rng, 4, 3, 1, 1, scale=0.6), "a4_conv.bias": n(rng, 4, scale=0.2),
        "fc.weight": n(rng, 5, 80, scale=0.15), "fc.bias": n(rng, 5, scale=0.1)},
)


def conv_ref(c, x, stats):
    a1 = c.li(c.conv(x, "a1_conv", stride=(2, 1), padding=(1, 0)), 2.0)
    a2 = c.li(c.conv(a1, "a2_conv", padding=1, groups=2), 3.0)
    a3 = c.maxpool(a2, 3, 2, 1)
    a4 = c.li(c.conv(a3, "a4_conv", groups=2), 2.0)
    a5 = c.rows(F.avg_pool2d, a4, 2, stride=1, padding=1, count_include_pad=True)
    a5 = a5.reshape(a5.shape[0], a5.shape[1], -1)
    return c.li(c.dense(a5, "fc"), 2.0)


def bn_weights(rng, name, ch, shift=0.0):
    return {name + ".weight": u(rng, 0.5, 1.5, ch), name + ".bias": n(rng, ch, scale=0.3) + np.float32(shift),
            name + ".running_mean": n(rng, ch, scale=0.5), name + ".running_var": u(rng, 0.5, 2.0, ch)}


RESIDUAL = dict(
    T=4, B=3, input=(3, 6, 6), encode="sequence",
    text="""
  b1 = x |> conv2d(4, 3, padding = 1) as b1_conv |> batchnorm() as b1_bn |> LI(tau = 2.0) as b1;
  b2 = b1 |> conv2d(4, 3, padding = 1, bias = false) as b2_conv |> batchnorm() as b2_bn
          |> LI(tau = 2.0) as b2_li |> scale(0.5) |> add(b1);
  f = b2 |> flatten |> dense(16) as f_fc |> batchnorm(eps = 0.001) as f_bn |> LI(tau = 3.0) as f;
  out = f |> dense(4) as o_fc |> LI(tau = 2.0) as out;
""",
    weights=lambda rng: dict(
        **{"b1_conv.weight": n(rng, 4, 3, 3, 3, scale=0.3), "b1_conv.bias": n(rng, 4, scale=0.2),
           "b2_conv.weight": n(rng, 4, 4, 3, 3, scale=0.3),
           "f_fc.weight": n(rng, 16, 144, scale=0.1), "f_fc.bias": n(rng, 16, scale=0.1),
           "o_fc.weight": n(rng, 4, 16, scale=0.3), "o_fc.bias": n(rng, 4, scale=0.1)},
        **bn_weights(rng, "b1_bn", 4), **bn_weights(rng, "b2_bn", 4), **bn_weights(rng, "f_bn", 16)),
    bn=("b1_bn", "b2_bn", "f_bn"),
)


def residual_ref(c, x, stats):
    b1 = c.li(c.batchnorm(c.conv(x, "b1_conv", padding=1), "b1_bn", stats), 2.0)
    b2 = c.li(c.batchnorm(c.conv(b1, "b2_conv", padding=1), "b2_bn", stats), 2.0) * 0.5 + b1
    f = c.dense(b2.reshape(b2.shape[0], b2.shape[1], -1), "f_fc")
    rm = torch.tensor(stats["f_bn.running_mean"].astype(np.float64))
    rv = torch.tensor(stats["f_bn.running_var"].astype(np.float64))
    fb = c.rows(F.batch_norm, f, rm, rv, c.w["f_bn.weight"], c.w["f_bn.bias"], training=True,
                momentum=0.1, eps=1e-3)
    stats["f_bn.running_mean:after"] = rm.numpy()
    stats["f_bn.running_var:after"] = rv.numpy()
    return c.li(c.dense(c.li(fb, 3.0), "o_fc"), 2.0)


def recurrent(neuron):
    return dict(
        T=10, B=3, input=(6,), encode="sequence",
        text="""
  h = x |> dense(8) as h_in |> add(prev(h) |> dense(8, bias = false) as h_rec) |> %s as h;
  out = h |> dense(4) as o_fc |> LI(tau = 2.0) as out;
""" % neuron,
        weights=lambda rng: {
            "h_in.weight": n(rng, 8, 6, scale=0.6), "h_in.bias": u(rng, 0.0, 0.4, 8),
            "h_rec.weight": n(rng, 8, 8, scale=0.4),
            "o_fc.weight": n(rng, 4, 8, scale=0.5), "o_fc.bias": n(rng, 4, scale=0.1)},
    )


def recurrent_ref(spiking):
    def ref(c, x, stats):
        cur = c.dense(x, "h_in")
        h = torch.zeros(x.shape[1], 8)
        v = torch.zeros(x.shape[1], 8)
        outs = []
        for t in range(x.shape[0]):
            i = cur[t] + h @ c.w["h_rec.weight"].t()
            if spiking:
                h, v = c.lif_step(v, i)
            else:
                v = v + (i - v) / 2.0
                h = v
            outs.append(h)
        return c.li(c.dense(torch.stack(outs), "o_fc"), 2.0)
    return ref


DIRECT_CONV = dict(
    T=6, B=4, input=(2, 5, 5), encode="direct",
    text="""
  d1 = x |> conv2d(3, 3, padding = 1) as d1_conv |> batchnorm() as d1_bn |> LIF(surrogate = atan(2.0)) as d1;
  out = d1 |> flatten |> dense(6) as o_fc |> LI(tau = 2.0) as out;
""",
    weights=lambda rng: dict(
        **{"d1_conv.weight": n(rng, 3, 2, 3, 3, scale=0.4), "d1_conv.bias": n(rng, 3, scale=0.2),
           "o_fc.weight": n(rng, 6, 75, scale=0.2), "o_fc.bias": n(rng, 6, scale=0.1)},
        **bn_weights(rng, "d1_bn", 3, shift=0.7)),
    bn=("d1_bn",),
)


def direct_conv_ref(c, x, stats):
    T = DIRECT_CONV["T"]
    xs = x.unsqueeze(0).expand((T,) + tuple(x.shape))
    d1 = c.lif(c.batchnorm(c.conv(xs, "d1_conv", padding=1), "d1_bn", stats))
    d1 = d1.reshape(d1.shape[0], d1.shape[1], -1)
    return c.li(c.dense(d1, "o_fc"), 2.0)


DIRECT_MLP = dict(
    T=8, B=5, input=(3, 4), encode="direct",
    text="""
  h = x |> flatten |> dense(10) as h_fc |> LIF(tau = 2.0, surrogate = atan(2.0)) as h;
  out = h |> dense(4) as o_fc |> LI(tau = 2.0) as out;
""",
    weights=lambda rng: {
        "h_fc.weight": n(rng, 10, 12, scale=0.7), "h_fc.bias": u(rng, 0.2, 0.6, 10),
        "o_fc.weight": n(rng, 4, 10, scale=0.5), "o_fc.bias": n(rng, 4, scale=0.1)},
)


def direct_mlp_ref(c, x, stats):
    T = DIRECT_MLP["T"]
    xs = x.reshape(x.shape[0], -1).unsqueeze(0).expand(T, x.shape[0], 12)
    return c.li(c.dense(c.lif(c.dense(xs, "h_fc")), "o_fc"), 2.0)


SPIKE_POOL = dict(
    T=6, B=3, input=(2, 6, 6), encode="sequence",
    text="""
  s1 = x |> conv2d(3, 3, padding = 1) as s1_conv |> LIF(surrogate = atan(2.0)) as s1;
  p = s1 |> maxpool(2) |> flatten;
  out = p |> dense(4) as o_fc |> LI(tau = 2.0) as out;
""",
    weights=lambda rng: {
        "s1_conv.weight": n(rng, 3, 2, 3, 3, scale=0.5), "s1_conv.bias": u(rng, 0.2, 0.5, 3),
        "o_fc.weight": n(rng, 4, 27, scale=0.4), "o_fc.bias": n(rng, 4, scale=0.1)},
)


def spike_pool_ref(c, x, stats):
    s1 = c.lif(c.conv(x, "s1_conv", padding=1))
    p = c.maxpool(s1, 2, 2, 0, ties_ok=True)
    return c.li(c.dense(p.reshape(p.shape[0], p.shape[1], -1), "o_fc"), 2.0)


DIRECT_RECURRENT = dict(
    T=7, B=3, input=(2, 6, 6), encode="direct",
    text="""
  p = x |> maxpool(2) |> avgpool(2, stride = 1, padding = 1) |> scale(2.0) |> flatten;
  h = p |> dense(8) as h_in |> add(prev(h) |> dense(8, bias = false) as h_rec) |> LI(tau = 2.0) as h;
  out = h |> dense(4) as o_fc |> LI(tau = 2.0) as out;
""",
    weights=lambda rng: {
        "h_in.weight": n(rng, 8, 32, scale=0.4), "h_in.bias": n(rng, 8, scale=0.2),
        "h_rec.weight": n(rng, 8, 8, scale=0.4),
        "o_fc.weight": n(rng, 4, 8, scale=0.5), "o_fc.bias": n(rng, 4, scale=0.1)},
)


def direct_recurrent_ref(c, x, stats):
    T = DIRECT_RECURRENT["T"]
    p = c.maxpool(x.unsqueeze(0), 2, 2, 0)
    p = c.rows(F.avg_pool2d, p, 2, stride=1, padding=1, count_include_pad=True) * 2.0
    cur = c.dense(p.reshape(1, x.shape[0], -1), "h_in")[0]  # once: the same at every step
    h = torch.zeros(x.shape[0], 8)
    outs = []
    for t in range(T):
        h = h + (cur + h @ c.w["h_rec.weight"].t() - h) / 2.0
        outs.append(h)
    return c.li(c.dense(torch.stack(outs), "o_fc"), 2.0)


RECURRENT_CONV = dict(
    T=6, B=2, input=(2, 5, 5), encode="sequence",
    text="""
  h = x |> conv2d(3, 3, padding = 1) as h_in
        |> add(prev(h) |> conv2d(3, 3, padding = 1, bias = false) as h_rec) |> LI(tau = 2.0) as h;
  out = h |> avgpool(5) |> flatten |> dense(4) as o_fc |> LI(tau = 2.0) as out;
""",
    weights=lambda rng: {
        "h_in.weight": n(rng, 3, 2, 3, 3, scale=0.4), "h_in.bias": n(rng, 3, scale=0.2),
        "h_rec.weight": n(rng, 3, 3, 3, 3, scale=0.2),
        "o_fc.weight": n(rng, 4, 3, scale=0.5), "o_fc.bias": n(rng, 4, scale=0.1)},
)


def recurrent_conv_ref(c, x, stats):
    cur = c.conv(x, "h_in", padding=1)
    h = torch.zeros(tuple(cur.shape[1:]))
    outs = []
    for t in range(x.shape[0]):
        rec = F.conv2d(h, c.w["h_rec.weight"], padding=1)
        h = h + (cur[t] + rec - h) / 2.0
        outs.append(h)
    hs = torch.stack(outs)
    pooled = c.rows(F.avg_pool2d, hs, 5)
    return c.li(c.dense(pooled.reshape(pooled.shape[0], pooled.shape[1], -1), "o_fc"), 2.0)


RESHAPE = dict(
    T=4, B=3, input=(2, 4, 6), encode="sequence",
    text="""
  a1 = x |> conv2d(3, 3, padding = 1) as a1_conv |> LI(tau = 2.0) as a1;
  a2 = a1 |> reshape([3, 1, 24]) |> conv2d(4, [1, 3], stride = [1, 2]) as a2_conv |> LI(tau = 3.0) as a2;
  out = a2 |> reshape([4, -1]) |> reshape(-1) |> dense(5) as fc |> LI(tau = 2.0) as out;
""",
    weights=lambda rng: {
        "a1_conv.weight": n(rng, 3, 2, 3, 3, scale=0.5), "a1_conv.bias": n(rng, 3, scale=0.2),
        "a2_conv.weight": n(rng, 4, 3, 1, 3, scale=0.5), "a2_conv.bias": n(rng, 4, scale=0.2),
        "fc.weight": n(rng, 5, 44, scale=0.2), "fc.bias": n(rng, 5, scale=0.1)},
)


def reshape_ref(c, x, stats):
    a1 = c.li(c.conv(x, "a1_conv", padding=1), 2.0)
    a2 = c.li(c.conv(a1.reshape(a1.shape[0], a1.shape[1], 3, 1, 24), "a2_conv", stride=(1, 2)), 3.0)
    return c.li(c.dense(a2.reshape(a2.shape[0], a2.shape[1], -1), "fc"), 2.0)


SPIKE_BITS = dict(
    T=6, B=5, input=(2, 4, 4), encode="sequence",
    text="""
  s1 = x |> conv2d(8, 3, padding = 1) as s1_conv |> LIF(surrogate = atan(2.0)) as s1;
  a = s1 |> avgpool(2) |> reshape([8, 1, 4]) |> flatten |> dense(32, bias = false) as a_fc;
  h = s1 |> maxpool(2) |> flatten |> dense(32) as h_fc |> add(a) |> LIF(surrogate = atan(2.0)) as h;
  out = h |> dense(4) as o_fc |> LI(tau = 2.0) as out;
""",
    weights=lambda rng: {
        "s1_conv.weight": n(rng, 8, 2, 3, 3, scale=0.5), "s1_conv.bias": u(rng, 0.2, 0.5, 8),
        "a_fc.weight": n(rng, 32, 32, scale=0.4),
        "h_fc.weight": n(rng, 32, 32, scale=0.4), "h_fc.bias": u(rng, 0.1, 0.4, 32),
        "o_fc.weight": n(rng, 4, 32, scale=0.4), "o_fc.bias": n(rng, 4, scale=0.1)},
    bits=("s1", "h"),
)


def spike_bits_ref(c, x, stats):
    flat = lambda t: t.reshape(t.shape[0], t.shape[1], -1)  # noqa: E731
    s1 = c.lif(c.conv(x, "s1_conv", padding=1))
    a = c.dense(flat(c.rows(F.avg_pool2d, s1, 2)), "a_fc")
    h = c.lif(c.dense(flat(c.maxpool(s1, 2, 2, 0, ties_ok=True)), "h_fc") + a)
    return c.li(c.dense(h, "o_fc"), 2.0)


# Products wider than a group of packed panels (1024 columns at 128 values
# of k): the cache of A's packed blocks, on floats and on bits.
WIDE = dict(
    T=4, B=32, input=(1100,), encode="sequence",
    text="""
  h = x |> dense(1120) as h_fc |> LIF(surrogate = atan(2.0)) as h;
  out = h |> dense(1040) as o_fc |> LI(tau = 2.0) as out;
""",
    weights=lambda rng: {
        "h_fc.weight": n(rng, 1120, 1100, scale=0.01),
        "h_fc.bias": np.where(np.arange(1120) % 20 == 0, 5.0, -5.0).astype(np.float32),
        "o_fc.weight": n(rng, 1040, 1120, scale=0.05), "o_fc.bias": n(rng, 1040, scale=0.1)},
    bits=("h",),
)


def wide_ref(c, x, stats):
    return c.li(c.dense(c.lif(c.dense(x, "h_fc")), "o_fc"), 2.0)


# maxpool(2) the only reader of spikes kept as bits (4 x 12 x 12, 18 words a
# sample): the pool takes each row of windows from two rows of 12 bits,
# which start inside a word and run over into the next.
SPIKE_POOL_BITS = dict(
    T=5, B=3, input=(2, 12, 12), encode="sequence",
    text="""
  s1 = x |> conv2d(4, 3, padding = 1) as s1_conv |> LIF(surrogate = atan(2.0)) as s1;
  p = s1 |> maxpool(2) |> flatten;
  out = p |> dense(4) as o_fc |> LI(tau = 2.0) as out;
""",
    weights=lambda rng: {
        "s1_conv.weight": n(rng, 4, 2, 3, 3, scale=0.5), "s1_conv.bias": u(rng, 0.2, 0.5, 4),
        "o_fc.weight": n(rng, 4, 144, scale=0.4), "o_fc.bias": n(rng, 4, scale=0.1)},
    bits=("s1",),
)


def check_bits(chk, label, spec, work):
    """The training plan keeps exactly the layers spec["bits"] as bits."""
    src = os.path.join(work, "bits.snn")
    with open(src, "w") as f:
        f.write(net_text("L", spec))
    p = subprocess.run([R.snnc_path(), "compile", src, "--train", "--emit-ir"], capture_output=True, text=True)
    if p.returncode != 0:
        chk.check(False, "%s: snnc compile --emit-ir failed: %s" % (label, p.stderr.strip()))
        return
    names = {}  # "%N" -> layer name, from the node lines "  %N NAME = op ..."
    for line in p.stdout.splitlines():
        parts = line.split()
        if line.startswith("  %") and len(parts) > 2 and parts[2] == "=":
            names[parts[0]] = parts[1]
    plan = p.stdout[p.stdout.index("memory training"):].splitlines()[1:]
    got = sorted(names.get(q[0], q[0]) for q in (line.split() for line in plan) if q and "bits" in q)
    chk.check(got == sorted(spec["bits"]), "%s: the layers kept as bits: %s (expected %s)"
              % (label, " ".join(got) or "none", " ".join(sorted(spec["bits"]))))


def check_bits_same(chk, label, spec, ref, mean, seed, work):
    """Neither keeping spikes as bits nor the event-driven products change a
    result: snnc grad gives the same bits with --disable-pass=spikebits,
    and with the products forced to their dense blocks (L_EVENT_COST and
    L_NARROW_EVENT_COST huge, L_NARROW_DENSE_COST 0: the x86 targets'
    narrow weight gradient on bits by masks) or to row-by-row events
    wherever a block has any (the first two 0, the third huge; the blocks
    that the x86 tiles read in place, which have no zero, run dense either
    way), spikes as bits or as floats, on the native and the portable
    target."""
    x, w, g, _ = draw(spec, ref, mean, seed)
    ccs = {"default": R.quick_cc(work),
           "dense blocks": R.quick_cc(work, ["-DL_EVENT_COST=1e30", "-DL_NARROW_EVENT_COST=1e30",
                                             "-DL_NARROW_DENSE_COST=0"], "cc-dense"),
           "row events": R.quick_cc(work, ["-DL_EVENT_COST=0", "-DL_NARROW_EVENT_COST=0",
                                           "-DL_NARROW_DENSE_COST=1e30"], "cc-events")}
    # spikes as floats: the narrow readout's forward on floats (<net>_gemm_n), each way too
    variants = [("default", [])] + [(k, []) for k in ccs if k != "default"] + \
        [(k, ["--disable-pass=spikebits"]) for k in ccs]
    for target in ([], ["--target", "c"]):
        runs = []
        for cc, extra in variants:
            try:
                runs.append(R.grad(net_text("L", spec), x, g, weights=w, extra=["--cc", ccs[cc]] + target + extra))
            except R.RunError as e:
                chk.check(False, "%s: snnc grad %s failed: %s" % (label, " ".join(target + extra), e))
                return
        g1, dx1, y1 = runs[0]
        for (cc, extra), (g2, dx2, y2) in zip(variants[1:], runs[1:]):
            same = np.array_equal(dx1, dx2) and np.array_equal(y1, y2) and sorted(g1) == sorted(g2) and \
                all(np.array_equal(g1[k], g2[k]) for k in g1)
            chk.check(same, "%s%s: the same outputs and gradients with %s" % (
                label, " " + " ".join(target) if target else "",
                cc + (" and spikes as floats (--disable-pass=spikebits)" if extra else "")))


def remat_layers(label, spec, work):
    """The layers whose training plan keeps no states (the remat pass), by
    snnc compile --train --emit-ir; None where it failed."""
    src = os.path.join(work, "remat.snn")
    with open(src, "w") as f:
        f.write(net_text("L", spec))
    p = subprocess.run([R.snnc_path(), "compile", src, "--train", "--emit-ir"], capture_output=True, text=True)
    if p.returncode != 0:
        return None
    names = {}
    for line in p.stdout.splitlines():
        parts = line.split()
        if line.startswith("  %") and len(parts) > 2 and parts[2] == "=":
            names[parts[0]] = parts[1]
    plan = p.stdout[p.stdout.index("memory training"):].splitlines()[1:]
    return sorted(names.get(q[0], q[0]) for q in (line.split() for line in plan) if q and "remat" in q)


def check_remat_same(chk, label, spec, ref, mean, seed, work, cc):
    """Recomputing the states in the backward (the remat pass) changes no
    result: snnc grad gives the same bits with --disable-pass=remat, which
    stores the states of every step, on the native and the portable target.
    Returns the layers the pass marked."""
    marked = remat_layers(label, spec, work)
    if marked is None:
        chk.check(False, "%s: snnc compile --train --emit-ir failed" % label)
        return []
    x, w, g, _ = draw(spec, ref, mean, seed)
    for target in ([], ["--target", "c"]):
        try:
            g1, dx1, y1 = R.grad(net_text("L", spec), x, g, weights=w, extra=["--cc", cc] + target)
            g2, dx2, y2 = R.grad(net_text("L", spec), x, g, weights=w,
                                 extra=["--cc", cc, "--disable-pass=remat"] + target)
        except R.RunError as e:
            chk.check(False, "%s: snnc grad %s failed: %s" % (label, " ".join(target), e))
            return marked
        same = np.array_equal(dx1, dx2) and np.array_equal(y1, y2) and sorted(g1) == sorted(g2) and \
            all(np.array_equal(g1[k], g2[k]) for k in g1)
        chk.check(same, "%s%s: the same outputs and gradients with the states stored (--disable-pass=remat; "
                  "recomputed: %s)" % (label, " " + " ".join(target) if target else "", " ".join(marked) or "none"))
    return marked


CASES = [
    ("conv", CONV, conv_ref, 0.0),
    ("residual", RESIDUAL, residual_ref, 0.0),
    ("recurrent LI", recurrent("LI(tau = 2.0)"), recurrent_ref(False), 0.0),
    ("recurrent LIF", recurrent("LIF(surrogate = atan(2.0))"), recurrent_ref(True), 0.8),
    ("direct conv batchnorm LIF", DIRECT_CONV, direct_conv_ref, 0.3),
    ("direct MLP", DIRECT_MLP, direct_mlp_ref, 0.5),
    ("spiking maxpool", SPIKE_POOL, spike_pool_ref, 0.8),
    ("direct pools into a recurrent layer", DIRECT_RECURRENT, direct_recurrent_ref, 0.0),
    ("recurrent conv", RECURRENT_CONV, recurrent_conv_ref, 0.0),
    ("reshape", RESHAPE, reshape_ref, 0.0),
    ("spikes as bits", SPIKE_BITS, spike_bits_ref, 0.8),
    ("spiking maxpool over bits", SPIKE_POOL_BITS, spike_pool_ref, 0.8),
    ("wide", WIDE, wide_ref, 0.0),
]


def net_text(name, spec, train=""):
    return "network %s {\n  timesteps %d;\n  input x : [%s] encode %s;\n%s  output out readout steps;\n}\n%s" % (
        name, spec["T"], ", ".join(str(d) for d in spec["input"]), spec["encode"], spec["text"], train)


def draw(spec, ref, mean, seed):
    """Input, weights and dL/doutput, redrawn until no decision lies within
    MARGIN of changing."""
    for attempt in range(30):
        rng = np.random.default_rng(seed + 101 * attempt)
        T, Bn = spec["T"], spec["B"]
        shape = ((Bn,) if spec["encode"] == "direct" else (T, Bn)) + tuple(spec["input"])
        x = (rng.standard_normal(shape) + mean).astype(np.float32)
        w = spec["weights"](rng)
        c = Ctx(w)
        stats = dict(w)
        with torch.no_grad():
            y = ref(c, torch.tensor(x.astype(np.float64)), stats)
        if c.margin >= MARGIN:
            g = rng.standard_normal(tuple(y.shape)).astype(np.float32)
            rate = torch.cat([s.reshape(-1) for s in c.spikes]).mean().item() if c.spikes else None
            return x, w, g, rate
    raise RuntimeError("no draw keeps every decision %g away from changing" % MARGIN)


def compare(chk, worst, got, want, what, terms=None):
    """|got - want| <= RTOL |want| + ATOL_REL S elementwise, where S is the
    tensor's largest entry, or where known the larger of that and the sum
    of the absolute values of the terms the entry sums."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        chk.check(False, "%s: shape %s, expected %s" % (what, got.shape, want.shape))
        return
    scale = np.abs(want).max()
    err = np.abs(got - want)
    tol = RTOL * np.abs(want) + ATOL_REL * (scale if terms is None else np.maximum(terms, scale))
    ratio = (err / (tol + 1e-300)).max()
    top = max(scale, terms.max() if terms is not None else 0.0)
    rel = err.max() / top if top > 0 else err.max()
    if rel > worst["rel"][0]:
        worst["rel"] = (rel, what)
    if ratio > worst["ratio"][0]:
        worst["ratio"] = (ratio, what)
    bad = err > tol
    if bad.any():
        i = np.unravel_index(np.argmax(err - tol), got.shape)
        chk.check(False, "%s: %d of %d values differ; worst at %s: got %.9g, expected %.9g (scale %.3g)"
                  % (what, bad.sum(), bad.size, i, got[i], want[i], scale))
    else:
        chk.check(True, what)


def check_case(chk, worst, label, spec, ref, mean, seed, cc, extra=()):
    x, w, g, rate = draw(spec, ref, mean, seed)
    try:
        grads, dx, ys = R.grad(net_text("L", spec), x, g, weights=w, extra=["--cc", cc] + list(extra))
    except R.RunError as e:
        chk.check(False, "%s: snnc grad failed: %s" % (label, e))
        return
    c = Ctx(w)
    stats = dict(w)
    xt = torch.tensor(x.astype(np.float64), requires_grad=True)
    y = ref(c, xt, stats)
    (y * torch.tensor(g.astype(np.float64))).sum().backward()
    terms = c.term_scales()
    compare(chk, worst, ys, y.detach().numpy(), "%s: output of every step" % label)
    compare(chk, worst, dx, xt.grad.numpy(), "%s: dL/dinput" % label)
    for name, leaf in sorted(c.w.items()):
        if name.endswith("running_mean") or name.endswith("running_var"):
            continue
        if name not in grads:
            chk.check(False, "%s: snnc wrote no gradient for %s" % (label, name))
            continue
        want = leaf.grad.numpy() if leaf.grad is not None else np.zeros(leaf.shape)
        compare(chk, worst, grads[name], want, "%s: d%s" % (label, name), terms.get(name))
    extra = set(grads) - set(c.w)
    chk.check(not extra, "%s: gradients of exactly the learnable parameters (extra: %s)" % (label, sorted(extra)))
    print("%s: %s" % (label, "spike rate %.2f" % rate if rate is not None else "no spikes"))


def check_running_stats(chk, label, spec, ref, mean, seed, work, cc):
    """One training step with lr 0 over the whole data set as one batch;
    the running statistics it leaves against F.batch_norm's."""
    x, w, _, _ = draw(spec, ref, mean, seed)
    Bn = spec["B"]
    d = os.path.join(work, label.replace(" ", "_"))
    os.makedirs(d)
    # the data set: [N, T, ...] for a sequence, [N, ...] for direct encoding
    data = x if spec["encode"] == "direct" else np.swapaxes(x, 0, 1)
    np.save(os.path.join(d, "x.npy"), np.ascontiguousarray(data))
    np.save(os.path.join(d, "y.npy"), (np.arange(Bn) % 2).astype(np.int64))
    R.write_safetensors(os.path.join(d, "w0.safetensors"), w)
    train = """train L {
  data npy(train_x = "x.npy", train_y = "y.npy", test_x = "x.npy", test_y = "y.npy");
  optimizer sgd(lr = 0);
  shuffle false; epochs 1; batch %d; seed 3;
}
""" % Bn
    stats = dict(w)
    with torch.no_grad():
        ref(Ctx(w), torch.tensor(x.astype(np.float64)), stats)
    # with direct encoding the batchnorm's input is the same at every step
    # and the hoist pass computes it once; the statistics must not change
    # with that (--disable-pass=hoist computes it at every step)
    variants = [("", [])]
    if spec["encode"] == "direct":
        variants.append((" (hoist pass off)", ["--disable-pass=hoist"]))
    for suffix, extra in variants:
        out = os.path.join(d, "out%d" % len(extra))
        p = R.train(net_text("L", spec, train), out, ["--weights", "w0.safetensors", "--cc", cc] + extra, cwd=d)
        if p.returncode != 0:
            chk.check(False, "%s%s: snnc train failed: %s" % (label, suffix, p.stderr.strip()))
            continue
        got, _ = R.read_safetensors(os.path.join(out, "weights.safetensors"))
        for bn in spec["bn"]:
            for k in ("running_mean", "running_var"):
                want = stats["%s.%s:after" % (bn, k)]
                chk.close(rtol=1e-5, atol=1e-6, got=got["%s.%s" % (bn, k)], want=want,
                          what="%s%s: %s.%s after one training forward (F.batch_norm over T x B rows, "
                          "momentum 0.1)" % (label, suffix, bn, k))
        # and the weights themselves are unchanged by sgd(lr = 0)
        for k, v in w.items():
            if "running" not in k:
                chk.same(got[k], v, "%s%s: %s unchanged by a step with lr 0" % (label, suffix, k))


def main():
    R.snnc_path()
    chk = R.Checker()
    worst = {"rel": (0.0, ""), "ratio": (0.0, "")}
    with tempfile.TemporaryDirectory() as work:
        cc = R.quick_cc(work)
        recomputed = []
        for i, (label, spec, ref, mean) in enumerate(CASES):
            check_case(chk, worst, label, spec, ref, mean, 500 + i, cc)
            recomputed += check_remat_same(chk, label, spec, ref, mean, 500 + i, work, cc)
            if "bits" in spec:
                check_bits(chk, label, spec, work)
                check_bits_same(chk, label, spec, ref, mean, 500 + i, work)
                check_case(chk, worst, label + " (--target c)", spec, ref, mean, 500 + i, cc, ["--target", "c"])
        for i, (label, spec, ref, mean) in enumerate(CASES):
            if "bn" in spec:
                check_running_stats(chk, label, spec, ref, mean, 500 + i, work, cc)
    # the comparisons above must have compared something
    chk.check(len(recomputed) >= len(CASES) // 2, "the remat pass marked %d layers in %d cases"
              % (len(recomputed), len(CASES)))
    print("states recomputed in the backward: %d layers of the %d cases" % (len(recomputed), len(CASES)))
    print("largest error relative to the tensor's scale: %.3g in %s" % worst["rel"])
    print("largest error as a fraction of its tolerance: %.3g in %s" % worst["ratio"])
    chk.finish()


if __name__ == "__main__":
    main()
