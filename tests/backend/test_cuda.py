#!/usr/bin/env python3
"""The CUDA target computes what the portable target computes.

Every example network and golden model is compiled for inference with
--target c and --target cuda (batch 3; once with all steps at a time and
once with --chunk 3; recording the output of every neuron layer, and its
state v where every model has one). The C target's program initializes the weights
(init_weights(ws, 3)), writes them to params.bin, and prints the output of
forward on an input large enough to make the layers spike (an input encoded
into spikes takes it as intensities; a rate-encoded one's spikes are drawn
from seed 5, set by <net>_seed on both targets), then the output of
one step after it (which goes on from the forward's last step), then the
outputs of T calls of step after a reset, then the records of the last
step. The CUDA target's program copies params.bin to the start of its
workspace and prints the same from the device API.

Modes:
  emulate  the .cu compiled as C99 with -DSNNC_CUDA_EMULATE (every launch a
           loop over the thread indices, the products plain loops) and run
           on this CPU: the kernels' logic, on any machine;
  nvcc     the .cu and its program compiled by nvcc with every warning an
           error (-Werror all-warnings, -Xcompiler -Wall,-Wextra), on any
           machine with the CUDA toolkit; then run where a GPU is present;
  prepare  what nvcc mode does where a GPU is present, but for building and
           running the CUDA programs: for each case of nvcc mode, a folder
           of PACK (--out) with the .cu, its header, the program (main.cu)
           and the values of the C target's output (ref.gz: the labels and
           the values as float32, gzipped; exact, a few bytes a value);
           the files the program reads (params.bin; for training also
           grads.bin and out.bin) gzipped in PACK/inputs, once each (the
           inference and the training of a network read the same
           params.bin); PACK/manifest.json lists the cases (dir, kind
           train or infer, what: the case's label, prog: the .cu's base
           name, inputs: where each file is). No nvcc needed; the refusals
           and the checks of snnc info and train are not in the pack;
  device   the pack's programs compiled by nvcc (as many at a time as the
           machine has CPUs), then, where a GPU is present, run one at a
           time (their inputs unzipped into their folders; at most 120 s
           each) and compared with the C target's values as nvcc mode
           compares; the standard library only, no snnc. The pack is how
           the tests run on a machine where snnc does not: prepare here,
           carry the folder, run device there.

The bounds (docs/targets.md): the same number of values; every output of a
spiking layer the same (a spike that differs is a difference of 1); every
value within 1e-5 of the portable target's, relative to the largest
magnitude of its group (at least 1): the products' sums are cuBLAS's (or,
emulated, the bias added last), so they differ from the portable target's
by rounding.

Training (--train): every example, golden model and the reference
networks below (TRAIN_NETS: every standard neuron model and surrogate,
detach_reset, neuron parameters per layer and per neuron, a user-written
model, add, scale, identity, dropout, prev(), grouped, strided and padded
convolutions, pools, batchnorm, every readout) compiled with --target
cuda and with --target c --math exact, and again both with --math fast
where the model calls exp, log, tanh or sigmoid (runtime/snnrt_math.inc's
functions on both targets: emulated for every such model, by nvcc and
on a GPU for arlif_mlp.snn and surrogates.snn; the inference of such a
model emulated too), each driven by a program
(TRAIN_C_MAIN and TRAIN_CU_MAIN) that runs a training forward (dropout
drawing its masks, batchnorm the batch's statistics: the running ones it
updates within 1e-4 of their largest), the backward for a
fixed dL/doutput, the three losses of snnc train on the portable target's
outputs (runtime/loss.c's snnrt_loss against the device's train_loss),
two Adam steps on the portable target's gradients and three SGD steps of
training (their forwards through train_forward_at, as shards that start at
sample 0, 5 and 10 of a larger batch: the dropout masks of those samples). Bounds: the spike count the same; the outputs as above; every
gradient and dL/dinput within 1e-4 of its parameter's largest gradient,
or within 1e-7 of the network's largest where that is more (fp32's
resolution at that scale: a gradient that cancels to about zero, such as
a convolution's bias before batch normalization, is the rounding of sums
that the targets add in different orders); the
Adam steps' parameters the same numbers (the kernels compute
runtime/optim.c's float operations; the runtime library links here,
--snnrt); the parameters after the SGD steps within 1e-4 of their largest
magnitude; each loss and its dL/doutput within 1e-6 (relative to the
largest), the count of correct predictions the same (sample 0's label is
its largest summed output, so that some are right); snnc info --train
states the header's training workspace. In nvcc mode the training .cu
and its program are compiled too.

snnc train's loop on the device (LOOP_NET, LOOP_MAIN): the .cu that snnc
writes for its own use (the host API with <net>_host_dev_*, from snnc grad
--keep-build, emulated) driven through four training steps (two losses,
Adam then AdamW, clipping's scale, the gradients' sums of squares, the
gradients pulled to the host and pushed back as mpirun's ranks do), an
evaluation forward and the state brought back; emulate mode builds and
runs it on the CPU, nvcc mode compiles it, and on a GPU (nvcc, device) it
runs and is compared with its emulated build: the counts of correct
predictions the same, the losses within 1e-5 relative, every other value
within 1e-4 of its kind's largest. That checks what emulation cannot: the
order of the copies on the stream, pinned memory, the waits. In every
mode that runs it, the blocks' sums of squares must also equal, bit for
bit, those the program adds by hand from the gradients it fetches, in
runtime/snnrt.h's order (32 lanes, then a tree): on a GPU, the warps'
shuffles.

Also checked (emulate): without a GPU, snnc train --target cuda says why it
cannot run the code here (test_cuda_train.py trains with it, emulated), and
snnc info --target cuda states the workspace of the header.

Usage: test_cuda.py emulate|nvcc SNNC [--snnrt LIBSNNRT.a] DIR...
       test_cuda.py prepare SNNC [--snnrt LIBSNNRT.a] --out PACK DIR...
       test_cuda.py device PACK
(standard library only). Exit 77 (skipped) in nvcc and device modes
without nvcc; the run on a GPU is reported as skipped when there is none.
prepare wants PACK absent or empty, and prints its size.
"""
import array
import concurrent.futures
import ctypes
import gzip
import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time

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
%(seed)s    %(p)s_forward(ws, B, in, out);
    for (i = 0; i < nout; i++)
        printf("out %%.9g\n", out[i]);
    %(p)s_step(ws, B, in, step); /* a step after the forward goes on from its last */
    for (i = 0; i < (size_t)B * %(P)s_OUTPUT_SIZE; i++)
        printf("next %%.9g\n", step[i]);
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

# Device memory for the device programs: cudaMalloc and copies, or,
# emulated, host memory (the kernels then run on the CPU). Two spare floats
# keep every allocation non-empty.
DEVICE_MEMORY = r"""#ifdef SNNC_CUDA_EMULATE
static float *dev(size_t n) { return (float *)calloc(n + 2, sizeof(float)); }
static void put(float *d, const float *h, size_t n) { memcpy(d, h, n * sizeof(float)); }
static void get(float *h, const float *d, size_t n) { memcpy(h, d, n * sizeof(float)); }
#define STREAM NULL
#define BLAS NULL
#else
#include <cuda_runtime.h>
static float *dev(size_t n)
{
    void *d = NULL;
    if (cudaMalloc(&d, (n + 2) * sizeof(float)) != cudaSuccess || cudaMemset(d, 0, (n + 2) * sizeof(float)))
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
"""

