# SPDX-License-Identifier: GPL-2.0
"""mlrun: float inputs -> raw features -> engine -> outputs, on a hand-checkable model."""
from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
import mlexport_models as mm  # noqa: E402


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """y = 1.0 * a + 0.5 * b + 0.25 with a integer-valued in [0, 10], b in [-0.9, 0.9]."""
    d = tmp_path_factory.mktemp("tiny")
    m = nn.Linear(2, 1)
    with torch.no_grad():
        m.weight.copy_(torch.tensor([[1.0, 0.5]]))
        m.bias.fill_(0.25)
    m.eval()
    torch.save(m, d / "tiny.pt")
    rng = np.random.default_rng(0)
    x = np.stack([rng.integers(0, 11, 200), rng.uniform(-0.9, 0.9, 200)], 1).astype(np.float32)
    x[0] = [0, -0.9]
    x[1] = [10, 0.9]
    np.save(d / "calib.npy", x)
    out = mm.export_ok(d, d / "tiny.pt", d / "calib.npy")
    return out, x


def test_raw_scale_and_fixed_point(tiny, tmp_path):
    out, x = tiny
    man = mm.manifest(out)
    # integer column -> 1.0; |b| <= 0.9 < 2^0 -> 2^(0 - 16) keeps 16 significant bits
    assert man["raw_scale"] == [1.0, 2.0**-16]
    assert man["output_specs"][0]["frac_bits"] == 16 and man["output_specs"][0]["kind"] == "fixed"
    raw = mm.mlrun_out(out, x, "python", True, tmp_path)
    flt = mm.mlrun_out(out, x, "python", False, tmp_path)
    assert raw.dtype == np.int32 and flt.dtype == np.float32
    assert np.array_equal(flt, (raw / 2.0**16).astype(np.float32))
    # int8: y spans [-0.2, 10.7] in 255 steps, so |error| stays within ~2 steps
    ref = x[:, 0] + 0.5 * x[:, 1] + 0.25
    assert np.abs(flt.ravel() - ref).max() < 2 * 10.9 / 255
    assert np.array_equal(raw, mm.mlrun_out(out, x, "c", True, tmp_path))


def test_single_row_and_integer_input(tiny, tmp_path):
    out, x = tiny
    one = mm.mlrun_out(out, np.array([3, 0.5], np.float32), "python", True, tmp_path)
    ints = mm.mlrun_out(out, np.array([[3, 0]], np.int64), "python", True, tmp_path)
    assert one.shape == (1, 1) and ints.shape == (1, 1)
    assert abs(one[0, 0] / 2**16 - 3.5) < 0.1 and abs(ints[0, 0] / 2**16 - 3.25) < 0.1


@pytest.mark.parametrize("case,words", [
    ("shape", ["inputs have shape (4, 3)", "(rows, 2)"]),
    ("nan", ["NaN or Inf"]),
    ("nodir", ["no such model folder"]),
    ("noinput", ["no such file"]),
])
def test_errors(tiny, tmp_path, case, words):
    out, x = tiny
    xin = tmp_path / "x.npy"
    np.save(xin, np.zeros((4, 3)) if case == "shape" else np.full((4, 2), np.nan))
    d = tmp_path / "missing" if case == "nodir" else out
    src = tmp_path / "nope.npy" if case == "noinput" else xin
    rc, se = mm.run_mlrun([d, src, "--engine", "python", "-o", tmp_path / "y.npy"])
    assert rc == 2 and len(se.strip().splitlines()) == 1 and se.startswith("mlrun: error: ")
    for w in words:
        assert w in se


def _one_line_error(rc, se, *words):
    assert rc == 2 and len(se.strip().splitlines()) == 1 and se.startswith("mlrun: error: "), se
    for w in words:
        assert w in se, se


