"""Forward pass of every built-in neuron model against independent PyTorch
implementations written from DESIGN.md 2.1, in float32 and in the order of
operations of each model's reference: SpikingJelly's IFNode, LIFNode and
ParametricLIFNode (charge, fire on H - v_th >= 0, reset), the AR-LIF
authors' XLIF for ARLIF, and the DA-LIF update U = beta H + alpha X.

Three parts:
1. random inputs: many configurations side by side in one network reading
   the same [T, B, C, H, W] input (and a flat [T, B, F] one); every state and
   the spikes are recorded and compared (spikes exactly, states to 1e-5);
2. rounding edges: inputs built step by step so that every potential lands
   within a few float32 ulps of the threshold, where a different order of
   operations (x / tau versus x * (1 / tau), (H - v_th) - p versus
   H - (v_th + p), ...) fires differently: spikes must still be identical;
3. readouts: count, rate, mean, last and max against NumPy on the per-step
   output.

Nothing here reads the model definitions of the standard library: the
equations below are the reference.
"""
import ctypes
import ctypes.util
import math

import numpy as np

from snnc_ref import Checker, RunError, network, require, run, spike_rate_ok

torch = require("torch")
torch.set_num_threads(1)

SHAPE = (4, 5, 6)
T, B = 12, 3
SEEDS = (1, 2, 3)
RTOL, ATOL = 1e-5, 1e-6


# ---- reference models: init(shape) -> state, step(x, state, P) -> (emit, state)

def heaviside(u):
    return (u >= 0).to(torch.float32)


class IF:
    params = {}

    def __init__(self, v_th=1.0, v_reset=0.0, hard=True):
        self.v_th, self.v_reset, self.hard = v_th, v_reset, hard

    def init(self, shape):
        return {"v": torch.full(shape, self.v_reset if self.hard else 0.0)}

    def step(self, x, st, P):
        h = st["v"] + x
        s = heaviside(h - self.v_th)
        if self.hard:
            v = (1. - s) * h + s * self.v_reset
        else:
            v = h - s * self.v_th
        return s, {"v": v}

    def edge(self, st, P):
        return self.v_th - st["v"].double()


class LIF:
    """SpikingJelly LIFNode: the charge takes the simpler forms when
    v_reset is 0 (and with a soft reset), the general ones otherwise."""
    params = {}

    def __init__(self, tau=2.0, v_th=1.0, v_reset=0.0, decay_input=True, hard=True):
        self.tau, self.v_th, self.v_reset = tau, v_th, v_reset
        self.decay_input, self.hard = decay_input, hard

    def init(self, shape):
        return {"v": torch.full(shape, self.v_reset)}

    def charge(self, x, v, P):
        tau, vr = self.tau, self.v_reset
        if self.decay_input:
            if vr == 0.0:
                return v + (x - v) / tau
            return v + (x - (v - vr)) / tau
        if vr == 0.0:
            return v * (1. - 1. / tau) + x
        return v - (v - vr) / tau + x

    def step(self, x, st, P):
        h = self.charge(x, st["v"], P)
        s = heaviside(h - self.v_th)
        if self.hard:
            v = (1. - s) * h + s * self.v_reset
        else:
            v = h - s * self.v_th
        return s, {"v": v}

    def inv_tau(self, P):
        return 1.0 / self.tau

    def edge(self, st, P):
        """The input that puts H exactly on the threshold (in float64)."""
        v, vr, it, th = st["v"].double(), self.v_reset, self.inv_tau(P), self.v_th
        if self.decay_input:
            return (th - v) / it + (v - vr)
        return th - v + (v - vr) * it


class PLIF(LIF):
    """SpikingJelly ParametricLIFNode: 1/tau = sigmoid(w)."""
    params = {"w": None}

    def __init__(self, tau0=2.0, v_th=1.0, v_reset=0.0, decay_input=True, hard=True):
        LIF.__init__(self, tau0, v_th, v_reset, decay_input, hard)
        self.w0 = -math.log(tau0 - 1.)

    def charge(self, x, v, P):
        k, vr = torch.sigmoid(P["w"]), self.v_reset
        if self.decay_input:
            if vr == 0.0:
                return v + (x - v) * k
            return v + (x - (v - vr)) * k
        if vr == 0.0:
            return v * (1. - k) + x
        return v - (v - vr) * k + x

    def inv_tau(self, P):
        return torch.sigmoid(P["w"]).double()


