# SPDX-License-Identifier: GPL-2.0
"""mlrun: run an exported model on float inputs with one of ml_lib's engines."""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import os
import re
import sys
import tempfile
from pathlib import Path

import numpy as np

from ml_lib.errors import ArgumentParser, UserError, run_cli

EPILOG = """\
examples:
  mlrun out/ x.npy --engine python -o y.npy
  mlrun out/ x.npy --engine c --raw -o y_raw.npy
  mlrun out/ x.npy --engine kernel -o y.npy      # boots Debian's kernel under QEMU
  mlrun user_out/ x.npy --engine proxy -o y.npy  # through /dev/ml_lib and mlproxyd

Float inputs become raw integer features with the manifest's raw_scale
(raw = floor(x / raw_scale + 0.5), ties up); outputs are float32 (s32 / 2^frac_bits, class
indices as int32) or, with --raw, the engine's s32 integers.  A model with
several outputs is written as .npz keyed by output name.
"""

ENGINES = ("python", "c", "kernel", "proxy")


def parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="mlrun", formatter_class=argparse.RawDescriptionHelpFormatter,
                                description="Run an mlexport output folder on float inputs.",
                                epilog=EPILOG)
    p.add_argument("model_dir", metavar="DIR", help="folder mlexport wrote (e.g. out/)")
    p.add_argument("input", metavar="INPUT.npy",
                   help="float inputs, one row per sample, shaped like the calibration data "
                        "(e.g. x.npy)")
    p.add_argument("--engine", choices=ENGINES, default="python",
                   help="python: the integer reference on the blob; c: the generated C built "
                        "in user space; kernel: inside a booted kernel; proxy: through "
                        "mlproxyd (default python; e.g. --engine c)")
    p.add_argument("--raw", action="store_true",
                   help="write the s32 outputs instead of dequantized float32 (e.g. --raw)")
    p.add_argument("-o", "--output", metavar="OUT.npy", required=True,
                   help="where to write the outputs, .npy (one output) or .npz (several; e.g. "
                        "-o y.npy)")
    p.add_argument("--debug", action="store_true",
                   help="show the traceback of an error (e.g. --debug)")
    return p


def load_inputs(path: str, man: dict) -> np.ndarray:
    try:
        x = np.load(path, allow_pickle=False)
    except FileNotFoundError as e:
        raise UserError(f"{path}: no such file") from e
    except IsADirectoryError as e:
        raise UserError(f"{path}: is a directory, not a .npy file") from e
    except (ValueError, OSError, EOFError) as e:
        raise UserError(f"{path}: not a .npy array ({e})") from e
    if not isinstance(x, np.ndarray):
        x.close()
        raise UserError(f"{path}: an .npz archive; mlrun takes one .npy array of inputs")
    if x.dtype.kind not in "iuf":
        raise UserError(f"{path}: inputs must be integer or float numbers, not {x.dtype}")
    shape = tuple(man["inputs"][0]["shape"])
    if x.shape == shape:
        x = x[None]
    if tuple(x.shape[1:]) != shape:
        raise UserError(f"{path}: inputs have shape {x.shape}; the model takes (rows, "
                        f"{', '.join(map(str, shape))})")
    if x.shape[0] == 0:
        raise UserError(f"{path}: no input rows")
    x = x.astype(np.float64)
    if not np.all(np.isfinite(x)):
        raise UserError(f"{path}: inputs contain NaN or Inf")
    return x


def _not_landed(engine: str, what: str) -> UserError:
    return UserError(f"engine '{engine}' is not available yet ({what} has not landed)")


@contextlib.contextmanager
def _engine_failure(engine: str, name: str):
    """An engine that fails (a compiler, a guest kernel, the daemon) becomes one
    line naming the cause; its full output goes to a log file."""
    try:
        yield
    except UserError:
        raise
    except RuntimeError as e:
        text = str(e).strip() or type(e).__name__
        log = Path(tempfile.gettempdir()) / f"mlrun-{name}-{engine}.log"
        log.write_text(text + "\n")
        lines = text.splitlines()
        cause = lines[0].rstrip(":")
        detail = next((ln.strip() for ln in lines[1:] if re.search(r"\berror:", ln)), None)
        if detail and detail not in cause:
            cause = f"{cause}: {detail}"
        raise UserError(f"engine {engine} failed: {cause} (full output in {log})") from e


