#!/usr/bin/env python3
"""test_messages.py: what `snnc run` and `snnc grad` accept, and what they
say when they refuse, for the findings of the hardening issue.

1. `grad --record LAYER[.VAR]=F.npy` writes the recorded values: the
   output layer's record equals the --output-steps file, and a hidden
   layer's record and a neuron state's equal what `snnc run --record`
   writes for the same input and weights. A network with dropout or
   batchnorm is refused (the inference code that records computes them
   otherwise than the training forward), and --record without a file is
   bad usage.
2. `run` with --record and no --output writes the records only; with
   neither it is bad usage naming both.
3. A dL/doutput of the wrong shape: the message gives the shape it has and
   the shape it must have.
4. "parameter tensor" in the singular for one, plural for two; a network
   without parameters runs with neither --weights nor --init.
5. Special files: --weights /dev/zero is "not a regular file", a folder as
   --input, --grad-output, --weights or the model "is a folder".
6. Unwritable results are refused before anything is compiled (the
   --keep-build folder is never made): --output and --record in /sys (where
   even root cannot create files), under a regular file, and, unless
   running as root, in a folder without write permission.
Every refusal exits with 1 (2 for bad usage) and writes no file.
"""
import os
import subprocess
import tempfile

import numpy as np

from snnc_ref import Checker, snnc_path, write_safetensors

NET = """
network Msg {
  timesteps 3;
  input x : [4] encode direct;
  h = x |> dense(5) |> LIF() as h;
  out = h |> dense(2) |> LI() as out;
  output out readout mean;
}
"""
DROPOUT = NET.replace("Msg", "Drop").replace("|> LIF()", "|> dropout(0.5) |> LIF()")
BATCHNORM = NET.replace("Msg", "Norm").replace("|> LIF()", "|> batchnorm() |> LIF()")
ONE_TENSOR = """
network One {
  timesteps 2;
  input x : [4] encode direct;
  h = x |> dense(3, bias = false) |> LIF();
  output h readout count;
}
"""
NO_PARAMS = """
network Bare {
  timesteps 4;
  input x : [3] encode direct;
  h = x |> IF();
  output h readout count;
}
"""


class Work:
    def __init__(self, root):
        self.root = root
        self.files = {}
        for name, text in (("msg", NET), ("drop", DROPOUT), ("norm", BATCHNORM), ("one", ONE_TENSOR),
                           ("bare", NO_PARAMS)):
            p = os.path.join(root, name + ".snn")
            with open(p, "w") as f:
                f.write(text)
            self.files[name] = p
        rng = np.random.default_rng(2)
        self.x = os.path.join(root, "x.npy")
        np.save(self.x, (rng.standard_normal((2, 4)) * 2).astype(np.float32))
        self.gy = os.path.join(root, "gy.npy")
        np.save(self.gy, rng.standard_normal((3, 2, 2)).astype(np.float32))
        self.gbad = os.path.join(root, "gbad.npy")
        np.save(self.gbad, rng.standard_normal((3, 2)).astype(np.float32))
        self.w = os.path.join(root, "w.safetensors")
        write_safetensors(self.w, {"h_dense.weight": rng.standard_normal((5, 4)),
                                   "h_dense.bias": rng.standard_normal(5) * 0.1,
                                   "out_dense.weight": rng.standard_normal((2, 5)),
                                   "out_dense.bias": rng.standard_normal(2) * 0.1})
        self.folder = os.path.join(root, "a-folder")
        os.makedirs(self.folder)
        self.plain = os.path.join(root, "a-file")
        with open(self.plain, "w") as f:
            f.write("text\n")
        self.out = os.path.join(root, "out")
        os.makedirs(self.out)

    def snnc(self, *args):
        p = subprocess.run([snnc_path()] + list(args) + ["--threads", "1"], capture_output=True, text=True,
                           cwd=self.root)
        return p


def refused(c, w, what, args, status, must_say):
    """snnc args must exit with status, say every string of must_say on
    standard error, and leave w.out empty."""
    p = w.snnc(*args)
    msg = p.stderr.strip()
    c.check(p.returncode == status, "%s: exit %d (got %d): %r" % (what, status, p.returncode, msg))
    for s in must_say:
        c.check(s in msg, "%s: the message says %r: %r" % (what, s, msg))
    left = os.listdir(w.out)
    c.check(left == [], "%s: no file is written (%s)" % (what, left))
    for n in left:
        os.unlink(os.path.join(w.out, n))
    print("%s: %s" % (what, msg.splitlines()[0] if msg else "(no message)"))
    return msg


