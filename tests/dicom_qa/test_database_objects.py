"""SEG, RT structure set and SR files imported into the DICOM database load as ``napari_medio.read`` reads them.

The same files go through every entry point -- ``read()``, ``DicomDatabase.load_series``,
``medio dicom load`` and ``medio convert-batch --db`` -- and give the same objects.
"""
from __future__ import annotations

import shutil
import warnings

import numpy as np
import pydicom
import pytest

import napari_medio
from napari_medio.batch import convert_batch, items_from_database
from napari_medio.cli import main
from napari_medio.dicom.database import DicomDatabase
from tests.conftest import fixture_file

OBJECT_FILES = ["dicom/highdicom/seg_image_ct_binary.dcm", "dicom/dcmqi_ct3slice_liver/liver_seg.dcm",
                "dicom/pydicom/rtstruct.dcm", "dicom/highdicom/sr_document.dcm"]


def _labels(obj) -> np.ndarray:
    labelmap = obj.convert_to("labelmap") if hasattr(obj, "convert_to") else None
    return np.asarray((labelmap or obj).to_numpy())


@pytest.fixture
def database(tmp_path):
    folder = tmp_path / "files"
    folder.mkdir()
    for rel in OBJECT_FILES:
        shutil.copy(fixture_file(rel), folder / fixture_file(rel).name)
    with DicomDatabase(tmp_path / "db") as db:
        db.import_paths([folder], copy=True)
    shutil.rmtree(folder)  # the database's own copies are read, not the originals
    return tmp_path / "db"


def _series_uid(rel: str) -> str:
    return str(pydicom.dcmread(fixture_file(rel), stop_before_pixels=True, force=True).SeriesInstanceUID)


@pytest.mark.parametrize("rel", OBJECT_FILES)
def test_load_series_matches_read(database, rel):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        direct = napari_medio.read(fixture_file(rel))
        with DicomDatabase(database) as db:
            loaded = db.load_series(_series_uid(rel))
    assert [type(o).__name__ for o in loaded] == [type(o).__name__ for o in direct]
    for a, b in zip(loaded, direct):
        if getattr(a, "kind", None) == "segmentation":
            np.testing.assert_array_equal(_labels(a), _labels(b))
            assert a.geometry.almost_equal(b.geometry, 1e-6)


def test_cli_dicom_load_and_convert_batch_read_seg(database, tmp_path):
    rel = "dicom/dcmqi_ct3slice_liver/liver_seg.dcm"
    out = tmp_path / "liver.seg.nrrd"
    assert main(["dicom", "load", _series_uid(rel), str(out), "--db", str(database)]) == 0
    direct = napari_medio.read(fixture_file(rel))[0]
    back = napari_medio.read(out)[0]
    np.testing.assert_array_equal(_labels(back), _labels(direct))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = convert_batch(items_from_database(database), tmp_path / "batch", "seg.nrrd", scheduler="sync")
    by_uid = {r["series_uid"]: r for r in report.results}
    for rel in ("dicom/highdicom/seg_image_ct_binary.dcm", "dicom/dcmqi_ct3slice_liver/liver_seg.dcm",
                "dicom/pydicom/rtstruct.dcm"):
        result = by_uid[_series_uid(rel)]
        assert result["status"] == "done", result["reason"]
        assert "no image data" not in result["reason"]
