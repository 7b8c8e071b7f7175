"""The anomaly detector's pieces, shared by the simulated (models/anomaly)
and the measured (models/anomaly_measured) variants: the autoencoder, the
exported scorer built from it, the static-threshold baseline and the
detection metrics."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

HID, LAT = 16, 3


def autoencoder(n: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n, HID), nn.ReLU(), nn.Linear(HID, LAT),
                         nn.Linear(LAT, HID), nn.ReLU(), nn.Linear(HID, n))


class AnomalyScorer(nn.Module):
    """L1 reconstruction error of a trained autoencoder, one output.

    The residual r = x_norm - (W4 h + b4) is linear in concat(x_norm, h),
    so Linear([I, -W4; -I, W4]) -> ReLU gives relu(r) and relu(-r), whose
    sum (a Linear of ones) is sum |r_i|: only ops ml_lib supports.
    """

    def __init__(self, norm: nn.Module, ae: nn.Sequential):
        super().__init__()
        self.norm = norm
        enc1, _, enc2, dec1, _, dec2 = ae
        self.enc1, self.enc2, self.dec1 = enc1, enc2, dec1
        n = enc1.in_features
        w4, b4 = dec2.weight.detach(), dec2.bias.detach()
        eye = torch.eye(n)
        # rows 0..n-1: r; rows n..2n-1: -r
        self.residual = nn.Linear(n + HID, 2 * n)
        with torch.no_grad():
            self.residual.weight.copy_(torch.cat([torch.cat([eye, -w4], 1),
                                                  torch.cat([-eye, w4], 1)], 0))
            self.residual.bias.copy_(torch.cat([-b4, b4]))
        self.total = nn.Linear(2 * n, 1)
        with torch.no_grad():
            self.total.weight.fill_(1.0)
            self.total.bias.zero_()

    def forward(self, x):
        xn = self.norm(x)
        h = torch.relu(self.dec1(self.enc2(torch.relu(self.enc1(xn)))))
        r = torch.relu(self.residual(torch.cat([xn, h], dim=1)))
        return self.total(r)


def quality(flag: np.ndarray, kind: np.ndarray, kinds) -> dict:
    """Detection metrics of per-sample flags against the injected kinds."""
    y = kind > 0
    tp = int((flag & y).sum())
    prec = tp / max(1, int(flag.sum()))
    rec = tp / max(1, int(y.sum()))
    out = {"accuracy": round(float((flag == y).mean()), 4),
           "precision": round(prec, 4), "recall": round(rec, 4),
           "f1": round(2 * prec * rec / max(1e-12, prec + rec), 4),
           "false_alarm_rate": round(float(flag[~y].mean()), 4)}
    for k in range(1, len(kinds)):
        sel = kind == k
        # None: no sample of this kind in the data (not a recall of 0)
        out["recall_" + str(kinds[k])] = round(float(flag[sel].mean()), 4) if sel.any() else None
    return out


def static_rule(normal: np.ndarray, budget: float) -> tuple[float, np.ndarray]:
    """Per-counter limits at the smallest percentile q (the most sensitive
    rule, searched from p95 up in steps of 0.01) whose rule "any counter
    above its limit" flags at most ``budget`` of ``normal``."""
    for q in np.arange(95.0, 100.0, 0.01):
        lim = np.percentile(normal, q, axis=0)
        if (normal > lim).any(axis=1).mean() <= budget:
            return round(float(q), 2), lim
    raise RuntimeError("no static threshold within budget")
