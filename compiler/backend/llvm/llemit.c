/*
 * llemit.c: the llvm target's helpers for building IR (constants, math
 * calls, loops, addresses in the inference plan), and its kernels of the
 * synaptic and elementwise ops: dense, add, scale, identity, dropout (the
 * identity at inference) and prev().
 *
 * Each kernel computes the steps [from, to) of one node, as the C
 * target's (ckernels.c) does, over the same buffers: a dense layer over a
 * range is one product over (to - from) x B rows, since the plan keeps the
 * rows of consecutive steps of a chunk contiguous.
 */
#include <string.h>

#include "ll.h"

const char *ll_name(Ll *L, const char *what) { return arena_printf(L->a, "%s.%s", L->layer, what); }

LLVMValueRef ll_i32(Ll *L, long long v) { return LLVMConstInt(L->i32, (unsigned long long)v, 1); }
LLVMValueRef ll_i64(Ll *L, long long v) { return LLVMConstInt(L->i64, (unsigned long long)v, 1); }

LLVMValueRef ll_flt(Ll *L, float f, int lanes) {
    LLVMValueRef k = LLVMConstReal(L->f32, (double)f);
    if (lanes == 1)
        return k;
    LLVMValueRef v[LL_LANES];
    for (int i = 0; i < lanes; i++)
        v[i] = k;
    return LLVMConstVector(v, (unsigned)lanes);
}

LLVMValueRef ll_splat(Ll *L, LLVMValueRef v, int lanes) {
    if (lanes == 1)
        return v;
    if (LLVMIsConstant(v)) {
        LLVMValueRef k[LL_LANES];
        for (int i = 0; i < lanes; i++)
            k[i] = v;
        return LLVMConstVector(k, (unsigned)lanes);
    }
    LLVMValueRef one = LLVMBuildInsertElement(L->b, LLVMGetUndef(LLVMVectorType(L->f32, (unsigned)lanes)), v,
                                              ll_i32(L, 0), "");
    return LLVMBuildShuffleVector(L->b, one, LLVMGetUndef(LLVMTypeOf(one)),
                                  LLVMConstNull(LLVMVectorType(L->i32, (unsigned)lanes)), ll_name(L, "splat"));
}

/* splitmix64's step and output function (capi.c gen_mix). */
LLVMValueRef ll_mix(Ll *L, LLVMValueRef z) {
    static const unsigned long long k[3] = {0x9E3779B97F4A7C15ULL, 0xBF58476D1CE4E5B9ULL, 0x94D049BB133111EBULL};
    z = LLVMBuildAdd(L->b, z, LLVMConstInt(L->i64, k[0], 0), "");
    z = LLVMBuildXor(L->b, z, LLVMBuildLShr(L->b, z, ll_i64(L, 30), ""), "");
    z = LLVMBuildMul(L->b, z, LLVMConstInt(L->i64, k[1], 0), "");
    z = LLVMBuildXor(L->b, z, LLVMBuildLShr(L->b, z, ll_i64(L, 27), ""), "");
    z = LLVMBuildMul(L->b, z, LLVMConstInt(L->i64, k[2], 0), "");
    return LLVMBuildXor(L->b, z, LLVMBuildLShr(L->b, z, ll_i64(L, 31), ""), "");
}

LLVMValueRef ll_unit(Ll *L, LLVMValueRef h) {
    LLVMValueRef top = LLVMBuildUIToFP(L->b, LLVMBuildLShr(L->b, h, ll_i64(L, 40), ""), L->f32, "");
    return LLVMBuildFMul(L->b, top, ll_flt(L, 1.0f / 16777216.0f, 1), ll_name(L, "unit"));
}

LLVMValueRef ll_call(Ll *L, LLVMValueRef fn, LLVMValueRef *args, unsigned n) {
    return LLVMBuildCall2(L->b, LLVMGlobalGetValueType(fn), fn, args, n, "");
}

LLVMValueRef ll_call_math(Ll *L, const char *name, LLVMValueRef a, LLVMValueRef b, int lanes) {
    unsigned n = b ? 2 : 1;
    if (!strncmp(name, "llvm.", 5)) {
        LLVMTypeRef ty = lanes == 1 ? L->f32 : LLVMVectorType(L->f32, (unsigned)lanes);
        unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
        if (!id)
            ICE("no intrinsic %s", name);
        LLVMValueRef fn = LLVMGetIntrinsicDeclaration(L->mod, id, &ty, 1);
        LLVMValueRef args[2] = {a, b};
        return LLVMBuildCall2(L->b, LLVMIntrinsicGetType(L->ctx, id, &ty, 1), fn, args, n, "");
    }
    LLVMValueRef fn = LLVMGetNamedFunction(L->mod, name);
    if (!fn) {
        LLVMTypeRef params[2] = {L->f32, L->f32};
        fn = LLVMAddFunction(L->mod, name, LLVMFunctionType(L->f32, params, n, 0));
    }
    if (lanes == 1) {
        LLVMValueRef args[2] = {a, b};
        return ll_call(L, fn, args, n);
    }
    /* the C library's functions, lane by lane: the exact values */
    LLVMValueRef v = LLVMGetUndef(LLVMTypeOf(a));
    for (int k = 0; k < lanes; k++) {
        LLVMValueRef args[2] = {LLVMBuildExtractElement(L->b, a, ll_i32(L, k), ""),
                                b ? LLVMBuildExtractElement(L->b, b, ll_i32(L, k), "") : NULL};
        v = LLVMBuildInsertElement(L->b, v, ll_call(L, fn, args, n), ll_i32(L, k), "");
    }
    return v;
}

/* ---- control ---- */

void ll_loop_open(Ll *L, LlLoop *lp, LLVMValueRef from, LLVMValueRef to, long long step, const char *what) {
    LLVMBasicBlockRef pre = LLVMGetInsertBlock(L->b);
    lp->head = LLVMAppendBasicBlockInContext(L->ctx, L->fn, ll_name(L, arena_printf(L->a, "%s.head", what)));
    lp->body = LLVMAppendBasicBlockInContext(L->ctx, L->fn, ll_name(L, arena_printf(L->a, "%s.body", what)));
    lp->exit = LLVMCreateBasicBlockInContext(L->ctx, ll_name(L, arena_printf(L->a, "%s.end", what)));
    lp->step = step;
    LLVMBuildBr(L->b, lp->head);
    LLVMPositionBuilderAtEnd(L->b, lp->head);
    lp->iv = LLVMBuildPhi(L->b, LLVMTypeOf(from), ll_name(L, what));
    LLVMAddIncoming(lp->iv, &from, &pre, 1);
    LLVMBuildCondBr(L->b, LLVMBuildICmp(L->b, LLVMIntSLT, lp->iv, to, ""), lp->body, lp->exit);
    LLVMPositionBuilderAtEnd(L->b, lp->body);
}

void ll_loop_close(Ll *L, LlLoop *lp) {
    LLVMBasicBlockRef last = LLVMGetInsertBlock(L->b);
    LLVMValueRef next = LLVMBuildNSWAdd(L->b, lp->iv, LLVMConstInt(LLVMTypeOf(lp->iv), (unsigned long long)lp->step, 1),
                                        "");
    LLVMBuildBr(L->b, lp->head);
    LLVMAddIncoming(lp->iv, &next, &last, 1);
    LLVMAppendExistingBasicBlock(L->fn, lp->exit);
    LLVMPositionBuilderAtEnd(L->b, lp->exit);
}

void ll_if(Ll *L, LlIf *f, LLVMValueRef c, const char *what, int has_else) {
    f->then = LLVMAppendBasicBlockInContext(L->ctx, L->fn, ll_name(L, what));
    f->other = has_else ? LLVMCreateBasicBlockInContext(L->ctx, ll_name(L, arena_printf(L->a, "%s.else", what))) : NULL;
    f->join = LLVMCreateBasicBlockInContext(L->ctx, ll_name(L, arena_printf(L->a, "%s.end", what)));
    LLVMBuildCondBr(L->b, c, f->then, has_else ? f->other : f->join);
    LLVMPositionBuilderAtEnd(L->b, f->then);
}

void ll_else(Ll *L, LlIf *f) {
    LLVMBuildBr(L->b, f->join);
    LLVMAppendExistingBasicBlock(L->fn, f->other);
    LLVMPositionBuilderAtEnd(L->b, f->other);
}

void ll_endif(Ll *L, LlIf *f) {
    LLVMBuildBr(L->b, f->join);
    LLVMAppendExistingBasicBlock(L->fn, f->join);
    LLVMPositionBuilderAtEnd(L->b, f->join);
}

/* ---- memory ---- */

LLVMValueRef ll_off(Ll *L, LLVMValueRef p, LLVMValueRef n, const char *what) {
    return LLVMBuildInBoundsGEP2(L->b, L->f32, p, &n, 1, what ? ll_name(L, what) : "");
}

LLVMValueRef ll_ws(Ll *L, LLVMValueRef off, const char *what) { return ll_off(L, L->ws, off, what); }

static long long align16(long long x) { return (x + 15) & ~15LL; }

int ll_train(Ll *L) { return L->P == &L->g->trainp; }

static long long base(Ll *L) {
    if (ll_train(L))
        return 2 * align16(L->g->param_floats);
    return L->weight ? 0 : L->g->param_floats;
}

LLVMValueRef ll_plan(Ll *L, long long off, const char *what) { return ll_ws(L, ll_i64(L, base(L) + off), what); }

/* The float or word `off` of a buffer of node i whose step holds `per`
   elements, at step t. */
static LLVMValueRef step_from(Ll *L, LLVMTypeRef elem, LLVMValueRef start, int vsteps, long long per, LLVMValueRef t,
                              const char *what) {
    if (vsteps == 1 || (LLVMIsAConstantInt(t) && LLVMConstIntGetSExtValue(t) == 0))
        return LLVMBuildInBoundsGEP2(L->b, elem, start, (LLVMValueRef[]){ll_i64(L, 0)}, 1, ll_name(L, what));
    /* inference wraps around the chunk's slots, also when step() goes on
       past T; training keeps every step (t < T) */
    LLVMValueRef slot = ll_train(L) ? t : LLVMBuildSRem(L->b, t, ll_i32(L, vsteps), "");
    slot = LLVMBuildSExt(L->b, slot, L->i64, "");
    LLVMValueRef n = LLVMBuildNSWMul(L->b, LLVMBuildNSWMul(L->b, slot, L->B, ""), ll_i64(L, per), "");
    return LLVMBuildInBoundsGEP2(L->b, elem, start, &n, 1, ll_name(L, what));
}

