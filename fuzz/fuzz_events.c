/*
 * fuzz_events.c: the event-list reader of `encode events` inputs
 * (runtime/events.c, over the integer-table reader of runtime/npy.c) on
 * bytes in memory, then the binning of every sample it accepts.
 *
 * The input is an event file; when the magic "\x93NUMPY" appears again
 * after its start, the bytes from there are the offsets file. The spec
 * (channels, height, width, T, window, binary) comes from a hash of the
 * bytes, so that one run covers them all and an input always takes the
 * same path. Every error message must start with the name.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "snnrt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const long long windows[4] = {1, 100, 12000, 1ll << 40};
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < size; i++)
        h = (h ^ data[i]) * 1099511628211ull;
    SnnrtEventSpec spec;
    spec.channels = 1 + (int)(h & 1);
    spec.height = 1 + (long long)((h >> 1) % 40);
    spec.width = 1 + (long long)((h >> 7) % 40);
    spec.steps = 1 + (int)((h >> 13) % 8);
    spec.window = windows[(h >> 17) & 3];
    spec.binary = (int)((h >> 19) & 1);
    size_t split = size;
    for (size_t i = 1; i + 6 <= size; i++)
        if (!memcmp(data + i, "\x93NUMPY", 6)) {
            split = i;
            break;
        }
    SnnrtEvents ev;
    char err[512];
    if (snnrt_events_read_mem(data, split, split < size ? data + split : NULL, size - split, "fuzz.npy", &spec, &ev,
                              err, sizeof err) != 0) {
        if (strncmp(err, "fuzz.npy: ", 10) != 0)
            __builtin_trap(); /* every message names the file */
        return 0;
    }
    size_t frame = (size_t)spec.channels * (size_t)spec.height * (size_t)spec.width;
    float *x = malloc((size_t)spec.steps * frame * sizeof(float));
    if (x) {
        for (long long i = 0; i < ev.samples && i < 64; i++)
            snnrt_events_bin(&ev, &spec, i, x, frame);
        free(x);
    }
    snnrt_events_free(&ev);
    return 0;
}
