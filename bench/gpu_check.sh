#!/usr/bin/env bash
# gpu_check.sh: everything the project checks and measures on an NVIDIA GPU,
# in two halves, for a GPU machine that has no snnc and no network.
#
#   bash bench/gpu_check.sh prepare      where snnc is built (build/): writes
#                                        .gpu/ (about 50 MB): the CUDA test
#                                        pack, the precision test, the benchmark,
#                                        snnc itself (a build without LLVM and
#                                        MPI, with the shared libraries it needs
#                                        beside the C library's) and a part of
#                                        Fashion-MNIST
#   bash bench/gpu_check.sh run OUTDIR   on the GPU machine, with .gpu/ copied
#                                        there beside the repository: nvcc,
#                                        PyTorch 2 and CuPy are all it needs;
#                                        about 5 minutes, logs into OUTDIR
#   bash bench/gpu_check.sh train OUTDIR the same machine, after run (a command
#                                        of its own: each stays within a
#                                        device call's 10 minutes): the pack's
#                                        snnc and a C compiler; about 3 minutes
#
# run: tests/backend/test_cuda.py device (every example, golden model and
# reference network: the .cu built by nvcc and run on the GPU against the
# portable target's values; snnc train's device loop against its emulated
# build), tests/backend/test_cuda_precision.py device (cuBLAS's tf32, bf16
# and fp16 products against rounded operands), bench/gpu_bench.py run
# (bench/README.md). train: with the pack's snnc,
# tests/backend/test_cuda_train.py (snnc train --target cuda against --target
# c), tests/backend/test_cuda_half.py (16-bit stored states and products, the GPU's build
# against the rounded-state reference), tests/backend/test_cuda_weights.py
# (load_weights and init_weights, built by nvcc and run) and the MLP example's training on the
# first 20000 training images for 2 epochs, whose first loss and test
# accuracy are compared with the portable target's (computed by prepare):
# the loss within 1e-5, the accuracy within 0.5 points; then the same with
# --precision bf16, whose accuracy is printed. Each part has a time limit, and a failing part does not stop
# the next; the limits of each half add up to less than a device call's 10 minutes (train: 180 + 150 +
# 60 + 2 x 90 s; the half test runs about a minute emulated here, plus a GPU build per format and
# network). The summary is printed last.
set -u
cd "$(dirname "$0")/.."
case "${1:-}" in
prepare)
  snnc=${SNNC:-build/compiler/snnc}
  snnrt=${SNNRT:-build/runtime/libsnnrt.a}
  py=/usr/bin/python3
  [ -x "$py" ] || py=python3
  rm -rf .gpu/tests .gpu/prec .gpu/bench .gpu/snnc .gpu/snnc.tar.gz .gpu/fashion
  "$py" tests/backend/test_cuda.py prepare "$snnc" --snnrt "$snnrt" --out .gpu/tests examples tests/golden | tail -2 &&
    "$py" tests/backend/test_cuda_precision.py prepare "$snnc" .gpu/prec &&
    "$py" bench/gpu_bench.py prepare .gpu/bench --snnc "$snnc" | tail -1 || exit 1
  # snnc for the GPU machine, which has neither its libraries nor LLVM: the
  # libraries it needs beside the C library's, found through its RPATH
  # ($ORIGIN/../lib, which serves their own dependencies too)
  cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DSNNC_LLVM=OFF -DSNNC_MPI=OFF '-DCMAKE_BUILD_RPATH=$ORIGIN/../lib' \
    -DCMAKE_EXE_LINKER_FLAGS=-Wl,--disable-new-dtags > /dev/null &&
    cmake --build build-gpu -j "$(nproc 2>/dev/null || echo 2)" --target snnc > /dev/null || exit 1
  mkdir -p .gpu/snnc/bin .gpu/snnc/lib && cp build-gpu/compiler/snnc .gpu/snnc/bin/ &&
    ldd build-gpu/compiler/snnc | awk '$3 ~ /^\// {print $3}' |
    grep -Ev '/(libc|libm|libdl|libpthread|librt|libresolv|ld-linux-x86-64)\.so' | xargs -I{} cp -L {} .gpu/snnc/lib/ &&
    tar czf .gpu/snnc.tar.gz -C .gpu snnc && rm -rf .gpu/snnc || exit 1
  # Fashion-MNIST's first 20000 training images and its test split, and what
  # the portable target reaches on them in 2 epochs of the MLP example
  fm=${FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
  if [ -f "$fm/train-images-idx3-ubyte.gz" ]; then
    mkdir -p .gpu/fashion && cp "$fm"/t10k-* .gpu/fashion/ &&
      "$py" bench/gpu_check_data.py "$fm" .gpu/fashion 20000 &&
      "$snnc" train examples/fashion_mlp.snn --target c --math exact --data .gpu/fashion --epochs 2 \
        -o .gpu/fashion/ref --step-log .gpu/fashion/ref-steps.csv | tail -1 &&
      find .gpu/fashion/ref -type f ! -name metrics.csv -delete || exit 1
  else
    echo "no Fashion-MNIST in $fm (Debian's dataset-fashion-mnist): the MLP's training on the GPU is left out"
  fi
  du -sh .gpu
  ;;
run)
  out=${2:?usage: gpu_check.sh run OUTDIR}
  mkdir -p "$out"
  command -v nvcc > /dev/null || export PATH=$PATH:/usr/local/cuda/bin
  export PYTHONUNBUFFERED=1
  smi="--query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu,power.draw,memory.used --format=csv"
  nvidia-smi $smi > "$out/smi.txt" 2>&1
  (timeout 200 python3 tests/backend/test_cuda.py device .gpu/tests; echo "exit $?") > "$out/tests.log" 2>&1
  (timeout 60 python3 tests/backend/test_cuda_precision.py device .gpu/prec; echo "exit $?") > "$out/prec.log" 2>&1
  (timeout 300 python3 bench/gpu_bench.py run .gpu/bench --out "$out"; echo "exit $?") > "$out/bench.log" 2>&1
  nvidia-smi $smi >> "$out/smi.txt" 2>&1
  cat "$out/smi.txt"
  echo "== tests/backend/test_cuda.py device"
  grep -E 'FAIL|passed|compiled|^exit' "$out/tests.log" | tail -30
  echo "== tests/backend/test_cuda_precision.py device"
  cat "$out/prec.log"
  echo "== bench/gpu_bench.py"
  tail -40 "$out/bench.log"
  ;;
