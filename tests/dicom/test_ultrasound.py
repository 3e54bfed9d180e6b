"""3D/4D ultrasound DICOM variants (SlicerHeart's DicomUltrasoundPlugin): Philips Cartesian 4D, Eigen Artemis,
Philips Affinity 3D.

No real Philips QLAB, Eigen or Affinity file was available: every file here is
built with pydicom carrying the tags exactly as the plugin reads them (SOP
class, fixed private tags (3001,1001)/(3001,1003), private creators
"Philips US Imaging DD 036" / "Eigen, Inc" / "Eigen Artemis" with their
element offsets, VRs, voxels as the last bytes of the file), with a known
phantom.  Expected geometry is written out independently: the closed form
of what Slicer's matrices give, in LPS.
"""
from __future__ import annotations

import inspect
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

import napari_medio
from napari_medio.core.errors import FormatError
from napari_medio.core.registry import find_reader
from napari_medio.dicom import series as dicom_series
from napari_medio.dicom.series import read_headers
from napari_medio.dicom.ultrasound import (
    PHILIPS_4D_SOP_CLASS,
    US_MULTIFRAME_SOP_CLASS,
    is_ultrasound_3d,
    read_ultrasound,
    split_ultrasound,
    ultrasound_variant,
)
from tests.dicom._make import make_slice

TOL = 1e-6


def _base(sop_class: str, implicit: bool = False) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "US"
    ds.PatientName = "Phantom^US"
    ds.PatientID = "US001"
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = 7
    ds.InstanceNumber = 1
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    return ds


def _save(ds: Dataset, path: Path) -> Path:
    implicit = ds.file_meta.TransferSyntaxUID == ImplicitVRLittleEndian
    ds.save_as(path, enforce_file_format=True, implicit_vr=implicit, little_endian=True)
    return path


def phantom_4d(frames=3, slices=5, rows=4, columns=6) -> np.ndarray:
    f, k, j, i = np.indices((frames, slices, rows, columns))
    return ((f * 61 + k * 17 + j * 5 + i * 3 + 1) % 256).astype(np.uint8)


def philips_4d(path: Path, vox: np.ndarray, *, delta=(0.05, 0.04, 0.03), frame_time=33.3, implicit=False,
               slices_vr="UL", spacing_vr="FD", drop=(), extra_pixels=0) -> Path:
    """A QLAB Cartesian DICOM: NumberOfFrames volumes of (3001,1001) slices; voxels the last bytes of the file."""
    frames, slices, rows, columns = vox.shape
    ds = _base(PHILIPS_4D_SOP_CLASS, implicit)
    ds.SeriesDescription = "3DQ"
    ds.Rows, ds.Columns = rows, columns
    ds.NumberOfFrames = frames
    ds.FrameTime = frame_time
    ds.PhysicalUnitsXDirection = 3
    ds.PhysicalUnitsYDirection = 3
    ds.PhysicalDeltaX = delta[0]
    ds.PhysicalDeltaY = delta[1]
    ds.add_new((0x3001, 0x1001), slices_vr, slices if slices_vr != "IS" else str(slices))
    ds.add_new((0x3001, 0x1003), spacing_vr, delta[2] if spacing_vr != "DS" else str(delta[2]))
    for tag in drop:
        del ds[tag]
    data = vox.tobytes() + bytes(extra_pixels)
    ds.PixelData = data + (b"\x00" if len(data) % 2 else b"")
    ds["PixelData"].VR = "OB"
    return _save(ds, path)


