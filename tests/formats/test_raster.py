"""TIFF, PNG, JPEG, BMP: round trips, series, ITK-compatible spacing, fixtures, bad input."""
from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
import tifffile

import napari_medio
from napari_medio.core.errors import FormatError, MedioError
from napari_medio.core.geometry import Geometry
from napari_medio.core.volume import AxisInfo, Volume
from napari_medio.formats.raster import read_series
from tests.badfiles import assert_rejected, no_temp_files, variants
from tests.conftest import fixture_file
from tests.volumes import assert_same_volume, four_d, rgb_2d, scalar_3d, vector_3d

PICTURE = Geometry([0.5, 0.25], [0.0, 0.0], np.eye(2))
UNIT = Geometry([1.0, 1.0], [0.0, 0.0], np.eye(2))


def _picture(shape, dtype="uint8", seed=0):
    rng = np.random.default_rng(seed)
    hi = 65535 if dtype == "uint16" else 255
    return rng.integers(0, hi, shape, endpoint=True).astype(dtype)


def _colour(arr, geometry):
    comps = None
    if arr.ndim == geometry.ndim + 1:
        n = arr.shape[-1]
        kind = {3: "RGB-color", 4: "RGBA-color"}.get(n, "vector") if arr.dtype == np.uint8 else "vector"
        comps = AxisInfo(name="component", kind=kind)
    return Volume(arr, geometry, components=comps, name="pic")


# -- TIFF -------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "float32",
                                   "float64"])
def test_tiff_round_trip_3d_exact_geometry(tmp_path, dtype):
    vol = scalar_3d(dtype)  # oblique, flipped: kept exactly through the JSON description
    napari_medio.write(vol, tmp_path / "v.tif")
    assert_same_volume(vol, napari_medio.read(tmp_path / "v.tif")[0])
    assert no_temp_files(tmp_path)


def test_tiff_round_trip_2d_4d_vector_rgb(tmp_path):
    two_d = Volume(np.arange(35, dtype=np.uint16).reshape(5, 7), Geometry([0.3, 0.45], [-5.5, 7.25],
                                                                           [[0.0, 1.0], [1.0, 0.0]]))
    rgba = _colour(_picture((6, 7, 4)), PICTURE)
    for i, vol in enumerate((two_d, four_d(), vector_3d(), rgb_2d(), rgba)):
        napari_medio.write(vol, tmp_path / f"v{i}.tiff", compress=bool(i % 2))
        back = napari_medio.read(tmp_path / f"v{i}.tiff")[0]
        assert_same_volume(vol, back)
        assert back.is_rgb == vol.is_rgb


def test_tiff_keeps_label_map_kind(tmp_path):
    vol = scalar_3d("uint16", kind="labelmap")
    napari_medio.write(vol, tmp_path / "organs.tif")
    assert napari_medio.read(tmp_path / "organs.tif")[0].kind == "labelmap"
    assert napari_medio.read(tmp_path / "organs.tif", labelmap=False)[0].kind == "volume"


def test_tiff_series_round_trip(tmp_path):
    vol = scalar_3d("uint16")
    written = napari_medio.write(vol, tmp_path / "stack.tif", series=True)
    assert [p.rsplit("/", 1)[-1] for p in written] == [f"stack_{i:03d}.tif" for i in range(6)]
    [back] = napari_medio.read(written[3], series=True)
    assert_same_volume(vol, back)
    assert back.name == "stack"
    [frame] = napari_medio.read(written[3])
    assert np.array_equal(frame.array, vol.array[3])


def test_tiff_is_read_by_itk_with_the_same_spacing(tmp_path):
    vol = scalar_3d("int16", geometry=Geometry([0.5, 0.25, 2.0], [0, 0, 0], np.eye(3)))
    napari_medio.write(vol, tmp_path / "itk.tif")
    image = sitk.ReadImage(str(tmp_path / "itk.tif"))
    assert np.array_equal(sitk.GetArrayFromImage(image), vol.array)
    assert np.allclose(image.GetSpacing()[:2], [0.5, 0.25], atol=1e-6)


def test_plain_tiff_spacing_follows_itk(tmp_path):
    arr = _picture((3, 10, 12), "uint16")
    tifffile.imwrite(tmp_path / "inch.tif", arr, photometric="minisblack", resolution=(2.0, 4.0),
                     resolutionunit="INCH")
    tifffile.imwrite(tmp_path / "cm.tif", arr[0], resolution=(2.0, 4.0), resolutionunit="CENTIMETER")
    tifffile.imwrite(tmp_path / "none.tif", arr[0], resolution=(2.0, 4.0), resolutionunit="NONE")
    for name in ("inch.tif", "cm.tif", "none.tif"):
        [vol] = napari_medio.read(tmp_path / name)
        image = sitk.ReadImage(str(tmp_path / name))
        assert vol.shape == sitk.GetArrayFromImage(image).shape
        assert np.array_equal(vol.array, sitk.GetArrayFromImage(image))
        assert np.allclose(vol.geometry.spacing, image.GetSpacing(), atol=1e-9), name
    assert np.allclose(napari_medio.read(tmp_path / "inch.tif")[0].geometry.spacing, [12.7, 6.35, 1.0])
    # An RGB TIFF from another program.
    rgb = _picture((8, 9, 3))
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb")
    [vol] = napari_medio.read(tmp_path / "rgb.tif")
    assert vol.is_rgb and np.array_equal(vol.array, rgb)


# -- PNG, BMP, JPEG ------------------------------------------------------------------------------
@pytest.mark.parametrize("shape,dtype", [((6, 7), "uint8"), ((6, 7), "uint16"), ((6, 7, 2), "uint8"),
                                         ((6, 7, 3), "uint8"), ((6, 7, 4), "uint8"), ((6, 7, 3), "uint16")])
