/*
 * model.c: the model file a command names, read into syntax trees: a .snn
 * file, or an ONNX model or a NIR graph converted to the same
 * (compiler/onnx/, compiler/nir/), plus the neuron models of
 * --neurons FILE.snn.
 *
 * An ONNX model (or a NIR graph) brings its weights: once sema has made
 * the graph's parameters, each initializer is checked against the
 * parameter it fills (shape, finite values) and kept in memory, standing
 * for --weights unless the command line gives other weights. Parameters the model does not give
 * (a neuron's learnable parameters left out) take their model's initial
 * value.
 *
 * The values of the parameters, whatever their source (--init, --weights,
 * the ONNX model), are put together in one block by drv_param_block.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "driver.h"
#include "nir.h"
#include "onnx.h"

extern const char snnc_stdlib_snn[];
extern const unsigned long snnc_stdlib_snn_len;

#define MAX_SOURCE (16u << 20)

int drv_is_onnx(const char *path) {
    size_t n = strlen(path);
    return n > 5 && (!strcmp(path + n - 5, ".onnx") || !strcmp(path + n - 5, ".ONNX"));
}

int drv_is_nir(const char *path) {
    size_t n = strlen(path);
    return n > 4 && (!strcmp(path + n - 4, ".nir") || !strcmp(path + n - 4, ".NIR"));
}

/* Whether export writes a NIR graph: --format, else the suffix of -o. */
static int export_writes_nir(const Options *o) {
    return o->format ? !strcmp(o->format, "nir") : drv_is_nir(o->outdir);
}

/* A NIR graph does not say how many steps it runs: without --timesteps,
   the input's first dimension (run and grad with a [T, B, ...] input);
   exported to NIR again, it needs none (1 stands for it). */
static int nir_timesteps(const Options *o) {
    struct stat st;
    if (o->sema.timesteps <= 0 && !strcmp(o->cmd, "export") && export_writes_nir(o))
        return 1;
    if (o->sema.timesteps > 0 || !o->npy_in || stat(o->npy_in, &st) != 0 || !S_ISREG(st.st_mode))
        return o->sema.timesteps; /* a bad input path is reported where it is read */
    SnnrtTensor x;
    char err[512];
    if (snnrt_npy_read(o->npy_in, &x, err, sizeof err) != 0)
        return 0;
    int t = x.ndim >= 2 && x.shape[0] <= 1000000 ? (int)x.shape[0] : 0;
    snnrt_tensor_free(&x);
    return t;
}

/* Parses a text file of the language; the items, or NULL (check
   diag_errors); *file (may be NULL) is its source. Errors about the whole
   file have a position too: a NUL byte is reported where it is. */
static Node *parse_file(Arena *a, const char *path, int *file) {
    size_t len;
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        error_plain("%s: is a folder, not a file", path);
        return NULL;
    }
    char *text = read_file(path, &len, MAX_SOURCE);
    if (!text) {
        if (errno == EFBIG)
            error_plain("%s: file is larger than %u bytes", path, MAX_SOURCE);
        else
            error_plain("%s: cannot read: %s", path, strerror(errno));
        return NULL;
    }
    int f = src_add(path, text, len);
    free(text);
    if (file)
        *file = f;
    const char *nul = memchr(src_text(f), 0, len);
    if (nul) {
        Loc at = {f, 1, 1};
        for (const char *p = src_text(f); p < nul; p++, at.col++)
            if (*p == '\n') {
                at.line++;
                at.col = 0;
            }
        error_at(at, "a NUL byte: this is not a text file");
        return NULL;
    }
    return parse_source(a, f, src_text(f), len);
}

static Node *concat(Node *a, Node *b) {
    if (!a)
        return b;
    Node *t = a;
    while (t->next)
        t = t->next;
    t->next = b;
    return a;
}

