# SPDX-License-Identifier: GPL-2.0
"""mlexport end to end: trained models in every input format and layer type.

Tolerances (held-out data, integer model vs the float model):
- classifiers: argmax agreement >= 97 %; softmax probabilities (int8) within 0.1;
- regression (int8): max abs error <= 5 % of the float output range;
- every export: `mlrun --engine python --raw` == `--engine c --raw` bit for bit.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
import mlexport_models as mm  # noqa: E402

TOP = Path(__file__).resolve().parents[1]
KDIR = sorted(Path("/lib/modules").glob("*-amd64/build"))


@pytest.fixture(scope="module")
def data():
    xtr, ytr = mm.blobs(1200, 0)
    xte, yte = mm.blobs(600, 1)
    return xtr, ytr, xte, yte


@pytest.fixture(scope="module")
def mlp(data):
    xtr, ytr, _, _ = data
    torch.manual_seed(0)  # the initial weights too: not whatever earlier tests left
    return mm.train(mm.MLP(xtr), xtr, ytr)


@pytest.fixture(scope="module")
def conv():
    xtr, ytr = mm.sequences(900, 0)
    xte, yte = mm.sequences(400, 1)
    torch.manual_seed(0)
    model = mm.train(mm.ConvNet(), xtr, ytr, steps=250)
    return model, xtr, xte, yte


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("mlexport")


def _calib(work: Path, x: np.ndarray, name="calib.npy") -> Path:
    p = work / name
    np.save(p, x[:500])
    return p


def _check_classifier(out: Path, model, xte, tmp: Path, min_agree=0.97, c=True):
    """Held-out agreement, and python == C bit for bit."""
    ref = mm.float_out(model, xte)
    y = mm.mlrun_out(out, xte, "python", False, tmp)
    if y.dtype.kind == "i":  # an argmax output
        agree = np.mean(y.ravel() == (ref if ref.ndim == 1 else ref.argmax(-1)))
    else:
        agree = np.mean(y.argmax(-1) == ref.argmax(-1))
    assert agree >= min_agree, f"argmax agreement {agree:.3f}"
    if not c:
        return agree
    a = mm.mlrun_out(out, xte, "python", True, tmp)
    b = mm.mlrun_out(out, xte, "c", True, tmp)
    assert a.dtype == np.int32 and np.array_equal(a, b)
    return agree


# ---------------------------------------------------------------- formats

def _save(model, fmt: str, x: np.ndarray, path: Path) -> Path:
    ex = torch.tensor(x[:4])
    if fmt == "pickle":
        torch.save(model, path)
    elif fmt == "torchscript":
        torch.jit.save(torch.jit.trace(model, ex), path)
    elif fmt == "export":
        torch.export.save(torch.export.export(model, (ex,)), path)
    elif fmt == "export-dynamic-batch":
        dyn = {"x": {0: torch.export.Dim("batch")}}
        torch.export.save(torch.export.export(model, (ex,), dynamic_shapes=dyn), path)
    elif fmt == "onnx":
        torch.onnx.export(model, (ex,), path, dynamo=False, input_names=["x"],
                          output_names=["logits"], dynamic_axes={"x": {0: "n"}})
    elif fmt == "onnx-dynamo":  # torch's default exporter since 2.9
        torch.onnx.export(model, (ex,), path, dynamo=True)
    return path


@pytest.mark.parametrize("fmt,suffix", [("pickle", ".pt"), ("torchscript", ".ts.pt"),
                                        ("export", ".pt2"), ("export-dynamic-batch", ".pt2"),
                                        ("onnx", ".onnx"), ("onnx-dynamo", ".onnx")])
def test_torch_formats_mlp(fmt, suffix, mlp, data, work, tmp_path):
    xtr, _, xte, _ = data
    f = _save(mlp, fmt, xtr, work / f"mlp_{fmt}{suffix}")
    out = mm.export_ok(tmp_path, f, _calib(work, xtr))
    man = mm.manifest(out)
    assert man["source"]["format"] == fmt.split("-")[0]
    # BatchNorm folded, dropout dropped, normalisation is the INPUT op
    assert [o["kind"] for o in man["ops"]] == ["input", "fc", "fc", "output"]
    assert man["raw_scale"][3] == 1.0 and man["raw_scale"][7] == 1.0  # integer columns
    assert all(s < 1 for i, s in enumerate(man["raw_scale"]) if i not in (3, 7))
    _check_classifier(out, mlp, xte, tmp_path)


@pytest.mark.parametrize("fmt,suffix", [("export", ".pt2"), ("export-dynamic-batch", ".pt2"),
                                        ("onnx", ".onnx"), ("torchscript", ".ts.pt")])
def test_torch_formats_conv(fmt, suffix, conv, work, tmp_path):
    model, xtr, xte, _ = conv
    f = _save(model, fmt, xtr, work / f"conv_{fmt}{suffix}")
    out = mm.export_ok(tmp_path, f, _calib(work, xtr, "calib_conv.npy"))
    kinds = [o["kind"] for o in mm.manifest(out)["ops"]]
    for k in ("conv1d", "maxpool1d", "lut", "add", "avgpool1d", "concat", "fc"):
        assert k in kinds
    _check_classifier(out, model, xte, tmp_path)


@pytest.mark.parametrize("scaler", [True, False])
def test_skl2onnx_classifier(scaler, data, work, tmp_path):
    """skl2onnx MLPClassifier, with a StandardScaler (ONNX-ML Scaler node) or without
    on already standardised data: ZipMap and the label branch handled.

    (A bare MLPClassifier trained on features of very different scales is
    badly conditioned for int8 per-channel weights; the export report's
    per-layer table shows it -- users put a scaler in front.)"""
    from skl2onnx import to_onnx
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    xtr, ytr, xte, _ = data
    if not scaler:
        mu, sd = xtr.mean(0), xtr.std(0)
        xtr, xte = (xtr - mu) / sd, (xte - mu) / sd
    clf = MLPClassifier((16,), max_iter=300, random_state=0)
    model = make_pipeline(StandardScaler(), clf) if scaler else clf
    model.fit(xtr, ytr)
    f = work / f"skl_clf_{scaler}.onnx"
    f.write_bytes(to_onnx(model, xtr[:1]).SerializeToString())
    out = mm.export_ok(tmp_path, f, _calib(work, xtr, f"calib_skl_{scaler}.npy"))
    man = mm.manifest(out)
    assert man["outputs"] == ["label", "probability"]
    assert man["classes"] == [0, 1, 2]
    y = mm.mlrun_out(out, xte, "python", False, tmp_path)
    assert set(y) == {"label", "probability"}
    assert np.mean(y["label"].ravel() == model.predict(xte)) >= 0.97
    assert np.abs(y["probability"] - model.predict_proba(xte)).max() < 0.1
    a = mm.mlrun_out(out, xte, "python", True, tmp_path)
    b = mm.mlrun_out(out, xte, "c", True, tmp_path)
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_skl2onnx_binary_classifier(work, tmp_path):
    """Binary MLPClassifier: skl2onnx writes [1 - sigmoid, sigmoid] (Sub, Concat)."""
    from skl2onnx import to_onnx
    from sklearn.neural_network import MLPClassifier
    rng = np.random.default_rng(4)
    x = rng.normal(size=(1200, 5)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] * x[:, 2] > 0).astype(int)
    clf = MLPClassifier((16,), max_iter=400, random_state=0).fit(x[:800], y[:800])
    f = work / "skl_bin.onnx"
    f.write_bytes(to_onnx(clf, x[:1]).SerializeToString())
    out = mm.export_ok(tmp_path, f, _calib(work, x[:800], "calib_bin.npy"))
    kinds = [o["kind"] for o in mm.manifest(out)["ops"]]
    assert kinds.count("lut") == 2 and "concat" in kinds  # sigmoid and 1 - sigmoid
    xte = x[800:]
    got = mm.mlrun_out(out, xte, "python", False, tmp_path)
    assert np.mean(got["label"].ravel() == clf.predict(xte)) >= 0.97
    assert np.abs(got["probability"] - clf.predict_proba(xte)).max() < 0.05
    a = mm.mlrun_out(out, xte, "python", True, tmp_path)
    b = mm.mlrun_out(out, xte, "c", True, tmp_path)
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_skl2onnx_regressor(work, tmp_path):
    from skl2onnx import to_onnx
    from sklearn.neural_network import MLPRegressor
    rng = np.random.default_rng(3)
    x = rng.uniform(-2, 2, size=(1500, 4)).astype(np.float32)
    y = np.sin(x[:, 0]) + 0.5 * x[:, 1] * x[:, 2]
    reg = MLPRegressor(hidden_layer_sizes=(32,), max_iter=600, random_state=0).fit(x[:1000], y[:1000])
    f = work / "skl_reg.onnx"
    f.write_bytes(to_onnx(reg, x[:1]).SerializeToString())
    out = mm.export_ok(tmp_path, f, _calib(work, x[:1000], "calib_reg.npy"))
    xte = x[1000:]
    got = mm.mlrun_out(out, xte, "python", False, tmp_path).ravel()
    ref = reg.predict(xte)
    assert np.abs(got - ref).max() <= 0.05 * (ref.max() - ref.min())
    a = mm.mlrun_out(out, xte, "python", True, tmp_path)
    b = mm.mlrun_out(out, xte, "c", True, tmp_path)
    assert np.array_equal(a, b)


# ---------------------------------------------------------------- layer types

@pytest.mark.parametrize("act", ["relu6", "leaky_relu", "sigmoid", "tanh", "hardtanh", "clamp"])
def test_layer_types(act, data, work, tmp_path):
    xtr, ytr, xte, _ = data
    torch.manual_seed(0)
    model = mm.train(mm.MLP(xtr, act=act), xtr, ytr, steps=150)
    f = _save(model, "export", xtr, work / f"act_{act}.pt2")
    out = mm.export_ok(tmp_path, f, _calib(work, xtr))
    kinds = [o["kind"] for o in mm.manifest(out)["ops"]]
    want = {"relu6": "fc", "hardtanh": "fc", "clamp": "fc", "leaky_relu": "leaky_relu",
            "sigmoid": "lut", "tanh": "lut"}[act]
    assert want in kinds
    if act in ("relu6", "hardtanh", "clamp"):  # fused into the FC clamp
        assert kinds == ["input", "fc", "fc", "output"]
    _check_classifier(out, model, xte, tmp_path)


@pytest.mark.parametrize("head", ["softmax", "argmax"])
def test_heads(head, mlp, data, work, tmp_path):
    xtr, _, xte, _ = data
    mlp.head = head
    try:
        f = _save(mlp, "export", xtr, work / f"head_{head}.pt2")
        ref = mm.float_out(mlp, xte)
    finally:
        mlp.head = None
    out = mm.export_ok(tmp_path, f, _calib(work, xtr))
    man = mm.manifest(out)
    assert head in [o["kind"] for o in man["ops"]]
    y = mm.mlrun_out(out, xte, "python", False, tmp_path)
    if head == "softmax":
        assert np.abs(y - ref).max() < 0.1 and np.mean(y.argmax(-1) == ref.argmax(-1)) >= 0.97
        assert man["output_specs"][0]["kind"] == "fixed"
    else:
        assert y.dtype == np.int32 and np.mean(y.ravel() == ref) >= 0.97
        assert man["output_specs"][0]["kind"] == "index"
    assert np.array_equal(mm.mlrun_out(out, xte, "python", True, tmp_path),
                          mm.mlrun_out(out, xte, "c", True, tmp_path))


def test_argmax_flag_bits16_percentile(mlp, data, work, tmp_path):
    xtr, _, xte, _ = data
    f = _save(mlp, "export", xtr, work / "mlp.pt2")
    out = mm.export_ok(tmp_path, f, _calib(work, xtr), "--argmax", "--bits", "16",
                       "--percentile", "99.9")
    man = mm.manifest(out)
    assert man["activation_bits"] == 16 and man["output_specs"][0]["kind"] == "index"
    y = mm.mlrun_out(out, xte, "python", False, tmp_path)
    assert np.mean(y.ravel() == mm.float_out(mlp, xte).argmax(-1)) >= 0.99
    assert np.array_equal(mm.mlrun_out(out, xte, "python", True, tmp_path),
                          mm.mlrun_out(out, xte, "c", True, tmp_path))


def test_bits16_conv_is_closer(conv, work, tmp_path):
    model, xtr, xte, _ = conv
    f = _save(model, "export", xtr, work / "conv16.pt2")
    ref = mm.float_out(model, xte)
    errs = {}
    for bits in ("8", "16"):
        out = mm.export_ok(tmp_path / bits, f, _calib(work, xtr, "calib_conv.npy"), "--bits", bits)
        errs[bits] = np.abs(mm.mlrun_out(out, xte, "python", False, tmp_path) - ref).mean()
        assert np.array_equal(mm.mlrun_out(out, xte, "python", True, tmp_path),
                              mm.mlrun_out(out, xte, "c", True, tmp_path))
    assert errs["16"] < errs["8"] / 2


# ---------------------------------------------------------------- outputs

def test_report_and_manifest(mlp, data, work, tmp_path):
    xtr, _, _, _ = data
    f = _save(mlp, "export", xtr, work / "mlp.pt2")
    rc, so, se = mm.run_export([f, "--calib", _calib(work, xtr), "-o", tmp_path / "o",
                                "--name", "blobs_clf", "--features",
                                ",".join(f"f{i}" for i in range(8))])
    assert rc == 0, se
    for word in ("parameters", "tables", "scratch", "MACs", "stack", "max abs err",
                 "argmax agreement", "per layer"):
        assert word in so
    man = mm.manifest(tmp_path / "o")
    assert man["name"] == "blobs_clf" and man["features"][0] == "f0"
    assert man["sizes"]["parameters"] == 8 * 32 + 32 + 32 * 3 + 3
    assert man["sizes"]["macs"] == 8 * 32 + 32 * 3
    acc = man["report"]["accuracy"]
    assert len(acc["layers"]) == 3 and acc["outputs"][0]["argmax_agreement"] >= 0.97
    files = sorted(p.name for p in (tmp_path / "o").iterdir())
    assert files == ["Kbuild", "blobs_clf.c", "blobs_clf.h", "blobs_clf.json", "blobs_clf.mlb",
                     "blobs_clf_mod.c"]
    kb = (tmp_path / "o" / "Kbuild").read_text()
    assert "obj-m +=" in kb and "blobs_clf.o blobs_clf_mod.o" in kb and "ccflags-y" in kb


def test_report_notes_structs_too_big_for_the_stack():
    """8 B per input and 4 per output on the caller's stack: 120 inputs and 16 outputs
    (1,024 B) pass silently, one more input (1,032 B) gets the note."""
    from ml_lib.report import ENGINE_FRAME_BYTES, format_text

    def text(n_in, n_out):
        sizes = {"n_ops": 3, "parameters": 1, "table_bytes": 1, "scratch_bytes": 8, "macs": 1,
                 "stack_bytes_estimate": ENGINE_FRAME_BYTES + 8 * n_in + 4 * n_out}
        return format_text({"name": "m", "target": "kernel", "activation_bits": 8,
                            "sizes": sizes, "report": {}})

    assert "note:" not in text(120, 16)
    assert "note: the input and output structs take 1032 B: too much for a kernel stack" \
        in text(121, 16)


def test_deterministic(conv, work, tmp_path):
    model, xtr, _, _ = conv
    f = _save(model, "export", xtr, work / "conv_det.pt2")
    c = _calib(work, xtr, "calib_conv.npy")
    a = mm.export_ok(tmp_path / "a", f, c)
    b = mm.export_ok(tmp_path / "b", f, c)
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir())
    for n in names:
        assert (a / n).read_bytes() == (b / n).read_bytes(), n


def test_calib_formats(mlp, data, work, tmp_path):
    xtr, _, xte, _ = data
    f = _save(mlp, "export", xtr, work / "mlp.pt2")
    np.savez(work / "c.npz", x=xtr[:300])
    torch.save(torch.tensor(xtr[:300]), work / "c.pt")
    hdr = ",".join(f"feat{i}" for i in range(8))
    np.savetxt(work / "c.csv", xtr[:300], delimiter=",", header=hdr, comments="")
    mans = []
    for c in ("c.npz", "c.pt", "c.csv"):
        out = mm.export_ok(tmp_path / c, f, work / c)
        mans.append(mm.manifest(out))
        _check_classifier(out, mlp, xte, tmp_path, c=False)
    assert mans[2]["features"] == [f"feat{i}" for i in range(8)]


def test_target_user_and_auto(mlp, conv, data, work, tmp_path):
    import onnxruntime as ort
    xtr, _, xte, _ = data
    f = _save(mlp, "export", xtr, work / "mlp.pt2")
    out = mm.export_ok(tmp_path / "u", f, _calib(work, xtr), "--target", "user")
    names = {p.name for p in out.iterdir()}
    assert {"mlp.onnx", "mlp.json"} <= names and not any(n.endswith(".mlb") for n in names)
    man = mm.manifest(out)
    assert man["format"] == "ml_lib-user" and man["target"] == "user"
    from ml_lib.proxy.manifest import load_manifest
    assert load_manifest(out).n_out == 3  # what mlproxyd reads
    sess = ort.InferenceSession(str(out / "mlp.onnx"))
    y = sess.run(None, {"input": xte})[0]
    assert np.abs(y - mm.float_out(mlp, xte)).max() < 1e-4
    # conv model: (N, C, L) inside, (N, n_in) at the proxy boundary
    model, cx, cxte, _ = conv
    fc = _save(model, "export", cx, work / "conv_u.pt2")
    outc = mm.export_ok(tmp_path / "uc", fc, _calib(work, cx, "calib_conv.npy"), "--target", "user")
    y = ort.InferenceSession(str(outc / "conv_u.onnx")).run(None, {"input": cxte.reshape(len(cxte), -1)})[0]
    assert np.abs(y - mm.float_out(model, cxte)).max() < 1e-4
    rc, so, se = mm.run_export([f, "--calib", _calib(work, xtr), "-o", tmp_path / "a1",
                                "--target", "auto", "-q"])
    assert rc == 0 and "target auto: kernel" in so and "<= --max-kernel-bytes 262144" in so
    rc, so, se = mm.run_export([f, "--calib", _calib(work, xtr), "-o", tmp_path / "a2",
                                "--target", "auto", "--max-kernel-bytes", "1000", "-q"])
    assert rc == 0 and "target auto: user" in so and "> --max-kernel-bytes 1000" in so
    assert (tmp_path / "a2" / "mlp.onnx").exists()


def test_kernel_module_builds_w1(conv, work, tmp_path):
    """The generated C and registering module build as a kernel module, W=1, no warnings."""
    if not KDIR:
        pytest.fail("no /lib/modules/*-amd64/build: install linux-headers-amd64 (make setup)")
    model, xtr, _, _ = conv
    f = _save(model, "export", xtr, work / "convmod.pt2")
    out = mm.export_ok(tmp_path, f, _calib(work, xtr, "calib_conv.npy"))
    r = subprocess.run(["make", "-C", str(KDIR[-1]), f"M={out}", "W=1", "KBUILD_MODPOST_WARN=1",
                        f"ML_LIB_INCLUDE={TOP / 'include'}", "modules"], capture_output=True, text=True)
    log = r.stdout + r.stderr
    assert r.returncode == 0, log
    # ml_lib.ko's symbols are resolved at load time; any compiler warning fails
    bad = [ln for ln in log.splitlines() if "warning:" in ln.lower() and "modpost" not in ln]
    assert not bad, "\n".join(bad)
    assert (out / "convmod_ml.ko").exists()


# ---------------------------------------------------------------- regressions (audit)

def _close(out: Path, model, x, tmp: Path, tol=0.05):
    """Integer outputs (mlrun --engine python) within tol of the float output range."""
    ref = mm.float_out(model, x)
    y = mm.mlrun_out(out, x, "python", False, tmp)
    err = np.abs(y.reshape(ref.shape) - ref).max()
    assert err <= tol * np.ptp(ref), f"max |int - float| {err:.4f}, range {np.ptp(ref):.4f}"


@pytest.mark.parametrize("fmt", ["onnx", "onnx-dynamo"])
def test_onnx_clip_with_one_bound(fmt, data, work, tmp_path):
    """torch.clamp(max=m) is ONNX Clip(x, "", m): the empty min input keeps its
    place, so m is the upper bound (it used to become the lower bound, silently,
    in the integer model and in the float ONNX of --target user)."""
    import onnx
    import onnxruntime as ort
    xtr, _, xte, _ = data
    x, xt = (xtr - xtr.mean(0)) / xtr.std(0), (xte - xtr.mean(0)) / xtr.std(0)
    model = mm.ClampOneSide().eval()
    f = _save(model, fmt, x, work / f"clip_{fmt}.onnx")
    clips = [list(n.input) for n in onnx.load(f).graph.node if n.op_type == "Clip"]
    assert any(len(i) > 2 and i[1] == "" for i in clips), clips  # Clip(x, "", max)
    out = mm.export_ok(tmp_path / "k", f, _calib(work, x, "calib_clip.npy"))
    _close(out, model, xt, tmp_path, tol=0.1)  # three untrained int8 layers; was ~0.8
    user = mm.export_ok(tmp_path / "u", f, _calib(work, x, "calib_clip.npy"), "--target", "user")
    (onx,) = user.glob("*.onnx")
    y = ort.InferenceSession(str(onx)).run(None, {"input": xt})[0]
    assert np.abs(y - mm.float_out(model, xt)).max() < 1e-4


def test_onnx_identity_of_constants(data, work, tmp_path):
    """torch.onnx.export(dynamo=False) writes Identity nodes for duplicate weight
    tensors (two equal zero biases; an untrained BatchNorm1d, weight ==
    running_var): constants, evaluated like Constant nodes."""
    import onnx
    xtr, ytr, xte, _ = data
    x, xt = (xtr - xtr.mean(0)) / xtr.std(0), (xte - xtr.mean(0)) / xtr.std(0)
    torch.manual_seed(0)
    for i, model in enumerate([mm.train(mm.SharedZeroBias(), x, ytr, steps=150),
                               torch.nn.Sequential(torch.nn.BatchNorm1d(8),
                                                   torch.nn.Linear(8, 3)).eval()]):
        f = _save(model, "onnx", x, work / f"ident{i}.onnx")
        assert "Identity" in [n.op_type for n in onnx.load(f).graph.node]
        out = mm.export_ok(tmp_path / str(i), f, _calib(work, x, "calib_ident.npy"))
        _close(out, model, xt, tmp_path)


def test_onnx_opset9_avgpool_zero_pad(conv, work, tmp_path):
    """Opset 9/10 AvgPool1d comes as Pad(all zero) -> AveragePool: no padding."""
    import onnx
    _, xtr, xte, _ = conv
    model = torch.nn.Sequential(torch.nn.Conv1d(2, 8, 3), torch.nn.ReLU(), torch.nn.AvgPool1d(2),
                                torch.nn.Flatten(), torch.nn.Linear(8 * 7, 3)).eval()
    f = work / "avg9.onnx"
    torch.onnx.export(model, (torch.tensor(xtr[:2]),), f, dynamo=False, opset_version=9)
    assert "Pad" in [n.op_type for n in onnx.load(f).graph.node]
    out = mm.export_ok(tmp_path, f, _calib(work, xtr, "calib_conv.npy"))
    assert [o["kind"] for o in mm.manifest(out)["ops"]] == \
        ["input", "conv1d", "avgpool1d", "fc", "output"]
    _close(out, model, xte, tmp_path)


@pytest.mark.parametrize("fmt,suffix", [("pickle", ".pt"), ("onnx", ".onnx")])
def test_leaky_relu_slope_zero_is_relu(fmt, suffix, data, work, tmp_path):
    xtr, _, xte, _ = data
    x, xt = (xtr - xtr.mean(0)) / xtr.std(0), (xte - xtr.mean(0)) / xtr.std(0)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.LeakyReLU(0.0),
                                torch.nn.Linear(16, 3)).eval()
    f = _save(model, fmt, x, work / f"leaky0{suffix}")
    out = mm.export_ok(tmp_path, f, _calib(work, x, "calib_leaky0.npy"))
    assert [o["kind"] for o in mm.manifest(out)["ops"]] == ["input", "fc", "fc", "output"]
    _close(out, model, xt, tmp_path)


@pytest.mark.parametrize("how", ["trace", "script"])
def test_torchscript_conv_without_pinned_length(how, conv, work, tmp_path):
    """TS2EPConverter makes every input dimension dynamic; a conv1d model whose
    length no Linear pins (fully convolutional, or conv -> flatten -> linear)
    exports like the same module pickled: a byte-identical blob."""
    _, xtr, xte, _ = conv
    torch.manual_seed(0)
    models = {"fullyconv": torch.nn.Sequential(torch.nn.Conv1d(2, 8, 3), torch.nn.ReLU(),
                                               torch.nn.Conv1d(8, 3, 1)).eval(),
              "strided": torch.nn.Sequential(torch.nn.Conv1d(2, 8, 5, stride=3), torch.nn.ReLU(),
                                             torch.nn.Flatten(), torch.nn.Linear(8 * 4, 3)).eval()}
    c = _calib(work, xtr, "calib_conv.npy")
    for name, model in models.items():
        ts = torch.jit.trace(model, torch.tensor(xtr[:4])) if how == "trace" \
            else torch.jit.script(model)
        torch.jit.save(ts, work / f"ts_{name}_{how}.pt")
        torch.save(model, work / f"ts_{name}_pickle.pt")
        a = mm.export_ok(tmp_path / f"{name}_ts", work / f"ts_{name}_{how}.pt", c, "--name", "m")
        b = mm.export_ok(tmp_path / f"{name}_pk", work / f"ts_{name}_pickle.pt", c, "--name", "m")
        assert mm.manifest(a)["source"]["format"] == "torchscript"
        assert (a / "m.mlb").read_bytes() == (b / "m.mlb").read_bytes()
        _close(a, model, xte, tmp_path)


@pytest.mark.parametrize("bits", ["8", "16"])
def test_dead_unit_exports(bits, data, conv, work, tmp_path):
    """A channel whose weights decayed to ~1e-28 next to an ordinary bias (the
    accumulator units of that bias are ~1e28) used to stop the export with an
    accumulator error that suggested --bits 8 even at --bits 8.  Its weight
    scale is floored so the bias fits; the model exports and stays accurate."""
    xtr, _, xte, _ = data
    x, xt = (xtr - xtr.mean(0)) / xtr.std(0), (xte - xtr.mean(0)) / xtr.std(0)
    torch.manual_seed(0)
    mlp = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    mm.dead_unit(mlp, mlp[0], 5)
    with torch.no_grad():  # the dead unit's constant 0.4 matters to the output
        mlp[2].weight[:, 5] = torch.tensor([2.0, -2.0, 1.0])
    torch.save(mlp, work / "dead_mlp.pt")
    out = mm.export_ok(tmp_path / "mlp", work / "dead_mlp.pt", _calib(work, x, "calib_dead.npy"),
                       "--bits", bits)
    _close(out, mlp, xt, tmp_path)
    again = mm.export_ok(tmp_path / "mlp2", work / "dead_mlp.pt",
                         _calib(work, x, "calib_dead.npy"), "--bits", bits)
    for p in out.iterdir():
        assert p.read_bytes() == (again / p.name).read_bytes(), p.name
    _, cx, cxte, _ = conv
    cnn = torch.nn.Sequential(torch.nn.Conv1d(2, 8, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                              torch.nn.Linear(8 * 14, 3))
    mm.dead_unit(cnn, cnn[0], 2)
    with torch.no_grad():
        cnn[3].weight[:, 2 * 14:3 * 14] = 0.2
    torch.save(cnn, work / "dead_cnn.pt")
    out = mm.export_ok(tmp_path / "cnn", work / "dead_cnn.pt", _calib(work, cx, "calib_conv.npy"),
                       "--bits", bits)
    _close(out, cnn, cxte, tmp_path)


# ---------------------------------------------------------------- user test: CLI defects

def _proxy_answers(out: Path, x: np.ndarray) -> np.ndarray:
    """What mlproxyd answers for rows x: its own model loader (manifest checks and
    the dry run included) and run_raw(), back to floats with the manifest's F."""
    from ml_lib.proxy.daemon import Model
    from ml_lib.proxy.manifest import load_manifest
    man = load_manifest(out)
    y = Model(man).run_raw(man.to_raw(x.reshape(len(x), -1)))
    return y / 2.0**man.frac_bits