static LLVMValueRef step_at(Ll *L, LLVMTypeRef elem, int64_t off, int vsteps, long long per, LLVMValueRef t,
                            const char *what) {
    return step_from(L, elem, ll_plan(L, off, NULL), vsteps, per, t, what);
}

LLVMValueRef ll_at(Ll *L, int i, LLVMValueRef t, const char *what) {
    const IrBufs *b = &L->P->at[i];
    if (b->vext) /* the caller's */
        return step_from(L, L->f32, L->input, b->vsteps, shape_count(&L->g->nodes.items[i].shape), t, what);
    if (b->val < 0 || b->bits)
        ICE("node %d has no value buffer of floats", i);
    return step_at(L, L->f32, b->val, b->vsteps, shape_count(&L->g->nodes.items[i].shape), t, what);
}

LLVMValueRef ll_grad_at(Ll *L, int i, LLVMValueRef t, const char *what) {
    const IrBufs *b = &L->P->at[i];
    long long per = shape_count(&L->g->nodes.items[i].shape);
    if (b->gext) /* the caller's: a backward kernel's argument */
        return step_from(L, L->f32, LLVMGetParam(L->fn, b->gext == IR_GEXT_DOUTPUT ? 6 : 7), b->vsteps, per, t, what);
    if (b->grad < 0)
        ICE("node %d has no gradient buffer", i);
    return step_at(L, L->f32, b->grad, b->vsteps, per, t, what);
}

LLVMValueRef ll_bits_at(Ll *L, int i, LLVMValueRef t, const char *what) {
    const IrBufs *b = &L->P->at[i];
    if (!b->bits)
        ICE("node %d keeps no bits", i);
    return step_at(L, L->i32, b->val, b->vsteps, shape_count(&L->g->nodes.items[i].shape) / 32, t, what);
}

LLVMValueRef ll_bit(Ll *L, LLVMValueRef words, LLVMValueRef e) {
    LLVMValueRef w = LLVMBuildInBoundsGEP2(L->b, L->i32, words, (LLVMValueRef[]){LLVMBuildLShr(L->b, e, ll_i64(L, 5), "")},
                                           1, "");
    LLVMValueRef word = LLVMBuildLoad2(L->b, L->i32, w, "");
    LLVMSetAlignment(word, 4);
    LLVMValueRef sh = LLVMBuildTrunc(L->b, LLVMBuildAnd(L->b, e, ll_i64(L, 31), ""), L->i32, "");
    LLVMValueRef bit = LLVMBuildAnd(L->b, LLVMBuildLShr(L->b, word, sh, ""), ll_i32(L, 1), "");
    return LLVMBuildUIToFP(L->b, bit, L->f32, ll_name(L, "spike"));
}

LLVMValueRef ll_param(Ll *L, int k) {
    if (L->weight)
        return L->weight[k];
    return ll_ws(L, ll_i64(L, (long long)L->g->params.items[k].off),
                 arena_printf(L->a, "%s", strchr(L->g->params.items[k].name, '.') + 1));
}

LLVMValueRef ll_param_grad(Ll *L, int k) {
    return ll_ws(L, ll_i64(L, align16(L->g->param_floats) + (long long)L->g->params.items[k].off),
                 arena_printf(L->a, "d%s", strchr(L->g->params.items[k].name, '.') + 1));
}

void ll_copy(Ll *L, LLVMValueRef dst, LLVMValueRef src, LLVMValueRef n) {
    LLVMValueRef bytes = LLVMBuildNSWMul(L->b, n, ll_i64(L, (long long)sizeof(float)), "");
    if (src)
        LLVMBuildMemCpy(L->b, dst, sizeof(float), src, sizeof(float), bytes);
    else
        LLVMBuildMemSet(L->b, dst, LLVMConstInt(LLVMInt8TypeInContext(L->ctx), 0, 0), bytes, sizeof(float));
}

LLVMValueRef ll_load(Ll *L, LLVMValueRef p, int lanes, const char *what) {
    LLVMValueRef v = LLVMBuildLoad2(L->b, lanes == 1 ? L->f32 : LLVMVectorType(L->f32, (unsigned)lanes), p,
                                    what ? ll_name(L, what) : "");
    LLVMSetAlignment(v, sizeof(float));
    return v;
}

void ll_store(Ll *L, LLVMValueRef v, LLVMValueRef p) { LLVMSetAlignment(LLVMBuildStore(L->b, v, p), sizeof(float)); }

LLVMValueRef ll_vec_at(Ll *L, LLVMTypeRef ty, LLVMValueRef arr, int j) {
    LLVMValueRef idx[2] = {ll_i32(L, 0), ll_i32(L, j)};
    return LLVMBuildInBoundsGEP2(L->b, ty, arr, idx, 2, "");
}

/* ---- kernels ---- */

void ll_kernel_open(Ll *L, const IrPlan *P, int i, int fwd) {
    const IrNode *x = &L->g->nodes.items[i];
    L->layer = x->name;
    L->P = P;
    int train = P == &L->g->trainp;
    L->fn = LLVMAddFunction(L->mod, arena_printf(L->a, "%s_%s%s%d", L->p, train ? "train_" : "", fwd ? "fwd" : "bwd", i),
                            fwd ? L->kfn : L->bkfn);
    LLVMSetLinkage(L->fn, LLVMInternalLinkage);
    (fwd ? train ? L->tkern : L->kern : L->bkern)[i] = L->fn;
    const char *text = target_node_text(L->g, i);
    LLVMMetadataRef s = LLVMMDStringInContext2(L->ctx, text, strlen(text));
    LLVMGlobalSetMetadata(L->fn, L->md_node, LLVMMDNodeInContext2(L->ctx, &s, 1));
    const char *fnames[] = {"ws", "B", "from", "to", "training", "input", "part", "parts"};
    const char *bnames[] = {"ws", "B", "from", "to", "dx", "input", "doutput", "dinput", "part", "parts"};
    for (unsigned k = 0; k < (fwd ? 8u : 10u); k++)
        LLVMSetValueName2(LLVMGetParam(L->fn, k), (fwd ? fnames : bnames)[k], strlen((fwd ? fnames : bnames)[k]));
    L->kfwd = fwd;
    L->ws = LLVMGetParam(L->fn, 0);
    L->B = LLVMGetParam(L->fn, 1);
    L->input = LLVMGetParam(L->fn, 5);
    LLVMPositionBuilderAtEnd(L->b, LLVMAppendBasicBlockInContext(L->ctx, L->fn, ll_name(L, "entry")));
}

void ll_kernel_close(Ll *L) { LLVMBuildRetVoid(L->b); }

LLVMValueRef ll_from(Ll *L) { return LLVMGetParam(L->fn, 2); }
LLVMValueRef ll_to(Ll *L) { return LLVMGetParam(L->fn, 3); }
LLVMValueRef ll_flag(Ll *L) { return LLVMGetParam(L->fn, 4); }
LLVMValueRef ll_part(Ll *L) { return LLVMGetParam(L->fn, L->kfwd ? 6 : 8); }
LLVMValueRef ll_parts(Ll *L) { return LLVMGetParam(L->fn, L->kfwd ? 7 : 9); }

void ll_share(Ll *L, LLVMValueRef n, long long align, LLVMValueRef *lo, LLVMValueRef *hi) {
    LLVMValueRef part = LLVMBuildSExt(L->b, ll_part(L), L->i64, ""), parts = LLVMBuildSExt(L->b, ll_parts(L), L->i64, "");
    /* units of align, ceil(units / parts) of them a part */
    LLVMValueRef units = LLVMBuildSDiv(L->b, LLVMBuildNSWAdd(L->b, n, ll_i64(L, align - 1), ""), ll_i64(L, align), "");
    LLVMValueRef each = LLVMBuildSDiv(L->b, LLVMBuildNSWAdd(L->b, units, LLVMBuildNSWSub(L->b, parts, ll_i64(L, 1), ""), ""),
                                      parts, "");
    LLVMValueRef a = LLVMBuildNSWMul(L->b, LLVMBuildNSWMul(L->b, part, each, ""), ll_i64(L, align), "");
    LLVMValueRef b = LLVMBuildNSWAdd(L->b, a, LLVMBuildNSWMul(L->b, each, ll_i64(L, align), ""), "");
    *lo = LLVMBuildSelect(L->b, LLVMBuildICmp(L->b, LLVMIntSLT, a, n, ""), a, n, ll_name(L, "lo"));
    *hi = LLVMBuildSelect(L->b, LLVMBuildICmp(L->b, LLVMIntSLT, b, n, ""), b, n, ll_name(L, "hi"));
}

int ll_splits(const IrGraph *g, int i) {
    int op = g->nodes.items[i].op;
    return op == IR_DENSE || op == IR_CONV2D || op == IR_NEURON || op == IR_MAXPOOL || op == IR_AVGPOOL ||
           op == IR_BATCHNORM;
}

/* An alloca at the start of the function being written (so that a call
   in a loop does not grow the stack). */
static LLVMValueRef entry_alloca(Ll *L, LLVMTypeRef ty, const char *name) {
    LLVMBuilderRef b = LLVMCreateBuilderInContext(L->ctx);
    LLVMBasicBlockRef entry = LLVMGetEntryBasicBlock(LLVMGetBasicBlockParent(LLVMGetInsertBlock(L->b)));
    LLVMValueRef first = LLVMGetFirstInstruction(entry);
    if (first)
        LLVMPositionBuilderBefore(b, first);
    else
        LLVMPositionBuilderAtEnd(b, entry);
    LLVMValueRef a = LLVMBuildAlloca(b, ty, name);
    LLVMDisposeBuilder(b);
    return a;
}

/* A function of OpenMP's runtime (GCC's libgomp, or LLVM's libomp, which
   has the same entry points), declared weak: an object file links without
   it, and then its address is null and every kernel runs on the calling
   thread. */
static LLVMValueRef omp_function(Ll *L, const char *name, LLVMTypeRef ty) {
    LLVMValueRef fn = LLVMGetNamedFunction(L->mod, name);
    if (!fn) {
        fn = LLVMAddFunction(L->mod, name, ty);
        LLVMSetLinkage(fn, LLVMExternalWeakLinkage);
    }
    return fn;
}

