/*
 * cuhalf.c: the CUDA target's 16-bit values (--precision bf16 and fp16, in
 * training).
 *
 * The training plan (trainplan.c) marks two kinds of values that are
 * stored in 16 bits:
 *   - the states of a neuron layer at the start of every step, which only
 *     the backward reads (IrBufs.shalf: cukernels.c writes them rounded,
 *     cubackward.c reads them);
 *   - the output of a dense, convolution or batchnorm layer that only such
 *     a neuron layer reads, whose gradient that layer's backward writes
 *     over it (IrBufs.vhalf; a convolution's layout kernels in
 *     cukernels.c and batchnorm's kernels in cubackward.c convert it).
 * Here are the conversions and the dense layer of a 16-bit product. Its
 * matrix products read 16-bit operands and sum in fp32 (cublasGemmEx with
 * CUBLAS_COMPUTE_32F; emulated, each element sums its exact products in k
 * order):
 *   forward   y = to16(x w^T + b), with w and b rounded to 16 bits at each
 *             call (the optimizer updates the fp32 weights: they are the
 *             master copy) and x rounded a block of steps at a time;
 *   backward  dw += gy^T x and dx += gy w, both in fp32, from the same
 *             rounded x and w, a block of columns of x or w at a time (so
 *             that each column of dw and dx is one product over all its
 *             terms); db += the columns of gy, in parts, in double.
 * The neuron layer reads y through from16 and writes its dL/dy, a step at a
 * time, through to16 (cukernels.c, cubackward.c). The rounded copies live
 * in the training scratch, a block at a time: in the forward up to 4096
 * rows of the weights (outputs) and 4096 of the input (steps x batch), the
 * operand of the outer loop rounded once and the other again for each of
 * its blocks (the order that converts fewer values); in the backward
 * blocks of columns of the same sizes. So they take about
 * what the 16-bit product saves on large layers, far less than a 16-bit
 * copy of every step of the input or of a large weight matrix would.
 */
#include <stdlib.h>
#include <string.h>

#include "cuda.h"

static const IrNode *node(Emit *e, int i) { return &e->g->nodes.items[i]; }
static long long count(Emit *e, int i) { return shape_count(&node(e, i)->shape); }
static int64_t align16(int64_t x) { return (x + 15) & ~(int64_t)15; }
static int64_t halves(int64_t n) { return align16((n + 1) / 2); } /* floats that hold n halves */

/* The rows of the input (steps x batch) and of the weights (outputs)
   rounded to 16 bits at a time: HALF_ROWS, or SNNC_CUDA_HALF_ROWS where it
   is set (tests set it low to run several blocks on small layers). */
#define HALF_ROWS 4096

static long long half_rows(void) {
    const char *v = getenv("SNNC_CUDA_HALF_ROWS");
    long long n = v ? strtoll(v, NULL, 10) : 0;
    return n > 0 && n <= HALF_ROWS ? n : HALF_ROWS;
}

/* Whether a dense layer has a 16-bit product (and reads spikes kept as
   bits, with bits; has a bias, with bias). */
static int dense16(const IrGraph *g, int bits, int bias) {
    for (int i = 0; g->train && i < g->nodes.len; i++) {
        const IrNode *x = &g->nodes.items[i];
        if (!x->dead && x->op == IR_DENSE && g->trainp.at[i].vhalf && (!bits || g->trainp.at[x->in[0]].bits) &&
            (!bias || x->bias))
            return 1;
    }
    return 0;
}

static int any_half(const IrGraph *g) {
    for (int i = 0; g->train && i < g->nodes.len; i++)
        if (!g->nodes.items[i].dead && (g->trainp.at[i].shalf || g->trainp.at[i].vhalf))
            return 1;
    return 0;
}

/* The steps of a block of the input: half_rows() rows at the largest batch. */
static long long block_steps(Emit *e) {
    long long s = (half_rows() + e->maxb - 1) / e->maxb;
    return s < e->g->timesteps ? s : e->g->timesteps;
}

/* The outputs of a block of the weights. */
static long long block_outs(const IrNode *x) { return x->out < half_rows() ? x->out : half_rows(); }

int64_t cu_half_scratch(Emit *e) {
    int64_t most = 0;
    for (int i = 0; e->g->train && i < e->g->nodes.len; i++) {
        const IrNode *x = node(e, i);
        if (x->dead || x->op != IR_DENSE || !e->g->trainp.at[i].vhalf)
            continue;
        long long I = count(e, x->in[0]);
        int64_t need = halves(block_outs(x) * I) + halves(block_steps(e) * e->maxb * I);
        if (need > most)
            most = need;
    }
    return most;
}

