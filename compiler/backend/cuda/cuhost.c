/*
 * cuhost.c: how snnc run and grad use the cuda target: the host API that
 * the target adds to <net>.cu when snnc itself loads the code, and the
 * build with nvcc.
 *
 * snnc's driver calls every target through LoadedModel, whose functions
 * take host memory (the workspace too). The host API adapts the device
 * API to that: <net>_host_forward(ws, batch, input, output) and the others
 * keep a device copy of each workspace they are given (inference and
 * training apart), copy the host workspace and the inputs to the device,
 * call the device API on a stream of their own, and copy the outputs and
 * the workspace back, so that the host workspace always holds what the
 * device's does (the driver reads records and gradients from it, and
 * writes the parameters into it). That is two copies of the workspace a
 * call: right for a tool that runs a few calls (snnc run, snnc grad), not
 * for a training loop, which should keep everything on the device;
 * snnc train refuses the target (docs/targets.md).
 *
 * Building: nvcc -O3 -arch=native -fmad=false -Xcompiler -fPIC -shared
 * -Xlinker -rpath=<nvcc's folder>/../lib64 -o <net>.so <net>.cu -lcublas,
 * with nvcc from $CUDACXX, else PATH, else $CUDA_HOME/bin, else
 * /usr/local/cuda/bin (the rpath: the toolkit's cuBLAS is found when the
 * code is loaded, whether the loader's path has it or not). With SNNC_CUDA_EMULATE set in
 * the environment (not empty, not 0), snnc builds the same file with the
 * C compiler and -DSNNC_CUDA_EMULATE instead and runs it on the CPU, GPU
 * or not: how the host API and the loader are tested without a GPU.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cuda.h"

/* ---- the host API, in <net>.cu ---- */

/* One host function: `sig` its parameters after the name, `kind` the
   workspace (0 inference, 1 training), `pre` and `post` the statements
   around the device call `call` (which returns the device API's status). */
static void host_fn(Emit *e, const char *ret, const char *name, const char *sig, int kind, const char *pre,
                    const char *call, const char *post) {
    cg_blank(e);
    cg_line(e, "%s_HOST %s %s_host_%s(%s)", e->P, ret, e->p, name, sig);
    cg_line(e, "{");
    e->ind++;
    cg_line(e, "float *dws = %s_h_in(%d, ws);", e->p, kind);
    if (*pre)
        cg_line(e, "%s", pre);
    cg_line(e, "%s_h_check(%s, \"%s\");", e->p, call, name);
    if (*post)
        cg_line(e, "%s", post);
    cg_line(e, "%s_h_out(%d, ws);", e->p, kind);
    e->ind--;
    cg_line(e, "}");
}

