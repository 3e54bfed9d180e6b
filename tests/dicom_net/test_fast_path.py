"""The DIMSE fast path (event-driven pynetdicom reactor, raw writes of received data sets) against Orthanc."""
from __future__ import annotations

import pydicom
import pytest

from napari_medio.dicom import network
from napari_medio.dicom.network import DimseClient


def test_part10_header_matches_pynetdicom():
    from pydicom.dataset import FileMetaDataset
    from pynetdicom import PYNETDICOM_IMPLEMENTATION_UID, PYNETDICOM_IMPLEMENTATION_VERSION
    from pynetdicom.dsutils import encode_file_meta

    for sop, inst, ts in [("1.2.840.10008.5.1.4.1.1.2", "1.2.3.45", "1.2.840.10008.1.2.1"),
                          ("1.2.840.10008.5.1.4.1.1.66.4", "2.25.1234567", "1.2.840.10008.1.2")]:
        fm = FileMetaDataset()
        fm.FileMetaInformationVersion = b"\0\1"
        fm.MediaStorageSOPClassUID = sop
        fm.MediaStorageSOPInstanceUID = inst
        fm.TransferSyntaxUID = ts
        fm.ImplementationClassUID = PYNETDICOM_IMPLEMENTATION_UID
        fm.ImplementationVersionName = PYNETDICOM_IMPLEMENTATION_VERSION
        assert network._part10_header(sop, inst, ts) == b"\0" * 128 + b"DICM" + encode_file_meta(fm)


def test_associations_are_event_driven(orthanc):
    if not network._events_wanted():
        pytest.skip("event-driven reactor off (NAPARI_MEDIO_DIMSE_EVENTS=0 or another pynetdicom version)")
    client = DimseClient(orthanc.node())
    from pynetdicom.sop_class import Verification

    assoc = client._associate(client._ae([Verification]))
    try:
        sock_cls, dul_cls, assoc_cls = network._event_classes()
        assert type(assoc.dul) is dul_cls and type(assoc.dul.socket) is sock_cls and type(assoc) is assoc_cls
        assert assoc.send_c_echo().Status == 0
    finally:
        assoc.release()
    assert assoc.is_released


def test_many_sends_and_retrieves_do_not_time_out(orthanc, ct_series, tmp_path):
    """Fast round trips exposed pynetdicom's racy reactor pause (a C-STORE response snatched by the idle
    reactor, then a DIMSE timeout): hundreds of C-STOREs with a short DIMSE timeout, then C-GET and C-MOVE
    read back byte for byte."""
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
        assert not list(out.glob("*.part"))
        for f in files[:5]:
            src = pydicom.dcmread(f)
            got = pydicom.dcmread(out / f"{src.SOPInstanceUID}.dcm")
            assert got.file_meta.MediaStorageSOPInstanceUID == src.SOPInstanceUID
            assert got.PixelData == src.PixelData


def test_snatched_response_goes_back_to_the_waiting_operation():
    from pynetdicom import AE
    from pynetdicom.association import Association
    from pynetdicom.dimse_primitives import C_STORE

    assoc = Association(AE(), "requestor")
    assoc.__class__ = network._event_classes()[2]
    first, later = C_STORE(), C_STORE()
    for i, rsp in enumerate((first, later), 1):
        rsp.MessageIDBeingRespondedTo = i
        rsp.Status = 0x0000
    assoc.dimse.msg_queue.put((3, later))
    assoc._reactor_checkpoint.clear()  # an operation has paused the reactor and waits for `first`
    assoc._serve_request(first, 1)
    assert assoc.dimse.msg_queue.get_nowait() == (1, first)
    assert assoc.dimse.msg_queue.get_nowait() == (3, later)
    assoc._reactor_checkpoint.set()  # no operation under way: pynetdicom's behaviour (logged, dropped)
    assoc._serve_request(first, 1)
    assert assoc.dimse.msg_queue.empty()
