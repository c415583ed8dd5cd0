/*
 * trainspec.c: checks a train block and turns it into a TrainSpec.
 *
 * A train block is a list of settings, `name value;`, where a value is a
 * number, a name, a string or a call with positional or named arguments:
 *
 *   train FashionMLP {
 *     data fashion_mnist;
 *     loss cross_entropy;
 *     optimizer adam(lr = 1e-3);
 *     epochs 2; batch 128; seed 1;
 *   }
 *
 * Every setting has a default, so an absent block trains with the defaults.
 * Errors name the setting and point at the value.
 */
#include "trainspec.h"

#include <math.h>
#include <string.h>

/* A constant number: literals, unary minus and the four operations. */
static int num(const Node *e, double *out) {
    double a, b;
    switch (e->kind) {
    case N_NUM:
    case N_BOOL:
        *out = e->num;
        return 1;
    case N_UNOP:
        if (e->op != OP_NEG || !num(e->a, &a))
            break;
        *out = -a;
        return 1;
    case N_BINOP:
        if (!num(e->a, &a) || !num(e->b, &b))
            return 0;
        switch (e->op) {
        case OP_ADD: *out = a + b; break;
        case OP_SUB: *out = a - b; break;
        case OP_MUL: *out = a * b; break;
        case OP_DIV: *out = b != 0 ? a / b : NAN; break;
        default: *out = NAN;
        }
        if (!isfinite(*out)) {
            error_at(e->loc, "expected a finite constant number");
            return 0;
        }
        return 1;
    default:
        break;
    }
    error_at(e->loc, "expected a constant number");
    return 0;
}

static int num_in(const Node *e, double lo, double hi, const char *what, double *out) {
    if (!num(e, out))
        return 0;
    if (!(*out >= lo && *out <= hi)) {
        error_at(e->loc, "%s must be between %g and %g, got %g", what, lo, hi, *out);
        return 0;
    }
    return 1;
}

static int int_in(const Node *e, double lo, double hi, const char *what, int *out) {
    double v;
    if (!num_in(e, lo, hi, what, &v))
        return 0;
    if (v != floor(v)) {
        error_at(e->loc, "%s must be an integer", what);
        return 0;
    }
    *out = (int)v;
    return 1;
}

static int boolean(const Node *e, const char *what, int *out) {
    double v;
    if (!num(e, &v))
        return 0;
    if (v != 0 && v != 1) {
        error_at(e->loc, "%s must be true or false", what);
        return 0;
    }
    *out = v != 0;
    return 1;
}

/* The name of a value written as `name` or `name(args)`. */
static const char *head(const Node *e) {
    return e->kind == N_IDENT || e->kind == N_CALL ? e->name : NULL;
}

/* Binds the arguments of a call to names[0..n); vals[i] NULL when absent. */
static int bind(const Node *e, const char *const *names, int n, const Node **vals) {
    int ok = 1, pos = 0;
    for (int i = 0; i < n; i++)
        vals[i] = NULL;
    if (e->kind != N_CALL)
        return 1;
    for (const Node *a = e->args; a; a = a->next) {
        int k = -1;
        if (a->kind == N_KWARG) {
            for (int i = 0; i < n; i++)
                if (!strcmp(names[i], a->name))
                    k = i;
            if (k < 0) {
                Buf b = {0};
                for (int i = 0; i < n; i++)
                    buf_printf(&b, "%s%s", i ? ", " : "", names[i]);
                error_at(a->loc, "'%s' has no argument named '%s' (it has: %s)", e->name, a->name,
                         n ? b.data : "none");
                buf_free(&b);
                ok = 0;
                continue;
            }
            pos = n;
        } else {
            if (pos >= n) {
                error_at(a->loc, "too many arguments for '%s' (it takes %d)", e->name, n);
                return 0;
            }
            k = pos++;
        }
        if (vals[k]) {
            error_at(a->loc, "argument '%s' of '%s' is given twice", names[k], e->name);
            ok = 0;
            continue;
        }
        vals[k] = a->kind == N_KWARG ? a->a : a;
    }
    return ok;
}

