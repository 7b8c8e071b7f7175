# SPDX-License-Identifier: GPL-2.0
"""Boot Debian's kernel under QEMU TCG with virtme-ng and run one command.

The kernel harness (ml_lib.kernel) builds ml_lib.ko; its boot() runs its
own guest job list, so the proxy's guest driver (ml_lib.proxy.guest, which
needs to start daemons and raw clients between kernel calls) is started by
the small vng call here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

TOP = Path(__file__).resolve().parents[3]


def vng_available() -> bool:
    from ..errors import UserError
    from ..kernel import kernel_version

    try:
        kernel_version()
    except UserError:   # no kernel, ML_LIB_KVER names one not installed, or a bad ML_LIB_KTREE
        return False
    return bool(shutil.which("vng", path=_path()))


def _path() -> str:
    return os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])


def boot(command: str, rwdir, timeout: int = 900, memory: str = "2G") -> subprocess.CompletedProcess:
    """Run ``command`` as root in a guest booted from the host's filesystem,
    which it sees read-only except ``rwdir`` (where results go). ``timeout``
    is the bound for Debian's kernels, scaled for a debug kernel
    (:func:`ml_lib.kernel.boot_timeout`); past it, RuntimeError."""
    from ..kernel import boot_timeout, kernel_image

    env = dict(os.environ, PATH=_path())
    # --verbose: the console carries the kernel log, so the failure tail of a
    # guest that panics or dies without output (a vng exit 255 and nothing
    # else, once, under the debug kernel) shows why
    cmd = ["vng", "--run", str(kernel_image()), "--disable-kvm", "--force-9p", "--verbose",
           "--user", "root", "--memory", memory, "--cpus", "2", f"--rwdir={rwdir}",
           "--exec", command]
    bound = boot_timeout(timeout)
    try:
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=bound)
    except subprocess.TimeoutExpired as e:
        raise RuntimeError(f"guest did not finish within {bound} s (kernel {kernel_image()})") from e


def build_modules() -> Path:
    """ml_lib.ko with the proxy (built by the kernel harness, a private copy a
    concurrent rebuild cannot change under a running boot) and the test caller
    module built against it. Returns the folder holding lib/ml/ml_lib.ko and
    kmod/ml_lib_proxy_test.ko."""
    from ..kernel import build_ml_lib_module, kernel_build_dir, kernel_version

    out = TOP / "build" / "proxy" / "boot" / kernel_version()
    ko = build_ml_lib_module(out / "lib" / "ml", proxy=True)
    kmod = out / "kmod"
    kmod.mkdir(parents=True, exist_ok=True)
    shutil.copy2(TOP / "tests" / "kmod" / "ml_lib_proxy_test.c", kmod)
    (kmod / "Kbuild").write_text(f"obj-m := ml_lib_proxy_test.o\nccflags-y += -I{TOP}/include\n")
    r = subprocess.run(["make", "-s", "-C", str(kernel_build_dir()), f"M={kmod}",
                        "W=1", f"KBUILD_EXTRA_SYMBOLS={ko.parent}/Module.symvers", "modules"],
                       capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f"building the proxy test module failed:\n{(r.stdout + r.stderr)[-2000:]}")
    return out
