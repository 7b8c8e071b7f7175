# SPDX-License-Identifier: GPL-2.0
"""mlexport: a trained PyTorch or ONNX model -> integer C tables, blob and manifest."""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np

from ml_lib.errors import UserError, run_cli

DEFAULT_MAX_KERNEL_BYTES = 262144

EPILOG = """\
examples:
  mlexport model.pt --calib calib.npy --target kernel -o out/
  mlexport net.pt2 --calib rows.csv --name io_sched --bits 16 --percentile 99.9
  mlexport mlp.onnx --calib calib.npz --calib-key x --argmax --target auto
  mlexport big.pt --calib calib.pt --target user -o big_user/

Inputs: a module saved whole with torch.save(model) (loaded with
torch.load(weights_only=False): unpickling runs code from the file, so only
name files you trust; this is done only for the MODEL file given here), a
TorchScript archive (torch.jit.save), a torch.export archive (.pt2,
torch.export.save) or an ONNX file (torch.onnx.export, skl2onnx).
The kernel takes RAW INTEGER features: float feature = raw * raw_scale, with
raw_scale per feature in the manifest (1.0 for integer-valued calibration
columns, else a power of two).  Errors print one line and exit 2; --debug
shows the traceback.
"""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mlexport", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Quantize a trained float model and export it for ml_lib "
                    "(kernel C tables + blob, or a user-space proxy model).",
        epilog=EPILOG)
    p.add_argument("model", help="model file: torch.save / torch.jit.save / torch.export.save "
                                 "output or ONNX (e.g. model.pt, model.pt2, model.onnx)")
    p.add_argument("--calib", metavar="FILE",
                   help="calibration inputs, one row per sample: .npy, .npz, .pt or .csv; "
                        "shape (N, F) for MLPs, (N, C, L) for conv1d models "
                        "(e.g. --calib calib.npy)")
    p.add_argument("--calib-key", metavar="KEY",
                   help="array name inside a .npz or dict .pt calibration file (e.g. --calib-key x)")
    p.add_argument("--target", choices=("kernel", "user", "auto"), default="kernel",
                   help="kernel: C tables + blob; user: float ONNX for mlproxyd + proxy stub; "
                        "auto: kernel if tables + scratch <= --max-kernel-bytes, else user "
                        "(default kernel; e.g. --target auto)")
    p.add_argument("-o", "--output", metavar="DIR",
                   help="output folder, created if needed (default ./<name>; e.g. -o out/)")
    p.add_argument("--name", help="C identifier of the model: at most 31 characters, lower case, "
                                  "not starting with ml_lib nor ending in _ml/_mod; it prefixes "
                                  "every global of the export (default from the file name; "
                                  "e.g. --name io_sched)")
    p.add_argument("--bits", type=int, choices=(8, 16), default=8,
                   help="activation bits: 8 (asymmetric, default) or 16 (symmetric); weights are "
                        "always int8 per channel (e.g. --bits 16)")
    p.add_argument("--percentile", type=float, metavar="P",
                   help="clip activation ranges to the P-th / (100-P)-th percentile of the "
                        "calibration values instead of min/max (e.g. --percentile 99.9)")
    p.add_argument("--argmax", action="store_true",
                   help="output the index of the largest output (classifiers) instead of "
                        "fixed-point values (e.g. --argmax)")
    p.add_argument("--frac-bits", type=int, default=16, metavar="F",
                   help="fractional bits of fixed-point outputs, value = s32 / 2^F; lowered "
                        "automatically if the output range needs it (default 16; e.g. "
                        "--frac-bits 12)")
    p.add_argument("--max-kernel-bytes", type=int, default=DEFAULT_MAX_KERNEL_BYTES, metavar="N",
                   help="--target auto threshold on tables + scratch bytes (default 262144; "
                        "e.g. --max-kernel-bytes 65536)")
    p.add_argument("--features", metavar="NAMES",
                   help="comma-separated input feature names for the C struct and manifest "
                        "(default: the CSV header, else x0, x1, ...; e.g. --features "
                        "qlen,lat_us,size)")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no progress bar and no report (e.g. -q)")
    p.add_argument("--debug", action="store_true",
                   help="show the traceback of an error (e.g. --debug)")
    return p


