/*
 * x86.c: the x86 SIMD targets, --target avx512 and --target avx2: one
 * target at two widths.
 *
 * They write the same C as the portable target (its kernels, its API, its
 * build: compiler/backend/c/), with the matrix product's innermost block
 * written in the instruction set's intrinsics, register-blocked: 12 rows
 * by 32 columns of C in 24 AVX-512 registers, or 6 by 16 in 12 AVX2
 * registers, each step of k one load of the panel of B per column of
 * registers and one broadcast per row of A. The products are added in k
 * order; with --math exact multiply then add, as the portable target adds
 * them, so that the two give the same results (only the sign of a zero can
 * differ, where one skips a step of zero spikes that the other computes);
 * with --math fast, their default, in fused multiply-adds (one rounding a
 * term instead of two), with which the two differ by rounding.
 *
 * The generated file includes <immintrin.h>, or with -D<NET>_SIMDE the
 * portable versions of SIMDe (Debian's libsimde-dev), so that the code can
 * be built and tested on any CPU; its API checks the CPU when first called
 * and stops with a message on one without the instructions.
 */
#include <stdio.h>
#include <string.h>

#include "../c/c.h"

/* The loads (store 0) or stores of the accumulators from or to `at`, a
   format of the row and the column of the element. */
static void load_store(Emit *e, int mr, int nv, int w, const char *fn, const char *at, int store) {
    for (int r = 0; r < mr; r++) {
        Buf l = {0};
        for (int h = 0; h < nv; h++) {
            char where[64];
            snprintf(where, sizeof where, at, r, h * w);
            if (store)
                buf_printf(&l, "%s%s_storeu_ps(&%s, c%d_%d);", h ? " " : "", fn, where, r, h);
            else
                buf_printf(&l, "%sc%d_%d = %s_loadu_ps(&%s);", h ? " " : "", r, h, fn, where);
        }
        cg_line(e, "%s", l.data);
        buf_free(&l);
    }
}

/* The loop over the steps of k of the block: am, where A's values of the
   step are (a format of mr: row r at am[row], row a format of r), bn the
   panel's row of B (row kb of the panel). */
static void step(Emit *e, int mr, int nr, int isa, const char *a, const char *kb, const char *row) {
    int w = isa == ISA_AVX512 ? 16 : 8, nv = nr / w;
    const char *V = isa == ISA_AVX512 ? "__m512" : "__m256", *fn = isa == ISA_AVX512 ? "_mm512" : "_mm256";
    cg_line(e, "for (k = 0; k < nk; k++) {");
    e->ind++;
    cg_line(e, "const float *am = %s, *bn = pbj + %s * %d;", arena_printf(e->g->arena, a, mr), kb, nr);
    Buf d = {0};
    for (int h = 0; h < nv; h++)
        buf_printf(&d, "%sb%d = %s_loadu_ps(bn + %d)", h ? ", " : "", h, fn, h * w);
    cg_line(e, "const %s %s;", V, d.data);
    buf_free(&d);
    cg_line(e, "%s av;", V);
    for (int r = 0; r < mr; r++) {
        Buf l = {0};
        buf_printf(&l, "av = %s_set1_ps(am[", fn);
        buf_printf(&l, row, r);
        buf_printf(&l, "]);");
        for (int h = 0; h < nv; h++)
            if (e->fast)
                buf_printf(&l, " c%d_%d = %s_fmadd_ps(av, b%d, c%d_%d);", r, h, fn, h, r, h);
            else
                buf_printf(&l, " c%d_%d = %s_add_ps(c%d_%d, %s_mul_ps(av, b%d));", r, h, fn, r, h, fn, h);
        cg_line(e, "%s", l.data);
        buf_free(&l);
    }
    e->ind--;
    cg_line(e, "}");
}

/* The block: accumulators c<row>_<col> in registers, loaded from and
   stored to C directly where the block is whole and C's rows contiguous,
   set from vectors where they start from a bias the same in every row (a
   dense layer's bias, or a zero where a gradient is set, not added to),
   else through a local tile (which takes care of the block's edges, of
   C's strides and of a bias by row). stride: the packed block's values a
   step of k (the product's MR); inplace: also the loops that read A in
   place. */
