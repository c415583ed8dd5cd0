/*
 * cemit.c: the emitter the C back end's files share, and neuron programs
 * (forward and gradient code) as C statements.
 *
 * A neuron program becomes one `const float tN = ...;` per instruction, in
 * program order, so that the C compiler sees exactly the operations (and
 * their order) of the model's equations: the generated code rounds as the
 * reference implementations do. Instructions that are the same for every
 * neuron (constants, per-layer parameters and what depends only on them)
 * are emitted once, before the loop over neurons.
 */
#include <string.h>

#include "cgen.h"

void cg_line(Emit *e, const char *fmt, ...) {
    if (*fmt)
        for (int i = 0; i < e->ind; i++)
            buf_puts(e->b, "    ");
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(e->b, fmt, ap);
    va_end(ap);
    buf_puts(e->b, "\n");
}

void cg_blank(Emit *e) { buf_puts(e->b, "\n"); }

const char *cg_flt(Emit *e, float f) {
    char s[48];
    format_float(s, sizeof s, f);
    if (strcmp(s, "NAN") && strcmp(s, "INFINITY") && strcmp(s, "-INFINITY"))
        strcat(s, "f");
    return arena_strdup(e->g->arena, s);
}

const char *cg_clean_name(Emit *e, const char *path) {
    const char *base = strrchr(path, '/');
    char *s = arena_strdup(e->g->arena, base ? base + 1 : path);
    for (char *c = s; *c; c++)
        if ((*c == '*' && c[1] == '/') || (unsigned char)*c < 32)
            *c = '_';
    return s;
}

void cg_comment_node(Emit *e, int i) {
    const IrNode *n = &e->g->nodes.items[i];
    Buf b = {0};
    buf_printf(&b, "%s = %s", n->name, ir_op_names[n->op]);
    if (n->neuron)
        buf_printf(&b, " %s", n->neuron->model);
    for (int k = 0; k < n->nin; k++)
        buf_printf(&b, k ? ", %s" : " %s", e->g->nodes.items[n->in[k]].name);
    buf_printf(&b, " -> %s", shape_str(e->g->arena, &n->shape));
    cg_line(e, "/* %s: %s line %d */", b.data, cg_clean_name(e, src_name(n->loc.file)), n->loc.line);
    buf_free(&b);
}

/* ---- neuron programs ---- */

