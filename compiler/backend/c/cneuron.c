/*
 * cneuron.c: the loop of a neuron program, the C target's kernel of a
 * neuron layer, forward and backward.
 *
 * Each neuron is independent of the others over the steps, so the loop
 * runs over blocks of NEURON_BLOCK neurons (the unit that threads take),
 * and inside a block over the steps of the range, forward or in reverse,
 * then over the block's neurons: its states stay in cache from step to
 * step. The body is the model's instructions (cemit.c) in program order:
 *   - forward: from x, the states at the start of the step and the
 *     parameters, the output, the states at the end (reset included) and
 *     recorded variables. The inference plan updates the states in place;
 *     the training plan keeps the state at the start of every step;
 *   - backward: the instructions the autodiff pass derived, recomputing the
 *     step from its stored state and input (for a layer the remat pass
 *     marked, from the states of the block's every step that a function of
 *     the forward's instructions recomputes first), then dL/dx, the adjoints of the
 *     states carried to the previous step, and each element's contribution
 *     to the parameters' gradients, summed per element in double (the
 *     backward's caller adds the elements up in a fixed order).
 * Values that read only constants and per-layer parameters are computed
 * once before the loops. When a value that reads no state calls the math
 * library (AR-LIF's tanh(x) and sigmoid(c x) when the input is the same at
 * every step, as after a direct encoding or a hoisted layer; PLIF's
 * sigmoid(w) per channel), each block computes it once for all steps and
 * keeps it on the stack. Every value is the same expression as in a plain
 * loop, so the results are the same bits.
 */
#include <string.h>

#include "c.h"

/* Neurons per block (NEURON_BLOCK floats per kept value on the stack). */
#define NEURON_BLOCK 256

typedef struct NLeaves {
    CgLeaves lv;
    const char **state, **param, **adj;
} NLeaves;

static void leaves(Emit *e, const IrNode *x, NLeaves *L) {
    Arena *a = e->g->arena;
    const NeuronProg *p = x->neuron;
    long long cnt = shape_count(&x->shape), hw = cnt / x->shape.d[0];
    L->state = arena_alloc(a, sizeof(char *) * (size_t)(p->states.len + 1));
    L->param = arena_alloc(a, sizeof(char *) * (size_t)(p->params.len + 1));
    L->adj = arena_alloc(a, sizeof(char *) * (size_t)(p->states.len + 2));
    for (int k = 0; k < p->states.len; k++) {
        L->state[k] = arena_printf(a, "s%d[i]", k);
        L->adj[1 + k] = arena_printf(a, "ds%d[i]", k);
    }
    L->adj[0] = "gy[i]";
    for (int k = 0; k < p->params.len; k++) {
        const NeuronParam *q = &p->params.items[k];
        L->param[k] = q->gran == GRAN_LAYER    ? arena_printf(a, "p%d[0]", k)
                      : q->gran == GRAN_NEURON ? arena_printf(a, "p%d[i %% %lld]", k, cnt)
                                               : arena_printf(a, "p%d[i %% %lld / %lld]", k, cnt, hw);
    }
    L->lv.x = "x[i]";
    L->lv.state = L->state;
    L->lv.param = L->param;
    L->lv.adj = L->adj;
}

/* Whether an instruction is worth computing once for all steps: a call to
   the math library. */
static int costly(const EqInst *in) { return eq_op_libm[in->op]; }

/* Pointer to state k at step `t` (the start of the step). */
static const char *state_at(Emit *e, const IrPlan *P, int i, int k, const char *t) {
    const IrBufs *b = &P->at[i];
    long long cnt = shape_count(&e->g->nodes.items[i].shape);
    const char *base = cp_ws(e, P, b->state + (int64_t)k * b->ssteps * e->maxb * cnt);
    if (b->ssteps == 1)
        return base;
    return arena_printf(e->g->arena, "%s + (long)(%s) * B * %lld", base, t, cnt);
}

/* The body of the loop over a block's neurons at one step: the
   instructions of the step level, then the stores. */