def us_multiframe(path: Path, vox: np.ndarray, *, manufacturer="Eigen", model="Artemis", aspect=(200, 200),
                  private=None, affinity_spacing=None, affinity_block=0x12, iop=None, ipp=None,
                  number_of_slices=True) -> Path:
    """An Ultrasound Multi-frame Image with frames = slices, as Eigen Artemis and Philips Affinity write them."""
    frames, rows, columns = vox.shape
    ds = _base(US_MULTIFRAME_SOP_CLASS)
    ds.Manufacturer = manufacturer
    ds.ManufacturerModelName = model
    ds.Rows, ds.Columns = rows, columns
    ds.NumberOfFrames = frames
    if number_of_slices:
        ds.NumberOfSlices = frames
    ds.PixelSpacing = [9.0, 9.0]  # ignored by the plugin
    if aspect is not None:
        ds.PixelAspectRatio = list(aspect)
    if private is not None:
        creator, value = private
        block = ds.private_block(0x1129, creator, create=True)
        block.add_new(0x16, "DS", str(value))
    if affinity_spacing is not None:
        ds.add_new((0x200D, affinity_block), "LO", "Philips US Imaging DD 036")
        ds.add_new((0x200D, (affinity_block << 8) | 0x03), "LO", [str(v) for v in affinity_spacing])
    if iop is not None:
        ds.ImageOrientationPatient = list(iop)
    if ipp is not None:
        ds.ImagePositionPatient = list(ipp)
    ds.PixelData = vox.tobytes()
    ds["PixelData"].VR = "OB"
    return _save(ds, path)


def phantom_3d(frames=5, rows=4, columns=6) -> np.ndarray:
    k, j, i = np.indices((frames, rows, columns))
    return ((k * 37 + j * 7 + i * 2 + 3) % 256).astype(np.uint8)


# -- Philips Cartesian 4D -------------------------------------------------------------------------
def test_philips_4d_voxels_geometry_and_frame_times(tmp_path):
    vox = phantom_4d()
    path = philips_4d(tmp_path / "qlab.dcm", vox)
    assert find_reader(path).name == "dicom-ultrasound"
    [vol] = napari_medio.read(path)
    np.testing.assert_array_equal(np.asarray(vol.array), vox)
    assert vol.array.dtype == np.uint8 and vol.shape == (3, 5, 4, 6)
    # Spacing: cm x 10; Slicer's new volume node: IJK-to-RAS = diag(spacing) -> LPS direction diag(-1,-1,1).
    np.testing.assert_allclose(vol.geometry.spacing, [0.5, 0.4, 0.3], atol=TOL)
    np.testing.assert_allclose(vol.geometry.origin, [0, 0, 0], atol=TOL)
    np.testing.assert_allclose(vol.geometry.direction, np.diag([-1.0, -1.0, 1.0]), atol=TOL)
    np.testing.assert_allclose(vol.geometry.index_to_lps([2, 3, 4]), [-1.0, -1.2, 1.2], atol=TOL)
    np.testing.assert_allclose(vol.geometry.index_to_ras_matrix(), np.diag([0.5, 0.4, 0.3, 1.0]), atol=TOL)
    [axis] = vol.extra_axes
    assert (axis.name, axis.unit) == ("time", "s")
    assert axis.values == [0.0, 0.033, 0.067]  # n * FrameTime / 1000, Slicer's 3-decimal index values
    us = vol.metadata["ultrasound"]
    assert us["variant"] == "philips-4d" and us["slices"] == 5 and us["frames"] == 3
    assert us["frame_time_ms"] == pytest.approx(33.3)
    assert vol.metadata["dicom"]["PatientID"] == "US001"
    assert vol.name == "7: 3DQ [1]"


def test_philips_4d_voxels_are_the_last_bytes_of_the_file(tmp_path):
    """As the plugin: header size = file size - frames*slices*rows*columns, whatever precedes the voxels."""
    vox = phantom_4d(frames=2, slices=3, rows=2, columns=5)
    path = philips_4d(tmp_path / "a.dcm", vox, extra_pixels=0)
    raw = path.read_bytes()
    assert raw.endswith(vox.tobytes())
    # A pixel data element longer than the volumes (leading padding bytes): still the trailing bytes.
    ds = pydicom.dcmread(path)
    ds.PixelData = bytes(8) + vox.tobytes()
    ds.save_as(tmp_path / "b.dcm", enforce_file_format=True)
    [vol] = read_ultrasound(tmp_path / "b.dcm")
    np.testing.assert_array_equal(np.asarray(vol.array), vox)


