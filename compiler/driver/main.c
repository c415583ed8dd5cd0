/*
 * main.c: the snnc command line: compile, run, info.
 *
 * The pipeline is called from here in the order the design gives it:
 * read, parse (the built-in neuron library, then the user's file), sema,
 * passes, back end. Output files are built in memory and written only when
 * everything succeeded, each atomically, so a failed run leaves nothing
 * behind. `run` compiles the generated code with the system C compiler in a
 * temporary folder, runs it, and turns its raw results into .npy files.
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

extern const char snnc_stdlib_snn[];
extern const unsigned long snnc_stdlib_snn_len;

#define MAX_SOURCE (16u << 20)
#define MAX_RECORDS 32

typedef struct Record {
    const char *spec; /* LAYER or LAYER.VAR */
    const char *file;
} Record;

typedef struct Options {
    const char *cmd;
    const char *input_file; /* the model */
    const char *target;
    const char *outdir;
    const char *weights;
    const char *npy_in, *npy_out;
    const char *dot;
    const char *cc;
    const char *keep;
    int static_ws, embed, emit_ir, batch, init, list_passes;
    unsigned long long seed;
    SemaOptions sema;
    PassOptions passes;
    Record records[MAX_RECORDS];
    int nrecords;
} Options;

static void usage(FILE *f) {
    fputs("usage: snnc COMMAND MODEL.snn [options]\n"
          "\n"
          "commands:\n"
          "  compile   generate code: writes DIR/<net>.h and DIR/<net>.c\n"
          "  run       compile, build with the system C compiler, run on an input\n"
          "  info      layers, shapes, parameters, neurons, synaptic operations, memory\n"
          "\n"
          "common options:\n"
          "  --network NAME        the network to use when the file defines several\n"
          "  --timesteps N         override the network's timesteps\n"
          "  --batch N             largest batch the generated code accepts (default 1;\n"
          "                        run: the input's batch)\n"
          "  --emit-ir             print the IR after all passes and stop\n"
          "  --dump-ir=after:PASS  print the IR after PASS (or 'sema'); repeatable\n"
          "  --disable-pass=NAME   do not run an optional pass; repeatable\n"
          "  --dot FILE            write the graph as Graphviz\n"
          "  --list-passes, --list-targets, --help, --version\n"
          "\n"
          "compile options:\n"
          "  --target NAME         back end (default c)\n"
          "  -o DIR                output folder (default .)\n"
          "  --static              use a static workspace (functions accept NULL)\n"
          "  --embed-weights       embed the --weights file as const arrays\n"
          "  --weights FILE        safetensors weights (see docs/weights.md)\n"
          "  --record LAYER[.VAR]  keep a value of every step readable (<net>_probe)\n"
          "\n"
          "run options:\n"
          "  --input X.npy         [B, ...] for direct encoding, [T, B, ...] for sequence\n"
          "  --output Y.npy        the readout [B, ...], or [T, B, ...] for readout steps\n"
          "  --weights FILE        safetensors weights; a missing tensor is an error\n"
          "  --init SEED           initialize missing weights as PyTorch does (documented)\n"
          "  --record LAYER[.VAR]=FILE.npy   write a layer's output or a neuron variable\n"
          "                        over time as [T, B, ...]; repeatable\n"
          "  --cc CC               C compiler (default $CC, else cc)\n"
          "  --keep-build DIR      keep the generated program in DIR\n",
          f);
}