/* ---- the opening ---- */

/* to16 rounds to nearest, ties to even, as the GPU's conversion
   instructions and PyTorch's do; from16 is exact. Written with integers, so
   the GPU and the emulation give the same bits. */
static void conversions(Emit *e) {
    const char *p = e->p, *P = e->P;
    int bf = e->g->store == STORE_BF16;
    cg_blank(e);
    if (bf) {
        cg_line(e, "/* bf16: a float's upper 16 bits, rounded to nearest, ties to even; a NaN stays");
        cg_line(e, "   a NaN (quiet). */");
    } else {
        cg_line(e, "/* fp16 (IEEE binary16), rounded to nearest, ties to even: magnitudes from 65520");
        cg_line(e, "   up become infinities, those below 2^-14 subnormals; a NaN stays a NaN (quiet). */");
    }
    cg_line(e, "%s_DEVICE uint16_t %s_to16(float x)", P, p);
    cg_line(e, "{");
    e->ind++;
    cg_line(e, "uint32_t u;");
    cg_line(e, "memcpy(&u, &x, sizeof u);");
    if (bf) {
        cg_line(e, "if ((u & 0x7fffffffu) > 0x7f800000u)");
        cg_line(e, "    return (uint16_t)((u >> 16) | 0x40u);");
        cg_line(e, "return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);");
    } else {
        cg_line(e, "const uint32_t sign = (u >> 16) & 0x8000u, a = u & 0x7fffffffu;");
        cg_line(e, "if (a > 0x7f800000u) /* NaN */");
        cg_line(e, "    return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x3ffu));");
        cg_line(e, "if (a >= 0x477ff000u) /* 65520 and up: an infinity */");
        cg_line(e, "    return (uint16_t)(sign | 0x7c00u);");
        cg_line(e, "if (a >= 0x38800000u) /* 2^-14 and up: normal; rebias the exponent by 127 - 15 */");
        cg_line(e, "    return (uint16_t)(sign | ((a + 0xfffu + ((a >> 13) & 1u) - 0x38000000u) >> 13));");
        cg_line(e, "if (a <= 0x33000000u) /* 2^-25 and below: zero */");
        cg_line(e, "    return (uint16_t)sign;");
        cg_line(e, "/* a subnormal: the significand in units of 2^-24 */");
        cg_line(e, "const uint32_t m = (a & 0x7fffffu) | 0x800000u, shift = 126u - (a >> 23);");
        cg_line(e, "const uint32_t q = m >> shift, rest = m & ((1u << shift) - 1u), half = 1u << (shift - 1u);");
        cg_line(e, "return (uint16_t)(sign | (q + (rest > half || (rest == half && (q & 1u)))));");
    }
    e->ind--;
    cg_line(e, "}");
    cg_blank(e);
    cg_line(e, "%s_DEVICE float %s_from16(uint16_t h)", P, p);
    cg_line(e, "{");
    e->ind++;
    if (bf)
        cg_line(e, "uint32_t u = (uint32_t)h << 16;");
    else {
        cg_line(e, "const uint32_t sign = (uint32_t)(h & 0x8000u) << 16, ex = (h >> 10) & 0x1fu, m = h & 0x3ffu;");
        cg_line(e, "uint32_t u;");
        cg_line(e, "if (ex == 0x1fu) /* an infinity or a NaN */");
        cg_line(e, "    u = sign | 0x7f800000u | (m << 13);");
        cg_line(e, "else if (ex != 0u)");
        cg_line(e, "    u = sign | ((ex + 112u) << 23) | (m << 13);");
        cg_line(e, "else if (m != 0u) { /* a subnormal, m x 2^-24: exact in a float */");
        cg_line(e, "    const float f = (float)m * 5.9604644775390625e-8f;");
        cg_line(e, "    return sign ? -f : f;");
        cg_line(e, "} else");
        cg_line(e, "    u = sign;");
    }
    cg_line(e, "float x;");
    cg_line(e, "memcpy(&x, &u, sizeof x);");
    cg_line(e, "return x;");
    e->ind--;
    cg_line(e, "}");
}

/* The product of 16-bit operands (--precision bf16 or fp16), C in fp32 or
   in 16 bits. */
