/*
 * llneuron.c: the llvm target's kernels of a neuron layer: the model's
 * instructions (a NeuronProg) as LLVM IR on vectors of LL_LANES neurons,
 * then on single neurons for the rest of the layer.
 *
 * Forward, for every step of the range, each neuron reads its input and
 * its states at the start of the step, runs the instructions in program
 * order, and writes its output (in training maybe as bits, 32 spikes to a
 * word), its states at the end of the step (in place at inference; the
 * training plan keeps the state at the start of every step) and the
 * variables that --record asks for (inference).
 * Backward, over the steps in reverse, the instructions the autodiff pass
 * derived (NeuronGrad) recompute the step from its stored state and input,
 * read the adjoints of the output and of the next states (EQ_ADJ), and
 * write dL/dx (added to the input's gradient), the adjoints of the states
 * carried to the step before, and each element's contribution to the
 * parameters' gradients, summed per element in double (the API's
 * train_backward adds the elements up), as the C target's cneuron.c.
 * Each instruction is the C target's expression (cemit.c cg_eq_emit) on
 * every lane: comparisons give 1 or 0, exp, log, tanh, pow, min and max
 * call the C library lane by lane, sqrt and abs are LLVM's exact
 * intrinsics, so every lane computes the bits the C target's scalar code
 * computes. Under --math fast, exp, log, tanh, min and max are llmath.c's
 * on whole vectors instead (snnrt_math.inc's, as the C target's --math
 * fast). Only the instructions that reach the output, a state or a record
 * are written.
 */
#include <string.h>

#include "ll.h"

typedef struct Leaves {
    LLVMValueRef x, *s, *n, *p, y, *r; /* pointers of the step (r: per probe, NULL if none) */
    LLVMValueRef bits;                 /* forward: the spikes' words, or NULL (y) */
    LLVMValueRef gy, gx, *ds, *dp, dx; /* backward: gx NULL when no dL/dx; dp of doubles */
    int gover;                         /* backward: gx is x's buffer (IrBufs.gover): set, not added to */
    long long cnt, hw;                 /* neurons of a sample, and per channel */
} Leaves;

/* A parameter for the lanes of neurons idx .. idx + lanes - 1. */
static LLVMValueRef param(Ll *L, const NeuronParam *q, LLVMValueRef p, const Leaves *lv, LLVMValueRef idx, int lanes) {
    if (q->gran == GRAN_LAYER)
        return ll_splat(L, ll_load(L, p, 1, NULL), lanes);
    LLVMValueRef v = lanes == 1 ? NULL : LLVMGetUndef(L->vf);
    for (int k = 0; k < lanes; k++) {
        LLVMValueRef e = LLVMBuildNSWAdd(L->b, idx, ll_i64(L, k), "");
        e = LLVMBuildSRem(L->b, e, ll_i64(L, lv->cnt), "");
        if (q->gran == GRAN_CHANNEL)
            e = LLVMBuildSDiv(L->b, e, ll_i64(L, lv->hw), "");
        LLVMValueRef f = ll_load(L, ll_off(L, p, e, NULL), 1, NULL);
        if (lanes == 1)
            return f;
        v = LLVMBuildInsertElement(L->b, v, f, ll_i32(L, k), "");
    }
    return v;
}

/* 1.0 where c holds, else 0.0. */
static LLVMValueRef flag(Ll *L, LLVMValueRef c, int lanes) {
    return LLVMBuildSelect(L->b, c, ll_flt(L, 1.0f, lanes), ll_flt(L, 0.0f, lanes), "");
}

static LLVMValueRef cmp(Ll *L, LLVMRealPredicate op, LLVMValueRef a, LLVMValueRef b) {
    return LLVMBuildFCmp(L->b, op, a, b, "");
}

/* A function of the C library on lanes: under --math fast, the module's
   vector version where it has one (llmath.c), else the C library's. */
static LLVMValueRef math(Ll *L, const char *name, LLVMValueRef a, LLVMValueRef b, int lanes) {
    LLVMValueRef r = L->opt->math == MATH_FAST ? ll_fast_math(L, name, a, b, lanes) : NULL;
    return r ? r : ll_call_math(L, name, a, b, lanes);
}

