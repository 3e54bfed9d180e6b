"""Bio-Rad confocal ``.pic`` images, read and written by hand.

Why not SimpleITK's BioRadImageIO: in ITK 5.4 it writes 16-bit voxels
big-endian but reads them little-endian (the format is little-endian), so its
own 16-bit files read back byte-swapped; it looks for the notes after the
*first* slice only, and it multiplies the micron calibration of the notes by
1000 where millimetres need a division.

Layout (little-endian): a 76-byte header (``nx``, ``ny``, ``npic`` at 0/2/4;
notes flag at 10; ``byte_format`` at 14, 1 = 8-bit else 16-bit; file id 12345
at 54; ``lens`` at 64; ``mag_factor`` float32 at 66), the voxels, then 96-byte
notes.  Spacing comes from the ``AXIS_2``/``AXIS_3``/``AXIS_4`` variable notes
(type 20) of distance type (``001``), "origin increment microns", converted to
mm; files without them fall back to ITK's ``mag_factor / lens``.  No axis
directions (identity; writing a rotated volume raises unless
``allow_direction_loss=True``).  uint8 and uint16, 2D or 3D.

Reader options: ``labelmap`` (bool | None).
Writer options: ``allow_direction_loss`` (bool, default False).
"""
from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

from ..core.errors import FormatError
from ..core.fileio import atomic_output
from ..core.geometry import Geometry
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
    require_bytes,
    volume_kind,
)
from .naming import base_name

NAME = "biorad"

_HEADER = 76
_NOTE = 96
_MAGIC = 12345
_NOTE_TYPE_VARIABLE = 20


def sniff(head: bytes, path: Path) -> bool:
    """File id 12345 at byte 54 and positive sizes."""
    if len(head) < _HEADER:
        return False
    nx, ny, npic = struct.unpack("<3H", head[:6])
    file_id = struct.unpack("<H", head[54:56])[0]
    byte_format = struct.unpack("<h", head[14:16])[0]
    return file_id == _MAGIC and nx > 0 and ny > 0 and npic > 0 and byte_format in (0, 1)


def _notes(data: bytes) -> list[tuple[int, str]]:
    out = []
    pos = 0
    while pos + _NOTE <= len(data):
        note = data[pos: pos + _NOTE]
        nxt = struct.unpack("<i", note[2:6])[0]
        ntype = struct.unpack("<h", note[10:12])[0]
        text = note[16:96].split(b"\0", 1)[0].decode("latin-1", "replace").strip()
        out.append((ntype, text))
        pos += _NOTE
        if nxt == 0:
            break
    return out


def read(path: str | os.PathLike[str], *, labelmap: bool | None = None) -> list[Volume]:
    """Read a Bio-Rad ``.pic`` file."""
    p = Path(path)
    size = nonempty_file_size(p)
    with open(p, "rb") as fh:
        head = fh.read(_HEADER)
        if not sniff(head, p):
            raise FormatError(p, "not a Bio-Rad PIC file (no file id 12345 at byte 54)")
        nx, ny, npic = struct.unpack("<3H", head[:6])
        has_notes = struct.unpack("<i", head[10:14])[0] != 0
        byte_format = struct.unpack("<h", head[14:16])[0]
        lens = struct.unpack("<h", head[64:66])[0]
        mag = struct.unpack("<f", head[66:70])[0]
        dtype = np.dtype("<u1") if byte_format == 1 else np.dtype("<u2")
        count = nx * ny * npic
        require_bytes(p, _HEADER + count * dtype.itemsize, size)
        array = np.fromfile(fh, dtype=dtype, count=count).astype(dtype.newbyteorder("="), copy=False)
        notes = _notes(fh.read(_NOTE * 4096)) if has_notes else []
    spacing = [None, None, None]
    origin = [0.0, 0.0, 0.0]
    for ntype, text in notes:
        parts = text.split()
        if ntype != _NOTE_TYPE_VARIABLE or len(parts) < 4 or parts[0] not in ("AXIS_2", "AXIS_3", "AXIS_4"):
            continue
        try:
            axis_type = int(parts[1])
            o, inc = float(parts[2]), float(parts[3])
        except ValueError:
            continue
        if axis_type & 0xFF != 1 or inc <= 0:
            continue
        unit = parts[4].lower() if len(parts) > 4 else "microns"
        scale = {"microns": 1e-3, "micron": 1e-3, "um": 1e-3, "mm": 1.0, "millimeters": 1.0, "nm": 1e-6}.get(unit, 1e-3)
        i = int(parts[0][-1]) - 2
        spacing[i] = inc * scale
        origin[i] = o * scale
    fallback = float(mag) / lens if lens > 0 and np.isfinite(mag) and mag > 0 else 1.0
    spacing = [s if s is not None else fallback for s in spacing]
    notes_meta = [t for _, t in notes if t]
    if npic == 1:
        array = array.reshape(ny, nx)
        geometry = Geometry(spacing[:2], origin[:2], np.eye(2))
    else:
        array = array.reshape(npic, ny, nx)
        geometry = Geometry(spacing, origin, np.eye(3))
    vol = Volume(array, geometry, name=base_name(p), metadata={"biorad_notes": notes_meta} if notes_meta else {},
                 source=os.fspath(p))
    vol.kind = volume_kind(p, labelmap, vol.dtype)
    return [vol]


