/*
 * onnx.h: the ONNX front end (DESIGN 4, docs/onnx.md) and exporter.
 *
 * Importing turns an ONNX graph that describes one timestep (standard ops
 * for the synaptic part, nodes of the custom domain `snn` for the spiking
 * neurons) into the same thing a .snn file gives: the network as text of
 * the description language, which the usual front end then checks, plus
 * the model's initializers as the network's weights. So every command that
 * takes a .snn file takes a .onnx file, with the same checks and the same
 * generated code. Only compiler/onnx/ includes the protobuf-c headers.
 */
#ifndef SNNC_ONNX_H
#define SNNC_ONNX_H

#include "ir.h"

typedef struct OnnxOptions {
    int timesteps;         /* > 0: overrides the model's snn.timesteps */
    const char *spiking;   /* "OP=MODEL(args)": replace every node OP by a neuron layer */
} OnnxOptions;

/* A weight of the imported network: the tensor of layer `layer` called
   `param` (weight, bias, running_mean...), or, when param is NULL, the
   index-th learnable parameter of a neuron layer's model. */
typedef struct OnnxTensor {
    const char *layer;
    const char *param;
    int index;
    const char *source; /* the initializer's name in the model, for messages */
    int ndim;
    int64_t shape[8];
    int64_t count;
    float *data; /* arena memory */
} OnnxTensor;

typedef struct OnnxImport {
    char *text; /* the network in the description language (arena) */
    size_t len;
    VEC(OnnxTensor) tensors;
} OnnxImport;

/* Imports the model at path; 0, or -1 after reporting "PATH: node 'NAME'
   (OP): what is wrong". */
int onnx_import(Arena *a, const char *path, const OnnxOptions *opt, OnnxImport *out);
/* The same for the model's bytes[0..len), read from path (messages name
   it; external data files are looked for beside it). */
int onnx_import_mem(Arena *a, const char *path, const void *bytes, size_t len, const OnnxOptions *opt,
                    OnnxImport *out);

/* Writes g as an ONNX model in the same convention: params holds every
   parameter at its memplan offset; neuron layers keep the call of their
   model (NeuronProg.call). 0, or -1 after reporting. */
int onnx_export(Arena *a, const IrGraph *g, const float *params, const char *path);

#endif
