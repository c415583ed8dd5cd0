/*
 * ll.h: what the parts of the llvm target share (docs/targets.md).
 *
 * The target builds LLVM IR through LLVM's C API (LLVM-C, LLVM 16) over
 * the same memory plans as the portable C target, inference and training:
 * the same workspace layouts, the same offsets, the same public functions,
 * so that the header of the C target (capi_header) describes its code and
 * snnc loads it into the same LoadedModel. Its parts:
 *   llemit.c   the builder's helpers (constants, loops, addresses in the
 *              plan), the kernels of the synaptic and elementwise ops;
 *   llconv.c   the kernels of conv2d, the pools and batchnorm;
 *   llneuron.c the loop of a neuron program on vectors of neurons;
 *   llmath.c   --math fast's exp, log and tanh on vectors;
 *   llapi.c    the module, the public API over the schedule, the files;
 *   lltrain.c  the training API over the training plan's schedule;
 *   lltarget.c the table of kernels, and the JIT (ORC LLJIT) that loads
 *              the code into snnc.
 * Dense and neuron kernels split their outputs between OpenMP's threads
 * (ll_launch: GOMP_parallel, declared weak, so that an object file links
 * without OpenMP and then runs on one thread).
 * Only this folder includes LLVM's headers.
 *
 * The arithmetic is the C target's --math exact, operation for operation
 * (the backward kernels of convolutions sum their gradients in another
 * order than the C target's products):
 * products multiply then add in k order (no fused multiply-add: LLVM
 * contracts nothing without the `contract` flag), neuron programs call the
 * C library's expf, logf, tanhf, powf, fminf and fmaxf, so spikes and
 * states are the same bits (a zero may differ in sign only). --math fast
 * changes only the neuron programs' exp, log, tanh, fmin and fmax: those of
 * runtime/snnrt_math.inc, on whole vectors (llmath.c).
 *
 * Every value and block is named after its layer ("h1.t", "h1.body"); every
 * kernel is a function <net>_fwd<node> (training: <net>_train_fwd<node>
 * and <net>_train_bwd<node>) with the node's source line in its
 * !snnc.node metadata, so that the module's text reads like the C target's.
 */
#ifndef SNNC_LL_H
#define SNNC_LL_H

#include <llvm-c/Core.h>
#include <llvm-c/Error.h>
#include <llvm-c/TargetMachine.h>

#include "backend.h"

/* Neurons (and elements) per vector in the loops of neuron programs:
   8 floats, one AVX register, two of NEON or SSE (LLVM splits wider
   vectors for narrower machines). */
#define LL_LANES 8

struct TargetEmitter {
    const IrGraph *g;
    const CgenOptions *opt;
    Arena *a;
    const char *p;          /* prefix, lower case */
    long long ws_floats;    /* the inference workspace (the C target's, scratch included) */
    long long train_ws_floats; /* the training workspace (the C target's), 0 without training */
    Buf header;             /* <net>.h */
    LLVMContextRef ctx;
    int own_ctx;            /* the context is ours to dispose of */
    LLVMModuleRef mod;
    LLVMBuilderRef b;
    LLVMTypeRef f32, f64, i1, i32, i64, ptr, vf; /* vf: <LL_LANES x float> */
    LLVMTypeRef kfn;        /* kernels: void (ptr ws, i64 B, i32 from, i32 to, i32 flag, ptr input,
                               i32 part, i32 parts); the flag is `training` forward, `dx` backward
                               (which inputs want their gradient); input: the caller's, which
                               training reads in place (IrBufs.vext; null at inference); a kernel
                               that splits (ll_splits) does share `part` of `parts` of the work,
                               the others all of it at part 0 */
    LLVMTypeRef bkfn;       /* backward kernels: ptr doutput, ptr dinput (IrBufs.gext) after input */
    LLVMTypeRef ctxty;      /* what ll_launch passes to the threads: the kernel and its arguments */
    LLVMValueRef tramp[2];  /* the functions the threads run: a forward, a backward kernel (or NULL) */
    unsigned md_node;       /* the kind of !snnc.node */
    LLVMValueRef *kern;     /* per node: its inference kernel, or NULL */
    LLVMValueRef *tkern;    /* per node: its training forward, or NULL */
    LLVMValueRef *bkern;    /* per node: its backward, or NULL */
    LLVMValueRef encode;    /* encode rate or latency: the encoder of one step (llapi.c), else NULL */
    LLVMValueRef *weight;   /* --embed-weights: per parameter, its constant array; else NULL */
    LLVMValueRef static_ws; /* --static: <net>_static_workspace, for a null workspace; else NULL */
    /* the function being written */
    const IrPlan *P;        /* the plan its addresses are in (&g->infer or &g->trainp) */
    LLVMValueRef fn, ws, B;
    LLVMValueRef input;     /* the caller's input in fn: a kernel's argument, or the API function's */
    const char *layer;      /* what names its values and blocks */
    int kfwd;               /* fn is a forward kernel (its part and parts are arguments 6 and 7) */
};

typedef TargetEmitter Ll;

