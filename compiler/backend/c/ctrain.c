/*
 * ctrain.c: the training code of the C back end (snnc compile --train).
 *
 * Training runs layer-major: each layer runs over all T steps at once,
 * storing its output for every step, so that a synaptic layer is one pass
 * over T x B rows (time batching) and a neuron layer one fused loop over
 * time. Layers on a recurrent loop (a prev() edge closes a cycle) run
 * time-major as a group: for each step, each layer of the group. The
 * backward runs the same schedule in reverse; a neuron layer's reverse
 * loop over time recomputes each step's values from the stored state at
 * the start of the step and runs the gradient code the autodiff pass
 * derived from the model's equations. Values that are the same at every
 * step (the hoist pass's invariant values, and the input with direct
 * encoding) are stored once, and the gradients that reach them from the T
 * steps are summed.
 *
 * Workspace (floats; every size scaled by the largest batch): the
 * parameters at the same offsets as in inference (so <net>_load_weights and
 * <net>_init_weights work on it), their gradients, then the stored values
 * of every layer, then everything the backward zeroes before it starts:
 * the gradients of the values, the adjoints of the neuron states carried
 * from step to step, and double-precision sums for neuron parameters.
 *
 * In training mode batchnorm normalizes with the statistics of the batch
 * over all steps and updates its running statistics (momentum 0.1, the
 * unbiased variance, as PyTorch does); dropout draws one mask per sequence,
 * the same at every step (SpikingJelly's convention for SNNs). In eval mode
 * both behave as at inference, and the forward's results equal the
 * inference code's bit for bit.
 */
#include <string.h>

#include "cgen.h"

typedef struct TNode {
    int inv;       /* stored once for all steps */
    int64_t n;     /* floats per sample and step */
    int64_t val;   /* stored values, (inv ? 1 : T) x maxb x n */
    int64_t grd;   /* their gradients, the same size */
    int64_t st;    /* neuron: per state, (T + 1) x maxb x n: the state at the start of each step */
    int64_t dst;   /* neuron: per state, maxb x n: the adjoint carried to the previous step */
    int64_t pacc;  /* neuron: per parameter, its count of doubles (2 floats each) */
    int64_t mask;  /* dropout: maxb x n */
    int64_t stat;  /* batchnorm: mean and 1/std per channel of the last training batch */
    int rg;        /* the gradient of the output is needed: 0 no, 1 yes, 2 only for the input's */
    int group;     /* schedule: index of its group (a strongly connected component) */
} TNode;

typedef struct Train {
    Emit *e;
    const IrGraph *g;
    TNode *t;
    int64_t vals, grads, end; /* regions */
    int *order;               /* nodes in schedule order */
    int *gstart;              /* group k holds order[gstart[k] .. gstart[k + 1]) */
    int ngroups;
    int64_t scratch;          /* floats of scratch, after everything */
    int gemm;                 /* the GEMM is used */
    int64_t pack_a, pack_b;   /* its packed panels */
    int64_t col, dcol;        /* conv: a step's im2col matrix [c][ky][kx][b][oy][ox], its gradient */
    int64_t obuf;             /* conv: a step's output or its gradient as [o][b][oy][ox] */
} Train;

static int64_t align16(int64_t x) { return (x + 15) & ~(int64_t)15; }

/* ---- schedule: strongly connected components in topological order ---- */

typedef struct Tarjan {
    const IrGraph *g;
    int *index, *low, *stack, *on, *comp;
    int next, sp, ncomp;
    VEC(int) *succ; /* successors of each node */
} Tarjan;

static void strong(Tarjan *T, int v) {
    T->index[v] = T->low[v] = T->next++;
    T->stack[T->sp++] = v;
    T->on[v] = 1;
    for (int k = 0; k < T->succ[v].len; k++) {
        int w = T->succ[v].items[k];
        if (T->index[w] < 0) {
            strong(T, w);
            if (T->low[w] < T->low[v])
                T->low[v] = T->low[w];
        } else if (T->on[w] && T->index[w] < T->low[v])
            T->low[v] = T->index[w];
    }
    if (T->low[v] == T->index[v]) {
        int w;
        do {
            w = T->stack[--T->sp];
            T->on[w] = 0;
            T->comp[w] = T->ncomp;
        } while (w != v);
        T->ncomp++;
    }
}

/* Groups in an order where every group comes after the groups it reads
   (Tarjan numbers components sinks first); nodes of a group in graph order,
   which is topological for same-step edges. */
static void schedule(Train *tr) {
    const IrGraph *g = tr->g;
    Arena *a = g->arena;
    int n = g->nodes.len;
    Tarjan T;
    memset(&T, 0, sizeof T);
    T.g = g;
    T.index = arena_alloc(a, sizeof(int) * (size_t)n);
    T.low = arena_alloc(a, sizeof(int) * (size_t)n);
    T.stack = arena_alloc(a, sizeof(int) * (size_t)n);
    T.on = arena_alloc(a, sizeof(int) * (size_t)n);
    T.comp = arena_alloc(a, sizeof(int) * (size_t)n);
    T.succ = arena_alloc(a, sizeof *T.succ * (size_t)n);
    for (int i = 0; i < n; i++) {
        T.index[i] = -1;
        const IrNode *x = &g->nodes.items[i];
        if (x->dead)
            continue;
        for (int k = 0; k < x->nin; k++)
            vec_push(a, &T.succ[x->in[k]], i);
    }
    for (int i = 0; i < n; i++)
        if (!g->nodes.items[i].dead && T.index[i] < 0)
            strong(&T, i);
    tr->order = arena_alloc(a, sizeof(int) * (size_t)n);
    tr->gstart = arena_alloc(a, sizeof(int) * (size_t)(T.ncomp + 1));
    int m = 0;
    for (int c = T.ncomp - 1; c >= 0; c--) {
        tr->gstart[T.ncomp - 1 - c] = m;
        for (int i = 0; i < n; i++)
            if (!g->nodes.items[i].dead && T.comp[i] == c) {
                tr->order[m++] = i;
                tr->t[i].group = T.ncomp - 1 - c;
            }
    }
    tr->gstart[T.ncomp] = m;
    tr->ngroups = T.ncomp;
}

/* ---- layout ---- */

static int has_learnable(const IrGraph *g, int i) {
    for (int k = 0; k < g->params.len; k++)
        if (g->params.items[k].node == i && g->params.items[k].learnable)
            return 1;
    return 0;
}

/* 1 beats 2 beats 0: see TNode.rg */
static int rg_join(int a, int b) {
    if (a == 1 || b == 1)
        return 1;
    return a == 2 || b == 2 ? 2 : 0;
}

static void layout(Train *tr) {
    const IrGraph *g = tr->g;
    int n = g->nodes.len;
    int64_t mb = tr->e->maxb, T = g->timesteps;
    for (int i = 0; i < n; i++) {
        const IrNode *x = &g->nodes.items[i];
        TNode *t = &tr->t[i];
        t->n = shape_count(&x->shape);
        t->inv = x->invariant || (x->op == IR_INPUT && g->encoding == ENC_DIRECT);
        if (!t->inv && !x->dead && x->nin && x->op != IR_NEURON && x->op != IR_DELAY) {
            /* a stateless layer of values stored once is stored once too,
               whether or not the hoist pass ran */
            int all = 1;
            for (int k = 0; k < x->nin; k++)
                all &= x->in[k] < i && tr->t[x->in[k]].inv;
            t->inv = all;
        }
        t->rg = x->op == IR_INPUT ? 2 : has_learnable(g, i);
    }
    /* which gradients are needed, to a fixpoint (recurrent edges) */
    for (int changed = 1; changed;) {
        changed = 0;
        for (int i = 0; i < n; i++) {
            const IrNode *x = &g->nodes.items[i];
            if (x->dead || x->op == IR_INPUT)
                continue;
            int r = tr->t[i].rg;
            for (int k = 0; k < x->nin; k++)
                r = rg_join(r, tr->t[x->in[k]].rg);
            if (r != tr->t[i].rg) {
                tr->t[i].rg = r;
                changed = 1;
            }
        }
    }
    int64_t off = 2 * align16(g->param_floats);
    tr->vals = off;
    for (int i = 0; i < n; i++) {
        const IrNode *x = &g->nodes.items[i];
        TNode *t = &tr->t[i];
        if (x->dead || x->alias >= 0)
            continue;
        t->val = off;
        off += align16((t->inv ? 1 : T) * mb * t->n);
        if (x->op == IR_NEURON) {
            t->st = off;
            off += align16((int64_t)x->neuron->states.len * (T + 1) * mb * t->n);
        }
        if (x->op == IR_DROPOUT) {
            t->mask = off;
            off += align16(mb * t->n);
        }
        if (x->op == IR_BATCHNORM) {
            t->stat = off;
            off += align16(2 * x->shape.d[0]);
        }
    }
    tr->grads = off;
    for (int i = 0; i < n; i++) {
        const IrNode *x = &g->nodes.items[i];
        TNode *t = &tr->t[i];
        if (x->dead || x->alias >= 0)
            continue;
        t->grd = off;
        off += align16((t->inv ? 1 : T) * mb * t->n);
        if (x->op == IR_NEURON) {
            const NeuronProg *p = x->neuron;
            t->dst = off;
            off += align16((int64_t)p->states.len * mb * t->n);
            t->pacc = off;
            for (int k = 0; k < p->params.len; k++)
                off += align16(2 * g->params.items[p->params.items[k].param].count);
        }
    }
    for (int i = 0; i < n; i++) { /* flatten shares its input's buffers */
        const IrNode *x = &g->nodes.items[i];
        if (!x->dead && x->alias >= 0) {
            tr->t[i].val = tr->t[x->alias].val;
            tr->t[i].grd = tr->t[x->alias].grd;
            tr->t[i].inv = tr->t[x->alias].inv;
        }
    }
    tr->end = off;
    /* scratch, after everything: the GEMM's packed panels (4 x 256 of A,
       256 x 256 of B) and, for convolutions, a step's im2col
       matrix over the whole batch, its gradient, and the output in the
       GEMM's layout */
    int64_t kmax = 0, col = 0, obuf = 0;
    for (int i = 0; i < n; i++) {
        const IrNode *x = &g->nodes.items[i];
        if (x->dead)
            continue;
        if (x->op == IR_DENSE) {
            int64_t in = tr->t[x->in[0]].n;
            int64_t k = in > x->out ? in : x->out;
            k = k > T * mb ? k : T * mb;
            kmax = k > kmax ? k : kmax;
        }
        if (x->op == IR_CONV2D) {
            const Shape *xs = &g->nodes.items[x->in[0]].shape;
            int64_t ckk = xs->d[0] / x->groups * x->kernel[0] * x->kernel[1];
            int64_t pix = x->shape.d[1] * x->shape.d[2];
            int64_t k = ckk > pix ? ckk : pix;
            k = k > x->out ? k : x->out;
            kmax = k > kmax ? k : kmax;
            int64_t c = xs->d[0] * x->kernel[0] * x->kernel[1] * pix * mb;
            col = c > col ? c : col;
            int64_t o = x->out * pix * mb;
            obuf = o > obuf ? o : obuf;
            /* the GEMMs of a step run over all samples: N and K reach B x pixels */
            kmax = pix * mb > kmax ? pix * mb : kmax;
        }
    }
    tr->gemm = kmax > 0;
    tr->pack_a = tr->end;
    tr->pack_b = tr->pack_a + align16(4 * 256);
    tr->col = tr->pack_b + align16(256 * 4 * 64);
    tr->dcol = tr->col + align16(col);
    tr->obuf = tr->dcol + align16(col);
    tr->scratch = tr->obuf + align16(obuf) - tr->end;
}

