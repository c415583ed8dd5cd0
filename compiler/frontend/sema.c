/*
 * sema.c: checks a network and builds its graph IR.
 *
 * Three phases. First the network's statements are walked in order and each
 * pipe `a |> f(...)` becomes a node with its attributes; neuron layers are
 * instantiated from their model right away (neuron.c). Second, shapes are
 * inferred to a fixpoint, because a recurrent edge prev(h) may be read before
 * h is defined. Third, learnable parameters are created from the shapes.
 * Errors are reported where the user wrote the offending text; a node whose
 * shape could not be inferred is marked so that one mistake is reported once.
 */
#include "sema.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "neuron.h"

typedef struct Name {
    const char *name;
    int node;
    Loc loc;
} Name;

typedef struct Sema {
    Arena *arena;
    IrGraph *g;
    VEC(const Node *) models; /* neuron definitions, std first */
    StrMap model_index;       /* model name -> index in models */
    StrMap bad_models;        /* names of models whose errors were reported -> 1 */
    VEC(Name) names;          /* layer and chain names visible in the network */
    StrMap name_index;        /* name -> index in names */
    StrMap node_names;        /* node name -> number of nodes with that name */
    StrMap name_hint;         /* auto_name's base -> a suffix below which all are taken */
    VEC(int) pending;         /* DELAY nodes whose source is resolved at the end */
    VEC(const Node *) pending_ref;
    const char *chain;        /* name of the statement being elaborated */
    int chain_first;          /* first node created by that statement */
    unsigned char *bad;       /* per node: shape could not be inferred */
} Sema;

/* ---- names ---- */

static const Name *find_name(Sema *S, const char *name) {
    const int *i = strmap_get(&S->name_index, name);
    return i ? &S->names.items[*i] : NULL;
}

static int define_name(Sema *S, const char *name, int node, Loc loc) {
    const Name *prev = find_name(S, name);
    if (prev) {
        error_at(loc, "redefinition of '%s'", name);
        note_at(prev->loc, "'%s' was defined here", name);
        return 0;
    }
    Name n = {name, node, loc};
    vec_push(S->arena, &S->names, n);
    *strmap_put(S->arena, &S->name_index, name) = S->names.len - 1;
    return 1;
}

static int node_exists(Sema *S, const char *name) {
    const int *n = strmap_get(&S->node_names, name);
    return n && *n > 0;
}

/* A node name given up (a chain's last layer takes the chain's name): if
   it looks like an auto name BASE_N, auto_name may give it again, so
   BASE's hint goes down to N. (A name that only looks like one just makes
   the next search start lower.) */
static void name_freed(Sema *S, const char *name) {
    if (!S->name_hint.len)
        return;
    const char *us = strrchr(name, '_');
    if (!us || us == name || !us[1])
        return;
    long v = 0;
    for (const char *p = us + 1; *p; p++) {
        if (*p < '0' || *p > '9' || v > INT_MAX / 10)
            return;
        v = v * 10 + (*p - '0');
    }
    int *hint = strmap_get(&S->name_hint, arena_strndup(S->arena, name, (size_t)(us - name)));
    if (hint && *hint > v)
        *hint = (int)v;
}

static void set_node_name(Sema *S, int id, const char *name) {
    IrNode *n = &S->g->nodes.items[id];
    if (n->name && --*strmap_put(S->arena, &S->node_names, n->name) == 0)
        name_freed(S, n->name);
    n->name = name;
    (*strmap_put(S->arena, &S->node_names, name))++;
}

static int node_name_taken(Sema *S, const char *name) {
    return node_exists(S, name) || find_name(S, name) != NULL;
}

/* Auto names: "<chain>_<op>", then "_2", "_3"... until unused. The search
   starts at the base's hint, below which every suffix is taken, so that a
   statement of many layers of one kind does not cost the square of their
   number; the name found is the same. */
static const char *auto_name(Sema *S, const char *op) {
    const char *base = arena_printf(S->arena, "%s_%s", S->chain ? S->chain : "net", op);
    if (!node_name_taken(S, base))
        return base;
    int *hint = strmap_put(S->arena, &S->name_hint, base); /* 0 when new */
    for (int i = *hint > 2 ? *hint : 2;; i++) {
        const char *n = arena_printf(S->arena, "%s_%d", base, i);
        if (!node_name_taken(S, n)) {
            *hint = i; /* taken once the caller names its node */
            return n;
        }
    }
}

static const Node *find_model(Sema *S, const char *name) {
    const int *i = strmap_get(&S->model_index, name);
    return i ? S->models.items[*i] : NULL;
}

static int model_is_bad(Sema *S, const Node *model) {
    return strmap_get(&S->bad_models, model->name) != NULL;
}

static int model_needs_args(const Node *model) {
    for (const Node *p = model->args; p; p = p->next)
        if (p->kind != N_KWARG)
            return 1;
    return 0;
}

static void model_set_bad(Sema *S, const Node *model) {
    *strmap_put(S->arena, &S->bad_models, model->name) = 1;
}

/* ---- constant arguments of layers ---- */

/* Evaluates a constant expression of the network (layer arguments,
   timesteps). Returns 0 after reporting an error. */
static int const_num(Sema *S, const Node *e, double *out) {
    (void)S;
    switch (e->kind) {
    case N_NUM:
    case N_BOOL:
        *out = e->num;
        return 1;
    case N_UNOP: {
        double a;
        if (!const_num(S, e->a, &a))
            return 0;
        *out = e->op == OP_NEG ? -a : !a;
        return 1;
    }
    case N_BINOP: {
        double a, b;
        if (!const_num(S, e->a, &a) || !const_num(S, e->b, &b))
            return 0;
        switch (e->op) {
        case OP_ADD: *out = a + b; break;
        case OP_SUB: *out = a - b; break;
        case OP_MUL: *out = a * b; break;
        case OP_DIV:
            if (b == 0) {
                error_at(e->loc, "division by zero in a constant expression");
                return 0;
            }
            *out = a / b;
            break;
        default:
            error_at(e->loc, "operator '%s' is not allowed here", ast_op_text(e->op));
            return 0;
        }
        if (!isfinite(*out)) {
            error_at(e->loc, "constant expression overflows");
            return 0;
        }
        return 1;
    }
    default:
        error_at(e->loc, "expected a constant number");
        return 0;
    }
}

