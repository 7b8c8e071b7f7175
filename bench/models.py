"""Benchmark and test models built directly in the IR with random weights.

Shapes, not accuracy, matter here: every model is a valid quantized graph
(accumulator bounds hold, multipliers come from arith.quantize_multiplier)
so the C engine, the Python reference and the baselines can all run it.
Also used by tests/fuzz/make_seeds.py and the core tests as valid inputs.
"""
from __future__ import annotations

import numpy as np

from ml_lib.arith import quantize_multiplier
from ml_lib.ir import Graph, IOSpec, Op, Tensor, plan_arena

#: name -> (kind, shape). mlp: layer widths; conv: (c_in, window, c_out, k, n_classes)
MODELS = {
    "mlp-15-10-1": ("mlp", (15, 10, 1)),
    "mlp-31-256-2": ("mlp", (31, 256, 2)),
    "mlp-256-256-256-2": ("mlp", (256, 256, 256, 2)),
    "conv1d-4x32-k5c16-pool2-fc2": ("conv", (4, 32, 16, 5, 2)),
}


def _input_op(n, out, rng):
    """INPUT: raw features in roughly [-2^12, 2^12] to s8 (y = rq(raw, M, t))."""
    mult, shift = zip(*(quantize_multiplier(float(r)) for r in rng.uniform(1 / 64, 1 / 16, n)))
    return Op("input", [], out, {"in_off": 0, "n": n},
              {"off": rng.integers(-64, 64, n).astype(np.int64),
               "pre": np.zeros(n, np.uint8),
               "mult": np.array(mult, np.int32), "shift": np.array(shift, np.uint8)})


def _rq_arrays(n_out, fan_in, rng):
    """Per-channel multipliers that map the accumulator range to about +-127."""
    # random +-127 weights times +-127 inputs sum to about sqrt(fan_in) * 5000
    r = rng.uniform(0.5, 2.0, n_out) * 64 / (np.sqrt(fan_in) * 5000)
    mult, shift = zip(*(quantize_multiplier(float(v)) for v in r))
    return np.array(mult, np.int32), np.array(shift, np.uint8)


def _mac_arrays(n_out, fan_in, rng, zx):
    w = rng.integers(-127, 128, (n_out, fan_in)).astype(np.int8)
    bias = rng.integers(-4096, 4096, n_out).astype(np.int64) - zx * w.astype(np.int64).sum(axis=1)
    mult, shift = _rq_arrays(n_out, fan_in, rng)
    return {"w": w.reshape(-1), "bias": bias.astype(np.int32), "mult": mult, "shift": shift}


def _output_op(src, n):
    m, t = quantize_multiplier(0.05 * 2**16)
    return Op("output", [src], None, {"out_off": 0, "n": n, "mode": 0, "mult": m, "shift": t})


def mlp(name: str, widths, seed: int = 0) -> Graph:
    """INPUT -> (FC + fused ReLU)* -> FC -> OUTPUT (fixed point), s8 activations."""
    rng = np.random.default_rng(seed)
    tensors = [Tensor("x", "s8", (widths[0],), zero_point=int(rng.integers(-8, 8)))]
    ops = [_input_op(widths[0], 0, rng)]
    for i, (n_in, n_out) in enumerate(zip(widths, widths[1:])):
        last = i == len(widths) - 2
        zy = int(rng.integers(-8, 8)) if last else -128
        tensors.append(Tensor(f"h{i}", "s8", (n_out,), zero_point=zy))
        params = {"n_in": n_in, "n_out": n_out, "lo": -128 if last else zy, "hi": 127}
        ops.append(Op("fc", [len(tensors) - 2], len(tensors) - 1, params,
                      _mac_arrays(n_out, n_in, rng, tensors[-2].zero_point)))
    ops.append(_output_op(len(tensors) - 1, widths[-1]))
    g = Graph(_c_name(name), tensors, ops, [IOSpec("x", 0, (widths[0],))],
              [IOSpec("y", 0, (widths[-1],), frac_bits=16)])
    plan_arena(g)
    return g


def conv(name: str, c_in, window, c_out, k, n_classes, seed: int = 0) -> Graph:
    """INPUT [c_in][window] -> CONV1D + ReLU -> MAXPOOL k=2 -> FC -> OUTPUT."""
    rng = np.random.default_rng(seed)
    n = c_in * window
    l_out = window - k + 1
    l_pool = (l_out - 2) // 2 + 1
    tensors = [Tensor("x", "s8", (c_in, window), zero_point=3),
               Tensor("c", "s8", (c_out, l_out), zero_point=-128),
               Tensor("p", "s8", (c_out, l_pool), zero_point=-128),
               Tensor("y", "s8", (n_classes,), zero_point=0)]
    conv_arrays = _mac_arrays(c_out, c_in * k, rng, 3)
    ops = [
        _input_op(n, 0, rng),
        Op("conv1d", [0], 1, {"c_in": c_in, "l_in": window, "c_out": c_out, "l_out": l_out,
                              "k": k, "stride": 1, "pad": 0, "dil": 1, "lo": -128, "hi": 127},
           conv_arrays),
        Op("maxpool1d", [1], 2, {"c": c_out, "l_in": l_out, "l_out": l_pool, "k": 2, "stride": 2}),
        Op("fc", [2], 3, {"n_in": c_out * l_pool, "n_out": n_classes, "lo": -128, "hi": 127},
           _mac_arrays(n_classes, c_out * l_pool, rng, -128)),
        _output_op(3, n_classes),
    ]
    g = Graph(_c_name(name), tensors, ops, [IOSpec("x", 0, (n,))],
              [IOSpec("y", 0, (n_classes,), frac_bits=16)])
    plan_arena(g)
    return g


def _c_name(name: str) -> str:
    return "m_" + "".join(c if c.isalnum() else "_" for c in name)[:29]


def build(name: str, seed: int = 0) -> Graph:
    kind, shape = MODELS[name]
    return mlp(name, shape, seed) if kind == "mlp" else conv(name, *shape, seed=seed)


def random_inputs(g: Graph, n: int, seed: int = 1) -> np.ndarray:
    """Raw s64 features, mostly in range, some far outside (saturation)."""
    rng = np.random.default_rng(seed)
    x = rng.integers(-6000, 6000, (n, g.n_in)).astype(np.int64)
    x[rng.random(x.shape) < 0.02] = np.iinfo(np.int64).max
    x[rng.random(x.shape) < 0.02] = np.iinfo(np.int64).min
    return x


def input_only(g: Graph) -> Graph:
    """The INPUT op of ``g`` followed by a copying OUTPUT: what turning raw
    s64 features into the quantized input costs (the baselines start from
    already-scaled integers)."""
    inp = g.ops[0]
    assert inp.kind == "input" and inp.params["n"] == g.n_in
    t = g.tensors[inp.output]
    io = Graph(g.name[:24] + "_io", [Tensor("x", t.dtype, (g.n_in,), zero_point=t.zero_point)],
               [Op("input", [], 0, dict(inp.params), dict(inp.arrays)),
                Op("output", [0], None, {"out_off": 0, "n": g.n_in, "mode": 1, "mult": 0,
                                         "shift": 0})],
               [IOSpec("x", 0, (g.n_in,))], [IOSpec("y", 0, (g.n_in,))])
    plan_arena(io)
    return io
