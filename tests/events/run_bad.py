#!/usr/bin/env python3
"""run_bad.py CORPUS_DIR [MIN]: snnc against the corpus of malformed event
lists (tests/bad/events, written by its make_corpus.py).

CORPUS_DIR/EXPECTED lists "file<TAB>expected substring of the error"; a
line with a file name alone is data (the model events.snn, the offsets
files beside their event files, the valid control). Every case is given to
`snnc run events.snn --input CASE --output OUT/y.npy --record ev=...`,
which must refuse it as tests/ref/bad_corpus.py says: exit status 1, the
expected message after the name of the file it is about (the case, or its
offsets file where the expected message starts with "offsets.npy: "), with
the sample and event where there is one, nothing left in OUT. The control, valid.npy with its offsets, must
run and give an output for its 2 samples.

Needs only the standard library, so it runs in the sanitizer build too.
"""
import os
import struct
import subprocess
import sys
import tempfile

import bad_corpus as B


def main():
    snnc = B.snnc_or_skip()
    R = B.Runner(width=28)
    corpus = sys.argv[1]
    cases, listed = B.read_expected(corpus)
    for f in sorted(os.listdir(corpus)):
        if f not in listed and f not in ("EXPECTED", "make_corpus.py") and not f.startswith("."):
            R.fail("%s is not listed in EXPECTED" % f)
    R.at_least(cases, int(sys.argv[2]) if len(sys.argv) > 2 else 20)
    model = os.path.join(corpus, "events.snn")
    with tempfile.TemporaryDirectory(prefix="snnc-bad-events-") as work:
        out = os.path.join(work, "out")
        for path, expected in cases:
            # the message names the event file, or its offsets file
            full = path[:-4] + "." + expected if expected.startswith("offsets.npy: ") else path + ": " + expected
            R.refused(path, full, [
                ("run", [snnc, "run", model, "--init", "1", "--input", path, "--output",
                         os.path.join(out, "y.npy"), "--record", "ev=" + os.path.join(out, "ev.npy")])], out)
        # the control
        y = os.path.join(work, "y.npy")
        p = subprocess.run([snnc, "run", model, "--init", "1", "--input", os.path.join(corpus, "valid.npy"),
                            "--output", y], capture_output=True, text=True)
        if p.returncode != 0:
            R.fail("valid.npy: exit status %d:\n%s" % (p.returncode, p.stderr))
        else:
            with open(y, "rb") as f:
                head = f.read(128).decode("latin-1")
            if "'shape': (2, 3)" not in head:
                R.fail("valid.npy: the output is not [2, 3]: %r" % head)
            else:
                R.ok("valid.npy", "runs: 2 samples")
    R.done()


main()
