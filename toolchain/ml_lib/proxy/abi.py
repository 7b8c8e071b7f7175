# SPDX-License-Identifier: GPL-2.0
"""The /dev/ml_lib protocol, mirroring include/uapi/linux/ml_lib.h.

Native byte order (the kernel writes its own), naturally aligned, no holes;
tests/test_proxy.py compiles the C header and checks every size, offset and
ioctl number against this file.
"""

from __future__ import annotations

import platform
import struct

import numpy as np

VERSION = 1
NAME_LEN = 32
MAX_IN = 4096
MAX_OUT = 4096

# struct ml_lib_proxy_req / _resp: version, size, id, model_id, n
REQ_HDR = struct.Struct("=IIQII")
RESP_HDR = struct.Struct("=IIQII")
# struct ml_lib_proxy_register: version, n_in, n_out, flags, name[32]
REGISTER = struct.Struct(f"=IIII{NAME_LEN}s")
# struct ml_lib_proxy_dataset_read: version, model_id, buf, buf_len,
# n_records, record_size, dropped
DATASET_READ = struct.Struct("=IIQQIIQ")
# struct ml_lib_proxy_record: seq, n, pad
RECORD_HDR = struct.Struct("=QII")

IOC_MAGIC = 0xBD


def _ioc_layout(machine: str) -> tuple[int, int, int]:
    """(_IOC_SIZEBITS, _IOC_WRITE, _IOC_READ) of the kernel's <asm/ioctl.h>.

    asm-generic everywhere but on the architectures that keep their own:
    alpha, mips, powerpc and sparc have 13 size bits and 3 direction bits,
    parisc swaps READ and WRITE.
    """
    if machine.startswith(("alpha", "mips", "ppc", "powerpc", "sparc")):
        return 13, 4, 2
    if machine.startswith("parisc"):
        return 14, 2, 1
    return 14, 1, 2


_IOC_SIZEBITS, _IOC_WRITE, _IOC_READ = _ioc_layout(platform.machine())


def _ioc(direction: int, nr: int, size: int) -> int:
    return (direction << (16 + _IOC_SIZEBITS)) | (size << 16) | (IOC_MAGIC << 8) | nr


IOC_REGISTER = _ioc(_IOC_WRITE, 1, REGISTER.size)
IOC_DATASET_READ = _ioc(_IOC_READ | _IOC_WRITE, 2, DATASET_READ.size)


def req_size(n_in: int) -> int:
    return REQ_HDR.size + 8 * n_in


def resp_size(n_out: int) -> int:
    return RESP_HDR.size + (4 * n_out + 7) // 8 * 8


def pack_register(name: str, n_in: int, n_out: int) -> bytes:
    raw = name.encode()
    if len(raw) >= NAME_LEN:
        raise ValueError(f"model name {name!r} longer than {NAME_LEN - 1} bytes")
    return REGISTER.pack(VERSION, n_in, n_out, 0, raw)


def pack_request(req_id: int, model_id: int, x: np.ndarray) -> bytes:
    """A request as the kernel writes it (used by tests and the floor bench)."""
    x = np.ascontiguousarray(x, dtype="=i8")
    return REQ_HDR.pack(VERSION, req_size(x.size), req_id, model_id, x.size) + x.tobytes()


def parse_requests(buf: bytes) -> list[tuple[int, int, np.ndarray]]:
    """Split one read() into (id, model_id, raw s64 features) records."""
    out = []
    off = 0
    while off < len(buf):
        if len(buf) - off < REQ_HDR.size:
            raise ValueError(f"truncated request record at byte {off}")
        version, size, req_id, model_id, n_in = REQ_HDR.unpack_from(buf, off)
        if version != VERSION or size != req_size(n_in) or off + size > len(buf):
            raise ValueError(f"malformed request record at byte {off}")
        x = np.frombuffer(buf, dtype="=i8", count=n_in, offset=off + REQ_HDR.size)
        out.append((req_id, model_id, x))
        off += size
    return out


