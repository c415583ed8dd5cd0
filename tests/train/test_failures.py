#!/usr/bin/env python3
"""test_failures.py: how `snnc train` fails, and what it leaves behind.

Each case is one finding of the hardening issue, checked on a small
network trained on a synthetic data set (three Gaussian clusters, .npy
files), in seconds:

1. Stale temporary files. A run killed while it writes a file leaves
   `.NAME.tmpPID.K` in the output folder; a kill is simulated exactly by
   creating those files (empty, or partial) with the id of a process that
   has exited. The next run removes them and says so, and keeps the file
   of a process that still runs (this test's own, and a sleeping child's)
   and files of other forms. `snnc run`, `compile` and `export` do the
   same in the folders they write into.
2. The order of the files after an epoch: the checkpoint first. With
   `metrics.csv` made impossible to write (a folder of that name), the
   epoch's checkpoint is still written; with the checkpoint impossible to
   write, `metrics.csv` and `curves.svg` are not written (they would list
   an epoch the checkpoint lacks).
3. `--resume` on a folder without a checkpoint fails before anything is
   compiled: the C compiler (a wrapper that leaves a mark) is never called
   and the --keep-build folder is never made.
4. An output folder that cannot be written fails before anything is
   compiled, with a message naming it: a folder under a regular file, a
   folder of the kernel's (/sys, where even root cannot create files), and
   a folder without write permission (skipped as root, which ignores it).
5. Divergence: a run whose learning rate is far too high stops with exit
   status 1 and a message naming the epoch and the batch, and writes no
   file; a run resumed from a good epoch with that rate stops in the next
   epoch and leaves the checkpoint, metrics.csv, curves.svg and
   weights.safetensors byte for byte as the good epoch left them. The
   Fashion-MNIST MLP with --lr 999999 (the issue's example; a small
   subset, skipped without Debian's dataset-fashion-mnist) is caught too.
   --lr accepts 1e6 and refuses more with a message that gives the rule.
6. `snnc run` too writes its results through temporary files of the same
   form, and removes those a killed run left in a result's folder (saying
   so on standard error), keeping a live process's; so does `snnc
   compile` in its output folder.
7. `--train-limit` and `--test-limit` with .npy files read only the
   first rows: the weights are byte for byte those of a run on files cut
   to those rows, a NaN after them is not read (without the limit it is
   refused), and inputs and labels of different lengths are refused
   even when both hold the rows asked for.
8. A run ended by a signal leaves no build folder in $TMPDIR (the build
   cache off): SIGINT or SIGTERM while the code compiles (a compiler that
   marks its start and sleeps) removes the folder, and the compiler, and
   ends snnc by that signal; during training the folder is gone already
   (it goes once the code is loaded), so a SIGINT there, and a SIGKILL
   too, leave nothing.
"""
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "ref"))
import snnc_ref as R  # noqa: E402

np = R.require("numpy")

FASHION = "/usr/share/datasets/fashion-mnist"

MODEL = """
network Blobs {
  timesteps 4;
  input x : [16] encode direct;
  h = x |> dense(32) as fc1 |> LIF() as h;
  out = h |> dense(3) as fc2 |> LI(tau = 2.0) as out;
  output out readout mean;
}

train Blobs {
  data npy(train_x = "%(d)s/train_x.npy", train_y = "%(d)s/train_y.npy",
           test_x = "%(d)s/test_x.npy", test_y = "%(d)s/test_y.npy");
  optimizer adam(lr = 0.005);
  epochs 1;
  batch 16;
  seed 3;
}
"""


def read(path):
    with open(path, "rb") as f:
        return f.read()


def snapshot(folder):
    """{name: bytes} of the plain files of a folder."""
    out = {}
    for n in sorted(os.listdir(folder)):
        p = os.path.join(folder, n)
        if os.path.isfile(p):
            out[n] = read(p)
    return out


def dead_pid():
    """The id of a process that has exited (and is not reused yet)."""
    for _ in range(20):
        p = subprocess.Popen(["true"])
        p.wait()
        try:
            os.kill(p.pid, 0)
        except ProcessLookupError:
            return p.pid
    R.skip("cannot find the id of an exited process")


