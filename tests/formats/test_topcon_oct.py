"""Topcon OCT (.fda / .fds), read from files built byte by byte here.

No real Topcon file was available (none under /work/shared/fixtures; Slicer's test file
OS_260397.fda is a download not present here).  The files below follow the layout as
oct-converter 0.7.0 parses it (``oct_converter/readers/fda.py``, ``fds.py`` and their
``binary_structs``) and the uocte "Topcon File Format" description: the 15-byte ``FOCT``
header, named chunks, and the chunk structures of the library.  Expected values are
computed independently here: voxels from the bytes written, spacing from the
PARAM_SCAN values, the placement from Slicer's ImportOCT IJK-to-RAS matrix.
"""
from __future__ import annotations

import contextlib
import io
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import napari_medio
from napari_medio.core.errors import FormatError, MedioError
from napari_medio.core.geometry import Geometry
from napari_medio.core.registry import find_reader
from napari_medio.formats import topcon_oct
from tests.badfiles import assert_rejected, variants


@pytest.fixture
def lib():
    """oct-converter (and Pillow, which it brings): the tests that decode need it."""
    pytest.importorskip("oct_converter")
    return pytest.importorskip("PIL.Image")


# -- building files -------------------------------------------------------------------------------
def chunk(name: bytes, data: bytes) -> bytes:
    return bytes([len(name)]) + name + struct.pack("<I", len(data)) + data


def topcon(chunks: list[bytes], file_type: bytes = b"FDA", terminate: bool = True) -> bytes:
    return b"FOCT" + file_type + struct.pack("<II", 2, 1000) + b"".join(chunks) + (b"\0" if terminate else b"")


def s(text: str | bytes, n: int) -> bytes:
    raw = text.encode("latin-1") if isinstance(text, str) else text
    return raw.ljust(n, b"\0")[:n]


def file_info() -> bytes:
    return chunk(b"@FDA_FILE_INFO", struct.pack("<II", 2, 1000) + s("8.0.1.20198", 32))


def hw_info(model: str = "3D OCT-1 Maestro") -> bytes:
    data = s(model, 16) + s("SN-4711", 16) + s("", 16) + s("1.24", 16) + s("", 16)
    data += struct.pack("<10H", 2019, 5, 6, 7, 8, 2020, 1, 2, 3, 4)
    return chunk(b"@HW_INFO_03", data)


def patient_info(pid: str = "PAT-0042", first: str = "Ada", last: str = "Lovelace", sex: int = 2,
                 birth=(1960, 12, 10)) -> bytes:
    data = s(pid, 32) + s(first, 32) + s(last, 32) + s("", 8) + bytes([sex]) + struct.pack("<3H", *birth)
    return chunk(b"@PATIENT_INFO_02", data.ljust(615, b"\0"))


def capture_info(eye: int = 1, date=(2021, 3, 4, 10, 20, 30)) -> bytes:
    data = bytes([eye, 3]) + struct.pack("<I", 99) + s("Macula 3D", 100) + struct.pack("<6H", *date)
    return chunk(b"@CAPTURE_INFO_02", data)


def param_scan_04(x_mm: float, y_mm: float, z_um: float) -> bytes:
    data = struct.pack("<III", 2, 0, 0) + struct.pack("<5d", x_mm, y_mm, z_um, 0.0, 0.0) + bytes([1, 1])
    return chunk(b"@PARAM_SCAN_04", data)


def param_scan_02(x_mm: float, y_mm: float, z_um: float) -> bytes:
    data = bytes([3]) + struct.pack("<5I", 0, 2, 0, 0, 0) + struct.pack("<7d", x_mm, y_mm, z_um, 0, 0, 0, 0)
    return chunk(b"@PARAM_SCAN_02", data + bytes([1]))


def mot_comp_03(vol: np.ndarray, name: bytes = b"@IMG_MOT_COMP_03") -> bytes:
    """uint16 B-scans (B-scan, row, column), width fastest."""
    n, h, w = vol.shape
    data = bytes([3]) + struct.pack("<4I", w, h, 16, n) + bytes([0]) + struct.pack("<I", vol.size * 2)
    return chunk(name, data + vol.astype("<u2").tobytes())


