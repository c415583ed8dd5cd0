/*
 * cukernels.c: the CUDA target's forward kernels, of both plans.
 *
 * Each node gets a host function `<net>_fwdN(ws, B, from, to, flag, st,
 * blas)` (`<net>_train_fwdN` for the training plan, flag: training),
 * which the API calls with the same ranges of steps as the portable
 * target's kernels (docs/targets.md), and what it launches on the stream st:
 *   - a neuron layer is one kernel, a thread per neuron, that loads the
 *     neuron's states into registers, runs the steps of the range in order
 *     (the model's instructions from cg_eq_emit, so every built-in and
 *     user-written model works), writes the output of every step and
 *     stores the states once at the end;
 *   - dense layers are one cuBLAS product over the rows of the range;
 *     convolutions an im2col kernel and a product per group at every step;
 *   - the stateless ops (add, scale, identity, dropout, prev, pools,
 *     batchnorm) a kernel of a thread per element over the steps.
 * The same kernels run the training plan's forward (cutrain.c), and the
 * convolution's backward is here with its forward; the other backward
 * kernels are in cubackward.c.
 *
 * Sums: a product's elements are cuBLAS's dot products, whose order of
 * terms cuBLAS chooses, and the bias is added after them (beta = 1 on a
 * matrix filled with the bias); the portable target adds the bias first.
 * So outputs of products differ from the portable target's by rounding;
 * so do the bias gradients and batch normalization in training,
 * whose sums add their terms in parts to spread them over threads; every
 * other kernel computes what the portable target's does, in the same order
 * (docs/targets.md).
 */
#include <string.h>

#include "cuda.h"

static const IrNode *node(Emit *e, int i) { return &e->g->nodes.items[i]; }
static long long count(Emit *e, int i) { return shape_count(&node(e, i)->shape); }
static const char *fmt(Emit *e, const char *f, long long v) { return arena_printf(e->g->arena, f, v); }
static int64_t align16(int64_t x) { return (x + 15) & ~(int64_t)15; }

/* ---- kernels and their host functions ---- */

const char *cu_kernel(Emit *e, const IrPlan *P, int i, int fwd) { return cp_kernel(e, P, i, fwd); }

void cu_open_kernel(Emit *e, const IrPlan *P, int i, int fwd, const char *n) { cu_open_part(e, P, i, fwd, "", n); }

void cu_open_part(Emit *e, const IrPlan *P, int i, int fwd, const char *part, const char *n) {
    cg_blank(e);
    cg_comment_node(e, i);
    cg_line(e, "%s_GLOBAL void %s_%sk(float *ws, long B, int from, int to, int flag%s)", e->P, cu_kernel(e, P, i, fwd),
            part, cp_ext_params(e, P, i, fwd));
    cg_line(e, "{");
    e->ind++;
    cg_line(e, "const long i = %s_TID;", e->P);
    cg_line(e, "(void)flag;");
    cp_ext_unused(e, P, i, fwd);
    cg_line(e, "if (i >= %s)", n);
    cg_line(e, "    return;");
}

void cu_open_host(Emit *e, const IrPlan *P, int i, int fwd) {
    cg_blank(e);
    if (node(e, i)->op == IR_DENSE || node(e, i)->op == IR_CONV2D)
        cg_comment_node(e, i); /* no kernel of its own, which would carry the comment */
    else
        cg_line(e, "/* %s: launches %s_k */", node(e, i)->name, cu_kernel(e, P, i, fwd));
    cg_line(e, "static int %s(float *ws, long B, int from, int to, int flag%s, cudaStream_t st, cublasHandle_t blas)",
            cu_kernel(e, P, i, fwd), cp_ext_params(e, P, i, fwd));
    cg_line(e, "{");
    e->ind++;
    cp_ext_unused(e, P, i, fwd);
    if (node(e, i)->op == IR_CONV2D)
        cg_line(e, "(void)flag;");
}

void cu_close_host(Emit *e) {
    e->ind--;
    cg_line(e, "}");
}

void cu_launch(Emit *e, const IrPlan *P, int i, int fwd, const char *n) { cu_launch_part(e, P, i, fwd, "", n, "flag"); }

void cu_launch_part(Emit *e, const IrPlan *P, int i, int fwd, const char *part, const char *n, const char *flag) {
    cg_line(e, "%s_LAUNCH(%s, st, %s_%sk, (ws, B, from, to, %s%s));", e->P, n, cu_kernel(e, P, i, fwd), part, flag,
            cp_ext_args(e, P, i, fwd));
}

void cu_host_of_kernel(Emit *e, const IrPlan *P, int i, int fwd, const char *n) {
    cu_open_host(e, P, i, fwd);
    cu_launch(e, P, i, fwd, n);
    cg_line(e, "(void)blas;");
    cg_line(e, "return 0;");
    cu_close_host(e);
}

static void host_of_kernel(Emit *e, const IrPlan *P, int i, const char *n) { cu_host_of_kernel(e, P, i, 1, n); }

void cu_map_kernel(Emit *e, const char *doc, const char *name, const char *params, const char *n, const char *stmt) {
    cg_blank(e);
    cg_line(e, "/* %s */", doc);
    cg_line(e, "%s_GLOBAL void %s_%s(%s)", e->P, e->p, name, params);
    cg_line(e, "{");
    cg_line(e, "    const long j = %s_TID;", e->P);
    cg_line(e, "    if (j < %s)", n);
    cg_line(e, "        %s", stmt);
    cg_line(e, "}");
}

/* ---- matrix products ---- */

