"""Registry format for single DICOM files that hold no image series: SEG, RT Structure Set, RT Image, SR.

The general "dicom" format assembles image series; these objects need their own
readers (:mod:`.seg`, :mod:`.rt`).  This format has a higher priority on the
DICOM extensions and its sniff recognises the SOP class UID in the first bytes,
so ``registry.read("seg.dcm")`` gives a Segmentation, an RT Structure Set gives
[Segmentation, RTStructureSet], a TID 1500 report gives a Table and an RT Image a 2D
Volume.  RT Plans are listed in the browser only: reading one is a clear error.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..core.errors import FormatError
from ..core.kinds import DataKind
from ..core.registry import FileFormat, read_head, register
from ._parse import sniff_dicom_bytes

__all__ = ["object_kind", "read_object", "DICOM_OBJECTS_FORMAT"]

_KINDS = (
    ("seg", b"1.2.840.10008.5.1.4.1.1.66.4"),
    ("seg", b"1.2.840.10008.5.1.4.1.1.66.7"),
    ("rtstruct", b"1.2.840.10008.5.1.4.1.1.481.3"),
    ("rtplan", b"1.2.840.10008.5.1.4.1.1.481.5"),
    ("rtplan", b"1.2.840.10008.5.1.4.1.1.481.8"),
    ("rtimage", b"1.2.840.10008.5.1.4.1.1.481.1"),
    ("sr", b"1.2.840.10008.5.1.4.1.1.88."),
)


def _uid_values(head: bytes) -> list[bytes]:
    """Values of (0002,0002) Media Storage SOP Class UID and (0008,0016) SOP Class UID found in ``head``."""
    import struct

    out = []
    for tag in (b"\x02\x00\x02\x00", b"\x08\x00\x16\x00"):
        start = 0
        while True:
            at = head.find(tag, start)
            if at < 0:
                break
            start = at + 1
            if head[at + 4: at + 6] == b"UI":  # explicit VR
                (length,) = struct.unpack_from("<H", head, at + 6) if len(head) >= at + 8 else (0,)
                value = head[at + 8: at + 8 + length]
            elif len(head) >= at + 8:  # implicit VR
                (length,) = struct.unpack_from("<I", head, at + 4)
                if length > 64:
                    continue
                value = head[at + 8: at + 8 + length]
            else:
                continue
            value = value.rstrip(b"\x00 ")
            if value.startswith(b"1.2.840.10008."):
                out.append(value)
                break
    return out


def object_kind(head: bytes) -> str:
    """"seg", "rtstruct", "rtplan", "rtimage", "sr" when the head's SOP class is one of them, else ""."""
    for value in _uid_values(head):
        for kind, uid in _KINDS:
            if value == uid or (uid.endswith(b".") and value.startswith(uid)):
                return kind
    return ""


def _sniff(head: bytes, path: Path) -> bool:
    if not head:
        return False
    return sniff_dicom_bytes(head) and bool(object_kind(head))


def read_object(path: str | os.PathLike[str], reference: Any = None) -> list:
    """The data objects of one SEG / RTSTRUCT / RT Image / SR file (``reference``: the image series grid)."""
    p = Path(path)
    head = read_head(p, 8192)
    if not head:
        raise FormatError(p, "file is empty")
    kind = object_kind(head)
    if kind == "seg":
        from .seg import read_seg_segmentation

        return [read_seg_segmentation(p, reference)]
    if kind == DataKind.RTSTRUCT:
        from .rt import read_rtstruct_objects

        return read_rtstruct_objects(p, reference)
    if kind == "rtimage":
        from .rt import read_rtimage

        return [read_rtimage(p)]
    if kind == "sr":
        from .rt import read_sr_measurements

        return [read_sr_measurements(p)]
    if kind == "rtplan":
        from .rt import describe_rtplan

        plan = describe_rtplan(p)
        raise FormatError(p, f"RT Plan {plan['label']!r} ({len(plan['beams'])} beam(s)) holds no image: "
                             "it is listed in the DICOM browser, not loaded as a layer")
    raise FormatError(p, "not a DICOM SEG, RT Structure Set, RT Image or structured report")


DICOM_OBJECTS_FORMAT = register(
    FileFormat(
        name="dicom-objects",
        description="DICOM SEG, RT Structure Set, RT Image and structured reports (single files)",
        extensions=(".dcm", ".dicom"),
        read=read_object,
        sniff=_sniff,
        kinds=(),
        priority=5,
        backend="napari-medio on highdicom / pydicom",
    )
)