void cu_host_api(Emit *e) {
    const IrGraph *g = e->g;
    const char *p = e->p, *P = e->P;
    const char *nin = arena_printf(g->arena, "(size_t)(%s_INPUT_SEQUENCE ? %s_TIMESTEPS : 1) * (size_t)batch * %s_INPUT_SIZE",
                                   P, P, P);
    const char *nout = arena_printf(g->arena, "(size_t)(%s_OUTPUT_STEPS ? %s_TIMESTEPS : 1) * (size_t)batch * %s_OUTPUT_SIZE",
                                    P, P, P);
    const char *nsteps = arena_printf(g->arena, "(size_t)%s_TIMESTEPS * (size_t)batch * %s_OUTPUT_SIZE", P, P);
    const char *nstep = arena_printf(g->arena, "(size_t)batch * %s_OUTPUT_SIZE", P);
    cg_blank(e);
    cg_line(e, "/* ---- the host API: how snnc run and grad call this code (compiler/backend/cuda/cuhost.c) ----");
    cg_line(e, "   Host memory in and out, as the portable target's API: each function copies the");
    cg_line(e, "   host workspace and the inputs to the device, calls the device API on a stream of");
    cg_line(e, "   its own, and copies the outputs and the workspace back. A failure is reported and");
    cg_line(e, "   ends the program. */");
    cg_line(e, "#ifdef __cplusplus");
    cg_line(e, "#define %s_HOST extern \"C\"", P);
    cg_line(e, "#else");
    cg_line(e, "#define %s_HOST", P);
    cg_line(e, "#endif");
    cg_blank(e);
    cg_line(e, "static struct {");
    cg_line(e, "    float *ws[2], *in, *out; /* device memory: the workspaces, an input and an output */");
    cg_line(e, "    size_t ws_cap[2], in_cap, out_cap; /* their floats */");
    cg_line(e, "    cudaStream_t st;");
    cg_line(e, "    cublasHandle_t blas;");
    cg_line(e, "    int ready;");
    cg_line(e, "} %s_h;", p);
    cg_blank(e);
    cg_line(e, "static void %s_h_fail(const char *what, const char *why)", p);
    cg_line(e, "{");
    cg_line(e, "    fprintf(stderr, \"snnc: error: the cuda target's code: %%s: %%s\\n\", what, why);");
    cg_line(e, "    exit(1);");
    cg_line(e, "}");
    cg_blank(e);
    cg_line(e, "/* A device API function's status: 0, else the end. */");
    cg_line(e, "static void %s_h_check(int rc, const char *what)", p);
    cg_line(e, "{");
    cg_line(e, "#ifdef SNNC_CUDA_EMULATE");
    cg_line(e, "    if (rc != 0)");
    cg_line(e, "        %s_h_fail(what, \"failed\");", p);
    cg_line(e, "#else");
    cg_line(e, "    if (rc == 0)");
    cg_line(e, "        rc = (int)cudaStreamSynchronize(%s_h.st);", p);
    cg_line(e, "    if (rc != 0)");
    cg_line(e, "        %s_h_fail(what, rc < 0 ? \"a cuBLAS call failed\" : cudaGetErrorString((cudaError_t)rc));", p);
    cg_line(e, "#endif");
    cg_line(e, "}");
    cg_blank(e);
    cg_line(e, "/* *buf, made at least n floats of device memory (its old contents are lost). */");
    cg_line(e, "static float *%s_h_grow(float **buf, size_t *cap, size_t n)", p);
    cg_line(e, "{");
    cg_line(e, "    if (*cap < n) {");
    cg_line(e, "#ifdef SNNC_CUDA_EMULATE");
    cg_line(e, "        free(*buf);");
    cg_line(e, "        *buf = (float *)malloc(n * sizeof(float));");
    cg_line(e, "        if (!*buf)");
    cg_line(e, "            %s_h_fail(\"malloc\", \"out of memory\");", p);
    cg_line(e, "#else");
    cg_line(e, "        cudaError_t err;");
    cg_line(e, "        cudaFree(*buf);");
    cg_line(e, "        *buf = NULL;");
    cg_line(e, "        if ((err = cudaMalloc((void **)buf, n * sizeof(float))) != cudaSuccess)");
    cg_line(e, "            %s_h_fail(\"cudaMalloc\", cudaGetErrorString(err));", p);
    cg_line(e, "#endif");
    cg_line(e, "        *cap = n;");
    cg_line(e, "    }");
    cg_line(e, "    return *buf;");
    cg_line(e, "}");
    cg_blank(e);
    cg_line(e, "/* The device copy of workspace `kind` (0 inference, 1 training), set to the host's. */");
    cg_line(e, "static float *%s_h_in(int kind, const void *ws)", p);
    cg_line(e, "{");
    cg_line(e, "    const size_t n = kind ? (size_t)%s : (size_t)%s_WORKSPACE_FLOATS;",
            g->train ? arena_printf(g->arena, "%s_TRAIN_WORKSPACE_FLOATS", P) : "0", P);
    cg_line(e, "    if (!%s_h.ready) {", p);
    cg_line(e, "#ifndef SNNC_CUDA_EMULATE");
    cg_line(e, "        cudaError_t err = cudaStreamCreate(&%s_h.st);", p);
    cg_line(e, "        if (err != cudaSuccess)");
    cg_line(e, "            %s_h_fail(\"cudaStreamCreate\", cudaGetErrorString(err));", p);
    cg_line(e, "        if (cublasCreate(&%s_h.blas) != CUBLAS_STATUS_SUCCESS)", p);
    cg_line(e, "            %s_h_fail(\"cublasCreate\", \"failed\");", p);
    cg_line(e, "#endif");
    cg_line(e, "        %s_h.ready = 1;", p);
    cg_line(e, "    }");
    cg_line(e, "    %s_h_grow(&%s_h.ws[kind], &%s_h.ws_cap[kind], n);", p, p, p);
    cg_line(e, "    %s_copy(%s_h.ws[kind], ws, n * sizeof(float), %s_h.st);", p, p, p);
    cg_line(e, "    return %s_h.ws[kind];", p);
    cg_line(e, "}");
    cg_blank(e);
    cg_line(e, "/* The host workspace set to the device's, after the call. */");
    cg_line(e, "static void %s_h_out(int kind, void *ws)", p);
    cg_line(e, "{");
    cg_line(e, "    %s_copy(ws, %s_h.ws[kind], %s_h.ws_cap[kind] * sizeof(float), %s_h.st);", p, p, p, p);
    cg_line(e, "    %s_sync(%s_h.st);", p, p);
    cg_line(e, "}");
    cg_blank(e);
    cg_line(e, "/* n floats of host memory on the device, in *buf (NULL for NULL). */");
    cg_line(e, "static float *%s_h_put(float **buf, size_t *cap, const float *host, size_t n)", p);
    cg_line(e, "{");
    cg_line(e, "    if (!host)");
    cg_line(e, "        return NULL;");
    cg_line(e, "    %s_h_grow(buf, cap, n);", p);
    cg_line(e, "    %s_copy(*buf, host, n * sizeof(float), %s_h.st);", p, p);
    cg_line(e, "    return *buf;");
    cg_line(e, "}");
    cg_blank(e);
    cg_line(e, "/* Device output space of n floats, or NULL where the host wants none. */");
    cg_line(e, "static float *%s_h_room(const float *host, size_t n)", p);
    cg_line(e, "{");
    cg_line(e, "    return host ? %s_h_grow(&%s_h.out, &%s_h.out_cap, n) : NULL;", p, p, p);
    cg_line(e, "}");
    cg_blank(e);
    cg_line(e, "/* The n floats of the device output back to host (where not NULL). */");
    cg_line(e, "static void %s_h_get(float *host, size_t n)", p);
    cg_line(e, "{");
    cg_line(e, "    if (host)");
    cg_line(e, "        %s_copy(host, %s_h.out, n * sizeof(float), %s_h.st);", p, p, p);
    cg_line(e, "}");

    const char *put_in = arena_printf(g->arena, "const float *din = %s_h_put(&%s_h.in, &%s_h.in_cap, input, %s);", p, p,
                                      p, nin);
    host_fn(e, "void", "reset", "void *ws, int batch", 0, "", arena_printf(g->arena, "%s_reset(dws, batch, %s_h.st)", p, p),
            "");
    host_fn(e, "void", "step", "void *ws, int batch, const float *input, float *output", 0,
            arena_printf(g->arena, "const float *din = %s_h_put(&%s_h.in, &%s_h.in_cap, input, (size_t)batch * %s_INPUT_SIZE);\n"
                                   "    float *dout = %s_h_room(output, %s);",
                         p, p, p, P, p, nstep),
            arena_printf(g->arena, "%s_step(dws, batch, din, dout, %s_h.st, %s_h.blas)", p, p, p),
            arena_printf(g->arena, "%s_h_get(output, %s);", p, nstep));
    host_fn(e, "void", "forward", "void *ws, int batch, const float *input, float *output", 0,
            arena_printf(g->arena, "%s\n    float *dout = %s_h_room(output, %s);", put_in, p, nout),
            arena_printf(g->arena, "%s_forward(dws, batch, din, dout, %s_h.st, %s_h.blas)", p, p, p),
            arena_printf(g->arena, "%s_h_get(output, %s);", p, nout));
    if (g->probes.len) {
        /* the host workspace holds what the device's does: the record is at the same offset */
        cg_blank(e);
        cg_line(e, "%s_HOST const float *%s_host_probe(void *ws, int k)", P, p);
        cg_line(e, "{");
        cg_line(e, "    const float *rec = %s_probe(%s_h.ws[0], k, %s_h.st);", p, p, p);
        cg_line(e, "    return rec ? (const float *)ws + (rec - %s_h.ws[0]) : NULL;", p);
        cg_line(e, "}");
    }
    if (!g->train)
        return;
    host_fn(e, "void", "train_forward_at",
            "void *ws, int batch, long first, const float *input, float *output, int training,\n"
            "        unsigned long long seed",
            1, arena_printf(g->arena, "%s\n    float *dout = %s_h_room(output, %s);", put_in, p, nsteps),
            arena_printf(g->arena, "%s_train_forward_at(dws, batch, first, din, dout, training, seed, %s_h.st, %s_h.blas)", p,
                         p, p),
            arena_printf(g->arena, "%s_h_get(output, %s);", p, nsteps));
    cg_blank(e);
    cg_line(e, "%s_HOST void %s_host_train_forward(void *ws, int batch, const float *input, float *output, int training,", P,
            p);
    cg_line(e, "%*sunsigned long long seed)", (int)(strlen(P) + strlen(p) + 30), "");
    cg_line(e, "{");
    cg_line(e, "    %s_host_train_forward_at(ws, batch, 0, input, output, training, seed);", p);
    cg_line(e, "}");
    host_fn(e, "void", "train_backward", "void *ws, int batch, const float *doutput, float *dinput", 1,
            arena_printf(g->arena,
                         "const float *dg = %s_h_put(&%s_h.in, &%s_h.in_cap, doutput, %s);\n"
                         "    float *dx = %s_h_room(dinput, %s);",
                         p, p, p, nsteps, p, nin),
            arena_printf(g->arena, "%s_train_backward(dws, batch, dg, dx, %s_h.st, %s_h.blas)", p, p, p),
            arena_printf(g->arena, "%s_h_get(dinput, %s);", p, nin));
    host_fn(e, "void", "train_spikes", "void *ws, int batch, double *spikes, double *neurons", 1, "",
            arena_printf(g->arena, "%s_train_spikes(dws, batch, spikes, neurons, %s_h.st)", p, p), "");
    cg_blank(e);
    cg_line(e, "%s_HOST float *%s_host_train_grads(void *ws)", P, p);
    cg_line(e, "{");
    cg_line(e, "    return (float *)ws + (%s_train_grads(%s_h.ws[1]) - %s_h.ws[1]);", p, p, p);
    cg_line(e, "}");
}

