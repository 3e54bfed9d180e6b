"""Scanco ISQ / AIM, read from synthetic files written here from the format description."""
from __future__ import annotations

import struct

import numpy as np
import pytest

import napari_medio
from napari_medio.core.errors import UnsupportedFormatError
from napari_medio.core.registry import find_reader
from napari_medio.formats.scanco import vax_double, vax_float
from tests.badfiles import assert_rejected, variants


def vax_f(value: float) -> bytes:
    """Encode a VAX F-float: IEEE bits of value * 4, 16-bit words swapped."""
    i = struct.unpack("<I", struct.pack("<f", value * 4.0))[0]
    return bytes([(i >> 16) & 0xFF, (i >> 24) & 0xFF, i & 0xFF, (i >> 8) & 0xFF])


def vax_d(value: float) -> bytes:
    q = struct.unpack("<Q", struct.pack("<d", value * 4.0))[0]
    hi, lo = q >> 32, q & 0xFFFFFFFF
    return bytes([(hi >> 16) & 0xFF, (hi >> 24) & 0xFF, hi & 0xFF, (hi >> 8) & 0xFF,
                  (lo >> 16) & 0xFF, (lo >> 24) & 0xFF, lo & 0xFF, (lo >> 8) & 0xFF])


def isq_file(path, data: np.ndarray, physdim_um, mu_scaling=4096, calibration=True, data_type=3):
    """An ISQ file: 512-byte header, optional MultiHeader + Calibration blocks, int16 voxels."""
    nz, ny, nx = data.shape
    header = bytearray(512)
    header[0:16] = b"CTDATA-HEADER_V1"
    struct.pack_into("<i", header, 16, data_type)
    struct.pack_into("<i", header, 20, data.nbytes)
    struct.pack_into("<i", header, 24, data.nbytes // 512)
    struct.pack_into("<3i", header, 44, nx, ny, nz)
    struct.pack_into("<3i", header, 56, *physdim_um)
    struct.pack_into("<i", header, 88, mu_scaling)
    header[128:135] = b"PHANTOM"
    extended = b""
    if calibration:
        multi = bytearray(512)
        multi[8:24] = b"MultiHeader     "
        cal = bytearray(1536)  # its second 128-byte entry names the block and its size in blocks
        cal[136:152] = b"Calibration     "
        struct.pack_into("<i", cal, 152, 2)
        cal[540:540 + 11] = b"HA 1200 mg "
        struct.pack_into("<i", cal, 1144, 2)
        cal[1160:1173] = b"mg HA/ccm    "
        cal[1176:1184] = vax_d(0.347)
        cal[1184:1192] = vax_d(-391.2)
        cal[1200:1208] = vax_d(0.2409)
        extended = bytes(multi) + bytes(cal)
    offset_blocks = len(extended) // 512
    struct.pack_into("<i", header, 508, offset_blocks)
    path.write_bytes(bytes(header) + extended + data.astype("<i2").tobytes())


def test_vax_helpers_invert():
    for v in (0.0, 1.0, -391.2, 0.082, 12345.678):
        assert np.isclose(vax_float(vax_f(v)), v, rtol=1e-6)
        assert vax_double(vax_d(v)) == pytest.approx(v, rel=1e-15)


@pytest.mark.parametrize("ext", [".isq", ".ISQ", ".rsq"])
def test_isq(tmp_path, ext):
    data = np.random.default_rng(0).integers(-2000, 8000, (4, 5, 6)).astype(np.int16)
    path = tmp_path / f"C0001234{ext}"
    isq_file(path, data, physdim_um=(6 * 82, 5 * 82, 4 * 41))
    assert find_reader(path).name == "scanco"
    [vol] = napari_medio.read(path)
    assert vol.dtype == np.int16 and np.array_equal(vol.array, data)
    assert np.allclose(vol.geometry.spacing, [0.082, 0.082, 0.041])
    assert np.allclose(vol.geometry.origin, 0) and np.allclose(vol.geometry.direction, np.eye(3))
    meta = vol.metadata["scanco"]
    assert meta["patient_name"] == "PHANTOM" and meta["mu_scaling"] == 4096
    assert meta["rescale_units"] == "mg HA/ccm" and meta["rescale_slope"] == pytest.approx(0.347)
    assert meta["rescale_intercept"] == pytest.approx(-391.2) and meta["mu_water"] == pytest.approx(0.2409)
    assert meta["hu_slope"] == pytest.approx(1000.0 / (0.2409 * 4096)) and meta["hu_intercept"] == -1000.0


def test_isq_without_extended_header_and_rad(tmp_path):
    data = np.arange(2 * 3 * 4, dtype=np.int16).reshape(2, 3, 4)
    isq_file(tmp_path / "plain.isq", data, physdim_um=(400, 300, 200), calibration=False)
    [vol] = napari_medio.read(tmp_path / "plain.isq")
    assert np.array_equal(vol.array, data) and np.allclose(vol.geometry.spacing, [0.1, 0.1, 0.1])
    radio = np.arange(12, dtype=np.int16).reshape(1, 3, 4)
    isq_file(tmp_path / "scout.rsq", radio, physdim_um=(400, 600, 0), calibration=False, data_type=9)
    [vol] = napari_medio.read(tmp_path / "scout.rsq")
    assert vol.shape == (3, 4) and np.allclose(vol.geometry.spacing, [0.1, 0.2])


def _aim_v020(path, data, type_code, el_size_mm, position=(0, 0, 0), payload=None):
    nz, ny, nx = data.shape
    log = b"! Processing Log\nMu_Scaling                    8192\nHU: mu water                  0.24090\n"
    body = payload if payload is not None else data.tobytes()
    pre = struct.pack("<5i", 20, 140, len(log), len(body), 0)
    st = bytearray(140)
    struct.pack_into("<i", st, 20, type_code)
    struct.pack_into("<3i", st, 24, *position)
    struct.pack_into("<3i", st, 36, nx, ny, nz)
    for i, v in enumerate(el_size_mm):
        st[108 + 4 * i: 112 + 4 * i] = vax_f(v)
    path.write_bytes(pre + bytes(st) + log + body)


def _aim_v030(path, data, type_code, el_size_nm, position=(0, 0, 0)):
    nz, ny, nx = data.shape
    log = b"! Processing Log\n"
    pre = struct.pack("<5q", 40, 224, len(log), data.nbytes, 0)
    st = bytearray(224)
    struct.pack_into("<i", st, 12, type_code)
    struct.pack_into("<3q", st, 16, *position)
    struct.pack_into("<3q", st, 40, nx, ny, nz)
    struct.pack_into("<3q", st, 184, *el_size_nm)
    path.write_bytes(b"AIMDATA_V030   \0" + pre + bytes(st) + log + data.tobytes())


def test_aim_v020_and_v030(tmp_path):
    data = np.random.default_rng(1).integers(-500, 3000, (3, 4, 5)).astype("<i2")
    _aim_v020(tmp_path / "seg.aim", data, 0x00020002, (0.0607, 0.0607, 0.0607), position=(10, 20, 30))
    [vol] = napari_medio.read(tmp_path / "seg.aim")
    assert vol.dtype == np.int16 and np.array_equal(vol.array, data)
    assert np.allclose(vol.geometry.spacing, 0.0607, atol=1e-7)
    assert np.allclose(vol.geometry.origin, np.array([10, 20, 30]) * 0.0607, atol=1e-6)
    assert vol.metadata["scanco"]["mu_scaling"] == 8192 and vol.metadata["scanco"]["mu_water"] == 0.2409
    f32 = np.random.default_rng(2).normal(size=(2, 3, 4)).astype("<f4")
    _aim_v030(tmp_path / "dens.aim", f32, 0x001A0004, (82000, 82000, 41000), position=(1, 2, 3))
    [vol] = napari_medio.read(tmp_path / "dens.aim")
    assert vol.dtype == np.float32 and np.array_equal(vol.array, f32)
    assert np.allclose(vol.geometry.spacing, [0.082, 0.082, 0.041])
    assert np.allclose(vol.geometry.origin, [0.082, 0.164, 0.123])


def test_aim_run_length_types(tmp_path):
    mask = np.zeros((3, 4, 5), np.uint8)
    mask[1, 1:3, 1:4] = 127
    flat = mask.ravel()
    # 8-bit run lengths: (length, value) pairs.
    runs, values = [], []
    start = 0
    for i in range(1, flat.size + 1):
        if i == flat.size or flat[i] != flat[start]:
            runs.append(i - start)
            values.append(flat[start])
            start = i
    pairs = bytes(b for r, v in zip(runs, values) for b in (r, v))
    payload = struct.pack("<I", len(pairs) + 4) + pairs
    _aim_v020(tmp_path / "rle8.aim", mask, 0x00080002, (0.05, 0.05, 0.05), payload=payload)
    [vol] = napari_medio.read(tmp_path / "rle8.aim")
    assert vol.dtype == np.int8 and np.array_equal(vol.array.view(np.uint8), mask)
    # Binary run lengths: the two values, then alternating run lengths starting with the first.
    binary = bytes([0, 127]) + bytes(runs)
    payload = struct.pack("<I", len(binary) + 4) + binary
    _aim_v020(tmp_path / "rleb.aim", mask, 0x00150001, (0.05, 0.05, 0.05), payload=payload)
    [vol] = napari_medio.read(tmp_path / "rleb.aim")
    assert np.array_equal(vol.array.view(np.uint8), mask)


def test_read_only(tmp_path):
    from napari_medio.core.geometry import Geometry
    from napari_medio.core.volume import Volume

    with pytest.raises(UnsupportedFormatError):
        napari_medio.write(Volume(np.zeros((2, 3, 4), np.int16), Geometry.identity()), tmp_path / "x.isq")


def test_bad_input(tmp_path):
    data = np.random.default_rng(0).integers(-2000, 8000, (4, 5, 6)).astype(np.int16)
    isq_file(tmp_path / "ok.isq", data, physdim_um=(600, 500, 400))
    bad = variants(tmp_path, tmp_path / "ok.isq", ".isq", cuts=(-1, 511, 513, 2048))
    _aim_v020(tmp_path / "ok.aim", data, 0x00020002, (0.1, 0.1, 0.1))
    raw = (tmp_path / "ok.aim").read_bytes()
    (tmp_path / "short.aim").write_bytes(raw[:-1])
    (tmp_path / "head.aim").write_bytes(raw[:100])
    _aim_v020(tmp_path / "packed.aim", data, 0x00060001, (0.1, 0.1, 0.1))
    _aim_v020(tmp_path / "weird.aim", data, 0x12345678, (0.1, 0.1, 0.1))
    bad += [tmp_path / "short.aim", tmp_path / "head.aim", tmp_path / "packed.aim", tmp_path / "weird.aim"]
    assert_rejected(bad)