class Work:
    def __init__(self, root):
        self.root = root
        self.model = os.path.join(root, "blobs.snn")
        with open(self.model, "w") as f:
            f.write(MODEL % {"d": root})
        self.cc = R.quick_cc(root)
        # a compiler wrapper that leaves a mark when it is called
        self.mark = os.path.join(root, "compiled")
        self.marking_cc = os.path.join(root, "cc-mark")
        with open(self.marking_cc, "w") as f:
            f.write("#!/bin/sh\ntouch '%s'\nexec '%s' \"$@\"\n" % (self.mark, self.cc))
        os.chmod(self.marking_cc, 0o755)

    def train(self, out, *args, cc=None):
        cmd = [R.snnc_path(), "train", self.model, "-o", out, "--threads", "1",
               "--cc", cc or self.cc] + list(args)
        return subprocess.run(cmd, capture_output=True, text=True, cwd=self.root)


def stale_temps(w, c):
    out = os.path.join(w.root, "stale")
    p = w.train(out)
    c.check(p.returncode == 0, "a first epoch trains: %s" % p.stderr.strip())
    dead = dead_pid()
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        gone = [".checkpoint.safetensors.tmp%d.0" % dead, ".metrics.csv.tmp%d.3" % dead,
                ".curves.svg.tmp%d.0" % dead]
        kept = [".checkpoint.safetensors.tmp%d.0" % sleeper.pid,
                ".checkpoint.safetensors.tmp%d.1" % os.getpid(),
                ".notes.tmpx%d.0" % dead, "checkpoint.safetensors.tmp%d.0" % dead,
                ".weights.safetensors.tmp%d" % dead]
        for i, n in enumerate(gone + kept):
            with open(os.path.join(out, n), "wb") as f:
                f.write(b"\x00" * (i * 1000))  # empty or partial, as a kill leaves it
        p = w.train(out, "--resume", "--epochs", "2")
        c.check(p.returncode == 0, "the resumed run succeeds: %s" % p.stderr.strip())
        left = set(os.listdir(out))
        for n in gone:
            c.check(n not in left, "the stale file %s (process %d has exited) is removed" % (n, dead))
            c.check(n in p.stdout, "the run says it removed %s (stdout: %r)" % (n, p.stdout[:300]))
        for n in kept:
            c.check(n in left, "%s is kept (a live process's, or not a temporary name)" % n)
    finally:
        sleeper.kill()
        sleeper.wait()


def run_stale_temps(w, c):
    out = os.path.join(w.root, "runout")
    os.makedirs(out)
    dead = dead_pid()
    gone = [".y.npy.tmp%d.0" % dead, ".other.npy.tmp%d.2" % dead]
    kept = [".y.npy.tmp%d.1" % os.getpid(), ".y.npy.part%d.0" % dead]
    for n in gone + kept:
        with open(os.path.join(out, n), "wb") as f:
            f.write(b"\x93NUMPY")  # a partial file, as a kill leaves it
    x = os.path.join(w.root, "train_x.npy")
    p = subprocess.run([R.snnc_path(), "run", w.model, "--init", "1", "--input", x, "--output",
                        os.path.join(out, "y.npy"), "--threads", "1", "--cc", w.cc],
                       capture_output=True, text=True, cwd=w.root)
    c.check(p.returncode == 0, "snnc run writes its output: %s" % p.stderr.strip())
    left = set(os.listdir(out))
    c.check("y.npy" in left, "y.npy is written")
    for n in gone:
        c.check(n not in left, "run removes the stale file %s (process %d has exited)" % (n, dead))
        c.check(n in p.stderr, "and says so on standard error (%r)" % p.stderr[:300])
    for n in kept:
        c.check(n in left, "run keeps %s (a live process's, or not a temporary name)" % n)
    c.check(not [n for n in left if ".tmp%d." % os.getpid() not in n and n.startswith(".y.npy.tmp")
                 and n not in gone + kept], "run leaves no temporary file of its own")

    # snnc compile, in its output folder
    out = os.path.join(w.root, "compileout")
    os.makedirs(out)
    gone = [".blobs.c.tmp%d.0" % dead, ".blobs.h.tmp%d.1" % dead]
    kept = [".blobs.c.tmp%d.1" % os.getpid(), "notes.txt"]
    for n in gone + kept:
        with open(os.path.join(out, n), "wb") as f:
            f.write(b"/* partial")
    p = subprocess.run([R.snnc_path(), "compile", w.model, "-o", out], capture_output=True, text=True, cwd=w.root)
    c.check(p.returncode == 0, "snnc compile writes its files: %s" % p.stderr.strip())
    left = set(os.listdir(out))
    c.check({"blobs.c", "blobs.h"} <= left, "compile writes blobs.c and blobs.h: %s" % sorted(left))
    for n in gone:
        c.check(n not in left, "compile removes the stale file %s (process %d has exited)" % (n, dead))
        c.check(n in p.stderr, "and says so on standard error (%r)" % p.stderr[:300])
    for n in kept:
        c.check(n in left, "compile keeps %s (a live process's, or not a temporary name)" % n)

    # snnc export, in the folder of its output file
    out = os.path.join(w.root, "exportout")
    os.makedirs(out)
    gone = [".net.onnx.tmp%d.0" % dead]
    kept = [".net.onnx.tmp%d.1" % os.getpid(), "net.onnx.tmp%d.0" % dead]
    for n in gone + kept:
        with open(os.path.join(out, n), "wb") as f:
            f.write(b"\x08\x07")
    p = subprocess.run([R.snnc_path(), "export", w.model, "--init", "1", "-o", os.path.join(out, "net.onnx")],
                       capture_output=True, text=True, cwd=w.root)
    c.check(p.returncode == 0, "snnc export writes its file: %s" % p.stderr.strip())
    left = set(os.listdir(out))
    c.check("net.onnx" in left, "export writes net.onnx: %s" % sorted(left))
    for n in gone:
        c.check(n not in left, "export removes the stale file %s (process %d has exited)" % (n, dead))
        c.check(n in p.stderr, "and says so on standard error (%r)" % p.stderr[:300])
    for n in kept:
        c.check(n in left, "export keeps %s (a live process's, or not a temporary name)" % n)


