#!/usr/bin/env python3
"""snnc export --format nir (docs/nir.md, section "Writing NIR").

1. Networks of the language with weights (an MLP of LIF, IF and LI, a
   conv net with PLIF per channel, avgpool, scale and an undecayed LIF, a
   recurrent net with prev() of a neuron and of a dense layer) exported
   and read by the nir package (1.0.4): the graph validates (its types
   inferred and checked), and its nodes, shapes and parameters equal the
   values derived here from the safetensors weights with the mapping of
   docs/nir.md (tau = k dt, r, thresholds one float below, ...).
2. Round trips: `snnc run` of the exported file equals `snnc run` of the
   network (spikes identical, membranes within 1e-5 relative); the graphs
   of the import tests (test_nir_graphs.py) imported, exported and
   imported again give the same network: the same generated code and
   weights, and exporting once more writes the same bytes.
3. The exported graph read and written again by the nir package itself
   (nir.write) runs the same in snnc.
4. nir 1.0.8 (installed apart, in .peers/nir108, by
   scripts/install-test-peers.sh): graphs it writes, their datasets
   gzip-compressed and chunked (checked with h5py), against the NumPy
   reference of nir_util.py; and snnc's export of them read by nir 1.0.8.
5. Errors: what NIR cannot express names the layer and its line, exits
   with 1 and leaves no file; --format checks its value.
"""
import glob
import os
import subprocess
import sys
import tempfile

import numpy as np

import nir_util as U

nir = U.require("nir")
h5py = U.require("h5py")
U.require("torch")  # test_nir_graphs' references
import test_nir_graphs as G  # noqa: E402

from snnc_ref import write_safetensors  # noqa: E402

F32 = np.float32
C = U.Checker()
rng = np.random.default_rng(26)
PEERS = os.environ.get("PYTHONPATH", "").split(os.pathsep)


def arr(*shape, lo=-1.0, hi=1.0):
    return rng.uniform(lo, hi, size=shape).astype(F32)


def below(v):
    """The largest float32 below v: NIR fires on h > v_th, snnc on h >= v_th."""
    return np.nextafter(F32(v), F32(-np.inf))


def check_eq(what, got, want, exact=True):
    got = np.asarray(got)
    want = np.broadcast_to(np.asarray(want), got.shape) if got.size else np.asarray(want)
    if got.shape != np.asarray(want).shape:
        C.fail("%s: shape %s, expected %s" % (what, got.shape, np.asarray(want).shape))
    elif exact and np.array_equal(got, want):
        C.ok("%s: %d values equal" % (what, got.size))
    elif not exact and np.allclose(got, want, rtol=1e-12, atol=0):
        C.ok("%s: %d values within 1e-12" % (what, got.size))
    else:
        C.fail("%s: got %s, expected %s" % (what, np.ravel(got)[:4], np.ravel(want)[:4]))


def nir108_env():
    """The environment that imports nir 1.0.8 from .peers/nir108, or None."""
    where = [os.path.join(p, "nir108") for p in PEERS if p and os.path.isdir(os.path.join(p, "nir108", "nir"))]
    return dict(os.environ, PYTHONPATH=where[0]) if where else None


VALIDATE108 = r"""
import sys, nir
g = nir.read(sys.argv[1])
g.infer_types()
print(" ".join(sorted("%s:%s" % (k, type(v).__name__) for k, v in g.nodes.items())))
"""


def validate(path, name):
    """nir.read, then the nir package's own type inference and check; a
    file with a v_reset (nir >= 1.0.6) by nir 1.0.8."""
    with h5py.File(path, "r") as f:
        version = f["version"][()].decode()
    if version != "1.0.4":
        env = nir108_env()
        if not env:
            print("skip: %s is a nir %s file, and nir 1.0.8 is not installed" % (name, version))
            return None
        p = subprocess.run([sys.executable, "-c", VALIDATE108, path], env=env, capture_output=True, text=True)
        (C.ok if p.returncode == 0 else C.fail)("%s: nir 1.0.8 reads it (a nir %s file), its types infer: %s" % (
            name, version, (p.stdout or p.stderr).strip()[-300:]))
        return None
    g = nir.read(path)
    try:
        g._forward_type_inference()
        g._check_types()
        C.ok("%s: nir %s reads it, its types infer and check" % (name, nir.version))
    except Exception as e:  # noqa: BLE001 (whatever nir raises)
        C.fail("%s: nir's type check: %r" % (name, e))
    return g


