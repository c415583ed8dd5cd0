/*
 * cgen.c: the portable C back end (--target c).
 *
 * Emits <net>.h and <net>.c: C99 that needs only libc and libm, with every
 * shape, the timesteps and all constants baked in. The workspace is one
 * block of floats: the parameters (unless embedded) followed by the
 * per-sample region laid out by memplan and scaled by the largest batch.
 * The schedule is time-major: each step runs every layer in graph order,
 * skipping values hoisted out of the loop after the first step; neuron
 * layers are one fused loop that reads the states, runs the model's
 * instructions, writes the states back (reset included) and the output.
 *
 * Emitters look like their output: one printf per line of C, with the
 * indentation kept by `ind`.
 */
#include <ctype.h>
#include <math.h>
#include <string.h>

#include "backend.h"

typedef struct Emit {
    Buf *b;
    int ind;
    const IrGraph *g;
    const CgenOptions *opt;
    const char *p;  /* prefix, lower case */
    const char *P;  /* prefix, upper case */
    int64_t maxb;   /* the largest batch */
} Emit;

static void line(Emit *e, const char *fmt, ...) PRINTF_LIKE(2, 3);
static void line(Emit *e, const char *fmt, ...) {
    if (*fmt)
        for (int i = 0; i < e->ind; i++)
            buf_puts(e->b, "    ");
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(e->b, fmt, ap);
    va_end(ap);
    buf_puts(e->b, "\n");
}

static void blank(Emit *e) { buf_puts(e->b, "\n"); }

static const char *flt(Emit *e, float f) {
    char s[48];
    format_float(s, sizeof s, f);
    if (strcmp(s, "NAN") && strcmp(s, "INFINITY") && strcmp(s, "-INFINITY"))
        strcat(s, "f");
    return arena_strdup(e->g->arena, s);
}

/* Pointer expression to node i's buffer for the current step. */
static const char *buf_of(Emit *e, int i) {
    const IrNode *n = &e->g->nodes.items[i];
    int r = n->alias >= 0 ? n->alias : i;
    const IrNode *rn = &e->g->nodes.items[r];
    if (rn->op == IR_INPUT)
        return "in";
    if (rn->op == IR_DELAY)
        return arena_printf(e->g->arena, "(A + %lld)", (long long)(e->maxb * rn->state));
    return arena_printf(e->g->arena, "(A + %lld)", (long long)(e->maxb * rn->buf));
}

static const char *param_of(Emit *e, int param) {
    if (e->opt->embedded)
        return arena_printf(e->g->arena, "%s_w%d", e->p, param);
    return arena_printf(e->g->arena, "(W + %lld)", (long long)e->g->params.items[param].off);
}

/* A file name fit for a comment in generated code: its last component
   (no absolute paths in output), with nothing that could close the comment. */
static const char *clean_name(Emit *e, const char *path) {
    const char *base = strrchr(path, '/');
    char *s = arena_strdup(e->g->arena, base ? base + 1 : path);
    for (char *c = s; *c; c++)
        if ((*c == '*' && c[1] == '/') || (unsigned char)*c < 32)
            *c = '_';
    return s;
}

static void comment_node(Emit *e, int i) {
    const IrNode *n = &e->g->nodes.items[i];
    Buf b = {0};
    buf_printf(&b, "%s = %s", n->name, ir_op_names[n->op]);
    if (n->neuron)
        buf_printf(&b, " %s", n->neuron->model);
    for (int k = 0; k < n->nin; k++)
        buf_printf(&b, k ? ", %s" : " %s", e->g->nodes.items[n->in[k]].name);
    buf_printf(&b, " -> %s", shape_str(e->g->arena, &n->shape));
    line(e, "/* %s: %s line %d */", b.data, clean_name(e, src_name(n->loc.file)), n->loc.line);
    buf_free(&b);
}

/* ---- synaptic layers ---- */

static void gen_dense(Emit *e, const IrNode *n) {
    const IrNode *x = &e->g->nodes.items[n->in[0]];
    long long in = x->shape.d[0], out = n->out;
    line(e, "const float *x = %s, *w = %s;", buf_of(e, n->in[0]), param_of(e, n->param[0]));
    if (n->bias)
        line(e, "const float *b = %s;", param_of(e, n->param[1]));
    line(e, "float *y = %s;", buf_of(e, (int)(n - e->g->nodes.items)));
    line(e, "for (long r = 0; r < batch; r++)");
    line(e, "    for (long o = 0; o < %lld; o++) {", out);
    line(e, "        float acc = %s;", n->bias ? "b[o]" : "0.0f");
    line(e, "        for (long k = 0; k < %lld; k++)", in);
    line(e, "            acc += w[o * %lld + k] * x[r * %lld + k];", in, in);
    line(e, "        y[r * %lld + o] = acc;", out);
    line(e, "    }");
}