static int bad_usage(const char *fmt, const char *arg) {
    fputs("snnc: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs("\n(snnc --help for usage)\n", stderr);
    return 2;
}

static int parse_int(const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return 0;
    *out = v;
    return 1;
}

/* Returns 0 on success, or the exit status. */
static int parse_args(int argc, char **argv, Options *o) {
    memset(o, 0, sizeof *o);
    o->target = "c";
    o->outdir = ".";
    o->batch = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        long n;
#define NEEDV() do { if (!v) return bad_usage("option %s needs a value", a); i++; } while (0)
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(a, "--version")) {
            printf("snnc %s\n", SNNC_VERSION);
            exit(0);
        } else if (!strcmp(a, "--list-passes")) {
            for (int k = 0; k < pass_count; k++)
                printf("  %-9s %s%s\n", pass_table[k].name, pass_table[k].doc,
                       pass_table[k].required ? " (required)" : "");
            exit(0);
        } else if (!strcmp(a, "--list-targets")) {
            target_list(stdout);
            exit(0);
        } else if (!strcmp(a, "--target")) {
            NEEDV();
            o->target = v;
        } else if (!strcmp(a, "-o")) {
            NEEDV();
            o->outdir = v;
        } else if (!strcmp(a, "--static")) {
            o->static_ws = 1;
        } else if (!strcmp(a, "--embed-weights")) {
            o->embed = 1;
        } else if (!strcmp(a, "--weights")) {
            NEEDV();
            o->weights = v;
        } else if (!strcmp(a, "--input")) {
            NEEDV();
            o->npy_in = v;
        } else if (!strcmp(a, "--output")) {
            NEEDV();
            o->npy_out = v;
        } else if (!strcmp(a, "--init")) {
            NEEDV();
            char *end;
            errno = 0;
            o->seed = strtoull(v, &end, 10);
            if (errno || end == v || *end || *v == '-')
                return bad_usage("--init needs a non-negative integer seed, got '%s'", v);
            o->init = 1;
        } else if (!strcmp(a, "--network")) {
            NEEDV();
            o->sema.network = v;
        } else if (!strcmp(a, "--timesteps")) {
            NEEDV();
            if (!parse_int(v, 1, 1000000, &n))
                return bad_usage("--timesteps needs an integer from 1 to 1000000, got '%s'", v);
            o->sema.timesteps = (int)n;
        } else if (!strcmp(a, "--batch")) {
            NEEDV();
            if (!parse_int(v, 1, 1 << 20, &n))
                return bad_usage("--batch needs an integer from 1 to 1048576, got '%s'", v);
            o->batch = (int)n;
        } else if (!strcmp(a, "--emit-ir")) {
            o->emit_ir = 1;
        } else if (!strncmp(a, "--dump-ir=after:", 16)) {
            if (o->passes.ndump >= 16)
                return bad_usage("too many %s options", "--dump-ir");
            o->passes.dump_after[o->passes.ndump++] = a + 16;
        } else if (!strncmp(a, "--disable-pass=", 15)) {
            if (o->passes.ndisabled >= 16)
                return bad_usage("too many %s options", "--disable-pass");
            o->passes.disabled[o->passes.ndisabled++] = a + 15;
        } else if (!strcmp(a, "--dot")) {
            NEEDV();
            o->dot = v;
        } else if (!strcmp(a, "--cc")) {
            NEEDV();
            o->cc = v;
        } else if (!strcmp(a, "--keep-build")) {
            NEEDV();
            o->keep = v;
        } else if (!strcmp(a, "--record")) {
            NEEDV();
            if (o->nrecords >= MAX_RECORDS)
                return bad_usage("at most 32 --record options, got more at '%s'", v);
            Record *r = &o->records[o->nrecords++];
            char *eq = strchr(v, '=');
            r->spec = v;
            r->file = NULL;
            if (eq) {
                *eq = 0;
                r->file = eq + 1;
            }
        } else if (a[0] == '-' && a[1]) {
            return bad_usage("unknown option '%s'", a);
        } else if (!o->cmd) {
            o->cmd = a;
        } else if (!o->input_file) {
            o->input_file = a;
        } else
            return bad_usage("unexpected argument '%s'", a);
#undef NEEDV
    }
    if (!o->cmd) {
        usage(stderr);
        return 2;
    }
    if (strcmp(o->cmd, "compile") && strcmp(o->cmd, "run") && strcmp(o->cmd, "info"))
        return bad_usage("unknown command '%s' (compile, run or info)", o->cmd);
    if (!o->input_file)
        return bad_usage("%s needs a model file", o->cmd);
    if (!strcmp(o->cmd, "run")) {
        if (!o->npy_in || !o->npy_out)
            return bad_usage("%s needs --input X.npy and --output Y.npy", "run");
        if (!o->weights && !o->init)
            return bad_usage("%s needs --weights FILE or --init SEED (or both)", "run");
        for (int k = 0; k < o->nrecords; k++)
            if (!o->records[k].file || !*o->records[k].file)
                return bad_usage("--record needs LAYER[.VAR]=FILE.npy with run, got '%s'",
                                 o->records[k].spec);
    }
    if (!strcmp(o->cmd, "compile") && o->embed && !o->weights)
        return bad_usage("%s needs --weights FILE", "--embed-weights");
    return 0;
}

/* ---- front end ---- */

