/*
 * lltrain.c: the llvm target's training API, over the training plan
 * (g->trainp) as the C target's (capi.c gen_train), with the same names,
 * signatures and workspace layout (docs/generated-code.md):
 *   - <net>_train_forward_at and <net>_train_forward: every state at its
 *     initial value, the input encoded (or read in place by the kernels:
 *     IrBufs.vext), every group's forward over all T steps (recurrent
 *     groups step by step), the output of every step;
 *   - <net>_train_backward: the gradients zeroed, dL/doutput added to the
 *     output's, every group's backward, last group first (recurrent groups
 *     step by step, backwards), the neuron parameters' per-element double
 *     sums added up in order, dL/dinput;
 *   - <net>_train_spikes, <net>_train_params, <net>_train_grads and
 *     <net>_train_workspace_floats.
 * The workspace is [parameters][their gradients][the plan], each part
 * 16-float aligned; its size is the C target's (the header's
 * TRAIN_WORKSPACE_FLOATS), which is at least what this code uses.
 * Dropout draws its masks as the C target's: element j of the whole batch
 * (sample first + b) keeps when unit(mix(seed ^ (node << 48) ^ (j
 * 0x9E3779B97F4A7C15))) >= p, splitmix64's mix and the top 24 bits as the
 * uniform (capi.c gen_mix), so that both targets draw the same masks.
 * A spike encoder encodes every step from the intensities as the samples
 * from `first` on with the call's seed (llapi.c ll_encode_steps); its
 * dL/dinput is zero (spikes are a step function of the input).
 */
#include <string.h>

#include "ll.h"

static long long align16(long long x) { return (x + 15) & ~15LL; }

static long long count(Ll *L, int i) { return shape_count(&L->g->nodes.items[i].shape); }

static int runs(const IrGraph *g, int i) { return ir_op_kernel[g->nodes.items[i].op]; }

/* A call of node i's training forward over the steps [from, to) with its
   flag (i32 values). */
static void kcall(Ll *L, int i, LLVMValueRef from, LLVMValueRef to, LLVMValueRef flag) {
    LLVMValueRef args[6] = {L->ws, L->B, from, to, flag, L->input};
    ll_launch(L, i, L->tkern[i], args, 1);
}

/* Calls node i's backward, with the caller's input and gradients
   (IrBufs.vext, gext). */
static void bcall(Ll *L, int i, LLVMValueRef from, LLVMValueRef to, LLVMValueRef flag, LLVMValueRef doutput,
                  LLVMValueRef dinput) {
    LLVMValueRef args[8] = {L->ws, L->B, from, to, flag, L->input, doutput, dinput};
    ll_launch(L, i, L->bkern[i], args, 0);
}

/* Opens public function <net>_<name> in the training plan, its batch
   argument (number 1) clamped. */
static LLVMValueRef open_train(Ll *L, const char *name, LLVMTypeRef ret, LLVMTypeRef *args, const char *const *names,
                               unsigned n) {
    LLVMValueRef fn = ll_api_open(L, name, ret, args, names, n);
    L->P = &L->g->trainp;
    L->B = ll_clamp_batch(L, LLVMGetParam(fn, 1));
    return fn;
}

static LLVMValueRef u64(Ll *L, unsigned long long v) { return LLVMConstInt(L->i64, v, 0); }

/* Dropout node i's mask for the batch, as the samples from `first` on. */
static void dropout_mask(Ll *L, int i, LLVMValueRef first, LLVMValueRef seed) {
    const IrNode *x = &L->g->nodes.items[i];
    float p = x->fval;
    long long n = count(L, i);
    L->layer = x->name;
    LLVMValueRef m = ll_plan(L, L->g->trainp.at[i].mask, "mask");
    LLVMValueRef j0 = LLVMBuildMul(L->b, first, u64(L, (unsigned long long)n), ll_name(L, "j0"));
    LLVMValueRef key = LLVMBuildXor(L->b, seed, u64(L, (unsigned long long)i << 48), ll_name(L, "key"));
    LlLoop j;
    ll_loop_open(L, &j, ll_i64(L, 0), LLVMBuildNSWMul(L->b, L->B, ll_i64(L, n), ""), 1, "draw");
    LLVMValueRef h = ll_mix(L, LLVMBuildXor(L->b, key, LLVMBuildMul(L->b, LLVMBuildAdd(L->b, j0, j.iv, ""),
                                                                   u64(L, 0x9E3779B97F4A7C15ULL), ""), ""));
    LLVMValueRef u = ll_unit(L, h);
    LLVMValueRef keep = LLVMBuildFCmp(L->b, LLVMRealOGE, u, ll_flt(L, p, 1), "");
    ll_store(L, LLVMBuildSelect(L->b, keep, ll_flt(L, 1.0f / (1.0f - p), 1), ll_flt(L, 0.0f, 1), ""),
             ll_off(L, m, j.iv, NULL));
    ll_loop_close(L, &j);
}

