#!/usr/bin/env python3
"""make_corpus.py: writes the corpus of malformed event lists in this
folder (the input of a network with `encode events`), with its EXPECTED
manifest ("file<TAB>expected substring of the error"; a file named alone is
data a case refers to: the NAME.offsets.npy beside NAME.npy). An
expected message that starts with "offsets.npy: " is about that file.

The files are committed; run this again only to change the corpus
(/usr/bin/python3 tests/bad/events/make_corpus.py). It needs only the
standard library and writes each file byte by byte, wrong in one way.
Every case is read by `snnc run events.snn` (tests/events/run_bad.py),
whose input is [2, 3, 5] (2 polarities, 3 rows, 5 columns), T = 4 and
window 100, so valid events have 0 <= x < 5, 0 <= y < 3, p in {0, 1} and
0 <= t < 100, sorted by t within a sample.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

MODEL = """# the network every case of this corpus is given to
network Events {
  timesteps 4;
  input ev : [2, 3, 5] encode events(window = 100);
  out = ev |> flatten |> dense(3) |> LIF();
  output out readout count;
}
"""

CODES = {"i1": "b", "u1": "B", "b1": "B", "i2": "h", "u2": "H", "i4": "i", "u4": "I", "i8": "q", "u8": "Q",
         "f4": "f", "f8": "d"}


def npy(descr, shape, data):
    """A version 1.0 .npy file with this descr (Python text) and shape."""
    head = "{'descr': %s, 'fortran_order': False, 'shape': (%s), }" % (
        descr, "".join("%d, " % d for d in shape))
    head += " " * (-(10 + len(head) + 1) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(head)) + head.encode() + data


def table(rows, code="i8"):
    """[E, C] of one little-endian type."""
    cols = len(rows[0]) if rows else 4
    flat = [v for r in rows for v in r]
    return npy("'<%s'" % code, (len(rows), cols), struct.pack("<%d%s" % (len(flat), CODES[code]), *flat))


def structured(fields, rows, shape=None):
    """A structured array: fields [(name, code)], rows of values."""
    descr = "[%s]" % ", ".join("('%s', '%s%s')" % (n, "|" if c[1] == "1" else "<", c) for n, c in fields)
    fmt = "<" + "".join(CODES[c] for _, c in fields)
    data = b"".join(struct.pack(fmt, *r) for r in rows)
    return npy(descr, shape or (len(rows),), data)


def offsets(values, code="i8"):
    return npy("'<%s'" % code, (len(values),), struct.pack("<%d%s" % (len(values), CODES[code]), *values))


TONIC = [("x", "i8"), ("y", "i8"), ("p", "i8"), ("t", "i8")]
GOOD = [(1, 2, 0, 0), (4, 0, 1, 25), (3, 1, 1, 99)]

CASES = [
    ("x_outside.npy", table([(1, 2, 0, 0), (5, 0, 1, 10)]),
     "sample 0, event 1 (row 1): x = 5 is outside the input's width 5 (0 to 4)"),
    ("y_negative.npy", structured(TONIC, [(1, -1, 0, 3)]),
     "sample 0, event 0 (row 0): y = -1 is outside the input's height 3 (0 to 2)"),
    ("polarity_two.npy", table([(1, 2, 2, 0)]), "sample 0, event 0 (row 0): polarity p = 2; it must be 0 (off) or 1 (on)"),
    ("polarity_minus_one.npy", structured(TONIC, [(1, 2, -1, 0)]), "sample 0, event 0 (row 0): polarity p = -1"),
    ("t_negative.npy", table([(0, 0, 0, -7)]), "sample 0, event 0 (row 0): t = -7 is negative; a sample's times start at 0"),
    ("t_past_window.npy", table([(0, 0, 0, 5), (0, 0, 1, 100)]),
     "sample 0, event 1 (row 1): t = 100 is past the window: the network bins t from 0 to 99"),
    ("t_unsorted.npy", table([(0, 0, 0, 5), (0, 0, 0, 60), (1, 1, 1, 50), (2, 2, 0, 5)]),
     "sample 1, event 1 (row 3): t = 5 is before the previous event's t = 50"),
    ("t_unsorted.offsets.npy", offsets([0, 2, 4]), None),
    ("t_huge_u8.npy", structured([("x", "u2"), ("y", "u2"), ("p", "b1"), ("t", "u8")], [(0, 0, 1, 2 ** 64 - 1)]),
     "row 0: t value above 2^63 - 1"),
    ("float_table.npy", table([(1.0, 2.0, 0.0, 0.0)], "f4"), "the data are float32; they must be an integer type"),
    ("three_columns.npy", table([(1, 2, 0)]), "an event list is a structured array with fields x, y, p, t or an [E, 4] integer array (columns x, y, p, t); this one has 3 columns"),
    ("missing_p.npy", structured([("x", "i8"), ("y", "i8"), ("t", "i8")], [(1, 2, 0)]),
     "the structured array has no field 'p'"),
    ("float_t.npy", structured([("x", "i8"), ("y", "i8"), ("p", "i8"), ("t", "f8")], [(1, 2, 0, 0.5)]),
     "field 't' is float64; it must be an integer type"),
    ("duplicate_field.npy", npy("[('x', '<i8'), ('x', '<i8')]", (0,), b""), "field 'x' appears twice in the dtype"),
    ("subarray_field.npy", npy("[('x', '<i4', (2,)), ('y', '<i4')]", (0,), b""),
     "fields with a shape of their own are not supported"),
    ("seventeen_fields.npy", npy("[%s]" % ", ".join("('f%d', '<i1')" % i for i in range(17)), (0,), b""),
     "more than 16 fields in the structured dtype"),
    ("no_fields.npy", npy("[]", (0,), b""), "the structured dtype has no fields"),
    ("structured_2d.npy", npy("[('x', '<i8'), ('y', '<i8'), ('p', '<i8'), ('t', '<i8')]", (1, 1), b"\0" * 32),
     "a structured array must have one dimension"),
    ("big_endian_field.npy", npy("[('x', '>i8'), ('y', '<i8'), ('p', '<i8'), ('t', '<i8')]", (0,), b""),
     "big-endian data (descr '>i8') is not supported"),
    ("truncated_records.npy", structured(TONIC, GOOD)[:-8], "truncated: header says 3 record"),
    ("three_dims.npy", npy("'<i8'", (1, 1, 4), b"\0" * 32), "expected a table of integers: [N], [N, C] with C from 1 to 16, or a structured array of integer fields; got 3 dimensions"),
    ("seventeen_columns.npy", table([tuple(range(17))]),
     "expected a table of integers: [N], [N, C] with C from 1 to 16, or a structured array of integer fields; "
     "got 2 dimensions (1x17)"),
    ("offsets_start.npy", table(GOOD), "offsets.npy: offset 0 is 1; the first sample starts at event 0"),
    ("offsets_start.offsets.npy", offsets([1, 3]), None),
    ("offsets_decrease.npy", table(GOOD), "offsets.npy: offset 2 is 1, below offset 1 (2): offsets must not decrease"),
    ("offsets_decrease.offsets.npy", offsets([0, 2, 1, 3]), None),
    ("offsets_total.npy", table(GOOD), "offsets.npy: the last offset is 2 but the event file has 3 events"),
    ("offsets_total.offsets.npy", offsets([0, 1, 2]), None),
    ("offsets_empty.npy", table(GOOD), "offsets.npy: the offsets of N samples are N + 1 integers ([N + 1]: 0, the end of each sample); this file has 0 rows of 1 column"),
    ("offsets_empty.offsets.npy", offsets([]), None),
    ("offsets_float.npy", table(GOOD), "offsets.npy: the data are float64; they must be an integer type"),
    ("offsets_float.offsets.npy", offsets([0.0, 3.0], "f8"), None),
    ("offsets_table.npy", table(GOOD), "offsets.npy: the offsets of N samples are N + 1 integers ([N + 1]: 0, the end of each sample); this file has 2 rows of 2 columns"),
    ("offsets_table.offsets.npy", table([(0, 1), (2, 3)]), None),
]


def main():
    for name in os.listdir(HERE):
        if name.endswith(".npy"):
            os.remove(os.path.join(HERE, name))
    lines = ["# file<TAB>substring of the expected error (generated by make_corpus.py); a file alone is data",
             "events.snn"]
    with open(os.path.join(HERE, "events.snn"), "w") as f:
        f.write(MODEL)
    for name, data, expected in CASES:
        with open(os.path.join(HERE, name), "wb") as f:
            f.write(data)
        lines.append(name if expected is None else "%s\t%s" % (name, expected))
    # the control: two valid samples in a structured array, as tonic writes them
    for name, data in (("valid.npy", structured([("x", "i2"), ("y", "i2"), ("p", "b1"), ("t", "i8")], GOOD)),
                       ("valid.offsets.npy", offsets([0, 1, 3]))):
        with open(os.path.join(HERE, name), "wb") as f:
            f.write(data)
        lines.append(name)
    with open(os.path.join(HERE, "EXPECTED"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