static int str(const Node *e, const char *what, const char **out) {
    if (e->kind != N_STR) {
        error_at(e->loc, "%s is a string, e.g. \"data/train_x.npy\"", what);
        return 0;
    }
    *out = e->name;
    return 1;
}

/* mean and std of a data value, when given */
static int set_norm(TrainSpec *ts, const Node *mean, const Node *std) {
    return (!mean || num_in(mean, -1e6, 1e6, "mean", &ts->mean)) &&
           (!std || num_in(std, 1e-12, 1e6, "std", &ts->std));
}

static int set_data(TrainSpec *ts, const Node *v) {
    const char *h = head(v);
    if (h && (!strcmp(h, "idx") || !strcmp(h, "fashion_mnist") || !strcmp(h, "mnist"))) {
        static const char *const names[] = {"dir", "mean", "std"};
        const Node *a[3];
        if (!bind(v, names, 3, a) || !set_norm(ts, a[1], a[2]))
            return 0;
        ts->data = DATA_IDX;
        ts->dir = NULL; /* fashion_mnist: the runtime's default folder */
        if (!a[0]) {
            if (!strcmp(h, "fashion_mnist"))
                return 1;
            error_at(v->loc, "'%s' needs the folder of its IDX files: %s(\"DIR\")", h, h);
            return 0;
        }
        return str(a[0], "the IDX folder", &ts->dir);
    }
    if (h && !strcmp(h, "npy")) {
        static const char *const names[] = {"train_x", "train_y", "test_x", "test_y", "mean", "std"};
        const Node *a[6];
        if (!bind(v, names, 6, a) || !set_norm(ts, a[4], a[5]))
            return 0;
        for (int i = 0; i < 4; i++) {
            if (!a[i]) {
                error_at(v->loc, "'npy' needs %s = \"FILE.npy\"", names[i]);
                return 0;
            }
            if (!str(a[i], names[i], &ts->npy[i]))
                return 0;
        }
        ts->data = DATA_NPY;
        return 1;
    }
    error_at(v->loc, "unknown data: expected fashion_mnist, mnist(\"DIR\"), idx(\"DIR\") or "
                     "npy(train_x = ..., train_y = ..., test_x = ..., test_y = ...)");
    return 0;
}

static int set_loss(TrainSpec *ts, const Node *v) {
    const char *h = head(v);
    const Node *a[2];
    if (h && !strcmp(h, "cross_entropy")) {
        ts->loss = LOSS_CE;
        return bind(v, NULL, 0, a);
    }
    if (h && !strcmp(h, "tet")) {
        static const char *const names[] = {"lambda", "phi"};
        if (!bind(v, names, 2, a))
            return 0;
        ts->loss = LOSS_TET;
        ts->lambda = 0;
        ts->phi = 1;
        return (!a[0] || num_in(a[0], 0, 1, "lambda", &ts->lambda)) &&
               (!a[1] || num_in(a[1], -1e6, 1e6, "phi", &ts->phi));
    }
    if (h && !strcmp(h, "mse_count")) {
        static const char *const names[] = {"correct", "incorrect"};
        if (!bind(v, names, 2, a))
            return 0;
        ts->loss = LOSS_MSE_COUNT;
        return (!a[0] || num_in(a[0], 0, 1, "correct", &ts->correct)) &&
               (!a[1] || num_in(a[1], 0, 1, "incorrect", &ts->incorrect));
    }
    error_at(v->loc, "unknown loss: expected cross_entropy, tet(lambda, phi) or mse_count(correct, incorrect)");
    return 0;
}

