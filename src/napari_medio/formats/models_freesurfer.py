"""FreeSurfer surfaces (``lh.pial``, ``rh.white``, ``*.orig``, ``*.inflated``, ``*.sphere``, ``*.smoothwm``).

Read with nibabel.  FreeSurfer stores vertices in tkregister RAS (the conformed
volume's "surface RAS").  As Slicer's FreeSurfer importer: without a reference
volume the vertices are taken as RAS as they are; with ``reference=`` a FreeSurfer
volume (e.g. ``orig.mgz``, ``T1.mgz``) the volume's c_ras offset (scanner RAS minus
tkregister RAS) is added, so the surface lands on that volume.  Either way the
points are then converted to LPS.  Read only.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..core.errors import FormatError
from ..core.kinds import DataKind
from ..core.model import Model
from ..core.registry import FileFormat, register
from ._vtkmesh import to_lps

__all__ = ["read_freesurfer_surface", "tkr_to_scanner_offset"]

_MAGIC = (b"\xff\xff\xfe", b"\xff\xff\xff", b"\xff\xff\xfd")


def _sniff(head: bytes, path: Path) -> bool:
    return head[:3] in _MAGIC


def tkr_to_scanner_offset(reference: str | os.PathLike[str]) -> np.ndarray:
    """c_ras of a FreeSurfer volume: scanner RAS minus tkregister RAS (mm)."""
    import nibabel as nib

    img = nib.load(os.fspath(reference))
    header = img.header
    if hasattr(header, "get_vox2ras_tkr"):
        return (header.get_vox2ras() - header.get_vox2ras_tkr())[:3, 3]
    raise FormatError(reference, "reference volume is not a FreeSurfer (MGH/MGZ) volume with c_ras")


def read_freesurfer_surface(path: str | os.PathLike[str], *, reference: str | None = None) -> list[Model]:
    """A FreeSurfer triangle surface as a Model in LPS (see the module docstring)."""
    import nibabel.freesurfer as fs

    p = Path(path)
    with open(p, "rb") as fh:
        head = fh.read(3)
    if not head:
        raise FormatError(p, "file is empty")
    if head not in _MAGIC:
        raise FormatError(p, "not a FreeSurfer surface (bad magic number)")
    try:
        coords, faces, meta = fs.read_geometry(os.fspath(p), read_metadata=True)[:3]
    except Exception as exc:
        raise FormatError(p, f"cannot read FreeSurfer surface: {type(exc).__name__}: {exc}") from None
    coords = np.asarray(coords, dtype=float)
    faces = np.asarray(faces, dtype=np.int64)
    if coords.size == 0 or faces.size == 0:
        raise FormatError(p, "the surface is empty")
    ras = coords.copy()
    metadata: dict = {"freesurfer": {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in (meta or {}).items()}}
    if reference is not None:
        offset = tkr_to_scanner_offset(reference)
        ras = ras + offset
        metadata["freesurfer"]["c_ras_applied"] = offset.tolist()
        metadata["freesurfer"]["reference"] = os.fspath(reference)
    model = Model.from_faces(ras, faces, name=p.name, source=os.fspath(p), metadata=metadata)
    try:
        model.check()
    except ValueError as exc:
        raise FormatError(p, str(exc)) from None
    to_lps(model, "RAS")
    model.coordinate_system = "RAS"
    return [model]


register(FileFormat(
    name="freesurfer-surface",
    description="FreeSurfer surface (lh.pial, rh.white, .orig, .inflated, .sphere, .smoothwm), read only",
    extensions=(".orig", ".inflated", ".sphere", ".white", ".smoothwm", ".pial"),
    read=read_freesurfer_surface,
    sniff=_sniff,
    kinds=(DataKind.MODEL,),
    backend="nibabel",
    read_options={"reference": "FreeSurfer volume (orig.mgz) whose c_ras places the surface in scanner RAS"},
))