def encode(image: np.ndarray, fmt: str = "JPEG", **kw) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(image).save(out, format=fmt, **kw)
    return out.getvalue()


def img_jpeg(bscans: list[bytes], w: int, h: int) -> bytes:
    data = bytes([3]) + struct.pack("<6I", 0, 0, w, h, len(bscans), 0)
    for blob in bscans:
        data += struct.pack("<I", len(blob)) + blob
    return chunk(b"@IMG_JPEG", data)


def img_fundus(picture: bytes, w: int, h: int) -> bytes:
    return chunk(b"@IMG_FUNDUS", struct.pack("<4I", w, h, 24, 1) + b"JPEG" + struct.pack("<I", len(picture))
                 + picture)


def img_trc_02(picture: bytes, w: int, h: int) -> bytes:
    return chunk(b"@IMG_TRC_02", struct.pack("<4I", w, h, 8, 2) + bytes([0]) + struct.pack("<I", len(picture))
                 + picture)


def contour(layer_id: str, values: np.ndarray) -> bytes:
    """One @CONTOUR_INFO: uint16 heights from the B-scan bottom, (B-scan, column) row-major."""
    nb, na = values.shape
    data = s(layer_id, 20) + bytes([0, 0]) + struct.pack("<3I", na, nb, values.size * 2)
    return chunk(b"@CONTOUR_INFO", data + values.astype("<u2").tobytes() + s("8.0.1.21781", 32))


