"""PACS tests against a real Orthanc (DIMSE and DICOMweb), our C-STORE listener with dcmtk's storescu, faults."""
from __future__ import annotations

import http.server
import os
import subprocess
import threading
import time

import numpy as np
import pytest

from napari_medio.core.errors import CancelledError
from napari_medio.dicom.network import (
    DicomNode,
    DicomWebClient,
    DicomWebServer,
    DimseClient,
    PacsError,
    StorageListener,
    connect,
)
from napari_medio.dicom.series import read_dicom_path

from .conftest import free_port, require_tool, start_orthanc


@pytest.fixture(scope="module")
def loaded(orthanc, ct_series):
    """Orthanc holding the 93-slice CT head (sent with our C-STORE) and its UIDs."""
    files = sorted(p for p in ct_series.iterdir() if p.is_file())
    result = DimseClient(orthanc.node()).send(files)
    assert result == {"sent": 93, "failed": {}}
    vol = read_dicom_path(ct_series)[0]
    return {"study": vol.metadata["dicom"]["StudyInstanceUID"], "series": vol.metadata["dicom"]["SeriesInstanceUID"],
            "volume": vol, "patient": vol.metadata["dicom"]["PatientID"]}


def _web(orthanc) -> DicomWebClient:
    return DicomWebClient(DicomWebServer(orthanc.dicomweb))


def test_echo(orthanc):
    assert DimseClient(orthanc.node()).echo() < 5
    assert _web(orthanc).echo() < 5
    assert isinstance(connect(orthanc.dicomweb), DicomWebClient)
    assert isinstance(connect(f"ORTHANC@127.0.0.1:{orthanc.dicom_port}"), DimseClient)


@pytest.mark.parametrize("kind", ["dimse", "web"])
def test_query(orthanc, loaded, kind):
    client = DimseClient(orthanc.node()) if kind == "dimse" else _web(orthanc)
    studies = client.query("STUDY", PatientID=loaded["patient"])
    assert [s["StudyInstanceUID"] for s in studies] == [loaded["study"]]
    assert client.query("STUDY", PatientID="nobody") == []
    assert len(client.query("STUDY", Modality="CT")) == 1
    assert client.query("STUDY", Modality="MR") == []
    date = studies[0]["StudyDate"]
    assert len(client.query("STUDY", StudyDate=f"{date}-{date}")) == 1
    assert client.query("STUDY", StudyDate="19000101-19000102") == []
    series = client.query("SERIES", StudyInstanceUID=loaded["study"])
    assert [s["SeriesInstanceUID"] for s in series] == [loaded["series"]]
    assert int(series[0]["NumberOfSeriesRelatedInstances"]) == 93
    patients = client.query("PATIENT", PatientID=loaded["patient"])
    assert patients and patients[0]["PatientID"] == loaded["patient"]


@pytest.mark.parametrize("method", ["get", "move", "web"])
def test_retrieve_into_database(orthanc, loaded, tmp_path, method):
    from napari_medio.dicom.database import DicomDatabase

    progress = []
    if method == "web":
        result = _web(orthanc).retrieve(loaded["study"], loaded["series"], database=tmp_path / "db",
                                        progress=lambda d, t: progress.append((d, t)))
    else:
        result = DimseClient(orthanc.node()).retrieve(loaded["study"], database=tmp_path / "db", method=method,
                                                      move_port=orthanc.move_port,
                                                      progress=lambda d, t: progress.append((d, t)))
    assert result.completed == 93 and result.failed == 0 and result.imported["added"] == 93
    assert progress[-1][0] == 93
    db = DicomDatabase(tmp_path / "db")
    vol = db.load_series(loaded["series"])[0]
    assert vol.geometry.almost_equal(loaded["volume"].geometry, 1e-6)
    np.testing.assert_array_equal(vol.to_numpy(), loaded["volume"].to_numpy())


def test_send_dicomweb_and_query_back(orthanc, tmp_path):
    from napari_medio.core.geometry import Geometry
    from napari_medio.core.volume import Volume
    from napari_medio.dicom.export import ExportTags, export_volume

    vol = Volume(np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6), Geometry([1, 1, 2], [0, 0, 0], np.eye(3)))
    files = export_volume(vol, tmp_path, ExportTags(patient_id="STOW-1", patient_name="Stow^Test", modality="MR"))
    web = _web(orthanc)
    assert web.send(files) == {"sent": 4, "failed": {}}
    studies = web.query("STUDY", PatientID="STOW-1")
    assert len(studies) == 1
    got = web.retrieve(studies[0]["StudyInstanceUID"], dest=tmp_path / "back")
    back = read_dicom_path(tmp_path / "back")[0]
    assert got.completed == 4
    np.testing.assert_array_equal(back.to_numpy(), vol.to_numpy())


