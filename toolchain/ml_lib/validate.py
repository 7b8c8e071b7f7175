"""The Python twin of ``ml_lib_graph_validate()``: reject a graph the engine must not run.

The checks and their errno classes are those of docs/arithmetic.md §5 and
docs/blob-format.md ("Errors"). The exporter calls :func:`validate` before it
writes any C table or blob, so a model that would fail in the kernel fails
at export time with a message naming the op.
"""
from __future__ import annotations

import errno as _errno

import numpy as np

from .arith import M_MAX, T_MAX, T_MIN
from .ir import (DTYPE_RANGE, DTYPE_SIZE, IN_PLACE_OPS, MAX_ARENA, MAX_DIM, MAX_IO, MAX_OPS,
                 MAX_TENSORS, NAME_LEN, OP_SPECS, OUTPUT_COPY, OUTPUT_DEQUANT, Graph, Op)

S32_MAX = 2**31 - 1
OFF_MAX = 2**62 - 1

#: Work budget of one inference (docs/arithmetic.md §5, "Limits"), in units
#: of about one FC multiply-accumulate; ML_LIB_WORK_BUDGET in lib/ml/validate.c.
WORK_BUDGET = 1 << 24
#: work units per element an op writes (requantize, clamp, store), on top of its MACs or taps
WORK_PER_OUT = 8
#: work units per element of INPUT (raw saturation, pre-shift, requantize) and SOFTMAX (three passes, a division)
WORK_PER_HEAVY = 16
#: work units per CONV1D output position, whatever c_out is: its tap range (up to two s64
#: divisions, computed up to twice a position; ml_lib_conv_taps() in lib/ml/ops/conv1d.c)
WORK_PER_CONV_POS = 16


class GraphError(ValueError):
    """A graph or blob the engine must not run.

    ``errno_name`` is the symbolic errno the C validator / loader returns
    for the same defect class (e.g. "EOVERFLOW"); ``errno`` its positive
    number on this platform (the C functions return its negative).
    """

    def __init__(self, errno_name: str, message: str):
        super().__init__(f"{errno_name}: {message}")
        self.errno_name = errno_name
        self.errno = getattr(_errno, errno_name)
        self.message = message


def _fail(name, op_i, op, msg):
    where = f"op {op_i} ({op.kind}{', ' + op.source if op.source else ''})" if op is not None else "graph"
    raise GraphError(name, f"{where}: {msg}")


def acc_bound(w: np.ndarray, bias: np.ndarray, x_bits: int) -> np.ndarray:
    """Per output channel: |bias| + sum |w| * 2^(bits-1), the FC/CONV1D accumulator bound.

    ``w`` is shaped [n_out, ...]; the result is exact (Python ints via int64,
    which cannot overflow for n_in <= 65535 * 65535 weights of |w| <= 127)
    for |bias| <= 2^62.
    """
    w = np.asarray(w, dtype=np.int64).reshape(len(bias), -1)
    # np.abs(-2^63) wraps: |bias| beyond 2^62 counts as 2^62, still far above the bound
    bias = np.clip(np.asarray(bias, dtype=np.int64), -(2**62), 2**62)
    return np.abs(bias) + np.abs(w).sum(axis=1) * (1 << (x_bits - 1))


def op_work(kind: str, p: dict) -> int:
    """The work units of one op (docs/arithmetic.md §5, "Limits"), from its
    dimensions; the C twin is ml_lib_op_work() in lib/ml/validate.c.

    FC n_out·(n_in + 8); CONV1D l_out·(c_out·(c_in·k + 8) + 16); MAXPOOL1D and
    AVGPOOL1D c·l_out·(k + 8); INPUT and SOFTMAX 16 per element; ARGMAX
    outer·(n + 8); CONCAT 8·outer·(a_inner + b_inner); OUTPUT and the
    element-wise ops (CLAMP, LEAKY_RELU, LUT, ADD, RESCALE, RESHAPE) 8·n.
    """
    E = WORK_PER_OUT
    p = {k: int(v) for k, v in p.items()}
    if kind == "fc":
        return p["n_out"] * (p["n_in"] + E)
    if kind == "conv1d":
        return p["l_out"] * (p["c_out"] * (p["c_in"] * p["k"] + E) + WORK_PER_CONV_POS)
    if kind in ("maxpool1d", "avgpool1d"):
        return p["c"] * p["l_out"] * (p["k"] + E)
    if kind == "input":
        return WORK_PER_HEAVY * p["n"]
    if kind == "softmax":
        return WORK_PER_HEAVY * p["outer"] * p["n"]
    if kind == "argmax":
        return p["outer"] * (p["n"] + E)
    if kind == "concat":
        return E * p["outer"] * (p["a_inner"] + p["b_inner"])
    return E * p["n"]


