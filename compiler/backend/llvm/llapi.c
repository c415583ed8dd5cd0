/*
 * llapi.c: the llvm target's module and its public API, written from the
 * schedule as the C target's (capi.c) is, with the same names and
 * signatures (docs/generated-code.md):
 *   - <net>_reset sets every state to its initial value;
 *   - <net>_step runs every node's kernel for one step, the step counter
 *     kept in the workspace saying which slot of each buffer it uses;
 *   - <net>_forward runs a sequence chunk by chunk, each group of the
 *     schedule computing the chunk's steps before the next starts
 *     (recurrent groups step by step), then the readout;
 *   - <net>_probe points at the recorded values of the last step;
 *   - with `encode rate` or `encode latency`, an internal encoder of one
 *     step (the C target's arithmetic and random numbers) and, for rate,
 *     <net>_seed;
 *   - <net>_workspace_floats and <net>_params, as the header declares;
 *   - with g->train, the training API (lltrain.c);
 *   - --embed-weights: the parameters as constant arrays of the module,
 *     the inference workspace without them (as the C target's);
 *   - --static: a zeroed workspace of the module, <net>_static_workspace
 *     (public, for <net>_weights.c), that the inference functions use when
 *     theirs is NULL (the training functions take theirs).
 * The header is the C target's (capi_header).
 * The files: <net>.h and <net>.ll, the module's text (deterministic: the
 * same model gives the same bytes), or <net>.o for --triple; and, unless
 * the weights are embedded, <net>_weights.c, the C target's weight loader
 * and initialization (snnc itself fills the parameters of what it runs).
 */
#include <limits.h>
#include <llvm-c/Analysis.h>
#include <stdlib.h>
#include <string.h>

#include "ll.h"

/* --embed-weights: each parameter a constant array of the module. */
static void embed_weights(Ll *L) {
    const IrGraph *g = L->g;
    L->weight = arena_alloc(L->a, sizeof(LLVMValueRef) * (size_t)(g->params.len + 1));
    for (int k = 0; k < g->params.len; k++) {
        const IrParam *q = &g->params.items[k];
        LLVMValueRef *v = malloc(sizeof(LLVMValueRef) * (size_t)q->count);
        if (!v)
            ICE("out of memory");
        for (int64_t j = 0; j < q->count; j++)
            v[j] = LLVMConstReal(L->f32, L->opt->embedded[q->off + j]);
        L->weight[k] = ll_global(L, arena_printf(L->a, "%s_w%d.%s", L->p, k, q->name),
                                 LLVMConstArray(L->f32, v, (unsigned)q->count), 0);
        LLVMSetAlignment(L->weight[k], 64);
        free(v);
    }
}

/* --static: the zeroed workspace that a null one stands for. */
static int static_workspace(Ll *L) {
    if (L->ws_floats > (long long)UINT_MAX) {
        error_plain("llvm target: --static: a workspace of %lld floats is larger than one array can be",
                    L->ws_floats);
        return -1;
    }
    LLVMTypeRef t = LLVMArrayType(L->f32, (unsigned)L->ws_floats);
    L->static_ws = LLVMAddGlobal(L->mod, t, arena_printf(L->a, "%s_static_workspace", L->p));
    LLVMSetInitializer(L->static_ws, LLVMConstNull(t));
    LLVMSetAlignment(L->static_ws, 64);
    return 0;
}

TargetEmitter *llapi_begin(const IrGraph *g, const CgenOptions *opt) {
    Ll *L = arena_alloc(g->arena, sizeof *L);
    L->g = g;
    L->opt = opt;
    L->a = g->arena;
    /* the header declares the weight functions where <net>_weights.c
       defines them (snnc compile; the driver fills the parameters itself) */
    if (capi_header(g, opt, &L->header, &L->ws_floats, &L->train_ws_floats, &L->p) != 0)
        return NULL;
    L->own_ctx = !opt->target_ctx;
    L->ctx = opt->target_ctx ? opt->target_ctx : LLVMContextCreate();
    L->mod = LLVMModuleCreateWithNameInContext(L->p, L->ctx);
    const char *src = target_clean_name(L->a, g->source);
    LLVMSetSourceFileName(L->mod, src, strlen(src));
    L->b = LLVMCreateBuilderInContext(L->ctx);
    L->f32 = LLVMFloatTypeInContext(L->ctx);
    L->f64 = LLVMDoubleTypeInContext(L->ctx);
    L->i1 = LLVMInt1TypeInContext(L->ctx);
    L->i32 = LLVMInt32TypeInContext(L->ctx);
    L->i64 = LLVMInt64TypeInContext(L->ctx);
    L->ptr = LLVMPointerTypeInContext(L->ctx, 0);
    L->vf = LLVMVectorType(L->f32, LL_LANES);
    LLVMTypeRef kargs[8] = {L->ptr, L->i64, L->i32, L->i32, L->i32, L->ptr, L->i32, L->i32};
    L->kfn = LLVMFunctionType(LLVMVoidTypeInContext(L->ctx), kargs, 8, 0);
    LLVMTypeRef bargs[10] = {L->ptr, L->i64, L->i32, L->i32, L->i32, L->ptr, L->ptr, L->ptr, L->i32, L->i32};
    L->bkfn = LLVMFunctionType(LLVMVoidTypeInContext(L->ctx), bargs, 10, 0);
    LLVMTypeRef cargs[9] = {L->ptr, L->ptr, L->i64, L->i32, L->i32, L->i32, L->ptr, L->ptr, L->ptr};
    L->ctxty = LLVMStructTypeInContext(L->ctx, cargs, 9, 0);
    L->md_node = LLVMGetMDKindIDInContext(L->ctx, "snnc.node", 9);
    L->kern = arena_alloc(L->a, sizeof(LLVMValueRef) * (size_t)(3 * g->nodes.len + 1));
    L->tkern = L->kern + g->nodes.len;
    L->bkern = L->tkern + g->nodes.len;
    L->P = &g->infer;
    if (opt->embedded)
        embed_weights(L);
    if (opt->static_ws && static_workspace(L) != 0) {
        llapi_dispose(L, 0);
        return NULL;
    }
    return L;
}

