"""FreeSurfer MGH/MGZ volumes (.mgh, .mgz): read and write through nibabel.

The MGH vox2ras matrix is RAS; it becomes the LPS geometry.  Frames (the 4th
dimension) become a leading "frame" axis.  The scan parameters (TR, flip angle,
TE, TI, FoV) are kept in metadata and written back.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..core import registry
from ..core.errors import FormatError, WriteError
from ..core.fileio import atomic_output
from ..core.geometry import Geometry
from ..core.kinds import DataKind
from ..core.volume import AxisInfo, Volume
from ._imageio import inflate_head
from .naming import base_name, looks_like_labelmap

__all__ = ["read_mgh", "write_mgh"]

_MGH_TYPES = {np.dtype("uint8"), np.dtype("int16"), np.dtype("int32"), np.dtype("float32")}


def _sniff(head: bytes, path: Path) -> bool:
    data = inflate_head(head, 64)
    if len(data) < 28:
        return False
    version, w, h, d, frames, typ = np.frombuffer(data[:24], dtype=">i4")
    return version == 1 and min(w, h, d, frames) > 0 and typ in (0, 1, 3, 4)


def read_mgh(path: str | os.PathLike[str], *, labelmap: bool | None = None,
             name: str | None = None) -> list[Volume]:
    """Read an MGH/MGZ volume into one Volume in LPS (frames as a leading axis)."""
    import nibabel as nib

    p = Path(path)
    try:
        img = nib.freesurfer.mghformat.MGHImage.from_filename(os.fspath(p))
        data = np.asanyarray(img.dataobj)
    except Exception as exc:
        raise FormatError(p, f"not a readable MGH/MGZ file: {exc}") from None
    if data.dtype.byteorder == ">" or (data.dtype.byteorder == "<" and not np.little_endian):
        data = data.astype(data.dtype.newbyteorder("="))
    geometry = Geometry.from_index_to_ras(np.asarray(img.affine, dtype=float))
    core = np.transpose(data, (2, 1, 0) + tuple(range(3, data.ndim)))
    extra: list[AxisInfo] = []
    if core.ndim == 4:
        if core.shape[3] == 1:
            core = core[..., 0]
        else:
            core = np.moveaxis(core, 3, 0)
            tr = float(img.header["tr"]) if "tr" in img.header else 0.0
            extra.append(AxisInfo(name="frame", unit="ms" if tr else "",
                                  values=(np.arange(core.shape[0]) * (tr or 1.0)).tolist(), kind="time"))
    hdr = img.header
    params = {}
    for key in ("tr", "flip_angle", "te", "ti", "fov"):
        try:
            params[key] = float(hdr[key])
        except Exception:
            pass
    if labelmap is None:
        labelmap = looks_like_labelmap(p) or p.name.lower().startswith(("aseg", "aparc", "wmparc"))
        labelmap = labelmap and np.issubdtype(core.dtype, np.integer)
    return [Volume(array=core, geometry=geometry, kind=DataKind.LABELMAP if labelmap else DataKind.VOLUME,
                   name=name or base_name(p), extra_axes=extra, metadata={"mgh": params},
                   source=os.fspath(p))]


def write_mgh(volume: Volume, path: str | os.PathLike[str]) -> list[str]:
    """Write a Volume as MGH (.mgh) or gzip-compressed MGZ (.mgz); RAS vox2ras from the LPS geometry."""
    import nibabel as nib

    p = Path(path)
    if not isinstance(volume, Volume):
        raise WriteError(p, f"MGH holds volumes, not {type(volume).__name__}")
    if volume.components is not None or len(volume.extra_axes) > 1:
        raise WriteError(p, "MGH holds scalar volumes with at most one frame axis")
    data = np.asarray(volume.array)
    if data.dtype not in _MGH_TYPES:
        raise WriteError(p, f"MGH cannot store voxel type {data.dtype} (uint8, int16, int32, float32 only)")
    if volume.extra_axes:
        data = np.moveaxis(data, 0, -1)
        data = np.transpose(data, (2, 1, 0, 3))
    else:
        data = np.transpose(data, (2, 1, 0)) if data.ndim == 3 else data.T[:, :, None]
    g = volume.geometry.as_3d()
    img = nib.freesurfer.mghformat.MGHImage(data, g.index_to_ras_matrix())
    for key, value in volume.metadata.get("mgh", {}).items():
        try:
            img.header[key] = value
        except Exception:
            pass
    with atomic_output(p) as tmp:
        nib.save(img, os.fspath(tmp))
    return [os.fspath(p)]


registry.register(registry.FileFormat(
    name="mgh",
    description="FreeSurfer MGH-NMR volume (.mgh, .mgz)",
    extensions=(".mgh", ".mgz"),
    read=read_mgh,
    write=write_mgh,
    sniff=_sniff,
    kinds=(DataKind.VOLUME, DataKind.LABELMAP),
    backend="nibabel",
))