def grad_records(c, w):
    o = w.out
    p = w.snnc("grad", w.files["msg"], "--weights", w.w, "--input", w.x, "--grad-output", w.gy,
               "--output", os.path.join(o, "g.safetensors"), "--output-steps", os.path.join(o, "ys.npy"),
               "--record", "out=" + os.path.join(o, "out.npy"), "--record", "h=" + os.path.join(o, "h.npy"),
               "--record", "h.v=" + os.path.join(o, "hv.npy"))
    c.check(p.returncode == 0, "grad --record: %s" % p.stderr.strip())
    if p.returncode == 0:
        ys, rec = np.load(os.path.join(o, "ys.npy")), np.load(os.path.join(o, "out.npy"))
        c.check(rec.shape == (3, 2, 2), "grad --record out is [T, B, 2] (got %s)" % (rec.shape,))
        c.check(np.array_equal(rec, ys), "grad --record out equals --output-steps")
        h, hv = np.load(os.path.join(o, "h.npy")), np.load(os.path.join(o, "hv.npy"))
        c.check(h.shape == (3, 2, 5) and hv.shape == (3, 2, 5),
                "grad --record h and h.v are [T, B, 5] (got %s, %s)" % (h.shape, hv.shape))
        c.check(set(np.unique(h)) <= {0.0, 1.0} and h.any(), "h records spikes, some of them 1")
        r = os.path.join(w.root, "run")
        os.makedirs(r, exist_ok=True)
        p = w.snnc("run", w.files["msg"], "--weights", w.w, "--input", w.x,
                   "--record", "h=" + os.path.join(r, "h.npy"), "--record", "h.v=" + os.path.join(r, "hv.npy"))
        c.check(p.returncode == 0, "run with records only: %s" % p.stderr.strip())
        if p.returncode == 0:
            c.check(np.array_equal(np.load(os.path.join(r, "h.npy")), h), "grad's h record equals run's")
            c.check(np.array_equal(np.load(os.path.join(r, "hv.npy")), hv), "grad's h.v record equals run's")
            c.check(sorted(os.listdir(r)) == ["h.npy", "hv.npy"],
                    "run with records only writes only them (%s)" % sorted(os.listdir(r)))
    for n in os.listdir(o):
        os.unlink(os.path.join(o, n))
    refused(c, w, "grad --record with dropout",
            ["grad", w.files["drop"], "--init", "1", "--input", w.x, "--grad-output", w.gy,
             "--output", os.path.join(o, "g.safetensors"), "--record", "h=" + os.path.join(o, "h.npy")],
            1, ["--record with grad", "h_dropout", "dropout layer", "record with snnc run"])
    refused(c, w, "grad --record with batchnorm",
            ["grad", w.files["norm"], "--init", "1", "--input", w.x, "--grad-output", w.gy,
             "--output", os.path.join(o, "g.safetensors"), "--record", "h=" + os.path.join(o, "h.npy")],
            1, ["--record with grad", "batchnorm layer", "batch's statistics"])
    refused(c, w, "grad --record without a file",
            ["grad", w.files["msg"], "--init", "1", "--input", w.x, "--grad-output", w.gy,
             "--output", os.path.join(o, "g.safetensors"), "--record", "h"],
            2, ["--record needs LAYER[.VAR]=FILE.npy with grad", "'h'"])
    refused(c, w, "run with neither --output nor --record", ["run", w.files["msg"], "--init", "1", "--input", w.x],
            2, ["--output Y.npy or --record"])


def shapes_and_counts(c, w):
    o = w.out
    refused(c, w, "a wrong dL/doutput",
            ["grad", w.files["msg"], "--init", "1", "--input", w.x, "--grad-output", w.gbad,
             "--output", os.path.join(o, "g.safetensors")],
            1, ["gbad.npy", "has shape [3, 2]", "must have the shape of the output of every step, [3, 2, 2]"])
    msg = refused(c, w, "one parameter tensor",
                  ["run", w.files["one"], "--input", w.x, "--output", os.path.join(o, "y.npy")],
                  1, ["has 1 parameter tensor (", "give --weights FILE or --init SEED"])
    c.check("tensors" not in msg, "one tensor is not 'tensors': %r" % msg)
    refused(c, w, "four parameter tensors",
            ["run", w.files["msg"], "--input", w.x, "--output", os.path.join(o, "y.npy")],
            1, ["has 4 parameter tensors ('h_dense.weight' first)"])
    bx = os.path.join(w.root, "bx.npy")
    np.save(bx, np.array([[0.6, 0.2, 1.5]], dtype=np.float32))
    p = w.snnc("run", w.files["bare"], "--input", bx, "--output", os.path.join(o, "y.npy"))
    c.check(p.returncode == 0, "a network without parameters runs with neither --weights nor --init: %s"
            % p.stderr.strip())
    if p.returncode == 0:
        # IF, threshold 1, hard reset: 0.6 fires at steps 2 and 4, 0.2 never, 1.5 at every step
        y = np.load(os.path.join(o, "y.npy"))
        c.check(np.array_equal(y, np.array([[2, 0, 4]], dtype=np.float32)), "its spike counts (got %s)" % y)
        os.unlink(os.path.join(o, "y.npy"))


