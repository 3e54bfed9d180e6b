"""Conversion between :class:`~napari_medio.core.volume.Volume` and SimpleITK images.

SimpleITK images live in LPS physical space with the same (i, j, k) geometry
convention as the core, so conversion is direct.  A 4D ITK image (time or
sequence as its 4th index axis) becomes a 3D geometry plus one leading extra
axis whose values are the 4th axis' physical coordinates.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .errors import FormatError
from .geometry import Geometry
from .kinds import DataKind
from .volume import AxisInfo, Volume

__all__ = ["sitk", "volume_from_parts", "volume_from_sitk", "volume_to_sitk"]


def sitk():
    """The SimpleITK module (imported lazily: it is large)."""
    import SimpleITK

    return SimpleITK


def volume_from_sitk(
    image: Any,
    *,
    kind: DataKind = DataKind.VOLUME,
    name: str = "",
    rgb: bool | None = None,
    metadata: dict | None = None,
    source: str | None = None,
) -> Volume:
    """Volume from a SimpleITK image (LPS), keeping the voxel type.

    ``rgb`` forces (True) or forbids (False) treating 3/4-component 8-bit
    voxels as colour; by default ITK's pixel type decides.
    """
    s = sitk()
    dim = image.GetDimension()
    is_color = image.GetPixelID() == s.sitkVectorUInt8
    return volume_from_parts(
        s.GetArrayFromImage(image), image.GetSpacing(), image.GetOrigin(), image.GetDirection(), dim,
        image.GetNumberOfComponentsPerPixel(), is_color=is_color, kind=kind, name=name, rgb=rgb,
        metadata=metadata, source=source,
    )


def volume_from_parts(
    array: Any,
    spacing: Any,
    origin: Any,
    direction: Any,
    dim: int,
    n_components: int,
    *,
    is_color: bool = False,
    kind: DataKind = DataKind.VOLUME,
    name: str = "",
    rgb: bool | None = None,
    metadata: dict | None = None,
    source: str | None = None,
) -> Volume:
    """Volume from an ITK-layout array (``[t,] k, j, i[, c]``) and ITK geometry values.

    Lets readers that map voxels themselves (memory maps) share the ITK geometry
    rules: a 4th ITK axis becomes a leading "time" axis with its physical values.
    """
    spacing = np.array(spacing, dtype=float)
    origin = np.array(origin, dtype=float)
    direction = np.array(direction, dtype=float).reshape(dim, dim)
    extra: list[AxisInfo] = []
    if dim == 4:
        n4 = int(array.shape[0])
        values = (origin[3] + spacing[3] * np.arange(n4)).tolist()
        extra.append(AxisInfo(name="time", unit="", values=values, kind="time"))
        spacing, origin, direction = spacing[:3], origin[:3], direction[:3, :3]
    elif dim not in (2, 3):
        raise FormatError(source, f"{dim}D images are not supported")
    components = None
    if n_components > 1:
        color = is_color and n_components in (3, 4)
        if rgb is None:
            rgb = color
        kind_name = ("RGB-color" if n_components == 3 else "RGBA-color") if rgb and color else "vector"
        components = AxisInfo(name="component", kind=kind_name)
    return Volume(
        array=array,
        geometry=Geometry(spacing, origin, direction),
        kind=kind,
        name=name,
        extra_axes=extra,
        components=components,
        metadata=dict(metadata or {}),
        source=source,
    )


def volume_to_sitk(volume: Volume) -> Any:
    """SimpleITK image of a volume (one extra axis becomes ITK's 4th dimension)."""
    s = sitk()
    array = np.ascontiguousarray(np.asarray(volume.array))
    is_vector = volume.components is not None
    if len(volume.extra_axes) > 1:
        raise FormatError(volume.source, "ITK images hold at most one non-spatial axis")
    if volume.extra_axes:
        axis = volume.extra_axes[0]
        if is_vector:
            raise FormatError(volume.source, "a 4D image with vector voxels cannot be written by ITK")
        image = s.GetImageFromArray(array, isVector=False)
        values = axis.values or []
        t0 = float(values[0]) if values and _is_number(values[0]) else 0.0
        dt = float(values[1]) - float(values[0]) if len(values) > 1 and all(_is_number(v) for v in values[:2]) else 1.0
        if dt <= 0:
            dt = 1.0
        g = volume.geometry.as_3d()
        d = np.eye(4)
        d[:3, :3] = g.direction
        image.SetSpacing([*g.spacing.tolist(), dt])
        image.SetOrigin([*g.origin.tolist(), t0])
        image.SetDirection(d.reshape(-1).tolist())
        return image
    image = s.GetImageFromArray(array, isVector=is_vector)
    g = volume.geometry
    image.SetSpacing(g.spacing.tolist())
    image.SetOrigin(g.origin.tolist())
    image.SetDirection(g.direction.reshape(-1).tolist())
    return image


def _is_number(v: Any) -> bool:
    try:
        float(v)
        return True
    except (TypeError, ValueError):
        return False
