/*
 * capi.c: the C target's files: the header, the weights (embedded, or a
 * loader and PyTorch's initialization), and the public API, written from
 * the schedule:
 *   - <net>_forward runs a whole sequence chunk by chunk (all T steps at
 *     once unless --chunk says fewer): each group of the schedule computes
 *     the chunk's steps before the next starts, so a synaptic layer is one
 *     matrix product over the chunk's steps and the batch, and a value
 *     that is the same at every step is computed once;
 *   - <net>_step runs the same kernels one step at a time, for streaming;
 *     a step counter in the workspace says which slot of each buffer a step
 *     uses. Both give the same results;
 *   - with --train, <net>_train_forward and <net>_train_backward run the
 *     schedule over all steps with the training plan, and the backward in
 *     reverse; <net>_train_forward_at runs a part of a larger batch, whose
 *     samples draw their dropout masks and rate spikes by their place in
 *     the whole batch.
 */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "c.h"

static int64_t align16(int64_t x) { return (x + 15) & ~(int64_t)15; }

/* Work (elements times steps) below which a loop runs on one thread: a
   parallel region costs a few microseconds, and tens where the waiting
   thread sleeps (OMP_WAIT_POLICY=PASSIVE in a virtual machine). A loop of
   an addition or a store an element (sums, zeroing) runs on threads from
   PARALLEL_LIGHT elements: the MLP example's training step opened two
   regions for 1 to 10 us of such work each (bench/RESULTS.md). */
#define PARALLEL_WORK 32768
#define PARALLEL_LIGHT (16 * PARALLEL_WORK)

/* The event-driven products' cost of an event against a step of a row in
   a block of the matrix product (ckernels.c row_events; measured by
   bench/event_products.py, docs/targets.md). */
#define EVENT_COST "3.0"

static void train_header(Emit *e);

static long long ws_floats(Emit *e) {
    return (long long)(cp_scratch(e, &e->g->infer) + e->iscratch);
}

static long long train_ws_floats(Emit *e) {
    return (long long)(cp_scratch(e, &e->g->trainp) + e->tscratch);
}

void capi_param_table(Emit *e) {
    const IrGraph *g = e->g;
    if (!g->params.len)
        return;
    cg_blank(e);
    cg_line(e, "const %s_param_info %s_params[%d] = {", e->p, e->p, g->params.len);
    for (int i = 0; i < g->params.len; i++) {
        const IrParam *q = &g->params.items[i];
        Buf s = {0};
        for (int k = 0; k < 4; k++)
            buf_printf(&s, k ? ", %lld" : "%lld", (long long)(k < q->shape.ndim ? q->shape.d[k] : 0));
        cg_line(e, "    {\"%s\", %d, {%s}, %lld, %lld, %d},", q->name, q->shape.ndim, s.data,
             (long long)q->off, (long long)q->count, q->learnable);
        buf_free(&s);
    }
    cg_line(e, "};");
}

/* 1 when the training code draws dropout masks. */
static int draws_masks(const IrGraph *g) {
    int any = 0;
    for (int i = 0; g->train && i < g->nodes.len; i++)
        any |= !g->nodes.items[i].dead && g->nodes.items[i].op == IR_DROPOUT;
    return any;
}

/* 1 when init_weights draws a weight or a bias. */
static int draws_weights(Emit *e) {
    const IrGraph *g = e->g;
    int any = 0;
    for (int i = 0; !e->opt->embedded && !e->opt->no_loader && i < g->params.len; i++)
        any |= g->params.items[i].kind == PK_WEIGHT || g->params.items[i].kind == PK_BIAS;
    return any;
}

/* The one random number generator of the generated code, for the initial
   weights, the rate encoder's spikes and the dropout masks: splitmix64
   (Steele, Lea and Flood, "Fast splittable pseudorandom number generators",
   OOPSLA 2014), used as a function of a counter, so that every draw is a
   function of what it is for, the same bits on every target and for any
   number of threads. Emitted only where something draws. */
static void gen_mix(Emit *e) {
    if (draws_weights(e) || e->g->encoding == ENC_RATE || draws_masks(e->g))
        capi_mix(e, "static", "");
}

void capi_mix(Emit *e, const char *qual, const char *suffix) {
    const char *p = e->p;
    cg_blank(e);
    cg_line(e, "/* splitmix64's step and output function: a bijection of 64 bits that mixes well. */");
    cg_line(e, "%s unsigned long long %s_mix%s(unsigned long long z)", qual, p, suffix);
    cg_line(e, "{");
    cg_line(e, "    z += 0x9E3779B97F4A7C15ULL;");
    cg_line(e, "    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;");
    cg_line(e, "    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;");
    cg_line(e, "    return z ^ (z >> 31);");
    cg_line(e, "}");
    cg_blank(e);
    cg_line(e, "/* The top 24 bits of h, over 2^24: a uniform in [0, 1). */");
    cg_line(e, "%s float %s_unit%s(unsigned long long h)", qual, p, suffix);
    cg_line(e, "{");
    cg_line(e, "    return (float)(h >> 40) * (1.0f / 16777216.0f);");
    cg_line(e, "}");
}

void capi_embedded(Emit *e, const char *qual, int k) {
    const IrParam *q = &e->g->params.items[k];
    cg_blank(e);
    cg_line(e, "%s float %s_w%d[%lld] = { /* %s */", qual, e->p, k, (long long)q->count, q->name);
    Buf s = {0};
    for (int64_t j = 0; j < q->count; j++) {
        buf_printf(&s, "%s%s,", j % 8 ? " " : "    ", cg_flt(e, e->opt->embedded[q->off + j]));
        if (j % 8 == 7 || j == q->count - 1) {
            cg_line(e, "%s", s.data);
            s.len = 0;
            s.data[0] = 0;
        }
    }
    buf_free(&s);
    cg_line(e, "};");
}

static void gen_params(Emit *e) {
    const IrGraph *g = e->g;
    if (!g->params.len)
        return;
    capi_param_table(e);
    if (e->opt->embedded) {
        for (int i = 0; i < g->params.len; i++)
            capi_embedded(e, "static const", i);
        return;
    }
    if (!e->opt->no_loader)
        capi_weights(e, 0, 0); /* gen_mix wrote the generator */
}

void capi_weights(Emit *e, int host, int mix) {
    const IrGraph *g = e->g;
    if (mix && draws_weights(e))
        capi_mix(e, "static", "");
    /* loading and initialization */
    cg_blank(e);
    cg_line(e, "/* Weight files: see docs/weights.md. The loader below is runtime/snnrt_stload.inc. */");
    buf_printf(e->b, "%.*s", (int)snnrt_stload_inc_len, snnrt_stload_inc);
    cg_blank(e);
    if (host)
        cg_line(e, "static int %s_load_host(float *ws, const char *path, int allow_missing, char *err, size_t errlen)",
                e->p);
    else
        cg_line(e, "int %s_load_weights(void *workspace, const char *path, int allow_missing, char *err, size_t errlen)",
                e->p);
    cg_line(e, "{");
    e->ind++;
    if (!host)
        cg_line(e, "float *ws = %s_ws(workspace);", e->p);
    cg_line(e, "snnrt_st_want want[%d];", g->params.len);
    cg_line(e, "unsigned char found[%d];", g->params.len);
    cg_line(e, "for (int i = 0; i < %d; i++) {", g->params.len);
    cg_line(e, "    want[i].name = %s_params[i].name;", e->p);
    cg_line(e, "    want[i].ndim = %s_params[i].ndim;", e->p);
    cg_line(e, "    want[i].shape = %s_params[i].shape;", e->p);
    cg_line(e, "    want[i].dst = ws + %s_params[i].offset;", e->p);
    cg_line(e, "}");
    cg_line(e, "return snnrt_st_load(path, want, %d, allow_missing, found, err, errlen);", g->params.len);
    e->ind--;
    cg_line(e, "}");
    /* the random draws, only where a weight or bias needs them */
    int random = draws_weights(e);
    cg_blank(e);
    if (random) {
        cg_line(e, "/* The next uniform of the sequence splitmix64 draws from *state. */");
        cg_line(e, "static float %s_uniform(unsigned long long *state)", e->p);
        cg_line(e, "{");
        cg_line(e, "    const float u = %s_unit(%s_mix(*state));", e->p, e->p);
        cg_line(e, "    *state += 0x9E3779B97F4A7C15ULL;");
        cg_line(e, "    return u;");
        cg_line(e, "}");
        cg_blank(e);
    }
    if (host)
        cg_line(e, "static void %s_init_host(float *ws, unsigned long long seed)", e->p);
    else
        cg_line(e, "void %s_init_weights(void *workspace, unsigned long long seed)", e->p);
    cg_line(e, "{");
    e->ind++;
    if (!host)
        cg_line(e, "float *ws = %s_ws(workspace);", e->p);
    if (random)
        cg_line(e, "unsigned long long st = seed;");
    else
        cg_line(e, "(void)seed; /* no weight or bias to draw */");
    for (int i = 0; i < g->params.len; i++) {
        const IrParam *q = &g->params.items[i];
        const char *what;
        switch (q->kind) {
        case PK_WEIGHT:
        case PK_BIAS: {
            float bound = 1.0f / sqrtf((float)q->fan_in);
            cg_line(e, "for (long i = 0; i < %lld; i++) /* %s: U(-1/sqrt(%lld), 1/sqrt(%lld)) */",
                 (long long)q->count, q->name, (long long)q->fan_in, (long long)q->fan_in);
            cg_line(e, "    ws[%lld + i] = (2.0f * %s_uniform(&st) - 1.0f) * %s;", (long long)q->off, e->p,
                 cg_flt(e, bound));
            continue;
        }
        case PK_ONES: what = "1.0f"; break;
        case PK_ZEROS: what = "0.0f"; break;
        default: what = cg_flt(e, q->init); break;
        }
        cg_line(e, "for (long i = 0; i < %lld; i++) /* %s */", (long long)q->count, q->name);
        cg_line(e, "    ws[%lld + i] = %s;", (long long)q->off, what);
    }
    e->ind--;
    cg_line(e, "}");
}

