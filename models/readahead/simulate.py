"""SIMULATED file read traces and page-cache cost model for the readahead
example (KML-like). This is a simulator, not a measurement.

Assumptions, stated so they can be argued with:

* A trace is a sequence of read() calls on one file, in pages (4 KiB).
  Five access patterns, as KML's workloads: sequential (1..32-page reads),
  random (1..4-page reads anywhere in a 1 GiB file), strided (1..2-page
  reads every 4..24 pages), reverse sequential, and a mix of two
  interleaved sequential streams. Each window is 64 reads of one pattern;
  a workload keeps its pattern for 8 windows, then switches at random.
* Device cost: each read I/O costs 100 us plus 2.5 us per page (an NVMe
  flash device). The page cache is large enough for one window and is
  emptied between windows.
* A read that finds a page of its range not cached stalls the application
  (a "sync miss"); the policy decides how many pages that I/O fetches.
  Readahead I/O issued in the background (async readahead, triggered when
  the application reaches a marker page) costs device time but no stall.
* The decision (as in KML): the readahead window for the next window of
  reads, one of RA_CLASSES, chosen from the features of the current window.
  The label is the class with the least application wait time.

The metric for a policy over a trace: stalls (sync I/Os the application
waits for), pages read, device time, and the application's wait time
(sum of its sync I/Os' cost).
"""
from __future__ import annotations

import math

import numpy as np

PAGES_IN_FILE = 1 << 18  # 1 GiB
READS_PER_WINDOW = 64
IO_US, PAGE_US = 100.0, 2.5
PATTERNS = ("sequential", "random", "strided", "reverse", "interleaved")
#: readahead size classes (pages) the model chooses between
RA_CLASSES = (1, 8, 32, 128)
N_FEATURES = 5
FEATURES = ("mean_req_pages", "mean_abs_delta", "std_delta", "seq_permille", "fwd_near_permille")
#: each delta between consecutive reads is clamped to +-DELTA_MAX pages (64 GiB),
#: so that the kernel consumer's s64 sums cannot overflow (RA_DELTA_MAX in
#: consumer/readahead_hook.c); the traces here never reach it (2^18-page file)
DELTA_MAX = 1 << 24


