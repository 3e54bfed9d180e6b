"""Retrieve a 300-slice CT series from a local Orthanc: napari-medio (DIMSE C-GET, C-MOVE, DICOMweb
WADO-RS) against dcmtk's getscu / movescu on the same series, in the same run.

    .venv/bin/python benchmarks/bench_dicom_net.py [--slices 300] [--size 512] [--repeat 3] [--json OUT]

Starts its own Orthanc (tests/dicom_net/conftest.py: temporary config and storage,
free loopback ports), uploads a generated series (exported by napari-medio), then
times each retrieve into an empty folder (best of ``--repeat``).  Throughput is
instances per second; "ratio" is napari-medio's throughput over dcmtk's.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "dicom_net"))


def make_series(folder: Path, slices: int, size: int) -> list[Path]:
    from napari_medio.core.geometry import Geometry
    from napari_medio.core.volume import Volume
    from napari_medio.dicom.export import ExportTags, export_volume

    rng = np.random.default_rng(0)
    arr = rng.integers(-1000, 2000, size=(slices, size, size), dtype=np.int16)
    vol = Volume(arr, Geometry([0.7, 0.7, 1.0], [-180.0, -180.0, 0.0], np.eye(3)), name="bench")
    return export_volume(vol, folder, ExportTags(patient_id="BENCH", patient_name="Bench^Mark", modality="CT",
                                                 series_description="bench"))


def best(fn, repeat: int, folder: Path) -> float:
    times = []
    for _ in range(repeat):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        t0 = time.perf_counter()
        fn(folder)
        times.append(time.perf_counter() - t0)
    return min(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slices", type=int, default=300)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    from conftest import start_orthanc

    from napari_medio.dicom.network import DicomWebClient, DicomWebServer, DimseClient, StorageListener

    tmp = Path(tempfile.mkdtemp(prefix="medio-bench-net-"))
    server = start_orthanc(tmp / "orthanc")
    try:
        files = make_series(tmp / "src", args.slices, args.size)
        server.upload(files)
        node = server.node()
        client = DimseClient(node)
        study = client.query("STUDY", PatientID="BENCH")[0]["StudyInstanceUID"]
        series = client.query("SERIES", StudyInstanceUID=study)[0]["SeriesInstanceUID"]
        mb = sum(f.stat().st_size for f in files) / 1e6
        env = {"TCP_NODELAY": "1", "PATH": "/usr/bin:/bin"}
        keys = ["-k", "QueryRetrieveLevel=SERIES", "-k", f"StudyInstanceUID={study}", "-k",
                f"SeriesInstanceUID={series}"]

        def getscu(folder):
            subprocess.run(["getscu", "-aet", "MEDIO", "-aec", node.ae_title, "-S", *keys, "-od", str(folder),
                            node.host, str(node.port)], check=True, env=env, capture_output=True)

        def movescu(folder):
            subprocess.run(["movescu", "-aet", "DCMTK", "-aec", node.ae_title, "-aem", "DCMTK", "-S", *keys,
                            "--port", str(server.dcmtk_port), "-od", str(folder), node.host, str(node.port)],
                           check=True, env=env, capture_output=True)

        def medio_get(folder):
            r = client.retrieve(study, series, dest=folder)
            assert r.completed == args.slices, r.to_dict()

        def medio_move(folder):
            r = client.retrieve(study, series, dest=folder, method="move", move_port=server.move_port)
            assert r.completed == args.slices, r.to_dict()

        web = DicomWebClient(DicomWebServer(server.dicomweb))

        def medio_wado(folder):
            r = web.retrieve(study, series, dest=folder)
            assert r.completed == args.slices, r.to_dict()

        rows = {}
        for name, fn in [("dcmtk getscu (C-GET)", getscu), ("napari-medio C-GET", medio_get),
                         ("dcmtk movescu (C-MOVE)", movescu), ("napari-medio C-MOVE", medio_move),
                         ("napari-medio WADO-RS", medio_wado)]:
            t = best(fn, args.repeat, tmp / "out")
            n = len(list((tmp / "out").glob("*")))
            rows[name] = {"seconds": round(t, 3), "instances_per_s": round(args.slices / t, 1),
                          "MB_per_s": round(mb / t, 1), "files": n}
        ref_get = rows["dcmtk getscu (C-GET)"]["instances_per_s"]
        ref_move = rows["dcmtk movescu (C-MOVE)"]["instances_per_s"]
        rows["napari-medio C-GET"]["ratio"] = round(rows["napari-medio C-GET"]["instances_per_s"] / ref_get, 2)
        rows["napari-medio C-MOVE"]["ratio"] = round(rows["napari-medio C-MOVE"]["instances_per_s"] / ref_move, 2)
        rows["napari-medio WADO-RS"]["ratio"] = round(rows["napari-medio WADO-RS"]["instances_per_s"] / ref_get, 2)
        result = {"slices": args.slices, "size": args.size, "MB": round(mb, 1), "repeat": args.repeat,
                  "results": rows}
        print(f"{args.slices} slices of {args.size}x{args.size} int16 ({mb:.0f} MB), best of {args.repeat}")
        print(f"{'tool':28s} {'s':>7s} {'inst/s':>8s} {'MB/s':>7s} {'ratio':>6s}")
        for name, r in rows.items():
            print(f"{name:28s} {r['seconds']:7.2f} {r['instances_per_s']:8.1f} {r['MB_per_s']:7.1f} "
                  f"{r.get('ratio', ''):>6}")
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=2))
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
