/*
 * fuzz_stload.c: the safetensors loader that snnc pastes into generated
 * code (runtime/snnrt_stload.inc), included here as generated code
 * includes it, on bytes in memory (snnrt_st_load_file on fmemopen). It
 * asks for what a small generated network asks for: "w" [2, 3], "b" [3]
 * and "s" [] (a scalar), each exactly; whether a missing tensor is an error
 * follows from the input's last byte.
 */
#define _POSIX_C_SOURCE 200809L
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "snnrt_stload.inc"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* snnrt_st_load, the entry point generated code calls, once: a file that
   does not exist fails with a message naming it */
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    static const char path[] = "/nonexistent-snnc-fuzz/w.safetensors";
    char err[512];
    (void)argc;
    (void)argv;
    if (snnrt_st_load(path, NULL, 0, 0, NULL, err, sizeof err) == 0 || strncmp(err, path, strlen(path)) != 0)
        __builtin_trap();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const long shape_w[2] = {2, 3}, shape_b[1] = {3};
    static const char none[1];
    float w[6], b[3], s[1];
    snnrt_st_want want[3] = {
        {"w", 2, shape_w, w},
        {"b", 1, shape_b, b},
        {"s", 0, NULL, s},
    };
    unsigned char found[3];
    char err[512];
    FILE *fp = fmemopen((void *)(size ? (const void *)data : (const void *)none), size, "rb");
    if (!fp)
        return 0;
    int allow_missing = size && (data[size - 1] & 1);
    if (snnrt_st_load_file(fp, "fuzz.safetensors", want, 3, allow_missing, found, err, sizeof err) != 0 &&
        strncmp(err, "fuzz.safetensors: ", 18) != 0)
        __builtin_trap(); /* every message names the file */
    return 0;
}
