/*
 * run.c: snnc run: compile the model, build and load its generated code
 * (the target's hook, load.c), run it on the input, and write the results
 * as .npy files: all of them, or none; with --plot, then the plots of the
 * sequence (plot.c), from records of their own.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "data.h"
#include "jit.h"
#include "plot.h"
#include "snnrt.h"

char *drv_lower(Arena *a, const char *s) {
    char *p = arena_strdup(a, s);
    for (char *c = p; *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c - 'A' + 'a');
    return p;
}

/* Why no file can be created in folder dir, or NULL when one can. The
   test creates and removes an empty file there: access(W_OK) is not
   enough, root passes it where nothing can be created (/proc, /sys). The
   probe is named as the runtime names its temporary files, so that one
   left by a kill is removed by a later run (snnrt_remove_stale_temps). */
static const char *unwritable_dir(Arena *a, const char *dir) {
    struct stat st;
    if (stat(dir, &st) != 0)
        return strerror(errno);
    if (!S_ISDIR(st.st_mode))
        return "not a folder";
    const char *probe = arena_printf(a, "%s/.snnc-probe.tmp%ld.0", dir, (long)getpid());
    int fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST && unlink(probe) == 0) /* our own, from a reused pid */
        fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return strerror(errno);
    close(fd);
    unlink(probe);
    return NULL;
}

const char *drv_folder_of(Arena *a, const char *path) {
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') /* "out/" is the folder "out" */
        n--;
    const char *slash = NULL;
    for (size_t i = 0; i < n; i++)
        if (path[i] == '/')
            slash = path + i;
    return !slash ? "." : slash == path ? "/" : arena_strndup(a, path, (size_t)(slash - path));
}

int drv_check_result_path(Arena *a, const char *path) {
    struct stat st;
    const char *slash = strrchr(path, '/');
    if (!*path || (slash && !slash[1]) || (stat(path, &st) == 0 && S_ISDIR(st.st_mode))) {
        error_plain("%s: cannot write: %s", path,
                    *path && (!slash || slash[1]) ? "it is a folder, not a file" : "not a file name");
        return -1;
    }
    const char *dir = drv_folder_of(a, path);
    const char *why = unwritable_dir(a, dir);
    if (why) {
        error_plain("%s: cannot write into the folder '%s': %s", path, dir, why);
        return -1;
    }
    return 0;
}

int drv_check_out_dir(Arena *a, const char *dir) {
    struct stat st;
    if (!*dir) {
        error_plain("the output folder's name is empty");
        return -1;
    }
    if (stat(dir, &st) == 0) {
        const char *why = unwritable_dir(a, dir);
        if (why) {
            error_plain("%s: cannot write into this output folder: %s", dir, why);
            return -1;
        }
        return 0;
    }
    /* created later (drv_ensure_dir), in a folder where that must work */
    const char *parent = drv_folder_of(a, dir);
    const char *why = unwritable_dir(a, parent);
    if (why) {
        error_plain("%s: cannot create this output folder in '%s': %s", dir, parent, why);
        return -1;
    }
    return 0;
}

int drv_check_outputs(Arena *a, const Options *o) {
    int bad = 0;
    const char *files[] = {o->npy_out, o->dinput_out, o->steps_out, o->step_log};
    for (size_t k = 0; k < sizeof files / sizeof *files; k++)
        if (files[k])
            bad |= drv_check_result_path(a, files[k]);
    for (int k = 0; k < o->nrecords; k++)
        if (o->records[k].file)
            bad |= drv_check_result_path(a, o->records[k].file);
    if (o->keep)
        bad |= drv_check_out_dir(a, o->keep);
    return bad ? -1 : 0;
}

int drv_check_input_path(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) {
        error_plain("%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    if (S_ISDIR(st.st_mode)) {
        error_plain("%s: is a folder, not a file", path);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        error_plain("%s: is not a regular file (a device, a pipe or a socket); give a file", path);
        return -1;
    }
    return 0;
}

