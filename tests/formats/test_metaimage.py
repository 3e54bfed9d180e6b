"""MetaImage (.mha, .mhd + .raw/.zraw): round trips, fixtures, atomic multi-file writes, bad input."""
from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

import napari_medio
from napari_medio.core.errors import MedioError
from napari_medio.core.geometry import Geometry
from napari_medio.core.registry import find_reader
from napari_medio.core.volume import AxisInfo, Volume
from tests.badfiles import assert_rejected, no_temp_files, variants
from tests.conftest import fixture_file
from tests.volumes import OBLIQUE_FLIPPED, assert_same_volume, four_d, rgb_2d, scalar_3d, vector_3d

DTYPES = ["int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ext,compress", [(".mha", True), (".mha", False), (".mhd", True), (".mhd", False)])
def test_round_trip_3d(tmp_path, dtype, ext, compress):
    vol = scalar_3d(dtype)
    out = tmp_path / f"v{ext}"
    written = napari_medio.write(vol, out, compress=compress)
    [back] = napari_medio.read(out)
    assert_same_volume(vol, back)
    assert back.name == "v"
    if ext == ".mhd":
        data = tmp_path / ("v.zraw" if compress else "v.raw")
        assert written == [str(out), str(data)]
    else:
        assert written == [str(out)]
    assert no_temp_files(tmp_path)


def test_round_trip_2d_4d_vector_rgb(tmp_path):
    g2 = Geometry([0.3, 0.45], [-5.5, 7.25], [[0.0, -1.0], [1.0, 0.0]])
    two_d = Volume(np.arange(35, dtype=np.int16).reshape(5, 7), g2, name="flat")
    for vol in (two_d, four_d(), vector_3d(), vector_3d(ncomp=9, dtype="float64"), rgb_2d()):
        for ext in (".mha", ".mhd"):
            out = tmp_path / f"{vol.name}{ext}"
            napari_medio.write(vol, out)
            [back] = napari_medio.read(out)
            assert_same_volume(vol, back)
    [back] = napari_medio.read(tmp_path / "fourd.mha")
    assert back.extra_axes[0].values == [0.0, 1.5, 3.0]
    [back] = napari_medio.read(tmp_path / "rgb.mhd")
    assert back.is_rgb


def test_header_names_the_final_data_file(tmp_path):
    napari_medio.write(scalar_3d("int16"), tmp_path / "ct.mhd", compress=False)
    header = (tmp_path / "ct.mhd").read_text()
    assert "ElementDataFile = ct.raw" in header
    assert (tmp_path / "ct.raw").stat().st_size == 6 * 7 * 8 * 2
    # SimpleITK reads it back with the same geometry.
    image = sitk.ReadImage(str(tmp_path / "ct.mhd"))
    assert np.allclose(np.array(image.GetDirection()).reshape(3, 3), OBLIQUE_FLIPPED.direction, atol=1e-9)


def test_custom_fields_and_labelmap_guess(tmp_path):
    vol = scalar_3d("uint8")
    vol.metadata["metaimage"] = {"Modality": "MET_MOD_CT", "MyField": "hello world"}
    napari_medio.write(vol, tmp_path / "brain_seg.mha")
    [back] = napari_medio.read(tmp_path / "brain_seg.mha")
    assert back.kind == "labelmap"
    assert back.metadata["metaimage"]["MyField"] == "hello world"
    [asvol] = napari_medio.read(tmp_path / "brain_seg.mha", labelmap=False)
    assert asvol.kind == "volume"
    napari_medio.write(scalar_3d("float32"), tmp_path / "f.mha")
    with pytest.raises(MedioError):
        napari_medio.read(tmp_path / "f.mha", labelmap=True)


@pytest.mark.parametrize("rel,shape,dtype,spacing,origin,stats", [
    ("images/itkelastix/CT_2D_head_fixed.mha", (256, 256), "int16", [1.0, 1.0], [0.0, 0.0], (-2, 217, 2.66054e6)),
    ("images/itkelastix/CT_3D_lung_fixed_mask.mha", (129, 157, 115), "uint8", [1.366, 1.366, 2.5],
     [-153.827, -150.352, -1434.5], (0, 1, 721043)),
])
def test_conformance(rel, shape, dtype, spacing, origin, stats):
    [vol] = napari_medio.read(fixture_file(rel))
    a = vol.to_numpy()
    assert a.shape == shape and a.dtype == np.dtype(dtype)
    g = vol.geometry
    assert np.allclose(g.spacing, spacing, atol=1e-4) and np.allclose(g.origin, origin, atol=1e-4)
    assert np.allclose(g.direction, np.eye(len(shape)), atol=1e-4)
    assert a.min() == stats[0] and a.max() == stats[1]
    assert np.isclose(a.sum(dtype=np.float64), stats[2], rtol=1e-5)


