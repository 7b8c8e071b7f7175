"""The user-space builds of lib/ml (mk/core.mk) and what they prove.

- build/libml_lib.so exports exactly the public API;
- the kernel-like compile (-ffreestanding -nostdinc -mgeneral-regs-only)
  of every engine file succeeds, and the same flags reject a double;
- no engine object has writable data (nothing shared between CPUs);
- the stack checker measures ml_lib_run within 512 bytes and does fail on
  recursion and on an over-limit chain;
- random models from ml_lib.randgraph run through the ASan + UBSan build
  without a report, bit-exact with the reference; corrupted copies of them
  are parsed there, and those that still parse run on extreme inputs;
- ml_lib_run re-checks its cheap arguments.
"""
from __future__ import annotations

import ctypes
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ml_lib import randgraph, reference
from ml_lib.blob import write_blob

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build"
API = {"ml_lib_blob_parse", "ml_lib_run", "ml_lib_graph_free", "ml_lib_graph_validate",
       "ml_lib_graph_write_blob"}
# soak runs may raise it; fewer than 300 would weaken the gate
SAN_MODELS = max(300, int(os.environ.get("ML_LIB_SAN_MODELS", "300")))


def make(*targets, **kw):
    return subprocess.run(["make", "-s", "-C", str(ROOT), *targets], capture_output=True,
                          text=True, **kw)


@pytest.fixture(scope="module")
def built():
    r = make("core-lib", "core-san", "core-kflags")
    assert r.returncode == 0, r.stdout + r.stderr


def test_shared_lib_exports_exactly_the_api(built):
    out = subprocess.run(["nm", "-D", "--defined-only", str(BUILD / "libml_lib.so")],
                         capture_output=True, text=True, check=True).stdout
    exported = {line.split()[-1] for line in out.splitlines() if " T " in line}
    assert exported == API


def test_print_core_srcs_lists_the_engine():
    r = make("print-core-srcs")
    srcs = r.stdout.split()
    assert r.returncode == 0 and srcs
    names = {Path(s).relative_to(ROOT / "lib" / "ml").as_posix() for s in srcs}
    assert {"engine.c", "validate.c", "blob.c", "ops/fc.c", "ops/softmax.c"} <= names
    assert all(Path(s).is_file() for s in srcs)


PROBE_INT = """
#include <linux/ml_lib.h>
int probe(int a);
int probe(int a) { return a / 3; }
"""
PROBE_DOUBLE = """
#include <linux/ml_lib.h>
int probe(int a);
int probe(int a) { double d = a; return (int)(d * 0.5); }
"""


def test_kernel_flags_reject_floating_point(tmp_path):
    ok, bad = tmp_path / "int.c", tmp_path / "double.c"
    ok.write_text(PROBE_INT)
    bad.write_text(PROBE_DOUBLE)
    # control: the same flags and headers compile integer code
    r = make("core-kflags-probe", f"PROBE={ok}")
    assert r.returncode == 0, r.stderr
    r = make("core-kflags-probe", f"PROBE={bad}")
    assert r.returncode != 0, "a double compiled under the kernel-like flags"
    assert "SSE" in r.stderr or "general-regs-only" in r.stderr, r.stderr


def test_engine_objects_have_no_writable_data(built):
    objs = sorted((BUILD / "core" / "kflags").rglob("*.o"))
    assert len(objs) >= 10
    out = subprocess.run(["nm", *map(str, objs)], capture_output=True, text=True,
                         check=True).stdout
    writable = [line for line in out.splitlines() if re.match(r"^\S+ [BbDdCGgSs] ", line)]
    assert not writable, writable


def test_stack_check_passes_and_measures(built):
    r = make("stack-check")
    assert r.returncode == 0, r.stdout + r.stderr
    m = re.search(r"ml_lib_run: worst chain (\d+) bytes", r.stdout)
    assert m and 0 < int(m.group(1)) <= 512, r.stdout


def _ci(tmp_path, frames, edges):
    lines = ['graph: { title: "t.c"']
    lines += [f'node: {{ title: "{f}" label: "{f}\\nt.c:1:1\\n{n} bytes (static)" }}'
              for f, n in frames.items()]
    lines += [f'edge: {{ sourcename: "{a}" targetname: "{b}" label: "t.c:2:2" }}' for a, b in edges]
    (tmp_path / "t.ci").write_text("\n".join(lines + ["}"]))


