"""Image geometry in patient LPS millimetres, and its napari presentation.

This is the one module that builds affines (docs/architecture.md, section 1).  Conventions:

* A volume's voxel index is ``(i, j, k)`` with ``i`` the column, fastest on disk.
  Its LPS position is ``p = origin + direction @ diag(spacing) @ (i, j, k)``.
  ``direction`` is a square matrix whose *columns* are the unit vectors of the
  i, j, k axes in LPS (rows x=L, y=P, z=S), exactly as ITK / SimpleITK.
* Arrays are kept as stored, in NumPy order ``a[k, j, i]`` (SimpleITK's
  ``GetArrayFromImage``), so NumPy axis ``c`` is index axis ``n - 1 - c``.
* napari world coordinates are LPS written in reverse order: ``(S, P, L)``
  for 3D, ``(P, L)`` for 2D.  "napari order" below means that reversal.
* RAS differs from LPS by ``F = diag(-1, -1, 1)`` (negate x and y).

Everything is plain NumPy; no napari or Qt here.
"""
from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Geometry",
    "Placement",
    "LPS_TO_RAS",
    "lps_to_ras",
    "ras_to_lps",
    "flip_lps_ras_matrix",
    "reorient",
    "napari_affine",
    "napari_placement",
    "geometry_from_napari_affine",
    "resampled_onto_patient_axes",
    "lps_transform_to_napari",
    "WORLD_AXIS_LABELS",
]

#: RAS <-> LPS (its own inverse).
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])

#: napari axis labels of the LPS world for 2D and 3D spatial layers.
WORLD_AXIS_LABELS = {2: ("P", "L"), 3: ("S", "P", "L")}

#: Below this, a residual rotation entry is treated as exactly zero.
_ROTATION_EPS = 1e-12


def lps_to_ras(points: np.ndarray) -> np.ndarray:
    """Convert points (..., 3) between LPS and RAS (negate x and y); returns a new array."""
    out = np.array(points, dtype=float, copy=True)
    out[..., 0] *= -1.0
    out[..., 1] *= -1.0
    return out


ras_to_lps = lps_to_ras


def flip_lps_ras_matrix(matrix: np.ndarray) -> np.ndarray:
    """Convert a 4x4 LPS matrix to RAS or back (``F @ M @ F``)."""
    f = np.diag([-1.0, -1.0, 1.0, 1.0])
    return f @ np.asarray(matrix, dtype=float) @ f


def _reverse(n: int) -> np.ndarray:
    return np.eye(n)[::-1]


