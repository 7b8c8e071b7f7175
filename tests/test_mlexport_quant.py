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


# --- values outside int64: an error or a saturated parameter, never a wrap ----

def test_round_half_away_refuses_what_int64_cannot_hold():
    import pytest

    from ml_lib.arith import round_half_away

    assert round_half_away([2.5, -2.5, 2.0**63 - 1024]).tolist() == [3, -3, 2**63 - 1024]
    for bad in (2.0**63, -(2.0**63), 1e30, np.inf, -np.inf, np.nan):
        with pytest.raises(ValueError, match="int64"):
            round_half_away(bad)
        with pytest.raises(ValueError, match="int64"):
            round_half_away([0.0, bad])


def _linear_graph(w, b, act=None):
    nodes = [FNode("fc", "linear", ["x"], {"w": np.asarray(w, float), "b": np.asarray(b, float)}, "fc")]
    out = "fc"
    if act is not None:
        nodes.append(FNode("act", "clamp", ["fc"], {"lo": act[0], "hi": act[1]}, "act"))
        out = "act"
    g = FloatGraph("x", (2,), nodes, [out], ["y"])
    infer_shapes(g, np.zeros((2, 2)))
    return g


def test_dead_channel_keeps_its_bias():
    """The reviewer's case: one output channel with weights 1e-20 and bias 1.0.
    The scaled bias (~1e22 accumulator units) used to wrap to -2^63 and export
    bias 0 (output 0.0, not 1.0), then to stop the export with an accumulator
    error.  The channel's weight scale is now floored so that the bias fits the
    bound of docs/arithmetic.md: the weights round to 0, the bias is kept, and
    the graph passes the validator."""
    from ml_lib.reference import run
    from ml_lib.validate import acc_bound, validate

    rs = np.array([2.0**-14, 2.0**-14])
    x = np.array([[-0.75, 0.5], [0.25, -1.0], [0.9, 0.0]])
    for bits, cal in ((8, Calibration(lo={"x": -1.0, "fc": 0.0}, hi={"x": 1.0, "fc": 1.0})),
                      (16, Calibration(lo={"x": -1.0, "fc": 0.0}, hi={"x": 1.0, "fc": 1.0}))):
        q = build(_linear_graph([[1e-20, 1e-20]], [1.0]), cal, rs, bits=bits)
        validate(q.graph)
        fc = q.graph.ops[1]
        assert fc.arrays["w"].tolist() == [[0, 0]]
        bound = acc_bound(fc.arrays["w"], fc.arrays["bias"], bits)
        assert 2**30 < int(bound[0]) <= 2**31 - 1  # the bias uses the accumulator's range
        y = run(q.graph, to_raw(x, rs)) / 2.0**q.graph.outputs[0].frac_bits
        assert np.allclose(y, 1.0, atol=1.0 / 255)
    # the same for every channel of a conv, next to a live channel that keeps its scale
    w = np.zeros((2, 1, 3))
    w[0, 0] = [0.5, -1.0, 0.25]
    w[1, 0] = [1e-28, -1e-28, 0.0]
    g = FloatGraph("x", (1, 4), [FNode("cv", "conv1d", ["x"], {"w": w, "b": np.array([0.1, -0.4]),
                                                               "stride": 1, "pad": 0, "dil": 1},
                                       "cv")], ["cv"], ["y"])
    infer_shapes(g, np.zeros((2, 1, 4)))
    q = build(g, Calibration(lo={"x": -1.0, "cv": -2.0}, hi={"x": 1.0, "cv": 2.0}),
              np.full(4, 2.0**-14), bits=8)
    validate(q.graph)
    cv = q.graph.ops[1]
    assert cv.arrays["w"][0].tolist() == [[64, -127, 32]]  # the live channel: its own scale
    assert cv.arrays["w"][1].tolist() == [[0, 0, 0]]
    xc = np.array([[0.5, -0.25, 1.0, 0.0], [-1.0, 0.75, 0.3, -0.6]])
    ref = np.stack([np.array([xc[:, i:i + 3] @ w[c, 0] + [0.1, -0.4][c] for i in range(2)]).T
                    for c in range(2)], axis=1).reshape(2, -1)
    y = run(q.graph, to_raw(xc, np.full(4, 2.0**-14))) / 2.0**q.graph.outputs[0].frac_bits
    assert np.allclose(y, ref, atol=4.0 / 255)


