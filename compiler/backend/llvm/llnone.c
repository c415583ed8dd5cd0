/*
 * llnone.c: the llvm target of an snnc built without LLVM 16
 * (cmake/LLVM.cmake): it is listed, and asking for it says how to build
 * snnc with it; it writes and loads nothing.
 */
#include "backend.h"

static const TargetKernels none[IR_NUM_OPS];

const Target target_llvm = {
    .name = "llvm",
    .doc = "LLVM IR through LLVM 16's C API, JIT-compiled in process (snnc run) or written as .ll",
    .kernels = none,
    .missing = "this snnc was built without LLVM; install llvm-16-dev (scripts/install-deps.sh) and configure "
              "with -DSNNC_LLVM=ON",
};