/* The function each thread runs: void (ptr ctx), ctx an L->ctxty holding
   the kernel and its arguments; it calls the kernel with the thread's
   number and the team's size as its part and parts. */
static LLVMValueRef trampoline(Ll *L, int fwd) {
    if (L->tramp[fwd])
        return L->tramp[fwd];
    LLVMBuilderRef saved = L->b;
    L->b = LLVMCreateBuilderInContext(L->ctx);
    LLVMTypeRef vty = LLVMFunctionType(LLVMVoidTypeInContext(L->ctx), &L->ptr, 1, 0);
    LLVMValueRef fn = LLVMAddFunction(L->mod, arena_printf(L->a, "%s_%s_part", L->p, fwd ? "fwd" : "bwd"), vty);
    LLVMSetLinkage(fn, LLVMInternalLinkage);
    LLVMPositionBuilderAtEnd(L->b, LLVMAppendBasicBlockInContext(L->ctx, fn, "entry"));
    LLVMValueRef ctx = LLVMGetParam(fn, 0), f[9];
    for (unsigned k = 0; k < 9; k++) {
        LLVMTypeRef ty = LLVMStructGetTypeAtIndex(L->ctxty, k);
        f[k] = LLVMBuildLoad2(L->b, ty, LLVMBuildStructGEP2(L->b, L->ctxty, ctx, k, ""), "");
    }
    LLVMTypeRef ity = LLVMFunctionType(L->i32, NULL, 0, 0);
    LLVMValueRef num = omp_function(L, "omp_get_thread_num", ity), team = omp_function(L, "omp_get_num_threads", ity);
    LLVMValueRef part = LLVMBuildCall2(L->b, ity, num, NULL, 0, "part");
    LLVMValueRef parts = LLVMBuildCall2(L->b, ity, team, NULL, 0, "parts");
    LLVMValueRef args[10];
    unsigned n = 0;
    for (unsigned k = 1; k < (fwd ? 7u : 9u); k++)
        args[n++] = f[k];
    args[n++] = part;
    args[n++] = parts;
    LLVMBuildCall2(L->b, fwd ? L->kfn : L->bkfn, f[0], args, n, "");
    LLVMBuildRetVoid(L->b);
    LLVMDisposeBuilder(L->b);
    L->b = saved;
    return L->tramp[fwd] = fn;
}

/* Below this many multiply-adds (a dense or convolution layer) or neuron
   steps (and values of pools and batchnorm: a pool's times its taps), a
   kernel runs on the calling thread: waking the others would cost more. */
#define LL_PARALLEL_MACS (1LL << 20)
#define LL_PARALLEL_NEURONS (1LL << 15)

void ll_launch(Ll *L, int i, LLVMValueRef fn, LLVMValueRef *args, int fwd) {
    LLVMValueRef a[10];
    int n = fwd ? 6 : 8;
    for (int k = 0; k < n; k++)
        a[k] = args[k];
    a[n] = ll_i32(L, 0);
    a[n + 1] = ll_i32(L, 1);
    if (!ll_splits(L->g, i)) {
        ll_call(L, fn, a, (unsigned)n + 2);
        return;
    }
    const IrNode *x = &L->g->nodes.items[i];
    /* the work of a sample at a step */
    long long per = shape_count(&x->shape), least = LL_PARALLEL_MACS;
    if (x->op == IR_DENSE)
        per = shape_count(&L->g->nodes.items[x->in[0]].shape) * x->out;
    else if (x->op == IR_CONV2D)
        per *= L->g->nodes.items[x->in[0]].shape.d[0] / x->groups * x->kernel[0] * x->kernel[1];
    else {
        if (x->op != IR_NEURON && x->op != IR_BATCHNORM)
            per *= x->kernel[0] * x->kernel[1];
        least = LL_PARALLEL_NEURONS;
    }
    LLVMValueRef steps = LLVMBuildSExt(L->b, LLVMBuildNSWSub(L->b, args[3], args[2], ""), L->i64, "");
    LLVMValueRef work = LLVMBuildMul(L->b, LLVMBuildMul(L->b, steps, args[1], ""), ll_i64(L, per), "");
    LLVMTypeRef ity = LLVMFunctionType(L->i32, NULL, 0, 0);
    LLVMValueRef most = omp_function(L, "omp_get_max_threads", ity);
    /* wide: OpenMP is linked in, the work large enough, and more than one
       thread allowed */
    LLVMValueRef wide = entry_alloca(L, L->i1, "wide");
    LlIf big;
    LLVMBuildStore(L->b, LLVMConstInt(L->i1, 0, 0), wide);
    ll_if(L, &big, LLVMBuildAnd(L->b, LLVMBuildICmp(L->b, LLVMIntNE, most, LLVMConstPointerNull(L->ptr), ""),
                                LLVMBuildICmp(L->b, LLVMIntSGE, work, ll_i64(L, least), ""), ""), "big", 0);
    LLVMValueRef m = LLVMBuildCall2(L->b, ity, most, NULL, 0, "");
    LLVMBuildStore(L->b, LLVMBuildICmp(L->b, LLVMIntSGT, m, ll_i32(L, 1), ""), wide);
    ll_endif(L, &big);
    LlIf par;
    ll_if(L, &par, LLVMBuildLoad2(L->b, L->i1, wide, ""), "threads", 1);
    LLVMValueRef ctx = entry_alloca(L, L->ctxty, "launch");
    LLVMValueRef vals[9] = {fn, args[0], args[1], args[2], args[3], args[4], args[5],
                            fwd ? LLVMConstPointerNull(L->ptr) : args[6], fwd ? LLVMConstPointerNull(L->ptr) : args[7]};
    for (unsigned k = 0; k < 9; k++)
        LLVMBuildStore(L->b, vals[k], LLVMBuildStructGEP2(L->b, L->ctxty, ctx, k, ""));
    LLVMTypeRef gargs[4] = {L->ptr, L->ptr, L->i32, L->i32};
    LLVMTypeRef gty = LLVMFunctionType(LLVMVoidTypeInContext(L->ctx), gargs, 4, 0);
    LLVMValueRef ga[4] = {trampoline(L, fwd), ctx, ll_i32(L, 0), ll_i32(L, 0)};
    LLVMBuildCall2(L->b, gty, omp_function(L, "GOMP_parallel", gty), ga, 4, "");
    ll_else(L, &par);
    ll_call(L, fn, a, (unsigned)n + 2);
    ll_endif(L, &par);
}

void ll_axpy(Ll *L, LLVMValueRef y, LLVMValueRef a, LLVMValueRef x, LLVMValueRef n) {
    LLVMValueRef nv = LLVMBuildNSWSub(L->b, n, LLVMBuildSRem(L->b, n, ll_i64(L, LL_LANES), ""), "");
    LLVMValueRef av = ll_splat(L, a, LL_LANES);
    LlLoop v, r;
    ll_loop_open(L, &v, ll_i64(L, 0), nv, LL_LANES, "axpy");
    LLVMValueRef yp = ll_off(L, y, v.iv, NULL);
    LLVMValueRef prod = LLVMBuildFMul(L->b, av, ll_load(L, ll_off(L, x, v.iv, NULL), LL_LANES, NULL), "");
    ll_store(L, LLVMBuildFAdd(L->b, ll_load(L, yp, LL_LANES, NULL), prod, ""), yp);
    ll_loop_close(L, &v);
    ll_loop_open(L, &r, nv, n, 1, "axpy1");
    yp = ll_off(L, y, r.iv, NULL);
    prod = LLVMBuildFMul(L->b, a, ll_load(L, ll_off(L, x, r.iv, NULL), 1, NULL), "");
    ll_store(L, LLVMBuildFAdd(L->b, ll_load(L, yp, 1, NULL), prod, ""), yp);
    ll_loop_close(L, &r);
}

/* The dense kernels write their product inline: nothing to share. */
void ll_gemm(TargetEmitter *em) { (void)em; }

/* ---- register-blocked products ---- */

/* A tile of a product: TILE_MR rows of C by TILE_NV vectors of LL_LANES
   columns, TILE_MR x TILE_NV sums held in registers over the whole run of
   k, each step loading TILE_NV vectors of B and TILE_MR values of A for
   2 x TILE_MR x TILE_NV vector operations (the x86 targets' micro-kernels
   do the same in intrinsics). Eight sums of <8 x float> leave room in 16
   vector registers (AVX2; NEON's 32 hold half as many <8 x float>). */
#define TILE_MR 4
#define TILE_NV 2
#define TILE_NC (TILE_NV * LL_LANES)

/* A(i, k) = a[a0 + i ai + k ak], B(k, j) = b[k bk + j], C(i, j) = c[i ci + j]. */
typedef struct LlTile {
    LLVMValueRef a, a0, b, bk, c, ci;
    long long ai, ak;
} LlTile;

static LLVMValueRef tile_acc(Ll *L) {
    LLVMValueRef acc = LLVMBuildAlloca(L->b, LLVMArrayType(L->vf, TILE_MR * TILE_NV), ll_name(L, "tile"));
    LLVMSetAlignment(acc, 32);
    return acc;
}

static LLVMValueRef vec_at(Ll *L, LLVMValueRef acc, int v) {
    return ll_vec_at(L, LLVMArrayType(L->vf, TILE_MR * TILE_NV), acc, v);
}

/* C(i, j) += the sum over k in [0, K) of A(i, k) B(k, j) for i < TILE_MR,
   j < TILE_NC: each element in ascending k, multiply then add, the C
   target's sums. Where its step's values of A are contiguous (a
   gradient's), a step whose TILE_MR values are all zero is left out, as
   the C target's product leaves it out (adding 0 x B would change no sum,
   a zero's sign aside); strided values of A (a dense input's rows) are
   not tested. acc: tile_acc's, from the entry
   block (so that the sums are promoted to registers). */
