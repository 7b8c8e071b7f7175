#!/usr/bin/env python3
"""Train the counter autoencoder (8 -> 16 -> 3 -> 16 -> 8) on normal
seconds, then export it as a scorer whose single output is the L1
reconstruction error sum_i |x_i - x^_i| of the normalized counters.

The scorer is built from the trained weights with layers ml_lib supports:
the residual r = x_norm - (W4 h + b4) is linear in concat(x_norm, h), so
Linear([I, -W4; -I, W4]) -> ReLU gives relu(r) and relu(-r), whose sum
(a Linear of ones) is sum |r_i|. The kernel compares it with a threshold.
Deterministic; a few seconds here. Writes model.pt2, calib.npy,
heldout.npy, threshold.json.
"""
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
sys.path.insert(0, str(HERE))

import dataset  # noqa: E402
from example_kit import (Normalize, feature_stats, save_model,  # noqa: E402
                         seed_everything, train_regressor)

N, HID, LAT = 8, 16, 3


class AnomalyScorer(nn.Module):
    """L1 reconstruction error of a trained autoencoder, one output."""

    def __init__(self, norm: Normalize, ae: nn.Sequential):
        super().__init__()
        self.norm = norm
        enc1, _, enc2, dec1, _, dec2 = ae
        self.enc1, self.enc2, self.dec1 = enc1, enc2, dec1
        w4, b4 = dec2.weight.detach(), dec2.bias.detach()
        eye = torch.eye(N)
        # rows 0..7: r = x_norm - (W4 h + b4); rows 8..15: -r
        self.residual = nn.Linear(N + HID, 2 * N)
        with torch.no_grad():
            self.residual.weight.copy_(torch.cat([torch.cat([eye, -w4], 1),
                                                  torch.cat([-eye, w4], 1)], 0))
            self.residual.bias.copy_(torch.cat([-b4, b4]))
        self.total = nn.Linear(2 * N, 1)
        with torch.no_grad():
            self.total.weight.fill_(1.0)
            self.total.bias.zero_()

    def forward(self, x):
        xn = self.norm(x)
        h = torch.relu(self.dec1(self.enc2(torch.relu(self.enc1(xn)))))
        r = torch.relu(self.residual(torch.cat([xn, h], dim=1)))
        return self.total(r)


def main(out: Path = HERE) -> None:
    """Train; write the artefacts to ``out`` (the task folder by default)."""
    t0 = time.monotonic()
    rng = seed_everything()
    d = dataset.load()
    xtr = d["x"][d["train"]]
    normal = xtr[d["y"][d["train"]] == 0]
    mean, std = feature_stats(normal)
    norm = Normalize(mean, std)
    ae = nn.Sequential(nn.Linear(N, HID), nn.ReLU(), nn.Linear(HID, LAT),
                       nn.Linear(LAT, HID), nn.ReLU(), nn.Linear(HID, N))
    train_regressor(nn.Sequential(norm, ae), normal, norm, epochs=60, rng=rng)
    scorer = AnomalyScorer(norm, ae).eval()
    save_model(scorer, normal, out)
    with torch.no_grad():
        s = scorer(torch.tensor(normal, dtype=torch.float32)).numpy()[:, 0]
    thr = float(np.quantile(s, 1 - dataset.FALSE_ALARM_BUDGET))
    (out / "threshold.json").write_text(json.dumps({"l1_score": round(thr, 4)}) + "\n")
    np.save(out / "calib.npy", xtr[rng.choice(len(xtr), 1024, replace=False)])
    xte, kte = d["x"][d["test"]], d["kind"][d["test"]]
    pick = np.concatenate([np.flatnonzero(kte == k)[:4] for k in range(5)])
    np.save(out / "heldout.npy", xte[np.sort(pick)])
    print(f"anomaly: trained in {time.monotonic() - t0:.1f} s")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
