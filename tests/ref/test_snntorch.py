"""snnc against snnTorch's snn.Leaky (0.9.4), step by step.

snn.Leaky per call, with reset_delay = True (the default):
    reset = (mem_prev - threshold > 0)             # detached; the previous spike
    "subtract": mem = beta * mem_prev + x - reset * threshold
    "zero":     mem = beta * ((1 - reset) * mem_prev) + x
    spk = (mem - threshold > 0)                    # strict
and it returns (spk, mem): mem is the potential before this step's spike
takes effect. The built-in LIF fires on H - v_th >= 0 and resets in the same
step, so:

- reset "zero" is LIF(tau = 1 / (1 - beta), v_th = threshold, v_reset = 0,
  decay_input = false, hard = true) when float32(1 - 1/tau) equals
  float32(beta): snnc's H is snnTorch's mem bit for bit, its v is
  mem * (1 - spk), and the spikes agree except where mem equals the
  threshold exactly (snnTorch does not fire there, snnc does, and the two
  runs part from there on);
- reset "subtract" has no built-in equivalent for beta < 1: snnTorch
  subtracts the threshold from the next step's potential after the decay
  (beta * mem + x - threshold), SpikingJelly's soft reset (and snnc's)
  subtracts it before (beta * (H - v_th) + x), so the trajectories differ
  by (1 - beta) * threshold after every spike. With beta = 1 it is
  IF(v_th = threshold, hard = false) up to round-off (the same sum in
  another order) and the strict comparison.

The neuron model SnnTorchLeaky below, written in snnc's language, reproduces
snn.Leaky exactly, for both resets, with or without reset_delay, including
the strict comparison: the test checks spikes and mem bit for bit. See
SNNTORCH_NOTES.md.
"""
import numpy as np

from snnc_ref import Checker, RunError, network, require, run, skip, spike_rate_ok

torch = require("torch")
torch.set_num_threads(1)
try:
    import snntorch as snn
except Exception as e:  # ImportError, or a broken install
    skip("snntorch cannot be imported (%s); scripts/install-test-peers.sh installs it" % e)

T, B = 16, 4
SHAPE = (3, 32)

# snn.Leaky in snnc's language. `r` is the reset flag of the previous step
# (mem_prev > threshold, computed as 1 - (threshold - mem_prev >= 0), which
# is the strict comparison since threshold - mem rounds to exactly
# -(mem - threshold)), detached as snnTorch detaches it. With reset_delay
# false, snnTorch also resets within the step: mem = u - (spk - reset) * threshold
# ("subtract") or u - (spk - reset) * u ("zero").
LEAKY = """
neuron SnnTorchLeaky(beta = 0.9, threshold = 1.0, subtract = true, reset_delay = true,
                     surrogate = atan(2.0)) {
  state mem = 0.0;
  r = detach(1 - spike(threshold - mem, surrogate));
  if subtract { u = beta * mem + x - r * threshold; }
  else { u = beta * ((1 - r) * mem) + x; }
  s = 1 - spike(threshold - u, surrogate);
  if reset_delay { mem = u; }
  else { if subtract { mem = u - (s - r) * threshold; } else { mem = u - (s - r) * u; } }
  emit s;
}
"""

# (beta, threshold, power-of-two input scale)
NEURONS = ((0.5, 1.0, 1.0), (0.75, 1.25, 0.5), (0.9, 0.5, 0.25), (0.95, 1.0, 0.25),
           (1.0, 1.0, 0.25))


def leaky(x, beta, threshold, reset, delay):
    """snnTorch on x [T, B, ...]: (spk, mem) per step."""
    lif = snn.Leaky(beta=beta, threshold=threshold, reset_mechanism=reset, reset_delay=delay)
    spk, mem = [], []
    with torch.no_grad():
        for t in range(x.shape[0]):
            s, m = lif(torch.from_numpy(x[t]))
            spk.append(s.clone())
            mem.append(m.clone())
    return torch.stack(spk).numpy(), torch.stack(mem).numpy()


def inputs(seed, dyadic):
    rng = np.random.default_rng(seed)
    if dyadic:
        # multiples of 1/8: with beta 0.5 or 0.75 every sum is exact and
        # the potential often equals the threshold exactly
        return (rng.integers(-4, 13, size=(T, B) + SHAPE) / 8.0).astype(np.float32)
    mu = rng.normal(0.7, 0.7, size=(1, 1) + SHAPE)
    return (mu + 0.8 * rng.standard_normal((T, B) + SHAPE)).astype(np.float32)


def run_layers(ck, x, layers, records, tag):
    model = network("SnnTorch", T, SHAPE, layers, layers[0][0], models=LEAKY)
    try:
        return run(model, x, records=records, init=0)[1]
    except RunError as e:
        ck.check(False, "%s: snnc failed: %s\n%s" % (tag, e, model))
        return None


