"""Models <-> napari Surface layers, in the one LPS world.

A :class:`~napari_medio.core.model.Model` becomes a Surface layer whose vertices
are the LPS points in napari's (S, P, L) order (no layer transform needed),
whose faces are :meth:`Model.triangles` (polygons triangulated for display only,
a volumetric mesh's outer surface), with the chosen per-point scalar array as
``values`` and 8-bit RGB(A) point colours as ``vertex_colors``.  The model itself
(cells, every point/cell/field array, normals, the file's coordinate system) is
kept in ``layer.metadata["medio"]["model"]``, so saving the layer writes back
what was read -- with the vertices the layer now has.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from ..core import registry
from ..core.geometry import WORLD_AXIS_LABELS
from ..core.model import Model, triangle_model
from .layers import data_to_world_matrix, from_layer, register_from_layer, register_to_layer

__all__ = ["model_to_layer_data", "model_from_surface", "write_surface"]


def model_to_layer_data(model: Model, *, values: str | None = None, **_: Any) -> list:
    """Surface LayerData for a model (a Points layer when it has no surface, e.g. only lines)."""
    vertices = np.ascontiguousarray(model.points[:, ::-1])
    faces = model.triangles()
    meta = {"object": "model", "model": model, "source": model.source, "values_array": None,
            "coordinate_system": model.coordinate_system}
    kwargs: dict[str, Any] = {
        "name": model.name or "model",
        "metadata": {"medio": meta},
        "axis_labels": WORLD_AXIS_LABELS[3],
        "units": ("mm",) * 3,
    }
    if faces.size == 0:
        kwargs["size"] = 1.0
        return [(vertices, kwargs, "points")]
    names = model.scalar_arrays()
    chosen = values if values in model.point_data else (model.scalars_name if model.scalars_name in names else
                                                        (names[0] if names else None))
    data: tuple = (vertices, faces)
    if chosen is not None:
        vals = np.asarray(model.point_data[chosen], dtype=float).reshape(-1)
        data = (vertices, faces, vals)
        meta["values_array"] = chosen
        finite = vals[np.isfinite(vals)]
        if finite.size and finite.max() > finite.min():
            kwargs["contrast_limits"] = [float(finite.min()), float(finite.max())]
        kwargs["colormap"] = "viridis"
    colors = model.colors
    if colors is not None:
        c = np.asarray(colors, dtype=float) / 255.0
        if c.shape[1] == 3:
            c = np.c_[c, np.ones(len(c))]
        kwargs["vertex_colors"] = c
    elif chosen is None and "color" in (model.metadata.get("display") or {}):  # e.g. an OBJ's material
        display = model.metadata["display"]
        kwargs["vertex_colors"] = np.tile(np.r_[np.asarray(display["color"], float)[:3], 1.0], (len(vertices), 1))
        meta["material_color"] = True
        if "opacity" in display:
            kwargs["opacity"] = float(np.clip(display["opacity"], 0.0, 1.0))
    return [(data, kwargs, "surface")]


def _world_points(vertices: np.ndarray, attributes: dict) -> np.ndarray:
    """LPS points of layer vertices after the layer's whole transform."""
    v = np.asarray(vertices, dtype=float)
    nd = v.shape[1]
    m = data_to_world_matrix(attributes, nd)
    world = v @ m[:nd, :nd].T + m[:nd, nd]
    return np.ascontiguousarray(world[:, -3:][:, ::-1])


def model_from_surface(data: Any, attributes: dict) -> Model | None:
    """The Model a Surface layer shows (the stored model with the layer's vertices, or a new triangle mesh)."""
    vertices, faces = np.asarray(data[0]), np.asarray(data[1], dtype=np.int64)
    values = np.asarray(data[2]) if len(data) > 2 and data[2] is not None else None
    medio = (attributes.get("metadata") or {}).get("medio") or {}
    points = _world_points(vertices, attributes)
    stored: Model | None = medio.get("model")
    if isinstance(stored, Model) and stored.n_points == len(points):
        same_faces = np.array_equal(stored.triangles(), faces)
        if same_faces:
            model = replace(stored, points=points, point_data=dict(stored.point_data))
            chosen = medio.get("values_array")
            if chosen and values is not None and values.ndim == 1 and len(values) == len(points):
                model.point_data[chosen] = values.astype(np.asarray(stored.point_data[chosen]).dtype, copy=False)
            model.name = attributes.get("name") or model.name
            return model
    model = triangle_model(points, faces, name=attributes.get("name") or "surface")
    if values is not None and values.ndim == 1 and len(values) == len(points):
        name = medio.get("values_array") or "values"
        model.point_data[name] = values
        model.scalars_name = name
    colors = attributes.get("vertex_colors")
    if colors is not None and len(colors) == len(points):
        model.point_data["RGBA"] = np.clip(np.round(np.asarray(colors, dtype=float) * 255), 0, 255).astype(np.uint8)
        model.colors_name = "RGBA"
    return model


def write_surface(path: str, data: Any, attributes: dict) -> list[str]:
    """npe2 writer: save a Surface layer as .vtk, .vtp, .vtu, .stl, .obj or .ply (Slicer's SPACE=LPS marker)."""
    return registry.write(from_layer("surface", data, attributes), path)


register_to_layer(Model, model_to_layer_data)
register_from_layer("surface", model_from_surface, first=True)
