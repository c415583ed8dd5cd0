/*
 * ckernels.c: the C target's kernels of the synaptic and stateless ops,
 * forward and backward, and the micro-kernels they call.
 *
 * A kernel computes the steps [from, to) of one node. Values of
 * consecutive steps are contiguous in their buffers (the plans lay them out
 * so), so a dense layer over a range is one matrix product over
 * (to - from) x B rows; a value stored once (the same at every step) is
 * read at every step, and a value computed once is called for the range
 * [0, 1). The other kernels loop over the steps of the range.
 *
 * Every sum runs in the order of the plain loops of the definitions (a
 * dense output sums its bias, then its inputs in ascending order; no fused
 * multiply-add), so the results do not depend on blocking, threads or
 * which kernel computed them: inference, training and step-by-step runs
 * give the same bits.
 */
#include <string.h>

#include "c.h"

static int64_t align16(int64_t x) { return (x + 15) & ~(int64_t)15; }

static const IrNode *node(Emit *e, int i) { return &e->g->nodes.items[i]; }
static long long count(Emit *e, int i) { return shape_count(&node(e, i)->shape); }
static const char *fmt(Emit *e, const char *f, long long v) { return arena_printf(e->g->arena, f, v); }

/* ---- scratch ---- */

/* The matrix product packs blocks of GEMM_KC values of k by GEMM_NC
   columns of B, and accumulates blocks of 4 rows by GEMM_NR columns of C.
   Measured on AMD Zen 4 (bench/RESULTS.md): 128 x 32 gives 67 GFLOP/s on
   one core with AVX-512 and 61 with AVX2 only (GCC 12, -O3 -march=native),
   where 256 x 64 gave 52 and 38: the panel of B stays in L1 and 4 x 32
   accumulators fit the 16 registers of AVX2. A block of A is packed once
   for every GEMM_NC columns (a group of panels; see the cache below): with
   256 instead of 512 the MLP's inference took 2 % longer, and with 1024
   (a packed block of 512 KB, still within a core's L2 on Zen 4, 1 MB) the
   products of Linear(1024, 1024) and Linear(4096, 4096) + LIF took 3-10 %
   less time than with 512 on an Intel Xeon, the examples' training the
   same (bench/RESULTS.md). */
#define GEMM_KC 128
#define GEMM_NC 1024
#define GEMM_NR 32

/* The packed block holds GEMM_SLICES times what one thread packs: a
   thread of a team of at most GEMM_SLICES packs as much as one alone (in
   a product split by rows each packs every panel), and larger teams share
   the block. With one slice, two threads packed half as much each, and
   the products of Linear(1024, 1024) + LIF took about 10 % longer on
   two threads of an Intel Xeon (bench/RESULTS.md). */
#define GEMM_SLICES 2

/* A product whose panels take more than one group (more than GEMM_NC
   columns at a block of GEMM_KC values of k) would pack and check each
   block of rows of A again for every group: the cache keeps them, packed
   in the first group with their lists of steps, for the others. A block
   takes acache_stride(mr) floats: GEMM_KC x mr values, ACACHE_PAD that a
   tile may read past them, then the count of steps kept, the count of
   values that are not zero, whether A is read in place, and the list of
   steps (at most GEMM_KC and its -1). The cache holds GEMM_SLICES slices of
   at most ACACHE_MAX floats (4 MB): a thread whose blocks do not fit its
   slice packs them in every group. The weight gradient of Linear(4096,
   4096) over 1600 rows (four groups) took 6-10 % less time on an Intel
   Xeon (bench/RESULTS.md). */
#define ACACHE_PAD 16
#define ACACHE_MAX (1 << 20)

/* Layers of at most NARROW outputs have their own products (see "the
   products of narrow layers"), which pack w^T as I rows of NARROW. */
#define NARROW 16

/* Samples of a convolution's im2col matrix at a time: as many as keep it
   within CONV_COLS floats (it then stays in a core's L2 cache while the
   product reads it), at least one. */
#define CONV_COLS (192 * 1024)

static long long conv_chunk(const IrGraph *g, const IrNode *x) {
    const Shape *xs = &g->nodes.items[x->in[0]].shape;
    long long per = (long long)xs->d[0] * x->kernel[0] * x->kernel[1] * x->shape.d[1] * x->shape.d[2];
    long long s = CONV_COLS / per;
    s = s < 1 ? 1 : s;
    return s < g->batch ? s : g->batch;
}

/* The floats of B that a product of M x N x K packs at a time (0 when M
   is under 4 rows: the plain loop packs nothing); the same arithmetic as
   the generated ck_gemm. */
static int64_t pack_floats(int64_t M, int64_t N, int64_t K) {
    if (M < 4 || N < 1 || K < 1)
        return 0;
    int64_t kc = K < GEMM_KC ? K : GEMM_KC;
    int64_t nq = GEMM_KC * GEMM_NC / (kc * GEMM_NR);
    nq = nq > 0 ? nq : 1;
    int64_t cols = (N + GEMM_NR - 1) / GEMM_NR * GEMM_NR;
    cols = cols < nq * GEMM_NR ? cols : nq * GEMM_NR;
    return kc * cols;
}

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* The floats of a block of mr rows of A in the cache. */
static int64_t acache_stride(int mr) { return align16((int64_t)GEMM_KC * mr + ACACHE_PAD + GEMM_KC + 4); }

/* The floats of the cache that a product of M x N x K needs, in blocks of
   mr rows: none where its panels fit one group (the generated code checks
   again: the cache is used only where its blocks fit), or where they are
   more than ACACHE_MAX. */
static int64_t acache_floats(int64_t M, int64_t N, int64_t K, int mr) {
    if (M < 4 || N < 1 || K < 1)
        return 0;
    int64_t kc = K < GEMM_KC ? K : GEMM_KC;
    if ((N + GEMM_NR - 1) / GEMM_NR * GEMM_NR * kc <= (int64_t)GEMM_KC * GEMM_NC)
        return 0;
    int64_t need = (M + mr - 1) / mr * acache_stride(mr);
    return need <= ACACHE_MAX ? need : 0;
}

/* What the products of a plan need: the packed block of B and the cache of
   A's blocks, the most of any product. */
typedef struct Need {
    int mr;
    int64_t pack, acache;
} Need;

static void product(Need *n, int64_t M, int64_t N, int64_t K) {
    n->pack = max64(n->pack, pack_floats(M, N, K));
    n->acache = max64(n->acache, acache_floats(M, N, K, n->mr));
}

/* The products of plan P: a dense layer computes a chunk's steps times the
   batch rows at once, or the batch when it runs once. */
static void plan_products(const IrGraph *g, const IrPlan *P, int train, Need *n) {
    for (int i = 0; i < g->nodes.len; i++) {
        const IrNode *x = &g->nodes.items[i];
        if (x->dead)
            continue;
        if (x->op == IR_DENSE) {
            int64_t rows = (int64_t)(P->at[i].inv ? 1 : P->chunk) * g->batch;
            int64_t I = shape_count(&g->nodes.items[x->in[0]].shape), O = x->out;
            product(n, rows, O, I);
            if (O <= NARROW) { /* w^T, for a narrow layer over more rows (dense_product) or on bits (narrow_dw) */
                if (rows > O || (train && P->at[x->in[0]].bits))
                    n->pack = max64(n->pack, I * NARROW);
            } else if (O < GEMM_NR && rows > O) /* a narrow layer over more rows runs transposed (dense_product) */
                product(n, O, rows, I);
            if (train) {
                product(n, O, I, rows);
                product(n, rows, I, O);
            }
        }
        if (x->op == IR_CONV2D) {
            const Shape *xs = &g->nodes.items[x->in[0]].shape;
            int64_t np = conv_chunk(g, x) * x->shape.d[1] * x->shape.d[2];
            int64_t og = x->out / x->groups, ckk = xs->d[0] / x->groups * x->kernel[0] * x->kernel[1];
            product(n, og, np, ckk);
            if (train) {
                product(n, og, ckk, np);
                product(n, ckk, np, og);
            }
        }
    }
}

void ck_scratch(Emit *e) {
    const IrGraph *g = e->g;
    int64_t col = 0, obuf = 0, chans = 0;
    for (int i = 0; i < g->nodes.len; i++) {
        const IrNode *x = &g->nodes.items[i];
        if (x->dead || x->op != IR_CONV2D)
            continue;
        const Shape *xs = &g->nodes.items[x->in[0]].shape;
        int64_t pix = x->shape.d[1] * x->shape.d[2], S = conv_chunk(g, x);
        int64_t c = xs->d[0] * x->kernel[0] * x->kernel[1] * pix * S;
        col = c > col ? c : col;
        int64_t o = x->out * pix * S;
        obuf = o > obuf ? o : obuf;
        chans = x->out > chans ? x->out : chans;
    }
    Need n = {TILE_ROWS(e->isa), 0, 0};
    plan_products(g, &g->infer, 0, &n);
    if (g->train)
        plan_products(g, &g->trainp, 1, &n);
    int64_t pack = GEMM_SLICES * align16(n.pack);
    /* at least one full panel (128 x 32 floats): threads share the block,
       each packs shorter blocks of k in its slice of it */
    if (pack > 0 && pack < GEMM_KC * GEMM_NR)
        pack = GEMM_KC * GEMM_NR;
    e->pack = pack;
    e->acache = GEMM_SLICES * align16(n.acache);
    /* [packed block][A's cache][im2col][output][training: im2col gradient,
       bias sums]; inference ends after the output */
    e->packb = 0;
    e->col = pack + e->acache;
    e->obuf = e->col + align16(col);
    e->dcol = e->obuf + align16(obuf);
    e->bsum = e->dcol + align16(col);
    e->iscratch = col || obuf ? e->dcol : e->col;
    e->tscratch = e->bsum + align16(chans);
}

static const char *scratch(Emit *e, const IrPlan *P, int64_t off) {
    return arena_printf(e->g->arena, "ws + %lld", (long long)(cp_scratch(e, P) + off));
}

/* ---- the matrix product ---- */

/* The portable tile: a local array of 4 x GEMM_NR sums whose inner loop
   compilers vectorize, over the steps of k that the packing kept. The loop
   over them ends at kx's -1, not at a count: with a count, GCC vectorizes
   that loop instead, with gathers, four times slower. */
static void portable_tile(Emit *e, int mr, int nr) {
    cg_line(e, "float acc[%d][%d];", mr, nr);
    cg_line(e, "for (i = 0; i < %d; i++)", mr);
    cg_line(e, "    for (j = 0; j < %d; j++)", nr);
    cg_line(e, "        acc[i][j] = i >= mi || j >= nj ? 0.0f");
    cg_line(e, "                    : k0 == 0 && bias ? bias[(ib + i) * si + (jp * %d + j) * sj] : c0[i * ci + j * cj];", nr);
    cg_line(e, "for (k = 0; kx[k] >= 0; k++) {");
    e->ind++;
    cg_line(e, "const float *am = pa + k * %d, *bn = pbj + kx[k] * %d;", mr, nr);
    Buf v = {0};
    for (int r = 0; r < mr; r++)
        buf_printf(&v, "%sa%d = am[%d]", r ? ", " : "", r, r);
    cg_line(e, "const float %s;", v.data ? v.data : "");
    buf_free(&v);
    cg_line(e, "for (j = 0; j < %d; j++) {", nr);
    for (int r = 0; r < mr; r++)
        cg_line(e, "    acc[%d][j] += a%d * bn[j];", r, r);
    cg_line(e, "}");
    e->ind--;
    cg_line(e, "}");
    cg_line(e, "for (i = 0; i < mi; i++)");
    cg_line(e, "    for (j = 0; j < nj; j++)");
    cg_line(e, "        c0[i * ci + j * cj] = acc[i][j];");
}

static const CgTile c_tile = {TILE_ROWS(ISA_C), GEMM_NR, 0, 0, portable_tile, "in a local array whose inner loop compilers vectorize", NULL};

/* Panels of B that a row adds at once in the event-driven products. */
#define ROW_PANELS 4

/* The variants of the matrix product: plain, or with A or B given as spikes
   kept as bits (IrBufs.bits). */
enum { GEMM_FLOAT, GEMM_SPIKES_A, GEMM_SPIKES_B };

/* Element E (a C expression) of operand m ('a' or 'b') in variant v. */
static const char *elem(Emit *e, int v, char m, const char *E) {
    if ((v == GEMM_SPIKES_A && m == 'a') || (v == GEMM_SPIKES_B && m == 'b'))
        return arena_printf(e->g->arena, "(float)(%c[(%s) >> 5] >> ((%s) & 31) & 1u)", m, E, E);
    return arena_printf(e->g->arena, "%c[%s]", m, E);
}

/* The comment that opens the plain product. */
static void gemm_comment(Emit *e, const CgTile *tile, int fused) {
    const char *P = e->P;
    const int NR = tile->nr, MR = tile->mr;
    cg_line(e, "/* C(i, j) = C(i, j), or bias(i, j) when bias is given, plus the sum over k of");
    cg_line(e, "   A(i, k) B(k, j), with A(i, k) = a[i * ai + k * ak], B(k, j) = b[k * bk + j * bj],");
    cg_line(e, "   C(i, j) = c[i * ci + j * cj] and bias(i, j) = bias[i * si + j * sj].");
    cg_line(e, "   Each thread takes a range of panels of %d columns of C, or where the rows are", NR);
    cg_line(e, "   many (8 blocks a thread, half as many as the columns: then no two threads write");
    cg_line(e, "   one row of C) its range of rows and every panel, and works alone: it");
    cg_line(e, "   packs blocks of up to %d values of k of its panels into its slice of pb", GEMM_KC);
    cg_line(e, "   (%s_PACK floats, in %d slices, or one for each thread of a larger team), then", P, GEMM_SLICES);
    cg_line(e, "   for each block of %d rows of A (packed on its stack%s", MR,
            tile->inplace ? ", or" : ")");
    if (tile->inplace)
        cg_line(e, "   read in place where its rows are contiguous and it has no zero)");
    cg_line(e, "   accumulates %d x %d blocks of C:", MR, NR);
    cg_line(e, "   %s.", tile->doc);
    if (fused) {
        cg_line(e, "   Each element of C sums its terms in k order in fused multiply-adds (--math");
        cg_line(e, "   fast), whoever computes it: the result does not depend on the blocking or");
        cg_line(e, "   the number of threads. Where the values of A in a step of k are all zero");
    } else {
        cg_line(e, "   Each element of C sums its terms in k order, multiply then add, whoever");
        cg_line(e, "   computes it: the result does not depend on the blocking, the number of");
        cg_line(e, "   threads or the target. Where the values of A in a step of k are all zero");
    }
    cg_line(e, "   (spikes mostly are), the step is left out of the packed block of A, which");
    cg_line(e, "   keeps the steps' indices: adding 0 * b changes nothing.");
    cg_line(e, "   Fewer than 4 rows (a batch of 1 to 3) take a plain loop, with the same");
    cg_line(e, "   sums: packing would cost more than it saves. */");
}

/* The products of one row of A over P panels of B at once (P independent
   sums per column, so that the additions of consecutive events do not wait
   on each other), from the row's event list: in scope i (the row), jp (the
   first panel), kr, vr, src (where the sums start: C's row or the bias's),
   cr (C's row), ps, kc; with P = 1 the last panel may be partial. */
static void row_panels(Emit *e, int P, int NR, int fused) {
    const char *full = P > 1 ? "" : " && jp * %d + j < N";
    cg_line(e, "float acc[%d][%d];", P, NR);
    cg_line(e, "const float *pb0 = ps + (jp - q0) * kc * %d;", NR);
    cg_line(e, "for (p = 0; p < %d; p++)", P);
    cg_line(e, "    for (j = 0; j < %d; j++)", NR);
    if (P > 1)
        cg_line(e, "        acc[p][j] = src[(jp + p) * %d + j];", NR);
    else /* every sum set, past N too: GCC otherwise warns that they may be used unset */
        cg_line(e, "        acc[p][j] = jp * %d + j < N ? src[(jp + p) * %d + j] : 0.0f;", NR, NR);
    cg_line(e, "for (k = 0; kr[k] >= 0; k++) {");
    e->ind++;
    cg_line(e, "const float av = vr[k];");
    cg_line(e, "const float *bn = pb0 + kr[k] * %d;", NR);
    cg_line(e, "for (j = 0; j < %d; j++) {", NR);
    for (int q = 0; q < P; q++)
        cg_line(e, fused ? "    acc[%d][j] = fmaf(av, bn[%d * kc * %d + j], acc[%d][j]);" : "    acc[%d][j] += av * bn[%d * kc * %d + j];",
                q, q, NR, q);
    cg_line(e, "}");
    e->ind--;
    cg_line(e, "}");
    cg_line(e, "for (p = 0; p < %d; p++)", P);
    cg_line(e, arena_printf(e->g->arena, "    for (j = 0; j < %d%s; j++)", NR, full), NR);
    cg_line(e, "        cr[(jp + p) * %d + j] = acc[p][j];", NR);
}

/* Event-driven: when the block's rows have few values that are not zero
   (spikes at a low rate), each row adds the panels' rows of B at its own
   events only, instead of the block adding every row at every step that
   any row keeps. The choice is made per block, at run time, by the number
   of multiply-adds each way, an event weighing <NET>_EVENT_COST steps of a
   row in the block (measured: docs/targets.md), where C's rows (and the
   bias's) are contiguous. Every element of C adds the same terms in the
   same order either way: the results are the same bits. */
