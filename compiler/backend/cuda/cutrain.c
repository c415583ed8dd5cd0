/*
 * cutrain.c: the CUDA target's training API (--target cuda --train): the
 * portable target's training functions (capi.c) on device pointers, and
 * the losses and optimizers of snnc train as device kernels.
 *
 * The training workspace is device memory laid out as the portable
 * target's: the parameters, their gradients, the training plan's region
 * (every step of the values the backward reads, the states at the start of
 * every step, the gradients of the values, the adjoints carried between
 * steps, the neurons' per-parameter sums); then this target's own: a step
 * of spikes kept as bits unpacked for a matrix product, the spike counter,
 * the loss's terms, and the optimizer's two moments (SGD's momentum
 * buffer, Adam's first and second moments). Weights, gradients and
 * optimizer state stay on the device: a training step is train_forward,
 * train_loss (or the caller's loss writing dL/doutput on the device),
 * train_backward and train_optimizer_step, all queued on one stream with
 * no copy to the host.
 *
 * train_backward runs the schedule in reverse as the portable target's
 * does (the same calls with the same ranges and dx flags), then adds each
 * neuron parameter's per-neuron double sums in the portable target's order.
 * train_loss computes runtime/loss.c's losses (cross-entropy of the
 * readout, TET, MSE of the counts) in double, a thread per term, the terms
 * added in order by one thread. The optimizer kernels compute
 * runtime/optim.c's updates (PyTorch 1.13's single-tensor SGD, Adam and
 * AdamW) with the same float operations, their scalars computed on the
 * host in double as optim.c computes them.
 */
#include <string.h>

#include "cuda.h"

static int64_t align16(int64_t x) { return (x + 15) & ~(int64_t)15; }
static long long count(Emit *e, int i) { return shape_count(&e->g->nodes.items[i].shape); }

/* ---- the workspace ---- */

int64_t cu_train_at(Emit *e, int what) {
    const IrGraph *g = e->g;
    const IrPlan *P = &g->trainp;
    int64_t unbits = 0;
    for (int i = 0; i < g->nodes.len; i++) {
        const IrNode *x = &g->nodes.items[i];
        if (!x->dead && x->op == IR_DENSE && P->at[x->in[0]].bits && !P->at[i].vhalf &&
            e->maxb * count(e, x->in[0]) > unbits) /* a 16-bit product unpacks its own (cuhalf.c) */
            unbits = e->maxb * count(e, x->in[0]);
    }
    int64_t nout = count(e, g->output);
    int64_t at[CU_TS_END + 1];
    at[CU_TS_UNBITS] = align16(P->floats) + e->tscratch; /* after the convolutions' scratch */
    at[CU_TS_SPIKES] = at[CU_TS_UNBITS] + align16(unbits);
    at[CU_TS_LOSS] = at[CU_TS_SPIKES] + 16;
    at[CU_TS_OPT_M] = at[CU_TS_LOSS] + align16(2 * e->maxb * (g->timesteps > nout ? g->timesteps : nout));
    at[CU_TS_OPT_V] = at[CU_TS_OPT_M] + align16(g->param_floats);
    at[CU_TS_END] = at[CU_TS_OPT_V] + align16(g->param_floats);
    return at[what];
}

long long cu_train_ws_floats(Emit *e) { return (long long)(cp_base(e, &e->g->trainp) + cu_train_at(e, CU_TS_END)); }

/* ---- the helpers in the opening ---- */

/* Whether a layer of op has a bias (its gradient is added in parts:
   colpart_k's for dense, rowpart_k's for conv2d, then colsum_k's). */
static int has_bias(const IrGraph *g, IrOp op) {
    for (int i = 0; i < g->nodes.len; i++)
        if (!g->nodes.items[i].dead && g->nodes.items[i].op == op && g->nodes.items[i].bias)
            return 1;
    return 0;
}

void cu_colpart(Emit *e, int half) {
    const char *p = e->p, *P = e->P;
    cg_blank(e);
    cg_line(e, "/* part[q * O + o] = the sum of rows q, q + K, ... of column o of gy [rows x O]%s,",
            half ? " (in 16 bits)" : "");
    cg_line(e, "   in double: a thread per (part, column), a warp reading neighbours. */");
    cg_line(e, "%s_GLOBAL void %s_colpart%s_k(const %s *gy, double *part, long rows, long O, long K)", P, p,
            half ? "16" : "", half ? "uint16_t" : "float");
    cg_line(e, "{");
    cg_line(e, "    const long j = %s_TID, o = j %% O;", P);
    cg_line(e, "    double s = 0.0;");
    cg_line(e, "    long r;");
    cg_line(e, "    if (j >= O * K)");
    cg_line(e, "        return;");
    cg_line(e, "    for (r = j / O; r < rows; r += K)");
    if (half)
        cg_line(e, "        s += %s_from16(gy[r * O + o]);", p);
    else
        cg_line(e, "        s += gy[r * O + o];");
    cg_line(e, "    part[j] = s;");
    cg_line(e, "}");
}

/* The kernel that counts spikes (train_spikes). */
static void count_kernel(Emit *e) {
    const char *p = e->p, *P = e->P;
    cg_blank(e);
    cg_line(e, "/* *acc += the spikes of T steps of n elements (or words of 32 bits), steps");
    cg_line(e, "   `stride` apart: a thread per element. Counts are whole numbers, exact in");
    cg_line(e, "   double in any order. */");
    cg_line(e, "%s_GLOBAL void %s_count_k(const float *y, const uint32_t *bits, long n, long stride, double *acc)", P, p);
    cg_line(e, "{");
    cg_line(e, "    const long j = %s_TID;", P);
    cg_line(e, "    double s = 0.0;");
    cg_line(e, "    int t;");
    cg_line(e, "    if (j >= n)");
    cg_line(e, "        return;");
    cg_line(e, "    for (t = 0; t < %d; t++)", e->g->timesteps);
    cg_line(e, "        if (bits) {");
    cg_line(e, "            uint32_t m = bits[(long)t * stride + j];");
    cg_line(e, "            for (; m; m &= m - 1u)");
    cg_line(e, "                s += 1.0;");
    cg_line(e, "        } else");
    cg_line(e, "            s += y[(long)t * stride + j];");
    cg_line(e, "    %s_ATOMIC_ADD(acc, s);", P);
    cg_line(e, "}");
}

