"""Vendor formats from Slicer's extensions in a real viewer: a GE Kretz ultrasound volume, a Philips 4D
ultrasound DICOM (a time slider), a Topcon OCT scan with its fundus picture, and a Pinnacle DVF (a grid
transform in the Transforms store, applied to an image)."""
from __future__ import annotations

import numpy as np
import pytest

import napari_medio
from tests.dicom.test_ultrasound import phantom_4d, philips_4d
from tests.formats.test_kretz import kretz_bytes, sweep
from tests.formats.test_pinnacle_dvf import build as build_dvf
from tests.formats.test_topcon_oct import (
    capture_info,
    file_info,
    hw_info,
    mot_comp_03,
    param_scan_04,
    patient_info,
    topcon,
)

pytestmark = pytest.mark.viewer


def test_kretz_volume_opens_scan_converted_in_place(make_napari_viewer, tmp_path):
    theta, phi = sweep(24, 20)
    vox = np.full((20, 24, 30), 120, np.uint8)
    path = tmp_path / "fetus.vol"
    path.write_bytes(kretz_bytes(vox, theta=theta, phi=phi))
    [vol] = napari_medio.read(path)
    viewer = make_napari_viewer()
    (layer,) = viewer.open(str(path), plugin="napari-medio")
    assert layer.ndim == 3 and layer.data.dtype == np.uint8 and np.asarray(layer.data).max() == 120
    assert layer.data.shape == vol.shape
    # about the default 0.5 mm (VTK's grid rule stretches it slightly to fit the fan), placed as the reader
    # places it: the centre voxel lands on the same LPS point in the viewer's world (napari order k, j, i)
    np.testing.assert_allclose(np.abs(layer.scale), vol.geometry.spacing[::-1], rtol=1e-9)
    assert np.all(np.abs(vol.geometry.spacing - 0.5) < 0.02)
    centre = (np.array(vol.shape) - 1) / 2.0
    expected = vol.geometry.index_to_lps(centre[::-1][None])[0]
    world = np.asarray(layer.data_to_world(centre))
    np.testing.assert_allclose(world[::-1], expected, atol=1e-6)


def test_philips_4d_ultrasound_has_a_time_slider(make_napari_viewer, tmp_path):
    vox = phantom_4d(frames=4, slices=6, rows=5, columns=7)
    path = philips_4d(tmp_path / "qlab.dcm", vox)
    viewer = make_napari_viewer()
    (layer,) = viewer.open(str(path), plugin="napari-medio")
    assert layer.ndim == 4 and layer.data.shape[0] == 4
    viewer.dims.set_point(0, 2)
    # Slicer's placement has i and j running to -L and -P: the adapter shows them flipped, with the
    # world positions kept (napari scales must be positive)
    np.testing.assert_array_equal(np.asarray(layer.data[2]), vox[2][:, ::-1, ::-1])
    [vol] = napari_medio.read(path)
    expected = vol.geometry.index_to_lps(np.array([[0.0, 0.0, 0.0]]))[0]
    world = np.asarray(layer.data_to_world([2, 0, vox.shape[2] - 1, vox.shape[3] - 1]))
    np.testing.assert_allclose(world[1:][::-1], expected, atol=1e-6)


def test_topcon_scan_and_fundus_open_as_layers(make_napari_viewer, tmp_path):
    volume = np.random.default_rng(4).integers(0, 60000, size=(5, 16, 12), dtype=np.uint16)
    path = tmp_path / "OD.fda"
    path.write_bytes(topcon([file_info(), hw_info(), patient_info(), capture_info(), param_scan_04(6.0, 6.0, 3.5),
                             mot_comp_03(volume)]))
    from napari_medio.plugin.layers import to_layer_data

    [oct_volume, *_] = napari_medio.read(path)
    viewer = make_napari_viewer()
    layers = viewer.open(str(path), plugin="napari-medio")
    assert layers[0].ndim == 3
    # ImportOCT's permuted placement: the adapter shows the voxels in its display order, world kept
    [(shown, _, _)] = to_layer_data(oct_volume)
    np.testing.assert_array_equal(np.asarray(layers[0].data), np.asarray(shown))
    assert sorted(np.asarray(layers[0].data).shape) == sorted(volume.shape)
    assert layers[0].metadata["medio"]["metadata"]["topcon"]["laterality"]


def test_pinnacle_field_goes_to_the_transforms_store_and_moves_an_image(make_napari_viewer, tmp_path):
    from napari_medio.plugin.convert_transform import STORE, apply_transform, revert_transform


    shape = (4, 5, 6)
    planes = [np.full(shape, 2, np.int8), np.zeros(shape, np.int8), np.zeros(shape, np.int8),
              np.full(shape, 125, np.uint8), np.zeros(shape, np.uint8), np.zeros(shape, np.uint8)]
    dvf = build_dvf(tmp_path / "reg.dvf", planes, spacing=(10.0, 10.0, 10.0), flags=(1, 0, 0),
                    registration=None)
    viewer = make_napari_viewer()
    viewer.open(str(dvf), plugin="napari-medio")
    names = [t.name for t in STORE.transforms]
    assert names and names[0] == "reg"
    grid = STORE.transforms[0]
    assert grid.type == "grid" and grid.stored_direction == "to_parent"
    # the grid covers LPS x 0..50, y 0..40, z 0..-30 mm (k runs inferior); the field is 2.5 mm towards L
    pl = viewer.add_points(np.array([[-10.0, 20.0, 20.0]]), name="p")  # napari order (z, y, x), LPS mm
    apply_transform(pl, grid)
    np.testing.assert_allclose(pl.data[0], [-10.0, 20.0, 22.5], atol=1e-6)  # to parent: p + d(p)
    assert revert_transform(pl)
    np.testing.assert_allclose(pl.data[0], [-10.0, 20.0, 20.0], atol=1e-9)
