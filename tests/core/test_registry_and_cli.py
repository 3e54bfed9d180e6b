"""The format registry (dispatch by content and extension) and the `medio` CLI contracts."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import napari_medio
from napari_medio.cli import main
from napari_medio.core import registry
from napari_medio.core.errors import FormatError, MedioError, UnsupportedFormatError
from tests.conftest import fixture_file
from tests.volumes import assert_same_volume, four_d, scalar_3d, vector_3d


def test_every_error_is_a_value_error_naming_the_file(tmp_path):
    assert issubclass(MedioError, ValueError)
    missing = tmp_path / "nothere.nrrd"
    with pytest.raises(FormatError, match="nothere.nrrd"):
        napari_medio.read(missing)
    unknown = tmp_path / "notes.xyz123"
    unknown.write_bytes(b"hello world")
    with pytest.raises(UnsupportedFormatError, match="notes.xyz123"):
        napari_medio.read(unknown)
    with pytest.raises(UnsupportedFormatError):
        napari_medio.write(scalar_3d(), tmp_path / "out.xyz123")


def test_extension_lies_content_decides(tmp_path):
    napari_medio.write(scalar_3d(), tmp_path / "real.nrrd")
    lie = tmp_path / "fake.nii.gz"
    lie.write_bytes((tmp_path / "real.nrrd").read_bytes())
    assert registry.find_reader(lie).name.startswith("nrrd")
    assert_same_volume(napari_medio.read(lie)[0], scalar_3d())


def test_compound_extensions_win():
    for name, fmt in [("a.seq.nrrd", "nrrd-sequence"), ("a.nii.gz", "nifti"), ("a.nrrd", "nrrd")]:
        assert registry.find_writer(name, kind="volume").name == fmt


def _info_json(capsys, *paths) -> list:
    assert main(["info", "--json", *map(str, paths)]) == 0
    return json.loads(capsys.readouterr().out)


def test_info_json_contract(capsys, tmp_path):
    vol = scalar_3d()
    napari_medio.write(vol, tmp_path / "v.nrrd")
    [info] = _info_json(capsys, tmp_path / "v.nrrd")
    assert info["kind"] == "volume"
    assert info["shape"] == [6, 7, 8]
    assert info["dtype"] == "int16"
    assert np.allclose(info["spacing"], vol.geometry.spacing)
    assert np.allclose(info["origin"], vol.geometry.origin)
    assert np.allclose(info["direction"], vol.geometry.direction)  # rows x,y,z; columns i,j,k
    affine = np.array(info["affine"])
    assert affine.shape == (4, 4)
    lps = vol.geometry.index_to_lps([3, 2, 1])
    assert np.allclose((affine @ [1, 2, 3, 1])[:3], lps[::-1])


def test_info_json_4d_and_vector(capsys, tmp_path):
    napari_medio.write(four_d(), tmp_path / "t.nii.gz")
    napari_medio.write(vector_3d(), tmp_path / "v.nrrd")
    t, v = _info_json(capsys, tmp_path / "t.nii.gz", tmp_path / "v.nrrd")
    assert t["shape"] == [3, 5, 6, 7] and t["extra_axes"][0]["name"] == "time"
    assert np.array(t["affine"]).shape == (5, 5)
    assert v["components"]["size"] == 3


def test_info_on_fixture_matches_manifest(capsys):
    [info] = _info_json(capsys, fixture_file("images/CTChest4.nrrd"))
    assert info["shape"] == [34, 128, 128]
    assert np.allclose(info["origin"], [193.096, 216.396, -340.25], atol=1e-3)


def test_info_bad_file_is_one_line_error(capsys, tmp_path):
    bad = tmp_path / "bad.nrrd"
    bad.write_bytes(b"")
    assert main(["info", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "bad.nrrd" in err and "Traceback" not in err


@pytest.mark.parametrize("src_ext,dst_ext", [(".nrrd", ".nii.gz"), (".nii.gz", ".nhdr"), (".nrrd", ".mgz")])
def test_convert(tmp_path, src_ext, dst_ext):
    vol = scalar_3d("int16")
    napari_medio.write(vol, tmp_path / f"in{src_ext}")
    assert main(["convert", str(tmp_path / f"in{src_ext}"), str(tmp_path / f"out{dst_ext}")]) == 0
    assert_same_volume(vol, napari_medio.read(tmp_path / f"out{dst_ext}")[0], tol=1e-4)


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "napari_medio.cli", "formats"], capture_output=True, text=True)
    assert out.returncode == 0 and "nrrd" in out.stdout
