/*
 * data.c: datasets for snnc train and snnc run --data: the train and test
 * splits of an IDX folder (MNIST, Fashion-MNIST; bytes scaled to [0, 1]) or
 * of .npy files, checked against the network's input and output, and cut
 * into batches laid out as the generated code reads them.
 *
 * A sample of a direct-encoded network is its input size; of a sequence
 * network, T times that ([N, T, ...] in the .npy file, transposed to
 * [T, B, ...] per batch). Labels are integers in [0, K) for an output of K
 * values.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"
#include "driver.h"

void data_free(Dataset *d) {
    snnrt_idx_free(&d->idx_x);
    snnrt_idx_free(&d->idx_y);
    snnrt_tensor_free(&d->npy_x);
    snnrt_events_free(&d->ev);
    free(d->labels);
    free(d->aug_tmp);
    memset(d, 0, sizeof *d);
}

static int labels_from(Dataset *d, const char *path, const float *v, const unsigned char *u, size_t n,
                       long classes) {
    d->labels = malloc(n * sizeof(int) + 1);
    if (!d->labels) {
        error_plain("%s: out of memory", path);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        double x = v ? v[i] : u[i];
        if (!(x >= 0 && x < (double)classes && x == floor(x))) {
            error_plain("%s: label %zu is %g; the network's output has %ld classes, so labels must be "
                        "integers from 0 to %ld",
                        path, i, x, classes, classes - 1);
            return -1;
        }
        d->labels[i] = (int)x;
    }
    return 0;
}

/* limit > 0: only the first `limit` samples are read (--train-limit,
   --test-limit), though both files are checked whole for their sizes. */
static int load_idx(Dataset *d, const TrainSpec *ts, int train, long want, long classes, long limit) {
    char err[1024], xi[4096], yi[4096];
    const char *dir = ts->dir ? ts->dir : SNNRT_FASHION_MNIST_DIR;
    if (snnrt_idx_dataset_files(dir, train, xi, yi, sizeof xi) != 0) {
        /* the runtime puts its message where the image path would go */
        error_plain("%s%s", xi,
                    ts->dir ? "" : " (install Debian's dataset-fashion-mnist, or give data idx(\"DIR\") or --data DIR)");
        return -1;
    }
    if (drv_check_input_path(xi) != 0 || drv_check_input_path(yi) != 0)
        return -1;
    long long rows = limit > 0 ? limit : -1;
    if (snnrt_idx_read_first(xi, rows, &d->idx_x, err, sizeof err) != 0 ||
        snnrt_idx_read_first(yi, rows, &d->idx_y, err, sizeof err) != 0) {
        error_plain("%s", err);
        return -1;
    }
    if (d->idx_x.ndim < 2 || d->idx_y.ndim != 1 || d->idx_x.file_rows != d->idx_y.file_rows) {
        error_plain("%s and %s: expected images [N, ...] and labels [N], got %d and %d dimensions for %lld and "
                    "%lld samples",
                    xi, yi, d->idx_x.ndim, d->idx_y.ndim, d->idx_x.file_rows, d->idx_y.file_rows);
        return -1;
    }
    d->n = (long)d->idx_x.shape[0];
    d->sample = (long)(d->idx_x.count / (size_t)(d->n ? d->n : 1));
    if (d->sample != want) {
        error_plain("%s: images of %ld values; the network's input takes %ld", xi, d->sample, want);
        return -1;
    }
    d->mean = ts->mean;
    d->std = ts->std;
    /* in double, one rounding to float: (byte / 255 - mean) / std */
    for (int v = 0; v < 256; v++)
        d->byte_value[v] = (float)((v / 255.0 - d->mean) / d->std);
    return labels_from(d, yi, NULL, d->idx_y.data, (size_t)d->n, classes);
}

/* limit > 0: as load_idx. */
static int load_npy(Dataset *d, const char *xp, const char *yp, long want, int steps, long classes,
                    const TrainSpec *ts, long limit) {
    char err[1024];
    SnnrtTensor y;
    memset(&y, 0, sizeof y);
    if (drv_check_input_path(xp) != 0 || drv_check_input_path(yp) != 0)
        return -1;
    long long rows = limit > 0 ? limit : -1, xrows = 0, yrows = 0;
    if (snnrt_npy_read_first(xp, rows, &d->npy_x, &xrows, err, sizeof err) != 0 ||
        snnrt_npy_read_first(yp, rows, &y, &yrows, err, sizeof err) != 0 ||
        snnrt_tensor_check_finite(&d->npy_x, xp, err, sizeof err) != 0) {
        error_plain("%s", err);
        snnrt_tensor_free(&y);
        return -1;
    }
    int rc = -1;
    if (d->npy_x.ndim < 1 || y.ndim != 1 || xrows != yrows) {
        error_plain("%s and %s: expected inputs [N, ...] and labels [N], got %d and %d dimensions for %lld and "
                    "%lld samples",
                    xp, yp, d->npy_x.ndim, y.ndim, xrows, yrows);
        goto out;
    }
    d->n = (long)y.shape[0];
    d->sample = d->n ? (long)(d->npy_x.count / (size_t)d->n) : 0;
    if (d->sample != want * steps || (steps > 1 && (d->npy_x.ndim < 2 || d->npy_x.shape[1] != steps))) {
        error_plain("%s: samples of %ld values; the network takes %s%ld values%s", xp, d->sample,
                    steps > 1 ? "[T, ...] = " : "", want * steps,
                    steps > 1 ? " per sample (sequence encoding: [N, T, ...])" : "");
        goto out;
    }
    d->mean = ts->mean;
    d->std = ts->std;
    rc = labels_from(d, yp, y.data, NULL, (size_t)d->n, classes);
out:
    snnrt_tensor_free(&y);
    return rc;
}

