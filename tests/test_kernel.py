"""ml_lib in a booted Debian kernel (virtme-ng, QEMU TCG), against the Python reference.

Every booted run also fails if the guest kernel log has a WARNING, BUG,
KASAN, UBSAN or Oops line (ml_lib.kernel.boot checks it). Boots are slow
(~40-80 s under TCG), so each test batches its models into one boot.
"""
import hashlib
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from ml_lib import kernel, reference
from ml_lib.blob import read_blob, write_blob
from ml_lib.codegen import generate
from ml_lib.errors import UserError
from ml_lib.ir import OP_SPECS
from ml_lib.kernel import gen_vectors
from ml_lib.randgraph import random_case

# run_exported() end to end (build, boot, infer) is exercised through the real
# `mlrun --engine kernel` in tests/test_kernel_mlrun.py.

#: seeds of random graphs; together with the vector models they use every op
SEEDS = list(range(100, 116))


def _models():
    rng = np.random.default_rng(gen_vectors.SEED)
    out = []
    for build in gen_vectors.MODELS:
        g = build(rng)
        out.append((g, gen_vectors.raw_rows(rng, g.n_in)))
    out += [random_case(s) for s in SEEDS]
    return out


def _assert_equal(name, got, want):
    assert got.dtype == np.int32 and got.shape == want.shape, (name, got.shape, want.shape)
    bad = np.argwhere(got != want)
    assert not bad.size, (f"{name}: {len(bad)} values differ from the reference, first at "
                          f"row/col {bad[0].tolist()}: kernel {got[tuple(bad[0])]}, "
                          f"python {want[tuple(bad[0])]}")


def test_bad_bad_log_lines_are_caught():
    ok = "[    0.77] PCI: Using host bridge windows from ACPI; if necessary ... report a bug"
    assert not kernel.BAD_LOG.search(ok)
    for line in ("[ 3.1] WARNING: CPU: 0 PID: 1 at lib/ml/model.c:10", "[ 3.1] BUG: KASAN: "
                 "slab-out-of-bounds in ml_lib_run", "[ 3.1] UBSAN: shift-out-of-bounds in x.c",
                 "[ 3.1] Oops: 0000 [#1] SMP"):
        assert kernel.BAD_LOG.search(line), line


def test_run_exported_rejects_bad_dirs(tmp_path):
    raw = np.zeros((1, 3), np.int64)
    with pytest.raises(UserError, match="no such directory"):
        kernel.run_exported(tmp_path / "missing", raw)
    with pytest.raises(UserError, match="_mod.c"):
        kernel.run_exported(tmp_path, raw)
    (tmp_path / "m_mod.c").write_text("")
    with pytest.raises(UserError, match="m.c is missing"):
        kernel.run_exported(tmp_path, raw)
    (tmp_path / "m.c").write_text("")
    (tmp_path / "m.h").write_text("")
    with pytest.raises(UserError, match="cannot read m.mlb"):
        kernel.run_exported(tmp_path, raw)


def test_check_sha256_refuses_another_model():
    blob = b"MLLB" + bytes(76)
    kernel.check_sha256("m", hashlib.sha256(blob).hexdigest(), blob)
    with pytest.raises(kernel.KernelError, match="does not run the exported model"):
        kernel.check_sha256("m", hashlib.sha256(blob + b"x").hexdigest(), blob)
    with pytest.raises(kernel.KernelError, match="sha256 None"):
        kernel.check_sha256("m", None, blob)


def test_kernel_version_is_the_installed_debian_one(monkeypatch):
    """The version Debian's linux-headers-amd64 and linux-image-amd64 point at, asked of
    dpkg rather than found the way kernel_version() finds it (never `uname -r`, and not
    the PREEMPT_RT flavour that `make check-rt` installs beside it)."""
    monkeypatch.delenv("ML_LIB_KVER", raising=False)
    monkeypatch.delenv("ML_LIB_KTREE", raising=False)
    want = set()
    for pkg in ("linux-headers-amd64", "linux-image-amd64"):
        dep = subprocess.run(["dpkg-query", "-W", "-f=${Depends}", pkg], capture_output=True,
                             text=True, check=True).stdout
        want.add(re.search(r"linux-(?:headers|image)-(\S+-amd64)", dep)[1])
    assert len(want) == 1, want
    assert kernel.kernel_version() == want.pop()


def test_kernel_version_override(monkeypatch):
    """$ML_LIB_KVER picks the kernel (make check-rt); one not installed is a clear error."""
    default = kernel.default_kernel_version()
    monkeypatch.setenv("ML_LIB_KVER", default)
    assert kernel.kernel_version() == default
    monkeypatch.setenv("ML_LIB_KVER", "0.0.0-1-nothere-amd64")
    with pytest.raises(UserError, match=r"ML_LIB_KVER=0\.0\.0-1-nothere-amd64: needs"):
        kernel.kernel_version()