static int set_optimizer(TrainSpec *ts, const Node *v) {
    const char *h = head(v);
    const Node *a[6];
    if (h && !strcmp(h, "sgd")) {
        static const char *const names[] = {"lr", "momentum", "nesterov", "weight_decay"};
        if (!bind(v, names, 4, a))
            return 0;
        ts->opt = OPT_SGD;
        ts->lr = 0.1;
        ts->momentum = 0;
        ts->weight_decay = 0;
        ts->nesterov = 0;
        if ((a[0] && !num_in(a[0], 0, TRAINSPEC_MAX_LR, "lr", &ts->lr)) ||
            (a[1] && !num_in(a[1], 0, 1, "momentum", &ts->momentum)) ||
            (a[2] && !boolean(a[2], "nesterov", &ts->nesterov)) ||
            (a[3] && !num_in(a[3], 0, 1e6, "weight_decay", &ts->weight_decay)))
            return 0;
        if (ts->nesterov && ts->momentum <= 0) {
            error_at(v->loc, "nesterov needs a momentum above 0 (as in PyTorch)");
            return 0;
        }
        return 1;
    }
    if (h && (!strcmp(h, "adam") || !strcmp(h, "adamw"))) {
        static const char *const names[] = {"lr", "beta1", "beta2", "eps", "weight_decay"};
        if (!bind(v, names, 5, a))
            return 0;
        ts->opt = !strcmp(h, "adam") ? OPT_ADAM : OPT_ADAMW;
        ts->lr = 1e-3;
        ts->beta1 = 0.9;
        ts->beta2 = 0.999;
        ts->eps = 1e-8;
        ts->weight_decay = ts->opt == OPT_ADAMW ? 0.01 : 0;
        return (!a[0] || num_in(a[0], 0, TRAINSPEC_MAX_LR, "lr", &ts->lr)) &&
               (!a[1] || num_in(a[1], 0, 0.999999, "beta1", &ts->beta1)) &&
               (!a[2] || num_in(a[2], 0, 0.999999, "beta2", &ts->beta2)) &&
               (!a[3] || num_in(a[3], 1e-30, 1, "eps", &ts->eps)) &&
               (!a[4] || num_in(a[4], 0, 1e6, "weight_decay", &ts->weight_decay));
    }
    error_at(v->loc, "unknown optimizer: expected sgd(...), adam(...) or adamw(...)");
    return 0;
}

static int set_schedule(TrainSpec *ts, const Node *v) {
    const char *h = head(v);
    const Node *a[2];
    if (h && !strcmp(h, "none")) {
        ts->sched = SCHED_NONE;
        return bind(v, NULL, 0, a);
    }
    if (h && !strcmp(h, "cosine")) {
        static const char *const names[] = {"eta_min"};
        if (!bind(v, names, 1, a))
            return 0;
        ts->sched = SCHED_COSINE;
        return !a[0] || num_in(a[0], 0, 1e6, "eta_min", &ts->eta_min);
    }
    if (h && !strcmp(h, "step")) {
        static const char *const names[] = {"step_size", "gamma"};
        if (!bind(v, names, 2, a))
            return 0;
        ts->sched = SCHED_STEP;
        if (!a[0]) {
            error_at(v->loc, "'step' needs step_size (epochs between decays)");
            return 0;
        }
        return int_in(a[0], 1, 1e6, "step_size", &ts->step_size) &&
               (!a[1] || num_in(a[1], 0, 1, "gamma", &ts->gamma));
    }
    error_at(v->loc, "unknown schedule: expected none, cosine(eta_min) or step(step_size, gamma)");
    return 0;
}

/* augment none | images(shift = PIXELS, flip = BOOL) */
static int set_augment(TrainSpec *ts, const Node *v) {
    const char *h = head(v);
    const Node *a[2];
    ts->augment_loc = v->loc;
    ts->shift = ts->flip = 0;
    if (h && !strcmp(h, "none"))
        return bind(v, NULL, 0, a);
    if (h && !strcmp(h, "images")) {
        static const char *const names[] = {"shift", "flip"};
        if (!bind(v, names, 2, a))
            return 0;
        return (!a[0] || int_in(a[0], 0, 64, "shift (pixels)", &ts->shift)) &&
               (!a[1] || boolean(a[1], "flip", &ts->flip));
    }
    error_at(v->loc, "unknown augmentation: expected none or images(shift = PIXELS, flip = true)");
    return 0;
}

