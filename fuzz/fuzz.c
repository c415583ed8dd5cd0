/*
 * fuzz.c: the compilation the compiler's fuzz targets share (fuzz.h).
 *
 * The built-in neuron library is parsed once, into an arena of its own:
 * sema only reads its trees, so every input can use them. Everything an
 * input makes lives in the caller's per-input arena and in the sources
 * added after the library's, which fuzz_reset forgets, so that the process
 * stays small and leak-free however long it runs. Diagnostics are built
 * and formatted as usual (the caret lines too), into /dev/null.
 */
#include "fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "passes.h"
#include "sema.h"
#include "trainspec.h"

extern const char snnc_stdlib_snn[];
extern const unsigned long snnc_stdlib_snn_len;

static Arena std_arena;
static Node *std_items;
static int std_mark; /* the sources up to here (the library's) are kept */

/* The targets an input may pick; those this build lacks (llvm) are left
   out when it starts. */
static const char *const all_targets[] = {"c", "avx512", "avx2", "cuda", "llvm"};
static const Target *targets[5];
static int ntargets;

void fuzz_init(void) {
    FILE *null = fopen("/dev/null", "w");
    if (!null) {
        perror("/dev/null");
        abort();
    }
    diag_set_stream(null);
    int f = src_add("<stdlib>/neurons.snn", snnc_stdlib_snn, snnc_stdlib_snn_len);
    std_items = parse_source(&std_arena, f, src_text(f), snnc_stdlib_snn_len);
    if (diag_errors())
        ICE("the built-in neuron library does not parse");
    std_mark = src_mark();
    for (int k = 0; k < (int)(sizeof all_targets / sizeof *all_targets); k++) {
        const Target *t = target_lookup(all_targets[k]);
        if (t && !t->missing)
            targets[ntargets++] = t;
    }
}

unsigned fuzz_variant(const uint8_t *data, size_t size) {
    unsigned v = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < size; i++)
        v = (v ^ data[i]) * 16777619u;
    return v;
}

void fuzz_compile(Arena *a, Node *user, int train, unsigned variant, FuzzHook *after_sema, void *ctx) {
    diag_reset();
    SemaOptions so;
    memset(&so, 0, sizeof so);
    IrGraph *g = sema_build(a, std_items, user, &so);
    TrainSpec ts;
    memset(&ts, 0, sizeof ts);
    if (!g || !trainspec_build(user, g->name, &ts) || diag_errors())
        return;
    if (after_sema && after_sema(a, g, ctx))
        return;
    const Target *t = targets[(variant >> 4) % (unsigned)ntargets];
    int precision = t->precisions ? (int)((variant >> 8) % PREC_COUNT) : PREC_FP32;
    g->batch = 1 + (int)(variant % 3);
    g->train = train;
    g->chunk = variant & 4 ? 1 : 0;
    if (train && (precision == PREC_BF16 || precision == PREC_FP16)) /* as the driver sets it */
        g->store = precision == PREC_BF16 ? STORE_BF16 : STORE_FP16;
    PassOptions po;
    memset(&po, 0, sizeof po);
    if (pass_run_all(g, &po) != 0 || diag_errors())
        return;
    Buf b = {0};
    ir_print(g, &b);
    ir_dot(g, &b);
    buf_free(&b);
    CgenOptions co;
    memset(&co, 0, sizeof co);
    co.static_ws = (variant & 8) != 0;
    co.precision = precision;
    /* --embed-weights (inference only, as the driver allows it): the
       parameters' values, drawn from the variant */
    float *w = NULL;
    if (!train && (variant & 0x1000) && g->param_floats > 0 && g->param_floats <= (1 << 20)) {
        w = malloc(sizeof(float) * (size_t)g->param_floats);
        if (!w)
            ICE("out of memory");
        for (int64_t k = 0; k < g->param_floats; k++)
            w[k] = (float)((variant >> (k % 16)) & 0xff) / 64.0f - 2.0f;
        co.embedded = w;
    }
    GenFile files[TARGET_MAX_FILES];
    int n = target_generate(t, g, &co, files);
    for (int i = 0; i < n; i++)
        buf_free(&files[i].text);
    free(w);
}

void fuzz_reset(void) {
    src_release(std_mark);
    diag_reset();
}
