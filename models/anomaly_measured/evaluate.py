#!/usr/bin/env python3
"""Recompute results.json and the README table of the measured anomaly
example, with the same evaluation as models/anomaly (its evaluate.py:
same false-alarm budget for the autoencoder and the static thresholds)."""
from __future__ import annotations

import importlib.util
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import dataset  # noqa: E402  (this folder's)
from example_kit import save_results, write_readme_table  # noqa: E402


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _anomaly_evaluate():
    """models/anomaly/evaluate.py, with ITS simulate and scorer modules
    (loaded by path: other task folders may be on sys.path too)."""
    for name in ("simulate", "scorer"):
        sys.modules[name] = _load(name, HERE.parent / "anomaly" / f"{name}.py")
    return _load("anomaly_evaluate", HERE.parent / "anomaly" / "evaluate.py")


_ev = _anomaly_evaluate()
UNIT = f"samples of {dataset.SAMPLE_S} s"


def compute(scratch: Path) -> dict:
    return _ev.compute(scratch, HERE, dataset, dataset.KINDS, task="anomaly_measured",
                       source="measured in the booted test kernel (models/anomaly_measured/collect.py)")


def table(r: dict) -> str:
    return _ev.table(r, dataset.KINDS, UNIT)


def main() -> None:
    with tempfile.TemporaryDirectory() as t:
        r = compute(Path(t))
    save_results(HERE, r)
    write_readme_table(HERE, table(r))
    print(table(r))


if __name__ == "__main__":
    main()
