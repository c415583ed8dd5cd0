#!/usr/bin/env python3
"""The cuda target's <net>_load_weights and <net>_init_weights.

The conv example (convolution, batch normalization with its ones, zeros
and running statistics, dense layers) compiled with --train for --target c
and --target cuda. The C target's program writes the parameters of
init_weights(ws, 3). The CUDA target's program, on the device's workspaces
(emulated: the .cu built as C99 with -DSNNC_CUDA_EMULATE), writes the
parameters after:
  init       init_weights(ws, 3): the C target's, bit for bit;
  full       load_weights of a file with every parameter (drawn here, as
             F32, except one weight as BF16 and one as F64, which the
             loader converts): the file's values (BF16 widened exactly,
             F64 rounded to float as NumPy rounds it), 0 returned;
  strict     load_weights of a file lacking one tensor, allow_missing 0:
             -1, a message naming the tensor, the workspace unchanged;
  part       the same file with allow_missing 1: 0, the missing tensor
             still full's, the others the file's;
  nofile     a path that does not exist: -1, a message naming it, the
             workspace unchanged;
  train      load_weights of the first file into the training workspace:
             the file's values at train_params.
Then --embed-weights: the conv example compiled for inference with the
parameters of a file compiled in (a running variance made positive), by
the cuda target and, as the reference, by the C target. A forward of two
images through the CUDA code gives the outputs of the same CUDA code built
without embedding, after load_weights of that file, bit for bit, and the C
target's within 1e-5 of the largest; its workspace is the other's less
PARAM_FLOATS (the parameters are device memory of the module), and it has
no load_weights.
Where nvcc is, the programs and the .cu build with nvcc, every warning an
error; where a GPU is too, the nvcc builds run and must print the same.

Usage: test_cuda_weights.py SNNC EXAMPLES_DIR
(NumPy; exit 77 without it or a C compiler)
"""
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

from test_cuda import C_FLAGS, DEVICE_MEMORY, NVCC_FLAGS, find_nvcc, have_gpu  # beside this file

C_MAIN = r"""
#include <stdio.h>
#include <stdlib.h>
#include "%(p)s.h"
int main(void)
{
    float *ws = calloc(%(P)s_WORKSPACE_FLOATS + 1, sizeof(float));
    %(p)s_init_weights(ws, 3);
    return fwrite(ws, sizeof(float), %(n)d, stdout) == %(n)d ? 0 : 1;
}
"""

CU_MAIN = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "%(p)s.h"
""" + DEVICE_MEMORY + r"""
static void dump(const char *what, const float *dws)
{
    float *h = (float *)malloc(%(n)d * sizeof(float));
    char name[64];
    FILE *f;
    get(h, dws, %(n)d);
    snprintf(name, sizeof name, "%%s.bin", what);
    f = fopen(name, "wb");
    if (!f || fwrite(h, sizeof(float), %(n)d, f) != %(n)d || fclose(f))
        exit(2);
    free(h);
}
static void load(const char *what, float *dws, const char *path, int allow_missing)
{
    char err[512];
    int rc;
    err[0] = 0;
    rc = %(p)s_load_weights(dws, path, allow_missing, err, sizeof err, STREAM);
    printf("%%s %%d %%s\n", what, rc, err);
    dump(what, dws);
}
int main(void)
{
    float *ws = dev(%(P)s_WORKSPACE_FLOATS), *tws = dev(%(P)s_TRAIN_WORKSPACE_FLOATS);
    (void)put; /* the weights reach the device through the functions tested */
#ifndef SNNC_CUDA_EMULATE
    if (cublasCreate(&BLAS) != CUBLAS_STATUS_SUCCESS)
        return 3;
#endif
    check(%(p)s_init_weights(ws, 3, STREAM), "init_weights");
    dump("init", ws);
    load("full", ws, "full.safetensors", 0);
    load("strict", ws, "part.safetensors", 0);
    load("part", ws, "part.safetensors", 1);
    load("nofile", ws, "no-such-file.safetensors", 0);
    load("train", %(p)s_train_params(tws), "full.safetensors", 0);
    return 0;
}
"""

# --embed-weights: a forward of two images; EMBED_C for the C target,
# EMBED_CU for the cuda target, loading the file first with -DLOAD.
EMBED_INPUT = r"""
#define B 2
static void images(float *in)
{
    int i;
    for (i = 0; i < B * %(P)s_INPUT_SIZE; i++)
        in[i] = (float)((i * 7919) %% 101) / 100.0f;
}
"""

EMBED_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include "%(p)s.h"
""" + EMBED_INPUT + r"""
int main(void)
{
    float *ws = (float *)calloc(%(P)s_WORKSPACE_FLOATS + 1, sizeof(float));
    static float in[B * %(P)s_INPUT_SIZE], out[B * %(P)s_OUTPUT_SIZE];
    images(in);
    %(p)s_forward(ws, B, in, out);
    return fwrite(out, sizeof(float), B * %(P)s_OUTPUT_SIZE, stdout) == B * %(P)s_OUTPUT_SIZE ? 0 : 1;
}
"""