@pytest.mark.parametrize("slices_vr,spacing_vr", [("US", "FL"), ("IS", "DS"), ("SL", "FD")])
def test_philips_4d_private_value_representations(tmp_path, slices_vr, spacing_vr):
    vox = phantom_4d(frames=2)
    path = philips_4d(tmp_path / "v.dcm", vox, slices_vr=slices_vr, spacing_vr=spacing_vr, delta=(0.05, 0.04, 0.025))
    [vol] = read_ultrasound(path)
    np.testing.assert_array_equal(np.asarray(vol.array), vox)
    np.testing.assert_allclose(vol.geometry.spacing, [0.5, 0.4, 0.25], atol=TOL)


def test_philips_4d_implicit_vr_raw_private_bytes(tmp_path):
    """Implicit VR: pydicom gives the unknown private values as bytes (UL 4 bytes, FD 8 bytes)."""
    vox = phantom_4d()
    path = philips_4d(tmp_path / "impl", vox, implicit=True)
    ds = pydicom.dcmread(path)
    assert isinstance(ds[0x30011001].value, bytes)
    assert is_ultrasound_3d(path) and is_ultrasound_3d(ds)
    [vol] = napari_medio.read(path) if "split_ultrasound" in inspect.getsource(dicom_series.load_volumes) \
        else read_ultrasound(path)
    np.testing.assert_array_equal(np.asarray(vol.array), vox)
    np.testing.assert_allclose(vol.geometry.spacing, [0.5, 0.4, 0.3], atol=TOL)


def test_philips_4d_single_volume_is_3d(tmp_path):
    vox = phantom_4d(frames=1)
    [vol] = read_ultrasound(philips_4d(tmp_path / "one.dcm", vox))
    assert vol.extra_axes == [] and vol.shape == (5, 4, 6)
    np.testing.assert_array_equal(np.asarray(vol.array), vox[0])


def test_philips_4d_from_a_dataset_in_memory_and_from_file(tmp_path):
    vox = phantom_4d()
    path = philips_4d(tmp_path / "mem.dcm", vox)
    ds = pydicom.dcmread(path)
    [from_file] = read_ultrasound(ds)  # has .filename: read from that file
    np.testing.assert_array_equal(np.asarray(from_file.array), vox)
    mem = pydicom.dcmread(path)
    mem.filename = None
    [in_memory] = read_ultrasound(mem)
    np.testing.assert_array_equal(np.asarray(in_memory.array), vox)
    assert in_memory.geometry.almost_equal(from_file.geometry)


def test_philips_4d_spacing_from_ultrasound_region_when_not_top_level(tmp_path):
    vox = phantom_4d(frames=2)
    path = philips_4d(tmp_path / "r.dcm", vox)
    ds = pydicom.dcmread(path)
    region = Dataset()
    region.PhysicalDeltaX = ds.PhysicalDeltaX
    region.PhysicalDeltaY = ds.PhysicalDeltaY
    del ds.PhysicalDeltaX, ds.PhysicalDeltaY
    ds.SequenceOfUltrasoundRegions = [region]
    ds.save_as(path, enforce_file_format=True)
    [vol] = read_ultrasound(path)
    np.testing.assert_allclose(vol.geometry.spacing, [0.5, 0.4, 0.3], atol=TOL)


@pytest.mark.parametrize("tag,what", [((0x3001, 0x1001), "(3001,1001)"), ((0x3001, 0x1003), "(3001,1003)"),
                                      ("PhysicalDeltaX", "PhysicalDeltaX")])
def test_philips_4d_missing_tag_is_a_format_error(tmp_path, tag, what):
    path = philips_4d(tmp_path / "miss.dcm", phantom_4d(), drop=(tag,))
    with pytest.raises(FormatError) as info:
        napari_medio.read(path)
    assert str(path) in str(info.value) and what in str(info.value)


