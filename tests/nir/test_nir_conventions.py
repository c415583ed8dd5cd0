#!/usr/bin/env python3
"""--nir-convention norse, spyx and sinabs (docs/nir.md, section 4): a graph
written by the nir package (1.0.4) runs in snnc as Norse's, Spyx's and
Sinabs's from_nir step it, against NumPy ports of their documented steps
(written here from their sources as docs/nir.md cites them; Norse and Spyx
do not install beside Debian's torch 1.13, JAX being absent, and Sinabs's
importer needs a newer nirtorch than snnTorch's), in float32: spikes
identical, membranes within 1e-5 relative.

The graph: Affine -> LIF (tau, r, v_leak, v_threshold per neuron, v_leak
and r not 0 and 1, so that what each importer ignores shows) -> Affine ->
CubaLIF -> Output, and the first Affine -> IF -> Affine summed into the
CubaLIF's input. Then: the two conventions and the default give different
spikes on this graph (the options matter), the default dt of each
convention is its library's (Norse 1e-3 s, Spyx 1 s), and an import with
either convention does not export (NIR cannot say the peer's equations).

Sinabs reads tau in steps and v_leak must be 0, so it gets a graph of its
own: Affine -> LIF (tau 1.5-6 steps, thresholds per neuron) and Affine ->
IF, summed through two Affines into an LI -> Output. Its neurons emit
several spikes a step (some do, checked); the IF's membrane is clipped at
-v_th. Sinabs's refusals (v_leak not 0) are errors naming the node.
"""
import os
import tempfile

import numpy as np

import nir_util as U

nir = U.require("nir")

rng = np.random.default_rng(44)
T, B = 30, 3
C = U.Checker()
F32 = np.float32


def arr(*shape, lo=0.0, hi=1.0):
    return rng.uniform(lo, hi, size=shape).astype(F32)


def f32(v):
    return np.asarray(v, dtype=F32)


def graph(d):
    p = {}
    p["w1"], p["b1"] = arr(6, 4, lo=-0.3, hi=1.0), arr(6, lo=0.0, hi=0.2)
    p["lif"] = dict(tau=arr(6, lo=3e-3, hi=8e-3).astype(np.float64), r=arr(6, lo=0.5, hi=2.0),
                    v_leak=arr(6, lo=-0.2, hi=0.3), v_threshold=arr(6, lo=0.4, hi=0.9))
    p["if"] = dict(r=arr(6, lo=0.5, hi=1.5), v_threshold=arr(6, lo=0.6, hi=1.2))
    p["w2"], p["b2"] = arr(3, 6, lo=-0.5, hi=1.2), arr(3, lo=0.0, hi=0.1)
    p["w3"], p["b3"] = arr(3, 6, lo=-0.5, hi=1.0), arr(3, lo=0.0, hi=0.1)
    p["cuba"] = dict(tau_syn=arr(3, lo=2e-3, hi=5e-3).astype(np.float64),
                     tau_mem=arr(3, lo=4e-3, hi=9e-3).astype(np.float64), r=arr(3, lo=0.8, hi=1.5),
                     v_leak=arr(3, lo=-0.1, hi=0.1), v_threshold=arr(3, lo=1.5, hi=3.0), w_in=arr(3, lo=1, hi=2))
    path = os.path.join(d, "conv.nir")
    nir.write(path, nir.NIRGraph(nodes={
        "input": nir.Input(input_type=np.array([4])), "fc1": nir.Affine(p["w1"], p["b1"]),
        "lif": nir.LIF(**p["lif"]), "fc2": nir.Affine(p["w2"], p["b2"]), "if1": nir.IF(**p["if"]),
        "fc3": nir.Affine(p["w3"], p["b3"]), "cuba": nir.CubaLIF(**p["cuba"]),
        "output": nir.Output(output_type=np.array([3]))},
        edges=[("input", "fc1"), ("fc1", "lif"), ("lif", "fc2"), ("fc1", "if1"), ("if1", "fc3"), ("fc2", "cuba"),
               ("fc3", "cuba"), ("cuba", "output")]))
    return path, p


