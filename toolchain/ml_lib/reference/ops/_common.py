"""Helpers shared by the op modules."""
from __future__ import annotations

import numpy as np

from ...arith import clamp, rq
from ...ir import DTYPE_RANGE

__all__ = ["clamp", "rq", "saturate", "i64"]


def saturate(v, t):
    """clamp(v, qmin(dtype), qmax(dtype)) for the tensor ``t`` (arithmetic.md §3)."""
    lo, hi = DTYPE_RANGE[t.dtype]
    return clamp(v, lo, hi)


def i64(a):
    return np.asarray(a, dtype=np.int64)