def run_engine(engine: str, d: Path, man: dict, x: np.ndarray, raw: np.ndarray,
               g=None) -> np.ndarray:
    """s32 output rows [k, n_out] from the chosen engine; ``g`` is the
    export's checked graph (load_blob()), for a --target kernel export."""
    name = man["name"]
    if engine in ("python", "c") and man["format"] != "ml_lib-kernel":
        raise UserError(f"{d} is a --target user export (float ONNX); run it with --engine proxy")
    if engine == "python":
        from ml_lib import reference
        return reference.run(g, raw).astype(np.int64)
    if engine == "c":
        try:
            from ml_lib import cengine
        except ImportError as e:
            raise _not_landed(engine, "ml_lib.cengine") from e
        files = {}
        for fn in (f"{name}.c", f"{name}.h"):
            p = d / fn
            if not p.is_file():
                raise UserError(f"{d}: missing {fn}")
            files[fn] = p.read_text()
        with tempfile.TemporaryDirectory(prefix="mlrun-") as tmp, _engine_failure(engine, name):
            so = cengine.compile_generated(files, tmp, out_name=name)
            # the tables hold the blob's model: the same canonical bytes
            tables = hashlib.sha256(cengine.generated_blob(so, name)).hexdigest()
            blob = hashlib.sha256((d / man["blob"]).read_bytes()).hexdigest()
            if tables != blob:
                raise UserError(f"{d / (name + '.c')} holds a model with sha256 {tables}, "
                                f"{man['blob']} one with {blob} (files of two exports, or an "
                                "edited table; re-run mlexport)")
            return cengine.run_generated(so, name, raw).astype(np.int64)
    if engine == "kernel":
        try:
            from ml_lib import kernel
            run = kernel.run_exported
        except (ImportError, AttributeError) as e:
            raise _not_landed(engine, "ml_lib.kernel.run_exported") from e
        with _engine_failure(engine, name):
            y = run(str(d), raw)
        return np.asarray(y).astype(np.int64).reshape(raw.shape[0], -1)
    try:
        from ml_lib import proxy
        run = proxy.run_exported
    except (ImportError, AttributeError) as e:
        raise _not_landed(engine, "ml_lib.proxy.run_exported") from e
    with _engine_failure(engine, name):
        y = run(str(d), x.reshape(x.shape[0], -1))
    from ml_lib.proxy.manifest import to_fixed
    # the proxy answers s32 / 2^F; go back to the integers it computed
    return to_fixed(np.asarray(y).reshape(x.shape[0], -1), man["frac_bits"]).astype(np.int64)


def load_blob(d: Path, man: dict):
    """The validated graph of a --target kernel export's blob, checked against
    its manifest: a hand-edited manifest or a blob copied in from another
    export must fail here with one line, not as a numpy error or as rows
    split the wrong way."""
    from ml_lib.blob import read_blob
    from ml_lib.ir import OUTPUT_COPY
    from ml_lib.validate import GraphError, validate
    path = d / man["blob"]
    try:
        data = path.read_bytes()
        have = hashlib.sha256(data).hexdigest()
        want = man.get("blob_sha256") or have  # older exports have none
        if str(want).lower() != have:
            raise UserError(f"{path} has sha256 {have} but the manifest says "
                            f"{man['blob_sha256']}: the blob changed after the export "
                            "(re-run mlexport)")
        g = read_blob(data)
        validate(g)  # read_blob checks the container only (tensor indices are validate's)
    except FileNotFoundError as e:
        raise UserError(f"{d}: missing {man['blob']}") from e
    except OSError as e:
        raise UserError(f"{path}: cannot read: {e.strerror or e}") from e
    except GraphError as e:
        raise UserError(f"{path}: invalid blob ({e})") from e
    n_in = int(np.prod(man["inputs"][0]["shape"]))
    for what, have, want in (("name", g.name, man["name"]), ("inputs", g.n_in, n_in),
                             ("outputs", g.n_out, man["n_out"])):
        if have != want:
            raise UserError(f"{path} has {what} {have!r} but the manifest says {want!r} "
                            "(a hand-edited manifest or files of two exports; re-run mlexport)")
    copied = np.zeros(g.n_out, bool)  # outputs written by an OUTPUT op in copy mode
    for op in g.ops:
        if op.kind == "output" and op.params["mode"] == OUTPUT_COPY:
            copied[op.params["out_off"]:op.params["out_off"] + op.params["n"]] = True
    for o in man["output_specs"]:
        n = int(np.prod(o["shape"]))
        if bool(copied[o["offset"]:o["offset"] + n].any()) != (o["kind"] == "index"):
            raise UserError(f"{path}: output {o['name']!r} is {o['kind']} in the manifest but "
                            "not in the blob (a hand-edited manifest or files of two exports; "
                            "re-run mlexport)")
    return g


