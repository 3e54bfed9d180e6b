"""Segmentations <-> napari Labels layers.

A :class:`~napari_medio.core.segmentation.Segmentation` becomes one Labels layer
per layer (overlapping segments live in different layers), or one merged layer
with ``merge_layers=True``.  Each layer is placed exactly like a volume
(:func:`~napari_medio.plugin.layers.volume_to_layer_data`), shows the segment
colours through a direct label colormap, and has layer ``features`` with the
segment name and ID, so hovering a voxel shows its segment
name in the status bar.  The whole segment table (every Slicer field) is kept in
``layer.metadata["medio"]["metadata"]["segmentation"]``; saving the layer gives
the segmentation back, with the names and colours the user edited.
"""
from __future__ import annotations

from typing import Any

from ..core.segmentation import Segmentation
from .layers import labels_from_layer, register_from_layer, register_to_layer, volume_to_layer_data

__all__ = ["segmentation_to_layer_data", "segmentation_from_labels"]


def _features(seg: Segmentation, layer: int | None, label_of: dict | None = None) -> dict:
    segs = seg.segments if layer is None else seg.segments_in_layer(layer)
    rows = [(0, "background", "")]
    for s in segs:
        value = label_of.get(s.id, s.label_value) if label_of else s.label_value
        rows.append((int(value), s.name, s.id))
    rows.sort(key=lambda r: r[0])
    return {  # the status bar shows every column on hover: keep it short (terminology stays in metadata)
        "index": [r[0] for r in rows],
        "name": [r[1] for r in rows],
        "segment_id": [r[2] for r in rows],
    }


def segmentation_to_layer_data(seg: Segmentation, *, merge_layers: bool = False, **options: Any) -> list:
    """Labels LayerData for a segmentation: one per layer (or one merged)."""
    out = []
    layers = [None] if (merge_layers or seg.n_layers == 1) else list(range(seg.n_layers))
    for layer in layers:
        vol = seg.labelmap(layer)
        table = vol.metadata["segmentation"]
        for data, kwargs, layer_type in volume_to_layer_data(vol, **options):
            if layer is not None and seg.n_layers > 1:
                kwargs["name"] = f"{seg.name or 'segmentation'} (layer {layer})"
            else:
                kwargs["name"] = seg.name or "segmentation"
            shown = layer if (layer is not None and seg.n_layers > 1) else None
            kwargs["features"] = _features(seg, shown, table.get("merged_label_values"))
            kwargs["metadata"]["medio"]["object"] = "segmentation"
            out.append((data, kwargs, layer_type))
    return out


def segmentation_from_labels(data: Any, attributes: dict) -> Segmentation | None:
    """The Segmentation a Labels layer holds when it came from one (else None: a plain label map)."""
    medio = (attributes.get("metadata") or {}).get("medio") or {}
    if not (medio.get("metadata") or {}).get("segmentation"):
        return None
    vol = labels_from_layer(data, attributes)
    return Segmentation.from_labelmap(vol, name=attributes.get("name") or None)


register_to_layer(Segmentation, segmentation_to_layer_data)
register_from_layer("labels", segmentation_from_labels, first=True)
