"""MRC electron density maps (``.mrc``), through SimpleITK's MRCImageIO.

A 1024-byte header (sizes, mode, cell dimensions, origin; ``MAP `` at byte 208 in
MRC2000/2014 files), an optional extended header, then the voxels.  Spacing is
the cell size over the sample count and the origin is the header origin, as ITK
reads them; there are no axis directions (identity on reading; writing a
rotated volume raises unless ``allow_direction_loss=True``).  A 2D image is
stored as a single-section 3D map and so reads back as 3D.

Voxel types written: uint8, int16, uint16, float32 and 8-bit RGB; read: also
the complex modes ITK supports.

Reader options: ``labelmap`` (bool | None).
Writer options: ``allow_direction_loss`` (bool, default False).
"""
from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

from ..core.errors import FormatError
from ..core.kinds import DataKind
from ..core.registry import FileFormat, register
from ..core.volume import Volume
from ._imageio import (
    DIRECTION_LOSS_OPTION,
    LABELMAP_OPTION,
    as_volume,
    check_direction,
    check_writable,
    nonempty_file_size,
    read_sitk,
    require_bytes,
    write_sitk,
)

NAME = "mrc"

_HEADER = 1024
# MRC mode -> bytes per voxel.
_MODE_BYTES = {0: 1, 1: 2, 2: 4, 3: 4, 4: 8, 6: 2, 12: 2, 16: 3}


def _fields(head: bytes) -> tuple[str, tuple[int, int, int], int, int] | None:
    """(byte order, (nx, ny, nz), mode, extended header bytes) of a plausible MRC header."""
    if len(head) < 224:
        return None
    stamp = head[212:214]
    orders = ["<", ">"] if stamp[:1] != b"\x11" else [">", "<"]
    for order in orders:
        nx, ny, nz, mode = struct.unpack(order + "4i", head[:16])
        nsymbt = struct.unpack(order + "i", head[92:96])[0]
        if 0 < nx < 1 << 20 and 0 < ny < 1 << 20 and 0 < nz < 1 << 20 and mode in _MODE_BYTES and 0 <= nsymbt < 1 << 30:
            return order, (nx, ny, nz), mode, nsymbt
    return None


def sniff(head: bytes, path: Path) -> bool:
    """``MAP `` at byte 208 with a sane header, or (old files) a sane header alone."""
    f = _fields(head)
    if f is None:
        return False
    if head[208:212] == b"MAP ":
        return True
    # Pre-2000 files lack the MAP stamp: also require sane axis mapping (mapc/mapr/maps a permutation of 1..3).
    order = f[0]
    axes = struct.unpack(order + "3i", head[64:76])
    return sorted(axes) == [1, 2, 3]


def _check_complete(path: Path) -> None:
    with open(path, "rb") as fh:
        head = fh.read(_HEADER)
    f = _fields(head)
    if f is None or len(head) < _HEADER:
        raise FormatError(path, "not an MRC file or its header is truncated")
    _, (nx, ny, nz), mode, nsymbt = f
    require_bytes(path, _HEADER + nsymbt + nx * ny * nz * _MODE_BYTES[mode])


def read(path: str | os.PathLike[str], *, labelmap: bool | None = None) -> list[Volume]:
    """Read an MRC map (identity direction)."""
    p = Path(path)
    nonempty_file_size(p)
    _check_complete(p)
    return [read_sitk(p, "MRCImageIO", labelmap=labelmap)]


def write(volume: Volume, path: str | os.PathLike[str], *, allow_direction_loss: bool = False) -> list[str]:
    """Write an MRC map."""
    vol = as_volume(volume, path, "MRC")
    check_writable(vol, path, "MRC", dtypes=(np.uint8, np.int16, np.uint16, np.float32), components=(1, 3),
                   component_dtypes=(np.uint8,))
    check_direction(vol, path, "MRC", allow_direction_loss)
    return write_sitk(vol, path, "MRCImageIO")


FORMAT = register(
    FileFormat(
        name=NAME,
        description="MRC electron density map (.mrc)",
        extensions=(".mrc",),
        read=read,
        write=write,
        sniff=sniff,
        kinds=(DataKind.VOLUME, DataKind.LABELMAP),
        backend="SimpleITK",
        read_options={"labelmap": LABELMAP_OPTION},
        write_options={"allow_direction_loss": DIRECTION_LOSS_OPTION},
    )
)
