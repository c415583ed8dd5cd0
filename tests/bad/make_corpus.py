#!/usr/bin/env python3
"""make_corpus.py: writes the corpora of malformed files in tests/bad/npy,
tests/bad/safetensors and tests/bad/idx, with their EXPECTED manifests
("file<TAB>expected substring of the error").

The files are committed; run this again only to change the corpus
(/usr/bin/python3 tests/bad/make_corpus.py). It needs nothing but the
standard library, builds every file byte by byte so that each is wrong in
exactly one way, and keeps each under 4 KiB. Gzip files are made with
mtime 0, so the bytes depend only on the zlib that compressed them. tests/runtime/run_bad.c checks
that the runtime rejects every file with its expected message.
"""
import gzip
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def npy(header, data=b"", major=1, minor=0, pad=True, hlen=None):
    """A .npy file: magic, version, header length, header, data."""
    text = header.encode("latin-1")
    prefix = 10 if major == 1 else 12
    if pad:
        text += b" " * (-(prefix + len(text) + 1) % 64) + b"\n"
    size = len(text) if hlen is None else hlen
    length = struct.pack("<H" if major == 1 else "<I", size)
    return b"\x93NUMPY" + bytes([major, minor]) + length + text + data


def f4(*values):
    return struct.pack("<%df" % len(values), *values)


def hdr(descr="'<f4'", fortran="False", shape="(2, 3)"):
    return ("{'descr': %s, 'fortran_order': %s, 'shape': %s, }"
            % (descr, fortran, shape))


NPY = [
    ("empty.npy", b"", "too short for a .npy file"),
    ("bad_magic.npy", b"\x93NUMPX\x01\x00" + npy(hdr())[8:] + f4(*range(6)),
     "not a .npy file (bad magic)"),
    ("version_4.npy", npy(hdr(), f4(*range(6)), major=4),
     "unsupported .npy version 4.0"),
    ("header_len_lies.npy", npy(hdr(), f4(*range(6)), hlen=4000),
     "truncated: header length is 4000 but only"),
    ("huge_header_len.npy", npy(hdr(), f4(*range(6)), major=2,
                                hlen=0x7FFFFFFF),
     "header length 2147483647 exceeds the 1 MiB limit"),
    ("big_endian.npy", npy(hdr("'>f4'"), f4(*range(6))),
     "big-endian data (descr '>f4') is not supported"),
    ("fortran_order.npy", npy(hdr(fortran="True"), f4(*range(6))),
     "fortran_order True is not supported"),
    ("object_dtype.npy", npy(hdr("'|O'"), b"\x00" * 48),
     "object and void arrays (descr '|O') cannot be loaded"),
    ("structured.npy", npy(hdr("[('a', '<f4'), ('b', '<f4')]"), f4(*range(12))),
     "structured dtypes (descr is a list) are not supported"),
    ("complex.npy", npy(hdr("'<c8'"), f4(*range(12))),
     "unsupported dtype '<c8'"),
    ("pipe_f4.npy", npy(hdr("'|f4'"), f4(*range(6))),
     "descr '|f4' gives no byte order for a 4-byte type"),
    ("nine_dims.npy", npy(hdr(shape="(1, 1, 1, 1, 1, 1, 1, 1, 1)"), f4(0)),
     "more than 8 dimensions"),
    ("negative_dim.npy", npy(hdr(shape="(-1, 3)"), f4(*range(6))),
     "negative dimension in shape"),
    ("absurd_dim.npy", npy(hdr(shape="(100000000000000000000,)"), f4(0)),
     "dimension 100000000000000000000 is too large"),
    ("dims_overflow.npy",
     npy(hdr(shape="(1099511627776, 1099511627776, 1099511627776)"), f4(0)),
     "shape 1099511627776x1099511627776x1099511627776 overflows"),
    ("truncated_data.npy", npy(hdr(shape="(3, 4)"), f4(*range(5))),
     "truncated: header says 3x4 float32 (48 bytes) but only 20 bytes of data follow"),
    ("trailing_garbage.npy", npy(hdr(), f4(*range(6)) + b"garbage"),
     "7 bytes of trailing data after the 2x3 float32 array (24 bytes)"),
    ("missing_shape.npy", npy("{'descr': '<f4', 'fortran_order': False}",
                              f4(0)),
     "header has no 'shape'"),
    ("unknown_key.npy", npy("{'descr': '<f4', 'fortran_order': False, "
                            "'shape': (), 'extra': 1}", f4(0)),
     "unknown key 'extra' in the header"),
    ("duplicate_key.npy", npy("{'descr': '<f4', 'descr': '<f4', "
                              "'fortran_order': False, 'shape': ()}", f4(0)),
     "duplicate key 'descr' in the header"),
    ("unterminated_dict.npy", npy("{'descr': '<f4', 'fortran_order': False, ",
                                  f4(0)),
     "unexpected end of header, expected a quoted string"),
    ("text_after_dict.npy", npy(hdr() + " import os", f4(*range(6))),
     "unexpected text after the header dict"),
    ("float_dim.npy", npy(hdr(shape="(2.5, 3)"), f4(*range(6))),
     "shape must be a tuple of integers"),
    ("nan_data.npy", npy(hdr(shape="(2, 2)"), f4(1, 2, float("nan"), 4)),
     "element [1, 0] (flat index 2) is NaN"),
    ("inf_f8.npy", npy(hdr("'<f8'", shape="(3,)"),
                       struct.pack("<3d", 1, 1e300, 2)),
     "element [1] (flat index 1) is +Inf"),
]


