"""Scene save/open: one .mrb bundle vs the same layers saved to a folder (.mrml + files), side by side.

A 512x512x300 int16 CT (smooth anatomy-like field plus noise), its 3-segment
segmentation on the same grid and a ~80k-triangle model.  Measures, best of N:

* save to a folder (``save_scene(..., "scene.mrml")``) vs save to ``scene.mrb``;
* open the folder scene vs open the ``.mrb`` (extraction included), every voxel
  and vertex loaded.

Targets: .mrb save <= 1.15x folder save; .mrb open <= 1.15x folder open.
Run: ``.venv/bin/python benchmarks/bench_scene.py [--repeat N] [--shape 300 512 512]``.
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from napari_medio.core.geometry import Geometry
from napari_medio.core.model import triangle_model
from napari_medio.core.segmentation import Segmentation
from napari_medio.core.volume import Volume
from napari_medio.scene.loader import read_scene
from napari_medio.scene.mrb import safe_extract
from napari_medio.scene.save import save_scene


def make_objects(shape):
    rng = np.random.default_rng(0)
    k, j, i = np.ogrid[: shape[0], : shape[1], : shape[2]]
    c = [s / 2 for s in shape]
    r = np.sqrt(((k - c[0]) / shape[0]) ** 2 + ((j - c[1]) / shape[1]) ** 2 + ((i - c[2]) / shape[2]) ** 2)
    ct = np.where(r < 0.45, 40, -1000).astype(np.int16)
    ct += np.where(r < 0.2, 300, 0).astype(np.int16)
    ct += rng.normal(0, 20, shape).astype(np.int16)
    geometry = Geometry([0.7, 0.7, 1.0], [-180.0, -180.0, -150.0], np.eye(3))
    vol = Volume(ct, geometry, name="CT")
    lab = np.zeros(shape, np.uint8)
    lab[r < 0.45] = 1
    lab[r < 0.2] = 2
    lab[(r < 0.1) & (i > shape[2] // 2)] = 3
    seg = Segmentation.from_labelmap(Volume(lab, geometry, kind="labelmap"), name="Segmentation")
    # a UV sphere of ~80k triangles
    n_lat, n_lon = 200, 200
    th = np.linspace(0, np.pi, n_lat)
    ph = np.linspace(0, 2 * np.pi, n_lon, endpoint=False)
    tt, pp = np.meshgrid(th, ph, indexing="ij")
    pts = np.c_[np.sin(tt).ravel() * np.cos(pp).ravel(), np.sin(tt).ravel() * np.sin(pp).ravel(),
                np.cos(tt).ravel()] * 60.0
    idx = np.arange(n_lat * n_lon).reshape(n_lat, n_lon)
    a, b = idx[:-1, :], np.roll(idx, -1, axis=1)[:-1, :]
    c2, d = idx[1:, :], np.roll(idx, -1, axis=1)[1:, :]
    tris = np.r_[np.c_[a.ravel(), c2.ravel(), b.ravel()], np.c_[b.ravel(), c2.ravel(), d.ravel()]]
    model = triangle_model(pts, tris, name="Model")
    return [vol, seg, model]


def load_all(objs):
    for o in objs:
        for attr in ("array", "points"):
            v = getattr(o, attr, None)
            if v is not None:
                np.asarray(v).sum()


def best(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--shape", type=int, nargs=3, default=[300, 512, 512])
    args = ap.parse_args()
    objs = make_objects(tuple(args.shape))
    tmp = Path(tempfile.mkdtemp(prefix="bench-scene-"))
    try:
        folder = tmp / "folder" / "scene.mrml"
        bundle = tmp / "bundle" / "scene.mrb"
        folder.parent.mkdir()
        bundle.parent.mkdir()
        save_scene(objs, folder)  # warm up (imports, page cache)
        save_scene(objs, bundle)
        rows = []
        t_fs, t_bs, t_fo, t_bo, t_x = [], [], [], [], []
        for _ in range(args.repeat):  # interleaved so that machine load hits both alike
            t_fs.append(best(lambda: save_scene(objs, folder), 1))
            t_bs.append(best(lambda: save_scene(objs, bundle), 1))
            t_fo.append(best(lambda: load_all(read_scene(folder)), 1))
            t_bo.append(best(lambda: load_all(read_scene(bundle)), 1))
            out = tmp / "x"
            t_x.append(best(lambda out=out: safe_extract(bundle, out), 1))
            shutil.rmtree(out)
        fs, bs, fo, bo = min(t_fs), min(t_bs), min(t_fo), min(t_bo)
        size_f = sum(p.stat().st_size for p in folder.parent.iterdir())
        size_b = bundle.stat().st_size
        rows.append(("save to folder (.mrml + 3 files)", f"{fs:.3f} s", ""))
        rows.append(("save to .mrb", f"{bs:.3f} s", ""))
        rows.append(("... .mrb / folder", f"{bs / fs:.2f}x", "<= 1.15x"))
        rows.append(("open folder scene (all data loaded)", f"{fo:.3f} s", ""))
        rows.append(("open .mrb (extraction included)", f"{bo:.3f} s", ""))
        rows.append(("... .mrb / folder", f"{bo / fo:.2f}x", "<= 1.15x"))
        # Paired ratios (each repetition's .mrb time over the folder time measured just before it):
        # on a loaded machine their median is steadier than the ratio of two minima.
        r_save = sorted(b / f for b, f in zip(t_bs, t_fs))
        r_open = sorted(b / f for b, f in zip(t_bo, t_fo))
        rows.append(("save .mrb / folder, per repetition (sorted)", " ".join(f"{r:.2f}" for r in r_save), ""))
        rows.append(("... median", f"{r_save[len(r_save) // 2]:.2f}x", "<= 1.15x"))
        rows.append(("open .mrb / folder, per repetition (sorted)", " ".join(f"{r:.2f}" for r in r_open), ""))
        rows.append(("... median", f"{r_open[len(r_open) // 2]:.2f}x", "<= 1.15x"))
        rows.append(("extraction alone (part of the .mrb open), best", f"{min(t_x):.3f} s", ""))
        rows.append(("... extraction / folder open, median of pairs",
                     f"{sorted(x / f for x, f in zip(t_x, t_fo))[len(t_x) // 2]:.3f}", ""))
        rows.append(("bytes on disk: folder / .mrb", f"{size_f / 1e6:.1f} MB / {size_b / 1e6:.1f} MB", ""))
        print(f"shape {tuple(args.shape)}, best of {args.repeat}")
        print("| measure | result | target |\n|---|---|---|")
        for r in rows:
            print(f"| {r[0]} | {r[1]} | {r[2]} |")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
