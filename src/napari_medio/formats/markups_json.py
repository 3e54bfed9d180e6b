"""Slicer markups JSON (``.mrk.json``, ``.mkp.json``, ``.json`` with a markups ``@schema``).

Reading follows ``vtkMRMLMarkupsJsonStorageNode`` (and its Plane/ROI
subclasses): ``@schema`` is required and must name a markups schema 1.x.y;
``coordinateSystem`` absent means LPS; LPS files have x, y of positions,
centres and normals and rows 0-1 of orientations negated relative to Slicer's
RAS memory.  Files are also checked against Slicer's JSON schema (v1.0.3, with
the two things Slicer itself writes that the schema forgets: position status
``missing`` and an empty-string position for unplaced points), so a broken
file fails with the JSON path of the problem.

Writing produces exactly Slicer's layout (``@schema`` first, keys in Slicer's
order, 4-space indent), one markup per file, in the markup's own coordinate
system (LPS unless the file it came from was RAS).
"""
from __future__ import annotations

import functools
import json
import os
import re
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import FormatError, WriteError
from ..core.fileio import write_text
from ..core.geometry import lps_to_ras
from ..core.kinds import DataKind
from ..core.markups import (
    MARKUP_TYPES,
    POSITION_STATUSES,
    ControlPoint,
    Markups,
    flip_matrix_rows,
    flip_orientation,
)
from ..core.registry import FileFormat, register
from ._text import load_json
from .naming import base_name

__all__ = ["SCHEMA_URL", "read_markups_json", "write_markups_json", "markup_from_json", "markups_to_json", "schema",
           "validate"]

#: The ``@schema`` value Slicer writes (exactly; ``master`` and lower case are intended).
SCHEMA_URL = ("https://raw.githubusercontent.com/slicer/slicer/master/Modules/Loadable/Markups/"
              "Resources/Schema/markups-schema-v1.0.3.json#")
_ACCEPTED_SCHEMA = re.compile(r".*markups-schema-v1\.[0-9]+\.[0-9]+\.json#*$")

_COMMON_KEYS = ("type", "coordinateSystem", "coordinateUnits", "locked", "fixedNumberOfControlPoints",
                "labelFormat", "lastUsedControlPointNumber", "name")
_PLANE_KEYS = ("planeType", "sizeMode", "autoScalingFactor", "autoScalingSizeFactor", "center", "normal",
               "objectToBase", "baseToNode", "orientation", "size", "planeBounds")
_ROI_KEYS = ("roiType", "center", "orientation", "size", "insideOut")
_CP_KEYS = ("id", "label", "description", "associatedNodeID", "position", "orientation", "selected", "locked",
            "visibility", "positionStatus")
_KNOWN = set(_COMMON_KEYS) | set(_PLANE_KEYS) | set(_ROI_KEYS) | {"controlPoints", "measurements", "display"}


@functools.lru_cache(maxsize=1)
def schema() -> dict:
    """Slicer's markups schema v1.0.3 (verbatim copy shipped with the package)."""
    text = resources.files("napari_medio.formats").joinpath("schemas/markups-schema-v1.0.3.json").read_text("utf-8")
    return json.loads(text)


@functools.lru_cache(maxsize=1)
def _reading_schema() -> dict:
    """The schema relaxed for what Slicer writes itself ("missing" status, "" position)."""
    s = json.loads(json.dumps(schema()))
    cp = s["properties"]["markups"]["items"]["anyOf"][0]["properties"]["controlPoints"]["items"]["anyOf"][0]
    cp["properties"]["positionStatus"]["enum"] = list(POSITION_STATUSES)
    pos = cp["properties"]["position"]
    cp["properties"]["position"] = {"anyOf": [pos, {"type": "string", "maxLength": 0}]}
    return s


def validate(document: dict, strict: bool = True) -> None:
    """Validate a markups JSON document against Slicer's schema; raises ``jsonschema.ValidationError``."""
    import jsonschema

    jsonschema.Draft7Validator(schema() if strict else _reading_schema()).validate(document)


def _json_path(path: Any) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (("." if out else "") + str(p))
    return out or "(top level)"


# -- reading -----------------------------------------------------------------------------------
def _sniff(head: bytes, path: Path) -> bool:
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not text.startswith(b"{"):
        return False
    return b"@schema" in head and b"markups-schema-v1" in head.lower()


