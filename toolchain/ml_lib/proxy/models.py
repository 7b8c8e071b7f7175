# SPDX-License-Identifier: GPL-2.0
"""Model folders for the proxy's tests and benchmark.

``identity_dir``: y = x (4 features), so a kernel caller can check every
answer itself. ``mlp_dir``: a float MLP of about 4M parameters, too large for
the in-kernel engine, exported with torch.onnx (used until ``mlexport
--target auto`` routes such models to ``--target user`` by itself).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

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


def mlp_dir(out_dir, name: str = "big", n_in: int = 256, hidden=(1536, 1536, 768),
            n_out: int = 16, seed: int = 0) -> Path:
    """About 4M parameters: 256*1536 + 1536*1536 + 1536*768 + 768*16 + biases."""
    import io

    import torch

    torch.manual_seed(seed)
    dims = [n_in, *hidden]
    layers = []
    for a, b in zip(dims, dims[1:]):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    layers.append(torch.nn.Linear(dims[-1], n_out))
    net = torch.nn.Sequential(*layers).eval()
    buf = io.BytesIO()
    torch.onnx.export(net, (torch.zeros(1, n_in),), buf, input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}}, dynamo=False)
    params = sum(p.numel() for p in net.parameters())
    d = write_model_dir(out_dir, name, buf.getvalue(), n_in, n_out,
                        raw_scale=1.0 / 1024, frac_bits=16, params=params)
    return d


def param_count(model_dir) -> int:
    import onnx

    from .manifest import load_manifest

    m = onnx.load(str(load_manifest(model_dir).onnx_path))
    return int(sum(np.prod(t.dims) for t in m.graph.initializer))
