"""Runs INSIDE the virtme-ng guest, as root: modules, debugfs I/O, kernel log.

    python .../ml_lib/kernel/guest.py WORKDIR

WORKDIR (shared read-write with the host) holds spec.json and <i>.in.bin
(little-endian s64 rows) written by :func:`ml_lib.kernel.boot`; this writes
<i>.out.bin (little-endian s32 rows), result.json and dmesg.txt. Standard
library only, run as a plain script (not through the ml_lib package): a
Python start under TCG over 9p is slow enough without importing numpy.
"""
from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import time
from pathlib import Path

DEBUGFS = Path("/sys/kernel/debug")
ROOT = DEBUGFS / "ml_lib"
MODELS = ROOT / "models"  # one directory per engine model
KMEMLEAK = DEBUGFS / "kmemleak"
# the kernel's bounds per write on the infer file (lib/ml/model.c)
MAX_INFER_IN = 1 << 20
MAX_INFER_OUT = 4 << 20


def _run(cmd: list[str]) -> None:
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f"{' '.join(cmd)}: {(r.stderr or r.stdout).strip()}")


def kmemleak_ml_lib() -> list[str] | None:
    """kmemleak's unreferenced objects whose allocation backtrace is in ml_lib,
    or None when the kernel has no kmemleak (Debian's do not; the debug
    kernel of ``make debug-kernel`` does). Call it while ml_lib.ko is still
    loaded, so the backtraces resolve to its symbols. kmemleak reports an
    object only once it is 5 s old, hence the wait."""
    if not KMEMLEAK.exists():
        return None
    time.sleep(6)
    KMEMLEAK.write_text("scan")
    records = KMEMLEAK.read_text().split("unreferenced object ")[1:]
    return [r.strip() for r in records if "ml_lib" in r]


def _stats(name: str) -> dict[str, str]:
    text = (MODELS / name / "stats").read_text()
    return dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)


def _write_all(fd: int, data: bytes) -> None:
    n = os.write(fd, data)
    if n != len(data):
        raise RuntimeError(f"short write: {n} of {len(data)} bytes")


def infer(name: str, data: bytes, rows: int) -> tuple[bytes, int]:
    """Rows (little-endian s64) through /sys/kernel/debug/ml_lib/models/<name>/infer,
    in bounded chunks; returns the little-endian s32 outputs and n_out."""
    st = _stats(name)
    n_in, n_out = int(st["n_in"]), int(st["n_out"])
    row_bytes = 8 * n_in
    if len(data) != rows * row_bytes:
        raise RuntimeError(f"{name} takes {n_in} features: {len(data)} bytes is not {rows} rows")
    per = max(1, min(MAX_INFER_IN // row_bytes, MAX_INFER_OUT // (4 * n_out)))
    outs = bytearray()
    fd = os.open(MODELS / name / "infer", os.O_RDWR)
    try:
        try:  # a stream (nonseekable_open() clears FMODE_LSEEK): lseek is -ESPIPE
            os.lseek(fd, 0, os.SEEK_SET)
            raise RuntimeError(f"{name}/infer is seekable; it must be a stream")
        except OSError as e:
            if e.errno != errno.ESPIPE:
                raise
        for s in range(0, rows, per):
            chunk = data[s * row_bytes:(s + per) * row_bytes]
            _write_all(fd, chunk)
            want = len(chunk) // row_bytes * n_out * 4
            buf = b""
            while len(buf) < want:
                part = os.read(fd, want - len(buf))
                if not part:
                    raise RuntimeError(f"infer returned {len(buf)} of {want} bytes")
                buf += part
            if os.read(fd, 4):
                raise RuntimeError("infer returned more bytes than rows * n_out")
            outs += buf
    finally:
        os.close(fd)
    return bytes(outs), n_out


def load(blob: bytes) -> None:
    fd = os.open(ROOT / "load", os.O_WRONLY)
    try:
        _write_all(fd, blob)
    finally:
        os.close(fd)


def unload(name: str) -> None:
    fd = os.open(ROOT / "unload", os.O_WRONLY)
    try:
        _write_all(fd, name.encode())
    finally:
        os.close(fd)


def main(work: Path) -> int:
    spec = json.loads((work / "spec.json").read_text())
    result: dict = {"errors": {}, "fatal": None, "n_out": {}, "sha256": {}}
    inserted: list[str] = []
    try:
        if not ROOT.parent.joinpath("ml_lib").exists() and not os.path.ismount(DEBUGFS):
            _run(["mount", "-t", "debugfs", "none", str(DEBUGFS)])
        for ko in spec["modules"]:
            _run(["insmod", ko])
            inserted.append(Path(ko).stem)
        for i, job in enumerate(spec["jobs"]):
            name = job["name"]
            try:
                if "blob" in job:
                    try:
                        load((work / job["blob"]).read_bytes())
                    except OSError as e:
                        got = errno.errorcode.get(e.errno, str(e.errno))
                        if job["expect_errno"] != got:
                            raise
                        continue
                    if job["expect_errno"]:
                        raise RuntimeError(f"load succeeded, expected {job['expect_errno']}")
                if "raw" in job:
                    out, n_out = infer(name, (work / job["raw"]).read_bytes(), job["rows"])
                    (work / f"{i}.out.bin").write_bytes(out)
                    result["n_out"][str(i)] = n_out
                # what the kernel hashed from the tables it runs
                result["sha256"][str(i)] = _stats(name)["sha256"]
                if "blob" in job and job["unload"]:
                    unload(name)
            except (OSError, RuntimeError) as e:
                code = errno.errorcode.get(getattr(e, "errno", None) or 0, "")
                result["errors"][str(i)] = f"{code} {e}".strip()
        # a module whose model someone holds must refuse to go (not block)
        result["busy"] = {}
        for mod in spec.get("pinned", []):
            r = subprocess.run(["rmmod", mod], capture_output=True, text=True, timeout=60)
            if r.returncode:
                result["busy"][mod] = r.stderr.strip()
            else:
                inserted.remove(mod)
        # unregistering paths run too, and their log lines are checked
        for mod in reversed(inserted):
            if mod == "ml_lib":  # every other module is gone: what ml_lib still holds
                result["kmemleak"] = kmemleak_ml_lib()
            _run(["rmmod", mod])
    except Exception as e:  # reported to the host, which raises
        result["fatal"] = f"{type(e).__name__}: {e}"
    finally:
        r = subprocess.run(["dmesg"], capture_output=True, text=True)
        (work / "dmesg.txt").write_text(r.stdout)
        (work / "result.json").write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