def _as_proxy_sees(out: Path, x: np.ndarray) -> np.ndarray:
    """The float rows the proxy feeds its model: x rounded to the raw_scale grid."""
    from ml_lib.proxy.manifest import load_manifest
    man = load_manifest(out)
    return man.to_float(man.to_raw(x.reshape(len(x), -1))).reshape(x.shape)


@pytest.mark.parametrize("target", ["user", "auto"])
def test_user_target_argmax_is_served(target, mlp, data, work, tmp_path):
    """--argmax for the user target: the ONNX ends in the argmax, so mlproxyd's
    loader accepts the folder (n_out 1, kind index) and answers the class the
    float model picks; the kernel target's integer argmax agrees."""
    xtr, _, xte, _ = data
    mlp.head = "softmax"
    try:
        f = _save(mlp, "export", xtr, work / "soft.pt2")
    finally:
        mlp.head = None
    extra = ["--max-kernel-bytes", "1"] if target == "auto" else []
    out = mm.export_ok(tmp_path / "u", f, _calib(work, xtr), "--argmax", "--target", target,
                       *extra)
    man = mm.manifest(out)
    assert man["format"] == "ml_lib-user" and man["n_out"] == 1
    assert man["output_specs"][0]["kind"] == "index"
    calib = xtr[:500]
    y = _proxy_answers(out, calib)
    ref = mm.float_out(mlp, _as_proxy_sees(out, calib)).argmax(-1)
    assert y.shape == (500, 1) and np.array_equal(y.ravel(), ref)
    kern = mm.export_ok(tmp_path / "k", f, _calib(work, xtr), "--argmax")
    yk = mm.mlrun_out(kern, calib, "python", False, tmp_path)
    assert np.mean(yk.ravel() == y.ravel()) >= 0.97