static void tile_rows(Emit *e, int mr, int nr, int isa, int stride, int inplace) {
    int w = isa == ISA_AVX512 ? 16 : 8, nv = nr / w;
    const char *V = isa == ISA_AVX512 ? "__m512" : "__m256", *fn = isa == ISA_AVX512 ? "_mm512" : "_mm256";
    cg_line(e, "float t[%d][%d];", mr, nr);
    Buf d = {0};
    for (int r = 0; r < mr; r++)
        for (int h = 0; h < nv; h++)
            buf_printf(&d, "%sc%d_%d", r || h ? ", " : "", r, h);
    cg_line(e, "%s %s;", V, d.data ? d.data : "");
    buf_free(&d);
    cg_line(e, "const int whole = mi == %d && nj == %d && cj == 1; /* C's rows are the registers' */", mr, nr);
    cg_line(e, "if (whole && !(k0 == 0 && bias)) {");
    e->ind++;
    load_store(e, mr, nv, w, fn, "c0[%d * ci + %d]", 0);
    e->ind--;
    cg_line(e, "} else if (whole && si == 0 && (sj == 0 || sj == 1)) { /* a bias the same in every row */");
    e->ind++;
    for (int h = 0; h < nv; h++)
        cg_line(e, "const %s s%d = sj ? %s_loadu_ps(bias + jp * %d + %d) : %s_set1_ps(bias[0]);", V, h, fn, nr, h * w, fn);
    for (int r = 0; r < mr; r++) {
        Buf l = {0};
        for (int h = 0; h < nv; h++)
            buf_printf(&l, "%sc%d_%d = s%d;", h ? " " : "", r, h, h);
        cg_line(e, "%s", l.data);
        buf_free(&l);
    }
    e->ind--;
    cg_line(e, "} else { /* an edge of C, strided columns or a bias by row: through t */");
    e->ind++;
    cg_line(e, "for (i = 0; i < %d; i++)", mr);
    cg_line(e, "    for (j = 0; j < %d; j++)", nr);
    cg_line(e, "        t[i][j] = i >= mi || j >= nj ? 0.0f");
    cg_line(e, "                  : k0 == 0 && bias ? bias[(ib + i) * si + (jp * %d + j) * sj] : c0[i * ci + j * cj];", nr);
    load_store(e, mr, nv, w, fn, "t[%d][%d]", 0);
    e->ind--;
    cg_line(e, "}");
    if (inplace) {
        cg_line(e, "if (ap) /* every step, A read in place: its rows */");
        e->ind++;
        step(e, mr, nr, isa, "ap + k", "k", "%d * ai");
        e->ind--;
        cg_line(e, "else /* the steps of k that the packing kept */");
        e->ind++;
    } else
        cg_line(e, "/* the steps of k that the packing kept */");
    step(e, mr, nr, isa, arena_printf(e->g->arena, "pa + k * %d", stride), "kx[k]", "%d");
    if (inplace)
        e->ind--;
    cg_line(e, "if (whole) {");
    e->ind++;
    load_store(e, mr, nv, w, fn, "c0[%d * ci + %d]", 1);
    e->ind--;
    cg_line(e, "} else {");
    e->ind++;
    load_store(e, mr, nv, w, fn, "t[%d][%d]", 1);
    cg_line(e, "for (i = 0; i < mi; i++)");
    cg_line(e, "    for (j = 0; j < nj; j++)");
    cg_line(e, "        c0[i * ci + j * cj] = t[i][j];");
    e->ind--;
    cg_line(e, "}");
}

/* The block of C of the product: mr rows, or, for a block of at most
   EDGE_ROWS rows (the last of a product whose rows are not a multiple of
   mr: the MLP's 128 rows are 10 blocks of 12 and one of 8), a tile of
   EDGE_ROWS rows over the same packed block of A, which otherwise spends a
   third of its multiply-adds on rows of zeros. Such a block is always
   packed (A is read in place only in blocks of mr rows). */
#define EDGE_ROWS 8

static void tile(Emit *e, int mr, int nr, int isa) {
    if (mr <= EDGE_ROWS) {
        tile_rows(e, mr, nr, isa, mr, 1);
        return;
    }
    cg_line(e, "if (mi <= %d) { /* a block of at most %d rows */", EDGE_ROWS, EDGE_ROWS);
    e->ind++;
    tile_rows(e, EDGE_ROWS, nr, isa, mr, 0);
    e->ind--;
    cg_line(e, "} else {");
    e->ind++;
    tile_rows(e, mr, nr, isa, mr, 1);
    e->ind--;
    cg_line(e, "}");
}

/* <p>_pack_cols: a panel of nr columns of B, each contiguous along k (a
   row of a dense layer's weight), packed as the micro-kernel reads it,
   d[k * nr + j] = s[j * ld + k]: blocks of w columns by w steps of k are
   transposed in registers (three rounds of shuffles: 32-bit, 64-bit and
   128-bit pieces, then for AVX-512 the 128-bit lanes again), and the last
   kc % w steps are copied one value at a time. Packing a value at a time
   instead cost a fifth of the MLP's inference (bench/RESULTS.md). */