@dataclass(frozen=True, eq=False)
class Geometry:
    """Placement of a 2D or 3D voxel grid in patient LPS space (mm).

    ``spacing`` and ``origin`` have one entry per index axis (i, j, k);
    ``direction`` is ``ndim x ndim`` with the axis unit vectors as columns.
    """

    spacing: np.ndarray
    origin: np.ndarray
    direction: np.ndarray

    def __post_init__(self) -> None:
        spacing = np.array(self.spacing, dtype=float).reshape(-1)
        n = spacing.size
        origin = np.array(self.origin, dtype=float).reshape(-1)
        direction = np.array(self.direction, dtype=float)
        if n not in (2, 3):
            raise ValueError(f"geometry must be 2D or 3D, got {n} spacing values")
        if origin.size != n or direction.shape != (n, n):
            raise ValueError(
                f"inconsistent geometry: spacing {spacing.tolist()}, origin {origin.tolist()}, "
                f"direction shape {direction.shape}"
            )
        if not np.all(np.isfinite(spacing)) or np.any(spacing <= 0):
            raise ValueError(f"spacing must be finite and positive, got {spacing.tolist()}")
        if not (np.all(np.isfinite(origin)) and np.all(np.isfinite(direction))):
            raise ValueError("origin and direction must be finite")
        if abs(np.linalg.det(direction)) < 1e-9:
            raise ValueError(f"direction matrix is singular: {direction.tolist()}")
        for name, value in (("spacing", spacing), ("origin", origin), ("direction", direction)):
            value.setflags(write=False)
            object.__setattr__(self, name, value)

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def identity(cls, ndim: int = 3) -> Geometry:
        """Unit spacing, zero origin, identity direction."""
        return cls(np.ones(ndim), np.zeros(ndim), np.eye(ndim))

    @classmethod
    def from_index_to_lps(cls, matrix: np.ndarray) -> Geometry:
        """Geometry from an (n+1)x(n+1) matrix mapping (i, j, k, 1) to LPS."""
        m = np.asarray(matrix, dtype=float)
        n = m.shape[0] - 1
        linear = m[:n, :n]
        spacing = np.linalg.norm(linear, axis=0)
        if np.any(spacing <= 0):
            raise ValueError("index-to-LPS matrix has a zero column")
        return cls(spacing, m[:n, n], linear / spacing)

    @classmethod
    def from_index_to_ras(cls, matrix: np.ndarray) -> Geometry:
        """Geometry from a 4x4 matrix mapping (i, j, k, 1) to RAS (NIfTI, MRML)."""
        m = np.array(matrix, dtype=float)
        m[:2, :] *= -1.0
        return cls.from_index_to_lps(m)

    # -- derived --------------------------------------------------------------------------
    @property
    def ndim(self) -> int:
        """Number of spatial axes (2 or 3)."""
        return int(self.spacing.size)

    def index_to_lps_matrix(self) -> np.ndarray:
        """(n+1)x(n+1) matrix mapping (i, j, k, 1) to LPS (mm)."""
        n = self.ndim
        m = np.eye(n + 1)
        m[:n, :n] = self.direction * self.spacing
        m[:n, n] = self.origin
        return m

    def index_to_ras_matrix(self) -> np.ndarray:
        """4x4 matrix mapping (i, j, k, 1) to RAS (mm); 3D only."""
        if self.ndim != 3:
            return self.as_3d().index_to_ras_matrix()
        m = self.index_to_lps_matrix()
        m[:2, :] *= -1.0
        return m

    def index_to_lps(self, ijk: np.ndarray | Sequence[float]) -> np.ndarray:
        """LPS position (..., n) of continuous index (..., n) given in (i, j, k) order."""
        idx = np.asarray(ijk, dtype=float)
        return idx @ (self.direction * self.spacing).T + self.origin

    def lps_to_index(self, points: np.ndarray | Sequence[float]) -> np.ndarray:
        """Continuous (i, j, k) index of LPS points (..., n)."""
        p = np.asarray(points, dtype=float) - self.origin
        return p @ np.linalg.inv(self.direction * self.spacing).T

    def is_orthonormal(self, tol: float = 1e-6) -> bool:
        """True when the direction matrix is a rotation or reflection."""
        d = self.direction
        return bool(np.allclose(d.T @ d, np.eye(self.ndim), atol=tol))

    def is_axis_aligned(self, tol: float = 1e-6) -> bool:
        """True when every index axis runs along a patient axis (a signed permutation)."""
        d = np.abs(self.direction)
        return bool(np.all((d < tol) | (np.abs(d - 1.0) < tol)))

    def as_3d(self) -> Geometry:
        """A 3D geometry (a 2D one becomes a single slice at z = 0, k spacing 1)."""
        if self.ndim == 3:
            return self
        d = np.eye(3)
        d[:2, :2] = self.direction
        return Geometry(np.r_[self.spacing, 1.0], np.r_[self.origin, 0.0], d)

    def almost_equal(self, other: Geometry, tol: float = 1e-6) -> bool:
        """Same spacing, origin and direction within ``tol``."""
        return (
            self.ndim == other.ndim
            and np.allclose(self.spacing, other.spacing, atol=tol, rtol=0)
            and np.allclose(self.origin, other.origin, atol=tol, rtol=0)
            and np.allclose(self.direction, other.direction, atol=tol, rtol=0)
        )

    def to_dict(self) -> dict:
        """Plain-Python form: spacing (i, j, k), origin (LPS), direction rows (x, y, z)."""
        return {
            "spacing": self.spacing.tolist(),
            "origin": self.origin.tolist(),
            "direction": self.direction.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict) -> Geometry:
        """Inverse of :meth:`to_dict`."""
        return cls(d["spacing"], d["origin"], d["direction"])

    def __repr__(self) -> str:
        return (
            f"Geometry(spacing={np.round(self.spacing, 6).tolist()}, "
            f"origin={np.round(self.origin, 6).tolist()}, "
            f"direction={np.round(self.direction, 6).tolist()})"
        )


