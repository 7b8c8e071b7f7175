# SPDX-License-Identifier: GPL-2.0
"""The quantizer's integer parameters on cases small enough to work out by hand."""
from __future__ import annotations

import numpy as np

from ml_lib.frontend.graph import FloatGraph, FNode, infer_shapes
from ml_lib.quantize import Calibration, build, qparams, raw_scales, to_raw


def test_raw_scales_by_hand():
    x = np.array([[1, 0.5, 0.0], [2, -3.0, 0.0], [7, 1.25, 0.0]])
    # integer column -> 1; max |x| = 3 -> ceil(log2 3) = 2 -> 2^-(16-2); all-zero -> integer
    assert raw_scales(x).tolist() == [1.0, 2.0**-14, 1.0]
    # raw = floor(x / scale + 0.5): 1.25 * 2^14 = 20480, -3 * 2^14 = -49152
    assert to_raw(x, raw_scales(x)).tolist() == [[1, 8192, 0], [2, -49152, 0], [7, 20480, 0]]


def test_qparams_by_hand():
    q = qparams(-1.0, 3.0, 8)
    assert q.dtype == "s8" and q.scale == 4.0 / 255
    assert q.zero_point == -64  # -128 + 1 / (4/255) = -64.25 -> -64
    q = qparams(0.5, 2.0, 8)  # the range always holds real 0
    assert q.scale == 2.0 / 255 and q.zero_point == -128
    q = qparams(-2.0, 1.0, 16)
    assert q.dtype == "s16" and q.scale == 2.0 / 32767 and q.zero_point == 0


def _tiny_graph():
    """y = relu(2*x0 - 1*x1 + 0.5), x in [-1, 1]^2 (no normalisation)."""
    n = FNode("fc", "linear", ["x"], {"w": np.array([[2.0, -1.0]]), "b": np.array([0.5])}, "fc")
    r = FNode("relu", "relu", ["fc"], {}, "relu")
    g = FloatGraph("x", (2,), [n, r], ["relu"], ["y"])
    infer_shapes(g, np.zeros((2, 2)))
    return g


def test_fc_parameters_by_hand():
    g = _tiny_graph()
    cal = Calibration(lo={"x": -1.0, "fc": -2.5, "relu": 0.0},
                      hi={"x": 1.0, "fc": 3.5, "relu": 3.5})
    q = build(g, cal, np.array([2.0**-14, 2.0**-14]), bits=8)
    ops = q.graph.ops
    assert [o.kind for o in ops] == ["input", "fc", "output"]  # ReLU fused into the FC clamp
    s_x = 2.0 / 255
    # zx = round_half_away(-128 - (-1) / s_x) = round_half_away(-0.5) = -1
    zx = -1
    assert q.graph.tensors[0].zero_point == zx
    fc = ops[1]
    # one output channel: s_w = 2/127, w = round([2, -1] / s_w) = [127, -64] (63.5 -> 64)
    assert fc.arrays["w"].tolist() == [[127, -64]]
    s_w = 2.0 / 127
    # bias = round(0.5 / (s_x * s_w)) - zx * sum(w) = round(4048.125) + (127 - 64) = 4111
    assert fc.arrays["bias"].tolist() == [4111]
    # relu output: [0, 3.5] -> s_y = 3.5/255, zero point -128; ReLU lo = zy = -128
    assert fc.params["lo"] == -128 and fc.params["hi"] == 127
    m, t = int(fc.arrays["mult"][0]), int(fc.arrays["shift"][0])
    assert abs(m / 2.0**t - s_x * s_w / (3.5 / 255)) < 1e-9 and 2**30 <= m < 2**31
    inp = ops[0]
    # INPUT: off 0; unit = 2^-14 per raw unit; r = 2^-14 / s_x needs no pre-shift
    assert inp.arrays["off"].tolist() == [0, 0] and inp.arrays["pre"].tolist() == [0, 0]
    mi, ti = int(inp.arrays["mult"][0]), int(inp.arrays["shift"][0])
    assert abs(mi / 2.0**ti - 2.0**-14 / s_x) < 1e-12
    out = ops[2]
    # output: s_y * 2^16 = 3.5 * 256 / 255 -> fixed point with F = 16
    assert q.graph.outputs[0].frac_bits == 16
    assert abs(out.params["mult"] / 2.0**out.params["shift"] - 3.5 / 255 * 2**16) < 1e-6


def test_output_frac_bits_shrink_for_large_range():
    g = _tiny_graph()
    big = 1.0e6  # 1e6 * 2^16 does not fit s32: F drops until it does
    cal = Calibration(lo={"x": -1.0, "fc": -big, "relu": 0.0}, hi={"x": 1.0, "fc": big, "relu": big})
    q = build(g, cal, np.array([1.0, 1.0]), bits=8)
    f = q.graph.outputs[0].frac_bits
    reach = big / 255 * 255  # (127 - (-128)) * s_y
    assert reach * 2**f <= 2**31 - 1 < reach * 2**(f + 1)


def test_percentile_clips_outliers():
    from ml_lib.quantize import calibrate
    g = _tiny_graph()
    x = np.zeros((1000, 2))
    x[:, 0] = np.linspace(-1, 1, 1000)
    x[0, 0] = -50.0  # one outlier
    mm = calibrate(g, x, None, progress=False)
    assert mm.lo["x"] == -50.0 and mm.hi["x"] == 1.0
    pc = calibrate(g, x, 99.0, progress=False)
    # 99th / 1st percentile of the 2000 input values (half of them the zero column)
    both = np.concatenate([x[:, 0], x[:, 1]])
    assert pc.lo["x"] == np.percentile(both, 1.0) and pc.hi["x"] == np.percentile(both, 99.0)
    assert -1.0 < pc.lo["x"] < 0 and 0 < pc.hi["x"] < 1.0
