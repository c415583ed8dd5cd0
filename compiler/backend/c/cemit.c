/*
 * cemit.c: the emitter the C target's parts share, the addressing of the
 * memory plans, and neuron programs (forward and gradient code) as C
 * statements.
 *
 * A neuron program becomes one `const float tN = ...;` per instruction, in
 * program order, so that the C compiler sees exactly the operations (and
 * their order) of the model's equations: the generated code rounds as the
 * reference implementations do. Instructions that are the same for every
 * neuron (constants, per-layer parameters and what depends only on them)
 * are emitted once, before the loop over neurons.
 */
#include <string.h>

#include "c.h"

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

const char *cg_clean_name(Emit *e, const char *path) { return target_clean_name(e->g->arena, path); }

void cg_comment_node(Emit *e, int i) { cg_line(e, "/* %s */", target_node_text(e->g, i)); }

/* ---- plans ---- */

static int64_t align16(int64_t x) { return (x + 15) & ~(int64_t)15; }

int cp_train(Emit *e, const IrPlan *P) { return P == &e->g->trainp; }

int64_t cp_base(Emit *e, const IrPlan *P) {
    if (cp_train(e, P))
        return 2 * align16(e->g->param_floats);
    return e->opt->embedded ? 0 : e->g->param_floats;
}

int64_t cp_scratch(Emit *e, const IrPlan *P) { return cp_base(e, P) + align16(P->floats); }

const char *cp_ws(Emit *e, const IrPlan *P, int64_t off) {
    return arena_printf(e->g->arena, "ws + %lld", (long long)(cp_base(e, P) + off));
}

const char *cp_at(Emit *e, const IrPlan *P, int i, char what, const char *t) {
    const IrBufs *b = &P->at[i];
    int64_t off = what == 'g' ? b->grad : b->val;
    int ext = what == 'g' ? b->gext : IR_GEXT_NONE;
    int vext = what == 'v' && b->vext;
    if (off < 0 && !ext && !vext)
        ICE("node %d has no %s buffer", i, what == 'g' ? "gradient" : "value");
    if (what == 'v' && b->bits)
        ICE("node %d keeps its spikes as bits: read them with cp_bits_at", i);
    if (b->vhalf)
        ICE("node %d keeps its product in 16 bits: read it with cp_half_at", i);
    long long c = shape_count(&e->g->nodes.items[i].shape);
    const char *base = vext                     ? "input"
                       : ext == IR_GEXT_DOUTPUT ? "doutput"
                       : ext == IR_GEXT_DINPUT  ? "dinput"
                                                : cp_ws(e, P, off);
    if (b->vsteps == 1 || !strcmp(t, "0"))
        return base;
    /* training stores every step (t < T); inference wraps around its
       chunk, also when step() goes on past T */
    int simple = !strchr(t, ' ');
    if (cp_train(e, P) || !strcmp(t, "0"))
        return arena_printf(e->g->arena, simple ? "%s + (long)%s * B * %lld" : "%s + (long)(%s) * B * %lld", base, t,
                            c);
    return arena_printf(e->g->arena, simple ? "%s + (long)(%s %% %d) * B * %lld" : "%s + (long)((%s) %% %d) * B * %lld",
                        base, t, b->vsteps, c);
}

int cp_any_bits(Emit *e) {
    const IrGraph *g = e->g;
    for (int i = 0; g->train && g->trainp.planned && i < g->nodes.len; i++)
        if (!g->nodes.items[i].dead && g->trainp.at[i].bits)
            return 1;
    return 0;
}

ConvDims cp_conv_dims(Emit *e, const IrNode *x) {
    const Shape *xs = &e->g->nodes.items[x->in[0]].shape;
    ConvDims d;
    d.C = xs->d[0], d.H = xs->d[1], d.W = xs->d[2];
    d.O = x->out, d.OH = x->shape.d[1], d.OW = x->shape.d[2], d.P = d.OH * d.OW;
    d.G = x->groups, d.cg = d.C / d.G, d.og = d.O / d.G;
    d.KK = (long long)x->kernel[0] * x->kernel[1];
    return d;
}

/* Whether a dense layer reads spikes kept as bits: only then are the
   products on bits (_sa forward, _sb for the weight gradient) called. */
