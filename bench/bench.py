"""`make bench`: ml_lib's C engine against the baselines, one table.

For every model in bench/models.py:
- ml_lib-scalar, int64-baseline, int8-dot: bench/bench_c.c (built with the
  kernel's code generation, no SSE), interleaved round by round in one
  process so machine noise hits all three alike;
- ml_lib-input-only: ml_lib_run() on the model's INPUT op alone (raw s64
  features -> quantized input, plus a copying OUTPUT), the part of
  ml_lib-scalar the baselines do not do (they take scaled integers);
- onnxruntime: the same shapes as a float ONNX model, batch 1, one thread,
  called from Python; the per-call Python + onnxruntime overhead is
  measured separately on an Identity model of the same input size and
  reported as its own row (onnxruntime-overhead).

Writes build/bench.json (a list of {"model", "engine", "ns_median", ...}),
build/bench_tables.json (table bytes vs parameter bytes and vs all arrays) and prints both
tables in Markdown. A benchmark, not a test: nothing here asserts a time.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import models  # noqa: E402  (bench/models.py)

from ml_lib.blob import op_arrays, write_blob  # noqa: E402
from ml_lib.cengine import TOP, write_generated  # noqa: E402
from ml_lib.codegen import generate  # noqa: E402

C_ENGINES = ("ml_lib-scalar", "int64-baseline", "int8-dot")


def c_args(name):
    kind, shape = models.MODELS[name]
    return [kind, *map(str, shape)]


def run_c(bench_bin: Path, blob_path: Path, name: str, rounds: int) -> list[dict]:
    out = subprocess.run([str(bench_bin), str(blob_path), str(rounds), *c_args(name)],
                         capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines():
        r = json.loads(line)
        rows.append({"model": name, "engine": r["engine"], "ns_median": r["ps_median"] / 1000,
                     "ns_q1": r["ps_q1"] / 1000, "ns_q3": r["ps_q3"] / 1000,
                     "rounds": r["rounds"], "calls_per_round": r["batch"]})
    return rows


def onnx_model(name: str):
    """Float ONNX graph of the same shapes (random weights; only time matters)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    kind, shape = models.MODELS[name]
    inits, nodes = [], []

    def const(nm, arr):
        inits.append(numpy_helper.from_array(arr.astype(np.float32), nm))
        return nm

    def gemm(x, n_in, n_out, i, relu):
        w = const(f"w{i}", rng.standard_normal((n_out, n_in)) / np.sqrt(n_in))
        b = const(f"b{i}", rng.standard_normal(n_out))
        y = f"g{i}"
        nodes.append(helper.make_node("Gemm", [x, w, b], [y], transB=1))
        if relu:
            nodes.append(helper.make_node("Relu", [y], [y + "r"]))
            y += "r"
        return y

    if kind == "mlp":
        in_shape = [1, shape[0]]
        x = "x"
        for i, (a, b) in enumerate(zip(shape, shape[1:])):
            x = gemm(x, a, b, i, i < len(shape) - 2)
        n_out = shape[-1]
    else:
        c_in, win, c_out, k, n_out = shape
        in_shape = [1, c_in, win]
        w = const("cw", rng.standard_normal((c_out, c_in, k)) / np.sqrt(c_in * k))
        b = const("cb", rng.standard_normal(c_out))
        nodes += [helper.make_node("Conv", ["x", w, b], ["c"], kernel_shape=[k]),
                  helper.make_node("Relu", ["c"], ["cr"]),
                  helper.make_node("MaxPool", ["cr"], ["p"], kernel_shape=[2], strides=[2]),
                  helper.make_node("Flatten", ["p"], ["f"], axis=1)]
        l_pool = (win - k + 1) // 2
        x = gemm("f", c_out * l_pool, n_out, 9, False)
    graph = helper.make_graph(nodes, name.replace("-", "_"),
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
                              [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, n_out])],
                              inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model, in_shape


def identity_model(in_shape):
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "identity",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, in_shape)])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def _session(model):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def time_ort(model, in_shape, rounds: int) -> dict[str, tuple[float, float, float]]:
    """(median, q1, q3) ns per sess.run call, batch 1, single thread, for the
    model and for an Identity model of the same input (the per-call Python +
    onnxruntime overhead), interleaved round by round like the C engines."""
    sessions = {"onnxruntime": _session(model),
                "onnxruntime-overhead": _session(identity_model(in_shape))}
    feed = {"x": np.random.default_rng(1).standard_normal(in_shape).astype(np.float32)}
    for sess in sessions.values():
        for _ in range(500):
            sess.run(None, feed)
    calls = 1
    while True:  # calls per round: about 1 ms of the model
        t0 = time.perf_counter_ns()
        for _ in range(calls):
            sessions["onnxruntime"].run(None, feed)
        if time.perf_counter_ns() - t0 > 1_000_000:
            break
        calls *= 2
    per_call = {k: [] for k in sessions}
    for _ in range(rounds):
        for k, sess in sessions.items():
            t0 = time.perf_counter_ns()
            for _ in range(calls):
                sess.run(None, feed)
            per_call[k].append((time.perf_counter_ns() - t0) / calls)
    out = {}
    for k, v in per_call.items():
        q = statistics.quantiles(v, n=4)
        out[k] = (statistics.median(v), q[0], q[2])
    return out


