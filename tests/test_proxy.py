# SPDX-License-Identifier: GPL-2.0
"""Host-side tests of the user-space proxy: ABI layout against the C header,
manifest checks, the daemon's batching and conversions, the caller stub.
The booted-kernel tests are in test_proxy_boot.py."""

import errno
import hashlib
import json
import platform
import shutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from ml_lib.errors import UserError
from ml_lib.proxy import abi, daemon, models, stub
from ml_lib.proxy.manifest import load_manifest, write_model_dir

TOP = Path(__file__).resolve().parents[1]
KDIR = next(iter(sorted(Path("/lib/modules").glob("*-amd64/build"))), None)

LAYOUT_C = TOP / "tests" / "proxy_abi" / "layout.c"
S390X_CC = ["clang", "--target=s390x-linux-gnu", "-static"]
S390X_PACKAGES = "binutils-s390x-linux-gnu libgcc-12-dev-s390x-cross libc6-dev-s390x-cross qemu-user"


def expected_layout(a, machine: str) -> dict[str, int]:
    """What tests/proxy_abi/layout.c must print for the ABI mirror ``a`` on ``machine``."""
    bits, write, read = a._ioc_layout(machine)

    def ioc(direction, nr, size):
        return (direction << (16 + bits)) | (size << 16) | (a.IOC_MAGIC << 8) | nr

    return {
        "ml_lib_proxy_req": a.REQ_HDR.size, "ml_lib_proxy_req.size": 4,
        "ml_lib_proxy_req.id": 8, "ml_lib_proxy_req.model_id": 16, "ml_lib_proxy_req.n_in": 20,
        "ml_lib_proxy_req.in": 24,
        "ml_lib_proxy_resp": a.RESP_HDR.size, "ml_lib_proxy_resp.id": 8,
        "ml_lib_proxy_resp.n_out": 20, "ml_lib_proxy_resp.out": 24,
        "ml_lib_proxy_register": a.REGISTER.size, "ml_lib_proxy_register.name": 16,
        "ml_lib_proxy_record": a.RECORD_HDR.size, "ml_lib_proxy_record.feat": 16,
        "ml_lib_proxy_dataset_read": a.DATASET_READ.size, "ml_lib_proxy_dataset_read.buf": 8,
        "ml_lib_proxy_dataset_read.n_records": 24, "ml_lib_proxy_dataset_read.dropped": 32,
        "IOC_REGISTER": ioc(write, 1, a.REGISTER.size),
        "IOC_DATASET_READ": ioc(read | write, 2, a.DATASET_READ.size),
        "VERSION": a.VERSION, "NAME_LEN": a.NAME_LEN, "MAX_IN": a.MAX_IN, "MAX_OUT": a.MAX_OUT,
    }


def _key_values(text: str, conv=int) -> dict:
    return {k: conv(v) for k, v in (line.rsplit(" ", 1) for line in text.splitlines())}


@pytest.mark.parametrize("bits", ["-m64", "-m32"])
def test_abi_matches_uapi_header(tmp_path, bits):
    exe = tmp_path / "layout"
    cc = subprocess.run(["gcc", bits, "-Wall", "-Wextra", "-Werror", "-I", str(TOP / "include/uapi"),
                         str(LAYOUT_C), "-o", str(exe)], capture_output=True, text=True)
    # make setup installs gcc-multilib: a missing -m32 toolchain is a failure, not a skip
    assert cc.returncode == 0, cc.stderr
    got = _key_values(subprocess.check_output([str(exe)], text=True))
    # the same layout on 32- and 64-bit user space: no compat code needed
    assert got == expected_layout(abi, platform.machine())
    assert got["IOC_REGISTER"] == abi.IOC_REGISTER and got["IOC_DATASET_READ"] == abi.IOC_DATASET_READ
    if abi._ioc_layout(platform.machine()) == (14, 1, 2):
        # hand-computed: _IOW(0xbd, 1, 48 bytes), _IOWR(0xbd, 2, 40 bytes)
        assert abi.IOC_REGISTER == 0x4030BD01 and abi.IOC_DATASET_READ == 0xC028BD02


def abi_in_byte_order(order: str):
    """toolchain/ml_lib/proxy/abi.py as Python runs it on a CPU of byte order ``order``
    ('>' or '<'): its native-order ("=") structs and dtypes become ``order``."""
    path = Path(abi.__file__)
    src = path.read_text()
    assert src.count('"=') >= 10, "abi.py no longer spells its formats with a native '='"
    mod = types.ModuleType(f"abi{order}")
    exec(compile(src.replace('"=', f'"{order}'), str(path), "exec"), mod.__dict__)
    return mod


