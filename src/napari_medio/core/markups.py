"""Markups (Slicer's point lists, lines, angles, curves, closed curves, planes and ROIs).

A :class:`Markups` holds everything Slicer's markups JSON can hold, in patient
**LPS** millimetres whatever the file said; ``coordinate_system`` records what
the file stored (``"LPS"`` or ``"RAS"``) so that writing it back uses the same
system.  Orientation matrices are kept the way Slicer writes them in an LPS
file (rows 0 and 1 of the RAS matrix negated, i.e. ``F @ O_ras``), 4x4 plane
matrices likewise (first two rows negated).

No napari here: the napari adapter (``plugin/convert_markups.py``) shows a
markup as a Points or Shapes layer and builds one back from a layer.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .geometry import lps_to_ras
from .kinds import DataKind

__all__ = [
    "MARKUP_TYPES",
    "POSITION_STATUSES",
    "ControlPoint",
    "Markups",
    "flip_orientation",
    "flip_matrix_rows",
    "interpolate_curve",
]

#: Slicer's markup type names (class name without ``vtkMRMLMarkups`` / ``Node``).
MARKUP_TYPES = ("Fiducial", "Line", "Angle", "Curve", "ClosedCurve", "Plane", "ROI")

#: Control point position states (``vtkMRMLMarkupsNode::GetPositionStatusAsString``).
POSITION_STATUSES = ("undefined", "preview", "defined", "missing")

_TYPE_ALIASES = {t.lower(): t for t in MARKUP_TYPES}
_TYPE_ALIASES.update({"pointlist": "Fiducial", "fiducials": "Fiducial", "points": "Fiducial",
                      "closed curve": "ClosedCurve", "closed_curve": "ClosedCurve"})


def normalise_type(name: str) -> str:
    """Slicer's spelling of a markup type name (``"closedcurve"`` -> ``"ClosedCurve"``)."""
    try:
        return _TYPE_ALIASES[str(name).strip().lower()]
    except KeyError:
        raise ValueError(f"unknown markup type {name!r}; expected one of {', '.join(MARKUP_TYPES)}") from None


def flip_orientation(values: Any) -> np.ndarray:
    """RAS <-> LPS for a 3x3 orientation as Slicer stores it: negate rows 0 and 1."""
    m = np.array(values, dtype=float).reshape(3, 3)
    m[:2, :] *= -1.0
    return m


def flip_matrix_rows(values: Any) -> np.ndarray:
    """RAS <-> LPS for a 4x4 plane matrix as Slicer stores it: negate rows 0 and 1."""
    m = np.array(values, dtype=float).reshape(4, 4)
    m[:2, :] *= -1.0
    return m


@dataclass
class ControlPoint:
    """One control point with every field Slicer keeps.

    ``position`` is LPS mm, or ``None`` when the point is not placed
    (``position_status`` "undefined"/"missing").  ``orientation`` is 3x3 in
    the LPS convention (see module doc).  ``auto_created`` is the .fcsv column.
    """

    id: str = ""
    label: str = ""
    description: str = ""
    associated_node_id: str = ""
    position: np.ndarray | None = None
    orientation: np.ndarray = field(default_factory=lambda: flip_orientation(np.eye(3)))
    selected: bool = True
    locked: bool = False
    visibility: bool = True
    position_status: str = "defined"
    auto_created: bool = False
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.position is not None:
            p = np.asarray(self.position, dtype=float).reshape(-1)
            if p.size != 3 or not np.all(np.isfinite(p)):
                raise ValueError(f"control point position must be 3 finite numbers, got {self.position!r}")
            self.position = p
        self.orientation = np.asarray(self.orientation, dtype=float).reshape(3, 3)
        if self.position_status not in POSITION_STATUSES:
            raise ValueError(f"unknown position status {self.position_status!r}")

    @property
    def defined(self) -> bool:
        """True when the point has a position (defined or preview)."""
        return self.position is not None and self.position_status in ("defined", "preview")