def export(model, out, extra=(), check=True):
    return U.snnc(["export", model, "-o", out] + list(extra), check=check)


def run(model, x, records=(), extra=()):
    return U.run_nir(model, x, records=records, extra=list(extra))


# ---- 1 and 2: networks of the language ----

MLP = """network Mlp {
  timesteps 12;
  input x : [1, 4, 4] encode sequence;
  f = x |> flatten;
  d1 = f |> dense(12);
  h1 = d1 |> LIF(tau = 2.0);
  d2 = h1 |> dense(6, bias = false);
  h2 = d2 |> IF(v_th = 0.75);
  d3 = h2 |> dense(3);
  out = d3 |> LI(tau = 3.0);
  output out readout steps;
}
"""

CONV = """network Conv {
  timesteps 10;
  input x : [2, 8, 8] encode sequence;
  c1 = x |> conv2d(out = 4, kernel = 3, padding = 1);
  p1 = c1 |> PLIF(tau0 = 3.0, granularity = channel);
  a1 = p1 |> avgpool(kernel = 2);
  f = a1 |> flatten;
  d1 = f |> dense(5);
  s1 = d1 |> scale(0.5);
  out = s1 |> LIF(tau = 4.0, v_th = 0.5, decay_input = false);
  output out readout steps;
}
"""

REC = """network Rec {
  timesteps 16;
  input x : [6] encode sequence;
  d1 = x |> dense(8);
  r1 = prev(h) |> dense(8, bias = false);
  h = d1 |> add(r1) |> LIF(tau = 4.0);
  d2 = h |> dense(4);
  y = d2 |> add(prev(d2)) |> LI(tau = 2.0);
  output y readout steps;
}
"""


def mlp_case(d, dt):
    w = {"d1.weight": arr(12, 16, lo=-0.3, hi=0.6), "d1.bias": arr(12, lo=0, hi=0.2),
         "d2.weight": arr(6, 12, lo=-0.4, hi=0.9), "d3.weight": arr(3, 6), "d3.bias": arr(3, lo=-0.1, hi=0.1)}
    x = arr(12, 3, 1, 4, 4, lo=0, hi=1.5)

    def want(g):
        check_eq("mlp: d1 Affine weight", g.nodes["d1"].weight, w["d1.weight"])
        check_eq("mlp: d1 Affine bias", g.nodes["d1"].bias, w["d1.bias"])
        check_eq("mlp: d2 Linear weight", g.nodes["d2"].weight, w["d2.weight"])
        check_eq("mlp: f Flatten input", g.nodes["f"].input_type["input"], [1, 4, 4])
        check_eq("mlp: Input shape", g.nodes["x"].input_type["input"], [1, 4, 4])
        check_eq("mlp: Output shape", g.nodes["output"].output_type["output"], [3])
        h1, h2, out = g.nodes["h1"], g.nodes["h2"], g.nodes["out"]
        check_eq("mlp: h1 LIF tau = 2 dt", h1.tau, np.full(12, 2.0 * dt), exact=False)
        check_eq("mlp: h1 LIF r, v_leak", np.stack([h1.r, h1.v_leak]), np.stack([np.ones(12), np.zeros(12)]))
        check_eq("mlp: h1 LIF v_threshold", h1.v_threshold, np.full(12, below(1.0)))
        check_eq("mlp: h2 IF r = 1/dt", h2.r, np.full(6, 1 / dt), exact=False)
        check_eq("mlp: h2 IF v_threshold", h2.v_threshold, np.full(6, below(0.75)))
        check_eq("mlp: out LI tau = 3 dt", out.tau, np.full(3, 3.0 * dt), exact=False)
        check_eq("mlp: out LI r, v_leak", np.stack([out.r, out.v_leak]), np.stack([np.ones(3), np.zeros(3)]))
    return MLP, w, x, ["h1.v", "h2", "out"], want