def test_bad_input(tmp_path):
    napari_medio.write(scalar_3d("int16"), tmp_path / "ok.mha", compress=False)
    napari_medio.write(scalar_3d("int16"), tmp_path / "okz.mha", compress=True)
    bad = variants(tmp_path, tmp_path / "ok.mha", ".mha", cuts=(-1, 200))
    zdata = (tmp_path / "okz.mha").read_bytes()
    (tmp_path / "zcut.mha").write_bytes(zdata[:-5])
    bad.append(tmp_path / "zcut.mha")
    assert_rejected(bad)


def test_bad_detached_data(tmp_path):
    napari_medio.write(scalar_3d("int16"), tmp_path / "a.mhd", compress=False)
    raw = (tmp_path / "a.raw").read_bytes()
    (tmp_path / "a.raw").write_bytes(raw[:-1])
    assert_rejected([tmp_path / "a.mhd"])
    (tmp_path / "a.raw").unlink()
    assert_rejected([tmp_path / "a.mhd"])
    napari_medio.write(scalar_3d("int16"), tmp_path / "b.mhd", compress=True)
    (tmp_path / "b.zraw").write_bytes((tmp_path / "b.zraw").read_bytes()[:10])
    assert_rejected([tmp_path / "b.mhd"])


def test_content_decides_when_the_extension_lies(tmp_path):
    napari_medio.write(scalar_3d("int16"), tmp_path / "x.mha")
    (tmp_path / "x.bin").write_bytes((tmp_path / "x.mha").read_bytes())
    assert find_reader(tmp_path / "x.bin").name == "metaimage"
    assert_same_volume(scalar_3d("int16"), napari_medio.read(tmp_path / "x.bin")[0])


def test_failed_write_keeps_previous_file(tmp_path):
    out = tmp_path / "keep.mhd"
    napari_medio.write(scalar_3d("int16"), out)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    bad = Volume(np.zeros((2, 2, 3, 4, 5), np.int16), OBLIQUE_FLIPPED,
                 extra_axes=[AxisInfo("a"), AxisInfo("b")])
    with pytest.raises(MedioError):
        napari_medio.write(bad, out)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_sniff_is_strict():
    from napari_medio.formats.metaimage import sniff

    assert sniff(b"ObjectType = Image\nNDims = 3\nDimSize = 1 2 3\nElementType = MET_SHORT\n"
                 b"ElementDataFile = LOCAL\n", None)
    assert not sniff(b"NRRD0004\n# Complete NRRD file format specification\n", None)
    assert not sniff(b"ObjectType = Tube\nNDims = 3\n", None)
    assert not sniff(b"hello = world\nfoo = bar\n", None)
    assert not sniff(b"\x89PNG\r\n\x1a\n", None)


def test_uncompressed_data_is_memory_mapped_and_equals_simpleitk(tmp_path):
    """Raw .mha/.mhd open lazily (a memory map), with SimpleITK's exact voxels and geometry."""
    import SimpleITK as sitk

    from tests.volumes import four_d, scalar_3d, vector_3d

    for i, vol in enumerate((scalar_3d("int16"), four_d(), vector_3d())):
        for ext in (".mha", ".mhd"):
            out = tmp_path / f"raw{i}{ext}"
            napari_medio.write(vol, out, compress=False)
            [back] = napari_medio.read(out)
            assert isinstance(back.array, np.memmap)
            ref = napari_medio.read(out, mmap=False)[0]
            assert not isinstance(ref.array, np.memmap)
            assert np.array_equal(np.asarray(back.array), np.asarray(ref.array))
            assert back.geometry.almost_equal(ref.geometry, 1e-9)
            assert len(back.extra_axes) == len(ref.extra_axes)
            assert np.array_equal(np.asarray(back.array), vol.array)
            if not vol.extra_axes:
                assert np.array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(out))), vol.array)
