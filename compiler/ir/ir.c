/*
 * ir.c: the tables expanded from ops.def, eqops.def and surrogates.def, and
 * constructors of graphs, nodes, parameters and neuron instructions.
 */
#include "ir.h"

#include <string.h>

const char *const ir_op_names[IR_NUM_OPS] = {
#define OP(id, name, nin, kernel, sig, doc) name,
#include "ops.def"
#undef OP
};
const int ir_op_inputs[IR_NUM_OPS] = {
#define OP(id, name, nin, kernel, sig, doc) nin,
#include "ops.def"
#undef OP
};
const int ir_op_kernel[IR_NUM_OPS] = {
#define OP(id, name, nin, kernel, sig, doc) kernel,
#include "ops.def"
#undef OP
};
const char *const ir_op_sigs[IR_NUM_OPS] = {
#define OP(id, name, nin, kernel, sig, doc) sig,
#include "ops.def"
#undef OP
};
const char *const eq_op_names[EQ_NUM_OPS] = {
#define EQ(id, name, arity, callable, libm) name,
#include "eqops.def"
#undef EQ
};
const int eq_op_arity[EQ_NUM_OPS] = {
#define EQ(id, name, arity, callable, libm) arity,
#include "eqops.def"
#undef EQ
};
const int eq_op_callable[EQ_NUM_OPS] = {
#define EQ(id, name, arity, callable, libm) callable,
#include "eqops.def"
#undef EQ
};
const int eq_op_libm[EQ_NUM_OPS] = {
#define EQ(id, name, arity, callable, libm) libm,
#include "eqops.def"
#undef EQ
};
const char *const surr_names[SURR_NUM] = {
#define SURR(id, name, alpha, doc) name,
#include "surrogates.def"
#undef SURR
};
const double surr_default_alpha[SURR_NUM] = {
#define SURR(id, name, alpha, doc) alpha,
#include "surrogates.def"
#undef SURR
};
const char *const gran_names[3] = {"layer", "channel", "neuron"};
const char *const encoding_names[4] = {"direct", "sequence", "rate", "latency"};
const char *const readout_names[6] = {"steps", "count", "rate", "mean", "last", "max"};

int64_t shape_count(const Shape *s) {
    int64_t n = 1;
    for (int i = 0; i < s->ndim; i++)
        n *= s->d[i];
    return n;
}

char *shape_str(Arena *a, const Shape *s) {
    char buf[128];
    size_t n = 0;
    buf[n++] = '[';
    for (int i = 0; i < s->ndim; i++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, i ? ",%lld" : "%lld", (long long)s->d[i]);
    snprintf(buf + n, sizeof buf - n, "]");
    return arena_strdup(a, buf);
}

IrGraph *ir_new(Arena *a, const char *name) {
    IrGraph *g = arena_alloc(a, sizeof *g);
    g->arena = a;
    g->name = name;
    g->input = g->output = -1;
    g->batch = 1;
    g->enc_threshold = 0.01f; /* snnTorch's default for spikegen.latency */
    return g;
}

int ir_add_node(IrGraph *g, IrOp op, const char *name, Loc loc) {
    IrNode n;
    memset(&n, 0, sizeof n);
    n.op = op;
    n.name = name;
    n.loc = loc;
    n.in[0] = n.in[1] = -1;
    n.alias = -1;
    for (int i = 0; i < 4; i++)
        n.param[i] = -1;
    vec_push(g->arena, &g->nodes, n);
    return g->nodes.len - 1;
}

int ir_add_param(IrGraph *g, int node, const char *pname, const Shape *shape,
                 ParamKind kind, float init, int64_t fan_in) {
    IrParam p;
    memset(&p, 0, sizeof p);
    IrNode *n = &g->nodes.items[node];
    p.name = arena_printf(g->arena, "%s.%s", n->name, pname);
    p.node = node;
    p.shape = *shape;
    p.count = shape_count(shape);
    p.kind = kind;
    p.init = init;
    p.fan_in = fan_in;
    p.learnable = 1;
    vec_push(g->arena, &g->params, p);
    int id = g->params.len - 1;
    if (n->op != IR_NEURON) {
        ASSERT(n->nparam < 4);
        n->param[n->nparam++] = id;
    }
    return id;
}

int eq_emit(Arena *a, NeuronProg *p, EqInst in) {
    return eq_push(a, &p->code, in);
}

int eq_push(Arena *a, EqCode *code, EqInst in) {
    vec_push(a, code, in);
    return code->len - 1;
}

int eq_nops(const EqInst *e) {
    return eq_op_arity[e->op];
}

int ir_find_node(const IrGraph *g, const char *name) {
    for (int i = 0; i < g->nodes.len; i++)
        if (!strcmp(g->nodes.items[i].name, name))
            return i;
    return -1;
}

int64_t ir_node_macs(const IrGraph *g, int i) {
    const IrNode *n = &g->nodes.items[i];
    int64_t cnt = shape_count(&n->shape);
    if (n->dead)
        return 0;
    if (n->op == IR_DENSE)
        return cnt * g->nodes.items[n->in[0]].shape.d[0];
    if (n->op == IR_CONV2D)
        return cnt * (g->nodes.items[n->in[0]].shape.d[0] / n->groups) * n->kernel[0] * n->kernel[1];
    return 0;
}

int ir_neuron_var(const IrGraph *g, int n, const char *var, int *state) {
    const NeuronProg *p = g->nodes.items[n].neuron;
    *state = -1;
    if (!p)
        return -1;
    for (int i = 0; i < p->states.len; i++)
        if (!strcmp(p->states.items[i].name, var)) {
            *state = i;
            return p->states.items[i].next;
        }
    for (int i = 0; i < p->names.len; i++)
        if (!strcmp(p->names.items[i].name, var))
            return p->names.items[i].inst;
    return -1;
}