# -- axis reordering ---------------------------------------------------------------------
def reorient(
    geometry: Geometry, spatial_shape: Sequence[int], order: Sequence[int], flips: Sequence[bool]
) -> Geometry:
    """Geometry of ``b = flip(a.transpose(order), flips)`` for a spatial array ``a``.

    ``order`` and ``flips`` are in NumPy axis order (axis 0 = k): result axis ``r``
    is input axis ``order[r]``, reversed when ``flips[r]``.  The voxels keep their
    LPS positions; only their indexing changes.
    """
    n = geometry.ndim
    rev = _reverse(n)
    # Columns in NumPy order: G[:, c] is the LPS step of NumPy axis c.
    g = (geometry.direction * geometry.spacing) @ rev
    q = np.zeros((n, n))
    f = np.zeros(n)
    for r, c in enumerate(order):
        if flips[r]:
            q[c, r] = -1.0
            f[c] = spatial_shape[c] - 1
        else:
            q[c, r] = 1.0
    new_g = g @ q
    new_origin = geometry.origin + g @ f
    return Geometry.from_index_to_lps(_affine(new_g @ rev, new_origin))


def _affine(linear: np.ndarray, offset: np.ndarray) -> np.ndarray:
    n = linear.shape[0]
    m = np.eye(n + 1)
    m[:n, :n] = linear
    m[:n, n] = offset
    return m


def napari_affine(geometry: Geometry) -> np.ndarray:
    """(n+1)x(n+1) affine from the NumPy index ``a[k, j, i]`` to napari world (S, P, L)."""
    n = geometry.ndim
    rev = _reverse(n)
    return _affine(rev @ (geometry.direction * geometry.spacing) @ rev, rev @ geometry.origin)


def lps_transform_to_napari(matrix_lps: np.ndarray, ndim: int = 3) -> np.ndarray:
    """A 4x4 LPS -> LPS world transform as a napari (ndim+1)^2 world matrix.

    The 3D block acts on the trailing (S, P, L) axes; leading (time, channel) axes
    are left alone.  Use it as a layer's ``affine`` to move the layer in the world.
    """
    m = np.asarray(matrix_lps, dtype=float)
    if m.shape != (4, 4):
        raise ValueError(f"expected a 4x4 LPS matrix, got shape {m.shape}")
    if ndim < 3:
        raise ValueError("a 3D transform cannot act on a 2D layer")
    rev = _reverse(3)
    out = np.eye(ndim + 1)
    k = ndim - 3
    out[k:ndim, k:ndim] = rev @ m[:3, :3] @ rev
    out[k:ndim, ndim] = rev @ m[:3, 3]
    return out


@dataclass(frozen=True)
class Placement:
    """How the napari adapter shows a spatial array: a view plus a layer transform.

    The layer shows ``view = flip(array.transpose(order), flips)`` (NumPy spatial
    axes only; a view, never a copy) with napari ``scale``, ``translate`` and a
    residual ``rotation`` (the layer's linear ``affine``; identity unless the
    acquisition is oblique).  World = rotation @ (scale * v + translate).
    """

    order: tuple[int, ...]
    flips: tuple[bool, ...]
    scale: np.ndarray
    translate: np.ndarray
    rotation: np.ndarray
    view_geometry: Geometry

    @property
    def is_oblique(self) -> bool:
        """True when a rotation remains after the axis permutation and flips."""
        return not np.array_equal(self.rotation, np.eye(self.rotation.shape[0]))

    @property
    def is_identity_view(self) -> bool:
        """True when the view is the array itself (no transpose, no flip)."""
        return tuple(self.order) == tuple(range(len(self.order))) and not any(self.flips)


