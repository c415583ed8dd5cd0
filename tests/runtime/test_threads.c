/*
 * test_threads.c: the training support of the runtime gives the same bits
 * on any number of threads. Every optimizer (with and without momentum,
 * Nesterov and weight decay), gradient clipping and every loss through
 * every readout run at 1, 2 and 3 threads (snnrt_threads_set) on arrays
 * large enough to be split (100k parameters, 1.1M gradients to clip, a
 * batch of 256), and the results must be identical byte for byte. The elementwise ones must also
 * equal a plain serial loop written here, operation for operation as in
 * PyTorch (runtime/optim.c says why these operations).
 *
 * Where the runtime was built without OpenMP, only the comparison with
 * the serial loops is made and the test says that the multi-thread part
 * was skipped.
 *
 * `test_threads --time` instead times Adam on 400k parameters, clipping
 * of 400k gradients and the TET loss of a batch of 256 on 1 and 2 threads
 * (a measurement, not a test).
 */
#include "snnrt.h"
#include "testutil.h"

#include <stdlib.h>
#include <time.h>

#define NPARAM 100003 /* not a multiple of any block size */
#define SPLIT 60000   /* two ranges, both large enough to be split */
#define NSTEPS 3

static const int thread_counts[] = {1, 2, 3};
#define NCOUNTS ((int)(sizeof thread_counts / sizeof thread_counts[0]))

static int multi; /* whether the runtime can run on more than one thread */

static unsigned long long rng = 12345;

/* uniform in [lo, hi) */
static float uniform(float lo, float hi)
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return lo + (hi - lo) * (float)((rng >> 40) * (1.0 / 16777216.0));
}

static float *fill(size_t n, float lo, float hi)
{
    float *x = (float *)malloc(n * sizeof *x);
    size_t i;
    if (!x) {
        printf("out of memory\n");
        exit(1);
    }
    for (i = 0; i < n; i++)
        x[i] = uniform(lo, hi);
    return x;
}

/* Sets the thread count; 0 when more than one was asked for and the
   runtime cannot. */
static int threads(int n)
{
    return snnrt_threads_set(n) == n;
}

/* ---- optimizers ---- */

typedef struct OptCase {
    const char *name;
    SnnrtOptKind kind;
    double momentum, weight_decay;
    int nesterov;
} OptCase;

static const OptCase opt_cases[] = {
    {"SGD", SNNRT_SGD, 0.0, 0.0, 0},
    {"SGD momentum weight decay", SNNRT_SGD, 0.9, 1e-3, 0},
    {"SGD nesterov", SNNRT_SGD, 0.9, 0.0, 1},
    {"Adam", SNNRT_ADAM, 0.0, 0.0, 0},
    {"Adam weight decay", SNNRT_ADAM, 0.0, 1e-2, 0},
    {"AdamW", SNNRT_ADAMW, 0.0, 1e-2, 0},
};

static void opt_setup(SnnrtOptim *o, const OptCase *c, size_t n)
{
    char err[200];
    memset(o, 0, sizeof *o);
    o->kind = c->kind;
    o->momentum = c->momentum;
    o->weight_decay = c->weight_decay;
    o->nesterov = c->nesterov;
    o->beta1 = 0.9;
    o->beta2 = 0.999;
    o->eps = 1e-8;
    CHECK_OK(snnrt_optim_init(o, n, err, sizeof err), err);
}

/* _single_tensor_sgd, as a plain loop over everything */
static void ref_sgd(const SnnrtOptim *o, float *buf, float *p, const float *g,
                    size_t n, double lr)
{
    float wd = (float)o->weight_decay, mom = (float)o->momentum,
          alpha = (float)-lr;
    size_t i;
    for (i = 0; i < n; i++) {
        float d = g[i];
        if (o->weight_decay != 0.0)
            d = fmaf(wd, p[i], d);
        if (o->momentum != 0.0) {
            if (o->step <= 1) {
                buf[i] = d;
            } else {
                buf[i] = buf[i] * mom;
                buf[i] = buf[i] + d;
            }
            d = o->nesterov ? fmaf(mom, buf[i], d) : buf[i];
        }
        p[i] = fmaf(alpha, d, p[i]);
    }
}

