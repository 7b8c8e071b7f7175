# SPDX-License-Identifier: GPL-2.0
"""The model folder mlproxyd serves: ``<name>.onnx`` + ``<name>.json``.

Manifest keys (docs/proxy.md): ``name``, ``n_in``, ``n_out``, ``raw_scale``
(one float, or one per input feature: float feature = raw s64 * scale),
``frac_bits`` (F: an output y goes back as s32 round(y * 2**F), saturated),
optionally ``onnx`` (file name, default ``<name>.onnx``), ``onnx_input`` /
``onnx_output`` (tensor names, default the graph's first), ``timeout_ms``
and ``features`` / ``outputs`` (names, used by the caller stub).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..manifest import is_int, is_number, sha256_file
from . import abi

FORMAT = "ml_lib-user"
S32_MIN, S32_MAX = -(2**31), 2**31 - 1


@dataclass
class Manifest:
    name: str
    n_in: int
    n_out: int
    raw_scale: np.ndarray  # float64 [n_in]
    frac_bits: int
    onnx_path: Path
    onnx_input: str | None = None
    onnx_output: str | None = None
    timeout_ms: int = 100
    features: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    #: SHA-256 of the ONNX file (checked against the manifest's onnx_sha256, if any)
    onnx_sha256: str = ""

    def to_float(self, raw: np.ndarray) -> np.ndarray:
        """Raw s64 features [k, n_in] → float32 model inputs."""
        return (np.asarray(raw, dtype=np.float64) * self.raw_scale).astype(np.float32)

    def to_raw(self, x: np.ndarray) -> np.ndarray:
        """Float features → raw s64 (round half up to the raw_scale grid),
        saturated to ±(2^62), the engine's raw limit; NaN is refused."""
        v = np.floor(np.asarray(x, dtype=np.float64) / self.raw_scale + 0.5)
        if np.isnan(v).any():
            raise UserError(f"{self.name}: input features contain NaN")
        return np.clip(v, -RAW_LIMIT, RAW_LIMIT).astype(np.int64)

    def to_fixed(self, y: np.ndarray) -> np.ndarray:
        """Model outputs → s32 fixed point value * 2**F, round half up, saturated."""
        return to_fixed(y, self.frac_bits)


RAW_LIMIT = float(2**62)


def to_fixed(y, frac_bits: int) -> np.ndarray:
    """Floats → s32 round(y * 2**frac_bits), ties up, saturated; NaN → 0.

    Exact for float64 too: floor(v + 0.5) would round v + 0.5 first (it
    gives 1 for v = 0.49999999999999994), so the tie test is on v's exact
    fraction instead.
    """
    v = np.asarray(y, dtype=np.float64) * 2.0**frac_bits
    with np.errstate(invalid="ignore"):
        r = np.floor(v)
        r += (v - r) >= 0.5
    r = np.nan_to_num(r, nan=0.0, posinf=S32_MAX, neginf=S32_MIN)
    return np.clip(r, S32_MIN, S32_MAX).astype(np.int32)

TIMEOUT_MS_MAX = 60000  # the kernel's limit for a proxy model's timeout


def _bad(d: Path, why: str) -> UserError:
    return UserError(f"{d}: not an ml_lib user model folder: {why}")


