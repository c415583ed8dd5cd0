#!/usr/bin/env python3
"""Weight files, --init and inputs of `snnc run` and `snnc compile
--embed-weights`.

1. --init SEED fills the parameters as PyTorch initializes the same layer
   types. The network reads its input through a dense layer (fan_in 72), a
   grouped conv2d whose kernel covers the whole input (fan_in 36), a
   batchnorm and the neuron models with learnable parameters (PLIF, AR-LIF,
   DA-LIF). Its batch is the 72 one-hot inputs and a zero input, so the
   recorded dense and conv outputs are the weights (plus the bias) and the
   bias themselves. Checked: every weight and bias lies in
   U(-1/sqrt(fan_in), 1/sqrt(fan_in)): within the bound, reaching close to
   it, mean and variance of a uniform (5 sigma), a Kolmogorov-Smirnov
   distance to the uniform law; the conv's groups see only their own input
   channels; batchnorm is the identity up to 1/sqrt(1 + eps) (weight 1,
   bias 0, mean 0, var 1); the neuron parameters have their model's initial
   value (PLIF 1/tau = 1/tau0, AR-LIF threshold v_th and gate sigmoid(x),
   DA-LIF alpha = beta = 0.5). The same seed gives the same bits, another
   seed other values, and tensors in a --weights file override --init.
2. Errors, each exit status 1 with a message naming what is wrong: a
   missing tensor (its name), a tensor of the wrong shape (its name and both
   shapes), NaN or Inf in a tensor (its name), an input of the wrong shape
   (the expected shape), NaN or Inf in the input (its position), a record of an unknown layer, an output or record
   file that cannot be written, neither --weights nor --init (the first
   tensor's name). Each for `snnc run` and, where it applies, for `snnc
   compile --embed-weights`. In every failing case no output file
   is left behind (output, records, generated code, temporary files) and an
   output file that existed before keeps its bytes.
3. A network without parameters runs with neither --weights nor --init
   (spike counts derived by hand).
4. Code with --embed-weights computes bit for bit what the code that loads
   the same weights from the file computes (output and records), with a
   driver program written here that runs a batch smaller than the code's
   largest, and what `snnc run` gives.
"""
import os
import re
import shutil
import subprocess
import tempfile

import numpy as np

from snnc_ref import Checker, snnc_path, write_safetensors

NET = """
network InitNet {
  timesteps 2;
  input x : [8, 3, 3] encode direct;
  d  = x |> flatten |> dense(512);
  c  = x |> conv2d(256, 3, groups = 2);
  bn = x |> batchnorm();
  pl = x |> flatten |> PLIF(tau0 = 3.0);
  ar = x |> flatten |> ARLIF(granularity = channel);
  da = x |> DALIF(granularity = channel);
  li = d |> scale(0.25) |> LI(tau = 2.0);
  output li readout last;
}
"""
SHAPES = {
    "d.weight": (512, 72), "d.bias": (512,),
    "c.weight": (256, 4, 3, 3), "c.bias": (256,),
    "bn.weight": (8,), "bn.bias": (8,), "bn.running_mean": (8,), "bn.running_var": (8,),
    "pl.w": (1,), "ar.a": (72,), "ar.c": (72,), "da.ws": (8,), "da.wt": (8,),
}
RECORDS = ["d", "c", "bn", "pl.k", "ar", "ar.m", "ar.v", "ar.g", "da.u", "li"]
NB = 73  # 72 one-hot inputs and a zero input

