"""A real PACS for the network tests: Debian's Orthanc (with the DICOMweb plugin).

Each server gets free loopback ports, a temporary configuration and storage
folder, is started with ``subprocess`` and stopped by its pid.  Without
``/usr/sbin/Orthanc`` the tests skip with a clear reason locally and fail on CI
(``CI`` set), where ``.ci/run`` installs it.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ORTHANC = os.environ.get("NAPARI_MEDIO_ORTHANC", "/usr/sbin/Orthanc")
PLUGINS = os.environ.get("NAPARI_MEDIO_ORTHANC_PLUGINS", "/usr/share/orthanc/plugins")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def require_orthanc() -> None:
    if Path(ORTHANC).is_file() and os.access(ORTHANC, os.X_OK):
        return
    message = f"Orthanc not installed ({ORTHANC} missing): apt-get install orthanc orthanc-dicomweb"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path:
        return path
    message = f"{name} not installed (Debian package dcmtk / dicom3tools)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@dataclass
class OrthancServer:
    """A running Orthanc: its ports, AE title, folders and process."""

    folder: Path
    http_port: int
    dicom_port: int
    aet: str
    move_port: int
    dcmtk_port: int
    process: subprocess.Popen

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb(self) -> str:
        return f"{self.url}/dicom-web"

    def node(self):
        from napari_medio.dicom.network import DicomNode

        return DicomNode(self.aet, "127.0.0.1", self.dicom_port)

    def rest(self, method: str, path: str, **kwargs):
        import requests

        r = requests.request(method, self.url + path, timeout=60, **kwargs)
        r.raise_for_status()
        return r.json() if r.content else None

    def upload(self, files) -> int:
        import requests

        n = 0
        for f in files:
            r = requests.post(self.url + "/instances", data=Path(f).read_bytes(), timeout=60)
            r.raise_for_status()
            n += 1
        return n

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)

    def kill(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def start_orthanc(folder: Path) -> OrthancServer:
    require_orthanc()
    folder.mkdir(parents=True, exist_ok=True)
    http_port, dicom_port, move_port, dcmtk_port = free_port(), free_port(), free_port(), free_port()
    config = {
        "Name": "medio-test",
        "StorageDirectory": str(folder / "storage"),
        "IndexDirectory": str(folder / "storage"),
        "HttpPort": http_port,
        "DicomPort": dicom_port,
        "DicomAet": "ORTHANC",
        "DicomCheckCalledAet": True,
        "DicomCheckModalityHost": False,
        "DicomAlwaysAllowEcho": True,
        "DicomAlwaysAllowStore": True,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "HttpServerEnabled": True,
        "UnknownSopClassAccepted": True,
        "StorageCompression": False,
        "SyncStorageArea": False,
        "SaveJobs": False,
        "StorageAccessOnFind": "Never",
        "StableAge": 1,
        "Plugins": [PLUGINS],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": True, "StudiesMetadata": "Full",
                     "SeriesMetadata": "Full"},
        "DicomModalities": {
            "medio": ["MEDIO", "127.0.0.1", move_port],
            "dcmtk": ["DCMTK", "127.0.0.1", dcmtk_port],
        },
        "DicomScpTimeout": 30,
        "ConcurrentJobs": 2,
    }
    cfg = folder / "orthanc.json"
    cfg.write_text(json.dumps(config, indent=2))
    env = dict(os.environ, TCP_NODELAY="1")  # DCMTK (inside Orthanc) then sends small PDUs at once
    with open(folder / "orthanc.log", "wb") as log:
        proc = subprocess.Popen([ORTHANC, str(cfg)], stdout=log, stderr=subprocess.STDOUT, cwd=folder, env=env,
                                start_new_session=True)
    server = OrthancServer(folder, http_port, dicom_port, "ORTHANC", move_port, dcmtk_port, proc)
    import requests

    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"Orthanc exited at start: {(folder / 'orthanc.log').read_text()[-2000:]}")
        try:
            if requests.get(server.url + "/system", timeout=2).ok:
                plugins = requests.get(server.url + "/plugins", timeout=2).json()
                if "dicom-web" not in plugins:
                    server.stop()
                    message = "the Orthanc DICOMweb plugin is not installed (apt-get install orthanc-dicomweb)"
                    if os.environ.get("CI"):
                        pytest.fail(message)
                    pytest.skip(message)
                return server
        except requests.RequestException:
            pass
        time.sleep(0.1)
    server.kill()
    raise RuntimeError("Orthanc did not start within 60 s")


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory):
    """One Orthanc per test module (tests must not rely on another test's uploads)."""
    server = start_orthanc(tmp_path_factory.mktemp("orthanc"))
    yield server
    server.stop()


@pytest.fixture
def fresh_orthanc(tmp_path):
    """An Orthanc of one's own (for tests that stop it)."""
    server = start_orthanc(tmp_path / "orthanc")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def ct_series(fixtures_dir) -> Path:
    return fixtures_dir / "dicom" / "slicer_CTHeadAxial"


# -- plain pynetdicom, the reference for what napari-medio's receive path writes ----------------------------
def _write_encoded(folder: Path):
    """An EVT_C_STORE handler writing each data set as pynetdicom encodes it (``Event.encoded_dataset``)."""
    def handle(event):
        uid = str(event.request.AffectedSOPInstanceUID)
        (folder / f"{uid}.dcm").write_bytes(event.encoded_dataset())
        return 0x0000

    folder.mkdir(parents=True, exist_ok=True)
    return handle


def pynetdicom_get(node, study: str, folder: Path, series: str = "", sop_classes=(), max_pdu: int = 0) -> int:
    """C-GET with plain pynetdicom (``AE.associate`` + ``send_c_get``); returns the instances written."""
    from pydicom.dataset import Dataset
    from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, StoragePresentationContexts, build_role, evt
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelGet as GET

    ae = AE(ae_title="MEDIO")
    ae.maximum_pdu_size = max_pdu
    ae.add_requested_context(GET)
    classes = list(sop_classes) or [cx.abstract_syntax for cx in StoragePresentationContexts[:127]]
    for uid in classes:
        ae.add_requested_context(uid, ALL_TRANSFER_SYNTAXES)
    assoc = ae.associate(node.host, node.port, ae_title=node.ae_title,
                         ext_neg=[build_role(uid, scp_role=True) for uid in classes],
                         evt_handlers=[(evt.EVT_C_STORE, _write_encoded(folder))])
    assert assoc.is_established
    ds = Dataset()
    ds.QueryRetrieveLevel = "SERIES" if series else "STUDY"
    ds.StudyInstanceUID = study
    if series:
        ds.SeriesInstanceUID = series
    for _status, _ in assoc.send_c_get(ds, GET):
        pass
    assoc.release()
    return len(list(folder.glob("*.dcm")))


def pynetdicom_listener(folder: Path, ae_title: str = "MEDIO"):
    """A plain pynetdicom C-STORE SCP on a free loopback port (``AE.start_server``); ``.shutdown()`` it."""
    from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt
    from pynetdicom.sop_class import Verification

    ae = AE(ae_title=ae_title)
    for cx in AllStoragePresentationContexts:
        ae.add_supported_context(cx.abstract_syntax, ALL_TRANSFER_SYNTAXES)
    ae.add_supported_context(Verification)
    return ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_STORE, _write_encoded(folder))])
