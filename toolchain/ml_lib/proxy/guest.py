# SPDX-License-Identifier: GPL-2.0
"""Runs inside the booted guest (as root): loads the modules, starts daemons,
drives the test caller module (tests/kmod/ml_lib_proxy_test.c) and writes
what it observed as JSON for the host to judge. It asserts nothing itself:
tests/test_proxy_boot.py does.

    python -m ml_lib.proxy.guest suite  --build B --ident DIR --out R.json
    python -m ml_lib.proxy.guest infer  --build B --model-dir DIR --raw X.npy --out Y.npz
    python -m ml_lib.proxy.guest bench  --build B --ident DIR --out R.json
    python -m ml_lib.proxy.guest hang   --name N --n-in I --n-out O --ready F
"""

from __future__ import annotations

import argparse
import errno
import fcntl
import json
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

import numpy as np

from ..kernel import BAD_LOG  # one definition of a bad kernel log line
from ..kernel import guest as kguest  # the debugfs load/unload/infer helpers
from . import abi

DEV = "/dev/ml_lib"
TDIR = "/sys/kernel/debug/ml_lib_proxy_test"


def sh(cmd: str) -> str:
    r = subprocess.run(cmd, shell=True, capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f"{cmd}: exit {r.returncode}: {r.stderr.strip()}")
    return r.stdout


class Guest:
    def __init__(self, build: str):
        self.build = Path(build)
        self.dmesg_seen = 0

    def load_lib(self):
        if not Path("/sys/module/ml_lib").exists():
            sh(f"insmod {self.build}/lib/ml/ml_lib.ko")

    def load_test(self, **params):
        self.unload_test()
        args = " ".join(f"{k}={v}" for k, v in params.items())
        sh(f"insmod {self.build}/kmod/ml_lib_proxy_test.ko {args}")

    def unload_test(self) -> bool:
        if Path("/sys/module/ml_lib_proxy_test").exists():
            return subprocess.run(["rmmod", "ml_lib_proxy_test"]).returncode == 0
        return True

    def infer(self, raw: np.ndarray, n_out: int):
        raw = np.ascontiguousarray(raw, dtype="=i8")
        fd = os.open(f"{TDIR}/infer", os.O_RDWR)
        try:
            os.write(fd, raw.tobytes())
            res = b""
            while True:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    break
                res += chunk
        finally:
            os.close(fd)
        r = np.frombuffer(res, dtype="=i8").reshape(raw.shape[0], 2 + n_out)
        return r[:, 0].copy(), r[:, 1].copy(), r[:, 2:].copy()

    def stress(self, kind: str, threads: int, count: int) -> dict:
        Path(f"{TDIR}/stress").write_text(f"{kind} {threads} {count}")
        words = Path(f"{TDIR}/stress").read_text().split()
        return {words[i]: int(words[i + 1]) for i in range(0, len(words), 2)}

    def publish(self, rows: np.ndarray):
        Path(f"{TDIR}/publish").write_bytes(np.ascontiguousarray(rows, dtype="=i8").tobytes())

    def stats(self, name: str, settled: bool = False) -> dict:
        """The model's debugfs counters. SETTLED: read them once the inflight
        gauge is 0, or after 5 s (the last read then shows what is left).
        The kernel drops the gauge after a request's done() returns, so a
        caller holding its last answer can still see 1 for a moment."""
        end = time.monotonic() + 5
        while True:
            out = {}
            for line in Path(f"/sys/kernel/debug/ml_lib_proxy/{name}/stats").read_text().splitlines():
                k, *v = line.split()
                out[k] = v[0] if k == "mode" else ([int(x) for x in v] if len(v) > 1 else int(v[0]))
            if not settled or out["inflight"] == 0 or time.monotonic() > end:
                return out
            time.sleep(0.01)

    def set_mode(self, name: str, mode: int):
        Path(f"/sys/kernel/debug/ml_lib_proxy/{name}/mode").write_text(f"{mode}\n")

    def start_daemon(self, dirs, *extra) -> subprocess.Popen:
        ready = Path(f"/tmp/mlproxyd.{time.monotonic_ns()}.ready")
        p = subprocess.Popen([sys.executable, "-m", "ml_lib.cli.mlproxyd", "--ready", str(ready),
                              *extra, *map(str, dirs)], stderr=subprocess.PIPE, text=True)
        wait_ready(p, ready)
        if p.poll() is not None:
            raise RuntimeError(f"mlproxyd exited {p.returncode}: {p.stderr.read()}")
        return p

    def dmesg_bad(self) -> list[str]:
        lines = sh("dmesg").splitlines()
        new, self.dmesg_seen = lines[self.dmesg_seen:], len(lines)
        return [ln for ln in new if BAD_LOG.search(ln)]