static void gemm16(Emit *e) {
    const char *p = e->p;
    const char *fmt16 = e->g->store == STORE_BF16 ? "CUDA_R_16BF" : "CUDA_R_16F";
    cg_blank(e);
    cg_line(e, "/* %s_gemm's product of 16-bit operands a and b (--precision %s), summed in fp32;", p,
            e->g->store == STORE_BF16 ? "bf16" : "fp16");
    cg_line(e, "   c is fp32, or 16 bits when c16 (alpha op(A) op(B) + beta C rounded once). Emulated:");
    cg_line(e, "   each element sums its products (exact in fp32) in k order. */");
    cg_line(e, "static int %s_gemm16(cublasHandle_t blas, int ta, int tb, long M, long N, long K, const uint16_t *a,", p);
    cg_line(e, "%*slong lda, const uint16_t *b, long ldb, void *c, int c16, long ldc, float beta)", (int)strlen(p) + 18,
            "");
    cg_line(e, "{");
    Arena *ar = e->g->arena;
    const char *store[] = {
        "if (c16) {",
        "    uint16_t *h = (uint16_t *)c + i * ldc + j;",
        arena_printf(ar, "    *h = %s_to16(beta == 0.0f ? s : s + beta * %s_from16(*h));", p, p),
        "} else {",
        "    float *f = (float *)c + i * ldc + j;",
        "    *f = beta == 0.0f ? s : s + beta * *f;",
        "}",
    };
    cu_emulated_product(e, arena_printf(ar, "%s_from16", p), store, (int)(sizeof store / sizeof *store));
    cg_line(e, "#else");
    cg_line(e, "    const float one = 1.0f;");
    cg_line(e, "    return cublasGemmEx(blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, (int)N, (int)M,");
    cg_line(e, "                        (int)K, &one, b, %s, (int)ldb, a, %s, (int)lda, &beta, c,", fmt16, fmt16);
    cg_line(e, "                        c16 ? %s : CUDA_R_32F, (int)ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT) ==", fmt16);
    cg_line(e, "                   CUBLAS_STATUS_SUCCESS");
    cg_line(e, "               ? 0");
    cg_line(e, "               : -1;");
    cg_line(e, "#endif");
    cg_line(e, "}");
}

void cu_half_opening(Emit *e) {
    const IrGraph *g = e->g;
    if (!any_half(g))
        return;
    Arena *a = g->arena;
    const char *p = e->p;
    conversions(e);
    cu_map_kernel(e, "s[j] = v in 16 bits for j < n: a stored state at the start of a sequence.", "fill16_k",
                  "uint16_t *s, long n, float v", "n", arena_printf(a, "s[j] = %s_to16(v);", p));
    if (!dense16(g, 0, 0))
        return;
    cu_map_kernel(e,
                  "Columns [c0, c0 + cols) of the rows of x (ld apart) in 16 bits, packed: h[j] = x[j / cols *\n"
                  "   ld + c0 + j % cols] for j < n, an operand of gemm16.",
                  "half_k", "const float *x, uint16_t *h, long n, long cols, long ld, long c0", "n",
                  arena_printf(a, "h[j] = %s_to16(x[j / cols * ld + c0 + j %% cols]);", p));
    if (dense16(g, 1, 0))
        cu_map_kernel(e,
                      "The same from spikes kept as bits (element k is bit k % 32 of word k / 32 of w), 0 or 1\n"
                      "   in 16 bits, exact.",
                      "unbits16_k", "const uint32_t *w, uint16_t *h, long n, long cols, long ld, long c0", "n",
                      arena_printf(a,
                                   "{ const long k = j / cols * ld + c0 + j %% cols; h[j] = %s_to16((float)((w[k >> 5] >> "
                                   "(k & 31)) & 1u)); }",
                                   p));
    gemm16(e);
    if (!dense16(g, 0, 1))
        return;
    cu_map_kernel(e,
                  "Row r of y (rows ld apart) = the nb values of bias in 16 bits, for j = r nb + c < n:\n"
                  "   the bias that a 16-bit product adds to.",
                  "bias16_k", "uint16_t *y, const float *bias, long n, long nb, long ld", "n",
                  arena_printf(a, "y[j / nb * ld + j %% nb] = %s_to16(bias[j %% nb]);", p));
    cu_colpart(e, 1);
}

/* ---- a dense layer of a 16-bit product ---- */

