"""The CMake package, end to end: install snnc into a temporary prefix, build
the consumer project (consumer/) against it, run its programs and check their
spike counts against a NumPy simulation of the network; then check that the
build reruns snnc when the model or the weights change, and only then;
that snnc_generate's misuses fail at configure time with a clear message;
and that an ONNX model (exported by the installed snnc) builds, its
network's name read with `snnc info` and its weights written beside the
code.

usage: run.py CMAKE SNNC_BUILD_DIR CC

Exit 0: passed; 1: failed; 77: skipped (NumPy missing).
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

try:
    import numpy as np
except ImportError:
    print("skipped: the package test writes its weights and its reference with NumPy, which is not installed")
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
X = np.array([1.0, 0.5, 2.0], np.float32)  # the input main.c runs
# weights for which the counts are easy by hand (tau = 2, v_th = 1, hard
# reset to 0, so h = (v + I) / 2): the currents W x + b are 0.5, 1.0, 1.5
# and 3.0; 0.5 and 1.0 never reach the threshold in 8 steps (h tends to I
# from below), 1.5 fires every second step (0.75, 1.125), 3.0 every step
W1 = np.array([[0.5, 0, 0], [0, 0, 0.25], [1, 1, 0], [1, 2, 0.5]], np.float32)
B1 = np.array([0, 0.5, 0, 0], np.float32)
HAND_COUNTS = [0, 0, 4, 8]
HAND_V = [0.5 * (1 - 2.0**-8), 1 - 2.0**-8, 0, 0]
# the second weights: the first neuron gets 2.0, and fires every step
B2 = np.array([1.5, 0.5, 0, 0], np.float32)

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name, a in tensors.items():
        a = np.ascontiguousarray(a, np.float32)
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        blobs.append(a.tobytes())
        off += a.nbytes
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(len(h).to_bytes(8, "little") + h + b"".join(blobs))


def reference(w, b, steps):
    """Spike counts and the last membrane potential of LIF(tau = 2.0)."""
    cur = (w.astype(np.float64) @ X.astype(np.float64) + b).astype(np.float32)
    v = np.zeros(4, np.float32)
    counts = np.zeros(4, np.float32)
    for _ in range(steps):
        h = v + (cur - v) / np.float32(2.0)
        s = h >= np.float32(1.0)
        counts += s
        v = np.where(s, np.float32(0.0), h)
    return list(counts), list(v)


def sh(cmd, cwd=None):
    p = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        print("$ " + " ".join(cmd))
        print(p.stdout)
        raise SystemExit("FAIL: %s exited with %d" % (cmd[0], p.returncode))
    return p.stdout


def parse(text):
    """counts and v lines of main.c's output, as lists of floats."""
    rows = {}
    for line in text.splitlines():
        parts = line.split()
        if parts and parts[0] in ("counts", "v"):
            rows.setdefault(parts[0], []).append([float(t) for t in parts[1:]])
    return rows


def has_avx2():
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return re.search(r"\bavx2\b", flags) is not None and re.search(r"\bfma\b", flags) is not None

MISUSES = [
    # (what the project calls, what the configure error says)
    ("snnc_generate(TARGET app MODEL net.snn TARGET_ARCH neon)", "TARGET_ARCH is c, avx2 or avx512, not 'neon'"),
    ("snnc_generate(TARGET app MODEL net.snn EMBED)", "EMBED needs WEIGHTS <file> for a .snn model"),
    ("snnc_generate(TARGET app MODEL two.snn)", "defines 2 networks: choose one with NETWORK <name>"),
    ("snnc_generate(TARGET app MODEL missing.snn)", "does not exist"),
    ("snnc_generate(TARGET nosuch MODEL net.snn)", "'nosuch' is not a target"),
    ("snnc_generate(TARGET app MODEL net.snn BATCH 0)", "BATCH needs a positive integer, not '0'"),
    ("snnc_generate(TARGET app MODEL net.snn SPEED 2)", "unknown arguments: SPEED;2"),
]


