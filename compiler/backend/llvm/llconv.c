/*
 * llconv.c: the llvm target's kernels of the ops of convolutional
 * networks: conv2d (stride, padding, groups), maxpool,
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
 * change only the sign of a zero sum. With threads, the forward and the
 * input gradient split the samples, the weight gradient the input
 * channels, so that each sum is one thread's (ll_share).
 *
 * Pools and batchnorm are the C target's loops, one value at a time, and
 * so are their backward kernels and batchnorm's training forward, whose
 * sums in double run in the C target's lanes (TARGET_BN_LANES: a vector of
 * doubles a sum, the row's last values added to their lanes one by one);
 * with threads, pools split the planes (sample, channel), batchnorm the
 * channels, whose statistics and parameter gradients are each one
 * thread's.
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

/* ---- conv2d ---- */

typedef struct ConvDims {
    long long C, H, W, O, OH, OW, G, cg, og, KK;
    int kh, kw, sh, sw, ph, pw;
} ConvDims;

/* One block of output channels [ob, ob + on) of group g (an i64 value):
   its weights transposed into wt[c][ky][kx][ON] (ON = the block's width,
   zeros past on), its biases into bp[ON], then the samples [b0, b1) (the
   kernel's part) and every output position. */
static void conv_block(Ll *L, const IrNode *x, const ConvDims *d, LLVMValueRef wt, LLVMValueRef bp, LLVMValueRef acc,
                       long long ON, LLVMValueRef g, long long ob, long long on, LLVMValueRef b0, LLVMValueRef b1,
                       LLVMValueRef xt, LLVMValueRef yt) {
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

    ll_loop_open(L, &b, b0, b1, 1, "b");
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
        ll_store(L, ll_load(L, ll_off(L, bp, ll_i64(L, v * LL_LANES), NULL), LL_LANES, NULL), ll_vec_at(L, accty, acc, v));
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
        LLVMValueRef at = ll_vec_at(L, accty, acc, v);
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
        LLVMValueRef s = ll_load(L, ll_vec_at(L, accty, acc, v), LL_LANES, NULL);
        for (int k = 0; k < LL_LANES && v * LL_LANES + k < on; k++)
            ll_store(L, LLVMBuildExtractElement(L->b, s, ll_i32(L, k), ""),
                     ll_off(L, yp, ll_i64(L, (v * LL_LANES + k) * d->OH * d->OW), NULL));
    }
    ll_loop_close(L, &ox);
    ll_loop_close(L, &oy);
    ll_loop_close(L, &b);
}

static ConvDims conv_dims(Ll *L, const IrNode *x) {
    const Shape *xs = &node(L, x->in[0])->shape;
    ConvDims d;
    d.C = xs->d[0], d.H = xs->d[1], d.W = xs->d[2];
    d.O = x->out, d.OH = x->shape.d[1], d.OW = x->shape.d[2];
    d.G = x->groups, d.cg = d.C / d.G, d.og = d.O / d.G;
    d.kh = x->kernel[0], d.kw = x->kernel[1], d.KK = (long long)d.kh * d.kw;
    d.sh = x->stride[0], d.sw = x->stride[1], d.ph = x->pad[0], d.pw = x->pad[1];
    return d;
}

void ll_conv_fwd(TargetEmitter *em, const IrPlan *P, int i) {
    Ll *L = em;
    const IrNode *x = node(L, i);
    ConvDims d = conv_dims(L, x);
    /* the blocks' width: CONV_OB, or the group's channels rounded up to a vector */
    long long ON = d.og < CONV_OB ? (d.og + LL_LANES - 1) / LL_LANES * LL_LANES : CONV_OB;
    ll_kernel_open(L, P, i, 1);
    LLVMValueRef wt = LLVMBuildArrayAlloca(L->b, L->f32, ll_i64(L, d.cg * d.KK * ON), ll_name(L, "wt"));
    LLVMSetAlignment(wt, 64);
    LLVMValueRef bp = LLVMBuildArrayAlloca(L->b, L->f32, ll_i64(L, ON), ll_name(L, "bias"));
    LLVMSetAlignment(bp, 64);
    LLVMValueRef acc = LLVMBuildAlloca(L->b, LLVMArrayType(L->vf, (unsigned)(ON / LL_LANES)), ll_name(L, "acc"));
    LlLoop t, g;
    LLVMValueRef b0, b1; /* this part's samples */
    ll_share(L, L->B, 1, &b0, &b1);
    ll_loop_open(L, &t, ll_from(L), ll_to(L), 1, "t");
    LLVMValueRef xt = ll_at(L, x->in[0], t.iv, "x"), yt = ll_at(L, i, t.iv, "y");
    ll_loop_open(L, &g, ll_i64(L, 0), ll_i64(L, d.G), 1, "g");
    for (long long ob = 0; ob < d.og; ob += ON)
        conv_block(L, x, &d, wt, bp, acc, ON, g.iv, ob, d.og - ob < ON ? d.og - ob : ON, b0, b1, xt, yt);
    ll_loop_close(L, &g);
    ll_loop_close(L, &t);
    ll_kernel_close(L);
}