def wait_for(cond, timeout: float):
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise TimeoutError("condition not met in time")
        time.sleep(0.02)


def wait_ready(p: subprocess.Popen, ready: Path):
    """Until the Python process P has created READY or exited. A bound, not a
    delay: Debian's kernel is ready in seconds, but the debug kernel (KASAN
    under TCG) took about 2 min to import onnxruntime."""
    wait_for(lambda: ready.exists() or p.poll() is not None, 600)


def stop_daemon(p: subprocess.Popen) -> dict:
    p.send_signal(signal.SIGTERM)
    try:
        _, err = p.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        _, err = p.communicate()
    # the ids it served under, in order (logged once per change)
    ids = [int(i) for i in re.findall(r"as model id (\d+)", err)]
    return {"rc": p.returncode, "stderr": err.strip().splitlines()[-3:], "model_ids": ids}


class RawClient:
    """A hand-driven daemon speaking the raw ABI, for faults mlproxyd never makes."""

    def __init__(self, name: str, n_in: int, n_out: int):
        self.fd = os.open(DEV, os.O_RDWR)
        self.model_id = abi.register(self.fd, name, n_in, n_out)
        self.n_out = n_out

    def requests(self, timeout: float = 30.0):
        r, _, _ = select.select([self.fd], [], [], timeout)
        if not r:
            raise TimeoutError("no request arrived")
        return abi.parse_requests(os.read(self.fd, 1 << 16))

    def write(self, data: bytes):
        """Returns bytes accepted or -errno."""
        try:
            return os.write(self.fd, data)
        except OSError as e:
            return -e.errno

    def dataset(self, max_bytes: int = 1 << 20):
        return dataset_read(self.fd, self.model_id, max_bytes)

    def close(self):
        os.close(self.fd)


def dataset_read(fd: int, model_id: int, max_bytes: int = 1 << 20):
    """One ML_LIB_IOC_DATASET_READ on FD: ([(seq, features)], dropped)."""
    import ctypes

    buf = bytearray(max_bytes)
    cbuf = (ctypes.c_char * max_bytes).from_buffer(buf)
    arg = bytearray(abi.DATASET_READ.pack(abi.VERSION, model_id, ctypes.addressof(cbuf),
                                          max_bytes, 0, 0, 0))
    try:
        fcntl.ioctl(fd, abi.IOC_DATASET_READ, arg, True)
    finally:
        del cbuf
    _, _, _, _, n, size, dropped = abi.DATASET_READ.unpack(bytes(arg))
    return abi.parse_records(bytes(buf), n, size), dropped


def wait_sleeping_in_read(t: threading.Thread, timeout: float = 30):
    """Until thread T sleeps inside read(2) (x86-64 syscall 0): past the
    driver's O_NONBLOCK check, waiting for data."""
    task = Path(f"/proc/self/task/{t.native_id}")

    def asleep_in_read():
        try:
            stat = (task / "stat").read_text()
            return (stat[stat.rindex(")") + 2] == "S"
                    and (task / "syscall").read_text().split()[0] == "0")
        except (OSError, IndexError):
            return False
    wait_for(asleep_in_read, timeout)


def in_thread(fn, *args):
    box = {}

    def run():
        try:
            box["value"] = fn(*args)
        except BaseException as e:  # reported to the host, not swallowed
            box["error"] = repr(e)

    t = threading.Thread(target=run)
    t.start()
    return t, box


# --- scenarios: each returns what it saw, plus new bad kernel log lines ---

IDENT = {"name": "ident", "n_in": 4, "n_out": 4}


def sc_end_to_end_identity(g: Guest, ident: str) -> dict:
    g.load_test(**IDENT, timeout_ms=10000)
    d = g.start_daemon([ident])
    raw = np.arange(40, dtype=np.int64).reshape(10, 4) * 3 - 50
    src, _, out = g.infer(raw, 4)
    st = g.stats("ident", settled=True)
    stop = stop_daemon(d)
    return {"raw": raw.tolist(), "src": src.tolist(), "out": out.tolist(), "stats": st,
            "daemon": stop, "unload": g.unload_test()}


def sc_modes(g: Guest, ident: str) -> dict:
    g.load_test(**IDENT, timeout_ms=10000)
    d = g.start_daemon([ident])
    raw = np.tile(np.array([[1, 2, 3, 4]]), (100, 1))
    res = {}
    for mode in (0, 1, 2, 3):
        g.set_mode("ident", mode)
        src, _, out = g.infer(raw, 4)
        res[str(mode)] = {"proxy": int((src == 1).sum()), "fallback": int((src == 2).sum()),
                          "fallback_out_ok": bool((out[src == 2] == [-1, -2, -3, -4]).all()),
                          "proxy_out_ok": bool((out[src == 1] == [1, 2, 3, 4]).all())}
    res["stats"] = g.stats("ident", settled=True)
    res["daemon"] = stop_daemon(d)
    # no daemon at all: immediate fallback
    t0 = time.monotonic()
    src, ns, _ = g.infer(raw[:5], 4)
    res["absent"] = {"src": src.tolist(), "max_ns": int(ns.max()), "wall": time.monotonic() - t0}
    res["unload"] = g.unload_test()
    return res


