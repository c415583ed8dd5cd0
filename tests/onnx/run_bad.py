#!/usr/bin/env python3
"""run_bad.py CORPUS_DIR [MIN]: snnc against the corpus of malformed ONNX
models (tests/bad/onnx, written by its make_corpus.py).

CORPUS_DIR/EXPECTED lists "model<TAB>expected substring of the error"; a
line with a file name alone is data a model refers to (external data).
Every model is given to `snnc compile MODEL -o OUT` and to `snnc run MODEL
--input X --output OUT/y.npy --record ...`, each of which must refuse it
as tests/ref/bad_corpus.py says, with an error that names the problem and
the node where there is one. Besides the committed files, one case is made
here, in a temporary folder: external data that is a symbolic link out of
the model's folder. And valid.onnx, the model the corpus varies, must run
(a control).

Needs only the standard library, so it runs in the sanitizer build too.
"""
import os
import shutil
import subprocess
import sys
import tempfile

import bad_corpus as B


def generated_cases(corpus, work):
    """The cases made at test time: (model path, expected substring)."""
    d = os.path.join(work, "gen")
    os.makedirs(d)
    # external data through a symbolic link out of the folder
    os.symlink("/etc/passwd", os.path.join(d, "external_too_short.bin"))
    shutil.copy(os.path.join(corpus, "external_too_short.onnx"), os.path.join(d, "external_symlink.onnx"))
    return [(os.path.join(d, "external_symlink.onnx"),
             "external data location 'external_too_short.bin' leads out of the model's folder through a "
             "symbolic link")]


def main():
    snnc = B.snnc_or_skip()
    R = B.Runner(width=32)
    corpus = sys.argv[1]
    cases, listed = B.read_expected(corpus)
    for f in sorted(os.listdir(corpus)):
        if f not in listed and f not in ("EXPECTED", "make_corpus.py") and not f.startswith("."):
            R.fail("%s is not listed in EXPECTED" % f)
        if f in listed and not f.endswith(".onnx") and any(c[0].endswith("/" + f) for c in cases):
            R.fail("%s: only .onnx files are cases" % f)
    R.at_least(cases, int(sys.argv[2]) if len(sys.argv) > 2 else 20)
    with tempfile.TemporaryDirectory(prefix="snnc-bad-onnx-") as work:
        x, out = os.path.join(work, "x.npy"), os.path.join(work, "out")
        with open(x, "wb") as f:
            f.write(B.npy_ones((1, 4)))  # what most models of the corpus take
        for model, expected in cases + generated_cases(corpus, work):
            R.refused(model, expected, [
                ("compile", [snnc, "compile", model, "-o", out]),
                ("run", [snnc, "run", model, "--input", x, "--output", os.path.join(out, "y.npy"),
                         "--record", "lif=" + os.path.join(out, "lif.npy")])], out)
        # the control: the valid model the corpus varies imports and runs
        y = os.path.join(work, "y.npy")
        p = subprocess.run([snnc, "run", os.path.join(corpus, "valid.onnx"), "--input", x, "--output", y],
                           capture_output=True, text=True)
        if p.returncode != 0 or not os.path.exists(y):
            R.fail("valid.onnx (the model the corpus varies): exit %d: %s" % (p.returncode, p.stderr))
        else:
            print("ok   valid.onnx runs")
    R.done()


if __name__ == "__main__":
    main()
