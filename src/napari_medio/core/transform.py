"""Spatial transforms (Slicer's linear, grid, b-spline, thin-plate and composite transforms).

Conventions (models-transforms.md):

* Everything is patient **LPS** mm, as ITK files store it.
* Two directions, always named explicitly:

  - **from parent** ("resampling"): maps a point of the parent (world/fixed)
    frame into the child (moving) frame.  This is what ITK transform files and
    displacement-field images hold, and what image resampling needs.
  - **to parent** ("modeling"): moves the child into the parent frame, the
    matrix Slicer shows (``matrixTransformToParent``, in RAS there).  Points,
    models and a layer's affine use it.

  For a linear transform ``matrix_to_parent_lps == inv(matrix_from_parent_lps)``.

* ``stored_direction`` says which of the two the data in the object describes
  (files are "from_parent" except Slicer NRRD fields marked ``modeling``).

SimpleITK is imported lazily; no napari here.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .errors import MedioError
from .geometry import Geometry, flip_lps_ras_matrix
from .grid_interpolation import cubic_displacement
from .kinds import DataKind
from .volume import Volume

__all__ = ["TRANSFORM_TYPES", "Transform", "ThinPlateSpline", "matrix_from_sitk_linear", "resample_volume"]

TRANSFORM_TYPES = ("linear", "bspline", "thinplate", "grid", "composite")

#: How a grid transform's displacement is interpolated between its nodes: ``cubic`` as Slicer
#: (``vtkOrientedGridTransform``), ``linear`` as ITK's ``DisplacementFieldTransform``.
GRID_INTERPOLATIONS = ("cubic", "linear")


def _check_matrix(m: Any, what: str = "matrix") -> np.ndarray:
    a = np.asarray(m, dtype=float)
    if a.shape != (4, 4):
        raise ValueError(f"{what} must be 4x4, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{what} has non-finite entries")
    if not np.allclose(a[3], [0, 0, 0, 1], atol=1e-12):
        raise ValueError(f"{what} is not affine (last row {a[3].tolist()})")
    if abs(np.linalg.det(a[:3, :3])) < 1e-12:
        raise ValueError(f"{what} is not invertible (determinant {np.linalg.det(a[:3, :3]):.3g})")
    return a


def matrix_from_sitk_linear(tx: Any) -> np.ndarray:
    """4x4 LPS matrix of any linear SimpleITK transform (rigid, versor, similarity, affine, ...).

    Evaluated from the transform itself (origin and unit vectors), so every ITK
    linear class and any centre of rotation is handled the same way.
    """
    o = np.array(tx.TransformPoint((0.0, 0.0, 0.0)))
    m = np.eye(4)
    for i in range(3):
        e = [0.0, 0.0, 0.0]
        e[i] = 1.0
        m[:3, i] = np.array(tx.TransformPoint(tuple(e))) - o
    m[:3, 3] = o
    return m


class ThinPlateSpline:
    """ITK's ``ThinPlateSplineKernelTransform`` (3D, kernel ``G(r) = |r| I``), which SimpleITK lacks.

    Maps each source landmark exactly onto its target landmark:
    ``T(x) = x + sum_i w_i |x - p_i| + A x + b`` with the weights and affine part from
    ITK's linear system (stiffness 0).  In an ITK file, ``Parameters`` are the
    source landmarks and ``FixedParameters`` the targets (x1 y1 z1 x2 ...), as
    ``itk::KernelTransform`` keeps them.  It offers the
    part of the SimpleITK transform interface the rest of napari-medio uses
    (``TransformPoint``, ``GetName``, parameter getters) and
    :meth:`displacement_field`, so SimpleITK can resample through it.
    """

    def __init__(self, source: Any, target: Any) -> None:
        src = np.asarray(source, dtype=float).reshape(-1, 3)
        tgt = np.asarray(target, dtype=float).reshape(-1, 3)
        if src.shape != tgt.shape:
            raise ValueError(f"{len(src)} source but {len(tgt)} target landmarks")
        if not len(src):
            raise ValueError("a thin-plate spline needs landmarks")
        if not (np.all(np.isfinite(src)) and np.all(np.isfinite(tgt))):
            raise ValueError("landmarks must be finite numbers")
        self.source, self.target = src, tgt
        n = len(src)
        k = np.linalg.norm(src[:, None, :] - src[None, :, :], axis=-1)
        pm = np.column_stack([src, np.ones(n)])
        lhs = np.zeros((n + 4, n + 4))
        lhs[:n, :n], lhs[:n, n:], lhs[n:, :n] = k, pm, pm.T
        rhs = np.zeros((n + 4, 3))
        rhs[:n] = tgt - src
        sol = np.linalg.lstsq(lhs, rhs, rcond=None)[0]  # ITK solves with an SVD too (minimum norm when degenerate)
        self._w, self._a = sol[:n], sol[n:]

    def transform_points(self, points: Any, chunk: int = 65536) -> np.ndarray:
        """``T`` at many points (N, 3), vectorised."""
        pts = np.asarray(points, dtype=float).reshape(-1, 3)
        out = np.empty_like(pts)
        for s in range(0, len(pts), chunk):
            q = pts[s:s + chunk]
            r = np.linalg.norm(q[:, None, :] - self.source[None, :, :], axis=-1)
            out[s:s + chunk] = q + r @ self._w + q @ self._a[:3] + self._a[3]
        return out

    # -- the SimpleITK-like interface -------------------------------------------------------------
    def TransformPoint(self, point: Any) -> tuple:  # noqa: N802 - SimpleITK's name
        return tuple(float(v) for v in self.transform_points(point)[0])

    def GetName(self) -> str:  # noqa: N802
        return "ThinPlateSplineKernelTransform"

    def IsLinear(self) -> bool:  # noqa: N802
        return False

    def GetParameters(self) -> tuple:  # noqa: N802
        return tuple(self.source.reshape(-1).tolist())

    def GetFixedParameters(self) -> tuple:  # noqa: N802
        return tuple(self.target.reshape(-1).tolist())

    def GetNumberOfParameters(self) -> int:  # noqa: N802
        return int(self.source.size)

    def GetNumberOfFixedParameters(self) -> int:  # noqa: N802
        return int(self.source.size)

    def displacement_field(self, geometry: Geometry, shape: tuple) -> Any:
        """A SimpleITK displacement-field transform equal to ``T`` at every voxel centre of the grid."""
        return displacement_field_of(self.transform_points, geometry, shape)


def displacement_field_of(mapping: Any, geometry: Geometry, shape: tuple) -> Any:
    """A SimpleITK displacement-field transform equal to ``mapping`` (LPS points -> LPS points)
    at every voxel centre of the grid ``geometry`` / ``shape`` (NumPy order)."""
    import SimpleITK as sitk

    nk, nj, ni = (int(s) for s in shape)
    kk, jj, ii = np.meshgrid(np.arange(nk), np.arange(nj), np.arange(ni), indexing="ij")
    idx = np.column_stack([ii.ravel(), jj.ravel(), kk.ravel()]).astype(float)
    m = geometry.index_to_lps_matrix()
    pts = idx @ m[:3, :3].T + m[:3, 3]
    disp = (np.asarray(mapping(pts), dtype=float) - pts).reshape(nk, nj, ni, 3)
    img = sitk.GetImageFromArray(disp, isVector=True)
    img.SetSpacing(geometry.spacing.tolist())
    img.SetOrigin(geometry.origin.tolist())
    img.SetDirection(geometry.direction.reshape(-1).tolist())
    return sitk.DisplacementFieldTransform(sitk.Cast(img, sitk.sitkVectorFloat64))


@dataclass
class Transform:
    """A transform between a child frame and its parent, in LPS.

    ``type`` is one of :data:`TRANSFORM_TYPES`.  Linear transforms hold
    ``matrix`` (4x4, LPS) in ``stored_direction``; b-spline and thin-plate
    transforms hold their SimpleITK object (``itk``: a from-parent transform);
    grid transforms hold ``displacement`` (a 3-component Volume of LPS
    displacement vectors on an LPS grid, interpolated between nodes as
    ``interpolation`` says: ``cubic`` as Slicer maps points, by default, or
    ``linear`` as ITK); composite transforms hold
    ``components`` in ITK order (the last one is applied first when
    resampling).
    """

    type: str
    name: str = ""
    matrix: np.ndarray | None = None
    stored_direction: str = "from_parent"
    itk: Any = None
    displacement: Volume | None = None
    components: list[Transform] = field(default_factory=list)
    metadata: dict = field(default_factory=dict)
    source: str | None = None
    kind: DataKind = DataKind.TRANSFORM
    interpolation: str = "cubic"

    def __post_init__(self) -> None:
        if self.type not in TRANSFORM_TYPES:
            raise ValueError(f"unknown transform type {self.type!r}; expected one of {TRANSFORM_TYPES}")
        if self.interpolation not in GRID_INTERPOLATIONS:
            raise ValueError(f"unknown grid interpolation {self.interpolation!r}; expected one of "
                             f"{GRID_INTERPOLATIONS}")
        if self.stored_direction not in ("from_parent", "to_parent"):
            raise ValueError(f"stored_direction must be 'from_parent' or 'to_parent', got {self.stored_direction!r}")
        if self.type == "linear":
            if self.matrix is None:
                raise ValueError("a linear transform needs a 4x4 matrix")
            self.matrix = _check_matrix(self.matrix)
        if self.type == "grid" and self.displacement is not None and self.displacement.n_components != 3:
            raise ValueError("a displacement field needs 3 components per voxel")

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_matrix_to_parent(cls, matrix_lps: Any, name: str = "", ras: bool = False) -> Transform:
        """A linear transform from its to-parent (modeling) matrix; ``ras=True`` for Slicer's RAS matrix."""
        m = _check_matrix(matrix_lps)
        if ras:
            m = flip_lps_ras_matrix(m)
        return cls("linear", name=name, matrix=m, stored_direction="to_parent")

    @classmethod
    def from_matrix_from_parent(cls, matrix_lps: Any, name: str = "") -> Transform:
        """A linear transform from its from-parent (resampling, ITK file) matrix."""
        return cls("linear", name=name, matrix=_check_matrix(matrix_lps), stored_direction="from_parent")

    @classmethod
    def from_sitk(cls, tx: Any, name: str = "") -> Transform:
        """Wrap a SimpleITK transform read from an ITK file (from-parent, LPS)."""
        import SimpleITK as sitk

        tx = tx.Downcast() if hasattr(tx, "Downcast") else tx
        cls_name = tx.GetName()
        if cls_name == "CompositeTransform":
            comp = sitk.CompositeTransform(tx)
            parts = [cls.from_sitk(comp.GetNthTransform(i)) for i in range(comp.GetNumberOfTransforms())]
            if len(parts) == 1:
                parts[0].name = name
                return parts[0]
            return cls("composite", name=name, components=parts)
        if tx.IsLinear():
            return cls.from_matrix_from_parent(matrix_from_sitk_linear(tx), name=name)
        if cls_name.startswith("BSpline"):
            return cls("bspline", name=name, itk=tx)
        if "ThinPlate" in cls_name or "KernelTransform" in cls_name:
            return cls("thinplate", name=name, itk=tx)
        if cls_name == "DisplacementFieldTransform":
            field_img = sitk.DisplacementFieldTransform(tx).GetDisplacementField()
            from .itk_image import volume_from_sitk

            return cls("grid", name=name, displacement=volume_from_sitk(field_img, name=name))
        raise MedioError(None, f"unsupported ITK transform class {cls_name}")

    # -- linear ---------------------------------------------------------------------------------
    @property
    def is_linear(self) -> bool:
        """True for a linear transform, or a composite of linear transforms only."""
        if self.type == "composite":
            return all(c.is_linear for c in self.components)
        return self.type == "linear"

    @property
    def matrix_from_parent_lps(self) -> np.ndarray:
        """4x4 LPS resampling matrix (parent point -> child point); linear transforms only."""
        if self.type == "composite" and self.is_linear:
            m = np.eye(4)
            for c in self.components:  # ITK: the last component is applied first
                m = m @ c.matrix_from_parent_lps
            return m
        if self.type != "linear":
            raise MedioError(self.source, f"a {self.type} transform has no matrix")
        assert self.matrix is not None
        return self.matrix.copy() if self.stored_direction == "from_parent" else np.linalg.inv(self.matrix)

    @property
    def matrix_to_parent_lps(self) -> np.ndarray:
        """4x4 LPS modeling matrix: moves the child into the parent frame."""
        if self.type == "linear" and self.stored_direction == "to_parent":
            assert self.matrix is not None
            return self.matrix.copy()
        return np.linalg.inv(self.matrix_from_parent_lps)

    @property
    def matrix_to_parent_ras(self) -> np.ndarray:
        """The matrix Slicer shows and writes in a scene (``matrixTransformToParent``, RAS)."""
        return flip_lps_ras_matrix(self.matrix_to_parent_lps)

    def inverse(self) -> Transform:
        """The inverse transform (linear, or grids/others by swapping the stored direction)."""
        if self.type == "linear":
            return Transform.from_matrix_from_parent(self.matrix_to_parent_lps, name=f"{self.name} inverse")
        flipped = "to_parent" if self.stored_direction == "from_parent" else "from_parent"
        return replace(self, stored_direction=flipped, name=f"{self.name} inverse")

    def as_linear(self) -> Transform:
        """A single linear transform equal to this one (composites of linear parts collapse)."""
        if self.type == "linear":
            return self
        if self.is_linear:
            return Transform.from_matrix_from_parent(self.matrix_from_parent_lps, name=self.name)
        raise MedioError(self.source, f"a {self.type} transform is not linear")

    # -- SimpleITK -----------------------------------------------------------------------------
    def to_sitk(self) -> Any:
        """The SimpleITK from-parent (resampling) transform."""
        import SimpleITK as sitk

        if self.type == "linear":
            m = self.matrix_from_parent_lps
            tx = sitk.AffineTransform(3)
            tx.SetMatrix(m[:3, :3].reshape(-1).tolist())
            tx.SetTranslation(m[:3, 3].tolist())
            return tx
        if self.type == "composite":
            comp = sitk.CompositeTransform(3)
            for c in self.components:
                part = c.to_sitk()
                if isinstance(part, ThinPlateSpline):
                    raise MedioError(self.source, "a composite holding a thin-plate spline has no SimpleITK form: "
                                                  "resample through resample_volume, which samples it on the grid")
                comp.AddTransform(part)
            return comp
        if self.type == "grid":
            from .itk_image import volume_to_sitk

            assert self.displacement is not None
            img = sitk.Cast(volume_to_sitk(self.displacement), sitk.sitkVectorFloat64)
            if self.stored_direction == "to_parent":
                img = sitk.InvertDisplacementField(img, maximumNumberOfIterations=50,
                                                   maxErrorToleranceThreshold=0.01, meanErrorToleranceThreshold=1e-4,
                                                   enforceBoundaryCondition=False)
            return sitk.DisplacementFieldTransform(img)
        if self.itk is None:
            raise MedioError(self.source, f"{self.type} transform has no ITK data")
        if self.stored_direction == "to_parent":
            raise MedioError(self.source, f"a to-parent {self.type} transform cannot be used for resampling")
        return self.itk

    # -- points ----------------------------------------------------------------------------------
    def transform_points_from_parent(self, points_lps: Any) -> np.ndarray:
        """Map parent-frame LPS points into the child frame (the resampling direction)."""
        pts = np.asarray(points_lps, dtype=float).reshape(-1, 3)
        if self.is_linear:
            m = self.matrix_from_parent_lps
            return pts @ m[:3, :3].T + m[:3, 3]
        if self._is_grid():
            if self.stored_direction == "from_parent":
                return self._grid_forward(pts)
            return invert_points(self._grid_forward, pts)
        if self.type == "composite" and self._has_thinplate():
            for c in reversed(self.components):  # ITK order: the last component is applied first
                pts = c.transform_points_from_parent(pts)
            return pts
        tx = self.to_sitk()
        if isinstance(tx, ThinPlateSpline):
            return tx.transform_points(pts)
        return np.array([tx.TransformPoint(tuple(map(float, p))) for p in pts]).reshape(-1, 3)

    def transform_points_to_parent(self, points_lps: Any, tol: float = 1e-6, max_iter: int = 50) -> np.ndarray:
        """Move child-frame LPS points into the parent frame (how points and models follow a transform).

        Linear: the to-parent matrix.  Non-linear: the from-parent transform is
        inverted point by point (Newton iterations with a numerical Jacobian).
        """
        pts = np.asarray(points_lps, dtype=float).reshape(-1, 3)
        if self.is_linear:
            m = self.matrix_to_parent_lps
            return pts @ m[:3, :3].T + m[:3, 3]
        if self.type == "grid" and self.stored_direction == "to_parent":
            forward = replace(self, stored_direction="from_parent")
            return forward.transform_points_from_parent(pts)
        if self._is_grid():
            return invert_points(self._grid_forward, pts, tol)
        if self.type == "composite" and self._has_thinplate():
            def f(q: np.ndarray) -> np.ndarray:
                return self.transform_points_from_parent(q[None, :])[0]
        else:
            tx = self.to_sitk()

            def f(q: np.ndarray) -> np.ndarray:
                return np.array(tx.TransformPoint(tuple(map(float, q))))

        out = np.empty_like(pts)
        h = 1e-3
        for n, target in enumerate(pts):
            q = target.copy()
            for _ in range(max_iter):
                r = f(q) - target
                if np.linalg.norm(r) < tol:
                    break
                jac = np.column_stack([(f(q + h * e) - f(q - h * e)) / (2 * h) for e in np.eye(3)])
                try:
                    q = q - np.linalg.solve(jac, r)
                except np.linalg.LinAlgError:
                    q = q - r
            out[n] = q
        return out

    def _is_grid(self) -> bool:
        return self.type == "grid" and self.displacement is not None

    def _is_cubic_grid(self) -> bool:
        return self._is_grid() and self.interpolation == "cubic"

    def _grid_forward(self, points_lps: np.ndarray) -> np.ndarray:
        """Points plus the stored displacement (the stored direction), interpolated as ``interpolation`` says."""
        assert self.displacement is not None
        if self.interpolation == "cubic":
            return points_lps + cubic_displacement(self.displacement.array, self.displacement.geometry, points_lps)
        tx = replace(self, stored_direction="from_parent").to_sitk()
        return np.array([tx.TransformPoint(tuple(map(float, p))) for p in points_lps]).reshape(-1, 3)

    def _has_thinplate(self) -> bool:
        return any(c.type == "thinplate" or (c.type == "composite" and c._has_thinplate())
                   for c in self.components)

    def apply_to_geometry(self, geometry: Geometry) -> Geometry:
        """The geometry of a volume moved by this linear transform (no resampling)."""
        g = geometry.as_3d()
        return Geometry.from_index_to_lps(self.matrix_to_parent_lps @ g.index_to_lps_matrix())

    # -- summary ----------------------------------------------------------------------------------
    def info(self) -> dict:
        """Summary for ``medio info --json``."""
        out: dict = {"kind": DataKind.TRANSFORM, "type": self.type, "name": self.name,
                     "stored_direction": self.stored_direction}
        if self.is_linear:
            out["matrix_to_parent_lps"] = self.matrix_to_parent_lps.tolist()
            out["matrix_from_parent_lps"] = self.matrix_from_parent_lps.tolist()
            out["matrix_to_parent_ras"] = self.matrix_to_parent_ras.tolist()
        if self.type == "composite":
            out["components"] = [c.info() for c in self.components]
        if self.type == "grid" and self.displacement is not None:
            out["grid"] = {"shape": list(self.displacement.spatial_shape), **self.displacement.geometry.to_dict()}
        if self.itk is not None:
            out["itk_class"] = self.itk.GetName()
            out["n_parameters"] = int(self.itk.GetNumberOfParameters())
        if self.source:
            out["source"] = self.source
        return out


