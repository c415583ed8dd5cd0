/*
 * memplan.c: the `memplan` pass: where the parameters and the values of
 * inference live.
 *
 * Requires: shapes, the hoist marks, the schedule. Makes: the parameter
 * block (each parameter's offset), the aliases (a flatten reads its input's
 * buffer), and the inference plan g->infer (IrPlan and IrBufs in ir.h).
 *
 * Inference runs the schedule chunk by chunk: each group computes the
 * steps of a chunk (all T steps by default, --chunk K fewer) before the
 * next group starts, so every value holds K steps, or one when it is the
 * same at every step. `step` runs the same kernels one step at a time, on
 * the same buffers (step t uses slot t % K). What must outlive a chunk (and
 * a step) is placed first, in the persistent region: neuron states (updated
 * in place), the carry of a delay whose source runs in an earlier group,
 * the sources of delays in a recurrent group, values computed once per
 * sequence when there are several chunks, recorded neuron variables, the
 * readout accumulator and the step counter. The other values share a pool:
 * a value lives from its group to the last group that reads it (the end of
 * the schedule for the output and recorded outputs), and two values share
 * memory when those intervals do not overlap. Buffers are placed first fit
 * among the values alive at the time, so the pass takes time linear in the
 * graph's size for chains. Memory grows with K, not with T beyond it.
 * A target adds its own scratch (packed panels, im2col matrices) after
 * the plan's region.
 */
#include "passes.h"

#include <string.h>

static int64_t align16(int64_t x) { return (x + 15) & ~(int64_t)15; }

/* A value alive in the pool: [off, off + size) from start to end. */
typedef struct Live {
    int64_t off, size;
    int end;
} Live;

void pass_memplan(IrGraph *g) {
    int n = g->nodes.len;
    Arena *a = g->arena;
    int64_t mb = g->batch, T = g->timesteps;
    int64_t off = 0;
    for (int i = 0; i < g->params.len; i++) {
        g->params.items[i].off = off;
        off += g->params.items[i].count;
    }
    g->param_floats = off;

    /* aliases: a flatten or a reshape reads its input's buffer */
    for (int i = 0; i < n; i++) {
        IrNode *x = &g->nodes.items[i];
        x->alias = -1;
        if (!x->dead && (x->op == IR_FLATTEN || x->op == IR_RESHAPE)) {
            int r = x->in[0];
            while (g->nodes.items[r].alias >= 0)
                r = g->nodes.items[r].alias;
            x->alias = r;
        }
    }
#define ROOT(i) (g->nodes.items[i].alias >= 0 ? g->nodes.items[i].alias : (i))
    IrPlan *P = &g->infer;
    memset(P, 0, sizeof *P);
    int K = g->chunk > 0 && g->chunk < g->timesteps ? g->chunk : g->timesteps;
    P->chunk = K;
    P->at = arena_alloc(a, sizeof(IrBufs) * (size_t)(n + 1));
    int ngroups = g->groups.len;
    int *end = arena_alloc(a, sizeof(int) * (size_t)(n + 1));
    unsigned char *keep = arena_alloc(a, (size_t)n + 1); /* persistent */
    for (int i = 0; i < n; i++) {
        IrBufs *b = &P->at[i];
        IrNode *x = &g->nodes.items[i];
        b->val = b->state = b->carry = b->grad = b->dstate = b->pacc = b->mask = b->stat = -1;
        b->vsteps = b->ssteps = 0;
        end[i] = x->group;
        if (x->dead)
            continue;
        b->inv = x->invariant || (x->op == IR_INPUT && g->encoding == ENC_DIRECT);
        b->vsteps = b->inv ? 1 : K;
    }
    /* lifetimes, in groups */
    for (int i = 0; i < n; i++) {
        const IrNode *x = &g->nodes.items[i];
        if (x->dead)
            continue;
        for (int k = 0; k < x->nin; k++) {
            int r = ROOT(x->in[k]);
            if (end[r] < x->group)
                end[r] = x->group;
            if (x->op == IR_DELAY && g->nodes.items[r].group == x->group)
                keep[r] = 1; /* read at the next step, across chunks */
        }
        if (x->alias >= 0 && end[x->alias] < end[i])
            end[x->alias] = end[i];
        if (x->invariant && K < T)
            keep[i] = 1;
    }
    end[ROOT(g->output)] = ngroups;
    for (int i = 0; i < g->probes.len; i++)
        if (!g->probes.items[i].var)
            end[ROOT(g->probes.items[i].node)] = ngroups;

    /* the persistent region */
    int64_t p = 0;
    P->counter = p;
    p += 16;
    for (int j = 0; j < n; j++) {
        int i = j;
        const IrNode *x = &g->nodes.items[i];
        IrBufs *b = &P->at[i];
        if (x->dead || x->alias >= 0)
            continue;
        int64_t c = shape_count(&x->shape);
        if (x->op == IR_NEURON && x->neuron->states.len) {
            b->state = p;
            b->ssteps = 1;
            p += align16((int64_t)x->neuron->states.len * mb * c);
        }
        if (x->op == IR_DELAY && g->nodes.items[ROOT(x->in[0])].group < x->group) {
            b->carry = p;
            p += align16(mb * c);
        }
        if (keep[i]) {
            b->val = p;
            p += align16(b->vsteps * mb * c);
        }
    }
    P->readout = -1;
    if (g->readout != RO_STEPS) {
        P->readout = p;
        p += align16(mb * shape_count(&g->nodes.items[g->output].shape));
    }
    for (int i = 0; i < g->probes.len; i++) {
        IrProbe *pr = &g->probes.items[i];
        pr->buf = -1;
        if (pr->var) {
            pr->buf = p;
            p += align16(K * mb * pr->count);
        }
    }
    P->persist = p;

    /* the pool: first fit among the values alive, in schedule order */
    Live *live = arena_alloc(a, sizeof(Live) * (size_t)(n + 1));
    int nlive = 0;
    int64_t top = 0;
    for (int j = 0; j < g->norder; j++) {
        int i = g->order[j];
        const IrNode *x = &g->nodes.items[i];
        IrBufs *b = &P->at[i];
        if (x->dead || x->alias >= 0 || keep[i])
            continue;
        int start = x->group;
        int64_t size = align16(b->vsteps * mb * shape_count(&x->shape));
        /* drop the values that died before this group, keeping the order */
        int m = 0;
        for (int k = 0; k < nlive; k++)
            if (live[k].end >= start)
                live[m++] = live[k];
        nlive = m;
        int64_t at = 0;
        int pos = 0;
        while (pos < nlive && live[pos].off < at + size) {
            if (live[pos].off + live[pos].size > at)
                at = live[pos].off + live[pos].size;
            pos++;
        }
        /* insert sorted by offset */
        for (int k = nlive; k > pos; k--)
            live[k] = live[k - 1];
        live[pos].off = at;
        live[pos].size = size;
        live[pos].end = end[i];
        nlive++;
        b->val = p + at;
        if (at + size > top)
            top = at + size;
    }
    for (int i = 0; i < n; i++) {
        const IrNode *x = &g->nodes.items[i];
        if (!x->dead && x->alias >= 0) {
            P->at[i] = P->at[x->alias];
            P->at[i].state = P->at[i].carry = -1;
        }
    }
#undef ROOT
    P->floats = p + top;
    P->planned = 1;
}