def sc_stress(g: Guest, ident: str, threads=8, count=1000) -> dict:
    g.load_test(**IDENT, timeout_ms=30000)
    d = g.start_daemon([ident])
    res = {"sync": g.stress("sync", threads, count), "async": g.stress("async", threads, count),
           "irqoff": g.stress("irqoff", 2, 100)}
    res["stats"] = g.stats("ident", settled=True)
    res["daemon"] = stop_daemon(d)
    res["unload"] = g.unload_test()
    return res


def sc_sigkill(g: Guest, ident: str) -> dict:
    timeout_ms = 4000
    g.load_test(**IDENT, timeout_ms=timeout_ms)
    ready = Path("/tmp/hang.ready")
    ready.unlink(missing_ok=True)
    hang = subprocess.Popen([sys.executable, "-m", "ml_lib.proxy.guest", "hang", "--name", "ident",
                             "--n-in", "4", "--n-out", "4", "--ready", str(ready)])
    wait_ready(hang, ready)
    t, box = in_thread(g.stress, "sync", 8, 5)
    wait_for(lambda: g.stats("ident")["inflight"] == 8, 60)
    before = g.stats("ident")
    t_kill = time.monotonic()
    hang.send_signal(signal.SIGKILL)
    hang.wait()
    t.join()
    after_kill = time.monotonic() - t_kill
    res = {"timeout_ms": timeout_ms, "before": before, "verdict": box,
           "seconds_kill_to_all_answered": after_kill, "after": g.stats("ident", settled=True)}
    d = g.start_daemon([ident])
    res["again"] = g.stress("sync", 8, 100)
    res["daemon"] = stop_daemon(d)
    res["final"] = g.stats("ident", settled=True)
    res["unload"] = g.unload_test()
    return res


def sc_slow(g: Guest) -> dict:
    res = {}
    for timeout_ms in (200, 500):
        g.load_test(**IDENT, timeout_ms=timeout_ms)
        c = RawClient("ident", 4, 4)
        raw = np.arange(24, dtype=np.int64).reshape(6, 4)
        t, box = in_thread(g.infer, raw, 4)
        late = []
        timed_out = 0
        # requests that time out before we read them leave the queue unread
        while t.is_alive():
            try:
                reqs = c.requests(0.05)
            except TimeoutError:
                continue
            time.sleep(timeout_ms * 1.5 / 1000)
            # answer only once the kernel has timed them out: a timer that
            # runs late on a loaded host must not turn this into an answer
            # in time
            timed_out += len(reqs)
            wait_for(lambda: g.stats("ident")["timeouts"] >= timed_out, 30)
            for rid, mid, x in reqs:
                late.append(c.write(abi.pack_response(rid, mid, x)))
        t.join()
        src, ns, out = box["value"]
        c.close()
        res[str(timeout_ms)] = {"src": src.tolist(), "latency_ns": ns.tolist(),
                                "late_writes": late, "out": out.tolist(),
                                "stats": g.stats("ident", settled=True)}
        res[f"unload_{timeout_ms}"] = g.unload_test()

        # a daemon that is slow (a quarter of the timeout above) but within
        # the timeout is still used; the timeout is 10x longer here so that
        # a stalled guest cannot make the answer late
        g.load_test(**IDENT, timeout_ms=10 * timeout_ms)
        c = RawClient("ident", 4, 4)
        t2, box2 = in_thread(g.infer, raw[:3], 4)
        answered = 0
        while answered < 3:
            reqs = c.requests()
            time.sleep(timeout_ms * 0.25 / 1000)
            for rid, mid, x in reqs:
                c.write(abi.pack_response(rid, mid, x))
                answered += 1
        t2.join()
        src2, ns2, out2 = box2["value"]
        c.close()
        res[str(timeout_ms)].update(within_src=src2.tolist(), within_out=out2.tolist(),
                                    within_raw=raw[:3].tolist(),
                                    within_stats=g.stats("ident", settled=True))
        res[f"unload_within_{timeout_ms}"] = g.unload_test()
    return res