static int const_int(Sema *S, const Node *e, int64_t lo, int64_t hi, const char *what, int64_t *out) {
    double v;
    if (!const_num(S, e, &v))
        return 0;
    if (v != floor(v)) {
        error_at(ast_start(e), "%s must be an integer, got %g", what, v);
        return 0;
    }
    if (v < (double)lo || v > (double)hi) {
        error_at(ast_start(e), "%s must be between %lld and %lld, got %.17g", what, (long long)lo,
                 (long long)hi, v);
        return 0;
    }
    *out = (int64_t)v;
    return 1;
}

/* An `ints` argument: n or [a, b]. */
static int const_pair(Sema *S, const Node *e, int64_t lo, const char *what, int out[2]) {
    int64_t v;
    if (e->kind == N_LIST) {
        if (ast_count(e->args) != 2) {
            error_at(e->loc, "%s takes one integer or a list of two", what);
            return 0;
        }
        for (int i = 0; i < 2; i++) {
            const Node *item = i ? e->args->next : e->args;
            if (!const_int(S, item, lo, 65536, what, &v))
                return 0;
            out[i] = (int)v;
        }
        return 1;
    }
    if (!const_int(S, e, lo, 65536, what, &v))
        return 0;
    out[0] = out[1] = (int)v;
    return 1;
}

/* A `dims` argument: a size or a list of 1 to IR_MAX_DIMS sizes, one of
   which may be -1 (inferred from the input's size). */
static int const_dims(Sema *S, const Node *e, const char *what, Shape *out) {
    const Node *items = e->kind == N_LIST ? e->args : e;
    int count = e->kind == N_LIST ? ast_count(e->args) : 1;
    if (count < 1 || count > IR_MAX_DIMS) {
        error_at(e->loc, "%s takes a size or a list of 1 to %d sizes", what, IR_MAX_DIMS);
        return 0;
    }
    out->ndim = 0;
    int inferred = 0;
    for (const Node *it = items; it && out->ndim < count; it = it->next) {
        int64_t v;
        if (!const_int(S, it, -1, IR_MAX_ELEMS - 1, what, &v))
            return 0;
        if (v == 0) {
            error_at(ast_start(it), "%s: a size must be positive, or -1 for the size that fits", what);
            return 0;
        }
        if (v < 0 && inferred++) {
            error_at(ast_start(it), "%s: only one size may be -1", what);
            return 0;
        }
        out->d[out->ndim++] = v;
    }
    return 1;
}

/* Binds call arguments to a signature "name:kind[=default] ...". Fills
   vals[i] with the argument node or NULL when defaulted. */
#define MAX_SIG 8
typedef struct SigArg {
    char name[24];
    char kind[8];
    const char *def;
} SigArg;

static int parse_sig(const char *sig, SigArg *out) {
    int n = 0;
    const char *p = sig;
    while (*p && n < MAX_SIG) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        SigArg *a = &out[n++];
        memset(a, 0, sizeof *a);
        size_t k = 0;
        while (*p && *p != ':' && k + 1 < sizeof a->name)
            a->name[k++] = *p++;
        p++;
        k = 0;
        while (*p && *p != '=' && *p != ' ' && k + 1 < sizeof a->kind)
            a->kind[k++] = *p++;
        if (*p == '=') {
            a->def = ++p;
            while (*p && *p != ' ')
                p++;
        }
    }
    return n;
}

static int bind_args(const char *what, Loc loc, const Node *args, const SigArg *sig, int nsig,
                     const Node **vals) {
    int ok = 1, pos = 0;
    for (int i = 0; i < nsig; i++)
        vals[i] = NULL;
    for (const Node *a = args; a; a = a->next) {
        if (a->kind == N_KWARG) {
            int k = 0;
            while (k < nsig && strcmp(sig[k].name, a->name))
                k++;
            if (k == nsig) {
                error_at(a->loc, "%s has no argument named '%s'", what, a->name);
                ok = 0;
            } else if (vals[k]) {
                error_at(a->loc, "argument '%s' of %s is given twice", a->name, what);
                ok = 0;
            } else
                vals[k] = a->a;
            pos = nsig; /* no positional argument after a named one */
            continue;
        }
        if (pos >= nsig) {
            if (nsig == 0)
                error_at(a->loc, "%s takes no arguments", what);
            else
                error_at(a->loc, "too many arguments for %s (it takes %d)", what, nsig);
            return 0;
        }
        vals[pos++] = a;
    }
    for (int i = 0; i < nsig; i++)
        if (!vals[i] && !sig[i].def) {
            error_at(loc, "%s needs argument '%s'", what, sig[i].name);
            ok = 0;
        }
    return ok;
}

static double sig_default(const SigArg *s) {
    if (!strcmp(s->def, "true"))
        return 1;
    if (!strcmp(s->def, "false"))
        return 0;
    return strtod(s->def, NULL);
}

/* ---- building nodes ---- */

static int eval_layer(Sema *S, const Node *e);

static int new_node(Sema *S, IrOp op, const char *name, Loc loc, int in0, int in1) {
    int id = ir_add_node(S->g, op, NULL, loc);
    set_node_name(S, id, name);
    IrNode *n = &S->g->nodes.items[id];
    if (in0 >= 0)
        n->in[n->nin++] = in0;
    if (in1 >= 0)
        n->in[n->nin++] = in1;
    return id;
}

