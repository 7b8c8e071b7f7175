"""Every op of the reference interpreter on hand-computed cases.

Each expected value below was worked out by hand from the formulas of
docs/arithmetic.md (the arithmetic is in the comments); none was copied
from the code's output. The graphs go through the public run path
(validation included): INPUT ops with the identity requantization feed the
exact quantized values an op should see.
"""
import ast
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml_lib import arith
from ml_lib.ir import Graph, IOSpec, Op, Tensor
from ml_lib.reference import run, run_layers

S64_MIN, S64_MAX = -(2**63), 2**63 - 1
ID_M, ID_T = 1 << 30, 30  # rq(v, 2^30, 30) = floor(v + 1/2) = v


def _feed(tensors, ops, dtype, zp, values, in_off):
    """INPUT op whose output holds exactly ``values`` (raw = q - zp through identity rq)."""
    n = len(values)
    tensors.append(Tensor(f"in{len(tensors)}", dtype, (n,), zero_point=zp))
    ops.append(Op("input", [], len(tensors) - 1, {"in_off": in_off, "n": n},
                  {"off": np.zeros(n, np.int64), "pre": np.zeros(n, np.uint8),
                   "mult": np.full(n, ID_M, np.int32), "shift": np.full(n, ID_T, np.uint8)}))
    return [v - zp for v in values]


def one_op(kind, params, arrays=None, xs=(), y=None):
    """Run one op on given quantized inputs; returns its output values (list).

    xs: [(dtype, zero_point, values)], y: (dtype, zero_point, length).
    """
    tensors, ops, raw = [], [], []
    for dt, zp, vals in xs:
        raw += _feed(tensors, ops, dt, zp, vals, len(raw))
    ins = list(range(len(xs)))
    dt, zp, n = y
    tensors.append(Tensor("y", dt, (n,), zero_point=zp))
    yi = len(tensors) - 1
    ops.append(Op(kind, ins, yi, params, arrays or {}))
    ops.append(Op("output", [yi], None, {"out_off": 0, "n": n, "mode": 1, "mult": 0, "shift": 0}))
    g = Graph("t", tensors, ops, [IOSpec("x", 0, (len(raw),))], [IOSpec("y", 0, (n,))])
    layers = run_layers(g, np.array(raw, dtype=np.int64))
    out = run(g, np.array(raw, dtype=np.int64))
    assert out.tolist() == layers[yi].tolist()  # OUTPUT mode 1 copies the tensor
    return layers[yi].tolist()


# --- the rounding rule itself ---------------------------------------------

@pytest.mark.parametrize("v,m,t,want", [
    (5, 1, 1, 3),                # 2.5 -> 3: ties toward +inf
    (-5, 1, 1, -2),              # -2.5 -> -2: negative ties toward +inf too
    (-7, 1, 2, -2),              # -1.75 -> -2
    (3, 1 << 30, 31, 2),         # 3 * 0.5 = 1.5 -> 2
    (-3, 1 << 30, 31, -1),       # -1.5 -> -1
    (0, 2**31 - 1, 62, 0),       # (0 + 2^61) >> 62 = 0
    (2**31 - 1, 2**31 - 1, 62, 1),  # (2^62 - 2^32 + 1 + 2^61) >> 62 = 1
    (-(2**31), 2**31 - 1, 1, -(2**61) + 2**30),  # (-2^62 + 2^31 + 1) >> 1
])
def test_rq(v, m, t, want):
    assert int(arith.rq(v, m, t)) == want


# --- INPUT -----------------------------------------------------------------

def _input_graph(dtype, zp, off, pre, mult, shift):
    n = len(off)
    t = Tensor("x", dtype, (n,), zero_point=zp)
    ops = [Op("input", [], 0, {"in_off": 0, "n": n},
              {"off": np.array(off, np.int64), "pre": np.array(pre, np.uint8),
               "mult": np.array(mult, np.int32), "shift": np.array(shift, np.uint8)}),
           Op("output", [0], None, {"out_off": 0, "n": n, "mode": 1, "mult": 0, "shift": 0})]
    return Graph("inp", [t], ops, [IOSpec("x", 0, (n,))], [IOSpec("y", 0, (n,))])


