"""IGSIO / PLUS sequence metafiles (``.seq.mha``, ``.seq.mhd``, ``.igs.mha``, ``.igs.mhd``, ``.igs.nrrd``).

The "sequence metafile" of the PLUS toolkit and of 3D Slicer's SlicerIGSIO
extension stores a series of image frames (tracked ultrasound, surgical video)
together with per-frame metadata: timestamps, tracker poses, statuses.  It is an
ordinary MetaImage (or NRRD) file whose last axis is the frame axis, plus
custom header fields:

* MetaImage container (``.seq.mha`` / ``.igs.mha`` single file, ``.seq.mhd`` /
  ``.igs.mhd`` with a ``.raw`` or zlib ``.zraw`` data file): ``ObjectType = Image``,
  ``NDims = 3`` (2D frames, ``DimSize = X Y N``) or ``4`` (3D frames,
  ``DimSize = X Y Z N``), ``ElementType``, ``ElementNumberOfChannels``,
  ``BinaryData``, ``CompressedData`` / ``CompressedDataSize`` (a zlib stream over
  all frames), ``Offset``, ``TransformMatrix``, ``ElementSpacing``, the optional
  ``Kinds = domain domain list`` (PLUS writes a leading ``vector`` entry, and a
  matching leading ``DimSize`` value, for multi-channel frames),
  ``UltrasoundImageOrientation`` (``MF``, ``MN``, ``UF``, ... as stored),
  ``UltrasoundImageType`` (``BRIGHTNESS``, ``RGB_COLOR``, ...), then one line per
  frame and field ``Seq_Frame0000_<Name> = <value>``, and ``ElementDataFile`` last.
* NRRD container (``.igs.nrrd``): the same fields as ``key:=value`` pairs
  (``ultrasound image orientation:=MF``; the frame status is ``Seq_Frame0000_Status``).

Usual frame fields: ``FrameNumber``, ``Timestamp``, ``UnfilteredTimestamp``,
``ImageStatus`` (``OK`` / ``INVALID``: an INVALID frame holds blank voxels),
``<A>To<B>Transform`` (16 numbers, a row-major 4x4 matrix) and
``<A>To<B>TransformStatus`` (``OK`` / ``INVALID``).  A file may hold tracking data
only (``DimSize = 0 0 N``).

Coordinate system: like every MetaImage/NRRD, the image geometry (``Offset``,
``TransformMatrix`` rows = axis directions, ``ElementSpacing``) is LPS, read as
ITK reads it (``AnatomicalOrientation`` is ignored, as ITK and Slicer do); voxels
are kept as stored -- the frames are *not* flipped to PLUS's in-memory ``MF``
orientation (``UltrasoundImageOrientation`` is kept so a caller can).  Tracker
transforms are kept exactly as stored (PLUS coordinate frames, no LPS/RAS
conversion).

Result: ONE :class:`Volume` with a leading ``frame`` axis (values: the frame
timestamps when every frame has one, else frame indices), spatial axes as
``(1, Y, X)`` for 2D frames (a single-slice 3D geometry, as ``nrrd.py`` gives a
sequence of 2D images) or ``(Z, Y, X)`` for 3D frames, and a trailing component
axis for multi-channel frames (``RGB-color`` for 8-bit RGB).  The metadata is
``volume.metadata["igsio"] = {"frames": [{field: value} per frame], "fields":
{global custom fields}}`` with transforms as 4x4 float lists, timestamps as
floats, ``FrameNumber`` as int and everything else as text (the NRRD spellings
``ultrasound image orientation`` / ``ultrasound image type`` / ``Status`` are
given the MetaImage names, so both containers give the same metadata).

Facts from the IGSIO sources (``SequenceIO/vtkIGSIOMetaImageSequenceIO.cxx``,
``vtkIGSIONrrdSequenceIO.cxx``, ``IGSIOCommon/igsioTrackedFrame.cxx``, the test file
``MetaImageSequenceIOTest1.igs.mhd``) and the PLUS user manual page "Sequence
file" (FileSequenceFile).  Written by hand because there is no maintained
Python reader (nothing on PyPI; IGSIO and SlicerIGSIO are C++ only), and the
generic readers do not fit: SimpleITK reads the voxels but neither the PLUS
multi-channel ``DimSize`` layout nor the per-frame fields, and PLUS headers grow
to megabytes (several lines per frame), so the header is streamed here.

Plain ``.mha`` / ``.nrrd`` files are never claimed here, even with ``Seq_Frame``
fields: their extensions pick the MetaImage / NRRD readers, which read them as
ordinary images (the frame fields then land in their custom-field metadata).

Reader options:
    ``labelmap`` (bool | None), ``mmap`` (bool, default True: raw data memory-mapped).
Writer options:
    ``compress`` (bool, default True): zlib (MetaImage) or gzip (NRRD) voxels.
"""
from __future__ import annotations

