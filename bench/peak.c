/* peak.c: the fp32 multiply-add throughput of this machine, measured.

   A micro-benchmark for bench/infer_throughput.py (which builds it with
   `cc -O2 -march=native -ffp-contract=off -fopenmp`; it also builds without
   OpenMP). For every vector width the compiler may use here (AVX-512F,
   AVX2 with FMA, SSE), it times a loop of NACC independent accumulators,
   each doing acc += x * y per iteration:

   - fma:     one fused multiply-add instruction (vfmadd);
   - mul+add: a multiply and a separate add (vmulps, vaddps): what snnc's
              generated code does, since it must round the product before
              the sum to stay bit-exact (-ffp-contract=off).

   NACC = 12 accumulators hide the latency of the add or FMA on current
   cores (4 cycles, two pipes: 8 in flight). `y` passes through an empty asm
   statement every iteration, so the compiler can neither hoist the
   products out of the loop nor fold the loop away; the accumulators grow
   by about 1e-9 an iteration, which keeps them normal (no denormals) and
   finite. 2 FLOPs count per lane and multiply-add, fused or not.

   Each measurement is the best of TRIALS runs of about SECONDS each, on one
   thread, and with OpenMP also on every thread of the team
   (OMP_NUM_THREADS, else all cores) running the same loop at once. Two
   rates: by the wall clock, and by each thread's CPU time (summed over the
   threads), which other work on a busy machine disturbs much less.

   Output, one line each: `peak ISA OP THREADS GFLOPS_WALL GFLOPS_CPU`,
   e.g. `peak avx512f fma 1 110.3 116.2`. Usage: peak [SECONDS] (default 0.2). */
#define _POSIX_C_SOURCE 200112L
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define NACC 12
#define TRIALS 5

static double peak_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#define PEAK_REP12(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)

/* One kernel pair per ISA: V the vector type, CONS the asm register class
   of the vector; PEAK_DECL_, PEAK_FMA_ and PEAK_MULADD_<ISA>(j) declare and
   update accumulator j. Each returns the sum of the accumulators so that
   the work is observable. */
