/*
 * simplify.c: the `simplify` pass over neuron programs.
 *
 * Requires: programs in SSA order (operands before users). Preserves: the
 * value of every state's next value, of the emitted value and of every
 * named value, bit for bit. So only rewrites that are exact in IEEE float
 * are made: x + (-0), x - 0, x * 1, x / 1 become x (x + 0 does not: -0 + 0
 * is +0); 0 * s becomes 0 only where
 * s is a spike (0 or 1, never Inf or NaN); instructions with constant
 * operands are folded in float; identical instructions are shared; and
 * instructions nothing uses are dropped. 1/tau is not turned into a
 * multiplication: that would change the rounding.
 */
#include "passes.h"

#include <math.h>
#include <string.h>

static int is_const(const EqCode *p, int i, float k) {
    return p->items[i].op == EQ_CONST && p->items[i].k == k &&
           signbit(p->items[i].k) == signbit(k);
}

static int is_spike(const EqCode *p, int i) {
    EqOp op = p->items[i].op;
    return op == EQ_SPIKE || (op == EQ_CONST && (p->items[i].k == 0 || p->items[i].k == 1));
}

static float fold_f(EqOp op, float a, float b, float c, int *ok) {
    *ok = 1;
    switch (op) {
    case EQ_ADD: return a + b;
    case EQ_SUB: return a - b;
    case EQ_MUL: return a * b;
    case EQ_NEG: return -a;
    case EQ_LT: return (float)(a < b);
    case EQ_LE: return (float)(a <= b);
    case EQ_GT: return (float)(a > b);
    case EQ_GE: return (float)(a >= b);
    case EQ_EQ: return (float)(a == b);
    case EQ_NE: return (float)(a != b);
    case EQ_SELECT: return a != 0 ? b : c;
    case EQ_SPIKE: return (float)(a >= 0);
    default: *ok = 0; return 0; /* libm results may differ from the target's: leave them */
    }
}

/* Rewrites instruction i in place, or returns the index it equals. */
static int simplify_inst(Arena *a, EqCode *p, int i) {
    EqInst *e = &p->items[i];
    int x = e->a, y = e->b;
    switch (e->op) {
    case EQ_ADD: /* x + (-0) is x for every x; x + (+0) is not when x is -0 */
        if (is_const(p, y, -0.0f))
            return x;
        if (is_const(p, x, -0.0f))
            return y;
        break;
    case EQ_SUB:
        if (is_const(p, y, 0.0f))
            return x;
        break;
    case EQ_MUL:
        if (is_const(p, y, 1.0f))
            return x;
        if (is_const(p, x, 1.0f))
            return y;
        if ((is_const(p, y, 0.0f) && is_spike(p, x)) || (is_const(p, x, 0.0f) && is_spike(p, y))) {
            e->op = EQ_CONST;
            e->k = 0.0f;
            e->a = e->b = e->c = -1;
            return i;
        }
        break;
    case EQ_DIV:
        if (is_const(p, y, 1.0f))
            return x;
        break;
    default:
        break;
    }
    int ar = e->op == EQ_SPIKE ? 1 : eq_op_arity[e->op];
    if (ar > 0 && e->op != EQ_DETACH) {
        int ops[3] = {e->a, e->b, e->c}, all = 1;
        for (int k = 0; k < ar; k++)
            all &= p->items[ops[k]].op == EQ_CONST;
        if (all) {
            int ok;
            float r = fold_f(e->op, p->items[e->a].k, ar > 1 ? p->items[e->b].k : 0,
                             ar > 2 ? p->items[e->c].k : 0, &ok);
            if (ok && isfinite(r)) {
                e->op = EQ_CONST;
                e->k = r;
                e->a = e->b = e->c = -1;
            }
        }
    }
    (void)a;
    return i;
}

static int same_inst(const EqInst *x, const EqInst *y) {
    if (x->op != y->op || x->a != y->a || x->b != y->b || x->c != y->c)
        return 0;
    if (x->op == EQ_CONST)
        return memcmp(&x->k, &y->k, sizeof x->k) == 0;
    if (x->op == EQ_STATE || x->op == EQ_PARAM || x->op == EQ_ADJ)
        return x->idx == y->idx;
    if (x->op == EQ_SPIKE)
        return x->surr == y->surr && x->alpha == y->alpha;
    return 1;
}

void eq_simplify(Arena *a, EqCode *p, int *const *roots, int nroots) {
    int n = p->len;
    int *map = arena_alloc(a, sizeof(int) * (size_t)n + 1);
    /* forward: rewrite operands, simplify, share */
    for (int i = 0; i < n; i++) {
        EqInst *e = &p->items[i];
        if (e->a >= 0) e->a = map[e->a];
        if (e->b >= 0) e->b = map[e->b];
        if (e->c >= 0) e->c = map[e->c];
        int r = simplify_inst(a, p, i);
        if (r == i)
            for (int k = 0; k < i; k++)
                if (map[k] == k && same_inst(&p->items[k], e)) {
                    r = k;
                    break;
                }
        map[i] = r;
    }
    for (int k = 0; k < nroots; k++)
        if (*roots[k] >= 0)
            *roots[k] = map[*roots[k]];
    /* backward: liveness from the roots */
    unsigned char *live = arena_alloc(a, (size_t)n + 1);
    for (int k = 0; k < nroots; k++)
        if (*roots[k] >= 0)
            live[*roots[k]] = 1;
    for (int i = n - 1; i >= 0; i--) {
        if (!live[i] || map[i] != i)
            continue;
        EqInst *e = &p->items[i];
        if (e->a >= 0) live[e->a] = 1;
        if (e->b >= 0) live[e->b] = 1;
        if (e->c >= 0) live[e->c] = 1;
    }
    /* compact */
    int *pos = arena_alloc(a, sizeof(int) * (size_t)n + 1);
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (!live[i] || map[i] != i)
            continue;
        EqInst e = p->items[i];
        if (e.a >= 0) e.a = pos[e.a];
        if (e.b >= 0) e.b = pos[e.b];
        if (e.c >= 0) e.c = pos[e.c];
        p->items[m] = e;
        pos[i] = m++;
    }
    p->len = m;
    for (int k = 0; k < nroots; k++)
        if (*roots[k] >= 0)
            *roots[k] = pos[*roots[k]];
}

/* The roots of a forward program: the emitted value, every state's next
   value and every named value (for --record). */
static void simplify_prog(Arena *a, NeuronProg *p) {
    int nroots = 1 + p->states.len + p->names.len;
    int **roots = arena_alloc(a, sizeof(int *) * (size_t)nroots);
    int k = 0;
    roots[k++] = &p->emit;
    for (int i = 0; i < p->states.len; i++)
        roots[k++] = &p->states.items[i].next;
    for (int i = 0; i < p->names.len; i++)
        roots[k++] = &p->names.items[i].inst;
    eq_simplify(a, &p->code, roots, nroots);
}

void pass_simplify(IrGraph *g) {
    for (int i = 0; i < g->nodes.len; i++)
        if (g->nodes.items[i].neuron && !g->nodes.items[i].dead)
            simplify_prog(g->arena, g->nodes.items[i].neuron);
}
