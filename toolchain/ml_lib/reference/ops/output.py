"""OUTPUT (arithmetic.md §4): into the caller's s32 vector, fixed point or copy."""
from ...ir import OUTPUT_DEQUANT
from ._common import clamp, rq

S32_MIN, S32_MAX = -(1 << 31), (1 << 31) - 1


def run(op, xs, tx, ty, ctx):
    p = op.params
    x = xs[0]
    if p["mode"] == OUTPUT_DEQUANT:
        x = clamp(rq(x - tx[0].zero_point, p["mult"], p["shift"]), S32_MIN, S32_MAX)
    ctx.out[:, p["out_off"]:p["out_off"] + p["n"]] = x
    return None