int cp_dense_reads_bits(Emit *e) {
    const IrGraph *g = e->g;
    for (int i = 0; g->train && g->trainp.planned && i < g->nodes.len; i++) {
        const IrNode *x = &g->nodes.items[i];
        if (!x->dead && x->op == IR_DENSE && g->trainp.at[x->in[0]].bits)
            return 1;
    }
    return 0;
}

/* The dx argument of node i's backward: which inputs need their gradient
   (those needed only for dL/dinput when dinput is given). */
const char *cp_dx_arg(Emit *e, int i) {
    const IrPlan *P = &e->g->trainp;
    const IrNode *x = &e->g->nodes.items[i];
    Buf b = {0};
    int any = 0;
    for (int k = 0; k < x->nin; k++) {
        int r = P->at[x->in[k]].needgrad;
        if (r == 0)
            continue;
        buf_printf(&b, "%s%s", any ? " | " : "",
                   r == 1 ? arena_printf(e->g->arena, "%d", 1 << k) : arena_printf(e->g->arena, "(dinput ? %d : 0)", 1 << k));
        any = 1;
    }
    const char *s = arena_strdup(e->g->arena, any ? b.data : "0");
    buf_free(&b);
    return s;
}

const char *cp_bits_at(Emit *e, const IrPlan *P, int i, const char *t) {
    const IrBufs *b = &P->at[i];
    if (!b->bits)
        ICE("node %d keeps no bits", i);
    long long words = shape_count(&e->g->nodes.items[i].shape) / 32;
    const char *base = arena_printf(e->g->arena, "(uint32_t *)(void *)(%s)", cp_ws(e, P, b->val));
    if (!strcmp(t, "0"))
        return base;
    return arena_printf(e->g->arena, strchr(t, ' ') ? "%s + (long)(%s) * B * %lld" : "%s + (long)%s * B * %lld", base, t,
                        words);
}

const char *cp_half_at(Emit *e, const IrPlan *P, int i, const char *t) {
    const IrBufs *b = &P->at[i];
    if (!b->vhalf)
        ICE("node %d keeps no 16-bit product", i);
    long long c = shape_count(&e->g->nodes.items[i].shape);
    const char *base = arena_printf(e->g->arena, "(uint16_t *)(void *)(%s)", cp_ws(e, P, b->val));
    if (!strcmp(t, "0"))
        return base;
    return arena_printf(e->g->arena, strchr(t, ' ') ? "%s + (long)(%s) * B * %lld" : "%s + (long)%s * B * %lld", base, t,
                        c);
}

const char *cp_param(Emit *e, int k) {
    if (e->opt->embedded)
        return arena_printf(e->g->arena, "%s_w%d", e->p, k);
    return arena_printf(e->g->arena, "ws + %lld", (long long)e->g->params.items[k].off);
}

const char *cp_grad(Emit *e, int k) {
    return arena_printf(e->g->arena, "ws + %lld",
                        (long long)(align16(e->g->param_floats) + e->g->params.items[k].off));
}

const char *cp_kernel(Emit *e, const IrPlan *P, int i, int fwd) {
    return arena_printf(e->g->arena, "%s_%s%s%d", e->p, cp_train(e, P) ? "train_" : "", fwd ? "fwd" : "bwd", i);
}

enum { EXT_INPUT = 1 << 3 }; /* beside 1 << IR_GEXT_...: the caller's input (IrBufs.vext) */

/* Which of the caller's buffers node i's kernel reads or writes in
   training: the input's value (IrBufs.vext) where it reads the input,
   forward or backward; in the backward, the caller's gradients
   (IrBufs.gext): its own (doutput) and its inputs' (dinput). */
static int ext_uses(Emit *e, const IrPlan *P, int i, int fwd) {
    const IrNode *x = &e->g->nodes.items[i];
    int m = 0;
    if (!cp_train(e, P))
        return 0;
    for (int k = 0; k < x->nin; k++)
        if (P->at[x->in[k]].vext)
            m |= EXT_INPUT;
    if (fwd)
        return m;
    m |= 1 << P->at[i].gext;
    for (int k = 0; k < x->nin; k++)
        m |= 1 << P->at[x->in[k]].gext;
    return m;
}