/* Apply a builtin layer: fills attributes from the arguments. */
static int apply_builtin(Sema *S, IrOp op, const Node *f, const char *name, int input) {
    SigArg sig[MAX_SIG];
    const Node *vals[MAX_SIG];
    int nsig = parse_sig(ir_op_sigs[op], sig);
    const char *what = arena_printf(S->arena, "'%s'", ir_op_names[op]);
    const Node *args = f->kind == N_CALL ? f->args : NULL;
    if (op == IR_ADD) {
        /* x |> add(y): the one argument is another value */
        if (ast_count(args) != 1 || args->kind == N_KWARG) {
            error_at(f->loc, "'add' in a pipe takes one value: x |> add(y)");
            return -1;
        }
        int other = eval_layer(S, args);
        if (other < 0)
            return -1;
        return new_node(S, op, name ? name : auto_name(S, "add"), f->loc, input, other);
    }
    if (!bind_args(what, f->loc, args, sig, nsig, vals))
        return -1;
    int id = new_node(S, op, name ? name : auto_name(S, ir_op_names[op]), f->loc, input, -1);
    IrNode *n = &S->g->nodes.items[id];
    n->groups = 1;
    n->bias = 1;
    Loc floc = f->loc; /* where the float argument is, when given */
    for (int i = 0; i < nsig; i++) {
        const SigArg *s = &sig[i];
        const Node *v = vals[i];
        const char *arg = arena_printf(S->arena, "'%s' of '%s'", s->name, ir_op_names[op]);
        double d = v ? 0 : sig_default(s);
        int64_t iv = (int64_t)d;
        int pair[2] = {(int)d, (int)d};
        int ok = 1;
        if (!strcmp(s->kind, "int") && v)
            ok = const_int(S, v, 1, IR_MAX_ELEMS - 1, arg, &iv);
        else if (!strcmp(s->kind, "ints") && v)
            ok = const_pair(S, v, !strcmp(s->name, "padding") ? 0 : 1, arg, pair);
        else if (!strcmp(s->kind, "dims"))
            ok = const_dims(S, v, arg, &n->to);
        else if (!strcmp(s->kind, "bool") && v) {
            ok = const_num(S, v, &d);
            if (ok && v->kind != N_BOOL && d != 0 && d != 1) {
                error_at(ast_start(v), "%s must be true or false", arg);
                ok = 0;
            }
        } else if (!strcmp(s->kind, "float") && v) {
            ok = const_num(S, v, &d);
            floc = ast_start(v);
        }
        if (!ok)
            return -1;
        n = &S->g->nodes.items[id];
        if (!strcmp(s->name, "out"))
            n->out = iv;
        else if (!strcmp(s->name, "bias"))
            n->bias = v ? d != 0 : 1;
        else if (!strcmp(s->name, "groups"))
            n->groups = (int)iv;
        else if (!strcmp(s->name, "kernel"))
            memcpy(n->kernel, pair, sizeof pair);
        else if (!strcmp(s->name, "stride"))
            memcpy(n->stride, pair, sizeof pair);
        else if (!strcmp(s->name, "padding"))
            memcpy(n->pad, pair, sizeof pair);
        else if (!strcmp(s->name, "factor") || !strcmp(s->name, "eps") || !strcmp(s->name, "p"))
            n->fval = (float)d;
    }
    n = &S->g->nodes.items[id];
    if (op == IR_RESHAPE && n->to.ndim == 1) /* to one dimension: the same view as a flatten */
        n->op = IR_FLATTEN;
    if ((op == IR_MAXPOOL || op == IR_AVGPOOL) && n->stride[0] == 0) {
        n->stride[0] = n->kernel[0];
        n->stride[1] = n->kernel[1];
    }
    if (op == IR_BATCHNORM && !(n->fval > 0)) {
        error_at(floc, "'eps' of 'batchnorm' must be positive, got %g", (double)n->fval);
        return -1;
    }
    if (op == IR_DROPOUT && !(n->fval >= 0 && n->fval < 1)) {
        error_at(floc, "'p' of 'dropout' must be in [0, 1), got %g", (double)n->fval);
        return -1;
    }
    if (op == IR_SCALE && !isfinite(n->fval)) {
        error_at(floc, "'factor' of 'scale' does not fit a float");
        return -1;
    }
    return id;
}

static const char *lower(Arena *a, const char *s) {
    char *p = arena_strdup(a, s);
    for (char *q = p; *q; q++)
        if (*q >= 'A' && *q <= 'Z')
            *q = (char)(*q - 'A' + 'a');
    return p;
}

/* Apply f (a layer or neuron model, maybe `as name`) to the value `input`. */
static int apply(Sema *S, const Node *f, int input) {
    const char *name = NULL;
    if (f->kind == N_AS) {
        name = f->name;
        if (node_name_taken(S, name)) {
            const Name *prev = find_name(S, name);
            error_at(f->loc, "redefinition of '%s'", name);
            if (prev)
                note_at(prev->loc, "'%s' was defined here", name);
            return -1;
        }
        f = f->a;
    }
    if (f->kind != N_IDENT && f->kind != N_CALL) {
        error_at(f->loc, "expected a layer or a neuron model after '|>'");
        return -1;
    }
    for (int op = 0; op < IR_NUM_OPS; op++) {
        if (op == IR_INPUT || op == IR_NEURON || op == IR_DELAY)
            continue;
        if (!strcmp(f->name, ir_op_names[op]))
            return apply_builtin(S, (IrOp)op, f, name, input);
    }
    if (!strcmp(f->name, "prev") || !strcmp(f->name, "input")) {
        error_at(f->loc, "'%s' cannot be applied with '|>'", f->name);
        return -1;
    }
    const Node *model = find_model(S, f->name);
    if (!model) {
        error_at(f->loc, "unknown layer or neuron model '%s'", f->name);
        return -1;
    }
    if (model_is_bad(S, model))
        return -1;
    int id = new_node(S, IR_NEURON, name ? name : auto_name(S, lower(S->arena, f->name)),
                      f->loc, input, -1);
    NeuronProg *p = neuron_instantiate(S->arena, model, f->kind == N_CALL ? f->args : NULL, f->loc);
    if (!p) {
        /* A model that needs arguments is checked only where it is used: an
           error in its body, not in this call's arguments, would come back
           at every use, so it is reported once. (The built-in models and
           those whose arguments all have defaults were checked already: an
           error in their bodies comes from the arguments of this use.) */
        Loc last = diag_last_error();
        if (model_needs_args(model) && last.file == model->loc.file && last.line != f->loc.line)
            model_set_bad(S, model);
        return -1;
    }
    S->g->nodes.items[id].neuron = p;
    return id;
}

