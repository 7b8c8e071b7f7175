# SPDX-License-Identifier: GPL-2.0
"""PyTorch models -> FloatGraph, through torch.export.

Pickled modules, TorchScript archives (via TS2EPConverter) and torch.export
archives all become an ExportedProgram; its ATen graph is lowered op by op
to the canonical float ops.  Ops whose inputs are all constants (weight
transposes, mean/std arithmetic) are evaluated here with torch itself.
"""
from __future__ import annotations

import contextlib
import inspect
import io
import logging
import operator
import zipfile

import numpy as np
import torch
from torch.export import ExportedProgram

from ml_lib.errors import UserError, first_line
from ml_lib.frontend.graph import FloatGraph, FNode, finish, unsupported

aten = torch.ops.aten

_ALIAS = {aten.dropout.default, aten.clone.default, aten.alias.default, aten.contiguous.default,
          aten.detach.default, aten.feature_dropout.default, aten.alpha_dropout.default,
          aten.lift_fresh_copy.default, aten.native_dropout.default}
_RESHAPE = {aten.view.default, aten.reshape.default, aten.flatten.using_ints,
            aten._unsafe_view.default, aten.squeeze.dim, aten.unsqueeze.default,
            aten.squeeze.default, aten.squeeze.dims}


def kind_of(path: str) -> str:
    """'export', 'torchscript', 'pickle' for a zip archive, else ''."""
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError):
        return ""
    if any(n.endswith("/archive_format") or n == "archive_format" for n in names):
        return "export"
    if any("/code/" in n for n in names) or any(n.endswith("constants.pkl") for n in names):
        return "torchscript"
    if any(n.endswith("data.pkl") for n in names):
        return "pickle"
    return ""


def load_program(path: str, fmt: str, example: torch.Tensor) -> ExportedProgram:
    """Load a torch file and capture it as an ExportedProgram."""
    if fmt == "export":
        try:
            return torch.export.load(path)
        except Exception as e:
            raise UserError(f"{path}: not a readable torch.export archive ({e})") from e
    if fmt == "torchscript":
        try:
            mod = torch.jit.load(path, map_location="cpu")
        except Exception as e:  # a damaged or truncated archive: torch says which part
            raise UserError(f"{path}: not a TorchScript model torch can load ({_reason(e)})") from e
        _check_one_input(mod)
        mod.eval()
        try:  # torch.export of the loaded module where torch supports it ...
            with _quiet_torch_logs():
                return torch.export.export(mod, (example,), strict=False)
        except Exception:  # noqa: BLE001 - any failure: fall back to the graph
            pass
        # ... else through its TorchScript graph
        return _from_torchscript(mod, example, path)
    # The user named this file: unpickling it may run its code (see --help).
    try:
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except (AttributeError, ModuleNotFoundError) as e:
        if "__main__" in str(e):
            raise UserError(f"{path}: the pickled model's class was defined in the training "
                            f"script itself ({e}), so nothing else can import it; move the class "
                            "into a module, or save the model with torch.export.save / "
                            "torch.jit.save") from e
        raise UserError(f"{path}: the pickled model's class cannot be found ({e}); pickle stores "
                        "only its name, so put the module that defines it on PYTHONPATH, or "
                        "save the model with torch.export.save / torch.jit.save") from e
    except Exception as e:
        raise UserError(f"{path}: not a model torch can load ({_reason(e)})") from e
    if isinstance(obj, dict):
        inner = [k for k, v in obj.items() if isinstance(v, torch.nn.Module)]
        if inner:  # a training checkpoint: {"model": m, "epoch": ...}
            raise UserError(f"{path} holds a dict (a checkpoint?) with the model under key "
                            f"{inner[0]!r}: save that module itself (torch.save(ckpt"
                            f"[{inner[0]!r}])) or use torch.export.save / torch.jit.save")
        if obj and not all(isinstance(v, torch.Tensor) for v in obj.values()):
            raise UserError(f"{path} holds a dict of {len(obj)} entries (a checkpoint?), not a "
                            "model: save the module itself (torch.save(model)) or use "
                            "torch.export.save / torch.jit.save")
        raise UserError(f"{path} holds a state_dict, not a model: save the module itself "
                        "(torch.save(model)) or use torch.export.save / torch.jit.save")
    if isinstance(obj, torch.jit.ScriptModule):
        _check_one_input(obj)
        obj.eval()
        return _from_torchscript(obj, example, path)
    if not isinstance(obj, torch.nn.Module):
        raise UserError(f"{path} holds a {type(obj).__name__}, not a torch.nn.Module")
    obj.eval()
    return export_module(obj, example)


