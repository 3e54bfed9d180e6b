"""GIPL (.gipl, .gipl.gz): round trips, direction policy, bad input."""
from __future__ import annotations

import gzip

import numpy as np
import pytest
import SimpleITK as sitk

import napari_medio
from napari_medio.core.errors import MedioError
from napari_medio.core.geometry import Geometry
from tests.badfiles import assert_rejected, no_temp_files, variants
from tests.volumes import assert_same_volume, scalar_3d

AXIAL = Geometry([0.75, 0.8, 2.5], [12.5, -30.25, 101.0], np.eye(3))


@pytest.mark.parametrize("dtype", ["int8", "uint8", "int16", "uint16", "float32", "float64"])
@pytest.mark.parametrize("ext", [".gipl", ".gipl.gz"])
def test_round_trip(tmp_path, dtype, ext):
    vol = scalar_3d(dtype, geometry=AXIAL)
    out = tmp_path / f"v{ext}"
    napari_medio.write(vol, out)
    [back] = napari_medio.read(out)
    assert_same_volume(vol, back)
    assert back.name == "v"
    assert no_temp_files(tmp_path)
    if ext.endswith(".gz"):
        assert out.read_bytes()[:2] == b"\x1f\x8b"
    image = sitk.ReadImage(str(out))  # what Slicer (ITK) reads
    assert np.array_equal(sitk.GetArrayFromImage(image), vol.array)


def test_2d_reads_back_as_single_slice(tmp_path):
    from napari_medio.core.volume import Volume

    vol = Volume(np.arange(35, dtype=np.int16).reshape(5, 7), Geometry([0.5, 0.75], [1.0, 2.0], np.eye(2)))
    napari_medio.write(vol, tmp_path / "flat.gipl")
    [back] = napari_medio.read(tmp_path / "flat.gipl")
    assert back.shape == (1, 5, 7) and np.array_equal(back.array[0], vol.array)
    assert np.allclose(back.geometry.spacing[:2], [0.5, 0.75]) and np.allclose(back.geometry.origin[:2], [1, 2])


def test_unsupported_writes(tmp_path):
    with pytest.raises(MedioError, match="allow_direction_loss"):
        napari_medio.write(scalar_3d("int16"), tmp_path / "o.gipl")
    with pytest.raises(MedioError, match="int32"):
        napari_medio.write(scalar_3d("int32", geometry=AXIAL), tmp_path / "o.gipl")
    napari_medio.write(scalar_3d("int16"), tmp_path / "o.gipl", allow_direction_loss=True)
    assert np.allclose(napari_medio.read(tmp_path / "o.gipl")[0].geometry.direction, np.eye(3))


def test_bad_input(tmp_path):
    napari_medio.write(scalar_3d("int16", geometry=AXIAL), tmp_path / "ok.gipl")
    bad = variants(tmp_path, tmp_path / "ok.gipl", ".gipl", cuts=(-1, 255, 257))
    raw = (tmp_path / "ok.gipl").read_bytes()
    z = gzip.compress(raw)
    (tmp_path / "zcut.gipl.gz").write_bytes(z[: len(z) // 2])
    (tmp_path / "zshort.gipl.gz").write_bytes(gzip.compress(raw[:-2]))
    (tmp_path / "ztext.gipl.gz").write_bytes(gzip.compress(b"hello" * 100))
    bad += [tmp_path / "zcut.gipl.gz", tmp_path / "zshort.gipl.gz", tmp_path / "ztext.gipl.gz"]
    assert_rejected(bad)
