/*
 * train_helper.c: a command-line face of the runtime's training support,
 * for torch_reference.py, which compares what it prints and writes with
 * PyTorch. Arrays travel as .npy (read as float32); numbers given on the
 * command line are parsed with strtod, so a Python repr("%.17g") is exact.
 *
 *   train_helper loss KIND RO LAMBDA PHI CR IR Y.npy LABELS.npy DY.npy
 *       KIND 0..2 (CE, TET, MSE_COUNT), RO 0..5 (a readout); Y is
 *       [T, B, K], LABELS [B]; prints "loss L ncorrect N", writes dL/dy
 *   train_helper optim KIND LR MOM WD B1 B2 EPS NESTEROV SPLIT P.npy G.npy
 *                      LRS.npy OUT.npy
 *       KIND 0..2 (SGD, ADAM, ADAMW); P [n]; G [steps, n]; LRS [steps],
 *       the learning rate of each step; each step updates the ranges
 *       [0, SPLIT) and [SPLIT, n) separately; writes the final parameters
 *   train_helper clip MAXNORM SPLIT G.npy OUT.npy
 *       clips the ranges [0, SPLIT) and [SPLIT, n) of G together; prints
 *       "norm X", writes the clipped gradients
 *   train_helper cosine LR0 EPOCHS ETA_MIN / step LR0 EPOCHS SIZE GAMMA
 *       prints the learning rate of epochs 0..EPOCHS, one a line
 *   train_helper dataset TRAIN      the Fashion-MNIST files of a split in
 *       SNNRT_FASHION_MNIST_DIR: prints "images PATH" and "labels PATH", or
 *       the message and exits 3 when they are missing
 *   train_helper idx PATH           reads an IDX file; prints "shape D..",
 *       "crc32 X" (zlib's CRC-32 of the data) and "hist" with the count of
 *       each byte value 0..255
 *
 * Exit status 0 on success; 1 with the library's message on stderr.
 */
#include "snnrt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static double num(const char *s)
{
    return strtod(s, NULL);
}

static int read_npy(const char *path, SnnrtTensor *t, int ndim, char *err,
                    size_t n)
{
    if (snnrt_npy_read(path, t, err, n))
        return -1;
    if (t->ndim != ndim) {
        snprintf(err, n, "%s: expected %d dimensions, not %d", path, ndim,
                 t->ndim);
        snnrt_tensor_free(t);
        return -1;
    }
    return 0;
}

static int cmd_loss(char **argv, char *err, size_t n)
{
    SnnrtLoss l;
    SnnrtTensor y, lab, dy;
    int *labels = NULL, nc = 0, b, rc = -1;
    double loss;
    memset(&l, 0, sizeof l);
    l.kind = (SnnrtLossKind)atoi(argv[2]);
    l.readout = atoi(argv[3]);
    l.lambda = num(argv[4]);
    l.phi = num(argv[5]);
    l.correct_rate = num(argv[6]);
    l.incorrect_rate = num(argv[7]);
    if (read_npy(argv[8], &y, 3, err, n))
        return -1;
    if (read_npy(argv[9], &lab, 1, err, n)) {
        snnrt_tensor_free(&y);
        return -1;
    }
    if (lab.shape[0] != y.shape[1] ||
        snnrt_tensor_alloc(&dy, 3, y.shape, err, n))
        goto done;
    labels = (int *)malloc((size_t)lab.count * sizeof(int) + 1);
    for (b = 0; labels && b < (int)lab.count; b++)
        labels[b] = (int)lab.data[b];
    loss = snnrt_loss(&l, (int)y.shape[0], (int)y.shape[1], (int)y.shape[2],
                      y.data, labels, dy.data, &nc);
    printf("loss %.17g ncorrect %d\n", loss, nc);
    rc = snnrt_npy_write(argv[10], &dy, err, n);
    snnrt_tensor_free(&dy);
done:
    free(labels);
    snnrt_tensor_free(&y);
    snnrt_tensor_free(&lab);
    return rc;
}

