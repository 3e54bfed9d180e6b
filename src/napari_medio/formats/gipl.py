"""GIPL (Guy's Image Processing Lab, ``.gipl`` and gzip-compressed ``.gipl.gz``), through SimpleITK.

A 256-byte big-endian header (dimensions, type, float32 pixel sizes, float64
origin, magic number 719555000 or 4026526128 at byte 252) followed by the voxels.
The format stores spacing (float32) and origin but no axis directions: reading
gives an identity direction, and writing a volume whose direction is not the
identity raises unless ``allow_direction_loss=True``.  ITK writes a 2D image as
a single-slice 3D volume, so a 2D image reads back as 3D with one slice.

Voxel types written: int8, uint8, int16, uint16, float32, float64 (ITK's GIPL
writer has no 32-bit integers); read: those plus int32/uint32.

Reader options: ``labelmap`` (bool | None).
Writer options: ``compress`` (bool; default: True for ``.gipl.gz``, else False),
``allow_direction_loss`` (bool, default False).
"""
from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np

from ..core.errors import FormatError, MedioError
from ..core.kinds import DataKind
from ..core.registry import FileFormat, register
from ..core.volume import Volume
from ._imageio import (
    DIRECTION_LOSS_OPTION,
    LABELMAP_OPTION,
    as_volume,
    check_direction,
    check_writable,
    inflate_head,
    nonempty_file_size,
    read_sitk,
    require_bytes,
    write_sitk,
)

NAME = "gipl"

_MAGICS = (719555000, 4026526128)
_HEADER = 256
# GIPL image type code -> bytes per voxel (0: not checked).
_TYPE_BYTES = {1: 0, 7: 1, 8: 1, 15: 2, 16: 2, 31: 4, 32: 4, 64: 4, 65: 8, 144: 4, 160: 8, 192: 8, 193: 16}


def _header_ok(header: bytes) -> bool:
    if len(header) < _HEADER:
        return False
    magic = struct.unpack(">I", header[252:256])[0]
    dims = struct.unpack(">4H", header[:8])
    itype = struct.unpack(">H", header[8:10])[0]
    return magic in _MAGICS and itype in _TYPE_BYTES and dims[0] > 0 and dims[1] > 0


def sniff(head: bytes, path: Path) -> bool:
    """The GIPL magic number at byte 252 (after gunzip for ``.gipl.gz``)."""
    return _header_ok(inflate_head(head, _HEADER))


def _check_complete(path: Path) -> None:
    with open(path, "rb") as fh:
        raw = fh.read()
    if raw[:2] == b"\x1f\x8b":
        from ..core.fileio import gzip_decompress

        try:
            data = gzip_decompress(raw)
        except (EOFError, OSError, zlib.error, ValueError) as exc:
            raise FormatError(path, f"corrupt or truncated gzip stream: {exc}") from None
    else:
        data = raw
    if not _header_ok(data):
        raise FormatError(path, "not a GIPL file (bad header or magic number)")
    dims = [d if d > 0 else 1 for d in struct.unpack(">4H", data[:8])]
    nbytes = _TYPE_BYTES[struct.unpack(">H", data[8:10])[0]]
    if nbytes:
        require_bytes(path, _HEADER + int(np.prod(dims, dtype=np.int64)) * nbytes, len(data),
                      "voxel data (after decompression)" if data is not raw else "voxel data")


def read(path: str | os.PathLike[str], *, labelmap: bool | None = None) -> list[Volume]:
    """Read a GIPL file (identity direction)."""
    p = Path(path)
    nonempty_file_size(p)
    _check_complete(p)
    return [read_sitk(p, "GiplImageIO", labelmap=labelmap)]


def write(volume: Volume, path: str | os.PathLike[str], *, compress: bool | None = None,
          allow_direction_loss: bool = False) -> list[str]:
    """Write GIPL (``.gipl.gz`` or ``compress=True``: gzip-compressed)."""
    vol = as_volume(volume, path, "GIPL")
    check_writable(vol, path, "GIPL", dtypes=(np.int8, np.uint8, np.int16, np.uint16, np.float32, np.float64))
    check_direction(vol, path, "GIPL", allow_direction_loss)
    gz = os.fspath(path).lower().endswith(".gz")
    if compress is None:
        compress = gz
    if compress and not gz:
        raise MedioError(path, "a compressed GIPL file must be named .gipl.gz")
    return write_sitk(vol, path, "GiplImageIO", compress=bool(compress))


FORMAT = register(
    FileFormat(
        name=NAME,
        description="GIPL (.gipl, .gipl.gz)",
        extensions=(".gipl", ".gipl.gz"),
        read=read,
        write=write,
        sniff=sniff,
        kinds=(DataKind.VOLUME, DataKind.LABELMAP),
        backend="SimpleITK",
        read_options={"labelmap": LABELMAP_OPTION},
        write_options={"compress": "gzip (default: True for .gipl.gz)",
                       "allow_direction_loss": DIRECTION_LOSS_OPTION},
    )
)
