#!/usr/bin/env python3
"""gpu_check_data.py: the Fashion-MNIST part of bench/gpu_check.sh.

  gpu_check_data.py SRC DST N        DST gets the first N training images and
                                     labels of the IDX files in SRC (gzipped,
                                     their headers' counts set to N)
  gpu_check_data.py compare OUT REF  the MLP example's training on the GPU
                                     (OUT/mlp, OUT/mlp-steps.csv) against the
                                     portable target's (REF/ref,
                                     REF/ref-steps.csv): the first step's loss
                                     within 1e-5 relative (the same weights;
                                     the products differ by rounding), the
                                     last epoch's test accuracy within 0.5
                                     points; exit 1 where not

Standard library only.
"""
import csv
import gzip
import os
import struct
import sys


def subset(src, dst, n):
    for name, item, head in (("train-images-idx3-ubyte.gz", 784, 16), ("train-labels-idx1-ubyte.gz", 1, 8)):
        with gzip.open(os.path.join(src, name)) as f:
            h = f.read(head)
            data = f.read(n * item)
        if len(data) != n * item:
            sys.exit("%s holds fewer than %d samples" % (name, n))
        with gzip.open(os.path.join(dst, name), "wb") as f:
            f.write(h[:4] + struct.pack(">I", n) + h[8:] + data)


def compare(out, ref):
    try:
        acc = [100 * float(list(csv.DictReader(open(os.path.join(d, "metrics.csv"))))[-1]["test_acc"])
               for d in (os.path.join(out, "mlp"), os.path.join(ref, "ref"))]
        loss = [float(list(csv.DictReader(open(p)))[0]["loss"])
                for p in (os.path.join(out, "mlp-steps.csv"), os.path.join(ref, "ref-steps.csv"))]
    except (OSError, IndexError, KeyError, ValueError) as e:
        print("FAIL: %s" % e)
        return 1
    ok_loss = abs(loss[0] - loss[1]) <= 1e-5 * abs(loss[1])
    ok_acc = abs(acc[0] - acc[1]) <= 0.5
    print("first loss %.9g against %.9g: %s" % (loss[0], loss[1], "ok" if ok_loss else "FAIL"))
    print("test accuracy %.2f %% against %.2f %%: %s" % (acc[0], acc[1], "ok" if ok_acc else "FAIL"))
    return 0 if ok_loss and ok_acc else 1


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "compare":
        sys.exit(compare(sys.argv[2], sys.argv[3]))
    if len(sys.argv) == 4:
        subset(sys.argv[1], sys.argv[2], int(sys.argv[3]))
        return
    sys.exit(__doc__)


if __name__ == "__main__":
    main()
