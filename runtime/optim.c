/*
 * optim.c: the optimizers, gradient clipping and learning-rate schedules of
 * `snnc train`, with PyTorch 1.13's semantics.
 *
 * The updates follow torch.optim's single-tensor implementations
 * (_single_tensor_sgd, _single_tensor_adam, _single_tensor_adamw) operation
 * by operation in float32: each in-place tensor op of PyTorch is one float
 * operation here, in the same order, with the Python scalars (momentum,
 * betas, 1 - lr * weight_decay, -step_size, ...) computed in double and
 * rounded to float where PyTorch hands them to a float kernel. PyTorch's
 * CPU kernels compute add(x, y, alpha) as a fused multiply-add (ATen's
 * vectorized ufunc::add is vec::fmadd) and addcmul's x + (v * y) * z as
 * one too, so those are fmaf here (a hardware instruction where the CPU
 * has one, which glibc picks at run time). With that, 50 steps of every
 * optimizer agree with PyTorch 1.13 bit for bit on an x86-64 with FMA
 * (tests/runtime/torch_reference.py); where a build of PyTorch rounds
 * differently, the difference stays at float round-off of each update.
 * The state is one float per parameter for m (SGD's momentum buffer, Adam's
 * first moment) and one for v (Adam's second moment), allocated once by
 * snnrt_optim_init; updates allocate nothing.
 *
 * SGD's momentum buffer does not start at zero: PyTorch sets it to the
 * first gradient it sees, and the first step (step == 1) does the same.
 */
#include "snnrt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* On x86-64 Linux with GCC or clang, the update loops are compiled twice,
 * for CPUs with FMA and without, and the loader picks one (an ifunc), so
 * that fmaf is one instruction where the CPU has it instead of a call into
 * libm. The results are the same: fmaf is correctly rounded either way. */
#if defined(__x86_64__) && defined(__linux__) && defined(__clang__)
#if __clang_major__ >= 14
#define OPT_CLONES __attribute__((target_clones("fma", "default")))
#endif
#elif defined(__x86_64__) && defined(__linux__) && defined(__GNUC__)
#if __GNUC__ >= 6
#define OPT_CLONES __attribute__((target_clones("fma", "default")))
#endif
#endif
#ifndef OPT_CLONES
#define OPT_CLONES
#endif

#define OPT_PI 3.14159265358979323846

int snnrt_optim_init(SnnrtOptim *o, size_t n, char *err, size_t errlen)
{
    size_t k = n ? n : 1;
    o->m = o->v = NULL;
    o->n = 0;
    o->step = 0;
    if (k > (size_t)-1 / sizeof(float)) {
        if (err && errlen)
            snprintf(err, errlen, "optimizer: %zu parameters are too many for this machine", n);
        return -1;
    }
    o->m = (float *)calloc(k, sizeof(float));
    o->v = (float *)calloc(k, sizeof(float));
    if (!o->m || !o->v) {
        free(o->m);
        free(o->v);
        o->m = o->v = NULL;
        if (err && errlen)
            snprintf(err, errlen, "optimizer: out of memory for the state of %zu parameters", n);
        return -1;
    }
    o->n = n;
    return 0;
}

void snnrt_optim_free(SnnrtOptim *o)
{
    if (!o)
        return;
    free(o->m);
    free(o->v);
    o->m = o->v = NULL;
    o->n = 0;
    o->step = 0;
}

void snnrt_optim_begin_step(SnnrtOptim *o)
{
    if (o)
        o->step++;
}

/* _single_tensor_sgd with dampening 0 */
OPT_CLONES static void sgd_update(const SnnrtOptim *o, float *buf, float *p,
                       const float *g, size_t count, double lr)
{
    float wd = (float)o->weight_decay, mom = (float)o->momentum,
          alpha = (float)-lr;
    int first = o->step <= 1;
    size_t i;
    for (i = 0; i < count; i++) {
        float d = g[i];
        if (o->weight_decay != 0.0)
            d = fmaf(wd, p[i], d); /* d_p.add(param, alpha=weight_decay) */
        if (o->momentum != 0.0) {
            if (first) {
                buf[i] = d; /* torch.clone(d_p) */
            } else {
                buf[i] = buf[i] * mom; /* buf.mul_(momentum) */
                buf[i] = buf[i] + d;   /* .add_(d_p, alpha=1 - dampening) */
            }
            d = o->nesterov ? fmaf(mom, buf[i], d) : buf[i];
        }
        p[i] = fmaf(alpha, d, p[i]); /* param.add_(d_p, alpha=-lr) */
    }
}