def st(header, data=b"", n=None, raw=False):
    """A safetensors file: 8-byte length, header JSON (or raw bytes), data."""
    text = header if raw else json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<Q", len(text) if n is None else n) + text + data


def t(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


W = f4(*range(6))  # 24 bytes: the data of "w", F32 [2, 3]

ST = [
    ("too_short.safetensors", b"\x10\x00\x00",
     "too short for a safetensors file"),
    ("huge_header_len.safetensors", st({}, n=1 << 62),
     "header length 4611686018427387904 exceeds the limit of 100 MiB"),
    ("header_past_eof.safetensors", st({"w": t("F32", [2, 3], 0, 24)}, W,
                                       n=1000),
     "header length 1000 is larger than the rest of the file"),
    ("bad_json.safetensors",
     st(b'{"w":{"dtype":"F32" "shape":[2,3],"data_offsets":[0,24]}}', W,
        raw=True),
     "malformed JSON header at byte 28: expected ',' or '}' in an object"),
    ("unterminated_string.safetensors", st(b'{"w', raw=True),
     "malformed JSON header at byte 9: unterminated string"),
    ("control_char.safetensors",
     st(b'{"w\x01":' + json.dumps(t("F32", [2, 3], 0, 24)).encode() + b"}",
        W, raw=True),
     "control character in a string"),
    ("bad_utf8.safetensors",
     st(b'{"w\xff":' + json.dumps(t("F32", [2, 3], 0, 24)).encode() + b"}",
        W, raw=True),
     "invalid UTF-8 in a string"),
    ("lone_surrogate.safetensors",
     st(b'{"w\\ud800":' + json.dumps(t("F32", [2, 3], 0, 24)).encode() +
        b"}", W, raw=True),
     "unpaired high surrogate"),
    ("deep_nesting.safetensors",
     st(b'{"__metadata__":' + b"[" * 200 + b"]" * 200 + b"}", raw=True),
     "nesting deeper than 64 levels"),
    ("text_after_json.safetensors",
     st(b'{"w":' + json.dumps(t("F32", [2, 3], 0, 24)).encode() + b"} {}",
        W, raw=True),
     "unexpected text after the JSON value"),
    ("top_level_array.safetensors", st([]), "the header must be a JSON object"),
    ("duplicate_names.safetensors",
     st(b'{"w":' + json.dumps(t("F32", [2, 3], 0, 24)).encode() + b',"w":' +
        json.dumps(t("F32", [2, 3], 24, 48)).encode() + b"}", W + W,
        raw=True),
     "duplicate tensor name 'w'"),
    ("wrong_dtype.safetensors", st({"w": t("I32", [2, 3], 0, 24)}, W),
     "tensor 'w' has dtype I32; only F32, F64, F16 and BF16 can be loaded"),
    ("unknown_dtype.safetensors", st({"w": t("F7", [2, 3], 0, 24)}, W),
     "tensor 'w' has unknown dtype 'F7'"),
    ("unknown_field.safetensors",
     st({"w": dict(t("F32", [2, 3], 0, 24), extra=1)}, W),
     "tensor 'w': unknown field 'extra'"),
    ("missing_offsets.safetensors", st({"w": {"dtype": "F32",
                                              "shape": [2, 3]}}, W),
     "tensor 'w' has no data_offsets"),
    ("negative_dim.safetensors", st({"w": t("F32", [-2, 3], 0, 24)}, W),
     "tensor 'w': shape element 0 is negative"),
    ("float_dim.safetensors", st({"w": t("F32", [2.0, 3], 0, 24)}, W),
     "tensor 'w': shape element 0 is not an integer"),
    ("nine_dims.safetensors", st({"w": t("F32", [1] * 9, 0, 4)}, f4(0)),
     "tensor 'w': shape has more than 8 dimensions"),
    ("shape_overflow.safetensors",
     st({"w": t("F32", [1 << 31, 1 << 31, 1 << 31], 0, 24)}, W),
     "tensor 'w': shape [2147483648, 2147483648, 2147483648] of F32 "
     "overflows a 64-bit byte count"),
    ("offsets_disagree.safetensors", st({"w": t("F32", [2, 3], 0, 20)},
                                        W[:20]),
     "tensor 'w': data_offsets [0, 20] span 20 bytes but shape [2, 3] of "
     "F32 needs 24"),
    ("reversed_offsets.safetensors", st({"w": t("F32", [0], 24, 0)}, W),
     "tensor 'w': data_offsets [24, 0] are reversed"),
    ("out_of_range.safetensors", st({"w": t("F32", [2, 3], 8, 32)}, W),
     "tensor 'w': data_offsets [8, 32] are out of range: the data region "
     "holds 24 bytes"),
    ("overlap.safetensors", st({"w": t("F32", [2, 3], 0, 24),
                                "v": t("F32", [2], 16, 24)}, W),
     "tensor 'v' (data_offsets [16, 24]) overlaps tensor 'w' "
     "(data_offsets [0, 24])"),
    ("gap.safetensors", st({"w": t("F32", [2, 3], 0, 24),
                            "v": t("F32", [1], 28, 32)}, W + f4(0, 1)),
     "gap of 4 bytes before tensor 'v': data bytes 24 to 28 belong to no "
     "tensor"),
    ("trailing_data.safetensors", st({"w": t("F32", [2, 3], 0, 24)},
                                     W + b"extra"),
     "5 bytes of data after the last tensor"),
    ("truncated_data.safetensors", st({"w": t("F32", [2, 3], 0, 24)},
                                      W[:10]),
     "tensor 'w': data_offsets [0, 24] are out of range: the data region "
     "holds 10 bytes"),
    ("metadata_not_string.safetensors",
     st({"__metadata__": {"epoch": 3}, "w": t("F32", [2, 3], 0, 24)}, W),
     "__metadata__ value of 'epoch' is not a string"),
    ("nan_data.safetensors",
     st({"w": t("F32", [2, 3], 0, 24)}, f4(0, 1, 2, float("nan"), 4, 5)),
     "tensor 'w': element [1, 0] (flat index 3) is NaN"),
    ("inf_f16.safetensors", st({"w": t("F16", [2], 0, 4)},
                               b"\x00\x3c\x00\xfc"),
     "tensor 'w': element [1] (flat index 1) is -Inf"),
]


def idx(dims, data=b"", dtype=0x08, ndim=None):
    """An IDX file: magic (0, 0, type, number of dimensions), big-endian
    sizes, data."""
    head = bytes([0, 0, dtype, len(dims) if ndim is None else ndim])
    return head + b"".join(struct.pack(">I", d) for d in dims) + data


def gz(blob):
    return gzip.compress(blob, compresslevel=9, mtime=0)


def flip(blob, at, mask=0xFF):
    b = bytearray(blob)
    b[at] ^= mask
    return bytes(b)


LABELS = idx([10], bytes(range(10)))   # a valid 10-label file
GZ_HEAD = gz(b"")[:10]                 # a gzip member header, mtime 0

IDX = [
    ("empty.idx", b"", "file is 0 bytes, too short for an IDX file"),
    ("short_magic.idx", b"\x00\x00\x08",
     "file is 3 bytes, too short for an IDX file"),
    ("bad_magic.idx", b"\x12\x34" + LABELS[2:],
     "not an IDX file (bad magic 0x12340801"),
    ("float_type.idx", idx([2], struct.pack(">2f", 1, 2), dtype=0x0D),
     "element type 0x0d (32-bit floats) is not supported"),
    ("unknown_type.idx", idx([2], b"ab", dtype=0x42),
     "element type 0x42 (not an IDX type) is not supported"),
    ("zero_dims.idx", idx([], b"x"), "0 dimensions; only 1 to 4"),
    ("five_dims.idx", idx([1] * 5, b"x"), "5 dimensions; only 1 to 4"),
    ("truncated_sizes.idx", idx([3, 4], ndim=3),
     "truncated: the header needs 12 bytes of sizes but only 8 follow"),
    ("huge_shape.idx", idx([65536, 65536, 2], b"x"),
     "shape 65536x65536x2 holds more than 2147483648 bytes (the limit)"),
    ("overflow_shape.idx", idx([0xFFFFFFFF] * 4, b"x"),
     "shape 4294967295x4294967295x4294967295x4294967295 holds more than"),
    ("truncated_data.idx", idx([2, 3, 3], bytes(10)),
     "truncated: header says 2x3x3 (18 bytes) but only 10 bytes of data "
     "follow"),
    ("trailing_data.idx", idx([5], bytes(8)),
     "3 bytes of trailing data after the 5 array (5 bytes)"),
    ("one_byte_short.idx", idx([2, 2, 2], bytes(8))[:-1],
     "truncated: header says 2x2x2 (8 bytes) but only 7 bytes"),
    # gzip
    ("only_gzip_magic.idx.gz", b"\x1f\x8b",
     "truncated gzip stream (the file ends inside it)"),
    ("truncated.idx.gz", gz(idx([300], bytes(range(256)) + bytes(44)))[:-20],
     "truncated gzip stream (the file ends inside it)"),
    ("bad_crc.idx.gz", flip(gz(LABELS), -8),
     "corrupt gzip data (incorrect data check)"),
    ("bad_length.idx.gz", flip(gz(LABELS), -4, 0x01),
     "corrupt gzip data (incorrect length check)"),
    ("bad_block_type.idx.gz", GZ_HEAD + b"\x07" + bytes(16),
     "corrupt gzip data (invalid block type)"),
    ("bad_method.idx.gz", b"\x1f\x8b\x09" + GZ_HEAD[3:] + bytes(16),
     "corrupt gzip data (unknown compression method)"),
    ("not_idx_inside.idx.gz", gz(b"hello, world"),
     "not an IDX file (bad magic 0x68656c6c"),
    ("empty_inside.idx.gz", gz(b""),
     "the decompressed data is 0 bytes, too short for an IDX file"),
    ("sizes_cut_inside.idx.gz", gz(idx([60000, 28, 28])[:9]),
     "truncated: the header needs 12 bytes of sizes but only 5 follow"),
    ("short_inside.idx.gz", gz(idx([100], bytes(50))),
     "truncated: header says 100 (100 bytes) but the decompressed data "
     "holds only 50"),
    ("header_lies.idx.gz", gz(idx([60000, 28, 28], bytes(100))),
     "truncated: header says 60000x28x28 (47040000 bytes) but a gzip file "
     "of"),
    ("trailing_inside.idx.gz", gz(idx([5], bytes(8))),
     "3 bytes of trailing data after the 5 array (5 bytes) in the "
     "decompressed stream"),
    ("bomb.idx.gz", gz(idx([16], bytes(3 << 20))),
     "more than 1048576 bytes of trailing data after the 16 array"),
    ("garbage_after.idx.gz", gz(LABELS) + b"junk",
     "4 bytes of trailing garbage after the gzip stream"),
    ("bad_second_member.idx.gz", gz(LABELS) + flip(gz(b"x"), -8),
     "corrupt gzip data (incorrect data check)"),
]


def write(folder, cases):
    path = os.path.join(HERE, folder)
    os.makedirs(path, exist_ok=True)
    for old in os.listdir(path):
        os.remove(os.path.join(path, old))
    lines = ["# file<TAB>substring of the expected error "
             "(generated by tests/bad/make_corpus.py)"]
    for name, blob, want in cases:
        assert len(blob) < 4096, name
        with open(os.path.join(path, name), "wb") as f:
            f.write(blob)
        lines.append(f"{name}\t{want}")
    with open(os.path.join(path, "EXPECTED"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    write("npy", NPY)
    write("safetensors", ST)
    write("idx", IDX)
    print(f"{len(NPY)} .npy, {len(ST)} .safetensors and {len(IDX)} IDX "
          "files written")
