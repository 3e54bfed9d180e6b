"""Viewer benchmark: a 300-slice CT DICOM folder in napari, napari-medio next to napari's builtin reader.

usage: xvfb-run -a -s "-screen 0 1280x1024x24" python benchmarks/bench_viewer.py [--folder DIR]
       [--slices 300] [--repeat 3] [--steps 20] [--json]

Generates 300 slices of 512x512 int16 CT with shuffled names
(``scripts/make_ct_series.py``) unless ``--folder`` is given, warms the page
cache, then for each reader, ``--repeat`` times in one process, interleaved:

* **open to first draw**: a new shown viewer, ``viewer.open(folder, plugin=...)``
  and the first frame rendered (``viewer.screenshot``, which draws the canvas);
* **scroll step**: ``--steps`` single-slice steps of the slider through the middle
  of the volume, each followed by a rendered frame (median step).

Readers: ``napari-medio`` (geometry, window, one layer per series) and napari's
builtin ``napari`` reader (imageio's DICOM plugin stacking the folder, lazily,
without geometry).  Best of the repeats; ratios are napari-medio / builtin.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MAKE = HERE.parent / "scripts" / "make_ct_series.py"
READERS = (("napari-medio", "napari-medio"), ("napari builtin", "napari"))


def _make_folder(slices: int) -> str:
    folder = os.path.join(tempfile.gettempdir(), f"medio-bench-viewer-ct{slices}")
    if len(glob.glob(os.path.join(folder, "*.dcm"))) != slices:
        make = MAKE if MAKE.exists() else HERE.parent.parent / "shared" / "tools" / "make_ct_series.py"
        subprocess.run([sys.executable, str(make), folder, "--slices", str(slices)], check=True,
                       stdout=subprocess.DEVNULL)
    for f in glob.glob(os.path.join(folder, "*")):  # warm the page cache
        with open(f, "rb") as fh:
            while fh.read(1 << 20):
                pass
    return folder


def _draw(viewer) -> None:
    viewer.screenshot(canvas_only=True, flash=False)


def run_once(folder: str, plugin: str, steps: int) -> dict:
    """Seconds from ``viewer.open`` to the first frame, and per scroll step (median), for one reader."""
    import napari

    viewer = napari.Viewer(show=True)
    try:
        t0 = time.perf_counter()
        layers = viewer.open(folder, plugin=plugin)
        _draw(viewer)
        first = time.perf_counter() - t0
        axis = viewer.dims.not_displayed[0]
        n = viewer.dims.nsteps[axis]
        start = max(0, n // 2 - steps // 2)
        times = []
        for i in range(start, min(n, start + steps)):
            t = time.perf_counter()
            viewer.dims.set_current_step(axis, i)
            _draw(viewer)
            times.append(time.perf_counter() - t)
        shape = tuple(layers[0].data.shape) if layers else ()
        return {"open_to_first_draw": first, "scroll_step": statistics.median(times), "layers": len(layers),
                "shape": shape, "scale": [float(s) for s in layers[0].scale] if layers else []}
    finally:
        viewer.close()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folder")
    ap.add_argument("--slices", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    folder = a.folder or _make_folder(a.slices)
    results: dict[str, list[dict]] = {name: [] for name, _ in READERS}
    for _ in range(a.repeat):
        for name, plugin in READERS:
            results[name].append(run_once(folder, plugin, a.steps))
    best = {name: {k: min(r[k] for r in runs) for k in ("open_to_first_draw", "scroll_step")} | {
        k: runs[0][k] for k in ("layers", "shape", "scale")} for name, runs in results.items()}
    medio, builtin = best["napari-medio"], best["napari builtin"]
    ratios = {k: medio[k] / builtin[k] for k in ("open_to_first_draw", "scroll_step")}
    if a.json:
        json.dump({"folder": folder, "best": best, "ratios": ratios}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    print(f"{folder}: best of {a.repeat}, {a.steps} scroll steps")
    print(f"{'reader':16s} {'open -> first draw':>20s} {'scroll step':>12s}  layer")
    for name, b in best.items():
        print(f"{name:16s} {b['open_to_first_draw']:19.3f}s {b['scroll_step'] * 1000:10.1f}ms  "
              f"{b['shape']} scale {b['scale']}")
    print(f"{'medio / builtin':16s} {ratios['open_to_first_draw']:19.2f}x {ratios['scroll_step']:11.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
