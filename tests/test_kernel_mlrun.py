"""`mlrun DIR X.npy --engine kernel --raw` == `--engine python --raw` on trained, exported models.

Models are trained in PyTorch, exported with mlexport --target kernel and
built as model modules against Debian's headers. One test goes through the
real `mlrun --engine kernel` (one boot); the other batches every model into
ONE boot: it captures the exact raw integers mlrun hands to
ml_lib.kernel.run_exported, runs them all in the booted kernel, then lets
mlrun finish with those kernel outputs.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ml_lib import kernel

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
import mlexport_models as mm  # noqa: E402

pytestmark = pytest.mark.kernel


def _save(model, x, path: Path) -> Path:
    torch.export.save(torch.export.export(model, (torch.tensor(x[:4]),)), path)
    return path


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(out_dir, test inputs) of models whose ops together cover the exporter's op set."""
    work = tmp_path_factory.mktemp("kernel_mlrun")
    xtr, ytr = mm.blobs(800, 0)
    xte, _ = mm.blobs(40, 1)
    str_, sytr = mm.sequences(600, 0)
    ste, _ = mm.sequences(30, 1)
    np.save(work / "calib.npy", xtr[:400])
    np.save(work / "calib_seq.npy", str_[:400])
    cases = []

    def export(name, model, x, calib, *extra):
        f = _save(model, x, work / f"{name}.pt2")
        out = mm.export_ok(work / name, f, work / calib, *extra)
        return out

    for act, head in (("leaky_relu", "softmax"), ("sigmoid", "argmax"), ("clamp", None)):
        m = mm.train(mm.MLP(xtr, act=act), xtr, ytr, steps=150)
        m.head = head
        cases.append((export(f"mlp_{act}", m, xtr, "calib.npy"), xte))
    conv = mm.train(mm.ConvNet(), str_, sytr, steps=150)
    cases.append((export("conv8", conv, str_, "calib_seq.npy"), ste))
    cases.append((export("conv16", conv, str_, "calib_seq.npy", "--bits", "16"), ste))
    return cases


def _kinds(out_dir: Path) -> set[str]:
    return {o["kind"] for o in mm.manifest(out_dir)["ops"]}


def test_mlrun_kernel_raw_equals_python_raw_all_models(exported, tmp_path, monkeypatch):
    kinds = set().union(*(_kinds(d) for d, _ in exported))
    want = {"input", "fc", "conv1d", "maxpool1d", "avgpool1d", "leaky_relu", "lut", "add",
            "concat", "softmax", "argmax", "output"}
    assert want <= kinds, f"exported models miss {sorted(want - kinds)}"

    # pass 1: what mlrun would hand to the kernel engine, per model
    seen: dict[str, np.ndarray] = {}
    py = {}
    for d, x in exported:
        py[str(d)] = mm.mlrun_out(d, x, "python", True, tmp_path)
        n_out = sum(np.asarray(v).reshape(len(x), -1).shape[1] for v in (
            py[str(d)].values() if isinstance(py[str(d)], dict) else [py[str(d)]]))

        def capture(model_dir, raw, n_out=n_out):
            seen[str(model_dir)] = np.array(raw, dtype=np.int64)
            return np.zeros((raw.shape[0], n_out), np.int32)
        monkeypatch.setattr(kernel, "run_exported", capture)
        mm.mlrun_out(d, x, "kernel", True, tmp_path)
    assert len(seen) == len(exported)

    # one boot: every model module, every captured input
    ko = kernel.build_ml_lib_module(tmp_path / "kmod")
    mods, jobs = [ko], []
    for d, _ in exported:
        mods.append(kernel.build_model_module(d, ko, tmp_path / "mod" / d.parent.name))
        jobs.append(kernel.Job(kernel._model_name(Path(d)), raw=seen[str(d)]))
    res = kernel.boot(mods, jobs)
    assert not res.errors, res.errors
    for i, (d, _) in enumerate(exported):  # each module runs its exported model
        name = kernel._model_name(Path(d))
        kernel.check_sha256(name, res.sha256[i], (Path(d) / f"{name}.mlb").read_bytes())

    # pass 2: mlrun finishes with the booted kernel's integers
    for i, (d, x) in enumerate(exported):
        monkeypatch.setattr(kernel, "run_exported", lambda model_dir, raw, i=i: res.outputs[i])
        got = mm.mlrun_out(d, x, "kernel", True, tmp_path)
        want_ = py[str(d)]
        if isinstance(want_, dict):
            assert got.keys() == want_.keys()
            for k in want_:
                assert np.array_equal(got[k], want_[k]), (d, k)
        else:
            assert got.dtype == want_.dtype and np.array_equal(got, want_), d


def test_mlrun_engine_kernel_cli(exported, tmp_path):
    """The unpatched path: mlrun boots the kernel itself."""
    d, x = exported[3]  # the int8 conv net: conv1d, pools, lut, add, concat
    want = mm.mlrun_out(d, x, "python", True, tmp_path)
    got = mm.mlrun_out(d, x, "kernel", True, tmp_path)
    assert np.array_equal(got, want)
