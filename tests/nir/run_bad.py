#!/usr/bin/env python3
"""run_bad.py CORPUS_DIR [MIN]: snnc against the corpus of malformed NIR
files (tests/nir/bad, written by its make_corpus.py).

CORPUS_DIR/EXPECTED lists "file<TAB>expected substring of the error".
Every file is given to `snnc compile FILE -o OUT --timesteps 3` and to
`snnc run FILE --input X --output OUT/y.npy` (X: [3, 1, 4], which also
gives the timesteps), each of which must refuse it as tests/ref/bad_corpus.py
says, with an error that names the node and the problem where there is a
node, and without HDF5's own messages. Also: a NIR file without
--timesteps and without an input to take them from is an error, and
valid.nir, the file the corpus varies, runs (a control).

Needs only the standard library, so it runs in the sanitizer build too.
"""
import os
import sys
import tempfile

import bad_corpus as B


def main():
    snnc = B.snnc_or_skip()
    R = B.Runner(never=B.NEVER + ("HDF5-DIAG",))
    corpus = sys.argv[1]
    cases, listed = B.read_expected(corpus)
    for f in sorted(os.listdir(corpus)):
        if f.endswith(".nir") and f not in listed and f != "valid.nir":
            R.fail("%s is not listed in EXPECTED" % f)
    R.at_least(cases, int(sys.argv[2]) if len(sys.argv) > 2 else 20)
    with tempfile.TemporaryDirectory(prefix="snnc-bad-nir-") as work:
        x, out = os.path.join(work, "x.npy"), os.path.join(work, "out")
        with open(x, "wb") as f:
            f.write(B.npy_ones((3, 1, 4)))
        for path, expected in cases:
            R.refused(path, expected, [("compile", [snnc, "compile", path, "-o", out, "--timesteps", "3"]),
                                       ("run", [snnc, "run", path, "--input", x, "--output",
                                                os.path.join(out, "y.npy")])], out)
        valid = os.path.join(corpus, "valid.nir")
        # no --timesteps and no input to take them from
        p = B.run([snnc, "info", valid])
        if p.returncode != 1 or "give --timesteps N" not in p.stderr:
            R.fail("valid.nir without --timesteps: exit %d: %s" % (p.returncode, p.stderr))
        else:
            R.ok("valid.nir, no timesteps", p.stderr.strip().splitlines()[0][:150])
        # the control: the file the corpus varies runs
        y = os.path.join(work, "y.npy")
        p = B.run([snnc, "run", valid, "--input", x, "--output", y])
        if p.returncode != 0 or not os.path.exists(y):
            R.fail("valid.nir (the file the corpus varies): exit %d: %s" % (p.returncode, p.stderr))
        else:
            print("ok   valid.nir runs")
    R.done()


if __name__ == "__main__":
    main()