int drv_parse_model(Arena *a, Options *o, Node **std, Node **user) {
    int sf = src_add("<stdlib>/neurons.snn", snnc_stdlib_snn, snnc_stdlib_snn_len);
    src_mark_builtin(sf);
    *std = parse_source(a, sf, snnc_stdlib_snn, snnc_stdlib_snn_len);
    if (diag_errors())
        ICE("the built-in neuron library does not parse");
    *user = NULL;
    if (o->neurons) {
        *user = parse_file(a, o->neurons, NULL);
        if (diag_errors())
            return -1;
        for (const Node *it = *user; it; it = it->next)
            if (it->kind != D_NEURON) {
                error_at(it->loc, "%s: a --neurons file holds neuron models only", o->neurons);
                return -1;
            }
    }
    if (!drv_is_onnx(o->input_file) && !drv_is_nir(o->input_file)) {
        Node *items = parse_file(a, o->input_file, &o->sema.file);
        if (diag_errors())
            return -1;
        *user = concat(*user, items);
        return 0;
    }
    OnnxImport *imp = arena_alloc(a, sizeof *imp);
    if (drv_is_nir(o->input_file)) {
        NirOptions no = {nir_timesteps(o), o->dt, (NirConvention)o->nir_convention};
        if (nir_import(a, o->input_file, &no, imp) != 0)
            return -1;
    } else {
        OnnxOptions oo = {o->sema.timesteps, o->spiking};
        if (onnx_import(a, o->input_file, &oo, imp) != 0)
            return -1;
    }
    /* the converted text is a source of its own: errors in it quote it */
    const char *name = arena_printf(a, "%s (converted)", o->input_file);
    int f = src_add(name, imp->text, imp->len);
    o->sema.file = f;
    Node *items = parse_source(a, f, src_text(f), imp->len);
    if (diag_errors())
        return -1;
    *user = concat(*user, items);
    o->onnx = imp;
    return 0;
}

/* Shapes agree when their sizes above 1 are the same, in order (a per-layer
   parameter may come as [], [1] or [1, 1]). */
static int same_sizes(const OnnxTensor *t, const Shape *s) {
    int64_t a[8], b[8];
    int na = 0, nb = 0;
    for (int i = 0; i < t->ndim; i++)
        if (t->shape[i] != 1)
            a[na++] = t->shape[i];
    for (int i = 0; i < s->ndim; i++)
        if (s->d[i] != 1)
            b[nb++] = s->d[i];
    if (na != nb)
        return 0;
    for (int i = 0; i < na; i++)
        if (a[i] != b[i])
            return 0;
    return 1;
}

int drv_bind_onnx_weights(Arena *a, Options *o, const IrGraph *g) {
    const OnnxImport *imp = o->onnx;
    if (!imp)
        return 0;
    float **data = arena_alloc(a, sizeof(float *) * (size_t)(g->params.len + 1));
    /* parameters and layers by name: a model of many layers binds in linear time */
    StrMap params = {0}, layers = {0};
    for (int i = 0; i < g->params.len; i++)
        *strmap_put(a, &params, g->params.items[i].name) = i + 1;
    for (int i = 0; i < g->nodes.len; i++)
        *strmap_put(a, &layers, g->nodes.items[i].name) = i + 1;
    for (int k = 0; k < imp->tensors.len; k++) {
        const OnnxTensor *t = &imp->tensors.items[k];
        int p = -1;
        if (t->param) {
            const int *v = strmap_get(&params, arena_printf(a, "%s.%s", t->layer, t->param));
            p = v ? *v - 1 : -1;
        } else {
            const int *v = strmap_get(&layers, t->layer);
            int n = v ? *v - 1 : -1;
            const NeuronProg *np = n >= 0 ? g->nodes.items[n].neuron : NULL;
            if (!np || t->index >= np->params.len) {
                error_plain("%s: initializer '%s' is input %d of neuron layer '%s', whose model %s has %d learnable "
                            "parameter%s",
                            o->input_file, t->source, t->index + 2, t->layer, np ? np->model : "?",
                            np ? np->params.len : 0, np && np->params.len == 1 ? "" : "s");
                return -1;
            }
            p = np->params.items[t->index].param;
        }
        if (p < 0)
            ICE("no parameter for %s.%s", t->layer, t->param);
        const IrParam *q = &g->params.items[p];
        if (t->count != q->count || !same_sizes(t, &q->shape)) {
            Shape s = {0, {0}};
            for (int i = 0; i < t->ndim && i < IR_MAX_DIMS; i++)
                s.d[s.ndim++] = t->shape[i];
            error_plain("%s: initializer '%s' has shape %s%s, but '%s' needs %s", o->input_file, t->source,
                        shape_str(a, &s), t->ndim > IR_MAX_DIMS ? "..." : "", q->name, shape_str(a, &q->shape));
            return -1;
        }
        for (int64_t i = 0; i < t->count; i++)
            if (!isfinite(t->data[i])) {
                error_plain("%s: initializer '%s' (for '%s') has %s at flat index %lld", o->input_file, t->source,
                            q->name, isnan(t->data[i]) ? "NaN" : "infinity", (long long)i);
                return -1;
            }
        data[p] = t->data;
    }
    /* parameters the model does not give take their initial values */
    for (int i = 0; i < g->params.len; i++) {
        const IrParam *q = &g->params.items[i];
        if (data[i])
            continue;
        if (q->kind == PK_WEIGHT || q->kind == PK_BIAS) {
            error_plain("%s: the model gives no initializer for '%s'", o->input_file, q->name);
            return -1;
        }
        data[i] = arena_alloc(a, sizeof(float) * (size_t)q->count + 1);
        float v = q->kind == PK_ONES ? 1.0f : q->kind == PK_ZEROS ? 0.0f : q->init;
        for (int64_t k = 0; k < q->count; k++)
            data[i][k] = v;
    }
    o->onnx_data = (const float *const *)data;
    return 0;
}