def smooth_bscan(h: int, w: int, seed: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return (60 + 40 * np.sin(x / 5.0 + seed) + 30 * np.cos(y / 7.0 - seed)).astype(np.uint8)


# -- the OCT volume ---------------------------------------------------------------------------------
N, H, W = 3, 10, 8          # B-scans, rows (depth), columns
X_MM, Y_MM, Z_UM = 6.0, 6.0, 2.6


@pytest.fixture
def raw_volume() -> np.ndarray:
    return np.random.default_rng(3).integers(0, 65535, size=(N, H, W), dtype=np.uint16)


@pytest.fixture
def mot_file(tmp_path, raw_volume) -> Path:
    p = tmp_path / "OD_scan.fda"
    p.write_bytes(topcon([file_info(), hw_info(), patient_info(), capture_info(), param_scan_04(X_MM, Y_MM, Z_UM),
                          mot_comp_03(raw_volume)]))
    return p


def test_uncompressed_volume_voxels_spacing_and_slicer_placement(lib, mot_file, raw_volume):
    out = napari_medio.read(mot_file)
    assert len(out) == 1  # no fundus in this file
    vol = out[0]
    assert vol.name == "OD_scan"
    assert vol.dtype == np.uint16
    # Slicer's array: [row, column, B-scan]
    assert vol.shape == (H, W, N)
    np.testing.assert_array_equal(vol.to_numpy(), raw_volume.transpose(1, 2, 0))
    assert vol.to_numpy()[7, 5, 2] == raw_volume[2, 7, 5]
    # oct-converter's spacing: i = y / B-scans, j = x / width, k = z um / 1000
    np.testing.assert_allclose(vol.geometry.spacing, [Y_MM / N, X_MM / W, Z_UM / 1000], rtol=0, atol=1e-12)
    np.testing.assert_allclose(vol.geometry.origin, [0, 0, 0], atol=0)
    # Slicer ImportOCT: IJK-to-RAS [[0,1,0],[0,0,-1],[-1,0,0]] (spacing 1 there; ours scaled per axis)
    ijk_to_ras = np.eye(4)
    ijk_to_ras[:3, :3] = np.array([[0, 1, 0], [0, 0, -1], [-1, 0, 0]]) * vol.geometry.spacing
    slicer = Geometry.from_index_to_ras(ijk_to_ras)
    assert vol.geometry.almost_equal(slicer, tol=1e-9)
    # voxel (i=2 B-scan, j=5 column, k=7 row) in LPS mm
    np.testing.assert_allclose(vol.geometry.index_to_lps([2, 5, 7]),
                               [-5 * X_MM / W, 7 * Z_UM / 1000, -2 * Y_MM / N], atol=1e-6)
    assert np.linalg.det(vol.geometry.direction) == pytest.approx(1.0)


def test_metadata_from_information_chunks(lib, mot_file):
    vol = napari_medio.read(mot_file)[0]
    md = vol.metadata["topcon"]
    assert md["patient_id"] == "PAT-0042"
    assert md["first_name"] == "Ada" and md["last_name"] == "Lovelace"
    assert md["sex"] == "F"
    assert md["birth_date"] == "1960-12-10T00:00:00"
    assert md["acquisition_date"] == "2021-03-04T10:20:30"
    assert md["laterality"] == "L"
    assert md["file_type"] == "FDA" and md["version"] == [2, 1000]
    assert md["oct_chunk"] == "@IMG_MOT_COMP_03"
    assert md["oct_header"]["width"] == W and md["oct_header"]["number_slices"] == N
    assert md["chunks"] == ["@FDA_FILE_INFO", "@HW_INFO_03", "@PATIENT_INFO_02", "@CAPTURE_INFO_02",
                            "@PARAM_SCAN_04", "@IMG_MOT_COMP_03"]
    assert md["pixel_spacing"] == pytest.approx([X_MM / W, Y_MM / N, Z_UM / 1000])
    assert md["spacing_defaulted"] == []
    info = md["info"]
    assert info["hw_info_03"]["model_name"] == "3D OCT-1 Maestro"
    assert info["hw_info_03"]["serial_number"] == "SN-4711"
    assert info["hw_info_03"]["eq_calib_year"] == 2019
    assert info["fda_file_info"]["8.0.1.20198"] == list(s("8.0.1.20198", 32))
    assert info["capture_info_02"]["label"] == "Macula 3D"
    assert info["capture_info_02"]["cap_date"] == [2021, 3, 4, 10, 20, 30]
    assert info["param_scan_04"]["z_resolution_um"] == pytest.approx(Z_UM)
    assert info["patient_info_02"]["birth_date"] == [1960, 12, 10]
    assert md["unparsed_chunks"] == []
    assert md["contours"] == {}
    import json

    json.dumps({k: v for k, v in md.items() if k != "contours"})  # plain Python values


def test_jpeg_bscans_decode_like_pillow(lib, tmp_path):
    from PIL import Image

    h, w = 24, 16
    sources = [smooth_bscan(h, w, s_) for s_ in range(4)]
    blobs = [encode(b, quality=95) for b in sources]
    p = tmp_path / "jpeg.fda"
    p.write_bytes(topcon([param_scan_04(3.0, 2.0, 2.6), img_jpeg(blobs, w, h), capture_info(eye=0)]))
    vol = napari_medio.read(p)[0]
    assert vol.shape == (h, w, 4) and vol.dtype == np.uint8
    for i, blob in enumerate(blobs):
        expected = np.asarray(Image.open(io.BytesIO(blob)))
        np.testing.assert_array_equal(vol.to_numpy()[:, :, i], expected)
        assert np.abs(vol.to_numpy()[:, :, i].astype(int) - sources[i]).max() <= 8  # the right picture
    np.testing.assert_allclose(vol.geometry.spacing, [2.0 / 4, 3.0 / w, 0.0026], atol=1e-12)
    md = vol.metadata["topcon"]
    assert md["oct_chunk"] == "@IMG_JPEG" and md["laterality"] == "R"
    assert md["patient_id"] is None and md["sex"] == ""


def test_jpeg_preferred_over_uncompressed_as_oct_converter(lib, tmp_path, raw_volume):
    h, w = 10, 8
    blobs = [encode(smooth_bscan(h, w, i)) for i in range(2)]
    p = tmp_path / "both.fda"
    p.write_bytes(topcon([mot_comp_03(raw_volume), img_jpeg(blobs, w, h)]))
    vol = napari_medio.read(p)[0]
    assert vol.metadata["topcon"]["oct_chunk"] == "@IMG_JPEG"
    assert vol.shape == (h, w, 2)


def test_param_scan_02_and_no_terminator(lib, tmp_path, raw_volume):
    p = tmp_path / "old.fda"
    p.write_bytes(topcon([param_scan_02(4.0, 1.5, 3.5), mot_comp_03(raw_volume)], terminate=False))
    vol = napari_medio.read(p)[0]
    np.testing.assert_allclose(vol.geometry.spacing, [1.5 / N, 4.0 / W, 0.0035], atol=1e-12)


def test_no_scan_parameters_gives_unit_spacing(lib, tmp_path, raw_volume):
    p = tmp_path / "nospacing.fda"
    p.write_bytes(topcon([mot_comp_03(raw_volume)]))
    vol = napari_medio.read(p)[0]
    np.testing.assert_allclose(vol.geometry.spacing, [1, 1, 1])
    assert vol.metadata["topcon"]["spacing_defaulted"] == ["i", "j", "k"]
    assert vol.metadata["topcon"]["pixel_spacing"] is None
    assert vol.metadata["topcon"]["acquisition_date"] is None


def test_zero_scan_length_defaults_that_axis(lib, tmp_path, raw_volume):
    p = tmp_path / "line.fda"
    p.write_bytes(topcon([param_scan_04(6.0, 0.0, 2.6), mot_comp_03(raw_volume)]))
    vol = napari_medio.read(p)[0]
    np.testing.assert_allclose(vol.geometry.spacing, [1.0, 6.0 / W, 0.0026], atol=1e-12)
    assert vol.metadata["topcon"]["spacing_defaulted"] == ["i"]


# -- fundus pictures --------------------------------------------------------------------------------
def test_colour_fundus_is_rgb_volume_flipped_from_bgr(lib, tmp_path, raw_volume):
    rgb = np.zeros((12, 20, 3), np.uint8)
    rgb[:6, :, 0] = 200          # red top half
    rgb[6:, :, 2] = 180          # blue bottom half
    rgb[:, :5, 1] = 90           # some green on the left
    bgr = rgb[..., ::-1].copy()  # Topcon stores BGR (oct-converter flips it back)
    gray = smooth_bscan(9, 11, 5)
    p = tmp_path / "withfundus.fda"
    p.write_bytes(topcon([capture_info(eye=0), mot_comp_03(raw_volume), img_fundus(encode(bgr, "PNG"), 20, 12),
                          img_trc_02(encode(gray, "PNG"), 11, 9)]))
    out = napari_medio.read(p)
    assert [v.name for v in out] == ["withfundus", "withfundus_fundus", "withfundus_fundus_gray"]
    fundus, trc = out[1], out[2]
    assert fundus.is_rgb and fundus.shape == (12, 20, 3)
    np.testing.assert_array_equal(fundus.to_numpy(), rgb)
    assert fundus.geometry.ndim == 2
    np.testing.assert_allclose(fundus.geometry.spacing, [1, 1])
    np.testing.assert_allclose(fundus.geometry.direction, np.eye(2))
    assert fundus.metadata["topcon"]["image"] == "@IMG_FUNDUS"
    assert fundus.metadata["topcon"]["laterality"] == "R"
    assert trc.components is None and trc.shape == (9, 11)
    np.testing.assert_array_equal(trc.to_numpy(), gray)
    # fundus=False: the OCT volume only
    assert len(napari_medio.read(p, fundus=False)) == 1


def test_jpeg_fundus(lib, tmp_path, raw_volume):
    rgb = np.zeros((16, 16, 3), np.uint8)
    rgb[..., 0] = 220
    p = tmp_path / "jpegfundus.fda"
    p.write_bytes(topcon([mot_comp_03(raw_volume), img_fundus(encode(rgb[..., ::-1].copy(), quality=95), 16, 16)]))
    fundus = napari_medio.read(p)[1]
    mean = fundus.to_numpy().reshape(-1, 3).mean(axis=0)
    assert mean[0] > 200 and mean[1] < 20 and mean[2] < 20  # red, not blue


# -- layer contours ----------------------------------------------------------------------------------
def test_contours_in_metadata_and_as_lps_points(lib, tmp_path, raw_volume):
    rng = np.random.default_rng(11)
    ilm = rng.integers(1, H, size=(N, W)).astype(np.uint16)
    bm = rng.integers(1, H, size=(N, W)).astype(np.uint16)
    bm[1, 3] = 65535  # Topcon's "no boundary here"
    p = tmp_path / "contours.fda"
    p.write_bytes(topcon([param_scan_04(X_MM, Y_MM, Z_UM), mot_comp_03(raw_volume), contour("MULTILAYERS_1", ilm),
                          contour("MULTILAYERS_7", bm), contour("CUSTOM_X", ilm)]))
    vol = napari_medio.read(p)[0]
    contours = vol.metadata["topcon"]["contours"]
    assert sorted(contours) == ["BM", "CUSTOM_X", "ILM"]
    # oct-converter: rows from the top = height - value, B-scan order reversed
    np.testing.assert_array_equal(contours["ILM"], (H - ilm[::-1].astype(float)).astype(np.float32))
    expected_bm = (H - bm[::-1].astype(float))
    expected_bm[expected_bm < 0] = np.nan
    np.testing.assert_array_equal(contours["BM"], expected_bm.astype(np.float32))
    assert np.isnan(contours["BM"][N - 1 - 1, 3])
    pts = topcon_oct.contour_points(vol, "BM")
    assert pts.shape == (N * W - 1, 3)
    # first point: B-scan 0, column 0, row contours["BM"][0, 0]
    k = float(contours["BM"][0, 0])
    np.testing.assert_allclose(pts[0], vol.geometry.index_to_lps([0, 0, k]), atol=1e-9)
    np.testing.assert_allclose(pts[0], [0.0, k * Z_UM / 1000, 0.0], atol=1e-6)
    with pytest.raises(MedioError, match="no layer contour"):
        topcon_oct.contour_points(vol, "RPE")


def test_single_contour_chunk(lib, tmp_path, raw_volume):
    ilm = np.full((N, W), 4, np.uint16)
    p = tmp_path / "onecontour.fda"
    p.write_bytes(topcon([mot_comp_03(raw_volume), contour("MULTILAYERS_1", ilm)]))
    contours = napari_medio.read(p)[0].metadata["topcon"]["contours"]
    np.testing.assert_array_equal(contours["ILM"], np.full((N, W), H - 4, np.float32))


# -- conformance with oct-converter's own readers ------------------------------------------------------
class _FromstringShim:
    """NumPy with the binary ``fromstring`` oct-converter 0.7.0 calls (removed in NumPy 2.3)."""

    def __getattr__(self, name):
        return getattr(np, name)

    @staticmethod
    def fromstring(data, dtype=float):
        return np.frombuffer(data, dtype=dtype)


def test_same_as_oct_converter_fda(lib, tmp_path, monkeypatch, raw_volume):
    """oct-converter's FDA reader (given back ``fromstring``) and this reader agree on one file."""
    from oct_converter.readers import fda as fda_module

    monkeypatch.setattr(fda_module, "np", _FromstringShim())
    ilm = np.random.default_rng(2).integers(1, H, size=(N, W)).astype(np.uint16)
    rgb = np.random.default_rng(4).integers(0, 255, size=(5, 6, 3), dtype=np.uint8)
    for oct_chunk in ("jpeg", "raw"):
        if oct_chunk == "jpeg":
            image = img_jpeg([encode(smooth_bscan(H, W, i)) for i in range(N)], W, H)
        else:
            image = mot_comp_03(raw_volume)
        p = tmp_path / f"{oct_chunk}.fda"
        p.write_bytes(topcon([file_info(), hw_info(), patient_info(), capture_info(), param_scan_04(X_MM, Y_MM, Z_UM),
                              image, img_fundus(encode(rgb, "PNG"), 6, 5), contour("MULTILAYERS_1", ilm),
                              contour("MULTILAYERS_7", ilm + 1)]))  # its own index needs >= 2 contours
        ref = fda_module.FDA(p)
        with contextlib.redirect_stdout(io.StringIO()):
            ref_vol = ref.read_oct_volume()
            ref_fundus = ref.read_fundus_image()
        vol, fundus = napari_medio.read(p)
        # Slicer's octVolumeArray[:, :, b] = volume[b]
        np.testing.assert_array_equal(vol.to_numpy(), np.stack(ref_vol.volume, axis=-1))
        i, j, k = 1, 2, 3
        assert ref_vol.pixel_spacing == pytest.approx([vol.geometry.spacing[j - 1], vol.geometry.spacing[i - 1],
                                                       vol.geometry.spacing[k - 1]])
        md = vol.metadata["topcon"]
        assert md["patient_id"] == ref_vol.patient_id and md["first_name"] == ref_vol.first_name
        assert md["last_name"] == ref_vol.surname and md["sex"] == ref_vol.sex
        assert md["laterality"] == ref_vol.laterality
        assert md["birth_date"] == ref_vol.DOB.isoformat()
        assert md["acquisition_date"] == ref_vol.acquisition_date.isoformat()
        for layer in ("ILM", "BM"):
            np.testing.assert_array_equal(md["contours"][layer], ref_vol.contours[layer])
        np.testing.assert_array_equal(fundus.to_numpy(), ref_fundus.image)
        for key, value in ref_vol.metadata.items():
            assert md["info"][key] == _plain_ref(value), key


def _plain_ref(value):
    if isinstance(value, dict):
        return {k: _plain_ref(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain_ref(v) for v in value]
    return value


def test_same_as_oct_converter_fds(lib, tmp_path, monkeypatch, raw_volume):
    from oct_converter.readers import fds as fds_module

    monkeypatch.setattr(fds_module, "np", _FromstringShim())
    rgb = np.random.default_rng(6).integers(0, 255, size=(6, 7, 3), dtype=np.uint8)
    obs = chunk(b"@IMG_OBS", struct.pack("<4I", 7, 6, 24, 1) + bytes([0]) + struct.pack("<I", rgb.size)
                + rgb.tobytes())
    p = tmp_path / "ref.fds"
    p.write_bytes(topcon([patient_info(), capture_info(), param_scan_04(6.0, 3.0, 3.5),
                          mot_comp_03(raw_volume, b"@IMG_SCAN_03"), obs]))
    ref = fds_module.FDS(p)
    with contextlib.redirect_stdout(io.StringIO()):
        ref_vol = ref.read_oct_volume()
        ref_fundus = ref.read_fundus_image()
    vol, fundus = napari_medio.read(p)
    np.testing.assert_array_equal(vol.to_numpy(), np.stack(ref_vol.volume, axis=-1))
    sp = vol.geometry.spacing
    assert ref_vol.pixel_spacing == pytest.approx([sp[1], sp[0], sp[2]])
    np.testing.assert_array_equal(fundus.to_numpy(), ref_fundus.image.astype(np.uint8))
    assert vol.metadata["topcon"]["patient_id"] == ref_vol.patient_id


# -- .fds --------------------------------------------------------------------------------------------
def test_fds_volume_and_fundus(lib, tmp_path, raw_volume):
    rgb = np.random.default_rng(5).integers(0, 255, size=(6, 7, 3), dtype=np.uint8)
    bgr = rgb[..., ::-1]
    obs = chunk(b"@IMG_OBS", struct.pack("<4I", 7, 6, 24, 1) + bytes([0]) + struct.pack("<I", bgr.size)
                + bgr.tobytes())
    p = tmp_path / "biobank.fds"
    p.write_bytes(topcon([patient_info(pid="UKB1", sex=1), capture_info(eye=0), param_scan_04(6.0, 6.0, 3.5),
                          mot_comp_03(raw_volume, b"@IMG_SCAN_03"), obs]))
    assert find_reader(p).name == "topcon-oct"
    vol, fundus = napari_medio.read(p)
    np.testing.assert_array_equal(vol.to_numpy(), raw_volume.transpose(1, 2, 0))
    np.testing.assert_allclose(vol.geometry.spacing, [6.0 / N, 6.0 / W, 0.0035], atol=1e-12)
    md = vol.metadata["topcon"]
    assert md["oct_chunk"] == "@IMG_SCAN_03"
    assert md["patient_id"] == "UKB1" and md["sex"] == "M" and md["laterality"] == "R"
    assert fundus.is_rgb and fundus.name == "biobank_fundus"
    np.testing.assert_array_equal(fundus.to_numpy(), rgb)


# -- robustness of metadata ------------------------------------------------------------------------
def test_unparsable_information_chunk_is_listed_not_fatal(lib, tmp_path, raw_volume):
    align = chunk(b"@ALIGN_INFO", bytes([0, 0]) + struct.pack("<II", 0xFFFFFFFF, 4) + bytes(16))
    big = chunk(b"@THUMBNAIL", struct.pack("<I", 4) + bytes(4_000_000))
    p = tmp_path / "odd.fda"
    p.write_bytes(topcon([patient_info(first="Zoë"), align, mot_comp_03(raw_volume), big]))
    vol = napari_medio.read(p)[0]
    md = vol.metadata["topcon"]
    assert "@PATIENT_INFO_02" in md["unparsed_chunks"]  # oct-converter's strings are ASCII
    assert "@ALIGN_INFO" in md["unparsed_chunks"]
    assert md["patient_id"] is None
    assert md["info"]["thumbnail"] == {"size": 4}
    np.testing.assert_array_equal(vol.to_numpy(), raw_volume.transpose(1, 2, 0))


# -- registry ---------------------------------------------------------------------------------------
def test_registered_and_sniffed(lib, mot_file, tmp_path):
    fmt = find_reader(mot_file)
    assert fmt.name == "topcon-oct" and fmt.write is None
    assert set(fmt.extensions) == {".fda", ".fds"}
    assert topcon_oct.sniff(mot_file.read_bytes()[:4096], mot_file)
    assert not topcon_oct.sniff(b"FOCT\x00\x01\x02" + bytes(8), mot_file)
    assert not topcon_oct.sniff(b"\x89PNG\r\n\x1a\n" + bytes(16), mot_file)
    # the content decides under a wrong extension
    other = tmp_path / "scan.dat"
    other.write_bytes(mot_file.read_bytes())
    assert find_reader(other).name == "topcon-oct"


def test_cli_description_and_info(lib, mot_file):
    vol = napari_medio.read(mot_file)[0]
    info = vol.info()
    assert info["shape"] == [H, W, N]
    assert vol.source == os.fspath(mot_file)


# -- bad input ----------------------------------------------------------------------------------------
def test_bad_files_raise_format_error(lib, tmp_path, mot_file):
    good = tmp_path / "ok.fda"
    good.write_bytes(mot_file.read_bytes())
    bad = variants(tmp_path, good, ".fda", cuts=(3, 10, 15, 20, 40, -2, -100))
    assert_rejected(bad)
    for p in bad:  # the reader itself, not only through the registry
        with pytest.raises(FormatError) as info:
            topcon_oct.read(p)
        assert str(p) in str(info.value)


def _rejects(p: Path, match: str) -> None:
    with pytest.raises(FormatError, match=match) as info:
        topcon_oct.read(p)
    assert str(p) in str(info.value)
    with pytest.raises(FormatError):
        napari_medio.read(p)


def test_not_topcon_under_fda_extension(lib, tmp_path):
    p = tmp_path / "png.fda"
    p.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    _rejects(p, "not a Topcon OCT file")
    q = tmp_path / "wrongtype.fda"
    q.write_bytes(b"FOCT\x01\x02\x03" + bytes(40))
    _rejects(q, "not a Topcon OCT file")


def test_header_only_and_no_oct_chunk(lib, tmp_path):
    p = tmp_path / "empty.fda"
    p.write_bytes(topcon([file_info(), patient_info()]))
    _rejects(p, "no OCT volume")
    q = tmp_path / "scan02.fda"
    q.write_bytes(topcon([chunk(b"@IMG_SCAN_02", bytes(64))]))
    _rejects(q, "IMG_SCAN_02")


def test_corrupt_chunk_list(lib, tmp_path, raw_volume):
    p = tmp_path / "noat.fda"
    p.write_bytes(topcon([chunk(b"XIMG", bytes(10))]))
    _rejects(p, "does not start with '@'")
    q = tmp_path / "beyond.fda"
    q.write_bytes(topcon([]) [:-1] + bytes([4]) + b"@ABC" + struct.pack("<I", 1 << 31) + bytes(10))
    _rejects(q, "truncated")


def test_impossible_sizes(lib, tmp_path):
    # a header that claims more voxels than the chunk holds
    data = bytes([3]) + struct.pack("<4I", 1 << 15, 1 << 15, 16, 1 << 15) + bytes([0]) + struct.pack("<I", 0)
    p = tmp_path / "huge.fda"
    p.write_bytes(topcon([chunk(b"@IMG_MOT_COMP_03", data + bytes(100))]))
    _rejects(p, "truncated")
    # zero B-scans
    data0 = bytes([3]) + struct.pack("<4I", 8, 10, 16, 0) + bytes([0]) + struct.pack("<I", 0)
    z = tmp_path / "zero.fda"
    z.write_bytes(topcon([chunk(b"@IMG_MOT_COMP_03", data0)]))
    _rejects(z, "corrupt")
    # a JPEG B-scan size running past its chunk, and one that is not a picture
    j = tmp_path / "jpegsize.fda"
    j.write_bytes(topcon([chunk(b"@IMG_JPEG", bytes([3]) + struct.pack("<6I", 0, 0, 8, 8, 2, 0)
                                + struct.pack("<I", 1000) + bytes(20))]))
    _rejects(j, "B-scan 0")
    short = tmp_path / "jpegshort.fda"
    blob = encode(smooth_bscan(8, 8, 0))
    short.write_bytes(topcon([chunk(b"@IMG_JPEG", bytes([3]) + struct.pack("<6I", 0, 0, 8, 8, 2, 0)
                                    + struct.pack("<I", len(blob)) + blob + b"\0\0")]))
    _rejects(short, "ends before B-scan 1")
    g = tmp_path / "jpeggarbage.fda"
    g.write_bytes(topcon([img_jpeg([bytes(range(200))], 8, 8)]))
    _rejects(g, "not a readable picture")
    # a fundus picture that claims more bytes than its chunk
    f = tmp_path / "fundus.fda"
    f.write_bytes(topcon([mot_comp_03(np.zeros((1, 2, 2), np.uint16)),
                          chunk(b"@IMG_FUNDUS", struct.pack("<4I", 4, 4, 24, 1) + b"JPEG" + struct.pack("<I", 999))]))
    _rejects(f, "IMG_FUNDUS")
    # a fundus that is not a picture
    f2 = tmp_path / "fundus2.fda"
    f2.write_bytes(topcon([mot_comp_03(np.zeros((1, 2, 2), np.uint16)), img_fundus(bytes(50), 4, 4)]))
    _rejects(f2, "IMG_FUNDUS")
    # contours that do not fit their chunk
    c = tmp_path / "contour.fda"
    c.write_bytes(topcon([mot_comp_03(np.zeros((1, 2, 2), np.uint16)),
                          chunk(b"@CONTOUR_INFO", s("MULTILAYERS_1", 20) + bytes(2) + struct.pack("<3I", 1 << 20, 1 << 20, 0))]))
    _rejects(c, "CONTOUR_INFO")
    # a scan-parameter chunk too short for its structure
    ps = tmp_path / "param.fda"
    ps.write_bytes(topcon([mot_comp_03(np.zeros((1, 2, 2), np.uint16)), chunk(b"@PARAM_SCAN_04", bytes(10))]))
    _rejects(ps, "PARAM_SCAN")


def test_missing_library_says_which_extra(tmp_path, monkeypatch, mot_file):
    monkeypatch.setattr(topcon_oct, "_LIB", None)
    for name in [m for m in sys.modules if m == "oct_converter" or m.startswith("oct_converter.")] or ["oct_converter"]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(MedioError, match=r"pip install napari-medio\[oct\]") as info:
        napari_medio.read(mot_file)
    assert str(mot_file) in str(info.value)
    assert not isinstance(info.value, FormatError)


def test_importing_the_library_leaves_qt_environment_alone(lib):
    code = ("import os\n"
            "from napari_medio.formats import topcon_oct\n"
            "topcon_oct._library(None)\n"
            "import cv2\n"
            "print(repr(os.environ.get('QT_QPA_PLATFORM_PLUGIN_PATH')), repr(os.environ.get('QT_QPA_FONTDIR')))\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("QT_QPA")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120,
                         cwd=Path(__file__).resolve().parents[2], check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "None None"