static void tile(Ll *L, LLVMValueRef acc, const LlTile *t, LLVMValueRef K) {
    LLVMTypeRef av = LLVMVectorType(L->f32, TILE_MR);
    for (int i = 0; i < TILE_MR; i++)
        for (int j = 0; j < TILE_NV; j++) {
            LLVMValueRef at = LLVMBuildNSWAdd(L->b, LLVMBuildNSWMul(L->b, t->ci, ll_i64(L, i), ""),
                                              ll_i64(L, j * LL_LANES), "");
            ll_store(L, ll_load(L, ll_off(L, t->c, at, NULL), LL_LANES, NULL), vec_at(L, acc, i * TILE_NV + j));
        }
    LlLoop k;
    ll_loop_open(L, &k, ll_i64(L, 0), K, 1, "tile.k");
    LLVMValueRef e = LLVMBuildNSWAdd(L->b, t->a0, LLVMBuildNSWMul(L->b, k.iv, ll_i64(L, t->ak), ""), "");
    LLVMValueRef ak[TILE_MR], ei[TILE_MR];
    for (int i = 0; i < TILE_MR; i++)
        ei[i] = LLVMBuildNSWAdd(L->b, e, ll_i64(L, i * t->ai), "");
    LLVMValueRef a = NULL; /* the step's values of A, when they are tested */
    if (t->ai == 1) { /* contiguous: one load tests them */
        a = LLVMBuildLoad2(L->b, av, ll_off(L, t->a, e, NULL), "");
        LLVMSetAlignment(a, sizeof(float));
    }
    LlIf any;
    if (a) {
        LLVMValueRef nz = LLVMBuildFCmp(L->b, LLVMRealUNE, a, LLVMConstNull(av), "");
        nz = LLVMBuildBitCast(L->b, nz, LLVMIntTypeInContext(L->ctx, TILE_MR), "");
        ll_if(L, &any, LLVMBuildICmp(L->b, LLVMIntNE, nz, LLVMConstInt(LLVMTypeOf(nz), 0, 0), ""), "tile.event", 0);
    }
    /* (values of A read from memory again where they are broadcast: a load
       that broadcasts costs no vector operation) */
    for (int i = 0; i < TILE_MR; i++)
        ak[i] = ll_load(L, ll_off(L, t->a, ei[i], NULL), 1, NULL);
    LLVMValueRef bp = ll_off(L, t->b, LLVMBuildNSWMul(L->b, k.iv, t->bk, ""), NULL), bv[TILE_NV];
    for (int j = 0; j < TILE_NV; j++)
        bv[j] = ll_load(L, ll_off(L, bp, ll_i64(L, j * LL_LANES), NULL), LL_LANES, NULL);
    for (int i = 0; i < TILE_MR; i++) {
        LLVMValueRef as = ll_splat(L, ak[i], LL_LANES);
        for (int j = 0; j < TILE_NV; j++) {
            LLVMValueRef at = vec_at(L, acc, i * TILE_NV + j);
            ll_store(L, LLVMBuildFAdd(L->b, ll_load(L, at, LL_LANES, NULL), LLVMBuildFMul(L->b, as, bv[j], ""), ""), at);
        }
    }
    if (a)
        ll_endif(L, &any);
    ll_loop_close(L, &k);
    for (int i = 0; i < TILE_MR; i++)
        for (int j = 0; j < TILE_NV; j++) {
            LLVMValueRef at = LLVMBuildNSWAdd(L->b, LLVMBuildNSWMul(L->b, t->ci, ll_i64(L, i), ""),
                                              ll_i64(L, j * LL_LANES), "");
            ll_store(L, ll_load(L, vec_at(L, acc, i * TILE_NV + j), LL_LANES, NULL), ll_off(L, t->c, at, NULL));
        }
}

/* The dense product's blocks: DENSE_OB outputs by DENSE_KB inputs of the
   weights, transposed onto the stack (32 KB), so that the loop over a
   block's outputs reads them contiguously; a layer of fewer outputs has
   blocks of its outputs rounded up to a tile's width by as many more
   inputs (10 outputs: 16 by 512), so that a tile's rows are read in
   longer runs. The forward takes rows of floats DENSE_RB at a time
   through all the blocks, so that they are read from memory once (the
   blocks are transposed again for each); the backward unpacks spikes
   kept as bits DENSE_RC rows at a time. */
#define DENSE_OB 64
#define DENSE_KB 128
#define DENSE_RB 256
#define DENSE_RC 64

/* A row's input that is not zero costs about as much as this many inputs
   of a tile, in quarters: 4 over blocks of 16 outputs, 1.25 over blocks of
   64, where it adds more vectors at once (measured on Zen 4 with spikes at
   rates 0.1 to 0.9: bench/RESULTS.md; 2 over 32 and 48 is between the two,
   not measured); rows sparser than that go one at a time at their inputs
   that are not zero. */
static long long event_cost4(long long ow) {
    return ow >= DENSE_OB ? 5 : ow > 16 ? 8 : 16;
}

static LLVMValueRef min64(Ll *L, LLVMValueRef a, long long b) {
    return LLVMBuildSelect(L->b, LLVMBuildICmp(L->b, LLVMIntSLT, a, ll_i64(L, b), ""), a, ll_i64(L, b), "");
}

/* n rounded down to a multiple of m */
static LLVMValueRef floor_to(Ll *L, LLVMValueRef n, long long m) {
    return LLVMBuildNSWSub(L->b, n, LLVMBuildSRem(L->b, n, ll_i64(L, m), ""), "");
}

/* The i64 whose bit e says that xr[q + e] is not zero, for e < n <= 32:
   a vector comparison of 32 values, or where fewer are left, one at a
   time. */
static LLVMValueRef nz_mask(Ll *L, LLVMValueRef xr, LLVMValueRef q, LLVMValueRef n) {
    LLVMValueRef m = entry_alloca(L, L->i64, ll_name(L, "nz"));
    LLVMValueRef xq = ll_off(L, xr, q, NULL);
    LlIf whole;
    ll_if(L, &whole, LLVMBuildICmp(L->b, LLVMIntEQ, n, ll_i64(L, 32), ""), "nz32", 1);
    LLVMTypeRef v32 = LLVMVectorType(L->f32, 32);
    LLVMValueRef ne = LLVMBuildFCmp(L->b, LLVMRealUNE, ll_load(L, xq, 32, NULL), LLVMConstNull(v32), "");
    LLVMBuildStore(L->b, LLVMBuildZExt(L->b, LLVMBuildBitCast(L->b, ne, L->i32, ""), L->i64, ""), m);
    ll_else(L, &whole);
    LlLoop e;
    LLVMBuildStore(L->b, ll_i64(L, 0), m);
    ll_loop_open(L, &e, ll_i64(L, 0), n, 1, "nz1");
    LLVMValueRef bit = LLVMBuildZExt(L->b, LLVMBuildFCmp(L->b, LLVMRealUNE, ll_load(L, ll_off(L, xq, e.iv, NULL), 1, NULL),
                                                         ll_flt(L, 0.0f, 1), ""), L->i64, "");
    LLVMBuildStore(L->b, LLVMBuildOr(L->b, LLVMBuildLoad2(L->b, L->i64, m, ""), LLVMBuildShl(L->b, bit, e.iv, ""), ""), m);
    ll_loop_close(L, &e);
    ll_endif(L, &whole);
    return LLVMBuildLoad2(L->b, L->i64, m, "");
}

/* The i64 holding bits e .. e + n - 1 (n <= 32) of spikes kept as bits
   at xr, from the one or two words that hold them. */
static LLVMValueRef bit_mask(Ll *L, LLVMValueRef xr, LLVMValueRef e, LLVMValueRef n) {
    LLVMValueRef wi = LLVMBuildLShr(L->b, e, ll_i64(L, 5), ""), sh = LLVMBuildAnd(L->b, e, ll_i64(L, 31), "");
    LLVMValueRef two = LLVMBuildICmp(L->b, LLVMIntSGT, LLVMBuildNSWAdd(L->b, sh, n, ""), ll_i64(L, 32), "");
    LLVMValueRef w[2];
    for (int h = 0; h < 2; h++) {
        LLVMValueRef at = h ? LLVMBuildSelect(L->b, two, LLVMBuildNSWAdd(L->b, wi, ll_i64(L, 1), ""), wi, "") : wi;
        LLVMValueRef word = LLVMBuildLoad2(L->b, L->i32, LLVMBuildInBoundsGEP2(L->b, L->i32, xr, &at, 1, ""), "");
        LLVMSetAlignment(word, 4);
        w[h] = LLVMBuildZExt(L->b, word, L->i64, "");
    }
    LLVMValueRef v = LLVMBuildOr(L->b, w[0], LLVMBuildShl(L->b, w[1], ll_i64(L, 32), ""), "");
    LLVMValueRef mask = LLVMBuildSub(L->b, LLVMBuildShl(L->b, ll_i64(L, 1), n, ""), ll_i64(L, 1), "");
    return LLVMBuildAnd(L->b, LLVMBuildLShr(L->b, v, sh, ""), mask, ll_name(L, "spikes"));
}

/* The inputs of a row that are not zero, in ascending order: events_open
   opens a loop whose body sees one of them, k (its index in the block)
   and xk (its value); events_close ends it. The inputs are taken 32 at a
   time, a mask of those that are not zero made by a vector comparison
   (floats) or read (spikes kept as bits), each of its set bits found by
   counting trailing zeros, so that the loop runs once per input that is
   not zero instead of branching on every input. */
typedef struct LlEvents {
    LlLoop k;                       /* groups of 32 inputs */
    LLVMBasicBlockRef head, exit;   /* the loop over the group's inputs that are not zero */
    LLVMValueRef m, next, idx, val; /* the bits left, after this one; k; xk */
} LlEvents;

