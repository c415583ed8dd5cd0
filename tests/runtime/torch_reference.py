#!/usr/bin/env python3
"""torch_reference.py HELPER WORKDIR: PyTorch as the reference for the
runtime's training support, driven through tests/runtime/train_helper.c.

Losses: every loss kind (cross-entropy, TET with and without its MSE term,
snnTorch's mse_count_loss) through every readout, on real-valued outputs
and on spikes (which make ties for the max readout and the predictions):
the loss and dL/dy must match PyTorch autograd, computed in float64 on the
same float32 values, to 1e-5 relative, and the count of correct
predictions must match torch.argmax. mse_count_loss is also compared with
snnTorch's own class when snntorch can be imported.

Optimizers: 50 steps of torch.optim.SGD (momentum, nesterov, weight
decay), Adam (with and without weight decay, other betas and eps) and AdamW
on random float32 parameters and gradients, two parameter tensors updated
as two ranges of one optimizer, one run with a learning rate that changes
every step: the parameters must match to 1e-6 relative. clip_grad_norm_
(clipping and not): the norm and the gradients. CosineAnnealingLR and
StepLR, stepped epoch by epoch, against the closed forms.

IDX: files NumPy writes (plain and gzip) read back; and Debian's
Fashion-MNIST when it is installed: shapes (60000x28x28, 60000, 10000x28x28,
10000), 6000 (1000) labels of each class, and the CRC-32 of the data
against Python's own gzip. Without it, that part says it is skipped.

Exits 77 (skipped) when NumPy or torch cannot be imported (the IDX checks
still run when only torch is missing, and failures still fail).
"""
import gzip
import os
import struct
import subprocess
import sys
import zlib

try:
    import numpy as np
except ImportError as exc:
    print(f"skipped: numpy cannot be imported by {sys.executable}: {exc}")
    sys.exit(77)
try:
    import torch
    import torch.nn.functional as F
except ImportError as exc:
    torch = None
    TORCH_MISSING = f"torch cannot be imported by {sys.executable}: {exc}"

HELPER, WORK = sys.argv[1], sys.argv[2]
FAILURES = []
CASES = [0]

READOUTS = ["steps", "count", "rate", "mean", "last", "max"]
KINDS = ["ce", "tet", "mse_count"]


def check(cond, what):
    CASES[0] += 1
    if not cond:
        FAILURES.append(what)
        print("FAIL", what)


def helper(*args):
    p = subprocess.run([HELPER, *map(str, args)], capture_output=True,
                       text=True)
    return p.returncode, p.stdout, p.stderr


def path(name):
    return os.path.join(WORK, name)


def worst_rel(got, want, floor):
    """The largest |got - want| / max(|want|, floor)."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        return float("inf")
    if got.size == 0:
        return 0.0
    return float(np.max(np.abs(got - want) / np.maximum(np.abs(want), floor)))


# ---- losses ----

def readout(y, ro):
    if ro in ("steps", "rate", "mean"):
        return y.mean(0)
    if ro == "count":
        return y.sum(0)
    if ro == "last":
        return y[-1]
    return y.max(0).values  # the gradient goes to the index max returns


def torch_loss(kind, ro, y32, labels, lam, phi, cr, ir):
    """Loss, dL/dy and correct predictions, in float64."""
    y = torch.tensor(y32, dtype=torch.float64, requires_grad=True)
    lab = torch.tensor(labels, dtype=torch.int64)
    T = y.shape[0]
    if kind == "ce":
        loss = F.cross_entropy(readout(y, ro), lab)
    elif kind == "tet":
        loss = sum(F.cross_entropy(y[t], lab) for t in range(T)) / T
        if lam != 0:
            mse = F.mse_loss(y, torch.full_like(y, phi))
            loss = (1 - lam) * loss + lam * mse
    else:  # snnTorch's mse_count_loss, written out
        on, off = int(T * cr), int(T * ir)
        target = torch.full((y.shape[1], y.shape[2]), float(off),
                            dtype=torch.float64)
        target[torch.arange(y.shape[1]), lab] = float(on)
        loss = F.mse_loss(y.sum(0), target) / T
    loss.backward()
    with torch.no_grad():
        z = y.sum(0) if kind == "mse_count" else readout(y, ro)
        correct = int((torch.argmax(z, dim=1) == lab).sum())
    return float(loss), y.grad.numpy(), correct


def snntorch_count_loss(y32, labels, cr, ir):
    """snnTorch's class itself (float32), or None when it is missing."""
    try:
        import snntorch.functional as SF
    except Exception:  # not installed, or broken: the formula suffices
        return None
    y = torch.tensor(y32, requires_grad=True)
    fn = SF.mse_count_loss(correct_rate=cr, incorrect_rate=ir)
    loss = fn(y, torch.tensor(labels, dtype=torch.int64))
    loss.backward()
    return float(loss), y.grad.numpy()


