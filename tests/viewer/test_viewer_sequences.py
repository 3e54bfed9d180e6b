"""Image sequences in a real viewer: an IGSIO sequence metafile and a video open as one layer with a frame slider,
and save back through napari's writer."""
from __future__ import annotations

import numpy as np
import pytest

import napari_medio
from napari_medio.core.geometry import Geometry
from napari_medio.core.volume import AxisInfo, Volume
from tests.formats.test_video import av  # noqa: F401  (the fixture: skips locally, fails on CI without PyAV)

pytestmark = pytest.mark.viewer


def _frames(n: int = 6, h: int = 32, w: int = 40) -> np.ndarray:
    a = np.zeros((n, 1, h, w), np.uint8)
    for t in range(n):
        a[t, 0, 8:16, 4 + 5 * t: 12 + 5 * t] = 200  # a square moving right
    return a


def _sequence(a: np.ndarray, rgb: bool = False) -> Volume:
    if rgb:
        a = np.repeat(a[..., None], 3, axis=-1)
    times = [0.1 * t for t in range(a.shape[0])]
    return Volume(a, Geometry(np.array([0.2, 0.3, 1.0]), np.zeros(3), np.eye(3)), name="seq",
                  extra_axes=[AxisInfo(name="frame", unit="s", kind="time", values=times)],
                  components=("RGB-color" if rgb else None))


def test_igsio_sequence_opens_with_a_frame_slider_and_saves_back(make_napari_viewer, tmp_path):
    a = _frames()
    path = tmp_path / "us.seq.mha"
    napari_medio.write(_sequence(a), path)
    viewer = make_napari_viewer()
    (layer,) = viewer.open(str(path), plugin="napari-medio")
    assert layer.data.shape[0] == a.shape[0] and layer.ndim == 4
    assert layer.metadata["medio"]["metadata"]["igsio"]["frames"][2]["Timestamp"] == pytest.approx(0.2)
    viewer.dims.set_point(0, 3)
    out = tmp_path / "back.seq.mha"
    viewer.layers.save(str(out), selected=False, plugin="napari-medio")
    (back,) = napari_medio.read(out)
    np.testing.assert_array_equal(np.asarray(back.array), a)
    np.testing.assert_allclose(back.geometry.spacing, [0.2, 0.3, 1.0])


@pytest.mark.usefixtures("av")
def test_video_opens_as_rgb_frames(make_napari_viewer, tmp_path):
    a = _frames()
    path = tmp_path / "clip.mkv"
    napari_medio.write(_sequence(a, rgb=True), path)
    viewer = make_napari_viewer()
    (layer,) = viewer.open(str(path), plugin="napari-medio")
    assert layer.rgb and layer.data.shape[0] == a.shape[0]
    np.testing.assert_array_equal(np.asarray(layer.data)[..., 0].reshape(a.shape), a)  # FFV1 is lossless