HARNESS = r"""
#include <stdio.h>
#include <stdlib.h>
#include "initnet.h"
/* argv: input.bin output.bin probes.bin [weights] */
int main(int argc, char **argv)
{
    int B = %(B)d, t, k;
    size_t nin = (size_t)B * INITNET_INPUT_SIZE, nout = (size_t)B * INITNET_OUTPUT_SIZE;
    float *ws = calloc(INITNET_WORKSPACE_FLOATS + 1, sizeof(float));
    float *in = malloc(nin * sizeof(float)), *out = malloc(nout * sizeof(float));
    FILE *f;
    if (!ws || !in || !out || argc < 4)
        return 2;
#ifdef LOAD
    {
        char err[1024];
        if (argc < 5 || initnet_load_weights(ws, argv[4], 0, err, sizeof err)) {
            fprintf(stderr, "%%s\n", argc < 5 ? "no weights" : err);
            return 1;
        }
    }
#endif
    f = fopen(argv[1], "rb");
    if (!f || fread(in, sizeof(float), nin, f) != nin)
        return 3;
    fclose(f);
    initnet_forward(ws, B, in, out);
    f = fopen(argv[2], "wb");
    if (!f || fwrite(out, sizeof(float), nout, f) != nout || fclose(f))
        return 4;
    f = fopen(argv[3], "wb");
    if (!f)
        return 5;
    initnet_reset(ws, B);
    for (t = 0; t < INITNET_TIMESTEPS; t++) {
        initnet_step(ws, B, in, NULL);
        for (k = 0; k < INITNET_NUM_PROBES; k++) {
            size_t n = 0;
            const float *p = initnet_probe(ws, k);
            switch (k) {
%(cases)s
            }
            if (fwrite(p, sizeof(float), n, f) != n)
                return 6;
        }
    }
    free(ws);
    free(in);
    free(out);
    return fclose(f) ? 7 : 0;
}
"""

PROBE_SIZES = {"d": 512, "c": 256, "bn": 72, "pl.k": 72, "ar": 72, "ar.m": 72, "ar.v": 72, "ar.g": 72,
               "da.u": 72, "li": 512}


class Work:
    """A scratch folder with the model, inputs and weight files."""

    def __init__(self, root):
        self.root = root
        self.model = self.path("initnet.snn")
        with open(self.model, "w") as f:
            f.write(NET)

    def path(self, name):
        return os.path.join(self.root, name)

    def npy(self, name, x):
        p = self.path(name)
        np.save(p, np.ascontiguousarray(x, dtype=np.float32))
        return p

    def weights(self, name, tensors):
        p = self.path(name)
        write_safetensors(p, tensors)
        return p


def snnc(*args):
    p = subprocess.run([snnc_path()] + [str(a) for a in args], capture_output=True, text=True)
    return p.returncode, p.stderr


def one_hot_input():
    x = np.zeros((NB, 72), dtype=np.float32)
    x[np.arange(72), np.arange(72)] = 1
    return x.reshape(NB, 8, 3, 3)


def sigmoid(x):
    return 1 / (1 + np.exp(-x.astype(np.float64)))


def run_init(C, w, tag, seed=None, weights=None):
    """snnc run with every record; returns (output, records) or None."""
    out = w.path("y_%s.npy" % tag)
    args = ["run", w.model, "--input", w.path("x.npy"), "--output", out]
    if seed is not None:
        args += ["--init", seed]
    if weights is not None:
        args += ["--weights", weights]
    files = {}
    for r in RECORDS:
        files[r] = w.path("r_%s_%s.npy" % (tag, r))
        args += ["--record", "%s=%s" % (r, files[r])]
    rc, err = snnc(*args)
    C.check(rc == 0, "%s: snnc run failed (%d): %s" % (tag, rc, err.strip()))
    if rc:
        return None
    return np.load(out), {r: np.load(f) for r, f in files.items()}


