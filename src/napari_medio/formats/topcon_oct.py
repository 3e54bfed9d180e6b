"""Topcon OCT files (``.fda``, ``.fds``): the OCT volume, the fundus photographs, layer contours.

3D Slicer reads ``.fda`` through the Sandbox extension's ImportOCT module
(PerkLab/SlicerSandbox, ``ImportOCT/ImportOCT.py``), which calls the
``oct-converter`` package (PyPI ``oct-converter``, MIT, module
``oct_converter.readers.FDA``).  This reader uses the same package, installed
with the optional extra ``pip install napari-medio[oct]``.

Layout (little-endian; reverse engineered by uocte, "Topcon File Format" wiki
page, and by oct-converter; there is no public specification):

* a 15-byte header: ``"FOCT"``, three letters (``"FDA"``, or ``"FAA"`` for
  external fixation), two uint32 version numbers;
* named chunks: uint8 name length, the name (``@IMG_JPEG``, ...), uint32 data
  size, the data; a name length of 0 ends the list (a file that ends exactly
  after a chunk is accepted too);
* the OCT volume is ``@IMG_JPEG`` (a 25-byte header, then per B-scan a uint32
  size and a JPEG picture), ``@IMG_MOT_COMP_03`` (a 22-byte header, then
  uint16 voxels, B-scan after B-scan, row after row) or, in ``.fds`` files,
  ``@IMG_SCAN_03`` (the same as ``@IMG_MOT_COMP_03``); oct-converter prefers
  ``@IMG_JPEG`` and so does this reader;
* ``@PARAM_SCAN_04`` (or ``_02``): scan width and length in mm and the axial
  resolution in micrometres per pixel;
* ``@IMG_FUNDUS`` (``.fda``: a JPEG colour photograph stored BGR),
  ``@IMG_TRC_02`` (``.fda``: a grey fundus picture), ``@IMG_OBS`` (``.fds``:
  raw BGR bytes);
* ``@CONTOUR_INFO`` (one chunk per layer boundary): a 34-byte header and a
  uint16 map of boundary heights, one row per B-scan;
* patient, capture, hardware and other information chunks.

What comes from oct-converter: every header and information chunk layout
(its ``construct`` structures in ``fda_binary`` / ``fds_binary``), the pixel
spacing (``FDA.read_scan_params``), the fundus pictures
(``FDA.read_fundus_image`` / ``read_fundus_image_gray_scale``: JPEG decoding
by Pillow and the BGR -> RGB flip), the layer contours and their names
(``FDA.read_segmentation``), and the meaning of the patient fields (sex 1/2/3 =
M/F/O, eye 0/1 = right/left).

What is written by hand here, and why:

* the chunk index and the voxel decoding of ``@IMG_JPEG``,
  ``@IMG_MOT_COMP_03``, ``@IMG_SCAN_03`` and ``@IMG_OBS``: oct-converter 0.7.0
  (the newest release, and its repository as of 2026) reads them with
  ``numpy.fromstring`` in binary mode, which NumPy 2.3 removed, so its
  ``FDA(path)`` constructor and volume readers raise ``ValueError`` on any
  current NumPy.  The index written here also checks every chunk against the
  file size, so a truncated or corrupt file is one :class:`FormatError` rather
  than an ``IndexError`` or a read past the end; the library's classes are
  subclassed with this index and keep their own decoding of everything else
  (the index always lists ``@CONTOUR_INFO`` chunks, so that a file with a
  single contour reads too: the library's own index gives a bare offset there,
  on which its ``read_segmentation`` fails);
* the information chunks are parsed with the library's structures on each
  chunk's own bytes (the library's ``read_any_info_and_make_dict`` reads the
  whole rest of the file for every chunk, and its one variable-length
  structure, ``@ALIGN_INFO``, can then loop over megabytes of garbage);
* the layout in LPS space (the library has no notion of one).

Coordinates.  The volume is placed exactly as Slicer's ImportOCT places it:
the array is ``a[k, j, i]`` with ``k`` = row of a B-scan (depth, top first),
``j`` = column of a B-scan (A-scan), ``i`` = B-scan number, that is Slicer's
``octVolumeArray[row, column, bscan]``, and Slicer's IJK-to-RAS matrix
``[[0, 1, 0], [0, 0, -1], [-1, 0, 0]]`` becomes in LPS::

    i (B-scan)  -> -S       j (column) -> -L (= +R)      k (depth) -> +P

with the origin at 0 (Slicer's default; the file gives no position).  This is
a display convention (B-scans in axial slices, depth going posterior), not the
eye's true position.  Slicer leaves the spacing at 1 mm ("does not set voxel
size"); here it is oct-converter's pixel spacing: ``i``: scan length /
number of B-scans, ``j``: scan width / B-scan width, ``k``: axial resolution
/ 1000 (``@PARAM_SCAN_04``, else ``_02``; 1 mm for an axis with no valid value,
listed in ``metadata["topcon"]["spacing_defaulted"]``).

The fundus pictures are 2D volumes in picture order (``a[row, column]``,
identity direction, origin 0, 1 mm pixels: the file gives no pixel size), as
napari-medio's PNG/JPEG reader places a photograph.  ``@IMG_FUNDUS`` (and
``@IMG_OBS``) become an RGB volume named ``<name>_fundus``, ``@IMG_TRC_02`` a
grey volume ``<name>_fundus_gray``.

Layer contours are kept in ``metadata["topcon"]["contours"]``: ``{layer name:
float32 array (B-scan, column)}`` with the boundary's row index ``k`` counted
from the top of the B-scan, as oct-converter's ``read_oct_volume`` gives them
(``height - stored value``, the B-scan order reversed as in oct-converter and
retimat); stored values that fall outside the B-scan (Topcon marks missing
boundaries with large values) are NaN.  :func:`contour_points` turns one into
LPS points.

``metadata["topcon"]`` also holds ``patient_id``, ``first_name``,
``last_name``, ``sex``, ``birth_date`` and ``acquisition_date`` (ISO text),
``laterality`` ("R"/"L"), ``file_type``, ``version``, ``oct_chunk``,
``oct_header``, ``pixel_spacing`` (oct-converter's ``[column, B-scan,
depth]`` mm), ``chunks`` (every chunk name in file order) and ``info``: every
information chunk the library has a structure for, by lower-case chunk name
(``patient_info_02``, ``capture_info_02``, ``param_scan_04``,
``hw_info_03``, ``regist_info``, ...), with ``unparsed_chunks`` naming those
whose structure did not fit (for example a non-ASCII patient name, which the
library's ASCII strings refuse).

Not supported: the ``@IMG_SCAN_02`` and older ``@IMG_MOT_COMP`` volume
variants and radial/line scan geometry (read as a stack of B-scans like any
other scan, as Slicer does), the float64 contour variant (the library reads
uint16 only), writing.

Reader options: ``fundus`` (bool, default True): also return the fundus pictures.
"""
from __future__ import annotations

