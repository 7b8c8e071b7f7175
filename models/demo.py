#!/usr/bin/env python3
"""`make demo`: from a committed example to decisions made inside a booted
kernel, compared with Python, then a model too large for the kernel
answering through the user-space proxy.

1. export models/linnos/model.pt2 with mlexport (and check the result is
   byte-identical to the committed models/linnos/export/);
2. build ml_lib.ko, the model's module linnos_ml.ko and the example
   consumer linnos_hook.ko against Debian's headers;
3. boot Debian's kernel (virtme-ng, QEMU TCG), load the three modules,
   run the held-out inputs through the registered model, and let the
   consumer replay its held-out I/O trace;
4. print input, in-kernel prediction, Python prediction, match;
5. recreate the 4.3 M-parameter linnos_wide, export it with --target auto
   (routed to user space) and run held-out inputs through /dev/ml_lib and
   mlproxyd.
"""
from __future__ import annotations

import filecmp
import hashlib
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / "linnos"))

import dataset as linnos_data  # noqa: E402
from example_kit import REPO, exported_graph, run_int, run_mlexport  # noqa: E402

OUT = REPO / "build" / "demo"
T0 = time.monotonic()
STEPS = 6


def step(i: int, what: str) -> None:
    print(f"[{i}/{STEPS} {time.monotonic() - T0:5.1f} s] {what}", flush=True)


def build_consumer(export_dir: Path, ml_lib_ko: Path) -> Path:
    """linnos_hook.ko from models/linnos/consumer, beside the fresh export."""
    from ml_lib import kernel
    tree = OUT / "kbuild"
    shutil.rmtree(tree, ignore_errors=True)
    shutil.copytree(REPO / "include", tree / "include")
    shutil.copytree(export_dir, tree / "models/linnos/export")
    shutil.copytree(HERE / "linnos/consumer", tree / "models/linnos/consumer",
                    ignore=shutil.ignore_patterns("*.py"))
    cdir = tree / "models/linnos/consumer"
    ver = kernel.kernel_version()
    r = subprocess.run(["make", "-s", "-C", f"/lib/modules/{ver}/build", f"M={cdir}", "W=1",
                        f"KBUILD_EXTRA_SYMBOLS={ml_lib_ko.parent / 'Module.symvers'}", "modules"],
                       capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"demo: building linnos_hook.ko failed:\n{r.stdout}{r.stderr}")
    return cdir / "linnos_hook.ko"


def kernel_part() -> bool:
    from ml_lib import kernel
    step(1, "mlexport models/linnos/model.pt2 --calib calib.npy --argmax -> build/demo/linnos")
    export_dir = run_mlexport(HERE / "linnos", OUT / "linnos", linnos_data.EXPORT)
    committed = HERE / "linnos" / "export"
    same = all(filecmp.cmp(p, export_dir / p.name, shallow=False) for p in committed.iterdir())
    print(f"        export is {'byte-identical to' if same else 'DIFFERENT from'} {committed.relative_to(REPO)}/")

    step(2, "building ml_lib.ko, linnos_ml.ko (the model) and linnos_hook.ko (the consumer)")
    # own build folders: other runs may be rebuilding the default ones
    ml_lib_ko = kernel.build_ml_lib_module(OUT / "kmod")
    model_ko = kernel.build_model_module(export_dir, ml_lib_ko, OUT / "kmod-model")
    hook_ko = build_consumer(export_dir, ml_lib_ko)

    step(3, "booting Debian's kernel (QEMU TCG, ~30 s): insmod, infer on held-out inputs")
    held = np.load(HERE / "linnos" / "heldout.npy")
    res = kernel.boot([ml_lib_ko, model_ko, hook_ko],
                      [kernel.Job("linnos", raw=held, unload=False)])
    if 0 in res.errors:
        sys.exit(f"demo: inference in the kernel failed: {res.errors[0]}")
    in_kernel = res.outputs[0][:, 0]
    python = run_int(exported_graph(export_dir, "linnos"), held)[:, 0]

    step(4, "in-kernel vs Python (ml_lib reference) on held-out reads of the test period")
    truth = np.load(HERE / "linnos" / "heldout_latency.npy")
    label = {0: "fast", 1: "SLOW"}
    print(f"  {'queue_len':>9} {'lat_0 us':>8} {'qlen_0':>6} | {'kernel':>6} {'python':>6} match"
          f" | actual latency")
    for row, k, p, t in zip(held, in_kernel, python, truth):
        print(f"  {row[0]:9d} {row[1]:8d} {row[16]:6d} | {label[int(k)]:>6} {label[int(p)]:>6} "
              f"{'yes' if k == p else ' NO'}   | {t:6d} us "
              f"({'slow' if t > linnos_data.SLOW_US else 'fast'})")
    n_same = int((in_kernel == python).sum())
    blob_sha = hashlib.sha256((export_dir / "linnos.mlb").read_bytes()).hexdigest()
    same_model = res.sha256.get(0) == blob_sha
    print(f"  the kernel's sha256 of the tables it ran: {res.sha256.get(0)}\n"
          f"  sha256 of the exported linnos.mlb:        {blob_sha} "
          f"({'same model' if same_model else 'DIFFERENT MODEL'})")
    hook = [ln.split("linnos_hook: ", 1)[1] for ln in res.dmesg.splitlines()
            if "linnos_hook:" in ln and "reads replayed" in ln]
    print(f"  consumer linnos_hook.ko: {hook[0] if hook else 'NO SUMMARY IN THE KERNEL LOG'}")
    eq = re.search(r"(\d+)/(\d+) equal", hook[0]) if hook else None
    ok = bool(eq) and eq.group(1) == eq.group(2)
    replay = f"{eq.group(1)}/{eq.group(2)}" if eq else "no"
    print(f"SUMMARY: {n_same}/{len(held)} held-out inputs give the same prediction in the kernel "
          f"as in Python{' (bit-exact)' if n_same == len(held) else ' - MISMATCH'}; the "
          f"consumer's replay matched Python on {replay} reads")
    return ok and n_same == len(held) and same_model


