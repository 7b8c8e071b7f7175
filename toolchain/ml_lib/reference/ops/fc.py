"""FC (arithmetic.md §4): acc = bias + W x; y = clamp(zy + rq(acc), lo, hi)."""
from ._common import clamp, i64, rq


def run(op, xs, tx, ty, ctx):
    p, a = op.params, op.arrays
    w = i64(a["w"]).reshape(p["n_out"], p["n_in"])
    # the input zero point is folded into the bias at export, so x is used as is
    acc = i64(a["bias"]) + xs[0] @ w.T
    return clamp(ty.zero_point + rq(acc, a["mult"], a["shift"]), p["lo"], p["hi"])
