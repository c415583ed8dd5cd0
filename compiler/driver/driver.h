/*
 * driver.h: what the parts of the snnc command share: the options, the
 * pipeline up to generated files, and running programs.
 */
#ifndef SNNC_DRIVER_H
#define SNNC_DRIVER_H

#include "ir.h"
#include "passes.h"
#include "sema.h"
#include "snnrt.h"
#include "trainspec.h"

#define MAX_RECORDS 32      /* --record options */
#define PLOT_MAX_RECORDS 32 /* --plot's own records, after them (plot.c) */

typedef struct Record {
    const char *spec; /* LAYER or LAYER.VAR */
    const char *file;
} Record;

typedef struct Options {
    const char *cmd;
    const char *input_file; /* the model */
    const char *target;
    const char *outdir;
    const char *weights;
    const char *npy_in, *npy_out;
    const char *grad_in;    /* grad: dL/doutput */
    const char *dinput_out; /* grad: dL/dinput */
    const char *steps_out;  /* grad: the output of every step */
    const char *dot;
    const char *cc;
    const char *keep;
    const char *plot; /* run, train: --plot DIR, the spike plots' folder */
    const char *triple, *cpu, *features; /* compile --target llvm: an object file for that machine */
    int static_ws, embed, emit_ir, batch, init, list_passes, train;
    unsigned long long seed;
    SemaOptions sema;
    PassOptions passes;
    Record records[MAX_RECORDS + PLOT_MAX_RECORDS]; /* a record without a file is --plot's */
    int nrecords;
    /* training (train, run --eval) */
    TrainSpec spec; /* the train block, with the overrides below */
    int set_epochs, set_batch, set_seed_given, resume, eval, outdir_set;
    double set_lr;
    unsigned long long set_seed;
    const char *set_data;
    const char *step_log; /* train: the loss of every step, as CSV */
    /* models */
    const char *neurons;          /* --neurons FILE.snn: more neuron models */
    const char *spiking;          /* --spiking OP=MODEL(args): ANN-to-SNN conversion of ONNX */
    const struct OnnxImport *onnx; /* the imported ONNX model (or NIR graph), when the model is one */
    const float *const *onnx_data; /* its weights: per parameter of the graph, its values */
    int threads;                   /* --threads N; 0: every core */
    int chunk;                     /* --chunk K: inference steps computed at a time; 0: all */
    int math;                      /* --math exact|fast: MATH_*; MATH_DEFAULT: the target's */
    int precision;                 /* --precision: PREC_* (PREC_FP32 by default) */
    long train_limit, test_limit;
    double dt;                     /* --dt SECONDS: NIR's step; 0: its default */
    int nir_convention;            /* --nir-convention: a NirConvention (0: nir) */
    const char *format;            /* export --format onnx|nir; NULL: from -o's suffix */
} Options;

/* The command line into o (options.c): 0, or the exit status after a message. */
int drv_parse_args(int argc, char **argv, Options *o);
int drv_is_onnx(const char *path);
int drv_is_nir(const char *path);
/* Parses the built-in models (std) and the model file with --neurons
   (user); an ONNX model is converted first. 0, or -1 after reporting. */
int drv_parse_model(Arena *a, Options *o, struct Node **std, struct Node **user);
/* After sema: the ONNX model's initializers as the network's weights
   (o->onnx_data, used unless --weights is given). 0 when the model is not
   ONNX; -1 after reporting. */
int drv_bind_onnx_weights(Arena *a, Options *o, const IrGraph *g);
/* Writes the ONNX model's weights as a safetensors file; -1 after reporting. */
int drv_write_onnx_weights(Arena *a, const Options *o, const IrGraph *g, const char *path);
/* The values of every parameter in one block of g->param_floats floats (each
   at its memplan offset): --init SEED, then the tensors of --weights (all
   required without --init), else the ONNX model's own. malloc'd; NULL after
   reporting. */
float *drv_param_block(const IrGraph *g, const Options *o);
/* The same, copied to the start of a workspace; -1 after reporting. */
int drv_params(const IrGraph *g, const Options *o, float *ws);

/* Read, parse and check the model: the graph before any pass. */
IrGraph *drv_front_end(Arena *a, Options *o);
/* The batch, the records, training, and the passes. */
IrGraph *drv_middle_end(Arena *a, Options *o, IrGraph *g);
/* Generates the target's files into dir (created if needed), atomically. */
int drv_generate(const IrGraph *g, Options *o, const char *dir, const float *embedded);
int drv_ensure_dir(const char *dir);
/* Removes the temporary files (".NAME.tmpPID.K") that writers killed while
   writing left in folder dir, saying so on standard error. */
void drv_remove_stale(const char *dir);
/* The folder a path lies in: "." for a bare name, "/" for "/x", "a" for "a/b/". */
const char *drv_folder_of(Arena *a, const char *path);
/* Writes a file atomically; reports and returns -1 on failure. */
int drv_write(const char *path, const char *data, size_t len);
/* A result file must be creatable: not a folder, in a folder where a file
   can really be created (a probe file is made and removed); -1 after
   reporting. Checked before anything is built. */
int drv_check_result_path(Arena *a, const char *path);
/* An output folder (train's -o): if it exists, files must be creatable in
   it; if not, it must be creatable in its parent. -1 after reporting. */
int drv_check_out_dir(Arena *a, const char *dir);
/* Every output the options name (--output, --record files, --input-grad,
   --output-steps, --step-log, --keep-build), checked as above
   before any work; -1 after reporting each that fails. */
int drv_check_outputs(Arena *a, const Options *o);
/* An input file must exist and be a regular file (not a folder, a device
   or a pipe); -1 after reporting, with a message saying which. */
int drv_check_input_path(const char *path);
char *drv_lower(Arena *a, const char *s);

/* Reads --input for run and grad (a float array, or event lists binned into
   frames for `encode events`) and runs the front end; its graph, or NULL
   after reporting. */
IrGraph *drv_read_input(Arena *a, Options *o, SnnrtTensor *x);
/* The batch of an input tensor for graph g, or -1 after reporting that its
   shape does not fit ([B, ...] for direct encoding, [T, B, ...] for sequence). */
int drv_input_batch(Arena *a, const IrGraph *g, const SnnrtTensor *x, const char *path);
/* The seed of snnc run's and grad's random numbers (the spikes of `encode
   rate`, grad's dropout masks): --seed; without it 0 for a rate-encoded
   input (the same spikes whatever the weights), else --init's seed. */
unsigned long long drv_run_seed(const Options *o, const IrGraph *g);

/* Reads and checks a weights file against g (every tensor present unless
   allow_missing, shapes, finite values) into a block of all parameters in
   memplan order, where absent tensors keep their values; -1 after
   reporting. */
int drv_read_weights_into(const IrGraph *g, const char *path, int allow_missing, float *w);

int cmd_run(Arena *a, Options *o);
int cmd_grad(Arena *a, Options *o);
int cmd_train(Arena *a, Options *o);
int cmd_export(Arena *a, Options *o);
/* Every parameter as --init SEED sets it, at its memplan offset in w. */
void drv_init_params(const IrGraph *g, unsigned long long seed, float *w);
int cmd_eval(Arena *a, Options *o);

#endif
