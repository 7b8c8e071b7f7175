# SPDX-License-Identifier: GPL-2.0
"""mlexport / mlrun bad input: each error class exits 2 with its own one-line message."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper
from torch import nn

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
import mlexport_models as mm  # noqa: E402

BIN = Path(sys.executable).parent


class Gelu(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return F.gelu(self.fc(x))


class Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        if x.sum() > 0:
            return self.fc(x)
        return -self.fc(x)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("errs")
    torch.manual_seed(0)
    x = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    np.save(d / "calib.npy", x)
    ok = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)).eval()
    torch.save(ok, d / "ok.pt")
    torch.save(ok.state_dict(), d / "state.pt")
    torch.save(Gelu().eval(), d / "gelu.pt")
    torch.save(Branchy().eval(), d / "branchy.pt")
    bad = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)).eval()
    with torch.no_grad():
        bad[2].weight[1, 3] = float("nan")
    torch.save(bad, d / "nan.pt")
    big = nn.Sequential(nn.Linear(4, 2048), nn.ReLU(), nn.Linear(2048, 2)).eval()
    with torch.no_grad():
        big[2].weight.fill_(0.5)  # all weights equal: |w| = 127 in every column
    torch.save(big, d / "overflow.pt")
    bigbias = nn.Sequential(nn.Linear(4, 2), nn.Hardtanh()).eval()
    with torch.no_grad():
        bigbias[0].bias[1] = 1e12  # far beyond s32 next to weights that matter
    torch.save(bigbias, d / "bigbias.pt")
    (d / "notes.txt").write_text("these are not weights\n")
    (d / "junk.pt").write_bytes(os.urandom(256))
    # ONNX: an unsupported node, and a dynamic feature dimension
    w = numpy_helper.from_array(np.ones((4, 3), np.float32), "w")
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["h"], name="proj"),
                           helper.make_node("Exp", ["h"], ["y"], name="my_exp")], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3])], [w])
    onnx.save(helper.make_model(g), d / "exp.onnx")
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"], name="proj")], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", "f"])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3])], [w])
    onnx.save(helper.make_model(g), d / "dyn.onnx")
    np.save(d / "calib5.npy", np.zeros((10, 5), np.float32))
    np.save(d / "calib_bool.npy", np.zeros((10, 4), bool))
    np.save(d / "calib_nan.npy", np.full((10, 4), np.nan, np.float32))
    np.save(d / "calib_1d.npy", np.zeros(4, np.float32))
    return d


def _err(argv) -> str:
    rc, so, se = mm.run_export([str(a) for a in argv])
    assert rc == 2, (so, se)
    lines = se.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mlexport: error: "), se
    assert "Traceback" not in se
    return lines[0]


def test_unsupported_torch_op(files, tmp_path):
    msg = _err([files / "gelu.pt", "--calib", files / "calib.npy", "-o", tmp_path])
    assert "unsupported op 'gelu'" in msg and "supported: Linear" in msg and "Gelu" in msg


def test_unsupported_onnx_op(files, tmp_path):
    msg = _err([files / "exp.onnx", "--calib", files / "calib.npy", "-o", tmp_path])
    assert "unsupported op 'Exp'" in msg and "'my_exp'" in msg and "supported:" in msg


def test_dynamic_shape(files, tmp_path):
    msg = _err([files / "dyn.onnx", "--calib", files / "calib.npy", "-o", tmp_path])
    assert "dynamic shape" in msg and "'f'" in msg


def test_dynamic_shape_torch_export(files, tmp_path):
    conv = nn.Sequential(nn.Conv1d(2, 4, 3), nn.ReLU()).eval()
    dyn = {"input": {0: torch.export.Dim("batch"), 2: torch.export.Dim("L", min=4, max=64)}}
    ep = torch.export.export(conv, (torch.zeros(4, 2, 16),), dynamic_shapes=dyn)
    torch.export.save(ep, tmp_path / "dyn.pt2")
    np.save(tmp_path / "c.npy", np.zeros((8, 2, 16), np.float32))
    msg = _err([tmp_path / "dyn.pt2", "--calib", tmp_path / "c.npy", "-o", tmp_path / "o"])
    assert "dynamic shape" in msg and "dimension 2" in msg


class BatchScaled(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(x) * x.size(0)


def test_batch_size_dependence(files, tmp_path):
    ep = torch.export.export(BatchScaled().eval(), (torch.zeros(4, 4),),
                             dynamic_shapes={"x": {0: torch.export.Dim("batch")}})
    torch.export.save(ep, tmp_path / "bs.pt2")
    msg = _err([tmp_path / "bs.pt2", "--calib", files / "calib.npy", "-o", tmp_path / "o"])
    assert "computes with its batch size" in msg


def test_data_dependent_control_flow(files, tmp_path):
    msg = _err([files / "branchy.pt", "--calib", files / "calib.npy", "-o", tmp_path])
    assert "data-dependent control flow" in msg


def test_nan_weights(files, tmp_path):
    msg = _err([files / "nan.pt", "--calib", files / "calib.npy", "-o", tmp_path])
    assert "NaN or Inf" in msg and "weights" in msg


@pytest.mark.parametrize("calib,words", [
    ("calib5.npy", ["shape (5,)", "does not fit the model"]),
    ("calib_bool.npy", ["integer or float numbers", "bool"]),
    ("calib_nan.npy", ["NaN or Inf"]),
    ("calib_1d.npy", ["(rows, features)"]),
])
def test_bad_calibration(files, tmp_path, calib, words):
    msg = _err([files / "ok.pt", "--calib", files / calib, "-o", tmp_path])
    for w in words:
        assert w in msg


def test_directories_and_calib_keys(files, tmp_path):
    msg = _err([tmp_path, "--calib", files / "calib.npy", "-o", tmp_path / "o"])
    assert "is a directory, not a model file" in msg
    msg = _err([files / "ok.pt", "--calib", tmp_path, "-o", tmp_path / "o"])
    assert "is a directory" in msg
    x = np.load(files / "calib.npy")
    np.savez(tmp_path / "c.npz", a=x, b=x)
    torch.save({"a": torch.from_numpy(x)}, tmp_path / "c.pt")
    torch.save(torch.from_numpy(x), tmp_path / "t.pt")
    ok = [files / "ok.pt", "-o", tmp_path / "o", "--calib-key"]
    assert "has no array 'zz' (has a, b)" in _err(ok + ["zz", "--calib", tmp_path / "c.npz"])
    assert "a dict without 'zz' (has a)" in _err(ok + ["zz", "--calib", tmp_path / "c.pt"])
    assert "holds one tensor" in _err(ok + ["a", "--calib", tmp_path / "t.pt"])
    assert "holds one array" in _err(ok + ["a", "--calib", files / "calib.npy"])
    rc, _, se = mm.run_export(ok + ["b", "--calib", tmp_path / "c.npz", "-q"])
    assert rc == 0, se


def test_output_folder_of_another_model_and_bad_budget(files, tmp_path):
    ok = [files / "ok.pt", "--calib", files / "calib.npy", "-o", tmp_path / "o", "-q"]
    assert mm.run_export(ok)[0] == 0
    assert mm.run_export(ok)[0] == 0  # the same model again: fine, byte-identical
    msg = _err(ok + ["--name", "other"])
    assert "already holds the export of model 'ok'" in msg
    assert "must be positive" in _err(ok + ["--target", "auto", "--max-kernel-bytes", "-5"])


def test_missing_calibration(files, tmp_path):
    msg = _err([files / "ok.pt", "-o", tmp_path])
    assert "--calib FILE is required" in msg and "value ranges" in msg


def test_accumulator_overflow(files, tmp_path):
    msg = _err([files / "overflow.pt", "--calib", files / "calib.npy", "--bits", "16",
                "-o", tmp_path])
    assert "accumulator could overflow" in msg and "layer 2 (Linear" in msg
    assert "use --bits 8" in msg and "2048 inputs per output" in msg
    # int8 activations keep the same layer within the bound
    rc, so, se = mm.run_export([files / "overflow.pt", "--calib", files / "calib.npy", "-q",
                                "-o", tmp_path / "ok8"])
    assert rc == 0, se
    # already at 8 bits: the message does not suggest --bits 8
    msg = _err([files / "bigbias.pt", "--calib", files / "calib.npy", "-o", tmp_path / "b8"])
    assert "accumulator could overflow" in msg and "layer 0 (Linear" in msg
    assert "channel 1" in msg and "--bits" not in msg and "smaller weights/bias" in msg


@pytest.mark.parametrize("name", ["notes.txt", "junk.pt", "state.pt", "missing.pt"])
def test_not_a_model(files, tmp_path, name):
    msg = _err([files / name, "--calib", files / "calib.npy", "-o", tmp_path])
    want = {"notes.txt": "not a model", "junk.pt": "not a model", "state.pt": "state_dict",
            "missing.pt": "no such file"}[name]
    assert want in msg


def test_bad_name(files, tmp_path):
    msg = _err([files / "ok.pt", "--calib", files / "calib.npy", "--name", "9 lives",
                "-o", tmp_path])
    assert "not a C identifier" in msg


def test_name_case(files, tmp_path):
    msg = _err([files / "ok.pt", "--calib", files / "calib.npy", "--name", "LinnOS", "-o", tmp_path])
    assert "use lower case" in msg and "--name linnos" in msg
    # a default name from the file name is lower-cased
    (tmp_path / "MyModel.pt").write_bytes((files / "ok.pt").read_bytes())
    rc, _, se = mm.run_export([tmp_path / "MyModel.pt", "--calib", files / "calib.npy",
                               "-o", tmp_path / "o", "-q"])
    assert rc == 0 and (tmp_path / "o" / "mymodel.json").exists(), se


def test_reserved_name(files, tmp_path):
    # ml_lib_run() / ml_lib_infer() would clash with the library's own symbols
    msg = _err([files / "ok.pt", "--calib", files / "calib.npy", "--name", "ml_lib", "-o", tmp_path])
    assert "reserved" in msg and "--name" in msg
    (tmp_path / "ml_lib.pt").write_bytes((files / "ok.pt").read_bytes())
    msg = _err([tmp_path / "ml_lib.pt", "--calib", files / "calib.npy", "-o", tmp_path / "o"])
    assert "'ml_lib'" in msg and "reserved" in msg
    # upper case: the reservation, not advice to use the (also reserved) lower-case name
    msg = _err([files / "ok.pt", "--calib", files / "calib.npy", "--name", "ML_LIB", "-o", tmp_path])
    assert "reserved" in msg and "--name ml_lib" not in msg
    # model x builds x_ml.ko from x.c and x_mod.c: x_ml and x_mod would reuse those files
    for name in ("a_ml", "a_mod"):
        msg = _err([files / "ok.pt", "--calib", files / "calib.npy", "--name", name, "-o", tmp_path])
        assert f"'{name}'" in msg and "_ml or _mod are reserved" in msg


def test_bad_output_directory(files, tmp_path):
    (tmp_path / "afile").write_text("")
    msg = _err([files / "ok.pt", "--calib", files / "calib.npy", "-o", tmp_path / "afile"])
    assert "afile: exists and is not a directory" in msg
    msg = _err([files / "ok.pt", "--calib", files / "calib.npy", "-o", tmp_path / "afile" / "sub"])
    assert "afile/sub: Not a directory" in msg
    # a directory that cannot be created (procfs refuses, for root too)
    msg = _err([files / "ok.pt", "--calib", files / "calib.npy", "-o", "/proc/self/ml_lib_out"])
    assert msg.endswith("/proc/self/ml_lib_out: No such file or directory")


def test_console_script_debug_traceback(files, tmp_path):
    """The installed console script: one line without --debug, the traceback with it."""
    cmd = [str(BIN / "mlexport"), str(files / "gelu.pt"), "--calib", str(files / "calib.npy"),
           "-o", str(tmp_path)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert [ln for ln in r.stderr.splitlines() if ln.strip() and "Warning" not in ln
            and not ln.startswith("  ")] == [r.stderr.strip().splitlines()[-1]]
    r = subprocess.run(cmd + ["--debug"], capture_output=True, text=True)
    assert r.returncode != 0 and "Traceback" in r.stderr and "UserError" in r.stderr


def _option_helps(help_text: str) -> dict[str, str]:
    """{option: its help text} from the "options:" section of argparse's --help."""
    body = help_text.split("\noptions:\n", 1)[1].split("\nexamples:", 1)[0]
    helps: dict[str, str] = {}
    opt = None
    for ln in body.splitlines():
        if m := re.match(r"^  (-[^\s,]+)", ln):
            opt = m.group(1)
            helps[opt] = ln[m.end():]
        elif opt:
            helps[opt] += " " + ln.strip()
    return helps


