"""The example tasks in models/: their committed artefacts are what the
committed code produces, their README numbers are recomputed, and their
kernel consumers build with W=1 and agree with Python in a booted kernel.

Tolerances for recomputed results (results.json vs a fresh evaluate.py):
table bytes and every number derived only from integer inference or the
simulators must match exactly; numbers that involve the float model
(float accuracy, float policy metrics) may differ by RESULT_TOL absolute
for rates and by 1 % relative for times, to allow another CPU's float
rounding in torch.
"""
from __future__ import annotations

import filecmp
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "models"
TASKS = ("linnos", "readahead", "anomaly")  # with a kernel consumer each
ALL_TASKS = TASKS + ("anomaly_measured",)
RESULT_TOL = 0.002
sys.path.insert(0, str(MODELS))

import example_kit  # noqa: E402


def load_task_module(task: str, name: str):
    """Import models/<task>/<name>.py with the task's own siblings first."""
    tdir = MODELS / task
    for m in ("dataset", "simulate", "evaluate", "gen_trace", "train", "scorer"):
        sys.modules.pop(m, None)
    sys.path.insert(0, str(tdir))
    try:
        path = tdir / f"{name}.py" if (tdir / f"{name}.py").exists() else tdir / "consumer" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
        return mod
    finally:
        sys.path.remove(str(tdir))


def same_tree(a: Path, b: Path) -> list[str]:
    names_a = sorted(p.name for p in a.iterdir())
    names_b = sorted(p.name for p in b.iterdir())
    if names_a != names_b:
        return [f"file sets differ: {names_a} vs {names_b}"]
    return [n for n in names_a if not filecmp.cmp(a / n, b / n, shallow=False)]


@pytest.mark.parametrize("task", ALL_TASKS)
def test_reexport_is_byte_identical(task, tmp_path):
    data = load_task_module(task, "dataset")
    out = example_kit.run_mlexport(MODELS / task, tmp_path / "export", data.EXPORT)
    assert same_tree(MODELS / task / "export", out) == []


