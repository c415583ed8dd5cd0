/*
 * export.c: a checked network (IR) as a NIR graph (docs/nir.md, section
 * "snnc export"), built in the structs of nir.h and written by write.c.
 *
 * Each layer is one node named after it: dense -> Affine (Linear without
 * a bias), conv2d -> Conv2d, avgpool -> AvgPool2d, flatten -> Flatten,
 * scale -> Scale, the neuron models NIR can express (LIF, IF, LI, PLIF of
 * the library; the NIR_* models the importer generates) -> LIF, IF, LI,
 * CubaLIF, CubaLI, I, Threshold and Scale nodes. add, identity and
 * dropout (an identity at inference) are no nodes: their inputs' edges go
 * to their consumers, which NIR sums. prev(h) of a neuron layer h closing
 * a cycle through no other neuron is a plain edge (the importer delays
 * that edge again: docs/nir.md section 5); any other prev() is a Delay of
 * one step, a chain of them one Delay of as many steps. A conv2d that sums
 * each channel's windows (no bias, weights 1) is the SumPool2d the
 * importer made it from. The network's input is the Input node, its
 * output the Output.
 *
 * A neuron's continuous-time parameters are chosen for the step dt so
 * that forward Euler (the importer's default convention) gives back the
 * same per-step coefficients: the mapping is derived in docs/nir.md. What
 * NIR cannot express is an error naming the layer at its source line, and
 * every such layer is reported before nir_export gives up.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <string.h>

#include "ast.h"
#include "nir.h"

typedef VEC(int) Ints;

typedef struct Ex {
    Arena *a;
    const IrGraph *g;
    const float *params;
    double dt;
    NirGraph *G;
    Ints *succ;         /* per IR node: the live nodes reading it */
    int *recurrent;     /* per IR node: a prev() written as a plain edge */
    int *folded;        /* per IR node: a prev() of a chain written as one Delay of several steps */
    int *fwd, *bwd;     /* per IR node: the last walk of plain_recurrence that reached it */
    int *stack, *reached, walk;
    unsigned char *unit; /* per IR node: its value [C, 1, L] is written [C, L] (1-D convolutions) */
    const char *version; /* "1.0.4"; "1.0.8" once a v_reset or a CubaLI is written (1.0.4 lacks both) */
    int errors;
} Ex;

static const IrNode *nd(const Ex *E, int i) { return &E->g->nodes.items[i]; }

/* ---- datasets ---- */

/* A dataset of numbers named name of node nn, stored as st, of shape
   dims[ndim] (ndim 0: one number); its values to fill. */
static double *nums(Ex *E, NirNode *nn, const char *name, NirStore st, int ndim, const int64_t *dims) {
    NirArray x = {.name = name, .store = st, .ndim = ndim, .count = 1};
    for (int i = 0; i < ndim; i++)
        x.dims[i] = dims[i], x.count *= dims[i];
    x.num = arena_alloc(E->a, sizeof(double) * (size_t)(x.count + 1));
    vec_push(E->a, &nn->fields, x);
    return x.num;
}

static void ints(Ex *E, NirNode *nn, const char *name, int n, const int64_t *v) {
    int64_t d = n;
    double *x = nums(E, nn, name, NIR_I64, n ? 1 : 0, &d);
    for (int i = 0; i < (n ? n : 1); i++)
        x[i] = (double)v[i];
}

static int unit(const Ex *E, const IrNode *n) { return E->unit[n - E->g->nodes.items]; }

/* The sizes of node n's value as NIR sees them: its shape, or [C, L] for
   [C, 1, L] among 1-D convolutions (the importer's reading of a Conv1d,
   docs/nir.md section 1). Their number. */
static int dims_of(const Ex *E, const IrNode *n, int64_t *d) {
    const Shape *s = &n->shape;
    if (unit(E, n)) {
        d[0] = s->d[0], d[1] = s->d[2];
        return 2;
    }
    memcpy(d, s->d, sizeof(int64_t) * (size_t)s->ndim);
    return s->ndim;
}

static void shape_field(Ex *E, NirNode *nn, const char *name, const IrNode *n) {
    int64_t d[IR_MAX_DIMS];
    ints(E, nn, name, dims_of(E, n, d), d);
}

