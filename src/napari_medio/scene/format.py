"""Registry entries for scenes: .mrml, .mrb, .zip holding a scene, XNAT .xcat/.xar.

The one module of :mod:`napari_medio.scene` that registers formats; imports stay
cheap (the loaders are imported when a scene is read).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..core.kinds import DataKind
from ..core.registry import FileFormat, register

__all__ = ["MRB_FORMAT", "MRML_FORMAT", "XNAT_FORMAT"]


def _sniff_mrml(head: bytes, path: Path) -> bool:
    text = head.lstrip(b"\xef\xbb\xbf").lstrip()
    return b"<MRML" in text[:4096] and (text.startswith(b"<") )


def _sniff_bundle(head: bytes, path: Path) -> bool:
    if head[:4] != b"PK\x03\x04":
        return False
    from .mrb import zip_has_mrml

    return zip_has_mrml(Path(path))


def read_scene_file(path: os.PathLike[str] | str, *, strict: bool = False, progress: Any = None,
                    cancel: Any = None) -> list:
    """Every data object of a Slicer scene (.mrml) or bundle (.mrb, .zip), placed in the LPS world."""
    from .loader import read_scene

    return read_scene(path, strict=strict, progress=progress, cancel=cancel)


def _read_xnat(path: os.PathLike[str] | str) -> list:
    from .xnat import read_xnat

    return read_xnat(path)


def _sniff_xnat(head: bytes, path: Path) -> bool:
    if head[:4] == b"PK\x03\x04":
        return Path(path).suffix.lower() == ".xar"
    text = head.lstrip(b"\xef\xbb\xbf").lstrip()
    return text.startswith(b"<") and b"Catalog" in text[:4096]


MRML_FORMAT = register(FileFormat(
    name="mrml",
    description="3D Slicer scene (.mrml): every data node it refers to, placed by its transforms",
    extensions=(".mrml",),
    read=read_scene_file,
    sniff=_sniff_mrml,
    kinds=(DataKind.SCENE,),
    priority=10,
    backend="napari-medio (defusedxml)",
    read_options={"strict": "a missing or unreadable data file is an error instead of a warning"},
))

MRB_FORMAT = register(FileFormat(
    name="mrb",
    description="3D Slicer Medical Reality Bundle (.mrb, or a .zip holding a scene), extracted safely",
    extensions=(".mrb", ".zip"),
    read=read_scene_file,
    sniff=_sniff_bundle,
    kinds=(DataKind.SCENE,),
    priority=10,
    backend="napari-medio (zipfile, defusedxml)",
    read_options={"strict": "a missing or unreadable data file is an error instead of a warning"},
))

XNAT_FORMAT = register(FileFormat(
    name="xnat",
    description="XNAT catalog (.xcat) or archive (.xar): the local files they list",
    extensions=(".xcat", ".xar"),
    read=_read_xnat,
    sniff=_sniff_xnat,
    kinds=(DataKind.SCENE,),
    priority=10,
    backend="napari-medio (defusedxml, zipfile)",
))
