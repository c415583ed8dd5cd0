"""Build check of generated code: every model here and in examples/ is
compiled by snnc and the C it writes is built with gcc and clang under
-std=c99 -Wall -Wextra -Wpedantic -Wshadow -Werror, in four variants: workspace
from the caller, --static, --embed-weights, and --train (the training
code too). Each variant is linked with a small main (libc and libm only)
that runs a forward pass; the training variant also checks that the
training forward in eval mode gives, step by step, exactly the inference
code's outputs, and runs one backward pass; the
embedded-weights program must print exactly what the program that loads
the same weights from a safetensors file prints.

Usage: build_check.py SNNC DIR... (Python standard library only)
"""
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

FLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Wpedantic", "-Wshadow", "-Werror"]

MAIN = r"""
#include <stdio.h>
#include <stdlib.h>
#include "%(p)s.h"
int main(int argc, char **argv)
{
    size_t nin = (size_t)(%(P)s_INPUT_SEQUENCE ? %(P)s_TIMESTEPS : 1) * %(P)s_INPUT_SIZE;
    size_t nout = (size_t)(%(P)s_OUTPUT_STEPS ? %(P)s_TIMESTEPS : 1) * %(P)s_OUTPUT_SIZE;
    float *in = malloc(nin * sizeof(float)), *out = malloc(nout * sizeof(float));
    void *ws = %(ws)s;
    size_t i;
    (void)argc;
    (void)argv;
    for (i = 0; i < nin; i++)
        in[i] = (float)((i * 7919) %% 13) / 6.0f - 0.5f;
%(load)s
    %(p)s_forward(ws, 1, in, out);
    for (i = 0; i < nout; i++)
        printf("%%.9g\n", out[i]);
    return 0;
}
"""

LOAD = r"""
    {
        char err[512];
        if (%(p)s_load_weights(ws, argv[1], 0, err, sizeof err)) {
            fprintf(stderr, "%%s\n", err);
            return 1;
        }
    }
"""


