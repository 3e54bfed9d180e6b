"""Scanco micro-CT images: ISQ/RSQ (``CTDATA-HEADER_V1``) and AIM (v020, v030), read by hand.

Why hand-written: Slicer reads these through ITK's *remote* module IOScanco,
which SimpleITK does not ship and no Python package here provides.  The layout
below follows the public description of the format (Scanco documentation, and
ITK's IOScanco module, Apache-2.0, as a reference for field positions); the
code is this project's own.

ISQ / RSQ (little-endian 32-bit integers; 512-byte blocks):

* bytes 0-15: ``CTDATA-HEADER_V1``; 16: data type (3 = int16); 20/24: image
  size in bytes / blocks; 28 patient index, 32 scanner id, 36 creation date;
* 44: pixel dimensions (3 int), 56: physical dimensions in micrometres (3 int);
* 68 slice thickness, 72 slice increment, 76 start position (um); 80/84 data
  min/max; 88 mu scaling; 92 samples, 96 projections, 100 scan distance (um);
  104 scanner type, 108 sample time, 112 measurement index, 116 site,
  120 reference line, 124 reconstruction algorithm; 128: patient name (40);
  168 energy, 172 intensity;
* 508: data offset in 512-byte blocks: voxels start at ``(offset + 1) * 512``;
  optional extended header blocks in between ("MultiHeader" and
  "Calibration" with the density calibration: rescale units/slope/intercept,
  mu water, as VAX doubles);
* voxels: int16, x fastest.  Spacing = physical / pixel dimensions (um -> mm),
  origin 0, identity direction (as ITK).  A 2D radiograph (RSQ with physical z
  of 0 or type 9) has slice spacing 1.

AIM: a pre-header of five lengths (pre-header, image structure, processing log,
image data, associated data; 32-bit for v020, 64-bit after the
``AIMDATA_V030`` string for v030), the image structure (type, position,
dimension, ..., element size: VAX floats in mm for v020, integers in nm for
v030), the processing log (text), then the voxels.  Uncompressed int8, uint8,
int16, uint16, int32 and float32 images and the run-length encoded binary /
8-bit types are read; the 2x2x2 bit-packed type is refused with a clear error.
Origin = position * spacing.

Voxels are returned as stored (no conversion to Hounsfield units); the header
values needed for it are in ``volume.metadata["scanco"]`` (``mu_scaling``,
``mu_water``, ``rescale_slope``/``rescale_intercept``/``rescale_units``, and
``hu_slope``/``hu_intercept`` for ``HU = value * hu_slope + hu_intercept`` as
ITK computes it).

Reader options: ``labelmap`` (bool | None).
"""
from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

from ..core.errors import FormatError
from ..core.geometry import Geometry
from ..core.kinds import DataKind
from ..core.registry import FileFormat, register
from ..core.volume import Volume
from ._imageio import LABELMAP_OPTION, nonempty_file_size, require_bytes, volume_kind
from .naming import base_name

NAME = "scanco"

_ISQ_MAGIC = b"CTDATA-HEADER_V1"
_AIM30_MAGIC = b"AIMDATA_V030   "
_BLOCK = 512

# AIM data type code -> (numpy dtype, compression)
_AIM_TYPES = {
    0x00160001: ("u1", None),
    0x000D0001: ("u1", None),
    0x00010001: ("i1", None),
    0x00170002: ("<u2", None),
    0x00020002: ("<i2", None),
    0x00030004: ("<i4", None),
    0x001A0004: ("<f4", None),
    0x00150001: ("i1", "rle-binary"),
    0x00080002: ("i1", "rle-8bit"),
    0x00060001: ("i1", "packed-bits"),
}


def _i32(buf: bytes, at: int) -> int:
    return struct.unpack_from("<i", buf, at)[0]


def _i64(buf: bytes, at: int) -> int:
    return struct.unpack_from("<q", buf, at)[0]


def vax_float(raw: bytes) -> float:
    """A VAX F-float (4 bytes, word-swapped) as Python float."""
    b = raw[:4]
    bits = (b[0] << 16) | (b[1] << 24) | b[2] | (b[3] << 8)
    return 0.25 * struct.unpack("<f", struct.pack("<I", bits & 0xFFFFFFFF))[0]


