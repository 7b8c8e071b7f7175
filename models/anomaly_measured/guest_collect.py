#!/usr/bin/env python3
"""Runs INSIDE the booted test kernel (see collect.py): drives a workload
with injected anomalies and samples the kernel's own counters.

Every SAMPLE_S seconds it reads /proc/stat and /proc/vmstat and records
the deltas of: context switches, interrupts, forks, softirqs, minor and
major page faults, user and system CPU ticks, and the instantaneous
runnable count. The workload is a "service": WORKERS processes that each
loop over a small request (read a file, hash it, write a log line, sleep),
with a request rate that drifts slowly; every few tens of seconds one of
three anomalies runs on top for 6..15 s:

* fork storm:   a process spawning short-lived children in a loop;
* miner:        two CPU-bound processes that make no system calls;
* syscall storm: a process issuing tiny read() calls on /dev/zero.

Writes counters.npz (x: int64[n][9], kind: int64[n]) to the directory
given on the command line.
"""
from __future__ import annotations

import hashlib
import math
import os
import random
import signal
import sys
import time

import numpy as np

SAMPLE_S = 0.5
FEATURES = ("ctx_switches", "interrupts", "forks", "softirqs", "minor_faults",
            "major_faults", "user_ticks", "system_ticks", "runnable")
KINDS = ("normal", "fork_storm", "miner", "syscall_storm")
WORKERS = 3


def read_counters() -> list[int]:
    stat = {}
    with open("/proc/stat") as f:
        for line in f:
            k, *v = line.split()
            stat[k] = v
    vm = {}
    with open("/proc/vmstat") as f:
        for line in f:
            k, v = line.split()
            vm[k] = int(v)
    cpu = [int(v) for v in stat["cpu"]]
    return [int(stat["ctxt"][0]), int(stat["intr"][0]), int(stat["processes"][0]),
            int(stat["softirq"][0]), vm["pgfault"] - vm["pgmajfault"], vm["pgmajfault"],
            cpu[0] + cpu[1], cpu[2], int(stat["procs_running"][0])]


def worker(seed: int, rate_file: str) -> None:
    rnd = random.Random(seed)
    data = os.urandom(64 * 1024)
    path = f"/tmp/ml_lib_worker_{seed}"
    with open(path, "wb") as f:
        f.write(data)
    while True:
        try:
            with open(rate_file) as f:
                rate = float(f.read() or "20")
        except (OSError, ValueError):
            rate = 20.0
        with open(path, "rb") as f:
            h = hashlib.sha256(f.read(rnd.randint(4096, 65536))).hexdigest()
        with open("/dev/null", "w") as f:
            f.write(h + "\n")
        time.sleep(rnd.expovariate(rate))


def fork_storm() -> None:
    while True:
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)


def miner() -> None:
    x = 1
    while True:
        for _ in range(100000):
            x = (x * 1103515245 + 12345) & 0xFFFFFFFF


def syscall_storm() -> None:
    fd = os.open("/dev/zero", os.O_RDONLY)
    while True:
        os.read(fd, 1)


ANOMALY = {1: (fork_storm, 1), 2: (miner, 2), 3: (syscall_storm, 1)}


def spawn(fn, *args) -> int:
    pid = os.fork()
    if pid == 0:
        try:
            fn(*args)
        finally:
            os._exit(0)
    return pid


def main(out_dir: str, seconds: float) -> None:
    rnd = random.Random(20261125)
    rate_file = "/tmp/ml_lib_rate"
    with open(rate_file, "w") as f:
        f.write("20")
    workers = [spawn(worker, i, rate_file) for i in range(WORKERS)]
    xs, kinds = [], []
    anomaly_pids: list[int] = []
    kind = 0
    next_change = 20.0  # the first 20 s are normal
    t0 = time.monotonic()
    prev = read_counters()
    n = 0
    try:
        while True:
            n += 1
            target = t0 + n * SAMPLE_S
            time.sleep(max(0.0, target - time.monotonic()))
            now = time.monotonic() - t0
            cur = read_counters()
            d = [c - p for c, p in zip(cur, prev)]
            d[-1] = cur[-1]  # runnable is a level, not a counter
            prev = cur
            xs.append(d)
            kinds.append(kind)
            if now >= seconds:
                break
            # the request rate drifts: 8..40 requests/s per worker
            with open(rate_file, "w") as f:
                f.write(f"{24 + 16 * math.sin(2 * math.pi * now / 97.0):.2f}")
            if now >= next_change:
                for pid in anomaly_pids:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                anomaly_pids = []
                if kind == 0 and rnd.random() < 0.7:
                    kind = rnd.randint(1, 3)
                    fn, copies = ANOMALY[kind]
                    anomaly_pids = [spawn(fn) for _ in range(copies)]
                    next_change = now + rnd.uniform(6, 15)
                else:
                    kind = 0
                    next_change = now + rnd.uniform(12, 30)
                # the sample that straddles a change is not cleanly either
                prev = read_counters()
                t0 = time.monotonic() - n * SAMPLE_S
    finally:
        for pid in anomaly_pids + workers:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    np.savez(os.path.join(out_dir, "counters.npz"), x=np.array(xs, dtype=np.int64),
             kind=np.array(kinds, dtype=np.int64), features=np.array(FEATURES),
             kinds=np.array(KINDS), sample_s=SAMPLE_S)
    print(f"guest_collect: {len(xs)} samples, {sum(k > 0 for k in kinds)} anomalous")


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 600.0)
