/*
 * cuhost.c: how snnc run and grad use the cuda target: the host API that
 * the target adds to <net>.cu when snnc itself loads the code, and the
 * build with nvcc.
 *
 * snnc's driver calls every target through LoadedModel, whose functions
 * take host memory (the workspace too). The host API adapts the device
 * API to that: <net>_host_forward(ws, batch, input, output) and the others
 * keep a device copy of each workspace they are given (inference and
 * training apart), copy the host workspace and the inputs to the device,
 * call the device API on a stream of their own, and copy the outputs and
 * the workspace back, so that the host workspace always holds what the
 * device's does (the driver reads records and gradients from it, and
 * writes the parameters into it). That is two copies of the workspace a
 * call: right for a tool that runs a few calls (snnc run, snnc grad), not
 * for a training loop. For snnc train the file has the <net>_host_dev_*
 * functions too (LoadedModel.dev): the workspace goes to the device once
 * and stays there; a step copies in its batch and out its loss, and the
 * host gets the workspace back after each epoch (docs/targets.md).
 *
 * Building: nvcc -O3 -arch=native -fmad=false -Xcompiler -fPIC -shared
 * -Xlinker -rpath=<nvcc's folder>/../lib64 -o <net>.so <net>.cu -lcublas,
 * with nvcc from $CUDACXX, else PATH, else $CUDA_HOME/bin, else
 * /usr/local/cuda/bin (the rpath: the toolkit's cuBLAS is found when the
 * code is loaded, whether the loader's path has it or not). With SNNC_CUDA_EMULATE set in
 * the environment (not empty, not 0), snnc builds the same file with the
 * C compiler and -DSNNC_CUDA_EMULATE instead and runs it on the CPU, GPU
 * or not: how the host API and the loader are tested without a GPU.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cuda.h"
#include "snnrt.h" /* SNNRT_CLIP_BLOCK, SNNRT_CLIP_LANES */

/* ---- the host API, in <net>.cu ---- */

/* One host function: `sig` its parameters after the name, `kind` the
   workspace (0 inference, 1 training), `pre` and `post` the statements
   around the device call `call` (which returns the device API's status). */
static void host_fn(Emit *e, const char *ret, const char *name, const char *sig, int kind, const char *pre,
                    const char *call, const char *post) {
    cg_blank(e);
    cg_line(e, "%s_HOST %s %s_host_%s(%s)", e->P, ret, e->p, name, sig);
    cg_line(e, "{");
    e->ind++;
    cg_line(e, "float *dws = %s_h_in(%d, ws);", e->p, kind);
    if (*pre)
        cg_line(e, "%s", pre);
    cg_line(e, "%s_h_check(%s, \"%s\");", e->p, call, name);
    if (*post)
        cg_line(e, "%s", post);
    cg_line(e, "%s_h_out(%d, ws);", e->p, kind);
    e->ind--;
    cg_line(e, "}");
}

long long cu_loop_floats(Emit *e) {
    const IrGraph *g = e->g;
    long long in = shape_count(&g->nodes.items[g->input].shape), out = shape_count(&g->nodes.items[g->output].shape);
    long long T = g->timesteps, B = e->maxb, learned = 0, nr = 0;
    for (int k = 0; k < g->params.len; k++)
        if (g->params.items[k].learnable) {
            learned += g->params.items[k].count;
            nr++;
        }
    long long nin = (g->encoding == ENC_SEQUENCE ? T : 1) * B * in, nsteps = T * B * out;
    long long blocks = (learned + SNNRT_CLIP_BLOCK - 1) / SNNRT_CLIP_BLOCK;
    /* two batches and their labels; the outputs and dL/doutput; the report (doubles); the ranges (longs);
       an evaluation's input and outputs (the host API's) */
    return 2 * nin + 2 * B + 2 * nsteps + 2 * (2 + blocks) + 4 * (nr + 1) + nin + nsteps;
}

/* snnc train's loop on the device: the host functions <net>_host_dev_* (the
   driver's LoadedModel.dev), which keep the training workspace in device
   memory for the whole run. nin and nsteps: the floats of a batch's input
   and of its outputs of every step (C expressions of `batch`). */