import contextlib
import io
import math
import os
import struct
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import FormatError, MedioError
from ..core.geometry import Geometry
from ..core.registry import FileFormat, register
from ..core.volume import AxisInfo, Volume
from ._common import base_name
from ._imageio import file_size

__all__ = ["INSTALL_HINT", "NAME", "SLICER_DIRECTION_LPS", "contour_points", "read", "sniff"]

NAME = "topcon-oct"

#: What to install when oct-converter is missing.
INSTALL_HINT = "pip install napari-medio[oct]"

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
# Variables set by importing oct-converter (OpenCV's loader points Qt at its own plugins).
_ENV_KEYS = ("QT_QPA_PLATFORM_PLUGIN_PATH", "QT_QPA_FONTDIR", "LD_LIBRARY_PATH", "PATH")


@dataclass
class _Index:
    """Where each chunk's data is: name -> [(offset, size), ...] in file order."""

    file_type: str
    version: tuple[int, int]
    header: dict
    chunks: dict[bytes, list[tuple[int, int]]] = field(default_factory=dict)
    order: list[bytes] = field(default_factory=list)

    def first(self, name: bytes) -> tuple[int, int] | None:
        hits = self.chunks.get(name)
        return hits[0] if hits else None

    def library_dict(self) -> dict:
        """The ``chunk_dict`` oct-converter's methods expect: ``[offset, size]``, and lists of both for
        ``@CONTOUR_INFO`` (its ``read_segmentation`` iterates over them)."""
        out: dict = {}
        for name, hits in self.chunks.items():
            if name == b"@CONTOUR_INFO":
                out[name] = [[h[0] for h in hits], [h[1] for h in hits]]
            else:
                out[name] = [hits[0][0], hits[0][1]]
        return out


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
        index = _Index(head[4:7].decode("ascii"), (major, minor),
                       {"file_code": "FOCT", "file_type": head[4:7].decode("ascii"),
                        "major_ver": major, "minor_ver": minor})
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


