/*
 * test_train.c: tests of the training support of the runtime: losses
 * (snnrt_loss), optimizers (snnrt_optim_*), gradient clipping and the
 * learning-rate schedules, against values derived by hand (written out in
 * the comments), plus a finite-difference check of every loss's gradient
 * through every readout. tests/runtime/torch_reference.py compares the same
 * functions with PyTorch itself.
 */
#include "snnrt.h"
#include "testutil.h"

#include <stdlib.h>

/* ---- losses ---- */

static SnnrtLoss make_loss(SnnrtLossKind kind, int readout)
{
    SnnrtLoss l;
    memset(&l, 0, sizeof l);
    l.kind = kind;
    l.readout = readout;
    l.correct_rate = 1.0;
    return l;
}

static void test_ce(void)
{
    /* logits (1, 2, 3), label 2: log(e + e^2 + e^3) - 3
       = log(1 + e^-1 + e^-2) = 0.40760596444438...; softmax
       (0.09003057317038046, 0.24472847105479764, 0.6652409557748219) */
    static const float y[3] = {1, 2, 3};
    static const int label[1] = {2};
    SnnrtLoss l = make_loss(SNNRT_LOSS_CE, SNNRT_RO_LAST);
    float dy[3];
    int nc = 0;
    CHECK_NEAR(snnrt_loss(&l, 1, 1, 3, y, label, dy, &nc), 0.40760596444438, 1e-12);
    CHECK_NEAR(dy[0], 0.09003057317038046, 1e-7);
    CHECK_NEAR(dy[1], 0.24472847105479764, 1e-7);
    CHECK_NEAR(dy[2], 0.6652409557748219 - 1, 1e-7);
    CHECK(nc == 1);
    /* evaluation only: no dy, and ncorrect is added to */
    CHECK_NEAR(snnrt_loss(&l, 1, 1, 3, y, label, NULL, &nc), 0.40760596444438, 1e-12);
    CHECK(nc == 2);
    CHECK(!isnan(snnrt_loss(&l, 1, 1, 3, y, label, NULL, NULL)));
}

static void test_ce_large(void)
{
    /* logits (1000, 0): label 0 costs log(1 + e^-1000) = 0 (to double
       precision), label 1 costs 1000; no overflow, no NaN */
    static const float y[4] = {1000, 0, 1000, 0};
    static const int labels[2] = {0, 1};
    SnnrtLoss l = make_loss(SNNRT_LOSS_CE, SNNRT_RO_MEAN);
    float dy[4];
    int nc = 0;
    CHECK_NEAR(snnrt_loss(&l, 1, 2, 2, y, labels, dy, &nc), 500.0, 1e-12);
    CHECK(nc == 1);
    CHECK(dy[0] == 0.0f && dy[1] == 0.0f); /* (1 - 1) / 2, (0 - 0) / 2 */
    CHECK(dy[2] == 0.5f && dy[3] == -0.5f);
}

/* y[t][b][k] with T = 2, B = 1, K = 2: step 0 (1, 0), step 1 (3, 0),
   label 1. The logits per readout and where the gradient goes. */
static void test_readouts(void)
{
    static const float y[4] = {1, 0, 3, 0};
    static const int label[1] = {1};
    static const double z0[6] = {2, 4, 2, 2, 3, 3}; /* class-0 logit */
    float dy[4];
    int ro;
    for (ro = SNNRT_RO_STEPS; ro <= SNNRT_RO_MAX; ro++) {
        SnnrtLoss l = make_loss(SNNRT_LOSS_CE, ro);
        /* CE with logits (z, 0) and label 1: log(1 + e^z); dz0 = sigmoid */
        double s = 1.0 / (1.0 + exp(-z0[ro]));
        int nc = 0;
        CHECK_NEAR(snnrt_loss(&l, 2, 1, 2, y, label, dy, &nc), log1p(exp(z0[ro])), 1e-12);
        CHECK(nc == 0);
        switch (ro) {
        case SNNRT_RO_COUNT:
            CHECK_NEAR(dy[0], s, 1e-7);
            CHECK_NEAR(dy[2], s, 1e-7);
            break;
        case SNNRT_RO_LAST:
        case SNNRT_RO_MAX:
            CHECK(dy[0] == 0.0f);
            CHECK_NEAR(dy[2], s, 1e-7);
            break;
        default: /* means */
            CHECK_NEAR(dy[0], s / 2, 1e-7);
            CHECK_NEAR(dy[2], s / 2, 1e-7);
            break;
        }
        /* class 1: logit 0 at every step, dz1 = (1 - s) - 1; count sends
           it to both steps */
        CHECK_NEAR(dy[1] + dy[3], -s * (ro == SNNRT_RO_COUNT ? 2 : 1), 1e-7);
    }
}