/* A value of the network: a name, prev(name), add(a, b), or a pipe. */
static int eval_layer(Sema *S, const Node *e) {
    switch (e->kind) {
    case N_PIPE: {
        int in = eval_layer(S, e->a);
        if (in < 0)
            return -1;
        return apply(S, e->b, in);
    }
    case N_IDENT: {
        const Name *n = find_name(S, e->name);
        if (n)
            return n->node; /* -1 for a name whose definition failed */
        if (find_model(S, e->name) || node_exists(S, e->name)) {
            error_at(e->loc, "'%s' needs an input: write 'x |> %s'", e->name, e->name);
            return -1;
        }
        for (int op = 0; op < IR_NUM_OPS; op++)
            if (!strcmp(e->name, ir_op_names[op])) {
                error_at(e->loc, "'%s' needs an input: write 'x |> %s(...)'", e->name, e->name);
                return -1;
            }
        error_at(e->loc, "use of undefined layer '%s'", e->name);
        return -1;
    }
    case N_CALL:
        if (!strcmp(e->name, "prev")) {
            if (ast_count(e->args) != 1 || e->args->kind != N_IDENT) {
                error_at(e->loc, "'prev' takes the name of a layer: prev(h)");
                return -1;
            }
            int id = new_node(S, IR_DELAY, auto_name(S, "prev"), e->loc, -1, -1);
            S->g->nodes.items[id].nin = 1; /* source filled in at the end */
            vec_push(S->arena, &S->pending, id);
            vec_push(S->arena, &S->pending_ref, e->args);
            return id;
        }
        if (!strcmp(e->name, "add")) {
            if (ast_count(e->args) != 2 || e->args->kind == N_KWARG ||
                e->args->next->kind == N_KWARG) {
                error_at(e->loc, "'add' takes two values: add(a, b) or a |> add(b)");
                return -1;
            }
            int a = eval_layer(S, e->args);
            int b = a < 0 ? -1 : eval_layer(S, e->args->next);
            if (b < 0)
                return -1;
            return new_node(S, IR_ADD, auto_name(S, "add"), e->loc, a, b);
        }
        if (find_model(S, e->name)) {
            error_at(e->loc, "neuron model '%s' needs an input: write 'x |> %s(...)'", e->name,
                     e->name);
            return -1;
        }
        for (int op = 0; op < IR_NUM_OPS; op++)
            if (!strcmp(e->name, ir_op_names[op])) {
                error_at(e->loc, "'%s' needs an input: write 'x |> %s(...)'", e->name, e->name);
                return -1;
            }
        error_at(e->loc, "unknown layer or neuron model '%s'", e->name);
        return -1;
    case N_AS:
        error_at(e->loc, "'as' names a layer applied with '|>'");
        return -1;
    default:
        error_at(e->loc, "expected a layer value");
        return -1;
    }
}

/* ---- statements ---- */

/* A statement that failed still defines its name, so that its uses do not
   report it again as undefined. */
static void define_failed(Sema *S, const char *name, Loc loc) {
    if (!find_name(S, name))
        define_name(S, name, -1, loc);
}

/* `encode events(window = W, binary = B)`: the shape is [C, H, W] with C
   polarity channels (1 or 2); the window is required (bind_args). 0 after
   reporting. */
static int stmt_input_events(Sema *S, const Node *st, const Shape *sh, const Node *const *vals) {
    int64_t window, binary = 0;
    if (sh->ndim != 3 || sh->d[0] > 2) {
        error_at(st->a->loc, "an event input's shape is [C, H, W]: C = 2 polarity channels (or 1, both "
                             "polarities in one), H rows, W columns");
        return 0;
    }
    if (!const_int(S, vals[0], 1, IR_EVENTS_MAX_WINDOW, "the event window", &window))
        return 0;
    if (vals[1]) {
        double v;
        if (!const_num(S, vals[1], &v))
            return 0;
        if (vals[1]->kind != N_BOOL) {
            error_at(ast_start(vals[1]), "'binary' is true or false");
            return 0;
        }
        binary = v != 0;
    }
    S->g->events.on = 1;
    S->g->events.window = window;
    S->g->events.binary = (int)binary;
    return 1;
}

