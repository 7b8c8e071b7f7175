"""Blob writer/reader round trip, layout, and the validator's errno classes.

The defect classes are checked twice: the Python validator (what mlexport
runs before writing anything) and the C loader (``ml_lib_blob_parse()``)
must give the same errno for the same defective graph.
"""
import errno
import struct

import numpy as np
import pytest

from ml_lib import cengine
from ml_lib.blob import HEADER_LEN, read_blob, write_blob
from ml_lib.ir import OP_SPECS, Graph, IOSpec, Op, Tensor, plan_arena
from ml_lib.randgraph import random_graph
from ml_lib.validate import GraphError, validate


def small_graph(bits=8):
    """INPUT(3) -> FC(3->2) -> LUT -> OUTPUT: every array kind, hand-made."""
    dt = "s16" if bits == 16 else "s8"
    zp = 0 if bits == 16 else -5
    t = [Tensor("x", dt, (3,), zero_point=zp), Tensor("h", dt, (2,), zero_point=0),
         Tensor("z", "s8", (2,), zero_point=3)]
    ops = [
        Op("input", [], 0, {"in_off": 0, "n": 3},
           {"off": np.array([0, -(2**62 - 1), 2**62 - 1], np.int64), "pre": np.array([0, 7, 63], np.uint8),
            "mult": np.array([1 << 30, 0, 2**31 - 1], np.int32), "shift": np.array([30, 1, 62], np.uint8)}),
        Op("fc", [0], 1, {"n_in": 3, "n_out": 2, "lo": -100, "hi": 100},
           {"w": np.array([[1, -127, 3], [127, 0, -1]], np.int8), "bias": np.array([7, -(2**20)], np.int32),
            "mult": np.array([1 << 30, 2**31 - 1], np.int32), "shift": np.array([31, 40], np.uint8)}),
        Op("lut", [1], 2, {"n": 2}, {"table": (np.arange(256 if bits == 8 else 513) % 200 - 100).astype(np.int16)}),
        Op("output", [2], None, {"out_off": 0, "n": 2, "mode": 0, "mult": 1 << 30, "shift": 20}),
    ]
    g = Graph("small", t, ops, [IOSpec("x", 0, (3,))], [IOSpec("y", 0, (2,))])
    plan_arena(g)
    return g


def _same_graph(a: Graph, b: Graph):
    assert a.name == b.name and a.n_in == b.n_in and a.n_out == b.n_out
    assert a.arena_bytes == b.arena_bytes
    assert [(t.dtype, t.len, t.zero_point, t.offset) for t in a.tensors] == \
           [(t.dtype, t.len, t.zero_point, t.offset) for t in b.tensors]
    for oa, ob in zip(a.ops, b.ops, strict=True):
        assert (oa.kind, oa.inputs, oa.output) == (ob.kind, ob.inputs, ob.output)
        assert {k: int(v) for k, v in oa.params.items()} == ob.params
        assert sorted(oa.arrays) == sorted(ob.arrays)
        for k in oa.arrays:
            assert np.array_equal(np.asarray(oa.arrays[k]).reshape(-1), ob.arrays[k]), (oa.kind, k)


@pytest.mark.parametrize("bits", [8, 16])
def test_round_trip_small(bits):
    g = small_graph(bits)
    blob = write_blob(g)
    assert blob == write_blob(g)  # deterministic
    back = read_blob(blob)
    _same_graph(g, back)
    assert write_blob(back) == blob
    validate(back)


def test_round_trip_random_graphs():
    for seed in range(200):
        g = random_graph(seed)
        blob = write_blob(g)
        back = read_blob(blob)
        _same_graph(g, back)
        assert write_blob(back) == blob