# The device program: the inference program above on the device.
CU_MAIN = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "%(p)s.h"
#define B 3
""" + DEVICE_MEMORY + r"""int main(void)
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
%(seed)s    check(%(p)s_forward(ws, B, din, dout, STREAM, BLAS), "forward");
    get(out, dout, nout);
    for (i = 0; i < nout; i++)
        printf("out %%.9g\n", out[i]);
    check(%(p)s_step(ws, B, din, dout, STREAM, BLAS), "step"); /* a step after the forward goes on from its last */
    get(out, dout, nstep);
    for (i = 0; i < nstep; i++)
        printf("next %%.9g\n", out[i]);
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

# Training: the C target's program (--train --math exact) writes the initial
# parameters (params.bin), prints the output of a training forward, its
# spike count, every learnable parameter's gradient and dL/dinput for a
# fixed dL/doutput, writes the gradients (grads.bin); then prints the
# parameters after two Adam steps on those gradients from the initial ones
# (runtime/optim.c, which snnc train uses), and after three SGD steps of
# training (forward, backward, update) from the initial ones. The CUDA
# program does the same through its device API, starting from params.bin
# and, for the Adam steps, from grads.bin.
TRAIN_COMMON = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "%(p)s.h"
#define B 3
static void dump(const char *label, const char *name, const float *x, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        printf("%%s%%s %%.9g\n", label, name, x[i]);
}
static long param_floats(void)
{
    long pf = 0;
    int k;
    for (k = 0; k < %(P)s_NUM_PARAMS; k++)
        if (%(p)s_params[k].offset + %(p)s_params[k].count > pf)
            pf = %(p)s_params[k].offset + %(p)s_params[k].count;
    return pf;
}
static void inputs(float *in, size_t nin, float *dy, size_t ndy)
{
    size_t i;
    for (i = 0; i < nin; i++)
        in[i] = (float)((i * 7919) %% 101) / 25.0f;
    for (i = 0; i < ndy; i++)
        dy[i] = (float)((int)((i * 37) %% 17) - 8) / 8.0f;
}
/* The labels of the losses: sample 0's the class of its largest sum of the
   outputs (so that a prediction can be right), the others' fixed. */
static void labels_of(const float *y, int *labels)
{
    double best = 0.0;
    int b, k, t;
    for (b = 0; b < B; b++)
        labels[b] = (b * 7 + 1) %% %(P)s_OUTPUT_SIZE;
    for (k = 0; k < %(P)s_OUTPUT_SIZE; k++) {
        double s = 0.0;
        for (t = 0; t < %(P)s_TIMESTEPS; t++)
            s += y[(size_t)t * B * %(P)s_OUTPUT_SIZE + (size_t)k];
        if (k == 0 || s > best) {
            best = s;
            labels[0] = k;
        }
    }
}
#define NIN ((size_t)(%(P)s_INPUT_SEQUENCE ? %(P)s_TIMESTEPS : 1) * B * %(P)s_INPUT_SIZE)
#define NOUT ((size_t)%(P)s_TIMESTEPS * B * %(P)s_OUTPUT_SIZE)
"""

TRAIN_C_MAIN = r"""
#include "snnrt.h"
""" + TRAIN_COMMON + r"""
static void dump_params(const char *label, const float *w, int learnable)
{
    int k;
    for (k = 0; k < %(P)s_NUM_PARAMS; k++)
        if (%(p)s_params[k].learnable == learnable)
            dump(label, %(p)s_params[k].name, w + %(p)s_params[k].offset, (size_t)%(p)s_params[k].count);
}
static void update(SnnrtOptim *o, float *tws)
{
    int k;
    snnrt_optim_begin_step(o);
    for (k = 0; k < %(P)s_NUM_PARAMS; k++)
        if (%(p)s_params[k].learnable)
            snnrt_optim_update(o, (size_t)%(p)s_params[k].offset, tws + %(p)s_params[k].offset,
                               %(p)s_train_grads(tws) + %(p)s_params[k].offset, (size_t)%(p)s_params[k].count, o->lr);
}
int main(void)
{
    float *in = malloc(NIN * sizeof(float)), *din = malloc(NIN * sizeof(float));
    float *out = malloc(NOUT * sizeof(float)), *dy = malloc(NOUT * sizeof(float));
    float *tws = calloc(%(P)s_TRAIN_WORKSPACE_FLOATS + 2, sizeof(float));
    float *init;
    long pf = param_floats();
    double spikes, neurons;
    SnnrtOptim o;
    int s;
    FILE *f;
    inputs(in, NIN, dy, NOUT);
    %(p)s_init_weights(tws, 3);
    init = malloc(((size_t)pf + 1) * sizeof(float));
    memcpy(init, tws, (size_t)pf * sizeof(float));
    f = fopen("params.bin", "wb");
    if (!f || fwrite(tws, sizeof(float), (size_t)pf, f) != (size_t)pf || fclose(f))
        return 2;
    %(p)s_train_forward(tws, B, in, out, 1, 7);
    dump("out", "", out, NOUT);
    dump_params("stat ", tws, 0);
    %(p)s_train_spikes(tws, B, &spikes, &neurons);
    printf("spikes %%.9g\nneurons %%.9g\n", spikes, neurons);
    %(p)s_train_backward(tws, B, in, dy, din);
    dump_params("grad ", %(p)s_train_grads(tws), 1);
    dump("dinput", "", din, NIN);
    f = fopen("grads.bin", "wb");
    if (!f || fwrite(%(p)s_train_grads(tws), sizeof(float), (size_t)pf, f) != (size_t)pf || fclose(f))
        return 2;
    f = fopen("out.bin", "wb");
    if (!f || fwrite(out, sizeof(float), NOUT, f) != NOUT || fclose(f))
        return 2;
    for (s = 0; s < 3; s++) { /* the losses of snnc train on these outputs */
        SnnrtLoss l;
        int labels[B], nc = 0;
        float *dl = malloc(NOUT * sizeof(float));
        labels_of(out, labels);
        memset(&l, 0, sizeof l);
        l.kind = (SnnrtLossKind)s, l.readout = %(ro)d, l.lambda = 0.05, l.phi = 1.0;
        l.correct_rate = 0.8, l.incorrect_rate = 0.2;
        printf("loss%%d %%.17g\n", s, snnrt_loss(&l, %(P)s_TIMESTEPS, B, %(P)s_OUTPUT_SIZE, out, labels, dl, &nc));
        printf("ncorrect%%d %%d\n", s, nc);
        dump("dloss", s == 0 ? "0" : s == 1 ? "1" : "2", dl, NOUT);
        free(dl);
    }
    memset(&o, 0, sizeof o);
    o.kind = SNNRT_ADAM, o.lr = 0.01, o.beta1 = 0.9, o.beta2 = 0.999, o.eps = 1e-8, o.weight_decay = 0.001;
    if (snnrt_optim_init(&o, (size_t)pf, NULL, 0))
        return 2;
    for (s = 0; s < 2; s++)
        update(&o, tws);
    dump_params("adam ", tws, 1);
    snnrt_optim_free(&o);
    memcpy(tws, init, (size_t)pf * sizeof(float));
    memset(&o, 0, sizeof o);
    o.kind = SNNRT_SGD, o.lr = 0.05, o.momentum = 0.9, o.weight_decay = 0.0001, o.nesterov = 1;
    if (snnrt_optim_init(&o, (size_t)pf, NULL, 0))
        return 2;
    for (s = 0; s < 3; s++) {
        %(p)s_train_forward_at(tws, B, 5L * s, in, out, 1, 11 + (unsigned long long)s);
        %(p)s_train_backward(tws, B, in, dy, NULL);
        update(&o, tws);
    }
    dump_params("sgd ", tws, 1);
    return 0;
}
"""

TRAIN_CU_MAIN = TRAIN_COMMON + r"""
""" + DEVICE_MEMORY + r"""static void dump_params(const char *label, const float *dw, int learnable)
{
    int k;
    for (k = 0; k < %(P)s_NUM_PARAMS; k++)
        if (%(p)s_params[k].learnable == learnable) {
            float *h = (float *)malloc(((size_t)%(p)s_params[k].count + 1) * sizeof(float));
            get(h, dw + %(p)s_params[k].offset, (size_t)%(p)s_params[k].count);
            dump(label, %(p)s_params[k].name, h, (size_t)%(p)s_params[k].count);
            free(h);
        }
}
static float *readf(const char *path, size_t n)
{
    float *h = (float *)malloc((n + 1) * sizeof(float));
    FILE *f = fopen(path, "rb");
    if (!f || fread(h, sizeof(float), n, f) != n)
        exit(2);
    fclose(f);
    return h;
}
int main(void)
{
    float *in = (float *)malloc(NIN * sizeof(float)), *out = (float *)malloc(NOUT * sizeof(float));
    float *dy = (float *)malloc(NOUT * sizeof(float));
    float *tws = dev(%(P)s_TRAIN_WORKSPACE_FLOATS), *din = dev(NIN), *dout = dev(NOUT), *ddy = dev(NOUT);
    float *ddin = dev(NIN);
    size_t pf = (size_t)param_floats();
    float *init = readf("params.bin", pf), *grads = readf("grads.bin", pf);
    double spikes, neurons;
    int s;
#ifndef SNNC_CUDA_EMULATE
    if (cublasCreate(&BLAS) != CUBLAS_STATUS_SUCCESS)
        return 3;
#endif
    inputs(in, NIN, dy, NOUT);
    put(din, in, NIN);
    put(ddy, dy, NOUT);
    put(tws, init, pf);
    check(%(p)s_train_forward(tws, B, din, dout, 1, 7, STREAM, BLAS), "train_forward");
    get(out, dout, NOUT);
    dump("out", "", out, NOUT);
    dump_params("stat ", tws, 0);
    check(%(p)s_train_spikes(tws, B, &spikes, &neurons, STREAM), "train_spikes");
    printf("spikes %%.9g\nneurons %%.9g\n", spikes, neurons);
    check(%(p)s_train_backward(tws, B, din, ddy, ddin, STREAM, BLAS), "train_backward");
    dump_params("grad ", %(p)s_train_grads(tws), 1);
    {
        float *h = (float *)malloc(NIN * sizeof(float));
        get(h, ddin, NIN);
        dump("dinput", "", h, NIN);
        free(h);
    }
    { /* the losses on the portable target's outputs */
        float *yo = readf("out.bin", NOUT), *dl = (float *)malloc(NOUT * sizeof(float));
        float *dyo = dev(NOUT), *ddl = dev(NOUT), *dloss = dev(2), *dlab = dev(B + 1);
        int labels[B + 1];
        double loss;
        labels_of(yo, labels);
        put(dyo, yo, NOUT);
        for (s = 0; s < 3; s++) {
            labels[B] = 0; /* the count of correct predictions, after the labels */
            put(dlab, (const float *)(const void *)labels, B + 1);
            check(%(p)s_train_loss(tws, B, s, 0.05, 1.0, 0.8, 0.2, dyo, (const int *)(const void *)dlab, ddl,
                                   (double *)(void *)dloss, (int *)(void *)dlab + B, STREAM), "train_loss");
            get((float *)(void *)&loss, dloss, 2);
            get((float *)(void *)labels, dlab, B + 1);
            printf("loss%%d %%.17g\n", s, loss);
            printf("ncorrect%%d %%d\n", s, labels[B]);
            get(dl, ddl, NOUT);
            dump("dloss", s == 0 ? "0" : s == 1 ? "1" : "2", dl, NOUT);
        }
    }
    put(tws, init, pf); /* Adam from the portable target's gradients */
    put(%(p)s_train_grads(tws), grads, pf);
    check(%(p)s_train_optimizer_reset(tws, STREAM), "optimizer_reset");
    for (s = 1; s <= 2; s++)
        check(%(p)s_train_optimizer_step(tws, 1, s, 0.01, 0.0, 0.001, 0, 0.9, 0.999, 1e-8, STREAM), "optimizer_step");
    dump_params("adam ", tws, 1);
    put(tws, init, pf); /* SGD, training */
    check(%(p)s_train_optimizer_reset(tws, STREAM), "optimizer_reset");
    for (s = 0; s < 3; s++) {
        check(%(p)s_train_forward_at(tws, B, 5L * s, din, dout, 1, 11 + (unsigned long long)s, STREAM, BLAS),
              "train_forward_at");
        check(%(p)s_train_backward(tws, B, din, ddy, NULL, STREAM, BLAS), "train_backward");
        check(%(p)s_train_optimizer_step(tws, 0, s + 1, 0.05, 0.9, 0.0001, 1, 0.9, 0.999, 1e-8, STREAM),
              "optimizer_step");
    }
    dump_params("sgd ", tws, 1);
    return 0;
}
"""

# Reference networks for training: every standard neuron model and every
# surrogate, detach_reset, neuron parameters per layer and per neuron (per
# channel: tests/golden/neuron_params.snn), add, scale, identity, dropout,
# prev(), a user-written model, grouped, strided and padded convolutions
# without bias, pools reading spikes kept as bits, and the readouts the
# examples lack (rate, max, last).
TRAIN_NETS = {
    # the Open Neuromorphic benchmark's layer (bench/gpu_bench.py): no dense
    # layer with a bias, the output every step's spikes
    "nobias.snn": """