def check_losses(rng):
    T, B, K = 6, 5, 10
    inputs = {
        "real": (rng.standard_normal((T, B, K)) * 3).astype(np.float32),
        "spikes": (rng.random((T, B, K)) < 0.3).astype(np.float32),
        "large": (rng.standard_normal((T, B, K)) * 200).astype(np.float32),
    }
    labels = rng.integers(0, K, B)
    np.save(path("labels.npy"), labels.astype(np.float32))
    settings = {"ce": [(0.0, 0.0, 1.0, 0.0)],
                "tet": [(0.0, 0.0, 1.0, 0.0), (0.3, 0.8, 1.0, 0.0)],
                "mse_count": [(0.0, 0.0, 1.0, 0.0), (0.0, 0.0, 0.8, 0.2)]}
    snn_checked = 0
    for name, y in inputs.items():
        np.save(path("y.npy"), y)
        for k, kind in enumerate(KINDS):
            for lam, phi, cr, ir in settings[kind]:
                for r, ro in enumerate(READOUTS):
                    what = (f"loss {kind} readout {ro} on {name} "
                            f"(lambda {lam}, phi {phi}, rates {cr}/{ir})")
                    rc, out, err = helper("loss", k, r, repr(lam), repr(phi),
                                          repr(cr), repr(ir), path("y.npy"),
                                          path("labels.npy"), path("dy.npy"))
                    check(rc == 0, f"{what}: helper failed: {err}")
                    if rc:
                        continue
                    words = out.split()
                    loss, correct = float(words[1]), int(words[3])
                    want, dy, ncorrect = torch_loss(kind, ro, y, labels, lam,
                                                    phi, cr, ir)
                    got_dy = np.load(path("dy.npy"))
                    floor = 1e-7 * max(float(np.max(np.abs(dy))), 1e-30)
                    check(worst_rel(loss, want, 1e-30) <= 1e-5,
                          f"{what}: loss {loss!r}, torch {want!r}")
                    e = worst_rel(got_dy, dy, floor)
                    check(e <= 1e-5, f"{what}: dL/dy off by {e:.3g} relative")
                    check(correct == ncorrect,
                          f"{what}: {correct} correct, torch says {ncorrect}")
                    if kind == "mse_count" and r == 0:
                        ref = snntorch_count_loss(y, labels, cr, ir)
                        if ref is not None:
                            snn_checked += 1
                            check(worst_rel(loss, ref[0], 1e-30) <= 1e-5,
                                  f"{what}: loss {loss!r}, snntorch {ref[0]!r}")
                            e = worst_rel(got_dy, ref[1], 1e-7 * max(
                                float(np.max(np.abs(ref[1]))), 1e-30))
                            check(e <= 1e-5, f"{what}: dL/dy off snntorch's "
                                  f"by {e:.3g}")
    print(f"losses: {len(inputs)} inputs x {len(KINDS)} kinds x "
          f"{len(READOUTS)} readouts; snnTorch's mse_count_loss "
          + ("compared too" if snn_checked else
             "not importable, compared with its formula only"))


# ---- optimizers ----

OPTIMIZERS = [
    # name, kind, torch class, lr, momentum, wd, betas, eps, nesterov
    ("sgd", 0, "SGD", 0.1, 0.0, 0.0, (0.9, 0.999), 1e-8, False),
    ("sgd momentum", 0, "SGD", 0.05, 0.9, 0.0, (0.9, 0.999), 1e-8, False),
    ("sgd momentum wd", 0, "SGD", 0.1, 0.9, 5e-4, (0.9, 0.999), 1e-8, False),
    ("sgd nesterov wd", 0, "SGD", 0.1, 0.9, 1e-3, (0.9, 0.999), 1e-8, True),
    ("adam", 1, "Adam", 1e-3, 0.0, 0.0, (0.9, 0.999), 1e-8, False),
    ("adam wd", 1, "Adam", 5e-3, 0.0, 1e-2, (0.9, 0.999), 1e-8, False),
    ("adam betas eps", 1, "Adam", 2e-3, 0.0, 0.0, (0.8, 0.99), 1e-6, False),
    ("adamw", 2, "AdamW", 1e-3, 0.0, 1e-2, (0.9, 0.999), 1e-8, False),
    ("adamw strong", 2, "AdamW", 1e-2, 0.0, 0.1, (0.85, 0.995), 1e-7, False),
]


