"""snnc_onnx: spiking neurons for PyTorch that export to ONNX as snnc reads it.

Copy this file into your project. It needs PyTorch (1.13 or later) and, for
export(), the onnx package. The convention is described in docs/onnx.md.

Each neuron here is a torch.nn.Module that computes ONE timestep per call
with exactly the equations and the order of operations of snnc's built-in
model of the same name (compiler/stdlib/neurons.snn, docs/neurons.md), and
keeps its state between calls until reset(). So a network built from
ordinary layers and these neurons runs in PyTorch step by step (a loop over
t), trains there with the same surrogate gradients, and exports as one
step: the ONNX graph snnc imports.

    import snnc_onnx as so
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 128), so.LIF(tau=2.0),
                              torch.nn.Linear(128, 10), so.LI(tau=2.0))
    so.reset(net)
    ys = torch.stack([net(x) for _ in range(8)])      # T = 8 steps, direct input
    so.export(net, x, "net.onnx", timesteps=8, readout="mean")

    $ snnc run net.onnx --input x.npy --output y.npy

When exported, a neuron becomes one node of the custom domain `snn`
(snn::LIF, IF, LI, PLIF, ARLIF, DALIF, or snn::Neuron for a model of your
own) through a torch.autograd.Function whose symbolic() writes the
constructor arguments as attributes (floats, booleans as ints 0/1,
surrogates and granularities as strings) and the learnable parameters as
inputs after x, in the model's order (PLIF: w; ARLIF: a, c; DALIF: ws, wt).

Recurrent edges: Prev(shape) holds the value of a tensor at the previous
step; export() writes it as snn::Prev with attribute source = the name of
that value in the graph (it needs export(), which resolves the name).
"""
import inspect
import math
import numbers
import warnings

import torch
from torch import nn

__all__ = ["spike", "parse_surrogate", "SpikingNeuron", "IF", "LIF", "LI", "PLIF", "ARLIF", "DALIF",
           "Neuron", "Prev", "reset", "export"]

# ---- surrogates: the derivative spike() takes in the backward pass ----

# name -> default alpha (compiler/ir/surrogates.def)
SURROGATES = {"atan": 2.0, "sigmoid": 4.0, "fast_sigmoid": 25.0, "rect": 1.0, "triangle": 1.0}


def parse_surrogate(text):
    """'atan', 'atan(3.0)' or 'atan(alpha = 3.0)' -> ('atan', 3.0)."""
    s = text.replace(" ", "")
    name, _, rest = s.partition("(")
    if name not in SURROGATES:
        raise ValueError("unknown surrogate %r (one of %s)" % (text, ", ".join(SURROGATES)))
    if not rest:
        return name, SURROGATES[name]
    if not rest.endswith(")"):
        raise ValueError("malformed surrogate %r" % text)
    arg = rest[:-1]
    if arg.startswith("alpha="):
        arg = arg[len("alpha="):]
    alpha = float(arg) if arg else SURROGATES[name]
    if not alpha > 0:
        raise ValueError("surrogate %r: alpha must be positive" % text)
    return name, alpha


def _surrogate_text(name, alpha):
    return "%s(%r)" % (name, float(alpha))


class _Spike(torch.autograd.Function):
    """Heaviside step (fires where u >= 0) with a surrogate derivative."""

    @staticmethod
    def forward(ctx, u, name, alpha):
        ctx.save_for_backward(u)
        ctx.name, ctx.alpha = name, alpha
        return (u >= 0).to(u.dtype)

    @staticmethod
    def backward(ctx, grad):
        (u,) = ctx.saved_tensors
        a = ctx.alpha
        if ctx.name == "atan":
            d = (a / 2) / (1 + (math.pi / 2 * a * u) ** 2)
        elif ctx.name == "sigmoid":
            sg = torch.sigmoid(a * u)
            d = a * sg * (1 - sg)
        elif ctx.name == "fast_sigmoid":
            d = 1 / (a * u.abs() + 1) ** 2
        elif ctx.name == "rect":
            d = (u.abs() <= a / 2).to(u.dtype) / a
        else:  # triangle
            d = torch.clamp(a - a * a * u.abs(), min=0)
        return grad * d, None, None


