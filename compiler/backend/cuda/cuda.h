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
 *   cuda.c      the files' opening, the API over the schedule, the
 *               target's table and what snnc run can do with it.
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

/* The host function of node i: "<net>_fwd3" (what the API calls) and the
   kernel it launches, "<net>_fwd3_k". */
const char *cu_kernel(Emit *e, int i);
/* Opens a kernel of n threads (a C expression of B) for node i: comment,
   signature (ws, B, from, to), the thread index i and the test i < n. */
void cu_open_kernel(Emit *e, int i, const char *n);
/* Opens and closes node i's host function, which returns 0 or -1 when a
   cuBLAS call failed. */
void cu_open_host(Emit *e, int i);
void cu_close_host(Emit *e);
/* A launch of node i's kernel over n threads from its host function. */
void cu_launch(Emit *e, int i, const char *n);

void cu_gemm(TargetEmitter *em);
void cu_conv(TargetEmitter *em);
void cu_dense_fwd(TargetEmitter *em, const IrPlan *P, int i);
void cu_conv_fwd(TargetEmitter *em, const IrPlan *P, int i);
void cu_pool_fwd(TargetEmitter *em, const IrPlan *P, int i);
void cu_eltwise_fwd(TargetEmitter *em, const IrPlan *P, int i);
void cu_batchnorm_fwd(TargetEmitter *em, const IrPlan *P, int i);
void cu_delay_fwd(TargetEmitter *em, const IrPlan *P, int i);
void cu_neuron_fwd(TargetEmitter *em, const IrPlan *P, int i);
/* The device scratch after the inference plan's region (im2col and the
   convolutions' products): sets e->iscratch, e->col and e->obuf. */
void cu_scratch(Emit *e);

#endif
