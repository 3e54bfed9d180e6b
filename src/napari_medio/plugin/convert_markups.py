"""Markups <-> napari Points / Shapes layers (imported by ``layers._load_converters``).

* A point list (``Fiducial``) is a Points layer: positions in the LPS world
  written (S, P, L), labels as text, every control-point field as a feature
  (``id``, ``label``, ``description``, ``associated_node_id``, ``selected``,
  ``locked``, ``position_status``), visibility as ``shown``.
* Lines and angles are Shapes paths through their control points, curves the
  spline Slicer draws (control points every ``POINTS_PER_SEGMENT`` vertices),
  closed curves a polygon, planes their rectangle, ROIs their 12 box edges.
* The whole markup is kept as its JSON document in ``metadata["medio"]["markups"]``
  so saving loses nothing; points the user adds, moves or deletes (and shapes
  moved or reshaped) are merged back in by the builders below.  Layers drawn in
  napari (no metadata) save as a point list, line, curve or closed curve.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..core import registry
from ..core.errors import MedioError
from ..core.geometry import WORLD_AXIS_LABELS
from ..core.kinds import DataKind
from ..core.markups import ControlPoint, Markups, flip_orientation
from ..formats.markups_json import markup_from_json, markups_to_json
from .layers import data_to_world_matrix, register_from_layer, register_to_layer

__all__ = ["markups_to_layer_data", "markups_from_points", "markups_from_shapes", "write_points", "write_shapes"]

POINTS_PER_SEGMENT = 10
_DEFAULT_COLOR = [1.0, 0.5, 0.5]
_DEFAULT_SELECTED = [1.0, 0.5, 0.5]
_FEATURES = ("id", "label", "description", "associated_node_id", "selected", "locked", "position_status")


def _rgba(c: Any, opacity: float = 1.0) -> list[float]:
    c = [float(x) for x in list(c)[:3]]
    return c + [float(opacity)]


def _to_world(lps: np.ndarray) -> np.ndarray:
    """LPS (N, 3) -> napari world order (S, P, L)."""
    return np.asarray(lps, dtype=float).reshape(-1, 3)[:, ::-1].copy()


def _doc(m: Markups) -> dict:
    return markups_to_json(m, "LPS")["markups"][0] | {"coordinateSystem": "LPS", "_stored_cs": m.coordinate_system}


def _markup_from_meta(medio: dict) -> Markups | None:
    item = medio.get("markups") if medio else None
    if not isinstance(item, dict):
        return None
    item = dict(item)
    stored = item.pop("_stored_cs", "LPS")
    m = markup_from_json(item, None, "markups")  # type: ignore[arg-type]
    m.coordinate_system = stored
    m.name = item.get("name", "")
    m.source = medio.get("source")
    return m


def markups_to_layer_data(m: Markups, **_: Any) -> list:
    """LayerData for one markup: Points for a point list, Shapes for everything else."""
    display = m.display or {}
    color = display.get("color", _DEFAULT_COLOR)
    selected_color = display.get("selectedColor", _DEFAULT_SELECTED)
    opacity = float(display.get("opacity", 1.0))
    size = float(display.get("glyphSize", 5.0) or 5.0)
    name = m.name or "markups"
    meta = {"kind": DataKind.MARKUPS, "type": m.type, "markups": _doc(m), "source": m.source, "name": m.name}
    common = {
        "name": name,
        "axis_labels": WORLD_AXIS_LABELS[3],
        "units": ("mm",) * 3,
        "metadata": {"medio": meta},
    }
    if m.type == "Fiducial":
        placed = [cp for cp in m.control_points if cp.position is not None]
        data = _to_world(np.array([cp.position for cp in placed]).reshape(-1, 3))
        features = {k: [] for k in _FEATURES}
        for cp in placed:
            features["id"].append(cp.id)
            features["label"].append(cp.label)
            features["description"].append(cp.description)
            features["associated_node_id"].append(cp.associated_node_id)
            features["selected"].append(bool(cp.selected))
            features["locked"].append(bool(cp.locked))
            features["position_status"].append(cp.position_status)
        face = [_rgba(selected_color if cp.selected else color, opacity) for cp in placed]
        kwargs = dict(common)
        kwargs.update({
            "ndim": 3,
            "features": features,
            "feature_defaults": {"id": "", "label": "", "description": "", "associated_node_id": "",
                                 "selected": True, "locked": False, "position_status": "defined"},
            "text": {"string": "{label}", "color": _rgba(selected_color), "anchor": "upper_left",
                     "size": max(6.0, float(display.get("textScale", 3.0)) * 3.0),
                     "visible": bool(display.get("pointLabelsVisibility", True))},
            "size": size,
            "shown": [bool(cp.visibility) for cp in placed],
            "border_width": 0.0,
        })
        if face:
            kwargs["face_color"] = face
        else:
            kwargs["face_color"] = _rgba(selected_color, opacity)
        return [(data, kwargs, "points")]
    if m.type in ("Plane", "ROI"):
        shapes = m.outline()
        types = ["polygon" if m.type == "Plane" else "path" for _ in shapes]
        if m.type == "ROI" and shapes:
            types[0] = types[1] = "path"
    else:
        curve = m.curve_points(POINTS_PER_SEGMENT)
        shapes = [curve] if len(curve) else []
        types = ["polygon" if m.type == "ClosedCurve" else "path"]
        if m.type == "ClosedCurve" and len(curve) < 3:
            types = ["path"]
    data = [_to_world(s) for s in shapes]
    meta["shape_vertices"] = [d.tolist() for d in data]
    kwargs = dict(common)
    kwargs.update({
        "ndim": 3,
        "shape_type": types[: len(data)],
        "edge_color": _rgba(selected_color, opacity),
        "face_color": [0, 0, 0, 0],
        "edge_width": max(0.5, float(display.get("lineThickness", 0.2)) * size),
    })
    return [(data, kwargs, "shapes")]


register_to_layer(Markups, markups_to_layer_data)


# -- layers -> markups ------------------------------------------------------------------------------
def _world_positions(data: Any, attributes: dict) -> np.ndarray:
    """World (S, P, L) -> LPS positions of layer vertices, through the layer's full transform."""
    arr = np.asarray(data, dtype=float)
    if arr.size == 0:
        return np.zeros((0, 3))
    nd = arr.shape[1]
    matrix = data_to_world_matrix(attributes, nd)
    world = arr @ matrix[:nd, :nd].T + matrix[:nd, nd]
    if nd >= 3:
        spl = world[:, -3:]
    elif nd == 2:
        spl = np.column_stack([np.zeros(len(world)), world])
    else:
        raise MedioError(attributes.get("name"), "a markups layer needs 2 or 3 spatial dimensions")
    return spl[:, ::-1].copy()


