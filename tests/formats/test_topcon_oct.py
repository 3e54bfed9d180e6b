"""Topcon OCT (.fda / .fds), read from files built byte by byte here.

No real Topcon file was available (none in tests/data; Slicer's test file
OS_260397.fda is a download not present here).  The files below follow the layout as
oct-converter 0.7.0 parses it (``oct_converter/readers/fda.py``, ``fds.py`` and their
``binary_structs``) and the uocte "Topcon File Format" description: the 15-byte ``FOCT``
header, named chunks, and the chunk structures of the library.  Expected values are
computed independently here: voxels from the bytes written, spacing from the
PARAM_SCAN values, the placement from Slicer's ImportOCT IJK-to-RAS matrix.

The reader is hand-written and needs neither oct-converter nor its dependencies; the
conformance with oct-converter's own readers is kept as fixed values (the "as oct-converter
reads it" tests), obtained once from oct-converter 0.7.0 (with its removed ``numpy.fromstring``
patched back in) and written literally here (no live comparison: the library is not a
dependency, and it cannot read these files with current NumPy).
"""
from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import napari_medio
from napari_medio.core.errors import FormatError, MedioError
from napari_medio.core.geometry import Geometry
from napari_medio.core.registry import find_reader
from napari_medio.formats import topcon_oct
from tests.badfiles import assert_rejected, variants


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


def test_uncompressed_volume_voxels_spacing_and_slicer_placement(mot_file, raw_volume):
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


def test_metadata_from_information_chunks(mot_file):
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
    json.dumps({k: v for k, v in md.items() if k != "contours"})  # plain Python values


def test_jpeg_bscans_decode_like_pillow(tmp_path):
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


def test_jpeg_preferred_over_uncompressed_as_oct_converter(tmp_path, raw_volume):
    h, w = 10, 8
    blobs = [encode(smooth_bscan(h, w, i)) for i in range(2)]
    p = tmp_path / "both.fda"
    p.write_bytes(topcon([mot_comp_03(raw_volume), img_jpeg(blobs, w, h)]))
    vol = napari_medio.read(p)[0]
    assert vol.metadata["topcon"]["oct_chunk"] == "@IMG_JPEG"
    assert vol.shape == (h, w, 2)


def test_param_scan_02_and_no_terminator(tmp_path, raw_volume):
    p = tmp_path / "old.fda"
    p.write_bytes(topcon([param_scan_02(4.0, 1.5, 3.5), mot_comp_03(raw_volume)], terminate=False))
    vol = napari_medio.read(p)[0]
    np.testing.assert_allclose(vol.geometry.spacing, [1.5 / N, 4.0 / W, 0.0035], atol=1e-12)


def test_no_scan_parameters_gives_unit_spacing(tmp_path, raw_volume):
    p = tmp_path / "nospacing.fda"
    p.write_bytes(topcon([mot_comp_03(raw_volume)]))
    vol = napari_medio.read(p)[0]
    np.testing.assert_allclose(vol.geometry.spacing, [1, 1, 1])
    assert vol.metadata["topcon"]["spacing_defaulted"] == ["i", "j", "k"]
    assert vol.metadata["topcon"]["pixel_spacing"] is None
    assert vol.metadata["topcon"]["acquisition_date"] is None


def test_zero_scan_length_defaults_that_axis(tmp_path, raw_volume):
    p = tmp_path / "line.fda"
    p.write_bytes(topcon([param_scan_04(6.0, 0.0, 2.6), mot_comp_03(raw_volume)]))
    vol = napari_medio.read(p)[0]
    np.testing.assert_allclose(vol.geometry.spacing, [1.0, 6.0 / W, 0.0026], atol=1e-12)
    assert vol.metadata["topcon"]["spacing_defaulted"] == ["i"]


# -- fundus pictures --------------------------------------------------------------------------------
def test_colour_fundus_is_rgb_volume_flipped_from_bgr(tmp_path, raw_volume):
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