/* Spikes v of neurons idx .. idx + lanes - 1 into their bits: the word's
   other bits kept unless idx starts it (a layer kept as bits is a multiple
   of 32 wide, so every vector falls within one word). */
static void store_bits(Ll *L, LLVMValueRef v, LLVMValueRef words, LLVMValueRef idx, int lanes) {
    LLVMValueRef on = LLVMBuildFCmp(L->b, LLVMRealUNE, v, ll_flt(L, 0.0f, lanes), "");
    LLVMValueRef m = lanes == 1 ? on : LLVMBuildBitCast(L->b, on, LLVMIntTypeInContext(L->ctx, (unsigned)lanes), "");
    m = LLVMBuildZExt(L->b, m, L->i32, "");
    LLVMValueRef sh = LLVMBuildTrunc(L->b, LLVMBuildAnd(L->b, idx, ll_i64(L, 31), ""), L->i32, "");
    LLVMValueRef w = LLVMBuildInBoundsGEP2(L->b, L->i32, words,
                                           (LLVMValueRef[]){LLVMBuildLShr(L->b, idx, ll_i64(L, 5), "")}, 1, "");
    LLVMValueRef old = LLVMBuildLoad2(L->b, L->i32, w, "");
    LLVMSetAlignment(old, 4);
    old = LLVMBuildSelect(L->b, LLVMBuildICmp(L->b, LLVMIntEQ, sh, ll_i32(L, 0), ""), ll_i32(L, 0), old, "");
    LLVMSetAlignment(LLVMBuildStore(L->b, LLVMBuildOr(L->b, old, LLVMBuildShl(L->b, m, sh, ""), ""), w), 4);
}

/* A float or vector added, in double, to the doubles at p. */
static void add_double(Ll *L, LLVMValueRef v, LLVMValueRef p, int lanes) {
    LLVMTypeRef ty = lanes == 1 ? L->f64 : LLVMVectorType(L->f64, (unsigned)lanes);
    LLVMValueRef old = LLVMBuildLoad2(L->b, ty, p, "");
    LLVMSetAlignment(old, sizeof(double));
    LLVMSetAlignment(LLVMBuildStore(L->b, LLVMBuildFAdd(L->b, old, LLVMBuildFPExt(L->b, v, ty, ""), ""), p),
                     sizeof(double));
}

/* The instructions of the step for neurons idx .. idx + lanes - 1, then
   the stores: forward (code: the program) or backward (code: its
   gradient's). */