def _column(features: Any, key: str, n: int, default: Any) -> list:
    try:
        if features is not None and key in features:
            values = list(features[key])
            if len(values) == n:
                return values
    except Exception:
        pass
    return [default] * n


def _clean(v: Any, default: str = "") -> str:
    if v is None:
        return default
    try:
        if isinstance(v, float) and np.isnan(v):
            return default
    except TypeError:
        pass
    return str(v)


def markups_from_points(data: Any, attributes: dict) -> Markups:
    """The point list a Points layer shows (edits merged into the markup it came from)."""
    medio = dict((attributes.get("metadata") or {}).get("medio") or {})
    base = _markup_from_meta(medio) if medio.get("kind") == DataKind.MARKUPS else None
    name = attributes.get("name") or (base.name if base else "") or "F"
    if base is None:
        base = Markups(type="Fiducial", name=name)
        selected = (attributes.get("face_color") if attributes.get("face_color") is not None else None)
        try:
            rgb = np.asarray(selected, dtype=float).reshape(-1, 4)[0, :3].tolist()
            base.display = {"selectedColor": rgb, "color": rgb}
        except Exception:
            pass
    elif base.type != "Fiducial":
        base = Markups(type="Fiducial", name=name, coordinate_system=base.coordinate_system, display=base.display)
    base.name = name
    positions = _world_positions(data, attributes)
    n = len(positions)
    features = attributes.get("features")
    cols = {k: _column(features, k, n, None) for k in _FEATURES}
    shown = attributes.get("shown")
    shown = list(shown) if shown is not None and len(shown) == n else [True] * n
    old = {cp.id: cp for cp in base.control_points}
    unplaced = [cp for cp in base.control_points if cp.position is None]
    out: list[ControlPoint] = []
    seen: set[str] = set()
    base.control_points = []  # next_label looks at the points kept so far and the last used number
    for i in range(n):
        pid = _clean(cols["id"][i])
        prev = old.get(pid) if pid and pid not in seen else None
        label = _clean(cols["label"][i])
        description = _clean(cols["description"][i])
        if prev is None:
            copied = old.get(pid) if pid in seen else None  # napari copies the selected point's features
            new_id, auto_label = base.next_label()
            while new_id in old or new_id in seen:
                new_id, auto_label = base.next_label()
            pid = new_id
            if copied is not None and label == copied.label:
                label, description = "", ""
            label = label or auto_label
        seen.add(pid)
        status = _clean(cols["position_status"][i], "defined") or "defined"
        if status not in ("defined", "preview"):
            status = "defined"
        sel = cols["selected"][i]
        lock = cols["locked"][i]
        cp = ControlPoint(
            id=pid, label=label, description=description,
            associated_node_id=_clean(cols["associated_node_id"][i]), position=positions[i],
            orientation=prev.orientation if prev is not None else flip_orientation(np.eye(3)),
            selected=bool(sel) if sel is not None and not (isinstance(sel, float) and np.isnan(sel)) else True,
            locked=bool(lock) if lock is not None and not (isinstance(lock, float) and np.isnan(lock)) else False,
            visibility=bool(shown[i]), position_status=status,
            auto_created=prev.auto_created if prev is not None else False,
            extra=prev.extra if prev is not None else {},
        )
        out.append(cp)
        base.control_points = out[:]
    base.control_points = out + [cp for cp in unplaced if cp.id not in seen]
    if base.measurements:
        _refresh_measurements(base)
    return base