/* A parameter tensor as a float32 dataset of its own shape ([O, I, k] for
   the weight [O, I, 1, k] of a Conv1d: the same values). */
static void tensor(Ex *E, NirNode *nn, const char *name, int p, int conv1d) {
    const IrParam *q = &E->g->params.items[p];
    int64_t d[IR_MAX_DIMS];
    int nd = q->shape.ndim;
    memcpy(d, q->shape.d, sizeof(int64_t) * (size_t)nd);
    if (conv1d && nd == 4)
        d[2] = d[3], nd = 3;
    double *x = nums(E, nn, name, NIR_F32, nd, d);
    for (int64_t i = 0; i < q->count; i++)
        x[i] = E->params[q->off + i];
}

/* A float64 dataset of the layer's shape (a neuron's parameter). */
static double *per_neuron(Ex *E, NirNode *nn, const char *name, const IrNode *n) {
    int64_t d[IR_MAX_DIMS];
    return nums(E, nn, name, NIR_F64, dims_of(E, n, d), d);
}

static void fill(double *x, int64_t n, double v) {
    for (int64_t i = 0; i < n; i++)
        x[i] = v;
}

/* The largest float below v: snnc's spike(h - v_th) fires when h >= v_th,
   NIR's when h > v_th, and for float h these agree with this threshold. */
static double below(double v) { return (double)nextafterf((float)v, -INFINITY); }

/* ---- neuron layers ---- */

/* The number constructor argument `name` of layer n, or -1 after
   reporting that it is not one. */
static int arg(Ex *E, const IrNode *n, const char *name, double *v) {
    const NeuronProg *p = n->neuron;
    int is_int;
    for (int k = 0; k < p->ctor.len; k++)
        if (!strcmp(p->ctor.items[k].name, name)) {
            if (ast_number(p->ctor.items[k].value, v, &is_int))
                return 1;
            error_at(n->loc, "layer '%s': argument '%s' of %s is not a number; NIR needs one", n->name, name,
                     p->model);
            E->errors++;
            return -1;
        }
    return 0;
}

/* The values over layer n's neurons (cnt of them) of coefficient `role`:
   a constructor argument, or a parameter of the model (per layer, per
   channel or per neuron, spread over the neurons). 0 when the model has
   none of that name, -1 after reporting. */
static int coefficient(Ex *E, const IrNode *n, const char *role, double *out, int64_t cnt) {
    const NeuronProg *p = n->neuron;
    double v;
    int r = arg(E, n, role, &v);
    if (r) {
        fill(out, cnt, v);
        return r;
    }
    for (int k = 0; k < p->params.len; k++)
        if (!strcmp(p->params.items[k].name, role)) {
            const IrParam *q = &E->g->params.items[p->params.items[k].param];
            const float *w = E->params + q->off;
            int64_t per = q->count > 0 && cnt % q->count == 0 ? cnt / q->count : 0;
            if (!per)
                ICE("parameter %s of %lld values over %lld neurons", q->name, (long long)q->count, (long long)cnt);
            for (int64_t i = 0; i < cnt; i++) /* neurons of one channel are contiguous: [C, H, W] */
                out[i] = w[i / per];
            return 1;
        }
    return 0;
}

static void cannot(Ex *E, const IrNode *n, const char *why) {
    error_at(n->loc, "layer '%s' (%s): %s", n->name, n->neuron->model, why);
    E->errors++;
}

/* Requires a hard reset to 0 (the states of LIF, IF and PLIF start at
   v_reset in snnc, at 0 in the importer; a soft reset has no NIR node). */
static int hard_zero_reset(Ex *E, const IrNode *n) {
    double hard = 1, vr = 0;
    if (arg(E, n, "hard", &hard) < 0 || arg(E, n, "v_reset", &vr) < 0)
        return 0;
    if (!hard) {
        cannot(E, n, "a soft reset (hard = false) cannot be expressed in NIR, whose neurons reset to v_reset");
        return 0;
    }
    if (vr != 0) {
        cannot(E, n, "v_reset must be 0: the state starts at v_reset here but at 0 in a NIR graph");
        return 0;
    }
    return 1;
}

