"""Legacy Slicer markups CSV: ``.fcsv`` (every version) and Annotation ``.acsv`` (read only).

Follows ``vtkMRMLMarkupsFiducialStorageNode``:

* versioned ``.fcsv`` (``# Markups fiducial file version = X``): fixed columns
  ``id,x,y,z,ow,ox,oy,oz,vis,sel,lock,label,desc,associatedNodeID[,positionStatus,autoCreated]``,
  coordinate system from ``# CoordinateSystem = RAS|LPS|0|1`` (0 = RAS,
  1 = LPS; LPS when the line is absent); orientation is angle(deg)+axis.
* Slicer 3 ``.fcsv`` (no version line): ``label,x,y,z,sel,vis`` in RAS, with
  name, colours and symbol size in its header.
* ``.acsv``: ``point|x|y|z|sel|vis`` rows in RAS (ruler and ROI files have
  two points; their ``line|`` rows are not points), name from ``# Name =``.

Writing produces the current Slicer layout (version 5.8 header, LPS by default).
"""
from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import FormatError, WriteError
from ..core.fileio import write_text
from ..core.geometry import lps_to_ras
from ..core.kinds import DataKind
from ..core.markups import ControlPoint, Markups, flip_orientation
from ..core.registry import FileFormat, register
from ._text import read_text
from .naming import base_name

__all__ = ["read_fcsv", "read_acsv", "write_fcsv"]

#: Version written in the header (what current Slicer writes).
FCSV_VERSION = "5.8"
_STATUS_CODES = {0: "undefined", 1: "preview", 2: "defined", 3: "missing"}
_STATUS_NUMBERS = {v: k for k, v in _STATUS_CODES.items()}


def _text(path: Path) -> str:
    return read_text(path, "text markups file")


def _float(value: str, path: Path, lineno: int, what: str) -> float:
    try:
        f = float(value)
    except ValueError:
        raise FormatError(path, f"line {lineno}: {what} is not a number: {value!r}") from None
    if not math.isfinite(f):
        raise FormatError(path, f"line {lineno}: {what} is not finite: {value!r}")
    return f


def _int(value: str, default: int = 0) -> int:
    try:
        return int(float(value))
    except ValueError:
        return default


def _rgb(text: str) -> list[float] | None:
    try:
        vals = [float(x) for x in text.replace(" ", ",").split(",") if x]
    except ValueError:
        return None
    return vals[:3] if len(vals) >= 3 else None


def _orientation_from_wxyz(angle_deg: float, axis: np.ndarray) -> np.ndarray:
    """3x3 rotation matrix (RAS) for a rotation of ``angle_deg`` about ``axis``."""
    n = np.linalg.norm(axis)
    if n == 0 or angle_deg == 0:
        return np.eye(3)
    x, y, z = axis / n
    a = math.radians(angle_deg)
    c, s, t = math.cos(a), math.sin(a), 1 - math.cos(a)
    return np.array([[t * x * x + c, t * x * y - s * z, t * x * z + s * y],
                     [t * x * y + s * z, t * y * y + c, t * y * z - s * x],
                     [t * x * z - s * y, t * y * z + s * x, t * z * z + c]])


def _wxyz_from_orientation(m: np.ndarray) -> tuple[float, float, float, float]:
    """Angle (degrees) and axis of a rotation matrix (RAS); identity -> 0,0,0,1 as Slicer writes."""
    r = np.asarray(m, dtype=float)
    cos = (np.trace(r) - 1.0) / 2.0
    angle = math.acos(max(-1.0, min(1.0, cos)))
    if angle < 1e-12:
        return 0.0, 0.0, 0.0, 1.0
    axis = np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]])
    if np.linalg.norm(axis) < 1e-9:  # 180 degrees
        w, v = np.linalg.eigh((r + np.eye(3)) / 2.0)
        axis = v[:, int(np.argmax(w))]
    axis = axis / np.linalg.norm(axis)
    return math.degrees(angle), float(axis[0]), float(axis[1]), float(axis[2])


def _split_csv(line: str) -> list[str]:
    return next(csv.reader([line], skipinitialspace=False))


