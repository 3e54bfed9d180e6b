"""Zeiss LSM confocal stacks (``.lsm``), read through SimpleITK's LSMImageIO (as Slicer does).

LSM is TIFF with a private ``CZ_LSMINFO`` tag (34412) that holds the voxel
size; ITK turns it into spacing (mm) and reads the image pages (thumbnails
skipped) as a 2D or 3D volume, 8/16-bit gray or RGB.  Reading only: write
TIFF, NRRD or MetaImage instead.

Reader options: ``labelmap`` (bool | None).
"""
from __future__ import annotations

import os
import struct
from pathlib import Path

from ..core.errors import FormatError
from ..core.kinds import DataKind
from ..core.registry import FileFormat, register
from ..core.volume import Volume
from ._imageio import LABELMAP_OPTION, nonempty_file_size, read_sitk
from .raster import component_axis

NAME = "lsm"

_CZ_LSMINFO = 34412


def sniff(head: bytes, path: Path) -> bool:
    """Little-endian TIFF whose first IFD carries the CZ_LSMINFO tag (extension ``.lsm`` decides
    when that directory is beyond the head)."""
    if head[:4] != b"II*\0" or len(head) < 16:
        return False
    ifd = struct.unpack("<I", head[4:8])[0]
    if ifd + 2 > len(head):
        # The first directory lies beyond the head (ITK writes it after the image): the
        # extension decides between LSM and plain TIFF.
        return path is not None and Path(path).suffix.lower() == ".lsm"
    n = struct.unpack("<H", head[ifd: ifd + 2])[0]
    for i in range(n):
        at = ifd + 2 + 12 * i
        if at + 2 > len(head):
            return path is not None and Path(path).suffix.lower() == ".lsm"
        if struct.unpack("<H", head[at: at + 2])[0] == _CZ_LSMINFO:
            return True
    return False


_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}


def _ifds(p: Path, data: bytes) -> list[dict]:
    """The IFDs of a little-endian classic TIFF: tag -> (type, count, values or value offset)."""
    out = []
    offset = struct.unpack_from("<I", data, 4)[0]
    seen = set()
    while offset:
        if offset in seen or offset + 2 > len(data):
            raise FormatError(p, "file is truncated or corrupt: an image directory lies beyond the end")
        seen.add(offset)
        n = struct.unpack_from("<H", data, offset)[0]
        if offset + 2 + 12 * n + 4 > len(data):
            raise FormatError(p, "file is truncated: incomplete image directory")
        tags = {}
        for i in range(n):
            tag, typ, count = struct.unpack_from("<HHI", data, offset + 2 + 12 * i)
            size = _TYPE_SIZES.get(typ, 1) * count
            at = offset + 2 + 12 * i + 8
            if size > 4:
                at = struct.unpack_from("<I", data, at)[0]
            if at + size > len(data):
                raise FormatError(p, "file is truncated: a TIFF tag value lies beyond the end")
            if typ in (3, 4) and tag in (254, 273, 279):
                fmt = f"<{count}{'H' if typ == 3 else 'I'}"
                tags[tag] = list(struct.unpack_from(fmt, data, at))
            elif tag == _CZ_LSMINFO:
                tags[tag] = at
        out.append(tags)
        offset = struct.unpack_from("<I", data, offset + 2 + 12 * n)[0]
    return out


def _check_complete(p: Path) -> int:
    """Refuse truncated files; the number of full-resolution pages."""
    data = p.read_bytes()
    if len(data) < 16 or not sniff(data[:4096], p):
        raise FormatError(p, "not an LSM file (TIFF with a CZ_LSMINFO tag)")
    ifds = _ifds(p, data)
    pages = [d for d in ifds if not (d.get(254, [0])[0] & 1)]
    for d in pages:
        for off, cnt in zip(d.get(273, []), d.get(279, [])):
            if off + cnt > len(data):
                raise FormatError(p, f"file is truncated: image data ends at byte {off + cnt}, "
                                     f"the file has {len(data)}")
    info_at = next((d[_CZ_LSMINFO] for d in ifds if _CZ_LSMINFO in d), None)
    if info_at is not None and info_at + 28 <= len(data):
        z, _channels, t = struct.unpack_from("<3i", data, info_at + 16)
        expected = max(z, 1) * max(t, 1)
        if len(pages) < expected:
            raise FormatError(p, f"file is truncated: {len(pages)} of {expected} image pages present")
    if not pages:
        raise FormatError(p, "LSM file has no image pages")
    return len(pages)


def read(path: str | os.PathLike[str], *, labelmap: bool | None = None) -> list[Volume]:
    """Read an LSM stack."""
    p = Path(path)
    nonempty_file_size(p)
    _check_complete(p)
    vol = read_sitk(p, "LSMImageIO", labelmap=labelmap)
    if vol.components is not None:
        vol.components = component_axis(vol.n_components, vol.dtype, True)
    return [vol]


FORMAT = register(
    FileFormat(
        name=NAME,
        description="Zeiss LSM confocal stack (.lsm)",
        extensions=(".lsm",),
        read=read,
        sniff=sniff,
        kinds=(DataKind.VOLUME, DataKind.LABELMAP),
        backend="SimpleITK",
        priority=1,
        read_options={"labelmap": LABELMAP_OPTION},
    )
)
