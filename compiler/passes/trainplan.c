/*
 * trainplan.c: the `trainplan` pass: the memory of training.
 *
 * Requires: g->train (otherwise it does nothing), the schedule, memplan's
 * parameter block and aliases. Makes g->trainp: the layout of the training
 * workspace after the parameters and their gradients.
 *
 * Training runs the schedule over all T steps (one chunk) and keeps what
 * the backward reads: every value at every step, and each neuron state at
 * the start of every step (T + 1 of them), so that the backward recomputes
 * a step of a neuron from its stored state and input; a layer that the
 * remat pass marked keeps one copy, updated in place, and its backward
 * recomputes the states of every step from the inputs. A value that is the
 * same at every step (the input with direct encoding, and stateless layers
 * of such values, whether or not the hoist pass ran) is stored once, and
 * the gradients that reach it from the T steps are summed into one.
 *
 * The region holds first the stored values, then what the backward zeroes
 * before it starts: the gradients of the values, the adjoints of the
 * neuron states carried from step to step, and per-element double sums of
 * the neuron parameters' gradients (each element accumulates its own, so
 * that threads never share a sum and the result does not depend on how
 * many there are). `grad` of a node is needed when a learnable parameter
 * lies before it (1), or only for dL/dinput (2).
 *
 * A neuron layer that the spikebits pass marked keeps its spikes as bits,
 * 32 to a word: its values take a 32nd of the floats. Where g->store says
 * 16 bits, a neuron layer outside recurrent groups stores its states in
 * 16 bits (IrBufs.shalf), half the floats: it runs all T steps at once, so
 * the forward carries them in fp32 from the initial value and only the
 * backward reads the stored ones. A recurrent group runs a step at a time
 * and restarts from the stored states, which stay fp32. So is the output
 * of a dense, convolution or batchnorm layer that only such a neuron layer
 * reads, with the gradient written over it (IrBufs.vhalf; gover below).
 *
 * The input is the caller's (IrBufs.vext): the forward and the backward
 * read `input` where it is, which the API asks the caller to keep until
 * the backward has run, instead of a copy of every step. An input encoded
 * into spikes (rate, latency) keeps its buffer: the spikes are the
 * encoder's output.
 *
 * Only the gradients that are needed get a buffer. Two are the caller's
 * (IrBufs.gext): dL/dinput is written straight into `dinput` (only when it
 * is asked), and the output's gradient, when no layer reads the output and
 * it holds every step, is `doutput` itself, read in place. Neither is
 * copied, and the workspace holds neither. The input of a neuron layer
 * keeps its buffer (copied into `dinput` at the end): a neuron layer adds
 * to dL/dx with a select, not a branch, so that its loop vectorizes, and
 * so reads and writes the buffer whether or not dL/dinput is asked.
 *
 * A gradient with one writer that runs once over all the steps and writes
 * all of it (a dense or neuron layer, an elementwise op, batchnorm, a pool
 * whose windows tile its input, outside recurrent groups: writes_all) can
 * be set by it instead of added to (IrBufs.gset): such gradients lie
 * first, before IrPlan.zeroed, so that a target that sets them zeroes only
 * what follows. A target that adds to every gradient zeroes from persist
 * on, as before.
 *
 * The commonest such gradient, that of the product a neuron layer reads
 * (dense, convolution or batchnorm, then LIF), is written over the product
 * itself (IrBufs.gover): the neuron layer's backward reads step t of it,
 * recomputes the step, and sets step t of the gradient, which every target
 * does for such a buffer, zeroed or not; no one reads the product after.
 */
#include "passes.h"

#include <string.h>

static int64_t align16(int64_t x) { return (x + 15) & ~(int64_t)15; }

static int has_learnable(const IrGraph *g, int i) {
    const IrNode *x = &g->nodes.items[i];
    for (int k = 0; k < x->nparam; k++)
        if (x->param[k] >= 0 && g->params.items[x->param[k]].learnable)
            return 1;
    if (x->neuron)
        for (int k = 0; k < x->neuron->params.len; k++)
            if (g->params.items[x->neuron->params.items[k].param].learnable)
                return 1;
    return 0;
}

/* 1 beats 2 beats 0: see IrBufs.needgrad */
static int join(int a, int b) {
    if (a == 1 || b == 1)
        return 1;
    return a == 2 || b == 2 ? 2 : 0;
}

