/*
 * cuda.c: the CUDA target, --target cuda: the opening of <net>.cu, the
 * device API over the schedule, the header, the table of kernels, and what
 * snnc does with the target beyond writing it.
 *
 * The API is the portable target's (capi.c) on device pointers: the
 * workspace (WORKSPACE_SIZE bytes of device memory, laid out as the C
 * target's, then the convolutions' scratch), the input and the output live
 * on the GPU; every function takes the CUDA stream its work goes to, those
 * with matrix products a cuBLAS handle too (bound to that stream), and
 * returns 0 or an error. forward runs the groups chunk by chunk as the C
 * target does; step reads its step counter from the workspace, which
 * waits for the stream once. An input encoded into spikes is encoded on
 * the device, into the portable target's spikes; load_weights and
 * init_weights are the portable target's, on a host copy of the
 * parameters.
 *
 * With --train, the training API too (cutrain.c, the backward kernels in
 * cubackward.c): train_forward, train_backward and the optimizer on the
 * device, for every op.
 * snnc compile writes the files anywhere; snnc run, grad and train build
 * and load them where a GPU is (cuhost.c; snnc train's loop keeps the
 * training workspace on the device).
 */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <string.h>

#include "cuda.h"

static long long ws_floats(Emit *e) { return (long long)(cp_scratch(e, &e->g->infer) + e->iscratch); }

static long long count(Emit *e, int i) { return shape_count(&e->g->nodes.items[i].shape); }

/* Whether the graph has a matrix product (and so uses cuBLAS). */
static int has_products(const IrGraph *g) {
    for (int i = 0; i < g->nodes.len; i++)
        if (!g->nodes.items[i].dead && (g->nodes.items[i].op == IR_DENSE || g->nodes.items[i].op == IR_CONV2D))
            return 1;
    return 0;
}

/* Whether the device draws random numbers: rate spikes, dropout masks. */
static int draws(const IrGraph *g) {
    for (int i = 0; g->train && i < g->nodes.len; i++)
        if (!g->nodes.items[i].dead && g->nodes.items[i].op == IR_DROPOUT)
            return 1;
    return g->encoding == ENC_RATE;
}

static int has_neurons(const IrGraph *g) {
    for (int i = 0; i < g->nodes.len; i++)
        if (!g->nodes.items[i].dead && g->nodes.items[i].op == IR_NEURON)
            return 1;
    return 0;
}

/* ---- the encoder of a rate or latency input ---- */

/* The inference workspace's encoder slot: in the step counter's slot,
   after the counter's two longs, as the portable target keeps it (capi.c):
   the seed, its complement (a seed that was never set reads as 0) and the
   steps since reset. */
static const char *enc_slot(Emit *e) { return arena_printf(e->g->arena, "%s_enc(ws)", e->p); }

/* encode_k writes a step's spikes from the intensities, a thread per
   element, the portable target's bits: rate spikes are splitmix64 of
   (seed, step, sample, element), chained as capi.c's encoder chains them;
   latency spikes the same arithmetic. enc_steps_k sets or advances the
   steps since reset in the slot, so that step() never waits to read them. */
static void encoder(Emit *e) {
    const IrGraph *g = e->g;
    const char *p = e->p, *P = e->P;
    if (!ENC_SPIKES(g->encoding))
        return;
    long long nin = count(e, g->input);
    const IrPlan *Pl = &g->infer;
    cg_blank(e);
    cg_line(e, "/* The encoder's slot of the inference workspace: the seed, its complement, the steps");
    cg_line(e, "   since reset (after the step counter's two longs). */");
    cg_line(e, "static unsigned long long *%s_enc(float *ws)", p);
    cg_line(e, "{");
    cg_line(e, "    return (unsigned long long *)(void *)((char *)(%s) + 2 * sizeof(long));", cp_ws(e, Pl, Pl->counter));
    cg_line(e, "}");
    cg_blank(e);
    if (g->encoding == ENC_RATE) {
        cg_line(e, "/* Rate encoding of step t: element i of sample b spikes when u < x, with");
        cg_line(e, "   u = unit(mix(mix(mix(mix(seed) ^ t) ^ (first + b)) ^ i)) (splitmix64, the portable");
        cg_line(e, "   target's draws): first + b is the sample's place in the whole batch. With slot");
        cg_line(e, "   (inference), the seed is the one %s_seed set (else 0) and t counts from the", p);
        cg_line(e, "   steps since reset. A thread per element of y [B, %lld]. */", nin);
    } else {
        cg_line(e, "/* Latency encoding of step t: element i spikes once, at the step");
        cg_line(e, "   rint((T - 1) (1 - min(x, 1))), when x >= %s; never below. With slot", cg_flt(e, g->enc_threshold));
        cg_line(e, "   (inference), t counts from the steps since reset. A thread per element of");
        cg_line(e, "   y [B, %lld]. */", nin);
    }
    cg_line(e, "%s_GLOBAL void %s_encode_k(float *y, const float *x, long n, long first, unsigned long long t,", P, p);
    cg_line(e, "%*sunsigned long long seed, const unsigned long long *slot)", (int)(strlen(P) + strlen(p)) + 23, "");
    cg_line(e, "{");
    e->ind++;
    cg_line(e, "const long j = %s_TID;", P);
    cg_line(e, "if (j >= n)");
    cg_line(e, "    return;");
    cg_line(e, "if (slot) {");
    if (g->encoding == ENC_RATE)
        cg_line(e, "    seed = slot[1] == ~slot[0] ? slot[0] : 0ULL;");
    cg_line(e, "    t += slot[2];");
    cg_line(e, "}");
    if (g->encoding == ENC_RATE) {
        cg_line(e, "{");
        cg_line(e, "    const unsigned long long h = %s_mix_d(%s_mix_d(%s_mix_d(seed) ^ t) ^ (unsigned long long)(first + j / %lld));",
                p, p, p, nin);
        cg_line(e, "    y[j] = %s_unit_d(%s_mix_d(h ^ (unsigned long long)(j %% %lld))) < x[j] ? 1.0f : 0.0f;", p, p, nin);
        cg_line(e, "}");
    } else {
        cg_line(e, "(void)first;");
        cg_line(e, "(void)seed;");
        cg_line(e, "{");
        cg_line(e, "    const float v = x[j] < 1.0f ? x[j] : 1.0f;");
        cg_line(e, "    y[j] = x[j] >= %s && (unsigned long long)rintf(%s * (1.0f - v)) == t ? 1.0f : 0.0f;",
                cg_flt(e, g->enc_threshold), cg_flt(e, (float)(g->timesteps - 1)));
        cg_line(e, "}");
    }
    e->ind--;
    cg_line(e, "}");
    cu_map_kernel(e, "The steps since reset in the encoder's slot: set to v, or with add advanced by v.", "enc_steps_k",
                  "unsigned long long *slot, unsigned long long v, int add", "1",
                  "slot[2] = add ? slot[2] + v : v;");
}