/* The kernel that adds up a neuron parameter's per-neuron sums. */
static void psum_kernel(Emit *e) {
    const char *p = e->p, *P = e->P;
    cg_blank(e);
    cg_line(e, "/* A parameter's gradient from its per-neuron double sums s [B][cnt]: value v");
    cg_line(e, "   sums the `per` neurons that share it over the batch, in order. */");
    cg_line(e, "%s_GLOBAL void %s_psum_k(const double *s, float *gp, long B, long nv, long per, long cnt)", P, p);
    cg_line(e, "{");
    cg_line(e, "    const long v = %s_TID;", P);
    cg_line(e, "    double sum = 0.0;");
    cg_line(e, "    long r, k;");
    cg_line(e, "    if (v >= nv)");
    cg_line(e, "        return;");
    cg_line(e, "    for (r = 0; r < B; r++)");
    cg_line(e, "        for (k = 0; k < per; k++)");
    cg_line(e, "            sum += s[r * cnt + v * per + k];");
    cg_line(e, "    gp[v] = (float)sum;");
    cg_line(e, "}");
}

static void loss_kernels(Emit *e);
static void optimizer_kernels(Emit *e);

static int any_learnable(const IrGraph *g) {
    for (int k = 0; k < g->params.len; k++)
        if (g->params.items[k].learnable)
            return 1;
    return 0;
}

void cu_train_opening(Emit *e) {
    const IrGraph *g = e->g;
    const char *p = e->p, *P = e->P;
    int dropout = 0, bits = cp_any_bits(e), nparams = 0, spiking = 0;
    for (int i = 0; i < g->nodes.len; i++) {
        const IrNode *x = &g->nodes.items[i];
        if (x->dead)
            continue;
        dropout |= x->op == IR_DROPOUT;
        nparams |= x->op == IR_NEURON && x->neuron->params.len > 0;
        spiking |= x->op == IR_NEURON && x->neuron->code.items[x->neuron->emit].op == EQ_SPIKE;
    }
    cg_blank(e);
    cg_line(e, "/* ---- training ---- */");
    cg_blank(e);
    cg_line(e, "#ifdef SNNC_CUDA_EMULATE");
    cg_line(e, "#define %s_ATOMIC_ADD(a, v) (*(a) += (v))", P);
    cg_line(e, "/* Bit i %% 32 of word i / 32 of w: whether s is a spike (the threads run in order,");
    cg_line(e, "   so the first of a word's 32 clears it). */");
    cg_line(e, "#define %s_SETBIT(w, i, s) \\", P);
    cg_line(e, "    do { \\");
    cg_line(e, "        if (((i) & 31) == 0) \\");
    cg_line(e, "            (w)[(i) >> 5] = 0u; \\");
    cg_line(e, "        if ((s) != 0.0f) \\");
    cg_line(e, "            (w)[(i) >> 5] |= 1u << ((i) & 31); \\");
    cg_line(e, "    } while (0)");
    cg_line(e, "#else");
    cg_line(e, "#define %s_ATOMIC_ADD(a, v) atomicAdd((a), (v))", P);
    cg_line(e, "/* The same from the 32 threads of a warp (a layer is a multiple of 32 wide, so");
    cg_line(e, "   its warps are whole): the first lane writes their ballot. */");
    cg_line(e, "#define %s_SETBIT(w, i, s) \\", P);
    cg_line(e, "    do { \\");
    cg_line(e, "        const unsigned m_ = __ballot_sync(0xffffffffu, (s) != 0.0f); \\");
    cg_line(e, "        if (((i) & 31) == 0) \\");
    cg_line(e, "            (w)[(i) >> 5] = m_; \\");
    cg_line(e, "    } while (0)");
    cg_line(e, "#endif");
    if (!bits)
        cg_line(e, "/* (no spikes kept as bits: %s_SETBIT is not used) */", P);
    cu_half_opening(e);
    cg_blank(e);
    cg_line(e, "/* Zeroes bytes at dst on the stream. */");
    cg_line(e, "static void %s_zero(void *dst, size_t bytes, cudaStream_t st)", p);
    cg_line(e, "{");
    cg_line(e, "#ifdef SNNC_CUDA_EMULATE");
    cg_line(e, "    (void)st;");
    cg_line(e, "    memset(dst, 0, bytes);");
    cg_line(e, "#else");
    cg_line(e, "    cudaMemsetAsync(dst, 0, bytes, st);");
    cg_line(e, "#endif");
    cg_line(e, "}");
    if (g->trainp.at[g->output].grad >= 0) /* dL/doutput added to the output's gradient, not read in place */
        cu_map_kernel(e, "y[j] += x[j] for j < n.", "addto_k", "float *y, const float *x, long n", "n", "y[j] += x[j];");
    int fp32_bias = 0; /* a dense layer with a bias whose product is fp32 (cuhalf.c has the others') */
    for (int i = 0; i < g->nodes.len; i++)
        fp32_bias |= !g->nodes.items[i].dead && g->nodes.items[i].op == IR_DENSE && g->nodes.items[i].bias &&
                     !g->trainp.at[i].vhalf;
    if (fp32_bias)
        cu_colpart(e, 0);
    if (has_bias(g, IR_DENSE) || has_bias(g, IR_CONV2D)) {
        cg_blank(e);
        cg_line(e, "/* db[o] += the sum of o's K parts part[q * O + o], in order: a thread per output. */");
        cg_line(e, "%s_GLOBAL void %s_colsum_k(const double *part, float *db, long O, long K)", P, p);
        cg_line(e, "{");
        cg_line(e, "    const long o = %s_TID;", P);
        cg_line(e, "    double s = 0.0;");
        cg_line(e, "    long q;");
        cg_line(e, "    if (o >= O)");
        cg_line(e, "        return;");
        cg_line(e, "    for (q = 0; q < K; q++)");
        cg_line(e, "        s += part[q * O + o];");
        cg_line(e, "    db[o] += (float)s;");
        cg_line(e, "}");
    }
    /* a dense layer reads bits, or the output is kept as bits */
    if (cu_train_at(e, CU_TS_SPIKES) > cu_train_at(e, CU_TS_UNBITS) || g->trainp.at[g->output].bits)
        cu_map_kernel(e, "x[j] = bit j % 32 of word j / 32 of w, as a float, for j < n.", "unbits_k",
                      "const uint32_t *w, float *x, long n", "n", "x[j] = (float)((w[j >> 5] >> (j & 31)) & 1u);");
    if (spiking)
        count_kernel(e);
    if (nparams)
        psum_kernel(e);
    if (dropout) {
        cg_blank(e);
        cg_line(e, "/* A counter-based uniform in [0, 1): splitmix64 of (seed, layer, element j of the");
        cg_line(e, "   whole batch), the portable target's, so that both draw the same masks. */");
        cg_line(e, "%s_DEVICE float %s_dropout_uniform(unsigned long long seed, int layer, unsigned long long j)", P, p);
        cg_line(e, "{");
        cg_line(e, "    return %s_unit_d(%s_mix_d(seed ^ ((unsigned long long)layer << 48) ^ (j * 0x9E3779B97F4A7C15ULL)));", p,
                p);
        cg_line(e, "}");
        cu_map_kernel(e,
                      "m[j] = 1 / (1 - p) with probability 1 - p, else 0, for j < n: a dropout mask;\n"
                      "   element j0 + j of the whole batch.",
                      "mask_k", "float *m, long n, int layer, unsigned long long seed, unsigned long long j0, float p, "
                      "float keep", "n",
                      arena_printf(g->arena,
                                   "m[j] = %s_dropout_uniform(seed, layer, j0 + (unsigned long long)j) >= p ? keep : 0.0f;",
                                   p));
    }
    loss_kernels(e);
    if (any_learnable(g))
        optimizer_kernels(e);
}

