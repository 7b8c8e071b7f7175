# SPDX-License-Identifier: GPL-2.0
"""ONNX models -> FloatGraph, read with the onnx package.

Handles what torch.onnx.export and skl2onnx write for MLPs and small conv1d
nets.  skl2onnx post-processing is handled, not guessed: ZipMap (a
probability dictionary) is dropped in favour of its input tensor, and the
label branch ArgMax -> ArrayFeatureExtractor(classes) -> Reshape/Cast becomes
an integer argmax output whose class labels are recorded in the manifest.
"""
from __future__ import annotations

import os

import numpy as np
import onnx
from onnx import numpy_helper, shape_inference

from ml_lib.errors import UserError
from ml_lib.frontend.graph import FloatGraph, FNode, finish, unsupported

_PASS = {"Dropout", "Identity"}
#: ONNX TensorProto float types a Cast may convert to (dropped on tensors, applied to constants)
_FLOAT_TYPES = {1: np.float32, 11: np.float64}


def _attrs(node) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _external_files(m: onnx.ModelProto) -> list[str]:
    """The external data files (locations as recorded) the model's tensors name."""
    from onnx.external_data_helper import ExternalDataInfo, uses_external_data

    def tensors(g):
        yield from g.initializer
        for n in g.node:
            for at in n.attribute:
                if at.HasField("t"):
                    yield at.t
                yield from at.tensors
                if at.HasField("g"):
                    yield from tensors(at.g)
                for sub in at.graphs:
                    yield from tensors(sub)
    locs = []
    for t in tensors(m.graph):
        if uses_external_data(t):
            loc = ExternalDataInfo(t).location
            if loc not in locs:
                locs.append(loc)
    return locs


def load_model(path: str) -> onnx.ModelProto:
    try:
        m = onnx.load(path, load_external_data=False)
    except Exception as e:
        raise UserError(f"{path}: not an ONNX model ({type(e).__name__})") from e
    locs = _external_files(m)
    if locs:
        base = os.path.dirname(path)
        for loc in locs:
            full = os.path.join(base, loc)
            if not os.path.isfile(full):
                raise UserError(f"{path}: its weights are stored in the external data file "
                                f"{full}, which does not exist; keep the file '{loc}' next to "
                                "the .onnx file")
        try:
            onnx.load_external_data_for_model(m, base)
        except Exception as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else ""
            raise UserError(f"{path}: cannot read its external data "
                            f"({', '.join(locs)}): {type(e).__name__}: {first}") from e
    if not m.graph.node:
        raise UserError(f"{path}: not an ONNX model (no graph nodes)")
    try:
        # what graph surgery breaks: a node reading a tensor nothing
        # produces, nodes out of order, malformed attributes
        onnx.checker.check_model(m)
    except Exception as e:
        # onnx spreads one sentence over lines: "... of node: \nname: x OpType: Relu\n is ..."
        msg = " ".join(str(e).split()) or type(e).__name__
        raise UserError(f"{path}: invalid ONNX model: {msg[:300]}") from e
    try:
        m = shape_inference.infer_shapes(m)
    except Exception as e:
        raise UserError(f"{path}: ONNX shape inference failed: {e}") from e
    return m


def _class_label(x):
    """One skl2onnx class label as a JSON value: str labels (onnx gives str or
    bytes, in an object array) stay strings, numeric ones become int/float."""
    if isinstance(x, bytes):
        return x.decode("utf-8", errors="replace")
    if isinstance(x, str):
        return x
    return x.item() if hasattr(x, "item") else x


