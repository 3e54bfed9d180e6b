"""napari adapter: the only package that imports napari or Qt.

``set_view(viewer, "axial" | "coronal" | "sagittal" | "3d")`` shows a viewer as 3D
Slicer's standard views (:mod:`napari_medio.plugin.views`, imported on first use).
"""
from __future__ import annotations

from typing import Any

__all__ = ["set_view"]


def __getattr__(name: str) -> Any:
    if name == "set_view":
        from .views import set_view

        return set_view
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
