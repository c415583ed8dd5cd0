/*
 * plot.h: spike plots of snnc run --plot DIR and snnc train --plot DIR
 * (plot.c): rasters of the spiking layers, their spike rates over time, and
 * traces of recorded neuron variables, as SVG files.
 */
#ifndef SNNC_PLOT_H
#define SNNC_PLOT_H

#include "driver.h"
#include "jit.h"

#define PLOT_MAX_LAYERS 16 /* spiking layers plotted (and series of a chart) */
#define PLOT_MAX_NEURONS 256 /* rows of a raster */
#define PLOT_MAX_STEPS 1000  /* columns of a raster */
#define PLOT_TRACES 8        /* neurons of a trace chart */

/* A spiking layer: a neuron layer whose output is a spike (its model emits
   spike(...)). */
int plot_is_spiking(const IrGraph *g, int node);

/* Adds to o->records, after the user's, the values the plots read that the
   user does not record already: the output and the first state variable
   of each spiking layer (the first PLOT_MAX_LAYERS of them), as records
   without a file. Call it before drv_middle_end, which makes them probes. */
void plot_add_records(Arena *a, Options *o, const IrGraph *g);

/* Writes the plots into dir (created if needed) from the probes' values of
   one sequence: vals[k] is probe k's value at every step, [T, batch,
   count]. Every spiking layer among the probes gets a raster of sample 0
   (raster_LAYER.svg); all of them together their spike rates over the
   steps (rates.svg); every probe of a neuron variable a trace of its first
   neurons in sample 0 (trace_LAYER.VAR.svg). -1 after reporting. */
int plot_write(Arena *a, const IrGraph *g, const char *dir, int batch, const SnnrtTensor *vals);

/* train --plot: the inference code of the trained network, built beside
   the training code, runs a fixed batch of test samples after every epoch
   for the per-layer spike rates of curves.svg, and after the last for the
   plots. */
typedef struct PlotRun {
    IrGraph *g;      /* the inference graph, with the plots' probes */
    LoadedModel m;
    Options o;       /* its options: those of train, without training */
    float *ws;
    float *x;        /* the samples' input */
    int batch;
    SnnrtTensor *vals; /* per probe: [T, batch, count] */
} PlotRun;

/* Builds and loads the inference code for a batch of `batch` samples;
   -1 after reporting. */
int plot_run_open(Arena *a, PlotRun *pr, const Options *train_opts, int batch);
/* Runs x ([batch, ...] or [T, batch, ...], pr->batch samples) with the
   parameters of the training graph tg (from its workspace tws, matched by
   name), filling pr->vals. */
void plot_run(PlotRun *pr, const IrGraph *tg, const float *tws, const float *x);
void plot_run_close(PlotRun *pr);

/* train --plot DIR: the samples of the plots (the first PLOT_TRAIN_SAMPLES
   of the test split) run after every epoch; their per-layer spike rates
   join curves.svg, and after the last epoch the plots of run --plot go to
   DIR. */
#define PLOT_TRAIN_SAMPLES 64
#define PLOT_CURVE_LAYERS 12 /* spike-rate curves in curves.svg, beside its 4 */

struct Dataset;
typedef struct PlotTrain {
    PlotRun run;
    int epochs;
    int nlayers;
    const char *names[PLOT_MAX_LAYERS];
    double *rates[PLOT_MAX_LAYERS]; /* per layer, per epoch (from 0); NaN before a resumed run */
} PlotTrain;

/* -1 after reporting. */
int plot_train_open(Arena *a, PlotTrain *pt, const Options *o, const struct Dataset *test, int epochs);
/* After epoch e (from 0): the samples' spike rates with the training
   graph tg's parameters, in its workspace tws. */
void plot_train_epoch(PlotTrain *pt, const IrGraph *tg, const float *tws, int e);
/* The curves for curves.svg: up to max series, named "spike rate LAYER",
   each `epochs` long; returns how many. */
int plot_train_curves(Arena *a, const PlotTrain *pt, int max, const char **names, const double **ys);
/* The plots of the last run into dir; -1 after reporting. */
int plot_train_write(Arena *a, PlotTrain *pt, const char *dir);
void plot_train_close(PlotTrain *pt);

#endif
