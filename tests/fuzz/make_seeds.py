"""Seed corpus for tests/fuzz/fuzz_blob.c: valid blobs written by ml_lib.blob.

The benchmark models plus random graphs over every op (ml_lib.randgraph), so
the fuzzer starts from blobs that parse and reach every op's validator and
kernel. Usage: make_seeds.py OUT_DIR [N_RANDOM]
"""
from __future__ import annotations

import sys
from pathlib import Path

from ml_lib.blob import write_blob
from ml_lib.randgraph import random_graph

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import models  # noqa: E402  (bench/models.py, not a package)


def main() -> int:
    out = Path(sys.argv[1])
    n_random = int(sys.argv[2]) if len(sys.argv) > 2 else 48
    out.mkdir(parents=True, exist_ok=True)
    n = 0
    for name in models.MODELS:
        (out / f"{models.build(name).name}.mlb").write_bytes(write_blob(models.build(name)))
        n += 1
    for seed in range(n_random):
        blob = write_blob(random_graph(seed, max_ops=5))
        if len(blob) <= 65536:  # the fuzzer's -max_len
            (out / f"rand{seed}.mlb").write_bytes(blob)
            n += 1
    print(f"fuzz seeds: {n} blobs in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