import math
import os
import re
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from ..core import registry
from ..core.errors import FormatError, MedioError, WriteError
from ..core.fileio import atomic_outputs
from ..core.geometry import Geometry
from ..core.kinds import DataKind
from ..core.volume import AxisInfo, Volume
from . import metaimage as _mi
from . import nrrd as _nrrd
from ._imageio import LABELMAP_OPTION, file_size, header_numbers, nonempty_file_size, require_bytes, volume_kind
from .nrrd import format_number

__all__ = ["EXTENSIONS", "read", "sniff", "write"]

NAME = "igsio-sequence"
EXTENSIONS = (".seq.mha", ".seq.mhd", ".igs.mha", ".igs.mhd", ".igs.nrrd")

_FRAME_KEY = re.compile(r"^Seq_Frame(\d+)_(.+)$", re.IGNORECASE)
#: Structural MetaImage keys regenerated on write (not kept in ``fields``).
_MHA_STRUCTURAL = set(_mi.STANDARD_KEYS) | {"Kinds"}
#: NRRD global field spellings -> the MetaImage names used in the metadata.
_NRRD_NAMES = {"ultrasound image orientation": "UltrasoundImageOrientation",
               "ultrasound image type": "UltrasoundImageType"}
_MET_TYPES = {v: k for k, v in _mi.NUMPY_TYPES.items() if k not in ("MET_LONG", "MET_ULONG")}
_SPATIAL_KINDS = {"domain", "space"}
_FRAME_KINDS = {"list", "time"}


# -- small helpers ---------------------------------------------------------------------------
def _ext(path: str | os.PathLike[str]) -> str | None:
    lower = os.fspath(path).lower()
    return next((e for e in EXTENSIONS if lower.endswith(e)), None)


def _name(path: Path) -> str:
    ext = _ext(path)
    return path.name[: -len(ext)] if ext else path.stem


def sniff(head: bytes, path: Path) -> bool:
    """A MetaImage or NRRD header with ``Seq_Frame`` fields (or one named with a sequence extension)."""
    claimed = b"seq_frame" in head.lower() or _ext(path) is not None
    if head.startswith(b"NRRD000"):
        return claimed
    return claimed and _metaimage_header(head)


def _metaimage_header(head: bytes) -> bool:
    """``Key = value`` lines with ObjectType = Image or NDims (DimSize may be missing: the reader says so)."""
    pairs = _mi.header_pairs(head[:4096])
    if not pairs:
        return False
    keys = {k for k, _ in pairs}
    obj = dict(pairs).get("ObjectType", "Image").strip().lower()
    return ("NDims" in keys or "ObjectType" in keys) and obj == "image"


def _parse_value(path: Path, where: str, name: str, value: str, strict: bool = True) -> Any:
    """A frame/global field value: 4x4 list for transforms, float timestamps, int FrameNumber, else text."""
    text = value.strip()
    if name.endswith("Transform"):
        parts = text.split()
        try:
            numbers = [float(v) for v in parts]
        except ValueError:
            numbers = []
        if len(numbers) != 16 or not all(np.isfinite(numbers)):
            if not strict:
                return text
            raise FormatError(path, f"{where} field {name} is not a 4x4 transform (16 numbers): {text[:80]!r}")
        return [numbers[r * 4: r * 4 + 4] for r in range(4)]
    if name.endswith("Timestamp"):
        try:
            return float(text)
        except ValueError:
            if not strict:
                return text
            raise FormatError(path, f"{where} field {name} is not a number: {text[:80]!r}") from None
    if name == "FrameNumber":
        try:
            return int(text)
        except ValueError:
            return text
    return text


