"""Topcon OCT files (``.fda``, ``.fds``): the OCT volume, the fundus photographs, layer contours, read by hand.

3D Slicer reads ``.fda`` through the Sandbox extension's ImportOCT module
(PerkLab/SlicerSandbox, ``ImportOCT/ImportOCT.py``), which calls the
``oct-converter`` package (PyPI, MIT).

Why hand-written: no maintained library reads these files with current NumPy.
oct-converter 0.7.0 (its newest release, and its repository as of 2026) reads
the chunk list, the uncompressed B-scans and the ``.fds`` fundus with
``numpy.fromstring`` in binary mode, which NumPy 2.3 removed, so its ``FDA`` /
``FDS`` readers raise ``ValueError`` on any current NumPy; it also pulls in
OpenCV (whose import repoints Qt's plugin variables in a napari process) and
ffmpeg.  Every chunk is therefore decoded here with ``struct`` and NumPy, and
the compressed pictures with Pillow.  There is no public specification: the
facts come from oct-converter's chunk structures (``readers/fda.py``,
``readers/fds.py``, ``binary_structs/fda_binary.py`` and ``fds_binary.py``,
MIT), the reference for every field's position and meaning, and from uocte's
"Topcon File Format" wiki page; the code is this project's own.  The output is
what oct-converter gives (checked against it in the tests, with its removed
NumPy call patched back in), plus the placement in LPS space.

Layout (little-endian):

* a 15-byte header: ``"FOCT"``, three letters (``"FDA"``, or ``"FAA"`` for
  external fixation), two uint32 version numbers;
* named chunks: uint8 name length, the name (``@IMG_JPEG``, ...), uint32 data
  size, the data; a name length of 0 ends the list (a file that ends exactly
  after a chunk is accepted too).  Every chunk is checked against the file
  size, so a truncated or corrupt file is one :class:`FormatError`;
* the OCT volume, the first of:

  - ``@IMG_JPEG``: a 25-byte header (uint8 scan mode, uint32 unknown1,
    unknown2, width, height, number of B-scans, unknown3), then per B-scan an
    int32 size and a JPEG picture (decoded by Pillow; a non-grey picture is
    converted to 8-bit grey);
  - ``@IMG_MOT_COMP_03`` (``.fda``) or ``@IMG_SCAN_03`` (``.fds``): a 22-byte
    header (uint8 scan mode, uint32 width, height, bits per pixel, number of
    B-scans, uint8 format, uint32 size), then uint16 voxels, B-scan after
    B-scan, row after row, column fastest;

* ``@PARAM_SCAN_04`` (54 bytes: uint32 fixation, mirror position, polar;
  float64 scan width ``x`` mm, scan length ``y`` mm, axial resolution ``z``
  um, two more; two uint8) or, when absent, ``@PARAM_SCAN_02`` (78 bytes: the
  same floats after a uint8 and five uint32);
* ``@IMG_FUNDUS`` (``.fda``: 24-byte header, 4-letter format, uint32 size, a
  compressed colour picture stored BGR), ``@IMG_TRC_02`` (``.fda``: 21-byte
  header, uint32 size, a compressed grey picture), ``@IMG_OBS`` (``.fds``:
  21-byte header, raw BGR bytes, row after row);
* ``@CONTOUR_INFO`` (one chunk per layer boundary): a 34-byte header (20-byte
  ASCII id such as ``MULTILAYERS_1``, uint8 method and format, uint32 width =
  columns, height = B-scans, size), then uint16 boundary heights counted from
  the bottom of the B-scan, one row per B-scan, the last B-scan first;
* patient, capture, hardware and other information chunks (the table
  ``_FIELDS`` below, one entry per oct-converter structure).

Coordinates.  The volume is placed exactly as Slicer's ImportOCT places it:
the array is ``a[k, j, i]`` with ``k`` = row of a B-scan (depth, top first),
``j`` = column of a B-scan (A-scan), ``i`` = B-scan number, that is Slicer's
``octVolumeArray[row, column, bscan]``, and Slicer's IJK-to-RAS matrix
``[[0, 1, 0], [0, 0, -1], [-1, 0, 0]]`` becomes in LPS::

    i (B-scan)  -> -S       j (column) -> -L (= +R)      k (depth) -> +P

with the origin at 0 (Slicer's default; the file gives no position).  This is
a display convention (B-scans in axial slices, depth going posterior), not the
eye's true position.  Slicer leaves the spacing at 1 mm ("does not set voxel
size"); here it is oct-converter's pixel spacing: ``i``: scan length ``y`` /
number of B-scans, ``j``: scan width ``x`` / B-scan width, ``k``: axial
resolution ``z`` / 1000 (``@PARAM_SCAN_04``, else ``_02``; 1 mm for an axis
with no valid value, listed in ``metadata["topcon"]["spacing_defaulted"]``).

The fundus pictures are 2D volumes in picture order (``a[row, column]``,
identity direction, origin 0, 1 mm pixels: the file gives no pixel size), as
napari-medio's PNG/JPEG reader places a photograph.  ``@IMG_FUNDUS`` (and
``@IMG_OBS``) become an RGB volume named ``<name>_fundus`` (BGR flipped to
RGB), ``@IMG_TRC_02`` a grey volume ``<name>_fundus_gray``.

Layer contours are kept in ``metadata["topcon"]["contours"]``: ``{layer name:
float32 array (B-scan, column)}`` with the boundary's row index ``k`` counted
from the top of the B-scan, as oct-converter's ``read_oct_volume`` gives them
(``height - stored value``, the stored B-scan order reversed as in
oct-converter and retimat; ids ``MULTILAYERS_1`` ... ``_10`` named ``ILM``,
``RNFL_GCL``, ``GCL_IPL``, ``IPL_INL``, ``MZ_EZ``, ``IZ_RPE``, ``BM``,
``INL_OPL``, ``ELM``, ``CSI``, other ids kept); stored values that fall
outside the B-scan (Topcon marks missing boundaries with large values) are
NaN.  :func:`contour_points` turns one into LPS points.

``metadata["topcon"]`` also holds ``patient_id``, ``first_name``,
``last_name``, ``sex`` (1/2/3 = M/F/O), ``birth_date`` and
``acquisition_date`` (ISO text), ``laterality`` (eye 0/1 = "R"/"L"),
``file_type``, ``version``, ``oct_chunk``, ``oct_header``, ``pixel_spacing``
(oct-converter's ``[column, B-scan, depth]`` mm), ``chunks`` (every chunk
name in file order) and ``info``: every information chunk with a known
structure, by lower-case chunk name (``patient_info_02``,
``capture_info_02``, ``param_scan_04``, ``hw_info_03``, ``regist_info``,
...), with the field names and values oct-converter gives, and
``unparsed_chunks`` naming those whose structure did not fit (for example a
non-ASCII patient name: the text fields are ASCII, as in oct-converter).
A ``.fds``-style file (``@IMG_SCAN_03`` and no ``.fda`` volume chunk) uses
oct-converter's ``.fds`` structures, where a few differ (``@IMG_OBS``,
``@IMG_MOT_COMP_03``, ``@IMG_TRC``, ``@REGIST_SCAN_02``).

Not supported: the ``@IMG_SCAN_02`` and older ``@IMG_MOT_COMP`` volume
variants and radial/line scan geometry (read as a stack of B-scans like any
other scan, as Slicer does), the float64 contour variant (uint16 only, as
oct-converter), writing.

Reader options: ``fundus`` (bool, default True): also return the fundus pictures.
"""
from __future__ import annotations

