/*
 * options.c: the command line: the commands, the options table, the
 * checks of what goes with what, and --help.
 *
 * Each option is a row of `options`: its name, whether it takes a value,
 * how the value is read into Options, and the commands it does something
 * for. An option that does nothing for the command is accepted, as
 * before, with a warning that says so (docs/cli.md).
 *
 * Exit status of a bad command line: 2, with `snnc: MESSAGE` and a pointer
 * to --help.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "passes.h"
#include "driver.h"

static void usage(FILE *f) {
    fputs("usage: snnc COMMAND MODEL.snn [options]\n"
          "\n"
          "commands:\n"
          "  compile   generate code: writes DIR/<net>.h and DIR/<net>.c\n"
          "  run       compile, build with the system C compiler, run on an input\n"
          "  train     train the network (its train block; options below), in generated C\n"
          "  export    write the network and its weights as an ONNX model or a NIR graph\n"
          "            (-o OUT.onnx or OUT.nir, or --format onnx|nir)\n"
          "  grad      one forward and backward pass of the training code: write the\n"
          "            gradients of the parameters (and of the input) for a given dL/doutput\n"
          "  info      layers, shapes, parameters, neurons, synaptic operations, memory\n"
          "\n"
          "MODEL is a .snn file, an ONNX model (.onnx, docs/onnx.md) or a NIR graph (.nir, docs/nir.md).\n"
          "\n"
          "common options:\n"
          "  --network NAME        the network to use when the file defines several\n"
          "  --neurons FILE.snn    more neuron models (for ONNX nodes snn::Neuron)\n"
          "  --spiking OP=MODEL    ONNX: replace every node OP by a neuron layer,\n"
          "                        e.g. --spiking 'Relu=LIF(tau = 2.0)' (ANN to SNN)\n"
          "  --timesteps N         override the network's timesteps\n"
          "  --dt SECONDS          NIR: the step that discretizes its neurons (default 1e-4)\n"
          "  --nir-convention nir|snntorch|norse|spyx|sinabs   NIR: how (default nir; docs/nir.md)\n"
          "  --batch N             largest batch the generated code accepts (default 1;\n"
          "                        run: the input's batch)\n"
          "  --emit-ir             print the IR after all passes and stop\n"
          "  --dump-ir=after:PASS  print the IR after PASS (or 'sema'); repeatable\n"
          "  --disable-pass=NAME   do not run an optional pass; repeatable\n"
          "  --dot FILE            write the graph as Graphviz\n"
          "  --list-passes, --list-targets, --help, --version\n"
          "\n",
          f);
    /* in parts: ISO C compilers need not accept a string of more than 4095 characters */
    fputs("compile options:\n"
          "  --target NAME         back end (default c; run, train and grad: the fastest\n"
          "                        this machine runs, see --list-targets)\n"
          "  --math exact|fast     exact: the portable target's arithmetic, bit for bit; fast:\n"
          "                        fused multiply-adds, vectorized exp, log and tanh (default:\n"
          "                        fast for avx512 and avx2, exact for c; docs/targets.md)\n"
          "  --precision P         cuda: the matrix products' operands in fp32 (default), tf32,\n"
          "                        bf16 or fp16 (the GPU's matrix units), fp32 sums; bf16 and\n"
          "                        fp16 also store the states training keeps, and what a dense\n"
          "                        or batchnorm layer passes to a neuron layer, in 16 bits\n"
          "  --triple T            llvm target: also an object file <net>.o for the machine T\n"
          "                        (aarch64-linux-gnu, riscv64-linux-gnu, x86_64-linux-gnu, ...)\n"
          "  --cpu NAME            with --triple: the CPU (LLVM's name; default generic)\n"
          "  --features F          with --triple: LLVM's feature list, such as +sve or +v\n"
          "  -o DIR                output folder (default .)\n"
          "  --static              use a static workspace (functions accept NULL)\n"
          "  --embed-weights       embed the --weights file as const arrays\n"
          "  --weights FILE        safetensors weights (see docs/weights.md)\n"
          "  --record LAYER[.VAR]  keep a value of every step readable (<net>_probe)\n"
          "  --chunk K             inference computes K steps of each layer at a time (default:\n"
          "                        all T; memory grows with K; 1 is step by step)\n"
          "  --train               also generate the training code (forward over all steps,\n"
          "                        backward; see docs/generated-code.md)\n"
          "\n",
          f);
    fputs("run options:\n"
          "  --input X.npy         [B, ...] (direct, rate, latency encoding), [T, B, ...] (sequence)\n"
          "  --output Y.npy        the readout [B, ...], or [T, B, ...] for readout steps\n"
          "                        (needed unless --record gives a file)\n"
          "  --weights FILE        safetensors weights; a missing tensor is an error\n"
          "  --init SEED           initialize missing weights as PyTorch does (documented)\n"
          "  --seed N              the seed of 'encode rate' spikes (default 0)\n"
          "  --record LAYER[.VAR]=FILE.npy   write a layer's output or a neuron variable\n"
          "                        over time as [T, B, ...]; repeatable\n"
          "  --cc CC               C compiler (default $CC, else cc; flags in docs/cli.md)\n"
          "  --keep-build DIR      keep the generated code and its build in DIR\n"
          "  --plot DIR            write SVG plots into DIR: spike rasters, spike rates per\n"
          "                        layer over the steps, membrane traces (run and train)\n"
          "  --threads N           threads of the generated code and the runtime (run, train,\n"
          "                        grad; default: every core); results do not depend on N\n"
          "\n"
          "  --eval                instead: the accuracy of --weights on the test split of\n"
          "                        the train block's data (or --data DIR)\n"
          "\n"
          "train options (each overrides the file's train block; docs/training.md):\n"
          "  --epochs N, --batch N, --lr X (0 < X <= 1e6), --seed N\n"
          "  --data DIR            a folder of IDX files (MNIST, Fashion-MNIST)\n"
          "  -o DIR                where checkpoint.safetensors, weights.safetensors,\n"
          "                        metrics.csv and curves.svg go (default NET.train)\n"
          "  --resume              continue from DIR/checkpoint.safetensors\n"
          "  --weights FILE        start from these weights instead of the initialization\n"
          "  --train-limit N, --test-limit N   use the first N samples of a split\n"
          "  --step-log FILE.csv   also write the loss of every optimizer step\n"
          "\n"
          "grad options (and --input, --weights, --init as for run):\n"
          "  --grad-output G.npy   dL/doutput for the output of every step, [T, B, ...]\n"
          "  --output G.safetensors  the gradient of every learnable parameter\n"
          "  --input-grad DX.npy   also write dL/dinput, shaped as the input\n"
          "  --output-steps Y.npy  also write the output of every step, [T, B, ...]\n"
          "  --record LAYER[.VAR]=FILE.npy   also write a value of every step, as run does\n"
          "\n"
          "export options (and --weights, --init as for run):\n"
          "  -o OUT                the file: OUT.nir a NIR graph (docs/nir.md), else an ONNX model\n"
          "  --format onnx|nir     the format, whatever the suffix of -o\n"
          "  --dt SECONDS          NIR: the step its neurons' time constants are chosen for\n"
          "                        (default 1e-4; import with the same --dt)\n",
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

/* A non-negative integer that fits 64 bits (seeds). */
static int parse_seed(const char *s, unsigned long long *out) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || *s == '-')
        return 0;
    *out = v;
    return 1;
}