class _ScoresAndClass(torch.nn.Module):
    """Small scores (|y| < 1, so F = 30 fits them) and the class of 4."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc = torch.nn.Linear(4, 4)

    def forward(self, x):
        y = torch.tanh(self.fc(x))
        return y, y.argmax(-1)


def test_user_target_frac_bits_leave_room_for_the_class_index(work, tmp_path):
    """The proxy answers an index as index * 2^F too. With --frac-bits 30 the
    scores fit, but class 3 * 2^30 does not: it used to saturate, and mlrun
    read class 3 as 2. F is lowered until the largest index fits."""
    x = np.random.default_rng(1).normal(0, 2, (400, 4)).astype(np.float32)
    model = _ScoresAndClass().eval()
    f = _save(model, "pickle", x, work / "scores_class.pt")
    out = mm.export_ok(tmp_path / "u", f, _calib(work, x, "calib_sc.npy"), "--target", "user",
                       "--frac-bits", "30")
    man = mm.manifest(out)
    assert [o["kind"] for o in man["output_specs"]] == ["fixed", "index"]
    assert man["frac_bits"] == 29  # 3 * 2^29 <= 2^31 - 1 < 3 * 2^30
    ref = model(torch.tensor(_as_proxy_sees(out, x)))[1].numpy()
    assert 3 in ref.tolist()
    y = _proxy_answers(out, x)
    assert np.array_equal(np.floor(y[:, 4] + 0.5), ref)


class _Wide(torch.nn.Module):
    """1500 inputs in [0, 1000] -> 3 outputs around 3e5, far above 2^15. At --bits 16
    the accumulator bound of 1500 inputs per output overflows s32: no integer model."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc = torch.nn.Linear(1500, 3)
        with torch.no_grad():
            self.fc.weight.uniform_(0.3, 0.5)
            self.fc.weight[1] *= 1.2

    def forward(self, x):
        return self.fc(x)