static void body(Emit *e, const IrPlan *P, int i, int fwd, const EqCode *code, const unsigned char *live,
                 const unsigned char *lev, NLeaves *L) {
    const IrGraph *g = e->g;
    const IrNode *x = &g->nodes.items[i];
    const NeuronProg *p = x->neuron;
    cg_eq_emit(e, p, code, live, lev, CG_LEVEL_STEP, &L->lv, fwd);
    if (fwd) {
        for (int k = 0; k < p->states.len; k++)
            cg_line(e, "n%d[i] = %s;", k, cg_eq_val(e, code, p->states.items[k].next));
        cg_line(e, P->at[i].bits ? "yb[i - i0] = %s;" : "y[i] = %s;", cg_eq_val(e, code, p->emit));
        for (int k = 0; !cp_train(e, P) && k < g->probes.len; k++) {
            int pi = target_probe_inst(g, i, k);
            if (pi >= 0)
                cg_line(e, "r%d[i] = %s; /* record %s */", k, cg_eq_val(e, code, pi), g->probes.items[k].spec);
        }
        return;
    }
    const NeuronGrad *gr = p->grad;
    const IrBufs *bi = &P->at[x->in[0]];
    /* a select, not a branch, so that compilers vectorize the loop; set
       where this layer is the one writer of a gradient of every step (which
       may be written over x: x[i] was read above) */
    if (gr->dx >= 0 && bi->needgrad)
        cg_line(e, bi->gset && !bi->inv ? "gx[i] = dx ? %s : gx[i];" : "gx[i] = dx ? gx[i] + %s : gx[i];",
                cg_eq_val(e, code, gr->dx));
    for (int k = 0; k < p->states.len; k++)
        cg_line(e, "ds%d[i] = %s;", k, gr->dstate[k] >= 0 ? cg_eq_val(e, code, gr->dstate[k]) : "0.0f");
    for (int k = 0; k < p->params.len; k++)
        if (gr->dparam[k] >= 0)
            cg_line(e, "dp%d[i] += %s;", k, cg_eq_val(e, code, gr->dparam[k]));
}

/* Asks for the block's values of the next step (`next`: "t + 1" or
   "t - 1", while `more` holds) that the loop over the steps reads: the
   arrays whose address at step `t` is now[k] and at the next next[k]
   (those the same at every step left out). A block's steps lie a batch
   of the layer apart, beyond what the hardware's prefetchers follow: the
   backward of Linear(1024, 1024) + LIF waited for its values a third of
   its time (bench/RESULTS.md). */
static void prefetch_next(Emit *e, const char *more, const char *const *now, const char *const *next, int n) {
    int any = 0;
    for (int k = 0; k < n; k++)
        any |= strcmp(now[k], next[k]) != 0;
    if (!any)
        return;
    cg_line(e, "if (%s) /* the next step's values of the block, while this one computes */", more);
    cg_line(e, "    for (i = i0; i < i1; i += 16) {");
    for (int k = 0; k < n; k++) {
        int seen = 0; /* a gradient written over its value: one array */
        for (int j = 0; j < k; j++)
            seen |= !strcmp(next[j], next[k]);
        if (strcmp(now[k], next[k]) && !seen)
            cg_line(e, "        %s_PREFETCH(%s + i);", e->P, next[k]);
    }
    cg_line(e, "    }");
}