/* ---- the commands ---- */

/* A command's bit; run --eval is a command of its own here (it evaluates
   the training code; docs/cli.md). */
enum {
    C_COMPILE = 1 << 0,
    C_RUN = 1 << 1,
    C_EVAL = 1 << 2,
    C_TRAIN = 1 << 3,
    C_GRAD = 1 << 4,
    C_EXPORT = 1 << 5,
    C_INFO = 1 << 6,
    C_ALL = (1 << 7) - 1,
    C_BUILD = C_RUN | C_EVAL | C_TRAIN | C_GRAD, /* what builds and runs code */
};

static const struct {
    const char *name;
    unsigned bit;
} commands[] = {
    {"compile", C_COMPILE}, {"run", C_RUN}, {"train", C_TRAIN}, {"grad", C_GRAD}, {"export", C_EXPORT}, {"info", C_INFO},
};

/* ---- the options ---- */

typedef struct OptSpec OptSpec;
/* Reads the value v (NULL for a flag) into o; 0, or the exit status. */
typedef int (*OptSet)(Options *o, const OptSpec *s, const char *v);

struct OptSpec {
    const char *name;  /* "--batch"; ending in '=' or ':', a prefix whose rest is the value */
    int value;         /* takes the next argument as its value */
    OptSet set;
    size_t off;        /* the field of Options that set_flag, set_str and set_int write */
    long lo, hi;       /* set_int's range */
    unsigned cmds;     /* the commands it does something for (C_*) */
};