def test_png_round_trip(tmp_path, shape, dtype):
    vol = _colour(_picture(shape, dtype), PICTURE)
    napari_medio.write(vol, tmp_path / "p.png")
    back = napari_medio.read(tmp_path / "p.png")[0]
    assert_same_volume(vol, back)
    assert back.is_rgb == vol.is_rgb


@pytest.mark.parametrize("shape", [(6, 7), (6, 7, 3), (6, 7, 4)])
def test_bmp_round_trip(tmp_path, shape):
    vol = _colour(_picture(shape), UNIT)
    napari_medio.write(vol, tmp_path / "p.bmp")
    back = napari_medio.read(tmp_path / "p.bmp")[0]
    assert_same_volume(vol, back)  # 8-bit gray stays one channel (ITK alone gives RGB)


@pytest.mark.parametrize("shape", [(32, 40), (32, 40, 3)])
def test_jpeg_round_trip_is_lossy_but_close(tmp_path, shape):
    y, x = np.mgrid[:32, :40]
    smooth = (100 + 60 * np.sin(x / 7.0) * np.cos(y / 9.0)).astype(np.uint8)
    arr = np.stack([smooth, smooth[::-1], smooth[:, ::-1]], axis=-1) if len(shape) == 3 else smooth
    vol = _colour(arr, UNIT)
    napari_medio.write(vol, tmp_path / "p.jpg", quality=100)
    [back] = napari_medio.read(tmp_path / "p.jpg")
    assert back.shape == arr.shape and back.dtype == np.uint8 and back.is_rgb == vol.is_rgb
    assert np.abs(back.to_numpy().astype(int) - arr).max() <= 8
    assert back.geometry.almost_equal(UNIT)


def test_pictures_hold_one_frame_unless_series(tmp_path):
    vol = Volume(_picture((4, 6, 7)), Geometry([0.5, 0.25, 3.0], [0, 0, 0], np.eye(3)), name="s")
    for ext in (".png", ".jpg", ".bmp"):
        with pytest.raises(MedioError, match="series=True"):
            napari_medio.write(vol, tmp_path / f"s{ext}")
    written = napari_medio.write(vol, tmp_path / "s.png", series=True)
    assert len(written) == 4 and no_temp_files(tmp_path)
    [back] = napari_medio.read(written[0], series=True)
    assert np.array_equal(back.array, vol.array)
    assert np.allclose(back.geometry.spacing, [0.5, 0.25, 1.0])
    with pytest.raises(MedioError, match="allow_direction_loss"):
        napari_medio.write(Volume(_picture((6, 7)), Geometry([1, 1], [0, 0], [[0, 1], [1, 0]])), tmp_path / "d.png")
    with pytest.raises(MedioError):
        napari_medio.write(Volume(np.zeros((6, 7), np.int16), UNIT), tmp_path / "i.png")


def test_series_numeric_order_and_helper(tmp_path):
    frames = {n: _picture((5, 6), seed=n) for n in (8, 9, 10, 11)}
    for n, arr in frames.items():
        napari_medio.write(Volume(arr, UNIT), tmp_path / f"slice_{n}.png")
    napari_medio.write(Volume(_picture((5, 6)), UNIT), tmp_path / "other_1.png")
    [vol] = napari_medio.read(tmp_path / "slice_10.png", series=True)
    assert vol.shape == (4, 5, 6)
    assert np.array_equal(vol.array, np.stack([frames[n] for n in (8, 9, 10, 11)]))
    assert vol.name == "slice"
    mixed = read_series([tmp_path / "slice_9.png", tmp_path / "slice_8.png"], spacing=2.5)
    assert np.array_equal(mixed.array[0], frames[9]) and mixed.geometry.spacing[2] == 2.5
    napari_medio.write(Volume(_picture((3, 3)), UNIT), tmp_path / "odd_1.png")
    napari_medio.write(Volume(_picture((5, 6)), UNIT), tmp_path / "odd_2.png")
    with pytest.raises(FormatError, match="unlike the first frame"):
        napari_medio.read(tmp_path / "odd_1.png", series=True)


# -- fixtures ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("rel,shape,rgb,stats", [
    ("images/itkelastix/lung_sem_s00_01.png", (800, 800), False, (2, 210, 1.1529e8)),
    ("images/highdicom_frame_rgb.jpeg", (80, 80, 3), True, (0, 255, 2.448e6)),
    ("images/pyvista/pyvista_logo.png", (592, 1389, 4), True, (0, 255, 5.65294e8)),
])
def test_conformance(rel, shape, rgb, stats):
    [vol] = napari_medio.read(fixture_file(rel))
    a = vol.to_numpy()
    assert a.shape == shape and a.dtype == np.uint8 and vol.is_rgb == rgb
    assert vol.geometry.almost_equal(UNIT, 1e-4)
    assert a.min() == stats[0] and a.max() == stats[1]
    assert np.isclose(a.sum(dtype=np.float64), stats[2], rtol=1e-5)


# -- bad input ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("ext", [".tif", ".png", ".jpg", ".bmp"])
def test_bad_input(tmp_path, ext):
    y, x = np.mgrid[:40, :50]
    arr = ((x * 5 + y * 3) % 256).astype(np.uint8)
    good = tmp_path / f"good{ext}"
    napari_medio.write(Volume(arr, UNIT), good)
    cuts = {".tif": (-1, 300), ".png": (60,), ".jpg": (-3, 400), ".bmp": (-1, 100)}[ext]
    assert_rejected(variants(tmp_path, good, ext, cuts))
    assert_rejected(variants(tmp_path, good, ext, cuts), series=True)