void capi_param_header(Emit *x) {
    const char *p = x->p;
    cg_blank(x);
    cg_line(x, "typedef struct %s_param_info {", p);
    cg_line(x, "    const char *name; /* tensor name in weight files */");
    cg_line(x, "    int ndim;");
    cg_line(x, "    long shape[4];");
    if (x->opt->embedded)
        cg_line(x, "    long offset; /* in floats, in the block of all parameters (embedded here) */");
    else
        cg_line(x, "    long offset; /* in floats from the start of the workspace */");
    cg_line(x, "    long count;");
    cg_line(x, "    int learnable; /* 0 for buffers, such as batchnorm's running statistics */");
    cg_line(x, "} %s_param_info;", p);
    if (x->g->params.len)
        cg_line(x, "extern const %s_param_info %s_params[%d];", p, p, x->g->params.len);
}

static void gen_header(Emit *e, Buf *h) {
    const IrGraph *g = e->g;
    Emit he = *e;
    he.b = h;
    Emit *x = &he;
    const char *P = e->P, *p = e->p;
    cg_line(x, "/* %s.h: generated by snnc %s from %s. Do not edit.", p, SNNC_VERSION, cg_clean_name(e, g->source));
    cg_blank(x);
    cg_line(x, "   Network %s: %d timesteps, input %s (%s), output %s (readout %s).", g->name,
         g->timesteps, shape_str(g->arena, &g->nodes.items[g->input].shape),
         g->encoding == ENC_DIRECT     ? "the same at every step"
         : g->encoding == ENC_SEQUENCE ? "one per step"
         : g->encoding == ENC_RATE     ? "intensities, rate-encoded into spikes"
                                       : "intensities, latency-encoded into spikes",
         shape_str(g->arena, &g->nodes.items[g->output].shape), readout_names[g->readout]);
    cg_line(x, "   All functions take the workspace: WORKSPACE_SIZE bytes, aligned for float,");
    cg_line(x, "   %s. Nothing allocates. */",
         e->opt->static_ws ? "or NULL for the static one" : "provided by the caller");
    cg_line(x, "#ifndef %s_H", P);
    cg_line(x, "#define %s_H", P);
    cg_blank(x);
    cg_line(x, "#include <stddef.h>");
    cg_blank(x);
    cg_line(x, "#ifdef __cplusplus");
    cg_line(x, "extern \"C\" {");
    cg_line(x, "#endif");
    cg_blank(x);
    cg_line(x, "#define %s_TIMESTEPS %d", P, g->timesteps);
    cg_line(x, "#define %s_MAX_BATCH %lld /* forward and step take 1..MAX_BATCH samples */", P, (long long)e->maxb);
    cg_line(x, "#define %s_INPUT_SIZE %lld /* floats per sample (and step) */", P,
         (long long)shape_count(&g->nodes.items[g->input].shape));
    cg_line(x, "#define %s_INPUT_SEQUENCE %d /* 1: forward reads [T, batch, INPUT_SIZE]; 0: [batch, INPUT_SIZE] */",
         P, g->encoding == ENC_SEQUENCE);
    cg_line(x, "#define %s_OUTPUT_SIZE %lld /* floats per sample */", P,
         (long long)shape_count(&g->nodes.items[g->output].shape));
    cg_line(x, "#define %s_OUTPUT_STEPS %d /* 1: forward writes [T, batch, OUTPUT_SIZE]; 0: [batch, OUTPUT_SIZE] */",
         P, g->readout == RO_STEPS);
    cg_line(x, "#define %s_NUM_PARAMS %d", P, g->params.len);
    cg_line(x, "#define %s_NUM_PROBES %d", P, g->probes.len);
    cg_line(x, "#define %s_WORKSPACE_FLOATS %lldL", P, ws_floats(e));
    cg_line(x, "#define %s_WORKSPACE_SIZE (%s_WORKSPACE_FLOATS * sizeof(float)) /* bytes */", P, P);
    cg_line(x, "extern const long %s_workspace_floats; /* the same, for dynamic loaders */", p);
    capi_param_header(x);
    cg_blank(x);
    if (!e->opt->embedded && !e->opt->no_loader && g->params.len) {
        cg_line(x, "/* Load the parameters from a safetensors file (F32, or F64, F16, BF16 converted;");
        cg_line(x, "   names and shapes as in %s_params). With allow_missing, tensors absent from", p);
        cg_line(x, "   the file keep their value.");
        cg_line(x, "   Returns 0, or -1 with a message in err. */");
        cg_line(x, "int %s_load_weights(void *workspace, const char *path, int allow_missing, char *err, size_t errlen);", p);
        cg_line(x, "/* Initialize every parameter as PyTorch initializes its layer type, from a seed. */");
        cg_line(x, "void %s_init_weights(void *workspace, unsigned long long seed);", p);
    }
    if (g->encoding == ENC_RATE) {
        cg_line(x, "/* The seed of the rate encoder's spikes for the following steps and forwards");
        cg_line(x, "   (docs/language.md, 4.2.1); a workspace whose seed was never set uses 0. */");
        cg_line(x, "void %s_seed(void *workspace, unsigned long long seed);", p);
    }
    cg_line(x, "/* Set every state to its initial value (the start of a sequence). */");
    cg_line(x, "void %s_reset(void *workspace, int batch);", p);
    cg_line(x, "/* One step: input [batch, INPUT_SIZE] -> output [batch, OUTPUT_SIZE] (may be NULL). */");
    cg_line(x, "void %s_step(void *workspace, int batch, const float *input, float *output);", p);
    cg_line(x, "/* A whole sequence from the initial state: T steps and the readout. */");
    cg_line(x, "void %s_forward(void *workspace, int batch, const float *input, float *output);", p);
    if (g->probes.len) {
        cg_line(x, "/* The recorded values of the last step, [batch, size] each:");
        for (int k = 0; k < g->probes.len; k++)
            cg_line(x, "   %d: %s (%lld floats per sample)", k, g->probes.items[k].spec,
                 (long long)g->probes.items[k].count);
        cg_line(x, "*/");
        cg_line(x, "const float *%s_probe(void *workspace, int k);", p);
    }
    if (g->train)
        train_header(x);
    cg_blank(x);
    cg_line(x, "#ifdef __cplusplus");
    cg_line(x, "}");
    cg_line(x, "#endif");
    cg_blank(x);
    cg_line(x, "#endif");
}


/* ---- running the schedule ---- */

/* The first statement of an API function: code for an x86 instruction set
   checks the CPU. */