# -- oct-converter --------------------------------------------------------------------------------
_LIB: dict | None = None


def _library(p: Path) -> dict:
    """oct-converter's FDA/FDS classes (subclassed to take this module's chunk index) and structures."""
    global _LIB
    if _LIB is not None:
        return _LIB
    saved = {k: os.environ.get(k) for k in _ENV_KEYS}
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            from construct import ConstructError, ListContainer
            from oct_converter.readers.binary_structs import fda_binary, fds_binary
            from oct_converter.readers.fda import FDA
            from oct_converter.readers.fds import FDS
    except ImportError as exc:
        raise MedioError(p, "reading Topcon OCT files (.fda, .fds) needs the optional 'oct-converter' package "
                            f"({INSTALL_HINT}); importing it failed: {exc}") from exc
    finally:
        # OpenCV (imported by oct-converter) repoints Qt's plugin search at its own copy of Qt,
        # which breaks any Qt application (napari) started later in this process or its children.
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    def indexed(base: type) -> type:
        class Indexed(base):  # type: ignore[misc, valid-type]
            """oct-converter's reader on a chunk index made here (its own uses numpy.fromstring)."""

            def __init__(self, filepath: Path, index: _Index) -> None:
                self._medio_index = index
                super().__init__(filepath)

            def get_list_of_file_chunks(self, printing: bool = False) -> tuple[dict, dict]:
                return self._medio_index.library_dict(), dict(self._medio_index.header)

        Indexed.__name__ = f"Indexed{base.__name__}"
        return Indexed

    _LIB = {"FDA": indexed(FDA), "FDS": indexed(FDS), "fda_binary": fda_binary, "fds_binary": fds_binary,
            "ConstructError": ConstructError, "ListContainer": ListContainer}
    return _LIB


def _call(p: Path, what: str, fn: Any, *args: Any) -> Any:
    """Run one oct-converter call; any failure is a FormatError naming the file."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return fn(*args)
    except MedioError:
        raise
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception as exc:
        raise FormatError(p, f"corrupt Topcon OCT file: {what}: {type(exc).__name__}: {exc}") from exc


def _plain(value: Any) -> Any:
    """construct containers -> plain Python (lists, dicts, str, int, float)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items() if not str(k).startswith("_")}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    return value


# -- the OCT volume -------------------------------------------------------------------------------
def _read_bscans(p: Path, index: _Index, lib: dict) -> tuple[np.ndarray, str, dict]:
    """The B-scans as an array (B-scan, row, column) plus the chunk name and its header."""
    jpeg = index.first(b"@IMG_JPEG")
    if jpeg is not None:
        return _read_jpeg_bscans(p, jpeg, lib), "@IMG_JPEG", _header(p, lib["fda_binary"].oct_header, jpeg, "@IMG_JPEG")
    for name, binary in ((b"@IMG_MOT_COMP_03", lib["fda_binary"].oct_header_2),
                         (b"@IMG_SCAN_03", lib["fds_binary"].oct_header)):
        hit = index.first(name)
        if hit is not None:
            hdr = _header(p, binary, hit, _text(name))
            return _read_raw_bscans(p, hit, hdr, _text(name)), _text(name), hdr
    others = sorted(_text(n) for n in index.chunks if n.startswith((b"@IMG_SCAN", b"@IMG_MOT_COMP")))
    extra = f" (it has {', '.join(others)}, which oct-converter does not decode)" if others else ""
    raise FormatError(p, "no OCT volume in this Topcon file: none of @IMG_JPEG, @IMG_MOT_COMP_03, "
                         f"@IMG_SCAN_03{extra}")


def _chunk_bytes(p: Path, at: tuple[int, int], limit: int | None = None) -> bytes:
    offset, size = at
    with open(p, "rb") as fh:
        fh.seek(offset)
        return fh.read(size if limit is None else min(size, limit))


def _header(p: Path, binary: Any, at: tuple[int, int], what: str) -> dict:
    need = binary.sizeof()
    if at[1] < need:
        raise FormatError(p, f"file is corrupt: the {what} header needs {need} bytes, the chunk has {at[1]}")
    return _plain(dict(binary.parse(_chunk_bytes(p, at, need))))


