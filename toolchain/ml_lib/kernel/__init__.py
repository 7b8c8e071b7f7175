"""Run ml_lib models in a booted Debian kernel (virtme-ng, QEMU TCG).

The host builds ml_lib.ko and model modules against Debian's headers, then
one boot (``vng --run /boot/vmlinuz-<ver> --disable-kvm``; or a kernel
tree of one's own, :func:`kernel_tree`) with the host's
filesystem runs :mod:`ml_lib.kernel.guest` as root inside the guest: it
inserts the modules, drives inference through the debugfs test interface
(/sys/kernel/debug/ml_lib/) and writes the outputs and the kernel log back
to a shared directory. A guest kernel log with a WARNING, BUG, KASAN, UBSAN
or Oops line fails the run.

- :func:`run_exported` runs a directory written by ``mlexport --target
  kernel`` (``mlrun DIR X.npy --engine kernel`` calls it);
- :func:`boot` runs many module and blob models (:class:`Job`) in one boot.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import UserError

__all__ = ["KernelError", "KernelLogError", "kernel_version", "default_kernel_version",
           "kernel_tree", "kernel_build_dir", "kernel_image",
           "build_ml_lib_module",
           "build_model_module", "boot", "run_exported", "check_sha256",
           "BAD_LOG"]

REPO = Path(__file__).resolve().parents[3]
BUILD = REPO / "build"
#: guest kernel log lines that fail a booted run
#: (case-sensitive: Debian's boot log says "report a bug" and "not a bug")
BAD_LOG = re.compile(r"\bWARNING\b|\bBUG\b|KASAN|UBSAN|\bOops\b|general protection fault|"
                     r"Call Trace|Kernel panic|refcount_t:|list_(add|del) corruption")
BOOT_TIMEOUT = 900


class KernelError(RuntimeError):
    """Building, booting or running in the guest failed."""


class KernelLogError(KernelError):
    """The guest kernel logged a warning, BUG, KASAN/UBSAN report or oops."""


def _installed(ver: str) -> bool:
    return Path(f"/lib/modules/{ver}/build").is_dir() and Path(f"/boot/vmlinuz-{ver}").is_file()


def default_kernel_version() -> str:
    """Newest installed Debian linux-headers-<version>-amd64 with its image, never
    ``uname -r`` and never a flavour such as ``-rt-amd64`` or ``-cloud-amd64`` (a
    variant of the same kernel, not a newer one; ``make check-rt`` asks for the
    PREEMPT_RT one by name)."""
    heads = sorted((h for h in Path("/usr/src").glob("linux-headers-*-amd64")
                    if re.fullmatch(r"linux-headers-[0-9.]+-[0-9]+-amd64", h.name)),
                   key=lambda p: [int(x) if x.isdigit() else x
                                  for x in re.split(r"[.-]", p.name[len("linux-headers-"):])])
    for h in reversed(heads):
        ver = h.name[len("linux-headers-"):]
        if _installed(ver):
            return ver
    raise UserError("no Debian kernel with headers and image found (need linux-headers-amd64 and "
                    "linux-image-amd64 of the same version; run `make setup` as root)")


def kernel_tree() -> Path | None:
    """``$ML_LIB_KTREE``: a built kernel tree (the ``O=`` directory of a kernel
    build, e.g. the debug kernel of ``make debug-kernel``) that every module
    build and boot here uses instead of an installed Debian kernel, or None."""
    t = os.environ.get("ML_LIB_KTREE")
    if not t:
        return None
    tree = Path(t).resolve()
    need = ("include/config/kernel.release", "arch/x86/boot/bzImage", "Module.symvers")
    missing = [n for n in need if not (tree / n).is_file()]
    if missing:
        raise UserError(f"ML_LIB_KTREE={t}: not a built kernel tree (no {missing[0]}; "
                        f"`make debug-kernel` builds one)")
    return tree


def kernel_version() -> str:
    """The kernel every build and boot here uses: the release of
    ``$ML_LIB_KTREE`` when set (:func:`kernel_tree`), else ``$ML_LIB_KVER`` when
    set (the Makefile's ``KVER``, e.g. ``6.1.0-56-rt-amd64``), else
    :func:`default_kernel_version`."""
    tree = kernel_tree()
    if tree:
        return (tree / "include/config/kernel.release").read_text().strip()
    ver = os.environ.get("ML_LIB_KVER")
    if not ver:
        return default_kernel_version()
    if not _installed(ver):
        raise UserError(f"ML_LIB_KVER={ver}: needs /lib/modules/{ver}/build and /boot/vmlinuz-{ver} "
                        f"(apt-get install linux-image-{ver} linux-headers-{ver})")
    return ver


def kernel_build_dir() -> Path:
    """Where modules are built against: :func:`kernel_tree`, or the installed
    kernel's /lib/modules/<version>/build."""
    return kernel_tree() or Path(f"/lib/modules/{kernel_version()}/build")


def kernel_image() -> Path:
    """The kernel image the guest boots: :func:`kernel_tree`'s bzImage, or
    the installed kernel's /boot/vmlinuz-<version>."""
    tree = kernel_tree()
    return tree / "arch/x86/boot/bzImage" if tree else Path(f"/boot/vmlinuz-{kernel_version()}")


def _make(args: list[str], log: Path) -> None:
    r = subprocess.run(["make", *args], capture_output=True, text=True)
    log.write_text(r.stdout + r.stderr)
    if r.returncode:
        tail = "\n".join((r.stdout + r.stderr).splitlines()[-25:])
        raise KernelError(f"kernel module build failed (log {log}):\n{tail}")


def build_ml_lib_module(out: Path | None = None, proxy: bool | None = None) -> Path:
    """Build ml_lib.ko out of tree; returns a private copy of it (with its Module.symvers).

    The build itself is incremental in build/kmod-boot/<version> (a copy of
    lib/ml and include/, so no object lands in the repository), serialised by a lock;
    the returned ko lives in ``out`` (default: a fresh directory under
    build/), so a concurrent rebuild cannot change it under a running boot.
    """
    ver = kernel_version()
    cache = BUILD / "kmod-boot" / ver
    cache.mkdir(parents=True, exist_ok=True)
    dest = Path(out) if out else Path(tempfile.mkdtemp(prefix="kmod-", dir=BUILD))
    dest.mkdir(parents=True, exist_ok=True)
    with open(BUILD / "kmod-boot.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        ko = _build_ml_lib(cache, proxy)
        shutil.copy2(ko, dest / "ml_lib.ko")
        shutil.copy2(ko.parent / "Module.symvers", dest / "Module.symvers")
    return dest / "ml_lib.ko"


def _build_ml_lib(out: Path, proxy: bool | None) -> Path:
    if proxy is None:
        proxy = (REPO / "lib/ml/proxy.c").is_file()
    # rsync keeps the previous build's objects (excluded = not deleted), so
    # Kbuild recompiles only what changed
    excl = [f"--exclude={p}" for p in ("*.o", ".*.cmd", "*.ko", "*.mod", "*.mod.c", "*.a",
                                        "Module.symvers", "modules.order", "build.log")]
    for sub in ("lib/ml", "include"):
        (out / sub).mkdir(parents=True, exist_ok=True)
        r = subprocess.run(["rsync", "-a", "--delete", *excl, f"{REPO / sub}/", f"{out / sub}/"],
                           capture_output=True, text=True)
        if r.returncode:
            raise KernelError(f"rsync {sub}: {r.stderr.strip()}")
    mdir = out / "lib/ml"
    _make(["-C", str(kernel_build_dir()), f"M={mdir}", "CONFIG_ML_LIB=m",
           f"CONFIG_ML_LIB_PROXY={'y' if proxy else 'n'}", "modules"], out / "build.log")
    return mdir / "ml_lib.ko"


def _model_name(model_dir: Path) -> str:
    # a model may itself be called x_mod: then x_mod.c and x_mod_mod.c exist
    names = [p.name[:-len("_mod.c")] for p in sorted(model_dir.glob("*_mod.c"))]
    names = [n for n in names if (model_dir / f"{n}.c").is_file()] or names
    if len(names) != 1:
        raise UserError(f"{model_dir}: expected one <name>_mod.c from `mlexport --target kernel`, "
                        f"found {len(names)}")
    name = names[0]
    for f in (f"{name}.c", f"{name}.h"):
        if not (model_dir / f).is_file():
            raise UserError(f"{model_dir}: {f} is missing (re-run mlexport --target kernel)")
    return name


def build_model_module(model_dir: Path, ml_lib_ko: Path, out: Path | None = None) -> Path:
    """Build the model module of an exported directory against the headers."""
    model_dir = Path(model_dir)
    name = _model_name(model_dir)
    if out is None:
        (BUILD / "kmod-models").mkdir(parents=True, exist_ok=True)
        out = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=BUILD / "kmod-models"))
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for f in (f"{name}.c", f"{name}.h", f"{name}_mod.c"):
        shutil.copy2(model_dir / f, out / f)
    kbuild = model_dir / "Kbuild"
    if kbuild.is_file():
        shutil.copy2(kbuild, out / "Kbuild")
    else:
        (out / "Kbuild").write_text(f"obj-m += {name}_ml.o\n{name}_ml-y := {name}.o {name}_mod.o\n")
    symvers = Path(ml_lib_ko).parent / "Module.symvers"
    _make(["-C", str(kernel_build_dir()), f"M={out}", f"KBUILD_EXTRA_SYMBOLS={symvers}",
           f"KCFLAGS=-I{REPO / 'include'}", "modules"], out / "build.log")
    kos = sorted(out.glob("*.ko"))
    if len(kos) != 1:
        raise KernelError(f"{out}: expected one .ko, found {[k.name for k in kos]}")
    return kos[0]