/* LIF, PLIF, IF and LI of the library. */
static void library_neuron(Ex *E, const IrNode *n, NirNode *nn) {
    const NeuronProg *p = n->neuron;
    int64_t cnt = shape_count(&n->shape);
    double tau = 2, vth = 1, decay = 1, dt = E->dt;
    if (!strcmp(p->model, "LI")) {
        if (arg(E, n, "tau", &tau) < 0)
            return;
        if (!(tau > 0)) {
            cannot(E, n, "tau must be positive");
            return;
        }
        /* v = v + (x - v) / tau: beta = 1 - 1/tau, g = 1/tau */
        nn->type = "LI";
        fill(per_neuron(E, nn, "tau", n), cnt, tau * dt);
        fill(per_neuron(E, nn, "r", n), cnt, 1);
        fill(per_neuron(E, nn, "v_leak", n), cnt, 0);
        return;
    }
    if (!hard_zero_reset(E, n) || arg(E, n, "v_th", &vth) < 0 || arg(E, n, "decay_input", &decay) < 0)
        return;
    if (!strcmp(p->model, "IF")) {
        /* h = v + x: g = r dt = 1 */
        nn->type = "IF";
        fill(per_neuron(E, nn, "r", n), cnt, 1 / dt);
        fill(per_neuron(E, nn, "v_threshold", n), cnt, below(vth));
        return;
    }
    /* LIF: k = 1/tau; PLIF: k = sigmoid(w). h = v + (x - v) k (decay_input)
       or v (1 - k) + x: beta = 1 - k, g = k or 1; so tau_nir = dt / k and
       r = g / k */
    nn->type = "LIF";
    double *t = per_neuron(E, nn, "tau", n), *r = per_neuron(E, nn, "r", n);
    if (!strcmp(p->model, "PLIF")) {
        if (coefficient(E, n, "w", t, cnt) <= 0)
            ICE("PLIF without its parameter w");
        for (int64_t i = 0; i < cnt; i++) {
            double k = 1 / (1 + exp(-t[i]));
            t[i] = dt / k;
            r[i] = decay ? 1 : 1 / k;
        }
    } else {
        if (arg(E, n, "tau", &tau) < 0)
            return;
        if (!(tau > 0)) {
            cannot(E, n, "tau must be positive");
            return;
        }
        fill(t, cnt, tau * dt);
        fill(r, cnt, decay ? 1 : tau);
    }
    fill(per_neuron(E, nn, "v_leak", n), cnt, 0);
    fill(per_neuron(E, nn, "v_threshold", n), cnt, below(vth));
}

/* The NIR_<type>_<layer> models of the importer (default convention):
   their coefficients back to NIR's parameters (docs/nir.md). */
