"""RT Structure Set contours -> napari Shapes (closed polygons and open paths) and Points (POINT ROIs).

World coordinates are LPS in napari order (S, P, L), so each contour vertex
``(x, y, z)`` becomes ``(z, y, x)``.  Edge colours are the ROI display colours;
``features`` name each shape's ROI.  The rasterised Labels layer comes from the
:class:`~napari_medio.core.segmentation.Segmentation` the reader also returns.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..core.geometry import WORLD_AXIS_LABELS
from ..dicom.rt import RTStructureSet
from .layers import register_to_layer

__all__ = ["rtstruct_to_layer_data"]


def rtstruct_to_layer_data(rs: RTStructureSet, **_: Any) -> list:
    """A Shapes layer of the contours and a Points layer of POINT ROIs (when there are any)."""
    shapes, types, colors, names, numbers = [], [], [], [], []
    points, point_colors, point_names = [], [], []
    for item in rs.paths():
        world = np.asarray(item["points"], dtype=float)[:, ::-1]
        rgba = list(item["color"]) + [1.0]
        if item["type"] == "POINT" or len(world) == 1:
            points.extend(world)
            point_colors.extend([rgba] * len(world))
            point_names.extend([item["name"]] * len(world))
            continue
        shapes.append(world)
        types.append("polygon" if item["type"] == "CLOSED_PLANAR" and len(world) >= 3 else "path")
        colors.append(rgba)
        names.append(item["name"])
        numbers.append(item["roi"])
    meta = {"medio": {"object": "rtstruct", "source": rs.source, "info": rs.info(),
                      "metadata": rs.metadata}}
    out = []
    if shapes:
        out.append((shapes, {
            "name": f"{rs.name} contours", "shape_type": types, "edge_color": colors, "face_color": "transparent",
            "edge_width": 1.0, "features": {"roi": names, "roi_number": numbers}, "metadata": meta,
            "units": "mm", "axis_labels": WORLD_AXIS_LABELS[3],
        }, "shapes"))
    if points:
        out.append((np.asarray(points), {
            "name": f"{rs.name} points", "face_color": point_colors, "features": {"roi": point_names},
            "metadata": meta, "units": "mm", "axis_labels": WORLD_AXIS_LABELS[3], "size": 5,
        }, "points"))
    return out


register_to_layer(RTStructureSet, rtstruct_to_layer_data)