static void gen_conv2d(Emit *e, const IrNode *n) {
    const Shape *xs = &e->g->nodes.items[n->in[0]].shape;
    long long C = xs->d[0], H = xs->d[1], Wd = xs->d[2];
    long long O = n->out, OH = n->shape.d[1], OW = n->shape.d[2];
    long long cg = C / n->groups, og = O / n->groups;
    line(e, "const float *x = %s, *w = %s;", buf_of(e, n->in[0]), param_of(e, n->param[0]));
    if (n->bias)
        line(e, "const float *b = %s;", param_of(e, n->param[1]));
    line(e, "float *y = %s;", buf_of(e, (int)(n - e->g->nodes.items)));
    line(e, "for (long r = 0; r < batch; r++)");
    line(e, "    for (long o = 0; o < %lld; o++) {", O);
    line(e, "        const float *xg = x + (r * %lld + (o / %lld) * %lld) * %lld;", C, og, cg, H * Wd);
    line(e, "        for (long oy = 0; oy < %lld; oy++)", OH);
    line(e, "            for (long ox = 0; ox < %lld; ox++) {", OW);
    line(e, "                float acc = %s;", n->bias ? "b[o]" : "0.0f");
    line(e, "                for (long c = 0; c < %lld; c++)", cg);
    line(e, "                    for (long ky = 0; ky < %d; ky++) {", n->kernel[0]);
    line(e, "                        long iy = oy * %d - %d + ky;", n->stride[0], n->pad[0]);
    line(e, "                        if (iy < 0 || iy >= %lld)", H);
    line(e, "                            continue;");
    line(e, "                        for (long kx = 0; kx < %d; kx++) {", n->kernel[1]);
    line(e, "                            long ix = ox * %d - %d + kx;", n->stride[1], n->pad[1]);
    line(e, "                            if (ix >= 0 && ix < %lld)", Wd);
    line(e, "                                acc += w[((o * %lld + c) * %d + ky) * %d + kx] * xg[(c * %lld + iy) * %lld + ix];",
         cg, n->kernel[0], n->kernel[1], H, Wd);
    line(e, "                        }");
    line(e, "                    }");
    line(e, "                y[((r * %lld + o) * %lld + oy) * %lld + ox] = acc;", O, OH, OW);
    line(e, "            }");
    line(e, "    }");
}

static void gen_pool(Emit *e, const IrNode *n) {
    const Shape *xs = &e->g->nodes.items[n->in[0]].shape;
    long long C = xs->d[0], H = xs->d[1], Wd = xs->d[2], OH = n->shape.d[1], OW = n->shape.d[2];
    int mx = n->op == IR_MAXPOOL;
    line(e, "const float *x = %s;", buf_of(e, n->in[0]));
    line(e, "float *y = %s;", buf_of(e, (int)(n - e->g->nodes.items)));
    line(e, "for (long rc = 0; rc < batch * %lld; rc++)", C);
    line(e, "    for (long oy = 0; oy < %lld; oy++)", OH);
    line(e, "        for (long ox = 0; ox < %lld; ox++) {", OW);
    line(e, "            float acc = %s;", mx ? "-INFINITY" : "0.0f");
    line(e, "            for (long ky = 0; ky < %d; ky++) {", n->kernel[0]);
    line(e, "                long iy = oy * %d - %d + ky;", n->stride[0], n->pad[0]);
    line(e, "                if (iy < 0 || iy >= %lld)", H);
    line(e, "                    continue;");
    line(e, "                for (long kx = 0; kx < %d; kx++) {", n->kernel[1]);
    line(e, "                    long ix = ox * %d - %d + kx;", n->stride[1], n->pad[1]);
    line(e, "                    if (ix < 0 || ix >= %lld)", Wd);
    line(e, "                        continue;");
    if (mx) {
        line(e, "                    float v = x[(rc * %lld + iy) * %lld + ix];", H, Wd);
        line(e, "                    if (v > acc || v != v)");
        line(e, "                        acc = v;");
    } else
        line(e, "                    acc += x[(rc * %lld + iy) * %lld + ix];", H, Wd);
    line(e, "                }");
    line(e, "            }");
    if (mx)
        line(e, "            y[(rc * %lld + oy) * %lld + ox] = acc;", OH, OW);
    else
        line(e, "            y[(rc * %lld + oy) * %lld + ox] = acc / %s;", OH, OW,
             flt(e, (float)(n->kernel[0] * n->kernel[1])));
    line(e, "        }");
}