void cu_encode_steps(Emit *e, const IrPlan *P, const char *t0, const char *t1, const char *first, const char *seed,
                     const char *slot) {
    const IrGraph *g = e->g;
    long long nin = count(e, g->input);
    cg_line(e, "for (long ts = %s; ts < %s; ts++) /* the input, %s-encoded */", t0, t1, encoding_names[g->encoding]);
    cg_line(e, "    %s_LAUNCH(B * %lld, st, %s_encode_k, (%s, input, B * %lld, %s, (unsigned long long)ts, %s, %s));", e->P,
            nin, e->p, cp_at(e, P, g->input, 'v', "ts"), nin, first, seed, slot);
}

/* ---- the opening: the macros that make the file CUDA or plain C ---- */

/* --embed-weights: each parameter a constant array in the GPU's memory
   (<net>_w<k>, __device__, which kernels read by name: cp_param), and
   <net>_wd their device addresses, which the host code passes to the
   kernels and to cuBLAS (cu_param_host), looked up by <net>_weights (every
   API function calls it). A symbol has an address on each device, so the
   addresses are kept per host thread with the device they belong to, and
   looked up again when the thread's current device changes. */
static void embedded_weights(Emit *e) {
    const IrGraph *g = e->g;
    const char *p = e->p, *P = e->P;
    int n = g->params.len;
    if (!n)
        return;
    cg_blank(e);
    cg_line(e, "#ifdef SNNC_CUDA_EMULATE");
    cg_line(e, "#define %s_WEIGHT static const", P);
    cg_line(e, "#else");
    cg_line(e, "#define %s_WEIGHT static __device__ const", P);
    cg_line(e, "#endif");
    for (int i = 0; i < n; i++)
        capi_embedded(e, arena_printf(g->arena, "%s_WEIGHT", P), i);
    cg_blank(e);
    cg_line(e, "#ifdef SNNC_CUDA_EMULATE");
    cg_line(e, "static const float *%s_wd[%d];", p, n);
    cg_blank(e);
    cg_line(e, "static int %s_weights(void)", p);
    cg_line(e, "{");
    for (int i = 0; i < n; i++)
        cg_line(e, "    %s_wd[%d] = %s_w%d;", p, i, p, i);
    cg_line(e, "    return 0;");
    cg_line(e, "}");
    cg_line(e, "#else");
    cg_line(e, "/* Their addresses on the device %s_wdev, for the calling thread. */", p);
    cg_line(e, "static thread_local const float *%s_wd[%d];", p, n);
    cg_line(e, "static thread_local int %s_wdev = -1;", p);
    cg_blank(e);
    cg_line(e, "static int %s_weights(void)", p);
    cg_line(e, "{");
    cg_line(e, "    int dev;");
    cg_line(e, "    void *a;");
    cg_line(e, "    if (cudaGetDevice(&dev) != cudaSuccess)");
    cg_line(e, "        return -1;");
    cg_line(e, "    if (dev == %s_wdev)", p);
    cg_line(e, "        return 0;");
    cg_line(e, "    %s_wdev = -1;", p);
    for (int i = 0; i < n; i++) {
        cg_line(e, "    if (cudaGetSymbolAddress(&a, %s_w%d) != cudaSuccess)", p, i);
        cg_line(e, "        return -1;");
        cg_line(e, "    %s_wd[%d] = (const float *)a;", p, i);
    }
    cg_line(e, "    %s_wdev = dev;", p);
    cg_line(e, "    return 0;");
    cg_line(e, "}");
    cg_line(e, "#endif");
}