/* Read, parse and check the model: the graph before any pass. */
static IrGraph *front_end(Arena *a, Options *o) {
    size_t len;
    char *text = read_file(o->input_file, &len, MAX_SOURCE);
    if (!text) {
        if (errno == EFBIG)
            error_plain("%s: file is larger than %u bytes", o->input_file, MAX_SOURCE);
        else
            error_plain("%s: %s", o->input_file, strerror(errno));
        return NULL;
    }
    if (memchr(text, 0, len)) {
        error_plain("%s: not a text file (contains a NUL byte)", o->input_file);
        free(text);
        return NULL;
    }
    int sf = src_add("<stdlib>/neurons.snn", snnc_stdlib_snn, snnc_stdlib_snn_len);
    Node *std = parse_source(a, sf, snnc_stdlib_snn, snnc_stdlib_snn_len);
    if (diag_errors())
        ICE("the built-in neuron library does not parse");
    int uf = src_add(o->input_file, text, len);
    free(text);
    Node *user = parse_source(a, uf, src_text(uf), len);
    if (diag_errors())
        return NULL;
    return sema_build(a, std, user, &o->sema);
}

/* The batch, the records, and the passes. */
static IrGraph *middle_end(Arena *a, Options *o, IrGraph *g) {
    g->batch = o->batch > 0 ? o->batch : 1;
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

static int ensure_dir(const char *dir) {
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

static int write_out(const char *path, const char *data, size_t len) {
    if (write_file_atomic(path, data, len) != 0) {
        error_plain("%s: cannot write: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* Reads the weights for --embed-weights into one block in memplan order. */
static float *load_embedded(const IrGraph *g, const char *path) {
    char err[512];
    SnnrtStFile f;
    if (snnrt_st_read(path, &f, err, sizeof err) != 0) {
        error_plain("%s", err);
        return NULL;
    }
    float *w = calloc((size_t)g->param_floats + 1, sizeof(float));
    int ok = w != NULL;
    for (int i = 0; ok && i < g->params.len; i++) {
        const IrParam *q = &g->params.items[i];
        const SnnrtStEntry *e = snnrt_st_find(&f, q->name);
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
    if (!ok) {
        free(w);
        return NULL;
    }
    return w;
}

static int generate(const IrGraph *g, Options *o, const char *dir, const float *embedded) {
    const Target *t = target_lookup(o->target);
    if (!t) {
        error_plain("unknown target '%s' (see snnc --list-targets)", o->target);
        return -1;
    }
    CgenOptions co;
    memset(&co, 0, sizeof co);
    co.static_ws = o->static_ws;
    co.embedded = embedded;
    GenFile files[4];
    int n = t->generate(g, &co, files);
    if (n < 0)
        return -1;
    int rc = ensure_dir(dir);
    for (int i = 0; rc == 0 && i < n; i++) {
        char *path = arena_printf(g->arena, "%s/%s", dir, files[i].name);
        rc = write_out(path, files[i].text.data, files[i].text.len);
    }
    for (int i = 0; i < n; i++)
        buf_free(&files[i].text);
    return rc;
}

/* ---- info ---- */

static void info(const IrGraph *g) {
    const IrNode *in = &g->nodes.items[g->input];
    printf("network %s: %d timesteps, input %s %s (%s), output %s readout %s\n", g->name,
           g->timesteps, in->name, shape_str(g->arena, &in->shape), encoding_names[g->encoding],
           g->nodes.items[g->output].name, readout_names[g->readout]);
    printf("\n%-20s %-10s %-14s %12s %10s %14s\n", "layer", "op", "shape", "parameters", "neurons",
           "synops/step");
    int64_t tp = 0, tn = 0, ts = 0;
    for (int i = 0; i < g->nodes.len; i++) {
        const IrNode *n = &g->nodes.items[i];
        if (n->dead)
            continue;
        int64_t params = 0, neurons = 0, syn = 0, cnt = shape_count(&n->shape);
        for (int k = 0; k < g->params.len; k++)
            if (g->params.items[k].node == i)
                params += g->params.items[k].count;
        if (n->op == IR_NEURON)
            neurons = cnt;
        if (n->op == IR_DENSE)
            syn = cnt * g->nodes.items[n->in[0]].shape.d[0];
        if (n->op == IR_CONV2D)
            syn = cnt * (g->nodes.items[n->in[0]].shape.d[0] / n->groups) * n->kernel[0] * n->kernel[1];
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
    int64_t per = g->persist_floats + g->pool_floats;
    printf("inference memory (batch %d): workspace %lld bytes = parameters %lld + states and kept "
           "values %lld + activations %lld; independent of the %d timesteps\n",
           g->batch, (long long)((g->param_floats + g->batch * per) * 4), (long long)(g->param_floats * 4),
           (long long)(g->batch * g->persist_floats * 4), (long long)(g->batch * g->pool_floats * 4),
           g->timesteps);
}

/* ---- run ---- */

static int run_program(char *const argv[], const char *what) {
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

static char *lower_name(Arena *a, const char *s) {
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
static int check_result_path(Arena *a, const char *path) {
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

static int cmd_run(Arena *a, Options *o) {
    char err[1024];
    SnnrtTensor x;
    memset(&x, 0, sizeof x);
    int unwritable = check_result_path(a, o->npy_out);
    for (int k = 0; k < o->nrecords; k++)
        unwritable |= check_result_path(a, o->records[k].file);
    if (unwritable)
        return 1;
    if (snnrt_npy_read(o->npy_in, &x, err, sizeof err) != 0) {
        error_plain("%s", err);
        return 1;
    }
    /* the batch comes from the input; its layout is checked after sema */
    IrGraph *g = NULL;
    int rc = 1;
    {
        IrGraph *g0 = front_end(a, o);
        if (!g0)
            goto out;
        const Shape *is = &g0->nodes.items[g0->input].shape;
        int seq = g0->encoding == ENC_SEQUENCE;
        int want = is->ndim + 1 + seq;
        int ok = x.ndim == want;
        if (ok && seq && x.shape[0] != g0->timesteps)
            ok = 0;
        for (int k = 0; ok && k < is->ndim; k++)
            ok = x.shape[1 + seq + k] == is->d[k];
        if (!ok || x.shape[seq] < 1 || x.shape[seq] > (1 << 20)) {
            const char *got = "[";
            for (int k = 0; k < x.ndim; k++)
                got = arena_printf(a, "%s%s%lld", got, k ? "," : "", x.shape[k]);
            error_plain("%s: input has shape %s]; network %s expects %s%s (%s encoding)", o->npy_in,
                        got, g0->name,
                        seq ? arena_printf(a, "[%d, B, ", g0->timesteps) : "[B, ",
                        shape_str(a, is) + 1, encoding_names[g0->encoding]);
            goto out;
        }
        o->batch = (int)x.shape[seq];
        g = middle_end(a, o, g0);
        if (!g)
            goto out;
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
        if (ensure_dir(o->keep) != 0)
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
    const char *p = lower_name(a, g->name);
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
    if (generate(g, o, dir, NULL) != 0)
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
        int bad = write_out(hp, h.data, h.len);
        buf_free(&h);
        if (bad)
            goto clean;
    }
    {
        char *ip = arena_printf(a, "%s/input.bin", dir);
        if (write_out(ip, (const char *)x.data, x.count * sizeof(float)) != 0)
            goto clean;
    }
    {
        const char *cc = o->cc ? o->cc : getenv("CC") && *getenv("CC") ? getenv("CC") : "cc";
        char *argv[] = {(char *)cc, "-std=c99", "-O2", "-o", arena_printf(a, "%s/model", dir),
                        arena_printf(a, "%s/%s.c", dir, p), arena_printf(a, "%s/harness.c", dir),
                        "-lm", NULL};
        if (run_program(argv, "the C compiler") != 0)
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
        if (run_program(argv, "the generated program") != 0)
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

int main(int argc, char **argv) {
    Options o;
    int rc = parse_args(argc, argv, &o);
    if (rc)
        return rc;
    Arena arena = {0};
    if (!strcmp(o.cmd, "run")) {
        rc = cmd_run(&arena, &o);
        arena_free(&arena);
        return rc;
    }
    IrGraph *g = front_end(&arena, &o);
    if (g)
        g = middle_end(&arena, &o, g);
    if (!g)
        goto fail;
    if (o.dot) {
        Buf b = {0};
        ir_dot(g, &b);
        int bad = write_out(o.dot, b.data, b.len);
        buf_free(&b);
        if (bad)
            goto fail;
    }
    if (!strcmp(o.cmd, "info")) {
        info(g);
    } else if (o.emit_ir) {
        Buf b = {0};
        ir_print(g, &b);
        fwrite(b.data, 1, b.len, stdout);
        buf_free(&b);
    } else {
        float *w = NULL;
        if (o.embed && !(w = load_embedded(g, o.weights)))
            goto fail;
        int bad = generate(g, &o, o.outdir, w);
        free(w);
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
