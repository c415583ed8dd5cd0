#!/usr/bin/env python3
"""test_augment.py: `augment images(shift = S, flip = B)` in a train block.

What the network saw is read back from the weights of one optimizer step.
The network is flatten |> dense(K, bias = false) |> LI, trained from zero
weights with plain SGD on one batch of N samples whose labels are 0 .. N-1,
with K = N + 1 classes. At zero weights every class has probability 1/K,
so the gradient of row k of the weight is c * (S/K - a_k), where a_k is
the augmented input of the sample labelled k, S the sum of all of them and
c a positive factor the same for every row (the LI readout is linear in the
input); the last row, which no sample is labelled with, gets c * S/K. After
the step, row k minus the last row is therefore a positive multiple of a_k.

The test finds, for every sample, which of the allowed moves (dx, dy in
[-S, S], mirrored or not) of its normalized image that is, with the
pixels that no pixel moved to holding a normalized 0, and checks:

1. every sample got exactly one allowed move, and the moves vary
   (several shifts, mirrored and not), on images of 2 channels of 5 x 6;
2. without augmentation, and with `shift = 0`, what was seen is the image
   itself, or the image or its mirror;
3. the draws do not depend on the thread count and change with the seed;
4. the setting is refused, with its location, on a network whose input is
   not an image and when the shift is out of range.
"""
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "ref"))
import snnc_ref as R  # noqa: E402

np = R.require("numpy")

C, H, W = 2, 5, 6
N = 24
K = N + 1
MEAN, STD = 0.3, 0.5

MODEL = """
network Aug {
  timesteps 2;
  input img : [%(C)d, %(H)d, %(W)d] encode direct;
  out = img |> flatten |> dense(%(K)d, bias = false) as fc |> LI(tau = 2.0) as out;
  output out readout mean;
}

train Aug {
  data npy(train_x = "%(d)s/x.npy", train_y = "%(d)s/y.npy",
           test_x = "%(d)s/x.npy", test_y = "%(d)s/y.npy", mean = %(mean)g, std = %(std)g);
  %(augment)s
  optimizer sgd(lr = 1.0);
  epochs 1; batch %(N)d; seed %(seed)d;
}
"""


def moved(img, dx, dy, flip, fill):
    """img [C, H, W] mirrored left to right (flip), then moved dx right and
    dy down, with fill where nothing moved to: the rule of docs/training.md."""
    src = img[:, :, ::-1] if flip else img
    out = np.full_like(img, fill)
    for y in range(H):
        for x in range(W):
            sy, sx = y - dy, x - dx
            if 0 <= sy < H and 0 <= sx < W:
                out[:, y, x] = src[:, sy, sx]
    return out


def seen(root, augment, seed=7, threads=1):
    """Trains one step; returns (the inputs the network saw, up to a
    positive factor each: [N, C*H*W], the raw weights), or the failed
    process."""
    out = os.path.join(root, "run")
    model = MODEL % {"C": C, "H": H, "W": W, "K": K, "N": N, "d": root, "mean": MEAN, "std": STD,
                     "augment": augment, "seed": seed}
    p = R.train(model, out, ["--weights", os.path.join(root, "zero.safetensors"), "--threads", str(threads),
                             "--cc", R.quick_cc(root)])
    if p.returncode != 0:
        return p, None
    w = R.read_safetensors(os.path.join(out, "weights.safetensors"))[0]["fc.weight"].astype(np.float64)
    return w[:N] - w[N], w


def identify(c, a, imgs, shift, flips):
    """The (dx, dy, flip) of each row of a among the allowed moves; checks
    that exactly one fits."""
    fill = (0.0 - MEAN) / STD
    found = []
    for k in range(N):
        got = a[k]
        fits = []
        for dx in range(-shift, shift + 1):
            for dy in range(-shift, shift + 1):
                for fl in flips:
                    want = moved(imgs[k], dx, dy, fl, fill).ravel()
                    scale = got @ want / (want @ want)
                    if scale > 0 and np.max(np.abs(got - scale * want)) <= 1e-4 * np.max(np.abs(got)):
                        fits.append((dx, dy, fl))
        c.check(len(fits) == 1, "sample %d: %d allowed moves fit what the network saw (one expected): %s"
                % (k, len(fits), fits))
        found.append(fits[0] if fits else None)
    return found


