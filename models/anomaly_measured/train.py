#!/usr/bin/env python3
"""Train the anomaly autoencoder (models/anomaly/scorer.py) on the MEASURED
counters of counters.npz: normal samples of the first 70 % only.
Deterministic; seconds. Writes model.pt2, threshold.json, calib.npy,
heldout.npy."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "anomaly"))
sys.path.insert(0, str(HERE))

import dataset  # noqa: E402  (this folder's)
from example_kit import (Normalize, feature_stats, save_model,  # noqa: E402
                         seed_everything, train_regressor)
from scorer import AnomalyScorer, autoencoder  # noqa: E402


def main(out: Path = HERE) -> None:
    """Train; write the artefacts to ``out`` (this folder by default)."""
    t0 = time.monotonic()
    rng = seed_everything()
    d = dataset.load()
    xtr = d["x"][d["train"]]
    normal = xtr[d["y"][d["train"]] == 0]
    mean, std = feature_stats(normal)
    norm = Normalize(mean, std)
    ae = autoencoder(normal.shape[1])
    train_regressor(nn.Sequential(norm, ae), normal, norm, epochs=400, batch=64, rng=rng)
    scorer = AnomalyScorer(norm, ae).eval()
    save_model(scorer, normal, out)
    with torch.no_grad():
        s = scorer(torch.tensor(normal, dtype=torch.float32)).numpy()[:, 0]
    thr = float(np.quantile(s, 1 - dataset.FALSE_ALARM_BUDGET))
    (out / "threshold.json").write_text(json.dumps({"l1_score": round(thr, 4)}) + "\n")
    # calibrate on normal samples: anomalies reach 100x the normal range of
    # some counters, and int8 ranges stretched to them leave normal seconds
    # too coarse to reconstruct (anomalies then saturate, still flagged)
    np.save(out / "calib.npy", normal)
    xte, kte = d["x"][d["test"]], d["kind"][d["test"]]
    pick = np.concatenate([np.flatnonzero(kte == k)[:4] for k in range(len(dataset.KINDS))])
    np.save(out / "heldout.npy", xte[np.sort(pick)])
    print(f"anomaly_measured: trained in {time.monotonic() - t0:.1f} s")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
