# SPDX-License-Identifier: GPL-2.0
"""Post-training quantization: FloatGraph + calibration data -> ir.Graph.

Weights: int8, symmetric, one scale per output channel.  Activations: int8
asymmetric (default) or int16 symmetric (``bits=16``), ranges from the
calibration set (min/max, or the P-th / (100-P)-th percentile).  Every
integer parameter follows docs/arithmetic.md; the multiplier/shift pairs
come from :func:`ml_lib.arith.quantize_multiplier`, the one conversion.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from ml_lib.arith import quantize_multiplier, quantize_multiplier_at, round_half_away
from ml_lib.errors import UserError
from ml_lib.frontend.graph import (FloatGraph, FNode, fold_input_sign, normalize_input,
                                   run_float, snap_input_offset)
from ml_lib.ir import (DTYPE_RANGE, NAME_LEN, OUTPUT_COPY, OUTPUT_DEQUANT, Graph, IOSpec, Op,
                       Tensor, plan_arena)
from ml_lib.validate import acc_bound

S32_MAX = 2**31 - 1
OFF_MAX = 2**62 - 1
#: raw fixed-point features keep about this many significant bits
RAW_BITS = 16
#: ops whose output clamp [lo, hi] can absorb a following ReLU/clamp
_FUSES_CLAMP = {"linear", "conv1d", "add", "avgpool1d"}


@dataclass
class Calibration:
    """Activation ranges per float value name."""

    lo: dict[str, float] = field(default_factory=dict)
    hi: dict[str, float] = field(default_factory=dict)


def raw_scales(calib: np.ndarray) -> np.ndarray:
    """Per input feature: 1.0 for integer-valued data, else 2**-k (arithmetic of raw)."""
    flat = calib.reshape(calib.shape[0], -1).astype(np.float64)
    out = np.ones(flat.shape[1])
    for i in range(flat.shape[1]):
        col = flat[:, i]
        if np.all(col == np.round(col)):
            continue
        m = float(np.max(np.abs(col)))
        k = int(np.clip(RAW_BITS - math.ceil(math.log2(m)), 0, 40)) if m > 0 else RAW_BITS
        out[i] = 2.0**-k
    return out


def calibrate(g: FloatGraph, x: np.ndarray, percentile: float | None = None,
              batch: int = 256, progress: bool = True) -> Calibration:
    """Run the float graph over the calibration rows and record value ranges."""
    cal = Calibration()
    keep: dict[str, list[np.ndarray]] = {}
    names = [g.input_name] + [n.name for n in g.nodes]
    it = range(0, x.shape[0], batch)
    # the bar only on a terminal (disable=None), so logs and error lines stay clean
    with_bar = tqdm(it, desc="calibrating", unit="batch", disable=None if progress else True,
                    leave=False)
    for s in with_bar:
        vals = run_float(g, x[s:s + batch], keep_all=True)
        for nm in names:
            v = vals[nm]
            if percentile is None:
                cal.lo[nm] = min(cal.lo.get(nm, np.inf), float(v.min()))
                cal.hi[nm] = max(cal.hi.get(nm, -np.inf), float(v.max()))
            else:
                keep.setdefault(nm, []).append(v.ravel())
    if percentile is not None:
        for nm, parts in keep.items():
            a = np.concatenate(parts)
            cal.lo[nm] = float(np.percentile(a, 100.0 - percentile))
            cal.hi[nm] = float(np.percentile(a, percentile))
    return cal


@dataclass
class QParams:
    dtype: str
    scale: float
    zero_point: int


def qparams(lo: float, hi: float, bits: int) -> QParams:
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    if bits == 16:
        m = max(-lo, hi)
        return QParams("s16", (m if m > 0 else 1.0) / 32767.0, 0)
    if hi - lo <= 0:
        hi = lo + 1.0
    scale = (hi - lo) / 255.0
    zp = int(np.clip(round_half_away(-128 - lo / scale), -128, 127))
    return QParams("s8", scale, zp)


@dataclass
class Quantized:
    graph: Graph
    #: float value name -> IR tensor index (the tensor holding its quantized value)
    value_tensor: dict[str, int]
    raw_scale: np.ndarray
    #: float graph value name of each IR output, in order
    output_values: list[str]


def _name(s: str) -> str:
    return s[:NAME_LEN - 1]


def _round_clipped(x, lo: int, hi: int):
    """round_half_away(x) clipped to [lo - 1, hi + 1], for any float x but NaN.

    Values inside [lo, hi] round exactly as round_half_away does; the rest are
    clipped in float first, so they never reach int64 rounding out of range.
    """
    return round_half_away(np.clip(np.asarray(x, np.float64), lo - 1.0, hi + 1.0))


#: largest |input offset| the quantizer writes: float64-exact and <= OFF_MAX = 2^62 - 1
_OFF_LIM = 2.0**62 - 1024


def _round_offset(x):
    """Round input offsets (raw units), saturating at +-_OFF_LIM instead of wrapping."""
    x = np.asarray(x, np.float64)
    if np.any(np.isnan(x)):
        raise UserError("the input normalisation gives a NaN offset")
    return round_half_away(np.clip(x, -_OFF_LIM, _OFF_LIM))


def _mult(r: float, where: str) -> tuple[int, int]:
    try:
        return quantize_multiplier(r)
    except ValueError as e:
        raise UserError(f"{where}: cannot represent the rescaling ratio ({e})") from e


class _Builder:
    def __init__(self, g: FloatGraph, cal: Calibration, bits: int):
        self.g, self.cal, self.bits = g, cal, bits
        self.tensors: list[Tensor] = []
        self.ops: list[Op] = []
        self.vt: dict[str, int] = {}

    def tensor(self, name: str, shape, q: QParams) -> int:
        self.tensors.append(Tensor(_name(f"t{len(self.tensors)}_{name}"), q.dtype, tuple(shape),
                                   q.zero_point, q.scale))
        return len(self.tensors) - 1

    def q_of(self, value: str) -> QParams:
        return qparams(self.cal.lo[value], self.cal.hi[value], self.bits)

    def q_tensor(self, idx: int) -> QParams:
        t = self.tensors[idx]
        return QParams(t.dtype, t.scale, t.zero_point)

    def op(self, kind, inputs, output, params, arrays=None, source=""):
        self.ops.append(Op(kind, list(inputs), output, dict(params), dict(arrays or {}), source))

    def clamp_bounds(self, q: QParams, lo_f: float | None, hi_f: float | None) -> tuple[int, int]:
        qmin, qmax = DTYPE_RANGE[q.dtype]

        def bound(v: float | None, default: int) -> int:
            if v is None:
                return default
            if math.isnan(v):
                raise UserError("a clamp bound is NaN")
            # Clip in float before rounding: a huge finite bound (ONNX export
            # writes +-3.0e38 for an open side) must saturate, not wrap.
            return int(np.clip(q.zero_point + _round_clipped(v / q.scale, qmin - q.zero_point,
                                                              qmax - q.zero_point), qmin, qmax))

        return bound(lo_f, qmin), bound(hi_f, qmax)


def _act_bounds(n: FNode | None) -> tuple[float | None, float | None]:
    if n is None:
        return None, None
    if n.kind == "relu":
        return 0.0, None
    return n.attrs["lo"], n.attrs["hi"]


def _weights_and_bias(w: np.ndarray, bias_f: np.ndarray, qx: QParams, qy: QParams,
                      src: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per output channel weight scales, int8 weights and s32 biases of an FC/CONV1D.

    s_w[c] = max|w_c| / 127, the weights' own scale.  A channel whose
    accumulator could then overflow (docs/arithmetic.md: |bias| + sum|w| *
    2^(bits(x)-1) <= 2^31 - 1) gets a coarser scale instead: with weights in
    [-127, 127] and n_in = inputs per output (c_in * k for a conv),

        |bias| <= |round(b / (s_x s_w))| + |zx| * 127 * n_in
        bound  <= |b| / (s_x s_w) + 1/2 + (|zx| + 2^(bits-1)) * 127 * n_in

    so s_w >= |b| / (s_x * (R - 1)) with R = 2^31 - 1 - (|zx| + 2^(bits-1))
    * 127 * n_in keeps the bound (1 instead of 1/2 for the float division).
    That is what a trained "dead" unit needs (weights ~1e-28 next to an
    ordinary bias): its weights round to ~0 and the bias is kept.  The
    coarser scale is refused when R < 2 (the weights alone could overflow:
    fewer inputs per output, or int8 activations) or when its rounding of
    the weights could move the output by more than one output step (the
    weights matter next to that bias): that is the accumulator error.
    Channels that fit keep their scale, so such models export unchanged.
    """
    w2 = w.reshape(w.shape[0], -1)
    n_in = w2.shape[1]
    x_bits = 16 if qx.dtype == "s16" else 8
    zx = abs(int(qx.zero_point))

    def quant(s_w):
        wq = round_half_away(w / s_w.reshape((-1,) + (1,) * (w.ndim - 1)))
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            bias_s = bias_f / (qx.scale * s_w)
        # a scaled bias that rounds beyond 2^31 - 1 overflows: it is caught
        # here, before int64 rounding could wrap it
        big = ~np.isfinite(bias_s) | (np.abs(bias_s) >= S32_MAX + 0.5)
        bias = round_half_away(np.where(big, 0.0, bias_s)) - \
            qx.zero_point * wq.reshape(w.shape[0], -1).sum(axis=1)
        bound = acc_bound(wq, bias, x_bits)
        return wq, bias, big | (bound > S32_MAX), bias_s

    wmax = np.abs(w2).max(axis=1)
    s_w = np.where(wmax > 0, wmax / 127.0, 1.0)
    wq, bias, bad, bias_s = quant(s_w)
    if np.any(bad):
        room = S32_MAX - (zx + (1 << (x_bits - 1))) * 127 * n_in - 1
        # the input's largest |value|: a weight rounded off by e moves the
        # output by at most e * xmax
        qmn, qmx = DTYPE_RANGE[qx.dtype]
        xmax = qx.scale * max(qmx - qx.zero_point, qx.zero_point - qmn)
        for ch in np.flatnonzero(bad):
            if room < 1:
                break
            s_new = max(float(s_w[ch]), abs(float(bias_f[ch])) / (qx.scale * room))
            lost = np.abs(w2[ch] - s_new * round_half_away(w2[ch] / s_new)).sum() * xmax
            if lost <= qy.scale:
                s_w[ch] = s_new
        wq, bias, bad, bias_s = quant(s_w)
    if np.any(bad):
        ch = int(np.flatnonzero(bad)[0])
        # int8 activations help when the weights alone fill a 16-bit accumulator
        room16 = S32_MAX - (1 << 15) * 127 * n_in - 1
        hint = "use --bits 8, smaller" if x_bits == 16 and room16 < 1 else "use smaller"
        why = f"bias {float(bias_f[ch])!r} is {float(bias_s[ch]):.6g} in accumulator units" \
            if abs(float(bias_s[ch])) >= S32_MAX + 0.5 or not np.isfinite(bias_s[ch]) else \
            f"bound {int(acc_bound(wq[ch:ch + 1], bias[ch:ch + 1], x_bits)[0])}"
        raise UserError(f"layer {src}: the int32 accumulator could overflow (output channel "
                        f"{ch}: {why} > 2^31-1 with {n_in} inputs per output); {hint} "
                        "weights/bias or fewer inputs per output")
    return s_w, wq, bias


