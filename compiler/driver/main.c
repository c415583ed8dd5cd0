/*
 * main.c: the snnc command line: compile, run, info.
 *
 * The pipeline is called from here in the order the design gives it:
 * read, parse (the built-in neuron library, then the user's file), sema,
 * passes, back end. Output files are built in memory and written only when
 * everything succeeded, each atomically, so a failed run leaves nothing
 * behind. `run`, `train` and `grad` have the target build and load the
 * generated code (load.c) and call it in process.
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

/* Returns 0 on success, or the exit status. */
static int parse_args(int argc, char **argv, Options *o) {
    memset(o, 0, sizeof *o);
    o->target = NULL; /* compile: c; run, train, grad: the fastest this machine runs */
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
            o->outdir_set = 1;
        } else if (!strcmp(a, "--triple")) {
            NEEDV();
            o->triple = v;
        } else if (!strcmp(a, "--cpu")) {
            NEEDV();
            o->cpu = v;
        } else if (!strcmp(a, "--features")) {
            NEEDV();
            o->features = v;
        } else if (!strcmp(a, "--static")) {
            o->static_ws = 1;
        } else if (!strcmp(a, "--train")) {
            o->train = 1;
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
        } else if (!strcmp(a, "--grad-output")) {
            NEEDV();
            o->grad_in = v;
        } else if (!strcmp(a, "--input-grad")) {
            NEEDV();
            o->dinput_out = v;
        } else if (!strcmp(a, "--output-steps")) {
            NEEDV();
            o->steps_out = v;
        } else if (!strcmp(a, "--init")) {
            NEEDV();
            char *end;
            errno = 0;
            o->seed = strtoull(v, &end, 10);
            if (errno || end == v || *end || *v == '-')
                return bad_usage("--init needs a non-negative integer seed, got '%s'", v);
            o->init = 1;
        } else if (!strcmp(a, "--epochs")) {
            NEEDV();
            if (!parse_int(v, 1, 1000000, &n))
                return bad_usage("--epochs needs an integer from 1 to 1000000, got '%s'", v);
            o->set_epochs = (int)n;
        } else if (!strcmp(a, "--lr")) {
            NEEDV();
            char *end;
            errno = 0;
            o->set_lr = strtod(v, &end);
            if (errno || end == v || *end || !(o->set_lr > 0 && o->set_lr <= TRAINSPEC_MAX_LR))
                return bad_usage("--lr needs a learning rate above 0 and at most 1e6, got '%s'", v);
        } else if (!strcmp(a, "--seed")) {
            NEEDV();
            char *end;
            errno = 0;
            o->set_seed = strtoull(v, &end, 10);
            if (errno || end == v || *end || *v == '-')
                return bad_usage("--seed needs a non-negative integer, got '%s'", v);
            o->set_seed_given = 1;
        } else if (!strcmp(a, "--data")) {
            NEEDV();
            o->set_data = v;
        } else if (!strcmp(a, "--train-limit") || !strcmp(a, "--test-limit")) {
            NEEDV();
            if (!parse_int(v, 1, 1L << 40, &n))
                return bad_usage("this option needs a positive number of samples, got '%s'", v);
            if (a[2] == 't' && a[3] == 'r')
                o->train_limit = n;
            else
                o->test_limit = n;
        } else if (!strcmp(a, "--neurons")) {
            NEEDV();
            o->neurons = v;
        } else if (!strcmp(a, "--spiking")) {
            NEEDV();
            const char *eq = strchr(v, '=');
            if (!eq || eq == v || !eq[1])
                return bad_usage("--spiking needs OP=MODEL(args), e.g. Relu=LIF(tau = 2.0), got '%s'", v);
            o->spiking = v;
        } else if (!strcmp(a, "--step-log")) {
            NEEDV();
            o->step_log = v;
        } else if (!strcmp(a, "--resume")) {
            o->resume = 1;
        } else if (!strcmp(a, "--eval")) {
            o->eval = 1;
        } else if (!strcmp(a, "--dt")) {
            NEEDV();
            char *end;
            errno = 0;
            o->dt = strtod(v, &end);
            if (errno || end == v || *end || !(o->dt > 0 && o->dt <= 1e6))
                return bad_usage("--dt needs a step in seconds above 0 and at most 1e6, got '%s'", v);
        } else if (!strcmp(a, "--format")) {
            NEEDV();
            if (strcmp(v, "onnx") && strcmp(v, "nir"))
                return bad_usage("--format needs 'onnx' or 'nir', got '%s'", v);
            o->format = v;
        } else if (!strcmp(a, "--nir-convention")) {
            NEEDV();
            /* NirConvention's order */
            static const char *const convs[] = {"nir", "snntorch", "norse", "spyx", "sinabs"};
            o->nir_convention = -1;
            for (int k = 0; k < (int)(sizeof convs / sizeof *convs); k++)
                if (!strcmp(v, convs[k]))
                    o->nir_convention = k;
            if (o->nir_convention < 0)
                return bad_usage("--nir-convention needs 'nir', 'snntorch', 'norse', 'spyx' or 'sinabs', got '%s'", v);
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
            o->set_batch = (int)n;
        } else if (!strcmp(a, "--threads")) {
            NEEDV();
            if (!parse_int(v, 1, 1024, &n))
                return bad_usage("--threads needs an integer from 1 to 1024, got '%s'", v);
            o->threads = (int)n;
        } else if (!strcmp(a, "--chunk")) {
            NEEDV();
            if (!parse_int(v, 1, 1000000, &n))
                return bad_usage("--chunk needs an integer from 1 to 1000000, got '%s'", v);
            o->chunk = (int)n;
        } else if (!strcmp(a, "--math")) {
            NEEDV();
            if (strcmp(v, "exact") && strcmp(v, "fast"))
                return bad_usage("--math needs 'exact' or 'fast', got '%s'", v);
            o->math = !strcmp(v, "exact") ? MATH_EXACT : MATH_FAST;
        } else if (!strcmp(a, "--precision")) {
            NEEDV();
            for (n = 0; n < PREC_COUNT && strcmp(v, precision_names[n]); n++)
                ;
            if (n == PREC_COUNT)
                return bad_usage("--precision needs fp32, tf32, bf16 or fp16, got '%s'", v);
            o->precision = (int)n;
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
        } else if (!strcmp(a, "--plot")) {
            NEEDV();
            o->plot = v;
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
    if (strcmp(o->cmd, "compile") && strcmp(o->cmd, "run") && strcmp(o->cmd, "info") &&
        strcmp(o->cmd, "grad") && strcmp(o->cmd, "train") && strcmp(o->cmd, "export"))
        return bad_usage("unknown command '%s' (compile, run, train, grad, export or info)", o->cmd);
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

/* ---- front end ---- */

/* Read, parse and check the model: the graph before any pass. */
IrGraph *drv_front_end(Arena *a, Options *o) {
    Node *std, *user;
    if (drv_parse_model(a, o, &std, &user) != 0)
        return NULL;
    IrGraph *g = sema_build(a, std, user, &o->sema);
    if (!g || !trainspec_build(user, g->name, &o->spec) || drv_bind_onnx_weights(a, o, g) != 0)
        return NULL;
    /* run, grad and export take the values of the parameters from --weights
     * or --init; a network without parameters needs neither */
    if (!o->weights && !o->onnx_data && !o->init &&
        (!strcmp(o->cmd, "run") || !strcmp(o->cmd, "grad") || !strcmp(o->cmd, "export"))) {
        if (g->params.len) {
            error_plain("%s: network '%s' has %d parameter tensor%s ('%s'%s): give --weights FILE or --init SEED",
                        o->input_file, g->name, g->params.len, g->params.len == 1 ? "" : "s",
                        g->params.items[0].name, g->params.len == 1 ? "" : " first");
            return NULL;
        }
        o->init = 1;
    }
    /* the command line overrides the train block */
    TrainSpec *ts = &o->spec;
    if (o->set_epochs)
        ts->epochs = o->set_epochs;
    if (o->set_batch)
        ts->batch = o->set_batch;
    if ((!strcmp(o->cmd, "train") || o->eval) && ts->batch > 65536) {
        error_plain("--batch %d: a training or evaluation batch holds at most 65536 samples", ts->batch);
        return NULL;
    }
    if (o->set_lr > 0)
        ts->lr = o->set_lr;
    if (o->set_seed_given)
        ts->seed = o->set_seed;
    if (o->set_data) {
        ts->data = DATA_IDX;
        ts->dir = o->set_data;
    }
    return g;
}

/* The batch, the records, and the passes. */
IrGraph *drv_middle_end(Arena *a, Options *o, IrGraph *g) {
    g->batch = o->batch > 0 ? o->batch : 1;
    g->train = o->train;
    g->chunk = o->chunk;
    /* --precision bf16 and fp16 (the cuda target's) store the states that the backward reads in 16 bits */
    const Target *t = o->target ? target_lookup(o->target) : NULL;
    if (o->train && t && t->precisions && (o->precision == PREC_BF16 || o->precision == PREC_FP16))
        g->store = o->precision == PREC_BF16 ? STORE_BF16 : STORE_FP16;
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

int drv_ensure_dir(const char *dir) {
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

int drv_write(const char *path, const char *data, size_t len) {
    if (write_file_atomic(path, data, len) != 0) {
        error_plain("%s: cannot write: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

int drv_read_weights_into(const IrGraph *g, const char *path, int allow_missing, float *w) {
    char err[512];
    SnnrtStFile f;
    if (drv_check_input_path(path) != 0)
        return -1;
    if (snnrt_st_read(path, &f, err, sizeof err) != 0) {
        error_plain("%s", err);
        return -1;
    }
    int ok = 1;
    for (int i = 0; ok && i < g->params.len; i++) {
        const IrParam *q = &g->params.items[i];
        const SnnrtStEntry *e = snnrt_st_find(&f, q->name);
        if (!e && allow_missing)
            continue;
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
    return ok ? 0 : -1;
}

int drv_generate(const IrGraph *g, Options *o, const char *dir, const float *embedded) {
    const Target *t = target_lookup(o->target ? o->target : "c");
    if (!t) {
        error_plain("unknown target '%s' (see snnc --list-targets)", o->target);
        return -1;
    }
    CgenOptions co;
    memset(&co, 0, sizeof co);
    co.static_ws = o->static_ws;
    co.triple = o->triple;
    co.cpu = o->cpu;
    co.features = o->features;
    co.math = o->math;
    co.precision = o->precision;
    co.embedded = embedded;
    GenFile files[TARGET_MAX_FILES];
    int n = target_generate(t, g, &co, files);
    if (n < 0)
        return -1;
    int rc = drv_ensure_dir(dir);
    for (int i = 0; rc == 0 && i < n; i++) {
        char *path = arena_printf(g->arena, "%s/%s", dir, files[i].name);
        rc = drv_write(path, files[i].text.data, files[i].text.len);
    }
    for (int i = 0; i < n; i++)
        buf_free(&files[i].text);
    return rc;
}

/* ---- info ---- */

static long long round16(long long x) { return (x + 15) & ~15LL; }

/* The training workspace, and what keeping spikes as bits and states in 16 bits saves. */
static void info_train(const IrGraph *g) {
    const IrPlan *P = &g->trainp;
    long long kept = P->persist * 4, saved = 0;
    printf("training memory (batch %d): parameters and gradients %lld bytes; values kept for the backward %lld "
           "bytes; gradients of the values %lld bytes\n",
           g->batch, (long long)(g->param_floats * 8), kept, (long long)((P->floats - P->persist) * 4));
    for (int i = 0; i < g->nodes.len; i++) {
        const IrNode *n = &g->nodes.items[i];
        if (n->dead || n->alias >= 0 || !P->at[i].bits)
            continue;
        long long vals = (long long)P->at[i].vsteps * g->batch * shape_count(&n->shape);
        long long bits = round16(vals / 32) * 4, floats = round16(vals) * 4;
        printf("  spikes of %s kept as bits: %lld bytes (as floats %lld)\n", n->name, bits, floats);
        saved += floats - bits;
    }
    long long halved = 0;
    for (int i = 0; i < g->nodes.len; i++) {
        const IrNode *n = &g->nodes.items[i];
        if (n->dead || n->alias >= 0 || !P->at[i].shalf)
            continue;
        long long vals = (long long)P->at[i].ssteps * n->neuron->states.len * g->batch * shape_count(&n->shape);
        long long half = round16((vals + 1) / 2) * 4, floats = round16(vals) * 4;
        printf("  states of %s stored in %s: %lld bytes (as floats %lld)\n", n->name,
               g->store == STORE_BF16 ? "bf16" : "fp16", half, floats);
        halved += floats - half;
    }
    for (int i = 0; i < g->nodes.len; i++) {
        const IrNode *n = &g->nodes.items[i];
        if (n->dead || n->alias >= 0 || !P->at[i].vhalf)
            continue;
        long long vals = (long long)P->at[i].vsteps * g->batch * shape_count(&n->shape);
        long long half = round16((vals + 1) / 2) * 4, floats = round16(vals) * 4;
        printf("  output of %s and its gradient stored in %s: %lld bytes (as floats %lld)\n", n->name,
               g->store == STORE_BF16 ? "bf16" : "fp16", half, floats);
        halved += floats - half;
    }
    if (saved || halved)
        printf("  %s save %lld bytes of the values kept (%.1f%% less: %lld bytes as floats), %.1f%% of the "
               "training region\n",
               !halved ? "bits" : !saved ? "16-bit values" : "bits and 16-bit values", saved + halved,
               100.0 * (double)(saved + halved) / (double)(kept + saved + halved), kept + saved + halved,
               100.0 * (double)(saved + halved) / (double)(g->param_floats * 8 + P->floats * 4 + saved + halved));
}

static void info(const IrGraph *g, const Options *o) {
    /* the parameters of each node, in one pass */
    int64_t *per_node = arena_alloc(g->arena, sizeof(int64_t) * (size_t)(g->nodes.len + 1));
    for (int k = 0; k < g->params.len; k++)
        per_node[g->params.items[k].node] += g->params.items[k].count;
    const IrNode *in = &g->nodes.items[g->input];
    const char *enc = g->events.on ? arena_printf(g->arena, "events, window %lld%s", (long long)g->events.window,
                                                  g->events.binary ? ", binary" : "")
                                   : encoding_names[g->encoding];
    printf("network %s: %d timesteps, input %s %s (%s), output %s readout %s\n", g->name,
           g->timesteps, in->name, shape_str(g->arena, &in->shape), enc,
           g->nodes.items[g->output].name, readout_names[g->readout]);
    printf("\n%-20s %-10s %-14s %12s %10s %14s\n", "layer", "op", "shape", "parameters", "neurons",
           "synops/step");
    int64_t tp = 0, tn = 0, ts = 0;
    for (int i = 0; i < g->nodes.len; i++) {
        const IrNode *n = &g->nodes.items[i];
        if (n->dead)
            continue;
        int64_t params = per_node[i], neurons = n->op == IR_NEURON ? shape_count(&n->shape) : 0;
        int64_t syn = ir_node_macs(g, i);
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
    const IrPlan *P = &g->infer;
    printf("inference memory (batch %d): parameters %lld bytes; states and kept values %lld bytes; values of %d "
           "step%s at a time %lld bytes (--chunk; %d timesteps)\n",
           g->batch, (long long)(g->param_floats * 4), (long long)(P->persist * 4), P->chunk, P->chunk == 1 ? "" : "s",
           (long long)((P->floats - P->persist) * 4), g->timesteps);
    if (g->train)
        info_train(g);
    const Target *t = o->target ? target_lookup(o->target) : NULL;
    if (t && t->device_floats) {
        long long inf = (long long)t->device_floats(g, 0), tr = g->train ? (long long)t->device_floats(g, 1) : 0;
        printf("device memory of target %s (batch %d): inference %lld bytes", t->name, g->batch, inf * 4);
        if (g->train && tr < 0)
            printf("; training: not supported by this target yet");
        else if (g->train)
            printf("; training %lld bytes", tr * 4);
        printf(" (the workspace: the parameters, the plan's region and the target's scratch)\n");
        if (g->train && tr >= 0)
            printf("snnc train --target %s adds %lld bytes of device memory (batches on their way, the outputs and "
                   "dL/doutput)\n", t->name, (long long)t->device_floats(g, 2) * 4);
    } else
        printf("(the target adds its scratch: snnc compile writes the workspace's size in the header)\n");
}

int main(int argc, char **argv) {
    Options o;
    int rc = parse_args(argc, argv, &o);
    if (rc)
        return rc;
    Arena arena = {0};
    if (!strcmp(o.cmd, "run") || !strcmp(o.cmd, "grad") || !strcmp(o.cmd, "train") || !strcmp(o.cmd, "export")) {
        rc = !strcmp(o.cmd, "train")   ? cmd_train(&arena, &o)
             : !strcmp(o.cmd, "export") ? cmd_export(&arena, &o)
             : !strcmp(o.cmd, "grad") ? cmd_grad(&arena, &o)
             : o.eval                 ? cmd_eval(&arena, &o)
                                      : cmd_run(&arena, &o);
        if (rc && diag_errors() > 1)
            fprintf(stderr, "%d errors generated.\n", diag_errors());
        arena_free(&arena);
        return rc;
    }
    IrGraph *g = drv_front_end(&arena, &o);
    if (g)
        g = drv_middle_end(&arena, &o, g);
    if (!g)
        goto fail;
    if (o.dot && drv_check_result_path(&arena, o.dot) != 0)
        goto fail;
    float *w = NULL;
    if (!strcmp(o.cmd, "compile") && !o.emit_ir && o.embed && !(w = drv_param_block(g, &o)))
        goto fail;
    if (!strcmp(o.cmd, "info")) {
        info(g, &o);
    } else if (o.emit_ir) {
        Buf b = {0};
        ir_print(g, &b);
        fwrite(b.data, 1, b.len, stdout);
        buf_free(&b);
    } else {
        int bad = drv_generate(g, &o, o.outdir, w);
        if (!bad && o.onnx_data && !o.embed) /* an ONNX model's weights, beside the code that loads them */
            bad = drv_write_onnx_weights(&arena, &o, g,
                                         arena_printf(&arena, "%s/%s.safetensors", o.outdir, drv_lower(&arena, g->name)));
        if (bad) {
            free(w);
            goto fail;
        }
    }
    free(w);
    /* the graph last: a failure above leaves no file behind */
    if (o.dot) {
        Buf b = {0};
        ir_dot(g, &b);
        int bad = drv_write(o.dot, b.data, b.len);
        buf_free(&b);
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
