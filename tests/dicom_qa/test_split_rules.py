"""Images sharing a slice position are split by named rules, not by file-name order.

Rule "GE image type": GE writes magnitude, phase, real and imaginary images (a B0 field map's
magnitude and field-map images) with identical standard tags; the private (0043,102F)
(GEMS_PARM_01, 0/1/2/3 = magnitude/phase/real/imaginary, as dcm2niix's kImageTypeGE reads it)
tells them apart.  Built with pydicom: file names are shuffled so file-name order mixes them.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from pydicom.uid import ImplicitVRLittleEndian, generate_uid

import napari_medio
from tests.dicom_qa.dicom_builders import mr_slice


def _ge_field_map(folder, implicit: bool) -> None:
    folder.mkdir()
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    names = iter(np.random.default_rng(3).permutation(6))
    for k in range(3):
        for ge_type, value in ((0, 1000 + k), (2, 2000 + k)):  # magnitude, field map
            ds = mr_slice(study, series, frame, 1, [1, 0, 0, 0, 1, 0], [0, 0, 3.0 * k], value)
            ds.add_new((0x0043, 0x0010), "LO", "GEMS_PARM_01")
            ds.add_new((0x0043, 0x102F), "SS", ge_type)
            ds.Manufacturer = "GE MEDICAL SYSTEMS"
            if implicit:
                ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
            ds.save_as(folder / f"IM{next(names)}.dcm", enforce_file_format=True, implicit_vr=implicit)


@pytest.mark.parametrize("implicit", [False, True])
def test_ge_magnitude_and_field_map_split_by_ge_image_type(tmp_path, implicit):
    _ge_field_map(tmp_path / "fmap", implicit)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        [vol] = napari_medio.read(tmp_path / "fmap")
    arr = vol.to_numpy()
    assert arr.shape == (2, 3, 8, 6)
    assert vol.extra_axes[0].name == "GE image type" and list(vol.extra_axes[0].values) == [0, 2]
    np.testing.assert_array_equal(arr[:, :, 0, 0], [[1000, 1001, 1002], [2000, 2001, 2002]])