def sc_malformed(g: Guest) -> dict:
    g.load_test(**IDENT, timeout_ms=20000)
    c = RawClient("ident", 4, 4)
    t, box = in_thread(g.infer, np.array([[5, 6, 7, 8]]), 4)
    (rid, mid, x), = c.requests()
    good = abi.pack_response(rid, mid, x * 10)
    hdr = abi.RESP_HDR
    y = (x * 10).astype("=i4").tobytes()
    cases = {
        "short": good[:10],
        "short_payload": good[:-4],
        "oversize": hdr.pack(1, abi.resp_size(4) + 8, rid, mid, 4) + y + b"\0" * 8,
        "size_field": hdr.pack(1, abi.resp_size(4) - 8, rid, mid, 4) + y,
        "version": hdr.pack(2, abi.resp_size(4), rid, mid, 4) + y,
        "unknown_id": abi.pack_response(rid + 1000, mid, x * 10),
        "wrong_model": abi.pack_response(rid, mid + 1, x * 10),
        "wrong_n_out": abi.pack_response(rid, mid, (x * 10)[:3]),
        "too_many_out": abi.pack_response(rid, mid, np.zeros(6, dtype=np.int64)),
        "nonzero_pad": hdr.pack(1, abi.resp_size(3), rid, mid, 3) + y[:12] + b"\1\0\0\0",
    }
    res = {"bad": {k: c.write(v) for k, v in cases.items()}, "good": c.write(good),
           "duplicate": c.write(good)}
    t.join()
    src, _, out = box["value"]
    res["first"] = {"src": src.tolist(), "out": out.tolist()}
    # a good answer followed by garbage in one write: the good one is taken
    t, box = in_thread(g.infer, np.array([[1, 1, 2, 3]]), 4)
    (rid, mid, x), = c.requests()
    good2 = abi.pack_response(rid, mid, x * 10)
    res["mixed"] = {"len_good": len(good2), "ret": c.write(good2 + cases["unknown_id"])}
    t.join()
    src, _, out = box["value"]
    res["second"] = {"src": src.tolist(), "out": out.tolist()}
    # a read buffer too small for one record
    t, box = in_thread(g.infer, np.array([[2, 2, 2, 2]]), 4)
    select.select([c.fd], [], [], 30)
    try:
        os.read(c.fd, 8)
        res["small_read"] = 0
    except OSError as e:
        res["small_read"] = -e.errno
    (rid, mid, x), = c.requests()
    c.write(abi.pack_response(rid, mid, x))
    t.join()
    res["third_src"] = box["value"][0].tolist()
    res["stats"] = g.stats("ident", settled=True)
    c.close()
    res["unload"] = g.unload_test()
    return res


def sc_unprivileged(g: Guest, ident: str) -> dict:
    g.load_test(**IDENT, timeout_ms=1000)
    probe = f"import os\ntry:\n os.open('{DEV}', os.O_RDWR); print(0)\nexcept OSError as e:\n print(e.errno)"
    res = {}
    no_cap = subprocess.run(["setpriv", "--inh-caps=-sys_admin", "--bounding-set=-sys_admin",
                             sys.executable, "-c", probe], capture_output=True, text=True)
    res["root_without_cap_sys_admin"] = int(no_cap.stdout.strip() or -999)
    nobody = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                             sys.executable, "-c", probe], capture_output=True, text=True)
    res["nobody"] = int(nobody.stdout.strip() or -999)
    res["root"] = int(subprocess.run([sys.executable, "-c", probe], capture_output=True,
                                     text=True).stdout.strip() or -999)
    res["EPERM"], res["EACCES"] = errno.EPERM, errno.EACCES
    # a model folder no kernel caller declared: one-line error, exit 2
    from .manifest import write_model_dir

    ghost = write_model_dir("/tmp/ghost", "ghost", (Path(ident) / "ident.onnx").read_bytes(), 4, 4)
    r = subprocess.run([sys.executable, "-m", "ml_lib.cli.mlproxyd", str(ghost)],
                       capture_output=True, text=True)
    res["undeclared"] = {"rc": r.returncode, "stderr": r.stderr.strip().splitlines()}
    res["unload"] = g.unload_test()
    return res