static void events_open(Ll *L, LlEvents *ev, LLVMValueRef xr, int bits, LLVMValueRef e0, LLVMValueRef kn,
                        const char *what) {
    ll_loop_open(L, &ev->k, ll_i64(L, 0), kn, 32, what);
    LLVMValueRef n = min64(L, LLVMBuildNSWSub(L->b, kn, ev->k.iv, ""), 32);
    LLVMValueRef m0 = bits ? bit_mask(L, xr, LLVMBuildNSWAdd(L->b, e0, ev->k.iv, ""), n) : nz_mask(L, xr, ev->k.iv, n);
    LLVMBasicBlockRef pre = LLVMGetInsertBlock(L->b);
    ev->head = LLVMAppendBasicBlockInContext(L->ctx, L->fn, ll_name(L, "spike.head"));
    LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(L->ctx, L->fn, ll_name(L, "spike"));
    ev->exit = LLVMCreateBasicBlockInContext(L->ctx, ll_name(L, "spike.end"));
    LLVMBuildBr(L->b, ev->head);
    LLVMPositionBuilderAtEnd(L->b, ev->head);
    ev->m = LLVMBuildPhi(L->b, L->i64, "");
    LLVMAddIncoming(ev->m, &m0, &pre, 1);
    LLVMBuildCondBr(L->b, LLVMBuildICmp(L->b, LLVMIntNE, ev->m, ll_i64(L, 0), ""), body, ev->exit);
    LLVMPositionBuilderAtEnd(L->b, body);
    unsigned id = LLVMLookupIntrinsicID("llvm.cttz", 9);
    LLVMTypeRef ty = L->i64;
    LLVMValueRef args[2] = {ev->m, LLVMConstInt(L->i1, 1, 0)};
    LLVMValueRef tz = LLVMBuildCall2(L->b, LLVMIntrinsicGetType(L->ctx, id, &ty, 1),
                                     LLVMGetIntrinsicDeclaration(L->mod, id, &ty, 1), args, 2, "");
    ev->idx = LLVMBuildNSWAdd(L->b, ev->k.iv, tz, "");
    ev->val = bits ? ll_flt(L, 1.0f, 1) : ll_load(L, ll_off(L, xr, ev->idx, NULL), 1, "xk");
    ev->next = LLVMBuildAnd(L->b, ev->m, LLVMBuildSub(L->b, ev->m, ll_i64(L, 1), ""), "");
}

static void events_close(Ll *L, LlEvents *ev) {
    LLVMBasicBlockRef last = LLVMGetInsertBlock(L->b);
    LLVMBuildBr(L->b, ev->head);
    LLVMAddIncoming(ev->m, &ev->next, &last, 1);
    LLVMAppendExistingBasicBlock(L->fn, ev->exit);
    LLVMPositionBuilderAtEnd(L->b, ev->exit);
    ll_loop_close(L, &ev->k);
}

/* wt[k][o] = w[ob + o][kb + k] for o < on, k < kn (w has I columns, wt
   ow): squares of 8 x 8 transposed in vectors, by three rounds of shuffles
   that each exchange one bit of an element's row and column; the edges
   one value at a time. */
static void pack_block(Ll *L, LLVMValueRef w, long long I, LLVMValueRef ob, LLVMValueRef kb, LLVMValueRef on,
                       LLVMValueRef kn, LLVMValueRef wt, long long ow) {
    LLVMValueRef on8 = floor_to(L, on, 8), kn8 = floor_to(L, kn, 8);
    LLVMValueRef w0 = ll_off(L, w, LLVMBuildNSWAdd(L->b, LLVMBuildNSWMul(L->b, ob, ll_i64(L, I), ""), kb, ""), NULL);
    LlLoop o, k;
    ll_loop_open(L, &o, ll_i64(L, 0), on8, 8, "pack.o8");
    LLVMValueRef wo = ll_off(L, w0, LLVMBuildNSWMul(L->b, o.iv, ll_i64(L, I), ""), NULL);
    ll_loop_open(L, &k, ll_i64(L, 0), kn8, 8, "pack.k8");
    LLVMValueRef v[8];
    for (int r = 0; r < 8; r++)
        v[r] = ll_load(L, ll_off(L, wo, LLVMBuildNSWAdd(L->b, ll_i64(L, r * I), k.iv, ""), NULL), 8, NULL);
    for (int b = 1; b < 8; b <<= 1) {
        /* rows r and r + b (bit b of r clear): their columns with bit b set
           and clear trade places */
        LLVMValueRef lo[8], hi[8];
        for (int c = 0; c < 8; c++) {
            lo[c] = ll_i32(L, c & b ? 8 + c - b : c);
            hi[c] = ll_i32(L, c & b ? 8 + c : c + b);
        }
        LLVMValueRef mlo = LLVMConstVector(lo, 8), mhi = LLVMConstVector(hi, 8);
        for (int r = 0; r < 8; r++)
            if (!(r & b)) {
                LLVMValueRef a = v[r];
                v[r] = LLVMBuildShuffleVector(L->b, a, v[r + b], mlo, "");
                v[r + b] = LLVMBuildShuffleVector(L->b, a, v[r + b], mhi, "");
            }
    }
    for (int c = 0; c < 8; c++)
        ll_store(L, v[c], ll_off(L, wt, LLVMBuildNSWAdd(L->b, LLVMBuildNSWMul(L->b, LLVMBuildNSWAdd(L->b, k.iv, ll_i64(L, c), ""),
                                                                               ll_i64(L, ow), ""), o.iv, ""), NULL));
    ll_loop_close(L, &k);
    ll_loop_open(L, &k, kn8, kn, 1, "pack.k");
    for (int r = 0; r < 8; r++)
        ll_store(L, ll_load(L, ll_off(L, wo, LLVMBuildNSWAdd(L->b, ll_i64(L, r * I), k.iv, ""), NULL), 1, NULL),
                 ll_off(L, wt, LLVMBuildNSWAdd(L->b, LLVMBuildNSWMul(L->b, k.iv, ll_i64(L, ow), ""),
                                               LLVMBuildNSWAdd(L->b, o.iv, ll_i64(L, r), ""), ""), NULL));
    ll_loop_close(L, &k);
    ll_loop_close(L, &o);
    ll_loop_open(L, &o, on8, on, 1, "pack.o");
    wo = ll_off(L, w0, LLVMBuildNSWMul(L->b, o.iv, ll_i64(L, I), ""), NULL);
    ll_loop_open(L, &k, ll_i64(L, 0), kn, 1, "pack.k");
    ll_store(L, ll_load(L, ll_off(L, wo, k.iv, NULL), 1, NULL),
             ll_off(L, wt, LLVMBuildNSWAdd(L->b, LLVMBuildNSWMul(L->b, k.iv, ll_i64(L, ow), ""), o.iv, ""), NULL));
    ll_loop_close(L, &k);
    ll_loop_close(L, &o);
}

/* One row's outputs [0, width) of a block (width a constant): held in
   vectors of sums in registers (acc is promoted to values) while the
   row's inputs that are not zero add x wt[k]; a last vector of fewer
   lanes reads and writes only those (wt is zero past them). */
static void row_sums(Ll *L, LLVMValueRef yr, LLVMValueRef xr, int bits, LLVMValueRef e0, LLVMValueRef kn,
                     LLVMValueRef wt, long long ow, LLVMValueRef acc, long long width) {
    const int nv = (int)((width + LL_LANES - 1) / LL_LANES);
    LLVMTypeRef accty = LLVMArrayType(L->vf, DENSE_OB / LL_LANES);
    for (int j = 0; j < nv; j++) {
        long long n = width - j * LL_LANES < LL_LANES ? width - j * LL_LANES : LL_LANES;
        LLVMValueRef yp = ll_off(L, yr, ll_i64(L, j * LL_LANES), NULL), v = ll_flt(L, 0.0f, LL_LANES);
        if (n == LL_LANES)
            v = ll_load(L, yp, LL_LANES, NULL);
        else
            for (int e = 0; e < n; e++)
                v = LLVMBuildInsertElement(L->b, v, ll_load(L, ll_off(L, yp, ll_i64(L, e), NULL), 1, NULL),
                                           ll_i32(L, e), "");
        ll_store(L, v, ll_vec_at(L, accty, acc, j));
    }
    LlEvents ev;
    events_open(L, &ev, xr, bits, e0, kn, "k");
    LLVMValueRef wk = ll_off(L, wt, LLVMBuildNSWMul(L->b, ev.idx, ll_i64(L, ow), ""), NULL);
    LLVMValueRef xv = ll_splat(L, ev.val, LL_LANES);
    for (int j = 0; j < nv; j++) {
        LLVMValueRef at = ll_vec_at(L, accty, acc, j);
        LLVMValueRef prod =
            LLVMBuildFMul(L->b, xv, ll_load(L, ll_off(L, wk, ll_i64(L, j * LL_LANES), NULL), LL_LANES, NULL), "");
        ll_store(L, LLVMBuildFAdd(L->b, ll_load(L, at, LL_LANES, NULL), prod, ""), at);
    }
    events_close(L, &ev);
    for (int j = 0; j < nv; j++) {
        long long n = width - j * LL_LANES < LL_LANES ? width - j * LL_LANES : LL_LANES;
        LLVMValueRef yp = ll_off(L, yr, ll_i64(L, j * LL_LANES), NULL);
        LLVMValueRef v = ll_load(L, ll_vec_at(L, accty, acc, j), LL_LANES, NULL);
        if (n == LL_LANES)
            ll_store(L, v, yp);
        else
            for (int e = 0; e < n; e++)
                ll_store(L, LLVMBuildExtractElement(L->b, v, ll_i32(L, e), ""), ll_off(L, yp, ll_i64(L, e), NULL));
    }
}

/* The block of a dense layer's weights that dense_rows is at, and where
   its rows are. */
typedef struct DenseAt {
    long long I, O, ow;    /* inputs, outputs, the width of wt */
    int bits;              /* xt: spikes kept as bits */
    LLVMValueRef xt, yt;   /* the first row's input and output */
    LLVMValueRef wt, acc;  /* the block of weights transposed; vectors of sums */
    LLVMValueRef ob, kb;   /* the block's first output and input */
    LLVMValueRef on, kn;   /* its outputs and inputs */
} DenseAt;

/* Rows [from, to) of the block, one at a time, each at its inputs that
   are not zero only: blocks of ow outputs in vectors of sums (row_sums),
   the last of O % ow. */
static void rows_events(Ll *L, const DenseAt *D, LLVMValueRef from, LLVMValueRef to) {
    const long long O = D->O, ow = D->ow, last = O % ow;
    LlLoop r;
    ll_loop_open(L, &r, from, to, 1, "row");
    LLVMValueRef e0 = LLVMBuildNSWAdd(L->b, LLVMBuildNSWMul(L->b, r.iv, ll_i64(L, D->I), ""), D->kb, "");
    LLVMValueRef xr = D->bits ? D->xt : ll_off(L, D->xt, e0, "xrow");
    LLVMValueRef yr = ll_off(L, D->yt, LLVMBuildNSWAdd(L->b, LLVMBuildNSWMul(L->b, r.iv, ll_i64(L, O), ""), D->ob, ""),
                             "yrow");
    if (O >= ow && last) {
        LlIf whole;
        ll_if(L, &whole, LLVMBuildICmp(L->b, LLVMIntEQ, D->on, ll_i64(L, ow), ""), "full", 1);
        row_sums(L, yr, xr, D->bits, e0, D->kn, D->wt, ow, D->acc, ow);
        ll_else(L, &whole);
        row_sums(L, yr, xr, D->bits, e0, D->kn, D->wt, ow, D->acc, last);
        ll_endif(L, &whole);
    } else
        row_sums(L, yr, xr, D->bits, e0, D->kn, D->wt, ow, D->acc, last ? last : ow);
    ll_loop_close(L, &r);
}

