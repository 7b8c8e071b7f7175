# SPDX-License-Identifier: GPL-2.0
"""The manifest ``<name>.json`` mlexport writes beside every exported model.

One schema for both targets.  Keys the proxy daemon reads (``format``,
``name``, ``n_in``, ``n_out``, ``raw_scale``, ``frac_bits``, ``onnx``,
``features``, ``outputs``) keep the meaning docs/proxy.md gives them; the
rest describe the integer model for users and for ``mlrun``:

- ``inputs``: [{name, offset, shape, features, raw_scale[], scale, zero_point}]
  (float feature = raw * raw_scale; the kernel takes the raw s64 values);
- ``output_specs``: [{name, offset, shape, kind: fixed|index, frac_bits,
  scale, zero_point}] (fixed: float = s32 / 2**frac_bits);
- ``sizes``, ``ops`` and ``report`` (see ml_lib.report).

Written with sorted keys and no time stamps, so exporting the same model
twice gives the same bytes.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ml_lib.errors import UserError
from ml_lib.ir import Graph

FORMAT_KERNEL = "ml_lib-kernel"
FORMAT_USER = "ml_lib-user"  # what mlproxyd serves (ml_lib.proxy.manifest.FORMAT)
VERSION = 1


def _clean(v):
    """JSON-safe, deterministic values (numpy scalars/arrays to Python)."""
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    if isinstance(v, np.ndarray):
        return _clean(v.tolist())
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        v = float(v)
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return v


def build(graph: Graph, target: str, source: str, fmt: str, bits: int,
          report: dict, sizes: dict, classes=None) -> dict:
    inp = graph.inputs[0]
    outs = []
    for o in graph.outputs:
        outs.append({"name": o.name, "offset": o.offset, "shape": list(o.shape),
                     "kind": o.meta.get("kind", "fixed"), "frac_bits": o.frac_bits,
                     "scale": o.meta.get("scale"), "zero_point": o.meta.get("zero_point")})
    fixed = [o.frac_bits for o in graph.outputs if o.frac_bits is not None]
    man = {
        "format": FORMAT_KERNEL if target == "kernel" else FORMAT_USER,
        "version": VERSION,
        "name": graph.name,
        "target": target,
        "source": {"file": Path(source).name, "format": fmt},
        "activation_bits": bits,
        "n_in": graph.n_in,
        "n_out": graph.n_out,
        "raw_scale": inp.meta["raw_scale"],
        "frac_bits": min(fixed) if fixed else 0,
        "features": list(inp.features),
        "outputs": [o.name for o in graph.outputs],
        "inputs": [{"name": inp.name, "offset": inp.offset, "shape": list(inp.shape),
                    "features": list(inp.features), "raw_scale": inp.meta["raw_scale"],
                    "scale": inp.meta.get("scale"), "zero_point": inp.meta.get("zero_point")}],
        "output_specs": outs,
        "sizes": sizes,
        "ops": [{"kind": op.kind, "source": op.source} for op in graph.ops],
        "report": report,
    }
    if classes is not None:
        man["classes"] = classes
    if target == "kernel":
        man["blob"] = f"{graph.name}.mlb"
    return _clean(man)


def dumps(man: dict) -> str:
    """The text of ``<name>.json`` (sorted keys: the same manifest, the same bytes)."""
    return json.dumps(man, indent=1, sort_keys=True) + "\n"


def load(model_dir) -> dict:
    """Read the manifest of an exported model folder (a UserError names any defect)."""
    d = Path(model_dir)
    if not d.is_dir():
        raise UserError(f"{d}: no such model folder (run mlexport first)")
    found = sorted(d.glob("*.json"))
    if len(found) != 1:
        raise UserError(f"{d}: expected one <name>.json manifest, found {len(found)}")
    try:
        man = json.loads(found[0].read_text())
    except ValueError as e:
        raise UserError(f"{found[0]}: not valid JSON ({e})") from e
    if not isinstance(man, dict) or man.get("format") not in (FORMAT_KERNEL, FORMAT_USER) \
            or "output_specs" not in man:
        raise UserError(f"{found[0]}: not an mlexport manifest")
    need = ["name", "n_out", "frac_bits", "inputs"] + (["blob"] if man["format"] == FORMAT_KERNEL
                                                       else [])
    missing = [k for k in need if k not in man]
    if missing:
        raise UserError(f"{found[0]}: manifest lacks {', '.join(missing)} (re-run mlexport)")
    if not isinstance(man["inputs"], list) or not man["inputs"] \
            or not isinstance(man["inputs"][0], dict) \
            or not {"shape", "raw_scale"} <= set(man["inputs"][0]):
        raise UserError(f"{found[0]}: manifest inputs are malformed (re-run mlexport)")
    return man