static void opening(Emit *e) {
    const char *p = e->p, *P = e->P;
    const IrGraph *g = e->g;
    cg_line(e, "/* %s.cu: generated by snnc %s from %s. Do not edit.", p, SNNC_VERSION, cg_clean_name(e, g->source));
    cg_line(e, "   CUDA; build with: nvcc -O3 -fmad=false -c %s.cu (link with -lcublas -lcudart).", p);
    cg_line(e, "   -fmad=false: products and sums rounded one by one, as the portable target rounds");
    cg_line(e, "   them (docs/targets.md). With -DSNNC_CUDA_EMULATE the same file is C99 for a CPU:");
    cg_line(e, "   cc -std=c99 -x c -DSNNC_CUDA_EMULATE -ffp-contract=off -c %s.cu, every launch a", p);
    if (e->opt->precision == PREC_FP32)
        cg_line(e, "   loop over the thread indices, for testing the kernels without a GPU. */");
    else {
        cg_line(e, "   loop over the thread indices, for testing the kernels without a GPU.");
        cg_line(e, "   --precision %s: the matrix products read their operands as %s, sum in fp32. */",
                precision_names[e->opt->precision], precision_names[e->opt->precision]);
    }
    cg_line(e, "#include \"%s.h\"", p);
    cg_blank(e);
    cg_line(e, "#include <math.h>");
    if (g->train || e->opt->precision != PREC_FP32 || e->fast)
        cg_line(e, "#include <stdint.h>");
    if (e->opt->no_loader) { /* the host API reports failures */
        cg_line(e, "#include <stdio.h>");
        cg_line(e, "#include <stdlib.h>");
    }
    cg_line(e, "#include <string.h>");
    cg_blank(e);
    cg_line(e, "#ifdef SNNC_CUDA_EMULATE");
    cg_line(e, "static long %s_tid; /* the thread index of the emulated launch */", p);
    cg_line(e, "#define %s_GLOBAL static", P);
    cg_line(e, "#define %s_TID %s_tid", P, p);
    cg_line(e, "#define %s_LAUNCH(n, st, kernel, args) \\", P);
    cg_line(e, "    do { \\");
    cg_line(e, "        (void)(st); \\");
    cg_line(e, "        for (%s_tid = 0; %s_tid < (long)(n); %s_tid++) \\", p, p, p);
    cg_line(e, "            kernel args; \\");
    cg_line(e, "    } while (0)");
    cg_line(e, "#else");
    cg_line(e, "#define %s_GLOBAL static __global__", P);
    cg_line(e, "#define %s_TID ((long)blockIdx.x * (long)blockDim.x + (long)threadIdx.x)", P);
    cg_line(e, "/* A launch of a thread per element: blocks of %d threads. */", CUDA_THREADS);
    cg_line(e, "#define %s_LAUNCH(n, st, kernel, args) \\", P);
    cg_line(e, "    kernel<<<(unsigned)(((long)(n) + %d) / %d), %d, 0, (st)>>> args", CUDA_THREADS - 1, CUDA_THREADS,
            CUDA_THREADS);
    cg_line(e, "#endif");
    if (g->train || g->encoding == ENC_RATE) {
        cg_line(e, "#ifdef SNNC_CUDA_EMULATE");
        cg_line(e, "#define %s_DEVICE static", P);
        cg_line(e, "#else");
        cg_line(e, "#define %s_DEVICE static __device__", P);
        cg_line(e, "#endif");
    }
    if (draws(g)) /* the portable target's generator on the device: the same draws */
        capi_mix(e, arena_printf(g->arena, "%s_DEVICE", P), "_d");
    if (e->fast) {
        cg_blank(e);
        cg_line(e, "/* --math fast: neuron programs call these instead of the C library's");
        cg_line(e, "   (runtime/snnrt_math.inc), device functions on a GPU: the operations of the");
        cg_line(e, "   CPU targets' --math fast, one rounding each (-fmad=false). */");
        cg_line(e, "#ifndef SNNC_CUDA_EMULATE");
        cg_line(e, "#define SNNRT_MATH_FN static __device__ __forceinline__ __attribute__((unused))");
        cg_line(e, "#endif");
        buf_printf(e->b, "%.*s", (int)snnrt_math_inc_len, snnrt_math_inc);
    }
    cg_blank(e);
    cg_line(e, "/* Bytes from src to dst on the stream (device to device, or from the host). */");
    cg_line(e, "static void %s_copy(void *dst, const void *src, size_t bytes, cudaStream_t st)", p);
    cg_line(e, "{");
    cg_line(e, "#ifdef SNNC_CUDA_EMULATE");
    cg_line(e, "    (void)st;");
    cg_line(e, "    memcpy(dst, src, bytes);");
    cg_line(e, "#else");
    cg_line(e, "    cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, st);");
    cg_line(e, "#endif");
    cg_line(e, "}");
    cg_blank(e);
    cg_line(e, "/* Waits for the stream (before the host reads what it copied). */");
    cg_line(e, "static void %s_sync(cudaStream_t st)", p);
    cg_line(e, "{");
    cg_line(e, "#ifdef SNNC_CUDA_EMULATE");
    cg_line(e, "    (void)st;");
    cg_line(e, "#else");
    cg_line(e, "    cudaStreamSynchronize(st);");
    cg_line(e, "#endif");
    cg_line(e, "}");
    cg_blank(e);
    cg_line(e, "/* What an API function returns: -1 when a cuBLAS call failed, else the error of");
    cg_line(e, "   the last launch or copy (0: none). */");
    cg_line(e, "static int %s_status(int err)", p);
    cg_line(e, "{");
    cg_line(e, "#ifdef SNNC_CUDA_EMULATE");
    cg_line(e, "    return err ? -1 : 0;");
    cg_line(e, "#else");
    cg_line(e, "    return err ? -1 : (int)cudaGetLastError();");
    cg_line(e, "#endif");
    cg_line(e, "}");
    if (has_products(g)) {
        cg_blank(e);
        cg_line(e, "/* The products run on the stream of the call. */");
        cg_line(e, "static int %s_bind(cublasHandle_t blas, cudaStream_t st)", p);
        cg_line(e, "{");
        cg_line(e, "#ifdef SNNC_CUDA_EMULATE");
        cg_line(e, "    (void)blas;");
        cg_line(e, "    (void)st;");
        cg_line(e, "    return 0;");
        cg_line(e, "#else");
        cg_line(e, "    return cublasSetStream(blas, st) == CUBLAS_STATUS_SUCCESS ? 0 : -1;");
        cg_line(e, "#endif");
        cg_line(e, "}");
    }
    if (has_neurons(g))
        cu_map_kernel(e, "s[j] = v for j < n: a state at the start of a sequence.", "fill_k", "float *s, long n, float v",
                      "n", "s[j] = v;");
    if (g->train)
        cu_train_opening(e);
    capi_param_table(e);
    if (e->opt->embedded)
        embedded_weights(e);
    /* the step counter, as the portable target keeps it */
    const IrPlan *Pl = &g->infer;
    cg_blank(e);
    cg_line(e, "/* The steps since reset and the batch, kept in the workspace; reading them");
    cg_line(e, "   waits for the stream. */");
    cg_line(e, "static void %s_counter(float *ws, long *t, long *batch, int write, cudaStream_t st)", p);
    cg_line(e, "{");
    cg_line(e, "    long v[2];");
    cg_line(e, "    if (write) {");
    cg_line(e, "        v[0] = *t >= %d ? *t - %d : *t;", 2 * Pl->chunk, Pl->chunk);
    cg_line(e, "        v[1] = *batch;");
    cg_line(e, "        %s_copy(%s, v, sizeof v, st);", p, cp_ws(e, Pl, Pl->counter));
    cg_line(e, "    } else {");
    cg_line(e, "        %s_copy(v, %s, sizeof v, st);", p, cp_ws(e, Pl, Pl->counter));
    cg_line(e, "        %s_sync(st);", p);
    cg_line(e, "        *t = v[0];");
    cg_line(e, "        *batch = v[1];");
    cg_line(e, "    }");
    cg_line(e, "}");
    encoder(e);
}

