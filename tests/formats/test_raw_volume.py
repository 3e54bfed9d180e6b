"""Headerless RAW volumes (RawImageGuess): layouts given by hand, guessing, .nhdr headers, the registry reader."""
from __future__ import annotations

import time
import warnings

import numpy as np
import pytest
from scipy import ndimage

import napari_medio
from napari_medio.core.errors import FormatError, MedioError
from napari_medio.core.registry import find_reader
from napari_medio.formats.raw_volume import (
    RawLayout,
    guess_layouts,
    read_raw,
    read_raw_slice,
    write_nhdr_for_raw,
)

HEADER = bytes(range(256)) * 2  # 512 bytes that are not voxels


def write_raw(path, array: np.ndarray, header: bytes = b"", trailer: bytes = b""):
    path.write_bytes(header + np.ascontiguousarray(array).tobytes() + trailer)
    return path


def unique(shape, dtype) -> np.ndarray:
    n = int(np.prod(shape))
    return (np.arange(n) % np.iinfo(dtype).max if np.dtype(dtype).kind in "iu" else np.arange(n) * 0.25 - 7
            ).astype(dtype).reshape(shape)


def phantom(shape=(64, 80, 96)) -> np.ndarray:
    """A blurred ellipsoid in a -200 background: smooth, as real scans are."""
    z, y, x = np.mgrid[: shape[0], : shape[1], : shape[2]]
    inside = ((z - 30) / 22.0) ** 2 + ((y - 42) / 30.0) ** 2 + ((x - 50) / 36.0) ** 2 < 1
    return ndimage.gaussian_filter(np.where(inside, 800.0, -200.0), 2).astype(np.int16)


# -- reading exactly ----------------------------------------------------------------------------
@pytest.mark.parametrize("order", ["little", "big"])
def test_int16_with_512_byte_header_reads_exactly(tmp_path, order):
    data = unique((5, 6, 7), np.int16) - 300
    stored = data.astype(("<" if order == "little" else ">") + "i2")
    path = write_raw(tmp_path / "scan.raw", stored, HEADER)
    layout = RawLayout(shape=(5, 6, 7), dtype="int16", byte_order=order, header=512)
    for mmap in (True, False):
        vol = read_raw(path, layout, mmap=mmap)
        assert vol.dtype == np.dtype(np.int16) and vol.dtype.isnative
        assert vol.shape == (5, 6, 7) and np.array_equal(vol.to_numpy(), data)
    assert np.array_equal(read_raw_slice(path, layout), data[2])
    assert np.array_equal(read_raw_slice(path, layout, 4), data[4])


def test_little_endian_is_memory_mapped(tmp_path):
    data = unique((4, 5, 6), np.int16)
    path = write_raw(tmp_path / "m.raw", data.astype("<i2"), HEADER)
    vol = read_raw(path, RawLayout(shape=(4, 5, 6), dtype="<i2", header=512))
    assert isinstance(vol.array, np.memmap) or isinstance(getattr(vol.array, "base", None), np.memmap)
    assert np.array_equal(vol.array, data)


def test_rgb_uint8(tmp_path):
    data = (np.arange(3 * 4 * 5 * 3) % 251).astype(np.uint8).reshape(3, 4, 5, 3)
    path = write_raw(tmp_path / "photo.raw", data, b"\x00" * 100)
    vol = read_raw(path, RawLayout(shape=(3, 4, 5), dtype="uint8", header=100, components=3))
    assert vol.shape == (3, 4, 5, 3) and vol.is_rgb and np.array_equal(vol.array, data)
    assert vol.components.kind == "RGB-color"


def test_float32(tmp_path):
    data = np.random.default_rng(1).normal(size=(4, 6, 8)).astype(np.float32)
    path = write_raw(tmp_path / "f.raw", data.astype(">f4"))
    vol = read_raw(path, {"shape": (4, 6, 8), "dtype": "float32", "byte_order": "big"})
    assert vol.dtype == np.float32 and np.array_equal(vol.array, data)


