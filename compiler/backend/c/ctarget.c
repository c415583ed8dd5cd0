/*
 * ctarget.c: the portable C target: its table of kernels, and how its code
 * is built and loaded for snnc run, train and grad.
 *
 * The table is generated from ops.def: every op names its forward and
 * backward emitter below (C_FWD_<OP>, C_BWD_<OP>), so an op added to the
 * list without kernels here does not compile. Ops that run no code (the
 * input, flatten, reshape) have none.
 *
 * Building: the generated files go to a private temporary folder (or
 * --keep-build DIR) and are compiled into a shared object with
 *   $CC -std=c99 -O3 -march=native -ffp-contract=off -fno-trapping-math
 *       -fPIC -shared [-fopenmp] -o <net>.so <net>.c -lm
 * where the C compiler is --cc, else $CC, else cc. -O2 instead of -O3 for
 * a short run (LoadOptions.quick): GCC builds about three times sooner,
 * and the code, slower by 10 to 75 %, computes the same values (nothing
 * here lets an optimization change a result). -march=native: the code
 * runs on this machine only. -ffp-contract=off: no fused multiply-add, so
 * the results are those of the portable code built anywhere (GCC contracts
 * nothing under -std=c99, but clang does by default). -fno-trapping-math:
 * the comparisons of the neuron loops may be computed for every element,
 * which lets compilers vectorize them; no value changes. -fopenmp unless
 * --threads 1, when the compiler can link OpenMP programs (checked once),
 * else the code runs on one thread and snnc says so. The shared object is
 * loaded with dlopen and stays loaded; the temporary folder is removed as
 * soon as it is loaded (a loaded object needs no file), so that a run
 * stopped later (Ctrl-C in a long training, a kill) leaves nothing in
 * $TMPDIR; a signal that ends snnc while it writes or compiles the code
 * (SIGINT, SIGTERM, SIGHUP) removes the folder first. A run that builds
 * what an earlier one built takes the object from the build cache
 * (cache.c) instead of compiling.
 */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "c.h"

#define C_FWD_INPUT NULL
#define C_BWD_INPUT NULL
#define C_FWD_DENSE ck_dense_fwd
#define C_BWD_DENSE ck_dense_bwd
#define C_FWD_CONV2D ck_conv_fwd
#define C_BWD_CONV2D ck_conv_bwd
#define C_FWD_MAXPOOL ck_pool_fwd
#define C_BWD_MAXPOOL ck_pool_bwd
#define C_FWD_AVGPOOL ck_pool_fwd
#define C_BWD_AVGPOOL ck_pool_bwd
#define C_FWD_FLATTEN NULL
#define C_FWD_RESHAPE NULL
#define C_BWD_FLATTEN NULL
#define C_BWD_RESHAPE NULL
#define C_FWD_ADD ck_eltwise_fwd
#define C_BWD_ADD ck_eltwise_bwd
#define C_FWD_SCALE ck_eltwise_fwd
#define C_BWD_SCALE ck_eltwise_bwd
#define C_FWD_BATCHNORM ck_batchnorm_fwd
#define C_BWD_BATCHNORM ck_batchnorm_bwd
#define C_FWD_DROPOUT ck_eltwise_fwd
#define C_BWD_DROPOUT ck_eltwise_bwd
#define C_FWD_IDENTITY ck_eltwise_fwd
#define C_BWD_IDENTITY ck_eltwise_bwd
#define C_FWD_NEURON cn_neuron_fwd
#define C_BWD_NEURON cn_neuron_bwd
#define C_FWD_DELAY ck_delay_fwd
#define C_BWD_DELAY ck_delay_bwd

const TargetKernels ck_kernels[IR_NUM_OPS] = {
#define OP(id, name, nin, kernel, sig, doc) [IR_##id] = {C_FWD_##id, C_BWD_##id},
#include "ops.def"
#undef OP
};

/* ---- building and loading ---- */

typedef struct CModel {
    void *so;
    const char *dir, *c_file, *h_file, *so_file;
    const char *scratch[3]; /* dir's scratch_names */
    int keep;
} CModel;

/* What else a build writes in its folder: the headers the compiler read
   (cbuild_compile), the OpenMP question's source and object. */
enum { DEPS, OMP_SRC, OMP_SO };
static const char *const scratch_names[] = {"deps.mk", "omp_probe.c", "omp_probe.so"};

/* Removes a temporary build folder and what snnc wrote in it; only
   unlink and rmdir, so that a signal handler can call it. */
