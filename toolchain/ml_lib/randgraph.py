"""Random valid quantized graphs over every op, and raw inputs that stress them.

``random_case(seed)`` gives a (graph, raw) pair from one integer seed, so a
failing differential case is reproduced from the seed alone; ``cases()`` is
the hypothesis strategy over seeds. The graphs are built to hit the corners
of docs/arithmetic.md, not to be good models: widths 1..512, multipliers 0,
1 and 2^31 - 1, shifts 1 and 62, zero points -128 and 127, int8 and int16
activations, residual ADDs and CONCATs of earlier tensors, LUTs (s16 ones
interpolate), softmax, argmax, conv1d with stride/padding/dilation, and
FC/CONV1D accumulator bounds exactly at 2^31 - 1. Every graph passes
:func:`ml_lib.validate.validate`.

Parameters are picked from the values the new op actually sees (the
reference evaluates each op on calibration rows as the graph grows), so that
outputs spread over the dtype's range instead of always saturating; a share
of ops gets extreme parameters on purpose.
"""
from __future__ import annotations

import math
import struct

import numpy as np

from .arith import M_MAX, quantize_multiplier
from .blob import HEADER_LEN, read_blob, write_blob
from .ir import DTYPE_RANGE, OUTPUT_COPY, OUTPUT_DEQUANT, Graph, IOSpec, Op, Tensor, plan_arena
from .reference.ops import OPS, Ctx
from .validate import S32_MAX, GraphError, acc_bound, validate

S64_MIN, S64_MAX = -(2**63), 2**63 - 1
MAX_WIDTH = 512
CALIB_ROWS = 12

#: extreme (multiplier, shift) pairs every requantizing op draws from now and then
EXTREME_REQUANT = [(0, 1), (1, 1), (M_MAX, 1), (M_MAX, 62), (1, 62), (0, 62), (M_MAX, 31),
                   (1 << 30, 30)]


def _width(rng, hi=MAX_WIDTH) -> int:
    """1..hi, mostly small (speed), sometimes the maximum."""
    r = rng.random()
    if r < 0.05:
        return hi
    if r < 0.15:
        return 1
    return int(min(hi, max(1, round(math.exp(rng.uniform(0, math.log(min(hi, 96))))))))


def _zero_point(rng, dtype) -> int:
    if dtype != "s8":
        return 0
    r = rng.random()
    if r < 0.2:
        return -128
    if r < 0.4:
        return 127
    return int(rng.integers(-128, 128))


def _divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


