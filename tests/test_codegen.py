"""C code generator: determinism, typed wrapper names, gcc, checkpatch, kernel build.

The compiled tables are run through the C engine and compared with the
reference and with the blob of the same graph (C tables == blob == reference).
"""
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from ml_lib import cengine
from ml_lib.blob import write_blob
from ml_lib.codegen import c_identifiers, generate
from ml_lib.ir import Graph, IOSpec, Op, Tensor
from ml_lib.randgraph import random_case, random_graph
from ml_lib.reference import run

TOP = Path(__file__).resolve().parents[1]
ID = (1 << 30, 30)


def named_graph(name="sched_hint"):
    """5 raw features with awkward names -> FC -> two outputs (fixed point + argmax)."""
    feats = ["queue len[0]", "0ms", "int", "queue_len_0", "current"]
    n = len(feats)
    t = [Tensor("x", "s8", (n,), zero_point=0), Tensor("h", "s8", (3,), zero_point=-128),
         Tensor("cls", "s32", (1,))]
    ops = [
        Op("input", [], 0, {"in_off": 0, "n": n},
           {"off": np.arange(n, dtype=np.int64) * 10, "pre": np.array([0, 1, 2, 3, 4], np.uint8),
            "mult": np.full(n, ID[0], np.int32), "shift": np.full(n, ID[1], np.uint8)}),
        Op("fc", [0], 1, {"n_in": n, "n_out": 3, "lo": -128, "hi": 127},
           {"w": np.array([[1, -2, 3, -4, 5], [127, -127, 0, 1, 1], [0, 0, 0, 0, 9]], np.int8),
            "bias": np.array([10, -20, 30], np.int32), "mult": np.full(3, 1 << 30, np.int32),
            "shift": np.array([31, 32, 33], np.uint8)}, source="net.fc1 */ /*"),
        Op("argmax", [1], 2, {"outer": 1, "n": 3}),
        Op("output", [1], None, {"out_off": 0, "n": 3, "mode": 0, "mult": 1 << 30, "shift": 22}),
        Op("output", [2], None, {"out_off": 3, "n": 1, "mode": 1, "mult": 0, "shift": 0}),
    ]
    return Graph(name, t, ops, [IOSpec("x", 0, (n,), features=feats)],
                 [IOSpec("score", 0, (3,), features=["read", "write", "Write"], frac_bits=16),
                  IOSpec("class", 3, (1,))])


def test_deterministic():
    g = named_graph()
    a = generate(g)
    assert a == generate(g) == generate(g.copy())
    assert sorted(a) == ["Kbuild", "sched_hint.c", "sched_hint.h", "sched_hint_mod.c"]
    # a different graph gives different tables
    g2 = named_graph()
    g2.ops[1].arrays["bias"] = np.array([11, -20, 30], np.int32)
    assert generate(g2)["sched_hint.c"] != a["sched_hint.c"]


def test_c_identifiers():
    assert c_identifiers(["queue len[0]", "0ms", "int", "queue_len_0", "current", "a--b", "", "x",
                          "ioLatencyUs", "RTT"]) == \
        ["queue_len_0", "f_0ms", "int_", "queue_len_0_2", "current_", "a_b", "f", "x",
         "io_latency_us", "rtt"]


def test_c_not_python_keywords():
    # C keywords get the "_", Python's (in, not, is, pass) do not: they are C names
    assert c_identifiers(["in", "not", "is", "pass", "static_assert", "constexpr"]) == \
        ["in", "not", "is", "pass", "static_assert_", "constexpr_"]


def test_c_identifiers_predefined_macros_and_long_names():
    # gcc predefines linux and unix (=1) under -std=gnu11; identifiers are cut to 48 characters
    long = "avg_request_latency_us_over_the_last_window_of_reads" * 2
    assert c_identifiers(["linux", "unix", "fallthrough", long, long]) == \
        ["linux_", "unix_", "fallthrough_", long[:48], long[:48] + "_2"]