static TargetEmitter *cuda_begin(const IrGraph *g, const CgenOptions *opt) {
    if (opt->static_ws) {
        error_plain("target 'cuda' does not support --static (the workspace is the caller's device memory)");
        return NULL;
    }
    if (g->train && !cp_train_supported(g))
        return NULL;
    TargetEmitter *em = capi_emitter(g, opt);
    Emit *e = &em->e;
    e->isa = ISA_C;
    e->fast = opt->math == MATH_FAST; /* exact unless asked: the portable target's numbers */
    cu_scratch(e);
    e->b = &e->c;
    opening(e);
    return em;
}

/* ---- the API ---- */

void cu_call(Emit *e, const IrPlan *P, int i, int fwd, const char *from, const char *to, const char *flag) {
    cg_line(e, "err |= %s(ws, B, %s, %s, %s%s, st, blas) != 0; /* %s */", cu_kernel(e, P, i, fwd), from, to, flag,
            cp_ext_args(e, P, i, fwd), e->g->nodes.items[i].name);
}

static void call(Emit *e, int i, const char *from, const char *to) { cu_call(e, &e->g->infer, i, 1, from, to, "0"); }

static int runs(const IrGraph *g, int i) { return ir_op_kernel[g->nodes.items[i].op]; }

void cu_api_head(Emit *e, const char *sig) {
    cg_blank(e);
    cg_line(e, "%s", sig);
    cg_line(e, "{");
    e->ind++;
    cg_line(e, "float *ws = (float *)workspace;");
    cg_line(e, "const cudaStream_t st = stream;");
    cg_line(e, "long B = batch < 1 ? 1 : batch > %s_MAX_BATCH ? %s_MAX_BATCH : batch;", e->P, e->P);
    cg_line(e, "int err = 0;");
}

void cu_api_tail(Emit *e) {
    cg_line(e, "return %s_status(err);", e->p);
    e->ind--;
    cg_line(e, "}");
}

const char *cu_param_host(Emit *e, int k) {
    if (e->opt->embedded)
        return arena_printf(e->g->arena, "%s_wd[%d]", e->p, k);
    return cp_param(e, k);
}

void cu_bind(Emit *e) {
    if (e->opt->embedded && e->g->params.len)
        cg_line(e, "err |= %s_weights() != 0; /* the embedded parameters' device addresses */", e->p);
    if (has_products(e->g))
        cg_line(e, "err |= %s_bind(blas, st) != 0;", e->p);
    else
        cg_line(e, "(void)blas; /* no matrix products */");
}

int cu_has_products(const IrGraph *g) { return has_products(g); }

void cu_run_groups(Emit *e, const IrPlan *P, const char *c0, const char *c1, const char *once, const char *flag) {
    cp_forward_groups(e, P, cu_call, c0, c1, once, flag);
}

/* The forward of every group over the steps [c0, c1) of a chunk (inference). */
static void run_groups(Emit *e, const char *c0, const char *c1, const char *once) {
    cu_run_groups(e, &e->g->infer, c0, c1, once, "0");
}

static void gen_reset(Emit *e) {
    const IrGraph *g = e->g;
    const IrPlan *P = &g->infer;
    cu_api_head(e, arena_printf(g->arena, "int %s_reset(void *workspace, int batch, cudaStream_t stream)", e->p));
    cg_line(e, "long t = 0;");
    for (int i = 0; i < g->nodes.len; i++) {
        const IrNode *n = &g->nodes.items[i];
        if (n->dead || n->op != IR_NEURON)
            continue;
        for (int k = 0; k < n->neuron->states.len; k++)
            cg_line(e, "%s_LAUNCH(B * %lld, st, %s_fill_k, (%s, B * %lld, %s)); /* %s.%s */", e->P, count(e, i), e->p,
                    cp_ws(e, P, P->at[i].state + (int64_t)k * e->maxb * count(e, i)), count(e, i),
                    cg_flt(e, n->neuron->states.items[k].init), n->name, n->neuron->states.items[k].name);
    }
    cg_line(e, "%s_counter(ws, &t, &B, 1, st);", e->p);
    if (ENC_SPIKES(g->encoding))
        cg_line(e, "%s_LAUNCH(1, st, %s_enc_steps_k, (%s, 0ULL, 0)); /* the encoder's steps */", e->P, e->p, enc_slot(e));
    cu_api_tail(e);
}

/* <net>_load_weights and <net>_init_weights: the portable target's loader
   and initialization (capi.c) on a host copy of the parameters, which goes
   to the device workspace (either: the parameters start both) and, for the
   loader, first comes from it (the tensors a file may lack keep their
   values). Where snnc itself loads the code it loads the weights. */