void llapi_dispose(TargetEmitter *em, int keep_module) {
    Ll *L = em;
    if (L->b)
        LLVMDisposeBuilder(L->b);
    L->b = NULL;
    if (!keep_module && L->mod)
        LLVMDisposeModule(L->mod);
    L->mod = NULL;
    if (!keep_module && L->own_ctx && L->ctx)
        LLVMContextDispose(L->ctx);
    L->ctx = NULL;
    buf_free(&L->header);
}

/* ---- helpers of the API functions ---- */

/* Opens a public function <net>_<name>, its arguments named. */
LLVMValueRef ll_api_open(Ll *L, const char *name, LLVMTypeRef ret, LLVMTypeRef *args, const char *const *names,
                             unsigned n) {
    L->layer = name;
    L->P = &L->g->infer;
    L->fn = LLVMAddFunction(L->mod, arena_printf(L->a, "%s_%s", L->p, name), LLVMFunctionType(ret, args, n, 0));
    for (unsigned k = 0; k < n; k++)
        LLVMSetValueName2(LLVMGetParam(L->fn, k), names[k], strlen(names[k]));
    L->ws = LLVMGetParam(L->fn, 0);
    LLVMPositionBuilderAtEnd(L->b, LLVMAppendBasicBlockInContext(L->ctx, L->fn, ll_name(L, "entry")));
    return L->fn;
}

/* Opens a public function of inference, whose first argument is the
   workspace: NULL stands for the static one where there is one. */
static LLVMValueRef open_infer(Ll *L, const char *name, LLVMTypeRef ret, LLVMTypeRef *args, const char *const *names,
                               unsigned n) {
    LLVMValueRef fn = ll_api_open(L, name, ret, args, names, n);
    if (L->static_ws) {
        LLVMValueRef none = LLVMBuildICmp(L->b, LLVMIntEQ, L->ws, LLVMConstNull(L->ptr), "");
        L->ws = LLVMBuildSelect(L->b, none, L->static_ws, L->ws, ll_name(L, "ws"));
    }
    return fn;
}

/* The batch argument, within 1 .. the largest batch (i64). */
LLVMValueRef ll_clamp_batch(Ll *L, LLVMValueRef batch) {
    LLVMValueRef b = LLVMBuildSExt(L->b, batch, L->i64, "");
    b = LLVMBuildSelect(L->b, LLVMBuildICmp(L->b, LLVMIntSLT, b, ll_i64(L, 1), ""), ll_i64(L, 1), b, "");
    return LLVMBuildSelect(L->b, LLVMBuildICmp(L->b, LLVMIntSGT, b, ll_i64(L, L->g->batch), ""),
                           ll_i64(L, L->g->batch), b, ll_name(L, "B"));
}

/* The step counter in the workspace: the steps since reset and the batch
   of the last call, two longs. Past 2 K steps it wraps to K + (t % K), so
   that the slot stays right and the first step stays the only 0. */
static void counter_write(Ll *L, LLVMValueRef t, LLVMValueRef B) {
    long long K = L->g->infer.chunk;
    LLVMValueRef at = ll_plan(L, L->g->infer.counter, "counter");
    LLVMValueRef wrap = LLVMBuildICmp(L->b, LLVMIntSGE, t, ll_i64(L, 2 * K), "");
    LLVMValueRef v = LLVMBuildSelect(L->b, wrap, LLVMBuildNSWSub(L->b, t, ll_i64(L, K), ""), t, "");
    LLVMSetAlignment(LLVMBuildStore(L->b, v, at), sizeof(float));
    LLVMSetAlignment(LLVMBuildStore(L->b, B, ll_off(L, at, ll_i64(L, 2), NULL)), sizeof(float));
}

