"""The status-bar readout in patient terms: position with direction letters, voxel index and value.

napari computes a status for the cursor (in a worker thread in the Qt viewer) and
sets ``viewer.status``; :func:`install_readouts` listens to that event and, over a
napari-medio layer in a 2D view, replaces the coordinates part with
``R 12.3  A 40.1  I 150.0 mm  CT (i, j, k) = value`` (the voxel index in the
file's own order, i fastest, as Slicer's data probe) and, over a label map, the
segment's name.  Position letters come from :mod:`napari_medio.core.orientation`.
"""
from __future__ import annotations

import weakref
from typing import Any

import numpy as np

from ..core.kinds import VOLUME_KINDS
from ..core.orientation import format_patient_position

__all__ = ["cursor_readout", "install_readouts", "voxel_readout"]

#: Marks a status napari-medio has written, so that setting it does not recurse.
_MARK = "medio_readout"


def _is_volume_layer(layer: Any) -> bool:
    medio = (getattr(layer, "metadata", None) or {}).get("medio") or {}
    return medio.get("kind") in VOLUME_KINDS and "placement" in medio


def _readout_layer(viewer: Any) -> Any:
    active = viewer.layers.selection.active
    if active is not None and _is_volume_layer(active):
        return active
    for layer in reversed(viewer.layers):
        if layer.visible and _is_volume_layer(layer):
            return layer
    return None


def _file_index(layer: Any, view_index: np.ndarray) -> tuple[int, ...] | None:
    """(i, j, k) in the file's order for a layer's view index (undoing napari-medio's transpose and flips)."""
    medio = layer.metadata["medio"]
    placement = medio["placement"]
    order, flips = placement["order"], placement["flips"]
    n_sp = len(order)
    data = layer.data[0] if getattr(layer, "multiscale", False) else layer.data
    n_view = len(data.shape) - (1 if getattr(layer, "rgb", False) else 0)
    lead = n_view - n_sp
    shape = data.shape[lead:lead + n_sp]
    kji = [0] * n_sp
    for r, axis in enumerate(order):
        v = int(view_index[lead + r])
        kji[axis] = shape[r] - 1 - v if flips[r] else v
    return tuple(kji[::-1])


def voxel_readout(layer: Any, world: np.ndarray, dims_displayed: list[int] | None = None) -> str | None:
    """``name (i, j, k) = value [segment]`` for a napari-medio Image/Labels layer at a world point, or None outside.

    The value is napari's (``layer.get_value``: from the slice on screen, so a lazy
    or remote volume is not read again); the index is the voxel's in the file.
    """
    data = layer.data[0] if getattr(layer, "multiscale", False) else layer.data
    position = np.asarray(world, dtype=float)[-layer.ndim:]
    view_index = np.round(np.asarray(layer.world_to_data(position), dtype=float)).astype(int)
    n_view = len(data.shape) - (1 if getattr(layer, "rgb", False) else 0)
    if view_index.shape[0] != n_view or np.any(view_index < 0) or np.any(view_index >= data.shape[:n_view]):
        return None
    value = layer.get_value(np.asarray(world, dtype=float), world=True, dims_displayed=dims_displayed)
    if getattr(layer, "multiscale", False) and isinstance(value, tuple):
        value = value[1]  # (level, value)
    if value is None:
        return None
    value = np.asarray(value)
    ijk = _file_index(layer, view_index)
    text = f"{layer.name} ({', '.join(map(str, ijk))}) = {_format_value(value)}"
    from napari.layers import Labels

    if isinstance(layer, Labels):
        segment = _segment_name(layer, int(value))
        if segment:
            text += f" {segment}"
    return text


def _format_value(value: np.ndarray) -> str:
    if value.ndim:
        return "(" + ", ".join(_format_value(v) for v in value) + ")"
    if np.issubdtype(value.dtype, np.integer) or np.issubdtype(value.dtype, np.bool_):
        return str(int(value))
    return f"{float(value):.4g}"


def _segment_name(layer: Any, label: int) -> str | None:
    features = layer.features
    if label == 0 or "name" not in features.columns:
        return None
    index = features["index"] if "index" in features.columns else features.index
    hits = features["name"][np.asarray(index) == label]
    return str(hits.iloc[0]) if len(hits) else None


def cursor_readout(viewer: Any) -> str | None:
    """The readout of ``viewer``'s cursor over its napari-medio volumes in a 2D view (None elsewhere)."""
    if viewer.dims.ndisplay != 2 or viewer.dims.ndim < 2:
        return None
    layer = _readout_layer(viewer)
    if layer is None:
        return None
    world = np.asarray(viewer.cursor.position, dtype=float)
    spatial = world[-3:] if world.shape[0] >= 3 else world[-2:]
    text = format_patient_position(spatial[::-1])  # world (S, P, L) -> LPS (x, y, z)
    voxel = voxel_readout(layer, world, list(viewer.dims.displayed))
    return f"{text}  {voxel}" if voxel else text


def install_readouts(viewer: Any) -> None:
    """Show :func:`cursor_readout` in ``viewer``'s status bar in place of napari's coordinates."""
    ref = weakref.ref(viewer)

    def on_status(event: Any) -> None:
        v = ref()
        status = event.value
        if v is None or (isinstance(status, dict) and _MARK in status):
            return
        text = cursor_readout(v) if v.mouse_over_canvas else None
        if text is None:
            return
        if isinstance(status, dict):
            v.status = {**status, "coordinates": text, _MARK: "1"}
        elif status != text:
            v.status = {"layer_base": "", "source_type": "", "plugin": "", "coordinates": text, _MARK: "1"}

    viewer.events.status.connect(on_status)