def _stack_check(tmp_path):
    return subprocess.run([sys.executable, str(ROOT / "bench" / "stack_check.py"), str(tmp_path),
                           "--root", "ml_lib_run", "--require", "ml_lib_run", "--limit", "512"],
                          capture_output=True, text=True)


def test_stack_checker_can_fail(tmp_path):
    _ci(tmp_path, {"ml_lib_run": 64, "a": 300, "b": 200}, [("ml_lib_run", "a"), ("a", "b")])
    r = _stack_check(tmp_path)
    assert r.returncode != 0 and "564 bytes" in r.stdout
    _ci(tmp_path, {"ml_lib_run": 64, "a": 16}, [("ml_lib_run", "a"), ("a", "ml_lib_run")])
    r = _stack_check(tmp_path)
    assert r.returncode != 0 and "recursion" in r.stderr
    _ci(tmp_path, {"ml_lib_run": 64, "a": 300, "b": 100}, [("ml_lib_run", "a"), ("ml_lib_run", "b")])
    r = _stack_check(tmp_path)
    assert r.returncode == 0 and "364 bytes" in r.stdout
    # an external call of unknown stack use (a printk) on the required chain
    _ci(tmp_path, {"ml_lib_run": 64, "a": 16}, [("ml_lib_run", "a"), ("a", "_printk")])
    r = _stack_check(tmp_path)
    assert r.returncode != 0 and "_printk" in r.stderr
    _ci(tmp_path, {"ml_lib_run": 64, "a": 16}, [("ml_lib_run", "a"), ("a", "memcpy")])
    r = _stack_check(tmp_path)
    assert r.returncode == 0 and "80 bytes" in r.stdout
    _ci(tmp_path, {"ml_lib_run": 64}, [("ml_lib_run", "__indirect_call")])
    r = _stack_check(tmp_path)
    assert r.returncode != 0 and "indirect call" in r.stderr
    _ci(tmp_path, {"other": 64}, [])
    r = _stack_check(tmp_path)
    assert r.returncode != 0 and "ml_lib_run: not found" in r.stderr
    lines = ['graph: { title: "t.c"',
             'node: { title: "ml_lib_run" label: "ml_lib_run\\nt.c:1:1\\n64 bytes (dynamic)" }', "}"]
    (tmp_path / "t.ci").write_text("\n".join(lines))
    r = _stack_check(tmp_path)
    assert r.returncode != 0 and "VLA or alloca" in r.stderr


SAN_DRIVER = r"""
import ctypes, sys
import numpy as np
from ml_lib import cengine, randgraph, reference
from ml_lib.blob import write_blob

lib = ctypes.CDLL(sys.argv[1])
lib.ml_lib_blob_parse.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_void_p)]
lib.ml_lib_run.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint32,
                           ctypes.c_void_p, ctypes.c_uint32]
lib.ml_lib_graph_free.argtypes = [ctypes.c_void_p]
libc = ctypes.CDLL(None)  # malloc/free go through ASan's interceptors (Python's allocator does not)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
n_models, rows, rejected, ran = int(sys.argv[2]), 0, 0, 0
ARENA_SLACK = int(sys.argv[3]) if len(sys.argv) > 3 else 0
rng = np.random.default_rng(7)
for seed in range(n_models):
    g, raw = randgraph.random_case(seed, rows=8)
    blob = write_blob(g)
    gp = ctypes.c_void_p()
    rc = lib.ml_lib_blob_parse(blob, len(blob), ctypes.byref(gp))
    assert rc == 0, (seed, rc)
    ref = reference.run(g, raw)
    # exactly arena_bytes from malloc, so ASan sees any access past the arena
    arena = libc.malloc(g.arena_bytes + ARENA_SLACK)
    assert arena and arena % 8 == 0
    for i in range(len(raw)):
        x = np.ascontiguousarray(raw[i])
        out = np.zeros(g.n_out, np.int32)
        assert lib.ml_lib_run(gp, arena, x.ctypes.data, g.n_in, out.ctypes.data, g.n_out) == 0
        assert (out == ref[i]).all(), (seed, i)
        rows += 1
    libc.free(arena)
    lib.ml_lib_graph_free(gp)
    # and a few corrupted copies: any errno or a valid parse, never a report
    for _ in range(4):
        b = bytearray(blob)
        for j in rng.integers(0, len(b), 3):
            b[j] = int(rng.integers(0, 256))
        gp = ctypes.c_void_p()
        if lib.ml_lib_blob_parse(bytes(b), len(b), ctypes.byref(gp)) == 0:
            # what still parses is valid: it runs, on the extremes of raw input
            h = ctypes.cast(gp, ctypes.POINTER(cengine.Graph)).contents
            arena = libc.malloc(h.arena_bytes)
            for fill in (0, -2**63, 2**63 - 1):
                x = np.full(h.n_in, fill, np.int64)
                out = np.zeros(h.n_out, np.int32)
                assert lib.ml_lib_run(gp, arena, x.ctypes.data, h.n_in, out.ctypes.data,
                                      h.n_out) == 0
            libc.free(arena)
            lib.ml_lib_graph_free(gp)
            ran += 1
        else:
            rejected += 1
print(f"san ok: {n_models} models, {rows} rows bit-exact, {rejected} corrupted blobs rejected, "
      f"{ran} ran")
"""


