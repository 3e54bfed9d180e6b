"""Stimulate (.spr + .sdt): round trips, files as Stimulate and ITK write them, bad input."""
from __future__ import annotations

import os

import numpy as np
import pytest
import SimpleITK as sitk

import napari_medio
from napari_medio.core.errors import MedioError
from napari_medio.core.geometry import Geometry
from napari_medio.core.volume import AxisInfo, Volume
from tests.badfiles import assert_rejected, no_temp_files, variants
from tests.volumes import assert_same_volume, scalar_3d

AXIAL = Geometry([0.75, 0.8, 2.5], [12.5, -30.25, 101.0], np.eye(3))


@pytest.mark.parametrize("dtype", ["uint8", "int16", "int32", "float32"])
def test_round_trip(tmp_path, dtype):
    vol = scalar_3d(dtype, geometry=AXIAL)
    written = napari_medio.write(vol, tmp_path / "v.spr")
    assert written == [str(tmp_path / "v.spr"), str(tmp_path / "v.sdt")]
    assert "stimFileName: v.sdt" in (tmp_path / "v.spr").read_text()
    assert_same_volume(vol, napari_medio.read(tmp_path / "v.spr")[0])
    assert no_temp_files(tmp_path)


def test_round_trip_2d_4d_complex(tmp_path):
    flat = Volume(np.arange(42, dtype=np.float32).reshape(6, 7), Geometry([0.2, 0.3], [1.0, -2.0], np.eye(2)))
    four = Volume(np.arange(3 * 4 * 5 * 6, dtype=np.int16).reshape(3, 4, 5, 6), AXIAL,
                  extra_axes=[AxisInfo("time", values=[0.0, 2.0, 4.0], kind="time")])
    cplx = Volume(np.random.default_rng(0).normal(size=(4, 5, 6, 2)).astype(np.float32), AXIAL,
                  components=AxisInfo("complex", kind="complex"))
    for i, vol in enumerate((flat, four, cplx)):
        napari_medio.write(vol, tmp_path / f"v{i}.spr")
        assert_same_volume(vol, napari_medio.read(tmp_path / f"v{i}.spr")[0])
    assert napari_medio.read(tmp_path / "v1.spr")[0].extra_axes[0].values == [0.0, 2.0, 4.0]


def test_moved_header_and_stimulate_style_file(tmp_path):
    """A header naming its data with another folder's path, little-endian data, fov only."""
    data = np.arange(24, dtype="<f4").reshape(2, 3, 4)
    (tmp_path / "scan.sdt").write_bytes(data.tobytes())
    (tmp_path / "scan.spr").write_text("numDim:  3\ndim: 4 3 2\nfov: 8.0 6.0 4.0\ndataType: REAL\n"
                                       "endian: ieee-le\nfidName: /old/place/scan.fid\n"
                                       "stimFileName: /old/place/scan.sdt\n")
    [vol] = napari_medio.read(tmp_path / "scan.spr")
    assert np.array_equal(vol.array, data)
    assert np.allclose(vol.geometry.spacing, [2.0, 2.0, 2.0])
    assert np.allclose(vol.geometry.origin, [-3.0, -2.0, -1.0])  # centred image: (interval - fov) / 2


def test_itk_reads_what_we_write(tmp_path):
    vol = scalar_3d("float32", geometry=AXIAL)
    napari_medio.write(vol, tmp_path / "v.spr")
    image = sitk.ReadImage(os.fspath(tmp_path / "v.spr"))
    assert np.array_equal(sitk.GetArrayFromImage(image), vol.array)
    assert np.allclose(image.GetOrigin(), AXIAL.origin)


def test_unsupported_writes(tmp_path):
    with pytest.raises(MedioError):
        napari_medio.write(scalar_3d("float64", geometry=AXIAL), tmp_path / "x.spr")
    with pytest.raises(MedioError, match="allow_direction_loss"):
        napari_medio.write(scalar_3d("int16"), tmp_path / "x.spr")
    assert not list(tmp_path.iterdir())


def test_bad_input(tmp_path):
    napari_medio.write(scalar_3d("int16", geometry=AXIAL), tmp_path / "ok.spr")
    bad = variants(tmp_path, tmp_path / "ok.spr", ".spr")
    # Header intact, data truncated or missing.
    (tmp_path / "short.spr").write_text((tmp_path / "ok.spr").read_text().replace("ok.sdt", "short.sdt"))
    (tmp_path / "short.sdt").write_bytes((tmp_path / "ok.sdt").read_bytes()[:-1])
    (tmp_path / "nodata.spr").write_text((tmp_path / "ok.spr").read_text().replace("ok.sdt", "gone.sdt"))
    (tmp_path / "badtype.spr").write_text((tmp_path / "ok.spr").read_text().replace("WORD", "QUATERNION"))
    bad += [tmp_path / "short.spr", tmp_path / "nodata.spr", tmp_path / "badtype.spr"]
    assert_rejected(bad)
