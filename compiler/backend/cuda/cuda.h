/*
 * cuda.h: what the parts of the CUDA target share.
 *
 * The target (--target cuda) writes <net>.h and <net>.cu: inference on an
 * NVIDIA GPU, on device pointers, with a CUDA stream and a cuBLAS handle
 * (docs/generated-code.md). It uses the portable target's plans, emitter
 * and neuron-program statements (compiler/backend/c/c.h): the workspace is
 * laid out exactly as the C target's, so cp_at, cp_param and cg_eq_emit
 * write the same expressions. Its parts:
 *   cukernels.c the kernels of every op, each a `__global__` function and
 *               the host function that launches it (or calls cuBLAS);
 *   cubackward.c the backward kernels of the training plan (the
 *               convolution's are in cukernels.c, with its forward);
 *   cutrain.c   the training API over the schedule, the losses and the
 *               optimizers;
 *   cuhalf.c    the 16-bit values of --precision bf16 and fp16 in training;
 *   cuda.c      the files' opening, the API over the schedule, the
 *               target's table;
 *   cuhost.c    the host API that snnc run and grad load the code
 *               through, and the build with nvcc.
 *
 * Every kernel is written in the common subset of C99 and CUDA C++, through
 * a few macros (<NET>_GLOBAL, <NET>_TID, <NET>_LAUNCH), so that the same
 * file compiles with nvcc for the GPU and, with -DSNNC_CUDA_EMULATE, with
 * a C compiler for the CPU, where a launch is a loop over the thread
 * indices and the matrix products plain loops: the kernels' logic is
 * tested on any machine (tests/backend/test_cuda.py).
 */
#ifndef SNNC_CUDA_H
#define SNNC_CUDA_H

#include "../c/c.h"

/* Threads per block of every launch. */
#define CUDA_THREADS 256

/* The host function of node i for plan P, forward (fwd) or backward:
   "<net>_fwd3", "<net>_train_fwd3", "<net>_train_bwd3" (what the API
   calls), and the kernel it launches, with "_k" added. */
const char *cu_kernel(Emit *e, const IrPlan *P, int i, int fwd);
/* Opens a kernel of n threads (a C expression of B) for node i: comment,
   signature (ws, B, from, to, flag: training in a forward, which inputs
   need their gradient in a backward), the thread index i and the test
   i < n. */
void cu_open_kernel(Emit *e, const IrPlan *P, int i, int fwd, const char *n);
/* Opens and closes node i's host function, which returns 0 or -1 when a
   cuBLAS call failed. */
void cu_open_host(Emit *e, const IrPlan *P, int i, int fwd);
void cu_close_host(Emit *e);
/* A launch of node i's kernel over n threads from its host function. */
void cu_launch(Emit *e, const IrPlan *P, int i, int fwd, const char *n);
/* The same for another kernel of node i, "<host>_<part>k" (part "sum_"),
   whose launch passes the expression flag as its flag. */
void cu_open_part(Emit *e, const IrPlan *P, int i, int fwd, const char *part, const char *n);
void cu_launch_part(Emit *e, const IrPlan *P, int i, int fwd, const char *part, const char *n, const char *flag);
/* A host function that only launches node i's kernel over n threads. */
void cu_host_of_kernel(Emit *e, const IrPlan *P, int i, int fwd, const char *n);
/* A kernel of a thread per element, `<net>_NAME(PARAMS)` under the comment
   doc (its lines after the first start with three spaces): thread j < n
   runs the statement stmt. */
void cu_map_kernel(Emit *e, const char *doc, const char *name, const char *params, const char *n, const char *stmt);
/* Neuron node i's leaves: the states in registers s0, s1, ..., x[i], the
   parameters indexed for neuron i as the portable target indexes them. */
void cu_neuron_leaves(Emit *e, int i, CgLeaves *lv);
/* Pointer to neuron node i's state k at the start of step t (C expression). */
const char *cu_state_at(Emit *e, const IrPlan *P, int i, int k, const char *t);

void cu_gemm(TargetEmitter *em);
/* The emulated body of a product function (M, N, K, a, lda, ta, b, ldb, tb,
   c, ldc, beta in scope): "#ifdef SNNC_CUDA_EMULATE", loops that sum each
   element's terms load(a) load(b) in k order into s, the lines store, and
   "return 0;". */
void cu_emulated_product(Emit *e, const char *load, const char *const *store, int nstore);
void cu_conv(TargetEmitter *em);
void cu_dense_fwd(TargetEmitter *em, const IrPlan *P, int i);
void cu_conv_fwd(TargetEmitter *em, const IrPlan *P, int i);
void cu_pool_fwd(TargetEmitter *em, const IrPlan *P, int i);
void cu_eltwise_fwd(TargetEmitter *em, const IrPlan *P, int i);
void cu_batchnorm_fwd(TargetEmitter *em, const IrPlan *P, int i);
void cu_delay_fwd(TargetEmitter *em, const IrPlan *P, int i);
void cu_neuron_fwd(TargetEmitter *em, const IrPlan *P, int i);
/* The device scratch after a plan's region (im2col and the convolutions'
   products; in training im2col's gradient too): sets e->col, e->obuf,
   e->iscratch (inference's size), e->dcol and e->tscratch (training's). */
void cu_scratch(Emit *e);

/* ---- training (cubackward.c, cutrain.c) ---- */