def _note(text: str, last: bool) -> bytes:
    raw = text.encode("ascii")[:79]
    return struct.pack("<hihhhhh", 1, 0 if last else 1, 0, 0, _NOTE_TYPE_VARIABLE, 0, 0) + raw.ljust(80, b"\0")


def write(volume: Volume, path: str | os.PathLike[str], *, allow_direction_loss: bool = False) -> list[str]:
    """Write a Bio-Rad ``.pic`` file (uint8 or uint16; spacing in AXIS notes)."""
    vol = as_volume(volume, path, "Bio-Rad PIC")
    check_writable(vol, path, "Bio-Rad PIC", dtypes=(np.uint8, np.uint16))
    check_direction(vol, path, "Bio-Rad PIC", allow_direction_loss)
    array = np.asarray(vol.array)
    shape = array.shape if array.ndim == 3 else (1,) + array.shape
    npic, ny, nx = shape
    if max(shape) > 65535:
        raise FormatError(path, "Bio-Rad PIC holds at most 65535 pixels per axis")
    g = vol.geometry
    u16 = vol.dtype == np.uint16
    name = Path(path).name.encode("latin-1", "replace")[:31]
    header = bytearray(_HEADER)
    struct.pack_into("<3H", header, 0, nx, ny, npic)
    struct.pack_into("<HH", header, 6, 0, 65535 if u16 else 255)
    struct.pack_into("<i", header, 10, 1)
    struct.pack_into("<h", header, 14, 0 if u16 else 1)
    header[18: 18 + len(name)] = name
    struct.pack_into("<H", header, 54, _MAGIC)
    struct.pack_into("<HH", header, 56, 0, 65535 if u16 else 255)
    struct.pack_into("<h", header, 64, 1)
    struct.pack_into("<f", header, 66, float(g.spacing[0]))
    axes = ["AXIS_2", "AXIS_3"] + (["AXIS_4"] if g.ndim == 3 else [])
    texts = [f"{a} 001 {g.origin[i] * 1000.0:.9e} {g.spacing[i] * 1000.0:.9e} microns" for i, a in enumerate(axes)]
    notes = b"".join(_note(t, i == len(texts) - 1) for i, t in enumerate(texts))
    data = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
    with atomic_output(path) as temp, open(temp, "wb") as fh:
        fh.write(bytes(header))
        data.tofile(fh)
        fh.write(notes)
    return [os.fspath(path)]


FORMAT = register(
    FileFormat(
        name=NAME,
        description="Bio-Rad confocal image (.pic)",
        extensions=(".pic",),
        read=read,
        write=write,
        sniff=sniff,
        kinds=(DataKind.VOLUME, DataKind.LABELMAP),
        backend="napari-medio (hand-written)",
        read_options={"labelmap": LABELMAP_OPTION},
        write_options={"allow_direction_loss": DIRECTION_LOSS_OPTION},
    )
)
