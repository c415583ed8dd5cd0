#!/usr/bin/env python3
"""numpy_reference.py HELPER WORKDIR: NumPy as an independent reference for
the runtime's file formats.

.npy: NumPy writes arrays of every supported dtype, several shapes (0-d,
empty, 8-d) and all three format versions; the C library reads each and
writes it back (rt_helper npy2npy); np.load must give the array converted
to float32 by NumPy's own astype, and the bytes must equal what np.save
writes for that float32 array. Arrays the library must refuse (big-endian,
Fortran order, object, structured, complex, ...) are checked for a clear
message.

safetensors: there is no safetensors package here, so files are written by
hand (struct + json + numpy) with F32, F64, F16 and BF16 tensors, names that
need JSON escapes, metadata and tensors whose JSON order differs from their
data order; the library reads and rewrites them (rt_helper st2st, which
keeps the metadata), and this script parses the result itself. Each tensor is also loaded through the
.inc loader (rt_helper stload) and compared.

Exits 77 (skipped) when NumPy cannot be imported.
"""
import json
import os
import struct
import subprocess
import sys

try:
    import numpy as np
except ImportError as exc:
    print(f"skipped: numpy cannot be imported by {sys.executable}: {exc}")
    sys.exit(77)

HELPER, WORK = sys.argv[1], sys.argv[2]
FAILURES = []


def check(cond, what):
    if not cond:
        FAILURES.append(what)
        print("FAIL", what)


def helper(*args):
    p = subprocess.run([HELPER, *args], capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


def same_values(a, b):
    """Equal shape, dtype and values, NaN equal to NaN, -0 distinct from 0."""
    return (a.shape == b.shape and a.dtype == b.dtype and
            a.tobytes() == b.tobytes())


def as_f32(arr):
    with np.errstate(over="ignore", invalid="ignore"):
        return arr.astype(np.float32, order="C")  # keeps 0-d arrays 0-d


# ---- .npy ----

SHAPES = [(), (1,), (7,), (3, 4), (2, 0, 3), (2, 3, 4, 5),
          (1, 2, 1, 2, 1, 2, 1, 2)]
DTYPES = ["<f4", "<f8", "|u1", "|i1", "<i2", "<u2", "<i4", "<u4", "<i8",
          "<u8", "|b1"]


def sample(rng, dtype, shape):
    dt = np.dtype(dtype)
    n = int(np.prod(shape))
    if dt.kind == "f":
        v = rng.standard_normal(n) * 1000
        special = [np.nan, np.inf, -np.inf, -0.0, 1e-40, 3.4e38]
        if dt.itemsize == 8:
            special += [1e300, -1e300, 1e-310, 0.1]
        v[: min(n, len(special))] = special[: min(n, len(special))]
        return v.astype(dt).reshape(shape)
    if dt.kind == "b":
        return (rng.integers(0, 2, n) == 1).reshape(shape)
    info = np.iinfo(dt)
    v = rng.integers(info.min, info.max, n, dtype=dt, endpoint=True)
    v[: min(n, 2)] = [info.min, info.max][: min(n, 2)]
    return v.reshape(shape)


def check_npy_roundtrip(rng):
    count = 0
    versions = [None, (1, 0), (2, 0), (3, 0)]
    for dtype in DTYPES:
        for shape in SHAPES:
            version = versions[count % len(versions)]
            count += 1
            arr = sample(rng, dtype, shape)
            src = os.path.join(WORK, "in.npy")
            out = os.path.join(WORK, "out.npy")
            if version is None:
                np.save(src, arr)
            else:
                with open(src, "wb") as f:
                    np.lib.format.write_array(f, arr, version=version)
            what = f"npy {dtype} {shape} version {version}"
            rc, msg = helper("npy2npy", src, out)
            check(rc == 0, f"{what}: C read/write failed: {msg}")
            if rc:
                continue
            back = np.load(out, allow_pickle=False)
            want = as_f32(arr)
            check(same_values(back, want), f"{what}: values differ")
            ref = os.path.join(WORK, "ref.npy")
            np.save(ref, want)
            with open(ref, "rb") as a, open(out, "rb") as b:
                check(a.read() == b.read(),
                      f"{what}: bytes differ from np.save of the float32 array")
    return count


def check_npy_refused():
    cases = [
        (np.arange(6, dtype=">f4").reshape(2, 3), "big-endian"),
        (np.asfortranarray(np.arange(6, dtype="<f4").reshape(2, 3)),
         "fortran_order True"),
        (np.array([1, "a", None], dtype=object), "object"),
        (np.zeros(2, dtype=[("a", "<f4"), ("b", "<i4")]), "structured"),
        (np.zeros(2, dtype="<c8"), "unsupported dtype '<c8'"),
        (np.zeros(2, dtype="<U3"), "unsupported dtype '<U3'"),
        (np.zeros(2, dtype="<f2"), "unsupported dtype '<f2'"),
        (np.zeros([1] * 9, dtype="<f4"), "more than 8 dimensions"),
    ]
    for arr, want in cases:
        path = os.path.join(WORK, "refused.npy")
        np.save(path, arr, allow_pickle=True)
        rc, msg = helper("fail", "npy", path)
        check(rc == 0 and want in msg and msg.startswith(path + ": "),
              f"npy {arr.dtype} {arr.shape}: expected an error with "
              f"'{want}', got rc {rc}: {msg.strip()}")
    return len(cases)


# ---- safetensors ----

def st_raw(arr, dtype):
    """The bytes of arr stored as dtype, and what they mean in float32."""
    a32 = np.asarray(arr, dtype=np.float32)
    if dtype == "F32":
        return a32.astype("<f4").tobytes(), a32
    if dtype == "F64":
        a64 = np.asarray(arr, dtype=np.float64) + 1e-9
        return a64.astype("<f8").tobytes(), as_f32(a64)
    if dtype == "F16":
        a16 = a32.astype("<f2")
        return a16.tobytes(), a16.astype(np.float32)
    bits = (a32.view(np.uint32) >> 16).astype("<u2")  # BF16 by truncation
    return bits.tobytes(), (bits.astype(np.uint32) << 16).view(np.float32)


def write_st(path, tensors, metadata=None):
    """tensors: (name, dtype, shape, raw). Data goes in list order; the
    JSON lists the tensors in reverse, metadata first."""
    offsets, at = {}, 0
    for name, _, _, raw in tensors:
        offsets[name] = [at, at + len(raw)]
        at += len(raw)
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, _ in reversed(tensors):
        header[name] = {"dtype": dtype, "shape": list(shape),
                        "data_offsets": offsets[name]}
    text = json.dumps(header).encode()  # non-ASCII as \u escapes
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text +
                b"".join(t[3] for t in tensors))


