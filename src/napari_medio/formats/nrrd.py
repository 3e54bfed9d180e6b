"""NRRD (.nrrd, .nhdr) and Slicer volume sequences (.seq.nrrd): read and write.

Header fields are parsed by ``pynrrd``; the voxel data is read here because the
plugin needs what pynrrd does not give: raw data memory-mapped instead of
copied (a huge volume opens instantly), gzip inflated by ``isal``/``zlib-ng``
into an array of the declared size (with progress), a clear error on truncation, and the NRRD space
converted to the one LPS world (``right-anterior-superior`` files, such as
Slicer's DWI and <= 5.8 sequence files, are flipped on read).  The writer emits
the header Slicer writes (``space: left-posterior-superior``, kinds, gzip).

Axis mapping (NRRD lists the fastest axis first; the core keeps C order):

* spatial axes (``domain``/``space`` kinds, or those with space directions)
  become the geometry;
* one non-spatial axis before them (RGB-color, vector, list, DWI gradients)
  becomes the trailing component axis;
* non-spatial axes after them (time, sequence items) become leading extra axes;
* in a sequence file (``.seq.nrrd``, or ``axis N index values`` /
  ``DataNodeClassName`` present) a list axis is the sequence axis, leading,
  whichever end it was stored at (Slicer <= 5.8 put it first, >= 5.10 last).
"""
from __future__ import annotations

import bz2
import io
import os
import re
import urllib.parse
from pathlib import Path
from typing import Any

import numpy as np

from ..core import registry
from ..core.errors import FormatError, MedioError, WriteError
from ..core.fileio import GZIP_THREADS, atomic_outputs, gzip_decompress, gzip_read, gzip_write
from ..core.geometry import Geometry
from ..core.kinds import DataKind
from ..core.volume import AxisInfo, Volume
from .naming import base_name, looks_like_labelmap

__all__ = ["read_nrrd", "write_nrrd", "read_header", "NRRD_TYPES", "STANDARD_FIELDS", "byte_slabs", "disk_dtype",
           "format_number", "format_vector", "header_dtype", "write_voxels"]

#: NRRD type names -> NumPy dtype (all spellings the spec allows).
NRRD_TYPES: dict[str, str] = {}
for _names, _dt in (
    (("signed char", "int8", "int8_t"), "i1"),
    (("uchar", "unsigned char", "uint8", "uint8_t"), "u1"),
    (("short", "short int", "signed short", "signed short int", "int16", "int16_t"), "i2"),
    (("ushort", "unsigned short", "unsigned short int", "uint16", "uint16_t"), "u2"),
    (("int", "signed int", "int32", "int32_t"), "i4"),
    (("uint", "unsigned int", "uint32", "uint32_t"), "u4"),
    (("longlong", "long long", "long long int", "signed long long", "signed long long int", "int64", "int64_t"), "i8"),
    (("ulonglong", "unsigned long long", "unsigned long long int", "uint64", "uint64_t"), "u8"),
    (("float",), "f4"),
    (("double",), "f8"),
):
    for _n in _names:
        NRRD_TYPES[_n] = _dt

_WRITE_TYPES = {"i1": "int8", "u1": "uint8", "i2": "short", "u2": "unsigned short", "i4": "int",
                "u4": "unsigned int", "i8": "long long", "u8": "unsigned long long", "f4": "float",
                "f8": "double"}

#: NRRD spaces -> sign flips that bring their coordinates to LPS.
_SPACE_TO_LPS = {
    "left-posterior-superior": (1, 1, 1),
    "lps": (1, 1, 1),
    "right-anterior-superior": (-1, -1, 1),
    "ras": (-1, -1, 1),
    "left-anterior-superior": (1, -1, 1),
    "las": (1, -1, 1),
    "right-posterior-superior": (-1, 1, 1),
    "rps": (-1, 1, 1),
    "scanner-xyz": (1, 1, 1),
    "3d-right-handed": (1, 1, 1),
    "3d-left-handed": (1, 1, 1),
}
_SPATIAL_KINDS = {"domain", "space"}
_COLOR_KINDS = {"rgb-color": "RGB-color", "rgba-color": "RGBA-color"}
#: Header fields the reader interprets itself (others are kept as key-value metadata).
STANDARD_FIELDS = {
    "type", "dimension", "space", "space dimension", "sizes", "space directions", "kinds", "endian",
    "encoding", "space origin", "measurement frame", "data file", "datafile", "line skip", "lineskip",
    "byte skip", "byteskip", "spacings", "thicknesses", "axis mins", "axismins", "axis maxs", "axismaxs",
    "centers", "centerings", "labels", "units", "space units", "min", "max", "old min", "oldmin",
    "old max", "oldmax", "content", "sample units", "number", "block size", "blocksize",
}
_INDEX_KEY = re.compile(r"^axis (\d+) index (type|values)$")
_ITEM_KEY = re.compile(r"^axis (\d+) item (\d+) (.+)$")


