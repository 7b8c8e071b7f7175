"""IR -> C: ``generate(graph)`` renders the Jinja templates in templates/.

Output files (all byte-identical for the same graph):

- ``<name>.c``: const arrays, tensor and op tables, ``<name>_graph`` and,
  in a kernel build, ``<name>_model``;
- ``<name>.h``: the typed wrapper (``struct <name>_input`` / ``_output``
  with one field per feature, ``<name>_run()``, ``<name>_infer()``);
- ``<name>_mod.c`` and ``Kbuild``: a module ``<name>_ml.ko`` that registers
  the model on load.

The tables carry exactly what :func:`ml_lib.blob.write_blob` writes: both
walk ``ir.OP_SPECS`` and :func:`ml_lib.blob.op_arrays`.
"""
from __future__ import annotations

import re
from pathlib import Path

import jinja2

from ..blob import op_arrays, planned
from ..ir import NO_TENSOR, Graph
from ..validate import validate

__all__ = ["generate", "c_identifier", "c_identifiers", "C_UNION_MEMBER"]

MAX_COLS = 100

#: which member of ``union ml_lib_op.u`` (include/linux/ml_lib.h) holds each op's parameters
C_UNION_MEMBER = {
    "input": "input", "fc": "fc", "conv1d": "conv",
    "maxpool1d": "pool", "avgpool1d": "pool",
    "clamp": "elt", "leaky_relu": "elt", "lut": "elt", "add": "elt", "rescale": "elt",
    "reshape": "elt", "concat": "concat", "softmax": "softmax", "argmax": "softmax",
    "output": "output",
}
_CTYPE = {"int8": "s8", "uint8": "u8", "int16": "s16", "int32": "s32", "int64": "s64"}
_DTYPE_ENUM = {"s8": "ML_LIB_S8", "s16": "ML_LIB_S16", "s32": "ML_LIB_S32"}
_OPCODE_ENUM = {
    "input": "ML_OP_INPUT", "fc": "ML_OP_FC", "conv1d": "ML_OP_CONV1D",
    "maxpool1d": "ML_OP_MAXPOOL1D", "avgpool1d": "ML_OP_AVGPOOL1D", "clamp": "ML_OP_CLAMP",
    "leaky_relu": "ML_OP_LEAKY_RELU", "lut": "ML_OP_LUT", "add": "ML_OP_ADD",
    "rescale": "ML_OP_RESCALE", "concat": "ML_OP_CONCAT", "reshape": "ML_OP_RESHAPE",
    "softmax": "ML_OP_SOFTMAX", "argmax": "ML_OP_ARGMAX", "output": "ML_OP_OUTPUT",
}

# C keywords, gcc's predefined lower-case macros, and common kernel macros and types, which a
# struct field can't use (names are lower-cased first). The kernel has hundreds more lower-case
# object-like macros: model.h.j2 turns any of them that is defined where the header is included
# into an #error naming the field, instead of a puzzling compiler error.
_RESERVED = set("""
auto break case char const continue default do double else enum extern float for goto if inline
int long register restrict return short signed sizeof static struct switch typedef union unsigned
void volatile while asm typeof bool true false current u8 u16 u32 u64 s8 s16 s32 s64
alignas alignof constexpr nullptr static_assert thread_local typeof_unqual
size_t ssize_t loff_t pid_t linux unix i386 fallthrough noinline notrace asmlinkage pgoff_t
""".split())
#: identifiers are cut to this many characters (before de-duplication), so that the fields and
#: their kernel-doc lines fit MAX_COLS
MAX_IDENT = 48

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
    trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
    undefined=jinja2.StrictUndefined, autoescape=False)


def c_identifier(name) -> str:
    """One name as a C identifier (c_identifiers() without the de-duplication)."""
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", str(name)).lower()
    s = re.sub(r"[^0-9a-z_]+", "_", s).strip("_") or "f"
    s = re.sub(r"__+", "_", s)
    if s[0].isdigit():
        s = "f_" + s
    s = s[:MAX_IDENT].rstrip("_") or "f"
    return s + "_" if s in _RESERVED else s


def c_identifiers(names: list[str]) -> list[str]:
    """Sanitise names to unique C identifiers, keeping them readable.

    "queue len[0]" -> "queue_len_0", "queueLen" -> "queue_len" (kernel style has no
    CamelCase); a leading digit gets "f_"; C keywords
    and kernel macro/type names get a trailing "_"; duplicates get "_2", "_3"...
    """
    out: list[str] = []
    seen: set[str] = set()
    for n in names:
        s = c_identifier(n)
        base, k = s, 2
        while s in seen:
            s = f"{base}_{k}"
            k += 1
        seen.add(s)
        out.append(s)
    return out


def _comment(s: str, width: int = 60) -> str:
    s = re.sub(r"[^ -~]", "?", str(s)).replace("*/", "* /").replace("/*", "/ *")
    return s if len(s) <= width else s[:width - 3] + "..."