int drv_input_batch(Arena *a, const IrGraph *g, const SnnrtTensor *x, const char *path) {
    const Shape *is = &g->nodes.items[g->input].shape;
    int seq = g->encoding == ENC_SEQUENCE;
    int want = is->ndim + 1 + seq;
    int ok = x->ndim == want;
    if (ok && seq && x->shape[0] != g->timesteps)
        ok = 0;
    for (int k = 0; ok && k < is->ndim; k++)
        ok = x->shape[1 + seq + k] == is->d[k];
    if (!ok || x->shape[seq] < 1 || x->shape[seq] > (1 << 20)) {
        const char *got = "[";
        for (int k = 0; k < x->ndim; k++)
            got = arena_printf(a, "%s%s%lld", got, k ? "," : "", x->shape[k]);
        error_plain("%s: input has shape %s]; network %s expects %s%s (%s encoding)", path, got, g->name,
                    seq ? arena_printf(a, "[%d, B, ", g->timesteps) : "[B, ", shape_str(a, is) + 1,
                    encoding_names[g->encoding]);
        return -1;
    }
    return (int)x->shape[seq];
}

unsigned long long drv_run_seed(const Options *o, const IrGraph *g) {
    if (o->set_seed_given)
        return o->set_seed;
    return g->encoding == ENC_RATE ? 0 : o->seed;
}

/* Writes every result or none: each goes to a temporary file beside its
   target, named as the runtime names them (".NAME.tmpPID.K"), and only
   when all are written are they renamed over their targets, so a failure
   changes no file. Temporary files that a killed run left in the results'
   folders are removed first. */
static int write_results(Arena *a, int n, const char *const *dst, const SnnrtTensor *const *val) {
    char err[1024];
    const char **tmp = arena_alloc(a, sizeof(char *) * (size_t)(n + 1));
    const char **dirs = arena_alloc(a, sizeof(char *) * (size_t)(n + 1));
    int ok = 1, nw = 0, nd = 0;
    for (int k = 0; k < n; k++) {
        const char *dir = drv_folder_of(a, dst[k]);
        int seen = 0;
        for (int j = 0; j < nd; j++)
            seen |= !strcmp(dirs[j], dir);
        if (!seen) {
            dirs[nd++] = dir;
            drv_remove_stale(dir);
        }
    }
    for (int k = 0; ok && k < n; k++) {
        const char *slash = strrchr(dst[k], '/');
        int dl = slash ? (int)(slash - dst[k]) + 1 : 0;
        tmp[k] = arena_printf(a, "%.*s.%s.tmp%ld.%d", dl, dst[k], dst[k] + dl, (long)getpid(), k);
        if (snnrt_npy_write(tmp[k], val[k], err, sizeof err) != 0) {
            error_plain("%s: cannot write: %s", dst[k], err);
            ok = 0;
        } else
            nw++;
    }
    for (int k = 0; ok && k < n; k++)
        if (rename(tmp[k], dst[k]) != 0) {
            error_plain("%s: cannot write: %s", dst[k], strerror(errno));
            ok = 0;
        } else
            tmp[k] = NULL;
    for (int k = 0; k < nw; k++)
        if (tmp[k])
            unlink(tmp[k]);
    return ok ? 0 : -1;
}

/* A tensor [lead..., shape...] of fresh memory; 0 or -1 when out of memory. */
static int make_tensor(SnnrtTensor *t, const long long *lead, int nlead, const Shape *s) {
    memset(t, 0, sizeof *t);
    t->count = 1;
    for (int k = 0; k < nlead; k++) {
        t->shape[t->ndim++] = lead[k];
        t->count *= (size_t)lead[k];
    }
    for (int k = 0; k < s->ndim; k++) {
        t->shape[t->ndim++] = s->d[k];
        t->count *= (size_t)s->d[k];
    }
    t->data = malloc(t->count * sizeof(float) + 1);
    return t->data ? 0 : -1;
}

