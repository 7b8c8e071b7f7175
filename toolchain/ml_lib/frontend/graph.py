# SPDX-License-Identifier: GPL-2.0
"""The small float graph every importer produces and the quantizer reads.

Importers (torch, ONNX) lower a model to a handful of canonical float ops
on tensors WITHOUT the batch dimension (shapes are per sample).  This file
also holds the clean-up passes (BatchNorm and constant affines folded into
the preceding linear/conv, a leading affine kept as the input
normalisation) and a float64 executor used for calibration and for the
accuracy report.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from ml_lib.errors import UserError

#: canonical float ops and what they mean (attrs in brackets)
FLOAT_OPS = {
    "affine": "y = x * scale + bias, per element [scale, bias]",
    "linear": "y = x W^T + b [w, b]",
    "conv1d": "1-D convolution, groups=1 [w, b, stride, pad, dil]",
    "relu": "max(x, 0)",
    "clamp": "clamp(x, lo, hi) (relu6, hardtanh, clamp) [lo, hi]",
    "leaky_relu": "leaky ReLU [alpha]",
    "sigmoid": "logistic sigmoid",
    "tanh": "hyperbolic tangent",
    "softmax": "softmax over the last axis",
    "reshape": "flatten / view / reshape [shape]",
    "add": "element-wise sum of two tensors (residual)",
    "cat": "concatenation of two tensors [axis]",
    "maxpool1d": "max pool, no padding [k, stride]",
    "avgpool1d": "average pool, no padding [k, stride]",
    "argmax": "index of the largest element of the last axis",
}

#: what users may write, listed in "unsupported op" messages
SUPPORTED_TEXT = ("Linear/Gemm/MatMul(+Add), Conv1d, BatchNorm (folded), Dropout/Identity "
                  "(dropped), ReLU, ReLU6, Hardtanh, Clamp/Clip, LeakyReLU, Sigmoid, Tanh, "
                  "Softmax (last axis), Flatten/View/Reshape, residual Add, Cat/Concat, "
                  "MaxPool1d, AvgPool1d, ArgMax, input normalisation (x - mean) / std")


@dataclass
class FNode:
    name: str
    kind: str
    inputs: list[str]
    attrs: dict = field(default_factory=dict)
    #: module path or ONNX node name, for messages and reports
    source: str = ""
    #: per-sample output shape, filled by :func:`infer_shapes`
    shape: tuple = ()


@dataclass
class FloatGraph:
    input_name: str
    input_shape: tuple
    nodes: list[FNode]
    outputs: list[str]
    #: names the user sees for each output (same order as ``outputs``)
    output_names: list[str]
    #: leading per-feature normalisation f = x * in_scale + in_bias (None: identity)
    in_scale: np.ndarray | None = None
    in_bias: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    def node(self, name: str) -> FNode:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def users(self, name: str) -> list[FNode]:
        return [n for n in self.nodes if name in n.inputs]


def unsupported(op: str, where: str) -> UserError:
    return UserError(f"unsupported op '{op}' at {where}; supported: {SUPPORTED_TEXT}")


def _as_t(a) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=np.float64))


def eval_node(n: FNode, args: list[torch.Tensor]) -> torch.Tensor:
    """One float op on a batch (float64); the reference float semantics."""
    a = n.attrs
    x = args[0]
    k = n.kind
    if k == "affine":
        return x * _as_t(a["scale"]) + _as_t(a["bias"])
    if k == "linear":
        return F.linear(x, _as_t(a["w"]), _as_t(a["b"]))
    if k == "conv1d":
        return F.conv1d(x, _as_t(a["w"]), _as_t(a["b"]), stride=a["stride"], padding=a["pad"],
                        dilation=a["dil"])
    if k == "relu":
        return torch.relu(x)
    if k == "clamp":
        return torch.clamp(x, a["lo"], a["hi"])
    if k == "leaky_relu":
        return F.leaky_relu(x, a["alpha"])
    if k in ("sigmoid", "tanh"):
        y = torch.sigmoid(x) if k == "sigmoid" else torch.tanh(x)
        if "post" in a:  # a folded scalar affine, e.g. skl2onnx's 1 - sigmoid
            y = y * a["post"][0] + a["post"][1]
        return y
    if k == "softmax":
        return torch.softmax(x, dim=-1)
    if k == "reshape":
        return x.reshape((x.shape[0],) + tuple(a["shape"]))
    if k == "add":
        return x + args[1]
    if k == "cat":
        return torch.cat([x, args[1]], dim=a["axis"] + 1)
    if k == "maxpool1d":
        return F.max_pool1d(x, a["k"], a["stride"])
    if k == "avgpool1d":
        return F.avg_pool1d(x, a["k"], a["stride"])
    if k == "argmax":
        return torch.argmax(x, dim=-1).to(torch.float64)
    raise AssertionError(f"unknown float op {k}")


def run_float(g: FloatGraph, x: np.ndarray, keep_all: bool = False) -> dict[str, np.ndarray]:
    """Run the float graph on a batch; returns {value name: array}.

    The input normalisation (``in_scale``/``in_bias``) is applied first; the
    value named ``g.input_name`` is the normalised input.
    """
    v = _as_t(x)
    if g.in_scale is not None:
        v = v * _as_t(g.in_scale) + _as_t(g.in_bias)
    vals: dict[str, torch.Tensor] = {g.input_name: v}
    need = {}
    if not keep_all:
        for i, n in enumerate(g.nodes):
            for s in n.inputs:
                need[s] = i
    with torch.no_grad():
        for i, n in enumerate(g.nodes):
            vals[n.name] = eval_node(n, [vals[s] for s in n.inputs])
            if not keep_all:
                for s in n.inputs:
                    if need.get(s) == i and s not in g.outputs:
                        vals.pop(s, None)
    return {k: t.numpy() for k, t in vals.items()}


def infer_shapes(g: FloatGraph, sample: np.ndarray) -> None:
    """Record every node's per-sample shape by running one small batch."""
    try:
        vals = run_float(g, sample, keep_all=True)
    except RuntimeError as e:
        raise UserError(f"calibration data of shape {tuple(sample.shape[1:])} per sample does not "
                        f"fit the model: {str(e).splitlines()[0]}") from e
    for n in g.nodes:
        n.shape = tuple(vals[n.name].shape[1:])
        if n.kind == "reshape":
            n.attrs["shape"] = n.shape  # a -1 in the target, resolved


