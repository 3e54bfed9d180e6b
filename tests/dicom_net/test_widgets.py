"""The Export-to-DICOM and PACS dock widgets in a real napari viewer (xvfb), against a real Orthanc."""
from __future__ import annotations

import os

import numpy as np
import pydicom
import pytest

pytest.importorskip("napari")


@pytest.fixture
def viewer(make_napari_viewer):
    return make_napari_viewer()


def test_export_widget_image_and_labels(viewer, tmp_path, fixtures_dir):
    from napari_medio.plugin.dicom_export_widget import DicomExportWidget
    from napari_medio.plugin.reader import read_layers

    liver = fixtures_dir / "dicom" / "dcmqi_ct3slice_liver"
    layers = read_layers(os.fspath(liver / "image")) + read_layers(os.fspath(liver / "liver_seg.nrrd"))
    for data, kwargs, kind in layers:
        getattr(viewer, f"add_{kind}")(data, **kwargs)
    viewer.add_points(np.zeros((1, 3)), name="pts")
    w = DicomExportWidget(viewer)
    w.patient_name.setText("Widget^Test")
    w.series_description.setText("from widget")
    w.reference.setText(os.fspath(liver / "image"))
    w.folder.setText(os.fspath(tmp_path))
    from qtpy.QtCore import Qt

    for i in range(w.layers.count()):
        w.layers.item(i).setCheckState(Qt.Checked)
    messages = w.export()
    assert any("pts" in m and "skipped" in m for m in messages), messages
    files = sorted(tmp_path.rglob("*.dcm"))
    modalities = sorted(pydicom.dcmread(f, stop_before_pixels=True).Modality for f in files)
    assert modalities == ["CT", "CT", "CT", "SEG"], messages
    assert all(str(pydicom.dcmread(f, stop_before_pixels=True).PatientName) == "Widget^Test" for f in files)


def test_pacs_widget_query_retrieve_errors(viewer, orthanc, ct_series, tmp_path):
    from napari_medio.dicom.database import DicomDatabase
    from napari_medio.dicom.network import DimseClient
    from napari_medio.plugin.pacs_widget import PacsWidget

    DimseClient(orthanc.node()).send(sorted(p for p in ct_series.iterdir() if p.is_file()))
    w = PacsWidget(viewer)
    w.database.setText(os.fspath(tmp_path / "db"))
    w.server.setEditText("ORTHANC@127.0.0.1:1")
    assert w.echo() is None and "connection refused" in w.status.text()
    w.server.setEditText(f"WRONG@127.0.0.1:{orthanc.dicom_port}")
    assert w.query() == [] and "rejected" in w.status.text()
    w.server.setEditText(orthanc.dicomweb)
    rows = w.query()
    assert len(rows) >= 1 and w.table.rowCount() == len(rows)
    results = w.retrieve([0])
    assert results and results[0].completed == 93
    assert DicomDatabase(tmp_path / "db").counts()["instances"] == 93
    w.listen_port.setValue(0)
    assert w.toggle_listener() is True
    port = w.listener.port
    from napari_medio.dicom.network import DicomNode

    assert DimseClient(DicomNode("MEDIO", "127.0.0.1", port)).echo() < 5
    assert w.toggle_listener() is False
