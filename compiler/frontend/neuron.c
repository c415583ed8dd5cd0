/*
 * neuron.c: instantiates a neuron model into a neuron program.
 *
 * A model's constructor arguments are compile-time values: numbers,
 * booleans, symbols (layer, channel, neuron) or surrogates (atan(2.0)).
 * They are kept unevaluated until used, because the same text means a
 * number in `v_th + 1` and a surrogate in `spike(u, sigmoid(4.0))`. The body
 * is partially evaluated: expressions over constants are folded (in double,
 * as Python folds the scalars of a PyTorch model), `if` picks a branch at
 * compile time, and what depends on the input, a state or a parameter
 * becomes an instruction of the SSA program. Assignments rebind names, so a
 * state assigned in the body has its new value afterwards and its final
 * value is the state at the next step.
 */
#include "neuron.h"

#include <math.h>
#include <string.h>

typedef enum VKind { V_ERR, V_NUM, V_SYM, V_SURR, V_INST, V_LAZY } VKind;

typedef struct Value {
    VKind k;
    double num;       /* V_NUM */
    const char *sym;  /* V_SYM */
    SurrKind surr;    /* V_SURR */
    double alpha;     /* V_SURR */
    int inst;         /* V_INST */
    const Node *expr; /* V_LAZY: a constructor argument, evaluated where used */
    int env_len;      /* V_LAZY: the names visible to it */
} Value;

typedef enum BindKind { B_CTOR, B_INPUT, B_PARAM, B_STATE, B_LOCAL } BindKind;

typedef struct Binding {
    const char *name;
    BindKind kind;
    Value v;
    Loc loc;
    int state; /* B_STATE: index */
} Binding;

typedef struct Inst {
    Arena *arena;
    NeuronProg *p;
    VEC(Binding) env;
    const Node *model;
    int emitted;
    Loc emit_loc;
    int depth;    /* of eval's recursion */
    int too_deep; /* that was reported */
} Inst;

/* Each expression is at most AST_MAX_DEPTH deep, but a constructor
   argument is evaluated inside the expression that uses it, and its own
   expression may use another argument: this bounds the sum. */
#define EVAL_MAX_DEPTH (3 * AST_MAX_DEPTH)

static const Value verr = {V_ERR, 0, NULL, 0, 0, -1, NULL, 0};

static Value vnum(double d) {
    Value v = verr;
    v.k = V_NUM;
    v.num = d;
    return v;
}

static Value vinst(int i) {
    Value v = verr;
    v.k = V_INST;
    v.inst = i;
    return v;
}

static Binding *lookup(Inst *I, const char *name, int env_len) {
    for (int i = env_len - 1; i >= 0; i--)
        if (!strcmp(I->env.items[i].name, name))
            return &I->env.items[i];
    return NULL;
}

static void bind(Inst *I, const char *name, BindKind k, Value v, Loc loc) {
    Binding b = {name, k, v, loc, -1};
    vec_push(I->arena, &I->env, b);
}

static int emit_op(Inst *I, EqOp op, int a, int b, int c, Loc loc) {
    EqInst e;
    memset(&e, 0, sizeof e);
    e.op = op;
    e.a = a;
    e.b = b;
    e.c = c;
    e.loc = loc;
    return eq_emit(I->arena, I->p, e);
}

static int emit_const(Inst *I, double d, Loc loc) {
    int i = emit_op(I, EQ_CONST, -1, -1, -1, loc);
    I->p->code.items[i].k = (float)d;
    return i;
}

static int surr_lookup(const char *name) {
    for (int i = 0; i < SURR_NUM; i++)
        if (!strcmp(surr_names[i], name))
            return i;
    return -1;
}

static int gran_lookup(const char *name) {
    for (int i = 0; i < 3; i++)
        if (!strcmp(gran_names[i], name))
            return i;
    return -1;
}

/* ---- evaluation ---- */

