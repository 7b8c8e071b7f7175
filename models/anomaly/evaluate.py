#!/usr/bin/env python3
"""Recompute results.json and the README table of the anomaly example.

Every detector gets the same false-alarm budget on the normal seconds of
the training part (dataset.FALSE_ALARM_BUDGET), each on its OWN scores:
the float autoencoder's threshold on its L1 reconstruction error is
threshold.json (from train.py, a quantile of the float scores); the int8
and int16 models' thresholds are the smallest integers that flag at most
that fraction of the same normal training seconds with their integer
scores (int_threshold(); the int8 one is the ANOMALY_THRESHOLD the kernel
consumer compares with, see kernel_threshold()); the static per-counter
rule (flag a second when any counter exceeds its q-th percentile) takes
the largest q within the budget - the kind of rule a watchdog uses today.
Scored on the held-out later 30 %, per sample and per anomaly episode
(a run of consecutive samples of one injected kind: detected if any of
its samples is flagged; delay = samples from its start to the first
flag), and, as a second look, on the anomalies of the training period
(neither detector is fitted on them: both see normal samples only).
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
from example_kit import (exported_graph, int_variants, render_table, run_float,  # noqa: E402
                         run_int, save_results, write_readme_table)
from scorer import quality, static_rule  # noqa: E402


def threshold_fixed(frac_bits: int, task_dir: Path = HERE) -> int:
    """The float model's threshold (threshold.json) in fixed point."""
    thr = json.loads((task_dir / "threshold.json").read_text())["l1_score"]
    return int(round(thr * 2**frac_bits))


def int_threshold(scores: np.ndarray, budget: float) -> int:
    """Smallest integer t with mean(scores > t) <= budget."""
    s = np.sort(np.asarray(scores, dtype=np.int64))
    return int(s[len(s) - 1 - int(np.floor(budget * len(s)))])


def kernel_threshold(task_dir: Path = HERE, data=dataset) -> int:
    """ANOMALY_THRESHOLD of the kernel consumer: int_threshold() of the
    committed int8 export's scores on the normal training samples."""
    d = data.load()
    tr = d["train"]
    normal = d["x"][tr][d["kind"][tr] == 0]
    g = exported_graph(task_dir / "export", data.EXPORT["name"])
    return int_threshold(run_int(g, normal)[:, 0], data.FALSE_ALARM_BUDGET)


def episodes(kind: np.ndarray) -> list[tuple[int, int, int]]:
    """(start, end exclusive, kind) of each run of one nonzero kind."""
    out, i = [], 0
    while i < len(kind):
        if kind[i] > 0:
            j = i
            while j < len(kind) and kind[j] == kind[i]:
                j += 1
            out.append((i, j, int(kind[i])))
            i = j
        else:
            i += 1
    return out


def episode_quality(flag: np.ndarray, kind: np.ndarray, kinds) -> dict:
    eps = episodes(kind)
    delays = []
    for a, b, _ in eps:
        hit = np.flatnonzero(flag[a:b])
        delays.append(int(hit[0]) if len(hit) else None)
    found = [dl for dl in delays if dl is not None]
    normal_flag = flag & (kind == 0)
    runs = int((np.diff(np.concatenate([[0], normal_flag.astype(int)])) == 1).sum())
    return {"detected": len(found), "episodes": len(eps),
            "detected_by_kind": {str(kinds[k]): [sum(1 for (_, _, kk), dl in zip(eps, delays)
                                                     if kk == k and dl is not None),
                                                 sum(1 for _, _, kk in eps if kk == k)]
                                 for k in range(1, len(kinds))},
            "mean_delay_samples": round(float(np.mean(found)), 2) if found else None,
            "max_delay_samples": max(found) if found else None,
            "false_alarm_runs": runs}


