"""lib/ml on a big-endian CPU gives the reference's integers (make check-core-be).

Blobs are little-endian on every machine; the loader converts each data
array to the CPU's order (ml_lib_blob_array_to_cpu() in lib/ml/blob.c),
and the generated C tables are compiled for the target, so they need no
conversion. Both are tested here on s390x, a 64-bit big-endian CPU: the
engine, tests/big_endian/engine_runner.c and some generated tables are built
with clang --target=s390x-linux-gnu (static, s390x binutils, libgcc and
libc) and run under qemu-s390x (user mode).

- random models (toolchain/ml_lib/randgraph.py) through the blob path;
- generated-C tables of some of them, compiled for s390x;
- randomly corrupted blobs: the big-endian loader's errno equals the
  Python validator's.

The s390x toolchain and qemu come from `make setup` (Debian packages
binutils-s390x-linux-gnu, libgcc-12-dev-s390x-cross, libc6-dev-s390x-cross,
qemu-user; not gcc-s390x-linux-gnu, which Debian will not install next to
gcc-multilib). When they are missing the tests fail naming them; they
never skip.
"""
from __future__ import annotations

import collections
import errno
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from ml_lib import cengine
from ml_lib.blob import read_blob, write_blob
from ml_lib.codegen import generate
from ml_lib.ir import OP_SPECS, Graph, IOSpec, Op, Tensor
from ml_lib.randgraph import REQUIRED_TAGS, corner_tags, mutated_blobs, random_case, random_inputs
from ml_lib.reference import run
from ml_lib.validate import GraphError, validate

TOP = Path(__file__).resolve().parents[1]
CC = ["clang", "--target=s390x-linux-gnu"]
PACKAGES = "binutils-s390x-linux-gnu libgcc-12-dev-s390x-cross libc6-dev-s390x-cross qemu-user"
QEMU = "qemu-s390x"
N_BLOB_MODELS = 2000
GENERATED_SEEDS = range(7100, 7120)
ROWS = 8
CFLAGS = ["-std=gnu11", "-O2", "-static", "-Wall", "-Wextra", "-Werror", "-Wvla", "-Wshadow",
          "-fno-strict-aliasing"]


def _tools():
    missing = [t for t in ("clang", "s390x-linux-gnu-ld", QEMU) if shutil.which(t) is None]
    missing += [p for p in ("/usr/s390x-linux-gnu/lib/libc.a",) if not Path(p).exists()]
    if missing:
        pytest.fail(f"{', '.join(missing)} not found: run `make setup` as root (Debian packages "
                    f"{PACKAGES})")


@pytest.fixture(scope="module")
def generated_cases():
    return [(seed, *random_case(seed, rows=ROWS)) for seed in GENERATED_SEEDS]


@pytest.fixture(scope="module")
def runner(tmp_path_factory, generated_cases):
    """The s390x engine_runner with the generated tables of ``generated_cases``."""
    _tools()
    work = tmp_path_factory.mktemp("be")
    files = {}
    for _, g, _ in generated_cases:
        files.update(generate(g))
    tables = cengine.write_generated(files, work)
    names = [g.name for _, g, _ in generated_cases]
    (work / "runner_graphs.c").write_text(
        "#include <linux/ml_lib.h>\n"
        + "".join(f"extern const struct ml_lib_graph {n}_graph;\n" for n in names)
        + "const struct ml_lib_graph *const runner_graphs[] = {\n"
        + "".join(f"\t&{n}_graph,\n" for n in names) + "};\n"
        + f"const u32 runner_n_graphs = {len(names)};\n")
    exe = work / "engine_runner"
    cmd = [*CC, *CFLAGS, f"-I{TOP / 'include'}", f"-I{TOP / 'lib' / 'ml'}", f"-I{work}",
           "-o", str(exe), str(TOP / "tests" / "big_endian" / "engine_runner.c"),
           str(work / "runner_graphs.c"), *map(str, tables), *cengine.core_sources()]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, f"{' '.join(cmd)}\n{r.stderr[-4000:]}"
    return exe