def test_geometry(tmp_path):
    path = write_raw(tmp_path / "g.raw", unique((3, 4, 5), np.uint16))
    rot = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    layout = RawLayout(shape=(3, 4, 5), dtype="uint16", spacing=(0.5, 0.75, 2.0), origin=(-10, 20, 30),
                       direction=rot)
    g = read_raw(path, layout).geometry
    assert np.allclose(g.spacing, [0.5, 0.75, 2.0]) and np.allclose(g.origin, [-10, 20, 30])
    assert np.allclose(g.direction, rot)
    # Voxel (i, j, k) = (1, 2, 2) lies at origin + direction @ (spacing * ijk).
    assert np.allclose(g.index_to_lps([1, 2, 2]), np.array([-10, 20, 30]) + rot @ [0.5, 1.5, 4.0])
    flipped = read_raw(path, RawLayout(shape=(3, 4, 5), dtype="uint16", slice_flip=True, spacing=(1, 1, 2)))
    assert np.allclose(flipped.geometry.direction, np.diag([1.0, 1.0, -1.0]))
    assert np.allclose(flipped.geometry.index_to_lps([0, 0, 2]), [0, 0, -4.0])  # later slices lie lower
    assert flipped.metadata["raw"]["layout"]["slice_flip"] is True


def test_layout_validation_and_bytes():
    lay = RawLayout(shape=(10, 20, 30), dtype="uint16", components=1, header=7)
    assert lay.expected_bytes() == 10 * 20 * 30 * 2
    assert RawLayout(shape=(2, 3, 4), dtype="uint8", components=3).expected_bytes() == 72
    assert RawLayout(shape="30x20", dtype=">i2").shape == (1, 30, 20)
    assert RawLayout(shape=(1, 2, 3), dtype=">i2").byte_order == "big"
    for bad in ({"shape": (0, 2, 3)}, {"dtype": "complex64"}, {"header": -1}, {"spacing": (1, 0, 1)},
                {"byte_order": "middle"}, {"components": 2}, {"direction": np.zeros((3, 3))}):
        bad = {"shape": (1, 2, 3), **bad}
        with pytest.raises(ValueError):
            RawLayout(**bad)


def test_short_file_says_by_how_much(tmp_path):
    path = write_raw(tmp_path / "short.raw", np.zeros((3, 4, 5), np.int16), HEADER)  # 512 + 120 bytes
    layout = RawLayout(shape=(4, 4, 5), dtype="int16", header=512)  # needs 512 + 160
    with pytest.raises(FormatError) as err:
        read_raw(path, layout)
    text = str(err.value)
    assert "short.raw" in text and "672" in text and "632" in text and "40 bytes missing" in text
    with pytest.raises(FormatError, match="40 bytes missing"):
        read_raw_slice(path, layout)
    with pytest.raises(FormatError, match="40 bytes missing"):
        write_nhdr_for_raw(path, layout)


def test_long_file_warns(tmp_path):
    data = unique((2, 3, 4), np.uint8)
    path = write_raw(tmp_path / "long.raw", data, trailer=b"\xff" * 9)
    with pytest.warns(UserWarning, match="9 bytes longer"):
        vol = read_raw(path, RawLayout(shape=(2, 3, 4), dtype="uint8"))
    assert np.array_equal(vol.array, data)


# -- guessing -----------------------------------------------------------------------------------
@pytest.mark.parametrize("order", ["<", ">"])
def test_guess_finds_the_true_layout_first(tmp_path, order):
    data = phantom()
    path = write_raw(tmp_path / "phantom.raw", data.astype(order + "i2"), bytes(range(256)) * 4)  # 1024 bytes
    start = time.perf_counter()
    guesses = guess_layouts(path)
    elapsed = time.perf_counter() - start
    best = guesses[0]
    assert (best.shape, best.dtype, best.header) == ((64, 80, 96), "int16", 1024), [g.describe() for g in guesses]
    assert best.byte_order == ("little" if order == "<" else "big")
    assert best.score >= max(g.score for g in guesses[1:])
    assert np.array_equal(read_raw(path, best).array, data)
    assert elapsed < 10, f"guessing a 1 MB file took {elapsed:.1f} s"
    # A sample shorter than two slices: the slice-to-slice correlation is read from the file.
    small = guess_layouts(path, sample_voxels=8192, limit=3)[0]
    assert (small.shape, small.dtype, small.header) == ((64, 80, 96), "int16", 1024)