import io
import math
import os
import re
import struct
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import FormatError, MedioError
from ..core.geometry import Geometry
from ..core.kinds import DataKind
from ..core.registry import FileFormat, register
from ..core.volume import AxisInfo, Volume
from ._imageio import nonempty_file_size
from .naming import base_name

__all__ = ["NAME", "SLICER_DIRECTION_LPS", "contour_points", "read", "sniff"]

NAME = "topcon-oct"

_MAGIC = b"FOCT"
_HEADER_SIZE = 15

#: Columns = LPS unit vectors of the i (B-scan), j (column), k (depth) axes: Slicer ImportOCT's
#: IJK-to-RAS [[0, 1, 0], [0, 0, -1], [-1, 0, 0]] with x and y negated.
SLICER_DIRECTION_LPS = np.array([[0.0, -1.0, 0.0],
                                 [0.0, 0.0, 1.0],
                                 [-1.0, 0.0, 0.0]])

# Chunks that hold pictures or contours rather than information fields.
_IMAGE_CHUNKS = {b"@IMG_JPEG", b"@IMG_FUNDUS", b"@IMG_TRC_02", b"@CONTOUR_INFO", b"@IMG_SCAN_03", b"@IMG_OBS"}
# Largest believable B-scan count / side (Topcon devices: up to a few thousand).
_MAX_SIDE = 1 << 16

# Layer boundary ids -> names (oct-converter's FDA.read_segmentation).
_LAYERS = {"MULTILAYERS_1": "ILM", "MULTILAYERS_2": "RNFL_GCL", "MULTILAYERS_3": "GCL_IPL",
           "MULTILAYERS_4": "IPL_INL", "MULTILAYERS_5": "MZ_EZ", "MULTILAYERS_6": "IZ_RPE",
           "MULTILAYERS_7": "BM", "MULTILAYERS_8": "INL_OPL", "MULTILAYERS_9": "ELM",
           "MULTILAYERS_10": "CSI"}


# -- chunk structures -------------------------------------------------------------------------------
# One structure = fields in file order, each "name: type" with type u8/u16/u32 (unsigned), f32/f64,
# strN (N bytes of ASCII, trailing NULs dropped) or u8[2,20] style arrays (nested lists, outer count
# first).  Names and order follow oct-converter's construct structures, so ``metadata["info"]``
# carries the keys its readers give.
_TYPES = {"u8": "B", "u16": "H", "u32": "I", "f32": "f", "f64": "d"}