/* The gradients of a convolution, directly, over blocks of up to CONV_OB
   output channels of a group (as the forward), in two passes over the
   call's positions (steps, samples, output positions), at each of which
   the block's output gradients g[j] are loaded into vectors. The first
   sums the block's weight gradients of the input channels [c0, c1) (the
   kernel's part) on the stack, dwt[q][j] for the taps q = (c, ky, kx):
   dwt[q] += x g at every tap inside the input (left out where the input is
   zero: a spike that did not fire), then adds them to dw; part 0 also sums
   db. The second, when dx asks, adds to gx of the samples [b0, b1) (the
   part's) the sum over j of wt[q][j] g[j], the block's weights transposed
   onto the stack, wt[q][j] = w[o0 + j][q]. Each gradient is one part's
   and sums its terms in the same order for any number of parts. The C
   target's im2col products sum the same terms in another order. */
typedef struct ConvPos {
    LlLoop t, b, oy, ox;
    LLVMValueRef xt, gxt;                 /* the step's input and its gradient */
    LLVMValueRef xb;                      /* the index of the sample's first input channel of the group */
    LLVMValueRef iy0, ix0, kylo, kyhi, kxlo, kxhi;
    LLVMValueRef gv[CONV_OB / LL_LANES]; /* g[j], in vectors */
} ConvPos;

static void pos_open(Ll *L, ConvPos *p, const IrNode *x, const ConvDims *d, long long ON, long long on,
                     LLVMValueRef g, LLVMValueRef o0, LLVMValueRef b0, LLVMValueRef b1, int gx) {
    int in = x->in[0], i = (int)(x - L->g->nodes.items);
    ll_loop_open(L, &p->t, ll_from(L), ll_to(L), 1, "t");
    p->xt = ll_at(L, in, p->t.iv, "x");
    p->gxt = gx ? ll_grad_at(L, in, p->t.iv, "gx") : NULL;
    LLVMValueRef gyt = ll_grad_at(L, i, p->t.iv, "gy");
    ll_loop_open(L, &p->b, b0, b1, 1, "b");
    p->xb = mul(L, add(L, mul(L, p->b.iv, d->C), mul(L, g, d->cg)), d->H * d->W);
    LLVMValueRef gyb = ll_off(L, gyt, mul(L, add(L, mul(L, p->b.iv, d->O), o0), d->OH * d->OW), "gyb");
    ll_loop_open(L, &p->oy, ll_i64(L, 0), ll_i64(L, d->OH), 1, "oy");
    p->iy0 = LLVMBuildNSWSub(L->b, mul(L, p->oy.iv, d->sh), ll_i64(L, d->ph), ll_name(L, "iy0"));
    taps(L, p->iy0, d->kh, d->H, &p->kylo, &p->kyhi);
    ll_loop_open(L, &p->ox, ll_i64(L, 0), ll_i64(L, d->OW), 1, "ox");
    p->ix0 = LLVMBuildNSWSub(L->b, mul(L, p->ox.iv, d->sw), ll_i64(L, d->pw), ll_name(L, "ix0"));
    taps(L, p->ix0, d->kw, d->W, &p->kxlo, &p->kxhi);
    /* channel o's gradient at gyb + o OH OW */
    LLVMValueRef gp = ll_off(L, gyb, add(L, mul(L, p->oy.iv, d->OW), p->ox.iv), "gp");
    for (int v = 0; v < ON / LL_LANES; v++) {
        LLVMValueRef e = ll_flt(L, 0.0f, LL_LANES);
        for (int k = 0; k < LL_LANES && v * LL_LANES + k < on; k++)
            e = LLVMBuildInsertElement(
                L->b, e, ll_load(L, ll_off(L, gp, ll_i64(L, (v * LL_LANES + k) * d->OH * d->OW), NULL), 1, NULL),
                ll_i32(L, k), "");
        p->gv[v] = e;
    }
}

static void pos_close(Ll *L, ConvPos *p) {
    ll_loop_close(L, &p->ox);
    ll_loop_close(L, &p->oy);
    ll_loop_close(L, &p->b);
    ll_loop_close(L, &p->t);
}

/* The taps of input channels [c0, c1) inside the input at a position:
   xi, the input's index, and qo, the tap's offset in wt and dwt. */
typedef struct ConvTaps {
    LlLoop c, ky, kx;
    LLVMValueRef xi, qo;
} ConvTaps;

static void taps_open(Ll *L, ConvTaps *q, const ConvDims *d, const ConvPos *p, long long ON, LLVMValueRef c0,
                      LLVMValueRef c1) {
    ll_loop_open(L, &q->c, c0, c1, 1, "c");
    LLVMValueRef xc = add(L, p->xb, mul(L, q->c.iv, d->H * d->W));
    ll_loop_open(L, &q->ky, p->kylo, p->kyhi, 1, "ky");
    LLVMValueRef xrow = add(L, xc, add(L, mul(L, add(L, p->iy0, q->ky.iv), d->W), p->ix0));
    LLVMValueRef qrow = add(L, mul(L, q->c.iv, d->KK), mul(L, q->ky.iv, d->kw));
    ll_loop_open(L, &q->kx, p->kxlo, p->kxhi, 1, "kx");
    q->xi = add(L, xrow, q->kx.iv);
    q->qo = mul(L, add(L, qrow, q->kx.iv), ON);
}

static void taps_close(Ll *L, ConvTaps *q) {
    ll_loop_close(L, &q->kx);
    ll_loop_close(L, &q->ky);
    ll_loop_close(L, &q->c);
}