static void counter_read(Ll *L, LLVMValueRef *t, LLVMValueRef *B) {
    LLVMValueRef at = ll_plan(L, L->g->infer.counter, "counter");
    *t = LLVMBuildLoad2(L->b, L->i64, at, ll_name(L, "steps"));
    LLVMSetAlignment(*t, sizeof(float));
    *B = LLVMBuildLoad2(L->b, L->i64, ll_off(L, at, ll_i64(L, 2), NULL), ll_name(L, "B"));
    LLVMSetAlignment(*B, sizeof(float));
}

static int runs(const IrGraph *g, int i) { return ir_op_kernel[g->nodes.items[i].op]; }

/* A call of node i's kernel over the steps [from, to) (i32 values). */
static void call(Ll *L, int i, LLVMValueRef from, LLVMValueRef to) {
    LLVMValueRef args[6] = {L->ws, L->B, from, to, ll_i32(L, 0), LLVMConstPointerNull(L->ptr)};
    ll_launch(L, i, L->kern[i], args, 1);
}

static long long count(Ll *L, int i) { return shape_count(&L->g->nodes.items[i].shape); }

/* The input of `steps` steps (i64) from src into the input's slots from step t. */
static void copy_input(Ll *L, LLVMValueRef t, LLVMValueRef src, LLVMValueRef steps) {
    LLVMValueRef n = LLVMBuildNSWMul(L->b, LLVMBuildNSWMul(L->b, steps, L->B, ""), ll_i64(L, count(L, L->g->input)), "");
    ll_copy(L, ll_at(L, L->g->input, t, "input"), src, n);
}

/* ---- the encoder of `encode rate` and `encode latency` ---- */

/* The encoder's values in inference, after the step counter's two longs
   in its slot (capi.c enc_at): at byte 16 the seed and its complement, at
   byte 32 the steps since reset. */
static LLVMValueRef enc_at(Ll *L, int byte) {
    LLVMValueRef at = ll_plan(L, L->g->infer.counter, "counter");
    LLVMValueRef off = ll_i64(L, byte);
    return LLVMBuildInBoundsGEP2(L->b, LLVMInt8TypeInContext(L->ctx), at, &off, 1, "");
}

static LLVMValueRef load_i64(Ll *L, LLVMValueRef p, const char *what) {
    LLVMValueRef v = LLVMBuildLoad2(L->b, L->i64, p, ll_name(L, what));
    LLVMSetAlignment(v, sizeof(float));
    return v;
}

static void store_i64(Ll *L, LLVMValueRef v, LLVMValueRef p) { LLVMSetAlignment(LLVMBuildStore(L->b, v, p), sizeof(float)); }

/* The seed of inference: the one <net>_seed set (its complement beside
   it), else 0. */
static LLVMValueRef seed_of(Ll *L) {
    LLVMValueRef s = load_i64(L, enc_at(L, 16), "seed"), c = load_i64(L, enc_at(L, 24), "check");
    LLVMValueRef set = LLVMBuildICmp(L->b, LLVMIntEQ, c, LLVMBuildNot(L->b, s, ""), "");
    return LLVMBuildSelect(L->b, set, s, ll_i64(L, 0), ll_name(L, "seed"));
}

/* <net>_encode (internal): one step's spikes y [B, INPUT_SIZE] from the
   intensities x. Rate: element i of sample b spikes when u < x, u =
   unit(mix(mix(mix(mix(seed) ^ t) ^ (first + b)) ^ i)). Latency: once, at
   the step rint((T - 1) (1 - min(x, 1))) when x >= the threshold. */
