#!/usr/bin/env python3
"""The x86 SIMD targets compute what the portable target computes.

Every example network and golden model is compiled with --train for
--target c, avx512 and avx2, each built with a small main program that
initializes the weights (init_weights(ws, 3)), runs the forward of a batch
of 3 on an input large enough to make the layers spike, then the training
forward and backward with dL/doutput = 1, and prints the forward's output,
the number of spikes of the training forward and every parameter's
gradient. It also checks that a backward reads nothing an earlier one left
(the gradients that their writer sets rather than adds to are not zeroed):
after another backward with another dL/doutput and no dL/dinput, the
gradients and dL/dinput equal a fresh workspace's, bit for bit.

With --math exact the x86 targets add the matrix products' terms in the
same order as the portable target, multiply then add, and call the C
library's functions, so every number must be equal (a zero may differ in
sign only). With --math fast (their default) the products use fused
multiply-adds and neuron programs runtime/snnrt_math.inc's functions: the
spikes must still be the same, each output within 1e-5 of the portable
target's relative to the output's largest magnitude (at least 1), and each
parameter's gradient within 1e-4 relative to the gradient's largest
magnitude, or to 1e-4 of the network's largest gradient where that is
larger (docs/targets.md).

It also checks that the avx512 code asks GCC for 512-bit vectors in the
loops GCC vectorizes: built with -mtune=skylake-avx512, a tuning that keeps
them to 256 bits, its neuron loops compute in zmm registers, and without the
pragma they do not (skipped, saying so, where this GCC uses 512 bits anyway).

Where the CPU has the instructions the code is built natively (-mavx512f,
-mavx2); where it has not, it is built with SIMDe's portable intrinsics
(-D<NET>_SIMDE, Debian's libsimde-dev). The output says which. Skipped,
saying why, when neither is possible for a target (no AVX-2 and no SIMDe).

Usage: test_x86.py SNNC DIR... (standard library only)
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

MAIN = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "%(p)s.h"
#define B 3
int main(void)
{
    size_t nin = (size_t)(%(P)s_INPUT_SEQUENCE ? %(P)s_TIMESTEPS : 1) * B * %(P)s_INPUT_SIZE;
    size_t nout = (size_t)(%(P)s_OUTPUT_STEPS ? %(P)s_TIMESTEPS : 1) * B * %(P)s_OUTPUT_SIZE;
    size_t nsteps = (size_t)%(P)s_TIMESTEPS * B * %(P)s_OUTPUT_SIZE;
    float *in = malloc(nin * sizeof(float)), *out = malloc(nout * sizeof(float));
    float *steps = malloc(nsteps * sizeof(float)), *dy = malloc(nsteps * sizeof(float));
    void *ws = calloc(%(P)s_WORKSPACE_FLOATS + 1, sizeof(float));
    void *tws = calloc(%(P)s_TRAIN_WORKSPACE_FLOATS + 2, sizeof(float));
    size_t i;
    int k;
    for (i = 0; i < nin; i++)
        in[i] = (float)((i * 7919) %% 101) / 25.0f;
    for (i = 0; i < nsteps; i++)
        dy[i] = 1.0f;
    %(p)s_init_weights(ws, 3);
    %(p)s_init_weights(tws, 3);
    %(p)s_forward(ws, B, in, out);
    for (i = 0; i < nout; i++)
        printf("out %%.9g\n", out[i]);
    %(p)s_train_forward(tws, B, in, steps, 1, 7);
    %(p)s_train_backward(tws, B, in, dy, NULL);
    {
        double spikes, neurons;
        %(p)s_train_spikes(tws, B, &spikes, &neurons);
        printf("spikes %%.17g\n", spikes);
    }
    for (k = 0; k < %(P)s_NUM_PARAMS; k++) {
        const float *g = %(p)s_train_grads(tws) + %(p)s_params[k].offset;
        long j;
        for (j = 0; j < %(p)s_params[k].count; j++)
            printf("grad %%s %%.9g\n", %(p)s_params[k].name, g[j]);
    }
    {
        /* a backward reads nothing an earlier one left: after one with another
           dL/doutput, and without dL/dinput, the gradients (and dL/dinput) are
           those of a fresh workspace, bit for bit */
        void *fresh = calloc(%(P)s_TRAIN_WORKSPACE_FLOATS + 2, sizeof(float));
        float *dz = malloc(nsteps * sizeof(float)), *gx = malloc(nin * sizeof(float));
        float *gx0 = malloc(nin * sizeof(float));
        long stale = 0;
        for (i = 0; i < nsteps; i++)
            dz[i] = (float)(i %% 5) - 2.0f;
        %(p)s_init_weights(fresh, 3);
        %(p)s_train_forward(fresh, B, in, steps, 1, 7);
        %(p)s_train_backward(fresh, B, in, dy, gx0);
        %(p)s_train_forward(tws, B, in, steps, 1, 7);
        %(p)s_train_backward(tws, B, in, dz, NULL);
        %(p)s_train_forward(tws, B, in, steps, 1, 7);
        %(p)s_train_backward(tws, B, in, dy, gx);
        for (k = 0; k < %(P)s_NUM_PARAMS; k++) {
            const float *g = %(p)s_train_grads(tws) + %(p)s_params[k].offset;
            const float *g0 = %(p)s_train_grads(fresh) + %(p)s_params[k].offset;
            stale += memcmp(g, g0, (size_t)%(p)s_params[k].count * sizeof(float)) != 0;
        }
        stale += memcmp(gx, gx0, nin * sizeof(float)) != 0;
        printf("stale %%ld\n", stale);
    }
    return 0;
}
"""

