/*
 * main.c: snnc's main: the front and middle end that every command
 * shares, compile, and info (the command line itself: options.c).
 *
 * The pipeline is called from here in the order the design gives it:
 * read, parse (the built-in neuron library, then the user's file), sema,
 * passes, back end. Output files are built in memory and written only when
 * everything succeeded, each atomically, so a failed run leaves nothing
 * behind. `run`, `train` and `grad` have the target build and load the
 * generated code (load.c) and call it in process.
 *
 * Exit status: 0 success, 1 an error in the inputs, 2 bad usage.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ast.h"
#include "backend.h"
#include "passes.h"
#include "sema.h"
#include "snnrt.h"
#include "driver.h"


/* ---- front end ---- */

/* Read, parse and check the model: the graph before any pass. */
IrGraph *drv_front_end(Arena *a, Options *o) {
    Node *std, *user;
    if (drv_parse_model(a, o, &std, &user) != 0)
        return NULL;
    IrGraph *g = sema_build(a, std, user, &o->sema);
    if (!g || !trainspec_build(user, g->name, &o->spec) || drv_bind_onnx_weights(a, o, g) != 0)
        return NULL;
    /* run, grad and export take the values of the parameters from --weights
     * or --init; a network without parameters needs neither */
    if (!o->weights && !o->onnx_data && !o->init &&
        (!strcmp(o->cmd, "run") || !strcmp(o->cmd, "grad") || !strcmp(o->cmd, "export"))) {
        if (g->params.len) {
            error_plain("%s: network '%s' has %d parameter tensor%s ('%s'%s): give --weights FILE or --init SEED",
                        o->input_file, g->name, g->params.len, g->params.len == 1 ? "" : "s",
                        g->params.items[0].name, g->params.len == 1 ? "" : " first");
            return NULL;
        }
        o->init = 1;
    }
    /* the command line overrides the train block */
    TrainSpec *ts = &o->spec;
    if (o->set_epochs)
        ts->epochs = o->set_epochs;
    if (o->set_batch)
        ts->batch = o->set_batch;
    if ((!strcmp(o->cmd, "train") || o->eval) && ts->batch > 65536) {
        error_plain("--batch %d: a training or evaluation batch holds at most 65536 samples", ts->batch);
        return NULL;
    }
    if (o->set_lr > 0)
        ts->lr = o->set_lr;
    if (o->set_seed_given)
        ts->seed = o->set_seed;
    if (o->set_data) {
        ts->data = DATA_IDX;
        ts->dir = o->set_data;
    }
    return g;
}

/* The batch, the records, and the passes. */
IrGraph *drv_middle_end(Arena *a, Options *o, IrGraph *g) {
    g->batch = o->batch > 0 ? o->batch : 1;
    g->train = o->train;
    g->chunk = o->chunk;
    /* --precision bf16 and fp16 (the cuda target's) store the states that the backward reads in 16 bits */
    const Target *t = o->target ? target_lookup(o->target) : NULL;
    if (o->train && t && t->precisions && (o->precision == PREC_BF16 || o->precision == PREC_FP16))
        g->store = o->precision == PREC_BF16 ? STORE_BF16 : STORE_FP16;
    /* the target that will write the code: --target, else compile's and info's c, else this machine's */
    int c_default = o->cmd && (!strcmp(o->cmd, "compile") || !strcmp(o->cmd, "info"));
    const Target *tw = t ? t : c_default ? target_lookup("c") : target_native();
    g->remat_ok = tw && tw->remat;
    /* records become probes before the passes, so that memplan sees them */
    for (int k = 0; k < o->nrecords; k++) {
        const char *spec = o->records[k].spec;
        const char *dot = strchr(spec, '.');
        char *layer = arena_strndup(a, spec, dot ? (size_t)(dot - spec) : strlen(spec));
        int node = ir_find_node(g, layer);
        if (node < 0) {
            error_plain("--record %s: no layer named '%s'", spec, layer);
            continue;
        }
        IrProbe pr;
        memset(&pr, 0, sizeof pr);
        pr.spec = spec;
        pr.node = node;
        pr.count = shape_count(&g->nodes.items[node].shape);
        if (dot) {
            int st;
            if (!g->nodes.items[node].neuron) {
                error_plain("--record %s: '%s' is a %s layer, not a neuron layer; record its output with --record %s",
                            spec, layer, ir_op_names[g->nodes.items[node].op], layer);
                continue;
            }
            if (ir_neuron_var(g, node, dot + 1, &st) < 0) {
                Buf b = {0};
                const NeuronProg *p = g->nodes.items[node].neuron;
                for (int i = 0; i < p->names.len; i++)
                    buf_printf(&b, "%s%s", i ? ", " : "", p->names.items[i].name);
                error_plain("--record %s: neuron model %s of layer '%s' has no variable '%s' (it has: %s)",
                            spec, p->model, layer, dot + 1, b.data ? b.data : "none");
                buf_free(&b);
                continue;
            }
            pr.var = dot + 1;
        }
        vec_push(a, &g->probes, pr);
    }
    if (diag_errors())
        return NULL;
    if (pass_run_all(g, &o->passes) < 0)
        return NULL;
    return g;
}