network NoBias {
  timesteps 7;
  input x : [24] encode sequence;
  y = x |> dense(40, bias = false) |> LIF(tau = 2.0);
  output y readout steps;
}
""",
    "surrogates.snn": """
neuron Leak(granularity = neuron) {
  param w = 0.5 per granularity;
  state v = 0.0;
  v = v * sigmoid(w) + x;
  emit spike(v - 1.0, atan(3.0));
  v = v - 0.5 * spike(v - 1.0, atan(3.0));
}

network Surrogates {
  timesteps 5;
  input x : [2, 4, 4] encode direct;
  f = x |> flatten;
  a = f |> dense(64) |> LIF(surrogate = atan(2.5));
  b = f |> dense(64) |> PLIF(surrogate = sigmoid(3.0), detach_reset = true);
  c = a |> dense(32) |> IF(surrogate = fast_sigmoid(20.0));
  d = b |> dense(32) |> ARLIF(surrogate = rect(1.5));
  e = c |> add(d) |> scale(0.75) |> DALIF(surrogate = triangle(0.8), granularity = neuron);
  g = e |> dropout(0.25) |> dense(32) |> Leak();
  h = g |> identity |> dense(32) |> LIF(decay_input = false, v_reset = 0.25, surrogate = triangle(1.2));
  out = h |> dense(6) |> LI();
  output out readout mean;
}
""",
    "recurrence.snn": """
network Recurrence {
  timesteps 6;
  input ev : [2, 3, 4] encode sequence;
  h = ev |> flatten |> dense(32) |> scale(3.0) |> add(prev(h) |> dense(32, bias = false)) |> LIF(tau = 3.0);
  k = h |> dense(16) |> scale(4.0) |> PLIF(granularity = neuron);
  out = k |> dense(4) |> LI(tau = 2.0);
  output out readout steps;
}
""",
    "convolutions.snn": """
network Convolutions {
  timesteps 4;
  input img : [4, 8, 8] encode direct;
  a = img |> conv2d(8, 3, stride = 2, padding = 1, groups = 2) |> scale(2.0) |> LIF();
  b = a |> maxpool(2, stride = 1, padding = 1) |> conv2d(8, 2, bias = false) |> batchnorm() |> PLIF(granularity = channel);
  c = b |> avgpool(2) |> flatten |> dense(6) |> add(a |> flatten |> dense(6)) |> LI();
  output c readout rate;
}
""",
    "readout_max.snn": """
