/*
 * lltarget.c: the llvm target (--target llvm): its table of kernels, and
 * how snnc runs its code without a C compiler.
 *
 * Loading builds the module in the context of an ORC thread-safe context,
 * sets the host's triple and data layout, optimizes it with the new pass
 * manager's default<O2> pipeline for a target machine of the host's CPU
 * and features (AVX-512 or AVX2 where the CPU has them), and hands it to
 * an LLJIT whose code generator is set up the same way; the C library's
 * functions (expf, memcpy, ...) resolve to snnc's own process. The API's
 * functions are looked up by name into the LoadedModel. The code runs on
 * one thread. --keep-build DIR writes the optimized module there as
 * <net>.ll, with <net>.h.
 *
 * It has the forward and backward kernels of every op: snnc run, train
 * and grad load it alike (with g->train, the training API's functions
 * too).
 */
#include <errno.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ll.h"

#define LL_FWD_INPUT NULL
#define LL_BWD_INPUT NULL
#define LL_FWD_DENSE ll_dense_fwd
#define LL_BWD_DENSE ll_dense_bwd
#define LL_FWD_CONV2D ll_conv_fwd
#define LL_BWD_CONV2D ll_conv_bwd
#define LL_FWD_MAXPOOL ll_pool_fwd
#define LL_BWD_MAXPOOL ll_pool_bwd
#define LL_FWD_AVGPOOL ll_pool_fwd
#define LL_BWD_AVGPOOL ll_pool_bwd
#define LL_FWD_FLATTEN NULL
#define LL_BWD_FLATTEN NULL
#define LL_FWD_RESHAPE NULL
#define LL_BWD_RESHAPE NULL
#define LL_FWD_ADD ll_eltwise_fwd
#define LL_BWD_ADD ll_eltwise_bwd
#define LL_FWD_SCALE ll_eltwise_fwd
#define LL_BWD_SCALE ll_eltwise_bwd
#define LL_FWD_BATCHNORM ll_batchnorm_fwd
#define LL_BWD_BATCHNORM ll_batchnorm_bwd
#define LL_FWD_DROPOUT ll_eltwise_fwd
#define LL_BWD_DROPOUT ll_eltwise_bwd
#define LL_FWD_IDENTITY ll_eltwise_fwd
#define LL_BWD_IDENTITY ll_eltwise_bwd
#define LL_FWD_NEURON ll_neuron_fwd
#define LL_BWD_NEURON ll_neuron_bwd
#define LL_FWD_DELAY ll_delay_fwd
#define LL_BWD_DELAY ll_delay_bwd

static const TargetKernels ll_kernels[IR_NUM_OPS] = {
#define OP(id, name, nin, kernel, sig, doc) [IR_##id] = {LL_FWD_##id, LL_BWD_##id},
#include "ops.def"
#undef OP
};

/* The convolutions are written inline (llconv.c): nothing to share. */
static void ll_conv(TargetEmitter *em) { (void)em; }

int ll_error(LLVMErrorRef err, const char *what) {
    char *msg = LLVMGetErrorMessage(err);
    error_plain("llvm target: %s: %s", what, msg);
    LLVMDisposeErrorMessage(msg);
    return -1;
}