static void stmt_input(Sema *S, const Node *st) {
    IrGraph *g = S->g;
    if (g->input >= 0) {
        error_at(st->loc, "only one input is supported");
        note_at(g->nodes.items[g->input].loc, "the input is defined here");
        define_failed(S, st->name, st->loc);
        return;
    }
    Shape sh = {0, {0}};
    if (st->a->kind != N_LIST || !st->a->args) {
        error_at(st->a->loc, "the input's shape is a list of sizes, e.g. [1, 28, 28]");
        define_failed(S, st->name, st->loc);
        return;
    }
    if (ast_count(st->a->args) > IR_MAX_DIMS) {
        error_at(st->a->loc, "an input may have at most %d dimensions", IR_MAX_DIMS);
        define_failed(S, st->name, st->loc);
        return;
    }
    int64_t total = 1;
    for (const Node *d = st->a->args; d; d = d->next) {
        int64_t v;
        int ok = d->kind != N_KWARG;
        if (!ok)
            error_at(d->loc, "expected a size");
        ok = ok && const_int(S, d, 1, IR_MAX_ELEMS - 1, "a dimension", &v);
        if (ok && !mul_checked(total, v, IR_MAX_ELEMS - 1, &total)) {
            error_at(d->loc, "the input's size overflows (at most %lld elements per sample)",
                     (long long)(IR_MAX_ELEMS - 1));
            ok = 0;
        }
        if (!ok) {
            define_failed(S, st->name, st->loc);
            return;
        }
        sh.d[sh.ndim++] = v;
    }
    /* the encoding and its arguments, bound like a layer's; `events` is a
       sequence whose frames the driver bins from event lists */
    static const char *const enc_sigs[5] = {"", "", "", "threshold:float=0.01", "window:int binary:bool=false"};
    int enc = 0;
    while (enc < 4 && strcmp(st->name2, encoding_names[enc]))
        enc++;
    if (enc == 4 && strcmp(st->name2, "events")) {
        error_at(st->loc2, "unknown encoding '%s' (expected direct, sequence, rate, latency or events)", st->name2);
        define_failed(S, st->name, st->loc);
        return;
    }
    SigArg sig[MAX_SIG];
    const Node *vals[MAX_SIG];
    int nsig = parse_sig(enc_sigs[enc], sig);
    if (!bind_args(arena_printf(S->arena, "encoding '%s'", st->name2), st->loc2, st->args, sig, nsig, vals)) {
        define_failed(S, st->name, st->loc);
        return;
    }
    if (enc == ENC_LATENCY && vals[0]) {
        double v;
        int ok = const_num(S, vals[0], &v);
        if (ok && !(v > 0 && v <= 1)) {
            error_at(ast_start(vals[0]), "the latency threshold must be above 0 and at most 1, got %g", v);
            ok = 0;
        }
        if (!ok) {
            define_failed(S, st->name, st->loc);
            return;
        }
        g->enc_threshold = (float)v;
    }
    if (enc == 4 && !stmt_input_events(S, st, &sh, vals)) {
        define_failed(S, st->name, st->loc);
        return;
    }
    int id = new_node(S, IR_INPUT, st->name, st->loc, -1, -1);
    g->nodes.items[id].shape = sh;
    g->input = id;
    g->encoding = enc == 4 ? ENC_SEQUENCE : (Encoding)enc;
    define_name(S, st->name, id, st->loc);
}

static void stmt_assign(Sema *S, const Node *st) {
    if (find_name(S, st->name) || node_exists(S, st->name)) {
        const Name *p = find_name(S, st->name);
        error_at(st->loc, "redefinition of '%s'", st->name);
        if (p)
            note_at(p->loc, "'%s' was defined here", st->name);
        else
            note_at(S->g->nodes.items[ir_find_node(S->g, st->name)].loc,
                    "the layer created here is named '%s'", st->name);
        return;
    }
    S->chain = st->name;
    S->chain_first = S->g->nodes.len;
    int id = eval_layer(S, st->a);
    S->chain = NULL;
    if (id < 0) {
        define_name(S, st->name, -1, st->loc); /* later uses stay silent */
        return;
    }
    /* The chain's last layer takes the chain's name unless it has one. */
    const Node *top = st->a->kind == N_PIPE ? st->a->b : st->a;
    if (id >= S->chain_first && top->kind != N_AS)
        set_node_name(S, id, st->name);
    define_name(S, st->name, id, st->loc);
}

static void stmt_output(Sema *S, const Node *st) {
    IrGraph *g = S->g;
    if (g->output >= 0) {
        error_at(st->loc, "only one output is supported");
        return;
    }
    if (st->a->kind != N_IDENT) {
        error_at(st->a->loc, "the output names a layer");
        return;
    }
    const Name *n = find_name(S, st->a->name);
    if (!n) {
        error_at(st->a->loc, "use of undefined layer '%s'", st->a->name);
        return;
    }
    if (n->node < 0)
        return;
    int r = -1;
    for (int i = 0; i < 6; i++)
        if (!strcmp(st->name2, readout_names[i]))
            r = i;
    if (r < 0) {
        error_at(st->loc2, "unknown readout '%s' (expected steps, count, rate, mean, last or max)",
                 st->name2);
        return;
    }
    g->output = n->node;
    g->readout = (Readout)r;
}

/* ---- shapes ---- */

static int conv_out(int64_t in, int k, int s, int p, int64_t *out) {
    int64_t span = in + 2 * (int64_t)p - k;
    if (span < 0)
        return 0;
    *out = span / s + 1;
    return 1;
}

