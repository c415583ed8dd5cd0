#!/usr/bin/env bash
# The main job, once built: show the network, write its standalone C, build
# that C with the system compiler, and run it on an input through snnc run.
# Usage: demo.sh SNNC
set -euo pipefail
snnc=${1:-build/compiler/snnc}
model=examples/fashion_mlp.snn
out=build/demo
mkdir -p "$out"

echo "== snnc info $model =="
"$snnc" info "$model"

echo
echo "== snnc compile $model --target c -o $out =="
"$snnc" compile "$model" --target c -o "$out"
ls -l "$out"/*.c "$out"/*.h
cc -std=c99 -O2 -Wall -Wextra -Werror -c "$out"/fashionmlp.c -o "$out"/fashionmlp.o
echo "built $out/fashionmlp.o with cc"

echo
echo "== snnc run (weights initialized from seed 1, input: a 28x28 test pattern) =="
python3 - "$out/input.npy" <<'PY'
import sys, struct
# a [1, 1, 28, 28] float32 .npy written by hand: a bright square on dark
h = "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 28, 28), }"
h += " " * (64 - (10 + len(h) + 1) % 64) + "\n"
px = [1.0 if 8 <= r < 20 and 8 <= c < 20 else 0.0 for r in range(28) for c in range(28)]
with open(sys.argv[1], "wb") as f:
    f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h.encode())
    f.write(struct.pack("<%df" % len(px), *px))
PY
"$snnc" run "$model" --init 1 --input "$out/input.npy" --output "$out/output.npy" \
  --record h1="$out/h1_spikes.npy"
python3 - "$out" <<'PY'
import sys, struct, ast
def load(p):
    b = open(p, "rb").read()
    n = struct.unpack("<H", b[8:10])[0]
    h = ast.literal_eval(b[10:10 + n].decode())
    data = struct.unpack("<%df" % ((len(b) - 10 - n) // 4), b[10 + n:])
    return h["shape"], data
shape, y = load(sys.argv[1] + "/output.npy")
print("output %s (mean membrane of the 10 readout neurons):" % (shape,))
print("  " + " ".join("%.4f" % v for v in y))
shape, s = load(sys.argv[1] + "/h1_spikes.npy")
print("hidden layer h1 spikes %s: firing rate %.3f" % (shape, sum(s) / len(s)))
PY
