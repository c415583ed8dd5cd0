/*
 * import.c: a NIR graph (read.c) to the description language (see nir.h).
 *
 * The steps, in order:
 *   1. flatten: nested NIRGraph nodes are inlined (their nodes named
 *      "graph.node"), an edge to or from a nested graph meaning its single
 *      Input or Output node, which become identities; duplicate edges are
 *      dropped (a sum of the same value twice is what no exporter means);
 *   2. check that no cycle runs through stateless nodes only (an
 *      instantaneous cycle has no solution step by step);
 *   3. walk depth-first from the Input, edges in the file's order: an edge
 *      that closes a cycle reads the previous step's value (`prev()`);
 *   4. order the nodes (the remaining edges make a DAG), infer the shapes,
 *      check each node and name its layer;
 *   5. write the network: one statement per node, a generated neuron model
 *      per neuron node (parameters equal over all neurons become constants
 *      of its equations, the others `param ... per neuron` tensors), the
 *      Output's value as the output with `readout steps`.
 * The continuous-time neurons are discretized with the step dt as
 * docs/nir.md says, in one of two conventions (NirConvention).
 */
#define _POSIX_C_SOURCE 200809L
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nir.h"

enum {
    K_INPUT, K_OUTPUT, K_PASS, K_AFFINE, K_LINEAR, K_SCALE, K_FLATTEN, K_CONV2D, K_CONV1D, K_SUMPOOL,
    K_AVGPOOL, K_THRESHOLD, K_DELAY, K_LIF, K_CUBALIF, K_LI, K_CUBALI, K_IF, K_I, K_GRAPH
};

static const struct {
    const char *type;
    int kind;
    int stateful; /* keeps a state from one step to the next */
} kinds[] = {
    {"Input", K_INPUT, 0},     {"Output", K_OUTPUT, 0},   {"Affine", K_AFFINE, 0},
    {"Linear", K_LINEAR, 0},   {"Scale", K_SCALE, 0},     {"Flatten", K_FLATTEN, 0},
    {"Conv2d", K_CONV2D, 0},   {"Conv1d", K_CONV1D, 0},   {"SumPool2d", K_SUMPOOL, 0},
    {"AvgPool2d", K_AVGPOOL, 0}, {"Threshold", K_THRESHOLD, 0}, {"Delay", K_DELAY, 1},
    {"LIF", K_LIF, 1},         {"CubaLIF", K_CUBALIF, 1}, {"LI", K_LI, 1},
    {"CubaLI", K_CUBALI, 1},   {"IF", K_IF, 1},           {"I", K_I, 1},
    {"NIRGraph", K_GRAPH, 0},
};

typedef struct Pred {
    int src;
    int delayed;
} Pred;

typedef struct FNode {
    const char *qname; /* "graph.node" for a node of a nested graph */
    const NirNode *n;
    int kind, stateful;
    VEC(int) succ;    /* nodes it feeds, in the file's edge order */
    VEC(int) succ_in; /* for each, the index of this edge in that node's in */
    VEC(Pred) in;
    Shape shape;       /* its output, per sample; ndim 0: not known yet */
    const char *layer; /* the language's name of its value */
    const char *op;    /* the stage after its inputs ("dense(10)"); NULL: its inputs' sum */
    int alias;         /* its layer is its one input's */
    int color;         /* walks */
    int delay;         /* Delay: in steps */
    const char **chain; /* Delay: the layers of its steps, the last its own */
    /* A Delay whose delays differ between neurons: each neuron's number
       of steps; the delays start at lo steps (0 or 1), and chain[k] is
       the input delayed by lo + k steps, up to f->delay */
    const double *steps;
    int lo;
    const char **mask;       /* per number of steps s: the layer of the neurons delayed by s, or NULL */
    const char **mask_model; /* and its model, `emit x * k` with k 1 for those neurons, 0 for the others */
} FNode;

/* A graph being flattened: its nodes' entries (an FNode, or a nested graph). */
typedef struct GRec {
    const NirNode *self; /* NULL: the top graph */
    const char *prefix;
    StrMap names; /* node name -> entry index + 1 */
    VEC(int) entry; /* >= 0: FNode index; < 0: -(GRec index) - 1 */
    VEC(int) inputs, outputs; /* FNode indexes of its Input and Output nodes */
} GRec;

typedef struct Imp {
    Arena *a;
    const char *path;
    const NirOptions *opt;
    double dt;
    VEC(FNode) nodes;
    VEC(GRec) graphs;
    StrMap names; /* language names in use */
    Buf models, body;
    Buf ctor; /* the constructor arguments of the model being generated */
    OnnxImport *out;
    int errors;
    int has_conv1d; /* [C, L] values are [C, 1, L] */
} Imp;

/* ---- diagnostics ---- */

static const char *q(Imp *I, const char *s) {
    size_t n = strlen(s), k = 0;
    char *o = arena_alloc(I->a, (n > 80 ? 80 : n) + 4);
    for (size_t i = 0; i < n && k < 80; i++)
        o[k++] = (unsigned char)s[i] >= 32 && (unsigned char)s[i] < 127 ? s[i] : '?';
    if (n > 80)
        memcpy(o + k, "...", 3);
    return o;
}

static void bad(Imp *I, const FNode *f, const char *fmt, ...) PRINTF_LIKE(3, 4);
static void bad(Imp *I, const FNode *f, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    Buf b = {0};
    buf_vprintf(&b, fmt, ap);
    va_end(ap);
    if (f)
        error_plain("%s: node '%s' (%s): %s", I->path, q(I, f->qname), q(I, f->n->type), b.data);
    else
        error_plain("%s: %s", I->path, b.data);
    buf_free(&b);
    I->errors++;
}

static const char *shape_str_(Imp *I, const Shape *s) {
    Buf b = {0};
    buf_puts(&b, "[");
    for (int i = 0; i < s->ndim; i++)
        buf_printf(&b, i ? ", %lld" : "%lld", (long long)s->d[i]);
    buf_puts(&b, "]");
    const char *r = arena_strdup(I->a, b.data);
    buf_free(&b);
    return r;
}

static const char *dims_str(Imp *I, const NirArray *x) {
    Buf b = {0};
    buf_puts(&b, "[");
    for (int i = 0; i < x->ndim; i++)
        buf_printf(&b, i ? ", %lld" : "%lld", (long long)x->dims[i]);
    buf_puts(&b, "]");
    const char *r = arena_strdup(I->a, b.data);
    buf_free(&b);
    return r;
}

/* ---- names ---- */

static int is_ident_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* A fresh identifier from a node's name: other characters become _, at
   most 48 characters, a letter first, not a keyword or a layer's name,
   unique. */
static const char *make_name(Imp *I, const char *want) {
    static const char *const reserved[] = {"neuron", "network", "param", "state", "emit", "if", "else", "per",
                                           "timesteps", "input", "output", "encode", "readout", "as", "train",
                                           "true", "false", "prev", "add", "x", "spike"};
    char buf[64];
    size_t k = 0;
    for (const char *s = want; *s && k < 48; s++) {
        char c = is_ident_char(*s) ? *s : '_';
        if (k == 0 && c == '_')
            continue;
        buf[k++] = c;
    }
    buf[k] = 0;
    while (k > 0 && buf[k - 1] == '_')
        buf[--k] = 0;
    if (k == 0 || (buf[0] >= '0' && buf[0] <= '9')) {
        memmove(buf + 1, buf, k + 1);
        buf[0] = 'n';
        k++;
    }
    int clash = 0;
    for (size_t i = 0; i < sizeof reserved / sizeof *reserved; i++)
        clash |= !strcmp(buf, reserved[i]);
    for (int op = 0; op < IR_NUM_OPS; op++)
        clash |= !strcmp(buf, ir_op_names[op]);
    /* the built-in neuron models and the functions of the language */
    static const char *const builtin[] = {"IF", "LIF", "PLIF", "LI", "ARLIF", "DALIF", "ReLU"};
    for (size_t i = 0; i < sizeof builtin / sizeof *builtin; i++)
        clash |= !strcmp(buf, builtin[i]);
    for (int op = 0; op < EQ_NUM_OPS; op++)
        clash |= eq_op_callable[op] && !strcmp(buf, eq_op_names[op]);
    if (clash) {
        buf[k++] = '_';
        buf[k] = 0;
    }
    const char *name = arena_strdup(I->a, buf);
    for (int i = 2; strmap_get(&I->names, name); i++)
        name = arena_printf(I->a, "%s_%d", buf, i);
    *strmap_put(I->a, &I->names, name) = 1;
    return name;
}

/* ---- fields ---- */

static const NirArray *field(const FNode *f, const char *name) {
    for (int i = 0; i < f->n->fields.len; i++)
        if (!strcmp(f->n->fields.items[i].name, name))
            return &f->n->fields.items[i];
    return NULL;
}

/* A dataset of numbers, every one finite and within float's range; NULL
   after reporting (or, when optional, NULL with nothing reported if the
   node lacks it). */
static const NirArray *numbers(Imp *I, const FNode *f, const char *name, int optional) {
    const NirArray *x = field(f, name);
    if (!x) {
        if (!optional)
            bad(I, f, "it has no dataset '%s'", name);
        return NULL;
    }
    if (x->is_string) {
        bad(I, f, "dataset '%s' holds strings, not numbers", name);
        return NULL;
    }
    for (int64_t i = 0; i < x->count; i++)
        if (!isfinite(x->num[i]) || fabs(x->num[i]) > FLT_MAX) {
            bad(I, f, "dataset '%s' has %s at flat index %lld", name,
                isnan(x->num[i]) ? "NaN" : isinf(x->num[i]) ? "an infinity" : "a value beyond float's range",
                (long long)i);
            return NULL;
        }
    return x;
}

/* Integers of a field that has 1 or `want` values (stride, padding...),
   each from lo to hi, into out[want]; 0 after reporting. A missing
   optional field gives dflt. */
