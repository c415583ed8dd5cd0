#!/usr/bin/env python3
"""test_resume.py: `snnc train --resume` continues a run exactly, and refuses
checkpoints it cannot continue from.

One run trains 2 epochs; another trains 1 epoch, then is resumed for the
2nd (`--epochs 2 --resume`) in its own folder. Same seed, shuffle on, and a
dropout layer, so that the batch order and the dropout masks of epoch 2
must both come out as in the unbroken run. Then:
  - weights.safetensors are byte-identical; every tensor of the final
    checkpoint (parameters and Adam's moments) is bitwise equal;
  - the step log of the resumed run holds steps 14..26 of epoch 2 with the
    losses of the unbroken run, to the last printed digit;
  - metrics.csv has one row per epoch (2) after the resume, equal to the
    unbroken run's except for the timing columns.
Refused, with a message that names the problem, and without touching the
folder's files: resuming with no checkpoint; a truncated checkpoint; an
empty one; one with a garbled header; one with a NaN in a parameter or in
the optimizer's state (as --weights refuses a NaN); one of another network;
one of a network of the same name with other shapes; a weights file (not a
checkpoint); one written with another seed.
"""
import json
import os
import shutil
import struct
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "ref"))
import snnc_ref as R  # noqa: E402

np = R.require("numpy")

NET = """
network RMLP {
  timesteps 4;
  input x : [16] encode direct;
  h = x |> dense(%d) as fc1 |> dropout(0.3) |> LIF(surrogate = atan(2.0)) as h;
  out = h |> dense(3) as fc2 |> LI(tau = 2.0) as out;
  output out readout mean;
}
"""

TRAIN = """
train %s {
  data npy(train_x = "../train_x.npy", train_y = "../train_y.npy", test_x = "../test_x.npy", test_y = "../test_y.npy");
  optimizer adam(lr = 0.005);
  shuffle true;
  epochs 2;
  batch 16;
  seed 9;
}
"""

MODEL = NET % 32 + TRAIN % "RMLP"
OTHER_NAME = (NET % 32).replace("RMLP", "Other") + TRAIN % "Other"
OTHER_SHAPE = NET % 24 + TRAIN % "RMLP"
STEPS_PER_EPOCH = 13  # 200 samples in batches of 16: 12 full and one of 8


def read(path):
    with open(path, "rb") as f:
        return f.read()


def train(work, name, model, args):
    d = os.path.join(work, name)
    os.makedirs(d, exist_ok=True)
    return R.train(model, d, args, cwd=d), d


def with_nan(blob, name):
    """The safetensors file `blob` with the first value of tensor `name`
    replaced by a NaN (everything else, the metadata included, kept)."""
    (n,) = struct.unpack("<Q", blob[:8])
    off = 8 + n + json.loads(blob[8:8 + n].decode())[name]["data_offsets"][0]
    return blob[:off] + struct.pack("<f", float("nan")) + blob[off + 4:]


def csv_rows(path):
    with open(path) as f:
        lines = f.read().strip().splitlines()
    return lines[0].split(","), [line.split(",") for line in lines[1:]]