@pytest.fixture(scope="module")
def wide(work):
    x = np.random.default_rng(0).uniform(0, 1000, (200, 1500)).astype(np.float32)
    model = _Wide().eval()
    torch.save(model, work / "wide.pt")
    return model, work / "wide.pt", _calib(work, x, "calib_wide.npy"), x


def test_float_only_export_lowers_frac_bits(wide, tmp_path):
    """No integer model (user target): F is lowered so the outputs (~3e5) fit s32
    instead of saturating at 32767.99998; --argmax gives index outputs."""
    model, f, calib, x = wide
    rc, so, se = mm.run_export([f, "--calib", calib, "--bits", "16", "--target", "auto",
                                "-o", tmp_path / "e", "-q"])
    assert rc == 0 and "target auto: user (no integer model" in so, se
    man = mm.manifest(tmp_path / "e")
    assert "no integer model" in man["report"]["accuracy_note"]
    ref = mm.float_out(model, x)
    assert np.abs(ref).max() > 2.0**15
    spec = man["output_specs"][0]
    assert spec["kind"] == "fixed" and spec["frac_bits"] == man["frac_bits"] < 16
    assert np.abs(ref).max() * 2.0**man["frac_bits"] <= 2**31 - 1
    y = _proxy_answers(tmp_path / "e", x)
    assert np.abs(y - mm.float_out(model, _as_proxy_sees(tmp_path / "e", x))).max() < 1.0
    # the same with --argmax: one index output, no frac_bits, served by the daemon
    out = mm.export_ok(tmp_path / "a", f, calib, "--bits", "16", "--target", "user", "--argmax")
    man = mm.manifest(out)
    assert [(o["kind"], o["frac_bits"], o["shape"]) for o in man["output_specs"]] == \
        [("index", None, [1])] and man["n_out"] == 1
    y = _proxy_answers(out, x)
    assert np.array_equal(y.ravel(), mm.float_out(model, _as_proxy_sees(out, x)).argmax(-1))


