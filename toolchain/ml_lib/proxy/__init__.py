# SPDX-License-Identifier: GPL-2.0
"""User-space proxy: the /dev/ml_lib ABI, the daemon (mlproxyd), the caller
stub for ``mlexport --target user`` and :func:`run_exported` for
``mlrun --engine proxy``. See docs/proxy.md."""

from .manifest import Manifest, load_manifest, write_model_dir  # noqa: F401


def run_exported(model_dir, x):
    """Run float inputs ``x`` ([k, n_in] or [n_in]) through a booted kernel:
    kernel caller → /dev/ml_lib → mlproxyd → back; returns the answers as
    float64 (the daemon's s32 fixed point / 2**frac_bits)."""
    from .run import run_exported as _run

    return _run(model_dir, x)
