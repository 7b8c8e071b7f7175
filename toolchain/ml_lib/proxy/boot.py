# SPDX-License-Identifier: GPL-2.0
"""Boot Debian's kernel under QEMU TCG with virtme-ng and run one command.

Minimal on purpose, written before the kernel concern's harness
(toolchain/ml_lib/kernel/) landed; it should become a call to that one.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

TOP = Path(__file__).resolve().parents[3]


def kernel_image() -> str:
    imgs = sorted(glob.glob("/boot/vmlinuz-*-amd64"))
    if not imgs:
        raise RuntimeError("no /boot/vmlinuz-*-amd64: apt-get install linux-image-amd64")
    return imgs[-1]


def vng_available() -> bool:
    return bool(shutil.which("vng", path=_path())) and bool(glob.glob("/boot/vmlinuz-*-amd64"))


def _path() -> str:
    return os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])


def boot(command: str, rwdir, timeout: int = 900, memory: str = "2G") -> subprocess.CompletedProcess:
    """Run ``command`` as root in a guest booted from the host's filesystem,
    which it sees read-only except ``rwdir`` (where results go)."""
    env = dict(os.environ, PATH=_path())
    cmd = ["vng", "--run", kernel_image(), "--disable-kvm", "--force-9p", "--user", "root",
           "--memory", memory, "--cpus", "2", f"--rwdir={rwdir}", "--exec", command]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


def build_modules() -> Path:
    """Build ml_lib.ko (with the proxy) and the test caller; return build/proxy."""
    subprocess.run(["make", "-s", "-C", str(TOP), "proxy-modules"], check=True,
                   capture_output=True, text=True)
    return TOP / "build" / "proxy"
