#!/usr/bin/env python3
"""Object files of the llvm target for other machines compute what the host computes.

`snnc compile --target llvm --triple T -o DIR` writes DIR/<net>.o and the C
target's header. For the golden MLP, a network of the test_llvm.py
neuron model that uses every operation (exp, log, tanh, pow, min, max,
comparisons...), the golden convolutional model (conv2d with groups,
batchnorm, both pools, a recurrent edge) and test_llvm.py's network of
strided, grouped and padded convolutions and pools, each compiled with
--batch 3 and --record of a spiking layer, a small C program (below)
fills the parameters with fixed values (a running variance positive),
runs <net>_forward, then <net>_step T times, printing the outputs and the
recorded spikes; then every parameter after <net>_init_weights(ws, 3) and
after <net>_load_weights of a safetensors file written here (F32, drawn),
which must be the file's values. It is linked with (and, for the llvm
target, with <net>_weights.c, built by the same compiler):
- the x86_64-linux-gnu object and the host's cc, run natively;
- the aarch64-linux-gnu object, plain and with +sve, by Debian's
  aarch64-linux-gnu-gcc, run under qemu-aarch64 -cpu max;
- the riscv64-linux-gnu object, plain and with +v, by riscv64-linux-gnu-gcc,
  run under qemu-riscv64 -cpu rv64,v=true,vlen=256;
and compared with the same program linked with the portable C target's
code (cc -ffp-contract=off) on the host: the spikes identical, every value
within 1e-5 relative to the largest magnitude (at least 1), the parameters
of init_weights and load_weights the same bits.

Then the code for a machine without an allocator or a file system: each
network compiled again with --static, and with --static --embed-weights of
a safetensors file holding the first program's fixed values. A second
program (STATIC) passes a null workspace to every function (with --static
alone it loads the file with <net>_load_weights(NULL, ...) first, into the
module's static workspace) and must print the first program's values and
spikes on the C target: no <net>_weights.c is written when the weights are
embedded.

Skipped, saying why, when snnc has no LLVM; each cross machine is skipped,
saying so, when its gcc or qemu is missing (scripts/install-deps.sh
installs them).

Usage: test_llvm_cross.py SNNC ROOT
"""
import json
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_llvm import CONVS, MIX  # noqa: E402

SKIP = 77
TOL = 1e-5