def graph_work(graph: Graph) -> int:
    """The sum of :func:`op_work` over the graph (what the budget bounds)."""
    return sum(op_work(op.kind, op.params) for op in graph.ops)


def validate(graph: Graph) -> None:
    """Raise :class:`GraphError` unless the C engine may run ``graph``.

    Tensor offsets and ``arena_bytes`` must be set (``ir.plan_arena``).
    """
    g = graph
    name = g.name
    if not (0 < len(name) < NAME_LEN and name.isascii() and (name[0].isalpha() or name[0] == "_")
            and all(c.isalnum() or c == "_" for c in name)):
        raise GraphError("EINVAL", f"model name {name!r} is not a C identifier of 1..{NAME_LEN - 1} chars")
    n_t, n_o, n_in, n_out = len(g.tensors), len(g.ops), g.n_in, g.n_out
    if not (1 <= n_t <= MAX_TENSORS and 1 <= n_o <= MAX_OPS):
        raise GraphError("E2BIG", f"{n_t} tensors and {n_o} ops (limits 1..{MAX_TENSORS}, 1..{MAX_OPS})")
    if not (1 <= n_in <= MAX_IO and 1 <= n_out <= MAX_IO):
        raise GraphError("E2BIG", f"n_in {n_in} / n_out {n_out} outside 1..{MAX_IO}")
    if not 1 <= g.arena_bytes <= MAX_ARENA:
        raise GraphError("E2BIG", f"arena of {g.arena_bytes} bytes outside 1..{MAX_ARENA}")

    spans = []
    for i, t in enumerate(g.tensors):
        if t.dtype not in DTYPE_SIZE:
            raise GraphError("EINVAL", f"tensor {i} ({t.name}): unknown dtype {t.dtype!r}")
        size = DTYPE_SIZE[t.dtype]
        if t.len < 1:
            raise GraphError("EINVAL", f"tensor {i} ({t.name}): length {t.len}")
        if t.offset < 0 or t.offset % size or t.offset + t.len * size > g.arena_bytes:
            raise GraphError("ERANGE", f"tensor {i} ({t.name}): bytes [{t.offset}, "
                                       f"{t.offset + t.len * size}) outside the {g.arena_bytes}-byte "
                                       "arena or misaligned")
        if t.dtype == "s8":
            if not -128 <= t.zero_point <= 127:
                raise GraphError("EDOM", f"tensor {i} ({t.name}): s8 zero point {t.zero_point}")
        elif t.zero_point != 0:
            raise GraphError("EINVAL", f"tensor {i} ({t.name}): {t.dtype} tensor with zero point {t.zero_point}")
        spans.append((t.offset, t.offset + t.len * size))

    def overlap(a, b):
        return spans[a][0] < spans[b][1] and spans[b][0] < spans[a][1]

    valid: set[int] = set()  # tensors whose arena bytes currently hold their value
    work = 0  # op_work() of the ops so far
    in_cover = np.zeros(n_in, dtype=bool)
    out_cover = np.zeros(n_out, dtype=bool)
    for oi, op in enumerate(g.ops):
        spec = OP_SPECS.get(op.kind)
        if spec is None:
            raise GraphError("EOPNOTSUPP", f"op {oi}: unknown op kind {op.kind!r}")
        if len(op.inputs) != spec.n_inputs or (op.output is None) == spec.has_output:
            _fail("EINVAL", oi, op, "wrong number of input/output tensors")
        for t in list(op.inputs) + ([op.output] if op.output is not None else []):
            if not 0 <= t < n_t:
                _fail("EINVAL", oi, op, f"tensor index {t} out of range")
        for t in op.inputs:
            if t not in valid:
                _fail("EINVAL", oi, op, f"reads tensor {t} ({g.tensors[t].name}) before it is written "
                                        "or after its arena bytes were reused")
        if op.output is not None:
            for t in op.inputs:
                in_place = (op.kind in IN_PLACE_OPS and spans[t][0] == spans[op.output][0]
                            and DTYPE_SIZE[g.tensors[t].dtype] == DTYPE_SIZE[g.tensors[op.output].dtype])
                if overlap(t, op.output) and not in_place:
                    _fail("EINVAL", oi, op, "output overlaps an input in the arena")
        missing = [a.name for a in spec.arrays if a.name not in op.arrays]
        if missing:
            _fail("EINVAL", oi, op, f"missing arrays {missing}")
        for a in spec.arrays:
            want = op.array_length(a, g)
            if np.asarray(op.arrays[a.name]).size != want:
                _fail("EINVAL", oi, op, f"array '{a.name}' has {np.asarray(op.arrays[a.name]).size} "
                                        f"elements, want {want}")
        work = _check_op(g, oi, op, in_cover, out_cover, work)
        if op.output is not None:
            valid = {t for t in valid if not overlap(t, op.output)}
            valid.add(op.output)
    if not in_cover.all():
        raise GraphError("EINVAL", f"raw input features {np.flatnonzero(~in_cover)[:8].tolist()} are "
                                   "read by no INPUT op")
    if not out_cover.all():
        raise GraphError("EINVAL", f"outputs {np.flatnonzero(~out_cover)[:8].tolist()} are written by "
                                   "no OUTPUT op")