static void gen_elementwise(Emit *e, const IrNode *n) {
    long long cnt = shape_count(&n->shape);
    int self = (int)(n - e->g->nodes.items);
    line(e, "const float *x = %s;", buf_of(e, n->in[0]));
    if (n->op == IR_ADD)
        line(e, "const float *x2 = %s;", buf_of(e, n->in[1]));
    line(e, "float *y = %s;", buf_of(e, self));
    if (n->op == IR_BATCHNORM) {
        long long C = n->shape.d[0], hw = cnt / C;
        line(e, "const float *g = %s, *be = %s, *mu = %s, *var = %s;", param_of(e, n->param[0]),
             param_of(e, n->param[1]), param_of(e, n->param[2]), param_of(e, n->param[3]));
        line(e, "for (long r = 0; r < batch; r++)");
        line(e, "    for (long c = 0; c < %lld; c++) {", C);
        line(e, "        float a = g[c] / sqrtf(var[c] + %s);", flt(e, n->fval));
        line(e, "        float sh = be[c] - mu[c] * a;");
        line(e, "        for (long k = 0; k < %lld; k++)", hw);
        line(e, "            y[(r * %lld + c) * %lld + k] = x[(r * %lld + c) * %lld + k] * a + sh;", C, hw, C, hw);
        line(e, "    }");
        return;
    }
    line(e, "for (long i = 0; i < batch * %lld; i++)", cnt);
    if (n->op == IR_ADD)
        line(e, "    y[i] = x[i] + x2[i];");
    else if (n->op == IR_SCALE)
        line(e, "    y[i] = x[i] * %s;", flt(e, n->fval));
    else
        line(e, "    y[i] = x[i];");
}

/* ---- neuron layers ---- */

static const char *tname(Emit *e, const NeuronProg *p, int i) {
    const EqInst *in = &p->code.items[i];
    if (in->op == EQ_CONST)
        return flt(e, in->k);
    return arena_printf(e->g->arena, "t%d", i);
}

