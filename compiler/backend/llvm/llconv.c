/*
 * llconv.c: the llvm target's kernels of the ops of convolutional
 * networks at inference: conv2d (stride, padding, groups), maxpool,
 * avgpool and batchnorm, with the semantics of the C target's kernels
 * (ckernels.c) and their order of sums.
 *
 * The C target writes a convolution as im2col and a matrix product whose
 * every output sums its bias, then w x over c, ky, kx ascending, multiply
 * then add. This target computes the same sums directly, without the
 * im2col matrix: for each output position, a block of up to CONV_OB output
 * channels is held in vectors of sums (registers) while the loop runs over
 * the input channels and the taps of the kernel that fall inside the input
 * (the padding's taps, zeros, are not visited); an input that is zero (a
 * spike that did not fire) is skipped, as the dense product skips it. The
 * weights of a block are transposed onto the stack once per step, so that
 * a tap reads its CONV_OB weights contiguously. Skipping zero terms can
 * change only the sign of a zero sum.
 *
 * Pools and batchnorm are the C target's loops, one value at a time.
 */
#include <math.h>

#include "ll.h"

/* Output channels per block of a convolution: 4 vectors of sums, which fit
   the registers of AVX2, NEON and RVV at once with a vector of inputs. */
#define CONV_OB 32

static const IrNode *node(Ll *L, int i) { return &L->g->nodes.items[i]; }

static LLVMValueRef mul(Ll *L, LLVMValueRef a, long long b) { return LLVMBuildNSWMul(L->b, a, ll_i64(L, b), ""); }
static LLVMValueRef add(Ll *L, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildNSWAdd(L->b, a, b, ""); }

static LLVMValueRef smax(Ll *L, LLVMValueRef a, LLVMValueRef b) {
    return LLVMBuildSelect(L->b, LLVMBuildICmp(L->b, LLVMIntSGT, a, b, ""), a, b, "");
}

static LLVMValueRef smin(Ll *L, LLVMValueRef a, LLVMValueRef b) {
    return LLVMBuildSelect(L->b, LLVMBuildICmp(L->b, LLVMIntSLT, a, b, ""), a, b, "");
}

/* The taps [lo, hi) of a kernel of k taps whose first reads input i0 (an
   i64 value, negative in the padding) of an input of n: those with
   0 <= i0 + tap < n. */
static void taps(Ll *L, LLVMValueRef i0, long long k, long long n, LLVMValueRef *lo, LLVMValueRef *hi) {
    *lo = smax(L, ll_i64(L, 0), LLVMBuildNSWNeg(L->b, i0, ""));
    *hi = smin(L, ll_i64(L, k), LLVMBuildNSWSub(L->b, ll_i64(L, n), i0, ""));
}

/* Vector j of an array of vectors on the stack. */
static LLVMValueRef vec_at(Ll *L, LLVMTypeRef ty, LLVMValueRef arr, int j) {
    LLVMValueRef idx[2] = {ll_i32(L, 0), ll_i32(L, j)};
    return LLVMBuildInBoundsGEP2(L->b, ty, arr, idx, 2, "");
}

/* ---- conv2d ---- */

typedef struct ConvDims {
    long long C, H, W, O, OH, OW, G, cg, og, KK;
    int kh, kw, sh, sw, ph, pw;
} ConvDims;

/* One block of output channels [ob, ob + on) of group g (an i64 value):
   its weights transposed into wt[c][ky][kx][ON] (ON = the block's width,
   zeros past on), its biases into bp[ON], then every sample and output
   position. */