def test_help_documents_every_option():
    for prog in ("mlexport", "mlrun"):
        r = subprocess.run([str(BIN / prog), "--help"], capture_output=True, text=True)
        assert r.returncode == 0 and "examples:" in r.stdout
        helps = _option_helps(r.stdout)
        helps.pop("-h")
        assert len(helps) >= 4, helps
        # every option's own help carries an example ("e.g.")
        for o, h in helps.items():
            assert "e.g." in h, f"{prog} {o} has no example: {h!r}"
    # the parser really sees each option's own text (it would pass nothing vacuously)
    helps = _option_helps("usage: x\n\noptions:\n  -h, --help  help\n  --a A  first (e.g. 1)\n"
                          "  --b       second,\n            more\n\nexamples:\n  x\n")
    assert helps == {"-h": ", --help  help", "--a": " A  first (e.g. 1)", "--b": "       second, more"}
    r = subprocess.run([str(BIN / "mlexport"), "--help"], capture_output=True, text=True)
    assert "weights_only=False" in r.stdout.replace("\n", " ")


def test_work_budget(tmp_path):
    """FC 4096 -> 4096 is 4096 * (4096 + 8) = 16,809,984 work units, over the 2^24 =
    16,777,216 the loader allows: refused for the kernel. A small model's report
    gives its work by the same formula."""
    torch.manual_seed(0)
    np.save(tmp_path / "calib.npy", np.random.default_rng(0).normal(size=(32, 4096)).astype(np.float32))
    for n_out in (4096, 16):
        torch.save(nn.Linear(4096, n_out).eval(), tmp_path / f"w{n_out}.pt")
    argv = [tmp_path / "w4096.pt", "--calib", tmp_path / "calib.npy", "--target", "kernel",
            "-o", tmp_path / "o4096", "-q"]
    msg = _err(argv)
    assert "work" in msg and str(2**24) in msg, msg
    rc, so, se = mm.run_export([str(tmp_path / "w16.pt"), "--calib", str(tmp_path / "calib.npy"),
                                "-o", str(tmp_path / "o16")])
    assert rc == 0, se
    # INPUT 16 * 4096 + FC 16 * (4096 + 8) + OUTPUT 8 * 16 = 131,328 = 0.78 % of 2^24
    assert mm.manifest(tmp_path / "o16")["sizes"]["work_units"] == 16 * 4096 + 16 * 4104 + 8 * 16
    assert "work 131328 units, 0.78% of the 2^24" in so, so


