/*
 * sema.h: from syntax trees to the graph IR.
 *
 * sema_build() checks a network definition and everything it uses, reports
 * errors at their source locations, instantiates neuron models (binding
 * constructor arguments, evaluating compile-time conditionals, turning the
 * ordered assignments into an SSA neuron program), infers shapes and creates
 * the learnable parameters. It returns NULL when any error was reported.
 */
#ifndef SNNC_SEMA_H
#define SNNC_SEMA_H

#include "ast.h"
#include "ir.h"

typedef struct SemaOptions {
    const char *network; /* which network to build; NULL: the only one */
    int timesteps;       /* > 0 overrides the file's timesteps */
    int file;            /* the model's source (src_add), where errors about the whole file go; 0: none */
} SemaOptions;

/* `std` holds the standard library's items, `user` the user's file. */
IrGraph *sema_build(Arena *a, Node *std, Node *user, const SemaOptions *opt);

#endif