/* The pointers of step t, at the head of the loop over the steps. */
static void step_head(Emit *e, const IrPlan *P, int i, int fwd) {
    const IrGraph *g = e->g;
    const IrNode *x = &g->nodes.items[i];
    const NeuronProg *p = x->neuron;
    const IrBufs *b = &P->at[i];
    long long cnt = shape_count(&x->shape);
    int in = x->in[0];
    if (fwd)
        cg_line(e, "for (int t = from; t < to; t++) {");
    else
        cg_line(e, "for (int t = to - 1; t >= from; t--) {");
    e->ind++;
    if (!P->at[in].inv)
        cg_line(e, "const float *x = %s;", cp_at(e, P, in, 'v', "t"));
    for (int k = 0; (fwd || !b->remat) && k < p->states.len; k++)
        cg_line(e, "%sfloat *s%d = %s; /* %s at the start of the step */", fwd ? "" : "const ", k,
                state_at(e, P, i, k, "t"), p->states.items[k].name);
    if (fwd) {
        for (int k = 0; k < p->states.len; k++)
            cg_line(e, "float *n%d = %s;%s", k, state_at(e, P, i, k, "t + 1"),
                    b->ssteps == 1 ? " /* in place */" : "");
        if (b->bits)
            cg_line(e, "uint32_t *y = %s; /* spikes, 32 to a word */", cp_bits_at(e, P, i, "t"));
        else
            cg_line(e, "float *y = %s;", cp_at(e, P, i, 'v', "t"));
        for (int k = 0; !cp_train(e, P) && k < g->probes.len; k++)
            if (target_probe_inst(g, i, k) >= 0) {
                const char *base = arena_printf(g->arena, "ws + %lld", (long long)(cp_base(e, P) + g->probes.items[k].buf));
                if (P->chunk == 1)
                    cg_line(e, "float *r%d = %s;", k, base);
                else
                    cg_line(e, "float *r%d = %s + (long)(t %% %d) * B * %lld;", k, base, P->chunk, cnt);
            }
    } else {
        cg_line(e, "const float *gy = %s;", cp_at(e, P, i, 'g', "t"));
        cg_line(e, "(void)gy; /* unread where no gradient flows through the emitted value */");
        if (P->at[in].needgrad && p->grad->dx >= 0) {
            cg_line(e, "float *gx = %s;", cp_at(e, P, in, 'g', "t"));
            if (P->at[in].gset && P->at[in].inv) { /* not zeroed by the backward: the block's, at its first step */
                cg_line(e, "if (dx && t == to - 1)");
                cg_line(e, "    memset(gx + i0, 0, (size_t)(i1 - i0) * sizeof(float));");
            }
        }
        for (int k = 0; k < p->states.len; k++)
            cg_line(e, "float *ds%d = %s;", k, cp_ws(e, P, b->dstate + (int64_t)k * e->maxb * cnt));
        for (int k = 0; !b->remat && k < p->states.len; k++)
            cg_line(e, "(void)s%d;", k);
    }
    /* what the step reads: its input, and in the backward the stored
       states and the gradients (the forward's states are the last step's,
       in the caches) */
    const char **now = arena_alloc(g->arena, sizeof(char *) * (size_t)(p->states.len + 3));
    const char **next = arena_alloc(g->arena, sizeof(char *) * (size_t)(p->states.len + 3));
    const char *t1 = fwd ? "t + 1" : "t - 1";
    int n = 0;
    if (!P->at[in].inv) {
        now[n] = cp_at(e, P, in, 'v', "t");
        next[n++] = cp_at(e, P, in, 'v', t1);
    }
    if (!fwd) {
        for (int k = 0; !b->remat && k < p->states.len; k++) {
            now[n] = state_at(e, P, i, k, "t");
            next[n++] = state_at(e, P, i, k, t1);
        }
        now[n] = cp_at(e, P, i, 'g', "t");
        next[n++] = cp_at(e, P, i, 'g', t1);
        if (P->at[in].needgrad && p->grad->dx >= 0) {
            now[n] = cp_at(e, P, in, 'g', "t");
            next[n++] = cp_at(e, P, in, 'g', t1);
        }
    }
    prefetch_next(e, fwd ? "t + 1 < to" : "t > from", (const char *const *)now, (const char *const *)next, n);
    cg_line(e, "(void)x;");
}

/* The states of a block of neurons at the start of every step: rs[(k T +
   t) NEURON_BLOCK + i - i0] for state k, step t < T and neuron i. */
static const char *remat_state(Emit *e, int k, const char *t) {
    Arena *a = e->g->arena;
    long long base = (long long)k * e->g->timesteps * NEURON_BLOCK;
    const char *at = !strcmp(t, "0")   ? ""
                     : !strcmp(t, "t") ? arena_printf(a, "(long)t * %d + ", NEURON_BLOCK)
                                       : arena_printf(a, "(long)(%s) * %d + ", t, NEURON_BLOCK);
    return base ? arena_printf(a, "rs[%lld + %si - i0]", base, at) : arena_printf(a, "rs[%si - i0]", at);
}