def spike(u, surrogate="sigmoid(4.0)"):
    """1 where u >= 0, else 0; the surrogate's derivative in the backward pass."""
    name, alpha = parse_surrogate(surrogate) if isinstance(surrogate, str) else surrogate
    return _Spike.apply(u, name, alpha)


# ---- export of one neuron as one snn:: node ----

_export = {"active": False}  # set while export() runs: names nodes, resolves Prev


def _attr_kwargs(args):
    """Constructor arguments as g.op attributes: tau_f=2.0, hard_i=1, surrogate_s=..."""
    kw = {}
    for k, v in args.items():
        if isinstance(v, (bool, numbers.Integral)):
            kw[k + "_i"] = int(v)
        elif isinstance(v, numbers.Real):
            kw[k + "_f"] = float(v)
        elif isinstance(v, str):
            kw[k + "_s"] = v
        else:
            raise TypeError("argument %s = %r cannot be an ONNX attribute" % (k, v))
    return kw


class _NeuronOp(torch.autograd.Function):
    """Runs one step of `neuron` in forward (while tracing for export) and
    writes the snn:: node in symbolic."""

    @staticmethod
    def forward(ctx, x, neuron, *params):
        # the tracer fails on tensors made outside that a Function uses
        # without taking them as inputs: the state starts here
        neuron._init_state(x)
        return neuron.step(x)

    @staticmethod
    def symbolic(g, x, neuron, *params):
        kw = _attr_kwargs(neuron.export_args())
        if neuron.op == "Neuron":
            kw["model_s"] = neuron.model
        if _export["active"] and getattr(neuron, "_snnc_name", None):
            kw["snnc_name_s"] = neuron._snnc_name  # export() moves it to the node's name
        out = g.op("snn::" + neuron.op, x, *params, **kw)
        out.setType(x.type())
        return out


class SpikingNeuron(nn.Module):
    """Base of the neurons: state kept between calls, reset(), export.

    A subclass sets `op` (the snn:: operator), `model` (its name in snnc),
    keeps its constructor arguments in self.args (in the model's order; they
    are the node's attributes), declares its states with their initial
    values in self.states and its learnable parameters in self.param_names
    (the model's order), and computes one step in step(x), reading and
    writing the states as attributes (self.v, ...)."""

    op = "Neuron"
    model = None

    def __init__(self):
        super().__init__()
        self.args = {}
        self.states = {}
        self.param_names = []
        self._have_state = False

    def export_args(self):
        return self.args

    def reset(self):
        """Forget the state: the next call is step 0."""
        for k in self.states:
            setattr(self, k, None)
        self._have_state = False

    def _init_state(self, x):
        for k, v in self.states.items():
            setattr(self, k, torch.full_like(x, float(v)))
        self._have_state = True

    def forward(self, x):
        if torch.onnx.is_in_onnx_export():
            return _NeuronOp.apply(x, self, *[getattr(self, p) for p in self.param_names])
        first = getattr(self, next(iter(self.states)), None) if self.states else None
        if not self._have_state or (first is not None and first.shape != x.shape):
            self._init_state(x)
        return self.step(x)

    def step(self, x):
        raise NotImplementedError

    def _param(self, name, x):
        """A learnable parameter shaped to broadcast against x [B, ...]."""
        p = getattr(self, name)
        g = self.args.get("granularity", "layer")
        if g == "channel":
            return p.view(1, -1, *([1] * (x.dim() - 2)))
        if g == "neuron":
            return p.view(1, *p.shape)
        return p

    def extra_repr(self):
        return ", ".join("%s=%r" % kv for kv in self.args.items())


