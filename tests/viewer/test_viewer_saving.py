"""Real napari viewer: saving napari-medio layers keeps geometry, names and colours, or says why not."""
from __future__ import annotations

import numpy as np
import pytest

import napari_medio
from napari_medio.core.geometry import Geometry
from napari_medio.core.volume import Volume

pytestmark = pytest.mark.viewer

GEOMETRY = Geometry([0.5, 0.6, 2.0], [-10.0, 20.0, 30.0], np.eye(3))
TABLE = {1: {"name": "liver", "color": [0.8, 0.2, 0.1, 1.0]}, 3: {"name": "left kidney", "color": [0.1, 0.6, 0.3, 1.0]}}


def _labels() -> Volume:
    a = np.zeros((4, 5, 6), np.uint8)
    a[1, 1:3, 1:3] = 1
    a[2, 2:4, 3:5] = 3
    return Volume(a, GEOMETRY, kind="labelmap", name="seg", metadata={"color_table": TABLE})


def _open(viewer, tmp_path, volume, name):
    napari_medio.write(volume, tmp_path / name)
    [layer] = viewer.open(str(tmp_path / name), plugin="napari-medio")
    return layer


def test_label_names_and_colours_go_beside_a_nifti(make_napari_viewer, tmp_path):
    from napari.utils.notifications import notification_manager

    viewer = make_napari_viewer()
    layer = _open(viewer, tmp_path, _labels(), "in.seg.nrrd")
    viewer.layers.selection = {layer}
    before = len(notification_manager.records)
    out = tmp_path / "out" / "seg.nii.gz"
    out.parent.mkdir()
    written = viewer.layers.save(str(out), selected=True, plugin="napari-medio")
    side = tmp_path / "out" / "seg.ctbl"
    assert side.exists() and str(side) in written
    said = [str(n.message) for n in notification_manager.records[before:]]
    assert [m for m in said if "seg.ctbl" in m and "seg.nii.gz" in m], said
    [table] = napari_medio.read(side)
    assert {k: e.name for k, e in table.entries.items() if k} == {1: "liver", 3: "left kidney"}
    np.testing.assert_allclose(table.entries[3].color[:3], TABLE[3]["color"][:3], atol=1 / 255)
    [back] = napari_medio.read(out)
    np.testing.assert_array_equal(back.array, _labels().array)
    assert back.geometry.almost_equal(GEOMETRY)
    # A format that holds names and colours gets no colour table beside it.
    seg = tmp_path / "out" / "again.seg.nrrd"
    written = viewer.layers.save(str(seg), selected=True, plugin="napari-medio")
    assert not (tmp_path / "out" / "again.ctbl").exists() and all(not w.endswith(".ctbl") for w in written)


def test_several_layers_to_one_file_is_a_clear_error(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    vol = Volume(np.arange(120, dtype=np.int16).reshape(4, 5, 6), GEOMETRY, name="ct")
    a = _open(viewer, tmp_path, vol, "a.nrrd")
    b = _open(viewer, tmp_path, vol, "b.nrrd")
    viewer.layers.selection = {a, b}
    with pytest.warns(UserWarning) as caught:
        written = viewer.layers.save(str(tmp_path / "both.nrrd"), selected=True)  # napari finds napari-medio
    said = [str(w.message) for w in caught]
    assert written == [] and [m for m in said if "2 are selected" in m and "'a'" in m and "'b'" in m], said
    assert not (tmp_path / "both.nrrd").exists()


@pytest.mark.parametrize("ext", [".tif", ".png"])
def test_tif_and_png_through_napari_medio_keep_the_geometry(make_napari_viewer, tmp_path, ext):
    viewer = make_napari_viewer()
    if ext == ".png":
        vol = Volume(np.arange(30, dtype=np.uint8).reshape(5, 6), Geometry([0.5, 0.7], [3.0, -4.0], np.eye(2)),
                     name="slice")
    else:
        vol = Volume(np.arange(120, dtype=np.int16).reshape(4, 5, 6), GEOMETRY, name="ct")
    layer = _open(viewer, tmp_path, vol, "in.nrrd")
    viewer.layers.selection = {layer}
    out = tmp_path / f"out{ext}"
    viewer.layers.save(str(out), selected=True, plugin="napari-medio")
    [back] = napari_medio.read(out)
    np.testing.assert_array_equal(back.array, vol.array)
    np.testing.assert_allclose(back.geometry.spacing, vol.geometry.spacing, atol=1e-6)
    if ext == ".tif":  # PNG stores the pixel size (pHYs) but no origin
        np.testing.assert_allclose(back.geometry.origin, vol.geometry.origin, atol=1e-6)


def test_file_menu_offers_napari_medio_export(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    layer = _open(viewer, tmp_path, Volume(np.arange(120, dtype=np.int16).reshape(4, 5, 6), GEOMETRY, name="ct"),
                  "in.nrrd")
    viewer.layers.selection = {layer}

    def actions(menu):
        for action in menu.actions():
            yield action
            if action.menu():
                yield from actions(action.menu())

    [export] = [a for a in actions(viewer.window.file_menu) if a.text().startswith("Export with napari-medio")]
    export.trigger()
    docks = dict(viewer.window.dock_widgets)
    assert [name for name in docks if "Export" in name], list(docks)
