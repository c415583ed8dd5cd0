/* infer_harness.c: times the inference forward of snnc's generated code.

   Built by bench/infer_throughput.py together with one generated network,
   whose prefix and header come in as macros:

     cc FLAGS -DSNN_NET=fashionmlp -DSNN_NET_UPPER=FASHIONMLP
        -DSNN_HEADER='"fashionmlp.h"' -IDIR bench/infer_harness.c DIR/fashionmlp.c -lm

   It initializes the weights with <net>_init_weights(ws, SEED), fills a
   batch of inputs with a fixed pseudo-random pattern in [0, 1) (the
   splitmix64 output i of seed PATTERN_SEED, top 24 bits / 2^24; the Python
   program makes the same pattern), calls <net>_forward for at least
   WARMUP seconds (at least once) to warm up, then times each of at least
   REPEATS calls, and more until MIN_SECONDS of calls have been timed. It
   prints one JSON line: the median, min and max seconds per call, the
   number of timed calls, the process's CPU time over wall time while
   timing, the OpenMP thread count it saw and the sum of the outputs.

   Usage: infer_harness BATCH REPEATS MIN_SECONDS WARMUP [--weights FILE] [--dump DIR] [--spikes P]
   With --spikes, the inputs are spikes instead: 1 where the pattern is
   below P, else 0 (independent, at the rate P).
   With --weights, the parameters in FILE (safetensors) replace the
   initialized ones (<net>_load_weights; all must be there). With --dump,
   it writes into DIR (before timing) what the agreement check
   of the Python program reads: input.bin, output.bin (float32, native
   order) and params.txt, one line per parameter tensor: its name, the
   element count, and the file <k>.bin holding it. If the network was
   compiled with --record and HARNESS_PROBE_FLOATS is defined (a braced
   list of each probe's floats per sample, which only the header's comment
   states), also probe<k>.bin: the recorded values of the last step. */
#define _POSIX_C_SOURCE 200112L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include SNN_HEADER

#define HARNESS_CAT(a, b) a##b
#define HARNESS_XCAT(a, b) HARNESS_CAT(a, b)
#define NET(name) HARNESS_XCAT(SNN_NET, name)       /* NET(_forward): fashionmlp_forward */
#define NET_UPPER(name) HARNESS_XCAT(SNN_NET_UPPER, name)

#define HARNESS_SEED 1ULL          /* for <net>_init_weights */
#define HARNESS_PATTERN_SEED 12345ULL /* for the inputs */

#define HARNESS_NAME "infer_harness"
#include "harness.h"

/* The agreement check's files: input, output of one forward, parameters. */
static int harness_dump(const char *dir, void *ws, int batch, const float *in, const float *out)
{
    char path[4096], name[64];
    FILE *f;
    if (harness_write(dir, "input.bin", in, (long)batch * NET_UPPER(_INPUT_SIZE)) ||
        harness_write(dir, "output.bin", out, (long)batch * NET_UPPER(_OUTPUT_SIZE)))
        return -1;
    snprintf(path, sizeof path, "%s/params.txt", dir);
    f = fopen(path, "w");
    if (!f)
        return -1;
    for (int k = 0; k < NET_UPPER(_NUM_PARAMS); k++) {
        snprintf(name, sizeof name, "%d.bin", k);
        fprintf(f, "%s %ld %s\n", NET(_params)[k].name, NET(_params)[k].count, name);
        if (harness_write(dir, name, (const float *)ws + NET(_params)[k].offset, NET(_params)[k].count))
            return -1;
    }
    if (fclose(f) != 0)
        return -1;
#if NET_UPPER(_NUM_PROBES) > 0 && defined(HARNESS_PROBE_FLOATS)
    {
        static const long probe_floats[] = HARNESS_PROBE_FLOATS;
        for (int k = 0; k < NET_UPPER(_NUM_PROBES); k++) {
            snprintf(name, sizeof name, "probe%d.bin", k);
            if (harness_write(dir, name, NET(_probe)(ws, k), batch * probe_floats[k]))
                return -1;
        }
    }
#endif
    return 0;
}