def uniform_checks(C, v, bound, what, big):
    """v: samples that must be U(-bound, bound)."""
    v = np.asarray(v, dtype=np.float64).ravel()
    n = v.size
    slack = 1e-6  # the dense and conv values are (w + b) - b in float32
    C.check(np.abs(v).max() <= bound + slack, "%s: |value| up to %r, bound 1/sqrt(fan_in) = %r"
            % (what, np.abs(v).max(), bound))
    near = 0.01 if big else 0.15
    C.check(v.max() >= bound * (1 - near) and v.min() <= -bound * (1 - near),
            "%s: values span [%r, %r], expected nearly [-%r, %r]" % (what, v.min(), v.max(), bound, bound))
    sd_mean = bound / np.sqrt(3 * n)
    C.check(abs(v.mean()) <= 5 * sd_mean, "%s: mean %r, expected 0 +- %r" % (what, v.mean(), 5 * sd_mean))
    var, want = v.var(), bound ** 2 / 3
    tol = 5 * np.sqrt(0.8 / n)  # relative sd of the variance of a uniform sample
    C.check(abs(var / want - 1) <= tol, "%s: variance %r, expected %r (+- %.1f%%)"
            % (what, var, want, 100 * tol))
    if big:
        s = np.sort(v)
        cdf = (s + bound) / (2 * bound)
        ks = max(np.max(np.arange(1, n + 1) / n - cdf), np.max(cdf - np.arange(n) / n))
        C.check(ks <= 1.95 / np.sqrt(n), "%s: Kolmogorov-Smirnov distance %r to U(-%r, %r) (limit %r)"
                % (what, ks, bound, bound, 1.95 / np.sqrt(n)))


