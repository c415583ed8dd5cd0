/*
 * print.c: the text dump of the IR (--emit-ir, --dump-ir) and the Graphviz
 * view (--dot). The dump is stable: it names values by index and prints
 * numbers in their shortest exact form, so it can be kept as a golden file.
 * docs/ir.md documents the format.
 */
#include "ir.h"

#include <stdlib.h>
#include <string.h>

static void print_attrs(const IrNode *n, Buf *o) {
    switch (n->op) {
    case IR_DENSE:
        buf_printf(o, " out=%lld%s", (long long)n->out, n->bias ? " bias" : "");
        break;
    case IR_CONV2D:
        buf_printf(o, " out=%lld kernel=%d,%d stride=%d,%d padding=%d,%d groups=%d%s",
                   (long long)n->out, n->kernel[0], n->kernel[1], n->stride[0], n->stride[1],
                   n->pad[0], n->pad[1], n->groups, n->bias ? " bias" : "");
        break;
    case IR_MAXPOOL:
    case IR_AVGPOOL:
        buf_printf(o, " kernel=%d,%d stride=%d,%d padding=%d,%d", n->kernel[0], n->kernel[1],
                   n->stride[0], n->stride[1], n->pad[0], n->pad[1]);
        break;
    case IR_SCALE:
    case IR_BATCHNORM:
    case IR_DROPOUT: {
        char f[32];
        format_float(f, sizeof f, n->fval);
        buf_printf(o, " %s=%s", n->op == IR_SCALE ? "factor" : n->op == IR_BATCHNORM ? "eps" : "p", f);
        break;
    }
    case IR_NEURON:
        buf_printf(o, " model=%s", n->neuron->model);
        break;
    default:
        break;
    }
}

/* One instruction list; names the values the model names (forward only). */
static void print_code(const NeuronProg *p, const EqCode *code, int named, Buf *o, const char *ind) {
    char f[32];
    for (int i = 0; i < code->len; i++) {
        const EqInst *e = &code->items[i];
        buf_printf(o, "%s%%%d = %s", ind, i, eq_op_names[e->op]);
        switch (e->op) {
        case EQ_CONST:
            format_float(f, sizeof f, e->k);
            buf_printf(o, " %s", f);
            break;
        case EQ_STATE:
            buf_printf(o, " %s", p->states.items[e->idx].name);
            break;
        case EQ_PARAM:
            buf_printf(o, " %s", p->params.items[e->idx].name);
            break;
        case EQ_ADJ:
            if (e->idx == 0)
                buf_puts(o, " emit");
            else
                buf_printf(o, " %s", p->states.items[e->idx - 1].name);
            break;
        case EQ_SPIKE:
            format_float(f, sizeof f, e->alpha);
            buf_printf(o, " %%%d surrogate=%s(%s)", e->a, surr_names[e->surr], f);
            break;
        default:
            for (int k = 0; k < eq_op_arity[e->op]; k++)
                buf_printf(o, k ? ", %%%d" : " %%%d", k == 0 ? e->a : k == 1 ? e->b : e->c);
        }
        for (int k = 0; named && k < p->names.len; k++)
            if (p->names.items[k].inst == i)
                buf_printf(o, "  ; %s", p->names.items[k].name);
        buf_puts(o, "\n");
    }
}

static void print_result(Buf *o, const char *ind, const char *what, const char *name, int inst) {
    if (inst < 0)
        buf_printf(o, "%s%s%s%s 0\n", ind, what, name ? " " : "", name ? name : "");
    else
        buf_printf(o, "%s%s%s%s %%%d\n", ind, what, name ? " " : "", name ? name : "", inst);
}

void ir_print_neuron(const NeuronProg *p, const IrGraph *g, Buf *o, const char *ind) {
    char f[32];
    for (int i = 0; i < p->states.len; i++) {
        format_float(f, sizeof f, p->states.items[i].init);
        buf_printf(o, "%sstate %s = %s, next %%%d\n", ind, p->states.items[i].name, f,
                   p->states.items[i].next);
    }
    for (int i = 0; i < p->params.len; i++) {
        const NeuronParam *q = &p->params.items[i];
        format_float(f, sizeof f, q->init);
        buf_printf(o, "%sparam %s per %s = %s\n", ind, q->name, gran_names[q->gran], f);
    }
    print_code(p, &p->code, 1, o, ind);
    buf_printf(o, "%semit %%%d\n", ind, p->emit);
    if (p->grad) {
        const NeuronGrad *gr = p->grad;
        char *ind2 = arena_printf(g->arena, "%s  ", ind);
        buf_printf(o, "%sbackward\n", ind);
        print_code(p, &gr->code, 0, o, ind2);
        print_result(o, ind2, "dx", NULL, gr->dx);
        for (int i = 0; i < p->states.len; i++)
            print_result(o, ind2, "dstate", p->states.items[i].name, gr->dstate[i]);
        for (int i = 0; i < p->params.len; i++)
            print_result(o, ind2, "dparam", p->params.items[i].name, gr->dparam[i]);
    }
}

