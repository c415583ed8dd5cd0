/*
 * load.c: the generated code of a model, built and loaded by its target
 * (compiler/backend/), so that snnc run, train and grad call the generated
 * kernels directly while the data, the loss, the optimizer and the files
 * stay in snnc's own C. The target is --target, else the fastest one this
 * machine runs (target_native: the x86 SIMD targets where the CPU has
 * them, else the portable C). The thread count of --threads is set here,
 * for the generated code and for the runtime's optimizers and losses.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "jit.h"

/* A run is short when its synaptic products come to fewer multiply-
   accumulates than this. A billion of the conv example's inference take
   0.085 s on an AVX-512 core built with -O3 and 0.108 s with -O2, 0.091
   and 0.158 s in the portable code; -O3 adds 1.3 to 2 s to the first build
   of an example (bench/RESULTS.md, "Building a short run with -O2"). */
#define QUICK_MACS 2000000000LL

/* Whether the command is one short pass over its input: snnc run (not
   --eval) or grad, whose forward, or forward and backward (about three
   times the forward's products), are below QUICK_MACS. */
static int quick_run(const IrGraph *g, const Options *o) {
    int grad = !strcmp(o->cmd, "grad");
    if (o->eval || (!grad && strcmp(o->cmd, "run")))
        return 0;
    int64_t macs = 0;
    for (int i = 0; i < g->nodes.len; i++)
        macs += ir_node_macs(g, i);
    double work = (double)macs * g->timesteps * (g->batch > 0 ? g->batch : 1) * (grad ? 3 : 1);
    return work < (double)QUICK_MACS;
}

/* --target, else the fastest target this machine runs. */
static const Target *run_target(const Options *o) {
    return o->target ? target_lookup(o->target) : target_native();
}

int drv_load(const IrGraph *g, Options *o, LoadedModel *m) {
    memset(m, 0, sizeof *m);
    const Target *t = run_target(o);
    if (!t) {
        error_plain("unknown target '%s' (see snnc --list-targets)", o->target);
        return -1;
    }
    if (t->missing) {
        error_plain("target '%s' is not available: %s", t->name, t->missing);
        return -1;
    }
    if (target_check_precision(t, o->precision))
        return -1;
    if (o->keep && drv_ensure_dir(o->keep) != 0)
        return -1;
    if (o->threads > 0) {
        /* the OpenMP runtime reads this when the generated code loads it
           first; when snnc itself already runs one, the call below sets it */
        char n[32];
        snprintf(n, sizeof n, "%d", o->threads);
        setenv("OMP_NUM_THREADS", n, 1);
    }
    snnrt_threads_set(o->threads);
    LoadOptions lo;
    memset(&lo, 0, sizeof lo);
    lo.cc = o->cc;
    lo.keep = o->keep;
    lo.threads = o->threads;
    lo.math = o->math;
    lo.precision = o->precision;
    lo.train_loop = !strcmp(o->cmd, "train") || o->eval; /* run --eval: the same loop's evaluation */
    lo.quick = quick_run(g, o);
    return t->load(g, &lo, m);
}

void drv_unload(const Options *o, LoadedModel *m) {
    const Target *t = run_target(o);
    if (t && !t->missing && m->handle)
        t->unload(m);
}
