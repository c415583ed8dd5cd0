/*
 * export.c: a network as an ONNX model in snnc's convention (docs/onnx.md),
 * so that import, export and import again give the same graph and weights.
 *
 * The graph describes one step: each layer is one node whose output value
 * is named after the layer; dense -> Gemm (transB = 1), conv2d -> Conv,
 * pools -> MaxPool / AveragePool, flatten -> Flatten, reshape -> Reshape
 * (by an int64 initializer [-1, d1, ...]), add -> Add, scale ->
 * Mul by a scalar initializer, batchnorm -> BatchNormalization, dropout ->
 * Dropout with its ratio as an input, identity -> Identity, the built-in
 * neuron models -> snn::LIF, IF, LI, PLIF, ARLIF, DALIF (ReLU -> Relu),
 * other models -> snn::Neuron with attribute model, prev(h) -> snn::Prev
 * with attribute source. Constructor arguments become attributes (numbers,
 * booleans as ints, names and surrogates as strings) and parameters
 * initializers named as in weight files. Metadata: snn.timesteps,
 * snn.encoding, snn.readout (and snn.latency_threshold for a latency
 * encoding; snn.event_window and snn.event_binary for event input).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ast.h"
#include "onnx.h"
#include "onnx.pb-c.h"

typedef struct Exp {
    Arena *a;
    const IrGraph *g;
    const float *params;
    VEC(Onnx__NodeProto *) nodes;
    VEC(Onnx__TensorProto *) inits;
    int errors;
} Exp;

static void *get(Exp *E, size_t n) { return arena_alloc(E->a, n); }

static Onnx__TensorProto *tensor(Exp *E, const char *name, int ndim, const int64_t *dims, const float *data,
                                 int64_t count) {
    Onnx__TensorProto *t = get(E, sizeof *t);
    onnx__tensor_proto__init(t);
    t->name = (char *)name;
    t->n_dims = (size_t)ndim;
    t->dims = get(E, sizeof(int64_t) * (size_t)(ndim + 1));
    for (int i = 0; i < ndim; i++)
        t->dims[i] = dims[i];
    t->has_data_type = 1;
    t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    t->has_raw_data = 1;
    t->raw_data.len = (size_t)count * 4;
    t->raw_data.data = get(E, t->raw_data.len + 1);
    for (int64_t i = 0; i < count; i++) { /* little-endian, whatever the host */
        uint32_t u;
        memcpy(&u, &data[i], 4);
        for (int k = 0; k < 4; k++)
            t->raw_data.data[i * 4 + k] = (uint8_t)(u >> (8 * k));
    }
    vec_push(E->a, &E->inits, t);
    return t;
}

/* A reshape's shape operand, [-1, d1, ...] (the batch, then the sizes per
   sample), as an int64 initializer named "<layer>.shape". */
static const char *shape_init(Exp *E, const IrNode *n) {
    int64_t k = n->shape.ndim + 1;
    Onnx__TensorProto *t = tensor(E, arena_printf(E->a, "%s.shape", n->name), 1, &k, NULL, 0);
    t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
    t->raw_data.len = (size_t)k * 8;
    t->raw_data.data = get(E, t->raw_data.len);
    for (int64_t i = 0; i < k; i++) { /* little-endian, whatever the host */
        uint64_t u = (uint64_t)(i ? n->shape.d[i - 1] : -1);
        for (int b = 0; b < 8; b++)
            t->raw_data.data[i * 8 + b] = (uint8_t)(u >> (8 * b));
    }
    return t->name;
}

static const char *param_init(Exp *E, int p) {
    const IrParam *q = &E->g->params.items[p];
    tensor(E, q->name, q->shape.ndim, q->shape.d, E->params + q->off, q->count);
    return q->name;
}

static Onnx__NodeProto *node(Exp *E, const IrNode *n, const char *op, const char *domain) {
    Onnx__NodeProto *o = get(E, sizeof *o);
    onnx__node_proto__init(o);
    o->name = (char *)n->name;
    o->op_type = (char *)op;
    o->domain = (char *)domain;
    o->n_output = 1;
    o->output = get(E, sizeof(char *));
    o->output[0] = (char *)n->name;
    o->input = get(E, sizeof(char *) * 8);
    vec_push(E->a, &E->nodes, o);
    return o;
}