static void entry(Emit *e) {
    if (e->isa != ISA_C)
        cg_line(e, "%s_cpu_check();", e->p);
}

static const char *isa_name(int isa) { return isa == ISA_AVX512 ? "AVX-512F" : "AVX2 and FMA"; }

/* A call of node i's kernel over steps [from, to) (C expressions). */
static void call(Emit *e, const IrPlan *P, int i, int fwd, const char *from, const char *to, const char *flag) {
    cg_line(e, "%s(ws, B, %s, %s, %s%s); /* %s */", cp_kernel(e, P, i, fwd), from, to, flag, cp_ext_args(e, P, i, fwd),
            e->g->nodes.items[i].name);
}

static int runs(const IrGraph *g, int i) { return ir_op_kernel[g->nodes.items[i].op]; }

/* The forward of every group over the steps [c0, c1) of a chunk (C
   expressions), each kernel called through `kernel`; groups computed once
   run when `once` holds ("1": always once), or at every call when `once`
   is NULL (step() recomputes them: its input may change). */
void cp_forward_groups(Emit *e, const IrPlan *P, CpCall *kernel, const char *c0, const char *c1, const char *once,
                       const char *flag) {
    const IrGraph *g = e->g;
    for (int k = 0; k < g->groups.len; k++) {
        const IrGroup *gr = &g->groups.items[k];
        int first = g->order[gr->first];
        if (!gr->recurrent) {
            if (!runs(g, first))
                continue;
            if (P->at[first].inv && once) {
                int cond = strcmp(once, "1") != 0;
                if (cond)
                    cg_line(e, "if (%s)", once);
                e->ind += cond;
                kernel(e, P, first, 1, "0", "1", flag);
                e->ind -= cond;
            } else
                kernel(e, P, first, 1, c0, c1, flag);
            continue;
        }
        cg_line(e, "for (t = %s; t < %s; t++) { /* a recurrent loop: step by step */", c0, c1);
        e->ind++;
        for (int j = gr->first; j < gr->first + gr->count; j++)
            if (runs(g, g->order[j]))
                kernel(e, P, g->order[j], 1, "t", "t + 1", flag);
        e->ind--;
        cg_line(e, "}");
    }
}

static void run_groups(Emit *e, const IrPlan *P, const char *c0, const char *c1, const char *once, const char *flag) {
    cp_forward_groups(e, P, call, c0, c1, once, flag);
}

/* The backward of every group of the training plan, last group first,
   over all steps (recurrent groups step by step, backwards). */
void cp_backward_groups(Emit *e, CpCall *kernel) {
    const IrGraph *g = e->g;
    const IrPlan *P = &g->trainp;
    int T = g->timesteps;
    for (int k = g->groups.len - 1; k >= 0; k--) {
        const IrGroup *gr = &g->groups.items[k];
        if (!gr->recurrent) {
            int i = g->order[gr->first];
            if (!runs(g, i) || !target_needs_backward(g, i))
                continue;
            /* a node whose parameters are not learnable and whose inputs need
               their gradient only for dL/dinput runs only when it is asked */
            int need = target_backward_always(g, i);
            if (!need)
                cg_line(e, "if (dinput)");
            e->ind += !need;
            kernel(e, P, i, 0, "0", P->at[i].inv ? "1" : arena_printf(g->arena, "%d", T), cp_dx_arg(e, i));
            e->ind -= !need;
            continue;
        }
        cg_line(e, "for (t = %d; t >= 0; t--) { /* a recurrent loop: step by step */", T - 1);
        e->ind++;
        for (int j = gr->first + gr->count - 1; j >= gr->first; j--) {
            int i = g->order[j];
            if (runs(g, i) && target_needs_backward(g, i))
                kernel(e, P, i, 0, "t", "t + 1", cp_dx_arg(e, i));
        }
        e->ind--;
        cg_line(e, "}");
    }
}

/* The step counter: the steps since reset, and the batch of the last
   call. Past 2 K it wraps to K + (t % K): the slot stays right and the
   first step stays the only 0. */
static void counter_funcs(Emit *e) {
    const IrPlan *P = &e->g->infer;
    cg_blank(e);
    cg_line(e, "/* The steps since reset and the batch, kept in the workspace. */");
    cg_line(e, "static void %s_counter(float *ws, long *t, long *batch, int write)", e->p);
    cg_line(e, "{");
    cg_line(e, "    long v[2];");
    cg_line(e, "    if (write) {");
    cg_line(e, "        v[0] = *t >= %d ? *t - %d : *t;", 2 * P->chunk, P->chunk);
    cg_line(e, "        v[1] = *batch;");
    cg_line(e, "        memcpy(%s, v, sizeof v);", cp_ws(e, P, P->counter));
    cg_line(e, "    } else {");
    cg_line(e, "        memcpy(v, %s, sizeof v);", cp_ws(e, P, P->counter));
    cg_line(e, "        *t = v[0];");
    cg_line(e, "        *batch = v[1];");
    cg_line(e, "    }");
    cg_line(e, "}");
}

static void gen_reset(Emit *e) {
    const IrGraph *g = e->g;
    const IrPlan *P = &g->infer;
    cg_blank(e);
    cg_line(e, "void %s_reset(void *workspace, int batch)", e->p);
    cg_line(e, "{");
    e->ind++;
    entry(e);
    cg_line(e, "float *ws = %s_ws(workspace);", e->p);
    cg_line(e, "long B = batch < 1 ? 1 : batch > %s_MAX_BATCH ? %s_MAX_BATCH : batch, t = 0;", e->P, e->P);
    for (int i = 0; i < g->nodes.len; i++) {
        const IrNode *n = &g->nodes.items[i];
        if (n->dead || n->op != IR_NEURON)
            continue;
        long long cnt = shape_count(&n->shape);
        for (int k = 0; k < n->neuron->states.len; k++) {
            const NeuronState *s = &n->neuron->states.items[k];
            cg_line(e, "{ /* %s.%s */", n->name, s->name);
            cg_line(e, "    float *s = %s;", cp_ws(e, P, P->at[i].state + (int64_t)k * e->maxb * cnt));
            cg_line(e, "    long i;");
            cg_line(e, "    for (i = 0; i < B * %lld; i++)", cnt);
            cg_line(e, "        s[i] = %s;", cg_flt(e, s->init));
            cg_line(e, "}");
        }
    }
    cg_line(e, "%s_counter(ws, &t, &B, 1);", e->p);
    if (ENC_SPIKES(g->encoding)) {
        cg_line(e, "{ /* the encoder's steps */");
        cg_line(e, "    unsigned long long n = 0;");
        cg_line(e, "    %s_enc_steps(ws, &n, 1);", e->p);
        cg_line(e, "}");
    }
    e->ind--;
    cg_line(e, "}");
}

/* ---- the input ---- */

/* Where the encoder's values live in inference: in the step counter's
   slot (16 floats), after the counter's two longs: the seed and its
   complement, then the steps since reset (the counter itself wraps). */
static const char *enc_at(Emit *e, const char *what) {
    const IrPlan *P = &e->g->infer;
    return arena_printf(e->g->arena, "(char *)(%s) + 2 * sizeof(long)%s", cp_ws(e, P, P->counter),
                        !strcmp(what, "seed") ? "" : " + 2 * sizeof(unsigned long long)");
}

/* The encoder of a rate or latency input (docs/language.md, 4.2.1):
   <net>_encode writes one step's spikes [B, INPUT_SIZE] from the caller's
   intensities. Rate spikes come from a counter-based generator, a function
   of (seed, step, sample, element) only, so they are the same bits on every
   target, for any number of threads and however the steps are chunked; the
   sample is first + b, b's place in a larger batch whose samples from
   first on these are (train_forward_at). */