# ---------------------------------------------------------------- model frontends

def _agrees_with_float(out: Path, model, x: np.ndarray, tmp: Path, min_agree=0.97):
    """Decisions of `mlrun --engine python` vs the float model on the rows; python == C."""
    ref = mm.float_out(model, x)
    y = mm.mlrun_out(out, x, "python", False, tmp)
    agree = np.mean(y.argmax(-1) == ref.argmax(-1))
    assert agree >= min_agree, f"argmax agreement {agree:.3f}"
    a = mm.mlrun_out(out, x, "python", True, tmp)
    b = mm.mlrun_out(out, x, "c", True, tmp)
    assert a.dtype == np.int32 and np.array_equal(a, b)


def test_skl2onnx_string_labels(tmp_path):
    """A classifier trained on string labels: the labels reach the manifest as strings."""
    from skl2onnx import to_onnx
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    x, y = mm.blobs(600, 0)
    names = np.array(["fast", "slow", "stuck"])[y]
    clf = make_pipeline(StandardScaler(), MLPClassifier((16,), max_iter=300, random_state=0))
    clf.fit(x, names)
    f = tmp_path / "skl_str.onnx"
    f.write_bytes(to_onnx(clf, x[:1]).SerializeToString())
    np.save(tmp_path / "calib.npy", x)
    out = mm.export_ok(tmp_path, f, tmp_path / "calib.npy")
    man = mm.manifest(out)
    assert man["classes"] == ["fast", "slow", "stuck"]
    assert man["outputs"] == ["label", "probability"]
    got = mm.mlrun_out(out, x, "python", False, tmp_path)
    labels = np.array(man["classes"])[got["label"].ravel()]
    assert np.mean(labels == clf.predict(x)) >= 0.97