static void conv_bwd_block(Ll *L, const IrNode *x, const ConvDims *d, long long ON, LLVMValueRef g, long long ob,
                           long long on, LLVMValueRef wt, LLVMValueRef dwt, LLVMValueRef want) {
    const int nv = (int)(ON / LL_LANES);
    const long long ck = d->cg * d->KK;
    LLVMValueRef o0 = add(L, mul(L, g, d->og), ll_i64(L, ob));
    LLVMValueRef w = ll_param(L, x->param[0]), dw = ll_param_grad(L, x->param[0]);
    LLVMValueRef db = x->bias ? ll_param_grad(L, x->param[1]) : NULL;
    LLVMValueRef c0, c1, b0, b1; /* this part's input channels (dw) and samples (dx) */
    ll_share(L, ll_i64(L, d->cg), 1, &c0, &c1);
    ll_share(L, L->B, 1, &b0, &b1);
    LLVMValueRef first = LLVMBuildICmp(L->b, LLVMIntEQ, ll_part(L), ll_i32(L, 0), ll_name(L, "first"));
    LlLoop j, q;
    ConvPos p;
    ConvTaps k;
    LlIf nz, f, busy;

    /* dw of channels [c0, c1), and db at part 0; a part without channels
       (the second of a layer of one input channel) skips the positions */
    ll_copy(L, dwt, NULL, ll_i64(L, ck * ON));
    LLVMValueRef has = LLVMBuildICmp(L->b, LLVMIntSLT, c0, c1, "");
    ll_if(L, &busy, db ? LLVMBuildOr(L->b, has, first, "") : has, "dw.part", 0);
    pos_open(L, &p, x, d, ON, on, g, o0, ll_i64(L, 0), L->B, 0);
    taps_open(L, &k, d, &p, ON, c0, c1);
    LLVMValueRef xv = ll_load(L, ll_off(L, p.xt, k.xi, NULL), 1, "xv");
    ll_if(L, &nz, LLVMBuildFCmp(L->b, LLVMRealUNE, xv, ll_flt(L, 0.0f, 1), ""), "event", 0);
    LLVMValueRef xs = ll_splat(L, xv, LL_LANES);
    for (int v = 0; v < nv; v++) {
        LLVMValueRef at = ll_off(L, dwt, add(L, k.qo, ll_i64(L, v * LL_LANES)), NULL);
        ll_store(L, LLVMBuildFAdd(L->b, ll_load(L, at, LL_LANES, NULL), LLVMBuildFMul(L->b, xs, p.gv[v], ""), ""), at);
    }
    ll_endif(L, &nz);
    taps_close(L, &k);
    if (db) {
        ll_if(L, &f, first, "db", 0);
        for (int e = 0; e < on && e < ON; e++) {
            LLVMValueRef at = ll_off(L, db, add(L, o0, ll_i64(L, e)), NULL);
            LLVMValueRef ge = LLVMBuildExtractElement(L->b, p.gv[e / LL_LANES], ll_i32(L, e % LL_LANES), "");
            ll_store(L, LLVMBuildFAdd(L->b, ll_load(L, at, 1, NULL), ge, ""), at);
        }
        ll_endif(L, &f);
    }
    pos_close(L, &p);
    ll_endif(L, &busy);
    /* dw[o0 + j][q] += dwt[q][j] */
    ll_loop_open(L, &j, ll_i64(L, 0), ll_i64(L, on), 1, "dw.o");
    LLVMValueRef drow = ll_off(L, dw, mul(L, add(L, o0, j.iv), ck), NULL);
    ll_loop_open(L, &q, mul(L, c0, d->KK), mul(L, c1, d->KK), 1, "dw.k");
    LLVMValueRef at = ll_off(L, drow, q.iv, NULL);
    ll_store(L, LLVMBuildFAdd(L->b, ll_load(L, at, 1, NULL),
                              ll_load(L, ll_off(L, dwt, add(L, mul(L, q.iv, ON), j.iv), NULL), 1, NULL), ""), at);
    ll_loop_close(L, &q);
    ll_loop_close(L, &j);
    if (!want)
        return;

    /* gx of samples [b0, b1) */
    ll_if(L, &f, want, "dx", 0);
    if (on < ON)
        ll_copy(L, wt, NULL, ll_i64(L, ck * ON));
    ll_loop_open(L, &j, ll_i64(L, 0), ll_i64(L, on), 1, "pack.o");
    LLVMValueRef wrow = ll_off(L, w, mul(L, add(L, o0, j.iv), ck), NULL);
    ll_loop_open(L, &q, ll_i64(L, 0), ll_i64(L, ck), 1, "pack.k");
    ll_store(L, ll_load(L, ll_off(L, wrow, q.iv, NULL), 1, NULL), ll_off(L, wt, add(L, mul(L, q.iv, ON), j.iv), NULL));
    ll_loop_close(L, &q);
    ll_loop_close(L, &j);
    pos_open(L, &p, x, d, ON, on, g, o0, b0, b1, 1);
    taps_open(L, &k, d, &p, ON, ll_i64(L, 0), ll_i64(L, d->cg));
    LLVMValueRef sum = NULL;
    for (int v = 0; v < nv; v++) {
        LLVMValueRef wv = ll_load(L, ll_off(L, wt, add(L, k.qo, ll_i64(L, v * LL_LANES)), NULL), LL_LANES, NULL);
        LLVMValueRef prod = LLVMBuildFMul(L->b, wv, p.gv[v], "");
        sum = sum ? LLVMBuildFAdd(L->b, sum, prod, "") : prod;
    }
    LLVMValueRef r = LLVMBuildExtractElement(L->b, sum, ll_i32(L, 0), "");
    for (int e = 1; e < LL_LANES; e++)
        r = LLVMBuildFAdd(L->b, r, LLVMBuildExtractElement(L->b, sum, ll_i32(L, e), ""), "");
    at = ll_off(L, p.gxt, k.xi, NULL);
    ll_store(L, LLVMBuildFAdd(L->b, ll_load(L, at, 1, NULL), r, ""), at);
    taps_close(L, &k);
    pos_close(L, &p);
    ll_endif(L, &f);
}