#define FIELD(f) offsetof(Options, f)

static int set_flag(Options *o, const OptSpec *s, const char *v) {
    (void)v;
    *(int *)(void *)((char *)o + s->off) = 1;
    return 0;
}

static int set_str(Options *o, const OptSpec *s, const char *v) {
    *(const char **)(void *)((char *)o + s->off) = v;
    return 0;
}

static int set_int(Options *o, const OptSpec *s, const char *v) {
    long n;
    if (!parse_int(v, s->lo, s->hi, &n)) {
        char msg[160];
        snprintf(msg, sizeof msg, "%s needs an integer from %ld to %ld, got", s->name, s->lo, s->hi);
        return bad_usage(strcat(msg, " '%s'"), v);
    }
    *(int *)(void *)((char *)o + s->off) = (int)n;
    return 0;
}

/* --help, --version, --list-passes and --list-targets print and exit. */
static int show(Options *o, const OptSpec *s, const char *v) {
    (void)o, (void)v;
    if (!strcmp(s->name, "--help") || !strcmp(s->name, "-h"))
        usage(stdout);
    else if (!strcmp(s->name, "--version"))
        printf("snnc %s\n", SNNC_VERSION);
    else if (!strcmp(s->name, "--list-passes"))
        for (int k = 0; k < pass_count; k++)
            printf("  %-9s %s%s\n", pass_table[k].name, pass_table[k].doc, pass_table[k].required ? " (required)" : "");
    else
        target_list(stdout);
    exit(0);
}

static int set_outdir(Options *o, const OptSpec *s, const char *v) {
    (void)s;
    o->outdir = v;
    o->outdir_set = 1;
    return 0;
}

static int set_init(Options *o, const OptSpec *s, const char *v) {
    (void)s;
    if (!parse_seed(v, &o->seed))
        return bad_usage("--init needs a non-negative integer seed, got '%s'", v);
    o->init = 1;
    return 0;
}

static int set_seed(Options *o, const OptSpec *s, const char *v) {
    (void)s;
    if (!parse_seed(v, &o->set_seed))
        return bad_usage("--seed needs a non-negative integer, got '%s'", v);
    o->set_seed_given = 1;
    return 0;
}

/* A number above 0 and at most hi. */
static int parse_real(const char *s, double hi, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v > 0 && v <= hi))
        return 0;
    *out = v;
    return 1;
}

static int set_lr(Options *o, const OptSpec *s, const char *v) {
    (void)s;
    if (!parse_real(v, TRAINSPEC_MAX_LR, &o->set_lr))
        return bad_usage("--lr needs a learning rate above 0 and at most 1e6, got '%s'", v);
    return 0;
}

static int set_dt(Options *o, const OptSpec *s, const char *v) {
    (void)s;
    if (!parse_real(v, 1e6, &o->dt))
        return bad_usage("--dt needs a step in seconds above 0 and at most 1e6, got '%s'", v);
    return 0;
}

static int set_limit(Options *o, const OptSpec *s, const char *v) {
    long n;
    if (!parse_int(v, 1, 1L << 40, &n))
        return bad_usage("this option needs a positive number of samples, got '%s'", v);
    *(long *)(void *)((char *)o + s->off) = n;
    return 0;
}

static int set_spiking(Options *o, const OptSpec *s, const char *v) {
    (void)s;
    const char *eq = strchr(v, '=');
    if (!eq || eq == v || !eq[1])
        return bad_usage("--spiking needs OP=MODEL(args), e.g. Relu=LIF(tau = 2.0), got '%s'", v);
    o->spiking = v;
    return 0;
}

static int set_format(Options *o, const OptSpec *s, const char *v) {
    (void)s;
    if (strcmp(v, "onnx") && strcmp(v, "nir"))
        return bad_usage("--format needs 'onnx' or 'nir', got '%s'", v);
    o->format = v;
    return 0;
}