static void imported_neuron(Ex *E, const IrNode *n, NirNode *nn, const char *type) {
    const NeuronProg *p = n->neuron;
    for (int k = 0; k < p->names.len; k++)
        if (!strcmp(p->names.items[k].name, "rp")) {
            cannot(E, n, "a model imported with --nir-convention snntorch steps snnTorch's equations, which NIR "
                         "does not express; import the graph with the default convention to export it");
            return;
        }
    static const struct {
        const char *type;
        int leaky, cuba, spiking;
    } kinds[] = {{"LIF", 1, 0, 1}, {"CubaLIF", 1, 1, 1}, {"LI", 1, 0, 0},
                 {"CubaLI", 1, 1, 0}, {"IF", 0, 0, 1}, {"I", 0, 0, 0}};
    int K = -1;
    for (int k = 0; k < (int)(sizeof kinds / sizeof *kinds); k++)
        if (!strcmp(type, kinds[k].type))
            K = k;
    int64_t cnt = shape_count(&n->shape);
    double *c[7];
    static const char *const roles[7] = {"beta", "g", "c", "alpha", "gs", "v_th", "v_reset"};
    for (int k = 0; k < 7; k++) {
        c[k] = arena_alloc(E->a, sizeof(double) * (size_t)(cnt + 1));
        int need = k < 3 || (k < 5 && K >= 0 && kinds[K].cuba) || (k >= 5 && K >= 0 && kinds[K].spiking);
        if (K < 0 && (!strcmp(type, "Threshold") || !strcmp(type, "Scale")))
            need = 0;
        int r = need ? coefficient(E, n, roles[k], c[k], cnt) : 1;
        if (r < 0)
            return;
        if (!r) {
            cannot(E, n, "a model named NIR_<type>_<layer> is taken for one the NIR importer generated, but it "
                         "lacks their coefficients; rename it");
            return;
        }
    }
    if (K < 0) { /* Threshold, Scale */
        int thr = !strcmp(type, "Threshold");
        double *v = arena_alloc(E->a, sizeof(double) * (size_t)(cnt + 1));
        if (coefficient(E, n, thr ? "th" : "k", v, cnt) <= 0) {
            cannot(E, n, "a model named NIR_<type>_<layer> is taken for one the NIR importer generated, but it "
                         "lacks their coefficients; rename it");
            return;
        }
        nn->type = thr ? "Threshold" : "Scale";
        memcpy(per_neuron(E, nn, thr ? "threshold" : "scale", n), v, sizeof(double) * (size_t)cnt);
        return;
    }
    double dt = E->dt, *beta = c[0], *g = c[1], *cc = c[2], *alpha = c[3], *gs = c[4];
    for (int64_t i = 0; i < cnt; i++)
        if ((kinds[K].leaky && !(beta[i] < 1)) || (kinds[K].cuba && !(alpha[i] < 1))) {
            error_at(n->loc,
                     "layer '%s' (%s): the leak %s = %g at neuron %lld is not below 1: no time constant gives it",
                     n->name, p->model, !(beta[i] < 1) ? "beta" : "alpha", !(beta[i] < 1) ? beta[i] : alpha[i],
                     (long long)i);
            E->errors++;
            return;
        }
    nn->type = type;
    if (!strcmp(type, "CubaLI"))
        E->version = "1.0.8";
    /* beta = 1 - dt/tau, g = r dt/tau, c = v_leak dt/tau; alpha = 1 - dt/tau_syn,
       gs = w_in dt/tau_syn; IF and I: g = r dt */
    if (kinds[K].leaky) {
        double *t = per_neuron(E, nn, kinds[K].cuba ? "tau_mem" : "tau", n);
        double *r = per_neuron(E, nn, "r", n), *vl = per_neuron(E, nn, "v_leak", n);
        for (int64_t i = 0; i < cnt; i++) {
            t[i] = dt / (1 - beta[i]);
            r[i] = g[i] / (1 - beta[i]);
            vl[i] = cc[i] / (1 - beta[i]);
        }
    } else {
        double *r = per_neuron(E, nn, "r", n);
        for (int64_t i = 0; i < cnt; i++)
            r[i] = g[i] / dt;
    }
    if (kinds[K].cuba) {
        double *t = per_neuron(E, nn, "tau_syn", n), *w = per_neuron(E, nn, "w_in", n);
        for (int64_t i = 0; i < cnt; i++) {
            t[i] = dt / (1 - alpha[i]);
            w[i] = gs[i] / (1 - alpha[i]);
        }
    }
    if (kinds[K].spiking) {
        memcpy(per_neuron(E, nn, "v_threshold", n), c[5], sizeof(double) * (size_t)cnt);
        int any = 0;
        for (int64_t i = 0; i < cnt; i++)
            any |= c[6][i] != 0;
        if (any) { /* nir 1.0.6 and later; absent reads as 0 */
            memcpy(per_neuron(E, nn, "v_reset", n), c[6], sizeof(double) * (size_t)cnt);
            E->version = "1.0.8";
        }
    }
}