static void gen_encoder(Ll *L) {
    const IrGraph *g = L->g;
    long long nin = count(L, g->input);
    LLVMTypeRef args[6] = {L->ptr, L->ptr, L->i64, L->i64, L->i64, L->i64};
    static const char *const names[] = {"y", "x", "B", "first", "t", "seed"};
    L->layer = "encode";
    L->P = &g->infer;
    L->fn = LLVMAddFunction(L->mod, arena_printf(L->a, "%s_encode", L->p),
                            LLVMFunctionType(LLVMVoidTypeInContext(L->ctx), args, 6, 0));
    LLVMSetLinkage(L->fn, LLVMInternalLinkage);
    for (unsigned k = 0; k < 6; k++)
        LLVMSetValueName2(LLVMGetParam(L->fn, k), names[k], strlen(names[k]));
    L->encode = L->fn;
    LLVMPositionBuilderAtEnd(L->b, LLVMAppendBasicBlockInContext(L->ctx, L->fn, "entry"));
    LLVMValueRef y = LLVMGetParam(L->fn, 0), x = LLVMGetParam(L->fn, 1), t = LLVMGetParam(L->fn, 4);
    LlLoop b, i;
    ll_loop_open(L, &b, ll_i64(L, 0), LLVMGetParam(L->fn, 2), 1, "b");
    LLVMValueRef base = LLVMBuildNSWMul(L->b, b.iv, ll_i64(L, nin), "");
    LLVMValueRef h = NULL;
    if (g->encoding == ENC_RATE) {
        h = ll_mix(L, LLVMBuildXor(L->b, ll_mix(L, LLVMGetParam(L->fn, 5)), t, ""));
        h = ll_mix(L, LLVMBuildXor(L->b, h, LLVMBuildAdd(L->b, LLVMGetParam(L->fn, 3), b.iv, ""), ""));
    }
    ll_loop_open(L, &i, ll_i64(L, 0), ll_i64(L, nin), 1, "i");
    LLVMValueRef at = LLVMBuildNSWAdd(L->b, base, i.iv, "");
    LLVMValueRef xv = ll_load(L, ll_off(L, x, at, NULL), 1, "x"), on;
    if (g->encoding == ENC_RATE)
        on = LLVMBuildFCmp(L->b, LLVMRealOLT, ll_unit(L, ll_mix(L, LLVMBuildXor(L->b, h, i.iv, ""))), xv, "");
    else {
        LLVMValueRef v = LLVMBuildSelect(L->b, LLVMBuildFCmp(L->b, LLVMRealOLT, xv, ll_flt(L, 1.0f, 1), ""), xv,
                                         ll_flt(L, 1.0f, 1), "");
        LLVMValueRef at_step = ll_call_math(
            L, "llvm.rint", LLVMBuildFMul(L->b, ll_flt(L, (float)(g->timesteps - 1), 1),
                                          LLVMBuildFSub(L->b, ll_flt(L, 1.0f, 1), v, ""), ""), NULL, 1);
        LLVMValueRef now = LLVMBuildICmp(L->b, LLVMIntEQ, LLVMBuildFPToUI(L->b, at_step, L->i64, ""), t, "");
        on = LLVMBuildAnd(L->b, LLVMBuildFCmp(L->b, LLVMRealOGE, xv, ll_flt(L, g->enc_threshold, 1), ""), now, "");
    }
    ll_store(L, LLVMBuildSelect(L->b, on, ll_flt(L, 1.0f, 1), ll_flt(L, 0.0f, 1), ""), ll_off(L, y, at, NULL));
    ll_loop_close(L, &i);
    ll_loop_close(L, &b);
    LLVMBuildRetVoid(L->b);
}

void ll_encode_steps(Ll *L, LLVMValueRef t0, LLVMValueRef t1, LLVMValueRef input, LLVMValueRef first,
                     LLVMValueRef seed) {
    LlLoop ts;
    ll_loop_open(L, &ts, t0, t1, 1, "encode");
    LLVMValueRef args[6] = {ll_at(L, L->g->input, ts.iv, "input"), input, L->B, first,
                            LLVMBuildSExt(L->b, ts.iv, L->i64, ""), seed};
    ll_call(L, L->encode, args, 6);
    ll_loop_close(L, &ts);
}

/* <net>_seed: the seed of inference's rate spikes, and its complement. */
static void gen_seed(Ll *L) {
    LLVMTypeRef args[2] = {L->ptr, L->i64};
    static const char *const names[] = {"workspace", "seed"};
    LLVMValueRef fn = open_infer(L, "seed", LLVMVoidTypeInContext(L->ctx), args, names, 2);
    store_i64(L, LLVMGetParam(fn, 1), enc_at(L, 16));
    store_i64(L, LLVMBuildNot(L->b, LLVMGetParam(fn, 1), ""), enc_at(L, 24));
    LLVMBuildRetVoid(L->b);
}

/* ---- the functions ---- */

static LLVMValueRef gen_reset(Ll *L) {
    const IrGraph *g = L->g;
    LLVMTypeRef args[2] = {L->ptr, L->i32};
    static const char *const names[] = {"workspace", "batch"};
    LLVMValueRef fn = open_infer(L, "reset", LLVMVoidTypeInContext(L->ctx), args, names, 2);
    L->B = ll_clamp_batch(L, LLVMGetParam(fn, 1));
    for (int i = 0; i < g->nodes.len; i++) {
        const IrNode *n = &g->nodes.items[i];
        if (n->dead || n->op != IR_NEURON)
            continue;
        long long cnt = shape_count(&n->shape);
        for (int k = 0; k < n->neuron->states.len; k++) {
            const NeuronState *s = &n->neuron->states.items[k];
            L->layer = n->name;
            LLVMValueRef at = ll_plan(L, g->infer.at[i].state + (int64_t)k * g->batch * cnt, s->name);
            LlLoop j;
            ll_loop_open(L, &j, ll_i64(L, 0), LLVMBuildNSWMul(L->b, L->B, ll_i64(L, cnt), ""), 1,
                         arena_printf(L->a, "%s.init", s->name));
            ll_store(L, ll_flt(L, s->init, 1), ll_off(L, at, j.iv, NULL));
            ll_loop_close(L, &j);
        }
    }
    L->layer = "reset";
    counter_write(L, ll_i64(L, 0), L->B);
    if (L->encode)
        store_i64(L, ll_i64(L, 0), enc_at(L, 32)); /* the encoder's steps */
    LLVMBuildRetVoid(L->b);
    return fn;
}