LLVMTargetMachineRef ll_machine(const char *triple, const char *cpu, const char *features) {
    static int ready;
    if (!ready) {
        /* the host's, and those of the machines compile --triple writes for */
        LLVMInitializeAArch64TargetInfo();
        LLVMInitializeAArch64Target();
        LLVMInitializeAArch64TargetMC();
        LLVMInitializeAArch64AsmPrinter();
        LLVMInitializeRISCVTargetInfo();
        LLVMInitializeRISCVTarget();
        LLVMInitializeRISCVTargetMC();
        LLVMInitializeRISCVAsmPrinter();
        LLVMInitializeX86TargetInfo();
        LLVMInitializeX86Target();
        LLVMInitializeX86TargetMC();
        LLVMInitializeX86AsmPrinter();
        LLVMInitializeNativeTarget();
        LLVMInitializeNativeAsmPrinter();
        ready = 1;
    }
    int host = !triple;
    char *ht = host ? LLVMGetDefaultTargetTriple() : NULL;
    char *hc = host ? LLVMGetHostCPUName() : NULL, *hf = host ? LLVMGetHostCPUFeatures() : NULL;
    LLVMTargetRef target = NULL;
    char *msg = NULL;
    LLVMTargetMachineRef tm = NULL;
    if (LLVMGetTargetFromTriple(host ? ht : triple, &target, &msg) != 0)
        error_plain("llvm target: no code generator for '%s' (this snnc writes for aarch64, riscv64 and x86_64 "
                    "triples): %s", host ? ht : triple, msg);
    else
        tm = LLVMCreateTargetMachine(target, host ? ht : triple, host ? hc : cpu ? cpu : "",
                                     host ? hf : features ? features : "", LLVMCodeGenLevelDefault, LLVMRelocPIC,
                                     host ? LLVMCodeModelJITDefault : LLVMCodeModelDefault);
    LLVMDisposeMessage(msg);
    if (host) {
        LLVMDisposeMessage(ht);
        LLVMDisposeMessage(hc);
        LLVMDisposeMessage(hf);
    }
    return tm;
}

int ll_optimize(LLVMModuleRef mod, LLVMTargetMachineRef tm) {
    char *triple = LLVMGetTargetMachineTriple(tm);
    LLVMSetTarget(mod, triple);
    LLVMDisposeMessage(triple);
    LLVMTargetDataRef dl = LLVMCreateTargetDataLayout(tm);
    char *layout = LLVMCopyStringRepOfTargetData(dl);
    LLVMSetDataLayout(mod, layout);
    LLVMDisposeMessage(layout);
    LLVMDisposeTargetData(dl);
    LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
    LLVMErrorRef err = LLVMRunPasses(mod, "default<O2>", tm, po);
    LLVMDisposePassBuilderOptions(po);
    return err ? ll_error(err, "optimizing") : 0;
}

/* --keep-build: the optimized module and the header. */
static int keep(const IrGraph *g, const char *dir, LLVMModuleRef mod, const TargetEmitter *em) {
    char *text = LLVMPrintModuleToString(mod);
    const char *ll = arena_printf(g->arena, "%s/%s.ll", dir, em->p), *h = arena_printf(g->arena, "%s/%s.h", dir, em->p);
    int rc = 0;
    if (write_file_atomic(ll, text, strlen(text)) != 0 ||
        write_file_atomic(h, em->header.data ? em->header.data : "", em->header.len) != 0) {
        error_plain("%s: cannot write: %s", dir, strerror(errno));
        rc = -1;
    }
    LLVMDisposeMessage(text);
    return rc;
}

/* The address of the API's symbol <net>_<name>, or NULL after reporting. */
static void *lookup(LLVMOrcLLJITRef jit, const TargetEmitter *em, const IrGraph *g, const char *name) {
    LLVMOrcExecutorAddress addr = 0;
    const char *full = arena_printf(g->arena, "%s_%s", em->p, name);
    LLVMErrorRef err = LLVMOrcLLJITLookup(jit, &addr, full);
    if (err) {
        ll_error(err, full);
        return NULL;
    }
    return (void *)(uintptr_t)addr;
}

static void jit_unload(LoadedModel *m) {
    if (m->handle) {
        LLVMErrorRef err = LLVMOrcDisposeLLJIT(m->handle);
        if (err)
            ll_error(err, "unloading");
    }
    memset(m, 0, sizeof *m);
}

