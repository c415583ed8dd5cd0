#!/usr/bin/env bash
# The main job, once built: train the Fashion-MNIST MLP example with snnc
# (generated C, no Python), then deploy it: compile the trained network to
# standalone C with its weights embedded and a static workspace, build that
# C with a small classifier program (examples/deploy/classify.c, libc and
# libm only) and classify the test images with it.
# Usage: demo.sh SNNC
set -euo pipefail
snnc=${1:-build/compiler/snnc}
model=examples/fashion_mlp.snn
out=build/demo
data=/usr/share/datasets/fashion-mnist
mkdir -p "$out"

echo "== snnc info $model =="
"$snnc" info "$model"

echo
# --math exact: the portable target's arithmetic, bit for bit, on whatever
# target trains (an x86 one where the CPU has one), so that the portable C
# deployed below classifies exactly as training reported; the x86 default,
# --math fast, agrees within rounding (docs/targets.md)
echo "== snnc train $model --math exact -o $out/train =="
"$snnc" train "$model" --math exact -o "$out/train"

echo
echo "== deploy: snnc compile --embed-weights --static, then a standalone classifier =="
"$snnc" compile "$model" --embed-weights --weights "$out/train/weights.safetensors" \
  --static --batch 100 -o "$out/deploy"
cc -std=c99 -O2 -Wall -Wextra -Werror -I"$out/deploy" \
  -DNET_HEADER='"fashionmlp.h"' -DNET_PREFIX=fashionmlp -DNET_UPPER=FASHIONMLP \
  examples/deploy/classify.c "$out/deploy/fashionmlp.c" -lm -o "$out/deploy/classify"
ls -l "$out/deploy/fashionmlp.c" "$out/deploy/classify"
for f in t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
  gzip -dc "$data/$f.gz" > "$out/deploy/$f"
done
# the normalization of the model's train block: fashion_mnist(mean = 0.2860, std = 0.3530)
"$out/deploy/classify" "$out/deploy/t10k-images-idx3-ubyte" "$out/deploy/t10k-labels-idx1-ubyte" 0.2860 0.3530 3