def test_abi_big_endian(tmp_path):
    """The daemon's ABI code on a big-endian kernel: layout.c is built for s390x and run
    under qemu-s390x, and abi.py, with its native order made big-endian as it would be
    there, must pack and parse exactly the bytes the s390x C compiler lays out."""
    missing = [t for t in ("clang", "s390x-linux-gnu-ld", "qemu-s390x") if shutil.which(t) is None]
    if not Path("/usr/s390x-linux-gnu/lib/libc.a").exists():
        missing.append("/usr/s390x-linux-gnu/lib/libc.a")
    if missing:
        pytest.fail(f"{', '.join(missing)} not found: run `make setup` as root (Debian packages "
                    f"{S390X_PACKAGES})")
    exe = tmp_path / "layout-s390x"
    cc = subprocess.run([*S390X_CC, "-O2", "-Wall", "-Wextra", "-Werror", "-I",
                         str(TOP / "include/uapi"), str(LAYOUT_C), "-o", str(exe)],
                        capture_output=True, text=True)
    assert cc.returncode == 0, cc.stderr
    be = abi_in_byte_order(">")
    layout = _key_values(subprocess.check_output(["qemu-s390x", str(exe)], text=True))
    assert layout == expected_layout(be, "s390x")
    got = _key_values(subprocess.check_output(["qemu-s390x", str(exe), "bytes"], text=True),
                      bytes.fromhex)

    x = np.array([-2, 0x1122334455667788, -2**63])
    assert be.pack_request(0x0102030405060708, 0x0A0B0C0D, x) == got["req"]
    # the host's (little-endian) bytes differ, so the comparisons here can fail
    assert abi.pack_request(0x0102030405060708, 0x0A0B0C0D, x) != got["req"]
    ((rid, mid, xs),) = be.parse_requests(got["req"])
    assert (rid, mid, xs.tolist()) == (0x0102030405060708, 0x0A0B0C0D, x.tolist())
    ids, xs = be.parse_batch(got["req"] * 3)[0x0A0B0C0D]    # the record-array path
    assert ids.tolist() == [0x0102030405060708] * 3 and xs.tolist() == [x.tolist()] * 3
    mixed = be.parse_batch(got["req"] + be.pack_request(9, 5, np.array([4])))  # one by one
    assert {m: (i.tolist(), v.tolist()) for m, (i, v) in mixed.items()} == \
        {0x0A0B0C0D: ([0x0102030405060708], [x.tolist()]), 5: ([9], [[4]])}

    y = np.array([-1, 7, 0x12345678])
    assert be.pack_response(0x8877665544332211, 0x01020304, y) == got["resp"]
    assert be.pack_responses(np.array([0x8877665544332211] * 2, dtype=np.uint64), 0x01020304,
                             np.stack([y, y])) == got["resp"] * 2
    assert be.pack_register("be-model", 0x01020304, 2) == got["register"]
    ((seq, feat),) = be.parse_records(got["record"], 1, len(got["record"]))
    assert (seq, feat.tolist()) == (0x0102030405060708, [5, -0x0102030405060708])
    assert be.DATASET_READ.unpack(got["dataset_read"]) == \
        (1, 3, 0x1122334455667788, 4096, 7, 32, 0x100000002)


@pytest.mark.parametrize("machine, blkbszset", [
    ("x86_64", 0x40081271), ("aarch64", 0x40081271), ("riscv64", 0x40081271),
    ("ppc64le", 0x80081271), ("mips64", 0x80081271), ("sparc64", 0x80081271),
    ("parisc64", 0x80081271),
])
def test_ioctl_encoding_per_architecture(machine, blkbszset):
    """The daemon computes ioctl numbers as <asm/ioctl.h> does on each
    architecture: checked on BLKBSZSET = _IOW(0x12, 113, size_t), whose value
    on each is known from its kernel headers (e.g. util-linux's tables)."""
    bits, write, _ = abi._ioc_layout(machine)
    assert (write << (16 + bits)) | (8 << 16) | (0x12 << 8) | 113 == blkbszset


def test_response_padding_and_sizes():
    assert abi.resp_size(1) == 32 and abi.resp_size(2) == 32 and abi.resp_size(3) == 40
    r = abi.pack_response(5, 2, np.array([-1, 7, 3]))
    assert len(r) == 40 and r[-4:] == b"\0\0\0\0"
    assert r[24:36] == bytes.fromhex("ffffffff0700000003000000")


@pytest.fixture(scope="module")
def ident(tmp_path_factory):
    return models.identity_dir(tmp_path_factory.mktemp("ident"))


def scaled_identity(tmp_path, name="sc", raw_scale=0.5, frac_bits=4):
    return write_model_dir(tmp_path / name, name, (Path(models.identity_dir(tmp_path / "i")) /
                                                  "ident.onnx").read_bytes(),
                           4, 4, raw_scale=raw_scale, frac_bits=frac_bits)


def test_daemon_converts_raw_and_fixed_point(tmp_path):
    m = daemon.Model(load_manifest(scaled_identity(tmp_path)))
    # raw 3 * 0.5 = 1.5 -> 1.5 * 2^4 = 24; -3 -> -1.5 -> -24; 1 -> 0.5 -> 8
    buf = abi.pack_request(11, 0, np.array([3, -3, 1, 0]))
    data, n = daemon.answer({0: m}, buf)
    assert n == 1
    assert data == abi.RESP_HDR.pack(1, 40, 11, 0, 4) + np.array([24, -24, 8, 0], "<i4").tobytes() \
        + b"\0" * 8 or data == abi.pack_response(11, 0, np.array([24, -24, 8, 0]))
    assert data == bytes.fromhex("01000000" "28000000" "0b00000000000000" "00000000" "04000000"
                                 "18000000" "e8ffffff" "08000000" "00000000")


def test_fixed_point_rounds_half_up_and_saturates(tmp_path):
    man = load_manifest(scaled_identity(tmp_path, frac_bits=1))
    y = np.array([0.25, -0.25, 0.75, 2.0**40, -(2.0**40), np.nan])
    # 0.5 -> 1 (half up), -0.5 -> 0, 1.5 -> 2, saturate, saturate, NaN -> 0
    assert man.to_fixed(y).tolist() == [1, 0, 2, 2**31 - 1, -(2**31), 0]