/* max over steps with ties: the gradient goes to the first step */
static void test_max_ties(void)
{
    static const float y[6] = {1, 0, 1, 0, 1, 0}; /* T = 3, K = 2 */
    static const int label[1] = {0};
    SnnrtLoss l = make_loss(SNNRT_LOSS_CE, SNNRT_RO_MAX);
    float dy[6];
    snnrt_loss(&l, 3, 1, 2, y, label, dy, NULL);
    CHECK(dy[0] != 0.0f && dy[2] == 0.0f && dy[4] == 0.0f);
    CHECK(dy[1] != 0.0f && dy[3] == 0.0f && dy[5] == 0.0f);
}

/* predictions: first maximum on ties */
static void test_predictions(void)
{
    static const float y[6] = {2, 2, 1, 0, 5, 5}; /* B = 2, K = 3 */
    static const int first[2] = {0, 1}, second[2] = {1, 2};
    SnnrtLoss l = make_loss(SNNRT_LOSS_CE, SNNRT_RO_COUNT);
    int nc = 0;
    snnrt_loss(&l, 1, 2, 3, y, first, NULL, &nc);
    CHECK(nc == 2);
    nc = 0;
    snnrt_loss(&l, 1, 2, 3, y, second, NULL, &nc);
    CHECK(nc == 0);
}

static void test_tet(void)
{
    /* T = 2, B = 1, K = 2, label 0: step 0 logits (0, 0) cost log 2, step
       1 logits (2, 0) cost log(1 + e^-2); TET = their mean. With lambda
       0.25 and phi 1: MSE = ((0-1)^2 * 3 + (2-1)^2) / 4 = 1. */
    static const float y[4] = {0, 0, 2, 0};
    static const int label[1] = {0};
    SnnrtLoss l = make_loss(SNNRT_LOSS_TET, SNNRT_RO_MEAN);
    double ce0 = log(2.0), ce1 = log1p(exp(-2.0)), s = 1 / (1 + exp(-2.0));
    float dy[4];
    int nc = 0;
    CHECK_NEAR(snnrt_loss(&l, 2, 1, 2, y, label, dy, &nc), (ce0 + ce1) / 2, 1e-12);
    CHECK(nc == 1); /* mean logits (1, 0) */
    /* d/dy of CE_t / T: (softmax - onehot) / 2 */
    CHECK_NEAR(dy[0], (0.5 - 1) / 2, 1e-7);
    CHECK_NEAR(dy[1], 0.5 / 2, 1e-7);
    CHECK_NEAR(dy[2], (s - 1) / 2, 1e-7);
    CHECK_NEAR(dy[3], (1 - s) / 2, 1e-7);
    l.lambda = 0.25;
    l.phi = 1.0;
    CHECK_NEAR(snnrt_loss(&l, 2, 1, 2, y, label, dy, NULL),
               0.75 * (ce0 + ce1) / 2 + 0.25 * 1.0, 1e-12);
    /* MSE part: lambda * 2 (y - phi) / 4 */
    CHECK_NEAR(dy[0], 0.75 * (0.5 - 1) / 2 + 0.25 * 2 * -1 / 4, 1e-7);
    CHECK_NEAR(dy[2], 0.75 * (s - 1) / 2 + 0.25 * 2 * 1 / 4, 1e-7);
}

static void test_mse_count(void)
{
    /* T = 4, B = 1, K = 3, label 1; counts (1, 3, 4); correct_rate 0.8
       gives int(3.2) = 3, incorrect_rate 0.3 gives int(1.2) = 1. Errors
       (0, 0, 3): loss 9 / 3 / 4 = 0.75, dy = 2 * err / (3 * 4). */
    static const float y[12] = {1, 1, 1, 0, 1, 1, 0, 1, 1, 0, 0, 1};
    static const int label[1] = {1};
    SnnrtLoss l = make_loss(SNNRT_LOSS_MSE_COUNT, SNNRT_RO_LAST);
    float dy[12];
    int t, nc = 0;
    l.correct_rate = 0.8;
    l.incorrect_rate = 0.3;
    CHECK_NEAR(snnrt_loss(&l, 4, 1, 3, y, label, dy, &nc), 0.75, 1e-12);
    CHECK(nc == 0); /* the prediction is the count's argmax, class 2 */
    for (t = 0; t < 4; t++) {
        CHECK(dy[3 * t] == 0.0f && dy[3 * t + 1] == 0.0f);
        CHECK_NEAR(dy[3 * t + 2], 0.5, 1e-7);
    }
}

