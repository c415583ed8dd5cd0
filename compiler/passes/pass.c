/*
 * pass.c: the pass manager and the pipeline's order.
 *
 * The order matters: dropout removal before hoisting (a dropout node would
 * otherwise sit between the input and the first layer), hoisting before
 * the schedule and the memory plans (hoisted values are computed and stored
 * once), the schedule before the plans (lifetimes are counted in groups).
 */
#include "passes.h"

#include <string.h>

const Pass pass_table[] = {
    {"simplify", pass_simplify, 0,
     "neuron programs: fold constants, drop exact identities (x-0, x*1, x/1, 0*spike), share "
     "common subexpressions, remove dead instructions"},
    {"autodiff", pass_autodiff, 1,
     "training only: derive the backward of every neuron program from its equations"},
    {"dropout", pass_dropout, 0, "remove dropout layers (identity at inference; kept for training)"},
    {"hoist", pass_hoist, 0,
     "mark values that are the same at every step (direct encoding) and compute them once"},
    {"schedule", pass_schedule, 1,
     "order the layers: each runs all the steps of a chunk at once (layer-major), except the layers of a "
     "recurrent loop, which step together"},
    {"memplan", pass_memplan, 1,
     "inference memory: parameters, states, and values that share buffers when their lifetimes do not overlap"},
    {"spikebits", pass_spikebits, 0,
     "training only: keep the spikes of layers read only by dense layers and pools, or by none, as bits, 32 to a word"},
    {"remat", pass_remat, 0,
     "training only, C targets: keep no states of neuron layers whose backward can recompute them from the "
     "inputs (outside recurrent groups, few states times steps, no exp, log, tanh, sigmoid or pow)"},
    {"trainplan", pass_trainplan, 1, "training only: the memory of training, what the backward keeps"},
};
const int pass_count = (int)(sizeof pass_table / sizeof pass_table[0]);

int pass_lookup(const char *name) {
    for (int i = 0; i < pass_count; i++)
        if (!strcmp(pass_table[i].name, name))
            return i;
    return -1;
}

static int listed(const char *const *list, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (!strcmp(list[i], name))
            return 1;
    return 0;
}

int pass_run_all(IrGraph *g, const PassOptions *opt) {
    for (int i = 0; i < opt->ndisabled; i++) {
        int p = pass_lookup(opt->disabled[i]);
        if (p < 0) {
            error_plain("unknown pass '%s' in --disable-pass (see snnc --list-passes)", opt->disabled[i]);
            return -1;
        }
        if (pass_table[p].required) {
            error_plain("pass '%s' is required by the back ends and cannot be disabled", opt->disabled[i]);
            return -1;
        }
    }
    for (int i = 0; i < opt->ndump; i++)
        if (strcmp(opt->dump_after[i], "sema") && pass_lookup(opt->dump_after[i]) < 0) {
            error_plain("unknown pass '%s' in --dump-ir (see snnc --list-passes)", opt->dump_after[i]);
            return -1;
        }
    FILE *out = opt->dump_to ? opt->dump_to : stdout;
    if (listed(opt->dump_after, opt->ndump, "sema")) {
        Buf b = {0};
        buf_puts(&b, "; after sema\n");
        ir_print(g, &b);
        fwrite(b.data, 1, b.len, out);
        buf_free(&b);
    }
    for (int i = 0; i < pass_count; i++) {
        const Pass *p = &pass_table[i];
        if (listed(opt->disabled, opt->ndisabled, p->name))
            continue;
        p->run(g);
        if (ir_check(g))
            ICE("the IR is inconsistent after pass '%s'", p->name);
        if (listed(opt->dump_after, opt->ndump, p->name)) {
            Buf b = {0};
            buf_printf(&b, "; after %s\n", p->name);
            ir_print(g, &b);
            fwrite(b.data, 1, b.len, out);
            buf_free(&b);
        }
    }
    return 0;
}