void data_event_spec(const IrGraph *g, SnnrtEventSpec *spec) {
    const Shape *s = &g->nodes.items[g->input].shape;
    spec->channels = (int)s->d[0];
    spec->height = s->d[1];
    spec->width = s->d[2];
    spec->steps = g->timesteps;
    spec->window = g->events.window;
    spec->binary = g->events.binary;
}

/* An event file and its labels; limit as load_idx. */
static int load_events(Dataset *d, const char *xp, const char *yp, const IrGraph *g, long classes,
                       const TrainSpec *ts, long limit) {
    char err[1024];
    SnnrtTensor y;
    memset(&y, 0, sizeof y);
    if (drv_check_input_path(xp) != 0 || drv_check_input_path(yp) != 0)
        return -1;
    data_event_spec(g, &d->evspec);
    long long rows = limit > 0 ? limit : -1, yrows = 0;
    if (snnrt_events_read_first(xp, &d->evspec, rows, &d->ev, err, sizeof err) != 0 ||
        snnrt_npy_read_first(yp, rows, &y, &yrows, err, sizeof err) != 0) {
        error_plain("%s", err);
        snnrt_tensor_free(&y);
        return -1;
    }
    int rc = -1;
    if (y.ndim != 1 || yrows != d->ev.file_samples) {
        error_plain("%s and %s: %lld samples of events (the offsets file gives them) but labels of %d "
                    "dimension%s, %lld values; labels are [N]",
                    xp, yp, d->ev.file_samples, y.ndim, y.ndim == 1 ? "" : "s", y.ndim ? yrows : 1);
        goto out;
    }
    d->n = (long)d->ev.samples;
    d->sample = (long)shape_count(&g->nodes.items[g->input].shape) * d->steps;
    d->mean = ts->mean;
    d->std = ts->std;
    rc = labels_from(d, yp, y.data, NULL, (size_t)d->n, classes);
out:
    snnrt_tensor_free(&y);
    return rc;
}

/* Whether g can take the train block's augmentation: images [C, H, W] or
   [H, W], not sequences or events; checked before any data is read. */
static int augment_check(const TrainSpec *ts, const IrGraph *g) {
    const Shape *s = &g->nodes.items[g->input].shape;
    if (!ts->shift && !ts->flip)
        return 0;
    if (g->events.on || g->encoding == ENC_SEQUENCE || (s->ndim != 2 && s->ndim != 3)) {
        const char *why = g->events.on ? "reads event lists"
                          : g->encoding == ENC_SEQUENCE ? "reads sequences"
                                                        : "does not take images";
        error_at(ts->augment_loc, "augment images(...) moves and mirrors images [C, H, W] or [H, W]; network '%s' %s "
                                  "(its input is %s)",
                 g->name, why, shape_str(g->arena, s));
        return -1;
    }
    return 0;
}

/* The train split's augmentation, after augment_check. */
static int augment_setup(Dataset *d, const TrainSpec *ts, const IrGraph *g) {
    const Shape *s = &g->nodes.items[g->input].shape;
    if (!ts->shift && !ts->flip)
        return 0;
    d->aug_h = s->d[s->ndim - 2];
    d->aug_w = s->d[s->ndim - 1];
    d->aug_c = s->ndim == 3 ? s->d[0] : 1;
    d->aug_shift = ts->shift;
    d->aug_flip = ts->flip;
    /* a pixel of value 0 normalized as data_batch normalizes */
    d->aug_fill = (float)((0.0 - ts->mean) / ts->std);
    d->aug_tmp = malloc((size_t)d->sample * sizeof(float) + 1);
    if (!d->aug_tmp) {
        error_plain("out of memory");
        return -1;
    }
    return 0;
}