static void row_events(Emit *e, int NR, int MR, int fused, int inplace) {
    cg_line(e, "if (%scj == 1 && (!bias || sj == 1) && (double)events * %s_EVENT_COST < (double)nk * %d) {",
            inplace ? "!ap && " : "", e->P, MR);
    e->ind++;
    cg_line(e, "/* few events: row by row */");
    cg_line(e, "short kr[%d]; /* the row's steps of k where its value is not zero; then -1 */", GEMM_KC + 1);
    cg_line(e, "float vr[%d]; /* and those values */", GEMM_KC);
    cg_line(e, "long p, n;");
    cg_line(e, "for (i = 0; i < mi; i++) {");
    e->ind++;
    cg_line(e, "const float *src = k0 == 0 && bias ? bias + (ib + i) * si : c + (ib + i) * ci;");
    cg_line(e, "float *cr = c + (ib + i) * ci;");
    cg_line(e, "for (k = n = 0; kx[k] >= 0; k++) {");
    cg_line(e, "    kr[n] = kx[k];");
    cg_line(e, "    vr[n] = pa[k * %d + i];", MR);
    cg_line(e, "    n += vr[n] != 0.0f;");
    cg_line(e, "}");
    cg_line(e, "kr[n] = -1;");
    cg_line(e, "if (n == 0 && src == cr) /* nothing to add */");
    cg_line(e, "    continue;");
    cg_line(e, "for (jp = q0; jp + %d <= q1 && (jp + %d) * %d <= N; jp += %d) { /* %d whole panels at a time */",
            ROW_PANELS, ROW_PANELS, NR, ROW_PANELS, ROW_PANELS);
    e->ind++;
    row_panels(e, ROW_PANELS, NR, fused);
    e->ind--;
    cg_line(e, "}");
    cg_line(e, "for (; jp < q1; jp++) {");
    e->ind++;
    row_panels(e, 1, NR, fused);
    e->ind--;
    cg_line(e, "}");
    e->ind--;
    cg_line(e, "}");
    cg_line(e, "continue;");
    e->ind--;
    cg_line(e, "}");
}

/* Unpacking spikes a word at a time, where the words line up with the
   packed block: a panel's row of B, or a run of up to 32 steps of k of a
   row of A or a column of B, is one word shifted. The values are those of
   elem(); the loops over a panel's columns (or the block's rows)
   vectorize, where a bit at a time costs a multiply, two shifts and a load
   per value, which for a narrow layer (10 outputs over spikes) cost more
   than the product.

   word_runs: the steps k .. kc - 1 of R rows of A (or columns of B, x
   their index) in runs that lie in one word each: word(x) is the word of
   row x that holds step e0 = k0 + k, shifted to it, and dst, an element
   left open ("pa[k * 12 + i"), is where step k of row x goes, step k + s
   at s * stride further. */
static void word_runs(Emit *e, int R, char x, const char *word, const char *dst, int stride) {
    cg_line(e, "for (k = 0; k < kc;) {");
    e->ind++;
    cg_line(e, "const long e0 = k0 + k, n = 32 - (e0 & 31) < kc - k ? 32 - (e0 & 31) : kc - k;");
    cg_line(e, "uint32_t wd[%d];", R);
    cg_line(e, "long s;");
    cg_line(e, "for (%c = 0; %c < %d; %c++)", x, x, R, x);
    cg_line(e, "    wd[%c] = %s;", x, word);
    cg_line(e, "for (s = 0; s < n; s++)");
    cg_line(e, "    for (%c = 0; %c < %d; %c++)", x, x, R, x);
    cg_line(e, "        %s + s * %d] = (float)(wd[%c] >> s & 1u);", dst, stride, x);
    cg_line(e, "k += n;");
    e->ind--;
    cg_line(e, "}");
}

/* NR divides 32: a panel's row is part of one word */
static void pack_b_words(Emit *e, int NR) {
    cg_line(e, "if (bj == 1 && bk %% 32 == 0) { /* rows of B are contiguous: a panel's row is (part of) a word */");
    cg_line(e, "    for (k = 0; k < kc; k++)");
    cg_line(e, "        for (jp = q0; jp < q1; jp++) {");
    cg_line(e, "            const uint32_t wd = b[((k0 + k) * bk >> 5) + (jp * %d >> 5)] >> (jp * %d & 31);", NR, NR);
    cg_line(e, "            float *d = ps + ((jp - q0) * kc + k) * %d;", NR);
    cg_line(e, "            for (j = 0; j < %d; j++)", NR);
    cg_line(e, "                d[j] = jp * %d + j < N ? (float)(wd >> j & 1u) : 0.0f;", NR);
    cg_line(e, "        }");
    cg_line(e, "} else if (bk == 1 && bj %% 32 == 0) { /* columns are: a word is up to 32 steps of a column */");
    e->ind++;
    cg_line(e, "for (jp = q0; jp < q1; jp++)");
    e->ind++;
    word_runs(e, NR, 'j',
              arena_printf(e->g->arena, "jp * %d + j < N ? b[(jp * %d + j) * (bj >> 5) + (e0 >> 5)] >> (e0 & 31) : 0u", NR, NR),
              arena_printf(e->g->arena, "ps[((jp - q0) * kc + k) * %d + j", NR), NR);
    e->ind -= 2;
    cg_line(e, "} else { /* a bit at a time */");
}

static void copy_a_words(Emit *e, int MR) {
    cg_line(e, "if (ak == 1 && ai %% 32 == 0) /* rows of A are contiguous: a word is up to 32 steps of a row */");
    e->ind++;
    word_runs(e, MR, 'i', "a[(ra[i] + e0) >> 5] >> (e0 & 31)", arena_printf(e->g->arena, "pa[k * %d + i", MR), MR);
    e->ind--;
}

/* <p>_gemm<suffix>: fewer than 4 rows take the plain loop; else the part
   of each thread, where
   more than one can run the product, else the whole product in a call
   that the compiler can specialize for the call's constants (in the body
   of a parallel region, which compilers outline into a function of their
   own, it cannot: the MLP's 784-to-512 product took 5 % longer). */
/* The entry of the product: a plain loop for fewer than 4 rows, else the
   blocks (<p>_gemm<sfx>_part), called directly on one thread or from each
   thread of a parallel region. The threads split the panels of C, or,
   where A is floats, each gets at least 8 blocks of rows and the rows are
   at least half as many as the columns, the rows: split by panels, every
   thread writes a part of every row of C, and where C is large the cores'
   prefetchers fetch each other's lines (the MLP's readout gradient gx,
   1024 x 512 with K = 10, took 146 us on 2 threads against 110 on one;
   split by rows, 62). */
/* Whether a convolution's threads can take chunks of samples of their own
   (ck_conv_fwd): one whose chunk has more than one sample. */
static int conv_teams(const IrGraph *g) {
    for (int i = 0; i < g->nodes.len; i++)
        if (!g->nodes.items[i].dead && g->nodes.items[i].op == IR_CONV2D && conv_chunk(g, &g->nodes.items[i]) > 1)
            return 1;
    return 0;
}

/* The product without a packed block (fewer than 4 rows), 8 columns of C
   at a time, on threads where par. */
static void gemm_plain(Emit *e, int v, int fused, int par) {
    if (par)
        cg_par_for(e, "M * N * K");
    cg_line(e, "for (long j0 = 0; j0 < N; j0 += 8) {");
    cg_line(e, "    const long nj = N - j0 < 8 ? N - j0 : 8;");
    cg_line(e, "    long i, j, k;");
    cg_line(e, "    for (i = 0; i < M; i++) {");
    cg_line(e, "        float acc[8];");
    cg_line(e, "        for (j = 0; j < nj; j++)");
    cg_line(e, "            acc[j] = bias ? bias[i * si + (j0 + j) * sj] : c[i * ci + (j0 + j) * cj];");
    cg_line(e, "        for (k = 0; k < K; k++) {");
    cg_line(e, "            const float aik = %s;", elem(e, v, 'a', "i * ai + k * ak"));
    cg_line(e, "            for (j = 0; j < nj; j++)");
    if (fused)
        cg_line(e, "                acc[j] = fmaf(aik, %s, acc[j]);", elem(e, v, 'b', "k * bk + (j0 + j) * bj"));
    else
        cg_line(e, "                acc[j] += aik * %s;", elem(e, v, 'b', "k * bk + (j0 + j) * bj"));
    cg_line(e, "        }");
    cg_line(e, "        for (j = 0; j < nj; j++)");
    cg_line(e, "            c[i * ci + (j0 + j) * cj] = acc[j];");
    cg_line(e, "    }");
    cg_line(e, "}");
}

/* A product of fewer than 4 rows, or of a build without a packed block: the
   plain loop, on threads where par. */
static void gemm_small(Emit *e, int NR, int v, int fused, int par) {
    cg_line(e, "if (M < 4 || %s_PACK < %d) { /* (no packed block: no product of 4 rows or more) */", e->P, NR);
    e->ind++;
    gemm_plain(e, v, fused, par);
    cg_line(e, "return;");
    e->ind--;
    cg_line(e, "}");
}

static void gemm_head(Emit *e, const char *name, const char *ta, const char *tb, const char *last) {
    cg_line(e, "static void %s_%s(long M, long N, long K, const %s *a, long ai, long ak, const %s *b,", e->p, name, ta, tb);
    cg_line(e, "                    long bk, long bj, float *c, long ci, long cj, const float *bias, long si,");
    cg_line(e, "                    long sj, float *pb%s)", last);
}

static void gemm_entry(Emit *e, int NR, int MR, int v, int fused, const char *suffix, const char *ta, const char *tb) {
    const char *p = e->p, *P = e->P;
    const char *args = "M, N, K, a, ai, ak, b, bk, bj, c, ci, cj, bias, si, sj, pb";
    if (v == GEMM_FLOAT && conv_teams(e->g)) {
        cg_line(e, "#ifdef _OPENMP");
        cg_line(e, "/* The product as thread id of a team of nt that each compute a product of");
        cg_line(e, "   their own (a convolution's chunks of samples): this thread's slice of pb. */");
        gemm_head(e, "gemm_in", ta, tb, ", long id, long nt");
        cg_line(e, "{");
        e->ind++;
        gemm_small(e, NR, v, fused, 0);
        cg_line(e, "%s_gemm_part(%s, id, nt, 1);", p, args);
        e->ind--;
        cg_line(e, "}");
        cg_line(e, "#endif");
        cg_blank(e);
    }
    gemm_head(e, arena_printf(e->g->arena, "gemm%s", suffix), ta, tb, "");
    cg_line(e, "{");
    e->ind++;
    gemm_small(e, NR, v, fused, 1);
    cg_line(e, "#ifdef _OPENMP");
    cg_line(e, "if (M * N * K >= %s_PARALLEL_WORK && omp_get_max_threads() > 1) {", P);
    e->ind++;
    cg_line(e, "%s_OMP(omp parallel)", P);
    cg_line(e, "{");
    cg_line(e, "    /* at most one thread per %d floats of pb (the others have nothing to do) */", NR);
    cg_line(e, "    long nt = omp_get_num_threads(), id = omp_get_thread_num();");
    cg_line(e, "    nt = nt < %s_PACK / %d ? nt : %s_PACK / %d;", P, NR, P, NR);
    if (v != GEMM_SPIKES_A) { /* rows of bits need not start on a word */
        cg_line(e, "    const long nb = (M + %d) / %d; /* blocks of rows */", MR - 1, MR);
        cg_line(e, "    if (id < nt && nb >= 8 * nt && 2 * M >= N) { /* this thread's rows [r0, r1), every panel */");
        cg_line(e, "        const long r0 = nb * id / nt * %d, r1 = nb * (id + 1) / nt * %d < M ? nb * (id + 1) / nt * %d : M;",
                MR, MR, MR);
        cg_line(e, "        %s_gemm%s_part(r1 - r0, N, K, a + r0 * ai, ai, ak, b, bk, bj, c + r0 * ci, ci, cj,", p, suffix);
        cg_line(e, "                    bias ? bias + r0 * si : bias, si, sj, pb, id, nt, 1);");
        cg_line(e, "    } else if (id < nt)");
    } else
        cg_line(e, "    if (id < nt)");
    cg_line(e, "        %s_gemm%s_part(%s, id, nt, 0);", p, suffix, args);
    cg_line(e, "}");
    cg_line(e, "return;");
    e->ind--;
    cg_line(e, "}");
    cg_line(e, "#endif");
    cg_line(e, "%s_gemm%s_part(%s, 0, 1, 0);", p, suffix, args);
    e->ind--;
    cg_line(e, "}");
}

/* The packing of A's block of rows [ib, ib + mi) and steps [k0, k0 + kc)
   into pa, which sets kx, nk and events (in scope: zeros, empty, ra, and
   ap where the tile reads A in place). The block is copied (the rows past
   M as copies of its first row, then zeroed, so that the copy tests no
   row), or, where the tile can, read in place: where A's rows are
   contiguous, when it has no zero (the count that decides costs a pass
   over the rows, which the compiler vectorizes, where the copy gathers 12
   rows a value at a time). Where its columns are contiguous (a step's
   values are: the transpose of a gradient, as in a dense layer's weight
   gradient) the copy is a step's values at a time and costs less than
   reading them in place, a step of k (a row of the gradient) apart, often
   a multiple of 4 KB that maps every step to one set of the L1 cache: the
   weight gradient of Linear(1024, 1024) over 1600 rows took 32.4 ms in
   place and 28.9 ms packed on an Intel Xeon (bench/RESULTS.md). Then the
   copy's zeros are counted in one pass over it; a block without zeros, or
   without a step of zeros only, keeps every step as it is: a product of
   dense values, or of gradients with some zeros, compacts nothing. */
static void pack_a(Emit *e, const CgTile *tile, int v) {
    const int MR = tile->mr;
    int inplace = v == GEMM_FLOAT && tile->inplace;
    if (inplace) {
        cg_line(e, "if (ak == 1 && mi == %d) { /* rows of A are contiguous */", MR);
        cg_line(e, "    for (i = 0; i < %d; i++)", MR);
        cg_line(e, "        for (k = 0; k < kc; k++)");
        cg_line(e, "            zeros += a[ra[i] + k0 + k] == 0.0f;");
        cg_line(e, "    if (zeros == 0)");
        cg_line(e, "        ap = a + ra[0] + k0;");
        cg_line(e, "}");
        cg_line(e, "if (!ap) {");
        e->ind++;
        cg_line(e, "zeros = 0;");
    }
    if (v == GEMM_SPIKES_A) {
        copy_a_words(e, MR);
        cg_line(e, "else");
        e->ind++;
    }
    if (v == GEMM_FLOAT) {
        cg_line(e, "if (ai == 1 && mi == %d) /* columns of A are contiguous: a step's values are */", MR);
        cg_line(e, "    for (k = 0; k < kc; k++)");
        cg_line(e, "        for (i = 0; i < %d; i++)", MR);
        cg_line(e, "            pa[k * %d + i] = a[ra[0] + (k0 + k) * ak + i];", MR);
        cg_line(e, "else");
        e->ind++;
    }
    cg_line(e, "for (k = 0; k < kc; k++) /* copy */");
    cg_line(e, "    for (i = 0; i < %d; i++)", MR);
    cg_line(e, "        pa[k * %d + i] = %s;", MR, elem(e, v, 'a', "ra[i] + (k0 + k) * ak"));
    if (v != GEMM_FLOAT)
        e->ind--;
    if (v == GEMM_FLOAT)
        e->ind--;
    cg_line(e, "for (k = 0; mi < %d && k < kc; k++)", MR);
    cg_line(e, "    for (i = mi; i < %d; i++)", MR);
    cg_line(e, "        pa[k * %d + i] = 0.0f;", MR);
    cg_line(e, "for (k = 0; k < kc * %d; k++)", MR);
    cg_line(e, "    zeros += pa[k] == 0.0f;");
    cg_line(e, "for (k = 0; zeros >= %d && k < kc; k++) { /* the steps whose values are all zero */", MR);
    cg_line(e, "    for (i = 0; i < %d && pa[k * %d + i] == 0.0f; i++)", MR, MR);
    cg_line(e, "        ;");
    cg_line(e, "    empty += i == %d;", MR);
    cg_line(e, "}");
    if (inplace) {
        e->ind--;
        cg_line(e, "}");
    }
    cg_line(e, "events = kc * %d - zeros;", MR);
    cg_line(e, "if (empty == 0) { /* every step has values */");
    cg_line(e, "    for (k = 0; k < kc; k++)");
    cg_line(e, "        kx[k] = (short)k;");
    cg_line(e, "    nk = kc;");
    cg_line(e, "} else /* keep the steps with a value */");
    cg_line(e, "    for (k = 0; k < kc; k++) {");
    cg_line(e, "        int nz = 0;");
    cg_line(e, "        for (i = 0; i < %d; i++) {", MR);
    cg_line(e, "            nz |= pa[k * %d + i] != 0.0f;", MR);
    cg_line(e, "            pa[nk * %d + i] = pa[k * %d + i]; /* nk <= k */", MR, MR);
    cg_line(e, "        }");
    cg_line(e, "        kx[nk] = (short)k;");
    cg_line(e, "        nk += nz;");
    cg_line(e, "    }");
    cg_line(e, "kx[nk] = -1;");
    if (tile->pad) {
        cg_line(e, "for (i = 0; i < %d; i++) /* read past the last step's values */", tile->pad);
        cg_line(e, "    pa[nk * %d + i] = 0.0f;", MR);
    }
}

/* A's block from the cache (ac), where a group before this one packed it,
   else packed (into the cache where there is one, with its list of steps
   after it). */