def test_daemon_one_run_per_model_per_batch(tmp_path, ident, monkeypatch):
    a = daemon.Model(load_manifest(ident))
    b = daemon.Model(load_manifest(scaled_identity(tmp_path)))
    runs = []
    for m in (a, b):
        orig = m.run_float
        monkeypatch.setattr(m, "run_float", lambda x, orig=orig: runs.append(len(x)) or orig(x))
    reqs = [(1, 0, [1, 2, 3, 4]), (2, 1, [2, 2, 2, 2]), (3, 0, [5, 6, 7, 8]), (4, 0, [0, 0, 0, 9]),
            (5, 1, [-2, 0, 0, 0])]
    buf = b"".join(abi.pack_request(i, mid, np.array(x)) for i, mid, x in reqs)
    data, n = daemon.answer({0: a, 1: b}, buf)
    assert n == 5 and sorted(runs) == [2, 3]
    got = {}
    off = 0
    while off < len(data):
        _, size, rid, mid, k = abi.RESP_HDR.unpack_from(data, off)
        got[rid] = (mid, np.frombuffer(data, "<i4", k, off + 24).tolist())
        off += size
    assert got == {1: (0, [1, 2, 3, 4]), 3: (0, [5, 6, 7, 8]), 4: (0, [0, 0, 0, 9]),
                   2: (1, [16, 16, 16, 16]), 5: (1, [-16, 0, 0, 0])}


def _answers(data: bytes) -> dict:
    got, off = {}, 0
    while off < len(data):
        _, size, rid, mid, k = abi.RESP_HDR.unpack_from(data, off)
        got[rid] = np.frombuffer(data, "<i4", k, off + 24).tolist()
        off += size
    return got


def test_one_bad_request_costs_only_its_own_answer(ident, monkeypatch, caplog):
    """A batch whose run fails because of one request's input is run again
    row by row: the other requests are answered (before, the whole read's
    requests of that model waited for the kernel's timeout). A failure
    whose message is blank no longer crashes the daemon (IndexError), and
    a model failing on every read logs once per FAILURE_LOG_S."""
    m = daemon.Model(load_manifest(ident))
    orig = m.run_float

    def picky(x):
        if (x == 1000).any():
            raise RuntimeError("\n")  # blank, as some exceptions are
        return orig(x)
    monkeypatch.setattr(m, "run_float", picky)
    rows = {1: [1, 2, 3, 4], 2: [0, 1000, 0, 0], 3: [5, 6, 7, 8], 4: [1000] * 4}
    buf = b"".join(abi.pack_request(i, 0, np.array(x)) for i, x in rows.items())
    caplog.set_level("ERROR", logger="mlproxyd")
    data, n = daemon.answer({0: m}, buf)
    assert n == 4 and _answers(data) == {1: [1, 2, 3, 4], 3: [5, 6, 7, 8]}
    assert [r.getMessage() for r in caplog.records] == [
        "ident: a batch of 4 failed (RuntimeError); 2 left to the kernel's fallback"]
    # the same read again: answered the same, not logged again (rate limit)
    data, n = daemon.answer({0: m}, buf)
    assert _answers(data) == {1: [1, 2, 3, 4], 3: [5, 6, 7, 8]} and len(caplog.records) == 1
    # a lone bad request: no answer, no retry
    data, n = daemon.answer({0: m}, abi.pack_request(9, 0, np.array(rows[4])))
    assert n == 1 and data == b""


def test_refresh_follows_the_kernel_registration(ident, monkeypatch, caplog):
    """mlproxyd's periodic re-registration: a model still served keeps its id
    silently; one whose caller detached it (ENOENT) leaves the map with one
    warning however long it stays away; once re-attached it is served under
    the kernel's new id, logged once; a taken one (EBUSY) is dropped."""
    import errno as e
    import os
    a, b = daemon.Model(load_manifest(ident)), daemon.Model(load_manifest(ident))
    a.man.name, b.man.name = "a", "b"  # load_manifest caches nothing: two objects
    a.model_id, b.model_id = 0, 1
    kernel = {"a": [0, e.ENOENT, e.ENOENT, 7, 7], "b": [1, 1, 1, e.EBUSY, e.EBUSY]}

    def register(fd, name, n_in, n_out):
        v = kernel[name].pop(0)  # an id, or the errno the kernel answers
        if v in (e.ENOENT, e.EBUSY):
            raise OSError(v, os.strerror(v))
        return v

    monkeypatch.setattr(daemon.abi, "register", register)
    by_id = {0: a, 1: b}
    seen = []
    with caplog.at_level("INFO", logger="mlproxyd"):
        for _ in range(5):
            by_id = daemon.refresh(-1, [a, b], by_id)
            seen.append({k: m.man.name for k, m in by_id.items()})
    assert seen == [{0: "a", 1: "b"}, {1: "b"}, {1: "b"}, {7: "a"}, {7: "a"}]
    msgs = [r.getMessage() for r in caplog.records]
    assert sum("a: not served any more" in m for m in msgs) == 1
    assert sum("serving a again as model id 7" in m for m in msgs) == 1
    assert sum("b: not served any more (another daemon serves it)" in m for m in msgs) == 1
    assert len(msgs) == 3, msgs


