"""LEAKY_RELU (arithmetic.md §4): separate multipliers for v >= 0 and v < 0."""
import numpy as np

from ._common import rq, saturate


def run(op, xs, tx, ty, ctx):
    p = op.params
    v = xs[0] - tx[0].zero_point
    r = np.where(v >= 0, rq(v, p["mult"], p["shift"]), rq(v, p["mult_b"], p["shift_b"]))
    return saturate(ty.zero_point + r, ty)
