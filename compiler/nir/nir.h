/*
 * nir.h: the NIR front end (docs/nir.md): a graph of the Neuromorphic
 * Intermediate Representation, an HDF5 file, turned into what a .snn file
 * gives.
 *
 * Two stages. read.c reads the HDF5 file (from memory: a file is read
 * whole first, so that the same code reads the fuzzers' inputs) into the
 * plain structs below, checking sizes, kinds and links as it goes; it is
 * the only file that includes the HDF5 headers. import.c turns that tree
 * into the text of the description language (one generated neuron model
 * per NIR neuron node, its continuous-time parameters discretized with a
 * step dt) plus the weights, in the same OnnxImport that the ONNX front
 * end fills, so that the driver binds them the same way.
 *
 * Writing goes the other way, through the same structs: export.c turns a
 * checked graph (IR) into a NirGraph tree, write.c writes that tree as an
 * HDF5 file in the nir package's layout (the only other file that
 * includes the HDF5 headers).
 */
#ifndef SNNC_NIR_H
#define SNNC_NIR_H

#include "ir.h"
#include "onnx.h"

/* How NIR's continuous-time neurons become per-step equations. */
typedef enum NirConvention {
    NIR_CONV_NIR,     /* forward Euler of NIR's equations (docs/nir.md) */
    NIR_CONV_SNNTORCH, /* as snnTorch 0.9.4's import_from_nir builds its modules */
    NIR_CONV_NORSE,    /* as Norse's from_nir (LIFBox, IAF, LIBox cells) */
    NIR_CONV_SPYX,     /* as Spyx's from_nir (LIF, IF, CuBaLIF) */
    NIR_CONV_SINABS    /* as Sinabs's from_nir (LIFSqueeze, IAFSqueeze, ExpLeakSqueeze) */
} NirConvention;

typedef struct NirOptions {
    int timesteps;      /* > 0; NIR graphs do not say (the driver asks for it) */
    double dt;          /* > 0: the step in seconds; 0: the default, 1e-4 */
    NirConvention conv;
} NirOptions;

/* How write.c stores a dataset of numbers (read.c leaves it NIR_F64). */
typedef enum NirStore { NIR_F64, NIR_F32, NIR_I64 } NirStore;

/* A dataset of a node: numbers (as doubles) or strings. */
typedef struct NirArray {
    const char *name;
    int is_string;
    NirStore store;
    int ndim; /* 0: a scalar */
    int64_t dims[8];
    int64_t count;
    double *num;
    const char **str;
} NirArray;

typedef struct NirGraph NirGraph;

typedef struct NirNode {
    const char *name; /* its key in the graph's nodes */
    const char *type; /* "LIF", "Affine", ..., "NIRGraph" */
    VEC(NirArray) fields;
    NirGraph *graph; /* NIRGraph: its nodes and edges */
} NirNode;

typedef struct NirEdge {
    const char *src, *dst;
} NirEdge;

struct NirGraph {
    VEC(NirNode) nodes; /* in the order of their names (HDF5's name index) */
    VEC(NirEdge) edges; /* in the file's order */
};

#define NIR_MAX_FILE_BYTES ((size_t)1 << 30)
#define NIR_MAX_NODES 100000   /* in all graphs together */
#define NIR_MAX_EDGES 1000000  /* in all graphs together */
#define NIR_MAX_DEPTH 16       /* nested NIRGraph nodes */
#define NIR_MAX_NAME 1024      /* bytes of a name or a string */
#define NIR_MAX_ELEMS ((int64_t)1 << 27) /* numbers read from the file, in all */

/* Reads the NIR file whose bytes are [0, len) (named path in messages)
   into *root, the top graph; 0, or -1 after reporting. */
int nir_read_mem(Arena *a, const char *path, const void *bytes, size_t len, NirGraph **root);
/* Prepares libhdf5 for opening or creating a file in memory: its error
   printing off, its clean-up at exit off (read.c says why), and name (n
   bytes) set to a name no other file of this process has, "PREFIX-N". */
void nir_h5_begin(char *name, size_t n, const char *prefix);

/* Imports the NIR file at path; 0, or -1 after reporting "PATH: node
   'NAME' (TYPE): what is wrong". */
int nir_import(Arena *a, const char *path, const NirOptions *opt, OnnxImport *out);
/* The same for the file's bytes [0, len). */
int nir_import_mem(Arena *a, const char *path, const void *bytes, size_t len, const NirOptions *opt,
                   OnnxImport *out);

/* The step --dt gives when it is not set. */
#define NIR_DEFAULT_DT 1e-4

/* Writes the network g, with the parameter values params (g's parameter
   block), as a NIR graph at path, its continuous-time parameters chosen
   for a step of dt seconds (0: the default) so that importing the file
   with the default convention steps the same equations (docs/nir.md). The
   file is written whole under a temporary name, then renamed; nothing is
   written after an error. 0, or -1 after reporting every layer NIR cannot
   express. */
int nir_export(Arena *a, const IrGraph *g, const float *params, double dt, const char *path);

/* Writes the tree root (its top graph) as a NIR file at path, with
   version (the nir package's version whose layout it follows) in its
   "version" dataset. 0, or -1 after reporting. */
int nir_write(const char *path, const NirGraph *root, const char *version);

#endif
