"""npe2 writer contributions: save layers through the format registry (File > Save Layers)."""
from __future__ import annotations

from typing import Any

from ..core import registry
from .layers import from_layer

__all__ = ["write_image", "write_labels", "write_layer"]


def write_layer(path: str, data: Any, attributes: dict, layer_type: str) -> list[str]:
    """Build the layer's data object and write it in the format ``path``'s extension names."""
    obj = from_layer(layer_type, data, attributes)
    return registry.write(obj, path)


def write_image(path: str, data: Any, attributes: dict) -> list[str]:
    """Save an Image layer as a volume file (NRRD, NIfTI, MetaImage, ...), geometry from its world transform."""
    return write_layer(path, data, attributes, "image")


def write_labels(path: str, data: Any, attributes: dict) -> list[str]:
    """Save a Labels layer as a label map (names and colours kept where the format holds them)."""
    return write_layer(path, data, attributes, "labels")