class LI:
    params = {}

    def __init__(self, tau=2.0):
        self.tau = tau

    def init(self, shape):
        return {"v": torch.zeros(shape)}

    def step(self, x, st, P):
        v = st["v"] + (x - st["v"]) / self.tau
        return v, {"v": v}


class ARLIF:
    """The AR-LIF authors' XLIF, operation by operation: the threshold term
    is subtracted after v_th, and the reset adds it after sigmoid(m)."""
    params = {"a": None, "c": None}

    def __init__(self, leak=0.5, v_th=1.0):
        self.leak, self.v_th = leak, v_th

    def init(self, shape):
        return {"v": torch.zeros(shape), "m": torch.zeros(shape)}

    def step(self, x, st, P):
        v, m = st["v"], st["m"]
        h = v * self.leak + x
        p = P["a"].tanh() * x.tanh()
        s = heaviside(h - self.v_th - p)
        g = torch.sigmoid(P["c"] * x)
        m = m.relu() * g + -(-m).relu() * (1 - g)
        m = m + s * torch.sigmoid(x)
        m = m - (1 - s) * torch.sigmoid(x)
        v = h - s * (self.v_th + torch.sigmoid(m) + p)
        return s, {"v": v, "m": m}


class DALIF:
    params = {"ws": None, "wt": None}

    def __init__(self, v_th=1.0, alpha0=0.5, beta0=0.5, hard=True):
        self.v_th, self.hard = v_th, hard
        self.ws0 = math.log(alpha0 / (1 - alpha0))
        self.wt0 = math.log(beta0 / (1 - beta0))

    def init(self, shape):
        return {"v": torch.zeros(shape)}

    def step(self, x, st, P):
        u = torch.sigmoid(P["wt"]) * st["v"] + torch.sigmoid(P["ws"]) * x
        s = heaviside(u - self.v_th)
        if self.hard:
            v = u * (1 - s)
        else:
            v = u - s * self.v_th
        return s, {"v": v}


def simulate(model, x, P):
    """x: float32 [T, B, ...] array. Returns {'out': [T, ...], state: [T, ...]}."""
    x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    st = model.init(x.shape[1:])
    out = {"out": []}
    for t in range(x.shape[0]):
        y, st = model.step(x[t], st, P)
        out["out"].append(y)
        for k, v in st.items():
            out.setdefault(k, []).append(v)
    return {k: torch.stack(v).numpy() for k, v in out.items()}


# ---- configurations

class Cfg:
    """One layer: the snnc call, the reference, how parameters are drawn,
    a power-of-two input scale (exact in float32) and the granularity."""

    def __init__(self, call, model, scale=1.0, gran="layer", draw=None):
        self.call, self.model, self.scale, self.gran = call, model, scale, gran
        self.draw = draw or {}


def pshape(gran, shape):
    return {"layer": (1,), "channel": (shape[0],), "neuron": tuple(shape)}[gran]


def bshape(gran, shape):
    """The shape a parameter broadcasts with over [B, *shape]."""
    if gran == "channel":
        return (shape[0],) + (1,) * (len(shape) - 1)
    return pshape(gran, shape)


def draw_params(cfg, rng, shape):
    P = {}
    for name, (mean, sd) in cfg.draw.items():
        P[name] = (mean + sd * rng.standard_normal(pshape(cfg.gran, shape))).astype(np.float32)
    return P


def torch_params(cfg, P, shape):
    return {k: torch.from_numpy(v.reshape(bshape(cfg.gran, shape))) for k, v in P.items()}


