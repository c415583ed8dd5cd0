#!/usr/bin/env python3
"""`snnc run --plot DIR`: the SVG files parse as XML and hold as many marks as
there are spikes.

The network has no parameters, so its spikes follow by hand. LIF(tau = 2)
with hard reset to 0 sees h = (v + x) / 2 each step: a constant input of 0.5
or 1.0 never reaches the threshold 1 (h tends to x from below), 1.5 fires
at every second step (0.75, 1.125), 2.0 and 3.0 at every step. IF(v_th = 2)
behind it adds the input spikes and fires at every second one. With T = 8:

    sample 0, x = [0.5, 1.5, 2.0, 3.0]: LIF 0 + 4 + 8 + 8 = 20 spikes, IF 0 + 2 + 4 + 4 = 10
    sample 1, x = [1.0, 1.5, 0.0, 2.0]: LIF 0 + 4 + 0 + 8 = 12 spikes, IF 0 + 2 + 0 + 4 = 6

The rasters (sample 0) must hold exactly those marks, at the steps and
neurons where the spikes recorded with --record are; the rates chart one
polyline per spiking layer whose points are an affine image of the
per-step rates (over both samples) computed from the records; the
membrane traces one polyline per neuron, an affine image of the recorded
potentials. A --plot folder that cannot be written is refused before
anything is built, and a network without spiking layers writes no plot
but the traces of its recorded variables.
"""
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

try:
    import numpy as np
except ImportError:
    print("skipped: NumPy is not installed")
    sys.exit(77)