def _format_value(value: Any) -> str:
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        flat: list = []
        for row in value:
            flat.extend(row if isinstance(row, (list, tuple, np.ndarray)) else [row])
        return " ".join(format_number(v) for v in flat)
    if isinstance(value, (bool, np.bool_)):
        return "True" if value else "False"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    return str(value).replace("\r", " ").replace("\n", " ")


def _split_frame_fields(path: Path, pairs: list[tuple[str, str]], nrrd: bool) -> tuple[dict, dict[int, dict]]:
    """Global custom fields and ``{frame index: {name: parsed value}}``."""
    fields: dict = {}
    frames: dict[int, dict] = {}
    for key, value in pairs:
        m = _FRAME_KEY.match(key)
        if m is None:
            if "seq_frame" in key.lower():
                raise FormatError(path, f"malformed frame field name {key!r} (expected Seq_FrameNNNN_Name)")
            name = _NRRD_NAMES.get(key.lower(), key) if nrrd else key
            fields[name] = _parse_value(path, "global", name, value, strict=False)
            continue
        index, name = int(m.group(1)), m.group(2).strip()
        if nrrd and name == "Status":
            name = "ImageStatus"
        frames.setdefault(index, {})[name] = _parse_value(path, f"frame {index}", name, value)
    return fields, frames


def _frame_list(path: Path, frames: dict[int, dict], n: int) -> list[dict]:
    if frames and max(frames) >= n:
        raise FormatError(path, f"frame count mismatch: the header has fields for frame {max(frames)} "
                                f"but the image holds {n} frame{'s' if n != 1 else ''}")
    return [frames.get(i, {}) for i in range(n)]


def _frame_axis(frames: list[dict]) -> AxisInfo:
    stamps = [f.get("Timestamp") for f in frames]
    if frames and all(isinstance(s, float) for s in stamps):
        return AxisInfo(name="frame", unit="s", values=list(stamps), kind="list")
    return AxisInfo(name="frame", unit="", values=list(range(len(frames))), kind="list")


def _components(n: int, dtype: np.dtype) -> AxisInfo | None:
    if n <= 1:
        return None
    if dtype == np.uint8 and n in (3, 4):
        return AxisInfo(name="component", kind="RGB-color" if n == 3 else "RGBA-color")
    return AxisInfo(name="component", kind="vector")


