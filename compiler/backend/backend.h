/*
 * backend.h: the interface every target implements (docs/targets.md).
 *
 * The middle end decides what runs and in what order (the schedule) and
 * where every value lives (the memory plans of inference and training);
 * a target decides only how each piece is written for its machine. A
 * target is one folder under compiler/backend/ that fills in a Target:
 *   - a table of kernel emitters, one forward and one backward per op,
 *     indexed by IrOp and generated from ops.def; a missing entry means the
 *     target lacks the op, which target_generate reports (never a silent
 *     fallback);
 *   - the micro-kernels the kernels call (matrix product, convolution);
 *   - the public API, written from the schedule;
 *   - how its code is built and loaded, so that snnc run, train and grad
 *     can call it.
 * target_generate (backend.c) drives every target the same way. Adding a
 * target is a folder and one line in backend.c's table; no pass and no
 * other target changes.
 */
#ifndef SNNC_BACKEND_H
#define SNNC_BACKEND_H

#include "ir.h"

typedef struct CgenOptions {
    int static_ws;           /* --static: a static workspace instead of the caller's */
    const float *embedded;   /* --embed-weights: all parameters, in memplan order; NULL: load at run time */
    const char *prefix;      /* C identifier prefix; default: the network's name in lower case */
    int no_loader;           /* no weight loader or initialization: the caller fills the parameters
                                (snnc itself, when it loads the code) */
    int math;                /* --math: MATH_EXACT, MATH_FAST, or MATH_DEFAULT (the target's) */
    int precision;           /* --precision: PREC_FP32 (0), or the operands of the products narrower */
    const char *triple;      /* the llvm target: also an object file for this machine (--triple) */
    const char *cpu, *features; /* its CPU and LLVM feature list, or NULL */
    void *target_ctx;        /* a target's own context to build in (the llvm target: the JIT's
                                LLVMContextRef); NULL: the target makes its own */
} CgenOptions;

/* The arithmetic of generated code (docs/targets.md): exact, the portable
   target's, bit for bit (products multiply then add, the C library's exp,
   log and tanh); fast, fused multiply-adds in the products of the x86
   targets and runtime/snnrt_math.inc's vectorizable functions in neuron
   programs. By default the x86 targets are fast and the portable one exact. */
enum { MATH_DEFAULT, MATH_EXACT, MATH_FAST };

/* The precision of the matrix products' operands (--precision; docs/targets.md):
   fp32, or rounded to tf32, bf16 or fp16 for the GPU's matrix units, the
   sums in fp32 either way. Values, states and parameters stay fp32. */
enum { PREC_FP32, PREC_TF32, PREC_BF16, PREC_FP16, PREC_COUNT };
extern const char *const precision_names[PREC_COUNT]; /* "fp32", "tf32", ... */

/* Generated files, in memory, so that the driver writes them atomically. */
typedef struct GenFile {
    const char *name;
    Buf text;
} GenFile;

#define TARGET_MAX_FILES 4

/* A model built by its target and loaded into snnc: the functions of the
   generated API (docs/generated-code.md) as pointers. The workspaces start
   with the parameters, at their memplan offsets (IrParam.off). */