/* The optimizers: runtime/optim.c's updates, operation by operation. */
static void optimizer_kernels(Emit *e) {
    const char *p = e->p, *P = e->P;
    cg_blank(e);
    cg_line(e, "/* torch.optim.SGD (dampening 0) over n parameters: runtime/optim.c's sgd_update. */");
    cg_line(e, "%s_GLOBAL void %s_sgd_k(float *p, const float *g, float *buf, long n, float wd, float mom, float alpha,",
            P, p);
    cg_line(e, "%*sint first, int nesterov, int decay, int momentum)", (int)strlen(p) + (int)strlen(P) + 22, "");
    cg_line(e, "{");
    cg_line(e, "    const long i = %s_TID;", P);
    cg_line(e, "    float d;");
    cg_line(e, "    if (i >= n)");
    cg_line(e, "        return;");
    cg_line(e, "    d = g[i];");
    cg_line(e, "    if (decay)");
    cg_line(e, "        d = fmaf(wd, p[i], d); /* d_p.add(param, alpha=weight_decay) */");
    cg_line(e, "    if (momentum) {");
    cg_line(e, "        if (first)");
    cg_line(e, "            buf[i] = d; /* torch.clone(d_p) */");
    cg_line(e, "        else {");
    cg_line(e, "            buf[i] = buf[i] * mom; /* buf.mul_(momentum) */");
    cg_line(e, "            buf[i] = buf[i] + d;   /* .add_(d_p, alpha=1 - dampening) */");
    cg_line(e, "        }");
    cg_line(e, "        d = nesterov ? fmaf(mom, buf[i], d) : buf[i];");
    cg_line(e, "    }");
    cg_line(e, "    p[i] = fmaf(alpha, d, p[i]); /* param.add_(d_p, alpha=-lr) */");
    cg_line(e, "}");
    cg_blank(e);
    cg_line(e, "/* torch.optim.Adam and AdamW (amsgrad off) over n parameters: runtime/optim.c's");
    cg_line(e, "   adam_update. */");
    cg_line(e, "%s_GLOBAL void %s_adam_k(float *p, const float *g, float *m, float *v, long n, int adamw, int decay,", P,
            p);
    cg_line(e, "%*sfloat wd, float b1, float b2, float c1, float c2, float bc2_sqrt, float eps,",
            (int)strlen(p) + (int)strlen(P) + 23, "");
    cg_line(e, "%*sfloat neg_step, float keep)", (int)strlen(p) + (int)strlen(P) + 23, "");
    cg_line(e, "{");
    cg_line(e, "    const long i = %s_TID;", P);
    cg_line(e, "    float grad, denom;");
    cg_line(e, "    if (i >= n)");
    cg_line(e, "        return;");
    cg_line(e, "    grad = g[i];");
    cg_line(e, "    if (adamw)");
    cg_line(e, "        p[i] = p[i] * keep; /* param.mul_(1 - lr * weight_decay) */");
    cg_line(e, "    else if (decay)");
    cg_line(e, "        grad = fmaf(wd, p[i], grad); /* grad.add(param, alpha=wd) */");
    cg_line(e, "    m[i] = m[i] * b1; /* exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1) */");
    cg_line(e, "    m[i] = fmaf(c1, grad, m[i]);");
    cg_line(e, "    v[i] = v[i] * b2; /* exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2) */");
    cg_line(e, "    v[i] = fmaf(c2 * grad, grad, v[i]);");
    cg_line(e, "    denom = sqrtf(v[i]) / bc2_sqrt + eps; /* (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps) */");
    cg_line(e, "    p[i] = p[i] + neg_step * m[i] / denom; /* param.addcdiv_(exp_avg, denom, value=-step_size) */");
    cg_line(e, "}");
}

/* The loss's kernels: runtime/loss.c's terms in double, a thread per term
   (a sample, a sample at a step, or a sample's class), each writing only
   its own part of dL/dy; then one thread adds the terms in order and
   counts the correct predictions, as loss.c does. The readout is the
   network's. */
