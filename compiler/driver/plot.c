/*
 * plot.c: snnc run --plot DIR and snnc train --plot DIR: what a spiking
 * network did on one sequence, as SVG files (docs/cli.md, "Plots").
 *
 * The values come the way --record gets them: the plots add probes (the
 * output and the first state variable of every spiking layer) to the
 * user's records before the passes, the inference code runs the sequence
 * step by step, and after each step every probe is copied out, giving
 * [T, batch, count] per probe. From those:
 *
 *   raster_LAYER.svg     the spikes of sample 0 (the first PLOT_MAX_NEURONS
 *                        neurons, the first PLOT_MAX_STEPS steps), one mark
 *                        per spike (runtime/svg.c, snnrt_svg_raster);
 *   rates.svg            per spiking layer, the fraction of its neurons that
 *                        spiked at each step, over the whole batch;
 *   trace_LAYER.VAR.svg  a neuron variable (the membrane potential: the
 *                        model's first state, or any --record LAYER.VAR)
 *                        of the first PLOT_TRACES neurons of sample 0.
 *
 * A spiking layer is a neuron layer whose model emits spike(...): its
 * output is 0 or 1 at every step. Other neuron layers (LI) are traced, not
 * rastered. train --plot builds the inference code beside the training
 * code (plot_run_open) and runs it on a fixed batch of test samples.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"
#include "plot.h"

int plot_is_spiking(const IrGraph *g, int node) {
    const IrNode *n = &g->nodes.items[node];
    return !n->dead && n->op == IR_NEURON && n->neuron && n->neuron->code.items[n->neuron->emit].op == EQ_SPIKE;
}

static int has_record(const Options *o, const char *spec) {
    for (int k = 0; k < o->nrecords; k++)
        if (!strcmp(o->records[k].spec, spec))
            return 1;
    return 0;
}

static void add_record(Arena *a, Options *o, const char *spec) {
    if (has_record(o, spec) || o->nrecords >= MAX_RECORDS + PLOT_MAX_RECORDS)
        return;
    Record *r = &o->records[o->nrecords++];
    r->spec = arena_strdup(a, spec);
    r->file = NULL;
}

void plot_add_records(Arena *a, Options *o, const IrGraph *g) {
    int layers = 0;
    for (int i = 0; i < g->nodes.len && layers < PLOT_MAX_LAYERS; i++) {
        if (!plot_is_spiking(g, i))
            continue;
        const IrNode *n = &g->nodes.items[i];
        add_record(a, o, n->name);
        if (n->neuron->states.len)
            add_record(a, o, arena_printf(a, "%s.%s", n->name, n->neuron->states.items[0].name));
        layers++;
    }
}

/* The spiking probes: a layer's output (not a variable), each layer once. */
static int spiking_probes(const IrGraph *g, int *which) {
    int n = 0;
    for (int k = 0; k < g->probes.len && n < PLOT_MAX_LAYERS; k++) {
        const IrProbe *p = &g->probes.items[k];
        int dup = 0;
        for (int j = 0; j < n; j++)
            dup |= g->probes.items[which[j]].node == p->node;
        if (!p->var && !dup && plot_is_spiking(g, p->node))
            which[n++] = k;
    }
    return n;
}

/* The per-layer spike rates of one sequence: rates[l] = the spikes of the
   l-th spiking probe over all steps, samples and neurons, divided by their
   number; names[l] is the layer's name. Returns how many layers. */
static int layer_rates(const IrGraph *g, const SnnrtTensor *vals, const char **names, double *rates) {
    int which[PLOT_MAX_LAYERS];
    int n = spiking_probes(g, which);
    for (int l = 0; l < n; l++) {
        const IrProbe *p = &g->probes.items[which[l]];
        const SnnrtTensor *v = &vals[which[l]];
        double s = 0;
        for (size_t j = 0; j < v->count; j++)
            s += v->data[j];
        names[l] = g->nodes.items[p->node].name;
        rates[l] = v->count ? s / (double)v->count : 0;
    }
    return n;
}

static int svg_failed(const char *err) {
    error_plain("%s", err);
    return -1;
}

