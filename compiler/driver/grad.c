/*
 * grad.c: snnc grad: one forward and backward pass of the generated
 * training code on a given input and a given dL/doutput, with the results
 * written to files: the gradient of every learnable parameter (a
 * safetensors file with the parameters' names), dL/dinput and the output of
 * every step. It exposes exactly what training computes, so that gradients
 * can be checked against another implementation (the tests compare them
 * with PyTorch's autograd).
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
    float *ws = NULL, *y = NULL, *dx = NULL;
    if (drv_check_result_path(a, o->npy_out) != 0 || (o->dinput_out && drv_check_result_path(a, o->dinput_out) != 0) ||
        (o->steps_out && drv_check_result_path(a, o->steps_out) != 0))
        return 1;
    if (snnrt_npy_read(o->npy_in, &x, err, sizeof err) != 0 ||
        snnrt_tensor_check_finite(&x, o->npy_in, err, sizeof err) != 0 ||
        snnrt_npy_read(o->grad_in, &gy, err, sizeof err) != 0 ||
        snnrt_tensor_check_finite(&gy, o->grad_in, err, sizeof err) != 0) {
        error_plain("%s", err);
        goto out;
    }
    IrGraph *g = drv_front_end(a, o);
    if (!g)
        goto out;
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
        error_plain("%s: dL/doutput must have the shape of the output of every step, [%d, %d, %s", o->grad_in,
                    g->timesteps, batch, shape_str(a, &s) + 1);
        goto out;
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
    m.train_forward(ws, batch, x.data, y, 1, o->seed);
    m.train_backward(ws, batch, gy.data, dx);
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
        char *written[4];
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
    free(y);
    free(dx);
    snnrt_tensor_free(&x);
    snnrt_tensor_free(&gy);
    return rc;
}
