#!/usr/bin/env python3
"""Writes the corpus of malformed NIR files into this folder, and EXPECTED:
"file<TAB>a substring of the error snnc must print". Run it again after
changing a case; the files are committed so that the corpus runs where
h5py is missing (the sanitizer build), by tests/nir/run_bad.py.

With --seeds DIR it writes valid files instead, the fuzz target's seeds
(fuzz/corpus/nir: every node type the importer reads, a nested graph,
recurrences, gzip-compressed datasets).

Each case varies valid.nir (Input [4] -> Affine [3, 4] -> LIF -> Output),
written here by hand with h5py in the nir package's layout, so that a
case can break what the nir package would refuse to write.
"""
import os
import sys

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
S = h5py.string_dtype()
cases = []


def case(name, expected):
    def wrap(fn):
        cases.append((name, expected, fn))
        return fn
    return wrap


def node(g, name, type_, **fields):
    n = g.create_group(name)
    n.create_dataset("type", data=type_, dtype=S)
    for k, v in fields.items():
        if isinstance(v, str):
            n.create_dataset(k, data=v, dtype=S)
        else:
            n.create_dataset(k, data=np.asarray(v))
    return n


def graph(parent, name, nodes, edges):
    g = parent.create_group(name)
    g.create_dataset("type", data="NIRGraph", dtype=S)
    ng = g.create_group("nodes")
    for nm, (t, f) in nodes.items():
        node(ng, nm, t, **f)
    g.create_dataset("edges", data=np.array(edges, dtype=object).reshape(-1, 2) if edges else np.zeros((0, 2)),
                     dtype=S if edges else None)
    return g


def lif(n=3, **over):
    f = dict(tau=np.full(n, 1e-3), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n))
    f.update(over)
    return ("LIF", f)


def affine(o=3, i=4, **over):
    f = dict(weight=np.full((o, i), 0.5, np.float32), bias=np.zeros(o, np.float32))
    f.update(over)
    return ("Affine", f)


def valid_nodes():
    return {"input": ("Input", dict(shape=np.array([4]))), "fc": affine(), "lif": lif(),
            "output": ("Output", dict(shape=np.array([3])))}


VALID_EDGES = [("input", "fc"), ("fc", "lif"), ("lif", "output")]


def write(path, nodes=None, edges=None, extra=None):
    with h5py.File(path, "w", libver="latest") as f:
        f.create_dataset("version", data="1.0.4", dtype=S)
        graph(f, "node", valid_nodes() if nodes is None else nodes, VALID_EDGES if edges is None else edges)
        if extra:
            extra(f)


def with_node(name, value):
    n = valid_nodes()
    n[name] = value
    return n


@case("valid.nir", None)
def _(p):
    write(p)


@case("not_hdf5.nir", "not a NIR file: not HDF5")
def _(p):
    open(p, "w").write("network N { }\n")


@case("empty.nir", "not a NIR file: not HDF5")
def _(p):
    open(p, "wb").close()