typedef enum Want { W_NUM, W_SURR, W_SYM } Want;

static Value eval(Inst *I, const Node *e, int env_len, Want want);

static Value force(Inst *I, Value v, Want want) {
    if (v.k == V_LAZY)
        return eval(I, v.expr, v.env_len, want);
    return v;
}

/* A value as an instruction operand (constants become instructions). */
static int operand(Inst *I, Value v, Loc loc) {
    if (v.k == V_INST)
        return v.inst;
    return emit_const(I, v.num, loc);
}

static double fold(EqOp op, double a, double b, double c) {
    switch (op) {
    case EQ_ADD: return a + b;
    case EQ_SUB: return a - b;
    case EQ_MUL: return a * b;
    case EQ_DIV: return a / b;
    case EQ_NEG: return -a;
    case EQ_LT: return a < b;
    case EQ_LE: return a <= b;
    case EQ_GT: return a > b;
    case EQ_GE: return a >= b;
    case EQ_EQ: return a == b;
    case EQ_NE: return a != b;
    case EQ_AND: return a != 0 && b != 0;
    case EQ_OR: return a != 0 || b != 0;
    case EQ_NOT: return a == 0;
    case EQ_SELECT: return a != 0 ? b : c;
    case EQ_EXP: return exp(a);
    case EQ_LOG: return log(a);
    case EQ_SQRT: return sqrt(a);
    case EQ_TANH: return tanh(a);
    case EQ_SIGMOID: return 1.0 / (1.0 + exp(-a));
    case EQ_ABS: return fabs(a);
    case EQ_FLOOR: return floor(a);
    case EQ_MIN: return a < b ? a : b;
    case EQ_MAX: return a > b ? a : b;
    case EQ_POW: return pow(a, b);
    case EQ_DETACH: return a;
    case EQ_SPIKE: return a >= 0;
    default: return NAN;
    }
}

/* Apply op to values: fold when all are constants, else emit. */
static Value apply_op(Inst *I, EqOp op, Value *args, int n, Loc loc) {
    int all_const = 1;
    for (int i = 0; i < n; i++) {
        if (args[i].k == V_ERR)
            return verr;
        if (args[i].k != V_NUM && args[i].k != V_INST) {
            error_at(loc, "'%s' needs numbers, not a %s", eq_op_names[op],
                     args[i].k == V_SURR ? "surrogate" : "symbol");
            return verr;
        }
        if (args[i].k != V_NUM)
            all_const = 0;
    }
    if (all_const && op != EQ_DETACH) {
        double r = fold(op, n > 0 ? args[0].num : 0, n > 1 ? args[1].num : 0, n > 2 ? args[2].num : 0);
        if (!isfinite(r)) {
            /* name the operation and its operands: the constants may come
               from arguments given far from here */
            char what[96];
            if (n == 1)
                snprintf(what, sizeof what, "%s(%g)", eq_op_names[op], args[0].num);
            else
                snprintf(what, sizeof what, "%s(%g, %g%s)", eq_op_names[op], args[0].num,
                         args[1].num, n > 2 ? ", ..." : "");
            error_at(loc, "constant expression has no finite value: %s", what);
            return verr;
        }
        return vnum(r);
    }
    int ops[3] = {-1, -1, -1};
    for (int i = 0; i < n; i++)
        ops[i] = operand(I, args[i], loc);
    return vinst(emit_op(I, op, ops[0], ops[1], ops[2], loc));
}

static const EqOp binop_eq[] = {
    [OP_ADD] = EQ_ADD, [OP_SUB] = EQ_SUB, [OP_MUL] = EQ_MUL, [OP_DIV] = EQ_DIV,
    [OP_LT] = EQ_LT,   [OP_LE] = EQ_LE,   [OP_GT] = EQ_GT,   [OP_GE] = EQ_GE,
    [OP_EQ] = EQ_EQ,   [OP_NE] = EQ_NE,   [OP_AND] = EQ_AND, [OP_OR] = EQ_OR,
    [OP_NOT] = EQ_NOT, [OP_NEG] = EQ_NEG,
};

