"""Bad blobs and bad graphs -> the exact errno of docs/blob-format.md, in C.

Each test takes a valid blob written by ml_lib.blob.write_blob, corrupts one
thing with struct.pack_into, and checks the errno ml_lib_blob_parse() in
build/libml_lib.so returns. The Python reader/validator must give the same
errno class (they are twins), so every case is checked against both. The
boundary tests accept a graph exactly at a limit and reject it one past.
"""
from __future__ import annotations

import ctypes
import errno
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from ml_lib.blob import read_blob, write_blob
from ml_lib.ir import Graph, IOSpec, Op, Tensor, plan_arena
from ml_lib.validate import GraphError, validate

ROOT = Path(__file__).resolve().parents[1]
HDR, TREC, OREC = 80, 16, 64


@pytest.fixture(scope="module")
def lib():
    subprocess.run(["make", "-s", "-C", str(ROOT), "core-lib"], check=True)
    so = ctypes.CDLL(str(ROOT / "build" / "libml_lib.so"))
    so.ml_lib_blob_parse.argtypes = [ctypes.c_char_p, ctypes.c_size_t,
                                     ctypes.POINTER(ctypes.c_void_p)]
    so.ml_lib_graph_free.argtypes = [ctypes.c_void_p]
    return so


def c_errno(lib, blob: bytes) -> int:
    """0 or the positive errno of ml_lib_blob_parse(); frees what it made."""
    g = ctypes.c_void_p()
    rc = lib.ml_lib_blob_parse(bytes(blob), len(blob), ctypes.byref(g))
    if rc == 0:
        assert g.value
        lib.ml_lib_graph_free(g)
    else:
        assert not g.value, "a failed parse must leave *out NULL"
    return -rc


def py_errno(blob: bytes) -> int:
    try:
        validate(read_blob(bytes(blob)))
    except GraphError as e:
        return e.errno
    return 0


def expect(lib, blob, name: str | None):
    """Both implementations give errno ``name`` (None: both accept)."""
    want = 0 if name is None else getattr(errno, name)
    got = c_errno(lib, blob)
    assert got == want, f"C: {errno.errorcode.get(got, got)}, want {name}"
    assert py_errno(blob) == want, "the Python reader/validator disagrees with the spec"


# A tiny valid model: INPUT(4) -> FC(4 -> 3, ReLU) -> OUTPUT (fixed point).
# Tensors: 0 = x s8[4], 1 = y s8[3]. Ops: 0 INPUT, 1 FC, 2 OUTPUT.
def tiny_graph(w=None, bias=None, x_dtype="s8") -> Graph:
    n_in, n_out = 4, 3
    w = np.array([[1, -2, 3, -4], [5, 6, -7, 8], [-9, 10, 11, -12]], np.int8) if w is None else w
    n_out, n_in = w.shape
    bias = np.array([100, -200, 300][:n_out], np.int32) if bias is None else bias
    tensors = [Tensor("x", x_dtype, (n_in,), zero_point=0),
               Tensor("y", "s8", (n_out,), zero_point=-128)]
    ops = [
        Op("input", [], 0, {"in_off": 0, "n": n_in},
           {"off": np.zeros(n_in, np.int64), "pre": np.zeros(n_in, np.uint8),
            "mult": np.full(n_in, 1 << 30, np.int32), "shift": np.full(n_in, 31, np.uint8)}),
        Op("fc", [0], 1, {"n_in": n_in, "n_out": n_out, "lo": -128, "hi": 127},
           {"w": w.reshape(-1), "bias": np.asarray(bias, np.int32),
            "mult": np.full(n_out, 1 << 30, np.int32), "shift": np.full(n_out, 36, np.uint8)}),
        Op("output", [1], None, {"out_off": 0, "n": n_out, "mode": 0, "mult": 1 << 30, "shift": 20}),
    ]
    g = Graph("tiny", tensors, ops, [IOSpec("x", 0, (n_in,))], [IOSpec("y", 0, (n_out,))])
    plan_arena(g)
    return g


@pytest.fixture
def blob():
    return bytearray(write_blob(tiny_graph()))


def n_tensors(b):
    return struct.unpack_from("<I", b, 16)[0]


def op_at(b, i):
    return HDR + TREC * n_tensors(b) + OREC * i


def tensor_at(i):
    return HDR + TREC * i


def data_off(b):
    return struct.unpack_from("<I", b, 36)[0]


