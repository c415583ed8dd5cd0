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

#include "cgen.h"

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

/* ---- synaptic layers ---- */

static void gen_dense(Emit *e, const IrNode *n) {
    const IrNode *x = &e->g->nodes.items[n->in[0]];
    long long in = x->shape.d[0], out = n->out;
    cg_line(e, "const float *x = %s, *w = %s;", buf_of(e, n->in[0]), param_of(e, n->param[0]));
    if (n->bias)
        cg_line(e, "const float *b = %s;", param_of(e, n->param[1]));
    cg_line(e, "float *y = %s;", buf_of(e, (int)(n - e->g->nodes.items)));
    cg_line(e, "for (long r = 0; r < batch; r++)");
    cg_line(e, "    for (long o = 0; o < %lld; o++) {", out);
    cg_line(e, "        float acc = %s;", n->bias ? "b[o]" : "0.0f");
    cg_line(e, "        for (long k = 0; k < %lld; k++)", in);
    cg_line(e, "            acc += w[o * %lld + k] * x[r * %lld + k];", in, in);
    cg_line(e, "        y[r * %lld + o] = acc;", out);
    cg_line(e, "    }");
}

static void gen_conv2d(Emit *e, const IrNode *n) {
    const Shape *xs = &e->g->nodes.items[n->in[0]].shape;
    long long C = xs->d[0], H = xs->d[1], Wd = xs->d[2];
    long long O = n->out, OH = n->shape.d[1], OW = n->shape.d[2];
    long long cg = C / n->groups, og = O / n->groups;
    cg_line(e, "const float *x = %s, *w = %s;", buf_of(e, n->in[0]), param_of(e, n->param[0]));
    if (n->bias)
        cg_line(e, "const float *b = %s;", param_of(e, n->param[1]));
    cg_line(e, "float *y = %s;", buf_of(e, (int)(n - e->g->nodes.items)));
    cg_line(e, "for (long r = 0; r < batch; r++)");
    cg_line(e, "    for (long o = 0; o < %lld; o++) {", O);
    cg_line(e, "        const float *xg = x + (r * %lld + (o / %lld) * %lld) * %lld;", C, og, cg, H * Wd);
    cg_line(e, "        for (long oy = 0; oy < %lld; oy++)", OH);
    cg_line(e, "            for (long ox = 0; ox < %lld; ox++) {", OW);
    cg_line(e, "                float acc = %s;", n->bias ? "b[o]" : "0.0f");
    cg_line(e, "                for (long c = 0; c < %lld; c++)", cg);
    cg_line(e, "                    for (long ky = 0; ky < %d; ky++) {", n->kernel[0]);
    cg_line(e, "                        long iy = oy * %d - %d + ky;", n->stride[0], n->pad[0]);
    cg_line(e, "                        if (iy < 0 || iy >= %lld)", H);
    cg_line(e, "                            continue;");
    cg_line(e, "                        for (long kx = 0; kx < %d; kx++) {", n->kernel[1]);
    cg_line(e, "                            long ix = ox * %d - %d + kx;", n->stride[1], n->pad[1]);
    cg_line(e, "                            if (ix >= 0 && ix < %lld)", Wd);
    cg_line(e, "                                acc += w[((o * %lld + c) * %d + ky) * %d + kx] * xg[(c * %lld + iy) * %lld + ix];",
         cg, n->kernel[0], n->kernel[1], H, Wd);
    cg_line(e, "                        }");
    cg_line(e, "                    }");
    cg_line(e, "                y[((r * %lld + o) * %lld + oy) * %lld + ox] = acc;", O, OH, OW);
    cg_line(e, "            }");
    cg_line(e, "    }");
}

