/*
 * loss.c: the training losses of `snnc train` over the network's outputs at
 * every step, y[T][B][K], and their gradients dL/dy.
 *
 * Three losses, each defined by the PyTorch code it must agree with:
 * cross-entropy of readout logits (F.cross_entropy, mean over the batch),
 * TET (Deng et al. 2022: cross-entropy at every step, averaged over steps,
 * optionally mixed with an MSE pull of every output towards a constant
 * phi), and snnTorch's mse_count_loss (MSE between spike counts and target
 * counts, then divided by the number of steps, with the targets truncated
 * to integers as snnTorch does with int()).
 *
 * Everything is computed in double, and cross-entropy goes through
 * log-sum-exp with the maximum subtracted, so large logits neither
 * overflow nor lose the small probabilities. The functions allocate
 * nothing: a readout logit is recomputed from y (O(T)) each time it is
 * needed, which costs little next to the network that made y.
 *
 * With OpenMP, the terms of a loss (one per sample, per sample and step,
 * or per sample and class) are computed in parallel, each writing only its
 * own part of dy, into an array on the stack; they are then added in
 * order on one thread, as the serial loop adds them. So the loss, dy and
 * the count of correct predictions are the same bits for any thread count.
 */
#include "snnrt.h"

#include <math.h>
#include <stddef.h>

/* LOSS_OMP(omp ...) is that OpenMP pragma in a build with OpenMP and
   nothing in one without, where a bare #pragma omp would be warned about. */
#ifdef _OPENMP
#define LOSS_OMP(x) _Pragma(#x)
#else
#define LOSS_OMP(x)
#endif

/* Terms are computed LOSS_GROUP at a time (their sums wait on the stack).
   A loop runs in parallel only when it reads more than LOSS_PAR_MIN
   values of y (counting a read for each time a logit is recomputed):
   below that it takes some 20 us on one thread, about what waking the
   OpenMP pool's sleeping threads costs (see OPT_PAR_MIN in optim.c). */
#define LOSS_GROUP 1024
#define LOSS_PAR_MIN 16384

/* y[t][b][k] */
#define Y_AT(y, t, b, k) ((y)[((size_t)(t) * (size_t)B + (size_t)(b)) * (size_t)K + (size_t)(k)])

/* The readout logit of class k of sample b; *tmax gets the first step that
   attains the maximum (for SNNRT_RO_MAX). */
static double readout_logit(const float *y, int T, int B, int K, int b,
                            int k, int ro, int *tmax)
{
    double s = 0.0;
    int t;
    switch (ro) {
    case SNNRT_RO_COUNT:
    case SNNRT_RO_STEPS:
    case SNNRT_RO_RATE:
    case SNNRT_RO_MEAN:
        for (t = 0; t < T; t++)
            s += Y_AT(y, t, b, k);
        return ro == SNNRT_RO_COUNT ? s : s / T;
    case SNNRT_RO_LAST:
        return Y_AT(y, T - 1, b, k);
    default: /* SNNRT_RO_MAX */
        *tmax = 0;
        s = Y_AT(y, 0, b, k);
        for (t = 1; t < T; t++) {
            if (Y_AT(y, t, b, k) > s) {
                s = Y_AT(y, t, b, k);
                *tmax = t;
            }
        }
        return s;
    }
}

/* Adds dz (the gradient of one readout logit) to dy through the readout. */
static void readout_backward(float *dy, int T, int B, int K, int b, int k,
                             int ro, int tmax, double dz)
{
    int t;
    switch (ro) {
    case SNNRT_RO_COUNT:
    case SNNRT_RO_STEPS:
    case SNNRT_RO_RATE:
    case SNNRT_RO_MEAN:
        if (ro != SNNRT_RO_COUNT)
            dz /= T;
        for (t = 0; t < T; t++)
            Y_AT(dy, t, b, k) += (float)dz;
        break;
    case SNNRT_RO_LAST:
        Y_AT(dy, T - 1, b, k) += (float)dz;
        break;
    default:
        Y_AT(dy, tmax, b, k) += (float)dz;
        break;
    }
}

/* The predicted class of sample b: the first largest readout logit. */
static int predict(const float *y, int T, int B, int K, int b, int ro)
{
    double best = 0.0;
    int k, arg = 0, tmax;
    for (k = 0; k < K; k++) {
        double z = readout_logit(y, T, B, K, b, k, ro, &tmax);
        if (k == 0 || z > best) {
            best = z;
            arg = k;
        }
    }
    return arg;
}

