"""DICOM benchmark: series load and database import, side by side with SimpleITK and pydicom in one run.

usage: python benchmarks/bench_dicom.py [--folder DIR] [--slices 300] [--repeat 5] [--json]

Generates 300 slices of 512x512 int16 CT with shuffled names
(``scripts/make_ct_series.py``) unless ``--folder`` is given, warms the
page cache, then reports the best of ``--repeat`` runs for:

* SimpleITK ImageSeriesReader (GDCM, names from GetGDCMSeriesFileNames) -> NumPy
* pydicom header parse alone (dcmread stop_before_pixels=True), single process
* napari-medio series load -> NumPy volume (and its peak traced memory / volume bytes)
* napari-medio database import, link and copy modes (files/s, fresh database each run)
* ``DicomDatabase.adopt_files`` on a fresh copy of the files (the PACS receive path)
* ``cp -r`` of the folder into a fresh folder (the file system's own floor for copy mode)
* the bytes alone: every file copied by the kernel (``copy_file_range``) on two threads,
  no parsing, no database (the floor of any copy on this machine: copy mode's limit)

The pydicom parse, the imports and ``cp -r`` run interleaved, one of each per round,
so a burst of load elsewhere on the machine hits them all; best round per measure.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
MAKE = HERE.parent / "scripts" / "make_ct_series.py"


def best(fn, repeat):
    times = []
    result = None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return min(times), result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--folder")
    ap.add_argument("--slices", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    tmp = tempfile.mkdtemp(prefix="medio-bench-dicom-")
    try:
        folder = a.folder
        if folder is None:
            folder = os.path.join(tmp, "ct")
            subprocess.run([sys.executable, str(MAKE), folder, "--slices", str(a.slices)], check=True)
        files = sorted(glob.glob(os.path.join(folder, "*")))
        for f in files:  # warm the page cache
            with open(f, "rb") as fh:
                fh.read()
        import numpy as np
        import pydicom
        import SimpleITK as sitk

        from napari_medio.dicom.database import DicomDatabase
        from napari_medio.dicom.series import read_dicom_path

        def sitk_load():
            r = sitk.ImageSeriesReader()
            r.SetFileNames(r.GetGDCMSeriesFileNames(folder))
            return sitk.GetArrayFromImage(r.Execute())

        def pydicom_headers():
            return [pydicom.dcmread(f, stop_before_pixels=True) for f in files]

        def medio_load():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                (vol,) = read_dicom_path(folder)
            return vol.to_numpy()

        t_sitk, ref = best(sitk_load, a.repeat)
        t_medio, arr = best(medio_load, a.repeat)
        assert arr.shape == ref.shape and np.array_equal(arr.astype(np.int32), ref.astype(np.int32)), "voxels differ"
        del ref
        tracemalloc.start()
        arr = None
        arr = medio_load()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        volume_bytes = arr.nbytes
        del arr

        def import_run(copy):
            db_dir = tempfile.mkdtemp(dir=tmp)
            try:
                with DicomDatabase(db_dir) as db:
                    t = time.perf_counter()
                    rep = db.import_paths([folder], copy=copy)
                    dt = time.perf_counter() - t
                assert rep.added == len(files), rep
                return dt
            finally:
                shutil.rmtree(db_dir, ignore_errors=True)

        def adopt_run():
            # Received files (a fresh copy each run, not timed) taken into the store by adopt_files.
            received = tempfile.mkdtemp(dir=tmp)
            db_dir = tempfile.mkdtemp(dir=tmp)
            try:
                for f in files:
                    shutil.copyfile(f, os.path.join(received, os.path.basename(f)))
                with DicomDatabase(db_dir) as db:
                    t = time.perf_counter()
                    rep = db.adopt_files([received])
                    dt = time.perf_counter() - t
                assert rep.added == len(files), rep
                return dt
            finally:
                shutil.rmtree(db_dir, ignore_errors=True)
                shutil.rmtree(received, ignore_errors=True)

        def cp_run():
            dest = os.path.join(tempfile.mkdtemp(dir=tmp), "copy")
            try:
                t = time.perf_counter()
                subprocess.run(["cp", "-r", folder, dest], check=True)
                return time.perf_counter() - t
            finally:
                shutil.rmtree(os.path.dirname(dest), ignore_errors=True)

        def bytes_run():
            from concurrent.futures import ThreadPoolExecutor

            dest = tempfile.mkdtemp(dir=tmp)

            def one(item):
                k, src = item
                fi = os.open(src, os.O_RDONLY)
                fo = os.open(os.path.join(dest, str(k)), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                try:
                    while os.copy_file_range(fi, fo, 1 << 30):
                        pass
                finally:
                    os.close(fi)
                    os.close(fo)

            try:
                t = time.perf_counter()
                with ThreadPoolExecutor(2) as ex:
                    list(ex.map(one, enumerate(files)))
                return time.perf_counter() - t
            finally:
                shutil.rmtree(dest, ignore_errors=True)

        rounds: dict = {"pyd": [], "link": [], "copy": [], "adopt": [], "cp": [], "bytes": []}
        for _ in range(a.repeat):
            rounds["pyd"].append(best(pydicom_headers, 1)[0])
            rounds["link"].append(import_run(False))
            rounds["copy"].append(import_run(True))
            rounds["adopt"].append(adopt_run())
            rounds["cp"].append(cp_run() if shutil.which("cp") else float("nan"))
            rounds["bytes"].append(bytes_run() if hasattr(os, "copy_file_range") else float("nan"))
        t_pyd, t_link, t_copy, t_adopt = (min(rounds[k]) for k in ("pyd", "link", "copy", "adopt"))
        t_cp = min(rounds["cp"])
        t_bytes = min(rounds["bytes"])
        n = len(files)
        out = {
            "files": n,
            "cores": os.cpu_count(),
            "simpleitk_load_s": t_sitk,
            "pydicom_header_parse_s": t_pyd,
            "medio_load_s": t_medio,
            "medio_vs_simpleitk": t_medio / t_sitk,
            "medio_vs_pydicom_headers": t_medio / t_pyd,
            "peak_memory_vs_volume": peak / volume_bytes,
            "pydicom_header_files_per_s": n / t_pyd,
            "import_link_files_per_s": n / t_link,
            "import_copy_files_per_s": n / t_copy,
            "import_link_vs_pydicom": (n / t_link) / (n / t_pyd),
            "import_copy_vs_pydicom": (n / t_copy) / (n / t_pyd),
            "adopt_files_per_s": n / t_adopt,
            "adopt_vs_pydicom": (n / t_adopt) / (n / t_pyd),
            "cp_r_files_per_s": n / t_cp,
            "cp_r_vs_pydicom": (n / t_cp) / (n / t_pyd),
            "import_copy_vs_cp_r": (n / t_copy) / (n / t_cp),
            "kernel_copy_2_threads_files_per_s": n / t_bytes,
            "kernel_copy_vs_pydicom": (n / t_bytes) / (n / t_pyd),
            "import_copy_vs_kernel_copy": (n / t_copy) / (n / t_bytes),
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if a.json:
        print(json.dumps(out, indent=2))
    else:
        print(f"{n} files, {out['cores']} cores (best of {a.repeat})")
        print(f"  SimpleITK ImageSeriesReader   {t_sitk:8.3f} s")
        print(f"  pydicom header parse          {t_pyd:8.3f} s   ({out['pydicom_header_files_per_s']:.0f} files/s)")
        print(f"  napari-medio load             {t_medio:8.3f} s   = {out['medio_vs_simpleitk']:.2f}x SimpleITK "
              f"(target <= 0.4), {out['medio_vs_pydicom_headers']:.2f}x pydicom headers (target <= 1.5)")
        print(f"  peak memory / volume bytes    {out['peak_memory_vs_volume']:8.2f}   (target <= 1.3)")
        print(f"  import, link mode             {out['import_link_files_per_s']:8.0f} files/s = "
              f"{out['import_link_vs_pydicom']:.2f}x pydicom parse (target >= 0.8)")
        print(f"  import, copy mode             {out['import_copy_files_per_s']:8.0f} files/s = "
              f"{out['import_copy_vs_pydicom']:.2f}x pydicom parse (target >= 0.8), "
              f"{out['import_copy_vs_cp_r']:.2f}x cp -r, {out['import_copy_vs_kernel_copy']:.2f}x the bytes alone")
        print(f"  adopt received files          {out['adopt_files_per_s']:8.0f} files/s = "
              f"{out['adopt_vs_pydicom']:.2f}x pydicom parse (hard links, no second copy)")
        print(f"  cp -r of the folder (floor)   {out['cp_r_files_per_s']:8.0f} files/s = "
              f"{out['cp_r_vs_pydicom']:.2f}x pydicom parse")
        print(f"  the bytes alone, 2 threads    {out['kernel_copy_2_threads_files_per_s']:8.0f} files/s = "
              f"{out['kernel_copy_vs_pydicom']:.2f}x pydicom parse (copy_file_range, no parse, no database)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