def vax_double(raw: bytes) -> float:
    """A VAX double (8 bytes, word-swapped 32-bit halves) as Python float."""
    b = raw[:8]
    hi = (b[0] << 16) | (b[1] << 24) | b[2] | (b[3] << 8)
    lo = (b[4] << 16) | (b[5] << 24) | b[6] | (b[7] << 8)
    return 0.25 * struct.unpack("<d", struct.pack("<Q", ((hi & 0xFFFFFFFF) << 32) | (lo & 0xFFFFFFFF)))[0]


def _aim_version(head: bytes) -> int | None:
    if head.startswith(_AIM30_MAGIC):
        if len(head) >= 56 and _i64(head, 16) == 40 and 0 < _i64(head, 24) < 1 << 16 and _i64(head, 32) >= 0:
            return 30
        return None
    if len(head) >= 20 and _i32(head, 0) == 20 and _i32(head, 4) == 140 and _i32(head, 8) >= 0 and _i32(head, 12) >= 0:
        return 20
    return None


def sniff(head: bytes, path: Path) -> bool:
    """``CTDATA-HEADER_V1`` (ISQ/RSQ), ``AIMDATA_V030`` or an AIM v020 pre-header (lengths 20, 140)."""
    if head.startswith(_ISQ_MAGIC):
        return len(head) >= _BLOCK
    return _aim_version(head) is not None


def read(path: str | os.PathLike[str], *, labelmap: bool | None = None) -> list[Volume]:
    """Read a Scanco ISQ/RSQ or AIM file into one Volume (voxels as stored)."""
    p = Path(path)
    size = nonempty_file_size(p)
    with open(p, "rb") as fh:
        head = fh.read(_BLOCK)
    if head.startswith(_ISQ_MAGIC):
        vol = _read_isq(p, size)
    elif _aim_version(head) is not None:
        vol = _read_aim(p, size, _aim_version(head))
    else:
        raise FormatError(p, "not a Scanco ISQ or AIM file")
    vol.kind = volume_kind(p, labelmap, vol.dtype)
    return [vol]


# -- ISQ ---------------------------------------------------------------------------------------
def _read_isq(p: Path, size: int) -> Volume:
    with open(p, "rb") as fh:
        header = fh.read(_BLOCK)
        if len(header) < _BLOCK:
            raise FormatError(p, f"file is truncated: the ISQ header needs {_BLOCK} bytes, only {len(header)} present")
        data_type = _i32(header, 16)
        pixdim = [_i32(header, 44 + 4 * i) for i in range(3)]
        physdim = [_i32(header, 56 + 4 * i) for i in range(3)]
        offset_blocks = _i32(header, 508)
        if any(d < 0 for d in pixdim) or any(d > 1 << 20 for d in pixdim) or not 0 <= offset_blocks < 1 << 22:
            raise FormatError(p, f"corrupt ISQ header (dimensions {pixdim}, data offset {offset_blocks})")
        is_rad = data_type == 9 or physdim[2] == 0
        dims = [max(d, 1) for d in pixdim]
        spacing = []
        for i in range(3):
            if is_rad and i == 2:
                spacing.append(1.0)
            elif physdim[i] > 0 and pixdim[i] > 0:
                spacing.append(physdim[i] * 1e-3 / pixdim[i])
            else:
                spacing.append(1.0)
        data_start = (offset_blocks + 1) * _BLOCK
        count = int(np.prod(dims, dtype=np.int64))
        require_bytes(p, data_start + 2 * count, size)
        extended = fh.read(data_start - _BLOCK) if data_start > _BLOCK else b""
        fh.seek(data_start)
        array = np.fromfile(fh, dtype="<i2", count=count).astype(np.int16, copy=False)
    array = array.reshape(dims[2], dims[1], dims[0])
    meta = {
        "format": "ISQ",
        "version": header[:16].decode("latin-1"),
        "data_type": data_type,
        "patient_index": _i32(header, 28),
        "scanner_id": _i32(header, 32),
        "pixel_dimensions": pixdim,
        "physical_dimensions_um": physdim,
        "slice_thickness_mm": _i32(header, 68) * 1e-3,
        "slice_increment_mm": _i32(header, 72) * 1e-3,
        "start_position_mm": _i32(header, 76) * 1e-3,
        "data_range": [_i32(header, 80), _i32(header, 84)],
        "mu_scaling": _i32(header, 88),
        "number_of_samples": _i32(header, 92),
        "number_of_projections": _i32(header, 96),
        "scan_distance_mm": _i32(header, 100) * 1e-3,
        "scanner_type": _i32(header, 104),
        "sample_time_ms": _i32(header, 108) * 1e-3,
        "measurement_index": _i32(header, 112),
        "site": _i32(header, 116),
        "reference_line_mm": _i32(header, 120) * 1e-3,
        "reconstruction_algorithm": _i32(header, 124),
        "patient_name": header[128:168].split(b"\0", 1)[0].decode("latin-1").strip(),
        "energy_kv": _i32(header, 168) * 1e-3,
        "intensity_ma": _i32(header, 172) * 1e-3,
    }
    if is_rad:
        meta["format"] = "RAD"
    meta.update(_isq_calibration(extended))
    _hu(meta)
    if is_rad and dims[2] == 1:
        geometry = Geometry(spacing[:2], [0.0, 0.0], np.eye(2))
        array = array[0]
    else:
        geometry = Geometry(spacing, [0.0, 0.0, 0.0], np.eye(3))
    return Volume(array, geometry, name=base_name(p), metadata={"scanco": meta}, source=os.fspath(p))