/* Declares w16 and x16 in the training scratch. */
static void scratch16(Emit *e, const IrPlan *P, const IrNode *x, long long I) {
    cg_line(e, "uint16_t *w16 = (uint16_t *)(void *)(ws + %lld); /* a block of the weights in 16 bits */",
            (long long)cp_scratch(e, P));
    cg_line(e, "uint16_t *x16 = w16 + %lld; /* a block of the input in 16 bits */",
            (long long)(2 * halves(block_outs(x) * I)));
}

/* Opens the loop over the blocks of outputs [o0, o0 + ob), rounding the
   block's weights into w16. */
static void open_outs(Emit *e, const IrNode *x, long long I) {
    long long O = x->out, ob = block_outs(x);
    cg_line(e, "for (long o0 = 0; o0 < %lld; o0 += %lld) { /* blocks of outputs */", O, ob);
    e->ind++;
    cg_line(e, "const long ob = %lld - o0 < %lld ? %lld - o0 : %lld;", O, ob, O, ob);
    cg_line(e, "%s_LAUNCH(ob * %lld, st, %s_half_k, (%s + o0 * %lld, w16, ob * %lld, %lld, %lld, 0));", e->P, I, e->p,
            cu_param_host(e, x->param[0]), I, I, I, I);
}

/* Opens the loop over the blocks of steps [t0, t1) of [from, to), rounding
   a block of the input (rows of I) into x16. */
static void open_steps(Emit *e, const IrPlan *P, int in, long long I) {
    cg_line(e, "for (int t0 = from; t0 < to; t0 += %lld) { /* blocks of steps */", block_steps(e));
    e->ind++;
    cg_line(e, "const int t1 = to - t0 < %lld ? to : t0 + %lld;", block_steps(e), block_steps(e));
    cg_line(e, "const long rows = (long)(t1 - t0) * B;");
    if (P->at[in].bits)
        cg_line(e, "%s_LAUNCH(rows * %lld, st, %s_unbits16_k, (%s, x16, rows * %lld, %lld, %lld, 0)); /* spikes, exact */",
                e->P, I, e->p, cp_bits_at(e, P, in, "t0"), I, I, I);
    else
        cg_line(e, "%s_LAUNCH(rows * %lld, st, %s_half_k, (%s, x16, rows * %lld, %lld, %lld, 0));", e->P, I, e->p,
                cp_at(e, P, in, 'v', "t0"), I, I, I);
}

static void close_block(Emit *e) {
    e->ind--;
    cg_line(e, "}");
}

/* Whether the forward's outer loop runs over the blocks of steps: the
   operand of the outer loop is rounded once, the other once for each of
   its blocks, so the order is the one that converts fewer values (by the
   largest batch; the weights' blocks outside where both convert as many). */
static int steps_outside(Emit *e, const IrNode *x) {
    long long T = e->g->timesteps, rows = T * e->maxb, O = x->out;
    long long outer_outs = O + (O + block_outs(x) - 1) / block_outs(x) * rows;
    long long outer_steps = rows + (T + block_steps(e) - 1) / block_steps(e) * O;
    return outer_steps < outer_outs;
}

void cu_half_dense_fwd(Emit *e, const IrPlan *P, int i) {
    const IrNode *x = node(e, i);
    int in = x->in[0];
    long long I = count(e, in), O = x->out;
    if (P->at[in].inv)
        ICE("a 16-bit product of an input stored once");
    cu_open_host(e, P, i, 1);
    scratch16(e, P, x, I);
    if (steps_outside(e, x)) {
        cg_line(e, "/* the input rounded once, the weights once a block of steps: fewer conversions */");
        open_steps(e, P, in, I);
        open_outs(e, x, I);
    } else {
        open_outs(e, x, I);
        open_steps(e, P, in, I);
    }
    cg_line(e, "uint16_t *yt = %s + o0;", cp_half_at(e, P, i, "t0"));
    if (x->bias)
        cg_line(e, "%s_LAUNCH(rows * ob, st, %s_bias16_k, (yt, %s + o0, rows * ob, ob, %lld));", e->P, e->p,
                cu_param_host(e, x->param[1]), O);
    cg_line(e, "if (%s_gemm16(blas, 0, 1, rows, ob, %lld, x16, %lld, w16, %lld, yt, 1, %lld, %s) != 0) /* y = x w^T%s */",
            e->p, I, I, I, O, x->bias ? "1.0f" : "0.0f", x->bias ? " + b" : "");
    cg_line(e, "    return -1;");
    close_block(e);
    close_block(e);
    cg_line(e, "(void)flag;");
    cg_line(e, "return 0;");
    cu_close_host(e);
}

