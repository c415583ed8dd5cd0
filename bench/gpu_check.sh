#!/usr/bin/env bash
# gpu_check.sh: everything the project checks and measures on an NVIDIA GPU,
# in two halves, for a GPU machine that has no snnc and no network.
#
#   bash bench/gpu_check.sh prepare      where snnc is built (build/): writes
#                                        .gpu/ (about 30 MB): the CUDA test
#                                        pack, the precision test, the benchmark
#   bash bench/gpu_check.sh run OUTDIR   on the GPU machine, with .gpu/ copied
#                                        there beside the repository: nvcc,
#                                        PyTorch 2 and CuPy are all it needs;
#                                        about 5 minutes, logs into OUTDIR
#
# run: tests/backend/test_cuda.py device (every example, golden model and
# reference network: the .cu built by nvcc and run on the GPU against the
# portable target's values), tests/backend/test_cuda_precision.py device
# (cuBLAS's tf32, bf16 and fp16 products against rounded operands), then
# bench/gpu_bench.py run (bench/README.md). Each part has a time limit, and
# a failing part does not stop the next. The summary is printed last.
set -u
cd "$(dirname "$0")/.."
case "${1:-}" in
prepare)
  snnc=${SNNC:-build/compiler/snnc}
  snnrt=${SNNRT:-build/runtime/libsnnrt.a}
  py=/usr/bin/python3
  [ -x "$py" ] || py=python3
  rm -rf .gpu/tests .gpu/prec .gpu/bench
  "$py" tests/backend/test_cuda.py prepare "$snnc" --snnrt "$snnrt" --out .gpu/tests examples tests/golden | tail -2 &&
    "$py" tests/backend/test_cuda_precision.py prepare "$snnc" .gpu/prec &&
    "$py" bench/gpu_bench.py prepare .gpu/bench --snnc "$snnc" | tail -1 &&
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
*)
  echo "usage: bash bench/gpu_check.sh prepare | run OUTDIR" >&2
  exit 2
  ;;
esac
