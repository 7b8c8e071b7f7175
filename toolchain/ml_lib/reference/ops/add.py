"""ADD (arithmetic.md §4): one shared shift, one rounding for the rescaled sum."""
from ._common import clamp


def run(op, xs, tx, ty, ctx):
    p = op.params
    t = p["shift"]
    s = (xs[0] - tx[0].zero_point) * p["mult"] + (xs[1] - tx[1].zero_point) * p["mult_b"]
    return clamp(ty.zero_point + ((s + (1 << (t - 1))) >> t), p["lo"], p["hi"])