static LLVMValueRef gen_forward_at(Ll *L) {
    const IrGraph *g = L->g;
    const IrPlan *P = &g->trainp;
    int T = g->timesteps, in = g->input, out = g->output;
    LLVMTypeRef args[7] = {L->ptr, L->i32, L->i64, L->ptr, L->ptr, L->i32, L->i64};
    static const char *const names[] = {"workspace", "batch", "first", "input", "output", "training", "seed"};
    LLVMValueRef fn = open_train(L, "train_forward_at", LLVMVoidTypeInContext(L->ctx), args, names, 7);
    LLVMValueRef training = LLVMGetParam(fn, 5), output = LLVMGetParam(fn, 4);
    long long steps = P->at[in].inv ? 1 : T;
    L->input = LLVMGetParam(fn, 3);
    if (L->encode) /* as the samples from first on, with the call's seed */
        ll_encode_steps(L, ll_i32(L, 0), ll_i32(L, T), LLVMGetParam(fn, 3), LLVMGetParam(fn, 2), LLVMGetParam(fn, 6));
    else if (!P->at[in].vext) /* else read in place */
        ll_copy(L, ll_at(L, in, ll_i32(L, 0), "input"), LLVMGetParam(fn, 3),
                LLVMBuildNSWMul(L->b, L->B, ll_i64(L, steps * count(L, in)), ""));
    LLVMValueRef is_training = LLVMBuildICmp(L->b, LLVMIntNE, training, ll_i32(L, 0), "");
    for (int i = 0; i < g->nodes.len; i++) {
        const IrNode *x = &g->nodes.items[i];
        if (!x->dead && x->op == IR_DROPOUT) {
            LlIf f;
            ll_if(L, &f, is_training, arena_printf(L->a, "%s.draw", x->name), 0);
            dropout_mask(L, i, LLVMGetParam(fn, 2), LLVMGetParam(fn, 6));
            ll_endif(L, &f);
        }
        if (x->dead || x->op != IR_NEURON)
            continue;
        L->layer = x->name;
        for (int k = 0; k < x->neuron->states.len; k++) {
            const NeuronState *s = &x->neuron->states.items[k];
            LLVMValueRef at = ll_plan(L, P->at[i].state + (int64_t)k * (T + 1) * g->batch * count(L, i), s->name);
            LlLoop j;
            ll_loop_open(L, &j, ll_i64(L, 0), LLVMBuildNSWMul(L->b, L->B, ll_i64(L, count(L, i)), ""), 1,
                         arena_printf(L->a, "%s.init", s->name));
            ll_store(L, ll_flt(L, s->init, 1), ll_off(L, at, j.iv, NULL));
            ll_loop_close(L, &j);
        }
    }
    L->layer = "train_forward_at";
    for (int k = 0; k < g->groups.len; k++) {
        const IrGroup *gr = &g->groups.items[k];
        int first = g->order[gr->first];
        if (!gr->recurrent) {
            if (runs(g, first))
                kcall(L, first, ll_i32(L, 0), ll_i32(L, P->at[first].inv ? 1 : T), training);
            continue;
        }
        LlLoop t;
        ll_loop_open(L, &t, ll_i32(L, 0), ll_i32(L, T), 1, arena_printf(L->a, "recurrent%d", k));
        LLVMValueRef t1 = LLVMBuildNSWAdd(L->b, t.iv, ll_i32(L, 1), "");
        for (int j = gr->first; j < gr->first + gr->count; j++)
            if (runs(g, g->order[j]))
                kcall(L, g->order[j], t.iv, t1, training);
        ll_loop_close(L, &t);
    }
    LlIf want;
    ll_if(L, &want, LLVMBuildIsNotNull(L->b, output, ""), "output", 0);
    LLVMValueRef n = LLVMBuildNSWMul(L->b, L->B, ll_i64(L, count(L, out)), ll_name(L, "nout"));
    LlLoop t;
    if (P->at[out].bits) { /* the spikes, kept as bits: every step in order, 32 to a word */
        LLVMValueRef words = ll_bits_at(L, out, ll_i32(L, 0), "spikes");
        ll_loop_open(L, &t, ll_i64(L, 0), LLVMBuildNSWMul(L->b, n, ll_i64(L, T), ""), 1, "out");
        ll_store(L, ll_bit(L, words, t.iv), ll_off(L, output, t.iv, NULL));
    } else {
        ll_loop_open(L, &t, ll_i32(L, 0), ll_i32(L, T), 1, "out");
        LLVMValueRef dst = ll_off(L, output, LLVMBuildNSWMul(L->b, LLVMBuildSExt(L->b, t.iv, L->i64, ""), n, ""), NULL);
        ll_copy(L, dst, ll_at(L, out, t.iv, "y"), n);
    }
    ll_loop_close(L, &t);
    ll_endif(L, &want);
    LLVMBuildRetVoid(L->b);
    return fn;
}

