/*
 * jit.h: a model's training code, built and loaded into snnc (jit.c).
 */
#ifndef SNNC_JIT_H
#define SNNC_JIT_H

#include "driver.h"

/* The generated <prefix>_param_info (docs/generated-code.md). */
typedef struct JitParam {
    const char *name;
    int ndim;
    long shape[4];
    long offset;
    long count;
    int learnable;
} JitParam;

typedef struct JitModel {
    void *so;
    char *dir;
    int keep; /* --keep-build: the folder stays */
    const char *prefix, *c_file, *h_file, *so_file;
    void (*forward)(void *ws, int batch, const float *input, float *output, int training,
                    unsigned long long seed);
    void (*backward)(void *ws, int batch, const float *doutput, float *dinput);
    float *(*grads)(void *ws);
    void (*spikes)(void *ws, int batch, double *spikes, double *neurons);
    void (*init_weights)(void *ws, unsigned long long seed);
    int (*load_weights)(void *ws, const char *path, int allow_missing, char *err, size_t errlen);
    const JitParam *params;
    int nparams;
    long ws_floats; /* the training workspace for the graph's batch */
} JitModel;

/* Generates g's code (g->train set) and loads it; -1 after reporting. */
int jit_load(Arena *a, const IrGraph *g, Options *o, JitModel *m);
/* Unloads it and removes its files. */
void jit_close(JitModel *m);
/* Fills the parameters of a fresh workspace: --init SEED, then --weights
   (missing tensors allowed only with --init); -1 after reporting. */
int drv_load_params(const JitModel *m, void *ws, const Options *o);

#endif
