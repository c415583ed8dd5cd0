/*
 * graph.c: passes over the graph's nodes: `dropout` and `hoist`.
 *
 * dropout: requires nothing; removes every dropout node by pointing its
 * users (and the output and probes) at its input. Inference only: when the
 * graph is trained the nodes stay, and the back end applies them only in
 * training mode.
 *
 * hoist: requires direct encoding to do anything. A value that depends only
 * on the input through stateless layers is the same at every step, so it is
 * marked invariant: the back ends compute it once per sequence instead of T
 * times (for a first dense layer that is most of the arithmetic). Neuron
 * and delay nodes are never invariant: they carry state.
 */
#include "passes.h"

static void replace_uses(IrGraph *g, int from, int to) {
    for (int i = 0; i < g->nodes.len; i++) {
        IrNode *n = &g->nodes.items[i];
        for (int k = 0; k < n->nin; k++)
            if (n->in[k] == from)
                n->in[k] = to;
    }
    if (g->output == from)
        g->output = to;
    for (int i = 0; i < g->probes.len; i++)
        if (g->probes.items[i].node == from && !g->probes.items[i].var)
            g->probes.items[i].node = to;
}

void pass_dropout(IrGraph *g) {
    if (g->train)
        return; /* training applies dropout; the generated code skips it at inference */
    for (int i = 0; i < g->nodes.len; i++) {
        IrNode *n = &g->nodes.items[i];
        if (n->dead || n->op != IR_DROPOUT)
            continue;
        n->dead = 1;
        replace_uses(g, i, n->in[0]);
    }
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
