#!/usr/bin/env python3
"""The CUDA target computes what the portable target computes.

Every example network and golden model is compiled for inference with
--target c and --target cuda (batch 3; once with all steps at a time and
once with --chunk 3; recording the output of every neuron layer, and its
state v where every model has one). The C target's program initializes the weights
(init_weights(ws, 3)), writes them to params.bin, and prints the output of
forward on an input large enough to make the layers spike, then the outputs
of T calls of step after a reset, then the records of the last step. The
CUDA target's program copies params.bin to the start of its workspace and
prints the same from the device API.

Modes:
  emulate  the .cu compiled as C99 with -DSNNC_CUDA_EMULATE (every launch a
           loop over the thread indices, the products plain loops) and run
           on this CPU: the kernels' logic, on any machine;
  nvcc     the .cu and its program compiled by nvcc with every warning an
           error (-Werror all-warnings, -Xcompiler -Wall,-Wextra), on any
           machine with the CUDA toolkit; then run where a GPU is present.

The bounds (docs/targets.md): the same number of values; every output of a
spiking layer the same (a spike that differs is a difference of 1); every
value within 1e-5 of the portable target's, relative to the largest
magnitude of its group (at least 1): the products' sums are cuBLAS's (or,
emulated, the bias added last), so they differ from the portable target's
by rounding.

Also checked (emulate): a trained graph gets the located error of a missing
backward kernel, snnc train says the target cannot train yet, and snnc info
--target cuda states the workspace of the header.

Usage: test_cuda.py emulate|nvcc SNNC DIR... (standard library only)
Exit 77 (skipped) in nvcc mode without nvcc; the run on a GPU is reported
as skipped when there is none.
"""
import ctypes
import os
import re
import shutil
import subprocess
import sys
import tempfile

C_MAIN = r"""
#include <stdio.h>
#include <stdlib.h>
#include "%(p)s.h"
#define B 3
int main(void)
{
    size_t nin = (size_t)(%(P)s_INPUT_SEQUENCE ? %(P)s_TIMESTEPS : 1) * B * %(P)s_INPUT_SIZE;
    size_t nout = (size_t)(%(P)s_OUTPUT_STEPS ? %(P)s_TIMESTEPS : 1) * B * %(P)s_OUTPUT_SIZE;
    float *in = malloc(nin * sizeof(float)), *out = malloc(nout * sizeof(float));
    float *step = malloc((size_t)B * %(P)s_OUTPUT_SIZE * sizeof(float));
    void *ws = calloc(%(P)s_WORKSPACE_FLOATS + 1, sizeof(float));
    long pf = 0;
    size_t i;
    int k, t;
    FILE *f;
    for (i = 0; i < nin; i++)
        in[i] = (float)((i * 7919) %% 101) / 25.0f;
    %(p)s_init_weights(ws, 3);
    for (k = 0; k < %(P)s_NUM_PARAMS; k++)
        if (%(p)s_params[k].offset + %(p)s_params[k].count > pf)
            pf = %(p)s_params[k].offset + %(p)s_params[k].count;
    f = fopen("params.bin", "wb");
    if (!f || fwrite(ws, sizeof(float), (size_t)pf, f) != (size_t)pf || fclose(f))
        return 2;
    %(p)s_forward(ws, B, in, out);
    for (i = 0; i < nout; i++)
        printf("out %%.9g\n", out[i]);
    %(p)s_reset(ws, B);
    for (t = 0; t < %(P)s_TIMESTEPS; t++) {
        %(p)s_step(ws, B, in + (%(P)s_INPUT_SEQUENCE ? (size_t)t * B * %(P)s_INPUT_SIZE : 0), step);
        for (i = 0; i < (size_t)B * %(P)s_OUTPUT_SIZE; i++)
            printf("step %%.9g\n", step[i]);
    }
%(probes)s
    return 0;
}
"""

C_PROBE = r"""    for (i = 0; i < (size_t)B * %(n)d; i++)
        printf("probe%(k)d %%.9g\n", %(p)s_probe(ws, %(k)d)[i]);
"""