network ReadoutMax {
  timesteps 4;
  input x : [12] encode direct;
  h = x |> dense(32) |> scale(2.0) |> LIF(surrogate = sigmoid(4.0));
  out = h |> dense(5) |> LI();
  output out readout max;
}
""",
    # a neuron model without states (the library's ReLU), which the portable
    # target runs as any neuron layer; also checked for inference
    "stateless.snn": """
network Stateless {
  timesteps 4;
  input x : [12] encode direct;
  r = x |> dense(24) |> ReLU();
  h = r |> dense(32) |> scale(2.0) |> LIF();
  out = h |> dense(5) |> LI();
  output out readout mean;
}
""",
    "readout_last.snn": """
network ReadoutLast {
  timesteps 4;
  input x : [12] encode direct;
  h = x |> dense(32) |> scale(2.0) |> IF();
  out = h |> dense(5) |> LI();
  output out readout last;
}
""",
}

# snnc train's loop on the device (compiler/backend/cuda/cuhost.c's
# <net>_host_dev_*, which the .cu has where snnc loads it): four steps of
# drawn batches, two losses, Adam then AdamW, clipping's scale once, the
# blocks' sums of squares every other step (and the same by hand from the
# gradients, fetched), the round trip of a data-parallel run (the
# gradients pulled to the host, halved there and pushed back: each value
# where it belongs), an evaluation forward, and the
# state brought back. Its reference is the same program built with
# -DSNNC_CUDA_EMULATE, whose training test_cuda_train.py compares with
# --target c; on a GPU this checks what emulation cannot: the stream's
# order of the copies, the pinned memory, the waits.
LOOP_NET = """
network Loop {
  timesteps 5;
  input x : [12] encode direct;
  h = x |> dense(32) |> PLIF();
  out = h |> dense(4) |> LI();
  output out readout steps;
}
"""
LOOP_MAIN = r"""#include <stdio.h>
#include <stdlib.h>
#include "%(p)s.h"

#ifdef __cplusplus
#define LOOP_API extern "C"
#else
#define LOOP_API
#endif
LOOP_API void %(p)s_host_dev_open(const void *ws, const float *m, const float *v, size_t nparam, long block);
LOOP_API void %(p)s_host_dev_get(void *ws, float *m, float *v, size_t nparam);
LOOP_API void %(p)s_host_dev_stage(int batch, const float *input, const int *labels);
LOOP_API void %(p)s_host_dev_begin(int batch, long first, unsigned long long seed, int kind, double lambda,
                                   double phi, double correct_rate, double incorrect_rate, int sums);
LOOP_API void %(p)s_host_dev_wait(double *loss, int *ncorrect, double *sumsq);
LOOP_API void %(p)s_host_dev_update(int scale, float c, int kind, long long step, double lr, double momentum,
                                    double weight_decay, int nesterov, double beta1, double beta2, double eps);
LOOP_API void %(p)s_host_dev_pull(void *ws);
LOOP_API void %(p)s_host_dev_push(const void *ws);
LOOP_API void %(p)s_host_dev_select(int local);
LOOP_API void %(p)s_host_dev_forward_at(void *ws, int batch, long first, const float *input, float *output,
                                        int training, unsigned long long seed);

static unsigned long long state = 88172645463325252ULL;

static double uniform(void)
{
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return (double)(state >> 11) / 9007199254740992.0;
}

int main(void)
{
    const int B = %(P)s_MAX_BATCH, T = %(P)s_TIMESTEPS, K = %(P)s_OUTPUT_SIZE, block = 64;
    const long nin = (%(P)s_INPUT_SEQUENCE ? T : 1) * (long)B * %(P)s_INPUT_SIZE, np = %(P)s_PARAM_FLOATS;
    float *ws = (float *)calloc(%(P)s_TRAIN_WORKSPACE_FLOATS, sizeof(float));
    float *ws2 = (float *)calloc(%(P)s_TRAIN_WORKSPACE_FLOATS, sizeof(float));
    float *m = (float *)calloc(np, sizeof(float)), *v = (float *)calloc(np, sizeof(float));
    float *x = (float *)calloc(nin, sizeof(float)), *y = (float *)calloc((size_t)T * B * K, sizeof(float));
    int *labels = (int *)calloc(B, sizeof(int)), nc = 0, step, k;
    double *sums = (double *)calloc(np / block + 2, sizeof(double)), loss = 0.0;
    long i, total = 0;
    if (!ws || !ws2 || !m || !v || !x || !y || !labels || !sums)
        return 1;
    %(p)s_host_dev_select(0);
    for (k = 0; k < %(P)s_NUM_PARAMS; k++)
        total += %(p)s_params[k].learnable ? %(p)s_params[k].count : 0;
    for (i = 0; i < np; i++)
        ws[i] = (float)(0.6 * uniform() - 0.3);
    %(p)s_host_dev_open(ws, m, v, (size_t)np, block);
    for (step = 1; step <= 5; step++) { /* snnc train's order: the next batch staged before the wait */
        for (i = 0; i < nin; i++)
            x[i] = (float)(3.0 * uniform());
        for (i = 0; i < B; i++)
            labels[i] = (int)(uniform() * K);
        %(p)s_host_dev_stage(B, x, labels);
        if (step > 1)
            %(p)s_host_dev_wait(&loss, &nc, sums);
        if (step > 1) {
            printf("loss %%.9g\nncorrect %%d\n", loss, nc);
            for (i = 0; (step - 1) %% 2 && i < (total + block - 1) / block; i++)
                printf("sumsq %%.17g\n", sums[i]);
            if ((step - 1) %% 2) { /* the same sums by hand from the gradients: runtime/snnrt.h's order */
                const float *gw = ws + (np + 15) / 16 * 16;
                double lane[32];
                long n = 0, at;
                int w, l;
                %(p)s_host_dev_get(ws, NULL, NULL, (size_t)np);
                for (k = 0; k < %(P)s_NUM_PARAMS; k++)
                    for (at = 0; %(p)s_params[k].learnable && at < %(p)s_params[k].count; at++, n++) {
                        if (n %% block == 0)
                            for (l = 0; l < 32; l++)
                                lane[l] = 0.0;
                        lane[n %% block %% 32] += (double)gw[%(p)s_params[k].offset + at] *
                                                 gw[%(p)s_params[k].offset + at];
                        if (n %% block == block - 1 || n == total - 1) {
                            for (w = 16; w > 0; w /= 2)
                                for (l = 0; l < w; l++)
                                    lane[l] += lane[l + w];
                            printf("sumsq_by_hand %%.17g\n", lane[0]);
                        }
                    }
                /* mpirun's round trip: the gradients (and buffers) pulled are dev_get's; halved
                   and pushed, they are what the device holds */
                for (i = 0; i < %(P)s_TRAIN_WORKSPACE_FLOATS; i++)
                    ws2[i] = -1.0f;
                %(p)s_host_dev_pull(ws2);
                n = 0;
                for (k = 0; k < %(P)s_NUM_PARAMS; k++)
                    for (at = 0; at < %(p)s_params[k].count; at++) {
                        const long o = %(p)s_params[k].offset + at, g = o + (gw - ws);
                        if (%(p)s_params[k].learnable) {
                            n += ws2[g] != ws[g];
                            ws2[g] *= 0.5f;
                        } else
                            n += ws2[o] != ws[o];
                    }
                %(p)s_host_dev_push(ws2);
                %(p)s_host_dev_get(ws, NULL, NULL, (size_t)np);
                for (k = 0; k < %(P)s_NUM_PARAMS; k++)
                    for (at = 0; %(p)s_params[k].learnable && at < %(p)s_params[k].count; at++)
                        n += gw[%(p)s_params[k].offset + at] != ws2[%(p)s_params[k].offset + at + (gw - ws)];
                printf("pull_push_mismatches %%ld\n", n);
            }
            %(p)s_host_dev_update(step == 4, 0.5f, step <= 3 ? 1 : 2, step - 1, 1e-2, 0.0, 1e-3, 0, 0.9, 0.999, 1e-8);
        }
        if (step <= 4)
            %(p)s_host_dev_begin(B, 0, 1000 + step, step == 3, 0.05, 1.0, 0.8, 0.2, step %% 2);
    }
    %(p)s_host_dev_forward_at(ws, B, 0, x, y, 0, 0);
    for (i = 0; i < (long)T * B * K; i++)
        printf("out %%.9g\n", y[i]);
    %(p)s_host_dev_get(ws, m, v, (size_t)np);
    for (i = 0; i < np; i++)
        printf("param %%.9g\nm %%.9g\nv %%.9g\n", ws[i], m[i], v[i]);
    return 0;
}
"""

FAST_ON_GPU = ("arlif_mlp.snn", "surrogates.snn")  # the models whose --math fast training nvcc builds
C_FLAGS = ["-std=c99", "-O2", "-ffp-contract=off", "-Wall", "-Wextra", "-Werror"]
NVCC_FLAGS = ["-arch=sm_90", "-O2", "-fmad=false", "-Xcompiler", "-Wall,-Wextra", "-Werror", "all-warnings"]
# The files the C program writes and the CUDA program reads, by kind of case
INPUTS = {"train": ["params.bin", "grads.bin", "out.bin"], "infer": ["params.bin"], "loop": []}
RUN_TIMEOUT = 120  # seconds, a program of the pack on the GPU (device mode)


def sh(cmd, cwd=None, timeout=None):
    try:
        p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return 124, "timed out after %d s" % timeout
    return p.returncode, p.stdout + p.stderr


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


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
    """Without a GPU (and without SNNC_CUDA_EMULATE): snnc train's reason for
    not running the target's code here (test_cuda_train.py trains with it)."""
    env = {k: v for k, v in os.environ.items() if k != "SNNC_CUDA_EMULATE"}
    p = subprocess.run([snnc, "train", model, "--target", "cuda", "--init", "1", "--epochs", "1"],
                       capture_output=True, text=True, env=env)
    rc, msg = p.returncode, p.stdout + p.stderr
    if rc == 0 or not re.search(r"target 'cuda' needs an NVIDIA GPU", msg):
        print("FAIL: train --target cuda: expected why it cannot run the code here, got (exit %d)\n%s" % (rc, msg))
        return 1
    return 0


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


