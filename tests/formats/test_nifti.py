"""NIfTI and Analyze: round trips, ITK's sform/qform choice, conformance, bad input."""
from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

import napari_medio
from napari_medio.core.errors import FormatError
from napari_medio.formats.nifti import choose_orientation
from tests.conftest import fixture_file
from tests.volumes import OBLIQUE_FLIPPED, assert_same_volume, four_d, scalar_3d, vector_3d


@pytest.mark.parametrize("ext", [".nii", ".nii.gz", ".hdr", ".img.gz"])
@pytest.mark.parametrize("dtype", ["uint8", "int16", "uint16", "int32", "float32", "float64"])
def test_round_trip(tmp_path, ext, dtype):
    vol = scalar_3d(dtype)
    out = tmp_path / f"v{ext}"
    napari_medio.write(vol, out)
    [back] = napari_medio.read(out)
    assert_same_volume(vol, back)


def test_round_trip_4d_oblique_flipped_and_vector(tmp_path):
    vol = four_d()
    napari_medio.write(vol, tmp_path / "t.nii.gz")
    [back] = napari_medio.read(tmp_path / "t.nii.gz")
    assert_same_volume(vol, back)
    assert back.extra_axes[0].values == [0.0, 1.5, 3.0] and back.extra_axes[0].unit == "s"
    vec = vector_3d()
    napari_medio.write(vec, tmp_path / "v.nii.gz")
    assert_same_volume(vec, napari_medio.read(tmp_path / "v.nii.gz")[0])


def test_simpleitk_reads_our_geometry(tmp_path):
    vol = scalar_3d("int16")
    out = tmp_path / "g.nii.gz"
    napari_medio.write(vol, out)
    img = sitk.ReadImage(str(out))
    assert np.array_equal(sitk.GetArrayFromImage(img), vol.array)
    assert np.allclose(img.GetOrigin(), vol.geometry.origin, atol=1e-5)
    assert np.allclose(np.reshape(img.GetDirection(), (3, 3)), vol.geometry.direction, atol=1e-5)
    assert np.allclose(img.GetSpacing(), vol.geometry.spacing, atol=1e-5)
    hdr = nib.load(str(out)).header
    assert int(hdr["qform_code"]) == 1 and int(hdr["sform_code"]) == 1


def test_labelmap_intent_round_trips(tmp_path):
    vol = scalar_3d("uint8", kind="labelmap")
    napari_medio.write(vol, tmp_path / "seg.nii.gz")
    napari_medio.write(vol, tmp_path / "plain.nii.gz")
    assert napari_medio.read(tmp_path / "plain.nii.gz")[0].kind == "labelmap"


def test_scaled_voxels_become_float_like_itk(tmp_path):
    data = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    img = nib.Nifti1Image(data, np.eye(4))
    img.header.set_slope_inter(2.0, -1.0)
    nib.save(img, tmp_path / "scaled.nii")
    [vol] = napari_medio.read(tmp_path / "scaled.nii")
    assert vol.dtype == np.float32
    assert np.allclose(vol.array, np.transpose(data, (2, 1, 0)) * 2.0 - 1.0)
    assert vol.metadata["nifti"]["scl_slope"] == 2.0


def test_sform_qform_choice_like_itk():
    hdr = nib.Nifti1Header()
    hdr.set_data_shape((2, 2, 2))
    q = np.diag([1.0, 1.0, 1.0, 1.0])
    s = np.diag([2.0, 2.0, 2.0, 1.0])
    s[:3, 3] = [5, 6, 7]
    hdr.set_qform(q, code=1)
    hdr.set_sform(s, code=2)  # both known, not similar -> qform
    m, which = choose_orientation(hdr)
    assert which == "qform"
    hdr.set_sform(s, code=1)  # scanner anatomical sform -> sform
    assert choose_orientation(hdr)[1] == "sform"
    hdr.set_qform(q, code=0)
    hdr.set_sform(s, code=2)  # qform unknown -> sform
    assert choose_orientation(hdr)[1] == "sform"
    shear = s.copy()
    shear[0, 1] = 0.5
    hdr.set_sform(shear, code=2)
    hdr.set_qform(q, code=1)  # non-orthonormal sform -> qform
    assert choose_orientation(hdr)[1] == "qform"


@pytest.mark.parametrize("rel,shape,spacing,origin,direction,total", [
    ("images/nibabel/anatomical.nii", (25, 41, 33), [2, 2, 2], [-32, 40, -16], [1, 0, 0, 0, -1, 0, 0, 0, 1], 2.84166e8),
    ("images/nibabel/standard.nii.gz", (7, 5, 4), [1, 3, 2], [0, 0, 0], [-1, 0, 0, 0, -1, 0, 0, 0, 1], 7650),
])
def test_conformance_matches_simpleitk_manifest(rel, shape, spacing, origin, direction, total):
    [vol] = napari_medio.read(fixture_file(rel))
    assert vol.shape == shape
    assert np.allclose(vol.geometry.spacing, spacing, atol=1e-4)
    assert np.allclose(vol.geometry.origin, origin, atol=1e-4)
    assert np.allclose(vol.geometry.direction.ravel(), direction, atol=1e-4)
    assert np.isclose(float(np.asarray(vol.array).sum(dtype=np.float64)), total, rtol=1e-5)


def test_conformance_nifti2_4d_matches_nibabel_affine():
    [vol] = napari_medio.read(fixture_file("images/nibabel/example_nifti2.nii.gz"))
    assert vol.shape == (2, 12, 20, 32)  # time first, then k, j, i
    ras = np.array([[-2.0, 0.0, 0.0, 117.8551], [-0.0, 1.9737, -0.3555, -35.7229],
                    [0.0, 0.3232, 2.1711, -7.2488], [0, 0, 0, 1]])
    assert np.allclose(vol.geometry.index_to_ras_matrix(), ras, atol=1e-4)
    assert np.isclose(float(np.asarray(vol.array).sum(dtype=np.float64)), 6.9268e6, rtol=1e-4)
    assert vol.extra_axes[0].values == [0.0, 2000.0]


def test_bad_input(tmp_path):
    good = tmp_path / "good.nii"
    napari_medio.write(scalar_3d(), good)
    cases = {
        "empty.nii": b"",
        "random.nii": np.random.default_rng(0).bytes(2000),
        "trunc.nii": good.read_bytes()[:600],
        "trunc.nii.gz": b"\x1f\x8b\x08\x00" + b"\x00" * 20,
    }
    for name, content in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(FormatError) as info:
            napari_medio.read(path)
        assert name in str(info.value)


def test_analyze_reads_with_warning(tmp_path):
    data = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    nib.save(nib.AnalyzeImage(data, np.diag([2.0, 3.0, 4.0, 1.0])), tmp_path / "old.hdr")
    with pytest.warns(UserWarning, match="ambiguous"):
        [vol] = napari_medio.read(tmp_path / "old.img")
    assert np.array_equal(vol.array, np.transpose(data, (2, 1, 0)))
    assert np.allclose(vol.geometry.spacing, [2, 3, 4])
    assert OBLIQUE_FLIPPED.ndim == 3
