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
 */
#include "snnrt.h"

#include <math.h>
#include <stddef.h>

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

/* Cross-entropy of sample b with logits z_k = f(k) for label c, where f is
   the readout ro, or step t's outputs when ro < 0; with dy set, adds
   scale * (softmax - onehot) to it through the readout. */
static double ce_sample(const float *y, int T, int B, int K, int b, int c,
                        int ro, int t, double scale, float *dy)
{
    double m = -INFINITY, s = 0.0, zc = 0.0;
    int k, tmax = 0;
    for (k = 0; k < K; k++) {
        double z = ro < 0 ? Y_AT(y, t, b, k)
                          : readout_logit(y, T, B, K, b, k, ro, &tmax);
        if (z > m || k == 0)
            m = z;
    }
    for (k = 0; k < K; k++) {
        double z = ro < 0 ? Y_AT(y, t, b, k)
                          : readout_logit(y, T, B, K, b, k, ro, &tmax);
        s += exp(z - m);
        if (k == c)
            zc = z;
    }
    for (k = 0; dy && k < K; k++) {
        double z = ro < 0 ? Y_AT(y, t, b, k)
                          : readout_logit(y, T, B, K, b, k, ro, &tmax);
        double dz = scale * (exp(z - m) / s - (k == c ? 1.0 : 0.0));
        if (ro < 0)
            Y_AT(dy, t, b, k) += (float)dz;
        else
            readout_backward(dy, T, B, K, b, k, ro, tmax, dz);
    }
    return m + log(s) - zc;
}

static double loss_ce(const SnnrtLoss *l, int T, int B, int K,
                      const float *y, const int *labels, float *dy)
{
    double total = 0.0;
    int b;
    for (b = 0; b < B; b++)
        total += ce_sample(y, T, B, K, b, labels[b], l->readout, 0,
                           1.0 / B, dy);
    return total / B;
}

static double loss_tet(const SnnrtLoss *l, int T, int B, int K,
                       const float *y, const int *labels, float *dy)
{
    double ce = 0.0, mse = 0.0, w = 1.0 - l->lambda;
    size_t i, n = (size_t)T * (size_t)B * (size_t)K;
    int b, t;
    for (t = 0; t < T; t++)
        for (b = 0; b < B; b++)
            ce += ce_sample(y, T, B, K, b, labels[b], -1, t,
                            w / ((double)T * B), dy);
    ce /= (double)T * B;
    if (l->lambda == 0.0)
        return ce;
    for (i = 0; i < n; i++) {
        double d = (double)y[i] - l->phi;
        mse += d * d;
        if (dy)
            dy[i] += (float)(l->lambda * 2.0 * d / (double)n);
    }
    return w * ce + l->lambda * mse / (double)n;
}

static double loss_mse_count(const SnnrtLoss *l, int T, int B, int K,
                             const float *y, const int *labels, float *dy)
{
    /* snnTorch: on_target = int(num_steps * correct_rate) */
    double on = trunc((double)T * l->correct_rate),
           off = trunc((double)T * l->incorrect_rate), total = 0.0,
           scale = 2.0 / ((double)B * K * T);
    int b, k, t, tmax;
    for (b = 0; b < B; b++) {
        for (k = 0; k < K; k++) {
            double d = readout_logit(y, T, B, K, b, k, SNNRT_RO_COUNT, &tmax) -
                       (k == labels[b] ? on : off);
            total += d * d;
            for (t = 0; dy && t < T; t++)
                Y_AT(dy, t, b, k) += (float)(scale * d);
        }
    }
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
    for (i = 0; dy && i < n; i++)
        dy[i] = 0.0f;
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
    for (b = 0; ncorrect && b < B; b++)
        *ncorrect += predict(y, T, B, K, b,
                             l->kind == SNNRT_LOSS_MSE_COUNT ? SNNRT_RO_COUNT
                                                             : l->readout) ==
                     labels[b];
    return loss;
}