static void gen_pool(Emit *e, const IrNode *n) {
    const Shape *xs = &e->g->nodes.items[n->in[0]].shape;
    long long C = xs->d[0], H = xs->d[1], Wd = xs->d[2], OH = n->shape.d[1], OW = n->shape.d[2];
    int mx = n->op == IR_MAXPOOL;
    cg_line(e, "const float *x = %s;", buf_of(e, n->in[0]));
    cg_line(e, "float *y = %s;", buf_of(e, (int)(n - e->g->nodes.items)));
    cg_line(e, "for (long rc = 0; rc < batch * %lld; rc++)", C);
    cg_line(e, "    for (long oy = 0; oy < %lld; oy++)", OH);
    cg_line(e, "        for (long ox = 0; ox < %lld; ox++) {", OW);
    cg_line(e, "            float acc = %s;", mx ? "-INFINITY" : "0.0f");
    cg_line(e, "            for (long ky = 0; ky < %d; ky++) {", n->kernel[0]);
    cg_line(e, "                long iy = oy * %d - %d + ky;", n->stride[0], n->pad[0]);
    cg_line(e, "                if (iy < 0 || iy >= %lld)", H);
    cg_line(e, "                    continue;");
    cg_line(e, "                for (long kx = 0; kx < %d; kx++) {", n->kernel[1]);
    cg_line(e, "                    long ix = ox * %d - %d + kx;", n->stride[1], n->pad[1]);
    cg_line(e, "                    if (ix < 0 || ix >= %lld)", Wd);
    cg_line(e, "                        continue;");
    if (mx) {
        cg_line(e, "                    float v = x[(rc * %lld + iy) * %lld + ix];", H, Wd);
        cg_line(e, "                    if (v > acc || v != v)");
        cg_line(e, "                        acc = v;");
    } else
        cg_line(e, "                    acc += x[(rc * %lld + iy) * %lld + ix];", H, Wd);
    cg_line(e, "                }");
    cg_line(e, "            }");
    if (mx)
        cg_line(e, "            y[(rc * %lld + oy) * %lld + ox] = acc;", OH, OW);
    else
        cg_line(e, "            y[(rc * %lld + oy) * %lld + ox] = acc / %s;", OH, OW,
             cg_flt(e, (float)(n->kernel[0] * n->kernel[1])));
    cg_line(e, "        }");
}

static void gen_elementwise(Emit *e, const IrNode *n) {
    long long cnt = shape_count(&n->shape);
    int self = (int)(n - e->g->nodes.items);
    cg_line(e, "const float *x = %s;", buf_of(e, n->in[0]));
    if (n->op == IR_ADD)
        cg_line(e, "const float *x2 = %s;", buf_of(e, n->in[1]));
    cg_line(e, "float *y = %s;", buf_of(e, self));
    if (n->op == IR_BATCHNORM) {
        long long C = n->shape.d[0], hw = cnt / C;
        cg_line(e, "const float *g = %s, *be = %s, *mu = %s, *var = %s;", param_of(e, n->param[0]),
             param_of(e, n->param[1]), param_of(e, n->param[2]), param_of(e, n->param[3]));
        cg_line(e, "for (long r = 0; r < batch; r++)");
        cg_line(e, "    for (long c = 0; c < %lld; c++) {", C);
        cg_line(e, "        float a = g[c] / sqrtf(var[c] + %s);", cg_flt(e, n->fval));
        cg_line(e, "        float sh = be[c] - mu[c] * a;");
        cg_line(e, "        for (long k = 0; k < %lld; k++)", hw);
        cg_line(e, "            y[(r * %lld + c) * %lld + k] = x[(r * %lld + c) * %lld + k] * a + sh;", C, hw, C, hw);
        cg_line(e, "    }");
        return;
    }
    cg_line(e, "for (long i = 0; i < batch * %lld; i++)", cnt);
    if (n->op == IR_ADD)
        cg_line(e, "    y[i] = x[i] + x2[i];");
    else if (n->op == IR_SCALE)
        cg_line(e, "    y[i] = x[i] * %s;", cg_flt(e, n->fval));
    else
        cg_line(e, "    y[i] = x[i];");
}

/* ---- neuron layers ---- */