/* Shape of node i from its inputs; 1 done, 0 not yet, -1 error reported. */
static int infer_node(Sema *S, int i) {
    IrGraph *g = S->g;
    IrNode *n = &g->nodes.items[i];
    const Shape *x = NULL;
    if (n->op == IR_INPUT)
        return 1;
    if (n->op == IR_ADD) {
        /* either operand gives the shape, so that a recurrent sum like
           x |> add(prev(h) |> dense(n)) resolves; both are compared later */
        for (int k = 0; k < 2; k++)
            if (S->bad[n->in[k]])
                return -2;
        for (int k = 0; k < 2; k++)
            if (g->nodes.items[n->in[k]].shape.ndim) {
                n->shape = g->nodes.items[n->in[k]].shape;
                return 1;
            }
        return 0;
    }
    for (int k = 0; k < n->nin; k++) {
        int s = n->in[k];
        if (S->bad[s])
            return -2; /* silently: the cause was reported */
        if (g->nodes.items[s].shape.ndim == 0)
            return 0;
    }
    x = &g->nodes.items[n->in[0]].shape;
    Shape o = *x;
    const char *xs = shape_str(S->arena, x);
    switch (n->op) {
    case IR_DENSE:
        if (x->ndim != 1) {
            error_at(n->loc, "'dense' needs a flat input, got %s: insert '|> flatten' before it", xs);
            return -1;
        }
        o.d[0] = n->out;
        break;
    case IR_CONV2D:
    case IR_MAXPOOL:
    case IR_AVGPOOL: {
        const char *op = ir_op_names[n->op];
        if (x->ndim != 3) {
            error_at(n->loc, "'%s' needs an input of shape [C, H, W], got %s", op, xs);
            return -1;
        }
        if (n->op != IR_CONV2D && (n->pad[0] * 2 > n->kernel[0] || n->pad[1] * 2 > n->kernel[1])) {
            error_at(n->loc, "'%s' padding must be at most half the kernel size", op);
            return -1;
        }
        if (n->op == IR_CONV2D) {
            if (x->d[0] % n->groups || n->out % n->groups) {
                error_at(n->loc,
                         "'conv2d' groups (%d) must divide the input channels (%lld) and the "
                         "output channels (%lld)",
                         n->groups, (long long)x->d[0], (long long)n->out);
                return -1;
            }
            o.d[0] = n->out;
        }
        if (!conv_out(x->d[1], n->kernel[0], n->stride[0], n->pad[0], &o.d[1]) ||
            !conv_out(x->d[2], n->kernel[1], n->stride[1], n->pad[1], &o.d[2])) {
            error_at(n->loc, "'%s' kernel %dx%d is larger than its padded input %s", op,
                     n->kernel[0], n->kernel[1], xs);
            return -1;
        }
        break;
    }
    case IR_FLATTEN:
    case IR_RESHAPE: { /* a flatten is a reshape to [-1] (n->to is empty) */
        int64_t want = 1, have = shape_count(x);
        int open = -1;
        o = n->to;
        if (!o.ndim)
            o.ndim = 1, o.d[0] = -1;
        for (int k = 0; k < o.ndim; k++) {
            if (o.d[k] < 0)
                open = k;
            else if (!mul_checked(want, o.d[k], IR_MAX_ELEMS - 1, &want))
                want = IR_MAX_ELEMS; /* reported below as a mismatch */
        }
        if (open >= 0 && have % want == 0)
            o.d[open] = have / want, want = have;
        if (want != have) {
            error_at(n->loc, "'reshape' to %s does not fit its input %s (%lld values)", shape_str(S->arena, &n->to),
                     xs, (long long)have);
            return -1;
        }
        break;
    }
    case IR_BATCHNORM:
        if (x->ndim != 1 && x->ndim != 3) {
            error_at(n->loc, "'batchnorm' needs an input of shape [C] or [C, H, W], got %s", xs);
            return -1;
        }
        break;
    default:
        break;
    }
    int64_t total = 1;
    for (int k = 0; k < o.ndim; k++)
        if (!mul_checked(total, o.d[k], IR_MAX_ELEMS - 1, &total)) {
            error_at(n->loc, "the output of '%s' is too large (more than %lld elements per sample)",
                     n->name, (long long)(IR_MAX_ELEMS - 1));
            return -1;
        }
    n->shape = o;
    return 1;
}

/* A min-heap of node indices: the nodes to try in this pass, in order. */
static void heap_push(int *h, int *len, int v) {
    int i = (*len)++;
    while (i > 0 && h[(i - 1) / 2] > v) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = v;
}

static int heap_pop(int *h, int *len) {
    int top = h[0], v = h[--*len], i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= *len)
            break;
        if (c + 1 < *len && h[c + 1] < h[c])
            c++;
        if (h[c] >= v)
            break;
        h[i] = h[c];
        i = c;
    }
    if (*len)
        h[i] = v;
    return top;
}

/* Shapes to a fixpoint: passes over the nodes in order, each trying every
   node whose shape is not known yet, until a pass changes nothing. A node
   whose inputs have not changed since it was last tried would give the
   same "not yet" (infer_node depends on its inputs only), so it is tried
   again only after one of its inputs got its shape or failed: the same
   nodes are decided in the same order, with the same errors, but a graph
   that takes many passes (a deep chain of prev() of later layers) costs
   O(n log n) rather than O(n) per pass. */
