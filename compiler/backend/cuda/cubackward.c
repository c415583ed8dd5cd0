/*
 * cubackward.c: the CUDA target's backward kernels, for the training plan.
 *
 * Each node that the training needs gets a host function
 * `<net>_train_bwdN(ws, B, from, to, dx, [doutput,] [dinput,] st, blas)`
 * (the caller's gradients where the plan says so, IrBufs.gext), called by
 * <net>_train_backward over the schedule in reverse (cutrain.c) with the
 * same ranges and the same dx (which inputs need their gradient) as the
 * portable target's backward kernels (compiler/backend/c/), and adding to
 * the same gradient buffers of the same plan:
 *   - a neuron layer is one kernel, a thread per neuron, that runs the
 *     steps of the range in reverse with the adjoints of its states in
 *     registers, recomputing each step from the state stored at its start
 *     and its input: the instructions the autodiff pass derived from the
 *     model's equations (cg_eq_emit), so every built-in and user-written
 *     model and every surrogate work. Each parameter's contribution is
 *     summed per neuron in double, in the portable target's order; the API
 *     adds the neurons up afterwards;
 *   - a dense layer is two cuBLAS products, dL/dw += gy^T x and dL/dx +=
 *     gy w, and the bias gradient a kernel of a thread per output that
 *     adds its rows in order (the portable target's order);
 *   - add, scale, identity, dropout and prev a kernel of a thread per
 *     element over the steps, in the portable target's order;
 *   - pools a kernel of a thread per (sample, channel) plane, and batch
 *     normalization (its training forward too) a kernel of a thread per
 *     channel, each running the portable target's loops in its order.
 * The convolution's backward is with its forward (cukernels.c): im2col,
 * two cuBLAS products per group and col2im at every step.
 */
#include "cuda.h"

static const IrNode *node(Emit *e, int i) { return &e->g->nodes.items[i]; }
static long long count(Emit *e, int i) { return shape_count(&node(e, i)->shape); }
static const char *fmt(Emit *e, const char *f, long long v) { return arena_printf(e->g->arena, f, v); }
static int64_t align16(int64_t x) { return (x + 15) & ~(int64_t)15; }

/* ---- neuron layers: a thread per neuron, the steps in reverse ---- */