def file_order(w, c):
    # metrics.csv cannot be written: the checkpoint of the epoch is there
    out = os.path.join(w.root, "order1")
    os.makedirs(os.path.join(out, "metrics.csv"))
    p = w.train(out)
    c.check(p.returncode == 1, "a run whose metrics.csv is a folder fails (exit %d)" % p.returncode)
    c.check("metrics.csv" in p.stderr, "the message names metrics.csv: %r" % p.stderr.strip())
    ck = os.path.join(out, "checkpoint.safetensors")
    c.check(os.path.isfile(ck), "the epoch's checkpoint was written before metrics.csv")
    if os.path.isfile(ck):
        meta = R.read_safetensors(ck)[1]
        c.check(meta.get("epochs_done") == "1", "the checkpoint holds epoch 1 (%r)" % meta.get("epochs_done"))
    # the checkpoint cannot be written: no metrics.csv or curves.svg either
    out = os.path.join(w.root, "order2")
    os.makedirs(os.path.join(out, "checkpoint.safetensors"))
    p = w.train(out)
    c.check(p.returncode == 1, "a run whose checkpoint is a folder fails (exit %d)" % p.returncode)
    c.check("checkpoint.safetensors" in p.stderr, "the message names the checkpoint: %r" % p.stderr.strip())
    for n in ("metrics.csv", "curves.svg", "weights.safetensors"):
        c.check(not os.path.exists(os.path.join(out, n)), "%s is not written without the checkpoint" % n)
    c.check(sorted(os.listdir(out)) == ["checkpoint.safetensors"],
            "nothing else is left in the folder (%s)" % sorted(os.listdir(out)))


def resume_first(w, c):
    out = os.path.join(w.root, "noresume")
    os.makedirs(out)
    keep = os.path.join(w.root, "keep-noresume")
    p = w.train(out, "--resume", "--keep-build", keep, cc=w.marking_cc)
    c.check(p.returncode == 1, "--resume without a checkpoint fails (exit %d)" % p.returncode)
    c.check("no checkpoint to resume from" in p.stderr and "checkpoint.safetensors" in p.stderr,
            "the message says there is no checkpoint to resume from: %r" % p.stderr.strip())
    c.check(not os.path.exists(w.mark), "the C compiler was not called")
    c.check(not os.path.exists(keep), "the --keep-build folder was not made (nothing was built)")
    c.check(os.listdir(out) == [], "the folder stays empty (%s)" % os.listdir(out))


