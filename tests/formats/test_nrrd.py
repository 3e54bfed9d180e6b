"""NRRD: round trips, Slicer-style header, conformance on real files, bad input."""
from __future__ import annotations

import gzip

import nrrd
import numpy as np
import pytest
import SimpleITK as sitk

import napari_medio
from napari_medio.core.errors import FormatError
from napari_medio.core.geometry import Geometry
from napari_medio.core.volume import AxisInfo, Volume
from tests.conftest import fixture_file
from tests.volumes import assert_same_volume, four_d, scalar_3d, vector_3d


@pytest.mark.parametrize("dtype", ["int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "float32",
                                   "float64"])
@pytest.mark.parametrize("ext", [".nrrd", ".nhdr"])
def test_round_trip_types(tmp_path, dtype, ext):
    vol = scalar_3d(dtype)
    out = tmp_path / f"v{ext}"
    napari_medio.write(vol, out)
    [back] = napari_medio.read(out)
    assert_same_volume(vol, back)


@pytest.mark.parametrize("compress", [True, False])
def test_round_trip_4d_and_vector(tmp_path, compress):
    for vol in (four_d(), vector_3d()):
        out = tmp_path / f"{vol.name}.nrrd"
        napari_medio.write(vol, out, compress=compress)
        [back] = napari_medio.read(out)
        assert_same_volume(vol, back)
    [back] = napari_medio.read(tmp_path / "fourd.nrrd")
    assert back.extra_axes[0].name == "time" and back.extra_axes[0].values == [0.0, 1.5, 3.0]


def test_header_is_what_slicer_writes_and_simpleitk_agrees(tmp_path):
    vol = scalar_3d("int16")
    out = tmp_path / "ct.nrrd"
    napari_medio.write(vol, out)
    header = nrrd.read_header(str(out))
    assert header["space"] == "left-posterior-superior"
    assert header["kinds"] == ["domain", "domain", "domain"]
    assert header["encoding"] == "gzip" and header["endian"] == "little" and header["type"] == "short"
    img = sitk.ReadImage(str(out))
    assert np.array_equal(sitk.GetArrayFromImage(img), vol.array)
    assert np.allclose(img.GetOrigin(), vol.geometry.origin, atol=1e-9)
    assert np.allclose(np.reshape(img.GetDirection(), (3, 3)), vol.geometry.direction, atol=1e-9)
    assert np.allclose(img.GetSpacing(), vol.geometry.spacing, atol=1e-9)
    data, _ = nrrd.read(str(out), index_order="C")  # pynrrd reads our gzip stream
    assert np.array_equal(data, vol.array)


def test_detached_header_names_final_data_file(tmp_path):
    out = tmp_path / "det.nhdr"
    written = napari_medio.write(scalar_3d(), out)
    assert sorted(p.rsplit("/", 1)[-1] for p in written) == ["det.nhdr", "det.raw.gz"]
    assert "data file: det.raw.gz" in out.read_text()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".medio-")]


def test_sequence_round_trip_slicer_510_layout(tmp_path):
    vol = four_d()
    vol.extra_axes[0].name = "time"
    out = tmp_path / "seq.seq.nrrd"
    napari_medio.write(vol, out)
    header = nrrd.read_header(str(out))
    assert header["kinds"] == ["domain", "domain", "domain", "list"]
    assert header["axis 3 index values"] == "0 1.5 3"
    assert header["DataNodeClassName"] == "vtkMRMLScalarVolumeNode"
    [back] = napari_medio.read(out)
    assert_same_volume(vol, back)
    assert back.extra_axes[0].values == [0, 1.5, 3]


def test_sequence_slicer_58_layout_ras_list_first(tmp_path):
    """Slicer <= 5.8 wrote the sequence axis first and the space as RAS."""
    rng = np.random.default_rng(0)
    data = rng.integers(0, 100, (2, 3, 4, 5)).astype(np.int16)  # C order: k, j, i, frame
    header = {
        "type": "short", "dimension": 4, "space": "right-anterior-superior", "sizes": [5, 4, 3, 2],
        "space directions": [[np.nan] * 3, [-1.0, 0, 0], [0, -2.0, 0], [0, 0, 3.0]],
        "kinds": ["list", "domain", "domain", "domain"], "space origin": [10.0, 20.0, 30.0],
        "encoding": "gzip", "axis 0 index type": "numeric", "axis 0 index values": "0 1 2 3 4",
        "DataNodeClassName": "vtkMRMLScalarVolumeNode",
    }
    out = tmp_path / "old.seq.nrrd"
    nrrd.write(str(out), data, header, index_order="C",
               custom_field_map={"axis 0 index type": "string", "axis 0 index values": "string",
                                 "DataNodeClassName": "string"})
    [vol] = napari_medio.read(out)
    assert vol.shape == (5, 2, 3, 4)
    assert np.array_equal(vol.array, np.moveaxis(data, -1, 0))
    assert np.allclose(vol.geometry.origin, [-10, -20, 30])
    assert np.allclose(vol.geometry.direction, np.eye(3))
    assert np.allclose(vol.geometry.spacing, [1, 2, 3])
    assert vol.extra_axes[0].values == [0, 1, 2, 3, 4]


