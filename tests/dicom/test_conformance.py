"""Conformance: every series and file in tests/data/dicom loads as its MANIFEST says."""
from __future__ import annotations

import glob
import os
import warnings

import numpy as np
import pytest
import SimpleITK as sitk

from napari_medio.core import registry
from napari_medio.core.errors import FormatError
from napari_medio.core.geometry import Geometry
from tests.conftest import fixture_file

warnings.simplefilter("ignore", category=UserWarning)


def _sitk_series(folder):
    r = sitk.ImageSeriesReader()
    names = r.GetGDCMSeriesFileNames(str(folder))
    r.SetFileNames(names)
    return r.Execute()


def _geometry_of(img) -> Geometry:
    return Geometry(img.GetSpacing(), img.GetOrigin(), np.array(img.GetDirection()).reshape(3, 3))


def _read_one(path):
    vols = registry.read(path)
    assert len(vols) == 1, [v.name for v in vols]
    return vols[0]


# -- series folders (MANIFEST "Series" table) ------------------------------------------------------
SERIES = {
    "dcmqi_ct3slice_liver/image": dict(shape=(3, 512, 512), spacing=[0.8105, 0.8105, 1.0],
                                       origin=[-235.2, -226.8, -128.69]),
    "slicer_CTHeadAxial": dict(shape=(93, 64, 64), spacing=[3.2, 3.2, 1.5], origin=[0.0, 0.0, 0.0]),
}


@pytest.mark.parametrize("rel", sorted(SERIES))
def test_series_folder_matches_manifest_and_simpleitk(rel):
    folder = fixture_file(f"dicom/{rel}")
    vol = _read_one(folder)
    ref = SERIES[rel]
    assert vol.shape == ref["shape"]
    np.testing.assert_allclose(vol.geometry.spacing, ref["spacing"], atol=1e-4)
    np.testing.assert_allclose(vol.geometry.origin, ref["origin"], atol=1e-3)
    np.testing.assert_allclose(vol.geometry.direction, np.eye(3), atol=1e-6)
    img = _sitk_series(folder)
    assert vol.geometry.almost_equal(_geometry_of(img), tol=1e-3)
    np.testing.assert_array_equal(vol.to_numpy().astype(np.int64), sitk.GetArrayFromImage(img).astype(np.int64))
    # Identity and naming.
    dic = vol.metadata["dicom"]
    assert dic["SeriesInstanceUID"] and dic["StudyInstanceUID"] and dic["Modality"] == "CT"
    assert len(dic["SOPInstanceUIDs"]) == ref["shape"][0]
    assert vol.name.startswith(f"{dic['SeriesNumber']}: ")


def test_ct_liver_window_and_type():
    vol = _read_one(fixture_file("dicom/dcmqi_ct3slice_liver/image"))
    assert vol.dtype == np.int16  # rescale kept integer (SimpleITK widens to int32)
    assert vol.window is not None and vol.window.center == 40.0 and vol.window.width > 0


def _index_map(mine: Geometry, ref: Geometry):
    """Signed-permutation index map: my (i,j,k) = A @ ref (i,j,k) + c."""
    a = np.linalg.inv(mine.direction * mine.spacing) @ (ref.direction * ref.spacing)
    c = np.linalg.inv(mine.direction * mine.spacing) @ (ref.origin - mine.origin)
    return a, c


def _compare_to_reference_nifti(vol, ref_path):
    ref = sitk.ReadImage(str(ref_path))  # 4D: x, y, z, t
    ref_arr = sitk.GetArrayFromImage(ref)  # (t, z, y, x)
    d4 = np.array(ref.GetDirection()).reshape(4, 4)
    ref_geom = Geometry(ref.GetSpacing()[:3], ref.GetOrigin()[:3], d4[:3, :3])
    assert vol.shape[0] == ref_arr.shape[0]
    a, c = _index_map(vol.geometry, ref_geom)
    # Geometry equal up to axis flips: the map must be a signed permutation with integer offset.
    assert np.allclose(np.abs(a), np.round(np.abs(a)), atol=1e-4), a
    assert np.allclose(c, np.round(c), atol=1e-3), c
    # Affine agreement within 1e-3 mm: corners of the grid land on the same LPS points.
    zyx = np.array(ref_arr.shape[1:])
    corners = np.array([[i, j, k] for i in (0, zyx[2] - 1) for j in (0, zyx[1] - 1) for k in (0, zyx[0] - 1)], float)
    mine_idx = corners @ a.T + c
    np.testing.assert_allclose(vol.geometry.index_to_lps(mine_idx), ref_geom.index_to_lps(corners), atol=1e-3)
    # Voxels: bring mine into the reference's index frame.
    kk, jj, ii = np.indices(ref_arr.shape[1:])
    ref_idx = np.stack([ii, jj, kk], axis=-1).reshape(-1, 3).astype(float)
    m = np.rint(ref_idx @ a.T + c).astype(int)
    mine = vol.to_numpy()[:, m[:, 2], m[:, 1], m[:, 0]].reshape(ref_arr.shape)
    np.testing.assert_array_equal(mine.astype(np.int64), ref_arr.astype(np.int64))