static void host_train_loop(Emit *e, const char *nin, const char *nsteps) {
    const IrGraph *g = e->g;
    const IrPlan *TP = &g->trainp;
    const char *p = e->p, *P = e->P;
    /* the optimizer's moments in the device's workspace dws */
    const char *m_at = arena_printf(g->arena, "dws + %lld", (long long)(cp_base(e, TP) + cu_train_at(e, CU_TS_OPT_M)));
    const char *v_at = arena_printf(g->arena, "dws + %lld", (long long)(cp_base(e, TP) + cu_train_at(e, CU_TS_OPT_V)));
    int nr = 0;
    cg_blank(e);
    cg_line(e, "/* ---- snnc train's loop on the device (compiler/driver/train.c) ----");
    cg_line(e, "   The training workspace stays in device memory from dev_open on: a step copies in");
    cg_line(e, "   the batch and its labels through pinned host memory, and out its loss, its count");
    cg_line(e, "   of correct predictions and the sums of squares of the gradients in blocks (the");
    cg_line(e, "   driver's finite check and clipping); dev_get copies the workspace and the");
    cg_line(e, "   optimizer's state back. */");
    cg_line(e, "static const long %s_ranges[] = { /* the learnable parameters: offset, count */", p);
    for (int k = 0; k < g->params.len; k++) {
        const IrParam *q = &g->params.items[k];
        if (!q->learnable)
            continue;
        cg_line(e, "    %lld, %lld, /* %s */", (long long)q->off, (long long)q->count, q->name);
        nr++;
    }
    cg_line(e, "    0, 0};");
    cg_line(e, "#define %s_NRANGES %d", P, nr);
    cg_line(e, "static const long %s_others[] = { /* the other parameters (buffers): offset, count */", p);
    int no = 0;
    for (int k = 0; k < g->params.len; k++) {
        const IrParam *q = &g->params.items[k];
        if (q->learnable)
            continue;
        cg_line(e, "    %lld, %lld, /* %s */", (long long)q->off, (long long)q->count, q->name);
        no++;
    }
    cg_line(e, "    0, 0};");
    cg_line(e, "#define %s_NOTHERS %d", P, no);
    cg_blank(e);
    cg_line(e, "static struct {");
    cg_line(e, "    float *x[2];         /* device: two batches' inputs (the step's, the next one's) */");
    cg_line(e, "    int *lab[2];         /* device: their labels */");
    cg_line(e, "    float *y, *dy;       /* device: the step's outputs of every step, dL/doutput */");
    cg_line(e, "    double *rep;         /* device: the loss, the count (an int), the blocks' sums of squares */");
    cg_line(e, "    long *rng;           /* device: %s_ranges */", p);
    cg_line(e, "    float *hx[2];        /* pinned host memory on the way in and out */");
    cg_line(e, "    int *hlab[2];");
    cg_line(e, "    double *hrep;");
    cg_line(e, "    long block, nblocks;");
    cg_line(e, "    int fill;            /* the pair that dev_stage fills next (dev_begin reads the other) */");
    cg_line(e, "    cudaStream_t copies; /* the batches' copies, beside the steps' stream */");
    cg_line(e, "#ifndef SNNC_CUDA_EMULATE");
    cg_line(e, "    cudaEvent_t copied[2]; /* each pair's copy done */");
    cg_line(e, "#endif");
    cg_line(e, "} %s_d;", p);
    cg_blank(e);
    cg_line(e, "/* The sum in double of the squares of the gradients pos, pos + 32, ... below end,");
    cg_line(e, "   counted through the learnable ranges rng (offset, count) as one array: a lane of");
    cg_line(e, "   runtime/optim.c's blocks for clipping. */");
    cg_line(e, "%s_DEVICE double %s_lane_sumsq(const float *g, const long *rng, long nr, long pos, long end)", P, p);
    cg_line(e, "{");
    cg_line(e, "    double s = 0.0;");
    cg_line(e, "    long r = 0, base = 0;");
    cg_line(e, "    for (; pos < end; pos += %d) {", SNNRT_CLIP_LANES);
    cg_line(e, "        while (r < nr && pos >= base + rng[2 * r + 1]) {");
    cg_line(e, "            base += rng[2 * r + 1];");
    cg_line(e, "            r++;");
    cg_line(e, "        }");
    cg_line(e, "        if (r == nr)");
    cg_line(e, "            break;");
    cg_line(e, "        s += (double)g[rng[2 * r] + pos - base] * g[rng[2 * r] + pos - base];");
    cg_line(e, "    }");
    cg_line(e, "    return s;");
    cg_line(e, "}");
    cg_blank(e);
    cg_line(e, "/* out[j] = the sum of squares of the gradients j * block .. (j + 1) * block - 1 in");
    cg_line(e, "   runtime/snnrt.h's order: lane l of %d adds the block's gradients l, l + %d, ... in", SNNRT_CLIP_LANES,
            SNNRT_CLIP_LANES);
    cg_line(e, "   order, then the lanes are added as a tree (l += l + w for w = %d, ..., 1). A warp",
            SNNRT_CLIP_LANES / 2);
    cg_line(e, "   per block, its threads the lanes; emulated, the thread of lane 0 runs them all. */");
    cg_line(e, "%s_GLOBAL void %s_sumsq_k(const float *g, const long *rng, long nr, long block, long nblocks, double *out)", P,
            p);
    cg_line(e, "{");
    cg_line(e, "    const long j = %s_TID / %d, l = %s_TID %% %d;", P, SNNRT_CLIP_LANES, P, SNNRT_CLIP_LANES);
    cg_line(e, "    int w;");
    cg_line(e, "#ifdef SNNC_CUDA_EMULATE");
    cg_line(e, "    double s[%d];", SNNRT_CLIP_LANES);
    cg_line(e, "    long k;");
    cg_line(e, "    if (l != 0 || j >= nblocks)");
    cg_line(e, "        return;");
    cg_line(e, "    for (k = 0; k < %d; k++)", SNNRT_CLIP_LANES);
    cg_line(e, "        s[k] = %s_lane_sumsq(g, rng, nr, j * block + k, (j + 1) * block);", p);
    cg_line(e, "    for (w = %d; w > 0; w /= 2)", SNNRT_CLIP_LANES / 2);
    cg_line(e, "        for (k = 0; k < w; k++)");
    cg_line(e, "            s[k] += s[k + w];");
    cg_line(e, "    out[j] = s[0];");
    cg_line(e, "#else");
    cg_line(e, "    double s;");
    cg_line(e, "    if (j >= nblocks) /* the whole warp */");
    cg_line(e, "        return;");
    cg_line(e, "    s = %s_lane_sumsq(g, rng, nr, j * block + l, (j + 1) * block);", p);
    cg_line(e, "    for (w = %d; w > 0; w /= 2) /* lanes below w add lane l + w's */", SNNRT_CLIP_LANES / 2);
    cg_line(e, "        s += __shfl_down_sync(0xffffffffu, s, w);");
    cg_line(e, "    if (l == 0)");
    cg_line(e, "        out[j] = s;");
    cg_line(e, "#endif");
    cg_line(e, "}");
    cu_map_kernel(e, "g[j] *= c: clipping's scale.", "scale_k", "float *g, long n, float c", "n", "g[j] *= c;");
    cu_map_kernel(e, "*bad = NaN where one of g[0..n) is NaN or infinite (threads that find one write the same).",
                  "finite_k", "const float *g, long n, double *bad", "n",
                  "if (!(g[j] - g[j] == 0.0f))\n            *bad = (double)NAN;");
    cg_blank(e);
    cg_line(e, "/* The host workspace ws (the parameters, and all) and the optimizer's moments m and v");
    cg_line(e, "   (nparam floats each at the parameters' offsets; NULL: zero) to the device, to stay");
    cg_line(e, "   there; the gradients' sums of squares in blocks of `block`. */");
    cg_line(e, "%s_HOST void %s_host_dev_open(const void *ws, const float *m, const float *v, size_t nparam, long block)", P,
            p);
    cg_line(e, "{");
    e->ind++;
    cg_line(e, "const int batch = %s_MAX_BATCH;", P);
    cg_line(e, "float *dws = %s_h_in(1, ws);", p);
    cg_line(e, "long total = 0, k;");
    cg_line(e, "for (k = 0; k < %s_NRANGES; k++)", P);
    cg_line(e, "    total += %s_ranges[2 * k + 1];", p);
    cg_line(e, "if (nparam > (size_t)%s_PARAM_FLOATS || block < 1)", P);
    cg_line(e, "    %s_h_fail(\"dev_open\", \"more parameters than the network's, or no block\");", p);
    cg_line(e, "%s_d.block = block;", p);
    cg_line(e, "%s_d.nblocks = (total + block - 1) / block;", p);
    cg_line(e, "if (!%s_d.y) {", p);
    cg_line(e, "    for (k = 0; k < 2; k++) {");
    cg_line(e, "        %s_d.x[k] = (float *)%s_h_alloc(%s * sizeof(float), 0);", p, p, nin);
    cg_line(e, "        %s_d.hx[k] = (float *)%s_h_alloc(%s * sizeof(float), 1);", p, p, nin);
    cg_line(e, "        %s_d.lab[k] = (int *)%s_h_alloc((size_t)batch * sizeof(int), 0);", p, p);
    cg_line(e, "        %s_d.hlab[k] = (int *)%s_h_alloc((size_t)batch * sizeof(int), 1);", p, p);
    cg_line(e, "#ifndef SNNC_CUDA_EMULATE");
    cg_line(e, "        if (cudaEventCreateWithFlags(&%s_d.copied[k], cudaEventDisableTiming) != cudaSuccess)", p);
    cg_line(e, "            %s_h_fail(\"cudaEventCreate\", \"failed\");", p);
    cg_line(e, "#endif");
    cg_line(e, "    }");
    cg_line(e, "#ifndef SNNC_CUDA_EMULATE");
    cg_line(e, "    if (cudaStreamCreateWithFlags(&%s_d.copies, cudaStreamNonBlocking) != cudaSuccess)", p);
    cg_line(e, "        %s_h_fail(\"cudaStreamCreate\", \"failed\");", p);
    cg_line(e, "#endif");
    cg_line(e, "    %s_d.y = (float *)%s_h_alloc(%s * sizeof(float), 0);", p, p, nsteps);
    cg_line(e, "    %s_d.dy = (float *)%s_h_alloc(%s * sizeof(float), 0);", p, p, nsteps);
    cg_line(e, "    %s_d.rng = (long *)%s_h_alloc(sizeof %s_ranges, 0);", p, p, p);
    cg_line(e, "    %s_d.rep = (double *)%s_h_alloc((size_t)(2 + %s_d.nblocks) * sizeof(double), 0);", p, p, p);
    cg_line(e, "    %s_d.hrep = (double *)%s_h_alloc((size_t)(2 + %s_d.nblocks) * sizeof(double), 1);", p, p, p);
    cg_line(e, "}");
    cg_line(e, "%s_copy(%s_d.rng, %s_ranges, sizeof %s_ranges, %s_h.st);", p, p, p, p, p);
    cg_line(e, "%s_h_check(%s_train_optimizer_reset(dws, %s_h.st), \"train_optimizer_reset\");", p, p, p);
    cg_line(e, "if (m)");
    cg_line(e, "    %s_copy(%s, m, nparam * sizeof(float), %s_h.st);", p, m_at, p);
    cg_line(e, "if (v)");
    cg_line(e, "    %s_copy(%s, v, nparam * sizeof(float), %s_h.st);", p, v_at, p);
    cg_line(e, "%s_h_check(0, \"dev_open\");", p);
    e->ind--;
    cg_line(e, "}");
    cg_blank(e);
    cg_line(e, "/* The device's workspace and the optimizer's moments back to the host. */");
    cg_line(e, "%s_HOST void %s_host_dev_get(void *ws, float *m, float *v, size_t nparam)", P, p);
    cg_line(e, "{");
    cg_line(e, "    float *dws = %s_h.ws[1];", p);
    cg_line(e, "    if (m)");
    cg_line(e, "        %s_copy(m, %s, nparam * sizeof(float), %s_h.st);", p, m_at, p);
    cg_line(e, "    if (v)");
    cg_line(e, "        %s_copy(v, %s, nparam * sizeof(float), %s_h.st);", p, v_at, p);
    cg_line(e, "    %s_h_out(1, ws);", p);
    cg_line(e, "}");
    cg_blank(e);
    cg_line(e, "/* A batch and its labels (host memory, copied before the return) on their way to the");
    cg_line(e, "   device on the stream of copies, for the next dev_begin; while the device runs the");
    cg_line(e, "   step before (the order: stage, begin, stage, wait, update, begin, ...). */");
    cg_line(e, "%s_HOST void %s_host_dev_stage(int batch, const float *input, const int *labels)", P, p);
    cg_line(e, "{");
    e->ind++;
    cg_line(e, "const int b = %s_d.fill;", p);
    cg_line(e, "memcpy(%s_d.hx[b], input, %s * sizeof(float));", p, nin);
    cg_line(e, "memcpy(%s_d.hlab[b], labels, (size_t)batch * sizeof(int));", p);
    cg_line(e, "%s_copy(%s_d.x[b], %s_d.hx[b], %s * sizeof(float), %s_d.copies);", p, p, p, nin, p);
    cg_line(e, "%s_copy(%s_d.lab[b], %s_d.hlab[b], (size_t)batch * sizeof(int), %s_d.copies);", p, p, p, p);
    cg_line(e, "#ifndef SNNC_CUDA_EMULATE");
    cg_line(e, "%s_h_ok((int)cudaEventRecord(%s_d.copied[b], %s_d.copies), \"cudaEventRecord\");", p, p, p);
    cg_line(e, "#endif");
    cg_line(e, "%s_d.fill = 1 - b;", p);
    e->ind--;
    cg_line(e, "}");
    cg_blank(e);
    cg_line(e, "/* A training step's first part, queued without waiting, on the batch staged last:");
    cg_line(e, "   the training forward, the loss (kind, lambda, ... as train_loss's), the backward,");
    cg_line(e, "   and with `sums` the gradients' sums of squares in blocks (a thread a block: slow,");
    cg_line(e, "   but in the CPU's order), else a first sum that is NaN where a gradient is not");
    cg_line(e, "   finite and 0 otherwise. */");
    cg_line(e, "%s_HOST void %s_host_dev_begin(int batch, long first, unsigned long long seed, int kind, double lambda,", P,
            p);
    cg_line(e, "        double phi, double correct_rate, double incorrect_rate, int sums)");
    cg_line(e, "{");
    e->ind++;
    cg_line(e, "float *dws = %s_h.ws[1];", p);
    cg_line(e, "const cudaStream_t st = %s_h.st;", p);
    cg_line(e, "const int b = 1 - %s_d.fill;", p);
    cg_line(e, "#ifndef SNNC_CUDA_EMULATE");
    cg_line(e, "%s_h_ok((int)cudaStreamWaitEvent(st, %s_d.copied[b], 0), \"cudaStreamWaitEvent\");", p, p);
    cg_line(e, "#endif");
    cg_line(e, "%s_zero(%s_d.rep, 2 * sizeof(double), st);", p, p);
    cg_line(e, "%s_h_ok(%s_train_forward_at(dws, batch, first, %s_d.x[b], %s_d.y, 1, seed, st, %s_h.blas),", p, p, p, p, p);
    cg_line(e, "                         \"train_forward_at\");");
    cg_line(e, "%s_h_ok(%s_train_loss(dws, batch, kind, lambda, phi, correct_rate, incorrect_rate, %s_d.y, %s_d.lab[b],", p,
            p, p, p);
    cg_line(e, "                         %s_d.dy,", p);
    cg_line(e, "                         %s_d.rep, (int *)(void *)(%s_d.rep + 1), st),", p, p);
    cg_line(e, "       \"train_loss\");");
    cg_line(e, "%s_h_ok(%s_train_backward(dws, batch, %s_d.x[b], %s_d.dy, NULL, st, %s_h.blas), \"train_backward\");", p, p, p,
            p, p);
    cg_line(e, "if (sums)");
    cg_line(e, "    %s_LAUNCH(%s_d.nblocks * %d, st, %s_sumsq_k, (%s_train_grads(dws), %s_d.rng, %s_NRANGES, %s_d.block,", P, p,
            SNNRT_CLIP_LANES, p, p, p, P, p);
    cg_line(e, "                                       %s_d.nblocks, %s_d.rep + 2));", p, p);
    cg_line(e, "else {");
    cg_line(e, "    long k;");
    cg_line(e, "    %s_zero(%s_d.rep + 2, (size_t)%s_d.nblocks * sizeof(double), st);", p, p, p);
    cg_line(e, "    for (k = 0; k < %s_NRANGES; k++)", P);
    cg_line(e, "        %s_LAUNCH(%s_ranges[2 * k + 1], st, %s_finite_k, (%s_train_grads(dws) + %s_ranges[2 * k],", P, p, p,
            p, p);
    cg_line(e, "                                                      %s_ranges[2 * k + 1], %s_d.rep + 2));", p, p);
    cg_line(e, "}");
    cg_line(e, "%s_copy(%s_d.hrep, %s_d.rep, (size_t)(2 + %s_d.nblocks) * sizeof(double), st);", p, p, p, p);
    e->ind--;
    cg_line(e, "}");
    cg_blank(e);
    cg_line(e, "/* Waits for the step: its loss, its count of correct predictions, and the sums of");
    cg_line(e, "   squares of the gradients' blocks (sumsq: as many as the blocks). */");
    cg_line(e, "%s_HOST void %s_host_dev_wait(double *loss, int *ncorrect, double *sumsq)", P, p);
    cg_line(e, "{");
    cg_line(e, "    %s_h_check(0, \"a training step\");", p);
    cg_line(e, "    *loss = %s_d.hrep[0];", p);
    cg_line(e, "    memcpy(ncorrect, %s_d.hrep + 1, sizeof *ncorrect);", p);
    cg_line(e, "    memcpy(sumsq, %s_d.hrep + 2, (size_t)%s_d.nblocks * sizeof(double));", p, p);
    cg_line(e, "}");
    cg_blank(e);
    cg_line(e, "/* A step's second part, queued: the gradients scaled by c where `scale` (clipping),");
    cg_line(e, "   then the optimizer (as train_optimizer_step). */");
    cg_line(e, "%s_HOST void %s_host_dev_update(int scale, float c, int kind, long long step, double lr, double momentum,",
            P, p);
    cg_line(e, "        double weight_decay, int nesterov, double beta1, double beta2, double eps)");
    cg_line(e, "{");
    e->ind++;
    cg_line(e, "float *dws = %s_h.ws[1], *g = %s_train_grads(dws);", p, p);
    cg_line(e, "long k;");
    cg_line(e, "for (k = 0; scale && k < %s_NRANGES; k++)", P);
    cg_line(e, "    %s_LAUNCH(%s_ranges[2 * k + 1], %s_h.st, %s_scale_k, (g + %s_ranges[2 * k], %s_ranges[2 * k + 1], c));",
            P, p, p, p, p, p);
    cg_line(e, "%s_h_ok(%s_train_optimizer_step(dws, kind, step, lr, momentum, weight_decay, nesterov, beta1, beta2, eps,",
            p, p);
    cg_line(e, "                                  %s_h.st), \"train_optimizer_step\");", p);
    e->ind--;
    cg_line(e, "}");
    cg_blank(e);
    cg_line(e, "/* Data-parallel training (mpirun; compiler/driver/train.c): dev_pull copies the step's");
    cg_line(e, "   gradients of the learnable parameters and the values of the others (batchnorm's");
    cg_line(e, "   running statistics) into the host workspace ws, at their offsets, to be summed over");
    cg_line(e, "   the ranks there; dev_push sends the sums back, for dev_update. Both copy from one");
    cg_line(e, "   training workspace to the other (the same layout); h_trip waits for the copies. */");
    cg_line(e, "static void %s_h_trip(float *to, const float *from)", p);
    cg_line(e, "{");
    e->ind++;
    cg_line(e, "const long grads = %s_train_grads(%s_h.ws[1]) - %s_h.ws[1];", p, p, p);
    cg_line(e, "long k;");
    cg_line(e, "for (k = 0; k < %s_NRANGES; k++)", P);
    cg_line(e, "    %s_copy(to + grads + %s_ranges[2 * k], from + grads + %s_ranges[2 * k],", p, p, p);
    cg_line(e, "            (size_t)%s_ranges[2 * k + 1] * sizeof(float), %s_h.st);", p, p);
    cg_line(e, "for (k = 0; k < %s_NOTHERS; k++)", P);
    cg_line(e, "    %s_copy(to + %s_others[2 * k], from + %s_others[2 * k], (size_t)%s_others[2 * k + 1] * sizeof(float),",
            p, p, p, p);
    cg_line(e, "            %s_h.st);", p);
    cg_line(e, "%s_h_check(0, \"the gradients' round trip\");", p);
    e->ind--;
    cg_line(e, "}");
    cg_blank(e);
    cg_line(e, "%s_HOST void %s_host_dev_pull(void *ws)", P, p);
    cg_line(e, "{");
    cg_line(e, "    %s_h_trip((float *)ws, %s_h.ws[1]);", p, p);
    cg_line(e, "}");
    cg_blank(e);
    cg_line(e, "%s_HOST void %s_host_dev_push(const void *ws)", P, p);
    cg_line(e, "{");
    cg_line(e, "    %s_h_trip(%s_h.ws[1], (const float *)ws);", p, p);
    cg_line(e, "}");
    cg_blank(e);
    cg_line(e, "/* The GPU of the process that is `local` of the processes on its machine: device");
    cg_line(e, "   local modulo their count (each rank of a data-parallel run its own, where there");
    cg_line(e, "   are as many); called before any other function of this file. */");
    cg_line(e, "%s_HOST void %s_host_dev_select(int local)", P, p);
    cg_line(e, "{");
    cg_line(e, "#ifdef SNNC_CUDA_EMULATE");
    cg_line(e, "    (void)local;");
    cg_line(e, "#else");
    cg_line(e, "    int n = 0;");
    cg_line(e, "    cudaError_t err = cudaGetDeviceCount(&n);");
    cg_line(e, "    if (err == cudaSuccess && n > 0)");
    cg_line(e, "        err = cudaSetDevice(local %% n);");
    cg_line(e, "    if (err != cudaSuccess)");
    cg_line(e, "        %s_h_fail(\"cudaSetDevice\", cudaGetErrorString(err));", p);
    cg_line(e, "#endif");
    cg_line(e, "}");
    cg_blank(e);
    cg_line(e, "/* train_forward_at and train_spikes on the device's workspace (ws unused): the");
    cg_line(e, "   driver's evaluation between dev_open and dev_get. */");
    cg_line(e, "%s_HOST void %s_host_dev_forward_at(void *ws, int batch, long first, const float *input, float *output,", P,
            p);
    cg_line(e, "        int training, unsigned long long seed)");
    cg_line(e, "{");
    cg_line(e, "    const float *din = %s_h_put(&%s_h.in, &%s_h.in_cap, input, %s);", p, p, p, nin);
    cg_line(e, "    float *dout = %s_h_room(output, %s);", p, nsteps);
    cg_line(e, "    (void)ws;");
    cg_line(e, "    %s_h_check(%s_train_forward_at(%s_h.ws[1], batch, first, din, dout, training, seed, %s_h.st, %s_h.blas),",
            p, p, p, p, p);
    cg_line(e, "              \"train_forward_at\");");
    cg_line(e, "    %s_h_get(output, %s);", p, nsteps);
    cg_line(e, "    %s_sync(%s_h.st);", p, p);
    cg_line(e, "}");
    cg_blank(e);
    cg_line(e, "%s_HOST void %s_host_dev_spikes(void *ws, int batch, double *spikes, double *neurons)", P, p);
    cg_line(e, "{");
    cg_line(e, "    (void)ws;");
    cg_line(e, "    %s_h_check(%s_train_spikes(%s_h.ws[1], batch, spikes, neurons, %s_h.st), \"train_spikes\");", p, p, p, p);
    cg_line(e, "}");
}

