/*
 * autodiff.c: the `autodiff` pass: the backward of every neuron program,
 * derived from its equations by reverse-mode differentiation.
 *
 * Requires: g->train (otherwise it does nothing) and simplified forward
 * programs. Preserves: the forward programs. For each neuron node it builds
 * a NeuronGrad: the code of one reverse step. That code first recomputes
 * the forward instructions of the step (from the state at its start and the
 * step's input), then walks them in reverse and accumulates each value's
 * adjoint from its users, as PyTorch's autograd would for the same
 * expressions:
 *   - the emitted value receives the adjoint coming from the layers that
 *     read the neuron's output (EQ_ADJ 0); each state's next value receives
 *     the adjoint of that state at the start of the following step
 *     (EQ_ADJ 1 + k), which is how gradients flow through time;
 *   - spike(u) passes its adjoint times the surrogate derivative at u,
 *     written out as ordinary instructions (surrogate() below), so that a
 *     target needs no code of its own for any surrogate; detach() and
 *     comparisons pass none; select() passes it to the branch taken;
 *   - min and max split it evenly on a tie, as PyTorch does.
 * The results are dL/dx, dL/d(state at the start of the step) and each
 * learnable parameter's contribution, which the back ends sum over the
 * neurons that share the parameter, the batch and the steps. The code is
 * then simplified (folding, sharing, dead code) like a forward program.
 */
#include "passes.h"

#include <string.h>

typedef struct Ad {
    Arena *arena;
    EqCode *code;
    int *adj; /* per forward instruction: its adjoint so far, or -1 (zero) */
} Ad;

static int op3(Ad *d, EqOp op, int a, int b, int c) {
    EqInst e;
    memset(&e, 0, sizeof e);
    e.op = op;
    e.a = a;
    e.b = b;
    e.c = c;
    return eq_push(d->arena, d->code, e);
}

static int op2(Ad *d, EqOp op, int a, int b) { return op3(d, op, a, b, -1); }
static int op1(Ad *d, EqOp op, int a) { return op3(d, op, a, -1, -1); }

static int konst(Ad *d, float k) {
    int i = op3(d, EQ_CONST, -1, -1, -1);
    d->code->items[i].k = k;
    return i;
}

/* The derivative that surrogate `s` with parameter `alpha` stands for, at
   u, as instructions (DESIGN 2.1). Constants that depend on alpha only are
   computed here in float, as the expressions of the documentation would
   compute them at run time, so the result is the same bits:
     atan          (alpha / 2) / (1 + k^2), k = float(pi / 2 alpha) u
     sigmoid       (1 - s) s alpha, s = sigmoid(u alpha)
     fast_sigmoid  1 / (d d), d = alpha |u| + 1
     rect          |u| <= alpha / 2 ? 1 / alpha : 0
     triangle      d > 0 ? d : 0, d = alpha - alpha^2 |u| */
static int surrogate(Ad *d, SurrKind s, float alpha, int u) {
    /* one instruction per statement: the numbering does not depend on the
       order in which a C compiler evaluates arguments */
    switch (s) {
    case SURR_ATAN: {
        int c = konst(d, (float)(1.5707963267948966 * (double)alpha));
        int k = op2(d, EQ_MUL, c, u);
        int kk = op2(d, EQ_MUL, k, k);
        int one = konst(d, 1.0f);
        int den = op2(d, EQ_ADD, one, kk);
        int half = konst(d, alpha / 2.0f);
        return op2(d, EQ_DIV, half, den);
    }
    case SURR_SIGMOID: {
        int al = konst(d, alpha);
        int sg = op1(d, EQ_SIGMOID, op2(d, EQ_MUL, u, al));
        int one = konst(d, 1.0f);
        int m = op2(d, EQ_MUL, op2(d, EQ_SUB, one, sg), sg);
        return op2(d, EQ_MUL, m, al);
    }
    case SURR_FAST_SIGMOID: {
        int al = konst(d, alpha);
        int au = op2(d, EQ_MUL, al, op1(d, EQ_ABS, u));
        int one = konst(d, 1.0f);
        int dd = op2(d, EQ_ADD, au, one);
        return op2(d, EQ_DIV, one, op2(d, EQ_MUL, dd, dd));
    }
    case SURR_RECT: {
        int half = konst(d, 0.5f * alpha);
        int in = op2(d, EQ_LE, op1(d, EQ_ABS, u), half);
        int h = konst(d, 1.0f / alpha);
        int zero = konst(d, 0.0f);
        return op3(d, EQ_SELECT, in, h, zero);
    }
    case SURR_TRIANGLE: {
        int al = konst(d, alpha);
        int a2 = konst(d, alpha * alpha);
        int dd = op2(d, EQ_SUB, al, op2(d, EQ_MUL, a2, op1(d, EQ_ABS, u)));
        int zero = konst(d, 0.0f);
        return op3(d, EQ_SELECT, op2(d, EQ_GT, dd, zero), dd, zero);
    }
    case SURR_NUM:
        break;
    }
    ICE("surrogate %d", (int)s);
}

