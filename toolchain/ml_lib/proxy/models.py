# SPDX-License-Identifier: GPL-2.0
"""Model folders for the proxy's tests and benchmark.

``identity_dir``: y = x (4 features), so a kernel caller can check every
answer itself. (The ~4M-parameter model of the end-to-end test is exported
by ``mlexport --target auto`` itself, see tests/test_proxy_boot.py.)
"""

from __future__ import annotations

from pathlib import Path

from .manifest import write_model_dir


def identity_dir(out_dir, n: int = 4) -> Path:
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", n])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", n])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "ident", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return write_model_dir(out_dir, "ident", model, n, n, raw_scale=1.0, frac_bits=0)