def _reason(e: Exception) -> str:
    """'Type: first line' of an exception from torch's loaders, without the
    paragraph of advice torch appends to a damaged archive's message."""
    first = str(e).strip().splitlines()[0] if str(e).strip() else ""
    cut = first.find(" This is an internal miniz error")
    if cut > 0:
        first = first[:cut].rstrip(" .") + "; the archive is damaged or incomplete"
    return f"{type(e).__name__}: {first}" if first else type(e).__name__


def _check_one_input(mod) -> None:
    """Refuse a module whose forward does not take exactly one tensor.

    Decided from forward's signature (the TorchScript schema for a scripted
    or traced module) before anything runs, so that a TypeError raised
    inside forward stays what it is: a bug, reported with its traceback.
    """
    if isinstance(mod, torch.jit.ScriptModule):
        try:
            args = list(mod.forward.schema.arguments)[1:]  # [0] is self
        except (AttributeError, RuntimeError):
            return
        required = [a.name for a in args if not a.has_default_value() and not a.kwarg_only]
        kw_only = [a.name for a in args if not a.has_default_value() and a.kwarg_only]
        has_var = False
        n_pos = len([a for a in args if not a.kwarg_only])
    else:
        try:
            params = list(inspect.signature(mod.forward).parameters.values())
        except (TypeError, ValueError):  # no introspectable signature: let torch decide
            return
        pos_kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        required = [p.name for p in params if p.kind in pos_kinds and p.default is p.empty]
        kw_only = [p.name for p in params
                   if p.kind == inspect.Parameter.KEYWORD_ONLY and p.default is p.empty]
        has_var = any(p.kind == inspect.Parameter.VAR_POSITIONAL for p in params)
        n_pos = len([p for p in params if p.kind in pos_kinds])
    if len(required) > 1:
        raise UserError(f"the model takes {len(required)} tensor inputs "
                        f"({', '.join(required)}); ml_lib models take exactly one")
    if kw_only:
        raise UserError("the model's forward requires keyword argument(s) "
                        f"{', '.join(kw_only)}; ml_lib models take exactly one tensor input")
    if n_pos == 0 and not has_var:
        raise UserError("the model's forward takes no input; ml_lib models take exactly one "
                        "tensor input")


def _same_padding(k: int, dil: int, stride: int, where: str) -> int:
    """The symmetric padding of a 'same' convolution, or an unsupported-op error."""
    total = dil * (k - 1)
    if stride != 1:
        raise unsupported(f"conv1d padding='same' with stride {stride} (use an integer "
                          "padding)", where)
    if total % 2:
        raise unsupported(f"conv1d padding='same' with dilation*(kernel-1) = {total}, odd, "
                          "which pads one more on the right than the left (use an odd kernel "
                          "size or an integer padding)", where)
    return total // 2


