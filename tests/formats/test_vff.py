"""Vista optical CT (.vff): a file written from the format description, SlicerRT placement, bad input."""
from __future__ import annotations

import numpy as np
import pytest

import napari_medio
from napari_medio.core.errors import UnsupportedFormatError
from napari_medio.core.geometry import Geometry
from napari_medio.core.volume import Volume
from tests.badfiles import assert_rejected, variants


def vff_file(path, data: np.ndarray, bits=32, spacing=(0.5, 0.5, 1.0), origin=(12.0, 8.0, 4.0)):
    nz, ny, nx = data.shape
    header = (
        "ncaa\nrank=3;\ntype=raster;\nformat=slice;\n"
        f"bits={bits};\nbands=1;\nsize={nx} {ny} {nz};\n"
        f"spacing={spacing[0]} {spacing[1]} {spacing[2]};\norigin={origin[0]} {origin[1]} {origin[2]};\n"
        f"rawsize={data.nbytes};\ndata_scale=2.0;\ndata_offset=-1.0;\nhandleScatter=factor;\n"
        "referenceScatterFactor=1;\ndataScatterFactor=1;\nfilter=Ram-Lak;\ntitle=C:\\scans\\gel01.vff;\n"
        "date=2014/01/01;\n\f\n"
    )
    big = {32: ">f4", 16: ">i2", 8: ">u1"}[bits]
    path.write_bytes(header.encode() + data.astype(big).tobytes())


def test_float_volume(tmp_path):
    data = np.random.default_rng(0).normal(size=(3, 4, 5)).astype(np.float32)
    vff_file(tmp_path / "gel.vff", data)
    [vol] = napari_medio.read(tmp_path / "gel.vff")
    assert vol.dtype == np.float32 and np.array_equal(vol.array, data)
    # SlicerRT: origin is RAS with i, j running to -R, -A  ->  LPS origin (-x0, -y0, z0), identity axes.
    assert vol.geometry.almost_equal(Geometry([0.5, 0.5, 1.0], [-12.0, -8.0, 4.0], np.eye(3)))
    assert vol.metadata["vff"]["title"].endswith("gel01.vff")
    [scaled] = napari_medio.read(tmp_path / "gel.vff", rescale=True)
    assert scaled.dtype == np.float32 and np.allclose(scaled.array, data * 2.0 - 1.0)


@pytest.mark.parametrize("bits,dtype", [(8, np.uint8), (16, np.int16)])
def test_integer_volumes(tmp_path, bits, dtype):
    data = (np.arange(60) % 100).astype(dtype).reshape(3, 4, 5)
    vff_file(tmp_path / "i.vff", data, bits=bits)
    [vol] = napari_medio.read(tmp_path / "i.vff")
    assert vol.dtype == dtype and np.array_equal(vol.array, data)


def test_read_only(tmp_path):
    with pytest.raises(UnsupportedFormatError):
        napari_medio.write(Volume(np.zeros((2, 3, 4), np.float32), Geometry.identity()), tmp_path / "x.vff")


def test_bad_input(tmp_path):
    vff_file(tmp_path / "ok.vff", np.ones((3, 4, 5), np.float32))
    bad = variants(tmp_path, tmp_path / "ok.vff", ".vff", cuts=(-1, 100))
    text = (tmp_path / "ok.vff").read_bytes()
    (tmp_path / "rank2.vff").write_bytes(text.replace(b"rank=3", b"rank=2"))
    (tmp_path / "bits12.vff").write_bytes(text.replace(b"bits=32", b"bits=12"))
    bad += [tmp_path / "rank2.vff", tmp_path / "bits12.vff"]
    assert_rejected(bad)
