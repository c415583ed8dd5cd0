#!/usr/bin/env python3
"""make_corpus.py: writes the corpus of malformed ONNX models in this
folder and its manifest EXPECTED ("file<TAB>expected substring of the
error").

The files are committed; run this again only to change the corpus
(/usr/bin/python3 tests/bad/onnx/make_corpus.py). It needs nothing but the
standard library: the protobuf is written field by field (the field numbers
of onnx.proto), so that each model is wrong in exactly one way, including
ways the onnx package would not let one write. Every model is a variation
of one small valid model (x [N, 4] -> Gemm -> snn::LIF), which imports.
tests/onnx/run_bad.py checks that snnc rejects each one with its message,
exit status 1, no crash and no output file.
"""
import os
import random
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

# ---- protobuf wire format ----


def varint(v):
    if v < 0:
        v += 1 << 64
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def key(field, wire):
    return varint(field << 3 | wire)


def f_int(field, v):
    return key(field, 0) + varint(v)


def f_bytes(field, b):
    if isinstance(b, str):
        b = b.encode()
    return key(field, 2) + varint(len(b)) + b


def f_float(field, v):
    return key(field, 5) + struct.pack("<f", v)


def f_packed_floats(field, vs):
    return f_bytes(field, struct.pack("<%df" % len(vs), *vs))


def f_packed_ints(field, vs):
    return f_bytes(field, b"".join(varint(v) for v in vs))


# ---- ONNX messages (onnx.proto field numbers) ----

FLOAT, INT32, INT64, FLOAT16, DOUBLE = 1, 6, 7, 10, 11
A_FLOAT, A_INT, A_STRING, A_TENSOR, A_INTS = 1, 2, 3, 4, 7


def kv(k, v):  # StringStringEntryProto
    return f_bytes(1, k) + f_bytes(2, v)


def tensor(name, dims, values=None, raw=None, dtype=FLOAT, typed=None, external=None):
    """TensorProto: dims (1), data_type (2), name (8), raw_data (9),
    float_data (4), int64_data (7), external_data (13), data_location (14)."""
    b = b"".join(f_int(1, d) for d in dims) + f_int(2, dtype) + f_bytes(8, name)
    if external is not None:
        b += b"".join(f_bytes(13, kv(k, v)) for k, v in external) + f_int(14, 1)
    elif typed == "float":
        b += f_packed_floats(4, values)
    elif typed == "int64":
        b += f_packed_ints(7, values)
    elif raw is not None:
        b += f_bytes(9, raw)
    else:
        fmt = {FLOAT: "f", INT32: "i", INT64: "q", DOUBLE: "d", FLOAT16: "e"}[dtype]
        b += f_bytes(9, struct.pack("<%d%s" % (len(values), fmt), *values))
    return b


def attr(name, value, kind=None):
    """AttributeProto: name (1), f (2), i (3), s (4), t (5), ints (8), type (20)."""
    b = f_bytes(1, name)
    if kind == "tensor":
        return b + f_bytes(5, value) + f_int(20, A_TENSOR)
    if isinstance(value, float):
        return b + f_float(2, value) + f_int(20, A_FLOAT)
    if isinstance(value, int):
        return b + f_int(3, value) + f_int(20, A_INT)
    if isinstance(value, (str, bytes)):
        return b + f_bytes(4, value) + f_int(20, A_STRING)
    return b + b"".join(f_int(8, v) for v in value) + f_int(20, A_INTS)


def node(op, inputs, outputs, name, domain="", attrs=()):
    """NodeProto: input (1), output (2), name (3), op_type (4), attribute (5), domain (7)."""
    b = b"".join(f_bytes(1, i) for i in inputs) + b"".join(f_bytes(2, o) for o in outputs)
    b += f_bytes(3, name) + f_bytes(4, op)
    b += b"".join(f_bytes(5, a) for a in attrs)
    if domain:
        b += f_bytes(7, domain)
    return b