# -- MetaImage container: reading ------------------------------------------------------------
def _mha_layout(path: Path, fields: dict) -> tuple[list[int], int, int, int]:
    """Spatial sizes (x, y[, z]), frame count, channels, number of geometry axes (NDims)."""
    if "DimSize" not in fields:
        raise FormatError(path, "header has no DimSize")
    dims = header_numbers(path, fields, "DimSize", None, int, "MetaImage")
    try:
        ndims = int(fields.get("NDims", str(len(dims))))
    except ValueError:
        raise FormatError(path, f"malformed NDims {fields.get('NDims')!r}") from None
    try:
        channels = int(fields.get("ElementNumberOfChannels", "1"))
    except ValueError:
        raise FormatError(path, f"malformed ElementNumberOfChannels {fields['ElementNumberOfChannels']!r}") from None
    if channels < 1:
        raise FormatError(path, f"invalid ElementNumberOfChannels {channels}")
    kinds = [k.lower() for k in fields.get("Kinds", "").split()]
    if not kinds:
        if len(dims) != ndims:
            raise FormatError(path, f"DimSize {dims} does not have NDims = {ndims} values")
        kinds = ["domain"] * (ndims - 1) + ["list"]
    if "vector" in kinds and len(dims) == len(kinds) - 1:
        kinds.remove("vector")  # the channel count given by ElementNumberOfChannels only
    if len(kinds) != len(dims):
        raise FormatError(path, f"DimSize {dims} does not match Kinds {fields.get('Kinds')!r}")
    spatial: list[int] = []
    frames: int | None = None
    for pos, (kind, size) in enumerate(zip(kinds, dims)):
        if size < 0:
            raise FormatError(path, f"negative size in DimSize {dims}")
        if kind == "vector":
            if size != channels and not (channels == 1 and size >= 1):
                raise FormatError(path, f"vector size {size} in DimSize differs from ElementNumberOfChannels "
                                        f"{channels}")
            channels = size
        elif kind in _FRAME_KINDS:
            if frames is not None or pos != len(kinds) - 1:
                raise FormatError(path, f"unsupported axis layout Kinds = {fields.get('Kinds')!r} (the frame axis "
                                        "must be the last one)")
            frames = size
        elif kind in _SPATIAL_KINDS:
            if frames is not None:
                raise FormatError(path, "a spatial axis after the frame axis is not supported")
            spatial.append(size)
        else:
            raise FormatError(path, f"unknown axis kind {kind!r} in Kinds")
    if len(spatial) not in (2, 3):
        raise FormatError(path, f"{len(spatial)} spatial axes in DimSize {dims}: frames must be 2D or 3D")
    return spatial, 1 if frames is None else frames, channels, len(spatial) + (0 if frames is None else 1)


def _mha_geometry(path: Path, fields: dict, nspatial: int, naxes: int) -> Geometry:
    """3D LPS geometry of one frame from ElementSpacing / Offset / TransformMatrix (ITK's reading)."""
    spacing = header_numbers(path, fields, "ElementSpacing") or header_numbers(path, fields, "ElementSize") or []
    origin = None
    for key in ("Offset", "Origin", "Position"):
        origin = header_numbers(path, fields, key)
        if origin is not None:
            break
    origin = origin or []
    matrix = None
    for key in ("TransformMatrix", "Rotation", "Orientation"):
        matrix = header_numbers(path, fields, key)
        if matrix is not None:
            break
    if matrix is None:
        direction = np.eye(naxes)
    else:
        side = math.isqrt(len(matrix))
        if side * side != len(matrix) or side < nspatial:
            raise FormatError(path, f"TransformMatrix has {len(matrix)} values; expected {naxes * naxes}")
        direction = np.asarray(matrix, dtype=float).reshape(side, side).T  # rows on disk = axis directions
    n3 = min(3, direction.shape[0])
    d = np.eye(3)
    d[:n3, :n3] = direction[:n3, :n3]
    sp = np.ones(3)
    for a in range(min(3, len(spacing))):
        sp[a] = spacing[a]
    if nspatial == 2 and len(spacing) < 3:
        sp[2] = 1.0
    if not np.all(np.isfinite(sp)) or np.any(sp[:nspatial] <= 0):
        raise FormatError(path, f"invalid ElementSpacing {spacing}")
    if sp[2] <= 0 or not np.isfinite(sp[2]):
        sp[2] = 1.0
    org = np.zeros(3)
    for a in range(min(3, len(origin))):
        org[a] = origin[a]
    if nspatial == 2 and abs(np.linalg.det(d)) < 1e-9:  # the frame axis direction is no slice normal
        normal = np.cross(d[:, 0], d[:, 1])
        if np.linalg.norm(normal) > 0:
            d[:, 2] = normal / np.linalg.norm(normal)
    try:
        return Geometry(sp, org, d)
    except ValueError as exc:
        raise FormatError(path, f"invalid image geometry: {exc}") from None


def _inflate(path: Path, source: Path, start: int, csize: int | None, nbytes: int) -> np.ndarray:
    available = file_size(source) - start
    if csize is not None:
        require_bytes(path, csize, available, "compressed voxel data")
    size = csize if csize is not None else available
    with open(source, "rb") as fh:
        fh.seek(start)
        raw = fh.read(size)
    try:
        inflater = zlib.decompressobj(47)  # zlib or gzip header, as MetaIO accepts
        data = inflater.decompress(raw, nbytes) if nbytes else b""
    except zlib.error as exc:
        raise FormatError(path, f"compressed voxel data is corrupt: {exc}") from None
    if len(data) < nbytes:
        raise FormatError(path, f"file is truncated: compressed data inflates to {len(data)} bytes, "
                                f"{nbytes} expected")
    return np.frombuffer(data, dtype=np.uint8)