def conv_case(d, dt):
    w = {"c1.weight": arr(4, 2, 3, 3, lo=-0.3, hi=0.6), "c1.bias": arr(4, lo=0, hi=0.2),
         "p1.w": arr(4, lo=-1.5, hi=0.5), "d1.weight": arr(5, 64, lo=-0.2, hi=0.5), "d1.bias": arr(5)}
    x = arr(10, 2, 2, 8, 8, lo=0, hi=1.5)

    def want(g):
        c = g.nodes["c1"]
        check_eq("conv: c1 Conv2d weight", c.weight, w["c1.weight"])
        check_eq("conv: c1 Conv2d bias", c.bias, w["c1.bias"])
        check_eq("conv: c1 stride, padding, dilation", np.stack([c.stride, c.padding, c.dilation]),
                 [[1, 1], [1, 1], [1, 1]])
        check_eq("conv: c1 groups, input_shape", np.r_[c.groups, c.input_shape], [1, 8, 8])
        a = g.nodes["a1"]
        check_eq("conv: a1 AvgPool2d", np.stack([a.kernel_size, a.stride, a.padding]), [[2, 2], [2, 2], [0, 0]])
        k = 1 / (1 + np.exp(-w["p1.w"].astype(np.float64)))  # PLIF: 1/tau = sigmoid(w), per channel
        p = g.nodes["p1"]
        check_eq("conv: p1 PLIF tau = dt / sigmoid(w)", p.tau, np.broadcast_to((dt / k)[:, None, None], (4, 8, 8)),
                 exact=False)
        check_eq("conv: p1 v_threshold", p.v_threshold, np.full((4, 8, 8), below(1.0)))
        check_eq("conv: s1 Scale", g.nodes["s1"].scale, np.full(5, 0.5))
        o = g.nodes["out"]
        check_eq("conv: out LIF (decay_input false) tau, r", np.stack([o.tau, o.r]),
                 np.stack([np.full(5, 4 * dt), np.full(5, 4.0)]), exact=False)
        check_eq("conv: out v_threshold", o.v_threshold, np.full(5, below(0.5)))
    return CONV, w, x, ["p1.v", "out.v", "out"], want


def rec_case(d, dt):
    w = {"d1.weight": arr(8, 6, lo=-0.2, hi=0.8), "d1.bias": arr(8, lo=0, hi=0.2),
         "r1.weight": arr(8, 8, lo=-0.5, hi=0.4), "d2.weight": arr(4, 8), "d2.bias": arr(4, lo=-0.1, hi=0.1)}
    x = arr(16, 3, 6, lo=0, hi=1.5)

    def want(g):
        e = set(g.edges)
        C.ok("rec: prev(h) is the recurrent edge h -> r1") if ("h", "r1") in e and ("r1", "h") in e else \
            C.fail("rec: edges %s" % sorted(e))
        delays = [k for k, n in g.nodes.items() if isinstance(n, nir.Delay)]
        if len(delays) == 1 and ("d2", delays[0]) in e and (delays[0], "y") in e:
            check_eq("rec: prev(d2) is a Delay of dt", g.nodes[delays[0]].delay, np.full(4, dt), exact=False)
        else:
            C.fail("rec: expected one Delay d2 -> y, got %s" % delays)
        check_eq("rec: r1 Linear weight", g.nodes["r1"].weight, w["r1.weight"])
    return REC, w, x, ["h.v", "h", "y"], want


def language_nets(d):
    for make, dt in ((mlp_case, 1e-4), (mlp_case, 1e-3), (conv_case, 1e-4), (rec_case, 1e-4)):
        text, w, x, recs, want = make(d, dt)
        name = "%s (dt %g)" % (make.__name__[:-5], dt)
        src = os.path.join(d, make.__name__ + ".snn")
        with open(src, "w") as f:
            f.write(text)
        wp = os.path.join(d, make.__name__ + ".safetensors")
        write_safetensors(wp, w)
        out = os.path.join(d, make.__name__ + ".nir")
        export(src, out, ["--weights", wp, "--dt", str(dt)])
        want(validate(out, name))
        # 2: the round trip in snnc
        with tempfile.TemporaryDirectory() as t:
            xin, y1 = os.path.join(t, "x.npy"), os.path.join(t, "y.npy")
            np.save(xin, x)
            cmd = ["run", src, "--weights", wp, "--input", xin, "--output", y1, "--target", "c"]
            files = {r: os.path.join(t, "r%d.npy" % i) for i, r in enumerate(recs)}
            for r, f in files.items():
                cmd += ["--record", "%s=%s" % (r, f)]
            U.snnc(cmd)
            ya, ra = np.load(y1), {r: np.load(f) for r, f in files.items()}
        yb, rb = run(out, x, recs, ["--dt", str(dt)])
        spiking_out = make is not mlp_case and make is not rec_case
        (C.spikes if spiking_out else C.close)("%s: snnc run of the .nir, output" % name, yb, ya)
        for r in recs:
            (C.close if r.endswith(".v") or r in ("out", "y") else C.spikes)(
                "%s: snnc run of the .nir, %s" % (name, r), rb[r], ra[r])
        # 3: written again by the nir package
        again = out[:-4] + "_nirpkg.nir"
        nir.write(again, nir.read(out))
        yc, _ = run(again, x, extra=["--dt", str(dt)])
        if np.array_equal(yc, yb):
            C.ok("%s: the graph written again by nir.write runs the same" % name)
        else:
            C.fail("%s: the graph written again by nir.write runs differently" % name)