/* _single_tensor_adam and _single_tensor_adamw (amsgrad off) */
OPT_CLONES static void adam_update(const SnnrtOptim *o, float *m, float *v, float *p,
                        const float *g, size_t count, double lr)
{
    double step = o->step > 0 ? (double)o->step : 1.0;
    double bc1 = 1.0 - pow(o->beta1, step), bc2 = 1.0 - pow(o->beta2, step);
    double step_size = lr / bc1;
    float b1 = (float)o->beta1, b2 = (float)o->beta2,
          c1 = (float)(1.0 - o->beta1), c2 = (float)(1.0 - o->beta2),
          wd = (float)o->weight_decay, bc2_sqrt = (float)sqrt(bc2),
          eps = (float)o->eps, neg_step = (float)-step_size,
          decay = (float)(1.0 - lr * o->weight_decay);
    int adamw = o->kind == SNNRT_ADAMW;
    size_t i;
    for (i = 0; i < count; i++) {
        float grad = g[i], denom;
        if (adamw)
            p[i] = p[i] * decay; /* param.mul_(1 - lr * weight_decay) */
        else if (o->weight_decay != 0.0)
            grad = fmaf(wd, p[i], grad); /* grad.add(param, alpha=wd) */
        /* exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1) */
        m[i] = m[i] * b1;
        m[i] = fmaf(c1, grad, m[i]);
        /* exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2) */
        v[i] = v[i] * b2;
        v[i] = fmaf(c2 * grad, grad, v[i]);
        /* denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps);
           param.addcdiv_(exp_avg, denom, value=-step_size) */
        denom = sqrtf(v[i]) / bc2_sqrt + eps;
        p[i] = p[i] + neg_step * m[i] / denom;
    }
}

void snnrt_optim_update(SnnrtOptim *o, size_t off, float *p, const float *g,
                        size_t count, double lr)
{
    if (!o || !o->m || !o->v || !p || !g || off > o->n ||
        count > o->n - off)
        return;
    if (o->kind == SNNRT_SGD)
        sgd_update(o, o->m + off, p, g, count, lr);
    else if (o->kind == SNNRT_ADAM || o->kind == SNNRT_ADAMW)
        adam_update(o, o->m + off, o->v + off, p, g, count, lr);
}

double snnrt_clip_grad_norm(float *g, const size_t *off, const size_t *count,
                            int nranges, double max_norm)
{
    double sum = 0.0, norm, coef;
    size_t i;
    int r;
    if (!g || !off || !count)
        return 0.0;
    for (r = 0; r < nranges; r++)
        for (i = 0; i < count[r]; i++)
            sum += (double)g[off[r] + i] * g[off[r] + i];
    norm = sqrt(sum);
    /* clip_coef = max_norm / (total_norm + 1e-6), clamped to at most 1;
       a NaN coefficient passes the clamp, as in PyTorch */
    coef = max_norm / (norm + 1e-6);
    if (coef < 1.0 || isnan(coef)) {
        float c = (float)coef;
        for (r = 0; r < nranges; r++)
            for (i = 0; i < count[r]; i++)
                g[off[r] + i] *= c;
    }
    return norm;
}

double snnrt_lr_cosine(double lr0, int epoch, int epochs, double eta_min)
{
    if (epochs <= 0)
        return lr0;
    return eta_min +
           (lr0 - eta_min) * (1.0 + cos(OPT_PI * epoch / epochs)) / 2.0;
}

double snnrt_lr_step(double lr0, int epoch, int step_size, double gamma)
{
    if (step_size <= 0 || epoch < 0)
        return lr0;
    return lr0 * pow(gamma, (double)(epoch / step_size));
}