static int ints(Imp *I, const FNode *f, const char *name, int want, long lo, long hi, int optional, long dflt,
                long *out) {
    const NirArray *x = numbers(I, f, name, optional);
    if (!x) {
        if (field(f, name) || !optional)
            return 0;
        for (int i = 0; i < want; i++)
            out[i] = dflt;
        return 1;
    }
    if (x->count != 1 && x->count != want) {
        bad(I, f, "dataset '%s' must have 1 or %d values, it has %lld", name, want, (long long)x->count);
        return 0;
    }
    for (int i = 0; i < want; i++) {
        double v = x->num[x->count == 1 ? 0 : i];
        if (v != floor(v) || v < (double)lo || v > (double)hi) {
            bad(I, f, "dataset '%s' must hold integers from %ld to %ld, it has %g", name, lo, hi, v);
            return 0;
        }
        out[i] = (long)v;
    }
    return 1;
}

/* The values of a neuron parameter, one per neuron of shape s: a field of
   one value (broadcast) or of s's sizes. NULL after reporting; a missing
   optional field gives dflt everywhere. */
static double *per_neuron(Imp *I, const FNode *f, const char *name, const Shape *s, int optional, double dflt) {
    int64_t n = shape_count(s);
    double *v = arena_alloc(I->a, sizeof(double) * (size_t)(n + 1));
    const NirArray *x = numbers(I, f, name, optional);
    if (!x) {
        if (field(f, name) || !optional)
            return NULL;
        for (int64_t i = 0; i < n; i++)
            v[i] = dflt;
        return v;
    }
    if (x->count == 1) {
        for (int64_t i = 0; i < n; i++)
            v[i] = x->num[0];
        return v;
    }
    /* sizes above 1 the same, in order */
    int64_t a[8], b[IR_MAX_DIMS];
    int na = 0, nb = 0, same = x->count == n;
    for (int i = 0; i < x->ndim; i++)
        if (x->dims[i] != 1)
            a[na++] = x->dims[i];
    for (int i = 0; i < s->ndim; i++)
        if (s->d[i] != 1)
            b[nb++] = s->d[i];
    same &= na == nb;
    for (int i = 0; same && i < na; i++)
        same = a[i] == b[i];
    if (!same) {
        bad(I, f, "dataset '%s' has shape %s, but the layer's input is %s", name, dims_str(I, x), shape_str_(I, s));
        return NULL;
    }
    memcpy(v, x->num, sizeof(double) * (size_t)n);
    return v;
}

/* The shape over which a node's parameters are computed: [1] when every
   one of them (the fields named, those present) has one value, so that a
   layer of many neurons costs nothing; else the layer's, which may then
   hold at most 2^22 neurons. NULL after reporting. */
#define NIR_MAX_PER_NEURON ((int64_t)1 << 22)
static const Shape *param_shape(Imp *I, const FNode *f, const Shape *in, const char *const *names, Shape *one) {
    int uniform = 1;
    for (int i = 0; names[i]; i++) {
        const NirArray *x = field(f, names[i]);
        uniform &= !x || x->count == 1;
    }
    one->ndim = 1;
    one->d[0] = 1;
    if (uniform)
        return one;
    if (shape_count(in) > NIR_MAX_PER_NEURON) {
        bad(I, f, "it has parameters per neuron for %lld neurons; snnc takes them for at most %lld",
            (long long)shape_count(in), (long long)NIR_MAX_PER_NEURON);
        return NULL;
    }
    return in;
}

/* ---- tensors and coefficients ---- */

static void add_tensor(Imp *I, const char *layer, const char *param, const FNode *f, const char *what, int ndim,
                       const int64_t *shape, int64_t count, float *data) {
    OnnxTensor t;
    memset(&t, 0, sizeof t);
    t.layer = layer;
    t.param = param;
    t.source = arena_printf(I->a, "%s/%s", f->qname, what);
    t.ndim = ndim;
    for (int i = 0; i < ndim; i++)
        t.shape[i] = shape[i];
    t.count = count;
    t.data = data;
    vec_push(I->a, &I->out->tensors, t);
}

static float *floats(Imp *I, const double *v, int64_t n) {
    float *d = arena_alloc(I->a, sizeof(float) * (size_t)(n + 1));
    for (int64_t i = 0; i < n; i++)
        d[i] = (float)v[i];
    return d;
}

/* A number, rounded to float (as the step uses it), in a literal the
   language reads back to the same float: the shortest one, so that a
   graph exported and imported again gives the same text. */
static const char *lit(Imp *I, double v) {
    float f = (float)v;
    if (f == 0)
        return "0.0";
    char b[48];
    format_float(b, sizeof b, f);
    if ((float)strtod(b, NULL) != f) /* the language reads a double, then rounds it */
        snprintf(b, sizeof b, "%.9g", (double)f);
    return f < 0 ? arena_printf(I->a, "(%s)", b) : arena_strdup(I->a, b);
}

/* Whether all n values, rounded to float, are k. */
static int all_eq(const double *v, int64_t n, double k) {
    for (int64_t i = 0; i < n; i++)
        if ((float)v[i] != (float)k)
            return 0;
    return 1;
}

/* A coefficient of a generated model, named `name`: its values over the
   layer's neurons. Equal everywhere: a constructor argument of the model
   (which snnc export reads back); else a parameter per neuron, bound to a
   tensor. NULL after reporting. */
static const char *coef(Imp *I, const FNode *f, Buf *model, const char *name, const char *what, const double *v,
                        const Shape *s) {
    int64_t n = shape_count(s);
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(v[i]) || fabs(v[i]) > FLT_MAX) {
            bad(I, f, "%s comes to %g at neuron %lld, which float cannot hold", what, v[i], (long long)i);
            return NULL;
        }
    if (all_eq(v, n, v[0])) {
        buf_printf(&I->ctor, "%s%s = %s", I->ctor.len ? ", " : "", name, lit(I, v[0]));
        return name;
    }
    buf_printf(model, "  param %s = 0.0 per neuron;\n", name);
    add_tensor(I, f->layer, name, f, what, s->ndim, s->d, n, floats(I, v, n));
    return name;
}

/* "c * var" for coefficient c of values v[0, n); var when they are all 1,
   NULL when they are all 0. */
static const char *term(Imp *I, const char *c, const double *v, int64_t n, const char *var) {
    if (all_eq(v, n, 0))
        return NULL;
    if (all_eq(v, n, 1))
        return var;
    return arena_printf(I->a, "%s * %s", c, var);
}

/* a + b + c, skipping NULLs; "0.0 * x" if all are. */
static const char *sum3(Imp *I, const char *a, const char *b, const char *c) {
    const char *t[3] = {a, b, c};
    Buf s = {0};
    for (int i = 0; i < 3; i++)
        if (t[i])
            buf_printf(&s, "%s%s", s.len ? " + " : "", t[i]);
    const char *r = s.len ? arena_strdup(I->a, s.data) : "0.0 * x";
    buf_free(&s);
    return r;
}

/* ---- flattening nested graphs ---- */

static int kind_of(const char *type, int *stateful) {
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++)
        if (!strcmp(type, kinds[i].type)) {
            *stateful = kinds[i].stateful;
            return kinds[i].kind;
        }
    return -1;
}

static int add_graph(Imp *I, const NirGraph *G, const NirNode *self, const char *prefix, int top);

/* The FNode an edge's end `name` means in graph gi (as a source when
   src): a node, a nested graph's single Output (source) or Input
   (destination), or "graph.node" inside a nested graph. -1 if none. */
static int resolve(Imp *I, int gi, const char *name, int src, const char **why) {
    GRec *g = &I->graphs.items[gi];
    const int *e = strmap_get(&g->names, name);
    if (e) {
        int ent = g->entry.items[*e - 1];
        if (ent >= 0)
            return ent;
        GRec *sub = &I->graphs.items[-ent - 1];
        int n = src ? sub->outputs.len : sub->inputs.len;
        if (n != 1) {
            *why = src ? "a nested graph with other than one Output" : "a nested graph with other than one Input";
            return -1;
        }
        return src ? sub->outputs.items[0] : sub->inputs.items[0];
    }
    /* "graph.node": try each dot */
    for (const char *d = strchr(name, '.'); d; d = strchr(d + 1, '.')) {
        char *head = arena_strndup(I->a, name, (size_t)(d - name));
        const int *h = strmap_get(&g->names, head);
        if (h && g->entry.items[*h - 1] < 0) {
            int r = resolve(I, -g->entry.items[*h - 1] - 1, d + 1, src, why);
            if (r >= 0)
                return r;
        }
    }
    return -1;
}