/* cuBLAS's compute type of each precision (PREC_*): fp32 sums of operands
   rounded to the precision, on the matrix units below fp32. */
static const char *const compute_types[PREC_COUNT] = {
    "CUBLAS_COMPUTE_32F", "CUBLAS_COMPUTE_32F_FAST_TF32", "CUBLAS_COMPUTE_32F_FAST_16BF", "CUBLAS_COMPUTE_32F_FAST_16F"};
/* The low bits of a float's 23-bit mantissa that each precision drops. */
static const int dropped_bits[PREC_COUNT] = {0, 13, 16, 13};

void cu_gemm(TargetEmitter *em) {
    Emit *e = &em->e;
    const char *p = e->p;
    const int prec = e->opt->precision;
    const char *op = prec == PREC_FP32 ? "" : arena_printf(e->g->arena, "%s_operand", p);
    if (prec != PREC_FP32) {
        cg_blank(e);
        cg_line(e, "#ifdef SNNC_CUDA_EMULATE");
        cg_line(e, "/* x rounded to %s as the matrix units read it (--precision %s): the low %d bits",
                precision_names[prec], precision_names[prec], dropped_bits[prec]);
        cg_line(e, "   of the mantissa dropped, to nearest, ties to even%s. */",
                prec == PREC_FP16 ? " (fp16's narrower range is not modelled)" : "");
        cg_line(e, "static float %s(float x)", op);
        cg_line(e, "{");
        cg_line(e, "    uint32_t u;");
        cg_line(e, "    memcpy(&u, &x, sizeof u);");
        cg_line(e, "    if ((u & 0x7f800000u) != 0x7f800000u) /* not an infinity or a NaN */");
        cg_line(e, "        u = (u + 0x%xu + ((u >> %d) & 1u)) & 0x%xu;", (1u << (dropped_bits[prec] - 1)) - 1,
                dropped_bits[prec], ~((1u << dropped_bits[prec]) - 1));
        cg_line(e, "    memcpy(&x, &u, sizeof x);");
        cg_line(e, "    return x;");
        cg_line(e, "}");
        cg_line(e, "#endif");
    }
    cg_blank(e);
    cg_line(e, "/* Row-major C[M x N] = op(A) op(B) + beta C: op(A) = A [M x K] or, with ta, the");
    cg_line(e, "   transpose of A [K x M]; op(B) = B [K x N] or, with tb, the transpose of B [N x K];");
    cg_line(e, "   a, b and c's rows are lda, ldb and ldc apart. cuBLAS is column-major: it");
    cg_line(e, "   computes C^T = op(B)^T op(A)^T. 0, or -1 when it fails. Emulated: each element");
    if (prec == PREC_FP32)
        cg_line(e, "   sums its terms in k order, then adds beta C. */");
    else {
        cg_line(e, "   sums its terms in k order, then adds beta C. --precision %s: the operands", precision_names[prec]);
        cg_line(e, "   rounded to %s (the matrix units), the sums in fp32. */", precision_names[prec]);
    }
    cg_line(e, "static int %s_gemm(cublasHandle_t blas, int ta, int tb, long M, long N, long K, const float *a,", p);
    cg_line(e, "%*slong lda, const float *b, long ldb, float *c, long ldc, float beta)", (int)strlen(p) + 16, "");
    cg_line(e, "{");
    static const char *const store[] = {"c[i * ldc + j] = beta == 0.0f ? s : s + beta * c[i * ldc + j];"};
    cu_emulated_product(e, op, store, 1);
    cg_line(e, "#else");
    cg_line(e, "    const float one = 1.0f;");
    if (prec == PREC_FP32) {
        cg_line(e, "    return cublasSgemm(blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, (int)N, (int)M,");
        cg_line(e, "                       (int)K, &one, b, (int)ldb, a, (int)lda, &beta, c, (int)ldc) == CUBLAS_STATUS_SUCCESS");
    } else {
        cg_line(e, "    return cublasGemmEx(blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, (int)N, (int)M,");
        cg_line(e, "                        (int)K, &one, b, CUDA_R_32F, (int)ldb, a, CUDA_R_32F, (int)lda, &beta, c, CUDA_R_32F,");
        cg_line(e, "                        (int)ldc, %s, CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_SUCCESS", compute_types[prec]);
    }
    cg_line(e, "               ? 0");
    cg_line(e, "               : -1;");
    cg_line(e, "#endif");
    cg_line(e, "}");
    int bias = 0;
    for (int i = 0; i < e->g->nodes.len; i++)
        bias |= !node(e, i)->dead && (node(e, i)->op == IR_DENSE || node(e, i)->op == IR_CONV2D) && node(e, i)->bias;
    if (!bias)
        return;
    cu_map_kernel(e, "y[j] = bias[j / inner % O] for j < n: the bias that a product adds to.", "bias_k",
                  "float *y, const float *bias, long n, long inner, long O", "n", "y[j] = bias[j / inner % O];");
}

void cu_emulated_product(Emit *e, const char *load, const char *const *store, int nstore) {
    cg_line(e, "#ifdef SNNC_CUDA_EMULATE");
    cg_line(e, "    long i, j, k;");
    cg_line(e, "    (void)blas;");
    cg_line(e, "    for (i = 0; i < M; i++)");
    cg_line(e, "        for (j = 0; j < N; j++) {");
    cg_line(e, "            float s = 0.0f;");
    cg_line(e, "            for (k = 0; k < K; k++)");
    cg_line(e, "                s += %s(ta ? a[k * lda + i] : a[i * lda + k]) * %s(tb ? b[j * ldb + k] : b[k * ldb + j]);",
            load, load);
    for (int k = 0; k < nstore; k++)
        cg_line(e, "            %s", store[k]);
    cg_line(e, "        }");
    cg_line(e, "    return 0;");
}