class _Builder:
    def __init__(self, rng, name, n_calib=CALIB_ROWS):
        self.rng = rng
        self.g = Graph(name, [], [], [], [])
        self.vals: dict[int, np.ndarray] = {}
        self.n_calib = n_calib
        self.raw_parts: list[np.ndarray] = []

    # --- plumbing ----------------------------------------------------------
    def add(self, kind, inputs, y, params, arrays=None) -> int | None:
        """Append an op (y = (dtype, len, zp) or None) and evaluate it on the calibration rows."""
        g = self.g
        out = None
        if y is not None:
            dtype, n, zp = y
            g.tensors.append(Tensor(f"t{len(g.tensors)}", dtype, (n,), zero_point=zp))
            out = len(g.tensors) - 1
        op = Op(kind, list(inputs), out, dict(params), dict(arrays or {}),
                source=f"rand {kind} {len(g.ops)}")
        g.ops.append(op)
        if kind != "output":
            xs = [self.vals[i] for i in inputs]
            tx = [g.tensors[i] for i in inputs]
            ctx = Ctx(raw=self.raw, out=None)
            self.vals[out] = OPS[kind](op, xs, tx, g.tensors[out], ctx)
        return out

    def t(self, i) -> Tensor:
        return self.g.tensors[i]

    def requant(self, v, dtype, per_channel_axis=None):
        """(M, t) arrays mapping values ``v`` onto ``dtype``'s range, or extremes."""
        rng = self.rng
        v = np.abs(np.asarray(v, dtype=np.float64))
        if per_channel_axis is not None:
            v = np.moveaxis(v, per_channel_axis, 0).reshape(v.shape[per_channel_axis], -1)
        else:
            v = v.reshape(1, -1)
        # a high quantile, not the max: the s64-limit rows would otherwise set every scale
        span = np.maximum(np.quantile(v, 0.8, axis=1), 0.5 * v.max(axis=1) * (rng.random() < 0.3))
        lo, hi = DTYPE_RANGE[dtype]
        ms, ts = [], []
        for s in span:
            if rng.random() < 0.1:
                m, t = EXTREME_REQUANT[rng.integers(len(EXTREME_REQUANT))]
            else:
                target = (hi - lo) / 2 * rng.uniform(0.3, 2.5)
                m, t = quantize_multiplier(target / max(s, 1.0))
            ms.append(m)
            ts.append(t)
        return np.array(ms, dtype=np.int32), np.array(ts, dtype=np.uint8)

    def clamp_range(self, dtype, zp):
        rng = self.rng
        lo, hi = DTYPE_RANGE[dtype]
        r = rng.random()
        if r < 0.5:
            return lo, hi
        if r < 0.77:
            return max(lo, zp), hi  # fused ReLU
        if r < 0.8:
            a = int(rng.integers(lo, hi + 1))
            return a, a  # constant output
        # a window around the zero point, so some values pass and some saturate
        w = int(rng.integers(1, (hi - lo) // 2))
        return max(lo, zp - w), min(hi, zp + w)

    # --- input -------------------------------------------------------------
    def inputs(self, n_in, dtype):
        """One or more INPUT ops covering [0, n_in); returns their tensor indices."""
        rng = self.rng
        cuts = sorted(set(int(c) for c in rng.integers(1, n_in, size=rng.integers(0, 3)))) if n_in > 1 else []
        bounds = [0] + cuts + [n_in]
        self.raw = np.zeros((self.n_calib, n_in), dtype=np.int64)
        outs = []
        for a, b in zip(bounds[:-1], bounds[1:]):
            n = b - a
            r = rng.random()
            if r < 0.1:
                off = rng.choice([-(2**62 - 1), 2**62 - 1], size=n)
            elif r < 0.5:
                off = rng.integers(-1000, 1000, size=n)
            else:
                off = rng.integers(-(2**40), 2**40, size=n)
            pre = rng.choice([0, 0, 0, 1, 3, 8, 20, 40, 62, 63], size=n).astype(np.uint8)
            zp = _zero_point(rng, dtype)
            lo, hi = DTYPE_RANGE[dtype]
            ms, ts = [], []
            for _ in range(n):
                if rng.random() < 0.15:
                    m, t = EXTREME_REQUANT[rng.integers(len(EXTREME_REQUANT))]
                else:
                    # d = (raw - off) / 2^pre spans about 2^e; map that onto the dtype
                    e = rng.uniform(0, 30)
                    m, t = quantize_multiplier((hi - lo) / 2 / 2**e)
                ms.append(m)
                ts.append(t)
            arrays = {"off": off.astype(np.int64), "pre": pre, "mult": np.array(ms, dtype=np.int32),
                      "shift": np.array(ts, dtype=np.uint8)}
            op = Op("input", [], None, {"in_off": a, "n": n}, arrays)
            self.raw[:, a:b] = raw_features(op, rng, self.n_calib)
            outs.append(self.add("input", [], (dtype, n, zp), op.params, arrays))
        self.g.inputs = [IOSpec("x", 0, (n_in,), features=[f"feat{i}" for i in range(n_in)])]
        return outs

    # --- body ops ----------------------------------------------------------
    def fc(self, x, dtype):
        rng = self.rng
        tx = self.t(x)
        n_in, n_out = tx.len, _width(rng)
        w = _fit_bound(_weights(rng, (n_out, n_in)), tx.dtype)
        bias = self._bias(w, tx, n_out)
        acc = bias + self.vals[x] @ w.T.astype(np.int64)
        m, t = self.requant(acc, dtype, per_channel_axis=1)
        zp = _zero_point(rng, dtype)
        lo, hi = self.clamp_range(dtype, zp)
        return self.add("fc", [x], (dtype, n_out, zp), {"n_in": n_in, "n_out": n_out, "lo": lo, "hi": hi},
                        {"w": w, "bias": bias, "mult": m, "shift": t})

    def _bias(self, w, tx, n_out):
        """Random bias, scaled into the accumulator bound; some channels exactly at it."""
        rng = self.rng
        room = S32_MAX - acc_bound(w, np.zeros(n_out, dtype=np.int64), 8 * (2 if tx.dtype == "s16" else 1))
        r = rng.random()
        if r < 0.4:
            bias = rng.integers(-5000, 5000, size=n_out)
        elif r < 0.7:
            bias = (rng.uniform(-1, 1, size=n_out) * room).astype(np.int64)
        else:
            bias = rng.integers(-(2**20), 2**20, size=n_out)
        bias = np.clip(bias, -room, room)
        edge = rng.random(n_out) < 0.15
        bias[edge] = room[edge] * rng.choice([-1, 1], size=int(edge.sum()))
        return bias.astype(np.int32)

    def conv1d(self, x, dtype):
        rng = self.rng
        tx = self.t(x)
        n = tx.len
        c_in = int(rng.choice(_divisors(n)[:6]))
        l_in = n // c_in
        k = int(rng.integers(1, 8))
        dil = int(rng.integers(1, 4))
        pad = int(rng.integers(0, 4))
        while l_in + 2 * pad < dil * (k - 1) + 1:
            if dil > 1:
                dil -= 1
            elif k > 1:
                k -= 1
            else:
                pad += 1
        stride = int(rng.integers(1, 4))
        l_out = (l_in + 2 * pad - dil * (k - 1) - 1) // stride + 1
        c_out = max(1, min(int(rng.integers(1, 17)), MAX_WIDTH // l_out))
        if l_out > MAX_WIDTH:
            return None
        w = _fit_bound(_weights(rng, (c_out, c_in, k)), tx.dtype)
        bias = self._bias(w, tx, c_out)
        params = {"c_in": c_in, "l_in": l_in, "c_out": c_out, "l_out": l_out, "k": k,
                  "stride": stride, "pad": pad, "dil": dil, "lo": 0, "hi": 0}
        acc = _conv_acc(params, w, bias, self.vals[x], tx.zero_point)
        m, t = self.requant(acc, dtype, per_channel_axis=1)
        zp = _zero_point(rng, dtype)
        params["lo"], params["hi"] = self.clamp_range(dtype, zp)
        return self.add("conv1d", [x], (dtype, c_out * l_out, zp), params,
                        {"w": w, "bias": bias, "mult": m, "shift": t})

    def pool(self, x, kind):
        rng = self.rng
        tx = self.t(x)
        n = tx.len
        c = int(rng.choice(_divisors(n)[:6]))
        l_in = n // c
        k = int(rng.integers(1, min(l_in, 6) + 1))
        stride = int(rng.integers(1, 4))
        l_out = (l_in - k) // stride + 1
        params = {"c": c, "l_in": l_in, "l_out": l_out, "k": k, "stride": stride}
        if kind == "maxpool1d":
            return self.add(kind, [x], (tx.dtype, c * l_out, tx.zero_point), params)
        dtype = tx.dtype if rng.random() < 0.8 else ("s16" if tx.dtype == "s8" else "s8")
        v = (self.vals[x] - tx.zero_point) * k
        m, t = self.requant(v, dtype)
        zp = _zero_point(rng, dtype)
        lo, hi = self.clamp_range(dtype, zp)
        params.update(mult=int(m[0]), shift=int(t[0]), lo=lo, hi=hi)
        return self.add(kind, [x], (dtype, c * l_out, zp), params)

    def clamp(self, x):
        tx = self.t(x)
        lo, hi = self.clamp_range(tx.dtype, tx.zero_point)
        return self.add("clamp", [x], (tx.dtype, tx.len, tx.zero_point), {"n": tx.len, "lo": lo, "hi": hi})

    def leaky_relu(self, x, dtype):
        rng = self.rng
        tx = self.t(x)
        v = self.vals[x] - tx.zero_point
        m, t = self.requant(v, dtype)
        if rng.random() < 0.8:
            mb, tb = quantize_multiplier(max(int(m[0]), 1) / 2.0 ** int(t[0]) * rng.uniform(0.01, 0.5))
        else:
            mb, tb = EXTREME_REQUANT[rng.integers(len(EXTREME_REQUANT))]
        zp = _zero_point(rng, dtype)
        return self.add("leaky_relu", [x], (dtype, tx.len, zp),
                        {"n": tx.len, "mult": int(m[0]), "shift": int(t[0]), "mult_b": mb, "shift_b": tb})

    def lut(self, x, dtype):
        rng = self.rng
        tx = self.t(x)
        lo, hi = DTYPE_RANGE[dtype]
        size = 256 if tx.dtype == "s8" else 513
        r = rng.random()
        if r < 0.5:  # sigmoid / tanh shapes
            u = np.linspace(-rng.uniform(1, 8), rng.uniform(1, 8), size)
            f = np.tanh(u) if rng.random() < 0.5 else 1 / (1 + np.exp(-u))
            table = np.round(lo + (f - f.min()) / max(np.ptp(f), 1e-9) * (hi - lo))
        elif r < 0.8:
            table = rng.integers(lo, hi + 1, size=size)
        else:  # steps between the extremes: the largest interpolation slopes
            table = rng.choice([lo, hi], size=size)
        zp = _zero_point(rng, dtype)
        return self.add("lut", [x], (dtype, tx.len, zp), {"n": tx.len},
                        {"table": np.clip(table, lo, hi).astype(np.int16)})

    def add_op(self, x, others, dtype):
        rng = self.rng
        tx = self.t(x)
        same = [b for b in others if self.t(b).len == tx.len and self.t(b).dtype in ("s8", "s16")]
        b = int(rng.choice(same)) if same else x
        tb = self.t(b)
        va, vb = self.vals[x] - tx.zero_point, self.vals[b] - tb.zero_point
        lo, hi = DTYPE_RANGE[dtype]
        if rng.random() < 0.1:
            m, mb, t = [int(v) for v in rng.choice([0, 1, M_MAX], size=2)] + [int(rng.choice([1, 62]))]
        else:
            ra = (hi - lo) / 2 / max(np.quantile(np.abs(va), 0.8), 1) * rng.uniform(0.2, 1.5)
            rb = (hi - lo) / 2 / max(np.quantile(np.abs(vb), 0.8), 1) * rng.uniform(0.2, 1.5)
            _, t = quantize_multiplier(max(ra, rb))
            m, mb = (min(M_MAX, int(round(r * 2.0**t))) for r in (ra, rb))
        zp = _zero_point(rng, dtype)
        clo, chi = self.clamp_range(dtype, zp)
        return self.add("add", [x, b], (dtype, tx.len, zp),
                        {"n": tx.len, "mult": m, "mult_b": mb, "shift": t, "lo": clo, "hi": chi})

    def rescale(self, x, dtype):
        tx = self.t(x)
        m, t = self.requant(self.vals[x] - tx.zero_point, dtype)
        zp = _zero_point(self.rng, dtype)
        lo, hi = self.clamp_range(dtype, zp)
        return self.add("rescale", [x], (dtype, tx.len, zp),
                        {"n": tx.len, "mult": int(m[0]), "shift": int(t[0]), "lo": lo, "hi": hi})

    def concat(self, x, others):
        rng = self.rng
        tx = self.t(x)
        same = [b for b in others if self.t(b).dtype == tx.dtype and self.t(b).zero_point == tx.zero_point
                and self.t(b).len + tx.len <= MAX_WIDTH * 2]
        b = int(rng.choice(same)) if same else x
        tb = self.t(b)
        outer = int(rng.choice([d for d in _divisors(math.gcd(tx.len, tb.len))][:4]))
        return self.add("concat", [x, b], (tx.dtype, tx.len + tb.len, tx.zero_point),
                        {"outer": outer, "a_inner": tx.len // outer, "b_inner": tb.len // outer})

    def reshape(self, x):
        tx = self.t(x)
        return self.add("reshape", [x], (tx.dtype, tx.len, tx.zero_point), {"n": tx.len})

    def softmax(self, x):
        rng = self.rng
        tx = self.t(x)
        outer = int(rng.choice(_divisors(tx.len)[:4]))
        if outer == tx.len and tx.len > 1 and rng.random() < 0.8:
            outer = 1  # rows of one element always give the same probability
        n = tx.len // outer
        span = 255 if tx.dtype == "s8" else 65535
        shift = 0 if tx.dtype == "s8" and rng.random() < 0.7 else int(rng.integers(0, 17))
        table_len = int(min(1024, (span >> shift) + 1, rng.integers(1, 1025)))
        s_x = rng.uniform(0.001, 0.5) / 2**shift
        table = np.round(2**15 * np.exp(-np.arange(table_len) * 2**shift * s_x)).astype(np.int64)
        if rng.random() < 0.2:
            table = rng.integers(0, 2**15 + 1, size=table_len)
        table[0] = max(1, min(int(table[0]), 2**15))
        if tx.dtype == "s16" or rng.random() < 0.2:
            dtype, bits, zp = "s16", 15, 0
        else:
            dtype, bits, zp = "s8", 8, -128
        if rng.random() < 0.2:
            bits = int(rng.integers(1, 16))
            zp = _zero_point(rng, dtype)
        return self.add("softmax", [x], (dtype, tx.len, zp),
                        {"outer": outer, "n": n, "shift": shift, "bits": bits, "table_len": table_len},
                        {"table": table.astype(np.int32)})

    def argmax(self, x):
        tx = self.t(x)
        outer = int(self.rng.choice(_divisors(tx.len)[:4]))
        return self.add("argmax", [x], ("s32", outer, 0), {"outer": outer, "n": tx.len // outer})

    def output(self, x, off):
        rng = self.rng
        tx = self.t(x)
        if tx.dtype == "s32" or rng.random() < 0.25:
            params = {"out_off": off, "n": tx.len, "mode": OUTPUT_COPY, "mult": 0, "shift": 0}
            if rng.random() < 0.5:  # ignored in copy mode, but must not matter
                params.update(mult=int(rng.integers(0, M_MAX + 1)), shift=int(rng.integers(1, 63)))
        else:
            if rng.random() < 0.15:
                m, t = EXTREME_REQUANT[rng.integers(len(EXTREME_REQUANT))]
            else:
                m, t = quantize_multiplier(rng.uniform(1e-4, 1) * 2**16)
            params = {"out_off": off, "n": tx.len, "mode": OUTPUT_DEQUANT, "mult": m, "shift": t}
        self.add("output", [x], None, params)
        return tx.len


def _weights(rng, shape):
    r = rng.random()
    if r < 0.1:
        return rng.choice(np.array([-127, 127], dtype=np.int8), size=shape)
    if r < 0.2:
        w = rng.integers(-127, 128, size=shape) * (rng.random(shape) < 0.1)
        return w.astype(np.int8)
    return rng.integers(-127, 128, size=shape).astype(np.int8)


def _fit_bound(w, x_dtype):
    """Scale down the rows of ``w`` whose sum |w| * 2^(bits-1) alone breaks the s32 bound."""
    one = 1 << (15 if x_dtype == "s16" else 7)
    flat = w.reshape(w.shape[0], -1).astype(np.int64)
    s = np.abs(flat).sum(axis=1)
    limit = S32_MAX // one
    over = s > limit
    if over.any():
        # floor towards zero keeps every row at or below the limit
        f = np.where(over, limit / np.maximum(s, 1), 1.0)
        flat = np.trunc(flat * f[:, None]).astype(np.int64)
    return flat.reshape(w.shape).astype(np.int8)


def _conv_acc(params, w, bias, x, zx):
    """The CONV1D accumulators (before requantization) of calibration rows ``x``."""
    from .reference.ops.conv1d import run as conv_run

    c_out, l_out = params["c_out"], params["l_out"]
    p = dict(params, lo=-(2**31), hi=2**31 - 1)
    # rq(acc, 2^30, 30) = floor(acc + 1/2) = acc: the identity requantization
    probe = Op("conv1d", [0], 0, p, {"w": w, "bias": bias, "mult": np.full(c_out, 1 << 30, np.int32),
                                     "shift": np.full(c_out, 30, np.uint8)})
    acc = conv_run(probe, [x], [Tensor("x", "s8", (x.shape[1],), zero_point=zx)],
                   Tensor("acc", "s32", (c_out * l_out,)), None)
    return acc.reshape(x.shape[0], c_out, l_out)


def raw_features(input_op: Op, rng, rows: int) -> np.ndarray:
    """Raw s64 rows for one INPUT op: the region that maps onto the dtype, plus extremes.

    Mixes values inside the op's interesting range (so outputs vary),
    values just around its saturation points, and the s64 limits
    (-2^63, 2^63 - 1, +-2^62 and neighbours).
    """
    a = input_op.arrays
    n = input_op.params["n"]
    off = np.asarray(a["off"], dtype=np.float64)
    pre = np.asarray(a["pre"], dtype=np.float64)
    m = np.maximum(np.asarray(a["mult"], dtype=np.float64), 1)
    t = np.asarray(a["shift"], dtype=np.float64)
    # |d| up to 2^16 * 2^t / M covers the s16 range (and s8 with room)
    d_span = np.minimum(65536 * 2.0**t / m, 2.0**31)
    u = rng.uniform(-1, 1, size=(rows, n)) ** 3  # denser near 0
    raw = off + u * d_span * 2.0**pre
    raw = np.clip(raw, -9.2e18, 9.2e18).astype(np.int64)
    extremes = np.array([S64_MIN, S64_MAX, -(2**62), 2**62, -(2**62) - 1, 2**62 + 1, 0, -1, 1],
                        dtype=np.int64)
    pick = rng.random((rows, n))
    ex = rng.choice(extremes, size=(rows, n))
    raw = np.where(pick < 0.1, ex, raw)
    near_off = np.asarray(a["off"], dtype=np.int64) + rng.integers(-2, 3, size=(rows, n))
    raw = np.where((pick >= 0.1) & (pick < 0.15), near_off, raw)
    if rows >= 3:
        raw[0], raw[1] = S64_MIN, S64_MAX  # every feature at once at the s64 limits
    return raw


def random_inputs(graph: Graph, rng, rows: int = 24) -> np.ndarray:
    """(rows, n_in) int64 raw features exercising every INPUT op of ``graph``."""
    raw = np.zeros((rows, graph.n_in), dtype=np.int64)
    for op in graph.ops:
        if op.kind == "input":
            a, n = op.params["in_off"], op.params["n"]
            raw[:, a:a + n] = raw_features(op, rng, rows)
    return raw


BODY_KINDS = ("fc", "conv1d", "maxpool1d", "avgpool1d", "clamp", "leaky_relu", "lut", "add",
              "rescale", "concat", "reshape", "softmax")


def random_graph(seed: int, max_ops: int = 7, name: str | None = None) -> Graph:
    """A random valid graph over all ops, reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    b = _Builder(rng, name or f"rand{seed % 10**8}")
    bits16 = rng.random() < 0.35
    dtype = "s16" if bits16 else "s8"
    n_in = _width(rng)
    xs = b.inputs(n_in, dtype)
    cur = xs[0]
    made = list(xs)
    for _ in range(int(rng.integers(1, max_ops + 1))):
        kind = BODY_KINDS[rng.integers(len(BODY_KINDS))]
        # dtype of the next requantizing op: mostly the graph's mode, sometimes a switch
        dt = dtype if rng.random() < 0.85 else ("s8" if dtype == "s16" else "s16")
        if b.t(cur).len > MAX_WIDTH and kind in ("concat",):
            kind = "fc"
        nxt = {
            "fc": lambda: b.fc(cur, dt),
            "conv1d": lambda: b.conv1d(cur, dt),
            "maxpool1d": lambda: b.pool(cur, "maxpool1d"),
            "avgpool1d": lambda: b.pool(cur, "avgpool1d"),
            "clamp": lambda: b.clamp(cur),
            "leaky_relu": lambda: b.leaky_relu(cur, dt),
            "lut": lambda: b.lut(cur, dt),
            "add": lambda: b.add_op(cur, made, dt),
            "rescale": lambda: b.rescale(cur, dt),
            "concat": lambda: b.concat(cur, made),
            "reshape": lambda: b.reshape(cur),
            "softmax": lambda: b.softmax(cur),
        }[kind]()
        if nxt is not None:
            cur = nxt
            made.append(cur)
    if rng.random() < 0.25:
        cur = b.argmax(cur)
        made.append(cur)
    # outputs: the last tensor, sometimes intermediate ones (and raw INPUT tensors) too
    outs = [cur] + [t for t in made[:-1] if rng.random() < 0.15][:3]
    off = 0
    specs = []
    for t in outs:
        n = b.output(t, off)
        specs.append(IOSpec(f"out{len(specs)}", off, (n,)))
        off += n
    b.g.outputs = specs
    plan_arena(b.g)
    validate(b.g)
    return b.g


def random_case(seed: int, rows: int = 24, **kw) -> tuple[Graph, np.ndarray]:
    """(graph, raw) from one seed: what the differential tests run."""
    g = random_graph(seed, **kw)
    raw = random_inputs(g, np.random.default_rng([seed, 1]), rows)
    return g, raw


def cases(rows: int = 24, **kw):
    """Hypothesis strategy of (seed, graph, raw); the seed alone reproduces a case."""
    from hypothesis import strategies as st

    return st.integers(0, 2**62).map(lambda s: (s, *random_case(s, rows, **kw)))


__all__ = ["random_graph", "random_inputs", "random_case", "raw_features", "cases",
           "corner_tags", "REQUIRED_TAGS", "EXTREME_REQUANT"]


def corner_tags(graph: Graph) -> set[str]:
    """Which corners of the arithmetic a graph exercises (for coverage assertions in tests)."""
    tags = set()
    req = []  # (mult, shift) pairs
    for op in graph.ops:
        p, a = op.params, op.arrays
        tags.add(op.kind)
        if op.output is not None:
            t = graph.tensors[op.output]
            tags.add(f"zp {t.zero_point}" if t.zero_point in (-128, 127) else "")
            if t.len >= MAX_WIDTH:
                tags.add("width 512")
            if op.inputs and t.offset == graph.tensors[op.inputs[0]].offset:
                tags.add("in place")
        if "mult" in p and "shift" in p and (op.kind != "output" or p["mode"] == OUTPUT_DEQUANT):
            req.append((p["mult"], p["shift"]))
        if "mult_b" in p and "shift_b" in p:
            req.append((p["mult_b"], p["shift_b"]))
        if "mult" in a:
            req += list(zip(np.asarray(a["mult"]).tolist(), np.asarray(a["shift"]).tolist()))
        if op.kind in ("fc", "conv1d"):
            bits = 16 if graph.tensors[op.inputs[0]].dtype == "s16" else 8
            if (acc_bound(a["w"], a["bias"], bits) == S32_MAX).any():
                tags.add(f"acc bound at 2^31-1 ({bits}-bit x)")
        if op.kind == "conv1d":
            tags |= {f"conv {k}>{v}" for k, v in (("stride", 1), ("dil", 1), ("pad", 0)) if p[k] > v}
        if op.kind == "lut":
            tags.add(f"lut {graph.tensors[op.inputs[0]].dtype}")
        if op.kind == "softmax":
            tags.add(f"softmax {graph.tensors[op.inputs[0]].dtype}")
        if op.kind in ("add", "concat") and op.inputs[0] != op.inputs[1]:
            tags.add(f"{op.kind} of two tensors")
        if op.kind == "input":
            pre = np.asarray(a["pre"])
            tags |= {"pre 63"} if (pre == 63).any() else set()
            if (np.abs(np.asarray(a["off"], dtype=np.int64)) == 2**62 - 1).any():
                tags.add("off at 2^62-1")
        if op.kind == "output":
            tags.add(f"output mode {p['mode']}")
    for m, t in req:
        if m in (0, 1, M_MAX):
            tags.add(f"mult {m}")
        if t in (1, 62):
            tags.add(f"shift {t}")
    if any(t.dtype == "s16" for t in graph.tensors):
        tags.add("s16 tensors")
    if sum(op.kind == "input" for op in graph.ops) > 1:
        tags.add("several inputs")
    if sum(op.kind == "output" for op in graph.ops) > 1:
        tags.add("several outputs")
    tags.discard("")
    return tags


#: corner tags every differential run must hit (many times each)
REQUIRED_TAGS = (
    "zp -128", "zp 127", "width 512", "in place", "mult 0", "mult 1", f"mult {M_MAX}",
    "shift 1", "shift 62", "acc bound at 2^31-1 (8-bit x)", "acc bound at 2^31-1 (16-bit x)",
    "conv stride>1", "conv dil>1", "conv pad>0", "lut s8", "lut s16", "softmax s8", "softmax s16",
    "add of two tensors", "concat of two tensors", "pre 63", "off at 2^62-1", "output mode 0",
    "output mode 1", "s16 tensors", "several inputs", "several outputs",
)


def mutate_blob(blob: bytearray, graph: Graph, rng) -> None:
    """One random change to ``blob`` (written from ``graph``) in place: an op
    parameter, a tensor field (dtype included) or a data byte. For tests that
    check the C loader and the Python validator give the same errno."""
    nt, no = len(graph.tensors), len(graph.ops)
    r = rng.random()
    if r < 0.6:
        pos = HEADER_LEN + 16 * nt + 64 * int(rng.integers(no)) + 8 + 4 * int(rng.integers(10))
    elif r < 0.8:
        field = int(rng.integers(4))  # offset, len, zero_point, dtype
        pos = HEADER_LEN + 16 * int(rng.integers(nt)) + 4 * field
        if field == 3:
            blob[pos] = int(rng.integers(0, 5))
            return
    else:
        data_off = struct.unpack_from("<I", blob, 36)[0]
        if data_off < len(blob):
            blob[int(rng.integers(data_off, len(blob)))] = int(rng.integers(256))
        return
    v = struct.unpack_from("<i", blob, pos)[0]
    nv = int(rng.choice([v + 1, v - 1, 0, -1, 1, 62, 63, 127, -128, 2**31 - 1, -(2**31), 2 * v, 65536]))
    struct.pack_into("<i", blob, pos, max(-(2**31), min(2**31 - 1, nv)))


def mutated_blobs(rng, n_graphs: int = 300, per_graph: int = 8):
    """Yield (seed, graph, blob, verdict) for ``per_graph`` :func:`mutate_blob`
    changes of the blob of each ``random_graph(0 .. n_graphs - 1)``; verdict is
    the Graph the Python reader and validator accept, or their GraphError."""
    for seed in range(n_graphs):
        g = random_graph(seed)
        clean = write_blob(g)
        for _ in range(per_graph):
            b = bytearray(clean)
            mutate_blob(b, g, rng)
            b = bytes(b)
            try:
                verdict = read_blob(b)
                validate(verdict)
            except GraphError as e:
                verdict = e
            yield seed, g, b, verdict