static void remove_build(const CModel *cm) {
    const char *files[] = {cm->c_file, cm->h_file, cm->so_file, cm->scratch[0], cm->scratch[1], cm->scratch[2]};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        if (files[i])
            unlink(files[i]);
    rmdir(cm->dir);
}

/* The temporary folder being written and compiled, if any, and the
   actions of the signals that would end snnc meanwhile (ours only where
   they were the default: a parent that ignores SIGHUP keeps that). */
static const int ending[] = {SIGINT, SIGTERM, SIGHUP};
static CModel *volatile building;
static volatile sig_atomic_t compiling; /* the compiler's process id while it runs */
static struct sigaction before[sizeof ending / sizeof ending[0]];

/* The compiler gets the signal too and is waited for, so that it writes
   nothing into the folder after it is removed. */
static void on_ending(int sig) {
    CModel *cm = building;
    pid_t cc = (pid_t)compiling;
    if (cc > 0) {
        kill(cc, sig);
        waitpid(cc, NULL, 0);
    }
    if (cm)
        remove_build(cm);
    signal(sig, SIG_DFL);
    raise(sig); /* ends snnc as the signal would have, once this returns */
}

static void guard_build(CModel *cm) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_ending;
    sigemptyset(&sa.sa_mask);
    building = cm;
    for (size_t i = 0; i < sizeof ending / sizeof ending[0]; i++)
        if (sigaction(ending[i], NULL, &before[i]) == 0 && before[i].sa_handler == SIG_DFL)
            sigaction(ending[i], &sa, NULL);
}

/* The folder is gone (or kept): the signals act as before. */
static void unguard_build(CModel *cm) {
    if (building != cm)
        return;
    for (size_t i = 0; i < sizeof ending / sizeof ending[0]; i++)
        if (before[i].sa_handler == SIG_DFL)
            sigaction(ending[i], &before[i], NULL);
    building = NULL;
}

/* The temporary folder of a build: removed, and no longer guarded. */
static void drop_build(CModel *cm) {
    if (!cm->dir || cm->keep)
        return;
    remove_build(cm);
    unguard_build(cm);
    cm->dir = NULL;
}

