#!/usr/bin/env python3
"""test_mpi.py: data-parallel `snnc train` under mpirun ends with the
weights of one process.

A small network (dense, LIF, dense, LI) is trained on a synthetic data set
(three Gaussian clusters in 16 dimensions, .npy files) for 8 epochs of 41
global batches of 10 samples: 328 optimizer steps of Adam with gradient
clipping. The last batch of each epoch holds 2 samples, and 10 is no
multiple of 4, so shards of unequal size, and at N = 4 ranks without a
sample, are on the path. Checked:

1. `mpirun -np N snnc train` for N = 1, 2 and 4 (oversubscribed: the
   machine may have fewer cores) against the run of one process without
   mpirun, the reference:
   - N = 1: the same bits (nothing is summed over ranks);
   - N = 2, 4: every weight tensor within a relative error of 1e-4 of the
     reference's (its largest difference over its largest magnitude). The
     gradients are the same sums added in another order (each rank sums
     its shard, then the ranks' sums are added), which changes their last
     bits, and 328 steps of Adam carry such differences on; measured, they
     stay below 1e-6 here (5e-7), while weighting each rank's gradient by
     1/N instead of by its shard's size (the shards are unequal) moves the
     weights by 0.1 to 0.6;
   - the metrics (train loss and accuracy, test loss and accuracy, spike
     rate) of every epoch within 1e-4 too, and metrics.csv and the
     progress lines written once, by one rank.
2. Determinism: N = 2 run twice gives the same bits (the sum over ranks is
   in rank order), and so does N = 2 with two threads in each rank.
3. --resume under another N: 3 epochs at N = 4, then resumed at N = 2 to
   the end, and 3 epochs at N = 2 resumed by one process, end within 1e-4
   of the uninterrupted reference.
4. A killed rank: rank 1 of a long run at N = 2 is killed (SIGKILL) once
   the first checkpoint is on disk. mpirun ends with a non-zero status and
   a message that names rank 1 and the signal; the checkpoint on disk is a
   complete one (it reads back, it lists no fewer epochs than metrics.csv,
   and one process resumes from it for one more epoch).
5. A failure that rank 0 alone sees (--resume without a checkpoint) ends
   every rank, with an error status and the message printed once.
6. Dropout: the same network with dropout(0.3) before each dense layer,
   trained as in 1: N = 1 the same bits as one process, N = 2 and 4 within
   1e-4, the metrics too. A rank draws the masks of its shard as the
   samples of the global batch they are, so the masks are one process's.
   Measured: within 3.5e-7 at N = 2 and 4; with each shard's masks drawn
   as if it began at sample 0 instead, the weights differ by 0.3 to 0.7.
7. The masks themselves, through the generated API (snnc compile --train,
   built here and called with ctypes): a network whose output at the first
   step is its dropout mask times its rate-encoded input (dropout(0.5),
   then LI with tau 2, which at the first step gives x / 2; the dropout
   scales kept values by 2). With intensities 1, every input spikes, so the
   output is the mask; with intensities 0.5, it shows the spikes too.
   - train_forward_at(shard of rows lo..lo+n-1, first = lo) gives exactly
     rows lo..lo+n-1 of train_forward on the whole batch of 10, for the
     shards of N = 2 and N = 4: the same dropped neurons and the same
     spikes, which is what one process's run needs of a rank;
   - the shard drawn with first = 0 (a rank that would not say where its
     shard starts) has other masks: the check above can fail;
   - the masks differ between the samples of a batch, and about half the
     neurons are dropped (between 35% and 65% of 240).
8. A rate-encoded input (the network of 1 with `encode rate`), N = 4
   against one process, within 1e-4: the spikes of a sample, too, are
   drawn from its place in the global batch, in training and in the
   evaluation after each epoch, whose pieces (3 samples at most at N = 4)
   keep within one process's batches of 10 (the test metrics check that:
   measured, weights within 2.2e-7; with pieces that ignore those batches
   and draw from their own sample 0, the test accuracy differs by up to 7
   points and the test loss by up to 7%).
9. The cuda target, its code built for the CPU (SNNC_CUDA_EMULATE=1): each
   rank runs its shard on its device, the gradients and buffers come back
   to the host to be summed (and clipped there), and go back for the
   optimizer's step on the device. The network of 8 with dropout(0.3)
   before each dense layer (rate-encoded spikes and masks drawn by a
   shard's place in the global batch) by one process and at N = 1, 2 and 4
   as in 1 (not against the portable target over 8 epochs: a spike that
   the two targets' round-off flips there moves the weights by 1e-2; the
   cuda tests compare them step by step), and 3 epochs at N = 2 resumed at
   N = 4 within 1e-4 of one process; the network of 1 with batchnorm
   after the first dense layer, at
   batches of 40, at N = 2 within 1e-4 of the portable target at N = 2
   (running statistics included), metrics too.

Under AddressSanitizer, the leaks that LeakSanitizer finds inside Open MPI
itself (memory its libraries keep until exit) are suppressed with
lsan-openmpi.supp, beside this file; snnc's own are still reported.
LeakSanitizer names a library only when it unwinds whole stacks
(fast_unwind_on_malloc=0: Open MPI is built without frame pointers) and
when Open MPI leaves its plugins loaded at exit
(OMPI_MCA_mca_base_component_disable_dlclose=1); the test sets both.

Skipped, saying why, when snnc is built without MPI or mpirun is missing.

Usage: test_mpi.py HAVE_MPI (ON or OFF: whether snnc was built with MPI;
SNNC in the environment)
"""
import csv
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "ref"))
import snnc_ref as R  # noqa: E402