def init_tests(C, w):
    x = one_hot_input()
    w.npy("x.npy", x)
    r1 = run_init(C, w, "seed1", seed=1)
    if r1 is None:
        return
    y1, R1 = r1
    xf = x.reshape(NB, 72).astype(np.float64)
    # dense: the zero input gives the bias, one-hot k gives column k + bias
    d = R1["d"][0].astype(np.float64)
    bias = d[72]
    Wd = (d[:72] - bias).T  # [512, 72]
    bd = 1 / np.sqrt(72)
    uniform_checks(C, Wd, bd, "--init: d.weight [512, 72]", True)
    uniform_checks(C, bias, bd, "--init: d.bias [512]", False)
    # conv: kernel over the whole input, [256, 1, 1]; group g reads channels 4g..4g+3
    c = R1["c"][0].reshape(NB, 256).astype(np.float64)
    cb = c[72]
    Wc = c[:72] - cb  # [72 inputs, 256 outputs]
    grp_in = np.arange(72) // 9 // 4
    grp_out = np.arange(256) // 128
    own = grp_in[:, None] == grp_out[None, :]
    C.check(np.all(c[:72][~own] == np.broadcast_to(cb, (72, 256))[~own]),
            "--init: conv2d groups: an input channel moved an output of another group")
    bc = 1 / np.sqrt(36)
    uniform_checks(C, Wc[own], bc, "--init: c.weight [256, 4, 3, 3]", True)
    uniform_checks(C, cb, bc, "--init: c.bias [256]", False)
    C.check(np.corrcoef(Wd[:128, :36].ravel(), Wc[own][:128 * 36].ravel())[0, 1] < 0.05,
            "--init: the dense and conv weights are correlated")
    # batchnorm: x / sqrt(1 + eps)
    bn = R1["bn"][0].reshape(NB, 72)
    C.close(rtol=1e-6, atol=1e-7, got=bn, want=xf / np.sqrt(1 + 1e-5), what="--init: batchnorm")
    # neuron parameters
    C.close(rtol=1e-6, atol=0, got=R1["pl.k"], want=np.full((2, NB, 72), 1 / 3.0),
            what="--init: PLIF 1/tau = sigmoid(w0) = 1/tau0")
    # AR-LIF with a = 0 (threshold v_th) and c = 1: a one-hot input reaches
    # the threshold exactly and fires; then m and v follow
    C.close(rtol=1e-6, atol=1e-7, got=R1["ar.g"][0], want=sigmoid(xf),
            what="--init: AR-LIF gate sigmoid(c x) with c = 1")
    s0 = (xf - 1.0 >= 0).astype(np.float64)
    m0 = (2 * s0 - 1) * sigmoid(xf)
    v0 = xf - s0 * (1.0 + sigmoid(m0))
    C.same(R1["ar"][0], s0, "--init: AR-LIF spikes at the threshold v_th (a = 0)")
    C.close(rtol=1e-6, atol=1e-7, got=R1["ar.m"][0], want=m0, what="--init: AR-LIF m")
    C.close(rtol=1e-6, atol=1e-7, got=R1["ar.v"][0], want=v0, what="--init: AR-LIF v")
    C.close(rtol=1e-6, atol=1e-7, got=R1["da.u"][0].reshape(NB, 72), want=0.5 * xf,
            what="--init: DA-LIF u = beta v + alpha x with alpha = beta = 0.5")
    u0 = 0.5 * xf
    v1 = u0 * (u0 < 1)
    C.close(rtol=1e-6, atol=1e-7, got=R1["da.u"][1].reshape(NB, 72), want=0.5 * v1 + 0.5 * xf,
            what="--init: DA-LIF at the second step (beta = 0.5)")
    C.close(rtol=1e-5, atol=1e-7, got=y1, want=0.75 * 0.25 * d,
            what="--init: output (LI of 0.25 d over 2 steps)")
    # the same seed, the same bits; another seed, other values
    r = run_init(C, w, "seed1b", seed=1)
    if r:
        C.same(r[0], y1, "--init 1 twice: output")
        for k in RECORDS:
            C.same(r[1][k], R1[k], "--init 1 twice: record %s" % k)
    r = run_init(C, w, "seed2", seed=2)
    if r:
        d2 = r[1]["d"][0]
        C.check(np.mean(d2 != R1["d"][0]) > 0.99, "--init 2: the dense layer is that of --init 1")
        c2 = r[1]["c"][0]
        C.check(np.mean(c2 != R1["c"][0]) > 0.99, "--init 2: the conv layer is that of --init 1")
    # a tensor in the file overrides --init; the others keep their --init value
    rng = np.random.default_rng(7)
    Wf = rng.standard_normal((512, 72)).astype(np.float32)
    pw = np.array([0.3], np.float32)
    wp = w.weights("partial.safetensors", {"d.weight": Wf, "pl.w": pw})
    r = run_init(C, w, "override", seed=1, weights=wp)
    if r:
        d3 = r[1]["d"][0]
        C.same(d3[72], R1["d"][0][72], "--init with a file: d.bias keeps its --init value")
        C.close(rtol=1e-6, atol=1e-7, got=(d3[:72].astype(np.float64) - d3[72]).T, want=Wf,
                what="--init with a file: d.weight comes from the file")
        C.same(r[1]["c"], R1["c"], "--init with a file: the conv keeps its --init values")
        C.close(rtol=1e-6, atol=0, got=r[1]["pl.k"], want=np.full((2, NB, 72), sigmoid(pw)[0]),
                what="--init with a file: PLIF w comes from the file")


# ---- errors ----

def random_weights(rng):
    W = {k: (0.3 * rng.standard_normal(s)).astype(np.float32) for k, s in SHAPES.items()}
    W["bn.running_var"] = rng.uniform(0.5, 2, SHAPES["bn.running_var"]).astype(np.float32)
    return W


def listing(d):
    return sorted(os.listdir(d))


