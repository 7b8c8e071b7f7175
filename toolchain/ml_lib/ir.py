"""The quantized graph IR: the one description every back end reads.

It mirrors ``struct ml_lib_graph`` in include/linux/ml_lib.h one to one:
a list of integer tensors living in a scratch arena and a list of ops run in
order, each with integer parameters and constant integer arrays. The
arithmetic of every op is docs/arithmetic.md; ``OP_SPECS`` below is the
single table of op codes, parameter order and array types that the blob
writer, the C code generator and the validators all use.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

DTYPE_CODES = {"s8": 1, "s16": 2, "s32": 3}
DTYPE_NUMPY = {"s8": np.int8, "s16": np.int16, "s32": np.int32}
DTYPE_SIZE = {"s8": 1, "s16": 2, "s32": 4}
DTYPE_RANGE = {
    "s8": (-128, 127),
    "s16": (-32768, 32767),
    "s32": (-(2**31), 2**31 - 1),
}

NO_TENSOR = 0xFFFF
MAX_ARENA = 1 << 20
MAX_TENSORS = 1024
MAX_OPS = 1024
MAX_IO = 65536
MAX_BLOB_LEN = 64 << 20     # longest blob (ML_LIB_MAX_BLOB_LEN)
MAX_DIM = 65535
NAME_LEN = 32


@dataclass(frozen=True)
class ArraySpec:
    """One constant array an op points to (``d[k]`` in the blob)."""

    name: str
    dtype: str  # numpy-style: int8, uint8, int16, int32, int64
    length: Callable[[dict], int]


@dataclass(frozen=True)
class OpSpec:
    code: int
    name: str
    params: tuple[str, ...]  # blob p[0..] order, also C field names
    arrays: tuple[ArraySpec, ...] = ()
    n_inputs: int = 1
    has_output: bool = True


def _per(key):
    return lambda p: p[key]


def _lut_len(p):
    return p["_table_len"]


OP_SPECS: dict[str, OpSpec] = {
    s.name: s
    for s in [
        OpSpec(1, "input", ("in_off", "n"),
               (ArraySpec("off", "int64", _per("n")), ArraySpec("pre", "uint8", _per("n")),
                ArraySpec("mult", "int32", _per("n")), ArraySpec("shift", "uint8", _per("n"))),
               n_inputs=0),
        OpSpec(2, "fc", ("n_in", "n_out", "lo", "hi"),
               (ArraySpec("w", "int8", lambda p: p["n_out"] * p["n_in"]),
                ArraySpec("bias", "int32", _per("n_out")),
                ArraySpec("mult", "int32", _per("n_out")),
                ArraySpec("shift", "uint8", _per("n_out")))),
        OpSpec(3, "conv1d", ("c_in", "l_in", "c_out", "l_out", "k", "stride", "pad", "dil", "lo", "hi"),
               (ArraySpec("w", "int8", lambda p: p["c_out"] * p["c_in"] * p["k"]),
                ArraySpec("bias", "int32", _per("c_out")),
                ArraySpec("mult", "int32", _per("c_out")),
                ArraySpec("shift", "uint8", _per("c_out")))),
        OpSpec(4, "maxpool1d", ("c", "l_in", "l_out", "k", "stride")),
        OpSpec(5, "avgpool1d", ("c", "l_in", "l_out", "k", "stride", "mult", "shift", "lo", "hi")),
        OpSpec(6, "clamp", ("n", "lo", "hi")),
        OpSpec(7, "leaky_relu", ("n", "mult", "shift", "mult_b", "shift_b")),
        # table length is 256 for s8 input, 513 for s16 input (see arithmetic.md)
        OpSpec(8, "lut", ("n",), (ArraySpec("table", "int16", _lut_len),)),
        OpSpec(9, "add", ("n", "mult", "mult_b", "shift", "lo", "hi"), n_inputs=2),
        OpSpec(10, "rescale", ("n", "mult", "shift", "lo", "hi")),
        OpSpec(11, "concat", ("outer", "a_inner", "b_inner"), n_inputs=2),
        OpSpec(12, "reshape", ("n",)),
        OpSpec(13, "softmax", ("outer", "n", "shift", "bits", "table_len"),
               (ArraySpec("table", "int32", _per("table_len")),)),
        OpSpec(14, "argmax", ("outer", "n")),
        OpSpec(15, "output", ("out_off", "n", "mode", "mult", "shift"), has_output=False),
    ]
}
OP_BY_CODE = {s.code: s for s in OP_SPECS.values()}

#: ops that may write in place (identical offset and element size)
IN_PLACE_OPS = frozenset({"clamp", "lut", "leaky_relu", "rescale", "reshape"})

OUTPUT_DEQUANT = 0
OUTPUT_COPY = 1


@dataclass
class Tensor:
    name: str
    dtype: str
    shape: tuple[int, ...]
    zero_point: int = 0
    #: export-time metadata only: real = scale * (q - zero_point)
    scale: float | None = None
    #: arena byte offset; set by :func:`plan_arena`
    offset: int = -1

    @property
    def len(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1


@dataclass
class Op:
    kind: str
    inputs: list[int]
    output: int | None
    params: dict[str, int]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    #: where the op came from (module path or ONNX node name), for reports
    source: str = ""

    @property
    def spec(self) -> OpSpec:
        return OP_SPECS[self.kind]

    def array_length(self, a: ArraySpec, graph: "Graph") -> int:
        p = dict(self.params)
        if self.kind == "lut":
            p["_table_len"] = 256 if graph.tensors[self.inputs[0]].dtype == "s8" else 513
        return a.length(p)


@dataclass
class IOSpec:
    """A named model input or output (metadata for manifests and wrappers).

    Inputs: ``offset`` indexes the caller's s64 feature vector, ``features``
    names each element. Outputs: ``offset`` indexes the caller's s32 output
    vector; ``frac_bits`` is F for fixed-point outputs (value / 2**F), None
    for integer outputs (argmax indices, raw quantized values).
    """

    name: str
    offset: int
    shape: tuple[int, ...]
    features: list[str] = field(default_factory=list)
    frac_bits: int | None = None
    #: float-side input normalization (mean, std per feature) or output info
    meta: dict = field(default_factory=dict)

    @property
    def len(self) -> int:
        return int(np.prod(self.shape)) if self.shape else 1


@dataclass
class Graph:
    name: str
    tensors: list[Tensor]
    ops: list[Op]
    inputs: list[IOSpec]
    outputs: list[IOSpec]
    arena_bytes: int = 0

    @property
    def n_in(self) -> int:
        return sum(i.len for i in self.inputs)

    @property
    def n_out(self) -> int:
        return sum(o.len for o in self.outputs)

    def copy(self) -> "Graph":
        return dataclasses.replace(
            self,
            tensors=[dataclasses.replace(t) for t in self.tensors],
            ops=[dataclasses.replace(o, params=dict(o.params), arrays=dict(o.arrays),
                                     inputs=list(o.inputs)) for o in self.ops],
        )

    def param_count(self) -> int:
        return sum(int(a.size) for op in self.ops for k, a in op.arrays.items() if k in ("w", "bias"))

    def table_bytes(self) -> int:
        """Bytes of the generated C tables on a 64-bit kernel, laid out as
        ``<name>.c`` has them: every array 8-aligned, 64 B per ``struct
        ml_lib_op``, 16 B per tensor, 48 B for the graph, and the name. gcc
        may pad the op and tensor tables by a few dozen bytes more; ``make
        bench`` measures the compiled size."""
        data = sum((op.array_length(a, self) * np.dtype(a.dtype).itemsize + 7) & ~7
                   for op in self.ops for a in op.spec.arrays)
        return data + 64 * len(self.ops) + 16 * len(self.tensors) + 48 + len(self.name) + 1


def plan_arena(graph: Graph) -> int:
    """Assign arena offsets by liveness (first fit); returns arena bytes.

    Elementwise in-place ops reuse their input's slot when the input dies
    there and the element size matches.
    """
    last_use: dict[int, int] = {}
    for i, op in enumerate(graph.ops):
        for t in op.inputs:
            last_use[t] = i
    live: list[tuple[int, int, int]] = []  # (start, end, tensor)
    top = 0
    for i, op in enumerate(graph.ops):
        if op.output is None:
            continue
        out = graph.tensors[op.output]
        size = out.len * DTYPE_SIZE[out.dtype]
        align = DTYPE_SIZE[out.dtype]
        placed = None
        if op.kind in IN_PLACE_OPS and op.inputs:
            src = graph.tensors[op.inputs[0]]
            if (last_use.get(op.inputs[0]) == i and DTYPE_SIZE[src.dtype] == align
                    and src.len == out.len):
                placed = src.offset
        # tensors still needed at op i (read by op i or later), except in-place source
        live = [(s, e, t) for (s, e, t) in live if last_use.get(t, -1) >= i]
        if placed is None:
            cand = 0
            for s, e, _ in sorted(live):
                if cand + size <= s:
                    break
                cand = max(cand, (e + align - 1) // align * align)
            placed = cand
        out.offset = placed
        live.append((placed, placed + size, op.output))
        top = max(top, placed + size)
    graph.arena_bytes = max(8, (top + 7) // 8 * 8)
    return graph.arena_bytes