train)
  out=${2:?usage: gpu_check.sh train OUTDIR}
  mkdir -p "$out"
  command -v nvcc > /dev/null || export PATH=$PATH:/usr/local/cuda/bin
  export PYTHONUNBUFFERED=1
  rm -rf .gpu/snnc && tar xzf .gpu/snnc.tar.gz -C .gpu || exit 1
  (timeout 180 python3 tests/backend/test_cuda_train.py .gpu/snnc/bin/snnc; echo "exit $?") > "$out/train.log" 2>&1
  (timeout 150 python3 tests/backend/test_cuda_half.py .gpu/snnc/bin/snnc; echo "exit $?") > "$out/half.log" 2>&1
  (timeout 60 python3 tests/backend/test_cuda_weights.py .gpu/snnc/bin/snnc examples; echo "exit $?") \
    > "$out/weights.log" 2>&1
  if [ -d .gpu/fashion ]; then
    for prec in fp32 bf16; do
      sfx=$([ $prec = fp32 ] || echo -$prec)
      (timeout 90 .gpu/snnc/bin/snnc train examples/fashion_mlp.snn --target cuda --precision $prec \
        --data .gpu/fashion --epochs 2 -o "$out/mlp$sfx" --step-log "$out/mlp$sfx-steps.csv"; echo "exit $?") \
        > "$out/mlp$sfx.log" 2>&1
    done
  fi
  echo "== tests/backend/test_cuda_train.py (snnc train --target cuda)"
  tail -15 "$out/train.log"
  echo "== tests/backend/test_cuda_half.py (--precision bf16 and fp16: states, dense and conv outputs in 16 bits)"
  tail -10 "$out/half.log"
  echo "== tests/backend/test_cuda_weights.py (load_weights and init_weights on the device)"
  tail -9 "$out/weights.log"
  if [ -d .gpu/fashion ]; then
    echo "== the MLP example, 20000 training images, 2 epochs: --target cuda against --target c"
    tail -4 "$out/mlp.log"
    python3 bench/gpu_check_data.py compare "$out" .gpu/fashion
    echo "== the same with --precision bf16 (products' operands, stored states and dense products in bf16)"
    tail -4 "$out/mlp-bf16.log"
  fi
  ;;
*)
  echo "usage: bash bench/gpu_check.sh prepare | run OUTDIR | train OUTDIR" >&2
  exit 2
  ;;
esac