def _strip_postprocessing(m, producer, consts, meta):
    """Graph outputs after skl2onnx-style post-processing, as (value, name) pairs."""
    outs = []
    for o in m.graph.output:
        v = o.name
        name = o.name
        while True:
            n = producer.get(v)
            if n is None:
                break
            if n.op_type in ("Cast", "Identity", "Reshape") and n.op_type != "Reshape" or \
                    (n.op_type == "Reshape" and producer.get(n.input[0]) is not None
                     and producer[n.input[0]].op_type == "ArrayFeatureExtractor"):
                v = n.input[0]
            elif n.op_type == "ZipMap":
                v = n.input[0]
                name = name.replace("output_", "") or name
            elif n.op_type == "ArrayFeatureExtractor" and n.input[0] in consts:
                classes = consts[n.input[0]]
                meta["classes"] = [_class_label(x) for x in np.asarray(classes).ravel()]
                v = n.input[1]
                name = name.replace("output_", "") or name
            else:
                break
        outs.append((v, name))
    return outs


def _const(t, what: str) -> np.ndarray:
    try:
        return numpy_helper.to_array(t)
    except Exception as e:  # an unknown data_type, a wrong byte count
        raise UserError(f"the ONNX {what} '{t.name}' cannot be read (data_type {t.data_type}, "
                        f"{type(e).__name__})") from e