def test_philips_4d_size_mismatch_is_a_format_error(tmp_path):
    vox = phantom_4d()
    path = philips_4d(tmp_path / "big.dcm", vox)
    ds = pydicom.dcmread(path)
    ds[0x30011001].value = 500  # far more slices than the pixel data holds
    ds.save_as(path, enforce_file_format=True)
    with pytest.raises(FormatError) as info:
        napari_medio.read(path)
    assert str(path) in str(info.value) and "need" in str(info.value)


def test_philips_4d_truncated_file_is_a_format_error(tmp_path):
    path = philips_4d(tmp_path / "cut.dcm", phantom_4d())
    data = path.read_bytes()
    for n, cut in enumerate((1, 50, len(phantom_4d().tobytes()) - 2)):
        p = tmp_path / f"cut{'abc'[n]}.dcm"
        p.write_bytes(data[:-cut])
        with pytest.raises(FormatError) as info:
            napari_medio.read(p)
        assert str(p) in str(info.value)


def test_philips_4d_bad_values_are_format_errors(tmp_path):
    for n, (tag, value) in enumerate((((0x3001, 0x1001), 0), ("BitsAllocated", 16), ("PhysicalDeltaX", -0.1),
                                      ("NumberOfFrames", 0))):
        path = philips_4d(tmp_path / f"bad{'abcd'[n]}.dcm", phantom_4d())
        ds = pydicom.dcmread(path)
        ds[tag].value = value
        ds.save_as(path, enforce_file_format=True)
        with pytest.raises(FormatError) as info:
            read_ultrasound(path)
        assert str(path) in str(info.value)


# -- Eigen Artemis --------------------------------------------------------------------------------
def eigen_expected_lps(ijk, rows, columns, n_slices, s):
    """Closed form of Slicer's Eigen placement in LPS (identity orientation)."""
    i, j, k = ijk
    return np.array([s * j - 0.5 * columns * s, -s * k + 0.5 * n_slices * s, -s * i + 0.5 * rows * s])


def test_eigen_artemis_voxels_and_geometry(tmp_path):
    vox = phantom_3d(frames=5, rows=4, columns=6)
    path = us_multiframe(tmp_path / "artemis.dcm", vox)
    assert find_reader(path).name == "dicom-ultrasound"
    [vol] = napari_medio.read(path)
    np.testing.assert_array_equal(np.asarray(vol.array), vox)
    s = 0.2  # PixelAspectRatio[0] / 1000
    np.testing.assert_allclose(vol.geometry.spacing, [s, s, s], atol=TOL)
    np.testing.assert_allclose(vol.geometry.origin, [-0.6, 0.5, 0.4], atol=TOL)
    np.testing.assert_allclose(vol.geometry.direction, [[0, 1, 0], [0, 0, -1], [-1, 0, 0]], atol=TOL)
    for ijk in ((0, 0, 0), (5, 3, 4), (2, 1, 3)):
        np.testing.assert_allclose(vol.geometry.index_to_lps(ijk), eigen_expected_lps(ijk, 4, 6, 5, s), atol=TOL)
    # Slicer's matrices, step by step: ITK identity LPS -> RAS diag(-1,-1,1), spacing, RAS origin, permutation.
    ijk_to_ras = np.diag([-s, -s, s, 1.0])
    ijk_to_ras[:3, 3] = [0.5 * 4 * s, 0.5 * 6 * s, -0.5 * 5 * s]
    rot = np.array([[0, 1, 0, 0], [0, 0, 1, 0], [1, 0, 0, 0], [0, 0, 0, 1]], dtype=float)
    np.testing.assert_allclose(vol.geometry.index_to_ras_matrix(), rot @ ijk_to_ras, atol=TOL)
    us = vol.metadata["ultrasound"]
    assert us["variant"] == "eigen-artemis" and us["spacing_source"] == "PixelAspectRatio/1000"
    assert vol.metadata["dicom"]["Manufacturer"] == "Eigen"