def torch_optimizer(cls, params, lr, mom, wd, betas, eps, nesterov):
    if cls == "SGD":
        return torch.optim.SGD(params, lr=lr, momentum=mom, weight_decay=wd,
                               nesterov=nesterov, foreach=False)
    return getattr(torch.optim, cls)(params, lr=lr, betas=betas, eps=eps,
                                     weight_decay=wd, foreach=False)


def check_optimizers(rng):
    n, split, steps = 1000, 337, 50
    p0 = rng.standard_normal(n).astype(np.float32)
    grads = rng.standard_normal((steps, n)).astype(np.float32)
    grads[:, :5] *= 1e-4    # small gradients, where eps matters
    grads[:, 5:10] *= 100   # large ones
    np.save(path("p0.npy"), p0)
    np.save(path("grads.npy"), grads)
    for schedule in (False, True):
        for name, kind, cls, lr, mom, wd, betas, eps, nest in OPTIMIZERS:
            if schedule and name not in ("sgd nesterov wd", "adam wd",
                                         "adamw"):
                continue
            lrs = np.full(steps, lr, dtype=np.float32)
            if schedule:  # a cosine over the steps, as float32 values
                lrs = (lr * (1 + np.cos(np.pi * np.arange(steps) / steps))
                       / 2).astype(np.float32)
            np.save(path("lrs.npy"), lrs)
            what = f"optimizer {name}" + (" with a schedule" if schedule
                                          else "")
            rc, _, err = helper("optim", kind, repr(lr), repr(mom), repr(wd),
                                repr(betas[0]), repr(betas[1]), repr(eps),
                                int(nest), split, path("p0.npy"),
                                path("grads.npy"), path("lrs.npy"),
                                path("p.npy"))
            check(rc == 0, f"{what}: helper failed: {err}")
            if rc:
                continue
            params = [torch.tensor(p0[:split]), torch.tensor(p0[split:])]
            opt = torch_optimizer(cls, params, float(lrs[0]), mom, wd, betas,
                                  eps, nest)
            for s in range(steps):
                for g in opt.param_groups:
                    g["lr"] = float(lrs[s])
                params[0].grad = torch.tensor(grads[s, :split])
                params[1].grad = torch.tensor(grads[s, split:])
                opt.step()
            want = torch.cat(params).detach().numpy()
            got = np.load(path("p.npy"))
            e = worst_rel(got, want, 1e-3)
            exact = int(np.sum(got == want))
            check(e <= 1e-6, f"{what}: parameters off by {e:.3g} relative")
            print(f"{what}: {steps} steps, worst relative difference "
                  f"{e:.2g}, {exact}/{n} bit-identical")


def check_clip(rng):
    n, split = 1000, 400
    for max_norm in (1.0, 1e6):
        g = rng.standard_normal(n).astype(np.float32)
        np.save(path("g.npy"), g)
        rc, out, err = helper("clip", repr(max_norm), split, path("g.npy"),
                              path("gc.npy"))
        what = f"clip_grad_norm_ max_norm {max_norm}"
        check(rc == 0, f"{what}: helper failed: {err}")
        if rc:
            continue
        norm = float(out.split()[1])
        params = [torch.zeros(split, requires_grad=True),
                  torch.zeros(n - split, requires_grad=True)]
        params[0].grad = torch.tensor(g[:split])
        params[1].grad = torch.tensor(g[split:])
        want = float(torch.nn.utils.clip_grad_norm_(params, max_norm))
        check(worst_rel(norm, want, 1e-30) <= 1e-6,
              f"{what}: norm {norm!r}, torch {want!r}")
        e = worst_rel(np.load(path("gc.npy")),
                      torch.cat([p.grad for p in params]).numpy(), 1e-3)
        check(e <= 1e-6, f"{what}: gradients off by {e:.3g} relative")


