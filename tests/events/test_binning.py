#!/usr/bin/env python3
"""The binning of `encode events` (docs/language.md, "Event input") against
an independent NumPy implementation, and snnc run on event lists against
snnc run (and snnc grad) on the frames NumPy binned.

The reference finds an event's bin from the bins' first instants,
edge_k = ceil(k * W / T), with np.searchsorted (snnc computes t * T / W in
integers), and accumulates with np.add.at. For each case, snnc's binned
frames (recorded from the input: --record ev=...) must equal the
reference's exactly, and a network reading the events must give the same
output bits as its twin with `encode sequence` given the reference frames
(both with --init 1, so the same weights), as must the events network
given NumPy's frames themselves ([T, B, C, H, W]); snnc grad on the events
must give the gradients (of the parameters and of the binned input) of the
twin given the reference frames, bit for bit. The cases:
  - hand-made lists, window 100 and T = 4: events on every bin's first and
    last instant, t = 0 and the last instant W - 1, an empty sample in the
    middle and one at the end, both polarities at one pixel, repeated
    events; a few bins also checked against values derived by hand;
  - a window that T does not divide (W = 10, T = 4: bins 0 0 0 1 1 2 2 2 3 3
    for t = 0..9, by hand), binary bins and one merged polarity channel;
  - random lists in an [E, 4] int32 array;
  - synthetic events from scripts/make_fashion_events.py (of Fashion-MNIST
    test images where Debian's dataset-fashion-mnist is installed, else of
    random images).
Also: `snnc train --train-limit 9 --test-limit 5` on event lists (random,
with empty samples at the cut) writes the weights and metrics of a run on
files cut to those samples, byte for byte; an event past the cut that
the network could not take is not read (without the limit it is refused);
and labels of another length than the offsets' samples are refused under a
limit too.

Usage: test_binning.py SOURCE_DIR (SNNC in the environment)
"""
import os
import subprocess
import sys
import tempfile

import numpy as np

from snnc_ref import Checker, snnc_path

SRC = sys.argv[1]
sys.path.insert(0, os.path.join(SRC, "scripts"))
import make_fashion_events as mfe  # noqa: E402

TONIC = np.dtype([("x", "<i8"), ("y", "<i8"), ("p", "<i8"), ("t", "<i8")])


