/*
 * train.c: snnc train, and snnc run --eval (accuracy on a dataset).
 *
 * The model's training code is generated, built and loaded (load.c); the
 * loop around it is here: batches drawn in an order shuffled from the seed
 * and the epoch, the generated forward over all steps, the loss and its
 * gradient (runtime/loss.c), the generated backward, gradient clipping, the
 * optimizer (runtime/optim.c) on every learnable parameter, and after each
 * epoch an evaluation on the test split, a checkpoint (checkpoint.safetensors:
 * parameters, optimizer state, progress, metrics), then a line of metrics
 * (metrics.csv) and the training curves (curves.svg), every file written
 * atomically. The checkpoint goes first: metrics.csv never lists an epoch
 * that the checkpoint lacks, whatever stops the run between the files.
 * A run resumed from its checkpoint draws the same batches and dropout
 * masks as one that was never stopped, so it ends with the same weights.
 *
 * A run that diverges stops with an error before it writes anything more
 * (docs/training.md, "Divergence"): a loss or a gradient that is not
 * finite, or a batch's loss above DIVERGE_FACTOR times the first epoch's
 * mean loss (at least 1). The checkpoint on disk is then the last good one.
 *
 * The output folder is checked before anything is compiled, and temporary
 * files that killed runs left in it are removed (runtime/file.c).
 *
 * Under mpirun the same loop runs on every rank (dist.h): each runs its
 * contiguous shard of every global batch, the gradients, buffers and
 * metrics are summed over the ranks in a fixed order (reduce_step), and
 * every rank takes the same optimizer step, which is one process's on the
 * whole batch up to round-off. Rank 0 alone checks the output folder,
 * reads the checkpoint (and sends it), prints and writes the files
 * (docs/training.md, "Data-parallel training").
 *
 * With --plot, plot.c builds the inference code too and runs a few test
 * samples through it after every epoch: their per-layer spike rates join
 * curves.svg, and the plots of the trained network end the run.
 *
 * A target whose code runs on a GPU (cuda) keeps the training workspace
 * and the optimizer's state in device memory for the whole run
 * (LoadedModel.dev): a step gets back its loss, its count of correct
 * predictions and its gradients' sums of squares (the finite check and
 * clipping, added in the host's order), and the next batch is read and
 * sent while the device runs the step; the state comes back after each
 * epoch, for the checks and the files. Under mpirun each rank takes a GPU
 * of its machine, and a step's gradients and buffers go through the host
 * (dev.pull, reduce_step, clipping, dev.push) before the optimizer's step
 * on the device.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "data.h"
#include "dist.h"
#include "jit.h"
#include "plot.h"

/* A batch's loss above this many times the reference (the first epoch's
   mean loss, or during the first epoch the mean of its batches so far; at
   least 1) is divergence. A training run that works never comes near: its
   loss falls from where it starts, and the first epoch's mean is a loss the
   network already had. */
#define DIVERGE_FACTOR 100.0

typedef struct Metrics {
    int epoch;
    double lr, train_loss, train_acc, test_loss, test_acc, seconds, rate, spikes;
} Metrics;

