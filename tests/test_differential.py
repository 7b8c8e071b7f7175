"""Differential tests: the C engine gives the reference's integers, element for element.

- >= 2,000 random models (toolchain/ml_lib/randgraph.py) per run through the
  blob path: write_blob -> ml_lib_blob_parse -> ml_lib_run (build/libml_lib.so);
- 40 of them through the generated-C path too (compiled in 4 gcc batches):
  C tables == blob == reference;
- hand-made corner models (accumulator exactly at 2^31 - 1);
- randomly corrupted blobs: Python validator and C loader give the same errno.

The default run is derandomized (the same 2,000 models each time, as CI
needs); see N_MODELS below for soak runs. The C engine is built by the
c_engine fixture; if it cannot be built the tests fail, they never skip.
"""
import collections
import errno
import os

import numpy as np
from hypothesis import HealthCheck, given, settings

from ml_lib import cengine
from ml_lib.blob import write_blob
from ml_lib.codegen import generate
from ml_lib.ir import OP_SPECS, Graph, IOSpec, Op, Tensor
from ml_lib.randgraph import (REQUIRED_TAGS, cases, corner_tags, mutated_blobs, random_case,
                              random_inputs)
from ml_lib.reference import run
from ml_lib.validate import GraphError

# Soak runs: ML_LIB_DIFF_MODELS=20000 ML_LIB_DIFF_RANDOM=1 pytest tests/test_differential.py
N_MODELS = max(2000, int(os.environ.get("ML_LIB_DIFF_MODELS", "2000")))
DERANDOMIZE = os.environ.get("ML_LIB_DIFF_RANDOM", "0") != "1"
ROWS = 24


def _mismatch(seed, g, ref, got):
    rows, cols = np.nonzero(ref != got)
    r, c = int(rows[0]), int(cols[0])
    return (f"seed {seed} ({g.name}, ops {[o.kind for o in g.ops]}): {len(rows)} outputs differ; "
            f"first at row {r} output {c}: reference {ref[r, c]}, C {got[r, c]}. "
            f"Reproduce: ml_lib.randgraph.random_case({seed})")


def test_blob_engine_equals_reference(c_engine):
    seen = []
    stats = collections.Counter()

    @settings(max_examples=N_MODELS, deadline=None, derandomize=DERANDOMIZE, database=None,
              suppress_health_check=list(HealthCheck))
    @given(cases(rows=ROWS))
    def check(case):
        seed, g, raw = case
        seen.append(seed)
        stats.update(corner_tags(g))
        stats["raw at s64 limits"] += bool((raw == np.iinfo(np.int64).min).any())
        ref = run(g, raw)
        blob = write_blob(g)
        got = cengine.run_blob(blob, raw, c_engine)
        assert got.dtype == np.int32 and got.shape == ref.shape
        assert np.array_equal(ref, got), _mismatch(seed, g, ref, got)
        # what the C side holds, written back out, is the toolchain's blob
        assert cengine.rewrite_blob(blob, c_engine) == blob, f"seed {seed}: C rewrites the blob"

    check()
    assert len(set(seen)) >= N_MODELS, f"only {len(set(seen))} distinct models ran"
    # the sample really covers what it claims: every op and every corner of randgraph's list
    for tag in list(OP_SPECS) + list(REQUIRED_TAGS):
        assert stats[tag] >= 20, (tag, stats)
    assert stats["raw at s64 limits"] == len(seen), stats


def test_comparison_can_fail(c_engine):
    """A graph changed after writing its blob is caught: the comparison has teeth."""
    g = _bound_graph(1)
    raw = np.full((1, 512), -(2**63), np.int64)
    blob = write_blob(g)
    g.ops[1].arrays["mult"] = np.array([1 << 29], np.int32)  # 16384 -> 8192 in the reference only
    assert run(g, raw).tolist() == [[8192]]
    assert cengine.run_blob(blob, raw, c_engine).tolist() == [[16384]]


def test_generated_c_equals_blob_and_reference(c_engine, tmp_path):
    batches = [range(s, s + 10) for s in range(7000, 7040, 10)]
    n = 0
    for i, seeds in enumerate(batches):
        files, models = {}, []
        for seed in seeds:
            g, raw = random_case(seed, rows=ROWS)
            files.update(generate(g))
            models.append((seed, g, raw))
        so = cengine.compile_generated(files, tmp_path / f"batch{i}", f"batch{i}")
        for seed, g, raw in models:
            ref = run(g, raw)
            tables = cengine.run_generated(so, g.name, raw)
            blob = cengine.run_blob(write_blob(g), raw, c_engine)
            assert np.array_equal(ref, tables), "generated C: " + _mismatch(seed, g, ref, tables)
            assert np.array_equal(ref, blob), "blob: " + _mismatch(seed, g, ref, blob)
            # the compiled tables hold exactly the model of the blob, byte for byte
            assert cengine.generated_blob(so, g.name) == write_blob(g), f"seed {seed}"
            n += 1
    assert n == 40