static void body(Ll *L, const IrNode *x, const EqCode *code, const unsigned char *live, const int *probe,
                 const Leaves *lv, LLVMValueRef idx, int lanes, int fwd) {
    const NeuronProg *p = x->neuron;
    LLVMValueRef *v = arena_alloc(L->a, sizeof(LLVMValueRef) * (size_t)(code->len + 1));
    LLVMValueRef zero = ll_flt(L, 0.0f, lanes), one = ll_flt(L, 1.0f, lanes);
    for (int k = 0; k < code->len; k++) {
        const EqInst *in = &code->items[k];
        if (!live[k])
            continue;
        LLVMValueRef A = in->a >= 0 ? v[in->a] : NULL, B = in->b >= 0 ? v[in->b] : NULL;
        LLVMValueRef C = in->c >= 0 ? v[in->c] : NULL;
        LLVMValueRef r = NULL;
        switch (in->op) {
        case EQ_CONST: r = ll_flt(L, in->k, lanes); break;
        case EQ_INPUT: r = ll_load(L, ll_off(L, lv->x, idx, NULL), lanes, "x"); break;
        case EQ_STATE:
            r = ll_load(L, ll_off(L, lv->s[in->idx], idx, NULL), lanes, p->states.items[in->idx].name);
            break;
        case EQ_PARAM: r = param(L, &p->params.items[in->idx], lv->p[in->idx], lv, idx, lanes); break;
        case EQ_ADD: r = LLVMBuildFAdd(L->b, A, B, ""); break;
        case EQ_SUB: r = LLVMBuildFSub(L->b, A, B, ""); break;
        case EQ_MUL: r = LLVMBuildFMul(L->b, A, B, ""); break;
        case EQ_DIV: r = LLVMBuildFDiv(L->b, A, B, ""); break;
        case EQ_NEG: r = LLVMBuildFNeg(L->b, A, ""); break;
        case EQ_LT: r = flag(L, cmp(L, LLVMRealOLT, A, B), lanes); break;
        case EQ_LE: r = flag(L, cmp(L, LLVMRealOLE, A, B), lanes); break;
        case EQ_GT: r = flag(L, cmp(L, LLVMRealOGT, A, B), lanes); break;
        case EQ_GE: r = flag(L, cmp(L, LLVMRealOGE, A, B), lanes); break;
        case EQ_EQ: r = flag(L, cmp(L, LLVMRealOEQ, A, B), lanes); break;
        case EQ_NE: r = flag(L, cmp(L, LLVMRealUNE, A, B), lanes); break;
        case EQ_AND:
            r = flag(L, LLVMBuildAnd(L->b, cmp(L, LLVMRealUNE, A, zero), cmp(L, LLVMRealUNE, B, zero), ""), lanes);
            break;
        case EQ_OR:
            r = flag(L, LLVMBuildOr(L->b, cmp(L, LLVMRealUNE, A, zero), cmp(L, LLVMRealUNE, B, zero), ""), lanes);
            break;
        case EQ_NOT: r = flag(L, cmp(L, LLVMRealOEQ, A, zero), lanes); break;
        case EQ_SELECT: r = LLVMBuildSelect(L->b, cmp(L, LLVMRealUNE, A, zero), B, C, ""); break;
        case EQ_EXP: r = math(L, "expf", A, NULL, lanes); break;
        case EQ_LOG: r = math(L, "logf", A, NULL, lanes); break;
        case EQ_SQRT: r = ll_call_math(L, "llvm.sqrt", A, NULL, lanes); break;
        case EQ_TANH: r = math(L, "tanhf", A, NULL, lanes); break;
        case EQ_SIGMOID: /* 1 / (1 + exp(-a)) */
            r = LLVMBuildFDiv(L->b, one,
                              LLVMBuildFAdd(L->b, one, math(L, "expf", LLVMBuildFNeg(L->b, A, ""), NULL, lanes),
                                            ""),
                              "");
            break;
        case EQ_ABS: r = ll_call_math(L, "llvm.fabs", A, NULL, lanes); break;
        case EQ_FLOOR: r = ll_call_math(L, "llvm.floor", A, NULL, lanes); break;
        case EQ_MIN: r = math(L, "fminf", A, B, lanes); break;
        case EQ_MAX: r = math(L, "fmaxf", A, B, lanes); break;
        case EQ_POW: r = ll_call_math(L, "powf", A, B, lanes); break;
        case EQ_SPIKE: r = flag(L, cmp(L, LLVMRealOGE, A, zero), lanes); break;
        case EQ_DETACH: r = A; break;
        case EQ_ADJ:
            r = ll_load(L, ll_off(L, in->idx ? lv->ds[in->idx - 1] : lv->gy, idx, NULL), lanes,
                        in->idx ? "adj" : "gy");
            break;
        default: ICE("neuron op %d", (int)in->op);
        }
        for (int q = 0; fwd && q < p->names.len; q++)
            if (p->names.items[q].inst == k && !LLVMIsConstant(r))
                LLVMSetValueName2(r, ll_name(L, p->names.items[q].name), strlen(ll_name(L, p->names.items[q].name)));
        v[k] = r;
    }
    if (!fwd) {
        const NeuronGrad *gr = p->grad;
        if (lv->gx) { /* gx += dL/dx where the caller wants it (a select, as the C target's); set
                         where it is written over x, whose lanes were loaded above */
            LLVMValueRef at = ll_off(L, lv->gx, idx, NULL), old = ll_load(L, at, lanes, NULL);
            LLVMValueRef nw = lv->gover ? v[gr->dx] : LLVMBuildFAdd(L->b, old, v[gr->dx], "");
            ll_store(L, LLVMBuildSelect(L->b, lv->dx, nw, old, ""), at);
        }
        for (int k = 0; k < p->states.len; k++)
            ll_store(L, gr->dstate[k] >= 0 ? v[gr->dstate[k]] : zero, ll_off(L, lv->ds[k], idx, NULL));
        for (int k = 0; k < p->params.len; k++)
            if (gr->dparam[k] >= 0)
                add_double(L, v[gr->dparam[k]], LLVMBuildInBoundsGEP2(L->b, L->f64, lv->dp[k], &idx, 1, ""), lanes);
        return;
    }
    for (int k = 0; k < p->states.len; k++)
        ll_store(L, v[p->states.items[k].next], ll_off(L, lv->n[k], idx, NULL));
    if (lv->bits)
        store_bits(L, v[p->emit], lv->bits, idx, lanes);
    else
        ll_store(L, v[p->emit], ll_off(L, lv->y, idx, NULL));
    for (int k = 0; probe && k < L->g->probes.len; k++)
        if (probe[k] >= 0)
            ll_store(L, v[probe[k]], ll_off(L, lv->r[k], idx, NULL));
}

