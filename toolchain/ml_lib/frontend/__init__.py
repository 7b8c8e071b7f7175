# SPDX-License-Identifier: GPL-2.0
"""Model importers: a user's file -> :class:`FloatGraph`.

``load(path, sample)`` recognises the format from the file's content (not
its name): a torch.export archive, a TorchScript archive, a pickled torch
module, or an ONNX protobuf.  ``sample`` is a small batch of calibration
rows; it fixes the per-sample input shape the model is captured with.
"""
from __future__ import annotations

import os
import zipfile

import numpy as np

from ml_lib.errors import UserError, first_line
from ml_lib.frontend.graph import FLOAT_OPS, SUPPORTED_TEXT, FloatGraph, FNode, run_float

__all__ = ["load", "detect_format", "FloatGraph", "FNode", "run_float", "FLOAT_OPS",
           "SUPPORTED_TEXT"]


def detect_format(path: str) -> str:
    """'export', 'torchscript', 'pickle' or 'onnx'; UserError if none."""
    if os.path.isdir(path):
        raise UserError(f"{path}: is a directory, not a model file")
    if not os.path.isfile(path):
        raise UserError(f"{path}: no such file")
    if _zip_archive(path):
        from ml_lib.frontend.torch_import import kind_of
        k = kind_of(path)
        if k:
            return k
        raise UserError(f"{path}: a zip file but not a torch model archive")
    with open(path, "rb") as f:
        head = f.read(64)
    if head[:2] == b"\x80\x02" or head[:1] == b"\x80":
        return "pickle"  # legacy (non-zip) torch.save
    if path.endswith(".onnx") or _looks_like_onnx(path):
        return "onnx"
    raise UserError(f"{path}: not a model (expected a torch.save / torch.jit.save / "
                    "torch.export.save file or an ONNX model)")


def _zip_archive(path: str) -> bool:
    """Whether ``path`` is a zip archive (torch's formats are), after checking
    every member against its CRC: torch's loaders do not, and a flipped byte
    then surfaces as any exception at all, or as an abort inside
    TorchScript's C++ loader."""
    try:
        if not zipfile.is_zipfile(path):
            return False
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()
    except Exception as e:  # noqa: BLE001 - a damaged directory raises anything
        raise UserError(f"{path}: a damaged zip archive ({type(e).__name__}: "
                        f"{first_line(e)}); save the model again") from e
    if bad is not None:
        raise UserError(f"{path}: damaged archive: member {bad} fails its CRC check "
                        "(a corrupted copy?); save the model again")
    return True


def _looks_like_onnx(path: str) -> bool:
    import onnx
    try:
        m = onnx.load(path, load_external_data=False)  # its weights are not needed here
    except Exception:
        return False
    return len(m.graph.node) > 0


def load(path: str, sample: np.ndarray) -> tuple[FloatGraph, str]:
    """Import the model at ``path``; returns (float graph, format name)."""
    fmt = detect_format(path)
    if fmt == "onnx":
        from ml_lib.frontend import onnx_import
        return onnx_import.load(path, sample), fmt
    from ml_lib.frontend import torch_import
    return torch_import.load(path, fmt, sample), fmt