static void loss_kernels(Emit *e) {
    const IrGraph *g = e->g;
    const char *p = e->p, *P = e->P;
    int ro = g->readout, T = g->timesteps;
    cg_blank(e);
    cg_line(e, "/* y[t][b][k] of the outputs [T, B, K] */");
    cg_line(e, "#define %s_Y(y, t, b, k) ((y)[((long)(t) * B + (long)(b)) * K + (long)(k)])", P);
    cg_blank(e);
    cg_line(e, "/* The readout (%s) logit of class k of sample b; *tmax gets the first step that", readout_names[ro]);
    cg_line(e, "   attains the maximum (readout max). */");
    cg_line(e, "%s_DEVICE double %s_logit(const float *y, long B, int K, long b, int k, int *tmax)", P, p);
    cg_line(e, "{");
    e->ind++;
    cg_line(e, "*tmax = 0;");
    if (ro != RO_LAST) {
        cg_line(e, "double s = 0.0;");
        cg_line(e, "int t;");
    }
    switch (ro) {
    case RO_LAST: cg_line(e, "return %s_Y(y, %d, b, k);", P, T - 1); break;
    case RO_MAX:
        cg_line(e, "s = %s_Y(y, 0, b, k);", P);
        cg_line(e, "for (t = 1; t < %d; t++)", T);
        cg_line(e, "    if (%s_Y(y, t, b, k) > s) {", P);
        cg_line(e, "        s = %s_Y(y, t, b, k);", P);
        cg_line(e, "        *tmax = t;");
        cg_line(e, "    }");
        cg_line(e, "return s;");
        break;
    default:
        cg_line(e, "for (t = 0; t < %d; t++)", T);
        cg_line(e, "    s += %s_Y(y, t, b, k);", P);
        cg_line(e, ro == RO_COUNT ? "return s;" : "return s / %d;", T);
    }
    e->ind--;
    cg_line(e, "}");
    cg_blank(e);
    cg_line(e, "/* Adds dz, the gradient of a readout logit, to dy through the readout. */");
    cg_line(e, "%s_DEVICE void %s_logit_bwd(float *dy, long B, int K, long b, int k, int tmax, double dz)", P, p);
    cg_line(e, "{");
    e->ind++;
    switch (ro) {
    case RO_LAST: cg_line(e, "(void)tmax;"); cg_line(e, "%s_Y(dy, %d, b, k) += (float)dz;", P, T - 1); break;
    case RO_MAX: cg_line(e, "%s_Y(dy, tmax, b, k) += (float)dz;", P); break;
    default:
        cg_line(e, "int t;");
        cg_line(e, "(void)tmax;");
        if (ro != RO_COUNT)
            cg_line(e, "dz /= %d;", T);
        cg_line(e, "for (t = 0; t < %d; t++)", T);
        cg_line(e, "    %s_Y(dy, t, b, k) += (float)dz;", P);
    }
    e->ind--;
    cg_line(e, "}");
    cg_blank(e);
    cg_line(e, "/* The cross-entropy of sample b for label c, of the readout logits, or of step");
    cg_line(e, "   t's outputs when t >= 0; adds scale (softmax - onehot) to dy through them. */");
    cg_line(e, "%s_DEVICE double %s_ce(const float *y, float *dy, long B, int K, long b, int c, int t, double scale)", P, p);
    cg_line(e, "{");
    e->ind++;
    cg_line(e, "double m = -INFINITY, s = 0.0, zc = 0.0;");
    cg_line(e, "int k, tmax = 0;");
    cg_line(e, "for (k = 0; k < K; k++) {");
    cg_line(e, "    const double z = t >= 0 ? %s_Y(y, t, b, k) : %s_logit(y, B, K, b, k, &tmax);", P, p);
    cg_line(e, "    if (z > m || k == 0)");
    cg_line(e, "        m = z;");
    cg_line(e, "}");
    cg_line(e, "for (k = 0; k < K; k++) {");
    cg_line(e, "    const double z = t >= 0 ? %s_Y(y, t, b, k) : %s_logit(y, B, K, b, k, &tmax);", P, p);
    cg_line(e, "    s += exp(z - m);");
    cg_line(e, "    if (k == c)");
    cg_line(e, "        zc = z;");
    cg_line(e, "}");
    cg_line(e, "for (k = 0; k < K; k++) {");
    cg_line(e, "    const double z = t >= 0 ? %s_Y(y, t, b, k) : %s_logit(y, B, K, b, k, &tmax);", P, p);
    cg_line(e, "    const double dz = scale * (exp(z - m) / s - (k == c ? 1.0 : 0.0));");
    cg_line(e, "    if (t >= 0)");
    cg_line(e, "        %s_Y(dy, t, b, k) += (float)dz;", P);
    cg_line(e, "    else");
    cg_line(e, "        %s_logit_bwd(dy, B, K, b, k, tmax, dz);", p);
    cg_line(e, "}");
    cg_line(e, "return m + log(s) - zc;");
    e->ind--;
    cg_line(e, "}");
    cg_blank(e);
    cg_line(e, "/* The terms of a loss: kind 0 (cross-entropy) a thread per sample, 1 (TET's");
    cg_line(e, "   cross-entropy) a thread per step and sample, 2 (MSE of the counts) a thread per");
    cg_line(e, "   sample and class, with the target counts on and off. */");
    cg_line(e, "%s_GLOBAL void %s_loss_k(const float *y, const int *labels, float *dy, double *term, long B, int K,", P, p);
    cg_line(e, "%*sint kind, double scale, double on, double off)", (int)(strlen(p) + strlen(P)) + 22, "");
    cg_line(e, "{");
    e->ind++;
    cg_line(e, "const long j = %s_TID;", P);
    cg_line(e, "if (kind == 0 && j < B)");
    cg_line(e, "    term[j] = %s_ce(y, dy, B, K, j, labels[j], -1, scale);", p);
    cg_line(e, "else if (kind == 1 && j < %d * B)", T);
    cg_line(e, "    term[j] = %s_ce(y, dy, B, K, j %% B, labels[j %% B], (int)(j / B), scale);", p);
    cg_line(e, "else if (kind == 2 && j < B * K) {");
    e->ind++;
    cg_line(e, "const long b = j / K;");
    cg_line(e, "const int k = (int)(j %% K);");
    cg_line(e, "double c = 0.0, d;");
    cg_line(e, "int t;");
    cg_line(e, "for (t = 0; t < %d; t++)", T);
    cg_line(e, "    c += %s_Y(y, t, b, k);", P);
    cg_line(e, "d = c - (k == labels[b] ? on : off);");
    cg_line(e, "for (t = 0; t < %d; t++)", T);
    cg_line(e, "    %s_Y(dy, t, b, k) += (float)(scale * d);", P);
    cg_line(e, "term[j] = d * d;");
    e->ind--;
    cg_line(e, "}");
    e->ind--;
    cg_line(e, "}");
    cu_map_kernel(e, "TET's pull towards phi: dy[j] += lambda 2 (y[j] - phi) / n.", "tet_mse_k",
                  "const float *y, float *dy, long n, double lambda, double phi", "n",
                  "dy[j] += (float)(lambda * 2.0 * ((double)y[j] - phi) / (double)n);");
    cg_blank(e);
    cg_line(e, "/* One thread: the terms added in order into the loss, TET's squared errors, and");
    cg_line(e, "   the samples whose prediction (the first largest logit) is their label. */");
    cg_line(e, "%s_GLOBAL void %s_loss_total_k(const float *y, const int *labels, const double *term, long B, int K,", P, p);
    cg_line(e, "%*sint kind, double lambda, double phi, double *loss, int *ncorrect)", (int)(strlen(p) + strlen(P)) + 28, "");
    cg_line(e, "{");
    e->ind++;
    cg_line(e, "const long n = kind == 0 ? B : kind == 1 ? %d * B : B * K;", T);
    cg_line(e, "double total = 0.0, mse = 0.0, v;");
    cg_line(e, "long j, b;");
    cg_line(e, "int nc = 0;");
    cg_line(e, "if (%s_TID != 0)", P);
    cg_line(e, "    return;");
    cg_line(e, "for (j = 0; j < n; j++)");
    cg_line(e, "    total += term[j];");
    cg_line(e, "if (kind == 0)");
    cg_line(e, "    v = total / B;");
    cg_line(e, "else if (kind == 1) {");
    cg_line(e, "    v = total / ((double)%d * B);", T);
    cg_line(e, "    if (lambda != 0.0) {");
    cg_line(e, "        for (j = 0; j < %d * B * K; j++) {", T);
    cg_line(e, "            const double d = (double)y[j] - phi;");
    cg_line(e, "            mse += d * d;");
    cg_line(e, "        }");
    cg_line(e, "        v = (1.0 - lambda) * v + lambda * mse / (double)(%d * B * K);", T);
    cg_line(e, "    }");
    cg_line(e, "} else");
    cg_line(e, "    v = total / ((double)B * K) / %d;", T);
    cg_line(e, "for (b = 0; b < B; b++) {");
    e->ind++;
    cg_line(e, "double best = 0.0;");
    cg_line(e, "int k, arg = 0, tmax;");
    cg_line(e, "for (k = 0; k < K; k++) {");
    cg_line(e, "    double z = 0.0;");
    cg_line(e, "    int t;");
    cg_line(e, "    if (kind == 2) /* the counts */");
    cg_line(e, "        for (t = 0; t < %d; t++)", T);
    cg_line(e, "            z += %s_Y(y, t, b, k);", P);
    cg_line(e, "    else");
    cg_line(e, "        z = %s_logit(y, B, K, b, k, &tmax);", p);
    cg_line(e, "    if (k == 0 || z > best) {");
    cg_line(e, "        best = z;");
    cg_line(e, "        arg = k;");
    cg_line(e, "    }");
    cg_line(e, "}");
    cg_line(e, "nc += arg == labels[b];");
    e->ind--;
    cg_line(e, "}");
    cg_line(e, "*loss = v;");
    cg_line(e, "if (ncorrect)");
    cg_line(e, "    *ncorrect += nc;");
    e->ind--;
    cg_line(e, "}");
}