def test_input_pre_shift_and_s64_extremes():
    # f0: off 1000, pre 4, x0.5 (2^30, 31); f1: off -(2^62-1), pre 63, M 2^31-1, t 1;
    # f2: off 0, pre 0, M 2^31-1, t 62. zy = 3.
    g = _input_graph("s8", 3, [1000, -(2**62 - 1), 0], [4, 63, 0],
                     [1 << 30, 2**31 - 1, 2**31 - 1], [31, 1, 62])
    raw = np.array([
        # f0: d = floor(127/16) = 7, rq = floor(8/2) = 4 -> 7
        # f1: r = 2^62 (clamped), r - off = 2^63 - 1, >> 63 = 0, rq(0) = floor(1/2) = 0 -> 3
        # f2: d = clamp(2^62) = 2^31 - 1, rq = 1 (see test_rq) -> 4
        [1127, S64_MAX, 2**62],
        # f0: d = floor(-1/16) = -1, rq = floor(0/2) = 0 -> 3
        # f1: r = -2^62, r - off = -1, >> 63 = -1, rq(-1, 2^31-1, 1) = -2^30 -> -128
        # f2: d = -1, rq = floor((-(2^31-1) + 2^61) / 2^62) = 0 -> 3
        [999, S64_MIN, -1],
        # f0: r = -2^62, d clamps to -(2^31-1), rq = -2^30 -> -128
        # f1: r = 0, r - off = 2^62 - 1, >> 63 = 0 -> 3
        # f2: r = -2^62 -> d = -(2^31-1) -> rq = floor((-(2^62 - 2^32 + 1) + 2^61)/2^62) = -1 -> 2
        [S64_MIN, 0, S64_MIN],
        # f0: d = 2^31 - 1 after clamping, rq = 2^30 -> 127
        [S64_MAX, 1, S64_MAX],
    ])
    assert run(g, raw).tolist() == [[7, 3, 4], [3, -128, 3], [-128, 3, 2], [127, 3, 4]]


def test_input_s16_saturation():
    g = _input_graph("s16", 0, [0] * 4, [0] * 4, [ID_M] * 4, [ID_T] * 4)
    raw = np.array([-32769, -32768, 5, 32768])
    assert run(g, raw).tolist() == [-32768, -32768, 5, 32767]


def test_input_rejects_float_raw():
    g = _input_graph("s8", 0, [0], [0], [ID_M], [ID_T])
    with pytest.raises(TypeError):
        run(g, np.array([1.5]))


# --- FC --------------------------------------------------------------------

FC_ARRAYS = {"w": np.array([[1, 2, 3], [-4, 5, -6]], np.int8), "bias": np.array([101, -50], np.int32),
             "mult": np.array([1 << 30, 1 << 30], np.int32), "shift": np.array([31, 32], np.uint8)}


def test_fc_rounding_ties():
    # acc0 = 101 + 10 - 40 + 90 = 161; rq(161, 2^30, 31) = floor(162/2) = 81 (80.5 -> 81); y0 = -3 + 81 = 78
    # acc1 = -50 - 40 - 100 - 180 = -370; rq(-370, 2^30, 32) = floor(-368/4) = -92 (-92.5 -> -92); y1 = -95
    y = one_op("fc", {"n_in": 3, "n_out": 2, "lo": -128, "hi": 127}, FC_ARRAYS,
               [("s8", 5, [10, -20, 30])], ("s8", -3, 2))
    assert y == [78, -95]


def test_fc_clamp():
    # same accumulators, clamped to [-90, 60] (a fused activation)
    y = one_op("fc", {"n_in": 3, "n_out": 2, "lo": -90, "hi": 60}, FC_ARRAYS,
               [("s8", 5, [10, -20, 30])], ("s8", -3, 2))
    assert y == [60, -90]