void ll_conv_bwd(TargetEmitter *em, const IrPlan *P, int i) {
    Ll *L = em;
    const IrNode *x = node(L, i);
    ConvDims d = conv_dims(L, x);
    long long ON = d.og < CONV_OB ? (d.og + LL_LANES - 1) / LL_LANES * LL_LANES : CONV_OB;
    ll_kernel_open(L, P, i, 0);
    LLVMValueRef wt = LLVMBuildArrayAlloca(L->b, L->f32, ll_i64(L, d.cg * d.KK * ON), ll_name(L, "wt"));
    LLVMSetAlignment(wt, 64);
    LLVMValueRef dwt = LLVMBuildArrayAlloca(L->b, L->f32, ll_i64(L, d.cg * d.KK * ON), ll_name(L, "dwt"));
    LLVMSetAlignment(dwt, 64);
    LLVMValueRef want = P->at[x->in[0]].needgrad
                            ? LLVMBuildICmp(L->b, LLVMIntNE, ll_flag(L), ll_i32(L, 0), ll_name(L, "want.dx"))
                            : NULL;
    LlLoop g;
    ll_loop_open(L, &g, ll_i64(L, 0), ll_i64(L, d.G), 1, "g");
    for (long long ob = 0; ob < d.og; ob += ON)
        conv_bwd_block(L, x, &d, ON, g.iv, ob, d.og - ob < ON ? d.og - ob : ON, wt, dwt, want);
    ll_loop_close(L, &g);
    ll_kernel_close(L);
}

/* ---- pooling ---- */

/* Forward, each output the maximum (the first NaN wins, as `v > acc || v
   != v`) or the sum divided by the kernel's taps (padding counted as
   zeros) of the taps inside the input, in ky, kx order; its input may be
   spikes kept as bits (training). Backward, the output's gradient goes to
   the first maximum of the window, or a share of it (over the kernel's
   taps) to every tap inside the input: the C target's pool(). */
static void pool(Ll *L, const IrPlan *P, int i, int fwd) {
    const IrNode *x = node(L, i);
    int in = x->in[0], bits = P->at[in].bits, mx = x->op == IR_MAXPOOL;
    const Shape *xs = &node(L, in)->shape;
    long long C = xs->d[0], H = xs->d[1], W = xs->d[2], OH = x->shape.d[1], OW = x->shape.d[2];
    LLVMValueRef area = ll_flt(L, (float)(x->kernel[0] * x->kernel[1]), 1);
    ll_kernel_open(L, P, i, fwd);
    LLVMValueRef acc = LLVMBuildAlloca(L->b, L->f32, ll_name(L, "acc"));
    LLVMValueRef arg = LLVMBuildAlloca(L->b, L->i64, ll_name(L, "arg"));
    LlLoop t, rc, oy, ox, ky, kx;
    ll_loop_open(L, &t, ll_from(L), ll_to(L), 1, "t");
    LLVMValueRef xt = bits ? ll_bits_at(L, in, t.iv, "spikes") : ll_at(L, in, t.iv, "x");
    LLVMValueRef yt = fwd ? ll_at(L, i, t.iv, "y") : ll_grad_at(L, i, t.iv, "gy");
    LLVMValueRef gx = fwd ? NULL : ll_grad_at(L, in, t.iv, "gx");
    LLVMValueRef p0, p1; /* this part's planes (sample, channel) */
    ll_share(L, mul(L, L->B, C), 1, &p0, &p1);
    ll_loop_open(L, &rc, p0, p1, 1, "plane");
    LLVMValueRef xp = mul(L, rc.iv, H * W), yp = ll_off(L, yt, mul(L, rc.iv, OH * OW), "yp");
    ll_loop_open(L, &oy, ll_i64(L, 0), ll_i64(L, OH), 1, "oy");
    LLVMValueRef iy0 = LLVMBuildNSWSub(L->b, mul(L, oy.iv, x->stride[0]), ll_i64(L, x->pad[0]), ll_name(L, "iy0"));
    LLVMValueRef kylo, kyhi, kxlo, kxhi;
    taps(L, iy0, x->kernel[0], H, &kylo, &kyhi);
    ll_loop_open(L, &ox, ll_i64(L, 0), ll_i64(L, OW), 1, "ox");
    LLVMValueRef ix0 = LLVMBuildNSWSub(L->b, mul(L, ox.iv, x->stride[1]), ll_i64(L, x->pad[1]), ll_name(L, "ix0"));
    taps(L, ix0, x->kernel[1], W, &kxlo, &kxhi);
    LLVMValueRef yat = ll_off(L, yp, add(L, mul(L, oy.iv, OW), ox.iv), NULL);
    LLVMValueRef d = fwd ? NULL : ll_load(L, yat, 1, "d");
    ll_store(L, ll_flt(L, mx ? -INFINITY : 0.0f, 1), acc);
    LLVMBuildStore(L->b, ll_i64(L, -1), arg);
    ll_loop_open(L, &ky, kylo, kyhi, 1, "ky");
    LLVMValueRef row = add(L, xp, add(L, mul(L, add(L, iy0, ky.iv), W), ix0));
    ll_loop_open(L, &kx, kxlo, kxhi, 1, "kx");
    LLVMValueRef e = add(L, row, kx.iv);
    if (mx || fwd) {
        LLVMValueRef v = bits ? ll_bit(L, xt, e) : ll_load(L, ll_off(L, xt, e, NULL), 1, "v");
        LLVMValueRef a = ll_load(L, acc, 1, NULL);
        if (mx) {
            LLVMValueRef take = LLVMBuildOr(L->b, LLVMBuildFCmp(L->b, LLVMRealOGT, v, a, ""),
                                            LLVMBuildFCmp(L->b, LLVMRealUNO, v, v, ""), "");
            ll_store(L, LLVMBuildSelect(L->b, take, v, a, ""), acc);
            LLVMBuildStore(L->b, LLVMBuildSelect(L->b, take, e, LLVMBuildLoad2(L->b, L->i64, arg, ""), ""), arg);
        } else
            ll_store(L, LLVMBuildFAdd(L->b, a, v, ""), acc);
    } else { /* average's backward: a share to every tap */
        LLVMValueRef at = ll_off(L, gx, e, NULL);
        ll_store(L, LLVMBuildFAdd(L->b, ll_load(L, at, 1, NULL), LLVMBuildFDiv(L->b, d, area, ""), ""), at);
    }
    ll_loop_close(L, &kx);
    ll_loop_close(L, &ky);
    if (fwd) {
        LLVMValueRef y = ll_load(L, acc, 1, NULL);
        ll_store(L, mx ? y : LLVMBuildFDiv(L->b, y, area, ""), yat);
    } else if (mx) {
        LLVMValueRef a = LLVMBuildLoad2(L->b, L->i64, arg, ll_name(L, "argmax"));
        LlIf f;
        ll_if(L, &f, LLVMBuildICmp(L->b, LLVMIntSGE, a, ll_i64(L, 0), ""), "found", 0);
        LLVMValueRef at = ll_off(L, gx, a, NULL);
        ll_store(L, LLVMBuildFAdd(L->b, ll_load(L, at, 1, NULL), d, ""), at);
        ll_endif(L, &f);
    }
    ll_loop_close(L, &ox);
    ll_loop_close(L, &oy);
    ll_loop_close(L, &rc);
    ll_loop_close(L, &t);
    ll_kernel_close(L);
}