static void gen_neuron(Emit *e, const IrNode *n) {
    const IrGraph *g = e->g;
    const NeuronProg *p = n->neuron;
    int self = (int)(n - g->nodes.items);
    long long cnt = shape_count(&n->shape);
    long long C = n->shape.d[0], hw = cnt / C;
    Arena *a = g->arena;
    /* only what reaches a root is emitted: the output, the states, records */
    int nroots = 1 + p->states.len + g->probes.len;
    int *roots = arena_alloc(a, sizeof(int) * (size_t)nroots);
    int *probe_inst = roots + 1 + p->states.len;
    roots[0] = p->emit;
    for (int k = 0; k < p->states.len; k++)
        roots[1 + k] = p->states.items[k].next;
    for (int k = 0; k < g->probes.len; k++) {
        const IrProbe *pr = &g->probes.items[k];
        int st;
        probe_inst[k] = pr->node == self && pr->var ? ir_neuron_var(g, self, pr->var, &st) : -1;
    }
    unsigned char *live = cg_eq_live(a, &p->code, roots, nroots);
    unsigned char *uni = cg_eq_uniform(a, p, &p->code);
    cg_line(e, "const float *x = %s;", buf_of(e, n->in[0]));
    cg_line(e, "float *y = %s;", buf_of(e, self));
    for (int k = 0; k < p->states.len; k++)
        cg_line(e, "float *s_%s = A + %lld;", p->states.items[k].name,
                (long long)(e->maxb * (n->state + cnt * k)));
    for (int k = 0; k < p->params.len; k++)
        cg_line(e, "const float *p_%s = %s;", p->params.items[k].name, param_of(e, p->params.items[k].param));
    for (int k = 0; k < g->probes.len; k++)
        if (probe_inst[k] >= 0)
            cg_line(e, "float *probe%d = A + %lld;", k, (long long)(e->maxb * g->probes.items[k].buf));
    cg_line(e, "(void)x;");
    for (int k = 0; k < p->params.len; k++)
        cg_line(e, "(void)p_%s;", p->params.items[k].name);
    CgLeaves lv;
    const char **st = arena_alloc(a, sizeof(char *) * (size_t)(p->states.len + 1));
    const char **pa = arena_alloc(a, sizeof(char *) * (size_t)(p->params.len + 1));
    for (int k = 0; k < p->states.len; k++)
        st[k] = arena_printf(a, "s_%s[i]", p->states.items[k].name);
    for (int k = 0; k < p->params.len; k++) {
        const NeuronParam *q = &p->params.items[k];
        pa[k] = q->gran == GRAN_LAYER    ? arena_printf(a, "p_%s[0]", q->name)
                : q->gran == GRAN_NEURON ? arena_printf(a, "p_%s[i %% %lld]", q->name, cnt)
                                         : arena_printf(a, "p_%s[i %% %lld / %lld]", q->name, cnt, hw);
    }
    lv.x = "x[i]";
    lv.state = st;
    lv.param = pa;
    lv.adj = NULL;
    /* instructions over constants and per-layer parameters: once, before the loop */
    cg_eq_emit(e, p, &p->code, live, uni, 1, &lv, 1);
    cg_line(e, "for (long i = 0; i < batch * %lld; i++) {", cnt);
    e->ind++;
    cg_eq_emit(e, p, &p->code, live, uni, 0, &lv, 1);
    for (int k = 0; k < p->states.len; k++)
        cg_line(e, "s_%s[i] = %s;", p->states.items[k].name, cg_eq_val(e, &p->code, p->states.items[k].next));
    cg_line(e, "y[i] = %s;", cg_eq_val(e, &p->code, p->emit));
    for (int k = 0; k < g->probes.len; k++)
        if (probe_inst[k] >= 0)
            cg_line(e, "probe%d[i] = %s;", k, cg_eq_val(e, &p->code, probe_inst[k]));
    e->ind--;
    cg_line(e, "}");
}

/* ---- the step and the API ---- */