def test_ras_space_is_converted_to_lps(tmp_path):
    data = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    out = tmp_path / "ras.nrrd"
    nrrd.write(str(out), data, {"space": "right-anterior-superior", "space directions": np.diag([1.0, 2.0, 3.0]),
                                "space origin": [1.0, 2.0, 3.0], "kinds": ["domain"] * 3}, index_order="C")
    [vol] = napari_medio.read(out)
    assert np.allclose(vol.geometry.origin, [-1, -2, 3])
    assert np.allclose(vol.geometry.direction, np.diag([-1, -1, 1]))
    assert np.allclose(vol.geometry.spacing, [1, 2, 3])


def test_raw_data_is_memory_mapped(tmp_path):
    out = tmp_path / "raw.nrrd"
    napari_medio.write(scalar_3d(), out, compress=False)
    [vol] = napari_medio.read(out)
    assert isinstance(vol.array.base, np.memmap) or isinstance(vol.array, np.memmap)


def test_labelmap_guessed_from_name(tmp_path):
    for name, expected in [("brain-label.nrrd", "labelmap"), ("case1_seg.nrrd", "labelmap"),
                           ("labelmap.nrrd", "volume"), ("ct.nrrd", "volume")]:
        napari_medio.write(scalar_3d("uint8"), tmp_path / name)
        assert napari_medio.read(tmp_path / name)[0].kind == expected, name


# -- conformance on real files (values from tests/data/images/MANIFEST.md) ---------------------
MANIFEST = {
    "images/CTChest4.nrrd": dict(shape=(34, 128, 128), dtype="int32", spacing=[3.0469, 3.0469, 10.0],
                                 origin=[193.096, 216.396, -340.25], direction=[-1, 0, 0, 0, -1, 0, 0, 0, 1],
                                 sum=-5.97631e08),
    "images/dcmqi_pm-example.nrrd": dict(shape=(20, 256, 256), dtype="int16", spacing=[0.7031, 0.7031, 2.9999],
                                         origin=[-90.0225, -108.462, -43.9748],
                                         direction=[1.0, -0.0054, -0.003, 0.0048, 0.9848, -0.1739, 0.0039, 0.1739,
                                                    0.9848], sum=7.14203e08),
    "images/multishell-DWI-451dir.nhdr": dict(shape=(2, 7, 7, 451), dtype="int16", spacing=[2.5, 2.5, 2.5],
                                              origin=[-9.1901, -98.0981, 9.875],
                                              direction=[0.9962, -0.0, -0.0872, -0.0006, 1.0, -0.007, 0.0872,
                                                         0.007, 0.9962], sum=2.91306e06),
    "images/pynrrd/BallBinary30x30x30.nhdr": dict(shape=(30, 30, 30), dtype="int16", spacing=[1, 1, 1],
                                                  origin=[0, 0, 0], direction=list(np.eye(3).ravel()), sum=3.6823e06),
    "images/pynrrd/BallBinary30x30x30.nrrd": dict(shape=(30, 30, 30), dtype="int16", spacing=[1, 1, 1],
                                                  origin=[0, 0, 0], direction=list(np.eye(3).ravel()), sum=3.6823e06),
    "images/pynrrd/BallBinary30x30x30_gz.nrrd": dict(shape=(30, 30, 30), dtype="int16", spacing=[1, 1, 1],
                                                     origin=[0, 0, 0], direction=list(np.eye(3).ravel()),
                                                     sum=3.6823e06),
    "images/pynrrd/BallBinary30x30x30_bz2.nrrd": dict(shape=(30, 30, 30), dtype="int16", spacing=[1, 1, 1],
                                                      origin=[0, 0, 0], direction=list(np.eye(3).ravel()),
                                                      sum=3.6823e06),
    "images/pynrrd/test2d_ascii.nrrd": dict(shape=(9, 3), dtype="uint16", spacing=[1.0458, 2.0], origin=[0, 0],
                                            direction=[1, 0, 0, 1], sum=378),
}


