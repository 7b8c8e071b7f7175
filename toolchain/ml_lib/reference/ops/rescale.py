"""RESCALE (arithmetic.md §4): y = clamp(zy + rq(x - zx, mult, shift), lo, hi)."""
from ._common import clamp, rq


def run(op, xs, tx, ty, ctx):
    p = op.params
    return clamp(ty.zero_point + rq(xs[0] - tx[0].zero_point, p["mult"], p["shift"]),
                 p["lo"], p["hi"])