static void gen_step(Emit *e) {
    const IrGraph *g = e->g;
    cg_line(e, "/* One step of the whole network, time-major. `hoisted` says that the");
    cg_line(e, "   values marked invariant already hold this sequence's result. */");
    cg_line(e, "static void %s_run_step(float *ws, long batch, const float *in, int hoisted)", e->p);
    cg_line(e, "{");
    e->ind++;
    if (!e->opt->embedded && g->param_floats > 0)
        cg_line(e, "const float *W = ws;");
    cg_line(e, "float *A = ws + %lld;", (long long)(e->opt->embedded ? 0 : g->param_floats));
    if (!e->opt->embedded && g->param_floats > 0)
        cg_line(e, "(void)W;");
    cg_line(e, "(void)A;");
    cg_line(e, "(void)in;");
    cg_line(e, "(void)hoisted;");
    int computes = 0;
    for (int i = 0; i < g->nodes.len; i++) {
        const IrNode *n = &g->nodes.items[i];
        computes |= !n->dead && n->op != IR_INPUT && n->alias < 0;
    }
    for (int k = 0; k < g->probes.len; k++)
        computes |= !g->probes.items[k].var;
    if (!computes)
        cg_line(e, "(void)batch; /* the network computes nothing: its output is its input */");
    for (int i = 0; i < g->nodes.len; i++) {
        const IrNode *n = &g->nodes.items[i];
        if (n->dead || n->op == IR_INPUT || n->op == IR_DELAY || n->alias >= 0)
            continue;
        cg_blank(e);
        cg_comment_node(e, i);
        cg_line(e, n->invariant ? "if (!hoisted) {" : "{");
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
        cg_line(e, "}");
    }
    /* records, before the delays move on: a record of prev(h) is the value
       this step read */
    for (int k = 0; k < g->probes.len; k++) {
        const IrProbe *pr = &g->probes.items[k];
        if (pr->var)
            continue;
        cg_line(e, "memcpy(A + %lld, %s, (size_t)batch * %lld * sizeof(float)); /* record %s */",
             (long long)(e->maxb * pr->buf), buf_of(e, pr->node), (long long)pr->count, pr->spec);
    }
    /* values of the step that must outlive it: each delay takes its source's
       value; a delay that reads another delay (prev(prev(h))) copies before
       that one moves on */
    unsigned char *done = arena_alloc(g->arena, (size_t)g->nodes.len + 1);
    for (int progress = 1; progress;) {
        progress = 0;
        for (int i = 0; i < g->nodes.len; i++) {
            const IrNode *n = &g->nodes.items[i];
            if (n->dead || n->op != IR_DELAY || done[i])
                continue;
            int waits = 0; /* another delay still reads this one */
            for (int j = 0; j < g->nodes.len; j++) {
                const IrNode *d = &g->nodes.items[j];
                waits |= !d->dead && d->op == IR_DELAY && !done[j] && j != i &&
                         (d->in[0] == i || g->nodes.items[d->in[0]].alias == i);
            }
            if (waits)
                continue;
            done[i] = 1;
            progress = 1;
            cg_blank(e);
            cg_comment_node(e, i);
            cg_line(e, "memcpy(A + %lld, %s, (size_t)batch * %lld * sizeof(float));",
                    (long long)(e->maxb * n->state), buf_of(e, n->in[0]), (long long)shape_count(&n->shape));
        }
    }
    e->ind--;
    cg_line(e, "}");
}

static void gen_reset(Emit *e) {
    const IrGraph *g = e->g;
    cg_line(e, "void %s_reset(void *workspace, int batch)", e->p);
    cg_line(e, "{");
    e->ind++;
    cg_line(e, "float *A = %s_ws(workspace) + %lld;", e->p, (long long)(e->opt->embedded ? 0 : g->param_floats));
    cg_line(e, "long n = batch < 1 ? 1 : batch > %s_MAX_BATCH ? %s_MAX_BATCH : batch;", e->P, e->P);
    int any = 0;
    for (int i = 0; i < g->nodes.len; i++) {
        const IrNode *n = &g->nodes.items[i];
        if (n->dead)
            continue;
        long long cnt = shape_count(&n->shape);
        any |= n->op == IR_DELAY || (n->op == IR_NEURON && n->neuron->states.len > 0);
        if (n->op == IR_DELAY)
            cg_line(e, "memset(A + %lld, 0, (size_t)n * %lld * sizeof(float)); /* %s */",
                 (long long)(e->maxb * n->state), cnt, n->name);
        if (n->op != IR_NEURON)
            continue;
        for (int k = 0; k < n->neuron->states.len; k++) {
            const NeuronState *s = &n->neuron->states.items[k];
            cg_line(e, "for (long i = 0; i < n * %lld; i++) /* %s.%s */", cnt, n->name, s->name);
            cg_line(e, "    A[%lld + i] = %s;", (long long)(e->maxb * (n->state + cnt * k)), cg_flt(e, s->init));
        }
    }
    if (!any)
        cg_line(e, "(void)A; /* nothing to reset */");
    if (!any)
        cg_line(e, "(void)n;");
    e->ind--;
    cg_line(e, "}");
}

