# SPDX-License-Identifier: GPL-2.0
"""mlproxyd: serve ``mlexport --target user`` model folders to the kernel.

One loop: poll /dev/ml_lib, read every request that is waiting (many per
read), group them by model, run onnxruntime once per model on the whole
batch, write all the answers back in one write. The kernel never waits for
us beyond each model's timeout, so a slow batch costs fallbacks, not hangs.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import signal
from pathlib import Path

import numpy as np

from ..errors import UserError
from . import abi
from .manifest import Manifest, load_manifest

DEVICE = "/dev/ml_lib"
READ_BYTES = 1 << 16  # the kernel's staging buffer: one read never carries more

log = logging.getLogger("mlproxyd")


class Stop(Exception):
    """Raised by the SIGTERM/SIGINT handler to leave the serving loop."""


class Model:
    """One served model: manifest + onnxruntime session."""

    def __init__(self, man: Manifest):
        import onnxruntime as ort

        ort.set_default_logger_severity(3)  # our log is stderr: errors only from ort
        self.man = man
        opts = ort.SessionOptions()
        # the kernel's callers and the daemon share few cores: no spinning pools
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        try:
            self.sess = ort.InferenceSession(str(man.onnx_path), opts,
                                             providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types
            raise UserError(f"{man.onnx_path}: onnxruntime cannot load it: {e}") from None
        ins, outs = self.sess.get_inputs(), self.sess.get_outputs()
        self.input = man.onnx_input or ins[0].name
        self.output = man.onnx_output or outs[0].name
        shape = ins[0].shape
        if len(shape) != 2 or (isinstance(shape[1], int) and shape[1] != man.n_in):
            raise UserError(f"{man.onnx_path}: input shape {shape} is not [batch, {man.n_in}]")
        self.model_id = -1

    def run_float(self, x: np.ndarray) -> np.ndarray:
        y = self.sess.run([self.output], {self.input: x})[0]
        return np.asarray(y).reshape(x.shape[0], -1)

    def run_raw(self, raw: np.ndarray) -> np.ndarray:
        """Raw s64 rows [k, n_in] → s32 fixed-point rows [k, n_out]."""
        y = self.run_float(self.man.to_float(raw))
        if y.shape[1] != self.man.n_out:
            raise RuntimeError(f"{self.man.name}: model gave {y.shape[1]} outputs, "
                               f"manifest says {self.man.n_out}")
        return self.man.to_fixed(y)


def answer(models: dict[int, Model], buf: bytes) -> tuple[bytes, int]:
    """Answer one read's worth of requests: one onnxruntime run per model.

    Returns the responses (back to back) and how many requests there were.
    Requests for an unknown model id are left unanswered (they time out
    into the kernel's fallback).
    """
    out = []
    n = 0
    for model_id, (ids, raw) in abi.parse_batch(buf).items():
        n += len(ids)
        m = models.get(model_id)
        if m is None:
            log.warning("%d requests for unknown model id %d dropped", len(ids), model_id)
            continue
        out.append(abi.pack_responses(ids, model_id, m.run_raw(raw)))
    return b"".join(out), n


def write_answers(fd: int, data: bytes) -> int:
    """Write responses; a rejected one (late: the kernel already fell back)
    is skipped and the rest still go. Returns how many were rejected."""
    rejected = 0
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except OSError as e:
            if e.errno != errno.EINVAL:
                raise
            n = 0
        if n == 0:
            # the first record was refused: skip exactly that one
            _, size, _, _, _ = abi.RESP_HDR.unpack_from(view, 0)
            n = size
            rejected += 1
        view = view[n:]
    return rejected


def load_models(dirs) -> list[Model]:
    mans = [load_manifest(d) for d in dirs]
    names = [m.name for m in mans]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise UserError(f"model {sorted(dup)[0]!r} given twice")
    return [Model(m) for m in mans]


def register(fd: int, models: list[Model]) -> dict[int, Model]:
    by_id = {}
    for m in models:
        try:
            m.model_id = abi.register(fd, m.man.name, m.man.n_in, m.man.n_out)
        except OSError as e:
            why = {errno.ENOENT: "no kernel caller declared it (is its module loaded?)",
                   errno.EINVAL: "the kernel's n_in/n_out differ from the manifest",
                   errno.EBUSY: "another daemon serves it"}.get(e.errno, e.strerror)
            raise UserError(f"cannot serve model {m.man.name!r}: {why}") from None
        by_id[m.model_id] = m
        log.info("serving %s as model id %d (n_in %d, n_out %d)", m.man.name, m.model_id,
                 m.man.n_in, m.man.n_out)
    return by_id


def serve(model_dirs, device: str = DEVICE, ready: str | None = None) -> int:
    models = load_models(model_dirs)
    try:
        fd = os.open(device, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        hint = "; load ml_lib.ko built with CONFIG_ML_LIB_PROXY=y" if e.errno == errno.ENOENT \
            else ""
        raise UserError(f"cannot open {device}: {e.strerror}{hint}") from None

    def stop(signum, frame):
        raise Stop()

    old = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    served = batches = rejected = 0
    try:
        by_id = register(fd, models)
        if ready:
            Path(ready).write_text(f"{os.getpid()}\n")
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        while True:
            poller.poll()
            try:
                buf = os.read(fd, READ_BYTES)
            except BlockingIOError:
                continue
            data, n = answer(by_id, buf)
            served += n
            batches += 1
            rejected += write_answers(fd, data)
    except Stop:
        log.info("stopping: %d requests in %d batches, %d answers too late",
                 served, batches, rejected)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        os.close(fd)
    return 0