static void conv_block(Ll *L, const IrNode *x, const ConvDims *d, LLVMValueRef wt, LLVMValueRef bp, LLVMValueRef acc,
                       long long ON, LLVMValueRef g, long long ob, long long on, LLVMValueRef xt, LLVMValueRef yt) {
    const int nv = (int)(ON / LL_LANES);
    const long long ck = d->cg * d->KK;
    LLVMTypeRef accty = LLVMArrayType(L->vf, (unsigned)nv);
    LLVMValueRef o0 = add(L, mul(L, g, d->og), ll_i64(L, ob));
    LlLoop j, q, b, oy, ox, c, ky, kx;
    if (on < ON) {
        ll_copy(L, wt, NULL, ll_i64(L, ck * ON));
        ll_copy(L, bp, NULL, ll_i64(L, ON));
    }
    /* wt[q][j] = w[o0 + j][q] for q over (c, ky, kx) */
    LLVMValueRef w = ll_param(L, x->param[0]);
    ll_loop_open(L, &j, ll_i64(L, 0), ll_i64(L, on), 1, "pack.o");
    LLVMValueRef wrow = ll_off(L, w, mul(L, add(L, o0, j.iv), ck), NULL);
    ll_loop_open(L, &q, ll_i64(L, 0), ll_i64(L, ck), 1, "pack.k");
    ll_store(L, ll_load(L, ll_off(L, wrow, q.iv, NULL), 1, NULL), ll_off(L, wt, add(L, mul(L, q.iv, ON), j.iv), NULL));
    ll_loop_close(L, &q);
    if (x->bias)
        ll_store(L, ll_load(L, ll_off(L, ll_param(L, x->param[1]), add(L, o0, j.iv), NULL), 1, NULL),
                 ll_off(L, bp, j.iv, NULL));
    ll_loop_close(L, &j);
    if (!x->bias && on == ON)
        ll_copy(L, bp, NULL, ll_i64(L, ON));

    ll_loop_open(L, &b, ll_i64(L, 0), L->B, 1, "b");
    LLVMValueRef xb = ll_off(L, xt, mul(L, add(L, mul(L, b.iv, d->C), mul(L, g, d->cg)), d->H * d->W), "xs");
    LLVMValueRef yb = ll_off(L, yt, mul(L, add(L, mul(L, b.iv, d->O), o0), d->OH * d->OW), "ys");
    ll_loop_open(L, &oy, ll_i64(L, 0), ll_i64(L, d->OH), 1, "oy");
    LLVMValueRef iy0 = LLVMBuildNSWSub(L->b, mul(L, oy.iv, d->sh), ll_i64(L, d->ph), ll_name(L, "iy0"));
    LLVMValueRef kylo, kyhi, kxlo, kxhi;
    taps(L, iy0, d->kh, d->H, &kylo, &kyhi);
    ll_loop_open(L, &ox, ll_i64(L, 0), ll_i64(L, d->OW), 1, "ox");
    LLVMValueRef ix0 = LLVMBuildNSWSub(L->b, mul(L, ox.iv, d->sw), ll_i64(L, d->pw), ll_name(L, "ix0"));
    taps(L, ix0, d->kw, d->W, &kxlo, &kxhi);
    /* each output starts from its bias (or 0) */
    for (int v = 0; v < nv; v++)
        ll_store(L, ll_load(L, ll_off(L, bp, ll_i64(L, v * LL_LANES), NULL), LL_LANES, NULL), vec_at(L, accty, acc, v));
    ll_loop_open(L, &c, ll_i64(L, 0), ll_i64(L, d->cg), 1, "c");
    LLVMValueRef xc = ll_off(L, xb, mul(L, c.iv, d->H * d->W), NULL);
    ll_loop_open(L, &ky, kylo, kyhi, 1, "ky");
    LLVMValueRef xrow = ll_off(L, xc, add(L, mul(L, add(L, iy0, ky.iv), d->W), ix0), "xrow");
    LLVMValueRef wrow2 = ll_off(L, wt, mul(L, add(L, mul(L, c.iv, d->KK), mul(L, ky.iv, d->kw)), ON), "wrow");
    ll_loop_open(L, &kx, kxlo, kxhi, 1, "kx");
    LLVMValueRef xv = ll_load(L, ll_off(L, xrow, kx.iv, NULL), 1, "xv");
    LlIf nz;
    ll_if(L, &nz, LLVMBuildFCmp(L->b, LLVMRealUNE, xv, ll_flt(L, 0.0f, 1), ""), "event", 0);
    LLVMValueRef wk = ll_off(L, wrow2, mul(L, kx.iv, ON), NULL);
    LLVMValueRef xs = ll_splat(L, xv, LL_LANES);
    for (int v = 0; v < nv; v++) {
        LLVMValueRef at = vec_at(L, accty, acc, v);
        LLVMValueRef wv = ll_load(L, ll_off(L, wk, ll_i64(L, v * LL_LANES), NULL), LL_LANES, NULL);
        LLVMValueRef prod = LLVMBuildFMul(L->b, xs, wv, "");
        ll_store(L, LLVMBuildFAdd(L->b, ll_load(L, at, LL_LANES, NULL), prod, ""), at);
    }
    ll_endif(L, &nz);
    ll_loop_close(L, &kx);
    ll_loop_close(L, &ky);
    ll_loop_close(L, &c);
    /* the block's outputs: channel o at yb + o * OH * OW */
    LLVMValueRef yp = ll_off(L, yb, add(L, mul(L, oy.iv, d->OW), ox.iv), "yp");
    for (int v = 0; v < nv; v++) {
        LLVMValueRef s = ll_load(L, vec_at(L, accty, acc, v), LL_LANES, NULL);
        for (int k = 0; k < LL_LANES && v * LL_LANES + k < on; k++)
            ll_store(L, LLVMBuildExtractElement(L->b, s, ll_i32(L, k), ""),
                     ll_off(L, yp, ll_i64(L, (v * LL_LANES + k) * d->OH * d->OW), NULL));
    }
    ll_loop_close(L, &ox);
    ll_loop_close(L, &oy);
    ll_loop_close(L, &b);
}

