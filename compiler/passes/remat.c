/*
 * remat.c: the `remat` pass: which neuron layers training keeps no states
 * for.
 *
 * Requires: the schedule (its recurrent groups). Runs when the graph is
 * trained and its target can recompute states (IrGraph.remat_ok: the C
 * targets), before trainplan, which lays out what it marks.
 *
 * The training plan keeps every neuron state at the start of every step,
 * T + 1 copies, which the forward writes and the backward reads back: for
 * the MLP example's hidden layer 2.4 MB a step each way, for the conv
 * example's first layer 32 MB. A marked layer keeps one copy, updated in
 * place by the forward as at inference; its backward first runs the
 * forward's instructions over a block of neurons from the initial state to
 * recompute the states of every step into a small array (the input of
 * every step is kept anyway), then walks the steps back as before. The
 * instructions and their order are the forward's, so the recomputed
 * states are the stored ones, bit for bit.
 *
 * Marked: neuron layers with states outside recurrent groups (those run a
 * step at a time, from the stored state of the step), not recorded, not
 * reading the network's input (the caller's buffer, which the kernels get
 * as an argument of their own), whose
 * states times steps are at most REMAT_FLOATS (the array is a block of
 * neurons' floats per state and step, on the stack) and whose forward
 * calls no exp, log, tanh, sigmoid or pow (recomputing those would cost
 * more than the memory it saves: AR-LIF, DA-LIF); with the fp32 states
 * only (the 16-bit stores of --precision are the cuda target's).
 */
#include "passes.h"

/* The most states times steps a marked layer has. */
#define REMAT_FLOATS 32

static int cheap(const NeuronProg *p) {
    for (int k = 0; k < p->code.len; k++)
        if (eq_op_libm[p->code.items[k].op])
            return 0;
    return 1;
}

void pass_remat(IrGraph *g) {
    int n = g->nodes.len;
    for (int i = 0; i < n; i++)
        g->nodes.items[i].remat = 0;
    if (!g->train || !g->remat_ok || g->store != STORE_FP32)
        return;
    const unsigned char *bad = pass_stepwise(g);
    for (int i = 0; i < n; i++) {
        IrNode *x = &g->nodes.items[i];
        if (x->dead || bad[i] || x->op != IR_NEURON || !x->neuron->states.len ||
            (int64_t)x->neuron->states.len * g->timesteps > REMAT_FLOATS || !cheap(x->neuron))
            continue;
        int in = x->in[0];
        while (g->nodes.items[in].alias >= 0) /* a view (flatten, reshape) reads its source */
            in = g->nodes.items[in].alias;
        x->remat = in != g->input;
    }
}