def sc_dataset(g: Guest) -> dict:
    g.load_test(**IDENT, timeout_ms=1000, dataset_records=64, dataset_features=4)
    c = RawClient("ident", 4, 4)
    rows = np.array([[i, 2 * i, -i, 7] for i in range(100)], dtype=np.int64)
    g.publish(rows)
    # only the file that registered the model reads its dataset
    other = os.open(DEV, os.O_RDWR)
    try:
        dataset_read(other, c.model_id)
        not_owner = 0
    except OSError as e:
        not_owner = -e.errno
    try:  # a stream: stream_open() clears FMODE_LSEEK, no .llseek needed
        os.lseek(other, 0, os.SEEK_SET)
        seek = 0
    except OSError as e:
        seek = -e.errno
    finally:
        os.close(other)
    try:  # a buffer too small for one record (48 bytes here) is an error, not "empty"
        dataset_read(c.fd, c.model_id, 47)
        too_small = 0
    except OSError as e:
        too_small = -e.errno
    recs, dropped = c.dataset()
    g.publish(rows[:10] + 1000)
    recs2, dropped2 = c.dataset()
    empty, _ = c.dataset()
    # LEARNING: the fallback answers and the inputs become training data
    g.set_mode("ident", 1)
    src, _, _ = g.infer(np.array([[5, 4, 3, 2], [9, 8, 7, 6]]), 4)
    learned, _ = c.dataset()
    res = {"learning": {"src": src.tolist(), "seq": [q for q, _ in learned],
                        "feat": [f.tolist() for _, f in learned]},"first": {"seq": [s for s, _ in recs], "feat": [f.tolist() for _, f in recs],
                     "dropped": dropped},
           "second": {"seq": [s for s, _ in recs2], "feat": [f.tolist() for _, f in recs2],
                      "dropped": dropped2},
           "empty": len(empty), "not_owner": not_owner, "too_small": too_small, "seek": seek,
           "stats": g.stats("ident", settled=True)}
    c.close()
    res["unload"] = g.unload_test()
    return res


def try_unload(name: str) -> int:
    """0, or -errno of writing NAME to debugfs ml_lib/unload."""
    try:
        kguest.unload(name)
        return 0
    except OSError as e:
        return -e.errno


def sc_fallback_engine(g: Guest, small: str) -> dict:
    """The fallback is an in-kernel model run by the engine: with no daemon
    (answered in the caller's context) and with a daemon that never answers
    (answered from the model's hrtimer, softirq). The proxy holds a reference
    to it, so unloading it while attached is refused."""
    man = json.loads(next(Path(small).glob("*.json")).read_text())
    kguest.load((Path(small) / man["blob"]).read_bytes())
    raw = np.load(Path(small) / "raw.npy")
    g.load_test(**IDENT, timeout_ms=100, fallback=0, fallback_model=man["name"])
    src, _, out = g.infer(raw, 4)
    res = {"absent": {"src": src.tolist(), "out": out.tolist()}}
    c = RawClient("ident", 4, 4)  # reads nothing, answers nothing
    src, ns, out = g.infer(raw[:8], 4)
    res["timeout"] = {"src": src.tolist(), "out": out.tolist(), "latency_ns": ns.tolist()}
    res["stats"] = g.stats("ident", settled=True)
    res["unload_attached"] = try_unload(man["name"])
    src, _, out = g.infer(raw[:2], 4)  # still there, still answering
    res["after_refused"] = {"src": src.tolist(), "out": out.tolist()}
    c.close()
    res["unload"] = g.unload_test()
    res["unload_detached"] = try_unload(man["name"])
    return res


def sc_debugfs_names(g: Guest, small: str) -> dict:
    """Blobs named like the debugfs control files: their directories live
    under models/, so loading, running and unloading them leaves load and
    unload alone (an "unload" model once made `echo unload > unload` remove
    its own file and deadlock)."""
    man = json.loads(next(Path(small).glob("*.json")).read_text())
    blob = bytearray((Path(small) / man["blob"]).read_bytes())
    raw = np.load(Path(small) / "raw.npy")[:4]
    res = {}
    for name in ("unload", "load", "models"):
        blob[48:80] = name.encode().ljust(32, b"\0")  # header name field
        r = {}
        kguest.load(bytes(blob))
        r["files_after_load"] = sorted(p.name for p in kguest.ROOT.iterdir())
        out, n_out = kguest.infer(name, np.ascontiguousarray(raw, dtype="<i8").tobytes(), len(raw))
        r["out"] = np.frombuffer(out, dtype="<i4").reshape(len(raw), n_out).tolist()
        t, box = in_thread(try_unload, name)
        t.join(120)
        r["unload"] = "hung" if t.is_alive() else box.get("value", box.get("error"))
        r["files_after_unload"] = sorted(p.name for p in kguest.ROOT.iterdir())
        r["models_after_unload"] = sorted(p.name for p in kguest.MODELS.iterdir())
        res[name] = r
    return res


# One synchronous call in a process of its own (so that it can be signalled
# or frozen alone): one row through the test module's infer file; prints
# what came back and how long the write took.
SYNC_CALLER = """
import json, os, signal, sys, time
signal.signal(signal.SIGUSR1, lambda *a: None)
fd = os.open(sys.argv[1] + "/infer", os.O_RDWR)
t0 = time.monotonic()
os.write(fd, (1).to_bytes(8, "little", signed=True) * 4)
took = time.monotonic() - t0
r = os.read(fd, 1 << 16)
v = [int.from_bytes(r[i:i + 8], "little", signed=True) for i in range(0, len(r), 8)]
print(json.dumps({"src": v[0], "ns": v[1], "out": v[2:], "seconds": took}))
"""


