"""MetaImage (``.mha`` single file, ``.mhd`` header + ``.raw``/``.zraw`` data), through SimpleITK.

2D, 3D and 4D (time as a leading extra axis), scalar or vector voxels, every
ITK voxel type, kept as stored.  Geometry is LPS exactly as ITK reads it; like
Slicer, ``AnatomicalOrientation`` in the header is ignored.

Reader options:
    ``labelmap`` (bool | None): load as a label map; ``None`` guesses from the
    file name (``-label``, ``_seg``).
Writer options:
    ``compress`` (bool, default True as in Slicer): zlib-compress the voxels
    (``.mhd`` then writes its data to ``<name>.zraw``, else ``<name>.raw``).

Fields of the header that are not geometry (``ITK_...`` or custom keys) are kept
in ``volume.metadata["metaimage"]`` and written back.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from ..core.errors import FormatError
from ..core.kinds import DataKind
from ..core.registry import FileFormat, register
from ..core.volume import Volume
from ._imageio import (
    LABELMAP_OPTION,
    as_volume,
    file_size,
    read_sitk,
    require_bytes,
    sidecar,
    to_sitk,
    write_sitk,
)
from .naming import base_name

NAME = "metaimage"

_KEY_LINE = re.compile(rb"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*[=:]\s*(.*?)\s*$")

_ELEMENT_BYTES = {
    "MET_CHAR": 1, "MET_UCHAR": 1, "MET_SHORT": 2, "MET_USHORT": 2, "MET_INT": 4, "MET_UINT": 4,
    "MET_LONG": 4, "MET_ULONG": 4, "MET_LONG_LONG": 8, "MET_ULONG_LONG": 8, "MET_FLOAT": 4,
    "MET_DOUBLE": 8,
}

#: Header keys ITK derives from the geometry or the voxels: not copied into metadata.
STANDARD_KEYS = {
    "ObjectType", "ObjectSubType", "NDims", "BinaryData", "BinaryDataByteOrderMSB", "ElementByteOrderMSB",
    "CompressedData", "CompressedDataSize", "TransformMatrix", "Rotation", "Orientation", "Offset",
    "Origin", "Position", "CenterOfRotation", "AnatomicalOrientation", "ElementSpacing", "DimSize",
    "ElementSize", "ElementType", "ElementNumberOfChannels", "ElementDataFile", "HeaderSize",
    "ElementMin", "ElementMax", "Comment", "Name", "ID", "ParentID", "Color", "ElementNBits",
    "ITK_InputFilterName", "ITK_original_direction", "ITK_original_spacing",
}


def header_pairs(head: bytes) -> list[tuple[str, str]] | None:
    """``(key, value)`` pairs of a MetaImage header up to ElementDataFile, or None when not one."""
    lines = head.split(b"\n")
    complete = b"ElementDataFile" in head
    pairs: list[tuple[str, str]] = []
    for i, raw in enumerate(lines):
        if i == len(lines) - 1 and not complete:
            break  # a line cut by the head size
        line = raw.rstrip(b"\r")
        if not line.strip():
            continue
        m = _KEY_LINE.match(line)
        if not m or b"\0" in line:
            return None
        key, value = m.group(1).decode("ascii"), m.group(2).decode("latin-1")
        pairs.append((key, value))
        if key == "ElementDataFile":
            break
    return pairs


def sniff(head: bytes, path: Path) -> bool:
    """A MetaImage header: ``Key = value`` lines naming NDims or ObjectType = Image."""
    pairs = header_pairs(head[:4096])
    if not pairs:
        return False
    keys = {k for k, _ in pairs}
    obj = dict(pairs).get("ObjectType", "Image").strip().lower()
    return ("NDims" in keys or "ObjectType" in keys) and obj == "image" and (
        "DimSize" in keys or "ElementDataFile" not in keys
    )


_MAX_HEADER = 1 << 26


def read_header(path: Path) -> tuple[list[tuple[str, str]], int]:
    """``(key, value)`` pairs of a MetaImage header, read line by line up to ElementDataFile (headers
    of sequence files run to megabytes), and the byte offset after it (-1 when there is none)."""
    pairs: list[tuple[str, str]] = []
    with open(path, "rb") as fh:
        for raw in iter(lambda: fh.readline(1 << 16), b""):
            m = _KEY_LINE.match(raw.rstrip(b"\r\n"))
            if m:
                pairs.append((m.group(1).decode("ascii"), m.group(2).decode("latin-1")))
                if m.group(1) == b"ElementDataFile":
                    return pairs, fh.tell()
            if fh.tell() > _MAX_HEADER:
                break
    return pairs, -1


def _parse_header(path: Path) -> tuple[dict, int]:
    pairs, offset = read_header(path)
    return dict(pairs), offset


def data_start(path: Path, fields: dict, offset: int, nbytes: int, compressed: bool) -> tuple[Path, int]:
    """The file holding the voxels of a single-file or ``.mhd`` + data-file MetaImage, and where they start
    (``HeaderSize = -1``: the last ``nbytes`` of the data file)."""
    datafile = fields.get("ElementDataFile", "LOCAL").strip()
    if datafile.upper() == "LOCAL":
        return path, offset
    source = sidecar(path, datafile)
    try:
        header_size = int(fields.get("HeaderSize", "0"))
    except ValueError:
        header_size = 0
    if header_size == -1 and not compressed and source.is_file():
        return source, file_size(source) - nbytes
    return source, max(header_size, 0)


def _check_complete(path: Path) -> None:
    """Refuse a header without dimensions or data, and data shorter than the header says."""
    fields, offset = _parse_header(path)
    if "ElementDataFile" not in fields:
        raise FormatError(path, "MetaImage header has no ElementDataFile line (truncated or not a MetaImage)")
    try:
        ndims = int(fields.get("NDims", "0"))
        dims = [int(v) for v in fields.get("DimSize", "").split()]
    except ValueError:
        raise FormatError(path, "MetaImage header has a malformed NDims or DimSize") from None
    if ndims < 1 or len(dims) < ndims or any(d < 1 for d in dims[:ndims]):
        raise FormatError(path, f"MetaImage header has invalid dimensions NDims={ndims} DimSize={dims}")
    etype = fields.get("ElementType", "").strip()
    if etype not in _ELEMENT_BYTES:
        raise FormatError(path, f"MetaImage element type {etype or '(missing)'} is not supported")
    try:
        channels = int(fields.get("ElementNumberOfChannels", "1"))
    except ValueError:
        channels = 1
    needed = int(np.prod(dims[:ndims], dtype=np.int64)) * max(channels, 1) * _ELEMENT_BYTES[etype]
    compressed = fields.get("CompressedData", "False").strip().lower() == "true"
    datafile = fields["ElementDataFile"].strip()
    if datafile.upper() == "LOCAL":
        available = file_size(path) - offset
        if compressed:
            csize = fields.get("CompressedDataSize", "").strip()
            if csize.isdigit():
                require_bytes(path, int(csize), available, "compressed voxel data")
            elif available <= 0:
                raise FormatError(path, "MetaImage file has no voxel data")
        else:
            require_bytes(path, needed, available)
        return
    if datafile.upper().startswith("LIST") or "%" in datafile or " " in datafile:
        return  # slice lists and file patterns: ITK checks each file
    data_path = sidecar(path, datafile)
    if not data_path.is_file():
        raise FormatError(path, f"MetaImage data file {datafile} is missing")
    size = file_size(data_path)
    if compressed:
        csize = fields.get("CompressedDataSize", "").strip()
        if size == 0 or (csize.isdigit() and size < int(csize)):
            raise FormatError(path, f"file is truncated: compressed data file {datafile} has {size} bytes"
                                    + (f", the header says {csize}" if csize.isdigit() else ""))
        return
    try:
        header_size = int(fields.get("HeaderSize", "0"))
    except ValueError:
        header_size = 0
    require_bytes(path, needed + max(header_size, 0), size, f"voxel data in {datafile}")


#: MetaImage ``ElementType`` -> NumPy type code (byte order added by the reader).
NUMPY_TYPES = {
    "MET_CHAR": "i1", "MET_UCHAR": "u1", "MET_SHORT": "i2", "MET_USHORT": "u2", "MET_INT": "i4",
    "MET_UINT": "u4", "MET_LONG": "i4", "MET_ULONG": "u4", "MET_LONG_LONG": "i8", "MET_ULONG_LONG": "u8",
    "MET_FLOAT": "f4", "MET_DOUBLE": "f8",
}


def _read_mapped(path: Path, labelmap: bool | None) -> Volume | None:
    """Uncompressed little-endian data memory-mapped (copy-on-write), geometry from ITK's header reader.

    Returns None where only SimpleITK can read the data (compressed, big-endian,
    slice lists), so a huge raw .mha/.mhd opens instantly and costs memory only
    for what is looked at.
    """
    import SimpleITK as sitk

    from ..core.itk_image import volume_from_parts
    from ._imageio import volume_kind

    fields, offset = _parse_header(path)
    if fields.get("CompressedData", "False").strip().lower() == "true":
        return None
    if any(fields.get(k, "False").strip().lower() == "true" for k in ("BinaryDataByteOrderMSB",
                                                                     "ElementByteOrderMSB")):
        return None
    etype = fields.get("ElementType", "").strip()
    datafile = fields.get("ElementDataFile", "").strip()
    if etype not in NUMPY_TYPES or not datafile or datafile.upper().startswith("LIST") or "%" in datafile \
            or " " in datafile:
        return None
    reader = sitk.ImageFileReader()
    reader.SetImageIO("MetaImageIO")
    reader.SetFileName(os.fspath(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        return None
    dim = reader.GetDimension()
    ncomp = reader.GetNumberOfComponents()
    shape = tuple(int(s) for s in reversed(reader.GetSize())) + ((ncomp,) if ncomp > 1 else ())
    dtype = np.dtype(NUMPY_TYPES[etype]).newbyteorder("<")
    count = int(np.prod(shape, dtype=np.int64))
    source, start = data_start(path, fields, offset, count * dtype.itemsize, compressed=False)
    if count == 0 or start < 0:
        return None
    array = np.memmap(source, dtype=dtype, mode="c", offset=start, shape=shape)
    is_color = ncomp in (3, 4) and dtype == np.uint8
    vol = volume_from_parts(array, reader.GetSpacing(), reader.GetOrigin(), reader.GetDirection(), dim, ncomp,
                            is_color=is_color, name=base_name(path), source=os.fspath(path))
    vol.kind = volume_kind(path, labelmap, vol.dtype, vol.n_components)
    return vol


def read(path: str | os.PathLike[str], *, labelmap: bool | None = None, mmap: bool = True) -> list[Volume]:
    """Read a ``.mha`` / ``.mhd`` file into one Volume (LPS; raw data memory-mapped unless ``mmap=False``)."""
    p = Path(path)
    _check_complete(p)
    vol = _read_mapped(p, labelmap) if mmap else None
    if vol is None:
        vol = read_sitk(p, "MetaImageIO", labelmap=labelmap)
    extra = _custom_fields(p)
    if extra:
        vol.metadata["metaimage"] = extra
    return [vol]


def _custom_fields(path: Path) -> dict:
    fields, _ = _parse_header(path)
    return {k: v for k, v in fields.items() if k not in STANDARD_KEYS}


def write(volume: Volume, path: str | os.PathLike[str], *, compress: bool = True) -> list[str]:
    """Write ``.mha`` (one file) or ``.mhd`` + ``.raw``/``.zraw``; returns the files written."""
    vol = as_volume(volume, path, "MetaImage")
    image = to_sitk(vol, path)
    for key, value in (vol.metadata.get("metaimage") or {}).items():
        if isinstance(key, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key) and key not in STANDARD_KEYS:
            image.SetMetaData(key, str(value).replace("\n", " "))
    return write_sitk(vol, path, "MetaImageIO", compress=compress, image=image)


FORMAT = register(
    FileFormat(
        name=NAME,
        description="MetaImage (.mha, .mhd + .raw/.zraw)",
        extensions=(".mha", ".mhd"),
        read=read,
        write=write,
        sniff=sniff,
        kinds=(DataKind.VOLUME, DataKind.LABELMAP),
        backend="SimpleITK",
        read_options={"labelmap": LABELMAP_OPTION},
        write_options={"compress": "zlib-compress the voxels (default True)"},
    )
)
