"""INPUT (arithmetic.md §4): raw s64 features -> quantized tensor."""
from ._common import clamp, i64, rq, saturate

R_MAX = 1 << 62
D_MAX = (1 << 31) - 1


def run(op, xs, tx, ty, ctx):
    p, a = op.params, op.arrays
    r = clamp(ctx.raw[:, p["in_off"]:p["in_off"] + p["n"]], -R_MAX, R_MAX)
    # |r - off| <= 2^63 - 1: exact in int64; >> is floor division by 2^pre
    d = clamp((r - i64(a["off"])) >> i64(a["pre"]), -D_MAX, D_MAX)
    return saturate(ty.zero_point + rq(d, a["mult"], a["shift"]), ty)