static void gen_weights(Emit *e) {
    const IrGraph *g = e->g;
    const char *p = e->p, *P = e->P;
    if (e->opt->no_loader || e->opt->embedded || !g->params.len)
        return;
    capi_weights(e, 1, 1);
    cg_blank(e);
    cg_line(e, "/* The parameters between the device workspace and host memory h (to_device 0: from it). */");
    cg_line(e, "static int %s_params_copy(void *workspace, float *h, int to_device, cudaStream_t stream)", p);
    cg_line(e, "{");
    cg_line(e, "    const size_t bytes = (size_t)%s_PARAM_FLOATS * sizeof(float);", P);
    cg_line(e, "    if (to_device)");
    cg_line(e, "        %s_copy(workspace, h, bytes, stream);", p);
    cg_line(e, "    else");
    cg_line(e, "        %s_copy(h, workspace, bytes, stream);", p);
    cg_line(e, "    %s_sync(stream);", p);
    cg_line(e, "    return %s_status(0);", p);
    cg_line(e, "}");
    cg_blank(e);
    cg_line(e, "int %s_load_weights(void *workspace, const char *path, int allow_missing, char *err, size_t errlen,", p);
    cg_line(e, "%*scudaStream_t stream)", (int)strlen(p) + 17, "");
    cg_line(e, "{");
    e->ind++;
    cg_line(e, "float *h = (float *)malloc((size_t)%s_PARAM_FLOATS * sizeof(float));", P);
    cg_line(e, "int rc;");
    cg_line(e, "if (!h) {");
    cg_line(e, "    snprintf(err, errlen, \"out of memory for a host copy of the parameters\");");
    cg_line(e, "    return -1;");
    cg_line(e, "}");
    cg_line(e, "if ((rc = %s_params_copy(workspace, h, 0, stream)) != 0) /* what tensors missing from the file keep */", p);
    cg_line(e, "    snprintf(err, errlen, \"copying the parameters from the device failed (error %%d)\", rc);");
    cg_line(e, "else if (%s_load_host(h, path, allow_missing, err, errlen) != 0)", p);
    cg_line(e, "    rc = -1; /* err says why */");
    cg_line(e, "else if ((rc = %s_params_copy(workspace, h, 1, stream)) != 0)", p);
    cg_line(e, "    snprintf(err, errlen, \"copying the parameters to the device failed (error %%d)\", rc);");
    cg_line(e, "free(h);");
    cg_line(e, "return rc != 0 ? -1 : 0;");
    e->ind--;
    cg_line(e, "}");
    cg_blank(e);
    cg_line(e, "int %s_init_weights(void *workspace, unsigned long long seed, cudaStream_t stream)", p);
    cg_line(e, "{");
    cg_line(e, "    float *h = (float *)malloc((size_t)%s_PARAM_FLOATS * sizeof(float));", P);
    cg_line(e, "    int rc;");
    cg_line(e, "    if (!h)");
    cg_line(e, "        return -1;");
    cg_line(e, "    %s_init_host(h, seed);", p);
    cg_line(e, "    rc = %s_params_copy(workspace, h, 1, stream);", p);
    cg_line(e, "    free(h);");
    cg_line(e, "    return rc;");
    cg_line(e, "}");
}

/* <net>_seed: the seed of the rate encoder's spikes in inference. */
static void gen_seed(Emit *e) {
    const IrGraph *g = e->g;
    if (g->encoding != ENC_RATE)
        return;
    cg_blank(e);
    cg_line(e, "int %s_seed(void *workspace, unsigned long long seed, cudaStream_t stream)", e->p);
    cg_line(e, "{");
    cg_line(e, "    float *ws = (float *)workspace;");
    cg_line(e, "    unsigned long long v[2];");
    cg_line(e, "    v[0] = seed;");
    cg_line(e, "    v[1] = ~seed; /* tells a seed that was set from whatever the workspace held */");
    cg_line(e, "    %s_copy(%s, v, sizeof v, stream);", e->p, enc_slot(e));
    cg_line(e, "    return %s_status(0);", e->p);
    cg_line(e, "}");
}

static void copy_input(Emit *e, const char *t, const char *src, const char *steps) {
    const IrGraph *g = e->g;
    cg_line(e, "%s_copy(%s, %s, (size_t)%s * (size_t)B * %lld * sizeof(float), st); /* the input */", e->p,
            cp_at(e, &g->infer, g->input, 'v', t), src, steps, count(e, g->input));
}

static void gen_step(Emit *e) {
    const IrGraph *g = e->g;
    cu_api_head(e, arena_printf(g->arena,
                                "int %s_step(void *workspace, int batch, const float *input, float *output,\n"
                                "%*scudaStream_t stream, cublasHandle_t blas)",
                                e->p, (int)strlen(e->p) + 10, ""));
    cg_line(e, "long tc, b0;");
    cg_line(e, "int t;");
    cu_bind(e);
    cg_line(e, "%s_counter(ws, &tc, &b0, 0, st);", e->p);
    cg_line(e, "t = (int)tc;");
    if (ENC_SPIKES(g->encoding)) { /* step n since reset, n in the slot */
        cg_line(e, "%s_LAUNCH(B * %lld, st, %s_encode_k, (%s, input, B * %lld, 0, 0ULL, 0ULL, %s)); /* the input, "
                   "%s-encoded */",
                e->P, count(e, g->input), e->p, cp_at(e, &g->infer, g->input, 'v', "t"), count(e, g->input),
                enc_slot(e), encoding_names[g->encoding]);
        cg_line(e, "%s_LAUNCH(1, st, %s_enc_steps_k, (%s, 1ULL, 1));", e->P, e->p, enc_slot(e));
    } else
        copy_input(e, "t", "input", "1");
    for (int j = 0; j < g->norder; j++)
        if (runs(g, g->order[j]))
            call(e, g->order[j], "t", "t + 1");
    cg_line(e, "if (output)");
    cg_line(e, "    %s_copy(output, %s, (size_t)B * %lld * sizeof(float), st);", e->p,
            cp_at(e, &g->infer, g->output, 'v', "t"), count(e, g->output));
    cg_line(e, "tc = t + 1;");
    cg_line(e, "%s_counter(ws, &tc, &B, 1, st);", e->p);
    cu_api_tail(e);
}

/* The readout's kernels: the accumulator over steps [from, to), and the
   mean of rate and mean readouts. */
static void readout_kernels(Emit *e) {
    const IrGraph *g = e->g;
    const IrPlan *P = &g->infer;
    long long nout = count(e, g->output);
    if (g->readout == RO_STEPS)
        return;
    cg_blank(e);
    cg_line(e, "/* The readout (%s) of steps [from, to): a thread per output element. */", readout_names[g->readout]);
    cg_line(e, "%s_GLOBAL void %s_readout_k(float *ws, long B, int from, int to)", e->P, e->p);
    cg_line(e, "{");
    e->ind++;
    cg_line(e, "const long i = %s_TID;", e->P);
    cg_line(e, "float *acc = %s;", cp_ws(e, P, P->readout));
    cg_line(e, "if (i >= B * %lld)", nout);
    cg_line(e, "    return;");
    cg_line(e, "for (int t = from; t < to; t++) {");
    e->ind++;
    cg_line(e, "const float *y = %s;", cp_at(e, P, g->output, 'v', "t"));
    switch (g->readout) {
    case RO_LAST: cg_line(e, "if (t == %d)", g->timesteps - 1); cg_line(e, "    acc[i] = y[i];"); break;
    case RO_MAX: cg_line(e, "acc[i] = t == 0 || y[i] > acc[i] ? y[i] : acc[i];"); break;
    default: cg_line(e, "acc[i] = t == 0 ? y[i] : acc[i] + y[i];"); break;
    }
    e->ind--;
    cg_line(e, "}");
    e->ind--;
    cg_line(e, "}");
    if (g->readout != RO_RATE && g->readout != RO_MEAN)
        return;
    cu_map_kernel(e, arena_printf(g->arena, "The output: the accumulated sum over the %d steps.", g->timesteps), "mean_k",
                  "const float *acc, float *output, long n", "n",
                  arena_printf(g->arena, "output[j] = acc[j] / %s;", cg_flt(e, (float)g->timesteps)));
}

