"""The Model data object: a surface or volumetric mesh in patient LPS millimetres.

Slicer's "model": points, cells and per-point data.  A :class:`Model` keeps

* ``points`` -- (n, 3) float64 vertex positions in **LPS**, (x, y, z) order (files
  marked ``SPACE=RAS`` are converted on read; the napari adapter reverses the
  columns to (S, P, L));
* the cells as VTK stores them: ``cell_types`` (VTK cell type numbers),
  ``offsets`` (m + 1) and ``connectivity`` -- polygons of any size, lines, vertices,
  strips, and volumetric cells (tetra, hexahedron, wedge, pyramid) for an
  unstructured grid (``dataset="unstructured_grid"``);
* ``point_data`` / ``cell_data`` -- named arrays ((n,) or (n, c)), including
  normals (``normals_name``) and 8-bit RGB(A) colours (``colors_name``);
  ``field_data`` -- named whole-mesh arrays;
* ``coordinate_system`` -- the marker the file had ("LPS", "RAS" or None).

:meth:`Model.triangles` gives what a display needs: polygons fan-triangulated and,
for a volumetric mesh, its outer surface -- the cells themselves are kept for
writing.  No napari, Qt or VTK here.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .kinds import DataKind

__all__ = ["Model", "VTK_CELL", "triangle_model", "flip_lps_ras_points"]

#: VTK cell type numbers used here.
VTK_CELL = {
    "vertex": 1, "poly_vertex": 2, "line": 3, "poly_line": 4, "triangle": 5, "triangle_strip": 6,
    "polygon": 7, "pixel": 8, "quad": 9, "tetra": 10, "voxel": 11, "hexahedron": 12, "wedge": 13,
    "pyramid": 14, "quadratic_triangle": 22, "quadratic_quad": 23, "quadratic_tetra": 24,
    "quadratic_hexahedron": 25,
}
_SURFACE_TYPES = {5, 6, 7, 8, 9, 22, 23}
_LINE_TYPES = {1, 2, 3, 4}

#: Faces (as corner index lists, outward for VTK's ordering) of the linear 3D cells.
_CELL_FACES: dict[int, list[tuple[int, ...]]] = {
    10: [(0, 2, 1), (0, 1, 3), (1, 2, 3), (0, 3, 2)],
    12: [(0, 3, 2, 1), (4, 5, 6, 7), (0, 1, 5, 4), (1, 2, 6, 5), (2, 3, 7, 6), (3, 0, 4, 7)],
    11: [(0, 2, 3, 1), (4, 5, 7, 6), (0, 1, 5, 4), (1, 3, 7, 5), (3, 2, 6, 7), (2, 0, 4, 6)],
    13: [(0, 1, 2), (3, 5, 4), (0, 3, 4, 1), (1, 4, 5, 2), (2, 5, 3, 0)],
    14: [(0, 3, 2, 1), (0, 1, 4), (1, 2, 4), (2, 3, 4), (3, 0, 4)],
    15: [(0, 4, 3, 2, 1), (5, 6, 7, 8, 9)] + [(i, (i + 1) % 5, (i + 1) % 5 + 5, i + 5) for i in range(5)],
    16: [(0, 5, 4, 3, 2, 1), (6, 7, 8, 9, 10, 11)] + [(i, (i + 1) % 6, (i + 1) % 6 + 6, i + 6) for i in range(6)],
}
_QUADRATIC_CORNERS = {24: (10, 4), 25: (12, 8), 22: (5, 3), 23: (9, 4)}


def flip_lps_ras_points(points: np.ndarray) -> np.ndarray:
    """Points (..., 3) between LPS and RAS (negate x and y); a new array."""
    from .geometry import lps_to_ras

    return lps_to_ras(points)


@dataclass
class Model:
    """A mesh in LPS mm (see the module docstring)."""

    points: np.ndarray
    cell_types: np.ndarray
    offsets: np.ndarray
    connectivity: np.ndarray
    dataset: str = "polydata"
    point_data: dict = field(default_factory=dict)
    cell_data: dict = field(default_factory=dict)
    field_data: dict = field(default_factory=dict)
    normals_name: str | None = None
    colors_name: str | None = None
    scalars_name: str | None = None
    coordinate_system: str | None = None
    name: str = ""
    metadata: dict = field(default_factory=dict)
    source: str | None = None

    kind = DataKind.MODEL

    def __post_init__(self) -> None:
        self.points = np.asarray(self.points, dtype=float).reshape(-1, 3)
        self.cell_types = np.asarray(self.cell_types, dtype=np.uint8).reshape(-1)
        self.offsets = np.asarray(self.offsets, dtype=np.int64).reshape(-1)
        self.connectivity = np.asarray(self.connectivity, dtype=np.int64).reshape(-1)
        if self.offsets.size != self.cell_types.size + 1:
            raise ValueError(f"{self.cell_types.size} cells need {self.cell_types.size + 1} offsets, "
                             f"got {self.offsets.size}")
        if self.offsets[0] != 0 or self.offsets[-1] != self.connectivity.size or np.any(np.diff(self.offsets) < 0):
            raise ValueError("cell offsets do not match the connectivity")
        if self.dataset not in ("polydata", "unstructured_grid"):
            raise ValueError(f"unknown dataset type {self.dataset!r}")

    # -- construction --------------------------------------------------------------------------
    @classmethod
    def from_faces(cls, points: Any, faces: Any, **kwargs: Any) -> Model:
        """A polydata model from points and a (m, k) face array (k = 3 triangles, 4 quads, 2 lines...)."""
        faces = np.asarray(faces, dtype=np.int64)
        if faces.ndim != 2:
            raise ValueError("faces must be an (m, k) array")
        m, k = faces.shape
        ctype = {1: 1, 2: 3, 3: 5, 4: 9}.get(k, 7)
        return cls(points, np.full(m, ctype, np.uint8), np.arange(m + 1, dtype=np.int64) * k, faces.reshape(-1),
                   **kwargs)

    @classmethod
    def from_polygons(cls, points: Any, polygons: Sequence[Sequence[int]], **kwargs: Any) -> Model:
        """A polydata model from a list of polygons of any size."""
        sizes = np.array([len(p) for p in polygons], dtype=np.int64)
        offsets = np.r_[0, np.cumsum(sizes)]
        conn = np.fromiter((i for p in polygons for i in p), dtype=np.int64, count=int(offsets[-1]))
        types = np.where(sizes == 3, 5, np.where(sizes == 4, 9, np.where(sizes == 2, 3, np.where(sizes == 1, 1, 7))))
        return cls(points, types.astype(np.uint8), offsets, conn, **kwargs)

    # -- shape ---------------------------------------------------------------------------------
    @property
    def n_points(self) -> int:
        return int(self.points.shape[0])

    @property
    def n_cells(self) -> int:
        return int(self.cell_types.size)

    def cell_sizes(self) -> np.ndarray:
        return np.diff(self.offsets)

    def cells_of(self, types: set[int] | Sequence[int]) -> list[np.ndarray]:
        """Connectivity of the cells whose type is in ``types`` (list of index arrays)."""
        types = set(types)
        out = []
        for c in np.flatnonzero(np.isin(self.cell_types, list(types))):
            out.append(self.connectivity[self.offsets[c]:self.offsets[c + 1]])
        return out

    def is_triangle_mesh(self) -> bool:
        """All cells are triangles."""
        return self.n_cells > 0 and bool(np.all(self.cell_types == 5))

    @property
    def normals(self) -> np.ndarray | None:
        return self.point_data.get(self.normals_name) if self.normals_name else None

    @property
    def colors(self) -> np.ndarray | None:
        return self.point_data.get(self.colors_name) if self.colors_name else None

    def scalar_arrays(self) -> list[str]:
        """Names of one-component point arrays (candidates for Surface values)."""
        return [k for k, v in self.point_data.items()
                if k not in (self.normals_name, self.colors_name) and (np.ndim(v) == 1 or np.shape(v)[1] == 1)]

    # -- checks --------------------------------------------------------------------------------
    def check(self) -> None:
        """Raise ValueError for indices out of range, non-finite vertices, mis-sized arrays."""
        if self.connectivity.size:
            lo, hi = int(self.connectivity.min()), int(self.connectivity.max())
            if lo < 0 or hi >= self.n_points:
                raise ValueError(f"a cell refers to vertex {hi if hi >= self.n_points else lo}, "
                                 f"but the mesh has {self.n_points} vertices")
        if not np.all(np.isfinite(self.points)):
            bad = int(np.flatnonzero(~np.all(np.isfinite(self.points), axis=1))[0])
            raise ValueError(f"vertex {bad} is not a finite number (NaN or infinity)")
        for name, arr in self.point_data.items():
            if len(arr) != self.n_points:
                raise ValueError(f"point array {name!r} has {len(arr)} values for {self.n_points} points")
        for name, arr in self.cell_data.items():
            if len(arr) != self.n_cells:
                raise ValueError(f"cell array {name!r} has {len(arr)} values for {self.n_cells} cells")

    # -- display -------------------------------------------------------------------------------
    def triangles(self) -> np.ndarray:
        """(t, 3) triangles to show: polygons fan-triangulated, strips split, a volume mesh's outer surface."""
        tris: list[np.ndarray] = []
        sizes = self.cell_sizes()
        types = self.cell_types
        # Fast path: uniform triangles / quads.
        tri_mask = (types == 5) & (sizes == 3)
        if tri_mask.any():
            starts = self.offsets[:-1][tri_mask]
            tris.append(self.connectivity[starts[:, None] + np.arange(3)])
        poly_mask = np.isin(types, [7, 8, 9]) | ((types == 5) & (sizes != 3))
        if self.dataset == "unstructured_grid":
            faces = self._boundary_faces()
            for f in faces:
                tris.append(_fan(f))
        for c in np.flatnonzero(poly_mask):
            cell = self.connectivity[self.offsets[c]:self.offsets[c + 1]]
            if types[c] == 8:  # pixel: (0,1,3,2) order
                cell = cell[[0, 1, 3, 2]]
            if cell.size >= 3:
                tris.append(_fan([cell]))
        for c in np.flatnonzero(types == 6):
            cell = self.connectivity[self.offsets[c]:self.offsets[c + 1]]
            if cell.size >= 3:
                idx = np.arange(cell.size - 2)
                t = np.stack([cell[idx], cell[idx + 1], cell[idx + 2]], axis=1)
                t[1::2] = t[1::2][:, [1, 0, 2]]
                tris.append(t)
        for c in np.flatnonzero(np.isin(types, [22, 23])):
            n_corner = _QUADRATIC_CORNERS[int(types[c])][1]
            cell = self.connectivity[self.offsets[c]:self.offsets[c] + n_corner]
            tris.append(_fan([cell]))
        if not tris:
            return np.zeros((0, 3), dtype=np.int64)
        return np.concatenate(tris).astype(np.int64, copy=False)

    def _boundary_faces(self) -> list[np.ndarray]:
        faces: list[np.ndarray] = []
        for ctype in np.unique(self.cell_types):
            ctype = int(ctype)
            base, n_corner = _QUADRATIC_CORNERS.get(ctype, (ctype, None))
            if base not in _CELL_FACES:
                continue
            ids = np.flatnonzero(self.cell_types == ctype)
            starts = self.offsets[ids]
            n = n_corner or int(self.offsets[ids[0] + 1] - self.offsets[ids[0]])
            corners = self.connectivity[starts[:, None] + np.arange(n)]
            for face in _CELL_FACES[base]:
                faces.append(corners[:, face])
        if not faces:
            return []
        # A face on the boundary belongs to one cell only.
        by_size: dict[int, list[np.ndarray]] = {}
        for f in faces:
            by_size.setdefault(f.shape[1], []).append(f)
        out = []
        for _size, group in by_size.items():
            allf = np.concatenate(group)
            key = np.sort(allf, axis=1)
            _, inverse, counts = np.unique(key, axis=0, return_inverse=True, return_counts=True)
            out.append(allf[counts[inverse.reshape(-1)] == 1])
        return [f for f in out if f.size]

    # -- geometry ------------------------------------------------------------------------------
    def bounds(self) -> list[float]:
        """(xmin, xmax, ymin, ymax, zmin, zmax) in LPS mm (VTK's order); zeros for an empty mesh."""
        if self.n_points == 0:
            return [0.0] * 6
        lo, hi = self.points.min(axis=0), self.points.max(axis=0)
        return [float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1]), float(lo[2]), float(hi[2])]

    def transformed(self, matrix: np.ndarray) -> Model:
        """A copy with points (and normals) mapped by a 4x4 LPS matrix."""
        from dataclasses import replace

        m = np.asarray(matrix, dtype=float)
        pts = self.points @ m[:3, :3].T + m[:3, 3]
        pd = dict(self.point_data)
        if self.normals_name and self.normals_name in pd:
            n = np.asarray(pd[self.normals_name], dtype=float) @ np.linalg.inv(m[:3, :3])
            norm = np.linalg.norm(n, axis=1, keepdims=True)
            pd[self.normals_name] = (n / np.where(norm == 0, 1, norm)).astype(np.asarray(pd[self.normals_name]).dtype)
        return replace(self, points=pts, point_data=pd)

    def info(self) -> dict:
        """Summary for ``medio info --json``."""
        out = {
            "kind": DataKind.MODEL,
            "name": self.name,
            "dataset": self.dataset,
            "n_points": self.n_points,
            "n_cells": self.n_cells,
            "bounds": self.bounds(),
            "point_arrays": list(self.point_data),
            "cell_arrays": list(self.cell_data),
            "coordinate_system": self.coordinate_system,
        }
        if self.source:
            out["source"] = self.source
        return out


def _fan(polys: list[np.ndarray]) -> np.ndarray:
    """Fan-triangulate polygons given as equal- or mixed-size index arrays."""
    out = []
    if isinstance(polys, np.ndarray) or (polys and all(len(p) == len(polys[0]) for p in polys)):
        arr = np.asarray(polys)
        if arr.ndim == 2:
            k = arr.shape[1]
            for i in range(1, k - 1):
                out.append(np.stack([arr[:, 0], arr[:, i], arr[:, i + 1]], axis=1))
            return np.concatenate(out) if out else np.zeros((0, 3), np.int64)
    for p in polys:
        p = np.asarray(p)
        for i in range(1, len(p) - 1):
            out.append(np.array([[p[0], p[i], p[i + 1]]]))
    return np.concatenate(out) if out else np.zeros((0, 3), np.int64)


def triangle_model(points: Any, triangles: Any, **kwargs: Any) -> Model:
    """A triangle-mesh model."""
    return Model.from_faces(points, np.asarray(triangles).reshape(-1, 3), **kwargs)