MAIN = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "%(p)s.h"
#define B 3
int main(void)
{
    size_t nin = (size_t)(%(P)s_INPUT_SEQUENCE ? %(P)s_TIMESTEPS : 1) * B * %(P)s_INPUT_SIZE;
    size_t nout = (size_t)(%(P)s_OUTPUT_STEPS ? %(P)s_TIMESTEPS : 1) * B * %(P)s_OUTPUT_SIZE;
    float *in = malloc(nin * sizeof(float)), *out = malloc(nout * sizeof(float));
    float *ws = calloc(%(P)s_WORKSPACE_FLOATS, sizeof(float));
    size_t i;
    long j;
    int k, t;
    for (k = 0; k < %(P)s_NUM_PARAMS; k++) /* fixed values in [-0.6, 0.6]; variances in [0.5, 1.1] */
        for (j = 0; j < %(p)s_params[k].count; j++) {
            float v = (float)((j * 7919 + k * 31) %% 201 - 100) / 166.0f;
            if (strstr(%(p)s_params[k].name, "running_var"))
                v = (v < 0.0f ? -v : v) + 0.5f;
            ws[%(p)s_params[k].offset + j] = v;
        }
    for (i = 0; i < nin; i++)
        in[i] = (float)((i * 7919) %% 101) / 25.0f;
    %(p)s_forward(ws, B, in, out);
    for (i = 0; i < nout; i++)
        printf("value %%.9g\n", out[i]);
    %(p)s_reset(ws, B);
    for (t = 0; t < %(P)s_TIMESTEPS; t++) {
        const float *x = in + (%(P)s_INPUT_SEQUENCE ? (size_t)t * B * %(P)s_INPUT_SIZE : 0);
        const float *s;
        %(p)s_step(ws, B, x, out);
        for (i = 0; i < (size_t)B * %(P)s_OUTPUT_SIZE; i++)
            printf("value %%.9g\n", out[i]);
        s = %(p)s_probe(ws, 0);
        for (i = 0; i < (size_t)B * %(RECORD)s; i++)
            printf("spike %%.9g\n", s[i]);
    }
    %(p)s_init_weights(ws, 3);
    for (k = 0; k < %(P)s_NUM_PARAMS; k++)
        for (j = 0; j < %(p)s_params[k].count; j++)
            printf("init %%.9g\n", ws[%(p)s_params[k].offset + j]);
    {
        char err[256];
        if (%(p)s_load_weights(ws, "%(WEIGHTS)s", 0, err, sizeof err) != 0) {
            fprintf(stderr, "load_weights: %%s\n", err);
            return 1;
        }
    }
    for (k = 0; k < %(P)s_NUM_PARAMS; k++)
        for (j = 0; j < %(p)s_params[k].count; j++)
            printf("loaded %%.9g\n", ws[%(p)s_params[k].offset + j]);
    return 0;
}
"""

STATIC = r"""
#include <stdio.h>
#include <stdlib.h>
#include "%(p)s.h"
#define B 3
int main(void)
{
    size_t nin = (size_t)(%(P)s_INPUT_SEQUENCE ? %(P)s_TIMESTEPS : 1) * B * %(P)s_INPUT_SIZE;
    size_t nout = (size_t)(%(P)s_OUTPUT_STEPS ? %(P)s_TIMESTEPS : 1) * B * %(P)s_OUTPUT_SIZE;
    float *in = malloc(nin * sizeof(float)), *out = malloc(nout * sizeof(float));
    size_t i;
    int t;
#ifndef EMBEDDED
    char err[256];
    if (%(p)s_load_weights(NULL, "%(WEIGHTS)s", 0, err, sizeof err) != 0) {
        fprintf(stderr, "load_weights: %%s\n", err);
        return 1;
    }
#endif
    for (i = 0; i < nin; i++)
        in[i] = (float)((i * 7919) %% 101) / 25.0f;
    %(p)s_forward(NULL, B, in, out);
    for (i = 0; i < nout; i++)
        printf("value %%.9g\n", out[i]);
    %(p)s_reset(NULL, B);
    for (t = 0; t < %(P)s_TIMESTEPS; t++) {
        const float *x = in + (%(P)s_INPUT_SEQUENCE ? (size_t)t * B * %(P)s_INPUT_SIZE : 0);
        const float *s;
        %(p)s_step(NULL, B, x, out);
        for (i = 0; i < (size_t)B * %(P)s_OUTPUT_SIZE; i++)
            printf("value %%.9g\n", out[i]);
        s = %(p)s_probe(NULL, 0);
        for (i = 0; i < (size_t)B * %(RECORD)s; i++)
            printf("spike %%.9g\n", s[i]);
    }
    return 0;
}
"""

MACHINES = [
    # name, triple, features, gcc, run prefix
    ("x86_64", "x86_64-linux-gnu", None, None, []),
    ("aarch64", "aarch64-linux-gnu", None, "aarch64-linux-gnu-gcc",
     ["qemu-aarch64", "-cpu", "max", "-L", "/usr/aarch64-linux-gnu"]),
    ("aarch64+sve", "aarch64-linux-gnu", "+sve", "aarch64-linux-gnu-gcc",
     ["qemu-aarch64", "-cpu", "max", "-L", "/usr/aarch64-linux-gnu"]),
    ("riscv64", "riscv64-linux-gnu", None, "riscv64-linux-gnu-gcc",
     ["qemu-riscv64", "-cpu", "rv64", "-L", "/usr/riscv64-linux-gnu"]),
    ("riscv64+v", "riscv64-linux-gnu", "+m,+a,+f,+d,+c,+v", "riscv64-linux-gnu-gcc",
     ["qemu-riscv64", "-cpu", "rv64,v=true,vlen=256", "-L", "/usr/riscv64-linux-gnu"]),
]


def sh(cmd, cwd=None):
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)
    if p.returncode != 0:
        raise RuntimeError("%s: %s%s" % (" ".join(cmd), p.stdout[-2000:], p.stderr[-2000:]))
    return p.stdout


def parse(text):
    """The program's values, spikes, and parameters after init_weights and after load_weights."""
    out = {"value": [], "spike": [], "init": [], "loaded": []}
    for line in text.splitlines():
        kind, v = line.split()
        f = float(v)
        if kind in ("init", "loaded"):  # %.9g gives back the float, not the double
            f = struct.unpack("<f", struct.pack("<f", f))[0]
        out[kind].append(f)
    return out["value"], out["spike"], out["init"], out["loaded"]