static void print_schedule(const IrGraph *g, Buf *o) {
    buf_puts(o, "  schedule");
    for (int k = 0; k < g->groups.len; k++) {
        const IrGroup *gr = &g->groups.items[k];
        for (int j = 0; j < gr->count; j++)
            buf_printf(o, "%s%%%d%s", gr->recurrent && j == 0 ? " [" : " ", g->order[gr->first + j],
                       gr->recurrent && j == gr->count - 1 ? "]" : "");
    }
    buf_puts(o, "\n");
}

static void print_off(Buf *o, const char *what, int64_t off, int steps) {
    if (off < 0)
        return;
    buf_printf(o, " %s=%lld", what, (long long)off);
    if (steps)
        buf_printf(o, "x%d", steps);
}

static void print_plan(const IrGraph *g, const IrPlan *P, const char *what, Buf *o) {
    if (P == &g->trainp)
        buf_printf(o, "  memory %s: %lld floats for batch %d; the backward zeroes those from %lld\n", what,
                   (long long)P->floats, g->batch, (long long)P->zeroed);
    else
        buf_printf(o, "  memory %s: chunk %d, %lld floats for batch %d, %lld of them kept across chunks\n", what,
                   P->chunk, (long long)P->floats, g->batch, (long long)P->persist);
    for (int j = 0; j < g->nodes.len; j++) {
        const IrNode *n = &g->nodes.items[j];
        const IrBufs *b = &P->at[j];
        if (n->dead)
            continue;
        buf_printf(o, "    %%%d", j);
        if (n->alias >= 0)
            buf_printf(o, " view of %%%d", n->alias);
        else {
            if (b->vext)
                buf_puts(o, " val=input");
            else
                print_off(o, "val", b->val, b->vsteps);
            if (b->inv)
                buf_puts(o, " once");
            if (b->bits)
                buf_puts(o, " bits");
            if (b->vhalf)
                buf_puts(o, g->store == STORE_BF16 ? " bf16" : " fp16");
            print_off(o, "state", b->state, b->ssteps);
            if (b->remat)
                buf_puts(o, " remat");
            if (b->shalf)
                buf_puts(o, g->store == STORE_BF16 ? " bf16" : " fp16");
            print_off(o, "carry", b->carry, 0);
            print_off(o, "mask", b->mask, 0);
            print_off(o, "stat", b->stat, 0);
            if (b->gover)
                buf_puts(o, " grad=val");
            else
                print_off(o, "grad", b->grad, 0);
            if (b->gext)
                buf_puts(o, b->gext == IR_GEXT_DOUTPUT ? " grad=doutput" : " grad=dinput");
            if (b->gset)
                buf_puts(o, " set");
            print_off(o, "dstate", b->dstate, 0);
            print_off(o, "pacc", b->pacc, 0);
        }
        if (b->needgrad)
            buf_puts(o, b->needgrad == 1 ? " needgrad" : " needgrad(input)");
        if (b->wset)
            buf_puts(o, " dparams set");
        buf_puts(o, "\n");
    }
    if (P->readout >= 0)
        buf_printf(o, "    readout=%lld\n", (long long)P->readout);
    if (P->counter >= 0)
        buf_printf(o, "    counter=%lld\n", (long long)P->counter);
    for (int i = 0; P == &g->infer && i < g->probes.len; i++)
        if (g->probes.items[i].buf >= 0)
            buf_printf(o, "    record %s=%lldx%d\n", g->probes.items[i].spec, (long long)g->probes.items[i].buf,
                       P->chunk);
}