def split_outputs(man: dict, out: np.ndarray, raw: bool) -> dict[str, np.ndarray]:
    res = {}
    for o in man["output_specs"]:
        n = int(np.prod(o["shape"]))
        v = out[:, o["offset"]:o["offset"] + n].reshape((out.shape[0],) + tuple(o["shape"]))
        if raw:
            res[o["name"]] = v.astype(np.int32)
        elif man["format"] == "ml_lib-user":
            # the proxy answers every output as s32 * 2^frac_bits, indices too
            f = v / 2.0**man["frac_bits"]
            res[o["name"]] = np.floor(f + 0.5).astype(np.int32) if o["kind"] == "index" \
                else f.astype(np.float32)
        elif o["kind"] == "index":
            res[o["name"]] = v.astype(np.int32)
        else:
            res[o["name"]] = (v / 2.0**o["frac_bits"]).astype(np.float32)
    return res


def _main(argv) -> int:
    args = parser().parse_args(argv)
    from ml_lib import manifest
    from ml_lib.quantize import to_raw
    d = Path(args.model_dir)
    man = manifest.load(d)
    dest = Path(args.output)
    if dest.is_dir():
        raise UserError(f"-o {dest}: is a directory; give a file name (e.g. -o y.npy)")
    # every engine runs this export's tables: they must agree with the manifest
    g = load_blob(d, man) if man["format"] == "ml_lib-kernel" else None
    x = load_inputs(args.input, man)
    rs = np.asarray(man["inputs"][0]["raw_scale"], dtype=np.float64)
    raw = to_raw(x, rs)
    out = run_engine(args.engine, d, man, x, raw, g)
    if out.shape != (x.shape[0], man["n_out"]):
        raise RuntimeError(f"engine {args.engine} returned shape {out.shape}")
    res = split_outputs(man, out, args.raw)
    buf = io.BytesIO()
    if len(res) == 1 and dest.suffix != ".npz":
        np.save(buf, next(iter(res.values())))
        if dest.suffix != ".npy":  # as np.save(path) names it
            dest = dest.with_name(dest.name + ".npy")
    else:
        if dest.suffix != ".npz":
            dest = dest.with_suffix(".npz")
            print(f"mlrun: {len(res)} outputs, writing {dest}", file=sys.stderr)
        np.savez(buf, **res)
    _write_all_or_nothing(dest, buf.getvalue())
    return 0


def _write_all_or_nothing(dest: Path, data: bytes) -> None:
    """A temporary file beside ``dest``, renamed over it only once complete: a
    failed write (disk full, file size limit) leaves an earlier ``dest`` as it was."""
    tmp = dest.with_name(f".{dest.name}.mlrun-{os.getpid()}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, dest)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise UserError(f"-o {dest}: cannot write: {e.strerror or e}") from e


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    return run_cli("mlrun", _main, argv, "--debug" in argv)


if __name__ == "__main__":
    sys.exit(main())
