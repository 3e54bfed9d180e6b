"""Real napari viewer: files that give no layer say what they held and open the dock that shows it."""
from __future__ import annotations

import pytest

from tests.conftest import fixture_file

pytestmark = pytest.mark.viewer

SLICER4_SCENE = """<MRML  version="Slicer4.4.0" userTags="">
 <AnnotationFiducials id="vtkMRMLAnnotationFiducialNode1" name="F_1" ctrlPtsCoord="10|20|30" ></AnnotationFiducials>
 <AnnotationFiducials id="vtkMRMLAnnotationFiducialNode2" name="F_2" ctrlPtsCoord="1|2|3" ></AnnotationFiducials>
 <AnnotationRuler id="vtkMRMLAnnotationRulerNode1" name="R" ctrlPtsCoord="0|0|0|10|0|0" ></AnnotationRuler>
 <AnnotationROI id="vtkMRMLAnnotationROINode1" name="ROI" ></AnnotationROI>
 <AnnotationPointDisplay id="vtkMRMLAnnotationPointDisplayNode1" name="d" ></AnnotationPointDisplay>
</MRML>
"""


@pytest.fixture
def messages():
    """Napari notifications shown during the test (the real notification manager, recorded)."""
    from napari.utils.notifications import notification_manager

    seen: list[str] = []

    def record(notification) -> None:
        seen.append(str(notification.message))

    notification_manager.notification_ready.connect(record)
    yield seen
    notification_manager.notification_ready.disconnect(record)


def _dock_names(viewer) -> set[str]:
    return set(viewer.window.dock_widgets)


@pytest.mark.parametrize("relpath, words, dock", [
    ("transforms/affine.tfm", ["transform", "Transforms dock"], "Transforms"),
    ("tables/table.csv", ["table", "rows", "Tables and colour tables dock"], "Tables and colour tables"),
    ("colors/ColorTest.ctbl", ["colour table", "colours"], "Tables and colour tables"),
])
def test_non_layer_file_says_what_it_read_and_opens_its_dock(make_napari_viewer, messages, relpath, words, dock):
    viewer = make_napari_viewer()
    seen = messages
    path = fixture_file(relpath)
    assert viewer.open(path, plugin="napari-medio") == []
    line = [m for m in seen if path.name in m]
    assert len(line) == 1 and "\n" not in line[0], seen
    assert all(w in line[0] for w in words), line
    assert any(name.endswith(dock) or dock in name for name in _dock_names(viewer)), _dock_names(viewer)


def test_plain_json_opens_the_text_dock(make_napari_viewer, messages, tmp_path):
    viewer = make_napari_viewer()
    seen = messages
    p = tmp_path / "notes.json"
    p.write_text('{"a": 1,\n "b": [1, 2]}')
    viewer.open(p, plugin="napari-medio")
    assert any(m.startswith("notes.json: JSON text") and "Text dock" in m for m in seen), seen
    docks = [w for name, w in viewer.window.dock_widgets.items() if "Text" in name]
    assert docks and '"b"' in docks[0].text()


def test_slicer4_annotations_are_named(make_napari_viewer, messages, tmp_path):
    viewer = make_napari_viewer()
    seen = messages
    p = tmp_path / "old.mrml"
    p.write_text(SLICER4_SCENE)
    viewer.open(p, plugin="napari-medio")
    line = [m for m in seen if m.startswith("old.mrml:")]
    assert line and "2 fiducials" in line[0] and "1 ruler" in line[0] and "1 ROI" in line[0], seen
    assert "Slicer 4 annotations" in line[0]


def test_reader_without_viewer_still_returns_layer_data(tmp_path):
    """The npe2 reader contract: layer data, no viewer needed; the message is returned by announcement()."""
    from napari_medio.plugin.reader import announcement, get_reader

    p = tmp_path / "notes.txt"
    p.write_text("hello\nworld\n")
    assert get_reader(str(p))(str(p)) == [(None,)]
    assert announcement(p, [], 0) == "notes.txt: no data napari-medio can show"


def test_open_with_options_on_a_transform_adds_no_layer_and_says_so(make_napari_viewer, messages):
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-medio", "Open with options")
    widget._path.value = fixture_file("transforms/affine.tfm")
    assert widget.load() == [] and len(viewer.layers) == 0
    assert any(m.startswith("affine.tfm: linear transform") for m in messages), messages


def test_slicer4_annotations_with_files_load_silently(make_napari_viewer, messages):
    """Slicer's AnnotationFiducialsTest scene: the fiducials load (as markups), so nothing is said about them."""
    scene = fixture_file("scenes/AnnotationTest/AnnotationFiducialsTest.mrml")
    viewer = make_napari_viewer()
    layers = viewer.open(scene, plugin="napari-medio")
    assert layers
    assert not any("annotations not shown" in m for m in messages), messages