READOUTS = ["steps", "count", "rate", "mean", "last", "max"]  # runtime/snnrt.h's SnnrtReadout
FLOOR = 1e-3  # of the network's largest gradient: below, a gradient is rounding noise (1e-4 of it: 1e-7)


def train_diff(got, ref):
    """'' when the training run got is within the bounds of ref, else why not;
    and the largest relative error of a gradient."""
    if [l for l, _ in got] != [l for l, _ in ref]:
        return "%d values printed against %d" % (len(got), len(ref)), 0.0
    groups = {}
    for (label, g), (_, r) in zip(got, ref):
        groups.setdefault(label, []).append((g, r))
    floor = FLOOR * max([abs(r) for label, r in ref if label.startswith("grad ")] + [0.0])
    worst = 0.0
    for label, pairs in groups.items():
        big = max(abs(r) for _, r in pairs)
        for j, (g, r) in enumerate(pairs):
            if (g != g) != (r != r):
                return "%s[%d]: %r against %r" % (label, j, g, r), worst
            kind = label.split(" ")[0]
            if kind in ("spikes", "neurons", "adam") or kind.startswith("ncorrect"):  # the same numbers
                bad = g != r
            elif kind in ("grad", "dinput"):
                err = abs(g - r) / max(big, floor, 1e-30)
                worst = max(worst, err)
                bad = err > 1e-4
            elif kind.startswith("loss") or kind.startswith("dloss"):  # double, rounded to float
                bad = abs(g - r) > 1e-6 * max(big, 1e-30)
            else:  # out, stat (batchnorm's running statistics), sgd: within round-off
                bad = abs(g - r) > 1e-5 * max(1.0, big) if kind == "out" else abs(g - r) > 1e-4 * max(big, 1e-30)
            if bad:
                return "%s[%d]: %r against %r" % (label, j, g, r), worst
    return "", worst


def loop_diff(got, ref):
    """'' when the device loop's values got (LOOP_MAIN) are ref's within rounding, else why not: the
    counts of correct predictions the same, losses within 1e-5 relative, everything else within 1e-4 of
    its label's largest magnitude (a few steps of training from products summed in another order)."""
    if [l for l, _ in got] != [l for l, _ in ref]:
        return "%d values printed against %d" % (len(got), len(ref))
    big = {}
    for label, r in ref:
        big[label] = max(big.get(label, 0.0), abs(r))
    for j, ((label, g), (_, r)) in enumerate(zip(got, ref)):
        tol = 0.0 if label == "ncorrect" else 1e-5 * abs(r) if label == "loss" else 1e-4 * big[label]
        if (g != g) != (r != r) or abs(g - r) > tol:
            return "%s (value %d): %r against %r" % (label, j, g, r)
    return ""


def sums_by_hand(got):
    """'' when the device loop's blocks' sums of squares (LOOP_MAIN's sumsq) are, bit for bit, those that it
    adds by hand from the gradients in runtime/snnrt.h's order (sumsq_by_hand), else why not."""
    sums = [v for label, v in got if label == "sumsq"]
    hand = [v for label, v in got if label == "sumsq_by_hand"]
    if not sums or len(sums) != len(hand):
        return "%d blocks' sums against %d by hand" % (len(sums), len(hand))
    bad = [k for k, (a, b) in enumerate(zip(sums, hand)) if a != b]
    return "block sum %d: %r against %r by hand" % (bad[0], sums[bad[0]], hand[bad[0]]) if bad else ""


def pull_push(got):
    """'' when LOOP_MAIN's round trips of mpirun (dev_pull, dev_push) found every value where it belongs,
    else why not."""
    counts = [v for label, v in got if label == "pull_push_mismatches"]
    if not counts:
        return "no round trip through dev_pull and dev_push was printed"
    return "" if not any(counts) else "dev_pull and dev_push: %d values not where they belong" % max(counts)


def npy_write(path, shape, values):
    """A float32 .npy file (the standard library alone)."""
    head = "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }" % "".join("%d, " % n for n in shape)
    head += " " * (63 - (10 + len(head)) % 64) + "\n"
    data = array.array("f", values)
    if sys.byteorder == "big":
        data.byteswap()
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(head)) + head.encode() + data.tobytes())


