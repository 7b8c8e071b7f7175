"""The readahead example's data: windows of simulated read traces
(simulate.py), each with its features, the best readahead class for the
next window, and every policy's cost on that next window. Regenerated
deterministically (about 10 s) instead of being committed."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import simulate  # noqa: E402
from example_kit import SEED, split_time  # noqa: E402

N_WINDOWS = 2400


def load():
    x, windows, patterns = simulate.simulate(N_WINDOWS, np.random.default_rng(SEED))
    fixed = [[simulate.cost_fixed(w, ra) for ra in simulate.RA_CLASSES] for w in windows]
    ondemand = [simulate.cost_ondemand(w) for w in windows]
    wait = np.array([[c["wait_us"] for c in row] for row in fixed])
    dev = np.array([[c["device_us"] for c in row] for row in fixed])
    y = wait.argmin(axis=1)
    train, test = split_time(len(x))
    return {"x": x, "y": y, "wait": wait, "device": dev,
            "ondemand_wait": np.array([c["wait_us"] for c in ondemand]),
            "ondemand_device": np.array([c["device_us"] for c in ondemand]),
            "pattern": np.array(patterns), "train": train, "test": test}

#: how the committed export/ was made (see example_kit.mlexport_argv)
EXPORT = {"name": "readahead", "features": list(simulate.FEATURES), "args": ["--argmax"]}