static void gen_neuron(Emit *e, const IrNode *n) {
    const IrGraph *g = e->g;
    const NeuronProg *p = n->neuron;
    int self = (int)(n - g->nodes.items);
    long long cnt = shape_count(&n->shape);
    long long C = n->shape.d[0], hw = cnt / C;
    Arena *a = g->arena;
    /* liveness: only what reaches a root is emitted */
    unsigned char *live = arena_alloc(a, (size_t)p->code.len + 1);
    live[p->emit] = 1;
    for (int k = 0; k < p->states.len; k++)
        live[p->states.items[k].next] = 1;
    int *probe_inst = arena_alloc(a, sizeof(int) * (size_t)(g->probes.len + 1));
    for (int k = 0; k < g->probes.len; k++) {
        const IrProbe *pr = &g->probes.items[k];
        int st;
        probe_inst[k] = pr->node == self && pr->var ? ir_neuron_var(g, self, pr->var, &st) : -1;
        if (probe_inst[k] >= 0)
            live[probe_inst[k]] = 1;
    }
    for (int i = p->code.len - 1; i >= 0; i--) {
        if (!live[i])
            continue;
        const EqInst *in = &p->code.items[i];
        int ar = in->op == EQ_SPIKE ? 1 : eq_op_arity[in->op];
        if (ar > 0) live[in->a] = 1;
        if (ar > 1) live[in->b] = 1;
        if (ar > 2) live[in->c] = 1;
    }
    line(e, "const float *x = %s;", buf_of(e, n->in[0]));
    line(e, "float *y = %s;", buf_of(e, self));
    for (int k = 0; k < p->states.len; k++)
        line(e, "float *s_%s = A + %lld;", p->states.items[k].name,
             (long long)(e->maxb * (n->state + cnt * k)));
    for (int k = 0; k < p->params.len; k++)
        line(e, "const float *p_%s = %s;", p->params.items[k].name, param_of(e, p->params.items[k].param));
    for (int k = 0; k < g->probes.len; k++)
        if (probe_inst[k] >= 0)
            line(e, "float *probe%d = A + %lld;", k, (long long)(e->maxb * g->probes.items[k].buf));
    line(e, "(void)x;");
    for (int k = 0; k < p->params.len; k++)
        line(e, "(void)p_%s;", p->params.items[k].name);
    /* Instructions over constants and per-layer parameters are the same for
       every neuron: computed once, before the loop. */
    unsigned char *uni = arena_alloc(a, (size_t)p->code.len + 1);
    for (int i = 0; i < p->code.len; i++) {
        const EqInst *in = &p->code.items[i];
        int ar = in->op == EQ_SPIKE ? 1 : eq_op_arity[in->op];
        if (in->op == EQ_CONST || (in->op == EQ_PARAM && p->params.items[in->idx].gran == GRAN_LAYER))
            uni[i] = 1;
        else if (ar > 0 && in->op != EQ_INPUT && in->op != EQ_STATE && in->op != EQ_PARAM)
            uni[i] = uni[in->a] && (ar < 2 || uni[in->b]) && (ar < 3 || uni[in->c]);
    }
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            line(e, "for (long i = 0; i < batch * %lld; i++) {", cnt);
            e->ind++;
        }
    for (int i = 0; i < p->code.len; i++) {
        const EqInst *in = &p->code.items[i];
        if (!live[i] || in->op == EQ_CONST || uni[i] != (pass == 0))
            continue;
        const char *A1 = in->a >= 0 ? tname(e, p, in->a) : "";
        const char *B1 = in->b >= 0 ? tname(e, p, in->b) : "";
        const char *C1 = in->c >= 0 ? tname(e, p, in->c) : "";
        const char *rhs = NULL;
        switch (in->op) {
        case EQ_INPUT: rhs = "x[i]"; break;
        case EQ_STATE: rhs = arena_printf(a, "s_%s[i]", p->states.items[in->idx].name); break;
        case EQ_PARAM: {
            const NeuronParam *q = &p->params.items[in->idx];
            const char *ix = q->gran == GRAN_LAYER ? "0"
                             : q->gran == GRAN_NEURON ? arena_printf(a, "i %% %lld", cnt)
                                                      : arena_printf(a, "i %% %lld / %lld", cnt, hw);
            rhs = arena_printf(a, "p_%s[%s]", q->name, ix);
            break;
        }
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
        default: ICE("neuron op %d", (int)in->op);
        }
        const char *named = NULL;
        for (int k = 0; k < p->names.len; k++)
            if (p->names.items[k].inst == i)
                named = p->names.items[k].name;
        if (named)
            line(e, "const float t%d = %s; /* %s */", i, rhs, named);
        else
            line(e, "const float t%d = %s;", i, rhs);
    }
    }
    for (int k = 0; k < p->states.len; k++)
        line(e, "s_%s[i] = %s;", p->states.items[k].name, tname(e, p, p->states.items[k].next));
    line(e, "y[i] = %s;", tname(e, p, p->emit));
    for (int k = 0; k < g->probes.len; k++)
        if (probe_inst[k] >= 0)
            line(e, "probe%d[i] = %s;", k, tname(e, p, probe_inst[k]));
    e->ind--;
    line(e, "}");
}

/* ---- the step and the API ---- */

static void gen_step(Emit *e) {
    const IrGraph *g = e->g;
    line(e, "/* One step of the whole network, time-major. `hoisted` says that the");
    line(e, "   values marked invariant already hold this sequence's result. */");
    line(e, "static void %s_run_step(float *ws, long batch, const float *in, int hoisted)", e->p);
    line(e, "{");
    e->ind++;
    if (!e->opt->embedded && g->param_floats > 0)
        line(e, "const float *W = ws;");
    line(e, "float *A = ws + %lld;", (long long)(e->opt->embedded ? 0 : g->param_floats));
    if (!e->opt->embedded && g->param_floats > 0)
        line(e, "(void)W;");
    line(e, "(void)A;");
    line(e, "(void)in;");
    line(e, "(void)hoisted;");
    for (int i = 0; i < g->nodes.len; i++) {
        const IrNode *n = &g->nodes.items[i];
        if (n->dead || n->op == IR_INPUT || n->op == IR_DELAY || n->alias >= 0)
            continue;
        blank(e);
        comment_node(e, i);
        line(e, n->invariant ? "if (!hoisted) {" : "{");
        e->ind++;
        switch (n->op) {
        case IR_DENSE: gen_dense(e, n); break;
        case IR_CONV2D: gen_conv2d(e, n); break;
        case IR_MAXPOOL:
        case IR_AVGPOOL: gen_pool(e, n); break;
        case IR_NEURON: gen_neuron(e, n); break;
        default: gen_elementwise(e, n); break;
        }
        e->ind--;
        line(e, "}");
    }
    /* records, before the delays move on: a record of prev(h) is the value
       this step read */
    for (int k = 0; k < g->probes.len; k++) {
        const IrProbe *pr = &g->probes.items[k];
        if (pr->var)
            continue;
        line(e, "memcpy(A + %lld, %s, (size_t)batch * %lld * sizeof(float)); /* record %s */",
             (long long)(e->maxb * pr->buf), buf_of(e, pr->node), (long long)pr->count, pr->spec);
    }
    /* values of the step that must outlive it */
    for (int i = 0; i < g->nodes.len; i++) {
        const IrNode *n = &g->nodes.items[i];
        if (n->dead || n->op != IR_DELAY)
            continue;
        blank(e);
        comment_node(e, i);
        line(e, "memcpy(A + %lld, %s, (size_t)batch * %lld * sizeof(float));",
             (long long)(e->maxb * n->state), buf_of(e, n->in[0]), (long long)shape_count(&n->shape));
    }
    e->ind--;
    line(e, "}");
}