def c_name(stem: str) -> str:
    # lower case: kernel style (checkpatch flags CamelCase identifiers)
    s = re.sub(r"[^0-9a-z_]+", "_", stem.lower()).strip("_") or "model"
    if s[0].isdigit():
        s = "m_" + s
    return s[:31]


def _say(args, msg: str) -> None:
    if not args.quiet:
        print(msg)


def export(args) -> dict:
    from ml_lib import frontend, manifest, report
    from ml_lib.quantize import calib as calib_io
    from ml_lib.quantize import quantize, to_raw

    if args.percentile is not None and not 50.0 < args.percentile <= 100.0:
        raise UserError(f"--percentile must be in (50, 100], got {args.percentile}")
    if args.max_kernel_bytes < 1:
        raise UserError(f"--max-kernel-bytes must be positive, got {args.max_kernel_bytes}")
    if not 0 <= args.frac_bits <= 30:
        raise UserError(f"--frac-bits must be in 0..30, got {args.frac_bits}")
    frontend.detect_format(args.model)  # "not a model" before asking for calibration
    if not args.calib:
        raise UserError("--calib FILE is required: the integer model's scales and zero points "
                        "come from the value ranges the float model produces on representative "
                        "inputs (give a few hundred rows as .npy/.npz/.pt/.csv)")
    x, header = calib_io.load(args.calib, args.calib_key)
    name = args.name if args.name is not None else c_name(Path(args.model).stem)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,30}", name):
        raise UserError(f"--name {name!r} is not a C identifier of at most 31 characters")
    if name.lower().startswith("ml_lib"):
        # <name>_run, <name>_infer... would clash with the library's own ml_lib_* symbols
        raise UserError(f"model name {name!r}: names starting with ml_lib are reserved for the "
                        "library's symbols; choose another with --name (e.g. --name my_model)")
    if name != name.lower():
        raise UserError(f"--name {name!r}: use lower case (kernel style; the name becomes C "
                        f"identifiers such as {name}_infer), e.g. --name {name.lower()}")
    if name.endswith(("_ml", "_mod")):
        # model X builds X_ml.ko from X.c and X_mod.c: X_ml or X_mod as a model's name
        # would reuse those file names when both are built in one directory
        raise UserError(f"model name {name!r}: names ending in _ml or _mod are reserved for "
                        "the generated module files; choose another with --name")
    feats = [f.strip() for f in args.features.split(",")] if args.features else header
    sample = x[:2] if x.shape[0] >= 2 else np.repeat(x, 2, axis=0)
    fg, fmt = frontend.load(args.model, sample)
    n_in = int(np.prod(fg.input_shape))
    if feats is not None and len(feats) != n_in:
        raise UserError(f"{len(feats)} feature names given for {n_in} input features")

    q, qerr = None, None
    try:
        q = quantize(fg, x, bits=args.bits, percentile=args.percentile, frac_bits=args.frac_bits,
                     argmax=args.argmax, name=name, feature_names=feats,
                     progress=not args.quiet)
        from ml_lib.validate import GraphError, validate
        try:
            validate(q.graph)
        except GraphError as e:
            kind = "int32 accumulator overflow" if e.errno_name == "EOVERFLOW" else \
                "the integer model is not valid"
            raise UserError(f"{kind}: {e.message}") from e
    except UserError as e:
        if args.target == "kernel":
            raise
        q, qerr = None, e

    target = args.target
    if target == "auto":
        if q is None:
            target = "user"
            print(f"target auto: user (no integer model: {qerr})")
        else:
            need = q.graph.table_bytes() + q.graph.arena_bytes
            target = "kernel" if need <= args.max_kernel_bytes else "user"
            rel = "<=" if target == "kernel" else ">"
            print(f"target auto: {target} (tables {q.graph.table_bytes()} B + scratch "
                  f"{q.graph.arena_bytes} B = {need} B {rel} --max-kernel-bytes "
                  f"{args.max_kernel_bytes})")

    out = Path(args.output) if args.output else Path(name)
    if out.exists() and not out.is_dir():
        raise UserError(f"-o {out}: exists and is not a directory")
    others = sorted(p.stem for p in out.glob("*.json") if p.stem != name) if out.is_dir() else []
    if others:
        # mixing two exports in one folder would leave mlrun with two manifests
        raise UserError(f"-o {out}: already holds the export of model {others[0]!r}; use an "
                        "empty or new directory")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    rep: dict = {}
    if q is not None:
        raw = to_raw(x, q.raw_scale)
        rep["accuracy"] = report.accuracy(fg, q, x, raw)
        sizes = report.sizes(q.graph)
        graph = q.graph
    else:
        rep["accuracy_note"] = f"no integer model ({qerr})"
        graph = _float_only_graph(fg, x, name, feats, args.frac_bits)
        sizes = {"parameters": int(sum(np.asarray(v).size for n in fg.nodes
                                       for k, v in n.attrs.items() if k in ("w", "b"))),
                 "table_bytes": 0, "scratch_bytes": 0, "macs": 0, "work_units": 0,
                 "stack_bytes_estimate": 0,
                 "n_ops": 0, "n_tensors": 0}
    classes = fg.meta.get("classes")
    if target == "kernel":
        from ml_lib import codegen
        from ml_lib.blob import write_blob
        files = codegen.generate(graph)
        for fn, text in sorted(files.items()):
            (out / fn).write_text(text)
            written.append(fn)
        (out / f"{name}.mlb").write_bytes(write_blob(graph))
        written.append(f"{name}.mlb")
    else:
        from ml_lib.frontend.to_onnx import to_onnx
        (out / f"{name}.onnx").write_bytes(to_onnx(fg, name).SerializeToString())
        written.append(f"{name}.onnx")
        rep["proxy_input_rounding"] = _rounding_error(fg, x, graph)
    man = manifest.build(graph, target, args.model, fmt, args.bits, rep, sizes, classes)
    if target == "user":
        man["onnx"] = f"{name}.onnx"
        written += _proxy_stub(out, man, args)
    manifest.write(out, man)
    written.append(f"{name}.json")
    _say(args, report.format_text(man).rstrip())
    _say(args, f"wrote {out}/: {', '.join(sorted(written))}")
    return man


