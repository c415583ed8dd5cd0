/*
 * jit.c: builds a model's generated training code into a shared object with
 * the system C compiler and loads it into snnc, so that `snnc train` and
 * `snnc grad` call the generated kernels directly while the data, the loss,
 * the optimizer and the files stay in snnc's own (tested) C.
 *
 * The code is built in a private temporary folder with -O3 -march=native
 * (it runs on this machine only) and -fno-trapping-math (the comparisons
 * of the neuron loops may then be computed for every element, which lets
 * compilers vectorize them; no value changes), and removed when the model
 * is closed. The
 * generated file's ABI is documented in docs/generated-code.md; the names
 * looked up here are <prefix>_train_forward and the others of its header.
 */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jit.h"

static void *sym(JitModel *m, const char *p, const char *name) {
    char full[256];
    snprintf(full, sizeof full, "%s_%s", p, name);
    void *f = dlsym(m->so, full);
    if (!f)
        error_plain("the generated code has no symbol '%s'", full);
    return f;
}

int jit_load(Arena *a, const IrGraph *g, Options *o, JitModel *m) {
    memset(m, 0, sizeof *m);
    const char *tmpdir = getenv("TMPDIR");
    char *dir;
    if (o->keep) { /* --keep-build DIR: build there and leave it */
        if (drv_ensure_dir(o->keep) != 0)
            return -1;
        dir = arena_strdup(a, o->keep);
        m->keep = 1;
    } else {
        dir = arena_printf(a, "%s/snnc-jit-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
        if (!mkdtemp(dir)) {
            error_plain("cannot create a temporary folder: %s", strerror(errno));
            return -1;
        }
    }
    m->dir = dir;
    m->prefix = drv_lower(a, g->name);
    if (drv_generate(g, o, dir, NULL) != 0) {
        jit_close(m);
        return -1;
    }
    m->c_file = arena_printf(a, "%s/%s.c", dir, m->prefix);
    m->h_file = arena_printf(a, "%s/%s.h", dir, m->prefix);
    m->so_file = arena_printf(a, "%s/%s.so", dir, m->prefix);
    const char *cc = o->cc ? o->cc : getenv("CC") && *getenv("CC") ? getenv("CC") : "cc";
    char *argv[] = {(char *)cc, "-std=c99", "-O3", "-march=native", "-fno-trapping-math", "-fPIC", "-shared",
                    "-o", (char *)m->so_file, (char *)m->c_file, "-lm", NULL};
    if (drv_run_program(argv, "the C compiler") != 0) {
        jit_close(m);
        return -1;
    }
    m->so = dlopen(m->so_file, RTLD_NOW | RTLD_LOCAL);
    if (!m->so) {
        error_plain("cannot load the generated code: %s", dlerror());
        jit_close(m);
        return -1;
    }
    const char *p = m->prefix;
    *(void **)&m->forward = sym(m, p, "train_forward");
    *(void **)&m->backward = sym(m, p, "train_backward");
    *(void **)&m->init_weights = g->params.len ? sym(m, p, "init_weights") : NULL;
    *(void **)&m->load_weights = g->params.len ? sym(m, p, "load_weights") : NULL;
    m->params = g->params.len ? sym(m, p, "params") : NULL;
    const long *wsf = sym(m, p, "train_workspace_floats");
    if (!m->forward || !m->backward || !wsf || (g->params.len && (!m->init_weights || !m->load_weights || !m->params))) {
        jit_close(m);
        return -1;
    }
    *(void **)&m->grads = sym(m, p, "train_grads");
    *(void **)&m->spikes = sym(m, p, "train_spikes");
    if (!m->grads || !m->spikes) {
        jit_close(m);
        return -1;
    }
    m->nparams = g->params.len;
    m->ws_floats = *wsf;
    return 0;
}

void jit_close(JitModel *m) {
    if (m->so)
        dlclose(m->so);
    m->so = NULL;
    if (m->dir && !m->keep) {
        const char *files[] = {m->c_file, m->h_file, m->so_file};
        for (int i = 0; i < 3; i++)
            if (files[i])
                unlink(files[i]);
        rmdir(m->dir);
        m->dir = NULL;
    }
}
