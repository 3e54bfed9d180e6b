"""convert-batch writes every volume an item loads as, and its summary counts them."""
from __future__ import annotations

import json
import warnings

import numpy as np

import napari_medio
from napari_medio.batch import SUMMARY_NAME, convert_batch, items_from_database, items_from_paths, output_paths
from napari_medio.cli import main
from napari_medio.dicom.database import DicomDatabase
from tests.dicom_qa.dicom_builders import multi_orientation_series


def _values(path) -> set[int]:
    return {int(v) for v in np.unique(napari_medio.read(path)[0].to_numpy())}


def test_output_paths_number_the_extra_volumes():
    assert output_paths("/o/a.nii.gz", 3) == ["/o/a.nii.gz", "/o/a-2.nii.gz", "/o/a-3.nii.gz"]
    assert output_paths("/o/a.seg.nrrd", 2) == ["/o/a.seg.nrrd", "/o/a-2.seg.nrrd"]
    assert output_paths("/o/a.nrrd", 1) == ["/o/a.nrrd"]


def test_series_of_seven_volumes_writes_seven_files(tmp_path, capsys):
    multi_orientation_series(tmp_path / "in")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = convert_batch(items_from_paths([tmp_path / "in"]), tmp_path / "out", "nrrd", scheduler="sync")
    [result] = report.results
    assert result["status"] == "done" and result["objects"] == 7 and report.files_written == 7
    files = sorted((tmp_path / "out").glob("*.nrrd"))
    assert [f.name for f in files] == sorted(["in.nrrd"] + [f"in-{i}.nrrd" for i in range(2, 8)])
    written = {v for f in files for v in _values(f)}
    assert written == {100 * v + k for v in range(7) for k in range(3)}  # every volume, no duplicates
    summary = json.loads((tmp_path / "out" / SUMMARY_NAME).read_text())
    assert summary["files_written"] == 7 and summary["items"][0]["outputs"] == result["outputs"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["convert-batch", str(tmp_path / "in"), "--out", str(tmp_path / "cli"), "--to", "nii.gz",
                     "--scheduler", "sync"]) == 0
    assert "1 converted (7 files written)" in capsys.readouterr().out
    assert len(list((tmp_path / "cli").glob("*.nii.gz"))) == 7


def test_database_series_of_seven_volumes(tmp_path):
    multi_orientation_series(tmp_path / "in")
    with DicomDatabase(tmp_path / "db") as db:
        db.import_paths([tmp_path / "in"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = convert_batch(items_from_database(tmp_path / "db"), tmp_path / "out", "nrrd", scheduler="sync")
    assert [r["objects"] for r in report.results] == [7] and report.files_written == 7
    assert len(list((tmp_path / "out").glob("*.nrrd"))) == 7