void ll_conv_fwd(TargetEmitter *em, const IrPlan *P, int i) {
    Ll *L = em;
    const IrNode *x = node(L, i);
    const Shape *xs = &node(L, x->in[0])->shape;
    ConvDims d;
    d.C = xs->d[0], d.H = xs->d[1], d.W = xs->d[2];
    d.O = x->out, d.OH = x->shape.d[1], d.OW = x->shape.d[2];
    d.G = x->groups, d.cg = d.C / d.G, d.og = d.O / d.G;
    d.kh = x->kernel[0], d.kw = x->kernel[1], d.KK = (long long)d.kh * d.kw;
    d.sh = x->stride[0], d.sw = x->stride[1], d.ph = x->pad[0], d.pw = x->pad[1];
    /* the blocks' width: CONV_OB, or the group's channels rounded up to a vector */
    long long ON = d.og < CONV_OB ? (d.og + LL_LANES - 1) / LL_LANES * LL_LANES : CONV_OB;
    ll_kernel_open(L, P, i, 1);
    LLVMValueRef wt = LLVMBuildArrayAlloca(L->b, L->f32, ll_i64(L, d.cg * d.KK * ON), ll_name(L, "wt"));
    LLVMSetAlignment(wt, 64);
    LLVMValueRef bp = LLVMBuildArrayAlloca(L->b, L->f32, ll_i64(L, ON), ll_name(L, "bias"));
    LLVMSetAlignment(bp, 64);
    LLVMValueRef acc = LLVMBuildAlloca(L->b, LLVMArrayType(L->vf, (unsigned)(ON / LL_LANES)), ll_name(L, "acc"));
    LlLoop t, g;
    ll_loop_open(L, &t, ll_from(L), ll_to(L), 1, "t");
    LLVMValueRef xt = ll_at(L, x->in[0], t.iv, "x"), yt = ll_at(L, i, t.iv, "y");
    ll_loop_open(L, &g, ll_i64(L, 0), ll_i64(L, d.G), 1, "g");
    for (long long ob = 0; ob < d.og; ob += ON)
        conv_block(L, x, &d, wt, bp, acc, ON, g.iv, ob, d.og - ob < ON ? d.og - ob : ON, xt, yt);
    ll_loop_close(L, &g);
    ll_loop_close(L, &t);
    ll_kernel_close(L);
}

/* ---- pooling ---- */

/* Each output the maximum (the first NaN wins, as `v > acc || v != v`)
   or the sum divided by the kernel's taps (padding counted as zeros) of
   the taps inside the input, in ky, kx order. */
void ll_pool_fwd(TargetEmitter *em, const IrPlan *P, int i) {
    Ll *L = em;
    const IrNode *x = node(L, i);
    const Shape *xs = &node(L, x->in[0])->shape;
    int mx = x->op == IR_MAXPOOL;
    long long C = xs->d[0], H = xs->d[1], W = xs->d[2], OH = x->shape.d[1], OW = x->shape.d[2];
    ll_kernel_open(L, P, i, 1);
    LLVMValueRef acc = LLVMBuildAlloca(L->b, L->f32, ll_name(L, "acc"));
    LlLoop t, rc, oy, ox, ky, kx;
    ll_loop_open(L, &t, ll_from(L), ll_to(L), 1, "t");
    LLVMValueRef xt = ll_at(L, x->in[0], t.iv, "x"), yt = ll_at(L, i, t.iv, "y");
    ll_loop_open(L, &rc, ll_i64(L, 0), mul(L, L->B, C), 1, "plane");
    LLVMValueRef xp = ll_off(L, xt, mul(L, rc.iv, H * W), "xp"), yp = ll_off(L, yt, mul(L, rc.iv, OH * OW), "yp");
    ll_loop_open(L, &oy, ll_i64(L, 0), ll_i64(L, OH), 1, "oy");
    LLVMValueRef iy0 = LLVMBuildNSWSub(L->b, mul(L, oy.iv, x->stride[0]), ll_i64(L, x->pad[0]), ll_name(L, "iy0"));
    LLVMValueRef kylo, kyhi, kxlo, kxhi;
    taps(L, iy0, x->kernel[0], H, &kylo, &kyhi);
    ll_loop_open(L, &ox, ll_i64(L, 0), ll_i64(L, OW), 1, "ox");
    LLVMValueRef ix0 = LLVMBuildNSWSub(L->b, mul(L, ox.iv, x->stride[1]), ll_i64(L, x->pad[1]), ll_name(L, "ix0"));
    taps(L, ix0, x->kernel[1], W, &kxlo, &kxhi);
    ll_store(L, ll_flt(L, mx ? -INFINITY : 0.0f, 1), acc);
    ll_loop_open(L, &ky, kylo, kyhi, 1, "ky");
    LLVMValueRef xrow = ll_off(L, xp, add(L, mul(L, add(L, iy0, ky.iv), W), ix0), "xrow");
    ll_loop_open(L, &kx, kxlo, kxhi, 1, "kx");
    LLVMValueRef v = ll_load(L, ll_off(L, xrow, kx.iv, NULL), 1, "v"), a = ll_load(L, acc, 1, NULL);
    if (mx) {
        LLVMValueRef take = LLVMBuildOr(L->b, LLVMBuildFCmp(L->b, LLVMRealOGT, v, a, ""),
                                        LLVMBuildFCmp(L->b, LLVMRealUNO, v, v, ""), "");
        ll_store(L, LLVMBuildSelect(L->b, take, v, a, ""), acc);
    } else
        ll_store(L, LLVMBuildFAdd(L->b, a, v, ""), acc);
    ll_loop_close(L, &kx);
    ll_loop_close(L, &ky);
    LLVMValueRef y = ll_load(L, acc, 1, NULL);
    if (!mx)
        y = LLVMBuildFDiv(L->b, y, ll_flt(L, (float)(x->kernel[0] * x->kernel[1]), 1), "");
    ll_store(L, y, ll_off(L, yp, add(L, mul(L, oy.iv, OW), ox.iv), NULL));
    ll_loop_close(L, &ox);
    ll_loop_close(L, &oy);
    ll_loop_close(L, &rc);
    ll_loop_close(L, &t);
    ll_kernel_close(L);
}