@dataclass(frozen=True)
class _Field:
    name: str
    code: str            # struct code, or "s" for an ASCII string
    shape: tuple[int, ...] = ()

    @property
    def count(self) -> int:
        return math.prod(self.shape) if self.shape else 1

    @property
    def nbytes(self) -> int:
        return self.shape[0] if self.code == "s" else struct.calcsize("<" + self.code) * self.count


def _fields(*specs: str) -> tuple[_Field, ...]:
    out = []
    for spec in specs:
        name, _, kind = spec.rpartition(":")
        kind = kind.strip()
        name = name.strip()
        if kind.startswith("str"):
            out.append(_Field(name, "s", (int(kind[3:]),)))
            continue
        m = re.fullmatch(r"(\w+?)(?:\[([\d,]+)\])?", kind)
        assert m is not None and m.group(1) in _TYPES, spec
        shape = tuple(int(d) for d in m.group(2).split(",")) if m.group(2) else ()
        out.append(_Field(name, _TYPES[m.group(1)], shape))
    return tuple(out)


def _size(fields: tuple[_Field, ...]) -> int:
    return sum(f.nbytes for f in fields)


def _nest(values: list, shape: tuple[int, ...]) -> list:
    if len(shape) == 1:
        return list(values)
    step = len(values) // shape[0]
    return [_nest(values[n * step:(n + 1) * step], shape[1:]) for n in range(shape[0])]


class _Unparsable(ValueError):
    """A structure does not fit the bytes it is given (too few, or text that is not ASCII)."""


def _parse(fields: tuple[_Field, ...], data: bytes) -> dict:
    """Decode one structure from the start of ``data`` (extra bytes are ignored)."""
    if len(data) < _size(fields):
        raise _Unparsable(f"{_size(fields)} bytes needed, {len(data)} present")
    out: dict = {}
    pos = 0
    for f in fields:
        if f.code == "s":
            raw = data[pos:pos + f.nbytes].rstrip(b"\0")
            try:
                value: Any = raw.decode("ascii")
            except UnicodeDecodeError:
                raise _Unparsable(f"field {f.name!r} is not ASCII text: {raw[:40]!r}") from None
        else:
            values = list(struct.unpack_from(f"<{f.count}{f.code}", data, pos))
            value = _nest(values, f.shape) if f.shape else values[0]
        out[f.name] = value  # a repeated name keeps its first position and its last value
        pos += f.nbytes
    return out


def _parse_align_info(data: bytes) -> dict:
    """``@ALIGN_INFO``: two uint8, uint32 ``w``, uint32 ``n_size``, ``2 w`` uint16, four uint32; only
    the chunk's own bytes (a corrupt ``w`` must not read on into the rest of the file)."""
    if len(data) < 10:
        raise _Unparsable("shorter than its 10-byte head")
    u1, u2, w, n_size = struct.unpack_from("<BBII", data)
    if 10 + 4 * w + 16 > len(data):
        raise _Unparsable(f"{w} alignment pairs do not fit in {len(data)} bytes")
    out = {"unlabeled_1": u1, "unlabeled_2": u2, "w": w, "n_size": n_size,
           "aligndata": list(struct.unpack_from(f"<{2 * w}H", data, 10))}
    tail = struct.unpack_from("<4I", data, 10 + 4 * w)
    out.update(zip(("keyframe_1", "keyframe_2", "unlabeled_3", "unlabeled_4"), tail))
    return out


_HW_01 = _fields("model_name: str16", "serial_number: str16", "spect_sn: str16", "rom_ver: str16",
                 "eq_calib_year: u16", "eq_calib_month: u16", "eq_calib_day: u16",
                 "spect_calib_year: u16", "spect_calib_month: u16", "spect_calib_day: u16")
_OCT_RAW = _fields("scan_mode: u8", "width: u32", "height: u32", "bits_per_pixel: u32", "number_slices: u32",
                   "format: u8", "size: u32")