/* ---- the API ---- */

static void gen_train_forward(Emit *e) {
    const IrGraph *g = e->g;
    const IrPlan *P = &g->trainp;
    int T = g->timesteps, in = g->input, out = g->output;
    long long nin = count(e, in), nout = count(e, out);
    cu_api_head(e, arena_printf(g->arena,
                                "int %s_train_forward_at(void *workspace, int batch, long first, const float *input,\n"
                                "%*sfloat *output, int training, unsigned long long seed, cudaStream_t stream,\n"
                                "%*scublasHandle_t blas)",
                                e->p, (int)strlen(e->p) + 22, "", (int)strlen(e->p) + 22, ""));
    cg_line(e, "int t;");
    cu_bind(e);
    cg_line(e, "(void)seed, (void)first;");
    if (ENC_SPIKES(g->encoding)) /* the samples' own spikes, by their place in the whole batch */
        cu_encode_steps(e, P, "0", arena_printf(g->arena, "%d", T), "first", "seed", "NULL");
    else if (!P->at[in].vext)
        cg_line(e, "%s_copy(%s, input, (size_t)%d * (size_t)B * %lld * sizeof(float), st); /* the input */", e->p,
                cp_at(e, P, in, 'v', "0"), P->at[in].inv ? 1 : T, nin);
    else
        cg_line(e, "/* the input, %lld floats a sample and step: read where it is */", nin);
    for (int i = 0; i < g->nodes.len; i++) {
        const IrNode *x = &g->nodes.items[i];
        if (x->dead)
            continue;
        if (x->op == IR_NEURON)
            for (int k = 0; k < x->neuron->states.len; k++)
                cg_line(e, "%s_LAUNCH(B * %lld, st, %s_fill%s_k, (%s, B * %lld, %s)); /* %s.%s at the first step */",
                        e->P, count(e, i), e->p, P->at[i].shalf ? "16" : "", cu_state_at(e, P, i, k, "0"), count(e, i),
                        cg_flt(e, x->neuron->states.items[k].init), x->name, x->neuron->states.items[k].name);
        if (x->op == IR_DROPOUT) {
            cg_line(e, "if (training) /* %s: keep with probability %s, scaled by 1 / (1 - p) */", x->name,
                    cg_flt(e, 1.0f - x->fval));
            cg_line(e, "    %s_LAUNCH(B * %lld, st, %s_mask_k, (%s, B * %lld, %d, seed, (unsigned long long)first * %lldULL, %s, "
                    "%s));", e->P, count(e, i), e->p, cp_ws(e, P, P->at[i].mask), count(e, i), i, count(e, i),
                    cg_flt(e, x->fval), cg_flt(e, 1.0f / (1.0f - x->fval)));
        }
    }
    cu_run_groups(e, P, "0", arena_printf(g->arena, "%d", T), "1", "training");
    cg_line(e, "if (output)");
    if (P->at[out].bits) /* every step in order, 32 to a word */
        cg_line(e, "    %s_LAUNCH(%d * B * %lld, st, %s_unbits_k, (%s, output, %d * B * %lld)); /* the spikes, kept as bits */",
                e->P, T, nout, e->p, cp_bits_at(e, P, out, "0"), T, nout);
    else if (P->at[out].vsteps > 1) /* every step stored, in order: one copy */
        cg_line(e, "    %s_copy(output, %s, (size_t)%d * (size_t)B * %lld * sizeof(float), st);", e->p,
                cp_at(e, P, out, 'v', "0"), T, nout);
    else {
        cg_line(e, "    for (t = 0; t < %d; t++)", T);
        cg_line(e, "        %s_copy(output + (size_t)t * (size_t)B * %lld, %s, (size_t)B * %lld * sizeof(float), st);",
                e->p, nout, cp_at(e, P, out, 'v', "t"), nout);
    }
    cg_line(e, "(void)t;");
    cu_api_tail(e);
}

/* train_forward: train_forward_at with first 0. */
static void gen_train_forward_first(Emit *e) {
    int n = (int)strlen(e->p);
    cg_blank(e);
    cg_line(e, "int %s_train_forward(void *workspace, int batch, const float *input, float *output, int training,", e->p);
    cg_line(e, "%*sunsigned long long seed, cudaStream_t stream, cublasHandle_t blas)", n + 19, "");
    cg_line(e, "{");
    cg_line(e, "    return %s_train_forward_at(workspace, batch, 0, input, output, training, seed, stream, blas);", e->p);
    cg_line(e, "}");
}