/* ---- building and loading ---- */

/* nvcc: $CUDACXX, else on PATH, else in $CUDA_HOME/bin, else the toolkit's
   usual place; NULL when none runs. */
static const char *find_nvcc(Arena *a) {
    const char *env = getenv("CUDACXX");
    if (env && *env)
        return access(env, X_OK) == 0 ? env : NULL;
    const char *path = getenv("PATH");
    for (const char *s = path ? path : ""; *s;) {
        const char *end = strchr(s, ':');
        size_t n = end ? (size_t)(end - s) : strlen(s);
        if (n) {
            const char *c = arena_printf(a, "%.*s/nvcc", (int)n, s);
            if (access(c, X_OK) == 0)
                return c;
        }
        s += n + (end != NULL);
    }
    const char *home = getenv("CUDA_HOME");
    if (home && *home) {
        const char *c = arena_printf(a, "%s/bin/nvcc", home);
        if (access(c, X_OK) == 0)
            return c;
    }
    return access("/usr/local/cuda/bin/nvcc", X_OK) == 0 ? "/usr/local/cuda/bin/nvcc" : NULL;
}

int cu_emulated(void) {
    const char *v = getenv("SNNC_CUDA_EMULATE");
    return v && *v && strcmp(v, "0") != 0;
}

int cu_build_and_load(const Target *t, const IrGraph *g, const LoadOptions *lo, LoadedModel *m) {
    int emu = cu_emulated();
    const char *nvcc = emu ? NULL : find_nvcc(g->arena);
    if (!emu && !nvcc) {
        error_plain("building the cuda target's code needs nvcc (the CUDA toolkit): set CUDACXX or put nvcc on "
                    "PATH");
        return -1;
    }
    const char *prefix;
    if (cbuild_write(t, g, lo, m, &prefix) != 0)
        return -1;
    const char *cc = lo->cc ? lo->cc : getenv("CC") && *getenv("CC") ? getenv("CC") : "cc";
    const char *so = cbuild_object(m), *src = cbuild_source(m);
    char *emulated[] = {(char *)cc, "-std=c99", "-O2", "-ffp-contract=off", "-fPIC", "-shared", "-DSNNC_CUDA_EMULATE",
                        "-o", (char *)so, "-x", "c", (char *)src, "-x", "none", "-lm", NULL};
    /* the toolkit's libraries (cuBLAS) found at load time, in the loader's path or not */
    const char *slash = nvcc ? strrchr(nvcc, '/') : NULL;
    const char *rpath = arena_printf(g->arena, "-rpath=%.*s/../lib64", slash ? (int)(slash - nvcc) : 1,
                                     slash ? nvcc : ".");
    char *gpu[] = {(char *)nvcc, "-O3", "-arch=native", "-fmad=false", "-Xcompiler", "-fPIC", "-shared",
                   "-Xlinker", (char *)rpath, "-o", (char *)so, (char *)src, "-lcublas", NULL};
    if (cbuild_run(emu ? emulated : gpu, 0, emu ? "the C compiler" : "nvcc") != 0) {
        cbuild_unload(m);
        return -1;
    }
    return cbuild_open(g, m, prefix, "host");
}