int data_load(Dataset *d, const TrainSpec *ts, const IrGraph *g, int train, long limit) {
    memset(d, 0, sizeof *d);
    const IrNode *in = &g->nodes.items[g->input], *out = &g->nodes.items[g->output];
    long want = (long)shape_count(&in->shape);
    long classes = (long)shape_count(&out->shape);
    d->steps = g->encoding == ENC_SEQUENCE ? g->timesteps : 1;
    if (train && augment_check(ts, g) != 0)
        return -1;
    int rc;
    if (ts->data == DATA_IDX) {
        if (g->events.on) {
            error_at(g->loc, "network '%s' reads event lists ('encode events'); give them as .npy files: "
                             "data npy(train_x, train_y, test_x, test_y)", g->name);
            return -1;
        }
        if (d->steps > 1) {
            error_at(g->loc, "network '%s' reads a sequence ([T, B, ...]); IDX images fit a network with "
                             "'encode direct', 'rate' or 'latency'",
                     g->name);
            return -1;
        }
        rc = load_idx(d, ts, train, want, classes, limit);
    } else if (g->events.on)
        rc = load_events(d, ts->npy[train ? 0 : 2], ts->npy[train ? 1 : 3], g, classes, ts, limit);
    else
        rc = load_npy(d, ts->npy[train ? 0 : 2], ts->npy[train ? 1 : 3], want, d->steps, classes, ts, limit);
    if (rc != 0) {
        data_free(d);
        return -1;
    }
    d->sample /= d->steps;
    if (limit > 0 && limit < d->n)
        d->n = limit;
    if (train && augment_setup(d, ts, g) != 0) {
        data_free(d);
        return -1;
    }
    return 0;
}

void data_batch(const Dataset *d, const long *idx, int b, float *x, int *labels) {
    long s = d->sample;
#if defined(__GNUC__) || defined(__clang__)
    /* the samples of a shuffled batch lie anywhere in the data set: ask for
       them all first, so that their fetches from memory overlap instead of
       each waiting in turn in the loop below */
    if (d->idx_x.data)
        for (int r = 0; r < b; r++) {
            const unsigned char *p = d->idx_x.data + (size_t)idx[r] * (size_t)d->steps * (size_t)s;
            for (long j = 0; j < d->steps * s; j += 64)
                __builtin_prefetch(p + j, 0, 1);
            __builtin_prefetch(&d->labels[idx[r]], 0, 1);
        }
#endif
    for (int r = 0; r < b; r++) {
        long i = idx[r];
        labels[r] = d->labels[i];
        if (d->ev.offsets) {
            float *dst = x + (size_t)r * (size_t)s;
            snnrt_events_bin(&d->ev, &d->evspec, i, dst, (size_t)b * (size_t)s);
            for (int t = 0; t < d->steps && !(d->mean == 0 && d->std == 1); t++)
                for (long j = 0; j < s; j++)
                    dst[(size_t)t * (size_t)b * (size_t)s + (size_t)j] =
                        (float)((dst[(size_t)t * (size_t)b * (size_t)s + (size_t)j] - d->mean) / d->std);
            continue;
        }
        for (int t = 0; t < d->steps; t++) {
            float *dst = x + ((size_t)t * (size_t)b + (size_t)r) * (size_t)s;
            size_t src = ((size_t)i * (size_t)d->steps + (size_t)t) * (size_t)s;
            if (d->idx_x.data)
                for (long j = 0; j < s; j++)
                    dst[j] = d->byte_value[d->idx_x.data[src + (size_t)j]];
            else if (d->mean == 0 && d->std == 1)
                memcpy(dst, d->npy_x.data + src, (size_t)s * sizeof(float));
            else
                for (long j = 0; j < s; j++)
                    dst[j] = (float)((d->npy_x.data[src + (size_t)j] - d->mean) / d->std);
        }
    }
}

/* splitmix64's finalizer */
static unsigned long long mix64(unsigned long long z) {
    z += 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* Sample i of epoch e draws one 64-bit z from (seed, e, i) alone, so that
   neither the batch, the thread count nor the ranks change what it gets:
   it moves dx = z mod (2s+1) - s pixels right, dy = (z >> 24) mod (2s+1)
   - s down, and is mirrored first when the top bit of z is set
   (docs/training.md, "Augmentation"). */
void data_augment(const Dataset *d, unsigned long long seed, int epoch, const long *idx, int b, float *x) {
    if (!d->aug_shift && !d->aug_flip)
        return;
    long H = d->aug_h, W = d->aug_w, plane = H * W;
    unsigned long long span = 2 * (unsigned long long)d->aug_shift + 1;
    for (int r = 0; r < b; r++) {
        unsigned long long z = mix64(mix64(mix64(seed ^ 0x6175676D656E74ULL) + (unsigned long long)epoch) +
                                     (unsigned long long)idx[r]);
        long dx = (long)(z % span) - d->aug_shift, dy = (long)((z >> 24) % span) - d->aug_shift;
        int flip = d->aug_flip && (z >> 63);
        float *img = x + (size_t)r * (size_t)d->sample, *src = d->aug_tmp;
        memcpy(src, img, (size_t)d->sample * sizeof(float));
        for (long c = 0; c < d->aug_c; c++)
            for (long y = 0; y < H; y++) {
                float *out = img + c * plane + y * W;
                long sy = y - dy;
                for (long xo = 0; xo < W; xo++) {
                    long sx = xo - dx; /* in the mirrored image */
                    int in = sy >= 0 && sy < H && sx >= 0 && sx < W;
                    out[xo] = in ? src[c * plane + sy * W + (flip ? W - 1 - sx : sx)] : d->aug_fill;
                }
            }
    }
}