@pytest.mark.parametrize("rel,ref", [
    ("siemens_mosaic_ax_asc_35", "ax_asc_35sl_6.nii"),
    ("siemens_mosaic_jp2k_AxInt36mb", "fMRI_MB_int_26.nii"),
])
def test_siemens_mosaic_matches_dcm2niix(rel, ref):
    vol = _read_one(fixture_file(f"dicom/{rel}/in"))
    assert len(vol.extra_axes) == 1 and vol.shape[0] == 2  # 4D: two time points on one grid
    assert "4D" in vol.metadata["dicom"]["split"]
    _compare_to_reference_nifti(vol, fixture_file(f"dicom/{rel}/ref/{ref}"))


# -- single files (MANIFEST "Files" table) ---------------------------------------------------------
SINGLE = [
    "dcmqi_ct3slice_liver/image/01.dcm",
    "highdicom/ct_image.dcm",
    "philips_ingenia_4_1_3_dwi.dcm",
    "pydicom/CT_small.dcm",
    "pydicom/ExplVR_BigEnd.dcm",
    "pydicom/MR_small.dcm",
    "pydicom/MR_small_RLE.dcm",
    "pydicom/MR_small_jp2klossless.dcm",
    "pydicom/MR_small_jpeg_ls_lossless.dcm",
    "pydicom/SC_rgb_rle_2frame.dcm",
    "pydicom/SC_rgb_small_odd.dcm",
]


@pytest.mark.parametrize("rel", SINGLE)
def test_single_file_matches_simpleitk(rel):
    path = fixture_file(f"dicom/{rel}")
    vol = _read_one(path)
    img = sitk.ReadImage(str(path))
    ref = sitk.GetArrayFromImage(img)
    mine = vol.to_numpy()
    assert mine.shape == ref.shape
    if ref.dtype.kind == "f" or mine.dtype.kind == "f":
        np.testing.assert_allclose(mine, ref, rtol=1e-5, atol=1e-3)
    else:
        np.testing.assert_array_equal(mine.astype(np.int64), ref.astype(np.int64))
    assert vol.geometry.almost_equal(_geometry_of(img), tol=1e-3), (vol.geometry, _geometry_of(img))
    if vol.components is not None:
        assert vol.is_rgb


def test_compressed_variants_equal_uncompressed():
    base = _read_one(fixture_file("dicom/pydicom/MR_small.dcm")).to_numpy()
    for rel in ("MR_small_RLE.dcm", "MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm"):
        np.testing.assert_array_equal(_read_one(fixture_file(f"dicom/pydicom/{rel}")).to_numpy(), base)


def test_jpeg_12bit_lossy_loads_close_to_simpleitk():
    path = fixture_file("dicom/pydicom/JPEG-lossy.dcm")
    vol = _read_one(path)
    ref = sitk.GetArrayFromImage(sitk.ReadImage(str(path)))
    assert vol.shape == ref.shape
    assert np.abs(vol.to_numpy().astype(float) - ref).mean() < 1.0


def test_rt_dose_grid_and_scaling():
    import pydicom

    path = fixture_file("dicom/pydicom/rtdose.dcm")
    vol = _read_one(path)
    ds = pydicom.dcmread(path)
    assert vol.shape == (15, 10, 10) and vol.dtype.kind == "f"
    np.testing.assert_allclose(vol.to_numpy(), ds.pixel_array * float(ds.DoseGridScaling), rtol=1e-6)
    np.testing.assert_allclose(vol.geometry.origin, [189.43125, 199.43125, -761.87], atol=1e-4)
    np.testing.assert_allclose(vol.geometry.spacing, [10, 10, 5], atol=1e-6)
    assert vol.metadata["units"] == str(ds.DoseUnits)


def test_wsi_multiframe_rgb_loads():
    vol = _read_one(fixture_file("dicom/highdicom/sm_image.dcm"))
    assert vol.shape == (25, 10, 10, 3) and vol.is_rgb


