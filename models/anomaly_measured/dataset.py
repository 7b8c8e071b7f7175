"""The measured anomaly data: counters.npz, recorded by collect.py in the
booted test kernel (guest_collect.py). Committed (146 kB), since a new
collection gives different numbers."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from example_kit import split_time  # noqa: E402

FALSE_ALARM_BUDGET = 0.01
_d = np.load(HERE / "counters.npz")
FEATURES = tuple(str(f) for f in _d["features"])
KINDS = tuple(str(k) for k in _d["kinds"])
SAMPLE_S = float(_d["sample_s"])


def load():
    x, kind = _d["x"], _d["kind"]
    train, test = split_time(len(x))
    return {"x": x, "kind": kind, "y": (kind > 0).astype(np.int64), "train": train, "test": test}


#: how the committed export/ was made (see example_kit.mlexport_argv)
EXPORT = {"name": "anomaly_measured", "features": list(FEATURES), "args": []}