static void gen_step(Ll *L) {
    const IrGraph *g = L->g;
    LLVMTypeRef args[4] = {L->ptr, L->i32, L->ptr, L->ptr};
    static const char *const names[] = {"workspace", "batch", "input", "output"};
    LLVMValueRef fn = open_infer(L, "step", LLVMVoidTypeInContext(L->ctx), args, names, 4);
    L->B = ll_clamp_batch(L, LLVMGetParam(fn, 1));
    LLVMValueRef tc, b0;
    counter_read(L, &tc, &b0);
    LLVMValueRef t = LLVMBuildTrunc(L->b, tc, L->i32, ll_name(L, "t"));
    if (L->encode) { /* step n since reset, into the slot of t */
        LLVMValueRef n = load_i64(L, enc_at(L, 32), "n");
        LLVMValueRef seed = g->encoding == ENC_RATE ? seed_of(L) : ll_i64(L, 0);
        LLVMValueRef ea[6] = {ll_at(L, g->input, t, "input"), LLVMGetParam(fn, 2), L->B, ll_i64(L, 0), n, seed};
        ll_call(L, L->encode, ea, 6);
        store_i64(L, LLVMBuildAdd(L->b, n, ll_i64(L, 1), ""), enc_at(L, 32));
    } else
        copy_input(L, t, LLVMGetParam(fn, 2), ll_i64(L, 1));
    /* every node at this step, in the schedule's order */
    LLVMValueRef t1 = LLVMBuildNSWAdd(L->b, t, ll_i32(L, 1), "");
    for (int j = 0; j < g->norder; j++)
        if (runs(g, g->order[j]))
            call(L, g->order[j], t, t1);
    LlIf out;
    ll_if(L, &out, LLVMBuildIsNotNull(L->b, LLVMGetParam(fn, 3), ""), "output", 0);
    ll_copy(L, LLVMGetParam(fn, 3), ll_at(L, g->output, t, "y"),
            LLVMBuildNSWMul(L->b, L->B, ll_i64(L, count(L, g->output)), ""));
    ll_endif(L, &out);
    counter_write(L, LLVMBuildSExt(L->b, t1, L->i64, ""), L->B);
    LLVMBuildRetVoid(L->b);
}

/* The forward of every group over the steps [c0, c1) of a chunk (i32
   values); groups computed once run when `once` holds (an i1 value). */
static void run_groups(Ll *L, LLVMValueRef c0, LLVMValueRef c1, LLVMValueRef once) {
    const IrGraph *g = L->g;
    for (int k = 0; k < g->groups.len; k++) {
        const IrGroup *gr = &g->groups.items[k];
        int first = g->order[gr->first];
        if (!gr->recurrent) {
            if (!runs(g, first))
                continue;
            if (!g->infer.at[first].inv) {
                call(L, first, c0, c1);
                continue;
            }
            LlIf f;
            int always = LLVMIsConstant(once);
            if (!always)
                ll_if(L, &f, once, arena_printf(L->a, "once.%s", g->nodes.items[first].name), 0);
            call(L, first, ll_i32(L, 0), ll_i32(L, 1));
            if (!always)
                ll_endif(L, &f);
            continue;
        }
        LlLoop t;
        ll_loop_open(L, &t, c0, c1, 1, arena_printf(L->a, "recurrent%d", k));
        LLVMValueRef t1 = LLVMBuildNSWAdd(L->b, t.iv, ll_i32(L, 1), "");
        for (int j = gr->first; j < gr->first + gr->count; j++)
            if (runs(g, g->order[j]))
                call(L, g->order[j], t.iv, t1);
        ll_loop_close(L, &t);
    }
}

