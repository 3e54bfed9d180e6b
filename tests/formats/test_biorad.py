"""Bio-Rad PIC (.pic): round trips, a file built from the format description, ITK files, bad input."""
from __future__ import annotations

import struct

import numpy as np
import pytest
import SimpleITK as sitk

import napari_medio
from napari_medio.core.errors import MedioError
from napari_medio.core.geometry import Geometry
from napari_medio.core.volume import Volume
from tests.badfiles import assert_rejected, variants
from tests.volumes import assert_same_volume, scalar_3d

AXIAL = Geometry([0.75, 0.8, 2.5], [12.5, -30.25, 101.0], np.eye(3))


@pytest.mark.parametrize("dtype", ["uint8", "uint16"])
def test_round_trip(tmp_path, dtype):
    vol = scalar_3d(dtype, geometry=AXIAL)
    napari_medio.write(vol, tmp_path / "v.pic")
    assert_same_volume(vol, napari_medio.read(tmp_path / "v.pic")[0])
    flat = Volume(np.arange(42, dtype=dtype).reshape(6, 7) * 3, Geometry([0.2, 0.3], [1.0, -2.0], np.eye(2)))
    napari_medio.write(flat, tmp_path / "flat.pic")
    assert_same_volume(flat, napari_medio.read(tmp_path / "flat.pic")[0])


def test_file_from_the_format_description(tmp_path):
    """76-byte little-endian header, 16-bit data, then AXIS notes in microns."""
    nx, ny, npic = 5, 4, 3
    data = (np.arange(nx * ny * npic, dtype="<u2") * 1000).reshape(npic, ny, nx)
    header = bytearray(76)
    struct.pack_into("<3H", header, 0, nx, ny, npic)
    struct.pack_into("<i", header, 10, 1)  # notes follow
    struct.pack_into("<h", header, 14, 0)  # 16-bit
    struct.pack_into("<H", header, 54, 12345)
    struct.pack_into("<h", header, 64, 40)  # lens
    struct.pack_into("<f", header, 66, 1.0)

    def note(text, last=False):
        return struct.pack("<hihhhhh", 1, 0 if last else 1, 0, 0, 20, 0, 0) + text.encode().ljust(80, b"\0")

    notes = (note("PIXEL_BIT_DEPTH 16") + note("AXIS_2 001 0.000000e+00 2.075000e-01 microns")
             + note("AXIS_3 001 0.000000e+00 2.075000e-01 microns")
             + note("AXIS_4 001 0.000000e+00 1.000000e+00 microns", last=True))
    (tmp_path / "scope.pic").write_bytes(bytes(header) + data.tobytes() + notes)
    [vol] = napari_medio.read(tmp_path / "scope.pic")
    assert vol.dtype == np.uint16 and np.array_equal(vol.array, data)
    assert np.allclose(vol.geometry.spacing, [2.075e-4, 2.075e-4, 1e-3])
    assert "PIXEL_BIT_DEPTH 16" in vol.metadata["biorad_notes"]


def test_reads_itk_8bit_files(tmp_path):
    arr = (np.arange(120) % 200).astype(np.uint8).reshape(4, 5, 6)
    image = sitk.GetImageFromArray(arr)
    image.SetSpacing([0.5, 0.5, 0.5])
    sitk.WriteImage(image, str(tmp_path / "itk.pic"))
    [vol] = napari_medio.read(tmp_path / "itk.pic")
    assert np.array_equal(vol.array, arr) and np.allclose(vol.geometry.spacing, 0.5)


def test_unsupported_writes(tmp_path):
    with pytest.raises(MedioError):
        napari_medio.write(scalar_3d("int16", geometry=AXIAL), tmp_path / "x.pic")
    with pytest.raises(MedioError, match="allow_direction_loss"):
        napari_medio.write(scalar_3d("uint8"), tmp_path / "x.pic")


def test_bad_input(tmp_path):
    napari_medio.write(scalar_3d("uint16", geometry=AXIAL), tmp_path / "ok.pic")
    assert_rejected(variants(tmp_path, tmp_path / "ok.pic", ".pic", cuts=(75, 77, 76 + 6 * 7 * 8 * 2 - 1)))