def _rows(raw: np.ndarray) -> bytes:
    raw = np.ascontiguousarray(raw, dtype="<i8")
    return struct.pack("<II", raw.shape[0], raw.shape[1]) + raw.tobytes()


def blob_request(blob: bytes, raw: np.ndarray) -> bytes:
    return b"B" + struct.pack("<I", len(blob)) + blob + _rows(raw)


def graph_request(index: int, raw: np.ndarray) -> bytes:
    return b"G" + struct.pack("<I", index) + _rows(raw)


def run_be(exe: Path, requests: list[tuple[bytes, int, int]]) -> list[int | np.ndarray]:
    """Send (request, rows, n_out) triples to one runner process on s390x.

    Returns per request the positive errno or the int32 outputs [rows][n_out].
    """
    r = subprocess.run([QEMU, str(exe)], input=b"".join(q for q, _, _ in requests),
                       capture_output=True, timeout=1200)
    assert r.returncode == 0, r.stderr.decode(errors="replace")[-2000:]
    out = r.stdout
    assert out[:4] == bytes([1, 2, 3, 4]), f"runner is not big-endian: {out[:4].hex()}"
    pos, replies = 4, []
    for _, rows, n_out in requests:
        (e,) = struct.unpack_from("<i", out, pos)
        pos += 4
        if e:
            replies.append(e)
            continue
        n = rows * n_out
        replies.append(np.frombuffer(out, "<i4", n, pos).astype(np.int32).reshape(rows, n_out))
        pos += 4 * n
    assert pos == len(out), f"{len(out) - pos} bytes of runner output left over"
    return replies


def _same(seed, g, ref, got, what):
    assert not isinstance(got, int), f"seed {seed}: {what} failed with {errno.errorcode.get(got, got)}"
    if not np.array_equal(ref, got):
        r, c = (int(v[0]) for v in np.nonzero(ref != got))
        pytest.fail(f"seed {seed} ({g.name}): {what} on s390x differs from the reference; first at "
                    f"row {r} output {c}: reference {ref[r, c]}, s390x {got[r, c]}. "
                    f"Reproduce: ml_lib.randgraph.random_case({seed}, rows={ROWS})")


def _hand_graph() -> Graph:
    """INPUT(2) -> FC(2 -> 2, s16) -> OUTPUT (copy), every array wider than a byte."""
    t = [Tensor("x", "s8", (2,)), Tensor("y", "s16", (2,))]
    ops = [Op("input", [], 0, {"in_off": 0, "n": 2},
              {"off": np.array([1000, -3000], np.int64), "pre": np.array([0, 1], np.uint8),
               "mult": np.full(2, 1 << 30, np.int32), "shift": np.full(2, 30, np.uint8)}),
           Op("fc", [0], 1, {"n_in": 2, "n_out": 2, "lo": -32768, "hi": 32767},
              {"w": np.array([[1, 2], [-3, 1]], np.int8), "bias": np.array([30, -70000], np.int32),
               "mult": np.full(2, 1 << 30, np.int32), "shift": np.array([31, 38], np.uint8)}),
           Op("output", [1], None, {"out_off": 0, "n": 2, "mode": 1, "mult": 0, "shift": 0})]
    return Graph("hand", t, ops, [IOSpec("x", 0, (2,))], [IOSpec("y", 0, (2,))])