def to_graph(m: onnx.ModelProto, sample: np.ndarray) -> FloatGraph:
    consts = {i.name: _const(i, "initializer") for i in m.graph.initializer}
    for n in m.graph.node:  # nodes are in topological order (checked in load_model)
        if n.op_type == "Constant":
            consts[n.output[0]] = _const(_attrs(n)["value"], "Constant")
        elif n.op_type == "Identity" and n.input and n.input[0] in consts:
            # torch.onnx.export (dynamo=False) writes one copy of equal weight
            # tensors and Identity nodes for the others (two zero biases, an
            # untrained BatchNorm's weight == running_var): a constant, too
            consts[n.output[0]] = consts[n.input[0]]
        elif n.op_type == "Cast" and _attrs(n).get("to") in _FLOAT_TYPES and n.input \
                and n.input[0] in consts:
            consts[n.output[0]] = np.asarray(consts[n.input[0]]).astype(
                _FLOAT_TYPES[_attrs(n)["to"]])
    inputs = [i for i in m.graph.input if i.name not in consts]
    if len(inputs) != 1:
        raise UserError(f"the ONNX model has {len(inputs)} inputs; ml_lib models take exactly one")
    inp = inputs[0]
    dims = inp.type.tensor_type.shape.dim
    want = []
    for i, d in enumerate(dims):
        if i == 0:
            continue
        if not d.HasField("dim_value"):
            raise UserError(f"dynamic shape: ONNX input '{inp.name}' dimension {i} is "
                            f"'{d.dim_param or '?'}'; only the batch dimension may vary")
        want.append(d.dim_value)
    if dims and tuple(want) != tuple(sample.shape[1:]):
        raise UserError(f"calibration data has shape {tuple(sample.shape[1:])} per sample but the "
                        f"model input '{inp.name}' expects {tuple(want)}")
    producer = {o: n for n in m.graph.node for o in n.output}
    meta: dict = {}
    outs = _strip_postprocessing(m, producer, consts, meta)
    g = FloatGraph(input_name=inp.name, input_shape=tuple(sample.shape[1:]), nodes=[],
                   outputs=[], output_names=[], meta=meta)
    alias: dict[str, str] = {}
    rank = {inp.name: len(dims)}
    for vi in list(m.graph.value_info) + list(m.graph.output):
        if vi.type.tensor_type.HasField("shape") and vi.type.tensor_type.shape.dim:
            rank[vi.name] = len(vi.type.tensor_type.shape.dim)

    def r(name):
        return alias.get(name, name)

    needed = set(v for v, _ in outs)
    for n in reversed(m.graph.node):
        if any(o in needed for o in n.output):
            # a Reshape's target shape is resolved below, not computed: its
            # Shape/Gather/Concat subgraph (x.view(x.size(0), -1)) is not needed
            needed.update(n.input[:1] if n.op_type == "Reshape" else n.input)

    for node in m.graph.node:
        if not any(o in needed for o in node.output) or node.op_type == "Constant" or \
                node.output[0] in consts:  # evaluated above (Identity/Cast of a constant)
            continue
        op = node.op_type
        a = _attrs(node)
        where = f"ONNX node '{node.name or node.output[0]}' ({op})"
        ins = [r(i) for i in node.input if i]

        def opt(k):
            """Input k by position, or None when absent or empty: an optional
            input left out in the middle (Clip(x, "", max)) keeps its place."""
            return r(node.input[k]) if k < len(node.input) and node.input[k] else None

        def const_in(k, what):
            v = opt(k)
            if v is None:
                return None
            if v not in consts:
                raise unsupported(f"{op} with a computed {what}", where)
            return consts[v]
        out = node.output[0]
        dyn = [i for i in ins if i not in consts]
        if not dyn:
            raise unsupported(f"{op} on constants only", where)
        x = dyn[0]

        def add(kind, inputs, **attrs):
            g.nodes.append(FNode(out, kind, inputs, attrs, where))

        if op in _PASS or (op == "Cast" and a.get("to") in (1, 11)):
            alias[out] = x
        elif op == "Gemm":
            if a.get("transA", 0):
                raise unsupported("Gemm with transA", where)
            b = consts.get(ins[1])
            if b is None or ins[0] != x:
                raise unsupported("Gemm with non-constant weights", where)
            w = b.T if not a.get("transB", 0) else b
            w = w.astype(np.float64) * a.get("alpha", 1.0)
            c = const_in(2, "bias C")
            c = c.astype(np.float64) * a.get("beta", 1.0) if c is not None else np.zeros(w.shape[0])
            # C broadcasts to (batch, N): shapes (), (1,), (N,), (1, N) and (1, 1)
            if c.ndim > 2 or (c.ndim == 2 and c.shape[0] != 1) or c.size not in (1, w.shape[0]):
                raise UserError(f"{where}: Gemm bias C of shape {list(c.shape)} does not "
                                f"broadcast to its {w.shape[0]} outputs")
            add("linear", [x], w=w, b=np.broadcast_to(c.reshape(-1), (w.shape[0],)).copy())
        elif op == "MatMul":
            b = consts.get(ins[1])
            if b is None or b.ndim != 2 or ins[0] != x:
                raise unsupported("MatMul (only input @ constant 2-D weight)", where)
            add("linear", [x], w=b.T.astype(np.float64), b=np.zeros(b.shape[1]))
        elif op == "Conv":
            w = consts.get(ins[1])
            if w is None:
                raise unsupported("Conv with non-constant weights", where)
            if w.ndim != 3:
                raise unsupported(f"Conv with {w.ndim - 2}-D kernel (only 1-D)", where)
            if a.get("group", 1) != 1:
                raise unsupported(f"Conv with groups ({a['group']})", where)
            stride = int(a.get("strides", [1])[0])
            dil = int(a.get("dilations", [1])[0])
            auto = a.get("auto_pad", b"NOTSET")
            auto = auto.decode() if isinstance(auto, bytes) else str(auto)
            if auto in ("SAME_UPPER", "SAME_LOWER"):
                # stride 1: dil*(k-1) in total, split evenly when it is even
                total = dil * (w.shape[2] - 1)
                if stride != 1 or total % 2:
                    raise unsupported(f"Conv with auto_pad {auto} and stride {stride}, "
                                      f"dilation*(kernel-1) = {total} (only stride 1 and an "
                                      "even total, i.e. symmetric padding; use explicit "
                                      "symmetric pads)", where)
                pads = [total // 2, total // 2]
            elif auto == "VALID":
                pads = [0, 0]
            elif auto == "NOTSET":
                pads = a.get("pads", [0, 0])
            else:
                raise unsupported(f"Conv with auto_pad {auto}", where)
            if pads[0] != pads[-1]:
                raise unsupported(f"Conv with asymmetric padding {list(pads)} (only equal "
                                  "begin and end pads)", where)
            b = const_in(2, "bias")
            b = b if b is not None else np.zeros(w.shape[0])
            add("conv1d", [x], w=w.astype(np.float64), b=b.astype(np.float64),
                stride=stride, pad=int(pads[0]), dil=dil)
        elif op == "BatchNormalization":
            sc, bb, mean, var = (consts[i].astype(np.float64) for i in ins[1:5])
            s = sc / np.sqrt(var + a.get("epsilon", 1e-5))
            shape = (-1,) + (1,) * (rank.get(node.input[0], sample.ndim) - 2)
            add("affine", [x], scale=s.reshape(shape), bias=(bb - mean * s).reshape(shape))
        elif op == "Scaler":  # ai.onnx.ml (skl2onnx StandardScaler): (x - offset) * scale
            off = np.asarray(a.get("offset", [0.0]), np.float64)
            sc = np.asarray(a.get("scale", [1.0]), np.float64)
            add("affine", [x], scale=sc, bias=-off * sc)
        elif op == "Relu":
            add("relu", [x])
        elif op == "Clip":
            # opset >= 11: optional inputs 1 = min, 2 = max, either may be
            # left out (an empty name); opset < 11: attributes min, max
            lo, hi = const_in(1, "min"), const_in(2, "max")
            lo = lo.item() if lo is not None else a.get("min", -np.inf)
            hi = hi.item() if hi is not None else a.get("max", np.inf)
            add("clamp", [x], lo=float(lo), hi=float(hi))
        elif op == "Pad":
            # opset < 11 writes an all-zero Pad before AveragePool: no padding at all
            mode = a.get("mode", b"constant")
            pads = const_in(1, "pads") if len(node.input) > 1 else a.get("pads")
            if mode not in (b"constant", "constant") or pads is None or \
                    np.any(np.asarray(pads) != 0):
                raise unsupported("Pad (only an all-zero constant Pad)", where)
            alias[out] = x
        elif op == "LeakyRelu":
            add("leaky_relu", [x], alpha=float(a.get("alpha", 0.01)))
        elif op == "Sigmoid":
            add("sigmoid", [x])
        elif op == "Tanh":
            add("tanh", [x])
        elif op == "Softmax":
            axis = a.get("axis", -1)
            nd = rank.get(node.input[0], sample.ndim)
            if axis not in (-1, nd - 1):
                raise unsupported(f"Softmax over axis {axis} (only the last)", where)
            add("softmax", [x])
        elif op in ("Flatten", "Reshape", "Squeeze", "Unsqueeze"):
            if op == "Flatten" and a.get("axis", 1) != 1:
                raise unsupported("Flatten with axis != 1", where)
            add("reshape", [x], shape=None)  # resolved from ONNX shape inference below
        elif op in ("Add", "Sub", "Mul", "Div"):
            if len(dyn) == 2:
                if op != "Add":
                    raise unsupported(f"{op} of two computed tensors (only residual Add)", where)
                add("add", dyn)
                continue
            k = consts[ins[1] if ins[0] == x else ins[0]].astype(np.float64)
            swapped = ins[0] != x
            if op == "Add":
                scale, bias = np.ones(1), k
            elif op == "Sub":
                scale, bias = (np.ones(1), -k) if not swapped else (-np.ones(1), k)
            elif op == "Mul":
                scale, bias = k, np.zeros(1)
            else:
                if swapped:
                    raise unsupported("Div of a constant by a tensor", where)
                scale, bias = 1.0 / k, np.zeros(1)
            # drop a leading batch axis of size 1 from the constant
            while scale.ndim > 1 and scale.shape[0] == 1 and scale.ndim >= rank.get(out, sample.ndim):
                scale = scale[0]
            while bias.ndim > 1 and bias.shape[0] == 1 and bias.ndim >= rank.get(out, sample.ndim):
                bias = bias[0]
            add("affine", [x], scale=scale, bias=bias)
        elif op == "Concat":
            axis = a.get("axis", 1)
            nd = rank.get(out, sample.ndim)
            axis = axis + nd if axis < 0 else axis
            if axis == 0 or any(i in consts for i in ins):
                raise unsupported("Concat over the batch axis or with constants", where)
            cur = ins[0]
            for i, nxt in enumerate(ins[1:]):
                nm = out if i == len(ins) - 2 else f"{out}_part{i}"
                g.nodes.append(FNode(nm, "cat", [cur, nxt], {"axis": axis - 1}, where))
                cur = nm
        elif op in ("MaxPool", "AveragePool"):
            k = a["kernel_shape"]
            if len(k) != 1:
                raise unsupported(f"{op} with {len(k)}-D kernel (only 1-D)", where)
            if any(a.get("pads", [0])) or a.get("ceil_mode", 0) or any(
                    d != 1 for d in a.get("dilations", [1])):
                raise unsupported(f"{op} with padding, dilation or ceil_mode", where)
            add("maxpool1d" if op == "MaxPool" else "avgpool1d", [x], k=int(k[0]),
                stride=int(a.get("strides", k)[0]))
        elif op == "ArgMax":
            axis = a.get("axis", 0)
            nd = rank.get(node.input[0], sample.ndim)
            if axis not in (-1, nd - 1) or a.get("select_last_index", 0):
                raise unsupported(f"ArgMax over axis {axis} (only the last)", where)
            add("argmax", [x])
        elif op in ("If", "Loop", "Scan"):
            raise UserError(f"the model has data-dependent control flow: {where}")
        elif op == "ZipMap":
            raise unsupported("ZipMap not at a model output", where)
        else:
            raise unsupported(op, where)
    for v, name in outs:
        g.outputs.append(r(v))
        g.output_names.append(name)
    # reshape targets: per-sample shape from shape inference
    shapes = {}
    for vi in list(m.graph.value_info) + list(m.graph.output):
        d = vi.type.tensor_type.shape.dim
        if all(x.HasField("dim_value") for x in d[1:]):
            shapes[vi.name] = tuple(x.dim_value for x in d[1:])
    computed = {}
    for n in g.nodes:
        if n.kind == "reshape":
            if n.name in shapes:
                n.attrs["shape"] = shapes[n.name]
                continue
            if not computed:
                computed = _eval_shape_inputs(m, producer, inp.name, sample)
            spec = computed.get(n.name)
            if spec is None or len(spec) < 1 or spec[0] not in (0, -1, sample.shape[0]):
                raise UserError(f"dynamic shape: cannot infer the output shape of {n.source}")
            n.attrs["shape"] = tuple(int(v) for v in spec[1:])
    return finish(g, sample)


def _eval_shape_inputs(m, producer, input_name: str, sample: np.ndarray) -> dict:
    """Target shapes of Reshapes whose shape is computed (Shape -> Gather -> Concat),
    evaluated with onnx's reference evaluator on the calibration sample."""
    from onnx.reference import ReferenceEvaluator
    want = {n.output[0]: n.input[1] for n in m.graph.node
            if n.op_type == "Reshape" and len(n.input) > 1 and n.input[1] in producer}
    if not want:
        return {}
    mm = onnx.ModelProto()
    mm.CopyFrom(m)
    del mm.graph.output[:]
    for v in sorted(set(want.values())):
        mm.graph.output.append(onnx.helper.make_tensor_value_info(v, onnx.TensorProto.INT64, None))
    try:
        ev = ReferenceEvaluator(mm)
        res = ev.run(None, {input_name: sample.astype(np.float32)})
    except Exception:  # noqa: BLE001 - anything here means: cannot resolve
        return {}
    vals = dict(zip(sorted(set(want.values())), res))
    return {out: np.asarray(vals[src]).ravel().tolist() for out, src in want.items()}


def load(path: str, sample: np.ndarray) -> FloatGraph:
    return to_graph(load_model(path), sample)
