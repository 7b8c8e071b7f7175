#!/usr/bin/env python3
"""A model too large for the kernel, served by the user-space proxy:
the LinnOS task (same 31 features, same simulated data as models/linnos)
with a 31 -> 2048 -> 2048 -> 2 network, 4.27 M parameters (17 MB float,
4.3 MB even at int8). `mlexport --target auto` routes it to user space.

Its weights are NOT committed: this script recreates them deterministically
(seeded initialisation plus a short, fixed training run) in a few seconds.
Writes build/models/linnos_wide/model.pt2 (and calib/heldout there).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "linnos"))

import dataset  # noqa: E402  (models/linnos/dataset.py)
from example_kit import (REPO, SEED, Normalize, feature_stats, save_model,  # noqa: E402
                         seed_everything, train_classifier)

OUT = REPO / "build" / "models" / "linnos_wide"
WIDTH = 2048
STEPS = 40


def build(mean, std) -> nn.Module:
    return nn.Sequential(Normalize(mean, std), nn.Linear(31, WIDTH), nn.ReLU(),
                         nn.Linear(WIDTH, WIDTH), nn.ReLU(), nn.Linear(WIDTH, 2))


def main(out: Path = OUT) -> Path:
    t0 = time.monotonic()
    out.mkdir(parents=True, exist_ok=True)
    rng = seed_everything()
    d = dataset.load()
    xtr, ytr = d["x"][d["train"]], d["y"][d["train"]]
    mean, std = feature_stats(xtr)
    model = build(mean, std)
    # a fixed number of steps on a fixed subset keeps this to seconds
    sub = rng.choice(len(xtr), STEPS * 256, replace=False)
    train_classifier(model, xtr[sub], ytr[sub], epochs=1, lr=5e-4, class_weight=[1.0, 2.0],
                     rng=rng)
    path = save_model(model, xtr, out)
    np.save(out / "calib.npy", xtr[rng.choice(len(xtr), 512, replace=False)])
    xte, yte = d["x"][d["test"]], d["y"][d["test"]]
    pick_rng = np.random.default_rng(SEED + 2)
    pick = np.sort(np.concatenate([pick_rng.choice(np.flatnonzero(yte == c), 4, replace=False)
                                   for c in (1, 0)]))
    np.save(out / "heldout.npy", xte[pick])
    np.save(out / "heldout_latency.npy", d["latency"][d["test"]][pick])
    n = sum(p.numel() for p in model.parameters())
    print(f"linnos_wide: {n} parameters, made in {time.monotonic() - t0:.1f} s -> {path}")
    return path


def heldout_accuracy(path: Path) -> float:
    """Float accuracy on models/linnos's held-out test reads (the README's
    comparison with the small in-kernel model; not run by `make demo`)."""
    from example_kit import run_float
    d = dataset.load()
    x, y = d["x"][d["test"]], d["y"][d["test"]]
    return float((run_float(path.parent, x).argmax(axis=1) == y).mean())


if __name__ == "__main__":
    made = main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT)
    print(f"linnos_wide: float accuracy on the held-out test reads "
          f"{heldout_accuracy(made):.4f} (models/linnos: see its results.json)")
