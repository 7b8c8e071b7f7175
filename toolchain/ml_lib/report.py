# SPDX-License-Identifier: GPL-2.0
"""The export report: sizes, cost and accuracy of the integer model.

Accuracy compares the integer model (``ml_lib.reference``, the normative
arithmetic) with the float graph on the calibration rows: per output (max /
mean absolute error, argmax agreement for multi-column outputs) and per
layer (each quantized tensor dequantized against the float value it stands
for), so a user can see which layer loses accuracy.
"""
from __future__ import annotations

import numpy as np

from ml_lib.frontend.graph import FloatGraph, run_float
from ml_lib.ir import Graph
from ml_lib.validate import WORK_BUDGET, graph_work

#: worst stack of the ml_lib_run() call chain: the bound `make stack-check`
#: (mk/core.mk) enforces; the caller adds its input/output structs
ENGINE_FRAME_BYTES = 512
#: input + output structs above this get a note: kernel stacks are 8 or 16 KiB
#: in all, and the caller's own frames share them
CALLER_STRUCTS_STACK_MAX = 1024


def macs(graph: Graph) -> int:
    total = 0
    for op in graph.ops:
        p = op.params
        if op.kind == "fc":
            total += p["n_in"] * p["n_out"]
        elif op.kind == "conv1d":
            total += p["c_out"] * p["l_out"] * p["c_in"] * p["k"]
        elif op.kind in ("maxpool1d", "avgpool1d"):
            total += p["c"] * p["l_out"] * p["k"]
    return int(total)


def sizes(graph: Graph) -> dict:
    return {
        "parameters": graph.param_count(),
        "table_bytes": graph.table_bytes(),
        "scratch_bytes": graph.arena_bytes,
        "macs": macs(graph),
        # the loader refuses a graph over WORK_BUDGET (docs/arithmetic.md, "Work budget")
        "work_units": graph_work(graph),
        "stack_bytes_estimate": ENGINE_FRAME_BYTES + 8 * graph.n_in + 4 * graph.n_out,
        "n_ops": len(graph.ops),
        "n_tensors": len(graph.tensors),
    }


def _err(a: np.ndarray, b: np.ndarray) -> dict:
    d = np.abs(a.astype(np.float64) - b.astype(np.float64))
    rng = float(np.max(np.abs(b))) if b.size else 0.0
    return {"max_abs": float(d.max()) if d.size else 0.0,
            "mean_abs": float(d.mean()) if d.size else 0.0,
            "float_max_abs": rng}


def dequant_outputs(graph: Graph, out: np.ndarray) -> dict[str, np.ndarray]:
    """s32 output vector rows -> {name: float array (rows, *shape)}."""
    res = {}
    for o in graph.outputs:
        v = out[:, o.offset:o.offset + o.len].astype(np.float64)
        if o.frac_bits is not None:
            v = v / 2.0**o.frac_bits
        res[o.name] = v.reshape((out.shape[0],) + tuple(o.shape))
    return res