#: Structures shared by .fda and .fds files, by lower-case chunk name (without "@").
_COMMON: dict[str, tuple[_Field, ...]] = {
    "hw_info_03": _fields("model_name: str16", "serial_number: str16", "spect_sn: str16", "rom_ver: str16",
                          "unknown: str16", "eq_calib_year: u16", "eq_calib_month: u16", "eq_calib_day: u16",
                          "eq_calib_hour: u16", "eq_calib_minute: u16", "spect_calib_year: u16",
                          "spect_calib_month: u16", "spect_calib_day: u16", "spect_calib_hour: u16",
                          "spect_calib_minute: u16"),
    "hw_info_02": _HW_01,
    "hw_info_01": _HW_01,
    "patient_info_02": _fields("patient_id: str32", "first_name: str32", "last_name: str32", "mid_name: str8",
                               "sex: u8", "birth_date: u16[3]", "occup_reg: u8[2,20]", "r_date: u16[3]",
                               "record_id: u8[16]", "lv_date: u16[3]", "physician: u8[2,64]", "zip_code: u8[12]",
                               "addr: u8[2,48]", "phones: u8[2,16]", "nx_date: u16[6]",
                               "multipurpose_field: u8[3,20]", "descp: u8[64]", "reserved: u8[32]"),
    "file_info": _fields("0x2: u32", "0x3e8: u32", "8.0.1.20198: str32"),
    "capture_info_02": _fields("eye: u8", "scan_mode: u8", "session_id: u32", "label: str100", "cap_date: u16[6]"),
    "capture_info": _fields("eye: u8", "cap_date: u16[6]"),
    "param_scan_04": _fields("fixation: u32", "mirror_pos: u32", "polar: u32", "x_dimension_mm: f64",
                             "y_dimension_mm: f64", "z_resolution_um: f64", "comp_eff_2: f64", "comp_eff_3: f64",
                             "base_pos: u8", "used_calib_data: u8"),
    "param_scan_02": _fields("scan_mode: u8", "light_level: u32", "fixation: u32", "mirror_pos: u32", "nd: u32",
                             "polar: u32", "x_dimension_mm: f64", "y_dimension_mm: f64", "z_resolution_um: f64",
                             "comp_eff_2: f64", "comp_eff_3: f64", "noise_thresh: f64", "range_adj: f64",
                             "base_pos: u8"),
    "img_trc_02": _fields("width: u32", "height: u32", "bits_per_pixel: u32", "num_slices_0x2: u32", "format: u8",
                          "size: u32"),
    # 90-byte chunks: the long form; any other size: the short form (oct-converter's read_param_obs).
    "param_obs_02": _fields("0x1: u16", "0xffff: u16[2]", "camera_model: str12", "image_quality: str24",
                            "0x300: u16", "0x1: u16", "0x0: u16", "color_temp: str24", "0x2014: u16",
                            "zeros: u8[12]"),
    "param_obs_02_short": _fields("0x1: u16", "0xffff: u16[2]"),
    "img_mot_comp_02": _fields("temp: u8", "motion_width: u32", "motion_height: u32", "motion_depth: u32",
                               "motion_number: u32", "motion_format: u8", "motion_start_x_pos: u32",
                               "motion_start_y_pos: u32", "motion_end_x_pos: u32", "motion_end_y_pos: u32",
                               "size: u32"),
    "img_mot_comp": _fields("motion_width: u32", "motion_height: u32", "motion_depth: u32", "size: u32"),
    "img_projection": _fields("width: u32", "height: u32", "bits_per_pixel: u32", "0x1000002: u32", "size: u32"),
    "effective_scan_range": _fields("bounding_box_fundus_pixel: u32[4]", "bounding_box_trc_pixel: u32[4]"),
    "regist_info": _fields("0x0: u8", "unknown: u32[2]", "bounding_box_in_fundus_pixels: u32[4]",
                           "version: str32", "bounding_box_in_trc_pixels: u32[4]"),
    "result_cornea_curve": _fields("id: u8[20]", "width: u32", "height: u32", "8.0.1.21781: u8[32]"),
    "result_cornea_thickness": _fields("8.0.1.21781: u8[32]", "id: u8[20]", "width: u32", "height: u32"),
    "fast_q2_info": _fields("various_quality_statistics: f32[6]"),
    "gla_littmann_01": _fields("0xffff: u32", "0x1: u32"),
    "main_module_info": _fields("software_name: str128", "file_version_1: u16", "file_version_2: u16",
                                "file_version_3: u16", "file_version_4: u16", "string: str128"),
    "thumbnail": _fields("size: u32"),
    "patientext_info": _fields("unknown: u8[128]"),
}

#: .fda structures (oct-converter's fda_binary): "oct" is the @IMG_JPEG header.
_FDA: dict[str, tuple[_Field, ...]] = dict(
    _COMMON,
    oct=_fields("scan_mode: u8", "unknown1: u32", "unknown2: u32", "width: u32", "height: u32",
                "number_slices: u32", "unknown3: u32"),
    img_mot_comp_03=_OCT_RAW,
    fundus=_fields("width: u32", "height: u32", "bits_per_pixel: u32", "number_slices: u32", "format: str4",
                   "size: u32"),
    fda_file_info=_fields("0x2: u32", "0x3e8: u32", "8.0.1.20198: u8[32]"),
    contour_info=_fields("id: str20", "method: u8", "format: u8", "width: u32", "height: u32", "size: u32"),
)

#: .fds structures (oct-converter's fds_binary): "oct" is the @IMG_SCAN_03 header, "fundus" @IMG_OBS's.
_FDS: dict[str, tuple[_Field, ...]] = dict(
    _COMMON,
    oct=_OCT_RAW,
    fundus=_fields("width: u32", "height: u32", "bits_per_pixel: u32", "number_slices: u32", "format: u8",
                   "size: u32"),
    img_mot_comp_03=_fields("0x0: u8", "width: u32", "height: u32", "bits_per_pixel: u32", "num_slices: u32"),
    img_trc=_fields("width: u32", "height: u32", "bits_per_pixel: u32", "size: u32"),
    regist_scan_02=_fields("clr_scan_region: u32[4]", "obs_scan_region: u32[4]"),
)