def check_user_model(ck, x, tag):
    """SnnTorchLeaky against snn.Leaky: spikes and mem bit for bit."""
    cfgs = [(beta, th, k, reset, delay) for beta, th, k in NEURONS
            for reset in ("subtract", "zero") for delay in (True, False)]
    for part in (cfgs[:len(cfgs) // 2], cfgs[len(cfgs) // 2:]):
        layers, records = [], []
        for i, (beta, th, k, reset, delay) in enumerate(part):
            call = "SnnTorchLeaky(beta = %r, threshold = %r, subtract = %s, reset_delay = %s)" % (
                beta, th, "true" if reset == "subtract" else "false", "true" if delay else "false")
            layers.append(("n%d" % i, "x |> scale(%r) |> %s" % (k, call)))
            records += ["n%d" % i, "n%d.mem" % i]
        rec = run_layers(ck, x, layers, records, tag)
        if rec is None:
            continue
        for i, (beta, th, k, reset, delay) in enumerate(part):
            spk, mem = leaky(x * np.float32(k), beta, th, reset, delay)
            what = "%s: snn.Leaky(beta=%r, threshold=%r, reset_mechanism=%r, reset_delay=%r)" % (
                tag, beta, th, reset, delay)
            ck.same(rec["n%d" % i], spk, what + ": spk")
            ck.same(rec["n%d.mem" % i], mem, what + ": mem")
            spike_rate_ok(ck, spk, what, 0.05, 0.9)


def check_builtin_zero(ck, x, tag, dyadic):
    """Leaky(reset_mechanism="zero") as the built-in LIF."""
    cfgs = [(beta, th, k) for beta, th, k in NEURONS if beta < 1.0]
    layers, records = [], []
    for i, (beta, th, k) in enumerate(cfgs):
        tau = 1.0 / (1.0 - beta)
        ck.check(np.float32(1.0 - 1.0 / tau) == np.float32(beta),
                 "beta %r: float32(1 - 1/tau) = %r differs from float32(beta)"
                 % (beta, np.float32(1.0 - 1.0 / tau)))
        call = "LIF(tau = %r, v_th = %r, v_reset = 0.0, decay_input = false, hard = true)" % (tau, th)
        layers.append(("n%d" % i, "x |> scale(%r) |> %s" % (k, call)))
        records += ["n%d" % i, "n%d.v" % i]
    rec = run_layers(ck, x, layers, records, tag)
    if rec is None:
        return
    for i, (beta, th, k) in enumerate(cfgs):
        spk, mem = leaky(x * np.float32(k), beta, th, "zero", True)
        what = "%s: snn.Leaky(beta=%r, threshold=%r, reset_mechanism='zero') as LIF(tau=%r)" % (
            tag, beta, th, 1.0 / (1.0 - beta))
        got_s, got_v = rec["n%d" % i], rec["n%d.v" % i]
        if not dyadic:
            ck.same(got_s, spk, what + ": spk")
            ck.same(got_v, mem * (1 - spk), what + ": v = mem * (1 - spk)")
            continue
        # where the potential equals the threshold exactly the two differ:
        # each neuron agrees up to its first such step, and the first
        # disagreement is at such a step
        eq = mem == np.float32(th)
        first_eq = np.where(eq.any(0), eq.argmax(0), T)
        diff = got_s != spk
        first_diff = np.where(diff.any(0), diff.argmax(0), T)
        ck.check(np.all(first_diff >= first_eq),
                 what + ": spikes differ before the potential first equals the threshold")
        ck.check(np.all(first_diff[first_diff < T] == first_eq[first_diff < T]),
                 what + ": a first difference is not at a step where mem == threshold")
        t = np.arange(T).reshape((T,) + (1,) * (spk.ndim - 1))
        before = t < first_eq
        ck.same(got_s[before], spk[before], what + ": spk before mem == threshold")
        ck.same(got_v[before], (mem * (1 - spk))[before], what + ": v before mem == threshold")
        if beta in (0.5, 0.75):
            ck.check(diff.any(), what + ": expected snnc to fire where mem == threshold")


def check_if_subtract(ck, x, tag):
    """Leaky(beta=1, reset_mechanism="subtract") as IF(hard = false): the
    same sums in another order, so to round-off (random inputs only)."""
    th, k = 1.0, 0.25
    rec = run_layers(ck, x, [("n0", "x |> scale(%r) |> IF(v_th = %r, hard = false)" % (k, th))],
                     ["n0", "n0.v"], tag)
    if rec is None:
        return
    spk, mem = leaky(x * np.float32(k), 1.0, th, "subtract", True)
    what = "%s: snn.Leaky(beta=1.0, reset_mechanism='subtract') as IF(hard = false)" % tag
    ck.same(rec["n0"], spk, what + ": spk")
    ck.close(rtol=1e-5, atol=1e-5, got=rec["n0.v"], want=mem - spk * np.float32(th),
             what=what + ": v = mem - spk * threshold")


def main():
    ck = Checker()
    for seed, dyadic in ((1, False), (2, False), (3, True)):
        x = inputs(seed, dyadic)
        tag = "seed %d%s" % (seed, " (dyadic)" if dyadic else "")
        check_user_model(ck, x, tag)
        check_builtin_zero(ck, x, tag, dyadic)
        if not dyadic:
            check_if_subtract(ck, x, tag)
    ck.finish()


if __name__ == "__main__":
    main()