static int add_graph(Imp *I, const NirGraph *G, const NirNode *self, const char *prefix, int top) {
    GRec rec;
    memset(&rec, 0, sizeof rec);
    rec.self = self;
    rec.prefix = prefix;
    vec_push(I->a, &I->graphs, rec);
    int gi = I->graphs.len - 1;
    for (int i = 0; i < G->nodes.len; i++) {
        const NirNode *n = &G->nodes.items[i];
        const char *qname = *prefix ? arena_printf(I->a, "%s.%s", prefix, n->name) : n->name;
        int stateful = 0, kind = kind_of(n->type, &stateful), ent;
        if (kind < 0) {
            FNode tmp = {.qname = qname, .n = n};
            bad(I, &tmp, "unknown node type (snnc reads Input, Output, Affine, Linear, Scale, Flatten, Conv1d, "
                         "Conv2d, SumPool2d, AvgPool2d, Threshold, Delay, LIF, CubaLIF, LI, CubaLI, IF, I and "
                         "NIRGraph)");
            return -1;
        }
        if (kind == K_GRAPH) {
            int sub = add_graph(I, n->graph, n, qname, 0);
            if (sub < 0)
                return -1;
            ent = -sub - 1;
        } else {
            FNode f;
            memset(&f, 0, sizeof f);
            f.qname = qname;
            f.n = n;
            f.kind = !top && (kind == K_INPUT || kind == K_OUTPUT) ? K_PASS : kind;
            f.stateful = stateful;
            vec_push(I->a, &I->nodes, f);
            ent = I->nodes.len - 1;
            if (kind == K_INPUT)
                vec_push(I->a, &I->graphs.items[gi].inputs, ent);
            if (kind == K_OUTPUT)
                vec_push(I->a, &I->graphs.items[gi].outputs, ent);
        }
        GRec *g = &I->graphs.items[gi];
        vec_push(I->a, &g->entry, ent);
        *strmap_put(I->a, &g->names, n->name) = g->entry.len;
    }
    /* the edges, once each */
    StrMap seen = {0};
    for (int i = 0; i < G->edges.len; i++) {
        const NirEdge *e = &G->edges.items[i];
        const char *why = NULL;
        int s = resolve(I, gi, e->src, 1, &why), d = s >= 0 ? resolve(I, gi, e->dst, 0, &why) : -1;
        if (s < 0 || d < 0) {
            const char *end = s < 0 ? e->src : e->dst;
            const char *msg = why ? arena_printf(I->a, "'%s' is %s", q(I, end), why)
                                  : arena_printf(I->a, "there is no node '%s'", q(I, end));
            if (self) {
                FNode tmp = {.qname = prefix, .n = self};
                bad(I, &tmp, "edge %d ('%s' -> '%s'): %s", i + 1, q(I, e->src), q(I, e->dst), msg);
            } else {
                bad(I, NULL, "edge %d ('%s' -> '%s'): %s", i + 1, q(I, e->src), q(I, e->dst), msg);
            }
            return -1;
        }
        const char *key = arena_printf(I->a, "%d>%d", s, d);
        if (strmap_get(&seen, key))
            continue;
        *strmap_put(I->a, &seen, key) = 1;
        if (I->nodes.items[d].kind == K_INPUT) {
            bad(I, &I->nodes.items[d], "an edge leads into the graph's Input (from '%s')",
                q(I, I->nodes.items[s].qname));
            return -1;
        }
        if (I->nodes.items[s].kind == K_OUTPUT) {
            bad(I, &I->nodes.items[s], "an edge leaves the graph's Output (to '%s')", q(I, I->nodes.items[d].qname));
            return -1;
        }
        vec_push(I->a, &I->nodes.items[s].succ, d);
        vec_push(I->a, &I->nodes.items[s].succ_in, I->nodes.items[d].in.len);
        Pred p = {s, 0};
        vec_push(I->a, &I->nodes.items[d].in, p);
    }
    return gi;
}

/* ---- cycles ---- */

static Pred *edge(Imp *I, const FNode *u, int k) {
    return &I->nodes.items[u->succ.items[k]].in.items[u->succ_in.items[k]];
}

/* A depth-first walk's path: its nodes, each one's next edge to take and
   its place on the path. */
typedef struct Dfs {
    int *stack, *next, *pos;
    int sp;
    int count; /* for the callback */
} Dfs;

static void dfs_init(Imp *I, Dfs *D) {
    size_t n = (size_t)I->nodes.len + 1;
    D->stack = arena_alloc(I->a, sizeof(int) * n);
    D->next = arena_alloc(I->a, sizeof(int) * n);
    D->pos = arena_alloc(I->a, sizeof(int) * n);
    D->count = 0;
}

/* Walks depth-first from start over the nodes not colored yet, taking
   the edges `take` accepts in the file's order; a node is colored 1 while
   it is on the path, 2 once done. Iterative: a chain of many nodes must
   not exhaust the C stack. An edge u -> v to a node on the path closes a
   cycle v ... u -> v: cycle(I, D, v) is called with the path in
   D->stack[D->pos[v] .. D->sp); the walk stops, giving 0, when it gives
   0. */
static int dfs(Imp *I, Dfs *D, int start, int (*take)(Imp *I, const FNode *u, int k),
               int (*cycle)(Imp *I, Dfs *D, int v)) {
    D->sp = 0;
    D->pos[start] = 0;
    D->stack[D->sp++] = start;
    D->next[start] = 0;
    I->nodes.items[start].color = 1;
    while (D->sp) {
        int u = D->stack[D->sp - 1];
        FNode *fu = &I->nodes.items[u];
        if (D->next[u] >= fu->succ.len) {
            fu->color = 2;
            D->sp--;
            continue;
        }
        int k = D->next[u]++;
        if (!take(I, fu, k))
            continue;
        int v = fu->succ.items[k];
        FNode *fv = &I->nodes.items[v];
        if (fv->color == 1) {
            if (!cycle(I, D, v))
                return 0;
        } else if (fv->color == 0) {
            fv->color = 1;
            D->next[v] = 0;
            D->pos[v] = D->sp;
            D->stack[D->sp++] = v;
        }
    }
    return 1;
}

static int to_stateless(Imp *I, const FNode *u, int k) { return !I->nodes.items[u->succ.items[k]].stateful; }

/* Reports the cycle of stateless nodes the walk closed. */
static int instant_cycle(Imp *I, Dfs *D, int v) {
    Buf b = {0};
    int k = D->pos[v];
    for (int j = k, c = 0; j < D->sp && c < 8; j++, c++)
        buf_printf(&b, "'%s' -> ", q(I, I->nodes.items[D->stack[j]].qname));
    buf_printf(&b, "%s'%s'", D->sp - k > 8 ? "... -> " : "", q(I, I->nodes.items[v].qname));
    bad(I, &I->nodes.items[v], "an instantaneous cycle, %s: no stateful node on it to carry a value to the next step",
        b.data);
    buf_free(&b);
    return 0;
}

/* A cycle of stateless nodes only is an error: reports one. */
static int check_instant_cycles(Imp *I) {
    Dfs D;
    dfs_init(I, &D);
    for (int r = 0; r < I->nodes.len; r++)
        if (!I->nodes.items[r].stateful && !I->nodes.items[r].color && !dfs(I, &D, r, to_stateless, instant_cycle))
            return 0;
    for (int i = 0; i < I->nodes.len; i++)
        I->nodes.items[i].color = 0;
    return 1;
}

/* Every node must be reachable from the Input; 0 after reporting one that is not. */
static int check_reachable(Imp *I, int root) {
    int n = I->nodes.len, sp = 0;
    int *stack = arena_alloc(I->a, sizeof(int) * (size_t)(n + 1));
    char *seen = arena_alloc(I->a, (size_t)n + 1);
    stack[sp++] = root;
    seen[root] = 1;
    while (sp) {
        const FNode *u = &I->nodes.items[stack[--sp]];
        for (int k = 0; k < u->succ.len; k++)
            if (!seen[u->succ.items[k]]) {
                seen[u->succ.items[k]] = 1;
                stack[sp++] = u->succ.items[k];
            }
    }
    for (int i = 0; i < n; i++)
        if (!seen[i]) {
            bad(I, &I->nodes.items[i], "it cannot be reached from the graph's Input");
            return 0;
        }
    return 1;
}

static int undelayed(Imp *I, const FNode *u, int k) { return !edge(I, u, k)->delayed; }

/* Delays the edge that leaves the stateful node of the cycle the walk
   closed nearest to the closing edge. */
static int delay_cycle(Imp *I, Dfs *D, int v) {
    int j = D->sp - 1;
    while (j > D->pos[v] && !I->nodes.items[D->stack[j]].stateful)
        j--;
    if (!I->nodes.items[D->stack[j]].stateful)
        ICE("a cycle of stateless nodes passed the check");
    const FNode *w = &I->nodes.items[D->stack[j]];
    int to = j == D->sp - 1 ? v : D->stack[j + 1];
    for (int e = 0; e < w->succ.len; e++)
        if (w->succ.items[e] == to)
            edge(I, w, e)->delayed = 1;
    D->count++;
    return 1;
}

/* Which edges read the previous step. Depth-first from the Input, edges in
   the file's order: an edge u -> v to a node still being walked closes a
   cycle v ... u -> v, and the cycle's edge that leaves its stateful node
   nearest to u reads the previous step (the stateful node's output of the
   previous step, then this step's stateless nodes after it: a recurrent
   Affine adds its bias from the first step on). Delaying such an edge can
   leave another cycle closed, so the walk is repeated over the edges not
   yet delayed until it finds no cycle; each walk delays at least one more
   edge. Every cycle has a stateful node (check_instant_cycles). */
static void mark_delays(Imp *I, int root) {
    int n = I->nodes.len;
    Dfs D;
    dfs_init(I, &D);
    for (D.count = 1; D.count;) {
        D.count = 0;
        for (int i = 0; i < n; i++)
            I->nodes.items[i].color = 0;
        for (int r = -1; r < n; r++) {
            int start = r < 0 ? root : r;
            if (!I->nodes.items[start].color)
                dfs(I, &D, start, undelayed, delay_cycle);
        }
    }
    for (int i = 0; i < n; i++)
        I->nodes.items[i].color = 1; /* reached (check_reachable said so) */
}

/* ---- nodes ---- */

static int check_count(Imp *I, const FNode *f, const Shape *s) {
    int64_t c = 1;
    for (int i = 0; i < s->ndim; i++)
        if (s->d[i] < 1 || !mul_checked(c, s->d[i], IR_MAX_ELEMS - 1, &c)) {
            bad(I, f, "its output %s would be empty or too large", shape_str_(I, s));
            return 0;
        }
    return 1;
}

static int op_dense(Imp *I, FNode *f, const Shape *in) {
    const NirArray *w = numbers(I, f, "weight", 0);
    if (!w)
        return 0;
    if (w->ndim != 2) {
        bad(I, f, "dataset 'weight' must be [out, in], it is %s", dims_str(I, w));
        return 0;
    }
    int64_t out = w->dims[0], nin = w->dims[1];
    if (in->ndim != 1) {
        bad(I, f, "needs a flat input of %lld values, its input is %s (add a Flatten before it)", (long long)nin,
            shape_str_(I, in));
        return 0;
    }
    if (in->d[0] != nin) {
        bad(I, f, "dataset 'weight' takes %lld inputs, its input has %lld", (long long)nin, (long long)in->d[0]);
        return 0;
    }
    const NirArray *b = NULL;
    if (f->kind == K_AFFINE) {
        if (!(b = numbers(I, f, "bias", 0)))
            return 0;
        if (b->count != out) {
            bad(I, f, "dataset 'bias' has %lld values, the layer has %lld outputs", (long long)b->count,
                (long long)out);
            return 0;
        }
    }
    f->shape.ndim = 1;
    f->shape.d[0] = out;
    if (!check_count(I, f, &f->shape))
        return 0;
    f->layer = make_name(I, f->qname);
    int64_t ws[2] = {out, nin};
    add_tensor(I, f->layer, "weight", f, "weight", 2, ws, w->count, floats(I, w->num, w->count));
    if (b)
        add_tensor(I, f->layer, "bias", f, "bias", 1, &out, out, floats(I, b->num, out));
    f->op = arena_printf(I->a, "dense(%lld%s)", (long long)out, b ? "" : ", bias = false");
    return 1;
}