def d_of(b, op, k):
    return struct.unpack_from("<I", b, op_at(b, op) + 48 + 4 * k)[0]


def set_p(b, op, k, v):
    struct.pack_into("<i", b, op_at(b, op) + 8 + 4 * k, v)


def test_valid_blob_parses(lib, blob):
    expect(lib, blob, None)


# --- one test per class ------------------------------------------------------

@pytest.mark.parametrize("cut", [0, 1, 79])
def test_shorter_than_header(lib, blob, cut):
    expect(lib, blob[:cut], "EMSGSIZE")


def test_truncated_blob(lib, blob):
    expect(lib, blob[:-1], "EMSGSIZE")


def test_lengths_disagree(lib, blob):
    struct.pack_into("<I", blob, 40, struct.unpack_from("<I", blob, 40)[0] - 8)  # data_len
    expect(lib, blob, "EMSGSIZE")


def test_bad_magic(lib, blob):
    blob[0:4] = b"MLLC"
    expect(lib, blob, "ENOEXEC")


@pytest.mark.parametrize("major", [0, 1, 3])
def test_bad_major_version(lib, blob, major):
    struct.pack_into("<H", blob, 4, major)
    expect(lib, blob, "EPROTONOSUPPORT")


def test_minor_version_is_ignored(lib, blob):
    struct.pack_into("<H", blob, 6, 7)
    expect(lib, blob, None)


def test_array_offset_outside_data(lib, blob):
    struct.pack_into("<I", blob, op_at(blob, 1) + 48 + 4 * 1, len(blob) - data_off(blob))  # bias
    expect(lib, blob, "ERANGE")


def test_array_misaligned(lib, blob):
    struct.pack_into("<I", blob, op_at(blob, 1) + 48 + 4 * 1, d_of(blob, 1, 1) + 2)  # s32 bias
    expect(lib, blob, "ERANGE")


@pytest.mark.parametrize("op, k, onto", [
    (1, 2, (1, 1)),     # FC mult shares FC bias (same size and length)
    (1, 1, (0, 0)),     # FC bias (s32) inside INPUT's off (s64): bytes two sizes would share
    (1, 3, (1, 2)),     # FC shift (u8) inside FC mult (s32)
    (0, 1, (0, 0)),     # INPUT pre inside its own off
])
def test_arrays_overlap(lib, blob, op, k, onto):
    """Arrays may not share bytes (docs/blob-format.md): a shared array made one blob of
    a few MiB cost seconds of conversion per reference, and bytes read as two element
    sizes convert differently on a big-endian CPU."""
    struct.pack_into("<I", blob, op_at(blob, op) + 48 + 4 * k, d_of(blob, *onto))
    expect(lib, blob, "ERANGE")


def test_arrays_out_of_order(lib, blob):
    """Disjoint but not in op and slot order: the loader checks order, not overlap, so
    that the check is one comparison per array."""
    bias, mult = d_of(blob, 1, 1), d_of(blob, 1, 2)
    struct.pack_into("<II", blob, op_at(blob, 1) + 48 + 4, mult, bias)   # swap, both s32[3]
    expect(lib, blob, "ERANGE")


def test_arrays_with_gaps(lib, blob):
    """A gap between arrays is allowed: move FC's shift (u8[3], the last array) up by 4,
    into its padding."""
    d = d_of(blob, 1, 3)
    assert d + 4 + 3 <= len(blob) - data_off(blob)
    at = data_off(blob) + d
    blob[at + 4:at + 7] = blob[at:at + 3]
    struct.pack_into("<I", blob, op_at(blob, 1) + 48 + 12, d + 4)
    expect(lib, blob, None)


def test_blob_length_limit(lib, blob):
    """At most 64 MiB (ML_LIB_MAX_BLOB_LEN): the data section padded with unused bytes
    to exactly the limit is accepted, 8 bytes more is -E2BIG, before any allocation."""
    for total, want in ((64 << 20, None), ((64 << 20) + 8, "E2BIG")):
        b = blob + bytes(total - len(blob))
        struct.pack_into("<I", b, 12, total)
        struct.pack_into("<I", b, 40, total - data_off(b))
        expect(lib, b, want)


def test_tensor_outside_arena(lib, blob):
    arena = struct.unpack_from("<I", blob, 32)[0]
    struct.pack_into("<I", blob, tensor_at(1), arena - 2)  # 3 bytes at arena - 2
    expect(lib, blob, "ERANGE")