/* Pointer to state k at step t (an i32 value): the start of the step. */
static LLVMValueRef state_at(Ll *L, int i, int k, LLVMValueRef t, const char *what) {
    const IrBufs *b = &L->P->at[i];
    long long cnt = shape_count(&L->g->nodes.items[i].shape);
    LLVMValueRef base = ll_plan(L, b->state + (int64_t)k * b->ssteps * L->g->batch * cnt, what);
    if (b->ssteps == 1)
        return base;
    LLVMValueRef off = LLVMBuildNSWMul(L->b, LLVMBuildSExt(L->b, t, L->i64, ""), L->B, "");
    return ll_off(L, base, LLVMBuildNSWMul(L->b, off, ll_i64(L, cnt), ""), what);
}

/* The pointers of step t: forward, the next states, the output and the
   records; backward, the adjoints and the input's gradient. */
static void step_leaves(Ll *L, int i, int fwd, LLVMValueRef t, const int *probe, LLVMValueRef N, Leaves *lv) {
    const IrGraph *g = L->g;
    const IrPlan *P = L->P;
    const NeuronProg *p = g->nodes.items[i].neuron;
    int in = g->nodes.items[i].in[0];
    if (!P->at[in].inv)
        lv->x = ll_at(L, in, t, "x");
    LLVMValueRef t1 = LLVMBuildNSWAdd(L->b, t, ll_i32(L, 1), "");
    for (int k = 0; k < p->states.len; k++) {
        const char *name = p->states.items[k].name;
        lv->s[k] = state_at(L, i, k, t, name);
        if (fwd)
            lv->n[k] = P->at[i].ssteps == 1 ? lv->s[k] : state_at(L, i, k, t1, arena_printf(L->a, "%s.next", name));
    }
    if (!fwd) {
        lv->gy = ll_grad_at(L, i, t, "gy");
        if (P->at[in].needgrad && p->grad->dx >= 0)
            lv->gx = ll_grad_at(L, in, t, "gx");
        lv->gover = P->at[in].gover;
        return;
    }
    if (P->at[i].bits)
        lv->bits = ll_bits_at(L, i, t, "spikes");
    else
        lv->y = ll_at(L, i, t, "y");
    for (int k = 0; k < g->probes.len; k++) {
        if (probe[k] < 0)
            continue;
        LLVMValueRef r = ll_plan(L, g->probes.items[k].buf, arena_printf(L->a, "record%d", k));
        if (P->chunk != 1) {
            LLVMValueRef slot = LLVMBuildSExt(L->b, LLVMBuildSRem(L->b, t, ll_i32(L, P->chunk), ""), L->i64, "");
            r = ll_off(L, r, LLVMBuildNSWMul(L->b, slot, N, ""), arena_printf(L->a, "record%d.t", k));
        }
        lv->r[k] = r;
    }
}