def test_field_that_is_a_macro_stops_at_the_header(tmp_path):
    """A field name that is some other object-like macro where the header is included (the
    kernel has hundreds of lower-case ones) stops the build with a static_assert naming the
    header, not a puzzling error inside the struct (or, for console_loglevel, a silent
    zero-length array). A function-like macro (the kernel's min, max, abs, clamp) expands only
    before a parenthesis, so it is a fine field name: the old #if defined() guard refused
    it."""
    files = generate(named_graph())
    for fname, text in files.items():
        (tmp_path / fname).write_text(text)
    (tmp_path / "use.c").write_text('#include "sched_hint.h"\n')
    base = ["gcc", "-std=gnu11", "-fsyntax-only", f"-I{TOP / 'include'}", f"-I{TOP / 'lib' / 'ml'}",
            f"-I{tmp_path}", "-include", "ml_lib_compat.h", str(tmp_path / "use.c")]
    ok = subprocess.run(base, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    for macro in ("-Dread=(x[0])", "-Dclass=1", "-Dqueue_len_0_2"):
        r = subprocess.run(base + [macro], capture_output=True, text=True)
        assert r.returncode != 0 and "sched_hint.h: a field name is a macro here" in r.stderr, \
            (macro, r.stderr)
    for macro in ("-Dread(a)=0", "-Dclass(a,b)=0"):
        r = subprocess.run(base + [macro], capture_output=True, text=True)
        assert r.returncode == 0, (macro, r.stderr)


def test_file_scope_names_are_private():
    """Tables are <name>_ml_*: a model named pv must not define pv_ops (the kernel's)."""
    c = generate(named_graph("pv"))["pv.c"]
    assert "pv_ops" not in c and "pv_tensors" not in c and "static const struct ml_lib_op pv_ml_ops[" in c


def test_long_names_stay_within_100_columns():
    g = named_graph()
    g.inputs[0].features = ["avg_request_latency_us_over_last_window_" + f for f in
                            ("a", "b", "c", "d", "e" * 80)]
    for op in g.ops:
        op.source = "encoder.layers.10.block.submodule.with.a.rather.long.path (LeakyReLU)"
    for fname, text in generate(g).items():
        for i, line in enumerate(text.split("\n"), 1):
            assert len(line.expandtabs(8)) <= 100, (fname, i, line)


def test_typed_wrapper_fields():
    h = generate(named_graph())["sched_hint.h"]
    body = re.search(r"struct sched_hint_input \{\n(.*?)\};", h, re.S).group(1)
    assert re.findall(r"\ts64 (\w+);", body) == ["queue_len_0", "f_0ms", "int_", "queue_len_0_2", "current_"]
    body = re.search(r"struct sched_hint_output \{\n(.*?)\};", h, re.S).group(1)
    assert re.findall(r"\ts32 (\w+);", body) == ["read", "write", "write_2", "class"]
    for define in ("#define SCHED_HINT_N_IN 5", "#define SCHED_HINT_N_OUT 4", "#define SCHED_HINT_ARENA_BYTES"):
        assert define in h
    assert "static inline int sched_hint_run(" in h and "static inline int sched_hint_infer(" in h
    assert re.search(r"static_assert\(sizeof\(struct sched_hint_input\) ==\s+SCHED_HINT_N_IN \* sizeof\(s64\)", h)
    assert "@queue_len_0: raw feature queue len[0]" in h


def test_tables_content():
    files = generate(named_graph())
    c = files["sched_hint.c"]
    # rows 0-1 as one block (w[c][i] at i * 2 + c), then row 2 alone (docs/blob-format.md)
    assert "static const s8 sched_hint_ml_op1_w[15] __aligned(8) = {\n\t1, 127, -2, -127, 3, 0, -4, 1, 5, 1, 0, 0, 0, 0, 9,\n};" in c
    assert ".u.fc = {" in c and ".u.softmax = {" in c  # argmax keeps outer/n in the softmax params
    assert "const struct ml_lib_graph sched_hint_graph = {" in c
    assert "*/ /*" not in c  # op sources cannot end the comment they are quoted in
    assert 'struct ml_lib_model sched_hint_model = {\n\t.name = "sched_hint",' in c
    mod = files["sched_hint_mod.c"]
    assert "ml_lib_model_register(&sched_hint_model)" in mod and 'MODULE_LICENSE("GPL");' in mod


def test_style_basics():
    for g in [named_graph(), random_graph(3), random_graph(11)]:
        for fname, text in generate(g).items():
            for i, line in enumerate(text.split("\n"), 1):
                assert len(line.expandtabs(8)) <= 100 or line.lstrip().startswith('"'), (fname, i, line)
                assert line == line.rstrip(), (fname, i, "trailing whitespace")
                assert not line.startswith("        "), (fname, i, "spaces instead of a tab")


@pytest.fixture(scope="module")
def checkpatch():
    script = TOP / "build" / "linux-source" / "scripts" / "checkpatch.pl"
    if not script.exists():
        subprocess.run(["make", "-s", "-C", str(TOP), "kernel-src"], check=True)
    return script


def test_checkpatch_strict(checkpatch, tmp_path):
    g = random_graph(5, name="a_long_model_name_for_wrapping1")
    files = {**generate(named_graph()), **generate(g)}
    report = []
    for fname, text in files.items():
        if fname == "Kbuild":
            continue
        (tmp_path / fname).write_text(text)
        r = subprocess.run(["perl", str(checkpatch), "--strict", "--no-tree", "-q", "--show-types",
                            "-f", str(tmp_path / fname)], capture_output=True, text=True)
        if r.returncode or r.stdout.strip():
            report.append(r.stdout)
    assert not report, "\n".join(report)


def test_kernel_doc(checkpatch, tmp_path):
    kernel_doc = checkpatch.parent / "kernel-doc"
    files = generate(named_graph())
    paths = []
    for fname in ("sched_hint.h", "sched_hint.c"):
        (tmp_path / fname).write_text(files[fname])
        paths.append(str(tmp_path / fname))
    r = subprocess.run(["perl", str(kernel_doc), "-none", *paths], capture_output=True, text=True)
    assert r.returncode == 0 and "warning" not in (r.stdout + r.stderr).lower(), r.stdout + r.stderr
    r = subprocess.run(["perl", str(kernel_doc), "-rst", paths[0]], capture_output=True, text=True)
    for sym in ("struct sched_hint_input", "struct sched_hint_output", "sched_hint_run", "sched_hint_infer"):
        assert sym in r.stdout, sym


def test_compiled_tables_equal_blob_and_reference(c_engine, tmp_path):
    g = named_graph()
    raw = np.array([[0, 10, 20, 30, 40], [127, -128, 55, -1000, 2**40], [-(2**63), 2**63 - 1, 0, 5, -5]])
    so = cengine.compile_generated(generate(g), tmp_path, "named")
    ref = run(g, raw)
    assert np.array_equal(cengine.run_generated(so, "sched_hint", raw), ref)
    assert np.array_equal(cengine.run_blob(write_blob(g), raw, c_engine), ref)
    # FC ch0 on the first row by hand: x = raw - off = [0, 0, 0, 0, 0] -> acc = 10 -> rq(10, 2^30, 31) = 5
    # -> y = -128 + 5 = -123; OUTPUT: (-123 + 128) * 2^8 (2^30, 22) = 1280
    assert ref[0, 0] == 1280


def test_kernel_module_builds_w1(tmp_path):
    """The generated .c/_mod.c/Kbuild build as a module against Debian's headers, W=1 and sparse."""
    kdirs = sorted(Path("/lib/modules").glob("*-amd64/build"))
    if not kdirs:
        pytest.fail("no /lib/modules/*-amd64/build: install linux-headers-amd64 (make setup)")
    kdir = kdirs[-1]
    for fname, text in generate(named_graph()).items():
        (tmp_path / fname).write_text(text)
    r = subprocess.run(["make", "-C", str(kdir), f"M={tmp_path}", "W=1", "C=1",
                        f"ML_LIB_INCLUDE={TOP / 'include'}",
                        # ml_lib.ko's symbols are not in this build; their absence is not the point
                        "KBUILD_MODPOST_WARN=1", "modules"], capture_output=True, text=True,
                       # not an outer `make -s`'s flags: the CHECK lines are the proof
                       env={k: v for k, v in os.environ.items()
                            if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")})
    log = r.stdout + r.stderr
    assert r.returncode == 0, log
    warnings = [line for line in log.splitlines()
                if re.search(r"warning:|error:", line, re.I) and "modpost" not in line]
    assert not warnings, log
    assert re.search(r"CHECK\s+\S*sched_hint\.c", log), "sparse did not run:\n" + log
    assert (tmp_path / "sched_hint_ml.ko").exists()


def test_gcc_rejects_nothing_for_random_graphs(tmp_path, c_engine):
    """A batch of random graphs: one gcc run, every model equal to its blob and the reference."""
    files, cases = {}, []
    for seed in range(1000, 1006):
        g, raw = random_case(seed, rows=8)
        files.update(generate(g))
        cases.append((g, raw))
    so = cengine.compile_generated(files, tmp_path, "batch")
    for g, raw in cases:
        ref = run(g, raw)
        assert np.array_equal(cengine.run_generated(so, g.name, raw), ref), g.name
        assert np.array_equal(cengine.run_blob(write_blob(g), raw, c_engine), ref), g.name


def test_gcc_is_available():
    assert shutil.which("gcc"), "gcc is needed to compile generated tables"