# The device program: the same with cudaMalloc and copies, or, emulated,
# host memory (the kernels then run on the CPU).
CU_MAIN = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "%(p)s.h"
#define B 3
#ifdef SNNC_CUDA_EMULATE
static float *dev(size_t n) { return (float *)calloc(n + 1, sizeof(float)); }
static void put(float *d, const float *h, size_t n) { memcpy(d, h, n * sizeof(float)); }
static void get(float *h, const float *d, size_t n) { memcpy(h, d, n * sizeof(float)); }
#define STREAM NULL
#define BLAS NULL
#else
#include <cuda_runtime.h>
static float *dev(size_t n)
{
    void *d = NULL;
    if (cudaMalloc(&d, (n + 1) * sizeof(float)) != cudaSuccess || cudaMemset(d, 0, (n + 1) * sizeof(float)))
        exit(3);
    return (float *)d;
}
static void put(float *d, const float *h, size_t n) { cudaMemcpy(d, h, n * sizeof(float), cudaMemcpyHostToDevice); }
static void get(float *h, const float *d, size_t n) { cudaMemcpy(h, d, n * sizeof(float), cudaMemcpyDeviceToHost); }
static cublasHandle_t BLAS;
#define STREAM (cudaStream_t)0
#endif
static void check(int rc, const char *what)
{
    if (rc) {
        fprintf(stderr, "%%s failed: %%d\n", what, rc);
        exit(4);
    }
}
int main(void)
{
    size_t nin = (size_t)(%(P)s_INPUT_SEQUENCE ? %(P)s_TIMESTEPS : 1) * B * %(P)s_INPUT_SIZE;
    size_t nout = (size_t)(%(P)s_OUTPUT_STEPS ? %(P)s_TIMESTEPS : 1) * B * %(P)s_OUTPUT_SIZE;
    size_t nstep = (size_t)B * %(P)s_OUTPUT_SIZE;
    float *in = (float *)malloc(nin * sizeof(float)), *out = (float *)malloc(nout * sizeof(float));
    float *params = (float *)malloc((%(P)s_PARAM_FLOATS + 1) * sizeof(float));
    float *ws = dev(%(P)s_WORKSPACE_FLOATS), *din = dev(nin), *dout = dev(nout);
    size_t i;
    int t;
    FILE *f = fopen("params.bin", "rb");
#ifndef SNNC_CUDA_EMULATE
    if (cublasCreate(&BLAS) != CUBLAS_STATUS_SUCCESS)
        return 3;
#endif
    if (!f || fread(params, sizeof(float), %(P)s_PARAM_FLOATS, f) != %(P)s_PARAM_FLOATS)
        return 2;
    fclose(f);
    put(ws, params, %(P)s_PARAM_FLOATS);
    for (i = 0; i < nin; i++)
        in[i] = (float)((i * 7919) %% 101) / 25.0f;
    put(din, in, nin);
    check(%(p)s_forward(ws, B, din, dout, STREAM, BLAS), "forward");
    get(out, dout, nout);
    for (i = 0; i < nout; i++)
        printf("out %%.9g\n", out[i]);
    check(%(p)s_reset(ws, B, STREAM), "reset");
    for (t = 0; t < %(P)s_TIMESTEPS; t++) {
        check(%(p)s_step(ws, B, din + (%(P)s_INPUT_SEQUENCE ? (size_t)t * B * %(P)s_INPUT_SIZE : 0), dout, STREAM, BLAS),
              "step");
        get(out, dout, nstep);
        for (i = 0; i < nstep; i++)
            printf("step %%.9g\n", out[i]);
    }
%(probes)s
    return 0;
}
"""

CU_PROBE = r"""    {
        float r[B * %(n)d];
        get(r, %(p)s_probe(ws, %(k)d, STREAM), (size_t)B * %(n)d);
        for (i = 0; i < (size_t)B * %(n)d; i++)
            printf("probe%(k)d %%.9g\n", r[i]);
    }