@pytest.mark.parametrize("creator", ["Eigen, Inc", "Eigen Artemis"])
def test_eigen_private_voxel_size_when_no_aspect_ratio(tmp_path, creator):
    vox = phantom_3d(frames=3, rows=5, columns=4)
    path = us_multiframe(tmp_path / "priv.dcm", vox, aspect=None, private=(creator, 0.35), number_of_slices=False)
    [vol] = read_ultrasound(path)
    s = 0.35
    np.testing.assert_allclose(vol.geometry.spacing, [s, s, s], atol=TOL)
    # No NumberOfSlices: the frame count stands in for it.
    np.testing.assert_allclose(vol.geometry.index_to_lps((1, 2, 2)), eigen_expected_lps((1, 2, 2), 5, 4, 3, s),
                               atol=TOL)
    assert vol.metadata["ultrasound"]["spacing_source"].startswith("private")


def test_eigen_standard_aspect_ratio_wins_over_private_with_a_warning(tmp_path):
    vox = phantom_3d()
    path = us_multiframe(tmp_path / "both.dcm", vox, aspect=(250, 250), private=("Eigen, Inc", 0.3))
    with pytest.warns(UserWarning, match="differs"):
        [vol] = read_ultrasound(path)
    np.testing.assert_allclose(vol.geometry.spacing, [0.25] * 3, atol=TOL)


def test_eigen_without_any_spacing_is_a_format_error(tmp_path):
    path = us_multiframe(tmp_path / "nospace.dcm", phantom_3d(), aspect=None)
    with pytest.raises(FormatError) as info:
        napari_medio.read(path)
    assert str(path) in str(info.value) and "voxel size" in str(info.value)


def test_eigen_truncated_pixel_data_is_a_format_error(tmp_path):
    path = us_multiframe(tmp_path / "e.dcm", phantom_3d())
    data = path.read_bytes()
    cut = tmp_path / "ecut.dcm"
    cut.write_bytes(data[:-20])
    with pytest.raises(FormatError) as info:
        napari_medio.read(cut)
    assert str(cut) in str(info.value) and "truncated" in str(info.value)


# -- Philips Affinity 3D --------------------------------------------------------------------------
def test_philips_affinity_spacing_from_private_block(tmp_path):
    vox = phantom_3d(frames=4, rows=3, columns=5)
    path = us_multiframe(tmp_path / "affinity.dcm", vox, manufacturer="Philips", model="Affinity 70",
                         aspect=None, affinity_spacing=(0.3, 0.25, 0.5), affinity_block=0x12)
    assert ultrasound_variant(path) == "philips-affinity-3d"
    assert find_reader(path).name == "dicom-ultrasound"
    [vol] = napari_medio.read(path)
    np.testing.assert_array_equal(np.asarray(vol.array), vox)
    np.testing.assert_allclose(vol.geometry.spacing, [0.3, 0.25, 0.5], atol=TOL)
    np.testing.assert_allclose(vol.geometry.origin, [0, 0, 0], atol=TOL)
    np.testing.assert_allclose(vol.geometry.direction, np.eye(3), atol=TOL)
    np.testing.assert_allclose(vol.geometry.index_to_lps((4, 2, 3)), [1.2, 0.5, 1.5], atol=TOL)


def test_philips_affinity_keeps_patient_position_and_orientation(tmp_path):
    vox = phantom_3d(frames=2, rows=3, columns=3)
    path = us_multiframe(tmp_path / "aff2.dcm", vox, manufacturer="Philips", model="Affinity", aspect=None,
                         affinity_spacing=(1, 2, 3), affinity_block=0x10, iop=(0, 1, 0, 0, 0, -1),
                         ipp=(10, -20, 30))
    [vol] = read_ultrasound(path)
    np.testing.assert_allclose(vol.geometry.origin, [10, -20, 30], atol=TOL)
    np.testing.assert_allclose(vol.geometry.direction, [[0, 0, -1], [1, 0, 0], [0, -1, 0]], atol=TOL)
    np.testing.assert_allclose(vol.geometry.index_to_lps((1, 1, 1)), [10 - 3, -20 + 1, 30 - 2], atol=TOL)


