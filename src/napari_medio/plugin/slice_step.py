"""One scroll step is one slice: napari-medio's points, shapes and surfaces keep the volumes' slice step.

napari steps its sliders by the smallest ``abs(scale)`` of any layer
(``LayerList._step_size``: each layer's ``extent.step``), and points, shapes and
surfaces read from files hold world millimetres at scale 1: one over a 10 mm CT
makes the step 1 mm.  :func:`match_slice_step` gives such a layer the image
layers' step along the patient axes (S, P, L) as its ``scale`` and stores its
vertices divided by it, so the world positions, and what writers save (they
apply the layer's whole transform), do not change.  A point is then drawn on the
slice nearest to it (napari shows points within half a data unit of the slice).
Point sizes and shape edge widths are rescaled so they look the same.
"""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["match_slice_step", "volume_step"]

#: Layer types whose vertices are world positions (not voxel grids).
VERTEX_LAYERS = ("points", "shapes", "surface", "vectors")


def _layer_type(layer: Any) -> str:
    return type(layer).__name__.lower()


def volume_step(viewer: Any) -> np.ndarray | None:
    """World step (one value per world axis) of the viewer's Image and Labels layers, or None without them."""
    images = [layer for layer in viewer.layers if _layer_type(layer) in ("image", "labels")]
    if not images:
        return None
    return np.asarray(viewer.layers.get_extent(images).step, dtype=float)


def _rescaled_data(layer: Any, ratio: np.ndarray) -> Any:
    kind = _layer_type(layer)
    if kind == "surface":
        vertices, *rest = layer.data
        return (np.asarray(vertices) * ratio, *rest)
    if kind == "shapes":
        return [np.asarray(d) * ratio for d in layer.data]
    if kind == "vectors":
        data = np.asarray(layer.data, dtype=float).copy()
        data[:, 0] *= ratio
        data[:, 1] *= ratio
        return data
    return np.asarray(layer.data) * ratio


def match_slice_step(viewer: Any, layer: Any) -> bool:
    """Give a napari-medio vertex layer the image layers' step on the spatial axes; True when it changed.

    Only layers napari-medio made (``metadata["medio"]``) with 3 or more dimensions are
    touched; world positions stay as they were (data = data * old scale / new scale).
    """
    if _layer_type(layer) not in VERTEX_LAYERS or "medio" not in (layer.metadata or {}) or layer.ndim < 3:
        return False
    step = volume_step(viewer)
    if step is None or step.shape[0] < 3:
        return False
    old = np.asarray(layer.scale, dtype=float)
    new = old.copy()
    new[-3:] = step[-3:]
    if np.allclose(new, old, rtol=1e-9, atol=0):
        return False
    ratio = old / new
    data = _rescaled_data(layer, ratio)
    size_ratio = abs(old[-1] / new[-1])  # napari sizes points and edges by the last axis' scale
    layer.scale = new
    layer.data = data
    if _layer_type(layer) == "points":
        layer.size = np.asarray(layer.size, dtype=float) * size_ratio
    elif _layer_type(layer) == "shapes":
        layer.edge_width = [w * size_ratio for w in layer.edge_width]
    return True