/* Accumulates the readout of the steps [c0, c1) (i32 values). */
static void readout_steps(Ll *L, LLVMValueRef output, LLVMValueRef c0, LLVMValueRef c1) {
    const IrGraph *g = L->g;
    LLVMValueRef n = LLVMBuildNSWMul(L->b, L->B, ll_i64(L, count(L, g->output)), ll_name(L, "nout"));
    LlLoop t, i;
    ll_loop_open(L, &t, c0, c1, 1, "readout");
    LLVMValueRef y = ll_at(L, g->output, t.iv, "y");
    LLVMValueRef acc = g->readout != RO_STEPS ? ll_plan(L, g->infer.readout, "acc") : NULL;
    LLVMValueRef first = LLVMBuildICmp(L->b, LLVMIntEQ, t.iv, ll_i32(L, 0), "");
    switch (g->readout) {
    case RO_STEPS:
        ll_copy(L, ll_off(L, output, LLVMBuildNSWMul(L->b, LLVMBuildSExt(L->b, t.iv, L->i64, ""), n, ""), NULL), y, n);
        break;
    case RO_COUNT:
    case RO_RATE:
    case RO_MEAN:
    case RO_MAX: {
        ll_loop_open(L, &i, ll_i64(L, 0), n, 1, "i");
        LLVMValueRef yp = ll_off(L, y, i.iv, NULL), ap = ll_off(L, acc, i.iv, NULL);
        LLVMValueRef yv = ll_load(L, yp, 1, NULL), av = ll_load(L, ap, 1, NULL), v;
        if (g->readout == RO_MAX)
            v = LLVMBuildSelect(L->b, LLVMBuildOr(L->b, first, LLVMBuildFCmp(L->b, LLVMRealOGT, yv, av, ""), ""), yv, av,
                                "");
        else
            v = LLVMBuildSelect(L->b, first, yv, LLVMBuildFAdd(L->b, av, yv, ""), "");
        ll_store(L, v, ap);
        ll_loop_close(L, &i);
        break;
    }
    case RO_LAST: {
        LlIf last;
        ll_if(L, &last, LLVMBuildICmp(L->b, LLVMIntEQ, t.iv, ll_i32(L, g->timesteps - 1), ""), "last", 0);
        ll_copy(L, acc, y, n);
        ll_endif(L, &last);
        break;
    }
    }
    ll_loop_close(L, &t);
}

static void gen_forward(Ll *L, LLVMValueRef reset) {
    const IrGraph *g = L->g;
    const IrPlan *P = &g->infer;
    int T = g->timesteps, K = P->chunk, seq = g->encoding == ENC_SEQUENCE;
    LLVMTypeRef args[4] = {L->ptr, L->i32, L->ptr, L->ptr};
    static const char *const names[] = {"workspace", "batch", "input", "output"};
    LLVMValueRef fn = open_infer(L, "forward", LLVMVoidTypeInContext(L->ctx), args, names, 4);
    LLVMValueRef input = LLVMGetParam(fn, 2), output = LLVMGetParam(fn, 3);
    L->B = ll_clamp_batch(L, LLVMGetParam(fn, 1));
    LLVMValueRef rargs[2] = {L->ws, LLVMBuildTrunc(L->b, L->B, L->i32, "")};
    ll_call(L, reset, rargs, 2);
    LLVMValueRef seed = g->encoding == ENC_RATE ? seed_of(L) : ll_i64(L, 0);
    if (K < T) {
        LlLoop c;
        ll_loop_open(L, &c, ll_i32(L, 0), ll_i32(L, T), K, "chunk");
        LLVMValueRef c1 = LLVMBuildNSWAdd(L->b, c.iv, ll_i32(L, K), "");
        c1 = LLVMBuildSelect(L->b, LLVMBuildICmp(L->b, LLVMIntSLT, c1, ll_i32(L, T), ""), c1, ll_i32(L, T),
                             ll_name(L, "chunk.end"));
        LLVMValueRef once = LLVMBuildICmp(L->b, LLVMIntEQ, c.iv, ll_i32(L, 0), ll_name(L, "chunk.first"));
        if (seq) {
            LLVMValueRef c0l = LLVMBuildSExt(L->b, c.iv, L->i64, "");
            LLVMValueRef skip = LLVMBuildNSWMul(L->b, LLVMBuildNSWMul(L->b, c0l, L->B, ""),
                                                ll_i64(L, count(L, g->input)), "");
            copy_input(L, c.iv, ll_off(L, input, skip, NULL),
                       LLVMBuildSExt(L->b, LLVMBuildNSWSub(L->b, c1, c.iv, ""), L->i64, ""));
        } else if (L->encode) /* every chunk's steps, from the same intensities */
            ll_encode_steps(L, c.iv, c1, input, ll_i64(L, 0), seed);
        else {
            LlIf f;
            ll_if(L, &f, once, "input", 0);
            copy_input(L, ll_i32(L, 0), input, ll_i64(L, 1));
            ll_endif(L, &f);
        }
        run_groups(L, c.iv, c1, once);
        readout_steps(L, output, c.iv, c1);
        ll_loop_close(L, &c);
    } else {
        if (L->encode)
            ll_encode_steps(L, ll_i32(L, 0), ll_i32(L, T), input, ll_i64(L, 0), seed);
        else
            copy_input(L, ll_i32(L, 0), input, ll_i64(L, seq ? T : 1));
        run_groups(L, ll_i32(L, 0), ll_i32(L, T), LLVMConstInt(L->i1, 1, 0));
        readout_steps(L, output, ll_i32(L, 0), ll_i32(L, T));
    }
    LLVMValueRef n = LLVMBuildNSWMul(L->b, L->B, ll_i64(L, count(L, g->output)), "");
    if (g->readout == RO_RATE || g->readout == RO_MEAN) {
        LlLoop i;
        ll_loop_open(L, &i, ll_i64(L, 0), n, 1, "mean");
        LLVMValueRef a = ll_load(L, ll_off(L, ll_plan(L, P->readout, NULL), i.iv, NULL), 1, NULL);
        ll_store(L, LLVMBuildFDiv(L->b, a, ll_flt(L, (float)T, 1), ""), ll_off(L, output, i.iv, NULL));
        ll_loop_close(L, &i);
    } else if (g->readout != RO_STEPS)
        ll_copy(L, output, ll_plan(L, P->readout, "acc"), n);
    counter_write(L, ll_i64(L, T), L->B);
    if (L->encode) /* a step after the forward continues its sequence */
        store_i64(L, ll_i64(L, T), enc_at(L, 32));
    LLVMBuildRetVoid(L->b);
}

