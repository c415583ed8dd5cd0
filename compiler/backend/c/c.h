/*
 * c.h: what the parts of the portable C target share.
 *
 * The target (--target c) writes <net>.h and <net>.c: C99 that needs only
 * libc and libm, with every shape, the timesteps and all constants baked
 * in. Its parts:
 *   cemit.c    the emitter (one printf per line of output, with the
 *              indentation kept), and neuron programs as C statements;
 *   ckernels.c the kernels of the synaptic ops, forward and backward, and
 *              the micro-kernels they call (the matrix product, im2col);
 *   cneuron.c  the loop of a neuron program over the steps, forward and
 *              backward;
 *   capi.c     the header, the weights, and the public API over the schedule;
 *   ctarget.c  the target's table, and building and loading its code.
 *
 * Every kernel is written for one memory plan: `<net>_fwdN` for the
 * inference plan, `<net>_train_fwdN` and `<net>_train_bwdN` for the
 * training plan, from the same emitter. Kernels take the whole workspace,
 * the batch and a range of steps [from, to); their pointers come from the
 * plan (cp_at below). Loops over neurons, rows and channels are shared among
 * threads with OpenMP where the work is large enough; the pragmas are
 * written through the <NET>_OMP macro, which is empty without -fopenmp, so
 * the same C builds and runs single-threaded anywhere. Threads never share a
 * sum: results are the same bits for any number of threads.
 */
#ifndef SNNC_C_H
#define SNNC_C_H

#include "backend.h"

/* The instruction set the code is written for: the portable C target's
   plain C, or the x86 targets' intrinsics (compiler/backend/x86/). */
enum { ISA_C, ISA_AVX2, ISA_AVX512 };

/* The rows of the matrix product's block of C on each instruction set (the
   CgTile's mr), by which the scratch is sized. */
#define TILE_ROWS(isa) ((isa) == ISA_AVX512 ? 12 : (isa) == ISA_AVX2 ? 6 : 4)

typedef struct Emit {
    Buf *b;
    int isa;       /* ISA_C, ISA_AVX2, ISA_AVX512 */
    int fast;      /* MATH_FAST in effect: fused products (x86), snnrt_math.inc in neurons */
    int ind;
    const IrGraph *g;
    const CgenOptions *opt;
    const char *p; /* prefix, lower case */
    const char *P; /* prefix, upper case */
    int64_t maxb;  /* the largest batch */
    Buf h, c;      /* the files */
    int64_t iscratch, tscratch; /* the scratch of each plan, after the plan's region */
    int64_t col, dcol, obuf, packb, bsum; /* scratch offsets from a plan's scratch start */
    int64_t pack;  /* floats of the matrix product's packed block (<NET>_PACK) */
    int64_t acache; /* floats of the cache of A's packed blocks after it (<NET>_ACACHE) */
} Emit;

struct TargetEmitter {
    Emit e;
};

void cg_line(Emit *e, const char *fmt, ...) PRINTF_LIKE(2, 3);
void cg_blank(Emit *e);
/* A float literal that reads back as f ("1.5f", "INFINITY"). */
const char *cg_flt(Emit *e, float f);
/* The last component of a path, safe inside a C comment. */
const char *cg_clean_name(Emit *e, const char *path);
/* The comment that opens the code of node i: what it is and its source line. */
void cg_comment_node(Emit *e, int i);

/* ---- plans ---- */

/* Where a plan's region starts in the workspace, in floats: after the
   parameters (none when they are embedded); in training after their
   gradients too. */
int64_t cp_base(Emit *e, const IrPlan *P);
/* Where the plan's scratch starts (after its region). */
int64_t cp_scratch(Emit *e, const IrPlan *P);
/* "ws + OFF" for an offset of plan P. */
const char *cp_ws(Emit *e, const IrPlan *P, int64_t off);
/* Pointer to node i's value ('v') or its gradient ('g') at step `t` (a C
   expression) for a batch of B: the slot of step t in its buffer. */
const char *cp_at(Emit *e, const IrPlan *P, int i, char what, const char *t);
/* The same for a value kept as bits (IrBufs.bits, training): a pointer to
   the uint32_t words of step t (its element n is bit n % 32 of word n / 32). */
const char *cp_bits_at(Emit *e, const IrPlan *P, int i, const char *t);
/* The same for a product stored in 16 bits (IrBufs.vhalf, training, the
   cuda target's --precision bf16 and fp16): a pointer to the uint16_t
   elements of step t; its gradient lies over it. */
const char *cp_half_at(Emit *e, const IrPlan *P, int i, const char *t);
/* Whether the training plan keeps any value as bits. */
int cp_any_bits(Emit *e);
/* A kernel call of node i of plan P over steps [from, to) (C expressions):
   the forward (fwd 1) or the backward, with the kernel's flag argument. */
