"""Real napari viewer: Slicer's views, checked on what the screen shows."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from napari_medio.core.geometry import Geometry
from napari_medio.core.phantom import PHANTOM_ANTERIOR_MARKER_LPS, PHANTOM_LEFT_MARKER_LPS
from napari_medio.core.volume import Volume

pytestmark = pytest.mark.viewer


def _blobs(viewer, threshold=250, min_size=20):
    """Bright blobs on the canvas: (row, column) centroids as fractions of the canvas, and sizes."""
    shot = viewer.screenshot(canvas_only=True, flash=False)[..., :3].astype(float)
    gray = shot.mean(axis=-1)
    labels, n = ndimage.label(gray > threshold)
    h, w = gray.shape
    out = []
    for i in range(1, n + 1):
        rows, cols = np.nonzero(labels == i)
        if rows.size >= min_size:
            out.append((rows.mean() / h, cols.mean() / w, rows.size))
    return out


def _phantom_viewer(make_napari_viewer):
    viewer = make_napari_viewer(show=True)  # an unshown canvas renders black
    viewer.open_sample("napari-medio", "ct-phantom")
    return viewer


def _goto(viewer, s=None, p=None, left=None):
    """Move the slice point to world (S, P, L) = LPS (z, y, x) values given."""
    for axis, value in ((0, s), (1, p), (2, left)):
        if value is not None:
            viewer.dims.set_point(viewer.dims.ndim - 3 + axis, value)


def test_views_show_the_patient_as_slicer_does(make_napari_viewer):
    from napari_medio.plugin import set_view
    from napari_medio.plugin.views import orientation_letters

    viewer = _phantom_viewer(make_napari_viewer)
    lx, _, _ = PHANTOM_LEFT_MARKER_LPS
    _, ay, _ = PHANTOM_ANTERIOR_MARKER_LPS
    # Axial through the superior half: left marker on the right, anterior rod at the top, spine at the bottom.
    set_view(viewer, "axial")
    _goto(viewer, s=10.0)
    blobs = _blobs(viewer)
    assert [b for b in blobs if b[1] > 0.6 and 0.35 < b[0] < 0.65], f"left marker on the screen's right: {blobs}"
    assert [b for b in blobs if b[0] < 0.4 and 0.4 < b[1] < 0.6], f"anterior rod at the top: {blobs}"
    assert [b for b in blobs if b[0] > 0.6 and 0.4 < b[1] < 0.6], f"spine at the bottom: {blobs}"
    assert not [b for b in blobs if b[1] < 0.4], blobs
    assert orientation_letters(viewer) == {"top": "A", "bottom": "P", "left": "R", "right": "L"}
    # Coronal through the left marker: it is on the right half.
    set_view(viewer, "coronal")
    _goto(viewer, p=0.0)
    blobs = _blobs(viewer)
    assert blobs and all(b[1] > 0.6 for b in blobs), f"left marker on the screen's right: {blobs}"
    # Coronal through the anterior rod (superior half only): it is in the top half.
    _goto(viewer, p=ay)
    blobs = _blobs(viewer)
    assert blobs and all(b[0] < 0.5 for b in blobs) and all(0.4 < b[1] < 0.6 for b in blobs), blobs
    assert orientation_letters(viewer) == {"top": "S", "bottom": "I", "left": "R", "right": "L"}
    # Sagittal through the midline: the anterior rod on the left and in the top half, the spine on the right.
    set_view(viewer, "sagittal")
    _goto(viewer, left=0.0)
    blobs = _blobs(viewer)
    rod = [b for b in blobs if b[1] < 0.4]
    spine = [b for b in blobs if b[1] > 0.6]
    assert rod and all(b[0] < 0.5 for b in rod), f"anterior rod at the top left: {blobs}"
    assert spine and abs(spine[0][0] - 0.5) < 0.1, f"spine on the right, full height: {blobs}"
    assert orientation_letters(viewer) == {"top": "S", "bottom": "I", "left": "A", "right": "P"}
    # Sagittal through the left marker shows it; the letters are drawn at the four edges.
    _goto(viewer, left=lx)
    assert [b for b in _blobs(viewer) if 0.35 < b[0] < 0.65]
    shot = viewer.screenshot(canvas_only=True, flash=False)[..., :3].astype(int)
    yellow = (shot[..., 0] > 180) & (shot[..., 1] > 180) & (shot[..., 2] < 100)
    h, w = yellow.shape
    for name, region in {"top": yellow[: h // 8, w // 3: 2 * w // 3], "bottom": yellow[-h // 8:, w // 3: 2 * w // 3],
                         "left": yellow[h // 3: 2 * h // 3, : w // 8], "right": yellow[h // 3: 2 * h // 3, -w // 8:]
                         }.items():
        assert region.sum() > 5, f"no orientation letter drawn at the {name} edge"
    set_view(viewer, "3d")
    assert orientation_letters(viewer) == {}
    assert not viewer.canvas.overlays["medio_orientation_top"].visible


def _balls_volume() -> Volume:
    """Equal bright balls on the patient's left, superior, anterior-right and posterior-left (LPS mm)."""
    c = np.arange(101) * 2.0 - 100
    z, y, x = np.meshgrid(c, c, c, indexing="ij")
    arr = np.zeros((101,) * 3, np.int16)
    for cx, cy, cz in ((70, 0, 0), (0, 0, 70), (-40, -70, -40), (40, 70, -40)):
        arr[(x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2 <= 100] = 1000
    return Volume(arr, Geometry([2, 2, 2], [-100, -100, -100], np.eye(3)), name="balls")


@pytest.mark.parametrize("route", ["set_view", "toggle from coronal"])
def test_3d_is_right_handed_and_seen_from_the_front(make_napari_viewer, route):
    from napari.layers import Layer

    from napari_medio.plugin import set_view
    from napari_medio.plugin.layers import to_layer_data
    from napari_medio.plugin.views import camera_of

    viewer = make_napari_viewer(show=True)
    for data, kwargs, layer_type in to_layer_data(_balls_volume()):
        viewer.add_layer(Layer.create(data, kwargs, layer_type))
    if route == "set_view":
        set_view(viewer, "3d")
    else:  # napari's own 2D/3D toggle after a 2D view: still a rotation of the patient
        set_view(viewer, "coronal")
        viewer.dims.ndisplay = 3
        viewer.reset_view()
    camera_of(viewer).perspective = 60  # nearer balls look bigger
    blobs = sorted(_blobs(viewer, threshold=100), key=lambda b: b[2])
    assert len(blobs) == 4, blobs
    left = [b for b in blobs if abs(b[0] - 0.5) < 0.1 and b[1] > 0.6]
    superior = [b for b in blobs if b[0] < 0.35 and abs(b[1] - 0.5) < 0.1]
    assert left, f"the patient's left on the screen's right: {blobs}"
    assert superior, f"superior at the top: {blobs}"
    lower = [b for b in blobs if b[0] > 0.55]
    assert len(lower) == 2
    near, far = max(lower, key=lambda b: b[2]), min(lower, key=lambda b: b[2])
    # Seen from the front the anterior ball (the patient's right: screen left) is the nearer, bigger one.
    assert near[1] < 0.5 < far[1] and near[2] > 1.5 * far[2], blobs


def test_first_volume_shows_axial_and_dock_buttons_and_shortcuts_switch(make_napari_viewer, qtbot):
    from napari_medio.plugin.views import camera_of

    viewer = make_napari_viewer(show=True)
    viewer.add_image(np.zeros((4, 5, 6)))  # not napari-medio's: the view is the user's
    viewer.dims.order = (2, 0, 1)
    viewer.open_sample("napari-medio", "ct-phantom")
    assert viewer.dims.order == (0, 1, 2) and viewer.dims.ndisplay == 2
    assert tuple(map(str, camera_of(viewer).orientation2d)) == ("down", "right")
    _, dock = viewer.window.add_plugin_dock_widget("napari-medio", "Views")
    dock.view_buttons["sagittal"].click()
    assert viewer.dims.order == (2, 0, 1)
    dock.view_buttons["3d"].click()
    assert viewer.dims.ndisplay == 3
    dock.view_buttons["coronal"].click()
    assert viewer.dims.order == (1, 0, 2) and viewer.dims.ndisplay == 2
    # Keyboard shortcuts on the canvas: Alt-1 axial, Alt-3 sagittal.
    from qtpy.QtCore import Qt

    canvas = viewer.window._qt_viewer.canvas.native
    canvas.setFocus()
    qtbot.keyClick(canvas, Qt.Key.Key_3, Qt.KeyboardModifier.AltModifier)
    assert viewer.dims.order == (2, 0, 1)
    qtbot.keyClick(canvas, Qt.Key.Key_1, Qt.KeyboardModifier.AltModifier)
    assert viewer.dims.order == (0, 1, 2)
    # A second volume leaves the view alone.
    viewer.dims.order = (1, 0, 2)
    viewer.open_sample("napari-medio", "ct-phantom")
    assert viewer.dims.order == (1, 0, 2)