def test_pickled_model_with_two_inputs(files, tmp_path):
    torch.save(mm.TwoInputs().eval(), tmp_path / "twoin.pt")
    msg = _err([tmp_path / "twoin.pt", "--calib", files / "calib.npy", "-o", tmp_path / "o"])
    assert "takes 2 tensor inputs (x, y); ml_lib models take exactly one" in msg
    # the same from TorchScript (the schema says so before any conversion)
    torch.jit.save(torch.jit.script(mm.TwoInputs().eval()), tmp_path / "twoin_ts.pt")
    msg = _err([tmp_path / "twoin_ts.pt", "--calib", files / "calib.npy", "-o", tmp_path / "o"])
    assert "takes 2 tensor inputs (x, y); ml_lib models take exactly one" in msg
    # a TypeError raised inside a one-input forward is the model's own bug: not
    # taken for a second input, and named as such (the traceback with --debug)
    torch.save(mm.InnerTypeError().eval(), tmp_path / "inner.pt")
    msg = _err([tmp_path / "inner.pt", "--calib", files / "calib.npy", "-o", tmp_path / "o"])
    assert msg == ("mlexport: error: the model's forward() failed on the calibration data: "
                   "TypeError: object of type 'int' has no len()")


def test_damaged_torchscript_archive(files, tmp_path):
    import zipfile
    ok = torch.load(files / "ok.pt", weights_only=False)
    torch.jit.save(torch.jit.trace(ok, torch.zeros(2, 4)), tmp_path / "ts.pt")
    with zipfile.ZipFile(tmp_path / "ts.pt") as zi, \
            zipfile.ZipFile(tmp_path / "ts_broken.pt", "w") as zo:
        for n in zi.namelist():
            if not n.endswith("data.pkl"):
                zo.writestr(n, zi.read(n))
    msg = _err([tmp_path / "ts_broken.pt", "--calib", files / "calib.npy", "-o", tmp_path / "o"])
    assert "ts_broken.pt: not a TorchScript model torch can load" in msg
    assert "data.pkl" in msg and "damaged or incomplete" in msg