def sync_caller(c: RawClient):
    """Start SYNC_CALLER and return it once its request has reached C."""
    p = subprocess.Popen([sys.executable, "-c", SYNC_CALLER, TDIR], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    reqs = c.requests(60)
    return p, reqs


def caller_result(p: subprocess.Popen) -> dict:
    out, err = p.communicate(timeout=120)
    if p.returncode:
        return {"error": f"caller exit {p.returncode}: {err.strip()[-500:]}"}
    return json.loads(out)


def pm_test_freeze() -> tuple[int, float]:
    """A suspend's freezer, tested (pm_test = freezer: freeze every task,
    wait 5 s, thaw): (0 or -errno of the suspend, seconds it took)."""
    Path("/sys/power/pm_test").write_text("freezer")
    t0 = time.monotonic()
    try:
        Path("/sys/power/state").write_text("freeze")
        rc = 0
    except OSError as e:
        rc = -e.errno
    seconds = time.monotonic() - t0
    Path("/sys/power/pm_test").write_text("none")
    return rc, seconds


def sc_interrupt(g: Guest) -> dict:
    """A synchronous caller blocked on a daemon that never answers, with a
    timeout (30 s) longer than the freezer's 20 s: a signal, then a
    suspend's freezer (/sys/power/pm_test = freezer: freeze every task,
    wait 5 s, thaw), then the freezer again with a freezable kernel thread
    and with a work item on a freezable workqueue as the caller, each get
    the fallback at once; so do calls while /dev/snapshot is open, before
    and after a suspend nested in it; after the resume (and the close) the
    daemon answers again."""
    res = {}
    g.load_test(**IDENT, timeout_ms=30000)
    c = RawClient("ident", 4, 4)
    p, reqs = sync_caller(c)
    t0 = time.monotonic()
    p.send_signal(signal.SIGUSR1)
    res["signal"] = caller_result(p)
    res["signal"]["seconds_after_signal"] = time.monotonic() - t0
    # the request taken back: the daemon's answer for it is refused
    res["late_writes"] = [c.write(abi.pack_response(rid, mid, x)) for rid, mid, x in reqs]

    p, reqs = sync_caller(c)
    res["freeze_rc"], res["freeze_seconds"] = pm_test_freeze()
    res["freeze"] = caller_result(p)

    def suspend_with_background_caller(name: str):
        """The test module's NAME file starts one synchronous call in the
        background; once it reached the daemon, suspend; then its result."""
        Path(f"{TDIR}/{name}").write_text("go")
        c.requests(60)
        res[f"{name}_freeze_rc"], res[f"{name}_freeze_seconds"] = pm_test_freeze()
        wait_for(lambda: Path(f"{TDIR}/{name}").read_text().startswith("done 1"), 60)
        w = Path(f"{TDIR}/{name}").read_text().split()
        res[name] = {"src": int(w[3]), "ns": int(w[5]), "out": [int(x) for x in w[7:]]}

    # a freezable kernel thread gets no signal: it must notice the freezer
    suspend_with_background_caller("kthread")
    # a freezable workqueue's worker does not freeze: the freezer waits for its work
    suspend_with_background_caller("work")

    # uswsusp: /dev/snapshot open for reading is a hibernation under way
    # (PM_HIBERNATION_PREPARE until its close); a suspend nested in it must
    # not end it: requests stay with the fallback until the close
    def fallback_call() -> dict:
        p = subprocess.Popen([sys.executable, "-c", SYNC_CALLER, TDIR], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        return caller_result(p)

    try:
        snap = os.open("/dev/snapshot", os.O_RDONLY)
    except OSError as e:
        res["snapshot"] = {"error": f"open /dev/snapshot: {e}"}
    else:
        try:
            res["snapshot"] = fallback_call()
            res["nested_freeze_rc"], _ = pm_test_freeze()
            res["after_nested"] = fallback_call()
        finally:
            os.close(snap)

    # resumed: requests go to the daemon again
    p, reqs = sync_caller(c)
    res["resumed_writes"] = [c.write(abi.pack_response(rid, mid, x)) for rid, mid, x in reqs]
    res["resumed"] = caller_result(p)
    res["stats"] = g.stats("ident", settled=True)
    c.close()
    res["unload"] = g.unload_test()
    return res


def sc_reload(g: Guest, ident: str) -> dict:
    """The caller's module removed and loaded again while mlproxyd runs: the
    new model (a new id) is served again without restarting the daemon."""
    res = {}
    g.load_test(**IDENT, timeout_ms=10000)
    d = g.start_daemon([ident])
    raw = np.array([[3, 1, 4, 1], [5, 9, 2, 6]])
    res["before"] = g.infer(raw, 4)[0].tolist()
    g.load_test(**IDENT, timeout_ms=10000)  # unloads it first: detach, then attach
    t0 = time.monotonic()
    try:
        wait_for(lambda: g.stats("ident")["served"] == 1, 30)
        res["reserved_seconds"] = time.monotonic() - t0
    except TimeoutError:
        res["reserved_seconds"] = None
    src, _, out = g.infer(raw, 4)
    res["after"] = {"src": src.tolist(), "out": out.tolist(), "raw": raw.tolist()}
    res["daemon"] = stop_daemon(d)
    res["unload"] = g.unload_test()
    return res


class StalledPage:
    """One anonymous page registered with userfaultfd and never served: a
    read() into it stalls in the kernel's copy to user space until close()."""

    def __init__(self):
        import ctypes
        import struct

        self.ct = ctypes
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.libc.syscall.restype = ctypes.c_long
        self.libc.mmap.restype = ctypes.c_void_p
        self.libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                                   ctypes.c_int, ctypes.c_long]
        self.libc.read.restype = ctypes.c_ssize_t
        self.libc.read.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t]
        self.uffd = self.libc.syscall(323, os.O_CLOEXEC | os.O_NONBLOCK)  # x86_64 userfaultfd
        if self.uffd < 0:
            raise OSError(ctypes.get_errno(), "userfaultfd")
        fcntl.ioctl(self.uffd, 0xC018AA3F, bytearray(struct.pack("=QQQ", 0xAA, 0, 0)), True)
        self.addr = self.libc.mmap(None, 4096, 3, 0x22, -1, 0)  # RW, MAP_PRIVATE|ANONYMOUS
        # UFFDIO_REGISTER, mode MISSING: the first touch waits for us
        fcntl.ioctl(self.uffd, 0xC020AA00,
                    bytearray(struct.pack("=QQQQ", self.addr, 4096, 1, 0)), True)

    def read_into(self, fd: int) -> int:
        n = self.libc.read(fd, self.addr, 4096)
        return n if n >= 0 else -self.ct.get_errno()

    def stalled(self, timeout: float) -> bool:
        """True once a fault on the page is waiting for us."""
        return bool(select.select([self.uffd], [], [], timeout)[0])

    def text(self, n: int) -> str:
        return self.ct.string_at(self.addr, n).decode()

    def close(self):
        # the stalled copy is retried without userfaultfd and completes
        os.close(self.uffd)


