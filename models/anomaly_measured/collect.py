#!/usr/bin/env python3
"""COLLECTOR (measured data): boot Debian's kernel under QEMU TCG
(virtme-ng), run guest_collect.py in it as root, and keep the counters it
recorded as counters.npz here.

The counters are the guest kernel's own (/proc/stat, /proc/vmstat) under a
real workload and real injected anomalies; what is not real is the
machine: an emulated 2-CPU guest on a shared host, so the rates are those
of this emulator, not of hardware. Usage: collect.py [seconds] (default
420; about that long plus a boot).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "toolchain"))


def main(seconds: int = 420) -> None:
    from ml_lib.kernel import kernel_version
    ver = kernel_version()
    vng = shutil.which("vng", path=os.pathsep.join([str(Path(sys.executable).parent),
                                                      os.environ.get("PATH", "")]))
    work = Path(tempfile.mkdtemp(prefix="collect-", dir=REPO / "build"))
    cmd = [vng, "--run", f"/boot/vmlinuz-{ver}", "--disable-kvm", "--force-9p", "--cpus", "2",
           "--memory", "1G", f"--rwdir={work}", "--exec",
           f"{sys.executable} {HERE / 'guest_collect.py'} {work} {seconds}"]
    env = dict(os.environ, PATH=os.pathsep.join([str(Path(vng).parent), os.environ["PATH"]]))
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL,
                       timeout=seconds + 900)
    out = work / "counters.npz"
    if not out.exists():
        sys.exit(f"collect: the guest wrote no counters (vng exit {r.returncode}):\n"
                 + "\n".join((r.stdout + r.stderr).splitlines()[-20:]))
    shutil.copy2(out, HERE / "counters.npz")
    print(next((ln for ln in r.stdout.splitlines() if ln.startswith("guest_collect:")), ""))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 420)