@dataclass
class Markups:
    """A Slicer markup node in patient LPS (mm).

    Plane fields: ``plane_type``, ``size_mode``, ``auto_scaling_factor``,
    ``center``/``normal`` (LPS), ``object_to_base``/``base_to_node`` (4x4,
    LPS convention), ``orientation`` (3x3, columns = plane/ROI axes in LPS),
    ``size``, ``plane_bounds``.  ROI fields: ``roi_type``, ``center``,
    ``orientation``, ``size``, ``inside_out``.  ``display`` is Slicer's
    display dictionary as read (colours 0-1), ``measurements`` its list of
    measurement dictionaries; ``extra`` keeps unknown markup keys.
    """

    type: str = "Fiducial"
    name: str = ""
    control_points: list[ControlPoint] = field(default_factory=list)
    coordinate_system: str = "LPS"
    coordinate_units: Any = "mm"
    locked: bool = False
    fixed_number_of_control_points: bool = False
    label_format: str = "%N-%d"
    last_used_control_point_number: int | None = None
    measurements: list[dict] = field(default_factory=list)
    display: dict = field(default_factory=dict)
    # plane / ROI
    plane_type: str | None = None
    size_mode: str | None = None
    auto_scaling_factor: float | None = None
    center: np.ndarray | None = None
    normal: np.ndarray | None = None
    object_to_base: np.ndarray | None = None
    base_to_node: np.ndarray | None = None
    orientation: np.ndarray | None = None
    size: np.ndarray | None = None
    plane_bounds: np.ndarray | None = None
    roi_type: str | None = None
    inside_out: bool | None = None
    #: Curve interpolation (scene-only in Slicer; default cardinal spline).
    curve_type: str = "spline"
    extra: dict = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)
    source: str | None = None
    kind: DataKind = DataKind.MARKUPS

    def __post_init__(self) -> None:
        self.type = normalise_type(self.type)
        cs = str(self.coordinate_system).upper()
        if cs not in ("LPS", "RAS"):
            raise ValueError(f"coordinate system must be LPS or RAS, got {self.coordinate_system!r}")
        self.coordinate_system = cs
        for name in ("center", "normal", "size"):
            v = getattr(self, name)
            if v is not None:
                setattr(self, name, np.asarray(v, dtype=float).reshape(3))
        if self.plane_bounds is not None:
            self.plane_bounds = np.asarray(self.plane_bounds, dtype=float).reshape(4)
        if self.orientation is not None:
            self.orientation = np.asarray(self.orientation, dtype=float).reshape(3, 3)
        for name in ("object_to_base", "base_to_node"):
            v = getattr(self, name)
            if v is not None:
                setattr(self, name, np.asarray(v, dtype=float).reshape(4, 4))

    # -- points -------------------------------------------------------------------------
    @property
    def positions(self) -> np.ndarray:
        """(N, 3) LPS positions of the placed control points (N may be 0)."""
        pts = [cp.position for cp in self.control_points if cp.position is not None]
        return np.array(pts, dtype=float).reshape(-1, 3)

    @property
    def positions_ras(self) -> np.ndarray:
        """Placed control points in RAS."""
        return lps_to_ras(self.positions)

    def next_label(self) -> tuple[str, str]:
        """(id, label) for a new control point, as Slicer numbers them (``%N-%d``)."""
        used = [int(cp.id) for cp in self.control_points if str(cp.id).isdigit()]
        last = max([self.last_used_control_point_number or 0] + used)
        number = last + 1
        self.last_used_control_point_number = number
        label = self.label_format.replace("%N", self.name or "P").replace("%d", str(number))
        return str(number), label

    def add_point(self, position_lps: Any, label: str | None = None, **fields: Any) -> ControlPoint:
        """Append a defined control point (LPS), numbered like Slicer when no label is given."""
        pid, auto_label = self.next_label()
        cp = ControlPoint(id=fields.pop("id", pid), label=auto_label if label is None else label,
                          position=np.asarray(position_lps, dtype=float), **fields)
        self.control_points.append(cp)
        return cp

    def copy(self) -> Markups:
        """A deep copy."""
        return copy.deepcopy(self)

    # -- shape of the markup ----------------------------------------------------------
    def curve_points(self, points_per_segment: int = 10) -> np.ndarray:
        """(M, 3) LPS polyline Slicer draws: control points for lines/angles, a spline for curves."""
        pts = self.positions
        if self.type in ("Curve", "ClosedCurve"):
            return interpolate_curve(pts, closed=self.type == "ClosedCurve", curve_type=self.curve_type,
                                     points_per_segment=points_per_segment)
        return pts

    def plane_frame(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(center, 3x3 axes as columns) of a plane in LPS, from its stored fields or its points."""
        if self.center is not None and self.orientation is not None:
            return self.center, self.orientation
        pts = self.positions
        if len(pts) == 0:
            return None
        origin = pts[0]
        if self.normal is not None and len(pts) < 3:
            n = self.normal / (np.linalg.norm(self.normal) or 1.0)
            helper = np.array([1.0, 0, 0]) if abs(n[0]) < 0.9 else np.array([0, 1.0, 0])
            x = np.cross(helper, n)
        elif len(pts) >= 3:
            x = pts[1] - pts[0]
            n = np.cross(pts[1] - pts[0], pts[2] - pts[0])
        else:
            return None
        if np.linalg.norm(n) < 1e-12 or np.linalg.norm(x) < 1e-12:
            return None
        n = n / np.linalg.norm(n)
        x = x / np.linalg.norm(x)
        y = np.cross(n, x)
        return origin, np.column_stack([x, y, n])

    def outline(self) -> list[np.ndarray]:
        """LPS polylines outlining a plane (one closed rectangle) or an ROI (12 box edges)."""
        if self.type == "Plane":
            frame = self.plane_frame()
            if frame is None:
                return []
            c, axes = frame
            if self.plane_bounds is not None and (self.plane_bounds[1] > self.plane_bounds[0]):
                x0, x1, y0, y1 = self.plane_bounds
            else:
                if self.size is not None and self.size[0] > 0:
                    sx, sy = self.size[0], self.size[1]
                else:
                    pts = self.positions
                    ext = np.ptp(pts, axis=0).max() if len(pts) > 1 else 0.0
                    sx = sy = max(ext * 2.0 * (self.auto_scaling_factor or 1.0), 10.0)
                x0, x1, y0, y1 = -sx / 2, sx / 2, -sy / 2, sy / 2
            corners = [c + axes[:, 0] * u + axes[:, 1] * v for u, v in ((x0, y0), (x1, y0), (x1, y1), (x0, y1))]
            return [np.array(corners)]
        if self.type == "ROI":
            if self.center is None or self.size is None:
                pts = self.positions
                if len(pts) == 0:
                    return []
                lo, hi = pts.min(axis=0), pts.max(axis=0)
                c, size, axes = (lo + hi) / 2, hi - lo, np.eye(3)
            else:
                c, size = self.center, self.size
                axes = self.orientation if self.orientation is not None else np.eye(3)
            h = np.asarray(size) / 2.0

            def corner(sx: int, sy: int, sz: int) -> np.ndarray:
                return c + axes @ (np.array([sx, sy, sz]) * h)

            lines = []
            for sz in (-1, 1):  # bottom and top faces as closed loops, then the 4 vertical edges
                lines.append(np.array([corner(-1, -1, sz), corner(1, -1, sz), corner(1, 1, sz),
                                       corner(-1, 1, sz), corner(-1, -1, sz)]))
            for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
                lines.append(np.array([corner(sx, sy, -1), corner(sx, sy, 1)]))
            return lines
        return []

    def translated(self, offset_lps: Any) -> Markups:
        """A copy moved by ``offset_lps`` (control points, plane/ROI centre)."""
        out = self.copy()
        d = np.asarray(offset_lps, dtype=float).reshape(3)
        for cp in out.control_points:
            if cp.position is not None:
                cp.position = cp.position + d
        if out.center is not None:
            out.center = out.center + d
        return out

    # -- measurements ----------------------------------------------------------------
    def measure(self) -> dict:
        """Computed measurements: line length, angle (degrees), curve length (mm)."""
        pts = self.positions
        out: dict = {}
        if self.type == "Line" and len(pts) >= 2:
            out["length"] = float(np.linalg.norm(pts[1] - pts[0]))
        elif self.type == "Angle" and len(pts) >= 3:
            a, b = pts[0] - pts[1], pts[2] - pts[1]
            na, nb = np.linalg.norm(a), np.linalg.norm(b)
            if na > 0 and nb > 0:
                out["angle"] = float(np.degrees(np.arccos(np.clip(a @ b / (na * nb), -1, 1))))
        elif self.type in ("Curve", "ClosedCurve") and len(pts) >= 2:
            c = self.curve_points()
            if self.type == "ClosedCurve":
                c = np.vstack([c, c[:1]])
            out["length"] = float(np.linalg.norm(np.diff(c, axis=0), axis=1).sum())
        return out

    # -- summary ---------------------------------------------------------------------------
    def info(self) -> dict:
        """Summary for ``medio info --json`` (positions LPS mm, coordinate system as stored)."""
        out: dict = {
            "kind": DataKind.MARKUPS,
            "type": self.type,
            "name": self.name,
            "coordinate_system": self.coordinate_system,
            "points": [
                {"label": cp.label,
                 "position": None if cp.position is None else [float(x) + 0.0 for x in cp.position],
                 "id": cp.id, "position_status": cp.position_status}
                for cp in self.control_points
            ],
            "n_points": len(self.control_points),
        }
        if self.measurements:
            out["measurements"] = self.measurements
        for key in ("center", "normal", "size"):
            v = getattr(self, key)
            if v is not None:
                out[key] = [float(x) for x in v]
        if self.orientation is not None:
            out["orientation"] = self.orientation.tolist()
        for key in ("plane_type", "size_mode", "roi_type"):
            v = getattr(self, key)
            if v is not None:
                out[key] = v
        if self.source:
            out["source"] = self.source
        return out


def interpolate_curve(points: np.ndarray, closed: bool = False, curve_type: str = "spline",
                      points_per_segment: int = 10) -> np.ndarray:
    """A smooth polyline through ``points`` (M, 3) the way Slicer draws curves.

    ``spline`` / ``kochanekSpline``: a cubic spline parameterised by chord
    length (periodic when closed), ``points_per_segment`` samples per
    control-point interval (Slicer's default 10); ``linear``: the points
    themselves.  The control points lie on the result.
    """
    pts = np.asarray(points, dtype=float).reshape(-1, 3)
    n = len(pts)
    if n < 3 and not (closed and n >= 3):
        return pts.copy()
    if curve_type in ("linear", "shortestSurfaceDistance"):
        return pts.copy()
    from scipy.interpolate import CubicSpline

    work = np.vstack([pts, pts[:1]]) if closed else pts
    seg = np.linalg.norm(np.diff(work, axis=0), axis=1)
    keep = np.r_[True, seg > 1e-12]
    work = work[keep]
    seg = seg[seg > 1e-12]
    if len(work) < (4 if closed else 3):
        return pts.copy()
    t = np.r_[0.0, np.cumsum(seg)]
    spline = CubicSpline(t, work, bc_type="periodic" if closed else "natural", axis=0)
    samples = [np.linspace(t[i], t[i + 1], points_per_segment, endpoint=False) for i in range(len(t) - 1)]
    tt = np.concatenate(samples)
    if not closed:
        tt = np.r_[tt, t[-1]]
    return spline(tt)
