/*
 * memplan.c: the `memplan` pass: where every value lives.
 *
 * Requires: shapes; runs last. The workspace is a parameter block followed
 * by a per-sample region scaled by the batch: a value of c floats per sample
 * at offset o occupies [B*o, B*(o + c)). The region holds, first, what
 * persists across steps (neuron states, delay buffers, hoisted values, the
 * readout accumulator, probes) and then a pool of activations that live
 * within one step. Pool buffers are placed first-fit: two values share
 * memory when their lifetimes (producer to last same-step user) do not
 * overlap. Inference memory is thus independent of T. A flatten does not
 * copy: it reads its input's buffer.
 */
#include "passes.h"

#include <string.h>

typedef struct Slot {
    int64_t off, size;
    int start, end;
} Slot;

void pass_memplan(IrGraph *g) {
    int n = g->nodes.len;
    Arena *a = g->arena;
    int64_t off = 0;
    for (int i = 0; i < g->params.len; i++) {
        g->params.items[i].off = off;
        off += g->params.items[i].count;
    }
    g->param_floats = off;

    /* aliases: a flatten reads its input's buffer */
    for (int i = 0; i < n; i++) {
        IrNode *x = &g->nodes.items[i];
        x->alias = -1;
        if (!x->dead && x->op == IR_FLATTEN) {
            int r = x->in[0];
            while (g->nodes.items[r].alias >= 0)
                r = g->nodes.items[r].alias;
            x->alias = r;
        }
    }
#define ROOT(i) (g->nodes.items[i].alias >= 0 ? g->nodes.items[i].alias : (i))
    /* lifetimes of root buffers: to the last same-step user; to the end of
       the step for the output, delay sources and probed values */
    int *end = arena_alloc(a, sizeof(int) * (size_t)n);
    for (int i = 0; i < n; i++)
        end[i] = i;
    for (int i = 0; i < n; i++) {
        IrNode *x = &g->nodes.items[i];
        if (x->dead)
            continue;
        for (int k = 0; k < x->nin; k++) {
            int r = ROOT(x->in[k]);
            int e = x->op == IR_DELAY ? n : i;
            if (end[r] < e)
                end[r] = e;
        }
        if (x->alias >= 0 && end[x->alias] < end[i])
            end[x->alias] = end[i];
    }
    end[ROOT(g->output)] = n;
    for (int i = 0; i < g->probes.len; i++)
        end[ROOT(g->probes.items[i].node)] = n;

    /* persistent region */
    int64_t p = 0;
    for (int i = 0; i < n; i++) {
        IrNode *x = &g->nodes.items[i];
        int64_t c = shape_count(&x->shape);
        x->state = -1;
        x->buf = -1;
        if (x->dead || x->op == IR_INPUT)
            continue;
        if (x->op == IR_NEURON) {
            x->state = p;
            p += c * x->neuron->states.len;
        }
        if (x->op == IR_DELAY) {
            x->state = p;
            p += c;
        }
        if (x->invariant && x->alias < 0) {
            x->buf = p;
            p += c;
        }
    }
    g->readout_buf = -1;
    if (g->readout != RO_STEPS) {
        g->readout_buf = p;
        p += shape_count(&g->nodes.items[g->output].shape);
    }
    for (int i = 0; i < g->probes.len; i++) {
        g->probes.items[i].buf = p;
        p += g->probes.items[i].count;
    }
    g->persist_floats = p;

    /* the pool, first fit */
    Slot *slots = arena_alloc(a, sizeof(Slot) * (size_t)n);
    int nslots = 0;
    int64_t top = 0;
    for (int i = 0; i < n; i++) {
        IrNode *x = &g->nodes.items[i];
        if (x->dead || x->op == IR_INPUT || x->invariant || x->alias >= 0)
            continue;
        int64_t c = shape_count(&x->shape);
        int64_t at = 0;
        for (int moved = 1; moved;) {
            moved = 0;
            for (int k = 0; k < nslots; k++) {
                Slot *s = &slots[k];
                int overlap_time = !(s->end < i || end[i] < s->start);
                int overlap_mem = at < s->off + s->size && s->off < at + c;
                if (overlap_time && overlap_mem) {
                    at = s->off + s->size;
                    moved = 1;
                }
            }
        }
        Slot s = {at, c, i, end[i]};
        slots[nslots++] = s;
        x->buf = p + at;
        if (at + c > top)
            top = at + c;
    }
    g->pool_floats = top;
    for (int i = 0; i < n; i++) {
        IrNode *x = &g->nodes.items[i];
        if (!x->dead && x->alias >= 0)
            x->buf = g->nodes.items[x->alias].buf; /* -1 when it is the input */
    }
#undef ROOT
    g->planned = 1;
    (void)memset;
}
