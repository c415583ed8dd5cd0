/*
 * graph.c: passes over the graph's nodes: `dropout` and `hoist`.
 *
 * dropout: requires nothing; removes every dropout node by pointing its
 * users (and the output and probes) at its input. Inference only: when the
 * graph is trained the nodes stay, and the back end applies them only in
 * training mode.
 *
 * hoist: requires direct encoding to do anything (a sequence, and the
 * spikes of a rate or latency encoder, change at every step). A value
 * that depends only on the input through stateless layers is the same at
 * every step, so it is marked invariant: the back ends compute it once per sequence instead of T
 * times (for a first dense layer that is most of the arithmetic). Neuron
 * and delay nodes are never invariant: they carry state.
 */
#include "passes.h"

void pass_dropout(IrGraph *g) {
    if (g->train)
        return; /* training applies dropout; the generated code skips it at inference */
    /* each node's value after dropout layers are removed: its own, or for
       a dropout (of a dropout...) the value it passes on; one pass over
       the graph, in node order (inputs come first, except prev()'s) */
    int n = g->nodes.len;
    int *to = arena_alloc(g->arena, sizeof(int) * (size_t)(n + 1));
    for (int i = 0; i < n; i++) {
        IrNode *x = &g->nodes.items[i];
        to[i] = i;
        if (!x->dead && x->op == IR_DROPOUT) {
            x->dead = 1;
            to[i] = x->in[0] < i ? to[x->in[0]] : x->in[0];
        }
    }
    for (int i = 0; i < n; i++) { /* a prev() of a later dropout: follow the chain */
        int r = to[i];
        while (r != to[r])
            r = to[r];
        to[i] = r;
    }
    for (int i = 0; i < n; i++) {
        IrNode *x = &g->nodes.items[i];
        for (int k = 0; k < x->nin; k++)
            x->in[k] = to[x->in[k]];
    }
    g->output = to[g->output];
    for (int i = 0; i < g->probes.len; i++)
        if (!g->probes.items[i].var)
            g->probes.items[i].node = to[g->probes.items[i].node];
}

void pass_hoist(IrGraph *g) {
    if (g->encoding != ENC_DIRECT)
        return;
    for (int i = 0; i < g->nodes.len; i++) {
        IrNode *n = &g->nodes.items[i];
        if (n->dead)
            continue;
        if (n->op == IR_INPUT) {
            n->invariant = 1;
            continue;
        }
        if (n->op == IR_NEURON || n->op == IR_DELAY)
            continue;
        int inv = 1;
        for (int k = 0; k < n->nin; k++)
            inv &= g->nodes.items[n->in[k]].invariant;
        n->invariant = inv;
    }
}