np = R.require("numpy")

HERE = os.path.dirname(os.path.abspath(__file__))
TOL = 1e-4

MODEL = """
network Blobs {
  timesteps 4;
  input x : [16] encode %(enc)s;
  h = x |> %(drop_in)sdense(32) as fc1 |> LIF() as h;
  out = h |> %(drop_h)sdense(3) as fc2 |> LI(tau = 2.0) as out;
  output out readout mean;
}

train Blobs {
  data npy(train_x = "%(d)s/train_x.npy", train_y = "%(d)s/train_y.npy",
           test_x = "%(d)s/test_x.npy", test_y = "%(d)s/test_y.npy");
  optimizer adam(lr = 0.005);
  clip 1.0;
  epochs 8;
  batch 10;
  seed 3;
}
"""


MASKS = """
network Masks {
  timesteps 2;
  input x : [24] encode rate;
  out = x |> dropout(0.5) as drop |> LI(tau = 2.0) as out;
  output out readout mean;
}
"""


def make_data(root):
    rng = np.random.default_rng(5)
    centers = rng.standard_normal((3, 16)) * 2
    n = 402 + 100
    y = rng.integers(0, 3, n)
    x = (centers[y] + 1.5 * rng.standard_normal((n, 16))).astype(np.float32)
    np.save(os.path.join(root, "train_x.npy"), x[:402])
    np.save(os.path.join(root, "train_y.npy"), y[:402])
    np.save(os.path.join(root, "test_x.npy"), x[402:])
    np.save(os.path.join(root, "test_y.npy"), y[402:])


def mpi_env():
    env = dict(os.environ)
    if os.geteuid() == 0:  # Open MPI refuses root unless told
        env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
    # under AddressSanitizer: Open MPI's leaks suppressed by the names of
    # its libraries, which LeakSanitizer sees only with whole stacks and
    # with Open MPI's plugins still loaded at exit
    env["OMPI_MCA_mca_base_component_disable_dlclose"] = "1"
    lsan = "fast_unwind_on_malloc=0:suppressions=" + os.path.join(HERE, "lsan-openmpi.supp")
    env["LSAN_OPTIONS"] = lsan + (":" + env["LSAN_OPTIONS"] if env.get("LSAN_OPTIONS") else "")
    return env


def mpirun(n, args):
    return ["mpirun", "--oversubscribe", "-np", str(n)] + args