void ir_print(const IrGraph *g, Buf *o) {
    buf_printf(o, "network %s timesteps=%d batch=%d encode=%s", g->name, g->timesteps, g->batch,
               encoding_names[g->encoding]);
    if (g->encoding == ENC_LATENCY) {
        char f[32];
        format_float(f, sizeof f, g->enc_threshold);
        buf_printf(o, " threshold=%s", f);
    }
    if (g->events.on)
        buf_printf(o, " events(window=%lld, %s)", (long long)g->events.window, g->events.binary ? "binary" : "count");
    buf_puts(o, "\n");
    /* each node's parameters in order, as lists, so that the dump takes
       time linear in the graph's size */
    int *first = arena_alloc(g->arena, sizeof(int) * (size_t)(g->nodes.len + 1));
    int *next = arena_alloc(g->arena, sizeof(int) * (size_t)(g->params.len + 1));
    for (int i = 0; i < g->nodes.len; i++)
        first[i] = -1;
    for (int k = g->params.len - 1; k >= 0; k--) {
        next[k] = first[g->params.items[k].node];
        first[g->params.items[k].node] = k;
    }
    for (int i = 0; i < g->nodes.len; i++) {
        const IrNode *n = &g->nodes.items[i];
        if (n->dead)
            continue;
        buf_printf(o, "  %%%d %s = %s", i, n->name, ir_op_names[n->op]);
        for (int k = 0; k < n->nin; k++)
            buf_printf(o, k ? ", %%%d" : " %%%d", n->in[k]);
        print_attrs(n, o);
        buf_printf(o, " -> %s", shape_str(g->arena, &n->shape));
        if (n->invariant)
            buf_puts(o, " invariant");
        buf_printf(o, "  # line %d\n", n->loc.line);
        for (int k = first[i]; k >= 0; k = next[k]) {
            const IrParam *p = &g->params.items[k];
            buf_printf(o, "    weight %s %s\n", p->name, shape_str(g->arena, &p->shape));
        }
        if (n->neuron)
            ir_print_neuron(n->neuron, g, o, "    ");
    }
    buf_printf(o, "  output %%%d readout %s\n", g->output, readout_names[g->readout]);
    for (int i = 0; i < g->probes.len; i++)
        buf_printf(o, "  record %s\n", g->probes.items[i].spec);
    if (g->order)
        print_schedule(g, o);
    if (g->infer.planned)
        print_plan(g, &g->infer, "inference", o);
    if (g->trainp.planned)
        print_plan(g, &g->trainp, "training", o);
}

void ir_dot(const IrGraph *g, Buf *o) {
    buf_printf(o, "digraph \"%s\" {\n  rankdir=TB;\n  node [shape=box, fontname=\"monospace\"];\n",
               g->name);
    for (int i = 0; i < g->nodes.len; i++) {
        const IrNode *n = &g->nodes.items[i];
        if (n->dead)
            continue;
        const char *style = n->op == IR_NEURON ? ", style=filled, fillcolor=\"#ffe9b3\""
                            : n->op == IR_INPUT ? ", shape=ellipse"
                                                : "";
        buf_printf(o, "  n%d [label=\"%s\\n%s%s%s\\n%s\"%s];\n", i, n->name, ir_op_names[n->op],
                   n->neuron ? " " : "", n->neuron ? n->neuron->model : "",
                   shape_str(g->arena, &n->shape), style);
        for (int k = 0; k < n->nin; k++) {
            if (n->op == IR_DELAY)
                buf_printf(o, "  n%d -> n%d [style=dashed, label=\"t-1\"];\n", n->in[k], i);
            else
                buf_printf(o, "  n%d -> n%d;\n", n->in[k], i);
        }
    }
    buf_printf(o, "  out [shape=ellipse, label=\"output\\n%s\"];\n  n%d -> out;\n}\n",
               readout_names[g->readout], g->output);
}

