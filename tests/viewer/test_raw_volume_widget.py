"""The RAW volume dock widget (RawImageGuess): fields, live preview, Guess, Load, Save .nhdr."""
from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

import napari_medio
from napari_medio.core.geometry import Geometry
from napari_medio.plugin.raw_volume_widget import PREVIEW_NAME, RawVolumeWidget

pytestmark = pytest.mark.viewer


def phantom(shape=(64, 80, 96)) -> np.ndarray:
    z, y, x = np.mgrid[: shape[0], : shape[1], : shape[2]]
    inside = ((z - 30) / 22.0) ** 2 + ((y - 42) / 30.0) ** 2 + ((x - 50) / 36.0) ** 2 < 1
    return ndimage.gaussian_filter(np.where(inside, 800.0, -200.0), 2).astype(np.int16)


@pytest.fixture
def raw_file(tmp_path):
    data = phantom()
    path = tmp_path / "phantom.raw"
    path.write_bytes(bytes(range(256)) * 4 + data.astype(">i2").tobytes())  # 1024-byte header, big-endian
    return path, data


def _widget(make_napari_viewer):
    viewer = make_napari_viewer()
    widget = RawVolumeWidget(viewer)
    viewer.window.add_dock_widget(widget)
    return viewer, widget


def _preview(viewer):
    return next((layer for layer in viewer.layers if layer.name == PREVIEW_NAME), None)


def test_fields_drive_a_live_preview_and_errors_replace_it(make_napari_viewer, raw_file):
    path, data = raw_file
    viewer, widget = _widget(make_napari_viewer)
    widget._path.value = path
    # 1x1x1 uint8 fits the file: a preview, with a note about the unused bytes.
    assert _preview(viewer) is not None and "not used" in widget._status.value
    widget._size_x.value, widget._size_y.value, widget._size_z.value = 96, 80, 64
    widget._dtype.value = "int16"
    widget._byte_order.value = "big"
    widget._header.value = 1024
    widget._spacing[0].value = 0.5
    layer = _preview(viewer)
    assert layer is not None and np.array_equal(layer.data, data[32])
    assert np.allclose(layer.scale, [1.0, 0.5])
    assert widget._status.value == "slice 32 of 64"
    widget._size_z.value = 65  # one slice more than the file holds
    assert _preview(viewer) is None
    assert "bytes missing" in widget._status.value and "phantom.raw" in widget._status.value
    widget._size_z.value = 64
    assert np.array_equal(_preview(viewer).data, data[32])
    widget._dtype.value = "RGB (3 x uint8)"  # the preview becomes an RGB layer
    widget._size_z.value = 1
    assert _preview(viewer).rgb
    widget._direction.value = "1 0"
    assert _preview(viewer) is None and "direction" in widget._status.value


def test_guess_fills_the_fields(make_napari_viewer, raw_file):
    path, data = raw_file
    viewer, widget = _widget(make_napari_viewer)
    widget._path.value = path
    widget._spacing[2].value = 2.5  # the placement typed by the user is kept
    guesses = widget.guess()
    assert guesses and guesses[0].shape == (64, 80, 96)
    layout = widget.raw_layout()
    assert (layout.shape, layout.dtype, layout.byte_order, layout.header) == ((64, 80, 96), "int16", "big", 1024)
    assert layout.spacing == (1.0, 1.0, 2.5)
    assert widget._status.value.startswith("best guess: shape=(64, 80, 96)")
    assert np.array_equal(_preview(viewer).data, data[32])
    labels = [c for c in widget._choices.choices if c]
    assert len(labels) == len(guesses)
    widget._choices.value = labels[1]  # another guess fills the fields
    assert widget.raw_layout().shape == guesses[1].shape


def test_guess_without_a_file(make_napari_viewer):
    _, widget = _widget(make_napari_viewer)
    assert widget.guess() == [] and "choose a file" in widget._status.value
    assert widget.load() == [] and widget.save_nhdr() is None


def test_load_places_the_volume_in_the_lps_world(make_napari_viewer, raw_file):
    path, data = raw_file
    viewer, widget = _widget(make_napari_viewer)
    widget._path.value = path
    widget.guess()
    for box, v in zip(widget._spacing, (0.5, 0.75, 2.0)):
        box.value = v
    for box, v in zip(widget._origin, (10.0, -20.0, 30.0)):
        box.value = v
    widget._load_button.clicked.emit()
    assert _preview(viewer) is None  # the preview gives way to the volume
    [layer] = list(viewer.layers)
    assert layer.name == "phantom" and np.array_equal(np.asarray(layer.data), data)
    geometry = Geometry([0.5, 0.75, 2.0], [10.0, -20.0, 30.0], np.eye(3))
    for kji in [(0, 0, 0), (5, 6, 7), (63, 79, 95)]:
        lps = geometry.index_to_lps(kji[::-1])
        assert np.allclose(layer.data_to_world(kji), lps[::-1])
    assert np.allclose(layer.affine.affine_matrix, np.eye(4))
    assert np.allclose(layer.scale, [2.0, 0.75, 0.5]) and np.allclose(layer.translate, [30.0, -20.0, 10.0])
    assert "loaded phantom.raw" in widget._status.value
    # Slices running top-down: the same voxels, the z axis towards inferior.
    widget._slice_flip.value = True
    [flipped] = widget.load()
    down = Geometry([0.5, 0.75, 2.0], [10.0, -20.0, 30.0], np.diag([1.0, 1.0, -1.0]))
    for probe in [(0, 0, 0), (63, 40, 48), (10, 70, 5)]:
        lps = down.index_to_lps(probe[::-1])
        index = np.asarray(flipped.world_to_data(lps[::-1]))
        assert np.allclose(index, np.round(index), atol=1e-6)
        index = tuple(np.round(index).astype(int))
        assert index == (63 - probe[0], probe[1], probe[2])  # shown inferior to superior
        assert np.asarray(flipped.data)[index] == data[probe]


def test_save_nhdr_opens_anywhere(make_napari_viewer, raw_file, tmp_path):
    path, data = raw_file
    _, widget = _widget(make_napari_viewer)
    widget._path.value = path
    widget.guess()
    widget._spacing[2].value = 3.0
    widget._save.clicked.emit()
    nhdr = path.with_suffix(".nhdr")
    assert nhdr.exists() and str(nhdr) in widget._status.value
    [vol] = napari_medio.read(nhdr)
    assert np.array_equal(vol.to_numpy(), data) and np.allclose(vol.geometry.spacing, [1, 1, 3])
    assert np.array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(nhdr))), data)
    widget._nhdr.value = tmp_path / "elsewhere" / "named.nhdr"
    written = widget.save_nhdr()
    assert written == tmp_path / "elsewhere" / "named.nhdr"
    assert "data file: ../phantom.raw" in written.read_text()
    widget._size_z.value = 100
    assert widget.save_nhdr() is None and "bytes missing" in widget._status.value