def parse_st(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    pairs = json.loads(blob[8:8 + n], object_pairs_hook=lambda p: p)
    return n, pairs, blob[8 + n:]


def check_st_output(path, expected, metadata):
    n, pairs, data = parse_st(path)
    check(n % 8 == 0, f"{path}: header length {n} is not a multiple of 8")
    if metadata:
        check(pairs and pairs[0][0] == "__metadata__" and
              pairs[0][1] == sorted(metadata.items()),
              f"{path}: metadata {pairs[0] if pairs else None} is not "
              f"{sorted(metadata.items())} (first, sorted)")
        pairs = pairs[1:]
    names = [k for k, _ in pairs]
    check(names == sorted(expected), f"{path}: names not sorted: {names}")
    at = 0
    for name, info in pairs:
        info = dict(info)
        want = expected[name]
        begin, end = info["data_offsets"]
        check(info["dtype"] == "F32" and begin == at and
              tuple(info["shape"]) == want.shape,
              f"{path}: tensor {name!r}: header {info}")
        got = np.frombuffer(data[begin:end], dtype="<f4").reshape(want.shape)
        check(same_values(got.astype(np.float32), want),
              f"{path}: tensor {name!r}: values differ")
        at = end
    check(at == len(data), f"{path}: {len(data) - at} bytes after the data")


def check_safetensors(rng):
    names = ["layer.0.weight", "caf\u00e9", "emoji\U0001F600",
             'quote"back\\slash', "tab\tnewline\n", "", "scalar", "empty"]
    shapes = [(3, 4), (5,), (2, 3, 4), (1, 1), (2,), (3,), (), (0, 4)]
    tensors, expected, count = [], {}, 0
    for i, (name, shape) in enumerate(zip(names, shapes)):
        dtype = ["F32", "F64", "F16", "BF16"][i % 4]
        raw, want = st_raw(rng.standard_normal(shape) * 10, dtype)
        tensors.append((name, dtype, shape, raw))
        expected[name] = want.reshape(shape)
    src = os.path.join(WORK, "in.safetensors")
    out = os.path.join(WORK, "out.safetensors")
    meta = {"note": "caf\u00e9 \"x\"\n\U0001F600", "format": "pt",
            "": "empty key"}
    write_st(src, tensors, meta)
    rc, msg = helper("st2st", src, out)
    check(rc == 0, f"safetensors read/write failed: {msg}")
    if rc == 0:
        check_st_output(out, expected, meta)
    count += 1
    for name, dtype, shape, _ in tensors:
        npy = os.path.join(WORK, "loaded.npy")
        rc, msg = helper("stload", src, name, npy, *map(str, shape))
        check(rc == 0, f"stload {name!r}: {msg}")
        if rc == 0:
            check(same_values(np.load(npy), expected[name]),
                  f"stload {name!r} ({dtype}): values differ")
        count += 1
    # shape mismatch and NaN through the loader
    rc, msg = helper("stload", src, "layer.0.weight", npy, "4", "3")
    check(rc == 1 and "has shape [3, 4] but [4, 3] was expected" in msg,
          f"stload shape mismatch: {msg}")
    nan = np.array([1.0, np.nan], dtype="<f4")
    write_st(src, [("w", "F32", (2,), nan.tobytes())])
    rc, msg = helper("stload", src, "w", npy, "2")
    check(rc == 1 and "tensor 'w' has NaN at flat index 1" in msg,
          f"stload NaN: {msg}")
    return count + 2


def main():
    os.makedirs(WORK, exist_ok=True)
    rng = np.random.default_rng(20240601)
    n = check_npy_roundtrip(rng)
    n += check_npy_refused()
    n += check_safetensors(rng)
    print(f"numpy {np.__version__}: {n} cases, {len(FAILURES)} failures")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
