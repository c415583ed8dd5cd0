/*
 * fuzz_idx.c: the IDX dataset reader (runtime/idx.c), plain and gzip, on
 * bytes in memory.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "snnrt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    SnnrtIdx x;
    char err[512];
    if (snnrt_idx_read_mem(data, size, "fuzz.idx", &x, err, sizeof err) == 0)
        snnrt_idx_free(&x);
    else if (strncmp(err, "fuzz.idx: ", 10) != 0)
        __builtin_trap(); /* every message names the file */
    return 0;
}