def test_accumulator_error_when_the_weights_matter():
    """A bias too large for the accumulator next to weights that matter (the
    coarser scale would move the output by more than one step) is still the
    accumulator error; it does not suggest --bits 8, which would not help."""
    import pytest

    from ml_lib.errors import UserError

    rs = np.array([2.0**-14, 2.0**-14])
    cal = Calibration(lo={"x": -1.0, "fc": -1.0, "act": -1.0}, hi={"x": 1.0, "fc": 1.0, "act": 1.0})
    for bits in (8, 16):
        g = _linear_graph([[1.0, -0.5]], [1e12], act=(-1.0, 1.0))
        with pytest.raises(UserError, match="accumulator could overflow") as e:
            build(g, cal, rs, bits=bits)
        assert UserError.exit_code == 2 and "channel 0" in str(e.value)
        assert "--bits" not in str(e.value) and "smaller weights/bias" in str(e.value)
    # just inside the bound the bias is exact: no error, bias = round(bias_s) - zx * sum(w)
    s_x, s_w = 2.0 / 255, 1.0 / 127
    g = _linear_graph([[1.0, 0.0]], [(2**31 - 1 - 2 * 127 * 128) * s_x * s_w])
    q = build(g, Calibration(lo={"x": -1.0, "fc": 0.0}, hi={"x": 1.0, "fc": 1.0}),
              np.array([1.0, 1.0]), bits=8)
    assert abs(int(q.graph.ops[1].arrays["bias"][0])) < 2**31
    assert q.graph.ops[1].arrays["w"].tolist() == [[127, 0]]


def test_huge_clamp_bound_passes_values_through():
    """ONNX export writes +-3.0e38 for an open clamp side; clamp(lo=-10, hi=3e38)
    used to round hi to -2^63 and give lo = hi = -128 (every output -128)."""
    from ml_lib.ir import DTYPE_RANGE
    from ml_lib.reference import run

    for bits in (8, 16):
        # fused into the FC: y = clamp(x0, -10, 3e38) = x0
        g = _linear_graph([[1.0, 0.0]], [0.0], act=(-10.0, 3.0e38))
        cal = Calibration(lo={"x": -1.0, "fc": -1.0, "act": -1.0},
                          hi={"x": 1.0, "fc": 1.0, "act": 1.0})
        q = build(g, cal, np.array([2.0**-14, 2.0**-14]), bits=bits)
        fc = q.graph.ops[1]
        assert fc.kind == "fc"
        assert (fc.params["lo"], fc.params["hi"]) == DTYPE_RANGE["s8" if bits == 8 else "s16"]
        # a standalone clamp with the other side open the same way
        g = FloatGraph("x", (2,), [FNode("c", "clamp", ["x"], {"lo": -3.0e38, "hi": 10.0}, "c")],
                       ["c"], ["y"])
        infer_shapes(g, np.zeros((2, 2)))
        q = build(g, Calibration(lo={"x": -1.0, "c": -1.0}, hi={"x": 1.0, "c": 1.0}),
                  np.array([2.0**-14, 2.0**-14]), bits=bits)
        cl = [o for o in q.graph.ops if o.kind == "clamp"][0]
        assert (cl.params["lo"], cl.params["hi"]) == DTYPE_RANGE["s8" if bits == 8 else "s16"]
        x = np.array([[-0.75, 0.5], [0.25, -1.0], [0.9, 0.0]])
        y = run(q.graph, to_raw(x, np.array([2.0**-14, 2.0**-14]))) / 2.0**q.graph.outputs[0].frac_bits
        assert np.allclose(y, x, atol=2.0 / 255)


def test_huge_input_offset_saturates_with_its_sign():
    """An input normalisation whose offset is beyond 2^63 raw units saturates at
    +-(2^62 - 1024) (<= OFF_MAX) with the right sign instead of wrapping."""
    for bias, sign in ((-1e30, 1), (1e30, -1)):
        g = FloatGraph("x", (2,), [FNode("fc", "linear", ["x"], {"w": np.array([[1.0, 1.0]]),
                                                                  "b": np.array([0.0])}, "fc")],
                       ["fc"], ["y"], in_scale=np.array([1.0, 1.0]), in_bias=np.array([bias, 0.0]))
        infer_shapes(g, np.zeros((2, 2)))
        cal = Calibration(lo={"x": -1.0, "fc": -2.0}, hi={"x": 1.0, "fc": 2.0})
        q = build(g, cal, np.array([1.0, 1.0]), bits=8)
        off = q.graph.ops[0].arrays["off"]
        assert off.tolist() == [sign * (2**62 - 1024), 0]