# ---- 2: import, export, import again ----

def h5_items(path):
    out = {}
    with h5py.File(path, "r") as f:
        def visit(k, v):
            if isinstance(v, h5py.Dataset):
                out[k] = (str(v.dtype), v[()].tobytes() if v.dtype.kind != "O" else repr(v[()]))
        f.visititems(visit)
    return out


def compiled(model, extra):
    """The generated code and weights of `snnc compile` of model (run in
    its folder, so that the paths in the code's comments are alike)."""
    d = os.path.dirname(model)
    out = os.path.join(d, "gen")
    p = subprocess.run([U.snnc_path(), "compile", os.path.basename(model), "-o", "gen", "--timesteps", "5"] + extra,
                       cwd=d, capture_output=True, text=True)
    if p.returncode:
        raise U.RunError(p.stderr)
    files = {}
    for f in sorted(glob.glob(os.path.join(out, "*"))):
        with open(f, "rb") as fh:
            files[os.path.basename(f)] = fh.read()
    return files


def fixed_point(d):
    for make in (G.lif_net, G.cuba_net, G.misc_net, G.recurrent_net, G.delay_net, G.conv_net, G.conv1d_net,
                 G.flatten_net, G.flatten2d_net):
        path, x, extra, want, recs = make(d)
        name = os.path.basename(path)
        os.makedirs(os.path.join(d, "a", make.__name__))
        os.makedirs(os.path.join(d, "b", make.__name__))
        a = os.path.join(d, "a", make.__name__, "net.nir")  # the file as the nir package wrote it
        b = os.path.join(d, "b", make.__name__, "net.nir")  # imported and exported by snnc
        os.rename(path, a)
        try:
            export(a, b, extra)
        except U.RunError as e:
            C.fail("%s: export: %s" % (name, e))
            continue
        g = validate(b, name + " exported")
        if make is G.conv1d_net and g is not None:
            # the Conv1d nodes come back as Conv1d, their values [C, L] as the nir package wrote them
            with h5py.File(a, "r") as fa:
                # a dilated kernel is exported as the kernel with zeros between its taps (docs/nir.md)
                want = {k: (v["type"][()].decode(), v["weight"].shape[:2] + (
                            (v["weight"].shape[2] - 1) * int(v["dilation"][()]) + 1,))
                        for k, v in fa["node/nodes"].items() if k.startswith("conv")}
            got = {k: (type(v).__name__, v.weight.shape) for k, v in g.nodes.items() if k.startswith("conv")}
            shapes = {k: list(v.input_type["input"]) for k, v in g.nodes.items() if k in ("input_", "lif1", "if2")}
            if got == want and shapes == {"input_": [2, 12], "lif1": [4, 12], "if2": [4, 6]}:
                C.ok("%s: exported as Conv1d with weights [out, in, k], values [C, L]: %s" % (name, got))
            else:
                C.fail("%s: exported %s (expected %s), shapes %s" % (name, got, want, shapes))
        if make is G.flatten_net and g is not None:
            # the partial Flatten comes back as one, between a Conv2d and a Conv1d
            f = g.nodes.get("flat1")
            got = f and (type(f).__name__, int(f.start_dim), int(f.end_dim), list(f.input_type["input"]),
                         type(g.nodes["conv1"]).__name__, type(g.nodes["conv2"]).__name__)
            want = ("Flatten", 1, 2, [3, 4, 6], "Conv2d", "Conv1d")
            (C.ok if got == want else C.fail)("%s: exported flat1, conv1, conv2 as %s (expected %s)" % (
                name, got, want))
        ya, ra = run(a, x, list(recs), extra)
        yb, rb = run(b, x, list(recs), extra)
        spiking = name not in ("conv_net.nir", "conv1d_net.nir", "misc_net.nir", "flatten_net.nir",
                               "flatten2d_net.nir")
        (C.spikes if spiking else C.close)(name + ": exported, the same output", yb, ya)
        for r in recs:
            (C.close if "." in r else C.spikes)("%s: exported, the same %s" % (name, r), rb[r], ra[r])
        ca, cb = compiled(a, extra), compiled(b, extra)
        if ca == cb and len(ca) >= 3:
            C.ok("%s: import, export, import: the same code and weights (%s)" % (name, ", ".join(sorted(ca))))
        else:
            diff = [k for k in set(ca) | set(cb) if ca.get(k) != cb.get(k)]
            C.fail("%s: import, export, import: %s differ" % (name, diff))
        c = b[:-4] + "_again.nir"
        export(b, c, extra)
        with open(b, "rb") as fb, open(c, "rb") as fc:
            same = fb.read() == fc.read()
        if h5_items(b) == h5_items(c) and same:
            C.ok("%s: exported twice, the same %d datasets, the same bytes" % (name, len(h5_items(b))))
        else:
            C.fail("%s: exported twice, the files differ (datasets equal: %s)" % (name, h5_items(b) == h5_items(c)))


