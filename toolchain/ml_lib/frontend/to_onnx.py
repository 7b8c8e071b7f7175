# SPDX-License-Identifier: GPL-2.0
"""FloatGraph -> ONNX, for ``mlexport --target user`` (served by mlproxyd).

The written model is the cleaned float graph (BatchNorm folded, dropout
gone, input normalisation first), so the proxy computes exactly the float
model mlexport quantized.  Index outputs (argmax) are cast to float so the
model has one output type.  mlproxyd feeds rows of n_in raw-scaled
features and reads one output tensor, so the model takes (N, n_in) (reshaped
inside when the model wants (N, C, L)) and gives one (N, n_out) output: all
outputs flattened and concatenated in manifest order.

With ``argmax`` (``mlexport --argmax``) every output that is not already an
index gets an ArgMax over its last axis, as the integer model does (one
index per row of the last axis), so the ONNX answers what the manifest
declares: ``n_out`` index outputs, cast to float like the model's own.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ml_lib.frontend.graph import FloatGraph

OPSET = 17


def is_index(g: FloatGraph, v: str) -> bool:
    """True when value ``v`` holds argmax indices (an argmax, maybe reshaped)."""
    while v != g.input_name:
        n = g.node(v)
        if n.kind == "argmax":
            return True
        if n.kind != "reshape":
            return False
        v = n.inputs[0]
    return False


def output_shape(g: FloatGraph, v: str, argmax: bool) -> tuple:
    """Per-sample shape of output ``v`` as exported: with ``argmax`` a value that
    is not an index loses its last axis to the added ArgMax (at least (1,))."""
    shape = tuple(g.node(v).shape) if v != g.input_name else tuple(g.input_shape)
    if argmax and not is_index(g, v):
        shape = shape[:-1]
    return shape or (1,)


def to_onnx(g: FloatGraph, name: str, argmax: bool = False) -> onnx.ModelProto:
    nodes, inits = [], []

    def const(nm, arr):
        inits.append(numpy_helper.from_array(np.asarray(arr, np.float32), nm))
        return nm

    def iconst(nm, arr):
        inits.append(numpy_helper.from_array(np.asarray(arr, np.int64), nm))
        return nm

    x = "input"
    n_in = int(np.prod(g.input_shape))
    if len(g.input_shape) > 1:
        nodes.append(helper.make_node("Reshape", [x, iconst("in_shape", [-1] + list(g.input_shape))],
                                      ["in_shaped"]))
        x = "in_shaped"
    cur = {g.input_name: x}
    if g.in_scale is not None:
        nodes.append(helper.make_node("Mul", [x, const("in_scale", g.in_scale)], ["in_mul"]))
        nodes.append(helper.make_node("Add", ["in_mul", const("in_bias", g.in_bias)], ["in_norm"]))
        cur[g.input_name] = "in_norm"
    for i, n in enumerate(g.nodes):
        ins = [cur[s] for s in n.inputs]
        out = f"v{i}_{n.kind}"
        a = n.attrs
        k = n.kind
        if k == "affine":
            nodes.append(helper.make_node("Mul", [ins[0], const(f"{out}_s", a["scale"])], [out + "m"]))
            nodes.append(helper.make_node("Add", [out + "m", const(f"{out}_b", a["bias"])], [out]))
        elif k == "linear":
            nodes.append(helper.make_node("Gemm", [ins[0], const(f"{out}_w", a["w"]),
                                                   const(f"{out}_b", a["b"])], [out], transB=1))
        elif k == "conv1d":
            nodes.append(helper.make_node("Conv", [ins[0], const(f"{out}_w", a["w"]),
                                                   const(f"{out}_b", a["b"])], [out],
                                          strides=[a["stride"]], pads=[a["pad"], a["pad"]],
                                          dilations=[a["dil"]]))
        elif k == "relu":
            nodes.append(helper.make_node("Relu", ins, [out]))
        elif k == "clamp":
            lo = a["lo"] if np.isfinite(a["lo"]) else -3.0e38
            hi = a["hi"] if np.isfinite(a["hi"]) else 3.0e38
            nodes.append(helper.make_node("Clip", [ins[0], const(f"{out}_lo", lo),
                                                   const(f"{out}_hi", hi)], [out]))
        elif k == "leaky_relu":
            nodes.append(helper.make_node("LeakyRelu", ins, [out], alpha=float(a["alpha"])))
        elif k in ("sigmoid", "tanh") and "post" in a:
            nodes.append(helper.make_node(k.capitalize(), ins, [out + "f"]))
            nodes.append(helper.make_node("Mul", [out + "f", const(f"{out}_pa", a["post"][0])],
                                          [out + "m"]))
            nodes.append(helper.make_node("Add", [out + "m", const(f"{out}_pb", a["post"][1])],
                                          [out]))
        elif k in ("sigmoid", "tanh"):
            nodes.append(helper.make_node(k.capitalize(), ins, [out]))
        elif k == "softmax":
            nodes.append(helper.make_node("Softmax", ins, [out], axis=-1))
        elif k == "reshape":
            nodes.append(helper.make_node("Reshape", [ins[0], iconst(f"{out}_shape",
                                                                     [-1] + list(a["shape"]))], [out]))
        elif k == "add":
            nodes.append(helper.make_node("Add", ins, [out]))
        elif k == "cat":
            nodes.append(helper.make_node("Concat", ins, [out], axis=a["axis"] + 1))
        elif k in ("maxpool1d", "avgpool1d"):
            nodes.append(helper.make_node("MaxPool" if k == "maxpool1d" else "AveragePool", ins,
                                          [out], kernel_shape=[a["k"]], strides=[a["stride"]]))
        elif k == "argmax":
            nodes.append(helper.make_node("ArgMax", ins, [out + "i"], axis=-1, keepdims=0))
            nodes.append(helper.make_node("Cast", [out + "i"], [out], to=TensorProto.FLOAT))
        else:
            raise AssertionError(k)
        cur[n.name] = out
    flat, n_out = [], 0
    for i, v in enumerate(g.outputs):
        src = cur[v]
        if argmax and not is_index(g, v):
            # keepdims=1 keeps the batch axis even for a (N, k) value; the
            # Reshape below flattens whatever is left per sample
            nodes.append(helper.make_node("ArgMax", [src], [f"out{i}_argmax"], axis=-1,
                                          keepdims=1))
            nodes.append(helper.make_node("Cast", [f"out{i}_argmax"], [f"out{i}_index"],
                                          to=TensorProto.FLOAT))
            src = f"out{i}_index"
        size = int(np.prod(output_shape(g, v, argmax)))
        n_out += size
        shp = iconst(f"out{i}_shape", [-1, size])
        nodes.append(helper.make_node("Reshape", [src, shp], [f"out{i}_flat"]))
        flat.append(f"out{i}_flat")
    if len(flat) == 1:
        nodes.append(helper.make_node("Identity", flat, ["output"]))
    else:
        nodes.append(helper.make_node("Concat", flat, ["output"], axis=1))
    outputs = [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", n_out])]
    inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", n_in])
    graph = helper.make_graph(nodes, name, [inp], outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="ml_lib mlexport")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model
