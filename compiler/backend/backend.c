/*
 * backend.c: the table of targets, and the one driver of them all: check
 * that the target has every kernel the graph needs, then write the kernels
 * of every node in the schedule's order (the inference plan's, then for a
 * trained graph the training plan's forward and backward), the
 * micro-kernels they call and the API.
 */
#include "backend.h"

#include <string.h>

/* In the order of preference for running on this machine: the x86
   targets, the portable one; the llvm target only when asked for (its
   first increment runs inference only); cuda, which snnc writes but
   cannot load yet, last. */
static const Target *const targets[] = {
    &target_avx512,
    &target_avx2,
    &target_c,
    &target_llvm,
    &target_cuda,
};
#define NTARGETS ((int)(sizeof targets / sizeof targets[0]))

static int runs_here(const Target *t) { return !t->missing && (!t->runs_here || t->runs_here()); }

const Target *target_native(void) {
    for (int i = 0; i < NTARGETS && targets[i] != &target_llvm; i++)
        if (runs_here(targets[i]))
            return targets[i];
    return &target_c;
}

const Target *target_lookup(const char *name) {
    for (int i = 0; i < NTARGETS; i++)
        if (!strcmp(targets[i]->name, name))
            return targets[i];
    return NULL;
}

void target_list(FILE *f) {
    const Target *native = target_native();
    for (int i = 0; i < NTARGETS; i++)
        fprintf(f, "  %-8s %s%s%s%s\n", targets[i]->name, targets[i]->doc,
                targets[i] == native       ? " (run, train and grad use it on this machine)"
                : targets[i]->missing      ? " (unavailable: "
                : !runs_here(targets[i])   ? " (this machine cannot run it)"
                                           : "",
                targets[i]->missing ? targets[i]->missing : "", targets[i]->missing ? ")" : "");
}

const char *target_clean_name(Arena *a, const char *path) {
    const char *base = strrchr(path, '/');
    char *s = arena_strdup(a, base ? base + 1 : path);
    for (char *c = s; *c; c++)
        if ((*c == '*' && c[1] == '/') || (unsigned char)*c < 32)
            *c = '_';
    return s;
}

const char *target_node_text(const IrGraph *g, int i) {
    const IrNode *n = &g->nodes.items[i];
    Buf b = {0};
    buf_printf(&b, "%s = %s", n->name, ir_op_names[n->op]);
    if (n->neuron)
        buf_printf(&b, " %s", n->neuron->model);
    for (int k = 0; k < n->nin; k++)
        buf_printf(&b, k ? ", %s" : " %s", g->nodes.items[n->in[k]].name);
    buf_printf(&b, " -> %s: %s line %d", shape_str(g->arena, &n->shape),
               target_clean_name(g->arena, src_name(n->loc.file)), n->loc.line);
    const char *s = arena_strdup(g->arena, b.data);
    buf_free(&b);
    return s;
}

unsigned char *target_eq_live(Arena *a, const EqCode *code, const int *roots, int nroots) {
    unsigned char *live = arena_alloc(a, (size_t)code->len + 1);
    for (int k = 0; k < nroots; k++)
        if (roots[k] >= 0)
            live[roots[k]] = 1;
    for (int i = code->len - 1; i >= 0; i--) {
        if (!live[i])
            continue;
        const EqInst *in = &code->items[i];
        int ar = eq_nops(in);
        if (ar > 0) live[in->a] = 1;
        if (ar > 1) live[in->b] = 1;
        if (ar > 2) live[in->c] = 1;
    }
    return live;
}

int target_needs_backward(const IrGraph *g, int i) {
    const IrNode *x = &g->nodes.items[i];
    if (!g->train || !ir_op_kernel[x->op])
        return 0;
    if (g->trainp.at[i].needgrad)
        return 1;
    for (int k = 0; k < x->nparam; k++)
        if (g->params.items[x->param[k]].learnable)
            return 1;
    return 0;
}

int target_backward_always(const IrGraph *g, int i) {
    const IrNode *x = &g->nodes.items[i];
    int need = x->neuron && x->neuron->params.len > 0;
    for (int q = 0; q < x->nparam; q++)
        need |= g->params.items[x->param[q]].learnable;
    for (int q = 0; q < x->nin; q++)
        need |= g->trainp.at[x->in[q]].needgrad == 1;
    return need;
}

