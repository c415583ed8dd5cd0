/*
 * data.h: datasets of snnc train and snnc run --data (data.c).
 */
#ifndef SNNC_DATA_H
#define SNNC_DATA_H

#include "ir.h"
#include "snnrt.h"
#include "trainspec.h"

typedef struct Dataset {
    long n;       /* samples */
    long sample;  /* input values per sample and step */
    int steps;    /* 1, or T for sequence inputs */
    double mean, std; /* x = (raw - mean) / std; IDX bytes are first divided by 255 */
    int *labels;
    SnnrtIdx idx_x, idx_y;   /* IDX data, or */
    float byte_value[256];   /* IDX: what a byte becomes, normalized */
    SnnrtTensor npy_x;       /* .npy data, or */
    SnnrtEvents ev;          /* event lists (`encode events`), binned per batch */
    SnnrtEventSpec evspec;
    /* the train block's augmentation (train split only): images of
       aug_c channels of aug_h x aug_w, moved by up to aug_shift pixels,
       mirrored when aug_flip; aug_fill is where no pixel moved to */
    int aug_shift, aug_flip;
    long aug_c, aug_h, aug_w;
    float aug_fill;
    float *aug_tmp; /* one image */
} Dataset;

/* How g's `encode events` input bins events (g->events.on). */
void data_event_spec(const IrGraph *g, SnnrtEventSpec *spec);

/* Loads the train (train = 1) or test split for g, at most `limit` samples
   when limit > 0; -1 after reporting. */
int data_load(Dataset *d, const TrainSpec *ts, const IrGraph *g, int train, long limit);
void data_free(Dataset *d);
/* Samples idx[0..b) into x ([b, ...] or [T, b, ...]) and their labels. */
void data_batch(const Dataset *d, const long *idx, int b, float *x, int *labels);
/* Augments the samples idx[0..b) of a batch x that data_batch filled, as
   epoch `epoch` of a run seeded `seed` draws them (nothing when the split
   has no augmentation). */
void data_augment(const Dataset *d, unsigned long long seed, int epoch, const long *idx, int b, float *x);

#endif