static void input(Onnx__NodeProto *o, const char *name) { o->input[o->n_input++] = (char *)name; }

/* A scalar operand of node n (a Mul's factor, a Dropout's ratio) as an
 * initializer named "<layer>.<what>", added as o's next input. */
static void scalar_input(Exp *E, Onnx__NodeProto *o, const IrNode *n, const char *what, float v) {
    const char *k = arena_printf(E->a, "%s.%s", n->name, what);
    tensor(E, k, 0, NULL, &v, 1);
    input(o, k);
}

static Onnx__AttributeProto *attr(Exp *E, Onnx__NodeProto *o, const char *name,
                                  Onnx__AttributeProto__AttributeType type) {
    Onnx__AttributeProto *a = get(E, sizeof *a);
    onnx__attribute_proto__init(a);
    a->name = (char *)name;
    a->has_type = 1;
    a->type = type;
    Onnx__AttributeProto **na = get(E, sizeof(*na) * (o->n_attribute + 1));
    if (o->n_attribute)
        memcpy(na, o->attribute, sizeof(*na) * o->n_attribute);
    na[o->n_attribute++] = a;
    o->attribute = na;
    return a;
}

static void attr_ints(Exp *E, Onnx__NodeProto *o, const char *name, int n, const int64_t *v) {
    Onnx__AttributeProto *a = attr(E, o, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    a->n_ints = (size_t)n;
    a->ints = get(E, sizeof(int64_t) * (size_t)n);
    memcpy(a->ints, v, sizeof(int64_t) * (size_t)n);
}

static void attr_int(Exp *E, Onnx__NodeProto *o, const char *name, int64_t v) {
    Onnx__AttributeProto *a = attr(E, o, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    a->has_i = 1;
    a->i = v;
}

static void attr_float(Exp *E, Onnx__NodeProto *o, const char *name, float v) {
    Onnx__AttributeProto *a = attr(E, o, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    a->has_f = 1;
    a->f = v;
}

static void attr_str(Exp *E, Onnx__NodeProto *o, const char *name, const char *v) {
    Onnx__AttributeProto *a = attr(E, o, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
    a->has_s = 1;
    a->s.len = strlen(v);
    a->s.data = (uint8_t *)arena_strdup(E->a, v);
}

/* A constructor argument as an attribute: numbers, booleans, names, and
   surrogates with a numeric parameter. */
static int ctor_attr(Exp *E, Onnx__NodeProto *o, const IrNode *n, const NeuronArg *arg) {
    const Node *e = arg->value;
    double v;
    int is_int;
    char f[48];
    if (ast_number(e, &v, &is_int)) {
        if (is_int && v >= -1e9 && v <= 1e9)
            attr_int(E, o, arg->name, (int64_t)v);
        else
            attr_float(E, o, arg->name, (float)v);
        return 1;
    }
    if (e->kind == N_IDENT) {
        attr_str(E, o, arg->name, e->name);
        return 1;
    }
    if (e->kind == N_CALL && ast_count(e->args) <= 1) {
        if (!e->args) {
            attr_str(E, o, arg->name, e->name);
            return 1;
        }
        const Node *x = e->args->kind == N_KWARG ? e->args->a : e->args;
        if (ast_number(x, &v, &is_int)) {
            format_float(f, sizeof f, (float)v);
            attr_str(E, o, arg->name, arena_printf(E->a, "%s(%s)", e->name, f));
            return 1;
        }
    }
    error_plain("layer '%s': argument '%s' of %s is not a number, a name or a surrogate with a number; it cannot "
                "be exported as an ONNX attribute",
                n->name, arg->name, n->neuron->model);
    E->errors++;
    return 0;
}

static void layer(Exp *E, int i) {
    const IrGraph *g = E->g;
    const IrNode *n = &g->nodes.items[i];
    const char *x = n->nin ? g->nodes.items[n->in[0]].name : NULL;
    Onnx__NodeProto *o;
    int64_t two[2], four[4];
    switch (n->op) {
    case IR_DENSE:
        o = node(E, n, "Gemm", "");
        input(o, x);
        input(o, param_init(E, n->param[0]));
        if (n->bias)
            input(o, param_init(E, n->param[1]));
        attr_int(E, o, "transB", 1);
        break;
    case IR_CONV2D:
        o = node(E, n, "Conv", "");
        input(o, x);
        input(o, param_init(E, n->param[0]));
        if (n->bias)
            input(o, param_init(E, n->param[1]));
        two[0] = n->kernel[0], two[1] = n->kernel[1];
        attr_ints(E, o, "kernel_shape", 2, two);
        two[0] = n->stride[0], two[1] = n->stride[1];
        attr_ints(E, o, "strides", 2, two);
        four[0] = four[2] = n->pad[0], four[1] = four[3] = n->pad[1];
        attr_ints(E, o, "pads", 4, four);
        attr_int(E, o, "group", n->groups);
        break;
    case IR_MAXPOOL:
    case IR_AVGPOOL:
        o = node(E, n, n->op == IR_MAXPOOL ? "MaxPool" : "AveragePool", "");
        input(o, x);
        two[0] = n->kernel[0], two[1] = n->kernel[1];
        attr_ints(E, o, "kernel_shape", 2, two);
        two[0] = n->stride[0], two[1] = n->stride[1];
        attr_ints(E, o, "strides", 2, two);
        four[0] = four[2] = n->pad[0], four[1] = four[3] = n->pad[1];
        attr_ints(E, o, "pads", 4, four);
        if (n->op == IR_AVGPOOL)
            attr_int(E, o, "count_include_pad", 1);
        break;
    case IR_FLATTEN:
        o = node(E, n, "Flatten", "");
        input(o, x);
        break;
    case IR_RESHAPE:
        o = node(E, n, "Reshape", "");
        input(o, x);
        input(o, shape_init(E, n));
        break;
    case IR_ADD:
        o = node(E, n, "Add", "");
        input(o, x);
        input(o, g->nodes.items[n->in[1]].name);
        break;
    case IR_SCALE:
        o = node(E, n, "Mul", "");
        input(o, x);
        scalar_input(E, o, n, "factor", n->fval);
        break;
    case IR_BATCHNORM:
        o = node(E, n, "BatchNormalization", "");
        input(o, x);
        for (int k = 0; k < 4; k++)
            input(o, param_init(E, n->param[k]));
        attr_float(E, o, "epsilon", n->fval);
        break;
    case IR_DROPOUT:
        o = node(E, n, "Dropout", "");
        input(o, x);
        scalar_input(E, o, n, "ratio", n->fval);
        break;
    case IR_IDENTITY:
        o = node(E, n, "Identity", "");
        input(o, x);
        break;
    case IR_DELAY:
        o = node(E, n, "Prev", "snn");
        attr_str(E, o, "source", x);
        break;
    case IR_NEURON: {
        const NeuronProg *p = n->neuron;
        static const char *const std[] = {"LIF", "IF", "LI", "PLIF", "ARLIF", "DALIF"};
        int builtin = 0;
        for (size_t k = 0; k < sizeof std / sizeof *std; k++)
            builtin |= !strcmp(p->model, std[k]);
        if (!strcmp(p->model, "ReLU") && !p->args.len) {
            o = node(E, n, "Relu", "");
            input(o, x);
            break;
        }
        o = node(E, n, builtin ? p->model : "Neuron", "snn");
        input(o, x);
        if (!builtin)
            attr_str(E, o, "model", p->model);
        for (int k = 0; k < p->args.len; k++) {
            if (!builtin && !strcmp(p->args.items[k].name, "model")) {
                error_plain("layer '%s': the argument 'model' of model '%s' cannot be exported: snn::Neuron "
                            "names the model with its attribute 'model'; rename the argument",
                            n->name, p->model);
                E->errors++;
                continue;
            }
            ctor_attr(E, o, n, &p->args.items[k]);
        }
        if (p->params.len > 7) {
            error_plain("layer '%s': more than 7 learnable parameters cannot be exported", n->name);
            E->errors++;
            break;
        }
        for (int k = 0; k < p->params.len; k++)
            input(o, param_init(E, p->params.items[k].param));
        break;
    }
    default:
        ICE("export of op %s", ir_op_names[n->op]);
    }
}

static Onnx__ValueInfoProto *value_info(Exp *E, const char *name, const Shape *s) {
    Onnx__ValueInfoProto *v = get(E, sizeof *v);
    onnx__value_info_proto__init(v);
    v->name = (char *)name;
    Onnx__TypeProto *t = get(E, sizeof *t);
    onnx__type_proto__init(t);
    t->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    t->tensor_type = get(E, sizeof *t->tensor_type);
    onnx__type_proto__tensor__init(t->tensor_type);
    t->tensor_type->has_elem_type = 1;
    t->tensor_type->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    Onnx__TensorShapeProto *sh = get(E, sizeof *sh);
    onnx__tensor_shape_proto__init(sh);
    sh->n_dim = (size_t)s->ndim + 1;
    sh->dim = get(E, sizeof(*sh->dim) * sh->n_dim);
    for (size_t i = 0; i < sh->n_dim; i++) {
        Onnx__TensorShapeProto__Dimension *d = get(E, sizeof *d);
        onnx__tensor_shape_proto__dimension__init(d);
        if (i == 0) {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            d->dim_param = "N";
        } else {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            d->dim_value = s->d[i - 1];
        }
        sh->dim[i] = d;
    }
    t->tensor_type->shape = sh;
    v->type = t;
    return v;
}

static Onnx__StringStringEntryProto *kv(Exp *E, const char *k, const char *v) {
    Onnx__StringStringEntryProto *e = get(E, sizeof *e);
    onnx__string_string_entry_proto__init(e);
    e->key = (char *)k;
    e->value = (char *)v;
    return e;
}

int onnx_export(Arena *a, const IrGraph *g, const float *params, const char *path) {
    Exp E;
    memset(&E, 0, sizeof E);
    E.a = a;
    E.g = g;
    E.params = params;
    for (int i = 0; i < g->nodes.len; i++)
        if (!g->nodes.items[i].dead && g->nodes.items[i].op != IR_INPUT)
            layer(&E, i);
    if (E.errors)
        return -1;
    Onnx__GraphProto gr;
    onnx__graph_proto__init(&gr);
    gr.name = (char *)g->name;
    gr.n_node = (size_t)E.nodes.len;
    gr.node = E.nodes.items;
    gr.n_initializer = (size_t)E.inits.len;
    gr.initializer = E.inits.items;
    const IrNode *in = &g->nodes.items[g->input], *out = &g->nodes.items[g->output];
    Onnx__ValueInfoProto *vin = value_info(&E, in->name, &in->shape), *vout = value_info(&E, out->name, &out->shape);
    gr.n_input = 1;
    gr.input = &vin;
    gr.n_output = 1;
    gr.output = &vout;
    Onnx__ModelProto m;
    onnx__model_proto__init(&m);
    m.has_ir_version = 1;
    m.ir_version = 8;
    m.producer_name = "snnc";
    m.producer_version = SNNC_VERSION;
    Onnx__OperatorSetIdProto std, snn;
    onnx__operator_set_id_proto__init(&std);
    onnx__operator_set_id_proto__init(&snn);
    std.domain = "";
    std.has_version = 1;
    std.version = 17;
    snn.domain = "snn";
    snn.has_version = 1;
    snn.version = 1;
    Onnx__OperatorSetIdProto *ops[2] = {&std, &snn};
    m.n_opset_import = 2;
    m.opset_import = ops;
    m.graph = &gr;
    char thr[32];
    format_float(thr, sizeof thr, g->enc_threshold);
    Onnx__StringStringEntryProto *md[5] = {
        kv(&E, "snn.timesteps", arena_printf(a, "%d", g->timesteps)),
        kv(&E, "snn.encoding", g->events.on ? "events" : encoding_names[g->encoding]),
        kv(&E, "snn.readout", readout_names[g->readout]), kv(&E, "snn.latency_threshold", thr),
        kv(&E, "snn.event_binary", g->events.binary ? "true" : "false")};
    m.n_metadata_props = g->encoding == ENC_LATENCY ? 4 : 3;
    if (g->events.on) { /* the window and binning in place of the threshold */
        md[3] = kv(&E, "snn.event_window", arena_printf(a, "%lld", (long long)g->events.window));
        m.n_metadata_props = 5;
    }
    m.metadata_props = md;
    size_t len = onnx__model_proto__get_packed_size(&m);
    uint8_t *buf = malloc(len + 1);
    if (!buf) {
        error_plain("%s: out of memory (%zu bytes)", path, len);
        return -1;
    }
    onnx__model_proto__pack(&m, buf);
    int rc = write_file_atomic(path, (const char *)buf, len);
    free(buf);
    if (rc != 0) {
        error_plain("%s: cannot write: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}