# ---------------------------------------------------------------- clean-up

def _replace_uses(g: FloatGraph, old: str, new: str) -> None:
    for n in g.nodes:
        n.inputs = [new if s == old else s for s in n.inputs]
    g.outputs = [new if s == old else s for s in g.outputs]


def _channel_vector(arr: np.ndarray, shape: tuple, where: str) -> np.ndarray:
    """A per-element affine array that is constant along all but axis 0."""
    a = np.broadcast_to(np.asarray(arr, dtype=np.float64), shape)
    flat = a.reshape(shape[0], -1)
    if not np.all(flat == flat[:, :1]):
        raise UserError(f"scale/shift at {where} varies inside a channel and cannot be folded "
                        "into the preceding layer")
    return flat[:, 0].copy()


def fold_affines(g: FloatGraph) -> None:
    """Fold BatchNorm and constant scale/shift into linear/conv or the input.

    An affine right after the model input becomes the input normalisation
    (kept as the integer INPUT affine); one after a linear/conv that has no
    other user is folded into its weights and bias.  Anything else is an
    op the integer engine has no place for.
    """
    changed = True
    while changed:
        changed = False
        for n in list(g.nodes):
            if n.kind != "affine":
                continue
            src = n.inputs[0]
            scale = np.broadcast_to(np.asarray(n.attrs["scale"], np.float64), n.shape)
            bias = np.broadcast_to(np.asarray(n.attrs["bias"], np.float64), n.shape)
            if src == g.input_name and len(g.users(src)) == 1:
                if g.in_scale is None:
                    g.in_scale, g.in_bias = scale.copy(), bias.copy()
                else:
                    g.in_bias = g.in_bias * scale + bias
                    g.in_scale = g.in_scale * scale
            else:
                prev = next((p for p in g.nodes if p.name == src), None)
                if prev is not None and prev.kind in ("sigmoid", "tanh") and \
                        np.all(scale == scale.flat[0]) and np.all(bias == bias.flat[0]):
                    # a*f(x)+b is one more elementwise function: its own LUT
                    a0, b0 = prev.attrs.get("post", (1.0, 0.0))
                    s0, c0 = float(scale.flat[0]), float(bias.flat[0])
                    i = g.nodes.index(n)
                    g.nodes[i] = FNode(n.name, prev.kind, list(prev.inputs),
                                       {"post": (a0 * s0, b0 * s0 + c0)}, n.source, n.shape)
                    changed = True
                    break
                if prev is None or prev.kind not in ("linear", "conv1d") or len(g.users(src)) != 1 \
                        or src in g.outputs:
                    raise unsupported("scale/shift (mul/div/add/sub by a constant or BatchNorm)"
                                      " not after the input or a linear/conv layer", n.source)
                s = _channel_vector(scale, n.shape, n.source)
                b = _channel_vector(bias, n.shape, n.source)
                w = np.asarray(prev.attrs["w"], np.float64)
                prev.attrs["w"] = w * s.reshape((-1,) + (1,) * (w.ndim - 1))
                prev.attrs["b"] = np.asarray(prev.attrs["b"], np.float64) * s + b
                prev.source = f"{prev.source}+{n.source}" if n.source != prev.source else prev.source
            g.nodes.remove(n)
            _replace_uses(g, n.name, src)
            changed = True
            break