def pack_response(req_id: int, model_id: int, y: np.ndarray) -> bytes:
    y = np.ascontiguousarray(y, dtype="=i4")
    pad = b"\0" * (resp_size(y.size) - RESP_HDR.size - 4 * y.size)
    return RESP_HDR.pack(VERSION, resp_size(y.size), req_id, model_id, y.size) + y.tobytes() + pad


def parse_records(buf: bytes, n_records: int, record_size: int):
    """Dataset records from ML_LIB_IOC_DATASET_READ: [(seq, features)]."""
    out = []
    for k in range(n_records):
        off = k * record_size
        seq, n, _pad = RECORD_HDR.unpack_from(buf, off)
        out.append((seq, np.frombuffer(buf, dtype="=i8", count=n, offset=off + RECORD_HDR.size)))
    return out


def register(fd: int, name: str, n_in: int, n_out: int) -> int:
    """ML_LIB_IOC_REGISTER; returns the model id (raises OSError)."""
    import fcntl

    # a mutable buffer makes fcntl.ioctl return the syscall's value, not the buffer
    return fcntl.ioctl(fd, IOC_REGISTER, bytearray(pack_register(name, n_in, n_out)), True)


def _req_dtype(n_in: int) -> np.dtype:
    return np.dtype([("version", "=u4"), ("size", "=u4"), ("id", "=u8"), ("model_id", "=u4"),
                     ("n", "=u4"), ("x", "=i8", (n_in,))])


def _resp_dtype(n_out: int) -> np.dtype:
    fields = [("version", "=u4"), ("size", "=u4"), ("id", "=u8"), ("model_id", "=u4"),
              ("n", "=u4"), ("y", "=i4", (n_out,))]
    if n_out % 2:
        fields.append(("pad", "=u4"))
    return np.dtype(fields)


def parse_batch(buf: bytes) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """One read() grouped by model: {model_id: (ids [k] u64, raw [k, n_in] s64)}.

    Requests of one size (the usual case) are viewed in place as one numpy
    record array instead of being unpacked one by one.
    """
    if not buf:
        return {}
    if len(buf) < REQ_HDR.size:
        raise ValueError(f"truncated request record of {len(buf)} bytes")
    version, size, req_id, model_id, n_in = REQ_HDR.unpack_from(buf, 0)
    if len(buf) == size == req_size(n_in) and version == VERSION:  # one request: no record array
        x = np.frombuffer(buf, dtype="=i8", count=n_in, offset=REQ_HDR.size)
        return {model_id: (np.array([req_id], dtype=np.uint64), x[None])}
    if size == req_size(n_in) and len(buf) % size == 0:
        rec = np.frombuffer(buf, dtype=_req_dtype(n_in))
        if (rec["version"] == VERSION).all() and (rec["size"] == size).all() \
                and (rec["n"] == n_in).all():
            mids = rec["model_id"]
            if (mids == mids[0]).all():
                return {int(mids[0]): (rec["id"], rec["x"])}
            return {int(m): (rec["id"][mids == m], rec["x"][mids == m]) for m in np.unique(mids)}
    groups: dict[int, list] = {}
    for req_id, model_id, x in parse_requests(buf):
        groups.setdefault(model_id, []).append((req_id, x))
    return {m: (np.array([i for i, _ in v], dtype=np.uint64), np.stack([x for _, x in v]))
            for m, v in groups.items()}


def pack_responses(ids: np.ndarray, model_id: int, y: np.ndarray) -> bytes:
    """Answers for one model's batch, back to back, in one buffer."""
    k, n_out = y.shape
    if k == 1:
        return pack_response(int(ids[0]), model_id, y[0])
    rec = np.zeros(k, dtype=_resp_dtype(n_out))
    rec["version"] = VERSION
    rec["size"] = resp_size(n_out)
    rec["id"] = ids
    rec["model_id"] = model_id
    rec["n"] = n_out
    rec["y"] = y
    return rec.tobytes()