static void gen_encoder(Emit *e) {
    const IrGraph *g = e->g;
    const char *p = e->p;
    if (!ENC_SPIKES(g->encoding))
        return;
    long long nin = shape_count(&g->nodes.items[g->input].shape);
    int T = g->timesteps;
    cg_blank(e);
    cg_line(e, "/* The steps since reset, for the encoder (read, or written with write). */");
    cg_line(e, "static void %s_enc_steps(float *ws, unsigned long long *n, int write)", p);
    cg_line(e, "{");
    cg_line(e, "    if (write)");
    cg_line(e, "        memcpy(%s, n, sizeof *n);", enc_at(e, "steps"));
    cg_line(e, "    else");
    cg_line(e, "        memcpy(n, %s, sizeof *n);", enc_at(e, "steps"));
    cg_line(e, "}");
    if (g->encoding == ENC_RATE) {
        cg_blank(e);
        cg_line(e, "void %s_seed(void *workspace, unsigned long long seed)", p);
        cg_line(e, "{");
        cg_line(e, "    float *ws = %s_ws(workspace);", p);
        cg_line(e, "    unsigned long long v[2];");
        cg_line(e, "    v[0] = seed;");
        cg_line(e, "    v[1] = ~seed; /* tells a seed that was set from whatever the workspace held */");
        cg_line(e, "    memcpy(%s, v, sizeof v);", enc_at(e, "seed"));
        cg_line(e, "}");
        cg_blank(e);
        cg_line(e, "/* The seed of inference: the one %s_seed set, else 0. */", p);
        cg_line(e, "static unsigned long long %s_seed_of(float *ws)", p);
        cg_line(e, "{");
        cg_line(e, "    unsigned long long v[2];");
        cg_line(e, "    memcpy(v, %s, sizeof v);", enc_at(e, "seed"));
        cg_line(e, "    return v[1] == ~v[0] ? v[0] : 0ULL;");
        cg_line(e, "}");
    }
    cg_blank(e);
    if (g->encoding == ENC_RATE) {
        cg_line(e, "/* Rate encoding of step t: element i of sample b spikes when u < x, with");
        cg_line(e, "   u = unit(mix(mix(mix(mix(seed) ^ t) ^ (first + b)) ^ i)): first + b is the");
        cg_line(e, "   sample's place in the whole batch when this is a part of one. */");
    } else {
        cg_line(e, "/* Latency encoding of step t: element i spikes once, at the step");
        cg_line(e, "   rint((T - 1) (1 - min(x, 1))), when x >= %s; never below. */", cg_flt(e, g->enc_threshold));
    }
    cg_line(e, "static void %s_encode(float *y, const float *x, long B, long first, unsigned long long t,", p);
    cg_line(e, "                      unsigned long long seed)");
    cg_line(e, "{");
    e->ind++;
    if (g->encoding == ENC_LATENCY) {
        cg_line(e, "(void)first;");
        cg_line(e, "(void)seed;");
    }
    cg_par_for(e, arena_printf(g->arena, "B * %lld", nin));
    cg_line(e, "for (long b = 0; b < B; b++) {");
    e->ind++;
    cg_line(e, "const float *xb = x + b * %lld;", nin);
    cg_line(e, "float *yb = y + b * %lld;", nin);
    cg_line(e, "long i;");
    if (g->encoding == ENC_RATE) {
        cg_line(e, "const unsigned long long h = %s_mix(%s_mix(%s_mix(seed) ^ t) ^ (unsigned long long)(first + b));", p,
                p, p);
        cg_line(e, "for (i = 0; i < %lld; i++) {", nin);
        cg_line(e, "    const float u = %s_unit(%s_mix(h ^ (unsigned long long)i));", p, p);
        cg_line(e, "    yb[i] = u < xb[i] ? 1.0f : 0.0f;");
        cg_line(e, "}");
    } else {
        cg_line(e, "for (i = 0; i < %lld; i++) {", nin);
        cg_line(e, "    const float v = xb[i] < 1.0f ? xb[i] : 1.0f;");
        cg_line(e, "    yb[i] = xb[i] >= %s && (unsigned long long)rintf(%s * (1.0f - v)) == t ? 1.0f : 0.0f;",
                cg_flt(e, g->enc_threshold), cg_flt(e, (float)(T - 1)));
        cg_line(e, "}");
    }
    e->ind--;
    cg_line(e, "}");
    e->ind--;
    cg_line(e, "}");
}

/* The input of steps [t0, t0 + steps) (C expressions) of a sequence
   (forward, train_forward) from src: copied, or encoded from `input` with
   the seed `seed` (a C expression; NULL: the workspace's) as the samples
   from `first` on of a batch (a C expression). */
static void load_input(Emit *e, const IrPlan *P, const char *t0, const char *steps, const char *src, const char *seed,
                       const char *first) {
    const IrGraph *g = e->g;
    long long nin = shape_count(&g->nodes.items[g->input].shape);
    if (P->at[g->input].vext) /* training reads the caller's input in place */
        return;
    if (!ENC_SPIKES(g->encoding)) {
        cg_line(e, "memcpy(%s, %s, (size_t)%s * (size_t)B * %lld * sizeof(float)); /* the input */",
                cp_at(e, P, g->input, 'v', t0), src, steps, nin);
        return;
    }
    if (!seed)
        seed = g->encoding == ENC_RATE ? arena_printf(g->arena, "%s_seed_of(ws)", e->p) : "0";
    cg_line(e, "for (long ts = %s; ts < %s + %s; ts++) /* the input, %s-encoded */", t0, t0, steps,
            encoding_names[g->encoding]);
    cg_line(e, "    %s_encode(%s, input, B, %s, (unsigned long long)ts, %s);", e->p, cp_at(e, P, g->input, 'v', "ts"),
            first, seed);
}

static void gen_step(Emit *e) {
    const IrGraph *g = e->g;
    const IrPlan *P = &g->infer;
    long long nout = shape_count(&g->nodes.items[g->output].shape);
    cg_blank(e);
    cg_line(e, "void %s_step(void *workspace, int batch, const float *input, float *output)", e->p);
    cg_line(e, "{");
    e->ind++;
    entry(e);
    cg_line(e, "float *ws = %s_ws(workspace);", e->p);
    cg_line(e, "long B = batch < 1 ? 1 : batch > %s_MAX_BATCH ? %s_MAX_BATCH : batch, tc, b0;", e->P, e->P);
    cg_line(e, "int t;");
    cg_line(e, "%s_counter(ws, &tc, &b0, 0);", e->p);
    cg_line(e, "t = (int)tc;");
    cg_line(e, "(void)b0;");
    if (ENC_SPIKES(g->encoding)) {
        cg_line(e, "{ /* the input, %s-encoded: step n since reset */", encoding_names[g->encoding]);
        cg_line(e, "    unsigned long long n;");
        cg_line(e, "    %s_enc_steps(ws, &n, 0);", e->p);
        cg_line(e, "    %s_encode(%s, input, B, 0, n, %s);", e->p, cp_at(e, P, g->input, 'v', "t"),
                g->encoding == ENC_RATE ? arena_printf(g->arena, "%s_seed_of(ws)", e->p) : "0");
        cg_line(e, "    n++;");
        cg_line(e, "    %s_enc_steps(ws, &n, 1);", e->p);
        cg_line(e, "}");
    } else
        load_input(e, P, "t", "1", "input", NULL, "0");
    /* every node at this step, in the schedule's order */
    for (int j = 0; j < g->norder; j++)
        if (runs(g, g->order[j]))
            call(e, P, g->order[j], 1, "t", "t + 1", "0");
    cg_line(e, "if (output)");
    cg_line(e, "    memcpy(output, %s, (size_t)B * %lld * sizeof(float));", cp_at(e, P, g->output, 'v', "t"), nout);
    cg_line(e, "tc = t + 1;");
    cg_line(e, "%s_counter(ws, &tc, &B, 1);", e->p);
    e->ind--;
    cg_line(e, "}");
}

/* Accumulates the readout of steps [c0, c1) (C expressions). */
static void readout_steps(Emit *e, const IrPlan *P, const char *c0, const char *c1) {
    const IrGraph *g = e->g;
    long long nout = shape_count(&g->nodes.items[g->output].shape);
    const char *acc = "acc";
    cg_line(e, "for (t = %s; t < %s; t++) { /* the readout */", c0, c1);
    e->ind++;
    cg_line(e, "const float *y = %s;", cp_at(e, P, g->output, 'v', "t"));
    if (g->readout != RO_STEPS)
        cg_line(e, "float *acc = %s;", cp_ws(e, P, P->readout));
    switch (g->readout) {
    case RO_STEPS:
        cg_line(e, "memcpy(output + (size_t)t * (size_t)B * %lld, y, (size_t)B * %lld * sizeof(float));", nout, nout);
        break;
    case RO_COUNT:
    case RO_RATE:
    case RO_MEAN:
        cg_line(e, "for (i = 0; i < B * %lld; i++)", nout);
        cg_line(e, "    %s[i] = t == 0 ? y[i] : %s[i] + y[i];", acc, acc);
        break;
    case RO_LAST:
        cg_line(e, "if (t == %d)", g->timesteps - 1);
        cg_line(e, "    memcpy(%s, y, (size_t)B * %lld * sizeof(float));", acc, nout);
        break;
    case RO_MAX:
        cg_line(e, "for (i = 0; i < B * %lld; i++)", nout);
        cg_line(e, "    %s[i] = t == 0 || y[i] > %s[i] ? y[i] : %s[i];", acc, acc, acc);
        break;
    }
    e->ind--;
    cg_line(e, "}");
}