static void test_invalid(void)
{
    static const float y[2] = {1, 2};
    static const int bad[1] = {2}, neg[1] = {-1}, good[1] = {0};
    SnnrtLoss l = make_loss(SNNRT_LOSS_CE, SNNRT_RO_LAST);
    float dy[2] = {7, 7};
    int nc = 5;
    CHECK(isnan(snnrt_loss(&l, 1, 1, 2, y, bad, dy, &nc)));
    CHECK(dy[0] == 0.0f && dy[1] == 0.0f && nc == 5);
    CHECK(isnan(snnrt_loss(&l, 1, 1, 2, y, neg, dy, &nc)));
    CHECK(isnan(snnrt_loss(&l, 0, 1, 2, y, good, dy, &nc)));
    CHECK(isnan(snnrt_loss(NULL, 1, 1, 2, y, good, dy, &nc)));
    l.readout = 6;
    CHECK(isnan(snnrt_loss(&l, 1, 1, 2, y, good, dy, &nc)));
    l.readout = SNNRT_RO_LAST;
    l.kind = (SnnrtLossKind)7;
    CHECK(isnan(snnrt_loss(&l, 1, 1, 2, y, good, dy, &nc)));
    CHECK(nc == 5);
}

/* Central differences in double around float inputs, for every loss and
   readout, on values without ties (so max is differentiable). */
static void test_gradients(void)
{
    enum { T = 3, B = 2, K = 4, N = T * B * K };
    static const int labels[B] = {1, 3};
    float y[N], dy[N];
    int kind, ro, i;
    unsigned seed = 7;
    for (i = 0; i < N; i++) {
        seed = seed * 1103515245u + 12345u;
        y[i] = (float)((seed >> 8) % 20000) / 4000.0f - 2.5f + 0.001f * i;
    }
    for (kind = SNNRT_LOSS_CE; kind <= SNNRT_LOSS_MSE_COUNT; kind++) {
        for (ro = SNNRT_RO_STEPS; ro <= SNNRT_RO_MAX; ro++) {
            SnnrtLoss l = make_loss((SnnrtLossKind)kind, ro);
            double worst = 0;
            l.lambda = 0.3;
            l.phi = 0.5;
            l.correct_rate = 0.9;
            l.incorrect_rate = 0.2;
            snnrt_loss(&l, T, B, K, y, labels, dy, NULL);
            for (i = 0; i < N; i++) {
                float keep = y[i], h = 1.0f / 256; /* exact in float */
                double up, down, fd;
                y[i] = keep + h;
                up = snnrt_loss(&l, T, B, K, y, labels, NULL, NULL);
                y[i] = keep - h;
                down = snnrt_loss(&l, T, B, K, y, labels, NULL, NULL);
                y[i] = keep;
                fd = (up - down) / (2.0 * h);
                if (fabs(fd - dy[i]) > worst)
                    worst = fabs(fd - dy[i]);
            }
            if (worst > 1e-4) {
                printf("loss %d readout %d: gradient off by %g\n", kind, ro, worst);
                failures++;
            }
        }
    }
}

/* ---- optimizers ---- */

static void setup(SnnrtOptim *o, SnnrtOptKind kind, size_t n)
{
    char err[200];
    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->lr = 0.1;
    o->beta1 = 0.9;
    o->beta2 = 0.999;
    o->eps = 1e-8;
    CHECK_OK(snnrt_optim_init(o, n, err, sizeof err), err);
}

