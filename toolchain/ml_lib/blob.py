"""Binary model blobs (docs/blob-format.md): ``write_blob`` and ``read_blob``.

A blob carries exactly what the generated C tables carry. The layout is
driven by ``ir.OP_SPECS`` (parameter order, array order and element types),
so the writer, the reader, the C code generator and the C loader cannot
disagree about what goes where.
"""
from __future__ import annotations

import struct

import numpy as np

from .ir import (DTYPE_CODES, DTYPE_SIZE, MAX_ARENA, MAX_BLOB_LEN, MAX_IO, MAX_OPS, MAX_TENSORS,
                 NAME_LEN, NO_TENSOR, OP_BY_CODE, Graph, IOSpec, Op, Tensor, plan_arena)
from .validate import GraphError

MAGIC = b"MLLB"
VERSION_MAJOR = 2
VERSION_MINOR = 0
HEADER_LEN = 80
TENSOR_REC_LEN = 16
OP_REC_LEN = 64
N_PARAMS = 10
N_ARRAYS = 4
NO_ARRAY = 0xFFFFFFFF

# magic, major, minor, header_len, total_len, n_tensors, n_ops, n_in, n_out,
# arena_bytes, data_off, data_len, reserved, name
_HEADER = struct.Struct("<4sHHIIIIIIIIII32s")
_TENSOR = struct.Struct("<IIiB3x")
_OP = struct.Struct("<HHHH10i4I")
assert _HEADER.size == HEADER_LEN and _TENSOR.size == TENSOR_REC_LEN and _OP.size == OP_REC_LEN

_DTYPE_BY_CODE = {v: k for k, v in DTYPE_CODES.items()}
_S32 = (-(2**31), 2**31 - 1)


def _align8(n: int) -> int:
    return (n + 7) & ~7


def planned(graph: Graph) -> Graph:
    """``graph`` itself when every tensor has an arena offset, else a planned copy.

    The blob writer and the code generator both go through here, so the
    blob and the C tables of one graph always carry the same arena layout.
    """
    if all(t.offset >= 0 for t in graph.tensors) and graph.arena_bytes > 0:
        return graph
    g = graph.copy()
    if any(t.offset < 0 for t in g.tensors):
        plan_arena(g)
    else:
        top = max((t.offset + t.len * DTYPE_SIZE[t.dtype] for t in g.tensors), default=0)
        g.arena_bytes = max(8, _align8(top))
    return g


#: FC weights are stored in row blocks of at most this many rows (lib/ml/ops.h).
FC_BLOCK_MAX = 12


def fc_row_blocks(n_out: int) -> list[tuple[int, int]]:
    """(first row, rows) of each FC weight block: blocks of ``FC_BLOCK_MAX``,
    then the even part of the rest, then a single row (ml_lib_fc_block_rows())."""
    blocks, c0 = [], 0
    while c0 < n_out:
        rest = n_out - c0
        rows = FC_BLOCK_MAX if rest >= FC_BLOCK_MAX else (rest & ~1 if rest >= 2 else 1)
        blocks.append((c0, rows))
        c0 += rows
    return blocks


def fc_weights_stored(w: np.ndarray, n_out: int, n_in: int) -> np.ndarray:
    """FC weights w[n_out][n_in] in storage order (docs/blob-format.md): within
    a block of R rows from row c0, w[c][i] sits at c0*n_in + i*R + (c - c0),
    so the C engine walks one block with one pointer."""
    w = np.asarray(w).reshape(n_out, n_in)
    return np.concatenate([w[c0:c0 + r].T.reshape(-1) for c0, r in fc_row_blocks(n_out)])


def fc_weights_unstored(flat: np.ndarray, n_out: int, n_in: int) -> np.ndarray:
    """Inverse of :func:`fc_weights_stored`: storage order back to w[n_out][n_in], flat."""
    flat = np.asarray(flat).reshape(-1)
    return np.concatenate([flat[c0 * n_in:(c0 + r) * n_in].reshape(n_in, r).T.reshape(-1)
                           for c0, r in fc_row_blocks(n_out)])


def op_arrays(op: Op, graph: Graph) -> list[np.ndarray]:
    """The op's constant arrays in ``OP_SPECS`` order, as exact-width numpy arrays
    in storage order (FC weights in row blocks: :func:`fc_weights_stored`).

    Raises GraphError when an array is missing, has the wrong length or holds
    a value its element type cannot represent (nothing is silently wrapped).
    """
    out = []
    for a in op.spec.arrays:
        if a.name not in op.arrays:
            raise GraphError("EINVAL", f"{op.kind} op ({op.source or 'unnamed'}) has no '{a.name}' array")
        src = np.asarray(op.arrays[a.name])
        want = op.array_length(a, graph)
        if src.size != want:
            raise GraphError("EINVAL", f"{op.kind} array '{a.name}' has {src.size} elements, "
                                       f"its parameters need {want}")
        info = np.iinfo(a.dtype)
        flat = src.reshape(-1)
        if flat.size and (flat.min() < info.min or flat.max() > info.max):
            raise GraphError("EDOM", f"{op.kind} array '{a.name}' has values outside {a.dtype}")
        flat = flat.astype(a.dtype)
        if op.kind == "fc" and a.name == "w":
            flat = fc_weights_stored(flat, op.params["n_out"], op.params["n_in"])
        out.append(flat)
    extra = set(op.arrays) - {a.name for a in op.spec.arrays}
    if extra:
        raise GraphError("EINVAL", f"{op.kind} op has unknown arrays {sorted(extra)}")
    return out