/* ---- kernels ---- */

/* "ws + OFF" */
static const char *at(Train *tr, int64_t off) {
    return arena_printf(tr->g->arena, "ws + %lld", (long long)off);
}

static const char *wparam(Train *tr, int param) {
    return at(tr, tr->g->params.items[param].off);
}

static const char *gparam(Train *tr, int param) {
    return at(tr, align16(tr->g->param_floats) + tr->g->params.items[param].off);
}

/* Time stride of node i's storage for a batch of B: 0 when stored once. */
static const char *tstride(Train *tr, int i) {
    if (tr->t[i].inv)
        return "0";
    return arena_printf(tr->g->arena, "B * %lld", (long long)tr->t[i].n);
}

static void fn_open(Train *tr, int i, int fwd) {
    Emit *e = tr->e;
    cg_blank(e);
    cg_comment_node(e, i);
    if (fwd)
        cg_line(e, "static void %s_fwd%d(float *ws, long B, int from, int to, int training)", e->p, i);
    else
        cg_line(e, "static void %s_bwd%d(float *ws, long B, int from, int to, int dx)", e->p, i);
    cg_line(e, "{");
    e->ind++;
}

static void fn_close(Train *tr, const char *unused) {
    Emit *e = tr->e;
    if (unused && *unused)
        cg_line(e, "%s", unused);
    e->ind--;
    cg_line(e, "}");
}

/* A pointer of step t: kind 'x' a value read, 'y' a value written, 'g' a
   gradient read, 'd' a gradient accumulated into. */
typedef struct Ptr {
    const char *name;
    int node;
    char kind;
} Ptr;

/* The loop over the steps of a call, with the pointers of step t. */
static void step_loop(Train *tr, const Ptr *ps, int n) {
    Emit *e = tr->e;
    cg_line(e, "for (int t = from; t < to; t++) {");
    e->ind++;
    for (int j = 0; j < n; j++) {
        const TNode *t = &tr->t[ps[j].node];
        char k = ps[j].kind;
        cg_line(e, "%sfloat *%s = %s + (long)t * %s;", k == 'x' || k == 'g' ? "const " : "", ps[j].name,
                at(tr, k == 'x' || k == 'y' ? t->val : t->grd), tstride(tr, ps[j].node));
    }
}

static void gen_dense_fwd(Train *tr, int i) {
    Emit *e = tr->e;
    const IrNode *x = &tr->g->nodes.items[i];
    int in = x->in[0];
    long long I = tr->t[in].n, O = x->out;
    if (tr->t[in].inv && !tr->t[i].inv)
        ICE("dense of an invariant input that is not invariant");
    fn_open(tr, i, 1);
    cg_line(e, "const float *w = %s;", wparam(tr, x->param[0]));
    if (x->bias)
        cg_line(e, "const float *bias = %s;", wparam(tr, x->param[1]));
    cg_line(e, "const long rows = (long)(to - from) * B;");
    cg_line(e, "const float *xt = %s + (long)from * %s;", at(tr, tr->t[in].val), tstride(tr, in));
    cg_line(e, "float *yt = %s + (long)from * %s;", at(tr, tr->t[i].val), tstride(tr, i));
    cg_line(e, "/* y = bias, then y += x w^T: each output sums the bias, then k ascending, as");
    cg_line(e, "   the inference code does */");
    cg_line(e, "for (long r = 0; r < rows; r++)");
    cg_line(e, "    for (long o = 0; o < %lld; o++)", O);
    cg_line(e, "        yt[r * %lld + o] = %s;", O, x->bias ? "bias[o]" : "0.0f");
    cg_line(e, "%s_gemm(rows, %lld, %lld, xt, %lld, 1, w, 1, %lld, yt, %lld, ws);", e->p, O, I, I, I, O);
    fn_close(tr, "(void)training;");
}

static void gen_dense_bwd(Train *tr, int i) {
    Emit *e = tr->e;
    const IrNode *x = &tr->g->nodes.items[i];
    int in = x->in[0];
    long long I = tr->t[in].n, O = x->out;
    fn_open(tr, i, 0);
    cg_line(e, "const float *w = %s;", wparam(tr, x->param[0]));
    cg_line(e, "float *dw = %s;", gparam(tr, x->param[0]));
    cg_line(e, "const long rows = (long)(to - from) * B;");
    cg_line(e, "const float *xt = %s + (long)from * %s;", at(tr, tr->t[in].val), tstride(tr, in));
    cg_line(e, "const float *gy = %s + (long)from * %s;", at(tr, tr->t[i].grd), tstride(tr, i));
    cg_line(e, "float *gx = %s + (long)from * %s;", at(tr, tr->t[in].grd), tstride(tr, in));
    if (x->bias) {
        cg_line(e, "float *db = %s;", gparam(tr, x->param[1]));
        cg_line(e, "for (long r = 0; r < rows; r++)");
        cg_line(e, "    for (long o = 0; o < %lld; o++)", O);
        cg_line(e, "        db[o] += gy[r * %lld + o];", O);
    }
    cg_line(e, "%s_gemm(%lld, %lld, rows, gy, 1, %lld, xt, %lld, 1, dw, %lld, ws); /* dw += gy^T x */", e->p, O, I,
            O, I, I);
    cg_line(e, "if (dx) /* gx += gy w */");
    cg_line(e, "    %s_gemm(rows, %lld, %lld, gy, %lld, 1, w, %lld, 1, gx, %lld, ws);", e->p, I, O, O, I, I);
    fn_close(tr, "(void)w;");
}

static void conv_args(Emit *e, const IrNode *x, long long C, long long H, long long W, long long OH,
                      long long OW, const char *fn, const char *from, const char *to, const char *ld) {
    cg_line(e, "%s_%s(%s, %s, %s, %lld, %lld, %lld, %d, %d, %d, %d, %d, %d, %lld, %lld);", e->p, fn, from, to, ld,
            C, H, W, x->kernel[0], x->kernel[1], x->stride[0], x->stride[1], x->pad[0], x->pad[1], OH, OW);
}

typedef struct ConvDims {
    long long C, H, W;    /* input */
    long long O, OH, OW;  /* output */
    long long P;          /* output pixels, OH x OW */
    long long G, cg, og;  /* groups, input and output channels per group */
    long long KK;         /* kernel taps */
} ConvDims;

static ConvDims conv_dims(Train *tr, const IrNode *x) {
    const Shape *xs = &tr->g->nodes.items[x->in[0]].shape;
    ConvDims d;
    d.C = xs->d[0], d.H = xs->d[1], d.W = xs->d[2];
    d.O = x->out, d.OH = x->shape.d[1], d.OW = x->shape.d[2], d.P = d.OH * d.OW;
    d.G = x->groups, d.cg = d.C / d.G, d.og = d.O / d.G;
    d.KK = (long long)x->kernel[0] * x->kernel[1];
    return d;
}

/* A convolution step is three GEMMs over the whole batch: the input as an
   im2col matrix [c][ky][kx][b][oy][ox] (N = B x pixels), the output in
   the GEMM's layout [o][b][oy][ox], copied to and from [b][o][oy][ox]. */