def test_jpeg_fundus(tmp_path, raw_volume):
    rgb = np.zeros((16, 16, 3), np.uint8)
    rgb[..., 0] = 220
    p = tmp_path / "jpegfundus.fda"
    p.write_bytes(topcon([mot_comp_03(raw_volume), img_fundus(encode(rgb[..., ::-1].copy(), quality=95), 16, 16)]))
    fundus = napari_medio.read(p)[1]
    mean = fundus.to_numpy().reshape(-1, 3).mean(axis=0)
    assert mean[0] > 200 and mean[1] < 20 and mean[2] < 20  # red, not blue


# -- layer contours ----------------------------------------------------------------------------------
def test_contours_in_metadata_and_as_lps_points(tmp_path, raw_volume):
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


def test_single_contour_chunk(tmp_path, raw_volume):
    ilm = np.full((N, W), 4, np.uint16)
    p = tmp_path / "onecontour.fda"
    p.write_bytes(topcon([mot_comp_03(raw_volume), contour("MULTILAYERS_1", ilm)]))
    contours = napari_medio.read(p)[0].metadata["topcon"]["contours"]
    np.testing.assert_array_equal(contours["ILM"], np.full((N, W), H - 4, np.float32))


# -- conformance with oct-converter's own readers ------------------------------------------------------
# Fixed inputs in which every voxel, contour value and pixel is known, so that the values oct-converter
# gives for them (obtained once from oct-converter 0.7.0 with numpy.fromstring patched back in, and
# written literally below) pin down its axis orders, flips, spacing and field decoding.
FIXED_VOL = (1000 * np.arange(2)[:, None, None] + 100 * np.arange(3)[None, :, None]
             + np.arange(4)[None, None, :]).astype(np.uint16)  # (B-scan, row, column) = 1000 b + 100 row + column
# Two 16 x 16 B-scans made of constant 8 x 8 blocks: JPEG at quality 100 decodes them exactly.
JPEG_BLOCKS = [np.array([[10, 60], [110, 160]], np.uint8), np.array([[200, 150], [100, 50]], np.uint8)]
FIXED_ILM = np.array([[1, 2, 3, 0], [3, 2, 1, 65535]], np.uint16)  # as stored: heights from the bottom
FIXED_BM = np.array([[2, 3, 3, 1], [1, 1, 2, 3]], np.uint16)
FIXED_FUNDUS = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255]],
                         [[10, 20, 30], [40, 50, 60], [70, 80, 90]]], np.uint8)  # as stored (BGR)


def fixed_fda(tmp_path: Path, oct_chunk: str) -> Path:
    if oct_chunk == "raw":
        image = mot_comp_03(FIXED_VOL)
    else:
        image = img_jpeg([encode(np.kron(b, np.ones((8, 8), np.uint8)), quality=100) for b in JPEG_BLOCKS], 16, 16)
    p = tmp_path / f"fixed_{oct_chunk}.fda"
    p.write_bytes(topcon([file_info(), hw_info(), patient_info(), capture_info(), param_scan_04(6.0, 6.0, 2.6),
                          image, img_fundus(encode(FIXED_FUNDUS, "PNG"), 3, 2), contour("MULTILAYERS_1", FIXED_ILM),
                          contour("MULTILAYERS_7", FIXED_BM)]))
    return p


def fixed_fds(tmp_path: Path) -> Path:
    obs = chunk(b"@IMG_OBS", struct.pack("<4I", 3, 2, 24, 1) + bytes([0]) + struct.pack("<I", FIXED_FUNDUS.size)
                + FIXED_FUNDUS.tobytes())
    p = tmp_path / "fixed.fds"
    p.write_bytes(topcon([patient_info(), capture_info(), param_scan_04(6.0, 3.0, 3.5),
                          mot_comp_03(FIXED_VOL, b"@IMG_SCAN_03"), obs]))
    return p


# What oct-converter 0.7.0 returns for the files above, copied from its output.
# ``np.stack(read_oct_volume().volume, axis=-1)`` for FIXED_VOL (Slicer's octVolumeArray[row, column, B-scan]):
REF_RAW_VOLUME = np.array([[[0, 1000], [1, 1001], [2, 1002], [3, 1003]],
                           [[100, 1100], [101, 1101], [102, 1102], [103, 1103]],
                           [[200, 1200], [201, 1201], [202, 1202], [203, 1203]]], np.uint16)