def gen_window(pattern: str, rng: np.random.Generator):
    """64 reads (start page, n pages) of one pattern."""
    n = READS_PER_WINDOW
    if pattern == "sequential":
        sz = rng.integers(1, 33, n) if rng.random() < 0.5 else np.full(n, rng.integers(1, 33))
        start = rng.integers(0, PAGES_IN_FILE // 2) + np.concatenate([[0], np.cumsum(sz)[:-1]])
    elif pattern == "random":
        sz = rng.integers(1, 5, n)
        start = rng.integers(0, PAGES_IN_FILE - 8, n)
    elif pattern == "strided":
        stride = rng.integers(4, 25)
        sz = np.full(n, rng.integers(1, 3))
        start = rng.integers(0, PAGES_IN_FILE // 2) + stride * np.arange(n)
    elif pattern == "reverse":
        sz = np.full(n, rng.integers(1, 9))
        start = rng.integers(PAGES_IN_FILE // 2, PAGES_IN_FILE - 64) - np.cumsum(sz)
    else:  # two sequential streams, read alternately
        sz = np.full(n, rng.integers(1, 17))
        base = rng.integers(0, PAGES_IN_FILE // 2, 2)
        k = np.arange(n) // 2
        start = base[np.arange(n) % 2] + k * sz
    return np.stack([start, sz], axis=1).astype(np.int64)


def window_features(reads: np.ndarray) -> np.ndarray:
    """What a readahead hook can keep per file, see FEATURES. Integer
    arithmetic only (floor divisions, integer square root), deltas clamped
    to +-DELTA_MAX, exactly as the kernel consumer (consumer/readahead_hook.c)
    computes it."""
    start = [int(v) for v in reads[:, 0]]
    sz = [int(v) for v in reads[:, 1]]
    n = len(start)
    delta = [min(max(start[i + 1] - start[i], -DELTA_MAX), DELTA_MAX) for i in range(n - 1)]
    m = n - 1
    s1 = sum(delta)
    s2 = sum(d * d for d in delta)
    seq = sum(1 for i in range(m) if start[i + 1] == start[i] + sz[i])
    near = sum(1 for d in delta if 0 < d <= 64)
    var = (m * s2 - s1 * s1) // (m * m)  # population variance, floored
    return np.array([
        sum(sz) // n,
        min(sum(abs(d) for d in delta) // m, 1 << 20),
        min(math.isqrt(var), 1 << 20),
        seq * 1000 // m,
        near * 1000 // m,
    ], dtype=np.int64)


def cost_fixed(reads: np.ndarray, ra: int) -> dict:
    """The policy the model drives: every sync miss fetches max(request, ra)
    pages; when the application reaches the middle of that window, the next
    ra pages are read asynchronously (as ondemand does with its marker
    page), without the ramp-up. ra = 1 disables readahead."""
    cached: set[int] = set()
    marker: dict[int, int] = {}  # marker page -> end of the window it belongs to
    stalls = pages = 0
    wait = dev = 0.0
    for s, n in reads:
        s, n = int(s), int(n)
        for idx in range(s, s + n):
            if idx in cached:
                end = marker.pop(idx, None)
                if end is not None:
                    new = [p for p in range(end, end + ra) if p not in cached]
                    cached.update(new)
                    marker[end + ra // 2] = end + ra
                    pages += len(new)
                    dev += IO_US + PAGE_US * len(new)
                continue
            cnt = max(s + n - idx, ra)
            new = [p for p in range(idx, idx + cnt) if p not in cached]
            cached.update(new)
            if ra > 1:
                marker[idx + cnt - ra // 2] = idx + cnt
            stalls += 1
            pages += len(new)
            wait += IO_US + PAGE_US * len(new)
            dev += IO_US + PAGE_US * len(new)
    return {"stalls": stalls, "pages": pages, "wait_us": wait, "device_us": dev}


def _init_ra_size(size: int, mx: int) -> int:
    """get_init_ra_size() of mm/readahead.c (Linux 6.1)."""
    newsize = 1 << (size - 1).bit_length()
    if newsize <= mx // 32:
        return newsize * 4
    if newsize <= mx // 4:
        return newsize * 2
    return mx


def _next_ra_size(cur: int, mx: int) -> int:
    """get_next_ra_size() of mm/readahead.c (Linux 6.1)."""
    if cur < mx // 16:
        return 4 * cur
    if cur <= mx // 2:
        return 2 * cur
    return mx


def cost_ondemand(reads: np.ndarray, ra_pages: int = 32) -> dict:
    """The kernel's ondemand readahead (mm/readahead.c, 6.1), simplified to
    the paths these traces exercise: initial window on a sequential or
    file-start miss, window ramp-up (x4, then x2, up to ra_pages = 128 KiB
    by default) when the PG_readahead marker page is hit, and "read as is"
    for a random miss. Not modelled: context readahead (interleaved streams
    look random to this model, so it is pessimistic there), mmap and
    thrashing detection.
    """
    cached: set[int] = set()
    marker: set[int] = set()
    ra_start = ra_size = ra_async = 0
    prev_end = -1  # page after the previous read (file->f_ra.prev_pos)
    stalls = pages = 0
    wait = dev = 0.0

    def fetch(first: int, cnt: int, mark_at: int | None) -> int:
        new = [p for p in range(first, first + cnt) if p not in cached]
        cached.update(new)
        if mark_at is not None:
            marker.add(mark_at)
        return len(new)

    for s, n in reads:
        s, n = int(s), int(n)
        for idx in range(s, s + n):
            if idx in cached:
                if idx in marker:  # async readahead: ramp the window up
                    marker.discard(idx)
                    ra_start += ra_size
                    ra_size = _next_ra_size(ra_size, ra_pages)
                    ra_async = ra_size
                    got = fetch(ra_start, ra_size, ra_start)
                    pages += got
                    dev += IO_US + PAGE_US * got
                continue
            req = s + n - idx
            if idx == 0 or idx == prev_end or idx == prev_end - 1 or idx == ra_start + ra_size:
                ra_start = idx
                ra_size = _init_ra_size(req, ra_pages)
                ra_async = ra_size - req if ra_size > req else ra_size
                cnt = max(ra_size, req)
                got = fetch(idx, cnt, ra_start + ra_size - ra_async)
            else:  # standalone random read: read as is
                got = fetch(idx, req, None)
            stalls += 1
            pages += got
            wait += IO_US + PAGE_US * got
            dev += IO_US + PAGE_US * got
        prev_end = s + n
    return {"stalls": stalls, "pages": pages, "wait_us": wait, "device_us": dev}


def best_class(reads: np.ndarray) -> int:
    """Index in RA_CLASSES of the fixed window with the least wait time."""
    return int(np.argmin([cost_fixed(reads, ra)["wait_us"] for ra in RA_CLASSES]))


def simulate(n_windows: int, rng: np.random.Generator):
    """Traces of n_windows windows: features of window i (from its reads) and
    the reads of window i + 1 (the one the decision applies to)."""
    windows, pats = [], []
    pattern = PATTERNS[0]
    for i in range(n_windows + 1):
        if i % 8 == 0:
            pattern = PATTERNS[rng.integers(len(PATTERNS))]
        windows.append(gen_window(pattern, rng))
        pats.append(pattern)
    x = np.stack([window_features(w) for w in windows[:-1]])
    return x, windows[1:], pats[1:]
