"""The localizer rule (dicom/localizer.py) on parsed headers of pydicom-built series."""
from __future__ import annotations

import numpy as np
import pytest

from napari_medio.dicom.localizer import localizer_reason, localizer_reasons, series_rows
from napari_medio.dicom.series import is_image_header, scan_dicom_path

from ._make import make_series, make_slice

AXIAL = (1, 0, 0, 0, 1, 0)
CORONAL = (1, 0, 0, 0, 0, -1)
SAGITTAL = (0, 1, 0, 0, 0, -1)


def _headers(folder):
    return scan_dicom_path(folder).series()


def _one(folder, **kw):
    make_series(folder, **kw)
    [hs] = _headers(folder).values()
    return hs


def test_image_type_localizer(tmp_path):
    hs = _one(tmp_path / "a", n=2, extra={"ImageType": ["ORIGINAL", "PRIMARY", "LOCALIZER"]})
    assert localizer_reason(hs) == "ImageType LOCALIZER"


@pytest.mark.parametrize("description", ["Scout", "SURVEY", "Topogram 0.6 T20f", "3-Plane Loc", "localiser"])
def test_description_names_a_localizer(tmp_path, description):
    hs = _one(tmp_path / "a", n=2, description=description)
    assert localizer_reason(hs) == f'series description "{description}"'


@pytest.mark.parametrize("description", ["Ax T2 FLAIR", "Head 5.0 H30s", "Lung Blocks"])
def test_ordinary_descriptions_are_not(tmp_path, description):
    hs = _one(tmp_path / "a", n=2, description=description)
    assert localizer_reason(hs) is None


def test_few_slices_orthogonal_to_the_main_series(tmp_path):
    make_series(tmp_path / "ct", n=8, description="Body", series_number=2)
    make_series(tmp_path / "sag", n=1, description="Plain", orientation=SAGITTAL, series_number=1, seed=2)
    make_series(tmp_path / "ax", n=2, description="Thick", series_number=3, seed=3)  # parallel: kept
    rows = series_rows(_headers(tmp_path), is_image_header)
    by_number = {r.number: r for r in rows}
    assert by_number[1].localizer == "1-image series orthogonal to the main series"
    assert by_number[2].localizer is None and by_number[3].localizer is None
    assert [r.number for r in rows] == [1, 2, 3] and by_number[2].images == 8 and by_number[2].size > 0


def test_three_plane_localizer(tmp_path):
    uid, study = "1.2.826.0.1.3680043.8.498.1", "1.2.826.0.1.3680043.8.498.2"
    px = np.zeros((4, 4), np.int16)
    for i, o in enumerate((AXIAL, CORONAL, SAGITTAL)):
        make_slice(tmp_path / f"p{i}", pixels=px, position=(0, 0, 0), orientation=o, series_uid=uid,
                   study_uid=study, instance=i + 1, description="Plain")
    [hs] = _headers(tmp_path).values()
    assert localizer_reason(hs) == "3 images in 3 orthogonal planes"


def test_single_series_is_never_a_localizer_by_geometry(tmp_path):
    hs = _one(tmp_path / "a", n=1, orientation=SAGITTAL)
    assert localizer_reasons([hs]) == [None]


def test_other_frame_of_reference_is_not_compared(tmp_path):
    make_series(tmp_path / "ct", n=8, description="Body")
    make_series(tmp_path / "sag", n=1, description="Plain", orientation=SAGITTAL, frame_uid="9.9.9", seed=2)
    rows = series_rows(_headers(tmp_path), is_image_header)
    assert [r.localizer for r in rows] == [None, None]
