"""Legacy VTK structured points: round trips, direction policy, models refused, fixture, bad input."""
from __future__ import annotations

import numpy as np
import pytest

import napari_medio
from napari_medio.core.errors import MedioError
from napari_medio.core.geometry import Geometry
from napari_medio.core.registry import find_reader
from napari_medio.core.volume import AxisInfo, Volume
from napari_medio.formats.vtk_image import sniff
from tests.badfiles import assert_rejected, no_temp_files, variants
from tests.conftest import fixture_file
from tests.volumes import OBLIQUE_FLIPPED, assert_same_volume, rgb_2d, scalar_3d

AXIAL = Geometry([0.75, 0.8, 2.5], [12.5, -30.25, 101.0], np.eye(3))

POLYDATA = b"""# vtk DataFile Version 3.0
a triangle
ASCII
DATASET POLYDATA
POINTS 3 float
0 0 0 1 0 0 0 1 0
POLYGONS 1 4
3 0 1 2
"""


@pytest.mark.parametrize("dtype", ["int8", "uint8", "int16", "uint16", "int32", "uint32", "float32", "float64"])
def test_round_trip_3d(tmp_path, dtype):
    vol = scalar_3d(dtype, geometry=AXIAL)
    napari_medio.write(vol, tmp_path / "v.vtk")
    assert_same_volume(vol, napari_medio.read(tmp_path / "v.vtk")[0])
    assert no_temp_files(tmp_path)


def test_round_trip_2d_vector_rgb(tmp_path):
    two_d = Volume(np.arange(35, dtype=np.float32).reshape(5, 7), Geometry([0.3, 0.45], [-5.5, 7.25], np.eye(2)))
    vectors = Volume(np.random.default_rng(0).normal(size=(4, 5, 6, 3)).astype(np.float32), AXIAL,
                     components=AxisInfo(kind="vector"))
    for i, vol in enumerate((two_d, vectors, rgb_2d())):
        napari_medio.write(vol, tmp_path / f"v{i}.vtk")
        back = napari_medio.read(tmp_path / f"v{i}.vtk")[0]
        assert_same_volume(vol, back)
    assert napari_medio.read(tmp_path / "v2.vtk")[0].is_rgb


def test_direction_cannot_be_stored(tmp_path):
    vol = scalar_3d("int16")  # oblique, flipped
    with pytest.raises(MedioError, match="allow_direction_loss"):
        napari_medio.write(vol, tmp_path / "o.vtk")
    assert not (tmp_path / "o.vtk").exists()
    napari_medio.write(vol, tmp_path / "o.vtk", allow_direction_loss=True)
    [back] = napari_medio.read(tmp_path / "o.vtk")
    assert np.array_equal(back.array, vol.array)
    assert np.allclose(back.geometry.spacing, OBLIQUE_FLIPPED.spacing)
    assert np.allclose(back.geometry.origin, OBLIQUE_FLIPPED.origin)
    assert np.allclose(back.geometry.direction, np.eye(3))


def test_models_are_not_images(tmp_path):
    assert not sniff(POLYDATA, None)
    assert not sniff(POLYDATA.replace(b"POLYDATA", b"UNSTRUCTURED_GRID"), None)
    assert sniff(POLYDATA.replace(b"POLYDATA", b"STRUCTURED_POINTS"), None)
    (tmp_path / "model.vtk").write_bytes(POLYDATA)
    try:
        fmt = find_reader(tmp_path / "model.vtk")
    except MedioError:
        return  # no model reader registered yet: refused cleanly
    assert fmt.name != "vtk-image"


def test_conformance_uniform():
    [vol] = napari_medio.read(fixture_file("images/pyvista/uniform.vtk"))
    a = vol.to_numpy()
    assert a.shape == (10, 10, 10) and a.dtype == np.float64
    assert np.allclose(vol.geometry.spacing, 1.0, atol=1e-4) and np.allclose(vol.geometry.origin, 0.0, atol=1e-4)
    assert np.allclose(vol.geometry.direction, np.eye(3), atol=1e-4)
    assert a.min() == 0.0 and a.max() == 729.0 and np.isclose(a.sum(), 91125, rtol=1e-6)


def test_bad_input(tmp_path):
    napari_medio.write(scalar_3d("int16", geometry=AXIAL), tmp_path / "ok.vtk")
    bad = variants(tmp_path, tmp_path / "ok.vtk", ".vtk", cuts=(-1, 120))
    ascii_file = tmp_path / "ascii.vtk"
    ascii_file.write_bytes(b"# vtk DataFile Version 3.0\nx\nASCII\nDATASET STRUCTURED_POINTS\nDIMENSIONS 2 2 2\n"
                           b"SPACING 1 1 1\nORIGIN 0 0 0\nPOINT_DATA 8\nSCALARS s float 1\nLOOKUP_TABLE default\n"
                           b"1 2 3 4 5 6 7\n")
    bad.append(ascii_file)
    assert_rejected(bad)
    ascii_file.write_bytes(ascii_file.read_bytes().replace(b"7\n", b"7 8\n"))
    [vol] = napari_medio.read(ascii_file)
    assert vol.to_numpy().ravel().tolist() == [1, 2, 3, 4, 5, 6, 7, 8]
