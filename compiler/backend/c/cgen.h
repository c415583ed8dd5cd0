/*
 * cgen.h: what the parts of the C back end share: the emitter (one printf
 * per line of output, with the indentation kept) and the code of neuron
 * programs, forward and backward, as C statements.
 *
 * cgen.c writes the inference code (the header, the streaming step, the
 * whole-sequence forward, weights); ctrain.c writes the training code
 * (layer-major forward over all steps that keeps what the backward needs,
 * and the backward); cemit.c holds what both use.
 */
#ifndef SNNC_CGEN_H
#define SNNC_CGEN_H

#include "backend.h"

typedef struct Emit {
    Buf *b;
    int ind;
    const IrGraph *g;
    const CgenOptions *opt;
    const char *p; /* prefix, lower case */
    const char *P; /* prefix, upper case */
    int64_t maxb;  /* the largest batch */
} Emit;

void cg_line(Emit *e, const char *fmt, ...) PRINTF_LIKE(2, 3);
void cg_blank(Emit *e);
/* A float literal that reads back as f ("1.5f", "INFINITY"). */
const char *cg_flt(Emit *e, float f);
/* The last component of a path, safe inside a C comment. */
const char *cg_clean_name(Emit *e, const char *path);
/* The comment that opens the code of node i: what it is and its source line. */
void cg_comment_node(Emit *e, int i);

/* ---- neuron programs ---- */

/* How the leaves of a neuron program read in C. */
typedef struct CgLeaves {
    const char *x;            /* the input current of the element, e.g. "x[i]" */
    const char *const *state; /* per state: its value at the start of the step */
    const char *const *param; /* per parameter, indexed for the element */
    const char *const *adj;   /* gradient code: per incoming adjoint (EQ_ADJ idx) */
} CgLeaves;

/* Per instruction: 1 if it reaches one of the roots (entries of -1 are skipped). */
unsigned char *cg_eq_live(Arena *a, const EqCode *code, const int *roots, int nroots);
/* Per instruction: 1 if it is the same for every neuron of the layer
   (it reads only constants and per-layer parameters). */
unsigned char *cg_eq_uniform(Arena *a, const NeuronProg *p, const EqCode *code);
/* Per instruction, when the input x is the same at every step
   (x_invariant): CG_LEVEL_LAYER as cg_eq_uniform says, CG_LEVEL_NEURON if
   it reads no state and no adjoint (x, parameters of any granularity and
   constants only), so each neuron computes it once for all steps, else
   CG_LEVEL_STEP. */
enum { CG_LEVEL_STEP, CG_LEVEL_NEURON, CG_LEVEL_LAYER };
unsigned char *cg_eq_levels(Arena *a, const NeuronProg *p, const EqCode *code, int x_invariant);
/* Emits the live instructions whose flag (uniform: 0 or 1 as
   cg_eq_uniform gives; or a level of cg_eq_levels) equals `uniform` as
   `const float tN = ...;`; with names, a comment gives the model's name of
   a value. Constants are not emitted: cg_eq_val writes them in place. */
void cg_eq_emit(Emit *e, const NeuronProg *p, const EqCode *code, const unsigned char *live,
                const unsigned char *uni, int uniform, const CgLeaves *lv, int names);
/* The C operand for instruction i: a literal for a constant, else tN. */
const char *cg_eq_val(Emit *e, const EqCode *code, int i);
/* Defines the surrogate-derivative functions that `code` uses (once per
   kind per file; `done` has SURR_NUM entries). */
void cg_dspike_funcs(Emit *e, const EqCode *code, unsigned char *done);

int ctrain_generate(Emit *e);
void ctrain_header(Emit *e);

#endif
