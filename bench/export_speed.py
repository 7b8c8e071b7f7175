# SPDX-License-Identifier: GPL-2.0
"""Benchmark: mlexport of a ~100k-parameter MLP with 1,000 calibration rows.

Target (issue 3): <= 5 s on the project machine.  Run with
``.venv/bin/python bench/export_speed.py``; prints the wall time of one
in-process export (after a warm-up export, so imports are not counted) and
of a cold `mlexport` subprocess.
"""
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn


def main() -> int:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 512), nn.ReLU(), nn.Linear(512, 128), nn.ReLU(),
                          nn.Linear(128, 10)).eval()
    params = sum(p.numel() for p in model.parameters())
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1000, 64)).astype(np.float32)
    from ml_lib.cli import mlexport
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        torch.save(model, t / "mlp100k.pt")
        np.save(t / "calib.npy", x)
        args = [str(t / "mlp100k.pt"), "--calib", str(t / "calib.npy"), "-q"]
        mlexport.main(args + ["-o", str(t / "warm")])
        t0 = time.perf_counter()
        rc = mlexport.main(args + ["-o", str(t / "out")])
        warm = time.perf_counter() - t0
        t0 = time.perf_counter()
        subprocess.run([str(Path(sys.executable).parent / "mlexport"), *args, "-o",
                        str(t / "out2")], check=True)
        cold = time.perf_counter() - t0
    print(f"export of a {params}-parameter MLP, 1000 calibration rows: "
          f"{warm:.2f} s in process (rc {rc}), {cold:.2f} s as a cold mlexport process")
    return 0


if __name__ == "__main__":
    sys.exit(main())
