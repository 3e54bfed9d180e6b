"""Images at scale: the figures of docs/performance.md, side by side in one run.

    .venv/bin/python benchmarks/bench_io.py [--repeat 3] [--lazy-gb 0.5] [--big] [--skip-slow]
                                            [--seg-only | --gzip-only]

* compressed read/write of a 512x512x300 int16 CT (the voxels
  ``scripts/make_ct_series.py`` writes) as .nii.gz, gzip .nrrd and
  .seg.nrrd (a label map of it): napari-medio vs nibabel, pynrrd and SimpleITK,
  on files written by SimpleITK and by napari-medio, with the bytes read and
  inflated in one isal call ("limit");
* peak memory while loading the compressed CT (traced allocations and RSS
  high-water mark, each in a fresh process);
* lazy open of uncompressed .nrrd and .nii: time to the first slice in memory
  and resident memory growth (``--lazy-gb``, default 0.5 GB; ``--big`` makes
  4 GB files -- in a temporary folder, removed afterwards);
* OME-Zarr write (pyramid) and lazy open of the same CT.

``--seg-only`` runs just the .seg.nrrd rows (read and write; the label map is
``CT > 0``, uint8, as below); ``--gzip-only`` just the compressed read and write rows.
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import napari_medio  # noqa: E402
from napari_medio.commands.bench import best_time, read_timings, write_timings  # noqa: E402
from napari_medio.core.geometry import Geometry  # noqa: E402
from napari_medio.core.volume import Volume  # noqa: E402


def ct_volume(slices: int = 300, n: int = 512, seed: int = 0) -> Volume:
    """The voxels and geometry make_ct_series.py writes (rescaled to HU), without the DICOM detour."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:n, 0:n]
    disk = ((yy - n / 2) ** 2 + (xx - n / 2) ** 2) < (0.4 * n) ** 2
    a = np.empty((slices, n, n), np.int16)
    for k in range(slices):
        img = np.where(disk, 1040, 0).astype(np.int16) + rng.integers(0, 40, (n, n), dtype=np.int16)
        img[k % n, :] = 2000
        a[k] = img - 1024
    g = Geometry([500.0 / n, 500.0 / n, 1.25], [-250.0, -250.0, -300.0], np.eye(3))
    return Volume(a, g, name="ct")


_MEM_SCRIPT = r"""
import sys, json, resource, tracemalloc, time
import numpy as np, napari_medio
path = sys.argv[1]
napari_medio.read(path)  # warm imports and page cache
base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
import gc; gc.collect()
tracemalloc.start()
t0 = time.perf_counter()
v = napari_medio.read(path)[0]
a = np.asarray(v.array)
t = time.perf_counter() - t0
cur, peak = tracemalloc.get_traced_memory()
print(json.dumps({"traced_peak": peak, "nbytes": a.nbytes, "seconds": t}))
"""

_RSS_SCRIPT = r"""
import sys, json
import numpy as np, napari_medio
from napari_medio.core import registry
registry.load_providers()

def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0

def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0

path = sys.argv[1]
r0 = rss()
v = napari_medio.read(path)[0]
a = np.asarray(v.array)
print(json.dumps({"rss_growth": hwm() - r0, "nbytes": a.nbytes}))
"""

_LAZY_SCRIPT = r"""
import sys, json, time, os
import numpy as np, psutil
proc = psutil.Process()
t_import = time.perf_counter()
import napari_medio
from napari_medio.core import registry
from napari_medio.plugin.layers import to_layer_data
registry.load_providers()  # import every format module first: the figure is the open, not the imports
t_import = time.perf_counter() - t_import
path = sys.argv[1]
rss0 = proc.memory_info().rss
t0 = time.perf_counter()
v = napari_medio.read(path)[0]
first = np.array(v.array[v.array.shape[0] // 2])
t_first = time.perf_counter() - t0
rss1 = proc.memory_info().rss
[(data, kw, _)] = to_layer_data(v, multiscale_3d_limit=256 ** 3)
t_layer = time.perf_counter() - t0
rss2 = proc.memory_info().rss
print(json.dumps({"import_s": t_import, "first_slice_s": t_first, "rss_growth_first": rss1 - rss0,
                  "layer_data_s": t_layer, "rss_growth_layer": rss2 - rss0, "shape": list(v.shape),
                  "multiscale": bool(kw.get("multiscale"))}))
"""


