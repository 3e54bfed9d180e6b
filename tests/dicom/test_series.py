"""Series assembly on generated series: ordering, tilt, oblique, splits, rescale, bad input."""
from __future__ import annotations

import warnings
import zipfile

import numpy as np
import pytest
from pydicom.uid import generate_uid

from napari_medio.core import registry
from napari_medio.core.errors import FormatError
from napari_medio.dicom.series import DicomWarning

from ._make import make_series, make_slice


def read(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DicomWarning)
        return registry.read(path)


def test_order_by_position_not_name_or_instance(tmp_path):
    data, _, uids = make_series(tmp_path, n=6)
    (vol,) = read(tmp_path)
    np.testing.assert_array_equal(vol.to_numpy(), data)
    np.testing.assert_allclose(vol.geometry.origin, [-10, 20, 30])
    np.testing.assert_allclose(vol.geometry.spacing, [0.75, 0.5, 2.0])  # (column, row, slice)
    assert vol.name == "1: Test series"
    md = vol.metadata["dicom"]
    assert md["SeriesInstanceUID"] == uids["series"] and md["PatientID"] == "P001"
    assert md["FrameOfReferenceUID"] == "1.2.3.4" and len(md["SOPInstanceUIDs"]) == 6


def test_descending_positions_and_implicit_vr(tmp_path):
    data, _, _ = make_series(tmp_path, n=4, step=(0, 0, -3.0), implicit=True)
    (vol,) = read(tmp_path)
    np.testing.assert_array_equal(vol.to_numpy(), data[::-1])
    np.testing.assert_allclose(vol.geometry.origin, [-10, 20, 30 - 9.0])
    np.testing.assert_allclose(vol.geometry.direction, np.eye(3), atol=1e-9)


def test_gantry_tilt_is_placed_exactly(tmp_path):
    step = (0.0, 0.5, 2.0)  # slices shift in y: tilted gantry
    data, _, _ = make_series(tmp_path, n=5, step=step)
    (vol,) = read(tmp_path)
    g = vol.geometry
    for k in range(5):
        np.testing.assert_allclose(g.index_to_lps([0, 0, k]), np.array([-10, 20, 30]) + k * np.array(step), atol=1e-9)
    assert vol.metadata["dicom"]["gantry_tilt_deg"] == pytest.approx(np.degrees(np.arctan2(0.5, 2.0)), abs=1e-6)
    assert not g.is_orthonormal()


def test_oblique_sagittal_orientation(tmp_path):
    c, s = np.cos(0.3), np.sin(0.3)
    row = np.array([0, c, s])
    col = np.array([0, -s, c])
    normal = np.cross(row, col)
    data, _, _ = make_series(tmp_path, n=4, orientation=tuple(row) + tuple(col), step=tuple(1.5 * normal))
    (vol,) = read(tmp_path)
    np.testing.assert_allclose(vol.geometry.direction, np.stack([row, col, normal], axis=1), atol=1e-9)
    np.testing.assert_array_equal(vol.to_numpy(), data)


def test_two_echoes_on_one_grid_load_as_4d(tmp_path):
    series, study = generate_uid(), generate_uid()
    d1, _, _ = make_series(tmp_path / "e1", n=3, seed=1, series_uid=series, study_uid=study, extra={"EchoNumbers": 1})
    d2, _, _ = make_series(tmp_path / "e2", n=3, seed=2, series_uid=series, study_uid=study, extra={"EchoNumbers": 2})
    (vol,) = read(tmp_path)
    assert vol.shape == (2, 3, 6, 7)
    assert vol.extra_axes[0].name == "echo" and vol.extra_axes[0].values == [1, 2]
    np.testing.assert_array_equal(vol.to_numpy()[0], d1)
    np.testing.assert_array_equal(vol.to_numpy()[1], d2)


def test_different_image_sizes_split_into_volumes(tmp_path):
    series, study = generate_uid(), generate_uid()
    make_series(tmp_path / "a", n=3, shape=(6, 7), series_uid=series, study_uid=study)
    make_series(tmp_path / "b", n=2, shape=(8, 8), series_uid=series, study_uid=study, origin=(0, 0, 100))
    with pytest.warns(DicomWarning, match="loaded as 2 volumes"):
        vols = registry.read(tmp_path)
    assert sorted(v.shape for v in vols) == [(2, 8, 8), (3, 6, 7)]


