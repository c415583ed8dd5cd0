/*
 * fuzz_import.c: what the fuzz targets of the importers (fuzz_onnx.c,
 * fuzz_nir.c) share: the network text a model converts to is parsed, its
 * tensors are bound to the graph's parameters as the driver binds them
 * (compiler/driver/model.c, linked in), and the network is compiled
 * (fuzz.c) for inference and for training. model.c calls into the rest
 * of the driver (main.c) for --weights and snnc export, which no input
 * here reaches: those are stand-ins that say so.
 */
#include <string.h>

#include "driver.h"
#include "fuzz.h"
#include "onnx.h"

#define UNREACHED ICE("not reached while fuzzing")
int drv_read_weights_into(const IrGraph *g, const char *path, int allow_missing, float *w) {
    (void)g, (void)path, (void)allow_missing, (void)w;
    UNREACHED;
}
IrGraph *drv_front_end(Arena *a, Options *o) {
    (void)a, (void)o;
    UNREACHED;
}
IrGraph *drv_middle_end(Arena *a, Options *o, IrGraph *g) {
    (void)a, (void)o, (void)g;
    UNREACHED;
}
int drv_check_result_path(Arena *a, const char *path) {
    (void)a, (void)path;
    UNREACHED;
}
const char *drv_folder_of(Arena *a, const char *path) {
    (void)a, (void)path;
    UNREACHED;
}
void drv_remove_stale(const char *dir) {
    (void)dir;
    UNREACHED;
}

typedef struct Imported {
    const char *path;
    OnnxImport *imp;
} Imported;

/* After sema: the model's tensors, checked against the parameters. */
static int bind_weights(Arena *a, IrGraph *g, void *ctx) {
    const Imported *m = ctx;
    Options o;
    memset(&o, 0, sizeof o);
    o.input_file = m->path;
    o.onnx = m->imp;
    return drv_bind_onnx_weights(a, &o, g);
}

void fuzz_imported(Arena *a, const char *path, const char *converted, OnnxImport *imp, unsigned variant) {
    Imported m = {path, imp};
    int f = src_add(converted, imp->text, imp->len);
    Node *user = parse_source(a, f, src_text(f), imp->len);
    if (diag_errors())
        return;
    fuzz_compile(a, user, 0, variant >> 3, bind_weights, &m);
    fuzz_compile(a, user, 1, variant >> 11, bind_weights, &m);
}