def main():
    R.snnc_path()
    c = R.Checker()
    rng = np.random.default_rng(11)
    # raw values in [0.1, 1): every pixel differs from the fill (a raw 0)
    raw = rng.uniform(0.1, 1.0, (N, C, H, W)).astype(np.float32)
    imgs = (raw.astype(np.float64) - MEAN) / STD
    with tempfile.TemporaryDirectory() as root:
        np.save(os.path.join(root, "x.npy"), raw)
        np.save(os.path.join(root, "y.npy"), np.arange(N, dtype=np.int64))
        R.write_safetensors(os.path.join(root, "zero.safetensors"),
                            {"fc.weight": np.zeros((K, C * H * W), np.float32)})

        a, w = seen(root, "augment none;")
        if w is None:
            c.check(False, "training without augmentation: %s" % a.stderr.strip())
            c.finish()
        found = identify(c, a, imgs, 0, [False])
        c.check(found == [(0, 0, False)] * N, "without augmentation the network sees the images themselves")

        a, w = seen(root, "augment images(shift = 0, flip = true);")
        found = identify(c, a, imgs, 0, [False, True])
        nflip = sum(1 for f in found if f and f[2])
        c.check(3 <= nflip <= N - 3, "flip = true mirrors some images and not others: %d of %d" % (nflip, N))

        a, w2 = seen(root, "augment images(shift = 2, flip = true);")
        found = identify(c, a, imgs, 2, [False, True])
        moves = set((f[0], f[1]) for f in found if f)
        nflip = sum(1 for f in found if f and f[2])
        c.check(len(moves) >= 8, "shift = 2 draws several moves: %d distinct in %d samples" % (len(moves), N))
        c.check(any(abs(m[0]) == 2 for m in moves) and any(abs(m[1]) == 2 for m in moves),
                "moves reach 2 pixels across and down: %s" % sorted(moves))
        c.check(3 <= nflip <= N - 3, "and mirror some images: %d of %d" % (nflip, N))
        c.check(not found.count((0, 0, False)) == N, "the moves are not all none")

        a2, w3 = seen(root, "augment images(shift = 2, flip = true);", threads=2)
        c.same(w3, w2, "the same draws and weights on 2 threads")
        a3, w4 = seen(root, "augment images(shift = 2, flip = true);", seed=8)
        found8 = identify(c, a3, imgs, 2, [False, True])
        c.check(found8 != found, "another seed draws other moves")

        # refused: an input that is not an image; a shift out of range
        flat = MODEL.replace("[%(C)d, %(H)d, %(W)d]", "[%(C)d]").replace("flatten |> ", "")
        p = R.train(flat % {"C": C, "K": K, "N": N, "d": root, "mean": MEAN, "std": STD,
                            "augment": "augment images(flip = true);", "seed": 1},
                    os.path.join(root, "flat"))
        c.check(p.returncode == 1 and "model.snn:12:11: error: augment images(...) moves and mirrors images" in p.stderr
                and "does not take images (its input is [2])" in p.stderr,
                "augmenting a flat input is refused at the setting: %r" % p.stderr.strip())
        p = R.train(MODEL % {"C": C, "H": H, "W": W, "K": K, "N": N, "d": root, "mean": MEAN, "std": STD,
                             "augment": "augment images(shift = 65);", "seed": 1}, os.path.join(root, "far"))
        c.check(p.returncode == 1 and "error: shift (pixels) must be between 0 and 64, got 65" in p.stderr,
                "a shift of 65 pixels is refused: %r" % p.stderr.strip())
    c.finish()


if __name__ == "__main__":
    main()
