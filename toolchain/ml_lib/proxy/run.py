# SPDX-License-Identifier: GPL-2.0
"""``run_exported``: the ``mlrun --engine proxy`` path through a booted kernel."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from .boot import TOP, boot, build_modules
from .manifest import load_manifest

SRC_PROXY = 1


def run_exported(model_dir, x) -> np.ndarray:
    """Boot Debian's kernel, load ml_lib.ko (with the proxy) and the test
    caller, start mlproxyd on ``model_dir`` and send every row of ``x``
    (float features, [k, n_in] or [n_in]) through ml_lib_infer() → /dev/ml_lib
    → mlproxyd → back. Inputs go in as raw s64 (``x / raw_scale`` rounded
    half up); returns [k, n_out] float64 = the daemon's s32 / 2**frac_bits.
    Raises RuntimeError if any answer came from the fallback or the guest's
    kernel log shows a warning."""
    man = load_manifest(model_dir)
    x = np.asarray(x, dtype=np.float64).reshape(-1, man.n_in)
    build = build_modules()
    (build / "run").mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="run-", dir=build / "run"))
    try:
        # the guest sees the host read-only except `work`, and not the host's /tmp
        shutil.copytree(model_dir, work / "model")
        np.save(work / "raw.npy", man.to_raw(x))
        cmd = (f"cd {TOP} && {sys.executable} -m ml_lib.proxy.guest infer --build {build} "
               f"--model-dir {work / 'model'} --raw {work / 'raw.npy'} --out {work / 'y'}")
        cp = boot(cmd, rwdir=work)
        if not (work / "y.json").exists():
            tail = "\n".join((cp.stdout + cp.stderr).strip().splitlines()[-40:])
            raise RuntimeError(f"guest run failed (exit {cp.returncode}):\n{tail}")
        info = json.loads((work / "y.json").read_text())
        res = np.load(work / "y.npz")
        src, out = res["src"], res["out"]
    finally:
        if not os.environ.get("ML_LIB_KEEP"):
            shutil.rmtree(work, ignore_errors=True)
    if info["dmesg_bad"]:
        raise RuntimeError(f"guest kernel log: {info['dmesg_bad'][:3]}")
    if (src != SRC_PROXY).any():
        k = int(np.argmax(src != SRC_PROXY))
        raise RuntimeError(f"row {k} was not answered by mlproxyd (source/errno {src[k]}); "
                           f"stats {info['stats']}")
    return out.astype(np.float64) / 2.0**man.frac_bits