/* adj[i] += v */
static void acc(Ad *d, int i, int v) {
    d->adj[i] = d->adj[i] < 0 ? v : op2(d, EQ_ADD, d->adj[i], v);
}

/* The adjoint of forward instruction i (adjoint g, value r) to its operands. */
static void back_inst(Ad *d, int i, int g) {
    EqInst e = d->code->items[i]; /* a copy: pushing may move the code */
    int a = e.a, b = e.b, r = i;
    switch (e.op) {
    case EQ_ADD:
        acc(d, a, g);
        acc(d, b, g);
        break;
    case EQ_SUB:
        acc(d, a, g);
        acc(d, b, op1(d, EQ_NEG, g));
        break;
    case EQ_MUL:
        acc(d, a, op2(d, EQ_MUL, g, b));
        acc(d, b, op2(d, EQ_MUL, g, a));
        break;
    case EQ_DIV: /* d(a/b)/db = -a/b^2, written as PyTorch does: -g * a / (b * b) */
        acc(d, a, op2(d, EQ_DIV, g, b));
        acc(d, b, op2(d, EQ_DIV, op2(d, EQ_MUL, op1(d, EQ_NEG, g), a), op2(d, EQ_MUL, b, b)));
        break;
    case EQ_NEG:
        acc(d, a, op1(d, EQ_NEG, g));
        break;
    case EQ_SELECT: {
        int zero = konst(d, 0.0f);
        acc(d, b, op3(d, EQ_SELECT, a, g, zero));
        acc(d, e.c, op3(d, EQ_SELECT, a, zero, g));
        break;
    }
    case EQ_EXP:
        acc(d, a, op2(d, EQ_MUL, g, r));
        break;
    case EQ_LOG:
        acc(d, a, op2(d, EQ_DIV, g, a));
        break;
    case EQ_SQRT: /* g / (2 sqrt(a)) */
        acc(d, a, op2(d, EQ_DIV, g, op2(d, EQ_MUL, konst(d, 2.0f), r)));
        break;
    case EQ_TANH: /* g (1 - r^2) */
        acc(d, a, op2(d, EQ_MUL, g, op2(d, EQ_SUB, konst(d, 1.0f), op2(d, EQ_MUL, r, r))));
        break;
    case EQ_SIGMOID: /* g (1 - r) r */
        acc(d, a, op2(d, EQ_MUL, op2(d, EQ_MUL, g, op2(d, EQ_SUB, konst(d, 1.0f), r)), r));
        break;
    case EQ_ABS: { /* g sign(a), sign(0) = 0 */
        int zero = konst(d, 0.0f);
        int sgn = op3(d, EQ_SELECT, op2(d, EQ_GT, a, zero), konst(d, 1.0f),
                      op3(d, EQ_SELECT, op2(d, EQ_LT, a, zero), konst(d, -1.0f), zero));
        acc(d, a, op2(d, EQ_MUL, g, sgn));
        break;
    }
    case EQ_MIN:
    case EQ_MAX: { /* to the operand chosen; half to each on a tie */
        EqOp win = e.op == EQ_MIN ? EQ_LT : EQ_GT;
        int zero = konst(d, 0.0f);
        int half = op2(d, EQ_MUL, g, konst(d, 0.5f));
        int tie = op2(d, EQ_EQ, a, b);
        acc(d, a, op3(d, EQ_SELECT, tie, half, op3(d, EQ_SELECT, op2(d, win, a, b), g, zero)));
        acc(d, b, op3(d, EQ_SELECT, tie, half, op3(d, EQ_SELECT, op2(d, win, b, a), g, zero)));
        break;
    }
    case EQ_POW: { /* d/da = b a^(b-1); d/db = r log(a) where a > 0, else 0 */
        int zero = konst(d, 0.0f);
        acc(d, a, op2(d, EQ_MUL, g, op2(d, EQ_MUL, b, op2(d, EQ_POW, a, op2(d, EQ_SUB, b, konst(d, 1.0f))))));
        int lg = op3(d, EQ_SELECT, op2(d, EQ_GT, a, zero), op1(d, EQ_LOG, a), zero);
        acc(d, b, op2(d, EQ_MUL, g, op2(d, EQ_MUL, r, lg)));
        break;
    }
    case EQ_SPIKE: {
        int ds = surrogate(d, e.surr, e.alpha, a);
        acc(d, a, op2(d, EQ_MUL, g, ds));
        break;
    }
    case EQ_CONST:
    case EQ_INPUT:
    case EQ_STATE:
    case EQ_PARAM:
    case EQ_DETACH: /* no gradient flows through */
    case EQ_FLOOR:  /* a step function: 0 almost everywhere */
    case EQ_LT: case EQ_LE: case EQ_GT: case EQ_GE: case EQ_EQ: case EQ_NE:
    case EQ_AND: case EQ_OR: case EQ_NOT:
        break;
    case EQ_ADJ:
    case EQ_NUM_OPS:
        ICE("autodiff of a gradient instruction");
    }
}