# ... for the JPEG B-scans: B-scan 0 = blocks [[10, 60], [110, 160]], B-scan 1 = [[200, 150], [100, 50]].
REF_JPEG_VOLUME = np.stack([np.kron(np.array([[10, 60], [110, 160]]), np.ones((8, 8))),
                            np.kron(np.array([[200, 150], [100, 50]]), np.ones((8, 8)))], axis=-1).astype(np.uint8)
REF_PIXEL_SPACING = {"raw": [1.5, 3.0, 0.0026], "jpeg": [0.375, 3.0, 0.0026], "fds": [1.5, 1.5, 0.0035]}
# read_oct_volume().contours (rows from the top, B-scan order flipped), as oct-converter gives them: it keeps
# rows outside the B-scan (here -65532, -65519), which this reader sets to NaN.
REF_CONTOURS = {"raw": {"ILM": [[0, 1, 2, -65532], [2, 1, 0, 3]], "BM": [[2, 2, 1, 0], [1, 0, 0, 2]]},
                "jpeg": {"ILM": [[13, 14, 15, -65519], [15, 14, 13, 16]], "BM": [[15, 15, 14, 13], [14, 13, 13, 15]]}}
# read_fundus_image().image (FDA: uint8; FDS: the same values as float32): RGB, flipped from the stored BGR.
REF_FUNDUS = [[[0, 0, 255], [0, 255, 0], [255, 0, 0]], [[30, 20, 10], [60, 50, 40], [90, 80, 70]]]
REF_PATIENT = {"patient_id": "PAT-0042", "first_name": "Ada", "surname": "Lovelace", "sex": "F", "laterality": "L",
               "DOB": "1960-12-10T00:00:00", "acquisition_date": "2021-03-04T10:20:30"}
# read_oct_volume().oct_header without construct's "_io":
REF_OCT_HEADER = {
    "raw": {"scan_mode": 3, "width": 4, "height": 3, "bits_per_pixel": 16, "number_slices": 2, "format": 0,
            "size": 48},
    "jpeg": {"scan_mode": 3, "unknown1": 0, "unknown2": 0, "width": 16, "height": 16, "number_slices": 2,
             "unknown3": 0},
}
REF_PATIENT_INFO_02 = {
    "patient_id": "PAT-0042", "first_name": "Ada", "last_name": "Lovelace", "mid_name": "", "sex": 2,
    "birth_date": [1960, 12, 10], "occup_reg": [[0] * 20] * 2, "r_date": [0, 0, 0], "record_id": [0] * 16,
    "lv_date": [0, 0, 0], "physician": [[0] * 64] * 2, "zip_code": [0] * 12, "addr": [[0] * 48] * 2,
    "phones": [[0] * 16] * 2, "nx_date": [0] * 6, "multipurpose_field": [[0] * 20] * 3, "descp": [0] * 64,
    "reserved": [0] * 32,
}
REF_CAPTURE_INFO_02 = {"eye": 1, "scan_mode": 3, "session_id": 99, "label": "Macula 3D",
                       "cap_date": [2021, 3, 4, 10, 20, 30]}
# read_oct_volume().metadata:
REF_FDA_METADATA = {
    "fda_file_info": {"0x2": 2, "0x3e8": 1000,
                      "8.0.1.20198": [56, 46, 48, 46, 49, 46, 50, 48, 49, 57, 56] + [0] * 21},
    "hw_info_03": {"model_name": "3D OCT-1 Maestro", "serial_number": "SN-4711", "spect_sn": "", "rom_ver": "1.24",
                   "unknown": "", "eq_calib_year": 2019, "eq_calib_month": 5, "eq_calib_day": 6, "eq_calib_hour": 7,
                   "eq_calib_minute": 8, "spect_calib_year": 2020, "spect_calib_month": 1, "spect_calib_day": 2,
                   "spect_calib_hour": 3, "spect_calib_minute": 4},
    "patient_info_02": REF_PATIENT_INFO_02,
    "capture_info_02": REF_CAPTURE_INFO_02,
    "param_scan_04": {"fixation": 2, "mirror_pos": 0, "polar": 0, "x_dimension_mm": 6.0, "y_dimension_mm": 6.0,
                      "z_resolution_um": 2.6, "comp_eff_2": 0.0, "comp_eff_3": 0.0, "base_pos": 1,
                      "used_calib_data": 1},
}
REF_FDA_METADATA_RAW = dict(REF_FDA_METADATA, img_mot_comp_03=REF_OCT_HEADER["raw"])
REF_FDS_METADATA = {
    "patient_info_02": REF_PATIENT_INFO_02,
    "capture_info_02": REF_CAPTURE_INFO_02,
    "param_scan_04": dict(REF_FDA_METADATA["param_scan_04"], y_dimension_mm=3.0, z_resolution_um=3.5),
}


