"""MRC (.mrc): round trips, RGB, direction policy, bad input."""
from __future__ import annotations

import numpy as np
import pytest

import napari_medio
from napari_medio.core.errors import MedioError
from napari_medio.core.geometry import Geometry
from napari_medio.core.volume import AxisInfo, Volume
from napari_medio.formats.mrc import sniff
from tests.badfiles import assert_rejected, no_temp_files, variants
from tests.volumes import assert_same_volume, scalar_3d

AXIAL = Geometry([0.75, 0.8, 2.5], [12.5, -30.25, 101.0], np.eye(3))


@pytest.mark.parametrize("dtype", ["uint8", "int16", "uint16", "float32"])
def test_round_trip(tmp_path, dtype):
    vol = scalar_3d(dtype, geometry=AXIAL)
    napari_medio.write(vol, tmp_path / "map.mrc")
    [back] = napari_medio.read(tmp_path / "map.mrc")
    assert_same_volume(vol, back)
    assert no_temp_files(tmp_path)


def test_rgb_and_2d(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 255, (3, 4, 5, 3), endpoint=True).astype(np.uint8)
    vol = Volume(rgb, AXIAL, components=AxisInfo(kind="RGB-color"))
    napari_medio.write(vol, tmp_path / "rgb.mrc")
    [back] = napari_medio.read(tmp_path / "rgb.mrc")
    assert_same_volume(vol, back)
    assert back.is_rgb
    flat = Volume(np.arange(35, dtype=np.float32).reshape(5, 7), Geometry([0.5, 0.75], [1.0, 2.0], np.eye(2)))
    napari_medio.write(flat, tmp_path / "flat.mrc")
    [back] = napari_medio.read(tmp_path / "flat.mrc")
    assert back.shape == (1, 5, 7) and np.array_equal(back.array[0], flat.array)


def test_unsupported_writes(tmp_path):
    with pytest.raises(MedioError, match="allow_direction_loss"):
        napari_medio.write(scalar_3d("int16"), tmp_path / "o.mrc")
    with pytest.raises(MedioError, match="float64"):
        napari_medio.write(scalar_3d("float64", geometry=AXIAL), tmp_path / "o.mrc")
    assert not (tmp_path / "o.mrc").exists()


def test_sniff():
    head = bytearray(1024)
    head[0:16] = np.array([4, 5, 6, 2], "<i4").tobytes()
    assert not sniff(bytes(head), None)  # no MAP stamp and no axis mapping
    head[64:76] = np.array([1, 2, 3], "<i4").tobytes()
    assert sniff(bytes(head), None)
    head[208:212] = b"MAP "
    assert sniff(bytes(head), None)
    head[12:16] = np.array([99], "<i4").tobytes()
    assert not sniff(bytes(head), None)


def test_bad_input(tmp_path):
    napari_medio.write(scalar_3d("int16", geometry=AXIAL), tmp_path / "ok.mrc")
    assert_rejected(variants(tmp_path, tmp_path / "ok.mrc", ".mrc", cuts=(-1, 1023, 1025)))
