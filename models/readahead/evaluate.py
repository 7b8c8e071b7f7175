#!/usr/bin/env python3
"""Recompute results.json and the README table of the readahead example.

Accuracy (the predicted class is the best of RA_CLASSES for the next
window) of the float, int8 and int16 models on the held-out later 30 % of
windows, and the decision quality: the application's wait time and the
device time per window when each window uses the class predicted from the
previous one, against the kernel's ondemand readahead (mm/readahead.c,
default 128 KiB window) on the same reads.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import dataset  # noqa: E402
import simulate  # noqa: E402
from example_kit import (int_variants, render_table, run_float, save_results,  # noqa: E402
                         write_readme_table)


def compute(scratch: Path) -> dict:
    d = dataset.load()
    te = d["test"]
    x, y = d["x"][te], d["y"][te]
    wait, dev = d["wait"][te], d["device"][te]
    n = len(y)
    rows = np.arange(n)
    best_fixed = int(d["wait"][d["train"]].mean(axis=0).argmin())
    fl = run_float(HERE, x).argmax(axis=1)
    ints = int_variants(HERE, dataset.EXPORT, x, scratch)
    policies = {
        "ondemand readahead (kernel default, 128 KiB max)": (d["ondemand_wait"][te],
                                                            d["ondemand_device"][te], None),
        f"fixed {simulate.RA_CLASSES[best_fixed]} pages (best single class)": (
            wait[:, best_fixed], dev[:, best_fixed], np.full(n, best_fixed)),
        "model, float": (wait[rows, fl], dev[rows, fl], fl),
        "model, int8 (kernel)": (wait[rows, ints[8][0][:, 0]], dev[rows, ints[8][0][:, 0]],
                                 ints[8][0][:, 0]),
        "model, int16": (wait[rows, ints[16][0][:, 0]], dev[rows, ints[16][0][:, 0]],
                         ints[16][0][:, 0]),
        "oracle (best class per window)": (wait[rows, y], dev[rows, y], y),
    }
    dec = {}
    for k, (w, dv, p) in policies.items():
        dec[k] = {"accuracy": None if p is None else round(float((p == y).mean()), 4),
                  "wait_us_per_window": round(float(w.mean()), 1),
                  "device_us_per_window": round(float(dv.mean()), 1)}
    return {
        "task": "readahead",
        "data": "simulated (models/readahead/simulate.py)",
        "n_train": int(len(d["y"][d["train"]])), "n_test": n,
        "classes_pages": list(simulate.RA_CLASSES),
        "accuracy": {k: dec[v]["accuracy"] for k, v in
                     (("float", "model, float"), ("int8", "model, int8 (kernel)"),
                      ("int16", "model, int16"))},
        "int_agrees_with_float": {f"int{b}": round(float((ints[b][0][:, 0] == fl).mean()), 4)
                                  for b in (8, 16)},
        "table_bytes": {"int8": ints[8][1], "int16": ints[16][1]},
        "float_bytes": 4 * (5 * 15 + 15 + 15 * 5 + 5 + 5 * 4 + 4),
        "decision": dec,
    }


def table(r: dict) -> str:
    acc = render_table(
        [("float", r["accuracy"]["float"], r["float_bytes"], "—"),
         ("int8 (committed export/)", r["accuracy"]["int8"], r["table_bytes"]["int8"],
          r["int_agrees_with_float"]["int8"]),
         ("int16 (`--bits 16`)", r["accuracy"]["int16"], r["table_bytes"]["int16"],
          r["int_agrees_with_float"]["int16"])],
        ("model", "accuracy", "table bytes", "same decision as float"))
    dec = render_table(
        [(k, "—" if v["accuracy"] is None else v["accuracy"], v["wait_us_per_window"],
          v["device_us_per_window"]) for k, v in r["decision"].items()],
        ("policy", "class accuracy", "application wait per window (us)",
         "device time per window (us)"))
    return (f"Held-out test: {r['n_test']} windows of 64 reads, trained on {r['n_train']}; "
            f"classes {r['classes_pages']} pages.\n\n{acc}\n\n{dec}")


def main() -> None:
    with tempfile.TemporaryDirectory() as t:
        r = compute(Path(t))
    save_results(HERE, r)
    write_readme_table(HERE, table(r))
    print(table(r))


if __name__ == "__main__":
    main()
