/* narrow_harness.c: times one narrow layer's function of snnc's generated code.

   Built by bench/narrow_products.py with one generated network included
   whole (so that the layer's static function can be called directly); the
   prefix, the source file and the layer's function come in as macros:

     cc FLAGS -DSNN_NET=narrowinf -DSNN_NET_UPPER=NARROWINF -DSNN_SOURCE='"narrowinf.c"'
        -DHARNESS_LAYER=narrowinf_fwd1 -DHARNESS_INPUT_AT=6416 -IDIR bench/narrow_harness.c -lm

   Without HARNESS_TRAIN (inference; HARNESS_INPUT_AT is where <net>_forward
   copies its input into the workspace, in floats), for each rate P: the
   input [T, batch, INPUT_SIZE] is 1 where the input pattern is below P, else
   0; one <net>_forward gives the output whose bits are hashed; then the input
   is copied into the workspace and HARNESS_LAYER(ws, batch, 0, T, 0) (the
   layer's forward over all T x batch rows, which reads the input and writes
   its own value only) is timed.

   With HARNESS_TRAIN (the network compiled with --train; HARNESS_LAYER is
   the layer's <net>_train_bwd<N>), for each rate P: the input is 2 where
   the pattern is below P, else 0 (which a LIF(tau = 2) from v = 0 turns
   into spikes at the rate P exactly), dL/doutput is the pattern's next
   values minus 0.5; one <net>_train_forward and <net>_train_backward set
   the layer's input spikes and output gradient; then HARNESS_LAYER(ws,
   batch, 0, T, 0) (the layer's backward over all rows, without the input
   gradient: its bias and weight gradients, which it sets) is timed, and the
   gradients of every parameter are hashed after it.

   The weights are <net>_init_weights(ws, SEED); the pattern is that of
   harness.h (splitmix64 of seed PATTERN_SEED). For each rate the harness
   makes calls for at least WARMUP seconds (at least one), then times each
   of at least REPEATS calls, and more until MIN_SECONDS of calls have been
   timed. It prints one JSON line per rate: the rate asked, the median, min
   and max seconds per call, the number of timed calls, the values that
   are not zero (inference) or the spikes (training) of the layer's input and
   the count of its input values, and the FNV-1a hash of the result's bytes.

   Usage: narrow_harness BATCH REPEATS MIN_SECONDS WARMUP P [P ...] */
#define _POSIX_C_SOURCE 200112L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include SNN_SOURCE

#define HARNESS_CAT(a, b) a##b
#define HARNESS_XCAT(a, b) HARNESS_CAT(a, b)
#define NET(name) HARNESS_XCAT(SNN_NET, name) /* NET(_forward): narrowinf_forward */
#define NET_UPPER(name) HARNESS_XCAT(SNN_NET_UPPER, name)

#define HARNESS_SEED 1ULL             /* for <net>_init_weights */
#define HARNESS_PATTERN_SEED 12345ULL /* for the inputs */

#if !NET_UPPER(_INPUT_SEQUENCE) || !NET_UPPER(_OUTPUT_STEPS)
#error "narrow_harness.c wants a network with encode sequence and readout steps"
#endif

#ifdef HARNESS_TRAIN
#define HARNESS_WS(ws) ((float *)(ws)) /* as <net>_train_backward reads it */
#else
#define HARNESS_WS(ws) NET(_ws)(ws) /* as <net>_forward reads it */
#endif

#define HARNESS_NAME "narrow_harness"
#include "harness.h"

static unsigned long long harness_fnv(unsigned long long h, const void *p, size_t n)
{
    const unsigned char *b = (const unsigned char *)p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001B3ULL;
    return h;
}

