"""ctypes bindings to the user-space build of lib/ml (the C engine).

Two ways to run a model through the C engine:

- :func:`run_blob`: blob bytes -> ``ml_lib_blob_parse()`` -> ``ml_lib_run()``
  in ``build/libml_lib.so`` (``make core-lib``, mk/core.mk);
- :func:`compile_generated` + :func:`run_generated`: the C files the code
  generator wrote, compiled with gcc together with the engine sources into
  a shared object, then ``<name>_graph`` -> ``ml_lib_graph_validate()`` ->
  ``ml_lib_run()``.

Both return exactly the int32 outputs the engine wrote, row by row. The
arena is refilled with a fresh garbage pattern before every row, so a read
of scratch bytes that no op wrote shows up as a mismatch.
"""
from __future__ import annotations

import contextlib
import ctypes
import errno as _errno
import os
import shlex
import subprocess
from pathlib import Path

import numpy as np

TOP = Path(__file__).resolve().parents[2]
DEFAULT_LIB = TOP / "build" / "libml_lib.so"


class CEngineError(RuntimeError):
    """The C engine returned an error (``errno`` is positive, the C value negated)."""

    def __init__(self, what: str, rc: int):
        self.errno = -rc
        self.errno_name = _errno.errorcode.get(-rc, str(rc))
        super().__init__(f"{what} failed: {self.errno_name} ({rc})")


class Graph(ctypes.Structure):
    """``struct ml_lib_graph`` (include/linux/ml_lib.h); only the header fields are read."""

    _fields_ = [("name", ctypes.c_char_p), ("n_tensors", ctypes.c_uint32),
                ("n_ops", ctypes.c_uint32), ("n_in", ctypes.c_uint32),
                ("n_out", ctypes.c_uint32), ("arena_bytes", ctypes.c_uint32),
                ("tensors", ctypes.c_void_p), ("ops", ctypes.c_void_p)]


_GraphP = ctypes.POINTER(Graph)
_S64P = ctypes.POINTER(ctypes.c_int64)
_S32P = ctypes.POINTER(ctypes.c_int32)
_EMIT = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)


def _declare(lib: ctypes.CDLL) -> ctypes.CDLL:
    lib.ml_lib_blob_parse.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(_GraphP)]
    lib.ml_lib_blob_parse.restype = ctypes.c_int
    lib.ml_lib_run.argtypes = [_GraphP, ctypes.c_void_p, _S64P, ctypes.c_uint32, _S32P,
                               ctypes.c_uint32]
    lib.ml_lib_run.restype = ctypes.c_int
    lib.ml_lib_graph_free.argtypes = [_GraphP]
    lib.ml_lib_graph_free.restype = None
    lib.ml_lib_graph_validate.argtypes = [_GraphP]
    lib.ml_lib_graph_validate.restype = ctypes.c_int
    lib.ml_lib_graph_write_blob.argtypes = [_GraphP, _EMIT, ctypes.c_void_p]
    lib.ml_lib_graph_write_blob.restype = ctypes.c_size_t
    return lib


_libs: dict[str, ctypes.CDLL] = {}


def load(path=None) -> ctypes.CDLL:
    """The engine library at ``path`` (default build/libml_lib.so), loaded once.

    Raises FileNotFoundError naming the make target when it was not built:
    a missing engine is a failure, never a skipped comparison.
    """
    if isinstance(path, ctypes.CDLL):
        return path
    p = str(Path(path or DEFAULT_LIB).resolve())
    if p not in _libs:
        if not os.path.exists(p):
            raise FileNotFoundError(f"{p} does not exist: build it with `make core-lib`")
        _libs[p] = _declare(ctypes.CDLL(p))
    return _libs[p]


def build_lib(target: str = "core-lib") -> Path:
    """Run ``make <target>`` at the top of the tree (mk/core.mk builds the engine)."""
    subprocess.run(["make", "-s", "-C", str(TOP), target], check=True)
    return DEFAULT_LIB


def _as_rows(raw, n_in: int) -> tuple[np.ndarray, bool]:
    a = np.asarray(raw)
    if a.dtype.kind not in "iu":
        raise TypeError(f"raw features must be integers, got {a.dtype}")
    single = a.ndim == 1
    a = np.ascontiguousarray(a.reshape(1, -1) if single else a, dtype=np.int64)
    if a.shape[1] != n_in:
        raise ValueError(f"raw features have {a.shape[1]} columns, the model takes {n_in}")
    return a, single


def _run_graph(lib, gp, raw, seed: int = 0) -> np.ndarray:
    g = gp.contents
    rows, single = _as_rows(raw, g.n_in)
    out = np.zeros((rows.shape[0], g.n_out), dtype=np.int32)
    words = (g.arena_bytes + 7) // 8
    arena = (ctypes.c_uint64 * words)()  # 8-byte aligned, as ml_lib_run() requires
    garbage = np.random.default_rng(seed).integers(0, 2**64, size=(rows.shape[0], words),
                                                   dtype=np.uint64)
    arena_np = np.ctypeslib.as_array(arena)
    for i in range(rows.shape[0]):
        arena_np[:] = garbage[i]
        orow = out[i]
        rc = lib.ml_lib_run(gp, arena, rows[i].ctypes.data_as(_S64P), g.n_in,
                            orow.ctypes.data_as(_S32P), g.n_out)
        if rc:
            raise CEngineError("ml_lib_run", rc)
    return out[0] if single else out