def build(g: FloatGraph, cal: Calibration, raw_scale: np.ndarray, bits: int = 8,
          frac_bits: int = 16, argmax: bool = False, name: str = "model",
          feature_names: list[str] | None = None) -> Quantized:
    """The integer graph for ``g``: one pass over the float ops in order.

    Each float value gets a quantized tensor (reshapes alias theirs); a
    ReLU/clamp right after linear/conv/add/avgpool fuses into its [lo, hi].
    The arena is planned; validation is the caller's (mlexport) step.
    """
    if bits not in (8, 16):
        raise UserError(f"--bits must be 8 or 16 (got {bits})")
    b = _Builder(g, cal, bits)
    n_in = int(np.prod(g.input_shape))
    # ---- INPUT: raw s64 features -> normalised, quantized input
    qin = b.q_of(g.input_name)
    a = np.ones(n_in) if g.in_scale is None else np.broadcast_to(g.in_scale, g.input_shape).ravel()
    c = np.zeros(n_in) if g.in_bias is None else np.broadcast_to(g.in_bias, g.input_shape).ravel()
    if np.any(a < 0):  # quantize() moves the sign into the first layers where it can
        i = int(np.flatnonzero(a < 0)[0])
        nm = feature_names[i] if feature_names and len(feature_names) == n_in else f"x{i}"
        raise UserError(f"input feature {i} ('{nm}'): the input normalisation has a negative "
                        "scale, which the integer INPUT op cannot express")
    qmin, qmax = DTYPE_RANGE[qin.dtype]
    offs, pres, mults, shifts = [], [], [], []
    for i in range(n_in):
        unit = a[i] * raw_scale[i]  # normalised value per raw unit
        if unit == 0:  # the model ignores this feature
            off, pre, m, t = 0, 0, 0, 1
        else:
            off = int(np.clip(_round_offset(-c[i] / unit), -OFF_MAX, OFF_MAX))
            # raw units from one end of y's range to the other: d must stay below 2^31
            span = (qmax - qmin + 1) * qin.scale / unit
            pre = min(63, max(0, math.ceil(math.log2(span / 2**30)))) if span > 2**30 else 0
            m, t = _mult(unit / qin.scale * 2**pre, "input normalisation")
        offs.append(off)
        pres.append(pre)
        mults.append(m)
        shifts.append(t)
    t_in = b.tensor("input", g.input_shape, qin)
    b.op("input", [], t_in, {"in_off": 0, "n": n_in},
         {"off": np.array(offs, np.int64), "pre": np.array(pres, np.uint8),
          "mult": np.array(mults, np.int32), "shift": np.array(shifts, np.uint8)}, "input")
    b.vt[g.input_name] = t_in

    shapes = {nd.name: nd.shape for nd in g.nodes}
    shapes[g.input_name] = tuple(g.input_shape)

    def fshape(v: str) -> tuple:
        return shapes[v]

    fused: set[str] = set()
    for n in g.nodes:
        if n.name in fused:
            continue
        ins = [b.vt[s] for s in n.inputs]
        qx = b.q_tensor(ins[0])
        tx = b.tensors[ins[0]]
        # the float shape: an aliased (reshaped) tensor keeps its first shape in the IR
        xshape = fshape(n.inputs[0])
        src = n.source
        act = None
        if n.kind in _FUSES_CLAMP:
            users = g.users(n.name)
            if len(users) == 1 and users[0].kind in ("relu", "clamp") and n.name not in g.outputs:
                act = users[0]
        out_value = act.name if act is not None else n.name
        if n.kind in ("linear", "conv1d"):
            qy = b.q_of(out_value)
            w = np.asarray(n.attrs["w"], np.float64)
            bias_f = np.asarray(n.attrs["b"], np.float64)
            s_w, wq, bias = _weights_and_bias(w, bias_f, qx, qy, src)
            mq = [_mult(qx.scale * s / qy.scale, f"layer {src}") for s in s_w]
            lo, hi = b.clamp_bounds(qy, *_act_bounds(act))
            arrays = {"w": wq.astype(np.int8), "bias": bias.astype(np.int32),
                      "mult": np.array([m for m, _ in mq], np.int32),
                      "shift": np.array([t for _, t in mq], np.uint8)}
            if n.kind == "linear":
                if len(xshape) != 1 or xshape[0] != w.shape[1]:
                    raise UserError(f"layer {src}: linear on a tensor of shape {xshape} "
                                    "(flatten it first)")
                ty = b.tensor(n.kind, (w.shape[0],), qy)
                b.op("fc", ins, ty, {"n_in": w.shape[1], "n_out": w.shape[0], "lo": lo, "hi": hi},
                     arrays, src)
            else:
                c_in, l_in = xshape
                l_out = n.shape[1]
                ty = b.tensor(n.kind, (w.shape[0], l_out), qy)
                b.op("conv1d", ins, ty, {"c_in": c_in, "l_in": l_in, "c_out": w.shape[0],
                                         "l_out": l_out, "k": w.shape[2], "stride": n.attrs["stride"],
                                         "pad": n.attrs["pad"], "dil": n.attrs["dil"], "lo": lo,
                                         "hi": hi}, arrays, src)
        elif n.kind in ("relu", "clamp"):
            ty = b.tensor(n.kind, tx.shape, qx)
            lo, hi = b.clamp_bounds(qx, *_act_bounds(n))
            b.op("clamp", ins, ty, {"n": tx.len, "lo": lo, "hi": hi}, source=src)
        elif n.kind == "leaky_relu":
            if not n.attrs["alpha"] >= 0:
                raise UserError(f"layer {src}: leaky_relu slope {n.attrs['alpha']!r} is negative; "
                                "only slopes >= 0 are supported")
            qy = b.q_of(n.name)
            m, t = _mult(qx.scale / qy.scale, f"layer {src}")
            mb, tb = _mult(n.attrs["alpha"] * qx.scale / qy.scale, f"layer {src}")
            ty = b.tensor(n.kind, tx.shape, qy)
            b.op("leaky_relu", ins, ty, {"n": tx.len, "mult": m, "shift": t, "mult_b": mb,
                                         "shift_b": tb}, source=src)
        elif n.kind in ("sigmoid", "tanh"):
            if n.kind == "sigmoid":
                qy = QParams("s8", 1 / 256, -128) if bits == 8 else QParams("s16", 1 / 32768, 0)
                f0 = lambda v: 1.0 / (1.0 + np.exp(-v))  # noqa: E731
            else:
                qy = QParams("s8", 1 / 128, 0) if bits == 8 else QParams("s16", 1 / 32768, 0)
                f0 = np.tanh
            f = f0
            if "post" in n.attrs:  # a*f+b: its range is not f's, take the calibrated one
                pa, pb = n.attrs["post"]
                qy = b.q_of(n.name)
                f = lambda v: pa * f0(v) + pb  # noqa: E731
            if qx.dtype == "s8":
                xs = np.arange(-128, 128, dtype=np.float64)
            else:
                xs = np.arange(513, dtype=np.float64) * 128 - 32768
            lo_t, hi_t = DTYPE_RANGE[qy.dtype]
            table = np.clip(qy.zero_point + _round_clipped(f(qx.scale * (xs - qx.zero_point))
                                                           / qy.scale, lo_t - qy.zero_point,
                                                           hi_t - qy.zero_point), lo_t, hi_t)
            ty = b.tensor(n.kind, tx.shape, qy)
            b.op("lut", ins, ty, {"n": tx.len}, {"table": table.astype(np.int16)}, src)
        elif n.kind == "softmax":
            if qx.dtype == "s8":
                qy, sbits, dmax, shift = QParams("s8", 2.0**-8, -128), 8, 255, 0
            else:
                qy, sbits, dmax = QParams("s16", 2.0**-15, 0), 15, 65535
            # entries past exp(-d*s) < 2^-16 are 0: cover only up to there
            dz = min(dmax, math.ceil(16 * math.log(2) / qx.scale) + 1)
            if qx.dtype == "s16":
                shift = 0
                while (dz >> shift) + 1 > 1024:
                    shift += 1
            tlen = min(1024, (dz >> shift) + 1)
            j = np.arange(tlen, dtype=np.float64)
            table = round_half_away(2.0**15 * np.exp(-j * 2.0**shift * qx.scale))
            rows = xshape[-1]
            ty = b.tensor(n.kind, tx.shape, qy)
            b.op("softmax", ins, ty, {"outer": tx.len // rows, "n": rows, "shift": shift,
                                      "bits": sbits, "table_len": tlen},
                 {"table": table.astype(np.int32)}, src)
        elif n.kind == "reshape":
            b.vt[n.name] = ins[0]  # same bytes, row-major: no op needed
            continue
        elif n.kind == "add":
            qy = b.q_of(out_value)
            qb = b.q_tensor(ins[1])
            if b.tensors[ins[1]].len != tx.len:
                raise UserError(f"layer {src}: add of tensors with different sizes "
                                "(broadcasting is not supported)")
            r1, r2 = qx.scale / qy.scale, qb.scale / qy.scale
            _, t = _mult(max(r1, r2), f"layer {src}")
            lo, hi = b.clamp_bounds(qy, *_act_bounds(act))
            ty = b.tensor(n.kind, tx.shape, qy)
            b.op("add", ins, ty, {"n": tx.len, "mult": quantize_multiplier_at(r1, t),
                                  "mult_b": quantize_multiplier_at(r2, t), "shift": t,
                                  "lo": lo, "hi": hi}, source=src)
        elif n.kind == "cat":
            qy = b.q_of(n.name)
            parts = []
            for i in ins:
                qi = b.q_tensor(i)
                if (qi.dtype, qi.scale, qi.zero_point) == (qy.dtype, qy.scale, qy.zero_point):
                    parts.append(i)
                    continue
                m, t = _mult(qi.scale / qy.scale, f"layer {src}")
                tr = b.tensor("rescale", b.tensors[i].shape, qy)
                qlo, qhi = DTYPE_RANGE[qy.dtype]
                b.op("rescale", [i], tr, {"n": b.tensors[i].len, "mult": m, "shift": t,
                                          "lo": qlo, "hi": qhi}, source=src)
                parts.append(tr)
            ax = n.attrs["axis"]
            sa, sb = fshape(n.inputs[0]), fshape(n.inputs[1])
            outer = int(np.prod(sa[:ax], dtype=np.int64))
            ty = b.tensor(n.kind, n.shape, qy)
            b.op("concat", parts, ty, {"outer": outer,
                                       "a_inner": int(np.prod(sa[ax:], dtype=np.int64)),
                                       "b_inner": int(np.prod(sb[ax:], dtype=np.int64))},
                 source=src)
        elif n.kind in ("maxpool1d", "avgpool1d"):
            if len(xshape) != 2:
                raise UserError(f"layer {src}: pooling needs a (channels, length) tensor")
            c, l_in = xshape
            p = {"c": c, "l_in": l_in, "l_out": n.shape[1], "k": n.attrs["k"],
                 "stride": n.attrs["stride"]}
            if n.kind == "maxpool1d":
                ty = b.tensor(n.kind, n.shape, qx)
            else:
                qy = b.q_of(out_value)
                m, t = _mult(qx.scale / (n.attrs["k"] * qy.scale), f"layer {src}")
                lo, hi = b.clamp_bounds(qy, *_act_bounds(act))
                p.update(mult=m, shift=t, lo=lo, hi=hi)
                ty = b.tensor(n.kind, n.shape, qy)
            b.op(n.kind, ins, ty, p, source=src)
        elif n.kind == "argmax":
            rows = xshape[-1]
            ty = b.tensor(n.kind, (tx.len // rows,), QParams("s32", 1.0, 0))
            b.op("argmax", ins, ty, {"outer": tx.len // rows, "n": rows}, source=src)
        else:
            raise UserError(f"no quantized form for float op {n.kind} at {src}")
        b.vt[n.name] = ty
        if act is not None:
            fused.add(act.name)
            b.vt[act.name] = ty

    # ---- outputs
    outputs: list[IOSpec] = []
    out_values = list(g.outputs)
    names = list(g.output_names)
    off = 0
    for k, (v, nm) in enumerate(zip(out_values, names)):
        t = b.vt[v]
        tt = b.tensors[t]
        shape = g.node(v).shape if any(n.name == v for n in g.nodes) else g.input_shape
        added = argmax and tt.dtype != "s32"
        if added:
            rows = shape[-1] if len(shape) else 1
            ta = b.tensor("argmax", (tt.len // rows,), QParams("s32", 1.0, 0))
            b.op("argmax", [t], ta, {"outer": tt.len // rows, "n": rows}, source="--argmax")
            t, tt, shape = ta, b.tensors[ta], tuple(shape[:-1]) or (1,)
        if tt.dtype == "s32":
            b.op("output", [t], None, {"out_off": off, "n": tt.len, "mode": OUTPUT_COPY,
                                       "mult": 0, "shift": 0}, source=nm)
            outputs.append(IOSpec(nm, off, tuple(shape) or (1,), frac_bits=None,
                                  meta={"kind": "index", "argmax_added": added}))
        else:
            qmn, qmx = DTYPE_RANGE[tt.dtype]
            reach = tt.scale * max(qmx - tt.zero_point, tt.zero_point - qmn)
            fb = frac_bits
            while fb > 0 and reach * 2.0**fb > S32_MAX:
                fb -= 1
            m, sh = _mult(tt.scale * 2.0**fb, f"output {nm}")
            b.op("output", [t], None, {"out_off": off, "n": tt.len, "mode": OUTPUT_DEQUANT,
                                       "mult": m, "shift": sh}, source=nm)
            outputs.append(IOSpec(nm, off, tuple(shape) or (1,), frac_bits=fb,
                                  meta={"kind": "fixed", "scale": tt.scale,
                                        "zero_point": tt.zero_point}))
        off += tt.len
    feats = feature_names or [f"x{i}" for i in range(n_in)]
    if len(feats) != n_in:
        feats = [f"x{i}" for i in range(n_in)]
    inspec = IOSpec(g.input_name if g.input_name.isidentifier() else "input", 0,
                    tuple(g.input_shape), features=list(feats),
                    meta={"raw_scale": [float(s) for s in raw_scale],
                          "scale": qin.scale, "zero_point": qin.zero_point})
    graph = Graph(name, b.tensors, b.ops, [inspec], outputs)
    plan_arena(graph)
    return Quantized(graph, dict(b.vt), raw_scale, out_values)


def to_raw(x: np.ndarray, raw_scale: np.ndarray) -> np.ndarray:
    """Float features -> raw s64 features: round(x / raw_scale), saturated."""
    flat = np.asarray(x, np.float64).reshape(x.shape[0], -1) / raw_scale
    flat = np.clip(np.floor(flat + 0.5), -2.0**62, 2.0**62)
    return flat.astype(np.int64)


def quantize(g: FloatGraph, calib: np.ndarray, bits: int = 8, percentile: float | None = None,
             frac_bits: int = 16, argmax: bool = False, name: str = "model",
             feature_names: list[str] | None = None, progress: bool = True) -> Quantized:
    """Calibrate and build the integer graph (arena planned, not yet validated)."""
    rs = raw_scales(calib)
    # calibrate on exactly what the kernel will see: the raw fixed-point inputs
    xq = (to_raw(calib, rs) * rs).reshape(calib.shape)
    fold_input_sign(g, feature_names)
    normalize_input(g, xq)
    snap_input_offset(g, rs, _round_offset)
    cal = calibrate(g, xq, percentile, progress=progress)
    return build(g, cal, rs, bits, frac_bits, argmax, name, feature_names)