static int set_convention(Options *o, const OptSpec *s, const char *v) {
    (void)s;
    static const char *const convs[] = {"nir", "snntorch", "norse", "spyx", "sinabs"}; /* NirConvention's order */
    for (int k = 0; k < (int)(sizeof convs / sizeof *convs); k++)
        if (!strcmp(v, convs[k])) {
            o->nir_convention = k;
            return 0;
        }
    return bad_usage("--nir-convention needs 'nir', 'snntorch', 'norse', 'spyx' or 'sinabs', got '%s'", v);
}

static int set_batch(Options *o, const OptSpec *s, const char *v) {
    long n;
    if (!parse_int(v, s->lo, s->hi, &n))
        return bad_usage("--batch needs an integer from 1 to 1048576, got '%s'", v);
    o->batch = o->set_batch = (int)n;
    return 0;
}

static int set_math(Options *o, const OptSpec *s, const char *v) {
    (void)s;
    if (strcmp(v, "exact") && strcmp(v, "fast"))
        return bad_usage("--math needs 'exact' or 'fast', got '%s'", v);
    o->math = !strcmp(v, "exact") ? MATH_EXACT : MATH_FAST;
    return 0;
}

static int set_precision(Options *o, const OptSpec *s, const char *v) {
    (void)s;
    for (int k = 0; k < PREC_COUNT; k++)
        if (!strcmp(v, precision_names[k])) {
            o->precision = k;
            return 0;
        }
    return bad_usage("--precision needs fp32, tf32, bf16 or fp16, got '%s'", v);
}

static int dump_ir(Options *o, const OptSpec *s, const char *v) {
    (void)s;
    if (o->passes.ndump >= 16)
        return bad_usage("too many %s options", "--dump-ir");
    o->passes.dump_after[o->passes.ndump++] = v;
    return 0;
}

static int disable_pass(Options *o, const OptSpec *s, const char *v) {
    (void)s;
    if (o->passes.ndisabled >= 16)
        return bad_usage("too many %s options", "--disable-pass");
    o->passes.disabled[o->passes.ndisabled++] = v;
    return 0;
}

/* --record LAYER[.VAR][=FILE.npy]: v is the argument itself, split in place. */
static int record(Options *o, const OptSpec *s, const char *v) {
    (void)s;
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
    return 0;
}

/* In the order of --help. The commands of each: what reads the option
   (main.c and the cmd_* functions); the model's options serve all. */