/* y (rows x O) = x (rows x I) w^T + bias: the bias first, then the product. */
static void dense_product(Emit *e, const IrNode *x, long long I, long long O) {
    if (x->bias)
        cg_line(e, "%s_LAUNCH(rows * %lld, st, %s_bias_k, (yt, bias, rows * %lld, 1, %lld));", e->P, O, e->p, O, O);
    cg_line(e, "if (%s_gemm(blas, 0, 1, rows, %lld, %lld, xt, %lld, w, %lld, yt, %lld, %s) != 0) /* y = x w^T%s */", e->p,
            O, I, I, I, O, x->bias ? "1.0f" : "0.0f", x->bias ? " + b" : "");
    cg_line(e, "    return -1;");
}

void cu_dense_fwd(TargetEmitter *em, const IrPlan *P, int i) {
    Emit *e = &em->e;
    const IrNode *x = node(e, i);
    int in = x->in[0];
    long long I = count(e, in), O = x->out;
    if (P->at[i].vhalf) {
        cu_half_dense_fwd(e, P, i);
        return;
    }
    cu_open_host(e, P, i, 1);
    cg_line(e, "const float *w = %s;", cu_param_host(e, x->param[0]));
    if (x->bias)
        cg_line(e, "const float *bias = %s;", cu_param_host(e, x->param[1]));
    if (P->at[in].inv && !P->at[i].inv) {
        /* an input stored once, an output at every step: a product per step */
        cg_line(e, "const long rows = B;");
        cg_line(e, "const float *xt = %s;", cp_at(e, P, in, 'v', "0"));
        cg_line(e, "for (int t = from; t < to; t++) {");
        e->ind++;
        cg_line(e, "float *yt = %s;", cp_at(e, P, i, 'v', "t"));
    } else if (P->at[in].bits) {
        /* spikes kept as bits (training): a step's as floats, then its product */
        cg_line(e, "const long rows = B;");
        cg_line(e, "float *xt = %s; /* scratch */", cp_ws(e, P, cu_train_unbits(e)));
        cg_line(e, "for (int t = from; t < to; t++) {");
        e->ind++;
        cg_line(e, "float *yt = %s;", cp_at(e, P, i, 'v', "t"));
        cg_line(e, "%s_LAUNCH(B * %lld, st, %s_unbits_k, (%s, xt, B * %lld));", e->P, I, e->p, cp_bits_at(e, P, in, "t"),
                I);
    } else {
        cg_line(e, "const long rows = (long)(to - from) * B;");
        cg_line(e, "const float *xt = %s;", cp_at(e, P, in, 'v', "from"));
        cg_line(e, "float *yt = %s;", cp_at(e, P, i, 'v', "from"));
        cg_line(e, "{");
        e->ind++;
    }
    dense_product(e, x, I, O);
    e->ind--;
    cg_line(e, "}");
    cg_line(e, "(void)flag;");
    cg_line(e, "(void)st;");
    cg_line(e, "return 0;");
    cu_close_host(e);
}

/* ---- convolution ---- */

/* The parts of a convolution's bias gradient, a sum per output channel over
   a step's B x pixels, that rowpart_k adds in parallel. */
static long long bias_parts(Emit *e, const ConvDims *d) { return cu_parts(e->maxb * d->P, d->O); }

void cu_scratch(Emit *e) {
    const IrGraph *g = e->g;
    int64_t col = 0, out = 0, parts = 0;
    for (int i = 0; i < g->nodes.len; i++) {
        const IrNode *x = &g->nodes.items[i];
        if (x->dead || x->op != IR_CONV2D)
            continue;
        ConvDims d = cp_conv_dims(e, x);
        int64_t np = e->maxb * d.P;
        if (d.C * d.KK * np > col)
            col = d.C * d.KK * np;
        if (d.O * np > out)
            out = d.O * np;
        if (x->bias && d.O * bias_parts(e, &d) > parts)
            parts = d.O * bias_parts(e, &d);
    }
    int64_t dparts = 0; /* a dense layer's bias gradient: its parts at the scratch's start */
    for (int i = 0; g->train && i < g->nodes.len; i++) {
        const IrNode *x = &g->nodes.items[i];
        int64_t rows = e->maxb * g->timesteps;
        if (!x->dead && x->op == IR_DENSE && x->bias && 2 * x->out * cu_parts(rows, x->out) > dparts)
            dparts = 2 * x->out * cu_parts(rows, x->out);
    }
    e->col = 0;
    e->obuf = align16(col);
    e->iscratch = out ? e->obuf + align16(out) : 0;
    /* training: the gradient of im2col's matrix after them, then the bias
       gradient's parts (doubles) */
    e->dcol = e->iscratch;
    e->bsum = e->dcol + align16(col);
    e->tscratch = out ? e->bsum + align16(2 * parts) : 0;
    if (align16(dparts) > e->tscratch)
        e->tscratch = align16(dparts);
    int64_t half = cu_half_scratch(e); /* the 16-bit operands of products (cuhalf.c) */
    if (half > e->tscratch)
        e->tscratch = half;
    /* batch normalization's sums in training share it (cubackward.c) */
    for (int i = 0; g->train && i < g->nodes.len; i++)
        if (!g->nodes.items[i].dead && g->nodes.items[i].op == IR_BATCHNORM &&
            cu_bn_scratch(e, &g->nodes.items[i]) > e->tscratch)
            e->tscratch = cu_bn_scratch(e, &g->nodes.items[i]);
}