def _refresh_measurements(m: Markups) -> None:
    values = m.measure()
    for meas in m.measurements:
        if meas.get("name") in values and "value" in meas:
            meas["value"] = values[meas["name"]]


def _from_drawn_shape(vertices: np.ndarray, shape_type: str, name: str) -> Markups:
    closed = shape_type in ("polygon", "rectangle", "ellipse")
    if shape_type == "line" or (not closed and len(vertices) == 2):
        mtype = "Line"
    else:
        mtype = "ClosedCurve" if closed else "Curve"
    m = Markups(type=mtype, name=name)
    for v in vertices:
        m.add_point(v)
    if mtype in ("Curve", "ClosedCurve"):
        m.curve_type = "linear"  # what the user drew, vertex by vertex
    return m


def markups_from_shapes(data: Any, attributes: dict) -> Markups:
    """The markup a Shapes layer shows: merged edits, or a new line/curve/closed curve per drawn shape."""
    medio = dict((attributes.get("metadata") or {}).get("medio") or {})
    base = _markup_from_meta(medio) if medio.get("kind") == DataKind.MARKUPS else None
    name = attributes.get("name") or (base.name if base else "") or "markup"
    shapes = [_world_positions(d, attributes) for d in (data or [])]
    types = list(attributes.get("shape_type") or ["path"] * len(shapes))
    if not shapes:
        if base is not None:
            return base
        raise MedioError(name, "the Shapes layer is empty: nothing to save as markups")
    if base is None:
        markups = [_from_drawn_shape(s, t, name if i == 0 else f"{name}_{i}") for i, (s, t) in
                   enumerate(zip(shapes, types))]
        first = markups[0]
        first.metadata["siblings"] = markups[1:]
        return first
    base.name = name
    displayed = [np.asarray(v, dtype=float)[:, ::-1] for v in medio.get("shape_vertices") or []]
    if len(displayed) != len(shapes) or any(a.shape != b.shape for a, b in zip(displayed, shapes)):
        # Shapes were added or removed: rebuild a curve-like markup from the first shape.
        if base.type in ("Plane", "ROI"):
            return base
        v = shapes[0]
        mk = _from_drawn_shape(v, types[0], name)
        mk.coordinate_system, mk.display = base.coordinate_system, base.display
        mk.type = base.type if base.type in ("Curve", "ClosedCurve") and len(v) > 2 else mk.type
        return mk
    diffs = [s - d for s, d in zip(shapes, displayed)]
    if all(np.allclose(d, 0, atol=1e-9) for d in diffs):
        return base
    first = np.concatenate(diffs, axis=0)
    if np.allclose(first, first[0], atol=1e-6):  # rigid translation of the whole markup
        out = base.translated(first[0])
        _refresh_measurements(out)
        return out
    if base.type in ("Plane", "ROI"):
        return base  # only translations of planes and ROIs are taken back
    v = shapes[0]
    placed = [cp for cp in base.control_points if cp.position is not None]
    if base.type in ("Curve", "ClosedCurve") and len(placed) > 2:
        idx = [i * POINTS_PER_SEGMENT for i in range(len(placed))]
        if idx[-1] < len(v):
            new = v[idx]
            if base.type == "Curve":
                new[-1] = v[-1]
        else:
            new = v[: len(placed)]
    else:
        new = v[: len(placed)]
    for cp, pos in zip(placed, new):
        cp.position = np.asarray(pos, dtype=float)
    _refresh_measurements(base)
    return base


register_from_layer("points", lambda data, attrs: markups_from_points(data, attrs))
register_from_layer("shapes", lambda data, attrs: markups_from_shapes(data, attrs))


# -- npe2 writers ------------------------------------------------------------------------------------
def _write(path: str, markups: Markups) -> list[str]:
    siblings = markups.metadata.pop("siblings", [])
    if siblings and path.lower().endswith(".json"):
        from ..formats.markups_json import write_collection

        return write_collection([markups, *siblings], path)
    return registry.write(markups, path)


def write_points(path: str, data: Any, attributes: dict) -> list[str]:
    """Save a Points layer as a Slicer point list (.mrk.json, .mkp.json, .json or .fcsv)."""
    return _write(path, markups_from_points(data, attributes))


def write_shapes(path: str, data: Any, attributes: dict) -> list[str]:
    """Save a Shapes layer as Slicer markups (line, curve, closed curve, plane, ROI)."""
    return _write(path, markups_from_shapes(data, attributes))