/* The event lists of path (`encode events`), binned into x: [T, B, ...]
   frames for the B samples; -1 after reporting. */
static int read_events(const IrGraph *g, const char *path, SnnrtTensor *x) {
    char err[1024];
    SnnrtEventSpec spec;
    SnnrtEvents ev;
    data_event_spec(g, &spec);
    if (snnrt_events_read(path, &spec, &ev, err, sizeof err) != 0) {
        error_plain("%s", err);
        return -1;
    }
    int rc = -1;
    if (ev.samples < 1 || ev.samples > (1 << 20)) {
        error_plain("%s: %lld samples; snnc run takes 1 to %d at a time", path, ev.samples, 1 << 20);
        goto out;
    }
    long long lead[2] = {g->timesteps, ev.samples};
    if (make_tensor(x, lead, 2, &g->nodes.items[g->input].shape) != 0) {
        error_plain("%s: out of memory for %lld samples of %d frames", path, ev.samples, g->timesteps);
        goto out;
    }
    size_t frame = (size_t)shape_count(&g->nodes.items[g->input].shape);
    for (long long i = 0; i < ev.samples; i++)
        snnrt_events_bin(&ev, &spec, i, x->data + (size_t)i * frame, (size_t)ev.samples * frame);
    rc = 0;
out:
    snnrt_events_free(&ev);
    return rc;
}

/* snnc run's and grad's --input: a float array, or for `encode events` an
   event list binned into frames (an [E, 4] integer table reads as floats
   too, so it is read again exactly; [T, B, ...] floats are frames binned
   already). Returns the front end's graph, NULL after reporting. */
IrGraph *drv_read_input(Arena *a, Options *o, SnnrtTensor *x) {
    char err[1024];
    IrGraph *g;
    if (snnrt_npy_read(o->npy_in, x, err, sizeof err) != 0) {
        /* an event list is no float array: read as one after sema */
        g = drv_front_end(a, o);
        if (!g || !g->events.on) {
            if (g)
                error_plain("%s", err);
            return NULL;
        }
        return read_events(g, o->npy_in, x) == 0 ? g : NULL;
    }
    if (!(g = drv_front_end(a, o)))
        return NULL;
    if (g->events.on && x->ndim != g->nodes.items[g->input].shape.ndim + 2) {
        snnrt_tensor_free(x);
        return read_events(g, o->npy_in, x) == 0 ? g : NULL;
    }
    if (snnrt_tensor_check_finite(x, o->npy_in, err, sizeof err) != 0) {
        error_plain("%s", err);
        return NULL;
    }
    return g;
}

/* The input's sequence through the loaded code: outs[0] the output of
   forward, outs[1 + k] record k of every step, [T, B, ...], from the same
   sequence run step by step. 0, or -1 after reporting. */
static int run_sequence(const IrGraph *g, LoadedModel *m, float *ws, int batch, const SnnrtTensor *x,
                        SnnrtTensor *outs) {
    const IrNode *on = &g->nodes.items[g->output];
    long long T = g->timesteps, B = batch;
    long long lead[2] = {T, B};
    int steps = g->readout == RO_STEPS;
    int ok = make_tensor(&outs[0], steps ? lead : lead + 1, steps ? 2 : 1, &on->shape) == 0;
    for (int k = 0; ok && k < g->probes.len; k++)
        ok = make_tensor(&outs[1 + k], lead, 2, &g->nodes.items[g->probes.items[k].node].shape) == 0;
    if (!ok) {
        error_plain("out of memory");
        return -1;
    }
    m->forward(ws, batch, x->data, outs[0].data);
    if (!g->probes.len)
        return 0;
    size_t nin = (size_t)B * (size_t)shape_count(&g->nodes.items[g->input].shape);
    m->reset(ws, batch);
    for (long long t = 0; t < T; t++) {
        m->step(ws, batch, x->data + (g->encoding == ENC_SEQUENCE ? (size_t)t * nin : 0), NULL);
        for (int k = 0; k < g->probes.len; k++) {
            size_t c = (size_t)B * (size_t)g->probes.items[k].count;
            memcpy(outs[1 + k].data + (size_t)t * c, m->probe(ws, k), c * sizeof(float));
        }
    }
    return 0;
}