void cu_dense_bwd(TargetEmitter *em, const IrPlan *P, int i);
void cu_conv_bwd(TargetEmitter *em, const IrPlan *P, int i);
void cu_pool_bwd(TargetEmitter *em, const IrPlan *P, int i);
void cu_batchnorm_bwd(TargetEmitter *em, const IrPlan *P, int i);
/* Batch normalization's forward in the training plan: the batch's
   statistics in training, the running ones otherwise. */
void cu_batchnorm_train_fwd(Emit *e, const IrPlan *P, int i);
/* The parts (K) into which the training kernels split each of `sums` sums
   of `terms` terms (at most), to add them on many threads and then the
   parts in order, in double (batch normalization's per channel, the bias
   gradients): the square root of terms, so that the longest chain of
   additions, a part's terms and then the parts, is shortest; at most
   16384 parts in all. */
long long cu_parts(long long terms, long long sums);
/* Batchnorm x's parts (cu_parts at the largest batch) and their scratch,
   in floats, after the training plan's region (K x C pairs of doubles, 3
   floats a channel). */
long long cu_bn_parts(Emit *e, const IrNode *x);
int64_t cu_bn_scratch(Emit *e, const IrNode *x);
void cu_eltwise_bwd(TargetEmitter *em, const IrPlan *P, int i);
void cu_delay_bwd(TargetEmitter *em, const IrPlan *P, int i);
void cu_neuron_bwd(TargetEmitter *em, const IrPlan *P, int i);

/* The training workspace after the training plan's region, as offsets
   from the plan's base (cp_ws): where a dense layer unpacks a step of
   spikes kept as bits, the spike counter, the loss's terms (doubles),
   the optimizer's two moments, and the end. */
enum { CU_TS_UNBITS, CU_TS_SPIKES, CU_TS_LOSS, CU_TS_OPT_M, CU_TS_OPT_V, CU_TS_END };
int64_t cu_train_at(Emit *e, int what);
static inline int64_t cu_train_unbits(Emit *e) { return cu_train_at(e, CU_TS_UNBITS); }
/* The training workspace, in floats. */
long long cu_train_ws_floats(Emit *e);
/* The training's helpers in the opening of <net>.cu (after the others). */
void cu_train_opening(Emit *e);
/* The training API (<net>_train_forward, ...) and its header. */
void cu_train_api(Emit *e);
void cu_train_header(Emit *e);

/* Shared by the API's parts (cuda.c): a call of node i's host function for
   plan P over steps [from, to) with flag; the forward of every group over
   [c0, c1), groups computed once when `once` holds; the opening of an API
   function (ws, st, B, err), its closing (it returns its status) and the
   binding of cuBLAS to its stream. */
void cu_call(Emit *e, const IrPlan *P, int i, int fwd, const char *from, const char *to, const char *flag);
void cu_run_groups(Emit *e, const IrPlan *P, const char *c0, const char *c1, const char *once, const char *flag);
void cu_api_head(Emit *e, const char *sig);
void cu_api_tail(Emit *e);
void cu_bind(Emit *e);
/* Parameter k's address in host code, for a launch's argument or cuBLAS:
   cp_param's, or under --embed-weights its device address (<net>_wd[k]);
   kernels name an embedded parameter itself (cp_param). */
const char *cu_param_host(Emit *e, int k);
int cu_has_products(const IrGraph *g);
/* The input of steps [t0, t1) (C expressions) encoded into spikes from the
   intensities `input` (encode rate and latency), as the samples from
   `first` on of a batch, with `seed`; slot: the inference workspace's
   encoder slot, whose seed and steps since reset replace seed and add to
   the step, or NULL. */
void cu_encode_steps(Emit *e, const IrPlan *P, const char *t0, const char *t1, const char *first, const char *seed,
                     const char *slot);

/* ---- 16-bit values in training (cuhalf.c) ---- */

/* The conversions to and from 16 bits and the kernels of 16-bit products
   in the opening of <net>.cu, where the training plan stores values in 16
   bits (IrBufs.shalf, vhalf); nothing otherwise. */
void cu_half_opening(Emit *e);
/* The training scratch that the dense layers of 16-bit products need. */
int64_t cu_half_scratch(Emit *e);
/* The host functions of a dense layer whose product is stored in 16 bits
   (IrBufs.vhalf). */
void cu_half_dense_fwd(Emit *e, const IrPlan *P, int i);
void cu_half_dense_bwd(Emit *e, const IrPlan *P, int i);
/* The kernel of part sums of a dense layer's bias gradient: colpart_k, or
   with half colpart16_k, which reads a 16-bit gradient. */
void cu_colpart(Emit *e, int half);

/* ---- snnc run and grad (cuhost.c) ---- */

/* The host API (<net>_host_forward, ...: host memory in and out, for
   LoadedModel), written into <net>.cu when snnc loads the code. */
void cu_host_api(Emit *e);
/* The device memory, in floats, that snnc train's loop (the host API's
   host_dev_* functions) adds to the training workspace. */
long long cu_loop_floats(Emit *e);
/* Whether SNNC_CUDA_EMULATE asks for the code built for the CPU. */
int cu_emulated(void);
/* Builds t's code for g with nvcc (or emulated, with the C compiler) and
   loads it through the host API: 0, or -1 after reporting. */
int cu_build_and_load(const Target *t, const IrGraph *g, const LoadOptions *lo, LoadedModel *m);

#endif