/* _single_tensor_adam and _single_tensor_adamw, as a plain loop */
static void ref_adam(const SnnrtOptim *o, float *m, float *v, float *p,
                     const float *g, size_t n, double lr)
{
    double step = (double)o->step;
    double bc1 = 1.0 - pow(o->beta1, step), bc2 = 1.0 - pow(o->beta2, step);
    float b1 = (float)o->beta1, b2 = (float)o->beta2,
          c1 = (float)(1.0 - o->beta1), c2 = (float)(1.0 - o->beta2),
          wd = (float)o->weight_decay, bc2_sqrt = (float)sqrt(bc2),
          eps = (float)o->eps, neg_step = (float)-(lr / bc1),
          decay = (float)(1.0 - lr * o->weight_decay);
    size_t i;
    for (i = 0; i < n; i++) {
        float grad = g[i], denom;
        if (o->kind == SNNRT_ADAMW)
            p[i] = p[i] * decay;
        else if (o->weight_decay != 0.0)
            grad = fmaf(wd, p[i], grad);
        m[i] = m[i] * b1;
        m[i] = fmaf(c1, grad, m[i]);
        v[i] = v[i] * b2;
        v[i] = fmaf(c2 * grad, grad, v[i]);
        denom = sqrtf(v[i]) / bc2_sqrt + eps;
        p[i] = p[i] + neg_step * m[i] / denom;
    }
}

/* NSTEPS steps from p0 with gradients g[step]; the parameters and the
   state end in p, m, v. With nthreads 0, the serial loops above. */
static void opt_run(const OptCase *c, int nthreads, const float *p0,
                    float *const *g, float *p, float *m, float *v)
{
    SnnrtOptim o;
    double lr = c->kind == SNNRT_SGD ? 0.05 : 1e-3;
    int s;
    opt_setup(&o, c, NPARAM);
    if (!o.m)
        return;
    memcpy(p, p0, NPARAM * sizeof *p);
    for (s = 0; s < NSTEPS; s++) {
        snnrt_optim_begin_step(&o);
        if (nthreads == 0 && c->kind == SNNRT_SGD) {
            ref_sgd(&o, o.m, p, g[s], NPARAM, lr);
        } else if (nthreads == 0) {
            ref_adam(&o, o.m, o.v, p, g[s], NPARAM, lr);
        } else {
            snnrt_optim_update(&o, 0, p, g[s], SPLIT, lr);
            snnrt_optim_update(&o, SPLIT, p + SPLIT, g[s] + SPLIT,
                               NPARAM - SPLIT, lr);
        }
    }
    memcpy(m, o.m, NPARAM * sizeof *m);
    memcpy(v, o.v, NPARAM * sizeof *v);
    snnrt_optim_free(&o);
}

static void test_optimizers(void)
{
    float *p0 = fill(NPARAM, -1, 1), *g[NSTEPS];
    float *rp = fill(NPARAM, 0, 0), *rm = fill(NPARAM, 0, 0),
          *rv = fill(NPARAM, 0, 0), *p = fill(NPARAM, 0, 0),
          *m = fill(NPARAM, 0, 0), *v = fill(NPARAM, 0, 0);
    size_t c;
    int s, t;
    for (s = 0; s < NSTEPS; s++)
        g[s] = fill(NPARAM, -0.5f, 0.5f);
    for (c = 0; c < sizeof opt_cases / sizeof opt_cases[0]; c++) {
        const OptCase *oc = &opt_cases[c];
        opt_run(oc, 0, p0, g, rp, rm, rv);
        for (t = 0; t < NCOUNTS; t++) {
            if (!threads(thread_counts[t]))
                continue;
            opt_run(oc, thread_counts[t], p0, g, p, m, v);
            if (memcmp(p, rp, NPARAM * sizeof *p) ||
                memcmp(m, rm, NPARAM * sizeof *m) ||
                memcmp(v, rv, NPARAM * sizeof *v)) {
                printf("%s on %d threads: differs from the serial loop\n",
                       oc->name, thread_counts[t]);
                failures++;
            }
        }
        /* the steps moved the parameters */
        CHECK(memcmp(rp, p0, NPARAM * sizeof *p) != 0);
    }
    for (s = 0; s < NSTEPS; s++)
        free(g[s]);
    free(p0);
    free(rp);
    free(rm);
    free(rv);
    free(p);
    free(m);
    free(v);
}

/* ---- clipping ---- */

/* Ranges over a buffer of CLIP_N floats with gaps and empty ranges, more
   than a million gradients in all (so that the runtime's blocks take
   more than one round). */
#define CLIP_N 1100020
#define CLIP_RANGES 5
static const size_t clip_off[CLIP_RANGES] = {0, 700003, 700003, 700005,
                                             1100010};
static const size_t clip_count[CLIP_RANGES] = {700000, 0, 0, 400000, 7};

static int in_clip_range(size_t i)
{
    int r;
    for (r = 0; r < CLIP_RANGES; r++)
        if (i >= clip_off[r] && i < clip_off[r] + clip_count[r])
            return 1;
    return 0;
}

