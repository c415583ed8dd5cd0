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
 *
 * With OpenMP, large ranges are split among threads. An update is
 * elementwise, so each thread runs the same float operations on its blocks
 * and the result is the same bits for any thread count. Clipping's sum of
 * squares is not: it adds, in double, the squares of each block of
 * CLIP_BLOCK consecutive gradients (counted across the ranges as if they
 * were one array) from 0.0 in order, in parallel, and then the blocks'
 * sums in order on one thread. The blocks do not depend on the thread
 * count, so neither does the norm; for at most CLIP_BLOCK gradients it is
 * the plain sum in order.
 */
#include "snnrt.h"

#include <math.h>
#include <stdint.h>
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
/* A loop of integer operations, or of doubles without FMA: AVX2 has them 8
   (and 4) lanes wide (FMA does not imply it), where the default x86-64 has
   4 (and 2). */
#if defined(__x86_64__) && defined(__linux__) && (defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 6))
#define INT_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define INT_CLONES
#endif

#define OPT_PI 3.14159265358979323846

/* OPT_OMP(omp ...) is that OpenMP pragma in a build with OpenMP and
   nothing in one without, where a bare #pragma omp would be warned about. */
#ifdef _OPENMP
#define OPT_OMP(x) _Pragma(#x)
#else
#define OPT_OMP(x)
#endif

/* Loops split the parameters into blocks of OPT_BLOCK, handed out to the
   threads in order (schedule(static)); ranges of at most OPT_PAR_MIN
   parameters stay on the calling thread. Measured on a 2-core EPYC: a
   parallel region costs about 1 us while the pool's threads still spin
   and 8 to 20 us once they sleep (as they do after a forward or backward
   pass), and 32k parameters take 15 us (SGD) to 100 us (Adam) on one
   thread, so below that the threads would cost more than they save. */
#define OPT_BLOCK 4096
#define OPT_PAR_MIN 32768

/* Clipping adds squares in blocks of CLIP_BLOCK gradients (this fixes the
   order of the additions, hence the bits of the norm); the sums of
   CLIP_GROUP blocks at a time are kept on the stack. */
#define CLIP_BLOCK SNNRT_CLIP_BLOCK
#define CLIP_GROUP 256

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

/* The scalars of one update, which every block of it shares: PyTorch's
   Python scalars, rounded to float where PyTorch hands them to a float
   kernel. */
typedef struct OptScalars {
    float wd, mom, alpha; /* SGD: weight decay, momentum, -lr */
    int first;            /* SGD: the first step sets the buffer */
    float b1, b2, c1, c2, bc2_sqrt, eps, neg_step, decay; /* Adam */
} OptScalars;

static OptScalars opt_scalars(const SnnrtOptim *o, double lr)
{
    OptScalars k;
    double step = o->step > 0 ? (double)o->step : 1.0;
    double bc1 = 1.0 - pow(o->beta1, step), bc2 = 1.0 - pow(o->beta2, step);
    double step_size = lr / bc1;
    memset(&k, 0, sizeof k);
    k.wd = (float)o->weight_decay;
    k.mom = (float)o->momentum;
    k.alpha = (float)-lr;
    k.first = o->step <= 1;
    k.b1 = (float)o->beta1;
    k.b2 = (float)o->beta2;
    k.c1 = (float)(1.0 - o->beta1);
    k.c2 = (float)(1.0 - o->beta2);
    k.bc2_sqrt = (float)sqrt(bc2);
    k.eps = (float)o->eps;
    k.neg_step = (float)-step_size;
    k.decay = (float)(1.0 - lr * o->weight_decay);
    return k;
}

/* _single_tensor_sgd with dampening 0. The options are read into locals
   first, so that the loop tests no field of o and can be vectorized. */
OPT_CLONES static void sgd_update(const SnnrtOptim *o, const OptScalars *k,
                                  float *buf, float *p, const float *g,
                                  size_t count)
{
    float wd = k->wd, mom = k->mom, alpha = k->alpha;
    int first = k->first, decay = o->weight_decay != 0.0,
        momentum = o->momentum != 0.0, nesterov = o->nesterov;
    size_t i;
    for (i = 0; i < count; i++) {
        float d = g[i];
        if (decay)
            d = fmaf(wd, p[i], d); /* d_p.add(param, alpha=weight_decay) */
        if (momentum) {
            if (first) {
                buf[i] = d; /* torch.clone(d_p) */
            } else {
                buf[i] = buf[i] * mom; /* buf.mul_(momentum) */
                buf[i] = buf[i] + d;   /* .add_(d_p, alpha=1 - dampening) */
            }
            d = nesterov ? fmaf(mom, buf[i], d) : buf[i];
        }
        p[i] = fmaf(alpha, d, p[i]); /* param.add_(d_p, alpha=-lr) */
    }
}