def check_loop(snnc, tmp, mode, cc, nvcc, gpu, pack):
    """snnc train's loop on the device (LOOP_MAIN) against its emulated build: (passed, failed)."""
    what = "snnc train's device loop (Loop)"
    d = os.path.join(tmp, "loop")
    keep = os.path.join(d, "cuda")
    os.makedirs(d)
    write(os.path.join(d, "loop.snn"), LOOP_NET)
    npy_write(os.path.join(d, "x.npy"), [8, 12], [0.25 * (k % 7) for k in range(8 * 12)])
    npy_write(os.path.join(d, "g.npy"), [5, 8, 4], [1.0] * (5 * 8 * 4))
    # the .cu as snnc writes it for its own loop: with the host API (snnc grad builds the training code too)
    env = dict(os.environ, SNNC_CUDA_EMULATE="1")
    p = subprocess.run([snnc, "grad", os.path.join(d, "loop.snn"), "--target", "cuda", "--init", "1", "--input",
                        os.path.join(d, "x.npy"), "--grad-output", os.path.join(d, "g.npy"), "--output",
                        os.path.join(d, "g.safetensors"), "--keep-build", keep], capture_output=True, text=True,
                       env=env)
    if p.returncode != 0 or not os.path.exists(os.path.join(keep, "loop.cu")):
        print("FAIL: %s: snnc grad --keep-build (emulated; exit %d)\n%s" % (what, p.returncode, p.stdout + p.stderr))
        return 0, 1
    src = LOOP_MAIN % {"p": "loop", "P": "LOOP"}
    ref_dir = os.path.join(d, "emulated")
    os.makedirs(ref_dir)
    for f in ("loop.cu", "loop.h"):
        shutil.copy(os.path.join(keep, f), ref_dir)
    rc, msg = build_cuda("emulate", ref_dir, "loop", src, cc, nvcc)
    if rc == 0:
        rc, msg = sh([os.path.join(ref_dir, "prog")], cwd=ref_dir)
    if rc != 0:
        print("FAIL: %s: the emulated build (exit %d)\n%s" % (what, rc, msg[-3000:]))
        return 0, 1
    ref = values(msg)
    why = sums_by_hand(ref) or pull_push(ref)
    if why:
        print("FAIL: %s: emulated: %s" % (what, why))
        return 0, 1
    if mode == "emulate":
        print("%s: built and run emulated (%d values; the blocks' sums of squares as by hand; dev_pull and "
              "dev_push in place)" % (what, len(ref)))
        return 1, 0
    rc, msg = build_cuda(mode, keep, "loop", src, cc, nvcc)
    if rc != 0:
        return 0, build_failed("loop", what, mode, msg)
    if mode == "nvcc" and not gpu:
        print("%s: compiled by nvcc" % what)
        return 1, 0
    return finish(mode, pack, "loop", what, keep, "loop", ref)


def program(main, probe, p, P, hdr):
    """The inference program main (C_MAIN or CU_MAIN), printing every record the header hdr states (probe);
    a rate-encoded input's spikes drawn from seed 5 (<net>_seed)."""
    probes = re.findall(r"^   (\d+): \S+ \((\d+) floats per sample\)", hdr, re.M)
    text = "".join(probe % {"p": p, "k": int(k), "n": int(n)} for k, n in probes)
    seed = ""
    if "rate-encoded into spikes" in hdr:
        seed = "    %s_seed(ws, 5);\n" % p if main is C_MAIN else "    check(%s_seed(ws, 5, STREAM), \"seed\");\n" % p
    return main % {"p": p, "P": P, "probes": text, "seed": seed}


def nvcc_build(nvcc, folder, p):
    """prog built in folder by nvcc from p.cu and main.cu: (exit status, output)."""
    return sh([nvcc] + NVCC_FLAGS + ["-o", "prog", p + ".cu", "main.cu", "-lcublas"], cwd=folder)


def build_cuda(mode, folder, p, src, cc, nvcc):
    """The CUDA target's program src written into folder (main.c emulated, else main.cu) and prog built there
    as the mode builds it (prepare: not at all): (exit status, output)."""
    if mode == "emulate":
        write(os.path.join(folder, "main.c"), src)
        return sh([cc] + C_FLAGS + ["-Wpedantic", "-DSNNC_CUDA_EMULATE", "-o", "prog", "-x", "c", p + ".cu", "-x",
                                    "none", "main.c", "-lm"], cwd=folder)
    write(os.path.join(folder, "main.cu"), src)
    return nvcc_build(nvcc, folder, p) if mode == "nvcc" else (0, "")


def build_failed(kind, what, mode, msg):
    """Says that the CUDA program of a case (kind train or infer) did not build: 1 (failed)."""
    print("FAIL: %s [cuda]: %s\n%s" % (what, "nvcc" if kind == "train" and mode != "emulate" else "build",
                                       msg[-3000:]))
    return 1


def compare(kind, what, out, ref):
    """The CUDA program's output out against ref, the values of the C program's (diff for inference,
    train_diff for training), the case's line printed: (passed, failed)."""
    try:
        got = values(out)
    except ValueError:
        print("FAIL: %s [cuda]: output that is not lines of a label and a value\n%s" % (what, out[-3000:]))
        return 0, 1
    if kind == "loop":
        why = loop_diff(got, ref) or sums_by_hand(got) or pull_push(got)
        if why:
            print("FAIL: %s: on the GPU against its emulated build: %s" % (what, why))
            return 0, 1
        print("%s: %d values as its emulated build's" % (what, len(ref)))
        return 1, 0
    if kind == "train":
        why, worst = train_diff(got, ref)
        if why:
            print("FAIL: %s: --target cuda against --target c: %s" % (what, why))
            return 0, 1
        spikes = [v for label, v in ref if label == "spikes"]
        print("%s: %d values as the portable target's (%d spikes; largest gradient error %.2g relative)" %
              (what, len(ref), int(spikes[0]) if spikes else 0, worst))
        return 1, 0
    why = diff(got, ref)
    if why:
        print("FAIL: %s: --target cuda against --target c: %s" % (what, why))
        return 0, 1
    nz = sum(1 for label, v in ref if label.startswith("probe") and v != 0)
    print("%s: %d values as the portable target's (%d records not zero)" % (what, len(ref), nz))
    return 1, 0


def run_case(kind, what, folder, ref, timeout=None):
    """The CUDA program built in folder run there and its output compared with ref: (passed, failed)."""
    rc, msg = sh([os.path.join(os.path.abspath(folder), "prog")], cwd=folder, timeout=timeout)
    if rc != 0:
        print("FAIL: %s [cuda]: run (exit %d)\n%s" % (what, rc, msg[-3000:]))
        return 0, 1
    return compare(kind, what, msg, ref)


def pack_ref(ref):
    """The values ref as ref.gz holds them (gzip's input): a line of JSON, the labels as runs [label, count]
    and the values that a float32 printed with %.9g does not give back as [index, value] (doubles); then every
    value as a float32, little-endian."""
    runs = []
    for label, _ in ref:
        if runs and runs[-1][0] == label:
            runs[-1][1] += 1
        else:
            runs.append([label, 1])
    vs = [v for _, v in ref]
    floats = array.array("f", vs)
    doubles = [[i, v] for i, (f, v) in enumerate(zip(floats, vs)) if float("%.9g" % f) != v]
    if sys.byteorder == "big":
        floats.byteswap()
    return json.dumps({"labels": runs, "doubles": doubles}).encode() + b"\n" + floats.tobytes()


def unpack_ref(data):
    """The values that pack_ref packed into data."""
    head, _, raw = data.partition(b"\n")
    head = json.loads(head)
    floats = array.array("f")
    floats.frombytes(raw)
    if sys.byteorder == "big":
        floats.byteswap()
    vs = [float("%.9g" % f) for f in floats]
    for i, v in head["doubles"]:
        vs[i] = v
    return list(zip([label for label, n in head["labels"] for _ in range(n)], vs))


def pack_case(pack, kind, what, folder, p, ref):
    """The case whose CUDA program is in folder put into the pack: its .cu and .h and main.cu in a folder of
    the pack named as folder's parent, with ref.gz (ref, the values of the C program's output: pack_ref); the
    files it reads (INPUTS) gzipped in inputs/, once each (named by their SHA-1); an entry of the manifest:
    (1, 0)."""
    name = os.path.basename(os.path.dirname(folder))
    d = os.path.join(pack["dir"], name)
    os.makedirs(d)
    for f in (p + ".cu", p + ".h", "main.cu"):
        shutil.copy(os.path.join(folder, f), d)
    with gzip.open(os.path.join(d, "ref.gz"), "wb") as f:
        f.write(pack_ref(ref))
    inputs = {}
    for f in INPUTS[kind]:
        with open(os.path.join(folder, f), "rb") as g:
            data = g.read()
        inputs[f] = "inputs/%s.gz" % hashlib.sha1(data).hexdigest()
        if not os.path.exists(os.path.join(pack["dir"], inputs[f])):
            with gzip.open(os.path.join(pack["dir"], inputs[f]), "wb") as g:
                g.write(data)
    pack["cases"].append({"dir": name, "kind": kind, "what": what, "prog": p, "inputs": inputs})
    print("%s: prepared (%d values to compare)" % (what, len(ref)))
    return 1, 0