typedef struct Trainer {
    Arena *a;
    Options *o;
    TrainSpec *ts;
    IrGraph *g;
    LoadedModel m;
    float *ws;
    int T, K;
    int batch;  /* the largest batch this rank runs: its shard of a global batch */
    int gbatch; /* the global batch: the train spec's, split among the ranks */
    int rank, nranks;
    long in_size; /* floats of one batch's input */
    float *x, *y, *dy;
    int *labels;
    long *order;
    SnnrtOptim opt;
    SnnrtLoss loss;
    size_t *roff, *rcnt; /* learnable ranges */
    int nranges;
    size_t nparam;  /* floats of the parameter block */
    double *red;    /* several ranks: what each step sums over them (reduce_step) */
    size_t nred;
    VEC(Metrics) hist;
    long long step; /* optimizer steps so far */
    double *blocks; /* a device's loop (LoadedModel.dev): the gradients' sums of squares in clipping's blocks */
    long nblocks;
    long staged; /* a device's loop: the start of the batch read into x and labels, or -1 */
    Buf *steplog;   /* --step-log: step, epoch, loss of every step */
    int epochs_done;
    const char *dir;
} Trainer;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static unsigned long long mix(unsigned long long z) {
    z += 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* The generated code's training forward for the samples first .. first +
   b - 1 of a batch: they draw their dropout masks and rate spikes as those
   samples of the whole batch, so that a rank's shard draws what one
   process running the whole batch draws (docs/training.md, "Data-parallel
   training"). */
static void forward_at(Trainer *tr, int b, long first, int training, unsigned long long seed) {
    if (tr->m.train_forward_at)
        tr->m.train_forward_at(tr->ws, b, first, tr->x, tr->y, training, seed);
    else
        tr->m.train_forward(tr->ws, b, tr->x, tr->y, training, seed);
}

/* The order of epoch e: a Fisher-Yates shuffle from (seed, e), or the
   samples in file order. */
static void shuffle(long *order, long n, unsigned long long seed, int epoch, int on) {
    unsigned long long st = mix(seed ^ mix(0x5EED0000ULL + (unsigned long long)epoch));
    for (long i = 0; i < n; i++)
        order[i] = i;
    for (long i = n - 1; on && i > 0; i--) {
        st = mix(st);
        long j = (long)(st % (unsigned long long)(i + 1));
        long t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

static double lr_at(const TrainSpec *ts, int epoch) {
    switch (ts->sched) {
    case SCHED_COSINE: return snnrt_lr_cosine(ts->lr, epoch, ts->epochs, ts->eta_min);
    case SCHED_STEP: return snnrt_lr_step(ts->lr, epoch, ts->step_size, ts->gamma);
    default: return ts->lr;
    }
}

/* ---- evaluation ---- */

/* The class the generated code's forward predicts: the argmax (first on
   ties) of its readout (for per-step outputs, of their mean), computed in
   float in the same order as the generated readout, so that a deployed
   program agrees exactly. */
static int predict(const float *y, int T, int B, int K, int b, int readout) {
    int best = 0;
    float bv = 0;
    for (int k = 0; k < K; k++) {
        float v = y[(size_t)b * (size_t)K + (size_t)k];
        if (readout == SNNRT_RO_LAST)
            v = y[((size_t)(T - 1) * (size_t)B + (size_t)b) * (size_t)K + (size_t)k];
        for (int t = 1; t < T && readout != SNNRT_RO_LAST; t++) {
            float w = y[((size_t)t * (size_t)B + (size_t)b) * (size_t)K + (size_t)k];
            if (readout == SNNRT_RO_MAX)
                v = w > v ? w : v;
            else
                v = v + w;
        }
        if (readout == SNNRT_RO_MEAN || readout == SNNRT_RO_RATE || readout == SNNRT_RO_STEPS)
            v = v / (float)T;
        if (k == 0 || v > bv) {
            best = k;
            bv = v;
        }
    }
    return best;
}

typedef struct Eval {
    double loss, acc, spikes;
} Eval;

/* The first of the n samples (or the n samples of a batch) that are rank r's
   of nr: contiguous shards, in rank order, whose sizes differ by 1 at most. */
static long shard_start(long n, int r, int nr) {
    return (long)((long long)n * r / nr);
}

/* The metrics of the test split d: with several ranks, each evaluates a
   contiguous shard of it and the sums are added over the ranks. One process
   runs the split in batches of the global batch's size; a rank's pieces
   never cross the bounds of those batches and say where they start in
   theirs, so that a rate-encoded input draws the spikes of one process. */
static void evaluate(Trainer *tr, const Dataset *d, Eval *ev) {
    double loss = 0, spk = 0, neurons = 0;
    int correct = 0;
    long done = shard_start(d->n, tr->rank, tr->nranks), end = shard_start(d->n, tr->rank + 1, tr->nranks);
    long *idx = tr->order;
    while (done < end) {
        long next = (done / tr->gbatch + 1) * tr->gbatch; /* the start of one process's next batch */
        long stop = end < next ? end : next;
        int b = stop - done < tr->batch ? (int)(stop - done) : tr->batch;
        for (int r = 0; r < b; r++)
            idx[r] = done + r;
        data_batch(d, idx, b, tr->x, tr->labels);
        forward_at(tr, b, done % tr->gbatch, 0, 0);
        loss += snnrt_loss(&tr->loss, tr->T, b, tr->K, tr->y, tr->labels, NULL, NULL) * b;
        for (int r = 0; r < b; r++)
            correct += predict(tr->y, tr->T, b, tr->K, r, tr->loss.readout) == tr->labels[r];
        if (tr->m.train_spikes) {
            double s = 0, c = 0;
            tr->m.train_spikes(tr->ws, b, &s, &c);
            spk += s;
            neurons += c;
        }
        done += b;
    }
    double sums[4] = {loss, correct, spk, neurons};
    dist_sum(sums, 4);
    loss = sums[0];
    correct = (int)sums[1];
    spk = sums[2];
    neurons = sums[3];
    ev->loss = d->n ? loss / (double)d->n : 0;
    ev->acc = d->n ? (double)correct / (double)d->n : 0;
    ev->spikes = neurons > 0 ? spk / neurons : 0;
}

/* ---- files ---- */

static const char *csv_text(Trainer *tr) {
    Buf b = {0};
    buf_puts(&b, "epoch,lr,train_loss,train_acc,test_loss,test_acc,spike_rate,seconds,samples_per_s\n");
    for (int i = 0; i < tr->hist.len; i++) {
        const Metrics *m = &tr->hist.items[i];
        buf_printf(&b, "%d,%.9g,%.9g,%.6f,%.9g,%.6f,%.6f,%.3f,%.1f\n", m->epoch, m->lr, m->train_loss,
                   m->train_acc, m->test_loss, m->test_acc, m->spikes, m->seconds, m->rate);
    }
    const char *s = arena_strdup(tr->a, b.data);
    buf_free(&b);
    return s;
}

/* Reads back metrics written by csv_text (the checkpoint keeps them). */
static void csv_parse(Trainer *tr, const char *s) {
    const char *p = strchr(s, '\n');
    while (p && p[1]) {
        Metrics m;
        memset(&m, 0, sizeof m);
        if (sscanf(p + 1, "%d,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf", &m.epoch, &m.lr, &m.train_loss, &m.train_acc,
                   &m.test_loss, &m.test_acc, &m.spikes, &m.seconds, &m.rate) == 9)
            vec_push(tr->a, &tr->hist, m);
        p = strchr(p + 1, '\n');
    }
}

static int write_curves(Trainer *tr, const PlotTrain *pt) {
    char err[1024];
    int n = tr->hist.len;
    double *ys[4];
    for (int k = 0; k < 4; k++)
        ys[k] = arena_alloc(tr->a, sizeof(double) * (size_t)(n + 1));
    for (int i = 0; i < n; i++) {
        ys[0][i] = tr->hist.items[i].train_loss;
        ys[1][i] = tr->hist.items[i].test_loss;
        ys[2][i] = tr->hist.items[i].train_acc;
        ys[3][i] = tr->hist.items[i].test_acc;
    }
    const char *names[4 + PLOT_CURVE_LAYERS] = {"train loss", "test loss", "train accuracy", "test accuracy"};
    const double *cy[4 + PLOT_CURVE_LAYERS] = {ys[0], ys[1], ys[2], ys[3]};
    int lens[4 + PLOT_CURVE_LAYERS] = {n, n, n, n};
    /* --plot: the spike rate of each spiking layer too */
    int ns = 4 + (pt ? plot_train_curves(tr->a, pt, PLOT_CURVE_LAYERS, names + 4, cy + 4) : 0);
    for (int k = 4; k < ns; k++)
        lens[k] = n;
    const char *path = arena_printf(tr->a, "%s/curves.svg", tr->dir);
    const char *title = arena_printf(tr->a, "%s: training", tr->g->name);
    if (snnrt_svg_curves(path, title, ns, names, cy, lens, "epoch", err, sizeof err) != 0) {
        error_plain("%s", err);
        return -1;
    }
    return 0;
}

static int save_params(Trainer *tr, const char *path, int with_state) {
    char err[1024];
    int np = tr->g->params.len;
    int cap = np * 3 + 1, n = 0;
    const char **names = arena_alloc(tr->a, sizeof(char *) * (size_t)cap);
    SnnrtTensor *ts = arena_alloc(tr->a, sizeof(SnnrtTensor) * (size_t)cap);
    const SnnrtTensor **tp = arena_alloc(tr->a, sizeof(SnnrtTensor *) * (size_t)cap);
    for (int i = 0; i < np; i++) {
        const IrParam *q = &tr->g->params.items[i];
        for (int kind = 0; kind < (with_state ? 3 : 1); kind++) {
            const float *src = kind == 0 ? tr->ws : kind == 1 ? tr->opt.m : tr->opt.v;
            if (kind > 0 && (!q->learnable || !src))
                continue;
            if (kind == 2 && tr->opt.kind == SNNRT_SGD)
                continue; /* SGD keeps only its momentum */
            SnnrtTensor *t = &ts[n];
            t->ndim = q->shape.ndim;
            for (int k = 0; k < q->shape.ndim; k++)
                t->shape[k] = q->shape.d[k];
            t->count = (size_t)q->count;
            t->data = (float *)(src + q->off);
            names[n] = kind == 0 ? q->name : arena_printf(tr->a, "optimizer.%s.%s", kind == 1 ? "m" : "v", q->name);
            tp[n] = t;
            n++;
        }
    }
    const char *keys[8], *vals[8];
    int nm = 0;
    keys[nm] = "format";
    vals[nm++] = with_state ? "snnc checkpoint 1" : "snnc weights 1";
    keys[nm] = "network";
    vals[nm++] = tr->g->name;
    if (with_state) {
        keys[nm] = "epochs_done";
        vals[nm++] = arena_printf(tr->a, "%d", tr->epochs_done);
        keys[nm] = "optimizer_steps";
        vals[nm++] = arena_printf(tr->a, "%lld", tr->step);
        keys[nm] = "seed";
        vals[nm++] = arena_printf(tr->a, "%llu", tr->ts->seed);
        keys[nm] = "metrics";
        vals[nm++] = csv_text(tr);
    }
    if (snnrt_st_write_meta(path, n, names, tp, nm, keys, vals, err, sizeof err) != 0) {
        error_plain("%s", err);
        return -1;
    }
    return 0;
}

static int copy_tensor(Arena *tr_arena, const SnnrtStFile *f, const char *path, const char *name,
                       const IrParam *q, float *dst) {
    const SnnrtStEntry *e = snnrt_st_find(f, name);
    if (!e) {
        error_plain("%s: no tensor '%s': not a checkpoint of this network", path, name);
        return -1;
    }
    int same = e->t.ndim == q->shape.ndim && e->t.count == (size_t)q->count;
    for (int k = 0; same && k < q->shape.ndim; k++)
        same = e->t.shape[k] == q->shape.d[k];
    if (!same) {
        error_plain("%s: tensor '%s' has another shape than this network's", path, name);
        return -1;
    }
    char err[512];
    if (snnrt_tensor_check_finite(&e->t, arena_printf(tr_arena, "%s: tensor '%s'", path, name), err,
                                  sizeof err) != 0) {
        error_plain("%s", err);
        return -1;
    }
    memcpy(dst, e->t.data, (size_t)q->count * sizeof(float));
    return 0;
}

static int resume(Trainer *tr, const char *path) {
    char err[1024];
    SnnrtStFile f;
    if (snnrt_st_read(path, &f, err, sizeof err) != 0) {
        error_plain("%s", err);
        return -1;
    }
    int rc = -1;
    const char *fmt = snnrt_st_meta(&f, "format"), *net = snnrt_st_meta(&f, "network");
    const char *ep = snnrt_st_meta(&f, "epochs_done"), *st = snnrt_st_meta(&f, "optimizer_steps");
    const char *seed = snnrt_st_meta(&f, "seed"), *met = snnrt_st_meta(&f, "metrics");
    if (!fmt || strcmp(fmt, "snnc checkpoint 1") || !ep || !st || !seed) {
        error_plain("%s: not an snnc checkpoint (its metadata lacks format, epochs_done, optimizer_steps or seed)",
                    path);
        goto out;
    }
    if (!net || strcmp(net, tr->g->name)) {
        error_plain("%s: a checkpoint of network '%s', not '%s'", path, net ? net : "?", tr->g->name);
        goto out;
    }
    if (strtoull(seed, NULL, 10) != tr->ts->seed) {
        error_plain("%s: written with seed %s; resume with the same seed (--seed %s) or start anew", path, seed,
                    seed);
        goto out;
    }
    tr->epochs_done = atoi(ep);
    tr->step = strtoll(st, NULL, 10);
    if (tr->epochs_done < 0 || tr->step < 0) {
        error_plain("%s: bad progress in its metadata", path);
        goto out;
    }
    for (int i = 0; i < tr->g->params.len; i++) {
        const IrParam *q = &tr->g->params.items[i];
        if (copy_tensor(tr->a, &f, path, q->name, q, tr->ws + q->off) != 0)
            goto out;
        if (!q->learnable)
            continue;
        if (tr->opt.m &&
            copy_tensor(tr->a, &f, path, arena_printf(tr->a, "optimizer.m.%s", q->name), q, tr->opt.m + q->off) != 0)
            goto out;
        if (tr->opt.v && tr->opt.kind != SNNRT_SGD &&
            copy_tensor(tr->a, &f, path, arena_printf(tr->a, "optimizer.v.%s", q->name), q, tr->opt.v + q->off) != 0)
            goto out;
    }
    tr->opt.step = tr->step;
    if (met)
        csv_parse(tr, met);
    rc = 0;
out:
    snnrt_st_free(&f);
    return rc;
}

/* ---- the loop ---- */

static void progress(const Trainer *tr, int epoch, long done, long n, double loss, double t0, int tty) {
    if (!tty)
        return;
    int w = 30, fill = n ? (int)((double)w * (double)done / (double)n) : w;
    char bar[64];
    for (int i = 0; i < w; i++)
        bar[i] = i < fill ? '=' : i == fill ? '>' : ' ';
    bar[w] = 0;
    double dt = now() - t0;
    fprintf(stderr, "\repoch %d/%d [%s] %3d%% loss %.4f %.0f samples/s ", epoch + 1, tr->ts->epochs, bar,
            n ? (int)(100 * done / n) : 100, loss, dt > 0 ? (double)done / dt : 0.0);
    fflush(stderr);
}

/* The first learnable parameter (its index in g->params) with a value in v
   (a block at memplan offsets: the weights, or their gradients) that is NaN
   or infinite, or -1. */
static int first_nonfinite(const Trainer *tr, const float *v) {
    for (int i = 0; i < tr->g->params.len; i++) {
        const IrParam *q = &tr->g->params.items[i];
        if (q->learnable && snnrt_any_nonfinite(v + q->off, (size_t)q->count))
            return i;
    }
    return -1;
}

/* Several ranks: makes the gradients G, the buffers (batchnorm's running
   statistics), *loss and *correct of this step those of the global batch of
   b samples, of which this rank ran nb. Each rank's loss is the mean over
   its shard (runtime/loss.c), so its gradients and loss weigh nb / b in the
   sum; its buffers too, which makes their running means those of the
   global batch. The sum is in double, in rank order (dist.c), and every
   rank gets the same bits, so the ranks' weights stay equal without ever
   being sent. */
static void reduce_step(Trainer *tr, float *G, int nb, int b, double *loss, int *correct) {
    double w = (double)nb / (double)b, *v = tr->red;
    for (int i = 0; i < tr->g->params.len; i++) {
        const IrParam *q = &tr->g->params.items[i];
        const float *src = q->learnable ? G + q->off : tr->ws + q->off;
        for (int64_t k = 0; k < q->count; k++)
            *v++ = nb ? w * (double)src[k] : 0.0; /* an idle rank's G is stale */
    }
    v[0] = nb ? w * *loss : 0.0;
    v[1] = *correct;
    dist_sum(tr->red, tr->nred);
    v = tr->red;
    for (int i = 0; i < tr->g->params.len; i++) {
        const IrParam *q = &tr->g->params.items[i];
        float *dst = q->learnable ? G + q->off : tr->ws + q->off;
        for (int64_t k = 0; k < q->count; k++)
            dst[k] = (float)*v++;
    }
    *loss = v[0];
    *correct = (int)v[1];
}

/* ---- the loop on a device (LoadedModel.dev) ---- */

/* The b samples of the epoch's order from `at` on, read (and augmented)
   into tr->x and tr->labels, and sent to the device for its next step. */
static void stage(Trainer *tr, const Dataset *d, int epoch, long at, int b) {
    data_batch(d, tr->order + at, b, tr->x, tr->labels);
    data_augment(d, tr->ts->seed, epoch, tr->order + at, b, tr->x);
    tr->m.dev.stage(b, tr->x, tr->labels);
    tr->staged = at;
}

/* This rank's shard of the global batch at `done` (*lo: where it starts in
   the batch); its size. */
static int shard_of(const Trainer *tr, const Dataset *d, long done, long *lo) {
    long b = d->n - done < tr->gbatch ? d->n - done : tr->gbatch;
    *lo = shard_start(b, tr->rank, tr->nranks);
    return (int)(shard_start(b, tr->rank + 1, tr->nranks) - *lo);
}

/* The step of this rank's shard of the global batch at `done` on the
   device (not empty): queued, the next batch's shard read and sent while
   the device runs it, then its loss, its count of correct predictions
   (*ok) and, where clipping needs it on one process, the sum of its
   gradients' squares (*sumsq, added as snnrt_clip_grad_norm adds them);
   otherwise *sumsq is only NaN where a gradient is not finite. */
static double device_step(Trainer *tr, const Dataset *d, int epoch, long done, int *ok, double *sumsq) {
    const SnnrtLoss *L = &tr->loss;
    long lo;
    int nb = shard_of(tr, d, done, &lo);
    if (tr->staged != done + lo)
        stage(tr, d, epoch, done + lo, nb);
    tr->m.dev.begin(nb, lo, mix(tr->ts->seed ^ mix((unsigned long long)tr->step + 1)), (int)L->kind, L->lambda,
                    L->phi, L->correct_rate, L->incorrect_rate, tr->ts->clip > 0 && tr->nranks == 1);
    long next = done + tr->gbatch, next_lo;
    int next_nb = next < d->n ? shard_of(tr, d, next, &next_lo) : 0;
    if (next_nb > 0)
        stage(tr, d, epoch, next + next_lo, next_nb);
    double l = 0, s = 0;
    tr->m.dev.wait(&l, ok, tr->blocks);
    for (long j = 0; j < tr->nblocks; j++)
        s += tr->blocks[j];
    *sumsq = s;
    return l;
}

/* The optimizer's step on the device, after the gradients are scaled by c
   (clipping's coefficient; 1: none). */
static void device_update(Trainer *tr, double c, double lr) {
    const SnnrtOptim *o = &tr->opt;
    snnrt_optim_begin_step(&tr->opt);
    tr->m.dev.update(c < 1.0 || isnan(c), (float)c, (int)o->kind, o->step, lr, o->momentum, o->weight_decay,
                     o->nesterov, o->beta1, o->beta2, o->eps);
}

/* One epoch: global batches of tr->gbatch samples in the epoch's order;
   each rank runs its shard of every batch, and the sums of reduce_step make
   every rank take the step that one process would take on the whole
   batch. */
static int train_epoch(Trainer *tr, const Dataset *d, int epoch, Metrics *mt) {
    double lr = lr_at(tr->ts, epoch);
    shuffle(tr->order, d->n, tr->ts->seed, epoch, tr->ts->shuffle);
    double t0 = now(), last = 0, loss_sum = 0;
    int correct = 0, tty = tr->rank == 0 && isatty(2);
    long done = 0;
    float *G = tr->m.train_grads(tr->ws);
    tr->staged = -1;
    while (done < d->n) {
        int b = d->n - done < tr->gbatch ? (int)(d->n - done) : tr->gbatch;
        long lo;
        int nb = shard_of(tr, d, done, &lo);
        double l = 0, sumsq = 0;
        int ok = 0;
        if (tr->m.dev.open) {
            if (nb > 0)
                l = device_step(tr, d, epoch, done, &ok, &sumsq);
            if (nb > 0 && tr->nranks > 1) /* to be summed here */
                tr->m.dev.pull(tr->ws);
        } else if (nb > 0) {
            data_batch(d, tr->order + done + lo, nb, tr->x, tr->labels);
            data_augment(d, tr->ts->seed, epoch, tr->order + done + lo, nb, tr->x);
            forward_at(tr, nb, lo, 1, mix(tr->ts->seed ^ mix((unsigned long long)tr->step + 1)));
            l = snnrt_loss(&tr->loss, tr->T, nb, tr->K, tr->y, tr->labels, tr->dy, NULL);
            for (int r = 0; r < nb; r++) /* predicted as evaluation and deployment predict */
                ok += predict(tr->y, tr->T, nb, tr->K, r, tr->loss.readout) == tr->labels[r];
            /* before the loss is checked: with several ranks, the check is
               on the global batch's loss, which the gradients' sum brings */
            tr->m.train_backward(tr->ws, nb, tr->x, tr->dy, NULL);
        }
        if (tr->nranks > 1)
            reduce_step(tr, G, nb, b, &l, &ok);
        correct += ok;
        long batch_no = done / tr->gbatch + 1, batches = (d->n + tr->gbatch - 1) / tr->gbatch;
        /* the reference loss: the first epoch's mean, or this epoch's mean so far */
        int have_ref = tr->hist.len || done;
        double ref = tr->hist.len ? tr->hist.items[0].train_loss : done ? loss_sum / (double)done : 0;
        ref = ref > 1 ? ref : 1;
        if (!isfinite(l) || (have_ref && l > DIVERGE_FACTOR * ref)) {
            if (tty)
                fputc('\n', stderr);
            if (tr->rank > 0) /* every rank stops here; rank 0 says why */
                return -1;
            if (!isfinite(l))
                error_plain("training diverged at epoch %d, batch %ld of %ld (optimizer step %lld): the loss is %g; "
                            "lower the learning rate (now %g) or clip the gradients (clip N;)",
                            epoch + 1, batch_no, batches, tr->step + 1, l, lr);
            else
                error_plain("training diverged at epoch %d, batch %ld of %ld (optimizer step %lld): the loss is %g, "
                            "more than %g times %g (the larger of 1 and %s); lower the learning rate (now %g) or clip "
                            "the gradients (clip N;)",
                            epoch + 1, batch_no, batches, tr->step + 1, l, DIVERGE_FACTOR, ref,
                            tr->hist.len ? "the first epoch's mean loss" : "the mean loss of this epoch's batches so far",
                            lr);
            return -1;
        }
        int bad = -1;
        if (!tr->m.dev.open || tr->nranks > 1)
            bad = first_nonfinite(tr, G);
        else if (!isfinite(sumsq)) { /* which gradient: the device's, back */
            tr->m.dev.get(tr->ws, NULL, NULL, 0);
            bad = first_nonfinite(tr, G);
        }
        if (bad >= 0) {
            if (tty)
                fputc('\n', stderr);
            if (tr->rank > 0)
                return -1;
            error_plain("training diverged at epoch %d, batch %ld of %ld (optimizer step %lld): the gradient of '%s' "
                        "is not finite (the loss is %g); lower the learning rate (now %g) or clip the gradients "
                        "(clip N;)",
                        epoch + 1, batch_no, batches, tr->step + 1, tr->g->params.items[bad].name, l, lr);
            return -1;
        }
        if (tr->m.dev.open && tr->nranks == 1) /* clipped on the device, by the sums of squares it sent */
            device_update(tr, tr->ts->clip > 0 ? snnrt_clip_coef(sumsq, tr->ts->clip) : 1.0, lr);
        else {
            if (tr->ts->clip > 0)
                snnrt_clip_grad_norm(G, tr->roff, tr->rcnt, tr->nranges, tr->ts->clip);
            if (tr->m.dev.open) { /* the ranks' sums back to the device, for its optimizer */
                tr->m.dev.push(tr->ws);
                device_update(tr, 1.0, lr);
            } else {
                snnrt_optim_begin_step(&tr->opt);
                for (int k = 0; k < tr->nranges; k++)
                    snnrt_optim_update(&tr->opt, tr->roff[k], tr->ws + tr->roff[k], G + tr->roff[k], tr->rcnt[k],
                                       lr);
            }
        }
        tr->step++;
        if (tr->steplog && tr->rank == 0)
            buf_printf(tr->steplog, "%lld,%d,%.9g\n", tr->step, epoch + 1, l);
        loss_sum += l * b;
        done += b;
        if (now() - last > 0.25 || done == d->n) {
            progress(tr, epoch, done, d->n, loss_sum / (double)done, t0, tty);
            last = now();
        }
    }
    if (tty)
        fputc('\n', stderr);
    if (tr->m.dev.get) /* the epoch's checks and files read the host's */
        tr->m.dev.get(tr->ws, tr->opt.m, tr->opt.v, tr->nparam);
    mt->epoch = epoch + 1;
    mt->lr = lr;
    mt->train_loss = d->n ? loss_sum / (double)d->n : 0;
    mt->train_acc = d->n ? (double)correct / (double)d->n : 0;
    mt->seconds = now() - t0;
    mt->rate = mt->seconds > 0 ? (double)d->n / mt->seconds : 0;
    return 0;
}

/* batch: the largest this process runs (its shard of o->spec.batch) */
static int setup(Trainer *tr, Arena *a, Options *o, IrGraph *g, int batch) {
    memset(tr, 0, sizeof *tr);
    tr->a = a;
    tr->o = o;
    tr->ts = &o->spec;
    tr->g = g;
    tr->batch = batch;
    tr->gbatch = o->spec.batch;
    tr->rank = dist_rank();
    tr->nranks = dist_size();
    tr->T = g->timesteps;
    tr->K = (int)shape_count(&g->nodes.items[g->output].shape);
    if (tr->K < 2) {
        error_at(g->nodes.items[g->output].loc, "the output '%s' has %d value; classification needs one per class",
                 g->nodes.items[g->output].name, tr->K);
        return -1;
    }
    if (drv_load(g, o, &tr->m) != 0)
        return -1;
    if (tr->m.dev.select) /* before anything runs there */
        tr->m.dev.select(dist_local_rank());
    long in = (long)shape_count(&g->nodes.items[g->input].shape);
    tr->in_size = (long)(g->encoding == ENC_SEQUENCE ? tr->T : 1) * batch * in;
    tr->ws = floats_alloc((size_t)tr->m.train_ws_floats + 2);
    tr->x = malloc((size_t)tr->in_size * sizeof(float) + 1);
    tr->y = malloc((size_t)tr->T * (size_t)batch * (size_t)tr->K * sizeof(float) + 1);
    tr->dy = malloc((size_t)tr->T * (size_t)batch * (size_t)tr->K * sizeof(float) + 1);
    tr->labels = malloc((size_t)batch * sizeof(int) + 1);
    if (!tr->ws || !tr->x || !tr->y || !tr->dy || !tr->labels) {
        error_plain("out of memory (the training workspace is %.1f MiB)", (double)tr->m.train_ws_floats * 4 / 1048576);
        return -1;
    }
    tr->loss.kind = tr->ts->loss == LOSS_CE ? SNNRT_LOSS_CE : tr->ts->loss == LOSS_TET ? SNNRT_LOSS_TET
                                                                                       : SNNRT_LOSS_MSE_COUNT;
    tr->loss.readout = (int)g->readout;
    tr->loss.lambda = tr->ts->lambda;
    tr->loss.phi = tr->ts->phi;
    tr->loss.correct_rate = tr->ts->correct;
    tr->loss.incorrect_rate = tr->ts->incorrect;
    /* the learnable ranges of the parameter block */
    tr->roff = arena_alloc(a, sizeof(size_t) * (size_t)(g->params.len + 1));
    tr->rcnt = arena_alloc(a, sizeof(size_t) * (size_t)(g->params.len + 1));
    for (int i = 0; i < g->params.len; i++) {
        const IrParam *q = &g->params.items[i];
        if (q->off + q->count > (int64_t)tr->nparam)
            tr->nparam = (size_t)(q->off + q->count);
        tr->nred += (size_t)q->count;
        if (!q->learnable)
            continue;
        tr->roff[tr->nranges] = (size_t)q->off;
        tr->rcnt[tr->nranges++] = (size_t)q->count;
    }
    tr->nred += 2; /* the loss and the count of correct predictions */
    if (tr->m.dev.open) {
        size_t learned = 0;
        for (int k = 0; k < tr->nranges; k++)
            learned += tr->rcnt[k];
        tr->nblocks = (long)((learned + SNNRT_CLIP_BLOCK - 1) / SNNRT_CLIP_BLOCK);
        if (!(tr->blocks = malloc(sizeof(double) * (size_t)tr->nblocks + 1))) {
            error_plain("out of memory");
            return -1;
        }
    }
    if (tr->nranks > 1 && !(tr->red = malloc(sizeof(double) * tr->nred))) {
        error_plain("out of memory");
        return -1;
    }
    return 0;
}

/* Frees what setup made; nothing on a Trainer that setup never saw. */
static void teardown(Trainer *tr) {
    if (tr->o)
        drv_unload(tr->o, &tr->m);
    snnrt_optim_free(&tr->opt);
    free(tr->ws);
    free(tr->x);
    free(tr->y);
    free(tr->dy);
    free(tr->labels);
    free(tr->order);
    free(tr->red);
    free(tr->blocks);
}

/* Tells which stale temporary file was removed from the output folder. */
static void stale_removed(const char *name, long pid, void *dir) {
    printf("removed %s/%s, left by process %ld, which no longer runs\n", (const char *)dir, name, pid);
}

/* The part of snnc train before anything is compiled: the front and middle
   ends, the output folder (checked, and with --resume holding a
   checkpoint; rank 0's alone) and the data; NULL after reporting. */
static IrGraph *prepare(Arena *a, Options *o, const char **dir, Dataset *train, Dataset *test) {
    IrGraph *g = drv_front_end(a, o);
    if (!g)
        return NULL;
    *dir = o->outdir_set ? o->outdir : arena_printf(a, "%s.train", drv_lower(a, g->name));
    if (dist_rank() == 0) {
        const char *ckpt = arena_printf(a, "%s/checkpoint.safetensors", *dir);
        if (o->resume && access(ckpt, F_OK) != 0) {
            error_plain("%s: no checkpoint to resume from: %s", ckpt, strerror(errno));
            return NULL;
        }
        if (drv_check_out_dir(a, *dir) != 0 || drv_check_outputs(a, o) != 0 ||
            (o->plot && drv_check_out_dir(a, o->plot) != 0))
            return NULL;
    }
    TrainSpec *ts = &o->spec;
    /* the generated code runs at most this rank's shard of a batch */
    o->batch = (ts->batch + dist_size() - 1) / dist_size();
    o->train = 1;
    if (!drv_middle_end(a, o, g))
        return NULL;
    if (data_load(train, ts, g, 1, o->train_limit) != 0)
        return NULL;
    if (data_load(test, ts, g, 0, o->test_limit) != 0) {
        data_free(train);
        memset(train, 0, sizeof *train);
        return NULL;
    }
    return g;
}

/* The parameters and the optimizer's state: initialized as PyTorch does,
   then --weights (fine-tuning), then with --resume the checkpoint's, read
   by rank 0 and sent to the others (which so need no shared file system);
   -1 after reporting on the ranks that failed. */
static int start_state(Trainer *tr, const char *ckpt) {
    Options *o = tr->o;
    const TrainSpec *ts = tr->ts;
    char err[512];
    o->init = 1;
    o->seed = ts->seed;
    int ok = drv_params(tr->g, o, tr->ws) == 0;
    tr->opt.kind = ts->opt == OPT_SGD ? SNNRT_SGD : ts->opt == OPT_ADAM ? SNNRT_ADAM : SNNRT_ADAMW;
    tr->opt.lr = ts->lr;
    tr->opt.momentum = ts->momentum;
    tr->opt.weight_decay = ts->weight_decay;
    tr->opt.beta1 = ts->beta1;
    tr->opt.beta2 = ts->beta2;
    tr->opt.eps = ts->eps;
    tr->opt.nesterov = ts->nesterov;
    if (ok && snnrt_optim_init(&tr->opt, tr->nparam, err, sizeof err) != 0) {
        error_plain("%s", err);
        ok = 0;
    }
    if (!dist_all(ok))
        return -1;
    if (o->resume && !dist_all(tr->rank > 0 || resume(tr, ckpt) == 0))
        return -1;
    if (tr->nranks > 1) {
        long long progress[2] = {tr->epochs_done, tr->step};
        dist_bcast(progress, sizeof progress);
        tr->epochs_done = (int)progress[0];
        tr->opt.step = tr->step = progress[1];
        dist_bcast(tr->ws, tr->nparam * sizeof(float));
        if (tr->opt.m)
            dist_bcast(tr->opt.m, tr->nparam * sizeof(float));
        if (tr->opt.v)
            dist_bcast(tr->opt.v, tr->nparam * sizeof(float));
    }
    return 0;
}

/* The files of an epoch, rank 0's alone: the checkpoint first, so that
   metrics.csv never runs ahead of it. */
static int write_epoch(Trainer *tr, const char *ckpt, const PlotTrain *pt) {
    const char *csv = csv_text(tr);
    if (save_params(tr, ckpt, 1) != 0 ||
        drv_write(arena_printf(tr->a, "%s/metrics.csv", tr->dir), csv, strlen(csv)) != 0 ||
        write_curves(tr, pt) != 0)
        return -1;
    return 0;
}

/* The files at the end, rank 0's alone: the weights, --step-log, --plot. */
static int write_end(Trainer *tr, const Buf *steplog, PlotTrain *pt) {
    Options *o = tr->o;
    if (save_params(tr, arena_printf(tr->a, "%s/weights.safetensors", tr->dir), 0) != 0)
        return -1;
    if (o->step_log && drv_write(o->step_log, steplog->data ? steplog->data : "", steplog->len) != 0)
        return -1;
    if (o->plot) { /* the trained network on the plots' samples */
        plot_train_epoch(pt, tr->g, tr->ws, -1);
        if (plot_train_write(tr->a, pt, o->plot) != 0)
            return -1;
    }
    if (tr->hist.len)
        printf("test accuracy %.2f%%; weights in %s/weights.safetensors\n",
               100 * tr->hist.items[tr->hist.len - 1].test_acc, tr->dir);
    return 0;
}

/* snnc train, on each rank of a data-parallel run (dist.h): every rank
   trains the same weights on its shard of each batch; rank 0 alone checks
   the output folder, writes the files and prints. Where one rank can fail
   alone, the ranks agree (dist_all) before they go on, so that none waits
   forever for one that has stopped. */
static int train_ranks(Arena *a, Options *o) {
    int rank = dist_rank();
    Dataset train, test;
    memset(&train, 0, sizeof train);
    memset(&test, 0, sizeof test);
    const char *dir = NULL;
    /* rank 0 first: an error in the model or the command line is then
       reported once, not by every rank */
    IrGraph *g = rank == 0 ? prepare(a, o, &dir, &train, &test) : NULL;
    if (!dist_all(rank > 0 || g))
        return 1;
    if (rank > 0) {
        g = prepare(a, o, &dir, &train, &test);
        o->keep = NULL; /* --keep-build: rank 0's build; the others build in temporary folders */
    }
    TrainSpec *ts = &o->spec;
    const char *ckpt = arena_printf(a, "%s/checkpoint.safetensors", dir);
    Trainer tr;
    memset(&tr, 0, sizeof tr);
    PlotTrain pt;
    memset(&pt, 0, sizeof pt);
    Buf steplog = {0};
    int rc = 1;
    int ok = g && setup(&tr, a, o, g, o->batch) == 0 &&
             !(rank == 0 && o->plot && plot_train_open(a, &pt, o, &test, ts->epochs) != 0);
    tr.dir = dir;
    if (ok && rank == 0) {
        ok = drv_ensure_dir(tr.dir) == 0;
        if (ok)
            snnrt_remove_stale_temps(tr.dir, stale_removed, (void *)tr.dir);
    }
    if (ok) {
        tr.order = malloc(sizeof(long) * (size_t)(train.n > test.n ? train.n : test.n) +
                          sizeof(long) * (size_t)ts->batch + 1);
        if (!tr.order)
            error_plain("out of memory");
        ok = tr.order != NULL;
    }
    if (!dist_all(ok) || start_state(&tr, ckpt) != 0)
        goto out;
    if (tr.m.dev.open) /* the state to the device, for the whole run */
        tr.m.dev.open(tr.ws, tr.opt.m, tr.opt.v, tr.nparam, SNNRT_CLIP_BLOCK);
    if (o->step_log && rank == 0) {
        buf_puts(&steplog, "step,epoch,loss\n");
        tr.steplog = &steplog;
    }
    size_t learned = 0;
    for (int k = 0; k < tr.nranges; k++)
        learned += tr.rcnt[k];
    if (rank == 0) {
        if (o->resume)
            printf("resumed from %s after epoch %d\n", ckpt, tr.epochs_done);
        printf("training %s: %ld samples (test %ld), %d epochs, batch %d, T = %d, %zu learnable parameters in "
               "%d tensors\n",
               g->name, train.n, test.n, ts->epochs, ts->batch, tr.T, learned, tr.nranges);
        if (o->precision != PREC_FP32)
            printf("--precision %s: the matrix products read their operands in %s%s; the rest is fp32\n",
                   precision_names[o->precision], precision_names[o->precision],
                   g->store != STORE_FP32
                       ? ", and the neuron states kept for the backward and the outputs of dense, convolution and "
                         "batchnorm layers that neuron layers read are stored in it"
                       : "");
        if (ts->shift || ts->flip)
            printf("augmenting the training images: moved by up to %d pixel%s across and down%s\n", ts->shift,
                   ts->shift == 1 ? "" : "s", ts->flip ? ", mirrored left to right half of the time" : "");
        if (tr.nranks > 1 && ts->batch % tr.nranks)
            printf("data-parallel on %d processes: each runs a shard of %d or %d samples of every batch\n",
                   tr.nranks, ts->batch / tr.nranks, tr.batch);
        else if (tr.nranks > 1)
            printf("data-parallel on %d processes: each runs a shard of %d samples of every batch\n", tr.nranks,
                   tr.batch);
        fflush(stdout);
    }
    for (int e = tr.epochs_done; e < ts->epochs; e++) {
        Metrics mt;
        Eval ev;
        memset(&mt, 0, sizeof mt);
        if (train_epoch(&tr, &train, e, &mt) != 0)
            goto diverged;
        evaluate(&tr, &test, &ev);
        /* the same on every rank: the weights are */
        int bad = first_nonfinite(&tr, tr.ws);
        if (bad >= 0 || !isfinite(ev.loss)) {
            if (rank > 0)
                goto diverged;
            if (bad >= 0)
                error_plain("training diverged in epoch %d: parameter '%s' is no longer finite; lower the learning "
                            "rate (now %g) or clip the gradients (clip N;)",
                            e + 1, g->params.items[bad].name, mt.lr);
            else
                error_plain("training diverged in epoch %d: the test loss is %g; lower the learning rate (now %g) "
                            "or clip the gradients (clip N;)",
                            e + 1, ev.loss, mt.lr);
            goto diverged;
        }
        mt.test_loss = ev.loss;
        mt.test_acc = ev.acc;
        mt.spikes = ev.spikes;
        if (o->plot && rank == 0)
            plot_train_epoch(&pt, g, tr.ws, e);
        vec_push(a, &tr.hist, mt);
        tr.epochs_done = e + 1;
        if (rank == 0) {
            printf("epoch %d/%d: lr %.3g, train loss %.4f, accuracy %.2f%%; test loss %.4f, accuracy %.2f%%; "
                   "spike rate %.3f; %.1f s, %.0f samples/s\n",
                   e + 1, ts->epochs, mt.lr, mt.train_loss, 100 * mt.train_acc, mt.test_loss, 100 * mt.test_acc,
                   mt.spikes, mt.seconds, mt.rate);
            fflush(stdout);
        }
        if (!dist_all(rank > 0 || write_epoch(&tr, ckpt, o->plot ? &pt : NULL) == 0))
            goto out;
    }
    if (dist_all(rank > 0 || write_end(&tr, &steplog, &pt) == 0))
        rc = 0;
    goto out;
diverged:
    /* nothing of the diverged state is written */
    if (rank > 0)
        goto out;
    if (tr.epochs_done)
        note_at(diag_last_error(), "%s keeps the state after epoch %d, the last good one", ckpt, tr.epochs_done);
    else
        note_at(diag_last_error(), "no checkpoint was written: the first epoch did not finish");
out:
    teardown(&tr);
    plot_train_close(&pt);
    buf_free(&steplog);
    data_free(&train);
    data_free(&test);
    return rc;
}

int cmd_train(Arena *a, Options *o) {
    if (dist_init() != 0)
        return 1;
    int rc = train_ranks(a, o);
    dist_finish();
    return rc;
}

/* snnc run --eval: the accuracy of given weights on the test split. */
int cmd_eval(Arena *a, Options *o) {
    IrGraph *g = drv_front_end(a, o);
    if (!g)
        return 1;
    int batch = o->spec.batch;
    o->batch = batch;
    o->train = 1;
    if (!drv_middle_end(a, o, g))
        return 1;
    Dataset test;
    Trainer tr;
    int rc = 1;
    if (data_load(&test, &o->spec, g, 0, o->test_limit) != 0)
        return 1;
    if (setup(&tr, a, o, g, batch) != 0)
        goto out;
    tr.order = malloc(sizeof(long) * (size_t)(test.n + batch) + 1);
    if (!tr.order || drv_params(g, o, tr.ws) != 0)
        goto out;
    if (tr.m.dev.open) /* the parameters to the device, once */
        tr.m.dev.open(tr.ws, NULL, NULL, tr.nparam, SNNRT_CLIP_BLOCK);
    Eval ev;
    evaluate(&tr, &test, &ev);
    printf("%s on %ld test samples: accuracy %.2f%%, loss %.4f, spike rate %.3f\n", g->name, test.n,
           100 * ev.acc, ev.loss, ev.spikes);
    rc = 0;
out:
    teardown(&tr);
    data_free(&test);
    return rc;
}