static void conv_rowsum(Emit *e);
static void conv_col2im(Emit *e);

void cu_conv(TargetEmitter *em) {
    Emit *e = &em->e;
    const char *p = e->p, *P = e->P;
    cg_blank(e);
    cg_line(e, "/* A step's input of B samples as the columns of a matrix [c][ky][kx][sample][oy][ox],");
    cg_line(e, "   zero where the kernel reads padding: a thread per element. */");
    cg_line(e, "%s_GLOBAL void %s_im2col_k(const float *x, float *col, long B, long C, long H, long W, int kh, int kw,", P, p);
    cg_line(e, "                          int sh, int sw, int ph, int pw, long OH, long OW)");
    cg_line(e, "{");
    e->ind++;
    cg_line(e, "const long j = %s_TID, np = B * OH * OW;", P);
    cg_line(e, "if (j < C * kh * kw * np) {");
    e->ind++;
    cg_line(e, "const long r = j / np, q = j %% np, s = q / (OH * OW), oy = q / OW %% OH, ox = q %% OW;");
    cg_line(e, "const long c = r / (kh * kw), ky = r / kw %% kh, kx = r %% kw;");
    cg_line(e, "const long iy = oy * sh - ph + ky, ix = ox * sw - pw + kx;");
    cg_line(e, "col[j] = iy >= 0 && iy < H && ix >= 0 && ix < W ? x[((s * C + c) * H + iy) * W + ix] : 0.0f;");
    e->ind--;
    cg_line(e, "}");
    e->ind--;
    cg_line(e, "}");
    /* the element of the products' layout that element j of the value's is */
    static const char *const at = "(j / npix % O) * B * npix + j / (O * npix) * npix + j % npix";
    Arena *a = e->g->arena;
    cu_map_kernel(e, "The products' layout [o][sample][pixel] to the value's [sample][o][pixel].", "chw_k",
                  "const float *yg, float *y, long B, long O, long npix", "B * O * npix",
                  arena_printf(a, "y[j] = yg[%s];", at));
    if (!e->g->train)
        return;
    int bias = 0, dx = 0, half = 0, full = 0;
    for (int i = 0; i < e->g->nodes.len; i++)
        if (!node(e, i)->dead && node(e, i)->op == IR_CONV2D) {
            bias |= node(e, i)->bias;
            dx |= e->g->trainp.at[node(e, i)->in[0]].needgrad != 0;
            half |= e->g->trainp.at[i].vhalf;
            full |= !e->g->trainp.at[i].vhalf;
        }
    if (full)
        cu_map_kernel(e,
                      "Training: a step's gradient in the value's layout [sample][o][pixel] to the\n"
                      "   products' [o][sample][pixel].",
                      "ochw_k", "const float *y, float *yg, long B, long O, long npix", "B * O * npix",
                      arena_printf(a, "yg[%s] = y[j];", at));
    if (half) { /* an output in 16 bits, its gradient over it (cuhalf.c) */
        cu_map_kernel(e, "Training: chw_k to an output in 16 bits, each value rounded once.", "chw16_k",
                      "const float *yg, uint16_t *y, long B, long O, long npix", "B * O * npix",
                      arena_printf(a, "y[j] = %s_to16(yg[%s]);", e->p, at));
        cu_map_kernel(e, "Training: ochw_k from a gradient in 16 bits (exact).", "ochw16_k",
                      "const uint16_t *y, float *yg, long B, long O, long npix", "B * O * npix",
                      arena_printf(a, "yg[%s] = %s_from16(y[j]);", at, e->p));
    }
    if (bias)
        conv_rowsum(e);
    if (dx)
        conv_col2im(e);
}

/* The bias gradient of a convolution's step: row sums in parts, which
   colsum_k then adds (cutrain.c). */
static void conv_rowsum(Emit *e) {
    const char *p = e->p, *P = e->P;
    cg_blank(e);
    cg_line(e, "/* part[q * O + o] = the sum of entries q, q + K, ... of row o of gg [O x np], in");
    cg_line(e, "   double: a thread per (row, part), a warp reading neighbours. */");
    cg_line(e, "%s_GLOBAL void %s_rowpart_k(const float *gg, double *part, long O, long np, long K)", P, p);
    cg_line(e, "{");
    cg_line(e, "    const long j = %s_TID, o = j / K;", P);
    cg_line(e, "    double s = 0.0;");
    cg_line(e, "    long n;");
    cg_line(e, "    if (j >= O * K)");
    cg_line(e, "        return;");
    cg_line(e, "    for (n = j %% K; n < np; n += K)");
    cg_line(e, "        s += gg[o * np + n];");
    cg_line(e, "    part[j %% K * O + o] = s;");
    cg_line(e, "}");
}