@dataclass
class Job:
    """One thing the guest does, in order: load a blob and/or run inputs.

    ``blob``: bytes written to debugfs ``load`` (None for a model a module
    registered). ``name``: the model name. ``raw``: (batch, n_in) int64 or
    None. ``expect_errno``: the load must fail with this errno name.
    """

    name: str
    blob: bytes | None = None
    raw: np.ndarray | None = None
    expect_errno: str | None = None
    unload: bool = True


@dataclass
class BootResult:
    outputs: dict[int, np.ndarray] = field(default_factory=dict)
    errors: dict[int, str] = field(default_factory=dict)
    #: job -> the SHA-256 the kernel reports for the job's model (debugfs stats)
    sha256: dict[int, str] = field(default_factory=dict)
    dmesg: str = ""
    console: str = ""
    #: module -> rmmod's message, for each of ``pinned`` whose removal failed
    busy: dict[str, str] = field(default_factory=dict)


def boot(modules: list[Path], jobs: list[Job], cpus: int = 2, check_log: bool = True,
         pinned: tuple[str, ...] = ()) -> BootResult:
    """Boot Debian's kernel once, insmod ``modules`` in order, run ``jobs``.

    Before the modules are removed (in reverse order), ``rmmod`` is tried on
    each module named in ``pinned``; the ones it could not remove are in
    ``BootResult.busy``.

    Raises :class:`KernelLogError` when the guest kernel log has a bad line
    (with ``check_log``), :class:`KernelError` when the guest could not run.
    """
    image = kernel_image()
    vng = shutil.which("vng", path=os.pathsep.join([str(Path(sys.executable).parent),
                                                      os.environ.get("PATH", "")]))
    if not vng:
        raise UserError("virtme-ng (vng) is not installed in this Python environment "
                        "(pip install virtme-ng, or `make setup`)")
    BUILD.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="vng-", dir=BUILD))
    try:
        spec = {"modules": [str(Path(m).resolve()) for m in modules], "jobs": [],
                "pinned": list(pinned)}
        for i, j in enumerate(jobs):
            e = {"name": j.name, "expect_errno": j.expect_errno, "unload": j.unload}
            if j.blob is not None:
                (work / f"{i}.mlb").write_bytes(j.blob)
                e["blob"] = f"{i}.mlb"
            if j.raw is not None:
                (work / f"{i}.in.bin").write_bytes(np.ascontiguousarray(j.raw, "<i8").tobytes())
                e["raw"], e["rows"] = f"{i}.in.bin", int(j.raw.shape[0])
            spec["jobs"].append(e)
        (work / "spec.json").write_text(json.dumps(spec))
        # -S: no site-packages; the guest script needs only the standard library
        guest = f"{sys.executable} -S {Path(__file__).parent / 'guest.py'} {work}"
        env = dict(os.environ, PATH=os.pathsep.join([str(Path(vng).parent),
                                                     os.environ.get("PATH", "")]),
                   PYTHONPATH=str(REPO / "toolchain"))
        cmd = [vng, "--run", str(image), "--disable-kvm", "--force-9p", "--verbose",
               "--cpus", str(cpus), "--memory", "1G", f"--rwdir={work}", "--cwd", str(work),
               "--exec", guest]
        timeout = boot_timeout(BOOT_TIMEOUT)
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                               stdin=subprocess.DEVNULL, env=env)
        except subprocess.TimeoutExpired as e:
            raise KernelError(f"guest did not finish within {timeout} s") from e
        # --verbose: the console carries the whole kernel log, so a guest
        # that panics before the script writes dmesg.txt still shows why
        res = BootResult(console=r.stdout + r.stderr)
        dm = work / "dmesg.txt"
        res.dmesg = dm.read_text(errors="replace") if dm.exists() else ""
        status = work / "result.json"
        if not status.exists():
            raise KernelError(f"guest produced no result (vng exit {r.returncode}); console tail:\n"
                              + "\n".join(res.console.splitlines()[-40:]))
        result = json.loads(status.read_text())
        if result.get("fatal"):
            raise KernelError(f"in the guest: {result['fatal']}\n" + _log_tail(res.dmesg))
        for k, v in result["errors"].items():
            res.errors[int(k)] = v
        res.busy = result.get("busy", {})
        res.sha256 = {int(k): v for k, v in result["sha256"].items()}
        for k, n_out in result["n_out"].items():
            out = np.frombuffer((work / f"{k}.out.bin").read_bytes(), dtype="<i4")
            res.outputs[int(k)] = out.reshape(jobs[int(k)].raw.shape[0], n_out).astype(np.int32)
        bad = [ln for ln in (res.dmesg + "\n" + res.console).splitlines() if BAD_LOG.search(ln)]
        if check_log and bad:
            raise KernelLogError("guest kernel log has warnings/errors:\n" + "\n".join(bad[:40]))
        _check_kmemleak(result.get("kmemleak"),
                        ml_lib_loaded="ml_lib" in {Path(m).stem for m in modules})
        return res
    finally:
        shutil.rmtree(work, ignore_errors=True)