def test_fc_int16_accumulator_exactly_at_bound():
    # |bias| + 127 * 2^15 = 2^31 - 1: bias = 2147483647 - 4161536 = 2143322111
    # x = -32768, w = -127: acc = 2143322111 + 4161536 = 2147483647 (s32 max, no overflow)
    # rq(2^31 - 1, 2^30, 47) = floor((2^31 - 1)/2^17 + 1/2) = floor(16383.99999 + 0.5) = 16384
    arrays = {"w": np.array([[-127]], np.int8), "bias": np.array([2143322111], np.int32),
              "mult": np.array([1 << 30], np.int32), "shift": np.array([47], np.uint8)}
    y = one_op("fc", {"n_in": 1, "n_out": 1, "lo": -32768, "hi": 32767}, arrays,
               [("s16", 0, [-32768])], ("s16", 0, 1))
    assert y == [16384]


# --- CONV1D ----------------------------------------------------------------

def _conv_params(c_in, l_in, c_out, l_out, k, stride, pad, dil):
    return {"c_in": c_in, "l_in": l_in, "c_out": c_out, "l_out": l_out, "k": k, "stride": stride,
            "pad": pad, "dil": dil, "lo": -128, "hi": 127}


def _conv_arrays(w, bias):
    c_out = len(bias)
    return {"w": np.array(w, np.int8), "bias": np.array(bias, np.int32),
            "mult": np.full(c_out, ID_M, np.int32), "shift": np.full(c_out, ID_T, np.uint8)}


def test_conv1d_padding_is_zero_point():
    # l_out = floor((4 + 2 - 2 - 1) / 2) + 1 = 2; zx = 3 pads
    # l0: positions -1, 0, 1 -> [3, 5, -1] . [1, 2, -1] = 3 + 10 + 1 = 14
    # l1: positions 1, 2, 3 -> [-1, 7, 2] . [1, 2, -1] = -1 + 14 - 2 = 11
    y = one_op("conv1d", _conv_params(1, 4, 1, 2, 3, 2, 1, 1), _conv_arrays([[[1, 2, -1]]], [0]),
               [("s8", 3, [5, -1, 7, 2])], ("s8", 0, 2))
    assert y == [14, 11]


def test_conv1d_dilation():
    # k 2, dil 2, pad 2, stride 1: l_out = floor((4 + 4 - 2 - 1)/1) + 1 = 6; y = 10 + 2a - b
    # windows (a, b): (3,5) (3,-1) (5,7) (-1,2) (7,3) (2,3) with zx = 3 outside
    y = one_op("conv1d", _conv_params(1, 4, 1, 6, 2, 1, 2, 2), _conv_arrays([[[2, -1]]], [10]),
               [("s8", 3, [5, -1, 7, 2])], ("s8", 0, 6))
    assert y == [11, 17, 13, 6, 21, 11]


def test_conv1d_channels():
    # x = [[1,2,3],[4,5,6]], k 2: c0 = x[0][l] + x[1][l+1] -> 1+5=6, 2+6=8
    # c1 = 5 - x[0][l] + x[0][l+1] + x[1][l] - x[1][l+1] -> 5-1+2+4-5=5, 5-2+3+5-6=5
    y = one_op("conv1d", _conv_params(2, 3, 2, 2, 2, 1, 0, 1),
               _conv_arrays([[[1, 0], [0, 1]], [[-1, 1], [1, -1]]], [0, 5]),
               [("s8", 0, [1, 2, 3, 4, 5, 6])], ("s8", 0, 4))
    assert y == [6, 8, 5, 5]


# --- pools -----------------------------------------------------------------

def test_maxpool1d():
    # k 2, stride 2, l_out = floor((5-2)/2)+1 = 2: c0 max(1,9)=9, max(-3,4)=4; c1 -128, 0
    y = one_op("maxpool1d", {"c": 2, "l_in": 5, "l_out": 2, "k": 2, "stride": 2}, None,
               [("s8", 7, [1, 9, -3, 4, 100, -128, -128, 0, -1, 5])], ("s8", 7, 4))
    assert y == [9, 4, -128, 0]


def test_avgpool1d_ties():
    # zx -2: sums (3 + 4) = 7 -> rq(7, 2^30, 31) = floor(8/2) = 4 -> 1 + 4 = 5
    #        (-2 - 3) = -5 -> floor(-4/2) = -2 (-2.5 -> -2) -> 1 - 2 = -1
    y = one_op("avgpool1d", {"c": 1, "l_in": 4, "l_out": 2, "k": 2, "stride": 2, "mult": 1 << 30,
                             "shift": 31, "lo": -128, "hi": 127}, None,
               [("s8", -2, [1, 2, -4, -5])], ("s8", 1, 2))
    assert y == [5, -1]