_ALIGN = "align_info"  # the one variable-length structure, parsed by _parse_align_info


# -- the chunk index --------------------------------------------------------------------------------
@dataclass
class _Index:
    """Where each chunk's data is: name -> [(offset, size), ...] in file order."""

    file_type: str
    version: tuple[int, int]
    chunks: dict[bytes, list[tuple[int, int]]] = field(default_factory=dict)
    order: list[bytes] = field(default_factory=list)

    def first(self, name: bytes) -> tuple[int, int] | None:
        hits = self.chunks.get(name)
        return hits[0] if hits else None


def sniff(head: bytes, path: Path) -> bool:
    """``FOCT`` followed by three upper-case letters (``FDA``, ``FAA``, ...); a shorter head that starts
    with ``FOCT`` is accepted so that the reader can say the file is truncated."""
    return head[:4] == _MAGIC and all(65 <= c <= 90 for c in head[4:7])


def _index(p: Path, size: int) -> _Index:
    """Walk the chunk list, checking every chunk against the file size."""
    with open(p, "rb") as fh:
        head = fh.read(_HEADER_SIZE)
        if not head.startswith(_MAGIC) and not (len(head) < 4 and _MAGIC.startswith(head)):
            raise FormatError(p, "not a Topcon OCT file (no 'FOCT' signature)")
        if len(head) < _HEADER_SIZE:
            raise FormatError(p, f"file is truncated: the Topcon header needs {_HEADER_SIZE} bytes, "
                                 f"only {len(head)} present")
        if not all(65 <= c <= 90 for c in head[4:7]):
            raise FormatError(p, f"not a Topcon OCT file (file type {head[4:7]!r} after 'FOCT')")
        major, minor = struct.unpack_from("<II", head, 7)
        index = _Index(head[4:7].decode("ascii"), (major, minor))
        pos = _HEADER_SIZE
        while pos < size:
            fh.seek(pos)
            n = fh.read(1)[0]
            pos += 1
            if n == 0:
                break
            name = fh.read(n)
            raw_size = fh.read(4)
            if len(name) < n or len(raw_size) < 4:
                raise FormatError(p, f"file is truncated inside the chunk header at byte {pos - 1}")
            if not name.startswith(b"@"):
                raise FormatError(p, f"corrupt chunk list: chunk name {name[:40]!r} at byte {pos} "
                                     "does not start with '@'")
            (csize,) = struct.unpack("<I", raw_size)
            pos += n + 4
            if pos + csize > size:
                raise FormatError(p, f"file is truncated: chunk {_text(name)} needs {csize} bytes at byte {pos}, "
                                     f"only {size - pos} present")
            index.chunks.setdefault(name, []).append((pos, csize))
            index.order.append(name)
            pos += csize
    return index


def _text(name: bytes) -> str:
    return name.decode("latin-1")


def _chunk_bytes(p: Path, at: tuple[int, int], limit: int | None = None) -> bytes:
    offset, size = at
    with open(p, "rb") as fh:
        fh.seek(offset)
        return fh.read(size if limit is None else min(size, limit))


def _header(p: Path, fields: tuple[_Field, ...], at: tuple[int, int], what: str) -> dict:
    """A picture/volume chunk's fixed header; FormatError when the chunk is too short or it does not decode."""
    need = _size(fields)
    if at[1] < need:
        raise FormatError(p, f"file is corrupt: the {what} header needs {need} bytes, the chunk has {at[1]}")
    try:
        return _parse(fields, _chunk_bytes(p, at, need))
    except _Unparsable as exc:
        raise FormatError(p, f"corrupt {what} header: {exc}") from None


# -- the OCT volume -------------------------------------------------------------------------------
def _read_bscans(p: Path, index: _Index) -> tuple[np.ndarray, str, dict]:
    """The B-scans as an array (B-scan, row, column) plus the chunk name and its header."""
    jpeg = index.first(b"@IMG_JPEG")
    if jpeg is not None:
        hdr = _header(p, _FDA["oct"], jpeg, "@IMG_JPEG")
        return _read_jpeg_bscans(p, jpeg, hdr), "@IMG_JPEG", hdr
    for name in (b"@IMG_MOT_COMP_03", b"@IMG_SCAN_03"):
        hit = index.first(name)
        if hit is not None:
            hdr = _header(p, _OCT_RAW, hit, _text(name))
            return _read_raw_bscans(p, hit, hdr, _text(name)), _text(name), hdr
    others = sorted(_text(n) for n in index.chunks if n.startswith((b"@IMG_SCAN", b"@IMG_MOT_COMP")))
    extra = f" (it has {', '.join(others)}, which this reader does not decode)" if others else ""
    raise FormatError(p, "no OCT volume in this Topcon file: none of @IMG_JPEG, @IMG_MOT_COMP_03, "
                         f"@IMG_SCAN_03{extra}")