static void gen_conv_fwd(Train *tr, int i) {
    Emit *e = tr->e;
    const IrNode *x = &tr->g->nodes.items[i];
    int in = x->in[0];
    ConvDims d = conv_dims(tr, x);
    long long C = d.C, H = d.H, W = d.W, O = d.O, OH = d.OH, OW = d.OW, P = d.P;
    long long G = d.G, cg = d.cg, og = d.og, KK = d.KK;
    fn_open(tr, i, 1);
    cg_line(e, "const float *w = %s;", wparam(tr, x->param[0]));
    if (x->bias)
        cg_line(e, "const float *bias = %s;", wparam(tr, x->param[1]));
    cg_line(e, "float *col = %s, *yg = %s;", at(tr, tr->col), at(tr, tr->obuf));
    cg_line(e, "const long np = B * %lld;", P);
    const Ptr ps[] = {{"xt", in, 'x'}, {"yt", i, 'y'}};
    step_loop(tr, ps, 2);
    cg_line(e, "for (long r = 0; r < B; r++)");
    e->ind++;
    conv_args(e, x, C, H, W, OH, OW, "im2col", arena_printf(tr->g->arena, "xt + r * %lld", C * H * W),
              arena_printf(tr->g->arena, "col + r * %lld", P), "np");
    e->ind--;
    cg_line(e, "for (long o = 0; o < %lld; o++)", O);
    cg_line(e, "    for (long j = 0; j < np; j++)");
    cg_line(e, "        yg[o * np + j] = %s;", x->bias ? "bias[o]" : "0.0f");
    cg_line(e, "/* y += w col, per group: each output sums the bias, then c, ky, kx ascending */");
    cg_line(e, "for (long gi = 0; gi < %lld; gi++)", G);
    cg_line(e, "    %s_gemm(%lld, np, %lld, w + gi * %lld, %lld, 1, col + gi * %lld * np, np, 1, yg + gi * %lld * np, np, ws);",
            e->p, og, cg * KK, og * cg * KK, cg * KK, cg * KK, og);
    cg_line(e, "for (long r = 0; r < B; r++)");
    cg_line(e, "    for (long o = 0; o < %lld; o++)", O);
    cg_line(e, "        memcpy(yt + (r * %lld + o) * %lld, yg + o * np + r * %lld, %lld * sizeof(float));", O, P, P, P);
    e->ind--;
    cg_line(e, "}");
    fn_close(tr, "(void)training;");
}

static void gen_conv_bwd(Train *tr, int i) {
    Emit *e = tr->e;
    const IrNode *x = &tr->g->nodes.items[i];
    int in = x->in[0];
    ConvDims d = conv_dims(tr, x);
    long long C = d.C, H = d.H, W = d.W, O = d.O, OH = d.OH, OW = d.OW, P = d.P;
    long long G = d.G, cg = d.cg, og = d.og, KK = d.KK;
    fn_open(tr, i, 0);
    cg_line(e, "const float *w = %s;", wparam(tr, x->param[0]));
    cg_line(e, "float *dw = %s;", gparam(tr, x->param[0]));
    if (x->bias)
        cg_line(e, "float *db = %s;", gparam(tr, x->param[1]));
    cg_line(e, "float *col = %s, *dcol = %s, *gg = %s;", at(tr, tr->col), at(tr, tr->dcol), at(tr, tr->obuf));
    cg_line(e, "const long np = B * %lld;", P);
    const Ptr ps[] = {{"xt", in, 'x'}, {"gyt", i, 'g'}, {"gx", in, 'd'}};
    step_loop(tr, ps, 3);
    cg_line(e, "for (long r = 0; r < B; r++) {");
    e->ind++;
    conv_args(e, x, C, H, W, OH, OW, "im2col", arena_printf(tr->g->arena, "xt + r * %lld", C * H * W),
              arena_printf(tr->g->arena, "col + r * %lld", P), "np");
    cg_line(e, "for (long o = 0; o < %lld; o++)", O);
    cg_line(e, "    memcpy(gg + o * np + r * %lld, gyt + (r * %lld + o) * %lld, %lld * sizeof(float));", P, O, P, P);
    e->ind--;
    cg_line(e, "}");
    if (x->bias) {
        cg_line(e, "for (long o = 0; o < %lld; o++) {", O);
        cg_line(e, "    float sb = 0.0f;");
        cg_line(e, "    for (long j = 0; j < np; j++)");
        cg_line(e, "        sb += gg[o * np + j];");
        cg_line(e, "    db[o] += sb;");
        cg_line(e, "}");
    }
    cg_line(e, "for (long gi = 0; gi < %lld; gi++) {", G);
    e->ind++;
    cg_line(e, "/* dw += gy col^T */");
    cg_line(e, "%s_gemm(%lld, %lld, np, gg + gi * %lld * np, np, 1, col + gi * %lld * np, 1, np, dw + gi * %lld, %lld, ws);",
            e->p, og, cg * KK, og, cg * KK, og * cg * KK, cg * KK);
    cg_line(e, "if (dx) { /* dcol = w^T gy */");
    cg_line(e, "    memset(dcol + gi * %lld * np, 0, (size_t)(%lld * np) * sizeof(float));", cg * KK, cg * KK);
    cg_line(e, "    %s_gemm(%lld, np, %lld, w + gi * %lld, 1, %lld, gg + gi * %lld * np, np, 1, dcol + gi * %lld * np, np, ws);",
            e->p, cg * KK, og, og * cg * KK, cg * KK, og, cg * KK);
    cg_line(e, "}");
    e->ind--;
    cg_line(e, "}");
    cg_line(e, "if (dx)");
    cg_line(e, "    for (long r = 0; r < B; r++)");
    e->ind += 2;
    conv_args(e, x, C, H, W, OH, OW, "col2im", arena_printf(tr->g->arena, "dcol + r * %lld", P),
              arena_printf(tr->g->arena, "gx + r * %lld", C * H * W), "np");
    e->ind -= 2;
    e->ind--;
    cg_line(e, "}");
    fn_close(tr, "(void)w;");
}

/* The GEMM every dense and conv layer uses. Blocks of 256 values of k by
   256 columns of B are packed contiguously in the workspace, so that they
   stay in cache while every block of 4 rows of A (packed too) runs over
   them; a 4 x 64 block of C is accumulated in a local array whose inner
   loop C compilers vectorize. Each element of C sums its terms in k order,
   multiply then add (no fused multiply-add), so results do not depend on
   the blocking: the forward equals the inference code's loops bit for bit.
   Steps where the four values of A are zero are skipped: spikes are mostly
   zero, and adding 0 * b changes nothing. */
static void gen_gemm(Train *tr) {
    Emit *e = tr->e;
    cg_blank(e);
    cg_line(e, "/* C[M][N] += A[M][K] B[K][N], A(i, k) = a[i * ai + k * ak], B(k, j) = b[k * bk + j * bj],");
    cg_line(e, "   C row-major with leading dimension ldc. */");
    cg_line(e, "static void %s_gemm(long M, long N, long K, const float *a, long ai, long ak, const float *b,", e->p);
    cg_line(e, "                    long bk, long bj, float *c, long ldc, float *ws)");
    cg_line(e, "{");
    e->ind++;
    cg_line(e, "float *pa = %s, *pb = %s; /* packed blocks */", at(tr, tr->pack_a), at(tr, tr->pack_b));
    cg_line(e, "const long np = (N + 63) / 64; /* panels of 64 columns */");
    cg_line(e, "for (long k0 = 0; k0 < K; k0 += 256) {");
    e->ind++;
    cg_line(e, "const long kc = K - k0 < 256 ? K - k0 : 256;");
    cg_line(e, "for (long q0 = 0; q0 < np; q0 += 4) {");
    e->ind++;
    cg_line(e, "const long q1 = q0 + 4 < np ? q0 + 4 : np;");
    cg_line(e, "for (long jp = q0; jp < q1; jp++)");
    cg_line(e, "    for (long k = 0; k < kc; k++)");
    cg_line(e, "        for (long j = 0; j < 64; j++) {");
    cg_line(e, "            const long jj = jp * 64 + j;");
    cg_line(e, "            pb[((jp - q0) * 256 + k) * 64 + j] = jj < N ? b[(k0 + k) * bk + jj * bj] : 0.0f;");
    cg_line(e, "        }");
    cg_line(e, "for (long i0 = 0; i0 < M; i0 += 4) {");
    e->ind++;
    cg_line(e, "const long mi = M - i0 < 4 ? M - i0 : 4;");
    cg_line(e, "for (long k = 0; k < kc; k++)");
    cg_line(e, "    for (long i = 0; i < 4; i++)");
    cg_line(e, "        pa[k * 4 + i] = i < mi ? a[(i0 + i) * ai + (k0 + k) * ak] : 0.0f;");
    cg_line(e, "for (long jp = q0; jp < q1; jp++) {");
    e->ind++;
    cg_line(e, "const long nj = N - jp * 64 < 64 ? N - jp * 64 : 64;");
    cg_line(e, "const float *pbj = pb + (jp - q0) * 256 * 64;");
    cg_line(e, "float *c0 = c + i0 * ldc + jp * 64;");
    cg_line(e, "float acc[4][64];");
    cg_line(e, "for (long i = 0; i < 4; i++)");
    cg_line(e, "    for (long j = 0; j < 64; j++)");
    cg_line(e, "        acc[i][j] = i < mi && j < nj ? c0[i * ldc + j] : 0.0f;");
    cg_line(e, "for (long k = 0; k < kc; k++) {");
    cg_line(e, "    const float *a4 = pa + k * 4, *b64 = pbj + k * 64;");
    cg_line(e, "    const float a0 = a4[0], a1 = a4[1], a2 = a4[2], a3 = a4[3];");
    cg_line(e, "    if (a0 == 0.0f && a1 == 0.0f && a2 == 0.0f && a3 == 0.0f)");
    cg_line(e, "        continue;");
    cg_line(e, "    for (long j = 0; j < 64; j++) {");
    cg_line(e, "        acc[0][j] += a0 * b64[j];");
    cg_line(e, "        acc[1][j] += a1 * b64[j];");
    cg_line(e, "        acc[2][j] += a2 * b64[j];");
    cg_line(e, "        acc[3][j] += a3 * b64[j];");
    cg_line(e, "    }");
    cg_line(e, "}");
    cg_line(e, "for (long i = 0; i < mi; i++)");
    cg_line(e, "    for (long j = 0; j < nj; j++)");
    cg_line(e, "        c0[i * ldc + j] = acc[i][j];");
    for (int k = 0; k < 4; k++) {
        e->ind--;
        cg_line(e, "}");
    }
    e->ind--;
    cg_line(e, "}");
}

