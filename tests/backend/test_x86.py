#!/usr/bin/env python3
"""The x86 SIMD targets compute what the portable target computes.

Every example network and golden model is compiled with --train for
--target c, avx512 and avx2, each built with a small main program that
initializes the weights (init_weights(ws, 3)), runs the forward of a batch
of 3 on an input large enough to make the layers spike, then the training
forward and backward with dL/doutput = 1, and prints the forward's output
and every parameter's gradient. The x86 targets add the matrix products'
terms in the same order as the portable target, so every number must be
equal (a zero may differ in sign only).

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
    %(p)s_train_backward(tws, B, dy, NULL);
    for (k = 0; k < %(P)s_NUM_PARAMS; k++) {
        const float *g = %(p)s_train_grads(tws) + %(p)s_params[k].offset;
        long j;
        for (j = 0; j < %(p)s_params[k].count; j++)
            printf("grad %%s %%.9g\n", %(p)s_params[k].name, g[j]);
    }
    return 0;
}
"""

FLAGS = ["-std=c99", "-O2", "-ffp-contract=off", "-Wall", "-Wextra", "-Werror"]


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


def main():
    snnc, dirs = sys.argv[1], sys.argv[2:]
    cc = shutil.which("gcc") or shutil.which("cc")
    if not cc:
        print("SKIPPED: no C compiler")
        sys.exit(77)
    flags = cpu_flags()
    simde = os.path.exists("/usr/include/simde/x86/avx512.h")
    how = {}
    for t, isa, flag in (("avx512", "avx512f", "-mavx512f"), ("avx2", "avx2", "-mavx2")):
        if isa in flags:
            how[t] = ("native", [flag])
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
    for model in models:
        name = os.path.basename(model)
        rc, ir = sh([snnc, "compile", model, "--emit-ir"])
        if rc != 0 or "weight" not in ir:
            continue
        net = re.search(r"^network (\w+)", ir, re.M).group(1)
        p, P = net.lower(), net.upper()
        results = {}
        with tempfile.TemporaryDirectory() as tmp:
            for t in ["c"] + sorted(how):
                out = os.path.join(tmp, t)
                rc, msg = sh([snnc, "compile", model, "--train", "--batch", "3", "--target", t, "-o", out])
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
                results[t] = values(msg)
        for t in sorted(how):
            if t not in results or "c" not in results:
                continue
            same = results[t] == results["c"]
            if same:
                passed += 1
            else:
                failed += 1
                diff = next(i for i, (a, b) in enumerate(zip(results[t], results["c"])) if a != b) \
                    if len(results[t]) == len(results["c"]) else -1
                print("FAIL: %s: --target %s differs from --target c%s" %
                      (name, t, "" if diff < 0 else " at %s: %r against %r" % (results[t][diff][0],
                                                                            results[t][diff][1],
                                                                            results["c"][diff][1])))
        if "c" in results:
            print("%s: %d values compared" % (name, len(results["c"])))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
