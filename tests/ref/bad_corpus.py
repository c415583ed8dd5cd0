"""What the runners of the malformed-model corpora share (tests/nir/run_bad.py,
tests/onnx/run_bad.py): the list of cases in CORPUS_DIR/EXPECTED, and the
check that snnc refuses a file as it must.

A refusal must:
- exit with status 1 (not 0, not a usage error, not a signal: no crash,
  no internal compiler error, no sanitizer report);
- print an error that contains the expected substring;
- leave no output behind (its output folder stays empty);
- stay within 2 GiB of address space (not checked in a sanitizer build,
  whose AddressSanitizer reserves terabytes): a small file must not make
  snnc allocate what it claims.

Needs only the standard library, so it runs in the sanitizer build too.
"""
import os
import resource
import shutil
import struct
import subprocess
import sys

SNNC = os.environ.get("SNNC")
SANITIZED = bool(SNNC) and os.path.exists(SNNC) and b"__asan_init" in open(SNNC, "rb").read()
# what must never be in snnc's messages
NEVER = ("internal compiler error", "AddressSanitizer", "LeakSanitizer", "runtime error:")


def snnc_or_skip():
    if not SNNC or not os.path.exists(SNNC):
        print("SKIPPED: SNNC is not set to the built snnc binary")
        sys.exit(77)
    return SNNC


def npy_ones(shape):
    """A .npy file of float32 ones (written by hand: no NumPy needed)."""
    head = "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }" % "".join("%d, " % d for d in shape)
    head += " " * (-(10 + len(head) + 1) % 64) + "\n"
    n = 1
    for d in shape:
        n *= d
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(head)) + head.encode() + struct.pack("<f", 1.0) * n


def _limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


def run(cmd):
    """snnc (cmd[0] is its path) within the memory limit, for 120 s at most."""
    return subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=120,
                          preexec_fn=None if SANITIZED else _limit_memory)


def read_expected(corpus):
    """CORPUS_DIR/EXPECTED: "file<TAB>expected substring of the error" per
    line ('#' comments); a file named alone is data a case refers to.
    Returns ([(path, expected)], the set of names listed)."""
    cases, listed = [], set()
    with open(os.path.join(corpus, "EXPECTED")) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            name, _, expected = line.partition("\t")
            listed.add(name)
            if expected:
                cases.append((os.path.join(corpus, name), expected))
    return cases, listed


class Runner:
    """Counts the cases; `done` prints the summary line and exits."""

    def __init__(self, width=28, never=NEVER):
        self.passed = 0
        self.failed = 0
        self.width = width
        self.never = never

    def ok(self, name, msg=""):
        self.passed += 1
        print(("ok   %-*s %s" % (self.width, name, msg)).rstrip())

    def fail(self, msg):
        self.failed += 1
        print("FAIL " + msg)

    def refused(self, path, expected, runs, out):
        """Each of runs, (what, command), must refuse the file at path as
        the module's docstring says, leaving the folder out empty."""
        ok, err = True, ""
        for what, cmd in runs:
            shutil.rmtree(out, ignore_errors=True)
            os.mkdir(out)
            name = "%s (%s)" % (os.path.basename(path), what)
            try:
                p = run(cmd)
            except subprocess.TimeoutExpired:
                self.fail("%s: timed out" % name)
                ok = False
                continue
            err = p.stderr
            if p.returncode != 1:
                self.fail("%s: exit status %d, expected 1; stderr:\n%s" % (name, p.returncode, err))
                ok = False
            for bad in self.never:
                if bad in err:
                    self.fail("%s: %s:\n%s" % (name, bad, err))
                    ok = False
            if expected not in err or "error:" not in err:
                self.fail("%s: the error does not contain %r:\n%s" % (name, expected, err))
                ok = False
            left = os.listdir(out)
            if left:
                self.fail("%s: left %s behind" % (name, left))
                ok = False
        if ok:
            first = err.strip().splitlines()[0] if err.strip() else ""
            self.ok(os.path.basename(path), first[:150])

    def at_least(self, cases, minimum):
        if len(cases) < minimum:
            self.fail("%d cases, expected at least %d" % (len(cases), minimum))

    def done(self):
        print("%d passed, %d failed" % (self.passed, self.failed))
        sys.exit(1 if self.failed else 0)