# --- elementwise -----------------------------------------------------------

def test_clamp_relu_relu6():
    x = [("s8", -5, [-128, -5, 0, 6, 127])]
    assert one_op("clamp", {"n": 5, "lo": -5, "hi": 127}, None, x, ("s8", -5, 5)) == [-5, -5, 0, 6, 127]
    assert one_op("clamp", {"n": 5, "lo": -5, "hi": 20}, None, x, ("s8", -5, 5)) == [-5, -5, 0, 6, 20]


def test_leaky_relu():
    # zx 10, zy -10; v = x - 10 = [0, 10, -10, -138, 117]
    # v >= 0: x1 (2^30, 30): 0, 10, 117; v < 0: x1/8 (2^30, 33):
    #   rq(-10) = floor((-10 + 4)/8) = -1 (-1.25); rq(-138) = floor((-138 + 4)/8) = -17 (-17.25)
    y = one_op("leaky_relu", {"n": 5, "mult": 1 << 30, "shift": 30, "mult_b": 1 << 30, "shift_b": 33},
               None, [("s8", 10, [10, 20, 0, -128, 127])], ("s8", -10, 5))
    assert y == [-10, 0, -11, -27, 107]


def test_lut_s8():
    # table[j] = 127 - j: y = table[x + 128] = -1 - x
    table = np.array([127 - j for j in range(256)], np.int16)
    y = one_op("lut", {"n": 3}, {"table": table}, [("s8", 0, [-128, 0, 127])], ("s8", 0, 3))
    assert y == [127, -1, -128]


def test_lut_s16_interpolation():
    table = np.zeros(513, np.int16)
    table[257], table[258] = 1000, -1000
    table[301] = 1
    table[511], table[512] = 32000, 32767
    # x = 0: u = 32768, j = 256, f = 0 -> 0
    # x = 1: f = 1 -> floor((1000 + 64)/128) = 8
    # x = 64: f = 64 -> floor((64000 + 64)/128) = 500 (500.5 -> 500)
    # x = 192: j = 257, f = 64 -> 1000 + floor((-2000*64 + 64)/128) = 1000 - 1000 = 0
    # x = 5696: j = 300, f = 64 -> 0 + floor((64 + 64)/128) = 1 (0.5 -> 1)
    # x = 5824: j = 301, f = 64 -> 1 + floor((-64 + 64)/128) = 1 (-0.5 -> 0)
    # x = 32767: j = 511, f = 127 -> 32000 + floor((767*127 + 64)/128) = 32000 + 761 = 32761
    # x = -32768: j = 0, f = 0 -> 0
    xs = [0, 1, 64, 192, 5696, 5824, 32767, -32768]
    y = one_op("lut", {"n": 8}, {"table": table}, [("s16", 0, xs)], ("s16", 0, 8))
    assert y == [0, 8, 500, 0, 1, 1, 32761, 0]


def test_add_one_rounding():
    # zx 2, zb -3, zy 5; mult 2^30 (0.5), mult_b 3*2^28 (0.375), shift 31
    # i0: (1*2^30 + 0 + 2^30) >> 31 = 1 (0.5 -> 1)           -> 6
    # i1: (-1*2^30 + 0 + 2^30) >> 31 = 0 (-0.5 -> 0)         -> 5
    # i2: 10*0.5 + 8*0.375 = 8, + 0.5 -> 8                   -> 13
    # i3: -130*0.5 - 125*0.375 = -111.875, + 0.5 -> -112     -> -107
    # i4: 125*0.5 + 130*0.375 = 111.25, + 0.5 -> 111         -> 116
    params = {"n": 5, "mult": 1 << 30, "mult_b": 3 << 28, "shift": 31, "lo": -128, "hi": 127}
    xs = [("s8", 2, [3, 1, 12, -128, 127]), ("s8", -3, [-3, -3, 5, -128, 127])]
    assert one_op("add", params, None, xs, ("s8", 5, 5)) == [6, 5, 13, -107, 116]
    assert one_op("add", dict(params, hi=100), None, xs, ("s8", 5, 5)) == [6, 5, 13, -107, 100]