/* Classes whose logits, steps of the maximum and exponentials a sample of
   cross-entropy keeps on the stack; those of classes beyond are computed
   again in each pass, to the same values. */
#define CE_KEEP 64

/* Cross-entropy of sample b with logits z_k = f(k) for label c, where f is
   the readout ro, or step t's outputs when ro < 0; with dy set, adds
   scale * (softmax - onehot) to it through the readout. */
static double ce_sample(const float *y, int T, int B, int K, int b, int c,
                        int ro, int t, double scale, float *dy)
{
    double m = -INFINITY, s = 0.0, zc = 0.0, zk[CE_KEEP], ek[CE_KEEP];
    int k, tmax = 0, tk[CE_KEEP];
    for (k = 0; k < K; k++) {
        double z = ro < 0 ? Y_AT(y, t, b, k)
                          : readout_logit(y, T, B, K, b, k, ro, &tmax);
        if (k < CE_KEEP) {
            zk[k] = z;
            tk[k] = tmax;
        }
        if (z > m || k == 0)
            m = z;
    }
    for (k = 0; k < K; k++) {
        double z = k < CE_KEEP ? zk[k]
                   : ro < 0    ? Y_AT(y, t, b, k)
                               : readout_logit(y, T, B, K, b, k, ro, &tmax);
        double e = exp(z - m);
        if (k < CE_KEEP)
            ek[k] = e;
        s += e;
        if (k == c)
            zc = z;
    }
    for (k = 0; dy && k < K; k++) {
        double e;
        if (k < CE_KEEP) {
            e = ek[k];
            tmax = tk[k];
        } else {
            e = exp((ro < 0 ? Y_AT(y, t, b, k) : readout_logit(y, T, B, K, b, k, ro, &tmax)) - m);
        }
        double dz = scale * (e / s - (k == c ? 1.0 : 0.0));
        if (ro < 0)
            Y_AT(dy, t, b, k) += (float)dz;
        else
            readout_backward(dy, T, B, K, b, k, ro, tmax, dz);
    }
    return m + log(s) - zc;
}

/* What the terms of a loss read and write; one term is computed by index,
   in any order, on any thread. */
typedef struct LossArgs {
    const SnnrtLoss *l;
    int T, B, K;
    const float *y;
    const int *labels;
    float *dy;
    double scale;   /* CE, TET: the weight of each term in dy */
    double on, off; /* MSE_COUNT: the target counts */
} LossArgs;

typedef double (*LossTerm)(const LossArgs *a, size_t j);

/* The sum of term(a, j) for j in [0, n), added in order of j from 0.0 as
   the plain loop `for (j ...) total += term(a, j)` does; terms are
   computed in parallel when n * cost (the values of y one term reads)
   is large enough. */
static double loss_sum(const LossArgs *a, size_t n, LossTerm term,
                       size_t cost)
{
    double part[LOSS_GROUP], total = 0.0;
    size_t base, j;
    for (base = 0; base < n; base += LOSS_GROUP) {
        size_t len = n - base < LOSS_GROUP ? n - base : LOSS_GROUP;
        LOSS_OMP(omp parallel for schedule(static) if (len * cost > LOSS_PAR_MIN))
        for (j = 0; j < len; j++)
            part[j] = term(a, base + j);
        for (j = 0; j < len; j++)
            total += part[j];
    }
    return total;
}

/* CE of sample j */
static double ce_term(const LossArgs *a, size_t j)
{
    int b = (int)j;
    return ce_sample(a->y, a->T, a->B, a->K, b, a->labels[b], a->l->readout,
                     0, a->scale, a->dy);
}

static double loss_ce(const SnnrtLoss *l, int T, int B, int K,
                      const float *y, const int *labels, float *dy)
{
    LossArgs a = {l, T, B, K, y, labels, dy, 1.0 / B, 0.0, 0.0};
    return loss_sum(&a, (size_t)B, ce_term, 3 * (size_t)K * (size_t)T) / B;
}

/* CE of step t = j / B of sample b = j % B */
static double tet_term(const LossArgs *a, size_t j)
{
    int t = (int)(j / (size_t)a->B), b = (int)(j % (size_t)a->B);
    return ce_sample(a->y, a->T, a->B, a->K, b, a->labels[b], -1, t,
                     a->scale, a->dy);
}