SNNC = os.environ.get("SNNC")
NS = "{http://www.w3.org/2000/svg}"
T = 8
NET = """network Plot {
  timesteps %d;
  input x : [4] encode direct;
  h = x |> LIF(tau = 2.0);
  k = h |> IF(v_th = 2.0);
  output k readout count;
}
""" % T
X = np.array([[0.5, 1.5, 2.0, 3.0], [1.0, 1.5, 0.0, 2.0]], np.float32)
HAND = {"h": [[0, 4, 8, 8], [0, 4, 0, 8]], "k": [[0, 2, 4, 4], [0, 2, 0, 4]]}

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def run(args, cwd):
    return subprocess.run([SNNC] + args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def svg(path):
    root = ET.parse(path).getroot()
    check(root.tag == NS + "svg", "%s: the root is <svg>" % path)
    return root


def polylines(root):
    out = []
    for p in root.iter(NS + "polyline"):
        out.append([tuple(float(c) for c in pt.split(",")) for pt in p.get("points").split()])
    return out


def affine(ys, values, what, sign=-1):
    """ys = a + b * values for some a and b of the given sign (SVG y runs down)."""
    ys = np.asarray(ys, np.float64).ravel()
    v = np.asarray(values, np.float64).ravel()
    check(len(ys) == len(v), "%s: %d points, expected %d" % (what, len(ys), len(v)))
    if len(ys) != len(v) or np.ptp(v) == 0:
        return
    b, a = np.polyfit(v, ys, 1)
    check(b * sign > 0 and np.abs(a + b * v - ys).max() < 0.02,
          "%s: the points are not an affine image of the values (residual %.3g)" %
          (what, np.abs(a + b * v - ys).max()))


def check_raster(path, spikes, layer):
    """spikes: [T, N] of sample 0."""
    root = svg(path)
    groups = [g for g in root.iter(NS + "g") if g.get("id") == "spikes"]
    check(len(groups) == 1, "%s: one group of spikes" % path)
    if len(groups) != 1:
        return
    marks = [(float(r.get("x")), float(r.get("y"))) for r in groups[0]]
    check(all(r.tag == NS + "rect" for r in groups[0]), "%s: the group holds only <rect> marks" % path)
    want = int(spikes.sum())
    check(len(marks) == want, "%s: %d marks, expected %d spikes" % (path, len(marks), want))
    check(want == sum(HAND[layer][0]), "%s: the recorded spikes (%d) are the hand-derived %d" %
          (path, want, sum(HAND[layer][0])))
    # the marks' columns are the steps, their rows the neurons: the marks per
    # distinct x (left to right) and per distinct y (bottom to top) are the
    # spikes per step and per neuron
    by_x = [sum(1 for m in marks if abs(m[0] - x) < 1e-6) for x in sorted({m[0] for m in marks})]
    by_y = [sum(1 for m in marks if abs(m[1] - y) < 1e-6) for y in sorted({m[1] for m in marks}, reverse=True)]
    per_step = [int(c) for c in spikes.sum(axis=1) if c]
    per_neuron = [int(c) for c in spikes.sum(axis=0) if c]
    check(by_x == per_step, "%s: marks per step %s, spikes per step %s" % (path, by_x, per_step))
    check(by_y == per_neuron, "%s: marks per neuron %s, spikes per neuron %s" % (path, by_y, per_neuron))


def main():
    if not SNNC:
        print("skipped: SNNC is not set (ctest sets it)")
        return 77
    with tempfile.TemporaryDirectory(prefix="snnc-plot-") as tmp:
        with open(os.path.join(tmp, "plot.snn"), "w") as f:
            f.write(NET)
        np.save(os.path.join(tmp, "x.npy"), X)
        p = run(["run", "plot.snn", "--input", "x.npy", "--output", "y.npy", "--plot", "plots",
                 "--record", "h=h.npy", "--record", "k=k.npy", "--record", "h.v=hv.npy", "--threads", "1"], tmp)
        check(p.returncode == 0, "run --plot: exit %d: %s" % (p.returncode, p.stderr))
        if p.returncode:
            return 1
        h, k, hv = (np.load(os.path.join(tmp, n)) for n in ("h.npy", "k.npy", "hv.npy"))
        y = np.load(os.path.join(tmp, "y.npy"))
        check(h.sum(axis=0).tolist() == HAND["h"] and k.sum(axis=0).tolist() == HAND["k"],
              "the recorded spike counts are the hand-derived ones: %s %s" % (h.sum(axis=0), k.sum(axis=0)))
        check(y.tolist() == HAND["k"], "the readout (count) is the hand-derived %s: %s" % (HAND["k"], y.tolist()))
        plots = os.path.join(tmp, "plots")
        files = sorted(os.listdir(plots))
        want = ["raster_h.svg", "raster_k.svg", "rates.svg", "trace_h.v.svg", "trace_k.v.svg"]
        check(files == want, "the plot files: %s, expected %s" % (files, want))
        for name in ("h", "k"):
            check_raster(os.path.join(plots, "raster_%s.svg" % name), (h if name == "h" else k)[:, 0, :], name)
        lines = polylines(svg(os.path.join(plots, "rates.svg")))
        check(len(lines) == 2, "rates.svg: one polyline per spiking layer, got %d" % len(lines))
        if len(lines) == 2:
            rates = [s.mean(axis=(1, 2)) for s in (h, k)]
            affine([pt[1] for ln in lines for pt in ln], np.concatenate(rates), "rates.svg")
            for ln in lines:
                affine([pt[0] for pt in ln], np.arange(1, T + 1), "rates.svg: the x of the steps", sign=1)
        lines = polylines(svg(os.path.join(plots, "trace_h.v.svg")))
        check(len(lines) == 4, "trace_h.v.svg: one polyline per neuron (4), got %d" % len(lines))
        if len(lines) == 4:
            affine([pt[1] for ln in lines for pt in ln], hv[:, 0, :].T.ravel(), "trace_h.v.svg")

        # a folder that cannot be written: refused before anything is built
        open(os.path.join(tmp, "afile"), "w").close()
        p = run(["run", "plot.snn", "--input", "x.npy", "--output", "y2.npy", "--plot", "afile"], tmp)
        check(p.returncode == 1 and "afile" in p.stderr and not os.path.exists(os.path.join(tmp, "y2.npy")),
              "--plot to a file: exit 1 naming it, no output: %d %s" % (p.returncode, p.stderr))

        # no spiking layer: only the traces of what is recorded
        with open(os.path.join(tmp, "li.snn"), "w") as f:
            f.write(NET.replace("h = x |> LIF(tau = 2.0);", "h = x |> LI(tau = 2.0);").replace(
                "k = h |> IF(v_th = 2.0);", "k = h |> LI(tau = 2.0);"))
        p = run(["run", "li.snn", "--input", "x.npy", "--output", "y3.npy", "--plot", "li", "--record", "k.v=kv.npy"],
                tmp)
        check(p.returncode == 0, "run --plot without spiking layers: exit %d: %s" % (p.returncode, p.stderr))
        if p.returncode == 0:
            files = sorted(os.listdir(os.path.join(tmp, "li")))
            check(files == ["trace_k.v.svg"], "without spiking layers: only the trace of k.v, got %s" % files)
    if failures:
        print("%d check(s) failed" % len(failures))
        return 1
    print("plot: all checks passed")
    return 0


# ---- train --plot ----

DATA = "/usr/share/datasets/fashion-mnist"
TRAIN_NET = """network TP {
  timesteps 4;
  input img : [1, 28, 28] encode direct;
  h1 = img |> flatten |> dense(32) |> LIF(tau = 2.0);
  h2 = h1 |> dense(16) |> IF(v_th = 0.25);
  out = h2 |> dense(10) |> LI(tau = 2.0);
  output out readout mean;
}

train TP {
  data fashion_mnist(mean = 0.2860, std = 0.3530);
  optimizer adam(lr = 1e-3);
  epochs 2; batch 32; seed 1;
}
"""
PLOT_SAMPLES = 64  # the test samples train --plot runs (plot.h)


def test_images(n):
    """The first n test images, normalized as the train block says, as snnc does it."""
    import gzip
    with gzip.open(os.path.join(DATA, "t10k-images-idx3-ubyte.gz"), "rb") as f:
        raw = f.read()
    px = np.frombuffer(raw, np.uint8, count=n * 784, offset=16).astype(np.float64)
    return ((px / 255.0 - 0.2860) / 0.3530).astype(np.float32).reshape(n, 1, 28, 28)


def legend_series(root):
    """The legend's names, in the order of the polylines."""
    return [t.text for t in root.iter(NS + "text") if t.text and (t.text.startswith("spike rate") or
                                                                  t.text in ("train loss", "test loss",
                                                                             "train accuracy", "test accuracy"))]


def main_train():
    if not SNNC:
        print("skipped: SNNC is not set (ctest sets it)")
        return 77
    if not os.path.exists(os.path.join(DATA, "t10k-images-idx3-ubyte.gz")):
        print("skipped: Fashion-MNIST is not installed (Debian package dataset-fashion-mnist)")
        return 77
    with tempfile.TemporaryDirectory(prefix="snnc-plot-train-") as tmp:
        with open(os.path.join(tmp, "tp.snn"), "w") as f:
            f.write(TRAIN_NET)
        p = run(["train", "tp.snn", "--data", DATA, "--train-limit", "256", "--test-limit", "80", "-o", "out",
                 "--plot", "plots", "--threads", "1"], tmp)
        check(p.returncode == 0, "train --plot: exit %d: %s" % (p.returncode, p.stderr))
        if p.returncode:
            return 1
        files = sorted(os.listdir(os.path.join(tmp, "plots")))
        want = ["raster_h1.svg", "raster_h2.svg", "rates.svg", "trace_h1.v.svg", "trace_h2.v.svg"]
        check(files == want, "train --plot files: %s, expected %s" % (files, want))

        # the trained weights on the same samples, run independently with --record
        np.save(os.path.join(tmp, "x.npy"), test_images(PLOT_SAMPLES))
        p = run(["run", "tp.snn", "--weights", "out/weights.safetensors", "--input", "x.npy", "--output", "y.npy",
                 "--record", "h1=h1.npy", "--record", "h2=h2.npy", "--threads", "1"], tmp)
        check(p.returncode == 0, "run with the trained weights: exit %d: %s" % (p.returncode, p.stderr))
        if p.returncode:
            return 1
        rec = {n: np.load(os.path.join(tmp, n + ".npy")) for n in ("h1", "h2")}
        for n in ("h1", "h2"):
            root = svg(os.path.join(tmp, "plots", "raster_%s.svg" % n))
            marks = [r for g in root.iter(NS + "g") if g.get("id") == "spikes" for r in g]
            want_marks = int(rec[n][:, 0, :].sum())
            check(len(marks) == want_marks, "train: raster_%s.svg: %d marks, expected %d spikes of sample 0"
                  % (n, len(marks), want_marks))
        lines = polylines(svg(os.path.join(tmp, "plots", "rates.svg")))
        check(len(lines) == 2, "train: rates.svg: 2 polylines, got %d" % len(lines))
        if len(lines) == 2:
            affine([pt[1] for ln in lines for pt in ln],
                   np.concatenate([rec[n].mean(axis=(1, 2)) for n in ("h1", "h2")]), "train: rates.svg")

        # curves.svg: the four curves and a spike rate per layer, whose last
        # point is the rate of the independent run
        root = svg(os.path.join(tmp, "out", "curves.svg"))
        names = legend_series(root)
        check(names == ["train loss", "test loss", "train accuracy", "test accuracy", "spike rate h1",
                        "spike rate h2"], "curves.svg: the series %s" % names)
        lines = polylines(root)
        check(len(lines) == 6 and all(len(ln) == 2 for ln in lines),
              "curves.svg: 6 curves of 2 epochs, got %s" % [len(ln) for ln in lines])
        if len(lines) == 6:
            with open(os.path.join(tmp, "out", "metrics.csv")) as f:
                rows = [ln.strip().split(",") for ln in f.readlines()[1:]]
            cols = {"train loss": 2, "train accuracy": 3, "test loss": 4, "test accuracy": 5}
            known = [(float(r[cols[nm]]), ln[i][1]) for nm, ln in zip(names[:4], lines[:4])
                     for i, r in enumerate(rows)]
            v, y = np.array(known).T
            b, a = np.polyfit(v, y, 1)
            check(np.abs(a + b * v - y).max() < 0.02, "curves.svg: the loss and accuracy points map linearly")
            for n, ln in zip(("h1", "h2"), lines[4:]):
                got = (ln[-1][1] - a) / b
                want_rate = rec[n].mean()
                check(abs(got - want_rate) < 2e-3, "curves.svg: spike rate %s after the last epoch: %.4f, "
                      "the independent run's %.4f" % (n, got, want_rate))
    if failures:
        print("%d check(s) failed" % len(failures))
        return 1
    print("plot train: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main_train() if sys.argv[1:] == ["train"] else main())