static const OptSpec options[] = {
    {"--help", 0, show, 0, 0, 0, C_ALL},
    {"-h", 0, show, 0, 0, 0, C_ALL},
    {"--version", 0, show, 0, 0, 0, C_ALL},
    {"--list-passes", 0, show, 0, 0, 0, C_ALL},
    {"--list-targets", 0, show, 0, 0, 0, C_ALL},
    /* the model */
    {"--network", 1, set_str, FIELD(sema.network), 0, 0, C_ALL},
    {"--neurons", 1, set_str, FIELD(neurons), 0, 0, C_ALL},
    {"--spiking", 1, set_spiking, 0, 0, 0, C_ALL},
    {"--timesteps", 1, set_int, FIELD(sema.timesteps), 1, 1000000, C_ALL},
    {"--dt", 1, set_dt, 0, 0, 0, C_ALL},
    {"--nir-convention", 1, set_convention, 0, 0, 0, C_ALL},
    {"--batch", 1, set_batch, 0, 1, 1 << 20, C_COMPILE | C_EVAL | C_TRAIN | C_INFO}, /* run, grad: the input's */
    {"--emit-ir", 0, set_flag, FIELD(emit_ir), 0, 0, C_COMPILE | C_RUN},
    {"--dump-ir=after:", 1, dump_ir, 0, 0, 0, C_ALL},
    {"--disable-pass=", 1, disable_pass, 0, 0, 0, C_ALL},
    {"--dot", 1, set_str, FIELD(dot), 0, 0, C_COMPILE | C_INFO},
    /* the code */
    {"--target", 1, set_str, FIELD(target), 0, 0, C_ALL & ~C_EXPORT},
    {"--math", 1, set_math, 0, 0, 0, C_COMPILE | C_BUILD},
    {"--precision", 1, set_precision, 0, 0, 0, C_COMPILE | C_BUILD | C_INFO},
    {"--triple", 1, set_str, FIELD(triple), 0, 0, C_COMPILE},
    {"--cpu", 1, set_str, FIELD(cpu), 0, 0, C_COMPILE},
    {"--features", 1, set_str, FIELD(features), 0, 0, C_COMPILE},
    {"-o", 1, set_outdir, 0, 0, 0, C_COMPILE | C_TRAIN | C_EXPORT},
    {"--static", 0, set_flag, FIELD(static_ws), 0, 0, C_COMPILE},
    {"--embed-weights", 0, set_flag, FIELD(embed), 0, 0, C_COMPILE},
    {"--weights", 1, set_str, FIELD(weights), 0, 0, C_COMPILE | C_BUILD | C_EXPORT},
    {"--record", 1, record, 0, 0, 0, C_COMPILE | C_RUN | C_GRAD | C_INFO},
    {"--chunk", 1, set_int, FIELD(chunk), 1, 1000000, C_COMPILE | C_RUN | C_INFO},
    {"--train", 0, set_flag, FIELD(train), 0, 0, C_COMPILE | C_INFO},
    /* running it */
    {"--input", 1, set_str, FIELD(npy_in), 0, 0, C_RUN | C_GRAD},
    {"--output", 1, set_str, FIELD(npy_out), 0, 0, C_RUN | C_GRAD},
    {"--init", 1, set_init, 0, 0, 0, C_RUN | C_EVAL | C_GRAD | C_EXPORT},
    {"--seed", 1, set_seed, 0, 0, 0, C_RUN | C_EVAL | C_TRAIN | C_GRAD},
    {"--cc", 1, set_str, FIELD(cc), 0, 0, C_BUILD},
    {"--keep-build", 1, set_str, FIELD(keep), 0, 0, C_BUILD},
    {"--plot", 1, set_str, FIELD(plot), 0, 0, C_RUN | C_TRAIN},
    {"--threads", 1, set_int, FIELD(threads), 1, 1024, C_BUILD},
    {"--eval", 0, set_flag, FIELD(eval), 0, 0, C_RUN | C_EVAL},
    /* training */
    {"--epochs", 1, set_int, FIELD(set_epochs), 1, 1000000, C_TRAIN},
    {"--lr", 1, set_lr, 0, 0, 0, C_TRAIN},
    {"--data", 1, set_str, FIELD(set_data), 0, 0, C_TRAIN | C_EVAL},
    {"--resume", 0, set_flag, FIELD(resume), 0, 0, C_TRAIN},
    {"--train-limit", 1, set_limit, FIELD(train_limit), 0, 0, C_TRAIN},
    {"--test-limit", 1, set_limit, FIELD(test_limit), 0, 0, C_TRAIN | C_EVAL},
    {"--step-log", 1, set_str, FIELD(step_log), 0, 0, C_TRAIN},
    /* grad */
    {"--grad-output", 1, set_str, FIELD(grad_in), 0, 0, C_GRAD},
    {"--input-grad", 1, set_str, FIELD(dinput_out), 0, 0, C_GRAD},
    {"--output-steps", 1, set_str, FIELD(steps_out), 0, 0, C_GRAD},
    /* export */
    {"--format", 1, set_format, 0, 0, 0, C_EXPORT},
};

enum { NOPTIONS = (int)(sizeof options / sizeof *options) };

/* The row of argument a, and in *rest the value that a holds if the row is
   a prefix (else NULL); NULL if no row matches. */
static const OptSpec *lookup(const char *a, const char **rest) {
    for (int k = 0; k < NOPTIONS; k++) {
        const char *n = options[k].name;
        size_t len = strlen(n);
        int prefix = n[len - 1] == '=' || n[len - 1] == ':';
        if (prefix ? !strncmp(a, n, len) : !strcmp(a, n)) {
            *rest = prefix ? a + len : NULL;
            return &options[k];
        }
    }
    return NULL;
}