void ll_pool_fwd(TargetEmitter *em, const IrPlan *P, int i) { pool(em, P, i, 1); }
void ll_pool_bwd(TargetEmitter *em, const IrPlan *P, int i) { pool(em, P, i, 0); }

/* ---- batchnorm ---- */

static LLVMValueRef dbl(Ll *L, double v) { return LLVMConstReal(L->f64, v); }


/* sqrt of a double (C's sqrt: LLVM's exact intrinsic). */
static LLVMValueRef sqrt_f64(Ll *L, LLVMValueRef v) {
    LLVMTypeRef ty = L->f64;
    unsigned id = LLVMLookupIntrinsicID("llvm.sqrt", 9);
    return LLVMBuildCall2(L->b, LLVMIntrinsicGetType(L->ctx, id, &ty, 1), LLVMGetIntrinsicDeclaration(L->mod, id, &ty, 1),
                          &v, 1, "");
}

/* The terms of a channel's sums at value xi, in double: lanes of them
   (TARGET_BN_LANES values from xi on, or the one at xi), into terms. */
typedef void BnTerms(Ll *L, const void *ctx, LLVMValueRef xi, int lanes, LLVMValueRef *terms);

/* Sums over the hw values of channel c of rows [0, rows) into the n
   vectors acc (allocas of TARGET_BN_LANES doubles, zeroed here) in
   backend.h's order: the rows in order, value k of a row into lane k %
   TARGET_BN_LANES (a row's full blocks as vectors, its last values one by
   one into their lanes). */
static void bn_lanes(Ll *L, LLVMValueRef rows, LLVMValueRef c, long long C, long long hw, LLVMValueRef *acc, int n,
                     BnTerms *terms, const void *ctx, const char *what) {
    LLVMTypeRef vd = LLVMVectorType(L->f64, TARGET_BN_LANES);
    long long full = hw / TARGET_BN_LANES * TARGET_BN_LANES;
    LLVMValueRef t[2];
    for (int j = 0; j < n; j++)
        LLVMBuildStore(L->b, LLVMConstNull(vd), acc[j]);
    LlLoop r, k;
    ll_loop_open(L, &r, ll_i64(L, 0), rows, 1, arena_printf(L->a, "%s.r", what));
    LLVMValueRef o = mul(L, add(L, mul(L, r.iv, C), c), hw);
    if (full) {
        ll_loop_open(L, &k, ll_i64(L, 0), ll_i64(L, full), TARGET_BN_LANES, arena_printf(L->a, "%s.k", what));
        terms(L, ctx, add(L, o, k.iv), TARGET_BN_LANES, t);
        for (int j = 0; j < n; j++)
            LLVMBuildStore(L->b, LLVMBuildFAdd(L->b, LLVMBuildLoad2(L->b, vd, acc[j], ""), t[j], ""), acc[j]);
        ll_loop_close(L, &k);
    }
    for (long long l = 0; l < hw - full; l++) { /* the row's last values */
        terms(L, ctx, add(L, o, ll_i64(L, full + l)), 1, t);
        for (int j = 0; j < n; j++) {
            LLVMValueRef v = LLVMBuildLoad2(L->b, vd, acc[j], ""), lane = ll_i32(L, (int)l);
            LLVMValueRef s = LLVMBuildFAdd(L->b, LLVMBuildExtractElement(L->b, v, lane, ""), t[j], "");
            LLVMBuildStore(L->b, LLVMBuildInsertElement(L->b, v, s, lane, ""), acc[j]);
        }
    }
    ll_loop_close(L, &r);
}

