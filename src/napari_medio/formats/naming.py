"""File names: a layer or node name from a file name (compound extensions known), Slicer's label-map
guess, and the numbered files of a picture series (``slice_001.png``, ``slice_002.png``, ...)."""
from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["base_name", "looks_like_labelmap", "numbered_names", "numbered_siblings", "strip_known_extension"]

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


def base_name(path: str | os.PathLike[str]) -> str:
    """Layer/node name for a file: its name without the extension."""
    return strip_known_extension(Path(path).name)


def looks_like_labelmap(path: str | os.PathLike[str]) -> bool:
    """True when the file name says label map as Slicer guesses it (``-label``, ``_seg``, ``labels``)."""
    stem = base_name(path)
    return any(p.search(stem) for p in _LABEL_PATTERNS)


def numbered_siblings(path: str | os.PathLike[str]) -> list[Path]:
    """Files beside ``path`` whose names differ from it only in the last number (``slice_001.png``),
    in numeric order; ``[path]`` when the name has no number."""
    p = Path(path)
    numbers = list(re.finditer(r"\d+", p.name))
    m = numbers[-1] if numbers else None
    if m is None:
        return [p]
    prefix, suffix = p.name[: m.start()], p.name[m.end():]
    pattern = re.compile(re.escape(prefix) + r"(\d+)" + re.escape(suffix) + r"\Z")
    found = []
    try:
        entries = list(p.parent.iterdir())
    except OSError:
        return [p]
    for entry in entries:
        mm = pattern.match(entry.name)
        if mm and entry.is_file():
            found.append((int(mm.group(1)), entry.name, entry))
    if not found:
        return [p]
    found.sort(key=lambda t: (t[0], t[1]))
    return [t[2] for t in found]


def numbered_names(path: str | os.PathLike[str], count: int, start: int = 0) -> list[Path]:
    """``count`` file names for a series written to ``path``: ``name_000.ext`` ... (suffixes kept)."""
    p = Path(path)
    name = p.name
    lower = name.lower()
    ext = ""
    for candidate in (".ome.tiff", ".ome.tif"):
        if lower.endswith(candidate):
            ext = name[-len(candidate):]
            break
    if not ext:
        ext = p.suffix
    stem = name[: len(name) - len(ext)]
    width = max(3, len(str(start + count - 1)))
    return [p.with_name(f"{stem}_{i:0{width}d}{ext}") for i in range(start, start + count)]
