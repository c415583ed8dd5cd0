/*
 * grad.c: snnc grad: one forward and backward pass of the generated
 * training code on a given input and a given dL/doutput, with the results
 * written to files: the gradient of every learnable parameter (a
 * safetensors file with the parameters' names), dL/dinput and the output of
 * every step. It exposes exactly what training computes, so that gradients
 * can be checked against another implementation (the tests compare them
 * with PyTorch's autograd). --record LAYER[.VAR]=FILE.npy writes a value of
 * every step, as snnc run does: the training forward keeps no probes, so
 * the inference code computes them, on the same input and parameters; it
 * computes what the training forward computes except dropout and batchnorm
 * (on the batch's statistics in training), so a network with either is
 * refused.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jit.h"

static int write_npy(const char *path, const float *data, int ndim, const long long *shape, char **written,
                     int *nw) {
    char err[1024];
    SnnrtTensor t;
    memset(&t, 0, sizeof t);
    t.ndim = ndim;
    t.count = 1;
    for (int k = 0; k < ndim; k++) {
        t.shape[k] = shape[k];
        t.count *= (size_t)shape[k];
    }
    t.data = (float *)data;
    if (snnrt_npy_write(path, &t, err, sizeof err) != 0) {
        error_plain("%s", err);
        return -1;
    }
    written[(*nw)++] = (char *)path;
    return 0;
}

int cmd_grad(Arena *a, Options *o) {
    char err[1024];
    SnnrtTensor x, gy;
    memset(&x, 0, sizeof x);
    memset(&gy, 0, sizeof gy);
    int rc = 1;
    LoadedModel m;
    memset(&m, 0, sizeof m);
    float *ws = NULL, *y = NULL, *dx = NULL, *iws = NULL, *rec = NULL;
    if (drv_check_outputs(a, o) != 0 || drv_check_input_path(o->npy_in) != 0 ||
        drv_check_input_path(o->grad_in) != 0)
        return 1;
    IrGraph *g = drv_read_input(a, o, &x);
    if (!g)
        goto out;
    if (snnrt_npy_read(o->grad_in, &gy, err, sizeof err) != 0 ||
        snnrt_tensor_check_finite(&gy, o->grad_in, err, sizeof err) != 0) {
        error_plain("%s", err);
        goto out;
    }
    int batch = drv_input_batch(a, g, &x, o->npy_in);
    if (batch < 0)
        goto out;
    o->batch = batch;
    o->train = 1;
    if (!drv_middle_end(a, o, g))
        goto out;
    const IrNode *on = &g->nodes.items[g->output];
    long long yshape[2 + IR_MAX_DIMS];
    int yn = 0;
    yshape[yn++] = g->timesteps;
    yshape[yn++] = batch;
    for (int k = 0; k < on->shape.ndim; k++)
        yshape[yn++] = on->shape.d[k];
    int same = gy.ndim == yn;
    for (int k = 0; same && k < yn; k++)
        same = gy.shape[k] == yshape[k];
    if (!same) {
        Shape s = {0, {0}};
        for (int k = 2; k < yn; k++)
            s.d[s.ndim++] = yshape[k];
        const char *got = "[";
        for (int k = 0; k < gy.ndim; k++)
            got = arena_printf(a, "%s%s%lld", got, k ? ", " : "", gy.shape[k]);
        error_plain("%s: dL/doutput has shape %s], but it must have the shape of the output of every step, "
                    "[%d, %d, %s",
                    o->grad_in, got, g->timesteps, batch, shape_str(a, &s) + 1);
        goto out;
    }
    /* the records come from the inference code: it must compute what the
       training forward computes */
    for (int i = 0; g->probes.len && i < g->nodes.len; i++) {
        const IrNode *n = &g->nodes.items[i];
        if ((n->op == IR_DROPOUT || n->op == IR_BATCHNORM) && !n->dead) {
            error_plain("--record with grad: layer '%s' of network '%s' is a %s layer, which the training forward "
                        "computes otherwise than the inference code that records (%s); record with snnc run",
                        n->name, g->name, ir_op_names[n->op],
                        n->op == IR_DROPOUT ? "dropout on" : "batchnorm on the batch's statistics");
            goto out;
        }
        if (!n->dead && g->trainp.at[i].vhalf) {
            error_plain("--record with grad and --precision %s: the training forward rounds the output of layer "
                        "'%s' of network '%s' to 16 bits, the inference code that records does not; record with "
                        "snnc run, or with --precision fp32 or tf32",
                        precision_names[o->precision], n->name, g->name);
            goto out;
        }
    }
    if (snnrt_tensor_check_finite(&gy, o->grad_in, err, sizeof err) != 0 ||
        snnrt_tensor_check_finite(&x, o->npy_in, err, sizeof err) != 0) {
        error_plain("%s", err);
        goto out;
    }
    if (drv_load(g, o, &m) != 0)
        goto out;
    ws = floats_alloc((size_t)m.train_ws_floats + 1);
    y = malloc(gy.count * sizeof(float) + 1);
    dx = malloc(x.count * sizeof(float) + 1);
    if (!ws || !y || !dx) {
        error_plain("out of memory (the training workspace is %ld floats)", m.train_ws_floats);
        goto out;
    }
    if (drv_params(g, o, ws) != 0)
        goto out;
    m.train_forward(ws, batch, x.data, y, 1, drv_run_seed(o, g));
    m.train_backward(ws, batch, x.data, gy.data, dx);
    if (g->probes.len) {
        /* the records, [T, B, ...] each, from the inference code step by step */
        size_t per_step = 0, nin = (size_t)batch * (size_t)shape_count(&g->nodes.items[g->input].shape);
        for (int k = 0; k < g->probes.len; k++)
            per_step += (size_t)batch * (size_t)g->probes.items[k].count;
        iws = calloc((size_t)m.ws_floats + 1, sizeof(float));
        rec = malloc(per_step * (size_t)g->timesteps * sizeof(float) + 1);
        if (!iws || !rec || drv_params(g, o, iws) != 0) {
            if (!iws || !rec)
                error_plain("out of memory (the records take %zu floats)", per_step * (size_t)g->timesteps);
            goto out;
        }
        if (m.seed)
            m.seed(iws, drv_run_seed(o, g)); /* the rate spikes of the training forward */
        m.reset(iws, batch);
        for (int t = 0; t < g->timesteps; t++) {
            m.step(iws, batch, x.data + (g->encoding == ENC_SEQUENCE ? (size_t)t * nin : 0), NULL);
            float *at = rec;
            for (int k = 0; k < g->probes.len; k++) {
                size_t c = (size_t)batch * (size_t)g->probes.items[k].count;
                memcpy(at + (size_t)t * c, m.probe(iws, k), c * sizeof(float));
                at += c * (size_t)g->timesteps;
            }
        }
    }
    {
        /* every learnable parameter's gradient, or nothing */
        const float *G = m.train_grads(ws);
        int n = 0, np = g->params.len;
        const char **names = calloc((size_t)np + 1, sizeof *names);
        SnnrtTensor *ts = calloc((size_t)np + 1, sizeof *ts);
        const SnnrtTensor **tp = calloc((size_t)np + 1, sizeof *tp);
        int ok = names && ts && tp;
        for (int i = 0; ok && i < np; i++) {
            const IrParam *q = &g->params.items[i];
            if (!q->learnable)
                continue;
            ts[n].ndim = q->shape.ndim;
            for (int k = 0; k < q->shape.ndim; k++)
                ts[n].shape[k] = q->shape.d[k];
            ts[n].count = (size_t)q->count;
            ts[n].data = (float *)(G + q->off);
            names[n] = q->name;
            tp[n] = &ts[n];
            n++;
        }
        char *written[4 + MAX_RECORDS];
        int nw = 0;
        if (ok && snnrt_st_write(o->npy_out, n, names, tp, err, sizeof err) != 0) {
            error_plain("%s", err);
            ok = 0;
        } else if (ok)
            written[nw++] = (char *)o->npy_out;
        if (ok && o->dinput_out)
            ok = write_npy(o->dinput_out, dx, x.ndim, x.shape, written, &nw) == 0;
        if (ok && o->steps_out)
            ok = write_npy(o->steps_out, y, yn, yshape, written, &nw) == 0;
        const float *at = rec;
        for (int k = 0; ok && k < g->probes.len; k++) {
            const Shape *s = &g->nodes.items[g->probes.items[k].node].shape;
            long long shape[2 + IR_MAX_DIMS] = {g->timesteps, batch};
            for (int d = 0; d < s->ndim; d++)
                shape[2 + d] = s->d[d];
            ok = write_npy(o->records[k].file, at, 2 + s->ndim, shape, written, &nw) == 0;
            at += (size_t)batch * (size_t)g->probes.items[k].count * (size_t)g->timesteps;
        }
        if (!ok)
            for (int k = 0; k < nw; k++)
                unlink(written[k]);
        free(names);
        free(ts);
        free(tp);
        if (ok)
            rc = 0;
    }
out:
    drv_unload(o, &m);
    free(ws);
    free(iws);
    free(rec);
    free(y);
    free(dx);
    snnrt_tensor_free(&x);
    snnrt_tensor_free(&gy);
    return rc;
}
