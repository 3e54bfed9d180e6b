"""Zeiss LSM (.lsm, read only): files made by ITK's LSM writer, bad input."""
from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

import napari_medio
from napari_medio.core.errors import UnsupportedFormatError
from napari_medio.core.geometry import Geometry
from napari_medio.core.registry import find_reader
from napari_medio.core.volume import Volume
from napari_medio.formats.lsm import sniff
from tests.badfiles import assert_rejected, variants


def _lsm(path, array, spacing, vector=False):
    image = sitk.GetImageFromArray(array, isVector=vector)
    image.SetSpacing(spacing)
    sitk.WriteImage(image, str(path))


@pytest.mark.parametrize("dtype", ["uint8", "uint16"])
def test_read_stack(tmp_path, dtype):
    arr = (np.arange(5 * 6 * 7) * 37 % 250).astype(dtype).reshape(5, 6, 7)
    _lsm(tmp_path / "stack.lsm", arr, [0.5, 0.25, 2.0])
    assert find_reader(tmp_path / "stack.lsm").name == "lsm"
    [vol] = napari_medio.read(tmp_path / "stack.lsm")
    assert vol.dtype == np.dtype(dtype) and np.array_equal(vol.array, arr)
    assert np.allclose(vol.geometry.spacing, [0.5, 0.25, 2.0], atol=1e-6)
    assert np.allclose(vol.geometry.direction, np.eye(3))


def test_read_rgb_and_2d(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 255, (4, 5, 6, 3), endpoint=True).astype(np.uint8)
    _lsm(tmp_path / "rgb.lsm", rgb, [1.0, 1.0, 1.0], vector=True)
    [vol] = napari_medio.read(tmp_path / "rgb.lsm")
    assert vol.is_rgb and np.array_equal(vol.array, rgb)
    flat = np.arange(42, dtype=np.uint8).reshape(6, 7)
    _lsm(tmp_path / "flat.lsm", flat, [0.5, 0.5])
    [vol] = napari_medio.read(tmp_path / "flat.lsm")
    assert vol.shape == (6, 7) and np.array_equal(vol.array, flat)


def test_plain_tiff_is_not_lsm(tmp_path):
    import tifffile

    tifffile.imwrite(tmp_path / "plain.tif", np.zeros((4, 5), np.uint8))
    assert not sniff((tmp_path / "plain.tif").read_bytes()[:4096], None)


def test_read_only(tmp_path):
    vol = Volume(np.zeros((3, 4, 5), np.uint8), Geometry.identity(3))
    with pytest.raises(UnsupportedFormatError):
        napari_medio.write(vol, tmp_path / "x.lsm")


def test_bad_input(tmp_path):
    arr = (np.arange(5 * 60 * 70) % 250).astype(np.uint8).reshape(5, 60, 70)
    _lsm(tmp_path / "ok.lsm", arr, [0.5, 0.25, 2.0])
    assert_rejected(variants(tmp_path, tmp_path / "ok.lsm", ".lsm", cuts=(-1, 2000)))