def boot_timeout(seconds: int) -> int:
    """A guest's time bound: ``seconds`` for Debian's kernels, 4x that in a
    :func:`kernel_tree` built with KASAN (the debug kernel runs about 8x slower
    under TCG; its 4M-parameter proxy run needed 15 min against a 15 min bound).
    A bound only: a guest that finishes sooner is not waited for."""
    tree = kernel_tree()
    slow = bool(tree) and "CONFIG_KASAN=y" in (tree / ".config").read_text().split()
    return seconds * 4 if slow else seconds


def kmemleak_expected() -> bool:
    """The booted kernel has kmemleak: a :func:`kernel_tree` built with it."""
    tree = kernel_tree()
    return bool(tree) and "CONFIG_DEBUG_KMEMLEAK=y" in (tree / ".config").read_text().split()


def _check_kmemleak(leaks: list[str] | None, ml_lib_loaded: bool) -> None:
    """Fails a boot whose kmemleak scan found objects ml_lib allocated and
    lost, or that loaded ml_lib.ko into a kmemleak kernel and did not scan."""
    if leaks:
        raise KernelLogError(f"kmemleak: {len(leaks)} objects allocated in ml_lib leaked:\n"
                             + "\n".join(leaks[:5]))
    if ml_lib_loaded and leaks is None and kmemleak_expected():
        raise KernelError("the kernel has kmemleak, but the guest did not scan")


