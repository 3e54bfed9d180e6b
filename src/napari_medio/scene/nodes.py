"""Slicer MRML node classes <-> napari-medio data kinds.

For reading: which element tags are data nodes and what ``kind`` their data has
(as ``medio info`` names it).  For writing: for each kind, the data/display/storage
tags and class names Slicer uses, the default file extension
(``defaultWriteFileExtension``) and the subject-hierarchy owner plugin, the
file base name Slicer gives a node's data file and a volume node's geometry
attributes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core.kinds import DataKind
from .mrml import format_floats

__all__ = ["ANNOTATION_TAGS", "DATA_TAGS", "MARKUP_TAGS", "TRANSFORM_TAGS", "NodeSpec", "is_data_tag", "kind_of_tag",
           "safe_file_base", "spec_for", "volume_geometry_attrs"]

#: Markups element tags -> markup type (core.markups.MARKUP_TYPES).
MARKUP_TAGS = {
    "MarkupsFiducial": "Fiducial", "MarkupsLine": "Line", "MarkupsAngle": "Angle", "MarkupsCurve": "Curve",
    "MarkupsClosedCurve": "ClosedCurve", "MarkupsPlane": "Plane", "MarkupsROI": "ROI",
}

#: Slicer 4's annotation element tags -> the markup type they load as (their ``.acsv`` storage files).
ANNOTATION_TAGS = {"AnnotationFiducials": "Fiducial", "AnnotationRuler": "Line", "AnnotationROI": "ROI"}

TRANSFORM_TAGS = ("LinearTransform", "Transform", "GridTransform", "BSplineTransform")

#: Data node tags -> kind.  (``Volume`` with ``labelMap="1"`` is a label map in old scenes.)
DATA_TAGS: dict[str, DataKind] = {
    "Volume": DataKind.VOLUME,
    "ScalarVolume": DataKind.VOLUME,
    "VectorVolume": DataKind.VOLUME,
    "DiffusionWeightedVolume": DataKind.VOLUME,
    "DiffusionTensorVolume": DataKind.VOLUME,
    "LabelMapVolume": DataKind.LABELMAP,
    "Segmentation": DataKind.SEGMENTATION,
    "Model": DataKind.MODEL,
    "Table": DataKind.TABLE,
    "ColorTable": DataKind.COLORTABLE,
    "ProceduralColor": DataKind.COLORTABLE,
    "Text": DataKind.TEXT,
    "Sequence": DataKind.SEQUENCE,
    **{t: DataKind.MARKUPS for t in MARKUP_TAGS},
    **{t: DataKind.MARKUPS for t in ANNOTATION_TAGS},
    **{t: DataKind.TRANSFORM for t in TRANSFORM_TAGS},
}


def is_data_tag(tag: str) -> bool:
    return tag in DATA_TAGS


def kind_of_tag(tag: str, attrs: dict | None = None) -> DataKind | None:
    """The data kind of an element, or None for display/storage/view nodes."""
    kind = DATA_TAGS.get(tag)
    if kind == DataKind.VOLUME and attrs and str(attrs.get("labelMap", "0")).strip() in ("1", "true"):
        return DataKind.LABELMAP
    return kind


@dataclass(frozen=True)
class NodeSpec:
    """What Slicer writes for one kind of data."""

    tag: str
    cls: str  # class name without the vtkMRML prefix and Node suffix, e.g. "ScalarVolume"
    display_tag: str | None
    display_cls: str | None
    storage_tag: str
    storage_cls: str
    extension: str
    sh_type: str


_SPECS: dict[str, NodeSpec] = {  # by DataKind, and "vector" for vector volumes
    DataKind.VOLUME: NodeSpec("Volume", "ScalarVolume", "VolumeDisplay", "ScalarVolumeDisplay",
                              "VolumeArchetypeStorage", "VolumeArchetypeStorage", ".nrrd", "Volumes"),
    "vector": NodeSpec("VectorVolume", "VectorVolume", "VectorVolumeDisplay", "VectorVolumeDisplay",
                       "VolumeArchetypeStorage", "VolumeArchetypeStorage", ".nrrd", "Volumes"),
    DataKind.LABELMAP: NodeSpec("LabelMapVolume", "LabelMapVolume", "LabelMapVolumeDisplay",
                                "LabelMapVolumeDisplay", "VolumeArchetypeStorage", "VolumeArchetypeStorage",
                                ".nrrd", "LabelMaps"),
    DataKind.SEGMENTATION: NodeSpec("Segmentation", "Segmentation", "SegmentationDisplay",
                                    "SegmentationDisplay", "SegmentationStorage", "SegmentationStorage",
                                    ".seg.nrrd", "Segmentations"),
    DataKind.MODEL: NodeSpec("Model", "Model", "ModelDisplay", "ModelDisplay", "ModelStorage", "ModelStorage",
                             ".vtk", "Models"),
    DataKind.TRANSFORM: NodeSpec("LinearTransform", "LinearTransform", None, None, "TransformStorage",
                                 "TransformStorage", ".h5", "Transforms"),
    DataKind.TABLE: NodeSpec("Table", "Table", None, None, "TableStorage", "TableStorage", ".csv", "Tables"),
    DataKind.SEQUENCE: NodeSpec("Sequence", "Sequence", None, None, "SequenceStorage", "SequenceStorage",
                                ".seq.mrb", "Sequences"),
    DataKind.COLORTABLE: NodeSpec("ColorTable", "ColorTable", None, None, "ColorTableStorage",
                                  "ColorTableStorage", ".ctbl", "ColorTables"),
}

_MARKUP_DISPLAY = {"Fiducial": ("MarkupsFiducialDisplay", "MarkupsFiducialDisplay"),
                   "Plane": ("MarkupsPlaneDisplay", "MarkupsPlaneDisplay"),
                   "ROI": ("MarkupsROIDisplay", "MarkupsROIDisplay")}
_MARKUP_STORAGE = {"Plane": ("MarkupsPlaneJsonStorage", "MarkupsPlaneJsonStorage"),
                   "ROI": ("MarkupsROIJsonStorage", "MarkupsROIJsonStorage")}
_TRANSFORM_TAG = {"linear": ("LinearTransform", "LinearTransform"), "grid": ("GridTransform", "GridTransform"),
                  "bspline": ("BSplineTransform", "BSplineTransform")}


def spec_for(kind: DataKind, subtype: str | None = None) -> NodeSpec:
    """The node structure for data of ``kind`` (``subtype``: markup type, transform type or "vector")."""
    if kind == DataKind.MARKUPS:
        t = subtype or "Fiducial"
        tag = next((k for k, v in MARKUP_TAGS.items() if v == t), "MarkupsFiducial")
        dtag, dcls = _MARKUP_DISPLAY.get(t, ("MarkupsDisplay", "MarkupsDisplay"))
        stag, scls = _MARKUP_STORAGE.get(t, ("MarkupsJsonStorage", "MarkupsJsonStorage"))
        return NodeSpec(tag, tag.replace("Markups", "Markups", 1), dtag, dcls, stag, scls, ".mrk.json", "Markups")
    if kind == DataKind.VOLUME and subtype == "vector":
        return _SPECS["vector"]
    if kind == DataKind.TRANSFORM:
        tag, cls = _TRANSFORM_TAG.get(subtype or "linear", ("Transform", "Transform"))
        base = _SPECS[DataKind.TRANSFORM]
        ext = ".nrrd" if subtype == "grid" else ".h5"
        return NodeSpec(tag, cls, None, None, base.storage_tag, base.storage_cls, ext, base.sh_type)
    try:
        return _SPECS[kind]
    except KeyError:
        raise ValueError(f"a scene cannot hold data of kind {kind!r}") from None


_SAFE_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -_.,@#$%^&()[]{}<>+=")


def safe_file_base(name: str, limit: int = 50) -> str:
    """Slicer's file base name for a node name: other characters percent-encoded, clamped."""
    out = []
    for ch in name or "data":
        if ch in _SAFE_CHARS and ch not in "%<>":
            out.append(ch)
        else:
            out.extend(f"%{b:02X}" for b in ch.encode("utf-8"))
    base = "".join(out).strip(" .") or "data"
    return base[:limit]


def volume_geometry_attrs(obj: Any) -> dict:
    """A volume node's ``spacing``, ``origin`` and ``ijkToRASDirections`` (RAS, mm) for a 3D geometry, else {}."""
    g = getattr(obj, "geometry", None)
    if g is None or getattr(g, "ndim", 3) != 3:
        return {}
    m = g.index_to_ras_matrix()
    direction = m[:3, :3] / g.spacing
    return {"spacing": format_floats(g.spacing), "origin": format_floats(m[:3, 3]),
            "ijkToRASDirections": format_floats(direction)}
