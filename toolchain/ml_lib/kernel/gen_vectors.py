"""Emit lib/ml/ml_lib_kunit_vectors.h: models plus the Python reference's outputs.

The KUnit suite (lib/ml/ml_lib_kunit.c) loads each model's blob in the
kernel, runs every input row and compares the integers with the ones
:func:`ml_lib.reference.run` computed here, bit for bit. Together the models
use every op of ``ir.OP_SPECS`` and both activation widths; the inputs
include the s64 extremes.

    python -m ml_lib.kernel.gen_vectors -o lib/ml/ml_lib_kunit_vectors.h
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from .. import reference
from ..arith import quantize_multiplier
from ..blob import planned, write_blob
from ..ir import OP_SPECS, Graph, IOSpec, Op, Tensor
from ..validate import validate

SEED = 20261125
ROWS = 24
#: the KUnit multi-CPU test keeps one row on the stack, even in hard IRQ
MAX_IO_PER_ROW = 32


class _Builder:
    """A tiny graph builder: tensors, ops, requantization parameters."""

    def __init__(self, name: str, rng: np.random.Generator):
        self.name, self.rng = name, rng
        self.tensors: list[Tensor] = []
        self.ops: list[Op] = []
        self.n_in = self.n_out = 0

    def tensor(self, dtype: str, n: int, zp: int | None = None) -> int:
        if zp is None:
            zp = int(self.rng.integers(-20, 21)) if dtype == "s8" else 0
        self.tensors.append(Tensor(f"t{len(self.tensors)}", dtype, (n,), zp))
        return len(self.tensors) - 1

    def rq(self, r: float) -> tuple[int, int]:
        return quantize_multiplier(r * float(self.rng.uniform(0.7, 1.3)))

    def rq_arrays(self, n: int, r: float):
        ms = [self.rq(r) for _ in range(n)]
        return (np.array([m for m, _ in ms], np.int32), np.array([t for _, t in ms], np.uint8))

    def op(self, kind: str, inputs: list[int], output: int | None, params: dict, **arrays) -> int | None:
        self.ops.append(Op(kind, inputs, output, params, dict(arrays), source=f"{self.name}:{kind}"))
        return output

    def input(self, n: int, dtype: str, spread: int) -> int:
        y = self.tensor(dtype, n)
        qmax = 127 if dtype == "s8" else 32767
        pre = self.rng.integers(0, 4, n).astype(np.uint8)
        mult, shift = zip(*(self.rq(qmax / (spread / 2**int(p))) for p in pre))
        self.op("input", [], y, {"in_off": self.n_in, "n": n},
                off=self.rng.integers(-1000, 1000, n).astype(np.int64), pre=pre,
                mult=np.array(mult, np.int32), shift=np.array(shift, np.uint8))
        self.n_in += n
        return y

    def weighted(self, kind: str, x: int, y: int, rows: int, row_len: int, params: dict,
                 relu: bool = False) -> int:
        tx, ty = self.tensors[x], self.tensors[y]
        xmax = 127 if tx.dtype == "s8" else 32767
        ymax = 127 if ty.dtype == "s8" else 32767
        w = self.rng.integers(-127, 128, (rows, row_len)).astype(np.int8)
        bias = self.rng.integers(-3000, 3000, rows).astype(np.int32)
        mult, shift = self.rq_arrays(rows, ymax / (xmax * 127 * math.sqrt(row_len)))
        lo = ty.zero_point if relu else (-128 if ty.dtype == "s8" else -32768)
        hi = 127 if ty.dtype == "s8" else 32767
        return self.op(kind, [x], y, dict(params, lo=lo, hi=hi), w=w.reshape(-1), bias=bias,
                       mult=mult, shift=shift)

    def fc(self, x: int, n_out: int, dtype: str = "s8", relu: bool = False) -> int:
        n_in = self.tensors[x].len
        return self.weighted("fc", x, self.tensor(dtype, n_out), n_out, n_in,
                             {"n_in": n_in, "n_out": n_out}, relu)

    def conv1d(self, x: int, c_in: int, c_out: int, k: int, stride: int, pad: int, dil: int,
               dtype: str = "s8") -> int:
        l_in = self.tensors[x].len // c_in
        l_out = (l_in + 2 * pad - dil * (k - 1) - 1) // stride + 1
        p = dict(c_in=c_in, l_in=l_in, c_out=c_out, l_out=l_out, k=k, stride=stride, pad=pad,
                 dil=dil)
        return self.weighted("conv1d", x, self.tensor(dtype, c_out * l_out), c_out, c_in * k, p)

    def output(self, x: int, mode: int, frac_bits: int = 16) -> None:
        n = self.tensors[x].len
        m, t = (self.rq(2.0**frac_bits / 64) if mode == 0 else (0, 0))
        self.op("output", [x], None, {"out_off": self.n_out, "n": n, "mode": mode,
                                      "mult": m, "shift": t})
        self.n_out += n

    def graph(self) -> Graph:
        g = Graph(self.name, self.tensors, self.ops, [IOSpec("x", 0, (self.n_in,))],
                  [IOSpec("y", 0, (self.n_out,))])
        g = planned(g)
        validate(g)
        return g


def _softmax_table(s_x: float, shift: int, n: int) -> np.ndarray:
    j = np.arange(n)
    return np.clip(np.floor(2**15 * np.exp(-j * 2.0**shift * s_x) + 0.5), 0, 2**15).astype(np.int32)


def model_mlp(rng) -> Graph:
    """s8: INPUT, FC (ReLU fused), LEAKY_RELU, FC, SOFTMAX, ARGMAX, OUTPUT both modes."""
    b = _Builder("kv_mlp", rng)
    x = b.input(6, "s8", 4000)
    h = b.fc(x, 10, relu=True)
    lr = b.tensor("s8", 10)
    m, t = b.rq(1.0)
    mb, tb = b.rq(0.1)
    b.op("leaky_relu", [h], lr, {"n": 10, "mult": m, "shift": t, "mult_b": mb, "shift_b": tb})
    z = b.fc(lr, 4)
    sm = b.tensor("s8", 4, zp=-128)
    b.op("softmax", [z], sm, {"outer": 1, "n": 4, "shift": 0, "bits": 8, "table_len": 256},
         table=_softmax_table(1 / 16, 0, 256))
    am = b.tensor("s32", 1)
    b.op("argmax", [z], am, {"outer": 1, "n": 4})
    b.output(z, 0)
    b.output(sm, 1)
    b.output(am, 1)
    return b.graph()


def model_conv(rng) -> Graph:
    """s8: CONV1D (pad), MAXPOOL1D, AVGPOOL1D, LUT (tanh), CLAMP, RESHAPE, FC."""
    b = _Builder("kv_conv", rng)
    x = b.input(12, "s8", 3000)
    c = b.conv1d(x, 2, 3, 3, 1, 1, 1)
    mp = b.tensor("s8", 9, zp=b.tensors[c].zero_point)
    b.op("maxpool1d", [c], mp, {"c": 3, "l_in": 6, "l_out": 3, "k": 2, "stride": 2})
    ap = b.tensor("s8", 6)
    m, t = b.rq(1.0 / 2)
    b.op("avgpool1d", [mp], ap, {"c": 3, "l_in": 3, "l_out": 2, "k": 2, "stride": 1,
                                 "mult": m, "shift": t, "lo": -128, "hi": 127})
    th = b.tensor("s8", 6, zp=0)
    zx = b.tensors[ap].zero_point
    table = np.clip(np.floor(127 * np.tanh((np.arange(256) - 128 - zx) / 40.0) + 0.5), -128, 127)
    b.op("lut", [ap], th, {"n": 6}, table=table.astype(np.int16))
    cl = b.tensor("s8", 6, zp=0)
    b.op("clamp", [th], cl, {"n": 6, "lo": -60, "hi": 90})
    rs = b.tensor("s8", 6, zp=0)
    b.op("reshape", [cl], rs, {"n": 6})
    y = b.fc(rs, 3)
    b.output(y, 0)
    b.output(cl, 1)
    return b.graph()


def model_s16(rng) -> Graph:
    """s16: FC, LUT (interpolated), RESCALE, ADD, CONCAT, SOFTMAX, CONV1D (stride, dilation)."""
    b = _Builder("kv_s16", rng)
    x = b.input(5, "s16", 1 << 20)
    h = b.fc(x, 6, dtype="s16")
    sg = b.tensor("s16", 6)
    u = np.arange(513) * 128 - 32768
    table = np.floor(32767 / (1 + np.exp(-u / 4096.0)) + 0.5).astype(np.int16)
    b.op("lut", [h], sg, {"n": 6}, table=table)
    rs = b.tensor("s16", 6)
    m, t = b.rq(0.75)
    b.op("rescale", [h], rs, {"n": 6, "mult": m, "shift": t, "lo": -32768, "hi": 32767})
    ad = b.tensor("s16", 6)
    t_add = 31 - math.frexp(0.6)[1]
    b.op("add", [sg, rs], ad, {"n": 6, "mult": int(0.6 * 2**t_add), "mult_b": int(0.45 * 2**t_add),
                               "shift": t_add, "lo": -32768, "hi": 32767})
    cc = b.tensor("s16", 11)
    b.op("concat", [ad, x], cc, {"outer": 1, "a_inner": 6, "b_inner": 5})
    sm = b.tensor("s16", 11)
    b.op("softmax", [cc], sm, {"outer": 1, "n": 11, "shift": 6, "bits": 15, "table_len": 1024},
         table=_softmax_table(1 / 4096, 6, 1024))
    cv = b.conv1d(x, 1, 2, 2, 2, 1, 2)
    b.output(cc, 1)
    b.output(sm, 0, frac_bits=8)
    b.output(cv, 1)
    return b.graph()


MODELS = (model_mlp, model_conv, model_s16)
#: random graphs (ml_lib.randgraph) added to the hand-built models: the first
#: seeds from RAND_SEED_START whose blob is small enough to embed
RAND_MODELS = 4
RAND_SEED_START = 1000
RAND_MAX_BLOB = 6000


def random_models():
    """(graph, raw) of small random graphs, reproducible from their seeds."""
    from ..randgraph import random_case

    out, seed = [], RAND_SEED_START
    while len(out) < RAND_MODELS:
        g, raw = random_case(seed, rows=ROWS, name=f"kv_rand{seed}")
        if len(write_blob(g)) <= RAND_MAX_BLOB and g.n_in <= 64 and g.n_out <= 64:
            out.append((g, raw))
        seed += 1
    return out


def raw_rows(rng, n_in: int) -> np.ndarray:
    """Typical values, zeros and the s64 extremes (INPUT saturates them)."""
    rows = rng.integers(-5000, 5000, (ROWS, n_in), dtype=np.int64)
    rows[0] = 0
    rows[1] = np.iinfo(np.int64).max
    rows[2] = np.iinfo(np.int64).min
    rows[3] = rng.choice([np.iinfo(np.int64).min, np.iinfo(np.int64).max, -1, 1], n_in)
    rows[4:8] *= 1000
    return rows


def _c_list(values, per_line: int = 8) -> str:
    named = {-2**63: "S64_MIN", 2**63 - 1: "S64_MAX", -2**31: "S32_MIN"}
    items = [named.get(int(v), str(int(v))) for v in values]
    lines = [", ".join(items[i:i + per_line]) + "," for i in range(0, len(items), per_line)]
    return "\n".join("\t" + ln for ln in lines)


def render() -> str:
    rng = np.random.default_rng(SEED)
    used = set()
    parts, table = [], []
    models = []
    for build in MODELS:
        g = build(rng)
        assert g.n_in <= MAX_IO_PER_ROW and g.n_out <= MAX_IO_PER_ROW, g.name
        models.append((g, raw_rows(rng, g.n_in)))
    for g, raw in models + random_models():
        used |= {op.kind for op in g.ops}
        blob = write_blob(g)
        out = reference.run(g, raw)
        n = g.name
        parts.append(f"/* {n}: {', '.join(op.kind for op in g.ops)} */\n"
                     f"static const u8 {n}_blob[] __aligned(8) = {{\n{_c_list(blob, 12)}\n}};\n\n"
                     f"static const s64 {n}_raw[] = {{\n{_c_list(raw.reshape(-1), 4)}\n}};\n\n"
                     f"static const s32 {n}_expect[] = {{\n{_c_list(out.reshape(-1))}\n}};\n")
        table.append(f"\t{{ \"{n}\", {n}_blob, sizeof({n}_blob), {g.n_in}, {g.n_out}, {ROWS},\n"
                     f"\t  {n}_raw, {n}_expect }},")
    missing = set(OP_SPECS) - used
    assert not missing, f"vector models miss ops {sorted(missing)}"
    return (
        "/* SPDX-License-Identifier: GPL-2.0 */\n"
        "/*\n"
        " * GENERATED by `python -m ml_lib.kernel.gen_vectors` (make kernel-vectors);\n"
        " * do not edit. Models as blobs, raw input rows and the outputs the Python\n"
        " * reference (toolchain/ml_lib/reference) computed for them.\n"
        " */\n"
        "#ifndef _ML_LIB_KUNIT_VECTORS_H\n#define _ML_LIB_KUNIT_VECTORS_H\n\n"
        "#include <linux/types.h>\n#include <linux/limits.h>\n\n"
        f"#define ML_LIB_KUNIT_VEC_MAX_IO {MAX_IO_PER_ROW}\n\n"
        "struct ml_lib_kunit_vector {\n"
        "\tconst char *name;\n\tconst u8 *blob;\n\tsize_t blob_len;\n"
        "\tu32 n_in, n_out, rows;\n\tconst s64 *raw;\t\t/* [rows][n_in] */\n"
        "\tconst s32 *expect;\t/* [rows][n_out] */\n};\n\n"
        + "\n".join(parts) +
        "\nstatic const struct ml_lib_kunit_vector ml_lib_kunit_vectors[] = {\n"
        + "\n".join(table) + "\n};\n\n#endif /* _ML_LIB_KUNIT_VECTORS_H */\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", type=Path, required=True)
    args = ap.parse_args(argv)
    text = render()
    args.output.write_text(text)
    print(f"wrote {args.output} ({len(text)} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