static void gen_probe(Ll *L) {
    const IrGraph *g = L->g;
    const IrPlan *P = &g->infer;
    if (!g->probes.len)
        return;
    LLVMTypeRef args[2] = {L->ptr, L->i32};
    static const char *const names[] = {"workspace", "k"};
    LLVMValueRef fn = open_infer(L, "probe", L->ptr, args, names, 2);
    LLVMValueRef tc;
    counter_read(L, &tc, &L->B);
    LLVMValueRef t = LLVMBuildTrunc(L->b, tc, L->i32, "");
    t = LLVMBuildSelect(L->b, LLVMBuildICmp(L->b, LLVMIntSGT, t, ll_i32(L, 0), ""),
                        LLVMBuildNSWSub(L->b, t, ll_i32(L, 1), ""), ll_i32(L, 0), ll_name(L, "last"));
    LLVMBasicBlockRef none = LLVMAppendBasicBlockInContext(L->ctx, fn, ll_name(L, "none"));
    LLVMValueRef sw = LLVMBuildSwitch(L->b, LLVMGetParam(fn, 1), none, (unsigned)g->probes.len);
    for (int k = 0; k < g->probes.len; k++) {
        const IrProbe *pr = &g->probes.items[k];
        LLVMBasicBlockRef bb = LLVMAppendBasicBlockInContext(L->ctx, fn, ll_name(L, pr->spec));
        LLVMAddCase(sw, ll_i32(L, k), bb);
        LLVMPositionBuilderAtEnd(L->b, bb);
        LLVMValueRef at;
        if (pr->buf >= 0) {
            at = ll_plan(L, pr->buf, NULL);
            if (P->chunk != 1) {
                LLVMValueRef slot = LLVMBuildSExt(L->b, LLVMBuildSRem(L->b, t, ll_i32(L, P->chunk), ""), L->i64, "");
                at = ll_off(L, at, LLVMBuildNSWMul(L->b, LLVMBuildNSWMul(L->b, slot, L->B, ""), ll_i64(L, pr->count), ""),
                            NULL);
            }
        } else
            at = ll_at(L, pr->node, t, NULL);
        LLVMBuildRet(L->b, at);
    }
    LLVMPositionBuilderAtEnd(L->b, none);
    LLVMBuildRet(L->b, LLVMConstNull(L->ptr));
}

/* A constant global of the module, private unless `name` is public. */
LLVMValueRef ll_global(Ll *L, const char *name, LLVMValueRef init, int public) {
    LLVMValueRef v = LLVMAddGlobal(L->mod, LLVMTypeOf(init), name);
    LLVMSetInitializer(v, init);
    LLVMSetGlobalConstant(v, 1);
    if (!public) {
        LLVMSetLinkage(v, LLVMPrivateLinkage);
        LLVMSetUnnamedAddress(v, LLVMGlobalUnnamedAddr);
    }
    return v;
}

/* <net>_params, as the header's <net>_param_info: name, ndim, shape[4],
   offset, count, learnable (C's layout: LLVM's data layout pads as C). */