/* The checker: what every pass must preserve. */
int ir_check(const IrGraph *g) {
    int bad = 0;
#define CHECK(c, ...) do { if (!(c)) { fprintf(stderr, "ir check: " __VA_ARGS__); fputc('\n', stderr); bad++; } } while (0)
    CHECK(g->timesteps > 0, "timesteps %d", g->timesteps);
    CHECK(g->input >= 0 && g->input < g->nodes.len, "no input");
    CHECK(g->output >= 0 && g->output < g->nodes.len && !g->nodes.items[g->output].dead,
          "no output");
    for (int i = 0; i < g->nodes.len; i++) {
        const IrNode *n = &g->nodes.items[i];
        if (n->dead)
            continue;
        CHECK(n->nin == ir_op_inputs[n->op], "%%%d: %d inputs", i, n->nin);
        for (int k = 0; k < n->nin; k++) {
            int s = n->in[k];
            CHECK(s >= 0 && s < g->nodes.len && !g->nodes.items[s].dead, "%%%d: bad input", i);
            if (n->op != IR_DELAY)
                CHECK(s < i, "%%%d: input %%%d comes later", i, s);
        }
        CHECK(n->shape.ndim >= 1 && shape_count(&n->shape) > 0, "%%%d: empty shape", i);
        CHECK((n->op == IR_NEURON) == (n->neuron != NULL), "%%%d: neuron program", i);
        if (n->neuron) {
            const NeuronProg *p = n->neuron;
            for (int k = 0; k < p->code.len; k++) {
                const EqInst *e = &p->code.items[k];
                int ar = e->op == EQ_SPIKE ? 1 : eq_op_arity[e->op];
                int ops[3] = {e->a, e->b, e->c};
                for (int j = 0; j < ar; j++)
                    CHECK(ops[j] >= 0 && ops[j] < k, "%%%d: neuron inst %d operand", i, k);
            }
            CHECK(p->emit >= 0 && p->emit < p->code.len, "%%%d: emit", i);
            if (p->grad) {
                const NeuronGrad *gr = p->grad;
                for (int k = 0; k < gr->code.len; k++) {
                    const EqInst *e = &gr->code.items[k];
                    int ops[3] = {e->a, e->b, e->c};
                    for (int j = 0; j < eq_op_arity[e->op]; j++)
                        CHECK(ops[j] >= 0 && ops[j] < k, "%%%d: backward inst %d operand", i, k);
                }
                CHECK(gr->dx < gr->code.len, "%%%d: dx", i);
            }
            for (int k = 0; k < p->states.len; k++)
                CHECK(p->states.items[k].next >= 0 && p->states.items[k].next < p->code.len,
                      "%%%d: state next", i);
        }
    }
    if (g->order) {
        /* the schedule: every live node once, groups in order, each node
           after the nodes it reads in the same step */
        int *pos = calloc((size_t)g->nodes.len + 1, sizeof(int));
        int live = 0;
        for (int i = 0; i < g->nodes.len; i++)
            live += !g->nodes.items[i].dead;
        CHECK(g->norder == live, "the schedule has %d nodes, the graph %d", g->norder, live);
        for (int j = 0; pos && j < g->norder; j++) {
            int i = g->order[j];
            CHECK(i >= 0 && i < g->nodes.len && !g->nodes.items[i].dead && !pos[i], "schedule entry %d", j);
            if (i >= 0 && i < g->nodes.len)
                pos[i] = j + 1;
        }
        int next = 0;
        for (int k = 0; k < g->groups.len; k++) {
            const IrGroup *gr = &g->groups.items[k];
            CHECK(gr->first == next && gr->count > 0, "group %d", k);
            for (int j = gr->first; j < gr->first + gr->count && j < g->norder; j++)
                CHECK(g->nodes.items[g->order[j]].group == k, "%%%d: not in its group %d", g->order[j], k);
            next = gr->first + gr->count;
        }
        CHECK(next == g->norder, "the groups cover %d of %d nodes", next, g->norder);
        for (int i = 0; pos && i < g->nodes.len; i++) {
            const IrNode *n = &g->nodes.items[i];
            if (n->dead)
                continue;
            for (int k = 0; k < n->nin; k++) {
                const IrNode *s = &g->nodes.items[n->in[k]];
                CHECK(s->group <= n->group, "%%%d runs before its input %%%d", i, n->in[k]);
                if (n->op != IR_DELAY)
                    CHECK(s->group < n->group || pos[n->in[k]] < pos[i], "%%%d runs before its input %%%d", i,
                          n->in[k]);
            }
        }
        free(pos);
    }
    for (int pl = 0; pl < 2; pl++) {
        const IrPlan *P = pl ? &g->trainp : &g->infer;
        if (!P->planned)
            continue;
        for (int i = 0; i < g->nodes.len; i++) {
            const IrNode *n = &g->nodes.items[i];
            const IrBufs *b = &P->at[i];
            if (n->dead || !ir_op_kernel[n->op])
                continue;
            int64_t c = shape_count(&n->shape);
            CHECK(b->val >= 0 && (b->vsteps == 1 || b->vsteps == P->chunk) &&
                      b->val + ((int64_t)b->vsteps * g->batch * c + b->vhalf) / (b->bits ? 32 : b->vhalf ? 2 : 1) <=
                          P->floats,
                  "%%%d: its %s buffer", i, pl ? "training" : "inference");
            if (n->op == IR_NEURON && n->neuron->states.len)
                CHECK(b->state >= 0 &&
                          b->state + ((int64_t)b->ssteps * n->neuron->states.len * g->batch * c + b->shalf) /
                                         (b->shalf ? 2 : 1) <= P->floats,
                      "%%%d: its %s states", i, pl ? "training" : "inference");
        }
    }
#undef CHECK
    return bad;
}
