/*
 * run.c: snnc run: compile the model, build the generated code with the
 * system C compiler in a temporary folder together with a small driver
 * program, run it on the input, and turn its raw results into .npy files.
 * All results are written, or none.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "driver.h"
#include "snnrt.h"

/* ---- run ---- */

int drv_run_program(char *const argv[], const char *what) {
    pid_t pid = fork();
    if (pid < 0) {
        error_plain("cannot start %s: %s", what, strerror(errno));
        return -1;
    }
    if (pid == 0) {
        execvp(argv[0], argv);
        fprintf(stderr, "snnc: error: cannot run '%s': %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) {
            error_plain("waiting for %s: %s", what, strerror(errno));
            return -1;
        }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (WIFSIGNALED(status))
        error_plain("%s was killed by signal %d", what, WTERMSIG(status));
    else
        error_plain("%s failed (exit status %d)", what, WEXITSTATUS(status));
    return -1;
}

/* The program `run` builds around the generated code. The prologue written
   before it defines F(name) and M(NAME) as the network's function and macro
   names, HAVE_WEIGHTS, and PROBE_SIZES (floats per sample of each record). */
static const char *harness_src =
    "#include <stdio.h>\n"
    "#include <stdlib.h>\n"
    "\n"
    "static int io(const char *path, float *p, size_t n, int wr)\n"
    "{\n"
    "    FILE *f = fopen(path, wr ? \"wb\" : \"rb\");\n"
    "    size_t got;\n"
    "    if (!f)\n"
    "        return -1;\n"
    "    got = wr ? fwrite(p, sizeof *p, n, f) : fread(p, sizeof *p, n, f);\n"
    "    return fclose(f) == 0 && got == n ? 0 : -1;\n"
    "}\n"
    "\n"
    "/* argv: weights or -, seed or -, batch, input, output, then one file per record */\n"
    "int main(int argc, char **argv)\n"
    "{\n"
    "    static const size_t probe_size[] = {PROBE_SIZES 0};\n"
    "    int batch, t, k, nprobe = argc - 6;\n"
    "    size_t nin, nout;\n"
    "    float *ws, *in, *out;\n"
    "    if (argc < 6 || nprobe != M(NUM_PROBES))\n"
    "        return 2;\n"
    "    batch = atoi(argv[3]);\n"
    "    nin = (size_t)(M(INPUT_SEQUENCE) ? M(TIMESTEPS) : 1) * (size_t)batch * M(INPUT_SIZE);\n"
    "    nout = (size_t)(M(OUTPUT_STEPS) ? M(TIMESTEPS) : 1) * (size_t)batch * M(OUTPUT_SIZE);\n"
    "    ws = calloc(M(WORKSPACE_FLOATS) + 1, sizeof(float));\n"
    "    in = malloc(nin * sizeof(float) + 1);\n"
    "    out = malloc(nout * sizeof(float) + 1);\n"
    "    if (!ws || !in || !out) {\n"
    "        fprintf(stderr, \"out of memory\\n\");\n"
    "        return 1;\n"
    "    }\n"
    "#if HAVE_WEIGHTS\n"
    "    {\n"
    "        char err[1024];\n"
    "        if (argv[2][0] != '-')\n"
    "            F(init_weights)(ws, strtoull(argv[2], NULL, 10));\n"
    "        if (argv[1][0] != '-' && F(load_weights)(ws, argv[1], argv[2][0] != '-', err, sizeof err)) {\n"
    "            fprintf(stderr, \"%s\\n\", err);\n"
    "            return 1;\n"
    "        }\n"
    "    }\n"
    "#endif\n"
    "    if (io(argv[4], in, nin, 0)) {\n"
    "        fprintf(stderr, \"cannot read the input\\n\");\n"
    "        return 1;\n"
    "    }\n"
    "    F(forward)(ws, batch, in, out);\n"
    "    if (io(argv[5], out, nout, 1))\n"
    "        return 1;\n"
    "#if M(NUM_PROBES) > 0\n"
    "    {\n"
    "        FILE *pf[M(NUM_PROBES)];\n"
    "        for (k = 0; k < nprobe; k++)\n"
    "            if (!(pf[k] = fopen(argv[6 + k], \"wb\")))\n"
    "                return 1;\n"
    "        F(reset)(ws, batch);\n"
    "        for (t = 0; t < M(TIMESTEPS); t++) {\n"
    "            F(step)(ws, batch, in + (M(INPUT_SEQUENCE) ? (size_t)t * (size_t)batch * M(INPUT_SIZE) : 0), NULL);\n"
    "            for (k = 0; k < nprobe; k++)\n"
    "                if (fwrite(F(probe)(ws, k), sizeof(float), (size_t)batch * probe_size[k], pf[k]) != (size_t)batch * probe_size[k])\n"
    "                    return 1;\n"
    "        }\n"
    "        for (k = 0; k < nprobe; k++)\n"
    "            if (fclose(pf[k]))\n"
    "                return 1;\n"
    "    }\n"
    "#endif\n"
    "    (void)t;\n"
    "    (void)k;\n"
    "    (void)probe_size;\n"
    "    free(ws);\n"
    "    free(in);\n"
    "    free(out);\n"
    "    return 0;\n"
    "}\n";

char *drv_lower(Arena *a, const char *s) {
    char *p = arena_strdup(a, s);
    for (char *c = p; *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c - 'A' + 'a');
    return p;
}

static void remove_tree(const char *dir, const char *const *names, int n) {
    char path[4096];
    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
}

static int read_raw(const char *path, float *p, size_t n) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    size_t got = fread(p, sizeof *p, n, f);
    int extra = fgetc(f) != EOF;
    fclose(f);
    return got == n && !extra ? 0 : -1;
}