static void gen_api(Emit *e) {
    const IrGraph *g = e->g;
    long long in_cnt = shape_count(&g->nodes.items[g->input].shape);
    long long out_cnt = shape_count(&g->nodes.items[g->output].shape);
    const char *outp = buf_of(e, g->output);
    cg_blank(e);
    gen_reset(e);
    cg_blank(e);
    cg_line(e, "void %s_step(void *workspace, int batch, const float *input, float *output)", e->p);
    cg_line(e, "{");
    e->ind++;
    cg_line(e, "float *ws = %s_ws(workspace);", e->p);
    cg_line(e, "float *A = ws + %lld;", (long long)(e->opt->embedded ? 0 : g->param_floats));
    cg_line(e, "long n = batch < 1 ? 1 : batch > %s_MAX_BATCH ? %s_MAX_BATCH : batch;", e->P, e->P);
    cg_line(e, "const float *in = input; /* an output may be the input itself */");
    cg_line(e, "%s_run_step(ws, n, in, 0);", e->p);
    cg_line(e, "(void)in;");
    cg_line(e, "if (output)");
    cg_line(e, "    memcpy(output, %s, (size_t)n * %lld * sizeof(float));", outp, out_cnt);
    cg_line(e, "(void)A;");
    e->ind--;
    cg_line(e, "}");
    cg_blank(e);
    cg_line(e, "void %s_forward(void *workspace, int batch, const float *input, float *output)", e->p);
    cg_line(e, "{");
    e->ind++;
    cg_line(e, "float *ws = %s_ws(workspace);", e->p);
    cg_line(e, "float *A = ws + %lld;", (long long)(e->opt->embedded ? 0 : g->param_floats));
    cg_line(e, "long n = batch < 1 ? 1 : batch > %s_MAX_BATCH ? %s_MAX_BATCH : batch;", e->P, e->P);
    cg_line(e, "long m = n * %lld;", out_cnt);
    cg_line(e, "%s_reset(workspace, (int)n);", e->p);
    cg_line(e, "for (int t = 0; t < %d; t++) {", g->timesteps);
    e->ind++;
    if (g->encoding == ENC_SEQUENCE)
        cg_line(e, "const float *in = input + (size_t)t * (size_t)n * %lld;", in_cnt);
    else
        cg_line(e, "const float *in = input;");
    cg_line(e, "const float *y = %s;", outp);
    cg_line(e, "%s_run_step(ws, n, in, t > 0);", e->p);
    const char *acc = g->readout == RO_STEPS ? NULL
                      : arena_printf(g->arena, "(A + %lld)", (long long)(e->maxb * g->readout_buf));
    switch (g->readout) {
    case RO_STEPS:
        cg_line(e, "memcpy(output + (size_t)t * (size_t)m, y, (size_t)m * sizeof(float));");
        break;
    case RO_COUNT:
    case RO_RATE:
    case RO_MEAN:
        cg_line(e, "for (long i = 0; i < m; i++)");
        cg_line(e, "    %s[i] = t == 0 ? y[i] : %s[i] + y[i];", acc, acc);
        break;
    case RO_LAST:
        cg_line(e, "if (t == %d)", g->timesteps - 1);
        cg_line(e, "    memcpy(%s, y, (size_t)m * sizeof(float));", acc);
        break;
    case RO_MAX:
        cg_line(e, "for (long i = 0; i < m; i++)");
        cg_line(e, "    %s[i] = t == 0 || y[i] > %s[i] ? y[i] : %s[i];", acc, acc, acc);
        break;
    }
    e->ind--;
    cg_line(e, "}");
    if (g->readout == RO_RATE || g->readout == RO_MEAN) {
        cg_line(e, "for (long i = 0; i < m; i++)");
        cg_line(e, "    output[i] = %s[i] / %s;", acc, cg_flt(e, (float)g->timesteps));
    } else if (g->readout != RO_STEPS)
        cg_line(e, "memcpy(output, %s, (size_t)m * sizeof(float));", acc);
    e->ind--;
    cg_line(e, "}");
    if (g->probes.len) {
        cg_blank(e);
        cg_line(e, "const float *%s_probe(void *workspace, int k)", e->p);
        cg_line(e, "{");
        e->ind++;
        cg_line(e, "static const long offset[%d] = {", g->probes.len);
        for (int k = 0; k < g->probes.len; k++)
            cg_line(e, "    %lld, /* %s */", (long long)(e->maxb * g->probes.items[k].buf),
                 g->probes.items[k].spec);
        cg_line(e, "};");
        cg_line(e, "if (k < 0 || k >= %d)", g->probes.len);
        cg_line(e, "    return 0;");
        cg_line(e, "return %s_ws(workspace) + %lld + offset[k];", e->p,
             (long long)(e->opt->embedded ? 0 : g->param_floats));
        e->ind--;
        cg_line(e, "}");
    }
}