def invert_points(forward: Any, targets: Any, tol: float = 1e-6, max_iter: int = 50) -> np.ndarray:
    """Points ``q`` with ``forward(q) == targets`` (N, 3), by Newton iterations with a numerical Jacobian,
    all points at once; ``forward`` maps (N, 3) arrays."""
    targets = np.asarray(targets, dtype=float).reshape(-1, 3)
    q = targets.copy()
    h = 1e-3
    for _ in range(max_iter):
        r = forward(q) - targets
        todo = np.linalg.norm(r, axis=1) >= tol
        if not todo.any():
            break
        qt = q[todo]
        jac = np.stack([(forward(qt + h * e) - forward(qt - h * e)) / (2 * h) for e in np.eye(3)], axis=2)
        try:
            q[todo] = qt - np.linalg.solve(jac, r[todo][:, :, None])[:, :, 0]
        except np.linalg.LinAlgError:
            q[todo] = qt - r[todo]
    return q


def resample_volume(volume: Volume, transform: Transform, reference: Geometry | None = None,
                    shape: tuple | None = None) -> Volume:
    """``volume`` resampled through ``transform`` (SimpleITK) onto ``reference`` (default: its own grid).

    The output voxel at parent position p takes the input value at
    ``from_parent(p)``: the volume (in the child frame) is shown in the parent
    frame.  Linear interpolation for images, nearest neighbour for label maps.
    """
    import SimpleITK as sitk

    ref_geom = reference or volume.geometry
    ref_shape = tuple(shape or volume.spatial_shape)
    if volume.geometry.ndim != 3:
        raise MedioError(volume.source, "only 3D volumes can be resampled through a transform")
    if (transform.type == "composite" and transform._has_thinplate()) or transform._is_cubic_grid():
        # SimpleITK has no thin-plate spline and interpolates fields linearly only: the transform sampled
        # as a field on the output grid
        tx = displacement_field_of(transform.transform_points_from_parent, ref_geom.as_3d(), ref_shape)
    else:
        tx = transform.to_sitk()
    if isinstance(tx, ThinPlateSpline):  # SimpleITK has no thin-plate spline: its field on the output grid
        ref_geom3 = ref_geom.as_3d()
        tx = tx.displacement_field(ref_geom3, ref_shape)
    arr = np.asarray(volume.array)
    is_label = volume.kind == DataKind.LABELMAP
    interp = sitk.sitkNearestNeighbor if is_label else sitk.sitkLinear
    lead = arr.shape[: len(volume.extra_axes)]
    comp = arr.shape[len(lead) + 3:]
    out = np.zeros(lead + ref_shape + comp, dtype=arr.dtype)
    ref = sitk.Image([int(s) for s in ref_shape[::-1]], sitk.sitkUInt8)
    ref.SetSpacing(ref_geom.spacing.tolist())
    ref.SetOrigin(ref_geom.origin.tolist())
    ref.SetDirection(ref_geom.direction.reshape(-1).tolist())
    for index in np.ndindex(*lead) if lead else [()]:
        img = sitk.GetImageFromArray(np.ascontiguousarray(arr[index]), isVector=bool(comp))
        img.SetSpacing(volume.geometry.spacing.tolist())
        img.SetOrigin(volume.geometry.origin.tolist())
        img.SetDirection(volume.geometry.direction.reshape(-1).tolist())
        res = sitk.Resample(img, ref, tx, interp, 0.0, img.GetPixelID())
        out[index] = sitk.GetArrayFromImage(res)
    return volume.with_array(out, geometry=ref_geom)