static void gen_forward(Emit *e) {
    const IrGraph *g = e->g;
    const IrPlan *P = &g->infer;
    int T = g->timesteps, K = P->chunk;
    long long nout = shape_count(&g->nodes.items[g->output].shape);
    cg_blank(e);
    cg_line(e, "void %s_forward(void *workspace, int batch, const float *input, float *output)", e->p);
    cg_line(e, "{");
    e->ind++;
    entry(e);
    cg_line(e, "float *ws = %s_ws(workspace);", e->p);
    cg_line(e, "long B = batch < 1 ? 1 : batch > %s_MAX_BATCH ? %s_MAX_BATCH : batch, i, tc = %d;", e->P, e->P, T);
    cg_line(e, "int t;");
    cg_line(e, "%s_reset(workspace, (int)B);", e->p);
    int seq = g->encoding == ENC_SEQUENCE;
    const char *c0 = "0", *c1 = arena_printf(g->arena, "%d", T);
    if (K < T) {
        cg_line(e, "int c0;");
        cg_line(e, "for (c0 = 0; c0 < %d; c0 += %d) { /* chunks of %d steps */", T, K, K);
        e->ind++;
        cg_line(e, "const int c1 = c0 + %d < %d ? c0 + %d : %d;", K, T, K, T);
        c0 = "c0";
        c1 = "c1";
        if (seq)
            load_input(e, P, "c0", "(c1 - c0)",
                       arena_printf(g->arena, "input + (size_t)c0 * (size_t)B * %lld",
                                    (long long)shape_count(&g->nodes.items[g->input].shape)),
                       NULL, "0");
        else if (ENC_SPIKES(g->encoding)) /* every chunk's steps, from the same intensities */
            load_input(e, P, "c0", "(c1 - c0)", "input", NULL, "0");
        else {
            cg_line(e, "if (c0 == 0)");
            e->ind++;
            load_input(e, P, "0", "1", "input", NULL, "0");
            e->ind--;
        }
        run_groups(e, P, c0, c1, "c0 == 0", "0");
    } else {
        load_input(e, P, "0", P->at[g->input].inv ? "1" : arena_printf(g->arena, "%d", T), "input", NULL, "0");
        run_groups(e, P, c0, c1, "1", "0");
    }
    readout_steps(e, P, c0, c1);
    if (K < T) {
        e->ind--;
        cg_line(e, "}");
    }
    if (g->readout == RO_RATE || g->readout == RO_MEAN) {
        cg_line(e, "for (i = 0; i < B * %lld; i++)", nout);
        cg_line(e, "    output[i] = ws[%lld + i] / %s;", (long long)(cp_base(e, P) + P->readout), cg_flt(e, (float)T));
    } else if (g->readout != RO_STEPS)
        cg_line(e, "memcpy(output, %s, (size_t)B * %lld * sizeof(float));", cp_ws(e, P, P->readout), nout);
    cg_line(e, "%s_counter(ws, &tc, &B, 1);", e->p);
    if (ENC_SPIKES(g->encoding)) {
        cg_line(e, "{ /* a step after the forward continues its sequence */");
        cg_line(e, "    unsigned long long n = %d;", T);
        cg_line(e, "    %s_enc_steps(ws, &n, 1);", e->p);
        cg_line(e, "}");
    }
    cg_line(e, "(void)i;");
    e->ind--;
    cg_line(e, "}");
}

static void gen_probe(Emit *e) {
    const IrGraph *g = e->g;
    const IrPlan *P = &g->infer;
    if (!g->probes.len)
        return;
    cg_blank(e);
    cg_line(e, "const float *%s_probe(void *workspace, int k)", e->p);
    cg_line(e, "{");
    e->ind++;
    cg_line(e, "float *ws = %s_ws(workspace);", e->p);
    cg_line(e, "long tc, B;");
    cg_line(e, "int t;");
    cg_line(e, "%s_counter(ws, &tc, &B, 0);", e->p);
    cg_line(e, "t = tc > 0 ? (int)tc - 1 : 0; /* the last step */");
    cg_line(e, "switch (k) {");
    for (int k = 0; k < g->probes.len; k++) {
        const IrProbe *pr = &g->probes.items[k];
        const char *at;
        if (pr->buf >= 0)
            at = P->chunk == 1 ? cp_ws(e, P, pr->buf)
                               : arena_printf(g->arena, "%s + (long)(t %% %d) * B * %lld", cp_ws(e, P, pr->buf), P->chunk,
                                              (long long)pr->count);
        else
            at = cp_at(e, P, pr->node, 'v', "t");
        cg_line(e, "case %d: /* %s */", k, pr->spec);
        cg_line(e, "    return %s;", at);
    }
    cg_line(e, "default:");
    cg_line(e, "    return 0;");
    cg_line(e, "}");
    e->ind--;
    cg_line(e, "}");
}

/* ---- training ---- */

typedef struct ParamSpan {
    int64_t off, count;
    int set;
} ParamSpan;

static int span_cmp(const void *a, const void *b) {
    const ParamSpan *x = a, *y = b;
    return x->off < y->off ? -1 : x->off > y->off;
}

/* Zeroes the parameters' gradients (pf floats from ws + pf) that the
   backward adds to, in runs between those that a dense layer sets
   (IrBufs.wset, ck_dense_bwd). */
static void zero_param_grads(Emit *e, int64_t pf) {
    const IrGraph *g = e->g;
    int n = g->params.len;
    ParamSpan *sp = arena_alloc(g->arena, sizeof *sp * (size_t)(n + 1));
    for (int k = 0; k < n; k++) {
        const IrParam *q = &g->params.items[k];
        const IrNode *x = &g->nodes.items[q->node];
        sp[k] = (ParamSpan){q->off, q->count, x->op == IR_DENSE && !x->dead && g->trainp.at[q->node].wset};
    }
    qsort(sp, (size_t)n, sizeof *sp, span_cmp);
    int64_t from = 0; /* the start of a run of gradients added to, padding included */
    int added = 0;    /* in the run */
    for (int k = 0; k <= n; k++) {
        if (k < n && !sp[k].set) {
            added = 1;
            continue;
        }
        int64_t to = k < n ? sp[k].off : pf;
        if (added)
            cg_line(e, "memset(ws + %lld, 0, (size_t)%lld * sizeof(float)); /* parameter gradients */",
                    (long long)(pf + from), (long long)(to - from));
        if (k < n)
            from = sp[k].off + sp[k].count;
        added = 0;
    }
}