def _snapshot(d: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())} if d.exists() else None


def _export_with_fsize_limit(argv, limit: int):
    """mlexport in a child process that may not write files over `limit` bytes."""
    import resource

    def cap():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return subprocess.run([sys.executable, "-m", "ml_lib.cli.mlexport", *map(str, argv)],
                          capture_output=True, text=True, preexec_fn=cap)


def test_failed_write_leaves_folder_unchanged(mlp, data, work, tmp_path):
    """A write that fails (here the file size limit, as `ulimit -f`) changes
    nothing: a new folder is not created, a previous export and the user's own
    files stay byte for byte, no temporary folder is left; one line names the file."""
    xtr, _, _, _ = data
    f = _save(mlp, "export", xtr, work / "mlp.pt2")
    calib = _calib(work, xtr)
    ref = mm.export_ok(tmp_path / "ref", f, calib)
    biggest = max(p.stat().st_size for p in ref.iterdir())
    argv = [f, "--calib", calib, "-q", "-o"]
    parent = tmp_path / "p"
    parent.mkdir()
    r = _export_with_fsize_limit(argv + [parent / "new"], biggest - 1)
    err = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(err) == 1, r.stderr
    assert err[0].startswith(f"mlexport: error: {parent / 'new'}/") and "File too large" in err[0]
    assert list(parent.iterdir()) == []
    # a previous user export and a file of the user's: a failed kernel export keeps both
    old = mm.export_ok(parent, f, calib, "--target", "user")
    (old / "notes.txt").write_text("mine\n")
    before = _snapshot(old)
    r = _export_with_fsize_limit(argv + [old], biggest - 1)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert _snapshot(old) == before and sorted(p.name for p in parent.iterdir()) == ["out"]