#define PEAK_KERNELS(ISA, V, CONS, SET1, REDUCE)                              \
    static float peak_##ISA##_fma(long iters)                                 \
    {                                                                         \
        V y = SET1(1e-3f);                                                    \
        PEAK_REP12(PEAK_DECL_##ISA)                                           \
        for (long i = 0; i < iters; i++) {                                    \
            __asm__ volatile("" : "+" CONS(y));                               \
            PEAK_REP12(PEAK_FMA_##ISA)                                        \
        }                                                                     \
        return REDUCE(PEAK_SUM12);                                            \
    }                                                                         \
    static float peak_##ISA##_muladd(long iters)                              \
    {                                                                         \
        V y = SET1(1e-3f);                                                    \
        PEAK_REP12(PEAK_DECL_##ISA)                                           \
        for (long i = 0; i < iters; i++) {                                    \
            __asm__ volatile("" : "+" CONS(y));                               \
            PEAK_REP12(PEAK_MULADD_##ISA)                                     \
        }                                                                     \
        return REDUCE(PEAK_SUM12);                                            \
    }

#define PEAK_SUM12                                                            \
    a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11

static float peak_hsum(const float *v, int n)
{
    float s = 0.0f;
    for (int i = 0; i < n; i++)
        s += v[i];
    return s;
}

#if defined(__AVX512F__)
#define PEAK_DECL_avx512f(j) __m512 a##j = _mm512_set1_ps(1.0f), x##j = _mm512_set1_ps(1e-6f * (j + 1));
#define PEAK_FMA_avx512f(j) a##j = _mm512_fmadd_ps(x##j, y, a##j);
#define PEAK_MULADD_avx512f(j) a##j = _mm512_add_ps(a##j, _mm512_mul_ps(x##j, y));
static float peak_reduce512(__m512 v)
{
    float f[16];
    _mm512_storeu_ps(f, v);
    return peak_hsum(f, 16);
}
#define PEAK_V512(r) "v"(r)
PEAK_KERNELS(avx512f, __m512, PEAK_V512, _mm512_set1_ps, peak_reduce512)
#endif

#if defined(__AVX2__) && defined(__FMA__)
#define PEAK_DECL_avx2(j) __m256 a##j = _mm256_set1_ps(1.0f), x##j = _mm256_set1_ps(1e-6f * (j + 1));
#define PEAK_FMA_avx2(j) a##j = _mm256_fmadd_ps(x##j, y, a##j);
#define PEAK_MULADD_avx2(j) a##j = _mm256_add_ps(a##j, _mm256_mul_ps(x##j, y));
static float peak_reduce256(__m256 v)
{
    float f[8];
    _mm256_storeu_ps(f, v);
    return peak_hsum(f, 8);
}
#define PEAK_X(r) "x"(r)
PEAK_KERNELS(avx2, __m256, PEAK_X, _mm256_set1_ps, peak_reduce256)
#endif

#if defined(__SSE2__)
/* SSE has no fused multiply-add: its "fma" is mul+add as well, unless the
   CPU has FMA3 (then the 128-bit vfmadd). */
#ifdef __FMA__
#define PEAK_SSE_FMADD(a, b, c) _mm_fmadd_ps(a, b, c)
#else
#define PEAK_SSE_FMADD(a, b, c) _mm_add_ps(c, _mm_mul_ps(a, b))
#endif
#define PEAK_DECL_sse(j) __m128 a##j = _mm_set1_ps(1.0f), x##j = _mm_set1_ps(1e-6f * (j + 1));
#define PEAK_FMA_sse(j) a##j = PEAK_SSE_FMADD(x##j, y, a##j);
#define PEAK_MULADD_sse(j) a##j = _mm_add_ps(a##j, _mm_mul_ps(x##j, y));
static float peak_reduce128(__m128 v)
{
    float f[4];
    _mm_storeu_ps(f, v);
    return peak_hsum(f, 4);
}
#ifndef PEAK_X
#define PEAK_X(r) "x"(r)
#endif
PEAK_KERNELS(sse, __m128, PEAK_X, _mm_set1_ps, peak_reduce128)
#endif

typedef float (*PeakKernel)(long iters);

static volatile float peak_sink;

/* One run of `iters` iterations of a kernel on `threads` threads at once
   (threads > 1 needs OpenMP): the wall-clock seconds, and the sum over the
   threads of 1 / (the thread's CPU seconds). */
typedef struct PeakRun {
    double wall;
    double inv_cpu;
} PeakRun;

static double peak_thread_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static PeakRun peak_run(PeakKernel k, long iters, int threads)
{
    PeakRun r = {0.0, 0.0};
    if (threads <= 1) {
        double t0 = peak_now(), c0 = peak_thread_cpu();
        peak_sink += k(iters);
        r.inv_cpu = 1.0 / (peak_thread_cpu() - c0);
        r.wall = peak_now() - t0;
        return r;
    }
#ifdef _OPENMP
    {
        float s = 0.0f;
        double t0 = 0.0, inv = 0.0;
#pragma omp parallel num_threads(threads) reduction(+ : s, inv)
        {
            double c0;
#pragma omp barrier
#pragma omp master
            t0 = peak_now();
            c0 = peak_thread_cpu();
            s += k(iters);
            inv += 1.0 / (peak_thread_cpu() - c0);
        }
        r.wall = peak_now() - t0;
        r.inv_cpu = inv;
        peak_sink += s;
    }
#endif
    return r;
}

/* GFLOP/s of kernel k with `lanes` floats per vector, by the wall clock
   (all threads' work over the elapsed time) and by CPU time (the sum of
   each thread's work over its own CPU time: what the cores do while they
   run the loop, whatever else the machine runs). The best of TRIALS runs
   of about `seconds` each, after calibrating the iteration count on one
   thread. */
static void peak_measure(PeakKernel k, int lanes, int threads, double seconds, double *wall, double *cpu)
{
    long iters = 100000;
    double t;
    *wall = *cpu = 0.0;
    while ((t = peak_run(k, iters, 1).wall) < 0.02)
        iters *= 4;
    iters = (long)((double)iters * seconds / t) + 1;
    for (int i = 0; i < TRIALS; i++) {
        PeakRun r = peak_run(k, iters, threads);
        double flops = 2.0 * lanes * NACC * (double)iters * 1e-9;
        if (r.wall > 0.0 && flops * threads / r.wall > *wall)
            *wall = flops * threads / r.wall;
        if (flops * r.inv_cpu > *cpu)
            *cpu = flops * r.inv_cpu;
    }
}

static void peak_line(const char *isa, const char *op, PeakKernel k, int lanes, int threads, double seconds)
{
    double wall, cpu;
    peak_measure(k, lanes, threads, seconds, &wall, &cpu);
    printf("peak %s %s %d %.1f %.1f\n", isa, op, threads, wall, cpu);
}

/* The widest ISA is measured on one thread and on all; the others (for
   comparison) on one. */
static void peak_report(const char *isa, PeakKernel fma, PeakKernel muladd, int lanes,
                        int all, double seconds)
{
    peak_line(isa, "fma", fma, lanes, 1, seconds);
    peak_line(isa, "mul+add", muladd, lanes, 1, seconds);
    if (all > 1) {
        peak_line(isa, "fma", fma, lanes, all, seconds);
        peak_line(isa, "mul+add", muladd, lanes, all, seconds);
    }
    fflush(stdout);
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 0.2;
    int all = 1, widest = 1;
    if (seconds <= 0.0)
        seconds = 0.2;
#ifdef _OPENMP
    all = omp_get_max_threads();
#endif
    printf("# accumulators %d, best of %d runs of %.2f s; threads %d with OpenMP: %s\n",
           NACC, TRIALS, seconds, all,
#ifdef _OPENMP
           "yes"
#else
           "no"
#endif
    );
#if defined(__AVX512F__)
    peak_report("avx512f", peak_avx512f_fma, peak_avx512f_muladd, 16, all, seconds);
    widest = 0;
#endif
#if defined(__AVX2__) && defined(__FMA__)
    peak_report("avx2", peak_avx2_fma, peak_avx2_muladd, 8, widest ? all : 1, seconds);
    widest = 0;
#endif
#if defined(__SSE2__)
    peak_report("sse", peak_sse_fma, peak_sse_muladd, 4, widest ? all : 1, seconds);
#endif
    return 0;
}