static void pack_cols(Emit *e, int nr, int isa) {
    const int w = isa == ISA_AVX512 ? 16 : 8;
    const char *V = isa == ISA_AVX512 ? "__m512" : "__m256", *fn = isa == ISA_AVX512 ? "_mm512" : "_mm256";
    cg_blank(e);
    cg_line(e, "/* d[k * %d + j] = s[j * ld + k] for k < kc and j < %d: a panel of B whose", nr, nr);
    cg_line(e, "   columns are contiguous, transposed %d x %d at a time in registers */", w, w);
    cg_line(e, "static void %s_pack_cols(const float *s, long ld, long kc, float *d)", e->p);
    cg_line(e, "{");
    e->ind++;
    cg_line(e, "long j0, k, j;");
    cg_line(e, "for (j0 = 0; j0 < %d; j0 += %d) {", nr, w);
    e->ind++;
    cg_line(e, "const float *s0 = s + j0 * ld;");
    cg_line(e, "for (k = 0; k + %d <= kc; k += %d) {", w, w);
    e->ind++;
    cg_line(e, "%s r[%d], t[%d];", V, w, w);
    cg_line(e, "int x;");
    cg_line(e, "for (x = 0; x < %d; x++)", w);
    cg_line(e, "    r[x] = %s_loadu_ps(s0 + x * ld + k);", fn);
    cg_line(e, "for (x = 0; x < %d; x += 2) {", w);
    cg_line(e, "    t[x] = %s_unpacklo_ps(r[x], r[x + 1]);", fn);
    cg_line(e, "    t[x + 1] = %s_unpackhi_ps(r[x], r[x + 1]);", fn);
    cg_line(e, "}");
    cg_line(e, "for (x = 0; x < %d; x += 4) {", w);
    if (isa == ISA_AVX512) {
        const char *lo = "_mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[%s]), _mm512_castps_pd(t[%s])))";
        const char *hi = "_mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[%s]), _mm512_castps_pd(t[%s])))";
        cg_line(e, "    r[x] = %s;", arena_printf(e->g->arena, lo, "x", "x + 2"));
        cg_line(e, "    r[x + 1] = %s;", arena_printf(e->g->arena, hi, "x", "x + 2"));
        cg_line(e, "    r[x + 2] = %s;", arena_printf(e->g->arena, lo, "x + 1", "x + 3"));
        cg_line(e, "    r[x + 3] = %s;", arena_printf(e->g->arena, hi, "x + 1", "x + 3"));
        cg_line(e, "}");
        /* the 128-bit lanes, through the integer shuffle (SIMDe has no
           _mm512_shuffle_f32x4): L(a, b, 0x88) = lanes 0 and 2 of a, then of b */
        const char *L = "_mm512_castsi512_ps(_mm512_shuffle_i32x4(_mm512_castps_si512(%s), _mm512_castps_si512(%s), %s))";
#define LANES(dst, a, b, imm) cg_line(e, "    %s = %s;", dst, arena_printf(e->g->arena, L, a, b, imm))
        cg_line(e, "for (x = 0; x < 4; x++) {");
        LANES("t[x]", "r[x]", "r[x + 4]", "0x88");
        LANES("t[x + 4]", "r[x]", "r[x + 4]", "0xdd");
        LANES("t[x + 8]", "r[x + 8]", "r[x + 12]", "0x88");
        LANES("t[x + 12]", "r[x + 8]", "r[x + 12]", "0xdd");
        cg_line(e, "}");
        cg_line(e, "for (x = 0; x < 4; x++) {");
        LANES("r[x]", "t[x]", "t[x + 8]", "0x88");
        LANES("r[x + 8]", "t[x]", "t[x + 8]", "0xdd");
        LANES("r[x + 4]", "t[x + 4]", "t[x + 12]", "0x88");
        LANES("r[x + 12]", "t[x + 4]", "t[x + 12]", "0xdd");
#undef LANES
        cg_line(e, "}");
        cg_line(e, "for (x = 0; x < 16; x++) /* r[x]: step k + x of the 16 columns */");
        cg_line(e, "    _mm512_storeu_ps(d + (k + x) * %d + j0, r[x]);", nr);
    } else {
        cg_line(e, "    r[x] = _mm256_shuffle_ps(t[x], t[x + 2], 0x44);");
        cg_line(e, "    r[x + 1] = _mm256_shuffle_ps(t[x], t[x + 2], 0xee);");
        cg_line(e, "    r[x + 2] = _mm256_shuffle_ps(t[x + 1], t[x + 3], 0x44);");
        cg_line(e, "    r[x + 3] = _mm256_shuffle_ps(t[x + 1], t[x + 3], 0xee);");
        cg_line(e, "}");
        cg_line(e, "for (x = 0; x < 4; x++) {");
        cg_line(e, "    t[x] = _mm256_permute2f128_ps(r[x], r[x + 4], 0x20);");
        cg_line(e, "    t[x + 4] = _mm256_permute2f128_ps(r[x], r[x + 4], 0x31);");
        cg_line(e, "}");
        cg_line(e, "for (x = 0; x < 8; x++) /* t[x]: step k + x of the 8 columns */");
        cg_line(e, "    _mm256_storeu_ps(d + (k + x) * %d + j0, t[x]);", nr);
    }
    e->ind--;
    cg_line(e, "}");
    cg_line(e, "for (; k < kc; k++)");
    cg_line(e, "    for (j = 0; j < %d; j++)", w);
    cg_line(e, "        d[k * %d + j0 + j] = s0[j * ld + k];", nr);
    e->ind--;
    cg_line(e, "}");
    e->ind--;
    cg_line(e, "}");
}