EMBED_CU = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "%(p)s.h"
""" + DEVICE_MEMORY + EMBED_INPUT + r"""
int main(void)
{
    static float in[B * %(P)s_INPUT_SIZE], out[B * %(P)s_OUTPUT_SIZE];
    float *ws = dev(%(P)s_WORKSPACE_FLOATS), *x = dev(B * %(P)s_INPUT_SIZE), *y = dev(B * %(P)s_OUTPUT_SIZE);
#ifndef SNNC_CUDA_EMULATE
    if (cublasCreate(&BLAS) != CUBLAS_STATUS_SUCCESS)
        return 3;
#endif
    images(in);
    put(x, in, B * %(P)s_INPUT_SIZE);
#ifdef LOAD
    {
        char err[512];
        if (%(p)s_load_weights(ws, "embed.safetensors", 0, err, sizeof err, STREAM) != 0) {
            fprintf(stderr, "load_weights: %%s\n", err);
            return 5;
        }
    }
#endif
    check(%(p)s_forward(ws, B, x, y, STREAM, BLAS), "forward");
    get(out, y, B * %(P)s_OUTPUT_SIZE);
    return fwrite(out, sizeof(float), B * %(P)s_OUTPUT_SIZE, stdout) == B * %(P)s_OUTPUT_SIZE ? 0 : 1;
}
"""


def sh(cmd, cwd=None):
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


def params(cu, p):
    """(name, shape, offset, count) of every parameter, from the .cu's table."""
    table = re.search(r"_params\[\d+\] = \{\n(.*?)\n\};", cu, re.S).group(1)
    out = []
    for m in re.finditer(r'\{"([^"]+)", (\d), \{([0-9, ]+)\}, (\d+), (\d+), \d\}', table):
        shape = [int(v) for v in m.group(3).split(",")][:int(m.group(2))]
        out.append((m.group(1), shape, int(m.group(4)), int(m.group(5))))
    return out


