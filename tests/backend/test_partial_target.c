/*
 * test_partial_target.c: a target that lacks an op gets a diagnostic that
 * names the op, the layer, its source line and the target, and writes no
 * code; it never falls back to another kernel.
 *
 * The targets here are copies of the C target with one entry of the kernel
 * table left out: the forward of maxpool, and (for a trained graph) the
 * backward of dense. A complete copy must generate the files.
 */
#include <stdlib.h>
#include <string.h>

#include "ast.h"
#include "backend.h"
#include "passes.h"
#include "sema.h"

extern const char snnc_stdlib_snn[];
extern const unsigned long snnc_stdlib_snn_len;

static const char *model =
    "network Partial {\n"
    "  timesteps 3;\n"
    "  input x : [1, 4, 4] encode direct;\n"
    "  p = x |> conv2d(2, 3, padding = 1) |> LIF() |> maxpool(2);\n"
    "  out = p |> flatten |> dense(3) |> LI();\n"
    "  output out readout mean;\n"
    "}\n";

static int failures;

static void expect(int ok, const char *what) {
    if (!ok) {
        printf("FAIL: %s\n", what);
        failures++;
    } else
        printf("ok: %s\n", what);
}

/* Builds the model's graph through every pass; train: with its gradients. */
static IrGraph *build(Arena *a, int train) {
    diag_reset();
    int sf = src_add("<stdlib>/neurons.snn", snnc_stdlib_snn, snnc_stdlib_snn_len);
    Node *std = parse_source(a, sf, snnc_stdlib_snn, snnc_stdlib_snn_len);
    int uf = src_add("partial.snn", model, strlen(model));
    Node *user = parse_source(a, uf, src_text(uf), strlen(model));
    SemaOptions so;
    memset(&so, 0, sizeof so);
    IrGraph *g = sema_build(a, std, user, &so);
    if (!g)
        return NULL;
    g->train = train;
    PassOptions po;
    memset(&po, 0, sizeof po);
    return pass_run_all(g, &po) == 0 ? g : NULL;
}

/* Generates g with t; returns the number of files, and the diagnostics in msg. */
static int generate(const Target *t, const IrGraph *g, char *msg, size_t len) {
    FILE *f = tmpfile();
    diag_reset();
    diag_set_stream(f);
    CgenOptions co;
    memset(&co, 0, sizeof co);
    GenFile files[TARGET_MAX_FILES];
    int n = target_generate(t, g, &co, files);
    for (int i = 0; i < n; i++)
        buf_free(&files[i].text);
    diag_set_stream(stderr);
    rewind(f);
    size_t got = fread(msg, 1, len - 1, f);
    msg[got] = 0;
    fclose(f);
    return n;
}

int main(void) {
    Arena a = {0};
    char msg[4096];
    TargetKernels kernels[IR_NUM_OPS];

    IrGraph *g = build(&a, 0);
    expect(g != NULL, "the model compiles");
    if (!g)
        return 1;
    Target whole = target_c;
    whole.name = "whole";
    expect(generate(&whole, g, msg, sizeof msg) == 2 && !*msg, "a complete copy of the C target generates two files");

    memcpy(kernels, target_c.kernels, sizeof kernels);
    kernels[IR_MAXPOOL].fwd = NULL;
    Target partial = target_c;
    partial.name = "partial";
    partial.kernels = kernels;
    int n = generate(&partial, g, msg, sizeof msg);
    printf("%s", msg);
    expect(n < 0, "a target without maxpool generates nothing");
    expect(strstr(msg, "partial.snn:4:") != NULL, "the diagnostic is at the layer's source line");
    expect(strstr(msg, "target 'partial' has no forward kernel for op 'maxpool' (layer 'p')") != NULL,
           "it names the target, the op and the layer");

    IrGraph *gt = build(&a, 1);
    expect(gt != NULL, "the model compiles for training");
    if (!gt)
        return 1;
    memcpy(kernels, target_c.kernels, sizeof kernels);
    kernels[IR_DENSE].bwd = NULL;
    n = generate(&partial, gt, msg, sizeof msg);
    printf("%s", msg);
    expect(n < 0 && strstr(msg, "partial.snn:5:") &&
               strstr(msg, "target 'partial' has no backward kernel for op 'dense' (layer 'out_dense')"),
           "a trained graph needs the backward kernels too");
    n = generate(&partial, g, msg, sizeof msg);
    expect(n == 2, "inference does not need the backward kernels");
    arena_free(&a);
    return failures ? 1 : 0;
}