def test_rescale_s8_to_s16():
    # zx -1; v = [0, 1, 128, -127] * 256 (2^30, 22) = [0, 256, 32768 -> 32767, -32512]
    y = one_op("rescale", {"n": 4, "mult": 1 << 30, "shift": 22, "lo": -32768, "hi": 32767}, None,
               [("s8", -1, [-1, 0, 127, -128])], ("s16", 0, 4))
    assert y == [0, 256, 32767, -32512]


def test_concat_and_reshape():
    y = one_op("concat", {"outer": 2, "a_inner": 2, "b_inner": 1}, None,
               [("s8", 4, [1, 2, 3, 4]), ("s8", 4, [9, 8])], ("s8", 4, 6))
    assert y == [1, 2, 9, 3, 4, 8]
    assert one_op("reshape", {"n": 3}, None, [("s16", 0, [-32768, 0, 32767])], ("s16", 0, 3)) \
        == [-32768, 0, 32767]


# --- softmax / argmax ------------------------------------------------------

def test_softmax_s8():
    table = np.array([32768, 12055, 4435, 1632], np.int32)
    p = {"outer": 2, "n": 3, "shift": 0, "bits": 8, "table_len": 4}
    # row 0: x [5, 4, 2], d [0, 1, 3] -> e [32768, 12055, 1632], S = 46455, S//2 = 23227
    #   y0 = -128 + floor((32768*256 + 23227)/46455) = -128 + floor(8411835/46455) = -128 + 181 = 53
    #   y1 = -128 + floor((12055*256 + 23227)/46455) = -128 + floor(3109307/46455) = -128 + 66 = -62
    #   y2 = -128 + floor((1632*256 + 23227)/46455) = -128 + floor(441019/46455) = -128 + 9 = -119
    # row 1: x [100, -100, 100], d [0, 200, 0] -> e [32768, 1632 (index clamped to 3), 32768]
    #   S = 67168, S//2 = 33584
    #   y0 = y2 = -128 + floor((8388608 + 33584)/67168) = -128 + floor(8422192/67168) = -128 + 125 = -3
    #   y1 = -128 + floor((417792 + 33584)/67168) = -128 + floor(451376/67168) = -128 + 6 = -122
    y = one_op("softmax", p, {"table": table}, [("s8", 0, [5, 4, 2, 100, -100, 100])], ("s8", -128, 6))
    assert y == [53, -62, -119, -3, -122, -3]


def test_softmax_s16_shift():
    table = np.array([32768, 12055, 4435, 1632], np.int32)
    p = {"outer": 1, "n": 4, "shift": 2, "bits": 15, "table_len": 4}
    # x [1000, 999, 996, 0]: d [0, 1, 4, 1000] >> 2 = [0, 0, 1, 250 -> 3]
    # e [32768, 32768, 12055, 1632], S = 79223, S//2 = 39611
    #   y0 = y1 = floor((32768*32768 + 39611)/79223) = floor(1073781435/79223) = 13553 (79223 * 13554 = 1073788542 is too big)
    #   y2 = floor((12055*32768 + 39611)/79223) = floor(395057851/79223) = 4986
    #   y3 = floor((1632*32768 + 39611)/79223) = floor(53516987/79223) = 675
    y = one_op("softmax", p, {"table": table}, [("s16", 0, [1000, 999, 996, 0])], ("s16", 0, 4))
    assert y == [13553, 13553, 4986, 675]


def test_argmax_ties_take_smallest_index():
    y = one_op("argmax", {"outer": 2, "n": 3}, None, [("s8", 0, [5, 7, 7, -1, -1, -2])], ("s32", 0, 2))
    assert y == [1, 0]


# --- OUTPUT ----------------------------------------------------------------

def _output_graph(dtype, zp, n, mode, mult, shift):
    ts = []
    ops = []
    _feed(ts, ops, dtype, zp, [0] * n, 0)
    ops.append(Op("output", [0], None, {"out_off": 0, "n": n, "mode": mode, "mult": mult, "shift": shift}))
    return Graph("out", ts, ops, [IOSpec("x", 0, (n,))], [IOSpec("y", 0, (n,))])


