/*
 * fuzz.h: what the fuzz targets of the compiler share (fuzz.c): start-up
 * (the built-in neuron library parsed once, diagnostics to /dev/null) and
 * one compilation of a parsed file through code generation.
 */
#ifndef SNNC_FUZZ_H
#define SNNC_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include "ast.h"
#include "ir.h"

/* libFuzzer's entry points, which each target defines */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Parses the built-in neuron library into memory kept for the whole run
   and sends diagnostics to /dev/null. */
void fuzz_init(void);

/* A number from the input's bytes, from which a target picks options (the
   back end, the batch...), so that a run covers them all and an input
   always takes the same path. */
unsigned fuzz_variant(const uint8_t *data, size_t size);

/* sema, the train block, every pass, the IR printers and the back end's
   files in memory, for the network of user (parsed into a); train: with
   the training code. after_sema (may be NULL) is called with ctx on the
   graph sema made, and stops the compilation by returning nonzero. Errors
   are reported, and counted, as usual. */
typedef int FuzzHook(Arena *a, IrGraph *g, void *ctx);
void fuzz_compile(Arena *a, Node *user, int train, unsigned variant, FuzzHook *after_sema, void *ctx);

/* The importers' targets (fuzz_import.c): imp, what the model at path
   converted to, parsed as the source named converted and compiled for
   inference and for training with its tensors bound as the driver binds
   them; variant picks the options of each compilation. */
struct OnnxImport;
void fuzz_imported(Arena *a, const char *path, const char *converted, struct OnnxImport *imp, unsigned variant);

/* After an input: its sources forgotten, no errors counted. */
void fuzz_reset(void);

#endif