static void gen_reset(Emit *e) {
    const IrGraph *g = e->g;
    line(e, "void %s_reset(void *workspace, int batch)", e->p);
    line(e, "{");
    e->ind++;
    line(e, "float *A = %s_ws(workspace) + %lld;", e->p, (long long)(e->opt->embedded ? 0 : g->param_floats));
    line(e, "long n = batch < 1 ? 1 : batch > %s_MAX_BATCH ? %s_MAX_BATCH : batch;", e->P, e->P);
    for (int i = 0; i < g->nodes.len; i++) {
        const IrNode *n = &g->nodes.items[i];
        if (n->dead)
            continue;
        long long cnt = shape_count(&n->shape);
        if (n->op == IR_DELAY)
            line(e, "memset(A + %lld, 0, (size_t)n * %lld * sizeof(float)); /* %s */",
                 (long long)(e->maxb * n->state), cnt, n->name);
        if (n->op != IR_NEURON)
            continue;
        for (int k = 0; k < n->neuron->states.len; k++) {
            const NeuronState *s = &n->neuron->states.items[k];
            line(e, "for (long i = 0; i < n * %lld; i++) /* %s.%s */", cnt, n->name, s->name);
            line(e, "    A[%lld + i] = %s;", (long long)(e->maxb * (n->state + cnt * k)), flt(e, s->init));
        }
    }
    e->ind--;
    line(e, "}");
}

static void gen_api(Emit *e) {
    const IrGraph *g = e->g;
    long long in_cnt = shape_count(&g->nodes.items[g->input].shape);
    long long out_cnt = shape_count(&g->nodes.items[g->output].shape);
    const char *outp = buf_of(e, g->output);
    blank(e);
    gen_reset(e);
    blank(e);
    line(e, "void %s_step(void *workspace, int batch, const float *input, float *output)", e->p);
    line(e, "{");
    e->ind++;
    line(e, "float *ws = %s_ws(workspace);", e->p);
    line(e, "float *A = ws + %lld;", (long long)(e->opt->embedded ? 0 : g->param_floats));
    line(e, "long n = batch < 1 ? 1 : batch > %s_MAX_BATCH ? %s_MAX_BATCH : batch;", e->P, e->P);
    line(e, "%s_run_step(ws, n, input, 0);", e->p);
    line(e, "if (output)");
    line(e, "    memcpy(output, %s, (size_t)n * %lld * sizeof(float));", outp, out_cnt);
    line(e, "(void)A;");
    e->ind--;
    line(e, "}");
    blank(e);
    line(e, "void %s_forward(void *workspace, int batch, const float *input, float *output)", e->p);
    line(e, "{");
    e->ind++;
    line(e, "float *ws = %s_ws(workspace);", e->p);
    line(e, "float *A = ws + %lld;", (long long)(e->opt->embedded ? 0 : g->param_floats));
    line(e, "long n = batch < 1 ? 1 : batch > %s_MAX_BATCH ? %s_MAX_BATCH : batch;", e->P, e->P);
    line(e, "long m = n * %lld;", out_cnt);
    line(e, "%s_reset(workspace, (int)n);", e->p);
    line(e, "for (int t = 0; t < %d; t++) {", g->timesteps);
    e->ind++;
    if (g->encoding == ENC_SEQUENCE)
        line(e, "const float *in = input + (size_t)t * (size_t)n * %lld;", in_cnt);
    else
        line(e, "const float *in = input;");
    line(e, "const float *y = %s;", outp);
    line(e, "%s_run_step(ws, n, in, t > 0);", e->p);
    const char *acc = g->readout == RO_STEPS ? NULL
                      : arena_printf(g->arena, "(A + %lld)", (long long)(e->maxb * g->readout_buf));
    switch (g->readout) {
    case RO_STEPS:
        line(e, "memcpy(output + (size_t)t * (size_t)m, y, (size_t)m * sizeof(float));");
        break;
    case RO_COUNT:
    case RO_RATE:
    case RO_MEAN:
        line(e, "for (long i = 0; i < m; i++)");
        line(e, "    %s[i] = t == 0 ? y[i] : %s[i] + y[i];", acc, acc);
        break;
    case RO_LAST:
        line(e, "if (t == %d)", g->timesteps - 1);
        line(e, "    memcpy(%s, y, (size_t)m * sizeof(float));", acc);
        break;
    case RO_MAX:
        line(e, "for (long i = 0; i < m; i++)");
        line(e, "    %s[i] = t == 0 || y[i] > %s[i] ? y[i] : %s[i];", acc, acc, acc);
        break;
    }
    e->ind--;
    line(e, "}");
    if (g->readout == RO_RATE || g->readout == RO_MEAN) {
        line(e, "for (long i = 0; i < m; i++)");
        line(e, "    output[i] = %s[i] / %s;", acc, flt(e, (float)g->timesteps));
    } else if (g->readout != RO_STEPS)
        line(e, "memcpy(output, %s, (size_t)m * sizeof(float));", acc);
    e->ind--;
    line(e, "}");
    if (g->probes.len) {
        blank(e);
        line(e, "const float *%s_probe(void *workspace, int k)", e->p);
        line(e, "{");
        e->ind++;
        line(e, "static const long offset[%d] = {", g->probes.len);
        for (int k = 0; k < g->probes.len; k++)
            line(e, "    %lld, /* %s */", (long long)(e->maxb * g->probes.items[k].buf),
                 g->probes.items[k].spec);
        line(e, "};");
        line(e, "if (k < 0 || k >= %d)", g->probes.len);
        line(e, "    return 0;");
        line(e, "return %s_ws(workspace) + %lld + offset[k];", e->p,
             (long long)(e->opt->embedded ? 0 : g->param_floats));
        e->ind--;
        line(e, "}");
    }
}