/* The output (unless only records are wanted), the records that have a
   file, and --plot's plots. 0, or -1 after reporting. */
static int write_run(Arena *a, const Options *o, const IrGraph *g, int batch, const SnnrtTensor *outs) {
    const char **dst = arena_alloc(a, sizeof(char *) * (size_t)(g->probes.len + 1));
    const SnnrtTensor **val = arena_alloc(a, sizeof(SnnrtTensor *) * (size_t)(g->probes.len + 1));
    int n = 0;
    if (o->npy_out) {
        dst[n] = o->npy_out;
        val[n++] = &outs[0];
    }
    for (int k = 0; k < g->probes.len; k++) {
        if (!o->records[k].file) /* --plot's own */
            continue;
        dst[n] = o->records[k].file;
        val[n++] = &outs[1 + k];
    }
    if (write_results(a, n, dst, val) != 0)
        return -1;
    return o->plot ? plot_write(a, g, o->plot, batch, outs + 1) : 0;
}

/* snnc run: the model's inference code, built and loaded by its target,
   runs the input's sequence (run_sequence), and the results are written
   (write_run). */
int cmd_run(Arena *a, Options *o) {
    SnnrtTensor x;
    memset(&x, 0, sizeof x);
    if (drv_check_outputs(a, o) != 0 || drv_check_input_path(o->npy_in) != 0 ||
        (o->plot && drv_check_out_dir(a, o->plot) != 0))
        return 1;
    /* the batch comes from the input; its layout is checked after sema */
    IrGraph *g = NULL;
    LoadedModel m;
    memset(&m, 0, sizeof m);
    float *w = NULL, *ws = NULL;
    SnnrtTensor *outs = NULL;
    int rc = 1;
    IrGraph *g0 = drv_read_input(a, o, &x);
    if (!g0)
        goto out;
    int batch = drv_input_batch(a, g0, &x, o->npy_in);
    if (batch < 0)
        goto out;
    if (o->set_seed_given && g0->encoding != ENC_RATE) {
        error_plain("--seed: network '%s' draws no random numbers (its input is %s-encoded; --seed sets the "
                    "seed of 'encode rate')", g0->name, encoding_names[g0->encoding]);
        goto out;
    }
    o->batch = batch;
    if (o->plot)
        plot_add_records(a, o, g0);
    g = drv_middle_end(a, o, g0);
    /* the weights are checked here, before anything is built */
    if (!g || !(w = drv_param_block(g, o)))
        goto out;
    if (o->emit_ir) {
        Buf b = {0};
        ir_print(g, &b);
        fwrite(b.data, 1, b.len, stdout);
        buf_free(&b);
    }
    if (drv_load(g, o, &m) != 0)
        goto out;
    ws = floats_alloc((size_t)m.ws_floats + 1);
    outs = calloc((size_t)g->probes.len + 1, sizeof *outs);
    if (!ws || !outs) {
        error_plain("out of memory (the workspace is %ld floats)", m.ws_floats);
        goto out;
    }
    memcpy(ws, w, sizeof(float) * (size_t)g->param_floats);
    if (m.seed)
        m.seed(ws, drv_run_seed(o, g));
    if (run_sequence(g, &m, ws, batch, &x, outs) == 0 && write_run(a, o, g, batch, outs) == 0)
        rc = 0;
out:
    drv_unload(o, &m);
    if (outs)
        for (int k = 0; k <= (g ? g->probes.len : 0); k++)
            free(outs[k].data);
    free(outs);
    free(ws);
    free(w);
    snnrt_tensor_free(&x);
    return rc;
}