def unpack_case(pack, case):
    """The files that the case's program reads (pack_case), unzipped into its folder; and the values of its
    reference."""
    for name, src in sorted(case["inputs"].items()):
        with gzip.open(os.path.join(pack, src), "rb") as f, open(os.path.join(pack, case["dir"], name), "wb") as g:
            shutil.copyfileobj(f, g)
    with gzip.open(os.path.join(pack, case["dir"], "ref.gz"), "rb") as f:
        return unpack_ref(f.read())


def finish(mode, pack, kind, what, folder, p, ref):
    """The case whose CUDA program is built in folder and whose inputs are there: put into the pack
    (prepare mode), else run and compared with ref: (passed, failed)."""
    if mode == "prepare":
        return pack_case(pack, kind, what, folder, p, ref)
    return run_case(kind, what, folder, ref)


def train_reference(snnc, model, d, p, P, ro, cc, snnrt, what, math="exact"):
    """The C target's training program (--math math, TRAIN_C_MAIN) built and run in d/c, where it writes
    INPUTS["train"]: the values of its output, or None (the failure printed)."""
    c = os.path.join(d, "c")
    rc, msg = sh([snnc, "compile", model, "--train", "--batch", "3", "--target", "c", "--math", math, "-o", c])
    if rc != 0:
        print("FAIL: %s [c]: snnc compile\n%s" % (what, msg))
        return None
    write(os.path.join(c, "main.c"), TRAIN_C_MAIN % {"p": p, "P": P, "ro": READOUTS.index(ro)})
    # a runtime library built with the sanitizers links only with them
    san = ["-fsanitize=address,undefined"] if b"__asan" in open(snnrt, "rb").read() else []
    rc, msg = sh([cc] + C_FLAGS + san + ["-I", os.path.dirname(os.path.abspath(__file__)) + "/../../runtime", "-o",
                                         "prog", p + ".c", "main.c", snnrt, "-fopenmp", "-lz", "-lm"], cwd=c)
    if rc == 0:
        keep = os.environ.get("ASAN_OPTIONS")
        if san:  # the small main here frees nothing at exit: leaks are not the question
            os.environ["ASAN_OPTIONS"] = (keep + ":" if keep else "") + "detect_leaks=0"
        rc, msg = sh([os.path.join(c, "prog")], cwd=c)
        if san:
            os.environ.pop("ASAN_OPTIONS") if keep is None else os.environ.update(ASAN_OPTIONS=keep)
    if rc != 0:
        print("FAIL: %s [c]: build or run (exit %d)\n%s" % (what, rc, msg[-3000:]))
        return None
    return values(msg)


def infer_reference(snnc, model, d, p, P, args, cc, what):
    """The C target's inference program (C_MAIN; snnc compile's arguments args) built and run in d/c, where it
    writes params.bin: the values of its output, or None (the failure printed)."""
    c = os.path.join(d, "c")
    rc, msg = sh([snnc, "compile", model, "--batch", "3", "--target", "c", "-o", c] + args)
    if rc != 0:
        print("FAIL: %s [c]: snnc compile\n%s" % (what, msg))
        return None
    write(os.path.join(c, "main.c"), program(C_MAIN, C_PROBE, p, P, open(os.path.join(c, p + ".h")).read()))
    rc, msg = sh([cc] + C_FLAGS + ["-o", "prog", p + ".c", "main.c", "-lm"], cwd=c)
    if rc != 0:
        print("FAIL: %s [c]: build\n%s" % (what, msg[-3000:]))
        return None
    rc, msg = sh([os.path.join(c, "prog")], cwd=c)
    if rc != 0:
        print("FAIL: %s [c]: run (exit %d)\n%s" % (what, rc, msg[-3000:]))
        return None
    return values(msg)


def calls_math(path):
    """The functions of runtime/snnrt_math.inc that the neuron programs of the generated code in path call
    (cemit.c's cg_eq_emit: const float t<i> = <function>(...))."""
    return sorted(set(re.findall(r"const float t\d+ = (snnrt_\w+)\(", open(path).read())))


def check_training(snnc, model, tmp, mode, cc, nvcc, gpu, snnrt, pack=None, math="exact"):
    """--train --target cuda against --target c, both --math math (module docstring): (passed, failed).
    With --math fast, nothing where the model calls none of the fast functions (the same code as exact)."""
    name = os.path.basename(model)
    what = name + " --train" + (" --math fast" if math == "fast" else "")
    rc, ir = sh([snnc, "compile", model, "--train", "--emit-ir"])
    if rc != 0 or "weight" not in ir:
        return 0, 0
    net = re.search(r"^network (\w+)", ir, re.M).group(1)
    p, P = net.lower(), net.upper()
    d = os.path.join(tmp, "train-%s-%s" % (p, math))
    os.makedirs(d)
    cu = os.path.join(d, "cuda")
    rc, msg = sh([snnc, "compile", model, "--train", "--batch", "3", "--target", "cuda", "--math", math, "-o", cu])
    if rc != 0:
        print("FAIL: %s [cuda]: snnc compile\n%s" % (what, msg))
        return 0, 1
    if math == "fast":  # the same calls as the portable target's code
        probe = os.path.join(d, "c-fast")
        rc, _ = sh([snnc, "compile", model, "--train", "--batch", "3", "--target", "c", "--math", "fast", "-o", probe])
        want = calls_math(os.path.join(probe, p + ".c")) if rc == 0 else None
        got = calls_math(os.path.join(cu, p + ".cu"))
        if want != got:
            print("FAIL: %s: the cuda target's code calls %s, the portable target's %s" % (what, got, want))
            return 0, 1
        if not got:
            return 0, 0
    hdr = open(os.path.join(cu, p + ".h")).read()
    rc, msg = sh([snnc, "info", model, "--train", "--target", "cuda", "--batch", "3"])
    said = re.search(r"^device memory of target cuda \(batch 3\): .*; training (\d+) bytes", msg, re.M)
    floats = re.search(r"_TRAIN_WORKSPACE_FLOATS (\d+)L", hdr)
    if mode == "emulate" and (rc != 0 or not said or not floats or int(said.group(1)) != 4 * int(floats.group(1))):
        print("FAIL: %s: snnc info --train --target cuda against the header's TRAIN_WORKSPACE_FLOATS:\n%s" % (name, msg))
        return 0, 1
    ro = re.search(r"\(readout (\w+)\)", hdr).group(1)
    rc, msg = build_cuda(mode, cu, p, TRAIN_CU_MAIN % {"p": p, "P": P}, cc, nvcc)
    if rc != 0:
        return 0, build_failed("train", what, mode, msg)
    if mode == "nvcc" and not gpu:
        print("%s: compiled by nvcc" % what)
        return 1, 0
    ref = train_reference(snnc, model, d, p, P, ro, cc, snnrt, what, math)
    if ref is None:
        return 0, 1
    for f in INPUTS["train"]:
        shutil.copy(os.path.join(d, "c", f), cu)
    return finish(mode, pack, "train", what, cu, p, ref)