/* The gradient of im2col. */
static void conv_col2im(Emit *e) {
    const char *p = e->p, *P = e->P;
    cg_blank(e);
    cg_line(e, "/* The gradient of im2col: x[s][c][iy][ix] += every column entry that read it,");
    cg_line(e, "   ky and kx ascending: a thread per input element. */");
    cg_line(e, "%s_GLOBAL void %s_col2im_k(const float *col, float *x, long B, long C, long H, long W, int kh, int kw,", P, p);
    cg_line(e, "                          int sh, int sw, int ph, int pw, long OH, long OW)");
    cg_line(e, "{");
    e->ind++;
    cg_line(e, "const long j = %s_TID, np = B * OH * OW;", P);
    cg_line(e, "long ky, kx;");
    cg_line(e, "float acc = 0.0f;");
    cg_line(e, "if (j >= B * C * H * W)");
    cg_line(e, "    return;");
    cg_line(e, "{");
    cg_line(e, "    const long s = j / (C * H * W), c = j / (H * W) %% C, iy = j / W %% H, ix = j %% W;");
    cg_line(e, "    for (ky = 0; ky < kh; ky++)");
    cg_line(e, "        for (kx = 0; kx < kw; kx++) {");
    cg_line(e, "            const long ty = iy + ph - ky, tx = ix + pw - kx;");
    cg_line(e, "            if (ty < 0 || tx < 0 || ty %% sh || tx %% sw || ty / sh >= OH || tx / sw >= OW)");
    cg_line(e, "                continue;");
    cg_line(e, "            acc += col[((c * kh + ky) * kw + kx) * np + (s * OH + ty / sh) * OW + tx / sw];");
    cg_line(e, "        }");
    cg_line(e, "    x[j] += acc;");
    cg_line(e, "}");
    e->ind--;
    cg_line(e, "}");
}

/* At every step: im2col of the B samples (N = B x pixels), the bias, a
   product per group with the weights, and the output in its layout. */
void cu_conv_fwd(TargetEmitter *em, const IrPlan *P, int i) {
    Emit *e = &em->e;
    const IrNode *x = node(e, i);
    ConvDims d = cp_conv_dims(e, x);
    int64_t s = cp_scratch(e, P);
    cu_open_host(e, P, i, 1);
    cg_line(e, "const float *w = %s;", cu_param_host(e, x->param[0]));
    if (x->bias)
        cg_line(e, "const float *bias = %s;", cu_param_host(e, x->param[1]));
    cg_line(e, "float *col = ws + %lld, *yg = ws + %lld;", (long long)(s + e->col), (long long)(s + e->obuf));
    cg_line(e, "const long np = B * %lld;", d.P);
    cg_line(e, "for (int t = from; t < to; t++) {");
    e->ind++;
    cg_line(e, "const float *xt = %s;", cp_at(e, P, x->in[0], 'v', "t"));
    if (P->at[i].vhalf)
        cg_line(e, "uint16_t *yt = %s; /* in 16 bits */", cp_half_at(e, P, i, "t"));
    else
        cg_line(e, "float *yt = %s;", cp_at(e, P, i, 'v', "t"));
    cg_line(e, "long gi;");
    cg_line(e, "%s_LAUNCH(np * %lld, st, %s_im2col_k, (xt, col, B, %lld, %lld, %lld, %d, %d, %d, %d, %d, %d, %lld, %lld));",
            e->P, d.C * d.KK, e->p, d.C, d.H, d.W, x->kernel[0], x->kernel[1], x->stride[0], x->stride[1], x->pad[0],
            x->pad[1], d.OH, d.OW);
    if (x->bias)
        cg_line(e, "%s_LAUNCH(np * %lld, st, %s_bias_k, (yg, bias, np * %lld, np, %lld));", e->P, d.O, e->p, d.O, d.O);
    cg_line(e, "for (gi = 0; gi < %lld; gi++) /* y = w col%s, per group */", d.G, x->bias ? " + b" : "");
    cg_line(e, "    if (%s_gemm(blas, 0, 0, %lld, np, %lld, w + gi * %lld, %lld, col + gi * %lld * np, np, yg + gi * %lld * np, np, %s) != 0)",
            e->p, d.og, d.cg * d.KK, d.og * d.cg * d.KK, d.cg * d.KK, d.cg * d.KK, d.og, x->bias ? "1.0f" : "0.0f");
    cg_line(e, "        return -1;");
    cg_line(e, "%s_LAUNCH(np * %lld, st, %s_chw%s_k, (yg, yt, B, %lld, %lld));", e->P, d.O, e->p,
            P->at[i].vhalf ? "16" : "", d.O, d.P);
    e->ind--;
    cg_line(e, "}");
    cg_line(e, "return 0;");
    cu_close_host(e);
}

/* The backward, at every step: im2col of the step's input, its output
   gradient in the products' layout, the bias gradient (a sum per
   channel), dw += gy col^T and, when the input needs it, dcol = w^T gy per
   group, then col2im into the input's gradient. */
