"""SIMULATED block I/O trace for the LinnOS-like latency classifier.

This is a simulator, not a measurement. Its assumptions:

* One flash device with 4 internal channels served first come, first
  served; a read costs 80 us + 6 us per 4 KiB, a write (into the device's
  buffer) 25 us + 2 us per 4 KiB.
* Arrivals follow a two-state Markov-modulated Poisson process (quiet:
  mean gap 90 us; busy: mean gap 32 us; the state flips on average every
  400 I/Os). 30 % of I/Os are writes; sizes are 4 KiB..128 KiB (mostly 4 KiB).
* Garbage collection: every 12 MiB written the device stalls all channels
  for 1.5..6 ms (uniform). This is the tail LinnOS learns to predict.
* Per I/O we record, at the moment it is issued (what the block layer
  knows then): the number of I/Os outstanding on the device; and, for each
  of the 15 most recently completed I/Os, its latency in us and the number
  of I/Os outstanding when it was issued: 1 + 15 + 15 = 31 features.
  The label is the I/O's own latency.

Everything is integer, in the units a block-layer hook has at hand.
"""
from __future__ import annotations

import bisect
import heapq

import numpy as np

N_HIST = 15
N_FEATURES = 1 + 2 * N_HIST
FEATURES = (["queue_len"] + [f"lat_{i}" for i in range(N_HIST)]
            + [f"qlen_{i}" for i in range(N_HIST)])
CHANNELS = 4


def simulate(n: int, rng: np.random.Generator):
    """Return (features s64[n][31], latency_us s64[n], is_write u8[n])."""
    feats, latency, is_write, _, _ = simulate_events(n, rng)
    return feats, latency, is_write


def simulate_events(n: int, rng: np.random.Generator):
    """simulate() plus each I/O's issue and completion time (us, float)."""
    busy = False
    t = 0.0
    arrivals = np.empty(n)
    for i in range(n):
        if rng.random() < 1 / 400:
            busy = not busy
        t += rng.exponential(32.0 if busy else 90.0)
        arrivals[i] = t
    is_write = rng.random(n) < 0.30
    size_kib = np.where(rng.random(n) < 0.7, 4, 4 * rng.integers(1, 33, n))
    free = [0.0] * CHANNELS
    written = 0
    gc_every = 12 * 1024
    completion = np.empty(n)
    qlen_at_issue = np.empty(n, dtype=np.int64)
    feats = np.zeros((n, N_FEATURES), dtype=np.int64)
    done_sorted: list[tuple[float, int]] = []  # (completion time, index)
    for i in range(n):
        a = arrivals[i]
        pos = bisect.bisect_right(done_sorted, (a, n))
        outstanding = i - pos
        qlen_at_issue[i] = outstanding
        feats[i, 0] = outstanding
        recent = done_sorted[max(0, pos - N_HIST):pos][::-1]
        for k, (c, j) in enumerate(recent):
            feats[i, 1 + k] = int(round(c - arrivals[j]))
            feats[i, 1 + N_HIST + k] = qlen_at_issue[j]
        start = max(a, heapq.heappop(free))
        if is_write[i]:
            service = 25.0 + 2.0 * size_kib[i] / 4
            written += size_kib[i]
        else:
            service = 80.0 + 6.0 * size_kib[i] / 4
        end = start + service
        heapq.heappush(free, end)
        if is_write[i] and written >= gc_every:
            written -= gc_every
            stall = rng.uniform(1500.0, 6000.0)
            free = [max(f, end) + stall for f in free]
            heapq.heapify(free)
        completion[i] = end
        bisect.insort(done_sorted, (end, i))
    latency = np.round(completion - arrivals).astype(np.int64)
    return feats, latency, is_write.astype(np.uint8), arrivals, completion