def params(code):
    """(name, shape) of every parameter, from the C target's table in code."""
    table = re.search(r"_params\[\d+\] = \{\n(.*?)\n\};", code, re.S).group(1)
    return [(m.group(1), [int(v) for v in m.group(3).split(",")][:int(m.group(2))])
            for m in re.finditer(r'\{"([^"]+)", (\d), \{([0-9, ]+)\}, \d+, \d+, \d\}', table)]


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def fixed(k, j, name):
    """MAIN's fixed value of element j of parameter k (float arithmetic: a
    double division or addition of floats, rounded once, is the float one)."""
    v = f32(((j * 7919 + k * 31) % 201 - 100) / 166.0)
    return f32(abs(v) + 0.5) if "running_var" in name else v


def safetensors(path, tensors, draw):
    """A safetensors file of the tensors (name, shape), float32 values
    draw(k, j, name) for element j of tensor k: the values, in order."""
    head, data = {}, b""
    values = []
    for k, (name, shape) in enumerate(tensors):
        n = 1
        for v in shape:
            n *= v
        vals = [f32(draw(k, j, name)) for j in range(n)]
        raw = struct.pack("<%df" % n, *vals)
        head[name] = {"dtype": "F32", "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
        values += vals
    text = json.dumps(head).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)
    return values