def test_tensor_misaligned(lib):
    b = bytearray(write_blob(tiny_graph(x_dtype="s16")))
    struct.pack_into("<I", b, tensor_at(0), struct.unpack_from("<I", b, tensor_at(0))[0] + 1)
    expect(lib, b, "ERANGE")


@pytest.mark.parametrize("code", [0, 16, 0xFFFF])
def test_unknown_op(lib, blob, code):
    struct.pack_into("<H", blob, op_at(blob, 1), code)
    expect(lib, blob, "EOPNOTSUPP")


def test_inconsistent_shapes(lib, blob):
    struct.pack_into("<I", blob, tensor_at(1) + 4, 2)  # y has 2 elements, FC says 3
    expect(lib, blob, "EINVAL")


def test_bad_tensor_index(lib, blob):
    struct.pack_into("<H", blob, op_at(blob, 1) + 2, 2)  # FC input = tensor 2 of 2
    expect(lib, blob, "EINVAL")


def test_read_before_write(lib, blob):
    struct.pack_into("<H", blob, op_at(blob, 1) + 2, 1)  # FC reads its own output
    expect(lib, blob, "EINVAL")


def test_unknown_dtype(lib, blob):
    blob[tensor_at(0) + 12] = 4
    expect(lib, blob, "EINVAL")


@pytest.mark.parametrize("where", ["header", "tensor", "op_p", "op_d"])
def test_reserved_fields(lib, blob, where):
    if where == "header":
        struct.pack_into("<I", blob, 44, 1)
    elif where == "tensor":
        blob[tensor_at(0) + 14] = 1
    elif where == "op_p":
        set_p(blob, 1, 4, 1)  # FC uses p[0..3]
    else:
        struct.pack_into("<I", blob, op_at(blob, 2) + 48, 0)  # OUTPUT has no arrays
    expect(lib, blob, "EINVAL")


@pytest.mark.parametrize("name", [b"9lives", b"has-dash", b"", b"x" * 32])
def test_bad_name(lib, blob, name):
    blob[48:80] = name.ljust(32, b"\0")[:32]
    expect(lib, blob, "EINVAL")


@pytest.mark.parametrize("patch", ["shift", "mult", "lo_hi", "zero_point", "mode", "weight",
                                   "input_off_min", "input_off_max"])
def test_param_out_of_range(lib, blob, patch):
    if patch.startswith("input_off"):
        # INPUT off[0] = -2^63 (np.abs(-2^63) wrapped and let it through) or 2^62
        v = -(2**63) if patch == "input_off_min" else 2**62
        struct.pack_into("<q", blob, data_off(blob) + d_of(blob, 0, 0), v)
    elif patch == "shift":
        set_p(blob, 2, 4, 63)
    elif patch == "mult":
        set_p(blob, 2, 3, -1)
    elif patch == "lo_hi":
        set_p(blob, 1, 2, 100)
        set_p(blob, 1, 3, 99)
    elif patch == "zero_point":
        struct.pack_into("<i", blob, tensor_at(1) + 8, 128)
    elif patch == "mode":
        set_p(blob, 2, 2, 2)
    else:
        blob[data_off(blob) + d_of(blob, 1, 0)] = 0x80  # weight -128 (weights are symmetric)
    expect(lib, blob, "EDOM")


def test_accumulator_could_overflow(lib, blob):
    struct.pack_into("<i", blob, data_off(blob) + d_of(blob, 1, 1), 2**31 - 1)  # bias[0]
    expect(lib, blob, "EOVERFLOW")


@pytest.mark.parametrize("field,value", [(16, 1025), (20, 1025), (24, 65537), (28, 65537),
                                         (32, 2**20 + 1), (16, 0), (20, 0)])
def test_limits(lib, blob, field, value):
    struct.pack_into("<I", blob, field, value)
    expect(lib, blob, "E2BIG")


def conv_graph() -> Graph:
    """INPUT(2 x 6) -> CONV1D(c_in 2, k 3, c_out 2, pad 0, stride 1) -> OUTPUT."""
    tensors = [Tensor("x", "s8", (2, 6), zero_point=0), Tensor("y", "s8", (2, 4), zero_point=0)]
    ops = [
        Op("input", [], 0, {"in_off": 0, "n": 12},
           {"off": np.zeros(12, np.int64), "pre": np.zeros(12, np.uint8),
            "mult": np.full(12, 1 << 30, np.int32), "shift": np.full(12, 31, np.uint8)}),
        Op("conv1d", [0], 1, {"c_in": 2, "l_in": 6, "c_out": 2, "l_out": 4, "k": 3, "stride": 1,
                              "pad": 0, "dil": 1, "lo": -128, "hi": 127},
           {"w": np.arange(-6, 6, dtype=np.int8), "bias": np.array([5, -5], np.int32),
            "mult": np.full(2, 1 << 30, np.int32), "shift": np.full(2, 33, np.uint8)}),
        Op("output", [1], None, {"out_off": 0, "n": 8, "mode": 1, "mult": 0, "shift": 0}),
    ]
    g = Graph("conv", tensors, ops, [IOSpec("x", 0, (12,))], [IOSpec("y", 0, (8,))])
    plan_arena(g)
    return g