def unwritable(w, c):
    def refused(out, must_say, what):
        keep = os.path.join(w.root, "keep-unwritable")
        p = w.train(out, "--keep-build", keep, cc=w.marking_cc)
        c.check(p.returncode == 1, "%s: exit 1 (got %d)" % (what, p.returncode))
        c.check(out in p.stderr and must_say in p.stderr,
                "%s: the message names the folder and says %r: %r" % (what, must_say, p.stderr.strip()))
        c.check(not os.path.exists(w.mark) and not os.path.exists(keep),
                "%s: refused before anything is compiled" % what)
        print("%s: %s" % (what, p.stderr.strip().splitlines()[0] if p.stderr.strip() else "(no message)"))

    plain = os.path.join(w.root, "a-file")
    with open(plain, "w") as f:
        f.write("not a folder\n")
    refused(plain, "not a folder", "-o a regular file")
    refused(os.path.join(plain, "sub"), "not a folder", "-o a folder under a regular file")
    probe = "/sys/.snnc-test-probe"
    try:
        open(probe, "w").close()
        os.unlink(probe)
        print("skipped /sys: files can be created there on this machine")
    except OSError:
        refused("/sys/snnc-train-test", "cannot create this output folder", "-o a new folder in /sys")
        refused("/sys", "cannot write into this output folder", "-o /sys")
    if os.geteuid() == 0:
        print("skipped: running as root, permissions are not enforced (the folder without write permission)")
        return
    ro = os.path.join(w.root, "read-only")
    os.makedirs(ro)
    os.chmod(ro, 0o555)
    try:
        refused(ro, "Permission denied", "-o a folder without write permission")
        refused(os.path.join(ro, "new"), "Permission denied", "-o a new folder in a folder without write permission")
    finally:
        os.chmod(ro, 0o755)


def divergence(w, c):
    # from the start: nothing is written
    out = os.path.join(w.root, "div1")
    p = w.train(out, "--lr", "1e6", "--epochs", "2")
    c.check(p.returncode == 1, "--lr 1e6 diverges with exit 1 (got %d)" % p.returncode)
    c.check("training diverged at epoch 1, batch " in p.stderr and "lower the learning rate" in p.stderr,
            "the message names the epoch and the batch: %r" % p.stderr.strip())
    left = os.listdir(out) if os.path.isdir(out) else []
    c.check(left == [], "a run that diverges in its first epoch writes nothing (%s)" % left)
    print("diverged: %s" % p.stderr.strip())
    # after a good epoch: the good epoch's files stay, byte for byte
    out = os.path.join(w.root, "div2")
    p = w.train(out)
    c.check(p.returncode == 0, "one good epoch: %s" % p.stderr.strip())
    before = snapshot(out)
    c.check(sorted(before) == ["checkpoint.safetensors", "curves.svg", "metrics.csv", "weights.safetensors"],
            "the good epoch wrote its files (%s)" % sorted(before))
    p = w.train(out, "--resume", "--epochs", "3", "--lr", "1e6")
    c.check(p.returncode == 1, "resumed with --lr 1e6: exit 1 (got %d)" % p.returncode)
    c.check("training diverged at epoch 2, batch " in p.stderr,
            "the message names epoch 2 and the batch: %r" % p.stderr.strip())
    c.check("keeps the state after epoch 1" in p.stderr,
            "the message says the checkpoint keeps epoch 1: %r" % p.stderr.strip())
    after = snapshot(out)
    c.check(sorted(after) == sorted(before), "no file is added or removed (%s)" % sorted(after))
    for n in before:
        c.check(after.get(n) == before[n], "%s is byte for byte the good epoch's" % n)
    meta = R.read_safetensors(os.path.join(out, "checkpoint.safetensors"))[1]
    c.check(meta.get("epochs_done") == "1", "the checkpoint is epoch 1's (%r)" % meta.get("epochs_done"))
    # the learning rate's bound
    p = w.train(os.path.join(w.root, "lr"), "--lr", "1.5e6")
    c.check(p.returncode == 2 and "above 0 and at most 1e6" in p.stderr and "1.5e6" in p.stderr,
            "--lr 1.5e6 is refused with the rule (exit %d): %r" % (p.returncode, p.stderr.strip()))


