/*
 * fuzz_snn.c: the description language through code generation, in
 * process: a .snn file is parsed, then compiled (fuzz.c: sema, the train
 * block, every pass, the IR printers, the back end's files in memory) once
 * for inference and once with the training code.
 */
#include <string.h>

#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fuzz_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (memchr(data, 0, size)) /* the driver rejects a file with a NUL byte before parsing */
        return -1;
    unsigned variant = fuzz_variant(data, size);
    Arena a = {0};
    int f = src_add("fuzz.snn", (const char *)data, size);
    Node *user = parse_source(&a, f, src_text(f), size);
    if (!diag_errors()) {
        fuzz_compile(&a, user, 0, variant, NULL, NULL);
        fuzz_compile(&a, user, 1, variant >> 8, NULL, NULL);
    }
    arena_free(&a);
    fuzz_reset();
    return 0;
}