# CONV1D parameter slots, in blob order
CONV_P = {"c_in": 0, "l_in": 1, "c_out": 2, "l_out": 3, "k": 4, "stride": 5, "pad": 6, "dil": 7}


@pytest.mark.parametrize("field,delta", [("l_in", 65536), ("l_out", 65536), ("stride", 65536),
                                         ("pad", 65536), ("dil", 65536), ("pad", -65536),
                                         ("pad", -1), ("stride", -65535)])
def test_conv_dimension_beyond_u16(lib, field, delta):
    """The C op keeps CONV1D dimensions in u16. A blob dimension 2^16 away
    from the valid one (which a plain cast would wrap back to it) or negative
    is rejected with -EINVAL, never run as the wrapped value."""
    b = bytearray(write_blob(conv_graph()))
    expect(lib, b, None)
    set_p(b, 1, CONV_P[field], struct.unpack_from("<i", b, op_at(b, 1) + 8 + 4 * CONV_P[field])[0]
          + delta)
    expect(lib, b, "EINVAL")


def pool_graph(n: int, k: int, stride: int) -> Graph:
    """INPUT(n) -> MAXPOOL1D(c 1, l_in n, k, stride) -> OUTPUT (copy): work
    16 n + l_out (k + 8) + 8 l_out units (docs/arithmetic.md §5, "Limits")."""
    l_out = (n - k) // stride + 1
    tensors = [Tensor("x", "s8", (n,), zero_point=0), Tensor("y", "s8", (l_out,), zero_point=0)]
    ops = [
        Op("input", [], 0, {"in_off": 0, "n": n},
           {"off": np.zeros(n, np.int64), "pre": np.zeros(n, np.uint8),
            "mult": np.full(n, 1 << 30, np.int32), "shift": np.full(n, 31, np.uint8)}),
        Op("maxpool1d", [0], 1, {"c": 1, "l_in": n, "l_out": l_out, "k": k, "stride": stride}),
        Op("output", [1], None, {"out_off": 0, "n": l_out, "mode": 1, "mult": 0, "shift": 0}),
    ]
    g = Graph("pool", tensors, ops, [IOSpec("x", 0, (n,))], [IOSpec("y", 0, (l_out,))])
    plan_arena(g)
    return g


def test_work_budget(lib):
    """A graph whose work is just over the budget (2^24 units) is -E2BIG in
    both validators, one exactly at it is accepted: the two count the same."""
    from ml_lib.validate import WORK_BUDGET, graph_work

    at, over = pool_graph(52350, 600, 2), pool_graph(55265, 273, 1)
    assert graph_work(at) == WORK_BUDGET == 2**24 and graph_work(over) == WORK_BUDGET + 1
    expect(lib, write_blob(at), None)
    expect(lib, write_blob(over), "E2BIG")


def conv_budget_graph(n: int, k: int, pad: int) -> Graph:
    """INPUT(n) -> CONV1D(c_in = c_out = 1, l_in n, k taps, pad, stride 1) ->
    OUTPUT (copy): 16 n + l_out (k + 8 + 16) + 8 l_out units, the 16 being
    CONV1D's per-position charge (docs/arithmetic.md §5, "Limits")."""
    l_out = n + 2 * pad - k + 1
    tensors = [Tensor("x", "s8", (n,), zero_point=0), Tensor("y", "s8", (l_out,), zero_point=0)]
    ops = [
        Op("input", [], 0, {"in_off": 0, "n": n},
           {"off": np.zeros(n, np.int64), "pre": np.zeros(n, np.uint8),
            "mult": np.full(n, 1 << 30, np.int32), "shift": np.full(n, 31, np.uint8)}),
        Op("conv1d", [0], 1, {"c_in": 1, "l_in": n, "c_out": 1, "l_out": l_out, "k": k, "stride": 1,
                              "pad": pad, "dil": 1, "lo": -128, "hi": 127},
           {"w": np.zeros(k, np.int8), "bias": np.zeros(1, np.int32),
            "mult": np.full(1, 1 << 30, np.int32), "shift": np.full(1, 31, np.uint8)}),
        Op("output", [1], None, {"out_off": 0, "n": l_out, "mode": 1, "mult": 0, "shift": 0}),
    ]
    g = Graph("convwork", tensors, ops, [IOSpec("x", 0, (n,))], [IOSpec("y", 0, (l_out,))])
    plan_arena(g)
    return g