def fashion_divergence(c):
    if not os.path.exists(os.path.join(FASHION, "t10k-images-idx3-ubyte.gz")):
        print("skipped the Fashion-MNIST case: dataset-fashion-mnist is not installed")
        return
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "fashion_mlp.snn")
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "fm")
        p = subprocess.run([R.snnc_path(), "train", src, "-o", out, "--lr", "999999", "--epochs", "2",
                            "--train-limit", "1024", "--test-limit", "256", "--threads", "1",
                            "--cc", R.quick_cc(d)], capture_output=True, text=True)
        c.check(p.returncode == 1, "the Fashion-MNIST MLP with --lr 999999 fails (exit %d)" % p.returncode)
        c.check("training diverged at epoch 1, batch " in p.stderr,
                "and says it diverged: %r" % p.stderr.strip())
        c.check(not os.path.exists(os.path.join(out, "weights.safetensors")), "and writes no weights")


def limits(w, c):
    cut = os.path.join(w.root, "cut")
    os.makedirs(cut)
    for name, rows in (("train", 64), ("test", 16)):
        for part in ("x", "y"):
            a = np.load(os.path.join(w.root, "%s_%s.npy" % (name, part)))
            np.save(os.path.join(cut, "%s_%s.npy" % (name, part)), a[:rows])
    cut_model = os.path.join(cut, "blobs.snn")
    with open(cut_model, "w") as f:
        f.write(MODEL % {"d": cut})
    limited, whole = os.path.join(w.root, "limited"), os.path.join(w.root, "cut-run")
    p = w.train(limited, "--train-limit", "64", "--test-limit", "16")
    q = subprocess.run([R.snnc_path(), "train", cut_model, "-o", whole, "--threads", "1", "--cc", w.cc],
                       capture_output=True, text=True)
    c.check(p.returncode == 0 and q.returncode == 0, "both runs train: %r %r" % (p.stderr[-300:], q.stderr[-300:]))
    if p.returncode == 0 and q.returncode == 0:
        same = read(os.path.join(limited, "weights.safetensors")) == read(os.path.join(whole, "weights.safetensors"))
        c.check(same, "--train-limit 64 --test-limit 16 trains the weights of files of those rows")
        def metrics(out):  # without the timing columns
            with open(os.path.join(out, "metrics.csv")) as f:
                return [line.split(",")[:-2] for line in f]
        c.check(metrics(limited) == metrics(whole), "and the same losses and accuracies: %r %r"
                % (metrics(limited), metrics(whole)))
    # a NaN past the rows asked for is not read (without the limit, refused)
    x = np.load(os.path.join(cut, "train_x.npy"))
    nan = os.path.join(w.root, "nan")
    os.makedirs(nan)
    whole_x = np.concatenate([x, np.full((8, x.shape[1]), np.nan, np.float32)])
    np.save(os.path.join(nan, "train_x.npy"), whole_x)
    np.save(os.path.join(nan, "train_y.npy"), np.zeros(len(whole_x), np.int64))
    for n in ("test_x", "test_y"):
        os.link(os.path.join(w.root, n + ".npy"), os.path.join(nan, n + ".npy"))
    nan_model = os.path.join(nan, "blobs.snn")
    with open(nan_model, "w") as f:
        f.write(MODEL % {"d": nan})
    got = []
    for extra in (["--train-limit", "64"], []):
        p = subprocess.run([R.snnc_path(), "train", nan_model, "-o", os.path.join(nan, "out"), "--threads", "1",
                            "--cc", w.cc] + extra, capture_output=True, text=True)
        got.append((p.returncode, "NaN" in p.stderr or "not finite" in p.stderr))
    c.check(got == [(0, False), (1, True)], "a NaN past --train-limit's rows is not read: %r" % got)
    # labels shorter than the inputs, though both hold the 50 rows asked for
    y = np.load(os.path.join(w.root, "train_y.npy"))
    short = os.path.join(w.root, "short")
    os.makedirs(short)
    for n in ("train_x", "test_x", "test_y"):
        os.link(os.path.join(w.root, n + ".npy"), os.path.join(short, n + ".npy"))
    np.save(os.path.join(short, "train_y.npy"), y[:100])
    short_model = os.path.join(short, "blobs.snn")
    with open(short_model, "w") as f:
        f.write(MODEL % {"d": short})
    p = subprocess.run([R.snnc_path(), "train", short_model, "-o", os.path.join(short, "out"), "--threads", "1",
                        "--cc", w.cc, "--train-limit", "50"], capture_output=True, text=True)
    c.check(p.returncode == 1 and "for 128 and 100 samples" in p.stderr,
            "inputs of 128 samples and labels of 100 are refused under --train-limit 50: %r" % p.stderr.strip())