@pytest.mark.parametrize("kind", ["bn", "rsub", "conv"])
def test_negative_input_scale_folded(kind, tmp_path):
    """A negative input-normalisation scale (BatchNorm first with gamma < 0, or c - x)
    goes into the first layer's weights: exported, and it agrees with the float model."""
    if kind == "conv":
        x, y = mm.sequences(600, 0)
        model = mm.train(mm.BNFirstConv(), x, y, steps=200)
        model = mm.negate_bn_channels(model, model.bn, model.conv, [1])
    else:
        x, y = mm.blobs(800, 0)
        if kind == "bn":
            model = mm.train(mm.BNFirstMLP(), x, y)
            model = mm.negate_bn_channels(model, model.bn, model.fc1, [2, 5])
        else:
            model = mm.train(mm.ReversedInput(x), x, y)
    assert kind == "rsub" or (model.bn.weight < 0).any()
    torch.save(model, tmp_path / "m.pt")
    np.save(tmp_path / "calib.npy", x)
    out = mm.export_ok(tmp_path, tmp_path / "m.pt", tmp_path / "calib.npy")
    assert mm.manifest(out)["ops"][0]["kind"] == "input"
    _agrees_with_float(out, model, x, tmp_path)


def test_negative_input_scale_refused(files, tmp_path):
    """relu(c - x): the negated input reaches a ReLU; the message names the features."""
    torch.save(mm.NegReluFirst().eval(), tmp_path / "neg.pt")
    msg = _err([tmp_path / "neg.pt", "--calib", files / "calib.npy", "-o", tmp_path / "o",
                "--features", "rate,size,lat,depth"])
    assert "input features 0 ('rate'), 1 ('size'), 2 ('lat'), 3 ('depth')" in msg
    assert "negative scale" in msg and "feeds relu" in msg and "negate the feature" in msg


@pytest.mark.parametrize("fmt", ["pickle", "onnx"])
def test_conv1d_padding_same(fmt, tmp_path):
    x, y = mm.sequences(600, 0)
    model = mm.train(mm.SamePadConv(k=5), x, y, steps=150)
    f = tmp_path / ("m.pt" if fmt == "pickle" else "m.onnx")
    if fmt == "pickle":
        torch.save(model, f)
    else:  # written with auto_pad SAME_UPPER
        torch.onnx.export(model, (torch.tensor(x[:4]),), f, dynamo=False)
    np.save(tmp_path / "calib.npy", x)
    out = mm.export_ok(tmp_path, f, tmp_path / "calib.npy")
    assert "conv1d" in [o["kind"] for o in mm.manifest(out)["ops"]]
    _agrees_with_float(out, model, x, tmp_path)