def test_output_dequantize_fixed_point():
    # zx -3, x2^15 (2^30, 15): v = [0, 1, 130, -125] -> [0, 32768, 4259840, -4096000]
    g = _output_graph("s8", -3, 4, 0, 1 << 30, 15)
    q = np.array([-3, -2, 127, -128])
    assert run(g, q + 3).tolist() == [0, 32768, 4259840, -4096000]


def test_output_saturates_to_s32():
    # rq(32767, 2^31 - 1, 1) ~ 3.5e13 -> 2^31 - 1; rq(-32768, ...) -> -2^31
    g = _output_graph("s16", 0, 2, 0, 2**31 - 1, 1)
    assert run(g, np.array([32767, -32768])).tolist() == [2**31 - 1, -(2**31)]


def test_output_copy():
    g = _output_graph("s8", 9, 2, 1, 0, 0)
    assert run(g, np.array([-128 - 9, 127 - 9])).tolist() == [-128, 127]


# --- no floating point on the inference path -------------------------------

REF_DIR = Path(__file__).resolve().parents[1] / "toolchain" / "ml_lib" / "reference"


#: the numpy names the reference may use: all of them keep integers integers.
#: A name outside this list (np.tanh, np.hypot, np.pi, ...) is flagged.
INT_SAFE_NUMPY = {
    "arange", "argmax", "asarray", "broadcast_to", "concatenate", "full", "iinfo", "int8", "int16",
    "int32", "int64", "uint8", "minimum", "maximum", "ndarray", "shape", "where", "zeros",
}
#: the only modules the reference may import (besides its own package)
ALLOWED_IMPORTS = {"numpy", "__future__", "dataclasses"}