def compute(scratch: Path, task_dir: Path = HERE, data=dataset, kinds=simulate.KINDS,
            task: str = "anomaly", source: str = "simulated (models/anomaly/simulate.py)") -> dict:
    """Also evaluates models/anomaly_measured (its folder, dataset, kinds)."""
    d = data.load()
    tr, te = d["train"], d["test"]
    xall, kall = d["x"], d["kind"]
    is_tr = np.zeros(len(kall), dtype=bool)
    is_tr[tr] = True
    normal_tr = is_tr & (kall == 0)
    x, kind = xall[te], kall[te]
    n = x.shape[1]
    name = data.EXPORT["name"]
    budget = data.FALSE_ALARM_BUDGET
    frac = json.loads((task_dir / "export" / f"{name}.json").read_text())["frac_bits"]
    thr = {"float": threshold_fixed(frac, task_dir)}
    # every variant scores all samples (train and test)
    scores = {"float": run_float(task_dir, xall)[:, 0] * 2**frac}
    ints = int_variants(task_dir, data.EXPORT, xall, scratch)
    for b in (8, 16):
        scores[f"int{b}"] = ints[b][0][:, 0]
        thr[f"int{b}"] = int_threshold(scores[f"int{b}"][normal_tr], budget)
    q, lim = static_rule(xall[normal_tr], budget)
    keys = {"float": "autoencoder, float", "int8": "autoencoder, int8 (kernel)",
            "int16": "autoencoder, int16"}
    flags_all = {f"static per-counter threshold (p{q} of normal)": (xall > lim).any(axis=1)}
    flags_all.update({keys[v]: scores[v] > thr[v] for v in keys})
    flags = {k: f[te] for k, f in flags_all.items()}
    dec = {k: quality(v, kind, kinds) for k, v in flags.items()}
    tr_anom = is_tr & (kall > 0)
    return {
        "task": task,
        "data": source,
        "n_train": int(tr.stop - tr.start), "n_test": int(len(kind)),
        "anomaly_fraction_test": round(float((kind > 0).mean()), 4),
        "threshold_fixed_point": thr, "frac_bits": frac,
        "accuracy": {v: dec[keys[v]]["accuracy"] for v in keys},
        "f1": {v: dec[keys[v]]["f1"] for v in keys},
        "int_agrees_with_float": {f"int{b}": round(float((flags[keys[f"int{b}"]]
                                                          == flags[keys["float"]]).mean()), 4)
                                  for b in (8, 16)},
        "table_bytes": {"int8": ints[8][1], "int16": ints[16][1]},
        # float32 parameters of the exported scorer (n counters, 16 hidden, 3 latent)
        "float_bytes": 4 * (n * 16 + 16 + 16 * 3 + 3 + 3 * 16 + 16 + (n + 16) * 2 * n + 2 * n
                            + 2 * n + 1),
        "false_alarm_budget": budget,
        "false_alarm_rate_train_normal": {k: round(float(f[normal_tr].mean()), 4)
                                          for k, f in flags_all.items()},
        "decision": dec,
        "episodes_test": {k: episode_quality(v, kind, kinds) for k, v in flags.items()},
        "train_period": {
            "episodes": {str(kinds[k]): sum(1 for e in episodes(kall[tr]) if e[2] == k)
                         for k in range(1, len(kinds))},
            "recall": {k: {str(kinds[j]): round(float(f[tr_anom & (kall == j)].mean()), 4)
                           for j in range(1, len(kinds))} for k, f in flags_all.items()},
        },
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
    far = r["false_alarm_rate_train_normal"]
    ep = render_table(
        [(k, f"{v['detected']}/{v['episodes']}",
          *[f"{a}/{b}" for a, b in v["detected_by_kind"].values()],
          "—" if v["mean_delay_samples"] is None else v["mean_delay_samples"],
          "—" if v["max_delay_samples"] is None else v["max_delay_samples"],
          v["false_alarm_runs"], far[k])
         for k, v in r["episodes_test"].items()],
        ("detector", "episodes detected", *[f"{n}" for n in kinds], "mean delay",
         "max delay", "false-alarm runs (test)", "false alarms on normal training data"))
    tp = r["train_period"]
    trp = render_table(
        [(k, *["—" if tp["episodes"][n] == 0 else v[n] for n in kinds])
         for k, v in tp["recall"].items()],
        ("detector", *[f"recall {n} ({tp['episodes'][n]} episodes)" for n in kinds]))
    return (f"Held-out test: {r['n_test']} {unit} ({100 * r['anomaly_fraction_test']:.1f} % "
            f"anomalous), trained on {r['n_train']}. Thresholds (fixed point): "
            + ", ".join(f"{k} {v}" for k, v in r["threshold_fixed_point"].items())
            + f". Budget: {100 * r['false_alarm_budget']:g} % of the normal training {unit}; "
            f"int8 and int16 take the smallest integer threshold within it on their own scores, "
            f"float the 99th percentile of its scores (threshold.json), the static rule the most "
            f"sensitive percentile within it. Their rates on the normal training {unit} are in "
            f"the last column of the episode table.\n\n{acc}\n\n{dec}\n\n"
            f"Per anomaly episode of the test part (detected: at least one flagged sample; delay: "
            f"{unit} from its start to the first flag):\n\n{ep}\n\n"
            f"Anomalies of the training period (not used to fit either detector: both are fitted "
            f"on normal samples only):\n\n{trp}")


def main() -> None:
    with tempfile.TemporaryDirectory() as t:
        r = compute(Path(t))
    save_results(HERE, r)
    write_readme_table(HERE, table(r))
    print(table(r))


if __name__ == "__main__":
    main()
