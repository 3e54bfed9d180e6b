"""Real napari viewer at its default window size: every napari-medio dock shows its columns and no "None".

Each dock is opened through napari (``add_plugin_dock_widget``) with data in it; the
test checks every visible table (each column has a width and starts inside the
viewport, except a data table's, which scroll; no cell says "None") and every label.  With ``MEDIO_DOCK_SHOTS=<folder>``
the window is also saved as ``<dock>.png`` there, to look at.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from pydicom.uid import generate_uid

from tests.conftest import fixture_file
from tests.dicom._make import make_series

pytestmark = pytest.mark.viewer

MIN_COLUMN = 24  # px: narrower than this a column shows nothing readable


def _texts(widget) -> list[str]:
    """Every text a user reads in ``widget``: labels, buttons, combos, line edits, table cells and headers."""
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QAbstractButton, QComboBox, QLabel, QLineEdit, QTableView

    out = []
    for w in widget.findChildren(QLabel):
        out.append(w.text())
    for w in widget.findChildren(QAbstractButton):
        out.append(w.text())
    for w in widget.findChildren(QComboBox):
        out += [w.itemText(i) for i in range(w.count())]
    for w in widget.findChildren(QLineEdit):
        out.append(w.text())
    for t in widget.findChildren(QTableView):
        m = t.model()
        for r in range(m.rowCount()):
            for c in range(m.columnCount()):
                out.append(str(m.data(m.index(r, c)) or ""))
        for c in range(m.columnCount()):
            out.append(str(m.headerData(c, Qt.Orientation.Horizontal) or ""))
    return out


def _table_problems(widget) -> list[str]:
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QTableView

    problems = []
    for t in widget.findChildren(QTableView):
        if not t.isVisible():
            continue
        header = t.horizontalHeader()
        width = t.viewport().width()
        for c in range(header.count()):
            if header.isSectionHidden(c):
                continue
            title = t.model().headerData(c, Qt.Orientation.Horizontal)
            size, pos = header.sectionSize(c), header.sectionViewportPosition(c)
            if size < MIN_COLUMN:
                problems.append(f"column {title!r} is {size} px wide")
            if t.property("medio_data_table"):  # a data table's columns scroll sideways
                continue
            if pos < 0 or pos + MIN_COLUMN > width:
                problems.append(f"column {title!r} starts at {pos} px, outside the {width} px viewport")
    return problems


def _check(viewer, name: str, widget, qtbot) -> None:
    from qtpy.QtWidgets import QApplication

    QApplication.processEvents()
    qtbot.wait(50)
    shots = os.environ.get("MEDIO_DOCK_SHOTS")
    if shots:
        Path(shots).mkdir(parents=True, exist_ok=True)
        viewer.screenshot(str(Path(shots) / f"{name}.png"), canvas_only=False, flash=False)
    nones = [t for t in _texts(widget) if "None" in t]
    assert not nones, f"{name}: 'None' shown: {nones}"
    problems = _table_problems(widget)
    assert not problems, f"{name}: " + "; ".join(problems)


def _dock(viewer, name):
    _, widget = viewer.window.add_plugin_dock_widget("napari-medio", name)
    return widget


def _open_ct_and_seg(viewer):
    viewer.open(fixture_file("images/CTChest4.nrrd"), plugin="napari-medio")
    viewer.open(fixture_file("segmentations/Segmentation.seg.nrrd"), plugin="napari-medio")
    viewer.add_points(np.array([[-100.0, 10, 20]]), name="fiducials")


@pytest.fixture
def viewer(make_napari_viewer, tmp_path, monkeypatch):
    monkeypatch.setenv("NAPARI_MEDIO_CONFIG", str(tmp_path / "settings.json"))
    monkeypatch.setenv("NAPARI_MEDIO_DICOM_DB", str(tmp_path / "db"))
    return make_napari_viewer(show=True)


def test_add_data(viewer, qtbot):
    w = _dock(viewer, "Add data")
    w.add_paths([fixture_file("images/CTChest4.nrrd"), fixture_file("segmentations/Segmentation.seg.nrrd"),
                 fixture_file("transforms/affine.tfm"), fixture_file("colors/ColorTest.ctbl")])
    w.set_description(0, "label map")
    _check(viewer, "add_data", w, qtbot)
    item = w.table.item(0, 1)
    assert item.toolTip() == str(fixture_file("images/CTChest4.nrrd"))


def test_save_scene_and_export(viewer, qtbot):
    _open_ct_and_seg(viewer)
    _check(viewer, "save_scene", _dock(viewer, "Save scene"), qtbot)
    _check(viewer, "export", _dock(viewer, "Export"), qtbot)


def test_dicom_browser_patient_without_name(viewer, qtbot, tmp_path):
    study = generate_uid()
    make_series(tmp_path / "in" / "a", n=3, study_uid=study, series_number=3, description="Head",
                patient=("", "123456"))
    make_series(tmp_path / "in" / "b", n=2, study_uid=study, series_number=4, description="", seed=2,
                patient=("", "123456"))
    w = _dock(viewer, "DICOM browser")
    worker = w.import_paths([str(tmp_path / "in")])
    with qtbot.waitSignal(worker.finished, timeout=60000):
        pass
    qtbot.waitUntil(lambda: w.series_table.rowCount() == 2, timeout=10000)
    _check(viewer, "dicom_browser", w, qtbot)
    assert w.study_table.item(0, 0).text() == "2024-01-02"  # DA 20240102
    assert w.patient_table.item(0, 2).text() == "1970-01-01"


def test_pacs_results(viewer, qtbot):
    w = _dock(viewer, "PACS")
    w.show_results([{"PatientName": "Doe^Jane", "PatientID": "123456", "StudyDate": "20240131",
                     "StudyDescription": None, "ModalitiesInStudy": ["CT", "SEG"],
                     "NumberOfStudyRelatedInstances": 301, "StudyInstanceUID": "1.2.3.4"},
                    {"PatientName": None, "PatientID": "777", "StudyDate": "", "StudyInstanceUID": "1.2.3.5"}])
    _check(viewer, "pacs", w, qtbot)
    assert w.table.item(0, 2).text() == "2024-01-31"


@pytest.mark.parametrize("name, key", [("Transforms", "transforms"), ("Tables and colour tables", "tables"),
                                       ("Text", "text")])
def test_transforms_tables_text(viewer, qtbot, tmp_path, name, key):
    _open_ct_and_seg(viewer)
    viewer.open(fixture_file("transforms/affine.tfm"), plugin="napari-medio")
    viewer.open(fixture_file("tables/table.csv"), plugin="napari-medio")
    p = tmp_path / "notes.json"
    p.write_text('{"a": null, "b": [1, 2]}')
    viewer.open(p, plugin="napari-medio")
    for other in list(viewer.window.dock_widgets):
        if not other.startswith(name):
            viewer.window.remove_dock_widget(viewer.window.dock_widgets[other])
    _check(viewer, key, viewer.window.dock_widgets[f"{name} (napari-medio)"], qtbot)


@pytest.mark.parametrize("name, key", [("Terminology", "terminology"), ("Open with options", "open_with_options"),
                                       ("RAW volume (RawImageGuess)", "raw_volume"),
                                       ("Export to DICOM", "export_to_dicom"), ("Segments", "segments")])
def test_other_docks(viewer, qtbot, name, key):
    _open_ct_and_seg(viewer)
    w = _dock(viewer, name)
    _check(viewer, key, getattr(w, "native", w), qtbot)


def test_layer_names_never_say_none(viewer):
    """Slicer's CTHeadAxial series says SeriesDescription "None": the layer is named by its modality."""
    layers = viewer.open(fixture_file("dicom/slicer_CTHeadAxial"), plugin="napari-medio")
    assert [layer.name for layer in layers] == ["123456: CT"]