static void cache_a(Emit *e, const CgTile *tile, int v) {
    const int MR = tile->mr, inplace = v == GEMM_FLOAT && tile->inplace;
    cg_line(e, "if (ac && q0 > p0) { /* packed in the first group: its list of steps back */");
    e->ind++;
    cg_line(e, "const float *ex = pa + %d;", GEMM_KC * MR + ACACHE_PAD);
    cg_line(e, "nk = (long)ex[0];");
    cg_line(e, "events = (long)ex[1];");
    if (inplace)
        cg_line(e, "ap = ex[2] != 0.0f ? a + ra[0] + k0 : 0;");
    cg_line(e, "for (k = 0; k <= nk; k++)");
    cg_line(e, "    kx[k] = (short)ex[3 + k];");
    e->ind--;
    cg_line(e, "} else {");
    e->ind++;
    pack_a(e, tile, v);
    cg_line(e, "if (ac) { /* kept for the other groups */");
    e->ind++;
    cg_line(e, "float *ex = pa + %d;", GEMM_KC * MR + ACACHE_PAD);
    cg_line(e, "ex[0] = (float)nk;");
    cg_line(e, "ex[1] = (float)events;");
    if (inplace)
        cg_line(e, "ex[2] = ap ? 1.0f : 0.0f;");
    cg_line(e, "for (k = 0; k <= nk; k++)");
    cg_line(e, "    ex[3 + k] = (float)kx[k];");
    e->ind--;
    cg_line(e, "}");
    e->ind--;
    cg_line(e, "}");
}

static void gemm(Emit *e, const CgTile *tile, int v) {
    const char *p = e->p, *P = e->P;
    const char *suffix = v == GEMM_SPIKES_A ? "_sa" : v == GEMM_SPIKES_B ? "_sb" : "";
    const int NR = tile->nr, MR = tile->mr, fused = e->fast && e->isa != ISA_C;
    cg_blank(e);
    if (v == GEMM_FLOAT)
        gemm_comment(e, tile, fused);
    else {
        int sa = v == GEMM_SPIKES_A;
        cg_line(e, "/* %s_gemm with %s given as spikes, one bit each: %s is bit E %% 32 of %s[E / 32]", p, sa ? "A" : "B",
                sa ? "A(i, k)" : "B(k, j)", sa ? "a" : "b");
        cg_line(e, "   for E = %s (a layer's spikes kept for the backward). */", sa ? "i * ai + k * ak" : "k * bk + j * bj");
    }
    int cols = v == GEMM_FLOAT && tile->pack_cols;
    if (cols)
        tile->pack_cols(e, NR);
    const char *ta = v == GEMM_SPIKES_A ? "uint32_t" : "float", *tb = v == GEMM_SPIKES_B ? "uint32_t" : "float";
    cg_line(e, "static void %s_gemm%s_part(long M, long N, long K, const %s *a, long ai, long ak, const %s *b,", p, suffix,
            ta, tb);
    cg_line(e, "                    long bk, long bj, float *c, long ci, long cj, const float *bias, long si,");
    cg_line(e, "                    long sj, float *pb, long id, long nt, int rows)");
    cg_line(e, "{");
    e->ind++;
    cg_line(e, "const long np = (N + %d) / %d; /* panels of %d columns */", NR - 1, NR, NR);
    cg_line(e, "/* this thread's panels [p0, p1) (every one where it has rows of its own) and slice of pb */");
    cg_line(e, "const long p0 = rows ? 0 : np * id / nt, p1 = rows ? np : np * (id + 1) / nt;");
    cg_line(e, "const long slice = %s_PACK / (nt > %d ? nt : %d);", P, GEMM_SLICES, GEMM_SLICES);
    cg_line(e, "const long kb = slice / %d < %d ? slice / %d : %d; /* values of k per block */", NR, GEMM_KC, NR, GEMM_KC);
    cg_line(e, "float *ps = pb + id * slice;");
    const int cached = e->acache > 0; /* a product of this network can use the cache */
    if (cached) {
        cg_line(e, "/* this thread's slice of the cache of A's packed blocks (%s_ACACHE floats), where", P);
        cg_line(e, "   its panels take more than one group and its blocks fit: each block of rows is");
        cg_line(e, "   packed in the first group and read back in the others */");
        cg_line(e, "const long as = %s_ACACHE / (nt > %d ? nt : %d);", P, GEMM_SLICES, GEMM_SLICES);
        cg_line(e, "float *const ac = p1 - p0 > slice / (kb * %d) && (M + %d) / %d * %lld <= as ? pb + %s_PACK + id * as : 0;",
                NR, MR - 1, MR, (long long)acache_stride(MR), P);
    }
    cg_line(e, "long k0, q0;");
    cg_line(e, "for (k0 = 0; k0 < K; k0 += kb) {");
    e->ind++;
    cg_line(e, "const long kc = K - k0 < kb ? K - k0 : kb, nq = slice / (kc * %d);", NR);
    cg_line(e, "for (q0 = p0; q0 < p1; q0 += nq) {");
    e->ind++;
    cg_line(e, "const long q1 = q0 + nq < p1 ? q0 + nq : p1;");
    cg_line(e, "long k, i, j, jp, ib;");
    int words = v == GEMM_SPIKES_B && 32 % NR == 0;
    if (words) {
        pack_b_words(e, NR);
        e->ind++;
    }
    cg_line(e, "if (bj == 1) /* rows of B are contiguous */");
    cg_line(e, "    for (k = 0; k < kc; k++)");
    cg_line(e, "        for (jp = q0; jp < q1; jp++)");
    cg_line(e, "            for (j = 0; j < %d; j++)", NR);
    cg_line(e, "                ps[((jp - q0) * kc + k) * %d + j] = jp * %d + j < N ? %s : 0.0f;", NR, NR,
            elem(e, v, 'b', arena_printf(e->g->arena, "(k0 + k) * bk + jp * %d + j", NR)));
    if (cols) {
        cg_line(e, "else if (bk == 1) /* columns are: whole panels transposed in registers */");
        cg_line(e, "    for (jp = q0; jp < q1; jp++)");
        cg_line(e, "        if ((jp + 1) * %d <= N)", NR);
        cg_line(e, "            %s_pack_cols(b + k0 + jp * %d * bj, bj, kc, ps + (jp - q0) * kc * %d);", p, NR, NR);
        cg_line(e, "        else");
        cg_line(e, "            for (j = 0; j < %d; j++)", NR);
        cg_line(e, "                for (k = 0; k < kc; k++)");
        cg_line(e, "                    ps[((jp - q0) * kc + k) * %d + j] = jp * %d + j < N ? b[k0 + k + (jp * %d + j) * bj] : 0.0f;",
                NR, NR, NR);
    }
    cg_line(e, "else /* columns are */");
    cg_line(e, "    for (jp = q0; jp < q1; jp++)");
    cg_line(e, "        for (j = 0; j < %d; j++)", NR);
    cg_line(e, "            for (k = 0; k < kc; k++)");
    cg_line(e, "                ps[((jp - q0) * kc + k) * %d + j] = jp * %d + j < N ? %s : 0.0f;", NR, NR,
            elem(e, v, 'b', arena_printf(e->g->arena, "(k0 + k) * bk + (jp * %d + j) * bj", NR)));
    if (words) {
        e->ind--;
        cg_line(e, "}");
    }
    cg_line(e, "for (ib = 0; ib < M; ib += %d) {", MR);
    e->ind++;
    const char *pa = cached ? "pl" : "pa"; /* the local block */
    if (tile->pad)
        cg_line(e, "float %s[%d * %d + %d];", pa, GEMM_KC, MR, tile->pad);
    else
        cg_line(e, "float %s[%d * %d];", pa, GEMM_KC, MR);
    if (cached)
        cg_line(e, "float *const pa = ac ? ac + ib / %d * %lld : pl; /* the packed block */", MR, (long long)acache_stride(MR));
    cg_line(e, "const long mi = M - ib < %d ? M - ib : %d;", MR, MR);
    cg_line(e, "short kx[%d]; /* the steps of k kept, where a value of A is not zero; then -1 */", GEMM_KC + 1);
    cg_line(e, "long nk = 0, events = 0;");
    cg_line(e, "long zeros = 0, empty = 0, ra[%d]; /* where the rows start */", MR);
    if (tile->inplace)
        cg_line(e, "const float *ap = 0; /* A's block read in place, or 0: packed%s */",
                v == GEMM_FLOAT ? "" : " (spikes always are)");
    cg_line(e, "for (i = 0; i < %d; i++)", MR);
    cg_line(e, "    ra[i] = (ib + (i < mi ? i : 0)) * ai;");
    if (cached)
        cache_a(e, tile, v);
    else
        pack_a(e, tile, v);
    row_events(e, NR, MR, fused, tile->inplace);
    cg_line(e, "for (jp = q0; jp < q1; jp++) {");
    e->ind++;
    cg_line(e, "const long nj = N - jp * %d < %d ? N - jp * %d : %d;", NR, NR, NR, NR);
    cg_line(e, "const float *pbj = ps + (jp - q0) * kc * %d;", NR);
    cg_line(e, "float *c0 = c + ib * ci + jp * %d * cj;", NR);
    tile->emit(e, MR, NR);
    for (int k = 0; k < 4; k++) { /* jp, ib, q0, k0 */
        e->ind--;
        cg_line(e, "}");
    }
    cg_line(e, "(void)bias;");
    e->ind--;
    cg_line(e, "}");
    gemm_entry(e, NR, MR, v, fused, suffix, ta, tb);
}

/* ---- the products of narrow layers ---- */

/* A dense layer of at most NARROW outputs over more rows than outputs (a
   readout of 10 classes over T x B rows) fills a third of the general
   product's panels, and for the forward it would pack the whole input,
   transposed. Its own products instead keep a row's outputs in one vector
   of NARROW sums (NARROW, above), its input read in place: each row's
   outputs sum their bias (or C), then the inputs in order, as the general
   product does, so the results are the same bits. On spikes kept as bits
   they are event-driven (a spike adds its weights, exactly): the forward
   and the weight gradient. */

/* Which of their own products the narrow layers call: bit 0 the forward
   on floats, bit 1 the weight gradient on bits, bit 2 the forward on bits;
   bit 3: a wider layer on bits calls the general product's _sb variant. */
static int narrow_uses(Emit *e) {
    const IrGraph *g = e->g;
    int use = 0;
    for (int i = 0; i < g->nodes.len; i++) {
        const IrNode *x = &g->nodes.items[i];
        if (x->dead || x->op != IR_DENSE)
            continue;
        int bits = g->train && g->trainp.planned && g->trainp.at[x->in[0]].bits;
        if (x->out > NARROW)
            use |= bits ? 8 : 0;
        else
            use |= 1 | (bits ? 2 | 4 : 0); /* inference reads floats */
    }
    return use;
}

/* <p>_pack_n: w^T (or dw^T) into pb, K rows of NARROW, zeros past O. (The
   narrow products call their inputs K: SIMDe's AVX-512 headers include
   <complex.h>, whose I is a macro.) */
static void narrow_pack(Emit *e) {
    cg_blank(e);
    cg_line(e, "/* pb(k, o) = w[o * K + k] for o < O, 0 up to %d: w^T in rows of %d. */", NARROW, NARROW);
    cg_line(e, "static void %s_pack_n(long O, long K, const float *w, float *pb)", e->p);
    cg_line(e, "{");
    cg_line(e, "    long k, o;");
    cg_line(e, "    for (k = 0; k < K; k++)");
    cg_line(e, "        for (o = 0; o < %d; o++)", NARROW);
    cg_line(e, "            pb[k * %d + o] = o < O ? w[o * K + k] : 0.0f;", NARROW);
    cg_line(e, "}");
}

/* The narrow forward's cost of a value that is not zero, row by row,
   against a step of a row of its dense block (docs/targets.md). */
#define NARROW_EVENT_COST "4.0"

/* The rows a block of the narrow forward on bits sums at once. */
#define NARROW_SPIKE_ROWS 4

/* The helpers of the narrow products: the lowest bit set, and for those
   on bits (`bits`), 64 of them and a vector of NARROW sums added to. */
static void narrow_helpers(Emit *e, int bits) {
    cg_blank(e);
    cg_line(e, "/* The index of the lowest bit set in m (not 0). */");
    cg_line(e, "static int %s_ctz(uint64_t m)", e->p);
    cg_line(e, "{");
    cg_line(e, "#if defined(__GNUC__) || defined(__clang__)");
    cg_line(e, "    return __builtin_ctzll(m);");
    cg_line(e, "#else");
    cg_line(e, "    int n = 0;");
    cg_line(e, "    for (; !(m & 1u); m >>= 1)");
    cg_line(e, "        n++;");
    cg_line(e, "    return n;");
    cg_line(e, "#endif");
    cg_line(e, "}");
    if (!bits)
        return;
    cg_blank(e);
    cg_line(e, "/* Words w and w + 1 of spikes x, 64 of them, w + 1 where it is below n. */");
    cg_line(e, "static uint64_t %s_word64(const uint32_t *x, long w, long n)", e->p);
    cg_line(e, "{");
    cg_line(e, "    return x[w] | (w + 1 < n ? (uint64_t)x[w + 1] << 32 : 0);");
    cg_line(e, "}");
    cg_blank(e);
    cg_line(e, "/* d[j] += g[j] for j < %d: in vectors where the compiler has them (GCC and clang", NARROW);
    cg_line(e, "   do not vectorize the loop here, whose sums live in registers). */");
    cg_line(e, "static void %s_add16(float *d, const float *g)", e->p);
    cg_line(e, "{");
    cg_line(e, "#if defined(__GNUC__) || defined(__clang__)");
    cg_line(e, "    typedef float v16 __attribute__((vector_size(%d)));", NARROW * 4);
    cg_line(e, "    v16 a, b;");
    cg_line(e, "    memcpy(&a, d, sizeof a);");
    cg_line(e, "    memcpy(&b, g, sizeof b);");
    cg_line(e, "    a += b;");
    cg_line(e, "    memcpy(d, &a, sizeof a);");
    cg_line(e, "#else");
    cg_line(e, "    int j;");
    cg_line(e, "    for (j = 0; j < %d; j++)", NARROW);
    cg_line(e, "        d[j] += g[j];");
    cg_line(e, "#endif");
    cg_line(e, "}");
}

/* <p>_gemm_ns: the forward of a narrow layer on spikes kept as bits. A
   spike adds its weights and no spike adds nothing, so each row adds the
   packed rows of w^T at its spikes only, in order: the same sums, term by
   term, as the product that multiplies by every 0 and 1 (a term w x 1 is
   w exactly; x 0 it adds a zero). The rows of a block each keep their
   vector of sums in registers (one array each, which GCC keeps in
   registers where an array of arrays it keeps in memory), and add their
   spikes in one loop while each has some left: a row's additions depend
   on each other, the rows' do not (one row at a time waited on each
   addition: 127 against 108 us for the MLP's readout at a rate of 0.39,
   bench/RESULTS.md). */
static void narrow_fwd_spikes(Emit *e) {
    const char *p = e->p;
    const int R = NARROW_SPIKE_ROWS;
    cg_blank(e);
    cg_line(e, "/* y(r, o) = bias(o), or y(r, o) where bias is 0, plus the sum over k of x(r, k) w(o, k), for a");
    cg_line(e, "   layer of O <= %d outputs whose input is spikes: x(r, k) bit k %% 32 of x[r * K / 32 + k / 32],",
            NARROW);
    cg_line(e, "   w(o, k) = w[o * K + k], y(r, o) = y[r * O + o], K a multiple of 32. w^T is packed into pb,");
    cg_line(e, "   K rows of %d (zeros past O); each of a block's %d rows adds the rows of its spikes, in order. */",
            NARROW, R);
    cg_line(e, "static void %s_gemm_ns(long rows, long O, long K, const uint32_t *x, const float *w, const float *bias,",
            p);
    cg_line(e, "                     float *y, float *pb)");
    cg_line(e, "{");
    e->ind++;
    cg_line(e, "const long nw = K / 32; /* words a row */");
    cg_line(e, "%s_pack_n(O, K, w, pb);", p);
    cg_par_for(e, fmt(e, "rows * K * %lld", 2));
    cg_line(e, "for (long r0 = 0; r0 < rows; r0 += %d) {", R);
    e->ind++;
    cg_line(e, "const long nr = rows - r0 < %d ? rows - r0 : %d;", R, R);
    Buf d = {0};
    for (int r = 0; r < R; r++)
        buf_printf(&d, "%sa%d[%d]", r ? ", " : "", r, NARROW);
    cg_line(e, "float %s;", d.data);
    buf_free(&d);
    cg_line(e, "const uint32_t *xr[%d]; /* the rows' spikes (past the last: the first row's) */", R);
    cg_line(e, "long r, o, n;");
    cg_line(e, "for (r = 0; r < %d; r++)", R);
    cg_line(e, "    xr[r] = x + (r0 + (r < nr ? r : 0)) * nw;");
    cg_line(e, "for (o = 0; o < %d; o++) {", NARROW);
    for (int r = 0; r < R; r++)
        cg_line(e, "    a%d[o] = o >= O || nr <= %d ? 0.0f : bias ? bias[o] : y[(r0 + %d) * O + o];", r, r, r);
    cg_line(e, "}");
    cg_line(e, "for (n = 0; n < nw; n += 2) { /* 64 spikes at a time */");
    e->ind++;
    cg_line(e, "const float *wb = pb + n * 32 * %d;", NARROW);
    Buf m = {0}, all = {0}, next = {0};
    for (int r = 0; r < R; r++) {
        buf_printf(&m, "%sm%d = %s_word64(xr[%d], n, nw)", r ? ", " : "", r, p, r);
        buf_printf(&all, "%sm%d", r ? " && " : "", r);
        buf_printf(&next, "%sm%d &= m%d - 1", r ? ", " : "", r, r);
    }
    cg_line(e, "uint64_t %s;", m.data);
    cg_line(e, "for (; %s; %s) { /* while every row has spikes left: %d chains of sums */", all.data, next.data, R);
    for (int r = 0; r < R; r++)
        cg_line(e, "    %s_add16(a%d, wb + %s_ctz(m%d) * %d);", p, r, p, r, NARROW);
    cg_line(e, "}");
    buf_free(&m);
    buf_free(&all);
    buf_free(&next);
    for (int r = 0; r < R; r++) {
        cg_line(e, "for (; m%d; m%d &= m%d - 1)", r, r, r);
        cg_line(e, "    %s_add16(a%d, wb + %s_ctz(m%d) * %d);", p, r, p, r, NARROW);
    }
    e->ind--;
    cg_line(e, "}");
    cg_line(e, "for (o = 0; o < O; o++) {");
    cg_line(e, "    y[r0 * O + o] = a0[o];");
    for (int r = 1; r < R; r++) {
        cg_line(e, "    if (nr > %d)", r);
        cg_line(e, "        y[(r0 + %d) * O + o] = a%d[o];", r, r);
    }
    cg_line(e, "}");
    e->ind--;
    cg_line(e, "}");
    e->ind--;
    cg_line(e, "}");
}

