#!/usr/bin/env python3
"""Regenerate everything derived from the committed trained models, after
a toolchain change: each task's export/ (mlexport), its consumer's trace
header (gen_trace.py) and results.json + README table (evaluate.py).
Training is separate (models/<task>/train.py)."""
from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from example_kit import run_mlexport  # noqa: E402

TASKS = ("linnos", "readahead", "anomaly", "anomaly_measured")


def load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def refresh(task: str) -> None:
    tdir = HERE / task
    sys.path.insert(0, str(tdir))
    for m in ("dataset", "simulate", "gen_trace", "evaluate", "scorer"):
        sys.modules.pop(m, None)
    try:
        data = load(tdir / "dataset.py", "dataset")
        sys.modules["dataset"] = data
        shutil.rmtree(tdir / "export", ignore_errors=True)
        run_mlexport(tdir, tdir / "export", data.EXPORT)
        gen = tdir / "consumer" / "gen_trace.py"
        if gen.exists():
            load(gen, "gen_trace").main()
        load(tdir / "evaluate.py", "evaluate").main()
    finally:
        sys.path.remove(str(tdir))


if __name__ == "__main__":
    for t in sys.argv[1:] or TASKS:
        print(f"== {t}", flush=True)
        refresh(t)