static void test_sgd(void)
{
    SnnrtOptim o;
    float p[2] = {1, 1}, g[2] = {0.5f, 0.5f};
    /* plain: 1 - 0.1 * 0.5 */
    setup(&o, SNNRT_SGD, 2);
    snnrt_optim_begin_step(&o);
    snnrt_optim_update(&o, 0, p, g, 2, o.lr);
    CHECK_NEAR(p[0], 0.95, 1e-7);
    /* weight decay 0.1: d = 0.5 + 0.1 * 0.95 = 0.595; 0.95 - 0.0595 */
    o.weight_decay = 0.1;
    snnrt_optim_begin_step(&o);
    snnrt_optim_update(&o, 0, p, g, 1, o.lr);
    CHECK_NEAR(p[0], 0.8905, 1e-7);
    snnrt_optim_free(&o);
    CHECK(o.m == NULL && o.v == NULL && o.n == 0 && o.step == 0);
    CHECK(o.kind == SNNRT_SGD && o.lr == 0.1); /* hyperparameters kept */
    /* momentum 0.9: the buffer starts as the first gradient (0.5), so p =
       1 - 0.05; then buf = 0.9 * 0.5 + 0.5 = 0.95, p = 0.95 - 0.095 */
    setup(&o, SNNRT_SGD, 2);
    o.momentum = 0.9;
    p[0] = p[1] = 1;
    snnrt_optim_begin_step(&o);
    snnrt_optim_update(&o, 0, p, g, 2, 0.1);
    CHECK_NEAR(p[0], 0.95, 1e-7);
    CHECK(o.m[0] == 0.5f);
    snnrt_optim_begin_step(&o);
    snnrt_optim_update(&o, 0, p, g, 2, 0.1);
    CHECK_NEAR(p[0], 0.855, 1e-7);
    CHECK_NEAR(o.m[0], 0.95, 1e-7);
    snnrt_optim_free(&o);
    /* nesterov: d = g + 0.9 * buf = 0.5 + 0.45; p = 1 - 0.095; then buf =
       0.95, d = 0.5 + 0.855 = 1.355, p = 0.905 - 0.1355 */
    setup(&o, SNNRT_SGD, 2);
    o.momentum = 0.9;
    o.nesterov = 1;
    p[0] = p[1] = 1;
    snnrt_optim_begin_step(&o);
    snnrt_optim_update(&o, 0, p, g, 2, 0.1);
    CHECK_NEAR(p[0], 0.905, 1e-7);
    snnrt_optim_begin_step(&o);
    snnrt_optim_update(&o, 0, p, g, 2, 0.1);
    CHECK_NEAR(p[0], 0.7695, 1e-7);
    snnrt_optim_free(&o);
}

static void test_adam(void)
{
    SnnrtOptim o;
    float p[3] = {1, 1, -2}, g[3] = {0.5f, -0.25f, 0.0f};
    /* step 1: m = 0.1 g, v = 0.001 g^2; bias corrections 0.1 and 0.001,
       so m_hat = g, sqrt(v_hat) = |g|: p -= lr * g / (|g| + eps), i.e.
       lr * sign(g) (and nothing where g = 0) */
    setup(&o, SNNRT_ADAM, 3);
    o.lr = 0.001;
    snnrt_optim_begin_step(&o);
    snnrt_optim_update(&o, 0, p, g, 3, o.lr);
    CHECK_NEAR(p[0], 0.999, 1e-7);
    CHECK_NEAR(p[1], 1.001, 1e-7);
    CHECK(p[2] == -2.0f);
    CHECK_NEAR(o.m[0], 0.05, 1e-8);
    CHECK_NEAR(o.v[0], 0.00025, 1e-10);
    /* step 2, same gradient: m = 0.9 * 0.05 + 0.05 = 0.095, v = 0.999 *
       0.00025 + 0.00025 = 0.00049975; bias corrections 0.19, 0.001999:
       m_hat = 0.5, v_hat = 0.25 (both exact), so again lr * sign */
    snnrt_optim_begin_step(&o);
    snnrt_optim_update(&o, 0, p, g, 1, o.lr);
    CHECK_NEAR(p[0], 0.998, 1e-7);
    snnrt_optim_free(&o);
    /* Adam's weight decay joins the gradient: g = 0.5 + 0.1 * 1 = 0.6,
       still lr * sign on step 1 */
    setup(&o, SNNRT_ADAM, 1);
    o.lr = 0.001;
    o.weight_decay = 0.1;
    p[0] = 1;
    snnrt_optim_begin_step(&o);
    snnrt_optim_update(&o, 0, p, g, 1, o.lr);
    CHECK_NEAR(p[0], 0.999, 1e-7);
    CHECK_NEAR(o.m[0], 0.06, 1e-8);
    snnrt_optim_free(&o);
    /* AdamW decays the weight first: 1 * (1 - 0.001 * 0.1) - 0.001 */
    setup(&o, SNNRT_ADAMW, 1);
    o.lr = 0.001;
    o.weight_decay = 0.1;
    p[0] = 1;
    snnrt_optim_begin_step(&o);
    snnrt_optim_update(&o, 0, p, g, 1, o.lr);
    CHECK_NEAR(p[0], 0.9989, 1e-7);
    CHECK_NEAR(o.m[0], 0.05, 1e-8);
    snnrt_optim_free(&o);
}