static void neuron(Ex *E, const IrNode *n, NirNode *nn) {
    const char *m = n->neuron->model;
    if (!strcmp(m, "LIF") || !strcmp(m, "PLIF") || !strcmp(m, "IF") || !strcmp(m, "LI")) {
        library_neuron(E, n, nn);
        return;
    }
    static const char *const peers[][3] = {
        {"NIR_norse_", "norse", "Norse's"}, {"NIR_spyx_", "spyx", "Spyx's"}, {"NIR_sinabs_", "sinabs", "Sinabs's"}};
    for (size_t k = 0; k < sizeof peers / sizeof *peers; k++)
        if (!strncmp(m, peers[k][0], strlen(peers[k][0]))) {
            cannot(E, n,
                   arena_printf(E->a, "a model imported with --nir-convention %s steps %s equations, "
                                      "which NIR does not express; import the graph with the default convention "
                                      "to export it",
                                peers[k][1], peers[k][2]));
            return;
        }
    if (!strncmp(m, "NIR_", 4)) {
        static const char *const types[] = {"CubaLIF", "CubaLI", "LIF", "LI", "IF", "I", "Threshold", "Scale"};
        for (size_t k = 0; k < sizeof types / sizeof *types; k++) {
            size_t l = strlen(types[k]);
            if (!strncmp(m + 4, types[k], l) && m[4 + l] == '_') {
                imported_neuron(E, n, nn, types[k]);
                return;
            }
        }
    }
    cannot(E, n, "NIR has no node for this neuron model: it expresses LIF, IF, LI and PLIF of the library and the "
                 "models the NIR importer generates");
}

/* ---- layers ---- */

/* A conv2d that sums each channel's window: no bias, one group per
   channel, weights all 1 (what the importer makes of a SumPool2d). */
static int sum_pool(Ex *E, const IrNode *n) {
    const IrParam *w = &E->g->params.items[n->param[0]];
    if (n->bias || n->groups != n->out || nd(E, n->in[0])->shape.d[0] != n->out)
        return 0;
    for (int64_t i = 0; i < w->count; i++)
        if (E->params[w->off + i] != 1.0f)
            return 0;
    return 1;
}

/* A reshape as NIR's Flatten of dimensions start .. end: the sizes NIR sees
   of its output are those of its input with neighbouring ones multiplied
   (a no-op when they are the same). */
static int flatten_of(Ex *E, const IrNode *n, const IrNode *in, NirNode *nn) {
    int64_t a[IR_MAX_DIMS], b[IR_MAX_DIMS];
    int na = dims_of(E, in, a), nb = dims_of(E, n, b);
    for (int64_t start = 0; start < nb && nb <= na; start++) {
        int64_t end = start + na - nb, prod = 1;
        int ok = 1;
        for (int k = 0; k < na; k++) {
            if (k < start)
                ok &= a[k] == b[k];
            else if (k <= end)
                prod *= a[k];
            else
                ok &= a[k] == b[k - (na - nb)];
        }
        if (ok && prod == b[start]) {
            nn->type = "Flatten";
            ints(E, nn, "start_dim", 0, &start);
            ints(E, nn, "end_dim", 0, &end);
            shape_field(E, nn, "input_type", in);
            return 1;
        }
    }
    error_at(n->loc, "layer '%s': NIR's Flatten cannot make %s of %s: it multiplies neighbouring sizes only",
             n->name, shape_str(E->a, &n->shape), shape_str(E->a, &in->shape));
    E->errors++;
    return 0;
}

