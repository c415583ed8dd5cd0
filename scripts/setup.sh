#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to a running example: installs
# what is needed, builds snnc, compiles the Fashion-MNIST MLP example to
# standalone C, builds it with the system C compiler and runs it on an input.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc 2>/dev/null || echo 2)"
bash scripts/demo.sh build/compiler/snnc