def sc_debugfs_lifetime(g: Guest) -> dict:
    """A root reader of a model's debugfs stats whose copy to user space
    stalls (a userfaultfd page) must not hold the caller's module exit
    (detach); files still open after detach show the final counters, and a
    mode written after detach is refused."""
    res = {}
    g.load_test(**IDENT, timeout_ms=1000)
    d = f"/sys/kernel/debug/ml_lib_proxy/{IDENT['name']}"
    g.infer(np.array([[1, 2, 3, 4]]), 4)  # no daemon: one fallback, counted
    stats_fd, mode_fd = os.open(f"{d}/stats", os.O_RDONLY), os.open(f"{d}/mode", os.O_RDWR)
    page = StalledPage()
    stalled_fd = os.open(f"{d}/stats", os.O_RDONLY)
    t, box = in_thread(page.read_into, stalled_fd)
    res["stalled"] = page.stalled(30)
    t0 = time.monotonic()
    rmmod = subprocess.Popen(["rmmod", "ml_lib_proxy_test"])
    try:
        res["rmmod_rc"] = rmmod.wait(timeout=30)
        res["rmmod_seconds"] = time.monotonic() - t0
    except subprocess.TimeoutExpired:
        res["rmmod_rc"] = None  # held by the stalled reader
    page.close()
    t.join(60)
    if res["rmmod_rc"] is None:
        rmmod.wait()
    res["stalled_read"] = box.get("value", box.get("error"))
    res["stalled_text"] = page.text(res["stalled_read"]) if isinstance(
        res["stalled_read"], int) and res["stalled_read"] > 0 else ""
    res["after_detach_stats"] = os.read(stats_fd, 4096).decode()
    try:
        res["after_detach_mode_write"] = os.write(mode_fd, b"3\n")
    except OSError as e:
        res["after_detach_mode_write"] = -e.errno
    res["after_detach_mode_read"] = os.read(mode_fd, 64).decode()
    for fd in (stats_fd, mode_fd, stalled_fd):
        os.close(fd)
    res["dir_gone"] = not Path(d).exists()
    return res