def _floats(value: Any, n: int, what: str, path: Path) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        raise FormatError(path, f"{what}: expected {n} numbers, got {value!r}") from None
    if arr.size != n or not np.all(np.isfinite(arr)):
        raise FormatError(path, f"{what}: expected {n} finite numbers, got {value!r}")
    return arr


def _load_document(path: Path) -> dict:
    return load_json(path, "markups JSON file")


def read_markups_json(path: str | os.PathLike[str]) -> list[Markups]:
    """Every markup in a Slicer markups JSON file (positions converted to LPS)."""
    p = Path(path)
    doc = _load_document(p)
    schema_value = doc.get("@schema")
    if not isinstance(schema_value, str):
        raise FormatError(p, "not a Slicer markups file: the required \"@schema\" key is missing")
    if not _ACCEPTED_SCHEMA.match(schema_value.lower()):
        raise FormatError(p, f"unsupported @schema {schema_value!r} (expected a markups-schema-v1.x.y.json URL)")
    import jsonschema

    errors = sorted(jsonschema.Draft7Validator(_reading_schema()).iter_errors(doc), key=lambda e: list(e.path))
    if errors:
        e = errors[0]
        while e.context:  # anyOf: descend to the most specific reason
            e = max(e.context, key=lambda c: len(c.absolute_path))
        raise FormatError(p, f"schema violation at {_json_path(e.absolute_path)}: {e.message}")
    items = doc.get("markups")
    if not items:
        raise FormatError(p, "the file holds no markups (empty \"markups\" array)")
    out = []
    for i, item in enumerate(items):
        m = markup_from_json(item, p, f"markups[{i}]")
        if not m.name:
            m.name = base_name(p) if len(items) == 1 else f"{base_name(p)}_{i}"
        m.source = os.fspath(p)
        out.append(m)
    return out


def markup_from_json(item: dict, p: Path, where: str) -> Markups:
    """One markup from its object in a ``.mrk.json`` ``markups`` list, points in LPS.

    Errors name the file ``p`` and the place ``where`` in it.
    """
    mtype = item.get("type")
    if mtype not in MARKUP_TYPES:
        raise FormatError(p, f"{where}.type: unknown markup type {mtype!r}")
    cs = item.get("coordinateSystem", "LPS")
    ras = cs == "RAS"
    units = item.get("coordinateUnits", "mm")
    if isinstance(units, list) and len(units) == 3 and units[1] != "UCUM":
        raise FormatError(p, f"{where}.coordinateUnits: coding scheme must be UCUM, got {units[1]!r}")

    def point(v: Any, what: str) -> np.ndarray:
        arr = _floats(v, 3, f"{where}.{what}", p)
        return lps_to_ras(arr) if ras else arr

    def orient(v: Any, what: str) -> np.ndarray:
        arr = _floats(v, 9, f"{where}.{what}", p)
        return flip_orientation(arr) if ras else arr.reshape(3, 3)

    def matrix(v: Any, what: str) -> np.ndarray:
        arr = _floats(v, 16, f"{where}.{what}", p)
        return flip_matrix_rows(arr) if ras else arr.reshape(4, 4)

    cps = []
    for j, c in enumerate(item.get("controlPoints") or []):
        w = f"controlPoints[{j}]"
        pos = c.get("position")
        position = None if pos is None or pos == "" else point(pos, w + ".position")
        status = c.get("positionStatus", "defined")
        if status in ("defined", "preview") and position is None:
            status = "undefined"
        cps.append(ControlPoint(
            id=str(c.get("id", "")), label=str(c.get("label", "")), description=str(c.get("description", "")),
            associated_node_id=str(c.get("associatedNodeID", "")), position=position,
            orientation=(orient(c["orientation"], w + ".orientation") if "orientation" in c
                         else flip_orientation(np.eye(3))),
            selected=bool(c.get("selected", True)), locked=bool(c.get("locked", False)),
            visibility=bool(c.get("visibility", True)), position_status=status,
            extra={k: v for k, v in c.items() if k not in _CP_KEYS},
        ))
    m = Markups(
        type=mtype, name=str(item.get("name", "")), control_points=cps, coordinate_system=cs,
        coordinate_units=units, locked=bool(item.get("locked", False)),
        fixed_number_of_control_points=bool(item.get("fixedNumberOfControlPoints", False)),
        label_format=str(item.get("labelFormat", "%N-%d")),
        last_used_control_point_number=item.get("lastUsedControlPointNumber"),
        measurements=list(item.get("measurements") or []), display=dict(item.get("display") or {}),
        extra={k: v for k, v in item.items() if k not in _KNOWN},
    )
    m.metadata["present_keys"] = [k for k in item if k in _KNOWN]
    if mtype == "Plane":
        m.plane_type = item.get("planeType", "threePoints")
        m.size_mode = item.get("sizeMode")
        factor = item.get("autoScalingFactor", item.get("autoScalingSizeFactor"))
        m.auto_scaling_factor = None if factor is None else float(factor)
        if "center" in item:
            m.center = point(item["center"], "center")
        if "normal" in item:
            m.normal = point(item["normal"], "normal")
        if "objectToBase" in item:
            m.object_to_base = matrix(item["objectToBase"], "objectToBase")
        if "baseToNode" in item:
            m.base_to_node = matrix(item["baseToNode"], "baseToNode")
        if "orientation" in item:
            m.orientation = orient(item["orientation"], "orientation")
        if "size" in item:
            m.size = _floats(item["size"], 3, f"{where}.size", p)
        if "planeBounds" in item:
            m.plane_bounds = _floats(item["planeBounds"], 4, f"{where}.planeBounds", p)
    elif mtype == "ROI":
        m.roi_type = item.get("roiType", "Box")
        if "center" in item:
            m.center = point(item["center"], "center")
        if "orientation" in item:
            m.orientation = orient(item["orientation"], "orientation")
        if "size" in item:
            m.size = _floats(item["size"], 3, f"{where}.size", p)
        m.inside_out = bool(item.get("insideOut", False))
    return m


