"""Real napari viewer: DICOM folders with localizers and several series (the series chooser)."""
from __future__ import annotations

import pytest
from pydicom.uid import generate_uid

from tests.dicom._make import make_series

pytestmark = pytest.mark.viewer

SAGITTAL = (0, 1, 0, 0, 0, -1)


def _ct_with_scout(root, study):
    make_series(root / "scout", n=1, study_uid=study, series_number=1, description="Plain", orientation=SAGITTAL,
                shape=(8, 9), seed=4)
    make_series(root / "ct", n=6, study_uid=study, series_number=2, description="Body")


def test_one_series_loads_directly_without_its_localizer(make_napari_viewer, tmp_path):
    _ct_with_scout(tmp_path / "drop", generate_uid())
    viewer = make_napari_viewer()
    layers = viewer.open(str(tmp_path / "drop"), plugin="napari-medio")
    assert [layer.name for layer in layers] == ["2: Body"]
    chooser = viewer.window.dock_widgets["DICOM series: drop"]  # lists the localizer, to load when asked
    notes = [chooser.table.item(r, 5).text() for r in range(chooser.table.rowCount())]
    assert notes[0].startswith("localizer (1-image series orthogonal") and notes[1] == "loaded"


def test_many_series_no_layer_and_localizer_on_request(make_napari_viewer, qtbot, tmp_path):
    study = generate_uid()
    _ct_with_scout(tmp_path / "many", study)
    for i in range(3):
        make_series(tmp_path / "many" / f"s{i}", n=4, study_uid=study, series_number=10 + i, description=f"Recon {i}",
                    seed=10 + i)
    viewer = make_napari_viewer()
    assert viewer.open(str(tmp_path / "many"), plugin="napari-medio") == []
    assert len(viewer.layers) == 0
    chooser = viewer.window.dock_widgets["DICOM series: many"]
    assert chooser.table.rowCount() == 5 and "1 localizer" in chooser.title.text()
    assert chooser.selected() == []
    scout = chooser.rows[0].key
    chooser.select([scout])
    worker = chooser.load()
    with qtbot.waitSignal(worker.finished, timeout=60000):
        pass
    qtbot.waitUntil(lambda: len(viewer.layers) == 1, timeout=10000)
    assert viewer.layers[0].name == "1: Plain"
    assert "loaded" in chooser.table.item(0, 5).text()


def test_reader_without_a_viewer_loads_all_but_localizers(tmp_path):
    from napari_medio.plugin.reader import read_layers

    study = generate_uid()
    _ct_with_scout(tmp_path / "f", study)
    make_series(tmp_path / "f" / "other", n=3, study_uid=study, series_number=5, description="Other", seed=3)
    names = [kw["name"] for _, kw, _ in read_layers(str(tmp_path / "f"))]
    assert names == ["2: Body", "5: Other"]