def parse_errno(blob: bytes, lib=None) -> int:
    """0 when ``ml_lib_blob_parse()`` accepts ``blob``, else its errno (positive)."""
    lib = load(lib)
    buf = ctypes.create_string_buffer(bytes(blob), len(blob))
    gp = _GraphP()
    rc = lib.ml_lib_blob_parse(buf, len(blob), ctypes.byref(gp))
    if rc == 0:
        lib.ml_lib_graph_free(gp)
    return -rc


@contextlib.contextmanager
def _parsed(blob: bytes, lib=None):
    """(lib, graph) of ``ml_lib_blob_parse(blob)``, freed on exit; a refused
    blob raises :class:`CEngineError` with the loader's errno."""
    lib = load(lib)
    buf = ctypes.create_string_buffer(bytes(blob), len(blob))
    gp = _GraphP()
    rc = lib.ml_lib_blob_parse(buf, len(blob), ctypes.byref(gp))
    if rc:
        raise CEngineError("ml_lib_blob_parse", rc)
    try:
        yield lib, gp
    finally:
        lib.ml_lib_graph_free(gp)


def run_blob(blob: bytes, raw, lib=None) -> np.ndarray:
    """Parse ``blob`` with the C loader and run every row of ``raw`` (int32 result).

    Raises :class:`CEngineError` with the loader's errno when the blob is rejected.
    """
    with _parsed(blob, lib) as (lib, gp):
        return _run_graph(lib, gp, raw)


def _graph_blob(lib, gp) -> bytes:
    """``ml_lib_graph_write_blob()``: the C side's canonical blob of a graph."""
    parts = []
    emit = _EMIT(lambda _ctx, p, n: parts.append(ctypes.string_at(p, n)))
    n = lib.ml_lib_graph_write_blob(gp, emit, None)
    data = b"".join(parts)
    if len(data) != n:
        raise RuntimeError(f"ml_lib_graph_write_blob returned {n} but emitted {len(data)} bytes")
    return data


def rewrite_blob(blob: bytes, lib=None) -> bytes:
    """``blob`` through ``ml_lib_blob_parse()`` and back out through
    ``ml_lib_graph_write_blob()``."""
    with _parsed(blob, lib) as (lib, gp):
        return _graph_blob(lib, gp)


def core_sources() -> list[str]:
    """The engine's C sources, as mk/core.mk lists them (``make print-core-srcs``)."""
    try:
        r = subprocess.run(["make", "-s", "--no-print-directory", "-C", str(TOP), "print-core-srcs"],
                           check=True, capture_output=True, text=True)
        srcs = shlex.split(r.stdout)
        if srcs:
            return srcs
    except subprocess.CalledProcessError:
        pass
    ml = TOP / "lib" / "ml"
    return [str(p) for p in sorted(ml.glob("*.c")) + sorted((ml / "ops").glob("*.c"))
            if p.name not in ("model.c", "proxy.c", "ml_lib_kunit.c")]


#: warnings the generated tables must compile cleanly under, as the engine does
GEN_CFLAGS = ["-std=gnu11", "-O1", "-fPIC", "-shared", "-fno-strict-aliasing", "-Wall", "-Wextra",
              "-Werror", "-Wvla", "-Wshadow"]


def write_generated(files: dict[str, str], workdir) -> list[Path]:
    """Write generated files into ``workdir``; returns the table sources
    (``<name>.c``), leaving out the kernel-only ``*_mod.c``."""
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    tables = []
    for fname, text in sorted(files.items()):
        (work / fname).write_text(text)
        if fname.endswith(".c") and not fname.endswith("_mod.c"):
            tables.append(work / fname)
    return tables


def compile_generated(files: dict[str, str], workdir, out_name: str = "generated") -> Path:
    """Write the generated files and compile the ``.c`` tables with the engine into a .so.

    ``files`` may hold the output of several :func:`ml_lib.codegen.generate`
    calls (distinct model names), so many models share one gcc run. Kernel-only
    files (``*_mod.c``, ``Kbuild``) are written but not compiled.
    """
    work = Path(workdir)
    tables = [str(p) for p in write_generated(files, work)]
    so = work / f"lib{out_name}.so"
    cmd = ["gcc", *GEN_CFLAGS, f"-I{TOP / 'include'}", f"-I{TOP / 'lib' / 'ml'}", f"-I{work}",
           "-o", str(so), *tables, *core_sources()]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f"compiling generated C failed:\n{' '.join(cmd)}\n{r.stderr[-4000:]}")
    return so


def _generated_graph(so_path, name: str):
    lib = _declare(ctypes.CDLL(str(Path(so_path).resolve())))
    gp = ctypes.cast(ctypes.addressof(Graph.in_dll(lib, f"{name}_graph")), _GraphP)
    rc = lib.ml_lib_graph_validate(gp)
    if rc:
        raise CEngineError(f"ml_lib_graph_validate({name})", rc)
    return lib, gp


def run_generated(so_path, name: str, raw) -> np.ndarray:
    """Run the compiled tables ``<name>_graph`` (validated first) on ``raw``."""
    return _run_graph(*_generated_graph(so_path, name), raw)


def generated_blob(so_path, name: str) -> bytes:
    """The canonical blob ``ml_lib_graph_write_blob()`` writes for the compiled
    tables ``<name>_graph``: the model those tables hold, as a blob."""
    return _graph_blob(*_generated_graph(so_path, name))