void cu_conv_bwd(TargetEmitter *em, const IrPlan *P, int i) {
    Emit *e = &em->e;
    const IrNode *x = node(e, i);
    ConvDims d = cp_conv_dims(e, x);
    int64_t s = cp_scratch(e, P);
    int dx = P->at[x->in[0]].needgrad != 0;
    cu_open_host(e, P, i, 0);
    cg_line(e, "const float *w = %s;", cu_param_host(e, x->param[0]));
    cg_line(e, "float *dw = %s;", cp_grad(e, x->param[0]));
    cg_line(e, "float *col = ws + %lld, *gg = ws + %lld, *dcol = ws + %lld;", (long long)(s + e->col),
            (long long)(s + e->obuf), (long long)(s + e->dcol));
    if (x->bias)
        cg_line(e, "double *bpart = (double *)(void *)(ws + %lld);", (long long)(s + e->bsum));
    cg_line(e, "const long np = B * %lld;", d.P);
    cg_line(e, "for (int t = from; t < to; t++) {");
    e->ind++;
    cg_line(e, "long gi;");
    cg_line(e, "%s_LAUNCH(np * %lld, st, %s_im2col_k, (%s, col, B, %lld, %lld, %lld, %d, %d, %d, %d, %d, %d, %lld, %lld));",
            e->P, d.C * d.KK, e->p, cp_at(e, P, x->in[0], 'v', "t"), d.C, d.H, d.W, x->kernel[0], x->kernel[1],
            x->stride[0], x->stride[1], x->pad[0], x->pad[1], d.OH, d.OW);
    if (P->at[i].vhalf) /* dL/dy in 16 bits over y */
        cg_line(e, "%s_LAUNCH(np * %lld, st, %s_ochw16_k, (%s, gg, B, %lld, %lld));", e->P, d.O, e->p,
                cp_half_at(e, P, i, "t"), d.O, d.P);
    else
        cg_line(e, "%s_LAUNCH(np * %lld, st, %s_ochw_k, (%s, gg, B, %lld, %lld));", e->P, d.O, e->p,
                cp_at(e, P, i, 'g', "t"), d.O, d.P);
    if (x->bias) {
        long long K = bias_parts(e, &d);
        cg_line(e, "%s_LAUNCH(%lld, st, %s_rowpart_k, (gg, bpart, %lld, np, %lld)); /* db */", e->P, d.O * K, e->p,
                d.O, K);
        cg_line(e, "%s_LAUNCH(%lld, st, %s_colsum_k, (bpart, %s, %lld, %lld));", e->P, d.O, e->p,
                cp_grad(e, x->param[1]), d.O, K);
    }
    cg_line(e, "for (gi = 0; gi < %lld; gi++) {", d.G);
    cg_line(e, "    if (%s_gemm(blas, 0, 1, %lld, %lld, np, gg + gi * %lld * np, np, col + gi * %lld * np, np, dw + gi * %lld, "
               "%lld, 1.0f) != 0) /* dw += gy col^T */",
            e->p, d.og, d.cg * d.KK, d.og, d.cg * d.KK, d.og * d.cg * d.KK, d.cg * d.KK);
    cg_line(e, "        return -1;");
    if (dx) {
        cg_line(e, "    if (flag && %s_gemm(blas, 1, 0, %lld, np, %lld, w + gi * %lld, %lld, gg + gi * %lld * np, np, "
                   "dcol + gi * %lld * np, np, 0.0f) != 0) /* dcol = w^T gy */",
                e->p, d.cg * d.KK, d.og, d.og * d.cg * d.KK, d.cg * d.KK, d.og, d.cg * d.KK);
        cg_line(e, "        return -1;");
    }
    cg_line(e, "}");
    if (dx) {
        cg_line(e, "if (flag)");
        cg_line(e, "    %s_LAUNCH(B * %lld, st, %s_col2im_k, (dcol, %s, B, %lld, %lld, %lld, %d, %d, %d, %d, %d, %d, %lld, %lld));",
                e->P, d.C * d.H * d.W, e->p, cp_at(e, P, x->in[0], 'g', "t"), d.C, d.H, d.W, x->kernel[0],
                x->kernel[1], x->stride[0], x->stride[1], x->pad[0], x->pad[1], d.OH, d.OW);
    }
    e->ind--;
    cg_line(e, "}");
    cg_line(e, "(void)w;");
    cg_line(e, "(void)dcol;");
    cg_line(e, "return 0;");
    cu_close_host(e);
}

/* ---- pooling: a thread per output element of a step, over the steps ---- */

void cu_pool_fwd(TargetEmitter *em, const IrPlan *P, int i) {
    Emit *e = &em->e;
    const IrNode *x = node(e, i);
    int in = x->in[0], mx = x->op == IR_MAXPOOL;
    PoolDims d = cp_pool_dims(e, P, x); /* the input a float or a bit (training) */
    const char *n = fmt(e, "B * %lld", d.C * d.OH * d.OW);
    cu_open_kernel(e, P, i, 1, n);
    cg_line(e, "const long rc = i / %lld, oy = i / %lld %% %lld, ox = i %% %lld;", d.OH * d.OW, d.OW, d.OH, d.OW);
    cg_line(e, "for (int t = from; t < to; t++) {");
    e->ind++;
    if (P->at[in].bits)
        cg_line(e, "const uint32_t *xt = %s; /* spikes, 32 to a word */", cp_bits_at(e, P, in, "t"));
    else
        cg_line(e, "const float *xt = %s;", cp_at(e, P, in, 'v', "t"));
    cg_line(e, "float *yt = %s;", cp_at(e, P, i, 'v', "t"));
    cg_line(e, "float acc = %s;", mx ? "-INFINITY" : "0.0f");
    cg_line(e, "long ky, kx;");
    cp_pool_window(e, x, &d, 0, arena_printf(e->g->arena, "acc += %s;", d.xin));
    if (mx)
        cg_line(e, "yt[i] = acc;");
    else
        cg_line(e, "yt[i] = acc / %s;", d.area);
    e->ind--;
    cg_line(e, "}");
    cp_close(e, NULL);
    host_of_kernel(e, P, i, n);
}

/* ---- elementwise: add, scale, identity, dropout (the identity here) ---- */