def _float_only_graph(fg, x, name, feats, frac_bits):
    """IO description of a model with no integer form (user target only)."""
    from ml_lib.frontend.graph import run_float
    from ml_lib.ir import Graph, IOSpec
    from ml_lib.quantize import raw_scales
    rs = raw_scales(x)
    vals = run_float(fg, x[:1])
    outs, off = [], 0
    for v, nm in zip(fg.outputs, fg.output_names):
        shp = tuple(vals[v].shape[1:]) or (1,)
        outs.append(IOSpec(nm, off, shp, frac_bits=frac_bits, meta={"kind": "fixed"}))
        off += int(np.prod(shp))
    n_in = int(np.prod(fg.input_shape))
    ins = IOSpec("input", 0, tuple(fg.input_shape),
                 features=list(feats) if feats else [f"x{i}" for i in range(n_in)],
                 meta={"raw_scale": [float(s) for s in rs]})
    return Graph(name, [], [], [ins], outs)


def _rounding_error(fg, x, graph) -> dict:
    """Error the proxy adds: inputs rounded to raw_scale, outputs to 2^-F."""
    from ml_lib.frontend.graph import run_float
    from ml_lib.quantize import to_raw
    rs = np.asarray(graph.inputs[0].meta["raw_scale"])
    xr = (to_raw(x, rs) * rs).reshape(x.shape)
    a, b = run_float(fg, x), run_float(fg, xr)
    errs = {}
    for v, nm in zip(fg.outputs, fg.output_names):
        d = np.abs(a[v] - b[v])
        errs[nm] = {"max_abs": float(d.max()), "mean_abs": float(d.mean())}
    return errs


def _proxy_stub(out: Path, man: dict, args) -> list[str]:
    try:
        from ml_lib.proxy import stub
    except ImportError:
        print("note: the proxy stub template (ml_lib.proxy.stub) is not available yet; "
              "wrote the ONNX model and manifest only", file=sys.stderr)
        return []
    files = stub.generate(man)
    for fn, text in sorted(files.items()):
        (out / fn).write_text(text)
    return sorted(files)


def _main(argv) -> int:
    args = parser().parse_args(argv)
    export(args)
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    return run_cli("mlexport", _main, argv, "--debug" in argv)


if __name__ == "__main__":
    sys.exit(main())
