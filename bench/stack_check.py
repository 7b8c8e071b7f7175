#!/usr/bin/env python3
"""Worst-case stack depth of the lib/ml call chains, from gcc's own data.

gcc -fstack-usage -fcallgraph-info=su writes, per object, a .ci call graph
(VCG text) whose nodes carry each function's frame size. This joins the
graphs of all objects, follows every call from each root and prints the
deepest chain. It fails when a --require'd root exceeds --limit, when any
chain recurses (the engine must not), when a frame is unbounded (VLA,
alloca) or when a call is indirect (its target's frame is unknown).

Calls to functions outside the engine are listed and counted as 0 bytes.
From a --require'd root only the --allow-external ones may be reached
(default memcpy, memset, memmove, __stack_chk_fail: frameless assembly or a
panic in the kernel); any other (a printk, an allocator, sort...) fails the
check, since its real stack use would be invisible.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

NODE = re.compile(r'node: \{ title: "([^"]+)" label: "([^"]*)"')
EDGE = re.compile(r'edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"')
SIZE = re.compile(r"\\n(\d+) bytes \(([a-z,]+)\)")


def load(ci_dir: Path):
    frames: dict[str, tuple[int, str]] = {}
    calls: dict[str, set[str]] = {}
    for ci in sorted(ci_dir.rglob("*.ci")):
        for line in ci.read_text().splitlines():
            if m := NODE.search(line):
                s = SIZE.search(m.group(2))
                if s:
                    frames[m.group(1)] = (int(s.group(1)), s.group(2))
            elif m := EDGE.search(line):
                calls.setdefault(m.group(1), set()).add(m.group(2))
    return frames, calls


def worst(root, frames, calls, errors, external):
    """(bytes, chain) of the deepest call chain from root (iterative DFS, cycle check)."""
    memo: dict[str, tuple[int, list[str]]] = {}
    on_path: set[str] = set()
    stack = [(root, False)]
    while stack:
        fn, done = stack.pop()
        if done:
            on_path.discard(fn)
            size, kind = frames[fn]
            if kind not in ("static", "dynamic,bounded"):
                errors.append(f"{fn}: frame is {kind} (VLA or alloca?)")
            best = (0, [])
            for callee in calls.get(fn, ()):
                if callee in memo and memo[callee][0] > best[0]:
                    best = memo[callee]
            memo[fn] = (size + best[0], [fn] + best[1])
            continue
        if fn in memo:
            continue
        on_path.add(fn)
        stack.append((fn, True))
        for callee in calls.get(fn, ()):
            if callee.startswith("__indirect_call"):
                errors.append(f"{fn}: indirect call")
            elif callee not in frames:
                external.add(callee)
            elif callee in on_path:
                errors.append(f"recursion: {fn} -> {callee}")
            elif callee not in memo:
                stack.append((callee, False))
    return memo[root]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("ci_dir", type=Path, help="folder with the .ci/.su files")
    ap.add_argument("--root", action="append", required=True)
    ap.add_argument("--require", action="append", default=[],
                    help="root whose chain must stay within --limit")
    ap.add_argument("--limit", type=int, default=512)
    ap.add_argument("--allow-external", action="append",
                    default=["memcpy", "memset", "memmove", "__stack_chk_fail"],
                    help="function outside the engine a --require'd root may call")
    a = ap.parse_args()

    frames, calls = load(a.ci_dir)
    if not frames:
        print(f"stack-check: no .ci files with frame sizes under {a.ci_dir}", file=sys.stderr)
        return 1
    errors: list[str] = []
    for root in a.require:
        if root not in a.root:
            errors.append(f"{root}: --require'd but not a --root")
    for root in a.root:
        if root not in frames:
            errors.append(f"{root}: not found in the call graph")
            continue
        external: set[str] = set()
        total, chain = worst(root, frames, calls, errors, external)
        detail = " -> ".join(f"{fn} ({frames[fn][0]})" for fn in chain)
        print(f"stack-check: {root}: worst chain {total} bytes: {detail}")
        if external:
            print(f"  calls outside the engine, counted as 0: {', '.join(sorted(external))}")
        if root in a.require and total > a.limit:
            errors.append(f"{root}: {total} bytes > limit {a.limit}")
        if root in a.require and (bad := sorted(external - set(a.allow_external))):
            errors.append(f"{root}: calls outside the engine with unknown stack use: "
                          f"{', '.join(bad)}")
    for e in errors:
        print(f"stack-check: FAIL: {e}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