static void gen_train_backward(Emit *e) {
    const IrGraph *g = e->g;
    const IrPlan *P = &g->trainp;
    int T = g->timesteps, in = g->input, out = g->output;
    long long nin = count(e, in), nout = count(e, out);
    int64_t pf = align16(g->param_floats);
    cu_api_head(e, arena_printf(g->arena,
                                "int %s_train_backward(void *workspace, int batch, const float *input,\n"
                                "%*sconst float *doutput, float *dinput, cudaStream_t stream, cublasHandle_t blas)",
                                e->p, (int)strlen(e->p) + 20, ""));
    if (!P->at[in].vext)
        cg_line(e, "(void)input;");
    cg_line(e, "int t;");
    cu_bind(e);
    cg_line(e, "%s_zero(ws + %lld, (size_t)%lld * sizeof(float), st); /* parameter gradients */", e->p, (long long)pf,
            (long long)pf);
    cg_line(e, "%s_zero(%s, (size_t)%lld * sizeof(float), st); /* value gradients, carried adjoints, sums */", e->p,
            cp_ws(e, P, P->persist), (long long)(P->floats - P->persist));
    /* dL/dinput: the caller's buffer, added to (IrBufs.gext), else copied
       at the end (zero for an input encoded into spikes) */
    if (P->at[in].gext) {
        cg_line(e, "if (dinput)");
        cg_line(e, "    %s_zero(dinput, (size_t)%d * (size_t)B * %lld * sizeof(float), st);", e->p, P->at[in].inv ? 1 : T,
                nin);
    }
    /* dL/doutput: read in place (IrBufs.gext) unless some layer adds to it */
    if (P->at[out].grad >= 0 && P->at[out].vsteps > 1) /* a gradient per step, in order: one launch */
        cg_line(e, "%s_LAUNCH(%d * B * %lld, st, %s_addto_k, (%s, doutput, %d * B * %lld));", e->P, T, nout, e->p,
                cp_at(e, P, out, 'g', "0"), T, nout);
    else if (P->at[out].grad >= 0) {
        cg_line(e, "for (t = 0; t < %d; t++)", T);
        cg_line(e, "    %s_LAUNCH(B * %lld, st, %s_addto_k, (%s, doutput + (size_t)t * (size_t)B * %lld, B * %lld));", e->P,
                nout, e->p, cp_at(e, P, out, 'g', "t"), nout, nout);
    }
    cp_backward_groups(e, cu_call);
    /* neuron parameters: each neuron's double sum, added up in order */
    for (int i = 0; i < g->nodes.len; i++) {
        const IrNode *x = &g->nodes.items[i];
        if (x->dead || x->op != IR_NEURON)
            continue;
        long long cnt = count(e, i);
        for (int k = 0; k < x->neuron->params.len; k++) {
            const IrParam *q = &g->params.items[x->neuron->params.items[k].param];
            cg_line(e, "%s_LAUNCH(%lld, st, %s_psum_k, ((const double *)(const void *)(%s), ws + %lld, B, %lld, %lld, %lld)); "
                       "/* %s */",
                    e->P, (long long)q->count, e->p, cp_ws(e, P, P->at[i].pacc + (int64_t)k * align16(2 * e->maxb * cnt)),
                    (long long)(pf + q->off), (long long)q->count, cnt / q->count, cnt, q->name);
        }
    }
    if (ENC_SPIKES(g->encoding)) { /* spikes are a step function of the input */
        cg_line(e, "if (dinput)");
        cg_line(e, "    %s_zero(dinput, (size_t)B * %lld * sizeof(float), st); /* the encoder: zero */", e->p, nin);
    } else if (!P->at[in].gext) {
        cg_line(e, "if (dinput)");
        cg_line(e, "    %s_copy(dinput, %s, (size_t)%d * (size_t)B * %lld * sizeof(float), st);", e->p,
                cp_at(e, P, in, 'g', "0"), P->at[in].inv ? 1 : T, nin);
    }
    cg_line(e, "(void)t;");
    cu_api_tail(e);
}

static void gen_train_spikes(Emit *e) {
    const IrGraph *g = e->g;
    const IrPlan *P = &g->trainp;
    int T = g->timesteps;
    long long total = 0;
    cu_api_head(e, arena_printf(g->arena,
                                "int %s_train_spikes(void *workspace, int batch, double *spikes, double *neurons,\n"
                                "%*scudaStream_t stream)",
                                e->p, (int)strlen(e->p) + 18, ""));
    cg_line(e, "double *acc = (double *)(void *)(%s);", cp_ws(e, P, cu_train_at(e, CU_TS_SPIKES)));
    cg_line(e, "%s_zero(acc, sizeof(double), st);", e->p);
    for (int i = 0; i < g->nodes.len; i++) {
        const IrNode *x = &g->nodes.items[i];
        if (x->dead || x->op != IR_NEURON || x->neuron->code.items[x->neuron->emit].op != EQ_SPIKE)
            continue;
        long long cnt = count(e, i);
        if (P->at[i].bits)
            cg_line(e, "%s_LAUNCH(B * %lld, st, %s_count_k, (NULL, %s, B * %lld, B * %lld, acc)); /* %s: the bits set */",
                    e->P, cnt / 32, e->p, cp_bits_at(e, P, i, "0"), cnt / 32, cnt / 32, x->name);
        else
            cg_line(e, "%s_LAUNCH(B * %lld, st, %s_count_k, (%s, NULL, B * %lld, B * %lld, acc)); /* %s */", e->P, cnt,
                    e->p, cp_ws(e, P, P->at[i].val), cnt, cnt, x->name);
        total += (long long)T * cnt;
    }
    cg_line(e, "%s_copy(spikes, acc, sizeof(double), st);", e->p);
    cg_line(e, "%s_sync(st);", e->p);
    cg_line(e, "*neurons = (double)B * %lld.0;", total);
    cu_api_tail(e);
}