def test_conv1d_padding_same_asymmetric(tmp_path):
    """An even kernel pads one more on the right: refused with what to do."""
    x, _ = mm.sequences(40, 0)
    torch.save(mm.SamePadConv(k=4).eval(), tmp_path / "m.pt")
    np.save(tmp_path / "calib.npy", x)
    msg = _err([tmp_path / "m.pt", "--calib", tmp_path / "calib.npy", "-o", tmp_path / "o"])
    assert "conv1d padding='same' with dilation*(kernel-1) = 3, odd" in msg
    assert "use an odd kernel size or an integer padding" in msg and "conv (Conv1d" in msg


def test_onnx_missing_external_data(files, tmp_path):
    ok = torch.load(files / "ok.pt", weights_only=False)
    torch.onnx.export(ok, (torch.zeros(2, 4),), tmp_path / "m.onnx", dynamo=False)
    m = onnx.load(tmp_path / "m.onnx")
    onnx.save(m, tmp_path / "ext.onnx", save_as_external_data=True, location="ext.weights",
              size_threshold=0)
    assert (tmp_path / "ext.weights").exists()
    rc, _, se = mm.run_export([tmp_path / "ext.onnx", "--calib", files / "calib.npy",
                               "-o", tmp_path / "o1", "-q"])
    assert rc == 0, se
    (tmp_path / "ext.weights").unlink()
    msg = _err([tmp_path / "ext.onnx", "--calib", files / "calib.npy", "-o", tmp_path / "o2"])
    assert f"external data file {tmp_path / 'ext.weights'}, which does not exist" in msg
    assert "not an ONNX model" not in msg


@pytest.mark.parametrize("text, words", [
    ("a,b\n", "no data rows (only a header)"),
    ("", "no data rows"),
    ("a,b\n1,2\n3\n", "data row 2 has 1 cells, the header has 2"),
    ("1,2\n3,4,5\n", "data row 2 has 3 cells, row 1 has 2"),
])
def test_calib_csv_shape_errors(tmp_path, text, words):
    """A header-only, empty or ragged CSV: said as such, not as a shape or a bad cell."""
    from ml_lib.errors import UserError
    from ml_lib.quantize import calib
    p = tmp_path / "c.csv"
    p.write_text(text)
    with pytest.raises(UserError, match=re.escape(words)):
        calib.load(str(p))


class _DictOut(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)
        self.head = nn.Linear(4, 1)

    def forward(self, x):
        return {"logits": self.fc(x), "score": torch.sigmoid(self.head(x))}


def test_dict_outputs_keep_their_keys(tmp_path):
    """A model returning {"logits": ..., "score": ...}: the outputs are named by the keys
    in the manifest and in the generated C, not output0/output1."""
    torch.manual_seed(0)
    m = _DictOut().eval()
    x = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    torch.save(m, tmp_path / "dict_out.pt")
    np.save(tmp_path / "calib.npy", x)
    out = mm.export_ok(tmp_path, tmp_path / "dict_out.pt", tmp_path / "calib.npy")
    assert [o["name"] for o in mm.manifest(out)["output_specs"]] == ["logits", "score"]
    header = (out / "dict_out.h").read_text()
    assert "logits" in header and "score" in header and "output0" not in header


def _gemm_model(path, bias, nodes_extra=(), order=None):
    """x[n, 4] -> Gemm(w 3x4, transB) with bias C -> Relu -> y[n, 3]."""
    w = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(3, 4) / 10, "w")
    inits = [w] + ([numpy_helper.from_array(np.asarray(bias, np.float32), "c")]
                   if bias is not None else [])
    nodes = [helper.make_node("Gemm", ["x", "w"] + (["c"] if bias is not None else []), ["h"],
                              name="fc", transB=1),
             helper.make_node("Relu", ["h"], ["y"], name="act"), *nodes_extra]
    if order:
        nodes = [nodes[i] for i in order]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(m, path)
    return m