def normalize_input(g: FloatGraph, x: np.ndarray) -> bool:
    """Give an un-normalised model a per-feature input normalisation.

    The INPUT op scales every feature on its own, but its output tensor has
    one scale: raw features of very different ranges (bytes next to flags)
    would share it and the small ones would be lost.  When the input feeds
    only linear layers (or unpadded convs, per channel), f = (x - mu) / sigma
    from the calibration data goes into the INPUT op and its inverse into
    those layers' weights: the float model computes the same function.
    Returns whether it did.
    """
    if g.in_scale is not None:
        return False
    users = g.users(g.input_name)
    if not users or g.input_name in g.outputs:
        return False
    conv = len(g.input_shape) == 2
    for u in users:
        if u.kind == "linear" and not conv:
            continue
        if u.kind == "conv1d" and conv and u.attrs["pad"] == 0:
            continue
        return False
    flat = x.reshape(x.shape[0], g.input_shape[0], -1)
    axes = (0, 2) if conv else (0,)
    mu = flat.mean(axis=axes).reshape(-1)
    lo, hi = flat.min(axis=axes).reshape(-1), flat.max(axis=axes).reshape(-1)
    sigma = np.where(hi > lo, (hi - lo) / 2.0, 1.0)
    for u in users:
        w = np.asarray(u.attrs["w"], np.float64)
        shape = (1, -1) + (1,) * (w.ndim - 2)
        u.attrs["b"] = np.asarray(u.attrs["b"], np.float64) + \
            (w * mu.reshape(shape)).reshape(w.shape[0], -1).sum(axis=1)
        u.attrs["w"] = w * sigma.reshape(shape)
    per = (lambda v: np.repeat(v, g.input_shape[1])) if conv else (lambda v: v)
    g.in_scale = per(1.0 / sigma).reshape(g.input_shape)
    g.in_bias = per(-mu / sigma).reshape(g.input_shape)
    return True


def _feature_list(idx, names: list[str] | None, conv_len: int = 0) -> str:
    """'input feature 2 ('rate')' / 'input features 2 ('a'), 5 ('b')' for messages."""
    parts = []
    for i in idx[:4]:
        i = int(i)
        nm = names[i] if names is not None and i < len(names) else f"x{i}"
        where = f" (channel {i // conv_len})" if conv_len else ""
        parts.append(f"{i} ('{nm}'){where}")
    more = f" and {len(idx) - 4} more" if len(idx) > 4 else ""
    return f"input feature{'s' if len(idx) > 1 else ''} {', '.join(parts)}{more}"


def fold_input_sign(g: FloatGraph, feature_names: list[str] | None = None) -> bool:
    """Move a negative input-normalisation scale into the first layers' weights.

    The integer INPUT op's multiplier is non-negative: it cannot compute
    f = a*x + c with a < 0 (a BatchNorm first with a negative weight, or
    c - x).  When every reader of the normalised input is linear in it
    (Linear, or Conv1d: zero padding is unchanged by a sign), the INPUT op
    computes -f instead and the readers' weights for that feature (column,
    or input channel) are negated: the float model computes the same
    function.  Any other reader (an activation, a pool, an output) sees f
    itself: then this is a UserError naming the features.  Returns whether
    it changed the graph.
    """
    if g.in_scale is None:
        return False
    a = np.broadcast_to(np.asarray(g.in_scale, np.float64), g.input_shape)
    c = np.broadcast_to(np.asarray(g.in_bias, np.float64), g.input_shape)
    neg = a < 0
    if not neg.any():
        return False
    conv = len(g.input_shape) == 2
    users = g.users(g.input_name)
    bad = None
    if g.input_name in g.outputs:
        bad = "the normalised input is itself a model output"
    for u in users:
        if bad is None and not ((u.kind == "linear" and len(g.input_shape) == 1) or
                                (u.kind == "conv1d" and conv)):
            bad = f"the normalised input feeds {u.kind} at {u.source} directly"
    sign = np.where(neg, -1.0, 1.0)
    if bad is None and conv:
        # a conv weight column serves a whole input channel: one sign per channel
        pos = a > 0
        mixed = np.flatnonzero(neg.any(axis=1) & pos.any(axis=1))
        if mixed.size:
            bad = (f"input channel {int(mixed[0])} has both negative and positive scales, "
                   "and a Conv1d weight serves a whole channel")
        sign = np.where(neg.any(axis=1), -1.0, 1.0)[:, None] * np.ones(g.input_shape)
    if bad is not None:
        which = _feature_list(np.flatnonzero(neg.ravel()), feature_names,
                              g.input_shape[1] if conv else 0)
        raise UserError(f"{which}: the model's input normalisation has a negative scale "
                        "(e.g. a BatchNorm weight < 0 or c - x), which the integer INPUT op "
                        f"cannot express, and {bad}, so the sign cannot be moved into a layer's "
                        "weights; negate the feature in the data instead (and train on that), "
                        "or make a Linear/Conv1d layer read the input first")
    for u in users:
        w = np.asarray(u.attrs["w"], np.float64)
        col = sign[:, 0] if conv else sign
        u.attrs["w"] = w * col.reshape((1, -1) + (1,) * (w.ndim - 2))
    g.in_scale = a * sign
    g.in_bias = c * sign
    return True