static void gen_loss(Emit *e) {
    const IrGraph *g = e->g;
    const IrPlan *P = &g->trainp;
    int T = g->timesteps;
    long long K = count(e, g->output);
    cu_api_head(e, arena_printf(g->arena,
                                "int %s_train_loss(void *workspace, int batch, int kind, double lambda, double phi,\n"
                                "%*sdouble correct_rate, double incorrect_rate, const float *output,\n"
                                "%*sconst int *labels, float *doutput, double *loss, int *ncorrect,\n"
                                "%*scudaStream_t stream)",
                                e->p, (int)strlen(e->p) + 15, "", (int)strlen(e->p) + 15, "", (int)strlen(e->p) + 15,
                                ""));
    cg_line(e, "double *term = (double *)(void *)(%s);", cp_ws(e, P, cu_train_at(e, CU_TS_LOSS)));
    cg_line(e, "const long K = %lld, n = kind == 0 ? B : kind == 1 ? %d * B : B * K;", K, T);
    cg_line(e, "/* runtime/loss.c's weights of the terms in dL/dy, and the target counts */");
    cg_line(e, "const double scale = kind == 0 ? 1.0 / B : kind == 1 ? (1.0 - lambda) / ((double)%d * B)", T);
    cg_line(e, "                                                     : 2.0 / ((double)B * K * %d);", T);
    cg_line(e, "const double on = trunc(%d.0 * correct_rate), off = trunc(%d.0 * incorrect_rate);", T, T);
    cg_line(e, "if (kind < 0 || kind > 2)");
    cg_line(e, "    return -1;");
    cg_line(e, "%s_zero(doutput, (size_t)%d * (size_t)B * (size_t)K * sizeof(float), st);", e->p, T);
    cg_line(e, "%s_LAUNCH(n, st, %s_loss_k, (output, labels, doutput, term, B, (int)K, kind, scale, on, off));", e->P,
            e->p);
    cg_line(e, "if (kind == 1 && lambda != 0.0)");
    cg_line(e, "    %s_LAUNCH(%d * B * K, st, %s_tet_mse_k, (output, doutput, %d * B * K, lambda, phi));", e->P, T, e->p, T);
    cg_line(e, "%s_LAUNCH(1, st, %s_loss_total_k, (output, labels, term, B, (int)K, kind, lambda, phi, loss, ncorrect));",
            e->P, e->p);
    cu_api_tail(e);
}

static void gen_optimizer(Emit *e) {
    const IrGraph *g = e->g;
    const IrPlan *P = &g->trainp;
    const char *p = e->p, *Pu = e->P;
    int64_t pf = align16(g->param_floats);
    cg_blank(e);
    cg_line(e, "int %s_train_optimizer_reset(void *workspace, cudaStream_t stream)", p);
    cg_line(e, "{");
    cg_line(e, "    float *ws = (float *)workspace;");
    cg_line(e, "    %s_zero(%s, (size_t)%lld * sizeof(float), stream);", p, cp_ws(e, P, cu_train_at(e, CU_TS_OPT_M)),
            (long long)(cu_train_at(e, CU_TS_END) - cu_train_at(e, CU_TS_OPT_M)));
    cg_line(e, "    return %s_status(0);", p);
    cg_line(e, "}");
    cg_blank(e);
    cg_line(e, "int %s_train_optimizer_step(void *workspace, int kind, long long step, double lr, double momentum,", p);
    cg_line(e, "%*sdouble weight_decay, int nesterov, double beta1, double beta2, double eps,",
            (int)strlen(p) + 27, "");
    cg_line(e, "%*scudaStream_t stream)", (int)strlen(p) + 27, "");
    cg_line(e, "{");
    e->ind++;
    if (!any_learnable(g)) { /* nothing to update */
        cg_line(e, "(void)workspace, (void)step, (void)lr, (void)momentum, (void)weight_decay, (void)nesterov;");
        cg_line(e, "(void)beta1, (void)beta2, (void)eps, (void)stream;");
        cg_line(e, "return kind < 0 || kind > 2 ? -1 : %s_status(0);", p);
        e->ind--;
        cg_line(e, "}");
        return;
    }
    cg_line(e, "float *ws = (float *)workspace;");
    cg_line(e, "const cudaStream_t st = stream;");
    cg_line(e, "float *m = %s, *v = %s;", cp_ws(e, P, cu_train_at(e, CU_TS_OPT_M)), cp_ws(e, P, cu_train_at(e, CU_TS_OPT_V)));
    cg_line(e, "/* runtime/optim.c's scalars: PyTorch's Python scalars, rounded to float where");
    cg_line(e, "   PyTorch hands them to a float kernel */");
    cg_line(e, "const double n = step > 0 ? (double)step : 1.0;");
    cg_line(e, "const double bc1 = 1.0 - pow(beta1, n), bc2 = 1.0 - pow(beta2, n);");
    cg_line(e, "const float wd = (float)weight_decay, mom = (float)momentum, alpha = (float)-lr;");
    cg_line(e, "const float b1 = (float)beta1, b2 = (float)beta2, c1 = (float)(1.0 - beta1), c2 = (float)(1.0 - beta2);");
    cg_line(e, "const float bc2_sqrt = (float)sqrt(bc2), fe = (float)eps, neg_step = (float)-(lr / bc1);");
    cg_line(e, "const float keep = (float)(1.0 - lr * weight_decay);");
    cg_line(e, "const int first = step <= 1, decay = weight_decay != 0.0;");
    cg_line(e, "if (kind < 0 || kind > 2)");
    cg_line(e, "    return -1;");
    for (int k = 0; k < g->params.len; k++) {
        const IrParam *q = &g->params.items[k];
        if (!q->learnable)
            continue;
        long long off = (long long)q->off, n = (long long)q->count;
        cg_line(e, "if (kind == 0) /* %s */", q->name);
        cg_line(e, "    %s_LAUNCH(%lld, st, %s_sgd_k, (ws + %lld, ws + %lld, m + %lld, %lld, wd, mom, alpha, first, nesterov,",
                Pu, n, p, off, (long long)pf + off, off, n);
        cg_line(e, "%*sdecay, momentum != 0.0));", (int)strlen(Pu) + 32, "");
        cg_line(e, "else");
        cg_line(e, "    %s_LAUNCH(%lld, st, %s_adam_k, (ws + %lld, ws + %lld, m + %lld, v + %lld, %lld, kind == 2, decay, wd, b1,",
                Pu, n, p, off, (long long)pf + off, off, off, n);
        cg_line(e, "%*sb2, c1, c2, bc2_sqrt, fe, neg_step, keep));", (int)strlen(Pu) + 32, "");
    }
    cg_line(e, "(void)m, (void)v, (void)wd, (void)mom, (void)alpha, (void)b1, (void)b2, (void)c1, (void)c2;");
    cg_line(e, "(void)bc2_sqrt, (void)fe, (void)neg_step, (void)keep, (void)first, (void)decay, (void)nesterov, (void)st;");
    cg_line(e, "return %s_status(0);", p);
    e->ind--;
    cg_line(e, "}");
}

