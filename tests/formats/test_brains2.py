"""BRAINS2 octree masks (.mask): a file built from the layout by hand, round trips, bad input."""
from __future__ import annotations

import struct

import numpy as np
import pytest

import napari_medio
from napari_medio.core.errors import MedioError
from napari_medio.core.geometry import Geometry
from napari_medio.core.volume import Volume
from tests.badfiles import assert_rejected, variants
from tests.volumes import OBLIQUE_FLIPPED

HEADER = """IPL_HEADER_BEGIN
PATIENT_ID: 12345
SCAN_ID: 00000
BYTE_ORDER: {order}
MASK_HEADER_BEGIN
MASK_NUM_DIMS: 3
MASK_X_SIZE: 3
MASK_X_RESOLUTION: 1.5
MASK_Y_SIZE: 2
MASK_Y_RESOLUTION: 2.0
MASK_Z_SIZE: 2
MASK_Z_RESOLUTION: 2.5
MASK_THRESHOLD: 0.0
{orientation}
MASK_HEADER_END
IPL_HEADER_END
"""

DIRS = "\n".join(f"DIR{a}{i}: {1.0 if 'XYZ'.index(a) == i else 0.0}" for a in "XYZ" for i in range(3))
DIRS += "\nORIGIN0: 10.0\nORIGIN1: -20.0\nORIGIN2: 30.0"


def _hand_made(path, order=">", orientation=DIRS):
    """A 3x2x2 mask in a width-4 octree: root branch -> octant 0 branch -> voxels."""
    name = "BIG_ENDIAN" if order == ">" else "LITTLE_ENDIAN"
    text = HEADER.format(order=name, orientation=orientation).encode()
    # Root (width 4): octant 0 (x<2, y<2, z<2) is a branch, octant 1 (x>=2) inside, others outside.
    root = (2 << 0) | (1 << 2)
    # Octant 0 (width 2): voxel (1,0,0) [child 1] and voxel (0,1,1) [child 6] inside.
    sub = (1 << 2) | (1 << 12)
    body = struct.pack(order + "6I", 2, 4, 3, 2, 2, 2) + struct.pack(order + "2H", root, sub)
    path.write_bytes(text + body)


def _expected():
    a = np.zeros((2, 2, 3), np.uint8)  # (z, y, x)
    a[:, :, 2] = 255  # the x >= 2 half (clipped to the 3-voxel width)
    a[0, 0, 1] = 255
    a[1, 1, 0] = 255
    return a


@pytest.mark.parametrize("order", [">", "<"])
def test_hand_made_file(tmp_path, order):
    _hand_made(tmp_path / "roi.mask", order)
    [vol] = napari_medio.read(tmp_path / "roi.mask")
    assert vol.kind == "labelmap" and vol.dtype == np.uint8
    assert np.array_equal(vol.array, _expected())
    assert np.allclose(vol.geometry.spacing, [1.5, 2.0, 2.5]) and np.allclose(vol.geometry.origin, [10, -20, 30])
    assert vol.metadata["brains2"]["PATIENT_ID"] == "12345"
    assert napari_medio.read(tmp_path / "roi.mask", labelmap=False)[0].kind == "volume"


def test_legacy_acquisition_plane(tmp_path):
    _hand_made(tmp_path / "cor.mask", orientation="MASK_ACQ_PLANE: CORONAL")
    [vol] = napari_medio.read(tmp_path / "cor.mask")
    # ITK's RIP code: i to the left, j up, k to the front.
    assert np.allclose(vol.geometry.direction, [[1, 0, 0], [0, 0, -1], [0, 1, 0]])


def test_round_trip(tmp_path):
    z, y, x = np.mgrid[:13, :17, :19]
    ball = (((x - 9) ** 2 + (y - 8) ** 2 + (z - 6) ** 2) < 36).astype(np.uint8) * 255
    for arr in (ball, np.zeros((3, 4, 5), np.uint8), np.full((4, 4, 4), 255, np.uint8),
                np.full((3, 5, 6), 255, np.uint8)):
        vol = Volume(arr, OBLIQUE_FLIPPED, kind="labelmap")
        napari_medio.write(vol, tmp_path / "m.mask")
        [back] = napari_medio.read(tmp_path / "m.mask")
        assert np.array_equal(back.array, arr)
        assert back.geometry.almost_equal(OBLIQUE_FLIPPED)
    labels = Volume(np.array([[[0, 3], [7, 0]]], np.int16), Geometry.identity(), kind="labelmap")
    napari_medio.write(labels, tmp_path / "l.mask")
    assert np.array_equal(napari_medio.read(tmp_path / "l.mask")[0].array, [[[0, 255], [255, 0]]])
    with pytest.raises(MedioError):
        napari_medio.write(Volume(np.zeros((2, 3), np.uint8), Geometry.identity(2)), tmp_path / "flat.mask")


def test_bad_input(tmp_path):
    _hand_made(tmp_path / "ok.mask")
    bad = variants(tmp_path, tmp_path / "ok.mask", ".mask", cuts=(-1, -3, -24))
    text = (tmp_path / "ok.mask").read_bytes()
    (tmp_path / "colour3.mask").write_bytes(text[:-2] + struct.pack(">H", 3 << 4))
    (tmp_path / "size.mask").write_bytes(text.replace(b"MASK_X_SIZE: 3", b"MASK_X_SIZE: 9"))
    bad += [tmp_path / "colour3.mask", tmp_path / "size.mask"]
    assert_rejected(bad)