def _check_surrogate(s):
    parse_surrogate(s)
    return s


def _param_shape(granularity, shape):
    """Shape of a learnable parameter: [1] per layer, [C] per channel, the
    per-sample shape per neuron (shape = C, or (C, H, W), or (F,))."""
    if granularity == "layer":
        return (1,)
    if shape is None:
        raise ValueError("granularity %s needs shape= (the per-sample shape of the layer's input)"
                         % granularity)
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    if granularity == "channel":
        return (shape[0],)
    if granularity == "neuron":
        return shape
    raise ValueError("granularity must be layer, channel or neuron, not %r" % granularity)


class _ResetMixin:
    """The spike, the reset term r and the hard or soft reset of IF, LIF, PLIF."""

    def _fire_reset(self, h):
        a = self.args
        s = spike(h - a["v_th"], self._surr)
        r = s.detach() if a["detach_reset"] else s
        if a["hard"]:
            self.v = (1 - r) * h + r * a["v_reset"]
        else:
            self.v = h - r * a["v_th"]
        return s


class IF(_ResetMixin, SpikingNeuron):
    """Integrate and fire (SpikingJelly IFNode): h = v + x."""
    op = model = "IF"

    def __init__(self, v_th=1.0, v_reset=0.0, hard=True, surrogate="sigmoid(4.0)", detach_reset=False):
        super().__init__()
        self.args = dict(v_th=float(v_th), v_reset=float(v_reset), hard=bool(hard),
                         surrogate=_check_surrogate(surrogate), detach_reset=bool(detach_reset))
        self._surr = parse_surrogate(surrogate)
        self.states = {"v": float(v_reset)}
        self.v = None

    def step(self, x):
        return self._fire_reset(self.v + x)


class LIF(_ResetMixin, SpikingNeuron):
    """Leaky integrate and fire (SpikingJelly LIFNode), snnc's four charges."""
    op = model = "LIF"

    def __init__(self, tau=2.0, v_th=1.0, v_reset=0.0, decay_input=True, hard=True,
                 surrogate="sigmoid(4.0)", detach_reset=False):
        super().__init__()
        self.args = dict(tau=float(tau), v_th=float(v_th), v_reset=float(v_reset),
                         decay_input=bool(decay_input), hard=bool(hard),
                         surrogate=_check_surrogate(surrogate), detach_reset=bool(detach_reset))
        self._surr = parse_surrogate(surrogate)
        self.states = {"v": float(v_reset)}
        self.v = None

    def step(self, x):
        a, v = self.args, self.v
        tau, vr = a["tau"], a["v_reset"]
        if a["decay_input"]:
            h = v + (x - v) / tau if vr == 0 else v + (x - (v - vr)) / tau
        else:
            h = v * (1 - 1 / tau) + x if vr == 0 else v - (v - vr) / tau + x
        return self._fire_reset(h)


class LI(SpikingNeuron):
    """Leaky integrator (no spikes): v = v + (x - v) / tau; emits v."""
    op = model = "LI"

    def __init__(self, tau=2.0):
        super().__init__()
        self.args = dict(tau=float(tau))
        self.states = {"v": 0.0}
        self.v = None

    def step(self, x):
        self.v = self.v + (x - self.v) / self.args["tau"]
        return self.v