def _check_op(g: Graph, oi: int, op: Op, in_cover, out_cover, work: int) -> int:
    """Check one op; returns ``work`` plus the op's work units."""
    p = op.params
    T = g.tensors
    x = T[op.inputs[0]] if op.inputs else None
    b = T[op.inputs[1]] if len(op.inputs) > 1 else None
    y = T[op.output] if op.output is not None else None

    def fail(name, msg):
        _fail(name, oi, op, msg)

    for k in op.spec.params:
        if k not in p:
            fail("EINVAL", f"missing parameter {k}")
        # every parameter is an s32 field in the blob and the C op record,
        # including those an op's mode ignores (OUTPUT copy's mult, shift)
        if not -2**31 <= int(p[k]) <= 2**31 - 1:
            fail("EDOM", f"parameter {k}={p[k]} does not fit s32")

    def dims(*names, lo=1):
        for k in names:
            if not lo <= p[k] <= MAX_DIM:
                fail("EINVAL", f"{k}={p[k]} outside {lo}..{MAX_DIM}")

    def charge():
        """Add the op's work once its dimensions are known good, before any
        array is scanned (the C validator's order): -E2BIG above the budget."""
        nonlocal work
        work += op_work(op.kind, p)
        if work > WORK_BUDGET:
            fail("E2BIG", f"the graph's work reaches {work} units here, above the budget of "
                          f"{WORK_BUDGET} (docs/arithmetic.md §5)")

    def dtypes(t, allowed, what):
        if t.dtype not in allowed:
            fail("EINVAL", f"{what} is {t.dtype}, want one of {', '.join(allowed)}")

    def length(t, n, what):
        if t.len != n:
            fail("EINVAL", f"{what} has {t.len} elements, parameters say {n}")

    def requant(m, t, what):
        m = np.asarray(m, dtype=np.int64)
        t = np.asarray(t, dtype=np.int64)
        if m.size and (m.min() < 0 or m.max() > M_MAX):
            fail("EDOM", f"{what} multiplier outside 0..{M_MAX}")
        if t.size and (t.min() < T_MIN or t.max() > T_MAX):
            fail("EDOM", f"{what} shift outside {T_MIN}..{T_MAX}")

    def bounds(lo, hi, t):
        qlo, qhi = DTYPE_RANGE[t.dtype]
        if not qlo <= lo <= hi <= qhi:
            fail("EDOM", f"clamp [{lo}, {hi}] not inside {t.dtype} [{qlo}, {qhi}]")

    def same_q(a, c, what):
        if a.dtype != c.dtype or a.zero_point != c.zero_point:
            fail("EINVAL", f"{what} must share dtype and zero point")

    k8_16 = ("s8", "s16")

    def elementwise_n():
        """x -> y over n elements, s8 or s16 each (the C validator's order)."""
        dims("n")
        charge()
        dtypes(x, k8_16, "input")
        dtypes(y, k8_16, "output")
        length(x, p["n"], "input")
        length(y, p["n"], "output")

    A = {k: np.asarray(v) for k, v in op.arrays.items()}
    kind = op.kind
    if kind == "input":
        dims("n")
        charge()
        if not 0 <= p["in_off"] or p["in_off"] + p["n"] > g.n_in:
            fail("ERANGE", f"features [{p['in_off']}, {p['in_off'] + p['n']}) outside the {g.n_in} inputs")
        dtypes(y, k8_16, "output")
        length(y, p["n"], "output")
        off = A["off"].astype(np.int64)  # min/max: np.abs(-2^63) wraps to -2^63
        if off.min() < -OFF_MAX or off.max() > OFF_MAX:
            fail("EDOM", "|off| above 2^62 - 1")
        if A["pre"].min() < 0 or A["pre"].max() > 63:
            fail("EDOM", "pre-shift outside 0..63")
        requant(A["mult"], A["shift"], "input")
        in_cover[p["in_off"]:p["in_off"] + p["n"]] = True
    elif kind in ("fc", "conv1d"):
        if kind == "fc":
            dims("n_in", "n_out")
            charge()
            n_x, n_y = p["n_in"], p["n_out"]
        else:
            dims("c_in", "l_in", "c_out", "l_out", "k", "stride", "dil")
            dims("pad", lo=0)
            span = p["dil"] * (p["k"] - 1) + 1
            l_out = (p["l_in"] + 2 * p["pad"] - span) // p["stride"] + 1
            if p["l_in"] + 2 * p["pad"] < span or l_out != p["l_out"]:
                fail("EINVAL", f"l_out={p['l_out']} but the geometry gives {l_out}")
            charge()
            n_x, n_y = p["c_in"] * p["l_in"], p["c_out"] * p["l_out"]
        dtypes(x, k8_16, "input")
        dtypes(y, k8_16, "output")
        length(x, n_x, "input")
        length(y, n_y, "output")
        bounds(p["lo"], p["hi"], y)
        w = A["w"].astype(np.int64)
        if w.size and (w.min() < -127 or w.max() > 127):
            fail("EDOM", "weight outside -127..127 (symmetric s8)")
        bias = A["bias"].astype(np.int64)
        if bias.size and (bias.min() < -(2**31) or bias.max() > S32_MAX):
            fail("EDOM", "bias does not fit s32")
        requant(A["mult"], A["shift"], kind)
        bound = acc_bound(w, bias, 8 * DTYPE_SIZE[x.dtype])
        if bound.max() > S32_MAX:
            c = int(bound.argmax())
            fail("EOVERFLOW", f"channel {c}: accumulator bound {int(bound[c])} exceeds 2^31 - 1")
    elif kind in ("maxpool1d", "avgpool1d"):
        dims("c", "l_in", "l_out", "k", "stride")
        if p["l_in"] < p["k"] or (p["l_in"] - p["k"]) // p["stride"] + 1 != p["l_out"]:
            fail("EINVAL", f"l_out={p['l_out']} does not match l_in={p['l_in']}, k={p['k']}, "
                           f"stride={p['stride']}")
        charge()
        dtypes(x, k8_16, "input")
        length(x, p["c"] * p["l_in"], "input")
        length(y, p["c"] * p["l_out"], "output")
        if kind == "maxpool1d":
            same_q(x, y, "input and output")
        else:
            dtypes(y, k8_16, "output")
            requant(p["mult"], p["shift"], "avgpool")
            bounds(p["lo"], p["hi"], y)
    elif kind == "clamp":
        dims("n")
        charge()
        dtypes(x, k8_16, "input")
        same_q(x, y, "input and output")
        length(x, p["n"], "input")
        length(y, p["n"], "output")
        bounds(p["lo"], p["hi"], y)
    elif kind == "leaky_relu":
        elementwise_n()
        requant(p["mult"], p["shift"], "positive side")
        requant(p["mult_b"], p["shift_b"], "negative side")
    elif kind == "lut":
        elementwise_n()
        qlo, qhi = DTYPE_RANGE[y.dtype]
        tab = A["table"].astype(np.int64)
        if tab.min() < qlo or tab.max() > qhi:
            fail("EDOM", f"table values outside the output's {y.dtype} range")
    elif kind == "add":
        dims("n")
        charge()
        dtypes(x, k8_16, "input a")
        dtypes(b, k8_16, "input b")
        dtypes(y, k8_16, "output")
        for t, what in ((x, "input a"), (b, "input b"), (y, "output")):
            length(t, p["n"], what)
        requant([p["mult"], p["mult_b"]], p["shift"], "add")
        bounds(p["lo"], p["hi"], y)
    elif kind == "rescale":
        elementwise_n()
        requant(p["mult"], p["shift"], "rescale")
        bounds(p["lo"], p["hi"], y)
    elif kind == "concat":
        dims("outer", "a_inner", "b_inner")
        charge()
        same_q(x, y, "inputs and output")
        same_q(b, y, "inputs and output")
        length(x, p["outer"] * p["a_inner"], "input a")
        length(b, p["outer"] * p["b_inner"], "input b")
        length(y, p["outer"] * (p["a_inner"] + p["b_inner"]), "output")
    elif kind == "reshape":
        dims("n")
        charge()
        same_q(x, y, "input and output")
        length(x, p["n"], "input")
        length(y, p["n"], "output")
    elif kind == "softmax":
        dims("outer", "n")
        charge()
        dtypes(x, k8_16, "input")
        dtypes(y, k8_16, "output")
        length(x, p["outer"] * p["n"], "input")
        length(y, p["outer"] * p["n"], "output")
        if not 0 <= p["shift"] <= 31:
            fail("EDOM", f"shift {p['shift']} outside 0..31")
        if not 1 <= p["bits"] <= 15:
            fail("EDOM", f"bits {p['bits']} outside 1..15")
        if not 1 <= p["table_len"] <= 1024:
            fail("EDOM", f"table_len {p['table_len']} outside 1..1024")
        tab = A["table"].astype(np.int64)
        if not 1 <= tab[0] <= 2**15 or tab.min() < 0 or tab.max() > 2**15:
            fail("EDOM", "softmax table entries outside [0, 2^15] or table[0] < 1")
    elif kind == "argmax":
        dims("outer", "n")
        charge()
        dtypes(x, k8_16, "input")
        dtypes(y, ("s32",), "output")
        length(x, p["outer"] * p["n"], "input")
        length(y, p["outer"], "output")
    elif kind == "output":
        dims("n")
        charge()
        if not 0 <= p["out_off"] or p["out_off"] + p["n"] > g.n_out:
            fail("ERANGE", f"outputs [{p['out_off']}, {p['out_off'] + p['n']}) outside the "
                           f"{g.n_out} outputs")
        length(x, p["n"], "input")
        if p["mode"] == OUTPUT_DEQUANT:
            requant(p["mult"], p["shift"], "output")
        elif p["mode"] != OUTPUT_COPY:
            fail("EDOM", f"mode {p['mode']} (0 dequantize, 1 copy)")
        out_cover[p["out_off"]:p["out_off"] + p["n"]] = True
    return work
