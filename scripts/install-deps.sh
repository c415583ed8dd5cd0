#!/usr/bin/env bash
# Installs what snnc needs to build and test on Debian 12: the toolchain
# (clang with its runtime, libclang-rt-dev, for the fuzz targets' libFuzzer),
# flex and bison, zlib (the runtime reads gzip-compressed IDX datasets),
# SIMDe (tests of the x86 SIMD targets on CPUs without their instructions),
# Fashion-MNIST (the main job and the training test), protobuf-c and the
# system's onnx.proto (the ONNX front end), ONNX's Python checker, HDF5
# (libhdf5-dev for the NIR front end, python3-h5py for its tests), Open MPI
# (libopenmpi-dev, openmpi-bin: data-parallel snnc train under mpirun),
# for the reference tests PyTorch and NumPy (Debian's),
# OpenBLAS (so that PyTorch is not handicapped by the generic BLAS), and the
# peers from PyPI (scripts/install-test-peers.sh), LLVM 16 (llvm-16-dev: the
# llvm target, built through its C API and JIT-compiled with ORC) and, for
# the tests of its object files for other machines, the aarch64 and riscv64
# cross compilers with their C libraries and qemu-user. Idempotent: packages
# already installed are not fetched again. Not the CUDA toolkit (Debian's
# nvidia-cuda-toolkit is in non-free, and most installs use NVIDIA's): the
# CUDA target's tests use nvcc where it is found (CUDACXX, PATH, CUDA_HOME,
# /usr/local/cuda) and say that they were skipped elsewhere.
set -euo pipefail
packages=(build-essential cmake clang libclang-rt-dev flex bison pkg-config zlib1g-dev libsimde-dev dataset-fashion-mnist
          libprotobuf-c-dev protobuf-c-compiler libonnx-dev python3-onnx libhdf5-dev python3-h5py libopenmpi-dev openmpi-bin
          python3 python3-numpy python3-torch python3-pip libopenblas0-pthread llvm-16-dev
          gcc-aarch64-linux-gnu libc6-dev-arm64-cross gcc-riscv64-linux-gnu libc6-dev-riscv64-cross qemu-user)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [ -x scripts/install-test-peers.sh ] || [ -f scripts/install-test-peers.sh ]; then
  bash scripts/install-test-peers.sh
fi
