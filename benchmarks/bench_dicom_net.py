"""Retrieve a 300-instance CT series from a local Orthanc: napari-medio against the libraries, same process.

    flock /tmp/medio-bench.lock .venv/bin/python benchmarks/bench_dicom_net.py [--slices 300] [--repeat 5]

Starts its own Orthanc (tests/dicom_net/conftest.py: temporary configuration and storage, free
loopback ports), uploads a generated series, then times each retrieve into an empty folder,
``--repeat`` interleaved rounds (a burst of load elsewhere hits every tool), best round per tool:

* C-GET: napari-medio (``DimseClient.retrieve``, received by dicom/dimse.py) against plain
  pynetdicom (``AE.associate`` + ``send_c_get``, each data set written with
  ``Event.encoded_dataset()``) and dcmtk's getscu;
* WADO-RS: napari-medio (``DicomWebClient.retrieve``, dicom/_wado.py) against dicomweb-client's
  ``iter_series`` with each instance written by pydicom;
* C-STORE (send the series back): napari-medio (``DimseClient.send``, dicom/dimse.py) against plain
  pynetdicom (``send_c_store`` of each file on one association).

"ratio" is the library's time over napari-medio's (above 1: napari-medio is faster).
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "dicom_net"))


def make_series(folder: Path, slices: int) -> list[Path]:
    subprocess.run([sys.executable, str(ROOT / "scripts" / "make_ct_series.py"), str(folder), "--slices", str(slices)],
                   check=True)
    return sorted(folder.iterdir())


def timed(fn, folder: Path, expected: int) -> float:
    """Wall seconds of one retrieve into an empty folder (checked: ``expected`` files)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    t0 = time.perf_counter()
    fn(folder)
    seconds = time.perf_counter() - t0
    if expected:
        assert len([p for p in folder.iterdir() if not p.name.startswith(".")]) == expected, fn
    return seconds


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slices", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)

    import pydicom

    from conftest import pynetdicom_get, start_orthanc
    from napari_medio.dicom.network import DicomWebClient, DicomWebServer, DimseClient

    tmp = Path(tempfile.mkdtemp(prefix="medio-bench-net-"))
    server = start_orthanc(tmp / "orthanc")
    try:
        files = make_series(tmp / "src", args.slices)
        server.upload(files)
        node = server.node()
        ds = pydicom.dcmread(files[0], stop_before_pixels=True)
        study, series, sop_class = str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPClassUID)
        mb = sum(f.stat().st_size for f in files) / 1e6

        def getscu(folder):
            subprocess.run(["getscu", "-aet", "MEDIO", "-aec", node.ae_title, "-S", "-k", "QueryRetrieveLevel=SERIES",
                            "-k", f"StudyInstanceUID={study}", "-k", f"SeriesInstanceUID={series}", "-od",
                            str(folder), node.host, str(node.port)],
                           check=True, env={"TCP_NODELAY": "1", "PATH": "/usr/bin:/bin"}, capture_output=True)

        web = DicomWebClient(DicomWebServer(server.dicomweb))

        def dicomweb_client(folder):
            from dicomweb_client.api import DICOMwebClient

            client = DICOMwebClient(url=server.dicomweb)
            for instance in client.iter_series(study, series, media_types=(("application/dicom", "*"),)):
                tmp_file = folder / f".{instance.SOPInstanceUID}.part"
                instance.save_as(tmp_file, enforce_file_format=True)
                os.replace(tmp_file, folder / f"{instance.SOPInstanceUID}.dcm")

        def pynetdicom_send(folder):
            from pynetdicom import AE

            ae = AE(ae_title="MEDIO")
            ae.add_requested_context(sop_class, str(ds.file_meta.TransferSyntaxUID))
            assoc = ae.associate(node.host, node.port, ae_title=node.ae_title)
            for f in files:
                assert assoc.send_c_store(f).Status == 0
            assoc.release()

        def medio_send(folder):
            assert DimseClient(node).send(files)["sent"] == len(files)

        tools = {
            "C-GET napari-medio (dimse.py)": lambda f: DimseClient(node).retrieve(study, series, dest=f),
            "C-GET pynetdicom": lambda f: pynetdicom_get(node, study, f, series=series, sop_classes=[sop_class]),
            "C-GET dcmtk getscu": getscu,
            "WADO-RS napari-medio (_wado.py)": lambda f: web.retrieve(study, series, dest=f),
            "WADO-RS dicomweb-client": dicomweb_client,
            "C-STORE napari-medio (dimse.py)": medio_send,
            "C-STORE pynetdicom": pynetdicom_send,
        }
        expected = {name: 0 if name.startswith("C-STORE") else args.slices for name in tools}
        runs: dict = {name: [] for name in tools}
        for _ in range(args.repeat):
            for name, fn in tools.items():
                runs[name].append(timed(fn, tmp / "out", expected[name]))
        best = {name: min(v) for name, v in runs.items()}
        print(f"{args.slices} instances, {mb:.0f} MB, best of {args.repeat} interleaved rounds, "
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
        print(f"{'tool':34s} {'best s':>7s} {'ratio':>6s}  all runs (s)")
        for name, seconds in best.items():
            ours = best[next(n for n in best if n.split()[0] == name.split()[0] and "napari-medio" in n)]
            ratio = "" if "napari-medio" in name else f"{seconds / ours:.2f}"
            print(f"{name:34s} {seconds:7.3f} {ratio:>6s}  {' '.join(f'{x:.2f}' for x in runs[name])}")
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