void cu_neuron_bwd(TargetEmitter *em, const IrPlan *P, int i) {
    Emit *e = &em->e;
    const IrGraph *g = e->g;
    const IrNode *x = node(e, i);
    const NeuronProg *p = x->neuron;
    const NeuronGrad *gr = p->grad;
    const IrBufs *b = &P->at[i];
    int in = x->in[0];
    long long cnt = count(e, i);
    Arena *a = g->arena;
    /* the leaves: the states at the start of step t read where they are
       stored (s0[i], ...); the adjoints: dL/dy of the step (gy[i]) and
       those of the states carried from the step after, in registers */
    CgLeaves lv;
    cu_neuron_leaves(e, i, &lv);
    const char **state = arena_alloc(a, sizeof(char *) * (size_t)(p->states.len + 1));
    const char **adj = arena_alloc(a, sizeof(char *) * (size_t)(p->states.len + 2));
    adj[0] = "gy[i]";
    for (int k = 0; k < p->states.len; k++) {
        state[k] = b->shalf ? arena_printf(a, "%s_from16(s%d[i])", e->p, k) : arena_printf(a, "s%d[i]", k);
        adj[1 + k] = arena_printf(a, "ds%d", k);
    }
    lv.state = state;
    lv.adj = adj;
    int dx = P->at[in].needgrad && gr->dx >= 0;
    int nroots = 1 + p->states.len + p->params.len;
    int *roots = arena_alloc(a, sizeof(int) * (size_t)(nroots + 1));
    roots[0] = dx ? gr->dx : -1;
    for (int k = 0; k < p->states.len; k++)
        roots[1 + k] = gr->dstate[k];
    for (int k = 0; k < p->params.len; k++)
        roots[1 + p->states.len + k] = gr->dparam[k];
    unsigned char *live = cg_eq_live(a, &gr->code, roots, nroots);
    unsigned char *lev = cg_eq_levels(a, p, &gr->code, P->at[in].inv);
    /* what the live instructions read: x, each state, dL/dy */
    int reads_x = 0, reads_gy = 0;
    unsigned char *reads_s = arena_alloc(a, (size_t)p->states.len + 1);
    for (int k = 0; k < gr->code.len; k++) {
        const EqInst *q = &gr->code.items[k];
        if (!live[k])
            continue;
        reads_x |= q->op == EQ_INPUT;
        reads_gy |= q->op == EQ_ADJ && q->idx == 0;
        if (q->op == EQ_STATE)
            reads_s[q->idx] = 1;
    }

    const char *n = fmt(e, "B * %lld", cnt);
    cu_open_kernel(e, P, i, 0, n);
    for (int k = 0; k < p->params.len; k++)
        cg_line(e, "const float *p%d = %s; /* %s */", k, cp_param(e, p->params.items[k].param),
                g->params.items[p->params.items[k].param].name);
    for (int k = 0; k < p->params.len; k++)
        cg_line(e, "(void)p%d;", k);
    for (int k = 0; k < p->params.len; k++)
        if (gr->dparam[k] >= 0) {
            cg_line(e, "double *dp%d = (double *)(void *)(%s); /* per neuron */", k,
                    cp_ws(e, P, b->pacc + (int64_t)k * align16(2 * e->maxb * cnt)));
            cg_line(e, "double a%d = dp%d[i];", k, k);
        }
    for (int k = 0; k < p->states.len; k++)
        cg_line(e, "float ds%d = (%s)[i]; /* dL/d%s carried from the step after */", k,
                cp_ws(e, P, b->dstate + (int64_t)k * e->maxb * cnt), p->states.items[k].name);
    if (reads_x && P->at[in].inv)
        cg_line(e, "const float *x = %s; /* the same at every step */", cp_at(e, P, in, 'v', "0"));
    cg_eq_emit(e, p, &gr->code, live, lev, CG_LEVEL_LAYER, &lv, 0);
    cg_eq_emit(e, p, &gr->code, live, lev, CG_LEVEL_NEURON, &lv, 0);
    cg_line(e, "for (int t = to - 1; t >= from; t--) {");
    e->ind++;
    if (reads_x && !P->at[in].inv)
        cg_line(e, "const float *x = %s;", cp_at(e, P, in, 'v', "t"));
    for (int k = 0; k < p->states.len; k++)
        if (reads_s[k])
            cg_line(e, "const %s *s%d = %s; /* %s at the start of the step */", b->shalf ? "uint16_t" : "float", k,
                    cu_state_at(e, P, i, k, "t"), p->states.items[k].name);
    if (reads_gy)
        cg_line(e, "const float *gy = %s;", cp_at(e, P, i, 'g', "t"));
    cg_eq_emit(e, p, &gr->code, live, lev, CG_LEVEL_STEP, &lv, 0);
    if (dx) {
        /* set where the gradient is written over x (x[i] was read above) */
        cg_line(e, "if (flag) /* dL/dx */");
        cg_line(e, "    (%s)[i] %s= %s;", cp_at(e, P, in, 'g', "t"), P->at[in].gover ? "" : "+",
                cg_eq_val(e, &gr->code, gr->dx));
    }
    for (int k = 0; k < p->states.len; k++)
        cg_line(e, "ds%d = %s;", k, gr->dstate[k] >= 0 ? cg_eq_val(e, &gr->code, gr->dstate[k]) : "0.0f");
    for (int k = 0; k < p->params.len; k++)
        if (gr->dparam[k] >= 0)
            cg_line(e, "a%d += %s;", k, cg_eq_val(e, &gr->code, gr->dparam[k]));
    e->ind--;
    cg_line(e, "}");
    for (int k = 0; k < p->states.len; k++)
        cg_line(e, "(%s)[i] = ds%d;", cp_ws(e, P, b->dstate + (int64_t)k * e->maxb * cnt), k);
    for (int k = 0; k < p->params.len; k++)
        if (gr->dparam[k] >= 0)
            cg_line(e, "dp%d[i] = a%d;", k, k);
    cp_close(e, NULL);
    cu_host_of_kernel(e, P, i, 0, n);
}

/* ---- dense layers: cuBLAS products, the bias gradient a sum per output ---- */