# A layer of LIF neurons alone: its loops are the only ones that the compiler
# vectorizes (no product, whose kernels are intrinsics).
WIDE_NET = """network Wide {
  timesteps 4;
  input x : [256] encode sequence;
  h = x |> LIF(tau = 2.0);
  output h readout steps;
}
"""
PRAGMA = '#pragma GCC target("prefer-vector-width=512")'
ARITH_ZMM = re.compile(r"^\s+v(add|sub|mul|div|fmadd\w*|fnmadd\w*)ps\s.*%zmm")  # not the intrinsics' moves


def zmm_arith(cc, src, out):
    rc, msg = sh([cc, "-std=c99", "-O3", "-mavx512f", "-mtune=skylake-avx512", "-fopenmp", "-S", "-o", out, src])
    if rc != 0:
        return None, msg
    with open(out) as f:
        return sum(ARITH_ZMM.search(line) is not None for line in f), ""


def vector_width(snnc, cc):
    """The avx512 target's neuron loops use 512-bit registers when GCC tunes for
    a CPU where it would keep to 256 bits (docs/cli.md). Returns a failure, or
    None; prints a skip where GCC would use 512 bits anyway."""
    with tempfile.TemporaryDirectory() as tmp:
        model = os.path.join(tmp, "wide.snn")
        with open(model, "w") as f:
            f.write(WIDE_NET)
        rc, msg = sh([snnc, "compile", model, "--train", "--batch", "8", "--target", "avx512", "-o", tmp])
        if rc != 0:
            return "snnc compile: " + msg
        with open(os.path.join(tmp, "wide.c")) as f:
            code = f.read()
        if PRAGMA not in code:
            return "the avx512 code does not ask GCC for 512-bit vectors"
        with open(os.path.join(tmp, "plain.c"), "w") as f:
            f.write(code.replace(PRAGMA, ""))
        shutil.copy(os.path.join(tmp, "wide.h"), os.path.join(tmp, "plain.h"))
        wide, msg = zmm_arith(cc, os.path.join(tmp, "wide.c"), os.path.join(tmp, "wide.s"))
        plain, msg2 = zmm_arith(cc, os.path.join(tmp, "plain.c"), os.path.join(tmp, "plain.s"))
        if wide is None or plain is None:
            return "%s -S: %s" % (cc, msg or msg2)
        if plain > 0:
            print("vector width: skipped: this GCC vectorizes in 512 bits for -mtune=skylake-avx512 "
                  "without the pragma (%d arithmetic instructions on zmm)" % plain)
            return None
        if wide == 0:
            return "no 512-bit register in the neuron loops with the pragma (-mtune=skylake-avx512)"
        print("vector width: the neuron loops compute in zmm registers (%d arithmetic instructions; none "
              "without the pragma)" % wide)
        return None


FLOOR = 1e-4  # of the largest gradient: below, a gradient is rounding noise
FLAGS = ["-std=c99", "-O2", "-ffp-contract=off", "-Wall", "-Wextra", "-Wpedantic", "-Wshadow", "-Werror"]


def sh(cmd, cwd=None):
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"^flags\s*:(.*)$", f.read(), re.M)
            return set(m.group(1).split()) if m else set()
    except OSError:
        return set()


def values(text):
    """The printed lines as (label, float): -0 and 0 compare equal."""
    out = []
    for line in text.splitlines():
        label, _, v = line.rpartition(" ")
        out.append((label, float(v)))
    return out


def exact_diff(got, ref):
    """'' when equal, else where they first differ."""
    if got == ref:
        return ""
    if len(got) != len(ref):
        return "%d values against %d" % (len(got), len(ref))
    i = next(i for i, (a, b) in enumerate(zip(got, ref)) if a != b)
    return "at %s: %r against %r" % (got[i][0], got[i][1], ref[i][1])


def groups(vals):
    """The values by label (the outputs, the spikes, each gradient)."""
    out = {}
    for label, v in vals:
        out.setdefault(label, []).append(v)
    return out


def fast_error(got, ref):
    """(output error, gradient error): the largest difference of each group
    over the group's largest magnitude, at least 1 for the outputs and for a
    gradient at least 1e-4 of the largest gradient of the network (one that
    cancels to zero, as a convolution's bias before a batch normalization
    does, is rounding noise)."""
    g, r = groups(got), groups(ref)
    err = [0.0, 0.0]
    floor = FLOOR * max((abs(v) for label, v in ref if label.startswith("grad ")), default=0.0)
    for label, rv in r.items():
        gv = g.get(label, [])
        if len(gv) != len(rv) or label == "spikes":
            continue
        scale = max(abs(x) for x in rv)
        d = max(abs(a - b) for a, b in zip(gv, rv))
        k = 0 if label == "out" else 1
        scale = max(scale, 1.0) if k == 0 else max(scale, floor)
        e = d / scale if scale > 0 else d
        err[k] = max(err[k], e)
    return err