static void gen_forward(Emit *e) {
    const IrGraph *g = e->g;
    const IrPlan *P = &g->infer;
    int T = g->timesteps, K = P->chunk;
    long long nout = count(e, g->output), nin = count(e, g->input);
    readout_kernels(e);
    cu_api_head(e, arena_printf(g->arena,
                                "int %s_forward(void *workspace, int batch, const float *input, float *output,\n"
                                "%*scudaStream_t stream, cublasHandle_t blas)",
                                e->p, (int)strlen(e->p) + 13, ""));
    cg_line(e, "long tc = %d;", T);
    cg_line(e, "int t;");
    cu_bind(e);
    cg_line(e, "err |= %s_reset(workspace, (int)B, st) != 0;", e->p);
    int seq = g->encoding == ENC_SEQUENCE;
    const char *c0 = "0", *c1 = arena_printf(g->arena, "%d", T);
    if (K < T) {
        cg_line(e, "int c0;");
        cg_line(e, "for (c0 = 0; c0 < %d; c0 += %d) { /* chunks of %d steps */", T, K, K);
        e->ind++;
        cg_line(e, "const int c1 = c0 + %d < %d ? c0 + %d : %d;", K, T, K, T);
        c0 = "c0";
        c1 = "c1";
        if (seq)
            copy_input(e, "c0", arena_printf(g->arena, "input + (size_t)c0 * (size_t)B * %lld", nin), "(c1 - c0)");
        else if (ENC_SPIKES(g->encoding)) /* every chunk's steps, from the same intensities */
            cu_encode_steps(e, P, "c0", "c1", "0", "0ULL", enc_slot(e));
        else {
            cg_line(e, "if (c0 == 0)");
            e->ind++;
            copy_input(e, "0", "input", "1");
            e->ind--;
        }
        run_groups(e, c0, c1, "c0 == 0");
    } else {
        if (ENC_SPIKES(g->encoding))
            cu_encode_steps(e, P, "0", c1, "0", "0ULL", enc_slot(e));
        else
            copy_input(e, "0", "input", seq ? c1 : "1");
        run_groups(e, c0, c1, "1");
    }
    if (g->readout == RO_STEPS) {
        cg_line(e, "for (t = %s; t < %s; t++) /* the output of every step */", c0, c1);
        cg_line(e, "    %s_copy(output + (size_t)t * (size_t)B * %lld, %s, (size_t)B * %lld * sizeof(float), st);", e->p,
                nout, cp_at(e, P, g->output, 'v', "t"), nout);
    } else
        cg_line(e, "%s_LAUNCH(B * %lld, st, %s_readout_k, (ws, B, %s, %s));", e->P, nout, e->p, c0, c1);
    if (K < T) {
        e->ind--;
        cg_line(e, "}");
    }
    if (g->readout == RO_RATE || g->readout == RO_MEAN)
        cg_line(e, "%s_LAUNCH(B * %lld, st, %s_mean_k, (%s, output, B * %lld));", e->P, nout, e->p,
                cp_ws(e, P, P->readout), nout);
    else if (g->readout != RO_STEPS)
        cg_line(e, "%s_copy(output, %s, (size_t)B * %lld * sizeof(float), st);", e->p, cp_ws(e, P, P->readout), nout);
    cg_line(e, "%s_counter(ws, &tc, &B, 1, st);", e->p);
    if (ENC_SPIKES(g->encoding)) /* a step after the forward continues its sequence */
        cg_line(e, "%s_LAUNCH(1, st, %s_enc_steps_k, (%s, %dULL, 0));", e->P, e->p, enc_slot(e), T);
    cg_line(e, "(void)t;");
    cu_api_tail(e);
}

static void gen_probe(Emit *e) {
    const IrGraph *g = e->g;
    const IrPlan *P = &g->infer;
    if (!g->probes.len)
        return;
    cg_blank(e);
    cg_line(e, "const float *%s_probe(void *workspace, int k, cudaStream_t stream)", e->p);
    cg_line(e, "{");
    e->ind++;
    cg_line(e, "float *ws = (float *)workspace;");
    cg_line(e, "long tc, B;");
    cg_line(e, "int t;");
    cg_line(e, "%s_counter(ws, &tc, &B, 0, stream);", e->p);
    cg_line(e, "t = tc > 0 ? (int)tc - 1 : 0; /* the last step */");
    cg_line(e, "switch (k) {");
    for (int k = 0; k < g->probes.len; k++) {
        const IrProbe *pr = &g->probes.items[k];
        const char *at;
        if (pr->buf >= 0)
            at = P->chunk == 1 ? cp_ws(e, P, pr->buf)
                               : arena_printf(g->arena, "%s + (long)(t %% %d) * B * %lld", cp_ws(e, P, pr->buf), P->chunk,
                                              (long long)pr->count);
        else
            at = cp_at(e, P, pr->node, 'v', "t");
        cg_line(e, "case %d: /* %s */", k, pr->spec);
        cg_line(e, "    return %s;", at);
    }
    cg_line(e, "default:");
    cg_line(e, "    return 0;");
    cg_line(e, "}");
    e->ind--;
    cg_line(e, "}");
}

static void cuda_api(TargetEmitter *em) {
    Emit *e = &em->e;
    cg_blank(e);
    cg_line(e, "const long %s_workspace_floats = %s_WORKSPACE_FLOATS;", e->p, e->P);
    gen_weights(e);
    gen_seed(e);
    gen_reset(e);
    gen_step(e);
    gen_forward(e);
    gen_probe(e);
    if (e->g->train)
        cu_train_api(e);
    if (e->opt->no_loader) /* snnc loads it */
        cu_host_api(e);
}

/* ---- the header ---- */