static void gen_im2col(Train *tr) {
    Emit *e = tr->e;
    for (int back = 0; back < 2; back++) {
        cg_blank(e);
        if (back) {
            cg_line(e, "/* The gradient of im2col: adds each column back where it came from. */");
            cg_line(e, "static void %s_col2im(const float *col, float *x, long ld, long C, long H, long W, int kh,", e->p);
        } else {
            cg_line(e, "/* One sample's convolution input as the columns of a matrix [c][ky][kx][oy][ox]");
            cg_line(e, "   whose rows are ld apart, zero where the kernel reads padding. */");
            cg_line(e, "static void %s_im2col(const float *x, float *col, long ld, long C, long H, long W, int kh,", e->p);
        }
        cg_line(e, "                      int kw, int sh, int sw, int ph, int pw, long OH, long OW)");
        cg_line(e, "{");
        cg_line(e, "    for (long c = 0; c < C; c++)");
        cg_line(e, "        for (long ky = 0; ky < kh; ky++)");
        cg_line(e, "            for (long kx = 0; kx < kw; kx++) {");
        cg_line(e, "                %sfloat *m = col + ((c * kh + ky) * kw + kx) * ld;", back ? "const " : "");
        cg_line(e, "                for (long oy = 0; oy < OH; oy++) {");
        cg_line(e, "                    const long iy = oy * sh - ph + ky;");
        cg_line(e, "                    for (long ox = 0; ox < OW; ox++) {");
        cg_line(e, "                        const long ix = ox * sw - pw + kx;");
        cg_line(e, "                        const int in = iy >= 0 && iy < H && ix >= 0 && ix < W;");
        if (back) {
            cg_line(e, "                        if (in)");
            cg_line(e, "                            x[(c * H + iy) * W + ix] += m[oy * OW + ox];");
        } else
            cg_line(e, "                        m[oy * OW + ox] = in ? x[(c * H + iy) * W + ix] : 0.0f;");
        cg_line(e, "                    }");
        cg_line(e, "                }");
        cg_line(e, "            }");
        cg_line(e, "}");
    }
}

static void gen_pool(Train *tr, int i, int fwd) {
    Emit *e = tr->e;
    const IrNode *x = &tr->g->nodes.items[i];
    int in = x->in[0], mx = x->op == IR_MAXPOOL;
    const Shape *xs = &tr->g->nodes.items[in].shape;
    long long C = xs->d[0], H = xs->d[1], W = xs->d[2], OH = x->shape.d[1], OW = x->shape.d[2];
    fn_open(tr, i, fwd);
    Ptr ps[] = {{"xt", in, 'x'}, {fwd ? "yt" : "gyt", i, fwd ? 'y' : 'g'}, {"gx", in, 'd'}};
    step_loop(tr, ps, fwd ? 2 : 3);
    if (!fwd)
        cg_line(e, "(void)xt;");
    cg_line(e, "for (long rc = 0; rc < B * %lld; rc++)", C);
    cg_line(e, "    for (long oy = 0; oy < %lld; oy++)", OH);
    cg_line(e, "        for (long ox = 0; ox < %lld; ox++) {", OW);
    e->ind += 3;
    if (mx || fwd)
        cg_line(e, "float acc = %s;", mx ? "-INFINITY" : "0.0f");
    if (mx)
        cg_line(e, "long arg = -1;");
    if (!fwd)
        cg_line(e, "const float d = gyt[(rc * %lld + oy) * %lld + ox];", OH, OW);
    cg_line(e, "for (long ky = 0; ky < %d; ky++) {", x->kernel[0]);
    cg_line(e, "    long iy = oy * %d - %d + ky;", x->stride[0], x->pad[0]);
    cg_line(e, "    if (iy < 0 || iy >= %lld)", H);
    cg_line(e, "        continue;");
    cg_line(e, "    for (long kx = 0; kx < %d; kx++) {", x->kernel[1]);
    cg_line(e, "        long ix = ox * %d - %d + kx;", x->stride[1], x->pad[1]);
    cg_line(e, "        if (ix < 0 || ix >= %lld)", W);
    cg_line(e, "            continue;");
    if (mx) {
        cg_line(e, "        {");
        cg_line(e, "            const float v = xt[(rc * %lld + iy) * %lld + ix];", H, W);
        cg_line(e, "            if (v > acc || v != v) {");
        cg_line(e, "                acc = v;");
        cg_line(e, "                arg = (rc * %lld + iy) * %lld + ix;", H, W);
        cg_line(e, "            }");
        cg_line(e, "        }");
    } else if (fwd)
        cg_line(e, "        acc += xt[(rc * %lld + iy) * %lld + ix];", H, W);
    else
        cg_line(e, "        gx[(rc * %lld + iy) * %lld + ix] += d / %s;", H, W,
                cg_flt(e, (float)(x->kernel[0] * x->kernel[1])));
    cg_line(e, "    }");
    cg_line(e, "}");
    if (fwd && mx)
        cg_line(e, "yt[(rc * %lld + oy) * %lld + ox] = acc;", OH, OW);
    else if (fwd)
        cg_line(e, "yt[(rc * %lld + oy) * %lld + ox] = acc / %s;", OH, OW,
                cg_flt(e, (float)(x->kernel[0] * x->kernel[1])));
    else if (mx)
        cg_line(e, "if (arg >= 0)\n%*s    gx[arg] += d;", 4 * e->ind, "");
    if (mx)
        cg_line(e, "(void)arg;");
    e->ind -= 3;
    cg_line(e, "        }");
    e->ind--;
    cg_line(e, "}");
    fn_close(tr, fwd ? "(void)training;" : "(void)dx;");
}

static void gen_elementwise(Train *tr, int i, int fwd) {
    Emit *e = tr->e;
    const IrNode *x = &tr->g->nodes.items[i];
    long long n = tr->t[i].n;
    fn_open(tr, i, fwd);
    if (x->op == IR_ADD) {
        Ptr ps[] = {{"a", x->in[0], fwd ? 'x' : 'd'}, {"b", x->in[1], fwd ? 'x' : 'd'},
                    {"y", i, fwd ? 'y' : 'g'}};
        step_loop(tr, ps, 3);
        cg_line(e, "for (long j = 0; j < B * %lld; j++)", n);
        if (fwd)
            cg_line(e, "    y[j] = a[j] + b[j];");
        else {
            cg_line(e, "{");
            cg_line(e, "    if (dx & 1)");
            cg_line(e, "        a[j] += y[j];");
            cg_line(e, "    if (dx & 2)");
            cg_line(e, "        b[j] += y[j];");
            cg_line(e, "}");
        }
    } else if (x->op == IR_DELAY) {
        /* the source's value of the previous step; 0 at the first */
        int s = x->in[0];
        cg_line(e, "for (int t = from; t < to; t++) {");
        e->ind++;
        if (fwd) {
            cg_line(e, "float *y = %s + (long)t * %s;", at(tr, tr->t[i].val), tstride(tr, i));
            cg_line(e, "if (t == 0)");
            cg_line(e, "    memset(y, 0, (size_t)B * %lld * sizeof(float));", n);
            cg_line(e, "else");
            cg_line(e, "    memcpy(y, %s + (long)(t - 1) * %s, (size_t)B * %lld * sizeof(float));",
                    at(tr, tr->t[s].val), tstride(tr, s), n);
        } else {
            cg_line(e, "const float *gy = %s + (long)t * %s;", at(tr, tr->t[i].grd), tstride(tr, i));
            cg_line(e, "float *gs = %s + (long)(t - 1) * %s;", at(tr, tr->t[s].grd), tstride(tr, s));
            cg_line(e, "if (t == 0 || !dx)");
            cg_line(e, "    continue;");
            cg_line(e, "for (long j = 0; j < B * %lld; j++)", n);
            cg_line(e, "    gs[j] += gy[j];");
        }
    } else {
        Ptr ps[] = {{"xt", x->in[0], fwd ? 'x' : 'd'}, {"yt", i, fwd ? 'y' : 'g'}};
        step_loop(tr, ps, 2);
        const char *k = x->op == IR_DROPOUT ? " * m[j]" : x->op == IR_SCALE ? arena_printf(tr->g->arena, " * %s",
                                                                                  cg_flt(e, x->fval)) : "";
        if (x->op == IR_DROPOUT)
            cg_line(e, "const float *m = %s; /* the same at every step */", at(tr, tr->t[i].mask));
        cg_line(e, "for (long j = 0; j < B * %lld; j++)", n);
        if (fwd && x->op == IR_DROPOUT)
            cg_line(e, "    yt[j] = training ? xt[j] * m[j] : xt[j];");
        else if (fwd)
            cg_line(e, "    yt[j] = xt[j]%s;", k);
        else
            cg_line(e, "    xt[j] += yt[j]%s;", k);
    }
    e->ind--;
    cg_line(e, "}");
    fn_close(tr, fwd ? "(void)training;" : "(void)dx;");
}