def configs():
    cs = []
    # IF
    cs.append(Cfg("IF()", IF(), 0.25))
    cs.append(Cfg("IF(hard = false)", IF(hard=False), 0.25))
    cs.append(Cfg("IF(v_th = 0.7, v_reset = -0.3)", IF(v_th=0.7, v_reset=-0.3), 0.25))
    cs.append(Cfg("IF(v_th = 1.25, hard = false, surrogate = atan(2.0))",
                  IF(v_th=1.25, hard=False), 0.25))
    # LIF: decay_input x reset x v_reset, several tau
    for tau in (2.0, 3.0, 7.5):
        for decay in (True, False):
            for hard in (True, False):
                for vr in (0.0, -0.4) if hard else (0.0, 0.2):
                    call = "LIF(tau = %r, v_reset = %r, decay_input = %s, hard = %s)" % (
                        tau, vr, str(decay).lower(), str(hard).lower())
                    scale = {2.0: 1.0, 3.0: 2.0, 7.5: 4.0}[tau] if decay else 0.5 if tau < 5 else 0.25
                    if vr < 0:
                        scale *= 2.0
                    cs.append(Cfg(call, LIF(tau, 1.0, vr, decay, hard), scale))
    cs.append(Cfg("LIF()", LIF(), 1.0))
    cs.append(Cfg("LIF(tau = 16.0, v_th = 0.5, detach_reset = true, surrogate = triangle(1.0))",
                  LIF(16.0, 0.5), 4.0))
    # PLIF: tau0, granularity, decay_input, reset
    for tau0, gran in ((2.0, "layer"), (3.0, "channel"), (5.0, "layer"), (1.5, "channel")):
        for decay, hard, vr in ((True, True, 0.0), (False, False, 0.0), (True, False, 0.3),
                                (False, True, -0.25)):
            call = "PLIF(tau0 = %r, v_reset = %r, decay_input = %s, hard = %s, granularity = %s)" % (
                tau0, vr, str(decay).lower(), str(hard).lower(), gran)
            m = PLIF(tau0, 1.0, vr, decay, hard)
            scale = (1.0 if tau0 < 2.5 else 2.0) if decay else 1.0 if vr < 0 else 0.5
            cs.append(Cfg(call, m, scale, gran, {"w": (m.w0, 0.4)}))
    # LI
    cs.append(Cfg("LI()", LI()))
    cs.append(Cfg("LI(tau = 5.0)", LI(5.0)))
    # ARLIF: random a and c
    for gran in ("layer", "channel"):
        cs.append(Cfg("ARLIF(granularity = %s)" % gran, ARLIF(), 1.0, gran,
                      {"a": (0.0, 0.8), "c": (1.0, 0.8)}))
    cs.append(Cfg("ARLIF(leak = 0.75, v_th = 1.5, surrogate = sigmoid(4.0))", ARLIF(0.75, 1.5),
                  1.0, "layer", {"a": (0.3, 0.5), "c": (-0.5, 0.5)}))
    # DALIF: granularity, reset, random ws and wt
    for gran in ("layer", "channel"):
        for hard in (True, False):
            call = "DALIF(hard = %s, granularity = %s)" % (str(hard).lower(), gran)
            cs.append(Cfg(call, DALIF(hard=hard), 2.0, gran, {"ws": (0.0, 0.7), "wt": (0.0, 0.7)}))
    m = DALIF(v_th=0.8, alpha0=0.3, beta0=0.8, hard=False)
    cs.append(Cfg("DALIF(v_th = 0.8, alpha0 = 0.3, beta0 = 0.8, hard = false, granularity = channel)",
                  m, 2.0, "channel", {"ws": (m.ws0, 0.5), "wt": (m.wt0, 0.5)}))
    return cs


def per_neuron_configs():
    """granularity = neuron: one parameter per neuron, of shape [C, H, W]."""
    m = PLIF(3.0, 1.0, 0.0, True, True)
    a = DALIF(hard=True)
    b = DALIF(hard=False)
    return [
        Cfg("PLIF(tau0 = 3.0, granularity = neuron)", m, 1.0, "neuron", {"w": (m.w0, 0.4)}),
        Cfg("ARLIF(granularity = neuron)", ARLIF(), 1.0, "neuron", {"a": (0.0, 0.8), "c": (1.0, 0.8)}),
        Cfg("DALIF(granularity = neuron)", a, 2.0, "neuron", {"ws": (0.0, 0.7), "wt": (0.0, 0.7)}),
        Cfg("DALIF(hard = false, granularity = neuron)", b, 2.0, "neuron",
            {"ws": (0.0, 0.7), "wt": (0.0, 0.7)}),
    ]