static int root(const IrGraph *g, int i) { return g->nodes.items[i].alias >= 0 ? g->nodes.items[i].alias : i; }

/* Per node, the nodes that read it in the forward (a view reads nothing:
   it is its input, whose readers its readers are), and in writer[] the
   last of them. */
static int *count_readers(const IrGraph *g, int *writer) {
    int n = g->nodes.len;
    int *readers = arena_alloc(g->arena, sizeof(int) * (size_t)(n + 1)); /* zeroed */
    for (int c = 0; c < n; c++) {
        const IrNode *x = &g->nodes.items[c];
        for (int k = 0; !x->dead && k < x->nin && x->alias < 0; k++) {
            int r = root(g, x->in[k]);
            readers[r]++;
            writer[r] = c;
        }
    }
    return readers;
}

/* Whether a neuron layer reads node r (or a view of it). */
static int read_by_neuron(const IrGraph *g, int r) {
    for (int c = 0; c < g->nodes.len; c++) {
        const IrNode *x = &g->nodes.items[c];
        for (int k = 0; !x->dead && x->op == IR_NEURON && k < x->nin; k++)
            if (root(g, x->in[k]) == r)
                return 1;
    }
    return 0;
}

/* Whether node i's gradient can take the place of its value (IrBufs.gover):
   the one reader of the value is a neuron layer that sets its gradient
   (gset), step by step over all the steps, and that reads step t of the
   value to recompute step t before it sets step t of the gradient; and the
   node's own backward, which runs after, reads its input, not its output
   (a dense, convolution or batchnorm layer). The neuron layer's input of
   T x B x c floats then costs the training workspace once, not twice. */
static int overwrites(const IrGraph *g, const IrPlan *P, int i, const int *writer) {
    const IrNode *x = &g->nodes.items[i];
    const IrBufs *b = &P->at[i];
    if (x->dead || x->alias >= 0 || !b->gset || !b->needgrad || b->gext || b->inv || b->bits ||
        b->vsteps != g->timesteps)
        return 0;
    if (x->op != IR_DENSE && x->op != IR_CONV2D && x->op != IR_BATCHNORM)
        return 0;
    return g->nodes.items[writer[i]].op == IR_NEURON;
}

/* Whether pool x's windows tile its input: each pixel in exactly one. */
static int pool_tiles(const IrGraph *g, const IrNode *x) {
    const Shape *s = &g->nodes.items[x->in[0]].shape;
    return s->ndim == 3 && x->kernel[0] == x->stride[0] && x->kernel[1] == x->stride[1] && !x->pad[0] &&
           !x->pad[1] && s->d[1] % x->kernel[0] == 0 && s->d[2] % x->kernel[1] == 0;
}

/* Whether c's backward writes every element of input i's gradient, at
   every step, and so can set it: a dense layer, a neuron layer whose
   program has dL/dx, an elementwise op or batchnorm whose input is stored
   at every step as its output is (or both once), a pool whose windows tile
   its input. */
static int writes_all(const IrGraph *g, const IrPlan *P, int c, int i) {
    const IrNode *x = &g->nodes.items[c];
    switch (x->op) {
    case IR_DENSE: return 1;
    case IR_NEURON: return x->neuron->grad && x->neuron->grad->dx >= 0;
    case IR_ADD:
    case IR_SCALE:
    case IR_IDENTITY:
    case IR_DROPOUT:
    case IR_BATCHNORM: return P->at[c].inv == P->at[i].inv;
    case IR_MAXPOOL:
    case IR_AVGPOOL: return pool_tiles(g, x);
    default: return 0;
    }
}

/* Marks IrBufs.gset and wset. A gradient is set by its writer c when c is
   its only reader in the forward (so the only writer in the backward; the
   output's gradient also gets dL/doutput), c runs once over all the steps,
   c writes all of it (writes_all), and the gradient is read under the
   condition it is written: always (needgrad 1), or only for dL/dinput (2)
   by a node whose backward runs only then (not a neuron layer with
   parameters, whose backward always runs). A target that zeroes every
   gradient (from IrPlan.persist) may add to it instead. */