static int setting(TrainSpec *ts, const Node *st) {
    const char *k = st->name;
    const Node *v = st->a;
    if (!strcmp(k, "data"))
        return set_data(ts, v);
    if (!strcmp(k, "loss"))
        return set_loss(ts, v);
    if (!strcmp(k, "optimizer"))
        return set_optimizer(ts, v);
    if (!strcmp(k, "schedule"))
        return set_schedule(ts, v);
    if (!strcmp(k, "augment"))
        return set_augment(ts, v);
    if (!strcmp(k, "epochs"))
        return int_in(v, 1, 1e6, "epochs", &ts->epochs);
    if (!strcmp(k, "batch"))
        return int_in(v, 1, 65536, "batch", &ts->batch);
    if (!strcmp(k, "shuffle"))
        return boolean(v, "shuffle", &ts->shuffle);
    if (!strcmp(k, "clip"))
        return num_in(v, 0, 1e12, "clip (the largest gradient norm)", &ts->clip);
    if (!strcmp(k, "seed")) {
        double s;
        if (!num_in(v, 0, 9007199254740992.0, "seed", &s))
            return 0;
        if (s != floor(s)) {
            error_at(v->loc, "seed must be an integer");
            return 0;
        }
        ts->seed = (unsigned long long)s;
        return 1;
    }
    error_at(st->loc, "unknown setting '%s' (expected data, augment, loss, optimizer, schedule, clip, "
                      "shuffle, epochs, batch or seed)", k);
    return 0;
}

int trainspec_build(Node *items, const char *network, TrainSpec *ts) {
    memset(ts, 0, sizeof *ts);
    ts->network = network;
    ts->data = DATA_IDX;
    ts->mean = 0;
    ts->std = 1;
    ts->loss = LOSS_CE;
    ts->lambda = 0;
    ts->phi = 1;
    ts->correct = 0.8;
    ts->incorrect = 0.2;
    ts->opt = OPT_ADAM;
    ts->lr = 1e-3;
    ts->beta1 = 0.9;
    ts->beta2 = 0.999;
    ts->eps = 1e-8;
    ts->sched = SCHED_NONE;
    ts->gamma = 0.1;
    ts->step_size = 1;
    ts->epochs = 1;
    ts->batch = 128;
    ts->shuffle = 1;
    ts->seed = 1;
    int ok = 1;
    const Node *block = NULL;
    for (const Node *it = items; it; it = it->next) {
        if (it->kind != D_TRAIN || strcmp(it->name, network))
            continue;
        if (block) {
            error_at(it->loc, "network '%s' has two train blocks", network);
            note_at(block->loc, "the first is here");
            ok = 0;
            continue;
        }
        block = it;
    }
    for (const Node *it = items; it; it = it->next) {
        if (it->kind != D_TRAIN)
            continue;
        int known = 0;
        for (const Node *n = items; n; n = n->next)
            known |= n->kind == D_NETWORK && !strcmp(n->name, it->name);
        if (!known) {
            error_at(it->loc, "train block for '%s', but no network has that name", it->name);
            ok = 0;
        }
    }
    if (!block)
        return ok;
    ts->loc = block->loc;
    const Node *seen[16] = {0};
    static const char *const keys[] = {"data",  "loss", "optimizer", "schedule", "epochs",
                                       "batch", "clip", "seed",      "shuffle",  "augment"};
    for (const Node *st = block->body; st; st = st->next) {
        for (int k = 0; k < 10; k++)
            if (!strcmp(st->name, keys[k])) {
                if (seen[k]) {
                    error_at(st->loc, "setting '%s' is given twice", st->name);
                    note_at(seen[k]->loc, "first given here");
                    ok = 0;
                }
                seen[k] = st;
            }
        if (!setting(ts, st))
            ok = 0;
    }
    return ok;
}