int cbuild_run(char *const argv[], int quiet, const char *what) {
    pid_t pid = fork();
    if (pid < 0) {
        error_plain("cannot start %s: %s", what, strerror(errno));
        return -1;
    }
    if (pid == 0) {
        if (quiet) {
            int fd = open("/dev/null", O_WRONLY);
            if (fd >= 0) {
                dup2(fd, 1);
                dup2(fd, 2);
            }
        }
        execvp(argv[0], argv); /* which resets the signals snnc handles */
        if (!quiet)
            fprintf(stderr, "snnc: error: cannot run '%s': %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    int status, waited;
    compiling = pid;
    while ((waited = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
        ;
    compiling = 0;
    if (waited < 0) {
        error_plain("waiting for %s: %s", what, strerror(errno));
        return -1;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (quiet)
        return -1;
    if (WIFSIGNALED(status))
        error_plain("%s was killed by signal %d", what, WTERMSIG(status));
    else /* 127: not started (not installed, or not on PATH) */
        error_plain("%s failed (exit status %d)%s", what, WEXITSTATUS(status),
                    WEXITSTATUS(status) == 127 && !target_llvm.missing
                        ? "; --target llvm builds the code in process, with no C compiler"
                        : "");
    return -1;
}

/* Whether cc builds a shared object with -fopenmp (asked once per compiler). */
static int cc_has_openmp(Arena *a, const char *cc, const char *dir) {
    static const char *asked;
    static int answer;
    if (asked && !strcmp(asked, cc))
        return answer;
    char *question[] = {(char *)cc, "-fopenmp", "-shared (whether it links)", NULL};
    const char *key = bcache_key(a, question, dir, NULL);
    if ((answer = bcache_answer(a, key)) >= 0) { /* asked by an earlier run */
        asked = cc;
        return answer;
    }
    const char *src = arena_printf(a, "%s/%s", dir, scratch_names[OMP_SRC]);
    const char *so = arena_printf(a, "%s/%s", dir, scratch_names[OMP_SO]);
    FILE *f = fopen(src, "w");
    if (!f)
        return 0;
    fputs("int snnc_omp_probe(int n);\nint snnc_omp_probe(int n)\n{\n    int s = 0, i;\n"
          "#pragma omp parallel for reduction(+ : s)\n    for (i = 0; i < n; i++)\n        s += i;\n"
          "    return s;\n}\n",
          f);
    fclose(f);
    char *argv[] = {(char *)cc, "-fopenmp", "-fPIC", "-shared", "-o", (char *)so, (char *)src, NULL};
    answer = cbuild_run(argv, 1, "the C compiler") == 0;
    unlink(src);
    unlink(so);
    asked = cc;
    bcache_keep_answer(a, key, answer);
    return answer;
}

int cbuild_compile(Arena *a, LoadedModel *m, char *const argv[], const char *what, int lists) {
    CModel *cm = m->handle;
    const char *files[] = {cm->c_file, cm->h_file, NULL};
    const char *key = bcache_key(a, argv, cm->dir, files);
    const char *depfile = key && lists ? arena_printf(a, "%s/%s", cm->dir, scratch_names[DEPS]) : NULL;
    if (key && bcache_get(a, key, cm->so_file) == 0) {
        void *so = dlopen(cm->so_file, RTLD_NOW | RTLD_LOCAL); /* an entry that does not load is built anew */
        if (so) {
            dlclose(so);
            return 0;
        }
        bcache_drop(a, key);
        unlink(cm->so_file);
    }
    if (depfile) { /* the same command, listing what it reads */
        int n = 0;
        while (argv[n])
            n++;
        char **with = arena_alloc(a, sizeof(char *) * (size_t)(n + 4));
        memcpy(with, argv, sizeof(char *) * (size_t)n);
        with[n] = "-MD";
        with[n + 1] = "-MF";
        with[n + 2] = (char *)depfile;
        argv = with;
    }
    int failed = cbuild_run(argv, 0, what) != 0;
    if (!failed)
        bcache_put(a, key, cm->so_file, depfile, cm->dir);
    if (depfile)
        unlink(depfile);
    return failed ? -1 : 0;
}

void cbuild_unload(LoadedModel *m) {
    CModel *cm = m->handle;
    if (!cm)
        return;
    if (cm->so)
        dlclose(cm->so);
    drop_build(cm);
    free(cm);
    memset(m, 0, sizeof *m);
}

static void *sym(CModel *cm, const char *p, const char *name, int required) {
    char full[256];
    snprintf(full, sizeof full, "%s_%s", p, name);
    void *f = dlsym(cm->so, full);
    if (!f && required)
        error_plain("the generated code has no symbol '%s'", full);
    return f;
}

static int write_all(const char *path, const Buf *b) {
    if (write_file_atomic(path, b->data ? b->data : "", b->len) != 0) {
        error_plain("%s: cannot write: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

int cbuild_write(const Target *t, const IrGraph *g, const LoadOptions *lo, LoadedModel *m, const char **prefix) {
    Arena *a = g->arena;
    memset(m, 0, sizeof *m);
    CModel *cm = calloc(1, sizeof *cm);
    if (!cm) {
        error_plain("out of memory");
        return -1;
    }
    m->handle = cm;
    if (lo->keep) {
        cm->dir = lo->keep;
        cm->keep = 1;
    } else {
        const char *tmpdir = getenv("TMPDIR");
        char *dir = arena_printf(a, "%s/snnc-build-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
        if (!mkdtemp(dir)) {
            error_plain("cannot create a temporary folder: %s", strerror(errno));
            cbuild_unload(m);
            return -1;
        }
        cm->dir = dir;
        for (int k = 0; k < 3; k++)
            cm->scratch[k] = arena_printf(a, "%s/%s", dir, scratch_names[k]);
        guard_build(cm);
    }
    CgenOptions co;
    memset(&co, 0, sizeof co);
    co.no_loader = 1; /* the driver fills the parameters */
    co.math = lo->math;
    co.precision = lo->precision;
    GenFile files[TARGET_MAX_FILES];
    int n = target_generate(t, g, &co, files);
    if (n < 0) {
        cbuild_unload(m);
        return -1;
    }
    int bad = 0;
    for (int i = 0; i < n; i++) {
        const char *path = arena_printf(a, "%s/%s", cm->dir, files[i].name);
        if (i == 0) /* named before it is written, for remove_build */
            cm->h_file = path;
        else
            cm->c_file = path;
        bad |= !bad && write_all(path, &files[i].text) != 0;
        buf_free(&files[i].text);
    }
    char *p = arena_strdup(a, files[0].name);
    *strrchr(p, '.') = 0;
    cm->so_file = arena_printf(a, "%s/%s.so", cm->dir, p);
    *prefix = p;
    if (bad) {
        cbuild_unload(m);
        return -1;
    }
    return 0;
}

const char *cbuild_source(const LoadedModel *m) { return ((const CModel *)m->handle)->c_file; }
const char *cbuild_object(const LoadedModel *m) { return ((const CModel *)m->handle)->so_file; }

int cbuild_open(const IrGraph *g, LoadedModel *m, const char *prefix, const char *api) {
    CModel *cm = m->handle;
    /* never unloaded: an OpenMP runtime that the code brought in keeps
       threads that would crash if their code went away */
    cm->so = dlopen(cm->so_file, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (!cm->so) {
        error_plain("cannot load the generated code: %s", dlerror());
        cbuild_unload(m);
        return -1;
    }
    drop_build(cm); /* loaded: the files are not read again */
    const char *p = *api ? arena_printf(g->arena, "%s_%s", prefix, api) : prefix;
    const long *iw = sym(cm, prefix, "workspace_floats", 1);
    const long *tw = g->train ? sym(cm, prefix, "train_workspace_floats", 1) : NULL;
    *(void **)&m->reset = sym(cm, p, "reset", 1);
    *(void **)&m->step = sym(cm, p, "step", 1);
    *(void **)&m->forward = sym(cm, p, "forward", 1);
    *(void **)&m->probe = g->probes.len ? sym(cm, p, "probe", 1) : NULL;
    *(void **)&m->seed = g->encoding == ENC_RATE ? sym(cm, p, "seed", 1) : NULL;
    if (g->train) {
        *(void **)&m->train_forward = sym(cm, p, "train_forward", 1);
        *(void **)&m->train_forward_at = sym(cm, p, "train_forward_at", 1);
        *(void **)&m->train_backward = sym(cm, p, "train_backward", 1);
        *(void **)&m->train_spikes = sym(cm, p, "train_spikes", 1);
        *(void **)&m->train_grads = sym(cm, p, "train_grads", 1);
    }
    if (!iw || !m->reset || !m->step || !m->forward || (g->probes.len && !m->probe) ||
        (g->train && (!tw || !m->train_forward || !m->train_forward_at || !m->train_backward || !m->train_spikes || !m->train_grads))) {
        cbuild_unload(m);
        return -1;
    }
    m->ws_floats = *iw;
    m->train_ws_floats = tw ? *tw : 0;
    return 0;
}

void *cbuild_sym(LoadedModel *m, const char *name) {
    CModel *cm = m->handle;
    void *f = cm && cm->so ? dlsym(cm->so, name) : NULL;
    if (!f)
        error_plain("the generated code has no symbol '%s'", name);
    return f;
}

int cbuild_load(const Target *t, const char *const *isa_flags, const IrGraph *g, const LoadOptions *lo,
                LoadedModel *m) {
    const char *prefix;
    if (cbuild_write(t, g, lo, m, &prefix) != 0)
        return -1;
    CModel *cm = m->handle;
    const char *cc = lo->cc ? lo->cc : getenv("CC") && *getenv("CC") ? getenv("CC") : "cc";
    int omp = lo->threads != 1 && cc_has_openmp(g->arena, cc, cm->dir);
    if (lo->threads != 1 && !omp)
        fprintf(stderr, "snnc: note: %s cannot build OpenMP code (-fopenmp); the generated code runs on one "
                        "thread\n", cc);
    char *argv[24];
    int na = 0;
    const char *flags[] = {"-std=c99", lo->quick ? "-O2" : "-O3", "-march=native", "-ffp-contract=off",
                           "-fno-trapping-math", "-fPIC", "-shared"};
    argv[na++] = (char *)cc;
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        argv[na++] = (char *)flags[i];
    for (int i = 0; isa_flags && isa_flags[i]; i++)
        argv[na++] = (char *)isa_flags[i];
    if (omp)
        argv[na++] = "-fopenmp";
    argv[na++] = "-o";
    argv[na++] = (char *)cm->so_file;
    argv[na++] = (char *)cm->c_file;
    argv[na++] = "-lm";
    argv[na] = NULL;
    if (cbuild_compile(g->arena, m, argv, "the C compiler", 1) != 0) {
        cbuild_unload(m);
        return -1;
    }
    return cbuild_open(g, m, prefix, "");
}

static int c_load(const IrGraph *g, const LoadOptions *lo, LoadedModel *m) {
    return cbuild_load(&target_c, NULL, g, lo, m);
}

const Target target_c = {
    .name = "c",
    .doc = "portable C99: the reference target, and the one for microcontrollers; OpenMP threads with -fopenmp",
    .kernels = ck_kernels,
    .begin = capi_begin,
    .gemm = ck_gemm,
    .conv = ck_conv,
    .api = capi_api,
    .finish = capi_finish,
    .load = c_load,
    .remat = 1,
    .unload = cbuild_unload,
};
