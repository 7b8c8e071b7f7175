"""The integer primitives of docs/arithmetic.md, and the one export-time
conversion from a float ratio to (multiplier, shift).

Only :func:`quantize_multiplier` and :func:`round_half_away` touch floats;
they run at export time. Everything else is exact integer arithmetic on
int64 numpy arrays (the spec's operand bounds keep every product below
2**63).
"""
from __future__ import annotations

import math

import numpy as np

M_MAX = 2**31 - 1
T_MIN, T_MAX = 1, 62


def round_half_away(x):
    """Round to nearest, ties away from zero (export time only).

    Raises ValueError for NaN, infinities and |x| >= 2^63, which have no
    int64 value (a plain ``astype(np.int64)`` would wrap them to -2^63):
    callers clip to the range they need, in float, before rounding.
    """
    x = np.asarray(x, dtype=np.float64)
    bad = ~np.isfinite(x) | (np.abs(x) >= 2.0**63)
    if np.any(bad):
        v = x[bad].flat[0] if x.ndim else x
        raise ValueError(f"cannot round {float(v)!r} to an int64 (not finite or |x| >= 2^63)")
    return (np.sign(x) * np.floor(np.abs(x) + 0.5)).astype(np.int64)


def quantize_multiplier(r: float) -> tuple[int, int]:
    """Float ratio r >= 0 -> (M, t) with r ~= M / 2**t (arithmetic.md §2)."""
    if not math.isfinite(r) or r < 0:
        raise ValueError(f"requantization ratio {r!r} is not a finite non-negative number")
    if r == 0:
        return 0, 1
    q, e = math.frexp(r)
    m = int(round_half_away(q * 2**31))
    if m == 2**31:
        m //= 2
        e += 1
    t = 31 - e
    if t > T_MAX:
        m = int(round_half_away(r * 2.0**T_MAX))
        t = T_MAX
    if t < T_MIN:
        raise ValueError(f"requantization ratio {r!r} is too large (>= 2**30)")
    return min(m, M_MAX), t


def quantize_multiplier_at(r: float, t: int) -> int:
    """Multiplier for ratio r at a given shift t (used by ADD's shared t)."""
    m = int(round_half_away(r * 2.0**t))
    if not 0 <= m <= M_MAX:
        raise ValueError(f"ratio {r!r} does not fit a multiplier at shift {t}")
    return m


def rq(v, m, t):
    """rq(v, M, t) = floor((v*M + 2**(t-1)) / 2**t): the one rounding rule."""
    v = np.asarray(v, dtype=np.int64)
    m = np.asarray(m, dtype=np.int64)
    t = np.asarray(t, dtype=np.int64)
    return (v * m + (np.int64(1) << (t - 1))) >> t


def clamp(v, lo, hi):
    return np.minimum(np.maximum(np.asarray(v, dtype=np.int64), lo), hi)