"""

C_FLAGS = ["-std=c99", "-O2", "-ffp-contract=off", "-Wall", "-Wextra", "-Werror"]
NVCC_FLAGS = ["-arch=sm_90", "-O2", "-fmad=false", "-Xcompiler", "-Wall,-Wextra", "-Werror", "all-warnings"]


def sh(cmd, cwd=None):
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


def find_nvcc():
    """CUDACXX, else nvcc on PATH, else CUDA_HOME's, else the toolkit's usual place."""
    for c in (os.environ.get("CUDACXX"), shutil.which("nvcc"),
              os.path.join(os.environ["CUDA_HOME"], "bin", "nvcc") if os.environ.get("CUDA_HOME") else None,
              "/usr/local/cuda/bin/nvcc"):
        if c and os.access(c, os.X_OK):
            return c
    return None


def have_gpu():
    """Whether the CUDA driver reports a device (without linking CUDA)."""
    try:
        lib = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    n = ctypes.c_int(0)
    return lib.cuInit(0) == 0 and lib.cuDeviceGetCount(ctypes.byref(n)) == 0 and n.value > 0


def values(text):
    out = []
    for line in text.splitlines():
        label, _, v = line.rpartition(" ")
        out.append((label, float(v)))
    return out


def diff(got, ref):
    """'' when got is within the bounds of ref, else why not."""
    if [l for l, _ in got] != [l for l, _ in ref]:
        return "%d values printed against %d" % (len(got), len(ref))
    groups = {}
    for (label, g), (_, r) in zip(got, ref):
        groups.setdefault(label, []).append((g, r))
    for label, pairs in groups.items():
        scale = max(1.0, max(abs(r) for _, r in pairs))
        for j, (g, r) in enumerate(pairs):
            if abs(g - r) > 1e-5 * scale or (g != g) != (r != r):
                return "%s[%d]: %r against %r" % (label, j, g, r)
    return ""


def models(dirs):
    out = []
    for d in dirs:
        out += sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".snn"))
    return out


def check_errors(snnc, model, tmp):
    """The located error of a trained graph, and snnc run's reason."""
    bad = 0
    rc, msg = sh([snnc, "compile", model, "--train", "--target", "cuda", "-o", os.path.join(tmp, "train")])
    if rc != 1 or not re.search(r"^\S+\.snn:\d+:\d+: error: target 'cuda' has no backward kernel for op 'dense'",
                                msg, re.M):
        print("FAIL: compile --train --target cuda: expected the located error of a missing backward kernel, "
              "got (exit %d)\n%s" % (rc, msg))
        bad += 1
    rc, msg = sh([snnc, "train", model, "--target", "cuda", "--init", "1", "--epochs", "1"])
    if rc == 0 or "target 'cuda' has no training code yet" not in msg:
        print("FAIL: train --target cuda: expected 'no training code yet', got (exit %d)\n%s" % (rc, msg))
        bad += 1
    return bad


def check_info(snnc, model, extra, hdr, what):
    """snnc info --target cuda states the workspace the header states."""
    rc, msg = sh([snnc, "info", model, "--target", "cuda", "--batch", "3"] + extra)
    said = re.search(r"^device memory of target cuda \(batch 3\): inference (\d+) bytes", msg, re.M)
    floats = re.search(r"_WORKSPACE_FLOATS (\d+)L", hdr)
    if rc != 0 or not said or not floats or int(said.group(1)) != 4 * int(floats.group(1)):
        print("FAIL: %s: snnc info --target cuda against the header's WORKSPACE_FLOATS (%s):\n%s" %
              (what, floats.group(1) if floats else "none", msg))
        return 1
    return 0