def check_schedules():
    for kind, args in (("cosine", (0.1, 64, 0.0)), ("cosine", (0.05, 7, 1e-4)),
                       ("step", (0.1, 100, 30, 0.1)),
                       ("step", (1e-3, 20, 3, 0.5))):
        rc, out, err = helper(kind, *map(repr, args))
        check(rc == 0, f"{kind} {args}: helper failed: {err}")
        if rc:
            continue
        got = [float(v) for v in out.split()]
        p = torch.zeros(1, requires_grad=True)
        opt = torch.optim.SGD([p], lr=args[0])
        if kind == "cosine":
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(
                opt, T_max=args[1], eta_min=args[2])
        else:
            sched = torch.optim.lr_scheduler.StepLR(opt, step_size=args[2],
                                                    gamma=args[3])
        want = []
        for _ in range(args[1] + 1):
            want.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        e = worst_rel(got, want, 1e-9 * args[0])
        check(e <= 1e-9, f"{kind} {args}: learning rates off by {e:.3g}")


# ---- IDX ----

def idx_bytes(arr):
    head = bytes([0, 0, 8, arr.ndim]) + b"".join(
        struct.pack(">I", d) for d in arr.shape)
    return head + arr.astype(np.uint8).tobytes()


def parse_helper_idx(out):
    lines = dict(line.split(" ", 1) for line in out.strip().split("\n"))
    shape = tuple(int(v) for v in lines["shape"].split())
    hist = [int(v) for v in lines["hist"].split()]
    return shape, int(lines["crc32"]), hist


def check_idx_file(file, shape, data, what):
    rc, out, err = helper("idx", file)
    check(rc == 0, f"{what}: helper failed: {err}")
    if rc:
        return None
    got_shape, crc, hist = parse_helper_idx(out)
    check(got_shape == shape, f"{what}: shape {got_shape}, expected {shape}")
    check(crc == zlib.crc32(data), f"{what}: CRC-32 differs from Python's")
    want_hist = np.bincount(np.frombuffer(data, dtype=np.uint8),
                            minlength=256).tolist()
    check(hist == want_hist, f"{what}: byte histogram differs")
    return hist


def check_idx_numpy(rng):
    for shape in [(17,), (5, 7), (3, 28, 28), (2, 3, 4, 5), (0, 28, 28)]:
        arr = rng.integers(0, 256, shape).astype(np.uint8)
        blob = idx_bytes(arr)
        for suffix, data in (("", blob), (".gz", gzip.compress(blob))):
            name = path("np.idx" + suffix)
            with open(name, "wb") as f:
                f.write(data)
            check_idx_file(name, shape, arr.tobytes(), f"IDX {shape}{suffix}")


def check_fashion_mnist():
    for train, n in ((1, 60000), (0, 10000)):
        split = "train" if train else "test"
        rc, out, _ = helper("dataset", train)
        if rc == 3:
            print(f"Fashion-MNIST skipped: {out.strip()}")
            return
        check(rc == 0, f"Fashion-MNIST {split}: helper failed: {out}")
        if rc:
            return
        files = dict(line.split(" ", 1) for line in out.strip().split("\n"))
        for key, shape in (("images", (n, 28, 28)), ("labels", (n,))):
            file = files[key]
            opener = gzip.open if file.endswith(".gz") else open
            with opener(file, "rb") as f:
                blob = f.read()
            ndim = blob[3]
            data = blob[4 + 4 * ndim:]
            hist = check_idx_file(file, shape, data,
                                  f"Fashion-MNIST {split} {key}")
            if key == "labels" and hist is not None:
                check(hist[:10] == [n // 10] * 10 and sum(hist[10:]) == 0,
                      f"Fashion-MNIST {split} labels: histogram {hist[:12]}")
        print(f"Fashion-MNIST {split}: {n} images of 28x28, "
              f"{n // 10} of each class")


def main():
    os.makedirs(WORK, exist_ok=True)
    rng = np.random.default_rng(20240917)
    check_idx_numpy(rng)
    check_fashion_mnist()
    if torch is None:
        print(f"{CASES[0]} IDX cases, {len(FAILURES)} failures")
        if FAILURES:
            return 1
        print(f"skipped: {TORCH_MISSING}")
        return 77
    torch.manual_seed(0)
    check_losses(rng)
    check_optimizers(rng)
    check_clip(rng)
    check_schedules()
    print(f"torch {torch.__version__}: {CASES[0]} checks, "
          f"{len(FAILURES)} failures")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