/* <p>_train_remat<i>: for a layer the remat pass marked (IrBufs.remat),
   whose training plan keeps no states, the states of neurons [i0, i1) at
   the start of steps 0 to `to` - 1, recomputed by the forward's
   instructions from the initial states and the kept inputs, in the same
   order: the forward's values, bit for bit. Values that the forward
   computes once per block (nothing costly: the pass leaves such layers
   out) are computed at every step here. */
static void remat(Emit *e, const IrPlan *P, int i) {
    const IrGraph *g = e->g;
    const IrNode *x = &g->nodes.items[i];
    const NeuronProg *p = x->neuron;
    Arena *a = g->arena;
    int in = x->in[0];
    NLeaves L;
    leaves(e, x, &L);
    for (int k = 0; k < p->states.len; k++)
        L.state[k] = remat_state(e, k, "t");
    int *roots = arena_alloc(a, sizeof(int) * (size_t)(p->states.len + 1));
    for (int k = 0; k < p->states.len; k++)
        roots[k] = p->states.items[k].next;
    unsigned char *live = cg_eq_live(a, &p->code, roots, p->states.len);
    unsigned char *lev = cg_eq_levels(a, p, &p->code, P->at[in].inv);
    for (int k = 0; k < p->code.len; k++)
        if (lev[k] == CG_LEVEL_NEURON)
            lev[k] = CG_LEVEL_STEP;
    cg_blank(e);
    cg_comment_node(e, i);
    cg_line(e, "/* The states of neurons [i0, i1) at the start of steps 0 to to - 1,");
    cg_line(e, "   recomputed by the forward's instructions from the initial states (the remat");
    cg_line(e, "   pass): state k of step t at rs[(k * %d + t) * %d + i - i0] */", g->timesteps, NEURON_BLOCK);
    cg_line(e, "static void %s_train_remat%d(float *ws, long B, long i0, long i1, int to, float *rs)", e->p, i);
    cg_line(e, "{");
    e->ind++;
    for (int k = 0; k < p->params.len; k++)
        cg_line(e, "const float *p%d = %s; /* %s */", k, cp_param(e, p->params.items[k].param),
                g->params.items[p->params.items[k].param].name);
    for (int k = 0; k < p->params.len; k++)
        cg_line(e, "(void)p%d;", k);
    cg_eq_emit(e, p, &p->code, live, lev, CG_LEVEL_LAYER, &L.lv, 1);
    if (P->at[in].inv) {
        cg_line(e, "const float *x = %s; /* the same at every step */", cp_at(e, P, in, 'v', "0"));
        cg_line(e, "(void)x;");
    }
    cg_line(e, "long i;");
    cg_line(e, "(void)B;");
    for (int k = 0; k < p->states.len; k++) {
        cg_line(e, "for (i = i0; i < i1; i++) /* %s at the first step */", p->states.items[k].name);
        cg_line(e, "    %s = %s;", remat_state(e, k, "0"), cg_flt(e, p->states.items[k].init));
    }
    cg_line(e, "for (int t = 0; t + 1 < to; t++) {");
    e->ind++;
    if (!P->at[in].inv) {
        const char *now = cp_at(e, P, in, 'v', "t"), *next = cp_at(e, P, in, 'v', "t + 1");
        cg_line(e, "const float *x = %s;", now);
        cg_line(e, "(void)x;");
        prefetch_next(e, "t + 2 < to", &now, &next, 1);
    }
    cg_line(e, "%s_SIMD", e->P);
    cg_line(e, "for (i = i0; i < i1; i++) {");
    e->ind++;
    cg_eq_emit(e, p, &p->code, live, lev, CG_LEVEL_STEP, &L.lv, 1);
    for (int k = 0; k < p->states.len; k++)
        cg_line(e, "%s = %s;", remat_state(e, k, "t + 1"), cg_eq_val(e, &p->code, p->states.items[k].next));
    e->ind--;
    cg_line(e, "}");
    e->ind--;
    cg_line(e, "}");
    e->ind--;
    cg_line(e, "}");
}