/* The rows a block of the narrow forward sums at once: independent sums
   that hide the latency of the additions, in the registers there are. */
static int narrow_rows(Emit *e) { return e->isa == ISA_AVX512 ? 8 : 4; }

/* The helpers of the narrow forward's events: the bits of the values of
   x[0 .. n) that are not zero (n at most 64; a NaN is not zero, as it is
   not for the product that multiplies by it), and d += s g over NARROW
   values, rounded as the product's multiply-adds are. */
static void narrow_event_helpers(Emit *e, int fused) {
    const char *p = e->p;
    cg_blank(e);
    cg_line(e, "/* Bit j set where x[j] is not zero (a NaN is not), j < n <= 64. */");
    cg_line(e, "static uint64_t %s_nonzero64(const float *x, long n)", p);
    cg_line(e, "{");
    e->ind++;
    cg_line(e, "uint64_t m = 0;");
    cg_line(e, "long j;");
    if (e->isa == ISA_AVX512) {
        cg_line(e, "if (n == 64) {");
        cg_line(e, "    for (j = 0; j < 64; j += 16)");
        cg_line(e, "        m |= (uint64_t)_mm512_cmp_ps_mask(_mm512_loadu_ps(x + j), _mm512_setzero_ps(), _CMP_NEQ_UQ) << j;");
        cg_line(e, "    return m;");
        cg_line(e, "}");
    } else if (e->isa == ISA_AVX2) {
        cg_line(e, "if (n == 64) {");
        cg_line(e, "    for (j = 0; j < 64; j += 8)");
        cg_line(e, "        m |= (uint64_t)(unsigned)_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(x + j), "
                   "_mm256_setzero_ps(), _CMP_NEQ_UQ)) << j;");
        cg_line(e, "    return m;");
        cg_line(e, "}");
    }
    cg_line(e, "for (j = 0; j < n; j++)");
    cg_line(e, "    m |= (uint64_t)(x[j] != 0.0f) << j;");
    cg_line(e, "return m;");
    e->ind--;
    cg_line(e, "}");
    cg_blank(e);
    cg_line(e, "/* d[j] %s for j < %d. */", fused ? "= fmaf(s, g[j], d[j])" : "+= s * g[j]", NARROW);
    cg_line(e, "static void %s_madd16(float *d, float s, const float *g)", p);
    cg_line(e, "{");
    e->ind++;
    if (fused && e->isa == ISA_AVX512) {
        cg_line(e, "__m512 a;");
        cg_line(e, "memcpy(&a, d, sizeof a);");
        cg_line(e, "a = _mm512_fmadd_ps(_mm512_set1_ps(s), _mm512_loadu_ps(g), a);");
        cg_line(e, "memcpy(d, &a, sizeof a);");
    } else if (fused) {
        cg_line(e, "__m256 a, b;");
        cg_line(e, "memcpy(&a, d, sizeof a);");
        cg_line(e, "memcpy(&b, d + 8, sizeof b);");
        cg_line(e, "a = _mm256_fmadd_ps(_mm256_set1_ps(s), _mm256_loadu_ps(g), a);");
        cg_line(e, "b = _mm256_fmadd_ps(_mm256_set1_ps(s), _mm256_loadu_ps(g + 8), b);");
        cg_line(e, "memcpy(d, &a, sizeof a);");
        cg_line(e, "memcpy(d + 8, &b, sizeof b);");
    } else {
        cg_line(e, "#if defined(__GNUC__) || defined(__clang__)");
        cg_line(e, "typedef float v16 __attribute__((vector_size(%d)));", NARROW * 4);
        cg_line(e, "v16 a, b;");
        cg_line(e, "memcpy(&a, d, sizeof a);");
        cg_line(e, "memcpy(&b, g, sizeof b);");
        cg_line(e, "a += s * b;");
        cg_line(e, "memcpy(d, &a, sizeof a);");
        cg_line(e, "#else");
        cg_line(e, "int j;");
        cg_line(e, "for (j = 0; j < %d; j++)", NARROW);
        cg_line(e, "    d[j] += s * g[j];");
        cg_line(e, "#endif");
    }
    e->ind--;
    cg_line(e, "}");
}

/* <p>_gemm_n: the forward of a narrow layer. A block whose rows are mostly
   zero (spikes at a low rate) goes row by row at each row's values that
   are not zero only, in order: the same terms in the same order as the
   dense block, which adds a zero for each of the others. Where the rows'
   values are all zero, as the MLP's hidden spikes are on the benchmark's
   input with its initial weights, the readout took 153 us of a forward of
   1.27 ms. The block's first row's count of values that are not zero
   decides: below K / <NET>_NARROW_EVENT_COST. */
static void narrow_fwd(Emit *e) {
    const char *p = e->p, *P = e->P;
    const int R = narrow_rows(e), fused = e->fast && e->isa != ISA_C;
    narrow_event_helpers(e, fused);
    cg_blank(e);
    cg_line(e, "/* A value that is not zero, against a step of the narrow product's dense block");
    cg_line(e, "   (docs/targets.md); a large value turns its events off, 0 takes them always. */");
    cg_line(e, "#ifndef %s_NARROW_EVENT_COST", P);
    cg_line(e, "#define %s_NARROW_EVENT_COST %s", P, NARROW_EVENT_COST);
    cg_line(e, "#endif");
    cg_blank(e);
    cg_line(e, "/* Rows r0 .. r0 + nr - 1 of <p>_gemm_n, each adding its inputs that are not zero only. */");
    cg_line(e, "static void %s_gemm_n_rows(long r0, long nr, long O, long K, const float *x, const float *bias, float *y,", p);
    cg_line(e, "                         const float *pb)");
    cg_line(e, "{");
    e->ind++;
    cg_line(e, "long r, k, o;");
    cg_line(e, "for (r = 0; r < nr; r++) {");
    e->ind++;
    cg_line(e, "const float *xr = x + (r0 + r) * K;");
    cg_line(e, "float a[%d];", NARROW);
    cg_line(e, "long k0;");
    cg_line(e, "for (o = 0; o < %d; o++)", NARROW);
    cg_line(e, "    a[o] = o >= O ? 0.0f : bias ? bias[o] : y[(r0 + r) * O + o];");
    cg_line(e, "for (k0 = 0; k0 < K; k0 += 64)");
    cg_line(e, "    for (uint64_t m = %s_nonzero64(xr + k0, K - k0 < 64 ? K - k0 : 64); m; m &= m - 1) {", p);
    cg_line(e, "        k = k0 + %s_ctz(m);", p);
    cg_line(e, "        %s_madd16(a, xr[k], pb + k * %d);", p, NARROW);
    cg_line(e, "    }");
    cg_line(e, "for (o = 0; o < O; o++)");
    cg_line(e, "    y[(r0 + r) * O + o] = a[o];");
    e->ind--;
    cg_line(e, "}");
    e->ind--;
    cg_line(e, "}");
    cg_blank(e);
    cg_line(e, "/* The block of rows from r0 of <p>_gemm_n: a function of its own, so that compilers");
    cg_line(e, "   keep its sums in registers in the body of a parallel loop too. */");
    cg_line(e, "static void %s_gemm_n_block(long r0, long rows, long O, long K, const float *x, const float *bias, float *y,", p);
    cg_line(e, "                          const float *pb)");
    cg_line(e, "{");
    e->ind++;
    cg_line(e, "const long nr = rows - r0 < %d ? rows - r0 : %d;", R, R);
    cg_line(e, "float acc[%d][%d];", R, NARROW);
    cg_line(e, "long ra[%d], r, k, o, events = 0; /* where the rows start (past the last: the first again) */", R);
    cg_line(e, "for (k = 0; k < K; k++) /* the first row's values that are not zero */");
    cg_line(e, "    events += x[r0 * K + k] != 0.0f;");
    cg_line(e, "if ((double)events * %s_NARROW_EVENT_COST < (double)K) { /* row by row, at the values */", P);
    cg_line(e, "    %s_gemm_n_rows(r0, nr, O, K, x, bias, y, pb);", p);
    cg_line(e, "    return;");
    cg_line(e, "}");
    cg_line(e, "for (r = 0; r < %d; r++) {", R);
    cg_line(e, "    ra[r] = (r0 + (r < nr ? r : 0)) * K;");
    cg_line(e, "    for (o = 0; o < %d; o++)", NARROW);
    cg_line(e, "        acc[r][o] = r >= nr || o >= O ? 0.0f : bias ? bias[o] : y[(r0 + r) * O + o];");
    cg_line(e, "}");
    cg_line(e, "for (k = 0; k < K; k++) {");
    e->ind++;
    cg_line(e, "const float *wk = pb + k * %d;", NARROW);
    for (int r0 = 0; r0 < R; r0 += 4) { /* four values a line */
        Buf v = {0};
        for (int r = r0; r < r0 + 4 && r < R; r++)
            buf_printf(&v, "%sa%d = x[ra[%d] + k]", r > r0 ? ", " : "", r, r);
        cg_line(e, "const float %s;", v.data ? v.data : "");
        buf_free(&v);
    }
    cg_line(e, "for (o = 0; o < %d; o++) {", NARROW);
    for (int r = 0; r < R; r++)
        cg_line(e, fused ? "    acc[%d][o] = fmaf(a%d, wk[o], acc[%d][o]);" : "    acc[%d][o] += a%d * wk[o];", r, r, r);
    cg_line(e, "}");
    e->ind--;
    cg_line(e, "}");
    cg_line(e, "for (r = 0; r < nr; r++)");
    cg_line(e, "    for (o = 0; o < O; o++)");
    cg_line(e, "        y[(r0 + r) * O + o] = acc[r][o];");
    e->ind--;
    cg_line(e, "}");
    cg_blank(e);
    cg_line(e, "/* y(r, o) = bias(o), or y(r, o) where bias is 0, plus the sum over k of x(r, k) w(o, k), for a");
    cg_line(e, "   layer of O <= %d outputs: x(r, k) = x[r * K + k], w(o, k) = w[o * K + k], y(r, o) =", NARROW);
    cg_line(e, "   y[r * O + o]. w^T is packed into pb, K rows of %d (zeros past O); a block of %d rows keeps", NARROW, R);
    cg_line(e, "   %d x %d sums, each adding its inputs in order (%s), or where its first", R, NARROW,
            fused ? "fused multiply-adds" : "multiply then add");
    cg_line(e, "   row is mostly zero, each row adds its inputs that are not zero only. */");
    cg_line(e, "static void %s_gemm_n(long rows, long O, long K, const float *x, const float *w, const float *bias, float *y,", p);
    cg_line(e, "                    float *pb)");
    cg_line(e, "{");
    e->ind++;
    cg_line(e, "%s_pack_n(O, K, w, pb);", p);
    cg_par_for(e, fmt(e, "rows * K * %lld", NARROW));
    cg_line(e, "for (long r0 = 0; r0 < rows; r0 += %d)", R);
    cg_line(e, "    %s_gemm_n_block(r0, rows, O, K, x, bias, y, pb);", p);
    e->ind--;
    cg_line(e, "}");
}

/* dw(o, k) += the sum over rows r of gy(r, o) x(r, k) for spikes x kept as
   bits, K a multiple of 32: event-driven, since a spike adds gy's row and
   no spike adds nothing. */
static void narrow_dw(Emit *e) {
    const char *p = e->p;
    cg_blank(e);
    cg_line(e, "/* dw(o, k) += the sum over rows r of gy(r, o) x(r, k), for a layer of O <= %d outputs whose", NARROW);
    cg_line(e, "   input is spikes: gy(r, o) = gy[r * O + o], x(r, k) bit k %% 32 of x[r * K / 32 + k / 32],");
    cg_line(e, "   dw(o, k) = dw[o * K + k], K a multiple of 32. dw^T is kept in pb, K rows of %d; each", NARROW);
    cg_line(e, "   row adds its gy to the rows of its spikes only, rows in order, so that every element");
    cg_line(e, "   adds its terms in order (a spike's term is gy, exactly, however it is computed). Each");
    cg_line(e, "   thread takes a range of words of the rows. */");
    cg_line(e, "static void %s_gemm_nw_s(long rows, long O, long K, const float *gy, const uint32_t *x, float *dw, float *pb)", p);
    cg_line(e, "{");
    e->ind++;
    cg_line(e, "const long nw = K / 32; /* words a row */");
    cg_line(e, "long k, o;");
    cg_line(e, "%s_pack_n(O, K, dw, pb);", p);
    cg_par_for(e, fmt(e, "rows * K * %lld", 4));
    cg_line(e, "for (long w0 = 0; w0 < nw; w0 += 4) {");
    e->ind++;
    cg_line(e, "const long w1 = nw - w0 < 4 ? nw : w0 + 4;");
    cg_line(e, "long r, w, j;");
    cg_line(e, "for (r = 0; r < rows; r++) {");
    e->ind++;
    cg_line(e, "float g[%d];", NARROW);
    cg_line(e, "for (j = 0; j < %d; j++)", NARROW);
    cg_line(e, "    g[j] = j < O ? gy[r * O + j] : 0.0f;");
    cg_line(e, "for (w = w0; w < w1; w += 2) /* 64 spikes at a time */");
    cg_line(e, "    for (uint64_t m = %s_word64(x + r * nw, w, w1); m; m &= m - 1)", p);
    cg_line(e, "        %s_add16(pb + (w * 32 + %s_ctz(m)) * %d, g);", p, p, NARROW);
    e->ind--;
    cg_line(e, "}");
    e->ind--;
    cg_line(e, "}");
    cg_line(e, "for (k = 0; k < K; k++)");
    cg_line(e, "    for (o = 0; o < O; o++)");
    cg_line(e, "        dw[o * K + k] = pb[k * %d + o];", NARROW);
    e->ind--;
    cg_line(e, "}");
}

/* The narrow weight gradient's cost of 8 columns of a row and an output of
   its dense variant, against a spike of its events (measured by
   bench/narrow_products.py: docs/targets.md). */
#define NARROW_DENSE_COST "0.25"

/* The x86 targets' dense variant of <p>_gemm_nw_s for a layer of O outputs
   whose gradient is set: where the spikes are many, adding each row's gy
   under a mask of its spikes costs less than a spike at a time (a load, an
   add and a store, and a branch that the end of a word mispredicts). A
   function for each O, whose sums the compiler keeps in registers. */
static void narrow_dw_dense(Emit *e, long long O) {
    const char *p = e->p;
    cg_blank(e);
    cg_line(e, "/* dw(o, k) = the sum over rows r of gy(r, o) x(r, k), for the layer of %lld outputs whose", O);
    cg_line(e, "   input is spikes, as %s_gemm_nw_s computes it from dw = 0: 8 columns a vector, each", p);
    cg_line(e, "   output's 8 sums in a register; a row adds gy(r, o) to the lanes of its spikes and +0.0");
    cg_line(e, "   to the others (its bits made a mask), rows in order. Sums that start from +0.0 are");
    cg_line(e, "   never -0.0, so adding +0.0 changes none: the same bits as the spikes' events. */");
    cg_line(e, "static void %s_gemm_nw_d%lld(long rows, long K, const float *gy, const uint32_t *x, float *dw)", p, O);
    cg_line(e, "{");
    e->ind++;
    cg_line(e, "const long nw = K / 32; /* words a row */");
    cg_par_for(e, fmt(e, "rows * K * %lld", O));
    cg_line(e, "for (long c = 0; c < K; c += 8) {");
    e->ind++;
    cg_line(e, "const int s = (int)(c %% 32);");
    cg_line(e, "/* bit s + j of a word to the sign of lane j */");
    cg_line(e, "const __m256i sh = _mm256_setr_epi32(31 - s, 30 - s, 29 - s, 28 - s, 27 - s, 26 - s, 25 - s, 24 - s);");
    cg_line(e, "__m256 a[%lld];", O);
    cg_line(e, "long r, o;");
    cg_line(e, "for (o = 0; o < %lld; o++)", O);
    cg_line(e, "    a[o] = _mm256_setzero_ps();");
    cg_line(e, "for (r = 0; r < rows; r++) {");
    e->ind++;
    cg_line(e, "const __m256 m = _mm256_castsi256_ps(");
    cg_line(e, "    _mm256_srai_epi32(_mm256_sllv_epi32(_mm256_set1_epi32((int)x[r * nw + c / 32]), sh), 31));");
    cg_line(e, "for (o = 0; o < %lld; o++)", O);
    cg_line(e, "    a[o] = _mm256_add_ps(a[o], _mm256_and_ps(_mm256_set1_ps(gy[r * %lld + o]), m));", O);
    e->ind--;
    cg_line(e, "}");
    cg_line(e, "for (o = 0; o < %lld; o++)", O);
    cg_line(e, "    _mm256_storeu_ps(dw + o * K + c, a[o]);");
    e->ind--;
    cg_line(e, "}");
    e->ind--;
    cg_line(e, "}");
}