static void gen_forward(Ll *L, LLVMValueRef at) {
    LLVMTypeRef args[6] = {L->ptr, L->i32, L->ptr, L->ptr, L->i32, L->i64};
    static const char *const names[] = {"workspace", "batch", "input", "output", "training", "seed"};
    LLVMValueRef fn = ll_api_open(L, "train_forward", LLVMVoidTypeInContext(L->ctx), args, names, 6);
    LLVMValueRef a[7] = {LLVMGetParam(fn, 0), LLVMGetParam(fn, 1), ll_i64(L, 0), LLVMGetParam(fn, 2),
                         LLVMGetParam(fn, 3), LLVMGetParam(fn, 4), LLVMGetParam(fn, 5)};
    ll_call(L, at, a, 7);
    LLVMBuildRetVoid(L->b);
}

/* The dx flag of node i's backward: bit k when input k's gradient is
   needed, or needed only for dL/dinput and `dinput` (an i1) holds. */
static LLVMValueRef dx_flag(Ll *L, int i, LLVMValueRef dinput) {
    const IrNode *x = &L->g->nodes.items[i];
    LLVMValueRef f = ll_i32(L, 0);
    for (int k = 0; k < x->nin; k++) {
        int r = L->g->trainp.at[x->in[k]].needgrad;
        if (r == 1)
            f = LLVMBuildOr(L->b, f, ll_i32(L, 1 << k), "");
        else if (r == 2)
            f = LLVMBuildOr(L->b, f, LLVMBuildSelect(L->b, dinput, ll_i32(L, 1 << k), ll_i32(L, 0), ""), "");
    }
    return f;
}

/* The neuron parameters' gradients: each value the sum, in double and in
   order, of its elements' sums over the batch (cneuron.c's order). */
static void param_sums(Ll *L) {
    const IrGraph *g = L->g;
    LLVMValueRef sum = LLVMBuildAlloca(L->b, L->f64, "sum");
    for (int i = 0; i < g->nodes.len; i++) {
        const IrNode *x = &g->nodes.items[i];
        if (x->dead || x->op != IR_NEURON)
            continue;
        L->layer = x->name;
        long long cnt = count(L, i);
        for (int k = 0; k < x->neuron->params.len; k++) {
            int pk = x->neuron->params.items[k].param;
            long long per = cnt / g->params.items[pk].count;
            LLVMValueRef s = ll_plan(L, g->trainp.at[i].pacc + (int64_t)k * align16(2 * g->batch * cnt), "dp");
            LLVMValueRef gp = ll_param_grad(L, pk);
            LlLoop v, r, e;
            ll_loop_open(L, &v, ll_i64(L, 0), ll_i64(L, g->params.items[pk].count), 1, "sum.v");
            LLVMBuildStore(L->b, LLVMConstReal(L->f64, 0.0), sum);
            ll_loop_open(L, &r, ll_i64(L, 0), L->B, 1, "sum.r");
            LLVMValueRef row = LLVMBuildNSWAdd(L->b, LLVMBuildNSWMul(L->b, r.iv, ll_i64(L, cnt), ""),
                                               LLVMBuildNSWMul(L->b, v.iv, ll_i64(L, per), ""), "");
            ll_loop_open(L, &e, ll_i64(L, 0), ll_i64(L, per), 1, "sum.e");
            LLVMValueRef idx = LLVMBuildNSWAdd(L->b, row, e.iv, "");
            LLVMValueRef d = LLVMBuildLoad2(L->b, L->f64, LLVMBuildInBoundsGEP2(L->b, L->f64, s, &idx, 1, ""), "");
            LLVMSetAlignment(d, sizeof(double));
            LLVMBuildStore(L->b, LLVMBuildFAdd(L->b, LLVMBuildLoad2(L->b, L->f64, sum, ""), d, ""), sum);
            ll_loop_close(L, &e);
            ll_loop_close(L, &r);
            ll_store(L, LLVMBuildFPTrunc(L->b, LLVMBuildLoad2(L->b, L->f64, sum, ""), L->f32, ""),
                     ll_off(L, gp, v.iv, NULL));
            ll_loop_close(L, &v);
        }
    }
}