def test_write_failure_in_process(mlp, data, work, tmp_path, monkeypatch):
    """The same with the third file's write failing in process (ENOSPC)."""
    import builtins
    import errno
    xtr, _, _, _ = data
    f = _save(mlp, "export", xtr, work / "mlp.pt2")
    old = mm.export_ok(tmp_path, f, _calib(work, xtr))
    before = _snapshot(old)
    real_open, seen = builtins.open, []

    def failing_open(file, mode="r", *a, **k):
        if "w" in mode and ".mlexport-" in str(file):
            seen.append(file)
            if len(seen) == 3:
                raise OSError(errno.ENOSPC, "No space left on device", str(file))
        return real_open(file, mode, *a, **k)
    monkeypatch.setattr(builtins, "open", failing_open)
    rc, so, se = mm.run_export([f, "--calib", _calib(work, xtr), "-o", old, "-q",
                                "--target", "user"])
    monkeypatch.undo()
    assert rc == 2 and len(se.strip().splitlines()) == 1 and "No space left" in se, se
    assert f"{old}/{Path(seen[-1]).name}: cannot write" in se
    assert _snapshot(old) == before and sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_failed_move_puts_the_previous_export_back(mlp, data, work, tmp_path, monkeypatch):
    """A re-export whose third move into place fails (EIO), and one whose
    blob is in the way as a directory: the folder keeps the previous export
    byte for byte, never half of each (it kept 2 of 6 new files before)."""
    import errno
    import os
    xtr, _, _, _ = data
    f = _save(mlp, "export", xtr, work / "mlp.pt2")
    calib = _calib(work, xtr)
    old = mm.export_ok(tmp_path, f, calib)
    before = _snapshot(old)
    real_replace, moved = os.replace, []

    def failing_replace(src, dst, *a, **k):
        if ".mlexport-" in str(src):
            moved.append(dst)
            if len(moved) == 3:
                raise OSError(errno.EIO, "Input/output error", str(dst))
        return real_replace(src, dst, *a, **k)
    monkeypatch.setattr(os, "replace", failing_replace)
    argv = [f, "--calib", calib, "-o", old, "-q", "--bits", "16"]  # other bytes than before
    rc, so, se = mm.run_export(argv)
    monkeypatch.undo()
    assert rc == 2 and len(se.strip().splitlines()) == 1, se
    assert "cannot move into place: Input/output error (nothing changed in" in se, se
    assert _snapshot(old) == before and sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert mm.run_export(argv)[0] == 0 and _snapshot(old) != before  # it did differ
    mm.export_ok(tmp_path, f, calib)
    before = _snapshot(old)
    (old / "mlp.mlb").unlink()
    (old / "mlp.mlb").mkdir()
    before = {k: v for k, v in before.items() if k != "mlp.mlb"}
    rc, so, se = mm.run_export(argv)
    assert rc == 2 and "mlp.mlb: is a directory, in the way of the exported file" in se, se
    assert {p.name: p.read_bytes() for p in old.iterdir() if p.is_file()} == before