static void layer(Ex *E, int i) {
    const IrNode *n = nd(E, i);
    NirNode nn = {.name = n->name};
    const IrNode *in = n->nin ? nd(E, n->in[0]) : NULL;
    int64_t two[2];
    switch (n->op) {
    case IR_INPUT:
        nn.type = "Input";
        shape_field(E, &nn, "shape", n);
        break;
    case IR_DENSE:
        if (in->shape.ndim != 1) {
            error_at(n->loc, "layer '%s': NIR's Affine takes a flat value; flatten this one first", n->name);
            E->errors++;
            return;
        }
        nn.type = n->bias ? "Affine" : "Linear";
        tensor(E, &nn, "weight", n->param[0], 0);
        if (n->bias)
            tensor(E, &nn, "bias", n->param[1], 0);
        break;
    case IR_CONV2D: {
        int one_d = unit(E, in);
        if (!one_d && sum_pool(E, n)) { /* as the importer reads a SumPool2d */
            nn.type = "SumPool2d";
            two[0] = n->kernel[0], two[1] = n->kernel[1];
            ints(E, &nn, "kernel_size", 2, two);
            two[0] = n->stride[0], two[1] = n->stride[1];
            ints(E, &nn, "stride", 2, two);
            two[0] = n->pad[0], two[1] = n->pad[1];
            ints(E, &nn, "padding", 2, two);
            break;
        }
        nn.type = one_d ? "Conv1d" : "Conv2d";
        tensor(E, &nn, "weight", n->param[0], one_d);
        if (n->bias)
            tensor(E, &nn, "bias", n->param[1], 0);
        else /* NIR's Conv2d always has one */
            fill(nums(E, &nn, "bias", NIR_F32, 1, &n->out), n->out, 0);
        if (one_d) { /* numbers of the length axis only; nir writes them as scalars */
            int64_t v[5] = {n->stride[1], n->pad[1], 1, n->groups, in->shape.d[2]};
            static const char *const names[5] = {"stride", "padding", "dilation", "groups", "input_shape"};
            for (int k = 0; k < 5; k++)
                ints(E, &nn, names[k], 0, &v[k]);
            break;
        }
        two[0] = n->stride[0], two[1] = n->stride[1];
        ints(E, &nn, "stride", 2, two);
        two[0] = n->pad[0], two[1] = n->pad[1];
        ints(E, &nn, "padding", 2, two);
        two[0] = two[1] = 1;
        ints(E, &nn, "dilation", 2, two);
        int64_t groups = n->groups;
        ints(E, &nn, "groups", 0, &groups);
        two[0] = in->shape.d[1], two[1] = in->shape.d[2];
        ints(E, &nn, "input_shape", 2, two);
        break;
    }
    case IR_AVGPOOL:
        nn.type = "AvgPool2d";
        two[0] = n->kernel[0], two[1] = n->kernel[1];
        ints(E, &nn, "kernel_size", 2, two);
        two[0] = n->stride[0], two[1] = n->stride[1];
        ints(E, &nn, "stride", 2, two);
        two[0] = n->pad[0], two[1] = n->pad[1];
        ints(E, &nn, "padding", 2, two);
        break;
    case IR_FLATTEN: {
        nn.type = "Flatten";
        int64_t z = 0, last = -1;
        ints(E, &nn, "start_dim", 0, &z);
        ints(E, &nn, "end_dim", 0, &last);
        shape_field(E, &nn, "input_type", in);
        break;
    }
    case IR_RESHAPE:
        if (!flatten_of(E, n, in, &nn))
            return;
        break;
    case IR_SCALE:
        nn.type = "Scale";
        fill(per_neuron(E, &nn, "scale", n), shape_count(&n->shape), n->fval);
        break;
    case IR_DELAY: {
        nn.type = "Delay";
        int steps = 1;
        for (int j = n->in[0]; E->folded[j]; j = nd(E, j)->in[0])
            steps++;
        fill(per_neuron(E, &nn, "delay", n), shape_count(&n->shape), steps * E->dt);
        break;
    }
    case IR_NEURON:
        neuron(E, n, &nn);
        if (!nn.type)
            return;
        break;
    default:
        error_at(n->loc, "layer '%s': NIR has no node for %s", n->name, ir_op_names[n->op]);
        E->errors++;
        return;
    }
    vec_push(E->a, &E->G->nodes, nn);
}

/* ---- edges ---- */

/* Whether prev(h) at d can be a plain edge h -> ...: h is a neuron layer
   and d's readers lead back to h without a prev() and without another
   neuron layer in between. The importer then delays the edge that leaves
   h on that cycle, which is what d did.

   The nodes on such a path are those reached forward from d (through no
   other prev(), stopping at h) that also lead back to h. Same-step edges
   go forward in the list of nodes (ir.h), so they all lie between d and
   h: the forward walk skips the nodes after h (and there is no path when
   h comes before d), and the backward walk from h stays among the nodes
   the forward walk reached. The marks carry the number of the walk
   (E->walk), so that they are never cleared: a check costs the nodes
   between d and h that d reaches, not the whole graph, and a chain of
   many layers each with its own prev() exports in linear time
   (bench/export_scale.py). */