/* <p>_nw_dense: whether the dense variant pays, by the spikes of every 8th
   row. */
static void narrow_dw_choice(Emit *e) {
    const char *p = e->p, *P = e->P;
    cg_blank(e);
    cg_line(e, "/* 8 columns of a row and an output of %s_gemm_nw_d<O>, against a spike of", p);
    cg_line(e, "   %s_gemm_nw_s (docs/targets.md); 0 takes the dense variant always, a large", p);
    cg_line(e, "   value never. */");
    cg_line(e, "#ifndef %s_NARROW_DENSE_COST", P);
    cg_line(e, "#define %s_NARROW_DENSE_COST %s", P, NARROW_DENSE_COST);
    cg_line(e, "#endif");
    cg_blank(e);
    cg_line(e, "/* Whether %s_gemm_nw_d<O> costs less than the spikes' events of %s_gemm_nw_s, with", p, p);
    cg_line(e, "   the spikes counted in every 8th row: 8 columns of a row cost O + 3.2 outputs' worth");
    cg_line(e, "   in the one (its mask and loop: 3.2), 0.9 spikes' worth and their spikes in the other");
    cg_line(e, "   (the end of each word's loop). */");
    cg_line(e, "static int %s_nw_dense(long rows, long O, long K, const uint32_t *x)", p);
    cg_line(e, "{");
    e->ind++;
    cg_line(e, "const long nw = K / 32;");
    cg_line(e, "long r, w, n = 0;");
    cg_line(e, "for (r = 0; r < rows; r += 8)");
    cg_line(e, "    for (w = 0; w < nw; w++)");
    e->ind--; /* directives at the line's start */
    cg_line(e, "#if defined(__GNUC__) || defined(__clang__)");
    cg_line(e, "            n += __builtin_popcount(x[r * nw + w]);");
    cg_line(e, "#else");
    cg_line(e, "            for (uint32_t m = x[r * nw + w]; m; m &= m - 1)");
    cg_line(e, "                n++;");
    cg_line(e, "#endif");
    e->ind++;
    cg_line(e, "return (double)n * (double)rows / (double)((rows + 7) / 8) + 0.9 * (double)rows * (double)(K / 8) >");
    cg_line(e, "       (double)rows * (double)(K / 8) * ((double)O + 3.2) * %s_NARROW_DENSE_COST;", P);
    e->ind--;
    cg_line(e, "}");
}

/* The outputs of the narrow layers whose weight gradient is set and whose
   input is spikes kept as bits: the dense variants the x86 targets emit
   (outs[O] set). */
static int narrow_dense_outs(Emit *e, char outs[NARROW + 1]) {
    const IrGraph *g = e->g;
    int any = 0;
    memset(outs, 0, NARROW + 1);
    if (e->isa == ISA_C || !g->train || !g->trainp.planned)
        return 0;
    for (int i = 0; i < g->nodes.len; i++) {
        const IrNode *x = &g->nodes.items[i];
        if (!x->dead && x->op == IR_DENSE && x->out <= NARROW && g->trainp.at[x->in[0]].bits && g->trainp.at[i].wset)
            any = outs[x->out] = 1;
    }
    return any;
}

void cg_gemm(Emit *e, const CgTile *tile) {
    int use = narrow_uses(e);
    gemm(e, tile, GEMM_FLOAT);
    if (cp_dense_reads_bits(e)) {
        gemm(e, tile, GEMM_SPIKES_A);
        if (use & 8)
            gemm(e, tile, GEMM_SPIKES_B);
    }
    if (use & 7) {
        narrow_pack(e);
        narrow_helpers(e, use & 6);
    }
    if (use & 1)
        narrow_fwd(e);
    if (use & 2) {
        char outs[NARROW + 1];
        narrow_dw(e);
        if (narrow_dense_outs(e, outs)) {
            narrow_dw_choice(e);
            for (int O = 1; O <= NARROW; O++)
                if (outs[O])
                    narrow_dw_dense(e, O);
        }
    }
    if (use & 4)
        narrow_fwd_spikes(e);
}

void ck_gemm(TargetEmitter *em) { cg_gemm(&em->e, &c_tile); }

/* A product y(rows x O) = bias + x(rows x I) w^T for a dense layer (bias
   "0" for none: y is zeroed first), in the orientation where packing
   wastes least: rows as the rows of C, or, for a layer narrower than a
   panel over more rows, outputs as the rows of C^T. With spikes (x kept as
   bits) the products that read them as A or as B. */
static void dense_product(Emit *e, const char *rows, long long I, long long O, const char *x, const char *w,
                          const char *bias, const char *y, const char *pb, int spikes) {
    const char *sa = spikes ? "_sa" : "", *sb = spikes ? "_sb" : "";
    if (O >= GEMM_NR) {
        cg_line(e, "%s_gemm%s(%s, %lld, %lld, %s, %lld, 1, %s, 1, %lld, %s, %lld, 1, %s, 0, 1, %s); /* y = b + x w^T */",
                e->p, sa, rows, O, I, x, I, w, I, y, O, bias, pb);
        return;
    }
    cg_line(e, "if (%s <= %lld) /* y = b + x w^T */", rows, O);
    cg_line(e, "    %s_gemm%s(%s, %lld, %lld, %s, %lld, 1, %s, 1, %lld, %s, %lld, 1, %s, 0, 1, %s);", e->p, sa, rows, O, I, x,
            I, w, I, y, O, bias, pb);
    if (O <= NARROW) {
        cg_line(e, "else /* a narrow layer over more rows: a vector of sums a row%s */", spikes ? ", at its spikes" : "");
        cg_line(e, "    %s_gemm_n%s(%s, %lld, %lld, %s, %s, %s, %s, %s);", e->p, spikes ? "s" : "", rows, O, I, x, w, bias,
                y, pb);
        return;
    }
    cg_line(e, "else /* y^T = b + w x^T: a narrow layer over more rows */");
    cg_line(e, "    %s_gemm%s(%lld, %s, %lld, %s, %lld, 1, %s, 1, %lld, %s, 1, %lld, %s, 1, 0, %s);", e->p, sb, O, rows, I, w,
            I, x, I, y, O, bias, pb);
}

/* ---- dense ---- */

void ck_dense_fwd(TargetEmitter *em, const IrPlan *P, int i) {
    Emit *e = &em->e;
    const IrNode *x = node(e, i);
    int in = x->in[0];
    long long I = count(e, in), O = x->out;
    const char *pb = scratch(e, P, e->packb);
    cp_open(e, P, i, 1);
    cg_line(e, "const float *w = %s;", cp_param(e, x->param[0]));
    if (x->bias)
        cg_line(e, "const float *bias = %s;", cp_param(e, x->param[1]));
    if (P->at[in].inv && !P->at[i].inv) {
        /* an input stored once, an output at every step (the hoist pass
           did not run): one product per step */
        cg_line(e, "const float *xt = %s;", cp_at(e, P, in, 'v', "0"));
        cg_line(e, "for (int t = from; t < to; t++) {");
        e->ind++;
        cg_line(e, "float *yt = %s;", cp_at(e, P, i, 'v', "t"));
        cg_line(e, "const long rows = B;");
    } else {
        cg_line(e, "const long rows = (long)(to - from) * B;");
        if (P->at[in].bits)
            cg_line(e, "const uint32_t *xt = %s; /* spikes, 32 to a word */", cp_bits_at(e, P, in, "from"));
        else
            cg_line(e, "const float *xt = %s;", cp_at(e, P, in, 'v', "from"));
        cg_line(e, "float *yt = %s;", cp_at(e, P, i, 'v', "from"));
        cg_line(e, "{");
        e->ind++;
    }
    if (!x->bias)
        cg_line(e, "memset(yt, 0, (size_t)rows * %lld * sizeof(float));", O);
    cg_line(e, "/* each output sums its bias first, then its inputs in order */");
    dense_product(e, "rows", I, O, "xt", "w", x->bias ? "bias" : "0", "yt", pb, P->at[in].bits);
    e->ind--;
    cg_line(e, "}");
    cp_close(e, "(void)training;");
}

void ck_dense_bwd(TargetEmitter *em, const IrPlan *P, int i) {
    Emit *e = &em->e;
    const IrNode *x = node(e, i);
    int in = x->in[0];
    long long I = count(e, in), O = x->out;
    const char *pb = scratch(e, P, e->packb);
    if (P->at[in].inv && !P->at[i].inv)
        ICE("a dense layer of a value stored once is stored at every step");
    /* gradients set (the backward did not zero them: IrBufs.wset and gset)
       start from a zero of their own, the same sums */
    int wset = P->at[i].wset, gset = P->at[in].gset && P->at[in].needgrad;
    int narrow_dw = P->at[in].bits && O <= NARROW; /* <p>_gemm_nw_s */
    cp_open(e, P, i, 0);
    if ((wset && !narrow_dw) || gset)
        cg_line(e, "static const float zero = 0.0f; /* where sums start: gradients set, not added to */");
    cg_line(e, "const float *w = %s;", cp_param(e, x->param[0]));
    cg_line(e, "float *dw = %s;", cp_grad(e, x->param[0]));
    cg_line(e, "const long rows = (long)(to - from) * B;");
    if (P->at[in].bits)
        cg_line(e, "const uint32_t *xt = %s; /* spikes, 32 to a word */", cp_bits_at(e, P, in, "from"));
    else
        cg_line(e, "const float *xt = %s;", cp_at(e, P, in, 'v', "from"));
    cg_line(e, "const float *gy = %s;", cp_at(e, P, i, 'g', "from"));
    if (x->bias) {
        cg_line(e, "float *db = %s;", cp_grad(e, x->param[1]));
        /* each output adds its rows in order; blocks of 64 outputs read
           the rows of gy along their length */
        cg_par_for_light(e, fmt(e, "rows * %lld", O));
        cg_line(e, "for (long o0 = 0; o0 < %lld; o0 += 64) {", O);
        cg_line(e, "    const long no = %lld - o0 < 64 ? %lld - o0 : 64;", O, O);
        cg_line(e, "    float acc[64];");
        cg_line(e, "    long r, o;");
        cg_line(e, "    for (o = 0; o < no; o++)");
        cg_line(e, wset ? "        acc[o] = 0.0f;" : "        acc[o] = db[o0 + o];");
        cg_line(e, "    for (r = 0; r < rows; r++)");
        cg_line(e, "        for (o = 0; o < no; o++)");
        cg_line(e, "            acc[o] += gy[r * %lld + o0 + o];", O);
        cg_line(e, "    for (o = 0; o < no; o++)");
        cg_line(e, "        db[o0 + o] = acc[o];");
        cg_line(e, "}");
    }
    const char *dw_op = wset ? "=" : "+=";
    if (narrow_dw && wset && e->isa != ISA_C) {
        cg_line(e, "if (%s_nw_dense(rows, %lld, %lld, xt)) /* dw = gy^T x, a row's spikes at a time */", e->p, O, I);
        cg_line(e, "    %s_gemm_nw_d%lld(rows, %lld, gy, xt, dw);", e->p, O, I);
        cg_line(e, "else {");
        cg_line(e, "    memset(dw, 0, (size_t)%lld * sizeof(float));", O * I);
        cg_line(e, "    %s_gemm_nw_s(rows, %lld, %lld, gy, xt, dw, %s); /* dw = gy^T x, a spike at a time */", e->p, O, I, pb);
        cg_line(e, "}");
    } else if (narrow_dw) {
        if (wset)
            cg_line(e, "memset(dw, 0, (size_t)%lld * sizeof(float));", O * I);
        cg_line(e, "%s_gemm_nw_s(rows, %lld, %lld, gy, xt, dw, %s); /* dw %s gy^T x, a spike at a time */", e->p, O, I, pb,
                dw_op);
    } else
        cg_line(e, "%s_gemm%s(%lld, %lld, rows, gy, 1, %lld, xt, %lld, 1, dw, %lld, 1, %s, %s); /* dw %s gy^T x */", e->p,
                P->at[in].bits ? "_sb" : "", O, I, O, I, I, wset ? "&zero, 0, 0" : "0, 0, 0", pb, dw_op);
    if (P->at[in].needgrad) {
        cg_line(e, "if (dx) { /* gx %s gy w */", gset ? "=" : "+=");
        cg_line(e, "    float *gx = %s;", cp_at(e, P, in, 'g', "from"));
        cg_line(e, "    %s_gemm(rows, %lld, %lld, gy, %lld, 1, w, %lld, 1, gx, %lld, 1, %s, %s);", e->p, I, O, O, I, I,
                gset ? "&zero, 0, 0" : "0, 0, 0", pb);
        cg_line(e, "}");
    }
    cp_close(e, "(void)w;\n    (void)dx;");
}

/* ---- convolution ---- */

/* im2col or col2im of one (sample, channel) plane. */
static void conv_call(Emit *e, const IrNode *x, const ConvDims *d, const char *fn, const char *from,
                      const char *to) {
    cg_line(e, "%s_%s(%s, %s, np, 1, %lld, %lld, %d, %d, %d, %d, %d, %d, %lld, %lld);", e->p, fn, from, to, d->H, d->W,
            x->kernel[0], x->kernel[1], x->stride[0], x->stride[1], x->pad[0], x->pad[1], d->OH, d->OW);
}

/* im2col where the output has the input's rows (stride 1, OW == W): the
   row of a (ky, kx) is the plane shifted by (ky - ph) W + kx - pw, one copy
   of the rows that lie inside, then zeros in the columns that ran over a
   row's ends and in the rows outside. Rows of a few floats (14 in the conv
   example's second convolution) cost more in their loop than in their
   data: there im2col went from 13 % of the inference forward to 8 %. */
static void im2col_rows(Emit *e) {
    cg_line(e, "    if (sh == 1 && sw == 1 && OW == W) {");
    cg_line(e, "        for (c = 0; c < C; c++)");
    cg_line(e, "            for (ky = 0; ky < kh; ky++)");
    cg_line(e, "                for (kx = 0; kx < kw; kx++) {");
    cg_line(e, "                    float *m = col + ((c * kh + ky) * kw + kx) * ld;");
    cg_line(e, "                    const float *xc = x + c * H * W;");
    cg_line(e, "                    const long dy = ky - ph, dx = kx - pw, sh0 = dy * W + dx;");
    cg_line(e, "                    long oy0 = dy < 0 ? -dy : 0, oy1 = H - dy < OH ? H - dy : OH, j0, j1, j;");
    cg_line(e, "                    oy0 = oy0 < OH ? oy0 : OH;");
    cg_line(e, "                    oy1 = oy1 > oy0 ? oy1 : oy0; /* the rows [oy0, oy1) read inside */");
    cg_line(e, "                    for (j = 0; j < oy0 * OW; j++)");
    cg_line(e, "                        m[j] = 0.0f;");
    cg_line(e, "                    j0 = oy0 * OW > -sh0 ? oy0 * OW : -sh0;");
    cg_line(e, "                    j1 = oy1 * OW < H * W - sh0 ? oy1 * OW : H * W - sh0;");
    cg_line(e, "                    for (j = j0; j < j1; j++)");
    cg_line(e, "                        m[j] = xc[j + sh0];");
    cg_line(e, "                    for (oy = oy0; oy < oy1; oy++) { /* the columns that ran over a row's ends */");
    cg_line(e, "                        for (ox = 0; ox < -dx && ox < OW; ox++)");
    cg_line(e, "                            m[oy * OW + ox] = 0.0f;");
    cg_line(e, "                        for (ox = W - dx > 0 ? W - dx : 0; ox < OW; ox++)");
    cg_line(e, "                            m[oy * OW + ox] = 0.0f;");
    cg_line(e, "                    }");
    cg_line(e, "                    for (j = oy1 * OW; j < OH * OW; j++)");
    cg_line(e, "                        m[j] = 0.0f;");
    cg_line(e, "                }");
    cg_line(e, "        return;");
    cg_line(e, "    }");
}

