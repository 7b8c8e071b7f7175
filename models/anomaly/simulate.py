"""SIMULATED per-second scheduler and syscall counters of one machine, with
injected anomalies, for the autoencoder example. A simulator, not a
measurement.

Assumptions:

* Eight counters sampled once a second (what /proc/stat, /proc/vmstat and
  schedstat expose, as deltas): context switches, syscalls, minor faults,
  major faults, forks, interrupts, runnable tasks (x100, averaged over the
  second), iowait ticks.
* Normal behaviour is driven by three latent loads: request rate r (daily
  cycle plus noise), CPU-bound work c, I/O load io. Each counter is a
  fixed positive mix of them plus 5 % multiplicative noise, so normal
  samples lie near a 3-dimensional surface in 8 dimensions.
* Anomalies (5 % of seconds, each lasting 5..30 s) break that structure
  rather than just the scale: a fork storm (forks x2.5, context switches
  x1.3, syscalls unchanged), a crypto miner (runnable tasks x2.2 while
  syscalls and switches drop to x0.6), memory thrashing (major faults x3,
  iowait x1.5, syscalls x0.7), a syscall storm (syscalls x1.8 without more
  switches).
  Their magnitudes are chosen so that most anomalous seconds stay inside
  the normal range of every single counter: a per-counter static threshold
  catches only the extreme ones.
"""
from __future__ import annotations

import numpy as np

FEATURES = ("ctx_switches", "syscalls", "minor_faults", "major_faults", "forks",
            "interrupts", "runnable_x100", "iowait_ticks")
N_FEATURES = len(FEATURES)
KINDS = ("normal", "fork_storm", "miner", "thrashing", "syscall_storm")

# counter = MIX @ [1, r, c, io]
MIX = np.array([
    [2000, 9000, 1500, 3000],     # ctx switches
    [8000, 40000, 2000, 6000],    # syscalls
    [1500, 6000, 3000, 800],      # minor faults
    [2, 5, 1, 40],                # major faults
    [5, 30, 4, 1],                # forks
    [3000, 7000, 1000, 5000],     # interrupts
    [50, 150, 400, 60],           # runnable x100
    [1, 4, 2, 60],                # iowait ticks
], dtype=np.float64)


def simulate(seconds: int, rng: np.random.Generator):
    """Return (counters s64[seconds][8], kind index per second)."""
    t = np.arange(seconds)
    r = 0.6 + 0.4 * np.sin(2 * np.pi * t / 3600.0) + 0.15 * rng.standard_normal(seconds)
    c = np.clip(0.5 + 0.3 * rng.standard_normal(seconds), 0, None)
    io = np.clip(0.4 + 0.25 * rng.standard_normal(seconds), 0, None)
    r = np.clip(r, 0.05, None)
    lat = np.stack([np.ones(seconds), r, c, io], axis=1)
    x = lat @ MIX.T
    kind = np.zeros(seconds, dtype=np.int64)
    i = 600  # the first ten minutes are clean
    while i < seconds:
        if rng.random() < 0.05 / 17:
            k = int(rng.integers(1, len(KINDS)))
            end = min(seconds, i + int(rng.integers(5, 31)))
            kind[i:end] = k
            i = end
        else:
            i += 1
    f = x.copy()
    a = kind == 1
    f[a, 4] *= 2.5
    f[a, 0] *= 1.3
    a = kind == 2
    f[a, 6] *= 2.2
    f[a, 0] *= 0.6
    f[a, 1] *= 0.6
    a = kind == 3
    f[a, 3] *= 3
    f[a, 7] *= 1.5
    f[a, 1] *= 0.7
    a = kind == 4
    f[a, 1] *= 1.8
    f *= 1 + 0.05 * rng.standard_normal(f.shape)
    return np.round(np.clip(f, 0, None)).astype(np.int64), kind