def main():
    snnc, root = sys.argv[1], sys.argv[2]
    listing = sh([snnc, "--list-targets"])
    line = [l for l in listing.splitlines() if l.split()[:1] == ["llvm"]]
    if not line or "unavailable" in line[0]:
        print("SKIPPED: this snnc was built without LLVM")
        return SKIP
    cc = os.environ.get("CC") or "cc"
    passed = failed = 0

    def check(ok, what):
        nonlocal passed, failed
        if ok:
            passed += 1
        else:
            failed += 1
            print("FAIL: " + what)

    ran = set()
    with tempfile.TemporaryDirectory() as d:
        mix, convs = os.path.join(d, "mix.snn"), os.path.join(d, "convs.snn")
        with open(mix, "w") as f:
            f.write(MIX % "steps")
        with open(convs, "w") as f:
            f.write(CONVS % "steps")
        # model, prefix, recorded layer, its neurons per sample
        models = [(os.path.join(root, "tests", "golden", "mlp.snn"), "goldenmlp", "h1", 8),
                  (mix, "mixnet", "k", 13),
                  (os.path.join(root, "tests", "golden", "convrec.snn"), "goldenconvrec", "c2", 4 * 6 * 6),
                  (convs, "convs", "b", 40 * 3 * 6)]
        for model, p, layer, size in models:
            common = ["--batch", "3", "--record", layer]
            ref_dir = os.path.join(d, "c-" + p)
            sh([snnc, "compile", model, "--target", "c", "-o", ref_dir] + common)
            with open(os.path.join(ref_dir, p + ".c")) as f:
                table = params(f.read())
            weights = os.path.join(d, p + ".safetensors")
            rng = random.Random(11)
            drawn = safetensors(weights, table, lambda k, j, name: rng.uniform(-2.0, 2.0))
            fixed_weights = os.path.join(d, p + "-fixed.safetensors")
            safetensors(fixed_weights, table, fixed)
            static_c = os.path.join(d, "static.c")
            with open(static_c, "w") as f:
                f.write(STATIC % {"p": p, "P": p.upper(), "RECORD": size, "WEIGHTS": fixed_weights})
            main_c = os.path.join(d, "main.c")
            with open(main_c, "w") as f:
                f.write(MAIN % {"p": p, "P": p.upper(), "RECORD": size, "WEIGHTS": weights})
            exe = os.path.join(ref_dir, "prog")
            sh([cc, "-std=c99", "-O2", "-ffp-contract=off", "-I", ref_dir, "-o", exe, main_c,
                os.path.join(ref_dir, p + ".c"), "-lm"])
            ref_vals, ref_spikes, ref_init, ref_loaded = parse(sh([exe]))
            check(ref_loaded == drawn, "%s: the C target's load_weights does not give the file's values" %
                  os.path.basename(model))
            scale = max([1.0] + [abs(v) for v in ref_vals])
            for name, triple, features, gcc, run in MACHINES:
                if gcc and not shutil.which(gcc):
                    print("SKIPPED %s: no %s (Debian: gcc-%s)" % (name, gcc, triple))
                    continue
                if run and not shutil.which(run[0]):
                    print("SKIPPED %s: no %s (Debian: qemu-user)" % (name, run[0]))
                    continue
                out = os.path.join(d, "%s-%s" % (name, p))
                cmd = [snnc, "compile", model, "--target", "llvm", "--triple", triple, "-o", out] + common
                if features:
                    cmd += ["--features", features]
                try:
                    sh(cmd)
                    exe = os.path.join(out, "prog")
                    sh([gcc or cc, "-O2", "-I", out, "-o", exe, main_c, os.path.join(out, p + ".o"),
                        os.path.join(out, p + "_weights.c"), "-lm"])
                    vals, spikes, init, loaded = parse(sh(run + [exe]))
                except RuntimeError as e:
                    check(False, "%s, %s: %s" % (os.path.basename(model), name, e))
                    continue
                ran.add(name)
                check(len(vals) == len(ref_vals) and len(spikes) == len(ref_spikes),
                      "%s, %s: %d values and %d spikes, the C target's %d and %d" %
                      (os.path.basename(model), name, len(vals), len(spikes), len(ref_vals), len(ref_spikes)))
                err = max([abs(a - b) for a, b in zip(vals, ref_vals)] + [0.0]) / scale
                check(err <= TOL, "%s, %s: relative error %g against the C target" % (os.path.basename(model), name, err))
                check(spikes == ref_spikes, "%s, %s: %d spikes differ from the C target's" %
                      (os.path.basename(model), name, sum(a != b for a, b in zip(spikes, ref_spikes))))
                check(0 < sum(ref_spikes) < len(ref_spikes), "%s: the recorded layer never or always fires" %
                      os.path.basename(model))
                check(init == ref_init and len(init) == len(drawn),
                      "%s, %s: init_weights (<net>_weights.c) differs from the C target's" % (os.path.basename(model), name))
                check(loaded == drawn, "%s, %s: load_weights (<net>_weights.c) does not give the file's values" %
                      (os.path.basename(model), name))
                print("%s, %s: %d values (error %.2g), %d spikes of %d, %d parameters of init_weights and of "
                      "load_weights agree with the C target" %
                      (os.path.basename(model), name, len(vals), err, int(sum(spikes)), len(spikes), len(init)))
                for embedded in (False, True):
                    how = "--static --embed-weights" if embedded else "--static"
                    sout = os.path.join(d, "%s-%s-static%d" % (name, p, embedded))
                    extra = ["--static"] + (["--embed-weights", "--weights", fixed_weights] if embedded else [])
                    try:
                        sh(cmd[:cmd.index("-o") + 1] + [sout] + cmd[cmd.index("-o") + 2:] + extra)
                        wc = os.path.join(sout, p + "_weights.c")
                        check(os.path.exists(wc) != embedded, "%s, %s, %s: <net>_weights.c %s" %
                              (os.path.basename(model), name, how, "written" if embedded else "missing"))
                        exe = os.path.join(sout, "prog")
                        sh([gcc or cc, "-O2", "-I", sout, "-o", exe, static_c, os.path.join(sout, p + ".o")] +
                           (["-DEMBEDDED"] if embedded else [wc]) + ["-lm"])
                        svals, sspikes, _, _ = parse(sh(run + [exe]))
                    except RuntimeError as e:
                        check(False, "%s, %s, %s: %s" % (os.path.basename(model), name, how, e))
                        continue
                    serr = max([abs(a - b) for a, b in zip(svals, ref_vals)] + [0.0]) / scale
                    check(len(svals) == len(ref_vals) and serr <= TOL and sspikes == ref_spikes,
                          "%s, %s, %s and a null workspace: %d values (error %g) and %d spikes (%d differ), "
                          "the C target's %d and %d" %
                          (os.path.basename(model), name, how, len(svals), serr, len(sspikes),
                           sum(a != b for a, b in zip(sspikes, ref_spikes)), len(ref_vals), len(ref_spikes)))
                    print("%s, %s, %s: a null workspace gives the C target's values (error %.2g) and spikes" %
                          (os.path.basename(model), name, how, serr))
    print("%d passed, %d failed" % (passed, failed))
    if failed:
        return 1
    if ran == {"x86_64"}:
        print("SKIPPED: no cross machine could run (only the host's object was checked)")
        return SKIP
    return 0


if __name__ == "__main__":
    sys.exit(main())