def test_layout():
    g = small_graph()
    blob = write_blob(g)
    (magic, major, minor, hlen, total, n_t, n_o, n_in, n_out, arena, data_off, data_len, rsv,
     name) = struct.unpack_from("<4sHHIIIIIIIIII32s", blob)
    assert (magic, major, hlen, total, n_t, n_o, n_in, n_out, rsv) == (b"MLLB", 2, 80, len(blob), 3, 4, 3, 2, 0)
    assert name.rstrip(b"\0") == b"small" and arena == g.arena_bytes
    # 80 + 16*3 + 64*4 = 384, already 8-aligned
    assert data_off == 384 and data_off + data_len == len(blob)
    # first tensor record: offset, len 3, zero point -5, dtype s8 (1), reserved 0
    assert struct.unpack_from("<IIiB3s", blob, 80)[1:] == (3, -5, 1, b"\0\0\0")
    # FC record: code 2, in (0, none), out 1, params n_in n_out lo hi, then zeros; 4 arrays
    rec = struct.unpack_from("<HHHH10i4I", blob, 80 + 16 * 3 + 64)
    assert rec[:4] == (2, 0, 0xFFFF, 1) and rec[4:14] == (3, 2, -100, 100, 0, 0, 0, 0, 0, 0)
    offs = rec[14:]
    assert all(o % 8 == 0 for o in offs)  # every array 8-aligned in the data section
    # w = [[1, -127, 3], [127, 0, -1]] in storage order: one block of two
    # rows, w[c][i] at i * 2 + c
    w = np.frombuffer(blob, np.int8, 6, data_off + offs[0])
    assert w.tolist() == [1, 127, -127, 0, 3, -1]
    bias = np.frombuffer(blob, "<i4", 2, data_off + offs[1])
    assert bias.tolist() == [7, -(2**20)]
    # OUTPUT record: no output tensor, no arrays
    rec = struct.unpack_from("<HHHH10i4I", blob, 80 + 16 * 3 + 64 * 3)
    assert rec[:4] == (15, 2, 0xFFFF, 0xFFFF) and rec[14:] == (0xFFFFFFFF,) * 4


# --- container errors (reader) ---------------------------------------------

def _patch(blob, off, fmt, value):
    b = bytearray(blob)
    struct.pack_into(fmt, b, off, value)
    return bytes(b)


def _container_cases():
    blob = write_blob(small_graph())
    fc_rec = HEADER_LEN + 16 * 3 + 64
    return {
        "truncated header": (blob[:40], "EMSGSIZE"),
        "truncated data": (blob[:-8], "EMSGSIZE"),
        "bad magic": (b"MLLX" + blob[4:], "ENOEXEC"),
        "major version 1 (rows not blocked)": (_patch(blob, 4, "<H", 1), "EPROTONOSUPPORT"),
        "major version 3": (_patch(blob, 4, "<H", 3), "EPROTONOSUPPORT"),
        "array offset out of range": (_patch(blob, fc_rec + 8 + 40, "<I", 1 << 20), "ERANGE"),
        "misaligned bias": (_patch(blob, fc_rec + 8 + 40 + 4, "<I", 2), "ERANGE"),
        "unknown op code": (_patch(blob, fc_rec, "<H", 99), "EOPNOTSUPP"),
        "tensor index out of range": (_patch(blob, fc_rec + 2, "<H", 7), "EINVAL"),
        "unused param set": (_patch(blob, fc_rec + 8 + 4 * 9, "<i", 1), "EINVAL"),
        "arena too big": (_patch(blob, 32, "<I", (1 << 20) + 8), "E2BIG"),
    }


@pytest.mark.parametrize("case", list(_container_cases()))
def test_reader_errors(case):
    blob, want = _container_cases()[case]
    with pytest.raises(GraphError) as e:
        validate(read_blob(blob))
    assert e.value.errno_name == want


@pytest.mark.parametrize("case", list(_container_cases()))
def test_c_loader_agrees_on_container_errors(case, c_engine):
    blob, want = _container_cases()[case]
    assert cengine.parse_errno(blob, c_engine) == getattr(errno, want)


# --- semantic errors (validator) -------------------------------------------

def _bad(mutate):
    g = small_graph(16)
    validate(write_and_read(g))
    mutate(g)
    return g