def make_input(rng, shape, T, B):
    """A per-neuron drive plus noise, so that neurons fire at varied rates."""
    mu = rng.normal(0.7, 0.7, size=(1, 1) + tuple(shape))
    x = mu + 0.8 * rng.standard_normal((T, B) + tuple(shape))
    return x.astype(np.float32)


def state_names(model):
    return ["m", "v"] if isinstance(model, ARLIF) else ["v"]


def chunks(cfgs, most=32):
    """Splits the configurations into networks of at most `most` records
    (snnc's limit per run)."""
    out, cur, n = [], [], 0
    for c in cfgs:
        k = 1 + len(state_names(c.model))
        if n + k > most:
            out.append(cur)
            cur, n = [], 0
        cur.append(c)
        n += k
    return out + [cur] if cur else out


def compare_layers(ck, cfgs, shape, seed, tag):
    """Part 1: every configuration side by side, one snnc run."""
    rng = np.random.default_rng(seed)
    x = make_input(rng, shape, T, B)
    layers, weights, records, Ps = [], {}, [], []
    for i, c in enumerate(cfgs):
        name = "n%d" % i
        src = "x" if c.scale == 1.0 else "x |> scale(%r)" % c.scale
        layers.append((name, "%s |> %s" % (src, c.call)))
        P = draw_params(c, rng, shape)
        Ps.append(P)
        for k, v in P.items():
            weights["%s.%s" % (name, k)] = v
        records.append(name)
        records += ["%s.%s" % (name, s) for s in state_names(c.model)]
    model = network("Neurons", T, shape, layers, "n0")
    try:
        y, rec = run(model, x, weights=weights or None, records=records,
                     init=None if weights else 0)
    except RunError as e:
        ck.check(False, "%s seed %d: snnc failed: %s\n%s" % (tag, seed, e, model))
        return
    ck.same(y, rec["n0"], "%s seed %d: output n0 readout steps equals its record" % (tag, seed))
    for i, c in enumerate(cfgs):
        name = "n%d" % i
        xs = x * np.float32(c.scale)
        want = simulate(c.model, xs, torch_params(c, Ps[i], shape))
        what = "%s seed %d %s = %s" % (tag, seed, name, c.call)
        if isinstance(c.model, LI):
            ck.close(rtol=RTOL, atol=ATOL, got=rec[name], want=want["out"], what=what + ": v (emitted)")
        else:
            ck.same(rec[name], want["out"], what + ": spikes")
            spike_rate_ok(ck, want["out"], what, 0.05, 0.9)
        for s in state_names(c.model):
            ck.close(rtol=RTOL, atol=ATOL, got=rec["%s.%s" % (name, s)], want=want[s],
                     what="%s: %s" % (what, s))


# ---- part 2: rounding edges

def safe_tanh(values, f):
    """Keeps the values whose f (float64) is far from a float32 rounding
    boundary and is computed the same by torch (and libm's float version)."""
    libm = None
    lib = ctypes.util.find_library("m")
    if lib:
        libm = ctypes.CDLL(lib)
        libm.tanhf.restype = ctypes.c_float
        libm.tanhf.argtypes = [ctypes.c_float]
    keep = []
    for a in values:
        a = np.float32(a)
        exact = math.tanh(float(a))
        r = np.float32(exact)
        ulp = float(np.spacing(r))
        if abs(exact - float(r)) > 0.25 * ulp:
            continue
        if float(f(torch.tensor([a]))[0]) != float(r):
            continue
        if libm is not None and np.float32(libm.tanhf(float(a))) != r:
            continue
        keep.append(a)
    return np.array(keep, dtype=np.float32)


