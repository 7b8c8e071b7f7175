"""The anomaly example's data: simulated per-second counters (simulate.py).
Regenerated deterministically (well under a second)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import simulate  # noqa: E402
from example_kit import SEED, split_time  # noqa: E402

SECONDS = 30000
#: the detection budget both detectors are tuned to: this fraction of the
#: normal training seconds may be flagged
FALSE_ALARM_BUDGET = 0.01


def load():
    x, kind = simulate.simulate(SECONDS, np.random.default_rng(SEED))
    train, test = split_time(len(x))
    return {"x": x, "kind": kind, "y": (kind > 0).astype(np.int64), "train": train, "test": test}

#: how the committed export/ was made (see example_kit.mlexport_argv)
EXPORT = {"name": "anomaly", "features": list(simulate.FEATURES), "args": []}