static void infer_shapes(Sema *S) {
    IrGraph *g = S->g;
    int count = g->nodes.len;
    S->bad = arena_alloc(S->arena, (size_t)count + 1);
    /* the readers of node i: users[first[i] .. first[i + 1]) */
    int *first = arena_alloc(S->arena, sizeof(int) * ((size_t)count + 1));
    int nedges = 0;
    for (int i = 0; i < count; i++)
        for (int k = 0; k < g->nodes.items[i].nin; k++) {
            int s = g->nodes.items[i].in[k];
            if (s >= 0 && s < count) {
                first[s + 1]++;
                nedges++;
            }
        }
    for (int i = 0; i < count; i++)
        first[i + 1] += first[i];
    int *fill = arena_alloc(S->arena, sizeof(int) * ((size_t)count + 1));
    int *users = arena_alloc(S->arena, sizeof(int) * ((size_t)nedges + 1));
    memcpy(fill, first, sizeof(int) * (size_t)count);
    for (int i = 0; i < count; i++)
        for (int k = 0; k < g->nodes.items[i].nin; k++) {
            int s = g->nodes.items[i].in[k];
            if (s >= 0 && s < count)
                users[fill[s]++] = i;
        }
    /* the first pass tries every node (an ascending array is a heap) */
    int *heap = arena_alloc(S->arena, sizeof(int) * ((size_t)count + 1));
    int *next = arena_alloc(S->arena, sizeof(int) * ((size_t)count + 1));
    int *queued = arena_alloc(S->arena, sizeof(int) * ((size_t)count + 1)); /* the pass it waits for */
    int nheap = count, nnext = 0;
    for (int i = 0; i < count; i++) {
        heap[i] = i;
        queued[i] = 1;
    }
    for (int pass = 1; nheap; pass++) {
        while (nheap) {
            int i = heap_pop(heap, &nheap);
            if (S->bad[i] || g->nodes.items[i].shape.ndim)
                continue;
            int r = infer_node(S, i);
            if (r < 0)
                S->bad[i] = 1;
            if (!(r < 0 || (r == 1 && g->nodes.items[i].shape.ndim)))
                continue;
            /* a reader after i is tried later in this pass, one before it
               (a recurrent edge) in the next pass */
            for (int e = first[i]; e < first[i + 1]; e++) {
                int u = users[e], when = u > i ? pass : pass + 1;
                if (queued[u] == when)
                    continue;
                queued[u] = when;
                if (u > i)
                    heap_push(heap, &nheap, u);
                else
                    next[nnext++] = u;
            }
        }
        for (int k = 0; k < nnext; k++)
            heap_push(heap, &nheap, next[k]);
        nnext = 0;
    }
    for (int i = 0; i < g->nodes.len; i++) {
        IrNode *n = &g->nodes.items[i];
        if (!S->bad[i] && n->shape.ndim == 0 && n->op == IR_DELAY) {
            error_at(n->loc,
                     "cannot infer the shape of prev(%s): '%s' depends on its own previous value "
                     "and nothing else fixes its shape",
                     g->nodes.items[n->in[0]].name, g->nodes.items[n->in[0]].name);
            S->bad[i] = 1;
        }
    }
    for (int i = 0; i < g->nodes.len; i++) {
        IrNode *n = &g->nodes.items[i];
        if (S->bad[i] || n->op != IR_ADD)
            continue;
        const Shape *x = &g->nodes.items[n->in[0]].shape, *y = &g->nodes.items[n->in[1]].shape;
        if (!x->ndim || !y->ndim)
            continue;
        if (x->ndim != y->ndim || memcmp(x->d, y->d, sizeof(int64_t) * (size_t)x->ndim)) {
            error_at(n->loc, "'add' needs two values of one shape, got %s and %s",
                     shape_str(S->arena, x), shape_str(S->arena, y));
            S->bad[i] = 1;
        }
    }
}

/* An output that is a prev() value (or a flatten of one) is read after the
   step, when the delay buffers already hold the next step's values: it is
   read through a copy made during the step. */
static void copy_delayed_output(Sema *S) {
    IrGraph *g = S->g;
    int r = g->output;
    while (g->nodes.items[r].op == IR_FLATTEN || g->nodes.items[r].op == IR_RESHAPE || g->nodes.items[r].op == IR_DROPOUT)
        r = g->nodes.items[r].in[0];
    if (g->nodes.items[r].op != IR_DELAY)
        return;
    const IrNode *o = &g->nodes.items[g->output];
    const char *name = arena_printf(S->arena, "%s_copy", o->name);
    while (node_name_taken(S, name))
        name = arena_printf(S->arena, "%s_", name);
    Loc loc = o->loc;
    Shape shape = o->shape;
    int id = new_node(S, IR_IDENTITY, name, loc, g->output, -1);
    g->nodes.items[id].shape = shape;
    g->output = id;
}

/* ---- parameters ---- */

static void make_params(Sema *S) {
    IrGraph *g = S->g;
    for (int i = 0; i < g->nodes.len; i++) {
        IrNode *n = &g->nodes.items[i];
        const Shape *x = n->nin ? &g->nodes.items[n->in[0]].shape : NULL;
        Shape w = {0, {0}}, b = {1, {n->out}};
        int64_t fan, cnt;
        switch (n->op) {
        case IR_DENSE:
            w.ndim = 2;
            w.d[0] = n->out;
            w.d[1] = x->d[0];
            if (!mul_checked(n->out, x->d[0], IR_MAX_ELEMS - 1, &cnt)) {
                error_at(n->loc, "the weight of '%s' is too large: %lld x %lld elements (at most %lld)",
                         n->name, (long long)n->out, (long long)x->d[0], (long long)(IR_MAX_ELEMS - 1));
                break;
            }
            ir_add_param(g, i, "weight", &w, PK_WEIGHT, 0, x->d[0]);
            if (n->bias)
                ir_add_param(g, i, "bias", &b, PK_BIAS, 0, x->d[0]);
            break;
        case IR_CONV2D:
            w.ndim = 4;
            w.d[0] = n->out;
            w.d[1] = x->d[0] / n->groups;
            w.d[2] = n->kernel[0];
            w.d[3] = n->kernel[1];
            fan = w.d[1] * w.d[2] * w.d[3];
            if (!mul_checked(fan, n->out, IR_MAX_ELEMS - 1, &cnt)) {
                error_at(n->loc, "the weight of '%s' is too large: %lld x %lld elements (at most %lld)",
                         n->name, (long long)n->out, (long long)fan, (long long)(IR_MAX_ELEMS - 1));
                break;
            }
            ir_add_param(g, i, "weight", &w, PK_WEIGHT, 0, fan);
            if (n->bias)
                ir_add_param(g, i, "bias", &b, PK_BIAS, 0, fan);
            break;
        case IR_BATCHNORM:
            b.d[0] = x->d[0];
            ir_add_param(g, i, "weight", &b, PK_ONES, 1, 0);
            ir_add_param(g, i, "bias", &b, PK_ZEROS, 0, 0);
            {
                /* buffers, not learned (the index first: adding may move the array) */
                int rm = ir_add_param(g, i, "running_mean", &b, PK_ZEROS, 0, 0);
                g->params.items[rm].learnable = 0;
                int rv = ir_add_param(g, i, "running_var", &b, PK_ONES, 1, 0);
                g->params.items[rv].learnable = 0;
            }
            break;
        case IR_NEURON: {
            NeuronProg *p = n->neuron;
            for (int k = 0; k < p->params.len; k++) {
                NeuronParam *q = &p->params.items[k];
                Shape s = {1, {1}};
                if (q->gran == GRAN_CHANNEL)
                    s.d[0] = x->d[0];
                else if (q->gran == GRAN_NEURON)
                    s = *x;
                q->param = ir_add_param(g, i, q->name, &s, PK_CONST, q->init, 0);
            }
            break;
        }
        default:
            break;
        }
    }
}

