#!/usr/bin/env python3
"""run_bad.py CORPUS_DIR: snnc against the corpus of malformed ONNX models
(tests/bad/onnx, written by its make_corpus.py).

CORPUS_DIR/EXPECTED lists "model<TAB>expected substring of the error"; a
line with a file name alone is data a model refers to (external data).
Every model is given to `snnc compile MODEL -o OUT` and to `snnc run MODEL
--input X --output OUT/y.npy --record ...`, each of which must:
- exit with status 1 (not 0, not a usage error, not a signal: no crash,
  no internal compiler error, no sanitizer report);
- print an error that contains the expected substring, which names the
  problem and the node where there is one;
- leave no output behind (OUT stays empty);
- stay within 2 GiB of address space (not checked in a sanitizer build):
  a small file must not make snnc allocate what its dims claim.
Besides the committed files, one case is made here, in a temporary
folder: external data that is a symbolic link out of the model's folder.
And valid.onnx, the model the corpus varies, must run (a control).

Needs only the standard library, so it runs in the sanitizer build too.
"""
import os
import resource
import shutil
import struct
import subprocess
import sys
import tempfile

SNNC = os.environ.get("SNNC")


def npy_ones(shape):
    """A .npy file of float32 ones (written by hand: no NumPy needed)."""
    head = "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }" % "".join("%d, " % d for d in shape)
    head += " " * (-(10 + len(head) + 1) % 64) + "\n"
    n = 1
    for d in shape:
        n *= d
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(head)) + head.encode() + struct.pack("<f", 1.0) * n


# a [1, 4] input: what most models of the corpus take
NPY = npy_ones((1, 4))

failed = 0
passed = 0
# AddressSanitizer reserves terabytes of address space: no limit there
SANITIZED = bool(SNNC) and os.path.exists(SNNC) and b"__asan_init" in open(SNNC, "rb").read()


def limit_memory():
    """At most 2 GiB of address space: a model that claims huge tensors in a
    small file must be refused before anything that large is allocated."""
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))



def fail(msg):
    global failed
    failed += 1
    print("FAIL " + msg)


def check_one(model, expected, work):
    global passed
    ok = True
    out = os.path.join(work, "out")
    x = os.path.join(work, "x.npy")
    with open(x, "wb") as f:
        f.write(NPY)
    runs = [("compile", [SNNC, "compile", model, "-o", out]),
            ("run", [SNNC, "run", model, "--input", x, "--output", os.path.join(out, "y.npy"),
                     "--record", "lif=" + os.path.join(out, "lif.npy")])]
    for what, cmd in runs:
        shutil.rmtree(out, ignore_errors=True)
        os.mkdir(out)
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=120,
                               preexec_fn=None if SANITIZED else limit_memory)
        except subprocess.TimeoutExpired:
            fail("%s: %s: timed out" % (os.path.basename(model), what))
            ok = False
            continue
        name = "%s (%s)" % (os.path.basename(model), what)
        err = p.stderr
        if p.returncode != 1:
            fail("%s: exit status %d, expected 1; stderr:\n%s" % (name, p.returncode, err))
            ok = False
        for bad in ("internal compiler error", "AddressSanitizer", "LeakSanitizer", "runtime error:"):
            if bad in err:
                fail("%s: %s:\n%s" % (name, bad, err))
                ok = False
        if expected not in err or "error:" not in err:
            fail("%s: the error does not contain %r:\n%s" % (name, expected, err))
            ok = False
        left = os.listdir(out)
        if left:
            fail("%s: left %s behind" % (name, left))
            ok = False
    if ok:
        passed += 1
        first = err.strip().splitlines()[0] if err.strip() else ""
        print("ok   %-32s %s" % (os.path.basename(model), first[:140]))


def generated_cases(corpus, work):
    """The cases made at test time: (model path, expected substring or None)."""
    cases = []
    d = os.path.join(work, "gen")
    os.makedirs(d)
    # external data through a symbolic link out of the folder
    link = os.path.join(d, "external_too_short.bin")
    os.symlink("/etc/passwd", link)
    shutil.copy(os.path.join(corpus, "external_too_short.onnx"), os.path.join(d, "external_symlink.onnx"))
    cases.append((os.path.join(d, "external_symlink.onnx"),
                  "external data location 'external_too_short.bin' leads out of the model's folder through a "
                  "symbolic link"))
    return cases


def main():
    global passed
    if not SNNC or not os.path.exists(SNNC):
        print("SKIPPED: SNNC is not set to the built snnc binary")
        sys.exit(77)
    corpus = sys.argv[1]
    minimum = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    listed, cases = set(), []
    with open(os.path.join(corpus, "EXPECTED")) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            name, _, expected = line.partition("\t")
            listed.add(name)
            if expected:
                cases.append((os.path.join(corpus, name), expected))
    for f in sorted(os.listdir(corpus)):
        if f not in listed and f not in ("EXPECTED", "make_corpus.py") and not f.startswith("."):
            fail("%s is not listed in EXPECTED" % f)
        if f in listed and not f.endswith(".onnx") and any(c[0].endswith("/" + f) for c in cases):
            fail("%s: only .onnx files are cases" % f)
    if len(cases) < minimum:
        fail("%d cases, expected at least %d" % (len(cases), minimum))
    with tempfile.TemporaryDirectory(prefix="snnc-bad-onnx-") as work:
        for model, expected in cases + generated_cases(corpus, work):
            check_one(model, expected, work)
        # the control: the valid model the corpus varies imports and runs
        x = os.path.join(work, "x.npy")
        y = os.path.join(work, "y.npy")
        p = subprocess.run([SNNC, "run", os.path.join(corpus, "valid.onnx"), "--input", x, "--output", y],
                           capture_output=True, text=True)
        if p.returncode != 0 or not os.path.exists(y):
            fail("valid.onnx (the model the corpus varies): exit %d: %s" % (p.returncode, p.stderr))
        else:
            print("ok   valid.onnx runs")
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