void cu_dense_bwd(TargetEmitter *em, const IrPlan *P, int i) {
    Emit *e = &em->e;
    const IrNode *x = node(e, i);
    int in = x->in[0];
    long long I = count(e, in), O = x->out;
    if (P->at[in].inv && !P->at[i].inv)
        ICE("a dense layer of a value stored once is stored at every step");
    cu_open_host(e, P, i, 0);
    cg_line(e, "const float *w = %s;", cp_param(e, x->param[0]));
    cg_line(e, "float *dw = %s;", cp_grad(e, x->param[0]));
    cg_line(e, "const long rows = (long)(to - from) * B;");
    cg_line(e, "const float *gy = %s;", cp_at(e, P, i, 'g', "from"));
    if (x->bias)
        cg_line(e, "%s_LAUNCH(%lld, st, %s_colsum_k, (gy, %s, rows, %lld)); /* db += the rows of gy */", e->P, O, e->p,
                cp_grad(e, x->param[1]), O);
    if (P->at[in].bits) {
        /* the input's spikes as floats, a step at a time */
        cg_line(e, "float *xs = %s; /* scratch */", cp_ws(e, P, cu_train_unbits(e)));
        cg_line(e, "for (int t = from; t < to; t++) { /* dw += gy^T x, step by step */");
        cg_line(e, "    %s_LAUNCH(B * %lld, st, %s_unbits_k, (%s, xs, B * %lld));", e->P, I, e->p,
                cp_bits_at(e, P, in, "t"), I);
        cg_line(e, "    if (%s_gemm(blas, 1, 0, %lld, %lld, B, gy + (long)(t - from) * B * %lld, %lld, xs, %lld, dw, %lld, "
                   "1.0f) != 0)",
                e->p, O, I, O, O, I, I);
        cg_line(e, "        return -1;");
        cg_line(e, "}");
    } else {
        cg_line(e, "const float *xt = %s;", cp_at(e, P, in, 'v', "from"));
        cg_line(e, "if (%s_gemm(blas, 1, 0, %lld, %lld, rows, gy, %lld, xt, %lld, dw, %lld, 1.0f) != 0) /* dw += gy^T x */",
                e->p, O, I, O, I, I);
        cg_line(e, "    return -1;");
    }
    if (P->at[in].needgrad) {
        cg_line(e, "if (flag && %s_gemm(blas, 0, 0, rows, %lld, %lld, gy, %lld, w, %lld, %s, %lld, 1.0f) != 0) /* gx += gy w */",
                e->p, I, O, O, I, cp_at(e, P, in, 'g', "from"), I);
        cg_line(e, "    return -1;");
    }
    cg_line(e, "(void)w;");
    cg_line(e, "(void)flag;");
    cg_line(e, "(void)st;");
    cg_line(e, "return 0;");
    cu_close_host(e);
}

/* ---- elementwise: add, scale, identity, dropout ---- */

void cu_eltwise_bwd(TargetEmitter *em, const IrPlan *P, int i) {
    Emit *e = &em->e;
    const IrNode *x = node(e, i);
    const char *n = fmt(e, "B * %lld", count(e, i));
    int any = 0;
    for (int k = 0; k < x->nin; k++)
        any |= P->at[x->in[k]].needgrad != 0;
    cu_open_kernel(e, P, i, 0, n);
    if (any) {
        if (x->op == IR_DROPOUT)
            cg_line(e, "const float *m = %s;", cp_ws(e, P, P->at[i].mask));
        /* steps in ascending order: a gradient stored once sums its steps as
           a step-by-step run would */
        cg_line(e, "for (int t = from; t < to; t++) {");
        e->ind++;
        cg_line(e, "const float *gy = %s;", cp_at(e, P, i, 'g', "t"));
        for (int k = 0; k < x->nin; k++) {
            if (!P->at[x->in[k]].needgrad)
                continue;
            const char *gx = cp_at(e, P, x->in[k], 'g', "t");
            cg_line(e, "if (flag & %d)", 1 << k);
            switch (x->op) {
            case IR_SCALE: cg_line(e, "    (%s)[i] += gy[i] * %s;", gx, cg_flt(e, x->fval)); break;
            case IR_DROPOUT: cg_line(e, "    (%s)[i] += gy[i] * m[i];", gx); break;
            default: cg_line(e, "    (%s)[i] += gy[i];", gx); break;
            }
        }
        e->ind--;
        cg_line(e, "}");
    }
    cp_close(e, NULL);
    cu_host_of_kernel(e, P, i, 0, n);
}

/* ---- prev(): the gradient of step t goes to the source's step t - 1 ---- */

void cu_delay_bwd(TargetEmitter *em, const IrPlan *P, int i) {
    Emit *e = &em->e;
    const IrNode *x = node(e, i);
    int s = x->in[0];
    const char *n = fmt(e, "B * %lld", count(e, i));
    cu_open_kernel(e, P, i, 0, n);
    if (P->at[s].needgrad) {
        cg_line(e, "for (int t = from; t < to; t++)");
        cg_line(e, "    if (t > 0 && flag)");
        cg_line(e, "        (%s)[i] += (%s)[i];", cp_at(e, P, s, 'g', "t - 1"), cp_at(e, P, i, 'g', "t"));
    }
    cp_close(e, NULL);
    cu_host_of_kernel(e, P, i, 0, n);
}

/* ---- pooling: a thread per (sample, channel) plane, the portable target's loops ---- */

