"""The Volume data object: voxels in NumPy order plus their LPS geometry.

A :class:`Volume` is what every image reader returns and every image writer
takes.  Array layout (docs/architecture.md, section 1)::

    array[extra..., k, j, i, (component)]

* ``extra`` -- zero or more leading non-spatial axes (time, sequence, list),
  described by :attr:`Volume.extra_axes`;
* ``k, j, i`` -- the 2 or 3 spatial axes, as stored (``i`` fastest on disk);
* ``component`` -- an optional trailing axis of voxel components (RGB, vectors,
  DWI gradients) when :attr:`Volume.components` is set, as SimpleITK gives it.

The array may be a NumPy array, a memory map or any lazy array (dask, zarr)
with ``shape``, ``dtype`` and NumPy indexing.  Voxel types are kept as stored.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .geometry import Geometry
from .kinds import VOLUME_KINDS, DataKind

__all__ = ["AxisInfo", "DisplayWindow", "Volume", "VOLUME_KINDS"]



@dataclass
class AxisInfo:
    """A non-spatial axis (time, sequence item, list, component).

    ``values`` holds one entry per index along the axis when the file states them
    (times, b-values, sequence index values); ``kind`` is the NRRD-style kind
    ("time", "list", "vector", "RGB-color", ...).
    """

    name: str = "axis"
    unit: str = ""
    values: list | None = None
    kind: str = "list"

    def to_dict(self) -> dict:
        """Plain-Python form for JSON."""
        return {"name": self.name, "unit": self.unit, "values": self.values, "kind": self.kind}


@dataclass(frozen=True)
class DisplayWindow:
    """A display window in stored voxel values: ``center`` and ``width`` as DICOM states them.

    Voxels from :attr:`lower` to :attr:`upper` span black to white.  DICOM's
    WindowCenter/WindowWidth, NIfTI's cal_min/cal_max, OME-Zarr's omero window and
    a Slicer display node's level/window all map onto this one field.
    """

    center: float
    width: float

    def __post_init__(self) -> None:
        center, width = float(self.center), float(self.width)
        if not (math.isfinite(center) and math.isfinite(width) and width > 0):
            raise ValueError(f"a display window needs a finite center and a positive width, "
                             f"not center={self.center!r}, width={self.width!r}")
        object.__setattr__(self, "center", center)
        object.__setattr__(self, "width", width)

    @classmethod
    def from_range(cls, lower: float, upper: float) -> DisplayWindow:
        """The window spanning ``lower`` .. ``upper`` (``upper > lower``)."""
        lower, upper = float(lower), float(upper)
        return cls(center=(lower + upper) / 2.0, width=upper - lower)

    @classmethod
    def from_dict(cls, value: Any) -> DisplayWindow | None:
        """The window a ``{"center", "width"}`` mapping (as :meth:`to_dict` gives) holds, or None."""
        try:
            return cls(float(value["center"]), float(value["width"]))
        except (KeyError, TypeError, ValueError):
            return None

    @property
    def lower(self) -> float:
        """The value shown black."""
        return self.center - self.width / 2.0

    @property
    def upper(self) -> float:
        """The value shown white."""
        return self.center + self.width / 2.0

    @property
    def limits(self) -> tuple[float, float]:
        """(lower, upper): what napari calls contrast limits."""
        return self.lower, self.upper

    def to_dict(self) -> dict:
        """Plain-Python form for JSON."""
        return {"center": self.center, "width": self.width}


@dataclass
class Volume:
    """A 2D/3D/4D image or label map in patient LPS space.

    ``window`` is the display window the file states, if any.  ``metadata`` keeps
    what the file said that the geometry does not: custom NRRD fields, DWI
    gradients and measurement frame, NIfTI intent, colour table (``"color_table"``:
    ``{label: {"name": str, "color": [r, g, b, a]}}``) and similar.
    """

    array: Any
    geometry: Geometry
    kind: DataKind = DataKind.VOLUME
    name: str = ""
    extra_axes: list[AxisInfo] = field(default_factory=list)
    components: AxisInfo | None = None
    metadata: dict = field(default_factory=dict)
    source: str | None = None
    window: DisplayWindow | None = None

    def __post_init__(self) -> None:
        if self.kind not in VOLUME_KINDS:
            raise ValueError(f"unknown volume kind {self.kind!r}; "
                             f"expected one of {', '.join(map(str, VOLUME_KINDS))}")
        self.kind = DataKind(self.kind)
        if self.window is not None and not isinstance(self.window, DisplayWindow):
            raise TypeError(f"Volume.window must be a DisplayWindow or None, not {type(self.window).__name__}")
        expected = len(self.extra_axes) + self.geometry.ndim + (1 if self.components is not None else 0)
        if len(self.array.shape) != expected:
            raise ValueError(
                f"array of shape {tuple(self.array.shape)} does not match a {self.geometry.ndim}D geometry "
                f"with {len(self.extra_axes)} extra axes and "
                f"{'a' if self.components is not None else 'no'} component axis"
            )

    # -- shape helpers --------------------------------------------------------------------
    @property
    def dtype(self) -> np.dtype:
        """Voxel type as stored."""
        return np.dtype(self.array.dtype)

    @property
    def shape(self) -> tuple[int, ...]:
        """Full array shape in NumPy order."""
        return tuple(int(s) for s in self.array.shape)

    @property
    def spatial_axes(self) -> tuple[int, ...]:
        """NumPy axis numbers of (k, j, i)."""
        start = len(self.extra_axes)
        return tuple(range(start, start + self.geometry.ndim))

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        """Shape of the spatial axes in NumPy order (k, j, i)."""
        return tuple(self.shape[a] for a in self.spatial_axes)

    @property
    def n_components(self) -> int:
        """Number of voxel components (1 for a scalar volume)."""
        return self.shape[-1] if self.components is not None else 1

    @property
    def is_rgb(self) -> bool:
        """8-bit RGB or RGBA colour voxels."""
        return (
            self.components is not None
            and self.n_components in (3, 4)
            and self.dtype == np.uint8
            and self.components.kind in ("RGB-color", "RGBA-color")
        )

    def to_numpy(self) -> np.ndarray:
        """The voxels as a NumPy array (loads a lazy array)."""
        return np.asarray(self.array)

    def with_array(self, array: Any, **changes: Any) -> Volume:
        """A copy with other voxels (same shape rules) and optional field changes."""
        return replace(self, array=array, **changes)

    def info(self) -> dict:
        """Summary for ``medio info --json``: kind, shape, dtype, geometry, napari affine."""
        from .geometry import napari_affine

        out: dict = {
            "kind": self.kind,
            "name": self.name,
            "shape": list(self.shape),
            "dtype": str(self.dtype),
        }
        out.update(self.geometry.to_dict())
        affine = napari_affine(self.geometry)
        n_extra = len(self.extra_axes)
        if n_extra:
            full = np.eye(n_extra + affine.shape[0])
            full[n_extra:, n_extra:] = affine
            affine = full
        out["affine"] = affine.tolist()
        if self.extra_axes:
            out["extra_axes"] = [a.to_dict() for a in self.extra_axes]
        if self.components is not None:
            out["components"] = dict(self.components.to_dict(), size=self.n_components)
        if self.window is not None:
            out["window"] = self.window.to_dict()
        if self.source:
            out["source"] = self.source
        return out