void cu_eltwise_fwd(TargetEmitter *em, const IrPlan *P, int i) {
    Emit *e = &em->e;
    const IrNode *x = node(e, i);
    const char *n = fmt(e, "B * %lld", count(e, i));
    int mask = x->op == IR_DROPOUT && cp_train(e, P);
    cu_open_kernel(e, P, i, 1, n);
    if (mask)
        cg_line(e, "const float *m = %s; /* the same at every step */", cp_ws(e, P, P->at[i].mask));
    cg_line(e, "for (int t = from; t < to; t++) {");
    e->ind++;
    cg_line(e, "const float *a = %s;", cp_at(e, P, x->in[0], 'v', "t"));
    if (x->op == IR_ADD)
        cg_line(e, "const float *b = %s;", cp_at(e, P, x->in[1], 'v', "t"));
    cg_line(e, "float *y = %s;", cp_at(e, P, i, 'v', "t"));
    switch (x->op) {
    case IR_ADD: cg_line(e, "y[i] = a[i] + b[i];"); break;
    case IR_SCALE: cg_line(e, "y[i] = a[i] * %s;", cg_flt(e, x->fval)); break;
    default: cg_line(e, mask ? "y[i] = flag ? a[i] * m[i] : a[i]; /* flag: training */" : "y[i] = a[i];"); break;
    }
    e->ind--;
    cg_line(e, "}");
    cp_close(e, NULL);
    host_of_kernel(e, P, i, n);
}

/* ---- batch normalization: y = x a + (beta - mean a), a = gamma / sqrt(var + eps) ---- */

void cu_batchnorm_fwd(TargetEmitter *em, const IrPlan *P, int i) {
    Emit *e = &em->e;
    const IrNode *x = node(e, i);
    if (cp_train(e, P)) {
        cu_batchnorm_train_fwd(e, P, i);
        return;
    }
    long long C = x->shape.d[0], hw = count(e, i) / C;
    const char *n = fmt(e, "B * %lld", C * hw);
    cu_open_kernel(e, P, i, 1, n);
    cg_line(e, "const float *gamma = %s, *beta = %s;", cp_param(e, x->param[0]), cp_param(e, x->param[1]));
    cg_line(e, "const float *rmean = %s, *rvar = %s;", cp_param(e, x->param[2]), cp_param(e, x->param[3]));
    cg_line(e, "const long c = i / %lld %% %lld;", hw, C);
    cg_line(e, "const float a = gamma[c] / sqrtf(rvar[c] + %s);", cg_flt(e, x->fval));
    cg_line(e, "const float sh = beta[c] - rmean[c] * a;");
    cg_line(e, "for (int t = from; t < to; t++)");
    cg_line(e, "    (%s)[i] = (%s)[i] * a + sh;", cp_at(e, P, i, 'v', "t"), cp_at(e, P, x->in[0], 'v', "t"));
    cp_close(e, NULL);
    host_of_kernel(e, P, i, n);
}

/* ---- prev(): the source's value at the previous step (ckernels.c) ---- */

void cu_delay_fwd(TargetEmitter *em, const IrPlan *P, int i) {
    Emit *e = &em->e;
    const IrNode *x = node(e, i);
    int s = x->in[0];
    int64_t carry = P->at[i].carry;
    const char *n = fmt(e, "B * %lld", count(e, i));
    cu_open_kernel(e, P, i, 1, n);
    cg_line(e, "for (int t = from; t < to; t++) {");
    e->ind++;
    cg_line(e, "float *y = %s;", cp_at(e, P, i, 'v', "t"));
    if (carry >= 0)
        cg_line(e, "y[i] = t == 0 ? 0.0f : t == from ? (%s)[i] : (%s)[i];", cp_ws(e, P, carry), cp_at(e, P, s, 'v', "t - 1"));
    else
        cg_line(e, "y[i] = t == 0 ? 0.0f : (%s)[i];", cp_at(e, P, s, 'v', "t - 1"));
    e->ind--;
    cg_line(e, "}");
    if (carry >= 0)
        cg_line(e, "(%s)[i] = (%s)[i]; /* the carry of the next call */", cp_ws(e, P, carry),
                cp_at(e, P, s, 'v', "to - 1"));
    cp_close(e, NULL);
    host_of_kernel(e, P, i, n);
}

/* ---- neuron layers: a thread per neuron over all the steps ---- */

void cu_neuron_leaves(Emit *e, int i, CgLeaves *lv) {
    const IrNode *x = node(e, i);
    const NeuronProg *p = x->neuron;
    long long cnt = count(e, i), hw = cnt / x->shape.d[0];
    Arena *a = e->g->arena;
    const char **state = arena_alloc(a, sizeof(char *) * (size_t)(p->states.len + 1));
    const char **param = arena_alloc(a, sizeof(char *) * (size_t)(p->params.len + 1));
    for (int k = 0; k < p->states.len; k++)
        state[k] = arena_printf(a, "s%d", k);
    for (int k = 0; k < p->params.len; k++) {
        const NeuronParam *q = &p->params.items[k];
        param[k] = q->gran == GRAN_LAYER    ? arena_printf(a, "p%d[0]", k)
                   : q->gran == GRAN_NEURON ? arena_printf(a, "p%d[i %% %lld]", k, cnt)
                                            : arena_printf(a, "p%d[i %% %lld / %lld]", k, cnt, hw);
    }
    lv->x = "x[i]";
    lv->state = state;
    lv->param = param;
    lv->adj = NULL;
}

const char *cu_state_at(Emit *e, const IrPlan *P, int i, int k, const char *t) {
    const IrBufs *b = &P->at[i];
    long long cnt = count(e, i);
    int64_t first = (int64_t)k * b->ssteps * e->maxb * cnt; /* the k-th state's first element */
    const char *base = b->shalf ? arena_printf(e->g->arena, "(uint16_t *)(void *)(%s) + %lld", cp_ws(e, P, b->state),
                                               (long long)first)
                                : cp_ws(e, P, b->state + first);
    if (b->ssteps == 1)
        return base;
    return arena_printf(e->g->arena, "%s + (long)(%s) * B * %lld", base, t, cnt);
}