int plot_write(Arena *a, const IrGraph *g, const char *dir, int batch, const SnnrtTensor *vals) {
    char err[1024];
    int T = g->timesteps;
    if (drv_ensure_dir(dir) != 0)
        return -1;
    int which[PLOT_MAX_LAYERS];
    int n = spiking_probes(g, which);
    /* rasters, and the rate of each layer at each step */
    const char *names[PLOT_MAX_LAYERS];
    const double *ys[PLOT_MAX_LAYERS];
    int lens[PLOT_MAX_LAYERS];
    for (int l = 0; l < n; l++) {
        const IrProbe *p = &g->probes.items[which[l]];
        const char *layer = g->nodes.items[p->node].name;
        const float *v = vals[which[l]].data;
        long count = (long)p->count, shown = count < PLOT_MAX_NEURONS ? count : PLOT_MAX_NEURONS;
        int steps = T < PLOT_MAX_STEPS ? T : PLOT_MAX_STEPS;
        const char *title = shown < count || steps < T
                                ? arena_printf(a, "%s: spikes of sample 0 (neurons 0-%ld of %ld, steps 1-%d of %d)",
                                               layer, shown - 1, count, steps, T)
                                : arena_printf(a, "%s: spikes of sample 0", layer);
        if (snnrt_svg_raster(arena_printf(a, "%s/raster_%s.svg", dir, layer), title, steps, shown, v,
                             (long)batch * count, err, sizeof err) != 0)
            return svg_failed(err);
        double *r = arena_alloc(a, sizeof(double) * (size_t)T);
        size_t row = (size_t)batch * (size_t)count;
        for (int t = 0; t < T; t++) {
            double s = 0;
            for (size_t j = 0; j < row; j++)
                s += v[(size_t)t * row + j];
            r[t] = s / (double)row;
        }
        names[l] = layer;
        ys[l] = r;
        lens[l] = T;
    }
    if (n && snnrt_svg_curves(arena_printf(a, "%s/rates.svg", dir),
                              arena_printf(a, "%s: spike rate per layer (%d sample%s)", g->name, batch,
                                           batch == 1 ? "" : "s"),
                              n, names, ys, lens, "step", err, sizeof err) != 0)
        return svg_failed(err);
    /* traces of neuron variables */
    for (int k = 0; k < g->probes.len; k++) {
        const IrProbe *p = &g->probes.items[k];
        int dup = 0;
        for (int j = 0; j < k; j++)
            dup |= !strcmp(g->probes.items[j].spec, p->spec);
        if (!p->var || dup)
            continue;
        int shown = p->count < PLOT_TRACES ? (int)p->count : PLOT_TRACES;
        const char *tnames[PLOT_TRACES];
        const double *tys[PLOT_TRACES];
        int tlens[PLOT_TRACES];
        size_t row = (size_t)batch * (size_t)p->count;
        for (int i = 0; i < shown; i++) {
            double *y = arena_alloc(a, sizeof(double) * (size_t)T);
            for (int t = 0; t < T; t++)
                y[t] = vals[k].data[(size_t)t * row + (size_t)i];
            tnames[i] = arena_printf(a, "neuron %d", i);
            tys[i] = y;
            tlens[i] = T;
        }
        if (snnrt_svg_curves(arena_printf(a, "%s/trace_%s.svg", dir, p->spec),
                             arena_printf(a, "%s of sample 0 at the end of each step", p->spec), shown, tnames, tys,
                             tlens, "step", err, sizeof err) != 0)
            return svg_failed(err);
    }
    return 0;
}

/* ---- train --plot: the inference code beside the training code ---- */

int plot_run_open(Arena *a, PlotRun *pr, const Options *train_opts, int batch) {
    memset(pr, 0, sizeof *pr);
    pr->o = *train_opts;
    Options *o = &pr->o;
    o->train = 0;
    o->nrecords = 0;
    o->keep = NULL; /* --keep-build holds the training code's files */
    o->chunk = 0;
    o->emit_ir = 0;
    o->passes.ndump = 0;
    o->batch = batch;
    pr->batch = batch;
    IrGraph *g = drv_front_end(a, o);
    if (!g)
        return -1;
    plot_add_records(a, o, g);
    o->batch = batch;
    if (!(g = drv_middle_end(a, o, g)) || drv_load(g, o, &pr->m) != 0)
        return -1;
    pr->g = g;
    long in = (long)shape_count(&g->nodes.items[g->input].shape);
    size_t nx = (size_t)(g->encoding == ENC_SEQUENCE ? g->timesteps : 1) * (size_t)batch * (size_t)in;
    pr->ws = floats_alloc((size_t)pr->m.ws_floats + 1);
    pr->x = malloc(nx * sizeof(float) + 1);
    pr->vals = calloc((size_t)g->probes.len + 1, sizeof *pr->vals);
    int ok = pr->ws && pr->x && pr->vals;
    for (int k = 0; ok && k < g->probes.len; k++) {
        SnnrtTensor *t = &pr->vals[k];
        t->ndim = 3;
        t->shape[0] = g->timesteps;
        t->shape[1] = batch;
        t->shape[2] = g->probes.items[k].count;
        t->count = (size_t)g->timesteps * (size_t)batch * (size_t)g->probes.items[k].count;
        ok = (t->data = malloc(t->count * sizeof(float) + 1)) != NULL;
    }
    if (!ok) {
        error_plain("out of memory (the plots' workspace is %ld floats)", pr->m.ws_floats);
        return -1;
    }
    return 0;
}

