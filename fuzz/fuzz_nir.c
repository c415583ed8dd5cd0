/*
 * fuzz_nir.c: the NIR front end, in process: a file's bytes are read as
 * HDF5 from memory and imported (nir_import_mem), the network text it
 * converts to is parsed, its tensors are bound to the graph's parameters
 * as the driver binds them (compiler/driver/model.c, linked in), and the
 * network is compiled (fuzz.c) for inference and for training. The input
 * picks the convention (nir or snntorch) and the step dt. Nothing is read
 * from this machine's files: HDF5 opens the bytes through its core driver,
 * and links and external storage out of the file are refused.
 */
#include <string.h>

#include "driver.h"
#include "fuzz.h"
#include "nir.h"

static const char model_path[] = "/nonexistent-snnc-fuzz/model.nir";

/* What model.c calls in the rest of the driver (main.c), for --weights
   and snnc export, which no input here reaches. */
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

/* libhdf5 is not instrumented: what AddressSanitizer sees of it is its
   calls of memcpy and the like, which some damaged files make it misuse
   (its global heap reader, on variable-length strings whose heap entries
   lie), and what LeakSanitizer sees is what it does not free after such
   failures. Those are the library's bugs (docs/fuzzing.md); this target
   fuzzes snnc's code, so they are not reported. */
const char *__asan_default_suppressions(void);
const char *__asan_default_suppressions(void) { return "interceptor_via_lib:libhdf5\n"; }
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) { return "leak:libhdf5\n"; }

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fuzz_init();
    return 0;
}

/* After sema: the file's tensors, checked against the parameters. */
static int bind_weights(Arena *a, IrGraph *g, void *ctx) {
    Options o;
    memset(&o, 0, sizeof o);
    o.input_file = model_path;
    o.onnx = ctx;
    return drv_bind_onnx_weights(a, &o, g);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    unsigned variant = fuzz_variant(data, size);
    Arena a = {0};
    NirOptions no = {3, variant & 2 ? 1e-3 : 0, variant & 1 ? NIR_CONV_SNNTORCH : NIR_CONV_NIR};
    OnnxImport imp;
    if (nir_import_mem(&a, model_path, data, size, &no, &imp) == 0) {
        int f = src_add("model.nir (converted)", imp.text, imp.len);
        Node *user = parse_source(&a, f, src_text(f), imp.len);
        if (!diag_errors()) {
            fuzz_compile(&a, user, 0, variant >> 3, bind_weights, &imp);
            fuzz_compile(&a, user, 1, variant >> 11, bind_weights, &imp);
        }
    }
    arena_free(&a);
    fuzz_reset();
    return 0;
}