def _build_dir() -> Path:
    BUILD.mkdir(exist_ok=True)
    return BUILD


def _log_tail(dmesg: str, n: int = 30) -> str:
    return "guest dmesg tail:\n" + "\n".join(dmesg.splitlines()[-n:])


def _check_raw(raw, n_in: int | None = None) -> np.ndarray:
    a = np.asarray(raw)
    if a.dtype.kind not in "iu":
        raise UserError(f"kernel engine takes raw integer features, got dtype {a.dtype}")
    if a.ndim != 2:
        raise UserError(f"raw features must have shape (batch, n_in), got {a.shape}")
    if n_in is not None and a.shape[1] != n_in:
        raise UserError(f"raw features have {a.shape[1]} columns, the model takes {n_in}")
    return a.astype(np.int64)


def run_exported(model_dir, raw: np.ndarray) -> np.ndarray:
    """Build an ``mlexport --target kernel`` directory as a module, boot, infer.

    Returns int32 (batch, n_out): what the booted kernel's engine computed
    for each row of ``raw`` (int64, (batch, n_in)).
    """
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise UserError(f"{model_dir}: no such directory")
    name = _model_name(model_dir)
    blob = _exported_blob(model_dir, name)
    raw = _check_raw(raw)
    with tempfile.TemporaryDirectory(prefix="run-exported-", dir=_build_dir()) as tmp:
        ko = build_ml_lib_module(Path(tmp) / "ml_lib")
        model_ko = build_model_module(model_dir, ko, Path(tmp) / name)
        res = boot([ko, model_ko], [Job(name, raw=raw, unload=False)])
    if 0 in res.errors:
        raise KernelError(f"model {name} in the kernel: {res.errors[0]}\n" + _log_tail(res.dmesg))
    check_sha256(name, res.sha256.get(0), blob)
    return res.outputs[0].astype(np.int32)


def _exported_blob(model_dir: Path, name: str) -> bytes:
    try:
        return (model_dir / f"{name}.mlb").read_bytes()
    except OSError as e:
        raise UserError(f"{model_dir}: cannot read {name}.mlb, the blob exported beside the C "
                        f"tables: {e.strerror or e}") from e


def check_sha256(name: str, kernel_sha256: str | None, blob: bytes) -> None:
    """The model the kernel ran is the one in ``blob``: the SHA-256 the kernel
    computed from its tables (written out as a blob, lib/ml/blob.c) equals
    the blob's. Raises KernelError naming both otherwise."""
    want = hashlib.sha256(blob).hexdigest()
    if kernel_sha256 != want:
        raise KernelError(f"model {name}: the kernel's tables have sha256 {kernel_sha256}, the "
                          f"exported blob {want}: the kernel does not run the exported model")