/* Lane 0 + lane 1 + ..., in order, of the sums' vector at acc. */
static LLVMValueRef lane_total(Ll *L, LLVMValueRef acc) {
    LLVMValueRef v = LLVMBuildLoad2(L->b, LLVMVectorType(L->f64, TARGET_BN_LANES), acc, "");
    LLVMValueRef s = LLVMBuildExtractElement(L->b, v, ll_i32(L, 0), "");
    for (int l = 1; l < TARGET_BN_LANES; l++)
        s = LLVMBuildFAdd(L->b, s, LLVMBuildExtractElement(L->b, v, ll_i32(L, l), ""), "");
    return s;
}

/* fpext to double, of lanes values. */
static LLVMValueRef to_f64(Ll *L, LLVMValueRef v, int lanes) {
    return LLVMBuildFPExt(L->b, v, lanes == 1 ? L->f64 : LLVMVectorType(L->f64, (unsigned)lanes), "");
}

/* The sums' terms of batchnorm's training forward and backward. */
typedef struct BnCtx {
    LLVMValueRef xw, gy; /* the input; dL/dy (the backward) */
    LLVMValueRef m, is;  /* the channel's mean (float; the deviations), 1/std (the backward) */
} BnCtx;

static void mean_terms(Ll *L, const void *ctx, LLVMValueRef xi, int lanes, LLVMValueRef *t) {
    const BnCtx *q = ctx;
    t[0] = to_f64(L, ll_load(L, ll_off(L, q->xw, xi, NULL), lanes, NULL), lanes);
}

/* ((double)x - m)^2 */
static void dev_terms(Ll *L, const void *ctx, LLVMValueRef xi, int lanes, LLVMValueRef *t) {
    const BnCtx *q = ctx;
    LLVMValueRef d = LLVMBuildFSub(L->b, to_f64(L, ll_load(L, ll_off(L, q->xw, xi, NULL), lanes, NULL), lanes),
                                   to_f64(L, ll_splat(L, q->m, lanes), lanes), "");
    t[0] = LLVMBuildFMul(L->b, d, d, "");
}

/* g, and g ((x - m) is) with xhat in float */
static void grad_terms(Ll *L, const void *ctx, LLVMValueRef xi, int lanes, LLVMValueRef *t) {
    const BnCtx *q = ctx;
    LLVMValueRef g = to_f64(L, ll_load(L, ll_off(L, q->gy, xi, NULL), lanes, NULL), lanes);
    LLVMValueRef xh = LLVMBuildFMul(
        L->b, LLVMBuildFSub(L->b, ll_load(L, ll_off(L, q->xw, xi, NULL), lanes, NULL), ll_splat(L, q->m, lanes), ""),
        ll_splat(L, q->is, lanes), "");
    t[0] = g;
    t[1] = LLVMBuildFMul(L->b, g, to_f64(L, xh, lanes), "");
}

/* The loops over the rows and the hw values of channel c of a batchnorm,
   and the index of value (r, c, k) in the output (or its gradient) and in
   the input. */
typedef struct BnLoop {
    LlLoop r, k;
    LLVMValueRef at; /* (r C + c) hw + k */
    LLVMValueRef xat; /* the same in the input (row r % B when it is stored once) */
} BnLoop;

static void bn_open(Ll *L, BnLoop *q, LLVMValueRef rows, LLVMValueRef c, long long C, long long hw, int once,
                    const char *what) {
    ll_loop_open(L, &q->r, ll_i64(L, 0), rows, 1, arena_printf(L->a, "%s.r", what));
    ll_loop_open(L, &q->k, ll_i64(L, 0), ll_i64(L, hw), 1, arena_printf(L->a, "%s.k", what));
    q->at = add(L, mul(L, add(L, mul(L, q->r.iv, C), c), hw), q->k.iv);
    LLVMValueRef xr = once ? LLVMBuildSRem(L->b, q->r.iv, L->B, "") : q->r.iv;
    q->xat = add(L, mul(L, add(L, mul(L, xr, C), c), hw), q->k.iv);
}

static void bn_close(Ll *L, BnLoop *q) {
    ll_loop_close(L, &q->k);
    ll_loop_close(L, &q->r);
}

/* At inference (and in eval mode) y = x a + (beta - mean a), a = gamma /
   sqrt(var + eps), per channel; an input stored once (the same at every
   step) is read for every step. Training normalizes with the statistics of
   the batch over all steps, in double, keeps the mean and 1/std for the
   backward and updates the running statistics (momentum 0.1, the unbiased
   variance): the C target's cp_batchnorm_channel, operation for
   operation. */