def read_fcsv(path: str | os.PathLike[str]) -> list[Markups]:
    """A point list from any Slicer ``.fcsv`` (positions converted to LPS)."""
    p = Path(path)
    text = _text(p)
    lines = text.splitlines()
    header: dict[str, str] = {}
    versioned = False
    for line in lines:
        s = line.strip()
        if s.startswith("#"):
            key, sep, value = s[1:].partition("=")
            if sep:
                header[key.strip()] = value.strip()
            if key.strip() == "Markups fiducial file version":
                versioned = True
    m = Markups(type="Fiducial", name=base_name(p))
    if versioned:
        cs_text = header.get("CoordinateSystem", "LPS").upper()
        cs = {"0": "RAS", "1": "LPS", "RAS": "RAS", "LPS": "LPS"}.get(cs_text)
        if cs is None:
            raise FormatError(p, f"unknown CoordinateSystem {header.get('CoordinateSystem')!r} (expected RAS or LPS)")
        m.coordinate_system = cs
        m.metadata["fcsv_version"] = header.get("Markups fiducial file version")
    else:
        m.coordinate_system = "RAS"
        m.metadata["fcsv_version"] = "slicer3"
        if header.get("name"):
            m.name = header["name"]
        display: dict[str, Any] = {}
        for key, dkey in (("color", "color"), ("selectedColor", "selectedColor")):
            if key in header and _rgb(header[key]):
                display[dkey] = _rgb(header[key])
        for key, dkey in (("opacity", "opacity"), ("textScale", "textScale"), ("symbolScale", "glyphScale")):
            try:
                display[dkey] = float(header[key])
            except (KeyError, ValueError):
                pass
        if "visibility" in header:
            display["visibility"] = header["visibility"] == "1"
        if "locked" in header:
            m.locked = header["locked"] == "1"
        m.display = display
    for lineno, line in enumerate(lines, start=1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        fields = _split_csv(line)
        if versioned:
            if len(fields) < 4:
                raise FormatError(p, f"line {lineno}: expected at least id,x,y,z (got {len(fields)} columns)")
            if len(fields) > 16:
                raise FormatError(p, f"line {lineno}: too many columns ({len(fields)}; at most 16)")
            xyz = np.array([_float(fields[i], p, lineno, "xyz"[i - 1]) for i in (1, 2, 3)])
            pos_lps = lps_to_ras(xyz) if m.coordinate_system == "RAS" else xyz
            get = lambda i, d="", fields=fields: fields[i] if len(fields) > i else d  # noqa: E731
            ow, ox, oy, oz = (_float(get(i, dv), p, lineno, "orientation") for i, dv in
                              ((4, "0"), (5, "0"), (6, "0"), (7, "1")))
            orient_ras = _orientation_from_wxyz(ow, np.array([ox, oy, oz]))
            status = _STATUS_CODES.get(_int(get(14, "2"), 2), "defined")
            cp = ControlPoint(
                id=get(0), position=pos_lps, orientation=flip_orientation(orient_ras),
                visibility=_int(get(8, "1"), 1) != 0, selected=_int(get(9, "1"), 1) != 0,
                locked=_int(get(10, "0")) != 0, label=get(11), description=get(12),
                associated_node_id=get(13), position_status=status, auto_created=_int(get(15, "0")) != 0,
            )
            if not cp.id:
                cp.id = str(len(m.control_points) + 1)
        else:
            if len(fields) < 4:
                raise FormatError(p, f"line {lineno}: expected label,x,y,z,sel,vis (got {len(fields)} columns)")
            xyz = np.array([_float(fields[i], p, lineno, "xyz"[i - 1]) for i in (1, 2, 3)])
            cp = ControlPoint(id=str(len(m.control_points) + 1), label=fields[0], position=lps_to_ras(xyz),
                              selected=_int(fields[4], 1) != 0 if len(fields) > 4 else True,
                              visibility=_int(fields[5], 1) != 0 if len(fields) > 5 else True)
        m.control_points.append(cp)
    m.source = os.fspath(p)
    return [m]


def read_acsv(path: str | os.PathLike[str]) -> list[Markups]:
    """Slicer 4 Annotation CSV: a fiducial (1 point), ruler (2 points, as a Line) or ROI (2 points, as an ROI)."""
    p = Path(path)
    text = _text(p)
    header: dict[str, str] = {}
    rows: list[tuple[int, list[str]]] = []
    other_types: list[str] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        s = line.strip()
        if not s:
            continue
        if s.startswith("#"):
            key, sep, value = s[1:].partition("=")
            if sep:
                header[key.strip()] = value.strip()
            continue
        fields = s.split("|")
        if fields[0] == "point":
            if len(fields) < 4:
                raise FormatError(p, f"line {lineno}: expected point|x|y|z|sel|vis (got {len(fields)} fields)")
            rows.append((lineno, fields))
        elif fields[0]:
            other_types.append(fields[0])
        else:
            raise FormatError(p, f"line {lineno}: row without a type")
    if "Annotation file" not in " ".join(header) and not rows:
        raise FormatError(p, "not a Slicer annotation file (no '# Annotation file' header and no point rows)")
    if not rows:
        raise FormatError(p, "the annotation holds no points")
    name = header.get("Name") or base_name(p)
    if "ruler" in other_types or any(k.startswith("ruler") for k in header):
        mtype = "Line"
    elif any(k.startswith("roi") for k in header) or "roi" in other_types:
        mtype = "ROI"
    elif len(rows) == 2 and any(k.startswith("line") for k in header):
        mtype = "ROI"  # ROI annotations carry line properties but no ruler rows
    else:
        mtype = "Fiducial"
    m = Markups(type=mtype, name=name, coordinate_system="RAS")
    for lineno, fields in rows:
        xyz = np.array([_float(fields[i], p, lineno, "xyz"[i - 1]) for i in (1, 2, 3)])
        m.control_points.append(ControlPoint(
            id=str(len(m.control_points) + 1),
            label=name if mtype == "Fiducial" else f"{name}-{len(m.control_points) + 1}",
            position=lps_to_ras(xyz),
            selected=_int(fields[4], 1) != 0 if len(fields) > 4 else True,
            visibility=_int(fields[5], 1) != 0 if len(fields) > 5 else True))
    if mtype == "ROI":
        # Annotation ROI: point 0 = centre, point 1 = radius (half size) along each axis (RAS).
        c = m.control_points[0].position
        r_ras = lps_to_ras(m.control_points[1].position)
        m.center = c.copy()
        m.size = 2.0 * np.abs(r_ras)
        m.orientation = flip_orientation(np.eye(3))
        m.roi_type = "Box"
        m.control_points = m.control_points[:1]
    display: dict[str, Any] = {}
    if "pointColor" in header and _rgb(header["pointColor"]):
        display["color"] = _rgb(header["pointColor"])
    if "pointSelectedColor" in header and _rgb(header["pointSelectedColor"]):
        display["selectedColor"] = _rgb(header["pointSelectedColor"])
    for key, dkey in (("pointOpacity", "opacity"), ("textScale", "textScale"), ("pointGlyphScale", "glyphScale")):
        try:
            display[dkey] = float(header[key])
        except (KeyError, ValueError):
            pass
    m.display = display
    m.metadata["acsv_header"] = header
    m.source = os.fspath(p)
    return [m]


def _fmt(x: float) -> str:
    r = repr(float(x))
    return r[:-2] if r.endswith(".0") else r


def _quote(text: str) -> str:
    if any(ch in text for ch in ',"\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def write_fcsv(m: Markups, path: str | os.PathLike[str], *, coordinate_system: str | None = None) -> list[str]:
    """Write control points as a versioned ``.fcsv`` (any markup type: its control points)."""
    p = Path(path)
    if not isinstance(m, Markups):
        raise WriteError(p, f"an .fcsv file holds markups, not {type(m).__name__}")
    cs = (coordinate_system or m.coordinate_system or "LPS").upper()
    out = io.StringIO()
    out.write(f"# Markups fiducial file version = {FCSV_VERSION}\n")
    out.write(f"# CoordinateSystem = {cs}\n")
    out.write("# columns = id,x,y,z,ow,ox,oy,oz,vis,sel,lock,label,desc,associatedNodeID\n")
    for i, cp in enumerate(m.control_points):
        if cp.position is None:
            xyz = [0.0, 0.0, 0.0]
        else:
            xyz = lps_to_ras(cp.position) if cs == "RAS" else cp.position
        w, ox, oy, oz = _wxyz_from_orientation(flip_orientation(cp.orientation))
        status = _STATUS_NUMBERS.get(cp.position_status, 2)
        if cp.position is None and status == 2:
            status = 0
        fields = [cp.id or str(i + 1), *(_fmt(v) for v in xyz), _fmt(w), _fmt(ox), _fmt(oy), _fmt(oz),
                  str(int(cp.visibility)), str(int(cp.selected)), str(int(cp.locked)),
                  _quote(cp.label), _quote(cp.description), _quote(cp.associated_node_id), str(status),
                  str(int(cp.auto_created))]
        out.write(",".join(fields) + "\n")
    return write_text(p, out.getvalue())


def _sniff_fcsv(head: bytes, path: Path) -> bool:
    s = head.lstrip(b"\xef\xbb\xbf")
    if s.startswith(b"# Markups fiducial file version") or s.startswith(b"# Fiducial List file"):
        return True
    if b"\x00" in head or path.suffix.lower() != ".fcsv":
        return False
    # Headerless files: the first data row must be label/id,x,y,z,...
    for line in s.decode("latin-1").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split(",")
        try:
            [float(f) for f in fields[1:4]]
        except ValueError:
            return False
        return len(fields) >= 4
    return False


def _sniff_acsv(head: bytes, path: Path) -> bool:
    return head.lstrip(b"\xef\xbb\xbf").startswith(b"# Annotation file")


register(FileFormat(
    name="markups-fcsv",
    description="3D Slicer markups fiducial CSV (.fcsv, Slicer 3 to 5)",
    extensions=(".fcsv",),
    read=read_fcsv,
    write=write_fcsv,
    sniff=_sniff_fcsv,
    kinds=(DataKind.MARKUPS,),
    backend="python",
))

register(FileFormat(
    name="annotation-acsv",
    description="3D Slicer 4 annotation CSV (.acsv: fiducial, ruler, ROI; read only)",
    extensions=(".acsv",),
    read=read_acsv,
    sniff=_sniff_acsv,
    kinds=(DataKind.MARKUPS,),
    backend="python",
))
