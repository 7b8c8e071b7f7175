# SPDX-License-Identifier: GPL-2.0
"""Calibration data files: .npy, .npz, .pt (tensor) and .csv.

Rows are samples: (N, F) for MLPs, (N, C, L) for conv1d models.  A CSV may
start with a header row, which then names the input features.
"""
from __future__ import annotations

import csv
import pickle
from pathlib import Path

import numpy as np

from ml_lib.errors import UserError

NPZ_KEYS = ("x", "X", "calib", "data", "inputs")


def load(path: str, key: str | None = None) -> tuple[np.ndarray, list[str] | None]:
    """Returns (float64 array, feature names from a CSV header or None)."""
    p = Path(path)
    if p.is_dir():
        raise UserError(f"calibration file {path}: is a directory")
    if not p.is_file():
        raise UserError(f"calibration file {path}: no such file")
    ext = p.suffix.lower()
    names = None
    if key is not None and ext not in (".npz", ".pt"):
        raise UserError(f"--calib-key {key!r}: {path} holds one array; the key is for .npz "
                        "archives and dicts saved with torch.save")
    try:
        if ext == ".npy":
            a = np.load(p, allow_pickle=False)
        elif ext == ".npz":
            with np.load(p, allow_pickle=False) as z:
                keys = list(z.keys())
                k = key or next((k for k in NPZ_KEYS if k in keys), None) or \
                    (keys[0] if len(keys) == 1 else None)
                if k not in keys:
                    what = f"has no array {key!r}" if key else "pick an array with --calib-key"
                    raise UserError(f"calibration file {path}: {what} "
                                    f"(has {', '.join(keys) or 'none'})")
                a = z[k]
        elif ext == ".pt":
            import torch
            try:  # tensors only: a calibration file runs no code
                obj = torch.load(p, map_location="cpu", weights_only=True)
            except pickle.UnpicklingError as e:
                if "weights only" not in str(e).lower():
                    raise  # a damaged file: the generic message below
                raise UserError(f"calibration file {path}: holds more than tensors (a pickled "
                                "model?); save the calibration inputs as a tensor, .npy or "
                                ".csv") from e
            if isinstance(obj, dict):
                k = key or next((k for k in NPZ_KEYS if k in obj), None)
                if k is None or k not in obj:
                    what = f"a dict without {key!r}" if key else \
                        "a dict; pick a tensor with --calib-key"
                    raise UserError(f"calibration file {path}: {what} "
                                    f"(has {', '.join(map(str, obj))})")
                obj = obj[k]
            elif key is not None:
                raise UserError(f"--calib-key {key!r}: {path} holds one tensor, not a dict")
            if not hasattr(obj, "numpy"):
                raise UserError(f"calibration file {path}: holds a {type(obj).__name__}, "
                                "not a tensor")
            a = obj.detach().cpu().numpy()
        elif ext == ".csv":
            with open(p, newline="") as f:
                rows = [r for r in csv.reader(f) if r]
            if rows and not _numeric(rows[0]):
                names, rows = [c.strip() for c in rows[0]], rows[1:]
            if not rows:
                raise UserError(f"calibration file {path}: no data rows"
                                + (" (only a header)" if names else ""))
            width = len(names) if names else len(rows[0])
            for i, r in enumerate(rows):
                if len(r) != width:
                    raise UserError(f"calibration file {path}: data row {i + 1} has {len(r)} "
                                    f"cells, {'the header' if names else 'row 1'} has {width}")
            try:
                a = np.array([[float(c) for c in r] for r in rows], dtype=np.float64)
            except ValueError as e:
                raise UserError(f"calibration file {path}: non-numeric CSV cell ({e})") from e
        else:
            raise UserError(f"calibration file {path}: unknown type '{ext}' "
                            "(use .npy, .npz, .pt or .csv)")
    except UserError:
        raise
    except Exception as e:
        raise UserError(f"calibration file {path}: cannot read it ({type(e).__name__}: "
                        f"{str(e).splitlines()[0] if str(e) else ''})") from e
    return check(a, path), names


def _numeric(row) -> bool:
    try:
        [float(c) for c in row]
        return True
    except ValueError:
        return False


def check(a: np.ndarray, path: str = "calibration data") -> np.ndarray:
    a = np.asarray(a)
    if a.dtype.kind not in "iuf":
        raise UserError(f"{path}: calibration data must be integer or float numbers, "
                        f"not dtype {a.dtype}")
    if a.ndim not in (2, 3):
        raise UserError(f"{path}: calibration data must be (rows, features) or (rows, channels, "
                        f"length); got shape {a.shape}")
    if a.shape[0] < 1 or a.size == 0:
        raise UserError(f"{path}: calibration data has no rows")
    a = a.astype(np.float64)
    if not np.all(np.isfinite(a)):
        raise UserError(f"{path}: calibration data contains NaN or Inf")
    return a