def misuses(cmake, prefix, tmp):
    """snnc_generate's errors at configure time, and NETWORK picking one of two."""
    src = os.path.join(tmp, "misuse")
    os.makedirs(src)
    shutil.copy(os.path.join(HERE, "consumer", "net.snn"), src)
    with open(os.path.join(HERE, "consumer", "net.snn")) as f:
        net = f.read()
    with open(os.path.join(src, "two.snn"), "w") as f:
        f.write(net + net.replace("PkgNet", "Other").replace("dense(4)", "dense(2)"))
    with open(os.path.join(src, "app.c"), "w") as f:
        f.write('#include "other.h"\nint main(void) { return OTHER_OUTPUT_SIZE == 2 ? 0 : 1; }\n')
    calls = MISUSES + [("snnc_generate(TARGET app MODEL two.snn NETWORK Other)", None)]
    for k, (call, message) in enumerate(calls):
        with open(os.path.join(src, "CMakeLists.txt"), "w") as f:
            f.write("cmake_minimum_required(VERSION 3.20)\nproject(misuse LANGUAGES C)\n"
                    "find_package(snnc REQUIRED)\nadd_executable(app app.c)\n%s\n" % call)
        build = os.path.join(tmp, "misuse-build-%d" % k)
        p = subprocess.run([cmake, "-S", src, "-B", build, "-DCMAKE_PREFIX_PATH=" + prefix],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        text = " ".join(p.stdout.split())
        if message is None:
            check(p.returncode == 0, "%s configures:\n%s" % (call, p.stdout))
            if p.returncode == 0:
                q = subprocess.run([cmake, "--build", build], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                check(q.returncode == 0 and subprocess.run([os.path.join(build, "app")]).returncode == 0,
                      "%s builds a program with other.h:\n%s" % (call, q.stdout))
        else:
            check(p.returncode != 0 and message in text, "%s fails with '%s':\n%s" % (call, message, p.stdout))


ONNX_APP = r"""/* app.c: runs the network of an ONNX model with the weights that
   snnc_generate wrote beside the code (PKG_WEIGHTS_FILE). */
#include <stdio.h>
#include <stdlib.h>

#include "pkgnet.h"

int main(void)
{
    static const float x[3] = {1.0f, 0.5f, 2.0f};
    float out[PKGNET_OUTPUT_SIZE];
    char err[512];
    int k;
    void *ws = calloc(1, PKGNET_WORKSPACE_SIZE);
    if (!ws || pkgnet_load_weights(ws, PKG_WEIGHTS_FILE, 0, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", ws ? err : "out of memory");
        return 1;
    }
    pkgnet_forward(ws, 1, x, out);
    printf("counts");
    for (k = 0; k < PKGNET_OUTPUT_SIZE; k++)
        printf(" %.9g", out[k]);
    printf("\n");
    free(ws);
    return 0;
}
"""


def onnx_model(cmake, prefix, tmp, weights):
    """An ONNX model (exported by the installed snnc with known weights): the
    network's name comes from `snnc info` at configure time, and its weights
    file is generated beside the code, where the program reads it."""
    src = os.path.join(tmp, "onnx")
    os.makedirs(src)
    snnc = os.path.join(prefix, "bin", "snnc")
    sh([snnc, "export", os.path.join(HERE, "consumer", "net.snn"), "--weights", weights,
        "-o", os.path.join(src, "net.onnx")])
    with open(os.path.join(src, "app.c"), "w") as f:
        f.write(ONNX_APP)
    with open(os.path.join(src, "CMakeLists.txt"), "w") as f:
        f.write("cmake_minimum_required(VERSION 3.20)\nproject(onnx_app LANGUAGES C)\n"
                "find_package(snnc REQUIRED)\nadd_executable(app app.c)\n"
                "snnc_generate(TARGET app MODEL net.onnx OUT_DIR gen OUT_VAR files)\n"
                "list(FILTER files INCLUDE REGEX \"[.]safetensors$\")\n"
                "target_compile_definitions(app PRIVATE PKG_WEIGHTS_FILE=\"${files}\")\n")
    build = os.path.join(tmp, "onnx-build")
    sh([cmake, "-S", src, "-B", build, "-DCMAKE_PREFIX_PATH=" + prefix])
    sh([cmake, "--build", build])
    check(os.path.isfile(os.path.join(build, "gen", "pkgnet.safetensors")), "ONNX: gen/pkgnet.safetensors written")
    rows = parse(sh([os.path.join(build, "app")]))
    counts, _ = reference(W1, B2, 8)
    check(rows.get("counts") == [counts], "ONNX: counts %s, expected %s" % (rows.get("counts"), counts))


def main():
    cmake, snnc_build, cc = sys.argv[1:4]
    tmp = tempfile.mkdtemp(prefix="snnc-package-")
    try:
        run(cmake, snnc_build, cc, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        print("%d check(s) failed" % len(failures))
        return 1
    print("package: all checks passed")
    return 0


def run(cmake, snnc_build, cc, tmp):
    prefix = os.path.join(tmp, "prefix")
    sh([cmake, "--install", snnc_build, "--prefix", prefix])
    check(os.access(os.path.join(prefix, "bin", "snnc"), os.X_OK), "bin/snnc installed")
    for doc in ("README.md", "docs/cli.md", "docs/cmake.md", "docs/generated-code.md", "examples/fashion_mlp.snn"):
        check(os.path.isfile(os.path.join(prefix, "share", "doc", "snnc", doc)), "share/doc/snnc/%s installed" % doc)
    configs = [os.path.join(root, f) for root, _, files in os.walk(prefix) for f in files
               if f in ("snncConfig.cmake", "snncConfigVersion.cmake")]
    check(len(configs) == 2, "snncConfig.cmake and snncConfigVersion.cmake installed (found %s)" % configs)

    src = os.path.join(tmp, "consumer")  # a copy: the test touches and edits the model
    shutil.copytree(os.path.join(HERE, "consumer"), src)
    weights = os.path.join(tmp, "w.safetensors")
    write_safetensors(weights, {"h_dense.weight": W1, "h_dense.bias": B1})
    avx2 = has_avx2()
    build = os.path.join(tmp, "build")
    sh([cmake, "-S", src, "-B", build, "-DCMAKE_PREFIX_PATH=" + prefix, "-DCMAKE_C_COMPILER=" + cc,
        "-DPKG_WEIGHTS=" + weights, "-DPKG_AVX2=" + ("ON" if avx2 else "OFF")])
    with open(os.path.join(build, "CMakeCache.txt")) as f:
        found = re.search(r"^snnc_DIR:PATH=(.*)$", f.read(), re.M)
    check(found and os.path.realpath(found.group(1)).startswith(os.path.realpath(prefix)),
          "find_package found the installed package (snnc_DIR=%s)" % (found and found.group(1)))
    programs = ["embedded"] + (["avx2"] if avx2 else [])
    if not avx2:
        print("note: this CPU lacks AVX2 or FMA: the TARGET_ARCH avx2 program is not built")

    def build_all():
        return sh([cmake, "--build", build, "-j", "1"])

    def expect(w, b, steps, what):
        counts, v = reference(w, b, steps)
        for prog in programs:
            rows = parse(sh([os.path.join(build, prog)]))
            check(rows.get("counts") == [counts], "%s: %s: counts %s, expected %s" % (prog, what, rows.get("counts"), counts))
        rows = parse(sh([os.path.join(build, "loader"), weights]))
        check(rows.get("counts") == [counts, counts], "loader: %s: counts %s, expected %s twice" % (what, rows.get("counts"), counts))
        check(rows.get("v") and np.allclose(rows["v"][0], v, rtol=0, atol=1e-6),
              "loader: %s: h.v %s, expected %s" % (what, rows.get("v"), v))
        return counts, v

    out = build_all()
    check(out.count("snnc: compiling net.snn") == len(programs) + 1,
          "the first build runs snnc once per program:\n" + out)
    counts, v = expect(W1, B1, 8, "first build")
    check(counts == HAND_COUNTS and np.allclose(v, HAND_V, rtol=0, atol=1e-7),
          "the reference agrees with the hand-derived counts %s and potentials %s" % (HAND_COUNTS, HAND_V))
    gen = os.path.join(build, "snnc_embedded", "pkgnet.c")
    check(os.path.isfile(gen), "the default OUT_DIR is snnc_<target> in the build folder")
    check(os.path.isfile(os.path.join(build, "generated", "loader", "pkgnet.h")), "OUT_DIR generated/loader")

    out = build_all()
    check("snnc: compiling" not in out, "a build with nothing changed runs no snnc:\n" + out)

    # touching the model regenerates every program's code
    before = os.stat(gen).st_mtime_ns
    time.sleep(0.05)
    os.utime(os.path.join(src, "net.snn"))
    out = build_all()
    check(out.count("snnc: compiling net.snn") == len(programs) + 1,
          "touching the model reruns snnc for every program:\n" + out)
    check(os.stat(gen).st_mtime_ns > before, "touching the model rewrites snnc_embedded/pkgnet.c")

    # new weights: only the programs that embed them are regenerated
    write_safetensors(weights, {"h_dense.weight": W1, "h_dense.bias": B2})
    out = build_all()
    check(out.count("snnc: compiling net.snn") == len(programs),
          "new weights rerun snnc for the programs that embed them, and only those:\n" + out)
    expect(W1, B2, 8, "new weights")

    # a changed model: 5 steps instead of 8
    model = os.path.join(src, "net.snn")
    with open(model) as f:
        text = f.read()
    with open(model, "w") as f:
        f.write(text.replace("timesteps 8;", "timesteps 5;"))
    build_all()
    expect(W1, B2, 5, "5 timesteps")

    misuses(cmake, prefix, tmp)
    onnx_model(cmake, prefix, tmp, weights)


if __name__ == "__main__":
    sys.exit(main())