def _dims(p: Path, hdr: dict, what: str) -> tuple[int, int, int]:
    w, h, n = int(hdr["width"]), int(hdr["height"]), int(hdr["number_slices"])
    if not (0 < w <= _MAX_SIDE and 0 < h <= _MAX_SIDE and 0 < n <= _MAX_SIDE):
        raise FormatError(p, f"corrupt {what} header: {w} x {h} pixels x {n} B-scans")
    return w, h, n


def _read_raw_bscans(p: Path, at: tuple[int, int], hdr: dict, what: str) -> np.ndarray:
    """``@IMG_MOT_COMP_03`` / ``@IMG_SCAN_03``: uint16, column fastest, then row, then B-scan."""
    w, h, n = _dims(p, hdr, what)
    need = 22 + 2 * w * h * n
    if at[1] < need:
        raise FormatError(p, f"file is truncated: {what} with {n} B-scans of {w} x {h} needs {need} bytes, "
                             f"the chunk has {at[1]}")
    with open(p, "rb") as fh:
        fh.seek(at[0] + 22)
        data = fh.read(2 * w * h * n)
    return np.frombuffer(data, dtype="<u2").reshape(n, h, w).astype(np.uint16)


def _read_jpeg_bscans(p: Path, at: tuple[int, int], hdr: dict) -> np.ndarray:
    """``@IMG_JPEG``: per B-scan an int32 size and a JPEG picture, decoded by Pillow."""
    from PIL import Image

    n = int(hdr["number_slices"])
    offset, size = at
    if not 0 < n <= _MAX_SIDE or 25 + 4 * n > size:
        raise FormatError(p, f"corrupt @IMG_JPEG header: {n} B-scans in a chunk of {size} bytes")
    slices = []
    with open(p, "rb") as fh:
        fh.seek(offset + 25)
        pos = 25
        for s in range(n):
            if pos + 4 > size:
                raise FormatError(p, f"file is truncated or corrupt: @IMG_JPEG ends before B-scan {s} of {n}")
            (length,) = struct.unpack("<i", fh.read(4))
            pos += 4
            if length <= 0 or pos + length > size:
                raise FormatError(p, f"file is truncated or corrupt: B-scan {s} of @IMG_JPEG declares {length} "
                                     f"bytes, the chunk has {size - pos} left")
            blob = fh.read(length)
            pos += length
            try:
                with Image.open(io.BytesIO(blob)) as image:
                    if image.mode not in ("L", "I;16", "I;16L", "I;16B", "I"):
                        image = image.convert("L")
                    pixels = np.asarray(image)
            except (MemoryError, KeyboardInterrupt):
                raise
            except Exception as exc:
                raise FormatError(p, f"B-scan {s} of @IMG_JPEG is not a readable picture: "
                                     f"{type(exc).__name__}: {exc}") from exc
            if slices and pixels.shape != slices[0].shape:
                raise FormatError(p, f"B-scan {s} is {pixels.shape[1]} x {pixels.shape[0]} pixels, "
                                     f"B-scan 0 is {slices[0].shape[1]} x {slices[0].shape[0]}")
            slices.append(pixels)
    return np.stack(slices)


# -- information chunks ---------------------------------------------------------------------------
def _info(p: Path, index: _Index, table: dict) -> tuple[dict, list[str]]:
    """Every information chunk with a known structure, by lower-case chunk name (the part after the last
    ``@``), and the names of those whose structure does not fit."""
    info: dict = {}
    unparsed: list[str] = []
    for name in index.chunks:
        if name in _IMAGE_CHUNKS:
            continue
        key = _text(name).split("@")[-1].lower()
        offset, size = index.chunks[name][0]
        try:
            if key == _ALIGN:
                info[key] = _parse_align_info(_chunk_bytes(p, (offset, size)))
                continue
            if name == b"@PARAM_OBS_02":
                fields = table["param_obs_02" if size == 90 else "param_obs_02_short"]
            elif key in table:
                fields = table[key]
            else:
                continue
            # As in oct-converter, a structure longer than its chunk reads on into the following bytes.
            need = _size(fields)
            info[key] = _parse(fields, _chunk_bytes(p, (offset, max(size, need)), need))
        except _Unparsable:
            unparsed.append(_text(name))
    return info, unparsed


def _date(values: Any) -> str | None:
    try:
        return datetime(*[int(v) for v in values]).isoformat()
    except (TypeError, ValueError, OverflowError):
        return None


def _scan_params(p: Path, index: _Index, table: dict, width: int, n: int) -> list[float] | None:
    """oct-converter's pixel spacing ``[x mm / width, y mm / B-scans, z um / 1000]`` from ``@PARAM_SCAN_04``
    (else ``_02``), or None when neither chunk is there."""
    for name, key in ((b"@PARAM_SCAN_04", "param_scan_04"), (b"@PARAM_SCAN_02", "param_scan_02")):
        hit = index.first(name)
        if hit is None:
            continue
        fields = table[key]
        if hit[1] < _size(fields):
            raise FormatError(p, f"corrupt Topcon OCT file: the {_text(name)} chunk has {hit[1]} bytes, "
                                 f"its structure needs {_size(fields)}")
        params = _parse(fields, _chunk_bytes(p, hit, _size(fields)))
        return [float(params["x_dimension_mm"] / width), float(params["y_dimension_mm"] / n),
                float(params["z_resolution_um"] / 1000)]
    return None


