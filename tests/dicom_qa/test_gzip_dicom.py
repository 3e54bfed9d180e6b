"""gzip-compressed DICOM (``*.dcm.gz``) reads like the plain files: folders, single files, the database."""
from __future__ import annotations

import gzip
import shutil
import warnings

import numpy as np
import pytest

import napari_medio
from napari_medio.core import registry
from napari_medio.dicom._parse import NotDicomError
from napari_medio.dicom.database import DicomDatabase
from napari_medio.dicom.gzipped import parse_any_header
from tests.conftest import fixture_file


@pytest.fixture
def gz_folder(tmp_path):
    src = fixture_file("dicom/slicer_CTHeadAxial")
    folder = tmp_path / "gz"
    folder.mkdir()
    for f in sorted(src.iterdir()):
        with gzip.open(folder / (f.name + ".gz"), "wb") as out:
            out.write(f.read_bytes())
    shutil.copy(fixture_file("images/nibabel/standard.nii.gz"), folder / "not_dicom.nii.gz")
    return src, folder


def _read(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return napari_medio.read(path)


def test_gzipped_folder_reads_as_the_plain_folder(gz_folder):
    src, folder = gz_folder
    [plain] = _read(src)
    [gz] = _read(folder)
    np.testing.assert_array_equal(gz.to_numpy(), plain.to_numpy())
    assert gz.geometry.almost_equal(plain.geometry, 1e-9)


def test_single_gzipped_file(gz_folder):
    src, folder = gz_folder
    assert registry.find_reader(folder / "CTHead1.dcm.gz").name == "dicom"
    [plain] = _read(src / "CTHead1.dcm")
    [gz] = _read(folder / "CTHead1.dcm.gz")
    np.testing.assert_array_equal(gz.to_numpy(), plain.to_numpy())


def test_non_dicom_and_corrupt_gzip(gz_folder, tmp_path):
    _, folder = gz_folder
    with pytest.raises(NotDicomError):
        parse_any_header(folder / "not_dicom.nii.gz")
    broken = tmp_path / "broken.dcm.gz"
    broken.write_bytes((folder / "CTHead1.dcm.gz").read_bytes()[:-200])
    with pytest.raises(napari_medio.MedioError, match="broken.dcm.gz"):
        _read(broken)


@pytest.mark.parametrize("copy", [False, True])
def test_database_imports_gzipped_dicom(gz_folder, tmp_path, copy):
    src, folder = gz_folder
    with DicomDatabase(tmp_path / f"db{copy}") as db:
        report = db.import_paths([folder], copy=copy)
        assert report.added == 93 and report.non_dicom == 1
        [series] = db.series()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            [vol] = db.load_series(series["uid"])
    [plain] = _read(src)
    np.testing.assert_array_equal(vol.to_numpy(), plain.to_numpy())