def test_stopping_ignores_signals_and_drops_only_the_race_report():
    """After a stop, SIGTERM and SIGINT are SIG_IGN (kept through the
    interpreter's exit) and CPython's unraisable report of a signal caught
    during the switch is dropped; any other unraisable error still prints."""
    code = """
import signal
from ml_lib.proxy import daemon
daemon.ignore_stop_signals()
assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
signal.raise_signal(signal.SIGINT)  # ignored, not fatal


class Unraisable:  # __del__'s exception goes where CPython's race report goes
    def __init__(self, msg):
        self.msg = msg

    def __del__(self):
        raise OSError(self.msg)


Unraisable("Signal 2 ignored due to race condition")
Unraisable("something else")
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "race condition" not in r.stderr and "something else" in r.stderr, r.stderr


def test_write_answers_skips_a_rejected_record(monkeypatch):
    recs = [abi.pack_response(i, 0, np.array([i])) for i in range(3)]
    written = []

    def fake_write(fd, view):
        head = bytes(view[:32])
        if head == recs[1]:
            raise OSError(errno.EINVAL, "late")
        # the kernel takes whole good records up to the first bad one
        n = 0
        while n < len(view) and bytes(view[n:n + 32]) != recs[1]:
            written.append(bytes(view[n:n + 32]))
            n += 32
        return n

    monkeypatch.setattr(daemon.os, "write", fake_write)
    assert daemon.write_answers(3, b"".join(recs)) == 1
    assert written == [recs[0], recs[2]]


@pytest.mark.parametrize("defect,message", [
    ("missing", "no such directory"),
    ("no_manifest", "expected one <name>.json manifest, found 0"),
    ("bad_json", "is not valid JSON"),
    ("no_onnx", "missing sc.onnx"),
    ("bad_scale", "raw_scale values must be finite and > 0"),
    ("bad_name", "is not a C identifier"),
    ("no_n_out", "manifest lacks 'n_out'"),
    ("other_onnx", "the model changed after the export"),
    ("bad_sha_type", "onnx_sha256 must be a string"),
])
def test_bad_model_folder(tmp_path, defect, message):
    d = scaled_identity(tmp_path)
    man = json.loads((d / "sc.json").read_text())
    if defect == "missing":
        d = tmp_path / "nope"
    elif defect == "no_manifest":
        (d / "sc.json").unlink()
    elif defect == "bad_json":
        (d / "sc.json").write_text("{")
    elif defect == "no_onnx":
        (d / "sc.onnx").unlink()
    else:
        if defect == "bad_scale":
            man["raw_scale"] = [1, 1, 0, 1]
        elif defect == "bad_name":
            man["name"] = "a-b"
        elif defect == "other_onnx":  # as mlexport records it, then the file changes
            man["onnx_sha256"] = hashlib.sha256((d / "sc.onnx").read_bytes()).hexdigest()
            (d / "sc.onnx").write_bytes((d / "sc.onnx").read_bytes() + b"\0")
        elif defect == "bad_sha_type":
            man["onnx_sha256"] = 5
        else:
            del man["n_out"]
        (d / "sc.json").write_text(json.dumps(man))
    with pytest.raises(UserError, match=message):
        load_manifest(d)
    # the CLI: one line naming the cause, exit 2, no traceback
    r = subprocess.run([sys.executable, "-m", "ml_lib.cli.mlproxyd", str(d)],
                       capture_output=True, text=True)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mlproxyd: error: ") and message in lines[0]


def test_mlproxyd_without_device_is_a_user_error(ident, tmp_path):
    r = subprocess.run([sys.executable, "-m", "ml_lib.cli.mlproxyd", "--device",
                        str(tmp_path / "none"), str(ident)], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "cannot open" in r.stderr


def test_onnx_with_wrong_width_is_refused(tmp_path, ident):
    d = write_model_dir(tmp_path / "w", "w", (Path(ident) / "ident.onnx").read_bytes(), 5, 5)
    with pytest.raises(UserError, match=r"input shape .* is not \[batch, 5\]"):
        daemon.load_models([d])


STUB_MANIFEST = {"name": "big", "n_in": 3, "n_out": 2, "frac_bits": 16, "timeout_ms": 20,
                 "features": ["queue_len", "lat", "x y"]}

# A consumer module of two files that both include the stub and call
# big_infer(); user.c alone defines the model (and includes the stub a second
# time, through user.h, before doing so).
STUB_USER_H = """\
/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _USER_H
#define _USER_H

#include "big_proxy.h"

int user_other_infer(void);

#endif /* _USER_H */
"""

STUB_USER_C = """\
// SPDX-License-Identifier: GPL-2.0
#include <linux/module.h>
#include "user.h"
#define BIG_PROXY_DEFINE
#include "big_proxy.h"

static const s32 dflt[BIG_N_OUT] = { 1, 2 };

static int __init u_init(void)
{
\ts64 in[BIG_N_IN] = { 1, 2, 3 };
\ts32 out[BIG_N_OUT];
\tint ret = big_declare(dflt, ML_LIB_MODE_RECOMMENDATION);

\tif (ret)
\t\treturn ret;
\tif (big_infer(in, out) < 0 || user_other_infer() < 0) {
\t\tbig_undeclare();
\t\treturn -EIO;
\t}
\treturn 0;
}

static void __exit u_exit(void)
{
\tbig_undeclare();
}

module_init(u_init);
module_exit(u_exit);
MODULE_LICENSE("GPL");
"""

STUB_OTHER_C = """\
// SPDX-License-Identifier: GPL-2.0
#include "user.h"

