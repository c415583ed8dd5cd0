/*
 * import.c: ONNX graph to the description language (see onnx.h).
 *
 * The model is unpacked with protobuf-c from a file of bounded size and
 * then treated as hostile: every name is checked before it is used, every
 * tensor's data is checked against its dims (raw_data, the typed fields or
 * an external file inside the model's folder), and every node is checked
 * against the subset of each operator snnc supports, with errors that name
 * the node and its op type. The nodes must come in topological order (as
 * ONNX requires); a node that reads a value nothing defined yet is an
 * error (it is how a cycle shows).
 *
 * Each supported node becomes one layer statement, named after the node:
 *   Gemm, MatMul (+ Add of a bias)  -> dense       Conv -> conv2d
 *   MaxPool, AveragePool, GlobalAveragePool -> maxpool / avgpool
 *   Pad (zeros around H and W) before a Conv or an AveragePool -> its padding
 *   Flatten, Reshape to [N, -1]     -> flatten     BatchNormalization -> batchnorm
 *   Reshape to [N, d1, ...]         -> reshape
 *   Add of two values -> add        Mul by a scalar constant -> scale
 *   Identity -> identity            Dropout -> dropout      Relu -> ReLU
 *   snn::LIF, IF, LI, PLIF, ARLIF, DALIF -> that neuron model
 *   snn::Neuron (attribute model)   -> any neuron model (--neurons FILE.snn)
 *   snn::Prev (attribute source)    -> prev(source), a recurrent edge
 * Constructor arguments are the snn node's attributes; learnable neuron
 * parameters are its initializer inputs after x, in the model's order.
 * A value read through a Prev has no known shape until sema: the ops that
 * read one pass it on as unknown and sema checks it.
 */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnx.h"
#include "onnx.pb-c.h"

#define MAX_MODEL_BYTES ((size_t)1 << 30)

typedef struct Const {
    const char *name;
    int ndim;
    int64_t dims[8];
    int64_t count;
    float *data;
    int used_as_weight;
} Const;

typedef struct Value {
    const char *name;  /* the ONNX value */
    const char *layer; /* the description-language name that holds it */
    Shape shape;       /* per sample; ndim 0: not known yet (a Prev value) */
    int64_t pad[2];    /* the output of a Pad: layer padded by this much */
} Value;

typedef struct Imp {
    Arena *a;
    const char *path;
    const char *dir; /* the model's folder, for external data */
    const OnnxOptions *opt;
    Onnx__ModelProto *m;
    Buf text;
    VEC(Const) consts;
    VEC(Value) values;
    /* lookups by name are hashed, so that a graph of n nodes imports in
       time linear in n (searching lists made 100k nodes take minutes) */
    StrMap const_index;  /* name -> index in consts */
    StrMap value_index;  /* name -> index in values of the latest with it; -1: none */
    StrMap layers;       /* names in use -> 1 */
    StrMap next_suffix;  /* make_name's base -> the first suffix not yet known used */
    VEC(const char *) prev_sources; /* the source attribute of each Prev */
    OnnxImport *out;
    int errors;
} Imp;

/* ---- diagnostics ---- */

static void bad(Imp *I, const Onnx__NodeProto *n, const char *fmt, ...) PRINTF_LIKE(3, 4);
static void bad(Imp *I, const Onnx__NodeProto *n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    Buf b = {0};
    buf_vprintf(&b, fmt, ap);
    va_end(ap);
    if (n)
        error_plain("%s: node '%s' (%s%s%s): %s", I->path, n->name && *n->name ? n->name : "(unnamed)",
                    n->domain && *n->domain ? n->domain : "", n->domain && *n->domain ? "::" : "",
                    n->op_type ? n->op_type : "?", b.data);
    else
        error_plain("%s: %s", I->path, b.data);
    buf_free(&b);
    I->errors++;
}

/* A name fit to quote in a message (bounded, printable). */
static const char *q(Imp *I, const char *s) {
    if (!s)
        return "(none)";
    size_t n = strlen(s);
    char *o = arena_alloc(I->a, (n > 80 ? 80 : n) + 4);
    size_t k = 0;
    for (size_t i = 0; i < n && k < 80; i++)
        o[k++] = (unsigned char)s[i] >= 32 && (unsigned char)s[i] < 127 ? s[i] : '?';
    if (n > 80) {
        o[k++] = '.';
        o[k++] = '.';
        o[k++] = '.';
    }
    return o;
}

/* ---- names ---- */

static int is_ident_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static int name_used(Imp *I, const char *s) { return strmap_get(&I->layers, s) != NULL; }

/* A fresh identifier from a node or value name: other characters become _,
   at most 48 characters, a letter first, not a keyword, unique. */