static void gen_backward(Ll *L) {
    const IrGraph *g = L->g;
    const IrPlan *P = &g->trainp;
    int T = g->timesteps, in = g->input, out = g->output;
    LLVMTypeRef args[5] = {L->ptr, L->i32, L->ptr, L->ptr, L->ptr};
    static const char *const names[] = {"workspace", "batch", "input", "doutput", "dinput"};
    LLVMValueRef fn = open_train(L, "train_backward", LLVMVoidTypeInContext(L->ctx), args, names, 5);
    LLVMValueRef doutput = LLVMGetParam(fn, 3), dinput = LLVMGetParam(fn, 4);
    L->input = LLVMGetParam(fn, 2);
    LLVMValueRef want = LLVMBuildIsNotNull(L->b, dinput, "want.dinput");
    long long pf = align16(g->param_floats);
    /* the parameters' gradients, then the values' gradients, the carried
       adjoints and the sums */
    ll_copy(L, ll_ws(L, ll_i64(L, pf), "grads"), NULL, ll_i64(L, pf));
    ll_copy(L, ll_plan(L, P->persist, "zeroed"), NULL, ll_i64(L, P->floats - P->persist));
    /* dL/dinput: the caller's buffer, added to (IrBufs.gext), else copied
       at the end; zero through an encoder (spikes are a step function of
       the input) */
    LlIf f;
    if (P->at[in].gext || ENC_SPIKES(g->encoding)) {
        ll_if(L, &f, want, "dinput", 0);
        ll_copy(L, dinput, NULL,
                LLVMBuildNSWMul(L->b, L->B, ll_i64(L, (P->at[in].inv || ENC_SPIKES(g->encoding) ? 1 : T) * count(L, in)), ""));
        ll_endif(L, &f);
    }
    if (P->at[out].grad >= 0) { /* else read in place (IrBufs.gext), or not needed */
        LLVMValueRef n = LLVMBuildNSWMul(L->b, L->B, ll_i64(L, count(L, out)), ll_name(L, "nout"));
        LlLoop t;
        ll_loop_open(L, &t, ll_i32(L, 0), ll_i32(L, T), 1, "gout");
        LLVMValueRef src = ll_off(L, doutput, LLVMBuildNSWMul(L->b, LLVMBuildSExt(L->b, t.iv, L->i64, ""), n, ""), NULL);
        ll_axpy(L, ll_grad_at(L, out, t.iv, "gout"), ll_flt(L, 1.0f, 1), src, n);
        ll_loop_close(L, &t);
    }
    for (int k = g->groups.len - 1; k >= 0; k--) {
        const IrGroup *gr = &g->groups.items[k];
        if (!gr->recurrent) {
            int i = g->order[gr->first];
            if (!runs(g, i) || !target_needs_backward(g, i))
                continue;
            /* a node needed only for dL/dinput runs only when it is asked */
            int need = target_backward_always(g, i);
            if (!need)
                ll_if(L, &f, want, arena_printf(L->a, "dinput.%s", g->nodes.items[i].name), 0);
            bcall(L, i, ll_i32(L, 0), ll_i32(L, P->at[i].inv ? 1 : T), dx_flag(L, i, want), doutput, dinput);
            if (!need)
                ll_endif(L, &f);
            continue;
        }
        LlLoop u;
        ll_loop_open(L, &u, ll_i32(L, 0), ll_i32(L, T), 1, arena_printf(L->a, "recurrent%d", k));
        LLVMValueRef step = LLVMBuildNSWSub(L->b, ll_i32(L, T - 1), u.iv, ll_name(L, "t"));
        LLVMValueRef t1 = LLVMBuildNSWAdd(L->b, step, ll_i32(L, 1), "");
        for (int j = gr->first + gr->count - 1; j >= gr->first; j--) {
            int i = g->order[j];
            if (runs(g, i) && target_needs_backward(g, i))
                bcall(L, i, step, t1, dx_flag(L, i, want), doutput, dinput);
        }
        ll_loop_close(L, &u);
    }
    param_sums(L);
    if (!P->at[in].gext && !ENC_SPIKES(g->encoding)) {
        L->layer = "train_backward";
        ll_if(L, &f, want, "dinput", 0);
        ll_copy(L, dinput, ll_grad_at(L, in, ll_i32(L, 0), "gin"),
                LLVMBuildNSWMul(L->b, L->B, ll_i64(L, (P->at[in].inv ? 1 : T) * count(L, in)), ""));
        ll_endif(L, &f);
    }
    LLVMBuildRetVoid(L->b);
}