static int plain_recurrence(Ex *E, int d) {
    int h = nd(E, d)->in[0];
    if (nd(E, h)->op != IR_NEURON || h < d)
        return 0;
    int walk = ++E->walk, sp = 0, seen = 0;
    int *stack = E->stack, *reached = E->reached;
    stack[sp++] = d; /* forward from d, stopping at h and at other prev() */
    E->fwd[d] = walk;
    while (sp) {
        int u = stack[--sp];
        reached[seen++] = u;
        if (u == h || (u != d && nd(E, u)->op == IR_DELAY))
            continue;
        for (int k = 0; k < E->succ[u].len; k++) {
            int v = E->succ[u].items[k];
            if (v <= h && E->fwd[v] != walk)
                E->fwd[v] = walk, stack[sp++] = v;
        }
    }
    if (E->fwd[h] != walk)
        return 0;
    stack[sp++] = h; /* backward from h, as far as d, among the nodes reached */
    E->bwd[h] = walk;
    while (sp) {
        int u = stack[--sp];
        if (u == d || (u != h && nd(E, u)->op == IR_DELAY))
            continue;
        for (int k = 0; k < nd(E, u)->nin; k++) {
            int v = nd(E, u)->in[k];
            if (E->fwd[v] == walk && E->bwd[v] != walk)
                E->bwd[v] = walk, stack[sp++] = v;
        }
    }
    for (int k = 0; k < seen; k++) {
        int u = reached[k];
        if (E->bwd[u] == walk && u != h && nd(E, u)->op == IR_NEURON)
            return 0;
    }
    return 1;
}

/* The NIR nodes whose values make up IR node i's value, appended to out. */
static void sources(Ex *E, int i, Ints *out) {
    const IrNode *n = nd(E, i);
    if (n->op == IR_ADD || n->op == IR_IDENTITY || n->op == IR_DROPOUT) {
        for (int k = 0; k < n->nin; k++)
            sources(E, n->in[k], out);
        return;
    }
    if (n->op == IR_DELAY && E->recurrent[i]) {
        sources(E, n->in[0], out);
        return;
    }
    vec_push(E->a, out, i);
}

/* Edges into the node named name from the values in[nin] that layer
   reader reads. */
static void edges_into(Ex *E, const IrNode *reader, const char *name, int nin, const int *in) {
    Ints src = {0};
    for (int k = 0; k < nin; k++)
        sources(E, in[k], &src);
    for (int k = 0; k < src.len; k++) {
        for (int j = 0; j < k; j++)
            if (src.items[j] == src.items[k]) {
                error_at(reader->loc, "layer '%s': it adds the value of '%s' to itself; NIR sums the edges into a "
                                      "node, each once",
                         reader->name, nd(E, src.items[k])->name);
                E->errors++;
                return;
            }
        NirEdge e = {nd(E, src.items[k])->name, name};
        vec_push(E->a, &E->G->edges, e);
    }
}

/* Which values are written as NIR's [C, L] rather than [C, 1, L]: those
   of a part of the network joined by elementwise layers and convolutions
   that holds a convolution, where every convolution has a kernel of height
   1, stride 1 and no padding along the unit axis (as the importer makes a
   Conv1d) and no value is pooled (NIR has no 1-D pooling). Flatten,
   reshape and dense layers bound the parts. */
static int find(int *up, int i) {
    while (up[i] != i)
        i = up[i] = up[up[i]];
    return i;
}

static unsigned char *one_dimensional(const Ex *E) {
    const IrGraph *g = E->g;
    int n = g->nodes.len;
    int *up = arena_alloc(E->a, sizeof(int) * (size_t)(n + 1));
    unsigned char *convs = arena_alloc(E->a, (size_t)n + 1), *bad = arena_alloc(E->a, (size_t)n + 1);
    unsigned char *u = arena_alloc(E->a, (size_t)n + 1);
    for (int i = 0; i < n; i++)
        up[i] = i, convs[i] = bad[i] = u[i] = 0;
    for (int i = 0; i < n; i++) {
        const IrNode *x = nd(E, i);
        if (x->dead || x->op == IR_INPUT || x->op == IR_DENSE || x->op == IR_FLATTEN || x->op == IR_RESHAPE)
            continue;
        const Shape *in = &nd(E, x->in[0])->shape;
        if (x->op == IR_AVGPOOL || x->op == IR_MAXPOOL) {
            bad[find(up, x->in[0])] = 1;
            continue;
        }
        for (int k = 0; k < x->nin; k++) {
            int a = find(up, i), b = find(up, x->in[k]);
            if (a != b)
                up[a] = b, convs[b] |= convs[a], bad[b] |= bad[a];
        }
        int r = find(up, i);
        if (x->op == IR_CONV2D) {
            convs[r] = 1;
            if (in->ndim != 3 || in->d[1] != 1 || x->kernel[0] != 1 || x->stride[0] != 1 || x->pad[0] != 0)
                bad[r] = 1;
        }
    }
    for (int i = 0; i < n; i++) {
        const Shape *s = &nd(E, i)->shape;
        int r = find(up, i);
        u[i] = !nd(E, i)->dead && convs[r] && !bad[r] && s->ndim == 3 && s->d[1] == 1;
    }
    return u;
}