/* How many of xr[0 .. n) are not zero (i64). */
static LLVMValueRef count_nz(Ll *L, LLVMValueRef xr, LLVMValueRef n) {
    LLVMValueRef c = entry_alloca(L, L->i64, ll_name(L, "events"));
    LlLoop q;
    LLVMBuildStore(L->b, ll_i64(L, 0), c);
    ll_loop_open(L, &q, ll_i64(L, 0), n, 32, "count");
    LLVMValueRef m = nz_mask(L, xr, q.iv, min64(L, LLVMBuildNSWSub(L->b, n, q.iv, ""), 32));
    unsigned id = LLVMLookupIntrinsicID("llvm.ctpop", 10);
    LLVMValueRef pop = LLVMBuildCall2(L->b, LLVMIntrinsicGetType(L->ctx, id, &L->i64, 1),
                                      LLVMGetIntrinsicDeclaration(L->mod, id, &L->i64, 1), &m, 1, "");
    LLVMBuildStore(L->b, LLVMBuildNSWAdd(L->b, LLVMBuildLoad2(L->b, L->i64, c, ""), pop, ""), c);
    ll_loop_close(L, &q);
    return LLVMBuildLoad2(L->b, L->i64, c, "");
}

/* y(rows x O) = bias + x(rows x I) w^T, each output summing its bias (or
   0) first, then x[r][k] w[o][k] in ascending k, multiply then add: the C
   target's order. The loops run over blocks of DENSE_RB rows of floats,
   then blocks of outputs, then blocks of inputs in ascending order (the
   block of w transposed into wt), then the block's rows. Rows of floats go
   TILE_MR at a time, in tiles, unless the first of them is sparse. Spikes
   kept as bits, sparse rows and the rows the tiles leave go one row at a
   time, skipping the inputs that are zero (a spike that did not fire), as
   the C target's product does, and adding the others to the block of
   outputs in vectors of sums held in registers over the block's inputs
   (row_sums). A tile's test of four rows' bits would cost more than it
   saves (a gather, and a branch as unpredictable as one row's). */
static void dense_rows(Ll *L, const IrNode *x, LLVMValueRef wt, LLVMValueRef acc, LLVMValueRef tacc, LLVMValueRef cbuf,
                       LLVMValueRef rows, LLVMValueRef xt, int bits, LLVMValueRef yt) {
    long long I = shape_count(&L->g->nodes.items[x->in[0]].shape), O = x->out;
    const long long ow = O < DENSE_OB ? align16(O) : DENSE_OB, kw = DENSE_OB * DENSE_KB / ow; /* the blocks */
    LLVMValueRef w = ll_param(L, x->param[0]);
    LlLoop r, ob, kb, k, o;
    LLVMValueRef r0, r1; /* this part's rows */
    ll_share(L, rows, TILE_MR, &r0, &r1);
    ll_loop_open(L, &r, r0, r1, 1, "init");
    LLVMValueRef yr = ll_off(L, yt, LLVMBuildNSWMul(L->b, r.iv, ll_i64(L, O), ""), NULL);
    ll_copy(L, yr, x->bias ? ll_param(L, x->param[1]) : NULL, ll_i64(L, O));
    ll_loop_close(L, &r);
    LlLoop rb;
    if (!bits) {
        ll_loop_open(L, &rb, r0, r1, DENSE_RB, "rblock");
        LLVMValueRef e = LLVMBuildNSWAdd(L->b, rb.iv, ll_i64(L, DENSE_RB), "");
        r1 = LLVMBuildSelect(L->b, LLVMBuildICmp(L->b, LLVMIntSLT, e, r1, ""), e, r1, "");
        r0 = rb.iv;
    }
    ll_loop_open(L, &ob, ll_i64(L, 0), ll_i64(L, O), ow, "oblock");
    LLVMValueRef on = min64(L, LLVMBuildNSWSub(L->b, ll_i64(L, O), ob.iv, ""), ow);
    ll_loop_open(L, &kb, ll_i64(L, 0), ll_i64(L, I), kw, "kblock");
    LLVMValueRef kn = min64(L, LLVMBuildNSWSub(L->b, ll_i64(L, I), kb.iv, ""), kw);
    pack_block(L, w, I, ob.iv, kb.iv, on, kn, wt, ow);
    /* columns past a partial block's end, up to its last tile's, are 0 */
    ll_loop_open(L, &o, on, floor_to(L, LLVMBuildNSWAdd(L->b, on, ll_i64(L, TILE_NC - 1), ""), TILE_NC), 1, "pad.o");
    ll_loop_open(L, &k, ll_i64(L, 0), kn, 1, "pad.k");
    ll_store(L, ll_flt(L, 0.0f, 1),
             ll_off(L, wt, LLVMBuildNSWAdd(L->b, LLVMBuildNSWMul(L->b, k.iv, ll_i64(L, ow), ""), o.iv, ""), NULL));
    ll_loop_close(L, &k);
    ll_loop_close(L, &o);
    DenseAt D = {.I = I, .O = O, .ow = ow, .bits = bits, .xt = xt, .yt = yt, .wt = wt, .acc = acc,
                 .ob = ob.iv, .kb = kb.iv, .on = on, .kn = kn};
    /* TILE_MR rows at a time in tiles of TILE_NC outputs (a tile past the
       block's end works on a copy of its columns in cbuf), or where the
       first of them has fewer than kn / its cost (event_cost4) inputs that
       are not zero, one at a time at those inputs */
    LLVMValueRef tiled = r0;
    if (!bits) { /* no tiles over spikes kept as bits (above) */
        tiled = LLVMBuildNSWAdd(L->b, r0, floor_to(L, LLVMBuildNSWSub(L->b, r1, r0, ""), TILE_MR), "");
        LlLoop jt;
        LlIf sparse;
        ll_loop_open(L, &r, r0, tiled, TILE_MR, "rtile");
        LLVMValueRef events = count_nz(L, ll_off(L, xt, LLVMBuildNSWAdd(L->b, LLVMBuildNSWMul(L->b, r.iv, ll_i64(L, I), ""),
                                                                         kb.iv, ""), NULL), kn);
        ll_if(L, &sparse,
              LLVMBuildICmp(L->b, LLVMIntSLT, LLVMBuildNSWMul(L->b, events, ll_i64(L, event_cost4(ow)), ""),
                            LLVMBuildNSWMul(L->b, kn, ll_i64(L, 4), ""), ""),
              "sparse", 1);
        rows_events(L, &D, r.iv, LLVMBuildNSWAdd(L->b, r.iv, ll_i64(L, TILE_MR), ""));
        ll_else(L, &sparse);
        ll_loop_open(L, &jt, ll_i64(L, 0), on, TILE_NC, "ctile");
        LLVMValueRef end = LLVMBuildNSWAdd(L->b, jt.iv, ll_i64(L, TILE_NC), "");
        LLVMValueRef inside = LLVMBuildICmp(L->b, LLVMIntSLE, end, on, "");
        LLVMValueRef cols = LLVMBuildNSWSub(L->b, on, jt.iv, "");
        LLVMValueRef cdst = ll_off(L, yt, LLVMBuildNSWAdd(L->b, LLVMBuildNSWMul(L->b, r.iv, ll_i64(L, O), ""),
                                                          LLVMBuildNSWAdd(L->b, ob.iv, jt.iv, ""), ""), NULL);
        for (int back = 0; back < 2; back++) {
            LlIf part;
            LlLoop c;
            if (back) {
                LlTile t = {.a = ll_off(L, xt, kb.iv, NULL), .ai = I, .ak = 1, .b = ll_off(L, wt, jt.iv, NULL),
                            .bk = ll_i64(L, ow)};
                t.a0 = LLVMBuildNSWMul(L->b, r.iv, ll_i64(L, I), "");
                t.c = LLVMBuildSelect(L->b, inside, cdst, cbuf, "");
                t.ci = LLVMBuildSelect(L->b, inside, ll_i64(L, O), ll_i64(L, TILE_NC), "");
                tile(L, tacc, &t, kn);
            }
            ll_if(L, &part, LLVMBuildNot(L->b, inside, ""), back ? "ctile.out" : "ctile.in", 0);
            for (int i = 0; i < TILE_MR; i++) {
                LLVMValueRef yrow = ll_off(L, cdst, ll_i64(L, i * O), NULL);
                ll_loop_open(L, &c, ll_i64(L, 0), cols, 1, back ? "ctile.out.c" : "ctile.in.c");
                LLVMValueRef yp = ll_off(L, yrow, c.iv, NULL), bp = ll_off(L, cbuf, ll_i64(L, i * TILE_NC), NULL);
                bp = ll_off(L, bp, c.iv, NULL);
                if (back)
                    ll_store(L, ll_load(L, bp, 1, NULL), yp);
                else
                    ll_store(L, ll_load(L, yp, 1, NULL), bp);
                ll_loop_close(L, &c);
            }
            ll_endif(L, &part);
        }
        ll_loop_close(L, &jt);
        ll_endif(L, &sparse);
        ll_loop_close(L, &r);
    }
    /* the rows left over, one at a time */
    rows_events(L, &D, tiled, r1);
    ll_loop_close(L, &kb);
    ll_loop_close(L, &ob);
    if (!bits)
        ll_loop_close(L, &rb);
}