# ---- 4: nir 1.0.8 ----

NIR108_SCRIPT = r"""
import sys, numpy as np, nir
assert nir.version == "1.0.8", nir.version
d = sys.argv[1]
rng = np.random.default_rng(108)
u = lambda lo, hi, *s: rng.uniform(lo, hi, size=s).astype(np.float32)
p = {}
# LIF with a per-neuron reset (a field of nir >= 1.0.6), an IF, a CubaLI
p["w1"], p["b1"] = u(-0.5, 1.0, 10, 6), u(-0.1, 0.2, 10)
p["tau"], p["r"], p["vl"] = u(2e-4, 1e-3, 10).astype(np.float64), u(1, 3, 10), u(-0.2, 0.2, 10)
p["vth"], p["vr"] = u(0.5, 1.0, 10), u(-0.3, 0.1, 10)
p["w2"] = u(-0.5, 1.0, 5, 10)
p["rif"], p["thif"], p["vrif"] = u(1000, 4000, 5), u(0.5, 1.0, 5), u(-0.2, 0.0, 5)
p["w3"], p["b3"] = u(-1, 1, 3, 5), u(-0.1, 0.1, 3)
p["ts"], p["tm"], p["rc"], p["vlc"], p["win"] = (u(2e-3, 5e-3, 3), u(5e-3, 1e-2, 3), u(1, 2, 3),
                                                  u(-0.1, 0.1, 3), u(1, 3, 3))
g = nir.NIRGraph(nodes={
    "input": nir.Input(input_type=np.array([6])), "fc1": nir.Affine(p["w1"], p["b1"]),
    "lif": nir.LIF(tau=p["tau"], r=p["r"], v_leak=p["vl"], v_threshold=p["vth"], v_reset=p["vr"]),
    "fc2": nir.Linear(p["w2"]), "if1": nir.IF(r=p["rif"], v_threshold=p["thif"], v_reset=p["vrif"]),
    "fc3": nir.Affine(p["w3"], p["b3"]),
    "cli": nir.CubaLI(tau_syn=p["ts"], tau_mem=p["tm"], r=p["rc"], v_leak=p["vlc"], w_in=p["win"]),
    "output": nir.Output(output_type=np.array([3]))},
    edges=[("input", "fc1"), ("fc1", "lif"), ("lif", "fc2"), ("fc2", "if1"), ("if1", "fc3"), ("fc3", "cli"),
           ("cli", "output")])
nir.write(d + "/mixed108.nir", g)
# a conv net
p["cw"], p["cb"] = u(-0.3, 0.6, 3, 2, 3, 3), u(0, 0.2, 3)
p["ctau"] = np.full((3, 4, 4), 4e-3)
g = nir.NIRGraph(nodes={
    "input": nir.Input(input_type=np.array([2, 7, 7])),
    "conv": nir.Conv2d(input_shape=(7, 7), weight=p["cw"], bias=p["cb"], stride=2, padding=1, dilation=1, groups=1),
    "lif": nir.LIF(tau=p["ctau"], r=np.full((3, 4, 4), 3.0), v_leak=np.zeros((3, 4, 4)),
                   v_threshold=np.full((3, 4, 4), 0.6)),
    "output": nir.Output(output_type=np.array([3, 4, 4]))},
    edges=[("input", "conv"), ("conv", "lif"), ("lif", "output")])
nir.write(d + "/conv108.nir", g)
np.savez(d + "/params108.npz", **p)
"""