/* Output size of a window; 0 after reporting. */
static int64_t window(Imp *I, const FNode *f, const char *dim, int64_t size, long k, long s, long p) {
    if (k > size + 2 * p) {
        bad(I, f, "its window of %ld is larger than its padded input's %s of %lld", k, dim,
            (long long)(size + 2 * p));
        return 0;
    }
    return (size + 2 * p - k) / s + 1;
}

/* Conv2d, and Conv1d as a conv2d of height 1: a [C, L] value is [C, 1, L]
   in snnc (docs/nir.md). */
static int op_conv(Imp *I, FNode *f, const Shape *in) {
    int one_d = f->kind == K_CONV1D;
    const NirArray *w = numbers(I, f, "weight", 0);
    if (!w)
        return 0;
    if (w->ndim != (one_d ? 3 : 4)) {
        bad(I, f, one_d ? "dataset 'weight' must be [out, in / groups, length], it is %s"
                        : "dataset 'weight' must be [out, in / groups, height, width], it is %s",
            dims_str(I, w));
        return 0;
    }
    long groups, stride[2] = {1, 1}, dil[2] = {1, 1}, pad[2] = {0, 0};
    if (!ints(I, f, "groups", 1, 1, 1L << 30, 1, 1, &groups) ||
        !ints(I, f, "stride", 2 - one_d, 1, 65536, 1, 1, stride + one_d) ||
        !ints(I, f, "dilation", 2 - one_d, 1, 65536, 1, 1, dil + one_d))
        return 0;
    if (in->ndim != 3 || (one_d && in->d[1] != 1)) {
        bad(I, f, one_d ? "needs an input [channels, length], its input is %s"
                        : "needs an input [channels, height, width], its input is %s",
            shape_str_(I, in));
        return 0;
    }
    int64_t O = w->dims[0], C = w->dims[1] * groups;
    if (C != in->d[0] || O % groups) {
        bad(I, f, "dataset 'weight' %s with %ld groups does not fit its input %s", dims_str(I, w), groups,
            shape_str_(I, in));
        return 0;
    }
    /* a dilated kernel is the kernel with zeros between its taps */
    int64_t kh = one_d ? 1 : w->dims[2], kw = w->dims[one_d ? 2 : 3];
    int64_t KH = dil[0] * (kh - 1) + 1, KW = dil[1] * (kw - 1) + 1;
    if (kh < 1 || kw < 1 || KH > 65536 || KW > 65536) {
        bad(I, f, "its kernel, %lld x %lld with dilation %ld x %ld, is empty or larger than 65536",
            (long long)kh, (long long)kw, dil[0], dil[1]);
        return 0;
    }
    const NirArray *pf = field(f, "padding");
    int front[2] = {0, 0}; /* a zero tap in front of the kernel (an even kernel padded 'same') */
    if (pf && pf->is_string) {
        if (pf->count != 1 || (strcmp(pf->str[0], "same") && strcmp(pf->str[0], "valid"))) {
            bad(I, f, "dataset 'padding' must be numbers, 'same' or 'valid'");
            return 0;
        }
        if (!strcmp(pf->str[0], "valid")) {
            pad[0] = pad[1] = 0;
        } else {
            /* PyTorch's 'same' (what nirtorch's importers pass it): K - 1
               zeros in all, (K - 1) / 2 before, the rest after. An even K
               pads the end one more: the kernel with a zero tap in front,
               padded (K + 1 - 1) / 2 on both sides, computes the same. */
            front[0] = KH % 2 == 0, front[1] = KW % 2 == 0;
            if ((front[0] && stride[0] != 1) || (front[1] && stride[1] != 1)) {
                bad(I, f, "padding 'same' with an even kernel (%lld x %lld) needs a stride of 1 (PyTorch's rule)",
                    (long long)KH, (long long)KW);
                return 0;
            }
            KH += front[0], KW += front[1];
            pad[0] = (long)(KH - 1) / 2;
            pad[1] = (long)(KW - 1) / 2;
        }
    } else if (!ints(I, f, "padding", 2 - one_d, 0, 65536, 1, 0, pad + one_d)) {
        return 0;
    }
    const NirArray *is = numbers(I, f, "input_shape", 1);
    if (field(f, "input_shape") && !is)
        return 0;
    if (is && ((!one_d && is->count == 2 && (is->num[0] != (double)in->d[1] || is->num[1] != (double)in->d[2])) ||
               (one_d && is->count == 1 && is->num[0] != (double)in->d[2]))) {
        bad(I, f, "dataset 'input_shape' does not match its input %s", shape_str_(I, in));
        return 0;
    }
    const NirArray *b = numbers(I, f, "bias", 1);
    if (field(f, "bias") && !b)
        return 0;
    if (b && b->count != O && b->count != 1) {
        bad(I, f, "dataset 'bias' has %lld values, the layer has %lld channels", (long long)b->count, (long long)O);
        return 0;
    }
    int64_t H = window(I, f, "height", in->d[1], (long)KH, stride[0], pad[0]);
    int64_t W = H ? window(I, f, "width", in->d[2], (long)KW, stride[1], pad[1]) : 0;
    if (!H || !W)
        return 0;
    Shape s = {3, {O, H, W}};
    f->shape = s;
    if (!check_count(I, f, &s))
        return 0;
    int64_t wcount;
    if (!mul_checked(O * w->dims[1], KH * KW, IR_MAX_ELEMS - 1, &wcount)) {
        bad(I, f, "its dilated weight would be too large");
        return 0;
    }
    float *wd = arena_alloc(I->a, sizeof(float) * (size_t)(wcount + 1));
    for (int64_t o = 0; o < O * w->dims[1]; o++)
        for (int64_t y = 0; y < kh; y++)
            for (int64_t x = 0; x < kw; x++)
                wd[o * KH * KW + (front[0] + y * dil[0]) * KW + front[1] + x * dil[1]] =
                    (float)w->num[(o * kh + y) * kw + x];
    /* (a Conv1d's weight [O, C, k] is [O, C, 1, k], the same values) */
    f->layer = make_name(I, f->qname);
    int64_t ws[4] = {O, w->dims[1], KH, KW};
    add_tensor(I, f->layer, "weight", f, "weight", 4, ws, wcount, wd);
    if (b) {
        double *bv = arena_alloc(I->a, sizeof(double) * (size_t)(O + 1));
        for (int64_t o = 0; o < O; o++)
            bv[o] = b->num[b->count == 1 ? 0 : o];
        add_tensor(I, f->layer, "bias", f, "bias", 1, &O, O, floats(I, bv, O));
    }
    f->op = arena_printf(I->a, "conv2d(out = %lld, kernel = [%lld, %lld], stride = [%ld, %ld], padding = [%ld, %ld], "
                               "groups = %ld, bias = %s)",
                         (long long)O, (long long)KH, (long long)KW, stride[0], stride[1], pad[0], pad[1], groups,
                         b ? "true" : "false");
    return 1;
}

static int op_pool(Imp *I, FNode *f, const Shape *in) {
    long k[2], s[2], p[2];
    if (!ints(I, f, "kernel_size", 2, 1, 65536, 0, 0, k) || !ints(I, f, "stride", 2, 1, 65536, 1, 0, s) ||
        !ints(I, f, "padding", 2, 0, 65536, 1, 0, p))
        return 0;
    if (!field(f, "stride"))
        s[0] = k[0], s[1] = k[1];
    if (in->ndim != 3) {
        bad(I, f, "needs an input [channels, height, width], its input is %s", shape_str_(I, in));
        return 0;
    }
    if (2 * p[0] > k[0] || 2 * p[1] > k[1]) {
        bad(I, f, "its padding [%ld, %ld] is more than half its kernel [%ld, %ld]", p[0], p[1], k[0], k[1]);
        return 0;
    }
    int64_t H = window(I, f, "height", in->d[1], k[0], s[0], p[0]);
    int64_t W = H ? window(I, f, "width", in->d[2], k[1], s[1], p[1]) : 0;
    if (!H || !W)
        return 0;
    int64_t C = in->d[0];
    Shape out = {3, {C, H, W}};
    f->shape = out;
    f->layer = make_name(I, f->qname);
    if (f->kind == K_AVGPOOL) {
        f->op = arena_printf(I->a, "avgpool(kernel = [%ld, %ld], stride = [%ld, %ld], padding = [%ld, %ld])", k[0],
                             k[1], s[0], s[1], p[0], p[1]);
        return 1;
    }
    /* a sum over each window: a convolution per channel with weights of
       ones, exact where an average times the window's size is not */
    int64_t wc;
    if (!mul_checked(C, (int64_t)k[0] * k[1], IR_MAX_ELEMS - 1, &wc)) {
        bad(I, f, "its window is too large");
        return 0;
    }
    float *ones = arena_alloc(I->a, sizeof(float) * (size_t)(wc + 1));
    for (int64_t i = 0; i < wc; i++)
        ones[i] = 1.0f;
    int64_t ws[4] = {C, 1, k[0], k[1]};
    add_tensor(I, f->layer, "weight", f, "kernel_size", 4, ws, wc, ones);
    f->op = arena_printf(I->a, "conv2d(out = %lld, kernel = [%ld, %ld], stride = [%ld, %ld], padding = [%ld, %ld], "
                               "groups = %lld, bias = false)",
                         (long long)C, k[0], k[1], s[0], s[1], p[0], p[1], (long long)C);
    return 1;
}