def safetensors(path, tensors):
    """A safetensors file of (name, dtype, array as float32) in order: F32, BF16 (the upper halves of
    float32 values whose lower halves are zero) or F64."""
    import numpy as np
    head, blobs, off = {}, [], 0
    for name, dtype, a in tensors:
        if dtype == "BF16":
            raw = (a.astype(np.float32).view(np.uint32) >> 16).astype("<u2").tobytes()
        elif dtype == "F64":
            raw = a.astype("<f8").tobytes()
        else:
            raw = a.astype("<f4").tobytes()
        head[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    text = json.dumps(head).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def main():
    snnc, examples = sys.argv[1], sys.argv[2]
    try:
        import numpy as np
    except ImportError:
        print("SKIPPED: no NumPy")
        return 77
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        print("SKIPPED: no C compiler")
        return 77
    model = os.path.join(examples, "fashion_conv.snn")
    failed = checks = 0

    def check(ok, line):
        nonlocal failed, checks
        checks += 1
        failed += not ok
        print(("" if ok else "FAIL: ") + line)

    with tempfile.TemporaryDirectory() as tmp:
        c, cu = os.path.join(tmp, "c"), os.path.join(tmp, "cu")
        for d, target in ((c, "c"), (cu, "cuda")):
            rc, msg = sh([snnc, "compile", model, "--train", "--target", target, "-o", d])
            if rc != 0:
                print("FAIL: snnc compile --target %s\n%s" % (target, msg))
                return 1
        p = [f for f in os.listdir(cu) if f.endswith(".cu")][0][:-3]
        P = p.upper()
        with open(os.path.join(cu, p + ".cu")) as f:
            table = params(f.read(), p)
        n = max(off + cnt for _, _, off, cnt in table)
        subst = {"p": p, "P": P, "n": n}
        with open(os.path.join(c, "main.c"), "w") as f:
            f.write(C_MAIN % subst)
        rc, msg = sh([cc] + C_FLAGS + ["-o", "prog", "main.c", p + ".c", "-lm"], cwd=c)
        if rc != 0:
            print("FAIL: the C target's program does not build\n%s" % msg[-3000:])
            return 1
        ref = subprocess.run([os.path.join(c, "prog")], capture_output=True).stdout
        ref_init = np.frombuffer(ref, np.float32)

        # the files: every parameter drawn, one weight as BF16 and one as F64
        rng = np.random.default_rng(7)
        weights = [name for name, _, _, _ in table if name.endswith(".weight")]
        kinds = {weights[0]: "BF16", weights[-1]: "F64"}
        values = {}
        for name, shape, _, _ in table:
            a = rng.standard_normal(shape).astype(np.float32)
            if kinds.get(name) == "BF16":
                a = (a.view(np.uint32) & np.uint32(0xffff0000)).view(np.float32)
            values[name] = a
        f64 = {name: rng.standard_normal(values[name].shape) for name in values if kinds.get(name) == "F64"}
        safetensors(os.path.join(cu, "full.safetensors"),
                    [(k, kinds.get(k, "F32"), f64.get(k, v)) for k, v in values.items()])
        missing = table[1][0]  # the first batch normalization's or layer's second tensor
        part = {k: v + 1.0 for k, v in values.items() if k != missing}
        safetensors(os.path.join(cu, "part.safetensors"), [(k, "F32", v) for k, v in part.items()])

        def expect(vals, base=None):
            out = np.array(base, np.float32) if base is not None else np.zeros(n, np.float32)
            for name, _, off, cnt in table:
                if name in vals:
                    v = f64[name].astype(np.float32) if name in f64 and vals is values else vals[name]
                    out[off:off + cnt] = v.reshape(-1)
            return out

        full = expect(values)
        partial = expect(part, full)
        nvcc = find_nvcc()
        builds = [("emulated", [cc] + C_FLAGS + ["-Wpedantic", "-DSNNC_CUDA_EMULATE", "-o", "prog", "-x", "c",
                                                 p + ".cu", "-x", "none", "main.c", "-lm"], "main.c")]
        if nvcc:
            builds.append(("nvcc", [nvcc] + NVCC_FLAGS + ["-o", "prog", p + ".cu", "main.cu", "-lcublas"], "main.cu"))
        else:
            print("nvcc build: skipped (no nvcc)")
        gpu = nvcc and have_gpu()
        for kind, cmd, main_file in builds:
            for f in os.listdir(cu):
                if f.endswith(".bin") or f in ("prog", "main.c", "main.cu"):
                    os.remove(os.path.join(cu, f))
            with open(os.path.join(cu, main_file), "w") as f:
                f.write(CU_MAIN % subst)
            rc, msg = sh(cmd, cwd=cu)
            check(rc == 0, "%s: the program and the .cu build%s" % (
                kind, "" if rc == 0 else "\n" + msg[-3000:]))
            if rc != 0 or (kind == "nvcc" and not gpu):
                if kind == "nvcc":
                    print("nvcc build: not run (no GPU)")
                continue
            rc, out = sh([os.path.join(cu, "prog")], cwd=cu)
            if rc != 0:
                check(False, "%s: the program exits %d\n%s" % (kind, rc, out[-2000:]))
                continue
            said = {line.split(" ", 1)[0]: line.split(" ", 2)[1:] for line in out.splitlines()}

            def got(what):
                return np.fromfile(os.path.join(cu, what + ".bin"), np.float32)

            def same(a, b):
                return a.shape == b.shape and np.array_equal(a.view(np.uint32), b.view(np.uint32))

            check(same(got("init"), ref_init), "%s: init_weights(ws, 3) gives the C target's %d parameters, bit for bit"
                  % (kind, n))
            check(said["full"][0] == "0" and same(got("full"), full),
                  "%s: load_weights of every tensor (F32, one BF16, one F64): the file's values (returned %s)"
                  % (kind, said["full"][0]))
            msg = said["strict"][1] if len(said["strict"]) > 1 else ""
            check(said["strict"][0] == "-1" and missing in msg and same(got("strict"), full),
                  "%s: a file without '%s': -1, \"%s\", the workspace unchanged" % (kind, missing, msg))
            check(said["part"][0] == "0" and same(got("part"), partial),
                  "%s: the same with allow_missing: 0, '%s' kept, the others the file's" % (kind, missing))
            msg = said["nofile"][1] if len(said["nofile"]) > 1 else ""
            check(said["nofile"][0] == "-1" and "no-such-file" in msg and same(got("nofile"), partial),
                  "%s: no file: -1, \"%s\", the workspace unchanged" % (kind, msg))
            check(said["train"][0] == "0" and same(got("train"), full),
                  "%s: load_weights into the training workspace: the file's values at train_params" % kind)

        # --embed-weights
        emb = {k: (np.abs(v) + 0.5 if "running_var" in k else v * 0.2) for k, v in values.items()}
        wfile = os.path.join(tmp, "embed.safetensors")
        safetensors(wfile, [(k, "F32", v) for k, v in emb.items()])
        dirs = {}
        for name, target, extra in (("c", "c", ["--embed-weights", "--weights", wfile]),
                                    ("embedded", "cuda", ["--embed-weights", "--weights", wfile]),
                                    ("loaded", "cuda", [])):
            dirs[name] = os.path.join(tmp, "e-" + name)
            rc, msg = sh([snnc, "compile", model, "--target", target, "-o", dirs[name]] + extra)
            if rc != 0:
                print("FAIL: snnc compile --target %s %s\n%s" % (target, " ".join(extra), msg))
                return 1
        shutil.copy(wfile, dirs["loaded"])
        with open(os.path.join(dirs["c"], "main.c"), "w") as f:
            f.write(EMBED_C % subst)
        rc, msg = sh([cc] + C_FLAGS + ["-o", "prog", "main.c", p + ".c", "-lm"], cwd=dirs["c"])
        if rc != 0:
            print("FAIL: the C target's embedded program does not build\n%s" % msg[-3000:])
            return 1
        ref = np.frombuffer(subprocess.run([os.path.join(dirs["c"], "prog")], capture_output=True).stdout, np.float32)

        def floats(name, d):
            with open(os.path.join(dirs[d], p + ".h")) as f:
                return int(re.search(r"#define %s_%s (\d+)L" % (P, name), f.read()).group(1))

        check(floats("WORKSPACE_FLOATS", "embedded") == floats("WORKSPACE_FLOATS", "loaded") - floats("PARAM_FLOATS", "loaded")
              and floats("PARAM_FLOATS", "embedded") == n,
              "--embed-weights: the workspace holds no parameters (%d floats, %d without embedding)" %
              (floats("WORKSPACE_FLOATS", "embedded"), floats("WORKSPACE_FLOATS", "loaded")))
        with open(os.path.join(dirs["embedded"], p + ".h")) as f:
            check("load_weights" not in f.read(), "--embed-weights: the header declares no load_weights")
        for kind in [b[0] for b in builds]:
            outs = {}
            for d in ("embedded", "loaded"):
                src = "main.c" if kind == "emulated" else "main.cu"
                with open(os.path.join(dirs[d], src), "w") as f:
                    f.write(EMBED_CU % subst)
                load = [] if d == "embedded" else ["-DLOAD"]
                if kind == "emulated":
                    cmd = [cc] + C_FLAGS + ["-Wpedantic", "-DSNNC_CUDA_EMULATE"] + load + [
                        "-o", "prog", "-x", "c", p + ".cu", "-x", "none", "main.c", "-lm"]
                else:
                    cmd = [nvcc] + NVCC_FLAGS + load + ["-o", "prog", p + ".cu", "main.cu", "-lcublas"]
                rc, msg = sh(cmd, cwd=dirs[d])
                check(rc == 0, "%s, %s: the forward program and the .cu build%s" % (
                    kind, d, "" if rc == 0 else "\n" + msg[-3000:]))
                if rc != 0 or (kind == "nvcc" and not gpu):
                    continue
                r = subprocess.run([os.path.join(dirs[d], "prog")], capture_output=True, cwd=dirs[d])
                check(r.returncode == 0, "%s, %s: the forward program exits %d: %s" % (kind, d, r.returncode, r.stderr))
                outs[d] = np.frombuffer(r.stdout, np.float32)
            if len(outs) < 2:
                if kind == "nvcc":
                    print("nvcc: the --embed-weights programs not run (no GPU)")
                continue
            check(outs["embedded"].tobytes() == outs["loaded"].tobytes() and outs["embedded"].size == ref.size,
                  "%s: --embed-weights gives the outputs of load_weights of the same file, bit for bit" % kind)
            err = float(np.abs(outs["embedded"] - ref).max()) / max(1.0, float(np.abs(ref).max()))
            check(err <= 1e-5 and np.isfinite(ref).all() and np.ptp(ref) > 0,
                  "%s: --embed-weights: the C target's outputs within %.2g of the largest (1e-5)" % (kind, err))
    print("%d checks, %d failed" % (checks, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