def main():
    mode, snnc, dirs = sys.argv[1], sys.argv[2], sys.argv[3:]
    cc = shutil.which("gcc") or shutil.which("cc")
    nvcc = find_nvcc() if mode == "nvcc" else None
    if mode == "nvcc" and not nvcc:
        print("SKIPPED: no nvcc (CUDACXX, PATH, CUDA_HOME/bin, /usr/local/cuda/bin): the CUDA toolkit is not installed")
        sys.exit(77)
    if not cc:
        print("SKIPPED: no C compiler")
        sys.exit(77)
    gpu = mode == "nvcc" and have_gpu()
    if mode == "nvcc":
        print("nvcc: %s; %s" % (nvcc, "a GPU is present: the programs run" if gpu else
                                "skipped: no GPU, the programs are compiled but not run"))
    passed = failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        mlp = [m for m in models(dirs) if os.path.basename(m) == "fashion_mlp.snn"]
        if mode == "emulate" and mlp:
            failed += check_errors(snnc, mlp[0], tmp)
        for model in models(dirs):
            name = os.path.basename(model)
            rc, ir = sh([snnc, "compile", model, "--emit-ir"])
            if rc != 0:
                continue
            net = re.search(r"^network (\w+)", ir, re.M).group(1)
            enc = re.search(r"^network .* encode=(rate|latency)$", ir, re.M)
            if enc:  # the target does not encode inputs yet: the located refusal
                rc, msg = sh([snnc, "compile", model, "--target", "cuda", "-o", os.path.join(tmp, "enc")])
                want = r"^\S+\.snn:\d+:\d+: error: target 'cuda' does not encode inputs into spikes yet"
                if rc != 1 or not re.search(want, msg, re.M):
                    print("FAIL: %s: expected the located refusal of 'encode %s', got (exit %d)\n%s" %
                          (name, enc.group(1), rc, msg))
                    failed += 1
                else:
                    passed += 1
                continue
            p, P = net.lower(), net.upper()
            # every neuron layer's output, and its v where the model has one
            layers = re.findall(r"^\s*%\d+ (\w+) = neuron ", ir, re.M)[:16]
            record = [a for n in layers for a in ("--record", n)]
            with_v = record + [a for n in layers for a in ("--record", n + ".v")]
            if sh([snnc, "compile", model, "--emit-ir"] + with_v)[0] == 0:
                record = with_v
            # nvcc takes seconds a file: one variant there, both emulated
            variants = [[]] + ([["--chunk", "3"]] if mode == "emulate" else [])
            for extra in variants:
                what = "%s %s" % (name, " ".join(extra + record) or "")
                d = os.path.join(tmp, "%s%d" % (p, len(extra)))
                os.makedirs(d)
                outs = {}
                # without a GPU, nvcc's build is all there is to check
                for t in ("cuda",) if mode == "nvcc" and not gpu else ("c", "cuda"):
                    out = os.path.join(d, t)
                    rc, msg = sh([snnc, "compile", model, "--batch", "3", "--target", t, "-o", out] + extra + record)
                    if rc != 0:
                        print("FAIL: %s [%s]: snnc compile\n%s" % (what, t, msg))
                        failed += 1
                        break
                    hdr = open(os.path.join(out, p + ".h")).read()
                    if t == "cuda" and mode == "emulate":
                        failed += check_info(snnc, model, extra + record, hdr, what)
                    probes = re.findall(r"^   (\d+): \S+ \((\d+) floats per sample\)", hdr, re.M)
                    tpl = C_PROBE if t == "c" else CU_PROBE
                    text = "".join(tpl % {"p": p, "k": int(k), "n": int(n)} for k, n in probes)
                    main_src = (C_MAIN if t == "c" else CU_MAIN) % {"p": p, "P": P, "probes": text}
                    exe = os.path.join(out, "prog")
                    if t == "c":
                        with open(os.path.join(out, "main.c"), "w") as f:
                            f.write(main_src)
                        rc, msg = sh([cc] + C_FLAGS + ["-o", exe, p + ".c", "main.c", "-lm"], cwd=out)
                    elif mode == "emulate":
                        with open(os.path.join(out, "main.c"), "w") as f:
                            f.write(main_src)
                        rc, msg = sh([cc] + C_FLAGS + ["-Wpedantic", "-DSNNC_CUDA_EMULATE", "-o", exe, "-x", "c",
                                                       p + ".cu", "-x", "none", "main.c", "-lm"], cwd=out)
                    else:
                        with open(os.path.join(out, "main.cu"), "w") as f:
                            f.write(main_src)
                        rc, msg = sh([nvcc] + NVCC_FLAGS + ["-o", exe, p + ".cu", "main.cu", "-lcublas"], cwd=out)
                    if rc != 0:
                        print("FAIL: %s [%s]: build\n%s" % (what, t, msg[-3000:]))
                        failed += 1
                        break
                    if t == "cuda" and mode == "nvcc" and not gpu:
                        passed += 1  # compiled without a warning; nothing to run
                        print("%s: compiled by nvcc" % what)
                        break
                    if t == "cuda":
                        shutil.copy(os.path.join(d, "c", "params.bin"), out)
                    rc, msg = sh([exe], cwd=out)
                    if rc != 0:
                        print("FAIL: %s [%s]: run (exit %d)\n%s" % (what, t, rc, msg[-3000:]))
                        failed += 1
                        break
                    outs[t] = values(msg)
                if len(outs) < 2:
                    continue
                why = diff(outs["cuda"], outs["c"])
                if why:
                    print("FAIL: %s: --target cuda against --target c: %s" % (what, why))
                    failed += 1
                else:
                    passed += 1
                    nz = sum(1 for label, v in outs["c"] if label.startswith("probe") and v != 0)
                    print("%s: %d values as the portable target's (%d records not zero)" % (what, len(outs["c"]), nz))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
