"""The pure-integer reference interpreter: docs/arithmetic.md as numpy code.

Every value on the inference path is an int64 numpy array; each op is one
small module in :mod:`ml_lib.reference.ops` that transcribes its section of
the spec. Tensors are kept apart (not aliased in an arena): the validator
guarantees that no op reads bytes another op has reused, so the arena the
C engine uses cannot change a result.
"""
from __future__ import annotations

import numpy as np

from ..blob import planned
from ..ir import DTYPE_NUMPY, DTYPE_RANGE, Graph
from ..validate import validate
from .ops import OPS, Ctx

__all__ = ["run", "run_layers"]


def _as_raw(graph: Graph, raw) -> tuple[np.ndarray, bool]:
    a = np.asarray(raw)
    if a.dtype.kind not in "iu":
        raise TypeError(f"raw features must be integers (got dtype {a.dtype}); "
                        "quantization of float data is the caller's job")
    if a.dtype.kind == "u" and a.size and a.max() > np.iinfo(np.int64).max:
        raise ValueError("raw feature above the s64 range")
    single = a.ndim == 1
    a = a.reshape(1, -1) if single else a
    if a.ndim != 2 or a.shape[1] != graph.n_in:
        raise ValueError(f"raw features have shape {np.shape(raw)}, the model takes (batch, {graph.n_in})")
    return a.astype(np.int64), single


def _execute(graph: Graph, raw, check: bool):
    if check:
        validate(planned(graph))
    a, single = _as_raw(graph, raw)
    ctx = Ctx(raw=a, out=np.zeros((a.shape[0], graph.n_out), dtype=np.int64))
    values: dict[int, np.ndarray] = {}
    for op in graph.ops:
        xs = [values[i] for i in op.inputs]
        tx = [graph.tensors[i] for i in op.inputs]
        ty = graph.tensors[op.output] if op.output is not None else None
        y = OPS[op.kind](op, xs, tx, ty, ctx)
        if ty is not None:
            lo, hi = DTYPE_RANGE[ty.dtype]
            # every op saturates (arithmetic.md §3); this guards the transcription
            assert y.shape == (a.shape[0], ty.len) and y.min() >= lo and y.max() <= hi, op.kind
            values[op.output] = y
    return values, ctx.out, single


def run(graph: Graph, raw, check: bool = True) -> np.ndarray:
    """Run ``graph`` on raw s64 features.

    ``raw`` is an integer array of shape (batch, n_in), or (n_in,) for one
    row; the result is int32 of shape (batch, n_out) (or (n_out,)). With
    ``check`` the graph first goes through :func:`ml_lib.validate.validate`,
    as the C engine's graph must.
    """
    _, out, single = _execute(graph, raw, check)
    out = out.astype(np.int32)
    return out[0] if single else out


def run_layers(graph: Graph, raw, check: bool = True) -> dict[int, np.ndarray]:
    """Every tensor an op writes, by tensor index, in the tensor's dtype.

    Arrays are (batch, len), or (len,) for a single row; for per-layer error
    reports.
    """
    values, _, single = _execute(graph, raw, check)
    return {i: (v[0] if single else v).astype(DTYPE_NUMPY[graph.tensors[i].dtype])
            for i, v in values.items()}