static void gen_params(Emit *e) {
    const IrGraph *g = e->g;
    if (!g->params.len)
        return;
    blank(e);
    line(e, "const %s_param_info %s_params[%d] = {", e->p, e->p, g->params.len);
    for (int i = 0; i < g->params.len; i++) {
        const IrParam *q = &g->params.items[i];
        Buf s = {0};
        for (int k = 0; k < 4; k++)
            buf_printf(&s, k ? ", %lld" : "%lld", (long long)(k < q->shape.ndim ? q->shape.d[k] : 0));
        line(e, "    {\"%s\", %d, {%s}, %lld, %lld},", q->name, q->shape.ndim, s.data,
             (long long)q->off, (long long)q->count);
        buf_free(&s);
    }
    line(e, "};");
    if (e->opt->embedded) {
        for (int i = 0; i < g->params.len; i++) {
            const IrParam *q = &g->params.items[i];
            blank(e);
            line(e, "static const float %s_w%d[%lld] = { /* %s */", e->p, i, (long long)q->count, q->name);
            Buf s = {0};
            for (int64_t k = 0; k < q->count; k++) {
                buf_printf(&s, "%s%s,", k % 8 ? " " : "    ", flt(e, e->opt->embedded[q->off + k]));
                if (k % 8 == 7 || k == q->count - 1) {
                    line(e, "%s", s.data);
                    s.len = 0;
                    s.data[0] = 0;
                }
            }
            buf_free(&s);
            line(e, "};");
        }
        return;
    }
    /* loading and initialization */
    blank(e);
    line(e, "/* Weight files: see docs/weights.md. The loader below is runtime/snnrt_stload.inc. */");
    buf_printf(e->b, "%.*s", (int)snnrt_stload_inc_len, snnrt_stload_inc);
    blank(e);
    line(e, "int %s_load_weights(void *workspace, const char *path, int allow_missing, char *err, size_t errlen)", e->p);
    line(e, "{");
    e->ind++;
    line(e, "float *ws = %s_ws(workspace);", e->p);
    line(e, "snnrt_st_want want[%d];", g->params.len);
    line(e, "unsigned char found[%d];", g->params.len);
    line(e, "for (int i = 0; i < %d; i++) {", g->params.len);
    line(e, "    want[i].name = %s_params[i].name;", e->p);
    line(e, "    want[i].ndim = %s_params[i].ndim;", e->p);
    line(e, "    want[i].shape = %s_params[i].shape;", e->p);
    line(e, "    want[i].dst = ws + %s_params[i].offset;", e->p);
    line(e, "}");
    line(e, "return snnrt_st_load(path, want, %d, allow_missing, found, err, errlen);", g->params.len);
    e->ind--;
    line(e, "}");
    blank(e);
    line(e, "/* splitmix64: a counter-based generator, the same on every target. */");
    line(e, "static float %s_uniform(unsigned long long *state)", e->p);
    line(e, "{");
    line(e, "    unsigned long long z = (*state += 0x9E3779B97F4A7C15ULL);");
    line(e, "    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;");
    line(e, "    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;");
    line(e, "    z ^= z >> 31;");
    line(e, "    return (float)(z >> 40) * (1.0f / 16777216.0f);");
    line(e, "}");
    blank(e);
    line(e, "void %s_init_weights(void *workspace, unsigned long long seed)", e->p);
    line(e, "{");
    e->ind++;
    line(e, "float *ws = %s_ws(workspace);", e->p);
    line(e, "unsigned long long st = seed;");
    for (int i = 0; i < g->params.len; i++) {
        const IrParam *q = &g->params.items[i];
        const char *what;
        switch (q->kind) {
        case PK_WEIGHT:
        case PK_BIAS: {
            float bound = 1.0f / sqrtf((float)q->fan_in);
            line(e, "for (long i = 0; i < %lld; i++) /* %s: U(-1/sqrt(%lld), 1/sqrt(%lld)) */",
                 (long long)q->count, q->name, (long long)q->fan_in, (long long)q->fan_in);
            line(e, "    ws[%lld + i] = (2.0f * %s_uniform(&st) - 1.0f) * %s;", (long long)q->off, e->p,
                 flt(e, bound));
            continue;
        }
        case PK_ONES: what = "1.0f"; break;
        case PK_ZEROS: what = "0.0f"; break;
        default: what = flt(e, q->init); break;
        }
        line(e, "for (long i = 0; i < %lld; i++) /* %s */", (long long)q->count, q->name);
        line(e, "    ws[%lld + i] = %s;", (long long)q->off, what);
    }
    e->ind--;
    line(e, "}");
}