static Value eval_surrogate_call(Inst *I, const Node *e, int env_len, int s) {
    Value v = verr;
    v.k = V_SURR;
    v.surr = (SurrKind)s;
    v.alpha = surr_default_alpha[s];
    if (e->kind == N_CALL) {
        int n = ast_count(e->args);
        if (n > 1 || (n == 1 && e->args->kind == N_KWARG && strcmp(e->args->name, "alpha"))) {
            error_at(e->loc, "surrogate '%s' takes one argument, alpha", e->name);
            return verr;
        }
        if (n == 1) {
            const Node *arg = e->args->kind == N_KWARG ? e->args->a : e->args;
            Value a = eval(I, arg, env_len, W_NUM);
            if (a.k == V_ERR)
                return verr;
            if (a.k != V_NUM || !(a.num > 0)) {
                error_at(arg->loc, "a surrogate's alpha must be a positive constant");
                return verr;
            }
            v.alpha = a.num;
        }
    }
    return v;
}

static Value eval_call(Inst *I, const Node *e, int env_len, Want want) {
    int s = surr_lookup(e->name);
    if (want == W_SURR && s >= 0)
        return eval_surrogate_call(I, e, env_len, s);
    if (want == W_SURR) {
        error_at(e->loc, "unknown surrogate '%s' (expected atan, sigmoid, fast_sigmoid, rect or "
                 "triangle)", e->name);
        return verr;
    }
    for (const Node *a = e->args; a; a = a->next)
        if (a->kind == N_KWARG && strcmp(e->name, "spike")) {
            error_at(a->loc, "'%s' takes no named arguments", e->name);
            return verr;
        }
    int nargs = ast_count(e->args);
    if (!strcmp(e->name, "spike")) {
        const Node *u = NULL, *surr = NULL;
        int pos = 0;
        for (const Node *a = e->args; a; a = a->next) {
            if (a->kind == N_KWARG) {
                if (strcmp(a->name, "surrogate")) {
                    error_at(a->loc, "'spike' has no argument named '%s'", a->name);
                    return verr;
                }
                surr = a->a;
            } else if (pos++ == 0)
                u = a;
            else if (pos == 2 && !surr)
                surr = a;
            else {
                error_at(a->loc, "'spike' takes the potential and a surrogate");
                return verr;
            }
        }
        if (!u) {
            error_at(e->loc, "'spike' needs the potential minus the threshold: spike(h - v_th)");
            return verr;
        }
        Value uv = force(I, eval(I, u, env_len, W_NUM), W_NUM);
        Value sv = verr;
        sv.k = V_SURR;
        sv.surr = SURR_ATAN;
        sv.alpha = surr_default_alpha[SURR_ATAN];
        if (surr)
            sv = force(I, eval(I, surr, env_len, W_SURR), W_SURR);
        if (uv.k == V_ERR || sv.k == V_ERR)
            return verr;
        if (sv.k != V_SURR) {
            error_at(surr->loc, "expected a surrogate (atan, sigmoid, fast_sigmoid, rect or triangle)");
            return verr;
        }
        if (uv.k != V_INST) {
            error_at(ast_start(u), "'spike' of a constant: the potential must depend on the input or a state");
            return verr;
        }
        int i = emit_op(I, EQ_SPIKE, uv.inst, -1, -1, e->loc);
        I->p->code.items[i].surr = sv.surr;
        I->p->code.items[i].alpha = (float)sv.alpha;
        return vinst(i);
    }
    for (int op = 0; op < EQ_NUM_OPS; op++) {
        if (!eq_op_callable[op] || strcmp(eq_op_names[op], e->name))
            continue;
        if (nargs != eq_op_arity[op]) {
            error_at(e->loc, "'%s' takes %d argument%s, got %d", e->name, eq_op_arity[op],
                     eq_op_arity[op] == 1 ? "" : "s", nargs);
            return verr;
        }
        Value args[3];
        int k = 0;
        for (const Node *a = e->args; a; a = a->next, k++)
            args[k] = force(I, eval(I, a, env_len, W_NUM), W_NUM);
        return apply_op(I, (EqOp)op, args, nargs, e->loc);
    }
    if (s >= 0) {
        error_at(e->loc, "surrogate '%s' is only meaningful as spike()'s surrogate", e->name);
        return verr;
    }
    error_at(e->loc, "unknown function '%s'", e->name);
    return verr;
}