/* A result file must be creatable: not a folder, in a folder that exists
   and is writable. Checked before anything is built, so that a wrong path
   costs no compilation (the writing itself is checked again). */
int drv_check_result_path(Arena *a, const char *path) {
    struct stat st;
    const char *slash = strrchr(path, '/');
    const char *dir = !slash ? "." : slash == path ? "/" : arena_strndup(a, path, (size_t)(slash - path));
    if (!*path || (slash && !slash[1]) || (stat(path, &st) == 0 && S_ISDIR(st.st_mode))) {
        error_plain("%s: cannot write: not a file name", path);
        return -1;
    }
    const char *why = stat(dir, &st) != 0          ? strerror(errno)
                      : !S_ISDIR(st.st_mode)          ? "not a folder"
                      : access(dir, W_OK | X_OK) != 0 ? strerror(errno)
                                                      : NULL;
    if (why) {
        error_plain("%s: cannot write into the folder '%s': %s", path, dir, why);
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

int cmd_run(Arena *a, Options *o) {
    char err[1024];
    SnnrtTensor x;
    memset(&x, 0, sizeof x);
    int unwritable = drv_check_result_path(a, o->npy_out);
    for (int k = 0; k < o->nrecords; k++)
        unwritable |= drv_check_result_path(a, o->records[k].file);
    if (unwritable)
        return 1;
    if (snnrt_npy_read(o->npy_in, &x, err, sizeof err) != 0 ||
        snnrt_tensor_check_finite(&x, o->npy_in, err, sizeof err) != 0) {
        error_plain("%s", err);
        snnrt_tensor_free(&x);
        return 1;
    }
    /* the batch comes from the input; its layout is checked after sema */
    IrGraph *g = NULL;
    int rc = 1;
    {
        IrGraph *g0 = drv_front_end(a, o);
        if (!g0)
            goto out;
        int batch = drv_input_batch(a, g0, &x, o->npy_in);
        if (batch < 0)
            goto out;
        o->batch = batch;
        g = drv_middle_end(a, o, g0);
        if (!g)
            goto out;
        /* the weights are checked here, before anything is built */
        if (o->weights) {
            float *w = drv_read_weights(g, o->weights, o->init);
            if (!w)
                goto out;
            free(w);
        }
    }
    if (o->emit_ir) {
        Buf b = {0};
        ir_print(g, &b);
        fwrite(b.data, 1, b.len, stdout);
        buf_free(&b);
    }
    char tmpl[] = "/tmp/snnc-run-XXXXXX";
    const char *tmpdir = getenv("TMPDIR");
    char *dir;
    if (o->keep) {
        if (drv_ensure_dir(o->keep) != 0)
            goto out;
        dir = (char *)o->keep;
    } else {
        char *t = tmpdir ? arena_printf(a, "%s/snnc-run-XXXXXX", tmpdir) : tmpl;
        dir = mkdtemp(t);
        if (!dir) {
            error_plain("cannot create a temporary folder: %s", strerror(errno));
            goto out;
        }
    }
    const char *p = drv_lower(a, g->name);
    const char *files[8 + MAX_RECORDS];
    int nfiles = 0;
    files[nfiles++] = arena_printf(a, "%s.h", p);
    files[nfiles++] = arena_printf(a, "%s.c", p);
    files[nfiles++] = "harness.c";
    files[nfiles++] = "model";
    files[nfiles++] = "input.bin";
    files[nfiles++] = "output.bin";
    for (int k = 0; k < g->probes.len; k++)
        files[nfiles++] = arena_printf(a, "probe%d.bin", k);
    if (drv_generate(g, o, dir, NULL) != 0)
        goto clean;
    {
        Buf h = {0};
        char *up = arena_strdup(a, p);
        for (char *c = up; *c; c++)
            if (*c >= 'a' && *c <= 'z')
                *c = (char)(*c - 'a' + 'A');
        buf_printf(&h, "/* Driver program written by snnc run: raw float32 files in and out. */\n");
        buf_printf(&h, "#include \"%s.h\"\n", p);
        buf_printf(&h, "#define F(x) %s_##x\n#define M(x) %s_##x\n", p, up);
        buf_printf(&h, "#define HAVE_WEIGHTS %d\n#define PROBE_SIZES", g->params.len > 0);
        for (int k = 0; k < g->probes.len; k++)
            buf_printf(&h, " %lld,", (long long)g->probes.items[k].count);
        buf_printf(&h, "\n%s", harness_src);
        char *hp = arena_printf(a, "%s/harness.c", dir);
        int bad = drv_write(hp, h.data, h.len);
        buf_free(&h);
        if (bad)
            goto clean;
    }
    {
        char *ip = arena_printf(a, "%s/input.bin", dir);
        if (drv_write(ip, (const char *)x.data, x.count * sizeof(float)) != 0)
            goto clean;
    }
    {
        const char *cc = o->cc ? o->cc : getenv("CC") && *getenv("CC") ? getenv("CC") : "cc";
        char *argv[] = {(char *)cc, "-std=c99", "-O2", "-o", arena_printf(a, "%s/model", dir),
                        arena_printf(a, "%s/%s.c", dir, p), arena_printf(a, "%s/harness.c", dir),
                        "-lm", NULL};
        if (drv_run_program(argv, "the C compiler") != 0)
            goto clean;
    }
    {
        char *argv[8 + MAX_RECORDS];
        int n = 0;
        argv[n++] = arena_printf(a, "%s/model", dir);
        argv[n++] = (char *)(o->weights ? o->weights : "-");
        argv[n++] = o->init ? arena_printf(a, "%llu", o->seed) : "-";
        argv[n++] = arena_printf(a, "%d", o->batch);
        argv[n++] = arena_printf(a, "%s/input.bin", dir);
        argv[n++] = arena_printf(a, "%s/output.bin", dir);
        for (int k = 0; k < g->probes.len; k++)
            argv[n++] = arena_printf(a, "%s/probe%d.bin", dir, k);
        argv[n] = NULL;
        if (o->weights && o->weights[0] == '-') {
            error_plain("%s: weight file names may not start with '-'", o->weights);
            goto clean;
        }
        if (drv_run_program(argv, "the generated program") != 0)
            goto clean;
    }
    {
        /* results: output, then each record */
        const IrNode *on = &g->nodes.items[g->output];
        SnnrtTensor y;
        memset(&y, 0, sizeof y);
        int steps = g->readout == RO_STEPS;
        if (steps)
            y.shape[y.ndim++] = g->timesteps;
        y.shape[y.ndim++] = o->batch;
        for (int k = 0; k < on->shape.ndim; k++)
            y.shape[y.ndim++] = on->shape.d[k];
        y.count = (size_t)(steps ? g->timesteps : 1) * (size_t)o->batch * (size_t)shape_count(&on->shape);
        y.data = malloc(y.count * sizeof(float) + 1);
        SnnrtTensor *outs = calloc((size_t)g->probes.len + 1, sizeof *outs);
        int ok = y.data && outs &&
                 read_raw(arena_printf(a, "%s/output.bin", dir), y.data, y.count) == 0;
        for (int k = 0; ok && k < g->probes.len; k++) {
            const IrProbe *pr = &g->probes.items[k];
            SnnrtTensor *t = &outs[k];
            const Shape *s = &g->nodes.items[pr->node].shape;
            t->shape[t->ndim++] = g->timesteps;
            t->shape[t->ndim++] = o->batch;
            for (int d = 0; d < s->ndim; d++)
                t->shape[t->ndim++] = s->d[d];
            t->count = (size_t)g->timesteps * (size_t)o->batch * (size_t)pr->count;
            t->data = malloc(t->count * sizeof(float) + 1);
            ok = t->data && read_raw(arena_printf(a, "%s/probe%d.bin", dir, k), t->data, t->count) == 0;
        }
        if (!ok)
            error_plain("the generated program's results are incomplete");
        /* write everything or nothing: each result goes to a temporary
           file beside its target, and only when all are written are they
           renamed over their targets, so a failure changes no file */
        const char *dst[1 + MAX_RECORDS], *tmp[1 + MAX_RECORDS];
        const SnnrtTensor *val[1 + MAX_RECORDS];
        int nr = 0, nw = 0;
        dst[nr] = o->npy_out;
        val[nr++] = &y;
        for (int k = 0; k < g->probes.len; k++) {
            dst[nr] = o->records[k].file;
            val[nr++] = &outs[k];
        }
        for (int k = 0; ok && k < nr; k++) {
            const char *slash = strrchr(dst[k], '/');
            int dl = slash ? (int)(slash - dst[k]) + 1 : 0;
            tmp[k] = arena_printf(a, "%.*s.%s.part%ld.%d", dl, dst[k], dst[k] + dl, (long)getpid(), k);
            if (snnrt_npy_write(tmp[k], val[k], err, sizeof err) != 0) {
                error_plain("%s: cannot write: %s", dst[k], err);
                ok = 0;
            } else
                nw++;
        }
        for (int k = 0; ok && k < nr; k++)
            if (rename(tmp[k], dst[k]) != 0) {
                error_plain("%s: cannot write: %s", dst[k], strerror(errno));
                ok = 0;
            } else
                tmp[k] = NULL;
        for (int k = 0; k < nw; k++)
            if (tmp[k])
                unlink(tmp[k]);
        for (int k = 0; k < g->probes.len; k++)
            free(outs[k].data);
        free(outs);
        free(y.data);
        if (ok)
            rc = 0;
    }
clean:
    if (!o->keep)
        remove_tree(dir, files, nfiles);
out:
    snnrt_tensor_free(&x);
    return rc;
}