# -- writing -----------------------------------------------------------------------------------
def slicer_plane_matrices(m: Markups, center: np.ndarray, axes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``objectToBase`` and ``baseToNode`` that make Slicer place a plane at ``center`` with ``axes``
    (columns x, y, normal; LPS), as an LPS file holds them.

    Slicer places a plane by ``baseToNode @ objectToBase`` (``vtkMRMLMarkupsPlaneNode``). It recomputes
    ``baseToNode`` from the control points (``threePoints``: origin at the first point, axes from the
    first three; ``pointNormal``: the stored axes moved to the first point), so the base frame is built
    here the same way and ``objectToBase`` carries the rest. Slicer keeps ``objectToBase`` in RAS and
    negates its first two rows in an LPS file, as it does for ``baseToNode``.
    """
    pts = m.positions
    base = np.eye(4)
    base[:3, :3] = axes
    if len(pts):
        base[:3, 3] = pts[0]
    if (m.plane_type or "pointNormal") == "threePoints" and len(pts) >= 3:
        x = pts[1] - pts[0]
        z = np.cross(x, pts[2] - pts[0])
        if np.linalg.norm(x) > 1e-12 and np.linalg.norm(z) > 1e-12:
            x, z = x / np.linalg.norm(x), z / np.linalg.norm(z)
            base[:3, :3] = np.column_stack([x, np.cross(z, x), z])
    wanted = np.eye(4)
    wanted[:3, :3], wanted[:3, 3] = axes, center
    object_to_base = np.linalg.solve(base, wanted)
    return flip_matrix_rows(object_to_base), base


def _list(a: Any) -> list:
    return [float(x) for x in np.asarray(a, dtype=float).reshape(-1)]


def markups_to_json(m: Markups, coordinate_system: str | None = None) -> dict:
    """The JSON document Slicer writes for one markup (``coordinate_system`` overrides the stored one)."""
    cs = (coordinate_system or m.coordinate_system or "LPS").upper()
    ras = cs == "RAS"
    if m.type == "ROI" and not m.control_points and m.center is not None:
        # Slicer's box ROI keeps a control point at its centre; without one it reads the size as zero
        m = m.copy()
        m.add_point(m.center, label=f"{m.name or 'R'}-1")

    def point(v: np.ndarray) -> list:
        return _list(lps_to_ras(v) if ras else v)

    def orient(v: np.ndarray) -> list:
        return _list(flip_orientation(v) if ras else v)

    def matrix(v: np.ndarray) -> list:
        return _list(flip_matrix_rows(v) if ras else v)

    item: dict[str, Any] = {"type": m.type, "coordinateSystem": cs, "coordinateUnits": m.coordinate_units,
                            "locked": bool(m.locked),
                            "fixedNumberOfControlPoints": bool(m.fixed_number_of_control_points),
                            "labelFormat": m.label_format}
    used = [int(cp.id) for cp in m.control_points if str(cp.id).isdigit()]
    last = m.last_used_control_point_number
    if last is None:
        last = max(used + [len(m.control_points)])
    item["lastUsedControlPointNumber"] = int(last)
    if m.name:
        item["name"] = m.name
    if m.type == "Plane":
        item["planeType"] = m.plane_type or "pointNormal"
        item["sizeMode"] = m.size_mode or "auto"
        item["autoScalingFactor"] = float(m.auto_scaling_factor if m.auto_scaling_factor is not None else 1.0)
        frame = m.plane_frame()
        center = m.center if m.center is not None else (frame[0] if frame else None)
        normal = m.normal if m.normal is not None else (frame[1][:, 2] if frame else None)
        if center is not None:
            item["center"] = point(center)
        if normal is not None:
            item["normal"] = point(normal)
        object_to_base, base_to_node = m.object_to_base, m.base_to_node
        if (object_to_base is None or base_to_node is None) and frame is not None:
            object_to_base, base_to_node = slicer_plane_matrices(m, *frame)
        if object_to_base is not None:
            item["objectToBase"] = matrix(object_to_base)
        if base_to_node is not None:
            item["baseToNode"] = matrix(base_to_node)
        orientation = m.orientation if m.orientation is not None else (frame[1] if frame else None)
        if orientation is not None:
            item["orientation"] = orient(orientation)
        if m.size is not None:
            item["size"] = _list(m.size)
        if m.plane_bounds is not None:
            item["planeBounds"] = _list(m.plane_bounds)
    elif m.type == "ROI":
        item["roiType"] = m.roi_type or "Box"
        center, size = m.center, m.size
        if center is None or size is None:
            pts = m.positions
            if len(pts):
                lo, hi = pts.min(axis=0), pts.max(axis=0)
                center, size = (lo + hi) / 2, hi - lo
        if center is not None:
            item["center"] = point(center)
        item["orientation"] = orient(m.orientation if m.orientation is not None else flip_orientation(np.eye(3)))
        if size is not None:
            item["size"] = _list(size)
        item["insideOut"] = bool(m.inside_out)
    for k, v in m.extra.items():
        item.setdefault(k, v)
    cps = []
    for cp in m.control_points:
        c: dict[str, Any] = {"id": str(cp.id), "label": cp.label, "description": cp.description,
                             "associatedNodeID": cp.associated_node_id}
        if cp.position is not None:
            c["position"] = point(cp.position)
        c["orientation"] = orient(cp.orientation)
        c.update({"selected": bool(cp.selected), "locked": bool(cp.locked), "visibility": bool(cp.visibility),
                  "positionStatus": cp.position_status if cp.position is not None or cp.position_status != "defined"
                  else "undefined"})
        for k, v in cp.extra.items():
            c.setdefault(k, v)
        cps.append(c)
    item["controlPoints"] = cps
    item["measurements"] = [dict(x) for x in m.measurements]
    if m.display:
        item["display"] = dict(m.display)
    return {"@schema": SCHEMA_URL, "markups": [item]}


def write_markups_json(m: Markups, path: str | os.PathLike[str], *, coordinate_system: str | None = None) -> list[str]:
    """Write one markup as Slicer does (the file validates against Slicer's schema)."""
    p = Path(path)
    if not isinstance(m, Markups):
        raise WriteError(p, f"a markups file holds markups, not {type(m).__name__}")
    doc = markups_to_json(m, coordinate_system)
    text = json.dumps(doc, indent=4, ensure_ascii=False, allow_nan=False)
    return write_text(p, text + "\n")


def write_collection(items: list, path: str | os.PathLike[str]) -> list[str]:
    """Several markups in one file (the ``markups`` array; Slicer's Add Data loads each as a node)."""
    p = Path(path)
    docs = [markups_to_json(m)["markups"][0] for m in items]
    text = json.dumps({"@schema": SCHEMA_URL, "markups": docs}, indent=4, ensure_ascii=False, allow_nan=False)
    return write_text(p, text + "\n")


register(FileFormat(
    name="markups-json",
    description="3D Slicer markups JSON (point list, line, angle, curve, closed curve, plane, ROI)",
    extensions=(".mrk.json", ".mkp.json", ".json"),
    read=read_markups_json,
    write=write_markups_json,
    sniff=_sniff,
    kinds=(DataKind.MARKUPS,),
    priority=5,
    backend="json",
))
