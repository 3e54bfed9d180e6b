"""Real napari viewer: drop a DICOM folder with two series; drive the DICOM browser widget."""
from __future__ import annotations

import numpy as np
import pytest
from pydicom.uid import generate_uid

from tests.dicom._make import make_series

pytestmark = pytest.mark.viewer


def _two_series(root):
    study = generate_uid()
    d1, _, u1 = make_series(root / "a", n=3, study_uid=study, series_number=3, description="Head",
                            origin=(-10, 20, 30), step=(0, 0, 2.0))
    d2, _, u2 = make_series(root / "b", n=4, study_uid=study, series_number=4, description="Neck",
                            origin=(5, -7, -50), step=(0, 0, 1.5), seed=9)
    return (d1, u1), (d2, u2)


def test_drop_folder_opens_the_chooser_and_loads_two_layers_in_place(make_napari_viewer, qtbot, tmp_path):
    (d1, u1), (d2, u2) = _two_series(tmp_path / "drop")
    viewer = make_napari_viewer()
    assert viewer.open(str(tmp_path / "drop"), plugin="napari-medio") == []  # several series: the chooser
    chooser = viewer.window.dock_widgets["DICOM series: drop"]
    assert chooser.table.rowCount() == 2 and chooser.table.item(1, 2).text() == "Neck"
    worker = chooser.load(chooser.non_localizers())
    with qtbot.waitSignal(worker.finished, timeout=60000):
        pass
    qtbot.waitUntil(lambda: len(viewer.layers) == 2, timeout=10000)
    layers = list(viewer.layers)
    assert [layer.name for layer in layers] == ["3: Head", "4: Neck"]
    assert "loaded" in chooser.table.item(0, 5).text()
    for layer, data, origin in ((layers[0], d1, (-10, 20, 30)), (layers[1], d2, (5, -7, -50))):
        np.testing.assert_array_equal(np.asarray(layer.data), data)
        # Voxel (0,0,0) sits at the DICOM origin: world (S, P, L).
        np.testing.assert_allclose(layer.data_to_world((0, 0, 0)), origin[::-1], atol=1e-9)
        md = layer.metadata["medio"]["metadata"]["dicom"]
        assert md["StudyInstanceUID"] and md["SeriesInstanceUID"] in (u1["series"], u2["series"])
    np.testing.assert_allclose(layers[1].data_to_world((3, 0, 0)), (-50 + 4.5, -7, 5), atol=1e-9)


def test_browser_import_list_search_load_delete(make_napari_viewer, qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("NAPARI_MEDIO_CONFIG", str(tmp_path / "settings.json"))
    (d1, u1), (d2, u2) = _two_series(tmp_path / "in")
    viewer = make_napari_viewer()
    from napari_medio.plugin.dicom_browser import DicomBrowser

    widget = DicomBrowser(viewer, database=tmp_path / "db")
    viewer.window.add_dock_widget(widget, name="DICOM browser")
    worker = widget.import_paths([str(tmp_path / "in")], copy=True)
    with qtbot.waitSignal(worker.finished, timeout=60000):
        pass
    qtbot.waitUntil(lambda: widget.series_table.rowCount() == 2, timeout=10000)
    assert widget.patient_table.item(0, 0).text() == "Test^Patient"
    assert widget.study_table.item(0, 1).text() == "Test study"
    assert [widget.series_table.item(r, 2).text() for r in range(2)] == ["Head", "Neck"]
    assert widget.series_table.item(1, 3).text() == "4"
    # Search.
    widget.search_edit.setText("neck")
    assert widget.series_table.rowCount() == 1 and widget.series_table.item(0, 2).text() == "Neck"
    widget.search_edit.setText("")
    # Load the selected series.
    widget.select_series([u2["series"]])
    assert widget.selected_series() == [u2["series"]]
    assert "Test^Patient" in widget.header_text()
    dlg = widget.show_header()
    assert dlg is not None
    dlg.close()
    worker = widget.load_selected()
    with qtbot.waitSignal(worker.finished, timeout=60000):
        pass
    qtbot.waitUntil(lambda: len(viewer.layers) == 1, timeout=10000)
    layer = viewer.layers[0]
    assert layer.name == "4: Neck"
    np.testing.assert_array_equal(np.asarray(layer.data), d2)
    np.testing.assert_allclose(layer.data_to_world((0, 0, 0)), (-50, -7, 5), atol=1e-9)
    # Delete the other series.
    widget.select_series([u1["series"]])
    assert widget.delete_selected() == 3
    assert widget.series_table.rowCount() == 1
    assert len(list((tmp_path / "db" / "store").rglob("*.dcm"))) == 4
    # The database folder is a persistent setting.
    widget.set_database(tmp_path / "db2")
    from napari_medio.core.settings import load_settings

    assert load_settings()["dicom_database"] == str(tmp_path / "db2")
    assert widget.series_table.rowCount() == 0


def test_browser_import_progress_and_problems(make_napari_viewer, qtbot, tmp_path, monkeypatch):
    """The progress bar shows at once (indeterminate), import problems are listed with file and reason,
    and a .zip imports like a folder."""
    import zipfile

    monkeypatch.setenv("NAPARI_MEDIO_CONFIG", str(tmp_path / "settings.json"))
    (d1, u1), (d2, u2) = _two_series(tmp_path / "in")
    empty = tmp_path / "in" / "empty.dcm"
    empty.write_bytes(b"")
    viewer = make_napari_viewer()
    from napari_medio.plugin.dicom_browser import DicomBrowser

    widget = DicomBrowser(viewer, database=tmp_path / "db")
    viewer.window.add_dock_widget(widget, name="DICOM browser")
    assert widget.progress_bar.isHidden() and widget.problems_button.isHidden()
    worker = widget.import_paths([str(tmp_path / "in")])
    # Before the worker reported anything: shown, and busy (range 0..0) until the file count is known.
    assert not widget.progress_bar.isHidden()
    assert (widget.progress_bar.minimum(), widget.progress_bar.maximum()) == (0, 0)
    with qtbot.waitSignal(worker.finished, timeout=60000):
        pass
    qtbot.waitUntil(lambda: widget.series_table.rowCount() == 2, timeout=10000)
    assert widget.progress_bar.isHidden()
    assert widget.problems == [(str(empty), "empty file")]
    assert widget.problems_button.text() == "Problems (1)" and not widget.problems_button.isHidden()
    assert widget.problems_table.isHidden()  # collapsed until asked
    widget.problems_button.setChecked(True)
    assert not widget.problems_table.isHidden()
    assert (widget.problems_table.item(0, 0).text(), widget.problems_table.item(0, 1).text()) == (
        str(empty), "empty file")
    assert "1 problem(s)" in widget.status.text()
    # A zip of the same series in link mode: stored in the database, nothing new, no problems.
    empty.unlink()
    archive = tmp_path / "series.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in sorted(p for p in (tmp_path / "in").rglob("*") if p.is_file()):
            zf.write(f, f.relative_to(tmp_path / "in").as_posix())
    worker = widget.import_paths([str(archive)])
    with qtbot.waitSignal(worker.finished, timeout=60000):
        pass
    qtbot.waitUntil(lambda: widget.last_report is not None and widget.last_report.archives == 1, timeout=10000)
    assert widget.problems == [] and widget.problems_button.isHidden()
    assert widget.last_report.copied == 7 and "zip archive" in widget.status.text()