/* ---- writing files ---- */

int drv_ensure_dir(const char *dir) {
    struct stat st;
    if (stat(dir, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return 0;
        error_plain("%s: exists and is not a folder", dir);
        return -1;
    }
    if (mkdir(dir, 0755) != 0) {
        error_plain("%s: cannot create the folder: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

/* Tells which stale temporary file was removed from an output folder. */
static void stale_removed(const char *name, long pid, void *dir) {
    fprintf(stderr, "snnc: note: removed %s/%s, left by process %ld, which no longer runs\n", (const char *)dir, name, pid);
}

void drv_remove_stale(const char *dir) { snnrt_remove_stale_temps(dir, stale_removed, (void *)dir); }

int drv_write(const char *path, const char *data, size_t len) {
    if (write_file_atomic(path, data, len) != 0) {
        error_plain("%s: cannot write: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

int drv_read_weights_into(const IrGraph *g, const char *path, int allow_missing, float *w) {
    char err[512];
    SnnrtStFile f;
    if (drv_check_input_path(path) != 0)
        return -1;
    if (snnrt_st_read(path, &f, err, sizeof err) != 0) {
        error_plain("%s", err);
        return -1;
    }
    int ok = 1;
    for (int i = 0; ok && i < g->params.len; i++) {
        const IrParam *q = &g->params.items[i];
        const SnnrtStEntry *e = snnrt_st_find(&f, q->name);
        if (!e && allow_missing)
            continue;
        if (!e) {
            error_plain("%s: no tensor '%s' (expected shape %s)", path, q->name,
                        shape_str(g->arena, &q->shape));
            ok = 0;
            break;
        }
        int same = e->t.ndim == q->shape.ndim;
        for (int k = 0; same && k < q->shape.ndim; k++)
            same = e->t.shape[k] == q->shape.d[k];
        if (!same) {
            Shape s = {0, {0}};
            for (int k = 0; k < e->t.ndim && k < IR_MAX_DIMS; k++)
                s.d[s.ndim++] = e->t.shape[k];
            error_plain("%s: tensor '%s' has shape %s%s, expected %s", path, q->name,
                        shape_str(g->arena, &s), e->t.ndim > IR_MAX_DIMS ? "..." : "",
                        shape_str(g->arena, &q->shape));
            ok = 0;
            break;
        }
        if (snnrt_tensor_check_finite(&e->t, arena_printf(g->arena, "%s: tensor '%s'", path, q->name),
                                      err, sizeof err) != 0) {
            error_plain("%s", err);
            ok = 0;
            break;
        }
        memcpy(w + q->off, e->t.data, (size_t)q->count * sizeof(float));
    }
    snnrt_st_free(&f);
    return ok ? 0 : -1;
}

int drv_generate(const IrGraph *g, Options *o, const char *dir, const float *embedded) {
    const Target *t = target_lookup(o->target ? o->target : "c");
    if (!t) {
        error_plain("unknown target '%s' (see snnc --list-targets)", o->target);
        return -1;
    }
    CgenOptions co;
    memset(&co, 0, sizeof co);
    co.static_ws = o->static_ws;
    co.triple = o->triple;
    co.cpu = o->cpu;
    co.features = o->features;
    co.math = o->math;
    co.precision = o->precision;
    co.embedded = embedded;
    GenFile files[TARGET_MAX_FILES];
    int n = target_generate(t, g, &co, files);
    if (n < 0)
        return -1;
    int rc = drv_ensure_dir(dir);
    if (rc == 0) /* what a compile killed while it wrote left */
        drv_remove_stale(dir);
    for (int i = 0; rc == 0 && i < n; i++) {
        char *path = arena_printf(g->arena, "%s/%s", dir, files[i].name);
        rc = drv_write(path, files[i].text.data, files[i].text.len);
    }
    for (int i = 0; i < n; i++)
        buf_free(&files[i].text);
    return rc;
}

/* ---- info ---- */

static long long round16(long long x) { return (x + 15) & ~15LL; }

/* The training workspace, and what keeping spikes as bits and states in 16 bits saves. */
static void info_train(const IrGraph *g) {
    const IrPlan *P = &g->trainp;
    long long kept = P->persist * 4, saved = 0;
    printf("training memory (batch %d): parameters and gradients %lld bytes; values kept for the backward %lld "
           "bytes; gradients of the values %lld bytes\n",
           g->batch, (long long)(g->param_floats * 8), kept, (long long)((P->floats - P->persist) * 4));
    for (int i = 0; i < g->nodes.len; i++) {
        const IrNode *n = &g->nodes.items[i];
        if (n->dead || n->alias >= 0 || !P->at[i].bits)
            continue;
        long long vals = (long long)P->at[i].vsteps * g->batch * shape_count(&n->shape);
        long long bits = round16(vals / 32) * 4, floats = round16(vals) * 4;
        printf("  spikes of %s kept as bits: %lld bytes (as floats %lld)\n", n->name, bits, floats);
        saved += floats - bits;
    }
    long long halved = 0;
    for (int i = 0; i < g->nodes.len; i++) {
        const IrNode *n = &g->nodes.items[i];
        if (n->dead || n->alias >= 0 || !P->at[i].shalf)
            continue;
        long long vals = (long long)P->at[i].ssteps * n->neuron->states.len * g->batch * shape_count(&n->shape);
        long long half = round16((vals + 1) / 2) * 4, floats = round16(vals) * 4;
        printf("  states of %s stored in %s: %lld bytes (as floats %lld)\n", n->name,
               g->store == STORE_BF16 ? "bf16" : "fp16", half, floats);
        halved += floats - half;
    }
    for (int i = 0; i < g->nodes.len; i++) {
        const IrNode *n = &g->nodes.items[i];
        if (n->dead || n->alias >= 0 || !P->at[i].vhalf)
            continue;
        long long vals = (long long)P->at[i].vsteps * g->batch * shape_count(&n->shape);
        long long half = round16((vals + 1) / 2) * 4, floats = round16(vals) * 4;
        printf("  output of %s and its gradient stored in %s: %lld bytes (as floats %lld)\n", n->name,
               g->store == STORE_BF16 ? "bf16" : "fp16", half, floats);
        halved += floats - half;
    }
    long long remat = 0;
    for (int i = 0; i < g->nodes.len; i++) {
        const IrNode *n = &g->nodes.items[i];
        if (n->dead || !P->at[i].remat)
            continue;
        long long vals = (long long)n->neuron->states.len * g->batch * shape_count(&n->shape);
        long long one = round16(vals) * 4, every = round16(vals * (g->timesteps + 1)) * 4;
        printf("  states of %s recomputed by the backward: %lld bytes (stored at every step %lld)\n", n->name, one,
               every);
        remat += every - one;
    }
    long long all = saved + halved + remat;
    if (all) {
        const char *what[3];
        int nw = 0;
        if (saved)
            what[nw++] = "bits";
        if (halved)
            what[nw++] = "16-bit values";
        if (remat)
            what[nw++] = "recomputed states";
        printf("  %s%s%s%s%s save %lld bytes of the values kept (%.1f%% less: %lld bytes without), %.1f%% of the "
               "training region\n",
               what[0], nw > 2 ? ", " : nw > 1 ? " and " : "", nw > 1 ? what[1] : "", nw > 2 ? " and " : "",
               nw > 2 ? what[2] : "", all, 100.0 * (double)all / (double)(kept + all), kept + all,
               100.0 * (double)all / (double)(g->param_floats * 8 + P->floats * 4 + all));
    }
}

static void info(const IrGraph *g, const Options *o) {
    /* the parameters of each node, in one pass */
    int64_t *per_node = arena_alloc(g->arena, sizeof(int64_t) * (size_t)(g->nodes.len + 1));
    for (int k = 0; k < g->params.len; k++)
        per_node[g->params.items[k].node] += g->params.items[k].count;
    const IrNode *in = &g->nodes.items[g->input];
    const char *enc = g->events.on ? arena_printf(g->arena, "events, window %lld%s", (long long)g->events.window,
                                                  g->events.binary ? ", binary" : "")
                                   : encoding_names[g->encoding];
    printf("network %s: %d timesteps, input %s %s (%s), output %s readout %s\n", g->name,
           g->timesteps, in->name, shape_str(g->arena, &in->shape), enc,
           g->nodes.items[g->output].name, readout_names[g->readout]);
    printf("\n%-20s %-10s %-14s %12s %10s %14s\n", "layer", "op", "shape", "parameters", "neurons",
           "synops/step");
    int64_t tp = 0, tn = 0, ts = 0;
    for (int i = 0; i < g->nodes.len; i++) {
        const IrNode *n = &g->nodes.items[i];
        if (n->dead)
            continue;
        int64_t params = per_node[i], neurons = n->op == IR_NEURON ? shape_count(&n->shape) : 0;
        int64_t syn = ir_node_macs(g, i);
        tp += params;
        tn += neurons;
        ts += syn;
        printf("%-20s %-10s %-14s %12lld %10lld %14lld\n", n->name,
               n->neuron ? n->neuron->model : ir_op_names[n->op], shape_str(g->arena, &n->shape),
               (long long)params, (long long)neurons, (long long)syn);
    }
    printf("\ntotal: %lld parameters (%.1f KiB as float32), %lld neurons, %lld synaptic operations "
           "(multiply-accumulates) per step and sample\n",
           (long long)tp, (double)tp * 4 / 1024, (long long)tn, (long long)ts);
    const IrPlan *P = &g->infer;
    printf("inference memory (batch %d): parameters %lld bytes; states and kept values %lld bytes; values of %d "
           "step%s at a time %lld bytes (--chunk; %d timesteps)\n",
           g->batch, (long long)(g->param_floats * 4), (long long)(P->persist * 4), P->chunk, P->chunk == 1 ? "" : "s",
           (long long)((P->floats - P->persist) * 4), g->timesteps);
    if (g->train)
        info_train(g);
    const Target *t = o->target ? target_lookup(o->target) : NULL;
    if (t && t->device_floats) {
        long long inf = (long long)t->device_floats(g, 0), tr = g->train ? (long long)t->device_floats(g, 1) : 0;
        printf("device memory of target %s (batch %d): inference %lld bytes", t->name, g->batch, inf * 4);
        if (g->train && tr < 0)
            printf("; training: not supported by this target yet");
        else if (g->train)
            printf("; training %lld bytes", tr * 4);
        printf(" (the workspace: the parameters, the plan's region and the target's scratch)\n");
        if (g->train && tr >= 0)
            printf("snnc train --target %s adds %lld bytes of device memory (batches on their way, the outputs and "
                   "dL/doutput)\n", t->name, (long long)t->device_floats(g, 2) * 4);
    } else
        printf("(the target adds its scratch: snnc compile writes the workspace's size in the header)\n");
}

int main(int argc, char **argv) {
    Options o;
    int rc = drv_parse_args(argc, argv, &o);
    if (rc)
        return rc;
    Arena arena = {0};
    if (!strcmp(o.cmd, "run") || !strcmp(o.cmd, "grad") || !strcmp(o.cmd, "train") || !strcmp(o.cmd, "export")) {
        rc = !strcmp(o.cmd, "train")   ? cmd_train(&arena, &o)
             : !strcmp(o.cmd, "export") ? cmd_export(&arena, &o)
             : !strcmp(o.cmd, "grad") ? cmd_grad(&arena, &o)
             : o.eval                 ? cmd_eval(&arena, &o)
                                      : cmd_run(&arena, &o);
        if (rc && diag_errors() > 1)
            fprintf(stderr, "%d errors generated.\n", diag_errors());
        arena_free(&arena);
        return rc;
    }
    IrGraph *g = drv_front_end(&arena, &o);
    if (g)
        g = drv_middle_end(&arena, &o, g);
    if (!g)
        goto fail;
    if (o.dot && drv_check_result_path(&arena, o.dot) != 0)
        goto fail;
    float *w = NULL;
    if (!strcmp(o.cmd, "compile") && !o.emit_ir && o.embed && !(w = drv_param_block(g, &o)))
        goto fail;
    if (!strcmp(o.cmd, "info")) {
        info(g, &o);
    } else if (o.emit_ir) {
        Buf b = {0};
        ir_print(g, &b);
        fwrite(b.data, 1, b.len, stdout);
        buf_free(&b);
    } else {
        int bad = drv_generate(g, &o, o.outdir, w);
        if (!bad && o.onnx_data && !o.embed) /* an ONNX model's weights, beside the code that loads them */
            bad = drv_write_onnx_weights(&arena, &o, g,
                                         arena_printf(&arena, "%s/%s.safetensors", o.outdir, drv_lower(&arena, g->name)));
        if (bad) {
            free(w);
            goto fail;
        }
    }
    free(w);
    /* the graph last: a failure above leaves no file behind */
    if (o.dot) {
        Buf b = {0};
        ir_dot(g, &b);
        int bad = drv_write(o.dot, b.data, b.len);
        buf_free(&b);
        if (bad)
            goto fail;
    }
    arena_free(&arena);
    return 0;
fail:
    if (diag_errors() > 1)
        fprintf(stderr, "%d errors generated.\n", diag_errors());
    arena_free(&arena);
    return 1;
}