def test_guess_samples_a_larger_file_quickly(tmp_path):
    rng = np.random.default_rng(0)
    data = (ndimage.gaussian_filter(rng.normal(size=(40, 256, 256)), 3) * 4000).astype(np.int16)
    path = write_raw(tmp_path / "big.raw", data)
    start = time.perf_counter()
    best = guess_layouts(path, limit=3)[0]
    assert time.perf_counter() - start < 10
    assert (best.shape, best.dtype, best.header) == ((40, 256, 256), "int16", 0)


def test_guess_on_tiny_or_empty_file(tmp_path):
    (tmp_path / "empty.raw").write_bytes(b"")
    assert guess_layouts(tmp_path / "empty.raw") == []
    (tmp_path / "tiny.raw").write_bytes(b"abc")
    assert guess_layouts(tmp_path / "tiny.raw") == []


# -- .nhdr --------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", ["int16-big", "rgb", "float32-flip"])
def test_nhdr_reads_the_same_everywhere(tmp_path, case):
    import nrrd
    import SimpleITK as sitk

    (tmp_path / "data").mkdir()
    if case == "int16-big":
        data = unique((5, 6, 7), np.int16) - 100
        path = write_raw(tmp_path / "data" / "scan.raw", data.astype(">i2"), HEADER)
        layout = RawLayout(shape=(5, 6, 7), dtype="int16", byte_order="big", header=512, spacing=(0.5, 0.6, 1.5),
                           origin=(10, -20, 30))
    elif case == "rgb":
        data = (np.arange(2 * 3 * 4 * 3) * 7 % 256).astype(np.uint8).reshape(2, 3, 4, 3)
        path = write_raw(tmp_path / "data" / "scan.raw", data, b"\x01" * 33)
        layout = RawLayout(shape=(2, 3, 4), dtype="uint8", components=3, header=33)
    else:
        data = np.random.default_rng(2).normal(size=(4, 5, 6)).astype(np.float32)
        path = write_raw(tmp_path / "data" / "scan.raw", data)
        layout = RawLayout(shape=(4, 5, 6), dtype="float32", slice_flip=True, spacing=(1, 2, 3), origin=(1, 2, 3))
    nhdr = write_nhdr_for_raw(path, layout, tmp_path / "headers" / "scan.nhdr")
    text = nhdr.read_text()
    assert "data file: ../data/scan.raw" in text and "space: left-posterior-superior" in text
    assert ("byte skip:" in text) == (layout.header > 0)
    direct = read_raw(path, layout)

    [ours] = napari_medio.read(nhdr)
    assert np.array_equal(ours.to_numpy(), data) and ours.geometry.almost_equal(direct.geometry)

    arr, header = nrrd.read(str(nhdr), index_order="C")
    assert np.array_equal(arr, data)
    dirs = np.asarray(header["space directions"], dtype=float)
    dirs = dirs[np.all(np.isfinite(dirs), axis=1)]
    assert np.allclose(dirs.T, direct.geometry.direction * direct.geometry.spacing)
    assert np.allclose(header["space origin"], direct.geometry.origin)

    img = sitk.ReadImage(str(nhdr))
    assert np.array_equal(sitk.GetArrayFromImage(img), data)
    assert np.allclose(img.GetSpacing(), direct.geometry.spacing)
    assert np.allclose(img.GetOrigin(), direct.geometry.origin)
    assert np.allclose(np.reshape(img.GetDirection(), (3, 3)), direct.geometry.direction)