def write_and_read(g):
    return read_blob(write_blob(g))


def _overflow(g):
    # x is s16: bound = |bias| + (1 + 127 + 3) * 2^15 = |bias| + 4292608; push channel 0 one past 2^31 - 1
    g.ops[1].arrays["bias"] = np.array([2**31 - 1 - 131 * 32768 + 1, 0], np.int32)


def _at_bound(g):
    # channel 0: sum |w| = 131, channel 1: sum |w| = 128; both exactly at 2^31 - 1
    g.ops[1].arrays["bias"] = np.array([2**31 - 1 - 131 * 32768, -(2**31 - 1 - 128 * 32768)], np.int32)


SEMANTIC = {
    "accumulator overflow": (_overflow, "EOVERFLOW"),
    "shift 0": (lambda g: g.ops[1].arrays.__setitem__("shift", np.array([0, 31], np.uint8)), "EDOM"),
    "shift 63": (lambda g: g.ops[3].params.__setitem__("shift", 63), "EDOM"),
    "negative multiplier": (lambda g: g.ops[3].params.__setitem__("mult", -1), "EDOM"),
    "clamp lo > hi": (lambda g: g.ops[1].params.update(lo=5, hi=4), "EDOM"),
    "weight -128": (lambda g: g.ops[1].arrays.__setitem__("w", np.array([[-128, 0, 0], [0, 0, 0]], np.int8)),
                    "EDOM"),
    "LUT value outside s8 output": (lambda g: g.ops[2].arrays.__setitem__(
        "table", np.full(513, 200, np.int16)), "EDOM"),
    "pre-shift 64": (lambda g: g.ops[0].arrays.__setitem__("pre", np.array([64, 0, 0], np.uint8)), "EDOM"),
    "FC length mismatch": (lambda g: g.ops[1].params.update(n_in=2) or g.ops[1].arrays.__setitem__(
        "w", np.zeros((2, 2), np.int8)), "EINVAL"),
    "read before write": (lambda g: g.ops.insert(0, g.ops.pop(1)), "EINVAL"),
    "s16 tensor with zero point": (lambda g: setattr(g.tensors[1], "zero_point", 3), "EINVAL"),
    "tensor outside arena": (lambda g: setattr(g.tensors[2], "offset", 1 << 16), "ERANGE"),
    "output mode 2": (lambda g: g.ops[3].params.__setitem__("mode", 2), "EDOM"),
}


def test_accumulator_exactly_at_bound_is_accepted(c_engine):
    g = _bad(_at_bound)
    validate(g)
    assert cengine.parse_errno(write_blob(g), c_engine) == 0


@pytest.mark.parametrize("case", list(SEMANTIC))
def test_validator_errors(case):
    mutate, want = SEMANTIC[case]
    g = _bad(mutate)
    with pytest.raises(GraphError) as e:
        validate(g)
    assert e.value.errno_name == want, str(e.value)


def test_parameter_beyond_s32_is_refused_even_where_ignored():
    # OUTPUT copy (mode 1) ignores mult and shift, but they are s32 fields of
    # the blob and of the generated C op record: validate() refused nothing,
    # write_blob() refused it and the generated C did not compile
    g = _bad(lambda g: g.ops[3].params.update(mode=1, mult=2**40))
    assert g.ops[3].kind == "output"
    for step in (validate, write_blob):
        with pytest.raises(GraphError) as e:
            step(g)
        assert e.value.errno_name == "EDOM" and "does not fit s32" in str(e.value)


@pytest.mark.parametrize("case", list(SEMANTIC))
def test_c_loader_agrees_with_validator(case, c_engine):
    mutate, want = SEMANTIC[case]
    g = _bad(mutate)
    assert cengine.parse_errno(write_blob(g), c_engine) == getattr(errno, want)


def test_every_op_kind_round_trips():
    seen = set()
    for seed in range(300):
        seen |= {op.kind for op in random_graph(seed).ops}
    assert seen == set(OP_SPECS)