static Value eval_node(Inst *I, const Node *e, int env_len, Want want);

static Value eval(Inst *I, const Node *e, int env_len, Want want) {
    if (I->depth >= EVAL_MAX_DEPTH) {
        if (!I->too_deep)
            error_at(e->loc, "expression is nested too deeply with the constructor arguments it "
                     "uses (more than %d levels)", EVAL_MAX_DEPTH);
        I->too_deep = 1;
        return verr;
    }
    I->depth++;
    Value v = eval_node(I, e, env_len, want);
    I->depth--;
    return v;
}

static Value eval_node(Inst *I, const Node *e, int env_len, Want want) {
    switch (e->kind) {
    case N_NUM:
    case N_BOOL:
        if (want == W_SURR) {
            error_at(e->loc, "expected a surrogate (atan, sigmoid, fast_sigmoid, rect or triangle)");
            return verr;
        }
        if (want == W_SYM) {
            error_at(e->loc, "expected a granularity (layer, channel or neuron)");
            return verr;
        }
        return vnum(e->num);
    case N_IDENT: {
        Binding *b = lookup(I, e->name, env_len);
        if (b) {
            if (b->v.k == V_LAZY)
                return eval(I, b->v.expr, b->v.env_len, want);
            return b->v;
        }
        if (want == W_SURR && surr_lookup(e->name) >= 0)
            return eval_surrogate_call(I, e, env_len, surr_lookup(e->name));
        if (want == W_SYM && gran_lookup(e->name) >= 0) {
            Value v = verr;
            v.k = V_SYM;
            v.sym = e->name;
            return v;
        }
        if (want == W_SURR)
            error_at(e->loc, "unknown surrogate '%s' (expected atan, sigmoid, fast_sigmoid, rect "
                     "or triangle)", e->name);
        else if (want == W_SYM)
            error_at(e->loc, "unknown granularity '%s' (expected layer, channel or neuron)", e->name);
        else if (!strcmp(e->name, "x")) /* x is bound everywhere but in arguments */
            error_at(e->loc, "constructor arguments are constants: the input current 'x' cannot "
                     "be used in them");
        else
            error_at(e->loc, "use of undefined name '%s'", e->name);
        return verr;
    }
    case N_CALL:
        return eval_call(I, e, env_len, want);
    case N_UNOP:
    case N_BINOP: {
        Value args[2];
        args[0] = force(I, eval(I, e->a, env_len, W_NUM), W_NUM);
        int n = 1;
        if (e->kind == N_BINOP)
            args[n++] = force(I, eval(I, e->b, env_len, W_NUM), W_NUM);
        if (e->op == OP_DIV && args[1].k == V_NUM && args[1].num == 0 && args[0].k != V_ERR) {
            error_at(e->loc, "division by zero");
            return verr;
        }
        return apply_op(I, binop_eq[e->op], args, n, e->loc);
    }
    case N_COND: {
        Value args[3];
        args[0] = force(I, eval(I, e->a, env_len, W_NUM), W_NUM);
        if (args[0].k == V_NUM) /* a constant condition picks a branch */
            return force(I, eval(I, args[0].num != 0 ? e->b : e->c, env_len, want), want);
        args[1] = force(I, eval(I, e->b, env_len, W_NUM), W_NUM);
        args[2] = force(I, eval(I, e->c, env_len, W_NUM), W_NUM);
        return apply_op(I, EQ_SELECT, args, 3, e->loc);
    }
    default:
        error_at(e->loc, "this is not an expression of a neuron model");
        return verr;
    }
}