def _float_uses(tree, where):
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and \
                node.value.id in ("np", "numpy") and node.attr not in INT_SAFE_NUMPY:
            bad.append(f"{where}:{node.lineno}: np.{node.attr} is not in the integer allowlist")
        elif isinstance(node, ast.Import):
            bad += [f"{where}:{node.lineno}: import {a.name}" for a in node.names
                    if a.name.split(".")[0] not in ALLOWED_IMPORTS]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and \
                node.module.split(".")[0] not in ALLOWED_IMPORTS:
            bad.append(f"{where}:{node.lineno}: from {node.module} import")
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow) and not (
                isinstance(node.right, ast.Constant) and isinstance(node.right.value, int)
                and node.right.value >= 0):
            bad.append(f"{where}:{node.lineno}: '**' without a non-negative integer exponent")
        if isinstance(node, ast.Constant) and isinstance(node.value, (float, complex)):
            bad.append(f"{where}:{node.lineno}: float literal {node.value!r}")
        elif isinstance(node, (ast.BinOp, ast.AugAssign)) and isinstance(node.op, ast.Div):
            bad.append(f"{where}:{node.lineno}: true division '/'")
        elif isinstance(node, ast.Name) and "float" in node.id.lower():
            bad.append(f"{where}:{node.lineno}: name {node.id}")
        elif isinstance(node, ast.Attribute) and any(s in node.attr.lower() for s in
                                                     ("float", "double", "half", "true_divide",
                                                      "divide", "mean", "round", "exp", "sqrt")):
            bad.append(f"{where}:{node.lineno}: attribute .{node.attr}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                node.value in ("f", "f2", "f4", "f8", "float", "float32", "float64", "d"):
            bad.append(f"{where}:{node.lineno}: dtype string {node.value!r}")
    return bad


def test_reference_has_no_float():
    files = sorted(REF_DIR.rglob("*.py"))
    assert len(files) >= 16  # the package and one module per op
    bad = []
    for f in files:
        bad += _float_uses(ast.parse(f.read_text()), f.name)
    # and the two arith primitives the op modules call
    src = (REF_DIR.parent / "arith.py").read_text()
    for node in ast.parse(src).body:
        if isinstance(node, ast.FunctionDef) and node.name in ("rq", "clamp"):
            bad += _float_uses(node, f"arith.{node.name}")
    assert not bad, "\n".join(bad)


def test_float_detector_catches_float():
    assert _float_uses(ast.parse("y = x / 2\nz = np.float64(1)\nw = 0.5"), "probe")
    # float functions that return integer-valued results slip past a blacklist
    for probe in ("j = np.rint(np.hypot(u, np.tanh(0))).astype(u.dtype) >> 7", "import math",
                  "from math import log", "k = np.pi", "y = x ** -1", "y = x ** e"):
        assert _float_uses(ast.parse(probe), "probe"), probe
    assert not _float_uses(ast.parse("y = np.minimum(x, 2 ** 7).astype(np.int64)"), "probe")


# --- exactness: int64 numpy == arbitrary-precision Python integers ---------
# The spec's operand bounds promise that no intermediate leaves s64; these
# properties check the numpy transcription against Python's unbounded ints
# over the whole parameter domain, where an overflow would show.

s64 = st.integers(S64_MIN, S64_MAX)
mults = st.integers(0, 2**31 - 1)
shifts = st.integers(1, 62)


def _clamp(v, lo, hi):
    return min(max(v, lo), hi)


@settings(max_examples=500, deadline=None, derandomize=True)
@given(v=st.integers(-(2**31), 2**31 - 1), m=mults, t=shifts)
def test_rq_exact(v, m, t):
    assert int(arith.rq(v, m, t)) == (v * m + (1 << (t - 1))) >> t


@settings(max_examples=300, deadline=None, derandomize=True)
@given(raw=st.lists(s64, min_size=1, max_size=4), off=st.integers(-(2**62 - 1), 2**62 - 1),
       pre=st.integers(0, 63), m=mults, t=shifts, zp=st.integers(-128, 127))
def test_input_exact(raw, off, pre, m, t, zp):
    g = _input_graph("s8", zp, [off], [pre], [m], [t])
    got = run(g, np.array(raw, np.int64).reshape(-1, 1))[:, 0].tolist()
    want = []
    for x in raw:
        d = _clamp((_clamp(x, -(2**62), 2**62) - off) >> pre, -(2**31 - 1), 2**31 - 1)
        want.append(_clamp(zp + ((d * m + (1 << (t - 1))) >> t), -128, 127))
    assert got == want


@settings(max_examples=300, deadline=None, derandomize=True)
@given(x=st.lists(st.integers(-32768, 32767), min_size=1, max_size=4), m=mults, t=shifts)
def test_output_exact(x, m, t):
    g = _output_graph("s16", 0, len(x), 0, m, t)
    want = [_clamp((v * m + (1 << (t - 1))) >> t, -(2**31), 2**31 - 1) for v in x]
    assert run(g, np.array(x)).tolist() == want


@settings(max_examples=300, deadline=None, derandomize=True)
@given(data=st.data(), m=mults, mb=mults, t=shifts)
def test_add_exact(data, m, mb, t):
    n = data.draw(st.integers(1, 4))
    a = data.draw(st.lists(st.integers(-32768, 32767), min_size=n, max_size=n))
    b = data.draw(st.lists(st.integers(-32768, 32767), min_size=n, max_size=n))
    want = [_clamp(((x * m + y * mb + (1 << (t - 1))) >> t), -32768, 32767) for x, y in zip(a, b)]
    got = one_op("add", {"n": n, "mult": m, "mult_b": mb, "shift": t, "lo": -32768, "hi": 32767}, None,
                 [("s16", 0, a), ("s16", 0, b)], ("s16", 0, n))
    assert got == want


@settings(max_examples=200, deadline=None, derandomize=True)
@given(table=st.lists(st.integers(-32768, 32767), min_size=513, max_size=513),
       x=st.lists(st.integers(-32768, 32767), min_size=1, max_size=8))
def test_lut_s16_exact(table, x):
    want = []
    for v in x:
        u = v + 32768
        j, f = u // 128, u % 128
        want.append(table[j] + (((table[j + 1] - table[j]) * f + 64) >> 7))
    got = one_op("lut", {"n": len(x)}, {"table": np.array(table, np.int16)}, [("s16", 0, x)],
                 ("s16", 0, len(x)))
    assert got == want
