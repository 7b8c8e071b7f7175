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

import hashlib
import json
import os
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


def sha256_file(path) -> str:
    """The SHA-256 of a file, read in chunks (a model file may be large)."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except OSError as e:
        raise UserError(f"{path}: cannot read: {e.strerror or e}") from e
    return h.hexdigest()


def build(graph: Graph, target: str, source: str, fmt: str, bits: int,
          report: dict, sizes: dict, classes=None, index_max: int = 0,
          source_sha256: str | None = None) -> dict:
    """The manifest of an export. For the user target ``frac_bits`` is the
    one F the proxy answers every output with, indices included
    (index * 2^F): the smallest of the outputs', lowered until
    ``index_max`` * 2^F fits s32. ``source_sha256``: the model file's hash,
    taken around its loading (read here when not given)."""
    inp = graph.inputs[0]
    outs = []
    for o in graph.outputs:
        outs.append({"name": o.name, "offset": o.offset, "shape": list(o.shape),
                     "kind": o.meta.get("kind", "fixed"), "frac_bits": o.frac_bits,
                     "scale": o.meta.get("scale"), "zero_point": o.meta.get("zero_point")})
    fixed = [o.frac_bits for o in graph.outputs if o.frac_bits is not None]
    frac_bits = min(fixed) if fixed else 0
    while target == "user" and frac_bits > 0 and index_max * 2**frac_bits > 2**31 - 1:
        frac_bits -= 1
    man = {
        "format": FORMAT_KERNEL if target == "kernel" else FORMAT_USER,
        "version": VERSION,
        "name": graph.name,
        "target": target,
        "source": {"file": Path(source).name, "format": fmt,
                   "sha256": source_sha256 or sha256_file(source)},
        "activation_bits": bits,
        "n_in": graph.n_in,
        "n_out": graph.n_out,
        "raw_scale": inp.meta["raw_scale"],
        "frac_bits": frac_bits,
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
    try:  # glob() says nothing when the folder cannot be read
        found = sorted(d / n for n in os.listdir(d) if n.endswith(".json") and n[0] != ".")
    except OSError as e:
        raise UserError(f"{d}: cannot read the model folder: {e.strerror or e}") from e
    if len(found) != 1:
        raise UserError(f"{d}: expected one <name>.json manifest, found {len(found)}")
    try:
        man = json.loads(found[0].read_text())
    except (ValueError, RecursionError) as e:
        raise UserError(f"{found[0]}: not valid JSON ({e})") from e
    if not isinstance(man, dict) or man.get("format") not in (FORMAT_KERNEL, FORMAT_USER) \
            or "output_specs" not in man:
        raise UserError(f"{found[0]}: not an mlexport manifest")
    need = ["name", "n_out", "frac_bits", "inputs"] + (["blob"] if man["format"] == FORMAT_KERNEL
                                                       else [])
    missing = [k for k in need if k not in man]
    if missing:
        raise UserError(f"{found[0]}: manifest lacks {', '.join(missing)} (re-run mlexport)")
    why = _malformed(man)
    if why:
        raise UserError(f"{found[0]}: manifest {why} (re-run mlexport)")
    return man


def is_int(v) -> bool:
    """A JSON integer (json gives bool for true/false, a subclass of int)."""
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v) -> bool:
    """A JSON number, not a bool or a string."""
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_shape(v) -> bool:
    return isinstance(v, list) and bool(v) and all(is_int(d) and d > 0 for d in v)


def _malformed(man: dict) -> str | None:
    """What is wrong with the fields mlrun uses, or None: a hand-edited
    manifest must fail here, not as a numpy error or silently wrong rows."""
    if not isinstance(man["name"], str) or not man["name"]:
        return "name is not a string"
    if man["format"] == FORMAT_KERNEL and not isinstance(man.get("blob"), str):
        return "blob is not a file name"
    n_out, fb = man["n_out"], man["frac_bits"]
    if not (is_int(n_out) and n_out > 0):
        return f"n_out {n_out!r} is not a positive integer"
    if not (is_int(fb) and 0 <= fb <= 31):
        return f"frac_bits {fb!r} is not an integer in 0..31"
    ins = man["inputs"]
    if not isinstance(ins, list) or not ins or not isinstance(ins[0], dict) \
            or not {"shape", "raw_scale"} <= set(ins[0]):
        return "inputs are malformed"
    if not _is_shape(ins[0]["shape"]):
        return f"input shape {ins[0]['shape']!r} is not a list of positive integers"
    n_in = int(np.prod(ins[0]["shape"]))
    rs = ins[0]["raw_scale"]
    if not isinstance(rs, list) or len(rs) != n_in \
            or not all(is_number(v) and 0 < v < float("inf") for v in rs):
        return f"input raw_scale is not {n_in} finite numbers > 0"
    specs = man["output_specs"]
    if not isinstance(specs, list) or not specs:
        return "output_specs is not a list of outputs"
    names = [o.get("name") for o in specs if isinstance(o, dict)]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup is not None:
        return f"output name {dup!r} appears twice"
    for o in specs:
        if not isinstance(o, dict) or not {"name", "offset", "shape", "kind"} <= set(o):
            return "output_specs entries need name, offset, shape and kind"
        if o["kind"] not in ("fixed", "index") or not isinstance(o["name"], str) \
                or not _is_shape(o["shape"]) or not is_int(o["offset"]) or o["offset"] < 0 \
                or o["offset"] + int(np.prod(o["shape"])) > n_out:
            return f"output {o.get('name')!r} is malformed or outside n_out {n_out}"
        if man["format"] == FORMAT_KERNEL and o["kind"] == "fixed" \
                and not (is_int(o.get("frac_bits")) and 0 <= o["frac_bits"] <= 31):
            return f"output {o['name']!r} has no integer frac_bits"
    return None