@case("truncated.nir", "truncated or damaged")
def _(p):
    write(p)
    data = open(p, "rb").read()
    open(p, "wb").write(data[:len(data) // 3])


@case("heap_overrun.nir", "a global heap of its HDF5 structures runs past the end of the file, or its objects past")
def _(p):
    # the strings' heap claims an object larger than itself (libhdf5 1.10
    # would copy past the heap: what fuzz_nir found)
    write(p)
    data = bytearray(open(p, "rb").read())
    g = data.find(b"GCOL\x01\x00\x00\x00")
    data[g + 16 + 8:g + 16 + 16] = (0x50000).to_bytes(8, "little")
    open(p, "wb").write(bytes(data))


@case("heap_free_space_zero.nir", "a global heap of its HDF5 structures runs past the end of the file, or its "
      "objects past")
def _(p):
    # the strings' heap ends with free space of size 0 (libhdf5 1.10 would
    # walk it forever: what fuzz_nir found)
    write(p)
    data = bytearray(open(p, "rb").read())
    g = data.find(b"GCOL\x01\x00\x00\x00")
    pos = g + 16
    while int.from_bytes(data[pos:pos + 2], "little") != 0:
        pos += 16 + (int.from_bytes(data[pos + 8:pos + 16], "little") + 7) // 8 * 8
    data[pos + 8:pos + 16] = bytes(8)
    open(p, "wb").write(bytes(data))


@case("string_length_lies.nir", "node 'fc' (?): dataset 'type' holds a string longer than 1024 bytes")
def _(p):
    # the length of the variable-length string 'type' says 2 GiB (libhdf5
    # 1.10 would allocate it: what fuzz_nir found)
    write(p)
    with h5py.File(p, "r") as f:
        at = f["node/nodes/fc/type"].id.get_offset()
    data = bytearray(open(p, "rb").read())
    data[at:at + 4] = (0x7FFFFFFF).to_bytes(4, "little")
    open(p, "wb").write(bytes(data))


@case("strings_chunked.nir", "node 'fc' (Affine): dataset 'padding' keeps its strings in chunks")
def _(p):
    def fix(f):
        f["node/nodes/fc"].create_dataset("padding", data=np.array(["same"], dtype=object), dtype=S, chunks=(1,),
                                          compression="gzip")
    write(p, extra=fix)


@case("signature_only.nir", "HDF5 cannot open it")
def _(p):
    open(p, "wb").write(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)


@case("no_node_group.nir", "it has no group 'node'")
def _(p):
    with h5py.File(p, "w", libver="latest") as f:
        f.create_dataset("version", data="1.0.4", dtype=S)


@case("node_is_dataset.nir", "'node' is not a group")
def _(p):
    with h5py.File(p, "w", libver="latest") as f:
        f.create_dataset("node", data=np.zeros(3))


@case("top_not_graph.nir", "the top node is a LIF, not a NIRGraph")
def _(p):
    with h5py.File(p, "w", libver="latest") as f:
        t, fl = lif()
        node(f, "node", t, **fl)


@case("missing_type.nir", "node 'fc' (?): it has no dataset 'type'")
def _(p):
    n = valid_nodes()
    write(p, n, extra=lambda f: f["node/nodes/fc"].__delitem__("type"))


@case("type_not_string.nir", "node 'fc' (?): its dataset 'type' is not one string")
def _(p):
    def fix(f):
        del f["node/nodes/fc/type"]
        f["node/nodes/fc"].create_dataset("type", data=np.array([1, 2]))
    write(p, extra=fix)


@case("unknown_type.nir", "node 'fc' (Banana): unknown node type")
def _(p):
    write(p, with_node("fc", ("Banana", dict(weight=np.zeros((3, 4))))))


@case("missing_weight.nir", "node 'fc' (Affine): it has no dataset 'weight'")
def _(p):
    write(p, with_node("fc", ("Affine", dict(bias=np.zeros(3)))))


@case("weight_1d.nir", "node 'fc' (Affine): dataset 'weight' must be [out, in]")
def _(p):
    write(p, with_node("fc", affine(weight=np.zeros(12, np.float32))))


@case("weight_mismatch.nir", "node 'fc' (Affine): dataset 'weight' takes 5 inputs, its input has 4")
def _(p):
    write(p, with_node("fc", affine(i=5)))


@case("bias_wrong.nir", "node 'fc' (Affine): dataset 'bias' has 2 values, the layer has 3 outputs")
def _(p):
    write(p, with_node("fc", affine(bias=np.zeros(2))))


@case("weight_strings.nir", "node 'fc' (Affine): dataset 'weight' holds strings, not numbers")
def _(p):
    write(p, with_node("fc", affine(weight="heavy")))


@case("weight_nan.nir", "node 'fc' (Affine): dataset 'weight' has NaN at flat index 5")
def _(p):
    w = np.full((3, 4), 0.5, np.float32)
    w[1, 1] = np.nan
    write(p, with_node("fc", affine(weight=w)))


@case("weight_huge_value.nir", "node 'fc' (Affine): dataset 'weight' has a value beyond float's range")
def _(p):
    w = np.full((3, 4), 0.5)
    w[0, 0] = 1e300
    write(p, with_node("fc", affine(weight=w)))


@case("weight_compound.nir", "node 'fc' (Affine): dataset 'weight' holds neither numbers nor strings")
def _(p):
    def fix(f):
        del f["node/nodes/fc/weight"]
        f["node/nodes/fc"].create_dataset("weight", data=np.zeros((3, 4), dtype=[("a", "f4"), ("b", "i4")]))
    write(p, extra=fix)


@case("weight_lzf.nir", "compressed with a filter this HDF5 lacks")
def _(p):
    def fix(f):
        del f["node/nodes/fc/weight"]
        f["node/nodes/fc"].create_dataset("weight", data=np.full((3, 4), 0.5, np.float32), compression="lzf")
    write(p, extra=fix)


@case("huge_dataset.nir", "node 'fc' (Affine): dataset 'weight' is too large")
def _(p):
    def fix(f):
        del f["node/nodes/fc/weight"]
        # chunks never written: a tiny file that claims 2^31 values
        f["node/nodes/fc"].create_dataset("weight", shape=(1 << 16, 1 << 15), dtype="f4", chunks=(64, 64),
                                          compression="gzip")
    write(p, extra=fix)


@case("many_values.nir", "more than 134217728 in all")
def _(p):
    def fix(f):
        for k in range(3):
            f["node/nodes/fc"].create_dataset("extra%d" % k, shape=(1 << 26,), dtype="f4", chunks=(1 << 16,),
                                              compression="gzip")
    write(p, extra=fix)


@case("dims_9.nir", "node 'fc' (Affine): dataset 'weight' has 9 dimensions (at most 8 are read)")
def _(p):
    def fix(f):
        del f["node/nodes/fc/weight"]
        f["node/nodes/fc"].create_dataset("weight", data=np.zeros((1,) * 9, np.float32))
    write(p, extra=fix)


@case("long_name.nir", "longer than 1024 bytes")
def _(p):
    n = valid_nodes()
    n["x" * 2000] = n.pop("fc")
    write(p, n, [("input", "x" * 2000), ("x" * 2000, "lif"), ("lif", "output")])


@case("edge_unknown.nir", "edge 2 ('fc' -> 'ghost'): there is no node 'ghost'")
def _(p):
    write(p, edges=[("input", "fc"), ("fc", "ghost"), ("lif", "output")])


@case("edges_bad_shape.nir", "its dataset 'edges' must be [n, 2] strings")
def _(p):
    def fix(f):
        del f["node/edges"]
        f["node"].create_dataset("edges", data=np.array(["input", "fc", "lif"], dtype=object), dtype=S)
    write(p, extra=fix)


@case("edges_numbers.nir", "its dataset 'edges' must be [n, 2] strings")
def _(p):
    def fix(f):
        del f["node/edges"]
        f["node"].create_dataset("edges", data=np.zeros((3, 2)))
    write(p, extra=fix)


@case("edge_into_input.nir", "node 'input' (Input): an edge leads into the graph's Input")
def _(p):
    write(p, edges=VALID_EDGES + [("lif", "input")])


@case("instant_cycle.nir", "an instantaneous cycle")
def _(p):
    n = valid_nodes()
    n["fc2"] = affine(o=3, i=3)
    n["fc3"] = affine(o=3, i=3)
    write(p, n, [("input", "fc"), ("fc", "fc2"), ("fc2", "fc3"), ("fc3", "fc2"), ("fc2", "lif"), ("lif", "output")])


@case("unreachable.nir", "node 'fc2' (Affine): it cannot be reached from the graph's Input")
def _(p):
    n = valid_nodes()
    n["fc2"] = affine(o=3, i=3)
    write(p, n, VALID_EDGES + [("fc2", "lif")])


@case("two_inputs.nir", "the graph has 2 Input and 1 Output nodes")
def _(p):
    n = valid_nodes()
    n["input2"] = ("Input", dict(shape=np.array([4])))
    write(p, n, VALID_EDGES + [("input2", "fc")])


@case("absurd_input_shape.nir", "node 'input' (Input): its output [100000, 100000] would be empty or too large")
def _(p):
    write(p, with_node("input", ("Input", dict(shape=np.array([100000, 100000])))))


@case("input_shape_zero.nir", "dataset 'shape' must hold sizes from 1 to 2147483647, it has 0")
def _(p):
    write(p, with_node("input", ("Input", dict(shape=np.array([0])))))


@case("tau_zero.nir", "node 'lif' (LIF): dataset 'tau' must be positive, it has 0 at flat index 1")
def _(p):
    write(p, with_node("lif", lif(tau=np.array([1e-3, 0, 1e-3]))))


@case("tau_shape.nir", "node 'lif' (LIF): dataset 'tau' has shape [2], but the layer's input is [3]")
def _(p):
    write(p, with_node("lif", lif(tau=np.full(2, 1e-3))))


@case("lif_no_threshold.nir", "node 'lif' (LIF): it has no dataset 'v_threshold'")
def _(p):
    f = lif()[1]
    del f["v_threshold"]
    write(p, with_node("lif", ("LIF", f)))


@case("coefficient_overflow.nir", "node 'lif' (LIF): the leak 1 - dt / tau comes to -1e+46 at neuron 0, which float "
      "cannot hold")
def _(p):
    write(p, with_node("lif", lif(tau=np.full(3, 1e-50))))


@case("soft_link.nir", "node 'fc' (Affine): member 'weight' is a soft link")
def _(p):
    def fix(f):
        f["node/nodes/fc/w2"] = f["node/nodes/fc/weight"][()]
        del f["node/nodes/fc/weight"]
        f["node/nodes/fc/weight"] = h5py.SoftLink("/node/nodes/fc/w2")
    write(p, extra=fix)


@case("external_link.nir", "node 'fc' (Affine): member 'weight' is an external link")
def _(p):
    def fix(f):
        del f["node/nodes/fc/weight"]
        f["node/nodes/fc/weight"] = h5py.ExternalLink("other.h5", "/weight")
    write(p, extra=fix)


@case("external_storage.nir", "node 'fc' (Affine): dataset 'weight' keeps its data outside the file")
def _(p):
    def fix(f):
        del f["node/nodes/fc/weight"]
        f["node/nodes/fc"].create_dataset("weight", shape=(3, 4), dtype="f4", external=[("weights.bin", 0, 48)])
    write(p, extra=fix)


@case("conv_bad_padding.nir", "node 'conv' (Conv2d): dataset 'padding' must be numbers, 'same' or 'valid'")
def _(p):
    n = valid_nodes()
    n["input"] = ("Input", dict(shape=np.array([1, 4, 4])))
    n["conv"] = ("Conv2d", dict(weight=np.ones((2, 1, 3, 3), np.float32), bias=np.zeros(2, np.float32), stride=1,
                                padding="banana", dilation=1, groups=1))
    n["flat"] = ("Flatten", dict(start_dim=0, end_dim=-1))
    n["fc"] = affine(i=8)
    write(p, n, [("input", "conv"), ("conv", "flat"), ("flat", "fc"), ("fc", "lif"), ("lif", "output")])


@case("conv_same_even.nir", "node 'conv' (Conv2d): padding 'same' with an even kernel (2 x 2) needs a stride of 1")
def _(p):
    n = valid_nodes()
    n["input"] = ("Input", dict(shape=np.array([1, 4, 4])))
    n["conv"] = ("Conv2d", dict(weight=np.ones((2, 1, 2, 2), np.float32), bias=np.zeros(2, np.float32), stride=2,
                                padding="same", dilation=1, groups=1))
    write(p, n, [("input", "conv"), ("conv", "fc"), ("fc", "lif"), ("lif", "output")])


@case("conv_stride_zero.nir", "node 'conv' (Conv2d): dataset 'stride' must hold integers from 1 to 65536, it has 0")
def _(p):
    n = valid_nodes()
    n["input"] = ("Input", dict(shape=np.array([1, 4, 4])))
    n["conv"] = ("Conv2d", dict(weight=np.ones((2, 1, 3, 3), np.float32), bias=np.zeros(2, np.float32),
                                stride=np.array([0, 1]), padding=0, dilation=1, groups=1))
    write(p, n, [("input", "conv"), ("conv", "fc"), ("fc", "lif"), ("lif", "output")])


@case("conv_groups.nir", "with 3 groups does not fit its input [2, 4, 4]")
def _(p):
    n = valid_nodes()
    n["input"] = ("Input", dict(shape=np.array([2, 4, 4])))
    n["conv"] = ("Conv2d", dict(weight=np.ones((3, 1, 3, 3), np.float32), bias=np.zeros(3, np.float32), stride=1,
                                padding=0, dilation=1, groups=3))
    write(p, n, [("input", "conv"), ("conv", "fc"), ("fc", "lif"), ("lif", "output")])


@case("pool_padding.nir", "node 'pool' (AvgPool2d): its padding [2, 2] is more than half its kernel [2, 2]")
def _(p):
    n = valid_nodes()
    n["input"] = ("Input", dict(shape=np.array([1, 4, 4])))
    n["pool"] = ("AvgPool2d", dict(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([2, 2])))
    write(p, n, [("input", "pool"), ("pool", "fc"), ("fc", "lif"), ("lif", "output")])


@case("flatten_partial.nir", "node 'fc' (Affine): needs a flat input of 4 values, its input is [2, 12]")
def _(p):
    n = valid_nodes()
    n["input"] = ("Input", dict(shape=np.array([2, 3, 4])))
    n["flat"] = ("Flatten", dict(start_dim=1, end_dim=-1))
    write(p, n, [("input", "flat"), ("flat", "fc"), ("fc", "lif"), ("lif", "output")])


@case("flatten_range.nir", "node 'flat' (Flatten): start_dim 1 and end_dim 3 do not fit its input [2, 3, 4]")
def _(p):
    n = valid_nodes()
    n["input"] = ("Input", dict(shape=np.array([2, 3, 4])))
    n["flat"] = ("Flatten", dict(start_dim=1, end_dim=3))
    write(p, n, [("input", "flat"), ("flat", "fc"), ("fc", "lif"), ("lif", "output")])


@case("dense_not_flat.nir", "node 'fc' (Affine): needs a flat input of 4 values, its input is [2, 2, 1]")
def _(p):
    write(p, with_node("input", ("Input", dict(shape=np.array([2, 2, 1])))))


@case("conv1d.nir", "node 'conv' (Conv1d): needs an input [channels, length], its input is [4]")
def _(p):
    n = valid_nodes()
    n["conv"] = ("Conv1d", dict(weight=np.ones((2, 1, 3), np.float32), bias=np.zeros(2, np.float32), stride=1,
                                padding=0, dilation=1, groups=1))
    write(p, n, [("input", "conv"), ("conv", "fc"), ("fc", "lif"), ("lif", "output")])


@case("delay_per_neuron.nir",
      "node 'd' (Delay): its delay of 0.00025 s at flat index 1 is not a whole number of steps")
def _(p):
    n = valid_nodes()
    n["d"] = ("Delay", dict(delay=np.array([1e-4, 2.5e-4, 1e-4])))
    write(p, n, [("input", "fc"), ("fc", "d"), ("d", "lif"), ("lif", "output")])


@case("delay_per_neuron_shape.nir", "node 'd' (Delay): dataset 'delay' has shape [2], but the layer's input is [3]")
def _(p):
    n = valid_nodes()
    n["d"] = ("Delay", dict(delay=np.array([1e-4, 2e-4])))
    write(p, n, [("input", "fc"), ("fc", "d"), ("d", "lif"), ("lif", "output")])


@case("delay_per_neuron_negative.nir",
      "node 'd' (Delay): its delay of -0.0001 s at flat index 2 is not a whole number")
def _(p):
    n = valid_nodes()
    n["d"] = ("Delay", dict(delay=np.array([1e-4, 2e-4, -1e-4])))
    write(p, n, [("input", "fc"), ("fc", "d"), ("d", "lif"), ("lif", "output")])


@case("delay_per_neuron_cycle.nir", "an instantaneous cycle")
def _(p):
    """a Delay of 0 steps for one neuron: the cycle through it has no delay"""
    n = valid_nodes()
    eye = np.eye(3, dtype=np.float32)
    n["sum"] = ("Linear", dict(weight=eye))
    n["d"] = ("Delay", dict(delay=np.array([0, 1e-4, 1e-4])))
    n["rec"] = ("Linear", dict(weight=eye))
    write(p, n, [("input", "fc"), ("fc", "sum"), ("sum", "d"), ("d", "rec"), ("rec", "sum"), ("d", "lif"),
                 ("lif", "output")])


@case("delay_fraction.nir", "node 'd' (Delay): its delay of 0.00015 s is not a whole number of steps of dt = 0.0001 s")
def _(p):
    n = valid_nodes()
    n["d"] = ("Delay", dict(delay=np.full(3, 1.5e-4)))
    write(p, n, [("input", "fc"), ("fc", "d"), ("d", "lif"), ("lif", "output")])


@case("nested_two_inputs.nir", "'sub' is a nested graph with other than one Input")
def _(p):
    with h5py.File(p, "w", libver="latest") as f:
        g = graph(f, "node", {"input": ("Input", dict(shape=np.array([4]))), "fc": affine(),
                              "output": ("Output", dict(shape=np.array([3])))},
                  [("input", "fc"), ("fc", "sub"), ("sub", "output")])
        graph(g["nodes"], "sub", {"a": ("Input", dict(shape=np.array([3]))), "b": ("Input", dict(shape=np.array([3]))),
                                  "lif": lif(), "o": ("Output", dict(shape=np.array([3])))},
              [("a", "lif"), ("b", "lif"), ("lif", "o")])


@case("nested_too_deep.nir", "graphs are nested more than 16 deep")
def _(p):
    with h5py.File(p, "w", libver="latest") as f:
        g = graph(f, "node", {"input": ("Input", dict(shape=np.array([4]))), "output": ("Output",
                                                                                         dict(shape=np.array([4])))},
                  [("input", "g"), ("g", "output")])
        for k in range(20):
            g = graph(g["nodes"], "g", {"input": ("Input", dict(shape=np.array([4]))),
                                        "output": ("Output", dict(shape=np.array([4])))},
                      [("input", "g"), ("g", "output")] if k < 19 else [("input", "output")])


@case("nodes_not_group.nir", "its member 'nodes' is not a group")
def _(p):
    with h5py.File(p, "w", libver="latest") as f:
        g = f.create_group("node")
        g.create_dataset("type", data="NIRGraph", dtype=S)
        g.create_dataset("nodes", data=np.zeros(2))


def seeds(d):
    os.makedirs(d, exist_ok=True)

    def neurons(n):
        return {"lif": lif(n), "if": ("IF", dict(r=np.ones(n), v_threshold=np.ones(n))),
                "li": ("LI", dict(tau=np.full(n, 1e-3), r=np.ones(n), v_leak=np.zeros(n))),
                "i": ("I", dict(r=np.ones(n))),
                "cubalif": ("CubaLIF", dict(tau_syn=np.full(n, 1e-3), tau_mem=np.full(n, 2e-3), r=np.ones(n),
                                            v_leak=np.zeros(n), v_threshold=np.ones(n), w_in=np.ones(n))),
                "cubali": ("CubaLI", dict(tau_syn=np.full(n, 1e-3), tau_mem=np.full(n, 2e-3), r=np.ones(n),
                                          v_leak=np.zeros(n), w_in=np.ones(n))),
                "thr": ("Threshold", dict(threshold=np.full(n, 0.5))), "scale": ("Scale", dict(scale=np.arange(n) + 1.0)),
                "delay": ("Delay", dict(delay=np.full(n, 2e-4)))}
    # a chain of every neuron and elementwise node, with a recurrence
    ns = {"input": ("Input", dict(shape=np.array([4]))), "fc": affine(o=3, i=4),
          "rec": ("Linear", dict(weight=np.eye(3, dtype=np.float32))), "output": ("Output", dict(shape=np.array([3])))}
    ns.update(neurons(3))
    chain = ["input", "fc", "scale", "lif", "if", "li", "i", "cubalif", "cubali", "delay", "thr", "output"]
    with h5py.File(os.path.join(d, "chain.nir"), "w", libver="latest") as f:
        graph(f, "node", ns, list(zip(chain, chain[1:])) + [("lif", "rec"), ("rec", "lif")])
    # a nested graph (the shape of an RSynaptic export)
    with h5py.File(os.path.join(d, "nested.nir"), "w", libver="latest") as f:
        g = graph(f, "node", {"input": ("Input", dict(shape=np.array([4]))), "fc": affine(),
                              "output": ("Output", dict(shape=np.array([3])))},
                  [("input", "fc"), ("fc", "rs"), ("rs", "output")])
        graph(g["nodes"], "rs", {"input": ("Input", dict(shape=np.array([3]))), "lif": neurons(3)["cubalif"],
                                 "w_rec": affine(o=3, i=3), "output": ("Output", dict(shape=np.array([3])))},
              [("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")])
    # a conv net, gzip-compressed
    with h5py.File(os.path.join(d, "conv.nir"), "w", libver="latest") as f:
        g = f.create_group("node")
        g.create_dataset("type", data="NIRGraph", dtype=S)
        nd = g.create_group("nodes")
        node(nd, "input", "Input", shape=np.array([1, 1, 6, 6]))
        c = node(nd, "conv", "Conv2d", stride=np.array([1, 1]), padding="same", dilation=np.array([2, 2]), groups=1)
        c.create_dataset("weight", data=np.ones((2, 1, 3, 3), np.float32), compression="gzip")
        c.create_dataset("bias", data=np.zeros(2, np.float32), compression="gzip")
        node(nd, "lif", "LIF", **{k: np.full((2, 6, 6), v) for k, v in
                                  dict(tau=1e-3, r=1.0, v_leak=0.0, v_threshold=1.0).items()})
        node(nd, "sum", "SumPool2d", kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0]))
        node(nd, "avg", "AvgPool2d", kernel_size=np.array([3, 3]), stride=np.array([3, 3]), padding=np.array([1, 1]))
        node(nd, "flat", "Flatten", start_dim=0, end_dim=-1)
        node(nd, "fc", "Affine", weight=np.ones((3, 2), np.float32), bias=np.zeros(3, np.float32))
        node(nd, "output", "Output", shape=np.array([3]))
        order = ["input", "conv", "lif", "sum", "avg", "flat", "fc", "output"]
        g.create_dataset("edges", data=np.array(list(zip(order, order[1:])), dtype=object), dtype=S)
    # a Conv1d padded 'same' with an even kernel, then a Delay per neuron (0 to 3 steps) on a recurrence
    with h5py.File(os.path.join(d, "delays.nir"), "w", libver="latest") as f:
        g = f.create_group("node")
        g.create_dataset("type", data="NIRGraph", dtype=S)
        nd = g.create_group("nodes")
        node(nd, "input", "Input", shape=np.array([2, 5]))
        node(nd, "conv", "Conv1d", weight=np.ones((2, 2, 4), np.float32), bias=np.zeros(2, np.float32), stride=1,
             padding="same", dilation=1, groups=1, input_shape=5)
        node(nd, "d", "Delay", delay=np.array([[0, 1e-4, 2e-4, 3e-4, 1e-4], [2e-4, 0, 0, 1e-4, 3e-4]]))
        node(nd, "lif", "LIF", **{k: np.full((2, 5), v) for k, v in
                                  dict(tau=1e-3, r=1.0, v_leak=0.0, v_threshold=1.0).items()})
        node(nd, "dr", "Delay", delay=np.array([[1e-4, 2e-4, 1e-4, 1e-4, 2e-4], [1e-4, 1e-4, 2e-4, 2e-4, 1e-4]]))
        node(nd, "output", "Output", shape=np.array([2, 5]))
        edges = [("input", "conv"), ("conv", "d"), ("d", "lif"), ("lif", "dr"), ("dr", "lif"), ("lif", "output")]
        g.create_dataset("edges", data=np.array(edges, dtype=object), dtype=S)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--seeds":
        seeds(sys.argv[2])
        return
    for f in os.listdir(HERE):
        if f.endswith(".nir") or f == "EXPECTED":
            os.remove(os.path.join(HERE, f))
    lines = []
    for name, expected, fn in cases:
        fn(os.path.join(HERE, name))
        if expected:
            lines.append("%s\t%s" % (name, expected))
    with open(os.path.join(HERE, "EXPECTED"), "w") as f:
        f.write("# file<TAB>a substring of the error (make_corpus.py writes this file)\n")
        f.write("\n".join(lines) + "\n")
    print("%d cases" % len(lines))


if __name__ == "__main__":
    main()
