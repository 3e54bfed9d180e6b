"""Every DICOM export of every 3D fixture volume passes dciodvfy (dicom3tools).

Each fixture volume in ``tests/data`` is written as a classic CT, MR and secondary-capture series
and as Legacy Converted Enhanced CT and MR objects; the liver label map is written as DICOM SEG.
Every written file is checked, not a sample: a value-formatting fault (a 17-character Decimal
String) shows on single slices only.

What fails the test: every ``Error`` line, and the warnings about a value itself (``Value
dubious``/``Value invalid``/``exceeds``), which are what a strict reader rejects or mis-reads.
Warnings left alone, because they describe what napari-medio decides on purpose: geometry kept in
secondary capture ("Standard Extended SOP Class"), an empty Laterality (unknown for an exported
volume), ``OTHER`` as the third Image Type value, no Study ID (needed only to build a DICOMDIR),
and a one-component Patient's Name copied from the source files ("Retired Person Name form").
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from napari_medio.core import registry
from napari_medio.dicom.export import ExportTags, export_segmentation, export_volume
from tests.conftest import fixture_file

VOLUMES = [
    "images/CTChest4.nrrd",
    "images/dcmqi_pm-example.nrrd",
    "images/nibabel/anatomical.nii",
    "images/nibabel/standard.nii.gz",
    "images/pynrrd/BallBinary30x30x30.nrrd",
    "images/itkelastix/CT_3D_lung_fixed_mask.mha",
    "images/itkelastix/CT_2D_head_fixed.mha",
    "images/pyvista/uniform.vtk",
    "dicom/slicer_CTHeadAxial",
    "dicom/pydicom/CT_small.dcm",
    "dicom/pydicom/MR_small.dcm",
    "dicom/pydicom/SC_rgb_small_odd.dcm",
    "dicom/highdicom/ct_image.dcm",
]
MODES = [("CT", False), ("MR", False), ("OT", False), ("CT", True), ("MR", True)]
VALUE_WARNING = re.compile(r"^Warning - .*(Value dubious|Value invalid|exceeds)")


def dciodvfy_problems(path) -> list[str]:
    """dciodvfy's error lines and value warnings for one file (see the module docstring)."""
    tool = shutil.which("dciodvfy")
    if tool is None:
        if os.environ.get("CI"):
            pytest.fail("dciodvfy not installed (Debian package dicom3tools)")
        pytest.skip("dciodvfy not installed (Debian package dicom3tools)")
    out = subprocess.run([tool, os.fspath(path)], capture_output=True, text=True)
    lines = (out.stdout + out.stderr).splitlines()
    return [line for line in lines if line.startswith("Error")
            or (VALUE_WARNING.match(line) and "Retired Person Name form" not in line)]


@pytest.mark.parametrize("relpath", VOLUMES)
def test_every_export_of_fixture_volume_is_dciodvfy_clean(tmp_path, relpath):
    [volume] = [o for o in registry.read(fixture_file(relpath)) if hasattr(o, "geometry")][:1]
    rgb = volume.array.ndim == 4
    checked = 0
    for modality, enhanced in MODES:
        if rgb and (enhanced or modality != "OT"):
            continue  # colour images are written as secondary capture only
        files = export_volume(volume, tmp_path / f"{modality}{int(enhanced)}", ExportTags(modality=modality),
                              enhanced=enhanced)
        assert files
        problems = {str(f.name): p for f in files if (p := dciodvfy_problems(f))}
        assert problems == {}, (modality, enhanced)
        checked += len(files)
    assert checked >= 1


def test_seg_export_is_dciodvfy_clean(tmp_path):
    liver = fixture_file("dicom/dcmqi_ct3slice_liver")
    labelmap = registry.read(liver / "liver_seg.nrrd")[0]
    for fractional in (False, True):
        files = export_segmentation(labelmap, tmp_path / str(fractional), liver / "image", fractional=fractional)
        assert files and all(dciodvfy_problems(f) == [] for f in files)


def test_decimal_strings_fit_sixteen_characters(tmp_path):
    import numpy as np
    import pydicom

    from napari_medio.core.geometry import Geometry
    from napari_medio.core.volume import Volume

    # spacings that pydicom's auto-format alone writes as 17 characters ("10.00000000000000")
    spacing = [float(np.nextafter(1.0, 0)), float(np.nextafter(100.0, 0)), float(np.nextafter(10.0, 0))]
    vol = Volume(np.zeros((3, 4, 5), np.int16), Geometry(spacing, [np.nextafter(-10.0, 0), 0.1 + 0.2, 1e-20],
                                                         np.eye(3)), name="ds")
    files = export_volume(vol, tmp_path, ExportTags(modality="CT"))
    for f in files:
        ds = pydicom.dcmread(f)
        for key in ("SliceThickness", "PixelSpacing", "ImagePositionPatient", "SpacingBetweenSlices"):
            raw = ds[key].value
            for v in (raw if isinstance(raw, pydicom.multival.MultiValue) else [raw]):
                assert len(str(v)) <= 16, (key, str(v))
        assert abs(float(ds.SliceThickness) - 10.0) < 1e-9
        assert dciodvfy_problems(f) == []