/* The backward's blocks of columns of the input (all its rows) and of the
   weights (all their rows): as many as the forward's blocks of rows hold. */
static long long cols_of_input(Emit *e, long long I) {
    long long c = block_steps(e) * I / e->g->timesteps;
    return c < 1 ? 1 : c;
}
static long long cols_of_weights(const IrNode *x, long long I) {
    long long c = block_outs(x) * I / x->out;
    return c < 1 ? 1 : c;
}

/* Opens the loop over the blocks of columns [i0, i0 + ib) of I (ib at
   most cols). */
static void open_cols(Emit *e, long long I, long long cols) {
    cg_line(e, "for (long i0 = 0; i0 < %lld; i0 += %lld) { /* blocks of columns */", I, cols);
    e->ind++;
    cg_line(e, "const long ib = %lld - i0 < %lld ? %lld - i0 : %lld;", I, cols, I, cols);
}

void cu_half_dense_bwd(Emit *e, const IrPlan *P, int i) {
    const IrNode *x = node(e, i);
    int in = x->in[0];
    long long I = count(e, in), O = x->out;
    cu_open_host(e, P, i, 0);
    cg_line(e, "float *dw = %s;", cp_grad(e, x->param[0]));
    cg_line(e, "const uint16_t *gy = %s; /* over the product */", cp_half_at(e, P, i, "from"));
    cg_line(e, "const long rows = (long)(to - from) * B;");
    if (x->bias) { /* db += the rows of gy, in parts (the scratch's start, before w16 is written) */
        long long K = cu_parts(e->maxb * e->g->timesteps, O);
        cg_line(e, "double *part = (double *)(void *)(ws + %lld);", (long long)cp_scratch(e, P));
        cg_line(e, "%s_LAUNCH(%lld, st, %s_colpart16_k, (gy, part, rows, %lld, %lld)); /* db */", e->P, O * K, e->p, O,
                K);
        cg_line(e, "%s_LAUNCH(%lld, st, %s_colsum_k, (part, %s, %lld, %lld));", e->P, O, e->p, cp_grad(e, x->param[1]),
                O, K);
    }
    scratch16(e, P, x, I);
    /* dw = gy^T x a block of columns of x (and of dw) at a time: each
       column of dw is one product over all the rows */
    open_cols(e, I, cols_of_input(e, I));
    if (P->at[in].bits)
        cg_line(e, "%s_LAUNCH(rows * ib, st, %s_unbits16_k, (%s, x16, rows * ib, ib, %lld, i0)); /* spikes, exact */",
                e->P, e->p, cp_bits_at(e, P, in, "from"), I);
    else
        cg_line(e, "%s_LAUNCH(rows * ib, st, %s_half_k, (%s, x16, rows * ib, ib, %lld, i0));", e->P, e->p,
                cp_at(e, P, in, 'v', "from"), I);
    cg_line(e, "if (%s_gemm16(blas, 1, 0, %lld, ib, rows, gy, %lld, x16, ib, dw + i0, 0, %lld, 1.0f) != 0)", e->p, O, O,
            I);
    cg_line(e, "    return -1; /* dw += gy^T x */");
    close_block(e);
    if (P->at[in].needgrad) {
        /* gx += gy w, a block of columns of w (and of gx) at a time */
        cg_line(e, "if (flag)");
        e->ind++;
        open_cols(e, I, cols_of_weights(x, I));
        cg_line(e, "%s_LAUNCH(%lld * ib, st, %s_half_k, (%s, w16, %lld * ib, ib, %lld, i0));", e->P, O, e->p,
                cu_param_host(e, x->param[0]), O, I);
        cg_line(e, "if (%s_gemm16(blas, 0, 0, rows, ib, %lld, gy, %lld, w16, ib, %s + i0, 0, %lld, 1.0f) != 0)", e->p, O,
                O, cp_at(e, P, in, 'g', "from"), I);
        cg_line(e, "    return -1; /* gx += gy w */");
        close_block(e);
        e->ind--;
    } else
        cg_line(e, "(void)w16;");
    cg_line(e, "(void)flag;");
    cg_line(e, "return 0;");
    cu_close_host(e);
}
