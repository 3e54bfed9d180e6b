"""Real napari viewer: the status bar says where the cursor is in patient terms, and what is there."""
from __future__ import annotations

import numpy as np
import pytest

import napari_medio
from napari_medio.core.geometry import Geometry
from napari_medio.core.volume import Volume

pytestmark = pytest.mark.viewer

#: A sagittal acquisition: file axes i -> +P, j -> -S, k -> -L (the view is transposed and flipped).
SAGITTAL = Geometry([0.9, 1.1, 1.7], [40.0, -20.0, 30.0], np.column_stack([[0, 1, 0], [0, 0, -1], [-1, 0, 0]]))


def _open(viewer, tmp_path, volume, name):
    path = tmp_path / name
    napari_medio.write(volume, path)
    return viewer.open(str(path), plugin="napari-medio")


def _status_at(viewer, lps):
    viewer.mouse_over_canvas = True
    viewer.cursor.position = tuple(np.asarray(lps, float)[::-1])  # world (S, P, L)
    viewer.update_status_from_cursor()
    status = viewer.status
    return status["coordinates"] if isinstance(status, dict) else status


def test_status_gives_patient_position_voxel_index_and_value(make_napari_viewer, tmp_path):
    arr = np.arange(9 * 10 * 11, dtype=np.int32).reshape(9, 10, 11)  # a[k, j, i]: every value unique
    viewer = make_napari_viewer()
    [layer] = _open(viewer, tmp_path, Volume(arr, SAGITTAL, name="sag"), "sag.nrrd")
    for ijk in [(0, 0, 0), (3, 7, 5), (10, 9, 8)]:
        viewer.dims.set_point(range(3), tuple(SAGITTAL.index_to_lps(ijk)[::-1]))
        lps = np.asarray(viewer.dims.point)[::-1]  # the slider snaps to its grid: the cursor is on the slice shown
        text = _status_at(viewer, lps)
        x, y, z = lps
        expected = (f"{'R' if x < 0 else 'L'} {abs(x):.1f}  {'A' if y < 0 else 'P'} {abs(y):.1f}  "
                    f"{'I' if z < 0 else 'S'} {abs(z):.1f} mm")
        assert text.startswith(expected), (text, expected)
        i, j, k = np.round(SAGITTAL.lps_to_index(lps)).astype(int).reshape(-1)
        assert f"{layer.name} ({i}, {j}, {k}) = {arr[k, j, i]}" in text, text
    # Shown in the Qt status bar too.
    label = viewer.window._qt_window.statusBar()._coordinates
    assert label.text() == text
    # Outside the volume: the position only.
    outside = SAGITTAL.index_to_lps((-5, 0, 0))
    assert _status_at(viewer, outside).endswith(" mm")


def test_status_names_the_segment_of_a_label_map(make_napari_viewer, tmp_path):
    labels = np.zeros((4, 5, 6), np.uint8)
    labels[1:3, 1:4, 2:5] = 2
    table = {1: {"name": "liver", "color": [1, 0, 0, 1]}, 2: {"name": "left kidney", "color": [0, 1, 0, 1]}}
    vol = Volume(labels, Geometry([1.0, 1.0, 2.0], [-3.0, -4.0, -5.0], np.eye(3)), kind="labelmap",
                 name="seg", metadata={"color_table": table})
    viewer = make_napari_viewer()
    [layer] = _open(viewer, tmp_path, vol, "seg.seg.nrrd")
    assert layer.__class__.__name__ == "Labels"
    lps = vol.geometry.index_to_lps((3, 2, 1))
    viewer.dims.set_point(range(3), tuple(lps[::-1]))
    text = _status_at(viewer, lps)
    assert "(3, 2, 1) = 2" in text and "left kidney" in text, text
    assert text.startswith("L 0.0  A 2.0  I 3.0 mm"), text  # LPS (0, -2, -3)
    background = vol.geometry.index_to_lps((0, 0, 0))
    viewer.dims.set_point(range(3), tuple(background[::-1]))
    text = _status_at(viewer, background)
    assert "(0, 0, 0) = 0" in text and "kidney" not in text, text