SUITE = {
    "end_to_end_identity": lambda g, a: sc_end_to_end_identity(g, a.ident),
    "modes": lambda g, a: sc_modes(g, a.ident),
    "malformed": lambda g, a: sc_malformed(g),
    "unprivileged": lambda g, a: sc_unprivileged(g, a.ident),
    "dataset": lambda g, a: sc_dataset(g),
    "slow": lambda g, a: sc_slow(g),
    "sigkill": lambda g, a: sc_sigkill(g, a.ident),
    "stress": lambda g, a: sc_stress(g, a.ident),
    "fallback_engine": lambda g, a: sc_fallback_engine(g, a.small),
    "debugfs_names": lambda g, a: sc_debugfs_names(g, a.small),
    "interrupt": lambda g, a: sc_interrupt(g),
    "reload": lambda g, a: sc_reload(g, a.ident),
    "debugfs_lifetime": lambda g, a: sc_debugfs_lifetime(g),
}


def run_suite(args) -> dict:
    g = Guest(args.build)
    g.load_lib()
    g.dmesg_bad()
    # the kernel the suite ran in, for the host to check (make check-rt)
    results = {"uname": sh("uname -rv").strip()}
    only = args.only.split(",") if args.only else list(SUITE)
    for name in only:
        t0 = time.monotonic()
        try:
            r = SUITE[name](g, args)
        except BaseException as e:  # keep going: the host reports every scenario
            # where, e.g. "<lambda>:751 -> sc_reload:650 -> start_daemon:114 -> wait_for:130"
            here = [f"{f.name}:{f.lineno}" for f in traceback.extract_tb(e.__traceback__)
                    if f.filename == __file__][1:]
            r = {"error": f"{e!r} in " + " -> ".join(here)}
            g.unload_test()
        r["dmesg_bad"] = g.dmesg_bad()
        r["seconds"] = time.monotonic() - t0
        results[name] = r
        Path(args.out).write_text(json.dumps(results, indent=1))
    # every caller module is gone; what ml_lib still holds (debug kernel only)
    results["kmemleak"] = kguest.kmemleak_ml_lib()
    results["rmmod_ml_lib"] = subprocess.run(["rmmod", "ml_lib"]).returncode
    results["dmesg_final_bad"] = g.dmesg_bad()
    return results


def run_infer(args) -> dict:
    """mlrun --engine proxy: every row through the kernel API and mlproxyd."""
    from .manifest import load_manifest

    man = load_manifest(args.model_dir)
    g = Guest(args.build)
    g.load_lib()
    g.dmesg_bad()
    g.load_test(name=man.name, n_in=man.n_in, n_out=man.n_out, timeout_ms=args.timeout_ms)
    d = g.start_daemon([args.model_dir])
    raw = np.load(args.raw)
    src, ns, out = g.infer(raw, man.n_out)
    stats = g.stats(man.name, settled=True)
    stop = stop_daemon(d)
    unload = g.unload_test()
    np.savez(args.out, src=src, ns=ns, out=out)
    return {"stats": stats, "daemon": stop, "unload": unload, "dmesg_bad": g.dmesg_bad(),
            "rmmod_ml_lib": subprocess.run(["rmmod", "ml_lib"]).returncode}


def hang(args):
    """A daemon that reads requests and never answers (killed by the test)."""
    fd = os.open(DEV, os.O_RDWR)
    abi.register(fd, args.name, args.n_in, args.n_out)
    Path(args.ready).write_text("ready\n")
    while True:
        select.select([fd], [], [])
        os.read(fd, 1 << 16)


def main(argv=None):
    p = argparse.ArgumentParser(prog="ml_lib.proxy.guest")
    p.add_argument("what", choices=["suite", "infer", "bench", "hang"])
    p.add_argument("--build")
    p.add_argument("--ident")
    p.add_argument("--small", help="mlexport --target kernel folder with raw.npy (fallback)")
    p.add_argument("--only")
    p.add_argument("--out")
    p.add_argument("--model-dir")
    p.add_argument("--raw")
    p.add_argument("--timeout-ms", type=int, default=30000)
    p.add_argument("--name")
    p.add_argument("--n-in", type=int)
    p.add_argument("--n-out", type=int)
    p.add_argument("--ready")
    p.add_argument("--rounds", type=int, default=2000)
    args = p.parse_args(argv)
    if not os.access(os.path.expanduser("~"), os.W_OK):
        # the guest sees the host read-only; onnxruntime wants to keep a
        # telemetry id under $HOME and warns on stderr when it cannot
        os.environ["HOME"] = "/tmp"
    if args.what == "hang":
        return hang(args)
    if args.what == "suite":
        res = run_suite(args)
    elif args.what == "infer":
        res = run_infer(args)
        args.out = args.out + ".json"
    else:
        from .bench import run_bench

        res = run_bench(Guest(args.build), args)
    Path(args.out).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