static void gen_params(Ll *L) {
    const IrGraph *g = L->g;
    if (!g->params.len)
        return;
    LLVMTypeRef fields[6] = {L->ptr, L->i32, LLVMArrayType(L->i64, 4), L->i64, L->i64, L->i32};
    LLVMTypeRef info = LLVMStructTypeInContext(L->ctx, fields, 6, 0);
    LLVMValueRef *rows = arena_alloc(L->a, sizeof(LLVMValueRef) * (size_t)g->params.len);
    for (int i = 0; i < g->params.len; i++) {
        const IrParam *q = &g->params.items[i];
        LLVMValueRef name = ll_global(L, arena_printf(L->a, "%s_params.name%d", L->p, i),
                                   LLVMConstStringInContext(L->ctx, q->name, (unsigned)strlen(q->name), 0), 0);
        LLVMValueRef shape[4];
        for (int k = 0; k < 4; k++)
            shape[k] = ll_i64(L, k < q->shape.ndim ? (long long)q->shape.d[k] : 0);
        LLVMValueRef f[6] = {name, ll_i32(L, q->shape.ndim), LLVMConstArray(L->i64, shape, 4), ll_i64(L, (long long)q->off),
                             ll_i64(L, (long long)q->count), ll_i32(L, q->learnable)};
        rows[i] = LLVMConstNamedStruct(info, f, 6);
    }
    ll_global(L, arena_printf(L->a, "%s_params", L->p), LLVMConstArray(info, rows, (unsigned)g->params.len), 1);
}

void llapi_api(TargetEmitter *em) {
    Ll *L = em;
    ll_global(L, arena_printf(L->a, "%s_workspace_floats", L->p), ll_i64(L, L->ws_floats), 1);
    gen_params(L);
    if (ENC_SPIKES(L->g->encoding))
        gen_encoder(L);
    if (L->g->encoding == ENC_RATE)
        gen_seed(L);
    LLVMValueRef reset = gen_reset(L);
    gen_step(L);
    gen_forward(L, reset);
    gen_probe(L);
    if (L->g->train)
        ll_train_api(L);
    char *msg = NULL;
    if (LLVMVerifyModule(L->mod, LLVMReturnStatusAction, &msg))
        ICE("the llvm target wrote an invalid module: %s", msg);
    LLVMDisposeMessage(msg);
}

/* --triple: the module optimized for that machine, as an object file. On
   riscv64 the ABI is lp64d, with the F and D extensions unless --features
   says otherwise: Debian's riscv64 C library is built for it. */
static int object(Ll *L, GenFile *out) {
    const CgenOptions *o = L->opt;
    int rv64 = !strncmp(o->triple, "riscv64", 7);
    const char *features = o->features ? o->features : rv64 ? "+m,+a,+f,+d,+c" : NULL;
    LLVMTargetMachineRef tm = ll_machine(o->triple, o->cpu, features);
    if (!tm)
        return -1;
    if (rv64) {
        LLVMMetadataRef abi = LLVMMDStringInContext2(L->ctx, "lp64d", 5);
        LLVMAddModuleFlag(L->mod, LLVMModuleFlagBehaviorError, "target-abi", 10, abi);
    }
    char *msg = NULL;
    LLVMMemoryBufferRef mb = NULL;
    int rc = ll_optimize(L->mod, tm);
    if (rc == 0 && LLVMTargetMachineEmitToMemoryBuffer(tm, L->mod, LLVMObjectFile, &msg, &mb)) {
        error_plain("llvm target: writing the object file for '%s': %s", o->triple, msg);
        rc = -1;
    }
    LLVMDisposeMessage(msg);
    LLVMDisposeTargetMachine(tm);
    if (rc != 0)
        return -1;
    out->name = arena_printf(L->a, "%s.o", L->p);
    out->text = (Buf){0};
    const char *data = LLVMGetBufferStart(mb);
    size_t len = LLVMGetBufferSize(mb);
    out->text.data = malloc(len + 1);
    if (!out->text.data)
        ICE("out of memory");
    memcpy(out->text.data, data, len);
    out->text.len = len;
    out->text.cap = len + 1;
    LLVMDisposeMemoryBuffer(mb);
    return 0;
}

int llapi_finish(TargetEmitter *em, GenFile *out) {
    Ll *L = em;
    char *text = LLVMPrintModuleToString(L->mod);
    out[0].name = arena_printf(L->a, "%s.h", L->p);
    out[0].text = L->header;
    L->header = (Buf){0};
    out[1].name = arena_printf(L->a, "%s.ll", L->p);
    out[1].text = (Buf){0};
    buf_puts(&out[1].text, text);
    LLVMDisposeMessage(text);
    int n = 2;
    if (L->opt->triple && object(L, &out[n]) == 0)
        n++;
    else if (L->opt->triple)
        n = -1;
    if (n > 0 && !L->opt->no_loader && !L->opt->embedded && L->g->params.len)
        capi_weights_file(L->g, L->opt, arena_printf(L->a, "%s.%s", L->p, L->opt->triple ? "o" : "ll"), &out[n++]);
    llapi_dispose(L, 0);
    if (n < 0) {
        buf_free(&out[0].text);
        buf_free(&out[1].text);
    }
    return n;
}