/* Dropout masks: one per sequence, drawn when the forward starts. */
static void gen_dropout_mask(Train *tr, int i) {
    Emit *e = tr->e;
    const IrNode *x = &tr->g->nodes.items[i];
    float p = x->fval;
    cg_line(e, "{ /* %s: keep with probability %s, scaled by 1 / (1 - p) */", x->name, cg_flt(e, 1.0f - p));
    cg_line(e, "    float *m = %s;", at(tr, tr->t[i].mask));
    cg_line(e, "    for (long j = 0; j < B * %lld; j++)", (long long)tr->t[i].n);
    cg_line(e, "        m[j] = %s_dropout_uniform(seed, %d, (unsigned long long)j) >= %s ? %s : 0.0f;", e->p, i,
            cg_flt(e, p), cg_flt(e, 1.0f / (1.0f - p)));
    cg_line(e, "}");
}

static void gen_batchnorm(Train *tr, int i, int fwd) {
    Emit *e = tr->e;
    const IrNode *x = &tr->g->nodes.items[i];
    int in = x->in[0];
    long long C = x->shape.d[0], hw = tr->t[i].n / C;
    fn_open(tr, i, fwd);
    cg_line(e, "const float *gamma = %s, *beta = %s;", wparam(tr, x->param[0]), wparam(tr, x->param[1]));
    cg_line(e, "float *rmean = %s, *rvar = %s;", wparam(tr, x->param[2]), wparam(tr, x->param[3]));
    cg_line(e, "float *mean = %s, *istd = %s + %lld;", at(tr, tr->t[i].stat), at(tr, tr->t[i].stat), C);
    cg_line(e, "const float *x = %s, *y = %s;", at(tr, tr->t[in].val), at(tr, tr->t[i].val));
    cg_line(e, "(void)gamma;");
    cg_line(e, "(void)beta;");
    cg_line(e, "(void)rmean;");
    cg_line(e, "(void)rvar;");
    cg_line(e, "const long rows = (long)(to - from) * B, x0 = (long)from * %s, y0 = (long)from * %s;",
            tstride(tr, in), tstride(tr, i));
    cg_line(e, "(void)y;");
    if (fwd) {
        cg_line(e, "float *yw = %s;", at(tr, tr->t[i].val));
        cg_line(e, "for (long c = 0; c < %lld; c++) {", C);
        e->ind++;
        cg_line(e, "if (!training) { /* as at inference */");
        cg_line(e, "    const float a = gamma[c] / sqrtf(rvar[c] + %s);", cg_flt(e, x->fval));
        cg_line(e, "    const float sh = beta[c] - rmean[c] * a;");
        cg_line(e, "    for (long r = 0; r < rows; r++)");
        cg_line(e, "        for (long k = 0; k < %lld; k++)", hw);
        cg_line(e, "            yw[y0 + (r * %lld + c) * %lld + k] = x[x0 + (r * %lld + c) * %lld + k] * a + sh;",
                C, hw, C, hw);
        cg_line(e, "} else {");
        e->ind++;
        cg_line(e, "const double cnt = (double)rows * %lld;", hw);
        cg_line(e, "double s = 0.0, q = 0.0;");
        cg_line(e, "float m, is;");
        cg_line(e, "for (long r = 0; r < rows; r++)");
        cg_line(e, "    for (long k = 0; k < %lld; k++)", hw);
        cg_line(e, "        s += x[x0 + (r * %lld + c) * %lld + k];", C, hw);
        cg_line(e, "m = (float)(s / cnt);");
        cg_line(e, "for (long r = 0; r < rows; r++)");
        cg_line(e, "    for (long k = 0; k < %lld; k++) {", hw);
        cg_line(e, "        const double d = (double)x[x0 + (r * %lld + c) * %lld + k] - m;", C, hw);
        cg_line(e, "        q += d * d;");
        cg_line(e, "    }");
        cg_line(e, "is = (float)(1.0 / sqrt(q / cnt + %s));", cg_flt(e, x->fval));
        cg_line(e, "mean[c] = m;");
        cg_line(e, "istd[c] = is;");
        cg_line(e, "for (long r = 0; r < rows; r++)");
        cg_line(e, "    for (long k = 0; k < %lld; k++)", hw);
        cg_line(e, "        yw[y0 + (r * %lld + c) * %lld + k] = (x[x0 + (r * %lld + c) * %lld + k] - m) * is * gamma[c] + beta[c];",
                C, hw, C, hw);
        cg_line(e, "rmean[c] = 0.9f * rmean[c] + 0.1f * m;");
        if (tr->t[in].inv) {
            /* the input is stored once for its T equal steps: the unbiased
               variance counts all T copies, as a framework that runs every
               step would */
            cg_line(e, "rvar[c] = 0.9f * rvar[c] + 0.1f * (float)(%d.0 * q / (%d.0 * cnt - 1.0));", tr->g->timesteps,
                    tr->g->timesteps);
        } else
            cg_line(e, "rvar[c] = 0.9f * rvar[c] + 0.1f * (float)(cnt > 1.0 ? q / (cnt - 1.0) : q);");
        e->ind--;
        cg_line(e, "}");
        e->ind--;
        cg_line(e, "}");
        fn_close(tr, "");
        return;
    }
    cg_line(e, "float *dgamma = %s, *dbeta = %s;", gparam(tr, x->param[0]), gparam(tr, x->param[1]));
    cg_line(e, "const float *gy = %s;", at(tr, tr->t[i].grd));
    cg_line(e, "float *gx = %s;", at(tr, tr->t[in].grd));
    cg_line(e, "for (long c = 0; c < %lld; c++) {", C);
    e->ind++;
    cg_line(e, "const double cnt = (double)rows * %lld;", hw);
    cg_line(e, "double sg = 0.0, sgx = 0.0;");
    cg_line(e, "const float m = mean[c], is = istd[c];");
    cg_line(e, "float k1, k2, k3;");
    cg_line(e, "for (long r = 0; r < rows; r++)");
    cg_line(e, "    for (long k = 0; k < %lld; k++) {", hw);
    cg_line(e, "        const float g = gy[y0 + (r * %lld + c) * %lld + k];", C, hw);
    cg_line(e, "        sg += g;");
    cg_line(e, "        sgx += (double)g * ((x[x0 + (r * %lld + c) * %lld + k] - m) * is);", C, hw);
    cg_line(e, "    }");
    cg_line(e, "dgamma[c] += (float)sgx;");
    cg_line(e, "dbeta[c] += (float)sg;");
    cg_line(e, "if (!dx)");
    cg_line(e, "    continue;");
    cg_line(e, "/* gx = gamma is (g - mean(g) - xhat mean(g xhat)) */");
    cg_line(e, "k1 = gamma[c] * is;");
    cg_line(e, "k2 = (float)(sg / cnt);");
    cg_line(e, "k3 = (float)(sgx / cnt);");
    cg_line(e, "for (long r = 0; r < rows; r++)");
    cg_line(e, "    for (long k = 0; k < %lld; k++) {", hw);
    cg_line(e, "        const long xi = x0 + (r * %lld + c) * %lld + k;", C, hw);
    cg_line(e, "        const float xh = (x[xi] - m) * is;");
    cg_line(e, "        gx[xi] += k1 * (gy[y0 + (r * %lld + c) * %lld + k] - k2 - xh * k3);", C, hw);
    cg_line(e, "    }");
    e->ind--;
    cg_line(e, "}");
    fn_close(tr, "");
}

/* ---- neuron layers ---- */

typedef struct NLeaves {
    CgLeaves lv;
    const char **state, **param, **adj;
} NLeaves;

static void neuron_leaves(Train *tr, const IrNode *x, NLeaves *L) {
    Arena *a = tr->g->arena;
    const NeuronProg *p = x->neuron;
    long long cnt = shape_count(&x->shape), hw = cnt / x->shape.d[0];
    L->state = arena_alloc(a, sizeof(char *) * (size_t)(p->states.len + 1));
    L->param = arena_alloc(a, sizeof(char *) * (size_t)(p->params.len + 1));
    L->adj = arena_alloc(a, sizeof(char *) * (size_t)(p->states.len + 2));
    for (int k = 0; k < p->states.len; k++) {
        L->state[k] = arena_printf(a, "s%d[i]", k);
        L->adj[1 + k] = arena_printf(a, "ds%d[i]", k);
    }
    L->adj[0] = "gy[i]";
    for (int k = 0; k < p->params.len; k++) {
        const NeuronParam *q = &p->params.items[k];
        L->param[k] = q->gran == GRAN_LAYER    ? arena_printf(a, "p%d[0]", k)
                      : q->gran == GRAN_NEURON ? arena_printf(a, "p%d[i %% %lld]", k, cnt)
                                               : arena_printf(a, "p%d[i %% %lld / %lld]", k, cnt, hw);
    }
    L->lv.x = "x[i]";
    L->lv.state = L->state;
    L->lv.param = L->param;
    L->lv.adj = L->adj;
}