/* ---- values ---- */

/* "<layer>.<what>", the name of a value or block. */
const char *ll_name(Ll *L, const char *what);
LLVMValueRef ll_i32(Ll *L, long long v);
LLVMValueRef ll_i64(Ll *L, long long v);
/* A float constant, or a vector of lanes of it (lanes 1: a scalar). */
LLVMValueRef ll_flt(Ll *L, float f, int lanes);
/* The value v (a scalar) in every lane of a vector (lanes 1: v). */
LLVMValueRef ll_splat(Ll *L, LLVMValueRef v, int lanes);
/* Declares (once) and calls a function of the C library or an intrinsic
   of one float operand (or two: b not NULL); vectors call it lane by lane
   (the C library's) or whole (intrinsics: name starts "llvm."). */
LLVMValueRef ll_call_math(Ll *L, const char *name, LLVMValueRef a, LLVMValueRef b, int lanes);
/* Under --math fast: a call of the module's branch-free vector version
   (llmath.c) of the C library's expf, logf, tanhf, fminf or fmaxf; NULL
   for any other name. */
LLVMValueRef ll_fast_math(Ll *L, const char *name, LLVMValueRef a, LLVMValueRef b, int lanes);
/* A call of a function of the module. */
LLVMValueRef ll_call(Ll *L, LLVMValueRef fn, LLVMValueRef *args, unsigned n);
/* The generated code's one random number generator (capi.c gen_mix):
   splitmix64's mix of a 64-bit value, and the uniform in [0, 1) of a hash
   (its top 24 bits over 2^24). */
LLVMValueRef ll_mix(Ll *L, LLVMValueRef z);
LLVMValueRef ll_unit(Ll *L, LLVMValueRef h);

/* ---- control ---- */

/* A counted loop: for (iv = from; iv < to; iv += step), its blocks named
   after the layer and `what`. */
typedef struct LlLoop {
    LLVMBasicBlockRef head, body, exit;
    LLVMValueRef iv;
    long long step;
} LlLoop;
void ll_loop_open(Ll *L, LlLoop *lp, LLVMValueRef from, LLVMValueRef to, long long step, const char *what);
void ll_loop_close(Ll *L, LlLoop *lp);
/* if (c) { ... } [else { ... }]: ll_if opens the then-block, ll_else the
   else-block (when has_else), ll_endif joins them. */
typedef struct LlIf {
    LLVMBasicBlockRef then, other, join;
} LlIf;
void ll_if(Ll *L, LlIf *f, LLVMValueRef c, const char *what, int has_else);
void ll_else(Ll *L, LlIf *f);
void ll_endif(Ll *L, LlIf *f);

/* ---- memory ---- */

/* Pointer to float `off` (an i64 value) of the workspace. */
LLVMValueRef ll_ws(Ll *L, LLVMValueRef off, const char *what);
/* Whether the function being written is in the training plan. */
int ll_train(Ll *L);
/* The same for an offset of the plan L->P: after the parameters (at 0
   when they are embedded), or in training after the parameters and their
   gradients (the C target's cp_base). */
LLVMValueRef ll_plan(Ll *L, long long off, const char *what);
/* Pointer to node i's value at step t (an i32 value) for the batch of the
   function: the slot of step t in its buffer (cp_at of the C target). */
LLVMValueRef ll_at(Ll *L, int i, LLVMValueRef t, const char *what);
/* The same for dL/d(node i's value) (training). */
LLVMValueRef ll_grad_at(Ll *L, int i, LLVMValueRef t, const char *what);
/* Pointer to the 32-bit words of node i's spikes at step t when training
   keeps them as bits (P->at[i].bits): bit k of word w is element 32 w + k. */
LLVMValueRef ll_bits_at(Ll *L, int i, LLVMValueRef t, const char *what);
/* Element e (an i64 value) of spikes kept as bits, as 1.0 or 0.0. */
LLVMValueRef ll_bit(Ll *L, LLVMValueRef words, LLVMValueRef e);
/* Pointer to parameter k (its constant array under --embed-weights), and
   to its gradient (training). */
LLVMValueRef ll_param(Ll *L, int k);
LLVMValueRef ll_param_grad(Ll *L, int k);
/* p + n floats (n an i64 value). */
LLVMValueRef ll_off(Ll *L, LLVMValueRef p, LLVMValueRef n, const char *what);
/* n floats from src to dst, or zeros to dst (src NULL); n an i64 value. */
void ll_copy(Ll *L, LLVMValueRef dst, LLVMValueRef src, LLVMValueRef n);
/* A load or store of a float (lanes 1) or of a vector, aligned for a float. */
LLVMValueRef ll_load(Ll *L, LLVMValueRef p, int lanes, const char *what);
void ll_store(Ll *L, LLVMValueRef v, LLVMValueRef p);
/* Vector j of arr, an array of vectors of type ty (on the stack). */
LLVMValueRef ll_vec_at(Ll *L, LLVMTypeRef ty, LLVMValueRef arr, int j);

/* ---- kernels ---- */

