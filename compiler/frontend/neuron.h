/*
 * neuron.h: instantiation of neuron models (see neuron.c).
 */
#ifndef SNNC_NEURON_H
#define SNNC_NEURON_H

#include "ast.h"
#include "ir.h"

/* Instantiate `model` (a D_NEURON) with the call's arguments; NULL after
   reporting errors. */
NeuronProg *neuron_instantiate(Arena *a, const Node *model, const Node *args, Loc call);
/* Check a model that can be instantiated with its defaults; 1 if it is sound. */
int neuron_check(Arena *a, const Node *model);

#endif