/* Flatten: dimensions start_dim .. end_dim of the value as NIR sees it (in
   a graph with a Conv1d, snnc's [C, 1, L] is NIR's [C, L]) become one. All
   of them: `flatten`; some: `reshape` (a view either way); none: nothing. */
static int op_flatten(Imp *I, FNode *f, const Shape *in) {
    long sd, ed;
    if (!ints(I, f, "start_dim", 1, -8, 8, 1, 0, &sd) || !ints(I, f, "end_dim", 1, -8, 8, 1, -1, &ed))
        return 0;
    Shape v = *in;
    int unit = I->has_conv1d && v.ndim == 3 && v.d[1] == 1;
    if (unit)
        v.ndim = 2, v.d[1] = v.d[2];
    int nd = v.ndim;
    long s = sd < 0 ? sd + nd : sd, e = ed < 0 ? ed + nd : ed;
    if (s < 0 || e >= nd || s > e + 1) {
        bad(I, f, "start_dim %ld and end_dim %ld do not fit its input %s", sd, ed, shape_str_(I, &v));
        return 0;
    }
    if (e <= s) { /* nothing to flatten */
        f->shape = *in;
        f->alias = 1;
        return 1;
    }
    Shape o = {0, {0}};
    for (int k = 0; k < nd; k++) {
        if (k <= s || k > e)
            o.d[o.ndim++] = v.d[k];
        else
            o.d[o.ndim - 1] *= v.d[k];
    }
    f->layer = make_name(I, f->qname);
    if (o.ndim == 1) {
        f->op = "flatten";
    } else {
        if (I->has_conv1d && o.ndim == 2)
            o.ndim = 3, o.d[2] = o.d[1], o.d[1] = 1;
        Buf b = {0};
        for (int k = 0; k < o.ndim; k++)
            buf_printf(&b, k ? ", %lld" : "%lld", (long long)o.d[k]);
        f->op = arena_printf(I->a, "reshape([%s])", b.data);
        buf_free(&b);
    }
    f->shape = o;
    return 1;
}

/* Starts a generated model for node f: its name, the layer's call of it.
   Its body goes into a buffer of the caller's, its constructor arguments
   into I->ctor, until model_end. */
static const char *model_begin(Imp *I, FNode *f, const char *conv) {
    f->layer = make_name(I, f->qname);
    const char *name = make_name(I, arena_printf(I->a, "NIR_%s%s_%s", conv, f->n->type, f->layer));
    f->op = arena_printf(I->a, "%s()", name);
    I->ctor.len = 0;
    if (I->ctor.data)
        I->ctor.data[0] = 0;
    return name;
}

/* Adds the model whose name model_begin gave, with the body in m. */
static void model_end(Imp *I, const FNode *f, const char *name, const Buf *m) {
    buf_printf(&I->models, "# node '%s' (%s)\nneuron %s(%s) {\n%s", q(I, f->qname), f->n->type, name,
               I->ctor.len ? I->ctor.data : "", m->data);
}

static int delay_per_neuron(Imp *I, FNode *f);

static int op_scale_threshold(Imp *I, FNode *f, const Shape *in) {
    const char *fname = f->kind == K_SCALE ? "scale" : "threshold";
    const char *names[] = {fname, NULL};
    Shape one;
    const Shape *ps = param_shape(I, f, in, names, &one);
    double *v = ps ? per_neuron(I, f, fname, ps, 0, 0) : NULL;
    if (!v)
        return 0;
    f->shape = *in;
    int64_t n = shape_count(ps);
    int uniform = 1;
    for (int64_t i = 0; i < n; i++)
        uniform &= v[i] == v[0];
    if (f->kind == K_SCALE && uniform) {
        f->layer = make_name(I, f->qname);
        f->op = arena_printf(I->a, "scale(%s)", lit(I, v[0]));
        return 1;
    }
    Buf m = {0};
    const char *model = model_begin(I, f, "");
    const char *c = coef(I, f, &m, f->kind == K_SCALE ? "k" : "th", fname, v, ps);
    if (c) {
        if (f->kind == K_SCALE)
            buf_printf(&m, "  emit x * %s;\n}\n", c);
        else /* fires when x > threshold */
            buf_printf(&m, "  emit 1 - spike(%s - x);\n}\n", c);
        model_end(I, f, model, &m);
    }
    buf_free(&m);
    return c != NULL;
}

static float f32(double v) { return (float)v; }

/* LIF, IF and CubaLIF as Norse's or Spyx's from_nir steps them (docs/nir.md,
   section 4): in float32, operation by operation. Norse: the input plus
   the leak voltage minus v, times dt / tau, added to v; r multiplies a
   CubaLIF's current (its LIF ignores r, its IF r and dt), its synapse
   leaks towards the membrane's v_leak, states start at v_leak, the spike
   is v > v_th, the reset to 0. Spyx: beta = 1 - dt / tau clipped to
   [0, 1], the spike of the previous step's membrane (v > v_th), a
   subtractive reset; r, v_leak and v_reset are not read. */
static int op_neuron_peer(Imp *I, FNode *f, const Shape *in, const double *tau, const double *tau_syn,
                          const double *r, const double *vl, const double *vth, const double *w_in) {
    int64_t n = shape_count(in);
    int norse = I->opt->conv == NIR_CONV_NORSE, cuba = f->kind == K_CUBALIF, leaky = f->kind != K_IF;
    double dt = I->dt;
    double *km = arena_alloc(I->a, sizeof(double) * (size_t)(n + 1) * 6);
    double *ks = km + n, *lv = ks + n, *th = lv + n, *rr = th + n, *wi = rr + n;
    int any_leak = 0;
    for (int64_t i = 0; i < n; i++) {
        if (norse) { /* dt * (1 / tau): a float32 tensor times a Python float */
            km[i] = leaky ? f32((double)f32(dt) * (double)f32(1.0 / (double)f32(tau[i]))) : 1;
            ks[i] = cuba ? f32((double)f32(dt) * (double)f32(1.0 / (double)f32(tau_syn[i]))) : 0;
            lv[i] = leaky ? f32(vl[i]) : 0;
            rr[i] = cuba ? f32(r[i]) : 1;
            wi[i] = cuba ? f32(w_in[i]) : 1;
        } else { /* 1 - dt / tau in float64 (NumPy), then float32, clipped */
            km[i] = leaky ? fmin(fmax(f32(1 - dt / tau[i]), 0), 1) : 1;
            ks[i] = cuba ? fmin(fmax(f32(1 - dt / tau_syn[i]), 0), 1) : 0;
            lv[i] = 0;
        }
        th[i] = f32(vth[i]);
        any_leak |= lv[i] != 0;
    }
    Buf m = {0};
    const char *model = model_begin(I, f, norse ? "norse_" : "spyx_");
    int ok = 0;
    const char *K = NULL, *KS = NULL, *VL = NULL, *TH = NULL, *R = NULL, *WI = NULL;
    if (leaky && !(K = coef(I, f, &m, norse ? "k" : "beta", norse ? "dt / tau" : "1 - dt / tau", km, in)))
        goto out;
    if (cuba && !(KS = coef(I, f, &m, norse ? "ks" : "alpha", norse ? "dt / tau_syn" : "1 - dt / tau_syn", ks, in)))
        goto out;
    if (any_leak && !(VL = coef(I, f, &m, "vl", "v_leak", lv, in)))
        goto out;
    if (norse && cuba && (!(R = coef(I, f, &m, "r", "r", rr, in)) || !(WI = coef(I, f, &m, "w_in", "w_in", wi, in))))
        goto out;
    if (!(TH = coef(I, f, &m, "v_th", "the threshold", th, in)))
        goto out;
    if (cuba)
        buf_puts(&m, "  state i = 0.0;\n");
    buf_puts(&m, "  state v = 0.0;\n");
    if (norse) {
        const char *u = "v", *j = "i";
        if (VL) { /* the states start at v_leak: f is 1 at the first step only (exact: 0 + 1 vl, then v + 0 vl) */
            buf_printf(&m, "  state f = 1.0;\n  u = v + f * %s;\n", VL);
            if (cuba)
                buf_printf(&m, "  j = i + f * %s;\n", VL);
            u = "u", j = "j";
        }
        const char *leak = VL ? arena_printf(I->a, " + %s", VL) : "";
        const char *x = "x";
        if (cuba) {
            buf_printf(&m, "  x1 = %s * x;\n", WI);
            buf_printf(&m, "  i = %s + %s * ((%s - %s) + x1);\n", j, KS, VL ? VL : "0.0", j);
            buf_printf(&m, "  x2 = %s * i;\n", R);
            x = "x2";
        }
        if (leaky)
            buf_printf(&m, "  h = %s + %s * (%s%s - %s);\n", u, K, x, leak, u);
        else
            buf_printf(&m, "  h = %s + x;\n", u);
        buf_printf(&m, "  s = 1 - spike(%s - h);\n  v = (1 - s) * h;\n", TH);
        if (VL)
            buf_puts(&m, "  f = 0.0 * f;\n");
        buf_puts(&m, "  emit s;\n}\n");
    } else {
        buf_printf(&m, "  s = 1 - spike(%s - v);\n", TH);
        if (f->kind == K_CUBALIF)
            buf_printf(&m, "  v = v - s * %s;\n  i = %s * i + x;\n  v = %s * v + i;\n", TH, KS, K);
        else if (f->kind == K_LIF)
            buf_printf(&m, "  v = %s * v + x - s * %s;\n", K, TH);
        else
            buf_printf(&m, "  v = v + x - s * %s;\n", TH);
        buf_puts(&m, "  emit s;\n}\n");
    }
    model_end(I, f, model, &m);
    ok = 1;
out:
    buf_free(&m);
    return ok;
}

/* LIF, IF and LI as Sinabs's from_nir builds them (docs/nir.md, section
   4): LIFSqueeze, IAFSqueeze and ExpLeakSqueeze without input scaling.
   alpha = exp(-dt / tau) in float32 (Sinabs: exp(-1 / tau), tau in
   steps, dt 1); v = alpha v + x (IF: v + x); several spikes a step,
   (v > 0) trunc(v / v_th), which is floor(max(v, 0) / v_th) for a positive
   threshold, subtracted from v; an IF's membrane is then kept at -v_th or
   above as Sinabs clips it, relu(v + v_th) - v_th. r is not read (LI: it
   must be 1), v_leak must be 0. The count's gradient is the surrogate of
   spike(v - v_th): the forward is the count, exactly (n - u + u, small
   integers). */