def write_blob(graph: Graph) -> bytes:
    """Serialize a graph to blob bytes (deterministic: same graph, same bytes)."""
    g = planned(graph)
    name = g.name.encode("ascii")
    if len(name) >= NAME_LEN:
        raise GraphError("EINVAL", f"model name {g.name!r} is longer than {NAME_LEN - 1} characters")
    n_t, n_o = len(g.tensors), len(g.ops)
    if not (1 <= n_t <= MAX_TENSORS and 1 <= n_o <= MAX_OPS):
        raise GraphError("E2BIG", f"{n_t} tensors / {n_o} ops is outside 1..{MAX_TENSORS}")
    data_off = _align8(HEADER_LEN + TENSOR_REC_LEN * n_t + OP_REC_LEN * n_o)

    tensor_recs = b"".join(
        _TENSOR.pack(t.offset, t.len, t.zero_point, DTYPE_CODES[t.dtype]) for t in g.tensors)

    data = bytearray()
    op_recs = []
    for op in g.ops:
        spec = op.spec
        params = []
        for p in spec.params:
            v = int(op.params[p])
            if not _S32[0] <= v <= _S32[1]:
                raise GraphError("EDOM", f"{op.kind} parameter {p}={v} does not fit s32")
            params.append(v)
        params += [0] * (N_PARAMS - len(params))
        offs = []
        for arr in op_arrays(op, g):
            data += b"\0" * (_align8(len(data)) - len(data))
            offs.append(len(data))
            data += arr.astype(arr.dtype.newbyteorder("<")).tobytes()
        offs += [NO_ARRAY] * (N_ARRAYS - len(offs))
        ins = list(op.inputs) + [NO_TENSOR] * (2 - len(op.inputs))
        out = NO_TENSOR if op.output is None else op.output
        op_recs.append(_OP.pack(spec.code, ins[0], ins[1], out, *params, *offs))
    data += b"\0" * (_align8(len(data)) - len(data))

    total = data_off + len(data)
    if total > MAX_BLOB_LEN:
        raise GraphError("E2BIG", f"blob would be {total} bytes, more than the {MAX_BLOB_LEN} "
                                  f"the loader takes")
    header = _HEADER.pack(MAGIC, VERSION_MAJOR, VERSION_MINOR, HEADER_LEN, total, n_t, n_o,
                          g.n_in, g.n_out, g.arena_bytes, data_off, len(data), 0, name)
    body = header + tensor_recs + b"".join(op_recs)
    body += b"\0" * (data_off - len(body))
    blob = body + bytes(data)
    assert len(blob) == total
    return blob


