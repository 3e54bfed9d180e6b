"""Displacement-field (grid transform) interpolation as 3D Slicer does it.

Slicer maps points through a grid transform with ``vtkOrientedGridTransform`` in cubic
interpolation mode: VTK's tricubic scheme (``vtkGridTransform``'s ``vtkTricubicInterpolation``),
a centred-difference (Catmull-Rom) cubic per axis that falls back to a quadratic next to the
edge of the grid, to linear on a two-node axis, and keeps the edge node's displacement beyond
the grid. SimpleITK's ``DisplacementFieldTransform`` interpolates linearly only and VTK is an
optional dependency of napari-medio, so the scheme is written here, vectorised with NumPy, and
tested against ``vtkGridTransform`` and against Slicer itself.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .geometry import Geometry

__all__ = ["cubic_displacement"]


def _axis_weights(x: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """VTK's tricubic weights along one axis: four node indices (N, 4) and their weights (N, 4).

    ``x`` is the continuous index along the axis; ``size`` the number of nodes on it.
    """
    last = size - 1
    i0 = np.floor(x)
    f = x - i0
    i0 = i0.astype(np.int64)
    below, beyond = i0 < 0, i0 + 1 > last
    outside = below | beyond
    i0 = np.where(below, 0, np.where(beyond, last, i0))
    i1 = np.where(outside, i0, i0 + 1)
    f = np.where(outside, 0.0, f)
    mode = ((i0 > 0).astype(int) << 2) + ((i1 < last).astype(int) << 1) + (~outside).astype(int)
    fm1 = f - 1
    zero, one = np.zeros_like(f), np.ones_like(f)
    weights = np.select(
        [(mode == 7)[:, None], (mode == 1)[:, None], (mode == 3)[:, None], (mode == 5)[:, None]],
        [np.stack([-f * fm1 * fm1 / 2, ((3 * f - 2) * f - 2) * fm1 / 2, -((3 * f - 4) * f - 1) * f / 2,
                   f * f * fm1 / 2], axis=1),  # cubic
         np.stack([zero, 1 - f, f, zero], axis=1),  # linear: a two-node axis
         np.stack([zero, fm1 * (fm1 - 1) / 2, -f * (fm1 - 1), f * fm1 / 2], axis=1),  # quadratic at the first node
         np.stack([f * fm1 / 2, -(f + 1) * fm1, (f + 1) * f / 2, zero], axis=1)],  # quadratic at the last node
        default=np.stack([zero, one, zero, zero], axis=1))  # nearest: on or beyond an edge
    nodes = np.clip(i0[:, None] - 1 + np.arange(4), 0, last)
    return nodes, weights


def cubic_displacement(field: Any, geometry: Geometry, points_lps: Any, chunk: int = 65536) -> np.ndarray:
    """The displacement (N, 3) at LPS points of a field ``[k, j, i, 3]`` on the grid ``geometry`` (LPS),
    interpolated tricubically as Slicer's grid transforms are."""
    values = np.asarray(field, dtype=float)
    pts = np.asarray(points_lps, dtype=float).reshape(-1, 3)
    to_index = np.linalg.inv(geometry.as_3d().index_to_lps_matrix())
    nk, nj, ni = values.shape[:3]
    out = np.empty_like(pts)
    for start in range(0, len(pts), chunk):
        part = pts[start:start + chunk]
        index = part @ to_index[:3, :3].T + to_index[:3, 3]
        xi, wi = _axis_weights(index[:, 0], ni)
        xj, wj = _axis_weights(index[:, 1], nj)
        xk, wk = _axis_weights(index[:, 2], nk)
        total = np.zeros_like(part)
        for c in range(4):
            for b in range(4):
                wkj = wk[:, c] * wj[:, b]
                for a in range(4):
                    total += (wkj * wi[:, a])[:, None] * values[xk[:, c], xj[:, b], xi[:, a]]
        out[start:start + chunk] = total
    return out