void cu_host_api(Emit *e) {
    const IrGraph *g = e->g;
    const char *p = e->p, *P = e->P;
    const char *nin = arena_printf(g->arena, "(size_t)(%s_INPUT_SEQUENCE ? %s_TIMESTEPS : 1) * (size_t)batch * %s_INPUT_SIZE",
                                   P, P, P);
    const char *nout = arena_printf(g->arena, "(size_t)(%s_OUTPUT_STEPS ? %s_TIMESTEPS : 1) * (size_t)batch * %s_OUTPUT_SIZE",
                                    P, P, P);
    const char *nsteps = arena_printf(g->arena, "(size_t)%s_TIMESTEPS * (size_t)batch * %s_OUTPUT_SIZE", P, P);
    const char *nstep = arena_printf(g->arena, "(size_t)batch * %s_OUTPUT_SIZE", P);
    cg_blank(e);
    cg_line(e, "/* ---- the host API: how snnc run and grad call this code (compiler/backend/cuda/cuhost.c) ----");
    cg_line(e, "   Host memory in and out, as the portable target's API: each function copies the");
    cg_line(e, "   host workspace and the inputs to the device, calls the device API on a stream of");
    cg_line(e, "   its own, and copies the outputs and the workspace back. A failure is reported and");
    cg_line(e, "   ends the program. */");
    cg_line(e, "#ifdef __cplusplus");
    cg_line(e, "#define %s_HOST extern \"C\"", P);
    cg_line(e, "#else");
    cg_line(e, "#define %s_HOST", P);
    cg_line(e, "#endif");
    cg_blank(e);
    cg_line(e, "static struct {");
    cg_line(e, "    float *ws[2], *in, *gin, *out; /* device memory: the workspaces, an input, dL/doutput, an output */");
    cg_line(e, "    size_t ws_cap[2], in_cap, gin_cap, out_cap; /* their floats */");
    cg_line(e, "    cudaStream_t st;");
    cg_line(e, "    cublasHandle_t blas;");
    cg_line(e, "    int ready;");
    cg_line(e, "} %s_h;", p);
    cg_blank(e);
    cg_line(e, "static void %s_h_fail(const char *what, const char *why)", p);
    cg_line(e, "{");
    cg_line(e, "    fprintf(stderr, \"snnc: error: the cuda target's code: %%s: %%s\\n\", what, why);");
    cg_line(e, "    exit(1);");
    cg_line(e, "}");
    cg_blank(e);
    cg_line(e, "/* bytes of device memory, or of pinned host memory */");
    cg_line(e, "static void *%s_h_alloc(size_t bytes, int pinned)", p);
    cg_line(e, "{");
    cg_line(e, "    void *q = NULL;");
    cg_line(e, "#ifdef SNNC_CUDA_EMULATE");
    cg_line(e, "    (void)pinned;");
    cg_line(e, "    if (!(q = malloc(bytes ? bytes : 1)))");
    cg_line(e, "        %s_h_fail(\"malloc\", \"out of memory\");", p);
    cg_line(e, "#else");
    cg_line(e, "    cudaError_t err = pinned ? cudaMallocHost(&q, bytes ? bytes : 1) : cudaMalloc(&q, bytes ? bytes : 1);");
    cg_line(e, "    if (err != cudaSuccess)");
    cg_line(e, "        %s_h_fail(pinned ? \"cudaMallocHost\" : \"cudaMalloc\", cudaGetErrorString(err));", p);
    cg_line(e, "#endif");
    cg_line(e, "    return q;");
    cg_line(e, "}");
    cg_blank(e);
    cg_line(e, "/* A device API function's status, without waiting: 0, else the end. */");
    cg_line(e, "static void %s_h_ok(int rc, const char *what)", p);
    cg_line(e, "{");
    cg_line(e, "    if (rc != 0)");
    cg_line(e, "#ifdef SNNC_CUDA_EMULATE");
    cg_line(e, "        %s_h_fail(what, \"failed\");", p);
    cg_line(e, "#else");
    cg_line(e, "        %s_h_fail(what, rc < 0 ? \"a cuBLAS call failed\" : cudaGetErrorString((cudaError_t)rc));", p);
    cg_line(e, "#endif");
    cg_line(e, "}");
    cg_blank(e);
    cg_line(e, "/* A device API function's status, after waiting for the stream: 0, else the end. */");
    cg_line(e, "static void %s_h_check(int rc, const char *what)", p);
    cg_line(e, "{");
    cg_line(e, "#ifndef SNNC_CUDA_EMULATE");
    cg_line(e, "    if (rc == 0)");
    cg_line(e, "        rc = (int)cudaStreamSynchronize(%s_h.st);", p);
    cg_line(e, "#endif");
    cg_line(e, "    %s_h_ok(rc, what);", p);
    cg_line(e, "}");
    cg_blank(e);
    cg_line(e, "/* *buf, made at least n floats of device memory (its old contents are lost). */");
    cg_line(e, "static float *%s_h_grow(float **buf, size_t *cap, size_t n)", p);
    cg_line(e, "{");
    cg_line(e, "    if (*cap < n) {");
    cg_line(e, "#ifdef SNNC_CUDA_EMULATE");
    cg_line(e, "        free(*buf);");
    cg_line(e, "#else");
    cg_line(e, "        cudaFree(*buf);");
    cg_line(e, "#endif");
    cg_line(e, "        *buf = (float *)%s_h_alloc(n * sizeof(float), 0);", p);
    cg_line(e, "        *cap = n;");
    cg_line(e, "    }");
    cg_line(e, "    return *buf;");
    cg_line(e, "}");
    cg_blank(e);
    cg_line(e, "/* The device copy of workspace `kind` (0 inference, 1 training), set to the host's. */");
    cg_line(e, "static float *%s_h_in(int kind, const void *ws)", p);
    cg_line(e, "{");
    cg_line(e, "    const size_t n = kind ? (size_t)%s : (size_t)%s_WORKSPACE_FLOATS;",
            g->train ? arena_printf(g->arena, "%s_TRAIN_WORKSPACE_FLOATS", P) : "0", P);
    cg_line(e, "    if (!%s_h.ready) {", p);
    cg_line(e, "#ifndef SNNC_CUDA_EMULATE");
    cg_line(e, "        cudaError_t err = cudaStreamCreate(&%s_h.st);", p);
    cg_line(e, "        if (err != cudaSuccess)");
    cg_line(e, "            %s_h_fail(\"cudaStreamCreate\", cudaGetErrorString(err));", p);
    cg_line(e, "        if (cublasCreate(&%s_h.blas) != CUBLAS_STATUS_SUCCESS)", p);
    cg_line(e, "            %s_h_fail(\"cublasCreate\", \"failed\");", p);
    cg_line(e, "#endif");
    cg_line(e, "        %s_h.ready = 1;", p);
    cg_line(e, "    }");
    cg_line(e, "    %s_h_grow(&%s_h.ws[kind], &%s_h.ws_cap[kind], n);", p, p, p);
    cg_line(e, "    %s_copy(%s_h.ws[kind], ws, n * sizeof(float), %s_h.st);", p, p, p);
    cg_line(e, "    return %s_h.ws[kind];", p);
    cg_line(e, "}");
    cg_blank(e);
    cg_line(e, "/* The host workspace set to the device's, after the call. */");
    cg_line(e, "static void %s_h_out(int kind, void *ws)", p);
    cg_line(e, "{");
    cg_line(e, "    %s_copy(ws, %s_h.ws[kind], %s_h.ws_cap[kind] * sizeof(float), %s_h.st);", p, p, p, p);
    cg_line(e, "    %s_sync(%s_h.st);", p, p);
    cg_line(e, "}");
    cg_blank(e);
    cg_line(e, "/* n floats of host memory on the device, in *buf (NULL for NULL). */");
    cg_line(e, "static float *%s_h_put(float **buf, size_t *cap, const float *host, size_t n)", p);
    cg_line(e, "{");
    cg_line(e, "    if (!host)");
    cg_line(e, "        return NULL;");
    cg_line(e, "    %s_h_grow(buf, cap, n);", p);
    cg_line(e, "    %s_copy(*buf, host, n * sizeof(float), %s_h.st);", p, p);
    cg_line(e, "    return *buf;");
    cg_line(e, "}");
    cg_blank(e);
    cg_line(e, "/* Device output space of n floats, or NULL where the host wants none. */");
    cg_line(e, "static float *%s_h_room(const float *host, size_t n)", p);
    cg_line(e, "{");
    cg_line(e, "    return host ? %s_h_grow(&%s_h.out, &%s_h.out_cap, n) : NULL;", p, p, p);
    cg_line(e, "}");
    cg_blank(e);
    cg_line(e, "/* The n floats of the device output back to host (where not NULL). */");
    cg_line(e, "static void %s_h_get(float *host, size_t n)", p);
    cg_line(e, "{");
    cg_line(e, "    if (host)");
    cg_line(e, "        %s_copy(host, %s_h.out, n * sizeof(float), %s_h.st);", p, p, p);
    cg_line(e, "}");

    const char *put_in = arena_printf(g->arena, "const float *din = %s_h_put(&%s_h.in, &%s_h.in_cap, input, %s);", p, p,
                                      p, nin);
    if (g->encoding == ENC_RATE)
        host_fn(e, "void", "seed", "void *ws, unsigned long long seed", 0, "",
                arena_printf(g->arena, "%s_seed(dws, seed, %s_h.st)", p, p), "");
    host_fn(e, "void", "reset", "void *ws, int batch", 0, "", arena_printf(g->arena, "%s_reset(dws, batch, %s_h.st)", p, p),
            "");
    host_fn(e, "void", "step", "void *ws, int batch, const float *input, float *output", 0,
            arena_printf(g->arena, "const float *din = %s_h_put(&%s_h.in, &%s_h.in_cap, input, (size_t)batch * %s_INPUT_SIZE);\n"
                                   "    float *dout = %s_h_room(output, %s);",
                         p, p, p, P, p, nstep),
            arena_printf(g->arena, "%s_step(dws, batch, din, dout, %s_h.st, %s_h.blas)", p, p, p),
            arena_printf(g->arena, "%s_h_get(output, %s);", p, nstep));
    host_fn(e, "void", "forward", "void *ws, int batch, const float *input, float *output", 0,
            arena_printf(g->arena, "%s\n    float *dout = %s_h_room(output, %s);", put_in, p, nout),
            arena_printf(g->arena, "%s_forward(dws, batch, din, dout, %s_h.st, %s_h.blas)", p, p, p),
            arena_printf(g->arena, "%s_h_get(output, %s);", p, nout));
    if (g->probes.len) {
        /* the host workspace holds what the device's does: the record is at the same offset */
        cg_blank(e);
        cg_line(e, "%s_HOST const float *%s_host_probe(void *ws, int k)", P, p);
        cg_line(e, "{");
        cg_line(e, "    const float *rec = %s_probe(%s_h.ws[0], k, %s_h.st);", p, p, p);
        cg_line(e, "    return rec ? (const float *)ws + (rec - %s_h.ws[0]) : NULL;", p);
        cg_line(e, "}");
    }
    if (!g->train)
        return;
    host_fn(e, "void", "train_forward_at",
            "void *ws, int batch, long first, const float *input, float *output, int training,\n"
            "        unsigned long long seed",
            1, arena_printf(g->arena, "%s\n    float *dout = %s_h_room(output, %s);", put_in, p, nsteps),
            arena_printf(g->arena, "%s_train_forward_at(dws, batch, first, din, dout, training, seed, %s_h.st, %s_h.blas)", p,
                         p, p),
            arena_printf(g->arena, "%s_h_get(output, %s);", p, nsteps));
    cg_blank(e);
    cg_line(e, "%s_HOST void %s_host_train_forward(void *ws, int batch, const float *input, float *output, int training,", P,
            p);
    cg_line(e, "%*sunsigned long long seed)", (int)(strlen(P) + strlen(p) + 30), "");
    cg_line(e, "{");
    cg_line(e, "    %s_host_train_forward_at(ws, batch, 0, input, output, training, seed);", p);
    cg_line(e, "}");
    /* the input: the device's copy that train_forward_at made, still there */
    host_fn(e, "void", "train_backward", "void *ws, int batch, const float *input, const float *doutput, float *dinput", 1,
            arena_printf(g->arena,
                         "const float *dg = %s_h_put(&%s_h.gin, &%s_h.gin_cap, doutput, %s);\n"
                         "    float *dx = %s_h_room(dinput, %s);\n"
                         "    (void)input;",
                         p, p, p, nsteps, p, nin),
            arena_printf(g->arena, "%s_train_backward(dws, batch, %s_h.in, dg, dx, %s_h.st, %s_h.blas)", p, p, p, p),
            arena_printf(g->arena, "%s_h_get(dinput, %s);", p, nin));
    host_fn(e, "void", "train_spikes", "void *ws, int batch, double *spikes, double *neurons", 1, "",
            arena_printf(g->arena, "%s_train_spikes(dws, batch, spikes, neurons, %s_h.st)", p, p), "");
    cg_blank(e);
    cg_line(e, "%s_HOST float *%s_host_train_grads(void *ws)", P, p);
    cg_line(e, "{");
    cg_line(e, "    return (float *)ws + (%s_train_grads(%s_h.ws[1]) - %s_h.ws[1]);", p, p, p);
    cg_line(e, "}");
    host_train_loop(e, nin, nsteps);
}