def _best_axis_assignment(cosines: np.ndarray) -> tuple[tuple[int, ...], tuple[bool, ...]]:
    """Permutation ``order`` (view axis r <- array axis order[r]) maximising alignment."""
    n = cosines.shape[0]
    best: tuple[int, ...] = tuple(range(n))
    best_score = -1.0
    for perm in itertools.permutations(range(n)):
        score = float(sum(abs(cosines[r, perm[r]]) for r in range(n)))
        if score > best_score + 1e-12:
            best, best_score = perm, score
    flips = tuple(bool(cosines[r, best[r]] < 0) for r in range(n))
    return best, flips


def napari_placement(geometry: Geometry, spatial_shape: Sequence[int]) -> Placement:
    """Choose the transpose/flip that brings the array nearest to (S, P, L), and the transform.

    Axial, coronal and sagittal acquisitions (direction a signed permutation) get an
    identity rotation, so napari slices them exactly in every 2D orientation.
    """
    n = geometry.ndim
    if len(spatial_shape) != n:
        raise ValueError(f"spatial shape {tuple(spatial_shape)} does not match a {n}D geometry")
    rev = _reverse(n)
    cosines = rev @ geometry.direction @ rev  # napari-order world axes x NumPy-order array axes
    order, flips = _best_axis_assignment(cosines)
    view = reorient(geometry, spatial_shape, order, flips)
    rotation = rev @ view.direction @ rev
    rotation = np.where(np.abs(rotation) < _ROTATION_EPS, 0.0, rotation)
    if np.allclose(rotation, np.eye(n), atol=_ROTATION_EPS, rtol=0):
        rotation = np.eye(n)
    scale = rev @ view.spacing
    offset = rev @ view.origin
    translate = np.linalg.solve(rotation, offset)
    return Placement(tuple(order), tuple(flips), scale, translate, rotation, view)


def geometry_from_napari_affine(matrix: np.ndarray) -> Geometry:
    """Geometry of a layer's spatial data from its (n+1)x(n+1) data-to-world affine.

    ``matrix`` maps the layer's NumPy index (napari order) to world (S, P, L); any
    scale, rotation, shear or translation is allowed (shear makes the direction
    non-orthogonal, which NRRD and NIfTI sform can hold and others may refuse).
    """
    m = np.asarray(matrix, dtype=float)
    n = m.shape[0] - 1
    rev = _reverse(n)
    return Geometry.from_index_to_lps(_affine(rev @ m[:n, :n] @ rev, rev @ m[:n, n]))


def resampled_onto_patient_axes(geometry: Geometry, spatial_shape: Sequence[int]) -> tuple[Geometry, tuple[int, ...]]:
    """An axis-aligned grid covering an oblique volume: its geometry and NumPy shape.

    The grid's axes are the patient axes nearest to the volume's own (same
    handedness choice as :func:`napari_placement`), with the volume's spacing
    along them, so no resolution is lost.  The caller resamples the voxels.
    """
    n = geometry.ndim
    placement = napari_placement(geometry, spatial_shape)
    view = placement.view_geometry
    rev = _reverse(n)
    view_shape = [spatial_shape[c] for c in placement.order]
    # Corners of the view grid in LPS.
    corners_idx = np.array(list(itertools.product(*[(0, s - 1) for s in view_shape[::-1]])), dtype=float)
    corners = view.index_to_lps(corners_idx)
    direction = np.eye(n)
    for axis in range(n):  # axis-aligned direction matching the view's orientation signs
        direction[:, axis] = 0.0
        dominant = int(np.argmax(np.abs(view.direction[:, axis])))
        direction[dominant, axis] = 1.0 if view.direction[dominant, axis] >= 0 else -1.0
    spacing = view.spacing.copy()
    idx = corners @ np.linalg.inv(direction * spacing).T
    lo = idx.min(axis=0)
    hi = idx.max(axis=0)
    size = np.maximum(np.ceil(hi - lo - 1e-6).astype(int) + 1, 1)
    origin = (direction * spacing) @ lo
    out = Geometry(spacing, origin, direction)
    return out, tuple(int(s) for s in (rev @ size))


def iter_world_axes(ndim: int) -> Iterable[str]:
    """Labels of the napari world axes for a spatial dimension."""
    return WORLD_AXIS_LABELS[ndim]