int user_other_infer(void)
{
\ts64 in[BIG_N_IN] = { 4, 5, 6 };
\ts32 out[BIG_N_OUT];

\treturn big_infer(in, out);
}
"""


def _kernel_scripts() -> Path:
    scripts = TOP / "build" / "linux-source" / "scripts"
    if not (scripts / "checkpatch.pl").exists():
        subprocess.run(["make", "-s", "-C", str(TOP), "kernel-src"], check=True)
    return scripts


def test_stub_builds_as_kernel_code_with_w1(tmp_path):
    """Two files include the stub and call big_infer(); one defines the model:
    one big_model in the module, W=1, sparse, checkpatch and kernel-doc clean."""
    if KDIR is None:
        pytest.fail("no /lib/modules/*-amd64/build: install linux-headers-amd64 (make setup)")
    files = stub.generate(STUB_MANIFEST)
    assert list(files) == ["big_proxy.h"]
    text = files["big_proxy.h"]
    assert "#define BIG_N_IN\t\t3" in text and "#define BIG_TIMEOUT_US\t20000" in text
    # the header proper only declares: no object is defined outside BIG_PROXY_DEFINE
    assert "static struct ml_lib_model" not in text
    assert "extern struct ml_lib_model big_model;" in text
    for name, body in {**files, "user.h": STUB_USER_H, "user.c": STUB_USER_C,
                       "other.c": STUB_OTHER_C}.items():
        (tmp_path / name).write_text(body)
    (tmp_path / "Kbuild").write_text(
        f"obj-m := user_mod.o\nuser_mod-y := user.o other.o\nccflags-y += -I{TOP}/include\n")
    r = subprocess.run(["make", "-C", str(KDIR), f"M={tmp_path}", "W=1", "C=2",
                        "KBUILD_MODPOST_WARN=1", "modules"], capture_output=True, text=True)
    out = r.stdout + r.stderr
    # modpost's "undefined!" for ml_lib's symbols (KBUILD_MODPOST_WARN) is expected;
    # any compiler or sparse line is not, "may be undefined" ones included
    diag = [ln for ln in out.splitlines()
            if ("warning" in ln or "error" in ln) and not ln.startswith("WARNING: modpost:")]
    assert r.returncode == 0 and not diag, out
    # sparse really checked both files
    for c in ("user.c", "other.c"):
        assert any(ln.strip().startswith("CHECK") and ln.rstrip().endswith(c)
                   for ln in out.splitlines()), out
    # one model object in the module, defined by user.c; other.c only refers to it
    syms = subprocess.check_output(["nm", str(tmp_path / "user_mod.ko")], text=True).split("\n")
    model = [ln.split() for ln in syms if ln.endswith(" big_model")]
    assert len(model) == 1 and model[0][1] in "Dd", syms
    other = subprocess.check_output(["nm", str(tmp_path / "other.o")], text=True)
    assert "U big_model" in other and " T big_declare" not in other, other
    scripts = _kernel_scripts()
    for name in ("big_proxy.h", "user.h", "user.c", "other.c"):
        r = subprocess.run(["perl", str(scripts / "checkpatch.pl"), "--strict", "--no-tree", "-q",
                            "-f", str(tmp_path / name)], capture_output=True, text=True)
        assert r.returncode == 0 and not r.stdout.strip(), r.stdout
    # kernel-doc: silent, also with -v (6.1's kernel-doc checks Return: only
    # in verbose mode; newer ones call that -Wall)
    for flags in ([], ["-v"]):
        r = subprocess.run(["perl", str(scripts / "kernel-doc"), "-none", *flags,
                            str(tmp_path / "big_proxy.h")], capture_output=True, text=True)
        lines = [ln for ln in (r.stdout + r.stderr).splitlines() if ": info: Scanning doc" not in ln]
        assert r.returncode == 0 and not lines, lines
    r = subprocess.run(["perl", str(scripts / "kernel-doc"), "-rst", str(tmp_path / "big_proxy.h")],
                       capture_output=True, text=True)
    for fn in ("big_declare", "big_undeclare", "big_infer", "big_infer_async"):
        assert f" {fn} (" in r.stdout, fn
    assert r.stdout.count("**Context**") == 4 and r.stdout.count("**Return**") == 3


# ml_lib's calls, as a user-space mock: unregistering or detaching a model
# that is not registered / attached aborts, as list_debug does in the kernel.
STUB_MOCK_ML_LIB_H = """\
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
typedef int32_t s32;
typedef int64_t s64;
typedef uint32_t u32;
struct module;
#define THIS_MODULE ((struct module *)0)
struct ml_lib_model { const char *name; struct module *owner; bool attached, registered; };
struct ml_lib_proxy_config {
	u32 n_in, n_out, timeout_us, mode, collab_percent;
	const s32 *fallback_out;
};
struct ml_lib_request { int status; };
enum { ML_LIB_MODE_RECOMMENDATION = 3 };
extern int attach_err, register_err, calls[4];
#define CHECK(c) do { if (!(c)) { printf("BUG %s\\n", #c); exit(1); } } while (0)
static inline int ml_lib_proxy_attach(struct ml_lib_model *m,
				      const struct ml_lib_proxy_config *c)
{
	calls[0]++;
	if (attach_err)
		return attach_err;
	CHECK(!m->attached && c->timeout_us == 20000 && c->n_in == 3);
	m->attached = true;
	return 0;
}
static inline void ml_lib_proxy_detach(struct ml_lib_model *m)
{
	calls[1]++;
	CHECK(m->attached && !m->registered);
	m->attached = false;
}
static inline int ml_lib_model_register(struct ml_lib_model *m)
{
	calls[2]++;
	if (register_err)
		return register_err;
	CHECK(m->attached && !m->registered);
	m->registered = true;
	return 0;
}
static inline void ml_lib_model_unregister(struct ml_lib_model *m)
{
	calls[3]++;
	CHECK(m->registered);
	m->registered = false;
}
static inline int ml_lib_infer(struct ml_lib_model *m, const s64 *in, u32 n_in,
			       s32 *out, u32 n_out)
{
	return m->registered ? 1 : -ENOENT;
}
static inline int ml_lib_infer_async(struct ml_lib_model *m, struct ml_lib_request *r)
{
	return m->registered ? 0 : -ENOENT;
}
"""

STUB_MOCK_MUTEX_H = """\
#define DEFINE_MUTEX(m) int m
#define mutex_lock(m) (*(m))++
#define mutex_unlock(m) (*(m))--
"""

STUB_MOCK_MAIN = """\
#define BIG_PROXY_DEFINE
#include "big_proxy.h"

int attach_err, register_err, calls[4];

static void step(const char *what, int ret)
{
	printf("%s %d %d %d %d %d %d %d\\n", what, ret, calls[0], calls[1], calls[2], calls[3],
	       big_model.attached, big_model.registered);
}