void ll_dense_fwd(TargetEmitter *em, const IrPlan *P, int i) {
    Ll *L = em;
    const IrNode *x = &L->g->nodes.items[i];
    int in = x->in[0];
    ll_kernel_open(L, P, i, 1);
    LLVMValueRef wt = LLVMBuildArrayAlloca(L->b, L->f32, ll_i64(L, DENSE_OB * DENSE_KB), ll_name(L, "wt"));
    LLVMSetAlignment(wt, 64);
    LLVMValueRef acc = LLVMBuildAlloca(L->b, LLVMArrayType(L->vf, DENSE_OB / LL_LANES), ll_name(L, "acc"));
    LLVMValueRef tacc = tile_acc(L);
    LLVMValueRef cbuf = LLVMBuildArrayAlloca(L->b, L->f32, ll_i64(L, TILE_MR * TILE_NC), ll_name(L, "cbuf"));
    LLVMSetAlignment(cbuf, 32);
    if (P->at[in].inv && !P->at[i].inv) {
        /* an input stored once, an output at every step: one product per step */
        LlLoop t;
        ll_loop_open(L, &t, ll_from(L), ll_to(L), 1, "t");
        dense_rows(L, x, wt, acc, tacc, cbuf, L->B, ll_at(L, in, ll_i32(L, 0), "x"), 0, ll_at(L, i, t.iv, "y"));
        ll_loop_close(L, &t);
    } else {
        LLVMValueRef steps = LLVMBuildSExt(L->b, LLVMBuildNSWSub(L->b, ll_to(L), ll_from(L), ""), L->i64, "");
        LLVMValueRef rows = LLVMBuildNSWMul(L->b, steps, L->B, ll_name(L, "rows"));
        int bits = P->at[in].bits;
        LLVMValueRef xt = bits ? ll_bits_at(L, in, ll_from(L), "spikes") : ll_at(L, in, ll_from(L), "x");
        dense_rows(L, x, wt, acc, tacc, cbuf, rows, xt, bits, ll_at(L, i, ll_from(L), "y"));
    }
    ll_kernel_close(L);
}

/* dw += gy^T x, db += the sum of gy's rows, gx += gy w (when dx asks),
   each element summing its terms in ascending order (rows for dw, outputs
   for gx), multiply then add, as the C target's products do. Over blocks
   of DENSE_KB inputs: dw in tiles of TILE_MR outputs by TILE_NC inputs
   over DENSE_RC rows at a time (a row whose TILE_MR gradients are zero
   adds nothing), gx in tiles of TILE_MR rows by TILE_NC inputs over the
   outputs; what the tiles leave (the last outputs, rows and inputs) adds
   a row at a time, gy[r][o] x[r][kb..] to dw[o][kb..] (rows whose
   gradient is zero add nothing) and gy[r][o] w[o][kb..] to gx[r][kb..].
   Spikes kept as bits are unpacked a block of rows at a time onto the
   stack. */
void ll_dense_bwd(TargetEmitter *em, const IrPlan *P, int i) {
    Ll *L = em;
    const IrNode *x = &L->g->nodes.items[i];
    int in = x->in[0], bits = P->at[in].bits;
    long long I = shape_count(&L->g->nodes.items[in].shape), O = x->out;
    const long long ofull = O - O % TILE_MR;
    if (P->at[in].inv && !P->at[i].inv)
        ICE("a dense layer of a value stored once is stored at every step");
    ll_kernel_open(L, P, i, 0);
    LLVMValueRef xs = NULL;
    if (bits) {
        xs = LLVMBuildArrayAlloca(L->b, L->f32, ll_i64(L, DENSE_RC * DENSE_KB), ll_name(L, "xs"));
        LLVMSetAlignment(xs, 64);
    }
    LLVMValueRef tacc = tile_acc(L);
    LLVMValueRef steps = LLVMBuildSExt(L->b, LLVMBuildNSWSub(L->b, ll_to(L), ll_from(L), ""), L->i64, "");
    LLVMValueRef rows = LLVMBuildNSWMul(L->b, steps, L->B, ll_name(L, "rows"));
    LLVMValueRef o0, o1, q0, q1; /* this part's outputs (db, dw) and rows (gx) */
    ll_share(L, ll_i64(L, O), TILE_MR, &o0, &o1);
    ll_share(L, rows, TILE_MR, &q0, &q1);
    LLVMValueRef xt = bits ? ll_bits_at(L, in, ll_from(L), "spikes") : ll_at(L, in, ll_from(L), "x");
    LLVMValueRef gy = ll_grad_at(L, i, ll_from(L), "gy");
    LLVMValueRef w = ll_param(L, x->param[0]), dw = ll_param_grad(L, x->param[0]);
    LlLoop r, o, kb, rc, k, kt;
    if (x->bias) {
        LLVMValueRef db = ll_param_grad(L, x->param[1]);
        ll_loop_open(L, &r, ll_i64(L, 0), rows, 1, "db.r");
        ll_axpy(L, ll_off(L, db, o0, NULL), ll_flt(L, 1.0f, 1),
                ll_off(L, gy, LLVMBuildNSWAdd(L->b, LLVMBuildNSWMul(L->b, r.iv, ll_i64(L, O), ""), o0, ""), NULL),
                LLVMBuildNSWSub(L->b, o1, o0, ""));
        ll_loop_close(L, &r);
    }
    ll_loop_open(L, &kb, ll_i64(L, 0), ll_i64(L, I), DENSE_KB, "kblock");
    LLVMValueRef kn = min64(L, LLVMBuildNSWSub(L->b, ll_i64(L, I), kb.iv, ""), DENSE_KB);
    LLVMValueRef kfull = floor_to(L, kn, TILE_NC);
    /* dw: every row at once, or DENSE_RC rows at a time unpacked from bits */
    LLVMValueRef r0 = ll_i64(L, 0), rn = rows;
    LLVMValueRef xb = xs, bk = ll_i64(L, DENSE_KB); /* B(r, k): row r0 + r, input kb + k */
    if (bits) {
        ll_loop_open(L, &rc, ll_i64(L, 0), rows, DENSE_RC, "rchunk");
        r0 = rc.iv;
        rn = min64(L, LLVMBuildNSWSub(L->b, rows, r0, ""), DENSE_RC);
        ll_loop_open(L, &r, ll_i64(L, 0), rn, 1, "unpack.r");
        LLVMValueRef e0 = LLVMBuildNSWAdd(L->b, LLVMBuildNSWMul(L->b, LLVMBuildNSWAdd(L->b, r0, r.iv, ""),
                                                                ll_i64(L, I), ""), kb.iv, "");
        LLVMValueRef xr = ll_off(L, xs, LLVMBuildNSWMul(L->b, r.iv, ll_i64(L, DENSE_KB), ""), NULL);
        ll_loop_open(L, &k, ll_i64(L, 0), kn, 1, "unpack.k");
        ll_store(L, ll_bit(L, xt, LLVMBuildNSWAdd(L->b, e0, k.iv, "")), ll_off(L, xr, k.iv, NULL));
        ll_loop_close(L, &k);
        ll_loop_close(L, &r);
    } else {
        xb = ll_off(L, xt, kb.iv, "xblock");
        bk = ll_i64(L, I);
    }
    LLVMValueRef gyc = ll_off(L, gy, LLVMBuildNSWMul(L->b, r0, ll_i64(L, O), ""), NULL);
    /* the tiles of a column of inputs in turn: its rows of x stay in cache */
    ll_loop_open(L, &kt, ll_i64(L, 0), kfull, TILE_NC, "dw.k");
    ll_loop_open(L, &o, o0, min64(L, o1, ofull), TILE_MR, "dw.o");
    LlTile t = {.a = gyc, .a0 = o.iv, .ai = 1, .ak = O, .b = ll_off(L, xb, kt.iv, NULL), .bk = bk, .ci = ll_i64(L, I)};
    t.c = ll_off(L, dw, LLVMBuildNSWAdd(L->b, LLVMBuildNSWMul(L->b, o.iv, ll_i64(L, I), ""),
                                        LLVMBuildNSWAdd(L->b, kb.iv, kt.iv, ""), ""), NULL);
    tile(L, tacc, &t, rn);
    ll_loop_close(L, &o);
    ll_loop_close(L, &kt);
    /* what the tiles leave: the block's last inputs of the tiled outputs,
       every input of the outputs past them */
    ll_loop_open(L, &o, o0, o1, 1, "dw.rest");
    LLVMValueRef k0 = LLVMBuildSelect(L->b, LLVMBuildICmp(L->b, LLVMIntSLT, o.iv, ll_i64(L, ofull), ""), kfull,
                                      ll_i64(L, 0), "");
    LlIf left;
    ll_if(L, &left, LLVMBuildICmp(L->b, LLVMIntSLT, k0, kn, ""), "dw.left", 0);
    ll_loop_open(L, &r, ll_i64(L, 0), rn, 1, "row");
    LLVMValueRef g = ll_load(
        L, ll_off(L, gyc, LLVMBuildNSWAdd(L->b, LLVMBuildNSWMul(L->b, r.iv, ll_i64(L, O), ""), o.iv, ""), NULL), 1, "g");
    LlIf nz;
    ll_if(L, &nz, LLVMBuildFCmp(L->b, LLVMRealUNE, g, ll_flt(L, 0.0f, 1), ""), "nonzero", 0);
    ll_axpy(L,
            ll_off(L, dw, LLVMBuildNSWAdd(L->b, LLVMBuildNSWMul(L->b, o.iv, ll_i64(L, I), ""),
                                          LLVMBuildNSWAdd(L->b, kb.iv, k0, ""), ""), NULL),
            g, ll_off(L, xb, LLVMBuildNSWAdd(L->b, LLVMBuildNSWMul(L->b, r.iv, bk, ""), k0, ""), NULL),
            LLVMBuildNSWSub(L->b, kn, k0, ""));
    ll_endif(L, &nz);
    ll_loop_close(L, &r);
    ll_endif(L, &left);
    ll_loop_close(L, &o);
    if (bits)
        ll_loop_close(L, &rc);
    if (P->at[in].needgrad) {
        LlIf want;
        ll_if(L, &want, LLVMBuildICmp(L->b, LLVMIntNE, ll_flag(L), ll_i32(L, 0), ""), "dx", 0);
        LLVMValueRef gx = ll_grad_at(L, in, ll_from(L), "gx");
        LLVMValueRef rfull = LLVMBuildNSWAdd(L->b, q0, floor_to(L, LLVMBuildNSWSub(L->b, q1, q0, ""), TILE_MR), "");
        ll_loop_open(L, &r, q0, rfull, TILE_MR, "gx.r");
        ll_loop_open(L, &kt, ll_i64(L, 0), kfull, TILE_NC, "gx.k");
        LLVMValueRef col = LLVMBuildNSWAdd(L->b, kb.iv, kt.iv, "");
        LlTile u = {.a = gy, .a0 = LLVMBuildNSWMul(L->b, r.iv, ll_i64(L, O), ""), .ai = O, .ak = 1,
                    .b = ll_off(L, w, col, NULL), .bk = ll_i64(L, I), .ci = ll_i64(L, I)};
        u.c = ll_off(L, gx, LLVMBuildNSWAdd(L->b, LLVMBuildNSWMul(L->b, r.iv, ll_i64(L, I), ""), col, ""), NULL);
        tile(L, tacc, &u, ll_i64(L, O));
        ll_loop_close(L, &kt);
        ll_loop_close(L, &r);
        /* what the tiles leave: the block's last inputs of the tiled rows,
           every input of the rows past them */
        ll_loop_open(L, &r, q0, q1, 1, "gx.row");
        LLVMValueRef c0 =
            LLVMBuildSelect(L->b, LLVMBuildICmp(L->b, LLVMIntSLT, r.iv, rfull, ""), kfull, ll_i64(L, 0), "");
        LlIf rest;
        ll_if(L, &rest, LLVMBuildICmp(L->b, LLVMIntSLT, c0, kn, ""), "gx.left", 0);
        LLVMValueRef from = LLVMBuildNSWAdd(L->b, kb.iv, c0, "");
        LLVMValueRef gxr = ll_off(L, gx, LLVMBuildNSWAdd(L->b, LLVMBuildNSWMul(L->b, r.iv, ll_i64(L, I), ""), from, ""),
                                  NULL);
        ll_loop_open(L, &o, ll_i64(L, 0), ll_i64(L, O), 1, "gx.o");
        LLVMValueRef g1 = ll_load(
            L, ll_off(L, gy, LLVMBuildNSWAdd(L->b, LLVMBuildNSWMul(L->b, r.iv, ll_i64(L, O), ""), o.iv, ""), NULL), 1,
            "g");
        ll_axpy(L, gxr, g1,
                ll_off(L, w, LLVMBuildNSWAdd(L->b, LLVMBuildNSWMul(L->b, o.iv, ll_i64(L, I), ""), from, ""), NULL),
                LLVMBuildNSWSub(L->b, kn, c0, ""));
        ll_loop_close(L, &o);
        ll_endif(L, &rest);
        ll_loop_close(L, &r);
        ll_endif(L, &want);
    }
    ll_loop_close(L, &kb);
    ll_kernel_close(L);
}