def _read_mha(path: Path, *, labelmap: bool | None, mmap: bool) -> Volume:
    pairs, offset = _mi.read_header(path)
    if offset < 0:
        raise FormatError(path, "MetaImage header has no ElementDataFile line (truncated or not a sequence metafile)")
    fields = {k: v for k, v in pairs if not _FRAME_KEY.match(k)}
    if fields.get("ObjectType", "Image").strip().lower() != "image":
        raise FormatError(path, f"ObjectType {fields['ObjectType']!r} is not Image")
    spatial, n, channels, naxes = _mha_layout(path, fields)
    etype = fields.get("ElementType", "MET_UCHAR").strip().upper()
    if etype in ("MET_OTHER", "MET_NONE", "") and 0 in spatial:
        etype = "MET_UCHAR"  # tracking-only files may leave the voxel type open
    if etype not in _mi.NUMPY_TYPES:
        raise FormatError(path, f"element type {etype or '(missing)'} is not supported")
    if fields.get("BinaryData", "True").strip().lower() != "true":
        raise FormatError(path, "ASCII voxel data (BinaryData = False) is not supported")
    big = any(fields.get(k, "False").strip().lower() == "true"
              for k in ("BinaryDataByteOrderMSB", "ElementByteOrderMSB"))
    dtype = np.dtype(_mi.NUMPY_TYPES[etype]).newbyteorder(">" if big else "<")
    geometry = _mha_geometry(path, fields, len(spatial), naxes)
    frames_meta, frame_fields = _split_frame_fields(path, pairs, nrrd=False)
    global_fields = {k: v for k, v in frames_meta.items() if k not in _MHA_STRUCTURAL}
    frames = _frame_list(path, frame_fields, n)

    shape = (n,) + ((1,) + tuple(reversed(spatial)) if len(spatial) == 2 else tuple(reversed(spatial)))
    shape = shape + ((channels,) if channels > 1 else ())
    count = int(np.prod(shape, dtype=np.int64))
    nbytes = count * dtype.itemsize
    datafile = fields.get("ElementDataFile", "LOCAL").strip()
    compressed = fields.get("CompressedData", "False").strip().lower() == "true"
    if count == 0:
        array: Any = np.zeros(shape, dtype=dtype.newbyteorder("="))
    else:
        if datafile.upper().startswith("LIST") or "%" in datafile:
            raise FormatError(path, f"multi-file data ({datafile!r}) is not supported in sequence metafiles")
        source, start = _mi.data_start(path, fields, offset, nbytes, compressed)
        if not source.is_file():
            raise FormatError(path, f"data file {datafile} is missing")
        if compressed:
            csize_text = fields.get("CompressedDataSize", "").strip()
            csize = int(csize_text) if csize_text.isdigit() and int(csize_text) > 0 else None
            flat = _inflate(path, source, start, csize, nbytes)[:nbytes].view(dtype)
        else:
            require_bytes(path, start + nbytes, file_size(source), "voxel data")
            if mmap:
                flat = np.memmap(source, dtype=dtype, mode="c", offset=start, shape=(count,))
            else:
                flat = np.fromfile(source, dtype=dtype, count=count, offset=start)
        if dtype.byteorder == ">" or (dtype.byteorder == "<" and not np.little_endian):
            flat = flat.astype(dtype.newbyteorder("="))
        array = flat.reshape(shape)
    return _volume(path, array, geometry, channels, frames, global_fields, labelmap)