/* ---- statements ---- */

static void body(Inst *I, const Node *st);

static void stmt_assign(Inst *I, const Node *st) {
    Binding *b = lookup(I, st->name, I->env.len);
    Value v = force(I, eval(I, st->a, I->env.len, W_NUM), W_NUM);
    if (v.k == V_ERR) {
        /* the cause was reported: later uses of the name stay silent */
        if (!b)
            bind(I, st->name, B_LOCAL, verr, st->loc);
        else if (b->kind == B_LOCAL || b->kind == B_STATE)
            b->v = verr;
        return;
    }
    if (v.k != V_NUM && v.k != V_INST) {
        error_at(ast_start(st->a), "a neuron's variables hold numbers");
        return;
    }
    if (b && b->kind == B_CTOR) {
        error_at(st->loc, "cannot assign to constructor argument '%s'", st->name);
        note_at(b->loc, "'%s' is declared here", st->name);
        return;
    }
    if (b && b->kind == B_PARAM) {
        error_at(st->loc, "cannot assign to learnable parameter '%s'", st->name);
        note_at(b->loc, "'%s' is declared here", st->name);
        return;
    }
    if (b && b->kind == B_INPUT) {
        error_at(st->loc, "cannot assign to the input current 'x'");
        return;
    }
    if (b && b->kind == B_STATE) {
        b->v = v;
        return;
    }
    if (b) { /* a local, reassigned */
        b->v = v;
        return;
    }
    bind(I, st->name, B_LOCAL, v, st->loc);
}

/* A declaration that failed still binds its name, so that its uses do not
   report it again as undefined. */
static void decl_failed(Inst *I, const Node *st) {
    bind(I, st->name, B_LOCAL, verr, st->loc);
}

static void stmt_decl(Inst *I, const Node *st, int is_state) {
    if (!strcmp(st->name, "x")) {
        error_at(st->loc, "'x' is the input current and cannot be redeclared");
        return;
    }
    Binding *b = lookup(I, st->name, I->env.len);
    if (b) {
        error_at(st->loc, "redefinition of '%s'", st->name);
        note_at(b->loc, "'%s' was defined here", st->name);
        return;
    }
    if (!st->a) {
        error_at(st->loc, "state '%s' has no initial value: write 'state %s = 0.0;'", st->name,
                 st->name);
        decl_failed(I, st);
        return;
    }
    Value init = force(I, eval(I, st->a, I->env.len, W_NUM), W_NUM);
    if (init.k == V_ERR) {
        decl_failed(I, st);
        return;
    }
    if (init.k != V_NUM) {
        error_at(ast_start(st->a), "the initial value of '%s' must be a compile-time constant",
                 st->name);
        decl_failed(I, st);
        return;
    }
    if (!isfinite((float)init.num)) {
        error_at(ast_start(st->a), "the initial value of '%s' is not a finite float", st->name);
        decl_failed(I, st);
        return;
    }
    if (is_state) {
        NeuronState s = {st->name, (float)init.num, -1};
        vec_push(I->arena, &I->p->states, s);
        int idx = I->p->states.len - 1;
        int i = emit_op(I, EQ_STATE, -1, -1, -1, st->loc);
        I->p->code.items[i].idx = idx;
        bind(I, st->name, B_STATE, vinst(i), st->loc);
        I->env.items[I->env.len - 1].state = idx;
        return;
    }
    Gran gran = GRAN_LAYER;
    if (st->b) {
        Value gv = force(I, eval(I, st->b, I->env.len, W_SYM), W_SYM);
        if (gv.k == V_ERR) {
            decl_failed(I, st);
            return;
        }
        if (gv.k != V_SYM || gran_lookup(gv.sym) < 0) {
            error_at(st->b->loc, "expected a granularity (layer, channel or neuron)");
            decl_failed(I, st);
            return;
        }
        gran = (Gran)gran_lookup(gv.sym);
    }
    NeuronParam q = {st->name, gran, (float)init.num, -1};
    vec_push(I->arena, &I->p->params, q);
    int idx = I->p->params.len - 1;
    int i = emit_op(I, EQ_PARAM, -1, -1, -1, st->loc);
    I->p->code.items[i].idx = idx;
    bind(I, st->name, B_PARAM, vinst(i), st->loc);
}