static void neuron(Ll *L, const IrPlan *P, int i, int fwd) {
    const IrGraph *g = L->g;
    const IrNode *x = &g->nodes.items[i];
    const NeuronProg *p = x->neuron;
    int in = x->in[0];
    Leaves lv;
    memset(&lv, 0, sizeof lv);
    lv.cnt = shape_count(&x->shape);
    lv.hw = lv.cnt / x->shape.d[0];
    /* only what reaches a root is written: the output, the states and
       records; or the adjoints */
    const EqCode *code = fwd ? &p->code : &p->grad->code;
    int nroots;
    int *roots = target_neuron_roots(g, P, i, fwd, &nroots);
    int *probe = fwd ? roots + 1 + p->states.len : NULL; /* per probe its instruction, or -1 */
    unsigned char *live = target_eq_live(L->a, code, roots, nroots);

    ll_kernel_open(L, P, i, fwd);
    lv.p = arena_alloc(L->a, sizeof(LLVMValueRef) * (size_t)(2 * p->params.len + 1));
    lv.dp = lv.p + p->params.len;
    for (int k = 0; k < p->params.len; k++) {
        lv.p[k] = ll_param(L, p->params.items[k].param);
        if (!fwd) /* per element: 2 floats each, 16-float aligned blocks */
            lv.dp[k] = ll_plan(L, P->at[i].pacc + (int64_t)k * ((2 * g->batch * lv.cnt + 15) & ~(int64_t)15), "dp");
    }
    lv.s = arena_alloc(L->a, sizeof(LLVMValueRef) * (size_t)(3 * p->states.len + 1));
    lv.n = lv.s + p->states.len;
    lv.ds = lv.n + p->states.len;
    if (!fwd) {
        lv.dx = LLVMBuildICmp(L->b, LLVMIntNE, ll_flag(L), ll_i32(L, 0), ll_name(L, "want.dx"));
        for (int k = 0; k < p->states.len; k++)
            lv.ds[k] = ll_plan(L, P->at[i].dstate + (int64_t)k * g->batch * lv.cnt, "ds");
    }
    lv.r = arena_alloc(L->a, sizeof(LLVMValueRef) * (size_t)(g->probes.len + 1));
    if (P->at[in].inv) /* the same at every step */
        lv.x = ll_at(L, in, ll_i32(L, 0), "x");
    LLVMValueRef N = LLVMBuildNSWMul(L->b, L->B, ll_i64(L, lv.cnt), ll_name(L, "n"));
    /* this part's neurons [n0, n1): whole words of spikes kept as bits */
    LLVMValueRef n0, n1;
    ll_share(L, N, 32, &n0, &n1);
    LLVMValueRef len = LLVMBuildNSWSub(L->b, n1, n0, "");
    LLVMValueRef NV = LLVMBuildNSWAdd(L->b, n0, LLVMBuildNSWSub(L->b, len, LLVMBuildSRem(L->b, len, ll_i64(L, LL_LANES), ""), ""),
                                      ll_name(L, "nvec"));
    LlLoop t, vec, one;
    LLVMValueRef step;
    if (fwd) {
        ll_loop_open(L, &t, ll_from(L), ll_to(L), 1, "t");
        step = t.iv;
    } else { /* backwards: u counts up, the step is to - 1 - (u - from) */
        ll_loop_open(L, &t, ll_from(L), ll_to(L), 1, "u");
        step = LLVMBuildNSWSub(L->b, LLVMBuildNSWAdd(L->b, ll_to(L), ll_from(L), ""),
                               LLVMBuildNSWAdd(L->b, t.iv, ll_i32(L, 1), ""), ll_name(L, "t"));
    }
    step_leaves(L, i, fwd, step, probe, N, &lv);
    ll_loop_open(L, &vec, n0, NV, LL_LANES, "vec");
    body(L, x, code, live, probe, &lv, vec.iv, LL_LANES, fwd);
    ll_loop_close(L, &vec);
    ll_loop_open(L, &one, NV, n1, 1, "rest");
    body(L, x, code, live, probe, &lv, one.iv, 1, fwd);
    ll_loop_close(L, &one);
    ll_loop_close(L, &t);
    ll_kernel_close(L);
}

void ll_neuron_fwd(TargetEmitter *em, const IrPlan *P, int i) { neuron(em, P, i, 1); }
void ll_neuron_bwd(TargetEmitter *em, const IrPlan *P, int i) { neuron(em, P, i, 0); }