static void gen_train(Emit *e) {
    const IrGraph *g = e->g;
    const IrPlan *P = &g->trainp;
    int T = g->timesteps;
    int in = g->input, out = g->output;
    long long nin = shape_count(&g->nodes.items[in].shape), nout = shape_count(&g->nodes.items[out].shape);
    int64_t pf = align16(g->param_floats);
    /* forward: the batch as the samples from `first` on of a larger one,
       whose sample k draws its masks and its spikes as sample k */
    cg_blank(e);
    cg_line(e, "void %s_train_forward_at(void *workspace, int batch, long first, const float *input, float *output,",
            e->p);
    cg_line(e, "                         int training, unsigned long long seed)");
    cg_line(e, "{");
    e->ind++;
    entry(e);
    cg_line(e, "float *ws = (float *)workspace;");
    cg_line(e, "long B = batch < 1 ? 1 : batch > %s_MAX_BATCH ? %s_MAX_BATCH : batch;", e->P, e->P);
    cg_line(e, "int t;");
    if (g->encoding != ENC_RATE && !draws_masks(g)) {
        cg_line(e, "(void)first; /* nothing random: no dropout, no rate-encoded input */");
        cg_line(e, "(void)seed;");
    }
    load_input(e, P, "0", P->at[in].inv ? "1" : arena_printf(g->arena, "%d", T), "input", "seed", "first");
    for (int i = 0; i < g->nodes.len; i++) {
        const IrNode *x = &g->nodes.items[i];
        if (x->dead)
            continue;
        if (x->op == IR_NEURON)
            for (int k = 0; k < x->neuron->states.len; k++) {
                cg_line(e, "{ /* %s.%s at the first step */", x->name, x->neuron->states.items[k].name);
                cg_line(e, "    float *s = %s;", cp_ws(e, P, P->at[i].state + (int64_t)k * P->at[i].ssteps * e->maxb *
                                                               shape_count(&x->shape)));
                cg_line(e, "    long i;");
                cg_line(e, "    for (i = 0; i < B * %lld; i++)", (long long)shape_count(&x->shape));
                cg_line(e, "        s[i] = %s;", cg_flt(e, x->neuron->states.items[k].init));
                cg_line(e, "}");
            }
        if (x->op == IR_DROPOUT) {
            cg_line(e, "if (training)");
            e->ind++;
            ck_dropout_mask(e, i);
            e->ind--;
        }
    }
    run_groups(e, P, "0", arena_printf(g->arena, "%d", T), "1", "training");
    if (P->at[out].bits) { /* every step in order, 32 to a word */
        cg_line(e, "if (output) { /* the output's spikes, kept as bits */");
        cg_line(e, "    const uint32_t *yb = %s;", cp_bits_at(e, P, out, "0"));
        cg_line(e, "    long j;");
        cg_line(e, "    for (j = 0; j < %d * B * %lld; j++)", T, nout);
        cg_line(e, "        output[j] = (float)((yb[j >> 5] >> (j & 31)) & 1u);");
        cg_line(e, "}");
    } else {
        cg_line(e, "if (output)");
        cg_line(e, "    for (t = 0; t < %d; t++)", T);
        cg_line(e, "        memcpy(output + (size_t)t * (size_t)B * %lld, %s, (size_t)B * %lld * sizeof(float));", nout,
                cp_at(e, P, out, 'v', "t"), nout);
    }
    cg_line(e, "(void)t;");
    e->ind--;
    cg_line(e, "}");
    cg_blank(e);
    cg_line(e, "void %s_train_forward(void *workspace, int batch, const float *input, float *output,", e->p);
    cg_line(e, "                      int training, unsigned long long seed)");
    cg_line(e, "{");
    cg_line(e, "    %s_train_forward_at(workspace, batch, 0, input, output, training, seed);", e->p);
    cg_line(e, "}");
    /* backward */
    cg_blank(e);
    cg_line(e, "void %s_train_backward(void *workspace, int batch, const float *input, const float *doutput, float *dinput)",
            e->p);
    cg_line(e, "{");
    e->ind++;
    entry(e);
    if (!P->at[in].vext)
        cg_line(e, "(void)input; /* the encoder's spikes are in the workspace */");
    cg_line(e, "float *ws = (float *)workspace;");
    cg_line(e, "long B = batch < 1 ? 1 : batch > %s_MAX_BATCH ? %s_MAX_BATCH : batch, j;", e->P, e->P);
    cg_line(e, "int t;");
    zero_param_grads(e, pf);
    long long nz = (long long)(P->floats - P->zeroed); /* the value gradients set by their writer come before */
    cg_line(e, "{ /* value gradients, carried adjoints, sums: zeroed by the threads */");
    e->ind++;
    cg_line(e, "float *z = %s;", cp_ws(e, P, P->zeroed));
    cg_par_for_light(e, arena_printf(g->arena, "%lldL", nz));
    cg_line(e, "for (long j0 = 0; j0 < %lld; j0 += 65536)", nz);
    cg_line(e, "    memset(z + j0, 0, (size_t)(%lld - j0 < 65536 ? %lld - j0 : 65536) * sizeof(float));", nz, nz);
    e->ind--;
    cg_line(e, "}");
    if (P->at[in].gext && !P->at[in].gset) { /* dL/dinput is the caller's: added to */
        cg_line(e, "if (dinput)");
        cg_line(e, "    memset(dinput, 0, (size_t)%d * (size_t)B * %lld * sizeof(float));", P->at[in].inv ? 1 : T, nin);
    }
    if (P->at[out].grad >= 0) { /* else read in place (IrBufs.gext), or not needed */
        cg_line(e, "for (t = 0; t < %d; t++) {", T);
        cg_line(e, "    float *gout = %s;", cp_at(e, P, out, 'g', "t"));
        cg_line(e, "    for (j = 0; j < B * %lld; j++)", nout);
        cg_line(e, "        gout[j] += doutput[(size_t)t * (size_t)B * %lld + j];", nout);
        cg_line(e, "}");
    }
    cp_backward_groups(e, call);
    /* neuron parameters: each element's double sum, added up in order */
    for (int i = 0; i < g->nodes.len; i++) {
        const IrNode *x = &g->nodes.items[i];
        if (x->dead || x->op != IR_NEURON)
            continue;
        long long cnt = shape_count(&x->shape);
        for (int k = 0; k < x->neuron->params.len; k++) {
            const IrParam *q = &g->params.items[x->neuron->params.items[k].param];
            long long per = cnt / q->count;
            cg_line(e, "{ /* %s: over the batch and its %lld element%s per value */", q->name, per,
                    per == 1 ? "" : "s");
            e->ind++;
            cg_line(e, "const double *s = (const double *)(const void *)(%s);",
                    cp_ws(e, P, P->at[i].pacc + (int64_t)k * align16(2 * e->maxb * cnt)));
            cg_line(e, "float *gp = ws + %lld;", (long long)(pf + q->off));
            cg_par_for_light(e, arena_printf(g->arena, "B * %lld", cnt));
            cg_line(e, "for (long v = 0; v < %lld; v++) {", (long long)q->count);
            cg_line(e, "    double sum = 0.0;");
            cg_line(e, "    long r, k;");
            cg_line(e, "    for (r = 0; r < B; r++)");
            cg_line(e, "        for (k = 0; k < %lld; k++)", per);
            cg_line(e, "            sum += s[r * %lld + v * %lld + k];", cnt, per);
            cg_line(e, "    gp[v] = (float)sum;");
            cg_line(e, "}");
            e->ind--;
            cg_line(e, "}");
        }
    }
    if (ENC_SPIKES(g->encoding)) { /* spikes are a step function of the input */
        cg_line(e, "if (dinput)");
        cg_line(e, "    memset(dinput, 0, (size_t)B * %lld * sizeof(float)); /* the encoder: zero */", nin);
    } else if (!P->at[in].gext) { /* else written in place */
        cg_line(e, "if (dinput)");
        cg_line(e, "    memcpy(dinput, %s, (size_t)%d * (size_t)B * %lld * sizeof(float));", cp_at(e, P, in, 'g', "0"),
                P->at[in].inv ? 1 : T, nin);
    }
    cg_line(e, "(void)t;");
    cg_line(e, "(void)j;");
    e->ind--;
    cg_line(e, "}");
    /* spike counts of the last forward, for the spike rate */
    cg_blank(e);
    cg_line(e, "void %s_train_spikes(void *workspace, int batch, double *spikes, double *neurons)", e->p);
    cg_line(e, "{");
    e->ind++;
    cg_line(e, "const float *ws = (const float *)workspace;");
    cg_line(e, "long B = batch < 1 ? 1 : batch > %s_MAX_BATCH ? %s_MAX_BATCH : batch, j;", e->P, e->P);
    cg_line(e, "double s = 0.0;");
    long long total = 0;
    for (int i = 0; i < g->nodes.len; i++) {
        const IrNode *x = &g->nodes.items[i];
        if (x->dead || x->op != IR_NEURON || x->neuron->code.items[x->neuron->emit].op != EQ_SPIKE)
            continue;
        long long cnt = shape_count(&x->shape);
        if (P->at[i].bits) {
            cg_line(e, "for (j = 0; j < %d * B * %lld; j++) { /* %s: the bits set */", T, cnt / 32, x->name);
            cg_line(e, "    uint32_t m = ((const uint32_t *)(const void *)(%s))[j];", cp_ws(e, P, P->at[i].val));
            cg_line(e, "    for (; m; m &= m - 1)");
            cg_line(e, "        s += 1.0;");
            cg_line(e, "}");
        } else {
            cg_line(e, "for (j = 0; j < %d * B * %lld; j++) /* %s */", T, cnt, x->name);
            cg_line(e, "    s += (%s)[j];", cp_ws(e, P, P->at[i].val));
        }
        total += (long long)T * cnt;
    }
    cg_line(e, "*spikes = s;");
    cg_line(e, "*neurons = (double)B * %lld.0;", total);
    cg_line(e, "(void)ws;");
    cg_line(e, "(void)j;");
    e->ind--;
    cg_line(e, "}");
    cg_blank(e);
    cg_line(e, "const long %s_train_workspace_floats = %s_TRAIN_WORKSPACE_FLOATS;", e->p, e->P);
    cg_blank(e);
    cg_line(e, "float *%s_train_params(void *workspace)", e->p);
    cg_line(e, "{");
    cg_line(e, "    return (float *)workspace;");
    cg_line(e, "}");
    cg_blank(e);
    cg_line(e, "float *%s_train_grads(void *workspace)", e->p);
    cg_line(e, "{");
    cg_line(e, "    return (float *)workspace + %lld;", (long long)pf);
    cg_line(e, "}");
}