static int cmd_optim(char **argv, char *err, size_t n)
{
    SnnrtOptim o;
    SnnrtTensor p, g, lrs;
    size_t split = (size_t)atol(argv[10]), np;
    long long s;
    int rc = -1;
    memset(&o, 0, sizeof o);
    o.kind = (SnnrtOptKind)atoi(argv[2]);
    o.lr = num(argv[3]);
    o.momentum = num(argv[4]);
    o.weight_decay = num(argv[5]);
    o.beta1 = num(argv[6]);
    o.beta2 = num(argv[7]);
    o.eps = num(argv[8]);
    o.nesterov = atoi(argv[9]);
    if (read_npy(argv[11], &p, 1, err, n))
        return -1;
    memset(&g, 0, sizeof g);
    memset(&lrs, 0, sizeof lrs);
    if (read_npy(argv[12], &g, 2, err, n) || read_npy(argv[13], &lrs, 1, err, n))
        goto done;
    np = p.count;
    if ((size_t)g.shape[1] != np || g.shape[0] != lrs.shape[0] || split > np) {
        snprintf(err, n, "optim: shapes disagree");
        goto done;
    }
    if (snnrt_optim_init(&o, np, err, n))
        goto done;
    for (s = 0; s < g.shape[0]; s++) {
        const float *gs = g.data + (size_t)s * np;
        snnrt_optim_begin_step(&o);
        snnrt_optim_update(&o, 0, p.data, gs, split, lrs.data[s]);
        snnrt_optim_update(&o, split, p.data + split, gs + split, np - split,
                           lrs.data[s]);
    }
    snnrt_optim_free(&o);
    rc = snnrt_npy_write(argv[14], &p, err, n);
done:
    snnrt_tensor_free(&p);
    snnrt_tensor_free(&g);
    snnrt_tensor_free(&lrs);
    return rc;
}

static int cmd_clip(char **argv, char *err, size_t n)
{
    SnnrtTensor g;
    size_t off[2], count[2];
    double norm;
    int rc;
    if (read_npy(argv[4], &g, 1, err, n))
        return -1;
    off[0] = 0;
    count[0] = (size_t)atol(argv[3]);
    if (count[0] > g.count)
        count[0] = g.count;
    off[1] = count[0];
    count[1] = g.count - count[0];
    norm = snnrt_clip_grad_norm(g.data, off, count, 2, num(argv[2]));
    printf("norm %.17g\n", norm);
    rc = snnrt_npy_write(argv[5], &g, err, n);
    snnrt_tensor_free(&g);
    return rc;
}

static int cmd_dataset(const char *train)
{
    char images[1024], labels[1024];
    if (snnrt_idx_dataset_files(SNNRT_FASHION_MNIST_DIR, atoi(train), images,
                                labels, sizeof images)) {
        printf("%s\n", images);
        return 3;
    }
    printf("images %s\nlabels %s\n", images, labels);
    return 0;
}

static int cmd_idx(const char *path, char *err, size_t n)
{
    SnnrtIdx x;
    unsigned long hist[256] = {0}, crc;
    size_t i;
    int d;
    if (snnrt_idx_read(path, &x, err, n))
        return -1;
    printf("shape");
    for (d = 0; d < x.ndim; d++)
        printf(" %lld", x.shape[d]);
    crc = crc32(0L, Z_NULL, 0);
    for (i = 0; i < x.count; i += 1u << 30) {
        size_t k = x.count - i < (1u << 30) ? x.count - i : (1u << 30);
        crc = crc32(crc, x.data + i, (uInt)k);
    }
    for (i = 0; i < x.count; i++)
        hist[x.data[i]]++;
    printf("\ncrc32 %lu\nhist", crc);
    for (d = 0; d < 256; d++)
        printf(" %lu", hist[d]);
    printf("\n");
    snnrt_idx_free(&x);
    return 0;
}

int main(int argc, char **argv)
{
    char err[1024] = "";
    int rc = -1, e;
    if (argc == 11 && !strcmp(argv[1], "loss"))
        rc = cmd_loss(argv, err, sizeof err);
    else if (argc == 15 && !strcmp(argv[1], "optim"))
        rc = cmd_optim(argv, err, sizeof err);
    else if (argc == 6 && !strcmp(argv[1], "clip"))
        rc = cmd_clip(argv, err, sizeof err);
    else if (argc == 5 && !strcmp(argv[1], "cosine")) {
        for (e = 0; e <= atoi(argv[3]); e++)
            printf("%.17g\n", snnrt_lr_cosine(num(argv[2]), e, atoi(argv[3]), num(argv[4])));
        rc = 0;
    } else if (argc == 6 && !strcmp(argv[1], "step")) {
        for (e = 0; e <= atoi(argv[3]); e++)
            printf("%.17g\n", snnrt_lr_step(num(argv[2]), e, atoi(argv[4]), num(argv[5])));
        rc = 0;
    } else if (argc == 3 && !strcmp(argv[1], "dataset"))
        return cmd_dataset(argv[2]);
    else if (argc == 3 && !strcmp(argv[1], "idx"))
        rc = cmd_idx(argv[2], err, sizeof err);
    else
        snprintf(err, sizeof err, "usage: see the top of train_helper.c");
    if (rc) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    return 0;
}