static int op_neuron_sinabs(Imp *I, FNode *f, const Shape *in, const double *tau, const double *r,
                            const double *vl, const double *vth) {
    int64_t n = shape_count(in);
    for (int64_t i = 0; i < n; i++) {
        const char *why = NULL;
        double got = 0;
        if (vl && vl[i] != 0)
            why = "v_leak must be 0", got = vl[i];
        else if (f->kind == K_LI && r[i] != 1)
            why = "r must be 1", got = r[i];
        else if (f->kind != K_LI && !(f32(vth[i]) > 0))
            why = "v_threshold must be positive", got = vth[i];
        if (why) {
            bad(I, f, "the sinabs convention: %s (as Sinabs's importer needs), it has %g at flat index %lld", why,
                got, (long long)i);
            return 0;
        }
    }
    double *al = arena_alloc(I->a, sizeof(double) * (size_t)(n + 1) * 2), *th = al + n;
    for (int64_t i = 0; i < n; i++) {
        /* Sinabs: torch.exp(-1.0 / tau) of a float32 tensor: the quotient
           rounded to float32, then its exponential */
        al[i] = f->kind == K_IF ? 1 : f32(exp((double)f32(-I->dt / (double)f32(tau[i]))));
        th[i] = f->kind == K_LI ? 0 : f32(vth[i]);
    }
    Buf m = {0};
    const char *model = model_begin(I, f, "sinabs_");
    int ok = 0;
    const char *A = NULL, *TH = NULL;
    if (f->kind != K_IF && !(A = coef(I, f, &m, "alpha", "exp(-dt / tau)", al, in)))
        goto out;
    if (f->kind != K_LI && !(TH = coef(I, f, &m, "v_th", "the threshold", th, in)))
        goto out;
    buf_puts(&m, "  state v = 0.0;\n");
    if (f->kind == K_LI) {
        buf_printf(&m, "  v = %s * v + x;\n  emit v;\n}\n", A);
    } else {
        if (A)
            buf_printf(&m, "  h = %s * v + x;\n", A);
        else
            buf_puts(&m, "  h = v + x;\n");
        buf_printf(&m, "  u = spike(h - %s);\n  s = detach(floor(max(h, 0.0) / %s) - u) + u;\n", TH, TH);
        if (f->kind == K_IF)
            buf_printf(&m, "  w = h - s * %s;\n  v = max(w + %s, 0.0) - %s;\n", TH, TH, TH);
        else
            buf_printf(&m, "  v = h - s * %s;\n", TH);
        buf_puts(&m, "  emit s;\n}\n");
    }
    model_end(I, f, model, &m);
    ok = 1;
out:
    buf_free(&m);
    return ok;
}

/* NIR neurons: the discretized equations (docs/nir.md). */
static int op_neuron(Imp *I, FNode *f, const Shape *layer) {
    static const char *const names[] = {"tau", "tau_mem", "tau_syn", "r", "v_leak", "v_threshold", "v_reset",
                                        "w_in", NULL};
    Shape one;
    const Shape *in = param_shape(I, f, layer, names, &one);
    if (!in)
        return 0;
    f->shape = *layer;
    int64_t n = shape_count(in);
    double dt = I->dt;
    int snt = I->opt->conv == NIR_CONV_SNNTORCH;
    int spiking = f->kind == K_LIF || f->kind == K_CUBALIF || f->kind == K_IF;
    int cuba = f->kind == K_CUBALIF || f->kind == K_CUBALI;
    int leaky = f->kind != K_IF && f->kind != K_I;
    double *tau = NULL, *tau_syn = NULL, *r, *vl = NULL, *vth = NULL, *vr = NULL, *w_in = NULL;
    if (leaky && !(tau = per_neuron(I, f, cuba ? "tau_mem" : "tau", in, 0, 0)))
        return 0;
    if (cuba && (!(tau_syn = per_neuron(I, f, "tau_syn", in, 0, 0)) || !(w_in = per_neuron(I, f, "w_in", in, 1, 1))))
        return 0;
    if (!(r = per_neuron(I, f, "r", in, 0, 1)))
        return 0;
    if (leaky && !(vl = per_neuron(I, f, "v_leak", in, 0, 0)))
        return 0;
    if (spiking &&
        (!(vth = per_neuron(I, f, "v_threshold", in, 0, 0)) || !(vr = per_neuron(I, f, "v_reset", in, 1, 0))))
        return 0;
    for (int64_t i = 0; i < n; i++)
        if ((tau && !(tau[i] > 0)) || (tau_syn && !(tau_syn[i] > 0))) {
            bad(I, f, "dataset '%s' must be positive, it has %g at flat index %lld",
                tau && !(tau[i] > 0) ? (cuba ? "tau_mem" : "tau") : "tau_syn",
                tau && !(tau[i] > 0) ? tau[i] : tau_syn[i],
                (long long)i);
            return 0;
        }
    if ((I->opt->conv == NIR_CONV_NORSE || I->opt->conv == NIR_CONV_SPYX) && spiking)
        return op_neuron_peer(I, f, in, tau, tau_syn, r, vl, vth, w_in);
    if (I->opt->conv == NIR_CONV_SINABS && (f->kind == K_LIF || f->kind == K_IF || f->kind == K_LI))
        return op_neuron_sinabs(I, f, in, tau, r, vl, vth);
    double *beta = arena_alloc(I->a, sizeof(double) * (size_t)(n + 1) * 7);
    double *g = beta + n, *c = g + n, *alpha = c + n, *gs = alpha + n, *th = gs + n, *rst = th + n;
    for (int64_t i = 0; i < n; i++) {
        if (leaky) {
            beta[i] = 1 - dt / tau[i];
            g[i] = r[i] * dt / tau[i];
            c[i] = vl[i] * dt / tau[i];
        } else {
            beta[i] = 1;
            g[i] = r[i] * dt;
            c[i] = 0;
        }
        if (cuba) {
            alpha[i] = 1 - dt / tau_syn[i];
            gs[i] = w_in[i] * dt / tau_syn[i];
        }
        if (spiking) {
            th[i] = vth[i];
            rst[i] = vr[i];
        }
    }
    if (snt && spiking) {
        /* snnTorch 0.9.4's import_from_nir: no leak voltage, no reset
           potential (reset to zero), the input not scaled but the
           threshold divided by the input's scale; IF becomes a Leaky of
           beta 0.9 */
        for (int64_t i = 0; i < n; i++) {
            if ((leaky && fabs(vl[i]) > 1e-8) || vr[i] != 0) {
                bad(I, f, "the snntorch convention needs v_leak and v_reset 0 (snnTorch's importer has neither), "
                          "neuron %lld has %g and %g",
                    (long long)i, leaky ? vl[i] : 0.0, vr[i]);
                return 0;
            }
            if (f->kind == K_CUBALIF && fabs(r[i] - tau[i] / dt) > 1e-8 + 1e-5 * fabs(tau[i] / dt)) {
                bad(I, f, "the snntorch convention needs r = tau_mem / dt (snnTorch's importer refuses other values), "
                          "neuron %lld has r %g, tau_mem / dt %g",
                    (long long)i, r[i], tau[i] / dt);
                return 0;
            }
            double ws = f->kind == K_LIF ? r[i] * dt / tau[i] : f->kind == K_CUBALIF ? w_in[i] * dt / tau_syn[i] : 1;
            if (!(ws > 0)) {
                bad(I, f,
                    "the snntorch convention divides the threshold by the input's scale, which is %g at neuron %lld",
                    ws, (long long)i);
                return 0;
            }
            th[i] = f->kind == K_IF ? vth[i] * r[i] : vth[i] / ws;
            c[i] = 0;
            g[i] = 1;
            gs[i] = 1;
            if (f->kind == K_IF)
                beta[i] = 0.9;
            /* snnTorch clamps its decays to [0, 1] */
            beta[i] = fmin(fmax(beta[i], 0), 1);
            if (cuba)
                alpha[i] = fmin(fmax(alpha[i], 0), 1);
        }
    }
    Buf m = {0};
    const char *model = model_begin(I, f, "");
    int ok = 0;
    const char *B = coef(I, f, &m, "beta", "the leak 1 - dt / tau", beta, in);
    const char *G = B ? coef(I, f, &m, "g", "the input's scale", g, in) : NULL;
    const char *Cc = G ? coef(I, f, &m, "c", "the leak voltage's term", c, in) : NULL;
    const char *A = NULL, *GS = NULL, *TH = NULL, *VR = NULL;
    if (!Cc)
        goto out;
    if (cuba && (!(A = coef(I, f, &m, "alpha", "the current's leak 1 - dt / tau_syn", alpha, in)) ||
                 !(GS = coef(I, f, &m, "gs", "the current's input scale", gs, in))))
        goto out;
    if (spiking && (!(TH = coef(I, f, &m, "v_th", "the threshold", th, in)) ||
                    !(VR = coef(I, f, &m, "v_reset", "the reset potential", rst, in))))
        goto out;
    if (cuba)
        buf_puts(&m, "  state i = 0.0;\n");
    buf_puts(&m, "  state v = 0.0;\n");
    if (snt && spiking) {
        /* snnTorch's step, operation by operation: the reset of the
           previous step's membrane (rp, which its own reset has usually
           cleared), the charge, the spike, the reset of this step */
        buf_printf(&m, "  rp = 1 - spike(%s - v);\n", TH);
        if (f->kind == K_LIF)
            buf_printf(&m, "  v0 = (1 - rp) * v;\n  h = %s;\n", sum3(I, term(I, B, beta, n, "v0"), "x", NULL));
        else if (f->kind == K_CUBALIF)
            buf_printf(&m, "  i = %s;\n  h = %s;\n  h = h - h * rp;\n",
                       sum3(I, term(I, A, alpha, n, "i"), "x", NULL), sum3(I, term(I, B, beta, n, "v"), "i", NULL));
        else
            buf_printf(&m, "  h = %s - rp * %s;\n", sum3(I, term(I, B, beta, n, "v"), "x", NULL), TH);
        buf_printf(&m, "  s = 1 - spike(%s - h);\n", TH);
        if (f->kind == K_IF)
            buf_printf(&m, "  v = h - (s - rp) * %s;\n  emit s;\n}\n", TH);
        else
            buf_puts(&m, "  v = h - (s - rp) * h;\n  emit s;\n}\n");
        model_end(I, f, model, &m);
        ok = 1;
        goto out;
    }
    if (cuba)
        buf_printf(&m, "  i = %s;\n", sum3(I, term(I, A, alpha, n, "i"), term(I, GS, gs, n, "x"), NULL));
    const char *h = sum3(I, term(I, B, beta, n, "v"), term(I, G, g, n, cuba ? "i" : "x"), all_eq(c, n, 0) ? NULL : Cc);
    if (!spiking) {
        buf_printf(&m, "  v = %s;\n  emit v;\n}\n", h);
    } else {
        buf_printf(&m, "  h = %s;\n  s = 1 - spike(%s - h);\n", h, TH);
        if (all_eq(rst, n, 0))
            buf_puts(&m, "  v = (1 - s) * h;\n");
        else
            buf_printf(&m, "  v = (1 - s) * h + s * %s;\n", VR);
        buf_puts(&m, "  emit s;\n}\n");
    }
    model_end(I, f, model, &m);
    ok = 1;
out:
    buf_free(&m);
    return ok;
}