def test_philips_affinity_bad_spacing_is_a_format_error(tmp_path):
    path = us_multiframe(tmp_path / "affbad.dcm", phantom_3d(), manufacturer="Philips", model="Affinity",
                         aspect=None, affinity_spacing=(0.3, 0.25))
    with pytest.raises(FormatError) as info:
        napari_medio.read(path)
    assert str(path) in str(info.value) and "3 values" in str(info.value)


# -- what is not claimed --------------------------------------------------------------------------
def test_ordinary_2d_ultrasound_cine_is_not_claimed(tmp_path):
    cine = phantom_3d(frames=6, rows=8, columns=8)
    path = us_multiframe(tmp_path / "cine.dcm", cine, manufacturer="Philips", model="EPIQ 7", aspect=(1, 1))
    assert not is_ultrasound_3d(path)
    assert not is_ultrasound_3d(pydicom.dcmread(path))
    other = us_multiframe(tmp_path / "other.dcm", cine, manufacturer="Eigen", model="Navigo", aspect=(200, 200))
    assert not is_ultrasound_3d(other)
    for p in (path, other):
        assert find_reader(p).name == "dicom"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            vols = napari_medio.read(p)
        assert all("ultrasound" not in v.metadata for v in vols)
        with pytest.raises(FormatError) as info:
            read_ultrasound(p)
        assert str(p) in str(info.value)


def test_header_dicts_are_decided_without_opening_files_when_possible(tmp_path):
    ct = make_slice(tmp_path / "ct.dcm", pixels=np.zeros((4, 4), np.int16), position=(0, 0, 0),
                    series_uid=generate_uid(), study_uid=generate_uid())
    headers, _, _ = read_headers([str(ct)])
    assert not is_ultrasound_3d(headers[0])
    assert is_ultrasound_3d({"SOPClassUID": PHILIPS_4D_SOP_CLASS})
    assert is_ultrasound_3d({"SOPClassUID": US_MULTIFRAME_SOP_CLASS, "Manufacturer": "Eigen",
                             "ManufacturerModelName": "Artemis"})
    assert not is_ultrasound_3d({"SOPClassUID": US_MULTIFRAME_SOP_CLASS, "Manufacturer": "Philips"})
    assert not is_ultrasound_3d({"SOPClassUID": US_MULTIFRAME_SOP_CLASS, "_path": str(tmp_path / "missing.dcm")})


def test_split_ultrasound_takes_only_the_3d_files_of_a_folder(tmp_path):
    folder = tmp_path / "study"
    folder.mkdir()
    vox = phantom_4d()
    philips_4d(folder / "IM0001", vox)
    us_multiframe(folder / "IM0002", phantom_3d())
    us_multiframe(folder / "IM0003", phantom_3d(frames=4, rows=8, columns=8), manufacturer="GE", model="Vivid",
                  aspect=(1, 1))
    make_slice(folder / "IM0004", pixels=np.zeros((4, 4), np.int16), position=(0, 0, 0),
               series_uid=generate_uid(), study_uid=generate_uid())
    bad = philips_4d(folder / "IM0005", vox, drop=((0x3001, 0x1001),))
    headers, _, _ = read_headers(sorted(str(p) for p in folder.iterdir()))
    volumes, rest, failed = split_ultrasound(headers)
    assert sorted(v.metadata["ultrasound"]["variant"] for v in volumes) == ["eigen-artemis", "philips-4d"]
    assert sorted(Path(h["_path"]).name for h in rest) == ["IM0003", "IM0004"]
    assert list(failed) == [str(bad)] and "(3001,1001)" in failed[str(bad)]


@pytest.mark.skipif("split_ultrasound" not in inspect.getsource(dicom_series.load_volumes),
                    reason="needs the routing edit in dicom/series.py load_volumes")