#: how the kernel compiles a generated model (no PIC: the tables land in .rodata)
TABLE_CFLAGS = ["-std=gnu11", "-O2", "-mgeneral-regs-only", "-mno-red-zone", "-fno-pic",
                "-fno-strict-aliasing"]


def compiled_table_bytes(g, work: Path) -> int:
    """Constant bytes of the generated ``<name>.c`` once compiled: the sum of its
    .rodata sections (arrays, op and tensor records, the graph, the name,
    alignment padding), measured with ``size -A``, not estimated."""
    d = work / f"tables-{g.name}"
    (src,) = write_generated(generate(g), d)
    obj = d / f"{g.name}.o"
    subprocess.run(["gcc", *TABLE_CFLAGS, f"-I{TOP / 'include'}", f"-I{TOP / 'lib' / 'ml'}",
                    f"-I{d}", "-c", "-o", str(obj), str(src)], check=True)
    out = subprocess.run(["size", "-A", str(obj)], capture_output=True, text=True,
                         check=True).stdout
    total = 0
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 2 and (f[0].startswith(".rodata") or f[0].startswith(".data")):
            total += int(f[1])
    return total


def sizes(g, work: Path) -> dict:
    """param_bytes: s8 weights + s32 bias, the issue's measure. array_bytes:
    every constant array the engine reads (also the per-channel multipliers
    and shifts and the INPUT op's per-feature affine), so that table_bytes /
    array_bytes is what the format itself adds (op, tensor and graph records,
    padding)."""
    params = sum(op.arrays["w"].size + 4 * op.arrays["bias"].size
                 for op in g.ops if op.kind in ("fc", "conv1d"))
    arrays = sum(a.nbytes for op in g.ops for a in op_arrays(op, g))
    return {"param_bytes": int(params), "array_bytes": int(arrays),
            "table_bytes": compiled_table_bytes(g, work), "blob_bytes": len(write_blob(g))}


def fmt_ns(v: float) -> str:
    return f"{v:,.0f}" if v >= 100 else f"{v:.1f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench-bin", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--rounds", type=int, default=301)
    ap.add_argument("--ort-rounds", type=int, default=101)
    a = ap.parse_args()

    work = a.bench_bin.parent
    results, tables = [], []
    for name in models.MODELS:
        g = models.build(name)
        blob_path = work / f"{name}.mlb"
        blob_path.write_bytes(write_blob(g))
        results += run_c(a.bench_bin, blob_path, name, a.rounds)
        io_path = work / f"{name}-input-only.mlb"
        io_path.write_bytes(write_blob(models.input_only(g)))
        io = [r for r in run_c(a.bench_bin, io_path, name, a.rounds)
              if r["engine"] == "ml_lib-scalar"][0]
        results.append({**io, "engine": "ml_lib-input-only"})
        model, in_shape = onnx_model(name)
        for engine, (med, q1, q3) in time_ort(model, in_shape, a.ort_rounds).items():
            results.append({"model": name, "engine": engine, "ns_median": med,
                            "ns_q1": q1, "ns_q3": q3})
        tables.append({"model": name, **sizes(g, work)})
        print(f"bench: {name} done", file=sys.stderr)

    a.out.write_text(json.dumps(results, indent=1) + "\n")
    (a.out.parent / "bench_tables.json").write_text(json.dumps(tables, indent=1) + "\n")

    by = {(r["model"], r["engine"]): r["ns_median"] for r in results}
    print("\nns per inference (median; C engines built -O2 -mgeneral-regs-only, "
          "onnxruntime float, batch 1, 1 thread, from Python)\n")
    print("| model | ml_lib-scalar (of which INPUT) | int64-baseline | int8-dot "
          "| onnxruntime (Python overhead) | int64 / ours | ours / int8-dot |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in models.MODELS:
        ours, i64, i8 = (by[name, e] for e in C_ENGINES)
        inp = by[name, "ml_lib-input-only"]
        ort_t, ovh = by[name, "onnxruntime"], by[name, "onnxruntime-overhead"]
        print(f"| {name} | {fmt_ns(ours)} ({fmt_ns(inp)}) | {fmt_ns(i64)} | {fmt_ns(i8)} | "
              f"{fmt_ns(ort_t)} ({fmt_ns(ovh)}) | {i64 / ours:.2f}x | {ours / i8:.2f} |")
    print("\nconstant table bytes (the generated C compiled as the kernel does, .rodata + .data "
          "measured) vs parameter bytes (s8 weights + s32 bias) and vs every constant array "
          "(also per-channel mult/shift and the INPUT affine)\n")
    print("| model | parameters | all arrays | C tables | tables / parameters "
          "| tables / all arrays | blob |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for t in tables:
        print(f"| {t['model']} | {t['param_bytes']:,} | {t['array_bytes']:,} | "
              f"{t['table_bytes']:,} | {t['table_bytes'] / t['param_bytes']:.4f} | "
              f"{t['table_bytes'] / t['array_bytes']:.4f} | {t['blob_bytes']:,} |")
    print(f"\nwrote {a.out} and {a.out.parent / 'bench_tables.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