def _c_int(v: int) -> str:
    v = int(v)
    if v == -(2**31):
        return "-2147483647 - 1"
    if v == -(2**63):
        return "-9223372036854775807LL - 1"
    if not -(2**31) <= v < 2**32:
        return f"{v}LL"
    return str(v)


def _wrap_items(items: list[str], indent: int = 8) -> list[str]:
    """Comma-separated items in lines of at most MAX_COLS columns (tab = 8)."""
    lines, cur = [], ""
    for it in items:
        piece = it + ","
        if cur and indent + len(cur) + 1 + len(piece) > MAX_COLS:
            lines.append(cur)
            cur = piece
        else:
            cur = f"{cur} {piece}" if cur else piece
    if cur:
        lines.append(cur)
    return lines


def _align_after(prefix_cols: int) -> str:
    """Tabs then spaces that reach column ``prefix_cols`` (checkpatch's paren alignment)."""
    return "\t" * (prefix_cols // 8) + " " * (prefix_cols % 8)


def _call(head: str, args: list[str], indent_tabs: int = 0, tail: str = "") -> str:
    """``head(arg, arg, ...)tail`` wrapped at MAX_COLS with arguments aligned after '('."""
    col0 = 8 * indent_tabs + len(head) + 1
    lines, cur = [], "\t" * indent_tabs + head + "("
    cur_cols = col0
    for i, a in enumerate(args):
        piece = a + ("," if i < len(args) - 1 else ")" + tail)
        if cur_cols > col0 and cur_cols + 1 + len(piece) > MAX_COLS:
            lines.append(cur)
            cur, cur_cols = _align_after(col0) + piece, col0 + len(piece)
        else:
            sep = " " if cur_cols > col0 else ""
            cur += sep + piece
            cur_cols += len(sep) + len(piece)
    lines.append(cur)
    return "\n".join(lines)


def _fits(text: str) -> bool:
    return all(len(line.expandtabs(8)) <= MAX_COLS for line in text.split("\n"))


def _signature(ret: str, fname: str, args: list[str]) -> str:
    """A function head on one line when it fits, else with the return type on its own line."""
    one = _call(f"{ret} {fname}", args)
    return one if _fits(one) else f"{ret}\n" + _call(fname, args)


def _static_assert(lhs: str, rhs: str, msg: str) -> str:
    one = f'static_assert({lhs} == {rhs}, "{msg}");'
    if _fits(one):
        return one
    pad = _align_after(len("static_assert("))
    return f'static_assert({lhs} ==\n{pad}{rhs},\n{pad}"{msg}");'


def _macro_guard(name: str, idents: list[str]) -> str:
    """One static_assert that no field name expands as an object-like macro,
    over lines of at most MAX_COLS columns.

    ``__stringify(x)`` stringifies x after expansion: an object-like macro
    (``current``) changes its length, a function-like one (``min``, which is
    a fine field name, since it expands only before a parenthesis) does not.
    A sum of one term per field, each 0 or 1, cannot cancel out.
    """
    atoms = []  # each term in two halves, so that a 48-character name fits
    for k, i in enumerate(idents):
        atoms += [f"(sizeof(__stringify({i})) !=",
                  f'sizeof("{i}"))' + (" +" if k + 1 < len(idents) else " == 0,")]
    lines, cur = [], "static_assert("
    for a in atoms:
        if len(cur.expandtabs(8)) + 1 + len(a) > MAX_COLS and cur != "static_assert(":
            lines.append(cur)
            cur = "\t      " + a
        else:
            cur = f"{cur}{'' if cur.endswith('(') else ' '}{a}"
    lines.append(cur)
    lines.append(f'\t      "{name}.h: a field name is a macro here; rename it");')
    return "\n".join(lines)


def _io_fields(specs, total: int, default: str, doc) -> list[dict]:
    """One field per vector element: names from the IOSpecs' features, else ``<spec>_<i>``."""
    names = [f"{default}{i}" for i in range(total)]
    docs = [f"element {i}" for i in range(total)]
    for s in specs:
        feats = list(s.features) if len(s.features) == s.len else None
        for k in range(s.len):
            i = s.offset + k
            if not 0 <= i < total:
                continue
            if feats:
                names[i] = feats[k]
            else:
                names[i] = s.name if s.len == 1 else f"{s.name}_{k}"
            docs[i] = doc(s, k, names[i])
    # " * @ident: doc" within MAX_COLS
    return [{"ident": ident, "doc": _comment(d, MAX_COLS - len(" * @: ") - len(ident))}
            for ident, d in zip(c_identifiers(names), docs)]


def _in_doc(s, k, feat):
    return f"raw feature {feat!s} ({s.name}[{k}])"


def _out_doc(s, k, feat):
    if s.frac_bits is not None:
        return f"{s.name}[{k}] in fixed point: value / 2^{s.frac_bits}"
    return f"{s.name}[{k}], integer"


def generate(graph: Graph, check: bool = True) -> dict[str, str]:
    """Render ``graph`` to C. Returns {filename: text}.

    With ``check`` (the default) the graph first passes
    :func:`ml_lib.validate.validate`, so no C is produced for a graph the
    engine would reject.
    """
    g = planned(graph)
    if check:
        validate(g)
    name = g.name
    arrays, ops = [], []
    for i, op in enumerate(g.ops):
        fields = [(p, _c_int(op.params[p])) for p in op.spec.params]
        for spec, arr in zip(op.spec.arrays, op_arrays(op, g)):
            # <name>_ml_*: file-scope names a kernel global is unlikely to have (<name>_ops
            # would clash with pv_ops for a model named pv)
            ident = f"{name}_ml_op{i}_{spec.name}"
            # FC weights: storage order of docs/blob-format.md
            field = spec.name + (", row blocks" if (op.kind, spec.name) == ("fc", "w") else "")
            # "/* op I (KIND, SOURCE): FIELD */" within MAX_COLS
            room = MAX_COLS - len(f"/* op {i} ({op.kind}, ): {field} */")
            arrays.append({
                "op": i, "kind": op.kind,
                "source": _comment(op.source, room) if op.source else "",
                "field": field,
                "ctype": _CTYPE[spec.dtype], "ident": ident, "len": int(arr.size),
                "lines": _wrap_items([_c_int(v) for v in arr.tolist()]),
            })
            fields.append((spec.name, ident))
        ins = list(op.inputs) + [NO_TENSOR] * (2 - len(op.inputs))
        # "\t[I] = {\t/* KIND, SOURCE */" within MAX_COLS (the second tab ends at column 24
        # for any I < 1024)
        room = MAX_COLS - 24 - len(f"/* {op.kind},  */")
        ops.append({
            "kind": op.kind, "source": _comment(op.source, room) if op.source else "",
            "code": _OPCODE_ENUM[op.kind], "member": C_UNION_MEMBER[op.kind],
            "in0": "ML_LIB_NO_TENSOR" if ins[0] == NO_TENSOR else ins[0],
            "in1": "ML_LIB_NO_TENSOR" if ins[1] == NO_TENSOR else ins[1],
            "out": "ML_LIB_NO_TENSOR" if op.output is None else op.output,
            "fields": fields,
        })
    tensors = [{"offset": t.offset, "len": t.len, "zero_point": _c_int(t.zero_point),
                "dtype": _DTYPE_ENUM[t.dtype]} for t in g.tensors]
    upper = name.upper()
    module = f"{name}_ml"
    ctx = {
        "name": name, "NAME": upper, "module": module,
        "n_in": g.n_in, "n_out": g.n_out, "arena_bytes": g.arena_bytes,
        "arrays": arrays, "tensors": tensors, "ops": ops,
        "inputs": _io_fields(g.inputs, g.n_in, "in", _in_doc),
        "outputs": _io_fields(g.outputs, g.n_out, "out", _out_doc),
    }
    idents = dict.fromkeys(f["ident"] for f in ctx["inputs"] + ctx["outputs"])
    ctx["macro_guard"] = _macro_guard(name, list(idents))
    # signatures wrapped by column so long model names stay within MAX_COLS
    n_in_c, n_out_c = f"{upper}_N_IN", f"{upper}_N_OUT"
    ctx["assert_in"] = _static_assert(f"sizeof(struct {name}_input)", f"{n_in_c} * sizeof(s64)",
                                      f"{name}_input must be {n_in_c} s64 values")
    ctx["assert_out"] = _static_assert(f"sizeof(struct {name}_output)", f"{n_out_c} * sizeof(s32)",
                                       f"{name}_output must be {n_out_c} s32 values")
    ctx["run_sig"] = _signature("static inline int", f"{name}_run", [
        "void *arena", f"const struct {name}_input *in", f"struct {name}_output *out"])
    ctx["run_call"] = _call("return ml_lib_run", [
        f"&{name}_graph", "arena", "(const s64 *)in", n_in_c, "(s32 *)out", n_out_c],
        indent_tabs=1, tail=";")
    ctx["infer_sig"] = _signature("static inline int", f"{name}_infer", [
        f"const struct {name}_input *in", f"struct {name}_output *out"])
    ctx["infer_call"] = _call("return ml_lib_infer", [
        f"&{name}_model", "(const s64 *)in", n_in_c, "(s32 *)out", n_out_c],
        indent_tabs=1, tail=";")
    files = {
        f"{name}.c": _env.get_template("model.c.j2").render(ctx),
        f"{name}.h": _env.get_template("model.h.j2").render(ctx),
        f"{name}_mod.c": _env.get_template("model_mod.c.j2").render(ctx),
        "Kbuild": _env.get_template("Kbuild.j2").render(ctx),
    }
    return files
