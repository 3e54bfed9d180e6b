"""DICOM export: image series (classic and enhanced), DICOM SEG, DICOMDIR, the database round trip, the CLI.

Every exported object passes dciodvfy (dicom3tools) with no errors and reads back
with pydicom / SimpleITK / highdicom with the same voxels and geometry (1e-3 mm).
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import UID

from napari_medio.core import registry
from napari_medio.core.errors import CancelledError, MedioError
from napari_medio.core.geometry import Geometry
from napari_medio.core.segmentation import Segment, Segmentation
from napari_medio.core.volume import AxisInfo, Volume
from napari_medio.dicom.export import (
    ExportTags,
    export_files,
    export_from_database,
    export_object,
    export_segmentation,
    export_to_database,
    export_volume,
    volume_to_datasets,
)
from napari_medio.dicom.seg import read_seg, read_seg_segmentation
from napari_medio.dicom.series import read_dicom_path
from tests.conftest import fixture_file

LIVER_TERMINOLOGY = ("Segmentation category and type - DICOM master list~SCT^123037004^Anatomical Structure~"
                     "SCT^10200004^Liver~^^~Anatomic codes - DICOM master list~^^~^^")


def dciodvfy_errors(path) -> list[str]:
    tool = shutil.which("dciodvfy")
    if tool is None:
        if os.environ.get("CI"):  # scripts/setup.sh installs it: on CI its absence is a failure
            pytest.fail("dciodvfy not installed (Debian package dicom3tools)")
        pytest.skip("dciodvfy not installed (Debian package dicom3tools)")
    out = subprocess.run([tool, os.fspath(path)], capture_output=True, text=True)
    return [line for line in (out.stdout + out.stderr).splitlines() if line.startswith("Error")]


def _sitk_series(folder):
    import SimpleITK as sitk

    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(os.fspath(folder)))
    return reader.Execute()


def _oblique_volume(dtype=np.int16) -> Volume:
    th = 0.3
    rz = np.array([[np.cos(th), -np.sin(th), 0], [np.sin(th), np.cos(th), 0], [0, 0, 1]])
    d = rz @ np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0]])
    a = (np.random.default_rng(1).random((6, 20, 30)) * 3000 - 1000).astype(dtype)
    return Volume(a, Geometry([0.7, 0.8, 2.5], [10.0, -20.0, 30.0], d), name="oblique")


@pytest.fixture(scope="module")
def ct_volume() -> Volume:
    return read_dicom_path(fixture_file("dicom/slicer_CTHeadAxial"))[0]


@pytest.fixture(scope="module")
def liver_dir() -> Path:
    return fixture_file("dicom/dcmqi_ct3slice_liver")


# -- image series ----------------------------------------------------------------------------------
@pytest.mark.parametrize("modality,enhanced", [("CT", False), ("MR", False), ("OT", False), ("CT", True),
                                               ("MR", True)])
def test_volume_export_valid_and_round_trips(tmp_path, ct_volume, modality, enhanced):
    tags = ExportTags(patient_name="Doe^Jane", patient_id="P-42", study_description="Exported study",
                      series_description="exported", series_number=7, modality=modality)
    files = export_volume(ct_volume, tmp_path, tags, enhanced=enhanced)
    assert len(files) == (1 if enhanced else 93)
    for f in files[:: max(1, len(files) // 4)]:
        assert dciodvfy_errors(f) == [], f
    back = read_dicom_path(files[0].parent)[0]
    assert back.geometry.almost_equal(ct_volume.geometry, 1e-3)
    np.testing.assert_array_equal(back.to_numpy(), ct_volume.to_numpy())
    ds = pydicom.dcmread(files[0])
    assert str(ds.PatientName) == "Doe^Jane" and ds.PatientID == "P-42"
    assert ds.StudyDescription == "Exported study" and ds.SeriesDescription == "exported"
    assert int(ds.SeriesNumber) == 7 and ds.Modality == modality
    src = ct_volume.metadata["dicom"]
    for uid in (ds.SOPInstanceUID, ds.SeriesInstanceUID, ds.StudyInstanceUID):
        assert UID(uid).is_valid
    assert ds.SeriesInstanceUID != src["SeriesInstanceUID"]
    assert ds.SOPInstanceUID not in src["SOPInstanceUIDs"]
    assert ds.StudyInstanceUID != src["StudyInstanceUID"]  # another patient: a new study
    if not enhanced:
        img = _sitk_series(files[0].parent)
        np.testing.assert_allclose(img.GetOrigin(), ct_volume.geometry.origin, atol=1e-3)
        np.testing.assert_allclose(img.GetSpacing(), ct_volume.geometry.spacing, atol=1e-3)
        import SimpleITK as sitk

        np.testing.assert_array_equal(sitk.GetArrayFromImage(img), ct_volume.to_numpy())


def test_export_inherits_patient_and_study(tmp_path, ct_volume):
    files = export_volume(ct_volume, tmp_path, ExportTags(series_description="derived"))
    ds = pydicom.dcmread(files[0])
    src = ct_volume.metadata["dicom"]
    assert ds.PatientID == src["PatientID"] and ds.StudyInstanceUID == src["StudyInstanceUID"]
    assert ds.SeriesInstanceUID != src["SeriesInstanceUID"]
    assert len({pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID for f in files}) == len(files)


def test_oblique_and_float_volumes(tmp_path):
    vol = _oblique_volume()
    files = export_volume(vol, tmp_path / "int", ExportTags(modality="CT"))
    assert dciodvfy_errors(files[0]) == []
    back = read_dicom_path(files[0].parent)[0]
    assert back.geometry.almost_equal(vol.geometry, 1e-4)
    np.testing.assert_array_equal(back.to_numpy(), vol.to_numpy())
    fvol = vol.with_array(vol.to_numpy().astype(np.float32) / 7.3)
    files = export_volume(fvol, tmp_path / "float", ExportTags(modality="MR"))
    back = read_dicom_path(files[0].parent)[0]
    span = float(fvol.to_numpy().max() - fvol.to_numpy().min())
    assert np.abs(back.to_numpy() - fvol.to_numpy()).max() <= span / 65534 + 1e-4
    assert "lossy" in pydicom.dcmread(files[0]).ImageComments


def test_rgb_volume_is_secondary_capture(tmp_path):
    a = np.random.default_rng(2).integers(0, 255, (3, 8, 9, 3), dtype=np.uint8)
    vol = Volume(a, Geometry([1.0, 1.0, 2.0], [0, 0, 0], np.eye(3)), components=AxisInfo("c", kind="RGB-color"))
    files = export_volume(vol, tmp_path)
    ds = pydicom.dcmread(files[0])
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7" and ds.PhotometricInterpretation == "RGB"
    assert dciodvfy_errors(files[0]) == []
    np.testing.assert_array_equal(ds.pixel_array, a[0])


def test_unsupported_objects_and_cancel(tmp_path, ct_volume):
    with pytest.raises(MedioError, match="extra axes"):
        volume_to_datasets(Volume(np.zeros((2, 3, 4, 5), np.int16), Geometry.identity(3),
                                  extra_axes=[AxisInfo("t", kind="time")]))
    with pytest.raises(MedioError, match="enhanced"):
        volume_to_datasets(ct_volume, ExportTags(modality="OT"), enhanced=True)
    with pytest.raises(MedioError, match="cannot be exported"):
        export_object(object(), tmp_path)
    calls = []

    def cancel():
        calls.append(1)
        return len(calls) > 120

    with pytest.raises(CancelledError):
        export_volume(ct_volume, tmp_path / "c", cancel=cancel)
    assert not list((tmp_path / "c").rglob("*.dcm"))


# -- DICOM SEG ---------------------------------------------------------------------------------------
def test_labelmap_to_seg_valid_and_reads_back(tmp_path, liver_dir):
    import highdicom as hd

    lm = registry.read(liver_dir / "liver_seg.nrrd")[0]
    files = export_segmentation(lm, tmp_path, liver_dir / "image",
                                ExportTags(series_description="Liver SEG", patient_name="Doe^Jane"))
    assert dciodvfy_errors(files[0]) == []
    seg = hd.seg.segread(files[0])
    assert seg.number_of_segments == 1 and seg.PatientName == "Doe^Jane"
    refs = {str(i.ReferencedSOPInstanceUID) for s in seg.ReferencedSeriesSequence for i in s.ReferencedInstanceSequence}
    src = {pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID for f in (liver_dir / "image").iterdir()}
    assert refs == src
    back = read_seg_segmentation(files[0])
    assert back.geometry.almost_equal(lm.geometry, 1e-3)
    np.testing.assert_array_equal(np.asarray(back.array) > 0, np.asarray(lm.array) > 0)
    vols = read_seg(files[0], liver_dir / "image")
    assert len(vols) == 1 and vols[0].kind == "labelmap" and 1 in vols[0].metadata["color_table"]


def test_overlapping_segments_names_colours_terminology(tmp_path, liver_dir):
    lm = registry.read(liver_dir / "liver_seg.nrrd")[0]
    a = np.zeros((2, 3, 512, 512), np.uint8)
    a[0, :, 10:50, 10:50] = 1
    a[1, :, 30:70, 30:70] = 1
    a[0, 1, 100:120, 100:120] = 2
    segs = [Segment("a", "Alpha", 1, 0, (1.0, 0.0, 0.0), tags={"TerminologyEntry": LIVER_TERMINOLOGY}),
            Segment("b", "Beta", 1, 1, (0.0, 1.0, 0.0)), Segment("c", "Gamma", 2, 0, (0.2, 0.4, 0.9))]
    seg = Segmentation(a, lm.geometry, segs, name="overlap")
    files = export_segmentation(seg, tmp_path, liver_dir / "image")
    assert dciodvfy_errors(files[0]) == []
    back = read_seg_segmentation(files[0])
    assert back.n_layers == 2
    for s in segs:
        b = back.segment(s.name)
        np.testing.assert_array_equal(seg.mask(s), back.mask(b))
        np.testing.assert_allclose(b.color, s.color, atol=0.01)
    assert "SCT^10200004^Liver" in back.segment("Alpha").terminology
    assert "SCT^85756007^Tissue" in back.segment("Beta").terminology


def test_seg_on_a_different_grid_is_placed_by_position(tmp_path, liver_dir):
    lm = registry.read(liver_dir / "liver_seg.nrrd")[0]
    crop = np.asarray(lm.array)[:, 100:400, 50:450]
    g = lm.geometry
    origin = g.index_to_lps([50, 100, 0])
    cropped = Volume(crop, Geometry(g.spacing, origin, g.direction), kind="labelmap")
    files = export_segmentation(cropped, tmp_path, liver_dir / "image")
    assert dciodvfy_errors(files[0]) == []
    back = read_seg_segmentation(files[0], liver_dir / "image")
    np.testing.assert_array_equal(np.asarray(back.array) > 0, np.asarray(lm.array) > 0)


def test_seg_needs_reference(tmp_path, liver_dir):
    lm = registry.read(liver_dir / "liver_seg.nrrd")[0]
    with pytest.raises(MedioError, match="reference"):
        export_object(lm, tmp_path)


# -- folders, DICOMDIR and the database round trip -------------------------------------------------------
def test_export_files_dicomdir_and_flat(tmp_path, liver_dir):
    files = sorted((liver_dir / "image").iterdir())
    progress = []
    out = export_files(files, tmp_path / "dd", progress=lambda d, t: progress.append((d, t)))
    assert (tmp_path / "dd" / "DICOMDIR").is_file() and len(out) == 3 and progress[-1] == (3, 3)
    assert dciodvfy_errors(tmp_path / "dd" / "DICOMDIR") == []
    again = export_files(files, tmp_path / "dd")  # adding the same instances again changes nothing
    assert len(again) == 3
    assert len(read_dicom_path(tmp_path / "dd" / "DICOMDIR")[0].to_numpy()) == 3
    flat = export_files(files, tmp_path / "flat", dicomdir=False)
    assert sorted(p.name for p in flat) == sorted(f"{pydicom.dcmread(f).SOPInstanceUID}.dcm" for f in files)


def test_round_trip_through_databases(tmp_path, liver_dir):
    from napari_medio.dicom.database import DicomDatabase

    db = DicomDatabase(tmp_path / "db")
    db.import_paths([liver_dir / "image"])
    source_uid = db.series()[0]["uid"]
    vol = db.load_series(source_uid)[0]
    lm = registry.read(liver_dir / "liver_seg.nrrd")[0]
    seg = Segmentation.from_labelmap(lm)
    seg.segments[0].name, seg.segments[0].color = "Liver", (0.8, 0.3, 0.2)
    seg.metadata["dicom"] = {"SeriesInstanceUID": source_uid}
    export_to_database(vol, db, ExportTags(series_description="copy", series_number=3))
    export_to_database(seg, db, ExportTags(series_description="liver seg"))  # reference found in the database
    kinds = sorted(s["modality"] for s in db.series())
    assert kinds == ["CT", "CT", "SEG"]
    export_from_database(db, tmp_path / "out", studies=[db.studies()[0]["uid"]])
    fresh = DicomDatabase(tmp_path / "db2")
    fresh.import_paths([tmp_path / "out" / "DICOMDIR"])
    by_desc = {s["description"]: s for s in fresh.series()}
    copy = fresh.load_series(by_desc["copy"]["uid"])[0]
    assert copy.geometry.almost_equal(vol.geometry, 1e-3)
    np.testing.assert_array_equal(copy.to_numpy(), vol.to_numpy())
    seg_file = fresh.instance_files(by_desc["liver seg"]["uid"])[0][0]
    from napari_medio.dicom.objects import read_object

    back = read_object(seg_file)[0]  # DICOMDIR members have no extension: the "dicom" format would take them
    assert isinstance(back, Segmentation) and back.segments[0].name == "Liver"
    np.testing.assert_allclose(back.segments[0].color, (0.8, 0.3, 0.2), atol=0.01)
    assert back.geometry.almost_equal(lm.geometry, 1e-3)
    np.testing.assert_array_equal(np.asarray(back.array) > 0, np.asarray(lm.array) > 0)


# -- CLI -------------------------------------------------------------------------------------------------------
def test_cli_export_volume_and_segmentation(tmp_path, liver_dir, capsys):
    from napari_medio.cli import main

    rc = main(["dicom", "export", os.fspath(liver_dir / "image"), "--out", os.fspath(tmp_path / "img"),
               "--patient-name", "Doe^John", "--patient-id", "X1", "--study-description", "S",
               "--series-description", "CT copy"])
    assert rc == 0
    files = sorted((tmp_path / "img").rglob("*.dcm"))
    assert len(files) == 3 and pydicom.dcmread(files[0]).PatientID == "X1"
    rc = main(["dicom", "export", os.fspath(liver_dir / "liver_seg.nrrd"), "--out", os.fspath(tmp_path / "seg"),
               "--reference", os.fspath(liver_dir / "image"), "--series-description", "Liver"])
    assert rc == 0
    seg_files = list((tmp_path / "seg").rglob("*.dcm"))
    assert len(seg_files) == 1 and pydicom.dcmread(seg_files[0]).Modality == "SEG"
    assert dciodvfy_errors(seg_files[0]) == []
    rc = main(["dicom", "export", os.fspath(liver_dir / "liver_seg.nrrd"), "--out", os.fspath(tmp_path / "x")])
    assert rc == 1 and "--reference" in capsys.readouterr().err