static void test_clip(void)
{
    float *g0 = fill(CLIP_N, -0.01f, 0.01f), *g = fill(CLIP_N, 0, 0),
          *want = fill(CLIP_N, 0, 0);
    double norm1 = 0.0, norm, small;
    long double exact = 0.0L;
    float c = 0.0f;
    size_t i;
    int t, first = 1, r;
    for (i = 0; i < CLIP_N; i++)
        if (in_clip_range(i))
            exact += (long double)g0[i] * g0[i];
    for (t = 0; t < NCOUNTS; t++) {
        if (!threads(thread_counts[t]))
            continue;
        memcpy(g, g0, CLIP_N * sizeof *g);
        norm = snnrt_clip_grad_norm(g, clip_off, clip_count, CLIP_RANGES, 1.0);
        if (first) {
            /* the serial loop: every gradient in the ranges times the
               coefficient as a float, the others untouched */
            norm1 = norm;
            c = (float)(1.0 / (norm + 1e-6));
            for (i = 0; i < CLIP_N; i++)
                want[i] = in_clip_range(i) ? g0[i] * c : g0[i];
            CHECK_NEAR(norm, sqrtl(exact), 1e-12);
            CHECK(c < 1.0f);
            first = 0;
        }
        if (memcmp(&norm, &norm1, sizeof norm)) {
            printf("clip on %d threads: norm %.17g, on 1 thread %.17g\n",
                   thread_counts[t], norm, norm1);
            failures++;
        }
        if (memcmp(g, want, CLIP_N * sizeof *g)) {
            printf("clip on %d threads: gradients differ from the serial loop\n",
                   thread_counts[t]);
            failures++;
        }
        /* not clipped: the same norm, untouched gradients */
        memcpy(g, g0, CLIP_N * sizeof *g);
        norm = snnrt_clip_grad_norm(g, clip_off, clip_count, CLIP_RANGES, 1e9);
        CHECK(memcmp(&norm, &norm1, sizeof norm) == 0);
        CHECK(memcmp(g, g0, CLIP_N * sizeof *g) == 0);
    }
    /* up to 4096 gradients, one block: snnrt.h's order written out, the
       n-th gradient through the ranges to lane n % 32, the lanes added in
       halves; ranges of 1000 and 1003 (a lane row split between them) */
    {
        size_t off[2] = {0, 2000}, count[2] = {1000, 1003}, n = 0;
        double lane[32] = {0.0};
        int w, l;
        for (r = 0; r < 2; r++)
            for (i = 0; i < count[r]; i++, n++)
                lane[n % 32] += (double)g0[off[r] + i] * g0[off[r] + i];
        for (w = 16; w > 0; w /= 2)
            for (l = 0; l < w; l++)
                lane[l] += lane[l + w];
        small = lane[0];
        norm = snnrt_clip_grad_norm(g0, off, count, 2, 1e9);
        CHECK(norm == sqrt(small));
    }
    free(g0);
    free(g);
    free(want);
}

/* ---- losses ---- */

enum { LT = 16, LB = 256, LK = 10, LN = LT * LB * LK };

typedef struct LossResult {
    double loss, eval;
    int ncorrect;
    float dy[LN];
} LossResult;

static void loss_run(const SnnrtLoss *l, const float *y, const int *labels,
                     LossResult *r)
{
    r->ncorrect = 0;
    r->loss = snnrt_loss(l, LT, LB, LK, y, labels, r->dy, &r->ncorrect);
    r->eval = snnrt_loss(l, LT, LB, LK, y, labels, NULL, NULL);
}

static void test_losses(void)
{
    static const char *const kinds[] = {"CE", "TET", "TET with MSE",
                                        "MSE count"};
    static LossResult first, r;
    float *y = fill(LN, -2, 3);
    int labels[LB], b, kind, ro, t;
    for (b = 0; b < LB; b++)
        labels[b] = (int)(uniform(0, LK));
    for (kind = 0; kind < 4; kind++) {
        for (ro = SNNRT_RO_STEPS; ro <= SNNRT_RO_MAX; ro++) {
            SnnrtLoss l;
            memset(&l, 0, sizeof l);
            l.kind = kind == 0   ? SNNRT_LOSS_CE
                     : kind == 3 ? SNNRT_LOSS_MSE_COUNT
                                 : SNNRT_LOSS_TET;
            l.readout = ro;
            l.lambda = kind == 2 ? 0.3 : 0.0;
            l.phi = 0.5;
            l.correct_rate = 0.8;
            l.incorrect_rate = 0.2;
            for (t = 0; t < NCOUNTS; t++) {
                LossResult *res = t == 0 ? &first : &r;
                if (!threads(thread_counts[t]))
                    continue;
                loss_run(&l, y, labels, res);
                CHECK(isfinite(res->loss));
                /* evaluation alone gives the same loss */
                CHECK(memcmp(&res->eval, &res->loss, sizeof res->loss) == 0);
                if (t == 0)
                    continue;
                if (memcmp(&r.loss, &first.loss, sizeof r.loss) ||
                    memcmp(r.dy, first.dy, sizeof r.dy) ||
                    r.ncorrect != first.ncorrect) {
                    printf("%s, readout %d, on %d threads: loss %.17g "
                           "(%d correct), on 1 thread %.17g (%d)%s\n",
                           kinds[kind], ro, thread_counts[t], r.loss,
                           r.ncorrect, first.loss, first.ncorrect,
                           memcmp(r.dy, first.dy, sizeof r.dy)
                               ? "; dy differs"
                               : "");
                    failures++;
                }
            }
        }
    }
    free(y);
}

