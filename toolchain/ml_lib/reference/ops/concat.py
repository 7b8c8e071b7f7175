"""CONCAT (arithmetic.md §4): per outer index, a's inner block then b's."""
import numpy as np


def run(op, xs, tx, ty, ctx):
    p = op.params
    batch = xs[0].shape[0]
    a = xs[0].reshape(batch, p["outer"], p["a_inner"])
    b = xs[1].reshape(batch, p["outer"], p["b_inner"])
    return np.concatenate([a, b], axis=2).reshape(batch, -1)
