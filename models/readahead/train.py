#!/usr/bin/env python3
"""Train the KML-like readahead class predictor: 5 features -> 15 -> 5 -> 4
(KML's readahead network shape). Deterministic; about 15 s here.
Writes model.pt2, calib.npy and heldout.npy."""
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
from example_kit import (Normalize, feature_stats, save_model,  # noqa: E402
                         seed_everything, train_classifier)


def build(mean, std) -> nn.Module:
    return nn.Sequential(Normalize(mean, std), nn.Linear(5, 15), nn.ReLU(),
                         nn.Linear(15, 5), nn.ReLU(), nn.Linear(5, 4))


def main(out: Path = HERE) -> None:
    """Train; write the artefacts to ``out`` (the task folder by default)."""
    t0 = time.monotonic()
    rng = seed_everything()
    d = dataset.load()
    xtr, ytr = d["x"][d["train"]], d["y"][d["train"]]
    mean, std = feature_stats(xtr)
    model = build(mean, std)
    train_classifier(model, xtr, ytr, epochs=150, lr=3e-3, batch=64, rng=rng)
    save_model(model, xtr, out)
    np.save(out / "calib.npy", xtr)
    xte, yte = d["x"][d["test"]], d["y"][d["test"]]
    pick = np.concatenate([np.flatnonzero(yte == c)[:4] for c in range(4)])
    np.save(out / "heldout.npy", xte[np.sort(pick)])
    print(f"readahead: trained in {time.monotonic() - t0:.1f} s")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
