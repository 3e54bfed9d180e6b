"""npe2 writer contributions: save layers through the format registry (File > Save Layers).

A label map saved to a format that holds no label names or colours (NIfTI,
MetaImage, plain NRRD, TIFF, ...) gets them in a Slicer colour table beside it
(``<name>.ctbl``, the format Slicer's Colors module reads and writes), and a
notification says so.  Several Image (or Labels) layers saved to one file are
refused with one clear message (:func:`write_image_layers`).  napari takes a
``ValueError`` from a writer for "no writer found", so the npe2 entry points turn
a :class:`MedioError` into a warning, which napari's Save dialog shows under
"save failed".
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from ..core import registry
from ..core.errors import MedioError
from ..core.kinds import DataKind
from .layers import color_table_from_attributes, from_layer

__all__ = ["LABEL_NAME_FORMATS", "colortable_beside", "write_image", "write_image_layers", "write_labels",
           "write_labels_layers", "write_layer"]

#: Registry formats that keep a label map's names and colours in the file itself.
LABEL_NAME_FORMATS = ("segmentation-nrrd", "segmentation-nrrd-plain", "ome-zarr")


def write_layer(path: str, data: Any, attributes: dict, layer_type: str) -> list[str]:
    """Build the layer's data object and write it in the format ``path``'s extension names."""
    obj = from_layer(layer_type, data, attributes)
    return registry.write(obj, path)


def write_image(path: str, data: Any, attributes: dict) -> list[str]:
    """Save an Image layer as a volume file (NRRD, NIfTI, MetaImage, ...), geometry from its world transform."""
    return write_layer(path, data, attributes, "image")


def colortable_beside(path: str | Path) -> Path:
    """Where a label map's colour table goes: ``<name>.ctbl`` beside ``path`` (``seg.nii.gz`` -> ``seg.ctbl``)."""
    from ..formats.naming import base_name

    p = Path(path)
    return p.with_name(base_name(p) + ".ctbl")


def write_labels(path: str, data: Any, attributes: dict) -> list[str]:
    """Save a Labels layer as a label map; names and colours the format cannot hold go to a ``.ctbl`` beside it."""
    written = list(write_layer(path, data, attributes, "labels"))
    table = color_table_from_attributes(attributes)
    if table and registry.find_writer(path, kind=DataKind.LABELMAP).name not in LABEL_NAME_FORMATS:
        from ..core.colortable import ColorTable

        side = colortable_beside(path)
        written += registry.write(ColorTable.from_label_table(table, name=attributes.get("name") or ""), side)
        _tell(f"{Path(path).name} holds no label names or colours: the {len(table)} label names and colours "
              f"are in {side.name} beside it (in Slicer, load it as a colour table and choose it for the label "
              "map; napari-medio's Add data takes it as the label map's colour table)")
    return written


def _tell(message: str) -> None:
    try:
        from napari.utils.notifications import show_info
    except ImportError:  # pragma: no cover - writing without napari
        return
    show_info(message)


def _one_layer(path: str, layer_data: list) -> tuple:
    if len(layer_data) == 1:
        return layer_data[0]
    names = ", ".join(repr(ld[1].get("name", "")) for ld in layer_data)
    raise MedioError(path, f"a {''.join(Path(path).suffixes) or 'single'} file holds one layer, but "
                           f"{len(layer_data)} are selected ({names}): save them one at a time, or together "
                           "as a Slicer scene (.mrb) with napari-medio's Save scene")


def _saved(write: Any, path: str, layer_data: list) -> list[str]:
    """Run a writer for napari; a MedioError becomes a warning napari shows (it takes ValueErrors for
    "no writer found"), and nothing is written."""
    try:
        data, attributes, _ = _one_layer(path, layer_data)
        return write(path, data, attributes)
    except MedioError as exc:
        warnings.warn(str(exc), UserWarning, stacklevel=2)
        return []


def write_image_layers(path: str, layer_data: list) -> list[str]:
    """npe2 writer for Image layers: one is saved with :func:`write_image`; several to one file is refused."""
    return _saved(write_image, path, layer_data)


def write_labels_layers(path: str, layer_data: list) -> list[str]:
    """npe2 writer for Labels layers: one is saved with :func:`write_labels`; several to one file is refused."""
    return _saved(write_labels, path, layer_data)