def _subprocess_json(script: str, path: str) -> dict:
    out = subprocess.run([sys.executable, "-c", script, path], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _peer_files(vol: Volume, folder: Path, seg_only: bool = False) -> dict[str, Path]:
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(np.asarray(vol.array))
    img.SetSpacing(vol.geometry.spacing.tolist())
    img.SetOrigin(vol.geometry.origin.tolist())
    files = {}
    for ext in () if seg_only else (".nii.gz", ".nrrd"):
        p = folder / f"sitk{ext}"
        sitk.WriteImage(img, str(p), True)
        files[f"SimpleITK-written {ext}"] = p
    lab = vol.with_array((np.asarray(vol.array) > 0).astype(np.uint8) * 1, kind="labelmap")
    limg = sitk.GetImageFromArray(np.asarray(lab.array))
    p = folder / "sitk.seg.nrrd"
    sitk.WriteImage(limg, str(p), True)
    files["SimpleITK-written .seg.nrrd"] = p
    for ext in () if seg_only else (".nii.gz", ".nrrd"):
        p = folder / f"ours{ext}"
        napari_medio.write(vol, p)
        files[f"napari-medio-written {ext}"] = p
    p = folder / "ours.seg.nrrd"
    napari_medio.write(lab, p)
    files["napari-medio-written .seg.nrrd"] = p
    return files


def _ratio_line(label: str, t: dict) -> dict:
    peers = {k: v for k, v in t.items() if not k.startswith(("napari-medio", "limit")) and v == v}
    fk = min(peers, key=peers.get)
    lim = next((v for k, v in t.items() if k.startswith("limit")), float("nan"))
    row = {"file": label, "ours": t["napari-medio"], **{k: v for k, v in t.items() if k != "napari-medio"},
           "fastest_peer": fk, "vs_fastest": t["napari-medio"] / peers[fk], "vs_limit": t["napari-medio"] / lim}
    print(f"| {label} | " + " | ".join(f"{k} {v:.3f}" for k, v in t.items()) +
          f" | {row['vs_fastest']:.2f}x {fk} | {row['vs_limit']:.2f}x limit |")
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--lazy-gb", type=float, default=0.5, help="size of the lazy-open files (GB)")
    ap.add_argument("--big", action="store_true", help="4 GB lazy-open files")
    ap.add_argument("--skip-slow", action="store_true", help="skip pynrrd's level-9 writer")
    ap.add_argument("--seg-only", action="store_true", help="only the .seg.nrrd read and write rows")
    ap.add_argument("--gzip-only", action="store_true", help="only the compressed read and write rows")
    ap.add_argument("--json", metavar="OUT")
    args = ap.parse_args()
    results: dict = {"cpus": os.cpu_count()}
    vol = ct_volume()
    print(f"CT {vol.shape} int16 = {vol.array.nbytes / 1e6:.1f} MB, {os.cpu_count()} cores, load {os.getloadavg()}")
    with tempfile.TemporaryDirectory(prefix="medio-bench-io-") as tmp:
        folder = Path(tmp)
        files = _peer_files(vol, folder, args.seg_only)
        print("\n## read (best of", args.repeat, ")")
        results["read"] = [_ratio_line(label, read_timings(p, args.repeat)) for label, p in files.items()]
        print("\n## write")
        results["write"] = {}
        for ext in (".seg.nrrd",) if args.seg_only else (".nii.gz", ".nrrd", ".seg.nrrd"):
            w = write_timings(files[f"SimpleITK-written {ext}"], args.repeat,
                              skip=("pynrrd",) if args.skip_slow else ())
            peers = {k: v for k, v in w.items() if k != "napari-medio"}
            fk = min(peers, key=lambda k: peers[k]["seconds"])
            ours = w["napari-medio"]
            cells = " | ".join(f"{k} {v['seconds']:.3f} s {v['bytes'] / 1e6:.1f} MB" for k, v in w.items())
            print(f"| {ext} | " + cells
                  + f" | {ours['seconds'] / peers[fk]['seconds']:.2f}x {fk} time, "
                  f"{ours['bytes'] / peers[fk]['bytes']:.3f}x size | readback {ours.get('readback')} |")
            results["write"][ext] = w
        if args.seg_only or args.gzip_only:
            if args.json:
                Path(args.json).write_text(json.dumps(results, indent=2, default=float))
            return 0
        print("\n## memory while loading (fresh process each)")
        results["memory"] = {}
        for label in ("napari-medio-written .nii.gz", "SimpleITK-written .nii.gz", "napari-medio-written .nrrd",
                      "SimpleITK-written .nrrd"):
            m = _subprocess_json(_MEM_SCRIPT, str(files[label]))
            r = _subprocess_json(_RSS_SCRIPT, str(files[label]))
            results["memory"][label] = {**m, **r}
            print(f"| {label} | traced peak {m['traced_peak'] / m['nbytes']:.2f}x | RSS growth "
                  f"{r['rss_growth'] / r['nbytes']:.2f}x |")
        print("\n## OME-Zarr")
        z = folder / "ct.ome.zarr"
        t_w = best_time(lambda: napari_medio.write(vol, z), 1)
        t_open = best_time(lambda: napari_medio.read(z)[0], args.repeat)
        t_slice = best_time(lambda: np.asarray(napari_medio.read(z)[0].array[150]), args.repeat)
        t_full = best_time(lambda: np.asarray(napari_medio.read(z)[0].array), args.repeat)
        results["ome_zarr"] = {"write_pyramid_s": t_w, "open_s": t_open, "open_plus_slice_s": t_slice,
                               "full_read_s": t_full}
        print(f"| write with pyramid {t_w:.3f} s | open {t_open:.3f} s | open + one slice {t_slice:.3f} s "
              f"| full read {t_full:.3f} s |")
    gb = 4.0 if args.big else args.lazy_gb
    with tempfile.TemporaryDirectory(prefix="medio-bench-lazy-") as tmp:
        print(f"\n## lazy open of {gb:g} GB uncompressed int16")
        n = 1024 if gb >= 2 else 512
        slices = int(gb * 1e9 / (n * n * 2))
        big = np.lib.format.open_memmap(os.path.join(tmp, "src.npy"), mode="w+", dtype=np.int16,
                                        shape=(slices, n, n))
        for k in range(0, slices, 64):
            big[k:k + 64] = (np.arange(n, dtype=np.int16)[None, None, :] + k) % 3000
        big.flush()
        bvol = Volume(big, Geometry([0.5, 0.5, 0.5], [0, 0, 0], np.eye(3)))
        results["lazy"] = {}
        for ext, opts in ((".nrrd", {"compress": False}), (".nii", {})):
            p = os.path.join(tmp, f"big{ext}")
            t0 = time.perf_counter()
            napari_medio.write(bvol, p, **opts)
            t_write = time.perf_counter() - t0
            subprocess.run(["sync"], check=False)
            r = _subprocess_json(_LAZY_SCRIPT, p)
            r["write_s"] = t_write
            results["lazy"][ext] = r
            print(f"| {ext} {os.path.getsize(p) / 1e9:.2f} GB | imports {r['import_s']:.2f} s | "
                  f"first slice {r['first_slice_s']:.3f} s, "
                  f"RSS +{r['rss_growth_first'] / 1e6:.0f} MB | layer data (multiscale {r['multiscale']}) "
                  f"{r['layer_data_s']:.3f} s, RSS +{r['rss_growth_layer'] / 1e6:.0f} MB |")
        del big, bvol
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