@pytest.mark.parametrize("rel", sorted(MANIFEST))
def test_conformance(rel):
    ref = MANIFEST[rel]
    [vol] = napari_medio.read(fixture_file(rel))
    arr = np.asarray(vol.array)
    assert arr.shape == ref["shape"]
    assert str(arr.dtype) == ref["dtype"]
    assert np.allclose(vol.geometry.spacing, ref["spacing"], atol=1e-4)
    assert np.allclose(vol.geometry.origin, ref["origin"], atol=1e-3)
    assert np.allclose(vol.geometry.direction.ravel(), ref["direction"], atol=1e-4)
    assert np.isclose(float(arr.sum(dtype=np.float64)), ref["sum"], rtol=1e-5)


def test_dwi_metadata_kept_and_round_trips(tmp_path):
    [vol] = napari_medio.read(fixture_file("images/multishell-DWI-451dir.nhdr"))
    assert vol.metadata["dwi"]["b_value"] == 10000
    assert len(vol.metadata["dwi"]["gradients"]) == 451
    # RAS file: the measurement frame is brought to LPS with the geometry
    assert np.allclose(vol.metadata["measurement_frame"], np.eye(3))
    out = tmp_path / "dwi.nhdr"
    napari_medio.write(vol, out)
    [back] = napari_medio.read(out)
    assert_same_volume(vol, back)
    assert back.metadata["dwi"]["gradients"] == vol.metadata["dwi"]["gradients"]
    assert np.allclose(back.metadata["measurement_frame"], vol.metadata["measurement_frame"])


def test_custom_fields_kept(tmp_path):
    [vol] = napari_medio.read(fixture_file("images/pynrrd/test_customFields.nrrd"))
    assert vol.metadata["nrrd"]["custom"]["int"] == "24"
    out = tmp_path / "c.nrrd"
    napari_medio.write(vol, out)
    assert napari_medio.read(out)[0].metadata["nrrd"]["custom"]["string list"] == "words are split by space in list"


# -- bad input ----------------------------------------------------------------------------------
def test_bad_input(tmp_path):
    empty = tmp_path / "empty.nrrd"
    empty.write_bytes(b"")
    rnd = tmp_path / "random.nrrd"
    rnd.write_bytes(np.random.default_rng(0).bytes(5000))
    good = tmp_path / "good.nrrd"
    napari_medio.write(scalar_3d(), good, compress=False)
    trunc = tmp_path / "trunc.nrrd"
    trunc.write_bytes(good.read_bytes()[:-100])
    napari_medio.write(scalar_3d(), tmp_path / "g.nrrd")
    truncgz = tmp_path / "truncgz.nrrd"
    truncgz.write_bytes((tmp_path / "g.nrrd").read_bytes()[:-50])
    bad_header = tmp_path / "badheader.nrrd"
    bad_header.write_bytes(b"NRRD0004\ntype: short\ndimension: 3\nsizes: 2 2\n\n" + b"\0" * 8)
    for path in (empty, rnd, trunc, truncgz, bad_header):
        with pytest.raises(FormatError) as info:
            napari_medio.read(path)
        assert str(path) in str(info.value)


def test_nifti_named_nrrd_is_read_by_content(tmp_path):
    napari_medio.write(scalar_3d(), tmp_path / "x.nii")
    lying = tmp_path / "lying.nrrd"
    lying.write_bytes((tmp_path / "x.nii").read_bytes())
    [vol] = napari_medio.read(lying)
    assert_same_volume(vol, scalar_3d())


def test_failed_write_keeps_previous_file(tmp_path):
    out = tmp_path / "keep.nrrd"
    napari_medio.write(scalar_3d(), out)
    before = out.read_bytes()

    class Exploding:
        shape = (6, 7, 8)
        dtype = np.dtype("int16")

        def __getitem__(self, key):
            raise RuntimeError("disk on fire")

    bad = Volume(Exploding(), scalar_3d().geometry)
    with pytest.raises(ValueError):
        napari_medio.write(bad, out)
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.nrrd"]


def test_gzip_output_is_one_member_readable_by_stdlib(tmp_path):
    out = tmp_path / "z.nhdr"
    napari_medio.write(scalar_3d(shape=(40, 50, 60)), out)
    raw = gzip.decompress((tmp_path / "z.raw.gz").read_bytes())
    assert len(raw) == 40 * 50 * 60 * 2


def test_2d_image_round_trip(tmp_path):
    vol = Volume(np.arange(12, dtype=np.uint16).reshape(3, 4), Geometry([0.5, 2.0], [1.0, -2.0], np.eye(2)))
    napari_medio.write(vol, tmp_path / "flat.nrrd")
    assert_same_volume(vol, napari_medio.read(tmp_path / "flat.nrrd")[0])


def test_extra_axis_info_type():
    assert AxisInfo().kind == "list"