def _isq_calibration(ext: bytes) -> dict:
    """Density calibration from the extended header blocks, when present."""
    if len(ext) < 3 * _BLOCK:
        return {}
    pos = 0
    skip = 0
    if ext[8:24] == b"MultiHeader     ":
        pos += _BLOCK
        skip += 1
    for i in range(4):
        at = pos + i * 128
        if at + 28 > len(ext):
            break
        if ext[at + 8: at + 24] == b"Calibration     ":
            blocks = _i32(ext, at + 24)
            start = skip * _BLOCK
            if blocks * _BLOCK < 1024 or start + 1208 > len(ext):
                return {}
            cal = ext[start: start + 1208]
            return {
                "calibration": cal[540:604].split(b"\0", 1)[0].decode("latin-1").strip(),
                "rescale_type": _i32(cal, 1144),
                "rescale_units": cal[1160:1176].split(b"\0", 1)[0].decode("latin-1").strip(),
                "rescale_slope": vax_double(cal[1176:1184]),
                "rescale_intercept": vax_double(cal[1184:1192]),
                "mu_water": vax_double(cal[1200:1208]),
            }
    return {}


def _hu(meta: dict) -> None:
    mu_scaling = meta.get("mu_scaling") or 0
    mu_water = meta.get("mu_water", 0.70329999923706055)
    if mu_scaling > 1 and mu_water and mu_water > 0:
        meta["hu_slope"] = 1000.0 / (mu_water * mu_scaling)
        meta["hu_intercept"] = -1000.0


