/*
 * fuzz_nir.c: the NIR front end, in process: a file's bytes are read as
 * HDF5 from memory and imported (nir_import_mem), the network text it
 * converts to is parsed and compiled as fuzz_import.c does. The input
 * picks the convention (nir, snntorch, norse, spyx or sinabs) and the step dt. Nothing is read
 * from this machine's files: HDF5 opens the bytes through its core driver,
 * and links and external storage out of the file are refused.
 */
#include "fuzz.h"
#include "nir.h"

static const char model_path[] = "/nonexistent-snnc-fuzz/model.nir";

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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    unsigned variant = fuzz_variant(data, size);
    Arena a = {0};
    /* the convention: bits 0 and 9 (nir, snntorch, norse, spyx), bit 10
       turning them into sinabs */
    NirConvention conv = variant & (1u << 10) ? NIR_CONV_SINABS : (NirConvention)((variant & 1) | ((variant >> 8) & 2));
    NirOptions no = {3, variant & 2 ? 1e-3 : 0, conv};
    OnnxImport imp;
    if (nir_import_mem(&a, model_path, data, size, &no, &imp) == 0)
        fuzz_imported(&a, model_path, "model.nir (converted)", &imp, variant);
    arena_free(&a);
    fuzz_reset();
    return 0;
}