/* _single_tensor_adam and _single_tensor_adamw (amsgrad off). v is never
   negative, so sqrtf never sets errno here; optim.c is compiled with
   -fno-math-errno (runtime/CMakeLists.txt), which lets the compiler use
   the vector square root: correctly rounded, the same bits as sqrtf. The
   loop is written once and inlined three times, the decay's kind a
   constant in each (tested in the loop, it made GCC vectorize the update
   4 floats at a time instead of 8, with blends: twice the time). */
#if defined(__GNUC__) || defined(__clang__)
#define OPT_INLINE static inline __attribute__((always_inline))
#else
#define OPT_INLINE static inline
#endif
OPT_INLINE void adam_loop(const OptScalars *k, float *restrict m,
                          float *restrict v, float *restrict p,
                          const float *restrict g, size_t count, int adamw,
                          int l2)
{
    float b1 = k->b1, b2 = k->b2, c1 = k->c1, c2 = k->c2, wd = k->wd,
          bc2_sqrt = k->bc2_sqrt, eps = k->eps, neg_step = k->neg_step,
          decay = k->decay;
    size_t i;
    for (i = 0; i < count; i++) {
        float grad = g[i], denom, w = p[i];
        if (adamw)
            w = w * decay; /* param.mul_(1 - lr * weight_decay) */
        else if (l2)
            grad = fmaf(wd, w, grad); /* grad.add(param, alpha=wd) */
        /* exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1) */
        m[i] = m[i] * b1;
        m[i] = fmaf(c1, grad, m[i]);
        /* exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2) */
        v[i] = v[i] * b2;
        v[i] = fmaf(c2 * grad, grad, v[i]);
        /* denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps);
           param.addcdiv_(exp_avg, denom, value=-step_size) */
        denom = sqrtf(v[i]) / bc2_sqrt + eps;
        p[i] = w + neg_step * m[i] / denom;
    }
}

OPT_CLONES static void adam_update(const SnnrtOptim *o, const OptScalars *k,
                                   float *m, float *v, float *p,
                                   const float *g, size_t count)
{
    if (o->kind == SNNRT_ADAMW)
        adam_loop(k, m, v, p, g, count, 1, 0);
    else if (o->weight_decay != 0.0)
        adam_loop(k, m, v, p, g, count, 0, 1);
    else
        adam_loop(k, m, v, p, g, count, 0, 0);
}

/* Updates p[0..count) with the state at [off, off + count). */
static void update_range(const SnnrtOptim *o, const OptScalars *k,
                         size_t off, float *p, const float *g, size_t count)
{
    if (o->kind == SNNRT_SGD)
        sgd_update(o, k, o->m + off, p, g, count);
    else
        adam_update(o, k, o->m + off, o->v + off, p, g, count);
}

void snnrt_optim_update(SnnrtOptim *o, size_t off, float *p, const float *g,
                        size_t count, double lr)
{
    OptScalars k;
    size_t nblocks = count / OPT_BLOCK + (count % OPT_BLOCK != 0), j;
    if (!o || !o->m || !o->v || !p || !g || off > o->n ||
        count > o->n - off)
        return;
    if (o->kind != SNNRT_SGD && o->kind != SNNRT_ADAM &&
        o->kind != SNNRT_ADAMW)
        return;
    k = opt_scalars(o, lr);
    /* Tested here rather than by an if clause, which still enters the
       OpenMP runtime (a team of one, 0.4 us), several times what a bias
       of ten floats costs to update; callers update tensor by tensor. */
    if (count <= OPT_PAR_MIN) {
        update_range(o, &k, off, p, g, count);
        return;
    }
    OPT_OMP(omp parallel for schedule(static))
    for (j = 0; j < nblocks; j++) {
        size_t lo = j * OPT_BLOCK, len = count - lo;
        if (len > OPT_BLOCK)
            len = OPT_BLOCK;
        update_range(o, &k, off + lo, p + lo, g + lo, len);
    }
}