static void gen_params(Emit *e) {
    const IrGraph *g = e->g;
    if (!g->params.len)
        return;
    cg_blank(e);
    cg_line(e, "const %s_param_info %s_params[%d] = {", e->p, e->p, g->params.len);
    for (int i = 0; i < g->params.len; i++) {
        const IrParam *q = &g->params.items[i];
        Buf s = {0};
        for (int k = 0; k < 4; k++)
            buf_printf(&s, k ? ", %lld" : "%lld", (long long)(k < q->shape.ndim ? q->shape.d[k] : 0));
        cg_line(e, "    {\"%s\", %d, {%s}, %lld, %lld, %d},", q->name, q->shape.ndim, s.data,
             (long long)q->off, (long long)q->count, q->learnable);
        buf_free(&s);
    }
    cg_line(e, "};");
    if (e->opt->embedded) {
        for (int i = 0; i < g->params.len; i++) {
            const IrParam *q = &g->params.items[i];
            cg_blank(e);
            cg_line(e, "static const float %s_w%d[%lld] = { /* %s */", e->p, i, (long long)q->count, q->name);
            Buf s = {0};
            for (int64_t k = 0; k < q->count; k++) {
                buf_printf(&s, "%s%s,", k % 8 ? " " : "    ", cg_flt(e, e->opt->embedded[q->off + k]));
                if (k % 8 == 7 || k == q->count - 1) {
                    cg_line(e, "%s", s.data);
                    s.len = 0;
                    s.data[0] = 0;
                }
            }
            buf_free(&s);
            cg_line(e, "};");
        }
        return;
    }
    /* loading and initialization */
    cg_blank(e);
    cg_line(e, "/* Weight files: see docs/weights.md. The loader below is runtime/snnrt_stload.inc. */");
    buf_printf(e->b, "%.*s", (int)snnrt_stload_inc_len, snnrt_stload_inc);
    cg_blank(e);
    cg_line(e, "int %s_load_weights(void *workspace, const char *path, int allow_missing, char *err, size_t errlen)", e->p);
    cg_line(e, "{");
    e->ind++;
    cg_line(e, "float *ws = %s_ws(workspace);", e->p);
    cg_line(e, "snnrt_st_want want[%d];", g->params.len);
    cg_line(e, "unsigned char found[%d];", g->params.len);
    cg_line(e, "for (int i = 0; i < %d; i++) {", g->params.len);
    cg_line(e, "    want[i].name = %s_params[i].name;", e->p);
    cg_line(e, "    want[i].ndim = %s_params[i].ndim;", e->p);
    cg_line(e, "    want[i].shape = %s_params[i].shape;", e->p);
    cg_line(e, "    want[i].dst = ws + %s_params[i].offset;", e->p);
    cg_line(e, "}");
    cg_line(e, "return snnrt_st_load(path, want, %d, allow_missing, found, err, errlen);", g->params.len);
    e->ind--;
    cg_line(e, "}");
    /* the random draws, only where a weight or bias needs them */
    int random = 0;
    for (int i = 0; i < g->params.len; i++)
        random |= g->params.items[i].kind == PK_WEIGHT || g->params.items[i].kind == PK_BIAS;
    cg_blank(e);
    if (random) {
        cg_line(e, "/* splitmix64: a counter-based generator, the same on every target. */");
        cg_line(e, "static float %s_uniform(unsigned long long *state)", e->p);
        cg_line(e, "{");
        cg_line(e, "    unsigned long long z = (*state += 0x9E3779B97F4A7C15ULL);");
        cg_line(e, "    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;");
        cg_line(e, "    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;");
        cg_line(e, "    z ^= z >> 31;");
        cg_line(e, "    return (float)(z >> 40) * (1.0f / 16777216.0f);");
        cg_line(e, "}");
        cg_blank(e);
    }
    cg_line(e, "void %s_init_weights(void *workspace, unsigned long long seed)", e->p);
    cg_line(e, "{");
    e->ind++;
    cg_line(e, "float *ws = %s_ws(workspace);", e->p);
    if (random)
        cg_line(e, "unsigned long long st = seed;");
    else
        cg_line(e, "(void)seed; /* no weight or bias to draw */");
    for (int i = 0; i < g->params.len; i++) {
        const IrParam *q = &g->params.items[i];
        const char *what;
        switch (q->kind) {
        case PK_WEIGHT:
        case PK_BIAS: {
            float bound = 1.0f / sqrtf((float)q->fan_in);
            cg_line(e, "for (long i = 0; i < %lld; i++) /* %s: U(-1/sqrt(%lld), 1/sqrt(%lld)) */",
                 (long long)q->count, q->name, (long long)q->fan_in, (long long)q->fan_in);
            cg_line(e, "    ws[%lld + i] = (2.0f * %s_uniform(&st) - 1.0f) * %s;", (long long)q->off, e->p,
                 cg_flt(e, bound));
            continue;
        }
        case PK_ONES: what = "1.0f"; break;
        case PK_ZEROS: what = "0.0f"; break;
        default: what = cg_flt(e, q->init); break;
        }
        cg_line(e, "for (long i = 0; i < %lld; i++) /* %s */", (long long)q->count, q->name);
        cg_line(e, "    ws[%lld + i] = %s;", (long long)q->off, what);
    }
    e->ind--;
    cg_line(e, "}");
}