/* What goes with what, once every option is read. */
static int check(const Options *o) {
    if ((o->triple || o->cpu || o->features) &&
        (strcmp(o->cmd, "compile") || !o->target || strcmp(o->target, "llvm")))
        return bad_usage("%s are for compile --target llvm", "--triple, --cpu and --features");
    if ((o->cpu || o->features) && !o->triple)
        return bad_usage("%s need --triple", "--cpu and --features");
    if (!strcmp(o->cmd, "export") && !o->outdir_set)
        return bad_usage("%s needs -o OUT.onnx or -o OUT.nir", "export");
    if (o->format && strcmp(o->cmd, "export"))
        return bad_usage("--format is an option of export, not of %s", o->cmd);
    if (!o->input_file)
        return bad_usage("%s needs a model file", o->cmd);
    if (!strcmp(o->cmd, "run") && !o->eval && (!o->npy_in || (!o->npy_out && !o->nrecords)))
        return bad_usage("%s needs --input X.npy, and --output Y.npy or --record LAYER[.VAR]=FILE.npy (or both)",
                         "run");
    if (!strcmp(o->cmd, "grad") && (!o->npy_in || !o->grad_in || !o->npy_out))
        return bad_usage("%s needs --input X.npy, --grad-output G.npy and --output GRADS.safetensors", "grad");
    if ((!strcmp(o->cmd, "run") && !o->eval) || !strcmp(o->cmd, "grad"))
        for (int k = 0; k < o->nrecords; k++)
            if (!o->records[k].file || !*o->records[k].file)
                return bad_usage(!strcmp(o->cmd, "run") ? "--record needs LAYER[.VAR]=FILE.npy with run, got '%s'"
                                                        : "--record needs LAYER[.VAR]=FILE.npy with grad, got '%s'",
                                 o->records[k].spec);
    if (!strcmp(o->cmd, "compile") && o->embed && o->train)
        return bad_usage("%s: the training code keeps its parameters in its workspace; compile without "
                         "--embed-weights", "--train");
    if (!strcmp(o->cmd, "compile") && o->embed && !o->weights && !drv_is_onnx(o->input_file) &&
        !drv_is_nir(o->input_file))
        return bad_usage("%s needs --weights FILE", "--embed-weights");
    return 0;
}

/* An option the command does nothing with: a warning, once per option. */
static void warn_unused(const Options *o, const OptSpec *const *given, int n) {
    unsigned cmd = 0;
    for (int k = 0; k < (int)(sizeof commands / sizeof *commands); k++)
        if (!strcmp(o->cmd, commands[k].name))
            cmd = commands[k].bit;
    if (cmd == C_RUN && o->eval)
        cmd = C_EVAL;
    for (int i = 0; i < n; i++) {
        const OptSpec *s = given[i];
        int seen = 0;
        for (int j = 0; j < i; j++)
            seen |= given[j] == s;
        /* compile reads --weights only to embed them */
        int unembedded = cmd == C_COMPILE && !strcmp(s->name, "--weights") && !o->embed;
        if (seen || ((s->cmds & cmd) && !unembedded))
            continue;
        fprintf(stderr, "snnc: warning: %s does nothing for %s%s (ignored)\n", s->name, o->cmd,
                cmd == C_EVAL ? " --eval" : unembedded ? " without --embed-weights" : "");
    }
}

int drv_parse_args(int argc, char **argv, Options *o) {
    memset(o, 0, sizeof *o);
    o->target = NULL; /* compile: c; run, train, grad: the fastest this machine runs */
    o->outdir = ".";
    const OptSpec **given = calloc((size_t)argc + 1, sizeof *given);
    if (!given) {
        fputs("snnc: out of memory\n", stderr);
        return 1;
    }
    int n = 0, rc = 0;
    for (int i = 1; i < argc && !rc; i++) {
        const char *a = argv[i], *v = NULL;
        const OptSpec *s = lookup(a, &v);
        if (s && s->value && !v) { /* the next argument (a prefix row's is in a) */
            if (i + 1 >= argc) {
                rc = bad_usage("option %s needs a value", a);
                break;
            }
            v = argv[++i];
        }
        if (s) {
            given[n++] = s;
            rc = s->set(o, s, s->value ? v : NULL);
        } else if (a[0] == '-' && a[1]) {
            rc = bad_usage("unknown option '%s'", a);
        } else if (!o->cmd) {
            o->cmd = a;
        } else if (!o->input_file) {
            o->input_file = a;
        } else
            rc = bad_usage("unexpected argument '%s'", a);
    }
    if (!rc && !o->cmd) {
        usage(stderr);
        rc = 2;
    }
    if (!rc) {
        int known = 0;
        for (int k = 0; k < (int)(sizeof commands / sizeof *commands); k++)
            known |= !strcmp(o->cmd, commands[k].name);
        if (!known)
            rc = bad_usage("unknown command '%s' (compile, run, train, grad, export or info)", o->cmd);
    }
    if (!rc)
        rc = check(o);
    if (!rc)
        warn_unused(o, given, n);
    free(given);
    return rc;
}