def _fold_input_shift(g: FloatGraph, delta: np.ndarray) -> bool:
    """Add a constant input shift ``delta`` into the layers that read the input.

    Possible when every reader is linear, or an unpadded conv with a shift
    constant along each channel; returns False (changing nothing) otherwise.
    """
    users = g.users(g.input_name)
    conv = len(g.input_shape) == 2
    per_ch = None
    if conv:
        per_ch = delta.reshape(g.input_shape[0], -1)
        if not np.allclose(per_ch, per_ch[:, :1]):
            return False
        per_ch = per_ch[:, 0]
    if not users or not all((u.kind == "linear" and not conv) or
                            (u.kind == "conv1d" and conv and u.attrs["pad"] == 0) for u in users):
        return False
    for u in users:
        w = np.asarray(u.attrs["w"], np.float64)
        if conv:
            add = (w * per_ch.reshape(1, -1, 1)).sum(axis=(1, 2))
        else:
            add = w @ delta.ravel()
        u.attrs["b"] = np.asarray(u.attrs["b"], np.float64) + add
    return True


def snap_input_offset(g: FloatGraph, raw_scale: np.ndarray, round_fn) -> None:
    """Make the normalisation's offset a whole number of raw units.

    The INPUT op subtracts an integer ``off`` from the raw feature; for
    integer features (raw_scale 1) rounding mean/raw_scale would shift every
    value by up to half a unit.  Instead the offset is rounded here, in the
    float model, and the difference goes into the first layers' bias, so the
    float model is unchanged and the INPUT op exact.
    """
    if g.in_scale is None:
        return
    a = np.broadcast_to(g.in_scale, g.input_shape).astype(np.float64)
    c = np.broadcast_to(g.in_bias, g.input_shape).astype(np.float64)
    unit = a * raw_scale.reshape(g.input_shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        off = np.where(unit != 0, round_fn(-c / np.where(unit != 0, unit, 1)), 0)
    c_new = np.where(unit != 0, -unit * off, c)
    if _fold_input_shift(g, c - c_new):
        g.in_scale, g.in_bias = a.copy(), c_new


def check_finite(g: FloatGraph) -> None:
    for n in g.nodes:
        for k, v in n.attrs.items():
            if isinstance(v, np.ndarray) and v.dtype.kind == "f" and not np.all(np.isfinite(v)):
                raise UserError(f"weights of {n.kind} at {n.source} ('{k}') contain NaN or Inf")
    for arr in (g.in_scale, g.in_bias):
        if arr is not None and not np.all(np.isfinite(arr)):
            raise UserError("the input normalisation contains NaN or Inf (a zero std?)")


def finish(g: FloatGraph, sample: np.ndarray) -> FloatGraph:
    """Shapes, clean-up and sanity checks common to all importers."""
    check_finite(g)
    for i, n in enumerate(g.nodes):
        if n.kind == "leaky_relu" and n.attrs.get("alpha") == 0:
            # LeakyReLU(0.0) is ReLU, which also fuses into the layer before it
            g.nodes[i] = FNode(n.name, "relu", list(n.inputs), {}, n.source, n.shape)
    infer_shapes(g, sample)
    fold_affines(g)
    check_finite(g)
    # drop nodes nothing uses (e.g. a label branch an importer cut off)
    live = set(g.outputs)
    for n in reversed(g.nodes):
        if n.name in live:
            live.update(n.inputs)
    g.nodes = [n for n in g.nodes if n.name in live]
    if not g.nodes:
        raise UserError("the model computes nothing from its input")
    return g