const char *cp_ext_params(Emit *e, const IrPlan *P, int i, int fwd) {
    int m = ext_uses(e, P, i, fwd);
    return arena_printf(e->g->arena, "%s%s%s", m & EXT_INPUT ? ", const float *input" : "",
                        m & 1 << IR_GEXT_DOUTPUT ? ", const float *doutput" : "",
                        m & 1 << IR_GEXT_DINPUT ? ", float *dinput" : "");
}

const char *cp_ext_args(Emit *e, const IrPlan *P, int i, int fwd) {
    int m = ext_uses(e, P, i, fwd);
    return arena_printf(e->g->arena, "%s%s%s", m & EXT_INPUT ? ", input" : "", m & 1 << IR_GEXT_DOUTPUT ? ", doutput" : "",
                        m & 1 << IR_GEXT_DINPUT ? ", dinput" : "");
}

void cp_ext_unused(Emit *e, const IrPlan *P, int i, int fwd) {
    int m = ext_uses(e, P, i, fwd);
    if (m & EXT_INPUT)
        cg_line(e, "(void)input;");
    if (m & 1 << IR_GEXT_DOUTPUT)
        cg_line(e, "(void)doutput;");
    if (m & 1 << IR_GEXT_DINPUT)
        cg_line(e, "(void)dinput;");
}

void cp_open(Emit *e, const IrPlan *P, int i, int fwd) {
    cg_blank(e);
    cg_comment_node(e, i);
    cg_line(e, "static void %s(float *ws, long B, int from, int to, int %s%s)", cp_kernel(e, P, i, fwd),
            fwd ? "training" : "dx", cp_ext_params(e, P, i, fwd));
    cg_line(e, "{");
    e->ind++;
    cp_ext_unused(e, P, i, fwd);
}

void cp_close(Emit *e, const char *unused) {
    if (unused && *unused)
        cg_line(e, "%s", unused);
    e->ind--;
    cg_line(e, "}");
}

void cg_par_for(Emit *e, const char *work) {
    cg_line(e, "%s_OMP(omp parallel for schedule(static) if (%s >= %s_PARALLEL_WORK))", e->P, work, e->P);
}

void cg_par_for_light(Emit *e, const char *work) {
    cg_line(e, "%s_OMP(omp parallel for schedule(static) if (%s >= %s_PARALLEL_LIGHT))", e->P, work, e->P);
}

/* ---- neuron programs ---- */

unsigned char *cg_eq_live(Arena *a, const EqCode *code, const int *roots, int nroots) {
    return target_eq_live(a, code, roots, nroots);
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
                const unsigned char *lev, int level, const CgLeaves *lv, int names) {
    Arena *a = e->g->arena;
    const char *fn = e->fast ? "snnrt_" : ""; /* the math functions: runtime/snnrt_math.inc's or libm's */
    for (int i = 0; i < code->len; i++) {
        const EqInst *in = &code->items[i];
        if (!live[i] || in->op == EQ_CONST || lev[i] != level)
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
        case EQ_EXP: rhs = arena_printf(a, "%sexpf(%s)", fn, A1); break;
        case EQ_LOG: rhs = arena_printf(a, "%slogf(%s)", fn, A1); break;
        case EQ_SQRT: rhs = arena_printf(a, "sqrtf(%s)", A1); break;
        case EQ_TANH: rhs = arena_printf(a, "%stanhf(%s)", fn, A1); break;
        case EQ_SIGMOID: /* the C library has none */
            rhs = e->fast ? arena_printf(a, "snnrt_sigmoidf(%s)", A1) : arena_printf(a, "1.0f / (1.0f + expf(-%s))", A1);
            break;
        case EQ_ABS: rhs = arena_printf(a, "fabsf(%s)", A1); break;
        case EQ_FLOOR: rhs = arena_printf(a, "floorf(%s)", A1); break;
        case EQ_MIN: rhs = arena_printf(a, "%sfminf(%s, %s)", fn, A1, B1); break;
        case EQ_MAX: rhs = arena_printf(a, "%sfmaxf(%s, %s)", fn, A1, B1); break;
        case EQ_POW: rhs = arena_printf(a, "powf(%s, %s)", A1, B1); break;
        case EQ_SPIKE: rhs = arena_printf(a, "%s >= 0.0f ? 1.0f : 0.0f", A1); break;
        case EQ_DETACH: rhs = A1; break;
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
