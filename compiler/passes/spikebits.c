/*
 * spikebits.c: the `spikebits` pass: which spikes training keeps as bits.
 *
 * Requires: the schedule (its recurrent groups). Runs when the graph is
 * trained, before trainplan, which lays out what it marks.
 *
 * Training keeps every step of every value for the backward. A neuron
 * layer whose output is a spike (0 or 1) and whose every reader is a dense
 * layer or a pool (directly or through a view) can keep its T steps as
 * bits, 32 to a word, a 32nd of the floats: the dense layers read the bits
 * in their products (forward and weight gradient), the pools in their
 * windows (forward, and max-pool's backward to find the maximum), and the
 * neuron's own backward recomputes its spikes from the stored states. The
 * layer's size per sample must be a multiple of 32, so that every step,
 * every sample and every block of neurons starts on a word. The output
 * is marked too when no layer reads it: the training forward unpacks its
 * bits into the caller's `output`. Not marked: recorded layers, and the
 * layers of a recurrent group (read step by step, also through prev()).
 *
 * One pass over the readers, from the last node to the first: a node's
 * readers come after it, except through prev(), whose nodes are excluded.
 */
#include "passes.h"

void pass_spikebits(IrGraph *g) {
    int n = g->nodes.len;
    for (int i = 0; i < n; i++)
        g->nodes.items[i].bits = 0;
    if (!g->train)
        return;
    unsigned char *bad = pass_stepwise(g); /* then also: a reader needs floats */
    for (int j = n - 1; j >= 0; j--) {
        const IrNode *r = &g->nodes.items[j];
        if (r->dead)
            continue;
        /* a view (flatten, reshape) passes on what its readers allow */
        int reads_bits = r->alias >= 0 ? !bad[j] : r->op == IR_DENSE || r->op == IR_MAXPOOL || r->op == IR_AVGPOOL;
        for (int k = 0; k < r->nin; k++)
            if (!reads_bits || r->in[k] >= j)
                bad[r->in[k]] = 1;
    }
    for (int i = 0; i < n; i++) {
        IrNode *x = &g->nodes.items[i];
        x->bits = !x->dead && !bad[i] && !x->invariant && x->op == IR_NEURON &&
                  x->neuron->code.items[x->neuron->emit].op == EQ_SPIKE && shape_count(&x->shape) % 32 == 0;
    }
}
