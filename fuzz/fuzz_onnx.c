/*
 * fuzz_onnx.c: the ONNX front end, in process: a model's bytes are
 * unpacked and imported (onnx_import_mem), the network text it converts to
 * is parsed and compiled as fuzz_import.c does. The model is named
 * as if it were in a folder that does not exist, so that external data is
 * never read from this machine's files. Half the inputs get --timesteps 3
 * (the others need the metadata snn.timesteps), a quarter
 * --spiking 'Relu=LIF(tau = 2.0)'.
 */
#include "fuzz.h"
#include "onnx.h"

static const char model_path[] = "/nonexistent-snnc-fuzz/model.onnx";

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fuzz_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    unsigned variant = fuzz_variant(data, size);
    Arena a = {0};
    OnnxOptions oo = {variant & 1 ? 3 : 0, (variant & 6) == 6 ? "Relu=LIF(tau = 2.0)" : NULL};
    OnnxImport imp;
    if (onnx_import_mem(&a, model_path, data, size, &oo, &imp) == 0)
        fuzz_imported(&a, model_path, "model.onnx (converted)", &imp, variant);
    arena_free(&a);
    fuzz_reset();
    return 0;
}
