# SPDX-License-Identifier: GPL-2.0
"""mlproxyd: serve ``mlexport --target user`` model folders to the kernel.

One loop: poll /dev/ml_lib, read every request that is waiting (many per
read), group them by model, run onnxruntime once per model on the whole
batch and write that model's answers back as soon as they exist. Models
run one after another in one thread: a slow model delays the answers of
the models after it in the same read (by its run time; the kernel's
timeout then answers from the fallback), so give models that share a
daemon timeouts that allow for each other, or run one daemon per model.
The kernel never waits for us beyond each model's timeout, so a slow batch
costs fallbacks, not hangs. A batch that fails is run again row by row:
the rows that fail alone get no answer (they time out into the kernel's
fallback) and the rest are answered; the daemon keeps serving.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import signal
import sys
import time
from pathlib import Path

import numpy as np

from ..errors import UserError, first_line
from . import abi
from .manifest import Manifest, load_manifest

DEVICE = "/dev/ml_lib"
READ_BYTES = 1 << 16  # the kernel's staging buffer: one read never carries more
REFRESH_S = 1.0  # how often the daemon registers its models again (refresh())

log = logging.getLogger("mlproxyd")

# output element types to_fixed() can turn into s32 fixed point
# (not bfloat16: onnxruntime's Python API has no numpy type to return it in)
NUMERIC_TYPES = {f"tensor({t})" for t in (
    "float", "double", "float16", "bool", "int8", "int16", "int32", "int64",
    "uint8", "uint16", "uint32", "uint64")}
FAILURE_LOG_S = 10.0  # at most one failure line per model per this many seconds


class Stop(BaseException):
    """Raised by the SIGTERM/SIGINT handler to leave the serving loop; a
    BaseException, like KeyboardInterrupt, so that no ``except Exception``
    (a failing model's batch, a logging handler) can swallow it."""


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
        where = man.onnx_path
        if len(ins) != 1:
            raise UserError(f"{where}: has {len(ins)} inputs; mlproxyd feeds exactly one")
        self.input = man.onnx_input or ins[0].name
        if self.input != ins[0].name:
            raise UserError(f"{where}: no input named {self.input!r} (has {ins[0].name!r})")
        if ins[0].type != "tensor(float)":
            raise UserError(f"{where}: input type {ins[0].type} is not tensor(float)")
        names = [o.name for o in outs]
        self.output = man.onnx_output or names[0]
        if self.output not in names:
            raise UserError(f"{where}: no output named {self.output!r} (has {', '.join(names)})")
        shape = ins[0].shape
        if len(shape) != 2 or (isinstance(shape[1], int) and shape[1] != man.n_in):
            raise UserError(f"{where}: input shape {shape} is not [batch, {man.n_in}]")
        out_type = next(o.type for o in outs if o.name == self.output)
        if out_type not in NUMERIC_TYPES:
            raise UserError(f"{where}: output {self.output!r} is {out_type}, not a numeric "
                            "tensor")
        self._check_rows(where)
        self.model_id: int | None = None  # the kernel's id while served
        self._last_failure_log = -FAILURE_LOG_S
        self._unlogged_failures = 0

    def log_failure(self, msg: str) -> None:
        """Log a failed run, at most once per FAILURE_LOG_S: a model that
        fails on some inputs would otherwise log on every read."""
        now = time.monotonic()
        if now - self._last_failure_log < FAILURE_LOG_S:
            self._unlogged_failures += 1
            return
        more = (f" ({self._unlogged_failures} more failures not logged in the last "
                f"{now - self._last_failure_log:.0f} s)" if self._unlogged_failures else "")
        log.error("%s: %s%s", self.man.name, msg, more)
        self._last_failure_log, self._unlogged_failures = now, 0

    def _check_rows(self, where) -> None:
        """Refuse a model whose answer to one request is not its own row.

        Requests are batched as they arrive, so row k of the output must
        depend on row k of the input only, whatever the batch size: a fixed
        batch dimension, an output with the batch on another axis or a
        softmax across the batch would otherwise give wrong or missing
        answers only once requests share a read. Batches of 1 and
        n_out + 1 rows (so a transposed [n_out, batch] output cannot pass)
        must give one row each, equal to running each row alone.
        """
        rng = np.random.default_rng(0)
        k = self.man.n_out + 1
        x = rng.standard_normal((k, self.man.n_in)).astype(np.float32)
        try:
            alone = [self._trial_run(x[i:i + 1]) for i in range(k)]
            together = self._trial_run(x)
        except Exception as e:  # onnxruntime's own exception types
            raise UserError(f"{where}: cannot run a batch of 1 or {k} rows: "
                            f"{first_line(e)}") from None
        alone = np.concatenate(alone)
        # batched and single-row kernels may round differently: a loose bound
        tol = 1e-3 * max(1.0, float(np.nanmax(np.abs(together), initial=0.0)))
        if not np.allclose(alone, together, rtol=1e-3, atol=tol, equal_nan=True):
            raise UserError(f"{where}: a row's output depends on the other rows of its batch "
                            "(mlproxyd batches requests; the batch must be axis 0 and rows "
                            "independent)")

    def _trial_run(self, x: np.ndarray) -> np.ndarray:
        """run_float() on a trial batch; the output also goes through
        to_fixed(), so a value it cannot take fails at start-up, not on
        every request."""
        y = self.run_float(x)
        self.man.to_fixed(y)
        return y

    def run_float(self, x: np.ndarray) -> np.ndarray:
        """Float rows [k, n_in] → float outputs [k, n_out], or RuntimeError."""
        y = np.asarray(self.sess.run([self.output], {self.input: x})[0])
        k = x.shape[0]
        # the batch must be axis 0: reshaping e.g. [n_out, batch] would mix requests
        if y.ndim < 1 or y.shape[0] != k:
            raise RuntimeError(f"{self.man.name}: a batch of {k} rows gave an output "
                               f"of shape {y.shape}")
        y = y.reshape(k, -1)
        if y.shape[1] != self.man.n_out:
            raise RuntimeError(f"{self.man.name}: a batch of {k} rows gives outputs of shape "
                               f"{y.shape}, the manifest says ({k}, {self.man.n_out})")
        return y

    def run_raw(self, raw: np.ndarray) -> np.ndarray:
        """Raw s64 rows [k, n_in] → s32 fixed-point rows [k, n_out]."""
        return self.man.to_fixed(self.run_float(self.man.to_float(raw)))


def answer_each(models: dict[int, Model], buf: bytes):
    """Answer one read's worth of requests: one onnxruntime run per model.

    Yields (model_id, responses back to back, number of requests, number
    left unanswered) per model, so each model's answers can be written as
    soon as they exist. Requests
    for an unknown model id get no answer (they time out into the kernel's
    fallback). A model whose batch fails is run row by row: a row that
    fails alone gets no answer, the others are answered (one bad input
    must not cost the whole read its answers); failures are logged, rate
    limited. A malformed read (the kernel never writes one) is logged and
    dropped.
    """
    try:
        groups = abi.parse_batch(buf)
    except ValueError as e:
        log.error("dropped a malformed read of %d bytes: %s", len(buf), e)
        return
    for model_id, (ids, raw) in groups.items():
        m = models.get(model_id)
        if m is None:
            log.warning("%d requests for unknown model id %d dropped", len(ids), model_id)
            yield model_id, b"", len(ids), len(ids)
            continue
        n = len(ids)
        try:
            y = m.run_raw(raw)
        except Exception as e:  # onnxruntime's own types included: keep serving
            why = first_line(e)
            good = []
            for i in range(n if n > 1 else 0):
                try:
                    good.append((i, m.run_raw(raw[i:i + 1])))
                except Exception:  # noqa: BLE001 - this row's own failure
                    pass
            m.log_failure(f"a batch of {n} failed ({why}); {n - len(good)} left to the "
                          "kernel's fallback")
            if not good:
                yield model_id, b"", n, n
                continue
            ids = np.asarray(ids)[[i for i, _ in good]]
            y = np.concatenate([r for _, r in good])
        yield model_id, abi.pack_responses(ids, model_id, y), n, n - len(ids)


def answer(models: dict[int, Model], buf: bytes) -> tuple[bytes, int]:
    """All of answer_each() for one read: (responses back to back, requests)."""
    parts = list(answer_each(models, buf))
    return b"".join(p[1] for p in parts), sum(p[2] for p in parts)


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


def register_why(e: OSError) -> str:
    return {errno.ENOENT: "no kernel caller declared it (is its module loaded?)",
            errno.EINVAL: "the kernel's n_in/n_out differ from the manifest",
            errno.EBUSY: "another daemon serves it"}.get(e.errno, e.strerror)


def register(fd: int, models: list[Model]) -> dict[int, Model]:
    by_id = {}
    for m in models:
        try:
            m.model_id = abi.register(fd, m.man.name, m.man.n_in, m.man.n_out)
        except OSError as e:
            raise UserError(f"cannot serve model {m.man.name!r}: {register_why(e)}") from None
        by_id[m.model_id] = m
        log.info("serving %s as model id %d (n_in %d, n_out %d, sha256 %s)", m.man.name,
                 m.model_id, m.man.n_in, m.man.n_out, m.man.onnx_sha256)
    return by_id


def refresh(fd: int, models: list[Model], by_id: dict[int, Model]) -> dict[int, Model]:
    """Register every model again; returns the new id → model map.

    The kernel keeps a registration only while the caller's model stays
    attached: a caller module removed and loaded again attaches a new model,
    with a new id, that no daemon serves (its requests get the fallback,
    -ENOTCONN). Registering is idempotent for a model this file still serves
    (same id), serves a re-attached one under its new id, and tells which
    ones are gone (ENOENT until the caller is back) or taken (EBUSY). Each
    change is logged once.
    """
    new = {}
    for m in models:
        try:
            model_id = abi.register(fd, m.man.name, m.man.n_in, m.man.n_out)
        except OSError as e:
            if m.model_id is not None:
                log.warning("%s: not served any more (%s); serving it again when it is back",
                            m.man.name, register_why(e))
                m.model_id = None
            continue
        if model_id != m.model_id:
            log.info("serving %s again as model id %d (its caller attached it again)",
                     m.man.name, model_id)
            m.model_id = model_id
        new[model_id] = m
    return new


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def ignore_stop_signals():
    """SIG_IGN for SIGTERM and SIGINT once the daemon is stopping.

    A Python handler is not enough: the interpreter resets it to the
    default as it exits, and one more signal then (e.g. a second Ctrl-C)
    killed the daemon after its clean shutdown (exit -2). SIG_IGN survives,
    and covers onnxruntime's threads too. signal.signal() first runs the
    handlers of signals already caught (ours is a no-op by now); one caught
    between that check and the switch is then written out by CPython as an
    unraisable "OSError: Signal N ignored due to race condition", which the
    hook installed here drops. Both stay for the rest of the process, which
    is exiting.
    """
    prev = sys.unraisablehook

    def hook(u):
        if isinstance(u.exc_value, OSError) and "ignored due to race condition" in str(
                u.exc_value):
            return
        prev(u)

    sys.unraisablehook = hook
    for s in STOP_SIGNALS:
        signal.signal(s, signal.SIG_IGN)


def serve(model_dirs, device: str = DEVICE, ready: str | None = None) -> int:
    """Serve until SIGTERM or SIGINT; returns 0. After such a stop both
    signals stay ignored in this process (ignore_stop_signals()): it is
    meant to exit."""
    stopping = []

    def stop(signum, frame):
        # only the first signal interrupts; one more during shutdown is a no-op
        if not stopping:
            stopping.append(signum)
            raise Stop()

    old = {}
    fd = -1
    wake_fds: tuple[int, ...] = ()
    old_wakeup = None
    served = batches = rejected = failed = 0
    try:
        for s in STOP_SIGNALS:  # inside the try: a signal right away is a clean stop
            old[s] = signal.signal(s, stop)
        models = load_models(model_dirs)
        try:
            fd = os.open(device, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as e:
            hint = "; load ml_lib.ko built with CONFIG_ML_LIB_PROXY=y" \
                if e.errno == errno.ENOENT else ""
            raise UserError(f"cannot open {device}: {e.strerror}{hint}") from None
        by_id = register(fd, models)
        if ready:
            Path(ready).write_text(f"{os.getpid()}\n")
        # A signal may be delivered to one of onnxruntime's threads, which
        # would leave poll() asleep; the wake-up pipe ends it in any case.
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        wake_fds = (wake_r, wake_w)
        old_wakeup = signal.set_wakeup_fd(wake_w)
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        poller.register(wake_r, select.POLLIN)
        next_refresh = time.monotonic() + REFRESH_S
        while True:
            poller.poll(REFRESH_S * 1000)
            if time.monotonic() >= next_refresh:
                by_id = refresh(fd, models, by_id)
                next_refresh = time.monotonic() + REFRESH_S
            try:
                os.read(wake_r, 512)  # drain; the signal's handler has run by now
            except BlockingIOError:
                pass
            try:
                buf = os.read(fd, READ_BYTES)
            except BlockingIOError:
                continue
            batches += 1
            for model_id, data, n, unanswered in answer_each(by_id, buf):
                served += n
                failed += unanswered
                if not data:
                    continue
                late = write_answers(fd, data)
                rejected += late
                log.debug("model id %d: %d requests answered, %d too late", model_id, n, late)
    except Stop:
        pass
    finally:
        if fd >= 0:
            os.close(fd)
        if wake_fds:
            signal.set_wakeup_fd(old_wakeup)
            for w in wake_fds:
                os.close(w)
        if stopping:
            ignore_stop_signals()  # we are exiting
        else:
            for s, h in old.items():
                signal.signal(s, h)
    if stopping:
        log.info("stopping: %d requests in %d reads, %d answers too late, %d not answered",
                 served, batches, rejected, failed)
    return 0