static const char *make_name(Imp *I, const char *want, const char *fallback) {
    static const char *const reserved[] = {"neuron", "network", "param", "state", "emit", "if", "else", "per",
                                           "timesteps", "input", "output", "encode", "readout", "as", "train",
                                           "true", "false", "prev", "add"};
    char buf[64];
    size_t k = 0;
    const char *s = want && *want ? want : fallback;
    for (; *s && k < 48; s++) {
        char c = is_ident_char(*s) ? *s : '_';
        if (k == 0 && c == '_' && !(want && *want && *want == '_'))
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
    for (size_t i = 0; i < sizeof reserved / sizeof *reserved; i++)
        if (!strcmp(buf, reserved[i])) {
            buf[k++] = '_';
            buf[k] = 0;
        }
    int is_op = 0;
    for (int op = 0; op < IR_NUM_OPS; op++)
        is_op |= !strcmp(buf, ir_op_names[op]);
    const char *name = is_op ? arena_printf(I->a, "%s_", buf) : arena_strdup(I->a, buf);
    if (name_used(I, name)) {
        /* names are never given back, so the first free suffix of a base
           only grows: resuming where the last search stopped gives the
           same name as trying 2, 3, ... again, without the quadratic cost
           of many nodes of one name */
        int *next = strmap_get(&I->next_suffix, buf);
        if (!next) {
            next = strmap_put(I->a, &I->next_suffix, arena_strdup(I->a, buf));
            *next = 2;
        }
        int i = *next;
        for (;; i++) {
            name = arena_printf(I->a, "%s_%d", buf, i);
            if (!name_used(I, name))
                break;
        }
        *next = i + 1;
    }
    *strmap_put(I->a, &I->layers, name) = 1;
    return name;
}

static Value *find_value(Imp *I, const char *name) {
    const int *i = strmap_get(&I->value_index, name);
    return i && *i >= 0 ? &I->values.items[*i] : NULL;
}

static Const *find_const(Imp *I, const char *name) {
    const int *i = strmap_get(&I->const_index, name);
    return i ? &I->consts.items[*i] : NULL;
}

/* Adds a value; a later one of the same name hides an earlier one. */
static void add_value(Imp *I, Value v) {
    vec_push(I->a, &I->values, v);
    *strmap_put(I->a, &I->value_index, v.name) = I->values.len - 1;
}

static void add_const(Imp *I, Const c) {
    vec_push(I->a, &I->consts, c);
    *strmap_put(I->a, &I->const_index, c.name) = I->consts.len - 1;
}

/* ---- tensors ---- */

/* The model's folder joined with a relative path that stays inside it. */
static const char *inside(Imp *I, const char *rel) {
    if (!rel || !*rel || rel[0] == '/' || strstr(rel, "\\"))
        return NULL;
    for (const char *p = rel; *p;) {
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if ((n == 2 && p[0] == '.' && p[1] == '.') || n == 0)
            return NULL;
        p += n + (e ? 1 : 0);
    }
    return arena_printf(I->a, "%s%s", I->dir, rel);
}

/* Whether an existing file stays inside the model's folder once symbolic
   links are followed (a file that does not exist fails to open later). */
static int really_inside(Imp *I, const char *path) {
    char dir[PATH_MAX], file[PATH_MAX];
    if (!realpath(path, file))
        return 1;
    if (!realpath(*I->dir ? I->dir : ".", dir))
        return 0;
    size_t n = strlen(dir);
    return !strncmp(file, dir, n) && (file[n] == '/' || (n == 1 && dir[0] == '/'));
}

static int external_bytes(Imp *I, const Onnx__NodeProto *n, const Onnx__TensorProto *t, size_t want,
                          unsigned char **out) {
    const char *loc = NULL;
    int64_t off = 0, len = -1;
    for (size_t i = 0; i < t->n_external_data; i++) {
        const Onnx__StringStringEntryProto *kv = t->external_data[i];
        if (!kv->key || !kv->value)
            continue;
        char *end;
        if (!strcmp(kv->key, "location"))
            loc = kv->value;
        else if (!strcmp(kv->key, "offset") || !strcmp(kv->key, "length")) {
            errno = 0;
            long long v = strtoll(kv->value, &end, 10);
            if (errno || *end || v < 0) {
                bad(I, n, "tensor '%s': external data %s '%s' is not a number", q(I, t->name), kv->key,
                    q(I, kv->value));
                return -1;
            }
            if (!strcmp(kv->key, "offset"))
                off = v;
            else
                len = v;
        }
    }
    const char *path = inside(I, loc);
    if (!path) {
        bad(I, n, "tensor '%s': external data location '%s' is not a relative path inside the model's folder",
            q(I, t->name), q(I, loc));
        return -1;
    }
    if (!really_inside(I, path)) {
        bad(I, n, "tensor '%s': external data location '%s' leads out of the model's folder through a symbolic link",
            q(I, t->name), q(I, loc));
        return -1;
    }
    if (len >= 0 && (size_t)len != want) {
        bad(I, n, "tensor '%s': external data length %lld, but its dims need %zu bytes", q(I, t->name),
            (long long)len, want);
        return -1;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        bad(I, n, "tensor '%s': cannot open its external data '%s': %s", q(I, t->name), q(I, loc),
            strerror(errno));
        return -1;
    }
    long size = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    int ok = size >= 0 && off <= size && (uint64_t)(size - off) >= want;
    unsigned char *buf = ok ? malloc(want + 1) : NULL;
    ok = buf && fseek(f, (long)off, SEEK_SET) == 0 && fread(buf, 1, want, f) == want;
    fclose(f);
    if (!ok) {
        free(buf);
        bad(I, n, "tensor '%s': its external data '%s' holds fewer than %zu bytes at offset %lld",
            q(I, t->name), q(I, loc), want, (long long)off);
        return -1;
    }
    *out = buf;
    return 0;
}

/* The tensor's values as floats (FLOAT, DOUBLE, INT32, INT64). */
static int tensor_floats(Imp *I, const Onnx__NodeProto *n, const Onnx__TensorProto *t, Const *c) {
    memset(c, 0, sizeof *c);
    c->name = t->name ? t->name : "";
    if (t->n_dims > 8) {
        bad(I, n, "tensor '%s' has %zu dimensions (at most 8)", q(I, t->name), t->n_dims);
        return -1;
    }
    int64_t count = 1;
    for (size_t i = 0; i < t->n_dims; i++) {
        if (t->dims[i] < 0 || !mul_checked(count, t->dims[i], IR_MAX_ELEMS, &count)) {
            bad(I, n, "tensor '%s' has dims that are negative or hold more than %lld elements", q(I, t->name),
                (long long)IR_MAX_ELEMS);
            return -1;
        }
        c->dims[i] = t->dims[i];
    }
    c->ndim = (int)t->n_dims;
    c->count = count;
    int type = t->has_data_type ? t->data_type : 0;
    size_t esize = type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT || type == ONNX__TENSOR_PROTO__DATA_TYPE__INT32 ? 4
                   : type == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE || type == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 ? 8
                                                                                                                   : 0;
    if (!esize) {
        bad(I, n, "tensor '%s' has data type %d; snnc reads float, double, int32 and int64 tensors", q(I, t->name),
            type);
        return -1;
    }
    /* the data is checked against the dims before anything of their size
       is allocated: a small file must not make snnc allocate gigabytes */
    const unsigned char *raw = NULL;
    unsigned char *ext = NULL;
    size_t want = (size_t)count * esize;
    if (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) {
        if (external_bytes(I, n, t, want, &ext) != 0)
            return -1;
        raw = ext;
    } else if (t->has_raw_data) {
        if (t->raw_data.len != want) {
            bad(I, n, "tensor '%s': raw_data holds %zu bytes, its dims and type need %zu", q(I, t->name),
                t->raw_data.len, want);
            return -1;
        }
        raw = t->raw_data.data;
    } else {
        size_t have = type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT    ? t->n_float_data
                      : type == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE ? t->n_double_data
                      : type == ONNX__TENSOR_PROTO__DATA_TYPE__INT32  ? t->n_int32_data
                                                                      : t->n_int64_data;
        if (have != (size_t)count) {
            bad(I, n, "tensor '%s' holds %zu values, its dims need %lld", q(I, t->name), have, (long long)count);
            return -1;
        }
    }
    c->data = arena_alloc(I->a, sizeof(float) * (size_t)count + 1);
    for (int64_t i = 0; i < count; i++) {
        double v;
        if (raw) {
            const unsigned char *p = raw + (size_t)i * esize;
            uint64_t u = 0;
            for (size_t k = 0; k < esize; k++)
                u |= (uint64_t)p[k] << (8 * k);
            if (type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT) {
                uint32_t w = (uint32_t)u;
                float f;
                memcpy(&f, &w, 4);
                v = f;
            } else if (type == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE) {
                memcpy(&v, &u, 8);
            } else if (type == ONNX__TENSOR_PROTO__DATA_TYPE__INT32) {
                v = (double)(int32_t)(uint32_t)u;
            } else {
                v = (double)(int64_t)u;
            }
        } else {
            v = type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT    ? t->float_data[i]
                : type == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE ? t->double_data[i]
                : type == ONNX__TENSOR_PROTO__DATA_TYPE__INT32  ? t->int32_data[i]
                                                                : (double)t->int64_data[i];
        }
        c->data[i] = (float)v;
    }
    free(ext);
    return 0;
}

/* ---- attributes ---- */

static const Onnx__AttributeProto *attr(const Onnx__NodeProto *n, const char *name) {
    for (size_t i = 0; i < n->n_attribute; i++)
        if (n->attribute[i]->name && !strcmp(n->attribute[i]->name, name))
            return n->attribute[i];
    return NULL;
}

static int64_t attr_int(const Onnx__NodeProto *n, const char *name, int64_t def) {
    const Onnx__AttributeProto *a = attr(n, name);
    return a && a->has_i ? a->i : def;
}

static float attr_float(const Onnx__NodeProto *n, const char *name, float def) {
    const Onnx__AttributeProto *a = attr(n, name);
    return a && a->has_f ? a->f : def;
}

/* An ints attribute of exactly `want` values in [lo, hi], or the default. */
static int attr_ints(Imp *I, const Onnx__NodeProto *n, const char *name, int want, int64_t lo, int64_t hi,
                     int64_t def, int64_t *out) {
    const Onnx__AttributeProto *a = attr(n, name);
    for (int i = 0; i < want; i++)
        out[i] = def;
    if (!a)
        return 1;
    if ((int)a->n_ints != want) {
        bad(I, n, "attribute %s has %zu values, expected %d", name, a->n_ints, want);
        return 0;
    }
    for (int i = 0; i < want; i++) {
        if (a->ints[i] < lo || a->ints[i] > hi) {
            bad(I, n, "attribute %s: %lld is out of range (%lld to %lld)", name, (long long)a->ints[i],
                (long long)lo, (long long)hi);
            return 0;
        }
        out[i] = a->ints[i];
    }
    return 1;
}

/* Attributes a node may have; any other is refused, so that nothing is
   silently ignored. */
static int only_attrs(Imp *I, const Onnx__NodeProto *n, const char *const *ok, int nok) {
    for (size_t i = 0; i < n->n_attribute; i++) {
        const char *name = n->attribute[i]->name ? n->attribute[i]->name : "";
        int known = 0;
        for (int k = 0; k < nok; k++)
            known |= !strcmp(name, ok[k]);
        if (!known) {
            bad(I, n, "attribute '%s' is not supported", q(I, name));
            return 0;
        }
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

static const char *flt(Imp *I, float f) {
    char s[48];
    format_float(s, sizeof s, f);
    if (!strchr(s, '.') && !strchr(s, 'e') && !strchr(s, 'n') && !strchr(s, 'N'))
        strcat(s, ".0");
    return arena_strdup(I->a, s);
}

/* The value an input names, or NULL after reporting; the output of a Pad
   only where padded is set (Conv and AveragePool take it into their
   padding). */
static Value *input_maybe_padded(Imp *I, const Onnx__NodeProto *n, size_t k, int padded) {
    if (k >= n->n_input || !n->input[k] || !*n->input[k]) {
        bad(I, n, "input %zu is missing", k + 1);
        return NULL;
    }
    Value *v = find_value(I, n->input[k]);
    if (v && !padded && (v->pad[0] || v->pad[1])) {
        bad(I, n, "input '%s' is the output of a Pad, which snnc supports only before a Conv or an "
                  "AveragePool", q(I, n->input[k]));
        return NULL;
    }
    if (!v) {
        if (find_const(I, n->input[k]))
            bad(I, n, "input '%s' is a constant; snnc needs a value computed from the network's input here",
                q(I, n->input[k]));
        else
            bad(I, n, "input '%s' is not defined before this node (the graph must be in topological order "
                      "and without cycles)",
                q(I, n->input[k]));
    }
    return v;
}

static Value *input_value(Imp *I, const Onnx__NodeProto *n, size_t k) {
    return input_maybe_padded(I, n, k, 0);
}

static Const *input_const(Imp *I, const Onnx__NodeProto *n, size_t k, const char *what) {
    if (k >= n->n_input || !n->input[k] || !*n->input[k]) {
        bad(I, n, "%s (input %zu) is missing", what, k + 1);
        return NULL;
    }
    Const *c = find_const(I, n->input[k]);
    if (!c)
        bad(I, n, "%s '%s' must be an initializer or a Constant", what, q(I, n->input[k]));
    return c;
}

static void add_tensor(Imp *I, const char *layer, const char *param, int index, const Const *c, int ndim,
                       const int64_t *shape) {
    OnnxTensor t;
    memset(&t, 0, sizeof t);
    t.layer = layer;
    t.param = param;
    t.index = index;
    t.source = arena_strdup(I->a, c->name); /* the model's memory is freed after the import */
    t.ndim = ndim;
    for (int i = 0; i < ndim; i++)
        t.shape[i] = shape[i];
    t.count = c->count;
    t.data = c->data;
    vec_push(I->a, &I->out->tensors, t);
}

/* Defines node n's first output as the layer `layer` of shape s. */
static void define(Imp *I, const Onnx__NodeProto *n, const char *layer, const Shape *s) {
    Value v = {n->output[0], layer, *s, {0, 0}};
    add_value(I, v);
}

static int check_count(Imp *I, const Onnx__NodeProto *n, const Shape *s) {
    int64_t c = 1;
    for (int i = 0; i < s->ndim; i++)
        if (s->d[i] < 1 || !mul_checked(c, s->d[i], IR_MAX_ELEMS - 1, &c)) {
            bad(I, n, "its output would have an empty or too large shape");
            return 0;
        }
    return 1;
}

/* ---- operators ---- */

static int op_dense(Imp *I, const Onnx__NodeProto *n, const char *name, Value *x, Const *w, int transposed,
                    Const *bias) {
    if (x->shape.ndim > 1) {
        bad(I, n, "needs a flat input [N, features]; add a Flatten before it");
        return 0;
    }
    if (w->ndim != 2) {
        bad(I, n, "the weight '%s' must have 2 dimensions", q(I, w->name));
        return 0;
    }
    int64_t in = transposed ? w->dims[1] : w->dims[0], out = transposed ? w->dims[0] : w->dims[1];
    if (x->shape.ndim == 1 && in != x->shape.d[0]) { /* ndim 0: a Prev value, checked later */
        bad(I, n, "the weight '%s' takes %lld inputs, but its input has %lld", q(I, w->name), (long long)in,
            (long long)x->shape.d[0]);
        return 0;
    }
    if (bias && !(bias->count == out && (bias->ndim == 1 || (bias->ndim == 2 && bias->dims[0] == 1)))) {
        bad(I, n, "the bias '%s' must have %lld values", q(I, bias->name), (long long)out);
        return 0;
    }
    int64_t ws[2] = {out, in};
    Const wt = *w;
    if (!transposed) { /* snnc keeps [out, in], as PyTorch does */
        wt.data = arena_alloc(I->a, sizeof(float) * (size_t)w->count + 1);
        for (int64_t i = 0; i < in; i++)
            for (int64_t o = 0; o < out; o++)
                wt.data[o * in + i] = w->data[i * out + o];
    }
    add_tensor(I, name, "weight", 0, &wt, 2, ws);
    if (bias)
        add_tensor(I, name, "bias", 0, bias, 1, &out);
    buf_printf(&I->text, "  %s = %s |> dense(%lld%s);", name, x->layer, (long long)out, bias ? "" : ", bias = false");
    Shape s = {1, {out}};
    define(I, n, name, &s);
    return 1;
}

static int op_gemm(Imp *I, const Onnx__NodeProto *n, const char *name) {
    static const char *const ok[] = {"alpha", "beta", "transA", "transB"};
    if (!only_attrs(I, n, ok, 4))
        return 0;
    if (attr_float(n, "alpha", 1) != 1 || attr_float(n, "beta", 1) != 1 || attr_int(n, "transA", 0) != 0) {
        bad(I, n, "only alpha = 1, beta = 1 and transA = 0 are supported");
        return 0;
    }
    Value *x = input_value(I, n, 0);
    Const *w = x ? input_const(I, n, 1, "the weight") : NULL;
    Const *b = NULL;
    if (!w)
        return 0;
    if (n->n_input > 2 && n->input[2] && *n->input[2] && !(b = input_const(I, n, 2, "the bias")))
        return 0;
    return op_dense(I, n, name, x, w, attr_int(n, "transB", 0) != 0, b);
}

/* A MatMul whose only user is an Add of a constant becomes one dense layer
   with that bias: *fused is set to the Add so that it is skipped. */
static int op_matmul(Imp *I, const Onnx__NodeProto *n, const char *name, const Onnx__NodeProto *next,
                     int *fused) {
    static const char *const none[] = {""};
    if (!only_attrs(I, n, none, 0))
        return 0;
    Value *x = input_value(I, n, 0);
    Const *w = x ? input_const(I, n, 1, "the weight") : NULL;
    if (!w)
        return 0;
    Const *b = NULL;
    if (next && next->op_type && !strcmp(next->op_type, "Add") && (!next->domain || !*next->domain) &&
        next->n_input == 2 && next->n_output == 1) {
        int k = !strcmp(next->input[0], n->output[0]) ? 1 : !strcmp(next->input[1], n->output[0]) ? 0 : -1;
        if (k >= 0 && (b = find_const(I, next->input[k])) != NULL)
            *fused = 1;
    }
    if (!op_dense(I, n, name, x, w, 0, b))
        return 0;
    if (*fused) { /* the Add's output is the dense layer, and the MatMul's is no value */
        Value *v = &I->values.items[I->values.len - 1];
        *strmap_put(I->a, &I->value_index, v->name) = -1;
        v->name = next->output[0];
        *strmap_put(I->a, &I->value_index, v->name) = I->values.len - 1;
    }
    return 1;
}

/* pads [begin..., end...] must be symmetric */
static int sym_pads(Imp *I, const Onnx__NodeProto *n, int64_t *pad) {
    int64_t p[4];
    if (!attr_ints(I, n, "pads", 4, 0, 65536, 0, p))
        return 0;
    if (p[0] != p[2] || p[1] != p[3]) {
        bad(I, n, "pads %lld,%lld,%lld,%lld are not symmetric; snnc pads each side alike", (long long)p[0],
            (long long)p[1], (long long)p[2], (long long)p[3]);
        return 0;
    }
    const Onnx__AttributeProto *ap = attr(n, "auto_pad");
    if (ap && ap->has_s && !(ap->s.len == 6 && !memcmp(ap->s.data, "NOTSET", 6)) &&
        !(ap->s.len == 5 && !memcmp(ap->s.data, "VALID", 5))) {
        bad(I, n, "auto_pad other than NOTSET or VALID is not supported; give pads");
        return 0;
    }
    pad[0] = p[0];
    pad[1] = p[1];
    return 1;
}

/* Pad with zeros around H and W, as PyTorch writes before an AveragePool
   (and as a Conv's padding may be written): the output stands for its
   input padded, and only a Conv or an AveragePool may read it, taking the
   padding into its own. */
static int op_pad(Imp *I, const Onnx__NodeProto *n) {
    static const char *const ok[] = {"mode"};
    if (!only_attrs(I, n, ok, 1))
        return 0;
    const Onnx__AttributeProto *mode = attr(n, "mode");
    if (mode && !(mode->has_s && mode->s.len == 8 && !memcmp(mode->s.data, "constant", 8))) {
        bad(I, n, "only mode 'constant' is supported");
        return 0;
    }
    Value *x = input_value(I, n, 0);
    Const *pads = x ? input_const(I, n, 1, "the pads") : NULL;
    if (!pads)
        return 0;
    if (n->n_input > 3) {
        bad(I, n, "the axes input is not supported");
        return 0;
    }
    if (n->n_input > 2 && n->input[2] && *n->input[2]) {
        Const *v = input_const(I, n, 2, "the constant value");
        if (!v)
            return 0;
        if (v->count != 1 || v->data[0] != 0) {
            bad(I, n, "only padding with zeros is supported");
            return 0;
        }
    }
    if (x->shape.ndim != 3 || pads->count != 8) {
        bad(I, n, "only padding of [N, C, H, W] (8 pads) is supported");
        return 0;
    }
    const float *p = pads->data; /* [N, C, H, W] begins, then ends */
    if (p[0] || p[1] || p[4] || p[5] || p[2] != p[6] || p[3] != p[7] || p[2] < 0 || p[3] < 0 || p[2] > 65536 ||
        p[3] > 65536) {
        bad(I, n, "only the same padding on both sides of H and of W is supported");
        return 0;
    }
    Value v = {n->output[0], x->layer, x->shape, {(int64_t)p[2], (int64_t)p[3]}};
    add_value(I, v);
    return 1;
}

static int out_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t *o) {
    int64_t span = in + 2 * p - k;
    if (span < 0)
        return 0;
    *o = span / s + 1;
    return 1;
}

static int op_conv(Imp *I, const Onnx__NodeProto *n, const char *name) {
    static const char *const ok[] = {"kernel_shape", "strides", "pads", "dilations", "group", "auto_pad"};
    if (!only_attrs(I, n, ok, 6))
        return 0;
    Value *x = input_maybe_padded(I, n, 0, 1);
    Const *w = x ? input_const(I, n, 1, "the weight") : NULL;
    Const *b = NULL;
    if (!w)
        return 0;
    if (n->n_input > 2 && n->input[2] && *n->input[2] && !(b = input_const(I, n, 2, "the bias")))
        return 0;
    if ((x->shape.ndim != 3 && x->shape.ndim != 0) || w->ndim != 4) {
        bad(I, n, "only 2-D convolutions of [N, C, H, W] are supported");
        return 0;
    }
    int64_t k[2], s[2], d[2], p[2], g = attr_int(n, "group", 1);
    if (!attr_ints(I, n, "strides", 2, 1, 65536, 1, s) || !attr_ints(I, n, "dilations", 2, 1, 65536, 1, d) ||
        !attr_ints(I, n, "kernel_shape", 2, 1, 65536, 0, k) || !sym_pads(I, n, p))
        return 0;
    if (d[0] != 1 || d[1] != 1) {
        bad(I, n, "dilations other than 1 are not supported");
        return 0;
    }
    p[0] += x->pad[0];
    p[1] += x->pad[1];
    /* a Prev value's shape is not known yet: sema checks it */
    int64_t O = w->dims[0], C = x->shape.ndim ? x->shape.d[0] : w->dims[1] * (g >= 1 && g <= O ? g : 1);
    if (k[0] == 0)
        k[0] = w->dims[2], k[1] = w->dims[3];
    if (g < 1 || C % g || O % g || w->dims[1] != C / g || w->dims[2] != k[0] || w->dims[3] != k[1]) {
        bad(I, n, "the weight '%s' [%lld,%lld,%lld,%lld] does not fit %lld input channels, group %lld and "
                  "kernel %lldx%lld",
            q(I, w->name), (long long)w->dims[0], (long long)w->dims[1], (long long)w->dims[2],
            (long long)w->dims[3], (long long)C, (long long)g, (long long)k[0], (long long)k[1]);
        return 0;
    }
    if (b && b->count != O) {
        bad(I, n, "the bias '%s' must have %lld values", q(I, b->name), (long long)O);
        return 0;
    }
    Shape o = {3, {O, 0, 0}};
    if (!x->shape.ndim)
        o.ndim = 0;
    else if (!out_size(x->shape.d[1], k[0], s[0], p[0], &o.d[1]) ||
             !out_size(x->shape.d[2], k[1], s[1], p[1], &o.d[2])) {
        bad(I, n, "the kernel is larger than its padded input");
        return 0;
    }
    add_tensor(I, name, "weight", 0, w, 4, w->dims);
    if (b)
        add_tensor(I, name, "bias", 0, b, 1, &O);
    buf_printf(&I->text, "  %s = %s |> conv2d(%lld, [%lld, %lld], stride = [%lld, %lld], padding = [%lld, %lld]",
               name, x->layer, (long long)O, (long long)k[0], (long long)k[1], (long long)s[0], (long long)s[1],
               (long long)p[0], (long long)p[1]);
    if (g != 1)
        buf_printf(&I->text, ", groups = %lld", (long long)g);
    buf_printf(&I->text, "%s);", b ? "" : ", bias = false");
    define(I, n, name, &o);
    return !o.ndim || check_count(I, n, &o);
}

static int op_pool(Imp *I, const Onnx__NodeProto *n, const char *name, int max, int global) {
    static const char *const ok[] = {"kernel_shape", "strides", "pads", "ceil_mode", "count_include_pad",
                                     "dilations", "auto_pad", "storage_order"};
    if (!only_attrs(I, n, ok, global ? 0 : 8))
        return 0;
    Value *x = input_maybe_padded(I, n, 0, !max && !global);
    if (!x)
        return 0;
    if (x->shape.ndim != 3 && (x->shape.ndim != 0 || global)) {
        bad(I, n, "needs an input [N, C, H, W]");
        return 0;
    }
    if (n->n_output > 1) {
        bad(I, n, "the Indices output is not supported");
        return 0;
    }
    int64_t k[2], s[2], p[2] = {0, 0}, d[2];
    if (global) {
        k[0] = s[0] = x->shape.d[1];
        k[1] = s[1] = x->shape.d[2];
    } else {
        if (!attr_ints(I, n, "kernel_shape", 2, 1, 65536, 0, k) || !sym_pads(I, n, p) ||
            !attr_ints(I, n, "dilations", 2, 1, 1, 1, d))
            return 0;
        if (!attr(n, "kernel_shape")) {
            bad(I, n, "kernel_shape is required");
            return 0;
        }
        if (!attr_ints(I, n, "strides", 2, 1, 65536, 1, s))
            return 0;
        if (attr_int(n, "ceil_mode", 0) != 0) {
            bad(I, n, "ceil_mode = 1 is not supported");
            return 0;
        }
        if (!max && (p[0] || p[1]) && attr_int(n, "count_include_pad", 0) != 1) {
            bad(I, n, "padding is supported with count_include_pad = 1 (snnc's average counts the padding)");
            return 0;
        }
        p[0] += x->pad[0]; /* the zeros of a Pad before it count, as padding does */
        p[1] += x->pad[1];
        if (p[0] * 2 > k[0] || p[1] * 2 > k[1]) {
            bad(I, n, "padding must be at most half the kernel");
            return 0;
        }
    }
    Shape o = {3, {x->shape.d[0], 0, 0}};
    if (!x->shape.ndim)
        o.ndim = 0;
    else if (!out_size(x->shape.d[1], k[0], s[0], p[0], &o.d[1]) ||
             !out_size(x->shape.d[2], k[1], s[1], p[1], &o.d[2])) {
        bad(I, n, "the kernel is larger than its padded input");
        return 0;
    }
    buf_printf(&I->text, "  %s = %s |> %s([%lld, %lld], stride = [%lld, %lld], padding = [%lld, %lld]);", name,
               x->layer, max ? "maxpool" : "avgpool", (long long)k[0], (long long)k[1], (long long)s[0],
               (long long)s[1], (long long)p[0], (long long)p[1]);
    define(I, n, name, &o);
    return 1;
}

static int op_flatten(Imp *I, const Onnx__NodeProto *n, const char *name) {
    static const char *const ok[] = {"axis"};
    if (!only_attrs(I, n, ok, 1))
        return 0;
    Value *x = input_value(I, n, 0);
    if (!x)
        return 0;
    if (attr_int(n, "axis", 1) != 1) {
        bad(I, n, "only axis = 1 is supported");
        return 0;
    }
    Shape o = {x->shape.ndim ? 1 : 0, {shape_count(&x->shape)}};
    buf_printf(&I->text, "  %s = %s |> flatten;", name, x->layer);
    define(I, n, name, &o);
    return 1;
}

/* Reshape by a constant shape [N, d1, ..., dk]: N is 0, -1 or 1 (the
   batch), each d a size, 0 (the input's size there) or one -1. A flat
   result is a flatten, another a reshape (both views of the input). */
static int op_reshape(Imp *I, const Onnx__NodeProto *n, const char *name) {
    static const char *const ok[] = {"allowzero"};
    if (!only_attrs(I, n, ok, 1))
        return 0;
    Value *x = input_value(I, n, 0);
    Const *sh = x ? input_const(I, n, 1, "the shape") : NULL;
    if (!sh)
        return 0;
    const Shape *in = &x->shape;
    int64_t k = sh->count - 1, have = shape_count(in), want = 1;
    int open = -1, okshape = sh->ndim == 1 && k >= 1 && k <= IR_MAX_DIMS &&
                            (sh->data[0] == 0 || sh->data[0] == -1 || sh->data[0] == 1);
    Shape o = {(int)k, {0}};
    for (int64_t i = 0; okshape && i < k; i++) {
        float d = sh->data[i + 1];
        if (d == 0 && attr_int(n, "allowzero", 0) == 0 && in->ndim > i)
            d = (float)in->d[i];
        okshape = d == floorf(d) && (d >= 1 || (d == -1 && open < 0 && sh->data[0] != -1)) && d < 0x1p30f;
        o.d[i] = okshape ? (int64_t)d : 0;
        if (d == -1)
            open = (int)i;
        else if (okshape && !mul_checked(want, o.d[i], IR_MAX_ELEMS - 1, &want))
            okshape = 0;
    }
    if (!okshape) {
        bad(I, n, "only a constant shape [N, d1, ...] with N 0, -1 or 1 and 1 to %d sizes (one may be -1, a 0 "
                  "keeps the input's size) is supported",
            IR_MAX_DIMS);
        return 0;
    }
    if (!in->ndim && (open >= 0 || k > 1)) {
        bad(I, n, "the shape of its input (a Prev value) is not known here: only a reshape to [N, -1] is "
                  "supported");
        return 0;
    }
    if (in->ndim && open >= 0 && have % want == 0)
        o.d[open] = have / want, want = have;
    if (in->ndim && want != have) {
        bad(I, n, "a shape of %lld values per sample does not fit its input's %lld", (long long)want,
            (long long)have);
        return 0;
    }
    if (k == 1) {
        o.ndim = in->ndim ? 1 : 0;
        o.d[0] = have;
        buf_printf(&I->text, "  %s = %s |> flatten;", name, x->layer);
    } else {
        buf_printf(&I->text, "  %s = %s |> reshape([", name, x->layer);
        for (int i = 0; i < o.ndim; i++)
            buf_printf(&I->text, i ? ", %lld" : "%lld", (long long)o.d[i]);
        buf_printf(&I->text, "]);");
    }
    define(I, n, name, &o);
    return 1;
}

static int op_batchnorm(Imp *I, const Onnx__NodeProto *n, const char *name) {
    static const char *const ok[] = {"epsilon", "momentum", "training_mode", "spatial"};
    if (!only_attrs(I, n, ok, 4))
        return 0;
    if (attr_int(n, "training_mode", 0) != 0 || n->n_output > 1) {
        bad(I, n, "training_mode and the running-statistics outputs are not supported");
        return 0;
    }
    Value *x = input_value(I, n, 0);
    if (!x)
        return 0;
    if (x->shape.ndim != 1 && x->shape.ndim != 3 && x->shape.ndim != 0) {
        bad(I, n, "needs an input [N, C] or [N, C, H, W]");
        return 0;
    }
    static const char *const which[] = {"weight", "bias", "running_mean", "running_var"};
    static const char *const what[] = {"the scale", "the bias", "the mean", "the variance"};
    int64_t C = x->shape.d[0];
    for (int i = 0; i < 4; i++) {
        Const *c = input_const(I, n, (size_t)i + 1, what[i]);
        if (!c)
            return 0;
        if (!x->shape.ndim && i == 0) /* a Prev value: sema checks the shape */
            C = c->count;
        if (c->count != C) {
            bad(I, n, "%s '%s' must have %lld values", what[i], q(I, c->name), (long long)C);
            return 0;
        }
        add_tensor(I, name, which[i], 0, c, 1, &C);
    }
    float eps = attr_float(n, "epsilon", 1e-5f);
    if (!(eps > 0)) {
        bad(I, n, "epsilon must be positive");
        return 0;
    }
    buf_printf(&I->text, "  %s = %s |> batchnorm(eps = %s);", name, x->layer, flt(I, eps));
    define(I, n, name, &x->shape);
    return 1;
}

static int same_shape(const Shape *a, const Shape *b) {
    if (a->ndim != b->ndim)
        return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->d[i] != b->d[i])
            return 0;
    return 1;
}

static int op_add(Imp *I, const Onnx__NodeProto *n, const char *name) {
    static const char *const none[] = {""};
    if (!only_attrs(I, n, none, 0))
        return 0;
    if (n->n_input == 2 && (find_const(I, n->input[0]) || find_const(I, n->input[1]))) {
        bad(I, n, "adding a constant is supported only as the bias of a MatMul");
        return 0;
    }
    Value *a = input_value(I, n, 0), *b = a ? input_value(I, n, 1) : NULL;
    if (!b)
        return 0;
    if (a->shape.ndim && b->shape.ndim && !same_shape(&a->shape, &b->shape)) {
        bad(I, n, "adds values of different shapes (broadcasting is not supported)");
        return 0;
    }
    buf_printf(&I->text, "  %s = add(%s, %s);", name, a->layer, b->layer);
    define(I, n, name, a->shape.ndim ? &a->shape : &b->shape);
    return 1;
}

static int op_mul(Imp *I, const Onnx__NodeProto *n, const char *name) {
    static const char *const none[] = {""};
    if (!only_attrs(I, n, none, 0) || n->n_input != 2)
        return n->n_input == 2 ? 0 : (bad(I, n, "needs two inputs"), 0);
    int k = find_const(I, n->input[1]) ? 1 : find_const(I, n->input[0]) ? 0 : -1;
    Const *c = k >= 0 ? find_const(I, n->input[k]) : NULL;
    if (!c || c->count != 1) {
        bad(I, n, "only a multiplication by a scalar constant is supported");
        return 0;
    }
    Value *x = input_value(I, n, (size_t)(1 - k));
    if (!x)
        return 0;
    if (!isfinite(c->data[0])) {
        bad(I, n, "the factor is not finite");
        return 0;
    }
    buf_printf(&I->text, "  %s = %s |> scale(%s);", name, x->layer, flt(I, c->data[0]));
    define(I, n, name, &x->shape);
    return 1;
}

static int op_unary(Imp *I, const Onnx__NodeProto *n, const char *name, const char *layer) {
    static const char *const ok[] = {"ratio", "seed", "training_mode"};
    int dropout = !strcmp(layer, "dropout");
    if (!only_attrs(I, n, ok, dropout ? 3 : 0))
        return 0;
    Value *x = input_value(I, n, 0);
    if (!x)
        return 0;
    if (dropout) {
        float p = attr_float(n, "ratio", 0.5f);
        if (n->n_input > 1 && n->input[1] && *n->input[1]) {
            Const *r = input_const(I, n, 1, "the ratio");
            if (!r || r->count != 1)
                return r ? (bad(I, n, "the ratio must be a scalar"), 0) : 0;
            p = r->data[0];
        }
        if (!(p >= 0 && p < 1)) {
            bad(I, n, "the ratio must be in [0, 1)");
            return 0;
        }
        buf_printf(&I->text, "  %s = %s |> dropout(%s);", name, x->layer, flt(I, p));
    } else
        buf_printf(&I->text, "  %s = %s |> %s;", name, x->layer, layer);
    define(I, n, name, &x->shape);
    return 1;
}

/* A string attribute as a constructor argument: a name (layer, atan) or a
   surrogate call with a number (atan(2.0)) and nothing else, so that no
   text of the model can change the meaning of the generated network. */
static const char *safe_symbol(Imp *I, const ProtobufCBinaryData *s) {
    if (s->len == 0 || s->len > 64)
        return NULL;
    char buf[72];
    memcpy(buf, s->data, s->len);
    buf[s->len] = 0;
    size_t i = 0;
    if (!((buf[0] >= 'a' && buf[0] <= 'z') || (buf[0] >= 'A' && buf[0] <= 'Z')))
        return NULL;
    while (is_ident_char(buf[i]))
        i++;
    if (!buf[i])
        return arena_strdup(I->a, buf);
    if (buf[i] != '(')
        return NULL;
    char *end;
    errno = 0;
    double v = strtod(buf + i + 1, &end);
    if (errno || end == buf + i + 1 || !isfinite(v) || strcmp(end, ")"))
        return NULL;
    buf[i] = 0;
    return arena_printf(I->a, "%s(%s)", buf, flt(I, (float)v));
}

static int op_neuron(Imp *I, const Onnx__NodeProto *n, const char *name, const char *model) {
    Value *x = input_value(I, n, 0);
    if (!x)
        return 0;
    Buf args = {0};
    int first = 1;
    for (size_t i = 0; i < n->n_attribute; i++) {
        const Onnx__AttributeProto *a = n->attribute[i];
        const char *an = a->name ? a->name : "";
        if (!strcmp(an, "model") && n->op_type && !strcmp(n->op_type, "Neuron")) /* the model's name */
            continue;
        int okname = *an && !(an[0] >= '0' && an[0] <= '9') && strlen(an) <= 64;
        for (const char *c = an; *c; c++)
            okname &= is_ident_char(*c);
        if (!okname) {
            bad(I, n, "attribute '%s' is not a constructor argument name", q(I, an));
            buf_free(&args);
            return 0;
        }
        const char *val = NULL;
        if (a->has_f && a->has_type && a->type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT) {
            if (!isfinite(a->f)) {
                bad(I, n, "attribute %s is not finite", an);
                buf_free(&args);
                return 0;
            }
            val = flt(I, a->f);
        } else if (a->has_i && a->has_type && a->type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT) {
            if (a->i < -1000000000 || a->i > 1000000000) {
                bad(I, n, "attribute %s is out of range", an);
                buf_free(&args);
                return 0;
            }
            val = arena_printf(I->a, "%lld", (long long)a->i);
        } else if (a->has_s && a->has_type && a->type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING) {
            val = safe_symbol(I, &a->s);
            if (!val) {
                bad(I, n, "attribute %s: a string must be a name or a surrogate such as atan(2.0)", an);
                buf_free(&args);
                return 0;
            }
        } else {
            bad(I, n, "attribute %s must be a float, an int or a string", an);
            buf_free(&args);
            return 0;
        }
        buf_printf(&args, "%s%s = %s", first ? "" : ", ", an, val);
        first = 0;
    }
    /* learnable parameters: the inputs after x, in the model's order */
    for (size_t k = 1; k < n->n_input; k++) {
        Const *c = input_const(I, n, k, "a learnable parameter");
        if (!c) {
            buf_free(&args);
            return 0;
        }
        add_tensor(I, name, NULL, (int)k - 1, c, c->ndim, c->dims);
    }
    buf_printf(&I->text, "  %s = %s |> %s(%s);", name, x->layer, model, args.data ? args.data : "");
    buf_free(&args);
    define(I, n, name, &x->shape);
    return 1;
}

/* --spiking OP=MODEL(args): the replacement for every node OP. */
static const char *spiking_for(Imp *I, const char *op) {
    const char *s = I->opt->spiking;
    if (!s)
        return NULL;
    const char *eq = strchr(s, '=');
    if (!eq || (size_t)(eq - s) != strlen(op) || strncmp(s, op, (size_t)(eq - s)))
        return NULL;
    return eq + 1;
}

/* A Constant node: its tensor becomes a constant that later nodes read. */
static int node_constant(Imp *I, const Onnx__NodeProto *n) {
    const Onnx__AttributeProto *v = attr(n, "value");
    Const c;
    if (!v || !v->t || n->n_attribute != 1) {
        bad(I, n, "only a Constant with a tensor 'value' is supported");
        return 0;
    }
    if (tensor_floats(I, n, v->t, &c) != 0)
        return 0;
    c.name = n->output[0];
    add_const(I, c);
    return 1;
}

/* A node of domain snn: a neuron layer (a built-in model, or Neuron with
   its 'model'), or Prev. */
static int node_snn(Imp *I, const Onnx__NodeProto *n, const char *op, const char *name) {
    static const char *const models[] = {"LIF", "IF", "LI", "PLIF", "ARLIF", "DALIF"};
    const char *model = NULL;
    for (size_t k = 0; k < sizeof models / sizeof *models; k++)
        if (!strcmp(op, models[k]))
            model = models[k];
    if (!strcmp(op, "Neuron")) {
        const Onnx__AttributeProto *ma = attr(n, "model");
        const char *mn = ma && ma->has_s ? safe_symbol(I, &ma->s) : NULL;
        if (!mn || strchr(mn, '(')) {
            bad(I, n, "needs a string attribute 'model' naming a neuron model");
            return 0;
        }
        model = mn;
    }
    if (!strcmp(op, "Prev")) {
        const Onnx__AttributeProto *sa = attr(n, "source");
        if (!sa || !sa->has_s || sa->s.len == 0 || sa->s.len > 4096 || n->n_input != 0) {
            bad(I, n, "needs a string attribute 'source' naming a value, and no inputs");
            return 0;
        }
        /* resolved at the end (the source may come later): a mark holds
           the index of the source, never the model's text */
        buf_printf(&I->text, "  %s = prev(\001%d\001);", name, I->prev_sources.len);
        vec_push(I->a, &I->prev_sources, arena_strndup(I->a, (const char *)sa->s.data, sa->s.len));
        Shape unknown = {0, {0}};
        define(I, n, name, &unknown);
        return 1;
    }
    if (!model) {
        bad(I, n, "unknown operator of domain snn (LIF, IF, LI, PLIF, ARLIF, DALIF, Neuron, Prev)");
        return 0;
    }
    return op_neuron(I, n, name, model);
}

/* A node of the standard operators (docs/onnx.md); MatMul may take the
   next node (an Add of its bias) with it, setting *skip_next. */
static int node_standard(Imp *I, const Onnx__NodeProto *n, const char *op, const char *name,
                         const Onnx__NodeProto *next, int *skip_next) {
    if (!strcmp(op, "Gemm"))
        return op_gemm(I, n, name);
    if (!strcmp(op, "MatMul"))
        return op_matmul(I, n, name, next, skip_next);
    if (!strcmp(op, "Conv"))
        return op_conv(I, n, name);
    if (!strcmp(op, "Pad"))
        return op_pad(I, n);
    if (!strcmp(op, "MaxPool") || !strcmp(op, "AveragePool"))
        return op_pool(I, n, name, op[0] == 'M', 0);
    if (!strcmp(op, "GlobalAveragePool"))
        return op_pool(I, n, name, 0, 1);
    if (!strcmp(op, "Flatten"))
        return op_flatten(I, n, name);
    if (!strcmp(op, "Reshape"))
        return op_reshape(I, n, name);
    if (!strcmp(op, "BatchNormalization"))
        return op_batchnorm(I, n, name);
    if (!strcmp(op, "Add"))
        return op_add(I, n, name);
    if (!strcmp(op, "Mul"))
        return op_mul(I, n, name);
    if (!strcmp(op, "Identity"))
        return op_unary(I, n, name, "identity");
    if (!strcmp(op, "Dropout"))
        return op_unary(I, n, name, "dropout");
    if (!strcmp(op, "Relu"))
        return op_unary(I, n, name, "ReLU");
    bad(I, n, "operator %s is not supported (see docs/onnx.md)", q(I, op));
    return 0;
}

/* Node idx of the graph, as a line of the model's text (or a constant);
   1, or 0 after reporting. */
static int node(Imp *I, size_t idx, int *skip_next) {
    const Onnx__NodeProto *n = I->m->graph->node[idx];
    const Onnx__NodeProto *next = idx + 1 < I->m->graph->n_node ? I->m->graph->node[idx + 1] : NULL;
    const char *op = n->op_type ? n->op_type : "";
    const char *dom = n->domain ? n->domain : "";
    if (n->n_output < 1 || !n->output[0] || !*n->output[0]) {
        bad(I, n, "has no output");
        return 0;
    }
    if (find_value(I, n->output[0]) || find_const(I, n->output[0])) {
        bad(I, n, "output '%s' is defined twice", q(I, n->output[0]));
        return 0;
    }
    if (!strcmp(op, "Constant") && !*dom)
        return node_constant(I, n);
    if (*dom && strcmp(dom, "snn") && strcmp(dom, "ai.onnx")) {
        bad(I, n, "operators of domain '%s' are not supported", q(I, dom));
        return 0;
    }
    const char *name = make_name(I, n->name, n->output[0]);
    buf_printf(&I->text, "  # node '%s' (%s%s%s)\n", q(I, n->name && *n->name ? n->name : n->output[0]), dom,
               *dom ? "::" : "", q(I, op));
    const char *sp = !*dom ? spiking_for(I, op) : NULL;
    int ok;
    if (sp) { /* --spiking OP=MODEL */
        Value *x = input_value(I, n, 0);
        if (!x)
            return 0;
        buf_printf(&I->text, "  %s = %s |> %s;", name, x->layer, sp);
        define(I, n, name, &x->shape);
        ok = 1;
    } else if (!strcmp(dom, "snn"))
        ok = node_snn(I, n, op, name);
    else
        ok = node_standard(I, n, op, name, next, skip_next);
    if (ok)
        buf_puts(&I->text, "\n");
    return ok;
}

/* ---- the model ---- */

static const char *meta(Imp *I, const char *key) {
    for (size_t i = 0; i < I->m->n_metadata_props; i++) {
        const Onnx__StringStringEntryProto *kv = I->m->metadata_props[i];
        if (kv->key && kv->value && !strcmp(kv->key, key))
            return kv->value;
    }
    return NULL;
}

static int check_opsets(Imp *I) {
    int onnx = 0, snn = 0;
    for (size_t i = 0; i < I->m->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = I->m->opset_import[i];
        const char *d = o->domain ? o->domain : "";
        if (!*d || !strcmp(d, "ai.onnx")) {
            onnx = 1;
            if (!o->has_version || o->version < 13 || o->version > 17) {
                bad(I, NULL, "opset %lld of the default domain; snnc reads opsets 13 to 17",
                    o->has_version ? (long long)o->version : -1LL);
                return 0;
            }
        } else if (!strcmp(d, "snn"))
            snn = 1;
    }
    if (!onnx) {
        bad(I, NULL, "the model imports no opset of the default ONNX domain");
        return 0;
    }
    for (size_t i = 0; i < I->m->graph->n_node; i++) {
        const char *d = I->m->graph->node[i]->domain;
        if (d && !strcmp(d, "snn") && !snn) {
            bad(I, I->m->graph->node[i], "uses the domain snn, which the model's opset_import does not declare");
            return 0;
        }
    }
    return 1;
}

/* The one graph input (not an initializer): its shape without N. */
static int graph_input(Imp *I, const char **name, Shape *s) {
    const Onnx__GraphProto *g = I->m->graph;
    const Onnx__ValueInfoProto *in = NULL;
    for (size_t i = 0; i < g->n_input; i++) {
        const Onnx__ValueInfoProto *v = g->input[i];
        if (!v->name || find_const(I, v->name))
            continue;
        if (in) {
            bad(I, NULL, "the graph has more than one input ('%s' and '%s'); snnc takes one", q(I, in->name),
                q(I, v->name));
            return 0;
        }
        in = v;
    }
    if (!in) {
        bad(I, NULL, "the graph has no input besides its initializers");
        return 0;
    }
    const Onnx__TypeProto *t = in->type;
    if (!t || t->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !t->tensor_type->shape ||
        (t->tensor_type->has_elem_type && t->tensor_type->elem_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)) {
        bad(I, NULL, "the input '%s' must be a float tensor with a shape", q(I, in->name));
        return 0;
    }
    const Onnx__TensorShapeProto *sh = t->tensor_type->shape;
    if (sh->n_dim < 2 || sh->n_dim > IR_MAX_DIMS + 1) {
        bad(I, NULL, "the input '%s' must have 2 to %d dimensions [N, ...]", q(I, in->name), IR_MAX_DIMS + 1);
        return 0;
    }
    s->ndim = 0;
    for (size_t i = 1; i < sh->n_dim; i++) {
        const Onnx__TensorShapeProto__Dimension *d = sh->dim[i];
        if (d->value_case != ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE || d->dim_value < 1 ||
            d->dim_value > IR_MAX_ELEMS - 1) {
            bad(I, NULL, "the input '%s': dimension %zu must be a fixed positive size", q(I, in->name), i + 1);
            return 0;
        }
        s->d[s->ndim++] = d->dim_value;
    }
    *name = in->name;
    return 1;
}

/* Replaces the marks of Prev nodes by the layer names of their sources. */
static int resolve_prev(Imp *I) {
    Buf b = {0};
    const char *p = I->text.data ? I->text.data : "";
    for (;;) {
        const char *m = strstr(p, "prev(\001");
        if (!m)
            break;
        char *e;
        long k = strtol(m + 6, &e, 10);
        if (k < 0 || k >= I->prev_sources.len || strncmp(e, "\001)", 2))
            ICE("Prev mark");
        buf_printf(&b, "%.*s", (int)(m - p), p);
        const char *src = I->prev_sources.items[k];
        Value *v = find_value(I, src);
        if (!v || v->pad[0] || v->pad[1]) {
            bad(I, NULL, "a Prev node names '%s' as its source, a value the graph does not compute", q(I, src));
            buf_free(&b);
            return 0;
        }
        buf_printf(&b, "prev(%s)", v->layer);
        p = e + 2;
    }
    buf_puts(&b, p);
    buf_free(&I->text);
    I->text = b;
    return 1;
}

int onnx_import(Arena *a, const char *path, const OnnxOptions *opt, OnnxImport *out) {
    memset(out, 0, sizeof *out);
    size_t len;
    char *bytes = read_file_reported(path, &len, MAX_MODEL_BYTES);
    if (!bytes)
        return -1;
    int rc = onnx_import_mem(a, path, bytes, len, opt, out);
    free(bytes);
    return rc;
}

int onnx_import_mem(Arena *a, const char *path, const void *bytes, size_t len, const OnnxOptions *opt,
                    OnnxImport *out) {
    Imp I;
    memset(&I, 0, sizeof I);
    I.a = a;
    I.path = path;
    I.opt = opt;
    I.out = out;
    memset(out, 0, sizeof *out);
    const char *slash = strrchr(path, '/');
    I.dir = slash ? arena_strndup(a, path, (size_t)(slash - path) + 1) : "";
    if (len > MAX_MODEL_BYTES) {
        error_plain("%s: larger than %zu bytes", path, MAX_MODEL_BYTES);
        return -1;
    }
    I.m = onnx__model_proto__unpack(NULL, len, (const uint8_t *)bytes);
    if (!I.m) {
        error_plain("%s: not an ONNX model (the protobuf does not parse: truncated or not a ModelProto)", path);
        return -1;
    }
    int rc = -1;
    const Onnx__GraphProto *g = I.m->graph;
    if (!g) {
        bad(&I, NULL, "the model has no graph");
        goto done;
    }
    if (!check_opsets(&I))
        goto done;
    for (size_t i = 0; i < g->n_initializer; i++) {
        Const c;
        if (!g->initializer[i]->name || !*g->initializer[i]->name) {
            bad(&I, NULL, "initializer %zu has no name", i + 1);
            goto done;
        }
        if (find_const(&I, g->initializer[i]->name)) {
            bad(&I, NULL, "initializer '%s' is defined twice", q(&I, g->initializer[i]->name));
            goto done;
        }
        if (tensor_floats(&I, NULL, g->initializer[i], &c) != 0)
            goto done;
        add_const(&I, c);
    }
    if (g->n_sparse_initializer) {
        bad(&I, NULL, "sparse initializers are not supported");
        goto done;
    }
    int T = opt->timesteps;
    const char *ts = meta(&I, "snn.timesteps");
    if (T <= 0 && ts) {
        char *end;
        long v = strtol(ts, &end, 10);
        if (*end || v < 1 || v > 1000000) {
            bad(&I, NULL, "metadata snn.timesteps '%s' is not a number of steps from 1 to 1000000", q(&I, ts));
            goto done;
        }
        T = (int)v;
    }
    if (T <= 0) {
        bad(&I, NULL, "how many timesteps? give --timesteps N or the metadata snn.timesteps");
        goto done;
    }
    const char *enc = meta(&I, "snn.encoding"), *ro = meta(&I, "snn.readout");
    if (!enc)
        enc = "direct";
    if (!ro)
        ro = "steps";
    int enc_ok = !strcmp(enc, "events");
    for (int i = 0; i < 4; i++)
        enc_ok |= !strcmp(enc, encoding_names[i]);
    if (!enc_ok) {
        bad(&I, NULL, "metadata snn.encoding '%s' is not an encoding (direct, sequence, rate, latency, events)",
            q(&I, enc));
        goto done;
    }
    /* event input: its window (digits only, checked again by sema) and binning */
    const char *ewin = meta(&I, "snn.event_window"), *ebin = meta(&I, "snn.event_binary");
    if (!strcmp(enc, "events") && (!ewin || !*ewin || strlen(ewin) > 13 || ewin[strspn(ewin, "0123456789")])) {
        bad(&I, NULL, "metadata snn.event_window '%s': an 'events' encoding needs its window, an integer from 1 "
                      "to 2^40", ewin ? q(&I, ewin) : "");
        goto done;
    }
    if ((ewin || ebin) && strcmp(enc, "events")) {
        bad(&I, NULL, "metadata %s: only an 'events' encoding has a window and a binning",
            ewin ? "snn.event_window" : "snn.event_binary");
        goto done;
    }
    if (ebin && strcmp(ebin, "true") && strcmp(ebin, "false")) {
        bad(&I, NULL, "metadata snn.event_binary '%s' is not true or false", q(&I, ebin));
        goto done;
    }
    const char *thr = meta(&I, "snn.latency_threshold");
    char thr_text[32]; /* the number as the language writes it */
    if (thr) {
        char *end;
        double v = strtod(thr, &end);
        int decimal = thr[strspn(thr, "0123456789.eE+-")] == 0; /* no hex, inf, nan or spaces */
        if (strcmp(enc, "latency") || !decimal || end == thr || *end || !(v > 0 && v <= 1)) {
            bad(&I, NULL, "metadata snn.latency_threshold '%s': %s", q(&I, thr),
                strcmp(enc, "latency") ? "only a latency encoding has a threshold"
                                       : "not a number above 0 and at most 1");
            goto done;
        }
        format_float(thr_text, sizeof thr_text, (float)v);
    }
    int ro_ok = 0;
    for (int i = 0; i < 6; i++)
        ro_ok |= !strcmp(ro, readout_names[i]);
    if (!ro_ok) {
        bad(&I, NULL, "metadata snn.readout '%s' is not a readout (steps, count, rate, mean, last, max)", q(&I, ro));
        goto done;
    }
    const char *in_name;
    Shape in_shape;
    if (!graph_input(&I, &in_name, &in_shape))
        goto done;
    const char *net = make_name(&I, g->name, "Model");
    const char *in_layer = make_name(&I, in_name, "x");
    buf_printf(&I.text, "# converted by snnc from %s\nnetwork %s {\n  timesteps %d;\n  input %s : ", q(&I, path), net,
               T, in_layer);
    shape_text(&I.text, &in_shape);
    buf_printf(&I.text, " encode %s", enc);
    if (thr)
        buf_printf(&I.text, "(threshold = %s)", thr_text);
    if (ewin)
        buf_printf(&I.text, "(window = %s, binary = %s)", ewin, ebin ? ebin : "false");
    buf_puts(&I.text, ";\n");
    Value iv = {in_name, in_layer, in_shape, {0, 0}};
    add_value(&I, iv);
    for (size_t i = 0; i < g->n_node; i++) {
        int skip = 0;
        if (!node(&I, i, &skip))
            goto done;
        i += (size_t)skip;
    }
    if (g->n_output != 1 || !g->output[0]->name) {
        bad(&I, NULL, "the graph must have one output, it has %zu", g->n_output);
        goto done;
    }
    Value *ov = find_value(&I, g->output[0]->name);
    if (!ov || ov->pad[0] || ov->pad[1]) {
        bad(&I, NULL, "the output '%s' is not computed by the graph", q(&I, g->output[0]->name));
        goto done;
    }
    buf_printf(&I.text, "  output %s readout %s;\n}\n", ov->layer, ro);
    if (!resolve_prev(&I))
        goto done;
    out->text = arena_strdup(a, I.text.data);
    out->len = strlen(out->text);
    rc = 0;
done:
    buf_free(&I.text);
    onnx__model_proto__free_unpacked(I.m, NULL);
    return I.errors ? -1 : rc;
}