def sinabs_graph(d):
    p = {}
    p["w1"], p["b1"] = arr(6, 4, lo=-0.8, hi=1.0), arr(6, lo=0.0, hi=0.4)
    p["lif"] = dict(tau=arr(6, lo=1.5, hi=6.0).astype(np.float64), r=arr(6, lo=0.5, hi=2.0),
                    v_leak=np.zeros(6, F32), v_threshold=arr(6, lo=0.4, hi=0.9))
    p["if"] = dict(r=arr(6, lo=0.5, hi=1.5), v_threshold=arr(6, lo=0.5, hi=1.0))
    p["w2"], p["b2"] = arr(3, 6, lo=-0.5, hi=0.6), arr(3, lo=0.0, hi=0.1)
    p["w3"], p["b3"] = arr(3, 6, lo=-0.5, hi=0.5), arr(3, lo=0.0, hi=0.1)
    p["li"] = dict(tau=arr(3, lo=2.0, hi=8.0).astype(np.float64), r=np.ones(3, F32), v_leak=np.zeros(3, F32))
    path = os.path.join(d, "sinabs.nir")
    nir.write(path, nir.NIRGraph(nodes={
        "input": nir.Input(input_type=np.array([4])), "fc1": nir.Affine(p["w1"], p["b1"]),
        "lif": nir.LIF(**p["lif"]), "fc2": nir.Affine(p["w2"], p["b2"]), "if1": nir.IF(**p["if"]),
        "fc3": nir.Affine(p["w3"], p["b3"]), "li": nir.LI(**p["li"]),
        "output": nir.Output(output_type=np.array([3]))},
        edges=[("input", "fc1"), ("fc1", "lif"), ("lif", "fc2"), ("fc1", "if1"), ("if1", "fc3"), ("fc2", "li"),
               ("fc3", "li"), ("li", "output")]))
    return path, p


def affine(x, w, b):
    return (x.astype(np.float64) @ np.asarray(w, np.float64).T + np.asarray(b, np.float64)).astype(F32)


def norse_k(dt, tau):
    """Norse: dt * tau_mem_inv, tau_mem_inv = 1 / tau as a float32 tensor."""
    return (F32(dt) * (F32(1) / f32(tau))).astype(F32)


def run_norse(p, x, dt):
    """Norse's from_nir: LIF -> LIFBoxCell (r ignored, v starts at v_leak,
    reset to 0), IF -> IAFCell (v + x), CubaLIF -> w_in x, LIBoxCell towards
    the membrane's v_leak, times r, LIFBoxCell."""
    L, I, Cb = p["lif"], p["if"], p["cuba"]
    k, vl, th = norse_k(dt, L["tau"]), f32(L["v_leak"]), f32(L["v_threshold"])
    v = np.broadcast_to(vl, (B, 6)).astype(F32)
    vi, thi = np.zeros((B, 6), F32), f32(I["v_threshold"])
    ks, km, cvl = norse_k(dt, Cb["tau_syn"]), norse_k(dt, Cb["tau_mem"]), f32(Cb["v_leak"])
    ci = np.broadcast_to(cvl, (B, 3)).astype(F32)
    cv = np.broadcast_to(cvl, (B, 3)).astype(F32)
    ys, vs = [], []
    for t in range(T):
        a = affine(x[t], p["w1"], p["b1"])
        h = v + k * ((a + vl) - v)
        s = (h - th > 0).astype(F32)
        v = (F32(1) - s) * h + s * F32(0)
        hi = vi + a
        si = (hi - thi > 0).astype(F32)
        vi = (F32(1) - si) * hi
        xin = affine(s, p["w2"], p["b2"]) + affine(si, p["w3"], p["b3"])
        x1 = f32(Cb["w_in"]) * xin
        ci = ci + ks * ((cvl - ci) + x1)
        x2 = f32(Cb["r"]) * ci
        hc = cv + km * ((x2 + cvl) - cv)
        sc = (hc - f32(Cb["v_threshold"]) > 0).astype(F32)
        cv = (F32(1) - sc) * hc
        ys.append(sc)
        vs.append(v)
    return np.stack(ys), np.stack(vs)


