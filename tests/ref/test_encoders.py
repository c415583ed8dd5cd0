"""The input encoders `encode rate` and `encode latency` against independent
references.

Rate: the generator is recomputed here from its definition in
docs/language.md ("Encoders"), in Python's integers, and the spikes are
drawn with PyTorch from those numbers (u < clamp(x, 0, 1)); a dense + LIF
network (SpikingJelly's LIF equations, written here in PyTorch) runs on
them. snnc run must give the same input spikes and layer spikes, bit for
bit, and the same membranes within 1e-5, on the portable target and on
every x86 target this machine runs. Then the properties the generator
promises: the same spikes with 1 and 2 threads, with a forward computed in
chunks, and for a sample whatever batch it is in; other spikes with
another seed; 0 when no seed is given. The training forward (snnc grad)
draws the same spikes from its seed, and the input's gradient is zero.

Latency: spike times derived by hand for chosen intensities, and, where
snnTorch is installed, snnTorch's spikegen.latency(linear=True,
normalize=True, clip=True) on random intensities (the definition
docs/language.md cites).
"""
import numpy as np

from snnc_ref import Checker, RunError, grad, network, require, run, spike_rate_ok

torch = require("torch")
torch.set_num_threads(1)

M64 = (1 << 64) - 1


def mix(z):
    """splitmix64's step and output function, as docs/language.md defines it."""
    z = (z + 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def uniforms(seed, T, B, n):
    """u(seed, t, b, i) for every step, sample and element: [T, B, n] float64
    (each value is k / 2^24, exact in float32)."""
    u = np.empty((T, B, n))
    for t in range(T):
        for b in range(B):
            h = mix(mix(mix(seed) ^ t) ^ b)
            for i in range(n):
                u[t, b, i] = (mix(h ^ i) >> 40) / float(1 << 24)
    return u


def rate_spikes(x, seed, T):
    B, n = x.shape
    u = torch.tensor(uniforms(seed, T, B, n), dtype=torch.float32)
    return (u < torch.clamp(torch.tensor(x), 0.0, 1.0)).to(torch.float32)


def dense_lif(s, W, bias, tau=2.0):
    """dense then SpikingJelly's LIFNode (decay_input, hard reset to 0, v_th 1)."""
    v = torch.zeros(s.shape[1], W.shape[0])
    spikes, vs = [], []
    for t in range(s.shape[0]):
        x = s[t] @ torch.tensor(W).T + torch.tensor(bias)
        h = v + (x - v) / tau
        sp = (h - 1.0 >= 0).to(torch.float32)
        v = h * (1.0 - sp)
        spikes.append(sp)
        vs.append(v)
    return torch.stack(spikes).numpy(), torch.stack(vs).numpy()


def targets():
    """The portable target and every x86 target this CPU runs natively (the
    encoder is the same C in every target's API; tests/backend/test_x86.py
    covers the x86 targets through SIMDe on other CPUs)."""
    flags = set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    found = ["c"] + (["avx512"] if "avx512f" in flags else []) + (["avx2"] if {"avx2", "fma"} <= flags else [])
    if len(found) == 1:
        print("SKIPPED: the x86 targets (this CPU has neither AVX-512F nor AVX2 with FMA)")
    return found


T, B, N, H = 6, 4, 24, 10
MODEL = network("Rate", T, (N,), [("h", "x |> dense(%d) |> LIF(tau = 2.0)" % H)], "h",
                readout="count", encode="rate")


def check_rate(c):
    rng = np.random.default_rng(7)
    x = rng.uniform(-0.2, 1.2, size=(B, N)).astype(np.float32)  # some outside [0, 1]
    x[0, :4] = [0.0, 1.0, -1.0, 2.0]
    W = rng.normal(0, 0.8, size=(H, N)).astype(np.float32)
    bias = rng.normal(0.2, 0.2, size=H).astype(np.float32)
    w = {"h_dense.weight": W, "h_dense.bias": bias}
    recs = ("x", "h", "h.v")
    ts = targets()
    print("targets: " + ", ".join(ts))
    for seed in (0, 5):
        s_in = rate_spikes(x, seed, T)
        want_s, want_v = dense_lif(s_in, W, bias)
        spike_rate_ok(c, s_in.numpy(), "rate input, seed %d" % seed, lo=0.2, hi=0.8)
        spike_rate_ok(c, want_s, "reference layer spikes, seed %d" % seed, lo=0.1, hi=0.9)
        c.check(not s_in[:, 0, 0].any() and s_in[:, 0, 1].all() and not s_in[:, 0, 2].any()
                and s_in[:, 0, 3].all(), "seed %d: intensities 0 and below never spike, 1 and above always" % seed)
        for tg in ts:
            what = "seed %d, target %s" % (seed, tg)
            extra = ["--target", tg] + (["--seed", str(seed)] if seed else [])
            y, r = run(MODEL, x, weights=w, records=recs, extra=extra)
            c.same(r["x"], s_in.numpy(), what + ": input spikes")
            c.same(r["h"], want_s, what + ": layer spikes")
            c.close(got=r["h.v"], want=want_v, what=what + ": membrane")
            c.same(y, want_s.sum(0), what + ": forward's spike count")
    # what the generator promises
    s5 = rate_spikes(x, 5, T).numpy()
    base = ["--target", "c", "--seed", "5"]
    for extra, what in ((["--threads", "1"], "1 thread"), (["--threads", "2"], "2 threads"),
                        (["--chunk", "4"], "a forward in chunks of 4 steps"),
                        (["--chunk", "1"], "a forward step by step")):
        y, r = run(MODEL, x, weights=w, records=("x",), extra=base + extra)
        c.same(r["x"], s5, "seed 5, %s: input spikes" % what)
        c.same(y, dense_lif(torch.tensor(s5), W, bias)[0].sum(0), "seed 5, %s: forward's spike count" % what)
    _, r = run(MODEL, x[:2], weights=w, records=("x",), extra=base)
    c.same(r["x"], s5[:, :2], "seed 5: the first two samples alone draw what they draw in a batch of 4")
    _, r6 = run(MODEL, x, weights=w, records=("x",), extra=["--target", "c", "--seed", "6"])
    differ = float(np.mean(r6["x"] != s5))
    c.check(0.1 < differ < 0.9, "seeds 5 and 6 give different spikes (%.2f of them differ)" % differ)
    # the training forward draws from its seed (snnc grad: 0 with --weights); dL/dinput is 0
    gout = np.ones((T, B, H), np.float32)
    _, dx, ys = grad(MODEL, x, gout, weights=w, extra=["--target", "c"])
    c.same(ys, dense_lif(rate_spikes(x, 0, T), W, bias)[0], "snnc grad: the training forward's spikes")
    c.same(dx, np.zeros_like(x), "snnc grad: dL/dinput of a rate-encoded input is 0")


# Latency: T = 8, so a spike time is rint(7 (1 - min(x, 1))) (ties to even).
LAT = [  # intensity, spike time or None
    (1.0, 0), (2.5, 0), (0.9, 1), (0.75, 2), (0.5, 4),  # 3.5: the even neighbour
    (0.3, 5), (0.25, 5), (0.2, 6), (0.05, 7), (0.01, 7),  # 5.25, 5.6, 6.65, 6.93
    (0.0099, None), (0.0, None), (-0.5, None),
]


def check_latency(c):
    T8 = 8
    x = np.array([[v for v, _ in LAT]], np.float32)
    n = x.shape[1]
    model = network("Lat", T8, (n,), [("h", "x |> scale(1.0)")], "h", readout="steps", encode="latency")
    for tg in targets():
        y, _ = run(model, x, extra=["--target", tg])
        want = np.zeros((T8, 1, n), np.float32)
        for i, (_, t) in enumerate(LAT):
            if t is not None:
                want[t, 0, i] = 1
        c.same(y, want, "latency, target %s: hand-derived spike times" % tg)
    # another threshold: 0.3 fires, 0.25 no longer
    model = network("Lat", T8, (n,), [("h", "x |> scale(1.0)")], "h", readout="steps",
                    encode="latency(threshold = 0.3)")
    y, _ = run(model, x, extra=["--target", "c"])
    fired = y.sum(0)[0]
    c.same(fired, np.array([1.0 if np.float32(v) >= np.float32(0.3) else 0.0 for v, _ in LAT]),
           "latency(threshold = 0.3): which elements fire")
    try:
        import snntorch.spikegen as spikegen
    except ImportError as e:
        print("SKIPPED: the comparison with snnTorch's spikegen.latency (%s)" % e)
        return
    rng = np.random.default_rng(3)
    for T2, thr in ((8, 0.01), (25, 0.1), (60, 0.05)):
        xr = rng.uniform(-0.3, 1.3, size=(5, 40)).astype(np.float32)
        xr[0, :8] = [0.0, 1.0, 0.5, thr, 1.5, -1.0, 0.999, np.float32(thr) * 0.99]
        model = network("Lat", T2, (40,), [("h", "x |> scale(1.0)")], "h", readout="steps",
                        encode="latency(threshold = %r)" % thr)
        want = spikegen.latency(torch.clamp(torch.tensor(xr), 0.0, 1.0), num_steps=T2, threshold=thr,
                                linear=True, normalize=True, clip=True).numpy()
        for tg in targets():
            y, _ = run(model, xr, extra=["--target", tg])
            c.same(y, want, "latency T=%d threshold %g, target %s: snnTorch's spikegen.latency" % (T2, thr, tg))


def main():
    c = Checker()
    try:
        check_rate(c)
        check_latency(c)
    except RunError as e:
        c.check(False, "snnc failed: %s" % e)
    c.finish()


if __name__ == "__main__":
    main()