void ll_batchnorm_fwd(TargetEmitter *em, const IrPlan *P, int i) {
    Ll *L = em;
    const IrNode *x = node(L, i);
    int in = x->in[0], train = P == &L->g->trainp;
    long long C = x->shape.d[0], hw = shape_count(&x->shape) / C;
    ll_kernel_open(L, P, i, 1);
    LLVMValueRef gamma = ll_param(L, x->param[0]), beta = ll_param(L, x->param[1]);
    LLVMValueRef rmean = ll_param(L, x->param[2]), rvar = ll_param(L, x->param[3]);
    LLVMValueRef steps = LLVMBuildSExt(L->b, LLVMBuildNSWSub(L->b, ll_to(L), ll_from(L), ""), L->i64, "");
    LLVMValueRef rows = LLVMBuildNSWMul(L->b, steps, L->B, ll_name(L, "rows"));
    LLVMValueRef xw = ll_at(L, in, ll_from(L), "x"), yw = ll_at(L, i, ll_from(L), "y");
    LLVMTypeRef vd = LLVMVectorType(L->f64, TARGET_BN_LANES);
    LLVMValueRef s = LLVMBuildAlloca(L->b, vd, ll_name(L, "sum")), qs = LLVMBuildAlloca(L->b, vd, ll_name(L, "sq"));
    int once = P->at[in].inv && !P->at[i].inv;
    LlLoop c;
    BnLoop q;
    LLVMValueRef c0, c1; /* this part's channels */
    ll_share(L, ll_i64(L, C), 1, &c0, &c1);
    ll_loop_open(L, &c, c0, c1, 1, "c");
    LLVMValueRef g = ll_load(L, ll_off(L, gamma, c.iv, NULL), 1, "gamma");
    LLVMValueRef bt = ll_load(L, ll_off(L, beta, c.iv, NULL), 1, "beta");
    LlIf f;
    if (train)
        ll_if(L, &f, LLVMBuildICmp(L->b, LLVMIntEQ, ll_flag(L), ll_i32(L, 0), ""), "eval", 1);
    LLVMValueRef var = ll_load(L, ll_off(L, rvar, c.iv, NULL), 1, NULL);
    LLVMValueRef sd = ll_call_math(L, "llvm.sqrt", LLVMBuildFAdd(L->b, var, ll_flt(L, x->fval, 1), ""), NULL, 1);
    LLVMValueRef a = LLVMBuildFDiv(L->b, g, sd, ll_name(L, "a"));
    LLVMValueRef shift = LLVMBuildFSub(
        L->b, bt, LLVMBuildFMul(L->b, ll_load(L, ll_off(L, rmean, c.iv, NULL), 1, NULL), a, ""), ll_name(L, "shift"));
    bn_open(L, &q, rows, c.iv, C, hw, once, "y");
    LLVMValueRef v = LLVMBuildFMul(L->b, ll_load(L, ll_off(L, xw, q.xat, NULL), 1, NULL), a, "");
    ll_store(L, LLVMBuildFAdd(L->b, v, shift, ""), ll_off(L, yw, q.at, NULL));
    bn_close(L, &q);
    if (train) {
        ll_else(L, &f);
        LLVMValueRef cnt =
            LLVMBuildFMul(L->b, LLVMBuildSIToFP(L->b, rows, L->f64, ""), dbl(L, (double)hw), ll_name(L, "cnt"));
        BnCtx bc = {xw, NULL, NULL, NULL};
        bn_lanes(L, rows, c.iv, C, hw, &s, 1, mean_terms, &bc, "mean");
        LLVMValueRef m = LLVMBuildFPTrunc(L->b, LLVMBuildFDiv(L->b, lane_total(L, s), cnt, ""), L->f32, ll_name(L, "m"));
        bc.m = m;
        bn_lanes(L, rows, c.iv, C, hw, &qs, 1, dev_terms, &bc, "var");
        LLVMValueRef qv = lane_total(L, qs);
        LLVMValueRef eps = LLVMBuildFPExt(L->b, ll_flt(L, x->fval, 1), L->f64, "");
        LLVMValueRef sq = sqrt_f64(L, LLVMBuildFAdd(L->b, LLVMBuildFDiv(L->b, qv, cnt, ""), eps, ""));
        LLVMValueRef is = LLVMBuildFPTrunc(L->b, LLVMBuildFDiv(L->b, dbl(L, 1.0), sq, ""), L->f32, ll_name(L, "istd"));
        ll_store(L, m, ll_off(L, ll_plan(L, P->at[i].stat, "mean"), c.iv, NULL));
        ll_store(L, is, ll_off(L, ll_plan(L, P->at[i].stat + C, "istd"), c.iv, NULL));
        bn_open(L, &q, rows, c.iv, C, hw, once, "norm");
        LLVMValueRef xh =
            LLVMBuildFMul(L->b, LLVMBuildFSub(L->b, ll_load(L, ll_off(L, xw, q.xat, NULL), 1, NULL), m, ""), is, "");
        ll_store(L, LLVMBuildFAdd(L->b, LLVMBuildFMul(L->b, xh, g, ""), bt, ""), ll_off(L, yw, q.at, NULL));
        bn_close(L, &q);
        LLVMValueRef rm = ll_off(L, rmean, c.iv, NULL), rv = ll_off(L, rvar, c.iv, NULL);
        ll_store(L, LLVMBuildFAdd(L->b, LLVMBuildFMul(L->b, ll_flt(L, 0.9f, 1), ll_load(L, rm, 1, NULL), ""),
                                  LLVMBuildFMul(L->b, ll_flt(L, 0.1f, 1), m, ""), ""), rm);
        LLVMValueRef unbiased;
        if (P->at[in].inv) { /* T equal steps stored once: the variance counts all T copies */
            double T = L->g->timesteps;
            unbiased = LLVMBuildFDiv(L->b, LLVMBuildFMul(L->b, dbl(L, T), qv, ""),
                                     LLVMBuildFSub(L->b, LLVMBuildFMul(L->b, dbl(L, T), cnt, ""), dbl(L, 1.0), ""), "");
        } else
            unbiased = LLVMBuildSelect(L->b, LLVMBuildFCmp(L->b, LLVMRealOGT, cnt, dbl(L, 1.0), ""),
                                       LLVMBuildFDiv(L->b, qv, LLVMBuildFSub(L->b, cnt, dbl(L, 1.0), ""), ""), qv, "");
        unbiased = LLVMBuildFPTrunc(L->b, unbiased, L->f32, "");
        ll_store(L, LLVMBuildFAdd(L->b, LLVMBuildFMul(L->b, ll_flt(L, 0.9f, 1), ll_load(L, rv, 1, NULL), ""),
                                  LLVMBuildFMul(L->b, ll_flt(L, 0.1f, 1), unbiased, ""), ""), rv);
        ll_endif(L, &f);
    }
    ll_loop_close(L, &c);
    ll_kernel_close(L);
}