/* ---- timing (--time) ---- */

static double now(void)
{
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

enum { TIME_N = 400000, TIME_ROUNDS = 300 };

typedef struct TimeState {
    SnnrtOptim adam;
    SnnrtLoss tet;
    float *p, *g, *y, *dy;
    int labels[LB];
} TimeState;

/* The seconds one call of operation op takes. */
static double time_op(TimeState *s, int op)
{
    size_t off = 0, count = TIME_N;
    double t0 = now();
    switch (op) {
    case 0:
        snnrt_optim_begin_step(&s->adam);
        snnrt_optim_update(&s->adam, 0, s->p, s->g, TIME_N, 1e-3);
        break;
    case 1:
        snnrt_clip_grad_norm(s->g, &off, &count, 1, 1e9);
        break;
    default:
        snnrt_loss(&s->tet, LT, LB, LK, s->y, s->labels, s->dy, NULL);
        break;
    }
    return now() - t0;
}

/* Each round times every operation on 1 and then 2 threads, so that both
   counts meet the same load; the best round counts, since other work on
   the machine only ever adds time (and a thread that loses its core holds
   up the others at the end of a parallel loop). */
static int time_main(void)
{
    static const char *const what[3] = {"Adam", "clip_grad_norm", "TET loss"};
    static const OptCase adam_case = {"Adam", SNNRT_ADAM, 0.0, 0.0, 0};
    TimeState s;
    double best[3][2];
    int op, t, r, b;
    if (!threads(2)) {
        printf("the runtime was built without OpenMP: one thread only\n");
        return 77;
    }
    s.p = fill(TIME_N, -1, 1);
    s.g = fill(TIME_N, -0.5f, 0.5f);
    s.y = fill(LN, -2, 3);
    s.dy = fill(LN, 0, 0);
    for (b = 0; b < LB; b++)
        s.labels[b] = (int)(uniform(0, LK));
    memset(&s.tet, 0, sizeof s.tet);
    s.tet.kind = SNNRT_LOSS_TET;
    s.tet.readout = SNNRT_RO_MEAN;
    opt_setup(&s.adam, &adam_case, TIME_N);
    if (!s.adam.m)
        return 1;
    for (op = 0; op < 3; op++)
        best[op][0] = best[op][1] = 1e30;
    for (r = 0; r < TIME_ROUNDS; r++) {
        for (t = 0; t < 2; t++) {
            threads(t + 1);
            for (op = 0; op < 3; op++) {
                double dt = time_op(&s, op);
                if (dt < best[op][t])
                    best[op][t] = dt;
            }
        }
    }
    printf("best of %d rounds; %d threads by default here\n", TIME_ROUNDS,
           snnrt_threads_max());
    for (op = 0; op < 3; op++)
        printf("%-15s %s: %8.1f us on 1 thread, %8.1f us on 2, "
               "speed-up %.2f\n",
               what[op], op < 2 ? "400k floats     " : "T 16, B 256, K 10",
               1e6 * best[op][0], 1e6 * best[op][1],
               best[op][0] / best[op][1]);
    snnrt_optim_free(&s.adam);
    free(s.p);
    free(s.g);
    free(s.y);
    free(s.dy);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && !strcmp(argv[1], "--time"))
        return time_main();
    multi = threads(2);
    if (!multi)
        printf("skipped the multi-thread part: the runtime was built "
               "without OpenMP (snnrt_threads_set(2) returned %d); "
               "checking the serial results only\n", snnrt_threads_set(2));
    test_optimizers();
    test_clip();
    test_losses();
    return test_main_end(multi ? "thread-count independence"
                               : "serial (no OpenMP)");
}