static int jit_load(const IrGraph *g, const LoadOptions *lo, LoadedModel *m) {
    memset(m, 0, sizeof *m);
    LLVMOrcThreadSafeContextRef tsc = LLVMOrcCreateNewThreadSafeContext();
    CgenOptions co;
    memset(&co, 0, sizeof co);
    co.no_loader = 1; /* the driver fills the parameters */
    co.math = lo->math;
    co.target_ctx = LLVMOrcThreadSafeContextGetContext(tsc);
    TargetEmitter *em = target_emit(&target_llvm, g, &co);
    LLVMTargetMachineRef tm = em ? ll_machine(NULL, NULL, NULL) : NULL, jtm = tm ? ll_machine(NULL, NULL, NULL) : NULL;
    if (!jtm || ll_optimize(em->mod, tm) != 0 || (lo->keep && keep(g, lo->keep, em->mod, em) != 0)) {
        if (tm)
            LLVMDisposeTargetMachine(tm);
        if (jtm)
            LLVMDisposeTargetMachine(jtm);
        if (em)
            llapi_dispose(em, 0);
        LLVMOrcDisposeThreadSafeContext(tsc);
        return -1;
    }
    LLVMDisposeTargetMachine(tm);
    LLVMModuleRef mod = em->mod;
    llapi_dispose(em, 1);
    LLVMOrcLLJITBuilderRef builder = LLVMOrcCreateLLJITBuilder();
    LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(builder, LLVMOrcJITTargetMachineBuilderCreateFromTargetMachine(jtm));
    LLVMOrcLLJITRef jit = NULL;
    LLVMErrorRef err = LLVMOrcCreateLLJIT(&jit, builder);
    if (err) {
        LLVMDisposeModule(mod);
        LLVMOrcDisposeThreadSafeContext(tsc);
        return ll_error(err, "creating the JIT");
    }
    m->handle = jit;
    LLVMOrcDefinitionGeneratorRef gen = NULL;
    err = LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(&gen, LLVMOrcLLJITGetGlobalPrefix(jit), NULL, NULL);
    if (err) {
        LLVMDisposeModule(mod);
        LLVMOrcDisposeThreadSafeContext(tsc);
        jit_unload(m);
        return ll_error(err, "the C library's symbols");
    }
    LLVMOrcJITDylibAddGenerator(LLVMOrcLLJITGetMainJITDylib(jit), gen);
    LLVMOrcThreadSafeModuleRef tsm = LLVMOrcCreateNewThreadSafeModule(mod, tsc);
    LLVMOrcDisposeThreadSafeContext(tsc); /* the module and the JIT keep it */
    err = LLVMOrcLLJITAddLLVMIRModule(jit, LLVMOrcLLJITGetMainJITDylib(jit), tsm);
    if (err) {
        LLVMOrcDisposeThreadSafeModule(tsm);
        jit_unload(m);
        return ll_error(err, "adding the module");
    }
    /* the first lookup compiles the module */
    const long *ws = lookup(jit, em, g, "workspace_floats");
    *(void **)&m->reset = ws ? lookup(jit, em, g, "reset") : NULL;
    *(void **)&m->step = m->reset ? lookup(jit, em, g, "step") : NULL;
    *(void **)&m->forward = m->step ? lookup(jit, em, g, "forward") : NULL;
    if (m->forward && g->probes.len)
        *(void **)&m->probe = lookup(jit, em, g, "probe");
    if (m->forward && g->encoding == ENC_RATE && !(*(void **)&m->seed = lookup(jit, em, g, "seed")))
        m->forward = NULL;
    const long *tws = NULL;
    if (m->forward && g->train) {
        tws = lookup(jit, em, g, "train_workspace_floats");
        *(void **)&m->train_forward = tws ? lookup(jit, em, g, "train_forward") : NULL;
        *(void **)&m->train_forward_at = m->train_forward ? lookup(jit, em, g, "train_forward_at") : NULL;
        *(void **)&m->train_backward = m->train_forward_at ? lookup(jit, em, g, "train_backward") : NULL;
        *(void **)&m->train_spikes = m->train_backward ? lookup(jit, em, g, "train_spikes") : NULL;
        *(void **)&m->train_grads = m->train_spikes ? lookup(jit, em, g, "train_grads") : NULL;
    }
    if (!m->forward || (g->probes.len && !m->probe) || (g->train && !m->train_grads)) {
        jit_unload(m);
        return -1;
    }
    m->ws_floats = *ws;
    m->train_ws_floats = tws ? *tws : 0;
    return 0;
}

const Target target_llvm = {
    .name = "llvm",
    .doc = "LLVM IR through LLVM 16's C API: run JIT-compiles it in process (ORC), compile writes .ll; "
           "inference and training, on one thread",
    .kernels = ll_kernels,
    .begin = llapi_begin,
    .gemm = ll_gemm,
    .conv = ll_conv,
    .api = llapi_api,
    .finish = llapi_finish,
    .load = jit_load,
    .unload = jit_unload,
};