def _volume(path: Path, array: Any, geometry: Geometry, channels: int, frames: list[dict], fields: dict,
            labelmap: bool | None) -> Volume:
    vol = Volume(array, geometry, name=_name(path), extra_axes=[_frame_axis(frames)],
                 components=_components(channels, np.dtype(array.dtype)),
                 metadata={"igsio": {"frames": frames, "fields": fields}}, source=os.fspath(path))
    vol.kind = volume_kind(path, labelmap, vol.dtype, vol.n_components)
    return vol


# -- NRRD container: reading -----------------------------------------------------------------
def _read_igs_nrrd(path: Path, *, labelmap: bool | None, mmap: bool) -> Volume:
    header, _ = _nrrd.read_header(path)
    custom = {k: v for k, v in header.items() if k not in _nrrd.STANDARD_FIELDS and isinstance(v, str)}
    pairs = list(custom.items())
    fields, frame_fields = _split_frame_fields(path, pairs, nrrd=True)
    try:
        sizes = [int(s) for s in np.atleast_1d(header["sizes"])]
    except KeyError:
        raise FormatError(path, "NRRD header has no sizes field") from None
    kinds = [str(k).lower() for k in header.get("kinds", [])]
    if len(kinds) != len(sizes):
        raise FormatError(path, f"NRRD kinds {kinds} do not match sizes {sizes}")
    has_frames = bool(kinds) and kinds[-1] in _FRAME_KINDS
    n = sizes[-1] if has_frames else 1
    if 0 in sizes:  # tracking data only: no voxels
        spatial = [s for s, k in zip(sizes, kinds) if k in _SPATIAL_KINDS]
        dtype = _nrrd.header_dtype(header, path) if "type" in header else np.dtype(np.uint8)
        frames = _frame_list(path, frame_fields, n)
        array = np.zeros((n, 1, 0, 0) if len(spatial) < 3 else (n, 0, 0, 0), dtype=dtype.newbyteorder("="))
        return _volume(path, array, Geometry.identity(3), 1, frames, fields, labelmap)
    [vol] = _nrrd.read_nrrd(path, labelmap=False, mmap=mmap)
    frames = _frame_list(path, frame_fields, n)
    array = vol.array
    if not vol.extra_axes:
        array = array[np.newaxis]
    elif len(vol.extra_axes) != 1:
        raise FormatError(path, f"{len(vol.extra_axes)} non-spatial axes; a sequence has one frame axis")
    if vol.geometry.ndim == 2:
        array = np.expand_dims(array, 1)
    geometry = vol.geometry.as_3d()
    channels = vol.n_components
    return _volume(path, array, geometry, channels, frames, fields, labelmap)


def read(path: str | os.PathLike[str], *, labelmap: bool | None = None, mmap: bool = True) -> list[Volume]:
    """Read a sequence metafile into one Volume with a leading frame axis and ``metadata["igsio"]``."""
    p = Path(path)
    nonempty_file_size(p)
    with open(p, "rb") as fh:
        head = fh.read(registry.HEAD_SIZE)
    if head.startswith(b"NRRD000"):
        return [_read_igs_nrrd(p, labelmap=labelmap, mmap=mmap)]
    if not _metaimage_header(head):
        raise FormatError(p, "not a sequence metafile (no MetaImage or NRRD header)")
    return [_read_mha(p, labelmap=labelmap, mmap=mmap)]