typedef struct LoadedModel {
    void *handle;  /* the target's own */
    long ws_floats;       /* the inference workspace for the graph's batch */
    long train_ws_floats; /* the training workspace (0 without training code) */
    void (*reset)(void *ws, int batch);
    void (*step)(void *ws, int batch, const float *input, float *output);
    void (*forward)(void *ws, int batch, const float *input, float *output);
    const float *(*probe)(void *ws, int k);
    void (*seed)(void *ws, unsigned long long seed); /* rate encoding only, else NULL */
    void (*train_forward)(void *ws, int batch, const float *input, float *output, int training,
                          unsigned long long seed);
    /* train_forward for the samples from first on of a larger batch; NULL
       where a target has none (train_forward then draws as if first were 0) */
    void (*train_forward_at)(void *ws, int batch, long first, const float *input, float *output, int training,
                             unsigned long long seed);
    /* input: train_forward's, unchanged (the code reads it again) */
    void (*train_backward)(void *ws, int batch, const float *input, const float *doutput, float *dinput);
    void (*train_spikes)(void *ws, int batch, double *spikes, double *neurons);
    float *(*train_grads)(void *ws);
    /* snnc train's loop on a target that keeps the training workspace in
       device memory (cuda; docs/targets.md): open copies the host workspace
       and the optimizer's moments m and v there; stage sends a batch and its
       labels, on a stream of copies, while the step before runs; a step is
       begin (on the batch staged last: the training forward, the loss of
       kind SNNRT_LOSS_*, the backward,
       with `sums` the sums of squares of the gradients in blocks of `block`
       counted through the learnable parameters in order, else sums whose
       total is NaN where a gradient is not finite and 0 otherwise), wait
       (its loss, count of correct predictions and blocks' sums), update (the gradients scaled by
       c where scale, then optimizer SNNRT_SGD/ADAM/ADAMW); get copies it all
       back. Under mpirun, pull copies a step's gradients and the values of
       the parameters that are not learned (buffers) into the host
       workspace, push sends them back once summed over the ranks, and
       select picks the device of a process (its rank on its machine) before
       anything else runs. train_forward_at and train_spikes then work on the
       device's workspace. All NULL where the loop runs on the host's
       workspace. */
    struct {
        void (*open)(const void *ws, const float *m, const float *v, size_t nparam, long block);
        void (*get)(void *ws, float *m, float *v, size_t nparam);
        void (*stage)(int batch, const float *input, const int *labels);
        void (*begin)(int batch, long first, unsigned long long seed, int kind, double lambda, double phi,
                      double correct_rate, double incorrect_rate, int sums);
        void (*wait)(double *loss, int *ncorrect, double *sumsq);
        void (*update)(int scale, float c, int kind, long long step, double lr, double momentum,
                       double weight_decay, int nesterov, double beta1, double beta2, double eps);
        void (*pull)(void *ws);
        void (*push)(const void *ws);
        void (*select)(int local);
    } dev;
} LoadedModel;

/* How snnc builds and loads generated code (snnc run, train, grad). */
typedef struct LoadOptions {
    const char *cc;       /* the C compiler: --cc, else $CC, else the target's default */
    const char *keep;     /* --keep-build DIR: build there and leave the files; NULL: a temporary folder */
    int threads;          /* --threads; 0: every core */
    int math;             /* as CgenOptions.math */
    int precision;        /* as CgenOptions.precision */
    int train_loop;       /* for snnc train's loop and run --eval (the cuda target fills LoadedModel.dev) */
    int quick;            /* a short run (drv_load): the C compilers optimize less (-O2), to build sooner */
} LoadOptions;

typedef struct TargetEmitter TargetEmitter; /* a target's state while it writes code */

/* Writes the code of node i for plan P (&g->infer or &g->trainp). */
typedef void (*KernelEmitter)(TargetEmitter *em, const IrPlan *P, int i);

typedef struct TargetKernels {
    KernelEmitter fwd; /* the output of every step of a range from the inputs */
    KernelEmitter bwd; /* training: the gradients of the inputs and parameters */
} TargetKernels;

typedef struct Target {
    const char *name;
    const char *doc;
    const TargetKernels *kernels; /* IR_NUM_OPS entries; NULL members: not supported */
    /* writing code, called by target_generate in this order */
    TargetEmitter *(*begin)(const IrGraph *g, const CgenOptions *opt);
    void (*gemm)(TargetEmitter *em);        /* the matrix product (dense and conv layers use it) */
    void (*conv)(TargetEmitter *em);        /* what convolutions need besides it */
    void (*api)(TargetEmitter *em);         /* the public functions, over the schedule */
    int (*finish)(TargetEmitter *em, GenFile *out); /* the files (at most TARGET_MAX_FILES), or -1 */
    /* building and loading: 0, or -1 after reporting */
    int (*load)(const IrGraph *g, const LoadOptions *lo, LoadedModel *m);
    void (*unload)(LoadedModel *m);
    /* whether this machine runs the target's code (NULL: always) */
    int (*runs_here)(void);
    /* why this snnc cannot use the target at all (built without what it
       needs), or NULL */
    const char *missing;
    /* a target whose code runs on an accelerator: the floats of device
       memory (its workspace) that g needs for inference (train 0) or
       training (1), or that snnc train's loop adds to the training
       workspace (2: its buffers of batches), -1 for code it cannot write;
       snnc info prints them (NULL: a target of the host) */
    int64_t (*device_floats)(const IrGraph *g, int train);
    /* whether it computes products in the precisions below fp32 (--precision) */
    int precisions;
    /* whether its training backward recomputes the states of the layers that
       the remat pass marks (IrNode.remat) */
    int remat;
} Target;