/* The input shape of f: its inputs' whose shapes are known, which must
   agree (a value of the previous step may come from a node not done yet). */
static int input_shape(Imp *I, FNode *f, Shape *s) {
    s->ndim = 0;
    const char *from = NULL;
    for (int k = 0; k < f->in.len; k++) {
        const FNode *p = &I->nodes.items[f->in.items[k].src];
        if (p->shape.ndim == 0)
            continue;
        if (s->ndim == 0) {
            *s = p->shape;
            from = p->qname;
            continue;
        }
        int same = s->ndim == p->shape.ndim;
        for (int i = 0; same && i < s->ndim; i++)
            same = s->d[i] == p->shape.d[i];
        if (!same) {
            bad(I, f, "its inputs differ in shape: %s (from '%s') and %s (from '%s')", shape_str_(I, s), q(I, from),
                shape_str_(I, &p->shape), q(I, p->qname));
            return 0;
        }
    }
    if (s->ndim == 0)
        ICE("NIR node taken before its inputs' shapes are known");
    return 1;
}

/* Whether f's input shape is known: one of its inputs is done (the others
   are checked against it once every node is). */
static int ready(const Imp *I, const FNode *f) {
    for (int k = 0; k < f->in.len; k++)
        if (I->nodes.items[f->in.items[k].src].shape.ndim > 0)
            return 1;
    return f->in.len == 0;
}

static int do_node(Imp *I, FNode *f) {
    if (f->kind == K_INPUT) {
        const NirArray *sh = numbers(I, f, "shape", 0);
        if (!sh)
            return 0;
        if (sh->count < 1 || sh->count > IR_MAX_DIMS) {
            bad(I, f, "dataset 'shape' must have 1 to %d dimensions, it has %lld", IR_MAX_DIMS, (long long)sh->count);
            return 0;
        }
        f->shape.ndim = (int)sh->count;
        for (int i = 0; i < f->shape.ndim; i++) {
            if (sh->num[i] != floor(sh->num[i]) || sh->num[i] < 1 || sh->num[i] > 2147483647.0) {
                bad(I, f, "dataset 'shape' must hold sizes from 1 to 2147483647, it has %g", sh->num[i]);
                return 0;
            }
            f->shape.d[i] = (int64_t)sh->num[i];
        }
        /* nirtorch 1.0 keeps the batch of its sample data: [1, N] before a
           dense layer, [1, C, H, W] (docs/nir.md) */
        int dense_next = 0;
        for (int k = 0; k < f->succ.len; k++)
            dense_next |= I->nodes.items[f->succ.items[k]].kind == K_AFFINE ||
                          I->nodes.items[f->succ.items[k]].kind == K_LINEAR;
        if (f->shape.d[0] == 1 && (f->shape.ndim == 4 || (f->shape.ndim == 2 && dense_next) ||
                                   (f->shape.ndim == 3 && I->has_conv1d))) {
            f->shape.ndim--;
            memmove(f->shape.d, f->shape.d + 1, sizeof(int64_t) * (size_t)f->shape.ndim);
        }
        /* a graph with a Conv1d: [C, L] is [C, 1, L], what conv2d takes */
        if (I->has_conv1d && f->shape.ndim == 2) {
            f->shape.ndim = 3;
            f->shape.d[2] = f->shape.d[1];
            f->shape.d[1] = 1;
        }
        if (!check_count(I, f, &f->shape))
            return 0;
        f->layer = make_name(I, f->qname);
        return 1;
    }
    if (f->in.len == 0) {
        bad(I, f, "no edge leads to it");
        return 0;
    }
    Shape in;
    if (!input_shape(I, f, &in))
        return 0;
    switch (f->kind) {
    case K_OUTPUT:
    case K_PASS:
        f->shape = in;
        f->alias = 1;
        break;
    case K_AFFINE:
    case K_LINEAR:
        return op_dense(I, f, &in);
    case K_CONV2D:
    case K_CONV1D:
        return op_conv(I, f, &in);
    case K_SUMPOOL:
    case K_AVGPOOL:
        return op_pool(I, f, &in);
    case K_FLATTEN:
        if (!op_flatten(I, f, &in))
            return 0;
        if (!f->alias)
            return 1;
        break;
    case K_SCALE:
    case K_THRESHOLD:
        return op_scale_threshold(I, f, &in);
    case K_DELAY:
        {
            static const char *const names[] = {"delay", NULL};
            Shape one;
            const Shape *ps = param_shape(I, f, &in, names, &one);
            if (!ps || !per_neuron(I, f, "delay", ps, 0, 0))
                return 0;
        }
        f->shape = in;
        if (f->steps)
            return delay_per_neuron(I, f);
        if (f->delay == 0)
            break; /* an identity */
        f->layer = make_name(I, f->qname);
        f->chain = arena_alloc(I->a, sizeof(char *) * (size_t)f->delay);
        for (int k = 0; k + 1 < f->delay; k++)
            f->chain[k] = make_name(I, arena_printf(I->a, "%s_d%d", f->qname, k + 1));
        f->chain[f->delay - 1] = f->layer;
        return 1;
    default:
        return op_neuron(I, f, &in);
    }
    /* an identity: the value of its one input, or the sum of several */
    if (f->in.len == 1 && !f->in.items[0].delayed) {
        f->layer = I->nodes.items[f->in.items[0].src].layer;
    } else {
        f->alias = 0;
        f->layer = make_name(I, f->qname);
    }
    return 1;
}

/* The layers of a Delay whose delays differ between neurons (docs/nir.md,
   section 2): its chain of prev() and a mask per number of steps. */
static int delay_per_neuron(Imp *I, FNode *f) {
    int64_t n = shape_count(&f->shape);
    int len = f->delay - f->lo + 1;
    f->layer = make_name(I, f->qname);
    f->chain = arena_alloc(I->a, sizeof(char *) * (size_t)len);
    f->mask = arena_alloc(I->a, sizeof(char *) * (size_t)(f->delay + 1));
    f->mask_model = arena_alloc(I->a, sizeof(char *) * (size_t)(f->delay + 1));
    for (int k = 0; k < len; k++)
        f->chain[k] = k == 0 && !f->lo && f->in.len == 1 && !f->in.items[0].delayed
                          ? I->nodes.items[f->in.items[0].src].layer
                          : make_name(I, arena_printf(I->a, "%s_d%d", f->qname, f->lo + k));
    for (int s = f->lo; s <= f->delay; s++) {
        int64_t used = 0;
        for (int64_t i = 0; i < n; i++)
            used += f->steps[i] == s;
        if (!used)
            continue;
        f->mask[s] = make_name(I, arena_printf(I->a, "%s_m%d", f->qname, s));
        f->mask_model[s] = make_name(I, arena_printf(I->a, "NIR_Scale_%s", f->mask[s]));
        float *k = arena_alloc(I->a, sizeof(float) * (size_t)(n + 1));
        for (int64_t i = 0; i < n; i++)
            k[i] = f->steps[i] == s ? 1.0f : 0.0f;
        add_tensor(I, f->mask[s], "k", f, "delay", f->shape.ndim, f->shape.d, n, k);
        buf_printf(&I->models,
                   "# node '%s' (Delay): its neurons delayed by %d steps\nneuron %s() {\n  param k = 0.0 per neuron;\n"
                   "  emit x * k;\n}\n",
                   q(I, f->qname), s, f->mask_model[s]);
    }
    return 1;
}

/* ---- the text ---- */

static void shape_text(Buf *b, const Shape *s) {
    buf_puts(b, "[");
    for (int i = 0; i < s->ndim; i++)
        buf_printf(b, i ? ", %lld" : "%lld", (long long)s->d[i]);
    buf_puts(b, "]");
}

static const char *value_of(Imp *I, const Pred *p) {
    const FNode *s = &I->nodes.items[p->src];
    return p->delayed ? arena_printf(I->a, "prev(%s)", s->layer) : s->layer;
}

static void inputs(Imp *I, const FNode *f) {
    Buf *b = &I->body;
    if (f->in.len == 1)
        buf_puts(b, value_of(I, &f->in.items[0]));
    else
        buf_printf(b, "add(%s, %s)", value_of(I, &f->in.items[0]), value_of(I, &f->in.items[1]));
    for (int k = 2; k < f->in.len; k++)
        buf_printf(b, " |> add(%s)", value_of(I, &f->in.items[k]));
}

/* A Delay whose delays differ between neurons: the chain of its steps,
   each step's neurons picked by a mask of 0 and 1 (exact), summed. */