/* Checks what training cannot do yet; 0 after reporting. */
int cp_train_supported(const IrGraph *g) {
    int ok = 1;
    for (int i = 0; i < g->nodes.len; i++) {
        const IrNode *x = &g->nodes.items[i];
        if (x->dead || x->op != IR_BATCHNORM || !g->groups.items[x->group].recurrent)
            continue;
        error_at(x->loc, "batchnorm '%s' is on a recurrent loop: training needs its statistics over "
                         "all steps, which a step-by-step loop cannot give", x->name);
        ok = 0;
    }
    return ok;
}

static void train_header(Emit *e) {
    const char *p = e->p, *P = e->P;
    cg_blank(e);
    cg_line(e, "/* Training (docs/generated-code.md): a separate workspace of TRAIN_WORKSPACE_SIZE");
    cg_line(e, "   bytes, aligned for double, that starts with the parameters (load_weights and");
    cg_line(e, "   init_weights work on it) and holds their gradients and what the backward");
    cg_line(e, "   needs. */");
    cg_line(e, "#define %s_TRAIN_WORKSPACE_FLOATS %lldL", P, train_ws_floats(e));
    cg_line(e, "#define %s_TRAIN_WORKSPACE_SIZE (%s_TRAIN_WORKSPACE_FLOATS * sizeof(float))", P, P);
    cg_line(e, "extern const long %s_train_workspace_floats; /* the same, for dynamic loaders */", p);
    cg_line(e, "/* All T steps from the initial state: output [T, batch, OUTPUT_SIZE] of every step");
    cg_line(e, "   (may be NULL); input as for forward, and kept unchanged for train_backward.");
    cg_line(e, "   training: batchnorm uses the batch's statistics and updates its running ones,");
    cg_line(e, "   dropout draws masks from seed; otherwise both behave as at inference. */");
    cg_line(e, "void %s_train_forward(void *workspace, int batch, const float *input, float *output,", p);
    cg_line(e, "                      int training, unsigned long long seed);");
    cg_line(e, "/* The same for a batch that is the samples from first on of a larger one (the");
    cg_line(e, "   shard of a batch split among processes): sample b draws its dropout masks");
    cg_line(e, "   and rate spikes as sample first + b of the larger batch would; train_forward");
    cg_line(e, "   is train_forward_at with first 0. */");
    cg_line(e, "void %s_train_forward_at(void *workspace, int batch, long first, const float *input, float *output,", p);
    cg_line(e, "                         int training, unsigned long long seed);");
    cg_line(e, "/* After a forward in training mode: the gradients of every parameter (overwritten)");
    cg_line(e, "   for dL/doutput [T, batch, OUTPUT_SIZE]; dL/dinput (shaped as the input) when");
    cg_line(e, "   dinput is not NULL. input is the forward's, unchanged: the forward and the");
    cg_line(e, "   backward read it where it is, and the workspace keeps no copy of it. */");
    cg_line(e, "void %s_train_backward(void *workspace, int batch, const float *input, const float *doutput,", p);
    cg_line(e, "                        float *dinput);");
    cg_line(e, "/* The parameters and their gradients, at the offsets of %s_params. */", p);
    cg_line(e, "float *%s_train_params(void *workspace);", p);
    cg_line(e, "/* The spikes of the last forward over all spiking layers and steps, and the");
    cg_line(e, "   number of neuron steps they came from (spike rate = spikes / neurons). */");
    cg_line(e, "void %s_train_spikes(void *workspace, int batch, double *spikes, double *neurons);", p);
    cg_line(e, "float *%s_train_grads(void *workspace);", p);
}

/* ---- the target's hooks ---- */

TargetEmitter *capi_begin(const IrGraph *g, const CgenOptions *opt) { return capi_begin_isa(g, opt, ISA_C); }

/* The intrinsics of an x86 instruction set, and the check of the CPU. */
static void isa_head(Emit *e) {
    const char *P = e->P, *p = e->p, *name = isa_name(e->isa);
    const char *simde = e->isa == ISA_AVX512 ? "avx512.h" : "avx2.h";
    cg_blank(e);
    cg_line(e, "/* Written for %s: build with %s (or -march=native on such a CPU).", name,
            e->isa == ISA_AVX512 ? "-mavx512f" : "-mavx2 -mfma");
    cg_line(e, "   With -D%s_SIMDE, SIMDe's portable versions of the intrinsics stand in", P);
    cg_line(e, "   (slowly) on any CPU: the results are the same. */");
    cg_line(e, "#ifdef %s_SIMDE", P);
    cg_line(e, "#define SIMDE_ENABLE_NATIVE_ALIASES");
    cg_line(e, "#include <simde/x86/%s>", simde);
    if (e->isa == ISA_AVX2)
        cg_line(e, "#include <simde/x86/fma.h>");
    cg_line(e, "#else");
    cg_line(e, "#include <immintrin.h>");
    cg_line(e, "#endif");
    cg_line(e, "#include <stdio.h>");
    cg_line(e, "#include <stdlib.h>");
    if (e->isa == ISA_AVX512) {
        cg_blank(e);
        cg_line(e, "/* The loops the compiler vectorizes (neuron programs, sums) in whole 512-bit");
        cg_line(e, "   registers, which GCC and clang keep to 256 bits when tuning for most Intel");
        cg_line(e, "   CPUs: the pragma for GCC; clang needs -mprefer-vector-width=512. */");
        cg_line(e, "#if defined(__GNUC__) && !defined(__clang__)");
        cg_line(e, "#pragma GCC target(\"prefer-vector-width=512\")");
        cg_line(e, "#endif");
    }
    cg_blank(e);
    cg_line(e, "/* A CPU without %s would stop at its first instruction with SIGILL: say", name);
    cg_line(e, "   why instead, once, when the API is first called. */");
    cg_line(e, "static void %s_cpu_check(void)", p);
    cg_line(e, "{");
    cg_line(e, "#if !defined(%s_SIMDE) && (defined(__GNUC__) || defined(__clang__))", P);
    cg_line(e, "    static int checked;");
    cg_line(e, "    if (checked)");
    cg_line(e, "        return;");
    cg_line(e, "    __builtin_cpu_init();");
    if (e->isa == ISA_AVX512)
        cg_line(e, "    if (!__builtin_cpu_supports(\"avx512f\")) {");
    else
        cg_line(e, "    if (!__builtin_cpu_supports(\"avx2\") || !__builtin_cpu_supports(\"fma\")) {");
    cg_line(e, "        fputs(\"%s: this code was generated for %s, which this CPU lacks (generate it \"", p, name);
    cg_line(e, "              \"with snnc --target %s or --target c)\\n\", stderr);", e->isa == ISA_AVX512 ? "avx2" : "c");
    cg_line(e, "        abort();");
    cg_line(e, "    }");
    cg_line(e, "    checked = 1;");
    cg_line(e, "#endif");
    cg_line(e, "}");
}