def run_spyx(p, x, dt):
    """Spyx's from_nir: beta = 1 - dt / tau (float64, then float32, clipped
    to [0, 1]); the spike of the previous membrane, a subtractive reset;
    r, v_leak ignored. LIF: v = beta v + x - s th; IF: v = v + x - s th;
    CuBaLIF: v = v - s th; i = alpha i + x; v = beta v + i."""
    L, I, Cb = p["lif"], p["if"], p["cuba"]
    beta = np.clip((1 - dt / np.asarray(L["tau"], np.float64)).astype(F32), 0, 1)
    alpha = np.clip((1 - dt / np.asarray(Cb["tau_syn"], np.float64)).astype(F32), 0, 1)
    betac = np.clip((1 - dt / np.asarray(Cb["tau_mem"], np.float64)).astype(F32), 0, 1)
    th, thi, thc = f32(L["v_threshold"]), f32(I["v_threshold"]), f32(Cb["v_threshold"])
    v, vi = np.zeros((B, 6), F32), np.zeros((B, 6), F32)
    ci, cv = np.zeros((B, 3), F32), np.zeros((B, 3), F32)
    ys, vs = [], []
    for t in range(T):
        a = affine(x[t], p["w1"], p["b1"])
        s = (v - th > 0).astype(F32)
        v = beta * v + a - s * th
        si = (vi - thi > 0).astype(F32)
        vi = vi + a - si * thi
        xin = affine(s, p["w2"], p["b2"]) + affine(si, p["w3"], p["b3"])
        sc = (cv - thc > 0).astype(F32)
        cv = cv - sc * thc
        ci = alpha * ci + xin
        cv = betac * cv + ci
        ys.append(sc)
        vs.append(v)
    return np.stack(ys), np.stack(vs)


def sinabs_alpha(tau):
    """torch.exp(-1.0 / tau) of a float32 tensor: the quotient in float32,
    its exponential rounded to float32."""
    q = (F32(-1.0) / f32(tau)).astype(F32)
    return np.exp(q.astype(np.float64)).astype(F32)


def multispike(v, th):
    """Sinabs's MultiSpike: (v > 0) * torch.div(v, th, rounding_mode="trunc")."""
    return ((v > 0) * np.trunc((v / th).astype(F32))).astype(F32)


def run_sinabs(p, x):
    """Sinabs's from_nir: LIF -> LIFSqueeze(tau_mem = tau, norm_input =
    False): v = alpha v + x, MultiSpike, MembraneSubtract; IF ->
    IAFSqueeze(min_v_mem = -v_th): v = v + x (alpha 1), MultiSpike,
    MembraneSubtract, then relu(v - min_v_mem) + min_v_mem; LI ->
    ExpLeakSqueeze(norm_input = False): v = alpha v + x, emitted. r is
    ignored (LI: must be 1)."""
    L, I, Li = p["lif"], p["if"], p["li"]
    al, th = sinabs_alpha(L["tau"]), f32(L["v_threshold"])
    thi, ali = f32(I["v_threshold"]), sinabs_alpha(Li["tau"])
    v, vi, vo = np.zeros((B, 6), F32), np.zeros((B, 6), F32), np.zeros((B, 3), F32)
    ys, vs, vis, counts = [], [], [], []
    for t in range(T):
        a = affine(x[t], p["w1"], p["b1"])
        v = al * v + a
        s = multispike(v, th)
        v = v - s * th
        vi = F32(1.0) * vi + a
        si = multispike(vi, thi)
        vi = vi - si * thi
        vi = np.maximum(vi - (-thi), F32(0)) + (-thi)
        xin = affine(s, p["w2"], p["b2"]) + affine(si, p["w3"], p["b3"])
        vo = ali * vo + xin
        ys.append(vo)
        vs.append(v)
        vis.append(vi)
        counts.append(np.concatenate([s, si], axis=1))
    return np.stack(ys), np.stack(vs), np.stack(vis), np.stack(counts)


def check_sinabs(d, x):
    path, p = sinabs_graph(d)
    want, wv, wvi, counts = run_sinabs(p, x)
    try:
        y, got = U.run_nir(path, x, records=["lif", "lif.v", "if1", "if1.v"], extra=["--nir-convention", "sinabs"])
    except U.RunError as e:
        C.fail("sinabs: %s" % e)
        return
    if counts.max() >= 2 and (wvi <= -f32(p["if"]["v_threshold"]) + 1e-6).any():
        C.ok("sinabs: some neurons spike %d times in a step, some IF membranes are clipped at -v_th"
             % int(counts.max()))
    else:
        C.fail("sinabs: the graph shows neither several spikes a step nor the clip")
    C.spikes("sinabs: lif (spike counts)", got["lif"], counts[:, :, :6])
    C.spikes("sinabs: if1 (spike counts)", got["if1"], counts[:, :, 6:])
    C.close("sinabs: lif.v", got["lif.v"], wv)
    # the IF sums every step's input without a leak, so the Affine's
    # round-off (its sum order) accumulates: within 1e-5 of the threshold
    C.close("sinabs: if1.v", got["if1.v"], wvi, atol=1e-5)
    C.close("sinabs: output (LI membrane)", y, want)