def train(model, out, n=None, extra=(), threads=1, env=None):
    """snnc train into out, by one process (n None) or by mpirun -np n, with
    the variables of env added; returns the CompletedProcess."""
    cmd = [R.snnc_path(), "train", model, "-o", out, "--threads", str(threads)] + list(extra)
    if n is not None:
        cmd = mpirun(n, cmd)
    return subprocess.run(cmd, capture_output=True, text=True, env=dict(mpi_env(), **(env or {})), timeout=600)


def metrics(out):
    with open(os.path.join(out, "metrics.csv")) as f:
        return list(csv.DictReader(f))


def weights(out, name="weights.safetensors"):
    """The tensors of a safetensors file of out."""
    return R.read_safetensors(os.path.join(out, name))[0]


def progress(out):
    """The checkpoint's epochs_done (-1 when it has none)."""
    return int(R.read_safetensors(os.path.join(out, "checkpoint.safetensors"))[1].get("epochs_done", "-1"))


def near(c, got, want, what):
    """Every tensor of got within TOL relative error of want's."""
    c.check(sorted(got) == sorted(want), "%s: the same tensors (%s / %s)" % (what, sorted(got), sorted(want)))
    worst = 0.0
    for k in want:
        if k in got:
            e = R.rel_err(got[k], want[k])
            worst = max(worst, e)
            c.check(e <= TOL, "%s: %s differs by %.3g relative to its largest value (allowed %g)" % (what, k, e, TOL))
    print("%s: largest relative difference of a weight tensor %.3g" % (what, worst))


def near_metrics(c, got, want, what):
    c.check(len(got) == len(want), "%s: %d rows of metrics, the reference has %d" % (what, len(got), len(want)))
    for g, w in zip(got, want):
        c.check(g["epoch"] == w["epoch"], "%s: epoch %s where the reference has %s" % (what, g["epoch"], w["epoch"]))
        for k in ("train_loss", "train_acc", "test_loss", "test_acc", "spike_rate"):
            a, b = float(g[k]), float(w[k])
            c.check(abs(a - b) <= TOL * max(1.0, abs(b)), "%s: epoch %s: %s %r, the reference %r" %
                    (what, w["epoch"], k, a, b))


def ok(c, p, what):
    c.check(p.returncode == 0, "%s: exit status %d:\n%s" % (what, p.returncode, p.stdout + p.stderr))
    return p.returncode == 0


def kill_a_rank(c, model, d):
    """Kills rank 1 of a long run at N = 2 after the first checkpoint."""
    out = os.path.join(d, "killed")
    os.makedirs(out)
    # each rank writes its process id (exec keeps it) and becomes snnc
    wrap = ["sh", "-c", 'echo $$ > "%s/pid.$OMPI_COMM_WORLD_RANK"; exec "$0" "$@"' % d]
    cmd = mpirun(2, wrap + [R.snnc_path(), "train", model, "-o", out, "--threads", "1", "--epochs", "100000"])
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=mpi_env())
    ckpt = os.path.join(out, "checkpoint.safetensors")
    t0 = time.time()
    while not os.path.exists(ckpt) and p.poll() is None and time.time() - t0 < 300:
        time.sleep(0.05)
    pidfile = os.path.join(d, "pid.1")
    if not os.path.exists(ckpt) or not os.path.exists(pidfile):
        p.kill()
        c.check(False, "killed rank: no checkpoint appeared:\n%s" % p.communicate()[0])
        return
    time.sleep(0.2)  # a few more epochs, so that the kill lands mid-run
    with open(pidfile) as f:
        os.kill(int(f.read()), signal.SIGKILL)
    try:
        log = p.communicate(timeout=120)[0]
    except subprocess.TimeoutExpired:
        p.kill()
        log = p.communicate()[0]
        c.check(False, "killed rank: mpirun did not end within 120 s of the kill")
    print("killed rank 1; mpirun said:\n" + "\n".join(log.splitlines()[-6:]))
    c.check(p.returncode != 0, "killed rank: mpirun's exit status is %d, not an error" % p.returncode)
    c.check("rank 1" in log and "signal 9" in log, "killed rank: the message names rank 1 and the signal:\n" + log)
    # the checkpoint is complete: it reads, and it is not behind metrics.csv
    try:
        w, done = weights(out, "checkpoint.safetensors"), progress(out)
    except Exception as e:  # noqa: BLE001: any failure to read is the finding
        c.check(False, "killed rank: the checkpoint does not read back: %s" % e)
        return
    rows = len(metrics(out))
    c.check(done >= 1 and rows <= done, "killed rank: the checkpoint holds %d epochs, metrics.csv %d" % (done, rows))
    c.check(all(np.isfinite(v).all() for v in w.values()), "killed rank: the checkpoint's tensors are finite")
    p2 = train(model, out, None, ["--resume", "--epochs", str(done + 1)])
    if ok(c, p2, "resuming after the killed rank"):
        c.check("resumed from" in p2.stdout and "after epoch %d" % done in p2.stdout,
                "resuming after the killed rank: from epoch %d:\n%s" % (done, p2.stdout))
        c.check(len(metrics(out)) == done + 1, "resuming after the killed rank: one more row of metrics")