WIDE_MODEL = OUT / "linnos_wide_model"
WIDE_EXPORT = OUT / "linnos_wide"


def start_wide() -> subprocess.Popen:
    """Recreate and export linnos_wide in the background while the first
    guest boots (both fit on this machine's two cores)."""
    code = (f"import sys; sys.path[:0] = [{str(HERE)!r}, {str(HERE / 'linnos_wide')!r}, "
            f"{str(HERE / 'linnos')!r}]\n"
            "import train, dataset\nfrom pathlib import Path\n"
            "from example_kit import run_mlexport\n"
            f"train.main(Path({str(WIDE_MODEL)!r}))\n"
            f"run_mlexport(Path({str(HERE / 'linnos_wide')!r}), Path({str(WIDE_EXPORT)!r}), "
            "{'name': 'linnos_wide', 'features': dataset.EXPORT['features'], "
            "'args': ['--target', 'auto']}, "
            f"model=Path({str(WIDE_MODEL / 'model.pt2')!r}), "
            f"calib=Path({str(WIDE_MODEL / 'calib.npy')!r}))\n")
    shutil.rmtree(WIDE_EXPORT, ignore_errors=True)
    log = open(OUT / "linnos_wide.log", "w")
    return subprocess.Popen([sys.executable, "-c", code], stdout=log, stderr=subprocess.STDOUT)


def proxy_part(wide: subprocess.Popen) -> bool:
    step(5, "linnos_wide (4.27 M parameters): recreated and exported with --target auto "
         "(in the background)")
    if wide.wait() != 0:
        print("PROXY: recreating/exporting linnos_wide failed:\n"
              + (OUT / "linnos_wide.log").read_text()[-2000:])
        return False
    print("        " + next(ln for ln in (OUT / "linnos_wide.log").read_text().splitlines()
                             if ln.startswith("linnos_wide:")))
    wdir, udir = WIDE_MODEL, WIDE_EXPORT
    import json
    man = json.loads((udir / "linnos_wide.json").read_text())
    print(f"        --target auto chose: {man.get('target', man.get('format'))}")
    step(6, "booting again: kernel caller -> /dev/ml_lib -> mlproxyd (onnxruntime) -> kernel")
    try:
        from ml_lib import proxy
    except ImportError:
        print("PROXY: ml_lib.proxy is not available in this checkout; proxy part not run")
        return False
    x = np.load(wdir / "heldout.npy")
    try:
        got = np.asarray(proxy.run_exported(udir, x.astype(np.float64)))
    except Exception as e:  # report, do not hide: the summary says it failed
        print(f"PROXY: the proxy run failed: {type(e).__name__}: {str(e).splitlines()[0]}")
        return False
    import torch
    m = torch.export.load(str(wdir / "model.pt2")).module()
    with torch.no_grad():
        ref = m(torch.tensor(x, dtype=torch.float32)).numpy()
    truth = np.load(wdir / "heldout_latency.npy")
    print(f"  {'queue_len':>9} {'lat_0 us':>8} | {'proxy answer':>12} {'python float':>12} match"
          " | actual latency")
    for row, g, r, t in zip(x, got.argmax(1), ref.argmax(1), truth):
        print(f"  {row[0]:9d} {row[1]:8d} | {'SLOW' if g else 'fast':>12} "
              f"{'SLOW' if r else 'fast':>12} {'yes' if g == r else ' NO'}   | {t:6d} us")
    n = int((got.argmax(1) == ref.argmax(1)).sum())
    print(f"PROXY SUMMARY: {n}/{len(x)} answers through /dev/ml_lib + mlproxyd equal the float "
          "model's decision")
    return n == len(x)


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    wide = start_wide()
    try:
        ok = kernel_part()
    except BaseException:
        wide.kill()
        raise
    ok = proxy_part(wide) and ok
    print(f"demo finished in {time.monotonic() - T0:.0f} s: {'all matched' if ok else 'see above'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