int main(void)
{
	s64 in[BIG_N_IN] = { 0 };
	s32 out[BIG_N_OUT];

	big_undeclare();
	step("undeclare_never_declared", big_infer(in, out));
	attach_err = -EEXIST;
	step("declare_attach_fails", big_declare(NULL, 3));
	big_undeclare();
	step("undeclare_after_attach_failure", 0);
	attach_err = 0;
	register_err = -EEXIST;
	step("declare_register_fails", big_declare(NULL, 3));
	big_undeclare();
	step("undeclare_after_register_failure", 0);
	register_err = 0;
	step("declare", big_declare(NULL, 3));
	step("declare_again", big_declare(NULL, 3));
	step("infer", big_infer(in, out));
	big_undeclare();
	step("undeclare", big_infer(in, out));
	big_undeclare();
	step("undeclare_again", 0);
	step("declare_after_undeclare", big_declare(NULL, 3));
	big_undeclare();
	step("undeclare_last", big_proxy_lock);
	return 0;
}
"""


def test_stub_undeclare_only_undoes_a_successful_declare(tmp_path):
    """The stub's declare/undeclare against a mock ml_lib that aborts like
    list_debug on unregistering a model that is not registered."""
    (tmp_path / "linux").mkdir()
    (tmp_path / "linux" / "ml_lib.h").write_text(STUB_MOCK_ML_LIB_H)
    (tmp_path / "linux" / "mutex.h").write_text(STUB_MOCK_MUTEX_H)
    (tmp_path / "linux" / "module.h").write_text("")
    (tmp_path / "big_proxy.h").write_text(stub.generate(STUB_MANIFEST)["big_proxy.h"])
    (tmp_path / "main.c").write_text(STUB_MOCK_MAIN)
    exe = tmp_path / "main"
    cc = subprocess.run(["gcc", "-Wall", "-Werror", "-Wno-unused-parameter", "-I", str(tmp_path),
                         str(tmp_path / "main.c"), "-o", str(exe)], capture_output=True, text=True)
    assert cc.returncode == 0, cc.stderr
    r = subprocess.run([str(exe)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout
    got = {ln.split()[0]: [int(v) for v in ln.split()[1:]] for ln in r.stdout.splitlines()}
    # name: [return, attach, detach, register, unregister calls, attached, registered]
    assert got == {
        "undeclare_never_declared": [-errno.ENOENT, 0, 0, 0, 0, 0, 0],
        "declare_attach_fails": [-errno.EEXIST, 1, 0, 0, 0, 0, 0],
        "undeclare_after_attach_failure": [0, 1, 0, 0, 0, 0, 0],
        "declare_register_fails": [-errno.EEXIST, 2, 1, 1, 0, 0, 0],
        "undeclare_after_register_failure": [0, 2, 1, 1, 0, 0, 0],
        "declare": [0, 3, 1, 2, 0, 1, 1],
        "declare_again": [-errno.EEXIST, 3, 1, 2, 0, 1, 1],
        "infer": [1, 3, 1, 2, 0, 1, 1],
        "undeclare": [-errno.ENOENT, 3, 2, 2, 1, 0, 0],
        "undeclare_again": [0, 3, 2, 2, 1, 0, 0],
        "declare_after_undeclare": [0, 4, 2, 3, 1, 1, 1],
        "undeclare_last": [0, 4, 3, 3, 2, 0, 0],
    }


@pytest.mark.parametrize("name", ["a_long_model_name_for_wrapping1", "abcdefghijklmnopqrstu", "_"])
def test_stub_style_for_any_name_length(tmp_path, name):
    """checkpatch --strict and kernel-doc stay clean when a 31-character
    name pushes lines past 80 columns (comments rewrapped, calls wrapped)."""
    scripts = _kernel_scripts()
    (fn, text), = stub.generate({**STUB_MANIFEST, "name": name}).items()
    (tmp_path / fn).write_text(text)
    r = subprocess.run(["perl", str(scripts / "checkpatch.pl"), "--strict", "--no-tree", "-q",
                        "-f", str(tmp_path / fn)], capture_output=True, text=True)
    assert r.returncode == 0 and not r.stdout.strip(), r.stdout
    r = subprocess.run(["perl", str(scripts / "kernel-doc"), "-none", "-v", str(tmp_path / fn)],
                       capture_output=True, text=True)
    lines = [ln for ln in (r.stdout + r.stderr).splitlines() if ": info: Scanning doc" not in ln]
    assert r.returncode == 0 and not lines, lines


@pytest.mark.parametrize("timeout_ms", [0, -5, 60001, 10**9, 0.5, "20", True, None])
def test_stub_refuses_a_timeout_the_kernel_would_refuse(timeout_ms):
    with pytest.raises(UserError, match=r"timeout_ms .* in 1\.\.60000"):
        stub.generate({**STUB_MANIFEST, "timeout_ms": timeout_ms})


def test_stub_timeout_bounds_and_default():
    assert "#define BIG_TIMEOUT_US\t1000\n" in stub.generate(
        {**STUB_MANIFEST, "timeout_ms": 1})["big_proxy.h"]
    assert "#define BIG_TIMEOUT_US\t60000000\n" in stub.generate(
        {**STUB_MANIFEST, "timeout_ms": 60000})["big_proxy.h"]
    man = dict(STUB_MANIFEST)
    del man["timeout_ms"]
    assert "#define BIG_TIMEOUT_US\t100000\n" in stub.generate(man)["big_proxy.h"]


@pytest.mark.parametrize("name", ["a-b", "1x", "x" * 32, ""])
def test_stub_refuses_a_name_the_kernel_would_refuse(name):
    with pytest.raises(UserError, match="model name"):
        stub.generate({**STUB_MANIFEST, "name": name})


def test_uniform_batch_fast_path_matches_record_by_record(tmp_path):
    m = daemon.Model(load_manifest(scaled_identity(tmp_path, frac_bits=2)))
    rows = [[1, 2, 3, 4], [-1, 0, 5, 9], [7, 7, 7, -7]]
    buf = b"".join(abi.pack_request(100 + k, 4, np.array(r)) for k, r in enumerate(rows))
    data, n = daemon.answer({4: m}, buf)
    # raw * 0.5 * 2^2 = raw * 2, one 40-byte answer per request, in order
    assert n == 3 and data == b"".join(abi.pack_response(100 + k, 4, 2 * np.array(r))
                                       for k, r in enumerate(rows))
    # odd n_out, several rows (the record-array path): a zero padding word per record
    ys = np.array([[5, 6, 7], [-1, 0, 1], [2**31 - 1, -(2**31), 3]])
    packed = abi.pack_responses(np.array([7, 8, 9], dtype=np.uint64), 1, ys)
    assert len(packed) == 3 * 40
    assert packed == b"".join(abi.pack_response(7 + k, 1, y) for k, y in enumerate(ys))
    assert packed[36:40] == b"\0" * 4


def _onnx(path, n_in, n_out, batch="batch", in_type=None, inputs=1, tail=None):
    """x @ ones -> y; ``tail`` adds a last node that breaks one rule:
    transpose (batch on axis 1), softmax0 (rows mixed), const (an output
    that ignores the batch), string (not a number)."""
    import onnx
    from onnx import TensorProto, helper
    t = in_type or TensorProto.FLOAT
    ins = [helper.make_tensor_value_info(f"x{i}" if i else "x", t, [batch, n_in])
           for i in range(inputs)]
    w = onnx.numpy_helper.from_array(np.ones((n_in, n_out), np.float32), "w")
    mm = "y" if tail is None else "mm"
    nodes = [helper.make_node("Cast", ["x"], ["xf"], to=TensorProto.FLOAT),
             helper.make_node("MatMul", ["xf", "w"], [mm])]
    y_type, y_shape = TensorProto.FLOAT, [batch, n_out]
    if tail == "transpose":
        nodes.append(helper.make_node("Transpose", [mm], ["y"], perm=[1, 0]))
        y_shape = [n_out, batch]
    elif tail == "softmax0":
        nodes.append(helper.make_node("Softmax", [mm], ["y"], axis=0))
    elif tail == "const":
        nodes.append(helper.make_node("Constant", [], ["y"], value=onnx.numpy_helper.from_array(
            np.ones((2, n_out), np.float32))))
        y_shape = [2, n_out]
    elif tail == "string":
        nodes.append(helper.make_node("Cast", [mm], ["y"], to=TensorProto.STRING))
        y_type = TensorProto.STRING
    y = helper.make_tensor_value_info("y", y_type, y_shape)
    m = helper.make_model(helper.make_graph(nodes, "g", ins, [y], [w]),
                          opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


@pytest.mark.parametrize("case,words", [
    ("fixed_batch", ["cannot run a batch of 1 or 4 rows"]),
    ("fixed_batch_2", ["cannot run a batch of 1 or 4 rows"]),
    ("n_out", ["gives outputs of shape (1, 3)", "(1, 2)"]),
    # before the row checks, each of these four loaded, and then mixed
    # requests' answers, answered only batches of 2, or failed every batch
    ("transpose", ["gave an output of shape (3, 1)"]),
    ("softmax0", ["depends on the other rows of its batch"]),
    ("const", ["gave an output of shape (2, 3)"]),
    ("string", ["is tensor(string), not a numeric tensor"]),
    ("double", ["is not tensor(float)"]),
    ("two_inputs", ["has 2 inputs"]),
    ("input_name", ["no input named 'nope'"]),
    ("output_name", ["no output named 'nope'"]),
])
def test_model_that_would_fail_at_serve_time_is_refused_at_load(tmp_path, case, words):
    from onnx import TensorProto
    kw, extra = {}, {}
    n_out = 2 if case == "n_out" else 3
    if case == "fixed_batch":
        kw["batch"] = 1
    if case == "fixed_batch_2":
        kw["batch"] = 2
    if case in ("transpose", "softmax0", "const", "string"):
        kw["tail"] = case
    if case == "double":
        kw["in_type"] = TensorProto.DOUBLE
    if case == "two_inputs":
        kw["inputs"] = 2
    if case == "input_name":
        extra["onnx_input"] = "nope"
    if case == "output_name":
        extra["onnx_output"] = "nope"
    d = write_model_dir(tmp_path / "m", "m", _onnx(tmp_path, 4, 3, **kw), 4, n_out, **extra)
    with pytest.raises(UserError) as e:
        daemon.Model(load_manifest(d))
    for w in words:
        assert w in str(e.value), str(e.value)


@pytest.mark.parametrize("key,value", [("timeout_ms", "abc"), ("timeout_ms", None),
                                       ("timeout_ms", 0), ("timeout_ms", 60001),
                                       ("timeout_ms", 0.5), ("features", 5), ("onnx", 5)])
def test_manifest_values_are_checked(ident, tmp_path, key, value):
    import shutil
    d = tmp_path / "m"
    shutil.copytree(ident, d)
    f = next(d.glob("*.json"))
    m = json.loads(f.read_text())
    m[key] = value
    f.write_text(json.dumps(m))
    with pytest.raises(UserError, match=key):
        load_manifest(d)


@pytest.mark.parametrize("key,value,words", [
    # each of these used to end in a traceback (exit 1) or load a wrong value
    ("raw_scale", 10**400, "raw_scale values must be finite"),
    ("raw_scale", "0.5", "raw_scale must be a number or a list"),
    ("raw_scale", [1, 1, 1], "list of n_in (4) numbers"),
    ("n_in", True, "n_in True"),
    ("n_out", True, "n_out True"),
    ("frac_bits", True, "frac_bits True"),
    (None, None, "is not valid JSON"),
])
def test_manifest_types_are_checked(ident, tmp_path, key, value, words):
    d = tmp_path / "m"
    shutil.copytree(ident, d)
    f = next(d.glob("*.json"))
    m = json.loads(f.read_text())
    if key is None:
        f.write_text("[" * 100000)  # nested past Python's recursion limit
    else:
        m[key] = value
        f.write_text(json.dumps(m))
    with pytest.raises(UserError) as e:
        load_manifest(d)
    assert words in str(e.value)
    r = subprocess.run([sys.executable, "-m", "ml_lib.cli.mlproxyd", str(d)],
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and words in r.stderr, r.stderr


def test_manifest_onnx_null_means_the_default_name(ident, tmp_path):
    d = tmp_path / "m"
    shutil.copytree(ident, d)
    f = next(d.glob("*.json"))
    m = json.loads(f.read_text())
    m["onnx"] = None
    f.write_text(json.dumps(m))
    assert load_manifest(d).onnx_path == d / f"{m['name']}.onnx"


def test_fixed_point_rounding_is_exact_for_float64():
    from ml_lib.proxy.manifest import to_fixed
    below = np.nextafter(0.5, 0)  # 0.49999999999999994: floor(v + 0.5) gave 1
    assert to_fixed(np.array([below, 0.5, -0.5, -below, 2.5, np.inf, -np.inf]), 0).tolist() == \
        [0, 1, 0, 0, 3, 2**31 - 1, -(2**31)]


def test_to_raw_saturates_and_refuses_nan(ident):
    man = load_manifest(ident)
    assert man.to_raw(np.array([[1e30, -1e30, np.inf, 2.5]])).tolist() == \
        [[2**62, -(2**62), 2**62, 3]]
    with pytest.raises(UserError, match="NaN"):
        man.to_raw(np.array([[np.nan, 0, 0, 0]]))


SERVE_DRIVER = r"""
import sys, faulthandler, signal as _s; faulthandler.register(_s.SIGUSR1)
import numpy as np
from ml_lib.proxy import daemon

