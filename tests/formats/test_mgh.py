"""MGH/MGZ: round trip, conformance with nibabel's affine, bad input."""
from __future__ import annotations

import numpy as np
import pytest

import napari_medio
from napari_medio.core.errors import FormatError
from tests.conftest import fixture_file
from tests.volumes import assert_same_volume, scalar_3d


@pytest.mark.parametrize("ext", [".mgz", ".mgh"])
@pytest.mark.parametrize("dtype", ["uint8", "int16", "int32", "float32"])
def test_round_trip(tmp_path, ext, dtype):
    vol = scalar_3d(dtype)
    napari_medio.write(vol, tmp_path / f"v{ext}")
    assert_same_volume(vol, napari_medio.read(tmp_path / f"v{ext}")[0], tol=1e-4)


def test_conformance_4d_oblique():
    [vol] = napari_medio.read(fixture_file("images/nibabel/test.mgz"))
    assert vol.shape == (2, 5, 4, 3)
    ras = np.array([[1.0, 2.0, 3.0, -13.0], [2.0, 3.0, 1.0, -11.5], [3.0, 1.0, 2.0, -11.5], [0, 0, 0, 1]])
    assert np.allclose(vol.geometry.index_to_ras_matrix(), ras, atol=1e-5)
    assert np.isclose(float(np.asarray(vol.array).sum(dtype=np.float64)), -15.5566, atol=1e-3)


def test_bad_input(tmp_path):
    for name, content in {"empty.mgz": b"", "random.mgh": np.random.default_rng(1).bytes(500)}.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(FormatError):
            napari_medio.read(tmp_path / name)
    napari_medio.write(scalar_3d("int16"), tmp_path / "ok.mgh")
    (tmp_path / "trunc.mgh").write_bytes((tmp_path / "ok.mgh").read_bytes()[:400])
    with pytest.raises(FormatError):
        napari_medio.read(tmp_path / "trunc.mgh")
