"""Shared plumbing of the example tasks in models/: seeding, training loop,
results.json and the README table generated from it.

Quantization, export and inference are NOT here: they come from ml_lib
itself (mlexport and the Python reference), so the numbers in results.json
are what the library produces.
"""
from __future__ import annotations

import json
import os
import random
from pathlib import Path

import numpy as np
import torch
from torch import nn

MODELS = Path(__file__).resolve().parent
REPO = MODELS.parent
SEED = 20261125


def seed_everything(seed: int = SEED) -> np.random.Generator:
    """Fixed seeds and a fixed thread count: training is bit-reproducible."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    return np.random.default_rng(seed)


class Normalize(nn.Module):
    """(raw - mean) / std with constants fixed at training time.

    The first layer of every example model: the kernel passes raw integer
    counters and mlexport folds this affine into the engine's INPUT op.
    """

    def __init__(self, mean: np.ndarray, std: np.ndarray):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32))

    def forward(self, x):
        return (x - self.mean) / self.std


def feature_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std = np.where(std < 1e-6, 1.0, std)
    # Integer centres: raw features are integers and the engine's INPUT op
    # subtracts an integer offset, so an integer mean is represented exactly
    # (a fractional one would be rounded at export, a bias of up to 0.5/std).
    return np.round(mean), np.round(std, 3)


def train_classifier(model: nn.Module, x: np.ndarray, y: np.ndarray, *, epochs: int,
                     lr: float = 3e-3, batch: int = 256, class_weight=None,
                     rng: np.random.Generator) -> nn.Module:
    xt = torch.tensor(x, dtype=torch.float32)
    yt = torch.tensor(y, dtype=torch.long)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    w = None if class_weight is None else torch.tensor(class_weight, dtype=torch.float32)
    loss_fn = nn.CrossEntropyLoss(weight=w)
    model.train()
    for _ in range(epochs):
        perm = torch.tensor(rng.permutation(len(x)))
        for i in range(0, len(x), batch):
            idx = perm[i:i + batch]
            opt.zero_grad()
            loss = loss_fn(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
    model.eval()
    return model


def train_regressor(model: nn.Module, x: np.ndarray, target_fn, *, epochs: int,
                    lr: float = 3e-3, batch: int = 256, rng: np.random.Generator) -> nn.Module:
    xt = torch.tensor(x, dtype=torch.float32)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        perm = torch.tensor(rng.permutation(len(x)))
        for i in range(0, len(x), batch):
            idx = perm[i:i + batch]
            opt.zero_grad()
            loss = ((model(xt[idx]) - target_fn(xt[idx])) ** 2).mean()
            loss.backward()
            opt.step()
    model.eval()
    return model


def save_results(task_dir: Path, results: dict) -> None:
    # insertion order kept: the README table lists policies in this order
    (task_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")


def load_results(task_dir: Path) -> dict:
    return json.loads((task_dir / "results.json").read_text())


TABLE_BEGIN = "<!-- results table: generated from results.json by evaluate.py -->"
TABLE_END = "<!-- end of results table -->"


def render_table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def write_readme_table(task_dir: Path, table: str) -> None:
    """Replace the generated block of README.md (between the markers)."""
    readme = task_dir / "README.md"
    text = readme.read_text()
    a = text.index(TABLE_BEGIN) + len(TABLE_BEGIN)
    b = text.index(TABLE_END)
    readme.write_text(text[:a] + "\n" + table + "\n" + text[b:])


def cpu_env() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def save_model(model: nn.Module, example: np.ndarray, task_dir: Path) -> Path:
    """Save the trained float model as a torch.export program (model.pt2).

    An ExportedProgram is self-contained: mlexport loads it without
    importing this directory's Python.
    """
    batch = torch.export.Dim.DYNAMIC
    ep = torch.export.export(model, (torch.tensor(example[:8], dtype=torch.float32),),
                             dynamic_shapes=({0: batch},))
    # Stack traces name this checkout's absolute paths: drop them so the
    # archive is the same bytes wherever the repository lives.
    for node in ep.graph.nodes:
        node.meta.pop("stack_trace", None)
    path = task_dir / "model.pt2"
    torch.export.save(ep, str(path))
    return path


def split_time(n: int, frac: float = 0.7) -> tuple[slice, slice]:
    """Train on the first part of a trace, test on the later part (no leakage)."""
    k = int(n * frac)
    return slice(0, k), slice(k, n)


def mlexport_argv(task_dir: Path, out_dir: Path, export: dict, bits: int = 8,
                  model: Path | None = None, calib: Path | None = None) -> list[str]:
    """The mlexport command line that made a task's committed export/."""
    argv = [str(REPO / ".venv" / "bin" / "mlexport"), str(model or task_dir / "model.pt2"),
            "--calib", str(calib or task_dir / "calib.npy"), "--name", export["name"],
            "--features", ",".join(export["features"]), "-o", str(out_dir), "-q"]
    if bits != 8:
        argv += ["--bits", str(bits)]
    return argv + list(export.get("args", []))


def run_mlexport(task_dir: Path, out_dir: Path, export: dict, bits: int = 8, **kw) -> Path:
    import subprocess
    argv = mlexport_argv(task_dir, out_dir, export, bits, **kw)
    r = subprocess.run(argv, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {r.stderr.strip()}")
    return out_dir


def exported_graph(out_dir: Path, name: str):
    """The integer graph mlexport wrote (its blob, which carries exactly
    what the generated C tables carry)."""
    from ml_lib.blob import read_blob
    return read_blob((out_dir / f"{name}.mlb").read_bytes())


def run_int(graph, x: np.ndarray, batch: int = 4096) -> np.ndarray:
    """ml_lib's integer reference on raw s64 features."""
    from ml_lib import reference
    x = np.asarray(x, dtype=np.int64)
    return np.concatenate([reference.run(graph, x[i:i + batch]) for i in range(0, len(x), batch)])


def run_float(task_dir: Path, x: np.ndarray) -> np.ndarray:
    """The committed float model on the same raw features."""
    m = torch.export.load(str(task_dir / "model.pt2")).module()
    with torch.no_grad():
        return m(torch.tensor(np.asarray(x), dtype=torch.float32)).numpy()


def int_variants(task_dir: Path, export: dict, x: np.ndarray, scratch: Path):
    """{bits: (outputs, table_bytes)} for the committed int8 export and a
    fresh int16 export (same model, same calibration, --bits 16)."""
    res = {}
    for bits in (8, 16):
        out = task_dir / "export" if bits == 8 else run_mlexport(
            task_dir, scratch / f"int{bits}", export, bits)
        g = exported_graph(out, export["name"])
        res[bits] = (run_int(g, x), g.table_bytes())
    return res