def against_one_process(c, model, d, name, ns=(1, 2, 4), extra=(), env=None):
    """Trains model by one process and by mpirun -np n for n in ns, both
    with the options extra and the variables env: n = 1 the same bits, the
    others within TOL. Returns the folders by n (None: one process), or
    None when one process failed."""
    ref = os.path.join(d, name + "-ref")
    if not ok(c, train(model, ref, None, extra, env=env), "%s: one process" % name):
        return None
    w_ref, m_ref = weights(ref), metrics(ref)
    c.check(len(m_ref) == 8, "%s: one process: 8 epochs of metrics" % name)
    outs = {None: ref}
    for n in ns:
        out = os.path.join(d, "%s-np%d" % (name, n))
        p = train(model, out, n, extra, env=env)
        what = "%s: mpirun -np %d" % (name, n)
        if not ok(c, p, what):
            continue
        outs[n] = out
        w = weights(out)
        if n == 1:
            for k in w_ref:
                c.same(w.get(k), w_ref[k], "%s: %s is the same bits as one process's" % (what, k))
        near(c, w, w_ref, what)
        near_metrics(c, metrics(out), m_ref, what)
        c.check(p.stdout.count("training Blobs:") == 1 and p.stdout.count("epoch 8/8:") == 1,
                "%s: the progress is printed once:\n%s" % (what, p.stdout))
        if n > 1:
            c.check("data-parallel on %d processes" % n in p.stdout, "%s: says so" % what)
        left = [f for f in os.listdir(out) if ".tmp" in f]
        c.check(not left, "%s: no temporary file is left: %s" % (what, left))
    return outs