def test_work_budget_conv1d(lib):
    """CONV1D pays 16 units per output position on top of c_out (c_in k + 8)
    (its tap range costs up to four s64 divisions, whatever c_out is). Both
    validators count it: a graph exactly at 2^24 is accepted, one unit over is
    -E2BIG. The second pair is the KUnit case (ml_lib_kunit.c, l_in 1): at the
    budget, and one more pad 528 units over it."""
    from ml_lib.validate import WORK_BUDGET, graph_work

    at, over = conv_budget_graph(61922, 209, 1895), conv_budget_graph(61907, 209, 1903)
    assert graph_work(at) == WORK_BUDGET and graph_work(over) == WORK_BUDGET + 1
    expect(lib, write_blob(at), None)
    expect(lib, write_blob(over), "E2BIG")
    at, over = conv_budget_graph(1, 232, 31890), conv_budget_graph(1, 232, 31891)
    assert graph_work(at) == WORK_BUDGET and graph_work(over) == WORK_BUDGET + 528
    expect(lib, write_blob(at), None)
    expect(lib, write_blob(over), "E2BIG")


def test_work_budget_stops_a_huge_conv_before_its_weights(lib):
    """The review's case: one CONV1D with c_in = c_out = 1, l_in = l_out = k
    = 65535 and pad 32767 (4.3e9 MACs, ~2.8 s per inference) validated. Now
    -E2BIG, decided before the weights are scanned."""
    g = conv_budget_graph(65535, 65535, 32767)  # l_out = 65535
    b = bytearray(write_blob(g))
    expect(lib, b, "E2BIG")
    # a weight of -128 (EDOM if scanned) does not change that: the budget comes first
    b[data_off(b) + d_of(b, 1, 0)] = 0x80
    expect(lib, b, "E2BIG")


# --- boundaries: accepted at the limit, rejected one past it ----------------

@pytest.mark.parametrize("bits", [8, 16])
def test_accumulator_bound_boundary(lib, bits):
    x_dtype = "s8" if bits == 8 else "s16"
    w = np.array([[127, -127, 1]], np.int8)
    limit = 2**31 - 1 - (127 + 127 + 1) * 2 ** (bits - 1)
    for bias, want in ((limit, None), (-limit, None), (limit + 1, "EOVERFLOW"),
                       (-limit - 1, "EOVERFLOW")):
        expect(lib, write_blob(tiny_graph(w=w, bias=[bias], x_dtype=x_dtype)), want)


@pytest.mark.parametrize("n_out", [2, 3, 13, 25])
def test_accumulator_bound_per_row_in_row_blocks(lib, n_out):
    """FC weights are stored in row blocks (docs/blob-format.md): the bound
    must be summed over each row's own weights wherever the row sits in
    its block. One heavy row at a time, every other row light."""
    limit = 2**31 - 1 - (127 + 127 + 1) * 128
    for c in range(n_out):
        w = np.ones((n_out, 3), np.int8)
        w[c] = [127, -127, 1]
        for bias_c, want in ((limit, None), (limit + 1, "EOVERFLOW")):
            bias = np.zeros(n_out, np.int32)
            bias[c] = bias_c
            expect(lib, write_blob(tiny_graph(w=w, bias=bias)), want)


def test_shift_boundary(lib, blob):
    for shift, want in ((62, None), (1, None), (63, "EDOM"), (0, "EDOM")):
        set_p(blob, 2, 4, shift)
        expect(lib, blob, want)


def test_mult_boundary(lib, blob):
    for mult, want in ((2**31 - 1, None), (0, None), (-1, "EDOM"), (-(2**31), "EDOM")):
        set_p(blob, 2, 3, mult)
        expect(lib, blob, want)


def test_arena_boundary(lib, blob):
    for arena, want in ((2**20, None), (2**20 + 1, "E2BIG")):
        struct.pack_into("<I", blob, 32, arena)
        expect(lib, blob, want)