void ck_conv(TargetEmitter *em) {
    Emit *e = &em->e;
    long long np = 0; /* the most columns of a product that reads the zeros */
    for (int i = 0; i < e->g->nodes.len; i++) {
        const IrNode *x = node(e, i);
        if (!x->dead && x->op == IR_CONV2D && (!x->bias || (e->g->train && e->g->trainp.at[x->in[0]].needgrad))) {
            long long n = conv_chunk(e->g, x) * x->shape.d[1] * x->shape.d[2];
            np = n > np ? n : np;
        }
    }
    if (np) {
        cg_blank(e);
        cg_line(e, "/* A row of zeros as the bias of a product that sets its output (a chunk's");
        cg_line(e, "   columns at most), instead of zeroing the output before it adds to it. */");
        cg_line(e, "static const float %s_zeros[%lld];", e->p, np);
    }
    for (int back = 0; back < 2; back++) {
        if (back && !e->g->train)
            break;
        cg_blank(e);
        if (back) {
            cg_line(e, "/* The gradient of im2col: adds each column back where it came from. */");
            cg_line(e, "static void %s_col2im(const float *col, float *x, long ld, long C, long H, long W, int kh,", e->p);
        } else {
            cg_line(e, "/* One sample's convolution input as the columns of a matrix [c][ky][kx][oy][ox]");
            cg_line(e, "   whose rows are ld apart, zero where the kernel reads padding. */");
            cg_line(e, "static void %s_im2col(const float *x, float *col, long ld, long C, long H, long W, int kh,", e->p);
        }
        cg_line(e, "                      int kw, int sh, int sw, int ph, int pw, long OH, long OW)");
        cg_line(e, "{");
        cg_line(e, "    long c, ky, kx, oy, ox;");
        if (!back)
            im2col_rows(e);
        cg_line(e, "    for (c = 0; c < C; c++)");
        cg_line(e, "        for (ky = 0; ky < kh; ky++)");
        cg_line(e, "            for (kx = 0; kx < kw; kx++) {");
        cg_line(e, "                %sfloat *m = col + ((c * kh + ky) * kw + kx) * ld;", back ? "const " : "");
        cg_line(e, "                for (oy = 0; oy < OH; oy++) {");
        cg_line(e, "                    const long iy = oy * sh - ph + ky;");
        cg_line(e, "                    for (ox = 0; ox < OW; ox++) {");
        cg_line(e, "                        const long ix = ox * sw - pw + kx;");
        cg_line(e, "                        const int in = iy >= 0 && iy < H && ix >= 0 && ix < W;");
        if (back) {
            cg_line(e, "                        if (in)");
            cg_line(e, "                            x[(c * H + iy) * W + ix] += m[oy * OW + ox];");
        } else
            cg_line(e, "                        m[oy * OW + ox] = in ? x[(c * H + iy) * W + ix] : 0.0f;");
        cg_line(e, "                    }");
        cg_line(e, "                }");
        cg_line(e, "            }");
        cg_line(e, "}");
    }
}

/* A step of a convolution runs over chunks of S samples (conv_chunk):
   the input as an im2col matrix [c][ky][kx][sample][oy][ox] (N = S x
   pixels), a matrix product per group with the weights, and the output in
   the product's layout [o][sample][oy][ox], copied to [sample][o][oy][ox].
   The backward does the same three products in reverse. The weight
   gradient's product runs over the chunks one after another, so each of
   its elements sums its terms in the order of one product over the batch,
   whatever the chunk's size: with threads, where S > 1, a team whose
   threads take chunks of S / threads samples with their share of the
   scratch (conv_fwd_steps, conv_bwd_team); else each chunk's product is
   split between the threads. */

/* The steps of a convolution's forward over chunks of samples. On one
   team (team): each thread takes the samples [b0, b1), in chunks of st,
   into its share of the scratch (colt, ygt: the im2col matrix
   and the output of S / nt samples) and of pb, with nothing shared between
   threads; else chunks of S samples, each split between the threads. */
static void conv_fwd_steps(Emit *e, const IrPlan *P, const IrNode *x, const ConvDims *d, long long S, int team) {
    const char *col = team ? "colt" : "col", *yg = team ? "ygt" : "yg";
    cg_line(e, "for (int t = from; t < to; t++) {");
    e->ind++;
    cg_line(e, "const float *xt = %s;", cp_at(e, P, x->in[0], 'v', "t"));
    cg_line(e, "float *yt = %s;", cp_at(e, P, (int)(x - e->g->nodes.items), 'v', "t"));
    cg_line(e, "long r0, gi;");
    if (team) {
        cg_line(e, "for (r0 = b0; r0 < b1; r0 += st) { /* this thread's chunks of samples */");
        e->ind++;
        cg_line(e, "const long nr = b1 - r0 < st ? b1 - r0 : st, np = nr * %lld;", d->P);
    } else {
        cg_line(e, "for (r0 = 0; r0 < B; r0 += %lld) { /* chunks of samples */", S);
        e->ind++;
        cg_line(e, "const long nr = B - r0 < %lld ? B - r0 : %lld, np = nr * %lld;", S, S, d->P);
        cg_line(e, "/* threads take (sample, channel) planes */");
        cg_par_for(e, fmt(e, "np * %lld", d->C * d->KK));
    }
    cg_line(e, "for (long rc = 0; rc < nr * %lld; rc++)", d->C);
    e->ind++;
    conv_call(e, x, d, "im2col", arena_printf(e->g->arena, "xt + (r0 * %lld + rc) * %lld", d->C, d->H * d->W),
              arena_printf(e->g->arena, "%s + (rc %% %lld) * %lld * np + rc / %lld * %lld", col, d->C, d->KK, d->C, d->P));
    e->ind--;
    cg_line(e, "/* y = b + w col, per group: each output sums the bias (or 0), then c, ky, kx ascending */");
    cg_line(e, "for (gi = 0; gi < %lld; gi++)", d->G);
    cg_line(e, "    %s_gemm%s(%lld, np, %lld, w + gi * %lld, %lld, 1, %s + gi * %lld * np, np, 1, %s + gi * %lld * np, np, 1, %s, pb%s);",
            e->p, team ? "_in" : "", d->og, d->cg * d->KK, d->og * d->cg * d->KK, d->cg * d->KK, col, d->cg * d->KK, yg,
            d->og,
            x->bias ? arena_printf(e->g->arena, "bias + gi * %lld, 1, 0", d->og) : arena_printf(e->g->arena, "%s_zeros, 0, 1", e->p),
            team ? ", id, nt" : "");
    if (!team)
        cg_par_for(e, fmt(e, "np * %lld", d->O));
    cg_line(e, "for (long ro = 0; ro < nr * %lld; ro++)", d->O);
    cg_line(e, "    memcpy(yt + (r0 * %lld + ro) * %lld, %s + ro %% %lld * np + ro / %lld * %lld, %lld * sizeof(float));",
            d->O, d->P, yg, d->O, d->O, d->P, d->P);
    e->ind--;
    cg_line(e, "}");
    e->ind--;
    cg_line(e, "}");
}

void ck_conv_fwd(TargetEmitter *em, const IrPlan *P, int i) {
    Emit *e = &em->e;
    const IrNode *x = node(e, i);
    ConvDims d = cp_conv_dims(e, x);
    long long S = conv_chunk(e->g, x);
    cp_open(e, P, i, 1);
    cg_line(e, "const float *w = %s;", cp_param(e, x->param[0]));
    if (x->bias)
        cg_line(e, "const float *bias = %s;", cp_param(e, x->param[1]));
    cg_line(e, "float *col = %s, *yg = %s, *pb = %s;", scratch(e, P, e->col), scratch(e, P, e->obuf),
            scratch(e, P, e->packb));
    if (S > 1) { /* threads can take chunks of their own */
        cg_line(e, "#ifdef _OPENMP");
        cg_line(e, "if (omp_get_max_threads() > 1) {");
        e->ind++;
        cg_line(e, "%s_OMP(omp parallel if ((long)(to - from) * B * %lld >= %s_PARALLEL_WORK))", e->P,
                d.O * d.cg * d.KK * d.P, e->P);
        cg_line(e, "{");
        e->ind++;
        cg_line(e, "const long id = omp_get_thread_num();");
        cg_line(e, "long nt = omp_get_num_threads() < %lld ? omp_get_num_threads() : %lld;", S, S);
        cg_line(e, "nt = %s_PACK / %d > 0 && nt > %s_PACK / %d ? %s_PACK / %d : nt; /* at least a panel of pb each */", e->P,
                GEMM_NR, e->P, GEMM_NR, e->P, GEMM_NR);
        cg_line(e, "const long st = %lld / nt, b0 = B * id / nt, b1 = B * (id + 1) / nt; /* chunks of st of samples [b0, b1) */", S);
        cg_line(e, "float *colt = col + id * (%lld / nt), *ygt = yg + id * (%lld / nt);", (long long)(e->obuf - e->col),
                (long long)(e->dcol - e->obuf));
        cg_line(e, "if (id < nt)");
        cg_line(e, "{");
        e->ind++;
        conv_fwd_steps(e, P, x, &d, S, 1);
        e->ind--;
        cg_line(e, "}");
        e->ind--;
        cg_line(e, "}");
        e->ind--;
        cg_line(e, "} else");
        cg_line(e, "#endif");
        cg_line(e, "{");
        e->ind++;
        conv_fwd_steps(e, P, x, &d, S, 0);
        e->ind--;
        cg_line(e, "}");
    } else
        conv_fwd_steps(e, P, x, &d, S, 0);
    cp_close(e, "(void)training;");
}

/* A convolution's backward on a team (ungrouped, chunks of S > 1
   samples), one parallel region a step: each thread first walks every
   sample, in chunks of st, for the weight gradient of its input channels
   [c0, c1) (its rows of the im2col matrix) and the bias gradient of its
   outputs [o0, o1), each the same sum in the same order as on one thread;
   then, where dx, the input gradient of its own samples [b0, b1): dcol =
   0 + w^T gy and col2im. Nothing is shared between threads but what they
   read; each has its share of the scratch. */
static void conv_bwd_team(Emit *e, const IrPlan *P, const IrNode *x, const ConvDims *d, long long S, int dx) {
    const char *p = e->p;
    cg_line(e, "%s_OMP(omp parallel if ((long)(to - from) * B * %lld >= %s_PARALLEL_WORK))", e->P,
            d->O * d->C * d->KK * d->P, e->P);
    cg_line(e, "{");
    e->ind++;
    cg_line(e, "const long id = omp_get_thread_num();");
    cg_line(e, "long nt = omp_get_num_threads() < %lld ? omp_get_num_threads() : %lld;", S, S);
    cg_line(e, "nt = %s_PACK / %d > 0 && nt > %s_PACK / %d ? %s_PACK / %d : nt; /* at least a panel of pb each */", e->P,
            GEMM_NR, e->P, GEMM_NR, e->P, GEMM_NR);
    cg_line(e, "const long st = %lld / nt, c0 = %lld * id / nt, c1 = %lld * (id + 1) / nt; /* chunks of st samples */", S,
            d->C, d->C);
    cg_line(e, "float *colt = col + id * (%lld / nt), *ggt = gg + id * (%lld / nt);", (long long)(e->obuf - e->col),
            (long long)(e->dcol - e->obuf));
    if (x->bias)
        cg_line(e, "const long o0 = %lld * id / nt, o1 = %lld * (id + 1) / nt;", d->O, d->O);
    if (dx) {
        cg_line(e, "const long b0 = B * id / nt, b1 = B * (id + 1) / nt;");
        cg_line(e, "float *dcolt = dcol + id * (%lld / nt);", (long long)(e->bsum - e->dcol));
    }
    cg_line(e, "if (id < nt)");
    cg_line(e, "for (int t = from; t < to; t++) {");
    e->ind++;
    cg_line(e, "const float *xt = %s;", cp_at(e, P, x->in[0], 'v', "t"));
    cg_line(e, "const float *gyt = %s;", cp_at(e, P, (int)(x - e->g->nodes.items), 'g', "t"));
    if (dx)
        cg_line(e, "float *gx = %s;", cp_at(e, P, x->in[0], 'g', "t"));
    cg_line(e, "long r0;");
    if (x->bias) {
        cg_line(e, "for (long o = o0; o < o1; o++) /* the bias: a sum over the step, then added */");
        cg_line(e, "    sb[o] = 0.0f;");
    }
    cg_line(e, "if (c1 > c0%s)", x->bias ? " || o1 > o0" : "");
    cg_line(e, "    for (r0 = 0; r0 < B; r0 += st) { /* every sample */");
    e->ind += 2;
    cg_line(e, "const long nr = B - r0 < st ? B - r0 : st, np = nr * %lld;", d->P);
    cg_line(e, "for (long r = 0; r < nr; r++)");
    cg_line(e, "    for (long c = c0; c < c1; c++)");
    e->ind += 2;
    conv_call(e, x, d, "im2col", arena_printf(e->g->arena, "xt + ((r0 + r) * %lld + c) * %lld", d->C, d->H * d->W),
              arena_printf(e->g->arena, "colt + (c - c0) * %lld * np + r * %lld", d->KK, d->P));
    e->ind -= 2;
    cg_line(e, "for (long ro = 0; ro < nr * %lld; ro++)", d->O);
    cg_line(e, "    memcpy(ggt + ro %% %lld * np + ro / %lld * %lld, gyt + (r0 * %lld + ro) * %lld, %lld * sizeof(float));",
            d->O, d->O, d->P, d->O, d->P, d->P);
    if (x->bias) {
        cg_line(e, "for (long o = o0; o < o1; o++) {");
        cg_line(e, "    long j;");
        cg_line(e, "    for (j = 0; j < np; j++)");
        cg_line(e, "        sb[o] += ggt[o * np + j];");
        cg_line(e, "}");
    }
    if (x->bias) /* a thread can have outputs for the bias and no channels */
        cg_line(e, "if (c1 > c0) /* dw[:, c0..c1) += gy col^T */");
    else
        cg_line(e, "/* dw[:, c0..c1) += gy col^T */");
    cg_line(e, "%s%s_gemm_in(%lld, (c1 - c0) * %lld, np, ggt, np, 1, colt, 1, np, dw + c0 * %lld, %lld, 1, 0, 0, 0, pb, id, nt);",
            x->bias ? "    " : "", p, d->O, d->KK, d->KK, d->C * d->KK);
    e->ind -= 2;
    cg_line(e, "    }");
    if (dx) {
        cg_line(e, "if (dx)");
        cg_line(e, "    for (r0 = b0; r0 < b1; r0 += st) { /* this thread's samples */");
        e->ind += 2;
        cg_line(e, "const long nr = b1 - r0 < st ? b1 - r0 : st, np = nr * %lld;", d->P);
        cg_line(e, "for (long ro = 0; ro < nr * %lld; ro++)", d->O);
        cg_line(e, "    memcpy(ggt + ro %% %lld * np + ro / %lld * %lld, gyt + (r0 * %lld + ro) * %lld, %lld * sizeof(float));",
                d->O, d->O, d->P, d->O, d->P, d->P);
        cg_line(e, "%s_gemm_in(%lld, np, %lld, w, 1, %lld, ggt, np, 1, dcolt, np, 1, %s_zeros, 0, 1, pb, id, nt);", p,
                d->C * d->KK, d->O, d->C * d->KK, p);
        cg_line(e, "for (long rc = 0; rc < nr * %lld; rc++)", d->C);
        e->ind++;
        conv_call(e, x, d, "col2im", arena_printf(e->g->arena, "dcolt + (rc %% %lld) * %lld * np + rc / %lld * %lld", d->C, d->KK, d->C, d->P),
                  arena_printf(e->g->arena, "gx + (r0 * %lld + rc) * %lld", d->C, d->H * d->W));
        e->ind -= 3;
        cg_line(e, "    }");
    }
    if (x->bias) {
        cg_line(e, "for (long o = o0; o < o1; o++)");
        cg_line(e, "    db[o] += sb[o];");
    }
    e->ind--;
    cg_line(e, "}");
    e->ind--;
    cg_line(e, "}");
}