typedef void CpCall(Emit *e, const IrPlan *P, int i, int fwd, const char *from, const char *to, const char *flag);
/* The walks of the API functions, shared by the targets that emit C-like
   text (capi.c): the forward of every group over the steps [c0, c1) of a
   chunk, and the backward of every group of the training plan. */
void cp_forward_groups(Emit *e, const IrPlan *P, CpCall *kernel, const char *c0, const char *c1, const char *once,
                       const char *flag);
void cp_backward_groups(Emit *e, CpCall *kernel);
/* Reports, at the layer's line, what training cannot do yet (a batchnorm
   on a recurrent loop); 0 after reporting, 1 when training can go on. */
int cp_train_supported(const IrGraph *g);
/* The batch normalization of channel c (ckernels.c): `training` names the
   flag that selects the batch's statistics, NULL at inference. */
void cp_batchnorm_channel(Emit *e, const IrPlan *P, int i, const char *training);
/* Its backward for channel c: `flag` names the flag that selects dL/dx;
   gx_at, when not NULL, the pointer to declare as gx. */
void cp_batchnorm_channel_bwd(Emit *e, const IrPlan *P, int i, const char *flag, const char *gx_at);
/* The sizes of convolution x (an IR_CONV2D node). */
typedef struct ConvDims {
    long long C, H, W;   /* input */
    long long O, OH, OW; /* output */
    long long P;         /* output pixels, OH x OW */
    long long G, cg, og; /* groups, input and output channels per group */
    long long KK;        /* kernel taps */
} ConvDims;
ConvDims cp_conv_dims(Emit *e, const IrNode *x);
/* The sizes of pool x (an IR_MAXPOOL or IR_AVGPOOL node) of plan P, and
   how its kernels read the input (ckernels.c). */
typedef struct PoolDims {
    long long C, H, W; /* input */
    long long OH, OW;  /* output */
    const char *at;    /* the index of input pixel (iy, ix) of plane rc */
    const char *xin;   /* its value as a float, from xt (a bit of its words when
                          the input is kept as bits) */
    const char *area;  /* the window's size, the average's divisor (a literal) */
} PoolDims;
PoolDims cp_pool_dims(Emit *e, const IrPlan *P, const IrNode *x);
/* The walk over the window of output pixel (oy, ox) of pool x: loops over
   ky and kx (declared by the caller) that skip the padding, with the input
   pixel (iy, ix) in scope. At each pixel a max pool keeps in acc the
   largest value (the first, or a NaN) and, with argmax, its index in arg;
   an average pool runs the statement avg. */
void cp_pool_window(Emit *e, const IrNode *x, const PoolDims *d, int argmax, const char *avg);
/* Whether a dense layer reads spikes kept as bits (the products on bits). */
int cp_dense_reads_bits(Emit *e);
/* The dx argument of training node i's backward, a C expression: the bits
   of the inputs whose gradient is needed (some only when dinput is given). */
const char *cp_dx_arg(Emit *e, int i);
/* Pointer to parameter k (embedded or in the workspace), and to its
   gradient (training). */
const char *cp_param(Emit *e, int k);
const char *cp_grad(Emit *e, int k);
/* Whether plan P is the training plan. */
int cp_train(Emit *e, const IrPlan *P);
/* The kernel's name for plan P: "<net>_fwd3", "<net>_train_fwd3", "<net>_train_bwd3". */
const char *cp_kernel(Emit *e, const IrPlan *P, int i, int fwd);
/* The caller's buffers that node i's training kernel names, as parameters
   (", const float *input, const float *doutput, float *dinput" or a part)
   and as arguments (", input, doutput, dinput"): the input where it reads
   it (IrBufs.vext), and in the backward the caller's gradients
   (IrBufs.gext); "" at inference. */
const char *cp_ext_params(Emit *e, const IrPlan *P, int i, int fwd);
const char *cp_ext_args(Emit *e, const IrPlan *P, int i, int fwd);
void cp_ext_unused(Emit *e, const IrPlan *P, int i, int fwd); /* (void) for each, where unread */
/* Opens a kernel's function (comment, signature, brace) and closes it. */
void cp_open(Emit *e, const IrPlan *P, int i, int fwd);
void cp_close(Emit *e, const char *unused);
/* OpenMP: "<NET>_OMP(omp parallel for schedule(static) if (WORK >= ...))";
   _light for loops of an addition or a store an element (a higher bar). */
void cg_par_for(Emit *e, const char *work);
void cg_par_for_light(Emit *e, const char *work);

/* ---- neuron programs ---- */

