#!/usr/bin/env python3
"""Recompute results.json and the README table of the anomaly example.

Both detectors get the same false-alarm budget on the normal seconds of the
training part (dataset.FALSE_ALARM_BUDGET): the autoencoder's threshold on
its L1 reconstruction error (threshold.json, from train.py), and a static
per-counter threshold (flag a second when any counter exceeds its q-th
percentile, q chosen on the training data for the same budget) - the kind
of rule a watchdog uses today. Scored on the held-out later 30 %.
The integer models use the same threshold, as the fixed-point constant the
kernel consumer compares with (round(threshold * 2^frac_bits)).
"""
from __future__ import annotations

import json
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
from scorer import quality, static_rule  # noqa: E402


def threshold_fixed(frac_bits: int, task_dir: Path = HERE) -> int:
    thr = json.loads((task_dir / "threshold.json").read_text())["l1_score"]
    return int(round(thr * 2**frac_bits))


def compute(scratch: Path, task_dir: Path = HERE, data=dataset, kinds=simulate.KINDS,
            task: str = "anomaly", source: str = "simulated (models/anomaly/simulate.py)") -> dict:
    """Also evaluates models/anomaly_measured (its folder, dataset, kinds)."""
    d = data.load()
    tr, te = d["train"], d["test"]
    normal = d["x"][tr][d["kind"][tr] == 0]
    x, kind = d["x"][te], d["kind"][te]
    n = x.shape[1]
    name = data.EXPORT["name"]
    frac = json.loads((task_dir / "export" / f"{name}.json").read_text())["frac_bits"]
    thr_fp = threshold_fixed(frac, task_dir)
    fl = run_float(task_dir, x)[:, 0] * 2**frac > thr_fp
    ints = int_variants(task_dir, data.EXPORT, x, scratch)
    q, lim = static_rule(normal, data.FALSE_ALARM_BUDGET)
    flags = {
        f"static per-counter threshold (p{q} of normal)": (x > lim).any(axis=1),
        "autoencoder, float": fl,
        "autoencoder, int8 (kernel)": ints[8][0][:, 0] > thr_fp,
        "autoencoder, int16": ints[16][0][:, 0] > thr_fp,
    }
    dec = {k: quality(v, kind, kinds) for k, v in flags.items()}
    return {
        "task": task,
        "data": source,
        "n_train": int(tr.stop - tr.start), "n_test": int(len(kind)),
        "anomaly_fraction_test": round(float((kind > 0).mean()), 4),
        "threshold_fixed_point": thr_fp, "frac_bits": frac,
        "accuracy": {"float": dec["autoencoder, float"]["accuracy"],
                     "int8": dec["autoencoder, int8 (kernel)"]["accuracy"],
                     "int16": dec["autoencoder, int16"]["accuracy"]},
        "f1": {"float": dec["autoencoder, float"]["f1"],
               "int8": dec["autoencoder, int8 (kernel)"]["f1"],
               "int16": dec["autoencoder, int16"]["f1"]},
        "int_agrees_with_float": {f"int{b}": round(float(((ints[b][0][:, 0] > thr_fp) == fl).mean()),
                                                   4) for b in (8, 16)},
        "table_bytes": {"int8": ints[8][1], "int16": ints[16][1]},
        # float32 parameters of the exported scorer (n counters, 16 hidden, 3 latent)
        "float_bytes": 4 * (n * 16 + 16 + 16 * 3 + 3 + 3 * 16 + 16 + (n + 16) * 2 * n + 2 * n
                            + 2 * n + 1),
        "decision": dec,
    }


def table(r: dict, kinds=simulate.KINDS, unit: str = "seconds") -> str:
    acc = render_table(
        [("float", r["accuracy"]["float"], r["f1"]["float"], r["float_bytes"], "—"),
         ("int8 (committed export/)", r["accuracy"]["int8"], r["f1"]["int8"],
          r["table_bytes"]["int8"], r["int_agrees_with_float"]["int8"]),
         ("int16 (`--bits 16`)", r["accuracy"]["int16"], r["f1"]["int16"],
          r["table_bytes"]["int16"], r["int_agrees_with_float"]["int16"])],
        ("model", "accuracy", "F1", "table bytes", "same flag as float"))
    kinds = list(kinds[1:])
    dec = render_table(
        [(k, v["precision"], v["recall"], v["f1"], v["false_alarm_rate"],
          *["—" if v["recall_" + n] is None else v["recall_" + n] for n in kinds])
         for k, v in r["decision"].items()],
        ("detector", "precision", "recall", "F1", "false alarms", *[f"recall {n}" for n in kinds]))
    return (f"Held-out test: {r['n_test']} {unit} ({100 * r['anomaly_fraction_test']:.1f} % "
            f"anomalous), trained on {r['n_train']}.\n\n{acc}\n\n{dec}")


def main() -> None:
    with tempfile.TemporaryDirectory() as t:
        r = compute(Path(t))
    save_results(HERE, r)
    write_readme_table(HERE, table(r))
    print(table(r))


if __name__ == "__main__":
    main()
