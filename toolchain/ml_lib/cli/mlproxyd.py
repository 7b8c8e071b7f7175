# SPDX-License-Identifier: GPL-2.0
"""mlproxyd MODEL_DIR...: serve user-space models to kernel callers via /dev/ml_lib."""

from __future__ import annotations

import logging
import sys

from ..errors import ArgumentParser, run_cli


def _main(argv) -> int:
    p = ArgumentParser(
        prog="mlproxyd",
        description="Serve models exported with `mlexport --target user` to kernel "
                    "callers through /dev/ml_lib (needs CAP_SYS_ADMIN).")
    p.add_argument("model_dirs", nargs="+", metavar="MODEL_DIR",
                   help="folder with <name>.onnx and <name>.json")
    p.add_argument("--device", default="/dev/ml_lib", help="proxy device (default %(default)s)")
    p.add_argument("--ready", metavar="FILE",
                   help="write our pid to FILE once every model is registered")
    p.add_argument("-v", "--verbose", action="store_true", help="log every batch")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    args = p.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, format="mlproxyd: %(message)s",
                        level=logging.DEBUG if args.verbose else logging.INFO)
    from ..proxy.daemon import serve

    return serve(args.model_dirs, device=args.device, ready=args.ready)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # its log is its output
    return run_cli("mlproxyd", _main, argv, debug="--debug" in argv, quiet_logs=False)


if __name__ == "__main__":
    sys.exit(main())
