"""What kind of data an object holds: one :class:`DataKind` shared by every module.

Every data object has a ``kind`` (``Volume.kind``, ``Model.kind``, ...); registry
formats list the kinds they write, scene nodes map onto them.  The members are
strings, so ``medio info --json`` and scene metadata keep the plain names
(``"volume"``, ``"labelmap"``, ...) and a plain string compares equal to its member.
"""
from __future__ import annotations

import sys
from enum import Enum

__all__ = ["DataKind", "VOLUME_KINDS"]

if sys.version_info >= (3, 11):
    from enum import StrEnum
else:  # pragma: no cover - Python 3.10

    class StrEnum(str, Enum):
        """``enum.StrEnum`` of Python 3.11: members are their string values."""

        def __str__(self) -> str:
            return str(self.value)

        def __format__(self, spec: str) -> str:
            return str(self.value).__format__(spec)


class DataKind(StrEnum):
    """The kind of a data object, named as Slicer names its nodes (in lower case)."""

    VOLUME = "volume"  #: an intensity image (scalar, vector, RGB, 4D)
    LABELMAP = "labelmap"  #: an image of integer labels
    SEGMENTATION = "segmentation"  #: segments with names, colours and terminology
    MODEL = "model"  #: a surface or volumetric mesh
    MARKUPS = "markups"  #: point list, line, angle, curve, plane, ROI
    TRANSFORM = "transform"  #: linear, grid, b-spline, thin-plate or composite
    TABLE = "table"
    COLORTABLE = "colortable"
    TEXT = "text"
    TERMINOLOGY = "terminology"
    VOLUME_PROPERTY = "volumeproperty"  #: volume rendering transfer functions
    SHADER_PROPERTY = "shaderproperty"  #: volume rendering shader replacements
    RTSTRUCT = "rtstruct"  #: a DICOM RT Structure Set
    SEQUENCE = "sequence"  #: a Slicer sequence (a scene node holding items over time)
    SCENE = "scene"  #: a whole Slicer scene (what the scene formats read)


#: Kinds a :class:`~napari_medio.core.volume.Volume` can have.
VOLUME_KINDS = (DataKind.VOLUME, DataKind.LABELMAP)