def _libasan():
    return subprocess.run(["gcc", "-print-file-name=libasan.so"], capture_output=True,
                          text=True, check=True).stdout.strip()


def test_sanitized_build_runs_random_models(built, tmp_path):
    driver = tmp_path / "san_driver.py"
    driver.write_text(SAN_DRIVER)
    env = dict(os.environ, LD_PRELOAD=_libasan(),
               # the interpreter's own allocations are not ours to report; the
               # fuzzer (make fuzz) runs the loader with leak detection on
               ASAN_OPTIONS="detect_leaks=0:abort_on_error=1",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    r = subprocess.run([sys.executable, str(driver), str(BUILD / "libml_lib_san.so"),
                        str(SAN_MODELS)], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    assert "ERROR: AddressSanitizer" not in r.stderr and "runtime error" not in r.stderr
    m = re.search(r"san ok: (\d+) models, (\d+) rows bit-exact, (\d+) corrupted blobs rejected, "
                  r"(\d+) ran", r.stdout)
    assert m and int(m[1]) == SAN_MODELS, r.stdout
    assert int(m[3]) >= 100 and int(m[4]) >= 100, r.stdout  # both kinds of corrupted blob


def test_sanitized_build_catches_a_short_arena(built, tmp_path):
    """The test above can fail: one byte less arena than the graph needs is caught."""
    driver = tmp_path / "san_driver.py"
    driver.write_text(SAN_DRIVER)
    env = dict(os.environ, LD_PRELOAD=_libasan(), ASAN_OPTIONS="detect_leaks=0")
    r = subprocess.run([sys.executable, str(driver), str(BUILD / "libml_lib_san.so"), "20", "-1"],
                       capture_output=True, text=True, env=env)
    assert r.returncode != 0 and "heap-buffer-overflow" in r.stderr, r.stderr[-2000:]


@pytest.fixture(scope="module")
def clib(built):
    so = ctypes.CDLL(str(BUILD / "libml_lib.so"))
    so.ml_lib_blob_parse.argtypes = [ctypes.c_char_p, ctypes.c_size_t,
                                     ctypes.POINTER(ctypes.c_void_p)]
    so.ml_lib_run.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint32,
                              ctypes.c_void_p, ctypes.c_uint32]
    so.ml_lib_graph_free.argtypes = [ctypes.c_void_p]
    so.ml_lib_graph_validate.argtypes = [ctypes.c_void_p]
    return so


def test_run_rechecks_cheap_arguments(clib):
    g, raw = randgraph.random_case(3, rows=1)
    blob = write_blob(g)
    gp = ctypes.c_void_p()
    assert clib.ml_lib_blob_parse(blob, len(blob), ctypes.byref(gp)) == 0
    assert clib.ml_lib_graph_validate(gp) == 0
    assert clib.ml_lib_graph_validate(None) == -22
    words = (ctypes.c_uint64 * (g.arena_bytes // 8 + 1))()
    arena = ctypes.addressof(words)
    x = np.ascontiguousarray(raw[0])
    out = np.zeros(g.n_out, np.int32)
    run = clib.ml_lib_run
    try:
        assert run(gp, arena, x.ctypes.data, g.n_in + 1, out.ctypes.data, g.n_out) == -22
        assert run(gp, arena, x.ctypes.data, g.n_in, out.ctypes.data, g.n_out - 1) == -22
        assert run(None, arena, x.ctypes.data, g.n_in, out.ctypes.data, g.n_out) == -22
        assert run(gp, None, x.ctypes.data, g.n_in, out.ctypes.data, g.n_out) == -22
        assert run(gp, arena + 4, x.ctypes.data, g.n_in, out.ctypes.data, g.n_out) == -22
        assert run(gp, arena, None, g.n_in, out.ctypes.data, g.n_out) == -22
        assert run(gp, arena, x.ctypes.data, g.n_in, None, g.n_out) == -22
        assert run(gp, arena, x.ctypes.data, g.n_in, out.ctypes.data, g.n_out) == 0
        assert (out == reference.run(g, raw)[0]).all()
    finally:
        clib.ml_lib_graph_free(gp)


def _extreme_fc_graph(n_in: int, n_out: int, x_dtype: str, sign: int):
    """INPUT (saturating to the dtype's minimum) -> FC whose every accumulator
    lands exactly on sign * (2^31 - 1), the bound the validator allows."""
    from ml_lib.ir import Graph, IOSpec, Op, Tensor, plan_arena

    xmin = -128 if x_dtype == "s8" else -32768
    w = np.full((n_out, n_in), -127 * sign, np.int8)
    w[:, ::3] = np.int8(-126 * sign)  # not all rows alike
    acc_w = (w.astype(np.int64) * xmin).sum(axis=1)  # sign * sum|w| * 2^(bits-1)
    bias = sign * (2**31 - 1) - acc_w
    tensors = [Tensor("x", x_dtype, (n_in,)), Tensor("y", "s16", (n_out,))]
    ops = [
        Op("input", [], 0, {"in_off": 0, "n": n_in},
           {"off": np.zeros(n_in, np.int64), "pre": np.zeros(n_in, np.uint8),
            "mult": np.full(n_in, 2**31 - 1, np.int32), "shift": np.full(n_in, 1, np.uint8)}),
        Op("fc", [0], 1, {"n_in": n_in, "n_out": n_out, "lo": -32768, "hi": 32767},
           {"w": w.reshape(-1), "bias": bias.astype(np.int32),
            "mult": np.full(n_out, 1, np.int32), "shift": np.full(n_out, 17, np.uint8)}),
        Op("output", [1], None, {"out_off": 0, "n": n_out, "mode": 1, "mult": 0, "shift": 0}),
    ]
    g = Graph("extreme", tensors, ops, [IOSpec("x", 0, (n_in,))], [IOSpec("y", 0, (n_out,))])
    plan_arena(g)
    return g


@pytest.mark.parametrize("x_dtype", ["s8", "s16"])
@pytest.mark.parametrize("sign", [1, -1])
def test_fc_accumulators_at_the_bound_are_exact(clib, x_dtype, sign):
    """Every row-block shape of ops/fc.c (12, 4, 2, 1 rows; two rows share a
    u64) with accumulators exactly at +-(2^31 - 1): the C engine equals the
    reference, and the values are the hand-derived ones."""
    for n_in, n_out in ((1, 1), (7, 13), (5, 27), (300, 19)):
        g = _extreme_fc_graph(n_in, n_out, x_dtype, sign)
        raw = np.full((1, n_in), -(2**62), np.int64)  # saturates x at its minimum
        blob = write_blob(g)
        gp = ctypes.c_void_p()
        assert clib.ml_lib_blob_parse(blob, len(blob), ctypes.byref(gp)) == 0
        try:
            words = (ctypes.c_uint64 * (g.arena_bytes // 8 + 1))()
            out = np.zeros(n_out, np.int32)
            x = np.ascontiguousarray(raw[0])
            assert clib.ml_lib_run(gp, ctypes.addressof(words), x.ctypes.data, n_in,
                                   out.ctypes.data, n_out) == 0
        finally:
            clib.ml_lib_graph_free(gp)
        # rq(+-(2^31 - 1), 1, 17) = floor((+-(2^31 - 1) + 2^16) / 2^17) = 16384 or -16384
        want = 16384 if sign > 0 else -16384
        assert (out == want).all(), (n_in, n_out, out)
        assert (reference.run(g, raw)[0] == out).all()