def ref_bin(ev, offsets, T, window, shape, binary):
    """NumPy's frames [T, N, C, H, W] for events ev (fields x, y, p, t)."""
    C, H, W = shape
    n = len(offsets) - 1
    frames = np.zeros((T, n, C, H, W), np.float32)
    edges = -(-np.arange(T, dtype=np.int64) * window // T)  # ceil(k W / T)
    for i in range(n):
        e = ev[offsets[i]:offsets[i + 1]]
        b = np.searchsorted(edges, e["t"].astype(np.int64), side="right") - 1
        c = e["p"].astype(np.int64) if C == 2 else np.zeros(len(e), np.int64)
        np.add.at(frames[:, i], (b, c, e["y"].astype(np.int64), e["x"].astype(np.int64)), 1)
    if binary:
        frames = (frames > 0).astype(np.float32)
    return frames


def model(encode, T, shape):
    return """network Ev {
  timesteps %d;
  input ev : [%d, %d, %d] encode %s;
  out = ev |> flatten |> dense(5) |> LI(tau = 2.0);
  output out readout steps;
}
""" % ((T,) + tuple(shape) + (encode,))


def snnc(args):
    p = subprocess.run([snnc_path()] + args, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("snnc %s: exit %d\n%s" % (" ".join(args), p.returncode, p.stderr))


def case(c, d, name, ev, offsets, T, window, shape, binary=False, table=False, by_hand=()):
    """Runs one case in folder d; by_hand: [(index into frames, value)]."""
    binary_arg = ", binary = true" if binary else ""
    ev_snn, seq_snn = os.path.join(d, name + ".snn"), os.path.join(d, name + "_seq.snn")
    with open(ev_snn, "w") as f:
        f.write(model("events(window = %d%s)" % (window, binary_arg), T, shape))
    with open(seq_snn, "w") as f:
        f.write(model("sequence", T, shape))
    path = os.path.join(d, name + ".npy")
    if table:
        np.save(path, np.stack([ev["x"], ev["y"], ev["p"], ev["t"]], axis=1).astype(np.int32))
    else:
        np.save(path, ev)
    np.save(os.path.join(d, name + ".offsets.npy"), np.asarray(offsets, np.int64))
    want = ref_bin(ev, offsets, T, window, shape, binary)
    for idx, v in by_hand:
        c.check(want[idx] == v, "%s: the NumPy reference gives %g at %s, by hand %g" % (name, want[idx], idx, v))
    frames, y_ev = os.path.join(d, name + "_frames.npy"), os.path.join(d, name + "_y.npy")
    snnc(["run", ev_snn, "--init", "1", "--input", path, "--output", y_ev, "--record", "ev=" + frames])
    got = np.load(frames)
    c.check(got.shape == want.shape and np.array_equal(got, want),
            "%s: snnc's frames differ from NumPy's (%d of %d values)" % (
                name, int((got != want).sum()) if got.shape == want.shape else -1, want.size))
    x, y_seq = os.path.join(d, name + "_x.npy"), os.path.join(d, name + "_yseq.npy")
    np.save(x, want)
    snnc(["run", seq_snn, "--init", "1", "--input", x, "--output", y_seq])
    a, b = np.load(y_ev), np.load(y_seq)
    c.check(a.shape == b.shape and np.array_equal(a.view(np.uint32), b.view(np.uint32)),
            "%s: snnc run on the events differs from snnc run on NumPy's frames" % name)
    # the events network also takes the frames, binned already
    y_fr = os.path.join(d, name + "_yfr.npy")
    snnc(["run", ev_snn, "--init", "1", "--input", x, "--output", y_fr])
    c.check(np.array_equal(np.load(y_fr).view(np.uint32), a.view(np.uint32)),
            "%s: snnc run of the events network on NumPy's frames differs from it on the events" % name)
    # snnc grad on the events: the gradients of the sequence twin given
    # NumPy's frames, bit for bit (dL/dinput is the frames' gradient)
    gy = os.path.join(d, name + "_gy.npy")
    np.save(gy, np.random.default_rng(len(ev)).standard_normal(a.shape).astype(np.float32))
    outs = {}
    for what, m, inp in (("events", ev_snn, path), ("frames", seq_snn, x)):
        g, dx = os.path.join(d, "%s_g_%s.safetensors" % (name, what)), os.path.join(d, "%s_dx_%s.npy" % (name, what))
        snnc(["grad", m, "--init", "1", "--input", inp, "--grad-output", gy, "--output", g, "--input-grad", dx])
        with open(g, "rb") as f:
            outs[what] = (f.read(), np.load(dx))
    c.check(outs["events"][0] == outs["frames"][0],
            "%s: snnc grad on the events: the parameters' gradients differ from those on NumPy's frames" % name)
    c.check(outs["events"][1].shape == want.shape and
            np.array_equal(outs["events"][1].view(np.uint32), outs["frames"][1].view(np.uint32)),
            "%s: snnc grad on the events: dL/dinput differs from that on NumPy's frames" % name)
    print("ok   %s: %d samples, %d events, T = %d, window %d%s" % (
        name, len(offsets) - 1, len(ev), T, window, ", binary" if binary else ""))


def limits(c, d, rng):
    """--train-limit and --test-limit on event lists: the first samples' events alone."""
    shape, T, window = (2, 3, 5), 4, 100
    sets = {}
    for split, n in (("train", 24), ("test", 12)):
        sizes = rng.integers(0, 9, n)
        sizes[[4, 8, 9]] = 0  # empty samples, one of them where the train split is cut
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        rows = []
        for k in sizes:
            rows += [(rng.integers(0, 5), rng.integers(0, 3), rng.integers(0, 2), tt)
                     for tt in np.sort(rng.integers(0, window, k))]
        sets[split] = (events(rows), offsets, rng.integers(0, 5, n))

    def write(folder, cut):
        os.makedirs(folder)
        for split, (ev, offsets, labels) in sets.items():
            n = cut[split]
            np.save(os.path.join(folder, split + "_x.npy"), ev[:offsets[n]])
            np.save(os.path.join(folder, split + "_x.offsets.npy"), np.asarray(offsets[:n + 1], np.int64))
            np.save(os.path.join(folder, split + "_y.npy"), labels[:n])
        m = os.path.join(folder, "lim.snn")
        with open(m, "w") as f:
            f.write(model("events(window = %d)" % window, T, shape) + """
train Ev {
  data npy(train_x = "%(d)s/train_x.npy", train_y = "%(d)s/train_y.npy",
           test_x = "%(d)s/test_x.npy", test_y = "%(d)s/test_y.npy");
  epochs 1; batch 4; seed 2;
}
""" % {"d": folder})
        return m

    whole = write(os.path.join(d, "lim_whole"), {"train": 24, "test": 12})
    cut = write(os.path.join(d, "lim_cut"), {"train": 9, "test": 5})
    runs = []
    for m, extra in ((whole, ["--train-limit", "9", "--test-limit", "5"]), (cut, [])):
        out = os.path.join(os.path.dirname(m), "out")
        p = subprocess.run([snnc_path(), "train", m, "-o", out, "--threads", "1"] + extra, capture_output=True,
                           text=True)
        runs.append((p.returncode, p.stderr, out))
    c.check(runs[0][0] == 0 and runs[1][0] == 0, "both event runs train: %r" % [r[1][-300:] for r in runs])
    if runs[0][0] == 0 and runs[1][0] == 0:
        def metrics(out):  # without the timing columns
            with open(os.path.join(out, "metrics.csv")) as f:
                return [line.split(",")[:-2] for line in f]
        with open(os.path.join(runs[0][2], "weights.safetensors"), "rb") as f:
            a = f.read()
        with open(os.path.join(runs[1][2], "weights.safetensors"), "rb") as f:
            b = f.read()
        c.check(a == b and metrics(runs[0][2]) == metrics(runs[1][2]),
                "--train-limit 9 --test-limit 5 on event lists: the weights and metrics of files cut there")
    # an event past the cut that the network could not take: not read under the limit, refused without it
    ev = sets["train"][0].copy()
    ev[len(ev) - 1]["x"] = 99
    np.save(os.path.join(d, "lim_whole", "train_x.npy"), ev)
    bad = []
    for extra in (["--train-limit", "9"], []):
        p = subprocess.run([snnc_path(), "train", whole, "-o", os.path.join(d, "lim_past"), "--threads", "1"] +
                           extra, capture_output=True, text=True)
        bad.append((p.returncode, "x = 99" in p.stderr))
    c.check(bad == [(0, False), (1, True)], "an event past --train-limit's samples is not read: %r" % bad)
    np.save(os.path.join(d, "lim_whole", "train_x.npy"), sets["train"][0])
    # labels one short of the offsets' samples, refused though the limit is below both
    np.save(os.path.join(d, "lim_whole", "train_y.npy"), sets["train"][2][:23])
    p = subprocess.run([snnc_path(), "train", whole, "-o", os.path.join(d, "lim_bad"), "--train-limit", "9"],
                       capture_output=True, text=True)
    c.check(p.returncode == 1 and "24 samples of events" in p.stderr and "23 values" in p.stderr,
            "labels of 23 for 24 samples of events are refused under --train-limit 9: %r" % p.stderr.strip())
    print("ok   limits: --train-limit and --test-limit on event lists")


def events(rows):
    return np.array([tuple(r) for r in rows], TONIC)


def main():
    c = Checker()
    with tempfile.TemporaryDirectory(prefix="snnc-events-") as d:
        # hand-made: bins of 25 instants; sample 1 and 3 empty
        s0 = [(0, 0, 1, 0), (1, 0, 1, 24), (2, 0, 1, 25), (3, 0, 0, 49), (4, 0, 0, 50), (0, 1, 1, 74),
              (1, 1, 0, 75), (2, 2, 1, 99)]
        s2 = [(2, 1, 0, 10), (2, 1, 1, 10), (2, 1, 1, 11), (2, 1, 1, 12), (4, 2, 0, 99), (4, 2, 0, 99)]
        ev = events(s0 + s2)
        # frames[t, sample, c, y, x]
        by_hand = [((0, 0, 1, 0, 0), 1), ((0, 0, 1, 0, 1), 1), ((1, 0, 1, 0, 2), 1), ((1, 0, 0, 0, 3), 1),
                   ((2, 0, 0, 0, 4), 1), ((2, 0, 1, 1, 0), 1), ((3, 0, 0, 1, 1), 1), ((3, 0, 1, 2, 2), 1),
                   ((0, 2, 1, 1, 2), 3), ((0, 2, 0, 1, 2), 1), ((3, 2, 0, 2, 4), 2), ((1, 0, 1, 0, 1), 0)]
        case(c, d, "hand", ev, [0, 8, 8, 14, 14], 4, 100, (2, 3, 5), by_hand=by_hand)
        # W = 10, T = 4: edges 0, 3, 5, 8
        ev = events([(t % 5, t % 3, t % 2, t) for t in range(10)])
        hand = [0, 0, 0, 1, 1, 2, 2, 2, 3, 3]
        case(c, d, "uneven", ev, [0, 10], 4, 10, (2, 3, 5),
             by_hand=[((hand[t], 0, t % 2, t % 3, t % 5), 1) for t in range(10)])
        ev2 = events([(1, 1, 0, 0), (1, 1, 1, 0), (1, 1, 1, 9), (0, 2, 0, 9)])
        case(c, d, "binary_merged", ev2, [0, 4], 4, 10, (1, 3, 5), binary=True,
             by_hand=[((0, 0, 0, 1, 1), 1), ((3, 0, 0, 1, 1), 1), ((3, 0, 0, 2, 0), 1)])
        case(c, d, "count_merged", ev2, [0, 4], 4, 10, (1, 3, 5), by_hand=[((0, 0, 0, 1, 1), 2)])
        # random lists, as an [E, 4] int32 array
        rng = np.random.default_rng(5)
        n = 40
        sizes = rng.integers(0, 60, n)
        sizes[3] = 0
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        rows = []
        for s in sizes:
            t = np.sort(rng.integers(0, 1000, s))
            rows += [(rng.integers(0, 6), rng.integers(0, 8), rng.integers(0, 2), tt) for tt in t]
        case(c, d, "random", events(rows), offsets, 7, 1000, (2, 8, 6), table=True)
        # synthetic events
        src = "random images"
        imgs = rng.integers(0, 256, (12, 28, 28)).astype(np.uint8)
        idx = os.path.join(mfe.DATA, "t10k-images-idx3-ubyte.gz")
        if os.path.exists(idx):
            imgs, src = mfe.read_idx(idx)[:12], "Fashion-MNIST test images"
        ev, offsets = mfe.events_of(imgs, 3)
        print("synthetic events of %s" % src)
        case(c, d, "synthetic", ev, offsets, 6, mfe.WINDOW, (2, 28, 28))
        case(c, d, "synthetic_binary", ev, offsets, 5, mfe.WINDOW, (2, 28, 28), binary=True)
        limits(c, d, rng)
        # snnc info names the binning the model declares
        m = os.path.join(d, "info.snn")
        with open(m, "w") as f:
            f.write(model("events(window = 250, binary = true)", 4, (2, 3, 5)))
        p = subprocess.run([snnc_path(), "info", m], capture_output=True, text=True)
        c.check(p.returncode == 0 and "input ev [2,3,5] (events, window 250, binary)" in p.stdout,
                "snnc info names the event input's window and binning: %r" % p.stdout.split("\n")[0])
    c.finish()


main()