static void header(Emit *e, Buf *h) {
    const IrGraph *g = e->g;
    Emit he = *e;
    he.b = h;
    Emit *x = &he;
    const char *P = e->P, *p = e->p;
    int blas = has_products(g);
    cg_line(x, "/* %s.h: generated by snnc %s from %s. Do not edit.", p, SNNC_VERSION, cg_clean_name(e, g->source));
    cg_blank(x);
    cg_line(x, "   Network %s: %d timesteps, input %s (%s), output %s (readout %s).", g->name, g->timesteps,
            shape_str(g->arena, &g->nodes.items[g->input].shape),
            g->encoding == ENC_DIRECT     ? "the same at every step"
            : g->encoding == ENC_SEQUENCE ? "one per step"
            : g->encoding == ENC_RATE     ? "intensities, rate-encoded into spikes"
                                          : "intensities, latency-encoded into spikes",
            shape_str(g->arena, &g->nodes.items[g->output].shape), readout_names[g->readout]);
    cg_line(x, "   Inference on an NVIDIA GPU (docs/generated-code.md). The workspace, the input and");
    cg_line(x, "   the output are device memory: the workspace WORKSPACE_SIZE bytes (cudaMalloc's");
    if (e->opt->embedded) {
        cg_line(x, "   alignment). The parameters are compiled in (--embed-weights): device memory of");
        cg_line(x, "   the module, not of the workspace.");
    } else {
        cg_line(x, "   alignment), starting with the parameters at the offsets of %s_params, which", p);
        cg_line(x, "   the caller copies there%s.", !e->opt->no_loader && g->params.len ? " (or load_weights or init_weights writes)" : "");
    }
    cg_line(x, "   Every function queues its work on `stream`%s", blas ? ";" : ".");
    if (blas)
        cg_line(x, "   the matrix products go through cuBLAS with `blas`, bound to that stream.");
    cg_line(x, "   They return 0, -1 when a cuBLAS call failed, or a cudaError_t of a launch. */");
    cg_line(x, "#ifndef %s_H", P);
    cg_line(x, "#define %s_H", P);
    cg_blank(x);
    cg_line(x, "#include <stddef.h>");
    cg_blank(x);
    cg_line(x, "#ifdef SNNC_CUDA_EMULATE /* the kernels compiled for a CPU, for testing */");
    cg_line(x, "#ifndef SNNC_CUDA_EMULATE_TYPES");
    cg_line(x, "#define SNNC_CUDA_EMULATE_TYPES");
    cg_line(x, "typedef void *cudaStream_t;");
    cg_line(x, "typedef void *cublasHandle_t;");
    cg_line(x, "#endif");
    cg_line(x, "#else");
    cg_line(x, "#include <cublas_v2.h>");
    cg_line(x, "#include <cuda_runtime_api.h>");
    cg_line(x, "#endif");
    cg_blank(x);
    cg_line(x, "#ifdef __cplusplus");
    cg_line(x, "extern \"C\" {");
    cg_line(x, "#endif");
    cg_blank(x);
    cg_line(x, "#define %s_TIMESTEPS %d", P, g->timesteps);
    cg_line(x, "#define %s_MAX_BATCH %lld /* forward and step take 1..MAX_BATCH samples */", P, (long long)e->maxb);
    cg_line(x, "#define %s_INPUT_SIZE %lld /* floats per sample (and step) */", P, count(e, g->input));
    cg_line(x, "#define %s_INPUT_SEQUENCE %d /* 1: forward reads [T, batch, INPUT_SIZE]; 0: [batch, INPUT_SIZE] */",
            P, g->encoding == ENC_SEQUENCE);
    cg_line(x, "#define %s_OUTPUT_SIZE %lld /* floats per sample */", P, count(e, g->output));
    cg_line(x, "#define %s_OUTPUT_STEPS %d /* 1: forward writes [T, batch, OUTPUT_SIZE]; 0: [batch, OUTPUT_SIZE] */",
            P, g->readout == RO_STEPS);
    cg_line(x, "#define %s_NUM_PARAMS %d", P, g->params.len);
    cg_line(x, "#define %s_NUM_PROBES %d", P, g->probes.len);
    cg_line(x, "#define %s_PARAM_FLOATS %lldL /* the parameters, %s */", P, (long long)g->param_floats,
            e->opt->embedded ? "compiled in (none in the workspace)" : "at the start of the workspace");
    cg_line(x, "#define %s_WORKSPACE_FLOATS %lldL", P, ws_floats(e));
    cg_line(x, "#define %s_WORKSPACE_SIZE (%s_WORKSPACE_FLOATS * sizeof(float)) /* bytes of device memory */", P, P);
    cg_line(x, "extern const long %s_workspace_floats; /* the same, for dynamic loaders */", p);
    capi_param_header(x);
    cg_blank(x);
    if (!e->opt->no_loader && !e->opt->embedded && g->params.len) {
        cg_line(x, "/* Load the parameters from a safetensors file (F32, or F64, F16, BF16 converted;");
        cg_line(x, "   names and shapes as in %s_params) into the device workspace, inference's or", p);
        cg_line(x, "   training's, through host memory; waits for the stream. With allow_missing,");
        cg_line(x, "   tensors absent from the file keep their value. Returns 0, or -1 with a message");
        cg_line(x, "   in err. */");
        cg_line(x, "int %s_load_weights(void *workspace, const char *path, int allow_missing, char *err, size_t errlen,", p);
        cg_line(x, "%*scudaStream_t stream);", (int)strlen(p) + 17, "");
        cg_line(x, "/* Initialize every parameter as PyTorch initializes its layer type, from a seed (the");
        cg_line(x, "   portable target's values; through host memory, waits for the stream). Returns 0,");
        cg_line(x, "   -1 without host memory, or a cudaError_t. */");
        cg_line(x, "int %s_init_weights(void *workspace, unsigned long long seed, cudaStream_t stream);", p);
    }
    if (g->encoding == ENC_RATE) {
        cg_line(x, "/* The seed of the rate encoder's spikes for the following steps and forwards");
        cg_line(x, "   (docs/language.md, 4.2.1); a workspace whose seed was never set uses 0. */");
        cg_line(x, "int %s_seed(void *workspace, unsigned long long seed, cudaStream_t stream);", p);
    }
    cg_line(x, "/* Set every state to its initial value (the start of a sequence). */");
    cg_line(x, "int %s_reset(void *workspace, int batch, cudaStream_t stream);", p);
    cg_line(x, "/* One step: input [batch, INPUT_SIZE] -> output [batch, OUTPUT_SIZE] (may be NULL).");
    cg_line(x, "   Reads the step counter from the workspace: waits for the stream. */");
    cg_line(x, "int %s_step(void *workspace, int batch, const float *input, float *output, cudaStream_t stream,", p);
    cg_line(x, "%*scublasHandle_t blas);", (int)strlen(p) + 10, "");
    cg_line(x, "/* A whole sequence from the initial state: T steps and the readout. */");
    cg_line(x, "int %s_forward(void *workspace, int batch, const float *input, float *output, cudaStream_t stream,", p);
    cg_line(x, "%*scublasHandle_t blas);", (int)strlen(p) + 13, "");
    if (!blas)
        cg_line(x, "/* (no matrix products: blas is not used and may be NULL) */");
    if (g->probes.len) {
        cg_line(x, "/* The recorded values of the last step, [batch, size] each, in device memory");
        cg_line(x, "   (waits for the stream):");
        for (int k = 0; k < g->probes.len; k++)
            cg_line(x, "   %d: %s (%lld floats per sample)", k, g->probes.items[k].spec, (long long)g->probes.items[k].count);
        cg_line(x, "*/");
        cg_line(x, "const float *%s_probe(void *workspace, int k, cudaStream_t stream);", p);
    }
    if (g->train)
        cu_train_header(x);
    cg_blank(x);
    cg_line(x, "#ifdef __cplusplus");
    cg_line(x, "}");
    cg_line(x, "#endif");
    cg_blank(x);
    cg_line(x, "#endif");
}

