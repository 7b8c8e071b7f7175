"""One module per op, each the formula of its docs/arithmetic.md section.

Every op function has the signature ``f(op, xs, tx, ty, ctx)``: ``xs`` the
input values (int64, shape (batch, len)), ``tx`` their Tensors (dtype,
zero point), ``ty`` the output Tensor (None for OUTPUT), ``ctx`` the raw
features and the s32 output vector. It returns the output values, int64
(batch, ty.len), already saturated.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import (add, argmax, avgpool1d, clamp, concat, conv1d, fc, input, leaky_relu, lut,
               maxpool1d, output, rescale, reshape, softmax)


@dataclass
class Ctx:
    raw: np.ndarray  #: (batch, n_in) int64 raw features
    out: np.ndarray  #: (batch, n_out) int64, filled by OUTPUT ops


OPS = {
    "input": input.run,
    "fc": fc.run,
    "conv1d": conv1d.run,
    "maxpool1d": maxpool1d.run,
    "avgpool1d": avgpool1d.run,
    "clamp": clamp.run,
    "leaky_relu": leaky_relu.run,
    "lut": lut.run,
    "add": add.run,
    "rescale": rescale.run,
    "concat": concat.run,
    "reshape": reshape.run,
    "softmax": softmax.run,
    "argmax": argmax.run,
    "output": output.run,
}