/* The body of a neuron layer's loop over its values at one step: the
   instructions of `level`, then the stores (the next states and the output;
   or the adjoints of the input, of the states and of the parameters). */
static void neuron_body(Train *tr, int i, int fwd, const EqCode *code, const unsigned char *live,
                        const unsigned char *lev, int level, NLeaves *L) {
    Emit *e = tr->e;
    const IrGraph *g = tr->g;
    const IrNode *x = &g->nodes.items[i];
    const NeuronProg *p = x->neuron;
    long long cnt = tr->t[i].n;
    Arena *a = g->arena;
    cg_eq_emit(e, p, code, live, lev, level, &L->lv, fwd);
    if (fwd) {
        for (int k = 0; k < p->states.len; k++)
            cg_line(e, "n%d[i] = %s;", k, cg_eq_val(e, code, p->states.items[k].next));
        cg_line(e, "y[i] = %s;", cg_eq_val(e, code, p->emit));
        return;
    }
    const NeuronGrad *gr = p->grad;
    if (gr->dx >= 0)
        /* a select, not a branch, so that compilers vectorize the loop */
        cg_line(e, "gx[i] = dx ? gx[i] + %s : gx[i];", cg_eq_val(e, code, gr->dx));
    for (int k = 0; k < p->states.len; k++)
        cg_line(e, "ds%d[i] = %s;", k, gr->dstate[k] >= 0 ? cg_eq_val(e, code, gr->dstate[k]) : "0.0f");
    for (int k = 0; k < p->params.len; k++) {
        const NeuronParam *q = &p->params.items[k];
        if (gr->dparam[k] < 0)
            continue;
        const char *ix = q->gran == GRAN_LAYER    ? "0"
                         : q->gran == GRAN_NEURON ? arena_printf(a, "i %% %lld", cnt)
                                                  : arena_printf(a, "i %% %lld / %lld", cnt, cnt / x->shape.d[0]);
        cg_line(e, "dp%d[%s] += %s;", k, ix, cg_eq_val(e, code, gr->dparam[k]));
    }
}

/* The head of a neuron layer's loop over the steps (forward, or backward
   from the last step) and the pointers of step t; x among them unless
   x_outside. */
static void neuron_step_head(Train *tr, int i, int fwd, int x_outside) {
    Emit *e = tr->e;
    const IrGraph *g = tr->g;
    const IrNode *x = &g->nodes.items[i];
    const NeuronProg *p = x->neuron;
    const TNode *t = &tr->t[i];
    int in = x->in[0];
    long long cnt = t->n;
    if (fwd)
        cg_line(e, "for (int t = from; t < to; t++) {");
    else
        cg_line(e, "for (int t = to - 1; t >= from; t--) {");
    e->ind++;
    if (!x_outside)
        cg_line(e, "const float *x = %s + (long)t * %s;", at(tr, tr->t[in].val), tstride(tr, in));
    for (int k = 0; k < p->states.len; k++)
        cg_line(e, "%sfloat *s%d = %s + (long)t * B * %lld; /* %s at the start of the step */",
                fwd ? "" : "const ", k, at(tr, t->st + (int64_t)k * (g->timesteps + 1) * e->maxb * cnt),
                cnt, p->states.items[k].name);
    if (fwd) {
        for (int k = 0; k < p->states.len; k++)
            cg_line(e, "float *n%d = s%d + B * %lld;", k, k, cnt);
        cg_line(e, "float *y = %s + (long)t * B * %lld;", at(tr, t->val), cnt);
    } else {
        cg_line(e, "const float *gy = %s + (long)t * B * %lld;", at(tr, t->grd), cnt);
        cg_line(e, "float *gx = %s + (long)t * %s;", at(tr, tr->t[in].grd), tstride(tr, in));
        for (int k = 0; k < p->states.len; k++)
            cg_line(e, "float *ds%d = %s;", k, at(tr, t->dst + (int64_t)k * e->maxb * cnt));
        cg_line(e, "(void)gx;");
        for (int k = 0; k < p->states.len; k++)
            cg_line(e, "(void)s%d;", k);
    }
    if (!x_outside)
        cg_line(e, "(void)x;");
}

/* Whether an instruction is worth computing once for all steps: a call to
   the math library or a surrogate derivative. */
static int costly(const EqInst *in) {
    switch (in->op) {
    case EQ_EXP:
    case EQ_LOG:
    case EQ_TANH:
    case EQ_SIGMOID:
    case EQ_POW:
    case EQ_DSURR: return 1;
    default: return 0;
    }
}

/* Neurons per block of the loop that computes the step-invariant
   values once (NEURON_BLOCK floats per value on the stack). */
#define NEURON_BLOCK 256

/* A neuron layer, forward or backward. Values that read only per-layer
   parameters and constants are computed once before the loops. When some
   value that reads no state calls the math library (AR-LIF's tanh(x) and
   sigmoid(c x) when the input is the same at every step, as after a direct
   encoding or a hoisted layer; PLIF's sigmoid(w) per channel), the neurons
   are taken in blocks: each block computes those values once, keeps them
   on the stack, then runs its steps. Every value is the same expression as
   in the plain loop, so the results are the same bits; only the order in
   which the parameter gradients are summed (in double) changes. */
static void gen_neuron(Train *tr, int i, int fwd) {
    Emit *e = tr->e;
    const IrGraph *g = tr->g;
    const IrNode *x = &g->nodes.items[i];
    const NeuronProg *p = x->neuron;
    const TNode *t = &tr->t[i];
    int in = x->in[0];
    long long cnt = t->n;
    Arena *a = g->arena;
    NLeaves L;
    neuron_leaves(tr, x, &L);
    fn_open(tr, i, fwd);
    for (int k = 0; k < p->params.len; k++)
        cg_line(e, "const float *p%d = %s; /* %s */", k, wparam(tr, p->params.items[k].param),
                g->params.items[p->params.items[k].param].name);
    if (!fwd) {
        int64_t off = t->pacc;
        for (int k = 0; k < p->params.len; k++) {
            cg_line(e, "double *dp%d = (double *)(void *)(%s);", k, at(tr, off));
            off += align16(2 * g->params.items[p->params.items[k].param].count);
        }
    }
    const EqCode *code = fwd ? &p->code : &p->grad->code;
    int nroots = fwd ? 1 + p->states.len : 1 + p->states.len + p->params.len;
    int *roots = arena_alloc(a, sizeof(int) * (size_t)nroots);
    if (fwd) {
        roots[0] = p->emit;
        for (int k = 0; k < p->states.len; k++)
            roots[1 + k] = p->states.items[k].next;
    } else {
        roots[0] = p->grad->dx;
        for (int k = 0; k < p->states.len; k++)
            roots[1 + k] = p->grad->dstate[k];
        for (int k = 0; k < p->params.len; k++)
            roots[1 + p->states.len + k] = p->grad->dparam[k];
    }
    unsigned char *live = cg_eq_live(a, code, roots, nroots);
    unsigned char *lev = cg_eq_levels(a, p, code, tr->t[in].inv);
    int blocked = 0;
    for (int k = 0; k < code->len; k++)
        blocked |= live[k] && lev[k] == CG_LEVEL_NEURON && costly(&code->items[k]);
    for (int k = 0; k < p->params.len; k++)
        cg_line(e, "(void)p%d;", k);
    cg_eq_emit(e, p, code, live, lev, CG_LEVEL_LAYER, &L.lv, fwd);
    if (!blocked) {
        /* per-neuron values are computed at every step with the rest */
        for (int k = 0; k < code->len; k++)
            if (lev[k] == CG_LEVEL_NEURON)
                lev[k] = CG_LEVEL_STEP;
        neuron_step_head(tr, i, fwd, 0);
        cg_line(e, "for (long i = 0; i < B * %lld; i++) {", cnt);
        e->ind++;
        neuron_body(tr, i, fwd, code, live, lev, CG_LEVEL_STEP, &L);
    } else {
        /* the per-neuron values the steps read */
        unsigned char *keep = arena_alloc(a, (size_t)code->len + 1);
        for (int k = 0; k < code->len; k++) {
            const EqInst *q = &code->items[k];
            int ar = eq_nops(q);
            if (!live[k] || lev[k] != CG_LEVEL_STEP)
                continue;
            if (ar > 0 && lev[q->a] == CG_LEVEL_NEURON) keep[q->a] = 1;
            if (ar > 1 && lev[q->b] == CG_LEVEL_NEURON) keep[q->b] = 1;
            if (ar > 2 && lev[q->c] == CG_LEVEL_NEURON) keep[q->c] = 1;
        }
        for (int k = 0; k < nroots; k++)
            if (roots[k] >= 0 && lev[roots[k]] == CG_LEVEL_NEURON)
                keep[roots[k]] = 1;
        /* x and the parameters are read where they are: 2 marks them */
        for (int k = 0; k < code->len; k++)
            if (keep[k] && (code->items[k].op == EQ_INPUT || code->items[k].op == EQ_PARAM))
                keep[k] = 2;
        if (tr->t[in].inv) {
            cg_line(e, "const float *x = %s; /* the same at every step */", at(tr, tr->t[in].val));
            cg_line(e, "(void)x;");
        }
        cg_line(e, "for (long i0 = 0; i0 < B * %lld; i0 += %d) { /* blocks of neurons */", cnt, NEURON_BLOCK);
        e->ind++;
        cg_line(e, "const long i1 = B * %lld - i0 < %d ? B * %lld : i0 + %d;", cnt, NEURON_BLOCK, cnt, NEURON_BLOCK);
        for (int k = 0; k < code->len; k++)
            if (keep[k] == 1)
                cg_line(e, "float v%d[%d];", k, NEURON_BLOCK);
        /* what the kept values need */
        int nkept = 0;
        int *kept = arena_alloc(a, sizeof(int) * (size_t)(code->len + 1));
        for (int k = 0; k < code->len; k++)
            if (keep[k] == 1)
                kept[nkept++] = k;
        unsigned char *pre = cg_eq_live(a, code, kept, nkept);
        cg_line(e, "for (long i = i0; i < i1; i++) { /* the values that do not change over the steps */");
        e->ind++;
        cg_eq_emit(e, p, code, pre, lev, CG_LEVEL_NEURON, &L.lv, fwd);
        for (int k = 0; k < code->len; k++)
            if (keep[k] == 1)
                cg_line(e, "v%d[i - i0] = t%d;", k, k);
        e->ind--;
        cg_line(e, "}");
        neuron_step_head(tr, i, fwd, tr->t[in].inv);
        cg_line(e, "for (long i = i0; i < i1; i++) {");
        e->ind++;
        for (int k = 0; k < code->len; k++) {
            const EqInst *q = &code->items[k];
            if (keep[k] == 1)
                cg_line(e, "const float t%d = v%d[i - i0];", k, k);
            else if (keep[k] == 2)
                cg_line(e, "const float t%d = %s;", k, q->op == EQ_INPUT ? L.lv.x : L.lv.param[q->idx]);
        }
        neuron_body(tr, i, fwd, code, live, lev, CG_LEVEL_STEP, &L);
        e->ind--;
        cg_line(e, "}");
    }
    e->ind--;
    cg_line(e, "}");
    e->ind--;
    cg_line(e, "}");
    if (!fwd)
        for (int k = 0; k < p->params.len; k++)
            cg_line(e, "(void)dp%d;", k);
    fn_close(tr, fwd ? "(void)training;" : "(void)dx;");
}