static int cuda_finish(TargetEmitter *em, GenFile *out) {
    Emit *e = &em->e;
    const IrGraph *g = e->g;
    header(e, &e->h);
    out[0].name = arena_printf(g->arena, "%s.h", e->p);
    out[0].text = e->h;
    out[1].name = arena_printf(g->arena, "%s.cu", e->p);
    out[1].text = e->c;
    return 2;
}

/* ---- the table ---- */

#define CU_FWD_INPUT NULL
#define CU_FWD_DENSE cu_dense_fwd
#define CU_FWD_CONV2D cu_conv_fwd
#define CU_FWD_MAXPOOL cu_pool_fwd
#define CU_FWD_AVGPOOL cu_pool_fwd
#define CU_FWD_FLATTEN NULL
#define CU_FWD_RESHAPE NULL
#define CU_FWD_ADD cu_eltwise_fwd
#define CU_FWD_SCALE cu_eltwise_fwd
#define CU_FWD_BATCHNORM cu_batchnorm_fwd
#define CU_FWD_DROPOUT cu_eltwise_fwd
#define CU_FWD_IDENTITY cu_eltwise_fwd
#define CU_FWD_NEURON cu_neuron_fwd
#define CU_FWD_DELAY cu_delay_fwd

#define CU_BWD_INPUT NULL
#define CU_BWD_DENSE cu_dense_bwd
#define CU_BWD_CONV2D cu_conv_bwd
#define CU_BWD_MAXPOOL cu_pool_bwd
#define CU_BWD_AVGPOOL cu_pool_bwd
#define CU_BWD_FLATTEN NULL
#define CU_BWD_RESHAPE NULL
#define CU_BWD_ADD cu_eltwise_bwd
#define CU_BWD_SCALE cu_eltwise_bwd
#define CU_BWD_BATCHNORM cu_batchnorm_bwd
#define CU_BWD_DROPOUT cu_eltwise_bwd
#define CU_BWD_IDENTITY cu_eltwise_bwd
#define CU_BWD_NEURON cu_neuron_bwd
#define CU_BWD_DELAY cu_delay_bwd

static const TargetKernels cu_kernels[IR_NUM_OPS] = {
#define OP(id, name, nin, kernel, sig, doc) [IR_##id] = {CU_FWD_##id, CU_BWD_##id},
#include "ops.def"
#undef OP
};

/* ---- running ---- */

/* Whether this machine has a CUDA GPU: the driver library answers, loaded
   for the question only, so that snnc never links CUDA. */
static int cuda_runs_here(void) {
    static int answer = -1;
    if (answer >= 0)
        return answer;
    answer = 0;
    void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib)
        return answer;
    int (*init)(unsigned), (*devices)(int *);
    *(void **)&init = dlsym(lib, "cuInit");
    *(void **)&devices = dlsym(lib, "cuDeviceGetCount");
    int n = 0;
    answer = init && devices && init(0) == 0 && devices(&n) == 0 && n > 0;
    dlclose(lib);
    return answer;
}

static int cuda_load(const IrGraph *g, const LoadOptions *lo, LoadedModel *m) {
    memset(m, 0, sizeof *m);
    if (!cu_emulated() && !cuda_runs_here()) {
        error_plain("target 'cuda' needs an NVIDIA GPU and its driver (libcuda.so.1), and this machine has "
                    "none; snnc compile --target cuda writes the code for one");
        return -1;
    }
    return cu_build_and_load(&target_cuda, g, lo, m);
}

static int64_t cuda_device_floats(const IrGraph *g, int train) {
    CgenOptions co;
    memset(&co, 0, sizeof co);
    Emit *e = &capi_emitter(g, &co)->e;
    cu_scratch(e);
    if (train == 2)
        return g->train && g->trainp.planned ? cu_loop_floats(e) : -1;
    if (train) {
        return g->train && g->trainp.planned ? cu_train_ws_floats(e) : -1;
    }
    return ws_floats(e);
}

const Target target_cuda = {
    .name = "cuda",
    .doc = "CUDA for NVIDIA GPUs: fused neuron kernels over all steps forward and backward, cuBLAS products",
    .kernels = cu_kernels,
    .begin = cuda_begin,
    .gemm = cu_gemm,
    .conv = cu_conv,
    .api = cuda_api,
    .finish = cuda_finish,
    .load = cuda_load,
    .unload = cbuild_unload,
    .runs_here = cuda_runs_here,
    .device_floats = cuda_device_floats,
    .precisions = 1,
};