def edge_input(model, P, T, B, shape, rng):
    """Builds x step by step on the reference's own state so that the
    potential of every neuron lands within +-3 ulps of the threshold."""
    st = model.init((B,) + tuple(shape))
    xs = []
    for t in range(T):
        x = model.edge(st, P).numpy().astype(np.float32)
        x = x + rng.integers(-3, 4, size=x.shape) * np.spacing(x)
        x = x.astype(np.float32)
        xs.append(x)
        _, st = model.step(torch.from_numpy(x), st, P)
    return np.stack(xs)


def edge_configs():
    cs = []
    for vth, vr, hard in ((1.0, 0.0, True), (1.0, 0.0, False), (0.7, -0.3, True)):
        cs.append(Cfg("IF(v_th = %r, v_reset = %r, hard = %s)" % (vth, vr, str(hard).lower()),
                      IF(vth, vr, hard)))
    for tau in (2.0, 3.0, 7.5):
        for decay in (True, False):
            for hard, vr in ((True, 0.0), (False, 0.0), (True, -0.4), (False, 0.2)):
                cs.append(Cfg("LIF(tau = %r, v_reset = %r, decay_input = %s, hard = %s)" % (
                    tau, vr, str(decay).lower(), str(hard).lower()), LIF(tau, 1.0, vr, decay, hard)))
    # sigmoid(w) is exact for these w in any implementation: 1/2, 1/3, 1/5, 2/3
    for decay in (True, False):
        for hard, vr in ((True, 0.0), (False, 0.0), (True, -0.4), (False, 0.2)):
            cs.append(Cfg("PLIF(v_reset = %r, decay_input = %s, hard = %s, granularity = channel)" % (
                vr, str(decay).lower(), str(hard).lower()), PLIF(2.0, 1.0, vr, decay, hard),
                gran="channel"))
    return cs


def compare_edges(ck):
    rng = np.random.default_rng(7)
    shape = (4, 64)
    Tn, Bn = 10, 2
    wvals = np.array([0.0, -math.log(2.0), -math.log(4.0), math.log(2.0)], dtype=np.float32)
    for c in edge_configs():
        P = {"w": wvals} if isinstance(c.model, PLIF) else {}
        tp = torch_params(c, P, shape)
        x = edge_input(c.model, tp, Tn, Bn, shape, rng)
        want = simulate(c.model, x, tp)
        model = network("Edge", Tn, shape, [("n", "x |> " + c.call)], "n")
        what = "edge %s" % c.call
        try:
            y, rec = run(model, x, weights={"n.w": wvals} if P else None, records=["n.v"],
                         init=None if P else 0)
        except RunError as e:
            ck.check(False, "%s: snnc failed: %s" % (what, e))
            continue
        spike_rate_ok(ck, want["out"], what, 0.2, 0.8)
        ck.same(y, want["out"], what + ": spikes")
        ck.close(rtol=RTOL, atol=ATOL, got=rec["n.v"], want=want["v"], what=what + ": v")

    # AR-LIF: step 1 drives v to a negative value without a spike, step 2
    # uses x >= 10 (tanh(x) = 1 exactly) so that H - v_th - tanh(a) lands
    # within a few ulps of 0; tanh(a) is checked to be the same in torch and
    # libm. With leak 0.5 and v_th 1, two channels take an a whose
    # 1 + tanh(a) rounds down onto a value H can take exactly: there
    # (H - 1) - tanh(a) < 0 (no spike) but H - (1 + tanh(a)) = 0 (a spike),
    # so any other association of the threshold fires differently.
    cand = safe_tanh(rng.uniform(0.6, 2.0, 4000), torch.tanh)
    tas = torch.tanh(torch.from_numpy(cand)).numpy()
    resid = np.round(tas.astype(np.float64) * 2.0 ** 24) % 16
    sharp = cand[(resid == 1) & (tas >= 0.5)][:2]
    plain = cand[resid != 1][:2]
    assert len(sharp) == 2 and len(plain) == 2, "no safe values of a"
    a = np.concatenate([sharp, plain]).astype(np.float32)
    ta = torch.tanh(torch.from_numpy(a)).double().numpy().reshape(4, 1)
    shape = (4, 256)
    for leak, vth in ((0.5, 1.0), (0.75, 1.5)):
        m = ARLIF(leak, vth)
        x2 = rng.uniform(10.0, 15.5, size=(Bn,) + shape).astype(np.float32)
        x1 = ((vth + ta - x2) / leak).astype(np.float32)
        x1 = (x1 + rng.integers(-3, 4, size=x1.shape) * np.spacing(x1)).astype(np.float32)
        if leak == 0.5 and vth == 1.0:
            # H = 1 + tanh(a) - 2^-24 + k 2^-20, exactly (k = 0 in half of them)
            k = rng.integers(-2, 3, size=(Bn, 2, 256)) * (rng.random((Bn, 2, 256)) < 0.5)
            h = (1.0 + ta[:2] - 2.0 ** -24) + k * 2.0 ** -20
            x1[:, :2] = (2.0 * (h - x2[:, :2].astype(np.float64))).astype(np.float32)
            assert np.all(0.5 * x1[:, :2].astype(np.float64) + x2[:, :2] == h)
        x = np.stack([x1, x2])
        P = {"a": a, "c": (1.0 + 0.5 * rng.standard_normal(4)).astype(np.float32)}
        c = Cfg("ARLIF(leak = %r, v_th = %r, granularity = channel)" % (leak, vth), m, gran="channel")
        want = simulate(m, x, torch_params(c, P, shape))
        model = network("EdgeAR", 2, shape, [("n", "x |> " + c.call)], "n")
        what = "edge %s" % c.call
        try:
            y, rec = run(model, x, weights={"n.a": P["a"], "n.c": P["c"]}, records=["n.v", "n.m"])
        except RunError as e:
            ck.check(False, "%s: snnc failed: %s" % (what, e))
            continue
        spike_rate_ok(ck, want["out"][1], what + " step 2", 0.2, 0.8)
        ck.same(y, want["out"], what + ": spikes")
        ck.close(rtol=RTOL, atol=ATOL, got=rec["n.v"], want=want["v"], what=what + ": v")
        ck.close(rtol=RTOL, atol=ATOL, got=rec["n.m"], want=want["m"], what=what + ": m")


