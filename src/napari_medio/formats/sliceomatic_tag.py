"""sliceOmatic tag files (``.tag``, read only) -> a label-map segmentation.

Structure (as Slicer's Sandbox ``ImportSliceOmatic`` module reads it, after
TomoVision's sliceOmatic help, topic 700): a text header of whitespace-separated
``name:value`` fields ended by a form feed (``\\x0c``), then ``x * y * z`` bytes of
tag values, x fastest, first row first (no vertical flip).  Header fields:

* ``x``, ``y``, ``z`` -- dimensions; ``type`` -- ``BYTE``;
* ``org_x``, ``org_y``, ``org_z`` -- position of the first voxel (LPS mm);
* ``inc_x``, ``inc_y`` -- pixel spacing; ``epais`` -- slice thickness (slice spacing);
* ``dir_h_x/y/z``, ``dir_v_x/y/z`` -- row and column direction (LPS); the slice
  direction is their cross product;
* ``uid``, ``chksum`` -- kept in metadata, not checked; ``*...`` -- comments.

Reading gives a :class:`~napari_medio.core.segmentation.Segmentation` on that grid
(voxels as unsigned bytes), one segment per tag value present, ``Tag_<value>``.
"""
from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import FormatError
from ..core.kinds import DataKind
from ..core.registry import FileFormat, read_head, register

__all__ = ["read_sliceomatic_tag", "read_tag_header"]

_KNOWN = {"x", "y", "z", "type", "org_x", "org_y", "org_z", "inc_x", "inc_y", "epais",
          "dir_h_x", "dir_h_y", "dir_h_z", "dir_v_x", "dir_v_y", "dir_v_z", "uid", "chksum"}
_FIELD = re.compile(rb"^[A-Za-z_*][A-Za-z0-9_*]*:")
_MAX_HEADER = 65536


def _sniff(head: bytes, path: Path) -> bool:
    end = head.find(b"\x0c")
    if end <= 0:
        return False
    fields = head[:end].split()
    if not fields or not all(_FIELD.match(f) for f in fields):
        return False
    names = {f.split(b":", 1)[0] for f in fields}
    return {b"x", b"y", b"z"} <= names


def read_tag_header(path: str | os.PathLike[str]) -> dict:
    """The header fields (``dims``, ``origin``, ``spacing``, ``axis_x``, ``axis_y``,
    ``header_size``, ``fields``); raises :class:`FormatError` naming the file."""
    p = Path(path)
    head = read_head(p, _MAX_HEADER)
    end = head.find(b"\x0c")
    if end < 0:
        raise FormatError(p, "not a sliceOmatic tag file: no end-of-header form feed")
    try:
        text = head[:end].decode("latin-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes every byte
        raise FormatError(p, "header is not text") from None
    fields: dict[str, str] = {}
    for tok in text.split():
        if ":" not in tok:
            raise FormatError(p, f"header field {tok!r} is not name:value")
        name, value = tok.split(":", 1)
        if name.startswith("*"):
            continue  # comment
        if name not in _KNOWN:
            warnings.warn(f"{p}: unknown tag header field {name!r} kept in metadata", stacklevel=3)
        fields[name] = value

    def number(name: str, default: float, kind: type = float) -> Any:
        if name not in fields:
            return default
        try:
            v = kind(fields[name])
        except ValueError:
            raise FormatError(p, f"header field {name}: {fields[name]!r} is not a number") from None
        if kind is float and not np.isfinite(v):
            raise FormatError(p, f"header field {name}: {fields[name]!r} is not finite")
        return v

    missing = [d for d in ("x", "y", "z") if d not in fields]
    if missing:
        raise FormatError(p, f"header lacks the dimension field(s) {', '.join(missing)}")
    dims = [number(d, 0, int) for d in ("x", "y", "z")]
    if min(dims) <= 0:
        raise FormatError(p, f"dimensions must be positive, got {dims}")
    if fields.get("type", "BYTE") != "BYTE":
        warnings.warn(f"{p}: voxel type {fields['type']!r} (expected BYTE); read as bytes", stacklevel=3)
    return {
        "dims": dims,
        "origin": [number(f"org_{a}", 0.0) for a in "xyz"],
        "spacing": [number("inc_x", 1.0), number("inc_y", 1.0), number("epais", 1.0)],
        "axis_x": [number(f"dir_h_{a}", d) for a, d in zip("xyz", (1.0, 0.0, 0.0))],
        "axis_y": [number(f"dir_v_{a}", d) for a, d in zip("xyz", (0.0, 1.0, 0.0))],
        "header_size": end + 1,
        "fields": fields,
    }


def read_sliceomatic_tag(path: str | os.PathLike[str]) -> list:
    """Read a sliceOmatic ``.tag`` file as a Segmentation (see the module doc)."""
    from ..core.geometry import Geometry
    from ..core.segmentation import Segment, Segmentation, default_color

    p = Path(path)
    h = read_tag_header(p)
    nx, ny, nz = h["dims"]
    n = nx * ny * nz
    size = p.stat().st_size - h["header_size"]
    if size < n:
        raise FormatError(p, f"truncated: the header says {nx}x{ny}x{nz} = {n} voxels, "
                             f"the file holds {max(size, 0)} bytes after the header")
    if size > n:
        warnings.warn(f"{p}: {size - n} bytes after the {nx}x{ny}x{nz} voxels ignored", stacklevel=2)
    ax, ay = np.asarray(h["axis_x"], float), np.asarray(h["axis_y"], float)
    if np.linalg.norm(ax) == 0 or np.linalg.norm(ay) == 0:
        raise FormatError(p, "row or column direction is zero")
    az = np.cross(ax, ay)
    try:
        geometry = Geometry(h["spacing"], h["origin"], np.column_stack([ax, ay, az]))
    except ValueError as exc:
        raise FormatError(p, f"bad grid: {exc}") from None
    with open(p, "rb") as fh:
        fh.seek(h["header_size"])
        data = np.frombuffer(fh.read(n), np.uint8)
    array = data.reshape(nz, ny, nx).copy()  # writable for painting in napari
    present = np.flatnonzero(np.bincount(array.reshape(-1), minlength=256))
    segments = [Segment(id=f"Segment_{v}", name=f"Tag_{v}", label_value=int(v), color=default_color(int(v) - 1),
                        name_auto_generated=True, color_auto_generated=True)
                for v in present if v != 0]
    name = p.name[:-4] if p.name.lower().endswith(".tag") else p.stem
    return [Segmentation(array, geometry, segments, name=name,
                         metadata={"master_representation": "Binary labelmap",
                                   "contained_representations": ["Binary labelmap"],
                                   "sliceomatic": dict(h["fields"])},
                         source=os.fspath(p))]


register(FileFormat(
    name="sliceomatic-tag",
    description="sliceOmatic tag file (read): label map segmentation on the header's grid",
    extensions=(".tag",),
    read=read_sliceomatic_tag,
    sniff=_sniff,
    kinds=(DataKind.SEGMENTATION,),
    backend="napari-medio",
))