def nir108(d):
    env = nir108_env()
    if not env:
        print("skip (part 4): nir 1.0.8 is not installed in .peers/nir108 (scripts/install-test-peers.sh)")
        return False
    p = subprocess.run([sys.executable, "-c", NIR108_SCRIPT, d], env=env, capture_output=True, text=True)
    if p.returncode:
        C.fail("nir 1.0.8 could not write its graphs: %s" % p.stderr.strip()[-400:])
        return True
    P = dict(np.load(os.path.join(d, "params108.npz")))
    for f in ("mixed108.nir", "conv108.nir"):
        with h5py.File(os.path.join(d, f), "r") as h:
            arrays = []
            h.visititems(lambda k, v: arrays.append(v) if isinstance(v, h5py.Dataset) and v.dtype.kind == "f"
                         and v.size > 1 else None)
            gz = [v for v in arrays if v.compression == "gzip" and v.chunks is not None]
            if arrays and len(gz) == len(arrays):
                C.ok("%s: all %d arrays of numbers gzip-compressed and chunked (h5py)" % (f, len(arrays)))
            else:
                C.fail("%s: %d of %d arrays compressed: nothing compressed is tested" % (f, len(gz), len(arrays)))
    T, B, dt = 20, 3, 1e-4
    x = arr(T, B, 6, lo=0, hi=1.5)
    n1 = U.LIF(P["tau"], P["r"], P["vl"], P["vth"], P["vr"], dt, (10,))
    n2 = U.IF(P["rif"], P["thif"], P["vrif"], dt, (5,))
    n3 = U.CubaLIF(P["ts"], P["tm"], P["rc"], P["vlc"], None, None, P["win"], dt, (3,), spiking=False)
    s1, s2, ys = [], [], []
    for t in range(T):
        a = n1.step(U.dense(x[t], P["w1"], P["b1"]))
        b = n2.step(U.dense(a, P["w2"]))
        ys.append(n3.step(U.dense(b, P["w3"], P["b3"])))
        s1.append(a)
        s2.append(b)
    y, r = run(os.path.join(d, "mixed108.nir"), x, ["lif", "if1"])
    C.spikes("nir 1.0.8 mixed108.nir: LIF with v_reset, spikes", r["lif"], np.stack(s1))
    C.spikes("nir 1.0.8 mixed108.nir: IF with v_reset, spikes", r["if1"], np.stack(s2))
    C.close("nir 1.0.8 mixed108.nir: CubaLI output", y, np.stack(ys))
    xc = arr(T, B, 2, 7, 7, lo=0, hi=1.5)
    torch = U.require("torch")
    nc = U.LIF(P["ctau"], np.full((3, 4, 4), 3.0), 0.0, 0.6, 0.0, dt, (3, 4, 4))
    want = []
    for t in range(T):
        cur = torch.nn.functional.conv2d(torch.from_numpy(xc[t]).double(), torch.from_numpy(P["cw"]).double(),
                                         torch.from_numpy(P["cb"]).double(), stride=2, padding=1).numpy()
        want.append(nc.step(cur.astype(F32)))
    yc, _ = run(os.path.join(d, "conv108.nir"), xc)
    C.spikes("nir 1.0.8 conv108.nir: output", yc, np.stack(want))
    # snnc's export of the 1.0.8 file, read by nir 1.0.8 (v_reset written)
    out = os.path.join(d, "mixed108_export.nir")
    export(os.path.join(d, "mixed108.nir"), out)
    p = subprocess.run([sys.executable, "-c", VALIDATE108, out], env=env, capture_output=True, text=True)
    if p.returncode == 0 and "if1:IF" in p.stdout and "lif:LIF" in p.stdout and "cli:CubaLI" in p.stdout:
        C.ok("nir 1.0.8 reads snnc's export of mixed108.nir and infers its types")
    else:
        C.fail("nir 1.0.8 on snnc's export: %s %s" % (p.stdout.strip(), p.stderr.strip()[-300:]))
    with h5py.File(out, "r") as h:
        check_eq("mixed108 exported: lif v_reset", h["node/nodes/lif/v_reset"][()], P["vr"].astype(F32))
    yb, _ = run(out, x)
    C.close("mixed108 exported: the same output", yb, y)
    return True