TargetEmitter *capi_emitter(const IrGraph *g, const CgenOptions *opt) {
    TargetEmitter *em = arena_alloc(g->arena, sizeof *em);
    Emit *e = &em->e;
    e->g = g;
    e->opt = opt;
    e->maxb = g->batch;
    char *lo = arena_strdup(g->arena, opt->prefix ? opt->prefix : g->name);
    char *up = arena_strdup(g->arena, lo);
    for (char *c = lo; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    for (char *c = up; *c; c++)
        *c = (char)toupper((unsigned char)*c);
    e->p = lo;
    e->P = up;
    return em;
}

TargetEmitter *capi_begin_isa(const IrGraph *g, const CgenOptions *opt, int isa) {
    if (g->train && !cp_train_supported(g))
        return NULL;
    TargetEmitter *em = capi_emitter(g, opt);
    Emit *e = &em->e;
    const char *lo = e->p, *up = e->P;
    e->isa = isa;
    e->fast = opt->math == MATH_FAST || (opt->math == MATH_DEFAULT && isa != ISA_C);
    ck_scratch(e);
    e->b = &e->c;
    cg_line(e, "/* %s.c: generated by snnc %s from %s. Do not edit.", lo, SNNC_VERSION, cg_clean_name(e, g->source));
    if (isa == ISA_C)
        cg_line(e, "   Portable C99; build with: cc -std=c99 -O2 -c %s.c (link with -lm), and with", lo);
    else
        cg_line(e, "   C99 with %s intrinsics; build with: cc -std=c99 -O2 %s -c %s.c (link with -lm),", isa_name(isa),
                isa == ISA_AVX512 ? "-mavx512f" : "-mavx2 -mfma", lo);
    cg_line(e, "   with -fopenmp to use every core, and without fused multiply-add (GCC does not fuse");
    cg_line(e, "   under -std=c99; clang needs -ffp-contract=off) to get the documented results. */");
    cg_line(e, "#include \"%s.h\"", lo);
    cg_blank(e);
    cg_line(e, "#include <math.h>");
    cg_line(e, "#include <stdint.h>");
    cg_line(e, "#include <string.h>");
    if (isa != ISA_C)
        isa_head(e);
    if (e->fast) {
        cg_blank(e);
        cg_line(e, "/* --math fast: neuron programs call these instead of the C library's");
        cg_line(e, "   (runtime/snnrt_math.inc). */");
        buf_printf(e->b, "%.*s", (int)snnrt_math_inc_len, snnrt_math_inc);
    }
    cg_blank(e);
    cg_line(e, "/* OpenMP pragmas, which vanish without -fopenmp; loops of less work than");
    cg_line(e, "   PARALLEL_WORK run on one thread. */");
    cg_line(e, "#ifdef _OPENMP");
    cg_line(e, "#include <omp.h>");
    cg_line(e, "#define %s_OMP(x) _Pragma(#x)", up);
    cg_line(e, "#else");
    cg_line(e, "#define %s_OMP(x)", up);
    cg_line(e, "#endif");
    cg_line(e, "#define %s_PARALLEL_WORK %d", up, PARALLEL_WORK);
    cg_line(e, "#define %s_PARALLEL_LIGHT %dL /* loops of an addition or a store an element */", up,
            PARALLEL_LIGHT);
    cg_line(e, "/* The loops over neurons, whose elements are independent: compilers may");
    cg_line(e, "   vectorize them without checking whether the buffers overlap (they do");
    cg_line(e, "   not, but GCC cannot always tell, and then keeps to one neuron at a time;");
    cg_line(e, "   clang checks at run time, and warns where a hint fails). */");
    cg_line(e, "#if defined(__clang__)");
    cg_line(e, "#define %s_SIMD", up);
    cg_line(e, "#elif defined(_OPENMP)");
    cg_line(e, "#define %s_SIMD _Pragma(\"omp simd\")", up);
    cg_line(e, "#elif defined(__GNUC__)");
    cg_line(e, "#define %s_SIMD _Pragma(\"GCC ivdep\")", up);
    cg_line(e, "#else");
    cg_line(e, "#define %s_SIMD", up);
    cg_line(e, "#endif");
    cg_line(e, "/* A hint to bring the line at p into the caches. */");
    cg_line(e, "#if defined(__GNUC__) || defined(__clang__)");
    cg_line(e, "#define %s_PREFETCH(p) __builtin_prefetch(p)", up);
    cg_line(e, "#else");
    cg_line(e, "#define %s_PREFETCH(p) ((void)(p))", up);
    cg_line(e, "#endif");
    cg_line(e, "#define %s_PACK %lld /* floats of the matrix product's packed block */", up, (long long)e->pack);
    if (e->acache)
        cg_line(e, "#define %s_ACACHE %lld /* floats of its cache of A's packed blocks, after it */", up, (long long)e->acache);
    cg_line(e, "/* The matrix product's cost of an event row by row, in steps of a row of a");
    cg_line(e, "   block (docs/targets.md); a large value turns the event-driven products off. */");
    cg_line(e, "#ifndef %s_EVENT_COST", up);
    cg_line(e, "#define %s_EVENT_COST %s", up, EVENT_COST);
    cg_line(e, "#endif");
    cg_blank(e);
    if (opt->static_ws) {
        cg_line(e, "static float %s_static_ws[%s_WORKSPACE_FLOATS];", lo, up);
        cg_blank(e);
        cg_line(e, "static float *%s_ws(void *workspace)", lo);
        cg_line(e, "{");
        cg_line(e, "    return workspace ? (float *)workspace : %s_static_ws;", lo);
        cg_line(e, "}");
    } else {
        cg_line(e, "static float *%s_ws(void *workspace)", lo);
        cg_line(e, "{");
        cg_line(e, "    return (float *)workspace;");
        cg_line(e, "}");
    }
    gen_mix(e);
    gen_params(e);
    counter_funcs(e);
    return em;
}

void capi_api(TargetEmitter *em) {
    Emit *e = &em->e;
    cg_blank(e);
    cg_line(e, "const long %s_workspace_floats = %s_WORKSPACE_FLOATS;", e->p, e->P);
    gen_encoder(e);
    gen_reset(e);
    gen_step(e);
    gen_forward(e);
    gen_probe(e);
    if (e->g->train)
        gen_train(e);
}

int capi_header(const IrGraph *g, const CgenOptions *opt, Buf *h, long long *ws, long long *train_ws,
                const char **prefix) {
    TargetEmitter *em = capi_begin(g, opt);
    if (!em)
        return -1;
    gen_header(&em->e, h);
    *ws = ws_floats(&em->e);
    *train_ws = g->train ? train_ws_floats(&em->e) : 0;
    *prefix = em->e.p;
    buf_free(&em->e.c); /* the C file's start, which only the C target wants */
    return 0;
}

int capi_weights_file(const IrGraph *g, const CgenOptions *opt, const char *beside, GenFile *out) {
    TargetEmitter *em = capi_emitter(g, opt);
    Emit *e = &em->e;
    out->name = arena_printf(g->arena, "%s_weights.c", e->p);
    out->text = (Buf){0};
    e->b = &out->text;
    cg_line(e, "/* %s_weights.c: generated by snnc %s from %s. Do not edit.", e->p, SNNC_VERSION,
            cg_clean_name(e, g->source));
    cg_line(e, "   %s_load_weights and %s_init_weights, the portable target's, for the code", e->p, e->p);
    cg_line(e, "   in %s: build with cc -std=c99 -O2 -c %s_weights.c and link it with that code. */", beside, e->p);
    cg_line(e, "#include \"%s.h\"", e->p);
    cg_blank(e);
    if (opt->static_ws) {
        cg_line(e, "extern float %s_static_workspace[]; /* in %s */", e->p, beside);
        cg_blank(e);
    }
    cg_line(e, "static float *%s_ws(void *workspace)", e->p);
    cg_line(e, "{");
    if (opt->static_ws)
        cg_line(e, "    return workspace ? (float *)workspace : %s_static_workspace;", e->p);
    else
        cg_line(e, "    return (float *)workspace;");
    cg_line(e, "}");
    capi_weights(e, 0, 1);
    return 0;
}

int capi_finish(TargetEmitter *em, GenFile *out) {
    Emit *e = &em->e;
    const IrGraph *g = e->g;
    gen_header(e, &e->h);
    out[0].name = arena_printf(g->arena, "%s.h", e->p);
    out[0].text = e->h;
    out[1].name = arena_printf(g->arena, "%s.c", e->p);
    out[1].text = e->c;
    return 2;
}
