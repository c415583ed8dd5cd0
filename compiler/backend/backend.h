/*
 * backend.h: the interface every back end implements. A target is a struct
 * of function pointers, looked up by name (--target); adding one (avx512,
 * cuda, llvm) is a new entry in backend.c and a folder of its own.
 */
#ifndef SNNC_BACKEND_H
#define SNNC_BACKEND_H

#include "ir.h"

typedef struct CgenOptions {
    int static_ws;           /* --static: a static workspace instead of the caller's */
    const float *embedded;   /* --embed-weights: all parameters, in memplan order; NULL: load at run time */
    const char *prefix;      /* C identifier prefix; default: the network's name in lower case */
} CgenOptions;

/* Generated files, in memory, so that the driver writes them atomically. */
typedef struct GenFile {
    const char *name;
    Buf text;
} GenFile;

typedef struct Target {
    const char *name;
    const char *doc;
    /* Generate the files for graph g; returns the number written to out (at
       most 4), or -1 after reporting an error. */
    int (*generate)(const IrGraph *g, const CgenOptions *opt, GenFile *out);
} Target;

const Target *target_lookup(const char *name);
void target_list(FILE *f);

int cgen_generate(const IrGraph *g, const CgenOptions *opt, GenFile *out);

/* Text of runtime/snnrt_stload.inc, embedded at build time. */
extern const char snnrt_stload_inc[];
extern const unsigned long snnrt_stload_inc_len;

#endif
