/*
 * trainspec.h: how to train a network: the settings of a `train NAME { }`
 * block (trainspec.c), with their defaults. The command line overrides
 * them (snnc train --epochs ...). docs/training.md documents every one.
 */
#ifndef SNNC_TRAINSPEC_H
#define SNNC_TRAINSPEC_H

#include "ast.h"

typedef enum DataKind { DATA_IDX, DATA_NPY } DataKind;
typedef enum LossKind { LOSS_CE, LOSS_TET, LOSS_MSE_COUNT } LossKind;
typedef enum OptKind { OPT_SGD, OPT_ADAM, OPT_ADAMW } OptKind;
typedef enum SchedKind { SCHED_NONE, SCHED_COSINE, SCHED_STEP } SchedKind;

/* The largest learning rate accepted (the train block, --lr): a bound on
   typing mistakes, not on what trains; divergence is caught while training
   (docs/training.md). */
#define TRAINSPEC_MAX_LR 1e6

typedef struct TrainSpec {
    const char *network; /* the network the block trains */
    Loc loc;
    /* data */
    DataKind data;
    const char *dir;     /* DATA_IDX: the folder of the four IDX files */
    const char *npy[4];  /* DATA_NPY: train x, train y, test x, test y */
    double mean, std;    /* x = (x - mean) / std (IDX bytes first scaled to [0, 1]) */
    /* augmentation of the training images (never of the test split) */
    int shift;           /* each image moved by up to this many pixels across and down */
    int flip;            /* and mirrored left to right with probability 1/2 */
    Loc augment_loc;     /* the augment setting, where one is given */
    /* loss */
    LossKind loss;
    double lambda, phi;           /* TET */
    double correct, incorrect;    /* MSE on spike counts: target rates */
    /* optimizer */
    OptKind opt;
    double lr, momentum, weight_decay, beta1, beta2, eps;
    int nesterov;
    SchedKind sched;
    double eta_min, gamma;
    int step_size;
    double clip; /* max gradient norm; 0: none */
    /* loop */
    int epochs, batch;
    int shuffle; /* draw each epoch's batches in a shuffled order (default) */
    unsigned long long seed;
} TrainSpec;

/* Fills *ts with the defaults, then with the settings of the train block
   for `network` among items (if there is one); 0 after reporting errors. */
int trainspec_build(Node *items, const char *network, TrainSpec *ts);

#endif