def failing(C, w, what, args, must, sentinel=True, outdir=None):
    """Runs snnc with args in a clean folder: it must exit 1, say every
    regex in `must`, leave the sentinel output untouched and write
    nothing else (nor leave anything in outdir)."""
    out_dir = w.path("fail")
    shutil.rmtree(out_dir, ignore_errors=True)
    os.mkdir(out_dir)
    y = os.path.join(out_dir, "y.npy")
    old = b"\x93NUMPY sentinel: the output of an earlier run"
    if sentinel:
        with open(y, "wb") as f:
            f.write(old)
    before = listing(out_dir)
    args = [a.replace("@", out_dir) if isinstance(a, str) else a for a in args]
    rc, err = snnc(*args)
    C.check(rc == 1, "%s: exit status %d, expected 1 (%s)" % (what, rc, err.strip()))
    for m in must:
        C.check(re.search(m, err) is not None, "%s: the message does not match %r: %s"
                % (what, m, err.strip()))
    C.check(listing(out_dir) == before, "%s: files left behind: %s"
            % (what, sorted(set(listing(out_dir)) - set(before))))
    if sentinel:
        kept = os.path.exists(y) and open(y, "rb").read() == old
        C.check(kept, "%s: the existing output file was changed or removed" % what)
    if outdir:
        left = listing(outdir) if os.path.exists(outdir) else []
        C.check(left == [], "%s: files written to %s: %s" % (what, os.path.basename(outdir), left))
    if rc == 1:
        print("%s: %s" % (what, err.strip().splitlines()[0] if err.strip() else "(no message)"))


def error_tests(C, w, rng):
    W = random_weights(rng)
    x = w.npy("x.npy", one_hot_input())
    run = ["run", w.model, "--input", x, "--output", "@/y.npy", "--record", "d=@/d.npy",
           "--record", "pl.v=@/v.npy"]
    emb = w.path("emb")

    def compile_emb(wf):
        shutil.rmtree(emb, ignore_errors=True)
        return ["compile", w.model, "--embed-weights", "--weights", wf, "-o", emb]

    shp = lambda *d: r"\[" + r",\s*".join(str(k) for k in d) + r"\]"
    cases = []
    # a missing tensor
    m = dict(W)
    del m["c.bias"]
    cases.append(("missing tensor", m, [r"c\.bias"]))
    # the wrong shape
    m = dict(W)
    m["d.weight"] = np.zeros((512, 71), np.float32)
    cases.append(("wrong shape", m, [r"d\.weight", shp(512, 71), shp(512, 72)]))
    m = dict(W)
    m["ar.c"] = np.zeros((1,), np.float32)
    cases.append(("wrong shape of a neuron parameter", m, [r"ar\.c", shp(1), shp(72)]))
    m = dict(W)
    m["bn.running_mean"] = np.zeros((8, 1), np.float32)
    cases.append(("wrong rank", m, [r"bn\.running_mean", shp(8, 1), shp(8)]))
    # NaN and Inf
    m = dict(W)
    m["pl.w"] = np.array([np.nan], np.float32)
    cases.append(("NaN", m, [r"pl\.w", "NaN"]))
    m = dict(W)
    c = W["c.weight"].copy()
    c[3, 1, 2, 0] = -np.inf
    m["c.weight"] = c
    cases.append(("Inf", m, [r"c\.weight", "Inf"]))
    for name, tensors, must in cases:
        wf = w.weights("bad.safetensors", tensors)
        failing(C, w, "run, " + name, run + ["--weights", wf], must)
        failing(C, w, "compile --embed-weights, " + name, compile_emb(wf), must, outdir=emb)
    # --init does not excuse a bad tensor in the file
    wf = w.weights("bad.safetensors", cases[4][1])
    failing(C, w, "run --init, NaN", run + ["--weights", wf, "--init", "1"], [r"pl\.w", "NaN"])
    wf = w.weights("bad.safetensors", cases[1][1])
    failing(C, w, "run --init, wrong shape", run + ["--weights", wf, "--init", "1"],
            [r"d\.weight", shp(512, 71), shp(512, 72)])
    good = w.weights("good.safetensors", W)
    # inputs of the wrong shape
    for shape in [(4, 8, 3, 4), (8, 3, 3), (2, 4, 8, 3, 3), (4, 72)]:
        xb = w.npy("xbad.npy", np.zeros(shape, np.float32))
        failing(C, w, "input of shape %s" % (shape,),
                ["run", w.model, "--input", xb, "--output", "@/y.npy", "--record", "d=@/d.npy",
                 "--weights", good],
                [shp(*shape), r"\[B,\s*8,\s*3,\s*3\]"])
    # a NaN or an infinity in the input: named with its position
    for bad, word in [(np.nan, "NaN"), (-np.inf, "-Inf")]:
        xv = one_hot_input()
        xv[5, 2, 1, 0] = bad
        xb = w.npy("xbad.npy", xv)
        failing(C, w, "input with %s" % word,
                ["run", w.model, "--input", xb, "--output", "@/y.npy", "--weights", good],
                [r"xbad\.npy", r"\[5, 2, 1, 0\]", re.escape(word)])
    # an unknown record
    failing(C, w, "record of an unknown layer", run[:6] + ["--record", "nosuch=@/n.npy",
                                                           "--weights", good], ["nosuch"])
    failing(C, w, "record of an unknown variable", run + ["--record", "pl.nosuch=@/n.npy",
                                                          "--weights", good], ["nosuch"])
    # results that cannot be written: nothing is written, the old output stays
    failing(C, w, "record into a missing folder",
            run + ["--record", "li=@/missing/li.npy", "--weights", good], ["missing"])
    failing(C, w, "output into a missing folder",
            ["run", w.model, "--input", x, "--output", "@/missing/y.npy", "--record",
             "d=@/d.npy", "--weights", good], ["missing"], sentinel=True)
    # A result that fails only when it is written, after the output was
    # ready: a name of 250 bytes leaves no room in the folder's name limit
    # for a temporary file beside it, which atomic writing needs. Either
    # everything is written, or nothing is and the old output stays.
    out_dir = w.path("fail")
    long_name = "r" * 246 + ".npy"
    if os.pathconf(w.root, "PC_NAME_MAX") < len(long_name) + 10:
        rc, err = snnc(*[a.replace("@", out_dir) for a in
                         run + ["--record", "li=@/" + long_name, "--weights", good]])
        if rc == 0:
            C.check(np.load(os.path.join(out_dir, long_name)).shape == (2, NB, 512),
                    "a record with a long name: wrong contents")
            print("a record with a long name: written")
        else:
            failing(C, w, "a record with a long name",
                    run + ["--record", "li=@/" + long_name, "--weights", good], [long_name[:40]])
    # neither --weights nor --init for a network with parameters: the first
    # parameter tensor is named
    failing(C, w, "run without weights", run, [r"--weights FILE or --init SEED", r"'d\.weight'"])
    # and the same command with good weights succeeds (the checks above are not vacuous)
    args = [a.replace("@", out_dir) for a in run + ["--weights", good]]
    rc, err = snnc(*args)
    C.check(rc == 0 and np.load(os.path.join(out_dir, "y.npy")).shape == (NB, 512) and
            np.load(os.path.join(out_dir, "v.npy")).shape == (2, NB, 72),
            "run with good weights over an old output failed: %s" % err.strip())
    return W


