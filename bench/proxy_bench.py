#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""make bench-proxy: boot the guest once, measure the proxy's round trip
against a pipe ping-pong floor and the throughput batching gives, print a
table for docs/proxy.md. A benchmark, not a test: it asserts nothing."""

import argparse
import json
import sys

from ml_lib.proxy import boot, models


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--rounds", type=int, default=2000)
    args = p.parse_args()
    build = boot.build_modules()
    work = build / "bench"
    work.mkdir(exist_ok=True)
    ident = models.identity_dir(work / "ident")
    out = work / "bench.json"
    out.unlink(missing_ok=True)
    cp = boot.boot(f"cd {boot.TOP} && {sys.executable} -m ml_lib.proxy.guest bench --build {build} "
                   f"--ident {ident} --rounds {args.rounds} --out {out}", rwdir=work, timeout=1800)
    if not out.exists():
        sys.exit(f"bench failed:\n{(cp.stdout + cp.stderr)[-2000:]}")
    r = json.loads(out.read_text())
    with open(args.out, "w") as f:
        json.dump(r, f, indent=1)
    print(f"| round trip (QEMU TCG, {r['rounds']} rounds) | median µs | p99 µs | median / floor |")
    print("|---|---|---|---|")
    for k, label in (("pipe_floor", "pipe ping-pong, 2 processes (floor)"),
                     ("proxy_transport", "kernel → /dev/ml_lib → echo daemon → kernel"),
                     ("mlproxyd_identity", "kernel → mlproxyd (onnxruntime identity) → kernel")):
        v = r[k]
        print(f"| {label} | {v['median_us']:.0f} | {v['p99_us']:.0f} | "
              f"{v['median_us'] / r['pipe_floor']['median_us']:.2f}× |")
    mt = r["model_time_identity"]
    print(f"| onnxruntime alone (identity, 1 row, in mlproxyd's Model) | {mt['median_us']:.0f} | "
          f"{mt['p99_us']:.0f} | {mt['median_us'] / r['pipe_floor']['median_us']:.2f}× |")
    print(f"\nmlproxyd minus model time: {r['ratio_mlproxyd_minus_model_median']:.2f}× the floor")
    a, s = r["throughput_8x1000_async"], r["throughput_1x1000_sync"]
    print(f"\nthroughput: 1 thread sync {s['req_per_s']:.0f} req/s; 8 threads async "
          f"{a['req_per_s']:.0f} req/s ({r['batching_speedup']:.1f}×, batched reads); "
          f"daemon: {r['daemon']['stderr'][-1] if r['daemon']['stderr'] else ''}")


if __name__ == "__main__":
    main()
