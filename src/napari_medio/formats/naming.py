"""File names: a layer or node name from a file name (compound extensions known), Slicer's label-map guess."""
from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["base_name", "looks_like_labelmap", "strip_known_extension"]

# Slicer's Add Data label-map guess (qSlicerVolumesIOOptionsWidget::setFileNames), plus
# the plain "-seg"/".labels." spellings that napari users meet in ML data sets.
_LABEL_PATTERNS = (
    re.compile(r"(\b|_)([Ll]abel(s)?)(\b|_)"),
    re.compile(r"(\b|_)([Ss]eg)(\b|_)"),
)

_COMPOUND = (".nii.gz", ".img.gz", ".gipl.gz", ".seg.nrrd", ".seg.nhdr", ".seq.nrrd", ".seq.nhdr",
             ".mrk.json", ".mkp.json", ".plus.xml", ".ome.zarr", ".ome.tif", ".ome.tiff", ".vtk.gz", ".tar.gz")


def strip_known_extension(name: str) -> str:
    """File name without its (possibly compound) extension."""
    lower = name.lower()
    for ext in _COMPOUND:
        if lower.endswith(ext):
            return name[: -len(ext)]
    stem, _ = os.path.splitext(name)
    return stem


def base_name(path: "str | os.PathLike[str]") -> str:
    """Layer/node name for a file: its name without the extension."""
    return strip_known_extension(Path(path).name)


def looks_like_labelmap(path: "str | os.PathLike[str]") -> bool:
    """True when the file name says label map as Slicer guesses it (``-label``, ``_seg``, ``labels``)."""
    stem = base_name(path)
    return any(p.search(stem) for p in _LABEL_PATTERNS)