TRAIN_MAIN = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "%(p)s.h"
int main(int argc, char **argv)
{
    size_t nin = (size_t)(%(P)s_INPUT_SEQUENCE ? %(P)s_TIMESTEPS : 1) * %(P)s_INPUT_SIZE;
    size_t nout = (size_t)(%(P)s_OUTPUT_STEPS ? %(P)s_TIMESTEPS : 1) * %(P)s_OUTPUT_SIZE;
    size_t nsteps = (size_t)%(P)s_TIMESTEPS * %(P)s_OUTPUT_SIZE;
    float *in = malloc(nin * sizeof(float)), *out = malloc(nout * sizeof(float));
    float *steps = malloc(nsteps * sizeof(float)), *dy = malloc(nsteps * sizeof(float));
    float *o = malloc(%(P)s_OUTPUT_SIZE * sizeof(float));
    void *tws = calloc(%(P)s_TRAIN_WORKSPACE_FLOATS + 2, sizeof(float));
    void *ws = calloc(%(P)s_WORKSPACE_FLOATS + 1, sizeof(float));
    size_t i;
    int t;
    char err[512];
    (void)argc;
    for (i = 0; i < nin; i++)
        in[i] = (float)((i * 7919) %% 13) / 6.0f - 0.5f;
    if (%(p)s_load_weights(tws, argv[1], 0, err, sizeof err) || %(p)s_load_weights(ws, argv[1], 0, err, sizeof err)) {
        fprintf(stderr, "%%s\n", err);
        return 1;
    }
    %(p)s_train_forward(tws, 1, in, steps, 0, 0);
    %(p)s_reset(ws, 1);
    for (t = 0; t < %(P)s_TIMESTEPS; t++) {
        %(p)s_step(ws, 1, in + (%(P)s_INPUT_SEQUENCE ? (size_t)t * %(P)s_INPUT_SIZE : 0), o);
        if (memcmp(o, steps + (size_t)t * %(P)s_OUTPUT_SIZE, %(P)s_OUTPUT_SIZE * sizeof(float))) {
            fprintf(stderr, "step %%d: the training forward differs from the inference step\n", t);
            return 1;
        }
    }
    %(p)s_forward(ws, 1, in, out);
    for (i = 0; i < nout; i++)
        printf("%%.9g\n", out[i]);
    for (i = 0; i < nsteps; i++)
        dy[i] = 1.0f;
    %(p)s_train_forward(tws, 1, in, steps, 1, 7);
    %(p)s_train_backward(tws, 1, in, dy, NULL);
    for (i = 0; i < (size_t)%(P)s_NUM_PARAMS; i++) {
        const float *g = %(p)s_train_grads(tws) + %(p)s_params[i].offset;
        long k;
        for (k = 0; k < %(p)s_params[i].count; k++)
            if (g[k] != g[k] || g[k] - g[k] != 0.0f) {
                fprintf(stderr, "%%s: gradient %%ld is not finite\n", %(p)s_params[i].name, k);
                return 1;
            }
    }
    return 0;
}
"""


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name, shape in sorted(tensors.items()):
        n = 1
        for d in shape:
            n *= d
        vals = [0.05 * (((i * 31 + len(name)) % 11) - 5) for i in range(n)]
        b = struct.pack("<%df" % n, *vals)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def sh(cmd, cwd=None):
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


def main():
    snnc, dirs = sys.argv[1], sys.argv[2:]
    compilers = [c for c in ("gcc", "clang") if shutil.which(c)]
    if not compilers:
        print("SKIPPED: neither gcc nor clang is installed")
        sys.exit(77)
    models = []
    for d in dirs:
        if os.path.isdir(d):
            models += sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".snn"))
    passed = failed = 0

    def check(ok, what, detail=""):
        nonlocal passed, failed
        if ok:
            passed += 1
        else:
            failed += 1
            print("FAIL: %s\n%s" % (what, detail[-3000:]))

    for model in models:
        name = os.path.basename(model)
        rc, ir = sh([snnc, "compile", model, "--emit-ir"])
        if rc != 0:
            check(False, "%s: snnc --emit-ir" % name, ir)
            continue
        net = re.search(r"^network (\w+)", ir, re.M).group(1)
        p, P = net.lower(), net.upper()
        weights = {m.group(1): [int(x) for x in m.group(2).split(",")]
                   for m in re.finditer(r"^\s+weight (\S+) \[([0-9,]+)\]$", ir, re.M)}
        with tempfile.TemporaryDirectory() as tmp:
            wfile = os.path.join(tmp, "w.safetensors")
            write_safetensors(wfile, weights)
            results = {}
            variants = [("caller", [], "calloc(%s_WORKSPACE_FLOATS, sizeof(float))" % P, True),
                        ("static", ["--static"], "NULL", True),
                        ("embedded", ["--embed-weights", "--weights", wfile],
                         "calloc(%s_WORKSPACE_FLOATS + 1, sizeof(float))" % P, False)]
            if weights:
                variants.append(("train", ["--train"], None, True))
            for vname, opts, ws, load in variants:
                out = os.path.join(tmp, vname)
                rc, msg = sh([snnc, "compile", model, "-o", out] + opts)
                if rc != 0:
                    check(False, "%s [%s]: snnc compile" % (name, vname), msg)
                    continue
                with open(os.path.join(out, "main.c"), "w") as f:
                    if ws is None:
                        f.write(TRAIN_MAIN % {"p": p, "P": P})
                    else:
                        f.write(MAIN % {"p": p, "P": P, "ws": ws,
                                        "load": LOAD % {"p": p} if load and weights else ""})
                for cc in compilers:
                    exe = os.path.join(out, "prog-" + cc)
                    rc, msg = sh([cc] + FLAGS + ["-o", exe, "%s.c" % p, "main.c", "-lm"], cwd=out)
                    check(rc == 0, "%s [%s]: %s build" % (name, vname, cc), msg)
                    if rc != 0:
                        continue
                    rc, msg = sh([exe, wfile])
                    check(rc == 0, "%s [%s]: %s run" % (name, vname, cc), msg)
                    if rc == 0:
                        results[(vname, cc)] = msg
            outs = set(results.values())
            check(len(outs) <= 1 and len(results) == len(variants) * len(compilers),
                  "%s: all variants and compilers give the same output" % name,
                  "\n".join("%s: %s" % (k, v[:200]) for k, v in results.items()))
        print("%s: built and ran %d variants" % (name, len(results)))
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


main()