unsigned char *cg_eq_live(Arena *a, const EqCode *code, const int *roots, int nroots) {
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

unsigned char *cg_eq_uniform(Arena *a, const NeuronProg *p, const EqCode *code) {
    unsigned char *uni = arena_alloc(a, (size_t)code->len + 1);
    for (int i = 0; i < code->len; i++) {
        const EqInst *in = &code->items[i];
        int ar = eq_nops(in);
        if (in->op == EQ_CONST || (in->op == EQ_PARAM && p->params.items[in->idx].gran == GRAN_LAYER))
            uni[i] = 1;
        else if (ar > 0)
            uni[i] = uni[in->a] && (ar < 2 || uni[in->b]) && (ar < 3 || uni[in->c]);
    }
    return uni;
}

unsigned char *cg_eq_levels(Arena *a, const NeuronProg *p, const EqCode *code, int x_invariant) {
    unsigned char *lev = arena_alloc(a, (size_t)code->len + 1);
    for (int i = 0; i < code->len; i++) {
        const EqInst *in = &code->items[i];
        int ar = eq_nops(in);
        switch (in->op) {
        case EQ_CONST: lev[i] = CG_LEVEL_LAYER; break;
        case EQ_PARAM:
            lev[i] = p->params.items[in->idx].gran == GRAN_LAYER ? CG_LEVEL_LAYER : CG_LEVEL_NEURON;
            break;
        case EQ_INPUT: lev[i] = x_invariant ? CG_LEVEL_NEURON : CG_LEVEL_STEP; break;
        case EQ_STATE:
        case EQ_ADJ: lev[i] = CG_LEVEL_STEP; break;
        default: {
            unsigned char l = CG_LEVEL_LAYER;
            if (ar > 0 && lev[in->a] < l) l = lev[in->a];
            if (ar > 1 && lev[in->b] < l) l = lev[in->b];
            if (ar > 2 && lev[in->c] < l) l = lev[in->c];
            lev[i] = ar > 0 ? l : CG_LEVEL_STEP;
        }
        }
    }
    return lev;
}

const char *cg_eq_val(Emit *e, const EqCode *code, int i) {
    const EqInst *in = &code->items[i];
    if (in->op == EQ_CONST)
        return cg_flt(e, in->k);
    return arena_printf(e->g->arena, "t%d", i);
}

void cg_eq_emit(Emit *e, const NeuronProg *p, const EqCode *code, const unsigned char *live,
                const unsigned char *uni, int uniform, const CgLeaves *lv, int names) {
    Arena *a = e->g->arena;
    for (int i = 0; i < code->len; i++) {
        const EqInst *in = &code->items[i];
        if (!live[i] || in->op == EQ_CONST || uni[i] != uniform)
            continue;
        const char *A1 = in->a >= 0 ? cg_eq_val(e, code, in->a) : "";
        const char *B1 = in->b >= 0 ? cg_eq_val(e, code, in->b) : "";
        const char *C1 = in->c >= 0 ? cg_eq_val(e, code, in->c) : "";
        const char *rhs = NULL;
        switch (in->op) {
        case EQ_INPUT: rhs = lv->x; break;
        case EQ_STATE: rhs = lv->state[in->idx]; break;
        case EQ_PARAM: rhs = lv->param[in->idx]; break;
        case EQ_ADJ: rhs = lv->adj[in->idx]; break;
        case EQ_ADD: rhs = arena_printf(a, "%s + %s", A1, B1); break;
        case EQ_SUB: rhs = arena_printf(a, "%s - %s", A1, B1); break;
        case EQ_MUL: rhs = arena_printf(a, "%s * %s", A1, B1); break;
        case EQ_DIV: rhs = arena_printf(a, "%s / %s", A1, B1); break;
        case EQ_NEG: rhs = arena_printf(a, "-%s", A1); break;
        case EQ_LT: rhs = arena_printf(a, "%s < %s ? 1.0f : 0.0f", A1, B1); break;
        case EQ_LE: rhs = arena_printf(a, "%s <= %s ? 1.0f : 0.0f", A1, B1); break;
        case EQ_GT: rhs = arena_printf(a, "%s > %s ? 1.0f : 0.0f", A1, B1); break;
        case EQ_GE: rhs = arena_printf(a, "%s >= %s ? 1.0f : 0.0f", A1, B1); break;
        case EQ_EQ: rhs = arena_printf(a, "%s == %s ? 1.0f : 0.0f", A1, B1); break;
        case EQ_NE: rhs = arena_printf(a, "%s != %s ? 1.0f : 0.0f", A1, B1); break;
        case EQ_AND: rhs = arena_printf(a, "%s != 0.0f && %s != 0.0f ? 1.0f : 0.0f", A1, B1); break;
        case EQ_OR: rhs = arena_printf(a, "%s != 0.0f || %s != 0.0f ? 1.0f : 0.0f", A1, B1); break;
        case EQ_NOT: rhs = arena_printf(a, "%s == 0.0f ? 1.0f : 0.0f", A1); break;
        case EQ_SELECT: rhs = arena_printf(a, "%s != 0.0f ? %s : %s", A1, B1, C1); break;
        case EQ_EXP: rhs = arena_printf(a, "expf(%s)", A1); break;
        case EQ_LOG: rhs = arena_printf(a, "logf(%s)", A1); break;
        case EQ_SQRT: rhs = arena_printf(a, "sqrtf(%s)", A1); break;
        case EQ_TANH: rhs = arena_printf(a, "tanhf(%s)", A1); break;
        case EQ_SIGMOID: rhs = arena_printf(a, "1.0f / (1.0f + expf(-%s))", A1); break;
        case EQ_ABS: rhs = arena_printf(a, "fabsf(%s)", A1); break;
        case EQ_MIN: rhs = arena_printf(a, "fminf(%s, %s)", A1, B1); break;
        case EQ_MAX: rhs = arena_printf(a, "fmaxf(%s, %s)", A1, B1); break;
        case EQ_POW: rhs = arena_printf(a, "powf(%s, %s)", A1, B1); break;
        case EQ_SPIKE: rhs = arena_printf(a, "%s >= 0.0f ? 1.0f : 0.0f", A1); break;
        case EQ_DETACH: rhs = A1; break;
        case EQ_DSURR:
            rhs = arena_printf(a, "%s_dspike_%s(%s, %s)", e->p, surr_names[in->surr], A1,
                               cg_flt(e, in->alpha));
            break;
        default: ICE("neuron op %d", (int)in->op);
        }
        const char *named = NULL;
        for (int k = 0; names && k < p->names.len; k++)
            if (p->names.items[k].inst == i)
                named = p->names.items[k].name;
        if (named)
            cg_line(e, "const float t%d = %s; /* %s */", i, rhs, named);
        else
            cg_line(e, "const float t%d = %s;", i, rhs);
    }
}

/* The derivative of spike(u) that each surrogate stands for (DESIGN 2.1),
   as a function of u and the surrogate's parameter. */
void cg_dspike_funcs(Emit *e, const EqCode *code, unsigned char *done) {
    for (int i = 0; i < code->len; i++) {
        const EqInst *in = &code->items[i];
        if (in->op != EQ_DSURR || done[in->surr])
            continue;
        done[in->surr] = 1;
        const char *p = e->p;
        cg_blank(e);
        switch (in->surr) {
        case SURR_ATAN:
            cg_line(e, "/* d spike / du, atan surrogate: (alpha / 2) / (1 + (pi / 2 alpha u)^2) */");
            cg_line(e, "static float %s_dspike_atan(float u, float alpha)", p);
            cg_line(e, "{");
            cg_line(e, "    const float k = (float)(1.5707963267948966 * (double)alpha) * u;");
            cg_line(e, "    return alpha / 2.0f / (1.0f + k * k);");
            cg_line(e, "}");
            break;
        case SURR_SIGMOID:
            cg_line(e, "/* d spike / du, sigmoid surrogate: alpha sig(alpha u) (1 - sig(alpha u)) */");
            cg_line(e, "static float %s_dspike_sigmoid(float u, float alpha)", p);
            cg_line(e, "{");
            cg_line(e, "    const float s = 1.0f / (1.0f + expf(-(u * alpha)));");
            cg_line(e, "    return (1.0f - s) * s * alpha;");
            cg_line(e, "}");
            break;
        case SURR_FAST_SIGMOID:
            cg_line(e, "/* d spike / du, fast sigmoid surrogate: 1 / (alpha |u| + 1)^2 */");
            cg_line(e, "static float %s_dspike_fast_sigmoid(float u, float alpha)", p);
            cg_line(e, "{");
            cg_line(e, "    const float d = alpha * fabsf(u) + 1.0f;");
            cg_line(e, "    return 1.0f / (d * d);");
            cg_line(e, "}");
            break;
        case SURR_RECT:
            cg_line(e, "/* d spike / du, rectangle surrogate: 1 / alpha where |u| <= alpha / 2 */");
            cg_line(e, "static float %s_dspike_rect(float u, float alpha)", p);
            cg_line(e, "{");
            cg_line(e, "    return fabsf(u) <= 0.5f * alpha ? 1.0f / alpha : 0.0f;");
            cg_line(e, "}");
            break;
        case SURR_TRIANGLE:
            cg_line(e, "/* d spike / du, triangle surrogate: max(0, alpha - alpha^2 |u|) */");
            cg_line(e, "static float %s_dspike_triangle(float u, float alpha)", p);
            cg_line(e, "{");
            cg_line(e, "    const float d = alpha - alpha * alpha * fabsf(u);");
            cg_line(e, "    return d > 0.0f ? d : 0.0f;");
            cg_line(e, "}");
            break;
        case SURR_NUM:
            ICE("surrogate");
        }
    }
}