# ---- part 3: readouts

def compare_readouts(ck):
    rng = np.random.default_rng(11)
    shape = (3, 8)
    x = make_input(rng, shape, T, B)
    layers = [("li", "x |> LI(tau = 3.0)"), ("sp", "x |> LIF()"),
              ("ar", "x |> ARLIF()")]
    weights = {"ar.a": np.array([0.3], np.float32), "ar.c": np.array([1.2], np.float32)}
    for lname, _ in layers:
        for kind in ("count", "rate", "mean", "last", "max"):
            model = network("Readout", T, shape, layers, lname, kind)
            what = "readout %s of %s" % (kind, lname)
            try:
                y, rec = run(model, x, weights=weights, records=[lname])
            except RunError as e:
                ck.check(False, "%s: snnc failed: %s" % (what, e))
                continue
            steps = rec[lname].astype(np.float64)
            want = {"count": steps.sum(0), "rate": steps.sum(0) / T, "mean": steps.mean(0),
                    "last": steps[-1], "max": steps.max(0)}[kind]
            ck.close(rtol=1e-6, atol=1e-6, got=y, want=want, what=what)


def main():
    ck = Checker()
    cfgs = configs()
    for seed in SEEDS:
        for i, part in enumerate(chunks(cfgs)):
            compare_layers(ck, part, SHAPE, 100 * seed + i, "[4,5,6]")
    # a flat input: channel granularity is per feature
    flat = [c for c in cfgs if "channel" in c.call or c.call in ("LIF()", "IF()")]
    for i, part in enumerate(chunks(flat)):
        compare_layers(ck, part, (40,), 400 + i, "[40]")
    # per-neuron granularity
    for seed in SEEDS[:2]:
        compare_layers(ck, per_neuron_configs(), SHAPE, seed, "per neuron")
    compare_edges(ck)
    compare_readouts(ck)
    ck.finish()


if __name__ == "__main__":
    main()