def test_onnx_gemm_bias_shapes(files, tmp_path):
    """Gemm's C broadcasts to (batch, N): (1, N) is as valid as (N,) (it used
    to end in a numpy traceback); a C of the wrong length is one line."""
    calib = tmp_path / "calib.npy"
    np.save(calib, np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32))
    outs = {}
    for name, bias in (("flat", [0.5, -1, 2]), ("row", [[0.5, -1, 2]])):
        _gemm_model(tmp_path / f"{name}.onnx", bias)
        rc, so, se = mm.run_export([str(tmp_path / f"{name}.onnx"), "--calib", str(calib),
                                    "-o", str(tmp_path / name), "--name", "g"])
        assert rc == 0, se
        outs[name] = (tmp_path / name / "g.mlb").read_bytes()
    assert outs["flat"] == outs["row"]
    _gemm_model(tmp_path / "short.onnx", [0.5, -1])
    msg = _err([tmp_path / "short.onnx", "--calib", calib, "-o", tmp_path / "o"])
    assert "Gemm bias C of shape [2] does not broadcast to its 3 outputs" in msg


def test_onnx_graph_that_breaks_the_checker(files, tmp_path):
    """What graph surgery leaves behind: nodes out of order, a node reading a
    tensor nothing produces, an initializer of an unknown data type. Each
    used to end in a KeyError traceback."""
    calib = tmp_path / "calib.npy"
    np.save(calib, np.zeros((8, 4), np.float32))
    _gemm_model(tmp_path / "unsorted.onnx", [0, 0, 0], order=[1, 0])
    msg = _err([tmp_path / "unsorted.onnx", "--calib", calib, "-o", tmp_path / "o"])
    assert "unsorted.onnx: invalid ONNX model: Nodes in a graph must be topologically sorted" in msg
    m = _gemm_model(tmp_path / "dangling.onnx", [0, 0, 0])
    m.graph.node[1].input[0] = "nowhere"
    onnx.save(m, tmp_path / "dangling.onnx")
    msg = _err([tmp_path / "dangling.onnx", "--calib", calib, "-o", tmp_path / "o"])
    assert "invalid ONNX model" in msg and "'nowhere'" in msg
    m = _gemm_model(tmp_path / "dtype.onnx", [0, 0, 0])
    m.graph.initializer[1].data_type = 32  # no such TensorProto type
    onnx.save(m, tmp_path / "dtype.onnx")
    msg = _err([tmp_path / "dtype.onnx", "--calib", calib, "-o", tmp_path / "o"])
    assert "'c'" in msg and "data_type 32" in msg


def _flip(src: Path, dst: Path, at: int) -> None:
    data = bytearray(src.read_bytes())
    data[at] ^= 0x5A
    dst.write_bytes(bytes(data))