int main(int argc, char **argv)
{
    int batch, repeats, threads = 1;
    double min_seconds, warmup, t0, c0, spent = 0.0, cpu, sum = 0.0;
    long n_in, n_out, n = 0, cap;
    void *ws = NULL;
    float *in, *out;
    double *times;
    const char *dump = NULL, *weights = NULL;
    double spikes = -1.0;

    if (argc < 5) {
        fprintf(stderr, "usage: infer_harness BATCH REPEATS MIN_SECONDS WARMUP [--weights FILE] [--dump DIR] "
                        "[--spikes P]\n");
        return 2;
    }
    for (int i = 5; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--dump") == 0)
            dump = argv[i + 1];
        else if (strcmp(argv[i], "--weights") == 0)
            weights = argv[i + 1];
        else if (strcmp(argv[i], "--spikes") == 0)
            spikes = atof(argv[i + 1]);
        else {
            fprintf(stderr, "infer_harness: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (harness_args(argv, NET_UPPER(_MAX_BATCH), &batch, &repeats, &min_seconds, &warmup))
        return 2;
#ifdef _OPENMP
    threads = omp_get_max_threads();
#endif
    /* a sequence input and an output of every step hold T steps */
    n_in = (long)batch * NET_UPPER(_INPUT_SIZE) * (NET_UPPER(_INPUT_SEQUENCE) ? NET_UPPER(_TIMESTEPS) : 1);
    n_out = (long)batch * NET_UPPER(_OUTPUT_SIZE) * (NET_UPPER(_OUTPUT_STEPS) ? NET_UPPER(_TIMESTEPS) : 1);
    cap = repeats > 100000 ? repeats : 100000;
    if (posix_memalign(&ws, 64, NET_UPPER(_WORKSPACE_SIZE)) != 0)
        return 1;
    in = malloc((size_t)n_in * sizeof *in);
    out = malloc((size_t)n_out * sizeof *out);
    times = malloc((size_t)cap * sizeof *times);
    if (!in || !out || !times)
        return 1;
    memset(ws, 0, NET_UPPER(_WORKSPACE_SIZE));
    NET(_init_weights)(ws, HARNESS_SEED);
    if (weights) {
        char err[1024];
        if (NET(_load_weights)(ws, weights, 0, err, sizeof err) != 0) {
            fprintf(stderr, "infer_harness: %s\n", err);
            return 1;
        }
    }
    for (long i = 0; i < n_in; i++)
        in[i] = spikes < 0.0 ? harness_pattern((unsigned long long)i)
                              : harness_pattern((unsigned long long)i) < spikes ? 1.0f : 0.0f;

    /* warm-up: the first call also touches the workspace's pages */
    t0 = harness_wall();
    do
        NET(_forward)(ws, batch, in, out);
    while (harness_wall() - t0 < warmup);
    if (dump && harness_dump(dump, ws, batch, in, out))
        return 1;

    c0 = harness_cpu();
    t0 = harness_wall();
    while (n < cap && (n < repeats || spent < min_seconds)) {
        double t = harness_wall();
        NET(_forward)(ws, batch, in, out);
        times[n] = harness_wall() - t;
        spent += times[n++];
    }
    cpu = (harness_cpu() - c0) / (harness_wall() - t0);
    for (long i = 0; i < n_out; i++)
        sum += out[i];
    qsort(times, (size_t)n, sizeof *times, harness_cmp);
    printf("{\"batch\": %d, \"median\": %.9g, \"min\": %.9g, \"max\": %.9g, \"calls\": %ld, "
           "\"cpu_share\": %.3f, \"omp_threads\": %d, \"checksum\": %.9g}\n",
           batch, n % 2 ? times[n / 2] : 0.5 * (times[n / 2 - 1] + times[n / 2]), times[0],
           times[n - 1], n, cpu, threads, sum);
    free(times);
    free(out);
    free(in);
    free(ws);
    return 0;
}
