#!/usr/bin/env python3
"""make_fashion_events.py: a small synthetic event-camera dataset made from
Fashion-MNIST, for examples/fashion_events.snn and the tests.

Each 28 x 28 image moves over a fixed path of one-pixel steps (a small loop
of at most 2 pixels, like the saccades with which N-MNIST was recorded),
and an idealized DVS pixel emits an event where the log intensity it sees
has changed by at least THRESHOLD since its last event: p = 1 (on) where
it rose, p = 0 (off) where it fell; the pixel's reference then becomes the
new value. Step k's events get times k * STEP + a uniform jitter in
[0, STEP), drawn from a generator seeded by --seed, and each sample's
events are sorted by time. A few uniformly random noise events are added.
The same arguments give the same bytes.

Writes into OUT (the format of docs/language.md, "Event input"):
  train_events.npy, train_events.offsets.npy, train_labels.npy
  test_events.npy,  test_events.offsets.npy,  test_labels.npy
Events are a structured array with fields x, y, p (uint8) and t (int32),
times from 0 to WINDOW - 1 (WINDOW = STEPS * STEP = 12000).

Usage: make_fashion_events.py OUT [--train N] [--test N] [--seed S]
       [--data /usr/share/datasets/fashion-mnist]
"""
import argparse
import gzip
import os
import struct

import numpy as np

DATA = "/usr/share/datasets/fashion-mnist"
# the path of the image: one-pixel moves, a loop right, down, left, up, then
# a diagonal back and forth; offsets (dx, dy) after each move
PATH = [(1, 0), (2, 0), (2, 1), (2, 2), (1, 2), (0, 2), (0, 1), (0, 0), (1, 1), (2, 2), (1, 1), (0, 0)]
STEP = 1000
WINDOW = STEP * len(PATH)
THRESHOLD = 0.8
NOISE = 8  # noise events per sample
EVENT_DTYPE = np.dtype([("x", "u1"), ("y", "u1"), ("p", "u1"), ("t", "<i4")])


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    shape = struct.unpack(">%dI" % ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def shifted(img, dx, dy):
    """img moved right by dx and down by dy, with black coming in."""
    out = np.zeros_like(img)
    h, w = img.shape[-2:]
    out[..., dy:, dx:] = img[..., :h - dy, :w - dx]
    return out


def events_of(images, seed):
    """Per image (uint8 [N, H, W]), its events (EVENT_DTYPE), and the
    offsets [N + 1]."""
    rng = np.random.default_rng(seed)
    n, h, w = images.shape
    logi = lambda a: np.log(0.05 + a.astype(np.float64) / 255.0)
    ref = logi(images)
    per_sample = [[] for _ in range(n)]
    for k, (dx, dy) in enumerate(PATH):
        cur = logi(shifted(images, dx, dy))
        diff = cur - ref
        fired = np.abs(diff) >= THRESHOLD
        s, y, x = np.nonzero(fired)
        p = (diff[s, y, x] > 0).astype(np.uint8)
        t = k * STEP + rng.integers(0, STEP, size=s.size)
        ref[fired] = cur[fired]
        ev = np.empty(s.size, EVENT_DTYPE)
        ev["x"], ev["y"], ev["p"], ev["t"] = x, y, p, t
        bounds = np.searchsorted(s, np.arange(n + 1))
        for i in range(n):
            per_sample[i].append(ev[bounds[i]:bounds[i + 1]])
    out, offsets = [], [0]
    for i in range(n):
        noise = np.empty(NOISE, EVENT_DTYPE)
        noise["x"] = rng.integers(0, w, NOISE)
        noise["y"] = rng.integers(0, h, NOISE)
        noise["p"] = rng.integers(0, 2, NOISE)
        noise["t"] = rng.integers(0, WINDOW, NOISE)
        ev = np.concatenate(per_sample[i] + [noise])
        ev = ev[np.argsort(ev["t"], kind="stable")]
        out.append(ev)
        offsets.append(offsets[-1] + ev.size)
    return np.concatenate(out), np.array(offsets, np.int64)


def write_split(out, name, images, labels, seed):
    ev, off = events_of(images, seed)
    np.save(os.path.join(out, name + "_events.npy"), ev)
    np.save(os.path.join(out, name + "_events.offsets.npy"), off)
    np.save(os.path.join(out, name + "_labels.npy"), labels.astype(np.int64))
    return ev.size


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--train", type=int, default=10000)
    ap.add_argument("--test", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--data", default=DATA)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    counts = []
    for name, split, n, seed in (("train", "train", a.train, a.seed), ("test", "t10k", a.test, a.seed + 1)):
        images = read_idx(os.path.join(a.data, split + "-images-idx3-ubyte.gz"))[:n]
        labels = read_idx(os.path.join(a.data, split + "-labels-idx1-ubyte.gz"))[:n]
        counts.append(write_split(a.out, name, images, labels, seed))
    print("%s: %d train samples (%d events), %d test samples (%d events), window %d" % (
        a.out, a.train, counts[0], a.test, counts[1], WINDOW))


if __name__ == "__main__":
    main()