int drv_write_onnx_weights(Arena *a, const Options *o, const IrGraph *g, const char *path) {
    const char **names = arena_alloc(a, sizeof(char *) * (size_t)(g->params.len + 1));
    SnnrtTensor *ts = arena_alloc(a, sizeof(SnnrtTensor) * (size_t)(g->params.len + 1));
    const SnnrtTensor **tp = arena_alloc(a, sizeof(SnnrtTensor *) * (size_t)(g->params.len + 1));
    for (int i = 0; i < g->params.len; i++) {
        const IrParam *q = &g->params.items[i];
        ts[i].ndim = q->shape.ndim;
        for (int k = 0; k < q->shape.ndim; k++)
            ts[i].shape[k] = q->shape.d[k];
        ts[i].count = (size_t)q->count;
        ts[i].data = (float *)o->onnx_data[i];
        names[i] = q->name;
        tp[i] = &ts[i];
    }
    char err[1024];
    if (snnrt_st_write(path, g->params.len, names, tp, err, sizeof err) != 0) {
        error_plain("%s", err);
        return -1;
    }
    return 0;
}

float *drv_param_block(const IrGraph *g, const Options *o) {
    float *w = calloc((size_t)g->param_floats + 1, sizeof(float));
    if (!w) {
        error_plain("out of memory (%lld parameters)", (long long)g->param_floats);
        return NULL;
    }
    if (o->init)
        drv_init_params(g, o->seed, w);
    if (o->weights) {
        if (drv_read_weights_into(g, o->weights, o->init, w) != 0) {
            free(w);
            return NULL;
        }
    } else if (o->onnx_data) {
        for (int i = 0; i < g->params.len; i++)
            memcpy(w + g->params.items[i].off, o->onnx_data[i], sizeof(float) * (size_t)g->params.items[i].count);
    }
    return w;
}

int drv_params(const IrGraph *g, const Options *o, float *ws) {
    float *w = drv_param_block(g, o);
    if (!w)
        return -1;
    memcpy(ws, w, sizeof(float) * (size_t)g->param_floats);
    free(w);
    return 0;
}

/* The values --init SEED gives, computed as the generated <net>_init_weights
   computes them (the same generator, the same float operations). */
static float init_uniform(unsigned long long *state) {
    unsigned long long z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    return (float)(z >> 40) * (1.0f / 16777216.0f);
}

void drv_init_params(const IrGraph *g, unsigned long long seed, float *w) {
    unsigned long long st = seed;
    for (int i = 0; i < g->params.len; i++) {
        const IrParam *q = &g->params.items[i];
        float *d = w + q->off;
        if (q->kind == PK_WEIGHT || q->kind == PK_BIAS) {
            float bound = 1.0f / sqrtf((float)q->fan_in);
            for (int64_t k = 0; k < q->count; k++)
                d[k] = (2.0f * init_uniform(&st) - 1.0f) * bound;
            continue;
        }
        float v = q->kind == PK_ONES ? 1.0f : q->kind == PK_ZEROS ? 0.0f : q->init;
        for (int64_t k = 0; k < q->count; k++)
            d[k] = v;
    }
}

int cmd_export(Arena *a, Options *o) {
    /* keep dropout layers: they are part of the model (identity at inference) */
    o->passes.disabled[o->passes.ndisabled++] = "dropout";
    IrGraph *g = drv_front_end(a, o);
    if (!g || !drv_middle_end(a, o, g))
        return 1;
    if (drv_check_result_path(a, o->outdir) != 0)
        return 1;
    float *w = drv_param_block(g, o);
    if (!w)
        return 1;
    drv_remove_stale(drv_folder_of(a, o->outdir)); /* what an export killed while it wrote left */
    int rc = (export_writes_nir(o) ? nir_export(a, g, w, o->dt, o->outdir) : onnx_export(a, g, w, o->outdir)) == 0 ? 0 : 1;
    free(w);
    return rc;
}