static void gen_header(Emit *e, Buf *h) {
    const IrGraph *g = e->g;
    Emit he = *e;
    he.b = h;
    Emit *x = &he;
    const char *P = e->P, *p = e->p;
    long long ws_floats = (e->opt->embedded ? 0 : g->param_floats) +
                          e->maxb * (g->persist_floats + g->pool_floats);
    line(x, "/* %s.h: generated by snnc %s from %s. Do not edit.", p, SNNC_VERSION, clean_name(e, g->source));
    blank(x);
    line(x, "   Network %s: %d timesteps, input %s (%s), output %s (readout %s).", g->name,
         g->timesteps, shape_str(g->arena, &g->nodes.items[g->input].shape),
         g->encoding == ENC_DIRECT ? "the same at every step" : "one per step",
         shape_str(g->arena, &g->nodes.items[g->output].shape), readout_names[g->readout]);
    line(x, "   All functions take the workspace: WORKSPACE_SIZE bytes, aligned for float,");
    line(x, "   %s. Nothing allocates. */",
         e->opt->static_ws ? "or NULL for the static one" : "provided by the caller");
    line(x, "#ifndef %s_H", P);
    line(x, "#define %s_H", P);
    blank(x);
    line(x, "#include <stddef.h>");
    blank(x);
    line(x, "#ifdef __cplusplus");
    line(x, "extern \"C\" {");
    line(x, "#endif");
    blank(x);
    line(x, "#define %s_TIMESTEPS %d", P, g->timesteps);
    line(x, "#define %s_MAX_BATCH %lld /* forward and step take 1..MAX_BATCH samples */", P, (long long)e->maxb);
    line(x, "#define %s_INPUT_SIZE %lld /* floats per sample (and step) */", P,
         (long long)shape_count(&g->nodes.items[g->input].shape));
    line(x, "#define %s_INPUT_SEQUENCE %d /* 1: forward reads [T, batch, INPUT_SIZE]; 0: [batch, INPUT_SIZE] */",
         P, g->encoding == ENC_SEQUENCE);
    line(x, "#define %s_OUTPUT_SIZE %lld /* floats per sample */", P,
         (long long)shape_count(&g->nodes.items[g->output].shape));
    line(x, "#define %s_OUTPUT_STEPS %d /* 1: forward writes [T, batch, OUTPUT_SIZE]; 0: [batch, OUTPUT_SIZE] */",
         P, g->readout == RO_STEPS);
    line(x, "#define %s_NUM_PARAMS %d", P, g->params.len);
    line(x, "#define %s_NUM_PROBES %d", P, g->probes.len);
    line(x, "#define %s_WORKSPACE_FLOATS %lldL", P, ws_floats);
    line(x, "#define %s_WORKSPACE_SIZE (%s_WORKSPACE_FLOATS * sizeof(float)) /* bytes */", P, P);
    blank(x);
    line(x, "typedef struct %s_param_info {", p);
    line(x, "    const char *name; /* tensor name in weight files */");
    line(x, "    int ndim;");
    line(x, "    long shape[4];");
    line(x, "    long offset; /* in floats from the start of the workspace */");
    line(x, "    long count;");
    line(x, "} %s_param_info;", p);
    if (g->params.len)
        line(x, "extern const %s_param_info %s_params[%d];", p, p, g->params.len);
    blank(x);
    if (!e->opt->embedded && g->params.len) {
        line(x, "/* Load the parameters from a safetensors file (F32; names and shapes as in");
        line(x, "   %s_params). With allow_missing, tensors absent from the file keep their value.", p);
        line(x, "   Returns 0, or -1 with a message in err. */");
        line(x, "int %s_load_weights(void *workspace, const char *path, int allow_missing, char *err, size_t errlen);", p);
        line(x, "/* Initialize every parameter as PyTorch initializes its layer type, from a seed. */");
        line(x, "void %s_init_weights(void *workspace, unsigned long long seed);", p);
    }
    line(x, "/* Set every state to its initial value (the start of a sequence). */");
    line(x, "void %s_reset(void *workspace, int batch);", p);
    line(x, "/* One step: input [batch, INPUT_SIZE] -> output [batch, OUTPUT_SIZE] (may be NULL). */");
    line(x, "void %s_step(void *workspace, int batch, const float *input, float *output);", p);
    line(x, "/* A whole sequence from the initial state: T steps and the readout. */");
    line(x, "void %s_forward(void *workspace, int batch, const float *input, float *output);", p);
    if (g->probes.len) {
        line(x, "/* The recorded values of the last step, [batch, size] each:");
        for (int k = 0; k < g->probes.len; k++)
            line(x, "   %d: %s (%lld floats per sample)", k, g->probes.items[k].spec,
                 (long long)g->probes.items[k].count);
        line(x, "*/");
        line(x, "const float *%s_probe(void *workspace, int k);", p);
    }
    blank(x);
    line(x, "#ifdef __cplusplus");
    line(x, "}");
    line(x, "#endif");
    blank(x);
    line(x, "#endif");
}

