"""Real napari viewer: orientation on screen, exact slicing, File > Open and Save through npe2."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

import napari_medio
from napari_medio.core.geometry import Geometry
from napari_medio.core.volume import Volume
from tests.volumes import assert_same_volume, rotation

pytestmark = pytest.mark.viewer

ACQUISITIONS = {
    "sagittal": Geometry([0.9, 1.1, 1.7], [40.0, -20.0, 30.0], np.column_stack([[0, 1, 0], [0, 0, -1], [-1, 0, 0]])),
    "coronal": Geometry([0.9, 1.1, 1.7], [-40.0, 20.0, 30.0], np.column_stack([[1, 0, 0], [0, 0, -1], [0, 1, 0]])),
    "axial-flipped": Geometry([0.9, 1.1, 1.7], [40.0, 20.0, -30.0], np.diag([-1.0, -1.0, 1.0])),
    "oblique": Geometry([0.9, 1.1, 1.7], [5.0, 6.0, 7.0], rotation((0.2, 0.9, 0.1), 0.35)),
}


def _unique_volume(geometry: Geometry, shape=(9, 10, 11)) -> Volume:
    arr = np.arange(np.prod(shape), dtype=np.int32).reshape(shape)  # every voxel value is unique
    return Volume(arr, geometry, name="acq")


def test_phantom_markers_appear_where_radiologists_expect(make_napari_viewer):
    viewer = make_napari_viewer(show=True)  # an unshown canvas renders black
    viewer.open_sample("napari-medio", "ct-phantom")
    layer = viewer.layers[0]
    assert layer.units[-1] == "millimeter" or str(layer.units[-1]) in ("mm", "millimeter")
    assert tuple(layer.axis_labels[-3:]) == ("S", "P", "L")
    viewer.dims.ndisplay = 2
    viewer.dims.order = (0, 1, 2)  # axial: slice along S, show P (rows) x L (columns)
    viewer.dims.set_point(0, 10.0)  # superior half: the anterior rod is present there
    viewer.reset_view()
    shot = viewer.screenshot(canvas_only=True, flash=False)
    gray = shot[..., :3].mean(axis=-1)
    bright = gray > 250
    labels, n = ndimage.label(bright)
    assert n >= 3, "left marker, anterior rod and spine should be visible"
    h, w = gray.shape
    centroids = ndimage.center_of_mass(bright, labels, range(1, n + 1))
    sizes = ndimage.sum(bright, labels, range(1, n + 1))
    blobs = [(cy / h, cx / w) for (cy, cx), s in zip(centroids, sizes) if s > 20]
    left_marker = [b for b in blobs if b[1] > 0.6 and 0.35 < b[0] < 0.65]
    anterior = [b for b in blobs if b[0] < 0.4 and 0.4 < b[1] < 0.6]
    assert left_marker, f"patient-left marker must be on the screen's right half: {blobs}"
    assert anterior, f"anterior marker must be at the top: {blobs}"
    assert not [b for b in blobs if b[1] < 0.4], f"nothing bright on the screen's left half: {blobs}"


@pytest.mark.parametrize("name", sorted(ACQUISITIONS))
def test_acquisitions_slice_exactly_and_land_where_simpleitk_says(make_napari_viewer, tmp_path, name):
    vol = _unique_volume(ACQUISITIONS[name])
    path = tmp_path / f"{name}.nrrd"
    napari_medio.write(vol, path)
    viewer = make_napari_viewer()
    oblique = name == "oblique"
    from napari.layers import Layer

    from napari_medio.plugin.reader import read_layers

    for data, kwargs, layer_type in read_layers(path, resample_oblique=oblique):
        viewer.add_layer(Layer.create(data, kwargs, layer_type))
    layer = viewer.layers[0]
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*[Nn]on-orthogonal.*")
        for order in [(0, 1, 2), (1, 0, 2), (2, 0, 1)]:
            viewer.dims.order = order
            viewer.screenshot(canvas_only=True, flash=False)
    if oblique:
        return  # resampled: positions checked through the resampling geometry in unit tests
    img = sitk.ReadImage(str(path))
    for kji in [(0, 0, 0), (4, 5, 6), (8, 9, 10)]:
        value = vol.array[kji]
        view_index = np.argwhere(np.asarray(layer.data) == value)[0]
        world = np.asarray(layer.data_to_world(view_index))
        lps = np.array(img.TransformIndexToPhysicalPoint(tuple(int(x) for x in kji[::-1])))
        assert np.allclose(world, lps[::-1], atol=1e-6)


def test_oblique_without_resampling_keeps_rotation_and_positions(make_napari_viewer, tmp_path):
    vol = _unique_volume(ACQUISITIONS["oblique"])
    path = tmp_path / "obl.nrrd"
    napari_medio.write(vol, path)
    viewer = make_napari_viewer()
    [layer] = viewer.open(path, plugin="napari-medio")
    img = sitk.ReadImage(str(path))
    kji = (4, 5, 6)
    view_index = np.argwhere(np.asarray(layer.data) == vol.array[kji])[0]
    lps = np.array(img.TransformIndexToPhysicalPoint(kji[::-1]))
    assert np.allclose(layer.data_to_world(view_index), lps[::-1], atol=1e-6)


@pytest.mark.parametrize("ext", [".nrrd", ".nii.gz", ".mha"])
def test_file_open_and_save_layers_through_npe2(make_napari_viewer, tmp_path, ext):
    vol = _unique_volume(ACQUISITIONS["sagittal"])
    src = tmp_path / "src.nrrd"
    napari_medio.write(vol, src)
    viewer = make_napari_viewer()
    layers = viewer.open(src, plugin="napari-medio")
    assert len(layers) == 1
    out = tmp_path / f"saved{ext}"
    viewer.layers.selection = {layers[0]}
    written = viewer.layers.save(str(out), selected=True, plugin="napari-medio")
    assert written
    [back] = napari_medio.read(out)
    assert_same_volume(vol, back)


def test_labels_and_rgb_layers(make_napari_viewer, tmp_path):
    vol = _unique_volume(ACQUISITIONS["coronal"])
    vol.array[:] = vol.array % 5
    napari_medio.write(vol.with_array(vol.array.astype(np.uint8)), tmp_path / "mask-label.nrrd")
    viewer = make_napari_viewer()
    [labels] = viewer.open(tmp_path / "mask-label.nrrd", plugin="napari-medio")
    assert labels._type_string == "labels"
    out = tmp_path / "saved-label.nii.gz"
    viewer.layers.selection = {labels}
    viewer.layers.save(str(out), selected=True, plugin="napari-medio")
    [back] = napari_medio.read(out)
    assert back.kind == "labelmap"
    assert np.array_equal(back.array, vol.array.astype(np.uint8))


def test_reader_errors_name_the_file(tmp_path):
    from napari_medio.plugin.reader import get_reader

    bad = tmp_path / "broken.nrrd"
    bad.write_bytes(b"NRRD0004\ntype: short\n")
    assert get_reader(str(tmp_path / "unknown.xyz")) is None
    reader = get_reader(str(bad))
    with pytest.raises(ValueError, match="broken.nrrd"):
        reader(str(bad))


def test_open_with_options_widget(make_napari_viewer, tmp_path):
    from napari_medio.plugin.open_widget import OpenWithOptionsWidget

    vol = _unique_volume(ACQUISITIONS["oblique"])
    path = tmp_path / "scan.nrrd"
    napari_medio.write(vol.with_array((vol.array % 7).astype(np.uint8)), path)
    viewer = make_napari_viewer()
    widget = OpenWithOptionsWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget._path.value = path
    widget._kind.value = "label map"
    widget._resample.value = True
    widget._load.clicked.emit()
    [layer] = viewer.layers
    assert layer._type_string == "labels"
    assert np.allclose(layer.affine.affine_matrix, np.eye(4))  # resampled onto the patient axes
    assert "loaded 1 layer" in widget._status.value
    widget._path.value = tmp_path / "missing.nrrd"
    widget._load.clicked.emit()
    assert "missing.nrrd" in widget._status.value and len(viewer.layers) == 1