class PLIF(_ResetMixin, SpikingNeuron):
    """Parametric LIF (Fang et al. 2021): 1/tau = sigmoid(w), w learnable."""
    op = model = "PLIF"

    def __init__(self, tau0=2.0, v_th=1.0, v_reset=0.0, decay_input=True, hard=True,
                 surrogate="sigmoid(4.0)", detach_reset=False, granularity="layer", shape=None):
        super().__init__()
        self.args = dict(tau0=float(tau0), v_th=float(v_th), v_reset=float(v_reset),
                         decay_input=bool(decay_input), hard=bool(hard),
                         surrogate=_check_surrogate(surrogate), detach_reset=bool(detach_reset),
                         granularity=granularity)
        self._surr = parse_surrogate(surrogate)
        ps = _param_shape(granularity, shape)
        self.w = nn.Parameter(torch.full(ps, -math.log(tau0 - 1)))
        self.param_names = ["w"]
        self.states = {"v": float(v_reset)}
        self.v = None

    def step(self, x):
        a, v = self.args, self.v
        k, vr = torch.sigmoid(self._param("w", x)), a["v_reset"]
        if a["decay_input"]:
            h = v + (x - v) * k if vr == 0 else v + (x - (v - vr)) * k
        else:
            h = v * (1 - k) + x if vr == 0 else v - (v - vr) * k + x
        return self._fire_reset(h)


class ARLIF(SpikingNeuron):
    """AR-LIF (Huang et al., arXiv 2507.20746) as the authors' XLIF: an
    input-dependent threshold and an adaptive reset through a memory m."""
    op = model = "ARLIF"

    def __init__(self, leak=0.5, v_th=1.0, surrogate="rect(1.0)", detach_reset=False,
                 granularity="layer", shape=None):
        super().__init__()
        self.args = dict(leak=float(leak), v_th=float(v_th), surrogate=_check_surrogate(surrogate),
                         detach_reset=bool(detach_reset), granularity=granularity)
        self._surr = parse_surrogate(surrogate)
        ps = _param_shape(granularity, shape)
        self.a = nn.Parameter(torch.zeros(ps))
        self.c = nn.Parameter(torch.ones(ps))
        self.param_names = ["a", "c"]
        self.states = {"v": 0.0, "m": 0.0}
        self.v = self.m = None

    def step(self, x):
        args = self.args
        h = args["leak"] * self.v + x
        p = torch.tanh(self._param("a", x)) * torch.tanh(x)
        s = spike(h - args["v_th"] - p, self._surr)
        g = torch.sigmoid(self._param("c", x) * x)
        m = self.m
        self.m = torch.where(m > 0, m * g, m * (1 - g)) + (2 * s - 1) * torch.sigmoid(x)
        r = s.detach() if args["detach_reset"] else s
        self.v = h - r * (args["v_th"] + torch.sigmoid(self.m) + p)
        return s


class DALIF(SpikingNeuron):
    """DA-LIF (Zhang et al., arXiv 2502.10422): u = sigmoid(wt) v + sigmoid(ws) x."""
    op = model = "DALIF"

    def __init__(self, v_th=1.0, alpha0=0.5, beta0=0.5, hard=True, surrogate="atan(2.0)",
                 detach_reset=False, granularity="layer", shape=None):
        super().__init__()
        self.args = dict(v_th=float(v_th), alpha0=float(alpha0), beta0=float(beta0), hard=bool(hard),
                         surrogate=_check_surrogate(surrogate), detach_reset=bool(detach_reset),
                         granularity=granularity)
        self._surr = parse_surrogate(surrogate)
        ps = _param_shape(granularity, shape)
        self.ws = nn.Parameter(torch.full(ps, math.log(alpha0 / (1 - alpha0))))
        self.wt = nn.Parameter(torch.full(ps, math.log(beta0 / (1 - beta0))))
        self.param_names = ["ws", "wt"]
        self.states = {"v": 0.0}
        self.v = None

    def step(self, x):
        a = self.args
        u = torch.sigmoid(self._param("wt", x)) * self.v + torch.sigmoid(self._param("ws", x)) * x
        s = spike(u - a["v_th"], self._surr)
        r = s.detach() if a["detach_reset"] else s
        self.v = u * (1 - r) if a["hard"] else u - r * a["v_th"]
        return s