def check_masks(c, d):
    """7: the masks and spikes of a shard are those of its rows of the
    whole batch (see the top of this file)."""
    import ctypes
    cc = os.environ.get("CC") or "cc"
    if not shutil.which(cc):
        print("masks: skipped: no C compiler (%s)" % cc)
        return
    src = os.path.join(d, "masks.snn")
    with open(src, "w") as f:
        f.write(MASKS)
    gen = os.path.join(d, "masks")
    p = subprocess.run([R.snnc_path(), "compile", src, "--train", "--batch", "10", "-o", gen],
                       capture_output=True, text=True)
    if not ok(c, p, "masks: snnc compile --train"):
        return
    lib = os.path.join(gen, "libmasks.so")
    p = subprocess.run([cc, "-std=c99", "-O1", "-shared", "-fPIC", "-o", lib, os.path.join(gen, "masks.c"), "-lm"],
                       capture_output=True, text=True)
    if not ok(c, p, "masks: building the generated code"):
        return
    so = ctypes.CDLL(lib)
    fp = ctypes.POINTER(ctypes.c_float)
    so.masks_train_forward.argtypes = [ctypes.c_void_p, ctypes.c_int, fp, fp, ctypes.c_int, ctypes.c_ulonglong]
    so.masks_train_forward_at.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, fp, fp, ctypes.c_int,
                                          ctypes.c_ulonglong]
    nws = ctypes.c_long.in_dll(so, "masks_train_workspace_floats").value
    ws = np.zeros(nws, dtype=np.float32)
    B, T, n, seed = 10, 2, 24, 0x5EED1234ABCDEF

    def ptr(a):
        return a.ctypes.data_as(fp)

    def run(x, first=None):
        x = np.ascontiguousarray(x, dtype=np.float32)
        y = np.zeros((T, len(x), n), dtype=np.float32)
        if first is None:
            so.masks_train_forward(ws.ctypes.data, len(x), ptr(x), ptr(y), 1, seed)
        else:
            so.masks_train_forward_at(ws.ctypes.data, len(x), first, ptr(x), ptr(y), 1, seed)
        return y[0]  # the first step: mask * spikes

    for level in (1.0, 0.5):
        x = np.full((B, n), level, dtype=np.float32)
        whole = run(x)
        what = "masks (intensity %g)" % level
        if level == 1.0:
            c.check(set(np.unique(whole)) <= {0.0, 1.0}, "%s: the output at step 0 is a mask of 0 and 1" % what)
            dropped = int((whole == 0).sum())
            c.check(0.35 * B * n <= dropped <= 0.65 * B * n, "%s: %d of %d dropped" % (what, dropped, B * n))
            c.check(len({tuple(r) for r in whole}) == B, "%s: every sample has a mask of its own" % what)
        for nr in (2, 4):
            for r in range(nr):
                lo, hi = B * r // nr, B * (r + 1) // nr
                c.same(run(x[lo:hi], lo), whole[lo:hi],
                       "%s: the shard %d..%d of N = %d drawn from %d is rows %d..%d of the batch" %
                       (what, lo, hi - 1, nr, lo, lo, hi - 1))
                if lo > 0:
                    c.check(not np.array_equal(run(x[lo:hi], 0), whole[lo:hi]),
                            "%s: the shard %d..%d drawn from 0 differs from the batch's rows" % (what, lo, hi - 1))
    print("masks: the shards of N = 2 and 4 draw their rows of the whole batch")


def cuda_ranks(c, d):
    """9: --target cuda under mpirun (see the top of this file)."""
    emu = {"SNNC_CUDA_EMULATE": "1"}
    cuda = ("--target", "cuda")
    model = os.path.join(d, "blobs-cuda.snn")
    with open(model, "w") as f:
        f.write(MODEL % {"d": d, "enc": "rate", "drop_in": "dropout(0.3) |> ", "drop_h": "dropout(0.3) |> "})
    outs = against_one_process(c, model, d, "cuda", ns=(1, 2, 4), extra=cuda, env=emu)
    if outs is not None:
        # --resume: the checkpoint's state sent to every rank's device
        out, what = os.path.join(d, "cuda-resume"), "cuda: 3 epochs at N = 2 resumed at N = 4"
        if ok(c, train(model, out, 2, cuda + ("--epochs", "3"), env=emu), what + " (first part)"):
            p = train(model, out, 4, cuda + ("--resume",), env=emu)
            if ok(c, p, what):
                c.check("after epoch 3" in p.stdout, what + ": resumed after epoch 3:\n" + p.stdout)
                near(c, weights(out), weights(outs[None]), what)
                near_metrics(c, metrics(out), metrics(outs[None]), what)
    # batchnorm's running statistics: summed over the ranks on the host and
    # sent back; batches of 40, so that a shard's statistics are not those
    # of a handful of samples, whose round-off the normalization magnifies
    bmodel = os.path.join(d, "blobs-bn.snn")
    with open(bmodel, "w") as f:
        text = MODEL % {"d": d, "enc": "direct", "drop_in": "", "drop_h": ""}
        f.write(text.replace("dense(32) as fc1 |>", "dense(32, bias = false) as fc1 |> batchnorm() as bn |>")
                .replace("batch 10;", "batch 40;"))
    bc, bg = os.path.join(d, "bn-c-np2"), os.path.join(d, "bn-cuda-np2")
    if ok(c, train(bmodel, bc, 2), "batchnorm: the portable target at N = 2") and \
            ok(c, train(bmodel, bg, 2, cuda, env=emu), "batchnorm: the cuda target at N = 2"):
        w = weights(bg)
        c.check("bn.running_mean" in w, "batchnorm: the weights hold bn.running_mean: %s" % sorted(w))
        near(c, w, weights(bc), "batchnorm: the cuda target at N = 2 against the portable target's")
        near_metrics(c, metrics(bg), metrics(bc), "batchnorm: the cuda target at N = 2")