def _bound_graph(sign):
    """INPUT(512, s16) -> FC(512 -> 1) with every partial sum able to reach +-(2^31 - 1)."""
    n = 512
    w = np.full((1, n), -127 * sign, np.int8)
    # |bias| + 512 * 127 * 2^15 = 2^31 - 1  ->  |bias| = 2147483647 - 2130706432 = 16777215
    bias = np.array([16777215 * sign], np.int32)
    t = [Tensor("x", "s16", (n,)), Tensor("y", "s16", (1,))]
    ops = [Op("input", [], 0, {"in_off": 0, "n": n},
              {"off": np.zeros(n, np.int64), "pre": np.zeros(n, np.uint8),
               "mult": np.full(n, 1 << 30, np.int32), "shift": np.full(n, 30, np.uint8)}),
           Op("fc", [0], 1, {"n_in": n, "n_out": 1, "lo": -32768, "hi": 32767},
              {"w": w, "bias": bias, "mult": np.array([1 << 30], np.int32), "shift": np.array([47], np.uint8)}),
           Op("output", [1], None, {"out_off": 0, "n": 1, "mode": 1, "mult": 0, "shift": 0})]
    return Graph("bound", t, ops, [IOSpec("x", 0, (n,))], [IOSpec("y", 0, (1,))])


def test_accumulator_at_the_bound(c_engine, tmp_path):
    g = _bound_graph(1)
    raw = np.full((3, 512), -(2**63), np.int64)  # every x saturates to -32768
    raw[1] = 0
    raw[2, ::2] = 2**63 - 1
    # row 0: acc = 16777215 + 512 * 127 * 32768 = 2^31 - 1; rq(2^31 - 1, 2^30, 47) = 16384
    # row 1: acc = 16777215; rq = floor(16777215 / 2^17 + 1/2) = floor(127.99999 + 0.5) = 128
    # row 2: x alternates 32767, -32768: acc = 16777215 + 256 * 127 * (32768 - 32767)
    #        = 16777215 + 32512 = 16809727; rq = floor(128.248 + 0.5) = 128
    want = [[16384], [128], [128]]
    assert run(g, raw).tolist() == want
    assert cengine.run_blob(write_blob(g), raw, c_engine).tolist() == want
    so = cengine.compile_generated(generate(g), tmp_path, "bound")
    assert cengine.run_generated(so, "bound", raw).tolist() == want

    g = _bound_graph(-1)
    raw = np.full((1, 512), -(2**63), np.int64)  # every x saturates to -32768, w = +127
    # acc = -16777215 - 512 * 127 * 32768 = -(2^31 - 1)
    # rq = floor(-(2^31 - 1) / 2^17 + 1/2) = floor(-16383.99999 + 0.5) = -16384
    assert run(g, raw).tolist() == [[-16384]]
    assert cengine.run_blob(write_blob(g), raw, c_engine).tolist() == [[-16384]]


def test_mutated_blobs_python_and_c_agree(c_engine):
    """Random one-field changes to valid blobs: the Python validator and the C loader give
    the same errno, and whatever both accept still runs identically."""
    rng = np.random.default_rng(2026)
    verdicts = collections.Counter()
    for seed, _, b, g2 in mutated_blobs(rng):
        py, why = (g2.errno, str(g2)) if isinstance(g2, GraphError) else (0, "")
        c = cengine.parse_errno(b, c_engine)
        assert py == c, f"seed {seed}: Python {errno.errorcode.get(py, py)}, C {errno.errorcode.get(c, c)}" + \
            (f" ({why})" if py else "")
        verdicts[errno.errorcode.get(c, "accepted")] += 1
        if c == 0:
            raw = random_inputs(g2, rng, 8)
            assert np.array_equal(run(g2, raw), cengine.run_blob(b, raw, c_engine)), f"seed {seed}"
    for v in ("accepted", "EINVAL", "EDOM", "ERANGE"):
        assert verdicts[v] >= 50, verdicts