class Neuron(SpikingNeuron):
    """A neuron model of your own, defined for snnc in a --neurons FILE.snn
    and exported as snn::Neuron with attribute model = its name.

        class AdaptiveLIF(Neuron):      # neuron AdaptiveLIF(tau = 2.0, beta = 0.2) { ... }
            def __init__(self, tau=2.0, beta=0.2):
                super().__init__("AdaptiveLIF", dict(tau=tau, beta=beta), states=dict(v=0.0, a=0.0))
            def step(self, x):
                ...  # the same equations, in the same order, on self.v, self.a; return the emitted value

    `args` are the constructor arguments to write as attributes (only those
    you want to set: the others keep the model's defaults); `params` maps
    each learnable parameter, in the model's order, to its initial tensor;
    `states` maps each state to its initial value. Instead of subclassing,
    `step` may be a function step(neuron, x)."""

    op = "Neuron"

    def __init__(self, model, args=None, params=None, states=None, step=None):
        super().__init__()
        self.model = model
        self.args = dict(args or {})
        for k, v in (params or {}).items():
            setattr(self, k, nn.Parameter(torch.as_tensor(v, dtype=torch.float32).clone()))
            self.param_names.append(k)
        self.states = dict(states or {})
        for k in self.states:
            setattr(self, k, None)
        self._step_fn = step

    def step(self, x):
        if self._step_fn is None:
            raise NotImplementedError("Neuron %s: give step= or override step()" % self.model)
        return self._step_fn(self, x)


# ---- recurrent edges ----

class _PrevOp(torch.autograd.Function):
    @staticmethod
    def forward(ctx, like, prev):
        return prev.value(like).clone()

    @staticmethod
    def symbolic(g, like, prev):
        if not _export["active"]:
            raise RuntimeError("a model with snnc_onnx.Prev must be exported with snnc_onnx.export()")
        return g.op("snn::Prev", source_s="\x01" + prev._key)


class _PrevSourceOp(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, prev):
        return x.clone()

    @staticmethod
    def symbolic(g, x, prev):
        out = g.op("snn::PrevSource", x, key_s=prev._key)
        out.setType(x.type())
        return out


class Prev(nn.Module):
    """A recurrent edge: the value a tensor had at the previous step (zeros
    at step 0), snnc's prev(source).

        self.hp = Prev(16)                       # per-sample shape of the value
        ...
        h = self.lif(self.fc(x) + self.rec(self.hp(x)))   # hp(x): last step's h
        h = self.hp.update(h)                    # use what update() returns

    hp(like) takes any tensor whose first dimension is the batch. The
    source's value must go through update() and its result be used, so
    that export() finds it in the graph."""

    _count = 0

    def __init__(self, shape):
        super().__init__()
        self.shape = (shape,) if isinstance(shape, int) else tuple(shape)
        Prev._count += 1
        self._key = "prev%d" % Prev._count
        self._value = None

    def value(self, like):
        if self._value is None or self._value.shape[0] != like.shape[0]:
            return like.new_zeros((like.shape[0],) + self.shape)
        return self._value

    def reset(self):
        self._value = None

    def forward(self, like):
        if torch.onnx.is_in_onnx_export():
            return _PrevOp.apply(like, self)
        return self.value(like)

    def update(self, x):
        """Stores x as the value the next step reads; returns x."""
        self._value = x
        if torch.onnx.is_in_onnx_export():
            return _PrevSourceOp.apply(x, self)
        return x


def reset(model):
    """Resets every neuron and Prev of a model (before a new sequence)."""
    for m in model.modules():
        if isinstance(m, (SpikingNeuron, Prev)):
            m.reset()


# ---- export ----