void cu_neuron_fwd(TargetEmitter *em, const IrPlan *P, int i) {
    Emit *e = &em->e;
    const IrGraph *g = e->g;
    const IrNode *x = node(e, i);
    const NeuronProg *p = x->neuron;
    const IrBufs *b = &P->at[i];
    int in = x->in[0], train = cp_train(e, P);
    long long cnt = count(e, i);
    Arena *a = g->arena;
    if (!train && p->states.len && b->ssteps != 1) /* a model without states (ReLU) keeps none */
        ICE("the inference plan keeps one step of the states of node %d", i);
    /* the leaves: the states in registers s0, s1, ...; x[i]; the parameters
       indexed for neuron i as the portable target indexes them */
    CgLeaves lv;
    cu_neuron_leaves(e, i, &lv);
    /* what reaches the output, the states and the records (inference) */
    int nroots;
    int *roots = target_neuron_roots(g, P, i, 1, &nroots);
    unsigned char *live = cg_eq_live(a, &p->code, roots, nroots);
    unsigned char *lev = cg_eq_levels(a, p, &p->code, P->at[in].inv);
    int reads_x = 0; /* a model may ignore its input (a neuron that only decays) */
    for (int k = 0; k < p->code.len; k++)
        reads_x |= live[k] && p->code.items[k].op == EQ_INPUT;

    const char *n = fmt(e, "B * %lld", cnt);
    cu_open_kernel(e, P, i, 1, n);
    for (int k = 0; k < p->params.len; k++)
        cg_line(e, "const float *p%d = %s; /* %s */", k, cp_param(e, p->params.items[k].param),
                g->params.items[p->params.items[k].param].name);
    for (int k = 0; k < p->params.len; k++)
        cg_line(e, "(void)p%d;", k);
    for (int k = 0; k < p->states.len; k++)
        if (b->shalf) /* the steps run from 0, the state carried in fp32 */
            cg_line(e, "float s%d = %s; /* %s at the first step (stored in 16 bits for the backward) */", k,
                    cg_flt(e, p->states.items[k].init), p->states.items[k].name);
        else
            cg_line(e, "float s%d = (%s)[i]; /* %s */", k, cu_state_at(e, P, i, k, "from"), p->states.items[k].name);
    if (reads_x && P->at[in].inv)
        cg_line(e, "const float *x = %s; /* the same at every step */", cp_at(e, P, in, 'v', "0"));
    /* what reads no state is computed once, before the steps */
    cg_eq_emit(e, p, &p->code, live, lev, CG_LEVEL_LAYER, &lv, 1);
    cg_eq_emit(e, p, &p->code, live, lev, CG_LEVEL_NEURON, &lv, 1);
    cg_line(e, "for (int t = from; t < to; t++) {");
    e->ind++;
    if (reads_x && P->at[in].vhalf) {
        cg_line(e, "const uint16_t *x = %s; /* a product in 16 bits */", cp_half_at(e, P, in, "t"));
        lv.x = arena_printf(a, "%s_from16(x[i])", e->p);
    } else if (reads_x && !P->at[in].inv)
        cg_line(e, "const float *x = %s;", cp_at(e, P, in, 'v', "t"));
    if (b->bits)
        cg_line(e, "uint32_t *y = %s; /* spikes, 32 to a word */", cp_bits_at(e, P, i, "t"));
    else
        cg_line(e, "float *y = %s;", cp_at(e, P, i, 'v', "t"));
    for (int k = 0; !train && k < g->probes.len; k++)
        if (target_probe_inst(g, i, k) >= 0) {
            const char *base = cp_ws(e, P, g->probes.items[k].buf);
            if (P->chunk == 1)
                cg_line(e, "float *r%d = %s;", k, base);
            else
                cg_line(e, "float *r%d = %s + (long)(t %% %d) * B * %lld;", k, base, P->chunk, cnt);
        }
    cg_eq_emit(e, p, &p->code, live, lev, CG_LEVEL_STEP, &lv, 1);
    if (b->bits)
        cg_line(e, "%s_SETBIT(y, i, %s);", e->P, cg_eq_val(e, &p->code, p->emit));
    else
        cg_line(e, "y[i] = %s;", cg_eq_val(e, &p->code, p->emit));
    for (int k = 0; !train && k < g->probes.len; k++) {
        int pi = target_probe_inst(g, i, k);
        if (pi >= 0)
            cg_line(e, "r%d[i] = %s; /* record %s */", k, cg_eq_val(e, &p->code, pi), g->probes.items[k].spec);
    }
    for (int k = 0; k < p->states.len; k++)
        cg_line(e, "s%d = %s;", k, cg_eq_val(e, &p->code, p->states.items[k].next));
    if (train) /* the state at the start of every step, for the backward */
        for (int k = 0; k < p->states.len; k++)
            cg_line(e, b->shalf ? "(%s)[i] = %s_to16(s%d);" : "(%s)[i] = %ss%d;", cu_state_at(e, P, i, k, "t + 1"),
                    b->shalf ? e->p : "", k);
    e->ind--;
    cg_line(e, "}");
    for (int k = 0; !train && k < p->states.len; k++)
        cg_line(e, "(%s)[i] = s%d;", cu_state_at(e, P, i, k, "0"), k);
    cp_close(e, NULL);
    host_of_kernel(e, P, i, n);
}