/* Opens node i's kernel of plan P (its function, entry block,
   !snnc.node), forward or backward, and closes it (ret void). */
void ll_kernel_open(Ll *L, const IrPlan *P, int i, int fwd);
void ll_kernel_close(Ll *L);
/* The kernel's arguments: from, to, and the flag (training, or dx). */
LLVMValueRef ll_from(Ll *L);
LLVMValueRef ll_to(Ll *L);
LLVMValueRef ll_flag(Ll *L);
/* The kernel's share of the work (i32 values): part of parts. */
LLVMValueRef ll_part(Ll *L);
LLVMValueRef ll_parts(Ll *L);
/* [lo, hi) of [0, n) for the kernel's part, in multiples of `align`
   (the last part ends at n): i64 values. */
void ll_share(Ll *L, LLVMValueRef n, long long align, LLVMValueRef *lo, LLVMValueRef *hi);
/* Whether node i's kernels split their work between threads (dense and
   convolution layers, neurons, pools and batchnorm: every output is one
   thread's). */
int ll_splits(const IrGraph *g, int i);
/* Calls node i's kernel fn (forward: 6 arguments, backward: 8) over
   the steps [args[2], args[3]): where it splits and its work is large
   enough, on every thread of OpenMP's (GOMP_parallel, one part each),
   else whole on the calling one. */
void ll_launch(Ll *L, int i, LLVMValueRef fn, LLVMValueRef *args, int fwd);
/* y[0 .. n) += a x[0 .. n) (n an i64 value, a a float): multiply then
   add, on vectors, then the rest one at a time. */
void ll_axpy(Ll *L, LLVMValueRef y, LLVMValueRef a, LLVMValueRef x, LLVMValueRef n);

void ll_dense_fwd(TargetEmitter *em, const IrPlan *P, int i);
void ll_eltwise_fwd(TargetEmitter *em, const IrPlan *P, int i);
void ll_delay_fwd(TargetEmitter *em, const IrPlan *P, int i);
void ll_neuron_fwd(TargetEmitter *em, const IrPlan *P, int i);
void ll_conv_fwd(TargetEmitter *em, const IrPlan *P, int i);
void ll_pool_fwd(TargetEmitter *em, const IrPlan *P, int i);
void ll_batchnorm_fwd(TargetEmitter *em, const IrPlan *P, int i);
void ll_gemm(TargetEmitter *em);
void ll_dense_bwd(TargetEmitter *em, const IrPlan *P, int i);
void ll_eltwise_bwd(TargetEmitter *em, const IrPlan *P, int i);
void ll_delay_bwd(TargetEmitter *em, const IrPlan *P, int i);
void ll_conv_bwd(TargetEmitter *em, const IrPlan *P, int i);
void ll_pool_bwd(TargetEmitter *em, const IrPlan *P, int i);
void ll_batchnorm_bwd(TargetEmitter *em, const IrPlan *P, int i);
void ll_neuron_bwd(TargetEmitter *em, const IrPlan *P, int i);
/* ---- the API (llapi.c) ---- */

/* Opens a public function <net>_<name>, its arguments named, in the
   inference plan (L->P). */
LLVMValueRef ll_api_open(Ll *L, const char *name, LLVMTypeRef ret, LLVMTypeRef *args, const char *const *names,
                         unsigned n);
/* The batch argument, within 1 .. the largest batch (i64). */
LLVMValueRef ll_clamp_batch(Ll *L, LLVMValueRef batch);
/* A constant global of the module, private unless `public`. */
LLVMValueRef ll_global(Ll *L, const char *name, LLVMValueRef init, int public);
/* The input's steps [t0, t1) (i32 values) in plan L->P encoded from the
   intensities at `input` for the samples from `first` on (i64) with `seed`
   (i64): the C target's encoder, bit for bit. */
void ll_encode_steps(Ll *L, LLVMValueRef t0, LLVMValueRef t1, LLVMValueRef input, LLVMValueRef first,
                     LLVMValueRef seed);
/* The training API (lltrain.c): train_forward(_at), train_backward,
   train_spikes, train_params, train_grads, train_workspace_floats. */
void ll_train_api(Ll *L);

/* A target machine for triple, cpu and features (NULL: generic), or for
   this computer (triple NULL: its CPU and features); NULL after reporting. */
LLVMTargetMachineRef ll_machine(const char *triple, const char *cpu, const char *features);
/* Sets the module's triple and data layout for tm and runs default<O2>;
   0, or -1 after reporting. */
int ll_optimize(LLVMModuleRef mod, LLVMTargetMachineRef tm);
/* Reports an LLVM error (and frees it): "llvm target: what: message"; -1. */
int ll_error(LLVMErrorRef err, const char *what);

TargetEmitter *llapi_begin(const IrGraph *g, const CgenOptions *opt);
void llapi_api(TargetEmitter *em);
int llapi_finish(TargetEmitter *em, GenFile *out);
/* Disposes of the emitter's builder, and of its module and context unless
   keep_module. */
void llapi_dispose(TargetEmitter *em, int keep_module);

#endif