static NeuronGrad *derive(Arena *arena, const NeuronProg *p) {
    NeuronGrad *gr = arena_alloc(arena, sizeof *gr);
    int n = p->code.len;
    for (int i = 0; i < n; i++)
        eq_push(arena, &gr->code, p->code.items[i]);
    Ad d = {arena, &gr->code, arena_alloc(arena, sizeof(int) * (size_t)n)};
    for (int i = 0; i < n; i++)
        d.adj[i] = -1;
    int in = op1(&d, EQ_ADJ, -1);
    gr->code.items[in].idx = 0;
    acc(&d, p->emit, in);
    for (int k = 0; k < p->states.len; k++) {
        int s = op1(&d, EQ_ADJ, -1);
        gr->code.items[s].idx = 1 + k;
        acc(&d, p->states.items[k].next, s);
    }
    for (int i = n - 1; i >= 0; i--)
        if (d.adj[i] >= 0)
            back_inst(&d, i, d.adj[i]);
    /* the results: adjoints of the leaves */
    gr->dx = -1;
    gr->dstate = arena_alloc(arena, sizeof(int) * (size_t)p->states.len + 1);
    gr->dparam = arena_alloc(arena, sizeof(int) * (size_t)p->params.len + 1);
    for (int k = 0; k < p->states.len; k++)
        gr->dstate[k] = -1;
    for (int k = 0; k < p->params.len; k++)
        gr->dparam[k] = -1;
    for (int i = 0; i < n; i++) {
        const EqInst *e = &p->code.items[i];
        if (d.adj[i] < 0)
            continue;
        if (e->op == EQ_INPUT)
            gr->dx = gr->dx < 0 ? d.adj[i] : op2(&d, EQ_ADD, gr->dx, d.adj[i]);
        else if (e->op == EQ_STATE)
            gr->dstate[e->idx] = gr->dstate[e->idx] < 0 ? d.adj[i]
                                                        : op2(&d, EQ_ADD, gr->dstate[e->idx], d.adj[i]);
        else if (e->op == EQ_PARAM)
            gr->dparam[e->idx] = gr->dparam[e->idx] < 0 ? d.adj[i]
                                                        : op2(&d, EQ_ADD, gr->dparam[e->idx], d.adj[i]);
    }
    int nroots = 1 + p->states.len + p->params.len;
    int **roots = arena_alloc(arena, sizeof(int *) * (size_t)nroots);
    int k = 0;
    roots[k++] = &gr->dx;
    for (int i = 0; i < p->states.len; i++)
        roots[k++] = &gr->dstate[i];
    for (int i = 0; i < p->params.len; i++)
        roots[k++] = &gr->dparam[i];
    eq_simplify(arena, &gr->code, roots, nroots);
    return gr;
}

void pass_autodiff(IrGraph *g) {
    if (!g->train)
        return;
    for (int i = 0; i < g->nodes.len; i++) {
        IrNode *n = &g->nodes.items[i];
        if (!n->dead && n->neuron)
            n->neuron->grad = derive(g->arena, n->neuron);
    }
}