def _from_torchscript(mod, example: torch.Tensor, path: str) -> ExportedProgram:
    """A TorchScript module as an ExportedProgram with the example's static shapes.

    TS2EPConverter marks every input dimension dynamic (a conv1d model's
    length too, which the importer must refuse), so its program is exported
    once more with torch.export on the example, like a pickled module: the
    shapes are the calibration data's and reshapes take theirs from the graph.
    """
    from torch._export.converter import TS2EPConverter
    try:
        with _quiet_torch_logs():
            ep = TS2EPConverter(mod, (example,)).convert()
    except Exception as e:
        raise UserError(f"cannot convert TorchScript model {path} to torch.export: "
                        f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from e
    try:
        with _quiet_torch_logs():
            return torch.export.export(ep.module(), (example,), strict=False)
    except Exception:  # noqa: BLE001 - keep the converted program; the importer
        return ep      # says what it cannot handle (e.g. which dimension is dynamic)


@contextlib.contextmanager
def _quiet_torch_logs():
    """torch logs whole graphs at ERROR level when export fails; the CLI says one line.

    torch's own logging setup gives its loggers explicit levels and handlers,
    so they are silenced all at once (logging.disable) for the duration.
    """
    previous = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        # export also prints the failing graph to stderr on data-dependent errors
        with contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        logging.disable(previous)


def _is_shape_error(msg: str) -> bool:
    low = msg.lower()
    return any(w in low for w in ("shape", "size mismatch", "mat1 and mat2 shapes", "dimension",
                                  "must match the size", "expected input"))


def export_module(mod: torch.nn.Module, example: torch.Tensor) -> ExportedProgram:
    _check_one_input(mod)
    if any(t.is_floating_point() and t.dtype != torch.float32
           for t in (*mod.parameters(), *mod.buffers())):
        # a float64 or float16 model: quantized alike, traced in float32 like the calibration
        mod = mod.float()
    try:
        with torch.no_grad():
            mod(example)  # eager first: a shape mismatch reads better here than from export
    except Exception as e:  # noqa: BLE001 - the user's forward() may raise anything
        first = first_line(e)
        if _is_shape_error(first):
            raise UserError(f"calibration data of shape {tuple(example.shape[1:])} per sample "
                            f"does not fit the model: {first}") from e
        raise UserError(f"the model's forward() failed on the calibration data: "
                        f"{type(e).__name__}: {first}") from e
    try:
        with _quiet_torch_logs():
            return torch.export.export(mod, (example,), strict=False)
    except Exception as e:  # torch raises many types here; classify by message
        msg = str(e)
        first = msg.strip().splitlines()[0] if msg.strip() else type(e).__name__
        low = msg.lower()
        if "data-dependent" in low or "data dependent" in low or "guardondatadependent" in low \
                or "could not guard on data-dependent" in low or "control flow" in low:
            raise UserError("the model has data-dependent control flow (a Python branch or loop "
                            f"on tensor values), which torch.export cannot capture: {first}") from e
        if "shape" in low or "size mismatch" in low or "mat1 and mat2" in low:
            raise UserError(f"calibration data of shape {tuple(example.shape[1:])} per sample "
                            f"does not fit the model: {first}") from e
        raise UserError(f"torch.export could not capture the model: {first}") from e


def _source(node) -> str:
    stack = node.meta.get("nn_module_stack")
    if stack:
        path, cls = list(stack.values())[-1]
        cname = cls.__name__ if isinstance(cls, type) else str(cls).rsplit(".", 1)[-1]
        path = path.replace("L['self'].", "").replace("L__self___", "") or "<top>"
        return f"{path} ({cname}, {node.name})"
    return f"<top> ({node.name})"


def _shape(node) -> tuple:
    val = node.meta.get("val")
    if val is None or not hasattr(val, "shape"):
        return ()
    from torch.fx.experimental.symbolic_shapes import is_concrete_int
    dims = []
    for i, d in enumerate(val.shape):
        if not isinstance(d, int) and is_concrete_int(d):
            d = int(d)
        if not isinstance(d, int):
            if i == 0:
                dims.append(-1)
                continue
            raise UserError(f"dynamic shape at {_source(node)}: dimension {i} is {d}; only the "
                            "batch dimension may vary")
        dims.append(d)
    return tuple(dims)


class _Batch:
    """The batch size of a dynamic-batch program (only reshape may use it)."""


_BATCH = _Batch()


def _flat(args):
    for a in args:
        if isinstance(a, (list, tuple)):
            yield from _flat(a)
        else:
            yield a


def _output_names(ep: ExportedProgram, n: int) -> list[str]:
    """The keys when the model returns a flat dict of tensors ({"logits": y}),
    else output, or output0, output1, ... for a tuple."""
    spec = getattr(ep.call_spec, "out_spec", None)
    keys = list(spec.context) if spec is not None and spec.type is dict else []
    if len(keys) == n and all(isinstance(k, str) and k for k in keys):
        return keys
    return ["output"] if n == 1 else [f"output{i}" for i in range(n)]


def program_to_graph(ep: ExportedProgram, sample: np.ndarray) -> FloatGraph:
    consts: dict[str, torch.Tensor] = {}
    user_inputs = []
    sig = ep.graph_signature
    for spec in sig.input_specs:
        name = spec.arg.name
        kind = spec.kind.name
        if kind == "USER_INPUT":
            user_inputs.append(name)
        elif kind in ("PARAMETER", "BUFFER"):
            t = ep.state_dict.get(spec.target)
            consts[name] = t if t is not None else ep.constants[spec.target]
        elif kind in ("CONSTANT_TENSOR", "CUSTOM_OBJ"):
            consts[name] = ep.constants[spec.target]
        else:
            raise UserError(f"unsupported program input kind {kind} ({spec.target})")
    if len(user_inputs) != 1:
        raise UserError(f"the model takes {len(user_inputs)} tensor inputs; ml_lib models take "
                        "exactly one")
    gm = ep.graph_module
    g = FloatGraph(input_name=user_inputs[0], input_shape=tuple(sample.shape[1:]), nodes=[],
                   outputs=[], output_names=[])
    alias: dict[str, str] = {}
    bn_outputs: set[str] = set()
    scalars: dict[str, object] = {}

    def val(a):
        """A node argument as a value name (str) or constant (Tensor/number)."""
        if isinstance(a, torch.fx.Node):
            n = alias.get(a.name, a.name)
            if n in consts:
                return consts[n]
            if n in scalars:
                return scalars[n]
            return n
        if isinstance(a, (list, tuple)):
            return type(a)(val(x) for x in a)
        return a

    def is_const(v):
        return not isinstance(v, str) and not (isinstance(v, (list, tuple))
                                               and any(isinstance(x, str) for x in v))

    def add(node, kind, inputs, **attrs):
        g.nodes.append(FNode(node.name, kind, inputs, attrs, _source(node)))

    def npf(t):
        return np.asarray(torch.as_tensor(t).detach().to(torch.float64).numpy())

    for node in gm.graph.nodes:
        _shape(node)  # a dynamic dimension other than the batch is an error
        if node.op == "placeholder":
            continue
        if node.op == "get_attr":
            consts[node.name] = getattr(gm, node.target)
            continue
        if node.op == "output":
            outs = node.args[0]
            outs = list(outs) if isinstance(outs, (list, tuple)) else [outs]
            for o, name in zip(outs, _output_names(ep, len(outs))):
                v = val(o)
                if not isinstance(v, str):
                    raise UserError("a model output is a constant, not computed from the input")
                g.outputs.append(v)
                g.output_names.append(name)
            continue
        if node.op != "call_function":
            raise unsupported(f"{node.op} {node.target}", _source(node))
        if not node.users:
            continue  # dead code, e.g. TorchScript's input-rank checks
        t = node.target
        if t in (aten.dim.default, aten.size.int, aten.sym_size.int):
            shp = _shape(node.args[0])
            if t == aten.dim.default:
                scalars[node.name] = len(shp)
            else:
                d = shp[node.args[1]]
                # x.view(x.size(0), -1): fine, reshape takes its shape from the graph
                scalars[node.name] = _BATCH if d < 0 else d
            continue
        args = [val(a) for a in node.args]
        kwargs = {k: val(v) for k, v in node.kwargs.items()}
        tensor_args = [a for a in args if isinstance(a, str)]
        if t is operator.getitem:
            src, idx = args
            if isinstance(src, str) and idx == 0 and src in bn_outputs:
                alias[node.name] = src
                continue
            if not isinstance(src, str):
                consts[node.name] = src[idx]
                continue
            raise unsupported("getitem", _source(node))
        if t not in _RESHAPE and any(a is _BATCH for a in _flat(args)):
            raise UserError(f"the model computes with its batch size at {_source(node)}; "
                            "ml_lib models must not depend on it")
        if not tensor_args and all(is_const(a) for a in args):
            # constant subexpression: evaluate it now
            if "sym" in str(t) or t in (aten.sym_size.int,):
                raise UserError(f"dynamic shape at {_source(node)} ({t})")
            with torch.no_grad():
                r = t(*args, **kwargs)
            if isinstance(r, torch.Tensor):
                consts[node.name] = r
            else:
                scalars[node.name] = r
            continue
        name = node.name
        if t in _ALIAS or (t == aten._to_copy.default and kwargs.get("dtype") in (None, torch.float32,
                                                                                  torch.float64)):
            alias[name] = args[0]
            continue
        if t == aten.linear.default:
            x, w = args[0], args[1]
            b = args[2] if len(args) > 2 and args[2] is not None else None
            if not is_const(w) or (b is not None and not is_const(b)):
                raise unsupported("linear with non-constant weights", _source(node))
            w = npf(w)
            add(node, "linear", [x], w=w, b=npf(b) if b is not None else np.zeros(w.shape[0]))
        elif t in (aten.addmm.default,):
            b, x, wt = args[0], args[1], args[2]
            if not (is_const(b) and is_const(wt)):
                raise unsupported("addmm with non-constant weights", _source(node))
            w = npf(wt).T
            add(node, "linear", [x], w=w, b=np.broadcast_to(npf(b), (w.shape[0],)).copy())
        elif t in (aten.mm.default, aten.matmul.default):
            x, wt = args
            if not isinstance(x, str) or not is_const(wt) or npf(wt).ndim != 2:
                raise unsupported(f"{t} (only input @ constant 2-D weight)", _source(node))
            w = npf(wt).T
            add(node, "linear", [x], w=w, b=np.zeros(w.shape[0]))
        elif t in (aten.conv1d.default, aten.conv1d.padding, aten.convolution.default):
            if t in (aten.conv1d.default, aten.conv1d.padding):
                defaults = [None, [1], [0], [1], 1]  # bias, stride, padding, dilation, groups
                x, w, b, stride, pad, dil, groups = (list(args) + defaults[len(args) - 2:])[:7]
            else:
                x, w, b, stride, pad, dil, transposed, _, groups = args
                if transposed:
                    raise unsupported("conv_transpose", _source(node))
            w = npf(w)
            if w.ndim != 3:
                raise unsupported(f"conv with {w.ndim - 2}-D kernel (only Conv1d)", _source(node))
            if groups != 1:
                raise unsupported(f"grouped conv1d (groups={groups})", _source(node))
            one = lambda v: int(v[0] if isinstance(v, (list, tuple)) else v)  # noqa: E731
            if pad == "valid":
                pad = 0
            elif pad == "same":
                pad = _same_padding(w.shape[2], one(dil), one(stride), _source(node))
            elif isinstance(pad, str):
                raise unsupported(f"conv1d padding='{pad}' (use an integer padding)", _source(node))
            add(node, "conv1d", [x], w=w, b=npf(b) if b is not None else np.zeros(w.shape[0]),
                stride=one(stride), pad=one(pad), dil=one(dil))
        elif t in (aten.batch_norm.default, aten._native_batch_norm_legit_no_training.default,
                   aten.native_batch_norm.default):
            x, w, b, mean, var = args[:5]
            if t == aten.batch_norm.default:
                training, eps = args[5], args[7]
            elif t == aten.native_batch_norm.default:
                training, eps = args[5], args[7]
            else:
                training, eps = False, args[6]
            if training:
                raise UserError(f"BatchNorm at {_source(node)} is in training mode; call "
                                "model.eval() before saving")
            mean, var = npf(mean), npf(var)
            w = npf(w) if w is not None else np.ones_like(mean)
            b = npf(b) if b is not None else np.zeros_like(mean)
            s = w / np.sqrt(var + eps)
            shape = (-1,) + (1,) * (len(_shape(node)) - 2)
            add(node, "affine", [x], scale=s.reshape(shape), bias=(b - mean * s).reshape(shape))
            bn_outputs.add(name)
        elif t in (aten.relu.default, aten.relu_.default):
            add(node, "relu", [args[0]])
        elif t in (aten.relu6.default, aten.hardtanh.default, aten.hardtanh_.default,
                   aten.clamp.default, aten.clamp_min.default, aten.clamp_max.default):
            if t == aten.relu6.default:
                lo, hi = 0.0, 6.0
            elif t in (aten.hardtanh.default, aten.hardtanh_.default):
                lo = args[1] if len(args) > 1 else -1.0
                hi = args[2] if len(args) > 2 else 1.0
            elif t == aten.clamp_min.default:
                lo, hi = args[1], None
            elif t == aten.clamp_max.default:
                lo, hi = None, args[1]
            else:
                lo = args[1] if len(args) > 1 else kwargs.get("min")
                hi = args[2] if len(args) > 2 else kwargs.get("max")
            if lo == 0 and hi is None:
                add(node, "relu", [args[0]])
            else:
                add(node, "clamp", [args[0]], lo=float(lo) if lo is not None else -np.inf,
                    hi=float(hi) if hi is not None else np.inf)
        elif t in (aten.leaky_relu.default, aten.leaky_relu_.default):
            alpha = float(args[1]) if len(args) > 1 else 0.01
            add(node, "leaky_relu", [args[0]], alpha=alpha)
        elif t in (aten.sigmoid.default, aten.sigmoid_.default):
            add(node, "sigmoid", [args[0]])
        elif t in (aten.tanh.default, aten.tanh_.default):
            add(node, "tanh", [args[0]])
        elif t in (aten.softmax.int, aten._softmax.default):
            dim = args[1]
            nd = len(_shape(node))
            if dim not in (-1, nd - 1):
                raise unsupported(f"softmax over dim {dim} (only the last dim)", _source(node))
            add(node, "softmax", [args[0]])
        elif t in _RESHAPE:
            add(node, "reshape", [args[0]], shape=_shape(node)[1:])
        elif t in (aten.add.Tensor, aten.sub.Tensor, aten.mul.Tensor, aten.div.Tensor,
                   aten.add_.Tensor, aten.sub_.Tensor, aten.mul_.Tensor, aten.div_.Tensor,
                   aten.rsub.Scalar, aten.add.Scalar, aten.mul.Scalar, aten.div.Scalar,
                   aten.sub.Scalar):
            op = str(t).split(".")[-2].rstrip("_")
            a, c = args[0], args[1]
            alpha = kwargs.get("alpha", args[2] if len(args) > 2 else 1)
            if op == "rsub":
                # c - alpha * a
                add(node, "affine", [a], scale=-float(alpha) * np.ones(1), bias=npf(c))
                continue
            if isinstance(a, str) and isinstance(c, str):
                if op != "add" or alpha != 1:
                    raise unsupported(f"{op} of two computed tensors (only residual add)",
                                      _source(node))
                add(node, "add", [a, c])
                continue
            x, k = (a, c) if isinstance(a, str) else (c, a)
            k = npf(k)
            swapped = not isinstance(a, str)
            if op == "add":
                scale, bias = np.ones(1), k * float(alpha)
            elif op == "sub":
                scale, bias = (np.ones(1), -k * float(alpha)) if not swapped \
                    else (-float(alpha) * np.ones(1), k)
            elif op == "mul":
                scale, bias = k, np.zeros(1)
            else:
                if swapped:
                    raise unsupported("division of a constant by a tensor", _source(node))
                scale, bias = 1.0 / k, np.zeros(1)
            full = _shape(node)[1:]
            scale = np.broadcast_to(scale, (1,) + full).reshape(full)
            bias = np.broadcast_to(bias, (1,) + full).reshape(full)
            add(node, "affine", [x], scale=scale.copy(), bias=bias.copy())
        elif t == aten.cat.default:
            tensors = args[0]
            dim = args[1] if len(args) > 1 else 0
            nd = len(_shape(node))
            dim = dim + nd if dim < 0 else dim
            if dim == 0:
                raise unsupported("cat over the batch dimension", _source(node))
            if any(not isinstance(v, str) for v in tensors):
                raise unsupported("cat with a constant tensor", _source(node))
            cur = tensors[0]
            for i, nxt in enumerate(tensors[1:]):
                nm = name if i == len(tensors) - 2 else f"{name}_part{i}"
                g.nodes.append(FNode(nm, "cat", [cur, nxt], {"axis": dim - 1}, _source(node)))
                cur = nm
        elif t in (aten.max_pool1d.default, aten.avg_pool1d.default):
            x, k = args[0], args[1]
            stride = args[2] if len(args) > 2 and args[2] else k
            pad = args[3] if len(args) > 3 else [0]
            ceil = args[5] if t == aten.max_pool1d.default and len(args) > 5 else \
                (args[4] if len(args) > 4 else False)
            dil = args[4] if t == aten.max_pool1d.default and len(args) > 4 else [1]
            one = lambda v: int(v[0] if isinstance(v, (list, tuple)) else v)  # noqa: E731
            if one(pad) != 0 or ceil or one(dil) != 1:
                raise unsupported(f"{t} with padding, dilation or ceil_mode", _source(node))
            kind = "maxpool1d" if t == aten.max_pool1d.default else "avgpool1d"
            add(node, kind, [x], k=one(k), stride=one(stride))
        elif t == aten.argmax.default:
            dim = args[1] if len(args) > 1 else None
            nd = len(_shape(node)) + (0 if (len(args) > 2 and args[2]) else 1)  # input rank
            if dim not in (-1, nd - 1):
                raise unsupported(f"argmax over dim {dim} (only the last dim)", _source(node))
            add(node, "argmax", [args[0]])
        elif "cond" in str(t) or "while_loop" in str(t) or "map_impl" in str(t):
            raise UserError(f"the model has data-dependent control flow ({t}) at {_source(node)}")
        else:
            raise unsupported(str(t).replace("aten.", "").replace(".default", ""), _source(node))
        # alias targets may themselves be aliases
        for k2, v2 in list(alias.items()):
            alias[k2] = alias.get(v2, v2) if isinstance(v2, str) else v2
    return finish(g, sample)


def load(path: str, fmt: str, sample: np.ndarray) -> FloatGraph:
    example = torch.as_tensor(np.asarray(sample, dtype=np.float32))
    ep = load_program(path, fmt, example)
    return program_to_graph(ep, sample)