static void mark_set(IrGraph *g, IrPlan *P, const int *readers, const int *writer) {
    int n = g->nodes.len;
    int *uses = arena_alloc(g->arena, sizeof(int) * (size_t)(g->params.len + 1)); /* zeroed */
    for (int c = 0; c < n; c++) {
        const IrNode *x = &g->nodes.items[c];
        if (x->dead)
            continue;
        for (int k = 0; k < x->nparam; k++)
            if (x->param[k] >= 0)
                uses[x->param[k]]++;
        if (x->neuron)
            for (int k = 0; k < x->neuron->params.len; k++)
                uses[x->neuron->params.items[k].param]++;
    }
    for (int i = 0; i < n; i++) {
        const IrNode *x = &g->nodes.items[i];
        if (x->dead || x->alias >= 0 || readers[i] != 1 || i == root(g, g->output))
            continue;
        const IrNode *c = &g->nodes.items[writer[i]];
        int once = !g->groups.items[c->group].recurrent;
        int writes = writes_all(g, P, writer[i], i);
        int nd = P->at[i].needgrad;
        int same_cond = nd == 1 || (nd == 2 && !(x->op == IR_NEURON && x->neuron->params.len));
        P->at[i].gset = once && writes && same_cond;
    }
    for (int c = 0; c < n; c++) {
        const IrNode *x = &g->nodes.items[c];
        if (x->dead || x->op != IR_DENSE || g->groups.items[x->group].recurrent)
            continue;
        int alone = 1;
        for (int k = 0; k < x->nparam; k++)
            alone &= x->param[k] < 0 || uses[x->param[k]] == 1;
        P->at[c].wset = alone;
    }
}