def test_reexport_other_target_removes_previous_files(mlp, data, work, tmp_path):
    """kernel -> user -> kernel in one folder: each export removes the files the
    previous one's manifest lists and it does not write; other files stay."""
    xtr, _, xte, _ = data
    f = _save(mlp, "export", xtr, work / "mlp.pt2")
    calib = _calib(work, xtr)
    out = mm.export_ok(tmp_path, f, calib)
    kernel_files = sorted(p.name for p in out.iterdir())
    assert mm.manifest(out)["files"] == kernel_files
    (out / "notes.txt").write_text("mine\n")
    mm.export_ok(tmp_path, f, calib, "--target", "user")
    user_files = sorted(mm.manifest(out)["files"])
    assert "mlp.onnx" in user_files and "Kbuild" not in user_files
    assert sorted(p.name for p in out.iterdir()) == sorted(user_files + ["notes.txt"])
    _proxy_answers(out, xte)  # mlproxyd serves it
    mm.export_ok(tmp_path, f, calib)
    assert sorted(p.name for p in out.iterdir()) == sorted(kernel_files + ["notes.txt"])
    mm.mlrun_out(out, xte, "python", False, tmp_path)


@pytest.mark.parametrize("names,words", [
    ("a,,b,c,d,e,f,g", ["feature name 2 of 8 is empty"]),
    ("a,b,c,d,e,f,g,", ["feature name 8 of 8 is empty"]),
    ("a,b,c,d,e,f,g, a", ["feature name 'a' is given twice"]),
    # distinct as given, one C field: "a_b" silently became field a_b_2
    ("a-b,a_b,c,d,e,f,g,h", ["feature names 'a-b' and 'a_b' both become the C field a_b"]),
    ("queueLen,queue_len,c,d,e,f,g,h", ["'queueLen' and 'queue_len' both become the C field "
                                        "queue_len"]),
])
def test_features_empty_or_duplicate(names, words, mlp, data, work, tmp_path):
    xtr, _, _, _ = data
    f = _save(mlp, "export", xtr, work / "mlp.pt2")
    rc, so, se = mm.run_export([f, "--calib", _calib(work, xtr), "-o", tmp_path / "o",
                                "--features", names, "-q"])
    assert rc == 2 and len(se.strip().splitlines()) == 1, se
    assert se.startswith(f"mlexport: error: --features {names!r}: ")
    for w in words:
        assert w in se
    assert not (tmp_path / "o").exists()