def main():
    R.snnc_path()
    chk = R.Checker()
    rng = np.random.default_rng(4)
    centers = rng.standard_normal((3, 16))
    y = rng.integers(0, 3, 260)
    x = (centers[y] + rng.standard_normal((260, 16)) * 1.2).astype(np.float32)
    with tempfile.TemporaryDirectory() as work:
        cc = R.quick_cc(work)
        np.save(os.path.join(work, "train_x.npy"), x[:200])
        np.save(os.path.join(work, "train_y.npy"), y[:200])
        np.save(os.path.join(work, "test_x.npy"), x[200:])
        np.save(os.path.join(work, "test_y.npy"), y[200:])
        ccx = ["--cc", cc]

        pa, da = train(work, "a", MODEL, ["--epochs", "2", "--step-log", "steps.csv"] + ccx)
        pb1, db = train(work, "b", MODEL, ["--epochs", "1", "--step-log", "steps1.csv"] + ccx)
        for p, what in ((pa, "2 epochs"), (pb1, "1 epoch")):
            chk.check(p.returncode == 0, "train %s: %s" % (what, p.stderr.strip()))
        if pa.returncode or pb1.returncode:
            chk.finish()
        _, rows_b1 = csv_rows(os.path.join(db, "metrics.csv"))
        chk.check(len(rows_b1) == 1, "metrics.csv after 1 epoch has 1 row (got %d)" % len(rows_b1))
        ckpt1 = read(os.path.join(db, "checkpoint.safetensors"))
        shutil.copytree(db, os.path.join(work, "after1"))  # for the refusals below
        pb2, _ = train(work, "b", MODEL, ["--epochs", "2", "--resume", "--step-log", "steps2.csv"] + ccx)
        chk.check(pb2.returncode == 0, "resume for epoch 2: %s" % pb2.stderr.strip())
        if pb2.returncode:
            chk.finish()
        chk.check("resumed from" in pb2.stdout and "after epoch 1" in pb2.stdout,
                  "the resumed run says where it resumed from (stdout: %r)" % pb2.stdout[:200])

        # the weights: byte for byte
        wa = read(os.path.join(da, "weights.safetensors"))
        wb = read(os.path.join(db, "weights.safetensors"))
        chk.check(wa == wb, "weights.safetensors of the resumed run is byte-identical to the unbroken run's")
        ta, ma = R.read_safetensors(os.path.join(da, "checkpoint.safetensors"))
        tb, mb = R.read_safetensors(os.path.join(db, "checkpoint.safetensors"))
        chk.check(sorted(ta) == sorted(tb), "the checkpoints hold the same tensors")
        chk.check(any(k.startswith("optimizer.") for k in ta), "the checkpoint holds the optimizer's state")
        for k in sorted(set(ta) & set(tb)):
            chk.same(tb[k], ta[k], "checkpoint tensor %s after the resume" % k)
        for k in ("epochs_done", "optimizer_steps", "seed", "network", "format"):
            chk.check(ma.get(k) == mb.get(k), "checkpoint metadata %s: %r vs %r" % (k, mb.get(k), ma.get(k)))
        chk.check(ma.get("optimizer_steps") == str(2 * STEPS_PER_EPOCH),
                  "optimizer_steps is %d (got %r)" % (2 * STEPS_PER_EPOCH, ma.get("optimizer_steps")))
        # the dropout masks matter: without dropout the same run ends elsewhere
        pn, dn = train(work, "nodrop", MODEL.replace("|> dropout(0.3) ", ""), ["--epochs", "2"] + ccx)
        chk.check(pn.returncode == 0 and read(os.path.join(dn, "weights.safetensors")) != wa,
                  "dropout changes the result (so the test covers its masks)")

        # the step logs
        _, sa = csv_rows(os.path.join(da, "steps.csv"))
        _, s1 = csv_rows(os.path.join(db, "steps1.csv"))
        _, s2 = csv_rows(os.path.join(db, "steps2.csv"))
        chk.check(len(sa) == 2 * STEPS_PER_EPOCH, "the unbroken step log has %d steps" % (2 * STEPS_PER_EPOCH))
        chk.check(s1 == sa[:STEPS_PER_EPOCH], "the first run's steps equal the unbroken run's first epoch")
        chk.check(s2 == sa[STEPS_PER_EPOCH:],
                  "the resumed run's step log is steps %d..%d of epoch 2 with the unbroken run's losses "
                  "(got first %r, expected %r)" % (STEPS_PER_EPOCH + 1, 2 * STEPS_PER_EPOCH,
                                                   s2[:1], sa[STEPS_PER_EPOCH:STEPS_PER_EPOCH + 1]))

        # metrics.csv: one row per epoch, the same but for the timings
        ha, ra = csv_rows(os.path.join(da, "metrics.csv"))
        hb, rb = csv_rows(os.path.join(db, "metrics.csv"))
        chk.check(ha == hb, "metrics.csv headers agree")
        chk.check(len(rb) == 2 and [r[0] for r in rb] == ["1", "2"],
                  "metrics.csv after the resume has one row per epoch (got %s)" % [r[0] for r in rb])
        timing = {ha.index(c) for c in ("seconds", "samples_per_s") if c in ha}
        strip = lambda rows: [[v for i, v in enumerate(r) if i not in timing] for r in rows]  # noqa: E731
        chk.check(strip(rb) == strip(ra), "metrics.csv rows equal the unbroken run's but for timings:\n%s\n%s"
                  % (rb, ra))
        chk.check(strip(rb[:1]) == strip(rows_b1), "the first row is kept from the first run")

        # refusals: each in a copy of the folder after epoch 1
        count = [0]

        def refuse(label, ckpt_bytes, must_say, model=MODEL, args=()):
            count[0] += 1
            d = os.path.join(work, "refuse%d" % count[0])
            shutil.copytree(os.path.join(work, "after1"), d)
            path = os.path.join(d, "checkpoint.safetensors")
            if ckpt_bytes is None:
                os.remove(path)
            else:
                with open(path, "wb") as f:
                    f.write(ckpt_bytes)
            before = {f: read(os.path.join(d, f)) for f in sorted(os.listdir(d))
                      if os.path.isfile(os.path.join(d, f)) and f != "model.snn"}
            p = R.train(model, d, ["--epochs", "2", "--resume"] + list(args) + ccx, cwd=d)
            msg = p.stderr.strip().replace(d, "DIR")
            chk.check(p.returncode != 0, "resume from %s is refused (exit %d)" % (label, p.returncode))
            chk.check(any(s in msg for s in must_say) and "DIR/checkpoint.safetensors" in msg,
                      "resume from %s: the message names the file and says %s (got: %r)" % (label, must_say, msg))
            print("resume from %s: %s" % (label, msg.splitlines()[0] if msg else "(no message)"))
            after = {f: read(os.path.join(d, f)) for f in before}
            chk.check(after == before, "resume from %s leaves the folder's files (checkpoint, weights, "
                      "metrics, curves) as they were" % label)

        refuse("no checkpoint", None, ["no checkpoint"])
        refuse("a truncated checkpoint", ckpt1[:len(ckpt1) // 2], ["truncated", "short", "end of file",
                                                                   "out of range"])
        garbled = bytearray(ckpt1)
        garbled[8:40] = b"{\"garbage\": [1, 2, 3,,, }}}}}}}}"
        refuse("a checkpoint with a garbled header", bytes(garbled), ["JSON", "json", "header", "expected"])
        refuse("an empty checkpoint", b"", ["truncated", "short", "empty", "size", "header"])
        po, do = train(work, "other", OTHER_NAME, ["--epochs", "1"] + ccx)
        chk.check(po.returncode == 0, "train the other network: %s" % po.stderr.strip())
        if po.returncode == 0:
            refuse("a checkpoint of another network", read(os.path.join(do, "checkpoint.safetensors")),
                   ["network 'Other'"])
            ps, ds = train(work, "shape", OTHER_SHAPE, ["--epochs", "1"] + ccx)
            if ps.returncode == 0:
                refuse("a checkpoint of the same name with other shapes",
                       read(os.path.join(ds, "checkpoint.safetensors")), ["shape"])
        for name in ("fc1.weight", "optimizer.v.fc1.weight"):
            refuse("a checkpoint with NaN in %s" % name, with_nan(ckpt1, name), ["NaN", "nan", "not finite"])
        refuse("a weights file", read(os.path.join(da, "weights.safetensors")), ["not an snnc checkpoint"])
        refuse("a checkpoint of another seed", ckpt1, ["seed"], args=("--seed", "10"))
    chk.finish()


if __name__ == "__main__":
    main()