# -- reading ------------------------------------------------------------------------------------
def read(path: str | os.PathLike[str], *, fundus: bool = True) -> list[Volume]:
    """Read a Topcon ``.fda``/``.fds`` file: the OCT volume (placed in LPS as Slicer's ImportOCT places it,
    with oct-converter's pixel spacing in mm), then, with ``fundus``, the fundus pictures as 2D volumes
    in picture order."""
    p = Path(path)
    size = nonempty_file_size(p)
    index = _index(p, size)
    is_fds = b"@IMG_SCAN_03" in index.chunks and not (b"@IMG_JPEG" in index.chunks
                                                        or b"@IMG_MOT_COMP_03" in index.chunks)
    table = _FDS if is_fds else _FDA

    bscans, oct_chunk, oct_header = _read_bscans(p, index)
    n, height, width = bscans.shape
    info, unparsed = _info(p, index, table)

    # Spacing: oct-converter's [column, B-scan, depth] in mm, from the decoded sizes.
    pixel_spacing = _scan_params(p, index, table, width, n)
    defaulted = []
    spacing_ijk = []
    for axis, value in (("i", pixel_spacing and pixel_spacing[1]), ("j", pixel_spacing and pixel_spacing[0]),
                        ("k", pixel_spacing and pixel_spacing[2])):
        if value is None or not math.isfinite(value) or value <= 0:
            defaulted.append(axis)
            value = 1.0
        spacing_ijk.append(float(value))

    contours = _contours(p, index, height) if b"@CONTOUR_INFO" in index.chunks else {}

    patient = info.get("patient_info_02") or info.get("patient_info") or {}
    capture = info.get("capture_info_02") or info.get("capture_info") or {}
    meta: dict = {
        "file_type": index.file_type,
        "version": list(index.version),
        "oct_chunk": oct_chunk,
        "oct_header": oct_header,
        "patient_id": patient.get("patient_id"),
        "first_name": patient.get("first_name"),
        "last_name": patient.get("last_name"),
        "sex": {1: "M", 2: "F", 3: "O"}.get(patient.get("sex"), ""),
        "birth_date": _date(patient.get("birth_date")),
        "acquisition_date": _date(capture.get("cap_date")),
        "laterality": {0: "R", 1: "L"}.get(capture.get("eye"), ""),
        "pixel_spacing": pixel_spacing,
        "spacing_defaulted": defaulted,
        "chunks": [_text(c) for c in index.order],
        "info": info,
        "unparsed_chunks": unparsed,
        "contours": contours,
    }
    array = np.ascontiguousarray(bscans.transpose(1, 2, 0))  # (depth row k, column j, B-scan i)
    geometry = Geometry(spacing_ijk, [0.0, 0.0, 0.0], SLICER_DIRECTION_LPS)
    name = base_name(p)
    out = [Volume(array, geometry, name=name, metadata={"topcon": meta})]
    if fundus:
        out.extend(_fundus_volumes(p, index, is_fds, name, meta))
    return out


def _contours(p: Path, index: _Index, height: int) -> dict:
    """Every ``@CONTOUR_INFO`` chunk: ``{layer name: float32 (B-scan, column) row from the top}``."""
    for offset, size in index.chunks[b"@CONTOUR_INFO"]:
        if size < 34:
            raise FormatError(p, f"corrupt @CONTOUR_INFO chunk at byte {offset}: {size} bytes")
        w, h = struct.unpack_from("<II", _chunk_bytes(p, (offset, 34)), 22)
        if 34 + 2 * w * h > size:
            raise FormatError(p, f"corrupt @CONTOUR_INFO chunk at byte {offset}: {w} x {h} heights "
                                 f"do not fit in {size} bytes")
    out = {}
    for offset, size in index.chunks[b"@CONTOUR_INFO"]:
        hdr = _header(p, _FDA["contour_info"], (offset, size), "@CONTOUR_INFO")
        w, h = hdr["width"], hdr["height"]
        data = _chunk_bytes(p, (offset + 34, 2 * w * h))
        # Heights from the B-scan bottom, stored last B-scan first: flip to B-scan order, then rows from
        # the top (oct-converter's read_segmentation and read_oct_volume).
        values = np.frombuffer(data, dtype="<u2").reshape(h, w)[::-1]
        rows = height - values.astype(np.float64)
        rows[(rows < 0) | (rows > height)] = np.nan
        out[_LAYERS.get(hdr["id"], hdr["id"])] = rows.astype(np.float32)
    return out


