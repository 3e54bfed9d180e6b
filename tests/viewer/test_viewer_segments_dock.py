"""Real napari viewer: the Segments dock on Slicer's Segmentation.seg.nrrd (7 segments) and a plain Labels layer."""
from __future__ import annotations

import numpy as np
import pytest

import napari_medio
from tests.conftest import fixture_file

pytestmark = pytest.mark.viewer

NAMES = ["ribs", "cervical vertebral column", "thoracic vertebral column", "lumbar vertebral column",
         "right lung", "left lung", "tissue"]


@pytest.fixture
def seg_viewer(make_napari_viewer):
    viewer = make_napari_viewer()
    [layer] = viewer.open(fixture_file("segmentations/Segmentation.seg.nrrd"), plugin="napari-medio")
    _, dock = viewer.window.add_plugin_dock_widget("napari-medio", "Segments")
    return viewer, layer, dock


def test_lists_segments_with_name_colour_value(seg_viewer):
    viewer, layer, dock = seg_viewer
    t = dock.table
    assert dock.layer_combo.currentText() == layer.name
    assert [t.item(r, 2).text() for r in range(t.rowCount())] == NAMES
    assert [t.item(r, 3).text() for r in range(t.rowCount())] == [str(v) for v in range(1, 8)]
    ribs = t.item(0, 1).background().color()
    assert (ribs.red(), ribs.green(), ribs.blue()) == (253, 232, 158)  # 0.992157 0.909804 0.619608
    header = t.horizontalHeader()
    assert all(header.sectionSize(c) > 0 for c in range(t.columnCount()))


def test_select_to_paint_and_follow(seg_viewer):
    viewer, layer, dock = seg_viewer
    dock.select(5)
    assert layer.selected_label == 5
    layer.selected_label = 3
    assert dock.selected_value() == 3


def test_visibility_and_opacity_change_what_is_drawn_and_saving_keeps_colours(seg_viewer, tmp_path):
    viewer, layer, dock = seg_viewer
    lung = 4  # row of "right lung" (label 5)
    dock.set_visible(lung, False)
    assert layer.colormap.map(np.array([5]))[0][3] == 0.0
    assert layer.colormap.map(np.array([6]))[0][3] == pytest.approx(1.0)
    dock.set_opacity(5, 0.25)
    assert layer.colormap.map(np.array([6]))[0][3] == pytest.approx(0.25)
    # the screen: a slice through both lungs shows the left lung's colour, not the hidden right lung's
    viewer.dims.set_point(0, float(np.mean(layer.extent.world[:, 0])))
    img = viewer.screenshot(canvas_only=True, flash=False)
    right = (np.asarray(layer.colormap.color_dict[5])[:3] * 255).round()
    assert not np.any(np.all(np.abs(img[..., :3].astype(int) - right) <= 2, axis=-1))
    # saving writes the true colours, not the display alpha
    from napari_medio.plugin.writer import write_labels

    out = tmp_path / "shown.seg.nrrd"
    write_labels(str(out), layer.data, layer.as_layer_data_tuple()[1])
    [back] = napari_medio.read(out)
    by_value = {s.label_value: s for s in back.segments}
    np.testing.assert_allclose(by_value[5].color, (0.0862745, 0.772549, 0.278431), atol=2e-3)
    assert [s.name for s in back.segments] == NAMES


def test_rename_goes_to_features(seg_viewer):
    viewer, layer, dock = seg_viewer
    dock.table.item(6, 2).setText("soft tissue")
    names = dict(zip(layer.features["index"], layer.features["name"]))
    assert names[7] == "soft tissue" and names[1] == "ribs"


def test_show_3d_smoothed_surfaces_follow_visibility(seg_viewer, qtbot):
    viewer, layer, dock = seg_viewer
    viewer.dims.set_point(viewer.dims.not_displayed[0], float(layer.extent.world[:, 0].mean()))
    before = tuple(viewer.dims.point)
    worker = dock.show_3d(True)
    with qtbot.waitSignal(worker.finished, timeout=120000):
        pass
    qtbot.waitUntil(lambda: len(dock._surfaces) == 7, timeout=20000)
    assert tuple(viewer.dims.point) == pytest.approx(before)  # the slice shown stays
    surfaces = {v: s for v, s in dock._surfaces.items()}
    assert surfaces[5].name == f"{layer.name}: right lung"
    verts = surfaces[5].data[0]
    # the surface lies inside the label's world bounding box (LPS world, (S, P, L) order)
    idx = np.argwhere(np.asarray(layer.data) == 5)
    world = np.array([layer.data_to_world(i) for i in idx[:: max(1, len(idx) // 500)]])
    assert np.all(verts.min(0) >= world.min(0) - 11) and np.all(verts.max(0) <= world.max(0) + 11)
    dock.set_visible(4, False)
    assert not surfaces[5].visible and surfaces[6].visible
    dock.show_3d(False)
    assert not [other for other in viewer.layers if other.name.startswith(f"{layer.name}: ")]


def test_export_surfaces_from_the_dock(seg_viewer, tmp_path):
    viewer, layer, dock = seg_viewer
    written = dock.export(str(tmp_path / "out"), "stl")
    assert len(written) == 7 and all(p.endswith(".stl") for p in written)
    [model] = napari_medio.read(written[0])
    assert model.points.shape[0] > 100


def test_plain_labels_layer(make_napari_viewer):
    viewer = make_napari_viewer()
    data = np.zeros((4, 8, 8), np.uint8)
    data[1:3, 2:5, 2:5] = 3
    data[1:3, 5:7, 5:7] = 9
    layer = viewer.add_labels(data, name="painted")
    _, dock = viewer.window.add_plugin_dock_widget("napari-medio", "Segments")
    assert [dock.table.item(r, 3).text() for r in range(dock.table.rowCount())] == ["3", "9"]
    dock.set_visible(1, False)
    assert layer.colormap.map(np.array([9]))[0][3] == 0.0 and layer.colormap.map(np.array([3]))[0][3] > 0