void pass_trainplan(IrGraph *g) {
    IrPlan *P = &g->trainp;
    memset(P, 0, sizeof *P);
    if (!g->train)
        return;
    int n = g->nodes.len;
    int64_t mb = g->batch, T = g->timesteps;
    P->chunk = g->timesteps;
    P->readout = P->counter = -1;
    P->at = arena_alloc(g->arena, sizeof(IrBufs) * (size_t)(n + 1));
    for (int i = 0; i < n; i++) {
        const IrNode *x = &g->nodes.items[i];
        IrBufs *b = &P->at[i];
        b->val = b->state = b->carry = b->grad = b->dstate = b->pacc = b->mask = b->stat = -1;
        if (x->dead)
            continue;
        b->inv = x->invariant || (x->op == IR_INPUT && g->encoding == ENC_DIRECT);
        if (!b->inv && x->nin && x->op != IR_NEURON && x->op != IR_DELAY) {
            int all = 1;
            for (int k = 0; k < x->nin; k++)
                all &= x->in[k] < i && P->at[x->in[k]].inv;
            b->inv = all;
        }
        b->vsteps = b->inv ? 1 : (int)T;
        /* dL/dinput: none through an encoder (its spikes are a step function of the input) */
        b->needgrad = x->op == IR_INPUT ? (ENC_SPIKES(g->encoding) ? 0 : 2) : has_learnable(g, i);
    }
    /* which gradients are needed, in schedule order: a group's inputs come
       from earlier groups, and inside a recurrent group to a fixpoint */
    for (int gi = 0; gi < g->groups.len; gi++) {
        const IrGroup *gr = &g->groups.items[gi];
        for (int changed = 1; changed;) {
            changed = 0;
            for (int j = gr->first; j < gr->first + gr->count; j++) {
                int i = g->order[j];
                const IrNode *x = &g->nodes.items[i];
                if (x->op == IR_INPUT)
                    continue;
                int r = P->at[i].needgrad;
                for (int k = 0; k < x->nin; k++)
                    r = join(r, P->at[x->in[k]].needgrad);
                if (r != P->at[i].needgrad) {
                    P->at[i].needgrad = r;
                    changed = gr->recurrent;
                }
            }
        }
    }
    unsigned char *recurrent = arena_alloc(g->arena, (size_t)n + 1); /* zeroed */
    for (int gi = 0; gi < g->groups.len; gi++)
        for (int j = 0; g->groups.items[gi].recurrent && j < g->groups.items[gi].count; j++)
            recurrent[g->order[g->groups.items[gi].first + j]] = 1;
    /* what each buffer is (the caller's, bits, set, the gradient over the
       value, 16 bits), then where it lies */
    for (int i = 0; i < n; i++) {
        const IrNode *x = &g->nodes.items[i];
        IrBufs *b = &P->at[i];
        if (x->dead || x->alias >= 0)
            continue;
        b->vext = x->op == IR_INPUT && !ENC_SPIKES(g->encoding);
        b->bits = x->bits && !b->inv;
    }
    int *writer = arena_alloc(g->arena, sizeof(int) * (size_t)(n + 1));
    int *readers = count_readers(g, writer);
    mark_set(g, P, readers, writer);
    int in = root(g, g->input), out = root(g, g->output);
    if (P->at[in].needgrad && !read_by_neuron(g, in))
        P->at[in].gext = IR_GEXT_DINPUT;
    if (out != in && P->at[out].needgrad && !readers[out] && P->at[out].vsteps == T)
        P->at[out].gext = IR_GEXT_DOUTPUT;
    for (int i = 0; i < n; i++) {
        IrBufs *b = &P->at[i];
        b->gover = overwrites(g, P, i, writer);
        IrOp op = g->nodes.items[i].op;
        b->vhalf = b->gover && g->store != STORE_FP32 && !recurrent[i] &&
                  (op == IR_DENSE || op == IR_CONV2D || op == IR_BATCHNORM);
    }
    int64_t off = 0;
    for (int i = 0; i < n; i++) {
        const IrNode *x = &g->nodes.items[i];
        IrBufs *b = &P->at[i];
        if (x->dead || x->alias >= 0)
            continue;
        int64_t c = shape_count(&x->shape);
        if (!b->vext) {
            int64_t vals = b->vsteps * mb * c;
            b->val = off;
            off += align16(b->bits ? vals / 32 : b->vhalf ? (vals + 1) / 2 : vals);
        }
        if (x->op == IR_NEURON && x->neuron->states.len) {
            b->remat = x->remat; /* (the remat pass: outside recurrent groups, fp32) */
            b->ssteps = b->remat ? 1 : (int)T + 1;
            int64_t vals = (int64_t)x->neuron->states.len * b->ssteps * mb * c;
            b->state = off;
            b->shalf = g->store != STORE_FP32 && !recurrent[i];
            off += align16(b->shalf ? (vals + 1) / 2 : vals);
        }
        if (x->op == IR_DROPOUT) {
            b->mask = off;
            off += align16(mb * c);
        }
        if (x->op == IR_BATCHNORM) {
            b->stat = off;
            off += align16(2 * x->shape.d[0]);
        }
    }
    P->persist = off; /* here: what the forward writes; the rest is the backward's */
    for (int i = 0; i < n; i++) { /* the gradients set by their writer */
        const IrNode *x = &g->nodes.items[i];
        IrBufs *b = &P->at[i];
        if (b->gover)
            b->grad = b->val;
        else if (!x->dead && x->alias < 0 && b->gset && b->needgrad && !b->gext) {
            b->grad = off;
            off += align16(b->vsteps * mb * shape_count(&x->shape));
        }
    }
    P->zeroed = off; /* here: what the backward zeroes */
    for (int i = 0; i < n; i++) {
        const IrNode *x = &g->nodes.items[i];
        IrBufs *b = &P->at[i];
        if (x->dead || x->alias >= 0)
            continue;
        int64_t c = shape_count(&x->shape);
        if (!b->gset && b->needgrad && !b->gext) {
            b->grad = off;
            off += align16(b->vsteps * mb * c);
        }
        if (x->op == IR_NEURON) {
            const NeuronProg *p = x->neuron;
            if (p->states.len) {
                b->dstate = off;
                off += align16((int64_t)p->states.len * mb * c);
            }
            if (p->params.len) {
                b->pacc = off;
                off += (int64_t)p->params.len * align16(2 * mb * c);
            }
        }
    }
    for (int i = 0; i < n; i++) { /* a view (flatten, reshape) shares its input's buffers */
        const IrNode *x = &g->nodes.items[i];
        if (!x->dead && x->alias >= 0) {
            int nd = P->at[i].needgrad;
            P->at[i] = P->at[x->alias];
            P->at[i].needgrad = nd;
            P->at[i].wset = 0;
            P->at[i].state = P->at[i].dstate = P->at[i].pacc = P->at[i].mask = P->at[i].stat = -1;
            if (P->at[i].bits && shape_count(&x->shape) % 32)
                ICE("a view of spikes kept as bits is not a multiple of 32 wide");
        }
    }
    P->floats = off;
    P->planned = 1;
}
