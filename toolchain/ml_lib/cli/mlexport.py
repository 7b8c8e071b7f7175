# SPDX-License-Identifier: GPL-2.0
"""mlexport: a trained PyTorch or ONNX model -> integer C tables, blob and manifest."""
from __future__ import annotations

import argparse
import hashlib
import re
import sys
from pathlib import Path

import numpy as np

from ml_lib.errors import ArgumentParser, UserError, run_cli

DEFAULT_MAX_KERNEL_BYTES = 262144
S32_MAX = 2**31 - 1

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
    p = ArgumentParser(
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
    if args.features is not None:
        feats = _feature_names([f.strip() for f in args.features.split(",")],
                               f"--features {args.features!r}")
    elif header is not None:
        feats = _feature_names(header, f"the header of {args.calib} (override it with "
                                       "--features)")
    else:
        feats = None
    sample = x[:2] if x.shape[0] >= 2 else np.repeat(x, 2, axis=0)
    # the manifest names the file that was exported: hashed around its loading
    src_sha256 = manifest.sha256_file(args.model)
    fg, fmt = frontend.load(args.model, sample)
    if manifest.sha256_file(args.model) != src_sha256:
        raise UserError(f"{args.model} changed while it was being loaded; export it again "
                        "once it is completely written")
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
    files: dict[str, bytes] = {}  # everything is built before anything is written
    rep: dict = {}
    if q is not None:
        raw = to_raw(x, q.raw_scale)
        rep["accuracy"] = report.accuracy(fg, q, x, raw)
        sizes = report.sizes(q.graph)
        graph = q.graph
    else:
        rep["accuracy_note"] = f"no integer model ({qerr})"
        graph = _float_only_graph(fg, x, name, feats, args.frac_bits, args.argmax)
        sizes = {"parameters": int(sum(np.asarray(v).size for n in fg.nodes
                                       for k, v in n.attrs.items() if k in ("w", "b"))),
                 "table_bytes": 0, "scratch_bytes": 0, "macs": 0, "work_units": 0,
                 "stack_bytes_estimate": 0,
                 "n_ops": 0, "n_tensors": 0}
    classes = fg.meta.get("classes")
    if target == "kernel":
        from ml_lib import codegen
        from ml_lib.blob import write_blob
        for fn, text in sorted(codegen.generate(graph).items()):
            files[fn] = text.encode()
        files[f"{name}.mlb"] = write_blob(graph)
    else:
        from ml_lib.frontend.to_onnx import to_onnx
        model = to_onnx(fg, name, argmax=args.argmax)
        dims = model.graph.output[0].type.tensor_type.shape.dim
        if dims[1].dim_value != graph.n_out:  # mlproxyd would refuse the folder
            raise AssertionError(f"ONNX output has {dims[1].dim_value} columns, the manifest "
                                 f"{graph.n_out}")
        files[f"{name}.onnx"] = model.SerializeToString()
        rep["proxy_input_rounding"] = _rounding_error(fg, x, graph)
    index_max = 0
    if target == "user":
        # the proxy answers an index as index * 2^F too: F must leave room for it
        from ml_lib.frontend.to_onnx import is_index
        index_max = max((_max_index(fg, v) for v in fg.outputs
                         if args.argmax or is_index(fg, v)), default=0)
    man = manifest.build(graph, target, args.model, fmt, args.bits, rep, sizes, classes,
                         index_max=index_max, source_sha256=src_sha256)
    if target == "user":
        man["onnx"] = f"{name}.onnx"
        # mlproxyd refuses an ONNX file that is not this one
        man["onnx_sha256"] = hashlib.sha256(files[f"{name}.onnx"]).hexdigest()
        files.update(_proxy_stub(man))
    else:
        # the kernel hashes the tables it runs to the same value (debugfs stats)
        man["blob_sha256"] = hashlib.sha256(files[f"{name}.mlb"]).hexdigest()
    # the files of this export, so that the next export into the folder (for the
    # other target) removes exactly those it does not write again
    man["files"] = sorted([*files, f"{name}.json"])
    files[f"{name}.json"] = manifest.dumps(man).encode()
    stale = _write_files(out, files, _previous_files(out, name))
    _say(args, report.format_text(man).rstrip())
    if target == "kernel":
        _say(args, f"model sha256 {man['blob_sha256']} (of {name}.mlb; the kernel shows it for "
                   f"the tables it runs in /sys/kernel/debug/ml_lib/models/{name}/stats)")
    _say(args, f"wrote {out}/: {', '.join(sorted(files))}"
         + (f" (removed {', '.join(stale)} of the previous export)" if stale else ""))
    return man


def _feature_names(names: list[str], where: str) -> list[str]:
    """Feature names as given: none empty, none twice (each is a C struct field)."""
    for i, f in enumerate(names):
        if not f:
            raise UserError(f"{where}: feature name {i + 1} of {len(names)} is empty")
    seen = set()
    for f in names:
        if f in seen:
            raise UserError(f"{where}: feature name {f!r} is given twice")
        seen.add(f)
    # each becomes a struct field: two that become one C name would leave
    # one of them under a name the caller cannot tell from the other's
    from ml_lib.codegen import c_identifier
    field: dict[str, str] = {}
    for f in names:
        c = c_identifier(f)
        if c in field:
            raise UserError(f"{where}: feature names {field[c]!r} and {f!r} both become the C "
                            f"field {c}; rename one")
        field[c] = f
    return names


def _previous_files(out: Path, name: str) -> list[str]:
    """Files the folder's earlier export of model ``name`` wrote, from its manifest.

    Only names the manifest lists (``files``; older manifests: ``blob`` and
    ``onnx``), plain names in the folder itself: nothing else is ever removed.
    """
    import json
    p = out / f"{name}.json"
    try:
        man = json.loads(p.read_text())
    except (OSError, ValueError):
        return []
    if not isinstance(man, dict) or man.get("name") != name \
            or man.get("format") not in ("ml_lib-kernel", "ml_lib-user"):
        return []
    listed = man.get("files")
    if not isinstance(listed, list):
        listed = [man.get("blob"), man.get("onnx")]
    return [f for f in listed if isinstance(f, str) and f and f == Path(f).name
            and f not in (".", "..")]


def _write_files(out: Path, files: dict[str, bytes], previous: list[str]) -> list[str]:
    """Write ``files`` into ``out`` all or nothing; returns the stale files removed.

    Every file is first written into a temporary folder next to ``out`` (same
    file system), then moved into place (os.replace, manifest last) only when
    all were written; the temporary folder is removed whatever happens. So a
    failed write (disk full, file size limit, permissions) leaves ``out`` as it
    was, and the error names the file. After the move, the files the previous
    export listed in its manifest that this one does not write are removed
    (a kernel export replaced by a user one, or the reverse).
    """
    import os
    import shutil
    import tempfile

    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)  # an OSError names the path, as given
    real = Path(os.path.realpath(out))
    try:
        try:
            tmp = Path(tempfile.mkdtemp(prefix=f".{real.name}.mlexport-", dir=real.parent))
        except OSError:  # a parent we may not write: inside the folder, hidden
            tmp = Path(tempfile.mkdtemp(prefix=".mlexport-", dir=real))
    except OSError as e:
        if created:
            shutil.rmtree(real, ignore_errors=True)
        raise UserError(f"-o {out}: cannot write in it: {e.strerror or e}") from e
    order = sorted(files, key=lambda fn: (fn.endswith(".json"), fn))  # manifest last
    ok = False
    try:
        for fn in order:
            try:
                with open(tmp / fn, "wb") as f:
                    f.write(files[fn])
            except OSError as e:
                raise UserError(f"{out / fn}: cannot write: {e.strerror or e} (nothing written "
                                f"to {out})") from e
        for fn in order:  # what os.replace() cannot replace: refuse before moving any
            if (real / fn).is_dir() and not (real / fn).is_symlink():
                raise UserError(f"{out / fn}: is a directory, in the way of the exported file "
                                f"(nothing written to {out})")
        # the files this export replaces, hard-linked aside: a move that
        # fails half-way puts them back, so the folder is never half one
        # export and half the other
        old = tmp / ".previous"
        old.mkdir()
        saved = set()
        for fn in order:
            try:
                os.link(real / fn, old / fn, follow_symlinks=False)
                saved.add(fn)
            except FileNotFoundError:
                pass
            except OSError:  # no hard links here: no way back, say so below
                saved = None
                break
        done = []
        try:
            for fn in order:
                os.replace(tmp / fn, real / fn)
                done.append(fn)
        except OSError as e:
            why = e.strerror or e
            if saved is None:
                raise UserError(f"{out / fn}: cannot move into place: {why}"
                                + (f" ({len(done)} of {len(order)} files replaced)" if done
                                   and not created else "")) from e
            try:
                for d in done:
                    if d in saved:
                        os.replace(old / d, real / d)
                    else:
                        (real / d).unlink()
            except OSError as e2:
                raise UserError(f"{out / fn}: cannot move into place: {why}; putting the "
                                f"previous files back failed too: {e2.strerror or e2} "
                                f"({len(done)} of {len(order)} files replaced)") from e
            raise UserError(f"{out / fn}: cannot move into place: {why} (nothing changed "
                            f"in {out})") from e
        ok = True
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if created and not ok:  # the folder this export made: gone again
            shutil.rmtree(real, ignore_errors=True)
    stale = []
    for fn in sorted(set(previous) - set(files)):
        p = real / fn
        if p.is_file() and not p.is_symlink():
            try:
                p.unlink()
                stale.append(fn)
            except OSError:
                pass  # a leftover is harmless; the new manifest no longer lists it
    return stale


