/*
 * jit.h: a model's generated code, built and loaded into snnc by its
 * target (load.c), and the values of its parameters.
 */
#ifndef SNNC_JIT_H
#define SNNC_JIT_H

#include "backend.h"
#include "driver.h"

/* Builds g's code with the target of --target and loads it; -1 after
   reporting. --cc, --keep-build and --threads say how. */
int drv_load(const IrGraph *g, Options *o, LoadedModel *m);
/* Unloads it and removes its files. */
void drv_unload(const Options *o, LoadedModel *m);

#endif