/* How the leaves of a neuron program read in C. */
typedef struct CgLeaves {
    const char *x;            /* the input current of the element, e.g. "x[i]" */
    const char *const *state; /* per state: its value at the start of the step */
    const char *const *param; /* per parameter, indexed for the element */
    const char *const *adj;   /* gradient code: per incoming adjoint (EQ_ADJ idx) */
} CgLeaves;

/* Per instruction: 1 if it reaches one of the roots (entries of -1 are skipped). */
unsigned char *cg_eq_live(Arena *a, const EqCode *code, const int *roots, int nroots);
/* Per instruction, when the input x is the same at every step
   (x_invariant): CG_LEVEL_LAYER if it reads only constants and per-layer
   parameters, CG_LEVEL_NEURON if it reads no state and no adjoint (x,
   parameters of any granularity and constants only), so each neuron
   computes it once for all steps, else CG_LEVEL_STEP. */
enum { CG_LEVEL_STEP, CG_LEVEL_NEURON, CG_LEVEL_LAYER };
unsigned char *cg_eq_levels(Arena *a, const NeuronProg *p, const EqCode *code, int x_invariant);
/* Emits the live instructions whose level equals `level` as
   `const float tN = ...;`; with names, a comment gives the model's name of
   a value. Constants are not emitted: cg_eq_val writes them in place. */
void cg_eq_emit(Emit *e, const NeuronProg *p, const EqCode *code, const unsigned char *live,
                const unsigned char *lev, int level, const CgLeaves *lv, int names);
/* The C operand for instruction i: a literal for a constant, else tN. */
const char *cg_eq_val(Emit *e, const EqCode *code, int i);

/* ---- the parts ---- */

/* The innermost block of a matrix product: mr rows by nr columns of C
   (nr at most GEMM_NR, 32), emitted by `emit` inside the loops of cg_gemm,
   with in scope: pa (the block's rows of A, packed: pa[k * mr + i]), pbj
   (the panel of B: pbj[k * nr + j]), kc (values of k), c0 (the block's
   first element of C), ci, cj, mi and nj (rows and columns of the block
   inside C), k0 (0 for the first block of k: start from the bias when
   bias is given), bias, si, sj, ib, jp, and loop variables i, j, k. The
   block must add the products in k order, multiply then add. */
typedef struct CgTile {
    int mr, nr;
    int pad; /* zeros after pa's kc * mr values that the block may read (at most ACACHE_PAD, ckernels.c) */
    /* 1: the block also reads A in place: where ap is not 0, A(ib + i, k0 + k)
       = ap[i * ai + k] for every k < kc (kc steps, none left out) */
    int inplace;
    void (*emit)(Emit *e, int mr, int nr);
    const char *doc; /* how the block is computed, for the comment */
    /* NULL, or emits <p>_pack_cols(s, ld, kc, d), which packs a whole panel
       of B whose columns are contiguous: d[k * nr + j] = s[j * ld + k] for
       k < kc and j < nr (the plain product's B of a dense layer's forward) */
    void (*pack_cols)(Emit *e, int nr);
} CgTile;

/* The matrix product <net>_gemm with the given innermost block. */
void cg_gemm(Emit *e, const CgTile *tile);

void ck_gemm(TargetEmitter *em);
void ck_conv(TargetEmitter *em);
void ck_dense_fwd(TargetEmitter *em, const IrPlan *P, int i);
void ck_dense_bwd(TargetEmitter *em, const IrPlan *P, int i);
void ck_conv_fwd(TargetEmitter *em, const IrPlan *P, int i);
void ck_conv_bwd(TargetEmitter *em, const IrPlan *P, int i);
void ck_pool_fwd(TargetEmitter *em, const IrPlan *P, int i);
void ck_pool_bwd(TargetEmitter *em, const IrPlan *P, int i);
void ck_eltwise_fwd(TargetEmitter *em, const IrPlan *P, int i);
void ck_eltwise_bwd(TargetEmitter *em, const IrPlan *P, int i);
void ck_batchnorm_fwd(TargetEmitter *em, const IrPlan *P, int i);
void ck_batchnorm_bwd(TargetEmitter *em, const IrPlan *P, int i);
void ck_delay_fwd(TargetEmitter *em, const IrPlan *P, int i);
void ck_delay_bwd(TargetEmitter *em, const IrPlan *P, int i);
void cn_neuron_fwd(TargetEmitter *em, const IrPlan *P, int i);
void cn_neuron_bwd(TargetEmitter *em, const IrPlan *P, int i);
/* The training forward's dropout mask of node i, drawn from `seed` for the
   samples from `first` on of the whole batch. */
void ck_dropout_mask(Emit *e, int i);
/* The scratch each plan needs after its region: sets e's offsets and sizes. */
void ck_scratch(Emit *e);

/* The portable target's kernels, indexed by IrOp (ctarget.c). */
extern const TargetKernels ck_kernels[IR_NUM_OPS];