void plot_run(PlotRun *pr, const IrGraph *tg, const float *tws, const float *x) {
    const IrGraph *g = pr->g;
    for (int i = 0; i < g->params.len; i++) {
        const IrParam *q = &g->params.items[i];
        for (int j = 0; j < tg->params.len; j++)
            if (!strcmp(tg->params.items[j].name, q->name) && tg->params.items[j].count == q->count)
                memcpy(pr->ws + q->off, tws + tg->params.items[j].off, sizeof(float) * (size_t)q->count);
    }
    size_t nin = (size_t)pr->batch * (size_t)shape_count(&g->nodes.items[g->input].shape);
    pr->m.reset(pr->ws, pr->batch);
    for (int t = 0; t < g->timesteps; t++) {
        pr->m.step(pr->ws, pr->batch, x + (g->encoding == ENC_SEQUENCE ? (size_t)t * nin : 0), NULL);
        for (int k = 0; k < g->probes.len; k++) {
            size_t c = (size_t)pr->batch * (size_t)g->probes.items[k].count;
            memcpy(pr->vals[k].data + (size_t)t * c, pr->m.probe(pr->ws, k), c * sizeof(float));
        }
    }
}

void plot_run_close(PlotRun *pr) {
    drv_unload(&pr->o, &pr->m);
    if (pr->vals && pr->g)
        for (int k = 0; k < pr->g->probes.len; k++)
            free(pr->vals[k].data);
    free(pr->vals);
    free(pr->ws);
    free(pr->x);
    memset(pr, 0, sizeof *pr);
}

/* ---- train --plot ---- */

int plot_train_open(Arena *a, PlotTrain *pt, const Options *o, const Dataset *test, int epochs) {
    memset(pt, 0, sizeof *pt);
    int nb = test->n < PLOT_TRAIN_SAMPLES ? (int)test->n : PLOT_TRAIN_SAMPLES;
    if (nb < 1) {
        error_plain("--plot: the test split has no sample to plot");
        return -1;
    }
    if (plot_run_open(a, &pt->run, o, nb) != 0)
        return -1;
    long idx[PLOT_TRAIN_SAMPLES];
    int labels[PLOT_TRAIN_SAMPLES];
    for (int r = 0; r < nb; r++)
        idx[r] = r;
    data_batch(test, idx, nb, pt->run.x, labels);
    pt->epochs = epochs;
    int which[PLOT_MAX_LAYERS];
    pt->nlayers = spiking_probes(pt->run.g, which);
    for (int l = 0; l < pt->nlayers; l++) {
        pt->names[l] = pt->run.g->nodes.items[pt->run.g->probes.items[which[l]].node].name;
        pt->rates[l] = arena_alloc(a, sizeof(double) * (size_t)(epochs + 1));
        for (int e = 0; e < epochs; e++)
            pt->rates[l][e] = NAN;
    }
    return 0;
}

void plot_train_epoch(PlotTrain *pt, const IrGraph *tg, const float *tws, int e) {
    const char *names[PLOT_MAX_LAYERS];
    double rates[PLOT_MAX_LAYERS];
    plot_run(&pt->run, tg, tws, pt->run.x);
    int n = layer_rates(pt->run.g, pt->run.vals, names, rates);
    for (int l = 0; l < n && l < pt->nlayers && e >= 0 && e < pt->epochs; l++)
        pt->rates[l][e] = rates[l];
}

int plot_train_curves(Arena *a, const PlotTrain *pt, int max, const char **names, const double **ys) {
    int n = pt->nlayers < max ? pt->nlayers : max;
    for (int l = 0; l < n; l++) {
        names[l] = arena_printf(a, "spike rate %s", pt->names[l]);
        ys[l] = pt->rates[l];
    }
    return n;
}

int plot_train_write(Arena *a, PlotTrain *pt, const char *dir) {
    return plot_write(a, pt->run.g, dir, pt->run.batch, pt->run.vals);
}

void plot_train_close(PlotTrain *pt) {
    plot_run_close(&pt->run);
}