int cgen_generate(const IrGraph *g, const CgenOptions *opt, GenFile *out) {
    if (!g->planned)
        ICE("cgen needs memplan");
    Emit e;
    memset(&e, 0, sizeof e);
    e.g = g;
    e.opt = opt;
    e.maxb = g->batch;
    char *lo = arena_strdup(g->arena, opt->prefix ? opt->prefix : g->name);
    char *up = arena_strdup(g->arena, lo);
    for (char *c = lo; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    for (char *c = up; *c; c++)
        *c = (char)toupper((unsigned char)*c);
    e.p = lo;
    e.P = up;
    out[0].name = arena_printf(g->arena, "%s.h", lo);
    memset(&out[0].text, 0, sizeof(Buf));
    gen_header(&e, &out[0].text);

    out[1].name = arena_printf(g->arena, "%s.c", lo);
    memset(&out[1].text, 0, sizeof(Buf));
    e.b = &out[1].text;
    line(&e, "/* %s.c: generated by snnc %s from %s. Do not edit.", lo, SNNC_VERSION, clean_name(&e, g->source));
    line(&e, "   Portable C99; build with: cc -std=c99 -O2 -c %s.c (link with -lm). */", lo);
    line(&e, "#include \"%s.h\"", lo);
    blank(&e);
    line(&e, "#include <math.h>");
    line(&e, "#include <string.h>");
    blank(&e);
    if (opt->static_ws) {
        line(&e, "static float %s_static_ws[%s_WORKSPACE_FLOATS];", lo, up);
        blank(&e);
        line(&e, "static float *%s_ws(void *workspace)", lo);
        line(&e, "{");
        line(&e, "    return workspace ? (float *)workspace : %s_static_ws;", lo);
        line(&e, "}");
    } else {
        line(&e, "static float *%s_ws(void *workspace)", lo);
        line(&e, "{");
        line(&e, "    return (float *)workspace;");
        line(&e, "}");
    }
    gen_params(&e);
    blank(&e);
    gen_step(&e);
    gen_api(&e);
    return 2;
}