def test_missing_slice_warns_and_keeps_geometry(tmp_path):
    positions = [(0, 0, z) for z in (0.0, 2.0, 4.0, 8.0, 10.0)]  # slice at z=6 missing
    data, _, _ = make_series(tmp_path, n=5, positions=positions)
    with pytest.warns(DicomWarning, match="missing"):
        (vol,) = registry.read(tmp_path)
    assert vol.shape[0] == 6
    np.testing.assert_allclose(vol.geometry.spacing[2], 2.0)
    arr = vol.to_numpy()
    np.testing.assert_array_equal(arr[[0, 1, 2, 4, 5]], data.astype(arr.dtype))
    np.testing.assert_allclose(arr[3], (data[2].astype(float) + data[3]) / 2, rtol=1e-6)


def test_rescale_keeps_integer_type_when_exact(tmp_path):
    data, _, _ = make_series(tmp_path / "a", n=3, dtype="uint16", intercept=-1024, slope=1, bits_stored=12)
    (vol,) = read(tmp_path / "a")
    assert vol.dtype.kind == "i"
    np.testing.assert_array_equal(vol.to_numpy(), data.astype(np.int32) - 1024)
    data, _, _ = make_series(tmp_path / "b", n=3, dtype="int16", intercept=-30000, slope=100)
    (vol,) = read(tmp_path / "b")
    assert vol.dtype == np.int32  # int16 overflows: widened exactly
    np.testing.assert_array_equal(vol.to_numpy(), data.astype(np.int64) * 100 - 30000)
    data, _, _ = make_series(tmp_path / "c", n=3, intercept=0.5, slope=0.25)
    (vol,) = read(tmp_path / "c")
    assert vol.dtype == np.float32
    np.testing.assert_allclose(vol.to_numpy(), data * 0.25 + 0.5)


def test_signed_bits_stored_sign_extension(tmp_path):
    raw = np.array([[0x0FFF, 0x0001], [0x0800, 0x07FF]], dtype=np.int16)  # 12-bit two's complement
    series = generate_uid()
    make_slice(tmp_path / "a.dcm", pixels=raw, position=(0, 0, 0), series_uid=series, study_uid=generate_uid(),
               bits_stored=12)
    (vol,) = read(tmp_path)
    np.testing.assert_array_equal(vol.to_numpy()[0], [[-1, 1], [-2048, 2047]])


def test_monochrome1_is_inverted_with_its_window(tmp_path):
    data, _, _ = make_series(tmp_path, n=2, dtype="uint16", photometric="MONOCHROME1", bits_stored=12,
                             window=(1000, 400))
    (vol,) = read(tmp_path)
    np.testing.assert_array_equal(vol.to_numpy(), 4095 - data)
    assert vol.window.center == 4095 - 1000 and vol.window.width == 400
    assert vol.metadata["dicom"]["monochrome1_inverted"]


def test_missing_position_tags_stack_by_instance(tmp_path):
    series = generate_uid()
    study = generate_uid()
    rng = np.random.default_rng(0)
    slices = [rng.integers(0, 100, (4, 4)).astype(np.int16) for _ in range(3)]
    for k, s in enumerate(slices):
        make_slice(tmp_path / f"x{2 - k}", pixels=s, position=None, orientation=None, series_uid=series,
                   study_uid=study, instance=k + 1, modality="MR")
    with pytest.warns(DicomWarning, match="no position"):
        (vol,) = registry.read(tmp_path)
    np.testing.assert_array_equal(vol.to_numpy(), np.stack(slices))


def test_rle_compressed_series(tmp_path):
    import pydicom
    from pydicom.uid import RLELossless

    data, paths, _ = make_series(tmp_path, n=3)
    for p in paths:
        ds = pydicom.dcmread(p)
        ds.compress(RLELossless)
        ds.save_as(p)
    (vol,) = read(tmp_path)
    np.testing.assert_array_equal(vol.to_numpy(), data)


