"""Lazy opening of huge uncompressed volumes: time to the first slice and memory growth.

    .venv/bin/python benchmarks/bench_lazy.py [--gb 4] [--viewer] [--keep DIR]

Writes a ``--gb`` GB int16 volume as raw ``.nrrd``, ``.nii`` and ``.mha`` into a
temporary folder (written slab by slab, never held in memory), then measures in a
fresh Python process per case:

* ``napari_medio.read`` -> the middle axial slice as a NumPy array: seconds and
  resident memory growth (RSS, MB), next to nibabel's own lazy proxy for the .nii;
* with ``--viewer`` (run under ``xvfb-run``): ``viewer.open`` through the npe2
  reader to the first drawn frame (a canvas screenshot), and its memory growth,
  in a cold session (the first layer pays napari's unit registry and our module
  imports, about 2-3 s once) and in a warm one.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CASE = r"""
import json, os, sys, time, resource
import numpy as np

def rss_mb():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

path, mode = sys.argv[1], sys.argv[2]
if mode.startswith("viewer"):
    import napari
    viewer = napari.Viewer(show=True)
    viewer.screenshot(canvas_only=True, flash=False)  # warm up GL before measuring
    if mode == "viewer-warm":  # one-time costs of a session: napari's unit registry, our modules
        from napari_medio.plugin.layers import to_layer_data, _load_converters
        _load_converters()
        viewer.add_image(np.zeros((2, 2, 2), np.int16), units="mm")
        viewer.layers.clear()
import napari_medio
if mode == "medio-warm":  # module imports done before timing (a session that already read a file)
    from napari_medio.core import registry
    import nibabel, SimpleITK, nrrd
    registry.load_providers()
    mode = "medio"
if mode == "nibabel":
    import nibabel
before = rss_mb()
t0 = time.perf_counter()
if mode == "medio":
    [vol] = napari_medio.read(path)
    mid = np.asarray(vol.array[vol.array.shape[0] // 2])
elif mode == "nibabel":
    img = nibabel.load(path)
    mid = np.asarray(img.dataobj[:, :, img.shape[2] // 2])
else:
    [layer] = viewer.open(path, plugin="napari-medio")
    viewer.dims.set_point(0, float(viewer.dims.range[0].start + viewer.dims.range[0].stop) / 2)
    viewer.screenshot(canvas_only=True, flash=False)
t1 = time.perf_counter()
print(json.dumps({"seconds": t1 - t0, "rss_growth_mb": rss_mb() - before}))
"""


def _write_volume(folder: Path, gb: float) -> dict[str, Path]:
    import napari_medio
    from napari_medio.core.geometry import Geometry
    from napari_medio.core.volume import Volume

    n = 512
    nz = max(1, int(gb * 2**30 / (n * n * 2)))
    shape = (nz, n, n)
    raw = np.memmap(folder / "source.raw", dtype="<i2", mode="w+", shape=shape)
    for z in range(0, nz, 64):  # a ramp with a slice marker, written slab by slab
        block = np.empty((min(64, nz - z), n, n), dtype="<i2")
        block[:] = (np.arange(z, z + block.shape[0]) % 2000)[:, None, None]
        raw[z:z + block.shape[0]] = block
    raw.flush()
    vol = Volume(np.memmap(folder / "source.raw", dtype="<i2", mode="r", shape=shape),
                 Geometry([0.5, 0.5, 0.5], [0, 0, 0], np.eye(3)), name="big")
    out = {}
    for ext in (".nrrd", ".nii", ".mha"):
        path = folder / f"big{ext}"
        napari_medio.write(vol, path, **({} if ext == ".nii" else {"compress": False}))
        out[ext] = path
    (folder / "source.raw").unlink()
    return out


def _run(path: Path, mode: str) -> dict:
    env = dict(os.environ)
    cmd = [sys.executable, "-c", CASE, str(path), mode]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gb", type=float, default=4.0)
    ap.add_argument("--viewer", action="store_true", help="also time napari's first draw (needs a display)")
    ap.add_argument("--keep", metavar="DIR", help="write the files here and keep them")
    args = ap.parse_args()
    tmp = None
    if args.keep:
        folder = Path(args.keep)
        folder.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="medio-lazy-")
        folder = Path(tmp.name)
    t0 = time.perf_counter()
    existing = {ext: folder / f"big{ext}" for ext in (".nrrd", ".nii", ".mha")}
    if args.keep and all(p.exists() for p in existing.values()):
        files = existing  # reuse the files a previous --keep run wrote
    else:
        files = _write_volume(folder, args.gb)
        print(f"wrote {args.gb:g} GB x 3 files in {time.perf_counter() - t0:.1f} s")
    rows = []
    for ext, path in files.items():
        rows.append((f"napari_medio.read {ext} -> middle slice (cold process)", _run(path, "medio")))
        rows.append((f"napari_medio.read {ext} -> middle slice (modules loaded)", _run(path, "medio-warm")))
        if ext == ".nii":
            rows.append(("nibabel proxy .nii -> middle slice", _run(path, "nibabel")))
        if args.viewer:
            rows.append((f"napari viewer.open {ext} -> first draw (cold session)", _run(path, "viewer-cold")))
            rows.append((f"napari viewer.open {ext} -> first draw (warm session)", _run(path, "viewer-warm")))
    for label, r in rows:
        if "error" in r:
            print(f"{label:62s} ERROR {r['error']}")
        else:
            print(f"{label:62s} {r['seconds']:7.3f} s   RSS +{r['rss_growth_mb']:7.1f} MB")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