# -- writing ---------------------------------------------------------------------------------
def _prepare(volume: Any, path: Path) -> tuple[Volume, Any, list[dict], dict]:
    """The volume as ``(N, Z, Y, X[, C])`` with 3D geometry, its frame fields and global fields."""
    if not isinstance(volume, Volume):
        raise WriteError(path, f"a sequence metafile holds image volumes, not {type(volume).__name__}")
    if len(volume.extra_axes) > 1:
        raise WriteError(path, f"a sequence metafile has one frame axis; this volume has {len(volume.extra_axes)}")
    array = volume.array
    if not volume.extra_axes:
        array = array[np.newaxis]
    if volume.geometry.ndim == 2:
        array = np.expand_dims(array, 1)
    geometry = volume.geometry.as_3d()
    n = int(array.shape[0])
    meta = volume.metadata.get("igsio") or {}
    frames = meta.get("frames")
    if frames is None:
        axis = volume.extra_axes[0] if volume.extra_axes else None
        values = axis.values if axis is not None and axis.values is not None else None
        numeric = values is not None and len(values) == n and all(
            isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in values)
        frames = []
        for i in range(n):
            f: dict = {"FrameNumber": i}
            if numeric and (axis.unit == "s" or axis.kind == "time"):
                f["Timestamp"] = float(values[i])
            f["ImageStatus"] = "OK"
            frames.append(f)
    if len(frames) != n:
        raise WriteError(path, f"frame count mismatch: {len(frames)} frame field sets for {n} frames")
    fields = dict(meta.get("fields") or {})
    if volume.components is not None and volume.is_rgb and "UltrasoundImageType" not in fields:
        fields["UltrasoundImageType"] = "RGB_COLOR"
    for key in list(fields):
        if not isinstance(key, str) or not key.strip() or "=" in key or "\n" in key or _FRAME_KEY.match(key):
            raise WriteError(path, f"invalid global field name {key!r}")
    for i, f in enumerate(frames):
        for key in f:
            if not isinstance(key, str) or not key.strip() or "=" in key or "\n" in key or " " in key:
                raise WriteError(path, f"invalid field name {key!r} in frame {i}")
    vol = Volume(array, geometry, kind=volume.kind, name=volume.name,
                 extra_axes=[AxisInfo(name="frame", kind="list")], components=volume.components)
    return vol, array, frames, fields


def _data_chunks(array: Any, dtype: np.dtype):
    if int(np.prod(array.shape, dtype=np.int64)) == 0:
        return
    yield from _nrrd.byte_slabs(array, dtype)


def _write_mha(volume: Any, path: Path, *, compress: bool) -> list[str]:
    vol, array, frames, fields = _prepare(volume, path)
    disk = _nrrd.disk_dtype(vol.dtype)
    key = disk.kind + str(disk.itemsize)
    etype = _MET_TYPES.get(key)
    if etype is None:
        raise WriteError(path, f"a sequence metafile cannot store {vol.dtype} voxels")
    g = vol.geometry
    n = int(array.shape[0])
    z, y, x = (int(s) for s in array.shape[1:4])
    channels = vol.n_components
    if z == 1:  # 2D frames: NDims 3, the frame axis third (as PLUS writes them)
        ndims, dims = 3, [x, y, n]
        spacing = list(g.spacing)
        origin = list(g.origin)
        direction = g.direction
        kinds = "domain domain list"
    else:
        ndims, dims = 4, [x, y, z, n]
        spacing = list(g.spacing) + [1.0]
        origin = list(g.origin) + [0.0]
        direction = np.eye(4)
        direction[:3, :3] = g.direction
        kinds = "domain domain domain list"
    detached = path.name.lower().endswith(".mhd")
    data_name = None
    if detached:
        data_name = path.name[: -len(".mhd")] + (".zraw" if compress else ".raw")
    chunks: list = []
    csize = 0
    if compress:
        try:
            from isal import isal_zlib as zmod  # several times faster; same zlib stream
            co = zmod.compressobj(2)
        except ImportError:
            co = zlib.compressobj(6)
        for chunk in _data_chunks(array, disk):
            out = co.compress(chunk)
            if out:
                chunks.append(out)
        if int(np.prod(array.shape, dtype=np.int64)):
            chunks.append(co.flush())
        csize = sum(len(c) for c in chunks)
    lines = ["ObjectType = Image", f"NDims = {ndims}", "BinaryData = True", "BinaryDataByteOrderMSB = False",
             f"CompressedData = {'True' if compress else 'False'}"]
    if compress:
        lines.append(f"CompressedDataSize = {csize}")
    lines += ["TransformMatrix = " + " ".join(format_number(v) for v in np.asarray(direction).T.reshape(-1)),
              "Offset = " + " ".join(format_number(v) for v in origin),
              "CenterOfRotation = " + " ".join("0" for _ in range(ndims)),
              "ElementSpacing = " + " ".join(format_number(v) for v in spacing),
              "DimSize = " + " ".join(str(d) for d in dims),
              f"Kinds = {kinds}",
              f"ElementType = {etype}"]
    if channels > 1:
        lines.append(f"ElementNumberOfChannels = {channels}")
    for k, v in fields.items():
        if k in _MHA_STRUCTURAL:
            continue
        lines.append(f"{k.strip()} = {_format_value(v)}")
    for i, f in enumerate(frames):
        for k, v in f.items():
            lines.append(f"Seq_Frame{i:04d}_{k} = {_format_value(v)}")
    lines.append(f"ElementDataFile = {data_name if detached else 'LOCAL'}")
    header = ("\n".join(lines) + "\n").encode("latin-1", errors="replace")
    targets = [path] + ([path.with_name(data_name)] if detached else [])
    with atomic_outputs(targets) as temps:
        with open(temps[0], "wb") as fh:
            fh.write(header)
            if not detached:
                _write_payload(fh, chunks, array, disk, compress)
        if detached:
            with open(temps[1], "wb") as fh:
                _write_payload(fh, chunks, array, disk, compress)
    return [os.fspath(t) for t in targets]