def _check_patient(md: dict) -> None:
    assert md["patient_id"] == REF_PATIENT["patient_id"] and md["first_name"] == REF_PATIENT["first_name"]
    assert md["last_name"] == REF_PATIENT["surname"] and md["sex"] == REF_PATIENT["sex"]
    assert md["laterality"] == REF_PATIENT["laterality"]
    assert md["birth_date"] == REF_PATIENT["DOB"] and md["acquisition_date"] == REF_PATIENT["acquisition_date"]


@pytest.mark.parametrize("oct_chunk", ["raw", "jpeg"])
def test_fda_as_oct_converter_reads_it(tmp_path, oct_chunk):
    """Voxels, spacing, patient fields, contours, fundus and every information chunk as oct-converter
    0.7.0 gives them for the same file (fixed values above)."""
    vol, fundus = napari_medio.read(fixed_fda(tmp_path, oct_chunk))
    expected = REF_RAW_VOLUME if oct_chunk == "raw" else REF_JPEG_VOLUME
    assert vol.dtype == expected.dtype
    np.testing.assert_array_equal(vol.to_numpy(), expected)
    md = vol.metadata["topcon"]
    ref_spacing = REF_PIXEL_SPACING[oct_chunk]
    assert md["pixel_spacing"] == pytest.approx(ref_spacing, abs=1e-15)
    # oct-converter's [column, B-scan, depth] -> (i = B-scan, j = column, k = depth)
    np.testing.assert_allclose(vol.geometry.spacing, [ref_spacing[1], ref_spacing[0], ref_spacing[2]], atol=1e-15)
    _check_patient(md)
    assert md["oct_header"] == REF_OCT_HEADER[oct_chunk]
    height = expected.shape[0]
    assert list(md["contours"]) == ["ILM", "BM"]
    for layer, ref in REF_CONTOURS[oct_chunk].items():
        ref = np.array(ref, float)
        ref[(ref < 0) | (ref > height)] = np.nan
        np.testing.assert_array_equal(md["contours"][layer], ref.astype(np.float32))
    assert np.isnan(md["contours"]["ILM"][0, 3])  # the stored 65535 of the last B-scan
    np.testing.assert_array_equal(fundus.to_numpy(), np.array(REF_FUNDUS, np.uint8))
    assert md["info"] == (REF_FDA_METADATA_RAW if oct_chunk == "raw" else REF_FDA_METADATA)
    assert md["unparsed_chunks"] == []


def test_fds_as_oct_converter_reads_it(tmp_path):
    vol, fundus = napari_medio.read(fixed_fds(tmp_path))
    np.testing.assert_array_equal(vol.to_numpy(), REF_RAW_VOLUME)
    md = vol.metadata["topcon"]
    assert md["pixel_spacing"] == pytest.approx(REF_PIXEL_SPACING["fds"], abs=1e-15)
    np.testing.assert_allclose(vol.geometry.spacing, [1.5, 1.5, 0.0035], atol=1e-15)
    _check_patient(md)
    assert md["oct_chunk"] == "@IMG_SCAN_03" and md["oct_header"] == REF_OCT_HEADER["raw"]
    assert fundus.dtype == np.uint8  # oct-converter gives float32 with these values
    np.testing.assert_array_equal(fundus.to_numpy(), np.array(REF_FUNDUS, np.uint8))
    assert md["info"] == REF_FDS_METADATA