def read_blob(data: bytes) -> Graph:
    """Parse blob bytes back into a Graph (the inverse of :func:`write_blob`).

    Checks the container (sizes, magic, version, offsets, name, op codes,
    reserved fields) with the errnos of docs/blob-format.md, in the order of
    the C loader (lib/ml/blob.c); the semantic checks, tensor indices
    included, are :func:`ml_lib.validate.validate`, as in C they are
    ml_lib_graph_validate()'s. IOSpecs are not stored in a blob: the
    result has one input "x" of n_in features and one output "y" of n_out.
    """
    data = bytes(data)
    if len(data) < HEADER_LEN:
        raise GraphError("EMSGSIZE", f"blob is {len(data)} bytes, shorter than the {HEADER_LEN}-byte header")
    (magic, major, _minor, header_len, total, n_t, n_o, n_in, n_out, arena, data_off, data_len,
     reserved, raw_name) = _HEADER.unpack_from(data, 0)
    if magic != MAGIC:
        raise GraphError("ENOEXEC", f"bad magic {magic!r} (want {MAGIC!r})")
    if major != VERSION_MAJOR:
        raise GraphError("EPROTONOSUPPORT", f"blob format version {major} (this reader knows {VERSION_MAJOR})")
    if header_len != HEADER_LEN:
        raise GraphError("EINVAL", f"header_len {header_len} (want {HEADER_LEN})")
    if total != len(data) or data_off + data_len != total:
        raise GraphError("EMSGSIZE", f"total_len {total}, data_off {data_off}, data_len {data_len} "
                                     f"disagree with the blob length {len(data)}")
    if not (1 <= n_t <= MAX_TENSORS and 1 <= n_o <= MAX_OPS and 1 <= n_in <= MAX_IO
            and 1 <= n_out <= MAX_IO and 1 <= arena <= MAX_ARENA and total <= MAX_BLOB_LEN):
        raise GraphError("E2BIG", f"counts out of limits: {n_t} tensors, {n_o} ops, n_in {n_in}, "
                                  f"n_out {n_out}, arena {arena} bytes, {total} bytes long")
    want_off = _align8(HEADER_LEN + TENSOR_REC_LEN * n_t + OP_REC_LEN * n_o)
    if data_off != want_off:
        raise GraphError("EMSGSIZE", f"data_off {data_off} (want {want_off})")
    if reserved != 0:
        raise GraphError("EINVAL", "reserved header field is not 0")
    nul = raw_name.find(b"\0")
    if nul < 0:
        raise GraphError("EINVAL", "model name is not NUL-terminated")
    name = raw_name[:nul]
    if not name or raw_name[nul:].strip(b"\0") or not all(c == 0x5F or chr(c).isalnum() and c < 0x80
                                                          for c in name):
        # an empty name too, here as in ml_lib_blob_check_name(), before any record is read
        raise GraphError("EINVAL", f"model name {raw_name!r} is not a non-empty NUL-padded C identifier")

    tensors = []
    for i in range(n_t):
        pos = HEADER_LEN + TENSOR_REC_LEN * i
        off, ln, zp, dt = _TENSOR.unpack_from(data, pos)
        if data[pos + 13:pos + 16] != b"\0\0\0":
            raise GraphError("EINVAL", f"tensor {i}: reserved bytes are not 0")
        if dt not in _DTYPE_BY_CODE:
            raise GraphError("EINVAL", f"tensor {i}: unknown dtype {dt}")
        tensors.append(Tensor(f"t{i}", _DTYPE_BY_CODE[dt], (ln,), zero_point=zp, offset=off))

    section = data[data_off:]
    next_free = 0   # arrays in op and slot order, none overlapping (ml_lib_blob_resolve())
    g = Graph(name.decode("ascii"), tensors, [], [IOSpec("x", 0, (n_in,))],
              [IOSpec("y", 0, (n_out,))], arena_bytes=arena)
    for i in range(n_o):
        code, in0, in1, out, *rest = _OP.unpack_from(data, HEADER_LEN + TENSOR_REC_LEN * n_t + OP_REC_LEN * i)
        params, offs = rest[:N_PARAMS], rest[N_PARAMS:]
        spec = OP_BY_CODE.get(code)
        if spec is None:
            raise GraphError("EOPNOTSUPP", f"op {i}: unknown op code {code}")
        if any(params[len(spec.params):]) or any(d != NO_ARRAY for d in offs[len(spec.arrays):]):
            raise GraphError("EINVAL", f"op {i} ({spec.name}): unused parameter or array slot is set")
        # Tensor indices are not checked here: like the C loader, which leaves
        # them to ml_lib_graph_validate(), validate() checks them op by op, so
        # a blob with two defects gets the same errno from both. The op keeps
        # what it needs for that: its used slots as stored (NO_TENSOR included,
        # out of range), plus any unused slot that is set (a wrong count).
        ins = [in0, in1][:spec.n_inputs] + [t for t in [in0, in1][spec.n_inputs:] if t != NO_TENSOR]
        op = Op(spec.name, ins, None if out == NO_TENSOR else out,
                dict(zip(spec.params, params)), source=f"blob op {i}")
        for a, d in zip(spec.arrays, offs):
            # the table length depends on the input dtype (ml_lib_blob_resolve())
            if spec.name == "lut" and (in0 >= n_t or tensors[in0].dtype not in ("s8", "s16")):
                raise GraphError("EINVAL", f"op {i} (lut): input {in0} is not an s8 or s16 tensor")
            length = op.array_length(a, g)
            item = np.dtype(a.dtype).itemsize
            if length < 0 or length > MAX_ARENA * 64:
                raise GraphError("EINVAL", f"op {i} ({spec.name}): array '{a.name}' length {length}")
            if d == NO_ARRAY or d % item or d + length * item > data_len:
                raise GraphError("ERANGE", f"op {i} ({spec.name}): array '{a.name}' at {d:#x} "
                                           f"({length} x {item} bytes) is outside the data section or misaligned")
            if d < next_free:
                raise GraphError("ERANGE", f"op {i} ({spec.name}): array '{a.name}' at {d:#x} starts "
                                           f"before the end of the previous array ({next_free:#x})")
            next_free = d + length * item
            arr = np.frombuffer(section, dtype=np.dtype(a.dtype).newbyteorder("<"),
                                count=length, offset=d).astype(a.dtype)
            if spec.name == "fc" and a.name == "w" and op.params["n_out"] > 0 and op.params["n_in"] > 0:
                # (bad dimensions are the validator's to report)
                arr = fc_weights_unstored(arr, op.params["n_out"], op.params["n_in"])
            op.arrays[a.name] = arr
        g.ops.append(op)
    return g