/* ---- batchnorm ---- */

/* y = x a + (beta - mean a), a = gamma / sqrt(var + eps), per channel;
   an input stored once (the same at every step) is read for every step. */
void ll_batchnorm_fwd(TargetEmitter *em, const IrPlan *P, int i) {
    Ll *L = em;
    const IrNode *x = node(L, i);
    int in = x->in[0];
    long long C = x->shape.d[0], hw = shape_count(&x->shape) / C;
    ll_kernel_open(L, P, i, 1);
    LLVMValueRef gamma = ll_param(L, x->param[0]), beta = ll_param(L, x->param[1]);
    LLVMValueRef rmean = ll_param(L, x->param[2]), rvar = ll_param(L, x->param[3]);
    LLVMValueRef steps = LLVMBuildSExt(L->b, LLVMBuildNSWSub(L->b, ll_to(L), ll_from(L), ""), L->i64, "");
    LLVMValueRef rows = LLVMBuildNSWMul(L->b, steps, L->B, ll_name(L, "rows"));
    LLVMValueRef xw = ll_at(L, in, ll_from(L), "x"), yw = ll_at(L, i, ll_from(L), "y");
    int once = P->at[in].inv && !P->at[i].inv;
    LlLoop c, r, k;
    ll_loop_open(L, &c, ll_i64(L, 0), ll_i64(L, C), 1, "c");
    LLVMValueRef var = ll_load(L, ll_off(L, rvar, c.iv, NULL), 1, NULL);
    LLVMValueRef sd = ll_call_math(L, "llvm.sqrt", LLVMBuildFAdd(L->b, var, ll_flt(L, x->fval, 1), ""), NULL, 1);
    LLVMValueRef a = LLVMBuildFDiv(L->b, ll_load(L, ll_off(L, gamma, c.iv, NULL), 1, NULL), sd, ll_name(L, "a"));
    LLVMValueRef shift = LLVMBuildFSub(L->b, ll_load(L, ll_off(L, beta, c.iv, NULL), 1, NULL),
                                       LLVMBuildFMul(L->b, ll_load(L, ll_off(L, rmean, c.iv, NULL), 1, NULL), a, ""),
                                       ll_name(L, "shift"));
    ll_loop_open(L, &r, ll_i64(L, 0), rows, 1, "r");
    LLVMValueRef xr = once ? LLVMBuildSRem(L->b, r.iv, L->B, "") : r.iv;
    LLVMValueRef xp = ll_off(L, xw, mul(L, add(L, mul(L, xr, C), c.iv), hw), "xp");
    LLVMValueRef yp = ll_off(L, yw, mul(L, add(L, mul(L, r.iv, C), c.iv), hw), "yp");
    ll_loop_open(L, &k, ll_i64(L, 0), ll_i64(L, hw), 1, "k");
    LLVMValueRef v = LLVMBuildFMul(L->b, ll_load(L, ll_off(L, xp, k.iv, NULL), 1, NULL), a, "");
    ll_store(L, LLVMBuildFAdd(L->b, v, shift, ""), ll_off(L, yp, k.iv, NULL));
    ll_loop_close(L, &k);
    ll_loop_close(L, &r);
    ll_loop_close(L, &c);
    ll_kernel_close(L);
}