void ck_conv_bwd(TargetEmitter *em, const IrPlan *P, int i) {
    Emit *e = &em->e;
    const IrNode *x = node(e, i);
    int in = x->in[0];
    ConvDims d = cp_conv_dims(e, x);
    long long S = conv_chunk(e->g, x);
    int dx = P->at[in].needgrad != 0;
    cp_open(e, P, i, 0);
    cg_line(e, "const float *w = %s;", cp_param(e, x->param[0]));
    cg_line(e, "float *dw = %s;", cp_grad(e, x->param[0]));
    if (x->bias)
        cg_line(e, "float *db = %s, *sb = %s;", cp_grad(e, x->param[1]), scratch(e, P, e->bsum));
    cg_line(e, "float *col = %s, *dcol = %s, *gg = %s, *pb = %s;", scratch(e, P, e->col), scratch(e, P, e->dcol),
            scratch(e, P, e->obuf), scratch(e, P, e->packb));
    int team = S > 1 && d.G == 1;
    if (team) {
        cg_line(e, "#ifdef _OPENMP");
        cg_line(e, "if (omp_get_max_threads() > 1) {");
        e->ind++;
        conv_bwd_team(e, P, x, &d, S, dx);
        e->ind--;
        cg_line(e, "} else");
        cg_line(e, "#endif");
        cg_line(e, "{");
        e->ind++;
    }
    cg_line(e, "for (int t = from; t < to; t++) {");
    e->ind++;
    cg_line(e, "const float *xt = %s;", cp_at(e, P, in, 'v', "t"));
    cg_line(e, "const float *gyt = %s;", cp_at(e, P, i, 'g', "t"));
    if (dx)
        cg_line(e, "float *gx = %s;", cp_at(e, P, in, 'g', "t"));
    cg_line(e, "long r0, gi;");
    if (x->bias) {
        cg_line(e, "for (long o = 0; o < %lld; o++) /* the bias: a sum over the step, then added */", d.O);
        cg_line(e, "    sb[o] = 0.0f;");
    }
    cg_line(e, "for (r0 = 0; r0 < B; r0 += %lld) { /* chunks of samples */", S);
    e->ind++;
    cg_line(e, "const long nr = B - r0 < %lld ? B - r0 : %lld, np = nr * %lld;", S, S, d.P);
    cg_par_for(e, fmt(e, "np * %lld", d.C * d.KK));
    cg_line(e, "for (long rc = 0; rc < nr * %lld; rc++)", d.C);
    e->ind++;
    conv_call(e, x, &d, "im2col", arena_printf(e->g->arena, "xt + (r0 * %lld + rc) * %lld", d.C, d.H * d.W),
              arena_printf(e->g->arena, "col + (rc %% %lld) * %lld * np + rc / %lld * %lld", d.C, d.KK, d.C, d.P));
    e->ind--;
    cg_par_for(e, fmt(e, "np * %lld", d.O));
    cg_line(e, "for (long ro = 0; ro < nr * %lld; ro++)", d.O);
    cg_line(e, "    memcpy(gg + ro %% %lld * np + ro / %lld * %lld, gyt + (r0 * %lld + ro) * %lld, %lld * sizeof(float));",
            d.O, d.O, d.P, d.O, d.P, d.P);
    if (x->bias) {
        cg_par_for(e, fmt(e, "np * %lld", d.O));
        cg_line(e, "for (long o = 0; o < %lld; o++) {", d.O);
        cg_line(e, "    long j;");
        cg_line(e, "    for (j = 0; j < np; j++)");
        cg_line(e, "        sb[o] += gg[o * np + j];");
        cg_line(e, "}");
    }
    cg_line(e, "for (gi = 0; gi < %lld; gi++) {", d.G);
    e->ind++;
    cg_line(e, "/* dw += gy col^T */");
    cg_line(e, "%s_gemm(%lld, %lld, np, gg + gi * %lld * np, np, 1, col + gi * %lld * np, 1, np, dw + gi * %lld, %lld, 1, 0, 0, 0, pb);",
            e->p, d.og, d.cg * d.KK, d.og, d.cg * d.KK, d.og * d.cg * d.KK, d.cg * d.KK);
    if (dx) {
        cg_line(e, "if (dx) /* dcol = 0 + w^T gy */");
        cg_line(e, "    %s_gemm(%lld, np, %lld, w + gi * %lld, 1, %lld, gg + gi * %lld * np, np, 1, dcol + gi * %lld * np, np, 1, %s_zeros, 0, 1, pb);",
                e->p, d.cg * d.KK, d.og, d.og * d.cg * d.KK, d.cg * d.KK, d.og, d.cg * d.KK, e->p);
    }
    e->ind--;
    cg_line(e, "}");
    if (dx) {
        cg_line(e, "if (dx) {");
        e->ind++;
        cg_par_for(e, fmt(e, "np * %lld", d.C * d.KK));
        cg_line(e, "for (long rc = 0; rc < nr * %lld; rc++)", d.C);
        e->ind++;
        conv_call(e, x, &d, "col2im", arena_printf(e->g->arena, "dcol + (rc %% %lld) * %lld * np + rc / %lld * %lld", d.C, d.KK, d.C, d.P),
                  arena_printf(e->g->arena, "gx + (r0 * %lld + rc) * %lld", d.C, d.H * d.W));
        e->ind -= 2;
        cg_line(e, "}");
    }
    e->ind--;
    cg_line(e, "}");
    if (x->bias) {
        cg_line(e, "for (long o = 0; o < %lld; o++)", d.O);
        cg_line(e, "    db[o] += sb[o];");
    }
    e->ind--;
    cg_line(e, "}");
    if (team) {
        e->ind--;
        cg_line(e, "}");
    }
    cp_close(e, "(void)w;\n    (void)dcol;\n    (void)dx;");
}

/* ---- pooling ---- */

PoolDims cp_pool_dims(Emit *e, const IrPlan *P, const IrNode *x) {
    const Shape *xs = &node(e, x->in[0])->shape;
    PoolDims d;
    d.C = xs->d[0], d.H = xs->d[1], d.W = xs->d[2];
    d.OH = x->shape.d[1], d.OW = x->shape.d[2];
    d.at = arena_printf(e->g->arena, "(rc * %lld + iy) * %lld + ix", d.H, d.W);
    d.xin = P->at[x->in[0]].bits ? arena_printf(e->g->arena, "(float)(xt[(%s) >> 5] >> ((%s) & 31) & 1u)", d.at, d.at)
                                 : arena_printf(e->g->arena, "xt[%s]", d.at);
    d.area = cg_flt(e, (float)(x->kernel[0] * x->kernel[1]));
    return d;
}

/* Opens the loops over the window of output pixel (oy, ox), skipping the
   padding, with input pixel (iy, ix) in scope. */
static void window_open(Emit *e, const IrNode *x, const PoolDims *d) {
    cg_line(e, "for (ky = 0; ky < %d; ky++) {", x->kernel[0]);
    cg_line(e, "    const long iy = oy * %d - %d + ky;", x->stride[0], x->pad[0]);
    cg_line(e, "    if (iy < 0 || iy >= %lld)", d->H);
    cg_line(e, "        continue;");
    cg_line(e, "    for (kx = 0; kx < %d; kx++) {", x->kernel[1]);
    cg_line(e, "        const long ix = ox * %d - %d + kx;", x->stride[1], x->pad[1]);
    cg_line(e, "        if (ix < 0 || ix >= %lld)", d->W);
    cg_line(e, "            continue;");
    e->ind += 2;
}

static void window_close(Emit *e) {
    e->ind -= 2;
    cg_line(e, "    }");
    cg_line(e, "}");
}

void cp_pool_window(Emit *e, const IrNode *x, const PoolDims *d, int argmax, const char *avg) {
    window_open(e, x, d);
    if (x->op != IR_MAXPOOL)
        cg_line(e, "%s", avg);
    else {
        cg_line(e, "{");
        cg_line(e, "    const float v = %s;", d->xin);
        cg_line(e, argmax ? "    if (v > acc || v != v) {" : "    if (v > acc || v != v)");
        cg_line(e, "        acc = v;");
        if (argmax) {
            cg_line(e, "        arg = %s;", d->at);
            cg_line(e, "    }");
        }
        cg_line(e, "}");
    }
    window_close(e);
}

/* The window of (oy, ox) where windows tile the input: no padding to skip. */
static void tile_open(Emit *e, const IrNode *x) {
    cg_line(e, "for (ky = 0; ky < %d; ky++)", x->kernel[0]);
    cg_line(e, "    for (kx = 0; kx < %d; kx++) {", x->kernel[1]);
    cg_line(e, "        const long iy = oy * %d + ky, ix = ox * %d + kx;", x->kernel[0], x->kernel[1]);
    e->ind += 2;
}

/* The backward of a pool whose windows tile its input, which only it
   reads (IrBufs.gset): every input pixel's gradient set once, as 0 + what
   the walk of cp_pool_window adds to a zeroed one (the same bits): a max
   pool's d at its window's first largest input and 0 elsewhere, an average
   pool's d / area everywhere. The max pool finds that input with its own
   walk, without cp_pool_window's padding checks: with them the conv
   example's training step took 0.6 % longer (84.8-85.1 against 84.3-84.7
   ms, one thread, avx512, batch 64). */
static void tiled_set(Emit *e, const IrNode *x, const PoolDims *d) {
    if (x->op == IR_MAXPOOL) {
        tile_open(e, x);
        cg_line(e, "const float v = %s;", d->xin);
        cg_line(e, "if (v > acc || v != v) {");
        cg_line(e, "    acc = v;");
        cg_line(e, "    arg = %s;", d->at);
        cg_line(e, "}");
        e->ind -= 2;
        cg_line(e, "    }");
    }
    tile_open(e, x);
    if (x->op == IR_MAXPOOL)
        cg_line(e, "gx[%s] = %s == arg ? 0.0f + d : 0.0f;", d->at, d->at);
    else
        cg_line(e, "gx[%s] = 0.0f + d / %s;", d->at, d->area);
    e->ind -= 2;
    cg_line(e, "    }");
}

/* Whether max pool x reads spikes kept as bits in 2 x 2 windows that tile
   rows of at most 32 bits (maxpool(2) after a spiking layer): pair_rows
   then takes a row of windows from two rows of bits at once. */
static int bit_pairs(const IrPlan *P, const IrNode *x, const PoolDims *d, int fwd) {
    return x->op == IR_MAXPOOL && P->at[x->in[0]].bits && (fwd || P->at[x->in[0]].gset) && x->kernel[0] == 2 &&
           x->kernel[1] == 2 && x->stride[0] == 2 && x->stride[1] == 2 && x->pad[0] == 0 && x->pad[1] == 0 &&
           d->H % 2 == 0 && d->W % 2 == 0 && d->W <= 32 && d->OH * 2 == d->H && d->OW * 2 == d->W;
}

/* The row oy of 2 x 2 windows of bit_pairs: the window's four spikes are
   bits 2 ox and 2 ox + 1 of rows 2 oy and 2 oy + 1 (r0, r1). Its maximum is
   1 where any is set; its first largest input, where the walk of
   cp_pool_window puts the gradient, is the first set in the order (0, 0),
   (0, 1), (1, 0), (1, 1), or (0, 0) where none is: the same values as the
   walk a value at a time, which took 3.4 ms of the conv example's training
   forward and 6.3 of its backward in its first pool (0.6 and 1.8 now).
   The backward selects by masking the bits of the float: GCC vectorizes
   that, where a ?: on a bit of the mask stayed a branch a value. */
static void pair_rows(Emit *e, const PoolDims *d, int fwd) {
    unsigned long long even = 0;
    for (int j = 0; j < d->W; j += 2)
        even |= 1ull << j;
    cg_line(e, "for (long oy = 0; oy < %lld; oy++) {", d->OH);
    e->ind++;
    cg_line(e, "const long k0 = (rc * %lld + 2 * oy) * %lld; /* the first bit of row 2 oy */", d->H, d->W);
    cg_line(e, "uint64_t r[2];");
    cg_line(e, "for (int h = 0; h < 2; h++) { /* rows 2 oy + h: %lld bits from bit k0 + h %lld */", d->W, d->W);
    cg_line(e, "    const long k = k0 + h * %lld, sh = k & 31;", d->W);
    cg_line(e, "    const uint32_t *w = xt + (k >> 5);");
    cg_line(e, "    r[h] = (sh + %lld > 32 ? (uint64_t)w[1] << 32 | w[0] : (uint64_t)w[0]) >> sh;", d->W);
    cg_line(e, "}");
    cg_line(e, "const uint64_t E = 0x%llxu; /* bit 2 ox: window ox's first column */", even);
    cg_line(e, "const uint64_t a = r[0] & E, b = r[0] >> 1 & E, c = r[1] & E, dd = r[1] >> 1 & E; /* its spikes */");
    if (fwd) {
        cg_line(e, "const uint64_t any = a | b | c | dd;");
        cg_line(e, "for (long ox = 0; ox < %lld; ox++)", d->OW);
        cg_line(e, "    yt[(rc * %lld + oy) * %lld + ox] = (float)(any >> 2 * ox & 1u);", d->OH, d->OW);
    } else {
        cg_line(e, "/* the windows' first largest inputs in rows 2 oy and 2 oy + 1 */");
        cg_line(e, "const uint32_t m0 = (uint32_t)(a | (~(a | b | c | dd) & E) | (~a & b) << 1);");
        cg_line(e, "const uint32_t m1 = (uint32_t)((~(a | b) & c) | (~(a | b | c) & dd) << 1);");
        cg_line(e, "const float *g = gyt + (rc * %lld + oy) * %lld;", d->OH, d->OW);
        cg_line(e, "%s_SIMD", e->P);
        cg_line(e, "for (long j = 0; j < %lld; j++) { /* 0 + d where the bit is set, else 0: its bits or none */", d->W);
        cg_line(e, "    const float v = 0.0f + g[j >> 1];");
        cg_line(e, "    uint32_t u, s0, s1;");
        cg_line(e, "    memcpy(&u, &v, sizeof u);");
        cg_line(e, "    s0 = u & (0u - (m0 >> j & 1u));");
        cg_line(e, "    s1 = u & (0u - (m1 >> j & 1u));");
        cg_line(e, "    memcpy(gx + k0 + j, &s0, sizeof s0);");
        cg_line(e, "    memcpy(gx + k0 + %lld + j, &s1, sizeof s1);", d->W);
        cg_line(e, "}");
    }
    e->ind--;
    cg_line(e, "}");
}

/* The walk over every window of plane rc at step t, a value at a time:
   the forward's maximum or average, or the backward (set, or added to). */
static void pool_walk(Emit *e, const IrNode *x, const PoolDims *d, int fwd, int set) {
    int mx = x->op == IR_MAXPOOL;
    cg_line(e, "long oy, ox, ky, kx;");
    cg_line(e, "for (oy = 0; oy < %lld; oy++)", d->OH);
    cg_line(e, "    for (ox = 0; ox < %lld; ox++) {", d->OW);
    e->ind += 2;
    if (mx || fwd)
        cg_line(e, "float acc = %s;", mx ? "-INFINITY" : "0.0f");
    if (mx)
        cg_line(e, "long arg = -1;");
    if (!fwd)
        cg_line(e, "const float d = gyt[(rc * %lld + oy) * %lld + ox];", d->OH, d->OW);
    if (set)
        tiled_set(e, x, d);
    else
        cp_pool_window(e, x, d, 1,
                       fwd ? arena_printf(e->g->arena, "acc += %s;", d->xin)
                           : arena_printf(e->g->arena, "gx[%s] += d / %s;", d->at, d->area));
    if (fwd && mx)
        cg_line(e, "yt[(rc * %lld + oy) * %lld + ox] = acc;", d->OH, d->OW);
    else if (fwd)
        cg_line(e, "yt[(rc * %lld + oy) * %lld + ox] = acc / %s;", d->OH, d->OW, d->area);
    else if (mx && !set) {
        cg_line(e, "if (arg >= 0)");
        cg_line(e, "    gx[arg] += d;");
    }
    if (mx)
        cg_line(e, "(void)arg;");
    e->ind -= 2;
    cg_line(e, "    }");
}

/* The forward, or the backward: a max pool's gradient to each window's
   first largest input, an average pool's to all its inputs (set where the
   windows tile the input and nothing else reads it: tiled_set). */
static void pool(Emit *e, const IrPlan *P, int i, int fwd) {
    const IrNode *x = node(e, i);
    int in = x->in[0], set = !fwd && P->at[in].gset;
    PoolDims d = cp_pool_dims(e, P, x);
    cp_open(e, P, i, fwd);
    /* threads take planes (sample, channel), each over the steps */
    cg_par_for(e, fmt(e, "(long)(to - from) * B * %lld", d.C * d.OH * d.OW * x->kernel[0] * x->kernel[1]));
    cg_line(e, "for (long rc = 0; rc < B * %lld; rc++) {", d.C);
    e->ind++;
    cg_line(e, "int t;");
    cg_line(e, "for (t = from; t < to; t++) {");
    e->ind++;
    if (P->at[in].bits)
        cg_line(e, "const uint32_t *xt = %s; /* spikes, 32 to a word */", cp_bits_at(e, P, in, "t"));
    else
        cg_line(e, "const float *xt = %s;", cp_at(e, P, in, 'v', "t"));
    if (fwd)
        cg_line(e, "float *yt = %s;", cp_at(e, P, i, 'v', "t"));
    else {
        cg_line(e, "const float *gyt = %s;", cp_at(e, P, i, 'g', "t"));
        cg_line(e, "float *gx = %s;", cp_at(e, P, in, 'g', "t"));
        cg_line(e, "(void)xt;");
    }
    if (bit_pairs(P, x, &d, fwd))
        pair_rows(e, &d, fwd);
    else
        pool_walk(e, x, &d, fwd, set);
    e->ind--;
    cg_line(e, "}");
    e->ind--;
    cg_line(e, "}");
    cp_close(e, fwd ? "(void)training;" : "(void)dx;");
}

void ck_pool_fwd(TargetEmitter *em, const IrPlan *P, int i) { pool(&em->e, P, i, 1); }
void ck_pool_bwd(TargetEmitter *em, const IrPlan *P, int i) { pool(&em->e, P, i, 0); }

/* ---- elementwise: add, scale, identity, dropout ---- */

/* Elements per block: threads take blocks of elements, each over all the
   steps of the call (one parallel region per call). */
#define ELEM_BLOCK 4096

/* Opens the loops over blocks of the n elements of a step, then over the
   steps (forward or in reverse); the body runs j over [j0, j1). */
static void elem_loops(Emit *e, long long n, int fwd) {
    cg_par_for(e, fmt(e, "(long)(to - from) * B * %lld", n));
    cg_line(e, "for (long j0 = 0; j0 < B * %lld; j0 += %d) {", n, ELEM_BLOCK);
    e->ind++;
    cg_line(e, "const long j1 = B * %lld - j0 < %d ? B * %lld : j0 + %d;", n, ELEM_BLOCK, n, ELEM_BLOCK);
    cg_line(e, fwd ? "for (int t = from; t < to; t++) {" : "for (int t = to - 1; t >= from; t--) {");
    e->ind++;
}

static void elem_close(Emit *e) {
    e->ind--;
    cg_line(e, "}");
    e->ind--;
    cg_line(e, "}");
}

void ck_eltwise_fwd(TargetEmitter *em, const IrPlan *P, int i) {
    Emit *e = &em->e;
    const IrNode *x = node(e, i);
    long long n = count(e, i);
    cp_open(e, P, i, 1);
    if (x->op == IR_DROPOUT && cp_train(e, P))
        cg_line(e, "const float *m = %s; /* the same at every step */", cp_ws(e, P, P->at[i].mask));
    elem_loops(e, n, 1);
    cg_line(e, "const float *a = %s;", cp_at(e, P, x->in[0], 'v', "t"));
    if (x->op == IR_ADD)
        cg_line(e, "const float *b = %s;", cp_at(e, P, x->in[1], 'v', "t"));
    cg_line(e, "float *y = %s;", cp_at(e, P, i, 'v', "t"));
    cg_line(e, "long j;");
    cg_line(e, "for (j = j0; j < j1; j++)");
    switch (x->op) {
    case IR_ADD: cg_line(e, "    y[j] = a[j] + b[j];"); break;
    case IR_SCALE: cg_line(e, "    y[j] = a[j] * %s;", cg_flt(e, x->fval)); break;
    case IR_DROPOUT: /* the identity at inference */
        cg_line(e, cp_train(e, P) ? "    y[j] = training ? a[j] * m[j] : a[j];" : "    y[j] = a[j];");
        break;
    default: cg_line(e, "    y[j] = a[j];"); break;
    }
    elem_close(e);
    cp_close(e, "(void)training;");
}