static void neuron(Emit *e, const IrPlan *P, int i, int fwd) {
    const IrGraph *g = e->g;
    const IrNode *x = &g->nodes.items[i];
    const NeuronProg *p = x->neuron;
    const IrBufs *b = &P->at[i];
    int in = x->in[0];
    long long cnt = shape_count(&x->shape);
    Arena *a = g->arena;
    NLeaves L;
    leaves(e, x, &L);
    int rm = !fwd && b->remat;
    if (rm) {
        remat(e, P, i);
        for (int k = 0; k < p->states.len; k++)
            L.state[k] = remat_state(e, k, "t");
    }
    cp_open(e, P, i, fwd);
    for (int k = 0; k < p->params.len; k++)
        cg_line(e, "const float *p%d = %s; /* %s */", k, cp_param(e, p->params.items[k].param),
                g->params.items[p->params.items[k].param].name);
    if (!fwd)
        for (int k = 0; k < p->params.len; k++)
            cg_line(e, "double *dp%d = (double *)(void *)(%s); /* per element */", k,
                    cp_ws(e, P, b->pacc + (int64_t)k * ((2 * e->maxb * cnt + 15) & ~(int64_t)15)));
    const EqCode *code = fwd ? &p->code : &p->grad->code;
    /* only what reaches a root is emitted: the output, the states, records;
       or the adjoints */
    int nroots;
    int *roots = target_neuron_roots(g, P, i, fwd, &nroots);
    unsigned char *live = cg_eq_live(a, code, roots, nroots);
    unsigned char *lev = cg_eq_levels(a, p, code, P->at[in].inv);
    int blocked = 0;
    for (int k = 0; k < code->len; k++)
        blocked |= live[k] && lev[k] == CG_LEVEL_NEURON && costly(&code->items[k]);
    for (int k = 0; k < p->params.len; k++)
        cg_line(e, "(void)p%d;", k);
    cg_eq_emit(e, p, code, live, lev, CG_LEVEL_LAYER, &L.lv, fwd);
    unsigned char *keep = arena_alloc(a, (size_t)code->len + 1);
    if (!blocked) {
        /* per-neuron values are computed at every step with the rest */
        for (int k = 0; k < code->len; k++)
            if (lev[k] == CG_LEVEL_NEURON)
                lev[k] = CG_LEVEL_STEP;
    } else {
        /* the per-neuron values the steps read: 1 kept in a block array, 2
           a leaf (x or a parameter) read where it is */
        for (int k = 0; k < code->len; k++) {
            const EqInst *q = &code->items[k];
            int ar = eq_nops(q);
            if (!live[k] || lev[k] != CG_LEVEL_STEP)
                continue;
            if (ar > 0 && lev[q->a] == CG_LEVEL_NEURON) keep[q->a] = 1;
            if (ar > 1 && lev[q->b] == CG_LEVEL_NEURON) keep[q->b] = 1;
            if (ar > 2 && lev[q->c] == CG_LEVEL_NEURON) keep[q->c] = 1;
        }
        for (int k = 0; k < nroots; k++)
            if (roots[k] >= 0 && lev[roots[k]] == CG_LEVEL_NEURON)
                keep[roots[k]] = 1;
        for (int k = 0; k < code->len; k++)
            if (keep[k] && (code->items[k].op == EQ_INPUT || code->items[k].op == EQ_PARAM))
                keep[k] = 2;
    }
    if (P->at[in].inv) {
        cg_line(e, "const float *x = %s; /* the same at every step */", cp_at(e, P, in, 'v', "0"));
        cg_line(e, "(void)x;");
    }
    cg_par_for(e, arena_printf(a, "(long)(to - from) * B * %lld", cnt));
    cg_line(e, "for (long i0 = 0; i0 < B * %lld; i0 += %d) { /* blocks of neurons */", cnt, NEURON_BLOCK);
    e->ind++;
    cg_line(e, "const long i1 = B * %lld - i0 < %d ? B * %lld : i0 + %d;", cnt, NEURON_BLOCK, cnt, NEURON_BLOCK);
    cg_line(e, "long i;");
    if (fwd && b->bits)
        cg_line(e, "float yb[%d]; /* the block's spikes of a step, then packed */", NEURON_BLOCK);
    if (rm) {
        cg_line(e, "float rs[%lld]; /* the block's states at the start of every step, recomputed */",
                (long long)p->states.len * g->timesteps * NEURON_BLOCK);
        cg_line(e, "%s_train_remat%d(ws, B, i0, i1, to, rs);", e->p, i);
    }
    if (blocked) {
        int nkept = 0;
        int *kept = arena_alloc(a, sizeof(int) * (size_t)(code->len + 1));
        for (int k = 0; k < code->len; k++)
            if (keep[k] == 1) {
                kept[nkept++] = k;
                cg_line(e, "float v%d[%d];", k, NEURON_BLOCK);
            }
        unsigned char *pre = cg_eq_live(a, code, kept, nkept);
        cg_line(e, "%s_SIMD", e->P);
        cg_line(e, "for (i = i0; i < i1; i++) { /* the values that do not change over the steps */");
        e->ind++;
        cg_eq_emit(e, p, code, pre, lev, CG_LEVEL_NEURON, &L.lv, fwd);
        for (int k = 0; k < code->len; k++)
            if (keep[k] == 1)
                cg_line(e, "v%d[i - i0] = t%d;", k, k);
        e->ind--;
        cg_line(e, "}");
    }
    step_head(e, P, i, fwd);
    cg_line(e, "%s_SIMD", e->P);
    cg_line(e, "for (i = i0; i < i1; i++) {");
    e->ind++;
    for (int k = 0; k < code->len; k++) {
        const EqInst *q = &code->items[k];
        if (keep[k] == 1)
            cg_line(e, "const float t%d = v%d[i - i0];", k, k);
        else if (keep[k] == 2)
            cg_line(e, "const float t%d = %s;", k, q->op == EQ_INPUT ? L.lv.x : L.lv.param[q->idx]);
    }
    body(e, P, i, fwd, code, live, lev, &L);
    e->ind--;
    cg_line(e, "}");
    if (fwd && b->bits) {
        /* the block starts on a word and ends on one (its layer is a multiple of 32 wide) */
        if (e->isa == ISA_AVX512) { /* a comparison's mask is 16 of the bits */
            cg_line(e, "for (i = i0; i < i1; i += 32) /* 32 spikes to a word: the lanes not zero */");
            cg_line(e, "    y[i >> 5] = (uint32_t)_mm512_cmp_ps_mask(_mm512_loadu_ps(yb + i - i0), _mm512_setzero_ps(), _CMP_NEQ_UQ) |");
            cg_line(e, "                (uint32_t)_mm512_cmp_ps_mask(_mm512_loadu_ps(yb + i - i0 + 16), _mm512_setzero_ps(), _CMP_NEQ_UQ) << 16;");
        } else if (e->isa == ISA_AVX2) { /* a comparison's signs are 8 */
            cg_line(e, "for (i = i0; i < i1; i += 32) { /* 32 spikes to a word: the lanes not zero */");
            cg_line(e, "    uint32_t m = 0;");
            cg_line(e, "    for (int j = 0; j < 32; j += 8)");
            cg_line(e, "        m |= (uint32_t)_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(yb + i - i0 + j), _mm256_setzero_ps(), _CMP_NEQ_UQ)) << j;");
            cg_line(e, "    y[i >> 5] = m;");
            cg_line(e, "}");
        } else {
            cg_line(e, "for (i = i0; i < i1; i += 32) { /* 32 spikes to a word */");
            cg_line(e, "    uint32_t m = 0;");
            cg_line(e, "    for (int j = 0; j < 32; j++)");
            cg_line(e, "        m |= (uint32_t)(yb[i - i0 + j] != 0.0f) << j;");
            cg_line(e, "    y[i >> 5] = m;");
            cg_line(e, "}");
        }
    }
    e->ind--;
    cg_line(e, "}");
    e->ind--;
    cg_line(e, "}");
    if (!fwd)
        for (int k = 0; k < p->params.len; k++)
            cg_line(e, "(void)dp%d;", k);
    cp_close(e, fwd ? "(void)training;" : "(void)dx;");
}

void cn_neuron_fwd(TargetEmitter *em, const IrPlan *P, int i) { neuron(&em->e, P, i, 1); }
void cn_neuron_bwd(TargetEmitter *em, const IrPlan *P, int i) { neuron(&em->e, P, i, 0); }