def main():
    U.snnc_path()
    with tempfile.TemporaryDirectory(prefix="snnc-nir-conv-") as d:
        path, p = graph(d)
        x = arr(T, B, 4, lo=0, hi=1)
        outs = {}
        for conv, ref, dt in (("norse", run_norse, 1e-3), ("spyx", run_spyx, 1e-3)):
            want, wv = ref(p, x, dt)
            try:
                y, got = U.run_nir(path, x, records=["lif.v"], extra=["--nir-convention", conv, "--dt", str(dt)])
            except U.RunError as e:
                C.fail("%s: %s" % (conv, e))
                continue
            outs[conv] = y
            C.spikes("%s: output (CubaLIF spikes)" % conv, y, want)
            C.close("%s: lif.v" % conv, got["lif.v"], wv)
        # each library's default step
        for conv, ref, dt in (("norse", run_norse, 1e-3), ("spyx", run_spyx, 1.0)):
            want, _ = ref(p, x, dt)
            try:
                y, _ = U.run_nir(path, x, extra=["--nir-convention", conv])
            except U.RunError as e:
                C.fail("%s without --dt: %s" % (conv, e))
                continue
            if np.array_equal(y, want):
                C.ok("%s without --dt: dt = %g, as its from_nir (%d spikes)" % (conv, dt, int(want.sum())))
            else:
                C.fail("%s without --dt: %d of %d spikes differ from dt = %g" % (
                    conv, int((y != want).sum()), y.size, dt))
        y0, _ = U.run_nir(path, x, extra=["--dt", "1e-3"])
        if len(outs) == 2 and not np.array_equal(outs["norse"], y0) and not np.array_equal(outs["spyx"], y0) \
                and not np.array_equal(outs["norse"], outs["spyx"]):
            C.ok("nir, norse and spyx conventions: three different outputs on this graph")
        else:
            C.fail("the conventions do not differ on this graph: nothing is shown")
        for conv in ("norse", "spyx"):
            r = U.snnc(["export", path, "--nir-convention", conv, "-o", os.path.join(d, "x.nir")], check=False)
            want = "a model imported with --nir-convention %s" % conv
            if r.returncode == 1 and want in r.stderr and not os.path.exists(os.path.join(d, "x.nir")):
                C.ok("%s: export refused (%s)" % (conv, want))
            else:
                C.fail("%s: export: exit %d, %s" % (conv, r.returncode, r.stderr.strip()[-300:]))
        check_sinabs(d, arr(T, B, 4, lo=0, hi=1))
        r = U.snnc(["export", os.path.join(d, "sinabs.nir"), "--nir-convention", "sinabs", "--timesteps", "2",
                    "-o", os.path.join(d, "x.nir")], check=False)
        want = "a model imported with --nir-convention sinabs steps Sinabs's equations"
        if r.returncode == 1 and want in r.stderr and not os.path.exists(os.path.join(d, "x.nir")):
            C.ok("sinabs: export refused (%s)" % want)
        else:
            C.fail("sinabs: export: exit %d, %s" % (r.returncode, r.stderr.strip()[-300:]))
        # the first graph's LIF leaks towards v_leak != 0, which Sinabs refuses
        r = U.snnc(["info", path, "--nir-convention", "sinabs", "--timesteps", "2"], check=False)
        want = "node 'lif' (LIF): the sinabs convention: v_leak must be 0"
        if r.returncode == 1 and want in r.stderr:
            C.ok("sinabs: a LIF with v_leak != 0 refused (%s)" % want)
        else:
            C.fail("sinabs: v_leak != 0: exit %d, %s" % (r.returncode, r.stderr.strip()))
        r = U.snnc(["info", path, "--nir-convention", "lava", "--timesteps", "2"], check=False)
        if r.returncode == 2 and "'nir', 'snntorch', 'norse', 'spyx' or 'sinabs'" in r.stderr:
            C.ok("--nir-convention lava: refused, the choices named")
        else:
            C.fail("--nir-convention lava: exit %d, %s" % (r.returncode, r.stderr.strip()))
    C.done()


if __name__ == "__main__":
    main()