def _rename_nodes(graph):
    """Names each snn node after its module, and each other node that is
    the only one of its module (PyTorch names nodes /scope/module/Op) after
    that module, so that snnc's layer and parameter names are PyTorch's with
    dots made underscores (fc1.weight, features_0.weight, lif1.w)."""
    per_module = {}
    for i, n in enumerate(graph.node):
        parts = n.name.split("/")
        if n.domain == "" and n.op_type not in ("Constant", "Pad") and len(parts) >= 3 and not parts[0]:
            per_module.setdefault(parts[-2], []).append(i)
    taken = set()
    for i, n in enumerate(graph.node):
        want = None
        for a in list(n.attribute):
            if a.name == "snnc_name":
                want = a.s.decode()
                n.attribute.remove(a)
        parts = n.name.split("/")
        if want is None and len(parts) >= 3 and per_module.get(parts[-2]) == [i]:
            want = parts[-2].replace(".", "_")
        if want and want not in taken:
            n.name = want
        taken.add(n.name)


def _resolve_prev(graph):
    """Removes the snn::PrevSource marks and points each snn::Prev at the
    value its mark stood on."""
    source = {}
    for n in list(graph.node):
        if n.domain == "snn" and n.op_type == "PrevSource":
            key = n.attribute[0].s.decode()
            src, out = n.input[0], n.output[0]
            source[key] = src
            graph.node.remove(n)
            for m in graph.node:
                for i, name in enumerate(m.input):
                    if name == out:
                        m.input[i] = src
            for o in graph.output:
                if o.name == out:
                    o.name = src
    for n in graph.node:
        if n.domain == "snn" and n.op_type == "Prev":
            a = n.attribute[0]
            key = a.s.decode()
            if key.startswith("\x01"):
                if key[1:] not in source:
                    raise RuntimeError("Prev %s: the value given to its update() does not reach the "
                                       "model's output; use what update() returns" % key[1:])
                a.s = source[key[1:]].encode()


def export(model, example_input, path, timesteps, encoding="direct", readout="steps", opset=17,
           input_name="x", output_name="y"):
    """Exports `model` (one timestep per call) as an ONNX model for snnc.

    example_input is one step's input [B, ...] (for encoding "sequence" too:
    the graph describes one step). timesteps, encoding ("direct": the same
    input every step; "sequence": [T, B, ...]) and readout (steps, count,
    rate, mean, last, max) go into the metadata snn.timesteps, snn.encoding
    and snn.readout. The model is exported in eval mode (batchnorm with its
    running statistics; after a Conv, PyTorch folds it into the Conv) and
    its neurons are reset before and after."""
    import onnx

    if encoding not in ("direct", "sequence"):
        raise ValueError("encoding must be direct or sequence")
    if readout not in ("steps", "count", "rate", "mean", "last", "max"):
        raise ValueError("readout must be steps, count, rate, mean, last or max")
    for name, m in model.named_modules():
        if isinstance(m, SpikingNeuron):
            m._snnc_name = name.replace(".", "_") or m.op
    reset(model)
    kw = {}
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kw["dynamo"] = False  # the symbolic() of autograd Functions needs the TorchScript exporter
    _export["active"] = True
    try:
        with warnings.catch_warnings():
            # custom nodes have no ONNX shape inference; their symbolic() sets the type
            warnings.filterwarnings("ignore", message="The shape inference of snn::")
            warnings.filterwarnings("ignore", message=".*_graph_op' is deprecated")
            torch.onnx.export(model, (example_input,), path, opset_version=opset,
                              custom_opsets={"snn": 1}, input_names=[input_name], output_names=[output_name],
                              dynamic_axes={input_name: {0: "N"}, output_name: {0: "N"}},
                              do_constant_folding=True, training=torch.onnx.TrainingMode.EVAL, **kw)
    finally:
        _export["active"] = False
        reset(model)
    m = onnx.load(path)
    m.graph.name = type(model).__name__
    _rename_nodes(m.graph)
    _resolve_prev(m.graph)
    del m.metadata_props[:]
    for k, v in (("snn.timesteps", str(int(timesteps))), ("snn.encoding", encoding),
                 ("snn.readout", readout)):
        p = m.metadata_props.add()
        p.key, p.value = k, v
    onnx.checker.check_model(m)
    onnx.save(m, path)
    return m