def test_hand_computed_model(runner):
    """Worked by hand from docs/arithmetic.md, so a runner that echoed the reference, or a
    loader that left the little-endian arrays unconverted, fails here.

    raw (1050, -2900): d = (50, floor(100 / 2) = 50); rq(d, 2^30, 30) = d, so x = (50, 50).
    acc0 = 30 + 50 + 2 * 50 = 180;  rq(180, 2^30, 31) = floor(181 / 2) = 90.
    acc1 = -70000 - 150 + 50 = -70100;  rq(-70100, 2^30, 38) = floor(-70100 / 256 + 1/2) = -274.
    Unconverted on s390x, bias 30 would read as 30 * 2^24.
    """
    g = _hand_graph()
    raw = np.array([[1050, -2900]], np.int64)
    assert run(g, raw).tolist() == [[90, -274]]
    (got,) = run_be(runner, [(blob_request(write_blob(g), raw), 1, 2)])
    assert isinstance(got, np.ndarray) and got.tolist() == [[90, -274]], got


def test_arrays_sharing_bytes_are_refused(runner):
    """INPUT's s32 mult pointed at its s64 off: read little-endian, mult[0..1] are off[0]'s
    two halves, but a big-endian loader that converted both in place would end with one
    order or the other. Both loaders refuse arrays that share bytes (-ERANGE) instead."""
    b = bytearray(write_blob(_hand_graph()))
    n_t = struct.unpack_from("<I", b, 16)[0]
    rec = 80 + 16 * n_t                                   # op 0, INPUT
    struct.pack_into("<I", b, rec + 48 + 8, struct.unpack_from("<I", b, rec + 48)[0])
    with pytest.raises(GraphError) as e:
        validate(read_blob(bytes(b)))
    assert e.value.errno == errno.ERANGE
    (got,) = run_be(runner, [(blob_request(bytes(b), np.zeros((1, 2), np.int64)), 1, 2)])
    assert got == errno.ERANGE, got


def test_random_models_blob_path(runner):
    cases = [(seed, *random_case(seed, rows=ROWS)) for seed in range(N_BLOB_MODELS)]
    replies = run_be(runner, [(blob_request(write_blob(g), raw), ROWS, g.n_out)
                              for _, g, raw in cases])
    tags = collections.Counter()
    for (seed, g, raw), got in zip(cases, replies):
        _same(seed, g, run(g, raw), got, "blob")
        tags.update(corner_tags(g))
    assert len(replies) == N_BLOB_MODELS
    for tag in list(OP_SPECS) + list(REQUIRED_TAGS):
        assert tags[tag] >= 10, (tag, tags)


def test_generated_tables(runner, generated_cases):
    replies = run_be(runner, [(graph_request(i, raw), ROWS, g.n_out)
                              for i, (_, g, raw) in enumerate(generated_cases)])
    for (seed, g, raw), got in zip(generated_cases, replies):
        _same(seed, g, run(g, raw), got, "generated C")
    assert len(replies) == len(GENERATED_SEEDS)


def test_mutated_blobs_errno(runner):
    """One-field changes to valid blobs: the s390x loader's errno is the Python validator's,
    and what both accept runs identically."""
    rng = np.random.default_rng(2027)
    cases = []
    for seed, g, b, g2 in mutated_blobs(rng):
        if isinstance(g2, GraphError):
            py, g2, raw = g2.errno, g, random_inputs(g, rng, 1)
        else:
            py, raw = 0, random_inputs(g2, rng, 4)
        cases.append((seed, b, py, g2, raw))
    replies = run_be(runner, [(blob_request(b, raw), raw.shape[0], g2.n_out)
                              for _, b, _, g2, raw in cases])
    verdicts = collections.Counter()
    for (seed, b, py, g2, raw), got in zip(cases, replies):
        c = got if isinstance(got, int) else 0
        assert c == py, (f"seed {seed}: Python {errno.errorcode.get(py, py)}, "
                         f"s390x C {errno.errorcode.get(c, c)}")
        if c == 0:
            assert np.array_equal(run(g2, raw), got), f"seed {seed}"
        verdicts[errno.errorcode.get(c, "accepted")] += 1
    for v in ("accepted", "EINVAL", "EDOM", "ERANGE"):
        assert verdicts[v] >= 50, verdicts