void cu_pool_bwd(TargetEmitter *em, const IrPlan *P, int i) {
    Emit *e = &em->e;
    const IrNode *x = node(e, i);
    int in = x->in[0], mx = x->op == IR_MAXPOOL;
    PoolDims d = cp_pool_dims(e, P, x);
    const char *n = fmt(e, "B * %lld", d.C);
    cu_open_kernel(e, P, i, 0, n);
    if (P->at[in].needgrad) {
        cg_line(e, "const long rc = i;");
        cg_line(e, "for (int t = from; t < to && flag; t++) {");
        e->ind++;
        if (mx && P->at[in].bits)
            cg_line(e, "const uint32_t *xt = %s; /* spikes, 32 to a word */", cp_bits_at(e, P, in, "t"));
        else if (mx)
            cg_line(e, "const float *xt = %s;", cp_at(e, P, in, 'v', "t"));
        cg_line(e, "const float *gyt = %s;", cp_at(e, P, i, 'g', "t"));
        cg_line(e, "float *gx = %s;", cp_at(e, P, in, 'g', "t"));
        cg_line(e, "long oy, ox, ky, kx;");
        cg_line(e, "for (oy = 0; oy < %lld; oy++)", d.OH);
        cg_line(e, "    for (ox = 0; ox < %lld; ox++) {", d.OW);
        e->ind += 2;
        if (mx) {
            cg_line(e, "float acc = -INFINITY;");
            cg_line(e, "long arg = -1;");
        }
        cg_line(e, "const float d = gyt[(rc * %lld + oy) * %lld + ox];", d.OH, d.OW);
        cp_pool_window(e, x, &d, 1, arena_printf(e->g->arena, "gx[%s] += d / %s;", d.at, d.area));
        if (mx) {
            cg_line(e, "if (arg >= 0) /* the first largest */");
            cg_line(e, "    gx[arg] += d;");
        }
        e->ind -= 2;
        cg_line(e, "    }");
        e->ind--;
        cg_line(e, "}");
    }
    cp_close(e, NULL);
    cu_host_of_kernel(e, P, i, 0, n);
}

/* ---- batch normalization: a thread per channel, the portable target's loops ---- */

void cu_batchnorm_train_fwd(Emit *e, const IrPlan *P, int i) {
    const IrNode *x = node(e, i);
    int in = x->in[0];
    long long C = x->shape.d[0];
    const char *n = fmt(e, "%lld", C);
    cu_open_kernel(e, P, i, 1, n);
    cg_line(e, "const long c = i, rows = (long)(to - from) * B;");
    cg_line(e, "const float *gamma = %s, *beta = %s;", cp_param(e, x->param[0]), cp_param(e, x->param[1]));
    cg_line(e, "float *rmean = %s, *rvar = %s;", cp_param(e, x->param[2]), cp_param(e, x->param[3]));
    cg_line(e, "const float *xw = %s;", cp_at(e, P, in, 'v', "from"));
    cg_line(e, "float *yw = %s;", cp_at(e, P, i, 'v', "from"));
    cg_line(e, "float *mean = %s, *istd = %s;", cp_ws(e, P, P->at[i].stat), cp_ws(e, P, P->at[i].stat + C));
    cp_batchnorm_channel(e, P, i, "flag");
    cp_close(e, NULL);
    cu_host_of_kernel(e, P, i, 1, n);
}

void cu_batchnorm_bwd(TargetEmitter *em, const IrPlan *P, int i) {
    Emit *e = &em->e;
    const IrNode *x = node(e, i);
    int in = x->in[0];
    long long C = x->shape.d[0];
    const char *n = fmt(e, "%lld", C);
    cu_open_kernel(e, P, i, 0, n);
    cg_line(e, "const long c = i, rows = (long)(to - from) * B;");
    cg_line(e, "const float *gamma = %s;", cp_param(e, x->param[0]));
    cg_line(e, "float *dgamma = %s, *dbeta = %s;", cp_grad(e, x->param[0]), cp_grad(e, x->param[1]));
    cg_line(e, "const float *mean = %s, *istd = %s;", cp_ws(e, P, P->at[i].stat), cp_ws(e, P, P->at[i].stat + C));
    cg_line(e, "const float *xw = %s;", cp_at(e, P, in, 'v', "from"));
    cg_line(e, "const float *gy = %s;", cp_at(e, P, i, 'g', "from"));
    cp_batchnorm_channel_bwd(e, P, i, "flag", cp_at(e, P, in, 'g', "from"));
    if (!P->at[in].needgrad)
        cg_line(e, "(void)gamma, (void)cnt;");
    cp_close(e, NULL);
    cu_host_of_kernel(e, P, i, 0, n);
}