void cu_train_api(Emit *e) {
    const IrGraph *g = e->g;
    cg_blank(e);
    cg_line(e, "const long %s_train_workspace_floats = %s_TRAIN_WORKSPACE_FLOATS;", e->p, e->P);
    gen_train_forward(e);
    gen_train_forward_first(e);
    gen_train_backward(e);
    gen_train_spikes(e);
    gen_loss(e);
    gen_optimizer(e);
    cg_blank(e);
    cg_line(e, "float *%s_train_params(void *workspace)", e->p);
    cg_line(e, "{");
    cg_line(e, "    return (float *)workspace;");
    cg_line(e, "}");
    cg_blank(e);
    cg_line(e, "float *%s_train_grads(void *workspace)", e->p);
    cg_line(e, "{");
    cg_line(e, "    return (float *)workspace + %lld;", (long long)align16(g->param_floats));
    cg_line(e, "}");
}

/* ---- the header ---- */

void cu_train_header(Emit *x) {
    const char *p = x->p, *P = x->P;
    int n = (int)strlen(p);
    cg_blank(x);
    cg_line(x, "/* Training (docs/generated-code.md): a separate workspace of TRAIN_WORKSPACE_SIZE");
    cg_line(x, "   bytes of device memory that starts with the parameters (at the offsets of");
    cg_line(x, "   %s_params) and holds their gradients, what the backward needs and the", p);
    cg_line(x, "   optimizer's state: weights, gradients and optimizer state stay on the device. */");
    cg_line(x, "#define %s_TRAIN_WORKSPACE_FLOATS %lldL", P, cu_train_ws_floats(x));
    cg_line(x, "#define %s_TRAIN_WORKSPACE_SIZE (%s_TRAIN_WORKSPACE_FLOATS * sizeof(float)) /* bytes of device memory */",
            P, P);
    cg_line(x, "extern const long %s_train_workspace_floats; /* the same, for dynamic loaders */", p);
    cg_line(x, "/* The optimizer's state is last: a caller that never calls train_optimizer_reset");
    cg_line(x, "   or train_optimizer_step (gradients only, or an optimizer of its own) may");
    cg_line(x, "   allocate only the floats before it. */");
    cg_line(x, "#define %s_GRAD_WORKSPACE_FLOATS %lldL", P,
            (long long)(cp_base(x, &x->g->trainp) + cu_train_at(x, CU_TS_OPT_M)));
    cg_line(x, "/* All T steps from the initial state: output [T, batch, OUTPUT_SIZE] of every step");
    cg_line(x, "   (may be NULL); input as for forward, and kept unchanged for train_backward.");
    cg_line(x, "   training: dropout draws masks from seed; otherwise it behaves as at inference. */");
    cg_line(x, "int %s_train_forward(void *workspace, int batch, const float *input, float *output, int training,", p);
    cg_line(x, "%*sunsigned long long seed, cudaStream_t stream, cublasHandle_t blas);", n + 19, "");
    cg_line(x, "/* The same for a batch that is the samples from first on of a larger one (the");
    cg_line(x, "   shard of a data-parallel step): dropout masks as sample first + b of the larger");
    cg_line(x, "   batch would draw them; train_forward is train_forward_at with first 0. */");
    cg_line(x, "int %s_train_forward_at(void *workspace, int batch, long first, const float *input, float *output,", p);
    cg_line(x, "%*sint training, unsigned long long seed, cudaStream_t stream, cublasHandle_t blas);", n + 22, "");
    cg_line(x, "/* After a forward in training mode: the gradients of every parameter (overwritten)");
    cg_line(x, "   for dL/doutput [T, batch, OUTPUT_SIZE]; dL/dinput (shaped as the input) when");
    cg_line(x, "   dinput is not NULL. input is the forward's, unchanged until the backward has run");
    cg_line(x, "   on the stream: the forward and the backward read it where it is. */");
    cg_line(x, "int %s_train_backward(void *workspace, int batch, const float *input, const float *doutput,", p);
    cg_line(x, "%*sfloat *dinput, cudaStream_t stream, cublasHandle_t blas);", n + 20, "");
    cg_line(x, "/* The parameters and their gradients, at the offsets of %s_params (device memory). */", p);
    cg_line(x, "float *%s_train_params(void *workspace);", p);
    cg_line(x, "float *%s_train_grads(void *workspace);", p);
    cg_line(x, "/* The spikes of the last forward over all spiking layers and steps, and the");
    cg_line(x, "   number of neuron steps they came from (host memory; waits for the stream). */");
    cg_line(x, "int %s_train_spikes(void *workspace, int batch, double *spikes, double *neurons, cudaStream_t stream);",
            p);
    cg_line(x, "/* The loss of snnc train (runtime/loss.c) of the outputs [T, batch, OUTPUT_SIZE] of");
    cg_line(x, "   train_forward for labels[batch] in [0, OUTPUT_SIZE), on the device: *loss gets the");
    cg_line(x, "   batch's mean loss, doutput dL/doutput (for train_backward), *ncorrect (may be");
    cg_line(x, "   NULL) adds the samples whose prediction is their label; all device pointers.");
    cg_line(x, "   kind 0: cross-entropy of the readout (%s) logits; 1: TET (lambda, phi); 2: MSE",
            readout_names[x->g->readout]);
    cg_line(x, "   of the spike counts against (int)(T * correct_rate) and (int)(T * incorrect_rate). */");
    cg_line(x, "int %s_train_loss(void *workspace, int batch, int kind, double lambda, double phi,", p);
    cg_line(x, "%*sdouble correct_rate, double incorrect_rate, const float *output, const int *labels,", n + 15, "");
    cg_line(x, "%*sfloat *doutput, double *loss, int *ncorrect, cudaStream_t stream);", n + 15, "");
    cg_line(x, "/* The optimizer of the learnable parameters, on the device, as snnc train's");
    cg_line(x, "   (runtime/optim.c: PyTorch 1.13's torch.optim): kind 0 SGD (momentum, weight");
    cg_line(x, "   decay, nesterov; dampening 0), 1 Adam, 2 AdamW (beta1, beta2, eps, weight");
    cg_line(x, "   decay). step counts the steps from 1 (SGD's first sets its momentum buffer;");
    cg_line(x, "   Adam's bias corrections). optimizer_reset zeroes the state before the first. */");
    cg_line(x, "int %s_train_optimizer_reset(void *workspace, cudaStream_t stream);", p);
    cg_line(x, "int %s_train_optimizer_step(void *workspace, int kind, long long step, double lr, double momentum,", p);
    cg_line(x, "%*sdouble weight_decay, int nesterov, double beta1, double beta2, double eps,", n + 27, "");
    cg_line(x, "%*scudaStream_t stream);", n + 27, "");
}
