# SPDX-License-Identifier: GPL-2.0
"""Guest side of ``make bench-proxy`` (bench/proxy_bench.py boots the guest).

Round trip kernel → daemon → kernel, measured in the kernel per request,
next to the floor: a pipe ping-pong between two processes in the same
guest, written in the same language and loop shape as the daemon. Under
QEMU TCG only the ratios mean anything.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time

import numpy as np

from . import abi

REQ = 56  # bytes of a 4-feature request
RESP = 40  # bytes of a 4-output answer


def _pct(ns) -> dict:
    ns = np.asarray(ns, dtype=np.float64)
    return {"median_us": float(np.median(ns)) / 1e3, "p99_us": float(np.percentile(ns, 99)) / 1e3,
            "n": int(ns.size)}


def pipe_floor(rounds: int) -> dict:
    a_r, a_w = os.pipe()
    b_r, b_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the "daemon": poll, read, answer
        os.close(a_w)
        os.close(b_r)
        p = select.poll()
        p.register(a_r, select.POLLIN)
        while True:
            p.poll()
            if not os.read(a_r, 1 << 16):
                os._exit(0)
            os.write(b_w, b"r" * RESP)
    os.close(a_r)
    os.close(b_w)
    times = []
    msg = b"q" * REQ
    for _ in range(rounds):
        t0 = time.perf_counter_ns()
        os.write(a_w, msg)
        os.read(b_r, 1 << 16)
        times.append(time.perf_counter_ns() - t0)
    os.close(a_w)
    os.waitpid(pid, 0)
    os.close(b_r)
    return _pct(times[rounds // 10:])


def echo_responder(name: str, n: int, ready: str):
    """The transport alone: mlproxyd's poll/read/write loop with the model and
    the numpy conversions replaced by a constant answer, so that the Python
    work per round trip matches the pipe floor's (one header unpack)."""
    fd = os.open("/dev/ml_lib", os.O_RDWR)
    abi.register(fd, name, n, n)
    open(ready, "w").close()
    p = select.poll()
    p.register(fd, select.POLLIN)
    hdr = abi.REQ_HDR
    payload = bytes(abi.resp_size(n) - abi.RESP_HDR.size)
    size = abi.resp_size(n)
    while True:
        p.poll()
        buf = os.read(fd, 1 << 16)
        out = []
        off = 0
        while off < len(buf):
            _, rsize, rid, mid, _ = hdr.unpack_from(buf, off)
            out.append(abi.RESP_HDR.pack(abi.VERSION, size, rid, mid, n) + payload)
            off += rsize
        os.write(fd, b"".join(out))


def model_time(model_dir, rounds: int) -> dict:
    """onnxruntime's share of a mlproxyd round trip: one row, in the guest."""
    from .daemon import Model
    from .manifest import load_manifest

    m = Model(load_manifest(model_dir))
    x = np.arange(m.man.n_in, dtype=np.int64)[None]
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter_ns()
        m.run_raw(x)
        times.append(time.perf_counter_ns() - t0)
    return _pct(times[rounds // 10:])


def _kernel_round_trips(g, rounds: int) -> dict:
    raw = np.tile(np.arange(4, dtype=np.int64), (rounds, 1))
    src, ns, _ = g.infer(raw, 4)
    assert (src == 1).all(), "bench: an answer came from the fallback"
    return _pct(ns[rounds // 10:])


def run_bench(g, args) -> dict:
    from .guest import stop_daemon, wait_for

    rounds = args.rounds
    # one vCPU for both sides of every measurement: under TCG a cross-vCPU
    # wake-up costs far more than the code under test, and the scheduler
    # would place the pipe pair and the kernel/daemon pair differently
    os.sched_setaffinity(0, {0})
    g.load_lib()
    res = {"rounds": rounds, "pipe_floor": pipe_floor(rounds),
           "model_time_identity": model_time(args.ident, rounds)}

    g.load_test(name="ident", n_in=4, n_out=4, timeout_ms=30000)
    ready = "/tmp/echo.ready"
    echo = subprocess.Popen([sys.executable, "-c",
                             "from ml_lib.proxy.bench import echo_responder as e; "
                             f"e('ident', 4, {ready!r})"])
    wait_for(lambda: os.path.exists(ready), 60)
    res["proxy_transport"] = _kernel_round_trips(g, rounds)
    echo.kill()
    echo.wait()

    d = g.start_daemon([args.ident])
    res["mlproxyd_identity"] = _kernel_round_trips(g, rounds)
    res["throughput_1x1000_sync"] = g.stress("sync", 1, 1000)
    res["throughput_8x1000_async"] = g.stress("async", 8, 1000)
    res["daemon"] = stop_daemon(d)
    g.unload_test()
    for k in ("throughput_1x1000_sync", "throughput_8x1000_async"):
        v = res[k]
        v["req_per_s"] = v["sent"] / (v["ns"] / 1e9)
    floor = res["pipe_floor"]["median_us"]
    res["ratio_transport_median"] = res["proxy_transport"]["median_us"] / floor
    res["ratio_transport_p99"] = res["proxy_transport"]["p99_us"] / res["pipe_floor"]["p99_us"]
    res["ratio_mlproxyd_median"] = res["mlproxyd_identity"]["median_us"] / floor
    res["ratio_mlproxyd_minus_model_median"] = (res["mlproxyd_identity"]["median_us"] -
                                                res["model_time_identity"]["median_us"]) / floor
    res["batching_speedup"] = (res["throughput_8x1000_async"]["req_per_s"] /
                               res["throughput_1x1000_sync"]["req_per_s"])
    res["dmesg_bad"] = g.dmesg_bad()
    return res