/* The spikes of the last forward, over every spiking layer and step. */
static void gen_spikes(Ll *L) {
    const IrGraph *g = L->g;
    const IrPlan *P = &g->trainp;
    int T = g->timesteps;
    LLVMTypeRef args[4] = {L->ptr, L->i32, L->ptr, L->ptr};
    static const char *const names[] = {"workspace", "batch", "spikes", "neurons"};
    LLVMValueRef fn = open_train(L, "train_spikes", LLVMVoidTypeInContext(L->ctx), args, names, 4);
    LLVMValueRef sum = LLVMBuildAlloca(L->b, L->f64, "sum");
    LLVMBuildStore(L->b, LLVMConstReal(L->f64, 0.0), sum);
    LLVMTypeRef i32 = L->i32;
    unsigned ctpop = LLVMLookupIntrinsicID("llvm.ctpop", 10);
    LLVMValueRef popcount = LLVMGetIntrinsicDeclaration(L->mod, ctpop, &i32, 1);
    long long total = 0;
    for (int i = 0; i < g->nodes.len; i++) {
        const IrNode *x = &g->nodes.items[i];
        if (x->dead || x->op != IR_NEURON || x->neuron->code.items[x->neuron->emit].op != EQ_SPIKE)
            continue;
        L->layer = x->name;
        long long cnt = count(L, i);
        int bits = P->at[i].bits;
        LLVMValueRef base = ll_plan(L, P->at[i].val, bits ? "words" : "y");
        LlLoop j;
        ll_loop_open(L, &j, ll_i64(L, 0), LLVMBuildNSWMul(L->b, L->B, ll_i64(L, T * (bits ? cnt / 32 : cnt)), ""), 1,
                     "j");
        LLVMValueRef v;
        if (bits) {
            LLVMValueRef w = LLVMBuildLoad2(L->b, L->i32, LLVMBuildInBoundsGEP2(L->b, L->i32, base, &j.iv, 1, ""), "");
            LLVMSetAlignment(w, 4);
            v = LLVMBuildUIToFP(L->b,
                                LLVMBuildCall2(L->b, LLVMIntrinsicGetType(L->ctx, ctpop, &i32, 1), popcount, &w, 1, ""),
                                L->f64, "");
        } else
            v = LLVMBuildFPExt(L->b, ll_load(L, ll_off(L, base, j.iv, NULL), 1, NULL), L->f64, "");
        LLVMBuildStore(L->b, LLVMBuildFAdd(L->b, LLVMBuildLoad2(L->b, L->f64, sum, ""), v, ""), sum);
        ll_loop_close(L, &j);
        total += (long long)T * cnt;
    }
    L->layer = "train_spikes";
    LLVMBuildStore(L->b, LLVMBuildLoad2(L->b, L->f64, sum, ""), LLVMGetParam(fn, 2));
    LLVMBuildStore(
        L->b, LLVMBuildFMul(L->b, LLVMBuildSIToFP(L->b, L->B, L->f64, ""), LLVMConstReal(L->f64, (double)total), ""),
        LLVMGetParam(fn, 3));
    LLVMBuildRetVoid(L->b);
}

/* train_params and train_grads: where the parameters and their gradients
   start. */
static void gen_pointer(Ll *L, const char *name, long long off) {
    static const char *const names[] = {"workspace"};
    LLVMValueRef fn = ll_api_open(L, name, L->ptr, &L->ptr, names, 1);
    LLVMBuildRet(L->b, ll_off(L, LLVMGetParam(fn, 0), ll_i64(L, off), NULL));
}

void ll_train_api(Ll *L) {
    ll_global(L, arena_printf(L->a, "%s_train_workspace_floats", L->p), ll_i64(L, L->train_ws_floats), 1);
    gen_forward(L, gen_forward_at(L));
    gen_backward(L);
    gen_spikes(L);
    gen_pointer(L, "train_params", 0);
    gen_pointer(L, "train_grads", align16(L->g->param_floats));
}