def _info_files(tmp_path: Path) -> tuple[Path, Path]:
    vol = np.arange(2 * 3 * 4, dtype=np.uint16).reshape(2, 3, 4)
    obs_long = (struct.pack("<3H", 0, 0xFFFF, 0xFFFF) + s("TRC-NW8", 12) + s("Fine", 24)
                + struct.pack("<3H", 0x300, 1, 0) + s("5500K", 24) + struct.pack("<H", 0x2014) + bytes(16))
    align = (bytes([1, 2]) + struct.pack("<II", 2, 8) + struct.pack("<4H", 10, 20, 30, 40000)
             + struct.pack("<4I", 5, 6, 7, 8))
    regist = (bytes([0]) + struct.pack("<2I", 1, 2) + struct.pack("<4I", 10, 20, 300, 400) + s("1.0.0", 32)
              + struct.pack("<4I", 1, 2, 3, 4))
    fda = tmp_path / "info.fda"
    fda.write_bytes(topcon([
        chunk(b"@PARAM_OBS_02", obs_long), chunk(b"@ALIGN_INFO", align),
        chunk(b"@FAST_Q2_INFO", struct.pack("<6f", 0.5, 1.25, -2.0, 3.0, 100.5, 0.1)),
        chunk(b"@REGIST_INFO", regist),
        chunk(b"@MAIN_MODULE_INFO", s("Topcon FastMap", 128) + struct.pack("<4H", 8, 0, 1, 20198) + s("release", 128)),
        chunk(b"@GLA_LITTMANN_01", struct.pack("<II", 0xFFFF, 1)), chunk(b"@THUMBNAIL", struct.pack("<I", 3) + b"abc"),
        capture_info(), mot_comp_03(vol)]))
    fds = tmp_path / "info.fds"
    fds.write_bytes(topcon([
        chunk(b"@PARAM_OBS_02", struct.pack("<3H", 1, 0xFFFF, 0xFFFF)),
        chunk(b"@REGIST_SCAN_02", struct.pack("<8I", *range(1, 9))),
        chunk(b"@IMG_TRC", struct.pack("<4I", 64, 48, 8, 3072)),
        capture_info(), mot_comp_03(vol, b"@IMG_SCAN_03")], file_type=b"FDS"))
    return fda, fds


# FDA(p).read_all_metadata() / FDS(p).read_all_metadata() of oct-converter 0.7.0 for _info_files, copied.
# The long @PARAM_OBS_02 structure names two fields "0x1": the second value (1) wins, at the first place.
REF_INFO_FDA = {
    "param_obs_02": {"0x1": 1, "0xffff": [65535, 65535], "camera_model": "TRC-NW8", "image_quality": "Fine",
                     "0x300": 768, "0x0": 0, "color_temp": "5500K", "0x2014": 8212, "zeros": [0] * 12},
    "align_info": {"unlabeled_1": 1, "unlabeled_2": 2, "w": 2, "n_size": 8, "aligndata": [10, 20, 30, 40000],
                   "keyframe_1": 5, "keyframe_2": 6, "unlabeled_3": 7, "unlabeled_4": 8},
    "fast_q2_info": {"various_quality_statistics": [0.5, 1.25, -2.0, 3.0, 100.5, 0.10000000149011612]},
    "regist_info": {"0x0": 0, "unknown": [1, 2], "bounding_box_in_fundus_pixels": [10, 20, 300, 400],
                    "version": "1.0.0", "bounding_box_in_trc_pixels": [1, 2, 3, 4]},
    "main_module_info": {"software_name": "Topcon FastMap", "file_version_1": 8, "file_version_2": 0,
                         "file_version_3": 1, "file_version_4": 20198, "string": "release"},
    "gla_littmann_01": {"0xffff": 65535, "0x1": 1},
    "thumbnail": {"size": 3},
    "capture_info_02": REF_CAPTURE_INFO_02,
    "img_mot_comp_03": {"scan_mode": 3, "width": 4, "height": 3, "bits_per_pixel": 16, "number_slices": 2,
                        "format": 0, "size": 48},
}
REF_INFO_FDS = {
    "param_obs_02": {"0x1": 1, "0xffff": [65535, 65535]},
    "regist_scan_02": {"clr_scan_region": [1, 2, 3, 4], "obs_scan_region": [5, 6, 7, 8]},
    "img_trc": {"width": 64, "height": 48, "bits_per_pixel": 8, "size": 3072},
    "capture_info_02": REF_CAPTURE_INFO_02,
}