# ---- 5: errors ----

BAD = [
    ("soft reset", "h = d |> LIF(tau = 2.0, hard = false);", "h", "a soft reset"),
    ("v_reset", "h = d |> IF(v_reset = 0.5);", "h", "v_reset must be 0"),
    ("AR-LIF", "h = d |> ARLIF();", "h", "NIR has no node for this neuron model"),
    ("maxpool", None, "m", "NIR has no node for maxpool"),
    ("readout", "readout", None, "readout mean cannot be expressed"),
    ("encode rate", "encode", None, "'encode rate' cannot be expressed in NIR"),
    ("a value added to itself", "h = d |> add(d) |> LIF();", "h", "adds the value of 'd' to itself"),
    ("a reshape that is no flatten", "h = d |> reshape([3, 1]) |> LIF();", "h_reshape",
     "NIR's Flatten cannot make [3,1] of [3]"),
]


def errors(d):
    for what, layer, name, msg in BAD:
        if what == "maxpool":
            text = ("network Bad {\n  timesteps 4;\n  input x : [1, 4, 4] encode sequence;\n"
                    "  m = x |> maxpool(kernel = 2);\n  h = m |> flatten |> dense(3) |> LIF();\n"
                    "  output h readout steps;\n}\n")
            line = 4
        else:
            text = ("network Bad {\n  timesteps 4;\n  input x : [6] encode %s;\n  d = x |> dense(3);\n"
                    "  %s\n  output h readout %s;\n}\n" % ("rate" if layer == "encode" else "sequence",
                                                          layer if name else "h = d |> LIF();",
                                                          "mean" if layer == "readout" else "steps"))
            line = 5 if name else 1
        src = os.path.join(d, "bad.snn")
        with open(src, "w") as f:
            f.write(text)
        out = os.path.join(d, "bad.nir")
        p = export(src, out, ["--init", "1"], check=False)
        where = "%s:%d:" % (src, line)
        if (p.returncode == 1 and msg in p.stderr and where in p.stderr and (not name or "'%s'" % name in p.stderr)
                and not os.path.exists(out) and not glob.glob(out + "*")):
            C.ok("export error, %s: exit 1, '%s' at %s, no file" % (what, msg, where))
        else:
            C.fail("export error, %s: exit %d, %r, file left: %s" % (what, p.returncode, p.stderr.strip(),
                                                                   glob.glob(out + "*")))
    # the snntorch convention's models are snnTorch's equations
    src = os.path.join(d, "st.nir")
    nir.write(src, nir.NIRGraph(nodes={
        "input": nir.Input(input_type=np.array([3])), "fc": nir.Linear(arr(2, 3)),
        "lif": nir.LIF(tau=np.full(2, 1e-3), r=np.full(2, 10.0), v_leak=np.zeros(2), v_threshold=np.ones(2)),
        "output": nir.Output(output_type=np.array([2]))}, edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")]))
    p = export(src, os.path.join(d, "st_out.nir"), ["--nir-convention", "snntorch"], check=False)
    ok = p.returncode == 1 and "--nir-convention snntorch" in p.stderr and not os.path.exists(os.path.join(d, "st_out.nir"))
    (C.ok if ok else C.fail)("export error, a model of the snntorch convention: %r" % p.stderr.strip()[:200])
    # --format
    p = export(src, os.path.join(d, "x.out"), ["--format", "hdf5"], check=False)
    ok = p.returncode == 2 and "--format needs 'onnx' or 'nir', got 'hdf5'" in p.stderr
    (C.ok if ok else C.fail)("--format hdf5: exit %d, %r" % (p.returncode, p.stderr.strip()[:120]))
    out = os.path.join(d, "graph.bin")
    export(src, out, ["--format", "nir"])
    g = nir.read(out)
    (C.ok if "lif" in g.nodes else C.fail)("--format nir -o graph.bin writes NIR (nodes %s)" % sorted(g.nodes))


def main():
    U.snnc_path()
    with tempfile.TemporaryDirectory(prefix="snnc-nirx-") as d:
        language_nets(d)
        fixed_point(d)
        os.makedirs(os.path.join(d, "v108"))
        nir108(os.path.join(d, "v108"))
        errors(d)
    C.done()


if __name__ == "__main__":
    main()
