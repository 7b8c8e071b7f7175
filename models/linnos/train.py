#!/usr/bin/env python3
"""Train the LinnOS-like I/O latency classifier: 31 features -> 256 -> 2.

Deterministic (fixed seeds, one thread); about 5 s on this machine.
Writes model.pt2 (torch.export), calib.npy (calibration inputs for
mlexport) and heldout.npy (held-out inputs for `make demo`).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import dataset  # noqa: E402
from example_kit import (SEED, Normalize, feature_stats, save_model,  # noqa: E402
                         seed_everything, train_classifier)


def build(mean, std) -> nn.Module:
    return nn.Sequential(Normalize(mean, std), nn.Linear(31, 256), nn.ReLU(), nn.Linear(256, 2))


def main(out: Path = HERE) -> None:
    """Train; write the artefacts to ``out`` (the task folder by default)."""
    t0 = time.monotonic()
    rng = seed_everything()
    d = dataset.load()
    xtr, ytr = d["x"][d["train"]], d["y"][d["train"]]
    mean, std = feature_stats(xtr)
    model = build(mean, std)
    # a missed slow I/O costs a tail latency, a false alarm one replica hop
    train_classifier(model, xtr, ytr, epochs=8, lr=2e-3, class_weight=[1.0, 2.0], rng=rng)
    save_model(model, xtr, out)
    np.save(out / "calib.npy", xtr[rng.choice(len(xtr), 1024, replace=False)])
    xte = d["x"][d["test"]]
    yte = d["y"][d["test"]]
    # held-out demo inputs: 8 slow and 8 fast reads drawn from the test period
    pick_rng = np.random.default_rng(SEED + 2)
    pick = np.sort(np.concatenate([pick_rng.choice(np.flatnonzero(yte == c), 8, replace=False)
                                   for c in (1, 0)]))
    np.save(out / "heldout.npy", xte[pick])
    np.save(out / "heldout_latency.npy", d["latency"][d["test"]][pick])
    print(f"linnos: trained in {time.monotonic() - t0:.1f} s")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