void ck_eltwise_bwd(TargetEmitter *em, const IrPlan *P, int i) {
    Emit *e = &em->e;
    const IrNode *x = node(e, i);
    long long n = count(e, i);
    cp_open(e, P, i, 0);
    if (x->op == IR_DROPOUT)
        cg_line(e, "const float *m = %s;", cp_ws(e, P, P->at[i].mask));
    /* steps in ascending order: a gradient stored once sums its steps as
       a step-by-step run would */
    elem_loops(e, n, 1);
    cg_line(e, "const float *gy = %s;", cp_at(e, P, i, 'g', "t"));
    cg_line(e, "long j;");
    for (int k = 0; k < x->nin; k++) {
        if (!P->at[x->in[k]].needgrad)
            continue;
        cg_line(e, "if (dx & %d) {", 1 << k);
        e->ind++;
        cg_line(e, "float *gx = %s;", cp_at(e, P, x->in[k], 'g', "t"));
        cg_line(e, "for (j = j0; j < j1; j++)");
        /* set where this is the input's only reader (IrBufs.gset): 0 + the
           term, the bits of the term added to a zeroed gradient */
        const char *to = P->at[x->in[k]].gset ? "= 0.0f +" : "+=";
        switch (x->op) {
        case IR_SCALE: cg_line(e, "    gx[j] %s gy[j] * %s;", to, cg_flt(e, x->fval)); break;
        case IR_DROPOUT: cg_line(e, "    gx[j] %s gy[j] * m[j];", to); break;
        default: cg_line(e, "    gx[j] %s gy[j];", to); break;
        }
        e->ind--;
        cg_line(e, "}");
    }
    cg_line(e, "(void)gy;");
    cg_line(e, "(void)j;");
    elem_close(e);
    cp_close(e, x->op == IR_DROPOUT ? "(void)m;\n    (void)dx;" : "(void)dx;");
}

void ck_dropout_mask(Emit *e, int i) {
    const IrPlan *P = &e->g->trainp;
    const IrNode *x = node(e, i);
    float p = x->fval;
    cg_line(e, "{ /* %s: keep with probability %s, scaled by 1 / (1 - p) */", x->name, cg_flt(e, 1.0f - p));
    cg_line(e, "    /* element j of the whole batch (of sample first + b) keeps when");
    cg_line(e, "       unit(mix(seed ^ (node << 48) ^ (j * 0x9E3779B97F4A7C15))) >= p, node %d */", i);
    cg_line(e, "    const unsigned long long j0 = (unsigned long long)first * %lldULL;", count(e, i));
    cg_line(e, "    float *m = %s;", cp_ws(e, P, P->at[i].mask));
    cg_line(e, "    long j;");
    cg_line(e, "    for (j = 0; j < B * %lld; j++)", count(e, i));
    cg_line(e, "        m[j] = %s_unit(%s_mix(seed ^ (%dULL << 48) ^ ((j0 + (unsigned long long)j) * 0x9E3779B97F4A7C15ULL)))",
            e->p, e->p, i);
    cg_line(e, "                   >= %s ? %s : 0.0f;", cg_flt(e, p), cg_flt(e, 1.0f / (1.0f - p)));
    cg_line(e, "}");
}

/* ---- prev(): the value of the source at the previous step ---- */

/* y[t] = 0 at the first step, else the source's value at t - 1. In the
   inference plan, a source that runs in an earlier group has computed the
   steps of this call before it, over the slots of its chunk, which may
   have overwritten its value before the call: that one is kept in a carry,
   written at the end of every call. */
void ck_delay_fwd(TargetEmitter *em, const IrPlan *P, int i) {
    Emit *e = &em->e;
    const IrNode *x = node(e, i);
    int s = x->in[0];
    long long n = count(e, i);
    int64_t carry = P->at[i].carry;
    cp_open(e, P, i, 1);
    cg_line(e, "for (int t = from; t < to; t++) {");
    e->ind++;
    cg_line(e, "float *y = %s;", cp_at(e, P, i, 'v', "t"));
    cg_line(e, "if (t == 0)");
    cg_line(e, "    memset(y, 0, (size_t)B * %lld * sizeof(float));", n);
    if (carry >= 0) {
        cg_line(e, "else if (t == from)");
        cg_line(e, "    memcpy(y, %s, (size_t)B * %lld * sizeof(float));", cp_ws(e, P, carry), n);
    }
    cg_line(e, "else");
    cg_line(e, "    memcpy(y, %s, (size_t)B * %lld * sizeof(float));", cp_at(e, P, s, 'v', "t - 1"), n);
    e->ind--;
    cg_line(e, "}");
    if (carry >= 0)
        cg_line(e, "memcpy(%s, %s, (size_t)B * %lld * sizeof(float));", cp_ws(e, P, carry), cp_at(e, P, s, 'v', "to - 1"),
                n);
    cp_close(e, "(void)training;");
}

void ck_delay_bwd(TargetEmitter *em, const IrPlan *P, int i) {
    Emit *e = &em->e;
    const IrNode *x = node(e, i);
    int s = x->in[0];
    long long n = count(e, i);
    cp_open(e, P, i, 0);
    if (P->at[s].needgrad) {
        cg_line(e, "for (int t = from; t < to; t++) {");
        e->ind++;
        cg_line(e, "const float *gy = %s;", cp_at(e, P, i, 'g', "t"));
        cg_line(e, "float *gs;");
        cg_line(e, "if (t == 0 || !dx)");
        cg_line(e, "    continue;");
        cg_line(e, "gs = %s;", cp_at(e, P, s, 'g', "t - 1"));
        cg_par_for(e, fmt(e, "B * %lld", n));
        cg_line(e, "for (long j = 0; j < B * %lld; j++)", n);
        cg_line(e, "    gs[j] += gy[j];");
        e->ind--;
        cg_line(e, "}");
    }
    cp_close(e, "(void)dx;");
}

/* ---- batch normalization ---- */

/* A channel's sums run in double lanes (TARGET_BN_LANES, backend.h): the
   lanes break the chain of dependent additions that one sum is, and GCC
   vectorizes them. The walk over the channel's values: body is run with
   xi, the value's index, and l, its lane, in scope (r and k are the
   caller's). */
static void bn_lanes(Emit *e, long long C, long long hw, const char *const *body, int n) {
    long long full = hw / TARGET_BN_LANES * TARGET_BN_LANES;
    cg_line(e, "for (r = 0; r < rows; r++) {");
    e->ind++;
    cg_line(e, "const long o = (r * %lld + c) * %lld;", C, hw);
    if (full) {
        cg_line(e, "for (k = 0; k < %lld; k += %d)", full, TARGET_BN_LANES);
        cg_line(e, "    for (long l = 0; l < %d; l++) {", TARGET_BN_LANES);
        e->ind += 2;
        cg_line(e, "const long xi = o + k + l;");
        for (int j = 0; j < n; j++)
            cg_line(e, "%s", body[j]);
        e->ind -= 2;
        cg_line(e, "    }");
    }
    if (full < hw) {
        cg_line(e, "for (k = %lld; k < %lld; k++) { /* the row's last values */", full, hw);
        e->ind++;
        cg_line(e, "const long xi = o + k, l = k - %lld;", full);
        for (int j = 0; j < n; j++)
            cg_line(e, "%s", body[j]);
        e->ind--;
        cg_line(e, "}");
    }
    e->ind--;
    cg_line(e, "}");
}

/* The total of the lanes' array v: lane 0 + lane 1 + ..., in order. */
static const char *lane_sum(Emit *e, const char *v) {
    Buf b = {0};
    for (int l = 0; l < TARGET_BN_LANES; l++)
        buf_printf(&b, "%s%s[%d]", l ? " + " : "", v, l);
    const char *s = arena_strdup(e->g->arena, b.data);
    buf_free(&b);
    return s;
}

/* The batch normalization of channel c, inside a loop or a thread over c:
   gamma, beta, rmean, rvar, rows, xw and yw in scope, and in training mean
   and istd. `training` names the flag that selects the batch's statistics
   (computed in double, the running ones updated); NULL at inference. */
void cp_batchnorm_channel(Emit *e, const IrPlan *P, int i, const char *training) {
    const IrNode *x = node(e, i);
    int in = x->in[0];
    long long C = x->shape.d[0], hw = count(e, i) / C;
    /* the input row of output row r: the same row of every step when the
       input is stored once */
    const char *xr = P->at[in].inv && !P->at[i].inv ? "(r % B)" : "r";
    cg_line(e, "long r, k;");
    if (training)
        cg_line(e, "if (!%s) { /* as at inference */", training);
    else
        cg_line(e, "{");
    cg_line(e, "    const float a = gamma[c] / sqrtf(rvar[c] + %s);", cg_flt(e, x->fval));
    cg_line(e, "    const float sh = beta[c] - rmean[c] * a;");
    cg_line(e, "    for (r = 0; r < rows; r++)");
    cg_line(e, "        for (k = 0; k < %lld; k++)", hw);
    cg_line(e, "            yw[(r * %lld + c) * %lld + k] = xw[(%s * %lld + c) * %lld + k] * a + sh;", C, hw, xr, C, hw);
    if (training) {
        cg_line(e, "} else { /* the batch's statistics over all steps, in double */");
        e->ind++;
        cg_line(e, "const double cnt = (double)rows * %lld;", hw);
        cg_line(e, "double s, q, sl[%d] = {0.0}, ql[%d] = {0.0}; /* value k of a row in lane k %% %d */", TARGET_BN_LANES,
                TARGET_BN_LANES, TARGET_BN_LANES);
        cg_line(e, "float m, is;");
        static const char *const sum[] = {"sl[l] += xw[xi];"};
        bn_lanes(e, C, hw, sum, 1);
        cg_line(e, "s = %s;", lane_sum(e, "sl"));
        cg_line(e, "m = (float)(s / cnt);");
        static const char *const dev[] = {"const double d = (double)xw[xi] - m;", "ql[l] += d * d;"};
        bn_lanes(e, C, hw, dev, 2);
        cg_line(e, "q = %s;", lane_sum(e, "ql"));
        cg_line(e, "is = (float)(1.0 / sqrt(q / cnt + %s));", cg_flt(e, x->fval));
        cg_line(e, "mean[c] = m;");
        cg_line(e, "istd[c] = is;");
        cg_line(e, "for (r = 0; r < rows; r++)");
        cg_line(e, "    for (k = 0; k < %lld; k++)", hw);
        cg_line(e, "        yw[(r * %lld + c) * %lld + k] = (xw[(r * %lld + c) * %lld + k] - m) * is * gamma[c] + beta[c];",
                C, hw, C, hw);
        cg_line(e, "rmean[c] = 0.9f * rmean[c] + 0.1f * m;");
        if (P->at[in].inv)
            /* the input is stored once for its T equal steps: the unbiased
               variance counts all T copies, as a framework that runs every
               step would */
            cg_line(e, "rvar[c] = 0.9f * rvar[c] + 0.1f * (float)(%d.0 * q / (%d.0 * cnt - 1.0));", e->g->timesteps,
                    e->g->timesteps);
        else
            cg_line(e, "rvar[c] = 0.9f * rvar[c] + 0.1f * (float)(cnt > 1.0 ? q / (cnt - 1.0) : q);");
        e->ind--;
    }
    cg_line(e, "}");
}

/* At inference (and in eval mode) y = x a + (beta - mean a), a = gamma /
   sqrt(var + eps), per channel. Training normalizes with the statistics
   of the batch over all steps and updates the running ones (momentum 0.1,
   the unbiased variance, as PyTorch). Threads take channels. */
void ck_batchnorm_fwd(TargetEmitter *em, const IrPlan *P, int i) {
    Emit *e = &em->e;
    const IrNode *x = node(e, i);
    int in = x->in[0], train = cp_train(e, P);
    long long C = x->shape.d[0], hw = count(e, i) / C;
    cp_open(e, P, i, 1);
    cg_line(e, "const float *gamma = %s, *beta = %s;", cp_param(e, x->param[0]), cp_param(e, x->param[1]));
    cg_line(e, "%sfloat *rmean = %s, *rvar = %s;", train ? "" : "const ", cp_param(e, x->param[2]),
            cp_param(e, x->param[3]));
    cg_line(e, "const long rows = (long)(to - from) * B;");
    cg_line(e, "const float *xw = %s;", cp_at(e, P, in, 'v', "from"));
    cg_line(e, "float *yw = %s;", cp_at(e, P, i, 'v', "from"));
    if (train)
        cg_line(e, "float *mean = %s, *istd = %s;", cp_ws(e, P, P->at[i].stat), cp_ws(e, P, P->at[i].stat + C));
    cg_par_for(e, fmt(e, "rows * %lld", C * hw));
    cg_line(e, "for (long c = 0; c < %lld; c++) {", C);
    e->ind++;
    cp_batchnorm_channel(e, P, i, train ? "training" : NULL);
    e->ind--;
    cg_line(e, "}");
    cp_close(e, "(void)training;");
}

/* The backward of channel c, inside a loop or a thread over c: gamma,
   dgamma, dbeta, mean, istd, rows, xw and gy in scope. dgamma and dbeta get
   the channel's sums (in double, rows in order); when the input needs its
   gradient and `flag` holds, gx gets dL/dx, declared as the pointer gx_at
   first when given (else gx is in scope). */
void cp_batchnorm_channel_bwd(Emit *e, const IrPlan *P, int i, const char *flag, const char *gx_at) {
    const IrNode *x = node(e, i);
    int in = x->in[0];
    long long C = x->shape.d[0], hw = count(e, i) / C;
    cg_line(e, "const double cnt = (double)rows * %lld;", hw);
    cg_line(e, "double sg, sgx, gl[%d] = {0.0}, gxl[%d] = {0.0}; /* value k of a row in lane k %% %d */", TARGET_BN_LANES,
            TARGET_BN_LANES, TARGET_BN_LANES);
    cg_line(e, "const float m = mean[c], is = istd[c];");
    cg_line(e, "long r, k;");
    static const char *const sums[] = {"const float g = gy[xi];", "gl[l] += g;",
                                       "gxl[l] += (double)g * ((xw[xi] - m) * is);"};
    bn_lanes(e, C, hw, sums, 3);
    cg_line(e, "sg = %s;", lane_sum(e, "gl"));
    cg_line(e, "sgx = %s;", lane_sum(e, "gxl"));
    cg_line(e, "dgamma[c] += (float)sgx;");
    cg_line(e, "dbeta[c] += (float)sg;");
    if (!P->at[in].needgrad)
        return;
    cg_line(e, "if (%s) { /* gx = gamma is (g - mean(g) - xhat mean(g xhat)) */", flag);
    e->ind++;
    if (gx_at)
        cg_line(e, "float *gx = %s;", gx_at);
    cg_line(e, "const float k1 = gamma[c] * is, k2 = (float)(sg / cnt), k3 = (float)(sgx / cnt);");
    cg_line(e, "for (r = 0; r < rows; r++)");
    cg_line(e, "    for (k = 0; k < %lld; k++) {", hw);
    cg_line(e, "        const long xi = (r * %lld + c) * %lld + k;", C, hw);
    cg_line(e, "        const float xh = (xw[xi] - m) * is;");
    /* set where the input's only reader is this layer (IrBufs.gset) */
    cg_line(e, "        gx[xi] %s k1 * (gy[xi] - k2 - xh * k3);", P->at[in].gset ? "= 0.0f +" : "+=");
    cg_line(e, "    }");
    e->ind--;
    cg_line(e, "}");
}

void ck_batchnorm_bwd(TargetEmitter *em, const IrPlan *P, int i) {
    Emit *e = &em->e;
    const IrNode *x = node(e, i);
    int in = x->in[0];
    long long C = x->shape.d[0], hw = count(e, i) / C;
    cp_open(e, P, i, 0);
    cg_line(e, "const float *gamma = %s;", cp_param(e, x->param[0]));
    cg_line(e, "float *dgamma = %s, *dbeta = %s;", cp_grad(e, x->param[0]), cp_grad(e, x->param[1]));
    cg_line(e, "const float *mean = %s, *istd = %s;", cp_ws(e, P, P->at[i].stat), cp_ws(e, P, P->at[i].stat + C));
    cg_line(e, "const long rows = (long)(to - from) * B;");
    cg_line(e, "const float *xw = %s;", cp_at(e, P, in, 'v', "from"));
    cg_line(e, "const float *gy = %s;", cp_at(e, P, i, 'g', "from"));
    if (P->at[in].needgrad)
        cg_line(e, "float *gx = %s;", cp_at(e, P, in, 'g', "from"));
    cg_par_for(e, fmt(e, "rows * %lld", C * hw));
    cg_line(e, "for (long c = 0; c < %lld; c++) {", C);
    e->ind++;
    cp_batchnorm_channel_bwd(e, P, i, "dx", NULL);
    e->ind--;
    cg_line(e, "}");
    cp_close(e, "(void)gamma;\n    (void)dx;");
}