def test_bad_files_and_paths(tiny, tmp_path):
    """Each mistake with a file or a path: one line naming it, exit 2."""
    out, x = tiny
    xin = tmp_path / "x.npy"
    np.save(xin, np.ones((3, 2)))

    def run(d, src, dest, *extra):
        return mm.run_mlrun([d, src, "--engine", "python", "-o", dest, *extra])

    np.savez(tmp_path / "x.npz", a=np.ones((3, 2)))
    _one_line_error(*run(out, tmp_path / "x.npz", tmp_path / "y.npy"), ".npz archive")
    (tmp_path / "empty.npy").write_bytes(b"")
    _one_line_error(*run(out, tmp_path / "empty.npy", tmp_path / "y.npy"), "not a .npy array")
    _one_line_error(*run(out, tmp_path, tmp_path / "y.npy"), "is a directory")
    np.save(tmp_path / "none.npy", np.ones((0, 2)))
    _one_line_error(*run(out, tmp_path / "none.npy", tmp_path / "y.npy"), "no input rows")
    _one_line_error(*run(out, xin, tmp_path), "is a directory; give a file name")
    (tmp_path / "afile").write_text("")
    _one_line_error(*run(out, xin, tmp_path / "afile" / "y.npy"), "afile/y.npy", "Not a directory")
    # a manifest without its inputs (hand-edited or from another tool)
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    man = next(bad.glob("*.json"))
    m = json.loads(man.read_text())
    del m["inputs"]
    man.write_text(json.dumps(m))
    _one_line_error(*run(bad, xin, tmp_path / "y.npy"), "manifest lacks inputs")
    # generated C that does not compile: the compiler's first error, the log named
    badc = tmp_path / "badc"
    shutil.copytree(out, badc)
    c = next(badc.glob("*.c"))
    c.write_text(c.read_text() + "\nint broken(\n")
    rc, se = mm.run_mlrun([badc, xin, "--engine", "c", "-o", tmp_path / "y.npy"])
    _one_line_error(rc, se, "engine c failed", "error:", "full output in")
    # with --debug: the traceback too, the same exit status
    rc, se = run(out, tmp_path / "x.npz", tmp_path / "y.npy", "--debug")
    assert rc == 2 and "Traceback" in se and se.strip().splitlines()[-1].startswith("mlrun: error:")
    # a write that fails leaves an earlier result as it was, and no temporary file
    good = tmp_path / "keep.npy"
    assert run(out, xin, good)[0] == 0
    before = good.read_bytes()
    import resource
    import subprocess
    limit = len(before) - 1
    r = subprocess.run([sys.executable, "-m", "ml_lib.cli.mlrun", out, xin, "--engine", "python",
                        "--raw", "-o", good], capture_output=True, text=True,
                       preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)))
    _one_line_error(r.returncode, r.stderr, f"-o {good}: cannot write: File too large")
    assert good.read_bytes() == before and sorted(p.name for p in tmp_path.glob(".keep*")) == []
    # one output written to an .npz: an archive keyed by the output's name
    rc, se = run(out, xin, tmp_path / "y.npz")
    assert rc == 0 and not (tmp_path / "y.npz.npy").exists()
    assert list(np.load(tmp_path / "y.npz")) == [json.loads(man.read_text())["output_specs"][0]["name"]]


@pytest.mark.parametrize("edit,words", [
    (lambda m: m.update(blob=None), "blob is not a file name"),
    (lambda m: m.update(n_out="1"), "n_out '1' is not a positive integer"),
    (lambda m: m.update(frac_bits=True), "frac_bits True"),
    (lambda m: m["inputs"][0].update(raw_scale=m["inputs"][0]["raw_scale"][:1]),
     "raw_scale is not 2 finite numbers > 0"),
    # this one used to exit 0 with every raw input -2^63 (NaN cast to int64)
    (lambda m: m["inputs"][0].update(raw_scale=None), "raw_scale is not 2 finite numbers"),
    (lambda m: m["inputs"][0].update(shape=None), "input shape None"),
    (lambda m: m.update(output_specs=5), "output_specs is not a list"),
    (lambda m: m["output_specs"][0].pop("kind"), "need name, offset, shape and kind"),
    (lambda m: m["output_specs"][0].update(offset=1), "outside n_out 1"),
    (lambda m: m["output_specs"].append(dict(m["output_specs"][0])), "output name 'output' appears twice"),
    # consistent on its own, but not with the blob: these used to end in a
    # traceback (exit 1) or, for the output's kind, in silently wrong numbers
    (lambda m: m.update(n_out=2), "has outputs 1 but the manifest says 2"),
    (lambda m: m["inputs"][0].update(shape=[3], raw_scale=[1.0] * 3),
     "has inputs 2 but the manifest says 3"),
    (lambda m: m.update(name="other"), "has name 'tiny' but the manifest says 'other'"),
    (lambda m: m["output_specs"][0].update(kind="index"),
     "output 'output' is index in the manifest but not in the blob"),
    # the blob is not the one exported with this manifest
    (lambda m: m.update(blob_sha256="0" * 64), "the blob changed after the export"),
])
def test_damaged_manifest_is_one_line(tiny, tmp_path, edit, words):
    """A hand-edited manifest: one line naming the field, exit 2, nothing written."""
    out, _ = tiny
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    f = next(bad.glob("*.json"))
    m = json.loads(f.read_text())
    edit(m)
    f.write_text(json.dumps(m))
    xin = tmp_path / "x.npy"
    np.save(xin, np.ones((3, 2)))
    rc, se = mm.run_mlrun([bad, xin, "--engine", "python", "-o", tmp_path / "y.npy"])
    _one_line_error(rc, se, words)
    assert not (tmp_path / "y.npy").exists()