def _sniff(head: bytes, path: Path) -> bool:
    return head.startswith(b"NRRD000")


def _split_header(path: Path) -> tuple[list[str], int]:
    """Header lines and the byte offset where attached data starts."""
    with open(path, "rb") as fh:
        chunk = fh.read(1 << 16)
        buf = chunk
        while True:
            m = re.search(rb"\r?\n\r?\n", buf)
            if m is not None:
                header_bytes, offset = buf[: m.start()], m.end()
                break
            more = fh.read(1 << 16)
            if not more:  # detached header without the blank line
                header_bytes, offset = buf, len(buf)
                break
            buf += more
    if not header_bytes.startswith(b"NRRD000"):
        raise FormatError(path, "not an NRRD file (no NRRD000x magic)")
    try:
        text = header_bytes.decode("latin-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes anything
        raise FormatError(path, "header is not text") from None
    return text.splitlines(), offset


def read_header(path: str | os.PathLike[str]) -> tuple[dict, int]:
    """Parsed NRRD header (pynrrd's field types) and the attached data offset."""
    import nrrd

    p = Path(path)
    lines, offset = _split_header(p)
    try:
        header = nrrd.read_header(lines)
    except Exception as exc:
        raise FormatError(p, f"invalid NRRD header: {exc}") from None
    return header, offset


def header_dtype(header: dict, path: Path) -> np.dtype:
    """The voxel type a NRRD header's ``type`` and ``endian`` fields name; FormatError naming ``path`` if unknown."""
    name = str(header.get("type", "")).strip().lower()
    if name not in NRRD_TYPES:
        raise FormatError(path, f"unsupported NRRD type {name!r}")
    dt = np.dtype(NRRD_TYPES[name])
    if dt.itemsize > 1:
        endian = str(header.get("endian", "little")).lower()
        dt = dt.newbyteorder(">" if endian == "big" else "<")
    return dt


def _data_source(header: dict, path: Path, offset: int) -> tuple[Path, int]:
    data_file = header.get("data file", header.get("datafile"))
    if data_file is None:
        if path.suffix.lower() == ".nhdr":
            raise FormatError(path, "detached header (.nhdr) has no 'data file' field")
        return path, offset
    text = str(data_file).strip()
    if text.upper().startswith("LIST") or "%" in text.split()[0] and len(text.split()) > 1:
        raise FormatError(path, "multi-file NRRD data ('data file: LIST' or a file pattern) is not supported")
    target = Path(text)
    if not target.is_absolute():
        target = path.parent / target
    if not target.exists():
        raise FormatError(path, f"data file {text!r} not found")
    return target, 0


def _skip_lines(raw: bytes, lines: int) -> bytes:
    pos = 0
    for _ in range(lines):
        nl = raw.find(b"\n", pos)
        if nl < 0:
            return b""
        pos = nl + 1
    return raw[pos:]


def _read_data(header: dict, path: Path, offset: int, dtype: np.dtype, count: int, mmap: bool,
               progress: Any = None) -> np.ndarray:
    """The voxels as a flat array (memory-mapped for raw data when ``mmap``)."""
    source, start = _data_source(header, path, offset)
    encoding = str(header.get("encoding", "raw")).lower()
    line_skip = int(header.get("line skip", header.get("lineskip", 0)) or 0)
    byte_skip = int(header.get("byte skip", header.get("byteskip", 0)) or 0)
    nbytes = count * dtype.itemsize
    if encoding == "raw":
        size = source.stat().st_size
        if line_skip:
            with open(source, "rb") as fh:
                fh.seek(start)
                for _ in range(line_skip):
                    if not fh.readline():
                        raise FormatError(path, "data is truncated (line skip past end of file)")
                start = fh.tell()
        start = size - nbytes if byte_skip == -1 else start + byte_skip
        if start < 0 or size - start < nbytes:
            raise FormatError(path, f"data is truncated: {max(size - max(start, 0), 0)} bytes for {nbytes} expected")
        if mmap and nbytes > 0:
            return np.memmap(source, dtype=dtype, mode="c", offset=start, shape=(count,))
        with open(source, "rb") as fh:
            fh.seek(start)
            return np.frombuffer(fh.read(nbytes), dtype=dtype).copy()
    if encoding in ("gzip", "gz") and not line_skip:
        data = gzip_read(source, start, nbytes + byte_skip if byte_skip != -1 else None, progress=progress)
        if byte_skip == -1:
            data = data[len(data) - nbytes:] if len(data) >= nbytes else data[:0]
        elif byte_skip:
            data = data[byte_skip:]
        if len(data) < nbytes:
            raise FormatError(path, f"data is truncated: {len(data)} bytes for {nbytes} expected")
        return data[:nbytes].view(dtype)
    with open(source, "rb") as fh:
        fh.seek(start)
        raw = fh.read()
    raw = _skip_lines(raw, line_skip)
    if encoding in ("gzip", "gz"):
        try:
            data = gzip_decompress(raw)
        except Exception as exc:
            raise FormatError(path, f"gzip data is corrupt or truncated: {exc}") from None
    elif encoding in ("bzip2", "bz2"):
        try:
            data = bz2.decompress(raw)
        except Exception as exc:
            raise FormatError(path, f"bzip2 data is corrupt or truncated: {exc}") from None
    elif encoding in ("ascii", "text", "txt"):
        values = raw.split()
        if byte_skip:
            raise FormatError(path, "byte skip is not allowed with ASCII encoding")
        if len(values) < count:
            raise FormatError(path, f"data is truncated: {len(values)} values for {count} expected")
        try:
            return np.array([float(v) for v in values[:count]]).astype(dtype.newbyteorder("="))
        except ValueError as exc:
            raise FormatError(path, f"bad ASCII value: {exc}") from None
    elif encoding == "hex":
        text = b"".join(raw.split())
        try:
            data = bytes.fromhex(text.decode("ascii"))
        except ValueError as exc:
            raise FormatError(path, f"bad hex data: {exc}") from None
    else:
        raise FormatError(path, f"unsupported NRRD encoding {encoding!r}")
    if byte_skip == -1:
        data = data[len(data) - nbytes:] if len(data) >= nbytes else b""
    elif byte_skip:
        data = data[byte_skip:]
    if len(data) < nbytes:
        raise FormatError(path, f"data is truncated: {len(data)} bytes for {nbytes} expected")
    return np.frombuffer(data, dtype=dtype, count=count)


def _custom_fields(header: dict) -> dict[str, str]:
    return {k: v for k, v in header.items() if k not in STANDARD_FIELDS and isinstance(v, str)}


def _axis_values(custom: dict[str, str], nrrd_axis: int) -> tuple[list | None, str | None]:
    values = custom.get(f"axis {nrrd_axis} index values")
    index_type = custom.get(f"axis {nrrd_axis} index type")
    if values is None:
        return None, index_type
    items = [urllib.parse.unquote(v) for v in values.split()]
    if index_type != "text":
        try:
            return [float(v) if not float(v).is_integer() or "." in v or "e" in v.lower() else int(float(v))
                    for v in items], index_type or "numeric"
        except ValueError:
            index_type = "text"
    return items, index_type or "text"


def _sizes_and_kinds(header: dict, p: Path) -> tuple[list[int], list[str]]:
    """The NRRD axis sizes and kinds (fastest axis first), checked against ``dimension``."""
    try:
        sizes = [int(s) for s in np.atleast_1d(header["sizes"])]
        dim = int(header["dimension"])
    except KeyError as exc:
        raise FormatError(p, f"required NRRD field {exc.args[0]!r} is missing") from None
    if len(sizes) != dim or any(s <= 0 for s in sizes):
        raise FormatError(p, f"sizes {sizes} do not match dimension {dim}")
    kinds = [str(k).lower() if k is not None else "???" for k in header.get("kinds", ["???"] * dim)]
    if len(kinds) != dim:
        raise FormatError(p, f"{len(kinds)} kinds for {dim} axes")
    return sizes, kinds


def _space_flips(header: dict, p: Path) -> tuple[str | None, np.ndarray]:
    """The NRRD ``space`` (lower case, None if absent) and the signs that take it to LPS."""
    space = str(header.get("space", "")).lower() or None
    if space and space not in _SPACE_TO_LPS:
        raise FormatError(p, f"NRRD space {space!r} is not supported (expected LPS, RAS, LAS or scanner-xyz)")
    return space, np.array(_SPACE_TO_LPS[space] if space else (1, 1, 1), dtype=float)


def _spatial_axes(header: dict, kinds: list[str], p: Path) -> list[int]:
    """The NRRD axes that carry geometry: those with space directions, else domain kinds."""
    dim = len(kinds)
    directions = header.get("space directions")
    if directions is not None:
        directions = np.asarray(directions, dtype=float)
        spatial = [a for a in range(dim) if np.all(np.isfinite(directions[a]))]
    else:
        spatial = [a for a in range(dim) if kinds[a] in _SPATIAL_KINDS or kinds[a] == "???"][:3]
    if not spatial:
        raise FormatError(p, "no spatial axes (no space directions and no domain kinds)")
    if len(spatial) > 3:
        raise FormatError(p, f"{len(spatial)} spatial axes; at most 3 are supported")
    if spatial != list(range(spatial[0], spatial[-1] + 1)):
        raise FormatError(p, "non-spatial axes between spatial axes are not supported")
    return spatial


def _geometry(header: dict, spatial: list[int], flips: np.ndarray, p: Path) -> Geometry:
    """The LPS geometry of the spatial axes (a 2D image gets a third, singleton axis)."""
    nsp = len(spatial)
    directions = header.get("space directions")
    if directions is None:
        dim = int(header["dimension"])
        spacings = np.asarray(header.get("spacings", [np.nan] * dim), dtype=float)
        spacing = np.array([spacings[a] if np.isfinite(spacings[a]) and spacings[a] > 0 else 1.0 for a in spatial])
        mins = header.get("axis mins", header.get("axismins"))
        origin = np.array([float(mins[a]) if mins is not None and np.isfinite(mins[a]) else 0.0 for a in spatial])
        if nsp == 1:
            spacing, origin = np.r_[spacing, 1.0], np.r_[origin, 0.0]
        return Geometry(spacing, origin, np.eye(spacing.size))
    directions = np.asarray(directions, dtype=float)
    vecs = directions[spatial] * flips[: directions.shape[1]]  # rows: axis step vectors
    space_dim = vecs.shape[1]
    origin = np.asarray(header.get("space origin", np.zeros(space_dim)), dtype=float)
    if not np.all(np.isfinite(origin)):
        origin = np.zeros(space_dim)
    origin = origin * flips[:space_dim]
    if space_dim == 3 and nsp == 2:  # a 2D slice placed in 3D space: add a singleton k axis
        normal = np.cross(vecs[0], vecs[1])
        normal /= np.linalg.norm(normal)
        vecs = np.vstack([vecs, normal])
    elif space_dim != (3 if nsp == 2 else nsp) and space_dim != nsp:
        raise FormatError(p, f"{nsp} spatial axes in a {space_dim}D space are not supported")
    spacing = np.linalg.norm(vecs, axis=1)
    if np.any(spacing == 0):
        raise FormatError(p, "a space direction is the zero vector")
    return Geometry(spacing, origin, (vecs / spacing[:, None]).T)


def _is_sequence(p: Path, custom: dict[str, str]) -> bool:
    """True for a Slicer volume sequence (by file name or by its custom fields)."""
    return p.name.lower().endswith((".seq.nrrd", ".seq.nhdr")) or "DataNodeClassName" in custom or any(
        _INDEX_KEY.match(k) for k in custom
    )


def _axis_info(header: dict, sizes: list[int], kinds: list[str], nrrd_axis: int,
               is_sequence: bool) -> AxisInfo:
    """The name, unit, kind and index values of one non-spatial NRRD axis."""
    dim = len(kinds)
    labels = list(header.get("labels", [""] * dim) or [""] * dim)
    units = list(header.get("units", [""] * dim) or [""] * dim)
    values, _index_type = _axis_values(_custom_fields(header), nrrd_axis)
    kind = kinds[nrrd_axis]
    label = (labels[nrrd_axis] or "").strip() if nrrd_axis < len(labels) else ""
    unit = (units[nrrd_axis] or "").strip() if nrrd_axis < len(units) else ""
    if values is None:
        mins = header.get("axis mins", header.get("axismins"))
        spac = header.get("spacings")
        if spac is not None and np.isfinite(spac[nrrd_axis]):
            o = float(mins[nrrd_axis]) if mins is not None and np.isfinite(mins[nrrd_axis]) else 0.0
            values = (o + float(spac[nrrd_axis]) * np.arange(sizes[nrrd_axis])).tolist()
    default = "frame" if is_sequence else ("time" if kind == "time" else kind if kind != "???" else "axis")
    return AxisInfo(name=label or default, unit=unit, values=values, kind=kind if kind != "???" else "list")


def _non_spatial_axes(header: dict, array: np.ndarray, sizes: list[int], kinds: list[str], spatial: list[int],
                      is_sequence: bool, p: Path) -> tuple[np.ndarray, list[AxisInfo], AxisInfo | None]:
    """The array with its non-spatial axes placed: (array, leading extra axes, component axis).

    Axes slower than the spatial ones become leading extra axes; one axis faster
    than them becomes the trailing component axis, except a sequence's list axis,
    which leads.
    """
    before = list(range(0, spatial[0]))  # faster than spatial -> component axis
    after = list(range(spatial[-1] + 1, len(kinds)))  # slower than spatial -> leading extra axes
    if len(before) > 1:
        raise FormatError(p, f"{len(before)} component axes before the spatial axes are not supported")
    # C order: slowest first
    extra = [_axis_info(header, sizes, kinds, a, is_sequence) for a in reversed(after)]
    if not before:
        return array, extra, None
    c_axis = before[0]
    ckind = kinds[c_axis]
    if is_sequence and ckind in ("list", "???") and not after:
        # Slicer <= 5.8 sequence: the list axis is stored fastest; show it as leading.
        return np.moveaxis(array, -1, 0), [_axis_info(header, sizes, kinds, c_axis, is_sequence)], None
    components = _axis_info(header, sizes, kinds, c_axis, is_sequence)
    components.kind = _COLOR_KINDS.get(ckind, ckind if ckind != "???" else "vector")
    if components.name in ("rgb-color", "rgba-color"):
        components.name = "component"
    return array, extra, components


def _metadata(header: dict, kinds: list[str], space: str | None, flips: np.ndarray,
              is_sequence: bool) -> dict[str, Any]:
    """What the volume keeps of the header: NRRD fields, measurement frame (LPS), DWI, sequence."""
    custom = _custom_fields(header)
    metadata: dict[str, Any] = {"nrrd": {"space": space, "kinds": kinds, "encoding": str(header.get("encoding")),
                                         "custom": custom}}
    mf = header.get("measurement frame")
    if mf is not None:
        mf = np.asarray(mf, dtype=float) * flips[: np.asarray(mf).shape[1]]  # each vector's components to LPS
        metadata["measurement_frame"] = mf.tolist()
    if custom.get("modality", "").upper() == "DWMRI" or any(k.startswith("DWMRI_gradient_") for k in custom):
        grads = sorted((k, v) for k, v in custom.items() if k.startswith("DWMRI_gradient_"))
        metadata["dwi"] = {
            "b_value": float(custom["DWMRI_b-value"]) if "DWMRI_b-value" in custom else None,
            "gradients": [[float(x) for x in v.split()] for _, v in grads],
        }
    if is_sequence:
        metadata["sequence"] = {k: v for k, v in custom.items() if not _INDEX_KEY.match(k)}
    for key in ("content", "space units", "sample units"):
        if key in header:
            metadata["nrrd"][key] = header[key] if isinstance(header[key], str) else list(header[key])
    return metadata


def read_nrrd(
    path: str | os.PathLike[str],
    *,
    labelmap: bool | None = None,
    mmap: bool = True,
    name: str | None = None,
    progress: Any = None,
) -> list[Volume]:
    """Read an NRRD / NHDR / .seq.nrrd file into one Volume in LPS.

    ``labelmap`` forces the label-map kind (None: guess from the file name as
    Slicer does).  Raw data is memory-mapped unless ``mmap=False``.  ``progress``
    (a :class:`~napari_medio.core.progress.Progress`) reports and can cancel
    inflating compressed data.
    """
    p = Path(path)
    header, offset = read_header(p)
    dtype = header_dtype(header, p)
    sizes, kinds = _sizes_and_kinds(header, p)
    space, flips = _space_flips(header, p)
    spatial = _spatial_axes(header, kinds, p)
    geometry = _geometry(header, spatial, flips, p)

    count = int(np.prod(sizes, dtype=np.int64))
    flat = _read_data(header, p, offset, dtype, count, mmap=mmap, progress=progress)
    if flat.dtype.byteorder == ">" or (flat.dtype.byteorder == "<" and not np.little_endian):
        flat = flat.astype(flat.dtype.newbyteorder("="))
    array = flat.reshape(sizes[::-1])  # C order: slowest NRRD axis first

    is_sequence = _is_sequence(p, _custom_fields(header))
    array, extra, components = _non_spatial_axes(header, array, sizes, kinds, spatial, is_sequence, p)
    if geometry.ndim > len(spatial):
        array = np.expand_dims(array, len(extra))
    if labelmap is None:
        labelmap = looks_like_labelmap(p) and np.issubdtype(array.dtype, np.integer) and components is None
    return [
        Volume(
            array=array,
            geometry=geometry,
            kind=DataKind.LABELMAP if labelmap else DataKind.VOLUME,
            name=name or base_name(p),
            extra_axes=extra,
            components=components,
            metadata=_metadata(header, kinds, space, flips, is_sequence),
            source=os.fspath(p),
        )
    ]


# -- writing --------------------------------------------------------------------------------
def format_number(x: float) -> str:
    """A number as NRRD headers write it: an integer without a point, else the shortest exact repr."""
    v = float(x)
    if v == 0:
        return "0"
    if v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return repr(v)


def format_vector(v: np.ndarray) -> str:
    """A NRRD vector: ``(x,y,z)``."""
    return "(" + ",".join(format_number(x) for x in v) + ")"


def _quote(text: str) -> str:
    return '"' + str(text).replace('"', "'") + '"'


def _header_lines(volume: Volume, data_file: str | None, encoding: str, sequence: bool) -> list[str]:
    arr_dtype = np.dtype(volume.array.dtype)
    key = arr_dtype.kind + str(arr_dtype.itemsize)
    if key not in _WRITE_TYPES:
        raise WriteError(None, f"NRRD cannot store voxel type {arr_dtype}")
    g = volume.geometry
    comps = volume.components
    extra = list(reversed(volume.extra_axes))  # NRRD order: fastest first -> extra axes are last
    nrrd_shape = list(reversed(volume.shape))
    dim = len(nrrd_shape)
    kinds: list[str] = []
    dirs: list[str] = []
    labels: list[str] = []
    units: list[str] = []
    axes_info: list[AxisInfo | None] = []
    if comps is not None:
        kinds.append(comps.kind if comps.kind in ("RGB-color", "RGBA-color", "vector", "list", "3-vector",
                                                  "covariant-vector", "normal", "3-color", "4-color",
                                                  "point", "quaternion", "complex", "2-vector") else "vector")
        dirs.append("none")
        labels.append("")
        units.append("")
        axes_info.append(None)
    for a in range(g.ndim):
        kinds.append("domain")
        dirs.append(format_vector(g.direction[:, a] * g.spacing[a]))
        labels.append("")
        units.append("")
        axes_info.append(None)
    for ax in extra:
        kinds.append("list" if sequence or ax.kind not in ("time", "list", "vector") else ax.kind)
        dirs.append("none")
        labels.append(ax.name or "")
        units.append(ax.unit or "")
        axes_info.append(ax)
    lines = ["NRRD0004", "# Complete NRRD file format specification at:",
             "# http://teem.sourceforge.net/nrrd/format.html",
             f"type: {_WRITE_TYPES[key]}", f"dimension: {dim}"]
    if g.ndim == 3:
        lines.append("space: left-posterior-superior")
    else:
        lines.append("space dimension: 2")
    lines.append("sizes: " + " ".join(str(s) for s in nrrd_shape))
    lines.append("space directions: " + " ".join(dirs))
    lines.append("kinds: " + " ".join(kinds))
    if any(labels):
        lines.append("labels: " + " ".join(_quote(x) for x in labels))
    if any(units):
        lines.append("units: " + " ".join(_quote(x) for x in units))
    if arr_dtype.itemsize > 1:
        lines.append("endian: little")
    lines.append(f"encoding: {encoding}")
    lines.append("space origin: " + format_vector(g.origin))
    mf = volume.metadata.get("measurement_frame")
    if mf is not None and g.ndim == 3:
        lines.append("measurement frame: " + " ".join(format_vector(np.asarray(v, dtype=float)) for v in mf))
    if data_file is not None:
        lines.append(f"data file: {data_file}")
    # Custom key:=value fields kept from reading, minus what we regenerate.
    custom = dict(volume.metadata.get("nrrd", {}).get("custom", {}))
    for k in list(custom):
        if _INDEX_KEY.match(k) or _ITEM_KEY.match(k) or k.startswith("DWMRI_"):
            del custom[k]
    dwi = volume.metadata.get("dwi")
    if dwi:
        custom.setdefault("modality", "DWMRI")
        if dwi.get("b_value") is not None:
            custom["DWMRI_b-value"] = format_number(dwi["b_value"])
        for i, gvec in enumerate(dwi.get("gradients", [])):
            custom[f"DWMRI_gradient_{i:04d}"] = "   ".join(format_number(x) for x in gvec)
    if sequence:
        node_class = "vtkMRMLScalarVolumeNode" if comps is None else "vtkMRMLVectorVolumeNode"
        custom.setdefault("DataNodeClassName", node_class)
    for nrrd_axis, ax in enumerate(axes_info):
        if ax is not None and ax.values is not None and (sequence or nrrd_axis == dim - 1):
            numeric = all(isinstance(v, (int, float, np.integer, np.floating)) for v in ax.values)
            custom[f"axis {nrrd_axis} index type"] = "numeric" if numeric else "text"
            custom[f"axis {nrrd_axis} index values"] = " ".join(
                urllib.parse.quote(format_number(v) if numeric else str(v), safe="") for v in ax.values)
    for k, v in custom.items():
        k = str(k).replace(":=", "").replace("\n", " ")
        lines.append(f"{k}:={str(v).replace(chr(10), ' ')}")
    return lines


def write_voxels(fh: io.BufferedWriter, array: Any, encoding: str, level: int, progress: Any = None,
                 threads: int = GZIP_THREADS) -> None:
    """Write voxels in C order (= NRRD order), slab by slab, gzip-compressed (on ``threads`` workers) when asked."""
    from ..core.progress import ensure_progress

    dtype = disk_dtype(array.dtype)
    total = int(np.prod(array.shape, dtype=np.int64)) * dtype.itemsize
    if encoding == "gzip":
        gzip_write(fh, byte_slabs(array, dtype), level=level, progress=progress, total=total, threads=threads)
        return
    prog = ensure_progress(progress)
    prog.start(total)
    for slab in byte_slabs(array, dtype):
        fh.write(slab)
        prog.advance(len(slab))


def disk_dtype(dtype: Any) -> np.dtype:
    """The type voxels of ``dtype`` are written as (little-endian; bytes as they are)."""
    dtype = np.dtype(dtype)
    return dtype.newbyteorder("<") if dtype.itemsize > 1 else dtype


def byte_slabs(array: Any, dtype: np.dtype, target_bytes: int = 1 << 24):
    """Contiguous little-endian byte chunks of ``array`` in C order (no full copy for lazy arrays)."""
    shape = tuple(array.shape)
    if not shape or len(shape) == 1:
        yield np.ascontiguousarray(np.asarray(array), dtype=dtype).tobytes()
        return
    per_index = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
    step = max(1, target_bytes // max(per_index, 1))
    for start in range(0, shape[0], step):
        # a view of a C-contiguous array of the right type is passed on without a copy
        yield memoryview(_c_order(np.asarray(array[start:start + step]), dtype)).cast("B")


def _c_order(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``x`` as a C-contiguous array of ``dtype`` (itself when it already is one).

    A short last axis that is not the fastest in memory -- a layer or component axis
    moved last, as ``.seg.nrrd`` layers are stored -- is filled one index at a time:
    NumPy's own copy would loop over that short axis innermost (5x slower here).
    """
    if x.flags.c_contiguous and x.dtype == dtype:
        return x
    if x.ndim >= 2 and 1 < x.shape[-1] <= 16 and abs(x.strides[-1]) > abs(x.strides[-2]):
        out = np.empty(x.shape, dtype)
        for c in range(x.shape[-1]):
            out[..., c] = x[..., c]
        return out
    return np.ascontiguousarray(x, dtype=dtype)


def write_nrrd(
    volume: Volume,
    path: str | os.PathLike[str],
    *,
    compress: bool = True,
    compression_level: int = 6,
    sequence: bool | None = None,
    progress: Any = None,
) -> list[str]:
    """Write a Volume (LPS) as .nrrd, or .nhdr with a detached ``.raw.gz``/``.raw`` data file.

    The header is the one Slicer writes (``space: left-posterior-superior``,
    ``kinds``, ``encoding: gzip`` unless ``compress=False``).  ``.seq.nrrd`` (or
    ``sequence=True``) writes the extra axis as Slicer >= 5.10's sequence axis.
    """
    p = Path(path)
    if not isinstance(volume, Volume):
        raise WriteError(p, f"NRRD holds volumes, not {type(volume).__name__}")
    if sequence is None:
        sequence = p.name.lower().endswith((".seq.nrrd", ".seq.nhdr"))
    encoding = "gzip" if compress else "raw"
    detached = p.suffix.lower() == ".nhdr"
    if sequence and len(volume.extra_axes) != 1:
        raise WriteError(p, "a volume sequence needs exactly one sequence (extra) axis")
    data_path = p.with_name(base_name(p) + (".raw.gz" if compress else ".raw")) if detached else None
    try:
        lines = _header_lines(volume, data_path.name if data_path else None, encoding, sequence)
    except MedioError as exc:
        raise WriteError(p, exc.reason) from None
    header = ("\n".join(lines) + "\n\n").encode("latin-1", errors="replace")
    targets = [p] + ([data_path] if data_path else [])
    with atomic_outputs(targets) as temps:
        with open(temps[0], "wb") as fh:
            if detached:
                fh.write(header[:-1])  # a detached header ends after its last field line
            else:
                fh.write(header)
                write_voxels(fh, volume.array, encoding, compression_level, progress)
        if detached:
            with open(temps[1], "wb") as fh:
                write_voxels(fh, volume.array, encoding, compression_level, progress)
    return [os.fspath(t) for t in targets]


registry.register(
    registry.FileFormat(
        name="nrrd",
        description="NRRD image (.nrrd attached, .nhdr detached); Slicer's default volume format",
        extensions=(".nrrd", ".nhdr"),
        read=read_nrrd,
        write=write_nrrd,
        sniff=_sniff,
        kinds=(DataKind.VOLUME, DataKind.LABELMAP),
        backend="napari-medio (pynrrd header parser)",
    )
)
registry.register(
    registry.FileFormat(
        name="nrrd-sequence",
        description="Slicer volume sequence (.seq.nrrd): a 4D volume with sequence axis values",
        extensions=(".seq.nrrd", ".seq.nhdr"),
        read=read_nrrd,
        write=write_nrrd,
        sniff=_sniff,
        kinds=(DataKind.VOLUME, DataKind.LABELMAP),
        backend="napari-medio (pynrrd header parser)",
    )
)