def _max_index(fg, v) -> int:
    """The largest value index output ``v`` can take: argmax runs over the
    last axis, of ``v`` itself when --argmax adds it, else of the argmax
    node's input (behind any reshapes)."""
    while v != fg.input_name and fg.node(v).kind == "reshape":
        v = fg.node(v).inputs[0]
    if v != fg.input_name and fg.node(v).kind == "argmax":
        v = fg.node(v).inputs[0]
    return int((fg.input_shape if v == fg.input_name else fg.node(v).shape)[-1]) - 1


def _float_only_graph(fg, x, name, feats, frac_bits, argmax=False):
    """IO description of a model with no integer form (user target only).

    Like the integer path: with ``argmax`` each output that is not already an
    index becomes one (kind index, no frac_bits); each fixed-point output gets
    ``frac_bits`` lowered until the largest magnitude it reaches on the
    calibration rows (as the proxy sees them: inputs rounded to raw_scale)
    fits s32. The proxy answers every output with the manifest's one
    frac_bits, the smallest of them.
    """
    from ml_lib.frontend.graph import run_float
    from ml_lib.frontend.to_onnx import is_index, output_shape
    from ml_lib.ir import Graph, IOSpec
    from ml_lib.quantize import raw_scales, to_raw
    rs = raw_scales(x)
    xq = (to_raw(x, rs) * rs).reshape(x.shape)
    reach = {v: 0.0 for v in fg.outputs}
    for s in range(0, x.shape[0], 256):
        vals = run_float(fg, xq[s:s + 256])
        for v in fg.outputs:
            reach[v] = max(reach[v], float(np.max(np.abs(vals[v]), initial=0.0)))
    outs, off = [], 0
    for v, nm in zip(fg.outputs, fg.output_names):
        shp = output_shape(fg, v, argmax)
        if is_index(fg, v) or argmax:
            outs.append(IOSpec(nm, off, shp, frac_bits=None,
                               meta={"kind": "index", "argmax_added": not is_index(fg, v)}))
        else:
            fb = frac_bits
            while fb > 0 and reach[v] * 2.0**fb > S32_MAX:
                fb -= 1
            outs.append(IOSpec(nm, off, shp, frac_bits=fb, meta={"kind": "fixed"}))
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


def _proxy_stub(man: dict) -> dict[str, bytes]:
    try:
        from ml_lib.proxy import stub
    except ImportError:
        print("note: the proxy stub template (ml_lib.proxy.stub) is not available yet; "
              "wrote the ONNX model and manifest only", file=sys.stderr)
        return {}
    return {fn: text.encode() for fn, text in stub.generate(man).items()}


def _main(argv) -> int:
    args = parser().parse_args(argv)
    export(args)
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    return run_cli("mlexport", _main, argv, "--debug" in argv)


if __name__ == "__main__":
    sys.exit(main())