static void delay_statements(Imp *I, const FNode *f) {
    Buf *b = &I->body;
    int plain = !f->lo && f->in.len == 1 && !f->in.items[0].delayed; /* chain[0] is its input's layer */
    if (!plain) {
        buf_printf(b, "  %s = ", f->chain[0]);
        inputs(I, f);
        buf_printf(b, ";  # node '%s', delays %d to %d steps\n", q(I, f->qname), f->lo, f->delay);
    }
    for (int k = 1; k <= f->delay - f->lo; k++)
        buf_printf(b, "  %s = prev(%s);\n", f->chain[k], f->chain[k - 1]);
    for (int s = f->lo; s <= f->delay; s++)
        if (f->mask[s])
            buf_printf(b, "  %s = %s |> %s();\n", f->mask[s], f->chain[s - f->lo], f->mask_model[s]);
    buf_printf(b, "  %s = ", f->layer);
    for (int s = f->lo, first = 1; s <= f->delay; s++)
        if (f->mask[s]) {
            buf_printf(b, first ? "%s" : " |> add(%s)", f->mask[s]);
            first = 0;
        }
    buf_printf(b, ";  # node '%s'\n", q(I, f->qname));
}

static void statement(Imp *I, const FNode *f) {
    Buf *b = &I->body;
    if (f->steps) {
        delay_statements(I, f);
        return;
    }
    /* a Delay of n steps: its inputs read the previous step, then n - 1 more */
    buf_printf(b, "  %s = ", f->chain ? f->chain[0] : f->layer);
    inputs(I, f);
    if (f->op)
        buf_printf(b, " |> %s", f->op);
    buf_printf(b, ";  # node '%s'\n", q(I, f->qname));
    for (int k = 1; f->chain && k < f->delay; k++)
        buf_printf(b, "  %s = prev(%s);\n", f->chain[k], f->chain[k - 1]);
}

/* A Delay's steps, before the graph is ordered: a delay of whole steps of
   dt, the same for every neuron. Its inputs then read the previous step
   (the first of its steps), so a cycle through it needs no other delay;
   a Delay of 0 steps is an identity, and stateless. 0 after reporting. */
static int delay_steps(Imp *I, FNode *f) {
    const NirArray *d = numbers(I, f, "delay", 0);
    if (!d)
        return 0;
    if (d->count < 1) {
        bad(I, f, "dataset 'delay' is empty");
        return 0;
    }
    double *st = arena_alloc(I->a, sizeof(double) * (size_t)(d->count + 1));
    int lo = 1000, hi = 0, same = 1;
    for (int64_t i = 1; i < d->count; i++)
        same &= d->num[i] == d->num[0];
    for (int64_t i = 0; i < d->count; i++) {
        double steps = d->num[i] / I->dt, n = floor(steps + 0.5);
        if (!(d->num[i] >= 0) || n > 1000 || fabs(steps - n) > 1e-6 * (n > 1 ? n : 1)) {
            bad(I, f, "its delay of %g s%s is not a whole number of steps of dt = %g s from 0 to 1000", d->num[i],
                same ? "" : arena_printf(I->a, " at flat index %lld", (long long)i), I->dt);
            return 0;
        }
        st[i] = n;
        lo = n < lo ? (int)n : lo;
        hi = n > hi ? (int)n : hi;
    }
    if (lo != hi) { /* per neuron: a chain of prev() up to the longest, each neuron taking its step */
        int distinct = 0;
        char seen[1001] = {0};
        for (int64_t i = 0; i < d->count; i++)
            distinct += !seen[(int)st[i]]++;
        if ((int64_t)distinct * d->count > ((int64_t)1 << 24)) {
            bad(I, f, "its %d different delays over %lld neurons take a mask of %lld values; snnc takes at most "
                      "%lld",
                distinct, (long long)d->count, (long long)distinct * d->count, (long long)1 << 24);
            return 0;
        }
        f->steps = st;
    }
    f->lo = lo > 0;
    f->delay = hi;
    f->stateful = lo > 0; /* a cycle through it needs no other delay when every neuron is delayed */
    for (int k = 0; lo > 0 && k < f->in.len; k++)
        f->in.items[k].delayed = 1;
    return 1;
}

static int net_name(Imp *I, const char *path, const char **out) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base);
    if (n > 4 && !strcmp(base + n - 4, ".nir"))
        n -= 4;
    const char *want = arena_strndup(I->a, base, n);
    *out = make_name(I, *want ? want : "Nir");
    return 1;
}

int nir_import_mem(Arena *a, const char *path, const void *bytes, size_t len, const NirOptions *opt,
                   OnnxImport *out) {
    memset(out, 0, sizeof *out);
    NirGraph *root;
    if (nir_read_mem(a, path, bytes, len, &root) != 0)
        return -1;
    Imp I;
    memset(&I, 0, sizeof I);
    I.a = a;
    I.path = path;
    I.opt = opt;
    I.out = out;
    /* the step the peer's importer assumes by default: Norse 1e-3, Spyx 1,
       Sinabs 1 (it reads tau in steps) */
    I.dt = opt->dt > 0                     ? opt->dt
           : opt->conv == NIR_CONV_NORSE ? 1e-3
           : opt->conv == NIR_CONV_SPYX  ? 1.0
           : opt->conv == NIR_CONV_SINABS ? 1.0
                                         : NIR_DEFAULT_DT;
    int rc = -1;
    if (opt->timesteps <= 0) {
        bad(&I, NULL, "how many timesteps? a NIR graph does not say: give --timesteps N");
        goto done;
    }
    if (add_graph(&I, root, NULL, "", 1) < 0)
        goto done;
    const GRec *top = &I.graphs.items[0];
    if (top->inputs.len != 1 || top->outputs.len != 1) {
        bad(&I, NULL, "the graph has %d Input and %d Output nodes; snnc takes graphs of one of each",
            top->inputs.len, top->outputs.len);
        goto done;
    }
    for (int i = 0; i < I.nodes.len; i++) {
        if (I.nodes.items[i].kind == K_DELAY && !delay_steps(&I, &I.nodes.items[i]))
            goto done;
        I.has_conv1d |= I.nodes.items[i].kind == K_CONV1D;
    }
    if (!check_instant_cycles(&I))
        goto done;
    int root_node = top->inputs.items[0];
    if (!check_reachable(&I, root_node))
        goto done;
    mark_delays(&I, root_node);
    /* the order: Kahn's, over the undelayed edges */
    int n = I.nodes.len;
    int *indeg = arena_alloc(a, sizeof(int) * (size_t)(n + 1)), *order = arena_alloc(a, sizeof(int) * (size_t)(n + 1));
    for (int i = 0; i < n; i++)
        for (int k = 0; k < I.nodes.items[i].in.len; k++)
            indeg[i] += !I.nodes.items[i].in.items[k].delayed;
    int head = 0, tail = 0;
    order[tail++] = root_node;
    for (int i = 0; i < n; i++) /* nodes that read only the previous step */
        if (i != root_node && indeg[i] == 0)
            order[tail++] = i;
    while (head < tail) {
        int u = order[head++];
        const FNode *fu = &I.nodes.items[u];
        for (int k = 0; k < fu->succ.len; k++) {
            int v = fu->succ.items[k];
            if (!edge(&I, fu, k)->delayed && --indeg[v] == 0)
                order[tail++] = v;
        }
    }
    if (tail != n)
        ICE("NIR nodes left unordered after the back edges were delayed");
    /* the nodes in order, each once its input's shape is known: a node
       that reads only the previous step waits for the node it reads */
    char *done = arena_alloc(a, (size_t)n + 1);
    for (int left = n, progress = 1; left;) {
        if (!progress) {
            for (int k = 0; k < n; k++)
                if (!done[order[k]]) {
                    bad(&I, &I.nodes.items[order[k]], "its shape cannot be inferred: it reads only values of the "
                                                      "previous step of nodes whose shapes depend on it");
                    goto done;
                }
        }
        progress = 0;
        for (int k = 0; k < n; k++) {
            FNode *f = &I.nodes.items[order[k]];
            if (done[order[k]] || (f->kind != K_INPUT && !ready(&I, f)))
                continue;
            if (!do_node(&I, f))
                goto done;
            done[order[k]] = 1;
            left--;
            progress = 1;
        }
    }
    /* a value read from the previous step must fit where it goes */
    for (int i = 0; i < n; i++) {
        FNode *f = &I.nodes.items[i];
        Shape in;
        if (f->kind != K_INPUT && !input_shape(&I, f, &in))
            goto done;
    }
    const FNode *in = &I.nodes.items[root_node], *o = &I.nodes.items[top->outputs.items[0]];
    const char *net; /* named after the layers, which keep their nodes' names first */
    net_name(&I, path, &net);
    Buf text = {0};
    buf_printf(&text, "# converted by snnc from %s\n", q(&I, path));
    if (I.models.len)
        buf_puts(&text, I.models.data);
    buf_printf(&text, "network %s {\n  timesteps %d;\n  input %s : ", net, opt->timesteps, in->layer);
    shape_text(&text, &in->shape);
    buf_puts(&text, " encode sequence;\n");
    for (int k = 0; k < n; k++) {
        const FNode *f = &I.nodes.items[order[k]];
        if (f->kind != K_INPUT && !f->alias)
            statement(&I, f);
    }
    if (I.body.len)
        buf_puts(&text, I.body.data);
    buf_printf(&text, "  output %s readout steps;\n}\n", o->layer);
    out->text = arena_strdup(a, text.data);
    out->len = strlen(out->text);
    buf_free(&text);
    rc = 0;
done:
    buf_free(&I.models);
    buf_free(&I.body);
    buf_free(&I.ctor);
    return I.errors ? -1 : rc;
}

int nir_import(Arena *a, const char *path, const NirOptions *opt, OnnxImport *out) {
    memset(out, 0, sizeof *out);
    size_t len;
    char *bytes = read_file_reported(path, &len, NIR_MAX_FILE_BYTES);
    if (!bytes)
        return -1;
    int rc = nir_import_mem(a, path, bytes, len, opt, out);
    free(bytes);
    return rc;
}