def test_nhdr_default_name_beside_the_file(tmp_path):
    path = write_raw(tmp_path / "vol.bin", unique((2, 3, 4), np.uint8))
    nhdr = write_nhdr_for_raw(path, RawLayout(shape=(2, 3, 4)))
    assert nhdr == tmp_path / "vol.nhdr" and "data file: vol.bin" in nhdr.read_text()
    assert "endian" not in nhdr.read_text()  # one-byte voxels have none
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".medio-")]  # atomic: no temporary left
    [vol] = napari_medio.read(nhdr)
    assert np.array_equal(vol.array, unique((2, 3, 4), np.uint8))


# -- registry -----------------------------------------------------------------------------------
def test_registry_reader_needs_the_layout_and_shows_the_best_guess(tmp_path):
    data = phantom()
    path = write_raw(tmp_path / "phantom.raw", data, bytes(range(256)) * 4)
    assert find_reader(path).name == "raw-volume"
    (tmp_path / "probe.mvl").write_bytes(b"\x01" * 64)
    assert find_reader(tmp_path / "probe.mvl").name == "raw-volume"
    with pytest.raises(FormatError) as err:
        napari_medio.read(path)
    text = str(err.value)
    assert "shape" in text and "dtype" in text and "header=" in text
    assert "best guess: shape=(64, 80, 96), dtype='int16', byte_order='little', header=1024" in text
    with pytest.raises(FormatError, match="dtype"):
        napari_medio.read(path, shape=(64, 80, 96))
    [vol] = napari_medio.read(path, shape=(64, 80, 96), dtype="int16", header=1024, spacing=(1, 1, 2))
    assert np.array_equal(vol.array, data) and np.allclose(vol.geometry.spacing, [1, 1, 2])
    assert vol.source == str(path)
    [vol2] = napari_medio.read(path, layout=RawLayout(shape=(64, 80, 96), dtype="int16", header=1024))
    assert np.array_equal(vol2.array, data)
    with pytest.raises(MedioError, match="invalid raw layout"):
        napari_medio.read(path, shape=(64, 80, 96), dtype="int16", header=-5)
    with pytest.raises(FormatError, match="bytes missing"):
        napari_medio.read(path, shape=(65, 80, 96), dtype="int16")


def test_registry_reader_points_at_a_header_beside_it(tmp_path):
    path = write_raw(tmp_path / "ct.raw", unique((2, 30, 30), np.uint8))
    (tmp_path / "ct.mhd").write_text("ObjectType = Image\n")
    with pytest.raises(FormatError, match="ct.mhd beside it"):
        napari_medio.read(path)
    (tmp_path / "empty.raw").write_bytes(b"")
    with pytest.raises(FormatError, match="empty"):
        napari_medio.read(tmp_path / "empty.raw")


def test_labelmap_option(tmp_path):
    path = write_raw(tmp_path / "seg.raw", unique((2, 3, 4), np.uint8) % 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        [vol] = napari_medio.read(path, shape=(2, 3, 4), dtype="uint8", labelmap=True)
    assert vol.kind == "labelmap"


def test_vol_that_is_not_ge_kretz_is_a_raw_volume(tmp_path):
    """.vol is GE Kretz when it has the signature; any other .vol is read as RawImageGuess reads it."""
    a = np.arange(2 * 16 * 24, dtype="<i2").reshape(2, 16, 24)
    p = tmp_path / "scan.vol"
    p.write_bytes(a.tobytes())
    assert find_reader(p).name == "raw-volume"
    with pytest.raises(FormatError, match="scan.vol: a headerless raw volume"):
        napari_medio.read(p)
    [v] = napari_medio.read(p, shape=(2, 16, 24), dtype="int16")
    assert np.array_equal(np.asarray(v.array), a)
    from tests.formats.test_kretz import kretz_bytes, sweep

    theta, phi = sweep(6, 5)
    p.write_bytes(kretz_bytes(np.zeros((5, 6, 7), np.uint8), theta=theta, phi=phi))
    assert find_reader(p).name == "ge-kretz"