/* ---- the network ---- */

/* "Defines no network" is about the whole file: reported at its first
   line, saying what the file holds instead. */
static void no_network(const Node *user, int file) {
    if (file <= 0) {
        error_plain("the input defines no network");
        return;
    }
    Loc at = {file, 1, 1};
    const char *t = src_text(file);
    while (*t == ' ' || *t == '\t' || *t == '\r' || *t == '\n')
        t++;
    int items = 0;
    for (const Node *it = user; it; it = it->next)
        items += it->loc.file == file;
    if (!*t)
        error_at(at, "the file is empty: it defines no network");
    else if (!items)
        error_at(at, "the file holds only comments: it defines no network");
    else
        error_at(at, "the file defines no network, only neuron models");
}

static const Node *pick_network(Node *user, const char *want, int file) {
    const Node *found = NULL;
    int count = 0;
    for (const Node *it = user; it; it = it->next) {
        if (it->kind != D_NETWORK)
            continue;
        count++;
        if (want ? !strcmp(it->name, want) : !found)
            found = it;
    }
    if (want && !found) {
        error_plain("no network named '%s' in the input", want);
        return NULL;
    }
    if (!count) {
        no_network(user, file);
        return NULL;
    }
    if (!want && count > 1) {
        error_at(found->loc, "the input defines %d networks: choose one with --network NAME", count);
        return NULL;
    }
    return found;
}

static void collect_models(Sema *S, Node *items) {
    for (const Node *it = items; it; it = it->next) {
        if (it->kind != D_NEURON)
            continue;
        const Node *prev = find_model(S, it->name);
        if (prev) {
            error_at(it->loc, "redefinition of neuron model '%s'", it->name);
            note_at(prev->loc, "'%s' was defined here", it->name);
            continue;
        }
        for (int op = 0; op < IR_NUM_OPS; op++)
            if (!strcmp(it->name, ir_op_names[op]))
                error_at(it->loc, "'%s' is a built-in layer and cannot name a neuron model", it->name);
        vec_push(S->arena, &S->models, it);
        *strmap_put(S->arena, &S->model_index, it->name) = S->models.len - 1;
    }
}

IrGraph *sema_build(Arena *a, Node *std, Node *user, const SemaOptions *opt) {
    Sema S;
    memset(&S, 0, sizeof S);
    S.arena = a;
    collect_models(&S, std);
    collect_models(&S, user);
    /* Check every model of the user's file, even unused ones, so that a
       library of models gets its errors; the std library is checked by tests. */
    for (const Node *it = user; it; it = it->next)
        if (it->kind == D_NEURON && !neuron_check(a, it))
            model_set_bad(&S, it);
    const Node *net = pick_network(user, opt->network, opt->file);
    if (!net)
        return NULL;
    IrGraph *g = ir_new(a, net->name);
    g->loc = net->loc;
    g->source = src_name(net->loc.file);
    S.g = g;
    const Node *ts = NULL;
    for (const Node *st = net->body; st; st = st->next) {
        switch (st->kind) {
        case S_TIMESTEPS:
            if (ts) {
                error_at(st->loc, "timesteps given twice");
                note_at(ts->loc, "first given here");
                break;
            }
            ts = st;
            {
                int64_t v;
                if (const_int(&S, st->a, 1, 1000000, "timesteps", &v))
                    g->timesteps = (int)v;
            }
            break;
        case S_INPUT:
            stmt_input(&S, st);
            break;
        case S_ASSIGN:
            stmt_assign(&S, st);
            break;
        case S_OUTPUT:
            stmt_output(&S, st);
            break;
        default:
            error_at(st->loc, "unexpected statement in a network");
        }
    }
    for (int i = 0; i < S.pending.len; i++) {
        const Node *ref = S.pending_ref.items[i];
        const Name *n = find_name(&S, ref->name);
        if (!n) {
            error_at(ref->loc, "prev() of undefined layer '%s'", ref->name);
            continue;
        }
        if (n->node < 0)
            continue;
        g->nodes.items[S.pending.items[i]].in[0] = n->node;
    }
    if (opt->timesteps > 0)
        g->timesteps = opt->timesteps;
    if (!g->timesteps && !diag_errors())
        error_at(net->loc, "network '%s' does not say its number of timesteps ('timesteps 8;')",
                 net->name);
    if (g->input < 0 && !diag_errors())
        error_at(net->loc, "network '%s' has no input ('input NAME : [SIZES] encode direct;')",
                 net->name);
    if (g->output < 0 && !diag_errors())
        error_at(net->loc, "network '%s' has no output ('output LAYER readout KIND;')", net->name);
    if (diag_errors())
        return NULL;
    infer_shapes(&S);
    if (diag_errors())
        return NULL;
    copy_delayed_output(&S);
    make_params(&S);
    if (diag_errors())
        return NULL;
    return g;
}
