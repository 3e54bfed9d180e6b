"""Legacy VTK image data (``.vtk`` with ``DATASET STRUCTURED_POINTS``), through SimpleITK's VTKImageIO.

Only image data is handled here: a ``.vtk`` holding POLYDATA, UNSTRUCTURED_GRID
or another dataset is a model, so :func:`sniff` refuses it and the registry
moves on to the model reader.

The format stores spacing and origin but no axis directions (Slicer's page:
"image axis directions cannot be stored in this file format").  Reading gives
an identity direction.  Writing a volume whose direction is not the identity
raises a clear error, because the file would silently put it elsewhere; the
writer option ``allow_direction_loss=True`` writes it anyway (direction dropped,
origin and spacing kept).

Reader options: ``labelmap`` (bool | None, None guesses from the file name).
Writer options: ``allow_direction_loss`` (bool, default False).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from ..core.errors import FormatError
from ..core.kinds import DataKind
from ..core.registry import FileFormat, register
from ..core.volume import Volume
from ._imageio import (
    LABELMAP_OPTION,
    as_volume,
    check_direction,
    check_writable,
    nonempty_file_size,
    read_sitk,
    require_bytes,
    write_sitk,
)

NAME = "vtk-image"

_VTK_TYPES = {
    "bit": 0, "unsigned_char": 1, "char": 1, "short": 2, "unsigned_short": 2, "int": 4, "unsigned_int": 4,
    "long": 8, "unsigned_long": 8, "vtktypeint64": 8, "vtktypeuint64": 8, "float": 4, "double": 8,
}


def _lines(head: bytes, n: int) -> list[bytes]:
    out = []
    for raw in head.split(b"\n"):
        out.append(raw.rstrip(b"\r"))
        if len(out) >= n:
            break
    return out


def sniff(head: bytes, path: Path) -> bool:
    """``# vtk DataFile Version`` with ``DATASET STRUCTURED_POINTS`` (not models)."""
    if not head.startswith(b"# vtk DataFile"):
        return False
    lines = _lines(head, 12)
    if len(lines) < 4 or lines[2].strip().upper() not in (b"ASCII", b"BINARY"):
        return False
    for line in lines[3:]:
        if not line.strip():
            continue
        parts = line.split()
        return len(parts) >= 2 and parts[0].upper() == b"DATASET" and parts[1].upper() == b"STRUCTURED_POINTS"
    return False


def _check_complete(path: Path) -> None:
    """Parse the header far enough to refuse truncated voxel data (ITK would read garbage)."""
    with open(path, "rb") as fh:
        data = fh.read()
    lines = data.split(b"\n", 4)
    if len(lines) < 5:
        raise FormatError(path, "VTK header is incomplete")
    binary = lines[2].strip().upper() == b"BINARY"
    dims = re.search(rb"\nDIMENSIONS\s+(\d+)\s+(\d+)\s+(\d+)", data[:4096])
    if not dims:
        raise FormatError(path, "VTK structured points without DIMENSIONS")
    npoints = int(dims.group(1)) * int(dims.group(2)) * int(dims.group(3))
    if npoints <= 0:
        raise FormatError(path, "VTK structured points with zero dimensions")
    pd = re.search(rb"\nPOINT_DATA\s+(\d+)\s*\r?\n", data)
    if not pd:
        raise FormatError(path, "VTK file has no POINT_DATA (truncated or no voxels)")
    if int(pd.group(1)) != npoints:
        raise FormatError(path, f"VTK POINT_DATA {int(pd.group(1))} does not match DIMENSIONS ({npoints} points)")
    pos = pd.end()
    attr = re.compile(rb"[ \t]*(SCALARS|VECTORS|NORMALS|COLOR_SCALARS|TENSORS)[ \t]+(\S+)"
                      rb"(?:[ \t]+(\S+))?(?:[ \t]+(\d+))?[ \t]*\r?\n")
    m = attr.match(data, pos)
    if not m:
        raise FormatError(path, "VTK POINT_DATA has no SCALARS/VECTORS/COLOR_SCALARS block")
    kind = m.group(1)
    pos = m.end()
    if kind == b"COLOR_SCALARS":
        ncomp = int(m.group(3) or 1)
        size = 1 if binary else 0
    else:
        vtk_type = (m.group(3) or b"float").decode("latin-1").lower()
        size = _VTK_TYPES.get(vtk_type)
        if size is None:
            raise FormatError(path, f"VTK voxel type {vtk_type} is not supported")
        ncomp = {b"SCALARS": int(m.group(4) or 1), b"VECTORS": 3, b"NORMALS": 3, b"TENSORS": 9}[kind]
        if kind == b"SCALARS":
            lut = re.compile(rb"[ \t]*LOOKUP_TABLE[ \t]+\S+[ \t]*\r?\n").match(data, pos)
            if lut:
                pos = lut.end()
    count = npoints * ncomp
    if binary:
        if size == 0:  # bit arrays are packed
            needed = (count + 7) // 8
        else:
            needed = count * size
        require_bytes(path, pos + needed, len(data))
    else:
        tokens = len(data[pos:].split(None, count))
        if tokens < count:
            raise FormatError(path, f"file is truncated: {count} values expected, {tokens} present")


def read(path: str | os.PathLike[str], *, labelmap: bool | None = None) -> list[Volume]:
    """Read VTK structured points into one Volume (identity direction)."""
    p = Path(path)
    nonempty_file_size(p)
    _check_complete(p)
    return [read_sitk(p, "VTKImageIO", labelmap=labelmap)]


def write(volume: Volume, path: str | os.PathLike[str], *, allow_direction_loss: bool = False) -> list[str]:
    """Write VTK structured points (binary); refuses a non-identity direction unless allowed."""
    vol = as_volume(volume, path, "VTK")
    check_writable(vol, path, "VTK image", ndims=(2, 3), components=range(1, 10))
    check_direction(vol, path, "VTK image", allow_direction_loss)
    return write_sitk(vol, path, "VTKImageIO")


FORMAT = register(
    FileFormat(
        name=NAME,
        description="Legacy VTK image data (.vtk STRUCTURED_POINTS)",
        extensions=(".vtk",),
        read=read,
        write=write,
        sniff=sniff,
        kinds=(DataKind.VOLUME, DataKind.LABELMAP),
        backend="SimpleITK",
        read_options={"labelmap": LABELMAP_OPTION},
        write_options={"allow_direction_loss": "write even though the axis directions are lost (default False)"},
    )
)