/* After an 'if' whose condition failed, the names its branches assign are
   bound to an error, so that their uses after it stay silent. */
static void stmt_if_failed(Inst *I, const Node *st) {
    for (; st; st = st->next) {
        if (st->kind == S_IF) {
            stmt_if_failed(I, st->body);
            stmt_if_failed(I, st->els);
        } else if (st->name && !lookup(I, st->name, I->env.len))
            bind(I, st->name, B_LOCAL, verr, st->loc);
    }
}

static void stmt_if(Inst *I, const Node *st) {
    Value c = force(I, eval(I, st->a, I->env.len, W_NUM), W_NUM);
    if (c.k != V_NUM && c.k != V_ERR)
        error_at(ast_start(st->a),
                 "the condition of 'if' must be known at compile time; use select() for a "
                 "per-step choice");
    if (c.k != V_NUM) {
        stmt_if_failed(I, st->body);
        stmt_if_failed(I, st->els);
        return;
    }
    /* Names first assigned inside a branch stay visible after it, as in
       the straight-line code the branch stands for. */
    body(I, c.num != 0 ? st->body : st->els);
}

static void body(Inst *I, const Node *st) {
    for (; st; st = st->next) {
        switch (st->kind) {
        case S_PARAM:
            stmt_decl(I, st, 0);
            break;
        case S_STATE:
            stmt_decl(I, st, 1);
            break;
        case S_ASSIGN:
            stmt_assign(I, st);
            break;
        case S_EMIT: {
            if (I->emitted) {
                error_at(st->loc, "a neuron model emits one value");
                note_at(I->emit_loc, "it was emitted here");
                break;
            }
            Value v = force(I, eval(I, st->a, I->env.len, W_NUM), W_NUM);
            if (v.k == V_ERR)
                break;
            I->emitted = 1;
            I->emit_loc = st->loc;
            I->p->emit = operand(I, v, st->loc);
            break;
        }
        case S_IF:
            stmt_if(I, st);
            break;
        default:
            error_at(st->loc, "unexpected statement in a neuron model");
        }
    }
}

