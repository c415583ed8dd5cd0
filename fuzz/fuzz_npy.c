/*
 * fuzz_npy.c: the .npy reader (runtime/npy.c) on bytes in memory, then the
 * check for NaN and Inf that every loaded input goes through.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "snnrt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    SnnrtTensor t;
    char err[512];
    if (snnrt_npy_read_mem(data, size, "fuzz.npy", &t, err, sizeof err) == 0) {
        (void)snnrt_tensor_check_finite(&t, "fuzz.npy", err, sizeof err);
        snnrt_tensor_free(&t);
    } else if (strncmp(err, "fuzz.npy: ", 10) != 0) {
        __builtin_trap(); /* every message names the file */
    }
    return 0;
}
