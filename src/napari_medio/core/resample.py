"""Resampling a volume onto the patient axes (for showing truly oblique scans in 2D).

SimpleITK does the interpolation (linear for images, nearest neighbour for label
maps); the output grid comes from
:func:`~napari_medio.core.geometry.resampled_onto_patient_axes`.  Voxel types
are kept.
"""
from __future__ import annotations

import numpy as np

from .geometry import resampled_onto_patient_axes
from .kinds import DataKind
from .volume import Volume

__all__ = ["resample_to_patient_axes"]


def resample_to_patient_axes(volume: Volume) -> Volume:
    """A copy of ``volume`` resampled onto an axis-aligned LPS grid covering it.

    Each extra (time) index and each component is resampled the same way.
    Outside the original volume the minimum voxel value (0 for label maps) is used.
    """
    import SimpleITK as sitk

    geometry, shape = resampled_onto_patient_axes(volume.geometry, volume.spatial_shape)
    arr = np.asarray(volume.array)
    is_label = volume.kind == DataKind.LABELMAP
    interpolator = sitk.sitkNearestNeighbor if is_label else sitk.sitkLinear
    default = 0 if is_label or arr.size == 0 else arr.min().item()
    lead = arr.shape[: len(volume.extra_axes)]
    n_sp = volume.geometry.ndim
    comp = arr.shape[len(lead) + n_sp:]
    out = np.empty(lead + tuple(shape) + comp, dtype=arr.dtype)
    ref = sitk.Image([int(s) for s in shape[::-1]], sitk.sitkUInt8)
    ref.SetSpacing(geometry.spacing.tolist())
    ref.SetOrigin(geometry.origin.tolist())
    ref.SetDirection(geometry.direction.reshape(-1).tolist())
    for index in np.ndindex(*lead) if lead else [()]:
        block = arr[index]
        img = sitk.GetImageFromArray(np.ascontiguousarray(block), isVector=bool(comp))
        img.SetSpacing(volume.geometry.spacing.tolist())
        img.SetOrigin(volume.geometry.origin.tolist())
        img.SetDirection(volume.geometry.direction.reshape(-1).tolist())
        res = sitk.Resample(img, ref, sitk.Transform(), interpolator, float(default), img.GetPixelID())
        out[index] = sitk.GetArrayFromImage(res)
    md = dict(volume.metadata)
    md["resampled_from"] = volume.geometry.to_dict()
    return volume.with_array(out, geometry=geometry, metadata=md)