def test_kernel_tree_override(monkeypatch, tmp_path):
    """$ML_LIB_KTREE (make check-debug-kernel) replaces the installed kernel for
    builds and boots; a folder that is not a built tree is a clear error."""
    monkeypatch.delenv("ML_LIB_KVER", raising=False)
    monkeypatch.setenv("ML_LIB_KTREE", str(tmp_path))
    with pytest.raises(UserError, match=r"not a built kernel tree \(no include/config/kernel"):
        kernel.kernel_version()
    for f, text in (("include/config/kernel.release", "6.1.999\n"),
                    ("arch/x86/boot/bzImage", ""), ("Module.symvers", ""),
                    (".config", "CONFIG_DEBUG_KMEMLEAK=y\n")):
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f).write_text(text)
    assert kernel.kernel_version() == "6.1.999"
    assert kernel.kernel_build_dir() == tmp_path.resolve()
    assert kernel.kernel_image() == tmp_path.resolve() / "arch/x86/boot/bzImage"
    assert kernel.kmemleak_expected()
    assert kernel.boot_timeout(900) == 900  # kmemleak alone: not the slow KASAN build
    # a kmemleak kernel: a leak in ml_lib fails the boot, and so does a missing scan
    with pytest.raises(kernel.KernelLogError, match="1 objects allocated in ml_lib leaked"):
        kernel._check_kmemleak(["0xffff888001 (size 64): ... ml_lib_model_load_blob"], True)
    with pytest.raises(kernel.KernelError, match="did not scan"):
        kernel._check_kmemleak(None, True)
    kernel._check_kmemleak([], True)
    kernel._check_kmemleak(None, False)  # no ml_lib.ko in that boot: nothing to scan for
    (tmp_path / ".config").write_text("# CONFIG_DEBUG_KMEMLEAK is not set\n")
    assert not kernel.kmemleak_expected()
    kernel._check_kmemleak(None, True)
    (tmp_path / ".config").write_text("CONFIG_KASAN=y\n")
    assert kernel.boot_timeout(900) == 3600  # the debug kernel: guests get 4x the bound
    monkeypatch.delenv("ML_LIB_KTREE")
    assert kernel.boot_timeout(900) == 900
    assert kernel.kernel_image() == Path(f"/boot/vmlinuz-{kernel.kernel_version()}")


@pytest.mark.kernel
def test_booted_kernel_matches_reference(tmp_path):
    """ONE boot: model modules built from generated C tables, blobs through debugfs
    load/infer/unload, and the loader's errnos seen from user space."""
    models = _models()
    assert set(OP_SPECS) <= {op.kind for g, _ in models for op in g.ops}
    ko = kernel.build_ml_lib_module(tmp_path / "kmod")

    # what `mlexport --target kernel` writes: <name>.c/.h/_mod.c + Kbuild -> a module
    mods, jobs, want, blobs = [ko], [], [], []
    for g, raw in models[:6]:
        g = g.copy()
        g.name = f"{g.name}_mod"
        d = tmp_path / g.name
        d.mkdir()
        for fname, text in generate(g).items():
            (d / fname).write_text(text)
        mods.append(kernel.build_model_module(d, ko, tmp_path / "mod" / g.name))
        jobs.append(kernel.Job(g.name, raw=raw))
        want.append((g.name, reference.run(g, raw)))
        blobs.append(write_blob(g))

    for g, raw in models:
        jobs.append(kernel.Job(g.name, blob=write_blob(g), raw=raw))
        want.append((g.name, reference.run(g, raw)))
        blobs.append(write_blob(g))
    good = write_blob(models[0][0])
    jobs += [
        kernel.Job("bad_magic", blob=b"XLLB" + good[4:], expect_errno="ENOEXEC"),
        kernel.Job("major1", blob=good[:4] + (1).to_bytes(2, "little") + good[6:],
                   expect_errno="EPROTONOSUPPORT"),
        # consistent total_len, but shorter than the header
        kernel.Job("short", blob=good[:12] + (64).to_bytes(4, "little") + good[16:64],
                   expect_errno="EMSGSIZE"),
        # loaded and left registered: module exit must free it
        kernel.Job(models[1][0].name, blob=write_blob(models[1][0]), raw=models[1][1],
                   unload=False),
        kernel.Job("dup", blob=write_blob(models[1][0]), expect_errno="EEXIST"),
    ]
    res = kernel.boot(mods, jobs)
    assert not res.errors, res.errors
    for i, (name, ref) in enumerate(want):
        _assert_equal(name, res.outputs[i], ref)
        # the kernel's hash of the tables it runs (C tables of a module, or a
        # loaded blob) is the toolchain blob's
        assert res.sha256[i] == hashlib.sha256(blobs[i]).hexdigest(), name
    _assert_equal("kept", res.outputs[len(jobs) - 2], reference.run(*models[1]))


def _c_array(text: str, name: str) -> np.ndarray:
    m = re.search(rf"\b{name}\[\][^=]*=\s*\{{(.*?)\}};", text, re.S)
    assert m, name
    named = {"S64_MIN": -2**63, "S64_MAX": 2**63 - 1, "S32_MIN": -2**31}
    items = [v.strip() for v in m.group(1).split(",") if v.strip()]
    vals = [named[v] if v in named else int(v) for v in items]
    return np.array(vals, dtype=object)


def test_committed_kunit_vectors_match_the_reference():
    """Every model in lib/ml/ml_lib_kunit_vectors.h: the Python reference, run today on
    its blob and raw rows, gives exactly the expected outputs the KUnit suite checks."""
    text = (kernel.REPO / "lib/ml/ml_lib_kunit_vectors.h").read_text()
    names = re.findall(r'^\t\{ "(\w+)", ', text, re.M)
    assert len(names) >= 3
    for n in names:
        g = read_blob(bytes(int(b) for b in _c_array(text, f"{n}_blob")))
        raw = _c_array(text, f"{n}_raw").astype(np.int64).reshape(-1, g.n_in)
        want = _c_array(text, f"{n}_expect").astype(np.int64).reshape(raw.shape[0], g.n_out)
        assert g.name == n
        assert np.array_equal(reference.run(g, raw), want), \
            f"{n}: stale KUnit vectors, run `make kernel-vectors`"
    # and the file is exactly what the generator writes today (blobs included)
    assert text == gen_vectors.render(), "stale KUnit vectors, run `make kernel-vectors`"
