"""CLAMP (arithmetic.md §4): ReLU, ReLU6 and clamp; y shares x's quantization."""
from ._common import clamp


def run(op, xs, tx, ty, ctx):
    return clamp(xs[0], op.params["lo"], op.params["hi"])