static int is_node(const IrNode *n) {
    return !n->dead && n->op != IR_ADD && n->op != IR_IDENTITY && n->op != IR_DROPOUT;
}

int nir_export(Arena *a, const IrGraph *g, const float *params, double dt, const char *path) {
    Ex E;
    memset(&E, 0, sizeof E);
    E.a = a;
    E.g = g;
    E.params = params;
    E.dt = dt > 0 ? dt : NIR_DEFAULT_DT;
    E.version = "1.0.4";
    E.G = arena_alloc(a, sizeof *E.G);
    int n = g->nodes.len;
    E.succ = arena_alloc(a, sizeof *E.succ * (size_t)(n + 1));
    E.recurrent = arena_alloc(a, sizeof(int) * (size_t)(n + 1));
    E.folded = arena_alloc(a, sizeof(int) * (size_t)(n + 1));
    E.fwd = arena_alloc(a, sizeof(int) * (size_t)(n + 1));
    E.bwd = arena_alloc(a, sizeof(int) * (size_t)(n + 1));
    E.stack = arena_alloc(a, sizeof(int) * (size_t)(n + 1));
    E.reached = arena_alloc(a, sizeof(int) * (size_t)(n + 1));
    if (g->readout != RO_STEPS) {
        error_at(g->loc, "network '%s': readout %s cannot be expressed in NIR, whose Output gives the value of "
                         "every step: use readout steps",
                 g->name, readout_names[g->readout]);
        E.errors++;
    }
    if (ENC_SPIKES(g->encoding)) {
        error_at(g->loc, "network '%s': 'encode %s' cannot be expressed in NIR, whose Input takes the values "
                         "of every step: encode the input outside the graph and use encode sequence",
                 g->name, encoding_names[g->encoding]);
        E.errors++;
    }
    for (int i = 0; i < n; i++)
        for (int k = 0; !nd(&E, i)->dead && k < nd(&E, i)->nin; k++)
            vec_push(a, &E.succ[nd(&E, i)->in[k]], i);
    E.unit = one_dimensional(&E);
    for (int i = 0; i < n; i++)
        if (!nd(&E, i)->dead && nd(&E, i)->op == IR_DELAY)
            E.recurrent[i] = plain_recurrence(&E, i);
    /* prev(prev(x)): one Delay of two steps, as the importer reads one */
    for (int i = 0; i < n; i++) {
        const IrNode *u = nd(&E, i);
        int j = u->nin ? u->in[0] : -1;
        if (!u->dead && u->op == IR_DELAY && !E.recurrent[i] && nd(&E, j)->op == IR_DELAY && !E.recurrent[j] &&
            E.succ[j].len == 1 && j != g->output)
            E.folded[j] = 1;
    }
    for (int i = 0; i < n; i++)
        if (is_node(nd(&E, i)) && !E.recurrent[i] && !E.folded[i])
            layer(&E, i);
    for (int i = 0; i < n; i++) {
        const IrNode *u = nd(&E, i);
        if (!is_node(u) || E.recurrent[i] || E.folded[i] || u->op == IR_INPUT)
            continue;
        const IrNode *from = u; /* a Delay's chain reads what its first step reads */
        while (from->op == IR_DELAY && E.folded[from->in[0]])
            from = nd(&E, from->in[0]);
        edges_into(&E, u, u->name, from->nin, from->in);
    }
    const IrNode *out = nd(&E, g->output);
    NirNode o = {.name = "output", .type = "Output"};
    shape_field(&E, &o, "shape", out);
    vec_push(a, &E.G->nodes, o);
    edges_into(&E, out, "output", 1, &g->output);
    if (E.errors)
        return -1;
    return nir_write(path, E.G, E.version);
}