const Target *target_lookup(const char *name);
void target_list(FILE *f);
/* The fastest target this machine runs: snnc run, train and grad use it
   unless --target says otherwise. */
const Target *target_native(void);
/* Whether t computes in the given precision: 0, or -1 after reporting. */
int target_check_precision(const Target *t, int precision);
/* Reports, at the layer's source line, every op of g that t cannot
   generate (forward, and backward when g is trained); the number of them. */
int target_check(const Target *t, const IrGraph *g);
/* Whether the training code needs node i's backward kernel. */
int target_needs_backward(const IrGraph *g, int i);
/* Batch normalization's sums over a channel in training (the mean, the
   squared deviations, and in the backward sum g and sum g xhat) run in
   TARGET_BN_LANES double lanes, the same order on the CPU targets: the
   rows in order, value k of a row (of the channel's hw) into lane k %
   TARGET_BN_LANES, then lane 0 + lane 1 + ... in order. */
#define TARGET_BN_LANES 8
/* Whether node i's backward must run even when dL/dinput is not asked for:
   it has learnable parameters (neuron parameters included), or an input
   whose gradient leads to some. Otherwise it runs only for dL/dinput. */
int target_backward_always(const IrGraph *g, int i);
/* The instruction of neuron node i's program that probe k records, or -1. */
int target_probe_inst(const IrGraph *g, int i, int k);
/* The roots of neuron node i's code in plan P, the values a kernel writes
   (target_eq_live keeps what reaches them), *n of them, -1 where none:
   forward, the output, each state's next value, then per probe the
   recorded instruction (inference only); backward, dL/dx (when the input
   needs its gradient), each state's adjoint, each parameter's share. */
int *target_neuron_roots(const IrGraph *g, const IrPlan *P, int i, int fwd, int *n);
/* Writes g's code with t (check, begin, the micro-kernels, every node's
   kernels, the API), short of its files: the emitter, or NULL after
   reporting. Targets that load their code without files (llvm) call it. */
TargetEmitter *target_emit(const Target *t, const IrGraph *g, const CgenOptions *opt);
/* Generates g's files with t: the number of files, or -1 after reporting. */
int target_generate(const Target *t, const IrGraph *g, const CgenOptions *opt, GenFile *out);
/* What node i is and where it comes from, for the comment or note that
   opens its code: "h1 = neuron LIF fc1 -> [128]: mlp.snn line 12". */
const char *target_node_text(const IrGraph *g, int i);
/* The last component of a path, safe inside a C comment. */
const char *target_clean_name(Arena *a, const char *path);
/* The instructions of a neuron program that reach one of its roots
   (instruction indices; -1 entries are skipped): 1 each, else 0. */
unsigned char *target_eq_live(Arena *a, const EqCode *code, const int *roots, int nroots);
/* The header of the generated API (docs/generated-code.md), <net>.h, the
   same for every target: written to h; *ws_floats gets the inference
   workspace's size, *train_ws_floats the training workspace's (0 when g
   is not trained) and *prefix the lower-case prefix of its names. 0, or
   -1 after reporting. */
int capi_header(const IrGraph *g, const CgenOptions *opt, Buf *h, long long *ws_floats, long long *train_ws_floats,
                const char **prefix);
/* <net>_weights.c: the C target's <net>_load_weights and <net>_init_weights
   in a C file of their own, for a target that writes no C (its code in the
   file `beside`) whose workspace and header are the C target's. */
int capi_weights_file(const IrGraph *g, const CgenOptions *opt, const char *beside, GenFile *out);

extern const Target target_c;
extern const Target target_avx512;
extern const Target target_avx2;
extern const Target target_llvm; /* compiler/backend/llvm/: without LLVM, a stub that says so */
extern const Target target_cuda;

/* Texts of runtime/snnrt_stload.inc and snnrt_math.inc, embedded at build time. */
extern const char snnrt_stload_inc[];
extern const unsigned long snnrt_stload_inc_len;
extern const char snnrt_math_inc[];
extern const unsigned long snnrt_math_inc_len;

#endif