static double loss_tet(const SnnrtLoss *l, int T, int B, int K,
                       const float *y, const int *labels, float *dy)
{
    double ce, mse = 0.0, w = 1.0 - l->lambda;
    size_t i, n = (size_t)T * (size_t)B * (size_t)K;
    LossArgs a = {l, T, B, K, y, labels, dy, w / ((double)T * B), 0.0, 0.0};
    ce = loss_sum(&a, (size_t)T * (size_t)B, tet_term, 3 * (size_t)K);
    ce /= (double)T * B;
    if (l->lambda == 0.0)
        return ce;
    if (dy) {
        LOSS_OMP(omp parallel for schedule(static) if (n > LOSS_PAR_MIN))
        for (i = 0; i < n; i++) {
            double d = (double)y[i] - l->phi;
            dy[i] += (float)(l->lambda * 2.0 * d / (double)n);
        }
    }
    /* one chain of additions in order, which no thread count changes;
       it costs what it did before threads */
    for (i = 0; i < n; i++) {
        double d = (double)y[i] - l->phi;
        mse += d * d;
    }
    return w * ce + l->lambda * mse / (double)n;
}

/* The squared error of class k = j % K of sample b = j / K */
static double mse_count_term(const LossArgs *a, size_t j)
{
    int T = a->T, B = a->B, K = a->K, b = (int)(j / (size_t)K),
        k = (int)(j % (size_t)K), t, tmax;
    double d = readout_logit(a->y, T, B, K, b, k, SNNRT_RO_COUNT, &tmax) -
               (k == a->labels[b] ? a->on : a->off);
    for (t = 0; a->dy && t < T; t++)
        Y_AT(a->dy, t, b, k) += (float)(a->scale * d);
    return d * d;
}

static double loss_mse_count(const SnnrtLoss *l, int T, int B, int K,
                             const float *y, const int *labels, float *dy)
{
    /* snnTorch: on_target = int(num_steps * correct_rate) */
    LossArgs a = {l, T, B, K, y, labels, dy, 2.0 / ((double)B * K * T),
                  trunc((double)T * l->correct_rate),
                  trunc((double)T * l->incorrect_rate)};
    double total = loss_sum(&a, (size_t)B * (size_t)K, mse_count_term,
                            2 * (size_t)T);
    return total / ((double)B * K) / T;
}

double snnrt_loss(const SnnrtLoss *l, int T, int B, int K, const float *y,
                  const int *labels, float *dy, int *ncorrect)
{
    size_t i, n;
    double loss;
    int b, ok = l && y && labels && T > 0 && B > 0 && K > 0 &&
                l->readout >= SNNRT_RO_STEPS && l->readout <= SNNRT_RO_MAX;
    if (ok && ((size_t)T > (size_t)-1 / sizeof(float) / (size_t)B ||
               (size_t)T * (size_t)B > (size_t)-1 / sizeof(float) / (size_t)K))
        ok = 0;
    n = ok ? (size_t)T * (size_t)B * (size_t)K : 0;
    if (dy) {
        LOSS_OMP(omp parallel for schedule(static) if (n > LOSS_PAR_MIN))
        for (i = 0; i < n; i++)
            dy[i] = 0.0f;
    }
    for (b = 0; ok && b < B; b++)
        ok = labels[b] >= 0 && labels[b] < K;
    if (!ok)
        return NAN;
    switch (l->kind) {
    case SNNRT_LOSS_CE:
        loss = loss_ce(l, T, B, K, y, labels, dy);
        break;
    case SNNRT_LOSS_TET:
        loss = loss_tet(l, T, B, K, y, labels, dy);
        break;
    case SNNRT_LOSS_MSE_COUNT:
        loss = loss_mse_count(l, T, B, K, y, labels, dy);
        break;
    default:
        return NAN;
    }
    if (ncorrect) {
        /* a count: the same in any order */
        int ro = l->kind == SNNRT_LOSS_MSE_COUNT ? SNNRT_RO_COUNT : l->readout,
            nc = 0;
        LOSS_OMP(omp parallel for schedule(static) reduction(+ : nc) if (n > LOSS_PAR_MIN))
        for (b = 0; b < B; b++)
            nc += predict(y, T, B, K, b, ro) == labels[b];
        *ncorrect += nc;
    }
    return loss;
}