int main(int argc, char **argv)
{
    const long steps = NET_UPPER(_TIMESTEPS);
    int batch, repeats;
    double min_seconds, warmup;
    long n_in, n_out, cap;
    void *ws = NULL;
    float *in, *out;
    double *times;
#ifdef HARNESS_TRAIN
    const size_t ws_size = NET_UPPER(_TRAIN_WORKSPACE_SIZE);
#else
    const size_t ws_size = NET_UPPER(_WORKSPACE_SIZE);
#endif

    if (argc < 6) {
        fprintf(stderr, "usage: narrow_harness BATCH REPEATS MIN_SECONDS WARMUP P [P ...]\n");
        return 2;
    }
    if (harness_args(argv, NET_UPPER(_MAX_BATCH), &batch, &repeats, &min_seconds, &warmup))
        return 2;
    n_in = steps * batch * NET_UPPER(_INPUT_SIZE);
    n_out = steps * batch * NET_UPPER(_OUTPUT_SIZE);
    cap = repeats > 100000 ? repeats : 100000;
    if (posix_memalign(&ws, 64, ws_size) != 0)
        return 1;
    in = malloc((size_t)n_in * sizeof *in);
    out = malloc((size_t)n_out * sizeof *out);
    times = malloc((size_t)cap * sizeof *times);
    if (!in || !out || !times)
        return 1;
    memset(ws, 0, ws_size);
    NET(_init_weights)(ws, HARNESS_SEED);

    for (int a = 5; a < argc; a++) {
        const double p = atof(argv[a]);
        double t0, spent = 0.0, events = 0.0;
        unsigned long long hash = 0xCBF29CE484222325ULL;
        long n = 0;
#ifdef HARNESS_TRAIN
        double neurons;
        const float *g = NET(_train_grads)(ws);
        for (long i = 0; i < n_in; i++)
            in[i] = harness_pattern((unsigned long long)i) < p ? 2.0f : 0.0f;
        for (long i = 0; i < n_out; i++)
            out[i] = harness_pattern((unsigned long long)(n_in + i)) - 0.5f;
        NET(_train_forward)(ws, batch, in, NULL, 1, 0);
        NET(_train_backward)(ws, batch, in, out, NULL);
        NET(_train_spikes)(ws, batch, &events, &neurons);
#else
        float *w = HARNESS_WS(ws);
        for (long i = 0; i < n_in; i++) {
            in[i] = harness_pattern((unsigned long long)i) < p ? 1.0f : 0.0f;
            events += in[i] != 0.0f;
        }
        NET(_forward)(ws, batch, in, out);
        hash = harness_fnv(hash, out, (size_t)n_out * sizeof *out);
        memcpy(w + HARNESS_INPUT_AT, in, (size_t)n_in * sizeof *in);
#endif
        /* warm-up */
        t0 = harness_wall();
        do
            HARNESS_LAYER(HARNESS_WS(ws), batch, 0, (int)steps, 0);
        while (harness_wall() - t0 < warmup);
        while (n < cap && (n < repeats || spent < min_seconds)) {
            double t = harness_wall();
            HARNESS_LAYER(HARNESS_WS(ws), batch, 0, (int)steps, 0);
            times[n] = harness_wall() - t;
            spent += times[n++];
        }
#ifdef HARNESS_TRAIN
        for (int k = 0; k < NET_UPPER(_NUM_PARAMS); k++)
            hash = harness_fnv(hash, g + NET(_params)[k].offset, (size_t)NET(_params)[k].count * sizeof(float));
#endif
        qsort(times, (size_t)n, sizeof *times, harness_cmp);
        printf("{\"p\": %.9g, \"median\": %.9g, \"min\": %.9g, \"max\": %.9g, \"calls\": %ld, \"events\": %.17g, "
               "\"values\": %ld, \"hash\": \"%016llx\"}\n",
               p, n % 2 ? times[n / 2] : 0.5 * (times[n / 2 - 1] + times[n / 2]), times[0], times[n - 1], n, events,
               n_in, hash);
        fflush(stdout);
    }
    free(times);
    free(out);
    free(in);
    free(ws);
    return 0;
}
