"""Real napari viewer: DICOM window or Slicer's automatic window, CT presets, linear interpolation."""
from __future__ import annotations

import numpy as np
import pytest

import napari_medio
from napari_medio.core.auto_window import CT_PRESETS, histogram_auto_range
from napari_medio.core.geometry import Geometry
from napari_medio.core.volume import Volume

pytestmark = pytest.mark.viewer


def _ct_without_window() -> Volume:
    """A CT with Siemens-style -3024 padding, soft tissue and one very bright voxel, no window stated."""
    rng = np.random.default_rng(3)
    a = np.full((12, 48, 48), -3024, np.int16)
    a[:, 8:40, 8:40] = rng.integers(-120, 260, (12, 32, 32))
    a[:, 20:28, 20:28] = -1000
    a[5, 24, 24] = 3070
    return Volume(a, Geometry([0.8, 0.8, 3.0], [0, 0, 0], np.eye(3)), name="ct")


def test_ct_without_window_opens_with_slicers_auto_window_and_linear_interpolation(make_napari_viewer, tmp_path):
    vol = _ct_without_window()
    napari_medio.write(vol, tmp_path / "ct.nrrd")
    viewer = make_napari_viewer()
    [layer] = viewer.open(str(tmp_path / "ct.nrrd"), plugin="napari-medio")
    low, high = histogram_auto_range(vol.array)
    assert layer.contrast_limits == pytest.approx([low, high])
    assert high < 3070 and layer.contrast_limits_range == pytest.approx([-3024, 3070])
    assert str(layer.interpolation2d) == "linear"
    # A label map keeps exact labels (napari draws Labels with nearest interpolation, no window).
    seg = Volume((vol.array > 0).astype(np.uint8), vol.geometry, kind="labelmap", name="seg")
    napari_medio.write(seg, tmp_path / "seg-label.nrrd")
    [labels] = viewer.open(str(tmp_path / "seg-label.nrrd"), plugin="napari-medio")
    assert type(labels).__name__ == "Labels"
    assert not hasattr(labels, "interpolation2d") or str(labels.interpolation2d) == "nearest"


def test_dicom_window_wins(make_napari_viewer, tmp_path):
    from tests.dicom._make import make_series

    make_series(tmp_path / "dcm", n=3, window=(40, 400))
    viewer = make_napari_viewer()
    [layer] = viewer.open(str(tmp_path / "dcm"), plugin="napari-medio")
    assert layer.contrast_limits == pytest.approx([-160.0, 240.0])


def test_presets_one_click_away_in_the_views_dock(make_napari_viewer, tmp_path):
    vol = _ct_without_window()
    napari_medio.write(vol, tmp_path / "ct.nrrd")
    viewer = make_napari_viewer(show=True)  # an unshown canvas renders black
    [layer] = viewer.open(str(tmp_path / "ct.nrrd"), plugin="napari-medio")
    auto = list(layer.contrast_limits)
    _, dock = viewer.window.add_plugin_dock_widget("napari-medio", "Views")
    for name, window in CT_PRESETS.items():
        dock.window_buttons[name].click()
        assert layer.contrast_limits == pytest.approx([window.center - window.width / 2,
                                                       window.center + window.width / 2]), name
    dock.window_buttons["Lung"].click()
    assert layer.contrast_limits == pytest.approx([-1200.0, 200.0])
    dock.window_buttons["Auto"].click()
    assert layer.contrast_limits == pytest.approx(auto)
    # What the screen shows: with the bone window soft tissue is dark, with the brain window bright.
    dock.window_buttons["Bone"].click()
    bone = viewer.screenshot(canvas_only=True, flash=False)[..., :3].mean()
    dock.window_buttons["Brain"].click()
    brain = viewer.screenshot(canvas_only=True, flash=False)[..., :3].mean()
    assert brain > bone + 10
