/* harness.h: what the timing programs of this folder share (infer_harness.c,
   train_harness.c, gpu_harness.cu): clocks, the input pattern, sorting
   times, options, writing raw floats. Include it after defining
   HARNESS_PATTERN_SEED (the pattern's seed) and HARNESS_NAME (the program's
   name, for messages), and after <stdio.h>, <stdlib.h>, <string.h> and
   <time.h> with _POSIX_C_SOURCE 200112L. */
#ifndef HARNESS_H
#define HARNESS_H

static inline double harness_wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static inline double harness_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Value i of the input pattern: splitmix64, counter-based, in [0, 1). The
   Python programs make the same values. */
static inline float harness_pattern(unsigned long long i)
{
    unsigned long long z = HARNESS_PATTERN_SEED + (i + 1) * 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    return (float)(z >> 40) * (1.0f / 16777216.0f);
}

static inline int harness_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The first four arguments of the CPU harnesses: BATCH (1 .. max_batch),
   REPEATS (at least 1), MIN_SECONDS and WARMUP. 0, or -1 after saying which
   is out of range. */
static inline int harness_args(char **argv, int max_batch, int *batch, int *repeats, double *min_seconds,
                               double *warmup)
{
    *batch = atoi(argv[1]);
    *repeats = atoi(argv[2]);
    *min_seconds = atof(argv[3]);
    *warmup = atof(argv[4]);
    if (*batch < 1 || *batch > max_batch || *repeats < 1) {
        fprintf(stderr, "%s: batch must be 1..%d, repeats at least 1\n", HARNESS_NAME, max_batch);
        return -1;
    }
    return 0;
}

/* The options of train_harness.c and gpu_harness.cu after their first
   arguments, from argv[first] on: --scale S and --dump DIR. 0, or -1 after
   naming one it does not know. */
static inline int harness_options(int argc, char **argv, int first, float *scale, const char **dump)
{
    for (int i = first; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--dump") == 0)
            *dump = argv[i + 1];
        else if (strcmp(argv[i], "--scale") == 0)
            *scale = (float)atof(argv[i + 1]);
        else {
            fprintf(stderr, "%s: unknown option %s\n", HARNESS_NAME, argv[i]);
            return -1;
        }
    }
    return 0;
}

/* n floats, native order, into DIR/NAME. */
static inline int harness_write(const char *dir, const char *name, const float *v, long n)
{
    char path[4096];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "wb");
    if (!f || fwrite(v, sizeof(float), (size_t)n, f) != (size_t)n || fclose(f) != 0) {
        fprintf(stderr, "%s: cannot write %s\n", HARNESS_NAME, path);
        return -1;
    }
    return 0;
}

#endif