def test_enhanced_multiframe(tmp_path):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import EnhancedCTImageStorage, ExplicitVRLittleEndian

    rng = np.random.default_rng(3)
    frames = rng.integers(0, 500, (4, 5, 6)).astype(np.uint16)
    zs = [6.0, 0.0, 4.0, 2.0]  # frames stored out of order
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = EnhancedCTImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = EnhancedCTImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.SeriesNumber, ds.SeriesDescription = "CT", 7, "Enhanced"
    ds.PatientName, ds.PatientID = "E^F", "E1"
    ds.Rows, ds.Columns, ds.NumberOfFrames = 5, 6, 4
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    shared = Dataset()
    po = Dataset()
    po.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    pm = Dataset()
    pm.PixelSpacing, pm.SliceThickness = [0.5, 0.5], 2.0
    pvt = Dataset()
    pvt.RescaleSlope, pvt.RescaleIntercept, pvt.RescaleType = 1, -100, "HU"
    shared.PlaneOrientationSequence = Sequence([po])
    shared.PixelMeasuresSequence = Sequence([pm])
    shared.PixelValueTransformationSequence = Sequence([pvt])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    per = []
    for z in zs:
        pp = Dataset()
        pp.ImagePositionPatient = [1.0, 2.0, z]
        f = Dataset()
        f.PlanePositionSequence = Sequence([pp])
        per.append(f)
    ds.PerFrameFunctionalGroupsSequence = Sequence(per)
    ds.PixelData = frames.tobytes()
    ds.save_as(tmp_path / "enh.dcm", enforce_file_format=True)
    (vol,) = read(tmp_path / "enh.dcm")
    order = np.argsort(zs)
    np.testing.assert_array_equal(vol.to_numpy(), frames[order].astype(np.int32) - 100)
    np.testing.assert_allclose(vol.geometry.origin, [1, 2, 0])
    np.testing.assert_allclose(vol.geometry.spacing, [0.5, 0.5, 2.0])


# -- bad input -------------------------------------------------------------------------------------
def test_empty_random_and_truncated_files_name_the_file(tmp_path):
    empty = tmp_path / "empty.dcm"
    empty.write_bytes(b"")
    rnd = tmp_path / "random.dcm"
    rnd.write_bytes(np.random.default_rng(0).bytes(5000))
    for p in (empty, rnd):
        with pytest.raises(FormatError) as exc:
            registry.read(p)
        assert str(p) in str(exc.value)


def test_bad_files_in_a_series_are_left_out(tmp_path):
    data, paths, _ = make_series(tmp_path, n=5)
    raw = paths[0].read_bytes()
    paths[0].write_bytes(raw[: len(raw) - 20])  # truncate one slice's pixels
    (tmp_path / "junk.bin").write_bytes(b"not dicom at all" * 10)
    with pytest.warns(DicomWarning, match="could not be loaded") as rec:
        (vol,) = registry.read(tmp_path)
    assert any(paths[0].name in str(w.message) for w in rec)
    assert vol.shape[0] == 4


def test_missing_pixel_data(tmp_path):
    import pydicom

    _, paths, _ = make_series(tmp_path, n=1)
    ds = pydicom.dcmread(paths[0])
    del ds.PixelData
    ds.save_as(paths[0])
    with pytest.raises(FormatError) as exc:
        registry.read(paths[0])
    assert paths[0].name in str(exc.value)


def test_zip_of_a_series(tmp_path):
    data, paths, _ = make_series(tmp_path / "s", n=3)
    z = tmp_path / "series.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for p in paths:
            zf.write(p, f"dicom/{p.name}")
    assert registry.find_reader(z).name == "dicom"
    (vol,) = read(z)
    np.testing.assert_array_equal(vol.to_numpy(), data)
    with zipfile.ZipFile(z, "a") as zf:
        zf.writestr("../evil.dcm", paths[0].read_bytes())
    with pytest.raises(FormatError, match="outside the extraction folder"):  # the archive checks of scene bundles
        read(z)
    assert not (tmp_path.parent / "evil.dcm").exists()


def test_folder_with_two_series_gives_two_volumes(tmp_path):
    study = generate_uid()
    make_series(tmp_path / "a", n=3, study_uid=study, series_number=2, description="B")
    make_series(tmp_path / "b", n=4, study_uid=study, series_number=1, description="A")
    vols = read(tmp_path)
    assert [v.name for v in vols] == ["1: A", "2: B"]