int target_probe_inst(const IrGraph *g, int i, int k) {
    const IrProbe *pr = &g->probes.items[k];
    int st;
    return pr->node == i && pr->var && pr->buf >= 0 ? ir_neuron_var(g, i, pr->var, &st) : -1;
}

int *target_neuron_roots(const IrGraph *g, const IrPlan *P, int i, int fwd, int *n) {
    const NeuronProg *p = g->nodes.items[i].neuron;
    int in = g->nodes.items[i].in[0];
    *n = fwd ? 1 + p->states.len + g->probes.len : 1 + p->states.len + p->params.len;
    int *roots = arena_alloc(g->arena, sizeof(int) * (size_t)(*n + 1));
    if (fwd) {
        roots[0] = p->emit;
        for (int k = 0; k < p->states.len; k++)
            roots[1 + k] = p->states.items[k].next;
        for (int k = 0; k < g->probes.len; k++)
            roots[1 + p->states.len + k] = P == &g->trainp ? -1 : target_probe_inst(g, i, k);
    } else {
        roots[0] = P->at[in].needgrad ? p->grad->dx : -1;
        for (int k = 0; k < p->states.len; k++)
            roots[1 + k] = p->grad->dstate[k];
        for (int k = 0; k < p->params.len; k++)
            roots[1 + p->states.len + k] = p->grad->dparam[k];
    }
    return roots;
}

int target_check(const Target *t, const IrGraph *g) {
    int bad = 0;
    for (int i = 0; i < g->nodes.len; i++) {
        const IrNode *x = &g->nodes.items[i];
        if (x->dead || !ir_op_kernel[x->op])
            continue;
        const TargetKernels *k = &t->kernels[x->op];
        const char *what = !k->fwd ? "forward" : target_needs_backward(g, i) && !k->bwd ? "backward" : NULL;
        if (!what)
            continue;
        error_at(x->loc, "target '%s' has no %s kernel for op '%s' (layer '%s')", t->name, what,
                 ir_op_names[x->op], x->name);
        bad++;
    }
    return bad;
}

const char *const precision_names[PREC_COUNT] = {"fp32", "tf32", "bf16", "fp16"};

int target_check_precision(const Target *t, int precision) {
    if (precision == PREC_FP32 || t->precisions)
        return 0;
    error_plain("target '%s' computes in fp32 only: --precision %s is for target 'cuda'", t->name,
                precision_names[precision]);
    return -1;
}

TargetEmitter *target_emit(const Target *t, const IrGraph *g, const CgenOptions *opt) {
    if (!g->infer.planned || (g->train && !g->trainp.planned))
        ICE("target_emit needs the memory plans");
    if (t->missing) {
        error_plain("target '%s' is not available: %s", t->name, t->missing);
        return NULL;
    }
    if (target_check_precision(t, opt->precision))
        return NULL;
    if (target_check(t, g))
        return NULL;
    int dense = 0, conv = 0;
    for (int i = 0; i < g->nodes.len; i++) {
        const IrNode *x = &g->nodes.items[i];
        dense |= !x->dead && (x->op == IR_DENSE || x->op == IR_CONV2D);
        conv |= !x->dead && x->op == IR_CONV2D;
    }
    TargetEmitter *em = t->begin(g, opt);
    if (!em)
        return NULL;
    if (dense)
        t->gemm(em);
    if (conv)
        t->conv(em);
    for (int j = 0; j < g->norder; j++) {
        int i = g->order[j];
        if (ir_op_kernel[g->nodes.items[i].op])
            t->kernels[g->nodes.items[i].op].fwd(em, &g->infer, i);
    }
    if (g->train)
        for (int j = 0; j < g->norder; j++) {
            int i = g->order[j];
            if (!ir_op_kernel[g->nodes.items[i].op])
                continue;
            t->kernels[g->nodes.items[i].op].fwd(em, &g->trainp, i);
            if (target_needs_backward(g, i))
                t->kernels[g->nodes.items[i].op].bwd(em, &g->trainp, i);
        }
    t->api(em);
    return em;
}

int target_generate(const Target *t, const IrGraph *g, const CgenOptions *opt, GenFile *out) {
    TargetEmitter *em = target_emit(t, g, opt);
    return em ? t->finish(em, out) : -1;
}