def fast_diff(got, ref):
    """'' when got meets --math fast's bounds against ref, else why not."""
    if [l for l, _ in got] != [l for l, _ in ref]:
        return "different values printed"
    g, r = groups(got), groups(ref)
    if g.get("spikes") != r.get("spikes"):
        return "%s spikes against %s" % (g.get("spikes"), r.get("spikes"))
    out_err, grad_err = fast_error(got, ref)
    if out_err > 1e-5:
        return "an output differs by %.3g relative (bound 1e-5)" % out_err
    if grad_err > 1e-4:
        return "a gradient differs by %.3g relative (bound 1e-4)" % grad_err
    return ""


def main():
    snnc, dirs = sys.argv[1], sys.argv[2:]
    cc = shutil.which("gcc") or shutil.which("cc")
    if not cc:
        print("SKIPPED: no C compiler")
        sys.exit(77)
    flags = cpu_flags()
    simde = os.path.exists("/usr/include/simde/x86/avx512.h")
    how = {}
    for t, isa, native in (("avx512", "avx512f", ["-mavx512f"]), ("avx2", "avx2", ["-mavx2", "-mfma"])):
        if isa in flags and (t == "avx512" or "fma" in flags):
            how[t] = ("native", native)
        elif simde:
            how[t] = ("SIMDe", None)
        else:
            print("%s: skipped: this CPU lacks %s and SIMDe (libsimde-dev) is not installed" % (t, isa))
    if not how:
        print("SKIPPED: no x86 target can be built here")
        sys.exit(77)
    for t, (kind, _) in sorted(how.items()):
        print("%s: built %s" % (t, "natively" if kind == "native" else "with SIMDe's portable intrinsics"))
    models = []
    for d in dirs:
        models += sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".snn"))
    passed = failed = 0
    why = vector_width(snnc, cc) if os.path.basename(cc).startswith("gcc") else None
    if why:
        print("FAIL: vector width: " + why)
        failed += 1
    for model in models:
        name = os.path.basename(model)
        rc, ir = sh([snnc, "compile", model, "--emit-ir"])
        if rc != 0 or "weight" not in ir:
            continue
        net = re.search(r"^network (\w+)", ir, re.M).group(1)
        p, P = net.lower(), net.upper()
        results = {}
        with tempfile.TemporaryDirectory() as tmp:
            for t, math in [("c", "exact")] + [(t, m) for t in sorted(how) for m in ("exact", "fast")]:
                out = os.path.join(tmp, t + "-" + math)
                rc, msg = sh([snnc, "compile", model, "--train", "--batch", "3", "--target", t, "--math", math,
                              "-o", out])
                if rc != 0:
                    print("FAIL: %s [%s]: snnc compile\n%s" % (name, t, msg))
                    failed += 1
                    continue
                with open(os.path.join(out, "main.c"), "w") as f:
                    f.write(MAIN % {"p": p, "P": P})
                extra = []
                if t != "c":
                    kind, native = how[t]
                    extra = native if kind == "native" else ["-D%s_SIMDE" % P]
                exe = os.path.join(out, "prog")
                rc, msg = sh([cc] + FLAGS + extra + ["-o", exe, "%s.c" % p, "main.c", "-lm"], cwd=out)
                if rc == 0:
                    rc, msg = sh([exe])
                if rc != 0:
                    print("FAIL: %s [%s]: build or run\n%s" % (name, t, msg[-3000:]))
                    failed += 1
                    continue
                vals = values(msg)
                stale = [v for label, v in vals if label == "stale"]
                if stale != [0.0]:
                    print("FAIL: %s [%s --math %s]: a second backward differs from a fresh one in %s tensors "
                          "(gradients it sets, or zeroes, were left from the first)" % (name, t, math, stale))
                    failed += 1
                    continue
                results[t if math == "exact" else t + "-fast"] = [(l, v) for l, v in vals if l != "stale"]
        if "c" not in results:
            continue
        ref = results["c"]
        for t in sorted(how):
            for key, check in ((t, exact_diff), (t + "-fast", fast_diff)):
                if key not in results:
                    continue
                why = check(results[key], ref)
                if why:
                    failed += 1
                    print("FAIL: %s: --target %s --math %s against --target c: %s" %
                          (name, t, "fast" if key.endswith("fast") else "exact", why))
                else:
                    passed += 1
        fast = [fast_error(results[t + "-fast"], ref) for t in sorted(how) if t + "-fast" in results]
        print("%s: %d values compared; --math fast: largest output error %.2g, gradient error %.2g" %
              (name, len(ref), max((f[0] for f in fast), default=0), max((f[1] for f in fast), default=0)))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
