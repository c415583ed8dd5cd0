/*
 * passes.h: the optimizer. Each pass is a function over the whole graph;
 * the manager runs them in order, runs the IR checker after each one, and
 * honours --disable-pass and --dump-ir=after:NAME.
 */
#ifndef SNNC_PASSES_H
#define SNNC_PASSES_H

#include "ir.h"

typedef struct PassOptions {
    const char *disabled[16]; /* names of passes not to run */
    int ndisabled;
    const char *dump_after[16]; /* names after which the IR is printed */
    int ndump;
    FILE *dump_to;
} PassOptions;

typedef struct Pass {
    const char *name;
    void (*run)(IrGraph *g);
    int required; /* the back ends rely on it: cannot be disabled */
    const char *doc;
} Pass;

extern const Pass pass_table[];
extern const int pass_count;

/* Runs the pipeline; returns 0, or -1 after reporting a bad option. */
int pass_run_all(IrGraph *g, const PassOptions *opt);
int pass_lookup(const char *name);

void pass_simplify(IrGraph *g);
void pass_autodiff(IrGraph *g);
void pass_dropout(IrGraph *g);
void pass_hoist(IrGraph *g);
void pass_schedule(IrGraph *g);
void pass_memplan(IrGraph *g);
void pass_spikebits(IrGraph *g);
void pass_remat(IrGraph *g);
/* A flag per node (and one past the last), from the arena: 1 for the nodes
   whose values are read step by step, each step's as it is: those a probe
   records and those of a recurrent group (read through prev()). The
   spikebits and remat passes leave them as they are. */
unsigned char *pass_stepwise(IrGraph *g);
void pass_trainplan(IrGraph *g);

/* Simplifies a list of instructions in SSA order (folding exact in float,
   sharing, dead code) and renumbers; roots point at the instructions to
   keep (entries of -1 are ignored) and are updated. */
void eq_simplify(Arena *a, EqCode *code, int *const *roots, int nroots);

#endif