INT_CLONES int snnrt_any_nonfinite(const float *v, size_t n)
{
    uint32_t any = 0;
    size_t k;
    for (k = 0; k < n; k++) {
        uint32_t u;
        memcpy(&u, &v[k], sizeof u);
        any |= (u & 0x7f800000u) == 0x7f800000u;
    }
    return any != 0;
}

/* A block of gradients for clipping: len of them, counted through the
   ranges from index i of range r. */
typedef struct ClipBlock {
    int r;
    size_t i, len;
} ClipBlock;

/* The sum of squares of a block, in double, in snnrt.h's order: lane l
   of SNNRT_CLIP_LANES adds the block's gradients l, l + 32, ... from 0.0,
   then the lanes are added as a tree, l += l + w for w = 16, 8, 4, 2, 1.
   The lanes are a vector's, and a GPU warp's. */
INT_CLONES static double clip_sumsq(const float *g, const size_t *off,
                                    const size_t *count, ClipBlock b)
{
    double lane[SNNRT_CLIP_LANES] = {0.0};
    size_t i = b.i, left = b.len, at = 0; /* at: the position in the block */
    int r, l, w;
    for (r = b.r; left > 0; r++, i = 0) {
        const float *x = g + off[r] + i;
        size_t n = count[r] - i < left ? count[r] - i : left, k = 0;
        for (; k < n && at % SNNRT_CLIP_LANES; k++, at++) /* up to a row of lanes */
            lane[at % SNNRT_CLIP_LANES] += (double)x[k] * x[k];
        for (; k + SNNRT_CLIP_LANES <= n; k += SNNRT_CLIP_LANES, at += SNNRT_CLIP_LANES)
            for (l = 0; l < SNNRT_CLIP_LANES; l++)
                lane[l] += (double)x[k + l] * x[k + l];
        for (; k < n; k++, at++)
            lane[at % SNNRT_CLIP_LANES] += (double)x[k] * x[k];
        left -= n;
    }
    for (w = SNNRT_CLIP_LANES / 2; w > 0; w /= 2)
        for (l = 0; l < w; l++)
            lane[l] += lane[l + w];
    return lane[0];
}

double snnrt_clip_grad_norm(float *g, const size_t *off, const size_t *count,
                            int nranges, double max_norm)
{
    ClipBlock blocks[CLIP_GROUP];
    double part[CLIP_GROUP], sum = 0.0, norm, coef;
    size_t i = 0, j;
    int r = 0, nb;
    if (!g || !off || !count)
        return 0.0;
    /* cut the ranges into blocks, CLIP_GROUP at a time: (r, i) is the
       next gradient not in a block */
    do {
        size_t work = 0;
        for (nb = 0; nb < CLIP_GROUP && r < nranges; nb++) {
            ClipBlock *b = &blocks[nb];
            b->r = r;
            b->i = i;
            b->len = 0;
            while (b->len < CLIP_BLOCK && r < nranges) {
                size_t n = count[r] - i;
                if (n > CLIP_BLOCK - b->len)
                    n = CLIP_BLOCK - b->len;
                b->len += n;
                i += n;
                if (i == count[r]) {
                    r++;
                    i = 0;
                }
            }
            work += b->len;
        }
        OPT_OMP(omp parallel for schedule(static) if (work > OPT_PAR_MIN))
        for (j = 0; j < (size_t)nb; j++)
            part[j] = clip_sumsq(g, off, count, blocks[j]);
        for (j = 0; j < (size_t)nb; j++)
            sum += part[j];
    } while (r < nranges);
    norm = sqrt(sum);
    coef = snnrt_clip_coef(sum, max_norm);
    if (coef < 1.0 || isnan(coef)) {
        float c = (float)coef;
        for (r = 0; r < nranges; r++) {
            float *x = g + off[r];
            size_t n = count[r];
            if (n <= OPT_PAR_MIN) { /* as in snnrt_optim_update */
                for (i = 0; i < n; i++)
                    x[i] *= c;
                continue;
            }
            OPT_OMP(omp parallel for schedule(static))
            for (i = 0; i < n; i++)
                x[i] *= c;
        }
    }
    return norm;
}

/* clip_coef = max_norm / (total_norm + 1e-6), clamped to at most 1 by
   the caller; a NaN coefficient passes the clamp, as in PyTorch */
double snnrt_clip_coef(double sumsq, double max_norm)
{
    return max_norm / (sqrt(sumsq) + 1e-6);
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
