/*
 * fuzz_safetensors.c: the runtime's safetensors reader (runtime/
 * safetensors.c: the header checks of snnrt_stload.inc, every tensor
 * converted to float32, the metadata) on bytes in memory, then what the
 * driver does with the result: a lookup by name for each tensor and each
 * metadata key, and the check for NaN and Inf.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "snnrt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    SnnrtStFile f;
    char err[512];
    if (snnrt_st_read_mem(data, size, "fuzz.safetensors", &f, err, sizeof err) != 0) {
        if (strncmp(err, "fuzz.safetensors: ", 18) != 0)
            __builtin_trap(); /* every message names the file */
        return 0;
    }
    for (int i = 0; i < f.n; i++) {
        if (snnrt_st_find(&f, f.entries[i].name) != &f.entries[i])
            __builtin_trap();
        (void)snnrt_tensor_check_finite(&f.entries[i].t, f.entries[i].name, err, sizeof err);
    }
    for (int i = 0; i < f.nmeta; i++)
        if (snnrt_st_meta(&f, f.meta_keys[i]) != f.meta_values[i])
            __builtin_trap();
    snnrt_st_free(&f);
    return 0;
}