/* ---- building and loading ---- */

/* nvcc: $CUDACXX, else on PATH, else in $CUDA_HOME/bin, else the toolkit's
   usual place; NULL when none runs. */
static const char *find_nvcc(Arena *a) {
    const char *env = getenv("CUDACXX");
    if (env && *env)
        return access(env, X_OK) == 0 ? env : NULL;
    const char *found = cbuild_which(a, "nvcc");
    if (found)
        return found;
    const char *home = getenv("CUDA_HOME");
    if (home && *home) {
        const char *c = arena_printf(a, "%s/bin/nvcc", home);
        if (access(c, X_OK) == 0)
            return c;
    }
    return access("/usr/local/cuda/bin/nvcc", X_OK) == 0 ? "/usr/local/cuda/bin/nvcc" : NULL;
}

int cu_emulated(void) {
    const char *v = getenv("SNNC_CUDA_EMULATE");
    return v && *v && strcmp(v, "0") != 0;
}

int cu_build_and_load(const Target *t, const IrGraph *g, const LoadOptions *lo, LoadedModel *m) {
    int emu = cu_emulated();
    const char *nvcc = emu ? NULL : find_nvcc(g->arena);
    if (!emu && !nvcc) {
        error_plain("building the cuda target's code needs nvcc (the CUDA toolkit): set CUDACXX or put nvcc on "
                    "PATH");
        return -1;
    }
    const char *prefix;
    if (cbuild_write(t, g, lo, m, &prefix) != 0)
        return -1;
    const char *cc = lo->cc ? lo->cc : getenv("CC") && *getenv("CC") ? getenv("CC") : "cc";
    const char *so = cbuild_object(m), *src = cbuild_source(m);
    char *emulated[] = {(char *)cc, "-std=c99", "-O2", "-ffp-contract=off", "-fPIC", "-shared", "-DSNNC_CUDA_EMULATE",
                        "-o", (char *)so, "-x", "c", (char *)src, "-x", "none", "-lm", NULL};
    /* the toolkit's libraries (cuBLAS) found at load time, in the loader's path or not */
    const char *slash = nvcc ? strrchr(nvcc, '/') : NULL;
    const char *rpath = arena_printf(g->arena, "-rpath=%.*s/../lib64", slash ? (int)(slash - nvcc) : 1,
                                     slash ? nvcc : ".");
    char *gpu[] = {(char *)nvcc, "-O3", "-arch=native", "-fmad=false", "-Xcompiler", "-fPIC", "-shared",
                   "-Xlinker", (char *)rpath, "-o", (char *)so, (char *)src, "-lcublas", NULL};
    if (cbuild_compile(g->arena, m, emu ? emulated : gpu, emu ? "the C compiler" : "nvcc", emu) != 0) {
        cbuild_unload(m);
        return -1;
    }
    if (cbuild_open(g, m, prefix, "host") != 0)
        return -1;
    if (!lo->train_loop || !g->train)
        return 0;
    /* snnc train: its loop keeps the workspace on the device (host_train_loop) */
    void **f[] = {(void **)&m->dev.open,   (void **)&m->dev.get,          (void **)&m->dev.stage,
                  (void **)&m->dev.begin,  (void **)&m->dev.wait,         (void **)&m->dev.update,
                  (void **)&m->dev.pull,   (void **)&m->dev.push,         (void **)&m->dev.select,
                  (void **)&m->train_forward_at, (void **)&m->train_spikes};
    const char *names[] = {"open", "get", "stage", "begin", "wait", "update", "pull", "push", "select", "forward_at",
                           "spikes"};
    for (size_t k = 0; k < sizeof f / sizeof f[0]; k++)
        if (!(*f[k] = cbuild_sym(m, arena_printf(g->arena, "%s_host_dev_%s", prefix, names[k])))) {
            cbuild_unload(m);
            return -1;
        }
    m->train_forward = NULL; /* the driver calls train_forward_at */
    return 0;
}
