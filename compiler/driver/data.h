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
    SnnrtTensor npy_x;       /* .npy data, or */
    SnnrtEvents ev;          /* event lists (`encode events`), binned per batch */
    SnnrtEventSpec evspec;
} Dataset;

/* How g's `encode events` input bins events (g->events.on). */
void data_event_spec(const IrGraph *g, SnnrtEventSpec *spec);

/* Loads the train (train = 1) or test split for g, at most `limit` samples
   when limit > 0; -1 after reporting. */
int data_load(Dataset *d, const TrainSpec *ts, const IrGraph *g, int train, long limit);
void data_free(Dataset *d);
/* Samples idx[0..b) into x ([b, ...] or [T, b, ...]) and their labels. */
void data_batch(const Dataset *d, const long *idx, int b, float *x, int *labels);

#endif