def accuracy(fg: FloatGraph, q, calib: np.ndarray, raw: np.ndarray) -> dict:
    """Integer vs float on the calibration rows, per output and per layer."""
    from ml_lib import reference
    layers = reference.run_layers(q.graph, raw, check=False)
    out = reference.run(q.graph, raw, check=False)
    fl = run_float(fg, calib, keep_all=True)
    g = q.graph
    ints = dequant_outputs(g, out)
    outputs = []
    for o, v in zip(g.outputs, q.output_values):
        ent = {"name": o.name}
        fv = fl[v]
        if o.meta.get("kind") == "index":
            if o.meta.get("argmax_added"):
                fv = np.argmax(fv, axis=-1)  # --argmax on a float output
            ent["agreement"] = float(np.mean(ints[o.name].ravel() == fv.reshape(-1)))
        else:
            ref = fv.reshape((calib.shape[0],) + tuple(o.shape))
            ent.update(_err(ints[o.name], ref))
            if ref.ndim >= 2 and ref.shape[-1] > 1:
                ent["argmax_agreement"] = float(np.mean(
                    np.argmax(ints[o.name], -1) == np.argmax(ref, -1)))
        outputs.append(ent)
    per_layer = []
    by_tensor = {}
    for name, t in q.value_tensor.items():
        by_tensor[t] = name  # the last value a tensor stands for: after a fused ReLU
    src = {op.output: op for op in g.ops if op.output is not None}
    for t, name in sorted(by_tensor.items()):
        tt = g.tensors[t]
        if t not in layers or tt.dtype == "s32" or name not in fl:
            continue
        deq = tt.scale * (layers[t].astype(np.float64) - tt.zero_point)
        ref = fl[name].reshape(deq.shape)
        op = src[t]
        e = _err(deq, ref)
        e["rel_max"] = e["max_abs"] / e["float_max_abs"] if e["float_max_abs"] else 0.0
        per_layer.append({"tensor": t, "op": op.kind, "source": op.source, **e})
    return {"rows": int(calib.shape[0]), "outputs": outputs, "layers": per_layer}


def format_text(man: dict) -> str:
    """The report as printed after export."""
    s = man["sizes"]
    rep = man.get("report") or {}
    lines = [f"model {man['name']}: target {man['target']}, int{man['activation_bits']} "
             f"activations, {s['n_ops']} ops",
             f"  parameters {s['parameters']}, tables {s['table_bytes']} B, scratch "
             f"{s['scratch_bytes']} B, {s['macs']} MACs, stack ~{s['stack_bytes_estimate']} B"]
    structs = s["stack_bytes_estimate"] - ENGINE_FRAME_BYTES
    if structs > CALLER_STRUCTS_STACK_MAX:
        lines.append(f"  note: the input and output structs take {structs} B: too much for a "
                     "kernel stack; keep them in static, per-CPU or kmalloc'ed memory")
    if s.get("work_units"):
        lines.append(f"  work {s['work_units']} units, {s['work_units'] / WORK_BUDGET:.2%} of the "
                     "2^24 the loader allows per inference")
    for nm, e in (rep.get("proxy_input_rounding") or {}).items():
        lines.append(f"  proxy serves the float model: output {nm} changes by at most "
                     f"{e['max_abs']:.3g} (mean {e['mean_abs']:.3g}) from rounding inputs to "
                     "raw_scale")
    acc = rep.get("accuracy")
    if acc and man["target"] == "user":
        lines.append("  (integer model below for comparison: what --target kernel would run)")
    if not acc:
        lines.append(f"  accuracy: {rep.get('accuracy_note', 'not measured')}")
        return "\n".join(lines) + "\n"
    lines.append(f"  integer vs float on {acc['rows']} calibration rows:")
    for o in acc["outputs"]:
        if "agreement" in o:
            lines.append(f"    output {o['name']}: index agreement {100 * o['agreement']:.2f}%")
        else:
            extra = (f", argmax agreement {100 * o['argmax_agreement']:.2f}%"
                     if "argmax_agreement" in o else "")
            lines.append(f"    output {o['name']}: max abs err {o['max_abs']:.6g}, mean abs err "
                         f"{o['mean_abs']:.6g} (float range +-{o['float_max_abs']:.4g}){extra}")
    lines.append("  per layer (dequantized integer tensor vs float value):")
    lines.append(f"    {'tensor':>6}  {'op':<10} {'max abs':>10} {'mean abs':>10} {'rel max':>8}  source")
    for L in acc["layers"]:
        lines.append(f"    {L['tensor']:>6}  {L['op']:<10} {L['max_abs']:>10.4g} "
                     f"{L['mean_abs']:>10.4g} {100 * L['rel_max']:>7.2f}%  {L['source']}")
    return "\n".join(lines) + "\n"
