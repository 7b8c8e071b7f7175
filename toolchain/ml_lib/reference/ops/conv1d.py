"""CONV1D (arithmetic.md §4): [channel][position] layout, padding with the zero point."""
import numpy as np

from ._common import clamp, i64, rq


def run(op, xs, tx, ty, ctx):
    p, a = op.params, op.arrays
    c_in, l_in, c_out, l_out, k = p["c_in"], p["l_in"], p["c_out"], p["l_out"], p["k"]
    stride, pad, dil = p["stride"], p["pad"], p["dil"]
    batch = xs[0].shape[0]
    x = xs[0].reshape(batch, c_in, l_in)
    # xp(ci, p) = zx outside [0, l_in): padding is the real value 0
    xp = np.full((batch, c_in, l_in + 2 * pad), tx[0].zero_point, dtype=np.int64)
    xp[:, :, pad:pad + l_in] = x
    w = i64(a["w"]).reshape(c_out, c_in, k)
    acc = np.broadcast_to(i64(a["bias"])[None, :, None], (batch, c_out, l_out)).copy()
    pos = np.arange(l_out) * stride  # l*stride - pad, shifted by +pad into xp
    for j in range(k):
        acc += w[:, :, j] @ xp[:, :, pos + j * dil]
    y = clamp(ty.zero_point + rq(acc, i64(a["mult"])[:, None], i64(a["shift"])[:, None]), p["lo"], p["hi"])
    return y.reshape(batch, c_out * l_out)