/* Updating two ranges with their offsets equals updating all at once;
   ranges outside the state are ignored. */
static void test_ranges(void)
{
    SnnrtOptim a, b;
    float pa[5] = {1, 2, 3, 4, 5}, pb[5] = {1, 2, 3, 4, 5},
          g[5] = {0.1f, -0.2f, 0.3f, -0.4f, 0.5f};
    int s, i;
    setup(&a, SNNRT_ADAMW, 5);
    setup(&b, SNNRT_ADAMW, 5);
    a.weight_decay = b.weight_decay = 0.01;
    for (s = 0; s < 3; s++) {
        snnrt_optim_begin_step(&a);
        snnrt_optim_begin_step(&b);
        snnrt_optim_update(&a, 0, pa, g, 5, 0.01);
        snnrt_optim_update(&b, 0, pb, g, 2, 0.01);
        snnrt_optim_update(&b, 2, pb + 2, g + 2, 3, 0.01);
        snnrt_optim_update(&b, 4, pb, g, 2, 0.01); /* 4 + 2 > 5: ignored */
        snnrt_optim_update(&b, 6, pb, g, 0, 0.01); /* off > n: ignored */
    }
    for (i = 0; i < 5; i++)
        CHECK(pa[i] == pb[i]);
    snnrt_optim_free(&a);
    snnrt_optim_free(&b);
    snnrt_optim_free(NULL);
    snnrt_optim_begin_step(NULL);
}

static void test_clip(void)
{
    float g[3] = {3, 100, 4};
    size_t off[2] = {0, 2}, count[2] = {1, 1};
    /* the ranges hold 3 and 4 (the 100 between them is not part of it):
       norm 5, scaled by 1 / (5 + 1e-6) */
    CHECK_NEAR(snnrt_clip_grad_norm(g, off, count, 2, 1.0), 5.0, 1e-12);
    CHECK_NEAR(g[0], 3 / (5 + 1e-6), 1e-7);
    CHECK_NEAR(g[2], 4 / (5 + 1e-6), 1e-7);
    CHECK(g[1] == 100.0f);
    /* below max_norm: untouched */
    g[0] = 3;
    g[2] = 4;
    CHECK_NEAR(snnrt_clip_grad_norm(g, off, count, 2, 10.0), 5.0, 1e-12);
    CHECK(g[0] == 3.0f && g[2] == 4.0f);
    /* a NaN gradient makes every gradient NaN, as in PyTorch */
    g[0] = NAN;
    CHECK(isnan(snnrt_clip_grad_norm(g, off, count, 2, 1.0)));
    CHECK(isnan(g[2]));
    CHECK(snnrt_clip_grad_norm(g, off, count, 0, 1.0) == 0.0);
}

static void test_schedules(void)
{
    /* cosine: eta_min + (lr0 - eta_min) (1 + cos(pi e / E)) / 2 */
    CHECK_NEAR(snnrt_lr_cosine(0.1, 0, 10, 0.0), 0.1, 1e-15);
    CHECK_NEAR(snnrt_lr_cosine(0.1, 5, 10, 0.0), 0.05, 1e-15);
    CHECK_NEAR(snnrt_lr_cosine(0.1, 10, 10, 0.0), 0.0, 1e-15);
    CHECK_NEAR(snnrt_lr_cosine(0.1, 5, 10, 0.01), 0.055, 1e-15);
    /* e = E/3: (1 + 1/2) / 2 = 0.75 */
    CHECK_NEAR(snnrt_lr_cosine(1.0, 2, 6, 0.0), 0.75, 1e-15);
    CHECK(snnrt_lr_cosine(0.1, 3, 0, 0.0) == 0.1);
    /* step: lr0 * gamma^(e / s) */
    CHECK_NEAR(snnrt_lr_step(0.1, 29, 30, 0.1), 0.1, 1e-15);
    CHECK_NEAR(snnrt_lr_step(0.1, 30, 30, 0.1), 0.01, 1e-15);
    CHECK_NEAR(snnrt_lr_step(0.1, 61, 30, 0.1), 0.001, 1e-15);
    CHECK(snnrt_lr_step(0.1, 61, 0, 0.1) == 0.1);
}

int main(void)
{
    test_ce();
    test_ce_large();
    test_readouts();
    test_max_ties();
    test_predictions();
    test_tet();
    test_mse_count();
    test_invalid();
    test_gradients();
    test_sgd();
    test_adam();
    test_ranges();
    test_clip();
    test_schedules();
    return test_main_end("loss and optimizer");
}