def test_bit_flipped_torchscript_is_one_line(files, tmp_path):
    """A flipped byte inside a TorchScript member: torch's loaders do not
    check CRCs, so this copy was exported as if nothing were wrong (flips in
    other members aborted the process, exit 134); mlexport checks every
    member's CRC first."""
    import zipfile
    ok = torch.load(files / "ok.pt", weights_only=False)
    torch.jit.save(torch.jit.trace(ok, torch.zeros(2, 4)), tmp_path / "ts.pt")
    with zipfile.ZipFile(tmp_path / "ts.pt") as z:
        info = next(i for i in z.infolist() if i.filename.endswith(".debug_pkl") and i.file_size > 64)
    # the member's data: after its local header (30 bytes, name, extra field)
    head = (tmp_path / "ts.pt").read_bytes()[info.header_offset:info.header_offset + 30]
    start = info.header_offset + 30 + int.from_bytes(head[26:28], "little") \
        + int.from_bytes(head[28:30], "little")
    _flip(tmp_path / "ts.pt", tmp_path / "flipped.pt", start + info.compress_size // 2)
    msg = _err([tmp_path / "flipped.pt", "--calib", files / "calib.npy", "-o", tmp_path / "o"])
    assert f"damaged archive: member {info.filename} fails its CRC check" in msg


def test_bit_flipped_archives_are_user_errors(files, tmp_path):
    """One flipped byte anywhere in a torch.save or torch.export archive:
    detecting the format either succeeds (a byte no reader looks at) or is
    a one-line UserError, never another exception (a UnicodeDecodeError or
    BadZipFile traceback before)."""
    from ml_lib.errors import UserError
    from ml_lib.frontend import detect_format
    ok = torch.load(files / "ok.pt", weights_only=False)
    torch.export.save(torch.export.export(ok, (torch.zeros(1, 4),)), tmp_path / "ok.pt2")
    refused = 0
    for src in (files / "ok.pt", tmp_path / "ok.pt2"):
        n = src.stat().st_size
        for k in range(97):
            at = (k * 7919) % n
            _flip(src, tmp_path / "f.bin", at)
            try:
                detect_format(str(tmp_path / "f.bin"))
            except UserError as e:
                assert "\n" not in str(e)
                refused += 1
    assert refused > 97  # most bytes are under a CRC or in the zip directory


def test_float64_model_exports_like_float32(files, tmp_path):
    """A model kept in float64 (or float16) used to be refused as "calibration
    data ... does not fit the model: mat1 and mat2 must have the same dtype";
    it is traced in float32, like the calibration data."""
    ok = torch.load(files / "ok.pt", weights_only=False)
    torch.save(ok.double(), tmp_path / "f64.pt")
    blobs = []
    for f in (files / "ok.pt", tmp_path / "f64.pt"):
        out = tmp_path / f.stem
        rc, so, se = mm.run_export([str(f), "--calib", str(files / "calib.npy"), "-o", str(out),
                                    "--name", "m", "-q"])
        assert rc == 0, se
        blobs.append((out / "m.mlb").read_bytes())
    assert blobs[0] == blobs[1]


class _Boom(nn.Module):
    def forward(self, x):
        raise KeyError("feature_table")


def test_checkpoint_dict_and_failing_forward_name_the_cause(files, tmp_path):
    ok = torch.load(files / "ok.pt", weights_only=False)
    torch.save({"model": ok, "epoch": 3}, tmp_path / "ckpt.pt")
    msg = _err([tmp_path / "ckpt.pt", "--calib", files / "calib.npy", "-o", tmp_path / "o"])
    assert "holds a dict (a checkpoint?) with the model under key 'model'" in msg
    assert "torch.save(ckpt['model'])" in msg
    torch.save({"epoch": 3, "lr": 0.1}, tmp_path / "meta.pt")
    msg = _err([tmp_path / "meta.pt", "--calib", files / "calib.npy", "-o", tmp_path / "o"])
    assert "holds a dict of 2 entries (a checkpoint?), not a model" in msg
    # a forward() that fails for its own reasons is not blamed on the calibration data
    from ml_lib.errors import UserError
    from ml_lib.frontend.torch_import import export_module
    with pytest.raises(UserError) as e:
        export_module(_Boom(), torch.zeros(2, 4))
    assert str(e.value) == ("the model's forward() failed on the calibration data: "
                            "KeyError: 'feature_table'")


def test_pickled_model_as_calibration_file(files, tmp_path):
    msg = _err([files / "ok.pt", "--calib", files / "ok.pt", "-o", tmp_path / "o"])
    assert msg.endswith("calibration file " + str(files / "ok.pt") + ": holds more than tensors "
                        "(a pickled model?); save the calibration inputs as a tensor, .npy "
                        "or .csv")
    assert "\x1b[" not in msg  # torch's message carried terminal escapes


def test_model_file_changed_while_loading_is_refused(files, tmp_path, monkeypatch):
    """The manifest's source.sha256 must name the file that was exported: a
    file rewritten while mlexport reads it is refused, nothing written."""
    from ml_lib import frontend
    model = tmp_path / "ok.pt"
    model.write_bytes((files / "ok.pt").read_bytes())
    load = frontend.load

    def load_then_rewrite(path, sample):
        res = load(path, sample)
        with open(model, "ab") as f:  # the trainer saves again meanwhile
            f.write(b"\0")
        return res
    monkeypatch.setattr(frontend, "load", load_then_rewrite)
    msg = _err([model, "--calib", files / "calib.npy", "-o", tmp_path / "out"])
    assert "changed while it was being loaded" in msg
    assert not (tmp_path / "out").exists()


def test_manifest_names_the_model_file_and_the_blob(files, tmp_path):
    import hashlib
    rc, _, se = mm.run_export([files / "ok.pt", "--calib", files / "calib.npy",
                               "-o", tmp_path / "out", "-q"])
    assert rc == 0, se
    man = mm.manifest(tmp_path / "out")
    assert man["source"]["sha256"] == hashlib.sha256((files / "ok.pt").read_bytes()).hexdigest()
    assert man["blob_sha256"] == hashlib.sha256((tmp_path / "out" / "ok.mlb").read_bytes()).hexdigest()