/* Binds the constructor arguments of the call to the model's parameters. */
static int bind_ctor(Inst *I, const Node *model, const Node *args, Loc call) {
    int n = ast_count(model->args);
    const Node *given[64];
    if (n > 64) {
        error_at(model->loc, "neuron model '%s' has too many constructor arguments", model->name);
        return 0;
    }
    for (int i = 0; i < n; i++)
        given[i] = NULL;
    int ok = 1, pos = 0;
    for (const Node *a = args; a; a = a->next) {
        if (a->kind == N_KWARG) {
            int k = 0;
            const Node *p = model->args;
            while (p && strcmp(p->name, a->name))
                p = p->next, k++;
            if (!p) {
                error_at(a->loc, "neuron model '%s' has no argument named '%s'", model->name, a->name);
                note_at(model->loc, "'%s' is defined here", model->name);
                ok = 0;
            } else if (given[k]) {
                error_at(a->loc, "argument '%s' of neuron model '%s' is given twice", a->name,
                         model->name);
                ok = 0;
            } else
                given[k] = a->a;
            pos = n;
            continue;
        }
        if (pos >= n) {
            error_at(a->loc, "too many arguments for neuron model '%s' (it takes %d)", model->name, n);
            return 0;
        }
        given[pos++] = a;
    }
    int k = 0;
    for (const Node *p = model->args; p; p = p->next, k++) {
        Value v = verr;
        v.k = V_LAZY;
        if (given[k]) {
            v.expr = given[k];
            v.env_len = 0; /* call-site arguments see no model names */
            NeuronArg na = {p->name, given[k]};
            vec_push(I->arena, &I->p->args, na);
            vec_push(I->arena, &I->p->ctor, na);
        } else if (p->kind == N_KWARG) {
            v.expr = p->a;
            v.env_len = I->env.len;
            NeuronArg na = {p->name, p->a};
            vec_push(I->arena, &I->p->ctor, na);
        } else {
            error_at(call, "neuron model '%s' needs argument '%s'", model->name, p->name);
            ok = 0;
            continue;
        }
        if (lookup(I, p->name, I->env.len)) {
            error_at(p->loc, "constructor argument '%s' is declared twice", p->name);
            ok = 0;
        } else if (!strcmp(p->name, "x")) {
            error_at(p->loc, "'x' is the input current and cannot name a constructor argument");
            ok = 0;
        }
        bind(I, p->name, B_CTOR, v, p->loc);
    }
    return ok;
}

static NeuronProg *instantiate(Arena *a, const Node *model, const Node *args, Loc call) {
    int before = diag_errors();
    Inst I;
    memset(&I, 0, sizeof I);
    I.arena = a;
    I.model = model;
    I.p = arena_alloc(a, sizeof *I.p);
    I.p->model = model->name;
    I.p->model_loc = model->loc;
    I.p->emit = -1;
    if (!bind_ctor(&I, model, args, call))
        return NULL;
    int x = emit_op(&I, EQ_INPUT, -1, -1, -1, model->loc);
    bind(&I, "x", B_INPUT, vinst(x), model->loc);
    body(&I, model->body);
    if (diag_errors() != before) {
        /* an error in the model's body that the arguments caused (tau = 0
           divides by zero) is reported in the body: show the use too */
        Loc last = diag_last_error();
        int own = call.file == model->loc.file && call.line == model->loc.line &&
                  call.col == model->loc.col;
        if (!own && (last.file != call.file || last.line != call.line))
            note_at(call, "in neuron model '%s', used here", model->name);
        return NULL;
    }
    if (!I.emitted) {
        error_at(model->loc, "neuron model '%s' never emits a value ('emit s;')", model->name);
        return NULL;
    }
    for (int i = 0; i < I.env.len; i++) {
        Binding *b = &I.env.items[i];
        if (b->kind == B_STATE)
            I.p->states.items[b->state].next = operand(&I, b->v, b->loc);
        if (b->kind == B_LOCAL || b->kind == B_STATE) {
            NeuronName nm = {b->name, operand(&I, b->v, b->loc)};
            vec_push(a, &I.p->names, nm);
        }
    }
    return I.p;
}

NeuronProg *neuron_instantiate(Arena *a, const Node *model, const Node *args, Loc call) {
    /* the library's models are not the user's to fix: an error their
       arguments cause in one (tau = 0 divides by zero) is reported at the
       use, with the library's line as a note */
    diag_set_use(call, arena_printf(a, "in neuron model '%s', with the arguments given here", model->name),
                 arena_printf(a, "there, in the library's neuron model '%s'", model->name));
    NeuronProg *p = instantiate(a, model, args, call);
    diag_clear_use();
    return p;
}

int neuron_check(Arena *a, const Node *model) {
    for (const Node *p = model->args; p; p = p->next)
        if (p->kind != N_KWARG)
            return 1; /* needs arguments: checked where it is used */
    return neuron_instantiate(a, model, NULL, model->loc) != NULL;
}