def infer_case(snnc, model, args, what, d, p, P, mode, cc, nvcc, gpu, pack):
    """One variant of inference (snnc compile's arguments args) in d: the C target's program, then the CUDA
    target's, built, run and compared as the mode does: (passed, failed)."""
    ref = None
    if mode != "nvcc" or gpu:  # without a GPU, nvcc's build is all there is to check
        ref = infer_reference(snnc, model, d, p, P, args, cc, what)
        if ref is None:
            return 0, 1
    cu = os.path.join(d, "cuda")
    rc, msg = sh([snnc, "compile", model, "--batch", "3", "--target", "cuda", "-o", cu] + args)
    if rc != 0:
        print("FAIL: %s [cuda]: snnc compile\n%s" % (what, msg))
        return 0, 1
    hdr = open(os.path.join(cu, p + ".h")).read()
    failed = check_info(snnc, model, args, hdr, what) if mode == "emulate" else 0
    rc, msg = build_cuda(mode, cu, p, program(CU_MAIN, CU_PROBE, p, P, hdr), cc, nvcc)
    if rc != 0:
        return 0, failed + build_failed("infer", what, mode, msg)
    if mode == "nvcc" and not gpu:
        print("%s: compiled by nvcc" % what)
        return 1, failed
    for f in INPUTS["infer"]:
        shutil.copy(os.path.join(d, "c", f), cu)
    ok, bad = finish(mode, pack, "infer", what, cu, p, ref)
    return ok, failed + bad


def check_inference(snnc, model, ir, tmp, mode, cc, nvcc, gpu, pack=None):
    """The CUDA target's inference against the C target's (module docstring), every variant of the mode:
    (passed, failed)."""
    name = os.path.basename(model)
    net = re.search(r"^network (\w+)", ir, re.M).group(1)
    p, P = net.lower(), net.upper()
    # every neuron layer's output, and its v where the model has one
    layers = re.findall(r"^\s*%\d+ (\w+) = neuron ", ir, re.M)[:16]
    record = [a for n in layers for a in ("--record", n)]
    with_v = record + [a for n in layers for a in ("--record", n + ".v")]
    if sh([snnc, "compile", model, "--emit-ir"] + with_v)[0] == 0:
        record = with_v
    passed = failed = 0
    # nvcc takes seconds a file: one variant there, all emulated
    variants = [[]] + ([["--chunk", "3"]] if mode == "emulate" else [])
    probe = os.path.join(tmp, "fast-" + p)
    if mode == "emulate" and sh([snnc, "compile", model, "--target", "c", "--math", "fast", "-o", probe])[0] == 0 \
            and calls_math(os.path.join(probe, p + ".c")):
        variants.append(["--math", "fast"])
    for k, extra in enumerate(variants):
        what = "%s %s" % (name, " ".join(extra + record) or "")
        d = os.path.join(tmp, "%s%d" % (p, k))
        os.makedirs(d)
        ok, bad = infer_case(snnc, model, extra + record, what, d, p, P, mode, cc, nvcc, gpu, pack)
        passed += ok
        failed += bad
    return passed, failed


def new_pack(out):
    """prepare mode's pack in the folder out, which is absent or empty (else the usage, exit 2)."""
    if not out or (os.path.exists(out) and os.listdir(out)):
        print("prepare: --out PACK, a folder absent or empty, is needed%s" % (": %s is not empty" % out if out else ""))
        sys.exit(2)
    os.makedirs(os.path.join(out, "inputs"), exist_ok=True)
    return {"dir": out, "cases": []}


def close_pack(pack, failed):
    """The pack's manifest.json written and what it holds said: the exit status of prepare mode."""
    write(os.path.join(pack["dir"], "manifest.json"), json.dumps(pack["cases"], indent=1) + "\n")
    size = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(pack["dir"]) for f in fs)
    n = {k: sum(1 for c in pack["cases"] if c["kind"] == k) for k in ("train", "infer", "loop")}
    print("%d cases prepared (%d training, %d inference, %d of snnc train's device loop), %d failed" %
          (len(pack["cases"]), n["train"], n["infer"], n["loop"], failed))
    print("%s: %d bytes; run it where a GPU is: test_cuda.py device PACK" % (pack["dir"], size))
    return 1 if failed else 0


def device(pack):
    """device mode (module docstring): the exit status."""
    nvcc = find_nvcc()
    if not nvcc:
        print("SKIPPED: no nvcc (CUDACXX, PATH, CUDA_HOME/bin, /usr/local/cuda/bin): the CUDA toolkit is not installed")
        return 77
    with open(os.path.join(pack, "manifest.json")) as f:
        cases = json.load(f)
    gpu = have_gpu()
    print("nvcc: %s; %s" % (nvcc, "a GPU is present: the programs run" if gpu else
                            "skipped: no GPU, the programs are compiled but not run"))
    jobs = os.cpu_count() or 1
    print("compiling %d programs, %d at a time" % (len(cases), jobs))
    sys.stdout.flush()
    start = time.time()
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        builds = list(pool.map(lambda c: nvcc_build(nvcc, os.path.join(pack, c["dir"]), c["prog"]), cases))
    built = time.time()
    passed = failed = 0
    for c, (rc, msg) in zip(cases, builds):
        folder = os.path.join(pack, c["dir"])
        if rc != 0:
            failed += build_failed(c["kind"], c["what"], "device", msg)
        elif not gpu:
            passed += 1
            print("%s: compiled by nvcc" % c["what"])
        else:
            ok, bad = run_case(c["kind"], c["what"], folder, unpack_case(pack, c), RUN_TIMEOUT)
            passed += ok
            failed += bad
        sys.stdout.flush()
    print("time: %.1f s compiling, %.1f s running%s" % (built - start, time.time() - built, "" if gpu else
                                                          " (skipped: no GPU)"))
    if gpu:
        print("%d passed, %d failed" % (passed, failed))
    else:
        print("%d compiled, %d failed; the runs skipped: no GPU" % (passed, failed))
    return 1 if failed else 0


def main():
    mode = sys.argv[1]
    if mode == "device":
        return device(sys.argv[2])
    snnc, dirs = sys.argv[2], sys.argv[3:]
    opts = {}
    while dirs[:1] in (["--snnrt"], ["--out"]):
        opts[dirs[0]], dirs = dirs[1], dirs[2:]
    snnrt = os.path.abspath(opts["--snnrt"]) if "--snnrt" in opts else None  # linked in the build's folder
    pack = new_pack(opts.get("--out")) if mode == "prepare" else None
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
        if mode == "emulate" and mlp and not have_gpu():
            failed += check_errors(snnc, mlp[0], tmp)
        nets = os.path.join(tmp, "nets")
        os.makedirs(nets)
        for f, text in sorted(TRAIN_NETS.items()):
            write(os.path.join(nets, f), text)
        ok, bad = check_loop(snnc, tmp, mode, cc, nvcc, gpu, pack)
        passed += ok
        failed += bad
        if snnrt and os.path.exists(snnrt):
            for model in models(dirs) + models([nets]):
                ok, bad = check_training(snnc, model, tmp, mode, cc, nvcc, gpu, snnrt, pack)
                passed += ok
                failed += bad
                # --math fast: every model emulated; nvcc, which takes seconds a file,
                # builds (and a GPU runs) two: tanh and sigmoid, and every surrogate
                if mode == "emulate" or os.path.basename(model) in FAST_ON_GPU:
                    ok, bad = check_training(snnc, model, tmp, mode, cc, nvcc, gpu, snnrt, pack, "fast")
                    passed += ok
                    failed += bad
        else:
            print("training: skipped: no runtime library (--snnrt) for the portable target's optimizer")
        for model in models(dirs) + [os.path.join(nets, "stateless.snn")]:
            rc, ir = sh([snnc, "compile", model, "--emit-ir"])
            if rc != 0:
                continue
            ok, bad = check_inference(snnc, model, ir, tmp, mode, cc, nvcc, gpu, pack)
            passed += ok
            failed += bad
    if pack:
        return close_pack(pack, failed)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