def _dims(p: Path, hdr: dict, what: str) -> tuple[int, int, int]:
    w, h, n = int(hdr["width"]), int(hdr["height"]), int(hdr["number_slices"])
    if not (0 < w <= _MAX_SIDE and 0 < h <= _MAX_SIDE and 0 < n <= _MAX_SIDE):
        raise FormatError(p, f"corrupt {what} header: {w} x {h} pixels x {n} B-scans")
    return w, h, n


def _read_raw_bscans(p: Path, at: tuple[int, int], hdr: dict, what: str) -> np.ndarray:
    w, h, n = _dims(p, hdr, what)
    need = 22 + 2 * w * h * n
    if at[1] < need:
        raise FormatError(p, f"file is truncated: {what} with {n} B-scans of {w} x {h} needs {need} bytes, "
                             f"the chunk has {at[1]}")
    with open(p, "rb") as fh:
        fh.seek(at[0] + 22)
        data = fh.read(2 * w * h * n)
    # oct-converter: uint16, width fastest, then height, then B-scan (its Fortran-order reshape).
    return np.frombuffer(data, dtype="<u2").reshape(n, h, w).astype(np.uint16)


def _read_jpeg_bscans(p: Path, at: tuple[int, int], lib: dict) -> np.ndarray:
    from PIL import Image  # a dependency of oct-converter (through imageio)

    hdr = _header(p, lib["fda_binary"].oct_header, at, "@IMG_JPEG")
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
def _info(p: Path, index: _Index, lib: dict, binary: Any) -> tuple[dict, list[str]]:
    """Every information chunk the library has a structure for, parsed on the chunk's own bytes."""
    info: dict = {}
    unparsed: list[str] = []
    for name in index.chunks:
        if name in _IMAGE_CHUNKS:
            continue
        key = _text(name).split("@")[-1].lower()
        offset, size = index.first(name)  # type: ignore[misc]
        if name == b"@PARAM_OBS_02":  # oct-converter: 90 bytes long form, else the 6-byte short form
            structure = binary.param_obs_02_header if size == 90 else binary.param_obs_02_short_header
        else:
            structure = getattr(binary, f"{key}_header", None)
        if structure is None:
            continue
        try:
            need = structure.sizeof()
        except Exception:  # noqa: BLE001 - variable length (@ALIGN_INFO): its own bytes only
            need = size
        # Like the library, a structure longer than its chunk reads on into the next bytes.
        data = _chunk_bytes(p, (offset, max(size, need)), max(size, need))
        try:
            parsed = structure.parse(data)
        except (MemoryError, KeyboardInterrupt):
            raise
        except Exception:  # noqa: BLE001 - construct raises many kinds; the chunk is listed
            unparsed.append(_text(name))
            continue
        info[key] = _plain(dict(parsed))
    return info, unparsed


def _date(values: Any) -> str | None:
    try:
        return datetime(*[int(v) for v in values]).isoformat()
    except (TypeError, ValueError, OverflowError):
        return None


# -- reading ------------------------------------------------------------------------------------
def read(path: str | os.PathLike[str], *, fundus: bool = True, **_: Any) -> list[Volume]:
    """Read a Topcon ``.fda``/``.fds`` file: the OCT volume (placed in LPS as Slicer's ImportOCT places it,
    with oct-converter's spacing), then, with ``fundus``, the fundus pictures as 2D volumes."""
    p = Path(path)
    size = file_size(p)
    if size == 0:
        raise FormatError(p, "file is empty")
    index = _index(p, size)
    lib = _library(p)
    is_fds = b"@IMG_SCAN_03" in index.chunks and not (b"@IMG_JPEG" in index.chunks
                                                        or b"@IMG_MOT_COMP_03" in index.chunks)
    binary = lib["fds_binary"] if is_fds else lib["fda_binary"]
    reader = _call(p, "chunk list", lib["FDS" if is_fds else "FDA"], p, index)

    bscans, oct_chunk, oct_header = _read_bscans(p, index, lib)
    n, height, width = bscans.shape
    info, unparsed = _info(p, index, lib, binary)

    # Spacing: oct-converter's [column, B-scan, depth] in mm, from the decoded sizes.
    pixel_spacing = None
    if b"@PARAM_SCAN_04" in index.chunks or b"@PARAM_SCAN_02" in index.chunks:
        pixel_spacing = _call(p, "@PARAM_SCAN", reader.read_scan_params,
                              dict(oct_header, width=width, height=height, number_slices=n))
        pixel_spacing = [float(v) for v in pixel_spacing]
    defaulted = []
    spacing_ijk = []
    for axis, value in (("i", pixel_spacing and pixel_spacing[1]), ("j", pixel_spacing and pixel_spacing[0]),
                        ("k", pixel_spacing and pixel_spacing[2])):
        if value is None or not math.isfinite(value) or value <= 0:
            defaulted.append(axis)
            value = 1.0
        spacing_ijk.append(float(value))

    contours = _contours(p, index, reader, height) if b"@CONTOUR_INFO" in index.chunks else {}

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
        out.extend(_fundus_volumes(p, index, reader, is_fds, name, meta))
    return out