def test_listener_receives_from_storescu_and_orthanc(orthanc, loaded, tmp_path, ct_series):
    from napari_medio.dicom.database import DicomDatabase

    storescu = require_tool("storescu")
    files = sorted(p for p in ct_series.iterdir() if p.is_file())[:10]
    with StorageListener(ae_title="MEDIO", port=0, database=tmp_path / "db", host="127.0.0.1") as listener:
        out = subprocess.run([storescu, "-aet", "SCANNER", "-aec", "MEDIO", "127.0.0.1", str(listener.port),
                              *map(os.fspath, files)], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert len(listener.received) == 10
        # a wrong called AE title is refused
        bad = subprocess.run([storescu, "-aec", "NOTME", "127.0.0.1", str(listener.port), os.fspath(files[0])],
                             capture_output=True, text=True, timeout=60)
        assert bad.returncode != 0
    db = DicomDatabase(tmp_path / "db")
    assert db.counts()["instances"] == 10
    # Orthanc pushes the whole series to the listener (C-STORE from the PACS side)
    with StorageListener(ae_title="MEDIO", port=orthanc.move_port, database=tmp_path / "db2",
                         host="127.0.0.1") as listener:
        orthanc_id = orthanc.rest("POST", "/tools/lookup", data=loaded["series"])[0]["ID"]
        orthanc.rest("POST", "/modalities/medio/store", json={"Resources": [orthanc_id], "Synchronous": True})
        assert len(listener.received) == 93
    assert DicomDatabase(tmp_path / "db2").counts()["instances"] == 93


# -- faults --------------------------------------------------------------------------------------------
def test_refused_and_wrong_ae(orthanc):
    with pytest.raises(PacsError, match="connection refused"):
        DimseClient(DicomNode("ORTHANC", "127.0.0.1", free_port())).echo()
    with pytest.raises(PacsError, match="rejected the association.*[Cc]alled AE"):
        DimseClient(DicomNode("WRONG", "127.0.0.1", orthanc.dicom_port)).query("STUDY")
    with pytest.raises(PacsError, match="cannot connect"):
        DicomWebClient(DicomWebServer(f"http://127.0.0.1:{free_port()}/dicom-web")).query("STUDY")
    with pytest.raises(PacsError, match="HTTP 404"):
        DicomWebClient(DicomWebServer(orthanc.url + "/no-such-root")).query("STUDY")


def test_move_to_unknown_destination(orthanc, loaded, tmp_path):
    client = DimseClient(orthanc.node(), calling_ae="STRANGER")
    with pytest.raises(PacsError):
        client.retrieve(loaded["study"], dest=tmp_path, method="move", move_port=free_port())


@pytest.mark.parametrize("method", ["get", "web"])
def test_server_stopping_mid_retrieve_then_resume(tmp_path, method):
    from napari_medio.core.geometry import Geometry
    from napari_medio.core.volume import Volume
    from napari_medio.dicom.database import DicomDatabase
    from napari_medio.dicom.export import ExportTags, export_volume

    # big enough (60 x 0.5 MB) that the transfer cannot sit in the socket buffers when the server dies
    arr = np.random.default_rng(3).integers(-1000, 2000, (60, 512, 512), dtype=np.int16)
    vol = Volume(arr, Geometry([0.7, 0.7, 1.0], [0, 0, 0], np.eye(3)))
    files = export_volume(vol, tmp_path / "src", ExportTags(patient_id="STOP", modality="CT"))
    server = start_orthanc(tmp_path / "orthanc")
    try:
        server.upload(files)
        ds = read_dicom_path(files[0])[0].metadata["dicom"]
        study, series = ds["StudyInstanceUID"], ds["SeriesInstanceUID"]
        if method == "web":
            # a DICOMweb server that dies after 10 instances: it sends them and drops the connection
            parts = [f.read_bytes() for f in files[:10]]
            httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _dying_handler(parts))
            threading.Thread(target=httpd.serve_forever, daemon=True).start()
            client = DicomWebClient(DicomWebServer(f"http://127.0.0.1:{httpd.server_address[1]}/dicom-web"))
            try:
                with pytest.raises(PacsError, match="stopped|lost|cut short"):
                    client.retrieve(study, series, dest=tmp_path / "in", database=tmp_path / "db")
            finally:
                httpd.shutdown()
        else:
            client = DimseClient(server.node())

            def progress(done, total):
                if done == 10:
                    server.kill()

            with pytest.raises(PacsError, match="stopped|lost|cut short"):
                client.retrieve(study, series, dest=tmp_path / "in", database=tmp_path / "db", progress=progress)
        got = list((tmp_path / "in").glob("*.dcm"))
        assert 5 <= len(got) < 60
        assert not list((tmp_path / "in").glob(".medio-*"))  # only complete files
        db = DicomDatabase(tmp_path / "db")
        assert db.counts()["instances"] == len(got)  # what arrived is in the database, nothing half-written
        server.stop()
        restarted = start_orthanc(tmp_path / "orthanc")  # same storage folder, new ports
        try:
            client = _web(restarted) if method == "web" else DimseClient(restarted.node())
            result = client.retrieve(study, series, dest=tmp_path / "in", database=tmp_path / "db")
            assert result.completed == 60
        finally:
            restarted.stop()
        assert db.counts()["instances"] == 60
        back = db.load_series(series)[0]
        np.testing.assert_array_equal(back.to_numpy(), arr)
    finally:
        server.kill()