def test_c_tables_and_blob_must_hold_one_model(tiny, tmp_path):
    """--engine c compiles the folder's C tables: written back as a blob
    (ml_lib_graph_write_blob()) they must be the folder's blob."""
    out, x = tiny
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    c = bad / "tiny.c"
    text = c.read_text()
    m = re.search(r"(tiny_ml_op\d+_bias\[\d+\][^{]*\{\s*)(-?\d+)", text)
    assert m, "no bias table in tiny.c"
    c.write_text(text[:m.end(1)] + str(int(m.group(2)) + 1) + text[m.end(2):])
    xin = tmp_path / "x.npy"
    np.save(xin, x[:3])
    rc, se = mm.run_mlrun([bad, xin, "--engine", "c", "-o", tmp_path / "y.npy"])
    _one_line_error(rc, se, "tiny.c holds a model with sha256")
    assert not (tmp_path / "y.npy").exists()


def test_manifest_without_hashes_still_runs(tiny, tmp_path):
    """Exports from before blob_sha256 and source.sha256 run as they did."""
    out, x = tiny
    old = tmp_path / "old"
    shutil.copytree(out, old)
    f = old / "tiny.json"
    m = json.loads(f.read_text())
    del m["blob_sha256"], m["source"]["sha256"]
    f.write_text(json.dumps(m))
    assert np.array_equal(mm.mlrun_out(old, x, "c", True, tmp_path),
                          mm.mlrun_out(out, x, "python", True, tmp_path))


def test_user_export_needs_proxy(tiny, tmp_path):
    out, x = tiny
    d = tmp_path / "user"
    rc, so, se = mm.run_export([out.parent / "tiny.pt", "--calib", out.parent / "calib.npy",
                                "--target", "user", "-o", d, "-q"])
    assert rc == 0, se
    np.save(tmp_path / "x.npy", x)
    rc, se = mm.run_mlrun([d, tmp_path / "x.npy", "--engine", "c", "-o", tmp_path / "y.npy"])
    assert rc == 2 and "--engine proxy" in se


@pytest.mark.kernel
def test_proxy_engine_matches_float(tiny, tmp_path):
    """Boots Debian's kernel (virtme-ng): kernel caller -> /dev/ml_lib -> mlproxyd."""
    out, x = tiny
    d = tmp_path / "user"
    rc, so, se = mm.run_export([out.parent / "tiny.pt", "--calib", out.parent / "calib.npy",
                                "--target", "user", "-o", d, "-q"])
    assert rc == 0, se
    y = mm.mlrun_out(d, x[:16], "proxy", False, tmp_path)
    ref = x[:16, 0] + 0.5 * x[:16, 1] + 0.25
    assert np.abs(y.ravel() - ref).max() < 1e-3


@pytest.mark.kernel
def test_kernel_engine_bit_exact(tmp_path):
    """Boots Debian's kernel: the exported module's answers == the Python reference."""
    x, y = mm.blobs(300, 5)
    model = mm.train(mm.MLP(x, act="tanh"), x, y, steps=100)
    torch.export.save(torch.export.export(model, (torch.tensor(x[:4]),)), tmp_path / "kmlp.pt2")
    np.save(tmp_path / "calib.npy", x)
    out = mm.export_ok(tmp_path, tmp_path / "kmlp.pt2", tmp_path / "calib.npy")
    a = mm.mlrun_out(out, x[:64], "python", True, tmp_path)
    b = mm.mlrun_out(out, x[:64], "kernel", True, tmp_path)
    assert np.array_equal(a, b)


@pytest.mark.parametrize("prog,argv", [
    ("mlexport", ["model.pt", "--bits", "4"]),
    ("mlexport", ["model.pt", "--target", "foo"]),
    ("mlexport", ["model.pt", "--no-such-flag"]),
    ("mlexport", []),
    ("mlrun", ["out/", "x.npy", "-o", "y.npy", "--engine", "gpu"]),
    ("mlrun", ["out/", "x.npy"]),
    ("mlproxyd", ["--no-such-flag", "out/"]),
    ("mlproxyd", []),
])
def test_bad_command_line_is_one_line(prog, argv):
    """argparse's errors: one line `<prog>: error: ... (see <prog> --help)`, exit 2,
    no usage block; --help still prints the whole help and exits 0."""
    import subprocess
    mod = f"ml_lib.cli.{prog}"
    r = subprocess.run([sys.executable, "-m", mod, *argv], capture_output=True, text=True)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert lines[0].startswith(f"{prog}: error: ") and lines[0].endswith(f"(see {prog} --help)")
    assert "usage:" not in r.stderr and r.stdout == ""
    r = subprocess.run([sys.executable, "-m", mod, "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith(f"usage: {prog}") and r.stderr == ""


def test_unreadable_model_folder_says_so(tiny, tmp_path, monkeypatch):
    """As root a chmod 000 folder is still readable, so os.listdir fails here
    by hand: the error was "expected one <name>.json manifest, found 0"."""
    import errno
    import os

    from ml_lib import manifest
    from ml_lib.errors import UserError
    out, _ = tiny

    def denied(path):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))
    monkeypatch.setattr(os, "listdir", denied)
    with pytest.raises(UserError) as e:
        manifest.load(out)
    assert str(e.value) == f"{out}: cannot read the model folder: Permission denied"