def _contours(p: Path, index: _Index, reader: Any, height: int) -> dict:
    for offset, size in index.chunks[b"@CONTOUR_INFO"]:
        if size < 34:
            raise FormatError(p, f"corrupt @CONTOUR_INFO chunk at byte {offset}: {size} bytes")
        w, h = struct.unpack_from("<II", _chunk_bytes(p, (offset, 34)), 22)
        if 34 + 2 * w * h > size:
            raise FormatError(p, f"corrupt @CONTOUR_INFO chunk at byte {offset}: {w} x {h} heights "
                                 f"do not fit in {size} bytes")
    raw = _call(p, "@CONTOUR_INFO", reader.read_segmentation) or {}
    out = {}
    for layer, values in raw.items():
        rows = height - np.asarray(values, dtype=np.float64)  # as oct-converter's read_oct_volume
        rows[(rows < 0) | (rows > height)] = np.nan
        out[str(layer)] = rows.astype(np.float32)
    return out


def _fundus_volumes(p: Path, index: _Index, reader: Any, is_fds: bool, name: str, meta: dict) -> list[Volume]:
    common = {k: meta[k] for k in ("patient_id", "laterality", "acquisition_date")}
    out = []
    rgb = AxisInfo(name="component", kind="RGB-color")
    if is_fds:
        hit = index.first(b"@IMG_OBS")
        if hit is not None:
            image = _fds_fundus(p, hit, reader)
            out.append(Volume(image, Geometry([1.0, 1.0], [0.0, 0.0], np.eye(2)), name=f"{name}_fundus",
                              components=rgb, metadata={"topcon": dict(common, image="@IMG_OBS")}))
        return out
    for chunk, header_size, method, suffix in ((b"@IMG_FUNDUS", 24, reader.read_fundus_image, "fundus"),
                                               (b"@IMG_TRC_02", 21, reader.read_fundus_image_gray_scale,
                                                "fundus_gray")):
        hit = index.first(chunk)
        if hit is None:
            continue
        if hit[1] < header_size:
            raise FormatError(p, f"corrupt {_text(chunk)} chunk: {hit[1]} bytes")
        (declared,) = struct.unpack_from("<I", _chunk_bytes(p, (hit[0], header_size)), header_size - 4)
        if declared > hit[1] - header_size:
            raise FormatError(p, f"file is truncated: the {_text(chunk)} picture declares {declared} bytes, "
                                 f"the chunk has {hit[1] - header_size}")
        picture = _call(p, _text(chunk), method)
        image = np.asarray(picture.image)
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


def _fds_fundus(p: Path, at: tuple[int, int], reader: Any) -> np.ndarray:
    """``@IMG_OBS``: oct-converter's layout (21-byte header, BGR bytes, row after row), decoded here
    because the library's ``FDS.read_fundus_image`` uses the removed ``numpy.fromstring``."""
    lib = _LIB or {}
    hdr = _header(p, lib["fds_binary"].fundus_header, at, "@IMG_OBS")
    w, h, nbytes = int(hdr["width"]), int(hdr["height"]), int(hdr["size"])
    if not (0 < w <= _MAX_SIDE and 0 < h <= _MAX_SIDE) or nbytes < 3 * w * h or 21 + 3 * w * h > at[1]:
        raise FormatError(p, f"corrupt or truncated @IMG_OBS picture: {w} x {h}, {nbytes} bytes declared, "
                             f"chunk of {at[1]} bytes")
    with open(p, "rb") as fh:
        fh.seek(at[0] + 21)
        data = fh.read(3 * w * h)
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
        kinds=("volume",),
        backend="oct-converter (chunk index and B-scan decoding by napari-medio)",
        read_options={"fundus": "also return the fundus photographs as 2D volumes (default True)"},
    )
)