# -- AIM ---------------------------------------------------------------------------------------
def _read_aim(p: Path, size: int, version: int) -> Volume:
    with open(p, "rb") as fh:
        head = fh.read(1 << 16)
    if version == 30:
        base = 16
        pre_len, struct_len, log_len, data_len, _ = (_i64(head, base + 8 * i) for i in range(5))
        s = base + pre_len
        if len(head) < s + 208:
            raise FormatError(p, "file is truncated: incomplete AIM header")
        type_code = _i32(head, s + 12) & 0xFFFFFFFF
        position = [_i64(head, s + 16 + 8 * i) for i in range(3)]
        dims = [_i64(head, s + 40 + 8 * i) for i in range(3)]
        el_size = [_i64(head, s + 184 + 8 * i) * 1e-6 for i in range(3)]
        header_len = base + pre_len + struct_len + log_len
    else:
        pre_len, struct_len, log_len, data_len, _ = (_i32(head, 4 * i) for i in range(5))
        s = pre_len
        if len(head) < s + 140:
            raise FormatError(p, "file is truncated: incomplete AIM header")
        type_code = _i32(head, s + 20) & 0xFFFFFFFF
        position = [_i32(head, s + 24 + 4 * i) for i in range(3)]
        dims = [_i32(head, s + 36 + 4 * i) for i in range(3)]
        el_size = [vax_float(head[s + 108 + 4 * i: s + 112 + 4 * i]) for i in range(3)]
        header_len = pre_len + struct_len + log_len
    if any(d < 1 or d > 1 << 20 for d in dims) or not 0 <= log_len < 1 << 30 or data_len < 0:
        raise FormatError(p, f"corrupt AIM header (dimensions {dims})")
    if type_code not in _AIM_TYPES:
        raise FormatError(p, f"AIM data type 0x{type_code:08x} is not supported")
    dtype_name, compression = _AIM_TYPES[type_code]
    dtype = np.dtype(dtype_name)
    count = int(np.prod(dims, dtype=np.int64))
    spacing = [v if v > 0 and np.isfinite(v) else 1.0 for v in el_size]
    log = head[header_len - log_len: header_len] if header_len <= len(head) else b""
    with open(p, "rb") as fh:
        fh.seek(header_len)
        if compression is None:
            require_bytes(p, header_len + count * dtype.itemsize, size)
            array = np.fromfile(fh, dtype=dtype, count=count).astype(dtype.newbyteorder("="), copy=False)
        elif compression == "packed-bits":
            raise FormatError(p, "bit-packed AIM images (type 0x00060001) are not supported")
        else:
            int_size = 8 if version == 30 else 4
            raw_len = fh.read(int_size)
            if len(raw_len) < int_size:
                raise FormatError(p, "file is truncated: AIM compressed data size missing")
            n = struct.unpack("<q" if int_size == 8 else "<I", raw_len)[0] - int_size
            require_bytes(p, header_len + int_size + n, size, "compressed voxel data")
            payload = np.frombuffer(fh.read(n), dtype=np.uint8)
            array = _rle_binary(payload, count) if compression == "rle-binary" else _rle_8bit(payload, count)
            if array.size < count:
                raise FormatError(p, f"file is truncated: run-length data decodes to {array.size} of {count} voxels")
            array = array[:count].view(np.int8)
    array = array.reshape(dims[2], dims[1], dims[0])
    origin = [position[i] * spacing[i] for i in range(3)]
    meta = {"format": f"AIM v0{version}", "type_code": f"0x{type_code:08x}", "position": position,
            "processing_log": log.decode("latin-1", "replace")}
    for line in meta["processing_log"].splitlines():
        key, _, value = line.partition("  ")
        value = value.strip()
        if key.strip() == "Mu_Scaling" and value:
            try:
                meta["mu_scaling"] = int(float(value))
            except ValueError:
                pass
        elif key.strip() == "HU: mu water" and value:
            try:
                meta["mu_water"] = float(value)
            except ValueError:
                pass
    _hu(meta)
    return Volume(array, Geometry(spacing, origin, np.eye(3)), name=base_name(p), metadata={"scanco": meta},
                  source=os.fspath(p))


def _rle_8bit(payload: np.ndarray, count: int) -> np.ndarray:
    """Pairs of (run length, value)."""
    pairs = payload[: (payload.size // 2) * 2].reshape(-1, 2)
    return np.repeat(pairs[:, 1], pairs[:, 0].astype(np.int64))[:count]


def _rle_binary(payload: np.ndarray, count: int) -> np.ndarray:
    """Two values, then run lengths alternating between them (255 = 254 without switching)."""
    if payload.size < 2:
        return np.zeros(0, np.uint8)
    values = payload[:2]
    lengths = payload[2:].astype(np.int64)
    full = lengths == 255
    switches = (~full).astype(np.int64)
    which = np.concatenate(([0], np.cumsum(switches)[:-1])) % 2 if lengths.size else np.zeros(0, np.int64)
    runs = np.where(full, 254, lengths)
    return np.repeat(values[which], runs)[:count]


FORMAT = register(
    FileFormat(
        name=NAME,
        description="Scanco micro-CT (.isq, .rsq, .aim)",
        extensions=(".isq", ".rsq", ".aim"),
        read=read,
        sniff=sniff,
        kinds=(DataKind.VOLUME, DataKind.LABELMAP),
        backend="napari-medio (hand-written)",
        read_options={"labelmap": LABELMAP_OPTION},
    )
)