def special_files(c, w):
    o = w.out
    y = os.path.join(o, "y.npy")
    refused(c, w, "--weights /dev/zero", ["run", w.files["msg"], "--weights", "/dev/zero", "--input", w.x,
                                          "--output", y], 1, ["/dev/zero: is not a regular file"])
    refused(c, w, "--weights a folder", ["run", w.files["msg"], "--weights", w.folder, "--input", w.x,
                                         "--output", y], 1, [w.folder + ": is a folder, not a file"])
    refused(c, w, "--input a folder", ["run", w.files["msg"], "--init", "1", "--input", w.folder, "--output", y],
            1, [w.folder + ": is a folder, not a file"])
    refused(c, w, "--grad-output a folder",
            ["grad", w.files["msg"], "--init", "1", "--input", w.x, "--grad-output", w.folder,
             "--output", os.path.join(o, "g.safetensors")], 1, [w.folder + ": is a folder, not a file"])
    refused(c, w, "the model a folder", ["compile", w.folder, "-o", o], 1, [w.folder + ": is a folder, not a file"])
    refused(c, w, "--output a folder", ["run", w.files["msg"], "--init", "1", "--input", w.x, "--output", w.folder],
            1, [w.folder + ": cannot write: it is a folder"])


def unwritable(c, w):
    keep = os.path.join(w.root, "keep")

    def run_refused(what, output, records, must_say):
        args = ["run", w.files["msg"], "--init", "1", "--input", w.x, "--keep-build", keep]
        if output:
            args += ["--output", output]
        for r in records:
            args += ["--record", r]
        refused(c, w, what, args, 1, must_say)
        c.check(not os.path.exists(keep), "%s: refused before anything is built" % what)

    def grad_refused(what, output, must_say):
        refused(c, w, what, ["grad", w.files["msg"], "--init", "1", "--input", w.x, "--grad-output", w.gy,
                             "--output", output, "--keep-build", keep], 1, must_say)
        c.check(not os.path.exists(keep), "%s: refused before anything is built" % what)

    under = os.path.join(w.plain, "y.npy")
    run_refused("--output under a regular file", under, [],
                [under, "cannot write into the folder '%s': not a folder" % w.plain])
    run_refused("--record under a regular file", None, ["h=" + under], [under, "not a folder"])
    grad_refused("grad --output under a regular file", os.path.join(w.plain, "g.safetensors"), ["not a folder"])
    try:
        open("/sys/.snnc-test-probe", "w").close()
        os.unlink("/sys/.snnc-test-probe")
        print("skipped the /sys cases: files can be created in /sys on this machine")
    except OSError:
        run_refused("--output in /sys", "/sys/y.npy", [], ["/sys/y.npy: cannot write into the folder '/sys'"])
        run_refused("--record in /sys", os.path.join(w.out, "y.npy"), ["h.v=/sys/v.npy"],
                    ["/sys/v.npy: cannot write into the folder '/sys'"])
        grad_refused("grad --output in /sys", "/sys/g.safetensors", ["cannot write into the folder '/sys'"])
    if os.geteuid() == 0:
        print("skipped: running as root, permissions are not enforced (a folder without write permission)")
        return
    ro = os.path.join(w.root, "read-only")
    os.makedirs(ro)
    os.chmod(ro, 0o555)
    try:
        run_refused("--output in a folder without write permission", os.path.join(ro, "y.npy"), [],
                    ["Permission denied"])
    finally:
        os.chmod(ro, 0o755)


def main():
    snnc_path()
    c = Checker()
    with tempfile.TemporaryDirectory() as root:
        w = Work(root)
        grad_records(c, w)
        shapes_and_counts(c, w)
        special_files(c, w)
        unwritable(c, w)
    c.finish()


if __name__ == "__main__":
    main()