def main():
    have = len(sys.argv) > 1 and sys.argv[1].upper() in ("ON", "1", "TRUE", "YES")
    if not have:
        R.skip("snnc is built without MPI (cmake -DSNNC_MPI=ON with Open MPI installed enables it)")
    if not shutil.which("mpirun"):
        R.skip("mpirun is not installed (Debian: openmpi-bin)")
    c = R.Checker()
    with tempfile.TemporaryDirectory() as d:
        make_data(d)
        model = os.path.join(d, "blobs.snn")
        with open(model, "w") as f:
            f.write(MODEL % {"d": d, "enc": "direct", "drop_in": "", "drop_h": ""})

        # 1. N = 1, 2, 4 against one process
        outs = against_one_process(c, model, d, "blobs")
        if outs is None:
            c.finish()
        w_ref, m_ref = weights(outs[None]), metrics(outs[None])

        # 2. the same bits again, and with two threads in each rank
        w2 = weights(outs.get(2, outs[None]))
        for name, threads in (("again", 1), ("threads", 2)):
            out = os.path.join(d, "np2-" + name)
            if ok(c, train(model, out, 2, threads=threads), "mpirun -np 2, %d threads" % threads):
                w = weights(out)
                for k in w2:
                    c.same(w.get(k), w2[k], "mpirun -np 2 (%s, %d threads): %s is the same bits" % (name, threads, k))

        # 3. --resume under another N
        for first, then in ((4, 2), (2, None)):
            out = os.path.join(d, "resume-%d" % first)
            what = "3 epochs at N = %d resumed at %s" % (first, "N = %d" % then if then else "one process")
            if ok(c, train(model, out, first, ["--epochs", "3"]), what + " (first part)"):
                c.check(progress(out) == 3, what + ": the checkpoint holds 3 epochs")
                p = train(model, out, then, ["--resume"])
                if ok(c, p, what):
                    c.check("after epoch 3" in p.stdout, what + ": resumed after epoch 3:\n" + p.stdout)
                    near(c, weights(out), w_ref, what)
                    near_metrics(c, metrics(out), m_ref, what)

        # 4. a killed rank
        kill_a_rank(c, model, d)

        # 5. rank 0's failure stops every rank
        p = train(model, os.path.join(d, "none"), 2, ["--resume"])
        log = p.stdout + p.stderr
        c.check(p.returncode != 0, "--resume without a checkpoint at N = 2: exit status %d" % p.returncode)
        c.check(log.count("no checkpoint to resume from") == 1,
                "--resume without a checkpoint at N = 2: the message once:\n" + log)

        # 6. dropout
        dmodel = os.path.join(d, "blobs-dropout.snn")
        with open(dmodel, "w") as f:
            f.write(MODEL % {"d": d, "enc": "direct", "drop_in": "dropout(0.3) |> ", "drop_h": "dropout(0.3) |> "})
        against_one_process(c, dmodel, d, "dropout")

        # 7. the masks of a shard
        check_masks(c, d)

        # 8. rate-encoded input
        rmodel = os.path.join(d, "blobs-rate.snn")
        with open(rmodel, "w") as f:
            f.write(MODEL % {"d": d, "enc": "rate", "drop_in": "", "drop_h": ""})
        against_one_process(c, rmodel, d, "rate", ns=(4,))

        # 9. the cuda target, its code built for the CPU
        cuda_ranks(c, d)
    c.finish()


if __name__ == "__main__":
    main()