def test_information_structures_as_oct_converter_reads_them(tmp_path):
    """The .fda and .fds structure sets (.fds-only @IMG_TRC and @REGIST_SCAN_02), the two @PARAM_OBS_02 forms,
    the variable-length @ALIGN_INFO, float32 fields: field names, order and values as oct-converter's."""
    fda, fds = _info_files(tmp_path)
    info = napari_medio.read(fda)[0].metadata["topcon"]["info"]
    assert info == REF_INFO_FDA
    assert list(info) == list(REF_INFO_FDA) and list(info["param_obs_02"]) == list(REF_INFO_FDA["param_obs_02"])
    info = napari_medio.read(fds)[0].metadata["topcon"]["info"]
    assert info == REF_INFO_FDS and list(info) == list(REF_INFO_FDS)


# -- live comparisons, when oct-converter happens to be installed (it is not a dependency) -------------
class _FromstringShim:
    """NumPy with the binary ``fromstring`` oct-converter 0.7.0 calls (removed in NumPy 2.3)."""

    def __getattr__(self, name):
        return getattr(np, name)

    @staticmethod
    def fromstring(data, dtype=float):
        return np.frombuffer(data, dtype=dtype)


def test_fds_volume_and_fundus(tmp_path, raw_volume):
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
def test_unparsable_information_chunk_is_listed_not_fatal(tmp_path, raw_volume):
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
def test_registered_and_sniffed(mot_file, tmp_path):
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


def test_cli_description_and_info(mot_file):
    vol = napari_medio.read(mot_file)[0]
    info = vol.info()
    assert info["shape"] == [H, W, N]
    assert vol.source == os.fspath(mot_file)


# -- bad input ----------------------------------------------------------------------------------------
def test_bad_files_raise_format_error(tmp_path, mot_file):
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


def test_not_topcon_under_fda_extension(tmp_path):
    p = tmp_path / "png.fda"
    p.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    _rejects(p, "not a Topcon OCT file")
    q = tmp_path / "wrongtype.fda"
    q.write_bytes(b"FOCT\x01\x02\x03" + bytes(40))
    _rejects(q, "not a Topcon OCT file")


def test_header_only_and_no_oct_chunk(tmp_path):
    p = tmp_path / "empty.fda"
    p.write_bytes(topcon([file_info(), patient_info()]))
    _rejects(p, "no OCT volume")
    q = tmp_path / "scan02.fda"
    q.write_bytes(topcon([chunk(b"@IMG_SCAN_02", bytes(64))]))
    _rejects(q, "IMG_SCAN_02")


def test_corrupt_chunk_list(tmp_path, raw_volume):
    p = tmp_path / "noat.fda"
    p.write_bytes(topcon([chunk(b"XIMG", bytes(10))]))
    _rejects(p, "does not start with '@'")
    q = tmp_path / "beyond.fda"
    q.write_bytes(topcon([]) [:-1] + bytes([4]) + b"@ABC" + struct.pack("<I", 1 << 31) + bytes(10))
    _rejects(q, "truncated")


def test_impossible_sizes(tmp_path):
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
                          chunk(b"@CONTOUR_INFO", s("MULTILAYERS_1", 20) + bytes(2)
                                + struct.pack("<3I", 1 << 20, 1 << 20, 0))]))
    _rejects(c, "CONTOUR_INFO")
    # a scan-parameter chunk too short for its structure
    ps = tmp_path / "param.fda"
    ps.write_bytes(topcon([mot_comp_03(np.zeros((1, 2, 2), np.uint16)), chunk(b"@PARAM_SCAN_04", bytes(10))]))
    _rejects(ps, "PARAM_SCAN")