static void gen_header(Emit *e, Buf *h) {
    const IrGraph *g = e->g;
    Emit he = *e;
    he.b = h;
    Emit *x = &he;
    const char *P = e->P, *p = e->p;
    long long ws_floats = (e->opt->embedded ? 0 : g->param_floats) +
                          e->maxb * (g->persist_floats + g->pool_floats);
    cg_line(x, "/* %s.h: generated by snnc %s from %s. Do not edit.", p, SNNC_VERSION, cg_clean_name(e, g->source));
    cg_blank(x);
    cg_line(x, "   Network %s: %d timesteps, input %s (%s), output %s (readout %s).", g->name,
         g->timesteps, shape_str(g->arena, &g->nodes.items[g->input].shape),
         g->encoding == ENC_DIRECT ? "the same at every step" : "one per step",
         shape_str(g->arena, &g->nodes.items[g->output].shape), readout_names[g->readout]);
    cg_line(x, "   All functions take the workspace: WORKSPACE_SIZE bytes, aligned for float,");
    cg_line(x, "   %s. Nothing allocates. */",
         e->opt->static_ws ? "or NULL for the static one" : "provided by the caller");
    cg_line(x, "#ifndef %s_H", P);
    cg_line(x, "#define %s_H", P);
    cg_blank(x);
    cg_line(x, "#include <stddef.h>");
    cg_blank(x);
    cg_line(x, "#ifdef __cplusplus");
    cg_line(x, "extern \"C\" {");
    cg_line(x, "#endif");
    cg_blank(x);
    cg_line(x, "#define %s_TIMESTEPS %d", P, g->timesteps);
    cg_line(x, "#define %s_MAX_BATCH %lld /* forward and step take 1..MAX_BATCH samples */", P, (long long)e->maxb);
    cg_line(x, "#define %s_INPUT_SIZE %lld /* floats per sample (and step) */", P,
         (long long)shape_count(&g->nodes.items[g->input].shape));
    cg_line(x, "#define %s_INPUT_SEQUENCE %d /* 1: forward reads [T, batch, INPUT_SIZE]; 0: [batch, INPUT_SIZE] */",
         P, g->encoding == ENC_SEQUENCE);
    cg_line(x, "#define %s_OUTPUT_SIZE %lld /* floats per sample */", P,
         (long long)shape_count(&g->nodes.items[g->output].shape));
    cg_line(x, "#define %s_OUTPUT_STEPS %d /* 1: forward writes [T, batch, OUTPUT_SIZE]; 0: [batch, OUTPUT_SIZE] */",
         P, g->readout == RO_STEPS);
    cg_line(x, "#define %s_NUM_PARAMS %d", P, g->params.len);
    cg_line(x, "#define %s_NUM_PROBES %d", P, g->probes.len);
    cg_line(x, "#define %s_WORKSPACE_FLOATS %lldL", P, ws_floats);
    cg_line(x, "#define %s_WORKSPACE_SIZE (%s_WORKSPACE_FLOATS * sizeof(float)) /* bytes */", P, P);
    cg_blank(x);
    cg_line(x, "typedef struct %s_param_info {", p);
    cg_line(x, "    const char *name; /* tensor name in weight files */");
    cg_line(x, "    int ndim;");
    cg_line(x, "    long shape[4];");
    if (e->opt->embedded)
        cg_line(x, "    long offset; /* in floats, in the block of all parameters (embedded here) */");
    else
        cg_line(x, "    long offset; /* in floats from the start of the workspace */");
    cg_line(x, "    long count;");
    cg_line(x, "    int learnable; /* 0 for buffers, such as batchnorm's running statistics */");
    cg_line(x, "} %s_param_info;", p);
    if (g->params.len)
        cg_line(x, "extern const %s_param_info %s_params[%d];", p, p, g->params.len);
    cg_blank(x);
    if (!e->opt->embedded && g->params.len) {
        cg_line(x, "/* Load the parameters from a safetensors file (F32, or F64, F16, BF16 converted;");
        cg_line(x, "   names and shapes as in %s_params). With allow_missing, tensors absent from", p);
        cg_line(x, "   the file keep their value.");
        cg_line(x, "   Returns 0, or -1 with a message in err. */");
        cg_line(x, "int %s_load_weights(void *workspace, const char *path, int allow_missing, char *err, size_t errlen);", p);
        cg_line(x, "/* Initialize every parameter as PyTorch initializes its layer type, from a seed. */");
        cg_line(x, "void %s_init_weights(void *workspace, unsigned long long seed);", p);
    }
    cg_line(x, "/* Set every state to its initial value (the start of a sequence). */");
    cg_line(x, "void %s_reset(void *workspace, int batch);", p);
    cg_line(x, "/* One step: input [batch, INPUT_SIZE] -> output [batch, OUTPUT_SIZE] (may be NULL). */");
    cg_line(x, "void %s_step(void *workspace, int batch, const float *input, float *output);", p);
    cg_line(x, "/* A whole sequence from the initial state: T steps and the readout. */");
    cg_line(x, "void %s_forward(void *workspace, int batch, const float *input, float *output);", p);
    if (g->probes.len) {
        cg_line(x, "/* The recorded values of the last step, [batch, size] each:");
        for (int k = 0; k < g->probes.len; k++)
            cg_line(x, "   %d: %s (%lld floats per sample)", k, g->probes.items[k].spec,
                 (long long)g->probes.items[k].count);
        cg_line(x, "*/");
        cg_line(x, "const float *%s_probe(void *workspace, int k);", p);
    }
    if (g->train)
        ctrain_header(x);
    cg_blank(x);
    cg_line(x, "#ifdef __cplusplus");
    cg_line(x, "}");
    cg_line(x, "#endif");
    cg_blank(x);
    cg_line(x, "#endif");
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
    cg_line(&e, "/* %s.c: generated by snnc %s from %s. Do not edit.", lo, SNNC_VERSION, cg_clean_name(&e, g->source));
    cg_line(&e, "   Portable C99; build with: cc -std=c99 -O2 -c %s.c (link with -lm). */", lo);
    cg_line(&e, "#include \"%s.h\"", lo);
    cg_blank(&e);
    cg_line(&e, "#include <math.h>");
    cg_line(&e, "#include <string.h>");
    cg_blank(&e);
    if (opt->static_ws) {
        cg_line(&e, "static float %s_static_ws[%s_WORKSPACE_FLOATS];", lo, up);
        cg_blank(&e);
        cg_line(&e, "static float *%s_ws(void *workspace)", lo);
        cg_line(&e, "{");
        cg_line(&e, "    return workspace ? (float *)workspace : %s_static_ws;", lo);
        cg_line(&e, "}");
    } else {
        cg_line(&e, "static float *%s_ws(void *workspace)", lo);
        cg_line(&e, "{");
        cg_line(&e, "    return (float *)workspace;");
        cg_line(&e, "}");
    }
    gen_params(&e);
    cg_blank(&e);
    gen_step(&e);
    gen_api(&e);
    if (g->train && ctrain_generate(&e) < 0)
        return -1;
    return 2;
}