def _write_payload(fh, chunks: list, array: Any, dtype: np.dtype, compress: bool) -> None:
    if compress:
        for c in chunks:
            fh.write(c)
        return
    for slab in _data_chunks(array, dtype):
        fh.write(slab)


def _write_igs_nrrd(volume: Any, path: Path, *, compress: bool) -> list[str]:
    vol, array, frames, fields = _prepare(volume, path)
    if int(np.prod(array.shape, dtype=np.int64)) == 0:
        raise WriteError(path, "a tracking-only sequence (no voxels) can be written as .seq.mha / .igs.mha only")
    custom: dict[str, str] = {}
    reverse = {v: k for k, v in _NRRD_NAMES.items()}
    for k, v in fields.items():
        if k.lower() in _nrrd.STANDARD_FIELDS or ":" in k:
            continue
        custom[reverse.get(k, k)] = _format_value(v)
    for i, f in enumerate(frames):
        for k, v in f.items():
            custom[f"Seq_Frame{i:04d}_{'Status' if k == 'ImageStatus' else k}"] = _format_value(v)
    components = vol.components
    if components is not None:
        components = AxisInfo(name="component", kind="vector")  # PLUS reads the channel count from "vector"
    out = Volume(array, vol.geometry, kind=vol.kind, name=vol.name,
                 extra_axes=[AxisInfo(name="frame", kind="list")], components=components,
                 metadata={"nrrd": {"custom": custom}})
    try:
        return _nrrd.write_nrrd(out, path, compress=compress, sequence=False)
    except MedioError as exc:
        raise WriteError(path, exc.reason) from None


def write(volume: Any, path: str | os.PathLike[str], *, compress: bool = True) -> list[str]:
    """Write a Volume (with or without ``metadata["igsio"]``) as a sequence metafile; returns the files."""
    p = Path(path)
    lower = p.name.lower()
    if lower.endswith(".nrrd"):
        return _write_igs_nrrd(volume, p, compress=compress)
    if lower.endswith((".mha", ".mhd")):
        return _write_mha(volume, p, compress=compress)
    raise WriteError(p, f"a sequence metafile is named {', '.join(EXTENSIONS)}")


FORMAT = registry.register(
    registry.FileFormat(
        name=NAME,
        description="IGSIO / PLUS sequence metafile (.seq.mha, .seq.mhd, .igs.mha, .igs.mhd, .igs.nrrd): "
                    "tracked image frames with per-frame timestamps and transforms",
        extensions=EXTENSIONS,
        read=read,
        write=write,
        sniff=sniff,
        kinds=(DataKind.VOLUME, DataKind.LABELMAP),
        priority=5,
        backend="napari-medio (hand-written)",
        read_options={"labelmap": LABELMAP_OPTION,
                      "mmap": "memory-map uncompressed voxels (default True)"},
        write_options={"compress": "zlib (MetaImage) / gzip (NRRD) voxels (default True)"},
    )
)