def test_cancel_retrieve(orthanc, loaded, tmp_path):
    n = {"k": 0}

    def cancel():
        n["k"] += 1
        return n["k"] > 10

    with pytest.raises(CancelledError):
        DimseClient(orthanc.node()).retrieve(loaded["study"], dest=tmp_path / "a", cancel=cancel)
    n["k"] = 0
    with pytest.raises(CancelledError):
        _web(orthanc).retrieve(loaded["study"], loaded["series"], dest=tmp_path / "b", cancel=cancel)
    assert not list((tmp_path / "a").glob(".medio-*"))


def _dying_handler(parts):
    class Dying(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            if "/series/" in self.path and self.path.rstrip("/").endswith(tuple("0123456789")):
                self.send_response(200)
                self.send_header("Content-Type", 'multipart/related; type="application/dicom"; boundary=B')
                self.send_header("Content-Length", str(sum(len(p) for p in parts) * 10))
                self.end_headers()
                for p in parts:
                    self.wfile.write(b"--B\r\nContent-Type: application/dicom\r\n\r\n" + p + b"\r\n")
                self.wfile.flush()
                self.connection.close()  # the server "stops"
                return
            body = b"[]"
            self.send_response(200)
            self.send_header("Content-Type", "application/dicom+json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    return Dying


class _Malformed(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        if "/series/" in self.path:
            body = b"--XX\r\nContent-Type: application/dicom\r\n\r\nnot dicom at all\r\n--XX--\r\n"
            ctype = 'multipart/related; type="application/dicom"; boundary=XX'
        else:
            body = b"{this is not json"
            ctype = "application/dicom+json"
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_malformed_dicomweb_server(tmp_path):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Malformed)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        web = DicomWebClient(DicomWebServer(f"http://127.0.0.1:{httpd.server_address[1]}/dicom-web"))
        with pytest.raises(PacsError, match="malformed|HTTP"):
            web.query("STUDY")
        with pytest.raises(PacsError, match="not a DICOM instance"):
            web.retrieve("1.2.3", "1.2.3.4", dest=tmp_path)
        assert not list(tmp_path.glob("*.dcm"))
    finally:
        httpd.shutdown()


# -- CLI ------------------------------------------------------------------------------------------------
def test_cli_query_retrieve_send(orthanc, loaded, tmp_path, capsys):
    import json

    from napari_medio.cli import main

    server = f"ORTHANC@127.0.0.1:{orthanc.dicom_port}"
    assert main(["dicom", "echo", server]) == 0
    assert "OK" in capsys.readouterr().out
    assert main(["dicom", "query", server, "--patient-id", loaded["patient"], "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["StudyInstanceUID"] == loaded["study"]
    assert main(["dicom", "retrieve", orthanc.dicomweb, loaded["study"], "--db", os.fspath(tmp_path / "db"),
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["completed"] == 93
    assert main(["dicom", "send", server, "--series", loaded["series"], "--db", os.fspath(tmp_path / "db")]) == 0
    assert "93 instance(s) sent" in capsys.readouterr().out
    assert main(["dicom", "query", "ORTHANC@127.0.0.1:1"]) == 1
    assert "connection refused" in capsys.readouterr().err


def test_cli_listen(tmp_path, ct_series):
    from napari_medio.cli import main

    port = free_port()
    files = sorted(p for p in ct_series.iterdir() if p.is_file())[:3]
    result = {}

    def run():
        result["rc"] = main(["dicom", "listen", "--port", str(port), "--host", "127.0.0.1", "--out",
                             os.fspath(tmp_path / "in"), "--count", "3", "--duration", "60"])

    t = threading.Thread(target=run)
    t.start()
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            DimseClient(DicomNode("MEDIO", "127.0.0.1", port)).echo()
            break
        except PacsError:
            time.sleep(0.1)
    DimseClient(DicomNode("MEDIO", "127.0.0.1", port)).send(files)
    t.join(timeout=60)
    assert result.get("rc") == 0
    assert len(list((tmp_path / "in").glob("*.dcm"))) == 3


def test_many_sends_and_retrieves_in_a_row(orthanc, ct_series, tmp_path):
    """Hundreds of C-STOREs with a short DIMSE timeout, then C-GET and C-MOVE read back byte for byte."""
    import pydicom

    files = sorted(p for p in ct_series.iterdir() if p.is_file())
    client = DimseClient(orthanc.node(), timeout=5)
    for _ in range(4):
        assert client.send(files) == {"sent": len(files), "failed": {}}
    ds = pydicom.dcmread(files[0], stop_before_pixels=True)
    for method in ("get", "move"):
        out = tmp_path / method
        result = client.retrieve(str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), dest=out, method=method,
                                 move_port=orthanc.move_port)
        assert result.completed == len(files) and result.failed == 0
        assert not list(out.glob(".medio-*"))
        for f in files[:5]:
            src = pydicom.dcmread(f)
            got = pydicom.dcmread(out / f"{src.SOPInstanceUID}.dcm")
            assert got.file_meta.MediaStorageSOPInstanceUID == src.SOPInstanceUID
            assert got.PixelData == src.PixelData