void ll_eltwise_fwd(TargetEmitter *em, const IrPlan *P, int i) {
    Ll *L = em;
    const IrNode *x = &L->g->nodes.items[i];
    long long n = shape_count(&x->shape);
    ll_kernel_open(L, P, i, 1);
    LlLoop t, j;
    ll_loop_open(L, &t, ll_from(L), ll_to(L), 1, "t");
    LLVMValueRef a = ll_at(L, x->in[0], t.iv, "a");
    LLVMValueRef b = x->op == IR_ADD ? ll_at(L, x->in[1], t.iv, "b") : NULL;
    LLVMValueRef y = ll_at(L, i, t.iv, "y");
    LLVMValueRef N = LLVMBuildNSWMul(L->b, L->B, ll_i64(L, n), "");
    if (x->op == IR_ADD || x->op == IR_SCALE) {
        ll_loop_open(L, &j, ll_i64(L, 0), N, 1, "j");
        LLVMValueRef av = ll_load(L, ll_off(L, a, j.iv, NULL), 1, NULL);
        LLVMValueRef v = x->op == IR_ADD ? LLVMBuildFAdd(L->b, av, ll_load(L, ll_off(L, b, j.iv, NULL), 1, NULL), "")
                                         : LLVMBuildFMul(L->b, av, ll_flt(L, x->fval, 1), "");
        ll_store(L, v, ll_off(L, y, j.iv, NULL));
        ll_loop_close(L, &j);
    } else if (x->op == IR_DROPOUT && ll_train(L)) { /* training: the mask, the same at every step */
        LlIf f;
        ll_if(L, &f, LLVMBuildICmp(L->b, LLVMIntNE, ll_flag(L), ll_i32(L, 0), ""), "training", 1);
        LLVMValueRef m = ll_plan(L, P->at[i].mask, "mask");
        ll_loop_open(L, &j, ll_i64(L, 0), N, 1, "j");
        ll_store(L, LLVMBuildFMul(L->b, ll_load(L, ll_off(L, a, j.iv, NULL), 1, NULL),
                                  ll_load(L, ll_off(L, m, j.iv, NULL), 1, NULL), ""),
                 ll_off(L, y, j.iv, NULL));
        ll_loop_close(L, &j);
        ll_else(L, &f);
        ll_copy(L, y, a, N);
        ll_endif(L, &f);
    } else /* identity, and dropout at inference */
        ll_copy(L, y, a, N);
    ll_loop_close(L, &t);
    ll_kernel_close(L);
}

/* y[t] = 0 at the first step, else the source's value at t - 1; a source
   of an earlier group has its value of the step before the call in the
   carry (ckernels.c ck_delay_fwd). */
void ll_delay_fwd(TargetEmitter *em, const IrPlan *P, int i) {
    Ll *L = em;
    const IrNode *x = &L->g->nodes.items[i];
    int s = x->in[0];
    int64_t carry = P->at[i].carry;
    ll_kernel_open(L, P, i, 1);
    LLVMValueRef N = LLVMBuildNSWMul(L->b, L->B, ll_i64(L, shape_count(&x->shape)), ll_name(L, "n"));
    LlLoop t;
    ll_loop_open(L, &t, ll_from(L), ll_to(L), 1, "t");
    LLVMValueRef y = ll_at(L, i, t.iv, "y");
    LlIf first, resume;
    ll_if(L, &first, LLVMBuildICmp(L->b, LLVMIntEQ, t.iv, ll_i32(L, 0), ""), "first", 1);
    ll_copy(L, y, NULL, N);
    ll_else(L, &first);
    if (carry >= 0) {
        ll_if(L, &resume, LLVMBuildICmp(L->b, LLVMIntEQ, t.iv, ll_from(L), ""), "carried", 1);
        ll_copy(L, y, ll_plan(L, carry, "carry"), N);
        ll_else(L, &resume);
    }
    ll_copy(L, y, ll_at(L, s, LLVMBuildNSWSub(L->b, t.iv, ll_i32(L, 1), ""), "prev"), N);
    if (carry >= 0)
        ll_endif(L, &resume);
    ll_endif(L, &first);
    ll_loop_close(L, &t);
    if (carry >= 0)
        ll_copy(L, ll_plan(L, carry, "carry"), ll_at(L, s, LLVMBuildNSWSub(L->b, ll_to(L), ll_i32(L, 1), ""), "last"),
                N);
    ll_kernel_close(L);
}

/* The gradient of add, scale, identity and dropout: gy (times the scale,
   or dropout's mask) added to each input's that the dx flag asks for (bit
   k: input k), the steps in ascending order (a gradient stored once sums
   its steps in order). */
void ll_eltwise_bwd(TargetEmitter *em, const IrPlan *P, int i) {
    Ll *L = em;
    const IrNode *x = &L->g->nodes.items[i];
    ll_kernel_open(L, P, i, 0);
    LLVMValueRef m = x->op == IR_DROPOUT ? ll_plan(L, P->at[i].mask, "mask") : NULL;
    LLVMValueRef N = LLVMBuildNSWMul(L->b, L->B, ll_i64(L, shape_count(&x->shape)), ll_name(L, "n"));
    LlLoop t;
    ll_loop_open(L, &t, ll_from(L), ll_to(L), 1, "t");
    LLVMValueRef gy = ll_grad_at(L, i, t.iv, "gy");
    for (int k = 0; k < x->nin; k++) {
        if (!P->at[x->in[k]].needgrad)
            continue;
        LlIf want;
        LLVMValueRef bit = LLVMBuildAnd(L->b, ll_flag(L), ll_i32(L, 1 << k), "");
        ll_if(L, &want, LLVMBuildICmp(L->b, LLVMIntNE, bit, ll_i32(L, 0), ""), arena_printf(L->a, "dx%d", k), 0);
        LLVMValueRef gx = ll_grad_at(L, x->in[k], t.iv, "gx");
        if (m) {
            LlLoop j;
            ll_loop_open(L, &j, ll_i64(L, 0), N, 1, "j");
            LLVMValueRef prod = LLVMBuildFMul(L->b, ll_load(L, ll_off(L, gy, j.iv, NULL), 1, NULL),
                                              ll_load(L, ll_off(L, m, j.iv, NULL), 1, NULL), "");
            LLVMValueRef at = ll_off(L, gx, j.iv, NULL);
            ll_store(L, LLVMBuildFAdd(L->b, ll_load(L, at, 1, NULL), prod, ""), at);
            ll_loop_close(L, &j);
        } else
            ll_axpy(L, gx, ll_flt(L, x->op == IR_SCALE ? x->fval : 1.0f, 1), gy, N);
        ll_endif(L, &want);
    }
    ll_loop_close(L, &t);
    ll_kernel_close(L);
}

/* prev(): the gradient of step t goes to the source's at t - 1. */
void ll_delay_bwd(TargetEmitter *em, const IrPlan *P, int i) {
    Ll *L = em;
    const IrNode *x = &L->g->nodes.items[i];
    int s = x->in[0];
    ll_kernel_open(L, P, i, 0);
    if (P->at[s].needgrad) {
        LLVMValueRef N = LLVMBuildNSWMul(L->b, L->B, ll_i64(L, shape_count(&x->shape)), ll_name(L, "n"));
        LlIf want;
        ll_if(L, &want, LLVMBuildICmp(L->b, LLVMIntNE, ll_flag(L), ll_i32(L, 0), ""), "dx", 0);
        LLVMValueRef from = ll_from(L);
        from = LLVMBuildSelect(L->b, LLVMBuildICmp(L->b, LLVMIntSLT, from, ll_i32(L, 1), ""), ll_i32(L, 1), from, "");
        LlLoop t;
        ll_loop_open(L, &t, from, ll_to(L), 1, "t");
        ll_axpy(L, ll_grad_at(L, s, LLVMBuildNSWSub(L->b, t.iv, ll_i32(L, 1), ""), "gs"), ll_flt(L, 1.0f, 1),
                ll_grad_at(L, i, t.iv, "gy"), N);
        ll_loop_close(L, &t);
        ll_endif(L, &want);
    }
    ll_kernel_close(L);
}