def test_tensor_end_boundary(lib, blob):
    arena = struct.unpack_from("<I", blob, 32)[0]
    for off, want in ((arena - 3, None), (arena - 2, "ERANGE")):  # y is 3 bytes
        struct.pack_into("<I", blob, tensor_at(1), off)
        expect(lib, blob, want)


def test_name_length_boundary(lib, blob):
    for name, want in ((b"n" * 31, None), (b"n" * 32, "EINVAL")):
        blob[48:80] = name.ljust(32, b"\0")
        expect(lib, blob, want)


def test_single_byte_corruptions_agree(lib, blob):
    """Change each byte after the magic ten ways (each single bit, all bits,
    0x5A): the C loader and the Python twin give the same errno, or both
    accept."""
    n = 0
    for i in range(4, len(blob)):
        for flip in (1, 2, 4, 8, 16, 32, 64, 128, 0xFF, 0x5A):
            b = bytearray(blob)
            b[i] ^= flip
            assert c_errno(lib, b) == py_errno(b), f"byte {i} ^ {flip:#x}"
            n += 1
    assert n == 10 * (len(blob) - 4)


# --- two defects in one blob: the same errno from both (the order of checks) --
#
# The C loader checks the header (name included), then every tensor record,
# then every op record (code, unused slots, LUT input, array references), and
# only then ml_lib_graph_validate() (tensors, then op by op: indices, then
# parameters). read_blob() + validate() must check in that same order, or a
# blob with two defects gets two different errnos.

def _two_defects():
    def fc_out_7(b):  # FC output index 7 (of 2 tensors): validate's EINVAL
        struct.pack_into("<H", b, op_at(b, 1) + 6, 7)

    def fc_bias_outside(b):  # the loader's ERANGE
        struct.pack_into("<I", b, op_at(b, 1) + 48 + 4, 0x10000)

    def tensor0_outside_arena(b):  # validate's ERANGE, before any op
        struct.pack_into("<I", b, tensor_at(0), 4096)

    def empty_name(b):  # the header's EINVAL
        b[48:80] = bytes(32)

    def op2_unknown_code(b):  # the loader's EOPNOTSUPP
        struct.pack_into("<H", b, op_at(b, 2), 99)

    def op0_out_9(b):
        struct.pack_into("<H", b, op_at(b, 0) + 6, 9)

    return {
        "bad_index+array_outside_data": ((fc_out_7, fc_bias_outside), "ERANGE"),
        "bad_index+tensor_outside_arena": ((fc_out_7, tensor0_outside_arena), "ERANGE"),
        "empty_name+unknown_op": ((empty_name, op2_unknown_code), "EINVAL"),
        "bad_index_op0+unknown_op_op2": ((op0_out_9, op2_unknown_code), "EOPNOTSUPP"),
        "empty_name+array_outside_data": ((empty_name, fc_bias_outside), "EINVAL"),
    }


@pytest.mark.parametrize("case", list(_two_defects()))
def test_two_defects_same_errno(lib, case):
    patches, want = _two_defects()[case]
    b = bytearray(write_blob(tiny_graph()))
    for patch in patches:
        patch(b)
    expect(lib, b, want)


def test_two_defects_in_random_graphs_same_errno(lib):
    """Pairs of random byte corruptions, mostly in the header and records
    (where the checks of the two phases meet), some in the data section, over
    random graphs of every op: C and Python give the same errno."""
    from ml_lib.randgraph import random_graph

    rng = np.random.default_rng(2024)
    seen = set()
    for seed in range(60):
        clean = write_blob(random_graph(seed))
        records_end = data_off(clean)
        for _ in range(150):
            b = bytearray(clean)
            flips = []
            for _ in range(2):
                pos = (int(rng.integers(8, records_end)) if rng.random() < 0.8
                       else int(rng.integers(records_end, len(b))))
                flips.append((pos, int(rng.integers(1, 256))))
                b[pos] ^= flips[-1][1]
            got, py = c_errno(lib, b), py_errno(b)
            assert py == got, (f"random_graph({seed}), bytes (position, xor) {flips}: "
                               f"C {errno.errorcode.get(got, got)}, Python {errno.errorcode.get(py, py)}")
            seen.add(got)
    # the sweep reaches every phase: loader, validator and acceptance
    assert {0, errno.EINVAL, errno.ERANGE, errno.EDOM, errno.EOPNOTSUPP, errno.E2BIG} <= seen