def value_info(name, dims, elem=FLOAT):
    """ValueInfoProto: name (1), type (2): TypeProto.tensor_type (1):
    elem_type (1), shape (2): dim (1): dim_value (1) or dim_param (2)."""
    dim = b"".join(f_bytes(1, f_bytes(2, "N") if d is None else f_int(1, d)) for d in dims)
    tt = f_int(1, elem) + f_bytes(2, dim)
    return f_bytes(1, name) + f_bytes(2, f_bytes(1, tt))


def graph(nodes, inits=(), inputs=None, outputs=None, name="bad", sparse=()):
    """GraphProto: node (1), name (2), initializer (5), input (11), output (12),
    sparse_initializer (15)."""
    inputs = [value_info("x", [None, 4])] if inputs is None else inputs
    outputs = [value_info("y", [None, 3])] if outputs is None else outputs
    b = b"".join(f_bytes(1, n) for n in nodes) + f_bytes(2, name)
    b += b"".join(f_bytes(5, t) for t in inits)
    b += b"".join(f_bytes(15, t) for t in sparse)
    b += b"".join(f_bytes(11, v) for v in inputs) + b"".join(f_bytes(12, v) for v in outputs)
    return b


def model(g, opsets=(("", 17), ("snn", 1)), meta=(("snn.timesteps", "2"),), with_graph=True):
    """ModelProto: ir_version (1), producer_name (2), graph (7), opset_import (8),
    metadata_props (14). OperatorSetIdProto: domain (1), version (2)."""
    b = f_int(1, 8) + f_bytes(2, "make_corpus")
    if with_graph:
        b += f_bytes(7, g)
    b += b"".join(f_bytes(8, f_bytes(1, d) + f_int(2, v)) for d, v in opsets)
    b += b"".join(f_bytes(14, kv(k, v)) for k, v in meta)
    return b


# ---- the valid model and its variations ----

W = [0.1 * (i - 5) for i in range(12)]
BIAS = [0.5, -0.25, 0.125]


def gemm(x="x", w="fc.weight", b="fc.bias", out="h", attrs=None):
    return node("Gemm", [x, w, b], [out], "fc", attrs=[attr("transB", 1)] if attrs is None else attrs)


def lif(x="h", out="y", attrs=None, extra_inputs=(), op="LIF"):
    return node(op, [x] + list(extra_inputs), [out], "lif", "snn",
                [attr("tau", 2.0), attr("surrogate", "atan(2.0)")] if attrs is None else attrs)


def inits(w=None, b=None):
    return [w if w is not None else tensor("fc.weight", [3, 4], W),
            b if b is not None else tensor("fc.bias", [3], BIAS)]


def std(nodes=None, init=None, **kw):
    return model(graph([gemm(), lif()] if nodes is None else nodes, inits() if init is None else init), **kw)


def conv_model(conv_attrs, wdims=(2, 1, 3, 3), extra_nodes=(), out_dims=(None, 2, 6, 6), first=None):
    x = value_info("x", [None, 1, 6, 6])
    w = tensor("conv.weight", list(wdims), [0.1] * (wdims[0] * wdims[1] * wdims[2] * wdims[3]))
    nodes = ([first] if first else []) + [node("Conv", ["xp" if first else "x", "conv.weight"], ["c"], "conv",
                                               attrs=conv_attrs)]
    nodes += list(extra_nodes) or [node("LIF", ["c"], ["y"], "lif", "snn")]
    return model(graph(nodes, [w], [x], [value_info("y", list(out_dims))]))


CASES = []


def case(name, data, expected):
    CASES.append((name, data, expected))


