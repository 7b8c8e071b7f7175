"""AVGPOOL1D (arithmetic.md §4): y = clamp(zy + rq(sum_j (x - zx), mult, shift), lo, hi)."""
import numpy as np

from ._common import clamp, rq


def run(op, xs, tx, ty, ctx):
    p = op.params
    batch = xs[0].shape[0]
    x = xs[0].reshape(batch, p["c"], p["l_in"]) - tx[0].zero_point
    idx = np.arange(p["l_out"])[:, None] * p["stride"] + np.arange(p["k"])[None, :]
    s = x[:, :, idx].sum(axis=3)
    y = clamp(ty.zero_point + rq(s, p["mult"], p["shift"]), p["lo"], p["hi"])
    return y.reshape(batch, p["c"] * p["l_out"])