/* An emitter for g (in g's arena) with the names' prefix in lower case
   (p) and upper case (P), the options and the batch set, nothing written. */
TargetEmitter *capi_emitter(const IrGraph *g, const CgenOptions *opt);
TargetEmitter *capi_begin(const IrGraph *g, const CgenOptions *opt);
/* The same for code written for an x86 instruction set: the file includes
   the intrinsics (or SIMDe's portable versions, with -D<NET>_SIMDE) and
   the API checks the CPU when it starts. */
TargetEmitter *capi_begin_isa(const IrGraph *g, const CgenOptions *opt, int isa);
/* Builds and loads the files of target t (the C target's way: a shared
   object built by the C compiler with `flags` added, then dlopen). */
int cbuild_load(const Target *t, const char *const *flags, const IrGraph *g, const LoadOptions *lo,
                LoadedModel *m);
void cbuild_unload(LoadedModel *m);
/* cbuild_load in parts, for targets built by another compiler (cuda):
   write t's files for loading into a temporary folder (or --keep-build),
   m->handle then owns them, *prefix the names' prefix; the source file and
   the shared object to build from it; run a command (output to /dev/null
   when quiet; `what` names it in messages); dlopen the object and fill m
   with the functions <prefix>_<name>, or <prefix>_<api>_<name> where api
   is not "" (the cuda target's host API: "host").
   Each returns 0, or -1 after reporting (and unloading m). */
int cbuild_write(const Target *t, const IrGraph *g, const LoadOptions *lo, LoadedModel *m, const char **prefix);
const char *cbuild_source(const LoadedModel *m);
const char *cbuild_object(const LoadedModel *m);
int cbuild_run(char *const argv[], int quiet, const char *what);
int cbuild_open(const IrGraph *g, LoadedModel *m, const char *prefix, const char *api);
/* Builds m's shared object with the compiler command argv (cbuild_run's
   `what`), or takes it from the build cache: 0, or -1 after reporting.
   lists: the compiler takes -MD -MF FILE (gcc, clang), so the cache also
   checks the headers it read. */
int cbuild_compile(Arena *a, LoadedModel *m, char *const argv[], const char *what, int lists);
/* The build cache (cache.c, docs/cli.md): the key of a build (the command
   argv, with paths inside the build's folder dir by their names, the bytes
   of files, NULL-terminated, the compiler's and the CPU's identity), or
   NULL when the cache is off; an entry copied to dest (0) or not there
   or with a file of its list changed (-1); one stored with the list of
   the files that the compiler's dependency rule depfile names outside
   build_dir (depfile NULL: none), or dropped; a small answer (0 or 1) kept under a key,
   -1 when not known. None of them fails a build. */
const char *bcache_key(Arena *a, char *const argv[], const char *dir, const char *const files[]);
int bcache_get(Arena *a, const char *key, const char *dest);
void bcache_put(Arena *a, const char *key, const char *src, const char *depfile, const char *build_dir);
void bcache_drop(Arena *a, const char *key);
int bcache_answer(Arena *a, const char *key);
void bcache_keep_answer(Arena *a, const char *key, int answer);
/* The path of program prog as execvp finds it (on PATH where it has no
   slash), or NULL. */
const char *cbuild_which(Arena *a, const char *prog);
/* The symbol `name` of m's loaded object, or NULL after reporting. */
void *cbuild_sym(LoadedModel *m, const char *name);
void capi_api(TargetEmitter *em);
/* The table of the parameters (<net>_params: names, shapes, workspace
   offsets) and, in the header, its type and declaration. */
void capi_param_table(Emit *e);
void capi_param_header(Emit *e);
/* --embed-weights: parameter k as the array "<qual> float <net>_w<k>[count]",
   its values in their shortest exact form, 8 to a line. */
void capi_embedded(Emit *e, const char *qual, int k);
/* splitmix64 and its uniform (<net>_mix, <net>_unit, each name followed
   by suffix, the functions qualified by qual, such as "static"): the
   generated code's one random number generator. */
void capi_mix(Emit *e, const char *qual, const char *suffix);
/* The safetensors loader (runtime/snnrt_stload.inc) and PyTorch's
   initialization of the parameters: <net>_load_weights and
   <net>_init_weights on the workspace, or with host, static
   <net>_load_host(float *ws, path, allow_missing, err, errlen) and
   <net>_init_host(float *ws, seed) on a host copy of the parameters (a
   target whose workspace the host cannot write). init draws a weight or
   a bias with capi_mix's functions: with mix they are written first, in
   a file that has no generator yet. */
void capi_weights(Emit *e, int host, int mix);
int capi_finish(TargetEmitter *em, GenFile *out);

#endif
