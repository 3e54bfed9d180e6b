"""DOSXYZnrc .3ddose: a file written from the format description, SlicerRT placement, bad input."""
from __future__ import annotations

import numpy as np
import pytest

import napari_medio
from napari_medio.core.errors import MedioError
from napari_medio.core.geometry import Geometry
from napari_medio.core.registry import find_reader
from tests.badfiles import assert_rejected, variants


def dose_file(path, dose: np.ndarray, errors: np.ndarray, x0=-2.0, y0=-1.5, z0=0.0, step=(0.5, 0.25, 1.0)):
    nz, ny, nx = dose.shape
    lines = [f"  {nx}  {ny}  {nz}"]
    for n, start, d in ((nx, x0, step[0]), (ny, y0, step[1]), (nz, z0, step[2])):
        lines.append(" ".join(f"{start + d * i:.4f}" for i in range(n + 1)))
    lines.append(" ".join(f"{v:.6E}" for v in dose.ravel()))
    lines.append(" ".join(f"{v:.6E}" for v in errors.ravel()))
    path.write_text("\n".join(lines) + "\n")


def test_dose_and_errors(tmp_path):
    rng = np.random.default_rng(0)
    dose = rng.random((3, 4, 5)).astype(np.float32)
    err = rng.random((3, 4, 5)).astype(np.float32) / 10
    dose_file(tmp_path / "beam.3ddose", dose, err)
    assert find_reader(tmp_path / "beam.3ddose").name == "dosxyznrc-3ddose"
    [vol] = napari_medio.read(tmp_path / "beam.3ddose")
    assert vol.dtype == np.float32 and np.allclose(vol.array, dose, rtol=1e-6)
    # cm -> mm; SlicerRT puts the first boundaries at the first voxel, in RAS.
    expected = Geometry([5.0, 2.5, 10.0], [20.0, 15.0, 0.0], np.diag([-1.0, -1.0, 1.0]))
    assert vol.geometry.almost_equal(expected)
    dose_vol, err_vol = napari_medio.read(tmp_path / "beam.3ddose", errors=True, scale=2.0)
    assert np.allclose(dose_vol.array, dose * 2, rtol=1e-6) and np.allclose(err_vol.array, err, rtol=1e-6)
    assert err_vol.name == "beam_error"


def test_bad_input(tmp_path):
    dose_file(tmp_path / "ok.3ddose", np.ones((2, 3, 4)), np.zeros((2, 3, 4)))
    bad = variants(tmp_path, tmp_path / "ok.3ddose", ".3ddose", cuts=(40, 120))
    (tmp_path / "words.3ddose").write_text("2 3 4\n0 1 2\nzero one two\n")
    (tmp_path / "down.3ddose").write_text("1 1 1\n1 0\n0 1\n0 1\n5\n")
    bad += [tmp_path / "words.3ddose", tmp_path / "down.3ddose"]
    assert_rejected(bad)
    dose_file(tmp_path / "noerr.3ddose", np.ones((2, 3, 4)), np.zeros((2, 3, 4)))
    text = (tmp_path / "noerr.3ddose").read_text().splitlines()
    (tmp_path / "noerr.3ddose").write_text("\n".join(text[:-1]) + "\n")
    assert len(napari_medio.read(tmp_path / "noerr.3ddose")) == 1
    with pytest.raises(MedioError, match="no relative error block"):
        napari_medio.read(tmp_path / "noerr.3ddose", errors=True)