# A network without parameters runs with neither --weights nor --init. LIF
# (tau 2, v_th 1, hard reset to 0) on a constant input c: v1 = c/2, v2 =
# c/2 + (c - c/2)/2 = 3c/4, so c = 1.5 fires at step 2 only (v2 = 1.125)
# and again at step 4 (v3 = 0.75, v4 = 1.125); c = 0.5 never fires (v
# tends to 0.5); c = 2.5 fires at every step (v1 = 1.25).
NOPARAM = """
network NoParam {
  timesteps 4;
  input x : [3] encode direct;
  y = x |> LIF(tau = 2.0);
  output y readout count;
}
"""


def no_parameter_tests(C, w):
    model = w.path("noparam.snn")
    with open(model, "w") as f:
        f.write(NOPARAM)
    x = w.npy("xnp.npy", np.array([[1.5, 0.5, 2.5]], np.float32))
    y = w.path("ynp.npy")
    rc, err = snnc("run", model, "--input", x, "--output", y)
    C.check(rc == 0, "run of a network without parameters, no --weights: %s" % err.strip())
    if rc == 0:
        got = np.load(y)
        C.check(got.shape == (1, 3) and got.tolist() == [[2.0, 0.0, 4.0]],
                "network without parameters: spike counts %s, expected [[2, 0, 4]]" % got.tolist())