@pytest.mark.parametrize("task", ALL_TASKS)
def test_training_reproduces_the_committed_model(task, tmp_path):
    # as a script, as it was run: class paths (__main__.X) end up in model.pt2
    r = subprocess.run([sys.executable, str(MODELS / task / "train.py"), str(tmp_path)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    made = {f.name for f in tmp_path.iterdir()}
    # train.py must have written into tmp_path (not over the committed files)
    assert {"model.pt2", "calib.npy", "heldout.npy"} <= made, made
    for f in sorted(tmp_path.iterdir()):
        assert filecmp.cmp(f, MODELS / task / f.name, shallow=False), f"{task}/{f.name} differs"


def _compare(ref, got, path=""):
    """Yield mismatches between results.json (ref) and a recomputation."""
    if isinstance(ref, dict):
        assert isinstance(got, dict) and set(ref) == set(got), f"{path}: keys differ"
        for k in ref:
            yield from _compare(ref[k], got[k], f"{path}.{k}")
    elif isinstance(ref, (list, tuple)):
        assert list(ref) == list(got), f"{path}: {ref} != {got}"
    elif isinstance(ref, float) and isinstance(got, float):
        floaty = "float" in path
        if "_us" in path:
            tol = 0.01 * abs(ref) if floaty else 0.0
        else:
            tol = RESULT_TOL if floaty else 0.0
        if abs(ref - got) > tol + 1e-12:
            yield f"{path}: README/results.json says {ref}, recomputed {got} (tolerance {tol})"
    elif ref != got:
        yield f"{path}: README/results.json says {ref!r}, recomputed {got!r}"


@pytest.mark.parametrize("task", ALL_TASKS)
def test_results_are_recomputed(task, tmp_path):
    ev = load_task_module(task, "evaluate")
    got = json.loads(json.dumps(ev.compute(tmp_path)))
    ref = example_kit.load_results(MODELS / task)
    assert list(_compare(ref, got)) == []
    # the README table is the one rendered from results.json
    readme = (MODELS / task / "README.md").read_text()
    assert ev.table(ref) in readme


@pytest.mark.parametrize("task", TASKS)
def test_consumer_trace_is_current(task, tmp_path):
    gen = load_task_module(task, "gen_trace")
    header = next((MODELS / task / "consumer").glob("*_trace.h"))
    gen.main(tmp_path / header.name)
    assert filecmp.cmp(header, tmp_path / header.name, shallow=False)


# --- hand-computed checks of the baselines' and features' arithmetic -------

def test_ondemand_baseline_by_hand():
    sim = load_task_module("readahead", "simulate")
    reads = np.array([[p, 1] for p in range(8)])
    c = sim.cost_ondemand(reads, ra_pages=32)
    # read 0: initial window get_init_ra_size(1, 32) = 4 pages, marker at 1;
    # page 1 (marker): next window [4, 12), 8 pages, marker at 4;
    # page 4 (marker): [12, 28), 16 pages. One stall, three I/Os, 28 pages.
    assert c["stalls"] == 1
    assert c["pages"] == 28
    assert c["wait_us"] == 100 + 4 * 2.5
    assert c["device_us"] == 3 * 100 + 28 * 2.5


def test_fixed_window_policy_by_hand():
    sim = load_task_module("readahead", "simulate")
    # strided single pages every 4 pages; an 8-page window covers two reads
    reads = np.array([[0, 1], [4, 1], [8, 1], [12, 1]])
    c = sim.cost_fixed(reads, 8)
    # miss at 0: fetch [0, 8), marker at 4; read 4 hits it: async [8, 16),
    # marker at 12; read 12 hits that: async [16, 24). One stall, 3 I/Os.
    assert (c["stalls"], c["pages"]) == (1, 24)
    assert c["wait_us"] == 100 + 8 * 2.5
    assert c["device_us"] == 3 * 100 + 24 * 2.5
    assert sim.cost_fixed(reads, 1)["stalls"] == 4


def test_window_features_by_hand():
    sim = load_task_module("readahead", "simulate")
    f = sim.window_features(np.array([[0, 2], [2, 2], [10, 1]]))
    # sizes 5 // 3 = 1; deltas 2, 8: mean |d| 5, variance (2*68 - 100) // 4 = 9 -> 3;
    # one of two reads continues the previous one: 500; both within 64 pages: 1000
    assert list(f) == [1, 5, 3, 500, 1000]


def test_linnos_features_by_hand():
    sim = load_task_module("linnos", "simulate")
    feats, lat, _, arr, comp = sim.simulate_events(200, np.random.default_rng(7))
    i = 150
    done = sorted((comp[j], j) for j in range(i) if comp[j] <= arr[i])
    assert feats[i, 0] == i - len(done)
    last = done[-1][1]
    assert feats[i, 1] == lat[last] and feats[i, 16] == feats[last, 0]


def test_static_threshold_respects_the_budget():
    scorer = load_task_module("anomaly", "scorer")
    # two counters, 0..99 each, independent: at q the rule flags about
    # 2 * (1 - q/100) of the rows; it must stay within a 2 % budget
    normal = np.stack([np.arange(1000) % 100, (np.arange(1000) * 7) % 100], axis=1)
    q, lim = scorer.static_rule(normal, 0.02)
    assert (normal > lim).any(axis=1).mean() <= 0.02
    assert q >= 98.0


def test_anomaly_metrics_by_hand():
    scorer = load_task_module("anomaly", "scorer")
    flag = np.array([1, 1, 0, 0, 1, 0], dtype=bool)
    kind = np.array([1, 0, 0, 2, 2, 0])
    q = scorer.quality(flag, kind, ("normal", "a", "b"))
    # tp 2 (rows 0, 4), flagged 3, anomalous 3; one false alarm of 3 normal rows
    assert (q["precision"], q["recall"], q["false_alarm_rate"]) == (0.6667, 0.6667, 0.3333)
    assert (q["recall_a"], q["recall_b"]) == (1.0, 0.5)


def test_int_threshold_respects_the_budget_with_ties():
    ev = load_task_module("anomaly", "evaluate")
    # 200 scores, 5 of them tied at the top: a 2 % budget (4 flags) cannot
    # take the tie, so the threshold is the tied value and flags none of it
    s = np.concatenate([np.arange(195), np.full(5, 1000)])
    t = ev.int_threshold(s, 0.02)
    assert t == 1000 and (s > t).mean() == 0.0
    s = np.arange(200)
    t = ev.int_threshold(s, 0.02)  # 4 flags allowed: 196..199
    assert t == 195 and (s > t).sum() == 4


def test_anomaly_episodes_by_hand():
    ev = load_task_module("anomaly", "evaluate")
    kind = np.array([0, 1, 1, 2, 0, 0, 3, 3, 3, 0])
    assert ev.episodes(kind) == [(1, 3, 1), (3, 4, 2), (6, 9, 3)]
    flag = np.array([1, 0, 1, 0, 1, 1, 0, 0, 1, 1], dtype=bool)
    q = ev.episode_quality(flag, kind, ("normal", "a", "b", "c"))
    # episode a found after 1 sample, b missed, c after 2; normal flags: 0, 4-5, 9
    assert (q["detected"], q["episodes"]) == (2, 3)
    assert q["detected_by_kind"] == {"a": [1, 1], "b": [0, 1], "c": [1, 1]}
    assert (q["mean_delay_samples"], q["max_delay_samples"], q["false_alarm_runs"]) == (1.5, 2, 3)


def test_kernel_consumer_uses_the_evaluated_int8_threshold():
    ref = example_kit.load_results(MODELS / "anomaly")
    header = (MODELS / "anomaly" / "consumer" / "anomaly_trace.h").read_text()
    m = re.search(r"#define ANOMALY_THRESHOLD (\d+)", header)
    assert m and int(m.group(1)) == ref["threshold_fixed_point"]["int8"]
    for task in ("anomaly", "anomaly_measured"):
        r = example_kit.load_results(MODELS / task)
        far = r["false_alarm_rate_train_normal"]
        assert far["autoencoder, int8 (kernel)"] <= r["false_alarm_budget"]
        assert all(v <= r["false_alarm_budget"] for k, v in far.items() if "static" in k)


def test_linnos_weighted_errors_by_hand():
    ev = load_task_module("linnos", "evaluate")
    y = np.array([1, 1, 0, 0, 0])
    pred = np.array([1, 0, 1, 0, 0])
    assert ev.weighted_errors(pred, y) == 2 * 1 + 1 * 1
    # a false revoke is not free: the replica's latency replaces a fast read's
    q = ev.decision_quality(np.ones(5, dtype=int), y, np.array([900, 900, 80, 80, 80]),
                            np.array([700, 100, 600, 100, 100]))
    assert q["mean_us"] == (720 + 120 + 620 + 120 + 120) / 5


# --- kernel: W=1 builds and a booted kernel --------------------------------

def test_consumers_build_with_w1_and_no_warnings():
    r = subprocess.run(["make", "-s", "-C", str(REPO), "models-modules"], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    for t in TASKS:
        assert re.search(rf"models-modules: {t}: consumer/{t}_hook.ko export/{t}_ml.ko", r.stdout)
        log = (REPO / "build/models-kbuild/models" / t / "consumer/build.log").read_text()
        assert not re.search("warning|error", log, re.I), log


@pytest.mark.kernel
def test_consumers_agree_with_python_in_a_booted_kernel():
    from ml_lib import kernel
    r = subprocess.run(["make", "-s", "-C", str(REPO), "models-modules"], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    kb = REPO / "build/models-kbuild/models"
    mods = [REPO / "build/kmod/lib/ml/ml_lib.ko"]
    for t in TASKS:
        mods += [kb / t / "export" / f"{t}_ml.ko", kb / t / "consumer" / f"{t}_hook.ko"]
    # each hook holds its model from init to exit: the model's module is pinned
    res = kernel.boot(mods, [], pinned=tuple(f"{t}_ml" for t in TASKS))
    assert set(res.busy) == {f"{t}_ml" for t in TASKS}, res.busy
    assert all("in use" in why for why in res.busy.values()), res.busy
    for t in TASKS:
        summary = [ln for ln in res.dmesg.splitlines() if f"{t}_hook:" in ln and "replayed" in ln]
        assert summary, f"{t}_hook printed no summary:\n{res.dmesg[-3000:]}"
        m = re.search(r"(\d+)/(\d+) (?:\w+ )?equal to the Python reference", summary[0])
        assert m and m.group(1) == m.group(2) and int(m.group(2)) > 0, summary[0]