def load_manifest(model_dir) -> Manifest:
    """Read and check a model folder; a :class:`UserError` names any defect."""
    d = Path(model_dir)
    if not d.is_dir():
        raise _bad(d, "no such directory")
    manifests = sorted(d.glob("*.json"))
    if len(manifests) != 1:
        raise _bad(d, f"expected one <name>.json manifest, found {len(manifests)}")
    try:
        m = json.loads(manifests[0].read_text())
    except (OSError, ValueError, RecursionError) as e:
        raise _bad(d, f"{manifests[0].name} is not valid JSON ({e})") from None
    if not isinstance(m, dict):
        raise _bad(d, f"{manifests[0].name} is not a JSON object")
    if m.get("format", FORMAT) != FORMAT:
        raise _bad(d, f"manifest format {m.get('format')!r} is not {FORMAT!r}")
    for key in ("name", "n_in", "n_out", "raw_scale", "frac_bits"):
        if key not in m:
            raise _bad(d, f"manifest lacks {key!r}")
    name = m["name"]
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) \
            or len(name) >= abi.NAME_LEN:
        raise _bad(d, f"model name {name!r} is not a C identifier shorter than {abi.NAME_LEN}")
    n_in, n_out, f = m["n_in"], m["n_out"], m["frac_bits"]
    if not (is_int(n_in) and 0 < n_in <= abi.MAX_IN):
        raise _bad(d, f"n_in {n_in!r} not in 1..{abi.MAX_IN}")
    if not (is_int(n_out) and 0 < n_out <= abi.MAX_OUT):
        raise _bad(d, f"n_out {n_out!r} not in 1..{abi.MAX_OUT}")
    if not (is_int(f) and 0 <= f <= 30):
        raise _bad(d, f"frac_bits {f!r} not in 0..30")
    rs = m["raw_scale"]
    if not (is_number(rs) or (isinstance(rs, list) and len(rs) == n_in
                            and all(is_number(v) for v in rs))):
        raise _bad(d, f"raw_scale must be a number or a list of n_in ({n_in}) numbers")
    try:
        scale = np.broadcast_to(np.asarray(rs, dtype=np.float64), (n_in,)).copy()
    except OverflowError:  # a JSON integer too large for a float
        raise _bad(d, "raw_scale values must be finite and > 0") from None
    if not np.all(np.isfinite(scale)) or np.any(scale <= 0):
        raise _bad(d, "raw_scale values must be finite and > 0")
    for key in ("onnx", "onnx_input", "onnx_output", "onnx_sha256"):
        if m.get(key) is not None and not isinstance(m[key], str):
            raise _bad(d, f"{key} must be a string, not {m[key]!r}")
    for key in ("features", "outputs"):
        v = m.get(key, [])
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise _bad(d, f"{key} must be a list of names")
    t = m.get("timeout_ms", 100)
    if not (is_int(t) and 1 <= t <= TIMEOUT_MS_MAX):
        raise _bad(d, f"timeout_ms {t!r} is not a whole number of ms in 1..{TIMEOUT_MS_MAX}")
    onnx_path = d / (m.get("onnx") or f"{name}.onnx")
    if not onnx_path.is_file():
        raise _bad(d, f"missing {onnx_path.name}")
    man = Manifest(name=name, n_in=n_in, n_out=n_out, raw_scale=scale, frac_bits=f,
                   onnx_path=onnx_path, onnx_input=m.get("onnx_input"),
                   onnx_output=m.get("onnx_output"), timeout_ms=t,
                   features=list(m.get("features", [])), outputs=list(m.get("outputs", [])),
                   onnx_sha256=m.get("onnx_sha256") or "")
    # a model changed after its export is refused before anything starts
    # (mlexport records onnx_sha256; hand-written manifests may leave it out)
    have = sha256_file(onnx_path)
    if man.onnx_sha256 and man.onnx_sha256.lower() != have:
        raise UserError(f"{onnx_path} has sha256 {have} but its manifest says "
                        f"{man.onnx_sha256}: the model changed after the export "
                        "(re-run mlexport)")
    man.onnx_sha256 = have
    return man


def write_model_dir(out_dir, name: str, onnx_model, n_in: int, n_out: int,
                    raw_scale=1.0, frac_bits: int = 16, **extra) -> Path:
    """Write a folder mlproxyd serves from an ``onnx.ModelProto`` (or bytes)."""
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    data = onnx_model if isinstance(onnx_model, bytes) else onnx_model.SerializeToString()
    (d / f"{name}.onnx").write_bytes(data)
    scale = raw_scale.tolist() if isinstance(raw_scale, np.ndarray) else raw_scale
    man = {"format": FORMAT, "version": 1, "name": name, "onnx": f"{name}.onnx",
           "n_in": n_in, "n_out": n_out, "raw_scale": scale, "frac_bits": frac_bits, **extra}
    (d / f"{name}.json").write_text(json.dumps(man, indent=1) + "\n")
    return d