def _picture(p: Path, blob: bytes, what: str) -> np.ndarray:
    """A compressed picture (JPEG, PNG, ... whatever Pillow opens) as stored: no mode conversion."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(blob)) as image:
            return np.asarray(image)
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception as exc:
        raise FormatError(p, f"the {what} picture is not readable: {type(exc).__name__}: {exc}") from exc


def _fundus_volumes(p: Path, index: _Index, is_fds: bool, name: str, meta: dict) -> list[Volume]:
    common = {k: meta[k] for k in ("patient_id", "laterality", "acquisition_date")}
    out = []
    rgb = AxisInfo(name="component", kind="RGB-color")
    if is_fds:
        hit = index.first(b"@IMG_OBS")
        if hit is not None:
            image = _fds_fundus(p, hit)
            out.append(Volume(image, Geometry([1.0, 1.0], [0.0, 0.0], np.eye(2)), name=f"{name}_fundus",
                              components=rgb, metadata={"topcon": dict(common, image="@IMG_OBS")}))
        return out
    for chunk, fields, suffix in ((b"@IMG_FUNDUS", _FDA["fundus"], "fundus"),
                                  (b"@IMG_TRC_02", _FDA["img_trc_02"], "fundus_gray")):
        hit = index.first(chunk)
        if hit is None:
            continue
        header_size = _size(fields)
        if hit[1] < header_size:
            raise FormatError(p, f"corrupt {_text(chunk)} chunk: {hit[1]} bytes")
        hdr = _header(p, fields, hit, _text(chunk))
        declared = int(hdr["size"])
        if declared > hit[1] - header_size:
            raise FormatError(p, f"file is truncated: the {_text(chunk)} picture declares {declared} bytes, "
                                 f"the chunk has {hit[1] - header_size}")
        image = _picture(p, _chunk_bytes(p, (hit[0] + header_size, declared)), _text(chunk))
        if suffix == "fundus":
            # Stored BGR: flip to RGB (oct-converter's read_fundus_image); only a 3-axis picture has channels.
            if image.ndim != 3:
                raise FormatError(p, f"{_text(chunk)} decoded to a {image.shape} {image.dtype} picture, "
                                     "not a colour one")
            image = image[..., ::-1]
        if image.ndim == 3 and image.shape[2] == 1:
            image = image[..., 0]
        if suffix == "fundus_gray" and image.ndim == 3:
            image = image[..., 0]  # a grey picture decoded as RGB: the channels are equal (retimat)
        image = np.ascontiguousarray(image)
        if image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8:
            components: AxisInfo | None = rgb
        elif image.ndim == 2:
            components = None
        else:
            raise FormatError(p, f"{_text(chunk)} decoded to an unexpected {image.shape} {image.dtype} picture")
        out.append(Volume(image, Geometry([1.0, 1.0], [0.0, 0.0], np.eye(2)), name=f"{name}_{suffix}",
                          components=components, metadata={"topcon": dict(common, image=_text(chunk))}))
    return out


def _fds_fundus(p: Path, at: tuple[int, int]) -> np.ndarray:
    """``@IMG_OBS``: a 21-byte header, then BGR bytes, row after row; returned RGB (rows, columns, 3)."""
    hdr = _header(p, _FDS["fundus"], at, "@IMG_OBS")
    w, h, nbytes = int(hdr["width"]), int(hdr["height"]), int(hdr["size"])
    if not (0 < w <= _MAX_SIDE and 0 < h <= _MAX_SIDE) or nbytes < 3 * w * h or 21 + 3 * w * h > at[1]:
        raise FormatError(p, f"corrupt or truncated @IMG_OBS picture: {w} x {h}, {nbytes} bytes declared, "
                             f"chunk of {at[1]} bytes")
    data = _chunk_bytes(p, (at[0] + 21, 3 * w * h))
    return np.ascontiguousarray(np.frombuffer(data, np.uint8).reshape(h, w, 3)[..., ::-1])


def contour_points(volume: Volume, layer: str) -> np.ndarray:
    """One layer boundary of a Topcon volume as LPS points (N, 3), in mm: for each B-scan ``i`` and
    column ``j`` with a boundary row ``k`` (NaN skipped), the point at voxel index (i, j, k)."""
    contours = (volume.metadata.get("topcon") or {}).get("contours") or {}
    if layer not in contours:
        raise MedioError(volume.source, f"no layer contour {layer!r}; the file has {sorted(contours) or 'none'}")
    rows = np.asarray(contours[layer], dtype=float)
    i, j = np.nonzero(np.isfinite(rows))
    ijk = np.stack([i, j, rows[i, j]], axis=1).astype(float)
    return volume.geometry.index_to_lps(ijk)


FORMAT = register(
    FileFormat(
        name=NAME,
        description="Topcon OCT (.fda, .fds)",
        extensions=(".fda", ".fds"),
        read=read,
        sniff=sniff,
        kinds=(DataKind.VOLUME,),
        backend="hand-written (struct/NumPy; Pillow for the JPEG/PNG pictures)",
        read_options={"fundus": "also return the fundus photographs as 2D volumes (default True)"},
    )
)