/* ---- the API ---- */

static void gen_kernels(Train *tr) {
    const IrGraph *g = tr->g;
    for (int j = 0; j < g->nodes.len; j++) {
        int i = tr->order[j];
        const IrNode *x = &g->nodes.items[i];
        if (x->op == IR_INPUT || x->alias >= 0)
            continue;
        int bwd = tr->t[i].rg != 0 || has_learnable(g, i);
        switch (x->op) {
        case IR_DENSE:
            gen_dense_fwd(tr, i);
            if (bwd)
                gen_dense_bwd(tr, i);
            break;
        case IR_CONV2D:
            gen_conv_fwd(tr, i);
            if (bwd)
                gen_conv_bwd(tr, i);
            break;
        case IR_MAXPOOL:
        case IR_AVGPOOL:
            gen_pool(tr, i, 1);
            if (bwd)
                gen_pool(tr, i, 0);
            break;
        case IR_BATCHNORM:
            gen_batchnorm(tr, i, 1);
            if (bwd)
                gen_batchnorm(tr, i, 0);
            break;
        case IR_NEURON:
            gen_neuron(tr, i, 1);
            if (bwd)
                gen_neuron(tr, i, 0);
            break;
        default:
            gen_elementwise(tr, i, 1);
            if (bwd)
                gen_elementwise(tr, i, 0);
            break;
        }
    }
}

/* The dx argument of node i's backward: which inputs need their gradient. */
static const char *dx_arg(Train *tr, int i) {
    const IrNode *x = &tr->g->nodes.items[i];
    Buf b = {0};
    int any = 0;
    for (int k = 0; k < x->nin; k++) {
        int r = tr->t[x->in[k]].rg;
        if (r == 0)
            continue;
        buf_printf(&b, "%s%s", any ? " | " : "",
                   r == 1 ? arena_printf(tr->g->arena, "%d", 1 << k)
                          : arena_printf(tr->g->arena, "(dinput ? %d : 0)", 1 << k));
        any = 1;
    }
    const char *s = arena_strdup(tr->g->arena, any ? b.data : "0");
    buf_free(&b);
    return s;
}

static void gen_entry(Train *tr) {
    Emit *e = tr->e;
    const IrGraph *g = tr->g;
    int T = g->timesteps;
    int in = g->input, out = g->output;
    long long nin = tr->t[in].n, nout = tr->t[out].n;
    /* forward */
    cg_blank(e);
    cg_line(e, "void %s_train_forward(void *workspace, int batch, const float *input, float *output,", e->p);
    cg_line(e, "                      int training, unsigned long long seed)");
    cg_line(e, "{");
    e->ind++;
    cg_line(e, "float *ws = (float *)workspace;");
    cg_line(e, "long B = batch < 1 ? 1 : batch > %s_MAX_BATCH ? %s_MAX_BATCH : batch;", e->P, e->P);
    cg_line(e, "(void)seed;");
    cg_line(e, "memcpy(%s, input, (size_t)%d * (size_t)B * %lld * sizeof(float));", at(tr, tr->t[in].val),
            tr->t[in].inv ? 1 : T, nin);
    for (int i = 0; i < g->nodes.len; i++) {
        const IrNode *x = &g->nodes.items[i];
        if (x->dead)
            continue;
        if (x->op == IR_NEURON)
            for (int k = 0; k < x->neuron->states.len; k++) {
                cg_line(e, "for (long i = 0; i < B * %lld; i++) /* %s.%s */", (long long)tr->t[i].n, x->name,
                        x->neuron->states.items[k].name);
                cg_line(e, "    ws[%lld + i] = %s;", (long long)(tr->t[i].st + (int64_t)k * (T + 1) * e->maxb * tr->t[i].n),
                        cg_flt(e, x->neuron->states.items[k].init));
            }
        if (x->op == IR_DROPOUT) {
            cg_line(e, "if (training)");
            e->ind++;
            gen_dropout_mask(tr, i);
            e->ind--;
        }
    }
    for (int k = 0; k < tr->ngroups; k++) {
        int a = tr->gstart[k], b = tr->gstart[k + 1];
        int first = tr->order[a];
        const IrNode *x = &g->nodes.items[first];
        if (b - a == 1) {
            if (x->op == IR_INPUT || x->alias >= 0)
                continue;
            cg_line(e, "%s_fwd%d(ws, B, 0, %d, training); /* %s */", e->p, first, tr->t[first].inv ? 1 : T,
                    x->name);
            continue;
        }
        cg_line(e, "for (int t = 0; t < %d; t++) { /* a recurrent loop: step by step */", T);
        for (int j = a; j < b; j++) {
            int i = tr->order[j];
            if (g->nodes.items[i].alias < 0)
                cg_line(e, "    %s_fwd%d(ws, B, t, t + 1, training); /* %s */", e->p, i, g->nodes.items[i].name);
        }
        cg_line(e, "}");
    }
    cg_line(e, "if (output)");
    cg_line(e, "    for (int t = 0; t < %d; t++)", T);
    cg_line(e, "        memcpy(output + (size_t)t * (size_t)B * %lld, %s + (long)t * %s, (size_t)B * %lld * sizeof(float));",
            nout, at(tr, tr->t[out].val), tstride(tr, out), nout);
    e->ind--;
    cg_line(e, "}");
    /* backward */
    cg_blank(e);
    cg_line(e, "void %s_train_backward(void *workspace, int batch, const float *doutput, float *dinput)", e->p);
    cg_line(e, "{");
    e->ind++;
    cg_line(e, "float *ws = (float *)workspace;");
    cg_line(e, "long B = batch < 1 ? 1 : batch > %s_MAX_BATCH ? %s_MAX_BATCH : batch;", e->P, e->P);
    cg_line(e, "float *gout = %s;", at(tr, tr->t[out].grd));
    cg_line(e, "memset(%s, 0, (size_t)%lld * sizeof(float)); /* parameter gradients */",
            at(tr, align16(g->param_floats)), (long long)align16(g->param_floats));
    cg_line(e, "memset(%s, 0, (size_t)%lld * sizeof(float)); /* value gradients, carried adjoints */",
            at(tr, tr->grads), (long long)(tr->end - tr->grads));
    cg_line(e, "for (int t = 0; t < %d; t++)", T);
    cg_line(e, "    for (long j = 0; j < B * %lld; j++)", nout);
    cg_line(e, "        gout[(long)t * %s + j] += doutput[(size_t)t * (size_t)B * %lld + j];", tstride(tr, out),
            nout);
    for (int k = tr->ngroups - 1; k >= 0; k--) {
        int a = tr->gstart[k], b = tr->gstart[k + 1];
        int first = tr->order[a];
        const IrNode *x = &g->nodes.items[first];
        if (b - a == 1) {
            if (x->op == IR_INPUT || x->alias >= 0)
                continue;
            int need = has_learnable(g, first);
            int dyn = 0;
            for (int q = 0; q < x->nin; q++) {
                need |= tr->t[x->in[q]].rg == 1;
                dyn |= tr->t[x->in[q]].rg == 2;
            }
            if (!need && !dyn)
                continue;
            cg_line(e, "%s%s_bwd%d(ws, B, 0, %d, %s); /* %s */", need ? "" : "if (dinput)\n        ", e->p, first,
                    tr->t[first].inv ? 1 : T, dx_arg(tr, first), x->name);
            continue;
        }
        cg_line(e, "for (int t = %d; t >= 0; t--) { /* a recurrent loop: step by step */", T - 1);
        for (int j = b - 1; j >= a; j--) {
            int i = tr->order[j];
            if (g->nodes.items[i].alias < 0 && g->nodes.items[i].op != IR_INPUT)
                cg_line(e, "    %s_bwd%d(ws, B, t, t + 1, %s); /* %s */", e->p, i, dx_arg(tr, i),
                        g->nodes.items[i].name);
        }
        cg_line(e, "}");
    }
    /* neuron parameters: the double sums into the gradients */
    for (int i = 0; i < g->nodes.len; i++) {
        const IrNode *x = &g->nodes.items[i];
        if (x->dead || x->op != IR_NEURON)
            continue;
        int64_t off = tr->t[i].pacc;
        for (int k = 0; k < x->neuron->params.len; k++) {
            const IrParam *q = &g->params.items[x->neuron->params.items[k].param];
            cg_line(e, "{ /* %s */", q->name);
            cg_line(e, "    const double *s = (const double *)(const void *)(%s);", at(tr, off));
            cg_line(e, "    for (long j = 0; j < %lld; j++)", (long long)q->count);
            cg_line(e, "        ws[%lld + j] = (float)s[j];",
                    (long long)(align16(g->param_floats) + q->off));
            cg_line(e, "}");
            off += align16(2 * q->count);
        }
    }
    cg_line(e, "if (dinput)");
    cg_line(e, "    memcpy(dinput, %s, (size_t)%d * (size_t)B * %lld * sizeof(float));", at(tr, tr->t[in].grd),
            tr->t[in].inv ? 1 : T, nin);
    e->ind--;
    cg_line(e, "}");
    /* spike counts of the last forward, for the spike rate */
    cg_blank(e);
    cg_line(e, "void %s_train_spikes(void *workspace, int batch, double *spikes, double *neurons)", e->p);
    cg_line(e, "{");
    e->ind++;
    cg_line(e, "const float *ws = (const float *)workspace;");
    cg_line(e, "long B = batch < 1 ? 1 : batch > %s_MAX_BATCH ? %s_MAX_BATCH : batch;", e->P, e->P);
    cg_line(e, "double s = 0.0;");
    long long total = 0;
    for (int i = 0; i < g->nodes.len; i++) {
        const IrNode *x = &g->nodes.items[i];
        if (x->dead || x->op != IR_NEURON || x->neuron->code.items[x->neuron->emit].op != EQ_SPIKE)
            continue;
        cg_line(e, "for (long j = 0; j < %d * B * %lld; j++) /* %s */", T, (long long)tr->t[i].n, x->name);
        cg_line(e, "    s += ws[%lld + j];", (long long)tr->t[i].val);
        total += (long long)T * tr->t[i].n;
    }
    cg_line(e, "*spikes = s;");
    cg_line(e, "*neurons = (double)B * %lld.0;", total);
    e->ind--;
    cg_line(e, "}");
    cg_blank(e);
    cg_line(e, "const long %s_train_workspace_floats = %s_TRAIN_WORKSPACE_FLOATS;", e->p, e->P);
    cg_blank(e);
    cg_line(e, "float *%s_train_params(void *workspace)", e->p);
    cg_line(e, "{");
    cg_line(e, "    return (float *)workspace;");
    cg_line(e, "}");
    cg_blank(e);
    cg_line(e, "float *%s_train_grads(void *workspace)", e->p);
    cg_line(e, "{");
    cg_line(e, "    return (float *)workspace + %lld;", (long long)align16(g->param_floats));
    cg_line(e, "}");
}