def test_folder_and_extensionless_file_give_the_cartesian_volume(tmp_path):
    folder = tmp_path / "export"
    folder.mkdir()
    vox = phantom_4d()
    philips_4d(folder / "QLAB0001", vox)
    us_multiframe(folder / "CINE0001", phantom_3d(frames=4, rows=8, columns=8), manufacturer="GE",
                  model="Vivid", aspect=(1, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vols = napari_medio.read(folder)
    us = [v for v in vols if "ultrasound" in v.metadata]
    assert len(us) == 1 and len(vols) == 2
    np.testing.assert_array_equal(np.asarray(us[0].array), vox)
    assert us[0].extra_axes[0].values == [0.0, 0.033, 0.067]
    [single] = napari_medio.read(folder / "QLAB0001")
    np.testing.assert_array_equal(np.asarray(single.array), vox)


# -- GE Kretz volume inside DICOM -----------------------------------------------------------------
def kretz_dicom(path: Path, kretz_data: bytes, *, manufacturer="GE Healthcare Austria GmbH & Co OG",
                creator="KRETZ_US") -> Path:
    """An Ultrasound Image (a small 2D preview) with the Kretz file in (7FE1,1101) OB, as Voluson writes it."""
    ds = _base("1.2.840.10008.5.1.4.1.1.6.1")
    ds.Manufacturer = manufacturer
    ds.Rows, ds.Columns = 2, 4
    ds.PixelData = bytes(range(8))
    ds["PixelData"].VR = "OB"
    ds.add_new((0x7FE1, 0x0011), "LO", creator)
    ds.add_new((0x7FE1, 0x1101), "OB", kretz_data + (b"\x00" if len(kretz_data) % 2 else b""))
    return _save(ds, path)


def test_ge_kretz_in_dicom_reads_as_the_kretz_file_at_its_offset(tmp_path):
    kretz = pytest.importorskip("napari_medio.formats.kretz")
    builder = pytest.importorskip("tests.formats.test_kretz")
    rng = np.random.default_rng(3)
    vox = rng.integers(0, 256, (8, 9, 10), dtype=np.uint8)
    theta, phi = builder.sweep(9, 8)
    data = builder.kretz_bytes(vox, theta=theta, phi=phi)
    vol_file = tmp_path / "plain.vol"
    vol_file.write_bytes(data)
    path = kretz_dicom(tmp_path / "voluson.dcm", data)
    assert ultrasound_variant(path) == "ge-kretz"
    assert find_reader(path).name == "dicom-ultrasound"
    [vol] = napari_medio.read(path)
    [ref] = kretz.read(vol_file, output_spacing=0.667)  # SlicerHeart's default for Kretz data in DICOM
    np.testing.assert_array_equal(np.asarray(vol.array), np.asarray(ref.array))
    assert vol.geometry.almost_equal(ref.geometry, tol=TOL)
    assert vol.metadata["ultrasound"]["variant"] == "ge-kretz"
    assert vol.metadata["dicom"]["Modality"] == "US"
    offset = vol.metadata["ultrasound"]["kretz_offset"]
    assert path.read_bytes()[offset:offset + 16] == b"KRETZFILE 1.0   "
    [raw] = read_ultrasound(path, scan_convert=False)
    np.testing.assert_array_equal(np.asarray(raw.array), vox)


def test_ultrasound_image_without_kretz_data_is_not_claimed(tmp_path):
    path = kretz_dicom(tmp_path / "us.dcm", b"not kretz", creator="SOME_OTHER")
    assert not is_ultrasound_3d(path)
    headers, _, _ = read_headers([str(path)])
    assert not is_ultrasound_3d(headers[0])
    plain = _base("1.2.840.10008.5.1.4.1.1.6.1")
    plain.Rows, plain.Columns = 2, 4
    plain.PixelData = bytes(8)
    plain["PixelData"].VR = "OB"
    p2 = _save(plain, tmp_path / "plain.dcm")
    headers, _, _ = read_headers([str(p2)])
    assert not is_ultrasound_3d(headers[0]) and find_reader(p2).name == "dicom"


def test_ge_kretz_in_dicom_with_bad_kretz_data_is_a_format_error(tmp_path):
    pytest.importorskip("napari_medio.formats.kretz")
    path = kretz_dicom(tmp_path / "badk.dcm", b"KRETZFILE 1.0   " + b"\x01\x02")
    with pytest.raises(FormatError) as info:
        napari_medio.read(path)
    assert str(path) in str(info.value)
