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
 *     gy w, and the bias gradient the sums of gy's columns in parts of
 *     its rows, a thread per (part, column), then a thread per column
 *     adding its parts (in double);
 *   - add, scale, identity, dropout and prev a kernel of a thread per
 *     element over the steps, in the portable target's order;
 *   - pools a kernel of a thread per input element, which gathers what
 *     the portable target's loops add to it, in their order;
 *   - batch normalization (its training forward too) sums each channel in
 *     parts, a thread per (channel, part), then a thread per channel adds
 *     the parts, then a thread per element writes y or dL/dx: the portable
 *     target's formulas in double, the terms of its sums in another order.
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
    if (reads_x && P->at[in].vhalf) {
        cg_line(e, "const uint16_t *x = %s; /* a product in 16 bits, its gradient over it */", cp_half_at(e, P, in, "t"));
        lv.x = arena_printf(a, "%s_from16(x[i])", e->p);
    } else if (reads_x && !P->at[in].inv)
        cg_line(e, "const float *x = %s;", cp_at(e, P, in, 'v', "t"));
    for (int k = 0; k < p->states.len; k++)
        if (reads_s[k])
            cg_line(e, "const %s *s%d = %s; /* %s at the start of the step */", b->shalf ? "uint16_t" : "float", k,
                    cu_state_at(e, P, i, k, "t"), p->states.items[k].name);
    if (reads_gy)
        cg_line(e, "const float *gy = %s;", cp_at(e, P, i, 'g', "t"));
    cg_eq_emit(e, p, &gr->code, live, lev, CG_LEVEL_STEP, &lv, 0);
    if (dx && P->at[in].vhalf) { /* set over x, in 16 bits (x[i] was read above) */
        cg_line(e, "if (flag) /* dL/dx */");
        cg_line(e, "    (%s)[i] = %s_to16(%s);", cp_half_at(e, P, in, "t"), e->p,
                cg_eq_val(e, &gr->code, gr->dx));
    } else if (dx) {
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
    if (P->at[i].vhalf) {
        cu_half_dense_bwd(e, P, i);
        return;
    }
    cu_open_host(e, P, i, 0);
    if (P->at[in].needgrad) /* gx = gy w (nvcc calls a variable only cast to void unused) */
        cg_line(e, "const float *w = %s;", cu_param_host(e, x->param[0]));
    cg_line(e, "float *dw = %s;", cp_grad(e, x->param[0]));
    cg_line(e, "const long rows = (long)(to - from) * B;");
    cg_line(e, "const float *gy = %s;", cp_at(e, P, i, 'g', "from"));
    if (x->bias) { /* db += the rows of gy, in parts */
        long long K = cu_parts(e->maxb * e->g->timesteps, O);
        cg_line(e, "double *part = (double *)(void *)(ws + %lld);", (long long)cp_scratch(e, P));
        cg_line(e, "%s_LAUNCH(%lld, st, %s_colpart_k, (gy, part, rows, %lld, %lld)); /* db */", e->P, O * K, e->p, O, K);
        cg_line(e, "%s_LAUNCH(%lld, st, %s_colsum_k, (part, %s, %lld, %lld));", e->P, O, e->p, cp_grad(e, x->param[1]),
                O, K);
    }
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

/* ---- pooling: a thread per input element, gathering the windows that read it ---- */

/* "v + k", "v - k" or "v" */
static const char *plus(Emit *e, const char *v, int k) {
    return k ? arena_printf(e->g->arena, "%s %c %d", v, k < 0 ? '-' : '+', k < 0 ? -k : k) : v;
}

/* Thread i owns input element i of a step and adds, in the order (oy, ox)
   of the output windows that cover it, what the portable target's walk
   over the plane adds to it: the same sums in the same order, without two
   threads writing one element. A max pool's window finds its first largest
   input again, from the input (bits included), and passes d on where that
   is element i. */
void cu_pool_bwd(TargetEmitter *em, const IrPlan *P, int i) {
    Emit *e = &em->e;
    const IrNode *x = node(e, i);
    int in = x->in[0], mx = x->op == IR_MAXPOOL;
    PoolDims d = cp_pool_dims(e, P, x);
    const char *n = fmt(e, "B * %lld", d.C * d.H * d.W);
    cu_open_kernel(e, P, i, 0, n);
    if (P->at[in].needgrad) {
        int kh = x->kernel[0], kw = x->kernel[1], sh = x->stride[0], sw = x->stride[1];
        cg_line(e, "const long rc = i / %lld, py = i / %lld %% %lld, px = i %% %lld;", d.H * d.W, d.W, d.H, d.W);
        /* the windows that hold row py: oy from ceil((py + pad - kh + 1) / sh) to (py + pad) / sh */
        const char *ly = plus(e, "py", x->pad[0] - kh + 1), *lx = plus(e, "px", x->pad[1] - kw + 1);
        const char *hy = plus(e, "py", x->pad[0]), *hx = plus(e, "px", x->pad[1]);
        cg_line(e, "/* window (oy, ox) reads pixel (py, px) where ly <= oy * %d <= %s and lx <= ox * %d <= %s */", sh, hy,
                sw, hx);
        cg_line(e, "const long ly = %s, lx = %s;", ly, lx);
        cg_line(e, "const long oy0 = ly > 0 ? (ly + %d) / %d : 0, ox0 = lx > 0 ? (lx + %d) / %d : 0;", sh - 1, sh,
                sw - 1, sw);
        cg_line(e, "const long oy1 = (%s) / %d < %lld ? (%s) / %d : %lld;", hy, sh, d.OH - 1, hy, sh, d.OH - 1);
        cg_line(e, "const long ox1 = (%s) / %d < %lld ? (%s) / %d : %lld;", hx, sw, d.OW - 1, hx, sw, d.OW - 1);
        cg_line(e, "for (int t = from; t < to && flag; t++) {");
        e->ind++;
        if (mx && P->at[in].bits)
            cg_line(e, "const uint32_t *xt = %s; /* spikes, 32 to a word */", cp_bits_at(e, P, in, "t"));
        else if (mx)
            cg_line(e, "const float *xt = %s;", cp_at(e, P, in, 'v', "t"));
        cg_line(e, "const float *gyt = %s;", cp_at(e, P, i, 'g', "t"));
        cg_line(e, "float *gx = %s;", cp_at(e, P, in, 'g', "t"));
        cg_line(e, "long oy, ox;");
        cg_line(e, "for (oy = oy0; oy <= oy1; oy++)");
        cg_line(e, "    for (ox = ox0; ox <= ox1; ox++) {");
        e->ind += 2;
        cg_line(e, "const float d = gyt[(rc * %lld + oy) * %lld + ox];", d.OH, d.OW);
        if (mx) {
            cg_line(e, "float acc = -INFINITY;");
            cg_line(e, "long arg = -1, ky, kx;");
            cp_pool_window(e, x, &d, 1, NULL);
            cg_line(e, "if (arg == i) /* the first largest */");
            cg_line(e, "    gx[i] += d;");
        } else
            cg_line(e, "gx[i] += d / %s;", d.area);
        e->ind -= 2;
        cg_line(e, "    }");
        e->ind--;
        cg_line(e, "}");
    }
    cp_close(e, NULL);
    cu_host_of_kernel(e, P, i, 0, n);
}

/* ---- batch normalization: a channel's sums in parts, then a thread per element ---- */

long long cu_parts(long long terms, long long sums) {
    long long k = 1, most = 16384 / sums;
    while (k * k < terms && k < most) /* the square root: a thread's terms as many as the parts */
        k++;
    return k;
}

long long cu_bn_parts(Emit *e, const IrNode *x) {
    long long C = x->shape.d[0];
    return cu_parts(e->maxb * e->g->timesteps * (shape_count(&x->shape) / C), C);
}

int64_t cu_bn_scratch(Emit *e, const IrNode *x) {
    long long C = x->shape.d[0];
    return align16(4 * cu_bn_parts(e, x) * C) + align16(3 * C);
}

/* The scratch of node i's sums: K x C doubles, or pairs of them. */
static void bn_parts_decl(Emit *e, const IrPlan *P) {
    cg_line(e, "double *part = (double *)(void *)(ws + %lld);", (long long)cp_scratch(e, P));
}

/* Opens the kernel of a thread per (channel c, part q) of node i, with
   the count of its channel's elements over the range and its input. */
static void bn_open_sum(Emit *e, const IrPlan *P, int i, int fwd, long long K) {
    const IrNode *x = node(e, i);
    long long C = x->shape.d[0], hw = count(e, i) / C;
    cu_open_part(e, P, i, fwd, "sum_", fmt(e, "%lld", C * K));
    cg_line(e, "const long c = i / %lld, q = i %% %lld, cnt = (long)(to - from) * B * %lld;", K, K, hw);
    cg_line(e, "const float *xw = %s;", cp_at(e, P, x->in[0], 'v', "from"));
    bn_parts_decl(e, P);
}

/* Opens the kernel of a thread per channel c of node i, with the count of
   its elements over the range (a double, as the portable target's). */
static void bn_open_stat(Emit *e, const IrPlan *P, int i, int fwd) {
    const IrNode *x = node(e, i);
    long long C = x->shape.d[0], hw = count(e, i) / C;
    cu_open_part(e, P, i, fwd, "stat_", fmt(e, "%lld", C));
    cg_line(e, "const long c = i;");
    cg_line(e, "const double cnt = (double)((long)(to - from) * B) * %lld;", hw);
    bn_parts_decl(e, P);
}

/* The kernel of the forward's partial sums, a thread per (channel, part):
   part q of channel c adds the elements q, q + K, ... of the channel's
   (to - from) B x hw (the rows' runs one after the other, so that a warp
   reads neighbours), in double: the values (flag 0), or the squares of
   their distances from the mean (flag 1). */
static void bn_sum_fwd(Emit *e, const IrPlan *P, int i, long long K) {
    const IrNode *x = node(e, i);
    long long C = x->shape.d[0], hw = count(e, i) / C;
    bn_open_sum(e, P, i, 1, K);
    cg_line(e, "const float m = flag ? (%s)[c] : 0.0f;", cp_ws(e, P, P->at[i].stat));
    cg_line(e, "double s = 0.0;");
    cg_line(e, "long j;");
    cg_line(e, "for (j = q; j < cnt; j += %lld) {", K);
    cg_line(e, "    const float v = xw[(j / %lld * %lld + c) * %lld + j %% %lld];", hw, C, hw, hw);
    cg_line(e, "    if (flag) {");
    cg_line(e, "        const double d = (double)v - m;");
    cg_line(e, "        s += d * d;");
    cg_line(e, "    } else");
    cg_line(e, "        s += v;");
    cg_line(e, "}");
    cg_line(e, "part[i] = s;");
    cp_close(e, NULL);
}

/* The kernel of a thread per channel that adds its K parts in order: the
   mean (flag 0), or the inverse deviation and the running statistics
   (flag 1), as the portable target computes them from its sums. */
static void bn_stat_fwd(Emit *e, const IrPlan *P, int i, long long K) {
    const IrNode *x = node(e, i);
    int in = x->in[0];
    long long C = x->shape.d[0];
    bn_open_stat(e, P, i, 1);
    cg_line(e, "float *rmean = %s, *rvar = %s;", cp_param(e, x->param[2]), cp_param(e, x->param[3]));
    cg_line(e, "float *mean = %s, *istd = %s;", cp_ws(e, P, P->at[i].stat), cp_ws(e, P, P->at[i].stat + C));
    cg_line(e, "double s = 0.0;");
    cg_line(e, "float m;");
    cg_line(e, "long q;");
    cg_line(e, "for (q = 0; q < %lld; q++)", K);
    cg_line(e, "    s += part[c * %lld + q];", K);
    cg_line(e, "if (!flag) {");
    cg_line(e, "    mean[c] = (float)(s / cnt);");
    cg_line(e, "    return;");
    cg_line(e, "}");
    cg_line(e, "m = mean[c];");
    cg_line(e, "istd[c] = (float)(1.0 / sqrt(s / cnt + %s));", cg_flt(e, x->fval));
    cg_line(e, "rmean[c] = 0.9f * rmean[c] + 0.1f * m;");
    if (P->at[in].inv) /* as the portable target: the unbiased variance counts all T copies */
        cg_line(e, "rvar[c] = 0.9f * rvar[c] + 0.1f * (float)(%d.0 * s / (%d.0 * cnt - 1.0));", e->g->timesteps,
                e->g->timesteps);
    else
        cg_line(e, "rvar[c] = 0.9f * rvar[c] + 0.1f * (float)(cnt > 1.0 ? s / (cnt - 1.0) : s);");
    cp_close(e, NULL);
}

/* Training's forward: with the batch's statistics (flag: training) over
   the range's steps, summed in K parts per channel (cu_bn_parts) and then
   per channel, all in double: the portable target's formulas, its sums'
   terms in another order; else with the running ones. Then y, a thread per
   element of a step over the range's rows. */
void cu_batchnorm_train_fwd(Emit *e, const IrPlan *P, int i) {
    const IrNode *x = node(e, i);
    int in = x->in[0];
    long long C = x->shape.d[0], hw = count(e, i) / C, K = cu_bn_parts(e, x);
    const char *n = fmt(e, "B * %lld", C * hw);
    bn_sum_fwd(e, P, i, K);
    bn_stat_fwd(e, P, i, K);
    cu_open_kernel(e, P, i, 1, n);
    cg_line(e, "const long c = i / %lld %% %lld, end = (long)(to - from) * B * %lld;", hw, C, C * hw);
    cg_line(e, "const float *gamma = %s, *beta = %s;", cp_param(e, x->param[0]), cp_param(e, x->param[1]));
    cg_line(e, "const float *rmean = %s, *rvar = %s;", cp_param(e, x->param[2]), cp_param(e, x->param[3]));
    cg_line(e, "const float *mean = %s, *istd = %s;", cp_ws(e, P, P->at[i].stat), cp_ws(e, P, P->at[i].stat + C));
    /* y in 16 bits where its gradient lies over it (cuhalf.c) */
    const char *to16 = P->at[i].vhalf ? arena_printf(e->g->arena, "%s_to16", e->p) : "";
    cg_line(e, "const float *xw = %s;", cp_at(e, P, in, 'v', "from"));
    if (P->at[i].vhalf)
        cg_line(e, "uint16_t *yw = %s; /* in 16 bits */", cp_half_at(e, P, i, "from"));
    else
        cg_line(e, "float *yw = %s;", cp_at(e, P, i, 'v', "from"));
    cg_line(e, "long o;");
    cg_line(e, "if (flag) {");
    cg_line(e, "    const float m = mean[c], is = istd[c];");
    cg_line(e, "    for (o = i; o < end; o += B * %lld)", C * hw);
    cg_line(e, "        yw[o] = %s((xw[o] - m) * is * gamma[c] + beta[c]);", to16);
    cg_line(e, "} else { /* as at inference */");
    cg_line(e, "    const float a = gamma[c] / sqrtf(rvar[c] + %s);", cg_flt(e, x->fval));
    cg_line(e, "    const float sh = beta[c] - rmean[c] * a;");
    cg_line(e, "    for (o = i; o < end; o += B * %lld)", C * hw);
    /* the input stored once: the same row of every step */
    cg_line(e, "        yw[o] = %s(xw[%s] * a + sh);", to16, P->at[in].inv && !P->at[i].inv ? "i" : "o");
    cg_line(e, "}");
    cp_close(e, NULL);
    cu_open_host(e, P, i, 1);
    cg_line(e, "if (flag) { /* the batch's mean, then its deviation */");
    e->ind++;
    for (int pass = 0; pass < 2; pass++) {
        cu_launch_part(e, P, i, 1, "sum_", fmt(e, "%lld", C * K), pass ? "1" : "0");
        cu_launch_part(e, P, i, 1, "stat_", fmt(e, "%lld", C), pass ? "1" : "0");
    }
    e->ind--;
    cg_line(e, "}");
    cu_launch(e, P, i, 1, n);
    cg_line(e, "(void)blas;");
    cg_line(e, "return 0;");
    cu_close_host(e);
}

/* The backward: dgamma += sum(g xhat), dbeta += sum(g) over the range (in
   K parts per channel, then per channel, in double) and, where the input
   needs its gradient and flag holds, gx += gamma istd (g - mean(g) - xhat
   mean(g xhat)), a thread per element of a step. The channel's three
   factors wait in scratch after the parts. */
void cu_batchnorm_bwd(TargetEmitter *em, const IrPlan *P, int i) {
    Emit *e = &em->e;
    const IrNode *x = node(e, i);
    int in = x->in[0], dx = P->at[in].needgrad;
    long long C = x->shape.d[0], hw = count(e, i) / C, K = cu_bn_parts(e, x);
    const char *n = fmt(e, "B * %lld", C * hw);
    const char *mean = cp_ws(e, P, P->at[i].stat), *istd = cp_ws(e, P, P->at[i].stat + C);
    const char *kf = arena_printf(e->g->arena, "ws + %lld", (long long)(cp_scratch(e, P) + align16(4 * K * C)));
    /* dL/dy in 16 bits where it lies over y (cuhalf.c) */
    const char *gy = P->at[i].vhalf ? arena_printf(e->g->arena, "const uint16_t *gy = %s; /* in 16 bits */",
                                                   cp_half_at(e, P, i, "from"))
                                    : arena_printf(e->g->arena, "const float *gy = %s;", cp_at(e, P, i, 'g', "from"));
    const char *from16 = P->at[i].vhalf ? arena_printf(e->g->arena, "%s_from16", e->p) : "";

    bn_open_sum(e, P, i, 0, K);
    cg_line(e, "%s", gy);
    cg_line(e, "const float m = (%s)[c], is = (%s)[c];", mean, istd);
    cg_line(e, "double sg = 0.0, sgx = 0.0;");
    cg_line(e, "long j;");
    cg_line(e, "for (j = q; j < cnt; j += %lld) {", K);
    cg_line(e, "    const long xi = (j / %lld * %lld + c) * %lld + j %% %lld;", hw, C, hw, hw);
    cg_line(e, "    const float g = %s(gy[xi]);", from16);
    cg_line(e, "    sg += g;");
    cg_line(e, "    sgx += (double)g * ((xw[xi] - m) * is);");
    cg_line(e, "}");
    cg_line(e, "part[2 * i] = sg;");
    cg_line(e, "part[2 * i + 1] = sgx;");
    cp_close(e, NULL);

    bn_open_stat(e, P, i, 0);
    cg_line(e, "float *dgamma = %s, *dbeta = %s;", cp_grad(e, x->param[0]), cp_grad(e, x->param[1]));
    cg_line(e, "double sg = 0.0, sgx = 0.0;");
    cg_line(e, "long q;");
    cg_line(e, "for (q = 0; q < %lld; q++) {", K);
    cg_line(e, "    sg += part[2 * (c * %lld + q)];", K);
    cg_line(e, "    sgx += part[2 * (c * %lld + q) + 1];", K);
    cg_line(e, "}");
    cg_line(e, "dgamma[c] += (float)sgx;");
    cg_line(e, "dbeta[c] += (float)sg;");
    if (dx) {
        cg_line(e, "{");
        cg_line(e, "    float *kc = %s + 3 * c;", kf);
        cg_line(e, "    kc[0] = (%s)[c] * (%s)[c];", cp_param(e, x->param[0]), istd);
        cg_line(e, "    kc[1] = (float)(sg / cnt);");
        cg_line(e, "    kc[2] = (float)(sgx / cnt);");
        cg_line(e, "}");
    } else
        cg_line(e, "(void)cnt;");
    cp_close(e, NULL);

    cu_open_kernel(e, P, i, 0, n);
    if (dx) {
        cg_line(e, "const long c = i / %lld %% %lld, end = (long)(to - from) * B * %lld;", hw, C, C * hw);
        cg_line(e, "const float m = (%s)[c], is = (%s)[c];", mean, istd);
        cg_line(e, "const float *kc = %s + 3 * c;", kf);
        cg_line(e, "const float *xw = %s;", cp_at(e, P, in, 'v', "from"));
        cg_line(e, "%s", gy);
        cg_line(e, "float *gx = %s;", cp_at(e, P, in, 'g', "from"));
        cg_line(e, "long o;");
        cg_line(e, "for (o = i; o < end; o += B * %lld) {", C * hw);
        cg_line(e, "    const float xh = (xw[o] - m) * is;");
        cg_line(e, "    gx[o] += kc[0] * (%s(gy[o]) - kc[1] - xh * kc[2]);", from16);
        cg_line(e, "}");
    }
    cp_close(e, NULL);

    cu_open_host(e, P, i, 0);
    cu_launch_part(e, P, i, 0, "sum_", fmt(e, "%lld", C * K), "flag");
    cu_launch_part(e, P, i, 0, "stat_", fmt(e, "%lld", C), "flag");
    if (dx) {
        cg_line(e, "if (flag)");
        e->ind++;
        cu_launch(e, P, i, 0, n);
        e->ind--;
    }
    cg_line(e, "(void)blas;");
    cg_line(e, "return 0;");
    cu_close_host(e);
}