static void gen_rng(Train *tr) {
    Emit *e = tr->e;
    int any = 0;
    for (int i = 0; i < tr->g->nodes.len; i++)
        any |= !tr->g->nodes.items[i].dead && tr->g->nodes.items[i].op == IR_DROPOUT;
    if (!any)
        return;
    cg_blank(e);
    cg_line(e, "/* A counter-based uniform in [0, 1): splitmix64 of (seed, layer, element). */");
    cg_line(e, "static float %s_dropout_uniform(unsigned long long seed, int layer, unsigned long long j)", e->p);
    cg_line(e, "{");
    cg_line(e, "    unsigned long long z = seed ^ ((unsigned long long)layer << 48) ^ (j * 0x9E3779B97F4A7C15ULL);");
    cg_line(e, "    z += 0x9E3779B97F4A7C15ULL;");
    cg_line(e, "    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;");
    cg_line(e, "    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;");
    cg_line(e, "    z ^= z >> 31;");
    cg_line(e, "    return (float)(z >> 40) * (1.0f / 16777216.0f);");
    cg_line(e, "}");
}

static Train *train_new(Emit *e) {
    Train *tr = arena_alloc(e->g->arena, sizeof *tr);
    tr->e = e;
    tr->g = e->g;
    tr->t = arena_alloc(e->g->arena, sizeof(TNode) * (size_t)(e->g->nodes.len + 1));
    schedule(tr);
    layout(tr);
    return tr;
}

/* Checks what training cannot do yet; 0 after reporting. */
static int train_supported(const IrGraph *g, Train *tr) {
    int ok = 1;
    for (int i = 0; i < g->nodes.len; i++) {
        const IrNode *x = &g->nodes.items[i];
        if (x->dead || x->op != IR_BATCHNORM)
            continue;
        int grp = tr->t[i].group;
        if (tr->gstart[grp + 1] - tr->gstart[grp] > 1) {
            error_at(x->loc, "batchnorm '%s' is on a recurrent loop: training needs its statistics over "
                             "all steps, which a step-by-step loop cannot give", x->name);
            ok = 0;
        }
    }
    return ok;
}

void ctrain_header(Emit *e) {
    Train *tr = train_new(e);
    const char *p = e->p, *P = e->P;
    cg_blank(e);
    cg_line(e, "/* Training (docs/generated-code.md): a separate workspace of TRAIN_WORKSPACE_SIZE");
    cg_line(e, "   bytes, aligned for double, that starts with the parameters (load_weights and");
    cg_line(e, "   init_weights work on it) and holds their gradients and what the backward");
    cg_line(e, "   needs. */");
    cg_line(e, "#define %s_TRAIN_WORKSPACE_FLOATS %lldL", P, (long long)(tr->end + tr->scratch));
    cg_line(e, "#define %s_TRAIN_WORKSPACE_SIZE (%s_TRAIN_WORKSPACE_FLOATS * sizeof(float))", P, P);
    cg_line(e, "extern const long %s_train_workspace_floats; /* the same, for dynamic loaders */", p);
    cg_line(e, "/* All T steps from the initial state: output [T, batch, OUTPUT_SIZE] of every step");
    cg_line(e, "   (may be NULL); input as for forward. training: batchnorm uses the batch's");
    cg_line(e, "   statistics and updates its running ones, dropout draws masks from seed;");
    cg_line(e, "   otherwise both behave as at inference. */");
    cg_line(e, "void %s_train_forward(void *workspace, int batch, const float *input, float *output,", p);
    cg_line(e, "                      int training, unsigned long long seed);");
    cg_line(e, "/* After a forward in training mode: the gradients of every parameter (overwritten)");
    cg_line(e, "   for dL/doutput [T, batch, OUTPUT_SIZE]; dL/dinput (shaped as the input) when");
    cg_line(e, "   dinput is not NULL. */");
    cg_line(e, "void %s_train_backward(void *workspace, int batch, const float *doutput, float *dinput);", p);
    cg_line(e, "/* The parameters and their gradients, at the offsets of %s_params. */", p);
    cg_line(e, "float *%s_train_params(void *workspace);", p);
    cg_line(e, "/* The spikes of the last forward over all spiking layers and steps, and the");
    cg_line(e, "   number of neuron steps they came from (spike rate = spikes / neurons). */");
    cg_line(e, "void %s_train_spikes(void *workspace, int batch, double *spikes, double *neurons);", p);
    cg_line(e, "float *%s_train_grads(void *workspace);", p);
}

int ctrain_generate(Emit *e) {
    Train *tr = train_new(e);
    if (!train_supported(e->g, tr))
        return -1;
    cg_blank(e);
    cg_line(e, "/* ---- training: layer-major forward over all steps, and the backward ---- */");
    unsigned char done[SURR_NUM] = {0};
    for (int i = 0; i < e->g->nodes.len; i++) {
        const IrNode *x = &e->g->nodes.items[i];
        if (!x->dead && x->neuron && x->neuron->grad)
            cg_dspike_funcs(e, &x->neuron->grad->code, done);
    }
    gen_rng(tr);
    if (tr->gemm)
        gen_gemm(tr);
    for (int i = 0; i < e->g->nodes.len; i++)
        if (!e->g->nodes.items[i].dead && e->g->nodes.items[i].op == IR_CONV2D) {
            gen_im2col(tr);
            break;
        }
    gen_kernels(tr);
    gen_entry(tr);
    return 0;
}
