"""Retrieve a 300-slice CT series from a local Orthanc: napari-medio (DIMSE C-GET, C-MOVE, DICOMweb
WADO-RS) against dcmtk's getscu / movescu on the same series, in the same run.

    .venv/bin/python benchmarks/bench_dicom_net.py [--slices 300] [--size 512] [--repeat 5] [--json OUT]

Starts its own Orthanc (tests/dicom_net/conftest.py: temporary config and storage,
free loopback ports), uploads a generated series (exported by napari-medio), then
times each retrieve into an empty folder, ``--repeat`` interleaved rounds of all tools (so a burst of
load from elsewhere on the machine hits every tool), best round per tool.  Throughput is instances per
second; "ratio" is napari-medio's throughput over dcmtk's (getscu for C-GET and WADO-RS, movescu for
C-MOVE); "CPU s" is the CPU time of that best run (napari-medio's process, or the dcmtk tool / curl).

Tools: dcmtk getscu and movescu; napari-medio's C-GET and C-MOVE on its own DIMSE receive path
(dicom/dimse.py, the default) and on pynetdicom (``backend="pynetdicom"``); napari-medio's WADO-RS
(streaming multipart reader, dicom/_wado.py) and, for comparison, the previous WADO-RS path
(dicomweb-client's multipart decoder, pydicom for each part's UID, one write per part); and curl
fetching the same WADO-RS URL into one file and into /dev/null (the server's own pace: the floor).
"""
from __future__ import annotations

import argparse
import json
import os
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


def previous_wado_retrieve(web, url: str, accept: str, folder: Path) -> int:
    """napari-medio's WADO-RS retrieve before dicom/_wado.py: dicomweb-client's streamed multipart decoder,
    pydicom for each part's SOP Instance UID, then one atomic write per part."""
    import io
    import uuid

    import pydicom

    client = web.client
    response = client._session.get(url, headers={"Accept": accept}, stream=True, timeout=60)
    response.raise_for_status()
    n = 0
    for data in client._decode_multipart_message(response, stream=True):
        ds = pydicom.dcmread(io.BytesIO(bytes(data)), stop_before_pixels=True,
                             specific_tags=["SOPInstanceUID"], force=True)
        uid = str(ds.get("SOPInstanceUID") or ds.file_meta.MediaStorageSOPInstanceUID)
        tmp = folder / f".medio-{uuid.uuid4().hex[:12]}-{uid}.dcm.part"
        with open(tmp, "wb") as fh:
            fh.write(bytes(data))
        os.replace(tmp, folder / f"{uid}.dcm")
        n += 1
    return n


def timed(fn, folder: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process and its children) of one retrieve into an empty folder."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    c0 = _cpu()
    t0 = time.perf_counter()
    fn(folder)
    return time.perf_counter() - t0, _cpu() - c0


def _cpu() -> float:
    import resource

    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slices", type=int, default=300)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    from conftest import start_orthanc
    from napari_medio.dicom.network import DicomWebClient, DicomWebServer, DimseClient

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
            assert len(list(folder.glob("*"))) == args.slices

        def movescu(folder):
            subprocess.run(["movescu", "-aet", "DCMTK", "-aec", node.ae_title, "-aem", "DCMTK", "-S", *keys,
                            "--port", str(server.dcmtk_port), "-od", str(folder), node.host, str(node.port)],
                           check=True, env=env, capture_output=True)
            assert len(list(folder.glob("*"))) == args.slices

        lean, pynet = DimseClient(node, backend="medio"), DimseClient(node, backend="pynetdicom")

        def medio_get(folder, c=lean):
            r = c.retrieve(study, series, dest=folder)
            assert r.completed == args.slices, r.to_dict()

        def medio_move(folder, c=lean):
            r = c.retrieve(study, series, dest=folder, method="move", move_port=server.move_port)
            assert r.completed == args.slices, r.to_dict()

        web = DicomWebClient(DicomWebServer(server.dicomweb))
        url = f"{server.dicomweb}/studies/{study}/series/{series}"
        accept = 'multipart/related; type="application/dicom"; transfer-syntax=*'

        def medio_wado(folder):
            r = web.retrieve(study, series, dest=folder)
            assert r.completed == args.slices, r.to_dict()

        def previous_wado(folder):
            assert previous_wado_retrieve(web, url, accept, folder) == args.slices

        def curl(target):
            def run(folder):
                out = str(folder / "series.multipart") if target == "file" else "/dev/null"
                subprocess.run(["curl", "-sf", "-H", f"Accept: {accept}", "-o", out, url], check=True)
            return run

        tools = [("dcmtk getscu (C-GET)", getscu), ("napari-medio C-GET", medio_get),
                 ("napari-medio C-GET (pynetdicom)", lambda f: medio_get(f, pynet)),
                 ("dcmtk movescu (C-MOVE)", movescu), ("napari-medio C-MOVE", medio_move),
                 ("napari-medio C-MOVE (pynetdicom)", lambda f: medio_move(f, pynet)),
                 ("napari-medio WADO-RS", medio_wado), ("WADO-RS previous (dicomweb-client)", previous_wado),
                 ("curl WADO-RS -> one file", curl("file")), ("curl WADO-RS -> /dev/null", curl("null"))]
        runs: dict = {name: [] for name, _ in tools}
        load3 = os.getloadavg()
        load = load3[0]
        for _ in range(args.repeat):  # interleaved rounds: a burst of load on the machine hits every tool
            for name, fn in tools:
                runs[name].append(timed(fn, tmp / "out"))
        rows = {}
        for name, _ in tools:
            t, cpu = min(runs[name])
            rows[name] = {"seconds": round(t, 3), "instances_per_s": round(args.slices / t, 1),
                          "MB_per_s": round(mb / t, 1), "cpu_s": round(cpu, 2),
                          "all_seconds": [round(w, 2) for w, _ in runs[name]]}
        ref_get = rows["dcmtk getscu (C-GET)"]["instances_per_s"]
        ref_move = rows["dcmtk movescu (C-MOVE)"]["instances_per_s"]
        for name in rows:
            if "C-MOVE" in name and not name.startswith("dcmtk"):
                rows[name]["ratio"] = round(rows[name]["instances_per_s"] / ref_move, 2)
            elif not name.startswith("dcmtk"):
                rows[name]["ratio"] = round(rows[name]["instances_per_s"] / ref_get, 2)
        result = {"slices": args.slices, "size": args.size, "MB": round(mb, 1), "repeat": args.repeat,
                  "cpus": os.cpu_count(), "load_before": round(load, 2), "load_after": round(os.getloadavg()[0], 2),
                  "loadavg_1_5_15_before": [round(x, 2) for x in load3],
                  "loadavg_1_5_15_after": [round(x, 2) for x in os.getloadavg()], "results": rows}
        print(f"{args.slices} slices of {args.size}x{args.size} int16 ({mb:.0f} MB), best of {args.repeat} "
              f"interleaved rounds; {os.cpu_count()} CPUs, load average {load:.1f} -> {os.getloadavg()[0]:.1f}")
        print(f"{'tool':36s} {'s':>7s} {'inst/s':>8s} {'MB/s':>7s} {'CPU s':>6s} {'ratio':>6s}  all runs (s)")
        for name, r in rows.items():
            print(f"{name:36s} {r['seconds']:7.2f} {r['instances_per_s']:8.1f} {r['MB_per_s']:7.1f} "
                  f"{r['cpu_s']:6.2f} {r.get('ratio', ''):>6}  {' '.join(f'{x:.2f}' for x in r['all_seconds'])}")
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=2))
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