def wait_for(path, proc, seconds=120):
    """Whether path appears before proc ends or the time runs out."""
    end = time.monotonic() + seconds
    while time.monotonic() < end and proc.poll() is None:
        if os.path.exists(path):
            return True
        time.sleep(0.05)
    return os.path.exists(path)


def signals(w, c):
    tmp = os.path.join(w.root, "tmp")
    os.mkdir(tmp)
    env = dict(os.environ, TMPDIR=tmp, SNNC_CACHE_DIR="")
    started = os.path.join(w.root, "cc-started")
    slow_cc = os.path.join(w.root, "cc-slow")
    with open(slow_cc, "w") as f:
        f.write("#!/bin/sh\ntouch '%s'\nexec sleep 60\n" % started)
    os.chmod(slow_cc, 0o755)

    def start(out, cc, *args):
        cmd = [R.snnc_path(), "train", w.model, "-o", os.path.join(w.root, out), "--threads", "1", "--cc", cc]
        return subprocess.Popen(cmd + list(args), env=env, cwd=w.root, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)

    def ended_by(p, sig, what):
        try:
            err = p.communicate(timeout=60)[1]
        except subprocess.TimeoutExpired:
            p.kill()
            c.check(False, "%s: snnc did not end within 60 s" % what)
            return
        c.check(p.returncode == -sig, "%s: exit status %d, not the signal %d: %s" % (what, p.returncode, sig, err))
        left = os.listdir(tmp)
        c.check(not left, "%s: left in $TMPDIR: %s" % (what, left))

    for sig in (signal.SIGINT, signal.SIGTERM):
        what = "%s while the code compiles" % signal.Signals(sig).name
        if os.path.exists(started):
            os.unlink(started)
        p = start("sig-compile", slow_cc)
        if not wait_for(started, p):
            p.kill()
            c.check(False, "%s: the compiler was never called: %s" % (what, p.communicate()[1]))
            continue
        c.check(any(n.startswith("snnc-build-") for n in os.listdir(tmp)),
                "%s: a build folder in $TMPDIR while the compiler runs" % what)
        p.send_signal(sig)
        ended_by(p, sig, what)

    for sig in (signal.SIGINT, signal.SIGKILL):
        what = "%s during training" % signal.Signals(sig).name
        p = start("sig-train-%d" % sig, w.cc, "--epochs", "100000")
        if not wait_for(os.path.join(w.root, "sig-train-%d" % sig, "checkpoint.safetensors"), p):
            p.kill()
            c.check(False, "%s: no epoch finished: %s" % (what, p.communicate()[1]))
            continue
        p.send_signal(sig)
        ended_by(p, sig, what)
    print("signals: SIGINT and SIGTERM while compiling, SIGINT and SIGKILL while training, checked")


def main():
    R.snnc_path()
    c = R.Checker()
    rng = np.random.default_rng(5)
    centers = rng.standard_normal((3, 16)) * 2
    y = rng.integers(0, 3, 160)
    x = (centers[y] + rng.standard_normal((160, 16))).astype(np.float32)
    with tempfile.TemporaryDirectory() as root:
        np.save(os.path.join(root, "train_x.npy"), x[:128])
        np.save(os.path.join(root, "train_y.npy"), y[:128])
        np.save(os.path.join(root, "test_x.npy"), x[128:])
        np.save(os.path.join(root, "test_y.npy"), y[128:])
        w = Work(root)
        stale_temps(w, c)
        run_stale_temps(w, c)
        file_order(w, c)
        resume_first(w, c)
        unwritable(w, c)
        divergence(w, c)
        limits(w, c)
        signals(w, c)
    fashion_divergence(c)
    c.finish()


if __name__ == "__main__":
    main()