def test_reader_imports_no_oct_converter_opencv_or_imageio(tmp_path):
    """In a fresh interpreter, reading a file with every picture kind imports none of oct-converter,
    construct, OpenCV or imageio, and leaves Qt's environment variables alone."""
    p = tmp_path / "all.fda"
    p.write_bytes(topcon([file_info(), hw_info(), patient_info(), capture_info(), param_scan_04(X_MM, Y_MM, Z_UM),
                          img_jpeg([encode(smooth_bscan(H, W, i)) for i in range(N)], W, H),
                          img_fundus(encode(FIXED_FUNDUS), 3, 2),
                          img_trc_02(encode(smooth_bscan(9, 11, 5), "PNG"), 11, 9),
                          contour("MULTILAYERS_1", np.full((N, W), 4, np.uint16))]))
    code = (
        "import json, os, sys\n"
        "keys = ('QT_QPA_PLATFORM_PLUGIN_PATH', 'QT_QPA_FONTDIR', 'LD_LIBRARY_PATH', 'PATH')\n"
        "before = {k: os.environ.get(k) for k in keys}\n"
        "import napari_medio\n"
        "from napari_medio.formats import topcon_oct\n"
        "out = topcon_oct.read(sys.argv[1]) + napari_medio.read(sys.argv[1])\n"
        "banned = ('oct_converter', 'construct', 'cv2', 'imageio', 'imageio_ffmpeg')\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in banned)\n"
        "print(json.dumps([[v.name for v in out], loaded, before == {k: os.environ.get(k) for k in keys}]))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("QT_QPA")}
    out = subprocess.run([sys.executable, "-c", code, str(p)], capture_output=True, text=True, env=env, timeout=120,
                         cwd=Path(__file__).resolve().parents[2], check=False)
    assert out.returncode == 0, out.stderr
    names, loaded, env_unchanged = json.loads(out.stdout.strip().splitlines()[-1])
    assert names == ["all", "all_fundus", "all_fundus_gray"] * 2
    assert loaded == []
    assert env_unchanged


def test_fds_contours_read_too(tmp_path, raw_volume):
    """.fds files use the same @CONTOUR_INFO layout (oct-converter's FDS class has no contour reader)."""
    ilm = np.array([[1, 2, 3, 4, 5, 6, 7, 8], [2] * 8, [9] * 8], np.uint16)
    p = tmp_path / "contours.fds"
    p.write_bytes(topcon([mot_comp_03(raw_volume, b"@IMG_SCAN_03"), contour("MULTILAYERS_9", ilm)], b"FDS"))
    vol = napari_medio.read(p)[0]
    assert vol.metadata["topcon"]["oct_chunk"] == "@IMG_SCAN_03"
    contours = vol.metadata["topcon"]["contours"]
    assert list(contours) == ["ELM"]
    np.testing.assert_array_equal(contours["ELM"], (H - ilm[::-1].astype(float)).astype(np.float32))


def test_non_ascii_text_in_picture_headers_is_a_format_error(tmp_path, raw_volume):
    """Header text fields are ASCII (as oct-converter decodes them): a contour id or a fundus format that
    is not is one FormatError naming the chunk."""
    c = tmp_path / "contourid.fda"
    c.write_bytes(topcon([mot_comp_03(raw_volume), contour("M\xc9LTILAYERS_1", np.zeros((N, W), np.uint16))]))
    _rejects(c, "CONTOUR_INFO")
    picture = encode(FIXED_FUNDUS, "PNG")
    f = tmp_path / "fundusformat.fda"
    f.write_bytes(topcon([mot_comp_03(raw_volume), chunk(b"@IMG_FUNDUS", struct.pack("<4I", 3, 2, 24, 1) + b"\xffPG\0"
                                                         + struct.pack("<I", len(picture)) + picture)]))
    _rejects(f, "IMG_FUNDUS")
    # a grey (2D) picture where the colour fundus belongs
    g = tmp_path / "greyfundus.fda"
    g.write_bytes(topcon([mot_comp_03(raw_volume), img_fundus(encode(smooth_bscan(4, 4, 0), "PNG"), 4, 4)]))
    _rejects(g, "IMG_FUNDUS")
