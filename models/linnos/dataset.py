"""The LinnOS example's data: read I/Os of the simulated trace (simulate.py),
labelled slow when their latency exceeds SLOW_US. Regenerated
deterministically (about 2 s) instead of being committed."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import simulate  # noqa: E402
from example_kit import SEED, split_time  # noqa: E402

N_IOS = 90000
SLOW_US = 500  # the knee of the simulated latency distribution (p93 of reads)


def load():
    """Return dict with x (s64[n][31]), latency (us), y (1 = slow), train/test slices."""
    feats, lat, is_write = simulate.simulate(N_IOS, np.random.default_rng(SEED))
    reads = is_write == 0
    x, lat = feats[reads], lat[reads]
    y = (lat > SLOW_US).astype(np.int64)
    train, test = split_time(len(x))
    return {"x": x, "latency": lat, "y": y, "train": train, "test": test}

#: how the committed export/ was made (see example_kit.mlexport_argv)
EXPORT = {"name": "linnos", "features": list(simulate.FEATURES), "args": ["--argmax"]}