/* dgamma and dbeta get the channel's sums (in double, rows in order); when
   the input needs its gradient and dx asks for it, gx += gamma is (g -
   mean(g) - xhat mean(g xhat)): cp_batchnorm_channel_bwd's operations. */
void ll_batchnorm_bwd(TargetEmitter *em, const IrPlan *P, int i) {
    Ll *L = em;
    const IrNode *x = node(L, i);
    int in = x->in[0];
    long long C = x->shape.d[0], hw = shape_count(&x->shape) / C;
    ll_kernel_open(L, P, i, 0);
    LLVMValueRef gamma = ll_param(L, x->param[0]);
    LLVMValueRef dgamma = ll_param_grad(L, x->param[0]), dbeta = ll_param_grad(L, x->param[1]);
    LLVMValueRef mean = ll_plan(L, P->at[i].stat, "mean"), istd = ll_plan(L, P->at[i].stat + C, "istd");
    LLVMValueRef steps = LLVMBuildSExt(L->b, LLVMBuildNSWSub(L->b, ll_to(L), ll_from(L), ""), L->i64, "");
    LLVMValueRef rows = LLVMBuildNSWMul(L->b, steps, L->B, ll_name(L, "rows"));
    LLVMValueRef xw = ll_at(L, in, ll_from(L), "x"), gy = ll_grad_at(L, i, ll_from(L), "gy");
    LLVMTypeRef vd = LLVMVectorType(L->f64, TARGET_BN_LANES);
    LLVMValueRef acc[2] = {LLVMBuildAlloca(L->b, vd, ll_name(L, "sg")), LLVMBuildAlloca(L->b, vd, ll_name(L, "sgx"))};
    LLVMValueRef cnt = LLVMBuildFMul(L->b, LLVMBuildSIToFP(L->b, rows, L->f64, ""), dbl(L, (double)hw), ll_name(L, "cnt"));
    LlLoop c;
    BnLoop q;
    LLVMValueRef c0, c1; /* this part's channels */
    ll_share(L, ll_i64(L, C), 1, &c0, &c1);
    ll_loop_open(L, &c, c0, c1, 1, "c");
    LLVMValueRef m = ll_load(L, ll_off(L, mean, c.iv, NULL), 1, "m"), is = ll_load(L, ll_off(L, istd, c.iv, NULL), 1, "is");
    BnCtx bc = {xw, gy, m, is};
    bn_lanes(L, rows, c.iv, C, hw, acc, 2, grad_terms, &bc, "sums");
    LLVMValueRef sg = lane_total(L, acc[0]), sgx = lane_total(L, acc[1]);
    LLVMValueRef dg = ll_off(L, dgamma, c.iv, NULL), db = ll_off(L, dbeta, c.iv, NULL);
    ll_store(L, LLVMBuildFAdd(L->b, ll_load(L, dg, 1, NULL), LLVMBuildFPTrunc(L->b, sgx, L->f32, ""), ""), dg);
    ll_store(L, LLVMBuildFAdd(L->b, ll_load(L, db, 1, NULL), LLVMBuildFPTrunc(L->b, sg, L->f32, ""), ""), db);
    if (P->at[in].needgrad) {
        LlIf f;
        ll_if(L, &f, LLVMBuildICmp(L->b, LLVMIntNE, ll_flag(L), ll_i32(L, 0), ""), "dx", 0);
        LLVMValueRef gx = ll_grad_at(L, in, ll_from(L), "gx");
        LLVMValueRef k1 = LLVMBuildFMul(L->b, ll_load(L, ll_off(L, gamma, c.iv, NULL), 1, NULL), is, ll_name(L, "k1"));
        LLVMValueRef k2 = LLVMBuildFPTrunc(L->b, LLVMBuildFDiv(L->b, sg, cnt, ""), L->f32, ll_name(L, "k2"));
        LLVMValueRef k3 = LLVMBuildFPTrunc(L->b, LLVMBuildFDiv(L->b, sgx, cnt, ""), L->f32, ll_name(L, "k3"));
        bn_open(L, &q, rows, c.iv, C, hw, 0, "gx");
        LLVMValueRef xh1 =
            LLVMBuildFMul(L->b, LLVMBuildFSub(L->b, ll_load(L, ll_off(L, xw, q.at, NULL), 1, NULL), m, ""), is, "");
        LLVMValueRef t = LLVMBuildFSub(L->b, LLVMBuildFSub(L->b, ll_load(L, ll_off(L, gy, q.at, NULL), 1, NULL), k2, ""),
                                       LLVMBuildFMul(L->b, xh1, k3, ""), "");
        LLVMValueRef at = ll_off(L, gx, q.at, NULL);
        ll_store(L, LLVMBuildFAdd(L->b, ll_load(L, at, 1, NULL), LLVMBuildFMul(L->b, k1, t, ""), ""), at);
        bn_close(L, &q);
        ll_endif(L, &f);
    }
    ll_loop_close(L, &c);
    ll_kernel_close(L);
}