@pytest.mark.parametrize("rel", ["pydicom/rtplan.dcm", "pydicom/palette_hotiron.dcm"])
def test_non_image_objects_give_a_clear_error(rel):
    path = fixture_file(f"dicom/{rel}")
    with pytest.raises(FormatError) as exc:
        registry.read(path, format="dicom")  # the image-series reader (other formats may read these objects)
    assert str(path) in str(exc.value) and "no image" in str(exc.value)


@pytest.mark.parametrize("rel", ["pydicom/rtstruct.dcm", "highdicom/sr_document.dcm"])
def test_dicom_reader_hands_structure_sets_and_reports_to_their_reader(rel):
    objects = registry.read(fixture_file(f"dicom/{rel}"), format="dicom")
    assert objects and all(getattr(o, "kind", None) != "volume" or o.metadata for o in objects)


def test_truncated_file_names_the_file():
    path = fixture_file("dicom/pydicom/MR_truncated.dcm")
    with pytest.raises(FormatError) as exc:
        registry.read(path)
    assert "MR_truncated.dcm" in str(exc.value) and "truncated" in str(exc.value)


def test_dicomdir_finds_the_same_instances_as_a_folder_scan():
    root = fixture_file("dicom/pydicom/dicomdirtests")
    via_dir = registry.read(root / "DICOMDIR")
    via_scan = registry.read(root)
    def uids(vols):
        return sorted(u for v in vols for u in v.metadata["dicom"]["SOPInstanceUIDs"])
    assert uids(via_dir) == uids(via_scan) and len(uids(via_dir)) > 10


def test_folder_with_image_and_segmentation_loads_the_image():
    from napari_medio.core.volume import Volume

    objs = registry.read(fixture_file("dicom/dcmqi_ct3slice_liver"))
    vols = [o for o in objs if isinstance(o, Volume) and "dicom" in o.metadata]
    assert [v.metadata["dicom"]["Modality"] for v in vols] == ["CT"]
    assert isinstance(objs[0], Volume)  # images first; the SEG follows when a SEG reader is registered


def test_format_sniff_and_dispatch():
    fmt = registry.find_reader(fixture_file("dicom/slicer_CTHeadAxial"))
    assert fmt.name == "dicom"
    mosaic = glob.glob(str(fixture_file("dicom/siemens_mosaic_ax_asc_35/in")) + "/MR.*")[0]
    assert registry.find_reader(mosaic).name == "dicom"  # no extension: by content
    rtplan = fixture_file("dicom/pydicom/rtplan.dcm")  # no preamble: recognised by content
    assert registry.get_format("dicom").sniff(rtplan.read_bytes()[:4096], rtplan)
    rnd = np.random.default_rng(0).bytes(4096)
    assert not registry.get_format("dicom").sniff(rnd, rtplan)


@pytest.mark.parametrize("rel,ref", [
    ("siemens_mosaic_ax_asc_35", "ax_asc_35sl_6.nii"),
    ("siemens_mosaic_jp2k_AxInt36mb", "fMRI_MB_int_26.nii"),
])
def test_siemens_mosaic_slice_direction_from_csa_header(tmp_path, rel, ref):
    """A mosaic stored in descending order (CSA SliceNormalVector against row x column) loads unflipped."""
    import pydicom

    from napari_medio.dicom._parse import header_from_dataset, parse_header

    from ._make import reverse_mosaic

    for f in sorted(glob.glob(str(fixture_file(f"dicom/{rel}/in")) + "/*")):
        reverse_mosaic(f, tmp_path / os.path.basename(f))
    for f in sorted(tmp_path.iterdir()):
        fast, slow = parse_header(f), header_from_dataset(pydicom.dcmread(f))
        assert fast["_csa_n_mosaic"] == slow["_csa_n_mosaic"] in (35, 36)
        assert fast["_csa_slice_normal"] == slow["_csa_slice_normal"] and fast["_csa_slice_normal"][2] < 0
    vol = _read_one(tmp_path)
    assert vol.shape[0] == 2
    _compare_to_reference_nifti(vol, fixture_file(f"dicom/{rel}/ref/{ref}"))
    # Control: without the CSA header the same files load flipped (the sign lives only there).
    for f in sorted(tmp_path.iterdir()):
        ds = pydicom.dcmread(f)
        del ds[ds.private_block(0x0029, "SIEMENS CSA HEADER").get_tag(0x10)]
        ds.save_as(f)
    flipped = _read_one(tmp_path)
    with pytest.raises(AssertionError):
        _compare_to_reference_nifti(flipped, fixture_file(f"dicom/{rel}/ref/{ref}"))