# ---- embedded weights ----

def embed_tests(C, w, W):
    cc = os.environ.get("CC") or "cc"
    if shutil.which(cc) is None:
        print("note: no C compiler '%s': the embedded-weights comparison is skipped" % cc)
        return
    good = w.weights("good.safetensors", W)
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 2, size=(NB, 8, 3, 3)).astype(np.float32)
    xin = w.path("in.bin")
    x.tofile(xin)
    cases = "\n".join('            case %d: n = (size_t)B * %d; break;' % (k, PROBE_SIZES[r])
                      for k, r in enumerate(RECORDS))
    rec = []
    for r in RECORDS:
        rec += ["--record", r]
    res = {}
    for kind in ["embedded", "loaded"]:
        d = w.path(kind)
        shutil.rmtree(d, ignore_errors=True)
        args = ["compile", w.model, "--batch", NB + 27, "-o", d] + rec
        if kind == "embedded":
            args += ["--embed-weights", "--weights", good]
        rc, err = snnc(*args)
        C.check(rc == 0, "compile (%s): %s" % (kind, err.strip()))
        if rc:
            return
        with open(os.path.join(d, "main.c"), "w") as f:
            f.write(HARNESS % {"B": NB, "cases": cases})
        cmd = [cc, "-std=c99", "-O2", "-o", os.path.join(d, "prog"), os.path.join(d, "initnet.c"),
               os.path.join(d, "main.c"), "-lm"]
        if kind == "loaded":
            cmd.insert(1, "-DLOAD")
        p = subprocess.run(cmd, capture_output=True, text=True)
        C.check(p.returncode == 0, "building the %s code: %s" % (kind, p.stderr.strip()))
        if p.returncode:
            return
        outs = [os.path.join(d, "out.bin"), os.path.join(d, "probes.bin")]
        p = subprocess.run([os.path.join(d, "prog"), xin] + outs + [good], capture_output=True, text=True)
        C.check(p.returncode == 0, "running the %s code: exit %d %s" % (kind, p.returncode, p.stderr))
        if p.returncode:
            return
        res[kind] = [np.fromfile(o, dtype=np.float32) for o in outs]
    C.check(res["embedded"][0].tobytes() == res["loaded"][0].tobytes(),
            "--embed-weights: the output differs from the loaded-weights code in %d of %d values"
            % ((res["embedded"][0] != res["loaded"][0]).sum(), res["loaded"][0].size))
    C.check(res["embedded"][1].tobytes() == res["loaded"][1].tobytes(),
            "--embed-weights: the records differ from the loaded-weights code in %d of %d values"
            % ((res["embedded"][1] != res["loaded"][1]).sum(), res["loaded"][1].size))
    C.check(res["loaded"][0].std() > 0 and np.isfinite(res["loaded"][0]).all(),
            "--embed-weights: the output is constant or not finite")
    # and `snnc run` with the file gives the same bits, in the same
    # arithmetic (compile's default target is c, whose --math is exact)
    xp = w.npy("xe.npy", x)
    yp = w.path("ye.npy")
    rc, err = snnc("run", w.model, "--input", xp, "--output", yp, "--weights", good, "--math", "exact")
    C.check(rc == 0, "run with the weights: %s" % err.strip())
    if rc == 0:
        C.check(np.load(yp).ravel().tobytes() == res["embedded"][0].tobytes(),
                "--embed-weights: the output differs from snnc run --weights")


def main():
    snnc_path()
    C = Checker()
    rng = np.random.default_rng(11)
    root = tempfile.mkdtemp(prefix="snnc-net-")
    try:
        w = Work(root)
        init_tests(C, w)
        W = error_tests(C, w, rng)
        embed_tests(C, w, W)
        no_parameter_tests(C, w)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    C.finish()


if __name__ == "__main__":
    main()
