#!/usr/bin/env python3
"""run_bad.py CORPUS_DIR [MIN]: snnc against the corpus of malformed NIR
files (tests/nir/bad, written by its make_corpus.py).

CORPUS_DIR/EXPECTED lists "file<TAB>expected substring of the error".
Every file is given to `snnc compile FILE -o OUT --timesteps 3` and to
`snnc run FILE --input X --output OUT/y.npy` (X: [3, 1, 4], which also
gives the timesteps), each of which must:
- exit with status 1 (not 0, not a usage error, not a signal: no crash,
  no internal compiler error, no sanitizer report);
- print an error that contains the expected substring, which names the
  node and the problem where there is a node;
- leave no output behind (OUT stays empty);
- stay within 2 GiB of address space (not checked in a sanitizer build):
  a small file must not make snnc allocate what its datasets claim.
Also: a NIR file without --timesteps and without an input to take them
from is an error, and valid.nir, the file the corpus varies, runs (a
control).

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
SANITIZED = bool(SNNC) and os.path.exists(SNNC) and b"__asan_init" in open(SNNC, "rb").read()
failed = 0
passed = 0


def npy_ones(shape):
    """A .npy file of float32 ones (written by hand: no NumPy needed)."""
    head = "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }" % "".join("%d, " % d for d in shape)
    head += " " * (-(10 + len(head) + 1) % 64) + "\n"
    n = 1
    for d in shape:
        n *= d
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(head)) + head.encode() + struct.pack("<f", 1.0) * n


def limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


def fail(msg):
    global failed
    failed += 1
    print("FAIL " + msg)


def run(cmd):
    return subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=120,
                          preexec_fn=None if SANITIZED else limit_memory)


def check_one(path, expected, work):
    global passed
    ok = True
    out = os.path.join(work, "out")
    x = os.path.join(work, "x.npy")
    runs = [("compile", [SNNC, "compile", path, "-o", out, "--timesteps", "3"]),
            ("run", [SNNC, "run", path, "--input", x, "--output", os.path.join(out, "y.npy")])]
    err = ""
    for what, cmd in runs:
        shutil.rmtree(out, ignore_errors=True)
        os.mkdir(out)
        name = "%s (%s)" % (os.path.basename(path), what)
        try:
            p = run(cmd)
        except subprocess.TimeoutExpired:
            fail("%s: timed out" % name)
            ok = False
            continue
        err = p.stderr
        if p.returncode != 1:
            fail("%s: exit status %d, expected 1; stderr:\n%s" % (name, p.returncode, err))
            ok = False
        for bad in ("internal compiler error", "AddressSanitizer", "LeakSanitizer", "runtime error:", "HDF5-DIAG"):
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
        print("ok   %-28s %s" % (os.path.basename(path), first[:150]))


def main():
    global passed
    if not SNNC or not os.path.exists(SNNC):
        print("SKIPPED: SNNC is not set to the built snnc binary")
        sys.exit(77)
    corpus = sys.argv[1]
    minimum = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    cases, listed = [], set()
    with open(os.path.join(corpus, "EXPECTED")) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            name, _, expected = line.partition("\t")
            listed.add(name)
            cases.append((os.path.join(corpus, name), expected))
    for f in sorted(os.listdir(corpus)):
        if f.endswith(".nir") and f not in listed and f != "valid.nir":
            fail("%s is not listed in EXPECTED" % f)
    if len(cases) < minimum:
        fail("%d cases, expected at least %d" % (len(cases), minimum))
    with tempfile.TemporaryDirectory(prefix="snnc-bad-nir-") as work:
        with open(os.path.join(work, "x.npy"), "wb") as f:
            f.write(npy_ones((3, 1, 4)))
        for path, expected in cases:
            check_one(path, expected, work)
        valid = os.path.join(corpus, "valid.nir")
        # no --timesteps and no input to take them from
        p = run([SNNC, "info", valid])
        if p.returncode != 1 or "give --timesteps N" not in p.stderr:
            fail("valid.nir without --timesteps: exit %d: %s" % (p.returncode, p.stderr))
        else:
            passed += 1
            print("ok   %-28s %s" % ("valid.nir, no timesteps", p.stderr.strip().splitlines()[0][:150]))
        # the control: the file the corpus varies runs
        y = os.path.join(work, "y.npy")
        p = run([SNNC, "run", valid, "--input", os.path.join(work, "x.npy"), "--output", y])
        if p.returncode != 0 or not os.path.exists(y):
            fail("valid.nir (the file the corpus varies): exit %d: %s" % (p.returncode, p.stderr))
        else:
            print("ok   valid.nir runs")
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