static void pack_cols512(Emit *e, int nr) { pack_cols(e, nr, ISA_AVX512); }
static void pack_cols256(Emit *e, int nr) { pack_cols(e, nr, ISA_AVX2); }

static void tile512(Emit *e, int mr, int nr) { tile(e, mr, nr, ISA_AVX512); }
static void tile256(Emit *e, int mr, int nr) { tile(e, mr, nr, ISA_AVX2); }

static const CgTile tile_avx512 = {TILE_ROWS(ISA_AVX512), 32, 0, 1, tile512, "in 24 AVX-512 registers, a load of B per column of registers and a\n   broadcast of A per row at each step of k", pack_cols512};
static const CgTile tile_avx2 = {TILE_ROWS(ISA_AVX2), 16, 0, 1, tile256, "in 12 AVX2 registers, a load of B per column of registers and a\n   broadcast of A per row at each step of k", pack_cols256};

static void gemm512(TargetEmitter *em) { cg_gemm(&em->e, &tile_avx512); }
static void gemm256(TargetEmitter *em) { cg_gemm(&em->e, &tile_avx2); }

static TargetEmitter *begin512(const IrGraph *g, const CgenOptions *opt) { return capi_begin_isa(g, opt, ISA_AVX512); }
static TargetEmitter *begin256(const IrGraph *g, const CgenOptions *opt) { return capi_begin_isa(g, opt, ISA_AVX2); }

/* GCC vectorizes loops in 256-bit registers on most Intel CPUs unless told
   otherwise; in whole registers the neuron loops make a training step of
   the examples about 5 % faster (bench/RESULTS.md). */
static const char *const flags512[] = {"-mavx512f", "-mprefer-vector-width=512", NULL};
static const char *const flags256[] = {"-mavx2", "-mfma", NULL};

/* snnc loads only what this CPU runs: a clear error instead of SIGILL. */
static int runs512(void);
static int runs256(void);

static int cpu_has(const char *what, const char *target) {
    int ok = !strcmp(what, "avx512f") ? runs512() : runs256();
    if (!ok)
        error_plain("target '%s' needs a CPU with %s, and this one has not (see snnc --list-targets)", target,
                    !strcmp(what, "avx512f") ? "AVX-512F" : "AVX2 and FMA");
    return ok;
}

static int load512(const IrGraph *g, const LoadOptions *lo, LoadedModel *m) {
    if (!cpu_has("avx512f", "avx512"))
        return -1;
    return cbuild_load(&target_avx512, flags512, g, lo, m);
}

static int load256(const IrGraph *g, const LoadOptions *lo, LoadedModel *m) {
    if (!cpu_has("avx2", "avx2"))
        return -1;
    return cbuild_load(&target_avx2, flags256, g, lo, m);
}

static int runs512(void) {
#if defined(__GNUC__) || defined(__clang__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") != 0;
#else
    return 0;
#endif
}

static int runs256(void) {
#if defined(__GNUC__) || defined(__clang__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

const Target target_avx512 = {
    .name = "avx512",
    .doc = "C with AVX-512 intrinsics: register-blocked matrix products (16 lanes); --math fast by default",
    .kernels = ck_kernels, /* the portable target's */
    .begin = begin512,
    .gemm = gemm512,
    .conv = ck_conv,
    .api = capi_api,
    .finish = capi_finish,
    .load = load512,
    .remat = 1,
    .unload = cbuild_unload,
    .runs_here = runs512,
};

const Target target_avx2 = {
    .name = "avx2",
    .doc = "C with AVX2 and FMA intrinsics: register-blocked matrix products (8 lanes); --math fast by default",
    .kernels = ck_kernels,
    .begin = begin256,
    .gemm = gemm256,
    .conv = ck_conv,
    .api = capi_api,
    .finish = capi_finish,
    .load = load256,
    .remat = 1,
    .unload = cbuild_unload,
    .runs_here = runs256,
};