def build():
    good = std()
    rnd = random.Random(1)

    case("valid.onnx", good, None)  # the control: run_bad.py checks that it runs

    # -- the file itself
    case("empty.onnx", b"", "the model has no graph")
    case("random_bytes.onnx", bytes(rnd.randrange(256) for _ in range(300)),
         "not an ONNX model (the protobuf does not parse")
    case("truncated.onnx", good[:len(good) * 2 // 3], "not an ONNX model (the protobuf does not parse")
    case("text_file.onnx", b"graph torch_jit (\n  %x[FLOAT, Nx4]\n) {\n}\n",
         "not an ONNX model (the protobuf does not parse")
    case("no_graph.onnx", model(b"", with_graph=False), "the model has no graph")

    # -- opsets and domains
    case("opset_too_old.onnx", std(opsets=(("", 11), ("snn", 1))),
         "opset 11 of the default domain; snnc reads opsets 13 to 17")
    case("opset_too_new.onnx", std(opsets=(("", 19), ("snn", 1))),
         "opset 19 of the default domain; snnc reads opsets 13 to 17")
    case("no_default_opset.onnx", std(opsets=(("snn", 1),)),
         "the model imports no opset of the default ONNX domain")
    case("snn_not_declared.onnx", std(opsets=(("", 17),)),
         "node 'lif' (snn::LIF): uses the domain snn, which the model's opset_import does not declare")
    case("unknown_domain.onnx", std(nodes=[gemm(), node("LIF", ["h"], ["y"], "lif", "com.example")],
                                    opsets=(("", 17), ("com.example", 1))),
         "node 'lif' (com.example::LIF): operators of domain 'com.example' are not supported")
    case("unknown_op.onnx", std(nodes=[gemm(), node("Softmax", ["h"], ["y"], "soft")]),
         "node 'soft' (Softmax): operator Softmax is not supported")
    case("unknown_snn_op.onnx", std(nodes=[gemm(), node("Izhikevich", ["h"], ["y"], "izh", "snn")]),
         "node 'izh' (snn::Izhikevich): unknown operator of domain snn")

    # -- tensors
    case("raw_data_short.onnx", std(init=inits(w=tensor("fc.weight", [3, 4], raw=b"\0" * 40))),
         "tensor 'fc.weight': raw_data holds 40 bytes, its dims and type need 48")
    case("raw_data_long.onnx", std(init=inits(b=tensor("fc.bias", [3], raw=b"\0" * 16))),
         "tensor 'fc.bias': raw_data holds 16 bytes, its dims and type need 12")
    case("typed_data_count.onnx", std(init=inits(w=tensor("fc.weight", [3, 4], W[:11], typed="float"))),
         "tensor 'fc.weight' holds 11 values, its dims need 12")
    case("dims_overflow.onnx", std(init=inits(w=tensor("fc.weight", [1 << 40, 1 << 40], raw=b""))),
         "tensor 'fc.weight' has dims that are negative or hold more than")
    case("negative_dim.onnx", std(init=inits(w=tensor("fc.weight", [-3, -4], raw=b""))),
         "tensor 'fc.weight' has dims that are negative or hold more than")
    # tiny files whose dims claim 2^31 floats: refused before anything that large is allocated
    case("huge_dims_raw.onnx", std(init=inits(w=tensor("fc.weight", [1 << 15, 1 << 16], raw=b""))),
         "tensor 'fc.weight': raw_data holds 0 bytes, its dims and type need 8589934592")
    case("huge_dims_typed.onnx", std(init=inits(w=tensor("fc.weight", [1 << 15, 1 << 16], [], typed="float"))),
         "tensor 'fc.weight' holds 0 values, its dims need 2147483648")
    case("nine_dims.onnx", std(init=inits(w=tensor("fc.weight", [1] * 9, [0.5]))),
         "tensor 'fc.weight' has 9 dimensions (at most 8)")
    case("float16_tensor.onnx", std(init=inits(b=tensor("fc.bias", [3], BIAS, dtype=FLOAT16))),
         "tensor 'fc.bias' has data type 10; snnc reads float, double, int32 and int64 tensors")
    case("nan_initializer.onnx", std(init=inits(w=tensor("fc.weight", [3, 4], W[:7] + [float("nan")] + W[8:]))),
         "initializer 'fc.weight' (for 'fc.weight') has NaN at flat index 7")
    case("inf_initializer.onnx", std(init=inits(b=tensor("fc.bias", [3], [0.0, float("-inf"), 1.0]))),
         "initializer 'fc.bias' (for 'fc.bias') has infinity at flat index 1")
    case("double_overflow.onnx", std(init=inits(b=tensor("fc.bias", [3], [0.0, 1e300, 1.0], dtype=DOUBLE))),
         "initializer 'fc.bias' (for 'fc.bias') has infinity at flat index 1")
    case("duplicate_initializer.onnx", std(init=inits() + [tensor("fc.bias", [3], BIAS)]),
         "initializer 'fc.bias' is defined twice")
    case("unnamed_initializer.onnx", std(init=inits() + [tensor("", [3], BIAS)]), "initializer 3 has no name")
    case("missing_initializer.onnx", std(init=[tensor("fc.bias", [3], BIAS)]),
         "node 'fc' (Gemm): the weight 'fc.weight' must be an initializer or a Constant")
    case("sparse_initializer.onnx",
         model(graph([gemm(), lif()], inits(), sparse=[f_bytes(1, tensor("s", [1], [1.0])) +
                                                      f_bytes(2, tensor("si", [1], [0], dtype=INT64)) +
                                                      f_int(3, 4)])),
         "sparse initializers are not supported")

    # -- external data
    def ext(loc, extra=()):
        return std(init=inits(w=tensor("fc.weight", [3, 4], external=[("location", loc)] + list(extra))))

    case("external_parent.onnx", ext("../EXPECTED"),
         "tensor 'fc.weight': external data location '../EXPECTED' is not a relative path inside the model's folder")
    case("external_absolute.onnx", ext("/etc/passwd"),
         "tensor 'fc.weight': external data location '/etc/passwd' is not a relative path inside the model's folder")
    case("external_dotdot_inside.onnx", ext("data/../../x.bin"),
         "external data location 'data/../../x.bin' is not a relative path inside the model's folder")
    case("external_missing.onnx", ext("no_such_file.bin"),
         "tensor 'fc.weight': cannot open its external data 'no_such_file.bin'")
    case("external_too_short.onnx", ext("external_too_short.bin"),
         "tensor 'fc.weight': its external data 'external_too_short.bin' holds fewer than 48 bytes at offset 0")
    case("external_too_short.bin", struct.pack("<8f", *W[:8]), None)
    case("external_offset_past_end.onnx", ext("external_too_short.bin", [("offset", "16")]),
         "holds fewer than 48 bytes at offset 16")
    case("external_huge.onnx", std(init=inits(w=tensor("fc.weight", [1 << 15, 1 << 16],
                                                       external=[("location", "external_too_short.bin")]))),
         "holds fewer than 8589934592 bytes at offset 0")
    case("external_length_lies.onnx", ext("external_too_short.bin", [("length", "32")]),
         "tensor 'fc.weight': external data length 32, but its dims need 48 bytes")
    case("external_offset_text.onnx", ext("external_too_short.bin", [("offset", "sixteen")]),
         "tensor 'fc.weight': external data offset 'sixteen' is not a number")
    case("external_no_location.onnx", std(init=inits(w=tensor("fc.weight", [3, 4], external=[("length", "48")]))),
         "tensor 'fc.weight': external data location '(none)' is not a relative path")

    # -- the graph
    case("cycle.onnx", std(nodes=[node("Gemm", ["y", "fc.weight", "fc.bias"], ["h"], "fc", attrs=[attr("transB", 1)]),
                                  lif(x="h", out="y")]),
         "node 'fc' (Gemm): input 'y' is not defined before this node (the graph must be in topological order")
    case("two_inputs.onnx", model(graph([gemm(), lif()], inits(),
                                        [value_info("x", [None, 4]), value_info("x2", [None, 4])])),
         "the graph has more than one input ('x' and 'x2'); snnc takes one")
    case("no_input.onnx", model(graph([gemm(), lif()], inits(), [])),
         "the graph has no input besides its initializers")
    case("two_outputs.onnx", model(graph([gemm(), lif()], inits(), None,
                                         [value_info("y", [None, 3]), value_info("h", [None, 3])])),
         "the graph must have one output, it has 2")
    case("output_not_computed.onnx", model(graph([gemm(), lif()], inits(), None, [value_info("z", [None, 3])])),
         "the output 'z' is not computed by the graph")
    case("output_twice.onnx", std(nodes=[gemm(), lif(), lif(x="h", out="h")]),
         "output 'h' is defined twice")
    case("input_negative_dim.onnx", model(graph([gemm(), lif()], inits(), [value_info("x", [None, -4])])),
         "the input 'x': dimension 2 must be a fixed positive size")
    case("input_dim_huge.onnx",
         model(graph([node("LIF", ["x"], ["y"], "lif", "snn")], [], [value_info("x", [None, 1 << 40, 1 << 40])])),
         "the input 'x': dimension 2 must be a fixed positive size")
    case("input_dims_overflow.onnx",
         model(graph([node("LIF", ["x"], ["y"], "lif", "snn")], [],
                     [value_info("x", [None, 1 << 20, 1 << 20, 1 << 20])])),
         "the input's size overflows")
    case("input_int64.onnx", model(graph([gemm(), lif()], inits(), [value_info("x", [None, 4], INT64)])),
         "the input 'x' must be a float tensor with a shape")
    case("input_rank1.onnx", model(graph([gemm(), lif()], inits(), [value_info("x", [None])])),
         "the input 'x' must have 2 to")
    case("constant_as_data.onnx", std(nodes=[gemm(x="fc.bias"), lif()]),
         "node 'fc' (Gemm): input 'fc.bias' is a constant; snnc needs a value computed from the network's input")
    case("node_without_output.onnx", std(nodes=[gemm(), node("LIF", ["h"], [], "lif", "snn")]),
         "node 'lif' (snn::LIF): has no output")

    # -- operators and attributes
    case("gemm_transA.onnx", std(nodes=[gemm(attrs=[attr("transA", 1), attr("transB", 1)]), lif()]),
         "node 'fc' (Gemm): only alpha = 1, beta = 1 and transA = 0 are supported")
    case("gemm_alpha.onnx", std(nodes=[gemm(attrs=[attr("alpha", 0.5), attr("transB", 1)]), lif()]),
         "node 'fc' (Gemm): only alpha = 1, beta = 1 and transA = 0 are supported")
    case("gemm_unknown_attr.onnx", std(nodes=[gemm(attrs=[attr("transB", 1), attr("broadcast", 1)]), lif()]),
         "node 'fc' (Gemm): attribute 'broadcast' is not supported")
    case("gemm_wrong_width.onnx", std(init=inits(w=tensor("fc.weight", [3, 5], [0.1] * 15))),
         "node 'fc' (Gemm): the weight 'fc.weight' takes 5 inputs, but its input has 4")
    case("gemm_bias_size.onnx", std(init=inits(b=tensor("fc.bias", [4], [0.1] * 4))),
         "node 'fc' (Gemm): the bias 'fc.bias' must have 3 values")
    case("conv_dilations.onnx", conv_model([attr("kernel_shape", [3, 3]), attr("pads", [1, 1, 1, 1]),
                                            attr("dilations", [2, 2])]),
         "node 'conv' (Conv): dilations other than 1 are not supported")
    case("conv_asymmetric_pads.onnx", conv_model([attr("kernel_shape", [3, 3]), attr("pads", [0, 0, 1, 1])]),
         "node 'conv' (Conv): pads 0,0,1,1 are not symmetric")
    case("conv_auto_pad.onnx", conv_model([attr("kernel_shape", [3, 3]), attr("auto_pad", "SAME_UPPER")]),
         "node 'conv' (Conv): auto_pad other than NOTSET or VALID is not supported")
    case("conv_weight_channels.onnx", conv_model([attr("pads", [1, 1, 1, 1])], wdims=(2, 3, 3, 3)),
         "node 'conv' (Conv): the weight 'conv.weight' [2,3,3,3] does not fit 1 input channels")
    case("conv_huge_stride.onnx", conv_model([attr("strides", [1 << 40, 1])]),
         "node 'conv' (Conv): attribute strides: 1099511627776 is out of range")
    case("conv_3d.onnx",
         model(graph([node("Conv", ["x", "w"], ["y"], "conv")], [tensor("w", [2, 1, 3, 3, 3], [0.1] * 54)],
                     [value_info("x", [None, 1, 6, 6, 6])], [value_info("y", [None, 2, 4, 4, 4])])),
         "node 'conv' (Conv): only 2-D convolutions of [N, C, H, W] are supported")
    case("maxpool_ceil_mode.onnx",
         conv_model([attr("pads", [1, 1, 1, 1])],
                    extra_nodes=[node("MaxPool", ["c"], ["y"], "pool", attrs=[attr("kernel_shape", [2, 2]),
                                                                              attr("ceil_mode", 1)])]),
         "node 'pool' (MaxPool): ceil_mode = 1 is not supported")
    case("avgpool_exclude_pad.onnx",
         conv_model([attr("pads", [1, 1, 1, 1])],
                    extra_nodes=[node("AveragePool", ["c"], ["y"], "pool",
                                      attrs=[attr("kernel_shape", [3, 3]), attr("pads", [1, 1, 1, 1])])]),
         "node 'pool' (AveragePool): padding is supported with count_include_pad = 1")
    pads = tensor("pads", [8], [0, 0, 1, 1, 0, 0, 1, 1], dtype=INT64)
    case("pad_before_maxpool.onnx",
         model(graph([node("Pad", ["x", "pads"], ["xp"], "pad", attrs=[attr("mode", "constant")]),
                      node("MaxPool", ["xp"], ["y"], "pool", attrs=[attr("kernel_shape", [2, 2])])],
                     [pads], [value_info("x", [None, 1, 6, 6])], [value_info("y", [None, 1, 4, 4])])),
         "node 'pool' (MaxPool): input 'xp' is the output of a Pad, which snnc supports only before a Conv or an "
         "AveragePool")
    case("pad_reflect.onnx",
         model(graph([node("Pad", ["x", "pads"], ["xp"], "pad", attrs=[attr("mode", "reflect")]),
                      node("AveragePool", ["xp"], ["y"], "pool", attrs=[attr("kernel_shape", [2, 2])])],
                     [pads], [value_info("x", [None, 1, 6, 6])], [value_info("y", [None, 1, 4, 4])])),
         "node 'pad' (Pad): only mode 'constant' is supported")
    case("pad_channels.onnx",
         model(graph([node("Pad", ["x", "pads"], ["xp"], "pad"),
                      node("AveragePool", ["xp"], ["y"], "pool", attrs=[attr("kernel_shape", [2, 2])])],
                     [tensor("pads", [8], [0, 1, 1, 1, 0, 1, 1, 1], dtype=INT64)],
                     [value_info("x", [None, 1, 6, 6])], [value_info("y", [None, 3, 4, 4])])),
         "node 'pad' (Pad): only the same padding on both sides of H and of W is supported")
    case("reshape_count.onnx",
         model(graph([node("Reshape", ["x", "shape"], ["r"], "reshape"), lif(x="r")],
                     [tensor("shape", [3], [-1, 3, 2], dtype=INT64)])),
         "node 'reshape' (Reshape): a shape of 6 values per sample does not fit its input's 4")
    case("reshape_batch.onnx",
         model(graph([node("Reshape", ["x", "shape"], ["r"], "reshape"), lif(x="r")],
                     [tensor("shape", [2], [2, -1], dtype=INT64)])),
         "node 'reshape' (Reshape): only a constant shape [N, d1, ...] with N 0, -1 or 1")
    case("flatten_axis.onnx", std(nodes=[node("Flatten", ["x"], ["f"], "flat", attrs=[attr("axis", 0)]),
                                         gemm(x="f"), lif()]),
         "node 'flat' (Flatten): only axis = 1 is supported")
    case("mul_by_tensor.onnx", std(nodes=[gemm(), node("Mul", ["h", "fc.bias"], ["y"], "mul")]),
         "node 'mul' (Mul): only a multiplication by a scalar constant is supported")
    case("batchnorm_training.onnx",
         std(nodes=[gemm(), node("BatchNormalization", ["h", "fc.bias", "fc.bias", "fc.bias", "fc.bias"], ["y"], "bn",
                                 attrs=[attr("training_mode", 1)])]),
         "node 'bn' (BatchNormalization): training_mode and the running-statistics outputs are not supported")
    case("dropout_ratio.onnx", std(nodes=[gemm(), node("Dropout", ["h"], ["y"], "drop", attrs=[attr("ratio", 1.5)])]),
         "node 'drop' (Dropout): the ratio must be in [0, 1)")

    # -- neuron nodes
    case("inject_surrogate.onnx",
         std(nodes=[gemm(), lif(attrs=[attr("surrogate", "atan(2.0)); network X {")])]),
         "node 'lif' (snn::LIF): attribute surrogate: a string must be a name or a surrogate such as atan(2.0)")
    case("inject_attr_name.onnx", std(nodes=[gemm(), lif(attrs=[attr("tau = 1.0) |> IF(v_th", 2.0)])]),
         "node 'lif' (snn::LIF): attribute 'tau = 1.0) |> IF(v_th' is not a constructor argument name")
    case("inject_prev_source.onnx",
         std(nodes=[node("Prev", [], ["p"], "prev", "snn", [attr("source", "y@); network Evil { prev(@y")]),
                    node("Add", ["x", "p"], ["s"], "add"), gemm(x="s"), lif()]),
         "a Prev node names 'y@); network Evil { prev(@y' as its source, a value the graph does not compute")
    case("prev_without_source.onnx",
         std(nodes=[node("Prev", [], ["p"], "prev", "snn"), node("Add", ["x", "p"], ["s"], "add"), gemm(x="s"), lif()]),
         "node 'prev' (snn::Prev): needs a string attribute 'source' naming a value, and no inputs")
    case("neuron_model_missing.onnx", std(nodes=[gemm(), node("Neuron", ["h"], ["y"], "lif", "snn")]),
         "node 'lif' (snn::Neuron): needs a string attribute 'model' naming a neuron model")
    case("neuron_model_unknown.onnx",
         std(nodes=[gemm(), node("Neuron", ["h"], ["y"], "lif", "snn", [attr("model", "Hodgkin")])]),
         "Hodgkin")
    case("neuron_attr_tensor.onnx",
         std(nodes=[gemm(), lif(attrs=[attr("tau", tensor("t", [1], [2.0]), kind="tensor")])]),
         "node 'lif' (snn::LIF): attribute tau must be a float, an int or a string")
    case("neuron_attr_nan.onnx", std(nodes=[gemm(), lif(attrs=[attr("tau", float("nan"))])]),
         "node 'lif' (snn::LIF): attribute tau is not finite")
    case("neuron_attr_huge_int.onnx", std(nodes=[gemm(), lif(attrs=[attr("hard", 1 << 40)])]),
         "node 'lif' (snn::LIF): attribute hard is out of range")
    case("model_attr_on_lif.onnx", std(nodes=[gemm(), lif(attrs=[attr("model", "IF")])]),
         "neuron model 'LIF' has no argument named 'model'")
    case("neuron_unknown_arg.onnx", std(nodes=[gemm(), lif(attrs=[attr("taus", 2.0)])]), "taus")
    case("neuron_param_shape.onnx",
         std(nodes=[gemm(), lif(op="PLIF", attrs=[], extra_inputs=["lif.w"])],
             init=inits() + [tensor("lif.w", [2], [0.0, 0.1])]),
         "initializer 'lif.w' has shape [2], but 'lif.w' needs [1]")
    case("neuron_param_channels.onnx",
         std(nodes=[gemm(), lif(op="DALIF", attrs=[attr("granularity", "channel")], extra_inputs=["ws", "wt"])],
             init=inits() + [tensor("ws", [3], [0.0] * 3), tensor("wt", [4], [0.0] * 4)]),
         "initializer 'wt' has shape [4], but 'lif.wt' needs [3]")
    case("neuron_extra_param.onnx", std(nodes=[gemm(), lif(extra_inputs=["fc.bias"])], init=inits()),
         "initializer 'fc.bias' is input 2 of neuron layer 'lif', whose model LIF has 0 learnable parameters")
    case("neuron_param_not_const.onnx", std(nodes=[gemm(), lif(op="PLIF", attrs=[], extra_inputs=["h"])]),
         "node 'lif' (snn::PLIF): a learnable parameter 'h' must be an initializer or a Constant")
    case("neuron_param_nan.onnx",
         std(nodes=[gemm(), lif(op="ARLIF", attrs=[], extra_inputs=["a", "c"])],
             init=inits() + [tensor("a", [1], [0.0]), tensor("c", [1], [float("nan")])]),
         "initializer 'c' (for 'lif.c') has NaN at flat index 0")

    # -- metadata
    case("no_timesteps.onnx", std(meta=()), "how many timesteps? give --timesteps N or the metadata snn.timesteps")
    case("timesteps_text.onnx", std(meta=(("snn.timesteps", "eight"),)),
         "metadata snn.timesteps 'eight' is not a number of steps from 1 to 1000000")
    case("timesteps_zero.onnx", std(meta=(("snn.timesteps", "0"),)),
         "metadata snn.timesteps '0' is not a number of steps from 1 to 1000000")
    case("bad_encoding.onnx", std(meta=(("snn.timesteps", "2"), ("snn.encoding", "poisson"))),
         "metadata snn.encoding 'poisson' is not an encoding (direct, sequence, rate, latency, events)")
    case("latency_threshold_text.onnx",
         std(meta=(("snn.timesteps", "2"), ("snn.encoding", "latency"), ("snn.latency_threshold", "0x1p-3"))),
         "metadata snn.latency_threshold '0x1p-3': not a number above 0 and at most 1")
    case("latency_threshold_range.onnx",
         std(meta=(("snn.timesteps", "2"), ("snn.encoding", "latency"), ("snn.latency_threshold", "1.5"))),
         "metadata snn.latency_threshold '1.5': not a number above 0 and at most 1")
    case("events_without_window.onnx",
         std(meta=(("snn.timesteps", "2"), ("snn.encoding", "events"))),
         "metadata snn.event_window '': an 'events' encoding needs its window, an integer from 1 to 2^40")
    case("event_window_text.onnx",
         std(meta=(("snn.timesteps", "2"), ("snn.encoding", "events"), ("snn.event_window", "1e4"))),
         "metadata snn.event_window '1e4': an 'events' encoding needs its window")
    case("event_window_without_events.onnx",
         std(meta=(("snn.timesteps", "2"), ("snn.encoding", "sequence"), ("snn.event_window", "100"))),
         "metadata snn.event_window: only an 'events' encoding has a window and a binning")
    case("event_binary_text.onnx",
         std(meta=(("snn.timesteps", "2"), ("snn.encoding", "events"), ("snn.event_window", "100"),
                   ("snn.event_binary", "yes"))),
         "metadata snn.event_binary 'yes' is not true or false")
    case("threshold_without_latency.onnx",
         std(meta=(("snn.timesteps", "2"), ("snn.encoding", "rate"), ("snn.latency_threshold", "0.5"))),
         "metadata snn.latency_threshold '0.5': only a latency encoding has a threshold")
    case("bad_readout.onnx", std(meta=(("snn.timesteps", "2"), ("snn.readout", "softmax"))),
         "metadata snn.readout 'softmax' is not a readout")


def main():
    build()
    for f in os.listdir(HERE):
        if f.endswith((".onnx", ".bin")):
            os.remove(os.path.join(HERE, f))
    lines = ["# file<TAB>substring of the expected error (generated by tests/bad/onnx/make_corpus.py);",
             "# a file without an expected error is data (valid.onnx: the valid model the others vary)"]
    for name, data, expected in CASES:
        with open(os.path.join(HERE, name), "wb") as f:
            f.write(data)
        lines.append(name if expected is None else "%s\t%s" % (name, expected))
    with open(os.path.join(HERE, "EXPECTED"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("%d files" % len(CASES))


if __name__ == "__main__":
    main()