fifo, ready, answers, *dirs = sys.argv[1:]
out = open(answers, "ab", buffering=0)


def register(fd, models):
    for i, m in enumerate(models):
        m.model_id = i
    if len(models) > 1:  # the second model's batches fail after loading fine
        def boom(raw):
            raise RuntimeError("onnxruntime: simulated failure")
        models[1].run_raw = boom
    return {m.model_id: m for m in models}


daemon.register = register
daemon.refresh = lambda fd, models, by_id: by_id  # a FIFO takes no ioctl
daemon.write_answers = lambda fd, data: out.write(data) and 0
sys.exit(daemon.serve(dirs, device=fifo, ready=ready))
"""


def test_serve_keeps_serving_after_a_failing_model_and_stops_cleanly(ident, tmp_path):
    """serve() itself, over a FIFO standing in for /dev/ml_lib: a model whose
    batch fails costs only its own answers; SIGTERM and then a stream of
    SIGINTs still exit 0 (a SIGINT during the interpreter's exit used to
    end it with -2)."""
    import os
    import signal
    import time
    b = write_model_dir(tmp_path / "b", "b", (Path(ident) / "ident.onnx").read_bytes(), 4, 4,
                        raw_scale=1.0, frac_bits=0)
    fifo, ready, answers = tmp_path / "dev", tmp_path / "ready", tmp_path / "answers"
    os.mkfifo(fifo)
    drv = tmp_path / "drv.py"
    drv.write_text(SERVE_DRIVER)
    p = subprocess.Popen([sys.executable, str(drv), str(fifo), str(ready), str(answers),
                          str(ident), str(b)], stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(600):
            if ready.exists() or p.poll() is not None:
                break
            time.sleep(0.05)
        assert ready.exists(), p.stderr.read() if p.poll() is not None else "not ready"
        w = os.open(fifo, os.O_WRONLY)
        # one read with requests for both models, then one for the good model alone
        os.write(w, abi.pack_request(1, 0, np.array([1, 2, 3, 4])) +
                 abi.pack_request(2, 1, np.array([5, 6, 7, 8])))
        for _ in range(200):
            if answers.exists() and answers.stat().st_size >= 40:
                break
            time.sleep(0.05)
        os.write(w, abi.pack_request(3, 0, np.array([9, 9, 9, 9])))
        for _ in range(200):
            if answers.stat().st_size >= 80:
                break
            time.sleep(0.05)
        assert p.poll() is None, p.stderr.read()
        # SIGTERM, then SIGINT over and over until it has exited: one
        # arriving while the interpreter exits must not kill it either
        p.send_signal(signal.SIGTERM)
        for _ in range(30000):
            if p.poll() is not None:
                break
            p.send_signal(signal.SIGINT)
            time.sleep(0.001)
        rc = p.wait(timeout=30)
        err = p.stderr.read()
        os.close(w)
    finally:
        if p.poll() is None:
            p.kill()
    assert rc == 0 and "Traceback" not in err and "Logging error" not in err, err
    assert ("b: a batch of 1 failed (onnxruntime: simulated failure); 1 left to the "
            "kernel's fallback") in err
    assert answers.read_bytes() == abi.pack_response(1, 0, np.array([1, 2, 3, 4])) + \
        abi.pack_response(3, 0, np.array([9, 9, 9, 9]))
